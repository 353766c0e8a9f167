//! When things happened: each host's unexpected and blocked flows binned by
//! the time they were first seen, into at most [`COLUMNS`] columns of one
//! round width (1 s, 15 s, 5 min, 1 h...), the same columns for every host
//! so that lanes line up. The HTML page draws it as an SVG timeline and the
//! terminal as one sparkline per host; the binning lives here once so the
//! two always show the same columns.
//!
//! The size of the picture depends on the number of hosts and columns,
//! never on the number of flows: a scan of 60 000 ports is one column's
//! count, and each column remembers only which of its flows to link to.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::model::Report;
use crate::events::rfc3339;

/// Columns per host: fine enough to tell a burst from a trickle, narrow
/// enough for a terminal line and a page without scrolling.
pub const COLUMNS: usize = 48;

/// Round column widths, in ms, smallest first: column edges then fall on
/// times a person reads at a glance (16:15:00, not 16:13:47.3).
const ROUND_WIDTHS_MS: &[u64] = &[
    1,
    2,
    5,
    10,
    20,
    50,
    100,
    200,
    500,
    1_000,
    2_000,
    5_000,
    10_000,
    15_000,
    20_000,
    30_000,
    60_000,
    2 * 60_000,
    3 * 60_000,
    5 * 60_000,
    10 * 60_000,
    15 * 60_000,
    20 * 60_000,
    30 * 60_000,
    3_600_000,
    2 * 3_600_000,
    3 * 3_600_000,
    4 * 3_600_000,
    6 * 3_600_000,
    8 * 3_600_000,
    12 * 3_600_000,
    DAY_MS,
    2 * DAY_MS,
    7 * DAY_MS,
];
const DAY_MS: u64 = 86_400_000;
const NS_PER_MS: u128 = 1_000_000;

/// The two kinds of flow the timeline shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Unexpected,
    Blocked,
}

impl Kind {
    /// Singular and plural, for tooltips and text alternatives.
    pub fn noun(self, n: u64) -> &'static str {
        match (self, n == 1) {
            (Kind::Unexpected, true) => "unexpected flow",
            (Kind::Unexpected, false) => "unexpected flows",
            (Kind::Blocked, true) => "blocked flow",
            (Kind::Blocked, false) => "blocked flows",
        }
    }
}

/// One column of one host's row of one kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bin {
    pub flows: u64,
    /// The flow first seen earliest in the column, as (first seen, its
    /// position in the report's list), ties to the earlier position.
    pub earliest: Option<(SystemTime, usize)>,
    /// The column's flow that comes first in the report's list (for
    /// unexpected flows the busiest): shown whenever any of the column's
    /// flows is, when a page lists only the first of many.
    pub first_listed: Option<usize>,
}

impl Bin {
    fn add(&mut self, at: SystemTime, index: usize) {
        self.flows += 1;
        if self.earliest.is_none_or(|e| (at, index) < e) {
            self.earliest = Some((at, index));
        }
        self.first_listed = Some(self.first_listed.map_or(index, |f| f.min(index)));
    }
}

/// One host: a row of columns per kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lane {
    pub host: String,
    pub unexpected: Vec<Bin>,
    pub blocked: Vec<Bin>,
    /// Blocked flows with no failure time (none are expected; counted so
    /// that the lane's total still matches the tables).
    pub undated: u64,
}

impl Lane {
    pub fn bins(&self, kind: Kind) -> &[Bin] {
        match kind {
            Kind::Unexpected => &self.unexpected,
            Kind::Blocked => &self.blocked,
        }
    }

    /// Flows of `kind` drawn in the lane.
    pub fn flows(&self, kind: Kind) -> u64 {
        self.bins(kind).iter().map(|b| b.flows).sum()
    }

    /// Unexpected plus blocked flows per column: what a sparkline shows.
    pub fn totals(&self) -> Vec<u64> {
        self.unexpected
            .iter()
            .zip(&self.blocked)
            .map(|(u, b)| u.flows + b.flows)
            .collect()
    }
}

/// The binned flows of every host of a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeline {
    /// Where the first column starts: the earliest flow's time rounded
    /// down to a multiple of `width` (since the Unix epoch, so UTC).
    pub start: SystemTime,
    pub width: Duration,
    /// Columns in use (at most [`COLUMNS`]): a short span needs fewer.
    pub columns: usize,
    /// One per host, in the report's host order; a host with no flow to
    /// show has an empty lane.
    pub lanes: Vec<Lane>,
}

/// Nanoseconds since the epoch; the events' times are never earlier.
fn ns(t: SystemTime) -> u128 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos()
}

fn time_at(ns: u128) -> SystemTime {
    let secs = (ns / 1_000_000_000) as u64;
    UNIX_EPOCH + Duration::new(secs, (ns % 1_000_000_000) as u32)
}

/// Columns that `[lo, hi]` covers in columns of `width` ns aligned to the
/// epoch.
fn columns_for(lo: u128, hi: u128, width: u128) -> u128 {
    hi / width - lo / width + 1
}

/// The smallest round width that puts `[lo, hi]` in at most [`COLUMNS`]
/// columns; past a week's width, a whole number of weeks.
fn width_for(lo: u128, hi: u128) -> u128 {
    let fits = |w: u128| columns_for(lo, hi, w) <= COLUMNS as u128;
    if let Some(w) = ROUND_WIDTHS_MS
        .iter()
        .map(|&ms| u128::from(ms) * NS_PER_MS)
        .find(|&w| fits(w))
    {
        return w;
    }
    let week = u128::from(7 * DAY_MS) * NS_PER_MS;
    // (hi - lo) / (COLUMNS - 1) always fits; start a little below it.
    let mut weeks = ((hi - lo) / (COLUMNS as u128 - 1) / week).max(1);
    while !fits(weeks * week) {
        weeks += 1;
    }
    weeks * week
}

impl Timeline {
    /// The report's unexpected and blocked flows, each at its first
    /// sighting (an unexpected flow's `first_seen`, a blocked flow's first
    /// failure). `None` when there is no flow to place.
    pub fn of(report: &Report) -> Option<Timeline> {
        let unexpected = report
            .unexpected
            .flows
            .iter()
            .map(|f| (f.host.as_str(), Some(f.first_seen)));
        let blocked = report
            .blocked
            .iter()
            .map(|f| (f.host.as_str(), f.first_seen));
        let times = unexpected
            .clone()
            .chain(blocked.clone())
            .filter_map(|(_, t)| t);
        let lo = times.clone().map(ns).min()?;
        let hi = times.map(ns).max()?;
        let width = width_for(lo, hi);
        let columns = columns_for(lo, hi, width) as usize;
        let start = lo / width * width;
        let mut lanes: Vec<Lane> = report
            .hosts
            .iter()
            .map(|h| Lane {
                host: h.host.clone(),
                unexpected: vec![Bin::default(); columns],
                blocked: vec![Bin::default(); columns],
                undated: 0,
            })
            .collect();
        let column = |t: SystemTime| ((ns(t) - start) / width) as usize;
        for (kind, flows) in [
            (Kind::Unexpected, unexpected.collect::<Vec<_>>()),
            (Kind::Blocked, blocked.collect::<Vec<_>>()),
        ] {
            for (index, (host, at)) in flows.into_iter().enumerate() {
                // Every flow's host is one of the report's hosts.
                let Some(lane) = lanes.iter_mut().find(|l| l.host == host) else {
                    continue;
                };
                match (kind, at) {
                    (Kind::Unexpected, Some(at)) => lane.unexpected[column(at)].add(at, index),
                    (Kind::Blocked, Some(at)) => lane.blocked[column(at)].add(at, index),
                    (_, None) => lane.undated += 1,
                }
            }
        }
        Some(Timeline {
            start: time_at(start),
            width: Duration::from_nanos(width as u64),
            columns,
            lanes,
        })
    }

    /// When the last column ends.
    pub fn end(&self) -> SystemTime {
        self.edge(self.columns)
    }

    /// Where column `i` starts (`i == columns` is the end).
    pub fn edge(&self, i: usize) -> SystemTime {
        self.start + self.width * i as u32
    }

    /// The most flows of one kind in one column of one lane: the scale of
    /// the SVG's marks.
    pub fn max_bin(&self) -> u64 {
        self.lanes
            .iter()
            .flat_map(|l| l.unexpected.iter().chain(&l.blocked))
            .map(|b| b.flows)
            .max()
            .unwrap_or(0)
    }

    /// The most unexpected plus blocked flows in one column of one lane:
    /// the scale of the sparklines, shared so hosts compare.
    pub fn max_total(&self) -> u64 {
        self.lanes.iter().flat_map(Lane::totals).max().unwrap_or(0)
    }

    /// A column edge as RFC 3339 UTC, to the second, or to the millisecond
    /// when columns are narrower than a second.
    pub fn label(&self, t: SystemTime) -> String {
        time_label(t, self.width)
    }

    /// The column width in words: `15s`, `5m`, `1day`.
    pub fn width_text(&self) -> String {
        humantime::format_duration(self.width).to_string()
    }
}

/// `t` as RFC 3339 UTC with as many fractional digits as `precision`
/// needs: `2026-11-22T16:15:00Z`, `2026-11-22T16:15:00.250Z`.
pub fn time_label(t: SystemTime, precision: Duration) -> String {
    let full = rfc3339(t);
    // `YYYY-MM-DDTHH:MM:SS` then `.nnnnnnnnnZ`.
    let digits = match precision.subsec_nanos() {
        0 => 0,
        n if n % 1_000_000 == 0 => 3,
        n if n % 1_000 == 0 => 6,
        _ => 9,
    };
    match full.get(..19) {
        Some(head) if digits == 0 => format!("{head}Z"),
        Some(head) => format!("{head}{}Z", &full[19..20 + digits]),
        None => full,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(ms)
    }

    #[test]
    fn the_width_is_the_smallest_round_one_that_fits() {
        let t0 = 1_795_305_600_000u128 * NS_PER_MS; // 2026-11-22T00:00:00Z
        // One instant: one column of the smallest width.
        assert_eq!(width_for(t0, t0), NS_PER_MS);
        assert_eq!(columns_for(t0, t0, width_for(t0, t0)), 1);
        // 12 minutes from a round start: 15 s columns would be 49.
        let hi = t0 + 12 * 60 * 1_000 * NS_PER_MS;
        let w = width_for(t0, hi);
        assert_eq!(w, 20_000 * NS_PER_MS, "15 s needs 49 columns");
        assert!(columns_for(t0, hi, w) <= COLUMNS as u128);
        // Every span fits, up to the latest time an event may carry.
        for span_ms in [1u128, 47, 999, 86_400_000, 40 * 86_400_000, 1 << 50] {
            let w = width_for(t0, t0 + span_ms * NS_PER_MS);
            let n = columns_for(t0, t0 + span_ms * NS_PER_MS, w);
            assert!(n <= COLUMNS as u128 && n >= 1, "{span_ms} ms: {n} columns");
        }
    }

    #[test]
    fn labels_keep_the_digits_the_width_needs() {
        let t = at(1_795_365_758_250);
        assert_eq!(
            time_label(t, Duration::from_secs(15)),
            "2026-11-22T16:42:38Z"
        );
        assert_eq!(
            time_label(t, Duration::from_millis(500)),
            "2026-11-22T16:42:38.250Z"
        );
    }
}
