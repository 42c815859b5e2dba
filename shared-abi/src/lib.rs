// SPDX-License-Identifier: GPL-2.0

//! The gvtpv wire format: every byte that crosses between the host mediator and the guest.
//!
//! The kernel modules include [`abi`] with `#[path]`; this crate exists so that the same
//! code is built and tested with cargo.

#![no_std]
#![forbid(unsafe_code)]

pub mod abi;
