// SPDX-License-Identifier: GPL-2.0

//! The shared area: guest memory registered through PVINFO, self-describing and versioned.
//!
//! It starts with a [`SharedHeader`]: magic, ABI version, sizes, feature bits and a layout
//! table that says where each region lives. The guest fills the header, asks for a
//! version and repeats its PV capability request in `features`; the host copies the header
//! once and runs [`negotiate`], the one negotiation path: layout ([`validate`]), features
//! against the capabilities ([`crate::abi::pvinfo::negotiate_caps`]) and version
//! ([`negotiate_version`]). It writes the result back into `major`, `minor` and
//! `features`, and the capabilities into PVINFO.
//!
//! Registration, reset and re-registration: a `g2v_notify` of `PV_REGISTER` while an area
//! is registered first unregisters the old one. `PV_UNREGISTER`, a device reset (FLR or
//! `VFIO_DEVICE_RESET`) and closing the vfio device clear everything: the DMA address, the
//! accepted capabilities, the channels' state. After any of them the host never touches
//! the old DMA address again.

use super::{ctb, events, pvinfo};
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
    /// Per-engine status written by the host: a [`super::StatusArea`]. Required with
    /// the `SUBMISSION` capability.
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
    /// Guest: the PV capabilities it requests, equal to PVINFO `pv_caps_request`. Host:
    /// the capabilities accepted (equal to `pv_caps_accepted`).
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

/// The host's per-engine state in the engine status region.
///
/// Written only by the host, each field with one aligned 4-byte store: first the
/// results of the work, then (release) `completed_seqno`. The guest reads it with
/// acquire loads; it is the authoritative state, events only point at it.
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
pub struct EngineStatus {
    /// The engine, `class | instance << 8`, or [`ENGINE_NONE`] for an unused slot.
    pub engine: U32,
    /// Last completed seqno of the engine (everything up to it completed).
    pub completed_seqno: U32,
    /// Engine resets so far (wrapping).
    pub reset_count: U32,
    /// The error of the last failed batch on the engine (a `WireError` code), 0 if none.
    pub last_error: U32,
    /// Reserved, zero.
    pub rsvd: [U32; 2],
}

/// `EngineStatus::engine` of an unused slot.
pub const ENGINE_NONE: u32 = 0xffff_ffff;

/// Slots in the engine status region (slot `i` is `events::ENGINE_SLOTS[i]`, the rest
/// unused).
pub const STATUS_SLOTS: usize = 8;

/// The engine status region (256 bytes), region kind [`region::ENGINE_STATUS`].
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
pub struct StatusArea {
    /// The first vGPU error (a `WireError` code), 0 if none; sticky until reset.
    pub vgpu_error: U32,
    /// Non-zero: the vGPU will be reset; the guest stops using the shared area.
    pub reset_notice: U32,
    /// Completion events the host merged into later ones (statistics).
    pub coalesced: U32,
    /// Used slots (`events::ENGINE_SLOTS.len()`).
    pub nr_engines: U32,
    /// Reserved, zero.
    pub rsvd: [U32; 12],
    /// Per-engine state.
    pub engines: [EngineStatus; STATUS_SLOTS],
}

/// Byte offsets in the engine status region.
pub mod status_offset {
    /// `vgpu_error`.
    pub const VGPU_ERROR: usize = 0x00;
    /// `reset_notice`.
    pub const RESET_NOTICE: usize = 0x04;
    /// `coalesced`.
    pub const COALESCED: usize = 0x08;
    /// `nr_engines`.
    pub const NR_ENGINES: usize = 0x0c;
    /// `engines[0]`.
    pub const ENGINES: usize = 0x40;
    /// Size of one `engines` entry.
    pub const ENGINE_STRIDE: usize = 0x18;
    /// `completed_seqno` inside an entry.
    pub const COMPLETED_SEQNO: usize = 0x04;
    /// `reset_count` inside an entry.
    pub const RESET_COUNT: usize = 0x08;
    /// `last_error` inside an entry.
    pub const LAST_ERROR: usize = 0x0c;
}

impl StatusArea {
    /// The region as the host initialises it at registration: slots named, rest zero.
    pub fn new() -> Self {
        let mut a = Self::default();
        a.nr_engines.set(events::ENGINE_SLOTS.len() as u32);
        for (i, s) in a.engines.iter_mut().enumerate() {
            let e = events::ENGINE_SLOTS.get(i).map_or(ENGINE_NONE, |e| {
                u32::from(e.class) | (u32::from(e.instance) << 8)
            });
            s.engine.set(e);
        }
        a
    }
}

const _: () = assert!(size_of::<EngineStatus>() == status_offset::ENGINE_STRIDE);
const _: () = assert!(size_of::<StatusArea>() == 256);
const _: () = assert!(core::mem::offset_of!(StatusArea, vgpu_error) == status_offset::VGPU_ERROR);
const _: () =
    assert!(core::mem::offset_of!(StatusArea, reset_notice) == status_offset::RESET_NOTICE);
const _: () = assert!(core::mem::offset_of!(StatusArea, coalesced) == status_offset::COALESCED);
const _: () = assert!(core::mem::offset_of!(StatusArea, nr_engines) == status_offset::NR_ENGINES);
const _: () = assert!(core::mem::offset_of!(StatusArea, engines) == status_offset::ENGINES);
const _: () =
    assert!(core::mem::offset_of!(EngineStatus, completed_seqno) == status_offset::COMPLETED_SEQNO);
const _: () =
    assert!(core::mem::offset_of!(EngineStatus, reset_count) == status_offset::RESET_COUNT);
const _: () = assert!(core::mem::offset_of!(EngineStatus, last_error) == status_offset::LAST_ERROR);
const _: () = assert!(events::ENGINE_SLOTS.len() <= STATUS_SLOTS);
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
    /// A required region (both CTBs; the engine status with `SUBMISSION`) is missing.
    Missing(u32),
    /// No version both sides speak.
    NoCommonVersion,
    /// `features` differs from the capabilities requested in PVINFO.
    Features,
    /// A CTB descriptor is not fresh: `head`, `tail`, `event`, `status` or a reserved
    /// dword is not zero; the value is the region kind.
    BadDesc(u32),
}

impl SharedError {
    /// The PVINFO `pv_status` a registration that failed this way reports.
    pub fn status(self) -> pvinfo::PvStatus {
        match self {
            Self::NoCommonVersion => pvinfo::PvStatus::NoCommonVersion,
            Self::BadTotalSize => pvinfo::PvStatus::BadSize,
            _ => pvinfo::PvStatus::BadHeader,
        }
    }
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

/// The outcome of a registration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Negotiated {
    /// Negotiated major, written back into the header.
    pub major: u16,
    /// Negotiated minor, written back into the header.
    pub minor: u16,
    /// Accepted PV capabilities: written into PVINFO `pv_caps_accepted` and the
    /// header's `features`.
    pub caps: u32,
    /// Where the regions are.
    pub layout: Layout,
}

/// The one negotiation at registration: layout, capabilities and version.
///
/// `h` is the host's copy of the header, `area` the registered size in bytes, `offer`
/// the host's PV capability offer and `request` the guest's PVINFO `pv_caps_request`.
/// The header's `features` must repeat `request` (a guest that says two different things
/// is refused); the accepted capabilities are `offer & request & KNOWN`; a capability
/// that needs a region requires it (`SUBMISSION`: the engine status region).
///
/// # Errors
///
/// The first [`SharedError`] found; [`SharedError::status`] gives the `pv_status`.
pub fn negotiate(
    h: &SharedHeader,
    area: u32,
    offer: u32,
    request: u32,
) -> Result<Negotiated, SharedError> {
    let layout = validate(h, area)?;
    if h.features.get() != request {
        return Err(SharedError::Features);
    }
    let caps = pvinfo::negotiate_caps(offer, request);
    if caps & pvinfo::pv_caps::SUBMISSION != 0 && layout.engine_status.is_none() {
        return Err(SharedError::Missing(region::ENGINE_STATUS));
    }
    let (major, minor) = negotiate_version(h.major.get(), h.minor.get())?;
    Ok(Negotiated {
        major,
        minor,
        caps,
        layout,
    })
}

/// Checks a CTB descriptor as registered (the host's one copy of it): everything zero,
/// so both ends start their private counters at 0 on an empty, healthy channel.
///
/// # Errors
///
/// [`SharedError::BadDesc`] with `kind`.
pub fn check_fresh_desc(d: &CtbDesc, kind: u32) -> Result<(), SharedError> {
    if *d != CtbDesc::default() {
        return Err(SharedError::BadDesc(kind));
    }
    Ok(())
}

/// Validates a copied header against the registered area size (`area` bytes).
///
/// Checks only the area; [`negotiate`] is what a host calls at registration.
///
/// Rules: magic; `header_size` at least this version's header and inside the area;
/// `total_size == area`, within [`MIN_AREA`]..=[`MAX_AREA`]; reserved fields zero; at
/// most [`MAX_REGIONS`] entries, unused entries all zero; every region 64-byte aligned,
/// non-empty, after the header, inside the area and disjoint from the others; known kinds
/// at most once (unknown kinds are skipped, for newer guests); both CTB regions present,
/// each a 64-byte descriptor plus a valid ring (at least two maximal messages); an engine
/// status region at least a [`StatusArea`]; a page-list region whole u64 entries.
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
            region::ENGINE_STATUS => {
                if (size as usize) < size_of::<StatusArea>() {
                    return Err(SharedError::BadKind(i));
                }
                l.engine_status = Some((off, size));
            }
            _ => {
                // Room for at least one u64 page address, whole entries only.
                if size % 8 != 0 {
                    return Err(SharedError::BadKind(i));
                }
                l.page_list = Some((off, size));
            }
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

    extern crate std;

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

    #[test]
    fn ring_regions_must_hold_two_maximal_messages() {
        let mut h = good();
        // 64 + 4 * 254: one dword pair short of the minimum ring.
        h.regions[1] = region(region::RESPONSE_CTB, 1280, 64 + 4 * 254);
        assert_eq!(validate(&h, 4096), Err(SharedError::BadKind(1)));
        h.regions[1] = region(region::RESPONSE_CTB, 1280, 64 + 4 * 256);
        assert!(validate(&h, 4096).is_ok());
        let mut h = good();
        h.regions[2] = region(region::ENGINE_STATUS, 2368, 192);
        assert_eq!(validate(&h, 4096), Err(SharedError::BadKind(2)));
        let mut h = good();
        h.nr_regions.set(4);
        h.regions[3] = region(region::PAGE_LIST, 2624, 68);
        assert_eq!(validate(&h, 4096), Err(SharedError::BadKind(3)));
    }

    #[test]
    fn one_negotiation_path() {
        use pvinfo::{pv_caps, PvStatus};
        let all = pv_caps::KNOWN;
        let mut h = good();
        h.features.set(all);
        let n = negotiate(&h, 4096, pv_caps::PPGTT | pv_caps::SUBMISSION, all).unwrap();
        assert_eq!((n.major, n.minor), (ABI_MAJOR, ABI_MINOR));
        assert_eq!(n.caps, pv_caps::PPGTT | pv_caps::SUBMISSION);
        assert_eq!(n.layout.engine_status, Some((2368, 256)));
        // `features` must repeat the PVINFO request.
        assert_eq!(
            negotiate(&h, 4096, all, pv_caps::PPGTT),
            Err(SharedError::Features)
        );
        // SUBMISSION accepted needs the engine status region; not accepted, it does not.
        h.nr_regions.set(2);
        h.regions[2] = Region::default();
        assert_eq!(
            negotiate(&h, 4096, all, all),
            Err(SharedError::Missing(region::ENGINE_STATUS))
        );
        let n = negotiate(&h, 4096, pv_caps::GGTT, all).unwrap();
        assert_eq!(n.caps, pv_caps::GGTT);
        // The version comes from the same call.
        h.major.set(0);
        h.minor.set(3);
        assert_eq!(
            negotiate(&h, 4096, pv_caps::GGTT, all),
            Err(SharedError::NoCommonVersion)
        );
        assert_eq!(
            SharedError::NoCommonVersion.status(),
            PvStatus::NoCommonVersion
        );
        assert_eq!(SharedError::BadTotalSize.status(), PvStatus::BadSize);
        assert_eq!(SharedError::Features.status(), PvStatus::BadHeader);
    }

    #[test]
    fn fresh_descriptors_only() {
        let mut d = CtbDesc::default();
        assert_eq!(check_fresh_desc(&d, region::REQUEST_CTB), Ok(()));
        for i in 0..16 {
            let mut b = [0u8; 64];
            b[i * 4] = 1;
            d = CtbDesc::read_from_bytes(&b[..]).unwrap();
            assert_eq!(
                check_fresh_desc(&d, region::RESPONSE_CTB),
                Err(SharedError::BadDesc(region::RESPONSE_CTB))
            );
        }
    }

    #[test]
    fn status_area_layout() {
        let a = StatusArea::new();
        let b = a.as_bytes();
        assert_eq!(b.len(), 256);
        assert_eq!(&b[status_offset::NR_ENGINES..][..4], &5u32.to_le_bytes());
        // Slot 1 is BCS0 (class 1), slot 4 VECS0 (class 3), slots 5..8 unused.
        let at = |i: usize| status_offset::ENGINES + i * status_offset::ENGINE_STRIDE;
        assert_eq!(&b[at(0)..][..4], &0u32.to_le_bytes());
        assert_eq!(&b[at(1)..][..4], &1u32.to_le_bytes());
        assert_eq!(&b[at(3)..][..4], &0x102u32.to_le_bytes());
        assert_eq!(&b[at(4)..][..4], &3u32.to_le_bytes());
        assert_eq!(&b[at(7)..][..4], &ENGINE_NONE.to_le_bytes());
        assert_eq!(at(STATUS_SLOTS), 256);
    }

    /// Layouts built from random but plausible regions: most validate, and whatever
    /// validates is inside the area, disjoint and of usable sizes.
    #[test]
    fn mostly_valid_layouts() {
        use proptest::prelude::*;
        let strat = (
            1u32..=16,
            proptest::collection::vec((1u32..10, 0u32..4), 2..6),
            0u32..20,
        );
        crate::abi::testutil::counted("layouts", 1000, strat, 50, |(pages, regions, roll)| {
            let mut h = SharedHeader::new_zeroed();
            h.magic.set(SHARED_MAGIC);
            h.header_size.set(160);
            // Lay the regions out one after the other from 192, the two CTBs first.
            let mut at = 192u32;
            let mut n = 0;
            for (k, (ring_k, gap)) in regions.iter().enumerate() {
                // Both CTBs, then the engine status, the page list, an unknown kind.
                let kind = [1, 2, 3, 4, 17][k];
                let size = match kind {
                    region::REQUEST_CTB | region::RESPONSE_CTB => 64 + 4 * 256 * ring_k.min(&4),
                    region::ENGINE_STATUS => 256,
                    _ => 512,
                };
                h.regions[n] = region(kind, at, size);
                n += 1;
                at += size + 64 * gap;
            }
            h.nr_regions.set(n as u32);
            // The area: the pages asked for, or enough for the regions.
            let area = (pages * 4096).max(at.next_multiple_of(4096)).min(MAX_AREA);
            h.total_size.set(area);
            // One case in twenty: break a random field.
            if roll == 0 {
                h.regions[0].offset.set(100);
            }
            match validate(&h, area) {
                Ok(l) => {
                    for (off, dw) in [l.request, l.response] {
                        prop_assert!(off >= 160 && off % 64 == 0);
                        prop_assert!(u64::from(off) + 64 + 4 * u64::from(dw) <= u64::from(area));
                        prop_assert!(ctb::check_ring(dw).is_ok());
                    }
                    Ok(true)
                }
                Err(_) => Ok(false),
            }
        });
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
