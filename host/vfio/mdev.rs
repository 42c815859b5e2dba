// SPDX-License-Identifier: GPL-2.0

//! An mdev parent with its types and driver, on a faux device.
//!
//! [`Registration`] owns a device class named after the parent, one device of that class
//! (the mdev parent, as `mtty` does it: the mdev core names types `<class>-<type>`), the
//! `mdev_driver`, the `mdev_parent` and the `mdev_type`s. Creating an mdev (`mdevctl start`) calls
//! [`MdevParent::probe`], which builds the vGPU that becomes a vfio device.

use super::device::{Container, VfioOps};
use core::{fmt, ptr, ptr::NonNull};
use kernel::{
    bindings, device,
    error::to_result,
    ffi::{c_char, c_int, c_uint},
    prelude::*,
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

    /// Returns the initialiser of the device for a new mdev of type `type_index` named
    /// `dev`; it runs in place, inside the vfio device's allocation. Whatever the device
    /// holds goes back when it is dropped: when the mdev is removed and its last user is
    /// gone, or at once if creating it fails.
    fn probe(
        &self,
        type_index: usize,
        dev: &device::Device,
    ) -> Result<impl PinInit<Self::Device, Error>>;

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
    class: Opaque<bindings::class>,
    #[pin]
    driver: Opaque<bindings::mdev_driver>,
    #[pin]
    parent: Opaque<bindings::mdev_parent>,
    types: KVec<Opaque<bindings::mdev_type>>,
    type_ptrs: KVec<*mut bindings::mdev_type>,
    /// The parent device; `Some` while registered.
    dev: Option<ClassDevice>,
    registered: bool,
    #[pin]
    data: T,
}

/// A device of a class, allocated on its own: its memory goes with its last reference
/// (sysfs users and mdev types hold some), not with the registration.
///
/// # Invariants
///
/// `self.0` is a `device_add`ed device on which we own the initial reference.
struct ClassDevice(NonNull<bindings::device>);

impl ClassDevice {
    /// Creates and adds the device `name` of `class`.
    ///
    /// # Safety
    ///
    /// `class` must be registered and stay so until the returned object is dropped.
    unsafe fn new(class: *mut bindings::class, name: &CStr) -> Result<Self> {
        let b = KBox::new(Opaque::<bindings::device>::zeroed(), GFP_KERNEL)?;
        let raw = KBox::into_raw(b).cast::<bindings::device>();
        // SAFETY: `raw` is a zeroed, exclusively owned `struct device`; after
        // `device_initialize` its memory is released by `release` on the last put.
        unsafe {
            bindings::device_initialize(raw);
            (*raw).class = class;
            (*raw).release = Some(Self::release);
        }
        // SAFETY: `raw` is initialised; "%s" with a NUL-terminated string.
        let ret = unsafe { bindings::dev_set_name(raw, c"%s".as_char_ptr(), name.as_char_ptr()) };
        let ret = if ret == 0 {
            // SAFETY: as above; on failure the put below frees it through `release`.
            unsafe { bindings::device_add(raw) }
        } else {
            ret
        };
        if ret != 0 {
            // SAFETY: drops the initial reference.
            unsafe { bindings::put_device(raw) };
            return Err(Error::from_errno(ret));
        }
        // INVARIANT: added, and we own the initial reference.
        NonNull::new(raw).map(Self).ok_or(EINVAL)
    }

    /// # Safety
    ///
    /// Called by the driver core once, on the last reference of a device made by `new`.
    unsafe extern "C" fn release(dev: *mut bindings::device) {
        // SAFETY: the device was allocated as a `KBox<Opaque<device>>` in `new`.
        drop(unsafe { KBox::from_raw(dev.cast::<Opaque<bindings::device>>()) });
    }
}

impl Drop for ClassDevice {
    fn drop(&mut self) {
        // SAFETY: by the type invariant: deletes the device and drops our reference.
        unsafe { bindings::device_unregister(self.0.as_ptr()) };
    }
}

// SAFETY: the raw pointers only point into `types`, owned by `self` and never changed
// after registration, so moving the owner to another thread is fine; `T` is `Send`.
unsafe impl<T: MdevParent> Send for Registration<T> {}
// SAFETY: the mdev core does not serialise its callbacks (probes, removals and sysfs reads
// of different mdevs and types run concurrently); they only read the immutable type
// arrays and call `&T` methods, and `T` is `Sync`.
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

        let mut class: bindings::class = pin_init::zeroed();
        class.name = name.as_char_ptr();

        let mut this = KBox::pin_init(
            try_pin_init!(Self {
                class: Opaque::new(class),
                driver: Opaque::new(driver),
                parent: Opaque::new(pin_init::zeroed()),
                types,
                type_ptrs,
                dev: None,
                registered: false,
                data <- data,
            }),
            GFP_KERNEL,
        )?;
        // SAFETY: `this` is pinned; the C structs live as long as it and do not move.
        unsafe { this.as_mut().register(name) }?;
        Ok(this)
    }

    /// # Safety
    ///
    /// Called once, on a pinned `self`.
    unsafe fn register(self: Pin<&mut Self>, name: &CStr) -> Result {
        // SAFETY: we do not move out of `this`.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: the class is initialised and pinned; unregistered in drop, last.
        to_result(unsafe { bindings::class_register(this.class.get()) })?;
        // SAFETY: the class was just registered and outlives `dev` (see drop).
        let dev = match unsafe { ClassDevice::new(this.class.get(), name) } {
            Ok(d) => d,
            Err(e) => {
                // SAFETY: registered above, nothing hangs off it.
                unsafe { bindings::class_unregister(this.class.get()) };
                return Err(e);
            }
        };
        let dev_raw = dev.0.as_ptr();
        this.dev = Some(dev);
        // SAFETY: `driver` is fully initialised and lives as long as `this`.
        if let Err(e) = to_result(unsafe { bindings::mdev_register_driver(this.driver.get()) }) {
            this.dev = None;
            // SAFETY: as above.
            unsafe { bindings::class_unregister(this.class.get()) };
            return Err(e);
        }
        // SAFETY: the device, the driver and the type arrays outlive the parent, which
        // drop unregisters first.
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
            this.dev = None;
            // SAFETY: registered just above.
            unsafe {
                bindings::mdev_unregister_driver(this.driver.get());
                bindings::class_unregister(this.class.get());
            }
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
            let init = this.data.probe(idx, dev)?;
            // SAFETY: the vfio device is unregistered in `remove`, before the mdev goes.
            let vdev = unsafe { Container::<T::Device>::create(dev_raw, init) }?.as_ptr();
            // SAFETY: `vdev` was just made and its data initialised.
            if let Err(e) = to_result(unsafe { bindings::vfio_register_emulated_iommu_dev(vdev) }) {
                // SAFETY: drops our only reference; `release` drops the driver data, which
                // gives back what `probe` took.
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
        let vdev = unsafe { bindings::dev_get_drvdata(&raw mut (*mdev).dev) }
            .cast::<bindings::vfio_device>();
        if vdev.is_null() {
            return;
        }
        // SAFETY: registered in `probe`. This waits until the user closes the device,
        // calling the `request` callback meanwhile to ask the user to let go.
        unsafe { bindings::vfio_unregister_group_dev(vdev) };
        // SAFETY: drops the reference taken at allocation; `release` drops the driver data
        // once the last reference (ours, usually) is gone.
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
    unsafe extern "C" fn show_description(
        mtype: *mut bindings::mdev_type,
        buf: *mut c_char,
    ) -> isize {
        // SAFETY: the mdev core passes one of our types.
        let Some((this, idx)) = (unsafe { Self::from_type(mtype) }) else {
            return EINVAL.to_errno() as isize;
        };
        let mut w = PageWriter {
            buf: [0; 256],
            len: 0,
        };
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
        self.buf
            .get_mut(self.len..end)
            .ok_or(fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[pinned_drop]
impl<T: MdevParent> PinnedDrop for Registration<T> {
    fn drop(self: Pin<&mut Self>) {
        if !self.registered {
            return;
        }
        // SAFETY: we do not move out of `this`.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: registered by the type invariant; unregistering the parent removes
        // every mdev (calling `remove`) before it returns.
        unsafe { bindings::mdev_unregister_parent(this.parent.get()) };
        // The parent device goes before its class, the driver after its last device.
        this.dev = None;
        // SAFETY: registered by the type invariant, no device or parent uses them now.
        unsafe {
            bindings::mdev_unregister_driver(this.driver.get());
            bindings::class_unregister(this.class.get());
        }
    }
}
