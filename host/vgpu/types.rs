// SPDX-License-Identifier: GPL-2.0

//! The vGPU types, modelled on GVT-g's `GVTg_V5_*` types.

use crate::mm::partition::Request;
use crate::mm::ppgtt::Limits as PpgttLimits;
use crate::vfio::mdev::MdevType;

/// One vGPU type.
pub(crate) struct VgpuType {
    /// Graphics memory and fences it takes.
    pub(crate) request: Request,
    /// Scheduling weight (relative share of engine time).
    pub(crate) weight: u32,
    /// What its guest may make the host hold: shadow PPGTT and pins.
    pub(crate) limits: Limits,
}

/// The host memory a vGPU's guest can make the host hold; beyond it the guest gets an
/// error, not the host's memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Limits {
    /// The shadow PPGTT's bounds.
    pub(crate) ppgtt: PpgttLimits,
    /// Guest pages pinned at once, all users together (the pin cache's bound): the
    /// PPGTT's leaves plus GGTT entries, rings, images and status pages.
    pub(crate) pins: usize,
}

/// The limits of a type `scale` times the smallest (which may pin 256 MiB through its
/// PPGTT, hold 2048 shadow table pages (8 MiB) and 64 roots).
const fn limits(scale: usize) -> Limits {
    Limits {
        ppgtt: PpgttLimits {
            pins: 65536 * scale,
            tables: 2048 * scale,
            roots: 64,
        },
        pins: (65536 + 16384) * scale,
    }
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
        limits: limits(1),
    },
    VgpuType {
        request: Request {
            aperture: 128 << 20,
            hidden: 512 << 20,
            fences: 4,
        },
        weight: 4,
        limits: limits(2),
    },
    VgpuType {
        request: Request {
            aperture: 256 << 20,
            hidden: 1024 << 20,
            fences: 4,
        },
        weight: 8,
        limits: limits(4),
    },
    VgpuType {
        request: Request {
            aperture: 512 << 20,
            hidden: 2048 << 20,
            fences: 4,
        },
        weight: 16,
        limits: limits(8),
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
