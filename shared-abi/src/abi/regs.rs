// SPDX-License-Identifier: GPL-2.0

//! GEN9 BAR0 registers the emulated path uses: offsets and bits, shared by the host's
//! register model and the guest driver.
//!
//! Every value is checked against the Linux 7.2 tree; the comment names the i915 macro
//! (`gt/intel_engine_regs.h`, `gt/intel_gt_regs.h`, `i915_reg.h`,
//! `include/drm/intel/*.h`). Offsets are BAR0 byte offsets.

/// Registers of one command streamer, as offsets from its base ([`RCS_BASE`],
/// [`BCS_BASE`]).
pub mod ring {
    /// `RING_TAIL`.
    pub const TAIL: u32 = 0x30;
    /// `RING_HEAD`.
    pub const HEAD: u32 = 0x34;
    /// `RING_START`.
    pub const START: u32 = 0x38;
    /// `RING_CTL`: bits 20:12 size in pages minus one, bit 0 valid.
    pub const CTL: u32 = 0x3c;
    /// `RING_ACTHD`.
    pub const ACTHD: u32 = 0x74;
    /// `RING_HWS_PGA`: GGTT address of the engine's status page.
    pub const HWS_PGA: u32 = 0x80;
    /// `RING_NOPID`.
    pub const NOPID: u32 = 0x94;
    /// `RING_HWSTAM`.
    pub const HWSTAM: u32 = 0x98;
    /// `RING_MI_MODE` (masked).
    pub const MI_MODE: u32 = 0x9c;
    /// `RING_IMR`.
    pub const IMR: u32 = 0xa8;
    /// `RING_EIR`: error identity (write 1 to clear).
    pub const EIR: u32 = 0xb0;
    /// `RING_EMR`.
    pub const EMR: u32 = 0xb4;
    /// `RING_ESR`.
    pub const ESR: u32 = 0xb8;
    /// `RING_INSTPM` (masked).
    pub const INSTPM: u32 = 0xc0;
    /// `RING_RESET_CTL` (masked).
    pub const RESET_CTL: u32 = 0xd0;
    /// `RING_BBADDR`.
    pub const BBADDR: u32 = 0x140;
    /// `RING_ELSP`: four dword writes submit one pair of contexts.
    pub const ELSP: u32 = 0x230;
    /// `RING_EXECLIST_STATUS_LO`.
    pub const EXECLIST_STATUS_LO: u32 = 0x234;
    /// `RING_EXECLIST_STATUS_HI`: the current context id.
    pub const EXECLIST_STATUS_HI: u32 = 0x238;
    /// `RING_CONTEXT_CONTROL` (masked).
    pub const CONTEXT_CONTROL: u32 = 0x244;
    /// `GEN8_RING_PDP_LDW(n)` is `PDP_LDW + 8 n`.
    pub const PDP_LDW: u32 = 0x270;
    /// `GEN8_RING_PDP_UDW(n)` is `PDP_UDW + 8 n`.
    pub const PDP_UDW: u32 = 0x274;
    /// `RING_MODE_GEN7` (masked).
    pub const MODE: u32 = 0x29c;
    /// First CSB entry (`GEN8_EXECLISTS_STATUS_BUF`), [`CSB_ENTRIES`] of 8 bytes.
    pub const CSB: u32 = 0x370;
    /// `RING_CONTEXT_STATUS_PTR` (masked): write pointer bits 2:0, read pointer 10:8.
    pub const CSB_PTR: u32 = 0x3a0;
    /// `RING_CTX_TIMESTAMP`.
    pub const CTX_TIMESTAMP: u32 = 0x3a8;
    /// Size of one engine's register block as the register model covers it.
    pub const SPAN: u32 = 0x800;

    /// CSB entries (`GEN8_CSB_ENTRIES`).
    pub const CSB_ENTRIES: u32 = 6;
    /// `RING_CTL` valid bit (`RING_VALID`).
    pub const CTL_VALID: u32 = 1 << 0;
    /// `RING_CTL` size field (`RING_NR_PAGES`): pages minus one, bits 20:12.
    pub const CTL_SIZE_MASK: u32 = 0x1ff << 12;
    /// `RING_HEAD` offset bits 20:2 (`HEAD_ADDR`, GVT-g `RB_HEAD_OFF_MASK`).
    pub const HEAD_ADDR: u32 = 0x001f_fffc;
    /// `RING_HEAD` wrap count bits 31:21 (GVT-g `RB_HEAD_WRAP_CNT_MASK`).
    pub const HEAD_WRAP_SHIFT: u32 = 21;
    /// `RING_TAIL` offset bits 20:3 (`TAIL_ADDR`, GVT-g `RB_TAIL_OFF_MASK`).
    pub const TAIL_ADDR: u32 = 0x001f_fff8;

    /// `MI_MODE`: `STOP_RING`.
    pub const MI_MODE_STOP_RING: u32 = 1 << 8;
    /// `MI_MODE`: `MODE_IDLE` (read only, set while the ring is stopped and idle).
    pub const MI_MODE_IDLE: u32 = 1 << 9;
    /// `RING_MODE_GEN7`: `GFX_RUN_LIST_ENABLE` (execlists).
    pub const MODE_RUN_LIST_ENABLE: u32 = 1 << 15;
    /// `RING_MODE_GEN7`: `GFX_PPGTT_ENABLE`.
    pub const MODE_PPGTT_ENABLE: u32 = 1 << 9;
    /// `RING_MODE_GEN7`: `GEN8_GFX_PPGTT_48B`.
    pub const MODE_PPGTT_48B: u32 = 1 << 7;
    /// `RESET_CTL_REQUEST_RESET`.
    pub const RESET_CTL_REQUEST: u32 = 1 << 0;
    /// `RESET_CTL_READY_TO_RESET`.
    pub const RESET_CTL_READY: u32 = 1 << 1;
    /// `RING_EIR` / `RING_EMR`: `I915_ERROR_INSTRUCTION`.
    pub const EIR_INSTRUCTION: u32 = 1 << 0;
    /// `RING_EIR` / `RING_EMR`: `I915_ERROR_PAGE_TABLE`.
    pub const EIR_PAGE_TABLE: u32 = 1 << 4;
    /// `RING_EIR`: hang (GEN9 `RING_EIR` bit 5 is unused by i915; gvtpv reports a
    /// context that ran out of its command budget here).
    pub const EIR_HANG: u32 = 1 << 5;

    /// `EXECLIST_STATUS_LO` bits (GVT-g `struct execlist_status_format`).
    pub mod status {
        /// Current execlist pointer (which slot runs).
        pub const CURRENT: u32 = 1 << 0;
        /// Execlist write pointer (which slot the next ELSP fills).
        pub const WRITE: u32 = 1 << 1;
        /// Both slots are full.
        pub const QUEUE_FULL: u32 = 1 << 2;
        /// Slot 1 valid.
        pub const EL1_VALID: u32 = 1 << 3;
        /// Slot 0 valid.
        pub const EL0_VALID: u32 = 1 << 4;
        /// Slot 1 active.
        pub const EL1_ACTIVE: u32 = 1 << 17;
        /// Slot 0 active.
        pub const EL0_ACTIVE: u32 = 1 << 18;
    }
}

/// Render command streamer base (`RENDER_RING_BASE`).
pub const RCS_BASE: u32 = 0x2000;
/// Blitter command streamer base (`BLT_RING_BASE`).
pub const BCS_BASE: u32 = 0x22000;

/// `GEN6_GDRST`: domain reset requests, cleared by the hardware when done.
pub const GDRST: u32 = 0x941c;
/// `GEN6_GRDOM_FULL`.
pub const GRDOM_FULL: u32 = 1 << 0;
/// `GEN6_GRDOM_RENDER`.
pub const GRDOM_RENDER: u32 = 1 << 1;
/// `GEN6_GRDOM_MEDIA`.
pub const GRDOM_MEDIA: u32 = 1 << 2;
/// `GEN6_GRDOM_BLT`.
pub const GRDOM_BLT: u32 = 1 << 3;
/// `GEN6_GRDOM_VECS`.
pub const GRDOM_VECS: u32 = 1 << 4;

/// `FORCEWAKE_RENDER_GEN9` (masked).
pub const FORCEWAKE_RENDER: u32 = 0xa278;
/// `FORCEWAKE_GT_GEN9` (masked).
pub const FORCEWAKE_GT: u32 = 0xa188;
/// `FORCEWAKE_MEDIA_GEN9` (masked).
pub const FORCEWAKE_MEDIA: u32 = 0xa270;
/// `FORCEWAKE_ACK_RENDER_GEN9`.
pub const FORCEWAKE_ACK_RENDER: u32 = 0x0d84;
/// `FORCEWAKE_ACK_GT_GEN9`.
pub const FORCEWAKE_ACK_GT: u32 = 0x13_0044;
/// `FORCEWAKE_ACK_MEDIA_GEN9`.
pub const FORCEWAKE_ACK_MEDIA: u32 = 0x0d88;
/// The forcewake bit i915 sets and waits to see acknowledged (`FORCEWAKE_KERNEL`).
pub const FORCEWAKE_KERNEL: u32 = 1 << 0;

/// `GEN8_MASTER_IRQ`.
pub const MASTER_IRQ: u32 = 0x44200;
/// `GEN8_MASTER_IRQ_CONTROL`: the guest's enable bit.
pub const MASTER_IRQ_CONTROL: u32 = 1 << 31;
/// Master bit of GT bank 0, RCS half (`GEN8_GT_RCS_IRQ`).
pub const MASTER_GT_RCS: u32 = 1 << 0;
/// Master bit of GT bank 0, BCS half (`GEN8_GT_BCS_IRQ`).
pub const MASTER_GT_BCS: u32 = 1 << 1;

/// `GEN8_GT_ISR(n)` is `GT_ISR + 0x10 n`; IMR, IIR, IER follow at +4, +8, +0xc.
pub const GT_ISR: u32 = 0x44300;
/// `GEN8_GT_IMR(0)`.
pub const GT_IMR: u32 = 0x44304;
/// `GEN8_GT_IIR(0)`.
pub const GT_IIR: u32 = 0x44308;
/// `GEN8_GT_IER(0)`.
pub const GT_IER: u32 = 0x4430c;
/// GT interrupt banks on GEN8/9.
pub const GT_BANKS: u32 = 4;
/// Shift of the RCS half in GT bank 0 (`GEN8_RCS_IRQ_SHIFT`).
pub const GT_RCS_SHIFT: u32 = 0;
/// Shift of the BCS half in GT bank 0 (`GEN8_BCS_IRQ_SHIFT`).
pub const GT_BCS_SHIFT: u32 = 16;
/// `GT_RENDER_USER_INTERRUPT`, within an engine's half.
pub const GT_USER_INTERRUPT: u32 = 1 << 0;
/// `GT_CS_MASTER_ERROR_INTERRUPT`, within an engine's half.
pub const GT_CS_MASTER_ERROR: u32 = 1 << 3;
/// `GT_CONTEXT_SWITCH_INTERRUPT`, within an engine's half.
pub const GT_CONTEXT_SWITCH: u32 = 1 << 8;

/// `GFX_FLSH_CNTL_GEN6`: a write invalidates the GGTT TLBs.
pub const GFX_FLSH_CNTL: u32 = 0x10_1008;
/// `FENCE_REG_GEN6_LO(i)` is `FENCE_BASE + 8 i`; the HI dword follows.
pub const FENCE_BASE: u32 = 0x10_0000;
/// Fence registers on GEN9.
pub const FENCES: u32 = 32;

/// `GEN6_PCODE_MAILBOX`.
pub const PCODE_MAILBOX: u32 = 0x13_8124;
/// `GEN6_PCODE_READY`: set by the driver with a command, cleared by pcode when done.
pub const PCODE_READY: u32 = 1 << 31;
/// `GEN6_PCODE_DATA`.
pub const PCODE_DATA: u32 = 0x13_8128;
/// `GEN6_PCODE_DATA1`.
pub const PCODE_DATA1: u32 = 0x13_812c;

/// `GEN8_PRIVATE_PAT_LO`; `_HI` follows.
pub const PRIVATE_PAT_LO: u32 = 0x40e0;

/// Registers below this offset are MMIO; the GGTT's entries start at
/// [`GTT_OFFSET`] (`gvt/mmio.c: reg_is_mmio`).
pub const MMIO_SIZE: u32 = 2 << 20;
/// BAR0 offset of GGTT entry 0 (half of the 16 MiB BAR0).
pub const GTT_OFFSET: u32 = 8 << 20;
/// Bytes of GGTT entries in BAR0 (8 MiB: 4 GiB of graphics memory).
pub const GTT_SIZE: u32 = 8 << 20;

/// The interrupt bits of `engine_shift` ([`GT_RCS_SHIFT`] or [`GT_BCS_SHIFT`]).
pub const fn gt_bits(engine_shift: u32, bits: u32) -> u32 {
    (bits & 0xffff) << engine_shift
}

/// A masked register write: the high half selects which low bits change.
pub const fn masked_write(old: u32, v: u32) -> u32 {
    let mask = v >> 16;
    (old & !mask) | (v & mask)
}

/// The value that sets `bits` of a masked register (`_MASKED_BIT_ENABLE`).
pub const fn masked_enable(bits: u32) -> u32 {
    (bits << 16) | bits
}

/// The value that clears `bits` of a masked register (`_MASKED_BIT_DISABLE`).
pub const fn masked_disable(bits: u32) -> u32 {
    bits << 16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_writes_touch_only_selected_bits() {
        assert_eq!(masked_write(0x00f0, masked_enable(1 << 15)), 0x80f0);
        assert_eq!(masked_write(0x80f0, masked_disable(1 << 15)), 0x00f0);
        // No mask bits: nothing changes, whatever the low half says.
        assert_eq!(masked_write(0x1234, 0xffff), 0x1234);
    }

    #[test]
    fn gt_bank0_layout() {
        assert_eq!(gt_bits(GT_RCS_SHIFT, GT_CONTEXT_SWITCH), 1 << 8);
        assert_eq!(gt_bits(GT_BCS_SHIFT, GT_CONTEXT_SWITCH), 1 << 24);
        assert_eq!(gt_bits(GT_BCS_SHIFT, GT_USER_INTERRUPT), 1 << 16);
        assert_eq!(GT_IER - GT_ISR, 0xc);
    }
}
