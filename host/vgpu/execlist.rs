// SPDX-License-Identifier: GPL-2.0

//! The execlist port of one engine of a vGPU: the ELSP latch with its descriptor checks,
//! and the CSB emulation the completion path drives, as GVT-g does it
//! (`handlers.c: elsp_mmio_write`, `execlist.c`).
//!
//! **ELSP.** Each dword written to `RING_ELSP` lands in `elsp[3 - index]` and `index`
//! advances modulo 4, so i915's four writes (port 1 first, upper dword first:
//! `execlists_submit_ports`, `write_desc`) land as desc1.hi, desc1.lo, desc0.hi,
//! desc0.lo. The fourth write checks the pair (`intel_vgpu_submit_execlist`): desc0
//! valid; each valid descriptor privileged, in 4-level addressing mode, and with its
//! context image (the engine's context size from its LRCA) inside the vGPU's aperture or
//! hidden slice. A pair that passes is handed to the submission path; at most
//! [`PENDING_LIMIT`] per engine wait for it, beyond that a pair is refused.
//!
//! **CSB.** Two virtual slots, one running and one pending, as `intel_vgpu_execlist`.
//! [`Execlist::schedule_in`] and [`Execlist::schedule_out`] write the entries of
//! `emulate_execlist_schedule_in` and `emulate_execlist_ctx_schedule_out`; each entry goes
//! to the register copy (`engine + 0x370 + 8 wp`, pointer in `RING_CONTEXT_STATUS_PTR`
//! bits 2:0) and to the guest's status page through [`Hwsp`] (the entry as one 8-byte
//! store at dword `0x10 + 2 wp`, then the pointer as one 4-byte store at dword `0x1f`),
//! and `EXECLIST_STATUS_LO/HI` follow the slots (`emulate_execlist_status`). The write
//! pointer starts at 7, "none yet" (`init_vgpu_execlist`), then runs 0..5.
//!
//! Everything here runs under `Vgpu::state`: no allocation, no sleeping, guest memory
//! only through single stores to pages the caller pinned.

use crate::abi::{
    lrc::{self, desc},
    regs::ring::{self, status},
};
use crate::debugfs::Counters;
use crate::gpu::Engine;
use crate::mm::partition::Slice;
use core::fmt;
use kernel::prelude::*;

/// ELSP pairs that may wait for the submission path per engine (design, "Bounds").
pub(crate) const PENDING_LIMIT: u8 = 8;

/// Dwords of one engine's register block.
pub(crate) const RING_DWORDS: usize = (ring::SPAN / 4) as usize;

/// One engine's register copy, by dword offset from the engine base.
pub(crate) type RingFile = [u32; RING_DWORDS];

/// Reads the register at offset `rel` from the engine base.
pub(crate) fn get(file: &RingFile, rel: u32) -> u32 {
    file.get((rel / 4) as usize).copied().unwrap_or(0)
}

/// Writes the register at offset `rel` from the engine base.
pub(crate) fn set(file: &mut RingFile, rel: u32, v: u32) {
    if let Some(r) = file.get_mut((rel / 4) as usize) {
        *r = v;
    }
}

/// Whether `[addr, addr + len)` lies inside the vGPU's aperture or hidden slice (GVT-g
/// `intel_gvt_ggtt_validate_range`).
pub(crate) fn in_slices(s: &Slice, addr: u64, len: u64) -> bool {
    let Some(end) = addr.checked_add(len) else {
        return false;
    };
    let inside = |base: u64, size: u64| addr >= base && end <= base.saturating_add(size);
    inside(s.aperture_base, s.aperture_size) || inside(s.hidden_base, s.hidden_size)
}

/// The guest's status page of an engine (the page `RING_HWS_PGA` names), which the
/// completion path resolved and pinned before it took `state`.
///
/// Each store is one aligned access to guest memory; it fails (`EFAULT`) once the page is
/// no longer the guest's.
pub(crate) trait Hwsp {
    /// Stores `v` at dword `dword` of the page.
    fn store32(&self, dword: usize, v: u32) -> Result;
    /// Stores `v` at dwords `dword` (low half) and `dword + 1`; `dword` is even.
    fn store64(&self, dword: usize, v: u64) -> Result;
}

/// Why an ELSP submission was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Descriptor 0 is not valid.
    Desc0Invalid,
    /// A valid descriptor without `GEN8_CTX_PRIVILEGE` (a GGTT context).
    NoPrivilege {
        /// Its port.
        port: u8,
    },
    /// A valid descriptor whose addressing mode is not 3 (4-level PPGTT).
    Mode {
        /// Its port.
        port: u8,
        /// The mode it asks for.
        mode: u8,
    },
    /// A context image that does not lie wholly inside the vGPU's slices.
    Outside {
        /// Its port.
        port: u8,
        /// Its LRCA.
        lrca: u32,
    },
    /// [`PENDING_LIMIT`] submissions already wait on the engine.
    Busy,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Desc0Invalid => write!(f, "descriptor 0 not valid"),
            Self::NoPrivilege { port } => write!(f, "port {port}: not privileged"),
            Self::Mode { port, mode } => write!(f, "port {port}: addressing mode {mode}"),
            Self::Outside { port, lrca } => {
                write!(f, "port {port}: context at {lrca:#x} outside the slices")
            }
            Self::Busy => write!(f, "{PENDING_LIMIT} submissions already waiting"),
        }
    }
}

// For `pr_*!`, which format through `kernel::fmt`.
impl kernel::fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// What the fourth ELSP write produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Latched {
    /// A pair for the submission path: descriptor 0, and descriptor 1 if valid.
    Submit([Option<u64>; 2]),
    /// A refused pair.
    Refused(Refusal),
}

/// A context descriptor as a slot holds it (`execlist_ctx_descriptor_format`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Ctx(u64);

impl Ctx {
    fn valid(self) -> bool {
        self.0 & desc::VALID != 0
    }

    fn id(self) -> u32 {
        desc::ctx_id(self.0)
    }

    /// GVT-g `same_context`: same context id and LRCA.
    fn same(self, o: Ctx) -> bool {
        self.id() == o.id() && desc::lrca(self.0) == desc::lrca(o.0)
    }
}

/// Checks the pair the fourth ELSP write completed.
fn check(
    engine: Engine,
    d: [u64; 2],
    slice: &Slice,
) -> core::result::Result<[Option<u64>; 2], Refusal> {
    if d[0] & desc::VALID == 0 {
        return Err(Refusal::Desc0Invalid);
    }
    let mut out = [None; 2];
    for (port, (x, o)) in d.into_iter().zip(out.iter_mut()).enumerate() {
        if x & desc::VALID == 0 {
            continue;
        }
        let port = port as u8;
        if x & desc::PRIVILEGE == 0 {
            return Err(Refusal::NoPrivilege { port });
        }
        let mode = desc::mode(x);
        if mode != desc::MODE_LEGACY_64B {
            return Err(Refusal::Mode {
                port,
                mode: mode as u8,
            });
        }
        let lrca = desc::lrca(x);
        let len = u64::from(engine.context_pages()) * u64::from(lrc::PAGE);
        if !in_slices(slice, u64::from(lrca), len) {
            return Err(Refusal::Outside { port, lrca });
        }
        *o = Some(x);
    }
    Ok(out)
}

/// The execlist state of one engine (GVT-g `intel_vgpu_execlist`).
#[derive(Clone, Debug)]
pub(crate) struct Execlist {
    /// The ELSP latch (`intel_vgpu_elsp_dwords`).
    elsp: [u32; 4],
    index: usize,
    /// The two virtual slots, each a descriptor pair.
    slots: [[Ctx; 2]; 2],
    running: Option<usize>,
    pending: Option<usize>,
    /// The element of the running slot that runs (`running_context`).
    current: Option<usize>,
    /// Accepted pairs the submission path has not taken yet.
    queued: u8,
}

impl Execlist {
    /// The state after an engine reset: nothing latched, nothing running.
    pub(crate) const fn new() -> Self {
        Self {
            elsp: [0; 4],
            index: 0,
            slots: [[Ctx(0); 2]; 2],
            running: None,
            pending: None,
            current: None,
            queued: 0,
        }
    }

    /// Resets the engine's execlist state and its registers in `file`
    /// (`init_vgpu_execlist`): CSB read pointer 0, write pointer 7; and, unlike GVT-g,
    /// `EXECLIST_STATUS`, so that a reset engine has both slots free.
    pub(crate) fn reset(&mut self, file: &mut RingFile) {
        *self = Self::new();
        let ptr = get(file, ring::CSB_PTR);
        set(file, ring::CSB_PTR, (ptr & !0x0707) | lrc::csb::PTR_NONE);
        set(file, ring::EXECLIST_STATUS_LO, 0);
        set(file, ring::EXECLIST_STATUS_HI, 0);
    }

    /// A guest write of `v` to `RING_ELSP` of `engine`. Returns what the fourth write of
    /// a pair produced, `None` for the first three.
    pub(crate) fn elsp_write(&mut self, engine: Engine, v: u32, slice: &Slice) -> Option<Latched> {
        let i = self.index & 3;
        if let Some(d) = self.elsp.get_mut(3 - i) {
            *d = v;
        }
        self.index = (i + 1) & 3;
        if i != 3 {
            return None;
        }
        let [l0, h0, l1, h1] = self.elsp.map(u64::from);
        let pair = [l0 | (h0 << 32), l1 | (h1 << 32)];
        Some(match check(engine, pair, slice) {
            Err(r) => Latched::Refused(r),
            Ok(_) if self.queued >= PENDING_LIMIT => Latched::Refused(Refusal::Busy),
            Ok(descs) => {
                self.queued += 1;
                Latched::Submit(descs)
            }
        })
    }

    /// The submission path took one accepted pair (prepared or refused it).
    pub(crate) fn taken(&mut self) {
        self.queued = self.queued.saturating_sub(1);
    }

    /// Pairs waiting for the submission path.
    pub(crate) fn queued(&self) -> u8 {
        self.queued
    }

    fn running_ctx(&self) -> Option<Ctx> {
        self.slots.get(self.running?)?.get(self.current?).copied()
    }

    /// `switch_virtual_execlist_slot`: the pending slot becomes the running one.
    fn switch_slot(&mut self) {
        self.running = self.pending.take();
        self.current = match (self.current, self.running) {
            (Some(_), Some(_)) => Some(0),
            _ => None,
        };
    }

    /// `emulate_execlist_status`: `EXECLIST_STATUS_LO/HI` from the slots; the other bits
    /// of the register keep their values.
    fn status(&self, file: &mut RingFile) {
        let slot_bits = status::CURRENT
            | status::WRITE
            | status::EL0_VALID
            | status::EL0_ACTIVE
            | status::EL1_VALID
            | status::EL1_ACTIVE;
        let mut lo = get(file, ring::EXECLIST_STATUS_LO);
        match self.running {
            Some(1) => {
                lo = (lo & !slot_bits) | status::CURRENT | status::EL1_VALID | status::EL1_ACTIVE
            }
            Some(_) => {
                lo = (lo & !slot_bits) | status::WRITE | status::EL0_VALID | status::EL0_ACTIVE
            }
            None => {
                lo &= !(status::EL0_VALID
                    | status::EL0_ACTIVE
                    | status::EL1_VALID
                    | status::EL1_ACTIVE)
            }
        }
        if self.pending.is_some() {
            lo |= status::QUEUE_FULL;
        } else {
            lo &= !status::QUEUE_FULL;
        }
        set(file, ring::EXECLIST_STATUS_LO, lo);
        set(
            file,
            ring::EXECLIST_STATUS_HI,
            self.running_ctx().map_or(0, Ctx::id),
        );
    }

    /// `get_next_execlist_slot`: the slot the status register's write pointer names,
    /// unless both are taken.
    fn next_slot(file: &RingFile) -> Option<usize> {
        let lo = get(file, ring::EXECLIST_STATUS_LO);
        if lo & status::QUEUE_FULL != 0 {
            return None;
        }
        Some(usize::from(lo & status::WRITE != 0))
    }

    /// `emulate_csb_update`: writes one entry (`ldw`, context id `udw`) to the register
    /// copy and to the guest's status page.
    fn csb(file: &mut RingFile, ldw: u32, udw: u32, hwsp: Option<&dyn Hwsp>, c: &Counters) {
        let ptr = get(file, ring::CSB_PTR);
        let wp = match ptr & 7 {
            7 => 0,
            w => (w + 1) % lrc::csb::ENTRIES,
        };
        set(file, ring::CSB + 8 * wp, ldw);
        set(file, ring::CSB + 8 * wp + 4, udw);
        set(file, ring::CSB_PTR, (ptr & !7) | wp);
        Counters::inc(&c.csb_update);
        if let Some(h) = hwsp {
            let entry = (u64::from(udw) << 32) | u64::from(ldw);
            let at = lrc::hwsp::CSB_BUF0 + 2 * wp as usize;
            if h.store64(at, entry)
                .and_then(|()| h.store32(lrc::hwsp::CSB_WRITE, wp))
                .is_err()
            {
                Counters::inc(&c.csb_hwsp_fault);
            }
        }
    }

    /// Emulates the schedule-in of the ELSP pair `pair` (`emulate_execlist_schedule_in`):
    /// from idle the pair runs (`IDLE_TO_ACTIVE`, context id 0); the running context
    /// submitted again is a lite restore (`PREEMPTED | LITE_RESTORE`); otherwise the pair
    /// waits in the pending slot and no entry is written.
    ///
    /// Returns whether entries were written, that is whether the caller must raise the
    /// context-switch event.
    ///
    /// # Errors
    ///
    /// `EBUSY` if both slots are taken.
    pub(crate) fn schedule_in(
        &mut self,
        file: &mut RingFile,
        pair: [Option<u64>; 2],
        hwsp: Option<&dyn Hwsp>,
        c: &Counters,
    ) -> Result<bool> {
        let slot = Self::next_slot(file).ok_or(EBUSY)?;
        let new = pair.map(|d| Ctx(d.unwrap_or(0)));
        if let Some(s) = self.slots.get_mut(slot) {
            *s = new;
        }
        let Some([ctx0, ctx1]) = self.running.and_then(|r| self.slots.get(r).copied()) else {
            self.running = Some(slot);
            self.pending = None;
            self.current = Some(0);
            self.status(file);
            Self::csb(file, lrc::csb::IDLE_ACTIVE, 0, hwsp, c);
            return Ok(true);
        };
        let cur_is_ctx0 = self.running_ctx().is_some_and(|x| ctx0.same(x));
        self.pending = Some(slot);
        if (ctx1.valid() && ctx1.same(new[0]) && !cur_is_ctx0)
            || (!ctx1.valid() && ctx0.same(new[0]))
        {
            self.switch_slot();
            self.status(file);
            Self::csb(
                file,
                lrc::csb::PREEMPTED | lrc::csb::LITE_RESTORE,
                new[0].id(),
                hwsp,
                c,
            );
            return Ok(true);
        }
        self.status(file);
        Ok(false)
    }

    /// Emulates the schedule-out of the running context `desc`
    /// (`emulate_execlist_ctx_schedule_out`): element 0 done with element 1 valid,
    /// `COMPLETE | ELEMENT_SWITCH`; the last element done, `COMPLETE | ACTIVE_TO_IDLE`,
    /// followed by `IDLE_TO_ACTIVE` when the pending pair starts.
    ///
    /// Returns whether entries were written (always, on success): the caller raises one
    /// context-switch event for all of them.
    ///
    /// # Errors
    ///
    /// `EINVAL` if nothing runs or `desc` is not the running context.
    pub(crate) fn schedule_out(
        &mut self,
        file: &mut RingFile,
        desc: u64,
        hwsp: Option<&dyn Hwsp>,
        c: &Counters,
    ) -> Result<bool> {
        let ctx = Ctx(desc);
        let cur = self.running_ctx().ok_or(EINVAL)?;
        let [ctx0, ctx1] = self
            .running
            .and_then(|r| self.slots.get(r).copied())
            .ok_or(EINVAL)?;
        if !ctx.same(cur) {
            return Err(EINVAL);
        }
        if ctx1.valid() && ctx0.same(ctx) {
            self.current = Some(1);
            self.status(file);
            Self::csb(
                file,
                lrc::csb::COMPLETE | lrc::csb::ELEMENT_SWITCH,
                ctx.id(),
                hwsp,
                c,
            );
        } else if (!ctx1.valid() && ctx0.same(ctx)) || (ctx1.valid() && ctx1.same(ctx)) {
            let pending = self.pending.is_some();
            self.switch_slot();
            self.status(file);
            Self::csb(
                file,
                lrc::csb::COMPLETE | lrc::csb::ACTIVE_IDLE,
                ctx.id(),
                hwsp,
                c,
            );
            if pending {
                Self::csb(file, lrc::csb::IDLE_ACTIVE, 0, hwsp, c);
            }
        } else {
            return Err(EINVAL);
        }
        Ok(true)
    }

    /// Writes the state for debugfs.
    pub(crate) fn dump(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let opt = |o: Option<usize>| o.map_or(-1, |v| v as i64);
        writeln!(
            f,
            "  elsp index {} latch {:#010x} {:#010x} {:#010x} {:#010x} queued {}",
            self.index, self.elsp[0], self.elsp[1], self.elsp[2], self.elsp[3], self.queued
        )?;
        writeln!(
            f,
            "  running slot {} element {} pending slot {}",
            opt(self.running),
            opt(self.current),
            opt(self.pending)
        )?;
        for (i, s) in self.slots.iter().enumerate() {
            writeln!(
                f,
                "  slot {} ctx0 {:#018x} ctx1 {:#018x}",
                i, s[0].0, s[1].0
            )?;
        }
        Ok(())
    }
}

#[kunit_tests(gvtpv_host_execlist)]
mod tests {
    use super::*;
    use crate::abi::lrc::csb;
    use crate::mm::partition::Partition;
    use crate::vgpu::types::TYPES;
    use core::cell::Cell;

    /// A status page in host memory: 64 dwords, stores counted, optionally failing.
    struct FakeHwsp {
        dw: [Cell<u32>; 64],
        stores: Cell<u32>,
        fail: bool,
    }

    impl FakeHwsp {
        fn new(fail: bool) -> Self {
            Self {
                dw: [const { Cell::new(0xdead_beef) }; 64],
                stores: Cell::new(0),
                fail,
            }
        }

        fn dw(&self, i: usize) -> u32 {
            self.dw[i].get()
        }
    }

    impl Hwsp for FakeHwsp {
        fn store32(&self, dword: usize, v: u32) -> Result {
            if self.fail {
                return Err(EFAULT);
            }
            self.stores.set(self.stores.get() + 1);
            self.dw.get(dword).ok_or(EINVAL)?.set(v);
            Ok(())
        }

        fn store64(&self, dword: usize, v: u64) -> Result {
            if self.fail || dword % 2 != 0 {
                return Err(EFAULT);
            }
            let (lo, hi) = (
                self.dw.get(dword).ok_or(EINVAL)?,
                self.dw.get(dword + 1).ok_or(EINVAL)?,
            );
            self.stores.set(self.stores.get() + 1);
            lo.set(v as u32);
            hi.set((v >> 32) as u32);
            Ok(())
        }
    }

    struct Rig {
        el: Execlist,
        file: KBox<RingFile>,
        c: Counters,
        slice: Slice,
    }

    impl Rig {
        fn new() -> Self {
            let mut p = Partition::new();
            let slice = p.alloc(&TYPES[0].request).unwrap();
            let mut r = Self {
                el: Execlist::new(),
                file: KBox::zeroed(GFP_KERNEL).unwrap(),
                c: Counters::default(),
                slice,
            };
            r.el.reset(&mut r.file);
            r
        }

        /// A descriptor for context `id` at the start of the aperture slice + `page`.
        fn desc(&self, id: u32, page: u32) -> u64 {
            desc::make(self.slice.aperture_base as u32 + page * lrc::PAGE, id)
        }

        /// Writes the pair as i915 does: desc1.hi, desc1.lo, desc0.hi, desc0.lo.
        fn elsp(&mut self, e: Engine, d0: u64, d1: u64) -> Option<Latched> {
            let mut last = None;
            for v in [(d1 >> 32) as u32, d1 as u32, (d0 >> 32) as u32, d0 as u32] {
                last = self.el.elsp_write(e, v, &self.slice);
            }
            last
        }

        fn sin(&mut self, pair: [Option<u64>; 2], h: &FakeHwsp) -> Result<bool> {
            self.el.schedule_in(&mut self.file, pair, Some(h), &self.c)
        }

        fn sout(&mut self, d: u64, h: &FakeHwsp) -> Result<bool> {
            self.el.schedule_out(&mut self.file, d, Some(h), &self.c)
        }

        fn wp(&self) -> u32 {
            get(&self.file, ring::CSB_PTR) & 7
        }

        /// CSB entry `i` of the register copy as (ldw, udw).
        fn entry(&self, i: u32) -> (u32, u32) {
            (
                get(&self.file, ring::CSB + 8 * i),
                get(&self.file, ring::CSB + 8 * i + 4),
            )
        }

        fn status(&self) -> (u32, u32) {
            (
                get(&self.file, ring::EXECLIST_STATUS_LO),
                get(&self.file, ring::EXECLIST_STATUS_HI),
            )
        }
    }

    /// The entry the HWSP holds at CSB slot `i`, and its write pointer.
    fn hw_entry(h: &FakeHwsp, i: usize) -> (u32, u32) {
        (h.dw(0x10 + 2 * i), h.dw(0x11 + 2 * i))
    }

    #[test]
    fn elsp_latch_order_and_submit() {
        let mut r = Rig::new();
        let (d0, d1) = (r.desc(5, 0), r.desc(6, 32));
        // The first three writes only latch, in GVT-g's order: elsp[3 - index].
        assert_eq!(
            r.el.elsp_write(Engine::Rcs, (d1 >> 32) as u32, &r.slice),
            None
        );
        assert_eq!(r.el.elsp_write(Engine::Rcs, d1 as u32, &r.slice), None);
        assert_eq!(
            r.el.elsp_write(Engine::Rcs, (d0 >> 32) as u32, &r.slice),
            None
        );
        assert_eq!(
            r.el.elsp[1..],
            [(d0 >> 32) as u32, d1 as u32, (d1 >> 32) as u32]
        );
        assert_eq!(
            r.el.elsp_write(Engine::Rcs, d0 as u32, &r.slice),
            Some(Latched::Submit([Some(d0), Some(d1)]))
        );
        assert_eq!(r.el.index, 0);
        assert_eq!(r.el.queued(), 1);
        // An empty port 1 is written as 0 and handed over as none.
        assert_eq!(
            r.elsp(Engine::Bcs, d0, 0),
            Some(Latched::Submit([Some(d0), None]))
        );
    }

    fn refused(r: &mut Rig, e: Engine, d0: u64, d1: u64) -> Refusal {
        match r.elsp(e, d0, d1) {
            Some(Latched::Refused(x)) => x,
            other => panic!("not refused: {:?}", other),
        }
    }

    #[test]
    fn elsp_refusals() {
        let mut r = Rig::new();
        let good = r.desc(1, 0);
        assert_eq!(
            refused(&mut r, Engine::Rcs, good & !desc::VALID, good),
            Refusal::Desc0Invalid
        );
        assert_eq!(
            refused(&mut r, Engine::Rcs, good, good & !desc::PRIVILEGE),
            Refusal::NoPrivilege { port: 1 }
        );
        let legacy32 = (good & !desc::MODE_MASK) | (desc::MODE_LEGACY_32B << desc::MODE_SHIFT);
        assert_eq!(
            refused(&mut r, Engine::Rcs, legacy32, 0),
            Refusal::Mode { port: 0, mode: 1 }
        );
        // Below the aperture slice: the host's own memory.
        let host = desc::make(0x1000, 1);
        assert_eq!(
            refused(&mut r, Engine::Rcs, host, 0),
            Refusal::Outside {
                port: 0,
                lrca: 0x1000
            }
        );
        // A render context (22 pages) straddling the slice end; a blitter one (2 pages)
        // at the same place fits, and so does one in the hidden slice.
        let end = (r.slice.aperture_base + r.slice.aperture_size) as u32;
        let near_end = desc::make(end - 2 * lrc::PAGE, 1);
        assert_eq!(
            refused(&mut r, Engine::Rcs, near_end, 0),
            Refusal::Outside {
                port: 0,
                lrca: end - 2 * lrc::PAGE
            }
        );
        assert!(matches!(
            r.elsp(Engine::Bcs, near_end, 0),
            Some(Latched::Submit(_))
        ));
        let hidden = desc::make(r.slice.hidden_base as u32, 2);
        assert!(matches!(
            r.elsp(Engine::Rcs, hidden, 0),
            Some(Latched::Submit(_))
        ));
        assert!(!in_slices(&r.slice, u64::MAX - 10, 4096));
    }

    #[test]
    fn pending_submissions_are_bounded() {
        let mut r = Rig::new();
        let d = r.desc(1, 0);
        for _ in 0..PENDING_LIMIT {
            assert_eq!(
                r.elsp(Engine::Rcs, d, 0),
                Some(Latched::Submit([Some(d), None]))
            );
        }
        assert_eq!(
            r.elsp(Engine::Rcs, d, 0),
            Some(Latched::Refused(Refusal::Busy))
        );
        r.el.taken();
        assert_eq!(
            r.elsp(Engine::Rcs, d, 0),
            Some(Latched::Submit([Some(d), None]))
        );
        assert_eq!(r.el.queued(), PENDING_LIMIT);
        r.el.reset(&mut r.file);
        assert_eq!(r.el.queued(), 0);
    }

    #[test]
    fn idle_to_active_then_active_to_idle() {
        let mut r = Rig::new();
        let h = FakeHwsp::new(false);
        let a = r.desc(0xa, 0);
        assert_eq!(r.wp(), 7);
        assert_eq!(r.sin([Some(a), None], &h), Ok(true));
        assert_eq!(r.wp(), 0);
        assert_eq!(r.entry(0), (csb::IDLE_ACTIVE, 0));
        assert_eq!(hw_entry(&h, 0), (csb::IDLE_ACTIVE, 0));
        assert_eq!(h.dw(0x1f), 0);
        // Slot 0 runs context 0xa; the next submission goes to slot 1.
        assert_eq!(
            r.status(),
            (status::WRITE | status::EL0_VALID | status::EL0_ACTIVE, 0xa)
        );
        assert_eq!(r.sout(a, &h), Ok(true));
        assert_eq!(r.wp(), 1);
        assert_eq!(r.entry(1), (csb::COMPLETE | csb::ACTIVE_IDLE, 0xa));
        assert_eq!(hw_entry(&h, 1), (csb::COMPLETE | csb::ACTIVE_IDLE, 0xa));
        assert_eq!(h.dw(0x1f), 1);
        assert_eq!(r.status(), (status::WRITE, 0));
        // Nothing runs now: a schedule-out is refused and writes nothing.
        assert_eq!(r.sout(a, &h), Err(EINVAL));
        assert_eq!(r.c.csb_update.load(kernel::sync::atomic::Relaxed), 2);
        // Entry then pointer: two stores per entry.
        assert_eq!(h.stores.get(), 4);
    }

    #[test]
    fn element_switch_then_last_element() {
        let mut r = Rig::new();
        let h = FakeHwsp::new(false);
        let (a, b) = (r.desc(0xa, 0), r.desc(0xb, 32));
        assert_eq!(r.sin([Some(a), Some(b)], &h), Ok(true));
        // The second element is not running: its schedule-out is refused.
        assert_eq!(r.sout(b, &h), Err(EINVAL));
        assert_eq!(r.sout(a, &h), Ok(true));
        assert_eq!(r.entry(1), (csb::COMPLETE | csb::ELEMENT_SWITCH, 0xa));
        assert_eq!(r.status().1, 0xb);
        assert_eq!(r.sout(b, &h), Ok(true));
        assert_eq!(r.entry(2), (csb::COMPLETE | csb::ACTIVE_IDLE, 0xb));
        assert_eq!(hw_entry(&h, 2), (csb::COMPLETE | csb::ACTIVE_IDLE, 0xb));
        assert_eq!(r.status(), (status::WRITE, 0));
    }

    #[test]
    fn lite_restore() {
        let mut r = Rig::new();
        let h = FakeHwsp::new(false);
        let a = r.desc(0xa, 0);
        r.sin([Some(a), None], &h).unwrap();
        // The running context again: preempted by itself, the new slot runs.
        assert_eq!(r.sin([Some(a), None], &h), Ok(true));
        assert_eq!(r.entry(1), (csb::PREEMPTED | csb::LITE_RESTORE, 0xa));
        assert_eq!(hw_entry(&h, 1), (csb::PREEMPTED | csb::LITE_RESTORE, 0xa));
        assert_eq!(
            r.status(),
            (
                status::CURRENT | status::EL1_VALID | status::EL1_ACTIVE,
                0xa
            )
        );
        assert_eq!(r.sout(a, &h), Ok(true));
        assert_eq!(r.entry(2), (csb::COMPLETE | csb::ACTIVE_IDLE, 0xa));
    }

    #[test]
    fn pending_pair_starts_after_active_to_idle() {
        let mut r = Rig::new();
        let h = FakeHwsp::new(false);
        let (a, b) = (r.desc(0xa, 0), r.desc(0xb, 32));
        r.sin([Some(a), None], &h).unwrap();
        // Another context waits as the pending slot: no entry, queue full.
        assert_eq!(r.sin([Some(b), None], &h), Ok(false));
        assert_eq!(r.wp(), 0);
        assert_ne!(r.status().0 & status::QUEUE_FULL, 0);
        assert_eq!(r.sin([Some(a), None], &h), Err(EBUSY));
        // A completes: ACTIVE_TO_IDLE for it, then IDLE_TO_ACTIVE for the pending pair.
        assert_eq!(r.sout(a, &h), Ok(true));
        assert_eq!(r.entry(1), (csb::COMPLETE | csb::ACTIVE_IDLE, 0xa));
        assert_eq!(r.entry(2), (csb::IDLE_ACTIVE, 0));
        assert_eq!(hw_entry(&h, 2), (csb::IDLE_ACTIVE, 0));
        assert_eq!(h.dw(0x1f), 2);
        assert_eq!(
            r.status(),
            (
                status::CURRENT | status::EL1_VALID | status::EL1_ACTIVE,
                0xb
            )
        );
        assert_eq!(r.sout(b, &h), Ok(true));
        // Both slots free; the pointers keep their last values, as in GVT-g.
        assert_eq!(r.status(), (status::CURRENT, 0));
    }

    #[test]
    fn write_pointer_wraps_after_six_entries() {
        let mut r = Rig::new();
        let h = FakeHwsp::new(false);
        let a = r.desc(0xa, 0);
        // Three pairs of entries: 0..5.
        for _ in 0..3 {
            r.sin([Some(a), None], &h).unwrap();
            r.sout(a, &h).unwrap();
        }
        assert_eq!(r.wp(), 5);
        assert_eq!(h.dw(0x1f), 5);
        r.sin([Some(a), None], &h).unwrap();
        assert_eq!(r.wp(), 0);
        assert_eq!(h.dw(0x1f), 0);
        assert_eq!(r.entry(0), (csb::IDLE_ACTIVE, 0));
        // i915's reset_csb_pointers: both pointers to 5 (masked); the next entry is 0.
        let ptr = get(&r.file, ring::CSB_PTR);
        let v = 0xffff_0000 | (5 << 8) | 5;
        set(
            &mut r.file,
            ring::CSB_PTR,
            crate::abi::regs::masked_write(ptr, v),
        );
        r.sout(a, &h).unwrap();
        assert_eq!(r.wp(), 0);
        assert_eq!(r.entry(0), (csb::COMPLETE | csb::ACTIVE_IDLE, 0xa));
        assert_eq!((get(&r.file, ring::CSB_PTR) >> 8) & 7, 5);
    }

    #[test]
    fn hwsp_faults_are_counted_and_the_registers_still_move() {
        let mut r = Rig::new();
        let h = FakeHwsp::new(true);
        let a = r.desc(0xa, 0);
        assert_eq!(r.sin([Some(a), None], &h), Ok(true));
        assert_eq!(r.entry(0), (csb::IDLE_ACTIVE, 0));
        assert_eq!(r.c.csb_hwsp_fault.load(kernel::sync::atomic::Relaxed), 1);
        // Without a status page only the register copy is written.
        assert_eq!(r.el.schedule_out(&mut r.file, a, None, &r.c), Ok(true));
        assert_eq!(r.wp(), 1);
        assert_eq!(r.c.csb_hwsp_fault.load(kernel::sync::atomic::Relaxed), 1);
        assert_eq!(h.dw(0x10), 0xdead_beef);
    }
}
