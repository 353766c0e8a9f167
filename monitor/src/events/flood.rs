//! `flood` records: what the kernel counted of strangers' new flows past its
//! budget (`monitor_common::flood`), one record per service per reporting
//! interval in which the flood went on. The flows themselves were never
//! tracked, so a record says how much, from roughly how many sources, and
//! names two of them; not who each was.

use std::{borrow::Cow, net::IpAddr, time::SystemTime};

use monitor_common::flood::{FloodKey, FloodStats, HLL_REGISTERS};
use serde::{Deserialize, Serialize};

use super::{ConnDir, IpProto, jsonl::JsonLine, record::rfc3339_serde};

/// One aggregate, its CPUs' copies merged into the kernel's own layout:
/// the counts summed; the earliest first and the latest last sighting
/// with their sources; each register's maximum (the union of the CPUs'
/// source sets).
pub fn merge(per_cpu: &[FloodStats]) -> FloodStats {
    let mut t = FloodStats::default();
    for s in per_cpu.iter().filter(|s| s.packets != 0) {
        t.packets += s.packets;
        t.bytes += s.bytes;
        if t.first_ns == 0 || s.first_ns < t.first_ns {
            t.first_ns = s.first_ns;
            t.first_source = s.first_source;
            t.family = s.family;
        }
        if s.last_ns >= t.last_ns {
            t.last_ns = s.last_ns;
            t.last_source = s.last_source;
        }
        for (r, &v) in t.registers.iter_mut().zip(&s.registers) {
            *r = (*r).max(v);
        }
    }
    t
}

/// HyperLogLog's estimate from its registers, with linear counting while
/// some are still empty (small counts).
pub fn estimate(registers: &[u8; HLL_REGISTERS]) -> u64 {
    let m = HLL_REGISTERS as f64;
    // The bias correction for 64 registers.
    let alpha = 0.709;
    let sum: f64 = registers.iter().map(|&r| 2f64.powi(-i32::from(r))).sum();
    let raw = alpha * m * m / sum;
    let zeros = registers.iter().filter(|&&r| r == 0).count();
    let e = if raw <= 2.5 * m && zeros > 0 {
        m * (m / zeros as f64).ln()
    } else {
        raw
    };
    e.round() as u64
}

/// The `flood` line of the events file; `report` and `learn` read it back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FloodRecord {
    #[serde(with = "rfc3339_serde")]
    pub ts: SystemTime,
    pub kind: Cow<'static, str>,
    pub direction: ConnDir,
    pub proto: IpProto,
    /// The service the flood aims at; 0 where floods on more services than
    /// the kernel aggregates separately are counted together.
    pub service_port: u16,
    pub reason: Cow<'static, str>,
    /// Packets over budget since the previous record (each one a flow the
    /// kernel did not track), and in all.
    pub packets: u64,
    pub bytes: u64,
    pub total_packets: u64,
    /// Distinct sources since the flood began (an estimate, see
    /// `sources_estimated`).
    pub sources: u64,
    pub sources_estimated: bool,
    /// The first and the latest source seen.
    pub sample: Vec<IpAddr>,
    #[serde(with = "rfc3339_serde")]
    pub first_seen: SystemTime,
    #[serde(with = "rfc3339_serde")]
    pub last_seen: SystemTime,
    pub note: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

impl FloodRecord {
    /// The record of aggregate `key` whose totals are `t`, `before` packets
    /// of which earlier records reported; `first_seen` and `last_seen` are
    /// `t`'s times on the wall clock, `sample` its sources as addresses.
    pub fn new(
        key: &FloodKey,
        t: &FloodStats,
        before: u64,
        (first_seen, last_seen): (SystemTime, SystemTime),
        sample: Vec<IpAddr>,
        host: Option<&str>,
    ) -> Self {
        let direction = ConnDir::of_word(key.direction);
        let proto = IpProto::from_number(key.proto);
        let reason = if key.reason == monitor_common::classify::Reason::PeerNotAllowed as u8 {
            "peer-not-allowed"
        } else {
            "no-rule"
        };
        // Distinct sources since the flood began: an estimate.
        let sources = estimate(&t.registers);
        let service = if key.service_port == 0 {
            "several services".to_string()
        } else {
            format!("{proto} {}", key.service_port)
        };
        let packets = t.packets - before.min(t.packets);
        Self {
            ts: SystemTime::now(),
            kind: Cow::Borrowed("flood"),
            direction,
            proto,
            service_port: key.service_port,
            reason: Cow::Borrowed(reason),
            packets,
            bytes: t.bytes,
            total_packets: t.packets,
            sources,
            sources_estimated: true,
            sample,
            first_seen,
            last_seen,
            note: format!(
                "{packets} new {direction} flows to {service} from about {sources} sources with no role in the inventory, past the new-flow budget: counted here, not tracked one by one"
            ),
            host: host.map(str::to_string),
        }
    }

    /// The console's line.
    pub fn line(&self) -> String {
        let sample: Vec<String> = self.sample.iter().map(IpAddr::to_string).collect();
        format!(
            "FLOOD {} {} port {}: {} packets ({} in all), about {} sources, e.g. {}",
            self.direction,
            self.proto,
            self.service_port,
            self.packets,
            self.total_packets,
            self.sources,
            sample.join(", ")
        )
    }
}

impl JsonLine for FloodRecord {
    fn write_line(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        serde_json::to_writer(out, self)
    }
}

#[cfg(test)]
mod tests {
    use monitor_common::flood::{register_of, source_hash};

    use super::*;

    #[test]
    fn distinct_sources_are_estimated_within_a_third() {
        for n in [1u32, 10, 100, 1000, 50_000] {
            let mut regs = [0u8; HLL_REGISTERS];
            for i in 0..n {
                let mut a = [0u8; 16];
                a[..4].copy_from_slice(&i.wrapping_mul(2_654_435_761).to_be_bytes());
                let (r, rank) = register_of(source_hash(&a));
                regs[r] = regs[r].max(rank);
            }
            let e = estimate(&regs) as f64;
            let err = (e - f64::from(n)).abs() / f64::from(n);
            assert!(err < 0.34, "{n} sources estimated as {e}");
        }
    }

    #[test]
    fn cpus_merge_into_one_aggregate() {
        let mut a = FloodStats {
            packets: 3,
            bytes: 300,
            first_ns: 10,
            last_ns: 20,
            family: 4,
            ..Default::default()
        };
        a.first_source[0] = 1;
        a.last_source[0] = 2;
        a.registers[5] = 3;
        let mut b = FloodStats {
            packets: 2,
            bytes: 200,
            first_ns: 5,
            last_ns: 30,
            family: 4,
            ..Default::default()
        };
        b.first_source[0] = 7;
        b.last_source[0] = 8;
        b.registers[5] = 1;
        b.registers[6] = 2;
        let t = merge(&[a, FloodStats::default(), b]);
        assert_eq!((t.packets, t.bytes, t.first_ns, t.last_ns), (5, 500, 5, 30));
        assert_eq!((t.first_source[0], t.last_source[0]), (7, 8));
        assert_eq!((t.registers[5], t.registers[6]), (3, 2));
    }
}
