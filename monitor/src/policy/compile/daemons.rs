//! "Service | Servers | Port" tables (the Hadoop distributions' port
//! references and the like): each row is a daemon that listens ("NameNode
//! WebUI", "DataNode", "ZooKeeper Server"), and the Servers column says
//! where it runs in words that are tiers or remarks rather than names
//! ("Master Nodes (NameNode and any back-up NameNodes)", "All Slave
//! Nodes", "runs next to each NameNode"). A host's role is the daemon it
//! runs, the name an inventory binds.

use super::{
    columns::{self, Column, Layout},
    roles,
};

/// The daemon a "Service | Servers" row is about, as a role: the service
/// cell without the name of the interface it serves ("NameNode WebUI",
/// "NameNode metadata service" are the NameNode). Only when the Service
/// column comes before a column of hosts: a table keyed by its hosts
/// ("Node | Service | Ports") names its roles in the host column.
pub fn of_row(layout: &Layout, header: &[String], cells: &[String]) -> Option<String> {
    let service = layout.get(Column::Service)?;
    let hosts = columns::host_column(header)?;
    if layout.has(Column::Component) || hosts < service {
        return None;
    }
    of_service(cells.get(service)?)
}

/// Words after a daemon's name that name one of its interfaces or say
/// what it serves, not which daemon it is.
const INTERFACE: &[&str] = &[
    "webui", "ui", "web", "api", "rpc", "ipc", "http", "https", "port", "ports", "service",
    "services", "metadata", "endpoint", "console",
];

fn of_service(service: &str) -> Option<String> {
    let mut words: Vec<&str> = service.split_whitespace().collect();
    while words.len() > 1
        && words.last().is_some_and(|w| {
            let bare: String = w.chars().filter(|c| c.is_alphanumeric()).collect();
            INTERFACE.contains(&bare.to_ascii_lowercase().as_str())
        })
    {
        words.pop();
    }
    roles::slug(&words.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn daemons_of_service_cells() {
        let header = strings(&["Service", "Servers", "Default Ports Used"]);
        let layout = Layout::of(&header);
        let row = |s: &str| of_row(&layout, &header, &strings(&[s, "Master Nodes", "1"]));
        assert_eq!(row("NameNode WebUI").as_deref(), Some("namenode"));
        assert_eq!(
            row("NameNode metadata service").as_deref(),
            Some("namenode")
        );
        assert_eq!(row("ZooKeeper Server").as_deref(), Some("zookeeper-server"));
        assert_eq!(
            row("Secondary NameNode").as_deref(),
            Some("secondary-namenode")
        );
        // Keyed by its hosts: the host column names the role.
        let by_host = strings(&["Cisco ISE Node", "Cisco ISE Service", "Ports"]);
        let l = Layout::of(&by_host);
        assert_eq!(
            of_row(&l, &by_host, &strings(&["Admin", "Admin", "22"])),
            None
        );
    }
}
