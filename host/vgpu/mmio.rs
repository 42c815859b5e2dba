// SPDX-License-Identifier: GPL-2.0

//! BAR0 of a vGPU: the MMIO register space with the PVINFO page.
//!
//! In this first part only the PVINFO page is modelled; the GEN registers behind the rest
//! of BAR0 (GTT, execlists, interrupts) come with the backend. Unknown offsets read as
//! zero and ignore writes, and each such access is counted.

use crate::abi::pvinfo::{self, AvailRs, GmRange, VgtIf};
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
    /// Anything else: reads zero, writes ignored.
    Unhandled,
}

/// The MMIO state of one vGPU.
///
/// The PVINFO page lives on the heap: 4 KiB is too much for a kernel stack, and the page
/// is built in place, never moved.
pub(crate) struct Mmio {
    pvinfo: KBox<[u8; pvinfo::PVINFO_SIZE as usize]>,
    /// What the host half says after a reset.
    slice: Slice,
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

    /// Power-on state: the host half as the slice says, the guest half zero.
    pub(crate) fn reset(&mut self) {
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
    pub(crate) fn read(&self, off: u64, buf: &mut [u8], fault: Fault) -> Hit {
        match pvinfo_range(off, buf.len()).and_then(|r| Some((r.start, self.pvinfo.get(r)?))) {
            Some((at, src)) => {
                buf.copy_from_slice(src);
                fault.apply(self.pvinfo(), at, buf);
                Hit::Pvinfo
            }
            None => {
                buf.fill(0);
                Hit::Unhandled
            }
        }
    }

    /// Writes `data` at BAR0 offset `off` (one naturally aligned chunk).
    pub(crate) fn write(&mut self, off: u64, data: &[u8]) -> Hit {
        let Some(r) = pvinfo_range(off, data.len()) else {
            return Hit::Unhandled;
        };
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

    fn rd32(m: &Mmio, off: u32) -> u32 {
        let mut b = [0u8; 4];
        m.read(u64::from(pvinfo::PVINFO_OFFSET + off), &mut b, Fault::None);
        u32::from_le_bytes(b)
    }

    #[test]
    fn pvinfo_per_type() {
        for t in TYPES.iter() {
            let mut p = Partition::new();
            let s = p.alloc(&t.request).unwrap();
            let m = Mmio::new(&s).unwrap();
            assert_eq!(rd32(&m, 0), 0x7654_4776);
            assert_eq!(rd32(&m, 4), 0x4776_5447);
            assert_eq!(rd32(&m, offset::VERSION_MAJOR), 1);
            assert_eq!(rd32(&m, offset::VGT_ID), 1);
            assert_eq!(rd32(&m, offset::VGT_CAPS), HOST_CAPS);
            assert_eq!(
                u64::from(rd32(&m, offset::MAPPABLE_SIZE)),
                t.request.aperture
            );
            assert_eq!(
                u64::from(rd32(&m, offset::NONMAPPABLE_SIZE)),
                t.request.hidden
            );
            assert_eq!(rd32(&m, offset::FENCE_NUM), t.request.fences);
            // What a guest would conclude from it.
            let id = pvinfo::identify(m.pvinfo(), 4 << 30, APERTURE_SIZE).unwrap();
            assert_eq!(u64::from(id.mappable.0), s.aperture_base);
        }
    }

    #[test]
    fn injected_faults_are_what_a_guest_refuses() {
        let mut p = Partition::new();
        let s = p.alloc(&TYPES[0].request).unwrap();
        let m = Mmio::new(&s).unwrap();
        let want = [
            None,
            Some(pvinfo::PvinfoError::BadMagic(0x0bad_0bad_0bad_0bad)),
            Some(pvinfo::PvinfoError::BadVersion(2, 0)),
            Some(pvinfo::PvinfoError::BadNonMappable),
            Some(pvinfo::PvinfoError::BadFences(gen::MAX_FENCES + 1)),
        ];
        for (i, name) in Fault::NAMES.iter().enumerate() {
            let f = Fault::parse(name.as_bytes()).unwrap();
            // Read as a guest does, a dword at a time: each chunk carries only its part
            // of the fault.
            let mut page = KBox::<[u8; 4096]>::zeroed(GFP_KERNEL).unwrap();
            for (k, dw) in page.chunks_exact_mut(4).enumerate() {
                m.read(u64::from(pvinfo::PVINFO_OFFSET) + 4 * k as u64, dw, f);
            }
            let page: &VgtIf = zerocopy::transmute_ref!(&*page);
            let got = pvinfo::identify(page, 4 << 30, APERTURE_SIZE).err();
            assert_eq!(got, want[i]);
        }
        assert_eq!(Fault::parse(b" magic\n"), Some(Fault::Magic));
        assert_eq!(Fault::parse(b"bogus"), None);
        // The host's page is untouched.
        assert_eq!(rd32(&m, 0), 0x7654_4776);
    }

    #[test]
    fn guest_writes_only_reach_the_guest_half() {
        let mut p = Partition::new();
        let s = p.alloc(&TYPES[0].request).unwrap();
        let mut m = Mmio::new(&s).unwrap();
        let base = u64::from(pvinfo::PVINFO_OFFSET);
        assert_eq!(m.write(base, &[0; 4]), Hit::PvinfoReadOnly);
        assert_eq!(rd32(&m, 0), 0x7654_4776);
        assert_eq!(
            m.write(base + u64::from(offset::FENCE_NUM), &[0xff; 4]),
            Hit::PvinfoReadOnly
        );
        assert_eq!(rd32(&m, offset::FENCE_NUM), 4);
        assert_eq!(
            m.write(base + u64::from(offset::G2V_NOTIFY), &4u32.to_le_bytes()),
            Hit::G2vNotify(4)
        );
        assert_eq!(
            m.write(base + u64::from(offset::DISPLAY_READY), &1u32.to_le_bytes()),
            Hit::Pvinfo
        );
        assert_eq!(rd32(&m, offset::DISPLAY_READY), 1);
        m.reset();
        assert_eq!(rd32(&m, offset::DISPLAY_READY), 0);
        assert_eq!(rd32(&m, offset::VGT_CAPS), HOST_CAPS);
        // Outside PVINFO: zero, ignored; straddling the page end: not PVINFO.
        let mut b = [0xaau8; 8];
        assert_eq!(m.read(0x2000, &mut b, Fault::None), Hit::Unhandled);
        assert_eq!(b, [0; 8]);
        assert_eq!(m.read(base + 0xffc, &mut b, Fault::None), Hit::Unhandled);
        assert_eq!(m.write(u64::MAX - 2, &[1; 4]), Hit::Unhandled);
    }
}
