// SPDX-License-Identifier: GPL-2.0

//! Shadow tables: the validation of guest entries, one host table per (guest frame,
//! kind) shared by every parent that uses it, and leaves over pinned guest pages.
//!
//! As GVT-g (`gvt/gtt.c: ppgtt_populate_spt`, `ppgtt_get_spt`,
//! `intel_vgpu_find_spt_by_gfn`, `ppgtt_handle_guest_write_page_table`):
//!
//! - A table is shadowed once per kind and refcounted by the entries (and roots) that
//!   use it. **Decision:** a frame shadowed at one level is refused at another (GVT-g
//!   looks tables up by frame alone); a page table seen both with 4 KiB and with 64 KiB
//!   entries (the IPS bit differs between two directory entries) gets one shadow of each
//!   kind, where GVT-g re-populates its one shadow in place.
//! - A new shadow entry is written before what the old one used is released.
//! - An entry that fails validation is not present in the shadow (the sim faults on
//!   access; GVT-g points it at its scratch tree) and is counted.
//! - 64 KiB entries: GVT-g always splits them (`split_64KB_gtt_entry`). **Decision:**
//!   a 64 KiB entry the backend maps as one aligned run stays one entry, and its 15
//!   ignored slots get the 4 KiB entries of the same run, so that the table reads right
//!   with and without IPS; the shadow directory entry keeps IPS only while no entry of
//!   the table had to be split into separately mapped pages (then the parents lose IPS).
//! - 2 MiB entries stay one entry over a run, or are split into a host page table of 512
//!   entries (`split_2MB_gtt_entry`), which counts as a table page.

use super::{Ppgtt, Refused};
use crate::{
    abi::gtt,
    gpu::{DevAddr, DevPage, HostMem, PAGE},
    mm::guest::Pinner,
};
use kernel::{prelude::*, rbtree::RBTreeNode, sync::Arc};
use zerocopy::IntoBytes;

/// Entries of one table.
pub(super) const ENTRIES: usize = gtt::PT_ENTRIES;
/// Slot stride of a 64 KiB page table.
pub(super) const STRIDE: usize = gtt::PT_64K_STRIDE;

/// Flags a directory entry keeps in the shadow.
const TABLE_FLAGS: u64 = gtt::PTE_PRESENT | gtt::PTE_RW | gtt::PTE_PWT | gtt::PTE_PCD;
/// Flags a 4 KiB or 64 KiB entry keeps (bit 7 is the PPAT bit there).
const PTE_FLAGS: u64 = TABLE_FLAGS | gtt::PTE_PAT;
/// Flags a 2 MiB entry keeps (its PPAT bit 12 is refused by the alignment check).
const PAGE_2M_FLAGS: u64 = TABLE_FLAGS | gtt::PDE_PS_2M;

/// What a guest table is: its level, and for page tables the size of their pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum Kind {
    /// A page table of 4 KiB entries.
    Pt = 0,
    /// A page table of 64 KiB entries (under a directory entry with IPS).
    Pt64 = 1,
    /// A page directory.
    Pd = 2,
    /// A page-directory pointer table.
    Pdp = 3,
    /// The root.
    Pml4 = 4,
}

impl Kind {
    /// Every kind, by its number.
    pub(super) const ALL: [Kind; 5] = [Kind::Pt, Kind::Pt64, Kind::Pd, Kind::Pdp, Kind::Pml4];

    /// 0 for page tables up to 3 for the PML4.
    pub(super) const fn level(self) -> u8 {
        match self {
            Kind::Pt | Kind::Pt64 => 0,
            Kind::Pd => 1,
            Kind::Pdp => 2,
            Kind::Pml4 => 3,
        }
    }

    /// The key of the shadow of frame `gfn` as this kind: the kinds of a frame sort
    /// together.
    pub(super) const fn key(self, gfn: u64) -> u64 {
        (gfn << 3) | self as u64
    }

    /// The frame and kind of `key`.
    pub(super) const fn of_key(key: u64) -> (u64, Kind) {
        let kind = match key & 7 {
            0 => Kind::Pt,
            1 => Kind::Pt64,
            2 => Kind::Pd,
            3 => Kind::Pdp,
            _ => Kind::Pml4,
        };
        (key >> 3, kind)
    }

    /// Shadow slots entry `index` of this kind writes (a 64 KiB entry owns 16).
    const fn width(self, index: usize) -> usize {
        match self {
            Kind::Pt64 if index % STRIDE == 0 => STRIDE,
            _ => 1,
        }
    }
}

/// Why an entry has no shadow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Refusal {
    /// Address bits at or above 2^39 set.
    Address,
    /// A 1 GiB page (bit 7 in a PDP entry).
    Huge1g,
    /// A 2 MiB page not 2 MiB aligned.
    Misaligned2m,
    /// A directory entry with both PS and IPS.
    PsAndIps,
    /// A used slot of a 64 KiB table not 64 KiB aligned.
    Misaligned64k,
    /// The frame has a shadow at another level.
    Level,
    /// The frame cannot be copied, pinned or mapped (outside guest memory, unmapped).
    Frame,
    /// A per-vGPU bound was reached.
    Limit,
    /// Host memory ran out.
    Memory,
}

impl Refusal {
    /// Counts it.
    pub(super) fn count(self, r: &mut Refused) {
        let c = match self {
            Refusal::Address => &mut r.address,
            Refusal::Huge1g => &mut r.huge_1g,
            Refusal::Misaligned2m => &mut r.misaligned_2m,
            Refusal::PsAndIps => &mut r.ps_and_ips,
            Refusal::Misaligned64k => &mut r.misaligned_64k,
            Refusal::Level => &mut r.level,
            Refusal::Frame => &mut r.frame,
            Refusal::Limit => &mut r.limit,
            Refusal::Memory => &mut r.memory,
        };
        *c += 1;
    }

    /// The error a root that cannot be built returns.
    pub(super) fn errno(self) -> Error {
        match self {
            Refusal::Frame => EFAULT,
            Refusal::Limit => ENOSPC,
            Refusal::Memory => ENOMEM,
            _ => EINVAL,
        }
    }

    fn of_pin(e: Error) -> Self {
        if e == ENOSPC {
            Refusal::Limit
        } else if e == ENOMEM {
            Refusal::Memory
        } else {
            Refusal::Frame
        }
    }
}

/// What a present, valid guest entry maps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Target {
    /// A table of this kind.
    Table(Kind),
    /// This many 4 KiB pages (1, 16 or 512).
    Pages(usize),
}

/// Validates entry `index` of a guest table of `kind`: `None` if the hardware does not
/// use it (not present, or an ignored slot of a 64 KiB table), else the guest address
/// and what it maps, or why it is refused.
pub(super) fn classify(kind: Kind, index: usize, e: u64) -> Option<Result<(u64, Target), Refusal>> {
    if e & gtt::PTE_PRESENT == 0 || (kind == Kind::Pt64 && index % STRIDE != 0) {
        return None;
    }
    // Bits 63:39 must be clear: the device's 39-bit DMA range (bits 11:0 are flags).
    if e & !gtt::PTE_ADDR_MASK & !0xfff != 0 {
        return Some(Err(Refusal::Address));
    }
    let addr = e & gtt::PTE_ADDR_MASK;
    Some(match kind {
        Kind::Pml4 => Ok((addr, Target::Table(Kind::Pdp))),
        Kind::Pdp if e & gtt::PDE_PS_2M != 0 => Err(Refusal::Huge1g),
        Kind::Pdp => Ok((addr, Target::Table(Kind::Pd))),
        Kind::Pd => match gtt::pde_target(e) {
            Err(_) => Err(Refusal::PsAndIps),
            Ok(gtt::PdeTarget::Page2M) if addr % gtt::SZ_2M != 0 => Err(Refusal::Misaligned2m),
            Ok(gtt::PdeTarget::Page2M) => Ok((addr, Target::Pages(ENTRIES))),
            Ok(gtt::PdeTarget::Table64k) => Ok((addr, Target::Table(Kind::Pt64))),
            Ok(gtt::PdeTarget::Table4k) => Ok((addr, Target::Table(Kind::Pt))),
        },
        Kind::Pt => Ok((addr, Target::Pages(1))),
        Kind::Pt64 if addr % gtt::SZ_64K != 0 => Err(Refusal::Misaligned64k),
        Kind::Pt64 => Ok((addr, Target::Pages(STRIDE))),
    })
}

/// Whether the device can hold `dev` in an entry (address bits 38:12).
fn fits(dev: DevAddr) -> bool {
    dev & !gtt::PTE_ADDR_MASK == 0
}

/// The device mappings of a leaf.
pub(super) enum Map {
    /// One mapping of all its pages, contiguous and aligned to its size.
    Run(DevAddr),
    /// One mapping per page.
    Each(KVec<DevAddr>),
}

/// A guest leaf entry (4 KiB, 64 KiB or 2 MiB) and what it holds.
pub(super) struct Leaf {
    /// One-page views of the pin cache, which keep the pages pinned.
    pages: KVec<Arc<dyn DevPage>>,
    map: Map,
    /// A split 2 MiB page: the host page table of its 512 entries.
    split_pt: Option<Arc<dyn HostMem>>,
}

impl Leaf {
    /// The device address of page `k`.
    fn dev(&self, k: usize) -> DevAddr {
        match &self.map {
            Map::Run(d) => d + k as u64 * PAGE,
            Map::Each(v) => v.get(k).copied().unwrap_or(0),
        }
    }

    /// Page `k` of the leaf (0 for a 4 KiB entry, up to 15 or 511).
    pub(super) fn page(&self, k: usize) -> Option<&Arc<dyn DevPage>> {
        self.pages.get(k)
    }

    /// Pages the leaf maps (1, 16 or 512).
    pub(super) fn pages(&self) -> usize {
        self.pages.len()
    }

    /// Whether its pages are mapped one by one.
    fn is_split(&self) -> bool {
        matches!(self.map, Map::Each(_))
    }
}

/// What one shadow slot holds.
pub(super) enum Slot {
    /// Not present.
    Empty,
    /// A reference to the shadow table with this key.
    Table(u64),
    /// A leaf.
    Leaf(KBox<Leaf>),
}

/// The shadow of one guest table.
pub(super) struct Table {
    /// The host table the device walks.
    pub(super) mem: Arc<dyn HostMem>,
    /// The validated copy of the guest table.
    pub(super) guest: KVec<u64>,
    /// What each shadow entry holds.
    pub(super) slots: KVec<Slot>,
    /// Entries and roots that use this shadow.
    pub(super) refs: u32,
    /// 64 KiB entries mapped page by page ([`Kind::Pt64`]).
    split: u32,
    /// The re-validation walk that last copied it.
    pub(super) seen: u64,
}

impl<P: Pinner + Clone> Ppgtt<P>
where
    P::Page: 'static,
{
    /// Copies guest table `gfn` into `out` (its entries, in CPU order).
    pub(super) fn read_table(&self, gfn: u64, out: &mut [u64]) -> Result {
        let addr = gfn.checked_mul(PAGE).ok_or(EINVAL)?;
        self.mem.read(addr, out.as_mut_bytes())?;
        out.iter_mut().for_each(|e| *e = u64::from_le(*e));
        Ok(())
    }

    /// Counts a refusal; a bound reached is also reported by the operation.
    fn refuse(&mut self, r: Refusal) {
        r.count(&mut self.stats.refused);
        if r == Refusal::Limit {
            self.limit_hit = true;
        }
    }

    /// Whether `gfn` has a shadow at another level than `kind`'s.
    fn other_level(&self, gfn: u64, kind: Kind) -> bool {
        Kind::ALL
            .iter()
            .any(|k| k.level() != kind.level() && self.tables.get(&k.key(gfn)).is_some())
    }

    /// Finds or builds the shadow of guest table `gfn` as `kind` and takes a reference to
    /// it; returns its key. Building copies the table and shadows its entries, which
    /// recurses one level down per call (four deep at most).
    pub(super) fn get_table(&mut self, gfn: u64, kind: Kind) -> Result<u64, Refusal> {
        let key = kind.key(gfn);
        if let Some(t) = self.tables.get_mut(&key) {
            t.refs += 1;
            return Ok(key);
        }
        if self.other_level(gfn, kind) {
            return Err(Refusal::Level);
        }
        if self.table_pages >= self.limits.tables {
            return Err(Refusal::Limit);
        }
        let mut guest = KVec::from_elem(0u64, ENTRIES, GFP_KERNEL).map_err(|_| Refusal::Memory)?;
        let mut slots = KVec::with_capacity(ENTRIES, GFP_KERNEL).map_err(|_| Refusal::Memory)?;
        for _ in 0..ENTRIES {
            slots
                .push(Slot::Empty, GFP_KERNEL)
                .map_err(|_| Refusal::Memory)?;
        }
        // Protected before it is copied: a guest write from now on traps, and is applied
        // once this returns (the handler waits for the lock we hold).
        self.track
            .shadow_made(gfn, &mut self.stats)
            .map_err(|_| Refusal::Memory)?;
        let made = self
            .read_table(gfn, &mut guest)
            .map_err(|_| Refusal::Frame)
            .and_then(|()| self.gpu.alloc(1).map_err(|_| Refusal::Memory))
            .and_then(|mem| {
                if !fits(mem.dev_addr()) {
                    return Err(Refusal::Memory);
                }
                let t = Table {
                    mem,
                    guest,
                    slots,
                    refs: 1,
                    split: 0,
                    seen: self.walk,
                };
                RBTreeNode::new(key, t, GFP_KERNEL).map_err(|_| Refusal::Memory)
            });
        match made {
            Ok(node) => {
                self.tables.insert(node);
            }
            Err(r) => {
                self.track.shadow_gone(gfn);
                return Err(r);
            }
        }
        self.table_pages += 1;
        for i in 0..ENTRIES {
            self.set_entry(key, i);
        }
        Ok(key)
    }

    /// Drops a reference to shadow table `key`; the last one frees it, its entries'
    /// tables and pages, and its write protection.
    pub(super) fn put_table(&mut self, key: u64) {
        let Some(t) = self.tables.get_mut(&key) else {
            return;
        };
        t.refs = t.refs.saturating_sub(1);
        if t.refs != 0 {
            return;
        }
        let Some(t) = self.tables.remove(&key) else {
            return;
        };
        self.table_pages = self.table_pages.saturating_sub(1);
        for s in t.slots {
            self.release_slot(s);
        }
        self.track.forget_table(key);
        self.track.shadow_gone(Kind::of_key(key).0);
        // `t.mem` goes here: the backend frees the host table.
    }

    /// Releases what a slot held (after the shadow entry stopped using it).
    pub(super) fn release_slot(&mut self, s: Slot) {
        match s {
            Slot::Empty => {}
            Slot::Table(k) => self.put_table(k),
            Slot::Leaf(l) => self.unmap_leaf(&l),
        }
    }

    fn unmap_leaf(&mut self, l: &Leaf) {
        match &l.map {
            Map::Run(d) => self.gpu.dma_unmap(*d),
            Map::Each(v) => v.iter().for_each(|d| self.gpu.dma_unmap(*d)),
        }
        if l.split_pt.is_some() {
            self.table_pages = self.table_pages.saturating_sub(1);
        }
        self.pins = self.pins.saturating_sub(l.pages.len());
        // The views go with the leaf: the pin cache may evict the pages from now on.
    }

    /// Maps each page of `pages` on its own.
    fn map_each(&self, pages: &[Arc<dyn DevPage>]) -> Result<KVec<DevAddr>, Refusal> {
        let mut devs = KVec::with_capacity(pages.len(), GFP_KERNEL).map_err(|_| Refusal::Memory)?;
        for p in pages {
            let d = match self.gpu.dma_map(p.clone()) {
                Ok(d) if fits(d) => d,
                r => {
                    if let Ok(d) = r {
                        self.gpu.dma_unmap(d);
                    }
                    devs.iter().for_each(|d| self.gpu.dma_unmap(*d));
                    return Err(Refusal::Frame);
                }
            };
            // Capacity reserved above.
            devs.push(d, GFP_KERNEL).map_err(|_| Refusal::Memory)?;
        }
        Ok(devs)
    }

    /// Pins the `n` pages at guest address `addr` of leaf entry `e` and maps them for the
    /// device: as one run where the backend can, else page by page (a 2 MiB page then
    /// gets a host page table).
    fn map_leaf(&mut self, addr: u64, n: usize, e: u64) -> Result<KBox<Leaf>, Refusal> {
        if self.pins + n > self.limits.pins {
            return Err(Refusal::Limit);
        }
        // Allocated first: once pages are mapped, nothing may fail but the mapping.
        let mut leaf = KBox::new(
            Leaf {
                pages: KVec::new(),
                map: Map::Run(0),
                split_pt: None,
            },
            GFP_KERNEL,
        )
        .map_err(|_| Refusal::Memory)?;
        let rw = e & gtt::PTE_RW != 0;
        let mut pages = KVec::with_capacity(n, GFP_KERNEL).map_err(|_| Refusal::Memory)?;
        for k in 0..n as u64 {
            let a = addr + k * PAGE;
            // **Decision:** pinned writable even for a read-only entry (the shadow keeps
            // the guest's RW bit, which the device enforces): the pin cache refuses a
            // writable pin of a page a read-only view holds, so read-only pins are only
            // taken where the guest's memory is read-only to the device anyway.
            let v = match self.mem.map(a, PAGE as usize, true) {
                Ok(v) => v,
                Err(_) if !rw => self
                    .mem
                    .map(a, PAGE as usize, false)
                    .map_err(Refusal::of_pin)?,
                Err(err) => return Err(Refusal::of_pin(err)),
            };
            let v: Arc<dyn DevPage> = Arc::new(v, GFP_KERNEL).map_err(|_| Refusal::Memory)?;
            pages.push(v, GFP_KERNEL).map_err(|_| Refusal::Memory)?;
        }
        let span = n as u64 * PAGE;
        let run = if n == 1 {
            let p = pages.first().ok_or(Refusal::Memory)?;
            Some(self.gpu.dma_map(p.clone()).map_err(|_| Refusal::Frame)?)
        } else {
            self.gpu.map_run(&pages).map_err(|_| Refusal::Frame)?
        };
        let map = match run {
            Some(d) if d % span == 0 && fits(d) => Map::Run(d),
            Some(d) if n == 1 => {
                self.gpu.dma_unmap(d);
                return Err(Refusal::Frame);
            }
            other => {
                if let Some(d) = other {
                    self.gpu.dma_unmap(d);
                }
                self.stats.splits += 1;
                Map::Each(self.map_each(&pages)?)
            }
        };
        leaf.pages = pages;
        leaf.map = map;
        if n == ENTRIES && leaf.is_split() {
            if let Err(r) = self.split_2m(&mut leaf, e) {
                self.unmap_leaf_pages(&leaf);
                return Err(r);
            }
        }
        self.pins += n;
        if leaf.split_pt.is_some() {
            self.table_pages += 1;
        }
        Ok(leaf)
    }

    /// Undoes the device mappings of a leaf that is not counted yet.
    fn unmap_leaf_pages(&self, l: &Leaf) {
        match &l.map {
            Map::Run(d) => self.gpu.dma_unmap(*d),
            Map::Each(v) => v.iter().for_each(|d| self.gpu.dma_unmap(*d)),
        }
    }

    /// Gives a 2 MiB page mapped page by page a host page table of its 512 entries.
    fn split_2m(&mut self, leaf: &mut Leaf, e: u64) -> Result<(), Refusal> {
        if self.table_pages >= self.limits.tables {
            return Err(Refusal::Limit);
        }
        let pt = self.gpu.alloc(1).map_err(|_| Refusal::Memory)?;
        if !fits(pt.dev_addr()) {
            return Err(Refusal::Memory);
        }
        // Bit 7 is PS here and PPAT bit 2 in a 4 KiB entry: not carried over.
        let flags = e & TABLE_FLAGS;
        for k in 0..ENTRIES {
            pt.store64(k * 8, leaf.dev(k) | flags)
                .map_err(|_| Refusal::Memory)?;
        }
        leaf.split_pt = Some(pt);
        Ok(())
    }

    /// Re-shadows entry `i` of table `key` from its validated copy.
    pub(super) fn set_entry(&mut self, key: u64, i: usize) {
        let (_, kind) = Kind::of_key(key);
        if kind == Kind::Pt64 && i % STRIDE != 0 {
            return;
        }
        let Some(e) = self.tables.get(&key).and_then(|t| t.guest.get(i).copied()) else {
            return;
        };
        let new = match classify(kind, i, e) {
            None => Slot::Empty,
            Some(Err(r)) => {
                self.refuse(r);
                Slot::Empty
            }
            Some(Ok((addr, Target::Table(k)))) => match self.get_table(addr / PAGE, k) {
                Ok(c) => Slot::Table(c),
                Err(r) => {
                    self.refuse(r);
                    Slot::Empty
                }
            },
            Some(Ok((addr, Target::Pages(n)))) => match self.map_leaf(addr, n, e) {
                Ok(l) => Slot::Leaf(l),
                Err(r) => {
                    self.refuse(r);
                    Slot::Empty
                }
            },
        };
        self.install(key, i, e, new);
    }

    /// Writes the shadow entry for `new` (from guest entry `e`) at slot `i` of table
    /// `key`, then releases what the slot held: new entries before old ones go.
    pub(super) fn install(&mut self, key: u64, i: usize, e: u64, new: Slot) {
        let (_, kind) = Kind::of_key(key);
        let child = match &new {
            Slot::Table(c) => self.tables.get(c).map(|t| {
                let ips = Kind::of_key(*c).1 == Kind::Pt64 && t.split == 0;
                (t.mem.dev_addr(), ips)
            }),
            _ => None,
        };
        let Some(t) = self.tables.get_mut(&key) else {
            self.release_slot(new);
            return;
        };
        let mut vals = [0u64; STRIDE];
        let width = kind.width(i);
        match (&new, kind) {
            (Slot::Empty, _) => {}
            (Slot::Table(_), _) => {
                let (dev, ips) = child.unwrap_or((0, false));
                let ips = if ips { gtt::PDE_IPS_64K } else { 0 };
                vals[0] = dev | (e & TABLE_FLAGS) | ips;
            }
            (Slot::Leaf(l), Kind::Pd) => {
                vals[0] = match &l.split_pt {
                    Some(pt) => pt.dev_addr() | (e & TABLE_FLAGS),
                    None => l.dev(0) | (e & PAGE_2M_FLAGS),
                };
            }
            (Slot::Leaf(l), _) => {
                // A 64 KiB run: slot 0 is the 64 KiB entry, all 16 are its 4 KiB pages.
                for (k, v) in vals.iter_mut().enumerate().take(width) {
                    *v = l.dev(k) | (e & PTE_FLAGS);
                }
            }
        }
        // Stores to host memory fail only for an offset outside the page, which `i`
        // (below 512) and `width` rule out.
        for (k, v) in vals.iter().enumerate().take(width) {
            let _ = t.mem.store64((i + k) * 8, *v);
        }
        let split = |s: &Slot| u32::from(matches!(s, Slot::Leaf(l) if l.is_split()));
        let Some(slot) = t.slots.get_mut(i) else {
            self.release_slot(new);
            return;
        };
        let was = t.split;
        t.split = (t.split + split(&new)).saturating_sub(split(slot));
        let old = core::mem::replace(slot, new);
        let lost_ips = kind == Kind::Pt64 && was == 0 && t.split != 0;
        if lost_ips {
            self.drop_ips(key);
        }
        self.release_slot(old);
    }

    /// A 64 KiB table got a split entry: the directory entries that use it lose IPS,
    /// which its 4 KiB layout serves. Rare (the backend could not map a run); bounded by
    /// the directory slots.
    fn drop_ips(&mut self, child: u64) {
        for (k, t) in self.tables.iter() {
            if Kind::of_key(*k).1 != Kind::Pd {
                continue;
            }
            for (i, s) in t.slots.iter().enumerate() {
                if matches!(s, Slot::Table(c) if *c == child) {
                    if let Ok(v) = t.mem.load64(i * 8) {
                        let _ = t.mem.store64(i * 8, v & !gtt::PDE_IPS_64K);
                    }
                }
            }
        }
    }
}
