// SPDX-License-Identifier: GPL-2.0

//! Graphics and guest memory: how the GGTT and fences are shared between vGPUs, and how
//! the host reaches a guest's memory.

pub(crate) mod ggtt;
pub(crate) mod guest;
pub(crate) mod host;
pub(crate) mod partition;
pub(crate) mod ppgtt;
