// SPDX-License-Identifier: GPL-2.0

//! Logical ring contexts (`gt/intel_lrc.c`): an image in GGTT-bound memory whose state
//! page holds the ring registers and the PPGTT root, and a ring buffer.
//!
//! The image's page 1 starts as `lrc::init_state` lays it out (the LRI headers and
//! register offsets of `gen9_xcs_offsets`, which RCS shares for these blocks); the values
//! are filled in as `lrc_init_regs` and `init_ppgtt_regs` do for a 4-level context:
//! context control, ring start, head, tail and control, and PDP0 = the PML4.

use super::{
    ggtt::{Ggtt, GgttBuf},
    mem::PAGE,
    ppgtt::Ppgtt,
    EngineId, Seqno,
};
use crate::abi::{lrc, regs as abi};
use kernel::{
    device::{Bound, Device},
    new_mutex,
    prelude::*,
    sync::{Arc, Mutex},
};

/// Ring size of every context (bytes; a power of two).
pub(crate) const RING_SIZE: u32 = 16 * 1024;

/// `CTX_CTRL_RS_CTX_ENABLE` (not in shared-abi yet).
const CTX_CTRL_RS_CTX_ENABLE: u32 = 1 << 1;
/// `CTX_CTRL_ENGINE_CTX_SAVE_INHIBIT` (not in shared-abi yet).
const CTX_CTRL_ENGINE_CTX_SAVE_INHIBIT: u32 = 1 << 2;

/// The context control value (`init_common_regs`); `inhibit` skips restoring the engine
/// state on the first load of a fresh image.
pub(crate) const fn context_control(inhibit: bool) -> u32 {
    let mut v = abi::masked_enable(lrc::CTX_CTRL_INHIBIT_SYN_CTX_SWITCH)
        | abi::masked_disable(lrc::CTX_CTRL_ENGINE_CTX_RESTORE_INHIBIT)
        | abi::masked_disable(CTX_CTRL_ENGINE_CTX_SAVE_INHIBIT | CTX_CTRL_RS_CTX_ENABLE);
    if inhibit {
        v |= lrc::CTX_CTRL_ENGINE_CTX_RESTORE_INHIBIT;
    }
    v
}

/// `RING_CTL` for a ring of `size` bytes: pages minus one in bits 20:12, valid.
pub(crate) const fn ring_ctl(size: u32) -> u32 {
    ((size - PAGE as u32) & abi::ring::CTL_SIZE_MASK) | abi::ring::CTL_VALID
}

/// Most remembered refused submissions per context.
const FAILURES: usize = 8;

/// Scheduling state of a context, under its lock (taken after its engine's lock).
pub(crate) struct CtxState {
    /// Ring offset the device consumed up to (the tail of the last completed submission).
    pub(crate) head: u32,
    /// Ring offset after the last emitted request.
    pub(crate) tail: u32,
    /// Last sequence number emitted into the ring.
    pub(crate) emitted: Seqno,
    /// Last sequence number covered by an ELSP submission.
    pub(crate) submitted: Seqno,
    /// Waiting in the engine's queue.
    pub(crate) queued: bool,
    /// In an execlist port.
    pub(crate) inflight: bool,
    /// The image was loaded by the device at least once.
    pub(crate) loaded: bool,
    /// Sequence number ranges the device completed without running (refused).
    failures: [(Seqno, Seqno); FAILURES],
    nfailures: usize,
}

impl CtxState {
    /// Remembers that `[from, to]` was refused.
    pub(crate) fn record_failure(&mut self, from: Seqno, to: Seqno) {
        let i = self.nfailures % FAILURES;
        self.failures[i] = (from, to);
        self.nfailures = self.nfailures.wrapping_add(1);
    }

    /// Whether `seqno` lies in a remembered refused range.
    pub(crate) fn failed(&self, seqno: Seqno) -> bool {
        self.failures[..self.nfailures.min(FAILURES)]
            .iter()
            .any(|&(a, b)| super::seqno_passed(seqno, a) && super::seqno_passed(b, seqno))
    }
}

/// A logical ring context on one engine.
#[pin_data]
pub(crate) struct Context {
    engine: EngineId,
    /// Context id (descriptor bits 63:32), also the slot of its breadcrumb in the
    /// engine's seqno page.
    id: u32,
    image: GgttBuf,
    ring: GgttBuf,
    ppgtt: Arc<Ppgtt>,
    #[pin]
    pub(crate) state: Mutex<CtxState>,
}

impl Context {
    /// Builds a context for `engine` with id `id` over `ppgtt`.
    pub(crate) fn new(
        dev: &Device<Bound>,
        ggtt: &Arc<Ggtt>,
        engine: EngineId,
        id: u32,
        ppgtt: Arc<Ppgtt>,
    ) -> Result<Arc<Self>> {
        let image = ggtt.alloc_bound(dev, engine.context_pages())?;
        let ring = ggtt.alloc_bound(dev, RING_SIZE as usize / PAGE)?;
        // 4 KiB: built on the heap, then copied into the image a dword at a time.
        let mut regs = KBox::<[u32; lrc::state::DWORDS]>::zeroed(GFP_KERNEL)?;
        lrc::init_state(&mut regs[..], engine.base()).ok_or(EINVAL)?;
        let pml4 = ppgtt.pml4();
        regs[lrc::state::CONTEXT_CONTROL] = context_control(true);
        regs[lrc::state::RING_HEAD] = 0;
        regs[lrc::state::RING_TAIL] = 0;
        regs[lrc::state::RING_START] = ring.addr();
        regs[lrc::state::RING_CTL] = ring_ctl(RING_SIZE);
        regs[lrc::state::PDP0_UDW] = (pml4 >> 32) as u32;
        regs[lrc::state::PDP0_LDW] = pml4 as u32;
        image.mem().write_slice(state_dword(0), &regs[..])?;
        Arc::pin_init(
            pin_init!(Self {
                engine,
                id,
                image,
                ring,
                ppgtt,
                state <- new_mutex!(
                    CtxState {
                        head: 0,
                        tail: 0,
                        emitted: 0,
                        submitted: 0,
                        queued: false,
                        inflight: false,
                        loaded: false,
                        failures: [(0, 0); FAILURES],
                        nfailures: 0,
                    },
                    "gvtpv_guest::Context::state"
                ),
            }),
            GFP_KERNEL,
        )
    }

    /// The engine the context runs on.
    pub(crate) fn engine(&self) -> EngineId {
        self.engine
    }

    /// The context id.
    pub(crate) fn id(&self) -> u32 {
        self.id
    }

    /// The context's PPGTT.
    pub(crate) fn ppgtt(&self) -> &Arc<Ppgtt> {
        &self.ppgtt
    }

    /// The ring's memory.
    pub(crate) fn ring(&self) -> &GgttBuf {
        &self.ring
    }

    /// The descriptor i915 would write for it (`lrc_descriptor`): valid, privileged,
    /// 4-level, LRCA = the image's GGTT address, id in the upper dword.
    pub(crate) fn descriptor(&self) -> u64 {
        lrc::desc::make(self.image.addr(), self.id)
    }

    /// Before an ELSP write: the new ring tail and context control into the image
    /// (`execlists_update_context`).
    pub(crate) fn update_image(&self, tail: u32, first_load: bool) -> Result {
        let mem = self.image.mem();
        mem.write(state_dword(lrc::state::RING_TAIL), tail)?;
        mem.write(
            state_dword(lrc::state::CONTEXT_CONTROL),
            context_control(first_load),
        )
    }

    /// `RING_HEAD` as the device last wrote it back into the image.
    pub(crate) fn image_head(&self) -> Result<u32> {
        self.image.mem().read(state_dword(lrc::state::RING_HEAD))
    }
}

/// Index in the image of dword `i` of the state page.
const fn state_dword(i: usize) -> usize {
    lrc::STATE_PAGE as usize * PAGE / 4 + i
}
