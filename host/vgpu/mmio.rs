// SPDX-License-Identifier: GPL-2.0

//! BAR0 of a vGPU below the GGTT: the PVINFO page and the GEN9 register model.
//!
//! An access is one naturally aligned chunk of at most 8 bytes (`access.rs`). PVINFO
//! (0x78000, one page) is served here; the rest of the first 2 MiB goes to the register
//! model ([`Regs`]) a dword at a time: an 8-byte access as its low then its high dword,
//! a sub-dword read as the bytes of its dword, a sub-dword write merged into the dword
//! where that has no side effect. Between 2 and 8 MiB there is nothing (reads zero,
//! writes ignored, counted); from 8 MiB the GGTT entries, which `Vgpu` routes elsewhere.
use super::regs::{Action, Regs};
use crate::abi::{
    pvinfo::{self, AvailRs, GmRange, VgtIf},
    regs::MMIO_SIZE,
};
use crate::debugfs::Counters;
use crate::mm::partition::Slice;
use kernel::prelude::*;
use zerocopy::FromZeros;

/// The capabilities a gvtpv host offers in `vgt_caps`.
pub(crate) const HOST_CAPS: u32 = pvinfo::VGT_CAPS_FULL_PPGTT | pvinfo::VGT_CAPS_HWSP_EMULATION;

/// A defect injected into the PVINFO page the guest reads, to test guest drivers'
/// refusal paths (debugfs `pvinfo_fault`). The host's own state is never changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fault {
    /// The real page.
    None = 0,
    /// A wrong magic.
    Magic = 1,
    /// An unsupported major version.
    Version = 2,
    /// A hidden slice that overlaps the aperture.
    Ranges = 3,
    /// More fences than the hardware has.
    Fences = 4,
}

impl Fault {
    /// The names debugfs accepts, in discriminant order.
    pub(crate) const NAMES: [&'static str; 5] = ["none", "magic", "version", "ranges", "fences"];

    /// Decodes a stored discriminant; unknown values mean no fault.
    pub(crate) fn from_u32(v: u32) -> Self {
        match v {
            1 => Self::Magic,
            2 => Self::Version,
            3 => Self::Ranges,
            4 => Self::Fences,
            _ => Self::None,
        }
    }

    /// Parses a name written to debugfs (surrounding white space ignored).
    pub(crate) fn parse(s: &[u8]) -> Option<Self> {
        let s = s.trim_ascii();
        let i = Self::NAMES.iter().position(|n| n.as_bytes() == s)?;
        Some(Self::from_u32(i as u32))
    }

    /// The bytes the fault changes in `p`: their offset in the page and their new value
    /// (little endian, `len` bytes of `bytes`).
    fn patch(self, p: &VgtIf) -> Option<(usize, [u8; 8], usize)> {
        let (off, v, len) = match self {
            Self::None => return None,
            Self::Magic => (pvinfo::offset::MAGIC, 0x0bad_0bad_0bad_0bad_u64, 8),
            Self::Version => (
                pvinfo::offset::VERSION_MAJOR,
                u64::from(pvinfo::VGT_VERSION_MAJOR + 1),
                2,
            ),
            Self::Ranges => (
                pvinfo::offset::NONMAPPABLE_BASE,
                u64::from(p.avail_rs.mappable_gmadr.base.get()),
                4,
            ),
            Self::Fences => (
                pvinfo::offset::FENCE_NUM,
                u64::from(crate::abi::gen::MAX_FENCES + 1),
                4,
            ),
        };
        Some((off as usize, v.to_le_bytes(), len))
    }

    /// Applies the fault to `buf`, which holds page bytes `[at, at + buf.len())`: only the
    /// bytes of the fault that fall inside the chunk change.
    fn apply(self, p: &VgtIf, at: usize, buf: &mut [u8]) {
        let Some((off, bytes, len)) = self.patch(p) else {
            return;
        };
        let end = at + buf.len();
        for (i, b) in bytes.iter().take(len).enumerate() {
            let pos = off + i;
            if (at..end).contains(&pos) {
                if let Some(d) = buf.get_mut(pos - at) {
                    *d = *b;
                }
            }
        }
    }
}

/// What a BAR0 access hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Hit {
    /// The PVINFO page.
    Pvinfo,
    /// A `g2v_notify` write, with the value written.
    G2vNotify(u32),
    /// A write to a read-only part of PVINFO, ignored.
    PvinfoReadOnly,
    /// A modelled register.
    Reg,
    /// An unmodelled register below 2 MiB: the default store.
    Default,
    /// Anything else: reads zero, writes ignored.
    Unhandled,
}

/// What one access did, for the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Out {
    /// What it hit (its first dword, for an 8-byte access).
    pub(crate) hit: Hit,
    /// Actions for the caller once it dropped `state`, one per dword at most.
    pub(crate) actions: [Option<Action>; 2],
    /// The caller raises the vGPU's interrupt, under `state`.
    pub(crate) raise: bool,
}

impl Out {
    fn hit(hit: Hit) -> Self {
        Self {
            hit,
            actions: [None; 2],
            raise: false,
        }
    }
    /// Takes in the result of dword `i` of the access.
    fn merge(&mut self, i: usize, modelled: bool, fx: super::regs::Effect) {
        if i == 0 && modelled {
            self.hit = Hit::Reg;
        }
        if let Some(a) = self.actions.get_mut(i) {
            *a = fx.action;
        }
        self.raise |= fx.raise;
    }
}

/// The MMIO state of one vGPU.
///
/// The PVINFO page lives on the heap: 4 KiB is too much for a kernel stack, and the page
/// is built in place, never moved.
pub(crate) struct Mmio {
    pvinfo: KBox<[u8; pvinfo::PVINFO_SIZE as usize]>,
    /// What the host half says after a reset.
    slice: Slice,
    /// Everything else below 2 MiB.
    regs: Regs,
}

/// Builds the `avail_rs` block a vGPU with `s` sees.
pub(crate) fn avail_rs(s: &Slice) -> AvailRs {
    let mut rs = AvailRs::new_zeroed();
    // The slice fits in 32 bits: the GGTT is 4 GiB and every base and size is below it.
    rs.mappable_gmadr = GmRange::new(s.aperture_base as u32, s.aperture_size as u32);
    rs.nonmappable_gmadr = GmRange::new(s.hidden_base as u32, s.hidden_size as u32);
    rs.fence_num.set(s.fences);
    rs
}

impl Mmio {
    /// The power-on state of the vGPU with slice `s`.
    ///
    /// # Errors
    ///
    /// `ENOMEM`.
    pub(crate) fn new(s: &Slice) -> Result<Self> {
        let mut m = Self {
            pvinfo: KBox::zeroed(GFP_KERNEL)?,
            slice: *s,
            regs: Regs::new(s)?,
        };
        m.reset();
        Ok(m)
    }

    /// The PVINFO page as the guest sees it.
    pub(crate) fn pvinfo(&self) -> &VgtIf {
        zerocopy::transmute_ref!(&*self.pvinfo)
    }

    fn pvinfo_mut(&mut self) -> &mut VgtIf {
        zerocopy::transmute_mut!(&mut *self.pvinfo)
    }

    /// The register model.
    pub(crate) fn regs(&self) -> &Regs {
        &self.regs
    }

    /// The register model, to drive it (schedule-in/out, events, resets).
    pub(crate) fn regs_mut(&mut self) -> &mut Regs {
        &mut self.regs
    }

    /// Power-on state: the host half as the slice says, the guest half zero, every
    /// register at its reset value.
    pub(crate) fn reset(&mut self) {
        self.regs.reset();
        self.pvinfo.fill(0);
        let s = self.slice;
        let p = self.pvinfo_mut();
        p.magic.set(pvinfo::VGT_MAGIC);
        p.version_major.set(pvinfo::VGT_VERSION_MAJOR);
        p.version_minor.set(pvinfo::VGT_VERSION_MINOR);
        p.vgt_id.set(s.id);
        p.vgt_caps.set(HOST_CAPS);
        p.avail_rs = avail_rs(&s);
    }

    /// Reads `buf.len()` bytes at BAR0 offset `off` (one naturally aligned chunk), with
    /// `fault` injected into what PVINFO shows.
    pub(crate) fn read(&mut self, off: u64, buf: &mut [u8], fault: Fault, c: &Counters) -> Out {
        if let Some(r) = pvinfo_range(off, buf.len()) {
            let at = r.start;
            if let Some(src) = self.pvinfo.get(r) {
                buf.copy_from_slice(src);
                fault.apply(self.pvinfo(), at, buf);
                self.regs.note_pvinfo_read();
                return Out::hit(Hit::Pvinfo);
            }
        }
        let Some(dwords) = reg_dwords(off, buf.len()) else {
            buf.fill(0);
            return Out::hit(Hit::Unhandled);
        };
        let mut out = Out::hit(Hit::Default);
        for (i, d) in dwords.enumerate() {
            let (v, modelled, fx) = self.regs.read32(d, c);
            out.merge(i, modelled, fx);
            copy_part(d, &v.to_le_bytes(), off, buf);
        }
        out
    }

    /// Writes `data` at BAR0 offset `off` (one naturally aligned chunk).
    pub(crate) fn write(&mut self, off: u64, data: &[u8], c: &Counters) -> Out {
        if let Some(r) = pvinfo_range(off, data.len()) {
            let hit = self.write_pvinfo(r, data);
            let mut out = Out::hit(hit);
            if let Hit::G2vNotify(notify) = hit {
                out.actions[0] = Some(Action::G2vNotify {
                    notify,
                    pdp: self.pdps(),
                });
            }
            return out;
        }
        let Some(dwords) = reg_dwords(off, data.len()) else {
            return Out::hit(Hit::Unhandled);
        };
        let mut out = Out::hit(Hit::Default);
        for (i, d) in dwords.enumerate() {
            // The bytes of this dword the access covers, and where they start in it.
            let lo = off.max(u64::from(d));
            let hi = (off + data.len() as u64).min(u64::from(d) + 4);
            let Some(bytes) = data.get((lo - off) as usize..(hi - off) as usize) else {
                continue;
            };
            let (modelled, fx) = match <[u8; 4]>::try_from(bytes) {
                Ok(dw) => self.regs.write32(d, u32::from_le_bytes(dw), c),
                Err(_) => {
                    let at = (lo - u64::from(d)) as usize;
                    (self.regs.write_part(d, at, bytes, c), Default::default())
                }
            };
            out.merge(i, modelled, fx);
        }
        out
    }

    fn write_pvinfo(&mut self, r: core::ops::Range<usize>, data: &[u8]) -> Hit {
        let (start, len) = (r.start as u32, data.len() as u32);
        if !pvinfo::guest_writable(start, len) {
            return Hit::PvinfoReadOnly;
        }
        if let Some(dst) = self.pvinfo.get_mut(r) {
            dst.copy_from_slice(data);
        }
        if start == pvinfo::offset::G2V_NOTIFY && len == 4 {
            return Hit::G2vNotify(self.pvinfo().g2v_notify.get());
        }
        Hit::Pvinfo
    }

    /// PVINFO `pdp[0..4]` as the guest wrote them.
    pub(crate) fn pdps(&self) -> [u64; 4] {
        self.pvinfo()
            .pdp
            .map(|p| (u64::from(p.size.get()) << 32) | u64::from(p.base.get()))
    }
}

/// The dword offsets `[off, off + len)` covers, if it lies below 2 MiB and does not
/// touch the PVINFO page (an access wholly inside it never gets here).
fn reg_dwords(off: u64, len: usize) -> Option<impl Iterator<Item = u32>> {
    let end = off.checked_add(len as u64)?;
    let pv =
        u64::from(pvinfo::PVINFO_OFFSET)..u64::from(pvinfo::PVINFO_OFFSET + pvinfo::PVINFO_SIZE);
    if len == 0 || len > 8 || end > u64::from(MMIO_SIZE) || (off < pv.end && end > pv.start) {
        return None;
    }
    let first = (off & !3) as u32;
    let last = ((end - 1) & !3) as u32;
    Some((first..=last).step_by(4))
}

/// Copies the bytes of dword `d` (value `v`) that `[off, off + buf.len())` covers into
/// `buf`.
fn copy_part(d: u32, v: &[u8; 4], off: u64, buf: &mut [u8]) {
    for (k, b) in v.iter().enumerate() {
        let at = u64::from(d) + k as u64;
        if let Some(dst) = at.checked_sub(off).and_then(|i| buf.get_mut(i as usize)) {
            *dst = *b;
        }
    }
}

/// The byte range inside the PVINFO page that `[off, off + len)` covers, if it lies wholly
/// inside it.
fn pvinfo_range(off: u64, len: usize) -> Option<core::ops::Range<usize>> {
    let base = u64::from(pvinfo::PVINFO_OFFSET);
    let rel = off.checked_sub(base)?;
    let end = rel.checked_add(len as u64)?;
    (end <= u64::from(pvinfo::PVINFO_SIZE)).then_some(rel as usize..end as usize)
}

#[kunit_tests(gvtpv_host_mmio)]
mod tests {
    use super::*;
    use crate::abi::{gen, pvinfo::offset};
    use crate::mm::partition::{Partition, APERTURE_SIZE};
    use crate::vgpu::types::TYPES;

    fn rd32(m: &mut Mmio, off: u32) -> u32 {
        let mut b = [0u8; 4];
        let c = Counters::default();
        m.read(
            u64::from(pvinfo::PVINFO_OFFSET + off),
            &mut b,
            Fault::None,
            &c,
        );
        u32::from_le_bytes(b)
    }

    #[test]
    fn pvinfo_per_type() {
        for t in TYPES.iter() {
            let mut p = Partition::new();
            let s = p.alloc(&t.request).unwrap();
            let mut m = Mmio::new(&s).unwrap();
            assert_eq!(rd32(&mut m, 0), 0x7654_4776);
            assert_eq!(rd32(&mut m, 4), 0x4776_5447);
            assert_eq!(rd32(&mut m, offset::VERSION_MAJOR), 1);
            assert_eq!(rd32(&mut m, offset::VGT_ID), 1);
            assert_eq!(rd32(&mut m, offset::VGT_CAPS), HOST_CAPS);
            assert_eq!(
                u64::from(rd32(&mut m, offset::MAPPABLE_SIZE)),
                t.request.aperture
            );
            assert_eq!(
                u64::from(rd32(&mut m, offset::NONMAPPABLE_SIZE)),
                t.request.hidden
            );
            assert_eq!(rd32(&mut m, offset::FENCE_NUM), t.request.fences);
            // What a guest would conclude from it.
            let id = pvinfo::identify(m.pvinfo(), 4 << 30, APERTURE_SIZE).unwrap();
            assert_eq!(u64::from(id.mappable.0), s.aperture_base);
        }
    }

    #[test]
    fn injected_faults_are_what_a_guest_refuses() {
        let mut p = Partition::new();
        let s = p.alloc(&TYPES[0].request).unwrap();
        let mut m = Mmio::new(&s).unwrap();
        let want = [
            None,
            Some(pvinfo::PvinfoError::BadMagic(0x0bad_0bad_0bad_0bad)),
            Some(pvinfo::PvinfoError::BadVersion(2, 0)),
            Some(pvinfo::PvinfoError::BadNonMappable),
            Some(pvinfo::PvinfoError::BadFences(gen::MAX_FENCES + 1)),
        ];
        let c = Counters::default();
        for (i, name) in Fault::NAMES.iter().enumerate() {
            let f = Fault::parse(name.as_bytes()).unwrap();
            // Read as a guest does, a dword at a time: each chunk carries only its part
            // of the fault.
            let mut page = KBox::<[u8; 4096]>::zeroed(GFP_KERNEL).unwrap();
            for (k, dw) in page.chunks_exact_mut(4).enumerate() {
                m.read(u64::from(pvinfo::PVINFO_OFFSET) + 4 * k as u64, dw, f, &c);
            }
            let page: &VgtIf = zerocopy::transmute_ref!(&*page);
            let got = pvinfo::identify(page, 4 << 30, APERTURE_SIZE).err();
            assert_eq!(got, want[i]);
        }
        assert_eq!(Fault::parse(b" magic\n"), Some(Fault::Magic));
        assert_eq!(Fault::parse(b"bogus"), None);
        // The host's page is untouched.
        assert_eq!(rd32(&mut m, 0), 0x7654_4776);
    }

    #[test]
    fn guest_writes_only_reach_the_guest_half() {
        let mut p = Partition::new();
        let s = p.alloc(&TYPES[0].request).unwrap();
        let mut m = Mmio::new(&s).unwrap();
        let c = Counters::default();
        let base = u64::from(pvinfo::PVINFO_OFFSET);
        let hit = |o: Out| o.hit;
        assert_eq!(hit(m.write(base, &[0; 4], &c)), Hit::PvinfoReadOnly);
        assert_eq!(rd32(&mut m, 0), 0x7654_4776);
        assert_eq!(
            hit(m.write(base + u64::from(offset::FENCE_NUM), &[0xff; 4], &c)),
            Hit::PvinfoReadOnly
        );
        assert_eq!(rd32(&mut m, offset::FENCE_NUM), 4);
        // g2v_notify hands the PPGTT root over with the notification.
        m.write(
            base + u64::from(offset::PDP0_LO),
            &0x1234_5000u32.to_le_bytes(),
            &c,
        );
        m.write(
            base + u64::from(offset::PDP0_LO) + 4,
            &7u32.to_le_bytes(),
            &c,
        );
        let out = m.write(
            base + u64::from(offset::G2V_NOTIFY),
            &4u32.to_le_bytes(),
            &c,
        );
        assert_eq!(out.hit, Hit::G2vNotify(4));
        assert_eq!(
            out.actions[0],
            Some(Action::G2vNotify {
                notify: 4,
                pdp: [0x7_1234_5000, 0, 0, 0]
            })
        );
        assert_eq!(
            hit(m.write(
                base + u64::from(offset::DISPLAY_READY),
                &1u32.to_le_bytes(),
                &c
            )),
            Hit::Pvinfo
        );
        assert_eq!(rd32(&mut m, offset::DISPLAY_READY), 1);
        m.reset();
        assert_eq!(rd32(&mut m, offset::DISPLAY_READY), 0);
        assert_eq!(rd32(&mut m, offset::VGT_CAPS), HOST_CAPS);
        // Straddling the page end: not PVINFO, not a register.
        let mut b = [0xaau8; 8];
        assert_eq!(
            hit(m.read(base + 0xffc, &mut b, Fault::None, &c)),
            Hit::Unhandled
        );
        assert_eq!(b, [0; 8]);
        assert_eq!(hit(m.write(u64::MAX - 2, &[1; 4], &c)), Hit::Unhandled);
        // Between the registers and the GGTT: nothing.
        assert_eq!(hit(m.write(0x20_0000, &[1; 4], &c)), Hit::Unhandled);
    }

    #[test]
    fn registers_by_dword_pieces_and_qwords() {
        let mut p = Partition::new();
        let s = p.alloc(&TYPES[0].request).unwrap();
        let mut m = Mmio::new(&s).unwrap();
        let c = Counters::default();
        let rcs = u64::from(crate::abi::regs::RCS_BASE);
        let tail = rcs + u64::from(crate::abi::regs::ring::TAIL);
        // An 8-byte write: TAIL then HEAD, as two dwords.
        let out = m.write(tail, &0x0000_0040_0000_0080u64.to_le_bytes(), &c);
        assert_eq!(out.hit, Hit::Reg);
        let mut b = [0u8; 8];
        assert_eq!(m.read(tail, &mut b, Fault::None, &c).hit, Hit::Reg);
        assert_eq!(u64::from_le_bytes(b), 0x0000_0040_0000_0080);
        // Bytes and halves of a plain register.
        m.write(tail + 1, &[0x12], &c);
        m.write(tail + 2, &[0x34, 0x56], &c);
        let mut w = [0u8; 2];
        m.read(tail + 2, &mut w, Fault::None, &c);
        assert_eq!(w, [0x34, 0x56]);
        let mut d = [0u8; 4];
        m.read(tail, &mut d, Fault::None, &c);
        assert_eq!(u32::from_le_bytes(d), 0x5634_1280);
        // An unmodelled register keeps its value.
        let out = m.write(0x2000, &7u32.to_le_bytes(), &c);
        assert_eq!(out.hit, Hit::Default);
        m.read(0x2000, &mut d, Fault::None, &c);
        assert_eq!(u32::from_le_bytes(d), 7);
        // GDRST through an 8-byte write: the action of its dword.
        let gdrst = u64::from(crate::abi::regs::GDRST);
        let out = m.write(gdrst - 4, &(1u64 << 32).to_le_bytes(), &c);
        assert_eq!(out.actions, [None, Some(Action::FullReset)]);
    }
}
