// SPDX-License-Identifier: GPL-2.0

//! gvtpv guest driver: drives a gvtpv virtual Intel GEN9 GPU.

// The guest driver needs no FFI of its own: the kernel crate's PCI, I/O and debugfs
// abstractions cover it. Should it ever need some, it goes in one room that alone allows
// `unsafe_code`.
#![deny(unsafe_code)]

#[path = "../shared-abi/src/abi/mod.rs"]
pub mod abi;
mod core;
mod pci;
mod pvinfo;

kernel::module_pci_driver! {
    type: pci::Driver,
    name: "gvtpv_guest",
    authors: ["gvtpv developers"],
    description: "gvtpv guest driver for virtual Intel GEN9 GPUs",
    license: "GPL",
    params: {
        gpu: u32 {
            default: 1,
            description: "Bring the GPU up after identification (0: identify only)",
        },
        selftests: u32 {
            default: 0,
            description: "Run the live selftests after probe and print KTAP (1: all, 2: without the hostile cases)",
        },
        selftest_timeout_ms: u32 {
            default: 500,
            description: "How long a live selftest waits for one submission, in ms",
        },
    },
}
