// SPDX-License-Identifier: GPL-2.0

//! The vfio uAPI structures this driver exchanges with userspace, as zerocopy mirrors.
//!
//! Mirrors keep the copies in and out of user memory free of `unsafe`; their sizes are
//! asserted against the bindgen-generated uAPI structs so a layout change cannot slip by.

use kernel::{ioctl::_IO, uapi};

/// `VFIO_TYPE`.
const VFIO_TYPE: u32 = b';' as u32;
/// `VFIO_BASE`.
const VFIO_BASE: u32 = 100;

/// `VFIO_DEVICE_GET_INFO`.
pub(crate) const VFIO_DEVICE_GET_INFO: u32 = _IO(VFIO_TYPE, VFIO_BASE + 7);
/// `VFIO_DEVICE_GET_IRQ_INFO`.
pub(crate) const VFIO_DEVICE_GET_IRQ_INFO: u32 = _IO(VFIO_TYPE, VFIO_BASE + 9);
/// `VFIO_DEVICE_SET_IRQS`.
pub(crate) const VFIO_DEVICE_SET_IRQS: u32 = _IO(VFIO_TYPE, VFIO_BASE + 10);
/// `VFIO_DEVICE_RESET`.
pub(crate) const VFIO_DEVICE_RESET: u32 = _IO(VFIO_TYPE, VFIO_BASE + 11);

/// Region indices of a vfio-pci device (fixed user ABI).
pub(crate) mod region {
    /// BAR0.
    pub(crate) const BAR0: u32 = 0;
    /// BAR2.
    pub(crate) const BAR2: u32 = 2;
    /// PCI config space.
    pub(crate) const CONFIG: u32 = 7;
    /// Number of fixed regions (`VFIO_PCI_NUM_REGIONS`).
    pub(crate) const NUM: u32 = 9;
}

/// Interrupt indices of a vfio-pci device (fixed user ABI).
pub(crate) mod irq {
    /// Legacy INTx.
    pub(crate) const INTX: u32 = 0;
    /// MSI.
    pub(crate) const MSI: u32 = 1;
    /// Device request (the host asks the user to release the device).
    pub(crate) const REQ: u32 = 4;
    /// Number of fixed interrupt indices (`VFIO_PCI_NUM_IRQS`).
    pub(crate) const NUM: u32 = 5;
}

/// Offset shift that encodes the region index in a file position (`VFIO_PCI_OFFSET_SHIFT`).
pub(crate) const OFFSET_SHIFT: u32 = 40;

/// `struct vfio_device_info` up to `num_irqs` (the part every kernel fills).
#[derive(
    Default,
    zerocopy_derive::FromBytes,
    zerocopy_derive::IntoBytes,
    zerocopy_derive::Immutable,
    zerocopy_derive::KnownLayout,
)]
#[repr(C)]
pub(crate) struct DeviceInfo {
    pub(crate) argsz: u32,
    pub(crate) flags: u32,
    pub(crate) num_regions: u32,
    pub(crate) num_irqs: u32,
}

/// `struct vfio_irq_info`.
#[derive(
    Default,
    zerocopy_derive::FromBytes,
    zerocopy_derive::IntoBytes,
    zerocopy_derive::Immutable,
    zerocopy_derive::KnownLayout,
)]
#[repr(C)]
pub(crate) struct IrqInfo {
    pub(crate) argsz: u32,
    pub(crate) flags: u32,
    pub(crate) index: u32,
    pub(crate) count: u32,
}

/// `struct vfio_irq_set` without its flexible `data[]`.
#[derive(
    Default,
    zerocopy_derive::FromBytes,
    zerocopy_derive::IntoBytes,
    zerocopy_derive::Immutable,
    zerocopy_derive::KnownLayout,
)]
#[repr(C)]
pub(crate) struct IrqSetHdr {
    pub(crate) argsz: u32,
    pub(crate) flags: u32,
    pub(crate) index: u32,
    pub(crate) start: u32,
    pub(crate) count: u32,
}

const _: () = assert!(size_of::<IrqInfo>() == size_of::<uapi::vfio_irq_info>());
const _: () = assert!(size_of::<IrqSetHdr>() == size_of::<uapi::vfio_irq_set>());
const _: () = assert!(core::mem::offset_of!(uapi::vfio_device_info, num_irqs) == 12);

/// `VFIO_DEVICE_FLAGS_RESET`.
pub(crate) const DEVICE_FLAGS_RESET: u32 = uapi::VFIO_DEVICE_FLAGS_RESET;
/// `VFIO_DEVICE_FLAGS_PCI`.
pub(crate) const DEVICE_FLAGS_PCI: u32 = uapi::VFIO_DEVICE_FLAGS_PCI;
/// `VFIO_REGION_INFO_FLAG_READ`.
pub(crate) const REGION_READ: u32 = uapi::VFIO_REGION_INFO_FLAG_READ;
/// `VFIO_REGION_INFO_FLAG_WRITE`.
pub(crate) const REGION_WRITE: u32 = uapi::VFIO_REGION_INFO_FLAG_WRITE;
/// `VFIO_IRQ_INFO_EVENTFD`.
pub(crate) const IRQ_INFO_EVENTFD: u32 = uapi::VFIO_IRQ_INFO_EVENTFD;
/// `VFIO_IRQ_INFO_MASKABLE`.
pub(crate) const IRQ_INFO_MASKABLE: u32 = uapi::VFIO_IRQ_INFO_MASKABLE;
/// `VFIO_IRQ_INFO_NORESIZE`.
pub(crate) const IRQ_INFO_NORESIZE: u32 = uapi::VFIO_IRQ_INFO_NORESIZE;
/// `VFIO_IRQ_INFO_AUTOMASKED`.
pub(crate) const IRQ_INFO_AUTOMASKED: u32 = uapi::VFIO_IRQ_INFO_AUTOMASKED;
/// `VFIO_IRQ_SET_DATA_NONE`.
pub(crate) const SET_DATA_NONE: u32 = uapi::VFIO_IRQ_SET_DATA_NONE;
/// `VFIO_IRQ_SET_DATA_BOOL`.
pub(crate) const SET_DATA_BOOL: u32 = uapi::VFIO_IRQ_SET_DATA_BOOL;
/// `VFIO_IRQ_SET_DATA_EVENTFD`.
pub(crate) const SET_DATA_EVENTFD: u32 = uapi::VFIO_IRQ_SET_DATA_EVENTFD;
/// `VFIO_IRQ_SET_ACTION_MASK`.
pub(crate) const SET_ACTION_MASK: u32 = uapi::VFIO_IRQ_SET_ACTION_MASK;
/// `VFIO_IRQ_SET_ACTION_UNMASK`.
pub(crate) const SET_ACTION_UNMASK: u32 = uapi::VFIO_IRQ_SET_ACTION_UNMASK;
/// `VFIO_IRQ_SET_ACTION_TRIGGER`.
pub(crate) const SET_ACTION_TRIGGER: u32 = uapi::VFIO_IRQ_SET_ACTION_TRIGGER;
