//! Proof that nothing is missing: every line `run` and `replay` write has
//! a `seq` (1, 2, 3, ... per `instance`), so the report can say, per host
//! and instance, which lines it did not get: lost on the way, or in a file
//! not given (a rotated file, another host's copy).
//!
//! Seen numbers are kept as ranges, merged as they come; lines mostly come
//! in order, so a host's instance is one range or a few. A file crafted to
//! fragment them (every other number) cannot grow memory without bound:
//! past [`MAX_RANGES`] an instance keeps its count and extremes only and
//! says its gaps can no longer be listed.

use std::collections::BTreeMap;

use serde::Serialize;

/// Ranges kept per instance.
pub const MAX_RANGES: usize = 10_000;
/// Instances kept per host; more are counted.
pub const MAX_INSTANCES: usize = 10_000;
/// Gaps listed per instance (all are counted).
const GAPS_LISTED: usize = 20;

/// The numbers of one instance seen so far.
#[derive(Debug, Default, Clone)]
struct Seen {
    /// Disjoint, sorted, inclusive; not adjacent (merged).
    ranges: Vec<(u64, u64)>,
    /// Lines, each number once (until fragmented).
    lines: u64,
    /// Past [`MAX_RANGES`]: only `lines`, `lowest` and `highest` are kept.
    fragmented: bool,
    lowest: u64,
    highest: u64,
}

impl Seen {
    /// False when `seq` was seen before (as far as can still be told).
    fn add(&mut self, seq: u64) -> bool {
        if self.lines == 0 {
            (self.lowest, self.highest) = (seq, seq);
        }
        self.lines += 1;
        self.lowest = self.lowest.min(seq);
        self.highest = self.highest.max(seq);
        if self.fragmented {
            return true;
        }
        // The common case: the next number after the last range.
        if let Some(last) = self.ranges.last_mut()
            && seq == last.1 + 1
        {
            last.1 = seq;
            return true;
        }
        let i = self.ranges.partition_point(|r| r.1 < seq);
        if self.ranges.get(i).is_some_and(|r| r.0 <= seq) {
            self.lines -= 1;
            return false;
        }
        let joins_left = i > 0 && self.ranges[i - 1].1 + 1 == seq;
        let joins_right = self.ranges.get(i).is_some_and(|r| r.0 == seq + 1);
        match (joins_left, joins_right) {
            (true, true) => {
                self.ranges[i - 1].1 = self.ranges[i].1;
                self.ranges.remove(i);
            }
            (true, false) => self.ranges[i - 1].1 = seq,
            (false, true) => self.ranges[i].0 = seq,
            (false, false) => {
                if self.ranges.len() >= MAX_RANGES {
                    self.fragmented = true;
                    self.ranges = Vec::new();
                    return true;
                }
                self.ranges.insert(i, (seq, seq));
            }
        }
        true
    }
}

/// What the report says of one instance of one host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InstanceLines {
    pub host: String,
    pub instance: String,
    /// Lines read, each number once (duplicates still count when the
    /// numbers are too scattered to tell).
    pub lines: u64,
    /// The lowest and highest `seq` read.
    pub first: u64,
    pub last: u64,
    /// Numbers between `first` and `last` not read; `None` when the
    /// numbers read were too scattered to tell.
    pub missing: Option<u64>,
    /// The first gaps (inclusive ranges).
    pub gaps: Vec<(u64, u64)>,
}

impl InstanceLines {
    /// Lines 1 .. first-1 were not read: older than the files given
    /// (rotated away), or lost.
    pub fn missing_start(&self) -> u64 {
        self.first.saturating_sub(1)
    }

    pub fn complete(&self) -> bool {
        self.missing == Some(0) && self.first == 1
    }
}

/// Every host's instances.
#[derive(Debug, Default, Clone)]
pub struct Sequences {
    by: BTreeMap<String, BTreeMap<String, Seen>>,
    /// Instances not kept past [`MAX_INSTANCES`] per host.
    pub instances_dropped: u64,
}

impl Sequences {
    /// Notes `seq` of `host`'s `instance`; false when it was noted before.
    pub fn add(&mut self, host: &str, instance: &str, seq: u64) -> bool {
        let instances = match self.by.get_mut(host) {
            Some(i) => i,
            None => self.by.entry(host.to_string()).or_default(),
        };
        if let Some(seen) = instances.get_mut(instance) {
            seen.add(seq)
        } else if instances.len() >= MAX_INSTANCES {
            self.instances_dropped += 1;
            true
        } else {
            instances.entry(instance.to_string()).or_default().add(seq)
        }
    }

    /// Per host and instance, in host then first-seq order.
    pub fn report(&self) -> Vec<InstanceLines> {
        let mut out = Vec::new();
        for (host, instances) in &self.by {
            let mut mine: Vec<InstanceLines> = instances
                .iter()
                .map(|(instance, seen)| {
                    let (missing, gaps) = if seen.fragmented {
                        (None, Vec::new())
                    } else {
                        let gaps: Vec<(u64, u64)> = seen
                            .ranges
                            .windows(2)
                            .map(|w| (w[0].1 + 1, w[1].0 - 1))
                            .collect();
                        let missing = gaps.iter().map(|(a, b)| b - a + 1).sum();
                        (Some(missing), gaps.into_iter().take(GAPS_LISTED).collect())
                    };
                    InstanceLines {
                        host: host.clone(),
                        instance: instance.clone(),
                        lines: seen.lines,
                        first: seen.lowest,
                        last: seen.highest,
                        missing,
                        gaps,
                    }
                })
                .collect();
            mine.sort_by(|a, b| (a.first, &a.instance).cmp(&(b.first, &b.instance)));
            out.extend(mine);
        }
        out
    }
}

/// One line per instance with something missing, for the terminal and the
/// page: what is missing, in words.
pub fn problem_text(i: &InstanceLines) -> Option<String> {
    let mut parts = Vec::new();
    if i.missing_start() > 0 {
        parts.push(format!(
            "lines 1 to {} are not in the files given (rotated away, or lost)",
            i.missing_start()
        ));
    }
    match i.missing {
        None => parts.push(format!(
            "its {} lines between seq {} and {} are too scattered to list the gaps",
            i.lines, i.first, i.last
        )),
        Some(0) => {}
        Some(n) => {
            let listed: Vec<String> = i
                .gaps
                .iter()
                .map(|(a, b)| {
                    if a == b {
                        a.to_string()
                    } else {
                        format!("{a}-{b}")
                    }
                })
                .collect();
            parts.push(format!(
                "{n} lines missing between seq {} and {}: {}{}",
                i.first,
                i.last,
                listed.join(", "),
                if (i.gaps.len() as u64) < n && listed.len() == GAPS_LISTED {
                    ", ..."
                } else {
                    ""
                }
            ));
        }
    }
    (!parts.is_empty()).then(|| {
        format!(
            "{} (instance {}): {}",
            i.host,
            short(&i.instance),
            parts.join("; ")
        )
    })
}

/// The first 8 characters of an instance id: enough to tell them apart.
pub fn short(instance: &str) -> &str {
    match instance.char_indices().nth(8) {
        Some((i, _)) => &instance[..i],
        None => instance,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(seqs: impl IntoIterator<Item = u64>) -> InstanceLines {
        let mut s = Sequences::default();
        for n in seqs {
            s.add("node-a", "0123456789abcdef", n);
        }
        s.report().remove(0)
    }

    #[test]
    fn complete_lines_in_any_order_have_no_gap() {
        let mut v: Vec<u64> = (1..=1000).collect();
        v.reverse();
        v.swap(3, 700);
        let i = of(v.into_iter().chain([5, 5]));
        assert!(i.complete(), "{i:?}");
        // The two repeats of 5 are duplicates: read once.
        assert_eq!((i.lines, i.first, i.last), (1000, 1, 1000));
        let mut s = Sequences::default();
        assert!(s.add("h", "i", 5));
        assert!(!s.add("h", "i", 5));
        assert!(s.add("h", "j", 5));
        assert_eq!(problem_text(&i), None);
    }

    #[test]
    fn gaps_and_a_missing_start_are_said() {
        let i = of((3..=10).chain(12..=20).chain(25..=30));
        assert_eq!(i.missing, Some(5));
        assert_eq!(i.gaps, vec![(11, 11), (21, 24)]);
        assert_eq!(
            problem_text(&i).unwrap(),
            "node-a (instance 01234567): lines 1 to 2 are not in the files given (rotated away, or lost); 5 lines missing between seq 3 and 30: 11, 21-24"
        );
    }

    #[test]
    fn scattered_numbers_stay_bounded_and_are_said() {
        let i = of((0..(MAX_RANGES as u64 + 5)).map(|n| 2 * n + 1));
        assert_eq!(i.missing, None);
        assert!(i.gaps.is_empty());
        assert!(problem_text(&i).unwrap().contains("too scattered"));
        let mut s = Sequences::default();
        for n in 0..(MAX_INSTANCES as u64 + 3) {
            s.add("h", &n.to_string(), 1);
        }
        assert_eq!(s.instances_dropped, 3);
        assert_eq!(s.report().len(), MAX_INSTANCES);
    }
}
