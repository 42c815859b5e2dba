// SPDX-License-Identifier: GPL-2.0

//! The vGPU types, modelled on GVT-g's `GVTg_V5_*` types.

use crate::mm::partition::Request;
use crate::vfio::mdev::MdevType;

/// One vGPU type.
pub(crate) struct VgpuType {
    /// Graphics memory and fences it takes.
    pub(crate) request: Request,
    /// Scheduling weight (relative share of engine time).
    pub(crate) weight: u32,
}

/// The types, in the order of [`MDEV_TYPES`].
pub(crate) const TYPES: [VgpuType; 4] = [
    VgpuType {
        request: Request {
            aperture: 64 << 20,
            hidden: 384 << 20,
            fences: 4,
        },
        weight: 2,
    },
    VgpuType {
        request: Request {
            aperture: 128 << 20,
            hidden: 512 << 20,
            fences: 4,
        },
        weight: 4,
    },
    VgpuType {
        request: Request {
            aperture: 256 << 20,
            hidden: 1024 << 20,
            fences: 4,
        },
        weight: 8,
    },
    VgpuType {
        request: Request {
            aperture: 512 << 20,
            hidden: 2048 << 20,
            fences: 4,
        },
        weight: 16,
    },
];

/// The same types as the mdev core lists them.
pub(crate) const MDEV_TYPES: [MdevType; 4] = [
    MdevType {
        sysfs_name: c"V5_8",
        pretty_name: c"GVTg_V5_8",
    },
    MdevType {
        sysfs_name: c"V5_4",
        pretty_name: c"GVTg_V5_4",
    },
    MdevType {
        sysfs_name: c"V5_2",
        pretty_name: c"GVTg_V5_2",
    },
    MdevType {
        sysfs_name: c"V5_1",
        pretty_name: c"GVTg_V5_1",
    },
];
