// SPDX-License-Identifier: GPL-2.0

//! gvtpv ABI: the layouts and rules shared by the host mediator and the guest driver.
//!
//! Included verbatim by both kernel modules (`#[path = ".../abi/mod.rs"]`) and by the
//! `gvtpv_abi` crate. No crate attributes here; safe code only (the crate forbids
//! `unsafe_code`); layouts through `zerocopy` alone.

pub mod cmd;
pub mod ctb;
pub mod events;
pub mod gen;
pub mod gpu_cmd;
pub mod gtt;
pub mod lrc;
pub mod pvinfo;
pub mod regs;
pub mod shared;

#[cfg(test)]
mod testutil;
