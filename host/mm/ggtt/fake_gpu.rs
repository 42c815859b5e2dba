// SPDX-License-Identifier: GPL-2.0

//! A backend for KUnit that records what the mediator asks of it: GGTT entries, device
//! mappings (whose pages a test can reach by device address) and host memory. It runs
//! nothing: `submit` fails with `ENODEV`.

use crate::gpu::{DevAddr, DevPage, Engine, EngineError, Events, Gpu, GpuStats, HostMem, PAGE};
use core::sync::atomic::{AtomicU64, Ordering};
use kernel::{
    new_mutex,
    prelude::*,
    rbtree::RBTree,
    sync::{Arc, Mutex},
};

/// Host memory of the fake: bytes under a lock.
#[pin_data]
struct FakeMem {
    dev: DevAddr,
    len: usize,
    #[pin]
    bytes: Mutex<KVVec<u8>>,
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
    next: AtomicU64,
    invalidates: AtomicU64,
    ggtt_writes: AtomicU64,
}

impl FakeGpu {
    /// A fake with nothing mapped.
    pub(crate) fn new() -> Result<Arc<Self>> {
        Arc::pin_init(
            pin_init!(Self {
                ggtt <- new_mutex!(RBTree::new()),
                maps <- new_mutex!(RBTree::new()),
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
        let dev = self.take(pages.len());
        let mut m = self.maps.lock();
        for (i, p) in pages.iter().enumerate() {
            m.try_create_and_insert(dev + i as u64 * PAGE, p.clone(), GFP_KERNEL)?;
        }
        Ok(Some(dev))
    }
    fn dma_unmap(&self, addr: DevAddr) {
        self.maps.lock().remove(&addr);
    }
    fn alloc(&self, pages: usize) -> Result<Arc<dyn HostMem>> {
        let len = pages.checked_mul(PAGE as usize).ok_or(EINVAL)?;
        let mut v = KVVec::new();
        v.extend_with(len, 0u8, GFP_KERNEL)?;
        let m: Arc<FakeMem> = Arc::pin_init(
            pin_init!(FakeMem {
                dev: self.take(pages),
                len,
                bytes <- new_mutex!(v),
            }),
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
