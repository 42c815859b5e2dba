// SPDX-License-Identifier: GPL-2.0

//! KVM write tracking: the VM of an open vfio device ([`Vm`]), and a page-track notifier
//! ([`KvmTrack`]) whose `track_write` and `track_remove_region` callbacks call a Rust
//! [`TrackHandler`], with `kvm_write_track_add_gfn`/`remove_gfn` on top (as kvmgt does it,
//! `gvt/kvmgt.c: intel_vgpu_open_device`, `intel_gvt_page_track_add`).
//!
//! KVM (`arch/x86/kvm/mmu/page_track.c`, Linux 7.2; every function used is
//! `EXPORT_SYMBOL_GPL`):
//!
//! - `kvm_page_track_register_notifier` must run in the VM's process (it refuses with
//!   `ESRCH` when `kvm->mm != current->mm`): call [`KvmTrack::register`] from
//!   `open_device`, which runs in the user's ioctl. It takes a reference on the VM, which
//!   the unregistration drops, so a registered [`KvmTrack`] outlives the open safely.
//! - `track_write(gpa, new, bytes)` runs in a vCPU thread after KVM emulated a guest write
//!   to guest RAM (for every emulated write, not only to tracked frames: the handler
//!   filters), under the notifier head's srcu and the vCPU's `kvm->srcu`; it may sleep.
//!   `track_remove_region(gfn, pages)` runs when a memslot is deleted, with
//!   `kvm->slots_lock` held.
//! - `kvm_write_track_add_gfn`/`remove_gfn` take `kvm->srcu` and `kvm->mmu_lock`
//!   themselves; they fail with `EINVAL` for a frame in no memslot. Removing a frame more
//!   often than it was added `WARN`s in KVM: the caller removes only what it added, and
//!   nothing of a region `track_remove_region` reported.
//! - `kvm_page_track_unregister_notifier` waits for callbacks in flight
//!   (`synchronize_srcu`): the last reference to a [`KvmTrack`] must be dropped with no
//!   lock held that the handler takes, and never from inside a callback.
//!
//! Without `CONFIG_KVM_EXTERNAL_WRITE_TRACKING` (a hidden symbol that only `select` sets;
//! our kernel patch selects it from `CONFIG_GVTPV_HOST_SUPPORT`) the same API compiles to
//! a stub: [`Vm::of_device`] finds no VM, and the vGPU re-validates instead.

use core::{marker::PhantomData, ptr::NonNull};
use kernel::bindings;

/// What a write-tracking notifier calls.
pub(crate) trait TrackHandler: Send + Sync {
    /// The guest wrote `bytes` at guest physical address `gpa` (KVM already emulated the
    /// write). Runs in a vCPU thread; may sleep and take the vGPU's `ppgtt` lock.
    fn track_write(&self, gpa: u64, bytes: &[u8]);
    /// The memslot of frames `[gfn, gfn + pages)` is being deleted: their tracking is gone
    /// with it (never remove them).
    fn track_remove_region(&self, gfn: u64, pages: u64);
}

/// The VM a vfio device was opened for, borrowed for the open call.
///
/// # Invariants
///
/// `kvm` is a live VM on which the vfio core holds a reference for at least `'a`.
pub(crate) struct Vm<'a> {
    kvm: NonNull<bindings::kvm>,
    _open: PhantomData<&'a bindings::vfio_device>,
}

impl<'a> Vm<'a> {
    /// The VM of `vdev` (`vfio_device->kvm`), if the user bound one (QEMU on KVM does,
    /// QEMU on TCG does not). Always `None` without external write tracking.
    ///
    /// # Safety
    ///
    /// `vdev` must be a live vfio device that stays open for `'a`: inside `open_device`,
    /// the vfio core set `kvm` before the call and holds its reference until after
    /// `close_device`.
    pub(crate) unsafe fn of_device(vdev: *mut bindings::vfio_device) -> Option<Vm<'a>> {
        if !cfg!(CONFIG_KVM_EXTERNAL_WRITE_TRACKING) {
            return None;
        }
        // SAFETY: `vdev` is live by the function contract; `kvm` is only written by the vfio
        // core before `open_device` and after `close_device`.
        let kvm = unsafe { (*vdev).kvm };
        // INVARIANT: set by the vfio core with a reference it keeps while open.
        NonNull::new(kvm).map(|kvm| Vm {
            kvm,
            _open: PhantomData,
        })
    }
}

#[cfg(CONFIG_KVM_EXTERNAL_WRITE_TRACKING)]
pub(crate) use real::KvmTrack;
#[cfg(not(CONFIG_KVM_EXTERNAL_WRITE_TRACKING))]
pub(crate) use stub::KvmTrack;

#[cfg(CONFIG_KVM_EXTERNAL_WRITE_TRACKING)]
mod real {
    use super::{TrackHandler, Vm};
    use core::ptr::NonNull;
    use kernel::{
        bindings,
        error::to_result,
        ffi::{c_int, c_ulong},
        prelude::*,
        sync::Arc,
        types::Opaque,
    };

    /// A registered KVM page-track notifier that calls a [`TrackHandler`], and the write
    /// protection of guest frames.
    ///
    /// # Invariants
    ///
    /// While `kvm` is `Some`, `node` is registered with that VM (the registration holds a
    /// reference on it) and has not moved since; `handler` is initialised before `node`
    /// and dropped after the unregistration.
    #[pin_data(PinnedDrop)]
    pub(crate) struct KvmTrack {
        handler: Arc<dyn TrackHandler>,
        /// `None` for a node that was never registered (KUnit).
        kvm: Option<NonNull<bindings::kvm>>,
        #[pin]
        node: Opaque<bindings::kvm_page_track_notifier_node>,
    }

    // SAFETY: `kvm` is only used for KVM calls that may come from any thread and lock
    // internally; `node` is only touched by KVM (under its locks) after registration.
    unsafe impl Send for KvmTrack {}
    // SAFETY: as above; `&self` methods only call into KVM.
    unsafe impl Sync for KvmTrack {}

    impl KvmTrack {
        /// Registers a notifier with `vm` that calls `handler`.
        ///
        /// Must run in the VM's process (`open_device`), with no lock held that `handler`
        /// takes: callbacks may start before this returns.
        ///
        /// # Errors
        ///
        /// `ENOMEM`; KVM's error: `ESRCH` from another process, `EOPNOTSUPP` for a TDX VM,
        /// `ENOMEM` enabling write tracking.
        pub(crate) fn register(vm: &Vm<'_>, handler: Arc<dyn TrackHandler>) -> Result<Arc<Self>> {
            let vm = vm.kvm;
            Arc::pin_init(
                try_pin_init!(Self {
                    handler,
                    kvm: Some(vm),
                    node <- Opaque::try_ffi_init(move |n: *mut bindings::kvm_page_track_notifier_node| {
                        // SAFETY: `n` is valid for writes and nobody sees it yet.
                        unsafe { n.write(Self::callbacks()) };
                        // SAFETY: the VM is live (invariant of `Vm`); `n` is initialised and
                        // pinned inside the `Arc` from now on; `handler`, which the callbacks
                        // use, was initialised before this field.
                        to_result(unsafe { bindings::kvm_page_track_register_notifier(vm.as_ptr(), n) })
                    }),
                }? Error),
                GFP_KERNEL,
            )
        }

        /// A notifier that is not registered, for KUnit: its callbacks can be called by
        /// hand, and [`Self::add_gfn`] fails with `ENODEV`.
        #[cfg(CONFIG_KUNIT)]
        pub(crate) fn unregistered(handler: Arc<dyn TrackHandler>) -> Result<Arc<Self>> {
            Arc::pin_init(
                pin_init!(Self {
                    handler,
                    kvm: None,
                    // SAFETY: `n` is valid for writes and nobody sees it yet.
                    node <- Opaque::ffi_init(|n: *mut bindings::kvm_page_track_notifier_node| unsafe { n.write(Self::callbacks()) }),
                }),
                GFP_KERNEL,
            )
        }

        fn callbacks() -> bindings::kvm_page_track_notifier_node {
            bindings::kvm_page_track_notifier_node {
                track_write: Some(Self::track_write),
                track_remove_region: Some(Self::track_remove_region),
                ..Default::default()
            }
        }

        /// Write-protects guest frame `gfn`: guest writes to it trap and reach the handler.
        /// KVM counts: every successful add needs one [`Self::remove_gfn`].
        ///
        /// # Errors
        ///
        /// `EINVAL` for a frame in no memslot; `ENODEV` if not registered.
        pub(crate) fn add_gfn(&self, gfn: u64) -> Result {
            let kvm = self.kvm.ok_or(ENODEV)?;
            // SAFETY: registered, so `kvm` is live (type invariant); the function takes
            // `kvm->srcu` and `kvm->mmu_lock` itself.
            to_result(unsafe { bindings::kvm_write_track_add_gfn(kvm.as_ptr(), gfn) })
        }

        /// Ends one write protection of `gfn` taken by [`Self::add_gfn`].
        ///
        /// # Errors
        ///
        /// `EINVAL` for a frame in no memslot; `ENODEV` if not registered.
        pub(crate) fn remove_gfn(&self, gfn: u64) -> Result {
            let kvm = self.kvm.ok_or(ENODEV)?;
            // SAFETY: as in `add_gfn`.
            to_result(unsafe { bindings::kvm_write_track_remove_gfn(kvm.as_ptr(), gfn) })
        }

        /// # Safety
        ///
        /// `node` must be the `node` field of a live [`KvmTrack`].
        unsafe fn from_node<'a>(node: *mut bindings::kvm_page_track_notifier_node) -> &'a Self {
            // SAFETY: by the function contract `node` is the `node` field of a `Self`.
            unsafe { &*kernel::container_of!(Opaque::cast_from(node), Self, node) }
        }

        /// # Safety
        ///
        /// Called by KVM on a registered node with `bytes` readable bytes at `new`.
        unsafe extern "C" fn track_write(
            gpa: bindings::gpa_t,
            new: *const u8,
            bytes: c_int,
            node: *mut bindings::kvm_page_track_notifier_node,
        ) {
            let Ok(len) = usize::try_from(bytes) else {
                return;
            };
            if new.is_null() || len == 0 {
                return;
            }
            // SAFETY: KVM calls only while the node is registered, i.e. while its
            // `KvmTrack` is alive (unregistration waits for callbacks in flight).
            let this = unsafe { Self::from_node(node) };
            // SAFETY: KVM passes the `bytes` bytes it wrote, valid for the call.
            let data = unsafe { core::slice::from_raw_parts(new, len) };
            this.handler.track_write(gpa, data);
        }

        /// # Safety
        ///
        /// Called by KVM on a registered node.
        unsafe extern "C" fn track_remove_region(
            gfn: bindings::gfn_t,
            pages: c_ulong,
            node: *mut bindings::kvm_page_track_notifier_node,
        ) {
            // SAFETY: as in `track_write`.
            let this = unsafe { Self::from_node(node) };
            this.handler.track_remove_region(gfn, pages as u64);
        }
    }

    #[pinned_drop]
    impl PinnedDrop for KvmTrack {
        fn drop(self: Pin<&mut Self>) {
            if let Some(kvm) = self.kvm {
                // SAFETY: registered with `kvm` by the type invariant; this waits for the
                // callbacks in flight and drops the VM reference the registration took.
                unsafe {
                    bindings::kvm_page_track_unregister_notifier(kvm.as_ptr(), self.node.get())
                };
            }
        }
    }

    #[kunit_tests(gvtpv_host_kvm_track)]
    mod tests {
        use super::*;
        use kernel::{new_mutex, sync::Mutex};

        /// Records what the callbacks delivered.
        #[pin_data]
        struct Recorder {
            #[pin]
            seen: Mutex<KVec<(u64, KVec<u8>)>>,
            #[pin]
            regions: Mutex<KVec<(u64, u64)>>,
        }

        impl TrackHandler for Recorder {
            fn track_write(&self, gpa: u64, bytes: &[u8]) {
                let mut v = KVec::new();
                v.extend_from_slice(bytes, GFP_KERNEL).unwrap();
                self.seen.lock().push((gpa, v), GFP_KERNEL).unwrap();
            }
            fn track_remove_region(&self, gfn: u64, pages: u64) {
                self.regions.lock().push((gfn, pages), GFP_KERNEL).unwrap();
            }
        }

        fn recorder() -> Arc<Recorder> {
            Arc::pin_init(
                pin_init!(Recorder {
                    seen <- new_mutex!(KVec::new()),
                    regions <- new_mutex!(KVec::new()),
                }),
                GFP_KERNEL,
            )
            .unwrap()
        }

        #[test]
        fn trampolines_reach_the_handler() {
            let rec = recorder();
            let t = KvmTrack::unregistered(rec.clone()).unwrap();
            let node = t.node.get();
            let data = [1u8, 2, 3, 4, 5, 6, 7, 8];
            // SAFETY: `node` is the node of the live `t`; `data` outlives the calls.
            unsafe {
                let n = &*node;
                let w = n.track_write.unwrap();
                w(0x1234_5008, data.as_ptr(), 8, node);
                w(0x1234_5010, data.as_ptr(), 4, node);
                // Nonsense lengths never reach the handler.
                w(0x1234_5018, data.as_ptr(), -1, node);
                w(0x1234_5018, data.as_ptr(), 0, node);
                w(0x1234_5018, core::ptr::null(), 8, node);
                (n.track_remove_region.unwrap())(0x100, 0x200, node);
            }
            let seen = rec.seen.lock();
            assert_eq!(seen.len(), 2);
            assert_eq!(seen[0].0, 0x1234_5008);
            assert_eq!(&seen[0].1[..], &data[..]);
            assert_eq!(seen[1].0, 0x1234_5010);
            assert_eq!(&seen[1].1[..], &data[..4]);
            assert_eq!(&rec.regions.lock()[..], &[(0x100, 0x200)]);
        }

        #[test]
        fn unregistered_tracks_nothing() {
            let t = KvmTrack::unregistered(recorder()).unwrap();
            assert_eq!(t.add_gfn(1), Err(ENODEV));
            assert_eq!(t.remove_gfn(1), Err(ENODEV));
        }
    }
}

#[cfg(not(CONFIG_KVM_EXTERNAL_WRITE_TRACKING))]
mod stub {
    use super::{TrackHandler, Vm};
    use kernel::{prelude::*, sync::Arc};

    /// Without external write tracking no notifier can be registered.
    pub(crate) struct KvmTrack(());

    impl KvmTrack {
        /// # Errors
        ///
        /// Always `ENODEV`.
        pub(crate) fn register(_vm: &Vm<'_>, _handler: Arc<dyn TrackHandler>) -> Result<Arc<Self>> {
            Err(ENODEV)
        }
        /// # Errors
        ///
        /// Always `ENODEV`.
        pub(crate) fn add_gfn(&self, _gfn: u64) -> Result {
            Err(ENODEV)
        }
        /// # Errors
        ///
        /// Always `ENODEV`.
        pub(crate) fn remove_gfn(&self, _gfn: u64) -> Result {
            Err(ENODEV)
        }
    }
}
