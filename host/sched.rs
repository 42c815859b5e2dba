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
/// Jobs per engine and vGPU, queued or running.
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
            // No CSB entry yet: the write pointer says "none".
            page.mem()
                .store32(4 * lrc::hwsp::CSB_WRITE, lrc::csb::PTR_NONE)?;
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
            // The vGPU's share counts its running job too.
            let mine = q.fifo.iter().filter(|j| j.vgpu() == job.vgpu()).count()
                + usize::from(q.running.as_ref().is_some_and(|j| j.vgpu() == job.vgpu()));
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

#[kunit_tests(gvtpv_host_sched)]
mod tests {
    use super::*;
    use crate::{
        abi::{gpu_cmd::GpuCmd, regs::ring},
        gpu::{sim::Sim, PAGE},
    };
    use core::sync::atomic::{AtomicU32, Ordering};
    use kernel::{new_condvar, sync::CondVar, time::msecs_to_jiffies};

    /// A context built by hand in a host window: its ring runs `cmds`.
    #[pin_data]
    struct TestJob {
        engine: Engine,
        vgpu: u32,
        desc: u64,
        _image: HostBuf,
        _ring: HostBuf,
        #[pin]
        done: Mutex<Option<Outcome>>,
        #[pin]
        cv: CondVar,
        users: AtomicU32,
        starts: AtomicU32,
    }

    impl Job for TestJob {
        fn engine(&self) -> Engine {
            self.engine
        }
        fn vgpu(&self) -> u32 {
            self.vgpu
        }
        fn start(&self) -> Result<u64> {
            self.starts.fetch_add(1, Ordering::Relaxed);
            Ok(self.desc)
        }
        fn user_interrupt(&self) {
            self.users.fetch_add(1, Ordering::Relaxed);
        }
        fn finish(&self, outcome: Outcome) {
            *self.done.lock() = Some(outcome);
            self.cv.notify_all();
        }
    }

    impl TestJob {
        fn new(w: &Arc<HostGgtt>, engine: Engine, vgpu: u32, cmds: &[u32]) -> Arc<Self> {
            let image = w.alloc(engine.context_pages() as usize).unwrap();
            let ring = w.alloc(1).unwrap();
            let mut st = KVec::new();
            st.extend_with(lrc::state::DWORDS, 0u32, GFP_KERNEL)
                .unwrap();
            lrc::init_state(&mut st, engine.base()).unwrap();
            st[lrc::state::RING_START] = ring.gm() as u32;
            st[lrc::state::RING_CTL] = ring::CTL_VALID;
            st[lrc::state::RING_TAIL] = (4 * (cmds.len() + cmds.len() % 2)) as u32;
            image.mem().write_dwords(PAGE as usize, &st).unwrap();
            ring.mem().write_dwords(0, cmds).unwrap();
            let desc = lrc::desc::make(image.gm() as u32, vgpu);
            Arc::pin_init(
                pin_init!(Self {
                    engine,
                    vgpu,
                    desc,
                    _image: image,
                    _ring: ring,
                    done <- new_mutex!(None),
                    cv <- new_condvar!(),
                    users: AtomicU32::new(0),
                    starts: AtomicU32::new(0),
                }),
                GFP_KERNEL,
            )
            .unwrap()
        }

        /// Waits (10 s at most) for the job to end.
        fn wait(&self) -> Option<Outcome> {
            let mut g = self.done.lock();
            for _ in 0..1000 {
                if g.is_some() {
                    break;
                }
                let _ = self
                    .cv
                    .wait_interruptible_timeout(&mut g, msecs_to_jiffies(10));
            }
            *g
        }
    }

    fn enc(c: GpuCmd<'_>, out: &mut KVec<u32>) {
        let mut b = [0u32; 8];
        let n = c.encode(&mut b).unwrap();
        out.extend_from_slice(&b[..n], GFP_KERNEL).unwrap();
    }

    /// Stores `value` at GGTT address `gm`, then raises a user interrupt.
    fn store(gm: u64, value: u32) -> KVec<u32> {
        let mut v = KVec::new();
        enc(
            GpuCmd::StoreDataImm {
                addr: gm,
                ggtt: true,
                value: u64::from(value),
                qword: false,
            },
            &mut v,
        );
        v.push(0x02 << 23, GFP_KERNEL).unwrap();
        v
    }

    /// A GGTT batch page that starts itself, and the ring command that enters it.
    fn looping(w: &Arc<HostGgtt>) -> (HostBuf, KVec<u32>) {
        let lp = w.alloc(1).unwrap();
        let mut body = KVec::new();
        enc(
            GpuCmd::BatchBufferStart {
                addr: lp.gm(),
                ppgtt: false,
                second_level: false,
            },
            &mut body,
        );
        lp.mem().write_dwords(0, &body).unwrap();
        (lp, body)
    }

    fn setup() -> (Arc<dyn Gpu>, Arc<Sched>, Arc<HostGgtt>) {
        let gpu: Arc<dyn Gpu> = Sim::new().unwrap();
        let sched = Sched::new(gpu.clone()).unwrap();
        let w = HostGgtt::new(gpu.clone(), 5).unwrap();
        (gpu, sched, w)
    }

    #[test]
    fn jobs_run_in_order_and_complete() {
        let (_gpu, sched, w) = setup();
        let data = w.alloc(1).unwrap();
        let a = TestJob::new(&w, Engine::Bcs, 1, &store(data.gm(), 11));
        let b = TestJob::new(&w, Engine::Bcs, 2, &store(data.gm() + 4, 22));
        sched.enqueue(a.clone()).unwrap();
        sched.enqueue(b.clone()).unwrap();
        assert_eq!(b.wait(), Some(Outcome::Completed));
        assert_eq!(a.wait(), Some(Outcome::Completed));
        assert_eq!(data.mem().load32(0).unwrap(), 11);
        assert_eq!(data.mem().load32(4).unwrap(), 22);
        assert_eq!(a.users.load(Ordering::Relaxed), 1);
        let st = sched.stats(Engine::Bcs);
        assert_eq!((st.dispatched, st.completed, st.failed), (2, 2, 0));
        sched.shutdown().unwrap();
    }

    #[test]
    fn a_hung_or_faulting_job_does_not_stall_another_vgpu() {
        let (_gpu, sched, w) = setup();
        let data = w.alloc(1).unwrap();
        // vGPU 1: a batch that starts itself forever (ring -> GGTT batch -> itself).
        let (_lp, body) = looping(&w);
        let hang = TestJob::new(&w, Engine::Rcs, 1, &body);
        // vGPU 1 again: a store through a GGTT entry that maps nothing.
        let fault = TestJob::new(&w, Engine::Rcs, 1, &store(0xfff0_0000, 1));
        // vGPU 2: good work behind both.
        let good = TestJob::new(&w, Engine::Rcs, 2, &store(data.gm(), 33));
        sched.enqueue(hang.clone()).unwrap();
        sched.enqueue(fault.clone()).unwrap();
        sched.enqueue(good.clone()).unwrap();
        assert_eq!(good.wait(), Some(Outcome::Completed));
        assert_eq!(data.mem().load32(0).unwrap(), 33);
        assert_eq!(hang.wait(), Some(Outcome::Failed(EngineError::Hang)));
        assert!(matches!(
            fault.wait(),
            Some(Outcome::Failed(EngineError::Fault { .. }))
        ));
        let st = sched.stats(Engine::Rcs);
        assert_eq!((st.completed, st.failed), (1, 2));
        sched.shutdown().unwrap();
    }

    #[test]
    fn cancel_takes_out_queued_work_and_resets_running_work() {
        let (_gpu, sched, w) = setup();
        let (lp, body) = looping(&w);
        let running = TestJob::new(&w, Engine::Bcs, 3, &body);
        let queued = TestJob::new(&w, Engine::Bcs, 3, &body);
        let other = TestJob::new(&w, Engine::Bcs, 4, &store(lp.gm() + 64, 5));
        sched.enqueue(running.clone()).unwrap();
        sched.enqueue(queued.clone()).unwrap();
        sched.enqueue(other.clone()).unwrap();
        sched.cancel(3, None);
        assert_eq!(queued.wait(), Some(Outcome::Cancelled));
        assert_eq!(queued.starts.load(Ordering::Relaxed), 0);
        assert_eq!(running.wait(), Some(Outcome::Failed(EngineError::Reset)));
        assert_eq!(other.wait(), Some(Outcome::Completed));
        // The per-vGPU bound.
        for _ in 0..QUEUE_PER_VGPU {
            sched
                .enqueue(TestJob::new(&w, Engine::Rcs, 6, &body))
                .unwrap();
        }
        assert_eq!(
            sched.enqueue(TestJob::new(&w, Engine::Rcs, 6, &body)).err(),
            Some(ENOSPC)
        );
        sched.cancel(6, Some(Engine::Rcs));
        assert_eq!(sched.queued(Engine::Rcs), 0);
        sched.shutdown().unwrap();
    }
}
