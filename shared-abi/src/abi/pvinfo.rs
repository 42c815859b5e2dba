// SPDX-License-Identifier: GPL-2.0

//! The PVINFO page: upstream `struct vgt_if` at BAR0 + 0x78000.
//!
//! The layout is the one i915 and GVT-g use (`drivers/gpu/drm/i915/i915_pvinfo.h`), byte
//! for byte, so an unmodified i915 guest recognises a gvtpv vGPU. The top half page is
//! written by the host and read-only for the guest; the bottom half is the guest's
//! response area.

use zerocopy::byteorder::little_endian::{U16, U32, U64};

/// Offset of the PVINFO page in BAR0 (`VGT_PVINFO_PAGE`).
pub const PVINFO_OFFSET: u32 = 0x78000;

/// Size of the PVINFO page (`VGT_PVINFO_SIZE`).
pub const PVINFO_SIZE: u32 = 0x1000;

/// Offset inside the page where the guest-writable half starts.
pub const PVINFO_GUEST_HALF: u32 = 0x800;

/// `VGT_MAGIC`: "vGTvGTvG".
pub const VGT_MAGIC: u64 = 0x4776_5447_7654_4776;

/// `VGT_VERSION_MAJOR`.
pub const VGT_VERSION_MAJOR: u16 = 1;

/// `VGT_VERSION_MINOR`.
pub const VGT_VERSION_MINOR: u16 = 0;

/// `VGT_CAPS_FULL_PPGTT`: the vGPU supports full (per-process) 48-bit PPGTT.
pub const VGT_CAPS_FULL_PPGTT: u32 = 1 << 2;

/// `VGT_CAPS_HWSP_EMULATION`: the host emulates the hardware status page.
pub const VGT_CAPS_HWSP_EMULATION: u32 = 1 << 3;

/// `VGT_CAPS_HUGE_GTT`: the vGPU supports huge GTT pages.
pub const VGT_CAPS_HUGE_GTT: u32 = 1 << 4;

/// `VGT_CAPS_PV`: the host speaks the gvtpv paravirtual protocol; `pv_caps_offer` says
/// which parts (bit 5, as in the unmerged i915 PV series).
pub const VGT_CAPS_PV: u32 = 1 << 5;

/// Capabilities a guest driver requires before it drives the vGPU.
pub const VGT_CAPS_REQUIRED: u32 = VGT_CAPS_FULL_PPGTT | VGT_CAPS_HWSP_EMULATION;

/// `g2v_notify` values (`enum vgt_g2v_type`).
pub mod g2v {
    /// A 3-level PPGTT was created; its root is in `pdp`.
    pub const PPGTT_L3_PAGE_TABLE_CREATE: u32 = 2;
    /// A 3-level PPGTT was destroyed.
    pub const PPGTT_L3_PAGE_TABLE_DESTROY: u32 = 3;
    /// A 4-level PPGTT was created; its PML4 is in `pdp[0]`.
    pub const PPGTT_L4_PAGE_TABLE_CREATE: u32 = 4;
    /// A 4-level PPGTT was destroyed.
    pub const PPGTT_L4_PAGE_TABLE_DESTROY: u32 = 5;
    /// An execlist context was created.
    pub const EXECLIST_CONTEXT_CREATE: u32 = 6;
    /// An execlist context was destroyed.
    pub const EXECLIST_CONTEXT_DESTROY: u32 = 7;
    /// gvtpv: register the shared area at `shared_area_dma_addr` with `pv_caps_request`; the
    /// host answers in `pv_caps_accepted` and `pv_status` before the write completes.
    pub const PV_REGISTER: u32 = 8;
    /// gvtpv: the guest produced into a request channel whose consumer sleeps (doorbell).
    pub const PV_DOORBELL: u32 = 9;
    /// gvtpv: tear the shared area down; the host stops touching it before the write
    /// completes.
    pub const PV_UNREGISTER: u32 = 10;
    /// One past the last upstream value (`VGT_G2V_MAX`).
    pub const MAX: u32 = 8;
}

/// `VGT_DRV_DISPLAY_READY`: the guest is ready for a display owner switch.
pub const VGT_DRV_DISPLAY_READY: u32 = 1;

/// A range of graphics memory addresses (`{ u32 base; u32 size; }`).
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    zerocopy_derive::FromBytes,
    zerocopy_derive::IntoBytes,
    zerocopy_derive::Immutable,
    zerocopy_derive::KnownLayout,
    zerocopy_derive::Unaligned,
)]
#[repr(C)]
pub struct GmRange {
    /// First graphics memory address of the range.
    pub base: U32,
    /// Size of the range in bytes.
    pub size: U32,
}

impl GmRange {
    /// Builds a range from native values.
    pub fn new(base: u32, size: u32) -> Self {
        Self {
            base: U32::new(base),
            size: U32::new(size),
        }
    }

    /// One past the last address, computed without overflow.
    pub fn end(&self) -> u64 {
        u64::from(self.base.get()) + u64::from(self.size.get())
    }
}

/// The resources given to the vGPU (`avail_rs`), at offset 0x40.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    zerocopy_derive::FromBytes,
    zerocopy_derive::IntoBytes,
    zerocopy_derive::Immutable,
    zerocopy_derive::KnownLayout,
    zerocopy_derive::Unaligned,
)]
#[repr(C)]
pub struct AvailRs {
    /// The vGPU's slice of the CPU-mappable aperture.
    pub mappable_gmadr: GmRange,
    /// The vGPU's slice of the hidden (non-mappable) graphics memory.
    pub nonmappable_gmadr: GmRange,
    /// Number of fence registers the vGPU may use.
    pub fence_num: U32,
    /// Reserved, zero.
    pub rsv2: [U32; 3],
}

/// The PVINFO page (`struct vgt_if`), 4096 bytes, little-endian.
#[derive(
    Clone,
    Debug,
    PartialEq,
    Eq,
    zerocopy_derive::FromBytes,
    zerocopy_derive::IntoBytes,
    zerocopy_derive::Immutable,
    zerocopy_derive::KnownLayout,
    zerocopy_derive::Unaligned,
)]
#[repr(C)]
pub struct VgtIf {
    /// [`VGT_MAGIC`].
    pub magic: U64,
    /// [`VGT_VERSION_MAJOR`].
    pub version_major: U16,
    /// [`VGT_VERSION_MINOR`].
    pub version_minor: U16,
    /// Id of this vGPU on its host.
    pub vgt_id: U32,
    /// `VGT_CAPS_*` bits the host offers.
    pub vgt_caps: U32,
    /// Reserved, pads to 0x40.
    pub rsv1: [U32; 11],
    /// Resources assigned to the vGPU (ballooning).
    pub avail_rs: AvailRs,
    /// PV capabilities the host offers (`pv_caps::*`), 0x060. Host-written.
    pub pv_caps_offer: U32,
    /// PV capabilities in force after the last registration, 0x064. Host-written.
    pub pv_caps_accepted: U32,
    /// Result of the last registration (0 or a positive [`crate::abi::pvinfo::PvStatus`]
    /// code), 0x068. Host-written.
    pub pv_status: U32,
    /// Reserved, pads to the half page (0x800).
    pub rsv3: [U32; 0x200 - 27],
    /// Reserved; first word of the guest half.
    pub rsv4: U32,
    /// Written by the guest: [`VGT_DRV_DISPLAY_READY`] or 0.
    pub display_ready: U32,
    /// Reserved.
    pub rsv5: [U32; 4],
    /// Written by the guest: a [`g2v`] notification; a write traps to the host.
    pub g2v_notify: U32,
    /// Reserved.
    pub rsv6: [U32; 5],
    /// Cursor hot spot x.
    pub cursor_x_hot: U32,
    /// Cursor hot spot y.
    pub cursor_y_hot: U32,
    /// PPGTT roots for the `g2v` PPGTT notifications, `{lo, hi}` pairs.
    pub pdp: [GmRange; 4],
    /// Execlist context descriptor, low dword.
    pub execlist_context_descriptor_lo: U32,
    /// Execlist context descriptor, high dword.
    pub execlist_context_descriptor_hi: U32,
    /// PV capabilities the guest requests, 0x860. Guest-written.
    pub pv_caps_request: U32,
    /// Size of the shared area in 4 KiB pages, 0x864. Guest-written.
    pub shared_area_pages: U32,
    /// DMA address of the shared area (page aligned): a guest physical address, or an
    /// IOVA once the guest has a vIOMMU. At 0x868, naturally aligned (the unmerged
    /// series had a GPA at the misaligned 0x864). Guest-written.
    pub shared_area_dma_addr: U64,
    /// Reserved, pads to the page size.
    pub rsv7: [U32; 0x200 - 28],
}

/// Byte offsets of the `struct vgt_if` fields, as `vgtif_offset()` gives them upstream.
pub mod offset {
    /// `magic`.
    pub const MAGIC: u32 = 0x00;
    /// `version_major`.
    pub const VERSION_MAJOR: u32 = 0x08;
    /// `version_minor`.
    pub const VERSION_MINOR: u32 = 0x0a;
    /// `vgt_id`.
    pub const VGT_ID: u32 = 0x0c;
    /// `vgt_caps`.
    pub const VGT_CAPS: u32 = 0x10;
    /// `avail_rs.mappable_gmadr.base`.
    pub const MAPPABLE_BASE: u32 = 0x40;
    /// `avail_rs.mappable_gmadr.size`.
    pub const MAPPABLE_SIZE: u32 = 0x44;
    /// `avail_rs.nonmappable_gmadr.base`.
    pub const NONMAPPABLE_BASE: u32 = 0x48;
    /// `avail_rs.nonmappable_gmadr.size`.
    pub const NONMAPPABLE_SIZE: u32 = 0x4c;
    /// `avail_rs.fence_num`.
    pub const FENCE_NUM: u32 = 0x50;
    /// `display_ready`.
    pub const DISPLAY_READY: u32 = 0x804;
    /// `g2v_notify`.
    pub const G2V_NOTIFY: u32 = 0x818;
    /// `cursor_x_hot`.
    pub const CURSOR_X_HOT: u32 = 0x830;
    /// `cursor_y_hot`.
    pub const CURSOR_Y_HOT: u32 = 0x834;
    /// `pdp[0].lo`.
    pub const PDP0_LO: u32 = 0x838;
    /// `execlist_context_descriptor_lo`.
    pub const EXECLIST_DESC_LO: u32 = 0x858;
    /// `execlist_context_descriptor_hi`.
    pub const EXECLIST_DESC_HI: u32 = 0x85c;
    /// `pv_caps_offer` (host half).
    pub const PV_CAPS_OFFER: u32 = 0x060;
    /// `pv_caps_accepted` (host half).
    pub const PV_CAPS_ACCEPTED: u32 = 0x064;
    /// `pv_status` (host half).
    pub const PV_STATUS: u32 = 0x068;
    /// `pv_caps_request` (guest half).
    pub const PV_CAPS_REQUEST: u32 = 0x860;
    /// `shared_area_pages` (guest half).
    pub const SHARED_AREA_PAGES: u32 = 0x864;
    /// `shared_area_dma_addr` (guest half, 8 bytes).
    pub const SHARED_AREA_DMA_ADDR: u32 = 0x868;
}

/// PV capability bits (`pv_caps_offer`, `pv_caps_request`, `pv_caps_accepted`).
pub mod pv_caps {
    /// PPGTT bind/unbind by command instead of trapped page-table writes.
    pub const PPGTT: u32 = 1 << 0;
    /// GGTT bind/unbind by command instead of trapped GTT MMIO writes.
    pub const GGTT: u32 = 1 << 1;
    /// Submission by command instead of ELSP/CSB emulation.
    pub const SUBMISSION: u32 = 1 << 2;
    /// Every bit this ABI version defines.
    pub const KNOWN: u32 = PPGTT | GGTT | SUBMISSION;
}

/// The capabilities in force: what the guest asked for, within what the host offers.
///
/// The capability rule of [`crate::abi::shared::negotiate`], which is what a host calls.
///
/// Unknown bits are ignored, not refused: a newer guest asking for a capability an older
/// host does not know simply does not get it, and sees so in `pv_caps_accepted`.
pub fn negotiate_caps(offer: u32, request: u32) -> u32 {
    offer & request & pv_caps::KNOWN
}

/// `pv_status` values after a registration (`g2v_notify` = [`g2v::PV_REGISTER`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum PvStatus {
    /// Registered; the shared area is live.
    Ok = 0,
    /// The host offers no PV (no [`VGT_CAPS_PV`]).
    NotOffered = 1,
    /// The DMA address is not page aligned or does not resolve to guest memory.
    BadAddress = 2,
    /// The size is outside the host's bounds or smaller than the layout needs.
    BadSize = 3,
    /// The shared-area header failed validation (magic, version, layout).
    BadHeader = 4,
    /// No version both sides speak.
    NoCommonVersion = 5,
}

impl PvStatus {
    /// Decodes a `pv_status` word; `None` for a value this ABI does not define.
    pub fn from_u32(v: u32) -> Option<Self> {
        Some(match v {
            0 => Self::Ok,
            1 => Self::NotOffered,
            2 => Self::BadAddress,
            3 => Self::BadSize,
            4 => Self::BadHeader,
            5 => Self::NoCommonVersion,
            _ => return None,
        })
    }
}

macro_rules! assert_offset {
    ($field:ident $(. $sub:ident)*, $off:expr) => {
        const _: () = assert!(core::mem::offset_of!(VgtIf, $field $(. $sub)*) == $off as usize);
    };
}

const _: () = assert!(core::mem::size_of::<VgtIf>() == PVINFO_SIZE as usize);
const _: () = assert!(core::mem::size_of::<AvailRs>() == 0x20);
assert_offset!(magic, offset::MAGIC);
assert_offset!(version_major, offset::VERSION_MAJOR);
assert_offset!(version_minor, offset::VERSION_MINOR);
assert_offset!(vgt_id, offset::VGT_ID);
assert_offset!(vgt_caps, offset::VGT_CAPS);
assert_offset!(rsv1, 0x14);
assert_offset!(avail_rs.mappable_gmadr.base, offset::MAPPABLE_BASE);
assert_offset!(avail_rs.mappable_gmadr.size, offset::MAPPABLE_SIZE);
assert_offset!(avail_rs.nonmappable_gmadr.base, offset::NONMAPPABLE_BASE);
assert_offset!(avail_rs.nonmappable_gmadr.size, offset::NONMAPPABLE_SIZE);
assert_offset!(avail_rs.fence_num, offset::FENCE_NUM);
assert_offset!(pv_caps_offer, offset::PV_CAPS_OFFER);
assert_offset!(pv_caps_accepted, offset::PV_CAPS_ACCEPTED);
assert_offset!(pv_status, offset::PV_STATUS);
assert_offset!(rsv3, 0x6c);
assert_offset!(rsv4, PVINFO_GUEST_HALF);
assert_offset!(display_ready, offset::DISPLAY_READY);
assert_offset!(g2v_notify, offset::G2V_NOTIFY);
assert_offset!(cursor_x_hot, offset::CURSOR_X_HOT);
assert_offset!(cursor_y_hot, offset::CURSOR_Y_HOT);
assert_offset!(pdp, offset::PDP0_LO);
assert_offset!(execlist_context_descriptor_lo, offset::EXECLIST_DESC_LO);
assert_offset!(execlist_context_descriptor_hi, offset::EXECLIST_DESC_HI);
assert_offset!(pv_caps_request, offset::PV_CAPS_REQUEST);
assert_offset!(shared_area_pages, offset::SHARED_AREA_PAGES);
assert_offset!(shared_area_dma_addr, offset::SHARED_AREA_DMA_ADDR);
assert_offset!(rsv7, 0x870);

impl VgtIf {
    /// Builds the page a host offers: magic, version 1.0, the id, caps and resources.
    pub fn new(vgt_id: u32, vgt_caps: u32, avail_rs: AvailRs) -> Self {
        let mut p = <Self as zerocopy::FromZeros>::new_zeroed();
        p.magic = U64::new(VGT_MAGIC);
        p.version_major = U16::new(VGT_VERSION_MAJOR);
        p.version_minor = U16::new(VGT_VERSION_MINOR);
        p.vgt_id = U32::new(vgt_id);
        p.vgt_caps = U32::new(vgt_caps);
        p.avail_rs = avail_rs;
        p
    }
}

/// Whether the guest may write `len` bytes at `off` inside the page.
///
/// Only the bottom half (from [`PVINFO_GUEST_HALF`]) is the guest's; the host ignores
/// guest writes anywhere else.
pub fn guest_writable(off: u32, len: u32) -> bool {
    off >= PVINFO_GUEST_HALF && off.checked_add(len).is_some_and(|end| end <= PVINFO_SIZE)
}

/// Why a guest refuses a PVINFO page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PvinfoError {
    /// The magic is not [`VGT_MAGIC`]: not a vGPU (or not gvtpv).
    BadMagic(u64),
    /// The major version is not one this guest speaks.
    BadVersion(u16, u16),
    /// A capability the guest needs is missing; the value is the missing bits.
    MissingCaps(u32),
    /// The aperture slice is empty, unaligned or outside the aperture BAR.
    BadMappable,
    /// The hidden slice is empty, unaligned, overlaps the aperture or leaves the GGTT.
    BadNonMappable,
    /// The fence count is zero or above [`crate::abi::gen::MAX_FENCES`].
    BadFences(u32),
}

/// What a guest learns from a valid PVINFO page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity {
    /// Major version.
    pub major: u16,
    /// Minor version.
    pub minor: u16,
    /// vGPU id.
    pub vgt_id: u32,
    /// Capability bits.
    pub caps: u32,
    /// Aperture slice as (base, size).
    pub mappable: (u32, u32),
    /// Hidden slice as (base, size).
    pub nonmappable: (u32, u32),
    /// Fence registers.
    pub fences: u32,
}

/// Validates a PVINFO page as a guest driver must before it touches the vGPU.
///
/// `ggtt_size` is the graphics memory size the device advertises (GMCH control) and
/// `aperture_size` the size of its aperture BAR. The slice checks follow i915's
/// `intel_vgt_balloon()`: the aperture slice must lie inside the aperture, the hidden
/// slice above the aperture and inside the GGTT. In gvtpv the aperture BAR is the vGPU's
/// own slice, so the slice must also be exactly the BAR's size. Both slices must be
/// non-empty and 4 KiB aligned.
///
/// # Errors
///
/// The first [`PvinfoError`] found, in the order magic, version, caps, ranges, fences.
pub fn identify(p: &VgtIf, ggtt_size: u64, aperture_size: u64) -> Result<Identity, PvinfoError> {
    use crate::abi::gen::{GTT_PAGE_SIZE, MAX_FENCES};

    if p.magic.get() != VGT_MAGIC {
        return Err(PvinfoError::BadMagic(p.magic.get()));
    }
    let (major, minor) = (p.version_major.get(), p.version_minor.get());
    if major != VGT_VERSION_MAJOR {
        return Err(PvinfoError::BadVersion(major, minor));
    }
    let caps = p.vgt_caps.get();
    if caps & VGT_CAPS_REQUIRED != VGT_CAPS_REQUIRED {
        return Err(PvinfoError::MissingCaps(VGT_CAPS_REQUIRED & !caps));
    }
    let aligned = |r: &GmRange| {
        u64::from(r.base.get()) % GTT_PAGE_SIZE == 0 && u64::from(r.size.get()) % GTT_PAGE_SIZE == 0
    };
    // The CPU-visible aperture (BAR2) spans the whole mappable part of the GGTT, as GVT-g
    // sizes it for every vGPU; the vGPU's mappable slice lies inside it and its hidden
    // slice above it (i915's "Invalid ballooning configuration!" check).
    let m = &p.avail_rs.mappable_gmadr;
    if m.size.get() == 0 || !aligned(m) || m.end() > aperture_size || m.end() > ggtt_size {
        return Err(PvinfoError::BadMappable);
    }
    let n = &p.avail_rs.nonmappable_gmadr;
    if n.size.get() == 0
        || !aligned(n)
        || u64::from(n.base.get()) < aperture_size
        || n.end() > ggtt_size
    {
        return Err(PvinfoError::BadNonMappable);
    }
    let fences = p.avail_rs.fence_num.get();
    if fences == 0 || fences > MAX_FENCES {
        return Err(PvinfoError::BadFences(fences));
    }
    Ok(Identity {
        major,
        minor,
        vgt_id: p.vgt_id.get(),
        caps,
        mappable: (m.base.get(), m.size.get()),
        nonmappable: (n.base.get(), n.size.get()),
        fences,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use zerocopy::{FromBytes, IntoBytes};

    const GGTT: u64 = 4 << 30;
    const APERTURE: u64 = 1 << 30;

    fn good() -> VgtIf {
        let rs = AvailRs {
            mappable_gmadr: GmRange::new(128 << 20, 64 << 20),
            nonmappable_gmadr: GmRange::new(1536 << 20, 384 << 20),
            fence_num: U32::new(4),
            rsv2: [U32::ZERO; 3],
        };
        VgtIf::new(3, VGT_CAPS_REQUIRED, rs)
    }

    #[test]
    fn bytes_match_upstream_layout() {
        let p = good();
        let b = p.as_bytes();
        assert_eq!(b.len(), 4096);
        assert_eq!(&b[0..8], &VGT_MAGIC.to_le_bytes());
        assert_eq!(&b[8..12], &[1, 0, 0, 0]);
        assert_eq!(&b[0x0c..0x10], &3u32.to_le_bytes());
        assert_eq!(&b[0x40..0x44], &(128u32 << 20).to_le_bytes());
        assert_eq!(&b[0x50..0x54], &4u32.to_le_bytes());
        let back = VgtIf::read_from_bytes(b).unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn identify_accepts_good_page() {
        let id = identify(&good(), GGTT, APERTURE).unwrap();
        assert_eq!(id.vgt_id, 3);
        assert_eq!(id.mappable, (128 << 20, 64 << 20));
        assert_eq!(id.nonmappable, (1536 << 20, 384 << 20));
        assert_eq!(id.fences, 4);
    }

    #[test]
    fn identify_rejects_each_defect() {
        let mut p = good();
        p.magic = U64::new(0x1234);
        assert_eq!(
            identify(&p, GGTT, APERTURE),
            Err(PvinfoError::BadMagic(0x1234))
        );

        let mut p = good();
        p.version_major = U16::new(2);
        assert_eq!(
            identify(&p, GGTT, APERTURE),
            Err(PvinfoError::BadVersion(2, 0))
        );
        p.version_major = U16::new(0);
        assert_eq!(
            identify(&p, GGTT, APERTURE),
            Err(PvinfoError::BadVersion(0, 0))
        );

        let mut p = good();
        p.vgt_caps = U32::new(VGT_CAPS_FULL_PPGTT);
        assert_eq!(
            identify(&p, GGTT, APERTURE),
            Err(PvinfoError::MissingCaps(VGT_CAPS_HWSP_EMULATION))
        );

        let mut p = good();
        p.avail_rs.mappable_gmadr = GmRange::new((1024 - 32) << 20, 64 << 20);
        assert_eq!(identify(&p, GGTT, APERTURE), Err(PvinfoError::BadMappable));
        p.avail_rs.mappable_gmadr.size = U32::new(0);
        assert_eq!(identify(&p, GGTT, APERTURE), Err(PvinfoError::BadMappable));
        p.avail_rs.mappable_gmadr = GmRange::new(4095, 64 << 20);
        assert_eq!(identify(&p, GGTT, APERTURE), Err(PvinfoError::BadMappable));

        let mut p = good();
        p.avail_rs.nonmappable_gmadr = GmRange::new(150 << 20, 64 << 20);
        assert_eq!(
            identify(&p, GGTT, APERTURE),
            Err(PvinfoError::BadNonMappable)
        );
        p.avail_rs.nonmappable_gmadr = GmRange::new(u32::MAX - 4095, 8192);
        assert_eq!(
            identify(&p, GGTT, APERTURE),
            Err(PvinfoError::BadNonMappable)
        );
        p.avail_rs.nonmappable_gmadr = GmRange::new(1 << 30, 0);
        assert_eq!(
            identify(&p, GGTT, APERTURE),
            Err(PvinfoError::BadNonMappable)
        );

        let mut p = good();
        p.avail_rs.fence_num = U32::new(0);
        assert_eq!(identify(&p, GGTT, APERTURE), Err(PvinfoError::BadFences(0)));
        p.avail_rs.fence_num = U32::new(33);
        assert_eq!(
            identify(&p, GGTT, APERTURE),
            Err(PvinfoError::BadFences(33))
        );
    }

    #[test]
    fn pv_words_and_negotiation() {
        let mut p = good();
        p.pv_caps_offer = U32::new(pv_caps::PPGTT | pv_caps::GGTT);
        p.shared_area_dma_addr = U64::new(0x1234_5000);
        let b = p.as_bytes();
        assert_eq!(&b[0x60..0x64], &3u32.to_le_bytes());
        assert_eq!(&b[0x868..0x870], &0x1234_5000u64.to_le_bytes());
        assert!(!guest_writable(offset::PV_CAPS_OFFER, 4));
        assert!(guest_writable(offset::SHARED_AREA_DMA_ADDR, 8));
        assert_eq!(negotiate_caps(pv_caps::KNOWN, u32::MAX), pv_caps::KNOWN);
        assert_eq!(
            negotiate_caps(pv_caps::PPGTT, pv_caps::PPGTT | pv_caps::SUBMISSION),
            pv_caps::PPGTT
        );
        assert_eq!(negotiate_caps(u32::MAX, 1 << 31), 0);
        assert_eq!(negotiate_caps(0, pv_caps::KNOWN), 0);
        for v in 0..6 {
            assert_eq!(PvStatus::from_u32(v).map(|s| s as u32), Some(v));
        }
        assert_eq!(PvStatus::from_u32(6), None);
    }

    #[test]
    fn guest_half_is_the_only_writable_part() {
        assert!(!guest_writable(0, 4));
        assert!(!guest_writable(0x7fc, 8));
        assert!(guest_writable(offset::G2V_NOTIFY, 4));
        assert!(guest_writable(0xffc, 4));
        assert!(!guest_writable(0xffc, 8));
        assert!(!guest_writable(u32::MAX, 4));
    }

    proptest::proptest! {
        #[test]
        fn identify_is_total(bytes in proptest::collection::vec(proptest::num::u8::ANY, 4096),
                             ggtt in 0u64..(8 << 30), ap in 0u64..(1 << 32)) {
            let p = VgtIf::read_from_bytes(&bytes[..]).unwrap();
            if let Ok(id) = identify(&p, ggtt, ap) {
                proptest::prop_assert!(u64::from(id.mappable.0) + u64::from(id.mappable.1) <= ap);
                proptest::prop_assert!(u64::from(id.nonmappable.0) >= ap);
                proptest::prop_assert!(u64::from(id.nonmappable.0) + u64::from(id.nonmappable.1) <= ggtt);
            }
        }
    }
}
