// SPDX-License-Identifier: GPL-2.0

//! The host module's only FFI room: safe wrappers over mdev, the vfio device and eventfd.
//!
//! Everything above this module is safe Rust. The shapes follow `rust/kernel/miscdevice.rs`
//! and `rust/kernel/drm/device.rs`: a C ops table built as a `const` from a Rust trait,
//! trampolines that recover the Rust object with `container_of!`, and containers whose
//! first field is the C struct in an [`Opaque`](kernel::types::Opaque).
//!
//! Lock order: none is taken here; the mdev core holds its own locks around probe/remove.

pub(crate) mod device;
pub(crate) mod eventfd;
pub(crate) mod mdev;
pub(crate) mod uapi;

pub(crate) use device::{IrqAction, IrqData, IrqSet, RegionInfo, VfioDevice, VfioOps};
pub(crate) use eventfd::EventFd;
pub(crate) use mdev::{MdevParent, Registration};
