// SPDX-License-Identifier: GPL-2.0

//! The two ways a shadow PPGTT stays in sync with the guest's tables.
//!
//! - **KVM** (a [`Tracker`] is set): every guest table frame is write-protected while it
//!   has a shadow; the guest's writes come back through [`Ppgtt::track_write`] after KVM
//!   emulated them (GVT-g: `kvmgt.c: kvmgt_page_track_write`). A whole aligned 8-byte
//!   entry is re-shadowed at once; a part of one (a 4-byte half) makes the shadow entry
//!   non-present and parks it until the rest arrives or the next [`Ppgtt::prepare`]
//!   (GVT-g: `ppgtt_handle_guest_write_page_table_bytes`, `intel_vgpu_flush_post_shadow`).
//!   A frame whose protection failed (no memslot) or went with its memslot
//!   ([`Ppgtt::remove_region`]) is *lost*: while any is, `prepare` re-validates too, and
//!   protects it again when it can.
//! - **Re-validation** (no tracker; **Decision**, not in GVT-g): `prepare` copies every
//!   table of the root again, top-down, compares it with the validated copy and
//!   re-shadows the entries that changed. A table changed while a workload runs is seen
//!   at the next submission, as on hardware without a TLB flush.

use super::{
    shadow::{Kind, Slot, ENTRIES, STRIDE},
    Ppgtt, PpgttStats, SyncStats,
};
use crate::{gpu::PAGE, mm::guest::Pinner, vfio::kvm::KvmTrack};
use kernel::{
    prelude::*,
    rbtree::{RBTree, RBTreeNode},
    sync::Arc,
};

/// Write protection of guest frames: KVM's in the kernel, a recorder in KUnit.
pub(crate) trait Tracker: Send + Sync {
    /// Write-protects guest frame `gfn` (a guest DMA address >> 12 taken as a guest
    /// physical frame, as kvmgt does); guest writes to it then reach
    /// [`Ppgtt::track_write`].
    ///
    /// # Errors
    ///
    /// The frame cannot be protected (`EINVAL`: in no memslot).
    fn add(&self, gfn: u64) -> Result;
    /// Ends the protection [`Tracker::add`] took.
    fn remove(&self, gfn: u64);
}

impl Tracker for KvmTrack {
    fn add(&self, gfn: u64) -> Result {
        self.add_gfn(gfn)
    }
    fn remove(&self, gfn: u64) {
        // Only frames added and not reported gone are removed: KVM cannot refuse, except
        // for a memslot deleted without its report, which leaves nothing to remove.
        let _ = self.remove_gfn(gfn);
    }
}

/// How a vGPU's shadow PPGTT stays in sync, for debugfs (`ppgtt_sync`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SyncMode {
    /// Guest table frames are write-protected through KVM.
    Kvm,
    /// Every submission re-validates its tables.
    Revalidate,
}

impl SyncMode {
    /// The name debugfs shows.
    pub(crate) const fn name(self) -> &'static str {
        match self {
            SyncMode::Kvm => "kvm",
            SyncMode::Revalidate => "revalidate",
        }
    }
}

/// A part of an entry the guest wrote, waiting for the rest.
#[derive(Clone, Copy)]
pub(super) struct Pending {
    pub(super) key: u64,
    pub(super) index: usize,
    /// Bytes of the entry written since it was parked (bit n: byte n).
    mask: u8,
}

/// Parked entries per vGPU; on overflow the oldest is applied as it stands (its validated
/// copy is whole, just possibly torn).
pub(super) const PENDING_MAX: usize = 64;

/// One guest frame with shadows (two at most: a page table seen with 4 KiB and with
/// 64 KiB entries).
struct Frame {
    shadows: u8,
    /// Whether the tracker protects it now.
    tracked: bool,
}

/// The sync state of a vGPU.
pub(super) struct Tracking {
    tracker: Option<Arc<dyn Tracker>>,
    /// Frames with shadows (KVM mode only).
    frames: RBTree<u64, Frame>,
    /// Frames with shadows that are not protected now.
    lost: usize,
    pending: KVec<Pending>,
}

impl Tracking {
    pub(super) fn new() -> Result<Self> {
        Ok(Self {
            tracker: None,
            frames: RBTree::new(),
            lost: 0,
            pending: KVec::with_capacity(PENDING_MAX, GFP_KERNEL)?,
        })
    }

    pub(super) fn mode(&self) -> SyncMode {
        if self.tracker.is_some() {
            SyncMode::Kvm
        } else {
            SyncMode::Revalidate
        }
    }

    /// Replaces the tracker; only with no shadow left.
    pub(super) fn set(&mut self, t: Option<Arc<dyn Tracker>>) -> Option<Arc<dyn Tracker>> {
        self.frames = RBTree::new();
        self.lost = 0;
        self.pending.clear();
        core::mem::replace(&mut self.tracker, t)
    }

    /// Whether `prepare` must re-walk: no tracker, or frames that lost their protection.
    pub(super) fn needs_walk(&self) -> bool {
        self.tracker.is_none() || self.lost != 0
    }

    /// A shadow of `gfn` is being made: protects the frame unless it is already (done
    /// before the guest table is copied, so that a later write traps).
    ///
    /// # Errors
    ///
    /// `ENOMEM`.
    pub(super) fn shadow_made(&mut self, gfn: u64, stats: &mut PpgttStats) -> Result {
        let Some(t) = &self.tracker else {
            return Ok(());
        };
        if let Some(f) = self.frames.get_mut(&gfn) {
            f.shadows = f.shadows.saturating_add(1);
            return Ok(());
        }
        let node = RBTreeNode::new(
            gfn,
            Frame {
                shadows: 1,
                tracked: false,
            },
            GFP_KERNEL,
        )?;
        self.frames.insert(node);
        let tracked = t.add(gfn).is_ok();
        if let Some(f) = self.frames.get_mut(&gfn) {
            f.tracked = tracked;
        }
        if !tracked {
            stats.untracked += 1;
            self.lost += 1;
        }
        Ok(())
    }

    /// A shadow of `gfn` went: the frame's protection goes with its last shadow.
    pub(super) fn shadow_gone(&mut self, gfn: u64) {
        let Some(f) = self.frames.get_mut(&gfn) else {
            return;
        };
        f.shadows = f.shadows.saturating_sub(1);
        if f.shadows != 0 {
            return;
        }
        let tracked = f.tracked;
        self.frames.remove(&gfn);
        match (&self.tracker, tracked) {
            (Some(t), true) => t.remove(gfn),
            _ => self.lost = self.lost.saturating_sub(1),
        }
    }

    /// Whether `gfn` has shadows but no protection now.
    pub(super) fn is_lost(&self, gfn: u64) -> bool {
        self.frames.get(&gfn).is_some_and(|f| !f.tracked)
    }

    /// Tries to protect a lost frame again (its memslot may be back).
    pub(super) fn retrack(&mut self, gfn: u64) {
        let (Some(t), Some(f)) = (&self.tracker, self.frames.get_mut(&gfn)) else {
            return;
        };
        if !f.tracked && t.add(gfn).is_ok() {
            f.tracked = true;
            self.lost = self.lost.saturating_sub(1);
        }
    }

    /// The memslot of `[gfn, gfn + pages)` is going: its frames are no longer protected
    /// (and must not be un-protected). Returns how many of ours were.
    pub(super) fn region_removed(&mut self, gfn: u64, pages: u64) -> u64 {
        let end = gfn.saturating_add(pages);
        let mut n = 0;
        let mut cur = self.frames.cursor_lower_bound_mut(&gfn);
        while let Some(mut c) = cur {
            let (k, f) = c.current_mut();
            if *k >= end {
                break;
            }
            if f.tracked {
                f.tracked = false;
                n += 1;
            }
            cur = c.move_next();
        }
        self.lost += n as usize;
        n
    }

    /// Parks the bytes `mask` of entry `index` of table `key`. Returns the bytes written
    /// since it was parked, whether it was parked just now, and the oldest entry pushed
    /// out to make room, which the caller applies.
    pub(super) fn park(&mut self, key: u64, index: usize, mask: u8) -> (u8, bool, Option<Pending>) {
        if let Some(p) = self
            .pending
            .iter_mut()
            .find(|p| p.key == key && p.index == index)
        {
            p.mask |= mask;
            return (p.mask, false, None);
        }
        let out = if self.pending.len() >= PENDING_MAX {
            self.pending.remove(0).ok()
        } else {
            None
        };
        let p = Pending { key, index, mask };
        match self.pending.push(p, GFP_KERNEL) {
            Ok(()) => (mask, true, out),
            // No room: the caller applies the entry as it stands.
            Err(_) => (0xff, true, out),
        }
    }

    /// Forgets the parked part of entry `index` of `key`.
    pub(super) fn unpark(&mut self, key: u64, index: usize) {
        self.pending.retain(|p| !(p.key == key && p.index == index));
    }

    /// Forgets the parked entries of table `key`, which is going.
    pub(super) fn forget_table(&mut self, key: u64) {
        self.pending.retain(|p| p.key != key);
    }

    /// Takes one parked entry.
    pub(super) fn pop(&mut self) -> Option<Pending> {
        self.pending.pop()
    }

    /// Parked entries now.
    pub(super) fn parked(&self) -> usize {
        self.pending.len()
    }

    /// Protected frames now.
    pub(super) fn tracked(&self) -> usize {
        self.frames.values().filter(|f| f.tracked).count()
    }
}

impl<P: Pinner + Clone> Ppgtt<P>
where
    P::Page: 'static,
{
    /// Applies every parked entry as its validated copy stands; returns how many.
    pub(super) fn flush_pending(&mut self) -> u64 {
        let mut n = 0;
        // Bounded: applying never parks.
        while let Some(p) = self.track.pop() {
            self.set_entry(p.key, p.index);
            n += 1;
        }
        n
    }

    /// Re-validates table `key` and the tables under it not seen in this walk yet: each
    /// is copied again, compared with its validated copy, and what changed is
    /// re-shadowed. Recursion follows the levels down, four deep at most.
    pub(super) fn revalidate(&mut self, key: u64, st: &mut SyncStats) {
        let (gfn, kind) = Kind::of_key(key);
        let walk = self.walk;
        match self.tables.get_mut(&key) {
            Some(t) if t.seen != walk => t.seen = walk,
            _ => return,
        }
        if self.track.is_lost(gfn) {
            self.track.retrack(gfn);
        }
        let mut fresh = core::mem::take(&mut self.scratch);
        let read = self.read_table(gfn, &mut fresh);
        let mut changed = [0u64; ENTRIES / 64];
        if read.is_ok() {
            st.tables_read += 1;
            if let Some(t) = self.tables.get_mut(&key) {
                for (i, (old, new)) in t.guest.iter_mut().zip(fresh.iter()).enumerate() {
                    if old != new {
                        *old = *new;
                        if let Some(w) = changed.get_mut(i / 64) {
                            *w |= 1 << (i % 64);
                        }
                    }
                }
            }
        } else {
            // The guest unmapped its table: the shadow stays as validated (its pages
            // fault once unpinned) until the guest writes it again.
            self.stats.read_failed += 1;
        }
        self.scratch = fresh;
        let ignored = |i: usize| kind == Kind::Pt64 && i % STRIDE != 0;
        let mut any = false;
        for i in 0..ENTRIES {
            let bit = changed
                .get(i / 64)
                .is_some_and(|w| w & (1 << (i % 64)) != 0);
            if bit && !ignored(i) {
                any = true;
                st.entries_changed += 1;
                self.track.unpark(key, i);
                self.set_entry(key, i);
            }
            let child = match self.tables.get(&key).and_then(|t| t.slots.get(i)) {
                Some(Slot::Table(c)) => *c,
                _ => continue,
            };
            self.revalidate(child, st);
        }
        if any {
            st.tables_changed += 1;
        }
    }

    /// The guest wrote `chunk` at byte `off` of guest frame `gfn` (one page at most).
    pub(super) fn write_page(&mut self, gfn: u64, off: usize, chunk: &[u8]) {
        let mut keys = [0u64; Kind::ALL.len()];
        let mut n = 0;
        for k in Kind::ALL {
            let key = k.key(gfn);
            if self.tables.get(&key).is_some() {
                if let Some(slot) = keys.get_mut(n) {
                    *slot = key;
                    n += 1;
                }
            }
        }
        if n == 0 {
            return;
        }
        self.stats.wp_faults += 1;
        for key in keys.into_iter().take(n) {
            self.write_entries(key, off, chunk);
        }
    }

    /// Applies a guest write to the validated copy of table `key` and re-shadows (or
    /// parks) the entries it touched.
    fn write_entries(&mut self, key: u64, off: usize, chunk: &[u8]) {
        let (_, kind) = Kind::of_key(key);
        let end = off + chunk.len();
        if chunk.is_empty() || end > PAGE as usize {
            return;
        }
        for idx in off / 8..=(end - 1) / 8 {
            let mut mask = 0u8;
            {
                let Some(e) = self.tables.get_mut(&key).and_then(|t| t.guest.get_mut(idx)) else {
                    return;
                };
                let mut b = e.to_le_bytes();
                for a in (idx * 8).max(off)..(idx * 8 + 8).min(end) {
                    if let (Some(dst), Some(src)) = (b.get_mut(a - idx * 8), chunk.get(a - off)) {
                        *dst = *src;
                        mask |= 1 << (a - idx * 8);
                    }
                }
                *e = u64::from_le_bytes(b);
            }
            // The hardware ignores the other slots of a 64 KiB table, and so do we.
            if kind == Kind::Pt64 && idx % STRIDE != 0 {
                continue;
            }
            if mask == 0xff {
                self.track.unpark(key, idx);
                self.set_entry(key, idx);
                continue;
            }
            self.stats.halves += 1;
            let (merged, fresh, out) = self.track.park(key, idx, mask);
            if let Some(p) = out {
                self.stats.halves_forced += 1;
                self.set_entry(p.key, p.index);
            }
            if merged == 0xff {
                self.track.unpark(key, idx);
                self.set_entry(key, idx);
            } else if fresh {
                // Not present until the entry is whole again.
                self.install(key, idx, 0, Slot::Empty);
            }
        }
    }
}
