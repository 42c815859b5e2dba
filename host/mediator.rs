// SPDX-License-Identifier: GPL-2.0

//! The mdev parent: the host's GPU shared out as vGPUs of the types in
//! [`crate::vgpu::types`].

use crate::{
    gpu::{self, Gpu},
    mm::partition::{self, Lease, PartitionError},
    sched::Sched,
    vfio::{mdev::MdevType, MdevParent},
    vgpu::{types, Vgpu},
};
use core::fmt;
use kernel::{debugfs, device, prelude::*, sync::Arc};

/// The mediator: owns the GPU backend, the engines' queues and the GGTT partition, and
/// creates vGPUs.
pub(crate) struct Mediator {
    partition: partition::Shared,
    debugfs: debugfs::Dir,
    gpu: Arc<dyn Gpu>,
    sched: Arc<Sched>,
}

impl Mediator {
    /// A mediator with nothing handed out yet, over the backend [`gpu::backend`] picks.
    pub(crate) fn new() -> impl PinInit<Self, Error> {
        try_init!(Self {
            partition: partition::shared()?,
            debugfs: debugfs::Dir::new(c"gvtpv_host"),
            gpu: gpu::backend()?,
            sched: Sched::new(gpu.clone())?,
        })
    }
}

impl Drop for Mediator {
    fn drop(&mut self) {
        // Every vGPU is gone: break the backend's reference to the scheduler.
        let _ = self.sched.shutdown();
    }
}

const _: () = assert!(types::TYPES.len() == types::MDEV_TYPES.len());

impl MdevParent for Mediator {
    type Device = Vgpu;
    const TYPES: &'static [MdevType] = &types::MDEV_TYPES;

    fn probe(&self, type_index: usize, dev: &device::Device) -> Result<impl PinInit<Vgpu, Error>> {
        let t = types::TYPES.get(type_index).ok_or(EINVAL)?;
        let lease = Lease::take(&self.partition, &t.request)
            .map_err(|e| match e {
                PartitionError::BadRequest => EINVAL,
                PartitionError::NoSpace => ENOSPC,
            })
            .inspect_err(|_| dev_err!(dev, "no room left for another vGPU of this type\n"))?;
        let s = *lease.slice();
        dev_info!(
            dev,
            "vGPU {} ({}) created: aperture {:#x}+{:#x}, hidden {:#x}+{:#x}, fences {}+{}\n",
            s.id,
            types::MDEV_TYPES[type_index]
                .pretty_name
                .to_str()
                .unwrap_or("?"),
            s.aperture_base,
            s.aperture_size,
            s.hidden_base,
            s.hidden_size,
            s.fence_base,
            s.fences
        );
        Vgpu::new(
            lease,
            type_index,
            &self.debugfs,
            dev.name(),
            self.gpu.clone(),
            self.sched.clone(),
        )
    }

    fn available(&self, type_index: usize) -> u32 {
        types::TYPES
            .get(type_index)
            .map_or(0, |t| self.partition.lock().available(&t.request))
    }

    fn describe(&self, type_index: usize, out: &mut dyn fmt::Write) -> fmt::Result {
        let t = types::TYPES.get(type_index).ok_or(fmt::Error)?;
        write!(
            out,
            "low_gm_size: {}MB\nhigh_gm_size: {}MB\nfence: {}\nweight: {}\n",
            t.request.aperture >> 20,
            t.request.hidden >> 20,
            t.request.fences,
            t.weight
        )
    }
}
