//! The identity and order of a host's events: every line a run or replay
//! writes carries `"seq"` (1, 2, 3, ... with no gap) and `"instance"` (one
//! id per daemon instance), so that whoever collects the lines of many
//! hosts can prove they have all of them, or say which are missing.
//!
//! An instance is one unbroken numbering. A daemon started afresh is a new
//! instance; a pinned daemon that stopped cleanly leaves its instance and
//! next number in the pin record, and the next one goes on from there (the
//! kernel kept counting in between, so the stream did not break). After a
//! crash the last number written is not known, and reusing the instance
//! could number two different records alike: a new instance begins.

use std::fmt::Write as _;

/// One instance's numbering.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stream {
    instance: String,
    next_seq: u64,
}

impl Stream {
    /// A new instance, numbered from 1. Its id is a random UUID from the
    /// kernel (`/proc/sys/kernel/random/uuid`), or, where that cannot be
    /// read, one made of the time and the process id, unique enough for a
    /// host that has no procfs.
    pub fn fresh() -> Self {
        let id = std::fs::read_to_string("/proc/sys/kernel/random/uuid")
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default();
                format!("{:x}-{:x}", now.as_nanos(), std::process::id())
            });
        Self::resume(id, 1)
    }

    /// Goes on with `instance` at `next_seq` (a pinned run's successor).
    pub fn resume(instance: String, next_seq: u64) -> Self {
        Self {
            instance,
            next_seq: next_seq.max(1),
        }
    }

    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// The number the next line takes.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Numbers one serialized JSON object (without its newline): its
    /// closing brace becomes `,"seq":N,"instance":"ID"}`. Returns the
    /// number. Lines that are not an object are left alone and take none.
    pub fn stamp(&mut self, line: &mut Vec<u8>) -> Option<u64> {
        if line.last() != Some(&b'}') {
            return None;
        }
        line.pop();
        let seq = self.next_seq;
        self.next_seq += 1;
        let mut tail = String::with_capacity(32 + self.instance.len());
        if line.len() > 1 {
            tail.push(',');
        }
        // The instance is a UUID, or read back from a pin record that may
        // have been edited: serde_json escapes it.
        let _ = write!(tail, "\"seq\":{seq},\"instance\":");
        line.extend_from_slice(tail.as_bytes());
        let _ = serde_json::to_writer(&mut *line, &self.instance);
        line.push(b'}');
        Some(seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_numbered_in_order_and_stay_json() {
        let mut s = Stream::resume("a\"b".into(), 0);
        let mut one = br#"{"kind":"unexpected"}"#.to_vec();
        assert_eq!(s.stamp(&mut one), Some(1));
        let v: serde_json::Value = serde_json::from_slice(&one).unwrap();
        assert_eq!(v["seq"], 1);
        assert_eq!(v["instance"], "a\"b");
        assert_eq!(v["kind"], "unexpected");
        let mut empty = b"{}".to_vec();
        assert_eq!(s.stamp(&mut empty), Some(2));
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&empty).unwrap()["seq"],
            2
        );
        let mut not_object = b"[1]".to_vec();
        assert_eq!(s.stamp(&mut not_object), None);
        assert_eq!(not_object, b"[1]");
        assert_eq!(s.next_seq(), 3);
    }

    #[test]
    fn fresh_instances_differ() {
        let (a, b) = (Stream::fresh(), Stream::fresh());
        assert_ne!(a.instance(), b.instance());
        assert_eq!((a.next_seq(), b.next_seq()), (1, 1));
        assert_eq!(a.instance().len(), 36, "a UUID: {}", a.instance());
    }
}
