// SPDX-License-Identifier: GPL-2.0

//! Reading and validating the PVINFO page and the GGTT geometry a vGPU advertises.
//!
//! The host is trusted less than fully: everything read here is checked before the driver
//! acts on it, and a device that fails is refused with a message that says why.

use crate::abi::{gen, pvinfo};
use kernel::fmt;
use kernel::prelude::*;

/// What the guest learned about its vGPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Vgpu {
    /// The PVINFO contents, validated.
    pub(crate) id: pvinfo::Identity,
    /// Size of the graphics memory address space.
    pub(crate) ggtt_size: u64,
}

/// Why a device is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// PVINFO failed validation.
    Pvinfo(pvinfo::PvinfoError),
    /// The GMCH control register advertises no GGTT.
    NoGgtt(u16),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use pvinfo::PvinfoError::*;
        match self {
            Refusal::NoGgtt(g) => write!(f, "GMCH control {g:#06x} advertises no GGTT"),
            Refusal::Pvinfo(BadMagic(m)) => write!(f, "PVINFO magic {m:#018x} is not a vGPU's"),
            Refusal::Pvinfo(BadVersion(a, b)) => {
                write!(
                    f,
                    "PVINFO version {a}.{b} is not supported (need {}.x)",
                    pvinfo::VGT_VERSION_MAJOR
                )
            }
            Refusal::Pvinfo(MissingCaps(c)) => write!(f, "vGPU lacks required capabilities {c:#x}"),
            Refusal::Pvinfo(BadMappable) => write!(f, "invalid ballooning: bad aperture slice"),
            Refusal::Pvinfo(BadNonMappable) => write!(f, "invalid ballooning: bad hidden slice"),
            Refusal::Pvinfo(BadFences(n)) => write!(f, "invalid fence count {n}"),
        }
    }
}

/// Validates a PVINFO page read from the device, with its GMCH control value and the size
/// of its aperture BAR.
///
/// # Errors
///
/// The [`Refusal`] that says what is wrong.
pub(crate) fn validate(page: &pvinfo::VgtIf, gmch: u16, aperture: u64) -> Result<Vgpu, Refusal> {
    let ggtt_size = gen::ggtt_size_from_gmch(gmch).ok_or(Refusal::NoGgtt(gmch))?;
    let id = pvinfo::identify(page, ggtt_size, aperture).map_err(Refusal::Pvinfo)?;
    Ok(Vgpu { id, ggtt_size })
}

impl fmt::Display for Vgpu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.id;
        write!(
            f,
            "vGPU {} PVINFO {}.{} caps {:#x} GGTT {} MiB aperture {:#x}+{:#x} hidden {:#x}+{:#x} fences {}",
            i.vgt_id,
            i.major,
            i.minor,
            i.caps,
            self.ggtt_size >> 20,
            i.mappable.0,
            i.mappable.1,
            i.nonmappable.0,
            i.nonmappable.1,
            i.fences
        )
    }
}

#[kunit_tests(gvtpv_guest_pvinfo)]
mod tests {
    use super::*;
    use crate::abi::pvinfo::{GmRange, PvinfoError, VgtIf};

    const GMCH_4G: u16 = 3 << 6;
    /// BAR2: the whole 1 GiB aperture, as GVT-g and gvtpv size it.
    const AP: u64 = 1 << 30;

    /// A PVINFO page on the heap (4 KiB does not belong on a kernel stack).
    struct Page(KBox<[u8; 4096]>);

    impl core::ops::Deref for Page {
        type Target = VgtIf;
        fn deref(&self) -> &VgtIf {
            zerocopy::transmute_ref!(&*self.0)
        }
    }

    impl core::ops::DerefMut for Page {
        fn deref_mut(&mut self) -> &mut VgtIf {
            zerocopy::transmute_mut!(&mut *self.0)
        }
    }

    fn page() -> Page {
        let mut p = Page(KBox::zeroed(GFP_KERNEL).unwrap());
        p.magic.set(pvinfo::VGT_MAGIC);
        p.version_major.set(pvinfo::VGT_VERSION_MAJOR);
        p.version_minor.set(pvinfo::VGT_VERSION_MINOR);
        p.vgt_id.set(1);
        p.vgt_caps.set(pvinfo::VGT_CAPS_REQUIRED);
        p.avail_rs.mappable_gmadr = GmRange::new(128 << 20, 64 << 20);
        p.avail_rs.nonmappable_gmadr = GmRange::new(1536 << 20, 384 << 20);
        p.avail_rs.fence_num.set(4);
        p
    }

    #[test]
    fn accepts_a_good_vgpu() {
        let v = validate(&page(), GMCH_4G, AP).unwrap();
        assert_eq!(v.ggtt_size, 4 << 30);
        assert_eq!(v.id.fences, 4);
    }

    #[test]
    fn refuses_bad_magic() {
        let mut p = page();
        p.0[0] ^= 1;
        assert!(matches!(
            validate(&p, GMCH_4G, AP),
            Err(Refusal::Pvinfo(PvinfoError::BadMagic(_)))
        ));
    }

    #[test]
    fn refuses_bad_version() {
        let mut p = page();
        p.version_major.set(0);
        assert_eq!(
            validate(&p, GMCH_4G, AP),
            Err(Refusal::Pvinfo(PvinfoError::BadVersion(0, 0)))
        );
        p.version_major.set(2);
        assert_eq!(
            validate(&p, GMCH_4G, AP),
            Err(Refusal::Pvinfo(PvinfoError::BadVersion(2, 0)))
        );
    }

    #[test]
    fn refuses_bad_ranges_and_geometry() {
        // Aperture slice larger than the BAR.
        assert_eq!(
            validate(&page(), GMCH_4G, 32 << 20),
            Err(Refusal::Pvinfo(PvinfoError::BadMappable))
        );
        // A 1 GiB GGTT cannot hold a hidden slice at 1.5 GiB.
        assert_eq!(
            validate(&page(), 1 << 6, AP),
            Err(Refusal::Pvinfo(PvinfoError::BadNonMappable))
        );
        assert_eq!(validate(&page(), 0, AP), Err(Refusal::NoGgtt(0)));
        let mut p = page();
        p.avail_rs.nonmappable_gmadr = GmRange::new(64 << 20, 384 << 20);
        assert_eq!(
            validate(&p, GMCH_4G, AP),
            Err(Refusal::Pvinfo(PvinfoError::BadNonMappable))
        );
        let mut p = page();
        p.avail_rs.fence_num.set(64);
        assert_eq!(
            validate(&p, GMCH_4G, AP),
            Err(Refusal::Pvinfo(PvinfoError::BadFences(64)))
        );
        let mut p = page();
        p.vgt_caps.set(0);
        assert!(matches!(
            validate(&p, GMCH_4G, AP),
            Err(Refusal::Pvinfo(PvinfoError::MissingCaps(_)))
        ));
    }
}
