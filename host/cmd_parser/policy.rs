// SPDX-License-Identifier: GPL-2.0

//! What the parser allows: per command, the register whitelist, and the address audit.
//!
//! GVT-g keeps lengths and decisions together in `cmd_parser.c: cmd_info[]`; here the
//! lengths come from shared-abi's `GEN9_CMDS` and the decisions from this file, keyed by
//! (kind, opcode) as the table spells them.
//!
//! **Decision:** every batch is scanned and runs from its copy, and the copy is started
//! through the GGTT, so it runs privileged on hardware. GVT-g scans only GGTT batches
//! (`batch_buffer_needs_scan` skips PPGTT ones unless `scan_nonprivbb`) and lets the
//! hardware stop privileged work in the others. So this policy refuses in every batch
//! what GEN9 refuses in a non-privileged one: GGTT accesses and GGTT batch starts
//! ([`Reason::GgttInBatch`]). The ring is privileged: GGTT accesses from it are audited
//! against the vGPU's slices, as GVT-g's `cmd_address_audit` does.

use super::{Engine, Ranges, Reason, Space};
use crate::abi::gpu_cmd::table::{ring, CmdInfo, CmdKind, LenRule};

/// What the scanner does with a command the policy allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Action {
    /// Step over it.
    Next,
    /// Replace it by `MI_NOOP`s (GVT-g patches these in place too).
    Noop,
    /// `MI_BATCH_BUFFER_END`.
    End,
    /// `MI_BATCH_BUFFER_START`.
    Start(Start),
}

/// A decoded `MI_BATCH_BUFFER_START`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Start {
    /// Batch address (bits 1:0 dropped, as GVT-g's `BATCH_BUFFER_ADDR_MASK`).
    pub(super) addr: u64,
    /// Address space (bit 8: PPGTT).
    pub(super) space: Space,
    /// Second level (bit 22, `BATCH_BUFFER_2ND_LEVEL_BIT`).
    pub(super) second: bool,
}

/// Where a command is.
pub(super) struct Ctx<'a> {
    /// The engine whose ring it is.
    pub(super) engine: Engine,
    /// In a batch (unprivileged), else in the ring.
    pub(super) in_batch: bool,
    /// The vGPU's graphics memory.
    pub(super) ranges: &'a Ranges,
}

/// `MI_NOOP`.
pub(super) const MI_NOOP: u32 = 0;
/// `MI_BATCH_BUFFER_START`, GEN8 form (3 dwords).
pub(super) const MI_BB_START: u32 = (0x31 << 23) | 1;
/// `MI_BATCH_BUFFER_START` bit 8: through the PPGTT (`MI_BATCH_PPGTT_HSW`).
pub(super) const BB_PPGTT: u32 = 1 << 8;
/// `MI_BATCH_BUFFER_START` bit 22: second level.
pub(super) const BB_SECOND_LEVEL: u32 = 1 << 22;
/// Bit 22 of several MI commands: the address is in the GGTT (`MI_USE_GGTT`).
const MI_USE_GGTT: u32 = 1 << 22;
/// The hardware status page GEN9 index-mode stores write into.
const HWSP_BYTES: u64 = 4096;

/// `XY_FAST_COPY_BLT` (i915: `GEN9_XY_FAST_COPY_BLT_CMD`, `gt/intel_migrate.c` emits it
/// with 10 dwords). **Decision:** not in GVT-g's `cmd_info[]`, so not in `GEN9_CMDS`;
/// GVT-g never sees it because it does not scan PPGTT batches. The sim models it, so the
/// parser knows it from here until shared-abi's table has it.
pub(super) const EXTRA_CMDS: [CmdInfo; 1] = [CmdInfo {
    name: "XY_FAST_COPY_BLT",
    kind: CmdKind::Blt,
    opcode: 0x142,
    rings: ring::BCS,
    len: LenRule::Exact { bits: 8, len: 10 },
}];

/// Registers (offset, bytes) `MI_LOAD_REGISTER_IMM` may write on every engine: the
/// `F_CMD_ACCESS` registers of GVT-g's `handlers.c` that exist on SKL/KBL (`D_ALL`,
/// `D_BDW_PLUS`, `D_SKL_PLUS`, `D_KBL`), engine-relative ones in [`RING_REGS`].
///
/// **Decision:** left out of GVT-g's list: the registers that hold graphics addresses
/// (`F_GMADR`: `BSD/BLT/VEBOX_HWS_PGA_GEN7`, 0x2148, `CCID`, 0x12198), since no value
/// is audited here; `RING_MODE_GEN7` and `RING_FORCE_TO_NONPRIV` (0x24d0), which GVT-g
/// lets through only by running their MMIO write handlers on the value
/// (`F_CMD_WRITE_PATCH`); the PDPs (GVT-g switches the shadow PPGTT on an LRI to
/// PDP0, `cmd_pdp_mmio_update_handler`; here the root comes only from the context); the
/// BDW-only and BXT-only ones (among them the CS GPRs, `D_BXT` in GVT-g). GVT-g also
/// learns registers from the guest's first context (`is_init_ctx`), which this static
/// list cannot.
const COMMON_REGS: &[(u32, u32)] = &[
    (0x20a0, 4),
    (0x20dc, 4),
    (0x20e0, 4), // GEN7_FF_SLICE_CS_CHICKEN1
    (0x20e4, 4), // FF_SLICE_CS_CHICKEN2
    (0x20ec, 4), // GEN9_CS_DEBUG_MODE1
    (0x2088, 4),
    (0x2090, 4), // _3D_CHICKEN3
    (0x2120, 4), // CACHE_MODE_0
    (0x2124, 4),
    (0x215c, 4),  // D_BDW_PLUS
    (0x21f0, 4),  // D_BDW_PLUS
    (0x2290, 8),  // D_BDW_PLUS
    (0x2300, 88), // HS_INVOCATION_COUNT .. PS_DEPTH_COUNT, 8 bytes each
    (0x2420, 4),
    (0x2430, 4),
    (0x2434, 4),
    (0x2438, 4),
    (0x243c, 4),
    (0x2470, 4),
    (0x2580, 4),  // GEN8_CS_CHICKEN1, masked
    (0x4030, 4),  // ARB_MODE
    (0x4090, 4),  // GAM_ECOCHK
    (0x4094, 4),  // D_BDW_PLUS
    (0x4ab0, 4),  // GEN9_GAMT_ECO_REG_RW_IA
    (0x4ab8, 4),  // GAMT_CHKN_BIT_REG (KBL)
    (0x4ddc, 4),  // MMCD_MISC_CTRL
    (0x4de0, 16), // TRVATTL3PTRDW(0..3)
    (0x4df0, 4),  // TRVADR
    (0x4df4, 4),  // TRTTE
    (0x5200, 32), // SO_WRITE_OFFSET etc.
    (0x5240, 32),
    (0x5280, 16),
    (0x5588, 4), // GEN9_WM_CHICKEN3
    (0x7000, 4), // CACHE_MODE_0_GEN7
    (0x7004, 4), // CACHE_MODE_1
    (0x7008, 4), // GEN7_GT_MODE
    (0x7010, 4), // GEN7_COMMON_SLICE_CHICKEN1
    (0x7014, 4), // COMMON_SLICE_CHICKEN2
    (0x7018, 4),
    (0x7300, 4), // HDC_CHICKEN0
    (0x7304, 4), // GEN8_HDC_CHICKEN1
    (0x9030, 4),
    (0x940c, 4),     // GEN7_UCGCTL4
    (0x9430, 4),     // GEN8_UCGCTL6
    (0xb004, 4),     // GEN8_GARBCNTL
    (0xb020, 128),   // GEN7_L3CNTLREG2 ..
    (0xb118, 4),     // GEN8_L3SQCREG4
    (0xb11c, 4),     // BDW_SCRATCH1
    (0xc800, 0x7f8), // GEN9_GFX_MOCS(0) .., every engine's MOCS table
    (0xe100, 4),     // GEN7_HALF_SLICE_CHICKEN1
    (0xe180, 4),     // HALF_SLICE_CHICKEN2
    (0xe184, 4),     // HSW_HALF_SLICE_CHICKEN3
    (0xe188, 4),
    (0xe194, 4),
    (0xe220, 4),
    (0xe230, 4),
    (0xe240, 4),
    (0xe260, 4),
    (0xe270, 4),
    (0xe280, 4),
    (0xe2a0, 4),
    (0xe2b0, 4),
    (0xe2c0, 4),
    (0xe4cc, 4),
    (0xe4f0, 4),   // GEN8_ROW_CHICKEN
    (0xe4f4, 4),   // GEN7_ROW_CHICKEN2
    (0x22200, 4),  // BCS_SWCTRL
    (0x120000, 4), // GTFIFODBG
    (0x120008, 4), // GTFIFOCTL
];

/// Engine-relative registers (offset from the engine's MMIO base, bytes) an engine may
/// write with `MI_LOAD_REGISTER_IMM`, each only on its own engine. GVT-g registers them
/// for every engine (`MMIO_RING_DFH`, and 0x2178/0x2220-style absolutes per base) and
/// lets any engine write any of them; **Decision:** here only the engine's own.
const RING_REGS: &[(u32, u32)] = &[
    (0x028, 4),
    (0x040, 4), // RING_SYNC_0
    (0x044, 4), // RING_SYNC_1
    (0x09c, 4), // RING_MI_MODE
    (0x0c0, 4), // RING_INSTPM
    (0x0d4, 4), // CSFE_CHICKEN1 (SKL+)
    (0x134, 4),
    (0x178, 4), // 0x2178, 0x22178
    (0x17c, 4), // 0x217c, 0x2217c
    (0x220, 4), // 0x2220, 0x22220
    (0x244, 4), // RING_CONTEXT_CONTROL
    (0x358, 4), // RING_TIMESTAMP
    (0x35c, 4), // RING_TIMESTAMP_UDW
];

/// Registers `MI_STORE_REGISTER_MEM` and `MI_LOAD_REGISTER_MEM` may name (GVT-g:
/// `cmd_reg_handler`, "srm"/"lrm": `GEN8_L3SQCREG4` and 0x21f0; `INSTPM` on BDW only).
const SRM_LRM_REGS: &[u32] = &[0xb118, 0x21f0];

/// The register field of a register dword (GVT-g: `cmd_reg`, bits 22:2).
const REG_MASK: u32 = 0x007f_fffc;

/// Whether `MI_LOAD_REGISTER_IMM` on `engine` may write the register named by `reg`
/// (the dword as the command carries it).
///
/// **Decision:** GVT-g masks the dword to bits 22:2 and checks the rest; here a dword
/// with any other bit set is refused, so the backend can never see a different register
/// than the one checked. (GEN11's LRI MMIO-remap bit does not exist on GEN9.)
pub(super) fn lri_reg_ok(engine: Engine, reg: u32) -> bool {
    if reg & !REG_MASK != 0 {
        return false;
    }
    let inside = |&(start, len): &(u32, u32)| reg >= start && reg - start < len;
    if COMMON_REGS.iter().any(inside) {
        return true;
    }
    reg.checked_sub(engine.base())
        .is_some_and(|rel| RING_REGS.iter().any(|r| inside_rel(r, rel)))
}

fn inside_rel(&(start, len): &(u32, u32), rel: u32) -> bool {
    rel >= start && rel - start < len
}

/// Whether SRM/LRM on `engine` may name `reg`.
fn srm_reg_ok(engine: Engine, reg: u32) -> bool {
    lri_reg_ok(engine, reg) && SRM_LRM_REGS.contains(&reg)
}

/// Dword `i` of the command, or [`Reason::Length`] if it is shorter.
fn dw(cmd: &[u32], i: usize) -> Result<u32, Reason> {
    cmd.get(i).copied().ok_or(Reason::Length)
}

/// The 48-bit address in dwords `i` (low, bits 31:0 under `lo_mask`) and `i + 1` (high,
/// bits 15:0); an address above 48 bits is [`Reason::Address`] (GVT-g masks the high
/// dword to 15:0 instead, `cmd_gma_hi`).
fn addr48(cmd: &[u32], i: usize, lo_mask: u32) -> Result<u64, Reason> {
    let lo = dw(cmd, i)? & lo_mask;
    let hi = dw(cmd, i + 1)?;
    if hi >> 16 != 0 {
        return Err(Reason::Address);
    }
    Ok(u64::from(lo) | (u64::from(hi) << 32))
}

/// Audits an access of `size` bytes at `addr` in `space` (GVT-g: `cmd_address_audit`).
fn audit(ctx: &Ctx<'_>, space: Space, addr: u64, size: u64) -> Result<(), Reason> {
    match space {
        Space::Ggtt if ctx.in_batch => Err(Reason::GgttInBatch),
        Space::Ggtt if !ctx.ranges.ggtt_ok(addr, size) => Err(Reason::Address),
        Space::Ppgtt if !ctx.ranges.ppgtt_ok(addr, size) => Err(Reason::Address),
        _ => Ok(()),
    }
}

/// Audits an index-mode store of `size` bytes at byte `offset` of the hardware status
/// page: the page is in the GGTT, so not from a batch; the store stays in the page.
fn audit_index(ctx: &Ctx<'_>, offset: u64, size: u64) -> Result<(), Reason> {
    if ctx.in_batch {
        return Err(Reason::GgttInBatch);
    }
    match offset.checked_add(size) {
        Some(end) if end <= HWSP_BYTES => Ok(()),
        _ => Err(Reason::Address),
    }
}

fn space(ggtt: bool) -> Space {
    if ggtt {
        Space::Ggtt
    } else {
        Space::Ppgtt
    }
}

fn want_len(cmd: &[u32], ok: bool) -> Result<(), Reason> {
    if ok && !cmd.is_empty() {
        Ok(())
    } else {
        Err(Reason::Length)
    }
}

/// Decides on the command `cmd` (exactly its length, from the table) described by
/// `info`.
///
/// # Errors
///
/// The [`Reason`] it is refused for.
pub(super) fn check(ctx: &Ctx<'_>, info: &CmdInfo, cmd: &[u32]) -> Result<Action, Reason> {
    let h = dw(cmd, 0)?;
    let len = cmd.len();
    match info.kind {
        CmdKind::Mi => check_mi(ctx, info.opcode, h, cmd, len),
        CmdKind::Blt => check_blt(ctx, info.opcode, cmd),
        CmdKind::Gfx => check_gfx(ctx, info.opcode, cmd),
    }
}

fn check_mi(ctx: &Ctx<'_>, op: u16, h: u32, cmd: &[u32], len: usize) -> Result<Action, Reason> {
    match op {
        // MI_WAIT_FOR_EVENT: GVT-g turns a wait for a flip into a no-op, since flips are
        // emulated (`cmd_handler_mi_wait_for_event`); so do we.
        0x03 => {
            const FLIP_PENDING: u32 =
                (1 << 15) | (1 << 9) | (1 << 1) | (1 << 20) | (1 << 10) | (1 << 2);
            Ok(if h & FLIP_PENDING != 0 {
                Action::Noop
            } else {
                Action::Next
            })
        }
        // MI_BATCH_BUFFER_END.
        0x0a => Ok(Action::End),
        // MI_DISPLAY_FLIP: GVT-g emulates it on the virtual display planes; gvtpv has no
        // display model, so **Decision:** refused. MI_UPDATE_GTT, MI_CLFLUSH,
        // MI_REPORT_PERF_COUNT, MI_CONDITIONAL_BATCH_BUFFER_END: GVT-g's
        // `unexpected_cmd`.
        0x14 | 0x23 | 0x27 | 0x28 | 0x36 => Err(Reason::Privileged),
        // MI_SEMAPHORE_WAIT (length 4 from the table): GVT-g refuses it
        // (`cmd_handler_mi_semaphore_wait`); **Decision:** allowed, the sim models it;
        // its address (dwords 2-3, bit 22 GGTT) is audited.
        0x1c => {
            let a = addr48(cmd, 2, !3)?;
            audit(ctx, space(h & MI_USE_GGTT != 0), a, 4)?;
            Ok(Action::Next)
        }
        // MI_STORE_DATA_IMM (`cmd_handler_mi_store_data_imm`): 4 dwords, 5 with the
        // qword bit 21; core mode (dword 1 bit 0) stores one size further.
        // **Decision:** GVT-g checks length and address only in the GGTT form; here both.
        0x20 => {
            let qword = h & (1 << 21) != 0;
            want_len(cmd, len == if qword { 5 } else { 4 })?;
            let size = if qword { 8 } else { 4 };
            let core = u64::from(dw(cmd, 1)? & 1);
            let a = addr48(cmd, 1, !3)?;
            let a = a.checked_add(size * core).ok_or(Reason::Address)?;
            audit(ctx, space(h & MI_USE_GGTT != 0), a, size)?;
            Ok(Action::Next)
        }
        // MI_STORE_DATA_INDEX (MI_STORE_DWORD_INDEX): GVT-g refuses it.
        // **Decision:** allowed from the ring with 3 dwords and the offset (dword 1)
        // inside the status page; from a batch it is a GGTT access.
        0x21 => {
            want_len(cmd, len == 3)?;
            let off = dw(cmd, 1)?;
            if off & 3 != 0 {
                return Err(Reason::Address);
            }
            audit_index(ctx, u64::from(off), 4)?;
            Ok(Action::Next)
        }
        // MI_LOAD_REGISTER_IMM (`cmd_handler_lri`): (register, value) pairs; every
        // register must be whitelisted.
        0x22 => {
            want_len(cmd, len >= 3 && len % 2 == 1)?;
            let regs = cmd.get(1..).unwrap_or(&[]);
            if regs.iter().step_by(2).all(|&r| lri_reg_ok(ctx.engine, r)) {
                Ok(Action::Next)
            } else {
                Err(Reason::Register)
            }
        }
        // MI_STORE_REGISTER_MEM and MI_LOAD_REGISTER_MEM (length 4 from the table,
        // `cmd_handler_srm`/`_lrm`): two registers only on GEN9; the address (dwords
        // 2-3) audited. **Decision:** GVT-g audits only GGTT addresses (the GGTT bit 22);
        // here PPGTT ones get the width check too.
        0x24 | 0x29 => {
            if !srm_reg_ok(ctx.engine, dw(cmd, 1)?) {
                return Err(Reason::Register);
            }
            let a = addr48(cmd, 2, !3)?;
            audit(ctx, space(h & MI_USE_GGTT != 0), a, 4)?;
            Ok(Action::Next)
        }
        // MI_FLUSH_DW (`cmd_handler_mi_flush_dw`): 4 or 5 dwords; with a post-sync
        // operation (bits 15:14) the address in dwords 1-2, GGTT if dword 1 bit 2,
        // index mode (bit 21) an offset into the status page.
        0x26 => {
            want_len(cmd, len == 4 || len == 5)?;
            if (h >> 14) & 3 != 0 {
                let d1 = dw(cmd, 1)?;
                let a = addr48(cmd, 1, !7)?;
                if h & (1 << 21) != 0 {
                    audit_index(ctx, a, 8)?;
                } else {
                    audit(ctx, space(d1 & (1 << 2) != 0), a, 8)?;
                }
            }
            Ok(Action::Next)
        }
        // MI_LOAD_REGISTER_REG (`cmd_handler_lrr`): only 0x215c on BDW; none on GEN9.
        0x2a => Err(Reason::Register),
        // MI_OP_2E, MI_COPY_MEM_MEM (length 5 from the table): GVT-g refuses it.
        // **Decision:** allowed, the sim models it; destination (dwords 1-2, GGTT if bit
        // 21) and source (dwords 3-4, GGTT if bit 22) audited.
        0x2e => {
            let dst = addr48(cmd, 1, !3)?;
            let src = addr48(cmd, 3, !3)?;
            audit(ctx, space(h & (1 << 21) != 0), dst, 4)?;
            audit(ctx, space(h & MI_USE_GGTT != 0), src, 4)?;
            Ok(Action::Next)
        }
        // MI_OP_2F, MI_ATOMIC (`cmd_handler_mi_op_2f`): 3 dwords, 11 with inline data
        // (bit 18); the operand size 4 << bits 20:19 at dwords 1-2. **Decision:** GVT-g
        // checks length and address only in the GGTT form; here both.
        0x2f => {
            want_len(cmd, len == if h & (1 << 18) != 0 { 11 } else { 3 })?;
            let size = 4u64 << ((h >> 19) & 3);
            let a = addr48(cmd, 1, !3)?;
            audit(ctx, space(h & MI_USE_GGTT != 0), a, size)?;
            Ok(Action::Next)
        }
        // MI_BATCH_BUFFER_START (`cmd_handler_mi_batch_buffer_start`): the GEN8 form of
        // 3 dwords. **Decision:** stricter than GVT-g: no header bits besides the length,
        // the address space (8) and second level (22), so the patched header means
        // exactly what was scanned.
        0x31 => {
            want_len(cmd, len == 3)?;
            if h & !(MI_BB_START | BB_PPGTT | BB_SECOND_LEVEL) != 0 {
                return Err(Reason::Length);
            }
            let s = Start {
                addr: addr48(cmd, 1, !3)?,
                space: space(h & BB_PPGTT == 0),
                second: h & BB_SECOND_LEVEL != 0,
            };
            if s.space == Space::Ggtt && ctx.in_batch {
                return Err(Reason::GgttInBatch);
            }
            Ok(Action::Start(s))
        }
        // Everything else GVT-g lets through without a handler (MI_NOOP, MI_ARB_CHECK,
        // MI_USER_INTERRUPT, semaphores, MI_MATH, MI_LOAD_URB_MEM, ...).
        // **Decision:** MI_USER_INTERRUPT stays: GVT-g turns it into a no-op and raises
        // the event at completion, here the sim executes it and reports it.
        _ => Ok(Action::Next),
    }
}

/// Blitter commands. On GEN9 they carry no address-space bit; **Decision:** their
/// addresses are the context's PPGTT (as i915 uses them, from non-privileged PPGTT
/// batches; the sim translates them so), checked for the 48-bit width only, since the
/// shadow PPGTT maps nothing but the guest's own pages. GVT-g audits none of them
/// (`ADDR_FIX_*` is bookkeeping only). A hardware backend running the copies privileged
/// from the GGTT must confirm the blitter keeps using the PPGTT there.
fn check_blt(ctx: &Ctx<'_>, op: u16, cmd: &[u32]) -> Result<Action, Reason> {
    // (opcode, address dwords): XY_COLOR_BLT, XY_SRC_COPY_BLT, XY_FAST_COPY_BLT.
    let at: &[usize] = match op {
        0x150 => &[4],
        0x153 => &[4, 8],
        0x142 => &[4, 8],
        _ => &[],
    };
    for &i in at {
        let a = addr48(cmd, i, !3)?;
        audit(ctx, Space::Ppgtt, a, 1)?;
    }
    Ok(Action::Next)
}

/// 3D, media and GPGPU commands: PIPE_CONTROL is audited, the rest pass (their
/// addresses are PPGTT or state-base relative, as in GVT-g).
fn check_gfx(ctx: &Ctx<'_>, op: u16, cmd: &[u32]) -> Result<Action, Reason> {
    const PIPE_CONTROL: u16 = 0x7a00;
    if op != PIPE_CONTROL {
        return Ok(Action::Next);
    }
    // `cmd_handler_pipe_control`: dword 1 flags. An MMIO write post-sync (bit 23) names a
    // register in dword 2; a post-sync operation (bits 15:14) writes at dwords 2-3,
    // GGTT if bit 24, index mode (bit 21) into the status page. **Decision:** GVT-g
    // audits the address only for operation 1 (write immediate); here also 2 and 3
    // (depth count, timestamp), which write there as well, and PPGTT addresses get the
    // width check.
    let flags = dw(cmd, 1)?;
    if flags & (1 << 23) != 0 {
        if !lri_reg_ok(ctx.engine, dw(cmd, 2)?) {
            return Err(Reason::Register);
        }
    } else if (flags >> 14) & 3 != 0 {
        let a = addr48(cmd, 2, !7)?;
        if flags & (1 << 21) != 0 {
            audit_index(ctx, a, 8)?;
        } else {
            audit(ctx, space(flags & (1 << 24) != 0), a, 8)?;
        }
    }
    Ok(Action::Next)
}
