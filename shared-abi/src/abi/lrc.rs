// SPDX-License-Identifier: GPL-2.0

//! GEN9 execlists: the context descriptor, the logical ring context (LRC) image, the
//! context status buffer (CSB) and the status page (HWSP) indices.
//!
//! Checked against the Linux 7.2 tree: `gt/intel_lrc.h` (descriptor bits),
//! `gt/intel_lrc_reg.h` (state-page dword indices), `gt/intel_lrc.c`
//! (`gen9_xcs_offsets`, `set_offsets`), `gt/intel_execlists_submission.c`
//! (`GEN8_CTX_STATUS_*`), `gt/intel_engine.h` (HWSP CSB indices),
//! `gt/intel_engine_cs.c` (`intel_engine_context_size`), and GVT-g's `gvt/execlist.h`.

/// Page size of the image.
pub const PAGE: u32 = 4096;

/// Context descriptor (lower dword; the upper dword is the context id).
pub mod desc {
    /// `GEN8_CTX_VALID`.
    pub const VALID: u64 = 1 << 0;
    /// `GEN8_CTX_FORCE_PD_RESTORE`.
    pub const FORCE_PD_RESTORE: u64 = 1 << 1;
    /// `CTX_DESC_FORCE_RESTORE`.
    pub const FORCE_RESTORE: u64 = 1 << 2;
    /// `GEN8_CTX_ADDRESSING_MODE_SHIFT`: bits 4:3.
    pub const MODE_SHIFT: u32 = 3;
    /// Addressing-mode mask, shifted.
    pub const MODE_MASK: u64 = 3 << MODE_SHIFT;
    /// `INTEL_LEGACY_32B_CONTEXT` (3-level, 4 PDPs).
    pub const MODE_LEGACY_32B: u64 = 1;
    /// `INTEL_LEGACY_64B_CONTEXT` (4-level, PML4 in PDP0).
    pub const MODE_LEGACY_64B: u64 = 3;
    /// `GEN8_CTX_PRIVILEGE`.
    pub const PRIVILEGE: u64 = 1 << 8;
    /// LRCA: GGTT address of page 0 of the image, bits 31:12.
    pub const LRCA_MASK: u64 = 0xffff_f000;
    /// `GEN8_CTX_ID_SHIFT`.
    pub const ID_SHIFT: u32 = 32;

    /// A descriptor as i915 builds one for a 4-level context (`lrc_descriptor`).
    pub const fn make(lrca: u32, ctx_id: u32) -> u64 {
        ((ctx_id as u64) << ID_SHIFT)
            | (lrca as u64 & LRCA_MASK)
            | PRIVILEGE
            | (MODE_LEGACY_64B << MODE_SHIFT)
            | VALID
    }

    /// The addressing mode field.
    pub const fn mode(d: u64) -> u64 {
        (d & MODE_MASK) >> MODE_SHIFT
    }

    /// The LRCA field (a GGTT address).
    pub const fn lrca(d: u64) -> u32 {
        (d & LRCA_MASK) as u32
    }

    /// The context id.
    pub const fn ctx_id(d: u64) -> u32 {
        (d >> ID_SHIFT) as u32
    }
}

/// Dword indices in the register state page (page 1 of the image); the register offset
/// sits at index - 1 (`gt/intel_lrc_reg.h`).
pub mod state {
    /// `CTX_CONTEXT_CONTROL`.
    pub const CONTEXT_CONTROL: usize = 0x03;
    /// `CTX_RING_HEAD`.
    pub const RING_HEAD: usize = 0x05;
    /// `CTX_RING_TAIL`.
    pub const RING_TAIL: usize = 0x07;
    /// `CTX_RING_START`.
    pub const RING_START: usize = 0x09;
    /// `CTX_RING_CTL`.
    pub const RING_CTL: usize = 0x0b;
    /// `CTX_BB_STATE`.
    pub const BB_STATE: usize = 0x11;
    /// `CTX_TIMESTAMP`.
    pub const TIMESTAMP: usize = 0x23;
    /// `CTX_PDP3_UDW`.
    pub const PDP3_UDW: usize = 0x25;
    /// `CTX_PDP0_UDW`: upper dword of the PML4 address of a 4-level context.
    pub const PDP0_UDW: usize = 0x31;
    /// `CTX_PDP0_LDW`: lower dword of the PML4 address of a 4-level context.
    pub const PDP0_LDW: usize = 0x33;
    /// `CTX_PDPn_UDW` for n in 0..4 (`CTX_PDPn_LDW` is two dwords later).
    pub const fn pdp_udw(n: usize) -> usize {
        PDP0_UDW - 4 * n
    }
    /// Dwords in the state page.
    pub const DWORDS: usize = 1024;
}

/// The image's first page (`LRC_PPHWSP_PN`): the per-process status page.
pub const PPHWSP_PAGE: u32 = 0;
/// The image's register state page (`LRC_STATE_PN`).
pub const STATE_PAGE: u32 = 1;
/// Pages of a GEN9 render context image (`GEN9_LR_CONTEXT_RENDER_SIZE`).
pub const RCS_CONTEXT_PAGES: u32 = 22;
/// Pages of a GEN9 non-render context image (`GEN8_LR_CONTEXT_OTHER_SIZE`).
pub const XCS_CONTEXT_PAGES: u32 = 2;

/// `CTX_CTRL_INHIBIT_SYN_CTX_SWITCH` (a masked bit of `CONTEXT_CONTROL`).
pub const CTX_CTRL_INHIBIT_SYN_CTX_SWITCH: u32 = 1 << 3;
/// `CTX_CTRL_ENGINE_CTX_RESTORE_INHIBIT`.
pub const CTX_CTRL_ENGINE_CTX_RESTORE_INHIBIT: u32 = 1 << 0;

/// `MI_LOAD_REGISTER_IMM(n)` header with `MI_LRI_FORCE_POSTED`.
const fn lri_posted(n: u32) -> u32 {
    (0x22 << 23) | (2 * n - 1) | (1 << 12)
}

/// The register-offset layout of a GEN9 non-render context, first three blocks of
/// `gen9_xcs_offsets`: (dword index of the LRI header, register offsets from the
/// engine base). The values sit right after each offset.
const XCS_BLOCKS: [(usize, &[u32]); 3] = [
    (
        1,
        &[
            0x244, 0x034, 0x030, 0x038, 0x03c, 0x168, 0x140, 0x110, 0x11c, 0x114, 0x118, 0x1c0,
            0x1c4, 0x1c8,
        ],
    ),
    (
        0x21,
        &[
            0x3a8, 0x28c, 0x288, 0x284, 0x280, 0x27c, 0x278, 0x274, 0x270,
        ],
    ),
    (0x41, &[0x200]),
];

/// Writes the ring-context part of a state page as i915's `set_offsets` does for
/// `gen9_xcs_offsets` (its first three blocks: ring registers, timestamp and PDPs,
/// `RING_MI_MODE`'s neighbour 0x200): LRI headers and register offsets for an engine at
/// `base`, values zero, everything else `MI_NOOP`. The render engine's layout starts
/// with the same blocks at the same indices (`gen9_rcs_offsets`), so the indices of
/// [`state`] hold for both.
///
/// Returns `None` if `page` is not [`state::DWORDS`] long.
pub fn init_state(page: &mut [u32], base: u32) -> Option<()> {
    if page.len() != state::DWORDS {
        return None;
    }
    page.fill(0);
    for (at, regs) in XCS_BLOCKS {
        *page.get_mut(at)? = lri_posted(regs.len() as u32);
        for (i, r) in regs.iter().enumerate() {
            *page.get_mut(at + 1 + 2 * i)? = base + r;
        }
    }
    Some(())
}

/// CSB entry bits, lower dword (`GEN8_CTX_STATUS_*`); the upper dword is the context id.
pub mod csb {
    /// `GEN8_CTX_STATUS_IDLE_ACTIVE`.
    pub const IDLE_ACTIVE: u32 = 1 << 0;
    /// `GEN8_CTX_STATUS_PREEMPTED`.
    pub const PREEMPTED: u32 = 1 << 1;
    /// `GEN8_CTX_STATUS_ELEMENT_SWITCH`.
    pub const ELEMENT_SWITCH: u32 = 1 << 2;
    /// `GEN8_CTX_STATUS_ACTIVE_IDLE`.
    pub const ACTIVE_IDLE: u32 = 1 << 3;
    /// `GEN8_CTX_STATUS_COMPLETE`.
    pub const COMPLETE: u32 = 1 << 4;
    /// `GEN8_CTX_STATUS_LITE_RESTORE`.
    pub const LITE_RESTORE: u32 = 1 << 15;
    /// Entries (`GEN8_CSB_ENTRIES`).
    pub const ENTRIES: u32 = 6;
    /// The write pointer before the first entry: "none yet" (GVT-g
    /// `init_vgpu_execlist`; i915 resets its read pointer to entries - 1).
    pub const PTR_NONE: u32 = 7;
}

/// Status page dword indices (`gt/intel_engine.h`).
pub mod hwsp {
    /// `I915_HWS_CSB_BUF0_INDEX`: CSB entry i at dwords 0x10 + 2i, 0x11 + 2i.
    pub const CSB_BUF0: usize = 0x10;
    /// `I915_HWS_CSB_WRITE_INDEX`: the CSB write pointer.
    pub const CSB_WRITE: usize = 0x1f;
    /// First dword free for the driver's own use (`I915_GEM_HWS_SEQNO`'s region starts
    /// at 0x40; everything from 0x30 up is software-defined on GEN9).
    pub const DRIVER_FIRST: usize = 0x30;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_fields() {
        let d = desc::make(0x0012_3000, 7);
        assert_eq!(desc::lrca(d), 0x0012_3000);
        assert_eq!(desc::ctx_id(d), 7);
        assert_eq!(desc::mode(d), desc::MODE_LEGACY_64B);
        assert_ne!(d & desc::PRIVILEGE, 0);
        assert_ne!(d & desc::VALID, 0);
    }

    #[test]
    fn state_page_matches_i915_indices() {
        let mut p = [0u32; state::DWORDS];
        init_state(&mut p, 0x22000).unwrap();
        // The register offset sits right before each value (gt/intel_lrc_reg.h).
        assert_eq!(p[state::CONTEXT_CONTROL - 1], 0x22244);
        assert_eq!(p[state::RING_HEAD - 1], 0x22034);
        assert_eq!(p[state::RING_TAIL - 1], 0x22030);
        assert_eq!(p[state::RING_START - 1], 0x22038);
        assert_eq!(p[state::RING_CTL - 1], 0x2203c);
        assert_eq!(p[state::TIMESTAMP - 1], 0x223a8);
        assert_eq!(p[state::PDP0_UDW - 1], 0x22274);
        assert_eq!(p[state::PDP0_LDW - 1], 0x22270);
        assert_eq!(p[state::pdp_udw(3) - 1], 0x2228c);
        // LRI(14) with FORCE_POSTED, as set_offsets writes it.
        assert_eq!(p[1], (0x22 << 23) | 27 | (1 << 12));
        assert_eq!(p[0], 0);
        assert!(init_state(&mut p[..10], 0).is_none());
    }
}
