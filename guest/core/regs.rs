// SPDX-License-Identifier: GPL-2.0

//! The GEN9 registers the emulated path touches, as `register!` types.
//!
//! Offsets come from `shared-abi` (`abi::regs`, `abi::pvinfo`); the literals below are tied
//! to them by compile-time asserts. The two engines' register blocks are arrays of two,
//! indexed by [`super::EngineId::index`]: RCS at 0x2000, BCS at 0x22000.

use crate::abi::{pvinfo, regs as abi};
use kernel::io::register::{self, RegisterArray};

/// Bytes between the RCS and BCS register blocks.
pub(crate) const ENGINE_STRIDE: usize = 0x20000;
const _: () = assert!((abi::BCS_BASE - abi::RCS_BASE) as usize == ENGINE_STRIDE);

kernel::io::register! {
    /// `FORCEWAKE_RENDER_GEN9` (masked).
    pub(crate) FORCEWAKE_RENDER(u32) @ 0xa278 {
        /// Mask bit of [`Self::kernel`].
        16:16 kernel_mask => bool;
        /// `FORCEWAKE_KERNEL`: the driver's wake request.
        0:0 kernel => bool;
    }

    /// `FORCEWAKE_GT_GEN9` (masked).
    pub(crate) FORCEWAKE_GT(u32) @ 0xa188 {
        /// Mask bit of [`Self::kernel`].
        16:16 kernel_mask => bool;
        /// `FORCEWAKE_KERNEL`.
        0:0 kernel => bool;
    }

    /// `FORCEWAKE_MEDIA_GEN9` (masked).
    pub(crate) FORCEWAKE_MEDIA(u32) @ 0xa270 {
        /// Mask bit of [`Self::kernel`].
        16:16 kernel_mask => bool;
        /// `FORCEWAKE_KERNEL`.
        0:0 kernel => bool;
    }

    /// `FORCEWAKE_ACK_RENDER_GEN9`.
    pub(crate) FORCEWAKE_ACK_RENDER(u32) @ 0x0d84 {
        /// The request is acknowledged.
        0:0 kernel => bool;
    }

    /// `FORCEWAKE_ACK_GT_GEN9`.
    pub(crate) FORCEWAKE_ACK_GT(u32) @ 0x130044 {
        /// The request is acknowledged.
        0:0 kernel => bool;
    }

    /// `FORCEWAKE_ACK_MEDIA_GEN9`.
    pub(crate) FORCEWAKE_ACK_MEDIA(u32) @ 0x0d88 {
        /// The request is acknowledged.
        0:0 kernel => bool;
    }

    /// `GFX_FLSH_CNTL_GEN6`: any write invalidates the GGTT TLBs.
    pub(crate) GFX_FLSH_CNTL(u32) @ 0x101008 {
        /// `GFX_FLSH_CNTL_EN`.
        0:0 enable => bool;
    }

    /// `GEN8_MASTER_IRQ`.
    pub(crate) MASTER_IRQ(u32) @ 0x44200 {
        /// `GEN8_MASTER_IRQ_CONTROL`: interrupts reach the CPU.
        31:31 control => bool;
        /// `GEN8_GT_BCS_IRQ`: GT bank 0, blitter half.
        1:1 gt_bcs => bool;
        /// `GEN8_GT_RCS_IRQ`: GT bank 0, render half.
        0:0 gt_rcs => bool;
    }

    /// `GEN8_GT_IMR(n)`: interrupt mask of GT bank `n`.
    pub(crate) GT_IMR(u32)[4, stride = 0x10] @ 0x44304 {
        /// Blitter half of bank 0.
        31:16 bcs;
        /// Render half of bank 0.
        15:0 rcs;
    }

    /// `GEN8_GT_IIR(n)`: interrupt identity of GT bank `n` (write 1 to clear).
    pub(crate) GT_IIR(u32)[4, stride = 0x10] @ 0x44308 {
        /// Blitter half of bank 0.
        31:16 bcs;
        /// Render half of bank 0.
        15:0 rcs;
    }

    /// `GEN8_GT_IER(n)`: interrupt enable of GT bank `n`.
    pub(crate) GT_IER(u32)[4, stride = 0x10] @ 0x4430c {
        /// Blitter half of bank 0.
        31:16 bcs;
        /// Render half of bank 0.
        15:0 rcs;
    }

    /// `RING_HWS_PGA`: GGTT address of the engine's status page.
    pub(crate) RING_HWS_PGA(u32)[2, stride = ENGINE_STRIDE] @ 0x2080 {
        /// Page address bits 31:12.
        31:12 page;
    }

    /// `RING_HWSTAM`: which interrupts the engine also writes to its status page.
    pub(crate) RING_HWSTAM(u32)[2, stride = ENGINE_STRIDE] @ 0x2098 {
        /// The mask (all ones: nothing).
        31:16 high;
        /// The mask, low half.
        15:0 low;
    }

    /// `RING_MI_MODE` (masked).
    pub(crate) RING_MI_MODE(u32)[2, stride = ENGINE_STRIDE] @ 0x209c {
        /// Mask bit of [`Self::stop_ring`].
        24:24 stop_ring_mask => bool;
        /// `MODE_IDLE`: the ring is stopped and idle (read only).
        9:9 idle => bool;
        /// `STOP_RING`.
        8:8 stop_ring => bool;
    }

    /// `RING_IMR`: the engine's interrupt mask.
    pub(crate) RING_IMR(u32)[2, stride = ENGINE_STRIDE] @ 0x20a8 {
        /// Bits 31:16 (the blitter's half of bank 0 on GEN8/9, as i915 writes it).
        31:16 high;
        /// Bits 15:0.
        15:0 low;
    }

    /// `RING_EIR`: error identity (write 1 to clear).
    pub(crate) RING_EIR(u32)[2, stride = ENGINE_STRIDE] @ 0x20b0 {
        /// gvtpv: the context ran out of its command budget (a hang).
        5:5 hang => bool;
        /// `I915_ERROR_PAGE_TABLE`.
        4:4 page_table => bool;
        /// `I915_ERROR_INSTRUCTION`.
        0:0 instruction => bool;
    }

    /// `RING_EMR`: error mask.
    pub(crate) RING_EMR(u32)[2, stride = ENGINE_STRIDE] @ 0x20b4 {
        /// Mask of the hang bit.
        5:5 hang => bool;
        /// Mask of `I915_ERROR_PAGE_TABLE`.
        4:4 page_table => bool;
        /// Mask of `I915_ERROR_INSTRUCTION`.
        0:0 instruction => bool;
    }

    /// `RING_ELSP`: four dword writes submit one pair of contexts.
    pub(crate) RING_ELSP(u32)[2, stride = ENGINE_STRIDE] @ 0x2230 {
        /// Upper half of the dword.
        31:16 high;
        /// Lower half of the dword.
        15:0 low;
    }

    /// `RING_MODE_GEN7` (masked).
    pub(crate) RING_MODE(u32)[2, stride = ENGINE_STRIDE] @ 0x229c {
        /// Mask bit of [`Self::run_list_enable`].
        31:31 run_list_enable_mask => bool;
        /// `GFX_RUN_LIST_ENABLE`: execlists.
        15:15 run_list_enable => bool;
    }

    /// `RING_CONTEXT_STATUS_PTR` (masked).
    pub(crate) RING_CONTEXT_STATUS_PTR(u32)[2, stride = ENGINE_STRIDE] @ 0x23a0 {
        /// Mask of the pointer fields.
        31:16 mask;
        /// Read pointer.
        10:8 read_ptr;
        /// Write pointer.
        2:0 write_ptr;
    }

    /// PVINFO `pdp[0].lo`: the PML4 of a 4-level PPGTT being created or destroyed.
    pub(crate) PVINFO_PDP0_LO(u32) @ 0x78838 {
        /// Address bits 31:12.
        31:12 addr;
    }

    /// PVINFO `pdp[0].hi`.
    pub(crate) PVINFO_PDP0_HI(u32) @ 0x7883c {
        /// Address bits 47:32.
        15:0 addr;
    }

    /// PVINFO `g2v_notify`.
    pub(crate) PVINFO_G2V_NOTIFY(u32) @ 0x78818 {
        /// The notification (`abi::pvinfo::g2v`).
        7:0 what;
    }
}

/// Offset of engine register `R` for RCS, as an `abi::regs::ring` offset plus the base.
const fn rcs<R: register::Register>() -> usize {
    R::OFFSET
}

const fn on_rcs(off: u32) -> usize {
    (abi::RCS_BASE + off) as usize
}

const _: () = {
    use abi::ring;
    assert!(rcs::<FORCEWAKE_RENDER>() == abi::FORCEWAKE_RENDER as usize);
    assert!(rcs::<FORCEWAKE_GT>() == abi::FORCEWAKE_GT as usize);
    assert!(rcs::<FORCEWAKE_MEDIA>() == abi::FORCEWAKE_MEDIA as usize);
    assert!(rcs::<FORCEWAKE_ACK_RENDER>() == abi::FORCEWAKE_ACK_RENDER as usize);
    assert!(rcs::<FORCEWAKE_ACK_GT>() == abi::FORCEWAKE_ACK_GT as usize);
    assert!(rcs::<FORCEWAKE_ACK_MEDIA>() == abi::FORCEWAKE_ACK_MEDIA as usize);
    assert!(abi::FORCEWAKE_KERNEL == 1);
    assert!(rcs::<GFX_FLSH_CNTL>() == abi::GFX_FLSH_CNTL as usize);
    assert!(rcs::<MASTER_IRQ>() == abi::MASTER_IRQ as usize);
    assert!(abi::MASTER_IRQ_CONTROL == 1 << 31);
    assert!(abi::MASTER_GT_RCS == 1 && abi::MASTER_GT_BCS == 2);
    assert!(rcs::<GT_IMR>() == abi::GT_IMR as usize);
    assert!(rcs::<GT_IIR>() == abi::GT_IIR as usize);
    assert!(rcs::<GT_IER>() == abi::GT_IER as usize);
    assert!(<GT_IIR as RegisterArray>::STRIDE == 0x10);
    assert!(abi::GT_BCS_SHIFT == 16 && abi::GT_RCS_SHIFT == 0);
    assert!(rcs::<RING_HWS_PGA>() == on_rcs(ring::HWS_PGA));
    assert!(rcs::<RING_HWSTAM>() == on_rcs(ring::HWSTAM));
    assert!(rcs::<RING_MI_MODE>() == on_rcs(ring::MI_MODE));
    assert!(ring::MI_MODE_STOP_RING == 1 << 8 && ring::MI_MODE_IDLE == 1 << 9);
    assert!(rcs::<RING_IMR>() == on_rcs(ring::IMR));
    assert!(rcs::<RING_EIR>() == on_rcs(ring::EIR));
    assert!(rcs::<RING_EMR>() == on_rcs(ring::EMR));
    assert!(ring::EIR_INSTRUCTION == 1 && ring::EIR_PAGE_TABLE == 1 << 4);
    assert!(ring::EIR_HANG == 1 << 5);
    assert!(rcs::<RING_ELSP>() == on_rcs(ring::ELSP));
    assert!(rcs::<RING_MODE>() == on_rcs(ring::MODE));
    assert!(ring::MODE_RUN_LIST_ENABLE == 1 << 15);
    assert!(rcs::<RING_CONTEXT_STATUS_PTR>() == on_rcs(ring::CSB_PTR));
    assert!(<RING_MODE as RegisterArray>::STRIDE == ENGINE_STRIDE);
    assert!(<RING_MODE as RegisterArray>::SIZE == 2);
    let pv = pvinfo::PVINFO_OFFSET as usize;
    assert!(rcs::<PVINFO_PDP0_LO>() == pv + pvinfo::offset::PDP0_LO as usize);
    assert!(rcs::<PVINFO_PDP0_HI>() == pv + pvinfo::offset::PDP0_LO as usize + 4);
    assert!(rcs::<PVINFO_G2V_NOTIFY>() == pv + pvinfo::offset::G2V_NOTIFY as usize);
};
