// SPDX-License-Identifier: GPL-2.0

//! The default store: the registers below 2 MiB the model does not describe keep the
//! last value written, as GVT-g's `intel_vgpu_default_mmio_read/write` do, in a bounded
//! sparse map that also counts the accesses by offset (debugfs `unmodelled`).
//!
//! The map is a sorted vector allocated once with its full capacity, so a trapped access
//! never allocates. A read of an offset not in the map adds it (reading 0) while the map
//! is less than half full, so that a sweep of reads cannot starve later writes; a write
//! adds it while there is room. Beyond that, reads return 0 and writes are dropped,
//! both counted.

use crate::debugfs::Counters;
use core::fmt;
use kernel::prelude::*;

/// Offsets the store tracks at most.
pub(crate) const CAP: usize = 4096;
/// Entries reads may add.
const READ_CAP: usize = CAP / 2;
/// Offsets debugfs lists.
const TOP: usize = 32;

/// One unmodelled register.
#[derive(Clone, Copy, Debug)]
struct Entry {
    off: u32,
    val: u32,
    reads: u32,
    writes: u32,
}

impl Entry {
    fn count(&self) -> u64 {
        u64::from(self.reads) + u64::from(self.writes)
    }
}

/// The unmodelled registers of one vGPU.
pub(crate) struct Store {
    /// Sorted by offset; never longer than [`CAP`], which is its capacity.
    e: KVec<Entry>,
}

impl Store {
    /// An empty store with room for [`CAP`] offsets.
    ///
    /// # Errors
    ///
    /// `ENOMEM`.
    pub(crate) fn new() -> Result<Self> {
        Ok(Self {
            e: KVec::with_capacity(CAP, GFP_KERNEL)?,
        })
    }

    fn add(&mut self, at: usize, e: Entry, limit: usize) -> bool {
        self.e.len() < limit.min(CAP) && self.e.insert_within_capacity(at, e).is_ok()
    }

    /// The value at dword offset `off`, counted.
    pub(crate) fn read(&mut self, off: u32, c: &Counters) -> u32 {
        Counters::inc(&c.default_read);
        match self.e.binary_search_by_key(&off, |e| e.off) {
            Ok(i) => self.e.get_mut(i).map_or(0, |e| {
                e.reads = e.reads.saturating_add(1);
                e.val
            }),
            Err(i) => {
                let new = Entry {
                    off,
                    val: 0,
                    reads: 1,
                    writes: 0,
                };
                if !self.add(i, new, READ_CAP) {
                    Counters::inc(&c.default_untracked);
                }
                0
            }
        }
    }

    /// The value at `off`, not counted (for read-modify-write of a part of it).
    pub(crate) fn peek(&self, off: u32) -> u32 {
        self.e
            .binary_search_by_key(&off, |e| e.off)
            .ok()
            .and_then(|i| self.e.get(i))
            .map_or(0, |e| e.val)
    }

    /// Stores `v` at dword offset `off`, counted; dropped if the store is full.
    pub(crate) fn write(&mut self, off: u32, v: u32, c: &Counters) {
        Counters::inc(&c.default_write);
        match self.e.binary_search_by_key(&off, |e| e.off) {
            Ok(i) => {
                if let Some(e) = self.e.get_mut(i) {
                    e.val = v;
                    e.writes = e.writes.saturating_add(1);
                }
            }
            Err(i) => {
                let new = Entry {
                    off,
                    val: v,
                    reads: 0,
                    writes: 1,
                };
                if !self.add(i, new, CAP) {
                    Counters::inc(&c.default_dropped);
                }
            }
        }
    }

    /// Offsets tracked.
    pub(crate) fn len(&self) -> usize {
        self.e.len()
    }

    /// Power-on: forgets every offset, value and count.
    pub(crate) fn clear(&mut self) {
        self.e.clear();
    }

    /// GPU reset: the values below `limit` go back to 0; offsets and counts stay.
    pub(crate) fn zero_below(&mut self, limit: u32) {
        for e in self.e.iter_mut().filter(|e| e.off < limit) {
            e.val = 0;
        }
    }

    /// Writes the [`TOP`] most accessed offsets, most accessed first.
    pub(crate) fn top(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Selection without allocation: `best` stays sorted by count, descending.
        let mut best: [Option<&Entry>; TOP] = [None; TOP];
        for e in self.e.iter() {
            let Some(pos) = best
                .iter()
                .position(|b| b.is_none_or(|b| e.count() > b.count()))
            else {
                continue;
            };
            best.copy_within(pos..TOP - 1, pos + 1);
            if let Some(b) = best.get_mut(pos) {
                *b = Some(e);
            }
        }
        writeln!(f, "offset     reads      writes     value")?;
        for e in best.iter().flatten() {
            writeln!(
                f,
                "{:#08x} {:<10} {:<10} {:#010x}",
                e.off, e.reads, e.writes, e.val
            )?;
        }
        Ok(())
    }
}

#[kunit_tests(gvtpv_host_store)]
mod tests {
    use super::*;
    use kernel::sync::atomic::Relaxed;

    #[test]
    fn keeps_values_and_counts_by_offset() {
        let c = Counters::default();
        let mut s = Store::new().unwrap();
        assert_eq!(s.read(0x1234, &c), 0);
        s.write(0x1234, 7, &c);
        s.write(0x10, 9, &c);
        assert_eq!(s.read(0x1234, &c), 7);
        assert_eq!(s.peek(0x10), 9);
        assert_eq!(s.len(), 2);
        // Sorted by offset.
        assert_eq!(s.e[0].off, 0x10);
        assert_eq!((s.e[1].reads, s.e[1].writes), (2, 1));
        s.zero_below(0x100);
        assert_eq!(s.peek(0x10), 0);
        assert_eq!(s.peek(0x1234), 7);
        s.clear();
        assert_eq!(s.len(), 0);
        assert_eq!(c.default_read.load(Relaxed), 2);
        assert_eq!(c.default_write.load(Relaxed), 2);
    }

    #[test]
    fn bounded_reads_cannot_starve_writes() {
        let c = Counters::default();
        let mut s = Store::new().unwrap();
        for i in 0..CAP as u32 {
            s.read(4 * i, &c);
        }
        assert_eq!(s.len(), READ_CAP);
        assert_eq!(c.default_untracked.load(Relaxed), (CAP - READ_CAP) as u64);
        for i in 0..CAP as u32 {
            s.write(0x10_0000 + 4 * i, i, &c);
        }
        assert_eq!(s.len(), CAP);
        assert_eq!(c.default_dropped.load(Relaxed), READ_CAP as u64);
        // A tracked offset still takes writes when full.
        s.write(0, 5, &c);
        assert_eq!(s.peek(0), 5);
        assert_eq!(c.default_dropped.load(Relaxed), READ_CAP as u64);
    }
}
