// SPDX-License-Identifier: GPL-2.0

//! The shadow PPGTT of one vGPU: for each 4-level guest tree the guest announces (g2v
//! notify 4) or a submission names, a host tree the device walks instead, whose leaves
//! point at pinned guest pages ([`shadow`]), kept in sync with the guest's tables by KVM
//! write tracking or by re-validation before each submission ([`sync`]).
//!
//! As GVT-g (`gvt/gtt.c: intel_vgpu_get_ppgtt_mm`, `intel_vgpu_put_ppgtt_mm`,
//! `ppgtt_populate_spt`): each guest table page is copied once, the copy is validated
//! and kept (the *validated copy*), and the shadow is made from it; guest writes update
//! the copy first. A [`Root`] is a counted handle: the guest's reference (notify 4/5) and
//! each workload's keep the shadow alive (GVT-g pins its mm for a workload,
//! `intel_vgpu_pin_mm`).
//!
//! Validation, per entry: present; bits 63:39 clear (the device's 39-bit DMA range);
//! PDP entries with bit 7 (1 GiB) refused; PD entries with bit 7 (2 MiB page, 2 MiB
//! aligned) or bit 11 (a page table of 64 KiB pages: slots 0, 16, ..., 496 used, each 64
//! KiB aligned, the others ignored), never both. A refused entry is not present in the
//! shadow and counted by reason. A frame used at two levels is refused.
//!
//! Guest tables are copied with [`GuestMemory::read`] (`vfio_dma_rw`): **Decision:** a
//! copy rather than a pinned view, so table pages do not count against the pin cache,
//! and what is validated cannot change under us. The copy works from the user's threads
//! (trap handlers, and the vCPU threads that call [`Ppgtt::track_write`]) and from kernel
//! threads, which is where the shadow PPGTT runs.
//!
//! Bounds per vGPU ([`Limits`]): leaf pins, host table pages (shadow tables and split 2
//! MiB pages), roots. Beyond them an entry is refused ([`PpgttStats::refused`]) and the
//! operation that hit the bound fails with `ENOSPC`; host memory never grows past them.
//! Every loop is bounded by a table's 512 entries, the bounds, or the bytes written;
//! recursion follows the four levels down.
//!
//! Locking: a vGPU's `Ppgtt` sits behind its `ppgtt` mutex (lock order: `submit` →
//! `ppgtt` → `ggtt` → `state` → `irqs`). It pins, copies, and calls the [`Tracker`]
//! (`kvm_write_track_*`, which take KVM's srcu and `mmu_lock`, never our locks) under it.

mod shadow;
mod sync;

pub(crate) use sync::{SyncMode, Tracker};

use crate::{
    abi::gtt,
    gpu::{DevAddr, DevPage, Gpu, PAGE},
    mm::guest::{GuestMemory, Pinner},
};
use core::sync::atomic::{AtomicUsize, Ordering};
use kernel::{prelude::*, rbtree::RBTree, sync::Arc};
use shadow::{Kind, Slot, Table, ENTRIES};

/// Bounds of one vGPU's shadow PPGTT (per type in `vgpu/types.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Guest pages the leaves hold pinned (one per 4 KiB of every leaf).
    pub(crate) pins: usize,
    /// Host table pages: shadow tables and split 2 MiB pages.
    pub(crate) tables: usize,
    /// Roots alive at once.
    pub(crate) roots: usize,
}

impl Limits {
    /// The smallest type's: 256 MiB of leaves, 2048 tables, 64 roots.
    pub(crate) const DEFAULT: Limits = Limits {
        pins: 65536,
        tables: 2048,
        roots: 64,
    };
}

/// Entries without a shadow, by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Refused {
    /// Address bits at or above 2^39.
    pub(crate) address: u64,
    /// 1 GiB pages.
    pub(crate) huge_1g: u64,
    /// 2 MiB pages not 2 MiB aligned.
    pub(crate) misaligned_2m: u64,
    /// Directory entries with PS and IPS.
    pub(crate) ps_and_ips: u64,
    /// 64 KiB entries not 64 KiB aligned.
    pub(crate) misaligned_64k: u64,
    /// Frames already shadowed at another level.
    pub(crate) level: u64,
    /// Frames that could not be copied, pinned or mapped.
    pub(crate) frame: u64,
    /// Bounds reached.
    pub(crate) limit: u64,
    /// Host allocations failed.
    pub(crate) memory: u64,
}

impl Refused {
    /// Entries the validation refused (the guest's mistakes, not ours).
    pub(crate) fn invalid(&self) -> u64 {
        self.address
            + self.huge_1g
            + self.misaligned_2m
            + self.ps_and_ips
            + self.misaligned_64k
            + self.level
    }
}

/// What the shadow PPGTT holds and did, for debugfs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct PpgttStats {
    /// Roots alive.
    pub(crate) roots: u64,
    /// Host table pages alive.
    pub(crate) tables: u64,
    /// Guest pages the leaves hold.
    pub(crate) pins: u64,
    /// Guest frames write-protected now.
    pub(crate) tracked: u64,
    /// Guest writes to shadowed tables (KVM write-protect faults).
    pub(crate) wp_faults: u64,
    /// Partial entry writes parked.
    pub(crate) halves: u64,
    /// Parked entries applied early because the list was full.
    pub(crate) halves_forced: u64,
    /// Re-validation walks.
    pub(crate) revalidations: u64,
    /// Tables a re-validation found changed.
    pub(crate) tables_changed: u64,
    /// Entries a re-validation found changed.
    pub(crate) entries_changed: u64,
    /// Guest tables a re-validation could not copy.
    pub(crate) read_failed: u64,
    /// 64 KiB and 2 MiB entries mapped page by page.
    pub(crate) splits: u64,
    /// Frames whose write protection failed or went with their memslot.
    pub(crate) untracked: u64,
    /// Entries without a shadow, by reason.
    pub(crate) refused: Refused,
}

/// What one [`Ppgtt::prepare`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct SyncStats {
    /// Parked entries applied.
    pub(crate) halves_applied: u64,
    /// Tables copied again.
    pub(crate) tables_read: u64,
    /// Tables that had changed.
    pub(crate) tables_changed: u64,
    /// Entries that had changed.
    pub(crate) entries_changed: u64,
}

/// The part of a root its handles share.
struct RootShared {
    id: u64,
    pml4: u64,
    dev: DevAddr,
    /// Live [`Root`] handles.
    users: AtomicUsize,
}

/// A counted handle to a shadow root: a workload holds one while it runs, and the shadow
/// stays until the guest and every handle let go.
pub(crate) struct Root(Arc<RootShared>);

impl Root {
    fn new(s: &Arc<RootShared>) -> Self {
        s.users.fetch_add(1, Ordering::AcqRel);
        Root(s.clone())
    }

    /// The device address of the shadow PML4: what the shadow context's PDP0 gets.
    pub(crate) fn dev_addr(&self) -> DevAddr {
        self.0.dev
    }
}

impl Clone for Root {
    fn clone(&self) -> Self {
        Root::new(&self.0)
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        // The shadow itself goes at the next call into the `Ppgtt` (`release` or any
        // other), under its lock, which a handle cannot take.
        self.0.users.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A root and who holds it.
struct RootSlot {
    shared: Arc<RootShared>,
    /// Key of the shadow PML4, which the root holds a reference to.
    key: u64,
    /// References from the guest (notify 4 minus notify 5).
    guest_refs: u32,
}

/// The shadow PPGTT of one vGPU.
pub(crate) struct Ppgtt<P: Pinner + Clone>
where
    P::Page: 'static,
{
    gpu: Arc<dyn Gpu>,
    mem: Arc<GuestMemory<P>>,
    limits: Limits,
    /// Shadow tables by `Kind::key` (guest frame and kind).
    tables: RBTree<u64, Table>,
    roots: KVec<RootSlot>,
    track: sync::Tracking,
    /// One table's worth of entries for re-validation copies.
    scratch: KVec<u64>,
    /// The current re-validation walk.
    walk: u64,
    next_id: u64,
    /// Host table pages alive.
    table_pages: usize,
    /// Guest pages the leaves hold.
    pins: usize,
    /// An entry hit a bound since the flag was last cleared.
    limit_hit: bool,
    stats: PpgttStats,
}

impl<P: Pinner + Clone> Ppgtt<P>
where
    P::Page: 'static,
{
    /// An empty shadow PPGTT that re-validates (no tracker yet).
    ///
    /// # Errors
    ///
    /// `ENOMEM`.
    pub(crate) fn new(gpu: Arc<dyn Gpu>, mem: Arc<GuestMemory<P>>, limits: Limits) -> Result<Self> {
        Ok(Self {
            gpu,
            mem,
            limits,
            tables: RBTree::new(),
            roots: KVec::new(),
            track: sync::Tracking::new()?,
            scratch: KVec::from_elem(0u64, ENTRIES, GFP_KERNEL)?,
            walk: 0,
            next_id: 0,
            table_pages: 0,
            pins: 0,
            limit_hit: false,
            stats: PpgttStats::default(),
        })
    }

    /// Sets how the shadow stays in sync: `Some` write-protects guest tables through the
    /// tracker (KVM), `None` re-validates. Frees every shadow first (with the old
    /// tracker) and returns the old tracker, which the caller drops with no lock held
    /// (dropping KVM's last reference unregisters, which waits for callbacks that take
    /// `ppgtt`).
    pub(crate) fn set_tracker(&mut self, t: Option<Arc<dyn Tracker>>) -> Option<Arc<dyn Tracker>> {
        self.reset();
        self.track.set(t)
    }

    /// How the shadow stays in sync.
    pub(crate) fn mode(&self) -> SyncMode {
        self.track.mode()
    }

    /// g2v notify 4: finds or builds the shadow of the guest tree rooted at guest DMA
    /// address `pml4` and takes a guest reference to it (dropped by [`Self::put_root`]).
    ///
    /// # Errors
    ///
    /// As for [`Self::workload_root`].
    pub(crate) fn get_root(&mut self, pml4: u64) -> Result<Root> {
        let r = self.workload_root(pml4)?;
        if let Some(s) = self.roots.iter_mut().find(|s| s.shared.id == r.0.id) {
            s.guest_refs = s.guest_refs.saturating_add(1);
        }
        Ok(r)
    }

    /// A submission whose context names root `pml4`: finds or builds its shadow, without
    /// a guest reference; the shadow lives while the returned handle (or the guest's
    /// reference) does.
    ///
    /// # Errors
    ///
    /// `EINVAL` for a `pml4` not page aligned, beyond 2^39, or shadowed at another
    /// level; `EFAULT` if it cannot be copied; `ENOSPC` at the bounds (roots, or an entry
    /// of the new tree: then nothing of it stays); `ENOMEM`.
    pub(crate) fn workload_root(&mut self, pml4: u64) -> Result<Root> {
        self.sweep();
        if pml4 % PAGE != 0 || pml4 & !gtt::PTE_ADDR_MASK != 0 {
            return Err(EINVAL);
        }
        if let Some(s) = self.roots.iter().find(|s| s.shared.pml4 == pml4) {
            return Ok(Root::new(&s.shared));
        }
        if self.roots.len() >= self.limits.roots {
            self.stats.refused.limit += 1;
            return Err(ENOSPC);
        }
        self.roots.reserve(1, GFP_KERNEL)?;
        self.limit_hit = false;
        let key = self.get_table(pml4 / PAGE, Kind::Pml4).map_err(|r| {
            r.count(&mut self.stats.refused);
            r.errno()
        })?;
        let dev = self.tables.get(&key).map(|t| t.mem.dev_addr());
        let shared = match dev {
            Some(dev) if !core::mem::take(&mut self.limit_hit) => Arc::new(
                RootShared {
                    id: self.next_id,
                    pml4,
                    dev,
                    users: AtomicUsize::new(0),
                },
                GFP_KERNEL,
            )
            .map_err(Error::from),
            _ => Err(ENOSPC),
        };
        let shared = shared.inspect_err(|_| self.put_table(key))?;
        self.next_id += 1;
        let root = Root::new(&shared);
        self.roots.push(
            RootSlot {
                shared,
                key,
                guest_refs: 0,
            },
            GFP_KERNEL,
        )?;
        Ok(root)
    }

    /// g2v notify 5: drops the guest's reference to root `pml4`; the shadow goes once no
    /// workload holds it either.
    pub(crate) fn put_root(&mut self, pml4: u64) {
        if let Some(s) = self.roots.iter_mut().find(|s| s.shared.pml4 == pml4) {
            s.guest_refs = s.guest_refs.saturating_sub(1);
        }
        self.sweep();
    }

    /// A workload is done with `root`: drops the handle, and the shadow if it was the
    /// last reference.
    pub(crate) fn release(&mut self, root: Root) {
        drop(root);
        self.sweep();
    }

    /// Frees the roots nobody holds.
    fn sweep(&mut self) {
        let mut i = 0;
        while let Some(s) = self.roots.get(i) {
            if s.guest_refs == 0 && s.shared.users.load(Ordering::Acquire) == 0 {
                let key = s.key;
                // In range: `get` found it.
                let _ = self.roots.remove(i);
                self.put_table(key);
            } else {
                i += 1;
            }
        }
    }

    /// Before a submission that uses `root`: applies parked entries, and re-validates the
    /// root's tables where nothing write-protects them.
    ///
    /// # Errors
    ///
    /// `ENOENT` for a root that is gone (reset); `ENOSPC` when an entry hit a bound (the
    /// shadow is consistent, that entry not present).
    pub(crate) fn prepare(&mut self, root: &Root) -> Result<SyncStats> {
        let key = self
            .roots
            .iter()
            .find(|s| s.shared.id == root.0.id)
            .map(|s| s.key)
            .ok_or(ENOENT)?;
        self.limit_hit = false;
        let mut st = SyncStats {
            halves_applied: self.flush_pending(),
            ..Default::default()
        };
        if self.track.needs_walk() {
            self.walk = self.walk.wrapping_add(1);
            self.stats.revalidations += 1;
            self.revalidate(key, &mut st);
            self.stats.tables_changed += st.tables_changed;
            self.stats.entries_changed += st.entries_changed;
        }
        if core::mem::take(&mut self.limit_hit) {
            return Err(ENOSPC);
        }
        Ok(st)
    }

    /// KVM emulated a guest write of `bytes` at guest physical address `gpa`: if it hit a
    /// shadowed table, the validated copy takes it; whole entries are re-shadowed at
    /// once, partial ones are parked (not present meanwhile) until whole or until the
    /// next [`Self::prepare`]. Writes elsewhere are ignored (KVM reports every emulated
    /// write).
    pub(crate) fn track_write(&mut self, gpa: u64, bytes: &[u8]) {
        let mut gpa = gpa;
        let mut rest = bytes;
        // One round per page the write touches.
        while !rest.is_empty() {
            let off = (gpa % PAGE) as usize;
            let n = rest.len().min(PAGE as usize - off);
            let (chunk, tail) = rest.split_at(n);
            self.write_page(gpa / PAGE, off, chunk);
            rest = tail;
            gpa = gpa.wrapping_add(n as u64);
        }
    }

    /// The memslot of frames `[gfn, gfn + pages)` is going: their write protection is
    /// gone (never removed by us), and roots re-validate until it is back.
    pub(crate) fn remove_region(&mut self, gfn: u64, pages: u64) {
        self.stats.untracked += self.track.region_removed(gfn, pages);
    }

    /// Frees every root, shadow table, leaf pin and write protection (device reset and
    /// close). Handles still held become stale: [`Self::prepare`] refuses them.
    pub(crate) fn reset(&mut self) {
        let roots = core::mem::take(&mut self.roots);
        for s in roots {
            self.put_table(s.key);
        }
        // Every table hangs off a root; whatever is left would be a bug, freed anyway.
        // Each round frees one table at least.
        loop {
            let Some(k) = self.tables.keys().next().copied() else {
                break;
            };
            if let Some(t) = self.tables.get_mut(&k) {
                t.refs = 1;
            }
            self.put_table(k);
        }
        while self.track.pop().is_some() {}
    }

    /// The guest page that PPGTT address `va` of `root` reaches through the shadow (so
    /// only through entries the host validated), and the offset of `va` in it: how the
    /// command parser reads a PPGTT batch. `None` where the device would fault.
    pub(crate) fn translate(&self, root: &Root, va: u64) -> Option<(Arc<dyn DevPage>, usize)> {
        if va >= gtt::PPGTT_SIZE {
            return None;
        }
        let slot = self
            .roots
            .iter()
            .find(|r| Arc::ptr_eq(&r.shared, &root.0))?;
        let idx = gtt::ppgtt_indices(va);
        let mut key = slot.key;
        for i in idx {
            let (_, kind) = Kind::of_key(key);
            let table = self.tables.get(&key)?;
            // A 64 KiB entry sits in the first slot of its sixteen.
            let i = if kind == Kind::Pt64 {
                i & !(shadow::STRIDE - 1)
            } else {
                i
            };
            match table.slots.get(i)? {
                Slot::Table(k) => key = *k,
                Slot::Leaf(leaf) => {
                    let n = leaf.pages() as u64;
                    let k = ((va / PAGE) % n) as usize;
                    return Some((leaf.page(k)?.clone(), (va % PAGE) as usize));
                }
                Slot::Empty => return None,
            }
        }
        None
    }

    /// The counters, with what is alive now.
    pub(crate) fn stats(&self) -> PpgttStats {
        PpgttStats {
            roots: self.roots.len() as u64,
            tables: self.table_pages as u64,
            pins: self.pins as u64,
            tracked: self.track.tracked() as u64,
            ..self.stats
        }
    }

    /// Entries parked now.
    pub(crate) fn parked(&self) -> usize {
        self.track.parked()
    }
}

impl<P: Pinner + Clone> Drop for Ppgtt<P>
where
    P::Page: 'static,
{
    fn drop(&mut self) {
        self.reset();
    }
}

#[kunit_tests(gvtpv_host_ppgtt)]
mod tests {
    use super::*;
    use crate::{
        gpu::DevPage,
        mm::{
            ggtt::fake_gpu::FakeGpu,
            guest::{
                fake::{FakeGuest, FakePage},
                View,
            },
        },
    };
    use kernel::{new_mutex, sync::Mutex};

    type Pp = Ppgtt<Arc<FakeGuest>>;
    type Mem = Arc<GuestMemory<Arc<FakeGuest>>>;

    const P: u64 = gtt::PTE_PRESENT;
    const RW: u64 = gtt::PTE_RW;
    const PS: u64 = gtt::PDE_PS_2M;
    const IPS: u64 = gtt::PDE_IPS_64K;

    // The guest's tree: tables, then data pages (4 MiB of guest memory).
    const PML4: u64 = 0x1000;
    const PDP: u64 = 0x2000;
    const PD: u64 = 0x3000;
    const PT: u64 = 0x4000;
    const PT64: u64 = 0x5000;
    const SPARE: u64 = 0x6000;
    const PML4_B: u64 = 0x7000;
    const PAGE_A: u64 = 0x10000;
    const PAGE_B: u64 = 0x11000;
    const RUN_A: u64 = 0x20000;
    const RUN_B: u64 = 0x30000;
    const HUGE: u64 = 0x20_0000;
    const GUEST_PAGES: usize = 1024;

    // Virtual addresses: PD slot 0 a 4 KiB table, slot 1 a 64 KiB table, slot 2 a 2 MiB
    // page.
    const VA_4K: u64 = 0x1000;
    const VA_64K: u64 = 1 << 21;
    const VA_2M: u64 = 2 << 21;

    /// Leaf pins of the full tree: two 4 KiB pages, two 64 KiB, one 2 MiB.
    const FULL_PINS: u64 = 2 + 2 * 16 + 512;

    struct Env {
        guest: Arc<FakeGuest>,
        mem: Mem,
        gpu: Arc<FakeGpu>,
        pp: Pp,
    }

    fn env_with(limits: Limits, pin_limit: usize) -> Env {
        let guest = FakeGuest::new(GUEST_PAGES).unwrap();
        let mem: Mem = Arc::pin_init(GuestMemory::new(pin_limit), GFP_KERNEL).unwrap();
        mem.attach(guest.clone());
        let gpu = FakeGpu::new().unwrap();
        let pp = Ppgtt::new(gpu.clone(), mem.clone(), limits).unwrap();
        let env = Env {
            guest,
            mem,
            gpu,
            pp,
        };
        // Every data page starts with a marker of its own address.
        for a in (0x10000..0x40_0000).step_by(PAGE as usize) {
            env.mem.write(a, &(a as u32 | 0xabc).to_le_bytes()).unwrap();
        }
        env
    }

    fn env() -> Env {
        env_with(Limits::DEFAULT, 2048)
    }

    impl Env {
        /// Writes guest entry `index` of the table at `table`.
        fn set(&self, table: u64, index: usize, v: u64) {
            self.mem
                .write(table + index as u64 * 8, &v.to_le_bytes())
                .unwrap();
        }

        /// The full tree: 4 KiB, 64 KiB and 2 MiB leaves.
        fn tree(&self) {
            self.set(PML4, 0, PDP | P | RW);
            self.set(PDP, 0, PD | P | RW);
            self.set(PD, 0, PT | P | RW);
            self.set(PD, 1, PT64 | P | RW | IPS);
            self.set(PD, 2, HUGE | P | RW | PS);
            self.set(PT, 1, PAGE_A | P | RW);
            self.set(PT, 2, PAGE_B | P);
            self.set(PT64, 0, RUN_A | P | RW);
            self.set(PT64, 16, RUN_B | P | RW);
            // Junk in an ignored slot of the 64 KiB table.
            self.set(PT64, 1, 0x41000 | P);
        }

        /// The shadow entry for `va` at the last level the device reads, and the device
        /// address `va` reaches, walking host memory as the device does.
        fn walk(&self, root: DevAddr, va: u64) -> Option<(u64, DevAddr)> {
            let [a, b, c, d] = gtt::ppgtt_indices(va);
            let mask = gtt::PTE_ADDR_MASK;
            let step = |table: u64, i: usize| {
                self.gpu
                    .host_load64((table & mask) + i as u64 * 8)
                    .filter(|e| e & P != 0)
            };
            let pdpe = step(step(root, a)?, b)?;
            let pde = step(pdpe, c)?;
            if pde & PS != 0 {
                return Some((pde, (pde & mask) + va % gtt::SZ_2M));
            }
            if pde & IPS != 0 {
                let pte = step(pde, gtt::pt_index_64k(va))?;
                return Some((pte, (pte & mask) + va % gtt::SZ_64K));
            }
            let pte = step(pde, d)?;
            Some((pte, (pte & mask) + va % PAGE))
        }

        /// The shadow directory entry for `va`.
        fn pde(&self, root: &Root, va: u64) -> Option<u64> {
            let [a, b, c, _] = gtt::ppgtt_indices(va);
            let step = |table: u64, i: usize| {
                self.gpu
                    .host_load64((table & gtt::PTE_ADDR_MASK) + i as u64 * 8)
                    .filter(|e| e & P != 0)
            };
            step(step(step(root.dev_addr(), a)?, b)?, c)
        }

        /// The device's page behind `va` through the shadow of `root`.
        fn page(&self, root: &Root, va: u64) -> Option<Arc<dyn DevPage>> {
            let (_, dev) = self.walk(root.dev_addr(), va)?;
            self.gpu.page(dev & !(PAGE - 1))
        }

        /// The marker of the guest page `va` reaches through the shadow, if it reaches one.
        fn reach(&self, root: &Root, va: u64) -> Option<u32> {
            self.page(root, va)?.load32(0).ok()
        }
    }

    /// The marker of guest page `addr`.
    fn marker(addr: u64) -> Option<u32> {
        Some(addr as u32 | 0xabc)
    }

    /// A tracker that records frames.
    #[pin_data]
    struct FakeTracker {
        #[pin]
        frames: Mutex<KVec<u64>>,
        /// The frame `add` refuses.
        #[pin]
        refuse: Mutex<Option<u64>>,
        /// Frames added twice or removed without an add (KVM would `WARN`).
        misuse: AtomicUsize,
    }

    impl FakeTracker {
        fn new() -> Arc<Self> {
            Arc::pin_init(
                pin_init!(Self {
                    frames <- new_mutex!(KVec::new()),
                    refuse <- new_mutex!(None),
                    misuse: AtomicUsize::new(0),
                }),
                GFP_KERNEL,
            )
            .unwrap()
        }
        fn has(&self, gfn: u64) -> bool {
            self.frames.lock().contains(&gfn)
        }
        fn count(&self) -> usize {
            self.frames.lock().len()
        }
    }

    impl Tracker for FakeTracker {
        fn add(&self, gfn: u64) -> Result {
            if *self.refuse.lock() == Some(gfn) {
                return Err(EINVAL);
            }
            // Each frame once: the shadow PPGTT adds a frame only while it has none.
            if self.has(gfn) {
                self.misuse.fetch_add(1, Ordering::Relaxed);
            }
            Ok(self.frames.lock().push(gfn, GFP_KERNEL)?)
        }
        fn remove(&self, gfn: u64) {
            let mut f = self.frames.lock();
            match f.iter().position(|g| *g == gfn) {
                Some(at) => drop(f.remove(at)),
                // Only frames that were added.
                None => drop(self.misuse.fetch_add(1, Ordering::Relaxed)),
            }
        }
    }

    #[test]
    fn leaves_of_every_size_reach_their_pages() {
        let mut e = env();
        e.tree();
        let r = e.pp.get_root(PML4).unwrap();
        assert_eq!(e.reach(&r, VA_4K), marker(PAGE_A));
        assert_eq!(e.reach(&r, VA_4K + PAGE), marker(PAGE_B));
        assert_eq!(e.reach(&r, VA_4K + 2 * PAGE), None);
        assert_eq!(e.reach(&r, 0), None);
        // 64 KiB: one entry per 64 KiB, IPS kept in the shadow directory entry.
        for off in [0, 0x5000, 0xf000] {
            assert_eq!(e.reach(&r, VA_64K + off), marker(RUN_A + off));
            assert_eq!(e.reach(&r, VA_64K + 0x10000 + off), marker(RUN_B + off));
        }
        assert!(e.walk(r.dev_addr(), VA_64K + 0x20000).is_none());
        assert!(e.pde(&r, VA_64K).unwrap() & IPS != 0);
        assert_eq!(e.pde(&r, VA_4K).unwrap() & (IPS | PS), 0);
        // 2 MiB: one entry.
        for off in [0, 0x1000, 0x1f_f000] {
            assert_eq!(e.reach(&r, VA_2M + off), marker(HUGE + off));
        }
        let (pde, _) = e.walk(r.dev_addr(), VA_2M).unwrap();
        assert!(pde & PS != 0);
        // The guest's RW bit stays: read-only for the device where the guest said so.
        let (pte, _) = e.walk(r.dev_addr(), VA_4K + PAGE).unwrap();
        assert_eq!(pte & RW, 0);
        let (pte, _) = e.walk(r.dev_addr(), VA_4K).unwrap();
        assert!(pte & RW != 0);
        // The host's own lookup (the parser's batch reads) agrees with the device's walk.
        for va in [
            VA_4K,
            VA_4K + PAGE,
            VA_64K + 0x5000,
            VA_64K + 0x1f004,
            VA_2M + 0x1f_f008,
        ] {
            let (p, off) = e.pp.translate(&r, va).unwrap();
            assert_eq!(off as u64, va % PAGE);
            assert_eq!(p.load32(0).ok(), e.reach(&r, va));
        }
        assert!(e.pp.translate(&r, VA_4K + 2 * PAGE).is_none());
        assert!(e.pp.translate(&r, 0).is_none());
        assert!(e.pp.translate(&r, VA_64K + 0x20000).is_none());
        assert!(e.pp.translate(&r, gtt::PPGTT_SIZE).is_none());
        // A device store lands in the guest page.
        e.page(&r, VA_4K).unwrap().store32(8, 0x5a5a).unwrap();
        assert_eq!(e.guest.peek32(PAGE_A + 8), 0x5a5a);
        let st = e.pp.stats();
        assert_eq!((st.roots, st.tables, st.pins), (1, 5, FULL_PINS));
        assert_eq!(e.gpu.mappings() as u64, FULL_PINS);
        assert_eq!(e.gpu.host_pages(), 5);
        assert_eq!(st.refused, Refused::default());
        assert_eq!(st.splits, 0);
        assert_eq!(e.pp.mode(), SyncMode::Revalidate);
    }

    #[test]
    fn pages_are_split_when_the_backend_cannot_map_runs() {
        let mut e = env();
        e.gpu.set_runs(false);
        e.tree();
        let r = e.pp.get_root(PML4).unwrap();
        for off in [0, 0x5000, 0xf000, 0x1_f000] {
            assert_eq!(e.reach(&r, VA_64K + off), marker(RUN_A + off));
        }
        for off in [0, 0x1000, 0x1f_f000] {
            assert_eq!(e.reach(&r, VA_2M + off), marker(HUGE + off));
        }
        // The 64 KiB table is read as 4 KiB entries, the 2 MiB page through a host table.
        assert_eq!(e.pde(&r, VA_64K).unwrap() & IPS, 0);
        assert_eq!(e.pde(&r, VA_2M).unwrap() & PS, 0);
        let st = e.pp.stats();
        assert_eq!((st.tables, st.pins, st.splits), (6, FULL_PINS, 3));
        assert_eq!(e.gpu.host_pages(), 6);
        e.pp.reset();
        assert_eq!((e.gpu.mappings(), e.gpu.host_pages()), (0, 0));
    }

    #[test]
    fn invalid_entries_are_not_present_and_counted() {
        let mut e = env();
        e.tree();
        let outside = (GUEST_PAGES as u64 + 8) * PAGE;
        e.set(PDP, 1, 0x4000_0000 | P | PS); // 1 GiB
        e.set(PD, 3, (HUGE + PAGE) | P | PS); // 2 MiB page, misaligned
        e.set(PD, 4, SPARE | P | PS | IPS); // both
        e.set(PD, 5, outside | P); // table outside guest RAM
        e.set(PT, 3, (1 << 39) | PAGE_A | P); // beyond 39 bits
        e.set(PT, 4, outside | P); // page outside guest RAM
        e.set(PT64, 32, (RUN_B + 0x1000) | P); // 64 KiB page, misaligned
        let r = e.pp.get_root(PML4).unwrap();
        for va in [
            1 << 30,
            3 << 21,
            4 << 21,
            5 << 21,
            VA_4K + 2 * PAGE,
            VA_4K + 3 * PAGE,
            VA_64K + 0x20000,
        ] {
            assert!(e.walk(r.dev_addr(), va).is_none());
        }
        // The valid rest still works.
        assert_eq!(e.reach(&r, VA_4K), marker(PAGE_A));
        assert_eq!(e.reach(&r, VA_2M), marker(HUGE));
        let f = e.pp.stats().refused;
        assert_eq!(
            (
                f.huge_1g,
                f.misaligned_2m,
                f.ps_and_ips,
                f.address,
                f.misaligned_64k
            ),
            (1, 1, 1, 1, 1)
        );
        assert_eq!((f.frame, f.invalid()), (2, 5));
        // A root that is no page, or lies beyond the DMA range, is refused.
        assert_eq!(e.pp.get_root(PML4 + 8).err(), Some(EINVAL));
        assert_eq!(e.pp.get_root(1 << 39).err(), Some(EINVAL));
        assert_eq!(e.pp.get_root(outside).err(), Some(EFAULT));
    }

    #[test]
    fn tables_are_shared_and_levels_kept_apart() {
        let mut e = env();
        e.tree();
        e.set(PML4_B, 0, PDP | P | RW);
        // The PD frame as a PDP: refused, the frame stays a PD.
        e.set(PML4_B, 1, PD | P | RW);
        let a = e.pp.get_root(PML4).unwrap();
        let b = e.pp.get_root(PML4_B).unwrap();
        assert!(a.dev_addr() != b.dev_addr());
        assert_eq!(e.pp.stats().tables, 6);
        assert_eq!(e.pp.stats().refused.level, 1);
        // Both roots reach the same pages through the same shadow PDP.
        let pdp = |r: &Root| e.gpu.host_load64(r.dev_addr()).unwrap() & gtt::PTE_ADDR_MASK;
        assert_eq!(pdp(&a), pdp(&b));
        assert_eq!(e.reach(&b, VA_2M), marker(HUGE));
        assert!(e.walk(b.dev_addr(), 1 << 39).is_none());
        // A root on a frame that is a PD already.
        assert_eq!(e.pp.get_root(PD).err(), Some(EINVAL));
        // The first root goes; the shared tables stay for the second.
        drop(a);
        e.pp.put_root(PML4);
        assert_eq!(e.pp.stats().roots, 1);
        assert_eq!(e.pp.stats().tables, 5);
        assert_eq!(e.reach(&b, VA_4K), marker(PAGE_A));
        e.pp.release(b);
        e.pp.put_root(PML4_B);
        let st = e.pp.stats();
        assert_eq!((st.roots, st.tables, st.pins), (0, 0, 0));
        assert_eq!((e.gpu.mappings(), e.gpu.host_pages()), (0, 0));
    }

    #[test]
    fn bounds_on_pins_refuse_the_root() {
        // Leaf pins: the 2 MiB page does not fit; nothing of the tree stays.
        let mut e = env_with(
            Limits {
                pins: 100,
                ..Limits::DEFAULT
            },
            2048,
        );
        e.tree();
        assert_eq!(e.pp.get_root(PML4).err(), Some(ENOSPC));
        let st = e.pp.stats();
        assert_eq!((st.roots, st.tables, st.pins), (0, 0, 0));
        assert_eq!((e.gpu.mappings(), e.gpu.host_pages()), (0, 0));
        assert!(st.refused.limit >= 1);
    }

    #[test]
    fn bounds_on_tables_and_roots() {
        // Table pages.
        let mut e = env_with(
            Limits {
                tables: 4,
                ..Limits::DEFAULT
            },
            2048,
        );
        e.tree();
        assert_eq!(e.pp.get_root(PML4).err(), Some(ENOSPC));
        assert_eq!(e.gpu.host_pages(), 0);
        // Roots.
        let mut e = env_with(
            Limits {
                roots: 1,
                ..Limits::DEFAULT
            },
            2048,
        );
        e.tree();
        e.set(PML4_B, 0, PDP | P | RW);
        let _a = e.pp.get_root(PML4).unwrap();
        assert_eq!(e.pp.get_root(PML4_B).err(), Some(ENOSPC));
    }

    #[test]
    fn a_bound_reached_later_fails_the_submission() {
        let mut e = env_with(
            Limits {
                pins: FULL_PINS as usize,
                ..Limits::DEFAULT
            },
            2048,
        );
        e.tree();
        let r = e.pp.get_root(PML4).unwrap();
        e.set(PT, 3, PAGE_A | P | RW);
        assert_eq!(e.pp.prepare(&r).err(), Some(ENOSPC));
        assert!(e.walk(r.dev_addr(), VA_4K + 2 * PAGE).is_none());
        assert_eq!(e.pp.stats().pins, FULL_PINS);
    }

    #[test]
    fn revalidation_follows_changes() {
        let mut e = env();
        e.tree();
        let r = e.pp.get_root(PML4).unwrap();
        let st = e.pp.prepare(&r).unwrap();
        assert_eq!(
            (st.tables_read, st.tables_changed, st.entries_changed),
            (5, 0, 0)
        );
        // A changed PTE.
        e.set(PT, 1, 0x12000 | P | RW);
        let st = e.pp.prepare(&r).unwrap();
        assert_eq!((st.tables_changed, st.entries_changed), (1, 1));
        assert_eq!(e.reach(&r, VA_4K), marker(0x12000));
        assert_eq!(e.gpu.mappings() as u64, FULL_PINS);
        // A changed PDE: a new page table replaces the old subtree, which goes.
        e.set(SPARE, 1, 0x13000 | P | RW);
        e.set(PD, 0, SPARE | P | RW);
        let st = e.pp.prepare(&r).unwrap();
        assert_eq!((st.tables_changed, st.entries_changed), (1, 1));
        assert_eq!(e.reach(&r, VA_4K), marker(0x13000));
        assert_eq!(e.reach(&r, VA_4K + PAGE), None);
        let s = e.pp.stats();
        assert_eq!((s.tables, s.pins), (5, FULL_PINS - 1));
        // A 2 MiB page cleared: its pins and mappings go.
        e.set(PD, 2, 0);
        e.pp.prepare(&r).unwrap();
        assert_eq!(e.reach(&r, VA_2M), None);
        assert_eq!(e.pp.stats().pins, FULL_PINS - 1 - 512);
        assert_eq!(e.gpu.mappings() as u64, FULL_PINS - 1 - 512);
        // The IPS bit flips on the same frame: the table is seen anew as 4 KiB entries.
        e.set(PD, 1, PT64 | P | RW);
        e.pp.prepare(&r).unwrap();
        assert_eq!(e.reach(&r, VA_64K), marker(RUN_A));
        assert_eq!(e.reach(&r, VA_64K + PAGE), marker(0x41000));
        let s = e.pp.stats();
        assert_eq!(s.revalidations, 5);
        assert_eq!(s.tables_changed, 4);
        assert_eq!(s.refused.invalid(), 0);
    }

    #[test]
    fn kvm_tracking_applies_writes() {
        let mut e = env();
        let t = FakeTracker::new();
        let tr: Arc<dyn Tracker> = t.clone();
        assert!(e.pp.set_tracker(Some(tr)).is_none());
        assert_eq!(e.pp.mode(), SyncMode::Kvm);
        e.tree();
        let r = e.pp.get_root(PML4).unwrap();
        for f in [PML4, PDP, PD, PT, PT64] {
            assert!(t.has(f / PAGE));
        }
        assert_eq!((t.count(), e.pp.stats().tracked), (5, 5));
        // A whole entry: re-shadowed at once.
        let v = 0x12000u64 | P | RW;
        e.set(PT, 1, v);
        e.pp.track_write(PT + 8, &v.to_le_bytes());
        assert_eq!(e.reach(&r, VA_4K), marker(0x12000));
        // Two halves: not present in between, whole after the second.
        let v = 0x13000u64 | P | RW;
        let b = v.to_le_bytes();
        e.pp.track_write(PT + 16, &b[..4]);
        assert_eq!(e.pp.parked(), 1);
        assert!(e.walk(r.dev_addr(), VA_4K + PAGE).is_none());
        e.pp.track_write(PT + 20, &b[4..]);
        assert_eq!(e.pp.parked(), 0);
        assert_eq!(e.reach(&r, VA_4K + PAGE), marker(0x13000));
        // One half, then a submission: applied by prepare.
        let v = 0x14000u64 | P | RW;
        e.pp.track_write(PT + 8, &v.to_le_bytes()[..4]);
        assert!(e.walk(r.dev_addr(), VA_4K).is_none());
        let st = e.pp.prepare(&r).unwrap();
        assert_eq!((st.halves_applied, st.tables_read), (1, 0));
        assert_eq!(e.reach(&r, VA_4K), marker(0x14000));
        // A PDE write swaps the page table: the old frame is untracked, the new tracked.
        e.set(SPARE, 0, PAGE_B | P);
        let v = SPARE | P | RW;
        e.pp.track_write(PD, &v.to_le_bytes());
        assert!(t.has(SPARE / PAGE) && !t.has(PT / PAGE));
        assert_eq!(e.reach(&r, 0), marker(PAGE_B));
        // Writes elsewhere are not ours.
        e.pp.track_write(PAGE_A, &[0u8; 8]);
        let s = e.pp.stats();
        assert_eq!((s.wp_faults, s.halves, s.revalidations), (5, 3, 0));
        // A memslot goes: its frames are lost (not removed), roots re-validate and
        // protect them again.
        e.pp.remove_region(PDP / PAGE, 2);
        assert_eq!(e.pp.stats().tracked, 3);
        // KVM dropped them: the tracker forgets them as KVM does.
        t.frames
            .lock()
            .retain(|f| *f != PDP / PAGE && *f != PD / PAGE);
        e.pp.prepare(&r).unwrap();
        assert_eq!(e.pp.stats().revalidations, 1);
        assert_eq!((e.pp.stats().tracked, t.count()), (5, 5));
        // A frame KVM cannot protect: re-validated instead.
        *t.refuse.lock() = Some(PML4_B / PAGE);
        e.set(PML4_B, 0, PDP | P | RW);
        let b = e.pp.get_root(PML4_B).unwrap();
        assert_eq!(e.pp.stats().untracked, 3);
        e.pp.prepare(&b).unwrap();
        assert_eq!(e.pp.stats().revalidations, 2);
        // Freeing removes exactly what was added.
        e.pp.release(b);
        e.pp.put_root(PML4_B);
        drop(r);
        e.pp.put_root(PML4);
        assert_eq!(t.count(), 0);
        assert_eq!(t.misuse.load(Ordering::Relaxed), 0);
        let old = e.pp.set_tracker(None);
        assert!(old.is_some());
        assert_eq!(e.pp.mode(), SyncMode::Revalidate);
    }

    #[test]
    fn a_root_outlives_the_guest_while_a_workload_holds_it() {
        let mut e = env();
        e.tree();
        let g = e.pp.get_root(PML4).unwrap();
        let w = g.clone();
        drop(g);
        e.pp.put_root(PML4);
        assert_eq!(e.pp.stats().roots, 1);
        assert_eq!(e.reach(&w, VA_4K), marker(PAGE_A));
        assert!(e.pp.prepare(&w).is_ok());
        e.pp.release(w);
        assert_eq!(e.pp.stats().roots, 0);
        assert_eq!((e.gpu.mappings(), e.gpu.host_pages()), (0, 0));
        // A submission's own root lives as long as its handle.
        let w = e.pp.workload_root(PML4).unwrap();
        assert_eq!(e.pp.stats().roots, 1);
        e.pp.release(w);
        assert_eq!(e.pp.stats().roots, 0);
        // The guest's reference alone keeps it; a second notify is counted.
        drop(e.pp.get_root(PML4).unwrap());
        drop(e.pp.get_root(PML4).unwrap());
        e.pp.put_root(PML4);
        assert_eq!(e.pp.stats().roots, 1);
        e.pp.put_root(PML4);
        assert_eq!(e.pp.stats().roots, 0);
    }

    #[test]
    fn reset_frees_everything() {
        // Pins for the tree and 100 more: the pin cache can serve 100 new pages only once
        // the shadow's views are gone.
        let limit = FULL_PINS as usize + 100;
        let mut e = env_with(Limits::DEFAULT, limit);
        let t = FakeTracker::new();
        let tr: Arc<dyn Tracker> = t.clone();
        e.pp.set_tracker(Some(tr));
        e.tree();
        e.set(PML4_B, 0, PDP | P | RW);
        let a = e.pp.get_root(PML4).unwrap();
        let _b = e.pp.get_root(PML4_B).unwrap();
        e.pp.track_write(PT + 8, &[0u8; 4]);
        // Guest pages no leaf uses.
        let more = |e: &Env| -> Result<KVec<View<FakePage>>> {
            let mut v = KVec::new();
            for k in 0..120u64 {
                v.push(e.mem.map(0x4_0000 + k * PAGE, 4, true)?, GFP_KERNEL)?;
            }
            Ok(v)
        };
        assert!(more(&e).is_err());
        e.pp.reset();
        let st = e.pp.stats();
        assert_eq!((st.roots, st.tables, st.pins, st.tracked), (0, 0, 0, 0));
        assert_eq!((e.gpu.mappings(), e.gpu.host_pages()), (0, 0));
        assert_eq!((t.count(), e.pp.parked()), (0, 0));
        assert_eq!(t.misuse.load(Ordering::Relaxed), 0);
        assert!(more(&e).is_ok());
        // Handles from before are stale.
        assert_eq!(e.pp.prepare(&a).err(), Some(ENOENT));
        // Dropping the PPGTT frees too.
        let _c = e.pp.get_root(PML4).unwrap();
        assert!(e.gpu.host_pages() > 0);
        let Env { gpu, pp, .. } = e;
        drop(pp);
        assert_eq!((gpu.mappings(), gpu.host_pages()), (0, 0));
    }
}
