//! Which proposed row a flow belongs to: the host's role, the direction,
//! the protocol, the service port and the peer, named as a policy names it.
//! The peer is its role when it has one (the monitor's own reading in the
//! event, else the inventory), else its network (/24, /64 by default): a
//! row per peer address would be as useless to review as one per flow.
//! Events carry no DNS name of their own: a name the inventory binds to a
//! role reaches the row as that role, through the event's `peer_roles`.

use std::{collections::HashMap, fmt, net::IpAddr};

use ipnet::IpNet;

use super::collect::FlowId;
use crate::{
    events::{ConnDir, IpProto},
    policy::{Inventory, Policy, model::NODES, roles::host_roles},
};

/// The other end of a proposed row.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PeerKey {
    /// A role of the policy.
    Role(String),
    /// The peer's network, for a peer with no role.
    Net(IpNet),
}

impl fmt::Display for PeerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerKey::Role(r) => f.write_str(r),
            PeerKey::Net(n) => write!(f, "{n}"),
        }
    }
}

/// One proposed row: what the flows in it share. Fields in the order rows
/// are sorted: direction, protocol, port, then the ends.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupKey {
    pub direction: ConnDir,
    pub proto: IpProto,
    pub port: u16,
    pub local_role: String,
    pub peer: PeerKey,
}

impl fmt::Display for GroupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (from, to) = match self.direction {
            ConnDir::Inbound => (self.peer.to_string(), self.local_role.clone()),
            ConnDir::Outbound => (self.local_role.clone(), self.peer.to_string()),
        };
        write!(
            f,
            "{} {} {} from {from} to {to}",
            self.proto, self.port, self.direction
        )
    }
}

/// How peers without a role are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefixes {
    pub v4: u8,
    pub v6: u8,
}

impl Default for Prefixes {
    fn default() -> Self {
        Prefixes { v4: 24, v6: 64 }
    }
}

/// Names hosts and peers by role, from the policy and the inventory.
pub struct Grouper<'a> {
    policy: Option<&'a Policy>,
    inventory: Option<&'a Inventory>,
    prefixes: Prefixes,
    /// Local address → its role, or why it has none.
    local: HashMap<IpAddr, Result<String, String>>,
}

impl<'a> Grouper<'a> {
    pub fn new(
        policy: Option<&'a Policy>,
        inventory: Option<&'a Inventory>,
        prefixes: Prefixes,
    ) -> Self {
        Grouper {
            policy,
            inventory,
            prefixes,
            local: HashMap::new(),
        }
    }

    /// The row of `flow` (whose peer the monitor knew as `peer_roles`), or
    /// why it has none: a host that plays no role of the policy.
    pub fn key(&mut self, flow: &FlowId, peer_roles: &[String]) -> Result<GroupKey, String> {
        let local_role = self.local_role(flow.local())?;
        Ok(GroupKey {
            local_role,
            direction: flow.direction,
            proto: flow.proto,
            port: flow.dport,
            peer: self.peer(flow.peer(), peer_roles),
        })
    }

    /// The role of the monitored host that has address `addr`: the
    /// product's only role, else the inventory's binding (the first in name
    /// order when it plays several); without a policy, `nodes`.
    fn local_role(&mut self, addr: IpAddr) -> Result<String, String> {
        let (policy, inventory) = (self.policy, self.inventory);
        self.local
            .entry(addr)
            .or_insert_with(|| match policy {
                None => Ok(NODES.to_string()),
                Some(policy) => host_roles(policy, &[], inventory, &[addr])
                    .map_err(|e| e.to_string())
                    .and_then(|r| {
                        r.roles
                            .into_iter()
                            .next()
                            .ok_or_else(|| format!("{addr} plays no role of the policy"))
                    }),
            })
            .clone()
    }

    /// The peer as a row names it: the role the event gives (first in name
    /// order), else the inventory role whose binding holds it most
    /// narrowly, else its network.
    fn peer(&self, addr: IpAddr, peer_roles: &[String]) -> PeerKey {
        let known = |r: &str| self.policy.is_none_or(|p| p.roles().contains(&r));
        let mut event_roles: Vec<&String> = peer_roles
            .iter()
            .filter(|r| !r.is_empty() && known(r))
            .collect();
        event_roles.sort();
        if let Some(role) = event_roles.first() {
            return PeerKey::Role((*role).clone());
        }
        if let Some(inventory) = self.inventory {
            let best = inventory
                .iter()
                .filter_map(|(role, b)| {
                    b.nets
                        .iter()
                        .filter(|n| n.contains(&addr))
                        .map(|n| (std::cmp::Reverse(n.prefix_len()), role))
                        .min()
                })
                .min();
            if let Some((_, role)) = best {
                return PeerKey::Role(role.to_string());
            }
        }
        let prefix = match addr {
            IpAddr::V4(_) => self.prefixes.v4,
            IpAddr::V6(_) => self.prefixes.v6,
        };
        let net = IpNet::new(addr, prefix)
            .map(|n| n.trunc())
            .unwrap_or_else(|_| IpNet::from(addr));
        PeerKey::Net(net)
    }
}
