// SPDX-License-Identifier: GPL-2.0

//! The BAR0 register model of a vGPU below 2 MiB (PVINFO apart, `mmio.rs` keeps it): the
//! GEN9 registers an i915-style guest programs, as GVT-g presents them
//! (`handlers.c: init_generic_mmio_info`, `init_skl_mmio_info`).
//!
//! Two tables describe the modelled registers, one row each: the ring registers of an
//! engine ([`RING`], offsets from the engine base, present for RCS and BCS) and the
//! global ones ([`GLOBAL`]). A row says how the register behaves ([`Kind`]: plain,
//! masked, read-only, write-1-to-clear, or a [`Handler`] with side effects) and its
//! power-on value. Offsets come from shared-abi. Everything else below 2 MiB keeps the
//! last value written in the bounded default store ([`store`]), counted by offset.
//!
//! Accesses are dwords; `mmio.rs` splits 8-byte accesses and merges sub-dword writes.
//! A write returns an [`Effect`]: an [`Action`] for the caller to carry out once it has
//! dropped `Vgpu::state`, and whether to raise the vGPU's interrupt, which the caller
//! does under `state` (`Vgpu::raise_irq_locked`).
//!
//! Failsafe ([`failsafe`]): in failsafe every register keeps what is written without side
//! effects, ELSP writes are ignored and counted, no event is raised.

pub(crate) mod store;

use super::{
    execlist::{self, Execlist, Hwsp, Latched, Refusal, RingFile},
    failsafe,
    intr::{self, Intr},
};
use crate::abi::{
    lrc,
    regs::{self, ring},
};
use crate::debugfs::Counters;
use crate::gpu::Engine;
use crate::mm::partition::Slice;
use core::fmt;
use kernel::prelude::*;

/// A side effect a handler register has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Handler {
    /// `RING_ELSP`: the execlist latch ([`execlist`]).
    Elsp,
    /// `RING_MODE_GEN7`: masked, failsafe before PVINFO (`ring_mode_mmio_write`).
    RingMode,
    /// `RING_RESET_CTL`: READY_TO_RESET answers REQUEST_RESET (`ring_reset_ctl_write`).
    ResetCtl,
    /// `RING_HWS_PGA`: only addresses inside the slices (`hws_pga_write`).
    HwsPga,
    /// `RING_IMR`: re-evaluates pending interrupts (`intel_vgpu_reg_imr_handler`).
    RingImr,
    /// A forcewake request, mirrored into its ACK register (`mul_force_wake_write`).
    Forcewake {
        /// BAR0 offset of the ACK register.
        ack: u32,
    },
    /// `GEN6_GDRST`: reset actions, then self-clearing (`gdrst_mmio_write`).
    Gdrst,
    /// `GEN6_PCODE_MAILBOX`: answered at once (`mailbox_write`).
    Pcode,
    /// `GFX_FLSH_CNTL_GEN6`: a GGTT invalidation.
    GfxFlush,
    /// The fence registers: only the vGPU's own (`fence_mmio_read/write`).
    Fence,
    /// The interrupt controller ([`intr`]).
    Intr,
}

/// How a register behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Keeps the last value written (except the row's read-only bits).
    Plain,
    /// Masked: bits 31:16 of a write select which of bits 15:0 change; reads show 0 in
    /// bits 31:16.
    Masked,
    /// Writes are ignored (and counted).
    ReadOnly,
    /// Writing 1 clears a bit.
    W1c,
    /// Side effects, below.
    Handler(Handler),
}

/// One row of a register table.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Row {
    /// BAR0 offset ([`GLOBAL`]) or offset from the engine base ([`RING`]).
    pub(crate) off: u32,
    /// Consecutive dwords the row covers, all alike.
    pub(crate) dwords: u32,
    /// Behaviour.
    pub(crate) kind: Kind,
    /// Bits writes never change (the low half, for a masked register).
    pub(crate) ro: u32,
    /// Power-on value.
    pub(crate) reset: u32,
    /// The i915 name.
    pub(crate) name: &'static str,
}

impl Row {
    const fn new(off: u32, kind: Kind, reset: u32, name: &'static str) -> Self {
        Self {
            off,
            dwords: 1,
            kind,
            ro: 0,
            reset,
            name,
        }
    }

    const fn dwords(self, dwords: u32) -> Self {
        Self { dwords, ..self }
    }

    const fn ro(self, ro: u32) -> Self {
        Self { ro, ..self }
    }

    const fn end(&self) -> u32 {
        self.off + 4 * self.dwords
    }
}

use Handler as H;
use Kind::{Handler as Hd, Masked, Plain, ReadOnly, W1c};

/// `CSB_PTR` at power-on: read pointer 0, write pointer 7 "none yet"
/// (`init_vgpu_execlist`).
const CSB_PTR_RESET: u32 = lrc::csb::PTR_NONE;

/// The ring registers of one engine, by offset from its base, sorted.
const RING_ROWS: [Row; 21] = [
    Row::new(ring::TAIL, Plain, 0, "RING_TAIL"),
    Row::new(ring::HEAD, Plain, 0, "RING_HEAD"),
    Row::new(ring::START, Plain, 0, "RING_START"),
    Row::new(ring::CTL, Plain, 0, "RING_CTL"),
    Row::new(ring::HWS_PGA, Hd(H::HwsPga), 0, "RING_HWS_PGA"),
    // i915 writes ~0 before use (`intel_engine_set_hwsp_writemask`).
    Row::new(ring::HWSTAM, Plain, !0, "RING_HWSTAM"),
    // MODE_IDLE is status: the virtual ring never runs commands from MMIO, it is idle.
    Row::new(ring::MI_MODE, Masked, ring::MI_MODE_IDLE, "RING_MI_MODE").ro(ring::MI_MODE_IDLE),
    Row::new(ring::IMR, Hd(H::RingImr), !0, "RING_IMR"),
    Row::new(ring::EIR, W1c, 0, "RING_EIR"),
    Row::new(ring::EMR, Plain, !0, "RING_EMR"),
    // i915 checks it reads 0 when it enables execlists (`enable_error_interrupt`).
    Row::new(ring::ESR, ReadOnly, 0, "RING_ESR"),
    Row::new(ring::INSTPM, Masked, 0, "RING_INSTPM"),
    Row::new(ring::RESET_CTL, Hd(H::ResetCtl), 0, "RING_RESET_CTL"),
    Row::new(ring::ELSP, Hd(H::Elsp), 0, "RING_ELSP"),
    Row::new(
        ring::EXECLIST_STATUS_LO,
        ReadOnly,
        0,
        "RING_EXECLIST_STATUS",
    )
    .dwords(2),
    Row::new(ring::CONTEXT_CONTROL, Masked, 0, "RING_CONTEXT_CONTROL"),
    Row::new(ring::PDP_LDW, Plain, 0, "GEN8_RING_PDP").dwords(8),
    Row::new(ring::MODE, Hd(H::RingMode), 0, "RING_MODE_GEN7"),
    Row::new(ring::CSB, ReadOnly, 0, "RING_CONTEXT_STATUS_BUF").dwords(2 * ring::CSB_ENTRIES),
    Row::new(
        ring::CSB_PTR,
        Masked,
        CSB_PTR_RESET,
        "RING_CONTEXT_STATUS_PTR",
    ),
    Row::new(ring::CTX_TIMESTAMP, Plain, 0, "RING_CTX_TIMESTAMP"),
];

/// `GEN6_PCODE_ERROR_MASK` (`include/drm/intel/intel_pcode_regs.h`): the command byte
/// of a write, the error code of a read.
const PCODE_ERROR_MASK: u32 = 0xff;
/// `GEN6_PCODE_READ_RC6VIDS`.
const PCODE_READ_RC6VIDS: u32 = 0x5;
/// `GEN9_PCODE_READ_MEM_LATENCY`.
const PCODE_READ_MEM_LATENCY: u32 = 0x6;
/// `SKL_PCODE_CDCLK_CONTROL`.
const PCODE_CDCLK_CONTROL: u32 = 0x7;
/// `SKL_CDCLK_READY_FOR_CHANGE`.
const CDCLK_READY_FOR_CHANGE: u32 = 0x1;

/// The global registers, by BAR0 offset, sorted.
const GLOBAL_ROWS: [Row; 15] = [
    Row::new(
        regs::FORCEWAKE_ACK_RENDER,
        ReadOnly,
        0,
        "FORCEWAKE_ACK_RENDER_GEN9",
    ),
    Row::new(
        regs::FORCEWAKE_ACK_MEDIA,
        ReadOnly,
        0,
        "FORCEWAKE_ACK_MEDIA_GEN9",
    ),
    Row::new(regs::PRIVATE_PAT_LO, Plain, 0, "GEN8_PRIVATE_PAT").dwords(2),
    Row::new(regs::GDRST, Hd(H::Gdrst), 0, "GEN6_GDRST"),
    Row::new(
        regs::FORCEWAKE_GT,
        Hd(H::Forcewake {
            ack: regs::FORCEWAKE_ACK_GT,
        }),
        0,
        "FORCEWAKE_GT_GEN9",
    ),
    Row::new(
        regs::FORCEWAKE_MEDIA,
        Hd(H::Forcewake {
            ack: regs::FORCEWAKE_ACK_MEDIA,
        }),
        0,
        "FORCEWAKE_MEDIA_GEN9",
    ),
    Row::new(
        regs::FORCEWAKE_RENDER,
        Hd(H::Forcewake {
            ack: regs::FORCEWAKE_ACK_RENDER,
        }),
        0,
        "FORCEWAKE_RENDER_GEN9",
    ),
    Row::new(regs::MASTER_IRQ, Hd(H::Intr), 0, "GEN8_MASTER_IRQ"),
    Row::new(regs::GT_ISR, Hd(H::Intr), 0, "GEN8_GT_ISR/IMR/IIR/IER").dwords(4 * regs::GT_BANKS),
    Row::new(regs::FENCE_BASE, Hd(H::Fence), 0, "FENCE_REG_GEN6").dwords(2 * regs::FENCES),
    Row::new(
        regs::GFX_FLSH_CNTL,
        Hd(H::GfxFlush),
        0,
        "GFX_FLSH_CNTL_GEN6",
    ),
    Row::new(regs::FORCEWAKE_ACK_GT, ReadOnly, 0, "FORCEWAKE_ACK_GT_GEN9"),
    Row::new(regs::PCODE_MAILBOX, Hd(H::Pcode), 0, "GEN6_PCODE_MAILBOX"),
    Row::new(regs::PCODE_DATA, Plain, 0, "GEN6_PCODE_DATA"),
    Row::new(regs::PCODE_DATA1, Plain, 0, "GEN6_PCODE_DATA1"),
];

/// The ring table, as the model uses it at run time.
pub(crate) static RING: [Row; RING_ROWS.len()] = RING_ROWS;
/// The global table, as the model uses it at run time.
pub(crate) static GLOBAL: [Row; GLOBAL_ROWS.len()] = GLOBAL_ROWS;

/// Whether `rows` are sorted, dword aligned and do not overlap, ending below `limit`.
const fn well_formed(rows: &[Row], limit: u32) -> bool {
    let mut i = 0;
    while i < rows.len() {
        let r = &rows[i];
        if r.off % 4 != 0 || r.dwords == 0 || r.end() > limit {
            return false;
        }
        if i > 0 && rows[i - 1].end() > r.off {
            return false;
        }
        i += 1;
    }
    true
}

const _: () = assert!(well_formed(&RING_ROWS, ring::SPAN));
const _: () = assert!(well_formed(&GLOBAL_ROWS, regs::MMIO_SIZE));
// Handlers decode their offsets themselves; these must agree with the rows.
const _: () = assert!(regs::GT_ISR + 0x10 * regs::GT_BANKS <= regs::FENCE_BASE);
const _: () = assert!(ring::CSB_PTR == ring::CSB + 8 * ring::CSB_ENTRIES);

/// Dwords of storage the global rows take, and where each row's first dword sits.
const fn global_layout() -> ([usize; GLOBAL_ROWS.len()], usize) {
    let mut base = [0; GLOBAL_ROWS.len()];
    let mut n = 0;
    let mut i = 0;
    while i < GLOBAL_ROWS.len() {
        base[i] = n;
        n += GLOBAL_ROWS[i].dwords as usize;
        i += 1;
    }
    (base, n)
}

const GLOBAL_BASE: [usize; GLOBAL_ROWS.len()] = global_layout().0;
const GLOBAL_DWORDS: usize = global_layout().1;

/// Engines named by one request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Engines(u8);

impl Engines {
    fn with(self, e: Engine) -> Self {
        Self(self.0 | (1 << e.index()))
    }

    /// Whether `e` is named.
    pub(crate) fn contains(self, e: Engine) -> bool {
        self.0 & (1 << e.index()) != 0
    }

    /// The engines named.
    pub(crate) fn iter(self) -> impl Iterator<Item = Engine> {
        Engine::ALL.into_iter().filter(move |e| self.contains(*e))
    }
}

/// What the caller of a register access must do once it dropped `Vgpu::state`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// An ELSP pair passed the checks: the submission path prepares it (and then calls
    /// [`Regs::taken`]).
    Submit {
        /// The engine.
        engine: Engine,
        /// Descriptor 0, and descriptor 1 if valid.
        descs: [Option<u64>; 2],
    },
    /// An ELSP pair was refused; the guest already sees `RING_EIR` and the CS error
    /// interrupt.
    Refused {
        /// The engine.
        engine: Engine,
        /// Why.
        reason: Refusal,
    },
    /// `GDRST` reset these engines (not a full reset).
    EngineReset(Engines),
    /// `GDRST` asked for a full GPU reset.
    FullReset,
    /// `GFX_FLSH_CNTL` was written: invalidate the GGTT.
    GgttInvalidate,
    /// The guest wrote PVINFO `g2v_notify`.
    G2vNotify {
        /// The notification.
        notify: u32,
        /// PVINFO `pdp[0..4]` at the time (the PML4 is `pdp[0]`).
        pdp: [u64; 4],
    },
    /// The vGPU entered failsafe.
    Failsafe(failsafe::Reason),
}

/// What one register access did besides reading or storing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Effect {
    /// For the caller, after `state` is dropped.
    pub(crate) action: Option<Action>,
    /// The caller raises the vGPU's interrupt, under `state`.
    pub(crate) raise: bool,
}

impl Effect {
    fn action(a: Action) -> Self {
        Self {
            action: Some(a),
            raise: false,
        }
    }

    fn raise(raise: bool) -> Self {
        Self {
            action: None,
            raise,
        }
    }
}

/// Where an offset's storage is.
#[derive(Clone, Copy, Debug)]
enum Place {
    /// Dword `rel / 4` of the engine's ring file.
    Ring(Engine, u32),
    /// Dword `slot` of the global storage.
    Global(usize),
}

/// A modelled register found by offset.
#[derive(Clone, Copy, Debug)]
struct Loc {
    row: &'static Row,
    place: Place,
    /// The BAR0 offset.
    off: u32,
}

/// The row of `rows` that covers `off`, and the dword index in it.
fn find(rows: &'static [Row], off: u32) -> Option<(usize, &'static Row, u32)> {
    let i = rows.partition_point(|r| r.off <= off).checked_sub(1)?;
    let r = rows.get(i)?;
    (off < r.end()).then_some((i, r, (off - r.off) / 4))
}

/// The modelled register at dword offset `off`, if any.
fn locate(off: u32) -> Option<Loc> {
    if let Some((e, rel)) = Engine::from_offset(off) {
        let (_, row, _) = find(&RING, rel)?;
        return Some(Loc {
            row,
            place: Place::Ring(e, rel),
            off,
        });
    }
    let (i, row, k) = find(&GLOBAL, off)?;
    Some(Loc {
        row,
        place: Place::Global(GLOBAL_BASE.get(i)? + k as usize),
        off,
    })
}

/// Whether `v` enables `bits` of a masked register (`IS_MASKED_BITS_ENABLED`).
const fn enables(v: u32, bits: u32) -> bool {
    v & regs::masked_enable(bits) == regs::masked_enable(bits)
}

/// A masked write that cannot change the bits in `ro`.
const fn masked(old: u32, v: u32, ro: u32) -> u32 {
    regs::masked_write(old, v & !(ro << 16))
}

/// One engine: its register file and its execlist port.
struct Ring {
    file: KBox<RingFile>,
    el: Execlist,
}

/// The register model of one vGPU.
pub(crate) struct Regs {
    rings: [Ring; Engine::COUNT],
    global: KBox<[u32; GLOBAL_DWORDS]>,
    intr: Intr,
    store: store::Store,
    slice: Slice,
    /// The guest read PVINFO since power-on (GVT-g `pv_notified`).
    pv_read: bool,
    failsafe: Option<failsafe::Reason>,
}

impl Regs {
    /// The power-on state of the vGPU with slice `s`.
    ///
    /// # Errors
    ///
    /// `ENOMEM`.
    pub(crate) fn new(s: &Slice) -> Result<Self> {
        let ring = || -> Result<Ring> {
            Ok(Ring {
                file: KBox::zeroed(GFP_KERNEL)?,
                el: Execlist::new(),
            })
        };
        let mut r = Self {
            rings: [ring()?, ring()?],
            global: KBox::zeroed(GFP_KERNEL)?,
            intr: Intr::new(),
            store: store::Store::new()?,
            slice: *s,
            pv_read: false,
            failsafe: None,
        };
        r.reset();
        Ok(r)
    }

    fn ring_defaults(ring: &mut Ring) {
        for row in RING.iter() {
            for k in 0..row.dwords {
                execlist::set(&mut ring.file, row.off + 4 * k, row.reset);
            }
        }
        ring.el.reset(&mut ring.file);
    }

    /// The global rows back to power-on values, fences too if `fences`.
    fn global_defaults(&mut self, fences: bool) {
        for (row, base) in GLOBAL.iter().zip(GLOBAL_BASE) {
            if row.kind == Hd(H::Fence) && !fences {
                continue;
            }
            let n = row.dwords as usize;
            if let Some(s) = self.global.get_mut(base..base + n) {
                s.fill(row.reset);
            }
        }
    }

    /// Power-on (open, `VFIO_DEVICE_RESET`, close): every register, the interrupt
    /// controller, the execlists and the default store back to their reset values; the
    /// guest has not read PVINFO; failsafe is left.
    pub(crate) fn reset(&mut self) {
        for ring in self.rings.iter_mut() {
            Self::ring_defaults(ring);
        }
        self.global_defaults(true);
        self.intr.reset();
        self.store.clear();
        self.pv_read = false;
        self.failsafe = None;
    }

    /// A full GPU reset through `GDRST` (GVT-g `intel_gvt_reset_vgpu_locked` with
    /// `dmlr` false): the engines, their execlists and the registers below the
    /// interrupt block back to reset values. The interrupt controller, the fences
    /// ("fence will not be reset during virtual reset"), the PVINFO-read flag and
    /// failsafe stay, as does config space, which is not ours.
    pub(crate) fn reset_gt(&mut self) {
        for ring in self.rings.iter_mut() {
            Self::ring_defaults(ring);
        }
        self.global_defaults(false);
        self.store.zero_below(regs::MASTER_IRQ);
    }

    /// An engine reset (`GDRST` engine bit): the engine's execlist state
    /// (`intel_vgpu_reset_submission`, `init_vgpu_execlist`); registers keep values.
    pub(crate) fn reset_engine(&mut self, e: Engine) {
        if let Some(r) = self.rings.get_mut(e.index()) {
            r.el.reset(&mut r.file);
        }
    }

    /// The guest read PVINFO: it is PV-aware (GVT-g `pvinfo_mmio_read`).
    pub(crate) fn note_pvinfo_read(&mut self) {
        self.pv_read = true;
    }

    /// Why the vGPU is in failsafe, if it is.
    pub(crate) fn failsafe(&self) -> Option<failsafe::Reason> {
        self.failsafe
    }

    /// Sends the vGPU to failsafe from outside the register model (the submission
    /// path's repeat-offender policy); nothing if it is there already.
    pub(crate) fn force_failsafe(&mut self, r: failsafe::Reason, c: &Counters) {
        let _ = self.enter_failsafe(r, c);
    }

    fn enter_failsafe(&mut self, r: failsafe::Reason, c: &Counters) -> Effect {
        if self.failsafe.is_some() {
            return Effect::default();
        }
        self.failsafe = Some(r);
        Counters::inc(&c.failsafe);
        Effect::action(Action::Failsafe(r))
    }

    fn ring(&self, e: Engine) -> Option<&Ring> {
        self.rings.get(e.index())
    }

    fn ring_mut(&mut self, e: Engine) -> Option<&mut Ring> {
        self.rings.get_mut(e.index())
    }

    /// The register of engine `e` at `rel` from its base, as stored.
    pub(crate) fn ring_reg(&self, e: Engine, rel: u32) -> u32 {
        self.ring(e).map_or(0, |r| execlist::get(&r.file, rel))
    }

    /// The GGTT address of engine `e`'s status page, as the guest set it (checked to
    /// lie in its slices, or 0).
    pub(crate) fn hws_pga(&self, e: Engine) -> u32 {
        self.ring_reg(e, ring::HWS_PGA)
    }

    /// Fence register `i` of the guest (0-based, below the slice's fence count) as a
    /// 64-bit value; the lead programs host fence `fence_base + i` with it.
    pub(crate) fn fence(&self, i: u32) -> Option<u64> {
        if i >= self.slice.fences {
            return None;
        }
        let lo = self.global_at(regs::FENCE_BASE + 8 * i)?;
        let hi = self.global_at(regs::FENCE_BASE + 8 * i + 4)?;
        Some((u64::from(hi) << 32) | u64::from(lo))
    }

    fn global_at(&self, off: u32) -> Option<u32> {
        match locate(off)?.place {
            Place::Global(slot) => self.global.get(slot).copied(),
            Place::Ring(..) => None,
        }
    }

    fn load(&self, l: &Loc) -> u32 {
        match l.place {
            Place::Ring(e, rel) => self.ring_reg(e, rel),
            Place::Global(slot) => self.global.get(slot).copied().unwrap_or(0),
        }
    }

    fn store(&mut self, l: &Loc, v: u32) {
        match l.place {
            Place::Ring(e, rel) => {
                if let Some(r) = self.ring_mut(e) {
                    execlist::set(&mut r.file, rel, v);
                }
            }
            Place::Global(slot) => {
                if let Some(x) = self.global.get_mut(slot) {
                    *x = v;
                }
            }
        }
    }

    /// The guest fence index of a fence register offset.
    fn fence_index(off: u32) -> u32 {
        off.wrapping_sub(regs::FENCE_BASE) / 8
    }

    /// Reads the dword at BAR0 offset `off` (4-byte aligned, below 2 MiB, outside
    /// PVINFO). Returns the value, whether a modelled register answered, and the effect
    /// (a read only has one when a fence access sends the vGPU to failsafe).
    pub(crate) fn read32(&mut self, off: u32, c: &Counters) -> (u32, bool, Effect) {
        let Some(l) = locate(off) else {
            return (self.store.read(off, c), false, Effect::default());
        };
        let (v, fx) = match l.row.kind {
            // Write-only port (GVT-g never stores the dwords in the register).
            Hd(H::Elsp) => (0, Effect::default()),
            Hd(H::Intr) => (self.intr.read(off), Effect::default()),
            Hd(H::Fence) if Self::fence_index(off) >= self.slice.fences => {
                Counters::inc(&c.fence_dropped);
                (0, self.fence_outside(c))
            }
            _ => (self.load(&l), Effect::default()),
        };
        (v, true, fx)
    }

    /// `sanitize_fence_mmio_access`: outside the vGPU's fences before PVINFO is read,
    /// the guest is not PV-aware.
    fn fence_outside(&mut self, c: &Counters) -> Effect {
        if self.pv_read {
            return Effect::default();
        }
        self.enter_failsafe(failsafe::Reason::FenceBeforePvinfo, c)
    }

    /// Writes the dword `v` at BAR0 offset `off` (4-byte aligned, below 2 MiB, outside
    /// PVINFO). Returns whether a modelled register took it, and the effect.
    pub(crate) fn write32(&mut self, off: u32, v: u32, c: &Counters) -> (bool, Effect) {
        let Some(l) = locate(off) else {
            self.store.write(off, v, c);
            return (false, Effect::default());
        };
        if self.failsafe.is_some() {
            self.write_failsafe(&l, v, c);
            return (true, Effect::default());
        }
        let old = self.load(&l);
        let fx = match l.row.kind {
            Plain => {
                self.store(&l, (old & l.row.ro) | (v & !l.row.ro));
                Effect::default()
            }
            Masked => {
                self.store(&l, masked(old, v, l.row.ro));
                Effect::default()
            }
            ReadOnly => {
                Counters::inc(&c.reg_ro_write);
                Effect::default()
            }
            W1c => {
                self.store(&l, old & !v);
                Effect::default()
            }
            Hd(h) => self.handle(h, &l, old, v, c),
        };
        (true, fx)
    }

    /// A write of `bytes` at byte `at` (0..3) of the dword at `off`: merged into the
    /// value for plain and unmodelled registers; dropped and counted for the others,
    /// whose side effects need the whole dword.
    pub(crate) fn write_part(&mut self, off: u32, at: usize, bytes: &[u8], c: &Counters) -> bool {
        let merge = |old: u32| {
            let mut b = old.to_le_bytes();
            if let Some(dst) = b.get_mut(at..at + bytes.len()) {
                dst.copy_from_slice(bytes);
            }
            u32::from_le_bytes(b)
        };
        match locate(off) {
            None => {
                let v = merge(self.store.peek(off));
                self.store.write(off, v, c);
                false
            }
            Some(l) if l.row.kind == Plain => {
                let old = self.load(&l);
                let v = merge(old);
                self.store(&l, (old & l.row.ro) | (v & !l.row.ro));
                true
            }
            Some(_) => {
                Counters::inc(&c.reg_partial);
                true
            }
        }
    }

    /// Failsafe: the value is stored as written, without side effects; ELSP writes are
    /// ignored; read-only registers and other vGPUs' fences stay as they are.
    fn write_failsafe(&mut self, l: &Loc, v: u32, c: &Counters) {
        match l.row.kind {
            ReadOnly => Counters::inc(&c.reg_ro_write),
            Hd(H::Elsp) => Counters::inc(&c.elsp_failsafe),
            Hd(H::Intr) => self.intr.store_raw(l.off, v),
            Hd(H::Fence) if Self::fence_index(l.off) >= self.slice.fences => {
                Counters::inc(&c.fence_dropped)
            }
            _ => self.store(l, v),
        }
    }

    fn handle(&mut self, h: Handler, l: &Loc, old: u32, v: u32, c: &Counters) -> Effect {
        let engine = match l.place {
            Place::Ring(e, _) => Some(e),
            Place::Global(_) => None,
        };
        match (h, engine) {
            (H::Elsp, Some(e)) => self.elsp(e, v, c),
            (H::RingMode, Some(e)) => {
                // GVT-g strips bit 0 and sends a guest that enables it to failsafe.
                let bit0 = regs::masked_enable(1);
                self.store(l, masked(old, v & !bit0, l.row.ro));
                if enables(v, 1) {
                    return self.enter_failsafe(failsafe::Reason::ModeBit0(e), c);
                }
                let on =
                    enables(v, ring::MODE_PPGTT_ENABLE) || enables(v, ring::MODE_RUN_LIST_ENABLE);
                if on && !self.pv_read {
                    return self.enter_failsafe(failsafe::Reason::ModeBeforePvinfo(e), c);
                }
                Effect::default()
            }
            (H::ResetCtl, Some(_)) => {
                // Only REQUEST_RESET is writable; READY_TO_RESET follows a request or
                // its withdrawal (`ring_reset_ctl_write`).
                let req = regs::masked_write(old, v) & ring::RESET_CTL_REQUEST;
                let ready = if v & (ring::RESET_CTL_REQUEST << 16) != 0 {
                    if req != 0 {
                        Counters::inc(&c.reset_ctl);
                        ring::RESET_CTL_READY
                    } else {
                        0
                    }
                } else {
                    old & ring::RESET_CTL_READY
                };
                self.store(l, req | ready);
                Effect::default()
            }
            (H::HwsPga, Some(_)) => {
                if v != 0 && !execlist::in_slices(&self.slice, u64::from(v), u64::from(lrc::PAGE)) {
                    Counters::inc(&c.hws_pga_refused);
                } else {
                    self.store(l, v);
                }
                Effect::default()
            }
            (H::RingImr, Some(_)) => {
                self.store(l, v);
                let raise = self.intr.check_pending();
                self.injected(raise, &c.inject_reg, c)
            }
            (H::Forcewake { ack }, None) => {
                // CALC_MODE_MASK_REG: the mask bits stay in the high half.
                let new = (v & 0xffff_0000) | (old & 0xffff & !(v >> 16)) | (v & (v >> 16));
                self.store(l, new);
                if let Some(a) = locate(ack) {
                    self.store(&a, new & 0xffff);
                }
                Counters::inc(&c.forcewake);
                Effect::default()
            }
            (H::Gdrst, None) => {
                Counters::inc(&c.gdrst);
                // Self-clearing: the reset is done when the write returns.
                self.store(l, 0);
                if v & regs::GRDOM_FULL != 0 {
                    return Effect::action(Action::FullReset);
                }
                let es = Engine::ALL
                    .into_iter()
                    .filter(|e| v & e.gdrst_bit() != 0)
                    .fold(Engines::default(), Engines::with);
                if es == Engines::default() {
                    return Effect::default();
                }
                Effect::action(Action::EngineReset(es))
            }
            (H::Pcode, None) => {
                Counters::inc(&c.pcode);
                // `mailbox_write` on SKL: the answers GVT-g gives, READY and the error
                // code clear at once.
                if let Some(d) = locate(regs::PCODE_DATA) {
                    let data = self.load(&d);
                    let data = match v & PCODE_ERROR_MASK {
                        PCODE_READ_MEM_LATENCY if data == 0 => 0x1e1a_1100,
                        PCODE_READ_MEM_LATENCY => 0x6151_4b3d,
                        PCODE_CDCLK_CONTROL => CDCLK_READY_FOR_CHANGE,
                        PCODE_READ_RC6VIDS => data | 1,
                        _ => data,
                    };
                    self.store(&d, data);
                }
                self.store(l, v & !(regs::PCODE_READY | PCODE_ERROR_MASK));
                Effect::default()
            }
            (H::GfxFlush, None) => {
                Counters::inc(&c.ggtt_invalidate);
                self.store(l, v);
                Effect::action(Action::GgttInvalidate)
            }
            (H::Fence, None) => {
                if Self::fence_index(l.off) >= self.slice.fences {
                    Counters::inc(&c.fence_dropped);
                    return self.fence_outside(c);
                }
                Counters::inc(&c.fence_write);
                self.store(l, v);
                Effect::default()
            }
            (H::Intr, None) => {
                let raise = self.intr.write(l.off, v);
                self.injected(raise, &c.inject_reg, c)
            }
            // A handler in the wrong table: a bug, caught by the KUnit table test.
            _ => Effect::default(),
        }
    }

    fn injected(
        &self,
        raise: bool,
        why: &kernel::sync::atomic::Atomic<u64>,
        c: &Counters,
    ) -> Effect {
        if raise {
            Counters::inc(&c.irq_injected);
            Counters::inc(why);
        }
        Effect::raise(raise)
    }

    fn elsp(&mut self, e: Engine, v: u32, c: &Counters) -> Effect {
        Counters::inc(&c.elsp_write);
        let slice = self.slice;
        let Some(r) = self.ring_mut(e) else {
            return Effect::default();
        };
        match r.el.elsp_write(e, v, &slice) {
            None => Effect::default(),
            Some(Latched::Submit(descs)) => {
                Counters::inc(&c.elsp_submit);
                Effect::action(Action::Submit { engine: e, descs })
            }
            Some(Latched::Refused(reason)) => {
                Counters::inc(&c.elsp_refused);
                Counters::inc(match reason {
                    Refusal::Desc0Invalid => &c.elsp_refused_invalid,
                    Refusal::NoPrivilege { .. } => &c.elsp_refused_privilege,
                    Refusal::Mode { .. } => &c.elsp_refused_mode,
                    Refusal::Outside { .. } => &c.elsp_refused_range,
                    Refusal::Busy => &c.elsp_refused_busy,
                });
                let raise = self.report_error(e, ring::EIR_INSTRUCTION, c);
                Effect {
                    action: Some(Action::Refused { engine: e, reason }),
                    raise,
                }
            }
        }
    }

    /// The submission path took one pair [`Action::Submit`] handed over on `e`
    /// (prepared or refused it): the engine's bound has room again.
    pub(crate) fn taken(&mut self, e: Engine) {
        if let Some(r) = self.ring_mut(e) {
            r.el.taken();
        }
    }

    /// An interrupt event on `e`: `bits` of its half of GT bank 0
    /// (`regs::GT_USER_INTERRUPT`, `GT_CONTEXT_SWITCH`, `GT_CS_MASTER_ERROR`). Returns
    /// whether the caller must raise the vGPU's interrupt. Nothing happens in failsafe.
    pub(crate) fn event(&mut self, e: Engine, bits: u32, c: &Counters) -> bool {
        if self.failsafe.is_some() {
            return false;
        }
        let mut why = &c.inject_user;
        if bits & regs::GT_USER_INTERRUPT != 0 {
            Counters::inc(&c.event_user);
        }
        if bits & regs::GT_CONTEXT_SWITCH != 0 {
            Counters::inc(&c.event_ctx_switch);
            why = &c.inject_ctx_switch;
        }
        if bits & regs::GT_CS_MASTER_ERROR != 0 {
            Counters::inc(&c.event_error);
            why = &c.inject_error;
        }
        let raise = self.intr.event(e, bits);
        self.injected(raise, why, c).raise
    }

    /// Makes an error on `e` visible to the guest: `eir` bits
    /// (`ring::EIR_INSTRUCTION`, `EIR_PAGE_TABLE`, `EIR_HANG`) in `RING_EIR` and the CS
    /// master error event, which i915 reads in `execlists_irq_handler`. Returns whether
    /// the caller must raise the vGPU's interrupt. `RING_EMR` is not applied: every
    /// refusal is shown at once (design, "A refused workload").
    pub(crate) fn report_error(&mut self, e: Engine, eir: u32, c: &Counters) -> bool {
        if self.failsafe.is_some() {
            return false;
        }
        if let Some(r) = self.ring_mut(e) {
            let old = execlist::get(&r.file, ring::EIR);
            execlist::set(&mut r.file, ring::EIR, old | eir);
        }
        self.event(e, regs::GT_CS_MASTER_ERROR, c)
    }

    /// Emulates the schedule-in of `pair` on `e` ([`Execlist::schedule_in`]) and raises
    /// the context-switch event once if entries were written. Returns whether the caller
    /// must raise the vGPU's interrupt. In failsafe nothing happens.
    ///
    /// # Errors
    ///
    /// `EBUSY` if both virtual slots are taken.
    pub(crate) fn schedule_in(
        &mut self,
        e: Engine,
        pair: [Option<u64>; 2],
        hwsp: Option<&dyn Hwsp>,
        c: &Counters,
    ) -> Result<bool> {
        if self.failsafe.is_some() {
            return Ok(false);
        }
        let r = self.ring_mut(e).ok_or(EINVAL)?;
        let wrote = r.el.schedule_in(&mut r.file, pair, hwsp, c)?;
        Ok(wrote && self.event(e, regs::GT_CONTEXT_SWITCH, c))
    }

    /// Emulates the schedule-out of the running context `desc` on `e`
    /// ([`Execlist::schedule_out`]), with one context-switch event for its entries.
    /// Returns whether the caller must raise the vGPU's interrupt. In failsafe nothing
    /// happens.
    ///
    /// # Errors
    ///
    /// `EINVAL` if `desc` is not the running context.
    pub(crate) fn schedule_out(
        &mut self,
        e: Engine,
        desc: u64,
        hwsp: Option<&dyn Hwsp>,
        c: &Counters,
    ) -> Result<bool> {
        if self.failsafe.is_some() {
            return Ok(false);
        }
        let r = self.ring_mut(e).ok_or(EINVAL)?;
        let wrote = r.el.schedule_out(&mut r.file, desc, hwsp, c)?;
        Ok(wrote && self.event(e, regs::GT_CONTEXT_SWITCH, c))
    }

    /// Writes the register state for debugfs `regs`.
    pub(crate) fn dump(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.failsafe {
            Some(r) => writeln!(f, "failsafe {r}")?,
            None => writeln!(f, "failsafe none")?,
        }
        writeln!(f, "pvinfo_read {}", self.pv_read)?;
        for e in Engine::ALL {
            let Some(r) = self.ring(e) else { continue };
            writeln!(f, "{} base {:#x}", e.name(), e.base())?;
            for row in RING.iter() {
                for k in 0..row.dwords {
                    let rel = row.off + 4 * k;
                    let v = match row.kind {
                        Hd(H::Elsp) => continue,
                        _ => execlist::get(&r.file, rel),
                    };
                    if row.dwords == 1 {
                        writeln!(f, "  {:<24} {:#07x} {:#010x}", row.name, rel, v)?;
                    } else {
                        writeln!(f, "  {:<20}[{:>2}] {:#07x} {:#010x}", row.name, k, rel, v)?;
                    }
                }
            }
            r.el.dump(f)?;
        }
        for (row, base) in GLOBAL.iter().zip(GLOBAL_BASE) {
            match row.kind {
                Hd(H::Intr) => continue,
                Hd(H::Fence) => {
                    for i in 0..self.slice.fences {
                        let v = self.fence(i).unwrap_or(0);
                        writeln!(f, "fence {:<2} {:#018x}", i, v)?;
                    }
                }
                _ => {
                    for k in 0..row.dwords as usize {
                        let v = self.global.get(base + k).copied().unwrap_or(0);
                        writeln!(
                            f,
                            "{:<26} {:#08x} {:#010x}",
                            row.name,
                            row.off as usize + 4 * k,
                            v
                        )?;
                    }
                }
            }
        }
        fmt::Display::fmt(&self.intr, f)
    }

    /// Writes the most accessed unmodelled offsets for debugfs `unmodelled`.
    pub(crate) fn dump_unmodelled(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "tracked {} of {}", self.store.len(), store::CAP)?;
        self.store.top(f)
    }
}

#[kunit_tests(gvtpv_host_regs)]
mod tests {
    use super::*;
    use crate::mm::partition::Partition;
    use crate::vgpu::types::TYPES;
    use kernel::sync::atomic::Relaxed;

    const RCS: u32 = regs::RCS_BASE;
    const BCS: u32 = regs::BCS_BASE;

    struct Rig {
        r: KBox<Regs>,
        c: Counters,
    }

    impl Rig {
        fn new() -> Self {
            let mut p = Partition::new();
            let s = p.alloc(&TYPES[0].request).unwrap();
            Self {
                r: KBox::new(Regs::new(&s).unwrap(), GFP_KERNEL).unwrap(),
                c: Counters::default(),
            }
        }

        fn rd(&mut self, off: u32) -> u32 {
            self.r.read32(off, &self.c).0
        }

        fn wr(&mut self, off: u32, v: u32) -> Effect {
            self.r.write32(off, v, &self.c).1
        }

        fn n(c: &kernel::sync::atomic::Atomic<u64>) -> u64 {
            c.load(Relaxed)
        }
    }

    #[test]
    fn tables_are_consistent() {
        // Ring handlers only in the ring table, global ones only in the global table.
        for row in RING.iter() {
            if let Hd(h) = row.kind {
                assert!(matches!(
                    h,
                    H::Elsp | H::RingMode | H::ResetCtl | H::HwsPga | H::RingImr
                ));
            }
        }
        for row in GLOBAL.iter() {
            if let Hd(h) = row.kind {
                assert!(!matches!(
                    h,
                    H::Elsp | H::RingMode | H::ResetCtl | H::HwsPga | H::RingImr
                ));
            }
            if let Hd(H::Intr) = row.kind {
                for k in 0..row.dwords {
                    assert!(intr::contains(row.off + 4 * k));
                }
            }
        }
        // Every forcewake ACK is a row of its own.
        for row in GLOBAL.iter() {
            if let Hd(H::Forcewake { ack }) = row.kind {
                assert_eq!(locate(ack).unwrap().row.kind, ReadOnly);
            }
        }
        assert!(locate(RCS + ring::CSB + 44).is_some());
        assert!(locate(RCS + ring::CSB_PTR).is_some());
        assert!(locate(RCS + ring::CSB_PTR + 4).is_none());
        assert!(locate(BCS + ring::PDP_UDW + 24).is_some());
        assert!(locate(0x2000).is_none());
        assert!(locate(regs::FENCE_BASE + 8 * regs::FENCES).is_none());
    }

    #[test]
    fn forcewake_ack_handshake() {
        let mut t = Rig::new();
        for (req, ack) in [
            (regs::FORCEWAKE_RENDER, regs::FORCEWAKE_ACK_RENDER),
            (regs::FORCEWAKE_GT, regs::FORCEWAKE_ACK_GT),
            (regs::FORCEWAKE_MEDIA, regs::FORCEWAKE_ACK_MEDIA),
        ] {
            assert_eq!(t.rd(ack), 0);
            // i915: fw_domain_reset, then get (set KERNEL, wait for the ack) and put.
            t.wr(req, regs::masked_disable(0xffff));
            assert_eq!(t.rd(ack), 0);
            t.wr(req, regs::masked_enable(regs::FORCEWAKE_KERNEL));
            assert_eq!(t.rd(ack) & regs::FORCEWAKE_KERNEL, regs::FORCEWAKE_KERNEL);
            // A write without the bit's mask leaves it set.
            t.wr(req, 0);
            assert_eq!(t.rd(ack), regs::FORCEWAKE_KERNEL);
            t.wr(req, regs::masked_disable(regs::FORCEWAKE_KERNEL));
            assert_eq!(t.rd(ack), 0);
            // The ACK is read only.
            t.wr(ack, 1);
            assert_eq!(t.rd(ack), 0);
        }
        assert_eq!(Rig::n(&t.c.forcewake), 12);
        assert_eq!(Rig::n(&t.c.reg_ro_write), 3);
    }

    #[test]
    fn masked_registers() {
        let mut t = Rig::new();
        for base in [RCS, BCS] {
            let mi = base + ring::MI_MODE;
            // MODE_IDLE is status: set at reset, no write changes it.
            assert_eq!(t.rd(mi), ring::MI_MODE_IDLE);
            t.wr(mi, regs::masked_enable(ring::MI_MODE_STOP_RING));
            assert_eq!(t.rd(mi), ring::MI_MODE_IDLE | ring::MI_MODE_STOP_RING);
            t.wr(
                mi,
                regs::masked_disable(ring::MI_MODE_IDLE | ring::MI_MODE_STOP_RING),
            );
            assert_eq!(t.rd(mi), ring::MI_MODE_IDLE);
            // No mask bits: nothing changes.
            t.wr(base + ring::INSTPM, 0xffff);
            assert_eq!(t.rd(base + ring::INSTPM), 0);
            t.wr(base + ring::INSTPM, regs::masked_enable(1 << 6));
            assert_eq!(t.rd(base + ring::INSTPM), 1 << 6);
            t.wr(base + ring::CONTEXT_CONTROL, regs::masked_enable(0x9));
            t.wr(base + ring::CONTEXT_CONTROL, regs::masked_disable(0x1));
            assert_eq!(t.rd(base + ring::CONTEXT_CONTROL), 0x8);
        }
        // The CSB pointer: i915's reset_csb_pointers sets both to 5.
        let ptr = RCS + ring::CSB_PTR;
        assert_eq!(t.rd(ptr), 7);
        t.wr(ptr, 0xffff_0000 | (5 << 8) | 5);
        assert_eq!(t.rd(ptr), 0x0505);
        // Plain, read-only and write-1-to-clear neighbours.
        t.wr(RCS + ring::TAIL, 0x1238);
        assert_eq!(t.rd(RCS + ring::TAIL), 0x1238);
        t.wr(RCS + ring::EXECLIST_STATUS_LO, !0);
        assert_eq!(t.rd(RCS + ring::EXECLIST_STATUS_LO), 0);
        assert!(!t.r.report_error(
            Engine::Rcs,
            ring::EIR_INSTRUCTION | ring::EIR_PAGE_TABLE,
            &t.c
        ));
        assert_eq!(t.rd(RCS + ring::EIR), 0x11);
        t.wr(RCS + ring::EIR, ring::EIR_INSTRUCTION);
        assert_eq!(t.rd(RCS + ring::EIR), ring::EIR_PAGE_TABLE);
    }

    #[test]
    fn gdrst_self_clears_with_actions() {
        let mut t = Rig::new();
        assert_eq!(
            t.wr(regs::GDRST, regs::GRDOM_RENDER).action,
            Some(Action::EngineReset(Engines::default().with(Engine::Rcs)))
        );
        assert_eq!(t.rd(regs::GDRST), 0);
        let both = t
            .wr(regs::GDRST, regs::GRDOM_RENDER | regs::GRDOM_BLT)
            .action;
        let Some(Action::EngineReset(es)) = both else {
            panic!("no engine reset: {:?}", both);
        };
        assert!(es.contains(Engine::Rcs) && es.contains(Engine::Bcs));
        assert_eq!(es.iter().count(), 2);
        // Full wins over the engine bits; media alone resets nothing we have.
        assert_eq!(
            t.wr(regs::GDRST, regs::GRDOM_FULL | regs::GRDOM_RENDER)
                .action,
            Some(Action::FullReset)
        );
        assert_eq!(t.wr(regs::GDRST, regs::GRDOM_MEDIA).action, None);
        assert_eq!(t.rd(regs::GDRST), 0);
        assert_eq!(Rig::n(&t.c.gdrst), 4);
    }

    #[test]
    fn full_reset_keeps_interrupts_fences_and_the_pvinfo_flag() {
        let mut t = Rig::new();
        t.r.note_pvinfo_read();
        t.wr(RCS + ring::TAIL, 0x40);
        t.wr(regs::FORCEWAKE_RENDER, regs::masked_enable(1));
        t.wr(regs::FENCE_BASE, 0x1234_5000);
        t.wr(regs::GT_IER, 0x100);
        t.wr(0x1_0000, 9);
        t.r.reset_gt();
        assert_eq!(t.rd(RCS + ring::TAIL), 0);
        assert_eq!(t.rd(regs::FORCEWAKE_ACK_RENDER), 0);
        assert_eq!(t.rd(RCS + ring::CSB_PTR), 7);
        assert_eq!(t.rd(regs::FENCE_BASE), 0x1234_5000);
        assert_eq!(t.rd(regs::GT_IER), 0x100);
        assert_eq!(t.rd(0x1_0000), 0);
        // Still PV-aware: enabling execlists now is fine.
        assert_eq!(
            t.wr(
                RCS + ring::MODE,
                regs::masked_enable(ring::MODE_RUN_LIST_ENABLE)
            )
            .action,
            None
        );
        // A power-on forgets it all.
        t.r.reset();
        assert_eq!(t.rd(regs::FENCE_BASE), 0);
        assert_eq!(t.rd(regs::GT_IER), 0);
        assert!(!t.r.pv_read);
    }

    #[test]
    fn reset_ctl_handshake() {
        let mut t = Rig::new();
        let rc = BCS + ring::RESET_CTL;
        assert_eq!(t.rd(rc), 0);
        // gen8_engine_reset_prepare: request, wait for READY_TO_RESET.
        t.wr(rc, regs::masked_enable(ring::RESET_CTL_REQUEST));
        assert_eq!(t.rd(rc), ring::RESET_CTL_REQUEST | ring::RESET_CTL_READY);
        // Writes that do not touch the request leave the answer; READY is not writable.
        t.wr(rc, regs::masked_disable(ring::RESET_CTL_READY));
        assert_eq!(t.rd(rc), ring::RESET_CTL_REQUEST | ring::RESET_CTL_READY);
        // gen8_engine_reset_cancel: withdraw, READY goes.
        t.wr(rc, regs::masked_disable(ring::RESET_CTL_REQUEST));
        assert_eq!(t.rd(rc), 0);
        assert_eq!(t.rd(RCS + ring::RESET_CTL), 0);
        assert_eq!(Rig::n(&t.c.reset_ctl), 1);
    }

    #[test]
    fn pcode_mailbox_answers_at_once() {
        let mut t = Rig::new();
        // snb_pcode_rw: READY | command, then wait for READY to clear, read DATA.
        t.wr(regs::PCODE_DATA, 0);
        t.wr(
            regs::PCODE_MAILBOX,
            regs::PCODE_READY | PCODE_READ_MEM_LATENCY,
        );
        assert_eq!(t.rd(regs::PCODE_MAILBOX), 0);
        assert_eq!(t.rd(regs::PCODE_DATA), 0x1e1a_1100);
        t.wr(
            regs::PCODE_MAILBOX,
            regs::PCODE_READY | PCODE_READ_MEM_LATENCY,
        );
        assert_eq!(t.rd(regs::PCODE_DATA), 0x6151_4b3d);
        t.wr(
            regs::PCODE_MAILBOX,
            regs::PCODE_READY | (3 << 8) | PCODE_CDCLK_CONTROL,
        );
        assert_eq!(t.rd(regs::PCODE_DATA), CDCLK_READY_FOR_CHANGE);
        // Parameters stay, READY and the error code do not.
        assert_eq!(t.rd(regs::PCODE_MAILBOX), 3 << 8);
        t.wr(regs::PCODE_MAILBOX, regs::PCODE_READY | 0x42);
        assert_eq!(t.rd(regs::PCODE_MAILBOX) & (regs::PCODE_READY | 0xff), 0);
        assert_eq!(Rig::n(&t.c.pcode), 4);
    }

    #[test]
    fn fences_of_the_slice_only() {
        let mut t = Rig::new();
        t.r.note_pvinfo_read();
        let n = t.r.slice.fences;
        assert!(n > 0 && n < regs::FENCES);
        let last = regs::FENCE_BASE + 8 * (n - 1);
        t.wr(last, 0xaaaa_a001);
        t.wr(last + 4, 0x1234);
        assert_eq!(t.rd(last), 0xaaaa_a001);
        assert_eq!(t.r.fence(n - 1), Some(0x1234_aaaa_a001));
        // The first fence beyond the vGPU's reads 0 and drops writes.
        let out = regs::FENCE_BASE + 8 * n;
        t.wr(out, 0xffff_ffff);
        assert_eq!(t.rd(out), 0);
        assert_eq!(t.r.fence(n), None);
        assert_eq!(Rig::n(&t.c.fence_write), 2);
        assert_eq!(Rig::n(&t.c.fence_dropped), 2);
        assert_eq!(t.r.failsafe(), None);
        // Before PVINFO is read, such an access means an unaware guest (GVT-g).
        t.r.reset();
        let fx = t.r.read32(out, &t.c).2;
        assert_eq!(
            fx.action,
            Some(Action::Failsafe(failsafe::Reason::FenceBeforePvinfo))
        );
    }

    #[test]
    fn gfx_flush_is_a_ggtt_invalidate() {
        let mut t = Rig::new();
        assert_eq!(
            t.wr(regs::GFX_FLSH_CNTL, 1).action,
            Some(Action::GgttInvalidate)
        );
        assert_eq!(Rig::n(&t.c.ggtt_invalidate), 1);
        t.wr(regs::PRIVATE_PAT_LO + 4, 0x0706_0504);
        assert_eq!(t.rd(regs::PRIVATE_PAT_LO + 4), 0x0706_0504);
    }

    #[test]
    fn default_accesses_are_kept_and_counted_by_offset() {
        let mut t = Rig::new();
        // Unmodelled, inside an engine block and outside any.
        let (a, b) = (RCS + 0x20c, 0x0c_8000);
        assert_eq!(t.r.write32(a, 5, &t.c).0, false);
        t.wr(b, 6);
        assert_eq!(t.r.read32(a, &t.c), (5, false, Effect::default()));
        assert_eq!(t.rd(b), 6);
        assert_eq!(t.rd(b), 6);
        assert_eq!(Rig::n(&t.c.default_write), 2);
        assert_eq!(Rig::n(&t.c.default_read), 3);
        assert_eq!(t.r.store.len(), 2);
        // A byte write merges into the kept value; into a handler it is dropped.
        t.r.write_part(b, 1, &[0xab], &t.c);
        assert_eq!(t.rd(b), 0xab06);
        t.r.write_part(RCS + ring::ELSP, 0, &[1], &t.c);
        assert_eq!(Rig::n(&t.c.elsp_write), 0);
        assert_eq!(Rig::n(&t.c.reg_partial), 1);
        t.r.reset();
        assert_eq!(t.r.store.len(), 0);
    }

    #[test]
    fn failsafe_via_ring_mode_before_pvinfo() {
        let mut t = Rig::new();
        let run_list = regs::masked_enable(ring::MODE_RUN_LIST_ENABLE);
        let fx = t.wr(BCS + ring::MODE, run_list);
        assert_eq!(
            fx.action,
            Some(Action::Failsafe(failsafe::Reason::ModeBeforePvinfo(
                Engine::Bcs
            )))
        );
        assert_eq!(
            t.r.failsafe(),
            Some(failsafe::Reason::ModeBeforePvinfo(Engine::Bcs))
        );
        // The register kept its value; once in failsafe it stays, counted once.
        assert_eq!(t.rd(BCS + ring::MODE), ring::MODE_RUN_LIST_ENABLE);
        assert_eq!(t.wr(RCS + ring::MODE, run_list).action, None);
        assert_eq!(Rig::n(&t.c.failsafe), 1);
        // No side effects: ELSP ignored, GDRST stored as written, no interrupt.
        for _ in 0..4 {
            assert_eq!(t.wr(RCS + ring::ELSP, 0), Effect::default());
        }
        assert_eq!(Rig::n(&t.c.elsp_failsafe), 4);
        assert_eq!(t.wr(regs::GDRST, regs::GRDOM_FULL), Effect::default());
        assert_eq!(t.rd(regs::GDRST), regs::GRDOM_FULL);
        t.wr(regs::MASTER_IRQ, regs::MASTER_IRQ_CONTROL);
        t.wr(regs::GT_IMR, 0);
        t.wr(regs::GT_IER, !0);
        assert!(!t.r.event(Engine::Rcs, regs::GT_USER_INTERRUPT, &t.c));
        assert_eq!(
            t.r.schedule_in(Engine::Rcs, [Some(1), None], None, &t.c),
            Ok(false)
        );
        // Only a power-on leaves it.
        t.r.reset_gt();
        assert!(t.r.failsafe().is_some());
        t.r.reset();
        assert_eq!(t.r.failsafe(), None);
        // After a PVINFO read the same write is what i915 does at probe.
        t.r.note_pvinfo_read();
        assert_eq!(t.wr(BCS + ring::MODE, run_list).action, None);
        assert_eq!(
            t.wr(BCS + ring::MODE, regs::masked_enable(1)).action,
            Some(Action::Failsafe(failsafe::Reason::ModeBit0(Engine::Bcs)))
        );
        assert_eq!(t.rd(BCS + ring::MODE), ring::MODE_RUN_LIST_ENABLE);
    }

    #[test]
    fn hws_pga_only_inside_the_slices() {
        let mut t = Rig::new();
        let base = t.r.slice.aperture_base as u32;
        t.wr(RCS + ring::HWS_PGA, base + 0x3000);
        assert_eq!(t.r.hws_pga(Engine::Rcs), base + 0x3000);
        t.wr(RCS + ring::HWS_PGA, 0x1000);
        assert_eq!(t.r.hws_pga(Engine::Rcs), base + 0x3000);
        assert_eq!(Rig::n(&t.c.hws_pga_refused), 1);
        t.wr(RCS + ring::HWS_PGA, 0);
        assert_eq!(t.r.hws_pga(Engine::Rcs), 0);
    }

    #[test]
    fn refused_elsp_shows_eir_and_the_error_interrupt() {
        let mut t = Rig::new();
        t.wr(regs::GT_IMR, 0);
        t.wr(regs::GT_IER, !0);
        t.wr(regs::MASTER_IRQ, regs::MASTER_IRQ_CONTROL);
        let mut last = Effect::default();
        for _ in 0..4 {
            last = t.wr(BCS + ring::ELSP, 0);
        }
        assert_eq!(
            last.action,
            Some(Action::Refused {
                engine: Engine::Bcs,
                reason: Refusal::Desc0Invalid
            })
        );
        assert!(last.raise);
        assert_eq!(t.rd(BCS + ring::EIR), ring::EIR_INSTRUCTION);
        assert_eq!(
            t.rd(regs::GT_IIR),
            regs::gt_bits(regs::GT_BCS_SHIFT, regs::GT_CS_MASTER_ERROR)
        );
        assert_eq!(Rig::n(&t.c.inject_error), 1);
        assert_eq!(Rig::n(&t.c.elsp_refused_invalid), 1);
        // RING_IMR writes re-evaluate: the unacknowledged error raises again.
        assert!(t.wr(BCS + ring::IMR, 0).raise);
        assert_eq!(Rig::n(&t.c.inject_reg), 1);
    }

    #[test]
    fn engine_reset_clears_the_execlist() {
        let mut t = Rig::new();
        let d = lrc::desc::make(t.r.slice.aperture_base as u32, 3);
        for v in [0, 0, (d >> 32) as u32, d as u32] {
            t.wr(RCS + ring::ELSP, v);
        }
        assert_eq!(
            t.r.schedule_in(Engine::Rcs, [Some(d), None], None, &t.c),
            Ok(false)
        );
        assert_eq!(t.rd(RCS + ring::EXECLIST_STATUS_HI), 3);
        assert_eq!(t.rd(RCS + ring::CSB_PTR), 0);
        t.r.reset_engine(Engine::Rcs);
        assert_eq!(t.rd(RCS + ring::EXECLIST_STATUS_HI), 0);
        assert_eq!(t.rd(RCS + ring::CSB_PTR), 7);
        assert_eq!(t.r.schedule_out(Engine::Rcs, d, None, &t.c), Err(EINVAL));
    }

    /// Formats a dump into a small buffer, keeping its first bytes and its length.
    struct Sink {
        head: [u8; 256],
        len: usize,
    }

    impl fmt::Write for Sink {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            for b in s.bytes() {
                if let Some(d) = self.head.get_mut(self.len) {
                    *d = b;
                }
                self.len += 1;
            }
            Ok(())
        }
    }

    struct Dump<'a>(&'a Regs, bool);

    impl fmt::Display for Dump<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            if self.1 {
                self.0.dump_unmodelled(f)
            } else {
                self.0.dump(f)
            }
        }
    }

    fn dump(r: &Regs, unmodelled: bool) -> KBox<Sink> {
        let mut s = KBox::new(
            Sink {
                head: [0; 256],
                len: 0,
            },
            GFP_KERNEL,
        )
        .unwrap();
        fmt::write(&mut *s, format_args!("{}", Dump(r, unmodelled))).unwrap();
        s
    }

    fn contains(s: &Sink, what: &str) -> bool {
        let n = s.len.min(s.head.len());
        s.head[..n]
            .windows(what.len())
            .any(|w| w == what.as_bytes())
    }

    #[test]
    fn debugfs_dumps() {
        let mut t = Rig::new();
        let s = dump(&t.r, false);
        assert!(contains(&s, "failsafe none"));
        assert!(contains(&s, "rcs0 base 0x2000"));
        assert!(s.len > 4000);
        // The most accessed unmodelled offset comes first.
        t.wr(0x9000, 1);
        for _ in 0..3 {
            t.rd(0x1234c);
        }
        let s = dump(&t.r, true);
        assert!(contains(&s, "tracked 2 of 4096"));
        let first = s.head.iter().position(|&b| b == b'\n').unwrap();
        let second = &s.head[first + 1..];
        let line2 = second.iter().position(|&b| b == b'\n').unwrap();
        let line3 = &second[line2 + 1..];
        assert!(line3.starts_with(b"0x01234c"));
    }

    /// A hostile guest: random dwords to every modelled register of both tables, mixed
    /// with the calls the submission and completion paths make, in any order. Nothing
    /// may panic, the default store stays bounded, the CSB write pointer stays an entry.
    #[test]
    fn hammer() {
        let mut t = Rig::new();
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let offs = |i: u64, k: u64| -> u32 {
            let all = RING.len() * Engine::COUNT + GLOBAL.len();
            let i = (i % all as u64) as usize;
            let (row, base) = match RING.get(i % RING.len()) {
                Some(r) if i < RING.len() * Engine::COUNT => {
                    (r, Engine::ALL[i / RING.len()].base())
                }
                _ => (&GLOBAL[i - RING.len() * Engine::COUNT], 0),
            };
            base + row.off + 4 * (k % u64::from(row.dwords)) as u32
        };
        let page = [const { core::cell::Cell::new(0u32) }; 64];
        struct P<'a>(&'a [core::cell::Cell<u32>; 64]);
        impl Hwsp for P<'_> {
            fn store32(&self, dword: usize, v: u32) -> Result {
                self.0.get(dword).ok_or(EFAULT)?.set(v);
                Ok(())
            }
            fn store64(&self, dword: usize, v: u64) -> Result {
                self.store32(dword, v as u32)?;
                self.store32(dword + 1, (v >> 32) as u32)
            }
        }
        let hwsp = P(&page);
        let mut last = 0u64;
        for _ in 0..50_000 {
            let (a, b, v) = (rnd(), rnd(), rnd());
            let e = Engine::ALL[(b % 2) as usize];
            // Mostly well-formed descriptors in the slice, sometimes anything.
            let d = if v % 4 == 0 {
                v
            } else {
                lrc::desc::make(
                    t.r.slice.aperture_base as u32 + (v as u32 % 64) * lrc::PAGE,
                    (v >> 40) as u32 % 4,
                )
            };
            match a % 32 {
                0..=17 => {
                    t.wr(offs(a >> 8, b), v as u32);
                }
                18..=21 => {
                    t.rd(offs(a >> 8, b));
                }
                22 => {
                    let off = (v as u32 % regs::MMIO_SIZE) & !3;
                    t.r.write_part(offs(a >> 8, b), (b % 4) as usize, &[v as u8], &t.c);
                    t.wr(off, v as u32);
                }
                23 => {
                    let _ = t.r.schedule_in(
                        e,
                        [Some(d), (b % 2 == 0).then_some(last)],
                        Some(&hwsp),
                        &t.c,
                    );
                    last = d;
                }
                24 | 25 => {
                    let _ =
                        t.r.schedule_out(e, if b % 3 == 0 { d } else { last }, Some(&hwsp), &t.c);
                }
                26 => {
                    t.r.event(e, v as u32, &t.c);
                }
                27 => {
                    t.r.report_error(e, v as u32, &t.c);
                }
                28 => t.r.taken(e),
                29 => t.r.reset_engine(e),
                30 => match b % 8 {
                    0 => t.r.reset(),
                    1 => t.r.reset_gt(),
                    _ => t.r.note_pvinfo_read(),
                },
                _ => {
                    for dw in [v as u32, (v >> 32) as u32, d as u32, (d >> 32) as u32] {
                        t.wr(e.base() + ring::ELSP, dw);
                    }
                }
            }
            assert!(t.r.store.len() <= store::CAP);
            for e in Engine::ALL {
                assert!(t.r.ring(e).unwrap().el.queued() <= execlist::PENDING_LIMIT);
            }
        }
        // The model still works: a power-on and a clean submission.
        t.r.reset();
        t.r.note_pvinfo_read();
        let d = lrc::desc::make(t.r.slice.aperture_base as u32, 1);
        assert_eq!(
            t.r.schedule_in(Engine::Rcs, [Some(d), None], Some(&hwsp), &t.c),
            Ok(false)
        );
        assert_eq!(page[0x10].get(), lrc::csb::IDLE_ACTIVE);
        assert_eq!(page[0x1f].get(), 0);
    }
}
