// SPDX-License-Identifier: GPL-2.0

//! A software GEN9: the backend the mediator drives when there is no Intel GPU.
//!
//! - [`ggtt`]: the GGTT of host entries (4 GiB, one `u64` per 4 KiB).
//! - [`iommu`]: device address to page; the only way the sim reaches memory.
//! - [`walk`]: graphics address to page, through the GGTT or a 4-level PPGTT.
//! - [`engine`]: RCS and BCS, each on a kernel worker; execlist submission and the CSB.
//! - [`exec`]: the ring, batches and MI commands; [`blit`]: the `XY_*` blits;
//!   [`regs`]: the registers `MI_LOAD_REGISTER_IMM` writes.
//!
//! What a mediator must set up to run a context: a context image in host memory mapped in
//! the GGTT (the sim reads page 1, the register state page, at the `lrc::state` indices
//! for `RING_HEAD`, `RING_TAIL`, `RING_START` (a GGTT address), `RING_CTL` (size and
//! `VALID`) and `PDP0` (the device address of the PML4); page 0 is the per-process status
//! page that store-index commands write), a ring mapped in the GGTT, PPGTT tables in host
//! memory, the engine's status page set with [`Gpu::set_hwsp`] and its dword 0x1f
//! initialised to 7 by the mediator; then [`Gpu::submit`] with a descriptor of mode 3.

pub(crate) mod blit;
pub(crate) mod engine;
pub(crate) mod exec;
pub(crate) mod ggtt;
pub(crate) mod iommu;
pub(crate) mod regs;
pub(crate) mod walk;

#[cfg(CONFIG_KUNIT)]
mod tests;

use crate::gpu::{DevAddr, DevPage, Engine, EngineError, Events, Gpu, GpuStats, HostMem};
use core::sync::atomic::{AtomicU64, Ordering};
use engine::EngineCore;
use exec::Counts;
use ggtt::Ggtt;
use iommu::Iommu;
use kernel::{
    new_spinlock,
    prelude::*,
    sync::{Arc, SpinLock},
};

/// What the engines share: memory, events and counters.
#[pin_data]
pub(crate) struct Hw {
    pub(crate) ggtt: Ggtt,
    pub(crate) iommu: Arc<Iommu>,
    #[pin]
    events: SpinLock<Option<Arc<dyn Events>>>,
    commands: AtomicU64,
    not_modelled: AtomicU64,
    completed: AtomicU64,
    faults: AtomicU64,
    hangs: AtomicU64,
    blit_bytes: AtomicU64,
}

impl Hw {
    /// Who hears about interrupts now.
    pub(crate) fn events(&self) -> Option<Arc<dyn Events>> {
        self.events.lock().clone()
    }

    /// Adds a run's counts and outcome to the counters.
    pub(crate) fn account(&self, c: &Counts, res: Result<(), EngineError>) {
        let add = |a: &AtomicU64, v: u64| {
            a.fetch_add(v, Ordering::Relaxed);
        };
        add(&self.commands, c.commands);
        add(&self.not_modelled, c.not_modelled);
        add(&self.blit_bytes, c.blit_bytes);
        match res {
            Ok(()) => add(&self.completed, 1),
            Err(EngineError::Fault { .. } | EngineError::Malformed { .. }) => add(&self.faults, 1),
            Err(EngineError::Hang) => add(&self.hangs, 1),
            Err(EngineError::Reset) => {}
        }
    }
}

/// The software GEN9.
pub(crate) struct Sim {
    hw: Arc<Hw>,
    engines: [Arc<EngineCore>; Engine::COUNT],
}

impl Sim {
    /// A sim with an empty GGTT and IOMMU, both engines idle.
    pub(crate) fn new() -> Result<Arc<Self>> {
        let hw = Arc::pin_init(
            try_pin_init!(Hw {
                ggtt: Ggtt::new()?,
                iommu: Iommu::new()?,
                events <- new_spinlock!(None, "gvtpv_sim_events"),
                commands: AtomicU64::new(0),
                not_modelled: AtomicU64::new(0),
                completed: AtomicU64::new(0),
                faults: AtomicU64::new(0),
                hangs: AtomicU64::new(0),
                blit_bytes: AtomicU64::new(0),
            }? Error),
            GFP_KERNEL,
        )?;
        let rcs = EngineCore::new(Engine::Rcs, hw.clone())?;
        let bcs = EngineCore::new(Engine::Bcs, hw.clone())?;
        Ok(Arc::new(
            Self {
                hw,
                engines: [rcs, bcs],
            },
            GFP_KERNEL,
        )?)
    }

    fn engine(&self, e: Engine) -> &Arc<EngineCore> {
        // PANIC: `Engine::index` is below `Engine::COUNT` by construction.
        &self.engines[e.index()]
    }

    /// The value `MI_LOAD_REGISTER_IMM` last wrote to register `off` on `engine`, read
    /// while the engine is idle.
    pub(crate) fn reg(&self, engine: Engine, off: u32) -> Option<u32> {
        self.engine(engine).reg(off)
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        for e in Engine::ALL {
            self.engine(e).reset_engine();
        }
    }
}

impl Gpu for Sim {
    fn name(&self) -> &'static CStr {
        c"sim"
    }

    fn ggtt_entries(&self) -> u32 {
        ggtt::ENTRIES
    }

    fn ggtt_write(&self, index: u32, pte: u64) -> Result {
        self.hw.ggtt.write(index, pte)
    }

    fn ggtt_read(&self, index: u32) -> Result<u64> {
        self.hw.ggtt.read(index)
    }

    fn ggtt_invalidate(&self) {
        self.hw.ggtt.invalidate();
    }

    fn dma_map(&self, page: Arc<dyn DevPage>) -> Result<DevAddr> {
        self.hw.iommu.map(core::slice::from_ref(&page))
    }

    fn map_run(&self, pages: &[Arc<dyn DevPage>]) -> Result<Option<DevAddr>> {
        self.hw.iommu.map(pages).map(Some)
    }

    fn dma_unmap(&self, addr: DevAddr) {
        self.hw.iommu.unmap(addr);
    }

    fn alloc(&self, pages: usize) -> Result<Arc<dyn HostMem>> {
        self.hw.iommu.alloc(pages)
    }

    fn set_events(&self, events: Arc<dyn Events>) {
        let old = self.hw.events.lock().replace(events);
        drop(old);
    }

    fn set_hwsp(&self, engine: Engine, ggtt: u32) -> Result {
        self.engine(engine).set_hwsp(ggtt)
    }

    fn submit(&self, engine: Engine, desc: u64, budget: u32) -> Result {
        self.engine(engine).submit(desc, budget)
    }

    fn busy(&self, engine: Engine) -> bool {
        self.engine(engine).busy()
    }

    fn engine_error(&self, engine: Engine) -> Option<EngineError> {
        self.engine(engine).error()
    }

    fn reset_engine(&self, engine: Engine) {
        self.engine(engine).reset_engine();
    }

    fn stats(&self) -> GpuStats {
        let ld = |a: &AtomicU64| a.load(Ordering::Relaxed);
        GpuStats {
            commands: ld(&self.hw.commands),
            not_modelled: ld(&self.hw.not_modelled),
            completed: ld(&self.hw.completed),
            faults: ld(&self.hw.faults),
            hangs: ld(&self.hw.hangs),
            blit_bytes: ld(&self.hw.blit_bytes),
            mappings: self.hw.iommu.mappings(),
        }
    }
}
