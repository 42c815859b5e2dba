// SPDX-License-Identifier: GPL-2.0

//! gvtpv host mediator: virtual Intel GEN9 GPUs for KVM guests through vfio-mdev.

// `unsafe` lives in the FFI room (`vfio`) and nowhere else.
#![deny(unsafe_code)]

use kernel::prelude::*;

#[path = "../shared-abi/src/abi/mod.rs"]
pub mod abi;
mod cmd_parser;
mod debugfs;
mod gpu;
mod mediator;
mod mm;
mod sched;
#[allow(unsafe_code)]
mod vfio;
mod vgpu;

module! {
    type: GvtpvHost,
    name: "gvtpv_host",
    authors: ["gvtpv developers"],
    description: "gvtpv host mediator: virtual Intel GEN9 GPUs through vfio-mdev",
    license: "GPL",
    params: {
        revalidate: u32 {
            default: 0,
            description: "Re-validate guest page tables before each submission even when the VM runs on KVM (1: no write tracking)",
        },
    },
}

struct GvtpvHost {
    _parent: Pin<KBox<vfio::Registration<mediator::Mediator>>>,
}

impl kernel::Module for GvtpvHost {
    fn init(module: &'static ThisModule) -> Result<Self> {
        let parent = vfio::Registration::new(c"gvtpv", module, mediator::Mediator::new())?;
        pr_info!(
            "gvtpv host mediator ready: {} vGPU types\n",
            vgpu::types::TYPES.len()
        );
        Ok(Self { _parent: parent })
    }
}
