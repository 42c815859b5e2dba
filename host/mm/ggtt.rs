// SPDX-License-Identifier: GPL-2.0

//! The GGTT of one vGPU: the guest's entries as it wrote them through the GTT window
//! (BAR0 + 8 MiB), and the host entries the backend uses, which point at pinned guest
//! pages.
//!
//! As GVT-g (`gvt/gtt.c: emulate_ggtt_mmio_write`):
//!
//! - Ballooning, no translation: a guest entry at index `i` maps graphics address
//!   `i << 12` for the guest and for the host alike. Entries outside the vGPU's
//!   aperture and hidden slices are dropped and counted (a ballooned guest may write the
//!   whole table).
//! - 8-byte writes apply at once. A 4-byte write updates the guest entry and parks the
//!   index until its other half arrives (16 parked at most, the oldest is dropped and
//!   counted); meanwhile the host entry points at the scratch page, not present.
//! - A present entry's guest address (bits 38:12, the device's 39-bit DMA range) is
//!   pinned through the pin cache and mapped with [`Gpu::dma_map`]; the host entry is
//!   `DevAddr | PRESENT`. An address outside that range, or a page that cannot be
//!   pinned, maps the scratch page (present), counted; a not-present entry maps the
//!   scratch page, not present. The new host entry is written before the old mapping is
//!   dropped, and every write invalidates.
//! - Reads return the guest entry.
//!
//! As kvmgt caches its DMA mappings by guest frame (`kvmgt.c: gvt_dma_map_page`,
//! refcounted), entries that name the same guest frame share one device mapping (a guest
//! that points every entry at one scratch page makes one mapping, not a million); the
//! pin itself is shared through the pin cache. An entry whose page the user unmapped
//! keeps its host entry, which then faults in the backend (the page's accesses fail with
//! `EFAULT`) until the guest rewrites it, as kvmgt leaves GTT entries on `dma_unmap`; a
//! new entry for that frame gets a fresh mapping of its own, not the dead one.
//!
//! Locking: a vGPU's `Ggtt` sits behind its `ggtt` mutex (lock order: `submit` →
//! `ppgtt` → `ggtt` → `state` → `irqs`); it may pin under it, since `dma_unmap` never
//! takes it.

use crate::{
    abi::gtt,
    gpu::{DevAddr, DevPage, Gpu, HostMem, PAGE},
    mm::{
        guest::{GuestMemory, GuestPage, Pinner, View},
        partition::Slice,
    },
};
use kernel::{
    prelude::*,
    rbtree::{RBTree, RBTreeNode},
    sync::Arc,
};

/// Bytes of one GGTT entry.
pub(crate) const ENTRY: u32 = 8;
/// Parked 4-byte halves per vGPU.
pub(crate) const PARKED_MAX: usize = 16;
/// Guest addresses a present entry may name: the device's 39-bit DMA range.
const DMA_LIMIT: u64 = 1 << 39;

/// What the GGTT did, for debugfs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct GgttStats {
    /// Whole entries applied (8-byte writes and merged halves).
    pub(crate) writes: u64,
    /// Writes outside the vGPU's slices, dropped.
    pub(crate) dropped: u64,
    /// 4-byte halves parked.
    pub(crate) halves: u64,
    /// Parked halves dropped because the list was full.
    pub(crate) halves_dropped: u64,
    /// Present entries now mapping a guest page.
    pub(crate) mapped: u64,
    /// Present entries mapped to scratch: address out of range.
    pub(crate) bad_addr: u64,
    /// Present entries mapped to scratch: the page could not be pinned or mapped.
    pub(crate) pin_failed: u64,
    /// Refused accesses to the window (size or alignment).
    pub(crate) bad_access: u64,
    /// Aperture accesses through an entry that maps no guest page.
    pub(crate) aperture_unmapped: u64,
    /// Aperture accesses served.
    pub(crate) aperture: u64,
}

/// A present host entry's guest page.
struct Mapping<G: GuestPage + 'static> {
    page: Arc<View<G>>,
    dev: DevAddr,
    /// The guest frame.
    gfn: u64,
    /// Whether the mapping is the frame's shared one in [`Ggtt::frames`] (else its own,
    /// made while the shared one was dead).
    shared: bool,
}

/// The device mapping of a guest frame, shared by the entries that name it.
struct Frame<G: GuestPage + 'static> {
    page: Arc<View<G>>,
    dev: DevAddr,
    /// Entries that use it.
    refs: usize,
}

/// A 4-byte half waiting for its other half.
#[derive(Clone, Copy)]
struct Parked {
    index: u32,
    /// Which half was written: 0 low, 1 high.
    half: u32,
}

/// The GGTT of one vGPU.
pub(crate) struct Ggtt<P: Pinner + Clone>
where
    P::Page: 'static,
{
    gpu: Arc<dyn Gpu>,
    mem: Arc<GuestMemory<P>>,
    slice: Slice,
    /// Backs every entry that maps no guest page.
    scratch: Arc<dyn HostMem>,
    /// Guest entries of the aperture slice, then of the hidden slice.
    guest: KVVec<u64>,
    /// Present host entries that map a guest page, by entry index.
    maps: RBTree<u32, Mapping<P::Page>>,
    /// The shared device mappings, by guest frame.
    frames: RBTree<u64, Frame<P::Page>>,
    parked: KVec<Parked>,
    stats: GgttStats,
}

impl<P: Pinner + Clone> Ggtt<P>
where
    P::Page: 'static,
{
    /// The GGTT of a vGPU with `slice`, every entry not present (host entries point at
    /// the scratch page).
    ///
    /// # Errors
    ///
    /// `ENOMEM`, or the backend's error writing its entries.
    pub(crate) fn new(gpu: Arc<dyn Gpu>, mem: Arc<GuestMemory<P>>, slice: Slice) -> Result<Self> {
        let entries = (slice.aperture_size + slice.hidden_size) / PAGE;
        let entries = usize::try_from(entries).map_err(|_| EINVAL)?;
        let scratch = gpu.alloc(1)?;
        let mut g = Self {
            gpu,
            mem,
            slice,
            scratch,
            guest: KVVec::from_elem(0u64, entries, GFP_KERNEL)?,
            maps: RBTree::new(),
            frames: RBTree::new(),
            parked: KVec::with_capacity(PARKED_MAX, GFP_KERNEL)?,
            stats: GgttStats::default(),
        };
        g.reset()?;
        Ok(g)
    }

    /// The slot in `guest` of entry `index`, if the vGPU owns it.
    fn slot(&self, index: u32) -> Option<usize> {
        let gm = u64::from(index) * PAGE;
        let s = &self.slice;
        let at = if gm >= s.aperture_base && gm - s.aperture_base < s.aperture_size {
            (gm - s.aperture_base) / PAGE
        } else if gm >= s.hidden_base && gm - s.hidden_base < s.hidden_size {
            (s.aperture_size + gm - s.hidden_base) / PAGE
        } else {
            return None;
        };
        usize::try_from(at).ok()
    }

    /// Every entry index the vGPU owns.
    fn indices(&self) -> impl Iterator<Item = u32> {
        let s = self.slice;
        let range = |base: u64, size: u64| (base / PAGE) as u32..((base + size) / PAGE) as u32;
        Iterator::chain(
            range(s.aperture_base, s.aperture_size),
            range(s.hidden_base, s.hidden_size),
        )
    }

    fn scratch_pte(&self, present: bool) -> u64 {
        self.scratch.dev_addr() | (u64::from(present) * gtt::PTE_PRESENT)
    }

    /// Every entry back to not present: host entries at scratch, mappings and parked
    /// halves dropped. For power-on, device reset and close.
    ///
    /// # Errors
    ///
    /// The backend's error writing an entry (the rest are still written).
    pub(crate) fn reset(&mut self) -> Result {
        let mut ret = Ok(());
        let pte = self.scratch_pte(false);
        for i in self.indices() {
            if let Err(e) = self.gpu.ggtt_write(i, pte) {
                ret = Err(e);
            }
        }
        self.gpu.ggtt_invalidate();
        let maps = core::mem::take(&mut self.maps);
        for (_, m) in maps.iter().filter(|(_, m)| !m.shared) {
            self.gpu.dma_unmap(m.dev);
        }
        drop(maps);
        let frames = core::mem::take(&mut self.frames);
        for (_, f) in frames.iter() {
            self.gpu.dma_unmap(f.dev);
        }
        drop(frames);
        self.guest.iter_mut().for_each(|e| *e = 0);
        self.parked.clear();
        self.stats.mapped = 0;
        ret
    }

    /// A guest access to the GTT window: `off` bytes from its start, `size` 4 or 8,
    /// naturally aligned. Writes are applied (or dropped, counted); never an error the
    /// guest could see, as on hardware.
    ///
    /// # Errors
    ///
    /// `EINVAL` for another size or alignment, or an offset outside the window.
    pub(crate) fn write(&mut self, off: u32, size: usize, v: u64) -> Result {
        let index = self.check(off, size)?;
        let Some(slot) = self.slot(index) else {
            self.stats.dropped += 1;
            return Ok(());
        };
        if size == 8 {
            self.unpark(index);
            return self.apply(index, slot, v);
        }
        let half = (off / 4) % 2;
        let shift = 32 * half;
        let old = self.guest[slot];
        let new = (old & !(0xffff_ffffu64 << shift)) | ((v & 0xffff_ffff) << shift);
        match self.parked.iter().position(|p| p.index == index) {
            Some(at) if self.parked[at].half != half => {
                self.parked.remove(at)?;
                self.apply(index, slot, new)
            }
            Some(_) => {
                self.guest[slot] = new;
                Ok(())
            }
            None => {
                if self.parked.len() == PARKED_MAX {
                    self.parked.remove(0)?;
                    self.stats.halves_dropped += 1;
                }
                self.parked.push(Parked { index, half }, GFP_KERNEL)?;
                self.stats.halves += 1;
                self.guest[slot] = new;
                // Until the other half arrives, the device sees scratch, not present.
                let pte = self.scratch_pte(false);
                self.install(index, pte, None)
            }
        }
    }

    /// Reads the guest's entry (4 or 8 bytes). Entries the vGPU does not own read 0.
    ///
    /// # Errors
    ///
    /// As for [`Self::write`].
    pub(crate) fn read(&mut self, off: u32, size: usize) -> Result<u64> {
        let index = self.check(off, size)?;
        let e = self.slot(index).map_or(0, |s| self.guest[s]);
        Ok(if size == 8 {
            e
        } else {
            (e >> (32 * ((off / 4) % 2))) & 0xffff_ffff
        })
    }

    /// The entry index of a window access, if its size and alignment are right.
    fn check(&mut self, off: u32, size: usize) -> Result<u32> {
        let ok =
            matches!(size, 4 | 8) && off % size as u32 == 0 && off < crate::abi::regs::GTT_SIZE;
        if !ok {
            self.stats.bad_access += 1;
            return Err(EINVAL);
        }
        Ok(off / ENTRY)
    }

    fn unpark(&mut self, index: u32) {
        self.parked.retain(|p| p.index != index);
    }

    /// Applies a whole guest entry.
    fn apply(&mut self, index: u32, slot: usize, pte: u64) -> Result {
        self.guest[slot] = pte;
        self.stats.writes += 1;
        if pte & gtt::PTE_PRESENT == 0 {
            let host = self.scratch_pte(false);
            return self.install(index, host, None);
        }
        // Bits 63:39 must be clear: the device's DMA range (GEN9 PTE bits 38:12).
        if pte & !gtt::PTE_ADDR_MASK & !0xfff != 0 {
            self.stats.bad_addr += 1;
            let host = self.scratch_pte(true);
            return self.install(index, host, None);
        }
        let addr = pte & gtt::PTE_ADDR_MASK;
        debug_assert!(addr < DMA_LIMIT);
        match self.map(addr) {
            Ok(m) => {
                let host = m.dev | gtt::PTE_PRESENT;
                self.install(index, host, Some(m))
            }
            Err(_) => {
                self.stats.pin_failed += 1;
                let host = self.scratch_pte(true);
                self.install(index, host, None)
            }
        }
    }

    /// The device mapping of the guest page at `addr`: the frame's shared one, made
    /// (pinned and mapped) on first use.
    fn map(&mut self, addr: u64) -> Result<Mapping<P::Page>> {
        let gfn = addr / PAGE;
        let live = match self.frames.get_mut(&gfn) {
            Some(f) if f.page.is_live() => {
                f.refs += 1;
                return Ok(Mapping {
                    page: f.page.clone(),
                    dev: f.dev,
                    gfn,
                    shared: true,
                });
            }
            Some(_) => false,
            None => true,
        };
        let view = Arc::new(self.mem.map(addr, PAGE as usize, true)?, GFP_KERNEL)?;
        let dev: Arc<dyn DevPage> = view.clone();
        let dev = self.gpu.dma_map(dev)?;
        if !live {
            // The shared mapping is dead (the user unmapped the page); its entries keep
            // it until they are rewritten, this one gets its own.
            return Ok(Mapping {
                page: view,
                dev,
                gfn,
                shared: false,
            });
        }
        let frame = Frame {
            page: view.clone(),
            dev,
            refs: 1,
        };
        if let Err(e) = self.frames.try_create_and_insert(gfn, frame, GFP_KERNEL) {
            self.gpu.dma_unmap(dev);
            return Err(e);
        }
        Ok(Mapping {
            page: view,
            dev,
            gfn,
            shared: true,
        })
    }

    /// Gives back what a mapping holds: its reference to the frame's shared mapping
    /// (the last one unmaps it), or its own mapping.
    fn release(&mut self, m: Mapping<P::Page>) {
        if !m.shared {
            self.gpu.dma_unmap(m.dev);
            return;
        }
        let last = match self.frames.get_mut(&m.gfn) {
            Some(f) => {
                f.refs = f.refs.saturating_sub(1);
                f.refs == 0
            }
            None => false,
        };
        if last {
            if let Some(f) = self.frames.remove(&m.gfn) {
                self.gpu.dma_unmap(f.dev);
            }
        }
    }

    /// Device mappings of guest frames live now (shared and own).
    pub(crate) fn frames(&self) -> usize {
        self.frames.iter().count() + self.maps.iter().filter(|(_, m)| !m.shared).count()
    }

    /// Writes host entry `index`, then drops the mapping it replaced.
    fn install(&mut self, index: u32, host: u64, m: Option<Mapping<P::Page>>) -> Result {
        let written = self.gpu.ggtt_write(index, host);
        self.gpu.ggtt_invalidate();
        let old = match m {
            Some(m) if written.is_ok() => {
                let node = match RBTreeNode::new(index, m, GFP_KERNEL) {
                    Ok(n) => n,
                    Err(e) => {
                        // The mapping went with the failed allocation; its entry is
                        // written: point it at scratch again.
                        let _ = self.gpu.ggtt_write(index, self.scratch_pte(false));
                        return Err(e);
                    }
                };
                self.stats.mapped += 1;
                self.maps.insert(node).map(|n| n.to_key_value().1)
            }
            Some(m) => {
                self.release(m);
                self.maps.remove(&index)
            }
            None => self.maps.remove(&index),
        };
        if let Some(old) = old {
            self.stats.mapped -= 1;
            self.release(old);
        }
        written
    }

    /// The guest page entry `index` maps, if it maps one: how the mediator reaches a
    /// guest context image, ring or status page by graphics address.
    pub(crate) fn page(&self, index: u32) -> Option<Arc<View<P::Page>>> {
        self.maps.get(&index).map(|m| m.page.clone())
    }

    /// Whether `[gm, gm + len)` lies inside one of the vGPU's slices.
    pub(crate) fn owns(&self, gm: u64, len: u64) -> bool {
        let s = &self.slice;
        gtt::range_inside(gm, len, s.aperture_base, s.aperture_size)
            || gtt::range_inside(gm, len, s.hidden_base, s.hidden_size)
    }

    /// A guest access to the aperture (BAR2) at graphics address `gm` (inside the vGPU's
    /// aperture slice), `size` 1, 2, 4 or 8, naturally aligned: served through the guest
    /// page the entry maps. Reads through an entry that maps none return 0.
    ///
    /// # Errors
    ///
    /// `EINVAL` for a bad size or alignment or an address outside the slice.
    pub(crate) fn aperture_read(&mut self, gm: u64, size: usize) -> Result<u64> {
        let (index, off) = self.aperture_slot(gm, size)?;
        match self.maps.get(&index).map(|m| m.page.load_sized(off, size)) {
            Some(Ok(v)) => {
                self.stats.aperture += 1;
                Ok(v)
            }
            _ => {
                self.stats.aperture_unmapped += 1;
                Ok(0)
            }
        }
    }

    /// Writes the low `size` bytes of `v` through the aperture; dropped (counted) where
    /// the entry maps no guest page.
    ///
    /// # Errors
    ///
    /// As for [`Self::aperture_read`].
    pub(crate) fn aperture_write(&mut self, gm: u64, size: usize, v: u64) -> Result {
        let (index, off) = self.aperture_slot(gm, size)?;
        match self
            .maps
            .get(&index)
            .map(|m| m.page.store_sized(off, size, v))
        {
            Some(Ok(())) => self.stats.aperture += 1,
            _ => self.stats.aperture_unmapped += 1,
        }
        Ok(())
    }

    fn aperture_slot(&mut self, gm: u64, size: usize) -> Result<(u32, usize)> {
        let s = &self.slice;
        let ok = matches!(size, 1 | 2 | 4 | 8)
            && gm % size as u64 == 0
            && gtt::range_inside(gm, size as u64, s.aperture_base, s.aperture_size);
        if !ok {
            self.stats.bad_access += 1;
            return Err(EINVAL);
        }
        Ok(((gm / PAGE) as u32, (gm % PAGE) as usize))
    }

    /// The counters.
    pub(crate) fn stats(&self) -> GgttStats {
        self.stats
    }

    /// Parked halves now.
    pub(crate) fn parked(&self) -> usize {
        self.parked.len()
    }
}

impl<P: Pinner + Clone> Drop for Ggtt<P>
where
    P::Page: 'static,
{
    fn drop(&mut self) {
        // Nothing to report to: the host entries go back to scratch regardless.
        let _ = self.reset();
    }
}

#[cfg(CONFIG_KUNIT)]
pub(crate) mod fake_gpu;

#[kunit_tests(gvtpv_host_ggtt)]
mod tests {
    use super::fake_gpu::FakeGpu;
    use super::*;
    use crate::mm::guest::fake::FakeGuest;

    type G = Ggtt<Arc<FakeGuest>>;

    /// GEN9 GGTT index of graphics address `gm`.
    const fn idx(gm: u64) -> u32 {
        (gm / PAGE) as u32
    }

    /// Aperture 64 MiB at 128 MiB, hidden 128 MiB at 1.5 GiB; 16 guest pages.
    const SLICE: Slice = Slice {
        id: 1,
        aperture_base: 128 << 20,
        aperture_size: 64 << 20,
        hidden_base: 1536 << 20,
        hidden_size: 128 << 20,
        fence_base: 4,
        fences: 4,
    };
    const AP: u64 = 128 << 20;
    const HID: u64 = 1536 << 20;

    fn setup() -> (Arc<FakeGuest>, Arc<FakeGpu>, G) {
        let guest = FakeGuest::new(16).unwrap();
        let mem = Arc::pin_init(GuestMemory::new(64), GFP_KERNEL).unwrap();
        mem.attach(guest.clone());
        let gpu = FakeGpu::new().unwrap();
        let g = Ggtt::new(gpu.clone(), mem, SLICE).unwrap();
        (guest, gpu, g)
    }

    /// Window offset of the entry for graphics address `gm`.
    const fn win(gm: u64) -> u32 {
        idx(gm) * ENTRY
    }

    fn host(gpu: &FakeGpu, gm: u64) -> u64 {
        gpu.ggtt_read(idx(gm)).unwrap()
    }

    #[test]
    fn whole_entry_maps_the_guest_page() {
        let (guest, gpu, mut g) = setup();
        let pte = 0x3000 | gtt::PTE_PRESENT;
        g.write(win(HID), 8, pte).unwrap();
        assert_eq!(g.read(win(HID), 8).unwrap(), pte);
        let h = host(&gpu, HID);
        assert_eq!(h & gtt::PTE_PRESENT, 1);
        // The device reaches guest frame 3 through the host entry, and only it.
        let page = gpu.page(h & !0xfff).unwrap();
        page.store32(0x10, 0xfeed_f00d).unwrap();
        assert_eq!(guest.peek32(0x3010), 0xfeed_f00d);
        assert_eq!(g.stats().mapped, 1);
        assert_eq!(g.stats().writes, 1);
        assert!(gpu.invalidates() > 0);
    }

    #[test]
    fn halves_merge_and_host_sees_scratch_meanwhile() {
        let (_guest, gpu, mut g) = setup();
        let pte = 0x5000 | gtt::PTE_PRESENT;
        g.write(win(AP) + 4, 4, 0).unwrap();
        assert_eq!(g.parked(), 1);
        assert_eq!(host(&gpu, AP) & gtt::PTE_PRESENT, 0);
        assert_eq!(gpu.mappings(), 0);
        g.write(win(AP), 4, pte & 0xffff_ffff).unwrap();
        assert_eq!(g.parked(), 0);
        assert_eq!(g.read(win(AP), 8).unwrap(), pte);
        assert_eq!(g.read(win(AP), 4).unwrap(), pte & 0xffff_ffff);
        assert_eq!(host(&gpu, AP) & gtt::PTE_PRESENT, 1);
        assert_eq!(gpu.mappings(), 1);
        // The same half twice stays parked; an 8-byte write clears it.
        g.write(win(AP + PAGE), 4, 0x1).unwrap();
        g.write(win(AP + PAGE), 4, 0x4001).unwrap();
        assert_eq!(g.parked(), 1);
        g.write(win(AP + PAGE), 8, 0x4001).unwrap();
        assert_eq!(g.parked(), 0);
        assert_eq!(gpu.mappings(), 2);
    }

    #[test]
    fn parked_halves_are_bounded() {
        let (_guest, _gpu, mut g) = setup();
        for i in 0..(PARKED_MAX as u64 + 1) {
            g.write(win(AP + i * PAGE), 4, 0x1001).unwrap();
        }
        assert_eq!(g.parked(), PARKED_MAX);
        assert_eq!(g.stats().halves_dropped, 1);
    }

    #[test]
    fn entries_outside_the_slices_are_dropped() {
        let (_guest, gpu, mut g) = setup();
        let before = gpu.ggtt_writes();
        for gm in [AP - PAGE, AP + (64 << 20), HID - PAGE, HID + (128 << 20), 0] {
            g.write(win(gm), 8, 0x1001).unwrap();
            assert_eq!(g.read(win(gm), 8).unwrap(), 0);
        }
        assert_eq!(g.stats().dropped, 5);
        assert_eq!(gpu.ggtt_writes(), before);
        // The last entry of each slice is the vGPU's.
        g.write(win(AP + (64 << 20) - PAGE), 8, 0x1001).unwrap();
        g.write(win(HID + (128 << 20) - PAGE), 8, 0x1001).unwrap();
        assert_eq!(g.stats().dropped, 5);
        // Both name guest frame 1: two entries, one shared device mapping.
        assert_eq!((g.stats().mapped, gpu.mappings()), (2, 1));
    }

    #[test]
    fn invalid_frames_map_scratch_present() {
        let (guest, gpu, mut g) = setup();
        let scratch = host(&gpu, AP) & !0xfff;
        // Above the 39-bit DMA range.
        g.write(win(AP), 8, (1 << 39) | gtt::PTE_PRESENT).unwrap();
        assert_eq!(host(&gpu, AP), scratch | gtt::PTE_PRESENT);
        // Outside guest RAM (16 pages), and a frame whose pin fails.
        g.write(win(AP + PAGE), 8, (64 << 12) | gtt::PTE_PRESENT)
            .unwrap();
        assert_eq!(host(&gpu, AP + PAGE), scratch | gtt::PTE_PRESENT);
        guest.fail_at(2);
        g.write(win(AP + 2 * PAGE), 8, 0x2001).unwrap();
        assert_eq!(host(&gpu, AP + 2 * PAGE), scratch | gtt::PTE_PRESENT);
        let st = g.stats();
        assert_eq!((st.bad_addr, st.pin_failed, st.mapped), (1, 2, 0));
        assert_eq!(gpu.mappings(), 0);
        // The guest still reads what it wrote.
        assert_eq!(g.read(win(AP), 8).unwrap(), (1 << 39) | gtt::PTE_PRESENT);
    }

    #[test]
    fn overwrite_and_clear_drop_the_old_mapping() {
        let (_guest, gpu, mut g) = setup();
        g.write(win(HID), 8, 0x1001).unwrap();
        let first = host(&gpu, HID) & !0xfff;
        g.write(win(HID), 8, 0x2001).unwrap();
        let second = host(&gpu, HID) & !0xfff;
        assert_ne!(first, second);
        assert!(gpu.page(first).is_none());
        assert!(gpu.page(second).is_some());
        assert_eq!(gpu.mappings(), 1);
        g.write(win(HID), 8, 0x2000).unwrap();
        assert_eq!(gpu.mappings(), 0);
        assert_eq!(host(&gpu, HID) & gtt::PTE_PRESENT, 0);
        assert_eq!(g.stats().mapped, 0);
    }

    #[test]
    fn entries_of_one_frame_share_its_mapping() {
        let (_guest, gpu, mut g) = setup();
        // Eight entries at one guest page, as a guest filling its GGTT with scratch.
        for i in 0..8 {
            g.write(win(HID + i * PAGE), 8, 0x3001).unwrap();
        }
        assert_eq!(g.stats().mapped, 8);
        assert_eq!((gpu.mappings(), g.frames()), (1, 1));
        let dev = host(&gpu, HID) & !0xfff;
        assert_eq!(host(&gpu, HID + 7 * PAGE) & !0xfff, dev);
        // The mapping stays while one entry still names the frame.
        for i in 0..7 {
            g.write(win(HID + i * PAGE), 8, 0).unwrap();
        }
        assert_eq!(gpu.mappings(), 1);
        assert!(gpu.page(dev).is_some());
        g.write(win(HID + 7 * PAGE), 8, 0x4001).unwrap();
        assert!(gpu.page(dev).is_none());
        assert_eq!((gpu.mappings(), g.frames()), (1, 1));
    }

    #[test]
    fn a_dead_frame_mapping_is_not_reused() {
        let (_guest, gpu, mut g) = setup();
        g.write(win(AP), 8, 0x3001).unwrap();
        let dead = host(&gpu, AP) & !0xfff;
        // The user unmaps the page: the entry keeps its (now faulting) mapping.
        g.mem.unmap(0x3000, PAGE);
        kernel::time::delay::fsleep(kernel::time::Delta::from_millis(30));
        g.write(win(AP + PAGE), 8, 0x3001).unwrap();
        let fresh = host(&gpu, AP + PAGE) & !0xfff;
        assert!(fresh != dead);
        assert_eq!(g.frames(), 2);
        // The fresh one reaches memory, the dead one faults.
        assert!(gpu.page(fresh).unwrap().load32(0).is_ok());
        assert!(gpu.page(dead).unwrap().load32(0).is_err());
        // Rewriting both gives both mappings back.
        g.write(win(AP), 8, 0).unwrap();
        g.write(win(AP + PAGE), 8, 0).unwrap();
        assert_eq!((gpu.mappings(), g.frames()), (0, 0));
    }

    #[test]
    fn aperture_goes_through_the_guest_entries() {
        let (guest, _gpu, mut g) = setup();
        g.write(win(AP + PAGE), 8, 0x7001).unwrap();
        let gm = AP + PAGE;
        g.aperture_write(gm + 8, 8, 0x1122_3344_5566_7788).unwrap();
        g.aperture_write(gm + 1, 1, 0xab).unwrap();
        g.aperture_write(gm + 2, 2, 0xcdef).unwrap();
        assert_eq!(guest.peek32(0x7008), 0x5566_7788);
        assert_eq!(guest.peek32(0x7000), 0xcdef_ab00);
        assert_eq!(g.aperture_read(gm + 12, 4).unwrap(), 0x1122_3344);
        assert_eq!(g.aperture_read(gm + 3, 1).unwrap(), 0xcd);
        assert_eq!(g.stats().aperture, 5);
        // Through an entry that maps nothing: reads 0, writes dropped, counted.
        assert_eq!(g.aperture_read(AP, 4).unwrap(), 0);
        g.aperture_write(AP, 4, 1).unwrap();
        assert_eq!(g.stats().aperture_unmapped, 2);
        // Unaligned, odd sizes, outside the aperture slice: refused.
        assert!(g.aperture_read(gm + 2, 4).is_err());
        assert!(g.aperture_read(gm, 3).is_err());
        assert!(g.aperture_read(HID, 4).is_err());
        assert!(g.aperture_read(AP + (64 << 20) - 2, 4).is_err());
    }

    #[test]
    fn window_accesses_must_be_whole_and_aligned() {
        let (_guest, _gpu, mut g) = setup();
        assert!(g.write(win(AP), 2, 0).is_err());
        assert!(g.write(win(AP) + 4, 8, 0).is_err());
        assert!(g.read(win(AP) + 2, 4).is_err());
        assert!(g.write(crate::abi::regs::GTT_SIZE, 4, 0).is_err());
        assert_eq!(g.stats().bad_access, 4);
    }

    #[test]
    fn reset_returns_every_entry_to_scratch() {
        let (_guest, gpu, mut g) = setup();
        g.write(win(AP), 8, 0x1001).unwrap();
        g.write(win(HID), 8, 0x2001).unwrap();
        g.write(win(HID + PAGE), 4, 0x3001).unwrap();
        g.reset().unwrap();
        assert_eq!(gpu.mappings(), 0);
        assert_eq!(g.parked(), 0);
        for gm in [AP, HID, HID + PAGE] {
            assert_eq!(host(&gpu, gm) & gtt::PTE_PRESENT, 0);
            assert_eq!(g.read(win(gm), 8).unwrap(), 0);
        }
        // Dropping the GGTT unmaps too.
        g.write(win(AP), 8, 0x1001).unwrap();
        assert_eq!(gpu.mappings(), 1);
        drop(g);
        assert_eq!(gpu.mappings(), 0);
    }
}
