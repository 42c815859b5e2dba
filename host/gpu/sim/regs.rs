// SPDX-License-Identifier: GPL-2.0

//! The register file `MI_LOAD_REGISTER_IMM` writes, per engine: raw values by BAR0
//! offset, no side effects. Bounded: once [`MAX_REGS`] distinct offsets are held, writes
//! to new offsets are dropped and counted.

use kernel::prelude::*;

/// Distinct registers held per engine.
pub(crate) const MAX_REGS: usize = 256;

/// The registers of one engine.
pub(crate) struct RegFile {
    /// (offset, value), in first-write order.
    regs: KVec<(u32, u32)>,
    /// Writes dropped because the file was full.
    pub(crate) dropped: u64,
}

impl RegFile {
    /// An empty file, its room allocated up front.
    pub(crate) fn new() -> Result<Self> {
        Ok(Self {
            regs: KVec::with_capacity(MAX_REGS, GFP_KERNEL)?,
            dropped: 0,
        })
    }

    /// Writes register `off`.
    pub(crate) fn write(&mut self, off: u32, v: u32) {
        if let Some(r) = self.regs.iter_mut().find(|r| r.0 == off) {
            r.1 = v;
        } else if self.regs.push_within_capacity((off, v)).is_err() {
            self.dropped += 1;
        }
    }

    /// The value last written to register `off`, if any.
    pub(crate) fn read(&self, off: u32) -> Option<u32> {
        self.regs.iter().find(|r| r.0 == off).map(|r| r.1)
    }
}
