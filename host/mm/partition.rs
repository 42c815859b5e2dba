// SPDX-License-Identifier: GPL-2.0

//! GGTT partitioning (ballooning): each vGPU owns one contiguous slice of the aperture,
//! one of the hidden graphics memory and a run of fence registers, as in GVT-g.
//!
//! The simulated GEN9 has a 4 GiB GGTT whose first 1 GiB is the CPU-mappable aperture.
//! The host keeps the bottom of both for itself. Slices are handed out first-fit in
//! granules, so a freed slice is reusable exactly.

use crate::abi::gen::MAX_FENCES;
use kernel::{
    new_mutex,
    prelude::*,
    sync::{Arc, Mutex},
};

/// Size of the simulated GGTT (graphics memory address space).
pub(crate) const GGTT_SIZE: u64 = 4 << 30;
/// Size of the CPU-mappable aperture at the bottom of the GGTT.
pub(crate) const APERTURE_SIZE: u64 = 1 << 30;
/// Allocation granule of the aperture.
const APERTURE_GRANULE: u64 = 64 << 20;
/// Allocation granule of the hidden graphics memory.
const HIDDEN_GRANULE: u64 = 128 << 20;
/// Aperture kept by the host (granule multiple).
pub(crate) const HOST_APERTURE: u64 = 128 << 20;
/// Hidden graphics memory kept by the host (granule multiple).
pub(crate) const HOST_HIDDEN: u64 = 384 << 20;
/// Fences kept by the host.
pub(crate) const HOST_FENCES: u32 = 4;
/// Most vGPUs at once (ids 1..=MAX_VGPUS).
pub(crate) const MAX_VGPUS: u32 = 31;

const APERTURE_UNITS: u32 = (APERTURE_SIZE / APERTURE_GRANULE) as u32;
const HIDDEN_UNITS: u32 = ((GGTT_SIZE - APERTURE_SIZE) / HIDDEN_GRANULE) as u32;
const _: () = assert!(APERTURE_UNITS <= 64 && HIDDEN_UNITS <= 64 && MAX_FENCES <= 64);
const _: () = assert!(HOST_APERTURE % APERTURE_GRANULE == 0 && HOST_HIDDEN % HIDDEN_GRANULE == 0);

/// What a vGPU type asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Request {
    /// Aperture bytes (multiple of 64 MiB).
    pub(crate) aperture: u64,
    /// Hidden bytes (multiple of 128 MiB).
    pub(crate) hidden: u64,
    /// Fence registers.
    pub(crate) fences: u32,
}

/// What one vGPU got: graphics memory addresses and a fence range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Slice {
    /// vGPU id (`vgt_id`), 1-based.
    pub(crate) id: u32,
    /// Aperture base address.
    pub(crate) aperture_base: u64,
    /// Aperture size.
    pub(crate) aperture_size: u64,
    /// Hidden base address.
    pub(crate) hidden_base: u64,
    /// Hidden size.
    pub(crate) hidden_size: u64,
    /// First fence register.
    pub(crate) fence_base: u32,
    /// Number of fence registers.
    pub(crate) fences: u32,
}

/// Why a slice cannot be had.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PartitionError {
    /// The request is not a multiple of the granules, or empty.
    BadRequest,
    /// Not enough contiguous free space (or ids) left.
    NoSpace,
}

/// The free maps: one bit per granule (aperture, hidden), fence, and vGPU id.
#[derive(Clone, Debug)]
pub(crate) struct Partition {
    aperture: u64,
    hidden: u64,
    fences: u64,
    ids: u64,
}

/// Finds the lowest run of `len` clear bits in the low `total` bits of `map`.
fn find_run(map: u64, total: u32, len: u32) -> Option<u32> {
    if len == 0 || len > total {
        return None;
    }
    let want = if len == 64 {
        u64::MAX
    } else {
        (1u64 << len) - 1
    };
    (0..=total - len).find(|&start| (map >> start) & want == 0)
}

fn run_mask(start: u32, len: u32) -> u64 {
    let m = if len >= 64 {
        u64::MAX
    } else {
        (1u64 << len) - 1
    };
    m << start
}

impl Partition {
    /// A partition with only the host's share taken.
    pub(crate) fn new() -> Self {
        Self {
            aperture: run_mask(0, (HOST_APERTURE / APERTURE_GRANULE) as u32),
            hidden: run_mask(0, (HOST_HIDDEN / HIDDEN_GRANULE) as u32),
            fences: run_mask(0, HOST_FENCES),
            // Id 0 is never used: GVT-g reserves it for the host.
            ids: 1,
        }
    }

    fn units(r: &Request) -> Result<(u32, u32), PartitionError> {
        if r.aperture == 0
            || r.hidden == 0
            || r.fences == 0
            || r.aperture % APERTURE_GRANULE != 0
            || r.hidden % HIDDEN_GRANULE != 0
        {
            return Err(PartitionError::BadRequest);
        }
        let a =
            u32::try_from(r.aperture / APERTURE_GRANULE).map_err(|_| PartitionError::BadRequest)?;
        let h = u32::try_from(r.hidden / HIDDEN_GRANULE).map_err(|_| PartitionError::BadRequest)?;
        Ok((a, h))
    }

    /// Takes the lowest free slice that fits `r`.
    pub(crate) fn alloc(&mut self, r: &Request) -> Result<Slice, PartitionError> {
        let (a, h) = Self::units(r)?;
        let ai = find_run(self.aperture, APERTURE_UNITS, a).ok_or(PartitionError::NoSpace)?;
        let hi = find_run(self.hidden, HIDDEN_UNITS, h).ok_or(PartitionError::NoSpace)?;
        let fi = find_run(self.fences, MAX_FENCES, r.fences).ok_or(PartitionError::NoSpace)?;
        let id = find_run(self.ids, MAX_VGPUS + 1, 1).ok_or(PartitionError::NoSpace)?;
        self.aperture |= run_mask(ai, a);
        self.hidden |= run_mask(hi, h);
        self.fences |= run_mask(fi, r.fences);
        self.ids |= run_mask(id, 1);
        Ok(Slice {
            id,
            aperture_base: u64::from(ai) * APERTURE_GRANULE,
            aperture_size: r.aperture,
            hidden_base: APERTURE_SIZE + u64::from(hi) * HIDDEN_GRANULE,
            hidden_size: r.hidden,
            fence_base: fi,
            fences: r.fences,
        })
    }

    /// Returns a slice taken by [`Partition::alloc`].
    pub(crate) fn free(&mut self, s: &Slice) {
        let a = (s.aperture_size / APERTURE_GRANULE) as u32;
        let h = (s.hidden_size / HIDDEN_GRANULE) as u32;
        self.aperture &= !run_mask((s.aperture_base / APERTURE_GRANULE) as u32, a);
        self.hidden &= !run_mask(((s.hidden_base - APERTURE_SIZE) / HIDDEN_GRANULE) as u32, h);
        self.fences &= !run_mask(s.fence_base, s.fences);
        self.ids &= !run_mask(s.id, 1);
    }

    /// How many more slices of `r` fit now (the mdev `available_instances`).
    pub(crate) fn available(&self, r: &Request) -> u32 {
        let mut p = self.clone();
        let mut n = 0;
        while p.alloc(r).is_ok() {
            n += 1;
        }
        n
    }
}

/// The partition shared by the mediator and the leases it handed out.
pub(crate) type Shared = Arc<Mutex<Partition>>;

/// A new, shared partition with only the host's share taken.
///
/// # Errors
///
/// `ENOMEM`.
pub(crate) fn shared() -> Result<Shared> {
    Arc::pin_init(new_mutex!(Partition::new()), GFP_KERNEL)
}

/// A slice held by one vGPU; it goes back to the partition when the lease is dropped, on
/// every path (vGPU removal, or a failure half way through creating it).
pub(crate) struct Lease {
    slice: Slice,
    partition: Shared,
}

impl Lease {
    /// Takes the lowest free slice of `partition` that fits `r`.
    pub(crate) fn take(partition: &Shared, r: &Request) -> Result<Self, PartitionError> {
        let slice = partition.lock().alloc(r)?;
        Ok(Self {
            slice,
            partition: partition.clone(),
        })
    }

    /// The slice.
    pub(crate) fn slice(&self) -> &Slice {
        &self.slice
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.partition.lock().free(&self.slice);
    }
}

#[kunit_tests(gvtpv_host_partition)]
mod tests {
    use super::*;

    const T1: Request = Request {
        aperture: 64 << 20,
        hidden: 384 << 20,
        fences: 4,
    };
    const T8: Request = Request {
        aperture: 512 << 20,
        hidden: 2048 << 20,
        fences: 4,
    };

    #[test]
    fn host_share_is_reserved() {
        let mut p = Partition::new();
        let s = p.alloc(&T1).unwrap();
        assert_eq!(s.id, 1);
        assert_eq!(s.aperture_base, HOST_APERTURE);
        assert_eq!(s.hidden_base, APERTURE_SIZE + HOST_HIDDEN);
        assert_eq!(s.fence_base, HOST_FENCES);
    }

    #[test]
    fn available_counts_and_alloc_agree() {
        let mut p = Partition::new();
        // Hidden: (3 GiB - 384 MiB) / 384 MiB = 7; aperture 896/64 = 14; fences 28/4 = 7.
        assert_eq!(p.available(&T1), 7);
        assert_eq!(p.available(&T8), 1);
        let mut got = KVec::new();
        for _ in 0..7 {
            got.push(p.alloc(&T1).unwrap(), GFP_KERNEL).unwrap();
        }
        assert_eq!(p.available(&T1), 0);
        assert_eq!(p.alloc(&T1), Err(PartitionError::NoSpace));
        // Slices never overlap.
        for (i, a) in got.iter().enumerate() {
            for b in got.iter().skip(i + 1) {
                assert!(a.aperture_base + a.aperture_size <= b.aperture_base);
                assert!(a.hidden_base + a.hidden_size <= b.hidden_base);
                assert!(a.fence_base + a.fences <= b.fence_base);
                assert!(a.id != b.id);
            }
        }
        p.free(&got[3]);
        assert_eq!(p.available(&T1), 1);
        let again = p.alloc(&T1).unwrap();
        assert_eq!(again, got[3]);
    }

    #[test]
    fn a_lease_gives_its_slice_back() {
        let p = shared().unwrap();
        let r = Request {
            aperture: 512 << 20,
            hidden: 2048 << 20,
            fences: 4,
        };
        let before = p.lock().available(&r);
        assert!(before >= 1);
        let l = Lease::take(&p, &r).unwrap();
        assert_eq!(l.slice().aperture_size, 512 << 20);
        assert_eq!(p.lock().available(&r), before - 1);
        drop(l);
        assert_eq!(p.lock().available(&r), before);
    }

    #[test]
    fn bad_requests_are_refused() {
        let mut p = Partition::new();
        let bad = Request {
            aperture: (64 << 20) + 4096,
            hidden: 384 << 20,
            fences: 4,
        };
        assert_eq!(p.alloc(&bad), Err(PartitionError::BadRequest));
        let none = Request {
            aperture: 64 << 20,
            hidden: 384 << 20,
            fences: 0,
        };
        assert_eq!(p.alloc(&none), Err(PartitionError::BadRequest));
        let huge = Request {
            aperture: 2 << 30,
            hidden: 384 << 20,
            fences: 4,
        };
        assert_eq!(p.alloc(&huge), Err(PartitionError::NoSpace));
        assert_eq!(p.available(&huge), 0);
    }
}
