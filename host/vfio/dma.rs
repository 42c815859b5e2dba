// SPDX-License-Identifier: GPL-2.0

//! Guest memory through an open vfio device: copies, pins, and pinned pages read and
//! written with single aligned accesses.
//!
//! A [`Dma`] lives from `open_device` to `close_device`. Pins taken through it are vfio pins
//! (`vfio_pin_pages`) plus a page reference of our own: the vfio core asks the driver to
//! drop its pins when the user unmaps a range ([`PinnedPage::unpin`]), and a user of the
//! page that has not noticed yet must still point at allocated memory. After
//! [`Dma::close`] nothing reaches the device any more; a pin that outlives the open is a
//! driver bug, reported in the log, and never handed back to a closed device.
//!
//! Locking: no lock of ours is held while the vfio core runs. The legacy container calls
//! `dma_unmap` with its `device_list_lock` held, and takes that lock under its
//! `iommu->lock`, which `vfio_pin_pages` takes too: a driver lock held across a pin and
//! taken again in `dma_unmap` closes a cycle (lockdep reports it). So a call into the
//! core only *enters* the open ([`Dma`]'s count of calls in flight, checked and counted
//! under a short lock) and `close` waits until the count drops to zero.

use core::{
    hint::spin_loop,
    ptr::NonNull,
    sync::atomic::{AtomicU32, Ordering},
};
use kernel::{
    bindings,
    error::to_result,
    ffi::c_int,
    new_condvar, new_mutex,
    page::PAGE_SIZE,
    prelude::*,
    sync::{Arc, CondVar, Mutex},
    time::{delay::fsleep, Delta},
};

/// Whether the device is still open, how many calls into the vfio core are in flight,
/// and how many pins are out.
struct DmaState {
    open: bool,
    inflight: u64,
    pins: u64,
}

/// The guest-memory handle of one open of a vfio device.
///
/// # Invariants
///
/// `vdev` is a live vfio device that is open while `state.open` is true or
/// `state.inflight` is not zero ([`Dma::close`] waits for the latter).
#[pin_data]
pub(crate) struct Dma {
    vdev: NonNull<bindings::vfio_device>,
    #[pin]
    state: Mutex<DmaState>,
    /// Signalled when `inflight` drops to zero.
    #[pin]
    idle: CondVar,
}

// SAFETY: `vdev` is only used inside an [`Entered`] call, while the device is open; the vfio
// calls made with it may come from any thread.
unsafe impl Send for Dma {}
// SAFETY: as above.
unsafe impl Sync for Dma {}

/// One call into the vfio core in flight: the device stays open until it is dropped.
struct Entered<'a>(&'a Dma);

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        let mut st = self.0.state.lock();
        st.inflight -= 1;
        if st.inflight == 0 {
            self.0.idle.notify_all();
        }
    }
}

impl Dma {
    /// A handle for `vdev`, which is being opened.
    ///
    /// # Safety
    ///
    /// `vdev` must be a live vfio device that stays open until [`Dma::close`] is called.
    pub(super) unsafe fn new(vdev: *mut bindings::vfio_device) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            vdev: NonNull::new(vdev).ok_or(EINVAL)?,
            // INVARIANT: open by the caller's contract until `close`.
            state <- new_mutex!(DmaState {
                open: true,
                inflight: 0,
                pins: 0,
            }),
            idle <- new_condvar!(),
        })
    }

    /// Enters the open for one call into the vfio core.
    fn enter(&self) -> Result<Entered<'_>> {
        let mut st = self.state.lock();
        if !st.open {
            return Err(ENODEV);
        }
        st.inflight += 1;
        Ok(Entered(self))
    }

    /// The device is being closed: waits for the calls in flight, and nothing reaches
    /// the device after this returns.
    pub(super) fn close(&self) {
        let mut st = self.state.lock();
        st.open = false;
        while st.inflight != 0 {
            self.idle.wait(&mut st);
        }
        if st.pins != 0 {
            // A driver bug: the pins stay with the vfio core, which cannot be asked to
            // drop them once the device is closed.
            pr_err!(
                "gvtpv: {} guest page pins outlived the device open; leaked in the vfio core\n",
                st.pins
            );
        }
    }

    /// Copies between guest memory at DMA address `iova` and `buf` (`write`: to the guest).
    ///
    /// # Errors
    ///
    /// `ENODEV` once the device is closed; `EINVAL` if the range is not mapped; `EFAULT`.
    pub(crate) fn rw(&self, iova: u64, buf: &mut [u8], write: bool) -> Result {
        let _in = self.enter()?;
        // SAFETY: the device is open while `_in` lives (type invariant); `buf` is valid
        // for `buf.len()` bytes for the whole call.
        to_result(unsafe {
            bindings::vfio_dma_rw(
                self.vdev.as_ptr(),
                iova,
                buf.as_mut_ptr().cast(),
                buf.len(),
                write,
            )
        })
    }

    /// Pins the guest page at DMA address `iova` (page aligned), writable if `write`.
    ///
    /// # Errors
    ///
    /// `ENODEV` once closed, `EINVAL` for an unaligned address, or the vfio core's error
    /// (`EINVAL` for an unmapped address, `ENOMEM` past `RLIMIT_MEMLOCK`, `EFAULT`).
    pub(crate) fn pin(self: &Arc<Self>, iova: u64, write: bool) -> Result<PinnedPage> {
        const IOMMU_READ: c_int = 1 << 0;
        const IOMMU_WRITE: c_int = 1 << 1;
        if iova % PAGE_SIZE as u64 != 0 {
            return Err(EINVAL);
        }
        let prot = IOMMU_READ | if write { IOMMU_WRITE } else { 0 };
        let entered = self.enter()?;
        let mut page: *mut bindings::page = core::ptr::null_mut();
        // SAFETY: the device is open while `entered` lives (type invariant); `page` has
        // room for the one pointer asked for.
        let n = unsafe { bindings::vfio_pin_pages(self.vdev.as_ptr(), iova, 1, prot, &mut page) };
        if n < 0 {
            return Err(Error::from_errno(n));
        }
        let Some(page) = NonNull::new(page).filter(|_| n == 1) else {
            if n == 1 {
                // SAFETY: one page was pinned above on this open device; give it back.
                unsafe { bindings::vfio_unpin_pages(self.vdev.as_ptr(), iova, 1) };
            }
            return Err(EFAULT);
        };
        // SAFETY: `page` is pinned, hence live; this reference is ours until `drop`.
        unsafe { bindings::get_page(page.as_ptr()) };
        self.state.lock().pins += 1;
        drop(entered);
        // INVARIANT: one vfio pin (counted in `pins`) and one page reference taken.
        Ok(PinnedPage {
            dma: self.clone(),
            iova,
            page,
            writable: write,
            state: AtomicU32::new(PINNED),
        })
    }

    /// Gives one pin of `iova` back, unless the device was closed meanwhile.
    fn unpin(&self, iova: u64) {
        let Ok(_in) = self.enter() else {
            // Closed: `close` reported the pin; a closed device is never called.
            return;
        };
        // SAFETY: the device is open while `_in` lives (type invariant) and `iova` carries
        // a pin taken through it (the caller's `PinnedPage` invariant).
        unsafe { bindings::vfio_unpin_pages(self.vdev.as_ptr(), iova, 1) };
        let mut st = self.state.lock();
        st.pins = st.pins.saturating_sub(1);
    }
}

/// [`PinnedPage::state`]: the vfio pin is held.
const PINNED: u32 = 1 << 31;

/// One guest page pinned for device access.
///
/// Every load and store checks that the pin is still held and counts itself in
/// `state` while it runs; [`PinnedPage::unpin`] clears the pin bit and waits for the
/// accesses in progress before it gives the pin back. So once `unpin` (and with it the
/// driver's `dma_unmap`) returns, nothing touches the page through this object any more,
/// as vfio requires.
///
/// # Invariants
///
/// While `state` has [`PINNED`] set or counts accesses, we own one vfio pin of `iova` on
/// `dma`; `page` is the host page behind it, on which we own one page reference for as
/// long as this object lives.
pub(crate) struct PinnedPage {
    dma: Arc<Dma>,
    iova: u64,
    page: NonNull<bindings::page>,
    /// Whether the pin allows device writes.
    writable: bool,
    /// [`PINNED`], plus the number of accesses in progress.
    state: AtomicU32,
}

// SAFETY: the page reference may be dropped from any thread; accesses to the page are
// single volatile loads and stores, which any thread may make.
unsafe impl Send for PinnedPage {}
// SAFETY: as above; `state` is atomic.
unsafe impl Sync for PinnedPage {}

/// One access in progress on a [`PinnedPage`].
struct Access<'a>(&'a PinnedPage);

impl Drop for Access<'_> {
    fn drop(&mut self) {
        self.0.state.fetch_sub(1, Ordering::Release);
    }
}

/// Whether `off` is a naturally aligned `size`-byte slot inside a page.
fn slot(off: usize, size: usize) -> Result {
    if off % size == 0 && off.checked_add(size).is_some_and(|e| e <= PAGE_SIZE) {
        Ok(())
    } else {
        Err(EINVAL)
    }
}

impl PinnedPage {
    /// The host frame number of the page.
    pub(crate) fn pfn(&self) -> u64 {
        // SAFETY: we hold a page reference (type invariant).
        (unsafe { bindings::page_to_pfn(self.page.as_ptr()) }) as u64
    }

    /// Whether the vfio pin is still held (not yet dropped by [`Self::unpin`]).
    pub(crate) fn is_pinned(&self) -> bool {
        self.state.load(Ordering::Acquire) & PINNED != 0
    }

    /// Starts an access, if the pin is still held.
    fn begin(&self, store: bool) -> Result<Access<'_>> {
        if store && !self.writable {
            return Err(EPERM);
        }
        // One read-modify-write on `state`: either `unpin`'s comes first and this access
        // sees the pin gone (and counts nothing), or this one does and `unpin` waits for it.
        self.state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| {
                (s & PINNED != 0).then_some(s + 1)
            })
            .map(|_| Access(self))
            .map_err(|_| EFAULT)
    }

    /// Gives the vfio pin back now (the user unmapped the page), after the accesses in
    /// progress; later accesses fail with `EFAULT`. Idempotent. May sleep.
    pub(crate) fn unpin(&self) {
        if self.state.fetch_and(!PINNED, Ordering::AcqRel) & PINNED == 0 {
            return;
        }
        // Accesses are a load or a store each: spin a little, then sleep, so that an
        // access whose thread was preempted gets the CPU back.
        let mut spins = 0u32;
        while self.state.load(Ordering::Acquire) & !PINNED != 0 {
            if spins < 1000 {
                spins += 1;
                spin_loop();
            } else {
                fsleep(Delta::from_micros(10));
            }
        }
        // INVARIANT: the pin is given back exactly once, with no access in progress.
        self.dma.unpin(self.iova);
    }

    /// Runs `f` on the kernel mapping of the page.
    fn with_map<R>(&self, f: impl FnOnce(*mut u8) -> R) -> R {
        // SAFETY: we hold a page reference (type invariant), so the page is live; the local
        // mapping is undone below, on this thread, before anything else is mapped.
        let va = unsafe { bindings::kmap_local_page(self.page.as_ptr()) }.cast::<u8>();
        let r = f(va);
        // SAFETY: `va` is the mapping made above.
        unsafe { bindings::kunmap_local(va.cast()) };
        r
    }

    /// Loads the `size`-byte value (1, 2, 4 or 8) at byte offset `off` with one aligned
    /// access, zero-extended (the aperture's byte and word accesses).
    ///
    /// # Errors
    ///
    /// `EINVAL` for another size, or if `off` is unaligned or outside the page, `EFAULT`
    /// once unpinned.
    pub(crate) fn load_sized(&self, off: usize, size: usize) -> Result<u64> {
        if !matches!(size, 1 | 2 | 4 | 8) {
            return Err(EINVAL);
        }
        slot(off, size)?;
        let _a = self.begin(false)?;
        // SAFETY: `off` is a `size`-aligned slot inside the mapped page (checked above).
        Ok(self.with_map(|va| unsafe {
            let p = va.add(off);
            match size {
                1 => u64::from(p.read_volatile()),
                2 => u64::from(p.cast::<u16>().read_volatile()),
                4 => u64::from(p.cast::<u32>().read_volatile()),
                _ => p.cast::<u64>().read_volatile(),
            }
        }))
    }

    /// Stores the low `size` bytes (1, 2, 4 or 8) of `v` at byte offset `off` with one
    /// aligned access.
    ///
    /// # Errors
    ///
    /// As for [`Self::load_sized`]; `EPERM` for a read-only pin.
    pub(crate) fn store_sized(&self, off: usize, size: usize, v: u64) -> Result {
        if !matches!(size, 1 | 2 | 4 | 8) {
            return Err(EINVAL);
        }
        slot(off, size)?;
        let _a = self.begin(true)?;
        // SAFETY: `off` is a `size`-aligned slot inside the mapped page (checked above);
        // the casts keep the low bytes, as documented.
        self.with_map(|va| unsafe {
            let p = va.add(off);
            match size {
                1 => p.write_volatile(v as u8),
                2 => p.cast::<u16>().write_volatile(v as u16),
                4 => p.cast::<u32>().write_volatile(v as u32),
                _ => p.cast::<u64>().write_volatile(v),
            }
        });
        Ok(())
    }

    /// Loads the dword at byte offset `off` with one aligned access.
    ///
    /// # Errors
    ///
    /// `EINVAL` if `off` is unaligned or outside the page, `EFAULT` once unpinned.
    pub(crate) fn load32(&self, off: usize) -> Result<u32> {
        slot(off, 4)?;
        let _a = self.begin(false)?;
        // SAFETY: `off` is a 4-byte aligned slot inside the mapped page (checked above).
        Ok(self.with_map(|va| unsafe { va.add(off).cast::<u32>().read_volatile() }))
    }

    /// Loads the qword at byte offset `off` with one aligned access.
    ///
    /// # Errors
    ///
    /// `EINVAL` if `off` is unaligned or outside the page, `EFAULT` once unpinned.
    pub(crate) fn load64(&self, off: usize) -> Result<u64> {
        slot(off, 8)?;
        let _a = self.begin(false)?;
        // SAFETY: `off` is an 8-byte aligned slot inside the mapped page (checked above).
        Ok(self.with_map(|va| unsafe { va.add(off).cast::<u64>().read_volatile() }))
    }

    /// Stores the dword `v` at byte offset `off` with one aligned access.
    ///
    /// # Errors
    ///
    /// `EINVAL` if `off` is unaligned or outside the page, `EPERM` for a read-only pin,
    /// `EFAULT` once unpinned.
    pub(crate) fn store32(&self, off: usize, v: u32) -> Result {
        slot(off, 4)?;
        let _a = self.begin(true)?;
        // SAFETY: `off` is a 4-byte aligned slot inside the mapped page (checked above).
        self.with_map(|va| unsafe { va.add(off).cast::<u32>().write_volatile(v) });
        Ok(())
    }

    /// Stores the qword `v` at byte offset `off` with one aligned access.
    ///
    /// # Errors
    ///
    /// `EINVAL` if `off` is unaligned or outside the page, `EPERM` for a read-only pin,
    /// `EFAULT` once unpinned.
    pub(crate) fn store64(&self, off: usize, v: u64) -> Result {
        slot(off, 8)?;
        let _a = self.begin(true)?;
        // SAFETY: `off` is an 8-byte aligned slot inside the mapped page (checked above).
        self.with_map(|va| unsafe { va.add(off).cast::<u64>().write_volatile(v) });
        Ok(())
    }
}

impl Drop for PinnedPage {
    fn drop(&mut self) {
        self.unpin();
        // SAFETY: we own one page reference (type invariant), dropped exactly once here.
        unsafe { bindings::put_page(self.page.as_ptr()) };
    }
}
