//! Table columns are recognised by what their header means, not where they
//! are: the two seed documents order them differently and use different
//! words for the same thing (Dest. / Destination, Use / Service Name).

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Column {
    Port,
    Protocol,
    Service,
    Direction,
    Source,
    Destination,
    /// A peer column with no side: `IP/DNS`, `Host`, `Endpoint`.
    Peer,
    Required,
    Notes,
    /// Prose about the row; read by people, not by the compiler.
    Description,
    /// The part of the product that listens, in a table that also has a
    /// Service column ("Component | Service | Port"): one host role per
    /// value, the service being what it serves on the port.
    Component,
    /// Where the port is configured ("Configurable in", "Configuration"):
    /// file names and menu paths, which name no peer.
    Setting,
    /// Who may reach the port, as a class: "Need End User Access?" (Yes /
    /// No), "Access Requirement" (External / Internal).
    Access,
}

impl fmt::Display for Column {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Column::Port => "port",
            Column::Protocol => "protocol",
            Column::Service => "service",
            Column::Direction => "direction",
            Column::Source => "source",
            Column::Destination => "destination",
            Column::Peer => "peer",
            Column::Required => "required",
            Column::Notes => "notes",
            Column::Description => "description (not compiled)",
            Column::Setting => "setting (not compiled)",
            Column::Component => "component (the listening host)",
            Column::Access => "access (who reaches the port)",
        })
    }
}

/// The meaning of a header cell, if it has a known one.
pub fn recognise(header: &str) -> Option<Column> {
    let lower = header.to_ascii_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let has = |w: &str| words.contains(&w);
    let sourcey = has("source") || has("src") || has("from") || has("origin");
    let desty = has("dest") || has("destination") || has("dst") || has("to") || has("target");
    let column = if has("communicates") {
        // "Communicates on": the local port a component sends from.
        return None;
    } else if has("configurable")
        || has("configuration")
        || has("config")
        || has("configured")
        || has("setting")
        || has("settings")
        || has("property")
    {
        Column::Setting
    } else if has("access")
        && [
            "need",
            "user",
            "users",
            "external",
            "requirement",
            "requirements",
        ]
        .iter()
        .any(|w| has(w))
    {
        Column::Access
    } else if has("listens") || has("listen") || has("listening") {
        Column::Port
    } else if (has("port") || has("ports")) && has("name") {
        // "Port name": what the port is for, not its number; a Use or
        // Purpose column says more and takes the service.
        Column::Description
    } else if (has("port") || has("ports")) && sourcey && !desty {
        // The connecting side's port is ephemeral ("*", "Any"): it says
        // nothing a rule could use.
        return None;
    } else if has("port") || has("ports") {
        Column::Port
    } else if sourcey && desty {
        // "Source/Destination": the peer, whose side the direction gives.
        Column::Peer
    } else if has("by") && (has("used") || has("accessed") || has("called")) {
        // "Used By", "Accessed by": who opens the connection.
        Column::Source
    } else if has("protocol") || has("proto") || has("transport") {
        Column::Protocol
    } else if has("direction") || has("dir") || has("ingress") || has("egress") {
        Column::Direction
    } else if sourcey {
        Column::Source
    } else if desty {
        Column::Destination
    } else if has("ip")
        || has("dns")
        || has("host")
        || has("hostname")
        || has("address")
        || has("endpoint")
        || has("domain")
        || has("url")
        || has("peer")
        // "Device": the other end, named by the kind of box it is; the
        // heading (Inbound, Outbound) gives its side.
        || has("device")
        || has("devices")
    {
        Column::Peer
    } else if (has("required") || has("needed")) && has("for") {
        // "Required for": what the port serves (a purpose, often the
        // sentence naming who connects), not whether it is required.
        Column::Notes
    } else if has("required") || has("mandatory") || has("optional") || has("default") {
        // "Default status", "On by default": whether the port is open out
        // of the box.
        Column::Required
    } else if has("notes") || has("note") || has("remarks") || has("comment") || has("comments") {
        Column::Notes
    } else if has("service")
        // "Designation": the port's name, in translated manuals.
        || has("designation")
        || has("use")
        || has("usage")
        || has("purpose")
        || has("name")
        || has("application")
        || has("component")
    {
        Column::Service
    } else if has("description") || has("details") || has("explanation") {
        Column::Description
    } else {
        return None;
    };
    Some(column)
}

/// A column no reader claims whose header names a kind of host ("Cisco ISE
/// Node", "Servers"): it says which of the product's hosts each row is
/// about, so its values are host roles.
pub fn host_column(header: &[String]) -> Option<usize> {
    header
        .iter()
        .position(|h| recognise(h).is_none() && super::roles::ends_in_host_word(h))
}

/// Header positions of each column. The first column with a meaning wins;
/// later ones with the same meaning are reported.
#[derive(Debug, Default)]
pub struct Layout {
    positions: Vec<(Column, usize)>,
    pub unknown: Vec<String>,
    pub repeated: Vec<String>,
    /// A client's-port column set aside for the server's port beside it.
    pub client_port: Option<String>,
    /// Columns that repeat the Port column ("Ports on Gigabit Ethernet 1"):
    /// their cells are ports or remarks about them, never who connects.
    pub more_ports: Vec<usize>,
}

impl Layout {
    pub fn of(header: &[String]) -> Layout {
        let mut layout = Layout::default();
        for (i, h) in header.iter().enumerate() {
            match recognise(h) {
                Some(c) if layout.get(c).is_some() => {
                    if c == Column::Port {
                        layout.more_ports.push(i);
                    }
                    layout.repeated.push(h.clone())
                }
                Some(c) => layout.positions.push((c, i)),
                None if h.trim().is_empty() => layout.unknown.push("(empty header)".into()),
                None => layout.unknown.push(h.clone()),
            }
        }
        layout.component_beside_service(header);
        layout.server_port_over_client_port(header);
        layout
    }

    /// "Client Port(s) | Server Port": the client's port is its ephemeral
    /// source range ("1024-65535/TCP"); the server's is the one to allow,
    /// so it is the Port column even though it comes second.
    fn server_port_over_client_port(&mut self, header: &[String]) {
        let words = |h: &str| -> Vec<String> {
            h.to_lowercase()
                .split(|c: char| !c.is_alphanumeric())
                .filter(|w| !w.is_empty())
                .map(String::from)
                .collect()
        };
        let Some(at) = self.get(Column::Port) else {
            return;
        };
        if !words(&header[at]).iter().any(|w| w == "client") {
            return;
        }
        let Some(server) = header.iter().position(|h| {
            self.repeated.contains(h)
                && recognise(h) == Some(Column::Port)
                && words(h).iter().any(|w| w == "server")
        }) else {
            return;
        };
        let client = header[at].clone();
        self.repeated.retain(|h| *h != header[server]);
        self.more_ports.retain(|&i| i != server);
        self.positions.retain(|(c, _)| *c != Column::Port);
        self.positions.push((Column::Port, server));
        self.client_port = Some(client);
    }

    /// "Component | Service": both read as a service, so the second was
    /// repeated. The component is then who listens and the other column
    /// the service; a lone Component column stays the service (Splunk's,
    /// where components are the hosts only if the table names peers).
    fn component_beside_service(&mut self, header: &[String]) {
        let Some(at) = self.get(Column::Service) else {
            return;
        };
        if !header[at].to_lowercase().contains("component") {
            return;
        }
        let Some(other) = header
            .iter()
            .position(|h| self.repeated.contains(h) && recognise(h) == Some(Column::Service))
        else {
            return;
        };
        self.repeated.retain(|h| *h != header[other]);
        for entry in &mut self.positions {
            if entry.1 == at {
                entry.0 = Column::Component;
            }
        }
        self.positions.push((Column::Service, other));
    }

    pub fn get(&self, column: Column) -> Option<usize> {
        self.positions
            .iter()
            .find(|(c, _)| *c == column)
            .map(|(_, i)| *i)
    }

    /// Whether the header at `index` has a meaning the compiler uses.
    pub fn is_recognised(&self, index: usize) -> bool {
        self.positions.iter().any(|(_, i)| *i == index)
    }

    pub fn has(&self, column: Column) -> bool {
        self.get(column).is_some()
    }

    /// The cell of `column` in `cells`, if the table has that column (a
    /// short row reads as empty cells).
    pub fn cell<'c>(&self, cells: &'c [String], column: Column) -> Option<&'c str> {
        self.get(column)
            .map(|i| cells.get(i).map_or("", String::as_str))
    }

    /// "Port→port, Use→service, ..." for the table's decision record.
    pub fn describe(&self, header: &[String]) -> String {
        self.positions
            .iter()
            .map(|(c, i)| format!("{}→{}", header[*i], c))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_headers() {
        let cases = [
            ("Port", Column::Port),
            ("Protocol", Column::Protocol),
            ("Service Name", Column::Service),
            ("Direction", Column::Direction),
            ("Source", Column::Source),
            ("Dest.", Column::Destination),
            ("Destination", Column::Destination),
            ("Description", Column::Description),
            ("Use", Column::Service),
            ("Required?", Column::Required),
            ("Notes", Column::Notes),
            ("IP/DNS", Column::Peer),
        ];
        for (h, c) in cases {
            assert_eq!(recognise(h), Some(c), "{h}");
        }
        assert_eq!(recognise("Colour"), None);
        assert_eq!(recognise("Used By"), Some(Column::Source));
        assert_eq!(recognise("On by default"), Some(Column::Required));
        assert_eq!(recognise("Listens on"), Some(Column::Port));
        assert_eq!(recognise("Designation"), Some(Column::Service));
        assert_eq!(recognise("Communicates on"), None);
        assert_eq!(recognise("Configurable in"), Some(Column::Setting));
        assert_eq!(recognise("Configuration"), Some(Column::Setting));
        assert_eq!(recognise("Default port"), Some(Column::Port));
        assert_eq!(recognise("Port name"), Some(Column::Description));
        assert_eq!(recognise("Accessed by"), Some(Column::Source));
        assert_eq!(recognise("Source port"), None);
        assert_eq!(recognise("Destination port"), Some(Column::Port));
        assert_eq!(recognise("Source/Destination"), Some(Column::Peer));
        assert_eq!(recognise("Ingress/Egress"), Some(Column::Direction));
        assert_eq!(recognise("Need End User Access?"), Some(Column::Access));
        assert_eq!(recognise("Access Requirement"), Some(Column::Access));
    }

    #[test]
    fn component_beside_service() {
        let header: Vec<String> = ["Component", "Service", "Port"].map(String::from).to_vec();
        let l = Layout::of(&header);
        assert_eq!(l.get(Column::Component), Some(0));
        assert_eq!(l.get(Column::Service), Some(1));
        assert!(l.repeated.is_empty());
        let alone = Layout::of(&["Component".to_string(), "Port".to_string()]);
        assert_eq!(alone.get(Column::Service), Some(0));
        let ad = Layout::of(&["Client Port(s)", "Server Port", "Service"].map(String::from));
        assert_eq!(ad.get(Column::Port), Some(1));
        assert!(ad.repeated.is_empty() && ad.client_port.is_some());
        assert_eq!(recognise("Device"), Some(Column::Peer));
        assert_eq!(recognise("Required for"), Some(Column::Notes));
    }

    #[test]
    fn layout_by_meaning() {
        let header: Vec<String> = ["Use", "Direction", "IP/DNS", "Port", "Notes", "Required?"]
            .map(String::from)
            .to_vec();
        let l = Layout::of(&header);
        assert_eq!(l.get(Column::Port), Some(3));
        assert_eq!(l.get(Column::Required), Some(5));
        assert_eq!(l.cell(&["a".into()], Column::Port), Some(""));
    }
}
