//! Several capture files merged into one stream in time order.
use std::{
    cmp::Reverse,
    collections::BinaryHeap,
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use super::*;

/// Several capture files read as one stream in time order: a k-way merge
/// holding one packet per file, so memory does not grow with the files.
pub struct CaptureSet {
    pub(super) readers: Vec<CaptureReader>,
    /// (timestamp, reader) of each reader's current packet; ties go to the
    /// file given first.
    pub(super) heap: BinaryHeap<Reverse<(u64, usize)>>,
    pub(super) names: Names,
    /// Files that could not be opened at all.
    pub failed: Vec<CaptureError>,
    pub(super) started: bool,
}

impl CaptureSet {
    /// Opens every file; those that cannot be read are kept in `failed`.
    pub fn open(paths: &[PathBuf]) -> Self {
        let mut names = Names::default();
        let mut readers = Vec::new();
        let mut failed = Vec::new();
        for (i, p) in paths.iter().enumerate() {
            match CaptureReader::open(i, p, &mut names) {
                Ok(r) => readers.push(r),
                Err(e) => failed.push(e),
            }
        }
        // One file is read ahead by a thread; several are merged record by
        // record, and a thread each would multiply the memory by the files.
        if let [one] = &mut readers[..] {
            one.window.read_ahead();
        }
        Self {
            readers,
            heap: BinaryHeap::new(),
            names,
            failed,
            started: false,
        }
    }

    /// Interface names: the index in [`Packet::iface`] is the position here.
    pub fn interfaces(&self) -> &Names {
        &self.names
    }

    /// Calls `f` for every packet of every file in time order; returns
    /// early with `f`'s error (the packets after it are not read then).
    pub fn for_each<E>(
        &mut self,
        mut f: impl FnMut(&Packet<'_>, &Names) -> Result<(), E>,
    ) -> Result<(), E> {
        if let [reader] = &mut self.readers[..] {
            // One file is already in time order: no merge.
            if std::mem::replace(&mut self.started, true) {
                return Ok(());
            }
            loop {
                // The common case straight to `f`, without the round trip
                // through `current` that the general path takes.
                let c = match reader.next_framed() {
                    Some(c) => {
                        reader.stats.packets += 1;
                        reader.last_ts_ns = Some(c.ts_ns);
                        reader.current = Some(c);
                        c
                    }
                    None => match reader.advance_slow(&mut self.names) {
                        true => match reader.current {
                            Some(c) => c,
                            None => continue,
                        },
                        false => return Ok(()),
                    },
                };
                let p = Packet {
                    ts_ns: c.ts_ns,
                    orig_len: c.orig_len,
                    link: c.link,
                    linktype: c.linktype,
                    iface: c.iface,
                    data: &reader.window.available()[c.data.0..c.data.1],
                    file: reader.index,
                };
                f(&p, &self.names)?;
            }
        }
        if !self.started {
            self.started = true;
            for i in 0..self.readers.len() {
                self.push(i);
            }
        }
        while let Some(Reverse((_, i))) = self.heap.pop() {
            if let Some(p) = self.readers[i].current() {
                f(&p, &self.names)?;
            }
            self.push(i);
        }
        Ok(())
    }

    pub(super) fn push(&mut self, i: usize) {
        if self.readers[i].advance(&mut self.names)
            && let Some(p) = self.readers[i].current()
        {
            self.heap.push(Reverse((p.ts_ns, i)));
        }
    }

    /// (bytes read, total bytes) over the files that opened: progress
    /// through the input, compressed bytes for gzipped files.
    pub fn progress(&self) -> (u64, u64) {
        self.readers.iter().fold((0, 0), |(read, total), r| {
            (
                read + r.consumed.load(Ordering::Relaxed).min(r.size),
                total + r.size,
            )
        })
    }

    /// Bytes read so far, callable while [`for_each`](Self::for_each) runs.
    pub fn progress_counter(&self) -> impl Fn() -> u64 + 'static {
        let files: Vec<(Arc<AtomicU64>, u64)> = self
            .readers
            .iter()
            .map(|r| (r.consumed.clone(), r.size))
            .collect();
        move || {
            files
                .iter()
                .map(|(c, size)| c.load(Ordering::Relaxed).min(*size))
                .sum()
        }
    }

    /// Per-file counters and problems, including files that failed to open.
    pub fn stats(&self) -> Vec<FileStats> {
        let mut out: Vec<FileStats> = self.readers.iter().map(|r| r.stats.clone()).collect();
        for e in &self.failed {
            out.push(FileStats {
                path: e.path.clone(),
                problems: 1,
                errors: vec![e.clone()],
                stopped_early: true,
                ..Default::default()
            });
        }
        out
    }
}
