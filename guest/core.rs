// SPDX-License-Identifier: GPL-2.0

//! The emulated GPU path: the guest drives its vGPU as i915 drives a GEN9 under GVT-g.
//!
//! Rooms, from the bottom up:
//!
//! - [`regs`]: the registers, as `register!` types;
//! - [`mmio`]: BAR0 after identification (registers, GGTT window, PVINFO notifications)
//!   and forcewake;
//! - [`mem`]: GPU-visible memory (`dma::Coherent`) with single volatile accesses;
//! - [`ggtt`]: the GGTT allocator, confined to the ballooned slices, and the GGTT
//!   [`Binder`];
//! - [`ppgtt`]: 4-level PPGTTs built in guest memory, the PPGTT [`Binder`];
//! - [`ring`], [`csb`]: ring space and context status buffer logic (pure, unit tested);
//! - [`context`]: logical ring contexts (image, ring, descriptor);
//! - [`engine`]: per-engine bring-up and the execlist [`Submitter`];
//! - [`irq`]: the MSI vector and its threaded handler;
//! - [`gpu`]: bring-up of the whole device;
//! - [`selftests`]: live tests against the vGPU, reported as KTAP.
//!
//! Lock order, each lock only taken after the ones before it: an engine's scheduling
//! state ([`engine::Engine`]), then the GGTT allocator ([`ggtt::Ggtt`]) or a PPGTT's
//! tables ([`ppgtt::Ppgtt`]), then the PVINFO notification lock ([`mmio::Mmio`]). The
//! hard interrupt handler takes no lock.

pub(crate) mod context;
pub(crate) mod csb;
pub(crate) mod engine;
pub(crate) mod ggtt;
pub(crate) mod gpu;
pub(crate) mod irq;
pub(crate) mod mem;
pub(crate) mod mmio;
pub(crate) mod ppgtt;
pub(crate) mod regs;
pub(crate) mod ring;
pub(crate) mod selftests;

use crate::abi::{lrc, regs as abi};
use kernel::{prelude::*, time::Delta};

/// One of the vGPU's command streamers this driver uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EngineId {
    /// The render engine (RCS0).
    Rcs,
    /// The blitter (BCS0).
    Bcs,
}

impl EngineId {
    /// Both engines, in index order.
    pub(crate) const ALL: [EngineId; 2] = [EngineId::Rcs, EngineId::Bcs];

    /// Index into per-engine arrays and the register arrays of [`regs`].
    pub(crate) const fn index(self) -> usize {
        match self {
            EngineId::Rcs => 0,
            EngineId::Bcs => 1,
        }
    }

    /// BAR0 offset of the engine's register block.
    pub(crate) const fn base(self) -> u32 {
        match self {
            EngineId::Rcs => abi::RCS_BASE,
            EngineId::Bcs => abi::BCS_BASE,
        }
    }

    /// Shift of the engine's half in GT interrupt bank 0.
    pub(crate) const fn irq_shift(self) -> u32 {
        match self {
            EngineId::Rcs => abi::GT_RCS_SHIFT,
            EngineId::Bcs => abi::GT_BCS_SHIFT,
        }
    }

    /// Pages of a context image (`intel_engine_context_size`).
    pub(crate) const fn context_pages(self) -> usize {
        match self {
            EngineId::Rcs => lrc::RCS_CONTEXT_PAGES as usize,
            EngineId::Bcs => lrc::XCS_CONTEXT_PAGES as usize,
        }
    }

    /// The name i915 gives the engine.
    pub(crate) const fn name(self) -> &'static str {
        match self {
            EngineId::Rcs => "rcs0",
            EngineId::Bcs => "bcs0",
        }
    }
}

/// Access rights of a binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    /// The GPU may read and write.
    ReadWrite,
    /// The GPU may only read (PPGTT only; GGTT entries are always writable).
    ReadOnly,
}

/// Maps guest pages into one GPU address space (the GGTT or a PPGTT).
///
/// The emulated implementations write page-table entries the host traps (GGTT) or
/// shadows (PPGTT); a paravirtual one sends `BIND_GGTT` / `BIND_PPGTT` commands instead.
pub(crate) trait Binder {
    /// Maps `pages`, the DMA addresses of 4 KiB pages in order, at graphics address
    /// `start` (page aligned).
    ///
    /// # Errors
    ///
    /// `EINVAL` for a range outside the address space (or, in the GGTT, outside the
    /// vGPU's slices) or an unaligned address; `EBUSY` if the range conflicts with a huge
    /// mapping; `ENOMEM`.
    fn bind(&self, start: u64, pages: &[u64], access: Access) -> Result;

    /// Unmaps `count` pages at `start`.
    ///
    /// # Errors
    ///
    /// As [`Binder::bind`].
    fn unbind(&self, start: u64, count: usize) -> Result;
}

/// A per-context sequence number; wraps, compared with [`seqno_passed`].
pub(crate) type Seqno = u32;

/// Whether `current` is at or after `target` in wrapping sequence order.
pub(crate) const fn seqno_passed(current: Seqno, target: Seqno) -> bool {
    (current.wrapping_sub(target) as i32) >= 0
}

/// A batch buffer in a context's PPGTT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Batch {
    /// PPGTT address, 8-byte aligned.
    pub(crate) addr: u64,
    /// Length in bytes, a multiple of 8 (the paravirtual `SUBMIT` needs it).
    pub(crate) len: u32,
}

/// Why a wait ended without the work being done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WaitError {
    /// The timeout passed first.
    TimedOut,
    /// The device completed the context without running the work: the host refused it.
    Refused,
    /// A signal arrived.
    Interrupted,
    /// The sequence number was never submitted on this context.
    Invalid,
}

impl From<WaitError> for Error {
    fn from(e: WaitError) -> Error {
        match e {
            WaitError::TimedOut => ETIMEDOUT,
            WaitError::Refused => EIO,
            WaitError::Interrupted => EINTR,
            WaitError::Invalid => EINVAL,
        }
    }
}

/// Runs batches on one engine and tells when they finished.
///
/// The execlist implementation ([`engine::Engine`]) writes the context's ring, its image
/// and the ELSP; a paravirtual one sends `SUBMIT` commands.
pub(crate) trait Submitter {
    /// A context: its own address space and ring.
    type Context;

    /// Queues `batch` on `ctx`, followed by a breadcrumb, and returns its sequence
    /// number.
    ///
    /// # Errors
    ///
    /// `EINVAL` for a malformed batch, `ETIMEDOUT` if the ring stays full, `ENODEV` if the
    /// device went away.
    fn submit(&self, ctx: &Self::Context, batch: Batch) -> Result<Seqno>;

    /// Waits until `seqno` of `ctx` completed, at most `timeout`.
    ///
    /// # Errors
    ///
    /// The [`WaitError`].
    fn wait(&self, ctx: &Self::Context, seqno: Seqno, timeout: Delta) -> Result<(), WaitError>;
}

#[kunit_tests(gvtpv_guest_core)]
mod tests {
    use super::*;

    #[test]
    fn seqnos_wrap() {
        assert!(seqno_passed(5, 5));
        assert!(seqno_passed(6, 5));
        assert!(!seqno_passed(4, 5));
        assert!(seqno_passed(2, u32::MAX - 1));
        assert!(!seqno_passed(u32::MAX - 1, 2));
    }

    #[test]
    fn engine_facts() {
        assert_eq!(EngineId::Bcs.base(), 0x22000);
        assert_eq!(EngineId::Bcs.irq_shift(), 16);
        assert_eq!(EngineId::Rcs.context_pages(), 22);
        assert_eq!(EngineId::Bcs.context_pages(), 2);
        for (i, e) in EngineId::ALL.iter().enumerate() {
            assert_eq!(e.index(), i);
        }
    }
}
