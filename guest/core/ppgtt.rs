// SPDX-License-Identifier: GPL-2.0

//! 4-level PPGTTs built in guest memory (`gt/gen8_ppgtt.c`), with 4 KiB, 64 KiB and
//! 2 MiB pages, and the PPGTT [`Binder`].
//!
//! As i915 splits `allocate_va_range` (may allocate, may fail) from `insert_entries`
//! (only writes entries), [`Ppgtt::allocate_va_range`] allocates the page tables of a
//! range and [`Binder::bind`] only writes entries into them. Every entry is written with
//! one 8-byte store: the host tracks or re-validates the guest's tables and treats a
//! 4-byte half specially.
//!
//! The host learns about each PPGTT from PVINFO: `pdp[0]` = the PML4's DMA address, then
//! `g2v_notify` = 4 at creation and 5 before destruction (`gen8_ppgtt_notify_vgt`).

use super::{mem::GpuMem, mmio::Mmio, Access, Binder};
use crate::abi::gtt::{
    self, PDE_IPS_64K, PDE_PS_2M, PTE_PRESENT, PTE_RW, PT_ENTRIES, SZ_2M, SZ_4K, SZ_64K,
};
use kernel::{
    device::{Bound, Device},
    new_mutex,
    prelude::*,
    sync::{Arc, Mutex},
};

/// How a whole 2 MiB window of the address space is mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Layout {
    /// One 2 MiB page in the page directory (`GEN8_PDE_PS_2M`).
    Huge2M,
    /// A page table of 64 KiB pages (`GEN8_PDE_IPS_64K`, every 16th slot used).
    Table64K,
    /// A page table of 4 KiB pages.
    Table4K,
}

/// The layout for a 2 MiB window mapping `pages` (512 DMA addresses, in order):
/// 2 MiB if they are one contiguous, 2 MiB aligned run; 64 KiB if every run of 16 is
/// contiguous and 64 KiB aligned (the whole table must be, `gtt::check_pt_64k`); else
/// 4 KiB.
pub(crate) fn window_layout(pages: &[u64]) -> Layout {
    let contiguous = |run: &[u64]| {
        run.windows(2)
            .all(|w| w[0].checked_add(SZ_4K) == Some(w[1]))
    };
    if pages.len() != PT_ENTRIES {
        return Layout::Table4K;
    }
    if pages[0] % SZ_2M == 0 && contiguous(pages) {
        Layout::Huge2M
    } else if pages
        .chunks(gtt::PT_64K_STRIDE)
        .all(|run| run[0] % SZ_64K == 0 && contiguous(run))
    {
        Layout::Table64K
    } else {
        Layout::Table4K
    }
}

/// A page-directory entry pointing at a table (`gen8_pde_encode`, `PPAT_CACHED_PDE`).
const fn pde(table: u64) -> u64 {
    (table & gtt::PTE_ADDR_MASK) | PTE_PRESENT | PTE_RW
}

/// The memory of one table page.
pub(crate) enum TableMem {
    /// GPU-visible memory.
    Dma(GpuMem<u64>),
    /// Heap memory with a made-up address, for KUnit (no device there).
    #[cfg_attr(not(CONFIG_KUNIT = "y"), allow(dead_code))]
    Heap(KVec<u64>, u64),
}

impl TableMem {
    fn dma(&self) -> u64 {
        match self {
            TableMem::Dma(m) => m.dma(),
            TableMem::Heap(_, a) => *a,
        }
    }

    fn read(&self, i: usize) -> Result<u64> {
        match self {
            TableMem::Dma(m) => m.read(i),
            TableMem::Heap(v, _) => v.get(i).copied().ok_or(ERANGE),
        }
    }

    fn write(&mut self, i: usize, e: u64) -> Result {
        match self {
            TableMem::Dma(m) => m.write(i, e),
            TableMem::Heap(v, _) => {
                *v.get_mut(i).ok_or(ERANGE)? = e;
                Ok(())
            }
        }
    }
}

/// Where table pages come from.
pub(crate) trait TableAlloc {
    /// One zeroed table page.
    fn alloc(&self) -> Result<TableMem>;
}

/// Table pages in GPU-visible memory of a device.
pub(crate) struct DmaTables<'a>(pub(crate) &'a Device<Bound>);

impl TableAlloc for DmaTables<'_> {
    fn alloc(&self) -> Result<TableMem> {
        Ok(TableMem::Dma(GpuMem::new(self.0, 1)?))
    }
}

/// What a page-directory entry holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PdeKind {
    /// Not present.
    None,
    /// Points at its page table, 4 KiB entries.
    Pt4k,
    /// Points at its page table, 64 KiB entries.
    Pt64k,
    /// A 2 MiB page.
    Huge,
}

/// One table page and what hangs below it.
struct Table {
    mem: TableMem,
    /// Next-level tables by slot (empty for a page table).
    children: KVec<Option<KBox<Table>>>,
    /// For a page directory: what each entry holds (empty otherwise).
    kinds: KVec<PdeKind>,
}

impl Table {
    fn new(alloc: &dyn TableAlloc, has_children: bool, is_pd: bool) -> Result<Self> {
        let mut children = KVec::new();
        if has_children {
            children.reserve(PT_ENTRIES, GFP_KERNEL)?;
            for _ in 0..PT_ENTRIES {
                children.push(None, GFP_KERNEL)?;
            }
        }
        let kinds = if is_pd {
            KVec::from_elem(PdeKind::None, PT_ENTRIES, GFP_KERNEL)?
        } else {
            KVec::new()
        };
        Ok(Self {
            mem: alloc.alloc()?,
            children,
            kinds,
        })
    }

    /// The table below slot `i`, allocated and entered if missing; `child_is_pd` says
    /// whether it is a page directory (whose children are page tables).
    fn child_or_alloc(
        &mut self,
        i: usize,
        alloc: &dyn TableAlloc,
        child_is_pd: bool,
    ) -> Result<&mut Table> {
        let Table { mem, children, .. } = self;
        let slot = children.get_mut(i).ok_or(EINVAL)?;
        if slot.is_none() {
            let t = KBox::new(Table::new(alloc, true, child_is_pd)?, GFP_KERNEL)?;
            mem.write(i, pde(t.mem.dma()))?;
            *slot = Some(t);
        }
        slot.as_deref_mut().ok_or(EINVAL)
    }

    fn child(&mut self, i: usize) -> Result<&mut Table> {
        self.children
            .get_mut(i)
            .and_then(|c| c.as_deref_mut())
            .ok_or(ENOENT)
    }
}

/// A 4-level table tree: PML4, PDPs, PDs, PTs.
pub(crate) struct PageTables {
    root: Table,
    /// Clear the unused slots of a 64 KiB table (i915's `scrub_64K`, selftests only): a
    /// device that wrongly reads them finds nothing.
    scrub_64k: bool,
}

/// The range of `count` pages at `start`, checked against the 48-bit space.
fn check_range(start: u64, count: usize) -> Result<u64> {
    let len = (count as u64).checked_mul(SZ_4K).ok_or(EINVAL)?;
    let end = start.checked_add(len).ok_or(EINVAL)?;
    if count == 0 || start % SZ_4K != 0 || end > gtt::PPGTT_SIZE {
        return Err(EINVAL);
    }
    Ok(end)
}

impl PageTables {
    /// An empty tree (a PML4 only).
    pub(crate) fn new(alloc: &dyn TableAlloc) -> Result<Self> {
        Ok(Self {
            root: Table::new(alloc, true, false)?,
            scrub_64k: false,
        })
    }

    /// DMA address of the PML4.
    pub(crate) fn root(&self) -> u64 {
        self.root.mem.dma()
    }

    /// Allocates every table `[start, start + len)` needs for 4 KiB pages.
    pub(crate) fn allocate_va_range(
        &mut self,
        alloc: &dyn TableAlloc,
        start: u64,
        len: u64,
    ) -> Result {
        let end = check_range(start, (len / SZ_4K) as usize)?;
        if len % SZ_4K != 0 {
            return Err(EINVAL);
        }
        let mut va = start & !(SZ_2M - 1);
        while va < end {
            let [i4, i3, i2, _] = gtt::ppgtt_indices(va);
            let pdp = self.root.child_or_alloc(i4, alloc, false)?;
            let pd = pdp.child_or_alloc(i3, alloc, true)?;
            if pd.children.get(i2).ok_or(EINVAL)?.is_none() {
                let pt = KBox::new(Table::new(alloc, false, false)?, GFP_KERNEL)?;
                if pd.kinds[i2] == PdeKind::None {
                    pd.mem.write(i2, pde(pt.mem.dma()))?;
                    pd.kinds[i2] = PdeKind::Pt4k;
                }
                pd.children[i2] = Some(pt);
            }
            va += SZ_2M;
        }
        Ok(())
    }

    fn pd(&mut self, va: u64) -> Result<&mut Table> {
        let [i4, i3, ..] = gtt::ppgtt_indices(va);
        self.root.child(i4)?.child(i3)
    }

    /// Maps `pages` at `start`; the tables must exist.
    pub(crate) fn bind(&mut self, start: u64, pages: &[u64], access: Access) -> Result {
        check_range(start, pages.len())?;
        if pages
            .iter()
            .any(|&p| p % SZ_4K != 0 || p & !gtt::PTE_ADDR_MASK != 0)
        {
            return Err(EINVAL);
        }
        let w = access == Access::ReadWrite;
        let scrub = self.scrub_64k;
        let mut k = 0;
        while k < pages.len() {
            let va = start + (k as u64) * SZ_4K;
            let [_, _, i2, i1] = gtt::ppgtt_indices(va);
            let n = (PT_ENTRIES - i1).min(pages.len() - k);
            let run = &pages[k..k + n];
            let pd = self.pd(va)?;
            let kind = *pd.kinds.get(i2).ok_or(EINVAL)?;
            if n == PT_ENTRIES {
                match window_layout(run) {
                    Layout::Huge2M => {
                        pd.mem
                            .write(i2, gtt::encode_pte(run[0], w, 0) | PDE_PS_2M)?;
                        pd.kinds[i2] = PdeKind::Huge;
                    }
                    layout => {
                        let Table {
                            mem,
                            children,
                            kinds,
                        } = pd;
                        let pt = children
                            .get_mut(i2)
                            .and_then(|c| c.as_deref_mut())
                            .ok_or(ENOENT)?;
                        let is64 = layout == Layout::Table64K;
                        for (i, &p) in run.iter().enumerate() {
                            let e = if is64 && scrub && i % gtt::PT_64K_STRIDE != 0 {
                                0
                            } else {
                                gtt::encode_pte(p, w, 0)
                            };
                            pt.mem.write(i, e)?;
                        }
                        // The table is complete before the directory entry says 64 KiB.
                        let ips = if is64 { PDE_IPS_64K } else { 0 };
                        mem.write(i2, pde(pt.mem.dma()) | ips)?;
                        kinds[i2] = if is64 { PdeKind::Pt64k } else { PdeKind::Pt4k };
                    }
                }
            } else {
                if matches!(kind, PdeKind::Huge | PdeKind::Pt64k) {
                    return Err(EBUSY);
                }
                let Table {
                    mem,
                    children,
                    kinds,
                } = pd;
                let pt = children
                    .get_mut(i2)
                    .and_then(|c| c.as_deref_mut())
                    .ok_or(ENOENT)?;
                for (i, &p) in run.iter().enumerate() {
                    pt.mem.write(i1 + i, gtt::encode_pte(p, w, 0))?;
                }
                if kind == PdeKind::None {
                    mem.write(i2, pde(pt.mem.dma()))?;
                    kinds[i2] = PdeKind::Pt4k;
                }
            }
            k += n;
        }
        Ok(())
    }

    /// Unmaps `count` pages at `start`. A 2 MiB or 64 KiB window is unmapped whole.
    pub(crate) fn unbind(&mut self, start: u64, count: usize) -> Result {
        check_range(start, count)?;
        let mut k = 0;
        while k < count {
            let va = start + (k as u64) * SZ_4K;
            let [_, _, i2, i1] = gtt::ppgtt_indices(va);
            let n = (PT_ENTRIES - i1).min(count - k);
            let pd = self.pd(va)?;
            let kind = *pd.kinds.get(i2).ok_or(EINVAL)?;
            let whole = n == PT_ENTRIES;
            if !whole && matches!(kind, PdeKind::Huge | PdeKind::Pt64k) {
                return Err(EBUSY);
            }
            let Table {
                mem,
                children,
                kinds,
            } = pd;
            if let Some(pt) = children.get_mut(i2).and_then(|c| c.as_deref_mut()) {
                if kind != PdeKind::Huge {
                    for i in i1..i1 + n {
                        pt.mem.write(i, 0)?;
                    }
                }
            }
            if whole {
                mem.write(i2, 0)?;
                kinds[i2] = PdeKind::None;
            }
            k += n;
        }
        Ok(())
    }

    /// Translates `va` as the device walks the tree: the address and page size it maps,
    /// `None` if not present or if an entry disagrees with the tree.
    pub(crate) fn lookup(&mut self, va: u64) -> Option<(u64, u64)> {
        let [i4, i3, i2, i1] = gtt::ppgtt_indices(va);
        let table_entry = |t: &Table, i: usize| -> Option<u64> {
            let e = t.mem.read(i).ok()?;
            let child = t.children.get(i)?.as_deref()?;
            (e & PTE_PRESENT != 0 && e & gtt::PTE_ADDR_MASK == child.mem.dma()).then_some(e)
        };
        table_entry(&self.root, i4)?;
        let pdp = self.root.children.get(i4)?.as_deref()?;
        table_entry(pdp, i3)?;
        let pd = pdp.children.get(i3)?.as_deref()?;
        let e = pd.mem.read(i2).ok()?;
        if e & PTE_PRESENT == 0 {
            return None;
        }
        match gtt::pde_target(e).ok()? {
            gtt::PdeTarget::Page2M => Some(((e & gtt::PTE_ADDR_MASK) + (va & (SZ_2M - 1)), SZ_2M)),
            target => {
                let pt = pd.children.get(i2)?.as_deref()?;
                if e & gtt::PTE_ADDR_MASK != pt.mem.dma() {
                    return None;
                }
                let (slot, size) = if target == gtt::PdeTarget::Table64k {
                    (gtt::pt_index_64k(va), SZ_64K)
                } else {
                    (i1, SZ_4K)
                };
                let pte = pt.mem.read(slot).ok()?;
                (pte & PTE_PRESENT != 0).then_some((
                    (pte & gtt::PTE_ADDR_MASK & !(size - 1)) + (va & (size - 1)),
                    size,
                ))
            }
        }
    }
}

/// Tells the host, when dropped, that the PPGTT rooted at `pml4` goes away.
struct Announced {
    mmio: Arc<Mmio>,
    pml4: u64,
}

impl Drop for Announced {
    fn drop(&mut self) {
        // A device that went away has nothing to forget.
        let _ = self.mmio.notify_ppgtt(self.pml4, false);
    }
}

/// A 4-level PPGTT the host knows about.
#[pin_data]
pub(crate) struct Ppgtt {
    // Dropped first: the host stops using the tree before its pages are freed.
    announced: Announced,
    #[pin]
    tables: Mutex<PageTables>,
}

impl Ppgtt {
    /// Builds an empty PPGTT and announces it (`g2v_notify` = 4).
    pub(crate) fn new(dev: &Device<Bound>, mmio: Arc<Mmio>, scrub_64k: bool) -> Result<Arc<Self>> {
        let mut tables = PageTables::new(&DmaTables(dev))?;
        tables.scrub_64k = scrub_64k;
        let pml4 = tables.root();
        let this = Arc::pin_init(
            pin_init!(Self {
                announced: Announced { mmio, pml4 },
                tables <- new_mutex!(tables, "gvtpv_guest::Ppgtt::tables"),
            }),
            GFP_KERNEL,
        )?;
        this.announced.mmio.notify_ppgtt(pml4, true)?;
        Ok(this)
    }

    /// DMA address of the PML4 (a context's PDP0).
    pub(crate) fn pml4(&self) -> u64 {
        self.announced.pml4
    }

    /// Allocates the tables of `[start, start + len)`.
    pub(crate) fn allocate_va_range(&self, dev: &Device<Bound>, start: u64, len: u64) -> Result {
        self.tables
            .lock()
            .allocate_va_range(&DmaTables(dev), start, len)
    }

    /// Translates `va` as the device would (see [`PageTables::lookup`]).
    pub(crate) fn lookup(&self, va: u64) -> Option<(u64, u64)> {
        self.tables.lock().lookup(va)
    }
}

impl Binder for Ppgtt {
    fn bind(&self, start: u64, pages: &[u64], access: Access) -> Result {
        self.tables.lock().bind(start, pages, access)
    }

    fn unbind(&self, start: u64, count: usize) -> Result {
        self.tables.lock().unbind(start, count)
    }
}

#[kunit_tests(gvtpv_guest_ppgtt)]
mod tests {
    use super::*;
    use core::cell::Cell;

    /// Table pages on the heap, at made-up addresses from 1 GiB up.
    struct Heap(Cell<u64>);

    impl TableAlloc for Heap {
        fn alloc(&self) -> Result<TableMem> {
            let a = self.0.get();
            self.0.set(a + SZ_4K);
            Ok(TableMem::Heap(
                KVec::from_elem(0, PT_ENTRIES, GFP_KERNEL)?,
                a,
            ))
        }
    }

    fn heap() -> Heap {
        Heap(Cell::new(1 << 30))
    }

    fn run(first: u64, n: usize) -> KVec<u64> {
        let mut v = KVec::new();
        for i in 0..n {
            v.push(first + i as u64 * SZ_4K, GFP_KERNEL).unwrap();
        }
        v
    }

    #[test]
    fn picks_the_window_layout() {
        assert_eq!(window_layout(&run(0x4000_0000, 512)), Layout::Huge2M);
        assert_eq!(window_layout(&run(0x4001_0000, 512)), Layout::Table64K);
        assert_eq!(window_layout(&run(0x4000_1000, 512)), Layout::Table4K);
        assert_eq!(window_layout(&run(0x4000_0000, 511)), Layout::Table4K);
        // 64 KiB chunks in any order still make a 64 KiB table, not a 2 MiB page.
        let mut v = run(0x4000_0000, 512);
        v.reverse();
        for c in v.chunks_mut(16) {
            c.reverse();
        }
        assert_eq!(window_layout(&v), Layout::Table64K);
        // One page out of place breaks its chunk.
        v[17] += SZ_4K;
        assert_eq!(window_layout(&v), Layout::Table4K);
    }

    #[test]
    fn maps_4k_pages_through_four_levels() {
        let h = heap();
        let mut t = PageTables::new(&h).unwrap();
        let va = (3u64 << 39) | (5 << 30) | (7 << 21) | (9 << 12);
        assert_eq!(
            t.bind(va, &run(0x10_0000, 2), Access::ReadWrite),
            Err(ENOENT)
        );
        t.allocate_va_range(&h, va, 2 * SZ_4K).unwrap();
        t.bind(va, &run(0x10_0000, 2), Access::ReadWrite).unwrap();
        assert_eq!(t.lookup(va + 0x123), Some((0x10_0123, SZ_4K)));
        assert_eq!(t.lookup(va + SZ_4K), Some((0x10_1000, SZ_4K)));
        assert_eq!(t.lookup(va + 2 * SZ_4K), None);
        assert_eq!(t.lookup(va - SZ_4K), None);
        // Rewriting one entry moves the page.
        t.bind(va, &run(0x20_0000, 1), Access::ReadOnly).unwrap();
        assert_eq!(t.lookup(va), Some((0x20_0000, SZ_4K)));
        t.unbind(va, 2).unwrap();
        assert_eq!(t.lookup(va), None);
        // A range across a 2 MiB boundary spans two page tables.
        let edge = (1u64 << 21) - SZ_4K;
        t.allocate_va_range(&h, edge, 2 * SZ_4K).unwrap();
        t.bind(edge, &run(0x30_0000, 2), Access::ReadWrite).unwrap();
        assert_eq!(t.lookup(1 << 21), Some((0x30_1000, SZ_4K)));
    }

    #[test]
    fn places_2m_and_64k_pages() {
        let h = heap();
        let mut t = PageTables::new(&h).unwrap();
        t.scrub_64k = true;
        let va = 1u64 << 32;
        t.allocate_va_range(&h, va, 2 * SZ_2M).unwrap();
        t.bind(va, &run(0x8000_0000, 512), Access::ReadWrite)
            .unwrap();
        assert_eq!(t.lookup(va + 0x1f_fffc), Some((0x801f_fffc, SZ_2M)));
        // 64 KiB chunks in reverse order: only a walker using the 64 KiB slots gets it right.
        let mut v = run(0x9000_0000, 512);
        v.reverse();
        for c in v.chunks_mut(16) {
            c.reverse();
        }
        t.bind(va + SZ_2M, &v, Access::ReadWrite).unwrap();
        assert_eq!(t.lookup(va + SZ_2M), Some((0x901f_0000, SZ_64K)));
        assert_eq!(t.lookup(va + SZ_2M + 0x1_2345), Some((0x901e_2345, SZ_64K)));
        assert_eq!(t.lookup(va + 2 * SZ_2M - 4), Some((0x9000_fffc, SZ_64K)));
        // Partial changes inside huge windows are refused; whole windows are fine.
        assert_eq!(t.bind(va, &run(0x1000, 1), Access::ReadWrite), Err(EBUSY));
        assert_eq!(t.unbind(va + SZ_2M, 1), Err(EBUSY));
        t.unbind(va, 1024).unwrap();
        assert_eq!(t.lookup(va), None);
        assert_eq!(t.lookup(va + SZ_2M), None);
        // Back to 4 KiB pages in the same windows.
        t.bind(va + SZ_4K, &run(0x5000, 1), Access::ReadWrite)
            .unwrap();
        assert_eq!(t.lookup(va + SZ_4K), Some((0x5000, SZ_4K)));
        assert_eq!(t.lookup(va), None);
    }

    #[test]
    fn refuses_bad_ranges() {
        let h = heap();
        let mut t = PageTables::new(&h).unwrap();
        assert_eq!(t.bind(0x800, &run(0, 1), Access::ReadWrite), Err(EINVAL));
        assert_eq!(
            t.bind(gtt::PPGTT_SIZE - SZ_4K, &run(0, 2), Access::ReadWrite),
            Err(EINVAL)
        );
        assert_eq!(t.bind(0, &[], Access::ReadWrite), Err(EINVAL));
        assert_eq!(t.allocate_va_range(&h, 0, 0), Err(EINVAL));
        t.allocate_va_range(&h, 0, SZ_4K).unwrap();
        assert_eq!(t.bind(0, &[0x1001], Access::ReadWrite), Err(EINVAL));
        assert_eq!(t.bind(0, &[1 << 40], Access::ReadWrite), Err(EINVAL));
    }
}
