//! Who the peer is and which way the connection goes, from the Direction,
//! Source, Destination and IP/DNS cells of a row.
//!
//! The monitored host is a node, so `nodes` is the local role and everything
//! else named in the row is a peer. Source is read as the side that opens the
//! connection. When the cells disagree (an outbound SMTP row naming the relay
//! as Source and the nodes as Destination) the reading that makes sense for
//! a real deployment wins, and the disagreement is warned about.

use crate::policy::model::{Direction, NODES, Peer};

use super::endpoints::Endpoint;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerSpec {
    Role(String),
    Literals(Vec<Peer>),
}

impl PeerSpec {
    pub fn label(&self) -> String {
        match self {
            PeerSpec::Role(r) => r.clone(),
            PeerSpec::Literals(l) => l
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub direction: Direction,
    pub peer: PeerSpec,
    pub notes: Vec<String>,
    pub warnings: Vec<String>,
}

/// Endpoint cells of one row; `None` when the table lacks the column or the
/// cell is empty.
pub struct Sides<'a> {
    pub source: Option<&'a [Endpoint]>,
    pub destination: Option<&'a [Endpoint]>,
    pub peer: Option<&'a [Endpoint]>,
    /// The table has no Direction column: `Bidirectional` was assumed, and
    /// the sides decide without a warning.
    pub direction_implied: bool,
}

pub fn assign(stated: Direction, sides: &Sides) -> Vec<Assignment> {
    if let Some(peers) = sides.peer {
        let externals: Vec<(&Endpoint, Direction, Option<String>)> =
            peers.iter().map(|e| (e, stated, None)).collect();
        return group(externals, Vec::new(), Vec::new());
    }
    let s = sides.source.unwrap_or(&[]);
    let d = sides.destination.unwrap_or(&[]);
    // A side the row leaves out is the monitored host itself.
    let s_nodes = sides.source.is_none() || s.iter().any(Endpoint::is_nodes);
    let d_nodes = sides.destination.is_none() || d.iter().any(Endpoint::is_nodes);
    let mut externals: Vec<&Endpoint> = Vec::new();
    for e in s.iter().chain(d).filter(|e| !e.is_nodes()) {
        if !externals.contains(&e) {
            externals.push(e);
        }
    }
    if externals.is_empty() {
        return vec![nodes(stated, Vec::new())];
    }

    let mut warnings = Vec::new();
    let mut notes = Vec::new();
    if !s_nodes && !d_nodes {
        warnings.push(
            "neither Source nor Destination names the nodes: the monitored host is taken as a \
             node and the others as its peers"
                .to_string(),
        );
    }
    let contradiction = externals.iter().any(|e| {
        let (in_s, in_d) = (s.contains(e), d.contains(e));
        match stated {
            Direction::Outbound => in_s && !in_d,
            Direction::Inbound => in_d && !in_s,
            Direction::Bidirectional => false,
        }
    });
    let mut out = Vec::new();
    if s_nodes && d_nodes {
        if contradiction {
            notes.push(format!(
                "nodes on both sides of a row marked {stated} whose peer is on the wrong side: read as \
                 nodes to peer only, not as traffic between nodes"
            ));
        } else {
            out.push(nodes(stated, Vec::new()));
        }
    }
    let mut readings = Vec::new();
    for e in externals {
        let (in_s, in_d) = (s.contains(e), d.contains(e));
        let name = e.to_string();
        let (direction, warning) = match stated {
            Direction::Bidirectional if in_s && in_d => (Direction::Bidirectional, None),
            Direction::Bidirectional if in_s => (
                Direction::Inbound,
                (!sides.direction_implied).then(|| {
                    format!(
                        "bidirectional, but {name} appears only as Source: read as inbound \
                         connections from {name}"
                    )
                }),
            ),
            Direction::Bidirectional => (
                Direction::Outbound,
                (!sides.direction_implied).then(|| {
                    format!(
                        "bidirectional, but {name} appears only as Destination: read as \
                         outbound connections to {name}"
                    )
                }),
            ),
            Direction::Outbound if in_s && !in_d => (
                Direction::Outbound,
                Some(format!(
                    "Direction is outbound but {name} is named as Source and the Destination is \
                     {}: read as outbound from nodes to {name}",
                    describe(d)
                )),
            ),
            Direction::Inbound if in_d && !in_s => (
                Direction::Inbound,
                Some(format!(
                    "Direction is inbound but {name} is named as Destination and the Source is \
                     {}: read as inbound from {name} to nodes",
                    describe(s)
                )),
            ),
            one_way => (one_way, None),
        };
        readings.push((e, direction, warning));
    }
    let mut grouped = group(readings, notes, warnings);
    out.append(&mut grouped);
    out
}

fn describe(side: &[Endpoint]) -> String {
    if side.is_empty() {
        return "empty".into();
    }
    side.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" and ")
}

fn nodes(direction: Direction, notes: Vec<String>) -> Assignment {
    Assignment {
        direction,
        peer: PeerSpec::Role(NODES.into()),
        notes,
        warnings: Vec::new(),
    }
}

/// One assignment per role; the literal peers of one direction together.
/// A reading's warning goes on its own assignment; the row-wide notes and
/// warnings on the first.
fn group(
    readings: Vec<(&Endpoint, Direction, Option<String>)>,
    notes: Vec<String>,
    warnings: Vec<String>,
) -> Vec<Assignment> {
    let mut out: Vec<Assignment> = Vec::new();
    for (e, direction, warning) in readings {
        let index = match e {
            Endpoint::Role(r) => {
                let spec = PeerSpec::Role(r.clone());
                match out
                    .iter()
                    .position(|a| a.peer == spec && a.direction == direction)
                {
                    Some(i) => i,
                    None => {
                        out.push(Assignment {
                            direction,
                            peer: spec,
                            notes: Vec::new(),
                            warnings: Vec::new(),
                        });
                        out.len() - 1
                    }
                }
            }
            Endpoint::Literal(p) => {
                let found = out.iter().position(|a| {
                    a.direction == direction && matches!(a.peer, PeerSpec::Literals(_))
                });
                match found {
                    Some(i) => {
                        if let PeerSpec::Literals(list) = &mut out[i].peer
                            && !list.contains(p)
                        {
                            list.push(p.clone());
                        }
                        i
                    }
                    None => {
                        out.push(Assignment {
                            direction,
                            peer: PeerSpec::Literals(vec![p.clone()]),
                            notes: Vec::new(),
                            warnings: Vec::new(),
                        });
                        out.len() - 1
                    }
                }
            }
        };
        out[index].warnings.extend(warning);
    }
    if let Some(first) = out.first_mut() {
        first.notes.extend(notes);
        first.warnings.extend(warnings);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::compile::normalize::endpoints;

    fn eps(cell: &str) -> Vec<Endpoint> {
        endpoints::parse(cell).unwrap().endpoints
    }

    fn summary(a: &[Assignment]) -> Vec<String> {
        a.iter()
            .map(|a| format!("{} {}", a.direction, a.peer.label()))
            .collect()
    }

    #[test]
    fn intracluster_and_admin_rows() {
        let (s, d) = (eps("Admin IP addresses and all nodes"), eps("All nodes"));
        let a = assign(
            Direction::Bidirectional,
            &Sides {
                source: Some(&s),
                destination: Some(&d),
                peer: None,
                direction_implied: false,
            },
        );
        assert_eq!(summary(&a), vec!["bidirectional nodes", "inbound admin"]);
        assert_eq!(a.iter().map(|a| a.warnings.len()).sum::<usize>(), 1);
    }

    #[test]
    fn contradicting_smtp_row_reads_as_outbound_to_relay() {
        let (s, d) = (
            eps("All nodes and SMTP relay (provided by customer)"),
            eps("All nodes"),
        );
        let a = assign(
            Direction::Outbound,
            &Sides {
                source: Some(&s),
                destination: Some(&d),
                peer: None,
                direction_implied: false,
            },
        );
        assert_eq!(summary(&a), vec!["outbound smtp-relay"]);
        assert!(a[0].warnings[0].contains("named as Source"));
    }

    #[test]
    fn literal_peers_group_together() {
        let p = eps("apt-mirror.it.auth0.com (52.8.153.197)");
        let a = assign(
            Direction::Outbound,
            &Sides {
                source: None,
                destination: None,
                peer: Some(&p),
                direction_implied: false,
            },
        );
        assert_eq!(
            summary(&a),
            vec!["outbound apt-mirror.it.auth0.com, 52.8.153.197"]
        );
    }
}
