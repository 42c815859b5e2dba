// SPDX-License-Identifier: GPL-2.0

//! The host's own graphics memory: pages the mediator allocates from the backend
//! ([`Gpu::alloc`]) and maps into the host GGTT, inside the host's hidden share
//! ([`partition::HOST_HIDDEN`]), which no vGPU's slice overlaps.
//!
//! The share is cut into fixed windows: window 0 serves the scheduler (the engines'
//! status pages), window `id` serves vGPU `id` (its shadow contexts, shadow rings and
//! batch copies). A [`HostBuf`] is one allocation: host memory, mapped at a GGTT range
//! of its window, unmapped (entries back to not present) and freed on drop.

use crate::{
    abi::gtt,
    gpu::{Gpu, HostMem, PAGE},
    mm::partition::{APERTURE_SIZE, HOST_HIDDEN, MAX_VGPUS},
};
use kernel::{
    new_mutex,
    prelude::*,
    sync::{Arc, Mutex},
};

/// Size of one window.
pub(crate) const WINDOW: u64 = 8 << 20;
/// Pages of one window.
const WINDOW_PAGES: usize = (WINDOW / PAGE) as usize;
const _: () = assert!((MAX_VGPUS as u64 + 1) * WINDOW <= HOST_HIDDEN);

/// Graphics address of window `id` (0 for the scheduler, else a vGPU id).
pub(crate) const fn window_base(id: u32) -> u64 {
    APERTURE_SIZE + id as u64 * WINDOW
}

/// One window of host graphics memory: a first-fit allocator over its pages.
#[pin_data]
pub(crate) struct HostGgtt {
    gpu: Arc<dyn Gpu>,
    base: u64,
    /// Which pages of the window are taken.
    #[pin]
    used: Mutex<KVec<bool>>,
}

impl HostGgtt {
    /// Window `id` of the host's hidden share, all free.
    ///
    /// # Errors
    ///
    /// `EINVAL` for an id above [`MAX_VGPUS`], `ENOMEM`.
    pub(crate) fn new(gpu: Arc<dyn Gpu>, id: u32) -> Result<Arc<Self>> {
        if id > MAX_VGPUS {
            return Err(EINVAL);
        }
        let mut used = KVec::with_capacity(WINDOW_PAGES, GFP_KERNEL)?;
        used.extend_with(WINDOW_PAGES, false, GFP_KERNEL)?;
        Arc::pin_init(
            pin_init!(Self {
                gpu,
                base: window_base(id),
                used <- new_mutex!(used, "HostGgtt::used"),
            }),
            GFP_KERNEL,
        )
    }

    /// Graphics address of the window.
    pub(crate) fn base(&self) -> u64 {
        self.base
    }

    /// Allocates `pages` zeroed pages of host memory and maps them at consecutive GGTT
    /// entries of the window.
    ///
    /// # Errors
    ///
    /// `EINVAL` for 0 pages, `ENOSPC` when the window has no run that long, the
    /// backend's error.
    pub(crate) fn alloc(self: &Arc<Self>, pages: usize) -> Result<HostBuf> {
        if pages == 0 || pages > WINDOW_PAGES {
            return Err(EINVAL);
        }
        let mem = self.gpu.alloc(pages)?;
        let first = {
            let mut used = self.used.lock();
            let mut run = 0;
            let mut found = None;
            for (i, u) in used.iter().enumerate() {
                run = if *u { 0 } else { run + 1 };
                if run == pages {
                    found = Some(i + 1 - pages);
                    break;
                }
            }
            let first = found.ok_or(ENOSPC)?;
            used[first..first + pages]
                .iter_mut()
                .for_each(|u| *u = true);
            first
        };
        // From here on, dropping `buf` undoes everything.
        let buf = HostBuf {
            owner: self.clone(),
            mem,
            first,
            pages,
        };
        for i in 0..pages {
            let pte = (buf.mem.dev_addr() + i as u64 * PAGE) | gtt::PTE_PRESENT;
            self.gpu.ggtt_write(buf.index(i), pte)?;
        }
        self.gpu.ggtt_invalidate();
        Ok(buf)
    }

    /// Pages free now.
    pub(crate) fn free_pages(&self) -> usize {
        self.used.lock().iter().filter(|u| !**u).count()
    }
}

/// Host memory mapped at a GGTT range; unmapped and freed on drop.
pub(crate) struct HostBuf {
    owner: Arc<HostGgtt>,
    mem: Arc<dyn HostMem>,
    first: usize,
    pages: usize,
}

impl HostBuf {
    /// GGTT index of page `i`.
    fn index(&self, i: usize) -> u32 {
        ((self.owner.base / PAGE) as usize + self.first + i) as u32
    }

    /// Graphics (GGTT) address of byte 0.
    pub(crate) fn gm(&self) -> u64 {
        self.owner.base + self.first as u64 * PAGE
    }

    /// Length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.pages * PAGE as usize
    }

    /// The memory itself.
    pub(crate) fn mem(&self) -> &dyn HostMem {
        &*self.mem
    }
}

impl Drop for HostBuf {
    fn drop(&mut self) {
        let gpu = &self.owner.gpu;
        for i in 0..self.pages {
            // Not present; nothing to report to if the backend refuses.
            let _ = gpu.ggtt_write(self.index(i), 0);
        }
        gpu.ggtt_invalidate();
        let mut used = self.owner.used.lock();
        used[self.first..self.first + self.pages]
            .iter_mut()
            .for_each(|u| *u = false);
    }
}

#[kunit_tests(gvtpv_host_host_ggtt)]
mod tests {
    use super::*;
    use crate::mm::ggtt::fake_gpu::FakeGpu;

    #[test]
    fn buffers_are_mapped_in_their_window_and_freed_on_drop() {
        let gpu = FakeGpu::new().unwrap();
        let w = HostGgtt::new(gpu.clone(), 3).unwrap();
        assert_eq!(w.base(), APERTURE_SIZE + 3 * WINDOW);
        let a = w.alloc(2).unwrap();
        let b = w.alloc(1).unwrap();
        assert_eq!(a.gm(), w.base());
        assert_eq!(b.gm(), w.base() + 2 * PAGE);
        // The GGTT entries point at the buffer's device pages.
        let pte = gpu.ggtt_read((a.gm() / PAGE) as u32 + 1).unwrap();
        assert_eq!(pte, (a.mem().dev_addr() + PAGE) | gtt::PTE_PRESENT);
        a.mem().store32(PAGE as usize, 7).unwrap();
        assert_eq!(a.mem().load32(PAGE as usize).unwrap(), 7);
        drop(a);
        assert_eq!(gpu.ggtt_read((w.base() / PAGE) as u32).unwrap(), 0);
        assert_eq!(w.free_pages(), WINDOW_PAGES - 1);
        // First fit reuses the hole.
        let c = w.alloc(2).unwrap();
        assert_eq!(c.gm(), w.base());
        drop((b, c));
        assert_eq!(w.free_pages(), WINDOW_PAGES);
    }

    #[test]
    fn windows_are_bounded() {
        let gpu = FakeGpu::new().unwrap();
        assert!(HostGgtt::new(gpu.clone(), MAX_VGPUS + 1).is_err());
        let w = HostGgtt::new(gpu, MAX_VGPUS).unwrap();
        assert!(w.alloc(0).is_err());
        assert!(w.alloc(WINDOW_PAGES + 1).is_err());
        let all = w.alloc(WINDOW_PAGES).unwrap();
        assert_eq!(w.alloc(1).err(), Some(ENOSPC));
        assert!(all.gm() + all.len() as u64 <= APERTURE_SIZE + HOST_HIDDEN);
    }
}
