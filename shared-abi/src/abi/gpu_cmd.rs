// SPDX-License-Identifier: GPL-2.0

//! The GEN9 commands this project emits and parses (guest, userspace tests, the host's
//! command parser and the simulated engines).
//!
//! Encodings follow i915's `intel_gpu_commands.h`. Addresses are 48-bit, written as
//! (low, high) dwords. How long a command is comes from one place, the GEN9 length
//! [`table`] (every command GVT-g knows); this module decodes the fields of the subset
//! gvtpv uses and reports anything else as [`GpuCmdError::Unknown`] with its length, so a
//! parser can step over it or refuse it by its own policy.

pub mod table;

/// Most registers in one `MI_LOAD_REGISTER_IMM` (i915's
/// `MI_LOAD_REGISTER_IMM_MAX_REGS`; the 8-bit length field would allow 128).
pub const LRI_MAX_REGS: usize = 126;

/// A decoded command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GpuCmd<'a> {
    /// `MI_NOOP`.
    Noop,
    /// `MI_USER_INTERRUPT`.
    UserInterrupt,
    /// `MI_ARB_CHECK`.
    ArbCheck,
    /// `MI_BATCH_BUFFER_END`.
    BatchBufferEnd,
    /// `MI_BATCH_BUFFER_START` (GEN8+ form, 3 dwords).
    BatchBufferStart {
        /// 4-byte aligned batch address.
        addr: u64,
        /// Through the PPGTT (else the GGTT).
        ppgtt: bool,
        /// A second-level batch (returns to the first level at its end).
        second_level: bool,
    },
    /// `MI_STORE_DATA_IMM` of a dword (4 dwords, length field 2) or, as i915's
    /// `MI_STORE_QWORD_IMM_GEN8`, a qword (5 dwords, length field 3 and bit 21 set).
    StoreDataImm {
        /// Destination (4-byte aligned; 8 for a qword).
        addr: u64,
        /// Through the GGTT (else the PPGTT).
        ggtt: bool,
        /// The value; a dword store uses the low half.
        value: u64,
        /// Whether it stores 8 bytes.
        qword: bool,
    },
    /// `MI_STORE_DWORD_INDEX`: store into the hardware status page at dword `index`.
    StoreDwordIndex {
        /// Dword index into the status page (0..1024).
        index: u32,
        /// The value.
        value: u32,
    },
    /// `MI_LOAD_REGISTER_IMM` of `n` registers: length field `2n - 1`, then `n`
    /// (offset, value) pairs (the parser's whitelist checks the offsets).
    LoadRegisterImm {
        /// The pairs, flattened: offset, value, offset, value, ... Offsets are 4-byte
        /// aligned and below 8 MiB; 1 to [`LRI_MAX_REGS`] pairs.
        pairs: &'a [u32],
        /// `MI_LRI_FORCE_POSTED` (bit 12), as i915 sets it in context images.
        posted: bool,
    },
    /// `MI_FLUSH_DW` with a post-sync dword write (4 dwords).
    FlushDw {
        /// Where to write (GGTT, 4-byte aligned).
        addr: u64,
        /// The value written after the flush.
        value: u32,
    },
    /// `PIPE_CONTROL` (6 dwords) with a CS stall and a post-sync qword write to the GGTT.
    PipeControl {
        /// Where to write (8-byte aligned).
        addr: u64,
        /// The value written.
        value: u64,
    },
    /// `MI_SEMAPHORE_WAIT` polling until `*addr op value` holds (4 dwords).
    SemaphoreWait {
        /// The compared dword (GGTT, 4-byte aligned).
        addr: u64,
        /// Operand.
        value: u32,
        /// Compare operation, 0..=5: sad > sdd, >=, <, <=, ==, !=.
        op: u8,
    },
    /// `MI_COPY_MEM_MEM` of one dword, GGTT to GGTT (5 dwords).
    CopyMemMem {
        /// Destination.
        dst: u64,
        /// Source.
        src: u64,
    },
    /// `XY_COLOR_BLT` 32 bpp fill (7 dwords).
    ColorBlt {
        /// Destination surface address.
        dst: u64,
        /// Pitch in bytes.
        pitch: u16,
        /// Top-left corner (x, y).
        from: (u16, u16),
        /// Bottom-right corner, exclusive (x, y).
        to: (u16, u16),
        /// Fill colour.
        color: u32,
    },
    /// `XY_SRC_COPY_BLT` 32 bpp copy (10 dwords).
    SrcCopyBlt {
        /// Destination surface address.
        dst: u64,
        /// Destination pitch in bytes.
        dst_pitch: u16,
        /// Destination top-left corner (x, y).
        from: (u16, u16),
        /// Destination bottom-right corner, exclusive (x, y).
        to: (u16, u16),
        /// Source surface address.
        src: u64,
        /// Source pitch in bytes.
        src_pitch: u16,
        /// Source top-left corner (x, y).
        src_from: (u16, u16),
    },
}

/// Why a command stream does not decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GpuCmdError {
    /// Not a GEN9 command at all: no entry in the length [`table`] (the dword is the
    /// header).
    Unknown(u32),
    /// A GEN9 command outside the decoded subset: its header and length in dwords (from
    /// the [`table`]), so a parser can skip or refuse it.
    Unsupported(u32, u32),
    /// The length field disagrees with the command.
    BadLength(u32),
    /// Fewer dwords left than the command needs.
    Truncated,
    /// A field is out of range (alignment, reserved bits, address width).
    BadField,
}

const fn mi(op: u32, flags: u32) -> u32 {
    (op << 23) | flags
}

const MI_USE_GGTT: u32 = 1 << 22;
const MI_SDI_QWORD: u32 = 1 << 21;
const MI_LRI_FORCE_POSTED: u32 = 1 << 12;
const MI_BB_PPGTT: u32 = 1 << 8;
const MI_BB_SECOND_LEVEL: u32 = 1 << 22;
const MI_FLUSH_DW_OP_STOREDW: u32 = 1 << 14;
const MI_FLUSH_DW_USE_GTT: u32 = 1 << 2;
const MI_SEMAPHORE_POLL: u32 = 1 << 15;
const MI_SEMAPHORE_OP_SHIFT: u32 = 12;
const MI_CMM_DST_GGTT: u32 = 1 << 21;
const PC_QW_WRITE: u32 = 1 << 14;
const PC_CS_STALL: u32 = 1 << 20;
const PC_GLOBAL_GTT: u32 = 1 << 24;
const PIPE_CONTROL: u32 = (3 << 29) | (3 << 27) | (2 << 24);
const BLT_WRITE_RGBA: u32 = 3 << 20;
const XY_COLOR_BLT: u32 = (2 << 29) | (0x50 << 22);
const XY_SRC_COPY_BLT: u32 = (2 << 29) | (0x53 << 22);
/// BR13: 32 bpp, ROP "pattern copy" (0xf0) or "source copy" (0xcc).
const BR13_32BPP: u32 = 3 << 24;

/// Opcodes (MI_INSTR opcode field, bits 28:23).
mod op {
    pub(super) const NOOP: u32 = 0x00;
    pub(super) const USER_INTERRUPT: u32 = 0x02;
    pub(super) const ARB_CHECK: u32 = 0x05;
    pub(super) const BB_END: u32 = 0x0a;
    pub(super) const SEMAPHORE_WAIT: u32 = 0x1c;
    pub(super) const STORE_DATA_IMM: u32 = 0x20;
    pub(super) const STORE_DWORD_INDEX: u32 = 0x21;
    pub(super) const LRI: u32 = 0x22;
    pub(super) const FLUSH_DW: u32 = 0x26;
    pub(super) const COPY_MEM_MEM: u32 = 0x2e;
    pub(super) const BB_START: u32 = 0x31;
}

fn lo(v: u64) -> u32 {
    v as u32
}

fn hi(v: u64) -> u32 {
    (v >> 32) as u32
}

fn addr(l: u32, h: u32) -> Result<u64, GpuCmdError> {
    if h >> 16 != 0 {
        return Err(GpuCmdError::BadField);
    }
    Ok(u64::from(l) | (u64::from(h) << 32))
}

fn xy(v: u32) -> (u16, u16) {
    ((v & 0xffff) as u16, (v >> 16) as u16)
}

fn pack_xy(p: (u16, u16)) -> u32 {
    u32::from(p.0) | (u32::from(p.1) << 16)
}

fn put(out: &mut [u32], at: usize, words: &[u32]) -> Result<usize, GpuCmdError> {
    let end = at + words.len();
    out.get_mut(at..end)
        .ok_or(GpuCmdError::Truncated)?
        .copy_from_slice(words);
    Ok(end)
}

fn lri_reg_ok(reg: u32) -> bool {
    reg % 4 == 0 && reg < 1 << 23
}

impl<'a> GpuCmd<'a> {
    /// Encodes into `out`, returning the dwords used.
    ///
    /// # Errors
    ///
    /// [`GpuCmdError::BadField`] for an address wider than 48 bits, a misaligned address
    /// or an out-of-range field; [`GpuCmdError::Truncated`] if `out` is too small.
    pub fn encode(&self, out: &mut [u32]) -> Result<usize, GpuCmdError> {
        let wide = |a: u64, align: u64| a >> 48 != 0 || a % align != 0;
        match *self {
            Self::Noop | Self::UserInterrupt | Self::ArbCheck | Self::BatchBufferEnd => {
                let opcode = match self {
                    Self::Noop => op::NOOP,
                    Self::UserInterrupt => op::USER_INTERRUPT,
                    Self::ArbCheck => op::ARB_CHECK,
                    _ => op::BB_END,
                };
                put(out, 0, &[mi(opcode, 0)])
            }
            Self::BatchBufferStart {
                addr,
                ppgtt,
                second_level,
            } => {
                if wide(addr, 4) {
                    return Err(GpuCmdError::BadField);
                }
                let f = if ppgtt { MI_BB_PPGTT } else { 0 }
                    | if second_level { MI_BB_SECOND_LEVEL } else { 0 };
                put(out, 0, &[mi(op::BB_START, 1) | f, lo(addr), hi(addr)])
            }
            Self::StoreDataImm {
                addr,
                ggtt,
                value,
                qword,
            } => {
                if wide(addr, if qword { 8 } else { 4 }) || (!qword && value >> 32 != 0) {
                    return Err(GpuCmdError::BadField);
                }
                let g = if ggtt { MI_USE_GGTT } else { 0 };
                if qword {
                    let h = mi(op::STORE_DATA_IMM, 3) | MI_SDI_QWORD | g;
                    put(out, 0, &[h, lo(addr), hi(addr), lo(value), hi(value)])
                } else {
                    let h = mi(op::STORE_DATA_IMM, 2) | g;
                    put(out, 0, &[h, lo(addr), hi(addr), lo(value)])
                }
            }
            Self::StoreDwordIndex { index, value } => {
                if index >= 1024 {
                    return Err(GpuCmdError::BadField);
                }
                put(out, 0, &[mi(op::STORE_DWORD_INDEX, 1), index << 2, value])
            }
            Self::LoadRegisterImm { pairs, posted } => {
                let n = pairs.len() / 2;
                if pairs.len() % 2 != 0
                    || !(1..=LRI_MAX_REGS).contains(&n)
                    || pairs.iter().step_by(2).any(|r| !lri_reg_ok(*r))
                {
                    return Err(GpuCmdError::BadField);
                }
                let p = if posted { MI_LRI_FORCE_POSTED } else { 0 };
                // Length field 2n - 1: n pairs plus the header, minus the bias of 2.
                let at = put(out, 0, &[mi(op::LRI, 2 * n as u32 - 1) | p])?;
                put(out, at, pairs)
            }
            Self::FlushDw { addr, value } => {
                if wide(addr, 8) {
                    return Err(GpuCmdError::BadField);
                }
                let h = mi(op::FLUSH_DW, 2) | MI_FLUSH_DW_OP_STOREDW;
                put(
                    out,
                    0,
                    &[h, lo(addr) | MI_FLUSH_DW_USE_GTT, hi(addr), value],
                )
            }
            Self::PipeControl { addr, value } => {
                if wide(addr, 8) {
                    return Err(GpuCmdError::BadField);
                }
                let w = [
                    PIPE_CONTROL | (6 - 2),
                    PC_QW_WRITE | PC_CS_STALL | PC_GLOBAL_GTT,
                    lo(addr),
                    hi(addr),
                    lo(value),
                    hi(value),
                ];
                put(out, 0, &w)
            }
            Self::SemaphoreWait { addr, value, op } => {
                if wide(addr, 4) || op > 5 {
                    return Err(GpuCmdError::BadField);
                }
                let f = MI_USE_GGTT | MI_SEMAPHORE_POLL | (u32::from(op) << MI_SEMAPHORE_OP_SHIFT);
                put(
                    out,
                    0,
                    &[mi(op::SEMAPHORE_WAIT, 2) | f, value, lo(addr), hi(addr)],
                )
            }
            Self::CopyMemMem { dst, src } => {
                if wide(dst, 4) || wide(src, 4) {
                    return Err(GpuCmdError::BadField);
                }
                let h = mi(op::COPY_MEM_MEM, 3) | MI_USE_GGTT | MI_CMM_DST_GGTT;
                put(out, 0, &[h, lo(dst), hi(dst), lo(src), hi(src)])
            }
            Self::ColorBlt {
                dst,
                pitch,
                from,
                to,
                color,
            } => {
                if wide(dst, 4) || from.0 >= to.0 || from.1 >= to.1 {
                    return Err(GpuCmdError::BadField);
                }
                let w = [
                    XY_COLOR_BLT | BLT_WRITE_RGBA | (7 - 2),
                    BR13_32BPP | (0xf0 << 16) | u32::from(pitch),
                    pack_xy(from),
                    pack_xy(to),
                    lo(dst),
                    hi(dst),
                    color,
                ];
                put(out, 0, &w)
            }
            Self::SrcCopyBlt {
                dst,
                dst_pitch,
                from,
                to,
                src,
                src_pitch,
                src_from,
            } => {
                if wide(dst, 4) || wide(src, 4) || from.0 >= to.0 || from.1 >= to.1 {
                    return Err(GpuCmdError::BadField);
                }
                let w = [
                    XY_SRC_COPY_BLT | BLT_WRITE_RGBA | (10 - 2),
                    BR13_32BPP | (0xcc << 16) | u32::from(dst_pitch),
                    pack_xy(from),
                    pack_xy(to),
                    lo(dst),
                    hi(dst),
                    pack_xy(src_from),
                    u32::from(src_pitch),
                    lo(src),
                    hi(src),
                ];
                put(out, 0, &w)
            }
        }
    }

    /// Decodes the command at the start of `s`, returning it and its length in dwords.
    ///
    /// The length comes from the GEN9 [`table`] (blitter commands on the blitter ring,
    /// everything else on the render ring); a command of the subset must also have the
    /// length its encoding defines.
    ///
    /// # Errors
    ///
    /// A [`GpuCmdError`]; never reads past `s`.
    pub fn decode(s: &'a [u32]) -> Result<(Self, usize), GpuCmdError> {
        let h = *s.first().ok_or(GpuCmdError::Truncated)?;
        let on = if h >> 29 == 2 {
            table::ring::BCS
        } else {
            table::ring::RCS
        };
        let info = table::lookup(h, on).map_err(|_| GpuCmdError::Unknown(h))?;
        let n = info.length(h).map_err(|_| GpuCmdError::BadLength(h))?;
        let unsupported = Err(GpuCmdError::Unsupported(h, n));
        let s = s.get(..n as usize).ok_or(GpuCmdError::Truncated)?;
        let want = |k: u32| {
            if n == k {
                Ok(())
            } else {
                Err(GpuCmdError::BadLength(h))
            }
        };
        let only = |allowed: u32| {
            if h & !allowed != 0 {
                Err(GpuCmdError::BadField)
            } else {
                Ok(())
            }
        };
        let words = |k: usize| s.get(..k).ok_or(GpuCmdError::Truncated);
        match h >> 29 {
            0 => {}
            2 => return Self::decode_blt(s, h, n),
            _ if h & !0xff == PIPE_CONTROL => {
                want(6)?;
                let [_, flags, al, ah, vl, vh] =
                    words(6)?.try_into().map_err(|_| GpuCmdError::Truncated)?;
                if flags != PC_QW_WRITE | PC_CS_STALL | PC_GLOBAL_GTT || al % 8 != 0 {
                    return Err(GpuCmdError::BadField);
                }
                let c = Self::PipeControl {
                    addr: addr(al, ah)?,
                    value: u64::from(vl) | (u64::from(vh) << 32),
                };
                return Ok((c, 6));
            }
            _ => return unsupported,
        }
        let opcode = (h >> 23) & 0x3f;
        let base = mi(opcode, 0);
        let one = |c: Self| {
            if h == base {
                Ok((c, 1))
            } else {
                Err(GpuCmdError::BadField)
            }
        };
        match opcode {
            op::NOOP => one(Self::Noop),
            op::USER_INTERRUPT => one(Self::UserInterrupt),
            op::ARB_CHECK => one(Self::ArbCheck),
            op::BB_END => one(Self::BatchBufferEnd),
            op::BB_START => {
                only(base | MI_BB_PPGTT | MI_BB_SECOND_LEVEL | 0xff)?;
                want(3)?;
                let [_, l, hh] = words(3)?.try_into().map_err(|_| GpuCmdError::Truncated)?;
                if l % 4 != 0 {
                    return Err(GpuCmdError::BadField);
                }
                let c = Self::BatchBufferStart {
                    addr: addr(l, hh)?,
                    ppgtt: h & MI_BB_PPGTT != 0,
                    second_level: h & MI_BB_SECOND_LEVEL != 0,
                };
                Ok((c, 3))
            }
            op::STORE_DATA_IMM => {
                only(base | MI_USE_GGTT | MI_SDI_QWORD | 0x3ff)?;
                // i915's two forms: a dword (length 2) or, with bit 21, a qword (length 3).
                let qword = h & MI_SDI_QWORD != 0;
                want(if qword { 5 } else { 4 })?;
                let (l, hh, value) = match *s {
                    [_, l, hh, v] => (l, hh, u64::from(v)),
                    [_, l, hh, v, w] => (l, hh, u64::from(v) | (u64::from(w) << 32)),
                    _ => return Err(GpuCmdError::Truncated),
                };
                if l % if qword { 8 } else { 4 } != 0 {
                    return Err(GpuCmdError::BadField);
                }
                let c = Self::StoreDataImm {
                    addr: addr(l, hh)?,
                    ggtt: h & MI_USE_GGTT != 0,
                    value,
                    qword,
                };
                Ok((c, n as usize))
            }
            op::STORE_DWORD_INDEX => {
                only(base | 0xff)?;
                want(3)?;
                let [_, idx, value] = words(3)?.try_into().map_err(|_| GpuCmdError::Truncated)?;
                if idx % 4 != 0 || idx >> 2 >= 1024 {
                    return Err(GpuCmdError::BadField);
                }
                let c = Self::StoreDwordIndex {
                    index: idx >> 2,
                    value,
                };
                Ok((c, 3))
            }
            op::LRI => {
                only(base | MI_LRI_FORCE_POSTED | 0xff)?;
                // Length field 2n - 1: the command is 2n + 1 dwords, odd, at least 3.
                let regs = (n as usize).saturating_sub(1) / 2;
                if n % 2 == 0 || !(1..=LRI_MAX_REGS).contains(&regs) {
                    return Err(GpuCmdError::BadLength(h));
                }
                let pairs = s.get(1..).ok_or(GpuCmdError::Truncated)?;
                if pairs.iter().step_by(2).any(|r| !lri_reg_ok(*r)) {
                    return Err(GpuCmdError::BadField);
                }
                let c = Self::LoadRegisterImm {
                    pairs,
                    posted: h & MI_LRI_FORCE_POSTED != 0,
                };
                Ok((c, n as usize))
            }
            op::FLUSH_DW => {
                if h != mi(op::FLUSH_DW, 2) | MI_FLUSH_DW_OP_STOREDW {
                    return Err(GpuCmdError::BadField);
                }
                let [_, l, hh, value] = words(4)?.try_into().map_err(|_| GpuCmdError::Truncated)?;
                if l & 0x7 != MI_FLUSH_DW_USE_GTT {
                    return Err(GpuCmdError::BadField);
                }
                let c = Self::FlushDw {
                    addr: addr(l & !0x7, hh)?,
                    value,
                };
                Ok((c, 4))
            }
            op::SEMAPHORE_WAIT => {
                only(
                    base | MI_USE_GGTT | MI_SEMAPHORE_POLL | (0x7 << MI_SEMAPHORE_OP_SHIFT) | 0xff,
                )?;
                if h & (MI_USE_GGTT | MI_SEMAPHORE_POLL) != MI_USE_GGTT | MI_SEMAPHORE_POLL {
                    return Err(GpuCmdError::BadField);
                }
                let op = ((h >> MI_SEMAPHORE_OP_SHIFT) & 0x7) as u8;
                let [_, value, l, hh] = words(4)?.try_into().map_err(|_| GpuCmdError::Truncated)?;
                if op > 5 || l % 4 != 0 {
                    return Err(GpuCmdError::BadField);
                }
                let c = Self::SemaphoreWait {
                    addr: addr(l, hh)?,
                    value,
                    op,
                };
                Ok((c, 4))
            }
            op::COPY_MEM_MEM => {
                if h != mi(op::COPY_MEM_MEM, 3) | MI_USE_GGTT | MI_CMM_DST_GGTT {
                    return Err(GpuCmdError::BadField);
                }
                let [_, dl, dh, sl, sh] =
                    words(5)?.try_into().map_err(|_| GpuCmdError::Truncated)?;
                if dl % 4 != 0 || sl % 4 != 0 {
                    return Err(GpuCmdError::BadField);
                }
                let c = Self::CopyMemMem {
                    dst: addr(dl, dh)?,
                    src: addr(sl, sh)?,
                };
                Ok((c, 5))
            }
            _ => unsupported,
        }
    }

    fn decode_blt(s: &[u32], h: u32, n: u32) -> Result<(Self, usize), GpuCmdError> {
        let rect_ok = |a: (u16, u16), b: (u16, u16)| a.0 < b.0 && a.1 < b.1;
        let words = |k: usize| s.get(..k).ok_or(GpuCmdError::Truncated);
        match h & !0xff {
            x if x == XY_COLOR_BLT | BLT_WRITE_RGBA => {
                if n != 7 {
                    return Err(GpuCmdError::BadLength(h));
                }
                let [_, br13, f, t, dl, dh, color] =
                    words(7)?.try_into().map_err(|_| GpuCmdError::Truncated)?;
                let (from, to) = (xy(f), xy(t));
                if br13 >> 16 != (BR13_32BPP >> 16) | 0xf0 || dl % 4 != 0 || !rect_ok(from, to) {
                    return Err(GpuCmdError::BadField);
                }
                let c = Self::ColorBlt {
                    dst: addr(dl, dh)?,
                    pitch: br13 as u16,
                    from,
                    to,
                    color,
                };
                Ok((c, 7))
            }
            x if x == XY_SRC_COPY_BLT | BLT_WRITE_RGBA => {
                if n != 10 {
                    return Err(GpuCmdError::BadLength(h));
                }
                let [_, br13, f, t, dl, dh, sf, sp, sl, sh] =
                    words(10)?.try_into().map_err(|_| GpuCmdError::Truncated)?;
                let (from, to) = (xy(f), xy(t));
                if br13 >> 16 != (BR13_32BPP >> 16) | 0xcc
                    || sp >> 16 != 0
                    || dl % 4 != 0
                    || sl % 4 != 0
                    || !rect_ok(from, to)
                {
                    return Err(GpuCmdError::BadField);
                }
                let c = Self::SrcCopyBlt {
                    dst: addr(dl, dh)?,
                    dst_pitch: br13 as u16,
                    from,
                    to,
                    src: addr(sl, sh)?,
                    src_pitch: sp as u16,
                    src_from: xy(sf),
                };
                Ok((c, 10))
            }
            _ => Err(GpuCmdError::Unsupported(h, n)),
        }
    }
}

#[cfg(test)]
mod tests;
