// SPDX-License-Identifier: GPL-2.0

//! The mdev parent: the host's GPU shared out as vGPUs of the types in
//! [`crate::vgpu::types`].

use crate::{
    mm::partition::{Partition, PartitionError},
    vfio::{mdev::MdevType, MdevParent},
    vgpu::{types, Vgpu},
};
use core::fmt;
use kernel::{
    debugfs, device, new_mutex,
    prelude::*,
    sync::{Arc, Mutex},
};

/// The mediator: owns the GGTT partition and creates vGPUs.
#[pin_data]
pub(crate) struct Mediator {
    #[pin]
    partition: Mutex<Partition>,
    debugfs: debugfs::Dir,
}

impl Mediator {
    /// A mediator with nothing handed out yet.
    pub(crate) fn new() -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            partition <- new_mutex!(Partition::new()),
            debugfs: debugfs::Dir::new(c"gvtpv_host"),
        })
    }
}

const _: () = assert!(types::TYPES.len() == types::MDEV_TYPES.len());

impl MdevParent for Mediator {
    type Device = Vgpu;
    const TYPES: &'static [MdevType] = &types::MDEV_TYPES;

    fn probe(&self, type_index: usize, dev: &device::Device) -> Result<Arc<Vgpu>> {
        let t = types::TYPES.get(type_index).ok_or(EINVAL)?;
        let slice = self
            .partition
            .lock()
            .alloc(&t.request)
            .map_err(|e| match e {
                PartitionError::BadRequest => EINVAL,
                PartitionError::NoSpace => ENOSPC,
            })
            .inspect_err(|_| dev_err!(dev, "no room left for another vGPU of this type\n"))?;
        let vgpu = Vgpu::new(slice, type_index, &self.debugfs, dev.name()).inspect_err(|_| {
            self.partition.lock().free(&slice);
        })?;
        dev_info!(
            dev,
            "vGPU {} ({}) created: aperture {:#x}+{:#x}, hidden {:#x}+{:#x}, fences {}+{}\n",
            slice.id,
            types::MDEV_TYPES[type_index]
                .pretty_name
                .to_str()
                .unwrap_or("?"),
            slice.aperture_base,
            slice.aperture_size,
            slice.hidden_base,
            slice.hidden_size,
            slice.fence_base,
            slice.fences
        );
        Ok(vgpu)
    }

    fn remove(&self, vgpu: &Vgpu) {
        self.partition.lock().free(&vgpu.slice);
        pr_info!("vGPU {} removed\n", vgpu.slice.id);
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
