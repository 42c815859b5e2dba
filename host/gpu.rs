// SPDX-License-Identifier: GPL-2.0

//! The GEN9 the mediator drives, behind one trait ([`Gpu`]) in the shape of nova-core's
//! `fb/hal.rs`: what the mediator needs from the hardware, one implementation per
//! backend, and one selector ([`backend`]).
//!
//! The only backend built is [`sim`], a software GEN9. A hardware backend is the same
//! trait over MMIO: GGTT entries written at BAR0 + 8 MiB, `dma_map_page` for guest pages,
//! `dma::Coherent` for host memory, ELSP writes for [`Gpu::submit`], the CSB read from
//! the engine's status page, `RING_EIR` for [`Gpu::engine_error`].
//!
//! Addresses: a [`DevAddr`] is what the device puts on its bus (after its IOMMU, if any).
//! GGTT and shadow PPGTT entries hold device addresses, never host physical addresses the
//! device did not get from [`Gpu::dma_map`] or [`Gpu::alloc`].
//!
//! Locking: a backend's locks are leaves. [`Events::interrupt`] is called with none of
//! them held, from the backend's own context (a worker or an interrupt handler).

use crate::abi::{lrc, regs};
use kernel::{prelude::*, sync::Arc};

pub(crate) mod sim;

/// A device (bus) address.
pub(crate) type DevAddr = u64;

/// Page size of the GGTT, the PPGTT and [`DevAddr`] mappings.
pub(crate) const PAGE: u64 = 4096;

/// The command streamers the emulated path uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Engine {
    /// Render (RCS0).
    Rcs = 0,
    /// Blitter (BCS0).
    Bcs = 1,
}

impl Engine {
    /// Every engine, by index.
    pub(crate) const ALL: [Engine; 2] = [Engine::Rcs, Engine::Bcs];
    /// Number of engines.
    pub(crate) const COUNT: usize = Self::ALL.len();

    /// Index into per-engine arrays.
    pub(crate) const fn index(self) -> usize {
        self as usize
    }

    /// The engine's MMIO base.
    pub(crate) const fn base(self) -> u32 {
        match self {
            Engine::Rcs => regs::RCS_BASE,
            Engine::Bcs => regs::BCS_BASE,
        }
    }

    /// The engine whose register block holds BAR0 offset `off`, and the offset in it.
    pub(crate) fn from_offset(off: u32) -> Option<(Engine, u32)> {
        Self::ALL.into_iter().find_map(|e| {
            let rel = off.checked_sub(e.base())?;
            (rel < regs::ring::SPAN).then_some((e, rel))
        })
    }

    /// Pages of the engine's context image (`intel_engine_context_size`).
    pub(crate) const fn context_pages(self) -> u32 {
        match self {
            Engine::Rcs => lrc::RCS_CONTEXT_PAGES,
            Engine::Bcs => lrc::XCS_CONTEXT_PAGES,
        }
    }

    /// Shift of the engine's half in GT interrupt bank 0.
    pub(crate) const fn irq_shift(self) -> u32 {
        match self {
            Engine::Rcs => regs::GT_RCS_SHIFT,
            Engine::Bcs => regs::GT_BCS_SHIFT,
        }
    }

    /// `GEN6_GDRST` bit resetting this engine.
    pub(crate) const fn gdrst_bit(self) -> u32 {
        match self {
            Engine::Rcs => regs::GRDOM_RENDER,
            Engine::Bcs => regs::GRDOM_BLT,
        }
    }

    /// Short name.
    pub(crate) const fn name(self) -> &'static str {
        match self {
            Engine::Rcs => "rcs0",
            Engine::Bcs => "bcs0",
        }
    }
}

/// One page the device may reach: a pinned guest page (a one-page view of the pin cache)
/// or a page of host memory.
///
/// Accesses are single and aligned; they fail with `EFAULT` once the page is no longer
/// the device's (a guest page the user unmapped), so a stale mapping never reaches memory
/// that is not the guest's any more.
pub(crate) trait DevPage: Send + Sync {
    /// One aligned 4-byte load at byte offset `off`.
    fn load32(&self, off: usize) -> Result<u32>;
    /// One aligned 8-byte load at byte offset `off`.
    fn load64(&self, off: usize) -> Result<u64>;
    /// One aligned 4-byte store at byte offset `off`.
    fn store32(&self, off: usize, v: u32) -> Result;
    /// One aligned 8-byte store at byte offset `off`.
    fn store64(&self, off: usize, v: u64) -> Result;
    /// Whether the device may write the page.
    fn writable(&self) -> bool;
}

/// Host-owned memory the device can reach: shadow page tables, shadow context images,
/// shadow rings, batch copies, status pages. Contiguous in device address space; the
/// backend takes it out of its IOMMU (or frees the coherent buffer) on drop.
pub(crate) trait HostMem: Send + Sync {
    /// Device address of byte 0 (page aligned).
    fn dev_addr(&self) -> DevAddr;
    /// Length in bytes (a multiple of [`PAGE`]).
    fn len(&self) -> usize;
    /// One aligned 4-byte load at byte offset `off`.
    fn load32(&self, off: usize) -> Result<u32>;
    /// One aligned 8-byte load at byte offset `off`.
    fn load64(&self, off: usize) -> Result<u64>;
    /// One aligned 4-byte store at byte offset `off`.
    fn store32(&self, off: usize, v: u32) -> Result;
    /// One aligned 8-byte store at byte offset `off`.
    fn store64(&self, off: usize, v: u64) -> Result;

    /// Stores `data` as dwords from byte offset `off` (4-byte aligned).
    fn write_dwords(&self, off: usize, data: &[u32]) -> Result {
        for (i, d) in data.iter().enumerate() {
            self.store32(off + 4 * i, *d)?;
        }
        Ok(())
    }
}

/// Why a context stopped before it completed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EngineError {
    /// An access through a non-present or read-only entry (`ppgtt`: through the
    /// context's PPGTT, else the GGTT), or to a device address nothing maps. No memory
    /// was touched by the faulting command.
    Fault {
        /// The graphics address.
        addr: u64,
        /// Whether it went through the PPGTT.
        ppgtt: bool,
        /// Whether it was a write.
        write: bool,
    },
    /// A command the engine cannot decode (not in the GEN9 table, bad length, truncated
    /// ring), at this ring or batch graphics address.
    Malformed {
        /// Graphics address of the command header.
        at: u64,
    },
    /// The context ran out of its command budget and was preempted.
    Hang,
    /// [`Gpu::reset_engine`] stopped it.
    Reset,
}

/// What the backend tells the mediator.
pub(crate) trait Events: Send + Sync {
    /// Interrupt `bits` (GT bank 0 bits of the engine's half, unshifted:
    /// [`regs::GT_USER_INTERRUPT`], [`regs::GT_CONTEXT_SWITCH`],
    /// [`regs::GT_CS_MASTER_ERROR`]) happened on `engine`. Called with no backend lock
    /// held, from the backend's worker; must not sleep for long.
    fn interrupt(&self, engine: Engine, bits: u32);
}

/// Counters of a backend, for debugfs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct GpuStats {
    /// Commands executed.
    pub(crate) commands: u64,
    /// Well-formed commands skipped by their length because the backend does not
    /// model them (always 0 on hardware).
    pub(crate) not_modelled: u64,
    /// Contexts run to completion.
    pub(crate) completed: u64,
    /// Contexts stopped by a fault or a malformed command.
    pub(crate) faults: u64,
    /// Contexts preempted for exceeding their budget.
    pub(crate) hangs: u64,
    /// Bytes written by blitter commands.
    pub(crate) blit_bytes: u64,
    /// Device mappings live now.
    pub(crate) mappings: u64,
}

/// What the mediator needs from a GEN9.
pub(crate) trait Gpu: Send + Sync {
    /// Backend name, for logs and debugfs.
    fn name(&self) -> &'static CStr;

    /// Number of GGTT entries (4 KiB each).
    fn ggtt_entries(&self) -> u32;
    /// Writes host GGTT entry `index`: `pte` in GEN8 format, `DevAddr | PRESENT`
    /// (`gen8_ggtt_pte_encode`); a device address the backend did not hand out makes
    /// accesses through the entry fault.
    fn ggtt_write(&self, index: u32, pte: u64) -> Result;
    /// Reads host GGTT entry `index`.
    fn ggtt_read(&self, index: u32) -> Result<u64>;
    /// Invalidates the GGTT TLBs (`GFX_FLSH_CNTL`).
    fn ggtt_invalidate(&self);

    /// Gives the device access to `page` and returns its device address; the page stays
    /// mapped until [`Gpu::dma_unmap`].
    fn dma_map(&self, page: Arc<dyn DevPage>) -> Result<DevAddr>;
    /// Maps `pages` at one contiguous device range (for 64 KiB and 2 MiB entries);
    /// `None` if this backend cannot (hardware without an IOMMU and discontiguous
    /// frames). The range is aligned to its size rounded up to a power of two.
    fn map_run(&self, pages: &[Arc<dyn DevPage>]) -> Result<Option<DevAddr>>;
    /// Removes the mapping that starts at `addr` ([`Gpu::dma_map`] or [`Gpu::map_run`]).
    fn dma_unmap(&self, addr: DevAddr);

    /// Allocates `pages` pages of zeroed host memory the device can reach.
    fn alloc(&self, pages: usize) -> Result<Arc<dyn HostMem>>;

    /// Sets who hears about interrupts.
    fn set_events(&self, events: Arc<dyn Events>);
    /// Sets the GGTT address of `engine`'s status page (as `RING_HWS_PGA`): where the
    /// backend writes CSB entries (dwords 0x10.., write pointer at 0x1f).
    fn set_hwsp(&self, engine: Engine, ggtt: u32) -> Result;
    /// Runs one context on `engine`: `desc` is a GEN9 context descriptor whose LRCA is a
    /// host GGTT address; `budget` bounds the commands it may run (then it is
    /// preempted and reported as [`EngineError::Hang`]). One context at a time per
    /// engine: `EBUSY` while one runs. Completion is reported as CSB entries in the
    /// status page and an [`Events::interrupt`].
    fn submit(&self, engine: Engine, desc: u64, budget: u32) -> Result;
    /// Whether `engine` runs a context now.
    fn busy(&self, engine: Engine) -> bool;
    /// The error that stopped the last context on `engine`, if any (cleared by the next
    /// [`Gpu::submit`]).
    fn engine_error(&self, engine: Engine) -> Option<EngineError>;
    /// Stops the context running on `engine` at its next command (reported as
    /// [`EngineError::Reset`]) and waits until the engine is idle.
    fn reset_engine(&self, engine: Engine);

    /// The backend's counters.
    fn stats(&self) -> GpuStats;
}

/// The backend the mediator drives: the software GEN9 (no hardware backend is built).
///
/// # Errors
///
/// `ENOMEM`.
pub(crate) fn backend() -> Result<Arc<dyn Gpu>> {
    let sim: Arc<dyn Gpu> = sim::Sim::new()?;
    Ok(sim)
}
