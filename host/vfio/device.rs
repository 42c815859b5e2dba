// SPDX-License-Identifier: GPL-2.0

//! A vfio device whose `vfio_device_ops` come from the [`VfioOps`] trait.
//!
//! The C `struct vfio_device` is allocated by the vfio core (`_vfio_alloc_device`) with room
//! for a [`Container`]: the C struct first, then the Rust driver data, pin-initialised in
//! place (as `rust/kernel/drm/device.rs` does it). The vfio core owns the memory; the driver
//! data is dropped in the `release` callback, before the core frees it.
//!
//! Callbacks are not serialised by the mdev or vfio core, except `open_device` and
//! `close_device`, which run under the device set's lock. Everything else (`read`, `write`,
//! `ioctl`, `dma_unmap`, `request`) may run concurrently on several CPUs, so the driver data
//! is `Sync` and locks its own state.

use super::{dma::Dma, eventfd::EventFd, region, uapi};
use core::{mem::offset_of, ptr, ptr::NonNull};
use kernel::{
    bindings,
    error::{from_err_ptr, to_result, VTABLE_DEFAULT_ERROR},
    ffi::{c_char, c_int, c_long, c_uint, c_ulong},
    new_mutex,
    prelude::*,
    sync::{Arc, Mutex},
    types::Opaque,
    uaccess::{UserPtr, UserSlice},
};
use zerocopy::{FromBytes, IntoBytes};

/// Largest single `read(2)`/`write(2)` on a region: a whole extended config space.
pub(crate) const MAX_RW: usize = 4096;

/// Accesses up to this size use a buffer on the stack: register accesses never allocate.
const SMALL_RW: usize = 64;

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

/// The callbacks of a vfio device. Every method is called with QEMU's (untrusted) input,
/// possibly on several CPUs at once (see the module documentation).
#[vtable]
pub(crate) trait VfioOps: Send + Sync + Sized + 'static {
    /// The device file was opened: power the device on. `dma` reaches the memory of the
    /// user (the guest) until [`VfioOps::close`]; pins taken through it must be gone by
    /// then. `vm` is the KVM VM the user bound to the device, if any (QEMU on KVM binds
    /// one, QEMU on TCG does not), for the duration of the call.
    fn open(&self, dma: Arc<Dma>, vm: Option<&super::kvm::Vm<'_>>) -> Result;
    /// The device file was closed: drop everything tied to the open (eventfds, pins).
    fn close(&self);
    /// Reads `buf.len()` (at most [`MAX_RW`]) bytes at offset `off` of region `index`;
    /// the range lies inside the region and the region is readable.
    fn read(&self, index: u32, off: u64, buf: &mut [u8]) -> Result;
    /// Writes `data` at offset `off` of region `index`; the range lies inside the region
    /// and the region is writable.
    fn write(&self, index: u32, off: u64, data: &[u8]) -> Result;
    /// Describes region `index`.
    fn region_info(&self, index: u32) -> Result<RegionInfo>;
    /// A `read`/`write` was refused before reaching the device: a bad position, size,
    /// region or permission.
    fn refused(&self);
    /// Returns `(count, VFIO_IRQ_INFO_* flags)` for interrupt `index`.
    fn irq_info(&self, index: u32) -> Result<(u32, u32)>;
    /// Applies a validated `VFIO_DEVICE_SET_IRQS`.
    fn set_irqs(&self, set: IrqSet) -> Result;
    /// `VFIO_DEVICE_RESET`.
    fn reset(&self) -> Result;
    /// The user unmapped `[iova, iova + len)`: drop every pin inside it before returning.
    fn dma_unmap(&self, _iova: u64, _len: u64) {
        build_error!(VTABLE_DEFAULT_ERROR)
    }
    /// The device is being removed while the user holds it open: ask the user to let go.
    /// `count` numbers the requests of this removal, from 0.
    fn request(&self, _count: u32) {
        build_error!(VTABLE_DEFAULT_ERROR)
    }
}

/// The memory the vfio core allocates for one device.
#[repr(C)]
pub(super) struct Container<T> {
    vdev: Opaque<bindings::vfio_device>,
    /// The guest-memory handle of the current open; `None` while closed. Only touched by
    /// `open_device` and `close_device`, which the vfio core serialises.
    dma: Mutex<Option<Arc<Dma>>>,
    data: T,
}

impl<T: VfioOps> Container<T> {
    /// Allocates a vfio device for `dev` and initialises the driver data in place.
    ///
    /// # Safety
    ///
    /// `dev` must be a live device that outlives the returned vfio device's registration.
    pub(super) unsafe fn create(
        dev: *mut bindings::device,
        init: impl PinInit<T, Error>,
    ) -> Result<NonNull<bindings::vfio_device>> {
        const { assert!(offset_of!(Container<T>, vdev) == 0) };
        // `kvzalloc` aligns to at least `ARCH_KMALLOC_MINALIGN`.
        const { assert!(align_of::<Container<T>>() <= bindings::ARCH_KMALLOC_MINALIGN) };
        // Until the data is initialised, `release` must not drop it.
        let alloc_ops = bindings::vfio_device_ops {
            release: None,
            ..Self::OPS
        };
        // SAFETY: `dev` is live by the caller's contract; the size covers the container with
        // the `vfio_device` at offset 0, as `vfio_alloc_device()` requires; `alloc_ops`
        // outlives every use of it (replaced below, or the device is put before return).
        let raw = from_err_ptr(unsafe {
            bindings::_vfio_alloc_device(size_of::<Self>(), dev, &alloc_ops)
        })?;
        let raw = NonNull::new(raw).ok_or(ENOMEM)?;
        let c = raw.as_ptr().cast::<Self>();
        // SAFETY: `c` points to `size_of::<Self>()` zeroed bytes that nobody else sees yet
        // and that do not move until `release`.
        let Ok(()) = unsafe { new_mutex!(None).__pinned_init(&raw mut (*c).dma) };
        // SAFETY: as above, for the `data` field.
        if let Err(e) = unsafe { init.__pinned_init(&raw mut (*c).data) } {
            // SAFETY: `dma` was initialised just above and nothing else uses it; the
            // allocation succeeded and we own its only reference; with `release` unset the
            // core frees it without touching the fields.
            unsafe {
                ptr::drop_in_place(&raw mut (*c).dma);
                bindings::vfio_put_device(raw.as_ptr());
            }
            return Err(e);
        }
        // SAFETY: the device is still private to this function.
        unsafe { (*raw.as_ptr()).ops = const { &Self::OPS } };
        Ok(raw)
    }

    /// # Safety
    ///
    /// `vdev` must be a `vfio_device` made by [`Container::create`] for this `T`, still
    /// alive for `'a`, whose data was initialised (true from `create`'s return to
    /// `release`).
    pub(super) unsafe fn data<'a>(vdev: *mut bindings::vfio_device) -> &'a T {
        let c = vdev.cast::<Self>();
        // SAFETY: by the function contract `c` is a live container with initialised data.
        unsafe { &(*c).data }
    }

    /// # Safety
    ///
    /// As for [`Self::data`].
    unsafe fn dma_slot<'a>(vdev: *mut bindings::vfio_device) -> &'a Mutex<Option<Arc<Dma>>> {
        let c = vdev.cast::<Self>();
        // SAFETY: by the function contract `c` is a live container with initialised fields.
        unsafe { &(*c).dma }
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
        dma_unmap: if T::HAS_DMA_UNMAP {
            Some(Self::dma_unmap)
        } else {
            None
        },
        request: if T::HAS_REQUEST {
            Some(Self::request)
        } else {
            None
        },
        // An emulated device: its DMA goes through the vfio core's pinning, with whichever
        // backend (iommufd or the legacy container) the user chose, as kvmgt and the
        // mdev samples do it.
        #[cfg(CONFIG_IOMMUFD)]
        bind_iommufd: Some(bindings::vfio_iommufd_emulated_bind),
        #[cfg(CONFIG_IOMMUFD)]
        unbind_iommufd: Some(bindings::vfio_iommufd_emulated_unbind),
        #[cfg(CONFIG_IOMMUFD)]
        attach_ioas: Some(bindings::vfio_iommufd_emulated_attach_ioas),
        #[cfg(CONFIG_IOMMUFD)]
        detach_ioas: Some(bindings::vfio_iommufd_emulated_detach_ioas),
        // SAFETY: `vfio_device_ops` is plain old data; all-zero means "no callback".
        ..unsafe { core::mem::zeroed() }
    };

    /// # Safety
    ///
    /// Called by the vfio core, once, when the last reference goes.
    unsafe extern "C" fn release(vdev: *mut bindings::vfio_device) {
        let c = vdev.cast::<Self>();
        // SAFETY: the core calls `release` once, before freeing the memory; both fields were
        // initialised in `create` (`release` is only set once they are).
        unsafe {
            ptr::drop_in_place(&raw mut (*c).data);
            ptr::drop_in_place(&raw mut (*c).dma);
        }
    }

    /// # Safety
    ///
    /// Called by the vfio core on a live device made by [`Self::create`], under the device
    /// set's lock.
    unsafe extern "C" fn open_device(vdev: *mut bindings::vfio_device) -> c_int {
        let r = (|| -> Result {
            // SAFETY: the core only calls ops on a live device of ours.
            let (d, slot) = unsafe { (Self::data(vdev), Self::dma_slot(vdev)) };
            // SAFETY: `vdev` is being opened; `Dma::close` below runs before it is closed.
            let dma = Arc::pin_init(unsafe { Dma::new(vdev) }, GFP_KERNEL)?;
            // SAFETY: `vdev` is live and being opened: the vfio core set its `kvm` before
            // this call and keeps the reference until after `close_device`.
            let vm = unsafe { super::kvm::Vm::of_device(vdev) };
            d.open(dma.clone(), vm.as_ref())
                .inspect_err(|_| dma.close())?;
            *slot.lock() = Some(dma);
            Ok(())
        })();
        r.map_or_else(|e| e.to_errno(), |()| 0)
    }

    /// # Safety
    ///
    /// Called by the vfio core on a live device made by [`Self::create`], under the device
    /// set's lock.
    unsafe extern "C" fn close_device(vdev: *mut bindings::vfio_device) {
        // SAFETY: as in `open_device`.
        let (d, slot) = unsafe { (Self::data(vdev), Self::dma_slot(vdev)) };
        d.close();
        // Whatever the driver still holds can no longer reach the device. (The lock is
        // released before `close` waits for calls in flight.)
        let dma = slot.lock().take();
        if let Some(dma) = dma {
            dma.close();
        }
    }

    /// Common part of `read` and `write`: decodes the file position into a region and an
    /// offset, checks them, gives `op` a kernel buffer of `count` bytes, and advances the
    /// position.
    ///
    /// # Safety
    ///
    /// `vdev` as in [`Self::data`]; `ppos` valid for reads and writes.
    unsafe fn rw(
        vdev: *mut bindings::vfio_device,
        count: usize,
        ppos: *mut bindings::loff_t,
        write: bool,
        op: impl FnOnce(&T, region::Access, &mut [u8]) -> Result,
    ) -> isize {
        let r = (|| -> Result<isize> {
            // SAFETY: by the function contract.
            let d = unsafe { Self::data(vdev) };
            // SAFETY: by the function contract.
            let pos = u64::try_from(unsafe { *ppos }).map_err(|_| {
                d.refused();
                EINVAL
            })?;
            if count > MAX_RW {
                d.refused();
                return Err(EINVAL);
            }
            let a = region::decode(pos, count, write, |i| d.region_info(i))
                .inspect_err(|_| d.refused())?;
            let mut small = [0u8; SMALL_RW];
            let mut big = KVec::new();
            let buf = match small.get_mut(..count) {
                Some(b) => b,
                None => {
                    big.extend_with(count, 0u8, GFP_KERNEL)?;
                    &mut big[..]
                }
            };
            op(d, a, buf)?;
            // `decode` checked `pos + count` against the region's end, which lies below
            // 2^48 (an index below `uapi::region::NUM` shifted by `OFFSET_SHIFT`), so the
            // new position fits in a non-negative `loff_t`.
            let end = pos + count as u64;
            // SAFETY: `ppos` is valid by the function contract.
            unsafe { *ppos = end as bindings::loff_t };
            Ok(count as isize)
        })();
        r.unwrap_or_else(|e| e.to_errno() as isize)
    }

    /// # Safety
    ///
    /// Called by the vfio core on a live device made by [`Self::create`], with the
    /// pointers of the `vfio_device_ops` contract.
    unsafe extern "C" fn read(
        vdev: *mut bindings::vfio_device,
        ubuf: *mut c_char,
        count: usize,
        ppos: *mut bindings::loff_t,
    ) -> isize {
        // SAFETY: the core passes its live device and a valid `ppos`.
        unsafe {
            Self::rw(vdev, count, ppos, false, |d, a, buf| {
                d.read(a.index, a.off, buf)?;
                UserSlice::new(UserPtr::from_ptr(ubuf.cast()), count)
                    .writer()
                    .write_slice(buf)
            })
        }
    }

    /// # Safety
    ///
    /// Called by the vfio core on a live device made by [`Self::create`], with the
    /// pointers of the `vfio_device_ops` contract.
    unsafe extern "C" fn write(
        vdev: *mut bindings::vfio_device,
        ubuf: *const c_char,
        count: usize,
        ppos: *mut bindings::loff_t,
    ) -> isize {
        // SAFETY: the core passes its live device and a valid `ppos`.
        unsafe {
            Self::rw(vdev, count, ppos, true, |d, a, buf| {
                // One copy from the user; the driver only ever sees this kernel buffer.
                UserSlice::new(UserPtr::from_ptr(ubuf.cast_mut().cast()), count)
                    .reader()
                    .read_slice(buf)?;
                d.write(a.index, a.off, buf)
            })
        }
    }

    /// # Safety
    ///
    /// Called by the vfio core on a live device made by [`Self::create`], with the
    /// pointers of the `vfio_device_ops` contract.
    unsafe extern "C" fn region_info(
        vdev: *mut bindings::vfio_device,
        info: *mut bindings::vfio_region_info,
        _caps: *mut bindings::vfio_info_cap,
    ) -> c_int {
        // SAFETY: the core passes its live device.
        let d = unsafe { Self::data(vdev) };
        // SAFETY: the core passes a kernel copy of the user's struct, valid for the call.
        let info = unsafe { &mut *info };
        match d.region_info(info.index) {
            Ok(r) => {
                info.offset = region::offset(info.index);
                info.size = r.size;
                info.flags = r.flags;
                0
            }
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// Called by the vfio core on a live, open device made by [`Self::create`].
    unsafe extern "C" fn dma_unmap(vdev: *mut bindings::vfio_device, iova: u64, len: u64) {
        // SAFETY: the core passes its live device.
        unsafe { Self::data(vdev) }.dma_unmap(iova, len);
    }

    /// # Safety
    ///
    /// Called by the vfio core on a live device made by [`Self::create`] while it waits
    /// for the users of a device being unregistered.
    unsafe extern "C" fn request(vdev: *mut bindings::vfio_device, count: c_uint) {
        // SAFETY: the core passes its live device.
        unsafe { Self::data(vdev) }.request(count);
    }

    /// # Safety
    ///
    /// Called by the vfio core on a live device made by [`Self::create`], with the
    /// pointers of the `vfio_device_ops` contract.
    unsafe extern "C" fn ioctl(
        vdev: *mut bindings::vfio_device,
        cmd: c_uint,
        arg: c_ulong,
    ) -> c_long {
        // SAFETY: the core passes its live device.
        let d = unsafe { Self::data(vdev) };
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

/// The one action a `VFIO_DEVICE_SET_IRQS` request names; none or several is an error.
fn irq_action(flags: u32) -> Result<IrqAction> {
    match flags & (uapi::SET_ACTION_MASK | uapi::SET_ACTION_UNMASK | uapi::SET_ACTION_TRIGGER) {
        uapi::SET_ACTION_MASK => Ok(IrqAction::Mask),
        uapi::SET_ACTION_UNMASK => Ok(IrqAction::Unmask),
        uapi::SET_ACTION_TRIGGER => Ok(IrqAction::Trigger),
        _ => Err(EINVAL),
    }
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
    // known flag bits and that argsz covers the data; not that exactly one action is named.
    to_result(unsafe {
        bindings::vfio_set_irqs_validate_and_prepare(
            &mut c_hdr,
            count as c_int,
            uapi::irq::NUM as c_int,
            &mut data_size,
        )
    })?;
    let action = irq_action(hdr.flags)?;
    // `data_size` is `count * 4` at most, and `count` is at most this device's vectors (1).
    let mut bytes = [0u8; 4];
    let bytes = bytes.get_mut(..data_size).ok_or(EINVAL)?;
    if !bytes.is_empty() {
        let data_ptr = user.wrapping_byte_add(raw.len());
        UserSlice::new(data_ptr, bytes.len())
            .reader()
            .read_slice(bytes)?;
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

#[kunit_tests(gvtpv_host_vfio_irqset)]
mod tests {
    use super::*;

    #[test]
    fn exactly_one_action() {
        assert_eq!(irq_action(uapi::SET_ACTION_MASK), Ok(IrqAction::Mask));
        assert_eq!(
            irq_action(uapi::SET_ACTION_TRIGGER | uapi::SET_DATA_EVENTFD),
            Ok(IrqAction::Trigger)
        );
        assert_eq!(irq_action(uapi::SET_DATA_NONE), Err(EINVAL));
        assert_eq!(
            irq_action(uapi::SET_ACTION_MASK | uapi::SET_ACTION_TRIGGER),
            Err(EINVAL)
        );
        assert_eq!(
            irq_action(uapi::SET_ACTION_MASK | uapi::SET_ACTION_UNMASK | uapi::SET_ACTION_TRIGGER),
            Err(EINVAL)
        );
    }
}
