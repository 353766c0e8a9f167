//! `portconform replay`: capture files through the same classifier the
//! kernel programs run, producing the events the live monitor would have
//! written for that traffic, stamped with capture times.
//!
//! Nothing here decides anything: parsing and classification are
//! monitor-common's (the code the XDP/TC programs run), flow deduplication
//! mirrors the kernel's (see [`flows`]), and records are made by the
//! daemon's [`Enricher`]. What replay adds is what a live interface gives
//! for free: which packets are the host's and in which direction, and the
//! time of each packet.

pub mod capture;
pub mod carve;
pub mod command;
pub mod flows;
pub mod link;
pub mod required;

use std::{collections::HashMap, net::IpAddr};

use monitor_common::{
    classify::{self, Verdict},
    packet::{self, ETH_HLEN, Family, ParseError, Parsed, TCP_ACK, TCP_SYN},
    policy::PORT_TABLE_ENTRIES,
    stats::PacketDir,
};

use crate::{
    enrich::{Clock, Enricher, Reported},
    events::{EventRecord, PcapngError, console},
    kernel_tables::KernelTables,
};
use capture::{CaptureSet, Link, Names, Packet};
use carve::Carver;
use flows::{FlowTable, Seen, Sighting};
use link::Start;
use required::{AttemptPacket, Judged};

/// The monitored host's addresses: they decide each packet's direction.
/// Looked up twice per packet, and a host has a handful: sorted lists of
/// addresses as integers, searched by bisection, beat hashing a 17-byte key.
#[derive(Debug, Clone, Default)]
pub struct Hosts {
    v4: Vec<u32>,
    v6: Vec<u128>,
}

fn ip_of(family: Family, addr: &[u8; 16]) -> IpAddr {
    match family {
        Family::V4 => IpAddr::from([addr[0], addr[1], addr[2], addr[3]]),
        Family::V6 => IpAddr::from(*addr),
    }
}

impl Hosts {
    pub fn new(addrs: &[IpAddr]) -> Self {
        let mut hosts = Self::default();
        for addr in addrs {
            match addr {
                IpAddr::V4(a) => hosts.v4.push(u32::from(*a)),
                IpAddr::V6(a) => hosts.v6.push(u128::from(*a)),
            }
        }
        hosts.v4.sort_unstable();
        hosts.v4.dedup();
        hosts.v6.sort_unstable();
        hosts.v6.dedup();
        hosts
    }

    #[inline(always)]
    fn has(&self, family: Family, addr: &[u8; 16]) -> bool {
        match family {
            Family::V4 => {
                let a = u32::from_be_bytes([addr[0], addr[1], addr[2], addr[3]]);
                match &self.v4[..] {
                    [one] => *one == a,
                    many => many.binary_search(&a).is_ok(),
                }
            }
            Family::V6 => {
                let a = u128::from_be_bytes(*addr);
                match &self.v6[..] {
                    [one] => *one == a,
                    many => many.binary_search(&a).is_ok(),
                }
            }
        }
    }

    /// The direction a live monitor on the host would have seen the packet
    /// in; `None` for traffic that is not the host's.
    #[inline]
    pub fn direction(&self, p: &Parsed) -> Option<PacketDir> {
        if self.has(p.family, &p.dst) {
            Some(PacketDir::Ingress)
        } else if self.has(p.family, &p.src) {
            Some(PacketDir::Egress)
        } else {
            None
        }
    }
}

/// What replay did with one packet: the kernel's decision, or why none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Classified(PacketDir, Verdict),
    /// The parser gave up (the kernel counts these and passes the packet).
    Unparsed(ParseError),
    /// Neither address is one of the host's.
    NotHost,
    /// Of a link type replay cannot read.
    UnsupportedLink,
}

/// Packet counts for the closing summary; the kernel keeps the same ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    pub packets: u64,
    pub allowed: u64,
    pub unexpected: u64,
    pub infrastructure: u64,
    pub fragments: u64,
    pub not_ip: u64,
    pub truncated: u64,
    pub malformed: u64,
    pub too_deep: u64,
    pub not_host: u64,
    pub unsupported_link: u64,
    pub new_flows: u64,
    pub first_ts_ns: Option<u64>,
    pub last_ts_ns: u64,
}

/// The buffer [`parse_frame`] parsed (offsets in its `Parsed` are into it).
fn frame_view<'b>(link: Link, data: &'b [u8], scratch: &'b [u8]) -> &'b [u8] {
    match link {
        Link::Sll2 => scratch,
        _ => match link.start(data) {
            Ok(Start::Ethernet(o) | Start::Ip(o)) => data.get(o..).unwrap_or_default(),
            Err(_) => data,
        },
    }
}

/// Parses a captured frame as the kernel would have seen it on the wire,
/// and the length the kernel would have counted (an Ethernet frame's).
///
/// A frame the capture cut short (its snapshot length: `tcpdump -s 68`)
/// may end inside headers the kernel reads whole, a TCP header's options
/// say, though what classifying it takes is there; see [`parse_cut`].
#[inline(always)]
pub fn parse_frame(
    link: Link,
    data: &[u8],
    orig_len: u32,
    scratch: &mut Vec<u8>,
) -> Result<(Parsed, u64), ParseError> {
    match parse_whole(link, data, orig_len, scratch) {
        Err(ParseError::Truncated) if (data.len() as u64) < u64::from(orig_len) => {
            parse_cut(link, data, orig_len, scratch)
        }
        r => r,
    }
}

/// Bytes of zeros a cut frame is read with, past what was captured: more
/// than an IPv4 header and a TCP header with all their options.
const CUT_PAD: usize = 512;

/// A frame cut by the snapshot length, read as if the bytes it lacks were
/// zeros, and taken only when every byte classification reads was
/// captured: the link header, the IP headers up to the transport header,
/// and of that the ports and TCP flags (ICMP's type and code). What the
/// zeros stand for (TCP or IP options, a payload) is never read. A frame
/// cut before those bytes stays truncated, as does a runt (a frame that
/// was that short on the wire: the kernel would not have read it either).
#[cold]
#[inline(never)]
fn parse_cut(
    link: Link,
    data: &[u8],
    orig_len: u32,
    scratch: &mut Vec<u8>,
) -> Result<(Parsed, u64), ParseError> {
    // Where the parsed buffer's bytes stop being captured ones.
    let captured = match link {
        Link::Sll2 if data.len() >= 20 => ETH_HLEN + (data.len() - 20),
        Link::Sll2 => return Err(ParseError::Truncated),
        _ => match link.start(data)? {
            Start::Ethernet(o) | Start::Ip(o) => data.len().saturating_sub(o),
        },
    };
    let missing = (orig_len as usize - data.len()).min(CUT_PAD);
    let mut padded = Vec::with_capacity(data.len() + missing);
    padded.extend_from_slice(data);
    padded.resize(data.len() + missing, 0);
    // Whatever the zeros make the parser say (a TCP data offset of 0 is
    // malformed), the frame is what it was: truncated.
    let (p, wire) =
        parse_whole(link, &padded, orig_len, scratch).map_err(|_| ParseError::Truncated)?;
    let needed = if p.fragment == packet::Fragment::Later {
        0
    } else {
        match p.proto {
            packet::IPPROTO_TCP => 14,
            packet::IPPROTO_UDP => 4,
            packet::IPPROTO_ICMP | packet::IPPROTO_ICMPV6 => 2,
            _ => 0,
        }
    };
    if usize::from(p.l4_offset) + needed <= captured {
        Ok((p, wire))
    } else {
        Err(ParseError::Truncated)
    }
}

#[inline(always)]
fn parse_whole(
    link: Link,
    data: &[u8],
    orig_len: u32,
    scratch: &mut Vec<u8>,
) -> Result<(Parsed, u64), ParseError> {
    match link {
        // SLL2 puts the protocol first: rebuild an Ethernet-shaped header.
        Link::Sll2 => {
            if data.len() < 20 {
                return Err(ParseError::Truncated);
            }
            scratch.clear();
            scratch.extend_from_slice(&[0u8; 12]);
            scratch.extend_from_slice(&data[..2]);
            scratch.extend_from_slice(&data[20..]);
            let wire = (u64::from(orig_len) + ETH_HLEN as u64).saturating_sub(20);
            packet::parse_ethernet(&scratch[..]).map(|p| (p, wire))
        }
        // Every other link: the kernel's own parsers, from where the link
        // header says the network layer starts.
        _ => {
            let start = link.start(data)?;
            let wire = link::wire_len(orig_len, start);
            match start {
                Start::Ethernet(o) => packet::parse_ethernet(data.get(o..).unwrap_or_default()),
                Start::Ip(o) => packet::parse_ip(data.get(o..).unwrap_or_default(), 0),
            }
            .map(|p| (p, wire))
        }
    }
}

/// The policy maps as replay reads them: `PC_PORTCLASS` as the kernel
/// holds it, one array indexed by direction, protocol class and port (the
/// tables' ordered map costs a tree walk per packet); everything else
/// straight from the tables. The array is 1 MiB of zeroed memory that the
/// system maps lazily: only the pages of ports the policy names or the
/// capture uses become resident, so memory stays bounded by it.
struct Policy<'a> {
    tables: &'a KernelTables,
    ports: Vec<u16>,
}

impl<'a> Policy<'a> {
    fn new(tables: &'a KernelTables) -> Self {
        let mut ports = vec![0u16; PORT_TABLE_ENTRIES as usize];
        for (&index, &id) in &tables.port_classes {
            if let Some(slot) = ports.get_mut(index as usize) {
                *slot = id;
            }
        }
        Self { tables, ports }
    }
}

impl classify::PolicyLookup for Policy<'_> {
    #[inline]
    fn port_class(&self, index: u32) -> u16 {
        self.ports.get(index as usize).copied().unwrap_or(0)
    }

    #[inline]
    fn rule_set(&self, id: u16) -> Option<&monitor_common::policy::RuleSet> {
        self.tables.rule_set(id)
    }

    #[inline]
    fn peer_roles_v4(&self, addr: u32) -> u64 {
        self.tables.peer_roles_v4(addr)
    }

    #[inline]
    fn peer_roles_v6(&self, addr: &[u8; 16]) -> u64 {
        self.tables.peer_roles_v6(addr)
    }
}

/// The replay engine: one packet in, the live monitor's records out.
pub struct Replayer<'a> {
    tables: &'a KernelTables,
    policy: Policy<'a>,
    hosts: Hosts,
    flows: FlowTable,
    reported: Reported,
    /// Its interfaces are (ifindex, name): ifindex is the interface's
    /// position in the capture set's names, plus one (0 is no interface to
    /// the kernel). Its host is named in every record (the capture's host).
    enricher: Enricher,
    scratch: Vec<u8>,
    pub counters: Counters,
    pub required: required::Required,
    /// `--pcap`: where offending packets are carved to.
    carver: Option<Carver>,
    /// The first error writing the carved file; carving stops at it.
    carve_error: Option<PcapngError>,
}

/// How long a required flow's attempt may go unanswered, unless told.
pub const DEFAULT_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

impl<'a> Replayer<'a> {
    pub fn new(tables: &'a KernelTables, hosts: Hosts) -> Self {
        Self::with_flow_table(tables, hosts, FlowTable::default())
    }

    /// With a flow table of another size (tests of eviction).
    pub fn with_flow_table(tables: &'a KernelTables, hosts: Hosts, flows: FlowTable) -> Self {
        Self {
            tables,
            policy: Policy::new(tables),
            hosts,
            flows,
            reported: Reported::default(),
            enricher: Enricher {
                // One copy per run, shared with the records it explains.
                tables: std::sync::Arc::new(tables.clone()),
                ifaces: Vec::new(),
                // Flow times are capture times, nanoseconds since the epoch.
                clock: Clock::epoch(),
                host: None,
            },
            scratch: Vec::new(),
            counters: Counters::default(),
            required: required::Required::new(tables, DEFAULT_HANDSHAKE_TIMEOUT.as_nanos() as u64),
            carver: None,
            carve_error: None,
        }
    }

    /// Judges required flows' attempts with this timeout.
    pub fn with_handshake_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.required = required::Required::new(self.tables, timeout.as_nanos() as u64);
        if self.carver.is_some() {
            self.required.keep_judged();
        }
        self
    }

    /// Carves the offending packets into `carver`'s file.
    pub fn with_carver(mut self, carver: Carver) -> Self {
        self.required.keep_judged();
        self.carver = Some(carver);
        self
    }

    pub fn carver(&self) -> Option<&Carver> {
        self.carver.as_ref()
    }

    /// The error that stopped carving, if one did: the caller stops the
    /// replay there rather than leave a file short without saying so.
    pub fn take_carve_error(&mut self) -> Option<PcapngError> {
        self.carve_error.take()
    }

    /// Runs one carving step; an error ends carving and is kept for
    /// [`take_carve_error`](Self::take_carve_error).
    #[inline(never)]
    fn carve(&mut self, f: impl FnOnce(&mut Carver) -> Result<(), PcapngError>) {
        if let Some(c) = self.carver.as_mut()
            && let Err(e) = f(c)
        {
            self.carver = None;
            self.carve_error = Some(e);
        }
    }

    /// Carves or forgets the held packets of the attempts a sweep judged.
    #[inline(never)]
    fn carve_judged(&mut self, names: &Names) {
        let Some(judged) = self.required.judged.as_mut() else {
            return;
        };
        if judged.is_empty() {
            return;
        }
        let judged = std::mem::take(judged);
        self.carve(|c| {
            for j in &judged {
                match j {
                    Judged::Blocked(key, line) => c.blocked(key, names, line)?,
                    Judged::Dropped(key) => c.release(key),
                }
            }
            Ok(())
        });
    }

    /// Names the host in every record.
    pub fn with_host_label(mut self, host: impl Into<String>) -> Self {
        self.enricher.host = Some(host.into());
        self
    }

    pub fn host_label(&self) -> Option<&str> {
        self.enricher.host.as_deref()
    }

    #[inline]
    fn sync_names(&mut self, names: &Names) {
        if names.all().len() == self.enricher.ifaces.len() {
            return;
        }
        for (i, name) in names
            .all()
            .iter()
            .enumerate()
            .skip(self.enricher.ifaces.len())
        {
            self.enricher.ifaces.push((i as u32 + 1, name.clone()));
        }
    }

    /// Flow evictions so far: the kernel counts these too.
    pub fn evictions(&self) -> u64 {
        self.flows.evictions
    }

    /// Flows currently tracked.
    pub fn flows(&self) -> usize {
        self.flows.len()
    }

    /// Classifies one packet; records it gives rise to go to `out`.
    pub fn packet(&mut self, pkt: &Packet, names: &Names, out: &mut Vec<EventRecord>) -> Outcome {
        let c = &mut self.counters;
        c.packets += 1;
        c.first_ts_ns.get_or_insert(pkt.ts_ns);
        c.last_ts_ns = c.last_ts_ns.max(pkt.ts_ns);
        if let Link::Unsupported(_) = pkt.link {
            c.unsupported_link += 1;
            return Outcome::UnsupportedLink;
        }
        let (parsed, bytes) = match parse_frame(pkt.link, pkt.data, pkt.orig_len, &mut self.scratch)
        {
            Ok(v) => v,
            Err(e) => {
                match e {
                    ParseError::NotIp => c.not_ip += 1,
                    ParseError::Truncated => c.truncated += 1,
                    ParseError::Malformed => c.malformed += 1,
                    ParseError::TooDeep => c.too_deep += 1,
                }
                return Outcome::Unparsed(e);
            }
        };
        let Some(dir) = self.hosts.direction(&parsed) else {
            c.not_host += 1;
            return Outcome::NotHost;
        };
        let verdict = classify::classify(&self.policy, &self.flows, &parsed, dir);
        // Required flows' packets and ICMP errors are tracked; any other
        // packet only moves capture time on, which matters when it makes a
        // sweep of pending attempts due.
        if matches!(
            verdict,
            Verdict::Allowed { required: true, .. } | Verdict::Infrastructure
        ) || self.required.sweep_due(pkt.ts_ns)
        {
            self.sync_names(names);
            let view = frame_view(pkt.link, pkt.data, &self.scratch);
            let attempt = self.required.packet(
                view,
                &parsed,
                &verdict,
                dir,
                pkt.ts_ns,
                pkt.iface as u32 + 1,
                &self.enricher,
                out,
            );
            if self.carver.is_some() {
                self.carve_judged(names);
                match attempt {
                    Some(AttemptPacket::Part(key)) => self.carve(|c| {
                        c.hold(&key, pkt);
                        Ok(())
                    }),
                    Some(AttemptPacket::Answered(key)) => self.carve(|c| {
                        c.release(&key);
                        Ok(())
                    }),
                    None => {}
                }
            }
        }
        let c = &mut self.counters;
        match verdict {
            Verdict::Allowed { .. } => c.allowed += 1,
            Verdict::Infrastructure => c.infrastructure += 1,
            Verdict::Fragment => c.fragments += 1,
            Verdict::Unexpected {
                reason,
                nearest_rule,
                conn,
            } => {
                c.unexpected += 1;
                let sighting = Sighting {
                    parsed: &parsed,
                    conn,
                    reason,
                    nearest_rule,
                    ifindex: pkt.iface as u32 + 1,
                    dir,
                    bytes,
                    frame: pkt.data,
                    ts_ns: pkt.ts_ns,
                };
                let seen = self.flows.unexpected(&sighting);
                if let Seen::Known(nth) = seen {
                    if self.carver.as_ref().is_some_and(|c| c.wants(nth)) {
                        let comment =
                            carve::later_packet_comment(&parsed, dir, names.get(pkt.iface), nth);
                        self.carve(|c| c.unexpected(pkt, names, &comment));
                    }
                } else if let Seen::New(ev, evicted) = seen {
                    self.counters.new_flows += 1;
                    self.sync_names(names);
                    // The evicted flow's counts are final: say so before the
                    // table forgets them (the live daemon's periodic refresh
                    // would have, most of the time).
                    if let Some((key, state)) = evicted {
                        if let Some(r) = self.reported.update(&self.enricher, &key, &state) {
                            out.push(r);
                        }
                        // What was reported of evicted flows is dropped in
                        // batches, so memory stays bounded by the table.
                        if self
                            .flows
                            .evictions
                            .is_multiple_of(self.flows.capacity() as u64)
                        {
                            self.reported.retain(&self.flows.keys());
                        }
                    }
                    let record = self.enricher.first_sighting(&ev);
                    self.reported.first(&ev, &record);
                    if self.carver.is_some() {
                        let line = console::line(&record).unwrap_or_default();
                        self.carve(|c| c.unexpected(pkt, names, &line));
                    }
                    out.push(record);
                }
            }
        }
        Outcome::Classified(dir, verdict)
    }

    /// The end of the capture: the final `update` record of every flow whose
    /// counts moved since its first sighting (what the daemon writes on exit).
    pub fn finish(&mut self, names: &Names, out: &mut Vec<EventRecord>) {
        self.sync_names(names);
        let flows = self.flows.drain();
        self.required
            .finish(self.counters.last_ts_ns, &self.enricher, out);
        self.carve_judged(names);
        self.carve(Carver::finish);
        for (key, state) in flows {
            if let Some(r) = self.reported.update(&self.enricher, &key, &state) {
                out.push(r);
            }
        }
        self.reported = Reported::default();
    }
}

/// Packets read to guess the host when no `--host` is given.
pub const INFER_PACKETS: u64 = 100_000;
/// Distinct addresses tallied while guessing; a scan of a whole network
/// must not grow the tally without bound.
const INFER_ADDRESSES: usize = 65_536;

/// The guessed host and the evidence, for the message that announces it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inference {
    pub hosts: Vec<IpAddr>,
    /// (address, packets it is in, IP packets of its family looked at).
    pub evidence: Vec<(IpAddr, u64, u64)>,
}

#[derive(Default, Clone, Copy)]
struct Tally {
    packets: u64,
    syn_to: u64,
}

/// Guesses the capture's host from the first [`INFER_PACKETS`] packets: a
/// capture taken on a host has the host's address in nearly every packet,
/// so the address in the most packets is taken (ties: the one most often
/// the destination of a connection request), and an address of the other
/// family too if it is in most of that family's packets. Broadcast,
/// multicast and unspecified addresses are never the host. `set` is read
/// from its start; when no guess comes of it, its stats say why.
pub fn infer_hosts(set: &mut CaptureSet) -> Option<Inference> {
    let mut tally: HashMap<IpAddr, Tally> = HashMap::new();
    let mut per_family = [0u64; 2];
    let mut seen = 0u64;
    let mut scratch = Vec::new();
    let _ = set.for_each(|pkt, _| {
        seen += 1;
        if seen > INFER_PACKETS {
            return Err(());
        }
        let Ok((p, _)) = parse_frame(pkt.link, pkt.data, pkt.orig_len, &mut scratch) else {
            return Ok(());
        };
        per_family[p.family as usize] += 1;
        let syn = p.proto == packet::IPPROTO_TCP
            && p.tcp_flags & TCP_SYN != 0
            && p.tcp_flags & TCP_ACK == 0;
        for (addr, is_dst) in [(&p.src, false), (&p.dst, true)] {
            let ip = ip_of(p.family, addr);
            if !could_be_host(ip) {
                continue;
            }
            if tally.len() >= INFER_ADDRESSES && !tally.contains_key(&ip) {
                continue;
            }
            let t = tally.entry(ip).or_default();
            t.packets += 1;
            if syn && is_dst {
                t.syn_to += 1;
            }
        }
        Ok(())
    });
    let best = |v6: bool| {
        tally
            .iter()
            .filter(|(ip, _)| ip.is_ipv6() == v6)
            .max_by(|a, b| {
                (a.1.packets, a.1.syn_to)
                    .cmp(&(b.1.packets, b.1.syn_to))
                    // Deterministic among equals: the lower address.
                    .then_with(|| b.0.cmp(a.0))
            })
            .map(|(ip, t)| (*ip, t.packets))
    };
    let candidates = [best(false), best(true)];
    let first = candidates
        .iter()
        .flatten()
        .max_by_key(|(_, n)| *n)
        .copied()?;
    let mut inference = Inference {
        hosts: Vec::new(),
        evidence: Vec::new(),
    };
    for (ip, n) in candidates.into_iter().flatten() {
        let family_total = per_family[usize::from(ip.is_ipv6())];
        if ip == first.0 || n * 2 > family_total {
            inference.hosts.push(ip);
            inference.evidence.push((ip, n, family_total));
        }
    }
    Some(inference)
}

fn could_be_host(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => !(a.is_broadcast() || a.is_multicast() || a.is_unspecified()),
        IpAddr::V6(a) => !(a.is_multicast() || a.is_unspecified()),
    }
}

#[cfg(test)]
mod tests {
    use monitor_common::{
        classify::PolicyLookup,
        policy::{ConnDir, L4, PORT_TABLE_ENTRIES, port_index},
    };

    use super::{KernelTables, Policy};

    /// A SYN with 20 bytes of TCP options, as `tcpdump -s 68` cuts it.
    #[test]
    fn a_frame_cut_after_its_ports_and_flags_is_read_a_runt_is_not() {
        use monitor_common::packet::{ParseError, TCP_SYN};

        use super::{Link, parse_frame};
        let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00];
        f.extend_from_slice(&[0x45, 0, 0, 60, 0, 1, 0x40, 0, 64, 6, 0, 0]);
        f.extend_from_slice(&[198, 51, 100, 7, 192, 0, 2, 1]);
        f.extend_from_slice(&[
            0x9c, 0x40, 0x1b, 0x58, 0, 0, 0, 1, 0, 0, 0, 0, 0xa0, TCP_SYN,
        ]);
        f.extend_from_slice(&[0xff, 0xff, 0, 0, 0, 0]);
        f.extend_from_slice(&[
            2, 4, 5, 0xb4, 4, 2, 8, 10, 1, 2, 3, 4, 0, 0, 0, 0, 1, 3, 3, 7,
        ]);
        assert_eq!(f.len(), 74);
        let mut scratch = Vec::new();
        let whole = parse_frame(Link::Ethernet, &f, 74, &mut scratch).unwrap();
        let (cut, wire) = parse_frame(Link::Ethernet, &f[..68], 74, &mut scratch).unwrap();
        assert_eq!(
            (cut.sport, cut.dport, cut.tcp_flags),
            (40000, 7000, TCP_SYN)
        );
        assert_eq!(
            (cut.src, cut.dst, wire),
            (whole.0.src, whole.0.dst, whole.1)
        );
        // Cut before the flags: not read.
        assert_eq!(
            parse_frame(Link::Ethernet, &f[..45], 74, &mut scratch).err(),
            Some(ParseError::Truncated)
        );
        // As short on the wire: the kernel could not read it either.
        assert_eq!(
            parse_frame(Link::Ethernet, &f[..68], 68, &mut scratch).err(),
            Some(ParseError::Truncated)
        );
    }

    #[test]
    fn port_array_answers_what_the_tables_hold() {
        let mut t = KernelTables::default();
        let mut put = |dir, l4, ports: std::ops::RangeInclusive<u16>, id| {
            for p in ports {
                t.port_classes.insert(port_index(dir as u32, l4, p), id);
            }
        };
        put(ConnDir::Inbound, L4::Tcp, 0..=0, 1);
        put(ConnDir::Inbound, L4::Tcp, 22..=22, 2);
        put(ConnDir::Inbound, L4::Tcp, 23..=23, 2);
        put(ConnDir::Inbound, L4::Tcp, 24..=24, 3);
        put(ConnDir::Inbound, L4::Tcp, 32768..=60999, 4);
        put(ConnDir::Inbound, L4::Tcp, 65535..=65535, 4);
        put(ConnDir::Inbound, L4::Udp, 0..=0, 4);
        put(ConnDir::Outbound, L4::Udp, 53..=53, 5);
        put(ConnDir::Outbound, L4::Icmpv6, 65535..=65535, 6);
        let policy = Policy::new(&t);
        for index in 0..PORT_TABLE_ENTRIES {
            assert_eq!(policy.port_class(index), t.port_class(index), "{index:#x}");
        }
        assert_eq!(Policy::new(&KernelTables::default()).port_class(5), 0);
    }
}
