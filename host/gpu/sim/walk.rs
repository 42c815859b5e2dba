// SPDX-License-Identifier: GPL-2.0

//! Graphics address to page: the GGTT, and the GEN9 4-level PPGTT walker.
//!
//! The PPGTT of a context is the tree whose PML4 sits at the device address in the
//! context image's PDP0 (addressing mode 3, `ASSIGN_CTX_PML4`); its tables are read
//! through the IOMMU (the mediator's shadow tables are host memory). Virtual address bits
//! 47:39, 38:30, 29:21 and 20:12 index the four levels. Every entry needs `PRESENT`
//! (bit 0); a write needs `RW` (bit 1) at every level, as IA-32e paging does. A PDP entry
//! with bit 7 (a 1 GiB page) is not supported and faults. A PD entry with `PS` (bit 7)
//! maps a 2 MiB page; with `IPS` (bit 11) its page table holds 64 KiB pages in slots 0,
//! 16, ..., 496; both at once fault (`gtt::pde_target`). Each translation walks anew (an
//! engine keeps a small TLB per run, see `exec.rs`).

use super::{ggtt::Ggtt, iommu::Frame, iommu::Iommu};
use crate::{
    abi::gtt,
    gpu::{EngineError, PAGE},
};

/// Which address space an access goes through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Space {
    /// The global GTT (host entries).
    Ggtt,
    /// The context's PPGTT.
    Ppgtt,
}

/// PDP entry bit 7: a 1 GiB page.
const PDPE_PS_1G: u64 = 1 << 7;

/// The address spaces of one running context.
pub(crate) struct Mmu<'a> {
    pub(crate) ggtt: &'a Ggtt,
    pub(crate) iommu: &'a Iommu,
    /// Device address of the PML4.
    pub(crate) pml4: u64,
}

/// The fault of an access to `addr`.
pub(crate) fn fault(space: Space, addr: u64, write: bool) -> EngineError {
    EngineError::Fault {
        addr,
        ppgtt: space == Space::Ppgtt,
        write,
    }
}

impl Mmu<'_> {
    /// The page graphics address `addr` lies in, for a read or a `write`.
    ///
    /// # Errors
    ///
    /// [`EngineError::Fault`] for a non-present or read-only entry, an address outside the
    /// space, or a device address nothing maps.
    pub(crate) fn translate(
        &self,
        space: Space,
        addr: u64,
        write: bool,
    ) -> Result<Frame, EngineError> {
        let dev = match space {
            Space::Ggtt => self.ggtt.translate(addr).map(|d| (d, true)),
            Space::Ppgtt => self.walk(addr),
        };
        match dev {
            Some((d, rw)) if rw || !write => self
                .iommu
                .frame(d)
                .filter(|f| f.writable() || !write)
                .ok_or(fault(space, addr, write)),
            _ => Err(fault(space, addr, write)),
        }
    }

    /// Reads entry `index` of the table at device address `table`, if present.
    fn entry(&self, table: u64, index: usize) -> Option<u64> {
        let e = self
            .iommu
            .load64((table & gtt::PTE_ADDR_MASK) + 8 * index as u64)?;
        (e & gtt::PTE_PRESENT != 0).then_some(e)
    }

    /// The device address of the page PPGTT address `va` lies in, and whether every
    /// level allows writes.
    pub(crate) fn walk(&self, va: u64) -> Option<(u64, bool)> {
        if va >= gtt::PPGTT_SIZE {
            return None;
        }
        let [i4, i3, i2, i1] = gtt::ppgtt_indices(va);
        let rw = |e: u64| e & gtt::PTE_RW != 0;
        let pml4e = self.entry(self.pml4, i4)?;
        let pdpe = self.entry(pml4e, i3)?;
        if pdpe & PDPE_PS_1G != 0 {
            return None;
        }
        let pde = self.entry(pdpe, i2)?;
        let upper = rw(pml4e) && rw(pdpe) && rw(pde);
        let (page, leaf_rw) = match gtt::pde_target(pde).ok()? {
            gtt::PdeTarget::Page2M => {
                let base = pde & gtt::PTE_ADDR_MASK & !(gtt::SZ_2M - 1);
                (base | (va & (gtt::SZ_2M - 1)), true)
            }
            gtt::PdeTarget::Table64k => {
                let pte = self.entry(pde, gtt::pt_index_64k(va))?;
                let base = pte & gtt::PTE_ADDR_MASK & !(gtt::SZ_64K - 1);
                (base | (va & (gtt::SZ_64K - 1)), rw(pte))
            }
            gtt::PdeTarget::Table4k => {
                let pte = self.entry(pde, i1)?;
                (pte & gtt::PTE_ADDR_MASK, rw(pte))
            }
        };
        Some((page & !(PAGE - 1), upper && leaf_rw))
    }
}
