//! How required a row is: its Required? cell, else what its words, its
//! endpoint cells, its footnotes, the document's prose about the kind of
//! traffic, X marks under setup columns, or a port taken from another
//! column say, or that the row is a service's encrypted variant ("over
//! SSL"). The first that speaks decides; each choice is noted.

use super::{cells::marks_condition, nonempty};
use crate::policy::{
    compile::{
        columns::{Column, Layout},
        footnotes,
        normalize::{ports, required},
        topics,
    },
    model::Required,
};

/// What a row says that bears on whether it is required.
pub(super) struct Row<'r> {
    pub(super) layout: &'r Layout,
    pub(super) header: &'r [String],
    pub(super) cells: &'r [String],
    /// A qualifier found in an endpoint cell ("Linux worker nodes only").
    pub(super) endpoint_condition: Option<String>,
    /// The row's footnotes, with what each does.
    pub(super) effects: &'r [(String, footnotes::Effect)],
    pub(super) port_cell: &'r ports::PortCell,
    /// What the document's prose says about kinds of traffic.
    pub(super) said: &'r [topics::Topic],
    /// The port came from another column, used only in this setup.
    pub(super) alternative: Option<String>,
}

pub(super) fn of(row: &Row) -> Result<required::Requirement, String> {
    let cell = |c: Column| nonempty(row.layout.cell(row.cells, c));
    // Without a Notes column, the description or the service's own words
    // carry the condition ("Required only for RBAC", "only if you enable it").
    // Every cell that is not a port, a protocol, an end or a direction: the
    // description, the service and the columns nobody recognised (Splunk's
    // second service column, "Purpose").
    let structural = [
        Column::Port,
        Column::Protocol,
        Column::Direction,
        Column::Source,
        Column::Destination,
        Column::Peer,
        Column::Required,
        Column::Notes,
        Column::Setting,
        Column::Access,
    ];
    let described_cells: Vec<&str> = row
        .cells
        .iter()
        .enumerate()
        .filter(|(i, c)| {
            !c.trim().is_empty()
                && !structural
                    .iter()
                    .any(|&col| row.layout.get(col) == Some(*i))
        })
        .map(|(_, c)| c.as_str())
        .collect();
    let described = described_cells.join(". ");
    let notes_text = cell(Column::Notes).or((!described.is_empty()).then_some(described.as_str()));
    // A note may speak of some of the row's ports only ("Ports 135 and 445
    // only have to be open while ..."): its sentences about other ports do
    // not bear on this row's.
    let own_ports: Vec<(u16, u16)> = row
        .port_cell
        .groups
        .iter()
        .flat_map(|g| g.ranges.iter().map(|r| (r.lo, r.hi)))
        .collect();
    let scoped = notes_text.map(|t| about_ports(t, &own_ports));
    let notes_text = scoped.as_deref();
    let mut requirement = required::parse(cell(Column::Required), notes_text)?;
    if requirement.condition.is_none() && described.to_lowercase().contains("(enterprise)") {
        // A feature of a paid edition is not in every deployment.
        requirement.required = Required::Conditional;
        requirement.condition = Some("the Enterprise edition is used".into());
        requirement.note = Some("an Enterprise feature: conditional".into());
    }
    if requirement.condition.is_none()
        && let Some(cond) = row.endpoint_condition.clone()
    {
        requirement.required = Required::Conditional;
        requirement.note = Some(format!("an endpoint cell makes it conditional: {cond}"));
        requirement.condition = Some(cond);
    }
    if requirement.required == Required::Yes
        && cell(Column::Required).is_none()
        && let Some(cond) = encrypted_variant(&described)
    {
        requirement.required = Required::Conditional;
        requirement.note = Some(format!(
            "the encrypted variant of a service: only if {cond}"
        ));
        requirement.condition = Some(cond);
    }
    let optional_text = [
        Column::Port,
        Column::Description,
        Column::Service,
        Column::Notes,
    ]
    .iter()
    .filter_map(|&c| cell(c))
    .chain(described_cells.iter().copied())
    .any(required::says_optional);
    if optional_text && requirement.required == Required::Yes && cell(Column::Required).is_none() {
        requirement.required = Required::No;
        requirement.note =
            Some("the row says it is optional or off by default: not required".into());
    }
    if let Some((text, _)) = row.effects.iter().find(|(_, e)| e.optional)
        && cell(Column::Required).is_none()
    {
        requirement.required = Required::No;
        requirement.condition = None;
        requirement.note = Some(format!("its footnote says it is optional: {text}"));
    } else if let Some((text, e)) = row.effects.iter().find(|(_, e)| e.condition.is_some())
        && requirement.required != Required::Conditional
    {
        requirement.required = Required::Conditional;
        requirement.condition = e.condition.clone();
        requirement.note = Some(format!("its footnote makes it conditional: {text}"));
    }
    let row_ports: Vec<u16> = row
        .port_cell
        .groups
        .iter()
        .flat_map(|g| g.ranges.iter().filter(|r| r.lo == r.hi).map(|r| r.lo))
        .collect();
    if requirement.required == Required::Yes
        && cell(Column::Required).is_none()
        && let Some(topic) = topics::about_ports(row.said, &row_ports)
            .or_else(|| topics::about(row.said, &described))
    {
        match &topic.effect {
            topics::Effect::Optional => requirement.required = Required::No,
            topics::Effect::Condition(c) => {
                requirement.required = Required::Conditional;
                requirement.condition = Some(c.clone());
            }
        }
        requirement.note = Some(format!("the document says: {}", topic.said));
    }
    // A sentence in the who-uses-it cell ("SSL. Once Tableau Server is
    // configured for SSL, the gateway redirects clients to this port").
    if requirement.required == Required::Yes
        && cell(Column::Required).is_none()
        && let Some(cond) = cell(Column::Source).and_then(required::condition_of)
    {
        requirement.required = Required::Conditional;
        requirement.note = Some(format!("the Source cell makes it conditional: {cond}"));
        requirement.condition = Some(cond);
    }
    if requirement.required == Required::Yes
        && cell(Column::Required).is_none()
        && let Some(cond) = marks_condition(row.layout, row.header, row.cells)
    {
        requirement.required = Required::Conditional;
        requirement.note = Some(format!("marked only under {cond}: conditional"));
        requirement.condition = Some(cond);
    }
    if let Some(cond) = row.alternative.clone()
        && requirement.required == Required::Yes
    {
        requirement.required = Required::Conditional;
        requirement.note = Some(format!("the port of another column, used only {cond}"));
        requirement.condition = Some(cond);
    }
    Ok(requirement)
}

/// The sentences of `text` that are about `ports`: all but those that
/// start by naming other ports ("Port 5724 has to be open ...", "Ports 135,
/// 137 and 49152-65535 only ...").
fn about_ports(text: &str, ports: &[(u16, u16)]) -> String {
    text.split_inclusive(['.', ';'])
        .filter(|sentence| match named_ports(sentence) {
            Some(named) => ports.iter().any(|p| named.contains(p)),
            None => true,
        })
        .collect::<String>()
}

/// The ports a sentence opens with: "Port 88 ...", "Ports 135, 137, 445 and
/// 49152-65535 ...".
fn named_ports(sentence: &str) -> Option<Vec<(u16, u16)>> {
    let lower = sentence.trim_start().to_ascii_lowercase();
    let rest = lower
        .strip_prefix("ports ")
        .or_else(|| lower.strip_prefix("port "))?;
    let mut named = Vec::new();
    for word in rest.split(|c: char| c.is_whitespace() || c == ',') {
        if word.is_empty() || word == "and" || word == "or" {
            continue;
        }
        let (lo, hi) = word.split_once('-').unwrap_or((word, word));
        match (lo.parse::<u16>(), hi.parse::<u16>()) {
            (Ok(lo), Ok(hi)) if lo <= hi => named.push((lo, hi)),
            _ => break,
        }
    }
    (!named.is_empty()).then_some(named)
}

/// "Inter-node traffic over SSL": a port that exists beside the plain one
/// for when encryption is turned on, so it is needed only then.
fn encrypted_variant(text: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    ["ssl", "tls"]
        .iter()
        .find(|p| {
            lower.match_indices(&format!(" over {p}")).any(|(i, m)| {
                let after = lower[i + m.len()..].trim_start_matches(['/', 's', 'l', 't']);
                // "over TLS or in plain text": a choice made on this very
                // port; "HTTP over SSL/TLS (HTTPS)": the name of a protocol
                // that is always encrypted. Neither is a variant.
                !after.starts_with(" or ") && !after.starts_with(" (")
            })
        })
        .map(|p| format!("{} is enabled", p.to_ascii_uppercase()))
}

#[cfg(test)]
mod tests {
    use super::{about_ports, encrypted_variant};

    #[test]
    fn notes_about_other_ports_do_not_bear_on_a_row() {
        let note = "WMI uses port 135 first. Ports 135, 137, 445 and 49152-65535 only have to \
                    be open while Setup runs. Port 5724 can be closed.";
        assert_eq!(
            about_ports(note, &[(1433, 1433)]),
            "WMI uses port 135 first."
        );
        assert!(about_ports(note, &[(445, 445)]).contains("only have to be open while"));
        assert!(about_ports(note, &[(49152, 65535)]).contains("Setup runs"));
        assert!(about_ports(note, &[(5724, 5724)]).ends_with("Port 5724 can be closed."));
    }

    #[test]
    fn encrypted_variants_and_encrypted_protocols() {
        assert_eq!(
            encrypted_variant("Inter-node traffic over SSL").as_deref(),
            Some("SSL is enabled")
        );
        assert_eq!(encrypted_variant("HTTP over SSL/TLS (HTTPS)"), None);
        assert_eq!(
            encrypted_variant("queried here, over TLS or in plain text"),
            None
        );
    }
}
