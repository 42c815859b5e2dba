// SPDX-License-Identifier: GPL-2.0

//! The GGTT: an allocator confined to the vGPU's ballooned slices and the GGTT
//! [`Binder`], which writes 8-byte entries in BAR0's GGTT window (`gen8_set_pte`) and
//! invalidates after each update (`gen8_ggtt_invalidate`).
//!
//! Ballooning (`i915_vgpu.c: intel_vgt_balloon`) reserves everything outside the two
//! slices PVINFO names; here the allocator only ever holds the slices, so nothing else
//! can be handed out, and the binder refuses any range outside them.

use super::{mem::GpuMem, mmio::Mmio, Access, Binder};
use crate::abi::gtt::{self, SZ_4K};
use kernel::{
    device::{Bound, Device},
    new_mutex,
    prelude::*,
    sync::{Arc, Mutex},
};

/// A slice of graphics memory, in bytes: (base, size).
pub(crate) type Slice = (u64, u64);

/// First-fit allocator over free ranges of graphics memory, top down (as i915 pins
/// contexts and rings high, `PIN_HIGH`), page granular.
///
/// # Invariants
///
/// `free` is sorted, its ranges are disjoint, non-adjacent, non-empty, page aligned and
/// lie inside `slices`.
pub(crate) struct GgttSpace {
    slices: [Slice; 2],
    free: KVec<Slice>,
}

impl GgttSpace {
    /// An allocator holding exactly the aperture and hidden slices.
    ///
    /// # Errors
    ///
    /// `EINVAL` if a slice is empty, unaligned, overflows or overlaps the other.
    pub(crate) fn new(aperture: Slice, hidden: Slice) -> Result<Self> {
        let ok = |s: Slice| {
            s.1 != 0 && s.0 % SZ_4K == 0 && s.1 % SZ_4K == 0 && s.0.checked_add(s.1).is_some()
        };
        if !ok(aperture) || !ok(hidden) {
            return Err(EINVAL);
        }
        let (lo, hi) = if aperture.0 <= hidden.0 {
            (aperture, hidden)
        } else {
            (hidden, aperture)
        };
        if lo.0 + lo.1 > hi.0 {
            return Err(EINVAL);
        }
        let mut free = KVec::with_capacity(2, GFP_KERNEL)?;
        if lo.0 + lo.1 == hi.0 {
            free.push((lo.0, lo.1 + hi.1), GFP_KERNEL)?;
        } else {
            free.push(lo, GFP_KERNEL)?;
            free.push(hi, GFP_KERNEL)?;
        }
        Ok(Self {
            slices: [aperture, hidden],
            free,
        })
    }

    /// Whether `[start, start + size)` lies inside one of the slices.
    pub(crate) fn in_slices(&self, start: u64, size: u64) -> bool {
        gtt::ggtt_range_in_slices(start, size, self.slices[0], self.slices[1])
    }

    /// Allocates `size` bytes aligned to `align`, from the highest free range that fits.
    ///
    /// # Errors
    ///
    /// `EINVAL` for a zero or unaligned size or a bad alignment, `ENOSPC` if nothing fits.
    pub(crate) fn alloc(&mut self, size: u64, align: u64) -> Result<u64> {
        if size == 0 || size % SZ_4K != 0 || !align.is_power_of_two() || align < SZ_4K {
            return Err(EINVAL);
        }
        for i in (0..self.free.len()).rev() {
            let (base, len) = self.free[i];
            let end = base + len;
            let Some(start) = end.checked_sub(size).map(|s| s & !(align - 1)) else {
                continue;
            };
            if start < base {
                continue;
            }
            // Split: [base, start) stays free, [start + size, end) stays free.
            let (left, right) = ((base, start - base), (start + size, end - start - size));
            match (left.1 != 0, right.1 != 0) {
                (false, false) => {
                    self.free.remove(i)?;
                }
                (true, false) => self.free[i] = left,
                (false, true) => self.free[i] = right,
                (true, true) => {
                    self.free.reserve(1, GFP_KERNEL)?;
                    self.free[i] = left;
                    self.free.insert_within_capacity(i + 1, right)?;
                }
            }
            return Ok(start);
        }
        Err(ENOSPC)
    }

    /// Returns `[start, start + size)` to the allocator.
    ///
    /// # Errors
    ///
    /// `EINVAL` if the range is not page aligned, lies outside the slices or overlaps free
    /// space (a double free).
    pub(crate) fn free(&mut self, start: u64, size: u64) -> Result {
        if size == 0 || start % SZ_4K != 0 || size % SZ_4K != 0 || !self.in_slices(start, size) {
            return Err(EINVAL);
        }
        let end = start + size;
        let i = self
            .free
            .iter()
            .position(|&(b, _)| b >= start)
            .unwrap_or(self.free.len());
        if i > 0 {
            let (b, l) = self.free[i - 1];
            if b + l > start {
                return Err(EINVAL);
            }
        }
        if i < self.free.len() && self.free[i].0 < end {
            return Err(EINVAL);
        }
        let merge_left = i > 0 && self.free[i - 1].0 + self.free[i - 1].1 == start;
        let merge_right = i < self.free.len() && self.free[i].0 == end;
        match (merge_left, merge_right) {
            (true, true) => {
                let right = self.free.remove(i)?;
                self.free[i - 1].1 += size + right.1;
            }
            (true, false) => self.free[i - 1].1 += size,
            (false, true) => {
                self.free[i].0 = start;
                self.free[i].1 += size;
            }
            (false, false) => {
                self.free.reserve(1, GFP_KERNEL)?;
                self.free.insert_within_capacity(i, (start, size))?;
            }
        }
        Ok(())
    }

    /// Free bytes.
    pub(crate) fn available(&self) -> u64 {
        self.free.iter().map(|r| r.1).sum()
    }
}

/// The vGPU's GGTT.
#[pin_data]
pub(crate) struct Ggtt {
    mmio: Arc<Mmio>,
    #[pin]
    space: Mutex<GgttSpace>,
}

impl Ggtt {
    /// The GGTT of the vGPU with these slices.
    pub(crate) fn new(mmio: Arc<Mmio>, aperture: Slice, hidden: Slice) -> Result<Arc<Self>> {
        let space = GgttSpace::new(aperture, hidden)?;
        Arc::pin_init(
            pin_init!(Self {
                mmio,
                space <- new_mutex!(space, "gvtpv_guest::Ggtt::space"),
            }),
            GFP_KERNEL,
        )
    }

    /// Reserves `pages` pages of graphics memory.
    pub(crate) fn reserve(self: &Arc<Self>, pages: usize, align: u64) -> Result<GgttRange> {
        let size = (pages as u64).checked_mul(SZ_4K).ok_or(EINVAL)?;
        let start = self.space.lock().alloc(size, align)?;
        Ok(GgttRange {
            ggtt: self.clone(),
            start,
            size,
        })
    }

    /// Allocates `pages` zeroed pages of GPU memory and binds them in the GGTT.
    pub(crate) fn alloc_bound(
        self: &Arc<Self>,
        dev: &Device<Bound>,
        pages: usize,
    ) -> Result<GgttBuf> {
        let mem = GpuMem::<u32>::new(dev, pages)?;
        let range = self.reserve(pages, SZ_4K)?;
        let list = mem.page_list()?;
        self.bind(range.start, &list, Access::ReadWrite)?;
        Ok(GgttBuf { range, mem })
    }

    /// Writes one entry without checking it against the slices: for the hostile
    /// selftest only, which expects the host to drop the write.
    pub(crate) fn write_entry_unchecked(&self, addr: u64, pte: u64) -> Result {
        self.mmio.write_gtt(addr / SZ_4K, pte)?;
        self.mmio.invalidate_ggtt()
    }

    /// Reads the entry for graphics address `addr`.
    pub(crate) fn read_entry(&self, addr: u64) -> Result<u64> {
        self.mmio.read_gtt(addr / SZ_4K)
    }

    fn check(&self, start: u64, count: usize) -> Result<u64> {
        let size = (count as u64).checked_mul(SZ_4K).ok_or(EINVAL)?;
        if start % SZ_4K != 0 || !self.space.lock().in_slices(start, size) {
            return Err(EINVAL);
        }
        Ok(size)
    }
}

impl Binder for Ggtt {
    fn bind(&self, start: u64, pages: &[u64], _access: Access) -> Result {
        self.check(start, pages.len())?;
        for (i, &dma) in pages.iter().enumerate() {
            if dma % SZ_4K != 0 || dma & !gtt::PTE_ADDR_MASK != 0 {
                return Err(EINVAL);
            }
            // GEN8 GGTT entry: address | present, no cache bits (`gen8_ggtt_pte_encode`).
            self.mmio
                .write_gtt(start / SZ_4K + i as u64, dma | gtt::PTE_PRESENT)?;
        }
        self.mmio.invalidate_ggtt()
    }

    fn unbind(&self, start: u64, count: usize) -> Result {
        self.check(start, count)?;
        for i in 0..count as u64 {
            self.mmio.write_gtt(start / SZ_4K + i, 0)?;
        }
        self.mmio.invalidate_ggtt()
    }
}

/// Graphics memory reserved in the GGTT; unbound and returned when dropped.
pub(crate) struct GgttRange {
    ggtt: Arc<Ggtt>,
    start: u64,
    size: u64,
}

impl Drop for GgttRange {
    fn drop(&mut self) {
        // Clear the entries so the host drops its pins, then give the space back. A device
        // that went away leaves nothing to clear.
        let _ = self.ggtt.unbind(self.start, (self.size / SZ_4K) as usize);
        let _ = self.ggtt.space.lock().free(self.start, self.size);
    }
}

/// GPU memory bound in the GGTT.
pub(crate) struct GgttBuf {
    // Dropped first: the entries are cleared before the memory is freed.
    range: GgttRange,
    mem: GpuMem<u32>,
}

impl GgttBuf {
    /// Graphics address (32 bits: the GGTT is 4 GiB).
    pub(crate) fn addr(&self) -> u32 {
        self.range.start as u32
    }

    /// The memory.
    pub(crate) fn mem(&self) -> &GpuMem<u32> {
        &self.mem
    }
}

#[kunit_tests(gvtpv_guest_ggtt)]
mod tests {
    use super::*;

    const AP: Slice = (128 << 20, 64 << 20);
    const HID: Slice = (1536 << 20, 384 << 20);

    #[test]
    fn allocates_inside_the_slices_top_down() {
        let mut s = GgttSpace::new(AP, HID).unwrap();
        let total = s.available();
        assert_eq!(total, (64 + 384) << 20);
        let a = s.alloc(2 * SZ_4K, SZ_4K).unwrap();
        assert_eq!(a, HID.0 + HID.1 - 2 * SZ_4K);
        assert!(s.in_slices(a, 2 * SZ_4K));
        let b = s.alloc(SZ_4K, 1 << 21).unwrap();
        assert_eq!(b % (1 << 21), 0);
        assert!(s.in_slices(b, SZ_4K));
        s.free(a, 2 * SZ_4K).unwrap();
        s.free(b, SZ_4K).unwrap();
        assert_eq!(s.available(), total);
        assert_eq!(s.free.len(), 2);
    }

    #[test]
    fn falls_back_to_the_aperture_and_runs_out() {
        let mut s = GgttSpace::new(AP, HID).unwrap();
        let h = s.alloc(HID.1, SZ_4K).unwrap();
        assert_eq!(h, HID.0);
        let a = s.alloc(SZ_4K, SZ_4K).unwrap();
        assert!(a >= AP.0 && a < AP.0 + AP.1);
        assert_eq!(s.alloc(AP.1, SZ_4K), Err(ENOSPC));
        assert_eq!(s.alloc(0, SZ_4K), Err(EINVAL));
        assert_eq!(s.alloc(100, SZ_4K), Err(EINVAL));
        assert_eq!(s.alloc(SZ_4K, 3), Err(EINVAL));
    }

    #[test]
    fn refuses_bad_frees() {
        let mut s = GgttSpace::new(AP, HID).unwrap();
        let a = s.alloc(4 * SZ_4K, SZ_4K).unwrap();
        // Outside the slices: the balloon is never handed out or taken back.
        assert_eq!(s.free(0, SZ_4K), Err(EINVAL));
        assert_eq!(s.free(AP.0 + AP.1, SZ_4K), Err(EINVAL));
        // Already free.
        assert_eq!(s.free(AP.0, SZ_4K), Err(EINVAL));
        // Overlapping free space.
        assert_eq!(s.free(a - SZ_4K, 2 * SZ_4K), Err(EINVAL));
        // Middle of an allocation, then the rest: coalesces back to one range.
        s.free(a + SZ_4K, SZ_4K).unwrap();
        s.free(a, SZ_4K).unwrap();
        s.free(a + 2 * SZ_4K, 2 * SZ_4K).unwrap();
        assert_eq!(s.free.len(), 2);
        assert_eq!(s.available(), (64 + 384) << 20);
    }

    #[test]
    fn refuses_bad_slices() {
        assert!(GgttSpace::new((0, 0), HID).is_err());
        assert!(GgttSpace::new((1, SZ_4K), HID).is_err());
        assert!(GgttSpace::new(AP, (AP.0, SZ_4K)).is_err());
        assert!(GgttSpace::new(AP, (!0xfff, SZ_4K)).is_err());
        // Adjacent slices make one range.
        let s = GgttSpace::new((0, SZ_4K), (SZ_4K, SZ_4K)).unwrap();
        assert_eq!(s.free.len(), 1);
    }
}
