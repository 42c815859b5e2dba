// SPDX-License-Identifier: GPL-2.0

//! The GEN9 blitter commands the sim models, on linear surfaces through the PPGTT:
//!
//! - `XY_COLOR_BLT` (7 dwords) with ROP `0xf0` (pattern copy): fill.
//! - `XY_SRC_COPY_BLT` (10 dwords) with ROP `0xcc` (source copy): copy.
//! - `XY_FAST_COPY_BLT` (10 dwords): copy.
//!
//! Layouts as i915 emits them (`gt/intel_migrate.c: emit_copy, emit_clear`,
//! `gem/selftests/i915_gem_client_blt.c`): BR13 (dword 1) holds the colour depth (bits
//! 25:24 for `XY_*`: 8, 16 (565), 16 (1555), 32 bpp; bits 26:24 for the fast copy: 0 = 8,
//! 1 = 16, 3 = 32, 4 = 64 bpp), the ROP (bits 23:16, legacy commands) and the destination
//! pitch in bytes (bits 15:0); dwords 2 and 3 the destination corners (x1, y1) and
//! (x2, y2), exclusive, x in bits 15:0; dwords 4-5 the 48-bit destination address; then
//! the colour (fill), or the source corner, source pitch and source address (copies). At
//! 32 bpp the legacy commands' write enables (header bits 21:20, `BLT_WRITE_RGB`,
//! `BLT_WRITE_A`) select the bytes written.
//!
//! Tiled surfaces, other ROPs and depths, and negative pitches are not modelled: the
//! command is skipped and counted. Rows are copied in order (overlapping copies are
//! not given memmove semantics). Every destination and source page is translated before
//! the first store; each row costs one unit of budget.

use super::{
    exec::{Run, FAST_COPY_OP},
    iommu::Frame,
    walk::{fault, Mmu, Space},
};
use crate::gpu::{EngineError, PAGE};
use kernel::prelude::*;

/// A decoded blit.
struct Plan {
    dst: u64,
    dst_pitch: u64,
    /// Source address, pitch, and corner (x, y).
    src: Option<(u64, u64, u64, u64)>,
    x1: u64,
    y1: u64,
    /// Width in pixels, height in rows.
    w: u64,
    h: u64,
    /// Bytes per pixel.
    bpp: u64,
    color: u32,
    /// 32 bpp write enables: RGB, alpha.
    rgb: bool,
    alpha: bool,
}

impl Plan {
    fn row_bytes(&self) -> u64 {
        self.w * self.bpp
    }

    fn dst_row(&self, r: u64) -> u64 {
        self.dst + (self.y1 + r) * self.dst_pitch + self.x1 * self.bpp
    }

    fn src_row(&self, r: u64) -> Option<u64> {
        self.src
            .map(|(base, pitch, x, y)| base + (y + r) * pitch + x * self.bpp)
    }

    /// Bytes of a dword at a 4-aligned address that the write enables let through, for a
    /// row starting at `a`.
    fn channel_mask(&self, a: u64) -> u32 {
        if self.bpp != 4 {
            return !0;
        }
        (0..4u64).fold(0, |m, k| {
            let ch = (k + 4 - a % 4) % 4;
            let on = if ch == 3 { self.alpha } else { self.rgb };
            if on {
                m | (0xff << (8 * k))
            } else {
                m
            }
        })
    }

    /// The fill colour as the bytes of a 4-aligned dword of a row starting at `a`.
    fn fill_word(&self, a: u64) -> u32 {
        let bpp = self.bpp.min(4);
        (0..4u64).fold(0, |w, k| {
            let i = (k + bpp - a % bpp) % bpp;
            w | (((self.color >> (8 * i)) & 0xff) << (8 * k))
        })
    }
}

/// The pages of a translated surface, visited in the order they were translated.
struct Cursor<'a> {
    list: &'a [(u64, Frame)],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn frame(&mut self, addr: u64) -> Option<&'a Frame> {
        let page = addr / PAGE;
        while let Some((p, f)) = self.list.get(self.i) {
            if *p == page {
                return Some(f);
            }
            self.i += 1;
        }
        None
    }
}

/// Appends the pages of `[start, start + len)` to `list`, translated for a read or a
/// `write`.
fn collect(
    mmu: &Mmu<'_>,
    list: &mut KVVec<(u64, Frame)>,
    start: u64,
    len: u64,
    write: bool,
    at: u64,
) -> Result<(), EngineError> {
    let (first, last) = (start / PAGE, (start + len - 1) / PAGE);
    for page in first..=last {
        if list.last().is_some_and(|(p, _)| *p == page) {
            continue;
        }
        let addr = (page * PAGE).max(start);
        let f = mmu.translate(Space::Ppgtt, addr, write)?;
        list.push_within_capacity((page, f))
            .map_err(|_| EngineError::Malformed { at })?;
    }
    Ok(())
}

/// The byte mask of bytes `[lo, hi)` of a dword.
fn byte_mask(lo: u64, hi: u64) -> u32 {
    (lo..hi).fold(0, |m, k| m | (0xff << (8 * k)))
}

/// Stores `v` into the bytes `m` selects of the dword at `d`.
fn put(f: &Frame, d: u64, v: u32, m: u32) -> Result<(), ()> {
    let off = (d % PAGE) as usize;
    if m == !0 {
        f.store32(off, v).map_err(|_| ())
    } else if m != 0 {
        let old = f.load32(off).map_err(|_| ())?;
        f.store32(off, (old & !m) | (v & m)).map_err(|_| ())
    } else {
        Ok(())
    }
}

/// Fills `n` bytes at `a`; on failure, the address that failed.
fn fill_row(c: &mut Cursor<'_>, a: u64, n: u64, word: u32, chmask: u32) -> Result<(), u64> {
    let end = a + n;
    let q = u64::from(word) | (u64::from(word) << 32);
    let mut d = a & !3;
    while d < end {
        let f = c.frame(d).ok_or(d)?;
        if chmask == !0 && d >= a && d % 8 == 0 && d + 8 <= end {
            f.store64((d % PAGE) as usize, q).map_err(|_| d)?;
            d += 8;
            continue;
        }
        let m = byte_mask(a.saturating_sub(d), (end - d).min(4)) & chmask;
        put(f, d, word, m).map_err(|()| d)?;
        d += 4;
    }
    Ok(())
}

/// Copies `n` bytes from `s` to `a`; on failure, the address and whether it was a write.
fn copy_row(
    dc: &mut Cursor<'_>,
    sc: &mut Cursor<'_>,
    a: u64,
    s: u64,
    n: u64,
    chmask: u32,
) -> Result<(), (u64, bool)> {
    let end = a + n;
    let fast8 = chmask == !0 && a % 8 == s % 8;
    let fast4 = chmask == !0 && a % 4 == s % 4;
    let mut cache: Option<(u64, u32)> = None;
    let mut d = a & !3;
    while d < end {
        let f = dc.frame(d).ok_or((d, true))?;
        let doff = (d % PAGE) as usize;
        if d >= a {
            let x = s + (d - a);
            if fast8 && d % 8 == 0 && d + 8 <= end {
                let v = sc
                    .frame(x)
                    .and_then(|sf| sf.load64((x % PAGE) as usize).ok())
                    .ok_or((x, false))?;
                f.store64(doff, v).map_err(|_| (d, true))?;
                d += 8;
                continue;
            }
            if fast4 && d + 4 <= end {
                let v = sc
                    .frame(x)
                    .and_then(|sf| sf.load32((x % PAGE) as usize).ok())
                    .ok_or((x, false))?;
                f.store32(doff, v).map_err(|_| (d, true))?;
                d += 4;
                continue;
            }
        }
        let (mut v, mut m) = (0u32, 0u32);
        for k in 0..4u64 {
            let b = d + k;
            if b < a || b >= end {
                continue;
            }
            let x = s + (b - a);
            let sd = x & !3;
            let w = match cache {
                Some((ad, w)) if ad == sd => w,
                _ => {
                    let w = sc
                        .frame(sd)
                        .and_then(|sf| sf.load32((sd % PAGE) as usize).ok())
                        .ok_or((x, false))?;
                    cache = Some((sd, w));
                    w
                }
            };
            v |= ((w >> ((x % 4) * 8)) & 0xff) << (8 * k);
            m |= 0xff << (8 * k);
        }
        put(f, d, v, m & chmask).map_err(|()| (d, true))?;
        d += 4;
    }
    Ok(())
}

/// Bytes per pixel of a legacy `XY_*` BR13 depth field (bits 25:24).
fn legacy_bpp(br13: u32) -> u64 {
    match (br13 >> 24) & 3 {
        0 => 1,
        3 => 4,
        _ => 2,
    }
}

impl Run<'_> {
    /// Decodes the blit in the command buffer; `None` if it is a variant the sim does not
    /// model.
    fn plan(&self, op: u32) -> Option<Plan> {
        let h = self.dw(0);
        let br13 = self.dw(1);
        let pitch = u64::from(br13 & 0xffff);
        let (f, t) = (self.dw(2), self.dw(3));
        let (x1, y1) = (u64::from(f & 0xffff), u64::from(f >> 16));
        let (x2, y2) = (u64::from(t & 0xffff), u64::from(t >> 16));
        let dst = Self::addr(self.dw(4), self.dw(5), 1);
        let src = || {
            let sp = u64::from(self.dw(7) & 0xffff);
            let s = self.dw(6);
            (sp & 0x8000 == 0).then(|| {
                (
                    Self::addr(self.dw(8), self.dw(9), 1),
                    sp,
                    u64::from(s & 0xffff),
                    u64::from(s >> 16),
                )
            })
        };
        let legacy_rop = (br13 >> 16) & 0xff;
        let (bpp, src, color, rgb, alpha) = match op {
            0x50 => {
                if h & (1 << 11) != 0 || legacy_rop != 0xf0 {
                    return None;
                }
                let bpp = legacy_bpp(br13);
                (
                    bpp,
                    None,
                    self.dw(6),
                    h & (1 << 20) != 0,
                    h & (1 << 21) != 0,
                )
            }
            0x53 => {
                if h & ((1 << 15) | (1 << 11)) != 0 || legacy_rop != 0xcc {
                    return None;
                }
                let bpp = legacy_bpp(br13);
                (bpp, Some(src()?), 0, h & (1 << 20) != 0, h & (1 << 21) != 0)
            }
            _ if op == FAST_COPY_OP & 0x7f => {
                if h & ((3 << 20) | (3 << 13)) != 0 {
                    return None;
                }
                let bpp = match (br13 >> 24) & 7 {
                    0 => 1,
                    1 => 2,
                    3 => 4,
                    4 => 8,
                    _ => return None,
                };
                (bpp, Some(src()?), 0, true, true)
            }
            _ => return None,
        };
        if pitch & 0x8000 != 0 {
            return None;
        }
        Some(Plan {
            dst,
            dst_pitch: pitch,
            src,
            x1,
            y1,
            w: x2.saturating_sub(x1),
            h: y2.saturating_sub(y1),
            bpp,
            color,
            rgb,
            alpha,
        })
    }

    /// Runs the blit (`op`: header bits 28:22) read into the command buffer.
    pub(super) fn blit(&mut self, op: u32, at: u64) -> Result<(), EngineError> {
        let Some(p) = self.plan(op) else {
            self.counts.not_modelled += 1;
            return Ok(());
        };
        if p.w == 0 || p.h == 0 || (p.bpp == 4 && !p.rgb && !p.alpha) {
            return Ok(());
        }
        self.charge(p.h as u32)?;
        let n = p.row_bytes();
        self.s.dst.clear();
        self.s.src.clear();
        for r in 0..p.h {
            collect(&self.mmu, &mut self.s.dst, p.dst_row(r), n, true, at)?;
            if let Some(s) = p.src_row(r) {
                collect(&self.mmu, &mut self.s.src, s, n, false, at)?;
            }
        }
        let mut dc = Cursor {
            list: &self.s.dst,
            i: 0,
        };
        let mut sc = Cursor {
            list: &self.s.src,
            i: 0,
        };
        for r in 0..p.h {
            let a = p.dst_row(r);
            let chmask = p.channel_mask(a);
            match p.src_row(r) {
                Some(s) => copy_row(&mut dc, &mut sc, a, s, n, chmask)
                    .map_err(|(x, w)| fault(Space::Ppgtt, x, w))?,
                None => fill_row(&mut dc, a, n, p.fill_word(a), chmask)
                    .map_err(|x| fault(Space::Ppgtt, x, true))?,
            }
        }
        self.counts.blit_bytes += p.h * n;
        Ok(())
    }
}
