// SPDX-License-Identifier: GPL-2.0

//! Graphics memory management: how the GGTT and fences are shared between vGPUs.

pub(crate) mod partition;
