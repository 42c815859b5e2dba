// SPDX-License-Identifier: GPL-2.0

//! The command streamers: one per engine, each running its context on a kernel worker
//! (one work item per engine, on `system_unbound`).
//!
//! **Submission.** [`EngineCore::submit`] checks the descriptor (`VALID`, addressing mode
//! 3; mode 1, legacy 32-bit, is refused with `EINVAL`), marks the engine busy and queues
//! its work item; `EBUSY` while a context runs.
//!
//! **CSB.** The engine writes its context status buffer into its status page
//! ([`EngineCore::set_hwsp`], a GGTT address) as GEN9 does: entry `wp` at dwords
//! `0x10 + 2 wp` (one 8-byte store: status low, context id = descriptor upper dword high),
//! then the write pointer at dword `0x1f`, with a write barrier (`smp_wmb`) between, so a
//! reader that sees the pointer and then issues `smp_rmb` sees the entry. The pointer
//! starts at 7 ("none yet") when the sim is made and goes 0..5 round robin; an engine
//! reset does not move it. Each context writes `IDLE_ACTIVE` when it starts and, when it
//! ends, `COMPLETE | ACTIVE_IDLE` (ran to its tail) or `PREEMPTED | ACTIVE_IDLE` (stopped:
//! fault, malformed command, hang, reset). Then the engine is marked idle, and then
//! [`Events::interrupt`] gets `GT_CONTEXT_SWITCH`, with `GT_CS_MASTER_ERROR` for a fault,
//! a malformed command or a hang (not for a reset the mediator asked for). No entry is
//! written while no status page is set, or if its GGTT entry does not translate; the
//! interrupt still comes.
//!
//! **Reset.** [`EngineCore::reset_engine`] asks the running context to stop at its next
//! command (or semaphore poll) and waits until the engine is idle. Called from the
//! engine's own worker (an [`Events`] callback of `MI_USER_INTERRUPT`), it only asks.
//!
//! Locking: `state` is a leaf spinlock, never held while a context runs or an event is
//! delivered.

use super::{
    exec::{self, Counts, Scratch},
    walk::{Mmu, Space},
    Hw,
};
use crate::{
    abi::{lrc, regs},
    gpu::{Engine, EngineError, PAGE},
};
use core::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use kernel::{
    new_condvar, new_spinlock,
    prelude::*,
    sync::{barrier::smp_wmb, Arc, CondVar, SpinLock},
    workqueue::{self, impl_has_work, new_work, Work, WorkItem},
};

/// The state of one engine.
struct State {
    /// A context is submitted and not finished.
    running: bool,
    /// The running (or last) context's descriptor and budget.
    desc: u64,
    budget: u32,
    /// Why the last context stopped.
    error: Option<EngineError>,
    /// GGTT address of the status page.
    hwsp: Option<u32>,
    /// CSB write pointer ([`lrc::csb::PTR_NONE`] before the first entry).
    csb_wp: u32,
    /// The run's scratch memory; taken by the worker while it runs.
    scratch: Option<KBox<Scratch>>,
}

/// One command streamer.
#[pin_data]
pub(crate) struct EngineCore {
    id: Engine,
    hw: Arc<Hw>,
    #[pin]
    state: SpinLock<State>,
    /// Signalled when the engine goes idle.
    #[pin]
    idle: CondVar,
    /// Set by a reset: the running context stops at its next command.
    stop: AtomicBool,
    /// Pid of the worker while it runs a context, else 0.
    worker: AtomicI32,
    #[pin]
    work: Work<EngineCore>,
}

impl_has_work! {
    impl HasWork<Self> for EngineCore { self.work }
}

impl WorkItem for EngineCore {
    type Pointer = Arc<EngineCore>;

    fn run(this: Arc<EngineCore>) {
        this.execute();
    }
}

impl EngineCore {
    /// An idle engine.
    pub(crate) fn new(id: Engine, hw: Arc<Hw>) -> Result<Arc<Self>> {
        let scratch = Scratch::new()?;
        Arc::pin_init(
            pin_init!(Self {
                id,
                hw,
                state <- new_spinlock!(
                    State {
                        running: false,
                        desc: 0,
                        budget: 0,
                        error: None,
                        hwsp: None,
                        csb_wp: lrc::csb::PTR_NONE,
                        scratch: Some(scratch),
                    },
                    "gvtpv_sim_engine"
                ),
                idle <- new_condvar!("gvtpv_sim_engine_idle"),
                stop: AtomicBool::new(false),
                worker: AtomicI32::new(0),
                work <- new_work!("gvtpv_sim_engine_work"),
            }),
            GFP_KERNEL,
        )
    }

    /// See [`crate::gpu::Gpu::set_hwsp`].
    pub(crate) fn set_hwsp(&self, ggtt: u32) -> Result {
        if u64::from(ggtt) % PAGE != 0 {
            return Err(EINVAL);
        }
        self.state.lock().hwsp = Some(ggtt);
        Ok(())
    }

    /// See [`crate::gpu::Gpu::submit`].
    pub(crate) fn submit(self: &Arc<Self>, desc: u64, budget: u32) -> Result {
        if desc & lrc::desc::VALID == 0 || lrc::desc::mode(desc) != lrc::desc::MODE_LEGACY_64B {
            return Err(EINVAL);
        }
        {
            let mut g = self.state.lock();
            if g.running {
                return Err(EBUSY);
            }
            g.running = true;
            g.desc = desc;
            g.budget = budget;
            g.error = None;
            self.stop.store(false, Ordering::Relaxed);
        }
        if workqueue::system_unbound().enqueue(self.clone()).is_err() {
            // Still queued from before: cannot be, since the worker marks the engine idle
            // last. Undo.
            self.state.lock().running = false;
            self.idle.notify_all();
            return Err(EBUSY);
        }
        Ok(())
    }

    /// See [`crate::gpu::Gpu::busy`].
    pub(crate) fn busy(&self) -> bool {
        self.state.lock().running
    }

    /// See [`crate::gpu::Gpu::engine_error`].
    pub(crate) fn error(&self) -> Option<EngineError> {
        self.state.lock().error
    }

    /// See [`crate::gpu::Gpu::reset_engine`].
    pub(crate) fn reset_engine(&self) {
        let me = kernel::current!().pid();
        if self.worker.load(Ordering::Acquire) == me {
            // From inside the run (an event callback): waiting would never end.
            self.stop.store(true, Ordering::Release);
            return;
        }
        let mut g = self.state.lock();
        if !g.running {
            return;
        }
        self.stop.store(true, Ordering::Release);
        while g.running {
            self.idle.wait(&mut g);
        }
    }

    /// The value `MI_LOAD_REGISTER_IMM` last wrote to register `off`, while idle.
    pub(crate) fn reg(&self, off: u32) -> Option<u32> {
        self.state.lock().scratch.as_ref()?.regs.read(off)
    }

    /// Writes one CSB entry and the write pointer into the status page.
    fn csb(&self, hwsp: Option<u32>, status: u32, ctx_id: u32) {
        let Some(base) = hwsp else {
            return;
        };
        let wp = {
            let mut g = self.state.lock();
            g.csb_wp = if g.csb_wp + 1 >= lrc::csb::ENTRIES {
                0
            } else {
                g.csb_wp + 1
            };
            g.csb_wp
        };
        let mmu = Mmu {
            ggtt: &self.hw.ggtt,
            iommu: &self.hw.iommu,
            pml4: 0,
        };
        let Ok(f) = mmu.translate(Space::Ggtt, u64::from(base), true) else {
            return;
        };
        let entry = u64::from(status) | (u64::from(ctx_id) << 32);
        let at = 4 * (lrc::hwsp::CSB_BUF0 + 2 * wp as usize);
        if f.store64(at, entry).is_err() {
            return;
        }
        // The entry before the pointer (pairs with the reader's smp_rmb).
        smp_wmb();
        let _ = f.store32(4 * lrc::hwsp::CSB_WRITE, wp);
    }

    /// The worker: runs the submitted context and reports it.
    fn execute(&self) {
        self.worker
            .store(kernel::current!().pid(), Ordering::Release);
        let (desc, budget, hwsp, mut scratch) = {
            let mut g = self.state.lock();
            (g.desc, g.budget, g.hwsp, g.scratch.take())
        };
        let events = self.hw.events();
        let ctx_id = lrc::desc::ctx_id(desc);
        self.csb(hwsp, lrc::csb::IDLE_ACTIVE, ctx_id);
        let mut counts = Counts::default();
        let res = match scratch.as_deref_mut() {
            Some(s) => {
                let job = exec::Job {
                    engine: self.id,
                    hw: &self.hw,
                    events: events.as_ref(),
                    stop: &self.stop,
                    desc,
                    budget,
                };
                exec::run(&job, s, &mut counts)
            }
            None => Err(EngineError::Hang),
        };
        let status = match res {
            Ok(()) => lrc::csb::COMPLETE | lrc::csb::ACTIVE_IDLE,
            Err(_) => lrc::csb::PREEMPTED | lrc::csb::ACTIVE_IDLE,
        };
        self.csb(hwsp, status, ctx_id);
        self.hw.account(&counts, res);
        let bits = match res {
            Ok(()) | Err(EngineError::Reset) => regs::GT_CONTEXT_SWITCH,
            Err(_) => regs::GT_CONTEXT_SWITCH | regs::GT_CS_MASTER_ERROR,
        };
        self.worker.store(0, Ordering::Release);
        {
            let mut g = self.state.lock();
            g.running = false;
            g.error = res.err();
            if g.scratch.is_none() {
                g.scratch = scratch;
            }
        }
        self.idle.notify_all();
        if let Some(ev) = events {
            ev.interrupt(self.id, bits);
        }
    }
}
