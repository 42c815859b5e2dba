// SPDX-License-Identifier: GPL-2.0

//! Trapped region accesses: decoding a vfio file position, bounds, chunking.
//!
//! QEMU's offsets are untrusted: the region index and offset come from the file position,
//! the length from the syscall. Nothing here indexes with them before checking.

use crate::vfio::{uapi, RegionInfo};
use kernel::prelude::*;

/// A decoded region access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Access {
    /// Region index.
    pub(crate) index: u32,
    /// Offset inside the region.
    pub(crate) off: u64,
}

/// Decodes file position `pos` for a `len`-byte access and checks it against the region.
///
/// # Errors
///
/// `EINVAL` if the region does not exist, is not readable/writable as asked, or the access
/// leaves it.
pub(crate) fn decode(
    pos: u64,
    len: usize,
    write: bool,
    info: impl Fn(u32) -> Result<RegionInfo>,
) -> Result<Access> {
    let index = u32::try_from(pos >> uapi::OFFSET_SHIFT).map_err(|_| EINVAL)?;
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

/// Splits `[off, off + len)` into naturally aligned chunks of 8, 4, 2 or 1 bytes, the way a
/// CPU's register accesses arrive, and calls `f(offset, start_in_buffer, chunk_len)`.
pub(crate) fn for_each_chunk(off: u64, len: usize, mut f: impl FnMut(u64, usize, usize)) {
    let mut done = 0usize;
    while done < len {
        let at = off.wrapping_add(done as u64);
        let left = len - done;
        let n = [8usize, 4, 2, 1]
            .into_iter()
            .find(|&n| at % n as u64 == 0 && left >= n)
            .unwrap_or(1);
        f(at, done, n);
        done += n;
    }
}

#[kunit_tests(gvtpv_host_access)]
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

    #[test]
    fn chunks_are_aligned_and_cover_the_range() {
        let mut seen = KVec::new();
        for_each_chunk(0x3, 14, |at, start, n| {
            assert_eq!(at % n as u64, 0);
            seen.push((at, start, n), GFP_KERNEL).unwrap();
        });
        assert_eq!(&seen[..], &[(3, 0, 1), (4, 1, 4), (8, 5, 8), (16, 13, 1)]);
        let mut total = 0;
        for_each_chunk(0, 4096, |_, _, n| total += n);
        assert_eq!(total, 4096);
    }
}
