// SPDX-License-Identifier: GPL-2.0

//! The shared area: guest memory registered through PVINFO, self-describing and versioned.
//!
//! It starts with a [`SharedHeader`]: magic, ABI version, sizes, feature bits and a layout
//! table that says where each region lives. The guest fills the header and asks for a
//! version; the host copies the header once, validates it with [`validate`], negotiates
//! the version with [`negotiate_version`] and writes the result back into `major` and
//! `minor`.
//!
//! Registration, reset and re-registration: a `g2v_notify` of `PV_REGISTER` while an area
//! is registered first unregisters the old one. `PV_UNREGISTER`, a device reset (FLR or
//! `VFIO_DEVICE_RESET`) and closing the vfio device clear everything: the GPA, the
//! accepted capabilities, the channels' state. After any of them the host never touches
//! the old GPA again.

use super::ctb;
use zerocopy::byteorder::little_endian::{U16, U32};

/// `magic`: "GVPA" (gvtpv area), little-endian.
pub const SHARED_MAGIC: u32 = 0x4150_5647;
/// The newest ABI version this code speaks.
pub const ABI_MAJOR: u16 = 1;
/// Minor of [`ABI_MAJOR`].
pub const ABI_MINOR: u16 = 0;
/// The oldest major version this code still speaks.
pub const ABI_BASE_MAJOR: u16 = 1;
/// Entries in the layout table.
pub const MAX_REGIONS: usize = 8;
/// Alignment of every region, in bytes.
pub const REGION_ALIGN: u32 = 64;
/// Smallest shared area (one page), in bytes.
pub const MIN_AREA: u32 = 4096;
/// Largest shared area (64 pages), in bytes.
pub const MAX_AREA: u32 = 64 * 4096;

/// Region kinds in the layout table.
pub mod region {
    /// Unused table entry; its offset and size must be zero.
    pub const NONE: u32 = 0;
    /// Guest→host request channel: a [`super::CtbDesc`] then the ring.
    pub const REQUEST_CTB: u32 = 1;
    /// Host→guest response and event channel: a [`super::CtbDesc`] then the ring.
    pub const RESPONSE_CTB: u32 = 2;
    /// Per-engine status written by the host (completed seqnos).
    pub const ENGINE_STATUS: u32 = 3;
    /// Scratch for page lists passed by reference.
    pub const PAGE_LIST: u32 = 4;
    /// One past the last kind this version defines; larger kinds are skipped.
    pub const KNOWN_END: u32 = 5;
}

/// One entry of the layout table.
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
pub struct Region {
    /// A [`region`] kind.
    pub kind: U32,
    /// Reserved, zero.
    pub rsvd: U32,
    /// Byte offset from the start of the area.
    pub offset: U32,
    /// Size in bytes.
    pub size: U32,
}

/// The header at offset 0 of the shared area (160 bytes).
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
pub struct SharedHeader {
    /// [`SHARED_MAGIC`].
    pub magic: U32,
    /// Guest: the major version asked for (0 with minor 0: the newest). Host: the
    /// negotiated major.
    pub major: U16,
    /// Guest: the minor asked for. Host: the negotiated minor.
    pub minor: U16,
    /// `size_of::<SharedHeader>()`, so a later version can grow it.
    pub header_size: U32,
    /// Size of the whole area in bytes (the registered page count times 4096).
    pub total_size: U32,
    /// Feature bits, the same as the PV capabilities requested.
    pub features: U32,
    /// Used entries at the start of `regions`.
    pub nr_regions: U32,
    /// Reserved, zero.
    pub rsvd: [U32; 2],
    /// The layout table.
    pub regions: [Region; MAX_REGIONS],
}

/// The descriptor at the start of a CTB region (64 bytes); the ring follows it.
#[derive(
    Clone,
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
pub struct CtbDesc {
    /// Consumer's free-running dword count.
    pub head: U32,
    /// Producer's free-running dword count.
    pub tail: U32,
    /// Consumer's wake-up count (notification suppression).
    pub event: U32,
    /// `ctb::STATUS_*` bits.
    pub status: U32,
    /// Reserved, zero.
    pub rsvd: [U32; 12],
}

const _: () = assert!(size_of::<Region>() == 16);
const _: () = assert!(size_of::<SharedHeader>() == 160);
const _: () = assert!(core::mem::offset_of!(SharedHeader, regions) == 32);
const _: () = assert!(size_of::<CtbDesc>() == 64);
const _: () = assert!(core::mem::offset_of!(CtbDesc, status) == 12);

/// Why a header is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SharedError {
    /// Wrong magic.
    BadMagic,
    /// `header_size` is smaller than this version's header or leaves the area.
    BadHeaderSize,
    /// `total_size` differs from the registered size, or is out of bounds.
    BadTotalSize,
    /// A reserved field is not zero.
    Reserved,
    /// `nr_regions` is larger than the table.
    TooManyRegions,
    /// A region is unaligned, empty, overlaps the header or another region, or leaves
    /// the area; the value is its table index.
    BadRegion(usize),
    /// A known region kind appears twice, or a CTB region's size does not match a valid
    /// ring; the value is its table index.
    BadKind(usize),
    /// A required region (both CTBs) is missing.
    Missing(u32),
    /// No version both sides speak.
    NoCommonVersion,
}

/// Where the known regions are, after validation (byte offset and size).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Layout {
    /// Request channel: descriptor offset and ring size in dwords.
    pub request: (u32, u32),
    /// Response channel: descriptor offset and ring size in dwords.
    pub response: (u32, u32),
    /// Engine status region, if present.
    pub engine_status: Option<(u32, u32)>,
    /// Page-list scratch, if present.
    pub page_list: Option<(u32, u32)>,
}

/// Negotiates the ABI version the way the Xe VF/PF relay does.
///
/// 0.0 asks for the newest; a major above ours gets our newest (the guest must check
/// it can speak it); a major below [`ABI_BASE_MAJOR`] is refused; our major gets the
/// lower of the two minors.
///
/// # Errors
///
/// [`SharedError::NoCommonVersion`].
pub fn negotiate_version(major: u16, minor: u16) -> Result<(u16, u16), SharedError> {
    if (major, minor) == (0, 0) || major > ABI_MAJOR {
        return Ok((ABI_MAJOR, ABI_MINOR));
    }
    if major < ABI_BASE_MAJOR {
        return Err(SharedError::NoCommonVersion);
    }
    // Only one major exists so far: `major == ABI_MAJOR` here. The lower minor wins
    // (written out: with ABI_MINOR at 0 a `min` is constant and clippy says so).
    let newest = ABI_MINOR;
    Ok((major, if minor < newest { minor } else { newest }))
}

/// Validates a copied header against the registered area size (`area` bytes).
///
/// Rules: magic; `header_size` at least this version's header and inside the area;
/// `total_size == area`, within [`MIN_AREA`]..=[`MAX_AREA`]; reserved fields zero; at
/// most [`MAX_REGIONS`] entries, unused entries all zero; every region 64-byte aligned,
/// non-empty, after the header, inside the area and disjoint from the others; known kinds
/// at most once (unknown kinds are skipped, for newer guests); both CTB regions present,
/// each a 64-byte descriptor plus a valid ring.
///
/// # Errors
///
/// The first [`SharedError`] found.
pub fn validate(h: &SharedHeader, area: u32) -> Result<Layout, SharedError> {
    if h.magic.get() != SHARED_MAGIC {
        return Err(SharedError::BadMagic);
    }
    let total = h.total_size.get();
    if total != area || !(MIN_AREA..=MAX_AREA).contains(&total) {
        return Err(SharedError::BadTotalSize);
    }
    let hsize = h.header_size.get();
    if (hsize as usize) < size_of::<SharedHeader>() || hsize > total {
        return Err(SharedError::BadHeaderSize);
    }
    if h.rsvd.iter().any(|r| r.get() != 0) {
        return Err(SharedError::Reserved);
    }
    let n = h.nr_regions.get() as usize;
    if n > MAX_REGIONS {
        return Err(SharedError::TooManyRegions);
    }
    let (used, unused) = h.regions.split_at(n);
    if unused.iter().any(|r| *r != Region::default()) {
        return Err(SharedError::Reserved);
    }
    let mut l = Layout::default();
    let mut seen = 0u32;
    for (i, r) in used.iter().enumerate() {
        let (kind, off, size) = (r.kind.get(), r.offset.get(), r.size.get());
        if r.rsvd.get() != 0 {
            return Err(SharedError::Reserved);
        }
        let end = u64::from(off) + u64::from(size);
        if size == 0 || off % REGION_ALIGN != 0 || off < hsize || end > u64::from(total) {
            return Err(SharedError::BadRegion(i));
        }
        for o in used.iter().take(i) {
            let (oo, os) = (u64::from(o.offset.get()), u64::from(o.size.get()));
            if u64::from(off) < oo + os && oo < end {
                return Err(SharedError::BadRegion(i));
            }
        }
        if kind >= region::KNOWN_END || kind == region::NONE {
            continue;
        }
        if seen & (1 << kind) != 0 {
            return Err(SharedError::BadKind(i));
        }
        seen |= 1 << kind;
        let ring = || {
            let bytes = size
                .checked_sub(size_of::<CtbDesc>() as u32)
                .ok_or(SharedError::BadKind(i))?;
            let dwords = bytes / 4;
            if bytes % 4 != 0 || ctb::check_ring(dwords).is_err() {
                return Err(SharedError::BadKind(i));
            }
            Ok((off, dwords))
        };
        match kind {
            region::REQUEST_CTB => l.request = ring()?,
            region::RESPONSE_CTB => l.response = ring()?,
            region::ENGINE_STATUS => l.engine_status = Some((off, size)),
            _ => l.page_list = Some((off, size)),
        }
    }
    for required in [region::REQUEST_CTB, region::RESPONSE_CTB] {
        if seen & (1 << required) == 0 {
            return Err(SharedError::Missing(required));
        }
    }
    Ok(l)
}

#[cfg(test)]
mod tests {
    use super::*;
    use zerocopy::{FromBytes, FromZeros, IntoBytes};

    fn region(kind: u32, offset: u32, size: u32) -> Region {
        Region {
            kind: U32::new(kind),
            rsvd: U32::ZERO,
            offset: U32::new(offset),
            size: U32::new(size),
        }
    }

    /// One page: header, request CTB (64 + 1024 bytes), response CTB (64 + 1024 bytes),
    /// engine status (256 bytes).
    fn good() -> SharedHeader {
        let mut h = SharedHeader::new_zeroed();
        h.magic.set(SHARED_MAGIC);
        h.header_size.set(160);
        h.total_size.set(4096);
        h.nr_regions.set(3);
        h.regions[0] = region(region::REQUEST_CTB, 192, 64 + 1024);
        h.regions[1] = region(region::RESPONSE_CTB, 192 + 1088, 64 + 1024);
        h.regions[2] = region(region::ENGINE_STATUS, 192 + 2176, 256);
        h
    }

    #[test]
    fn accepts_a_good_layout() {
        let l = validate(&good(), 4096).unwrap();
        assert_eq!(l.request, (192, 256));
        assert_eq!(l.response, (1280, 256));
        assert_eq!(l.engine_status, Some((2368, 256)));
        assert_eq!(l.page_list, None);
        let b = good();
        let bytes = b.as_bytes();
        assert_eq!(&bytes[0..4], b"GVPA");
        assert_eq!(SharedHeader::read_from_bytes(bytes).unwrap(), b);
    }

    #[test]
    fn refuses_each_defect() {
        let mut h = good();
        h.magic.set(0);
        assert_eq!(validate(&h, 4096), Err(SharedError::BadMagic));
        assert_eq!(validate(&good(), 8192), Err(SharedError::BadTotalSize));
        let mut h = good();
        h.header_size.set(100);
        assert_eq!(validate(&h, 4096), Err(SharedError::BadHeaderSize));
        let mut h = good();
        h.rsvd[1].set(1);
        assert_eq!(validate(&h, 4096), Err(SharedError::Reserved));
        let mut h = good();
        h.regions[5] = region(9, 4000, 64);
        assert_eq!(validate(&h, 4096), Err(SharedError::Reserved));
        let mut h = good();
        h.nr_regions.set(9);
        assert_eq!(validate(&h, 4096), Err(SharedError::TooManyRegions));
        let mut h = good();
        h.regions[2] = region(region::ENGINE_STATUS, 200, 64);
        assert_eq!(validate(&h, 4096), Err(SharedError::BadRegion(2)));
        let mut h = good();
        h.regions[2] = region(region::ENGINE_STATUS, 4032, 128);
        assert_eq!(validate(&h, 4096), Err(SharedError::BadRegion(2)));
        let mut h = good();
        h.regions[0] = region(region::REQUEST_CTB, 128, 64 + 1024);
        assert_eq!(validate(&h, 4096), Err(SharedError::BadRegion(0)));
        let mut h = good();
        h.regions[2] = region(region::REQUEST_CTB, 3072, 64 + 256);
        assert_eq!(validate(&h, 4096), Err(SharedError::BadKind(2)));
        let mut h = good();
        h.regions[1] = region(region::RESPONSE_CTB, 1280, 64 + 100);
        assert_eq!(validate(&h, 4096), Err(SharedError::BadKind(1)));
        let mut h = good();
        h.regions[1] = region(region::PAGE_LIST, 1280, 64);
        assert_eq!(
            validate(&h, 4096),
            Err(SharedError::Missing(region::RESPONSE_CTB))
        );
    }

    #[test]
    fn unknown_kinds_are_skipped_but_bounded() {
        let mut h = good();
        h.nr_regions.set(4);
        h.regions[3] = region(17, 3072, 64);
        assert!(validate(&h, 4096).is_ok());
        h.regions[3] = region(17, 3072, 4096);
        assert_eq!(validate(&h, 4096), Err(SharedError::BadRegion(3)));
    }

    #[test]
    fn version_negotiation() {
        assert_eq!(negotiate_version(0, 0), Ok((ABI_MAJOR, ABI_MINOR)));
        assert_eq!(negotiate_version(1, 0), Ok((1, 0)));
        assert_eq!(negotiate_version(1, 7), Ok((1, ABI_MINOR)));
        assert_eq!(negotiate_version(9, 3), Ok((ABI_MAJOR, ABI_MINOR)));
        assert_eq!(negotiate_version(0, 5), Err(SharedError::NoCommonVersion));
    }

    proptest::proptest! {
        #[test]
        fn validate_is_total(bytes in proptest::collection::vec(proptest::num::u8::ANY, 160),
                             area in 0u32..(1 << 20), plausible in proptest::bool::ANY,
                             n in 0u32..9) {
            let mut h = SharedHeader::read_from_bytes(&bytes[..]).unwrap();
            if plausible {
                // Get past the first checks so the layout rules are exercised.
                h.magic.set(SHARED_MAGIC);
                h.total_size.set(area);
                h.header_size.set(160);
                h.rsvd = [U32::ZERO; 2];
                h.nr_regions.set(n);
                for r in h.regions.iter_mut().skip(n as usize) {
                    *r = Region::default();
                }
                for r in h.regions.iter_mut() {
                    r.rsvd = U32::ZERO;
                    r.kind.set(r.kind.get() % 6);
                    r.offset.set((r.offset.get() % area.max(1)) & !63);
                    r.size.set(r.size.get() % 4096);
                }
            }
            if let Ok(l) = validate(&h, area) {
                for (off, dw) in [l.request, l.response] {
                    proptest::prop_assert!(u64::from(off) + 64 + 4 * u64::from(dw) <= u64::from(area));
                    proptest::prop_assert!(off >= 160);
                }
            }
        }
    }
}
