// SPDX-License-Identifier: GPL-2.0

//! A vfio device whose `vfio_device_ops` come from the [`VfioOps`] trait.
//!
//! The C `struct vfio_device` is allocated by the vfio core (`_vfio_alloc_device`) with room
//! for a [`Container`]: the C struct first, then the Rust object. The vfio core owns the
//! memory; the Rust object is dropped in the `release` callback, before the core frees it.

use super::{eventfd::EventFd, uapi};
use core::{marker::PhantomData, mem::offset_of, ptr, ptr::NonNull};
use kernel::{
    bindings,
    error::{from_err_ptr, to_result},
    ffi::{c_char, c_int, c_long, c_uint, c_ulong},
    prelude::*,
    sync::Arc,
    types::Opaque,
    uaccess::{UserPtr, UserSlice},
};
use zerocopy::{FromBytes, IntoBytes};

/// Largest single `read(2)`/`write(2)` on a region: a whole extended config space.
pub(crate) const MAX_RW: usize = 4096;

/// What `VFIO_DEVICE_GET_REGION_INFO` reports for one region.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct RegionInfo {
    /// Size in bytes; 0 for a region the device does not have.
    pub(crate) size: u64,
    /// `VFIO_REGION_INFO_FLAG_*`.
    pub(crate) flags: u32,
}

/// The action of a `VFIO_DEVICE_SET_IRQS` request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IrqAction {
    /// Mask the interrupt.
    Mask,
    /// Unmask the interrupt.
    Unmask,
    /// Trigger the interrupt, or (with eventfds) set where it is signalled.
    Trigger,
}

/// The data of a `VFIO_DEVICE_SET_IRQS` request, copied and converted.
pub(crate) enum IrqData {
    /// No data: act on every vector in the range.
    None,
    /// One flag per vector: act where it is non-zero.
    Bool(KVec<bool>),
    /// One eventfd per vector; `None` (fd -1) tears the vector down.
    EventFd(KVec<Option<EventFd>>),
}

/// A validated `VFIO_DEVICE_SET_IRQS` request.
pub(crate) struct IrqSet {
    /// Interrupt index (`VFIO_PCI_*_IRQ_INDEX`).
    pub(crate) index: u32,
    /// Number of vectors; 0 with [`IrqData::None`] and [`IrqAction::Trigger`] disables all.
    pub(crate) count: u32,
    /// What to do.
    pub(crate) action: IrqAction,
    /// With what.
    pub(crate) data: IrqData,
}

/// The vfio device as seen from a callback: guest memory access through the vfio container.
///
/// # Invariants
///
/// `self.0` is a registered-or-registering `vfio_device` that stays alive for `'a`.
pub(crate) struct VfioDevice<'a>(*mut bindings::vfio_device, PhantomData<&'a ()>);

impl VfioDevice<'_> {
    /// Reads or writes guest memory at the guest physical (IOVA) address `iova`.
    ///
    /// # Errors
    ///
    /// `EINVAL` if the range is not mapped in the container, `EFAULT` on a fault,
    /// `E2BIG` for more than 4 GiB at once.
    #[expect(dead_code, reason = "used by the GTT and PV issues; see Documentation")]
    pub(crate) fn dma_rw(&self, iova: u64, buf: &mut [u8], write: bool) -> Result {
        let len = buf.len();
        // SAFETY: by the type invariant the device is alive; `buf` is valid for `len` bytes
        // for the whole call.
        to_result(unsafe {
            bindings::vfio_dma_rw(self.0, iova, buf.as_mut_ptr().cast(), len, write)
        })
    }
}

/// One guest page pinned in host memory for device access, unpinned on drop.
///
/// # Invariants
///
/// `vdev` is the live device `iova` (page aligned) was pinned through, and this object
/// owns that one pin; it cannot outlive the callback that made it (`'a`). `page` is the
/// pinned host page (its frame number needs a `page_to_pfn` helper, which the patch set
/// gains with the shadow GTTs).
pub(crate) struct PinnedPage<'a> {
    vdev: *mut bindings::vfio_device,
    iova: u64,
    _page: NonNull<bindings::page>,
    _callback: PhantomData<&'a ()>,
}

impl PinnedPage<'_> {
    /// The guest physical (IOVA) address of the page.
    #[expect(dead_code, reason = "the pin cache of the shadow GTTs uses it")]
    pub(crate) fn iova(&self) -> u64 {
        self.iova
    }
}

impl Drop for PinnedPage<'_> {
    fn drop(&mut self) {
        // SAFETY: by the type invariant we own one pin of this page on this device.
        unsafe { bindings::vfio_unpin_pages(self.vdev, self.iova, 1) };
    }
}

impl<'a> VfioDevice<'a> {
    /// Pins the guest page at `iova` (page aligned); `write` asks for a writable pin.
    ///
    /// # Errors
    ///
    /// `EINVAL` for an unaligned or unmapped address, or the container's error.
    #[expect(dead_code, reason = "the pin cache of the shadow GTTs uses it")]
    pub(crate) fn pin_page(&self, iova: u64, write: bool) -> Result<PinnedPage<'a>> {
        const IOMMU_READ: c_int = 1 << 0;
        const IOMMU_WRITE: c_int = 1 << 1;
        if iova % (kernel::page::PAGE_SIZE as u64) != 0 {
            return Err(EINVAL);
        }
        let prot = IOMMU_READ | if write { IOMMU_WRITE } else { 0 };
        let mut page: *mut bindings::page = ptr::null_mut();
        // SAFETY: the device is alive (type invariant); `page` has room for one pointer.
        let n = unsafe { bindings::vfio_pin_pages(self.0, iova, 1, prot, &mut page) };
        if n < 0 {
            return Err(Error::from_errno(n));
        }
        let Some(page) = NonNull::new(page).filter(|_| n == 1) else {
            if n == 1 {
                // SAFETY: one page was pinned above; give it back.
                unsafe { bindings::vfio_unpin_pages(self.0, iova, 1) };
            }
            return Err(EFAULT);
        };
        // INVARIANT: one pin taken on this live device.
        Ok(PinnedPage {
            vdev: self.0,
            iova,
            _page: page,
            _callback: PhantomData,
        })
    }
}

/// The callbacks of a vfio device. Every method is called with QEMU's (untrusted) input.
pub(crate) trait VfioOps: Send + Sync + Sized + 'static {
    /// The device file was opened.
    fn open(&self) -> Result;
    /// The device file was closed: drop everything tied to the open (eventfds, pins).
    fn close(&self);
    /// Reads `buf.len()` (at most [`MAX_RW`]) bytes at file position `pos`.
    fn read(&self, vfio: &VfioDevice<'_>, pos: u64, buf: &mut [u8]) -> Result;
    /// Writes `buf` at file position `pos`.
    fn write(&self, vfio: &VfioDevice<'_>, pos: u64, buf: &[u8]) -> Result;
    /// Describes region `index`.
    fn region_info(&self, index: u32) -> Result<RegionInfo>;
    /// Returns `(count, VFIO_IRQ_INFO_* flags)` for interrupt `index`.
    fn irq_info(&self, index: u32) -> Result<(u32, u32)>;
    /// Applies a validated `VFIO_DEVICE_SET_IRQS`.
    fn set_irqs(&self, set: IrqSet) -> Result;
    /// `VFIO_DEVICE_RESET`.
    fn reset(&self) -> Result;
    /// QEMU unmapped `[iova, iova + len)` from the container: drop pins inside it.
    fn dma_unmap(&self, iova: u64, len: u64);
}

/// The memory the vfio core allocates for one device.
#[repr(C)]
pub(super) struct Container<T> {
    vdev: Opaque<bindings::vfio_device>,
    /// Written once right after allocation; `None` only while probing or after a failure.
    data: Option<Arc<T>>,
}

impl<T: VfioOps> Container<T> {
    /// Allocates a vfio device for `dev` and moves `data` into it.
    ///
    /// # Safety
    ///
    /// `dev` must be a live device that outlives the returned vfio device's registration.
    pub(super) unsafe fn alloc(
        dev: *mut bindings::device,
        data: Arc<T>,
    ) -> Result<*mut bindings::vfio_device> {
        const { assert!(offset_of!(Container<T>, vdev) == 0) };
        // SAFETY: `dev` is live by the caller's contract; the size covers the container with
        // the `vfio_device` at offset 0, as `vfio_alloc_device()` requires.
        let raw = from_err_ptr(unsafe {
            bindings::_vfio_alloc_device(size_of::<Self>(), dev, Self::ops())
        })?;
        let c = raw.cast::<Self>();
        // SAFETY: the allocation is `size_of::<Self>()` zeroed bytes starting at `c`; nobody
        // else sees `data` before registration, and `release` only runs after our put.
        unsafe { ptr::write(&raw mut (*c).data, Some(data)) };
        Ok(raw)
    }

    /// # Safety
    ///
    /// `vdev` must be a `vfio_device` allocated by [`Container::alloc`] for this `T` and
    /// still alive for `'a`.
    unsafe fn data<'a>(vdev: *mut bindings::vfio_device) -> Option<&'a T> {
        let c = vdev.cast::<Self>();
        // SAFETY: by the function contract `c` is a live container; `data` was written in
        // `alloc` and is only dropped in `release`.
        unsafe { (*c).data.as_deref() }
    }

    /// The Rust object of a registered device, for the mdev `remove` path.
    ///
    /// # Safety
    ///
    /// As for [`Self::data`].
    pub(super) unsafe fn data_ref<'a>(vdev: *mut bindings::vfio_device) -> Option<&'a T> {
        // SAFETY: by the function contract.
        unsafe { Self::data(vdev) }
    }

    const OPS: bindings::vfio_device_ops = bindings::vfio_device_ops {
        name: kernel::str::as_char_ptr_in_const_context(c"gvtpv-vgpu").cast_mut(),
        release: Some(Self::release),
        open_device: Some(Self::open_device),
        close_device: Some(Self::close_device),
        read: Some(Self::read),
        write: Some(Self::write),
        ioctl: Some(Self::ioctl),
        get_region_info_caps: Some(Self::region_info),
        dma_unmap: Some(Self::dma_unmap),
        // SAFETY: `vfio_device_ops` is plain old data; all-zero means "no callback".
        ..unsafe { core::mem::zeroed() }
    };

    fn ops() -> &'static bindings::vfio_device_ops {
        &Self::OPS
    }

    /// # Safety
    ///
    /// Called by the vfio core, once, when the last reference goes.
    unsafe extern "C" fn release(vdev: *mut bindings::vfio_device) {
        let c = vdev.cast::<Self>();
        // SAFETY: the core calls `release` once, before freeing the memory; `data` was
        // initialised in `alloc`.
        unsafe { ptr::drop_in_place(&raw mut (*c).data) };
    }

    /// # Safety
    ///
    /// Called by the vfio core on a live device allocated by [`Self::alloc`], with the
    /// pointers of the `vfio_device_ops` contract.
    unsafe extern "C" fn open_device(vdev: *mut bindings::vfio_device) -> c_int {
        // SAFETY: the core only calls ops on a live device of ours.
        match unsafe { Self::data(vdev) } {
            Some(d) => d.open().map_or_else(|e| e.to_errno(), |()| 0),
            None => ENODEV.to_errno(),
        }
    }

    /// # Safety
    ///
    /// Called by the vfio core on a live device allocated by [`Self::alloc`], with the
    /// pointers of the `vfio_device_ops` contract.
    unsafe extern "C" fn close_device(vdev: *mut bindings::vfio_device) {
        // SAFETY: as in `open_device`.
        if let Some(d) = unsafe { Self::data(vdev) } {
            d.close();
        }
    }

    /// Common part of `read` and `write`: checks the position and size, gives `op` the
    /// device and a kernel buffer of `count` bytes, and advances the position.
    ///
    /// # Safety
    ///
    /// `vdev` as in [`Self::data`]; `ppos` valid for reads and writes.
    unsafe fn rw(
        vdev: *mut bindings::vfio_device,
        count: usize,
        ppos: *mut bindings::loff_t,
        op: impl FnOnce(&T, &VfioDevice<'_>, u64, &mut [u8]) -> Result,
    ) -> isize {
        let r = (|| -> Result<isize> {
            // SAFETY: by the function contract.
            let d = unsafe { Self::data(vdev) }.ok_or(ENODEV)?;
            // SAFETY: by the function contract.
            let pos = u64::try_from(unsafe { *ppos }).map_err(|_| EINVAL)?;
            if count == 0 || count > MAX_RW {
                return Err(EINVAL);
            }
            let mut buf = KVec::from_elem(0u8, count, GFP_KERNEL)?;
            op(d, &VfioDevice(vdev, PhantomData), pos, &mut buf)?;
            // SAFETY: `ppos` is valid; `count` <= MAX_RW cannot overflow a file position
            // that was just checked to be non-negative.
            unsafe { *ppos += count as bindings::loff_t };
            Ok(count as isize)
        })();
        r.unwrap_or_else(|e| e.to_errno() as isize)
    }

    /// # Safety
    ///
    /// Called by the vfio core on a live device allocated by [`Self::alloc`], with the
    /// pointers of the `vfio_device_ops` contract.
    unsafe extern "C" fn read(
        vdev: *mut bindings::vfio_device,
        ubuf: *mut c_char,
        count: usize,
        ppos: *mut bindings::loff_t,
    ) -> isize {
        // SAFETY: the core passes its live device and a valid `ppos`.
        unsafe {
            Self::rw(vdev, count, ppos, |d, v, pos, buf| {
                d.read(v, pos, buf)?;
                UserSlice::new(UserPtr::from_ptr(ubuf.cast()), count)
                    .writer()
                    .write_slice(buf)
            })
        }
    }

    /// # Safety
    ///
    /// Called by the vfio core on a live device allocated by [`Self::alloc`], with the
    /// pointers of the `vfio_device_ops` contract.
    unsafe extern "C" fn write(
        vdev: *mut bindings::vfio_device,
        ubuf: *const c_char,
        count: usize,
        ppos: *mut bindings::loff_t,
    ) -> isize {
        // SAFETY: the core passes its live device and a valid `ppos`.
        unsafe {
            Self::rw(vdev, count, ppos, |d, v, pos, buf| {
                UserSlice::new(UserPtr::from_ptr(ubuf.cast_mut().cast()), count)
                    .reader()
                    .read_slice(buf)?;
                d.write(v, pos, buf)
            })
        }
    }

    /// # Safety
    ///
    /// Called by the vfio core on a live device allocated by [`Self::alloc`], with the
    /// pointers of the `vfio_device_ops` contract.
    unsafe extern "C" fn region_info(
        vdev: *mut bindings::vfio_device,
        info: *mut bindings::vfio_region_info,
        _caps: *mut bindings::vfio_info_cap,
    ) -> c_int {
        // SAFETY: the core passes its live device.
        let Some(d) = (unsafe { Self::data(vdev) }) else {
            return ENODEV.to_errno();
        };
        // SAFETY: the core passes a kernel copy of the user's struct, valid for the call.
        let info = unsafe { &mut *info };
        match d.region_info(info.index) {
            Ok(r) => {
                info.offset = u64::from(info.index) << uapi::OFFSET_SHIFT;
                info.size = r.size;
                info.flags = r.flags;
                0
            }
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// Called by the vfio core on a live device allocated by [`Self::alloc`], with the
    /// pointers of the `vfio_device_ops` contract.
    unsafe extern "C" fn dma_unmap(vdev: *mut bindings::vfio_device, iova: u64, len: u64) {
        // SAFETY: the core passes its live device.
        if let Some(d) = unsafe { Self::data(vdev) } {
            d.dma_unmap(iova, len);
        }
    }

    /// # Safety
    ///
    /// Called by the vfio core on a live device allocated by [`Self::alloc`], with the
    /// pointers of the `vfio_device_ops` contract.
    unsafe extern "C" fn ioctl(
        vdev: *mut bindings::vfio_device,
        cmd: c_uint,
        arg: c_ulong,
    ) -> c_long {
        // SAFETY: the core passes its live device.
        let Some(d) = (unsafe { Self::data(vdev) }) else {
            return ENODEV.to_errno() as c_long;
        };
        let user = UserPtr::from_addr(arg);
        let r = match cmd {
            uapi::VFIO_DEVICE_GET_INFO => get_info(user),
            uapi::VFIO_DEVICE_GET_IRQ_INFO => get_irq_info(d, user),
            uapi::VFIO_DEVICE_SET_IRQS => set_irqs(d, user),
            uapi::VFIO_DEVICE_RESET => d.reset(),
            _ => Err(ENOTTY),
        };
        r.map_or_else(|e| e.to_errno() as c_long, |()| 0)
    }
}

/// Reads the fixed part of an info struct, checks `argsz`, lets `fill` complete it and
/// writes the fixed part back (the vfio "minsz" convention).
fn info_ioctl<S: FromBytes + IntoBytes + zerocopy::Immutable + zerocopy::KnownLayout>(
    user: UserPtr,
    argsz: impl Fn(&S) -> u32,
    fill: impl FnOnce(&mut S) -> Result,
) -> Result {
    let mut raw = [0u8; 32];
    let raw = raw.get_mut(..size_of::<S>()).ok_or(EINVAL)?;
    UserSlice::new(user, size_of::<S>())
        .reader()
        .read_slice(raw)?;
    let mut s = S::read_from_bytes(raw).map_err(|_| EINVAL)?;
    if (argsz(&s) as usize) < size_of::<S>() {
        return Err(EINVAL);
    }
    fill(&mut s)?;
    UserSlice::new(user, size_of::<S>())
        .writer()
        .write_slice(s.as_bytes())
}

fn get_info(user: UserPtr) -> Result {
    info_ioctl(
        user,
        |s: &uapi::DeviceInfo| s.argsz,
        |s| {
            s.flags = uapi::DEVICE_FLAGS_PCI | uapi::DEVICE_FLAGS_RESET;
            s.num_regions = uapi::region::NUM;
            s.num_irqs = uapi::irq::NUM;
            Ok(())
        },
    )
}

fn get_irq_info<T: VfioOps>(d: &T, user: UserPtr) -> Result {
    info_ioctl(
        user,
        |s: &uapi::IrqInfo| s.argsz,
        |s| {
            if s.index >= uapi::irq::NUM {
                return Err(EINVAL);
            }
            (s.count, s.flags) = d.irq_info(s.index)?;
            Ok(())
        },
    )
}

fn set_irqs<T: VfioOps>(d: &T, user: UserPtr) -> Result {
    let mut raw = [0u8; size_of::<uapi::IrqSetHdr>()];
    UserSlice::new(user, raw.len())
        .reader()
        .read_slice(&mut raw)?;
    let hdr = uapi::IrqSetHdr::read_from_bytes(&raw[..]).map_err(|_| EINVAL)?;
    let (count, _) = if hdr.index < uapi::irq::NUM {
        d.irq_info(hdr.index)?
    } else {
        (0, 0)
    };
    let mut c_hdr = bindings::vfio_irq_set {
        argsz: hdr.argsz,
        flags: hdr.flags,
        index: hdr.index,
        start: hdr.start,
        count: hdr.count,
        ..Default::default()
    };
    let mut data_size: usize = 0;
    // SAFETY: `c_hdr` and `data_size` are valid for the call; the function only reads the
    // header and writes `data_size`. It checks index, start + count against `count`, the
    // flag combination and that argsz covers the data.
    to_result(unsafe {
        bindings::vfio_set_irqs_validate_and_prepare(
            &mut c_hdr,
            count as c_int,
            uapi::irq::NUM as c_int,
            &mut data_size,
        )
    })?;
    let action = match hdr.flags
        & (uapi::SET_ACTION_MASK | uapi::SET_ACTION_UNMASK | uapi::SET_ACTION_TRIGGER)
    {
        uapi::SET_ACTION_MASK => IrqAction::Mask,
        uapi::SET_ACTION_UNMASK => IrqAction::Unmask,
        _ => IrqAction::Trigger,
    };
    let mut bytes = KVec::from_elem(0u8, data_size, GFP_KERNEL)?;
    if data_size > 0 {
        let data_ptr = user.wrapping_byte_add(raw.len());
        UserSlice::new(data_ptr, data_size)
            .reader()
            .read_slice(&mut bytes)?;
    }
    let data = if hdr.flags & uapi::SET_DATA_BOOL != 0 {
        let mut v = KVec::with_capacity(bytes.len(), GFP_KERNEL)?;
        for b in bytes.iter() {
            v.push(*b != 0, GFP_KERNEL)?;
        }
        IrqData::Bool(v)
    } else if hdr.flags & uapi::SET_DATA_EVENTFD != 0 {
        let mut v = KVec::with_capacity(bytes.len() / 4, GFP_KERNEL)?;
        for fd in bytes.chunks_exact(4) {
            let fd = i32::from_ne_bytes(fd.try_into().map_err(|_| EINVAL)?);
            v.push(
                if fd < 0 {
                    None
                } else {
                    Some(EventFd::from_fd(fd)?)
                },
                GFP_KERNEL,
            )?;
        }
        IrqData::EventFd(v)
    } else {
        IrqData::None
    };
    d.set_irqs(IrqSet {
        index: hdr.index,
        count: hdr.count,
        action,
        data,
    })
}
