//! The pcapng format: blocks, interface descriptions, and how a damaged
//! block is told from a good one.
use std::{
    io::{self},
    path::Path,
};

use pcap_file::{
    Endianness,
    pcapng::{
        Block,
        blocks::interface_description::{InterfaceDescriptionBlock, InterfaceDescriptionOption},
    },
};

use super::{window::Window, *};

impl CaptureReader {
    /// After a block whose framing is broken, looks for the next 4-byte
    /// aligned offset where a known block type starts with a length that
    /// its trailer repeats: pcapng's redundancy makes such a match a
    /// reliable sign that framing is found again.
    pub(super) fn resync_pcapng(
        &mut self,
        at: u64,
        cause: Problem,
        endianness: Endianness,
    ) -> Result<Step, (u64, Problem)> {
        self.window.consume(4);
        self.resync(at, cause, MAX_BLOCK, 4, |bytes, _| {
            plausible_block(bytes, endianness)
        })
    }

    pub(super) fn next_pcapng(&mut self, names: &mut Names) -> Result<Step, (u64, Problem)> {
        let CaptureFormat::PcapNg { parser, .. } = &self.format else {
            unreachable!("called for pcapng files only")
        };
        let endianness = parser.section().endianness;
        let at = self.window.offset;
        let len = match block_len(&mut self.window, Some(endianness)) {
            Ok(Some(len)) => len,
            Ok(None) => return Ok(Step::End),
            Err((at, p @ (Problem::AbsurdLength { .. } | Problem::Invalid { .. }))) => {
                return self.resync_pcapng(at, p, endianness);
            }
            Err(e) => return Err(e),
        };
        self.pending = len;
        let CaptureFormat::PcapNg {
            parser,
            interfaces,
            last_ts,
        } = &mut self.format
        else {
            unreachable!("checked above")
        };
        let bytes = &self.window.available()[..len];
        let block = match parser.next_block(bytes) {
            Ok((_, block)) => block,
            Err(e) => {
                let kind = read_u32(bytes, endianness);
                if kind == SHB {
                    // Without a section header nothing after it can be read.
                    return Err((
                        at,
                        Problem::Invalid {
                            what: "section header block",
                            detail: pcap_err(e),
                        },
                    ));
                }
                if kind == IDB && interfaces.len() < MAX_INTERFACES {
                    // Keep interface numbering aligned: later packets name
                    // interfaces by position.
                    interfaces.push(NgInterface {
                        link: Link::Unsupported(u32::MAX),
                        linktype: u32::MAX,
                        snaplen: 0,
                        ts: TsUnit::MICROS,
                        name: 0,
                    });
                }
                let what = block_name(kind);
                self.problem(
                    at,
                    Problem::Invalid {
                        what,
                        detail: format!("{}; block skipped", pcap_err(e)),
                    },
                );
                self.stats.skipped += 1;
                return Ok(Step::Skipped);
            }
        };
        let offset_in = |data: &[u8]| {
            let start = data.as_ptr() as usize - bytes.as_ptr() as usize;
            (start, start + data.len())
        };
        let (iface_id, ticks, orig_len, range) = match &block {
            Block::SectionHeader(_) => {
                interfaces.clear();
                return Ok(Step::Skipped);
            }
            Block::InterfaceDescription(idb) => {
                if interfaces.len() >= MAX_INTERFACES {
                    self.problem(
                        at,
                        Problem::Invalid {
                            what: "interface description block",
                            detail: format!("more than {MAX_INTERFACES} interfaces in one section; block skipped"),
                        },
                    );
                } else {
                    interfaces.push(ng_interface(idb, &self.path, names));
                }
                return Ok(Step::Skipped);
            }
            Block::EnhancedPacket(epb) => (
                epb.interface_id,
                Some(epb.timestamp.as_nanos() as u64),
                epb.original_len,
                offset_in(&epb.data),
            ),
            Block::Packet(pb) => {
                // pcap-file reads the two timestamp halves as one u64 in the
                // section's byte order; the format stores high word first.
                let ts = match endianness {
                    Endianness::Big => pb.timestamp,
                    Endianness::Little => pb.timestamp.rotate_left(32),
                };
                (
                    u32::from(pb.interface_id),
                    Some(ts),
                    pb.original_len,
                    offset_in(&pb.data),
                )
            }
            Block::SimplePacket(spb) => {
                // The block's data includes padding: the original length
                // and the interface's snapshot length say how much is real.
                let snap = interfaces.first().map_or(u32::MAX, |i| i.snaplen);
                let snap = if snap == 0 { u32::MAX } else { snap };
                let real = spb
                    .data
                    .len()
                    .min(spb.original_len as usize)
                    .min(snap as usize);
                let (s, _) = offset_in(&spb.data);
                (0, None, spb.original_len, (s, s + real))
            }
            _ => return Ok(Step::Skipped),
        };
        let Some(iface) = interfaces.get(iface_id as usize) else {
            self.problem(at, Problem::UnknownInterface(iface_id));
            self.stats.skipped += 1;
            return Ok(Step::Skipped);
        };
        let ts_ns = match ticks {
            Some(t) => iface.ts.to_ns(t),
            None => *last_ts,
        };
        *last_ts = ts_ns;
        if let Link::Unsupported(_) = iface.link {
            self.stats.skipped += 1;
            return Ok(Step::Skipped);
        }
        let captured = (range.1 - range.0) as u32;
        Ok(Step::Packet(Current {
            ts_ns,
            orig_len: orig_len.max(captured),
            link: iface.link,
            linktype: iface.linktype,
            iface: iface.name,
            data: range,
        }))
    }
}

/// A block of a type that carries packets or their context, whose length
/// is sane and repeated by its trailer.
pub(super) fn plausible_block(buf: &[u8], endianness: Endianness) -> bool {
    if buf.len() < 12 {
        return false;
    }
    let kind = read_u32(buf, endianness);
    if !matches!(kind, SHB | IDB | 2..=6) {
        return false;
    }
    let len = read_u32(&buf[4..8], endianness) as usize;
    if !(12..=MAX_BLOCK).contains(&len) || !len.is_multiple_of(4) || buf.len() < len {
        return false;
    }
    read_u32(&buf[len - 4..len], endianness) as usize == len
}

pub(super) const SHB: u32 = 0x0A0D_0D0A;
pub(super) const IDB: u32 = 1;

pub(super) fn block_name(kind: u32) -> &'static str {
    match kind {
        SHB => "section header block",
        IDB => "interface description block",
        2 => "packet block",
        3 => "simple packet block",
        6 => "enhanced packet block",
        _ => "block",
    }
}

/// Frames the next pcapng block: its checked total length, with that many
/// bytes available; `None` at a clean end of file. `endianness` is the
/// section's (`None` before the first section header).
pub(super) fn block_len(
    window: &mut Window,
    endianness: Option<Endianness>,
) -> Result<Option<usize>, (u64, Problem)> {
    let at = window.offset;
    let io = |e: io::Error| (at, Problem::Io(e.to_string()));
    let n = window.fill(12).map_err(io)?;
    if n == 0 {
        return Ok(None);
    }
    if n < 12 {
        return Err((
            at,
            Problem::Truncated {
                what: "a block header",
                needed: 12,
                present: n,
            },
        ));
    }
    let head = window.available();
    // A section header carries its own byte order, after its length.
    let endianness = if head[..4] == PCAPNG_MAGIC {
        match head[8..12] {
            [0x1a, 0x2b, 0x3c, 0x4d] => Endianness::Big,
            [0x4d, 0x3c, 0x2b, 0x1a] => Endianness::Little,
            _ => {
                return Err((
                    at,
                    Problem::Invalid {
                        what: "section header block",
                        detail: format!("byte-order magic {}", hex4(&head[8..12])),
                    },
                ));
            }
        }
    } else {
        match endianness {
            Some(e) => e,
            None => {
                return Err((
                    at,
                    Problem::Invalid {
                        what: "pcapng file",
                        detail: "does not start with a section header block".into(),
                    },
                ));
            }
        }
    };
    let len = read_u32(&head[4..8], endianness) as usize;
    if len > MAX_BLOCK {
        return Err((
            at,
            Problem::AbsurdLength {
                what: "a block",
                len: len as u64,
                max: MAX_BLOCK,
            },
        ));
    }
    if len < 12 || !len.is_multiple_of(4) {
        return Err((
            at,
            Problem::Invalid {
                what: block_name(read_u32(head, endianness)),
                detail: format!(
                    "total length {len} (a block is a multiple of 4, at least 12): the blocks after it cannot be framed"
                ),
            },
        ));
    }
    let n = window.fill(len).map_err(io)?;
    if n < len {
        return Err((
            at,
            Problem::Truncated {
                what: block_name(read_u32(window.available(), endianness)),
                needed: len,
                present: n,
            },
        ));
    }
    let trailer = read_u32(&window.available()[len - 4..len], endianness) as usize;
    if trailer != len {
        return Err((
            at,
            Problem::Invalid {
                what: block_name(read_u32(window.available(), endianness)),
                detail: format!(
                    "total length {len} at its start but {trailer} at its end: the blocks after it cannot be framed"
                ),
            },
        ));
    }
    Ok(Some(len))
}

pub(super) fn ng_interface(
    idb: &InterfaceDescriptionBlock,
    path: &Path,
    names: &mut Names,
) -> NgInterface {
    let mut ts = TsUnit::MICROS;
    let mut name = None;
    for opt in &idb.options {
        match opt {
            InterfaceDescriptionOption::IfTsResol(r) => ts.resol = *r,
            InterfaceDescriptionOption::IfTsOffset(o) => ts.offset_s = *o,
            InterfaceDescriptionOption::IfName(n) if !n.trim().is_empty() => {
                name = Some(n.trim().to_string())
            }
            _ => {}
        }
    }
    let name = name.unwrap_or_else(|| file_label(path));
    NgInterface {
        link: Link::from_linktype(u32::from(idb.linktype)),
        linktype: u32::from(idb.linktype),
        snaplen: idb.snaplen,
        ts,
        name: names.intern(&name),
    }
}
