// SPDX-License-Identifier: GPL-2.0

//! gvtpv guest driver: drives a gvtpv virtual Intel GEN9 GPU.

// The guest driver needs no FFI of its own: the kernel crate's PCI, I/O and debugfs
// abstractions cover it. Should it ever need some, it goes in one room that alone allows
// `unsafe_code`.
#![deny(unsafe_code)]

#[path = "../shared-abi/src/abi/mod.rs"]
pub mod abi;
mod pci;
mod pvinfo;

kernel::module_pci_driver! {
    type: pci::Driver,
    name: "gvtpv_guest",
    authors: ["gvtpv developers"],
    description: "gvtpv guest driver for virtual Intel GEN9 GPUs",
    license: "GPL",
}
