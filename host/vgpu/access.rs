// SPDX-License-Identifier: GPL-2.0

//! Trapped register accesses: splitting a range into the aligned chunks a CPU issues.

use kernel::prelude::*;

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
