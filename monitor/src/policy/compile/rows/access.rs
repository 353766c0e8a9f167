//! Tables that say who reaches each port in a column of its own rather
//! than by naming peers: "Need End User Access?" (Yes / No) in the Hadoop
//! distributions' port references, "Access Requirement" (External /
//! Internal) in others. Yes / External: end users outside the cluster
//! connect, and so do the cluster's own hosts; No / Internal: only the
//! cluster's hosts do.

use crate::policy::compile::{
    columns::{Column, Layout},
    normalize::endpoints::Endpoint,
};

/// The peer role of the hosts outside the cluster an access column means.
pub(super) const END_USER: &str = "end-user";
/// The peer role of "the other hosts of the cluster".
pub(super) const CLUSTER: &str = "cluster";

/// Who reaches the port, as the row's access cell says; `None` when the
/// table has no access column or the cell says neither yes nor no.
pub(super) fn peers(layout: &Layout, cells: &[String]) -> Option<Vec<Endpoint>> {
    let cell = layout
        .cell(cells, Column::Access)?
        .trim()
        .to_ascii_lowercase();
    let first = cell
        .split(|c: char| !c.is_alphanumeric())
        .find(|w| !w.is_empty())?;
    let cluster = Endpoint::Role(CLUSTER.into());
    match first {
        "yes" | "external" => Some(vec![Endpoint::Role(END_USER.into()), cluster]),
        "no" | "internal" => Some(vec![cluster]),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn access_cells_name_the_peers() {
        let header = strings(&["Service", "Port", "Need End User Access?"]);
        let layout = Layout::of(&header);
        let yes = peers(&layout, &strings(&["NameNode", "50070", "Yes (admins)"])).unwrap();
        assert_eq!(yes.len(), 2);
        let no = peers(&layout, &strings(&["NameNode", "8019", "No"])).unwrap();
        assert_eq!(no, vec![Endpoint::Role(CLUSTER.into())]);
        assert!(peers(&layout, &strings(&["x", "1", "localhost"])).is_none());
    }
}
