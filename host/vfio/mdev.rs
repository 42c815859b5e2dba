// SPDX-License-Identifier: GPL-2.0

//! An mdev parent with its types and driver, on a faux device.
//!
//! [`Registration`] owns, in this order: the faux parent device, the `mdev_driver`, the
//! `mdev_parent` and the `mdev_type`s. Creating an mdev (`mdevctl start`) calls
//! [`MdevParent::probe`], which builds the vGPU that becomes a vfio device.

use super::device::{Container, VfioOps};
use core::{fmt, ptr};
use kernel::{
    bindings, device, faux,
    error::to_result,
    ffi::{c_char, c_int, c_uint},
    prelude::*,
    sync::Arc,
    types::Opaque,
    ThisModule,
};

/// One mdev type as the parent offers it.
pub(crate) struct MdevType {
    /// Directory name under `mdev_supported_types` (`sysfs_name`).
    pub(crate) sysfs_name: &'static CStr,
    /// The `name` attribute (`pretty_name`).
    pub(crate) pretty_name: &'static CStr,
}

/// The driver side of an mdev parent.
pub(crate) trait MdevParent: Send + Sync + Sized + 'static {
    /// The per-mdev object, which is also the vfio device.
    type Device: VfioOps;

    /// The types this parent offers, in a fixed order; `probe` gets an index into it.
    const TYPES: &'static [MdevType];

    /// Creates the device for a new mdev of type `type_index` named `dev`.
    fn probe(&self, type_index: usize, dev: &device::Device) -> Result<Arc<Self::Device>>;

    /// The mdev was removed; its device is already unregistered from vfio.
    fn remove(&self, dev: &Self::Device);

    /// How many more mdevs of `type_index` can be created now.
    fn available(&self, type_index: usize) -> u32;

    /// Writes the `description` attribute of `type_index`.
    fn describe(&self, type_index: usize, out: &mut dyn fmt::Write) -> fmt::Result;
}

/// A registered mdev parent.
///
/// # Invariants
///
/// While `registered` is true, `driver` and `parent` are registered with the mdev core and
/// `types`/`type_ptrs` are the arrays it was given; none of them moves (the object is
/// pinned and the vectors are never resized).
#[pin_data(PinnedDrop)]
pub(crate) struct Registration<T: MdevParent> {
    #[pin]
    driver: Opaque<bindings::mdev_driver>,
    #[pin]
    parent: Opaque<bindings::mdev_parent>,
    types: KVec<Opaque<bindings::mdev_type>>,
    type_ptrs: KVec<*mut bindings::mdev_type>,
    registered: bool,
    #[pin]
    data: T,
    // Dropped after `PinnedDrop::drop` unregistered the parent that hangs off it.
    faux: faux::Registration,
}

// SAFETY: the raw pointers only point into `types`, owned by `self`; the mdev core
// serialises its callbacks, and `T` is `Send + Sync`.
unsafe impl<T: MdevParent> Send for Registration<T> {}
// SAFETY: as above; `&self` only hands out `&T`.
unsafe impl<T: MdevParent> Sync for Registration<T> {}

impl<T: MdevParent> Registration<T> {
    /// Creates the faux parent device `name`, and registers the mdev driver and parent.
    ///
    /// # Errors
    ///
    /// Allocation failure or the mdev core's error; nothing stays registered then.
    pub(crate) fn new(
        name: &'static CStr,
        module: &'static ThisModule,
        data: impl PinInit<T, Error>,
    ) -> Result<Pin<KBox<Self>>> {
        let faux = faux::Registration::new(name, None)?;
        let mut types = KVec::with_capacity(T::TYPES.len(), GFP_KERNEL)?;
        for t in T::TYPES {
            let mut raw: bindings::mdev_type = pin_init::zeroed();
            raw.sysfs_name = t.sysfs_name.as_char_ptr();
            raw.pretty_name = t.pretty_name.as_char_ptr();
            types.push(Opaque::new(raw), GFP_KERNEL)?;
        }
        let mut type_ptrs = KVec::with_capacity(types.len(), GFP_KERNEL)?;
        for t in types.iter() {
            type_ptrs.push(t.get(), GFP_KERNEL)?;
        }
        let mut driver: bindings::mdev_driver = pin_init::zeroed();
        driver.device_api = c"vfio-pci".as_char_ptr();
        driver.probe = Some(Self::probe);
        driver.remove = Some(Self::remove);
        driver.get_available = Some(Self::get_available);
        driver.show_description = Some(Self::show_description);
        driver.driver.name = name.as_char_ptr();
        driver.driver.owner = module.as_ptr();

        let mut this = KBox::pin_init(
            try_pin_init!(Self {
                driver: Opaque::new(driver),
                parent: Opaque::new(pin_init::zeroed()),
                types,
                type_ptrs,
                registered: false,
                data <- data,
                faux,
            }),
            GFP_KERNEL,
        )?;
        // SAFETY: `this` is pinned; the C structs live as long as it and do not move.
        unsafe { this.as_mut().register() }?;
        Ok(this)
    }

    /// # Safety
    ///
    /// Called once, on a pinned `self`.
    unsafe fn register(self: Pin<&mut Self>) -> Result {
        // SAFETY: we do not move out of `this`.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: `driver` is fully initialised and lives as long as `this`.
        to_result(unsafe { bindings::mdev_register_driver(this.driver.get()) })?;
        let dev: &device::Device = this.faux.as_ref();
        let dev_raw = ptr::from_ref(dev).cast_mut().cast::<bindings::device>();
        // SAFETY: `Device` is a transparent wrapper of `struct device`; the faux device,
        // the driver and the type arrays outlive the parent (unregistered in drop first).
        let ret = unsafe {
            bindings::mdev_register_parent(
                this.parent.get(),
                dev_raw,
                this.driver.get(),
                this.type_ptrs.as_mut_ptr(),
                this.type_ptrs.len() as c_uint,
            )
        };
        if let Err(e) = to_result(ret) {
            // SAFETY: registered just above.
            unsafe { bindings::mdev_unregister_driver(this.driver.get()) };
            return Err(e);
        }
        // INVARIANT: both are registered now.
        this.registered = true;
        Ok(())
    }

    /// # Safety
    ///
    /// `parent` must be the `mdev_parent` of a live `Registration<T>`.
    unsafe fn from_parent<'a>(parent: *mut bindings::mdev_parent) -> &'a Self {
        // SAFETY: by the function contract `parent` is the `parent` field of a `Self`.
        unsafe { &*kernel::container_of!(Opaque::cast_from(parent), Self, parent) }
    }

    /// Recovers the registration and the type index of `mtype`.
    ///
    /// # Safety
    ///
    /// `mtype` must be one of the types of a live `Registration<T>`.
    unsafe fn from_type<'a>(mtype: *mut bindings::mdev_type) -> Option<(&'a Self, usize)> {
        // SAFETY: the mdev core sets `parent` on registration; the type is ours.
        let this = unsafe { Self::from_parent((*mtype).parent) };
        let idx = this.type_ptrs.iter().position(|&p| p == mtype)?;
        Some((this, idx))
    }

    /// # Safety
    ///
    /// Called by the mdev core with pointers to live objects of one of our types.
    unsafe extern "C" fn probe(mdev: *mut bindings::mdev_device) -> c_int {
        let r = (|| -> Result {
            // SAFETY: the mdev core passes a live mdev of one of our types.
            let (this, idx) = unsafe { Self::from_type((*mdev).type_) }.ok_or(EINVAL)?;
            // SAFETY: `mdev` is live for the call; `dev` is its embedded device.
            let dev_raw = unsafe { &raw mut (*mdev).dev };
            // SAFETY: the mdev core holds a reference on the device during probe.
            let dev = unsafe { device::Device::from_raw(dev_raw) };
            let data = this.data.probe(idx, dev)?;
            // SAFETY: the vfio device is unregistered in `remove`, before the mdev goes.
            let vdev = unsafe { Container::alloc(dev_raw, data) }?;
            // SAFETY: `vdev` was just allocated and is fully initialised.
            if let Err(e) = to_result(unsafe { bindings::vfio_register_emulated_iommu_dev(vdev) }) {
                // SAFETY: drops our reference; `release` drops the Rust object.
                unsafe { bindings::vfio_put_device(vdev) };
                return Err(e);
            }
            // SAFETY: `dev_raw` is live; the driver data is ours while bound.
            unsafe { bindings::dev_set_drvdata(dev_raw, vdev.cast()) };
            Ok(())
        })();
        r.map_or_else(|e| e.to_errno(), |()| 0)
    }

    /// # Safety
    ///
    /// Called by the mdev core with pointers to live objects of one of our types.
    unsafe extern "C" fn remove(mdev: *mut bindings::mdev_device) {
        // SAFETY: the mdev core passes a live, probed mdev; its drvdata is our vfio device.
        let vdev = unsafe { bindings::dev_get_drvdata(&raw mut (*mdev).dev) }.cast::<bindings::vfio_device>();
        if vdev.is_null() {
            return;
        }
        // SAFETY: registered in `probe`; this waits for all users of the device file.
        unsafe { bindings::vfio_unregister_group_dev(vdev) };
        // SAFETY: the mdev is one of our types.
        if let Some((this, _)) = unsafe { Self::from_type((*mdev).type_) } {
            // SAFETY: `vdev` is still alive: we hold the reference from `probe`.
            if let Some(d) = unsafe { Container::<T::Device>::data_ref(vdev) } {
                this.data.remove(d);
            }
        }
        // SAFETY: drops the reference taken at allocation.
        unsafe { bindings::vfio_put_device(vdev) };
    }

    /// # Safety
    ///
    /// Called by the mdev core with pointers to live objects of one of our types.
    unsafe extern "C" fn get_available(mtype: *mut bindings::mdev_type) -> c_uint {
        // SAFETY: the mdev core passes one of our types.
        match unsafe { Self::from_type(mtype) } {
            Some((this, idx)) => this.data.available(idx),
            None => 0,
        }
    }

    /// # Safety
    ///
    /// Called by the mdev core with pointers to live objects of one of our types.
    unsafe extern "C" fn show_description(mtype: *mut bindings::mdev_type, buf: *mut c_char) -> isize {
        // SAFETY: the mdev core passes one of our types.
        let Some((this, idx)) = (unsafe { Self::from_type(mtype) }) else {
            return EINVAL.to_errno() as isize;
        };
        let mut w = PageWriter { buf: [0; 256], len: 0 };
        if this.data.describe(idx, &mut w).is_err() {
            return EINVAL.to_errno() as isize;
        }
        // SAFETY: sysfs passes a PAGE_SIZE buffer; `w.len` <= 256.
        unsafe { ptr::copy_nonoverlapping(w.buf.as_ptr(), buf.cast::<u8>(), w.len) };
        w.len as isize
    }
}

/// A bounded text buffer for sysfs attributes.
struct PageWriter {
    buf: [u8; 256],
    len: usize,
}

impl fmt::Write for PageWriter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len.checked_add(s.len()).ok_or(fmt::Error)?;
        self.buf.get_mut(self.len..end).ok_or(fmt::Error)?.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[pinned_drop]
impl<T: MdevParent> PinnedDrop for Registration<T> {
    fn drop(self: Pin<&mut Self>) {
        if self.registered {
            // SAFETY: registered by the type invariant; unregistering the parent removes
            // every mdev (calling `remove`) before it returns.
            unsafe {
                bindings::mdev_unregister_parent(self.parent.get());
                bindings::mdev_unregister_driver(self.driver.get());
            }
        }
    }
}
