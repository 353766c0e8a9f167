//! What a table's caption, headings and missing columns imply for every
//! row: the local role, the direction, and who the peer is when no column
//! says. Each choice is recorded as a decision or a warning.

use crate::policy::{
    compile::{
        Ctx,
        columns::{Column, Layout},
        roles,
    },
    document::Table,
    model::Direction,
};

/// What the table's section and missing columns imply for every row.
pub(super) struct Defaults {
    pub(super) direction: Option<Direction>,
    /// The hosts the table is about, from its caption or heading; `None`:
    /// the rows say (Destination of inbound rows), or `nodes`.
    pub(super) local: Option<String>,
    /// The Service column is "Component": each row names its own hosts.
    pub(super) component_is_local: bool,
    /// No endpoint column and no section about nodes: a row whose words name
    /// no peer is open to anyone.
    pub(super) any_peer: bool,
    /// The section is about traffic among the table's hosts.
    pub(super) peer_is_local: bool,
    /// The first host the document introduces: the one its unlabelled
    /// tables are about, when a row names none.
    pub(super) first_role: Option<String>,
    /// Who connects to the table's hosts, as the sentence above it says.
    pub(super) peer: Option<String>,
    /// Nothing says which side opens the connections: the rows' direction
    /// (both) is a guess.
    pub(super) direction_guessed: bool,
}

impl Defaults {
    /// Without a Direction column, Source and Destination alone say which
    /// way connections go; reading them so is not a guess to warn about.
    pub(super) fn direction_implied(&self) -> bool {
        self.direction.is_some()
    }
}

pub(super) fn table_defaults(
    ctx: &mut Ctx,
    table: &Table,
    layout: &Layout,
    headings: &[(u8, String)],
    line: u32,
) -> Defaults {
    let section = headings
        .iter()
        .map(|(_, h)| h.to_lowercase())
        .collect::<Vec<_>>()
        .join(" / ");
    let between_nodes = [
        "between cluster nodes",
        "between nodes",
        "between the nodes",
        "intracluster",
        "intra-cluster",
        "within the cluster",
        "cluster nodes",
        "inter-node",
        "internode",
        "node-to-node",
    ]
    .iter()
    .any(|k| section.contains(k));
    // "Public Facing Ports", "External": open to whoever may reach the
    // product, connecting in.
    let public = headings.last().is_some_and(|(_, h)| {
        h.to_lowercase()
            .split(|c: char| !c.is_alphanumeric())
            .any(|w| w == "public" || w == "external")
    });
    let has_endpoints =
        layout.has(Column::Source) || layout.has(Column::Destination) || layout.has(Column::Peer);
    let has_sides = layout.has(Column::Source) || layout.has(Column::Destination);
    let title = ctx.title.clone();
    // "X must be able to reach the following ports on Y": Y listens and X
    // connects, for every row that names no ends of its own.
    let stated = ctx.stated_ends.clone().filter(|_| !has_endpoints);
    if let Some(e) = &stated {
        ctx.decide(
            line,
            format!(
                "the sentence above the table states its ends: {} connects to {}",
                e.opener, e.listener
            ),
        );
    }
    let stated_local = stated.as_ref().map(|e| e.listener.clone()).or_else(|| {
        // "The destination for these clients is ... on a Mailbox server."
        let host = ctx.stated_destination.clone().filter(|_| !has_endpoints)?;
        ctx.decide(
            line,
            format!("the section says where its connections go: local role {host}"),
        );
        Some(host)
    });
    // "Client Port(s) | Server Port": the columns name the ends. A client
    // connects to the server, which is the kind of server the document
    // names most, else `server`.
    let client_server = layout.client_port.is_some() && !has_endpoints && stated.is_none();
    let stated_local = stated_local.or_else(|| {
        client_server.then(|| {
            let server = ctx.main_server.clone().unwrap_or_else(|| "server".into());
            ctx.decide(
                line,
                format!(
                    "Client Port and Server Port columns: a client connects to the server \
                     ({server}, the server the document names most)"
                ),
            );
            server
        })
    });
    let local = stated_local.or_else(|| {
        table
            .caption
            .as_deref()
            .and_then(|c| roles::of_caption(c, title.as_deref()))
            .or_else(|| {
                headings
                    .iter()
                    .rev()
                    .find_map(|(_, h)| roles::of_heading(h, title.as_deref()))
            })
            .or_else(|| {
                // "Open ports to reach Ops Manager": a heading that names one of
                // the hosts the document introduced.
                headings
                    .last()
                    .and_then(|(_, h)| roles::mentioned(h, &ctx.roles))
            })
    });
    // "Open ports between the MongoDB hosts": traffic among them.
    let peer_is_local = local.is_some()
        && headings
            .last()
            .is_some_and(|(_, h)| h.to_lowercase().contains(" between "));
    if let Some(role) = &local {
        ctx.decide(
            line,
            format!("the table's caption or heading names its hosts: local role {role}"),
        );
    }
    // Components are the hosts only when the table says who reaches them
    // (Splunk's "Accessed by"); otherwise they are processes of one host.
    let component_is_local = local.is_none()
        && has_endpoints
        && layout
            .get(Column::Service)
            .and_then(|i| table.header.get(i))
            .is_some_and(|h| h.to_lowercase().contains("component"));
    let heading_direction = headings
        .iter()
        .rev()
        .find_map(|(_, h)| roles::heading_direction(h));
    let mut direction = None;
    let mut direction_guessed = false;
    if !layout.has(Column::Direction) && client_server {
        direction = Some(Direction::Inbound);
    } else if !layout.has(Column::Direction) && stated.is_some() && ctx.stated_both_ways {
        direction = Some(Direction::Bidirectional);
        ctx.decide(
            line,
            "either end opens the connections (a two-way arrow, or \"inbound and outbound\" among the members): rows are bidirectional".into(),
        );
    } else if !layout.has(Column::Direction) && stated.is_some() {
        direction = Some(Direction::Inbound);
    } else if !layout.has(Column::Direction) {
        direction = Some(Direction::Bidirectional);
        if let Some(d) = heading_direction {
            direction = Some(d);
            ctx.decide(
                line,
                format!("no Direction column; the heading says {d}: rows are {d}"),
            );
        } else if has_sides {
            ctx.decide(
                line,
                "no Direction column: the side that opens the connection is the Source".into(),
            );
        } else if between_nodes {
            ctx.decide(
                line,
                "no Direction column; the section is about traffic between nodes: bidirectional"
                    .into(),
            );
        } else if public || !has_endpoints {
            // A list of ports with nothing about who connects is the list
            // of ports the host opens: connections come in.
            direction = Some(Direction::Inbound);
            ctx.decide(
                line,
                "no Direction column and no Source/Destination column: the table lists the \
                 ports its hosts listen on, rows are inbound"
                    .into(),
            );
        } else {
            direction_guessed = true;
            ctx.warn(
                line,
                "no Direction column and the section does not say: rows are read as \
                 bidirectional"
                    .into(),
            );
        }
    }
    let mut any_peer = false;
    if stated.is_some() || client_server {
    } else if !has_endpoints {
        if between_nodes && !public {
            ctx.decide(
                line,
                "no Source/Destination column; the section is about traffic between nodes: peer \
                 is nodes"
                    .into(),
            );
        } else {
            any_peer = true;
            ctx.warn(
                line,
                "no Source/Destination/IP column and the section names no peers: peers are named \
                 in the row's words, or anyone (role any)"
                    .into(),
            );
        }
    }
    if !layout.has(Column::Protocol) {
        ctx.decide(
            line,
            "no Protocol column: protocol from the port cell or a service name that settles it \
             (DNS: UDP and TCP), otherwise TCP (warned per row)"
                .into(),
        );
    }
    if !layout.has(Column::Required) {
        ctx.decide(line, "no Required? column: rows are required".into());
    }
    Defaults {
        direction,
        local,
        component_is_local,
        any_peer,
        peer_is_local,
        // Under a group row the group says whose ports these are; a role the
        // rows do not name is not the document's first one.
        first_role: (headings.last().map(|(l, _)| *l) != Some(super::GROUP_LEVEL))
            .then(|| ctx.roles.first().cloned())
            .flatten(),
        peer: stated
            .map(|e| e.opener)
            .or_else(|| client_server.then(|| "client".to_string())),
        direction_guessed,
    }
}
