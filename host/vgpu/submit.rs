// SPDX-License-Identifier: GPL-2.0

//! The submission path of a vGPU: an ELSP pair becomes workloads on the engines' queues
//! (Documentation/design.rst, path 1), g2v notifications become shadow PPGTT roots
//! (path 3), and a workload's end becomes the CSB entries, the ring head and the
//! interrupts the guest sees.
//!
//! As GVT-g (`execlist.c: submit_context`, `scheduler.c: intel_vgpu_create_workload`,
//! `complete_execlist_workload`): each valid descriptor of a pair is one workload; the
//! first one carries the pair and emulates its schedule-in when it reaches the engine;
//! each one emulates its schedule-out when it ends.
//!
//! **Decision:** a workload refused before the backend (bad image or ring, command
//! parser, PPGTT) still goes through the engine's queue in order and completes visibly:
//! its schedule-in and schedule-out as for a good one, the image's head at its tail (its
//! commands are skipped), `RING_EIR` and the CS master error interrupt. A backend fault
//! or hang ends the same way. GVT-g sends no CSB for a failed workload.
//!
//! Locks: preparation runs under `Core::submit`, then `ppgtt`, then `ggtt`; a workload's
//! start and finish run in the scheduler's threads with no scheduler lock held and take
//! `submit`, `ggtt`, `state` (with `irqs`) and `ppgtt` one at a time, never two at once.
//! So a reset takes the vGPU's work off the queues ([`crate::sched::Sched::cancel`],
//! which may wait for a running workload's end) before it takes any lock.

use super::{execlist::Hwsp, failsafe, Core};
use crate::{
    abi::{lrc, regs as hw},
    cmd_parser::REASONS,
    gpu::{DevPage, Engine, EngineError, PAGE},
    mm::ppgtt::Root,
    sched::{
        workload::{self, ContextError, GuestContext, Prepared, Refused, ShadowReader},
        Job, Outcome,
    },
};
use core::{
    fmt,
    sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed},
};
use kernel::{new_mutex, prelude::*, sync::Arc, sync::Mutex};

/// Refused or failed workloads in a row, with no good completion between them, that
/// send the vGPU to failsafe (a repeat offender).
pub(crate) const OFFENCES_MAX: u32 = 16;

/// Workloads of one vGPU not ended yet, per engine: the ring tail each one leaves, so
/// that the next workload of the same context starts there (the image's head is only
/// written back at the end; GVT-g `intel_vgpu_create_workload`).
#[derive(Default)]
pub(crate) struct Submit {
    inflight: KVec<(Engine, u32, u32)>,
}

impl Submit {
    fn head_of(&self, e: Engine, lrca: u32) -> Option<u32> {
        self.inflight
            .iter()
            .rev()
            .find(|(x, l, _)| *x == e && *l == lrca)
            .map(|(_, _, t)| *t)
    }

    fn ended(&mut self, e: Engine, lrca: u32, tail: u32) {
        if let Some(at) = self
            .inflight
            .iter()
            .position(|(x, l, t)| *x == e && *l == lrca && *t == tail)
        {
            let _ = self.inflight.remove(at);
        }
    }
}

/// Counters of the submission path, for debugfs `gpu`.
#[derive(Default)]
pub(crate) struct WorkStats {
    /// Workloads prepared and queued for the backend.
    pub(crate) submitted: AtomicU64,
    /// Workloads the backend completed.
    pub(crate) completed: AtomicU64,
    /// Workloads the backend stopped: fault.
    pub(crate) faulted: AtomicU64,
    /// Workloads the backend stopped: command budget exhausted (hang).
    pub(crate) hung: AtomicU64,
    /// Workloads refused before the backend (all reasons).
    pub(crate) refused: AtomicU64,
    /// Refused: the context image.
    pub(crate) refused_image: AtomicU64,
    /// Refused: the ring (outside the slices, head/tail, unmapped, too long).
    pub(crate) refused_ring: AtomicU64,
    /// Refused: the PPGTT root could not be shadowed.
    pub(crate) refused_ppgtt: AtomicU64,
    /// Refused: no room in the host window or the queues.
    pub(crate) refused_space: AtomicU64,
    /// Refused by the command parser, by reason.
    pub(crate) refused_parser: [AtomicU64; REASONS],
    /// Workloads taken off the queues by a reset or close.
    pub(crate) cancelled: AtomicU64,
    /// User interrupts relayed.
    pub(crate) user_interrupts: AtomicU64,
    /// g2v PPGTT create / destroy notifications, and unsupported ones.
    pub(crate) g2v_create: AtomicU64,
    /// g2v destroy notifications.
    pub(crate) g2v_destroy: AtomicU64,
    /// g2v notifications not supported (3-level roots, unknown).
    pub(crate) g2v_other: AtomicU64,
    /// Refused or failed workloads in a row.
    pub(crate) offences: AtomicU32,
}

/// The guest's status page of an engine, as the CSB emulation writes it.
struct GuestHwsp(Arc<dyn DevPage>);

impl Hwsp for GuestHwsp {
    fn store32(&self, dword: usize, v: u32) -> Result {
        self.0.store32(4 * dword, v)
    }
    fn store64(&self, dword: usize, v: u64) -> Result {
        self.0.store64(4 * dword, v)
    }
}

/// Why a workload is refused, for the guest's `RING_EIR`.
fn eir_of(r: &Refused) -> u32 {
    match r {
        Refused::Context(ContextError::Ppgtt) => hw::ring::EIR_PAGE_TABLE,
        Refused::Context(_) => hw::ring::EIR_INSTRUCTION,
        Refused::Parser(p) if p.reason == crate::cmd_parser::Reason::Address => {
            hw::ring::EIR_PAGE_TABLE
        }
        Refused::Parser(_) => hw::ring::EIR_INSTRUCTION,
    }
}

/// One guest context on the engines' queues.
#[pin_data]
pub(crate) struct Workload {
    core: Arc<Core>,
    engine: Engine,
    /// The guest's descriptor.
    desc: u64,
    /// The ELSP pair, on the pair's first workload: its start emulates the schedule-in.
    pair: Option<[Option<u64>; 2]>,
    /// Ready for the backend, or why not.
    #[pin]
    prepared: Mutex<Option<Prepared>>,
    /// The guest context, also for a workload refused after it was read.
    tail: Option<u32>,
    refused: Option<Refused>,
    /// Its PPGTT root, given back when it ends.
    #[pin]
    root: Mutex<Option<Root>>,
    started: AtomicBool,
}

impl Core {
    /// The guest's status page of `e`, if `RING_HWS_PGA` names a page the GGTT maps.
    fn guest_hwsp(&self, e: Engine) -> Option<GuestHwsp> {
        let gm = u64::from(self.state.lock().mmio.regs().hws_pga(e)) & !(PAGE - 1);
        let g = self.ggtt.lock();
        if gm == 0 || !g.owns(gm, PAGE) {
            return None;
        }
        let page: Arc<dyn DevPage> = g.page((gm / PAGE) as u32)?;
        Some(GuestHwsp(page))
    }

    /// An ELSP pair the register model accepted: one workload per valid descriptor,
    /// queued in order. Called in the trapping thread with no lock held.
    pub(crate) fn submit_pair(self: &Arc<Self>, e: Engine, pair: [Option<u64>; 2]) {
        let mut first = true;
        for desc in pair.into_iter().flatten() {
            let w = self.make_workload(e, desc, first.then_some(pair));
            first = false;
            match w {
                Ok(w) => {
                    if let Err(err) = self.sched.enqueue(w.clone()) {
                        // The queue is full: the workload ends here, visibly.
                        pr_debug!("gvtpv: vGPU {}: queue full ({:?})\n", self.id(), err);
                        self.work.refused_space.fetch_add(1, Relaxed);
                        w.refuse_now();
                    }
                }
                Err(err) => {
                    pr_debug!("gvtpv: vGPU {}: workload not made: {:?}\n", self.id(), err);
                    self.report_error(e, hw::ring::EIR_INSTRUCTION);
                }
            }
        }
        self.state.lock().mmio.regs_mut().taken(e);
    }

    /// Prepares one workload (path 1, steps 3 and 4). A refusal is a workload too.
    fn make_workload(
        self: &Arc<Self>,
        e: Engine,
        desc: u64,
        pair: Option<[Option<u64>; 2]>,
    ) -> Result<Arc<Workload>> {
        let mut sub = self.submit.lock();
        let lrca = lrc::desc::lrca(desc);
        let (prepared, root, refused, tail) = {
            let mut pp = self.ppgtt.lock();
            let ggtt = self.ggtt.lock();
            let head = sub.head_of(e, lrca);
            match GuestContext::read(&ggtt, e, desc, head) {
                Err(err) => (None, None, Some(Refused::Context(err)), None),
                Ok(ctx) => {
                    let tail = ctx.tail;
                    let root = pp.workload_root(ctx.pml4).and_then(|r| {
                        pp.prepare(&r)?;
                        Ok(r)
                    });
                    match root {
                        // The PPGTT could not be shadowed: a page table error.
                        Err(_) => (
                            None,
                            None,
                            Some(Refused::Context(ContextError::Ppgtt)),
                            Some(tail),
                        ),
                        Ok(root) => {
                            let reader = ShadowReader {
                                ppgtt: &pp,
                                root: &root,
                            };
                            let r = workload::prepare(
                                &ggtt,
                                &self.window,
                                self.slice(),
                                ctx,
                                Some(&reader),
                                root.dev_addr(),
                            );
                            match r {
                                Ok(p) => (Some(p), Some(root), None, Some(tail)),
                                Err(r) => {
                                    pp.release(root);
                                    (None, None, Some(r), Some(tail))
                                }
                            }
                        }
                    }
                }
            }
        };
        if let Some(t) = tail {
            sub.inflight.push((e, lrca, t), GFP_KERNEL)?;
        }
        drop(sub);
        match &refused {
            None => {
                self.work.submitted.fetch_add(1, Relaxed);
            }
            Some(r) => self.count_refusal(r),
        }
        Arc::pin_init(
            pin_init!(Workload {
                core: self.clone(),
                engine: e,
                desc,
                pair,
                prepared <- new_mutex!(prepared, "Workload::prepared"),
                tail,
                refused,
                root <- new_mutex!(root, "Workload::root"),
                started: AtomicBool::new(false),
            }),
            GFP_KERNEL,
        )
    }

    fn count_refusal(&self, r: &Refused) {
        let w = &self.work;
        w.refused.fetch_add(1, Relaxed);
        match r {
            Refused::Context(c) => {
                pr_debug!(
                    "gvtpv: vGPU {}: workload refused: {}\n",
                    self.id(),
                    c.name()
                )
            }
            Refused::Parser(p) => pr_debug!(
                "gvtpv: vGPU {}: workload refused by the parser: {} at dword {} (header {:#x})\n",
                self.id(),
                p.name().to_str().unwrap_or("?"),
                p.offset,
                p.header
            ),
        }
        match r {
            Refused::Context(ContextError::Image) => w.refused_image.fetch_add(1, Relaxed),
            Refused::Context(ContextError::Ppgtt) => w.refused_ppgtt.fetch_add(1, Relaxed),
            Refused::Context(ContextError::NoSpace) => w.refused_space.fetch_add(1, Relaxed),
            Refused::Context(_) => w.refused_ring.fetch_add(1, Relaxed),
            Refused::Parser(p) => w
                .refused_parser
                .get(p.reason.index())
                .map_or(0, |c| c.fetch_add(1, Relaxed)),
        };
    }

    /// A refused or failed workload: one more offence; the sixteenth in a row sends the
    /// vGPU to failsafe. A good completion forgives them all.
    fn offence(&self) {
        let n = self.work.offences.fetch_add(1, Relaxed) + 1;
        if n == OFFENCES_MAX {
            let mut st = self.state.lock();
            st.mmio
                .regs_mut()
                .force_failsafe(failsafe::Reason::RepeatOffender, &self.counters);
            drop(st);
            pr_err!(
                "gvtpv: vGPU {}: {} refused or failed workloads in a row: failsafe until \
                 the next reset\n",
                self.id(),
                n
            );
            // In failsafe nothing of the vGPU runs: its queued work goes, with its
            // shadows (the running one is the caller's, which is ending).
            self.stop_work(None, true);
        }
    }

    /// A g2v notification (PVINFO `g2v_notify`, with `pdp[0]` as written): PPGTT roots
    /// made and dropped (GVT-g `handle_g2v_notification`).
    pub(crate) fn g2v(&self, notify: u32, pdp0: u64) {
        let _sub = self.submit.lock();
        let mut pp = self.ppgtt.lock();
        match notify {
            crate::abi::pvinfo::g2v::PPGTT_L4_PAGE_TABLE_CREATE => {
                self.work.g2v_create.fetch_add(1, Relaxed);
                match pp.get_root(pdp0) {
                    // The guest's reference stays in the PPGTT; the handle goes.
                    Ok(root) => pp.release(root),
                    Err(e) => pr_debug!(
                        "gvtpv: vGPU {}: PPGTT root {:#x} not shadowed: {:?}\n",
                        self.id(),
                        pdp0,
                        e
                    ),
                }
            }
            crate::abi::pvinfo::g2v::PPGTT_L4_PAGE_TABLE_DESTROY => {
                self.work.g2v_destroy.fetch_add(1, Relaxed);
                pp.put_root(pdp0);
            }
            _ => {
                self.work.g2v_other.fetch_add(1, Relaxed);
            }
        }
    }

    /// Takes the vGPU's work off the engines (all, or `engine`) and frees what it
    /// shadowed; with `all`, the shadow PPGTT goes too. No lock of the vGPU is held by
    /// the caller.
    pub(crate) fn stop_work(&self, engine: Option<Engine>, all: bool) {
        self.sched.cancel(self.id(), engine);
        let mut sub = self.submit.lock();
        sub.inflight
            .retain(|(e, _, _)| engine.is_some_and(|x| x != *e));
        if all {
            self.ppgtt.lock().reset();
        }
    }
}

impl Workload {
    /// Ends a workload that never reached the queue.
    fn refuse_now(&self) {
        if self.pair.is_some() {
            self.start_emulation();
        }
        self.end(Outcome::Failed(EngineError::Reset));
    }

    /// The pair's schedule-in, on its first workload.
    fn start_emulation(&self) {
        self.started.store(true, Relaxed);
        if let Some(pair) = self.pair {
            let hwsp = self.core.guest_hwsp(self.engine);
            let _ = self
                .core
                .schedule_in(self.engine, pair, hwsp.as_ref().map(|h| h as &dyn Hwsp));
        }
    }

    /// The guest sees the end: the image's head, an error, the schedule-out.
    fn end(&self, outcome: Outcome) {
        let c = &self.core;
        let p = self.prepared.lock().take();
        let eir = match (&self.refused, outcome) {
            (Some(r), _) => Some(eir_of(r)),
            (None, Outcome::Completed) => None,
            (None, Outcome::Failed(EngineError::Hang)) => {
                c.work.hung.fetch_add(1, Relaxed);
                Some(hw::ring::EIR_HANG)
            }
            (None, Outcome::Failed(EngineError::Fault { .. })) => {
                c.work.faulted.fetch_add(1, Relaxed);
                Some(hw::ring::EIR_PAGE_TABLE)
            }
            (None, Outcome::Failed(_)) => {
                c.work.faulted.fetch_add(1, Relaxed);
                Some(hw::ring::EIR_INSTRUCTION)
            }
            (None, Outcome::Cancelled) => None,
        };
        // The image's head: at the tail, whatever happened (commands of a refused or
        // stopped workload are skipped, as GVT-g writes the tail back).
        if let Some(p) = &p {
            let _ = p.guest.write_back();
        } else if let Some(t) = self.tail {
            let _ = self.write_head(t);
        }
        if let Some(t) = self.tail {
            c.submit
                .lock()
                .ended(self.engine, lrc::desc::lrca(self.desc), t);
        }
        match eir {
            None => {
                c.work.completed.fetch_add(1, Relaxed);
                c.work.offences.store(0, Relaxed);
            }
            Some(eir) => {
                c.report_error(self.engine, eir);
                c.offence();
            }
        }
        let hwsp = c.guest_hwsp(self.engine);
        let _ = c.schedule_out(
            self.engine,
            self.desc,
            hwsp.as_ref().map(|h| h as &dyn Hwsp),
        );
        drop(p);
        if let Some(root) = self.root.lock().take() {
            c.ppgtt.lock().release(root);
        }
    }

    /// Writes the guest image's ring head for a workload that was not prepared.
    fn write_head(&self, tail: u32) -> Result {
        let lrca = u64::from(lrc::desc::lrca(self.desc));
        let index = ((lrca / PAGE) + u64::from(lrc::STATE_PAGE)) as u32;
        let page: Arc<dyn DevPage> = self.core.ggtt.lock().page(index).ok_or(EFAULT)?;
        page.store32(4 * lrc::state::RING_HEAD, tail)
    }
}

impl Job for Workload {
    fn engine(&self) -> Engine {
        self.engine
    }

    fn vgpu(&self) -> u32 {
        self.core.id()
    }

    fn start(&self) -> Result<u64> {
        self.start_emulation();
        if self.refused.is_some() {
            // Not for the backend: it ends at once (finish with Cancelled).
            return Err(EINVAL);
        }
        self.prepared
            .lock()
            .as_ref()
            .map(|p| p.shadow.desc)
            .ok_or(EINVAL)
    }

    fn user_interrupt(&self) {
        self.core.work.user_interrupts.fetch_add(1, Relaxed);
        self.core.raise_event(self.engine, hw::GT_USER_INTERRUPT);
    }

    fn finish(&self, outcome: Outcome) {
        if outcome == Outcome::Cancelled && !self.started.load(Relaxed) {
            // Taken off the queue by a reset or close: nothing to show the guest.
            self.core.work.cancelled.fetch_add(1, Relaxed);
            let _ = self.prepared.lock().take();
            if let Some(root) = self.root.lock().take() {
                self.core.ppgtt.lock().release(root);
            }
            return;
        }
        self.end(outcome);
    }
}

/// The debugfs `gpu` file: the vGPU's GPU rooms.
pub(crate) fn show(c: &Core, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let w = &c.work;
    let n = |a: &AtomicU64| a.load(Relaxed);
    writeln!(f, "backend {}", c.gpu.name().to_str().unwrap_or("?"))?;
    writeln!(f, "workloads_submitted {}", n(&w.submitted))?;
    writeln!(f, "workloads_completed {}", n(&w.completed))?;
    writeln!(f, "workloads_faulted {}", n(&w.faulted))?;
    writeln!(f, "workloads_hung {}", n(&w.hung))?;
    writeln!(f, "workloads_refused {}", n(&w.refused))?;
    writeln!(f, "refused_image {}", n(&w.refused_image))?;
    writeln!(f, "refused_ring {}", n(&w.refused_ring))?;
    writeln!(f, "refused_ppgtt {}", n(&w.refused_ppgtt))?;
    writeln!(f, "refused_space {}", n(&w.refused_space))?;
    for r in crate::cmd_parser::Reason::ALL {
        let v = w.refused_parser.get(r.index()).map_or(0, n);
        writeln!(
            f,
            "refused_parser_{} {}",
            r.name().to_str().unwrap_or("?"),
            v
        )?;
    }
    writeln!(f, "workloads_cancelled {}", n(&w.cancelled))?;
    writeln!(f, "user_interrupts {}", n(&w.user_interrupts))?;
    writeln!(f, "g2v_create {}", n(&w.g2v_create))?;
    writeln!(f, "g2v_destroy {}", n(&w.g2v_destroy))?;
    writeln!(f, "g2v_other {}", n(&w.g2v_other))?;
    writeln!(f, "offences {}", w.offences.load(Relaxed))?;
    let (g, frames) = {
        let ggtt = c.ggtt.lock();
        (ggtt.stats(), ggtt.frames())
    };
    writeln!(f, "ggtt_writes {}", g.writes)?;
    writeln!(f, "ggtt_dropped {}", g.dropped)?;
    writeln!(f, "ggtt_halves {}", g.halves)?;
    writeln!(f, "ggtt_mapped {}", g.mapped)?;
    writeln!(f, "ggtt_frames {}", frames)?;
    writeln!(f, "ggtt_bad_addr {}", g.bad_addr)?;
    writeln!(f, "ggtt_pin_failed {}", g.pin_failed)?;
    writeln!(f, "ggtt_bad_access {}", g.bad_access)?;
    writeln!(f, "aperture_served {}", g.aperture)?;
    writeln!(f, "aperture_unmapped {}", g.aperture_unmapped)?;
    let pp = c.ppgtt.lock();
    let p = pp.stats();
    writeln!(f, "ppgtt_sync {}", pp.mode().name())?;
    drop(pp);
    writeln!(f, "ppgtt_roots {}", p.roots)?;
    writeln!(f, "ppgtt_tables {}", p.tables)?;
    writeln!(f, "ppgtt_pins {}", p.pins)?;
    writeln!(f, "ppgtt_tracked {}", p.tracked)?;
    writeln!(f, "ppgtt_wp_faults {}", p.wp_faults)?;
    writeln!(f, "ppgtt_revalidations {}", p.revalidations)?;
    writeln!(f, "ppgtt_tables_changed {}", p.tables_changed)?;
    writeln!(f, "ppgtt_entries_changed {}", p.entries_changed)?;
    writeln!(f, "ppgtt_invalid {}", p.refused.invalid())?;
    let m = c.mem.stats();
    writeln!(f, "pins_live {}", m.live)?;
    writeln!(f, "window_free_pages {}", c.window.free_pages())?;
    let g = c.gpu.stats();
    writeln!(f, "sim_commands {}", g.commands)?;
    writeln!(f, "sim_not_modelled {}", g.not_modelled)?;
    writeln!(f, "sim_blit_bytes {}", g.blit_bytes)?;
    for e in Engine::ALL {
        let s = c.sched.stats(e);
        writeln!(
            f,
            "{} queued {} dispatched {} completed {} failed {} cancelled {}",
            e.name(),
            c.sched.queued(e),
            s.dispatched,
            s.completed,
            s.failed,
            s.cancelled
        )?;
    }
    Ok(())
}
