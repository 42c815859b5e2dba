// SPDX-License-Identifier: GPL-2.0

//! One context run: the ring from head to tail, the batches it starts, and the GEN9
//! commands the sim models.
//!
//! **Decoding.** A command's length comes from `gpu_cmd::table::GEN9_CMDS` with the ring's
//! decoder (MI on both rings, 2D only on BCS, type 3 only on RCS), except
//! `XY_FAST_COPY_BLT`, which GVT-g's table lacks (its length field, 10 dwords on GEN9). A
//! header with no length (unknown, invalid length, another ring's type), a modelled
//! command with a length GEN9 does not define for it, or a command running past the ring's
//! tail stops the context with [`EngineError::Malformed`]. Every other well-formed command
//! is skipped by its length and counted as not modelled.
//!
//! **Address spaces.** MI commands use the GGTT only where they carry a GGTT bit
//! (`MI_STORE_DATA_IMM`, `MI_SEMAPHORE_WAIT`, `MI_COPY_MEM_MEM` bits 22/21, `MI_FLUSH_DW`'s
//! address bit 2, batch starts without bit 8), else the context's PPGTT. `PIPE_CONTROL`
//! honours its `GLOBAL_GTT` bit (24) like an MI command: it is how i915 writes GEN9
//! breadcrumbs on RCS. Every other non-MI command (the `XY_*` blits, 3D) goes through the
//! PPGTT, even from a GGTT batch, as i915's GEN9 command parser relies on. Store-index
//! forms (`MI_STORE_DATA_INDEX`, `MI_FLUSH_DW` and `PIPE_CONTROL` bit 21) write the
//! per-process status page, page 0 of the running context image (execlist mode; i915's
//! `LRC_PPHWSP_SCRATCH_ADDR`), through the GGTT.
//!
//! **TLB.** A run keeps the page it last fetched commands from and the page of its last
//! MI data access: a GGTT or PPGTT entry the mediator changes while a context runs may be
//! seen only by the next submission, as on hardware without a TLB invalidation. Blits
//! translate every page anew.
//!
//! **Faults.** A command translates every page it will touch before its first store; an
//! access through a non-present or read-only entry, or to a device address the IOMMU
//! does not map, stops the context with [`EngineError::Fault`] and the command stores
//! nothing. A store that fails after its translation (a guest page unpinned meanwhile)
//! also stops the context with a fault.
//!
//! **Budget.** Each command costs 1, each `MI_SEMAPHORE_WAIT` poll after the first read 1,
//! each blit row 1 (charged in full before the blit touches memory). Running out stops the
//! context with [`EngineError::Hang`]. [`crate::gpu::Gpu::reset_engine`] is seen before
//! each command and each poll.
//!
//! **Batches.** `MI_BATCH_BUFFER_START` in the ring calls a first-level batch; in a
//! first-level batch it chains (jumps), or with bit 22 calls a second-level batch, whose
//! `MI_BATCH_BUFFER_END` returns to the first level; in a second-level batch it chains,
//! and a second-level start there is too deep (malformed), as GEN9 nests two levels.
//! `MI_BATCH_BUFFER_END` in the ring is malformed.

use super::{
    iommu::Frame,
    regs::RegFile,
    walk::{fault, Mmu, Space},
    Hw,
};
use crate::{
    abi::{gpu_cmd::table, lrc, regs},
    gpu::{Engine, EngineError, Events, PAGE},
};
use core::sync::atomic::{AtomicBool, Ordering};
use kernel::{
    prelude::*,
    sync::Arc,
    time::{delay::fsleep, Delta},
};

/// Longest command the sim reads whole (`MI_LOAD_REGISTER_IMM` of 128 registers).
pub(crate) const MAX_CMD: usize = 260;
/// Pages one blit may touch per surface (32 MiB); a larger blit is refused as malformed.
pub(crate) const BLIT_PAGES: usize = 8192;
/// Semaphore polls made back to back before each further poll sleeps.
const SPIN_POLLS: u32 = 64;
/// Sleep between later semaphore polls.
const POLL_SLEEP_US: i64 = 50;
/// Commands between two scheduling points.
const RESCHED_EVERY: u32 = 4096;

/// Per-engine memory a run works in, allocated with the engine.
pub(crate) struct Scratch {
    /// What `MI_LOAD_REGISTER_IMM` wrote.
    pub(crate) regs: RegFile,
    /// The dwords of the command being run.
    cmd: KVec<u32>,
    /// A blit's destination pages, in the order it writes them: (graphics page, page).
    pub(super) dst: KVVec<(u64, Frame)>,
    /// A blit's source pages, in the order it reads them.
    pub(super) src: KVVec<(u64, Frame)>,
}

impl Scratch {
    /// Scratch space with every buffer at its full size.
    pub(crate) fn new() -> Result<KBox<Self>> {
        Ok(KBox::new(
            Self {
                regs: RegFile::new()?,
                cmd: KVec::with_capacity(MAX_CMD, GFP_KERNEL)?,
                dst: KVVec::with_capacity(BLIT_PAGES, GFP_KERNEL)?,
                src: KVVec::with_capacity(BLIT_PAGES, GFP_KERNEL)?,
            },
            GFP_KERNEL,
        )?)
    }
}

/// What a run did, for the counters.
#[derive(Default)]
pub(crate) struct Counts {
    /// Commands decoded (modelled or not).
    pub(crate) commands: u64,
    /// Commands skipped by their length.
    pub(crate) not_modelled: u64,
    /// Bytes written by blits.
    pub(crate) blit_bytes: u64,
}

/// Where a batch is.
#[derive(Clone, Copy)]
struct Batch {
    space: Space,
    addr: u64,
}

/// The ring of the context.
struct Ring {
    /// GGTT address.
    start: u64,
    /// Bytes.
    size: u64,
    /// Offset of the next command.
    pos: u64,
    /// Wrap count (`RING_HEAD` bits 31:21).
    wrap: u32,
    /// Bytes left up to the tail.
    left: u64,
    /// Offset and wrap count of the ring command running now (where a stopped context
    /// resumes).
    cmd: (u64, u32),
}

impl Ring {
    fn advance(&mut self, bytes: u64) {
        self.left = self.left.saturating_sub(bytes);
        self.pos += bytes;
        if self.pos >= self.size {
            self.pos -= self.size;
            self.wrap = (self.wrap + 1) & (u32::MAX >> regs::ring::HEAD_WRAP_SHIFT);
        }
    }
}

/// Where a command is read from.
#[derive(Clone, Copy)]
enum Loc {
    /// At this offset of the ring.
    Ring { start: u64, size: u64, pos: u64 },
    /// In a batch.
    Batch(Batch),
}

impl Loc {
    /// Space and address of dword `i` of the command.
    fn dword(self, i: usize) -> (Space, u64) {
        let b = 4 * i as u64;
        match self {
            Loc::Ring { start, size, pos } => (Space::Ggtt, start + (pos + b) % size),
            Loc::Batch(bb) => (bb.space, bb.addr + b),
        }
    }
}

/// What a command does to the flow.
enum Flow {
    Next,
    Start { to: Batch, second: bool },
    End,
}

/// One running context.
pub(crate) struct Run<'a> {
    pub(super) engine: Engine,
    pub(super) mmu: Mmu<'a>,
    events: Option<&'a Arc<dyn Events>>,
    stop: &'a AtomicBool,
    /// GGTT address of the context image.
    lrca: u64,
    budget: u32,
    pub(super) used: u32,
    pub(super) s: &'a mut Scratch,
    pub(super) counts: &'a mut Counts,
    /// The page commands were last fetched from.
    fetch: Option<(Space, u64, Frame)>,
    /// The data page last translated: space, graphics page, translated for a write.
    tlb: Option<(Space, u64, bool, Frame)>,
}

/// GEN9 `XY_FAST_COPY_BLT` opcode (header bits 31:22), missing from GVT-g's table.
pub(super) const FAST_COPY_OP: u32 = (2 << 7) | 0x42;

/// One submission, as the engine's worker hands it over.
pub(crate) struct Job<'a> {
    /// The engine it runs on.
    pub(crate) engine: Engine,
    /// Memory and counters.
    pub(crate) hw: &'a Hw,
    /// Who hears `MI_USER_INTERRUPT`.
    pub(crate) events: Option<&'a Arc<dyn Events>>,
    /// Set when the engine is reset.
    pub(crate) stop: &'a AtomicBool,
    /// The context descriptor.
    pub(crate) desc: u64,
    /// The command budget.
    pub(crate) budget: u32,
}

/// Runs the context of `job`, and writes `RING_HEAD` back into its image.
pub(crate) fn run(job: &Job<'_>, s: &mut Scratch, counts: &mut Counts) -> Result<(), EngineError> {
    use lrc::state;
    let Job {
        engine,
        hw,
        events,
        stop,
        desc,
        budget,
    } = *job;
    let lrca = u64::from(lrc::desc::lrca(desc));
    let mut mmu = Mmu {
        ggtt: &hw.ggtt,
        iommu: &hw.iommu,
        pml4: 0,
    };
    let state_addr = lrca + u64::from(lrc::STATE_PAGE) * PAGE;
    let image = mmu.translate(Space::Ggtt, state_addr, true)?;
    let rd = |i: usize| {
        image
            .load32(4 * i)
            .map_err(|_| fault(Space::Ggtt, state_addr + 4 * i as u64, false))
    };
    let head = rd(state::RING_HEAD)?;
    let tail = rd(state::RING_TAIL)?;
    let start = u64::from(rd(state::RING_START)? & !(PAGE as u32 - 1));
    let ctl = rd(state::RING_CTL)?;
    mmu.pml4 = (u64::from(rd(state::PDP0_UDW)?) << 32) | u64::from(rd(state::PDP0_LDW)?);

    let size = (u64::from((ctl & regs::ring::CTL_SIZE_MASK) >> 12) + 1) * PAGE;
    let pos = u64::from(head & regs::ring::HEAD_ADDR);
    let tail = u64::from(tail & regs::ring::TAIL_ADDR);
    if ctl & regs::ring::CTL_VALID == 0 || pos >= size || tail >= size {
        return Err(EngineError::Malformed { at: start + pos });
    }
    let wrap = head >> regs::ring::HEAD_WRAP_SHIFT;
    let mut ring = Ring {
        start,
        size,
        pos,
        wrap,
        left: (tail + size - pos) % size,
        cmd: (pos, wrap),
    };
    let mut r = Run {
        engine,
        mmu,
        events,
        stop,
        lrca,
        budget,
        used: 0,
        s,
        counts,
        fetch: None,
        tlb: None,
    };
    let res = r.exec(&mut ring);
    let (pos, wrap) = if res.is_ok() {
        (ring.pos, ring.wrap)
    } else {
        ring.cmd
    };
    let head = (wrap << regs::ring::HEAD_WRAP_SHIFT) | (pos as u32 & regs::ring::HEAD_ADDR);
    let wb = image
        .store32(4 * state::RING_HEAD, head)
        .map_err(|_| fault(Space::Ggtt, state_addr + 4 * state::RING_HEAD as u64, true));
    res.and(wb)
}

impl Run<'_> {
    /// Takes `n` from the budget.
    pub(super) fn charge(&mut self, n: u32) -> Result<(), EngineError> {
        match self.used.checked_add(n) {
            Some(u) if u <= self.budget => {
                self.used = u;
                Ok(())
            }
            _ => Err(EngineError::Hang),
        }
    }

    fn check_stop(&self) -> Result<(), EngineError> {
        if self.stop.load(Ordering::Relaxed) {
            Err(EngineError::Reset)
        } else {
            Ok(())
        }
    }

    /// The command stream's dword at `addr`.
    fn fetch(&mut self, space: Space, addr: u64) -> Result<u32, EngineError> {
        let page = addr & !(PAGE - 1);
        let f = match &self.fetch {
            Some((s, p, f)) if *s == space && *p == page => f,
            _ => {
                let f = self
                    .mmu
                    .translate(space, page, false)
                    .map_err(|_| fault(space, addr, false))?;
                &self.fetch.insert((space, page, f)).2
            }
        };
        f.load32((addr % PAGE) as usize)
            .map_err(|_| fault(space, addr, false))
    }

    /// The length of the command starting with `h` on this engine, in dwords.
    fn length(&self, h: u32) -> Option<u32> {
        let on = match self.engine {
            Engine::Rcs => table::ring::RCS,
            Engine::Bcs => table::ring::BCS,
        };
        if self.engine == Engine::Bcs && h >> 22 == FAST_COPY_OP {
            return Some((h & 0xff) + table::LEN_BIAS);
        }
        table::lookup(h, on).ok()?.length(h).ok()
    }

    /// Dword `i` of the command read by [`Self::read`].
    pub(super) fn dw(&self, i: usize) -> u32 {
        self.s.cmd.get(i).copied().unwrap_or(0)
    }

    /// Reads the `len` dwords of the command at `loc`.
    fn read(&mut self, loc: Loc, len: u32, at: u64) -> Result<(), EngineError> {
        if len as usize > MAX_CMD {
            return Err(EngineError::Malformed { at });
        }
        self.s.cmd.clear();
        for i in 0..len as usize {
            let (space, addr) = loc.dword(i);
            let v = self.fetch(space, addr)?;
            self.s
                .cmd
                .push_within_capacity(v)
                .map_err(|_| EngineError::Malformed { at })?;
        }
        Ok(())
    }

    /// Runs the ring until its tail, or until something stops the context.
    fn exec(&mut self, ring: &mut Ring) -> Result<(), EngineError> {
        let mut stack: [Option<Batch>; 2] = [None, None];
        let mut depth = 0usize;
        loop {
            self.check_stop()?;
            let loc = match depth.checked_sub(1).and_then(|i| stack.get(i)) {
                Some(Some(b)) => Loc::Batch(*b),
                _ => {
                    if ring.left == 0 {
                        return Ok(());
                    }
                    ring.cmd = (ring.pos, ring.wrap);
                    Loc::Ring {
                        start: ring.start,
                        size: ring.size,
                        pos: ring.pos,
                    }
                }
            };
            self.charge(1)?;
            if self.used % RESCHED_EVERY == 0 {
                kernel::task::might_sleep();
            }
            let (space, at) = loc.dword(0);
            let h = self.fetch(space, at)?;
            let len = self.length(h).ok_or(EngineError::Malformed { at })?;
            if depth == 0 && 4 * u64::from(len) > ring.left {
                return Err(EngineError::Malformed { at });
            }
            self.counts.commands += 1;
            let flow = self.command(h, len, loc, at)?;
            let bytes = 4 * u64::from(len);
            match depth.checked_sub(1).and_then(|i| stack.get_mut(i)) {
                Some(Some(b)) => b.addr += bytes,
                _ => ring.advance(bytes),
            }
            match flow {
                Flow::Next => {}
                Flow::Start { to, second } => {
                    // Ring: call a first-level batch. First level: call a second level
                    // (bit 22) or chain. Second level: chain; deeper is malformed.
                    let slot = match (depth, second) {
                        (0, _) | (1, true) => {
                            depth += 1;
                            depth - 1
                        }
                        (1, false) => 0,
                        (_, false) => 1,
                        (_, true) => return Err(EngineError::Malformed { at }),
                    };
                    if let Some(s) = stack.get_mut(slot) {
                        *s = Some(to);
                    }
                }
                Flow::End => {
                    if depth == 0 {
                        return Err(EngineError::Malformed { at });
                    }
                    depth -= 1;
                    if let Some(s) = stack.get_mut(depth) {
                        *s = None;
                    }
                }
            }
        }
    }

    /// Runs one command of `len` dwords (its header `h`) at `loc`.
    fn command(&mut self, h: u32, len: u32, loc: Loc, at: u64) -> Result<Flow, EngineError> {
        let malformed = EngineError::Malformed { at };
        match h >> 29 {
            0 => self.mi(h, len, loc, at),
            2 => {
                let op = (h >> 22) & 0x7f;
                let want = match op {
                    0x50 => 7,
                    0x53 | 0x42 => 10,
                    _ => return self.skip(),
                };
                if len != want {
                    return Err(malformed);
                }
                self.read(loc, len, at)?;
                self.blit(op, at)?;
                Ok(Flow::Next)
            }
            3 if h >> 16 == 0x7a00 => {
                if len != 6 {
                    return Err(malformed);
                }
                self.read(loc, len, at)?;
                self.pipe_control()?;
                Ok(Flow::Next)
            }
            _ => self.skip(),
        }
    }

    fn skip(&mut self) -> Result<Flow, EngineError> {
        self.counts.not_modelled += 1;
        Ok(Flow::Next)
    }

    /// A graphics address from a (low, high) dword pair: 48 bits, low bits masked to
    /// `align`.
    pub(super) fn addr(lo: u32, hi: u32, align: u64) -> u64 {
        ((u64::from(hi & 0xffff) << 32) | u64::from(lo)) & !(align - 1)
    }

    /// The page of a data access, through the run's one-entry TLB.
    fn translate(&mut self, space: Space, addr: u64, write: bool) -> Result<Frame, EngineError> {
        let page = addr & !(PAGE - 1);
        if let Some((s, p, w, f)) = &self.tlb {
            if *s == space && *p == page && (*w || !write) {
                return Ok(f.clone());
            }
        }
        let f = self.mmu.translate(space, addr, write)?;
        self.tlb = Some((space, page, write, f.clone()));
        Ok(f)
    }

    /// Stores 4 or 8 bytes at `addr` (4-byte aligned), translating every page first.
    fn write_mem(
        &mut self,
        space: Space,
        addr: u64,
        v: u64,
        qword: bool,
    ) -> Result<(), EngineError> {
        let f = self.translate(space, addr, true)?;
        let off = (addr % PAGE) as usize;
        let err = |a| fault(space, a, true);
        if !qword {
            return f.store32(off, v as u32).map_err(|_| err(addr));
        }
        if addr % 8 == 0 {
            return f.store64(off, v).map_err(|_| err(addr));
        }
        let hi_addr = addr + 4;
        let f2 = self.translate(space, hi_addr, true)?;
        f.store32(off, v as u32).map_err(|_| err(addr))?;
        f2.store32((hi_addr % PAGE) as usize, (v >> 32) as u32)
            .map_err(|_| err(hi_addr))
    }

    /// A store into the per-process status page (page 0 of the context image).
    fn write_index(&mut self, off: u32, v: u64, qword: bool) -> Result<(), EngineError> {
        let addr = self.lrca + u64::from(off % PAGE as u32);
        self.write_mem(Space::Ggtt, addr, v, qword)
    }

    /// The value of a post-sync timestamp write: the commands this context ran so far.
    fn timestamp(&self) -> u64 {
        u64::from(self.used)
    }

    fn mi(&mut self, h: u32, len: u32, loc: Loc, at: u64) -> Result<Flow, EngineError> {
        const GGTT: u32 = 1 << 22;
        const QWORD: u32 = 1 << 21;
        const STORE_INDEX: u32 = 1 << 21;
        let malformed = EngineError::Malformed { at };
        let space_if = |bit: bool| if bit { Space::Ggtt } else { Space::Ppgtt };
        match (h >> 23) & 0x3f {
            // MI_NOOP, MI_ARB_CHECK (every command is a preemption point here).
            0x00 | 0x05 => Ok(Flow::Next),
            // MI_USER_INTERRUPT.
            0x02 => {
                if let Some(ev) = self.events {
                    ev.interrupt(self.engine, regs::GT_USER_INTERRUPT);
                }
                Ok(Flow::Next)
            }
            // MI_BATCH_BUFFER_END.
            0x0a => Ok(Flow::End),
            // MI_BATCH_BUFFER_START (GEN8 form).
            0x31 => {
                if len != 3 {
                    return Err(malformed);
                }
                self.read(loc, len, at)?;
                let space = if h & (1 << 8) != 0 {
                    Space::Ppgtt
                } else {
                    Space::Ggtt
                };
                let to = Batch {
                    space,
                    addr: Self::addr(self.dw(1), self.dw(2), 4),
                };
                Ok(Flow::Start {
                    to,
                    second: h & (1 << 22) != 0,
                })
            }
            // MI_STORE_DATA_IMM: a dword (length 4) or, with bit 21, a qword (5).
            0x20 => {
                let qword = h & QWORD != 0;
                if len != if qword { 5 } else { 4 } {
                    return Err(malformed);
                }
                self.read(loc, len, at)?;
                let addr = Self::addr(self.dw(1), self.dw(2), if qword { 8 } else { 4 });
                let v = u64::from(self.dw(3)) | (u64::from(self.dw(4)) << 32);
                self.write_mem(space_if(h & GGTT != 0), addr, v, qword)?;
                Ok(Flow::Next)
            }
            // MI_STORE_DATA_INDEX: a dword (length 3) or a qword (4).
            0x21 => {
                if len != 3 && len != 4 {
                    return Err(malformed);
                }
                self.read(loc, len, at)?;
                let qword = len == 4;
                let off = self.dw(1) & if qword { 0xff8 } else { 0xffc };
                let v = u64::from(self.dw(2)) | (u64::from(self.dw(3)) << 32);
                self.write_index(off, v, qword)?;
                Ok(Flow::Next)
            }
            // MI_LOAD_REGISTER_IMM: 2n + 1 dwords.
            0x22 => {
                if len < 3 || len % 2 == 0 {
                    return Err(malformed);
                }
                self.read(loc, len, at)?;
                for i in 0..(len as usize - 1) / 2 {
                    let (off, v) = (self.dw(1 + 2 * i) & 0x7f_fffc, self.dw(2 + 2 * i));
                    self.s.regs.write(off, v);
                }
                Ok(Flow::Next)
            }
            // MI_FLUSH_DW, with its post-sync write.
            0x26 => {
                let op = (h >> 14) & 3;
                if op == 0 {
                    return Ok(Flow::Next);
                }
                if !(4..=5).contains(&len) || op == 2 {
                    return Err(malformed);
                }
                self.read(loc, len, at)?;
                let (v, qword) = match op {
                    1 => (
                        u64::from(self.dw(3)) | (u64::from(self.dw(4)) << 32),
                        len == 5,
                    ),
                    _ => (self.timestamp(), true),
                };
                let a = self.dw(1);
                if h & STORE_INDEX != 0 {
                    self.write_index(a & 0xff8, v, qword)?;
                } else {
                    let addr = Self::addr(a, self.dw(2), 8);
                    self.write_mem(space_if(a & (1 << 2) != 0), addr, v, qword)?;
                }
                Ok(Flow::Next)
            }
            // MI_SEMAPHORE_WAIT (signal mode is polled too).
            0x1c => {
                self.read(loc, len, at)?;
                let op = (h >> 12) & 7;
                if len != 4 || op > 5 {
                    return Err(malformed);
                }
                let addr = Self::addr(self.dw(2), self.dw(3), 4);
                self.semaphore(space_if(h & GGTT != 0), addr, self.dw(1), op)?;
                Ok(Flow::Next)
            }
            // MI_COPY_MEM_MEM: one dword; bit 22 source in the GGTT, bit 21 destination.
            0x2e => {
                if len != 5 {
                    return Err(malformed);
                }
                self.read(loc, len, at)?;
                let dst = Self::addr(self.dw(1), self.dw(2), 4);
                let src = Self::addr(self.dw(3), self.dw(4), 4);
                let (ss, ds) = (space_if(h & GGTT != 0), space_if(h & (1 << 21) != 0));
                let sf = self.translate(ss, src, false)?;
                let df = self.translate(ds, dst, true)?;
                let v = sf
                    .load32((src % PAGE) as usize)
                    .map_err(|_| fault(ss, src, false))?;
                df.store32((dst % PAGE) as usize, v)
                    .map_err(|_| fault(ds, dst, true))?;
                Ok(Flow::Next)
            }
            _ => self.skip(),
        }
    }

    /// Polls the dword at `addr` until `*addr op value` holds.
    fn semaphore(
        &mut self,
        space: Space,
        addr: u64,
        value: u32,
        op: u32,
    ) -> Result<(), EngineError> {
        let f = self.translate(space, addr, false)?;
        let off = (addr % PAGE) as usize;
        let mut polls = 0u32;
        loop {
            let v = f.load32(off).map_err(|_| fault(space, addr, false))?;
            let ok = match op {
                0 => v > value,
                1 => v >= value,
                2 => v < value,
                3 => v <= value,
                4 => v == value,
                _ => v != value,
            };
            if ok {
                return Ok(());
            }
            self.check_stop()?;
            self.charge(1)?;
            polls += 1;
            if polls > SPIN_POLLS {
                fsleep(Delta::from_micros(POLL_SLEEP_US));
            }
        }
    }

    /// `PIPE_CONTROL` (6 dwords): the register write of `MMIO_WRITE` (bit 23), else the
    /// post-sync qword write (bits 15:14: immediate data, depth count as 0, timestamp).
    fn pipe_control(&mut self) -> Result<(), EngineError> {
        const MMIO_WRITE: u32 = 1 << 23;
        const GLOBAL_GTT: u32 = 1 << 24;
        const STORE_INDEX: u32 = 1 << 21;
        let flags = self.dw(1);
        if flags & MMIO_WRITE != 0 {
            let (off, v) = (self.dw(2) & 0x7f_fffc, self.dw(4));
            self.s.regs.write(off, v);
            return Ok(());
        }
        let op = (flags >> 14) & 3;
        if op != 0 {
            let v = match op {
                1 => u64::from(self.dw(4)) | (u64::from(self.dw(5)) << 32),
                2 => 0,
                _ => self.timestamp(),
            };
            if flags & STORE_INDEX != 0 {
                self.write_index(self.dw(2) & 0xff8, v, true)?;
            } else {
                let space = if flags & GLOBAL_GTT != 0 {
                    Space::Ggtt
                } else {
                    Space::Ppgtt
                };
                let addr = Self::addr(self.dw(2), self.dw(3), 8);
                self.write_mem(space, addr, v, true)?;
            }
        }
        Ok(())
    }
}
