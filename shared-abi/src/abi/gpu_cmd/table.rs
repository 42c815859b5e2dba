// SPDX-License-Identifier: GPL-2.0

//! The GEN9 command length table: opcode to name and length rule, for every command
//! GVT-g's parser knows on GEN9 (MI, 2D blitter, 3D/GFXPIPE and media, MFX, VEBOX).
//!
//! Only lengths live here, no policy: whether a command is allowed, and which of its
//! dwords are addresses or registers to audit, is the command parser's whitelist. A
//! parser first asks this table how long a command is (so it can step over it, or refuse
//! an unknown one), then asks its policy whether it may run.
//!
//! How a header maps to an opcode depends on the command type (bits 31:29) and on the
//! ring, as in GVT-g's `get_opcode()`: type 0 (MI) on every ring uses bits 31:23; type 2
//! (2D) only on the blitter, bits 31:22; type 3 on the render ring (3D/media), the video
//! rings (MFX) and the video enhancement ring (VEBOX), bits 31:16. A variable length is
//! the header's length field (the low `bits` bits) plus two.

mod gen9;

pub use gen9::GEN9_CMDS;

/// Rings a command exists on (a bit mask).
pub mod ring {
    /// Render (RCS).
    pub const RCS: u8 = 1 << 0;
    /// Blitter (BCS).
    pub const BCS: u8 = 1 << 1;
    /// Video 0 (VCS0).
    pub const VCS0: u8 = 1 << 2;
    /// Video 1 (VCS1).
    pub const VCS1: u8 = 1 << 3;
    /// Video enhancement (VECS).
    pub const VECS: u8 = 1 << 4;
    /// Every ring.
    pub const ALL: u8 = RCS | BCS | VCS0 | VCS1 | VECS;
}

/// The decoder a command type uses (which header bits form the opcode).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmdKind {
    /// Type 0, memory interface: opcode = header bits 31:23.
    Mi,
    /// Type 2, 2D blitter: opcode = header bits 31:22.
    Blt,
    /// Type 3, GFXPIPE (3D, media, MFX, VEBOX): opcode = header bits 31:16.
    Gfx,
}

/// How long a command is, in dwords.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LenRule {
    /// Always this many dwords; the header has no length field.
    Fixed(u8),
    /// The low `bits` bits of the header, plus two (GVT-g `F_LEN_VAR`).
    Var {
        /// Width of the length field.
        bits: u8,
    },
    /// As [`LenRule::Var`], but GEN9 defines exactly `len` dwords (GVT-g
    /// `F_LEN_VAR | F_LEN_VAR_FIXED` with its `valid_len`); any other length is refused.
    Exact {
        /// Width of the length field.
        bits: u8,
        /// The only valid length.
        len: u8,
    },
}

/// Length bias of a variable length field.
pub const LEN_BIAS: u32 = 2;

/// One command of the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CmdInfo {
    /// Name as GVT-g and the PRM spell it.
    pub name: &'static str,
    /// Which decoder forms its opcode.
    pub kind: CmdKind,
    /// The opcode, as GVT-g's `get_opcode()` computes it (type bits included).
    pub opcode: u16,
    /// The [`ring`]s it exists on.
    pub rings: u8,
    /// Its length rule.
    pub len: LenRule,
}

/// Why a header has no length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LenError {
    /// No command with this opcode on this ring.
    Unknown,
    /// The length field is not the one GEN9 defines for this command.
    BadLength,
}

impl CmdInfo {
    /// The length in dwords of the command whose header is `header`.
    ///
    /// # Errors
    ///
    /// [`LenError::BadLength`] for a [`LenRule::Exact`] command with another length.
    pub fn length(&self, header: u32) -> Result<u32, LenError> {
        let field = |bits: u8| (header & ((1u32 << bits) - 1)) + LEN_BIAS;
        match self.len {
            LenRule::Fixed(n) => Ok(u32::from(n)),
            LenRule::Var { bits } => Ok(field(bits)),
            LenRule::Exact { bits, len } if field(bits) == u32::from(len) => Ok(u32::from(len)),
            LenRule::Exact { .. } => Err(LenError::BadLength),
        }
    }
}

/// The decoder and opcode of `header` on a ring (one [`ring`] bit), or `None` if the
/// ring has no decoder for its command type.
pub fn opcode(header: u32, on: u8) -> Option<(CmdKind, u16)> {
    let video = ring::VCS0 | ring::VCS1 | ring::VECS;
    match header >> 29 {
        0 => Some((CmdKind::Mi, (header >> 23) as u16)),
        2 if on == ring::BCS => Some((CmdKind::Blt, (header >> 22) as u16)),
        3 if on == ring::RCS || on & video != 0 => Some((CmdKind::Gfx, (header >> 16) as u16)),
        _ => None,
    }
}

/// Finds the command `header` starts on ring `on` (one [`ring`] bit).
///
/// # Errors
///
/// [`LenError::Unknown`].
pub fn lookup(header: u32, on: u8) -> Result<&'static CmdInfo, LenError> {
    let (kind, op) = opcode(header, on).ok_or(LenError::Unknown)?;
    // The table is sorted by (kind, opcode); a few opcodes repeat for other rings.
    let key = |c: &CmdInfo| (c.kind as u8, c.opcode);
    let first = GEN9_CMDS.partition_point(|c| key(c) < (kind as u8, op));
    GEN9_CMDS
        .get(first..)
        .unwrap_or(&[])
        .iter()
        .take_while(|c| key(c) == (kind as u8, op))
        .find(|c| c.rings & on != 0)
        .ok_or(LenError::Unknown)
}

/// The length in dwords of the command `header` starts on ring `on`.
///
/// # Errors
///
/// [`LenError`].
pub fn cmd_len(header: u32, on: u8) -> Result<u32, LenError> {
    lookup(header, on)?.length(header)
}
