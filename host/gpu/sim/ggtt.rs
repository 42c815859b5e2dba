// SPDX-License-Identifier: GPL-2.0

//! The sim's GGTT: one host entry per 4 KiB of the 4 GiB graphics address space, in GEN8
//! format (`DevAddr | PRESENT`, `gen8_ggtt_pte_encode`).
//!
//! Entries are atomics, so the engines read them without a lock while the mediator writes
//! them; a write is seen by the next access that goes through the entry (the sim has no
//! GGTT TLB, so [`Ggtt::invalidate`] only counts).

use core::sync::atomic::{AtomicU64, Ordering};
use kernel::prelude::*;

/// Entries of a 4 GiB GGTT.
pub(crate) const ENTRIES: u32 = 1 << 20;
/// Size of the GGTT address space.
pub(crate) const SIZE: u64 = (ENTRIES as u64) << 12;
/// Address bits of a GGTT entry (`GEN8_PTE_ADDR_MASK`-like: bits 45:12).
const ADDR_MASK: u64 = ((1 << 46) - 1) & !0xfff;
/// `GEN8_PAGE_PRESENT`.
const PRESENT: u64 = 1;

/// The table.
pub(crate) struct Ggtt {
    /// 8 MiB of entries, from vmalloc.
    entries: KVVec<AtomicU64>,
    invalidations: AtomicU64,
}

impl Ggtt {
    /// A GGTT whose entries are all not present.
    pub(crate) fn new() -> Result<Self> {
        let mut entries = KVVec::with_capacity(ENTRIES as usize, GFP_KERNEL)?;
        for _ in 0..ENTRIES {
            entries
                .push_within_capacity(AtomicU64::new(0))
                .map_err(|_| ENOMEM)?;
        }
        Ok(Self {
            entries,
            invalidations: AtomicU64::new(0),
        })
    }

    /// Writes entry `index`.
    ///
    /// # Errors
    ///
    /// `EINVAL` for an index past the table.
    pub(crate) fn write(&self, index: u32, pte: u64) -> Result {
        let e = self.entries.get(index as usize).ok_or(EINVAL)?;
        e.store(pte, Ordering::Release);
        Ok(())
    }

    /// Reads entry `index`.
    ///
    /// # Errors
    ///
    /// `EINVAL` for an index past the table.
    pub(crate) fn read(&self, index: u32) -> Result<u64> {
        let e = self.entries.get(index as usize).ok_or(EINVAL)?;
        Ok(e.load(Ordering::Acquire))
    }

    /// Counts a TLB invalidation (there is no TLB to drop).
    pub(crate) fn invalidate(&self) {
        self.invalidations.fetch_add(1, Ordering::Relaxed);
    }

    /// The device address of the page graphics address `addr` lies in, if its entry is
    /// present.
    pub(crate) fn translate(&self, addr: u64) -> Option<u64> {
        if addr >= SIZE {
            return None;
        }
        let pte = self
            .entries
            .get((addr >> 12) as usize)?
            .load(Ordering::Acquire);
        (pte & PRESENT != 0).then_some(pte & ADDR_MASK)
    }
}
