// SPDX-License-Identifier: GPL-2.0

//! vfio-pci region offsets: a file position encodes the region index in its top bits
//! (`VFIO_PCI_OFFSET_SHIFT`) and the offset inside the region below them.
//!
//! The position comes from the user and is untrusted; nothing indexes with it before
//! [`decode`] has checked it against the region.

use super::{uapi, RegionInfo};
use kernel::prelude::*;

/// A decoded region access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Access {
    /// Region index.
    pub(crate) index: u32,
    /// Offset inside the region.
    pub(crate) off: u64,
}

/// The file position at which region `index` starts.
pub(crate) fn offset(index: u32) -> u64 {
    u64::from(index) << uapi::OFFSET_SHIFT
}

/// Decodes file position `pos` for a `len`-byte access and checks it against the region.
///
/// # Errors
///
/// `EINVAL` if the region does not exist, is not readable/writable as asked, the access
/// is empty, or it leaves the region.
pub(crate) fn decode(
    pos: u64,
    len: usize,
    write: bool,
    info: impl Fn(u32) -> Result<RegionInfo>,
) -> Result<Access> {
    let index = u32::try_from(pos >> uapi::OFFSET_SHIFT).map_err(|_| EINVAL)?;
    if index >= uapi::region::NUM {
        return Err(EINVAL);
    }
    let off = pos & ((1u64 << uapi::OFFSET_SHIFT) - 1);
    let r = info(index)?;
    let need = if write {
        uapi::REGION_WRITE
    } else {
        uapi::REGION_READ
    };
    if r.flags & need == 0 || len == 0 {
        return Err(EINVAL);
    }
    let end = off.checked_add(len as u64).ok_or(EINVAL)?;
    if end > r.size {
        return Err(EINVAL);
    }
    Ok(Access { index, off })
}

#[kunit_tests(gvtpv_host_region)]
mod tests {
    use super::*;

    fn info(index: u32) -> Result<RegionInfo> {
        let rw = uapi::REGION_READ | uapi::REGION_WRITE;
        match index {
            uapi::region::CONFIG => Ok(RegionInfo {
                size: 256,
                flags: rw,
            }),
            uapi::region::BAR0 => Ok(RegionInfo {
                size: 16 << 20,
                flags: rw,
            }),
            uapi::region::BAR2 => Ok(RegionInfo {
                size: 64 << 20,
                flags: uapi::REGION_READ,
            }),
            i if i < uapi::region::NUM => Ok(RegionInfo::default()),
            _ => Err(EINVAL),
        }
    }

    const fn pos(index: u32, off: u64) -> u64 {
        ((index as u64) << 40) | off
    }

    #[test]
    fn decodes_inside_regions() {
        let a = decode(pos(7, 0x10), 4, false, info).unwrap();
        assert_eq!(
            a,
            Access {
                index: 7,
                off: 0x10
            }
        );
        assert!(decode(pos(7, 252), 4, true, info).is_ok());
        assert!(decode(pos(0, (16 << 20) - 8), 8, true, info).is_ok());
        assert_eq!(offset(7), pos(7, 0));
    }

    #[test]
    fn refuses_everything_out_of_bounds() {
        assert_eq!(decode(pos(7, 253), 4, false, info), Err(EINVAL));
        assert_eq!(decode(pos(7, 256), 1, false, info), Err(EINVAL));
        assert_eq!(decode(pos(0, 16 << 20), 1, false, info), Err(EINVAL));
        // A region the device does not have (size 0), and indices past the last one.
        assert_eq!(decode(pos(1, 0), 4, false, info), Err(EINVAL));
        assert_eq!(decode(pos(9, 0), 4, false, info), Err(EINVAL));
        assert_eq!(decode(u64::MAX, 4, false, info), Err(EINVAL));
        // Read-only region written, empty access.
        assert_eq!(decode(pos(2, 0), 4, true, info), Err(EINVAL));
        assert_eq!(decode(pos(7, 0), 0, false, info), Err(EINVAL));
        // Offset plus length wrapping around.
        assert_eq!(
            decode(pos(0, (1 << 40) - 1), usize::MAX, false, info),
            Err(EINVAL)
        );
    }
}
