//! The aggregated report: what the terminal summary, the JSON output and the
//! HTML page are all rendered from, so that the three never disagree. The
//! JSON form is this structure serialized, for reviewers' scripts.

use std::{collections::BTreeMap, net::IpAddr, time::SystemTime};

use serde::{Serialize, Serializer};

use super::load::{BadLine, FileStats};
use crate::events::{ConnDir, IpProto, RequiredState, rfc3339};

fn time<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&rfc3339(*t))
}

fn opt_time<S: Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.collect_str(&rfc3339(*t)),
        None => s.serialize_none(),
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub inputs: Inputs,
    /// Every host, in name order; the matrix's columns.
    pub hosts: Vec<HostSummary>,
    /// Required rules, in policy order when a policy was given, then by id.
    pub required: Vec<RequiredRow>,
    /// Blocked required flows, still blocked first, then by host and rule.
    pub blocked: Vec<BlockedFlow>,
    pub unexpected: Unexpected,
}

/// What was read, and what could not be used.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Inputs {
    pub files: Vec<FileStats>,
    pub records: u64,
    pub bad_lines: u64,
    /// The first bad lines (the count above has them all).
    pub bad_line_samples: Vec<BadLine>,
    /// Lines of kinds this version does not know, by kind.
    pub unknown_kinds: BTreeMap<String, u64>,
    /// Per host and instance, the line numbers read and the gaps in them.
    pub sequences: Vec<super::sequence::InstanceLines>,
    /// Instances past the bound per host, not checked.
    pub instances_not_checked: u64,
    /// `--policy FILE` or `--profile NAME`, when one was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HostSummary {
    pub host: String,
    pub unexpected_flows: u64,
    /// Packets initiator → responder over those flows.
    pub unexpected_packets: u64,
    pub blocked_flows: u64,
    pub recovered_flows: u64,
    pub required_working: u64,
    pub required_blocked: u64,
    pub required_not_seen: u64,
}

/// One required rule and how it fared on each host.
#[derive(Debug, Clone, Serialize)]
pub struct RequiredRow {
    pub rule: String,
    /// `doc:line` of the rule.
    pub source: Option<String>,
    pub service: String,
    pub proto: String,
    pub ports: String,
    pub direction: String,
    pub peer: String,
    /// By host; a host with nothing to say about the rule is absent.
    pub hosts: BTreeMap<String, RequiredCell>,
}

/// Where a matrix cell's status comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Basis {
    /// The `required` line the run or replay ended with.
    RequiredLine,
    /// No `required` line (the run did not end cleanly, or the file with it
    /// was not given): derived from the host's blocked/recovered events.
    Events,
    /// The policy requires the rule and the host said nothing about it.
    Policy,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequiredCell {
    pub status: RequiredState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub working: u64,
    pub blocked_flows: u64,
    pub failed_attempts: u64,
    /// Flows of this rule on this host that were blocked and later worked.
    pub recovered_flows: u64,
    pub basis: Basis,
    /// When the verdict was written (the `required` line's `ts`).
    #[serde(serialize_with = "opt_time", skip_serializing_if = "Option::is_none")]
    pub as_of: Option<SystemTime>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BlockedFlow {
    pub host: String,
    pub rule: String,
    pub source: Option<String>,
    pub iface: String,
    pub direction: ConnDir,
    pub proto: IpProto,
    pub src: IpAddr,
    pub dst: IpAddr,
    /// One client port seen; not part of the flow's identity.
    pub sport: u16,
    pub dport: u16,
    pub reason: Option<String>,
    /// Failed attempts.
    pub attempts: u64,
    #[serde(serialize_with = "opt_time")]
    pub first_seen: Option<SystemTime>,
    #[serde(serialize_with = "opt_time")]
    pub last_seen: Option<SystemTime>,
    /// When it last recovered, if it did.
    #[serde(serialize_with = "opt_time", skip_serializing_if = "Option::is_none")]
    pub recovered_at: Option<SystemTime>,
    /// Recovered and not blocked again since.
    pub recovered: bool,
}

/// Unexpected flows, with the views a reviewer starts from.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Unexpected {
    pub flows_total: u64,
    pub packets_total: u64,
    /// By service: which ports are reached that nobody allows.
    pub by_port: Vec<PortGroup>,
    /// By peer: who does it.
    pub by_peer: Vec<PeerGroup>,
    /// Every flow, most packets first.
    pub flows: Vec<UnexpectedFlow>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortGroup {
    pub direction: ConnDir,
    pub proto: IpProto,
    pub dport: u16,
    pub flows: u64,
    pub peers: u64,
    pub hosts: Vec<String>,
    pub packets: u64,
    pub reply_packets: u64,
    pub bytes: u64,
    /// The nearest rule of the group's busiest flow, and its `doc:line`.
    pub rule: Option<String>,
    pub source: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PeerGroup {
    /// The remote end: the initiator of inbound flows, the responder of
    /// outbound ones.
    pub peer: IpAddr,
    pub flows: u64,
    /// `tcp/22 in`, busiest first (at most [`PEER_PORTS_SHOWN`]).
    pub ports: Vec<String>,
    pub hosts: Vec<String>,
    pub packets: u64,
    pub reply_packets: u64,
    pub bytes: u64,
}

/// Ports listed per peer; a scanner reaches thousands.
pub const PEER_PORTS_SHOWN: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnexpectedFlow {
    pub host: String,
    pub iface: String,
    pub direction: ConnDir,
    pub proto: IpProto,
    /// The initiator.
    pub src: IpAddr,
    /// The responder.
    pub dst: IpAddr,
    /// One client port seen; not part of the flow's identity.
    pub sport: u16,
    /// The service port.
    pub dport: u16,
    /// Packets initiator → responder.
    pub count: u64,
    pub bytes: u64,
    pub reply_packets: u64,
    #[serde(serialize_with = "time")]
    pub first_seen: SystemTime,
    #[serde(serialize_with = "time")]
    pub last_seen: SystemTime,
    /// Separate sightings (a restart, or a flow the monitor had evicted and
    /// saw again); their counts add up.
    pub sightings: u64,
    pub rule: Option<String>,
    pub source: Option<String>,
    pub reason: Option<String>,
    pub note: Option<String>,
    pub peer_roles: Vec<String>,
}

impl UnexpectedFlow {
    pub fn peer(&self) -> IpAddr {
        match self.direction {
            ConnDir::Inbound => self.src,
            ConnDir::Outbound => self.dst,
        }
    }
}

/// `tcp/22 in`, `icmp/8 out`: a service as one short token.
pub fn service_label(proto: IpProto, dport: u16, direction: ConnDir) -> String {
    let dir = match direction {
        ConnDir::Inbound => "in",
        ConnDir::Outbound => "out",
    };
    format!("{proto}/{dport} {dir}")
}
