// SPDX-License-Identifier: GPL-2.0

//! One engine: bring-up as i915's `enable_execlists` does it, and the execlist
//! [`Submitter`].
//!
//! Submission (`execlists_dequeue`, `execlists_submit_ports`): a request is the caller's
//! commands, then the breadcrumb (`MI_STORE_DATA_IMM` of the sequence number into the
//! context's slot of the engine's seqno page through the GGTT, `MI_USER_INTERRUPT`),
//! written into the context's ring. Contexts with new work wait in a FIFO; when both
//! ports are idle, up to two of them get their image's `RING_TAIL` updated and go into
//! one ELSP write, port 1 first, upper dword before lower. No lite restore: a context in
//! flight gets its new work in its next submission.
//!
//! Completion: on the context-switch interrupt (and while waiting, as a fallback) the CSB
//! is read from the status page ([`csb`]). A completed element's context has consumed its
//! ring up to the submitted tail; if its breadcrumb did not reach the last sequence number
//! of that submission, the host refused it (it completes refused work with a normal CSB
//! sequence and `RING_EIR`), and waiters on those numbers get [`WaitError::Refused`].
//!
//! Errors: the CS master error interrupt makes the handler read `RING_EIR`, clear it and
//! remember the bits ([`Engine::errors`]).

use super::{
    context::{Context, RING_SIZE},
    csb::{self, Event, Ports},
    ggtt::{Ggtt, GgttBuf},
    mmio::{Bar0, Mmio},
    regs::*,
    ring, seqno_passed, Batch, EngineId, Seqno, Submitter, WaitError,
};
use crate::abi::{
    gpu_cmd::GpuCmd,
    lrc::{self, hwsp},
    regs as abi,
};
use kernel::{
    device::{Bound, Device},
    io::{register::Array, Io},
    new_condvar, new_mutex,
    prelude::*,
    sync::{
        atomic::{Atomic, Relaxed},
        Arc, CondVar, CondVarTimeoutResult, Mutex,
    },
    time::{msecs_to_jiffies, Delta, Instant, Monotonic},
};

/// `GT_WAIT_SEMAPHORE_INTERRUPT` within an engine's half (not in shared-abi yet).
const GT_WAIT_SEMAPHORE: u32 = 1 << 11;

/// The interrupts each engine unmasks (`gen8_gt_irq_postinstall`, `irq_keep_mask` and
/// `irq_enable_mask`), within its half.
pub(crate) const ENGINE_IRQS: u32 =
    abi::GT_USER_INTERRUPT | abi::GT_CONTEXT_SWITCH | abi::GT_CS_MASTER_ERROR | GT_WAIT_SEMAPHORE;

/// The `RING_EIR` bits this driver unmasks. i915 unmasks only the instruction error; the
/// gvtpv host also reports page-table faults and hangs there.
const EIR_REPORTED: u32 =
    abi::ring::EIR_INSTRUCTION | abi::ring::EIR_PAGE_TABLE | abi::ring::EIR_HANG;

/// Most contexts per engine (one breadcrumb dword each in the seqno page; id 0 unused).
const MAX_CONTEXTS: u32 = 1024;

/// How long a waiter sleeps before it looks at the CSB itself.
const POLL_MS: u32 = 10;

/// One element written to the ELSP.
struct Port {
    ctx: Arc<Context>,
    first: Seqno,
    last: Seqno,
    tail: u32,
}

/// Scheduling state of an engine.
struct Sched {
    csb: csb::Reader,
    ports: Ports<Port>,
    queue: KVec<Arc<Context>>,
    /// Context ids in use (bit per id).
    ids: KVec<u64>,
}

/// Counters, for the selftests' diagnostics.
pub(crate) struct Stats {
    /// User interrupts seen.
    pub(crate) user_irqs: Atomic<u32>,
    /// Context-switch interrupts seen.
    pub(crate) ctx_switch_irqs: Atomic<u32>,
    /// CS master error interrupts with a non-zero `RING_EIR`.
    pub(crate) errors: Atomic<u32>,
    /// Every `RING_EIR` bit seen, or-ed.
    pub(crate) eir: Atomic<u32>,
    /// ELSP writes, and those with both ports used.
    pub(crate) elsp_writes: Atomic<u32>,
    /// ELSP writes with two contexts.
    pub(crate) elsp_pairs: Atomic<u32>,
    /// CSB entries consumed.
    pub(crate) csb_entries: Atomic<u32>,
    /// CSB events that matched no port, a bad write pointer, or another context id.
    pub(crate) csb_anomalies: Atomic<u32>,
    /// Submissions the device completed without running.
    pub(crate) refused: Atomic<u32>,
}

/// Ors `bits` into `a`.
pub(crate) fn or_bits(a: &Atomic<u32>, bits: u32) {
    let mut old = a.load(Relaxed);
    loop {
        match a.cmpxchg(old, old | bits, Relaxed) {
            Ok(_) => return,
            Err(now) => old = now,
        }
    }
}

fn inc(a: &Atomic<u32>) {
    a.add(1u32, Relaxed);
}

/// An engine of the vGPU.
#[pin_data]
pub(crate) struct Engine {
    id: EngineId,
    mmio: Arc<Mmio>,
    ggtt: Arc<Ggtt>,
    /// The status page (`RING_HWS_PGA`), where the host writes the CSB.
    hwsp: GgttBuf,
    /// One breadcrumb dword per context id.
    seqnos: GgttBuf,
    #[pin]
    sched: Mutex<Sched>,
    /// Waiters for breadcrumbs and completions; notified under `sched`.
    #[pin]
    wake: CondVar,
    pub(crate) stats: Stats,
}

impl Engine {
    /// Allocates the engine's status and seqno pages.
    pub(crate) fn new(
        dev: &Device<Bound>,
        id: EngineId,
        mmio: Arc<Mmio>,
        ggtt: Arc<Ggtt>,
    ) -> Result<Arc<Self>> {
        let hwsp = ggtt.alloc_bound(dev, 1)?;
        let seqnos = ggtt.alloc_bound(dev, 1)?;
        let mut ids = KVec::from_elem(0u64, MAX_CONTEXTS as usize / 64, GFP_KERNEL)?;
        // Id 0 is never handed out: GVT-g reports it for "no context".
        ids[0] = 1;
        let z = || Atomic::new(0u32);
        Arc::pin_init(
            pin_init!(Self {
                id,
                mmio,
                ggtt,
                hwsp,
                seqnos,
                sched <- new_mutex!(
                    Sched {
                        csb: csb::Reader::new(),
                        ports: Ports::new(),
                        queue: KVec::new(),
                        ids,
                    },
                    "gvtpv_guest::Engine::sched"
                ),
                wake <- new_condvar!("gvtpv_guest::Engine::wake"),
                stats: Stats {
                    user_irqs: z(),
                    ctx_switch_irqs: z(),
                    errors: z(),
                    eir: z(),
                    elsp_writes: z(),
                    elsp_pairs: z(),
                    csb_entries: z(),
                    csb_anomalies: z(),
                    refused: z(),
                },
            }),
            GFP_KERNEL,
        )
    }

    /// Which engine this is.
    pub(crate) fn id(&self) -> EngineId {
        self.id
    }

    fn idx(&self) -> usize {
        self.id.index()
    }

    /// Programs the engine for execlists (`enable_execlists`, `reset_csb_pointers`,
    /// `enable_error_interrupt`, `gen8_logical_ring_enable_irq`). Forcewake must be held.
    pub(crate) fn bring_up(&self) -> Result {
        let i = self.idx();
        // Reset pattern in the status page: the CSB entries all ones, the write pointer
        // at the last entry, so the first entry read is 0.
        let mem = self.hwsp.mem();
        mem.fill(
            hwsp::CSB_BUF0..hwsp::CSB_BUF0 + 2 * lrc::csb::ENTRIES as usize,
            u32::MAX,
        )?;
        mem.write(hwsp::CSB_WRITE, u32::from(csb::RESET_HEAD))?;
        self.sched.lock().csb = csb::Reader::new();
        let csb_reset = RING_CONTEXT_STATUS_PTR::zeroed()
            .with_const_mask::<0xffff>()
            .with_const_read_ptr::<{ csb::RESET_HEAD as u32 }>()
            .with_const_write_ptr::<{ csb::RESET_HEAD as u32 }>();
        let hws = self.hwsp.addr();
        let irqs = abi::gt_bits(self.id.irq_shift(), ENGINE_IRQS);
        self.mmio.with(|b: &Bar0| {
            b.try_write(
                RING_HWSTAM::try_at(i).ok_or(EINVAL)?,
                RING_HWSTAM::from(!0u32),
            )?;
            b.try_write(
                RING_MODE::try_at(i).ok_or(EINVAL)?,
                RING_MODE::zeroed()
                    .with_run_list_enable_mask(true)
                    .with_run_list_enable(true),
            )?;
            b.try_write(
                RING_MI_MODE::try_at(i).ok_or(EINVAL)?,
                RING_MI_MODE::zeroed().with_stop_ring_mask(true),
            )?;
            let pga = RING_HWS_PGA::try_at(i).ok_or(EINVAL)?;
            b.try_write(pga, RING_HWS_PGA::from(hws))?;
            let _posting: RING_HWS_PGA = b.try_read(RING_HWS_PGA::try_at(i).ok_or(EINVAL)?)?;
            let ptr = RING_CONTEXT_STATUS_PTR::try_at(i).ok_or(EINVAL)?;
            b.try_write(ptr, csb_reset)?;
            // Errors: mask all, clear all, then unmask what this driver handles.
            b.try_write(RING_EMR::try_at(i).ok_or(EINVAL)?, RING_EMR::from(!0u32))?;
            b.try_write(RING_EIR::try_at(i).ok_or(EINVAL)?, RING_EIR::from(!0u32))?;
            b.try_write(
                RING_EMR::try_at(i).ok_or(EINVAL)?,
                RING_EMR::from(!EIR_REPORTED),
            )?;
            // i915 writes the engine's shifted bits into RING_IMR on GEN8/9.
            b.try_write(RING_IMR::try_at(i).ok_or(EINVAL)?, RING_IMR::from(!irqs))?;
            b.try_write(RING_CONTEXT_STATUS_PTR::try_at(i).ok_or(EINVAL)?, csb_reset)
        })
    }

    /// Stops the ring (`RING_MI_MODE` `STOP_RING`) and waits a little for it to idle;
    /// `false` if it did not.
    pub(crate) fn stop(&self) -> bool {
        let i = self.idx();
        let stop = self.mmio.with(|b| {
            b.try_write(
                RING_MI_MODE::try_at(i).ok_or(EINVAL)?,
                RING_MI_MODE::zeroed()
                    .with_stop_ring_mask(true)
                    .with_stop_ring(true),
            )
        });
        stop.is_ok()
            && self
                .mmio
                .poll(
                    |b| Ok(b.try_read(RING_MI_MODE::try_at(i).ok_or(EINVAL)?)?.idle()),
                    Delta::from_millis(20),
                )
                .unwrap_or(false)
    }

    /// Forgets every queued and in-flight context (teardown, after [`Engine::stop`]).
    pub(crate) fn forget_all(&self) {
        let mut s = self.sched.lock();
        s.ports.clear(drop);
        s.queue.clear();
    }

    /// Creates a context on this engine over `ppgtt`.
    pub(crate) fn create_context(
        &self,
        dev: &Device<Bound>,
        ppgtt: Arc<super::ppgtt::Ppgtt>,
    ) -> Result<Arc<Context>> {
        let id = {
            let mut s = self.sched.lock();
            let mut found = None;
            for (w, word) in s.ids.iter_mut().enumerate() {
                let free = !*word;
                if free != 0 {
                    let bit = free.trailing_zeros();
                    *word |= 1 << bit;
                    found = Some(w as u32 * 64 + bit);
                    break;
                }
            }
            found.ok_or(ENOSPC)?
        };
        let ctx = Context::new(dev, &self.ggtt, self.id, id, ppgtt);
        if ctx.is_err() {
            self.release_id(id);
        }
        let ctx = ctx?;
        self.seqnos.mem().write(id as usize, 0)?;
        Ok(ctx)
    }

    /// Gives a context id back; the context must be idle.
    pub(crate) fn release_context(&self, ctx: &Context) {
        self.release_id(ctx.id());
    }

    fn release_id(&self, id: u32) {
        let mut s = self.sched.lock();
        if let Some(w) = s.ids.get_mut((id / 64) as usize) {
            *w &= !(1u64 << (id % 64));
        }
    }

    /// The breadcrumb of context `ctx`.
    fn breadcrumb(&self, ctx: &Context) -> Result<Seqno> {
        self.seqnos.mem().read(ctx.id() as usize)
    }

    /// Writes `cmds` into `ctx`'s ring followed by a breadcrumb and queues the context;
    /// waits up to `timeout` for ring space. Commands run privileged, from the ring.
    pub(crate) fn submit_ring(
        &self,
        ctx: &Arc<Context>,
        cmds: &[u32],
        timeout: Delta,
    ) -> Result<Seqno> {
        self.submit_many(&[(ctx, cmds)], timeout).map(|s| s[0])
    }

    /// As [`Engine::submit_ring`] for several contexts at once: all are queued before the
    /// ports are filled, so two contexts go into one ELSP write.
    pub(crate) fn submit_many(
        &self,
        work: &[(&Arc<Context>, &[u32])],
        timeout: Delta,
    ) -> Result<[Seqno; 2]> {
        if work.is_empty() || work.len() > 2 {
            return Err(EINVAL);
        }
        let mut seqnos = [0; 2];
        let start: Instant<Monotonic> = Instant::now();
        let mut s = self.sched.lock();
        for (k, (ctx, cmds)) in work.iter().enumerate() {
            if ctx.engine() != self.id {
                return Err(EINVAL);
            }
            // Bounded by the clock: each round either places the request or sleeps.
            loop {
                match self.emit(&mut s, ctx, cmds)? {
                    Some(seqno) => {
                        seqnos[k] = seqno;
                        break;
                    }
                    None if start.elapsed() > timeout => return Err(ETIMEDOUT),
                    None => {
                        // Ring full: let completions free it.
                        let _ = self
                            .wake
                            .wait_interruptible_timeout(&mut s, msecs_to_jiffies(POLL_MS));
                        drop(s);
                        self.process_csb();
                        s = self.sched.lock();
                    }
                }
            }
        }
        self.dequeue(&mut s)?;
        Ok(seqnos)
    }

    /// Emits one request; `None` if the ring has no room yet.
    fn emit(&self, s: &mut Sched, ctx: &Arc<Context>, cmds: &[u32]) -> Result<Option<Seqno>> {
        let mut st = ctx.state.lock();
        let seqno = st.emitted.wrapping_add(1);
        let mut crumb = [0u32; 6];
        let addr = u64::from(self.seqnos.addr()) + 4 * u64::from(ctx.id());
        let n = GpuCmd::StoreDataImm {
            addr,
            ggtt: true,
            value: u64::from(seqno),
            qword: false,
        }
        .encode(&mut crumb)
        .map_err(|_| EINVAL)?;
        let n = n + GpuCmd::UserInterrupt
            .encode(&mut crumb[n..])
            .map_err(|_| EINVAL)?;
        let dwords = cmds.len() + n;
        let padded = dwords.next_multiple_of(2);
        let bytes = u32::try_from(padded * 4).map_err(|_| EINVAL)?;
        if bytes > RING_SIZE / 2 {
            return Err(EINVAL);
        }
        let Some(p) = ring::place(st.head, st.tail, RING_SIZE, bytes) else {
            return Ok(None);
        };
        let mem = ctx.ring().mem();
        let noop = 0u32;
        mem.fill(
            (st.tail / 4) as usize..((st.tail + p.pad) / 4) as usize,
            noop,
        )?;
        let at = (p.at / 4) as usize;
        mem.write_slice(at, cmds)?;
        mem.write_slice(at + cmds.len(), &crumb[..n])?;
        mem.fill(at + dwords..at + padded, noop)?;
        st.tail = p.tail;
        st.emitted = seqno;
        if !st.queued && !st.inflight {
            st.queued = true;
            drop(st);
            s.queue.push(ctx.clone(), GFP_KERNEL)?;
        }
        Ok(Some(seqno))
    }

    /// Fills idle ports from the queue and writes the ELSP.
    fn dequeue(&self, s: &mut Sched) -> Result {
        if !s.ports.is_idle() || s.queue.is_empty() {
            return Ok(());
        }
        let first = self.prepare(s.queue.remove(0)?)?;
        let second = match s.queue.is_empty() {
            true => None,
            false => Some(self.prepare(s.queue.remove(0)?)?),
        };
        let d0 = first.ctx.descriptor();
        let d1 = second.as_ref().map_or(0, |p| p.ctx.descriptor());
        if s.ports.submit(first, second).is_err() {
            return Err(EBUSY);
        }
        inc(&self.stats.elsp_writes);
        if d1 != 0 {
            inc(&self.stats.elsp_pairs);
        }
        self.write_elsp(d0, d1)
    }

    /// Takes a queued context into a port: its image gets the new tail.
    fn prepare(&self, ctx: Arc<Context>) -> Result<Port> {
        let mut st = ctx.state.lock();
        ctx.update_image(st.tail, !st.loaded)?;
        st.queued = false;
        st.inflight = true;
        st.loaded = true;
        let port = Port {
            ctx: ctx.clone(),
            first: st.submitted.wrapping_add(1),
            last: st.emitted,
            tail: st.tail,
        };
        st.submitted = st.emitted;
        drop(st);
        Ok(port)
    }

    /// The ELSP write (`execlists_submit_ports`, `write_desc`): port 1 then port 0, each
    /// upper dword before lower; an empty port is 0.
    fn write_elsp(&self, d0: u64, d1: u64) -> Result {
        let i = self.idx();
        self.mmio.with(|b| {
            let elsp = || RING_ELSP::try_at(i).ok_or(EINVAL);
            for d in [d1, d0] {
                b.try_write(elsp()?, RING_ELSP::from((d >> 32) as u32))?;
                b.try_write(elsp()?, RING_ELSP::from(d as u32))?;
            }
            Ok(())
        })
    }

    /// Writes one raw descriptor to the ELSP without tracking it (hostile selftest: the
    /// host must refuse it). The engine must be idle.
    pub(crate) fn submit_raw_descriptor(&self, desc: u64) -> Result {
        let s = self.sched.lock();
        if !s.ports.is_idle() || !s.queue.is_empty() {
            return Err(EBUSY);
        }
        self.write_elsp(desc, 0)
    }

    /// Reads the CSB and retires what completed (`process_csb`), then refills the ports.
    pub(crate) fn process_csb(&self) {
        let mut s = self.sched.lock();
        let mem = self.hwsp.mem();
        let Ok(tail) = mem.read(hwsp::CSB_WRITE) else {
            return;
        };
        let Sched {
            csb, ports, queue, ..
        } = &mut *s;
        let read = |i: usize| {
            let lo = mem.read(hwsp::CSB_BUF0 + 2 * i).ok()?;
            let hi = mem.read(hwsp::CSB_BUF0 + 2 * i + 1).ok()?;
            Some(u64::from(lo) | (u64::from(hi) << 32))
        };
        let retire = |p: Port, queue: &mut KVec<Arc<Context>>| self.retire(p, queue);
        let r = csb.consume(tail, read, |ev| match ev {
            Event::Promote => {
                if !ports.promote(|p| retire(p, queue)) {
                    inc(&self.stats.csb_anomalies);
                }
            }
            Event::Complete(id) => match ports.complete() {
                Some(p) => {
                    if p.ctx.id() != id {
                        inc(&self.stats.csb_anomalies);
                    }
                    retire(p, queue)
                }
                None => inc(&self.stats.csb_anomalies),
            },
            Event::Other => {}
        });
        match r {
            Ok(n) => self.stats.csb_entries.add(n as u32, Relaxed),
            Err(_) => inc(&self.stats.csb_anomalies),
        }
        let _ = self.dequeue(&mut s);
        self.wake.notify_all();
    }

    /// A port's context finished its submission.
    fn retire(&self, p: Port, queue: &mut KVec<Arc<Context>>) {
        let crumb = self.breadcrumb(&p.ctx).unwrap_or(p.first.wrapping_sub(1));
        let mut st = p.ctx.state.lock();
        st.inflight = false;
        st.head = p.tail;
        if !seqno_passed(crumb, p.last) {
            let from = if seqno_passed(crumb, p.first) {
                crumb.wrapping_add(1)
            } else {
                p.first
            };
            st.record_failure(from, p.last);
            inc(&self.stats.refused);
        }
        if st.emitted != st.submitted && !st.queued {
            st.queued = true;
            drop(st);
            // On allocation failure the work stays emitted and goes with the next submit.
            if queue.push(p.ctx.clone(), GFP_ATOMIC).is_err() {
                p.ctx.state.lock().queued = false;
            }
        }
    }

    /// The engine's half of GT IIR bank 0 (`execlists_irq_handler`), from the threaded
    /// handler.
    pub(crate) fn irq(&self, iir: u32) {
        if iir & abi::GT_CS_MASTER_ERROR != 0 {
            let i = self.idx();
            let eir = self.mmio.with(|b| {
                let eir = b.try_read(RING_EIR::try_at(i).ok_or(EINVAL)?)?.into_raw() & 0xffff;
                if eir != 0 {
                    b.try_write(RING_EIR::try_at(i).ok_or(EINVAL)?, RING_EIR::from(eir))?;
                }
                Ok(eir)
            });
            if let Ok(eir) = eir {
                if eir != 0 {
                    or_bits(&self.stats.eir, eir);
                    inc(&self.stats.errors);
                }
            }
        }
        if iir & abi::GT_CONTEXT_SWITCH != 0 {
            inc(&self.stats.ctx_switch_irqs);
            self.process_csb();
        }
        if iir & (abi::GT_USER_INTERRUPT | abi::GT_CS_MASTER_ERROR) != 0 {
            if iir & abi::GT_USER_INTERRUPT != 0 {
                inc(&self.stats.user_irqs);
            }
            let _s = self.sched.lock();
            self.wake.notify_all();
        }
    }

    /// Waits for `seqno` of `ctx`, looking at the CSB itself every [`POLL_MS`] ms.
    pub(crate) fn wait_seqno(
        &self,
        ctx: &Context,
        seqno: Seqno,
        timeout: Delta,
    ) -> Result<(), WaitError> {
        let start: Instant<Monotonic> = Instant::now();
        loop {
            {
                let mut s = self.sched.lock();
                // Breadcrumb first: a later submission can only have moved it past a
                // refused one after that refusal was recorded.
                let crumb = self.breadcrumb(ctx).map_err(|_| WaitError::Invalid)?;
                {
                    let st = ctx.state.lock();
                    if !seqno_passed(st.emitted, seqno) {
                        return Err(WaitError::Invalid);
                    }
                    if st.failed(seqno) {
                        return Err(WaitError::Refused);
                    }
                }
                if seqno_passed(crumb, seqno) {
                    return Ok(());
                }
                if start.elapsed() > timeout {
                    return Err(WaitError::TimedOut);
                }
                if let CondVarTimeoutResult::Signal { .. } = self
                    .wake
                    .wait_interruptible_timeout(&mut s, msecs_to_jiffies(POLL_MS))
                {
                    return Err(WaitError::Interrupted);
                }
            }
            self.process_csb();
        }
    }
}

impl Submitter for Engine {
    type Context = Arc<Context>;

    fn submit(&self, ctx: &Arc<Context>, batch: Batch) -> Result<Seqno> {
        if batch.addr % 8 != 0
            || batch.len == 0
            || batch.len % 8 != 0
            || batch.len > 1 << 20
            || batch
                .addr
                .checked_add(u64::from(batch.len))
                .is_none_or(|e| e > crate::abi::gtt::PPGTT_SIZE)
        {
            return Err(EINVAL);
        }
        let mut bb = [0u32; 3];
        GpuCmd::BatchBufferStart {
            addr: batch.addr,
            ppgtt: true,
            second_level: false,
        }
        .encode(&mut bb)
        .map_err(|_| EINVAL)?;
        self.submit_ring(ctx, &bb, Delta::from_millis(1000))
    }

    fn wait(&self, ctx: &Arc<Context>, seqno: Seqno, timeout: Delta) -> Result<(), WaitError> {
        self.wait_seqno(ctx, seqno, timeout)
    }
}
