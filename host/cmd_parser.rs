// SPDX-License-Identifier: GPL-2.0

//! The command parser: scans a guest ring segment and every batch it starts, and
//! returns copies the host can run instead (Documentation/design.rst, "Command parser
//! and batch shadows", and path 1 step 3).
//!
//! The parser is pure: no vfio, no backend, no locks. It reads guest batches through a
//! [`Memory`], asks a [`Placement`] where each batch copy will live in the host GGTT, and
//! returns a [`Scanned`]: the shadow ring segment and the batch copies, with every
//! `MI_BATCH_BUFFER_START` pointing at its copy through the GGTT. The caller writes the
//! copies to the places it handed out and runs the shadow ring. Anything it does not like
//! is a [`Refusal`], with a reason the caller counts ([`Reason::name`], [`REASONS`]).
//!
//! Rooms: [`scan`](scan()) steps rings and batches with the GEN9 length table
//! (`gpu_cmd::table::GEN9_CMDS`), `policy` decides per command (whitelist, LRI register
//! list, address audit), `shadow` patches batch starts.
//!
//! **GVT-g:** `cmd_parser.c` (`cmd_info[]`, the `cmd_handler_*` functions,
//! `cmd_address_audit`, `perform_bb_shadow`) and the `F_CMD_ACCESS` registers of
//! `handlers.c`. Where this parser differs, the code says **Decision:** and why.

use kernel::prelude::*;

mod policy;
mod scan;
mod shadow;
#[cfg(CONFIG_KUNIT)]
mod tests;

pub(crate) use crate::gpu::Engine;

/// The engine's bit in the length table's ring masks.
fn ring_of(e: Engine) -> u8 {
    match e {
        Engine::Rcs => crate::abi::gpu_cmd::table::ring::RCS,
        Engine::Bcs => crate::abi::gpu_cmd::table::ring::BCS,
    }
}

/// The address space a graphics address is translated through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Space {
    /// The global GTT (the vGPU's GGTT entries).
    Ggtt,
    /// The context's PPGTT (the shadow PPGTT of the workload).
    Ppgtt,
}

/// Guest graphics memory, as the parser reads batches from it.
pub(crate) trait Memory {
    /// Reads `out.len()` dwords at the 4-byte aligned graphics address `addr` of `space`.
    ///
    /// The parser never asks for more than one 4 KiB page at once, and never for a page
    /// that holds no dword of the batch it is reading.
    ///
    /// # Errors
    ///
    /// Any error: an address without a translation, a failed pin or copy.
    fn read(&self, space: Space, addr: u64, out: &mut [u32]) -> Result;
}

/// Alignment of a batch copy's host GGTT address: the start address field of GEN9's
/// `MI_BATCH_BUFFER_START` is bits 47:2 (GVT-g: `BATCH_BUFFER_ADDR_MASK`), so a dword.
pub(crate) const BATCH_ALIGN: u64 = 4;

/// Host graphics addresses of batch copies lie below this (the 4 GiB GGTT).
pub(crate) const HOST_GGTT_END: u64 = 1 << 32;

/// Where batch copies go in the host GGTT.
pub(crate) trait Placement {
    /// Reserves room for one batch copy of `dwords` dwords and returns its host GGTT
    /// address, [`BATCH_ALIGN`]ed, with the whole copy below [`HOST_GGTT_END`].
    ///
    /// # Errors
    ///
    /// `ENOSPC` (or any error) when there is no room; the scan is refused.
    fn place(&mut self, dwords: usize) -> Result<u64>;
}

/// Bounds of one scan (Documentation/design.rst, "Bounds and failsafe").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Bytes of batch copies per workload, all batches together.
    pub(crate) batch_bytes: usize,
    /// Bytes of the ring segment (the shadow ring's size).
    pub(crate) ring_bytes: usize,
    /// Batches (first level, chained and second level) per workload.
    pub(crate) max_batches: usize,
    /// Batch levels: 1 allows first-level batches only, 2 also second-level ones (GEN9).
    /// Values above [`MAX_DEPTH`] act as [`MAX_DEPTH`].
    pub(crate) max_depth: usize,
}

/// Deepest batch level GEN9 has (first level, then second level).
pub(crate) const MAX_DEPTH: usize = 2;

impl Limits {
    /// The design's limits: 1 MiB of batches, a 64 KiB ring segment, 256 batches,
    /// second level one deep.
    pub(crate) const DEFAULT: Self = Self {
        batch_bytes: 1 << 20,
        ring_bytes: 64 << 10,
        max_batches: 256,
        max_depth: MAX_DEPTH,
    };
}

/// The graphics memory a vGPU may name, all ranges half-open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ranges {
    /// Base of the vGPU's aperture slice.
    pub(crate) aperture_base: u64,
    /// Size of the vGPU's aperture slice.
    pub(crate) aperture_size: u64,
    /// Base of the vGPU's hidden slice.
    pub(crate) hidden_base: u64,
    /// Size of the vGPU's hidden slice.
    pub(crate) hidden_size: u64,
    /// GGTT address of the guest ring the segment came from; no batch may start in it.
    pub(crate) ring_base: u64,
    /// Size of that ring in bytes.
    pub(crate) ring_size: u64,
    /// End of the PPGTT address space ([`PPGTT_LIMIT`] on GEN9).
    pub(crate) ppgtt_limit: u64,
}

/// GEN9's 48-bit PPGTT.
pub(crate) const PPGTT_LIMIT: u64 = 1 << 48;

impl Ranges {
    /// Whether `size` bytes at `addr` lie inside one GGTT slice (GVT-g:
    /// `intel_gvt_ggtt_validate_range`; a zero size checks `addr` alone).
    pub(crate) fn ggtt_ok(&self, addr: u64, size: u64) -> bool {
        self.ggtt_room(addr).is_some_and(|room| size.max(1) <= room)
    }

    /// Bytes from `addr` to the end of the GGTT slice it lies in, or `None` outside.
    pub(crate) fn ggtt_room(&self, addr: u64) -> Option<u64> {
        [
            (self.aperture_base, self.aperture_size),
            (self.hidden_base, self.hidden_size),
        ]
        .iter()
        .find_map(|&(base, size)| {
            let end = base.checked_add(size)?;
            (addr >= base && addr < end).then(|| end - addr)
        })
    }

    /// Whether `size` bytes at `addr` lie below the PPGTT limit.
    pub(crate) fn ppgtt_ok(&self, addr: u64, size: u64) -> bool {
        addr.checked_add(size)
            .is_some_and(|end| end <= self.ppgtt_limit)
    }

    /// Whether `addr` lies in the guest ring.
    pub(crate) fn in_ring(&self, addr: u64) -> bool {
        addr >= self.ring_base && addr - self.ring_base < self.ring_size
    }
}

/// One batch copy.
pub(crate) struct Batch {
    /// Where the copy must be written (host GGTT address from [`Placement::place`]).
    pub(crate) host_addr: u64,
    /// Where the guest's batch starts.
    pub(crate) guest_addr: u64,
    /// The address space the guest started it in.
    pub(crate) space: Space,
    /// The copy: exactly the commands that run, up to and including the
    /// `MI_BATCH_BUFFER_END` or chained `MI_BATCH_BUFFER_START` that ends it, patched.
    pub(crate) data: KVec<u32>,
}

/// What one scan saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Stats {
    /// Commands scanned, ring and batches.
    pub(crate) commands: usize,
    /// Batch copies made.
    pub(crate) batches: usize,
    /// Bytes of batch copies.
    pub(crate) batch_bytes: usize,
    /// Bytes of the ring segment.
    pub(crate) ring_bytes: usize,
}

/// A scanned workload, ready to be written to host memory and run.
pub(crate) struct Scanned {
    /// The shadow ring segment: the guest's commands with batch starts patched.
    pub(crate) ring: KVec<u32>,
    /// The batch copies, in the order their scans started.
    pub(crate) batches: KVec<Batch>,
    /// Statistics.
    pub(crate) stats: Stats,
}

/// Why a workload is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reason {
    /// No command with this header on this ring (GVT-g: "unknown cmd").
    Unknown,
    /// A length the command does not have, or a malformed header.
    Length,
    /// A command runs past the end of the ring segment or of the batch budget.
    Truncated,
    /// A batch without an end within the budget, or a ring segment over its limit.
    Budget,
    /// A register access (LRI, LRR, LRM, SRM, PIPE_CONTROL) outside the whitelist.
    Register,
    /// A GGTT access or GGTT batch start from inside a batch.
    GgttInBatch,
    /// A batch that starts in, or runs into, the guest ring.
    BatchInRing,
    /// A graphics address outside the vGPU's GGTT slices or above the PPGTT.
    Address,
    /// A command only the host may issue (GVT-g: `unexpected_cmd`).
    Privileged,
    /// More batches than [`Limits::max_batches`].
    Batches,
    /// A second-level batch too deep or from the ring, or a batch end in the ring.
    Nesting,
    /// Guest memory could not be read.
    ReadFailed,
    /// The host had no room (placement or allocation).
    NoMemory,
}

/// Number of [`Reason`]s, for an array of counters indexed by [`Reason::index`].
pub(crate) const REASONS: usize = 13;

impl Reason {
    /// Every reason, in [`Reason::index`] order.
    pub(crate) const ALL: [Self; REASONS] = [
        Self::Unknown,
        Self::Length,
        Self::Truncated,
        Self::Budget,
        Self::Register,
        Self::GgttInBatch,
        Self::BatchInRing,
        Self::Address,
        Self::Privileged,
        Self::Batches,
        Self::Nesting,
        Self::ReadFailed,
        Self::NoMemory,
    ];

    /// The reason's index in [`Reason::ALL`], below [`REASONS`].
    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// A stable short name, for debugfs counters.
    pub(crate) fn name(self) -> &'static CStr {
        match self {
            Self::Unknown => c"unknown_cmd",
            Self::Length => c"bad_length",
            Self::Truncated => c"truncated",
            Self::Budget => c"budget",
            Self::Register => c"register",
            Self::GgttInBatch => c"ggtt_in_batch",
            Self::BatchInRing => c"batch_in_ring",
            Self::Address => c"address",
            Self::Privileged => c"privileged",
            Self::Batches => c"too_many_batches",
            Self::Nesting => c"nesting",
            Self::ReadFailed => c"read_failed",
            Self::NoMemory => c"no_memory",
        }
    }
}

/// A refused workload: why, and where.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Refusal {
    /// Why.
    pub(crate) reason: Reason,
    /// The guest address of the batch the offending command is in, `None` for the ring.
    pub(crate) batch: Option<u64>,
    /// Dword offset of the offending command in the ring segment or the batch.
    pub(crate) offset: usize,
    /// The offending command's header (0 if none was read).
    pub(crate) header: u32,
}

impl Refusal {
    /// The reason's stable short name.
    pub(crate) fn name(&self) -> &'static CStr {
        self.reason.name()
    }
}

/// Scans `ring_segment`, the guest's ring commands from head to tail (already
/// unwrapped), on `engine`, with every batch it starts, and returns the shadow ring and
/// the batch copies.
///
/// Batches are read through `mem` in pieces of at most a page, their copies placed by
/// `place`; every graphics address is checked against `ranges`; `limits` bounds the
/// work.
///
/// # Errors
///
/// A [`Refusal`]: the first thing refused, with where it is.
pub(crate) fn scan(
    engine: Engine,
    ring_segment: &[u32],
    mem: &dyn Memory,
    place: &mut dyn Placement,
    ranges: &Ranges,
    limits: &Limits,
) -> Result<Scanned, Refusal> {
    scan::scan_ring(engine, ring_segment, mem, place, ranges, limits)
}
