// SPDX-License-Identifier: GPL-2.0

//! A backend for KUnit that records what the mediator asks of it: GGTT entries, device
//! mappings (whose pages a test can reach by device address) and host memory. It runs
//! nothing: `submit` fails with `ENODEV`.

use crate::gpu::{DevAddr, DevPage, Engine, EngineError, Events, Gpu, GpuStats, HostMem, PAGE};
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use kernel::{
    new_mutex,
    prelude::*,
    rbtree::RBTree,
    sync::{Arc, Mutex},
};

/// Host memory of the fake: bytes under a lock.
struct FakeMem {
    dev: DevAddr,
    len: usize,
    bytes: Arc<Mutex<KVVec<u8>>>,
    /// Where the fake finds live host memory by device address; the entry goes on drop.
    live: Arc<LiveMem>,
}

/// The host memory of a fake that is still allocated, by device address: how a test
/// follows shadow tables the way the device would.
#[pin_data]
struct LiveMem {
    #[pin]
    mems: Mutex<RBTree<DevAddr, Arc<Mutex<KVVec<u8>>>>>,
}

impl Drop for FakeMem {
    fn drop(&mut self) {
        self.live.mems.lock().remove(&self.dev);
    }
}

impl FakeMem {
    fn at(&self, off: usize, size: usize) -> Result {
        if off % size == 0 && off.checked_add(size).is_some_and(|e| e <= self.len) {
            Ok(())
        } else {
            Err(EINVAL)
        }
    }
    fn load<const N: usize>(&self, off: usize) -> Result<[u8; N]> {
        self.at(off, N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(&self.bytes.lock()[off..off + N]);
        Ok(out)
    }
    fn store(&self, off: usize, v: &[u8]) -> Result {
        self.at(off, v.len())?;
        self.bytes.lock()[off..off + v.len()].copy_from_slice(v);
        Ok(())
    }
}

impl HostMem for FakeMem {
    fn dev_addr(&self) -> DevAddr {
        self.dev
    }
    fn len(&self) -> usize {
        self.len
    }
    fn load32(&self, off: usize) -> Result<u32> {
        self.load::<4>(off).map(u32::from_le_bytes)
    }
    fn load64(&self, off: usize) -> Result<u64> {
        self.load::<8>(off).map(u64::from_le_bytes)
    }
    fn store32(&self, off: usize, v: u32) -> Result {
        self.store(off, &v.to_le_bytes())
    }
    fn store64(&self, off: usize, v: u64) -> Result {
        self.store(off, &v.to_le_bytes())
    }
}

/// The fake backend.
#[pin_data]
pub(crate) struct FakeGpu {
    #[pin]
    ggtt: Mutex<RBTree<u32, u64>>,
    #[pin]
    maps: Mutex<RBTree<DevAddr, Arc<dyn DevPage>>>,
    /// Pages of each [`Gpu::map_run`] mapping, by its first device address.
    #[pin]
    runs: Mutex<RBTree<DevAddr, usize>>,
    live: Arc<LiveMem>,
    /// Whether [`Gpu::map_run`] refuses (returns `None`), as hardware without an IOMMU.
    no_runs: AtomicBool,
    next: AtomicU64,
    invalidates: AtomicU64,
    ggtt_writes: AtomicU64,
}

impl FakeGpu {
    /// A fake with nothing mapped.
    pub(crate) fn new() -> Result<Arc<Self>> {
        let live = Arc::pin_init(
            pin_init!(LiveMem {
                mems <- new_mutex!(RBTree::new()),
            }),
            GFP_KERNEL,
        )?;
        Arc::pin_init(
            pin_init!(Self {
                ggtt <- new_mutex!(RBTree::new()),
                maps <- new_mutex!(RBTree::new()),
                runs <- new_mutex!(RBTree::new()),
                live,
                no_runs: AtomicBool::new(false),
                next: AtomicU64::new(0x1_0000_0000),
                invalidates: AtomicU64::new(0),
                ggtt_writes: AtomicU64::new(0),
            }),
            GFP_KERNEL,
        )
    }

    /// The page mapped at device address `dev`, if any.
    pub(crate) fn page(&self, dev: DevAddr) -> Option<Arc<dyn DevPage>> {
        self.maps.lock().get(&dev).cloned()
    }

    /// Device mappings live now.
    pub(crate) fn mappings(&self) -> usize {
        self.maps.lock().iter().count()
    }

    /// GGTT invalidations so far.
    pub(crate) fn invalidates(&self) -> u64 {
        self.invalidates.load(Ordering::Relaxed)
    }

    /// GGTT entry writes so far.
    pub(crate) fn ggtt_writes(&self) -> u64 {
        self.ggtt_writes.load(Ordering::Relaxed)
    }

    fn take(&self, pages: usize) -> DevAddr {
        self.next.fetch_add(pages as u64 * PAGE, Ordering::Relaxed)
    }

    /// Makes [`Gpu::map_run`] refuse (`None`) or map again.
    pub(crate) fn set_runs(&self, on: bool) {
        self.no_runs.store(!on, Ordering::Relaxed);
    }

    /// Host memory pages allocated and not freed yet.
    pub(crate) fn host_pages(&self) -> usize {
        self.live
            .mems
            .lock()
            .values()
            .map(|b| b.lock().len() / PAGE as usize)
            .sum()
    }

    /// The qword of live host memory at device address `dev` (8-byte aligned), as the
    /// device would read it; `None` where no live allocation is.
    pub(crate) fn host_load64(&self, dev: DevAddr) -> Option<u64> {
        let mems = self.live.mems.lock();
        let (base, bytes) = mems
            .iter()
            .find(|(b, m)| **b <= dev && dev - **b < m.lock().len() as u64)?;
        let off = usize::try_from(dev - base).ok()?;
        let b = bytes.lock();
        b.get(off..off + 8)
            .filter(|_| off % 8 == 0)
            .and_then(|s| s.try_into().ok())
            .map(u64::from_le_bytes)
    }
}

impl Gpu for FakeGpu {
    fn name(&self) -> &'static CStr {
        c"fake"
    }
    fn ggtt_entries(&self) -> u32 {
        1 << 20
    }
    fn ggtt_write(&self, index: u32, pte: u64) -> Result {
        if index >= self.ggtt_entries() {
            return Err(EINVAL);
        }
        self.ggtt_writes.fetch_add(1, Ordering::Relaxed);
        let mut g = self.ggtt.lock();
        if pte == 0 {
            g.remove(&index);
        } else {
            g.try_create_and_insert(index, pte, GFP_KERNEL)?;
        }
        Ok(())
    }
    fn ggtt_read(&self, index: u32) -> Result<u64> {
        Ok(self.ggtt.lock().get(&index).copied().unwrap_or(0))
    }
    fn ggtt_invalidate(&self) {
        self.invalidates.fetch_add(1, Ordering::Relaxed);
    }
    fn dma_map(&self, page: Arc<dyn DevPage>) -> Result<DevAddr> {
        let dev = self.take(1);
        self.maps
            .lock()
            .try_create_and_insert(dev, page, GFP_KERNEL)?;
        Ok(dev)
    }
    fn map_run(&self, pages: &[Arc<dyn DevPage>]) -> Result<Option<DevAddr>> {
        if self.no_runs.load(Ordering::Relaxed) {
            return Ok(None);
        }
        // Aligned to the run's size rounded up to a power of two, as the trait promises.
        let size = pages.len() as u64 * PAGE;
        let span = size.next_power_of_two();
        let dev = loop {
            let cur = self.next.load(Ordering::Relaxed);
            let start = cur.next_multiple_of(span);
            if self
                .next
                .compare_exchange(cur, start + size, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
            {
                break start;
            }
        };
        let mut m = self.maps.lock();
        for (i, p) in pages.iter().enumerate() {
            m.try_create_and_insert(dev + i as u64 * PAGE, p.clone(), GFP_KERNEL)?;
        }
        self.runs
            .lock()
            .try_create_and_insert(dev, pages.len(), GFP_KERNEL)?;
        Ok(Some(dev))
    }
    fn dma_unmap(&self, addr: DevAddr) {
        let pages = self.runs.lock().remove(&addr).unwrap_or(1);
        let mut m = self.maps.lock();
        for i in 0..pages {
            m.remove(&(addr + i as u64 * PAGE));
        }
    }
    fn alloc(&self, pages: usize) -> Result<Arc<dyn HostMem>> {
        let len = pages.checked_mul(PAGE as usize).ok_or(EINVAL)?;
        let mut v = KVVec::new();
        v.extend_with(len, 0u8, GFP_KERNEL)?;
        let bytes = Arc::pin_init(new_mutex!(v), GFP_KERNEL)?;
        let dev = self.take(pages);
        self.live
            .mems
            .lock()
            .try_create_and_insert(dev, bytes.clone(), GFP_KERNEL)?;
        let m: Arc<FakeMem> = Arc::new(
            FakeMem {
                dev,
                len,
                bytes,
                live: self.live.clone(),
            },
            GFP_KERNEL,
        )?;
        Ok(m)
    }
    fn set_events(&self, _events: Arc<dyn Events>) {}
    fn set_hwsp(&self, _engine: Engine, _ggtt: u32) -> Result {
        Ok(())
    }
    fn submit(&self, _engine: Engine, _desc: u64, _budget: u32) -> Result {
        Err(ENODEV)
    }
    fn busy(&self, _engine: Engine) -> bool {
        false
    }
    fn engine_error(&self, _engine: Engine) -> Option<EngineError> {
        None
    }
    fn reset_engine(&self, _engine: Engine) {}
    fn stats(&self) -> GpuStats {
        GpuStats::default()
    }
}
