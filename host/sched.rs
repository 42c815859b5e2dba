// SPDX-License-Identifier: GPL-2.0

//! The engines' queues, shared by every vGPU: one FIFO per engine (weighted time slices
//! are a later issue), one context on the backend per engine at a time, as GVT-g runs
//! one workload per engine (`scheduler.c: workload_thread`).
//!
//! One rule: a faulting or hung workload of one vGPU never stalls another vGPU's work.
//! The backend bounds every context with a command budget (a context that exceeds it is
//! preempted and reported as hung), a fault ends a context at once, and a vGPU's reset
//! or close takes its queued work out and resets the engine if its work runs.
//!
//! Threads: [`Sched::enqueue`] runs in a trap handler, [`Events::interrupt`] in the
//! backend's worker; either may start the next job. A job's [`Job::start`] and
//! [`Job::finish`] run with no scheduler lock held, and take the vGPU's own locks
//! (`ggtt`, `state`, `irqs`), so a caller of [`Sched::cancel`] must hold none of those
//! (the backend's engine reset waits for the context to end, and its end runs
//! [`Job::finish`]). The queue lock is a leaf.

#![allow(dead_code)] // The execlist path enqueues once wired (issue 7).

pub(crate) mod workload;

use crate::{
    abi::{lrc, regs},
    gpu::{Engine, EngineError, Events, Gpu},
    mm::host::{HostBuf, HostGgtt},
};
use kernel::{
    new_mutex,
    prelude::*,
    sync::{Arc, Mutex},
};

/// Queued jobs per engine, all vGPUs together.
pub(crate) const QUEUE_MAX: usize = 64;
/// Queued jobs per engine and vGPU.
pub(crate) const QUEUE_PER_VGPU: usize = 8;
/// Commands a context may run before the backend preempts it as hung (`MI_SEMAPHORE_WAIT`
/// polls count).
pub(crate) const BUDGET: u32 = 1 << 20;

/// How a job ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The context ran to its tail.
    Completed,
    /// The backend stopped it.
    Failed(EngineError),
    /// Taken out before it ran (a reset or close of its vGPU, or [`Job::start`] failed).
    Cancelled,
}

/// One context of one vGPU, ready for the backend.
pub(crate) trait Job: Send + Sync {
    /// The engine it runs on.
    fn engine(&self) -> Engine;
    /// The id of its vGPU.
    fn vgpu(&self) -> u32;
    /// Called right before the backend gets it (the vGPU's schedule-in); returns the
    /// descriptor of its shadow context.
    fn start(&self) -> Result<u64>;
    /// `MI_USER_INTERRUPT` ran in it.
    fn user_interrupt(&self);
    /// It ended (the vGPU's schedule-out).
    fn finish(&self, outcome: Outcome);
}

/// Counters, for debugfs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct SchedStats {
    /// Jobs given to the backend.
    pub(crate) dispatched: u64,
    /// Jobs that completed.
    pub(crate) completed: u64,
    /// Jobs the backend stopped.
    pub(crate) failed: u64,
    /// Jobs cancelled.
    pub(crate) cancelled: u64,
    /// Context-switch interrupts with no job to end (should stay 0).
    pub(crate) spurious: u64,
}

struct Queue {
    fifo: KVec<Arc<dyn Job>>,
    running: Option<Arc<dyn Job>>,
    /// Last CSB entry read from the engine's status page (7: none yet).
    csb_read: u32,
    stats: SchedStats,
}

/// The scheduler: owned by the mediator, shared by every vGPU.
#[pin_data]
pub(crate) struct Sched {
    gpu: Arc<dyn Gpu>,
    /// The engines' status pages, where the backend writes its CSB.
    hwsp: KVec<HostBuf>,
    #[pin]
    rcs: Mutex<Queue>,
    #[pin]
    bcs: Mutex<Queue>,
}

impl Sched {
    /// A scheduler over `gpu`, with the engines' status pages in host window 0; it
    /// becomes the backend's [`Events`] handler.
    ///
    /// # Errors
    ///
    /// `ENOMEM`, or the backend's error.
    pub(crate) fn new(gpu: Arc<dyn Gpu>) -> Result<Arc<Self>> {
        let window = HostGgtt::new(gpu.clone(), 0)?;
        let mut hwsp = KVec::with_capacity(Engine::COUNT, GFP_KERNEL)?;
        for e in Engine::ALL {
            let page = window.alloc(1)?;
            gpu.set_hwsp(e, page.gm() as u32)?;
            hwsp.push(page, GFP_KERNEL)?;
        }
        let queue = || Queue {
            fifo: KVec::new(),
            running: None,
            csb_read: lrc::csb::PTR_NONE,
            stats: SchedStats::default(),
        };
        let events_of = gpu.clone();
        let s = Arc::pin_init(
            pin_init!(Self {
                gpu,
                hwsp,
                rcs <- new_mutex!(queue(), "Sched::rcs"),
                bcs <- new_mutex!(queue(), "Sched::bcs"),
            }),
            GFP_KERNEL,
        )?;
        events_of.set_events(s.clone());
        Ok(s)
    }

    /// Breaks the reference cycle with the backend (it holds the scheduler as its events
    /// handler). Called once, when the mediator goes, after every vGPU is gone.
    pub(crate) fn shutdown(&self) -> Result {
        self.gpu.set_events(Arc::new(NoEvents, GFP_KERNEL)?);
        Ok(())
    }

    fn queue(&self, e: Engine) -> &Mutex<Queue> {
        match e {
            Engine::Rcs => &self.rcs,
            Engine::Bcs => &self.bcs,
        }
    }

    /// Queues `job` behind every job of its engine, and starts it if the engine is idle.
    ///
    /// # Errors
    ///
    /// `ENOSPC` when the engine's queue, or the vGPU's share of it, is full.
    pub(crate) fn enqueue(&self, job: Arc<dyn Job>) -> Result {
        let e = job.engine();
        {
            let mut q = self.queue(e).lock();
            let mine = q.fifo.iter().filter(|j| j.vgpu() == job.vgpu()).count();
            if q.fifo.len() >= QUEUE_MAX || mine >= QUEUE_PER_VGPU {
                return Err(ENOSPC);
            }
            q.fifo.push(job, GFP_KERNEL)?;
        }
        self.dispatch(e);
        Ok(())
    }

    /// Starts the head of `e`'s queue if the engine is idle.
    fn dispatch(&self, e: Engine) {
        loop {
            let job = {
                let mut q = self.queue(e).lock();
                if q.running.is_some() || q.fifo.is_empty() {
                    return;
                }
                let job = q.fifo.remove(0).ok();
                q.running = job.clone();
                match job {
                    Some(j) => j,
                    None => return,
                }
            };
            let submitted = job
                .start()
                .and_then(|desc| self.gpu.submit(e, desc, BUDGET));
            if submitted.is_ok() {
                self.queue(e).lock().stats.dispatched += 1;
                return;
            }
            // Not started: it ends here, and the next one gets its turn.
            {
                let mut q = self.queue(e).lock();
                q.running = None;
                q.stats.cancelled += 1;
            }
            job.finish(Outcome::Cancelled);
        }
    }

    /// Takes every queued job of vGPU `vgpu` (on `engine`, or on all engines) out, and
    /// resets the engine if one of its jobs runs; returns when none of its jobs runs.
    /// The caller holds none of the vGPU's `ggtt`, `state` or `irqs` locks.
    pub(crate) fn cancel(&self, vgpu: u32, engine: Option<Engine>) {
        for e in Engine::ALL {
            if engine.is_some_and(|x| x != e) {
                continue;
            }
            let mut taken = KVec::new();
            let running_is_mine = {
                let mut q = self.queue(e).lock();
                let mut i = 0;
                while i < q.fifo.len() {
                    if q.fifo[i].vgpu() == vgpu {
                        if let Ok(j) = q.fifo.remove(i) {
                            // Cannot fail: `taken` has room or grows; if it cannot
                            // grow, the job is dropped unfinished (it holds nothing the
                            // vGPU's reset does not free).
                            let _ = taken.push(j, GFP_KERNEL);
                        }
                    } else {
                        i += 1;
                    }
                }
                q.stats.cancelled += taken.len() as u64;
                q.running.as_ref().is_some_and(|j| j.vgpu() == vgpu)
            };
            for j in taken {
                j.finish(Outcome::Cancelled);
            }
            if running_is_mine {
                self.gpu.reset_engine(e);
            }
        }
    }

    /// The scheduler's counters for `e`.
    pub(crate) fn stats(&self, e: Engine) -> SchedStats {
        self.queue(e).lock().stats
    }

    /// Jobs queued (not running) on `e`.
    pub(crate) fn queued(&self, e: Engine) -> usize {
        self.queue(e).lock().fifo.len()
    }

    /// Reads the CSB entries the backend wrote since the last call; true if one of them
    /// ends the running context.
    fn context_ended(&self, e: Engine, q: &mut Queue) -> bool {
        let Some(page) = self.hwsp.get(e.index()) else {
            return false;
        };
        let mem = page.mem();
        let Ok(write) = mem.load32(4 * lrc::hwsp::CSB_WRITE) else {
            return false;
        };
        let write = write & 7;
        if write >= lrc::csb::ENTRIES {
            return false;
        }
        let mut ended = false;
        // At most ENTRIES entries are new.
        for _ in 0..lrc::csb::ENTRIES {
            if q.csb_read == write {
                break;
            }
            q.csb_read = if q.csb_read >= lrc::csb::ENTRIES - 1 {
                0
            } else {
                q.csb_read + 1
            };
            let at = 4 * (lrc::hwsp::CSB_BUF0 + 2 * q.csb_read as usize);
            let status = mem.load32(at).unwrap_or(0);
            if status & lrc::csb::ACTIVE_IDLE != 0 {
                ended = true;
            }
        }
        ended
    }
}

impl Events for Sched {
    fn interrupt(&self, e: Engine, bits: u32) {
        if bits & regs::GT_USER_INTERRUPT != 0 {
            let running = self.queue(e).lock().running.clone();
            if let Some(j) = running {
                j.user_interrupt();
            }
        }
        if bits & regs::GT_CONTEXT_SWITCH == 0 {
            return;
        }
        let ended = {
            let mut q = self.queue(e).lock();
            if !self.context_ended(e, &mut q) {
                return;
            }
            let job = q.running.take();
            let err = self.gpu.engine_error(e);
            match (&job, err) {
                (None, _) => q.stats.spurious += 1,
                (Some(_), None) => q.stats.completed += 1,
                (Some(_), Some(_)) => q.stats.failed += 1,
            }
            job.map(|j| (j, err))
        };
        if let Some((job, err)) = ended {
            job.finish(match err {
                None => Outcome::Completed,
                Some(err) => Outcome::Failed(err),
            });
        }
        self.dispatch(e);
    }
}

/// The events handler of a backend nobody listens to any more.
struct NoEvents;

impl Events for NoEvents {
    fn interrupt(&self, _engine: Engine, _bits: u32) {}
}
