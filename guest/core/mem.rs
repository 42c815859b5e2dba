// SPDX-License-Identifier: GPL-2.0

//! GPU-visible memory: `dma::Coherent` pages with single volatile accesses.
//!
//! The device may read or write any of it at any time, so the CPU never holds a
//! reference into it: every access is one aligned load or store of the element type
//! (`dma_read!` / `dma_write!`). Page tables use [`GpuMem<u64>`] so that an entry is
//! written with one 8-byte store; everything else uses [`GpuMem<u32>`].
//!
//! The device's DMA mask stays at the PCI default of 32 bits: the host needs addresses
//! below 2^39, and setting a wider mask needs `dma::Device::dma_set_mask_and_coherent`,
//! which is `unsafe` in 7.2.

use crate::abi::gtt::{SZ_2M, SZ_4K};
use kernel::{
    device::{Bound, Device},
    dma::Coherent,
    prelude::*,
    transmute::{AsBytes, FromBytes},
};

/// Bytes per page.
pub(crate) const PAGE: usize = SZ_4K as usize;

/// Zeroed, physically contiguous, GPU-visible memory of whole pages.
///
/// # Invariants
///
/// `[start, start + len)` lies inside `mem`, and `start` is aligned as requested.
pub(crate) struct GpuMem<T: AsBytes + FromBytes + Copy> {
    mem: Coherent<[T]>,
    /// First element of the usable window.
    start: usize,
    /// Elements in the window.
    len: usize,
}

impl<T: AsBytes + FromBytes + Copy> GpuMem<T> {
    const PER_PAGE: usize = PAGE / core::mem::size_of::<T>();

    /// Allocates `pages` zeroed pages.
    pub(crate) fn new(dev: &Device<Bound>, pages: usize) -> Result<Self> {
        Self::new_aligned(dev, pages, SZ_4K)
    }

    /// Allocates `pages` zeroed pages whose DMA address is aligned to `align` (a power of
    /// two up to 2 MiB). The page allocator aligns a block to its order, so this first
    /// tries the exact size and then twice the size, using the aligned window inside.
    pub(crate) fn new_aligned(dev: &Device<Bound>, pages: usize, align: u64) -> Result<Self> {
        if pages == 0 || !align.is_power_of_two() || align > SZ_2M {
            return Err(EINVAL);
        }
        let len = pages.checked_mul(Self::PER_PAGE).ok_or(EINVAL)?;
        let mem = Coherent::<T>::zeroed_slice(dev, len, GFP_KERNEL)?;
        if mem.dma_handle() % align == 0 {
            return Ok(Self { mem, start: 0, len });
        }
        drop(mem);
        let extra = (align as usize / PAGE) * Self::PER_PAGE;
        let mem =
            Coherent::<T>::zeroed_slice(dev, len.checked_add(extra).ok_or(EINVAL)?, GFP_KERNEL)?;
        let skip = (align - mem.dma_handle() % align) % align;
        let start = skip as usize / core::mem::size_of::<T>();
        if start + len > mem.len() {
            return Err(ENOMEM);
        }
        Ok(Self { mem, start, len })
    }

    /// DMA address of the first page.
    pub(crate) fn dma(&self) -> u64 {
        self.mem.dma_handle() + (self.start * core::mem::size_of::<T>()) as u64
    }

    /// Number of pages.
    pub(crate) fn pages(&self) -> usize {
        self.len / Self::PER_PAGE
    }

    /// Number of elements.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// DMA addresses of every page, in order (a heap vector: a 2 MiB buffer has 512).
    pub(crate) fn page_list(&self) -> Result<KVec<u64>> {
        let mut v = KVec::with_capacity(self.pages(), GFP_KERNEL)?;
        for i in 0..self.pages() {
            v.push(self.dma() + (i * PAGE) as u64, GFP_KERNEL)?;
        }
        Ok(v)
    }

    /// Reads element `i` with one volatile load.
    pub(crate) fn read(&self, i: usize) -> Result<T> {
        if i >= self.len {
            return Err(ERANGE);
        }
        let at = self.start + i;
        Ok(kernel::dma_read!(self.mem, [try: at]))
    }

    /// Writes element `i` with one volatile store.
    pub(crate) fn write(&self, i: usize, v: T) -> Result {
        if i >= self.len {
            return Err(ERANGE);
        }
        let at = self.start + i;
        kernel::dma_write!(self.mem, [try: at], v);
        Ok(())
    }

    /// Writes `v` into every element of `range`.
    pub(crate) fn fill(&self, range: core::ops::Range<usize>, v: T) -> Result {
        for i in range {
            self.write(i, v)?;
        }
        Ok(())
    }

    /// Writes `src` starting at element `at`.
    pub(crate) fn write_slice(&self, at: usize, src: &[T]) -> Result {
        for (i, v) in src.iter().enumerate() {
            self.write(at.checked_add(i).ok_or(ERANGE)?, *v)?;
        }
        Ok(())
    }
}
