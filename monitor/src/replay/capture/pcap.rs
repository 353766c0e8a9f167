//! The pcap format: one record after another behind a file header.

use pcap_file::TsResolution;

use super::*;

impl CaptureReader {
    pub(super) fn next_pcap(&mut self) -> Result<Step, (u64, Problem)> {
        let CaptureFormat::Pcap {
            iface,
            endianness,
            nanos,
            link,
            linktype,
            ..
        } = self.format
        else {
            unreachable!("called for pcap files only")
        };
        let at = self.window.offset;
        let n = self
            .window
            .fill(16)
            .map_err(|e| (at, Problem::Io(e.to_string())))?;
        if n == 0 {
            return Ok(Step::End);
        }
        if n < 16 {
            return Err((
                at,
                Problem::Truncated {
                    what: "a packet record header",
                    needed: 16,
                    present: n,
                },
            ));
        }
        let incl_len = read_u32(&self.window.available()[8..12], endianness) as usize;
        if incl_len > MAX_PACKET {
            let cause = Problem::AbsurdLength {
                what: "a packet record",
                len: incl_len as u64,
                max: MAX_PACKET,
            };
            return self.resync_pcap(at, cause);
        }
        let n = self
            .window
            .fill(16 + incl_len)
            .map_err(|e| (at, Problem::Io(e.to_string())))?;
        if n < 16 + incl_len {
            return Err((
                at,
                Problem::Truncated {
                    what: "a packet record",
                    needed: 16 + incl_len,
                    present: n,
                },
            ));
        }
        // The record is framed: its header is read here directly, as
        // pcap-file's parser would (it checks nothing more than framing).
        let head = &self.window.available()[..16];
        let ts_sec = read_u32(&head[0..4], endianness);
        let ts_frac = read_u32(&head[4..8], endianness);
        let orig_len = read_u32(&head[12..16], endianness);
        self.pending = 16 + incl_len;
        let frac_limit = if nanos { 1_000_000_000 } else { 1_000_000 };
        if ts_frac >= frac_limit {
            self.problem(
                at,
                Problem::Invalid {
                    what: "packet record",
                    detail: format!(
                        "timestamp fraction {ts_frac} is not below {frac_limit}; record skipped"
                    ),
                },
            );
            self.stats.skipped += 1;
            return Ok(Step::Skipped);
        }
        if let Link::Unsupported(_) = link {
            self.stats.skipped += 1;
            return Ok(Step::Skipped);
        }
        let frac_ns = if nanos {
            u64::from(ts_frac)
        } else {
            u64::from(ts_frac) * 1000
        };
        Ok(Step::Packet(Current {
            ts_ns: u64::from(ts_sec) * 1_000_000_000 + frac_ns,
            // A record may claim less on the wire than it holds; the bytes
            // present are the better witness.
            orig_len: orig_len.max(incl_len as u32),
            link,
            linktype,
            iface,
            data: (16, 16 + incl_len),
        }))
    }

    /// After a record whose length cannot be right, looks for the next
    /// offset where a plausible record starts and is followed by another
    /// (or by the end of the file), as pcap repair tools do: a corrupt
    /// stretch in the middle of a capture should not cost its second half.
    /// Streams through the file; memory stays bounded by the window.
    pub(super) fn resync_pcap(&mut self, at: u64, cause: Problem) -> Result<Step, (u64, Problem)> {
        let CaptureFormat::Pcap { parser, .. } = &self.format else {
            unreachable!("called for pcap files only")
        };
        let header = parser.header();
        let limits = RecordLimits {
            endianness: header.endianness,
            frac_limit: match header.ts_resolution {
                TsResolution::MicroSecond => 1_000_000,
                TsResolution::NanoSecond => 1_000_000_000,
            },
            max_len: match header.snaplen as usize {
                0 => MAX_PACKET,
                n => n.min(MAX_PACKET),
            },
            near_sec: self.last_ts_ns.map(|t| t / 1_000_000_000),
        };
        // Past the record that failed.
        self.window.consume(1);
        self.resync(at, cause, 2 * 16 + MAX_PACKET, 1, |bytes, eof| {
            limits.plausible(bytes, eof)
        })
    }
}
