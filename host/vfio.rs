// SPDX-License-Identifier: GPL-2.0

//! The host module's only FFI room: safe wrappers over mdev, the vfio device, guest memory
//! through vfio, and eventfd.
//!
//! Everything above this module is safe Rust (the crate denies `unsafe_code` outside it).
//! The shapes follow `rust/kernel/miscdevice.rs` and `rust/kernel/drm/device.rs`: a C ops
//! table built as a `const` from a `#[vtable]` Rust trait with `HAS_*` entries for the
//! optional callbacks, trampolines that recover the Rust object from the C one, and
//! containers whose first field is the C struct in an [`Opaque`](kernel::types::Opaque),
//! with the driver data pin-initialised inside the C allocation.
//!
//! Locking: the mdev and vfio cores hold their own locks around probe/remove and
//! open/close; no lock of ours is held while the vfio core pins, unpins or copies
//! ([`dma`] says why).

pub(crate) mod device;
pub(crate) mod dma;
pub(crate) mod eventfd;
pub(crate) mod kvm;
pub(crate) mod mdev;
pub(crate) mod region;
pub(crate) mod uapi;

pub(crate) use device::{IrqAction, IrqData, IrqSet, RegionInfo, VfioOps};
pub(crate) use dma::{Dma, PinnedPage};
pub(crate) use eventfd::EventFd;
pub(crate) use kvm::Vm;
pub(crate) use mdev::{MdevParent, Registration};
