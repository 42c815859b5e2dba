// SPDX-License-Identifier: GPL-2.0

//! Ring buffer space and placement (`gt/intel_ring.c`), as pure functions.
//!
//! Offsets are bytes; the ring size is a power of two. A request never straddles the end:
//! it is preceded by `MI_NOOP`s up to the end and starts again at 0, as
//! `intel_ring_begin` wraps. Tails are 8-byte aligned (`RING_TAIL` bits 20:3).

/// Bytes kept between tail and head so that a full ring never looks empty (i915 keeps a
/// cache line, `__intel_ring_space`).
pub(crate) const GAP: u32 = 64;

/// Free bytes in a ring of `size` bytes with `head` and `tail`.
pub(crate) const fn space(head: u32, tail: u32, size: u32) -> u32 {
    head.wrapping_sub(tail).wrapping_sub(GAP) & (size - 1)
}

/// Where a request of some bytes goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Placement {
    /// `MI_NOOP` bytes to write at the old tail first (to the end of the ring).
    pub(crate) pad: u32,
    /// Offset of the request.
    pub(crate) at: u32,
    /// The tail after it.
    pub(crate) tail: u32,
}

/// Places `bytes` (a multiple of 8, at most half the ring) after `tail`; `None` if it does
/// not fit before `head` yet, or is malformed.
pub(crate) fn place(head: u32, tail: u32, size: u32, bytes: u32) -> Option<Placement> {
    if !size.is_power_of_two()
        || size < 4096
        || bytes == 0
        || bytes % 8 != 0
        || bytes > size / 2
        || tail >= size
        || tail % 8 != 0
        || head >= size
    {
        return None;
    }
    let (pad, at) = if tail + bytes > size {
        (size - tail, 0)
    } else {
        (0, tail)
    };
    if pad + bytes > space(head, tail, size) {
        return None;
    }
    Some(Placement {
        pad,
        at,
        tail: (at + bytes) & (size - 1),
    })
}

#[kernel::prelude::kunit_tests(gvtpv_guest_ring)]
mod tests {
    use super::*;

    const SZ: u32 = 16384;

    #[test]
    fn empty_ring_has_all_but_the_gap() {
        assert_eq!(space(0, 0, SZ), SZ - GAP);
        assert_eq!(space(100 * 8, 100 * 8, SZ), SZ - GAP);
        assert_eq!(space(0, SZ - 8, SZ), SZ - 56);
        assert_eq!(space(64, 0, SZ), 0);
    }

    #[test]
    fn places_and_wraps() {
        assert_eq!(
            place(0, 0, SZ, 32),
            Some(Placement {
                pad: 0,
                at: 0,
                tail: 32
            })
        );
        // Exactly to the end: the tail wraps to 0.
        assert_eq!(
            place(1024, SZ - 32, SZ, 32),
            Some(Placement {
                pad: 0,
                at: SZ - 32,
                tail: 0
            })
        );
        // Does not fit before the end: pad and start at 0.
        assert_eq!(
            place(1024, SZ - 16, SZ, 32),
            Some(Placement {
                pad: 16,
                at: 0,
                tail: 32
            })
        );
        // Not enough room before head.
        assert_eq!(place(64, 0, SZ, 32), None);
        assert_eq!(
            place(128, 0, SZ, 64),
            Some(Placement {
                pad: 0,
                at: 0,
                tail: 64
            })
        );
    }

    #[test]
    fn refuses_malformed() {
        assert_eq!(place(0, 0, SZ, 12), None);
        assert_eq!(place(0, 0, SZ, 0), None);
        assert_eq!(place(0, 0, SZ, SZ), None);
        assert_eq!(place(0, 4, SZ, 8), None);
        assert_eq!(place(SZ, 0, SZ, 8), None);
        assert_eq!(place(0, 0, 3000, 8), None);
    }
}
