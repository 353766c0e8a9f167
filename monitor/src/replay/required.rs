//! Required-flow tracking in replay: the kernel's attempt table as a
//! bounded `HashMap`, driven by the same [`handshake`] logic, judged in
//! capture time by the daemon's [`Tracker`].

use std::collections::HashMap;

use monitor_common::{
    Parsed,
    classify::Verdict,
    handshake::{self, Applied, Handshake, HandshakeKey, HandshakeTable, MAX_HANDSHAKES, Track},
    stats::PacketDir,
};

use super::flows::{self, Packed};
use crate::{
    enrich::Enricher,
    events::{EventKind, EventRecord, RequiredStatus, required_line},
    kernel_tables::KernelTables,
    required::{
        self, Tracker, records,
        tracker::{Blocked, RuleVerdict},
    },
};

type Hasher = foldhash::fast::RandomState;

/// The attempt table, capped like the kernel's. Keys come from packets:
/// foldhash, seeded at random per process, keeps the per-packet lookups
/// cheap without letting a capture be crafted offline to collide, and the
/// table never holds more than [`MAX_HANDSHAKES`].
///
/// An IPv4 attempt's 44-byte key is mostly zeros: it is kept as 16 bytes,
/// which halves the memory a lookup walks (a capture full of unanswered
/// attempts makes this table the biggest random-access structure per
/// packet). Every key maps to exactly one of the two maps, and back.
#[derive(Default)]
struct Table {
    v4: HashMap<V4Key, Handshake, Hasher>,
    other: HashMap<HandshakeKey, Handshake, Hasher>,
}

/// A [`HandshakeKey`] whose flow packs ([`flows::pack_v4`]) and whose own
/// padding is zero: the flow's words with the initiator's port in bits
/// 16..32 of the second.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct V4Key(Packed);

impl V4Key {
    #[inline]
    fn of(key: &HandshakeKey) -> Option<V4Key> {
        if key._pad != 0 || key._pad2 != 0 {
            return None;
        }
        let [addrs, rest] = flows::pack_v4(&key.flow)?;
        Some(V4Key(Packed([
            addrs,
            rest | u64::from(key.initiator_port) << 16,
        ])))
    }

    fn key(&self) -> HandshakeKey {
        let [addrs, rest] = self.0.0;
        HandshakeKey {
            flow: flows::unpack_v4([addrs, rest]),
            initiator_port: (rest >> 16) as u16,
            _pad: 0,
            _pad2: 0,
        }
    }
}

impl Table {
    fn len(&self) -> usize {
        self.v4.len() + self.other.len()
    }

    fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.other.is_empty()
    }

    /// The attempts `pick` chooses, with their keys (unpacked only for
    /// those: a sweep looks at every attempt and picks few).
    fn select<T>(
        &self,
        mut pick: impl FnMut(&Handshake) -> Option<T>,
    ) -> Vec<(HandshakeKey, Handshake, T)> {
        let mut out = Vec::new();
        for (k, h) in &self.v4 {
            if let Some(t) = pick(h) {
                out.push((k.key(), *h, t));
            }
        }
        for (k, h) in &self.other {
            if let Some(t) = pick(h) {
                out.push((*k, *h, t));
            }
        }
        out
    }
}

impl HandshakeTable for Table {
    #[inline]
    fn get_mut(&mut self, key: &HandshakeKey) -> Option<&mut Handshake> {
        match V4Key::of(key) {
            Some(k) => self.v4.get_mut(&k),
            None => self.other.get_mut(key),
        }
    }

    fn insert(&mut self, key: &HandshakeKey, value: &Handshake) -> bool {
        if self.len() >= MAX_HANDSHAKES as usize {
            return false;
        }
        match V4Key::of(key) {
            Some(k) => self.v4.entry(k).or_insert(*value),
            None => self.other.entry(*key).or_insert(*value),
        };
        true
    }

    fn remove(&mut self, key: &HandshakeKey) {
        match V4Key::of(key) {
            Some(k) => self.v4.remove(&k),
            None => self.other.remove(key),
        };
    }
}

/// Capture time between sweeps of the table: as often as the daemon's.
const SWEEP_EVERY_NS: u64 = 100_000_000;

/// What a packet was to an attempt, for carving its packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptPacket {
    /// A SYN, request or refusal of the pending attempt.
    Part(HandshakeKey),
    /// The answer: the attempt worked.
    Answered(HandshakeKey),
}

/// An attempt that left the table in a sweep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judged {
    /// It failed: its BLOCKED line, as the console would print it for
    /// this attempt alone.
    Blocked(HandshakeKey, String),
    /// It failed, but on a rule no longer required: not reported.
    Dropped(HandshakeKey),
}

pub struct Required {
    table: Table,
    /// Attempts judged since last taken, kept only when packets are carved
    /// (`replay --pcap`).
    pub judged: Option<Vec<Judged>>,
    pub tracker: Tracker,
    timeout_ns: u64,
    last_sweep_ns: u64,
    /// Attempts not tracked because the table was full (the kernel counts
    /// the same).
    pub table_full: u64,
}

impl Required {
    pub fn new(tables: &KernelTables, timeout_ns: u64) -> Self {
        Self {
            table: Table::default(),
            judged: None,
            tracker: Tracker::new(tables),
            timeout_ns,
            last_sweep_ns: 0,
            table_full: 0,
        }
    }

    /// Whether no attempt is pending: then only required flows' packets
    /// and ICMP errors need to come here.
    pub fn idle(&self) -> bool {
        self.table.is_empty()
    }

    /// Whether a packet at `ts_ns` that is neither a required flow's nor an
    /// ICMP error would make [`packet`](Self::packet) do anything: sweep
    /// pending attempts. Any other such packet may skip it.
    #[inline]
    pub fn sweep_due(&self, ts_ns: u64) -> bool {
        !self.idle() && ts_ns.saturating_sub(self.last_sweep_ns) >= SWEEP_EVERY_NS
    }

    /// Keeps what each sweep judges in [`judged`](Self::judged).
    pub fn keep_judged(&mut self) {
        self.judged = Some(Vec::new());
    }

    /// One classified packet. `view` is the buffer `parsed` was read from.
    /// Returns what the packet was to an attempt the table tracks.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub fn packet(
        &mut self,
        view: &[u8],
        parsed: &Parsed,
        verdict: &Verdict,
        dir: PacketDir,
        ts_ns: u64,
        ifindex: u32,
        enricher: &Enricher,
        out: &mut Vec<EventRecord>,
    ) -> Option<AttemptPacket> {
        self.sweep(ts_ns, enricher, out, false);
        if !matches!(
            verdict,
            Verdict::Allowed { required: true, .. } | Verdict::Infrastructure
        ) {
            return None;
        }
        let track = handshake::track(view, parsed, verdict, dir);
        let key = match track {
            Track::None => return None,
            Track::Attempt { key, .. }
            | Track::Answered { key, .. }
            | Track::Refused { key, .. } => key,
        };
        match handshake::apply(&mut self.table, &track, ts_ns, 0, ifindex) {
            Applied::TableFull => self.table_full += 1,
            Applied::Started | Applied::Retried | Applied::Refused => {
                return Some(AttemptPacket::Part(key));
            }
            Applied::Answered { rule, flow } => {
                if let Some(info) = enricher.tables.rule(rule) {
                    self.tracker.working(info, 1);
                }
                if let Some(b) = self.tracker.recovered(&flow, ts_ns) {
                    out.push(records::record(
                        enricher,
                        EventKind::Recovered,
                        &flow,
                        &b,
                        enricher.clock.wall(ts_ns),
                    ));
                }
                return Some(AttemptPacket::Answered(key));
            }
            Applied::Nothing => {}
        }
        None
    }

    /// Judges the table at capture time `now_ns` (at most every
    /// [`SWEEP_EVERY_NS`] unless `force`).
    #[inline]
    fn sweep(&mut self, now_ns: u64, enricher: &Enricher, out: &mut Vec<EventRecord>, force: bool) {
        if !force && now_ns.saturating_sub(self.last_sweep_ns) < SWEEP_EVERY_NS {
            return;
        }
        self.sweep_now(now_ns, enricher, out);
    }

    #[inline(never)]
    fn sweep_now(&mut self, now_ns: u64, enricher: &Enricher, out: &mut Vec<EventRecord>) {
        self.last_sweep_ns = now_ns;
        if self.table.is_empty() {
            return;
        }
        let timeout_ns = self.timeout_ns;
        let mut failed = self
            .table
            .select(|h| required::judge(h, now_ns, timeout_ns));
        // Deterministic output whatever the hash order.
        failed.sort_by_key(|(k, h, _)| {
            (
                h.first_ns,
                k.flow.initiator,
                k.flow.responder,
                k.initiator_port,
            )
        });
        for (key, h, reason) in failed {
            self.table.remove(&key);
            let Some(rule) = enricher.tables.rule(h.rule).filter(|r| r.required) else {
                if let Some(judged) = self.judged.as_mut() {
                    judged.push(Judged::Dropped(key));
                }
                continue;
            };
            if let Some(judged) = self.judged.as_mut() {
                // This attempt's own line: the flow's record counts every
                // attempt, and is only written for the first.
                let attempt = Blocked {
                    rule: rule.clone(),
                    reason,
                    attempts: u64::from(h.attempts.max(1)),
                    first_ns: h.first_ns,
                    last_ns: h.last_ns,
                    ifindex: h.ifindex,
                    initiator_port: key.initiator_port,
                    reported_attempts: 0,
                };
                let r = records::record(
                    enricher,
                    EventKind::Blocked,
                    &key.flow,
                    &attempt,
                    enricher.clock.wall(h.last_ns),
                );
                judged.push(Judged::Blocked(key, required_line(&r)));
            }
            if self.tracker.failed(&key, &h, reason, rule) {
                let b = self.tracker.get(&key.flow).expect("just added");
                out.push(records::record(
                    enricher,
                    EventKind::Blocked,
                    &key.flow,
                    b,
                    enricher.clock.wall(b.last_ns),
                ));
            }
        }
    }

    /// The end of the capture at `last_ns`: attempts that were still
    /// unanswered a timeout before the end are judged, later ones cannot be;
    /// blocked flows get their final counts.
    pub fn finish(&mut self, last_ns: u64, enricher: &Enricher, out: &mut Vec<EventRecord>) {
        self.sweep(last_ns, enricher, out, true);
        for (flow, b) in self.tracker.changed() {
            out.push(records::record(
                enricher,
                EventKind::Update,
                &flow,
                &b,
                enricher.clock.wall(b.last_ns),
            ));
        }
    }

    pub fn verdicts(&self) -> Vec<RuleVerdict> {
        self.tracker.verdicts()
    }

    pub fn statuses(&self, ts: std::time::SystemTime, host: Option<&str>) -> Vec<RequiredStatus> {
        records::statuses(&self.verdicts(), ts, host)
    }
}

#[cfg(test)]
mod tests {
    use monitor_common::{
        flow::FlowKey,
        handshake::{Handshake, HandshakeKey, HandshakeTable},
        packet::Family,
    };

    use super::{Table, V4Key};

    fn key(family: Family, initiator: [u8; 16], responder: [u8; 16], port: u16) -> HandshakeKey {
        HandshakeKey {
            flow: FlowKey {
                initiator,
                responder,
                service_port: 5432,
                proto: 6,
                family: family as u8,
                direction: 1,
            },
            initiator_port: port,
            _pad: 0,
            _pad2: 0,
        }
    }

    fn v4(a: [u8; 4]) -> [u8; 16] {
        let mut b = [0; 16];
        b[..4].copy_from_slice(&a);
        b
    }

    #[test]
    fn ipv4_keys_pack_and_unpack_and_others_stay_whole() {
        let plain = key(Family::V4, v4([192, 0, 2, 1]), v4([198, 51, 100, 7]), 40000);
        let packed = V4Key::of(&plain).expect("an IPv4 key packs");
        assert_eq!(packed.key(), plain);
        // What does not fit the packed form keeps its own map.
        let mut odd = plain;
        odd.flow.responder[9] = 1;
        let mut padded = plain;
        padded._pad = 7;
        let mut flow_padded = plain;
        flow_padded.flow.direction = 0x100;
        let v6 = key(Family::V6, [0x20; 16], [0x30; 16], 1);
        let v6_short = key(Family::V6, v4([192, 0, 2, 1]), v4([198, 51, 100, 7]), 40000);
        let others = [odd, padded, flow_padded, v6, v6_short];
        for k in others {
            assert!(V4Key::of(&k).is_none(), "{k:?}");
        }
        let mut t = Table::default();
        for (i, k) in std::iter::once(plain).chain(others).enumerate() {
            let h = Handshake {
                attempts: i as u32 + 1,
                ..Default::default()
            };
            assert!(t.insert(&k, &h));
        }
        assert_eq!((t.v4.len(), t.other.len()), (1, 5));
        for (i, k) in std::iter::once(plain).chain(others).enumerate() {
            assert_eq!(t.get_mut(&k).map(|h| h.attempts), Some(i as u32 + 1));
        }
        let mut seen: Vec<HandshakeKey> = t
            .select(|_| Some(()))
            .into_iter()
            .map(|(k, _, _)| k)
            .collect();
        let mut all: Vec<HandshakeKey> = std::iter::once(plain).chain(others).collect();
        let order = |k: &HandshakeKey| {
            (
                k.flow.initiator,
                k.flow.responder,
                k.flow.direction,
                k._pad,
                k.flow.family,
            )
        };
        seen.sort_by_key(order);
        all.sort_by_key(order);
        assert_eq!(seen, all);
        t.remove(&plain);
        t.remove(&v6);
        assert!(t.get_mut(&plain).is_none() && t.get_mut(&v6).is_none());
        assert_eq!(t.len(), 4);
    }
}
