// SPDX-License-Identifier: GPL-2.0

//! Failsafe: the state a vGPU enters when its guest is not one the model can serve.
//!
//! Copied from GVT-g (`handlers.c: enter_failsafe_mode`, `ring_mode_mmio_write`,
//! `sanitize_fence_mmio_access`): a guest that enables execlists or PPGTT before it read
//! PVINFO is not PV-aware. In failsafe the registers keep the values written, without
//! side effects; ELSP writes are ignored and counted; no interrupt is raised. Only a
//! device reset or close (a power-on) leaves it.

use crate::gpu::Engine;
use core::fmt;

/// Why a vGPU went to failsafe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reason {
    /// `RING_MODE` enabled `RUN_LIST` or `PPGTT` before any PVINFO read.
    ModeBeforePvinfo(Engine),
    /// `RING_MODE` bit 0 enabled (GVT-g refuses it on every GEN9).
    ModeBit0(Engine),
    /// A fence register outside the vGPU's fences, before any PVINFO read.
    FenceBeforePvinfo,
    /// Too many refused or failed workloads in a row (`vgpu/submit.rs`).
    RepeatOffender,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ModeBeforePvinfo(e) => write!(
                f,
                "{}: RING_MODE enabled execlists or PPGTT before the guest read PVINFO",
                e.name()
            ),
            Self::ModeBit0(e) => write!(f, "{}: RING_MODE bit 0 enabled", e.name()),
            Self::FenceBeforePvinfo => write!(
                f,
                "fence register outside the vGPU's fences before the guest read PVINFO"
            ),
            Self::RepeatOffender => write!(f, "too many refused or failed workloads in a row"),
        }
    }
}

// For `pr_*!`, which format through `kernel::fmt`.
impl kernel::fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
