// SPDX-License-Identifier: GPL-2.0

//! A counted reference to an eventfd context, as vfio SET_IRQS hands them to a driver.

use core::ptr::NonNull;
use kernel::{bindings, error::from_err_ptr, prelude::*};

/// An `eventfd_ctx` reference, released on drop.
///
/// # Invariants
///
/// `self.0` points to a live `eventfd_ctx` on which this object owns one reference.
pub(crate) struct EventFd(NonNull<bindings::eventfd_ctx>);

impl EventFd {
    /// Takes a reference to the eventfd context behind the file descriptor `fd`.
    ///
    /// # Errors
    ///
    /// `EBADF` if `fd` is not an open file, `EINVAL` if it is not an eventfd.
    pub(crate) fn from_fd(fd: i32) -> Result<Self> {
        // SAFETY: `eventfd_ctx_fdget` accepts any integer; it returns a referenced context
        // or an ERR_PTR.
        let ctx = from_err_ptr(unsafe { bindings::eventfd_ctx_fdget(fd) })?;
        // INVARIANT: a successful `eventfd_ctx_fdget` returns a non-null, referenced context.
        NonNull::new(ctx).map(Self).ok_or(EINVAL)
    }

    /// Signals the eventfd (adds one to its counter and wakes its waiters, e.g. KVM irqfd).
    pub(crate) fn signal(&self) {
        // SAFETY: by the type invariant the context is live; signalling is allowed from any
        // context that may sleep or not, as KVM's irqfd and vfio-pci do.
        unsafe { bindings::eventfd_signal(self.0.as_ptr()) };
    }
}

impl Drop for EventFd {
    fn drop(&mut self) {
        // SAFETY: by the type invariant we own one reference, dropped exactly once here.
        unsafe { bindings::eventfd_ctx_put(self.0.as_ptr()) };
    }
}

// SAFETY: an `eventfd_ctx` is reference counted and internally locked; a reference may be
// used and released from any thread.
unsafe impl Send for EventFd {}
// SAFETY: `signal` takes `&self` and the C side serialises concurrent signals.
unsafe impl Sync for EventFd {}
