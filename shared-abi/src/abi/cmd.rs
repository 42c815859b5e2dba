// SPDX-License-Identifier: GPL-2.0

//! PV commands and events: the payloads carried by CTB messages.
//!
//! Every payload is a fixed number of dwords (checked exactly) followed, for inline
//! binds, by page addresses as (low, high) dword pairs. Reserved dwords and bits must be
//! zero. Decoding is total: any dword slice gives a value or a [`WireError`].
//!
//! Guest addresses on the wire (page addresses of binds, page lists) are DMA addresses:
//! guest physical addresses without a vIOMMU, IOVAs with one. The host resolves them
//! through the guest's DMA mapping, never as host physical addresses.
//!
//! The ABI version is negotiated once, at registration, in the shared-area header
//! ([`crate::abi::shared::negotiate`]); there is no version command.

/// Action codes (CTB header bits 11:0).
pub mod action {
    /// Create a PPGTT address space with a guest-chosen id.
    pub const PPGTT_CREATE: u16 = 0x010;
    /// Destroy a PPGTT address space.
    pub const PPGTT_DESTROY: u16 = 0x011;
    /// Map pages into a PPGTT.
    pub const BIND_PPGTT: u16 = 0x020;
    /// Unmap a range of a PPGTT.
    pub const UNBIND_PPGTT: u16 = 0x021;
    /// Map pages into the vGPU's GGTT slice.
    pub const BIND_GGTT: u16 = 0x030;
    /// Unmap a range of the vGPU's GGTT slice.
    pub const UNBIND_GGTT: u16 = 0x031;
    /// Submit a batch to an engine.
    pub const SUBMIT: u16 = 0x040;
    /// Event: an engine completed work up to a seqno.
    pub const EV_COMPLETION: u16 = 0x100;
    /// Event: an engine was reset.
    pub const EV_ENGINE_RESET: u16 = 0x101;
    /// Event: the vGPU entered failsafe.
    pub const EV_VGPU_ERROR: u16 = 0x102;
    /// Event: the vGPU is about to be reset.
    pub const EV_RESET_NOTICE: u16 = 0x103;
}

/// Most page addresses in one inline bind (fits a [`crate::abi::ctb::MAX_PAYLOAD`]
/// message with the fixed part).
pub const MAX_INLINE_PAGES: u32 = 56;
/// Most page addresses in one bind by reference (one 4 KiB page of u64 entries).
pub const MAX_LIST_PAGES: u32 = 512;
/// Width of a DMA address (GEN9's DMA mask: i915 sets 39 bits, so a guest's IOVAs and
/// physical addresses for the device stay below 2^39).
pub const DMA_ADDR_BITS: u32 = 39;
/// Largest batch a SUBMIT may name, in bytes (the host copies it whole before parsing).
pub const MAX_BATCH_BYTES: u32 = 1 << 20;

/// Errors on the wire (payload dword 0 of a failure response), errno values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum WireError {
    /// Operation not permitted (capability not negotiated).
    Perm = 1,
    /// No such object (unknown VM id, engine).
    NoEnt = 2,
    /// Too many entries.
    TooBig = 7,
    /// Bad address.
    Fault = 14,
    /// Busy, retry.
    Busy = 16,
    /// Object exists (VM id in use).
    Exist = 17,
    /// Invalid argument: wrong length, reserved bits, bad field.
    Inval = 22,
    /// No space (out of ids or graphics memory).
    NoSpc = 28,
    /// Protocol error (unknown action).
    Proto = 71,
    /// Not supported by this host.
    NotSupp = 95,
}

impl WireError {
    /// Decodes a failure code; `None` for a value this ABI does not define.
    pub fn from_u32(v: u32) -> Option<Self> {
        Some(match v {
            1 => Self::Perm,
            2 => Self::NoEnt,
            7 => Self::TooBig,
            14 => Self::Fault,
            16 => Self::Busy,
            17 => Self::Exist,
            22 => Self::Inval,
            28 => Self::NoSpc,
            71 => Self::Proto,
            95 => Self::NotSupp,
            _ => return None,
        })
    }
}

/// An engine, by class and instance as i915's uAPI numbers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Engine {
    /// 0 render, 1 copy, 2 video, 3 video enhance.
    pub class: u8,
    /// Instance within the class.
    pub instance: u8,
}

impl Engine {
    /// The render engine (RCS0).
    pub const RCS0: Self = Self {
        class: 0,
        instance: 0,
    };
    /// The blitter (BCS0).
    pub const BCS0: Self = Self {
        class: 1,
        instance: 0,
    };

    fn encode(self) -> u32 {
        u32::from(self.class) | (u32::from(self.instance) << 8)
    }

    fn decode(v: u32) -> Result<Self, WireError> {
        if v >> 16 != 0 || (v & 0xff) > 3 {
            return Err(WireError::Inval);
        }
        Ok(Self {
            class: (v & 0xff) as u8,
            instance: ((v >> 8) & 0xff) as u8,
        })
    }
}

/// Where a bind's page addresses are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pages<'a> {
    /// In the message, as (low, high) pairs: `2 * count` dwords.
    Inline(&'a [u32]),
    /// In guest memory at this page-aligned DMA address: `count` little-endian u64s.
    ByRef(u64),
}

/// PTE flags of a bind (dword `flags`).
pub mod bind_flags {
    /// Writable mapping.
    pub const WRITABLE: u32 = 1 << 0;
    /// PAT index, bits 3:1.
    pub const PAT_SHIFT: u32 = 1;
    /// Mask of the PAT index after shifting.
    pub const PAT_MASK: u32 = 0x7;
    /// Every defined bit.
    pub const KNOWN: u32 = WRITABLE | (PAT_MASK << PAT_SHIFT);
}

/// A decoded command or event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command<'a> {
    /// Create a 4-level PPGTT named `vm`.
    PpgttCreate {
        /// Guest-chosen id, non-zero.
        vm: u32,
    },
    /// Destroy PPGTT `vm`.
    PpgttDestroy {
        /// Its id.
        vm: u32,
    },
    /// Map `count` pages at GPU virtual address `start` of PPGTT `vm`.
    BindPpgtt {
        /// VM id.
        vm: u32,
        /// [`bind_flags`].
        flags: u32,
        /// Page-aligned 48-bit GPU virtual address.
        start: u64,
        /// Number of 4 KiB pages.
        count: u32,
        /// The pages.
        pages: Pages<'a>,
    },
    /// Unmap `count` pages at `start` of PPGTT `vm`.
    UnbindPpgtt {
        /// VM id.
        vm: u32,
        /// Page-aligned GPU virtual address.
        start: u64,
        /// Number of pages.
        count: u32,
    },
    /// Map `count` pages at graphics memory address `start` (inside the vGPU's slice).
    BindGgtt {
        /// [`bind_flags`].
        flags: u32,
        /// Page-aligned graphics memory address.
        start: u64,
        /// Number of pages.
        count: u32,
        /// The pages.
        pages: Pages<'a>,
    },
    /// Unmap `count` pages at `start`.
    UnbindGgtt {
        /// Page-aligned graphics memory address.
        start: u64,
        /// Number of pages.
        count: u32,
    },
    /// Run `batch_len` bytes of batch at `batch` in PPGTT `vm`, in context `ctx`, on
    /// `engine`; on completion the host reports `seqno`.
    ///
    /// The host copies the batch into memory it owns, parses the copy against its
    /// whitelist and executes the copy, never the guest's pages. A guest batch is never
    /// GGTT-privileged: it always runs through a PPGTT (`vm` is non-zero) and the wire
    /// has no privilege flag (the flags dword must be zero).
    Submit {
        /// Target engine.
        engine: Engine,
        /// PPGTT id, non-zero.
        vm: u32,
        /// Guest-chosen context id, non-zero: the host keeps one shadow context per
        /// `(vm, ctx)`.
        ctx: u32,
        /// 8-byte aligned batch address in `vm` (48-bit).
        batch: u64,
        /// Batch length in bytes: a multiple of 8, 8 to [`MAX_BATCH_BYTES`], and
        /// `batch + batch_len` inside the 48-bit space.
        batch_len: u32,
        /// Seqno reported on completion.
        seqno: u32,
    },
    /// Event: `engine` completed everything up to `seqno`.
    Completion {
        /// The engine.
        engine: Engine,
        /// Last completed seqno.
        seqno: u32,
    },
    /// Event: `engine` was reset; work after its last completion was lost.
    EngineReset {
        /// The engine.
        engine: Engine,
    },
    /// Event: the vGPU went into failsafe for `reason` (a [`WireError`] code).
    VgpuError {
        /// Why.
        reason: u32,
    },
    /// Event: the vGPU will be reset; the guest must stop using the shared area.
    ResetNotice,
}

fn lo(v: u64) -> u32 {
    v as u32
}

fn hi(v: u64) -> u32 {
    (v >> 32) as u32
}

fn join(l: u32, h: u32) -> u64 {
    u64::from(l) | (u64::from(h) << 32)
}

/// Fixed payload dwords of a bind before the page addresses:
/// `vm, flags, start_lo, start_hi, count, mode, ref_lo, ref_hi`.
const BIND_FIXED: usize = 8;
const MODE_INLINE: u32 = 0;
const MODE_BYREF: u32 = 1;
/// Payload dwords of a SUBMIT: `engine, vm, ctx, batch_lo, batch_hi, batch_len, seqno,
/// flags`.
const SUBMIT_DWORDS: usize = 8;

fn check_bind(
    flags: u32,
    start: u64,
    count: u32,
    pages: &Pages<'_>,
    va_bits: u32,
) -> Result<(), WireError> {
    if flags & !bind_flags::KNOWN != 0 || start % 4096 != 0 || start >> va_bits != 0 || count == 0 {
        return Err(WireError::Inval);
    }
    match pages {
        Pages::Inline(p) => {
            if count > MAX_INLINE_PAGES {
                return Err(WireError::TooBig);
            }
            if p.len() != 2 * count as usize {
                return Err(WireError::Inval);
            }
            for pair in p.chunks_exact(2) {
                let (Some(&l), Some(&h)) = (pair.first(), pair.get(1)) else {
                    return Err(WireError::Inval);
                };
                check_dma_addr(join(l, h))?;
            }
        }
        Pages::ByRef(dma) => {
            if count > MAX_LIST_PAGES {
                return Err(WireError::TooBig);
            }
            check_dma_addr(*dma)?;
        }
    }
    let end = start
        .checked_add(u64::from(count) * 4096)
        .ok_or(WireError::Inval)?;
    if end > 1 << va_bits {
        return Err(WireError::Inval);
    }
    Ok(())
}

/// Checks one page's DMA address: 4 KiB aligned, below 2^[`DMA_ADDR_BITS`].
///
/// # Errors
///
/// [`WireError::Fault`].
pub fn check_dma_addr(dma_addr: u64) -> Result<(), WireError> {
    if dma_addr % 4096 != 0 || dma_addr >> DMA_ADDR_BITS != 0 {
        return Err(WireError::Fault);
    }
    Ok(())
}

/// Checks a SUBMIT's fields: `vm` and `ctx` non-zero, batch 8-byte aligned, length a
/// non-zero multiple of 8 up to [`MAX_BATCH_BYTES`], the batch inside 48 bits.
fn check_submit(vm: u32, ctx: u32, batch: u64, len: u32) -> Result<(), WireError> {
    if vm == 0 || ctx == 0 || batch % 8 != 0 || len == 0 || len % 8 != 0 {
        return Err(WireError::Inval);
    }
    if len > MAX_BATCH_BYTES {
        return Err(WireError::TooBig);
    }
    if batch
        .checked_add(u64::from(len))
        .is_none_or(|end| end > 1 << 48)
    {
        return Err(WireError::Inval);
    }
    Ok(())
}

/// Checks a page list passed by reference, as copied from guest memory: exactly `count`
/// little-endian u64 entries (`count` at most [`MAX_LIST_PAGES`]), each a valid page
/// address.
///
/// # Errors
///
/// [`WireError::TooBig`], [`WireError::Inval`] for a wrong length, [`WireError::Fault`].
pub fn check_page_list(list: &[u8], count: u32) -> Result<(), WireError> {
    if count > MAX_LIST_PAGES {
        return Err(WireError::TooBig);
    }
    if list.len() != 8 * count as usize {
        return Err(WireError::Inval);
    }
    for e in list.chunks_exact(8) {
        let v = u64::from_le_bytes(e.try_into().map_err(|_| WireError::Inval)?);
        check_dma_addr(v)?;
    }
    Ok(())
}

fn exact<const N: usize>(p: &[u32]) -> Result<[u32; N], WireError> {
    p.try_into().map_err(|_| WireError::Inval)
}

impl<'a> Command<'a> {
    /// The action code of this command.
    pub fn action(&self) -> u16 {
        match self {
            Self::PpgttCreate { .. } => action::PPGTT_CREATE,
            Self::PpgttDestroy { .. } => action::PPGTT_DESTROY,
            Self::BindPpgtt { .. } => action::BIND_PPGTT,
            Self::UnbindPpgtt { .. } => action::UNBIND_PPGTT,
            Self::BindGgtt { .. } => action::BIND_GGTT,
            Self::UnbindGgtt { .. } => action::UNBIND_GGTT,
            Self::Submit { .. } => action::SUBMIT,
            Self::Completion { .. } => action::EV_COMPLETION,
            Self::EngineReset { .. } => action::EV_ENGINE_RESET,
            Self::VgpuError { .. } => action::EV_VGPU_ERROR,
            Self::ResetNotice => action::EV_RESET_NOTICE,
        }
    }

    /// Encodes the payload into `out`, returning the number of dwords used.
    ///
    /// # Errors
    ///
    /// [`WireError::Inval`] or [`WireError::TooBig`] if the command would not decode
    /// (the encoder checks what the decoder checks), [`WireError::NoSpc`] if `out` is
    /// too small.
    pub fn encode(&self, out: &mut [u32]) -> Result<usize, WireError> {
        let mut buf = [0u32; BIND_FIXED];
        let fixed: &[u32] = match *self {
            Self::PpgttCreate { vm } | Self::PpgttDestroy { vm } => {
                if vm == 0 {
                    return Err(WireError::Inval);
                }
                buf[..2].copy_from_slice(&[vm, 0]);
                &buf[..2]
            }
            Self::BindPpgtt {
                vm,
                flags,
                start,
                count,
                pages,
            } => {
                if vm == 0 {
                    return Err(WireError::Inval);
                }
                check_bind(flags, start, count, &pages, 48)?;
                bind_fixed(&mut buf, vm, flags, start, count, &pages);
                &buf[..]
            }
            Self::BindGgtt {
                flags,
                start,
                count,
                pages,
            } => {
                check_bind(flags, start, count, &pages, 32)?;
                bind_fixed(&mut buf, 0, flags, start, count, &pages);
                &buf[..]
            }
            Self::UnbindPpgtt { vm, start, count } => {
                if vm == 0 {
                    return Err(WireError::Inval);
                }
                check_bind(0, start, count, &Pages::ByRef(0), 48)?;
                buf[..4].copy_from_slice(&[vm, lo(start), hi(start), count]);
                &buf[..4]
            }
            Self::UnbindGgtt { start, count } => {
                check_bind(0, start, count, &Pages::ByRef(0), 32)?;
                buf[..4].copy_from_slice(&[0, lo(start), hi(start), count]);
                &buf[..4]
            }
            Self::Submit {
                engine,
                vm,
                ctx,
                batch,
                batch_len,
                seqno,
            } => {
                check_submit(vm, ctx, batch, batch_len)?;
                buf = [
                    engine.encode(),
                    vm,
                    ctx,
                    lo(batch),
                    hi(batch),
                    batch_len,
                    seqno,
                    0,
                ];
                &buf[..SUBMIT_DWORDS]
            }
            Self::Completion { engine, seqno } => {
                buf[..2].copy_from_slice(&[engine.encode(), seqno]);
                &buf[..2]
            }
            Self::EngineReset { engine } => {
                buf[..2].copy_from_slice(&[engine.encode(), 0]);
                &buf[..2]
            }
            Self::VgpuError { reason } => {
                buf[..2].copy_from_slice(&[reason, 0]);
                &buf[..2]
            }
            Self::ResetNotice => &buf[..0],
        };
        let extra: &[u32] = match self {
            Self::BindPpgtt {
                pages: Pages::Inline(p),
                ..
            }
            | Self::BindGgtt {
                pages: Pages::Inline(p),
                ..
            } => p,
            _ => &[],
        };
        let n = fixed.len() + extra.len();
        let dst = out.get_mut(..n).ok_or(WireError::NoSpc)?;
        let (a, b) = dst.split_at_mut(fixed.len());
        a.copy_from_slice(fixed);
        b.copy_from_slice(extra);
        Ok(n)
    }

    /// Decodes the payload of a message with action `action`.
    ///
    /// # Errors
    ///
    /// [`WireError::Proto`] for an unknown action, [`WireError::Inval`] for a wrong
    /// length, a reserved bit or a bad field, [`WireError::TooBig`] for too many pages,
    /// [`WireError::Fault`] for a bad page address.
    pub fn decode(action: u16, p: &'a [u32]) -> Result<Self, WireError> {
        let vm_nonzero = |vm: u32| {
            if vm == 0 {
                Err(WireError::Inval)
            } else {
                Ok(vm)
            }
        };
        let zero = |v: u32| {
            if v != 0 {
                Err(WireError::Inval)
            } else {
                Ok(())
            }
        };
        Ok(match action {
            action::PPGTT_CREATE | action::PPGTT_DESTROY => {
                let [vm, r] = exact(p)?;
                zero(r)?;
                let vm = vm_nonzero(vm)?;
                if action == action::PPGTT_CREATE {
                    Self::PpgttCreate { vm }
                } else {
                    Self::PpgttDestroy { vm }
                }
            }
            action::BIND_PPGTT | action::BIND_GGTT => {
                let (fixed, rest) = p.split_at_checked(BIND_FIXED).ok_or(WireError::Inval)?;
                let [vm, flags, sl, sh, count, mode, rl, rh] = exact(fixed)?;
                let pages = match mode {
                    MODE_INLINE => {
                        zero(rl | rh)?;
                        Pages::Inline(rest)
                    }
                    MODE_BYREF => {
                        if !rest.is_empty() {
                            return Err(WireError::Inval);
                        }
                        Pages::ByRef(join(rl, rh))
                    }
                    _ => return Err(WireError::Inval),
                };
                let start = join(sl, sh);
                if action == action::BIND_PPGTT {
                    let vm = vm_nonzero(vm)?;
                    check_bind(flags, start, count, &pages, 48)?;
                    Self::BindPpgtt {
                        vm,
                        flags,
                        start,
                        count,
                        pages,
                    }
                } else {
                    zero(vm)?;
                    check_bind(flags, start, count, &pages, 32)?;
                    Self::BindGgtt {
                        flags,
                        start,
                        count,
                        pages,
                    }
                }
            }
            action::UNBIND_PPGTT | action::UNBIND_GGTT => {
                let [vm, sl, sh, count] = exact(p)?;
                let start = join(sl, sh);
                if action == action::UNBIND_PPGTT {
                    let vm = vm_nonzero(vm)?;
                    check_bind(0, start, count, &Pages::ByRef(0), 48)?;
                    Self::UnbindPpgtt { vm, start, count }
                } else {
                    zero(vm)?;
                    check_bind(0, start, count, &Pages::ByRef(0), 32)?;
                    Self::UnbindGgtt { start, count }
                }
            }
            action::SUBMIT => {
                let [e, vm, ctx, bl, bh, batch_len, seqno, flags] = exact(p)?;
                // No flag is defined: in particular none grants GGTT privilege.
                zero(flags)?;
                let batch = join(bl, bh);
                check_submit(vm, ctx, batch, batch_len)?;
                Self::Submit {
                    engine: Engine::decode(e)?,
                    vm,
                    ctx,
                    batch,
                    batch_len,
                    seqno,
                }
            }
            action::EV_COMPLETION => {
                let [e, seqno] = exact(p)?;
                Self::Completion {
                    engine: Engine::decode(e)?,
                    seqno,
                }
            }
            action::EV_ENGINE_RESET => {
                let [e, r] = exact(p)?;
                zero(r)?;
                Self::EngineReset {
                    engine: Engine::decode(e)?,
                }
            }
            action::EV_VGPU_ERROR => {
                let [reason, r] = exact(p)?;
                zero(r)?;
                Self::VgpuError { reason }
            }
            action::EV_RESET_NOTICE => {
                let [] = exact(p)?;
                Self::ResetNotice
            }
            _ => return Err(WireError::Proto),
        })
    }
}

fn bind_fixed(
    buf: &mut [u32; BIND_FIXED],
    vm: u32,
    flags: u32,
    start: u64,
    count: u32,
    pages: &Pages<'_>,
) {
    let (mode, r) = match *pages {
        Pages::Inline(_) => (MODE_INLINE, 0),
        Pages::ByRef(dma) => (MODE_BYREF, dma),
    };
    *buf = [vm, flags, lo(start), hi(start), count, mode, lo(r), hi(r)];
}

#[cfg(test)]
mod tests;
