//! Text forms of timestamps and addresses written without `core::fmt`.
//!
//! Every event line carries three timestamps and two addresses; through
//! `Display` (humantime's, std's `Ipv6Addr`'s hex with `pad_integral`) they
//! were the largest share of the daemon's per-event cost. These produce the
//! same bytes as those `Display` impls, which the tests check against them,
//! so the JSON-lines contract does not change.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{SystemTime, UNIX_EPOCH};

/// `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`
pub const RFC3339_LEN: usize = 30;

/// RFC 3339 UTC with nanoseconds, as `humantime::format_rfc3339_nanos`
/// writes it, for a time already clamped to 1970..=9999.
pub fn rfc3339_nanos(t: SystemTime) -> [u8; RFC3339_LEN] {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (year, month, day) = civil_from_days(secs / 86_400);
    let rem = secs % 86_400;
    let mut b = *b"0000-00-00T00:00:00.000000000Z";
    put_digits(&mut b[0..4], year);
    put_digits(&mut b[5..7], month);
    put_digits(&mut b[8..10], day);
    put_digits(&mut b[11..13], rem / 3600);
    put_digits(&mut b[14..16], rem / 60 % 60);
    put_digits(&mut b[17..19], rem % 60);
    put_digits(&mut b[20..29], u64::from(d.subsec_nanos()));
    b
}

/// Longest decimal u64.
pub const U64_MAX_LEN: usize = 20;

/// `v` in decimal, without `core::fmt`: the digits written at the end of
/// `buf`, which is returned from the first digit on.
pub fn decimal(mut v: u64, buf: &mut [u8; U64_MAX_LEN]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    &buf[i..]
}

/// Writes `v` as decimal right-aligned in `out`, zero-padded to its length.
#[inline]
fn put_digits(out: &mut [u8], mut v: u64) {
    for slot in out.iter_mut().rev() {
        *slot = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian
/// calendar (H. Hinnant's `civil_from_days`, for non-negative days).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// Room for the longest address text: `ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff`
/// and `::ffff:255.255.255.255` both fit.
pub const IP_MAX_LEN: usize = 39;

/// An address's text, as `Display` for [`IpAddr`] writes it.
pub struct IpText {
    buf: [u8; IP_MAX_LEN],
    len: usize,
}

impl IpText {
    pub fn new(addr: IpAddr) -> Self {
        let mut t = IpText {
            buf: [0; IP_MAX_LEN],
            len: 0,
        };
        match addr {
            IpAddr::V4(a) => t.v4(a),
            IpAddr::V6(a) => t.v6(a),
        }
        t
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII digits, hex digits, '.' and ':' are ever written.
        std::str::from_utf8(&self.buf[..self.len]).expect("ASCII")
    }

    #[inline]
    fn push(&mut self, b: u8) {
        self.buf[self.len] = b;
        self.len += 1;
    }

    fn push_str(&mut self, s: &[u8]) {
        self.buf[self.len..self.len + s.len()].copy_from_slice(s);
        self.len += s.len();
    }

    fn decimal(&mut self, v: u8) {
        if v >= 100 {
            self.push(b'0' + v / 100);
        }
        if v >= 10 {
            self.push(b'0' + v / 10 % 10);
        }
        self.push(b'0' + v % 10);
    }

    fn hex(&mut self, v: u16) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut shift = 12;
        while shift > 0 && v >> shift == 0 {
            shift -= 4;
        }
        loop {
            self.push(HEX[usize::from((v >> shift) & 0xf)]);
            if shift == 0 {
                break;
            }
            shift -= 4;
        }
    }

    fn v4(&mut self, a: Ipv4Addr) {
        let [a, b, c, d] = a.octets();
        self.decimal(a);
        self.push(b'.');
        self.decimal(b);
        self.push(b'.');
        self.decimal(c);
        self.push(b'.');
        self.decimal(d);
    }

    /// std's rules: IPv4-mapped addresses in dotted form, otherwise the
    /// first longest run of two or more zero groups becomes `::`.
    fn v6(&mut self, a: Ipv6Addr) {
        if let Some(v4) = a.to_ipv4_mapped() {
            self.push_str(b"::ffff:");
            self.v4(v4);
            return;
        }
        let segments = a.segments();
        let (mut best_start, mut best_len) = (0, 0);
        let (mut start, mut len) = (0, 0);
        for (i, &s) in segments.iter().enumerate() {
            if s == 0 {
                if len == 0 {
                    start = i;
                }
                len += 1;
                if len > best_len {
                    (best_start, best_len) = (start, len);
                }
            } else {
                len = 0;
            }
        }
        if best_len > 1 {
            self.groups(&segments[..best_start]);
            self.push_str(b"::");
            self.groups(&segments[best_start + best_len..]);
        } else {
            self.groups(&segments);
        }
    }

    fn groups(&mut self, groups: &[u16]) {
        for (i, &g) in groups.iter().enumerate() {
            if i > 0 {
                self.push(b':');
            }
            self.hex(g);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::time::Duration;

    fn rfc(t: SystemTime) -> String {
        String::from_utf8(rfc3339_nanos(t).to_vec()).unwrap()
    }

    #[test]
    fn timestamps_at_calendar_edges_match_humantime() {
        let max = 253_402_300_799; // 9999-12-31T23:59:59Z
        for secs in [
            0,
            59,
            86_399,
            86_400,
            68_169_599,  // 1972-02-28T23:59:59 (leap year)
            68_256_000,  // 1972-03-01
            951_782_400, // 2000-02-29
            951_868_800, // 2000-03-01
            4_107_542_399,
            4_107_542_400, // 2100-03-01 (no Feb 29)
            1_795_365_758,
            max,
        ] {
            for nanos in [0, 1, 999_999_999, 187_872_964] {
                let t = UNIX_EPOCH + Duration::new(secs, nanos);
                assert_eq!(
                    rfc(t),
                    humantime::format_rfc3339_nanos(t).to_string(),
                    "{secs}.{nanos}"
                );
            }
        }
    }

    #[test]
    fn addresses_at_edges_match_std() {
        for s in [
            "0.0.0.0",
            "255.255.255.255",
            "10.0.100.9",
            "::",
            "::1",
            "1::",
            "2001:db8::1",
            "2001:db8:0:1:0:0:1:0",
            "2001:0:0:1:0:0:0:1",
            "1:0:1:0:1:0:1:0",
            "0:1:0:1:0:1:0:1",
            "1:2:3:4:5:6:7:8",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "::ffff:192.0.2.1",
            "::ffff:0.0.0.0",
            "::192.0.2.1",
            "::ffff:0:192.0.2.1",
            "64:ff9b::192.0.2.1",
            "fe80::abcd:ef",
        ] {
            let a: IpAddr = s.parse().unwrap();
            assert_eq!(IpText::new(a).as_str(), a.to_string(), "{s}");
        }
    }

    proptest! {
        #[test]
        fn timestamps_match_humantime(secs in 0u64..=253_402_300_799, nanos in 0u32..1_000_000_000) {
            let t = UNIX_EPOCH + Duration::new(secs, nanos);
            prop_assert_eq!(rfc(t), humantime::format_rfc3339_nanos(t).to_string());
        }

        #[test]
        fn ipv4_matches_std(bits: u32) {
            let a = IpAddr::from(Ipv4Addr::from(bits));
            prop_assert_eq!(IpText::new(a).as_str().to_owned(), a.to_string());
        }

        /// Groups drawn mostly from zero and a few small values, so runs of
        /// zeros of every length and position, ties between them, and
        /// IPv4-mapped and -compatible forms all come up.
        #[test]
        fn ipv6_matches_std(groups in proptest::array::uniform8(prop_oneof![
            4 => Just(0u16),
            1 => Just(0xffffu16),
            2 => 1u16..0x10,
            2 => any::<u16>(),
        ])) {
            let a = IpAddr::from(Ipv6Addr::from(groups));
            prop_assert_eq!(IpText::new(a).as_str().to_owned(), a.to_string());
        }

        #[test]
        fn random_ipv6_matches_std(bits: u128) {
            let a = IpAddr::from(Ipv6Addr::from(bits));
            prop_assert_eq!(IpText::new(a).as_str().to_owned(), a.to_string());
        }
    }
}
