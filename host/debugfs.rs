// SPDX-License-Identifier: GPL-2.0

//! Per-vGPU counters: every trap by kind, shown in debugfs.

use core::fmt;
use kernel::sync::atomic::{Atomic, Relaxed};

macro_rules! counters {
    ($($name:ident: $doc:literal,)*) => {
        /// Event counters of one vGPU. Relaxed atomics: they are statistics, not state.
        pub(crate) struct Counters {
            $(#[doc = $doc] pub(crate) $name: Atomic<u64>,)*
        }

        impl Default for Counters {
            fn default() -> Self {
                Self { $($name: Atomic::new(0),)* }
            }
        }

        impl fmt::Display for Counters {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                $(writeln!(f, "{} {}", stringify!($name), self.$name.load(Relaxed))?;)*
                Ok(())
            }
        }
    };
}

counters! {
    cfg_read: "Config space reads.",
    cfg_write: "Config space writes.",
    mmio_read: "BAR0 reads (one per aligned chunk).",
    mmio_write: "BAR0 writes (one per aligned chunk).",
    pvinfo_read: "BAR0 reads that hit PVINFO.",
    pvinfo_write: "BAR0 writes that hit PVINFO.",
    pvinfo_ro_write: "Guest writes to the host half of PVINFO, ignored.",
    g2v_notify: "g2v_notify writes.",
    mmio_unhandled: "BAR0 accesses between the registers (2 MiB) and the GGTT (8 MiB), or \
        straddling PVINFO: read 0, ignored.",
    reg_read: "BAR0 reads that hit a modelled register.",
    reg_write: "BAR0 writes that hit a modelled register.",
    reg_ro_write: "Writes to read-only registers, ignored.",
    reg_partial: "Sub-dword writes to registers with side effects, ignored.",
    default_read: "Dword reads of unmodelled registers below 2 MiB (debugfs unmodelled).",
    default_write: "Dword writes of unmodelled registers below 2 MiB, kept.",
    default_dropped: "Writes of unmodelled registers dropped: the default store is full.",
    default_untracked: "Reads of unmodelled registers not tracked by offset (store half full).",
    ggtt_window: "BAR0 accesses at 8 MiB and above (GGTT entries; debugfs gpu has the rest).",
    ggtt_failsafe: "GGTT entry writes ignored in failsafe.",
    forcewake: "Forcewake request writes (acknowledged at once).",
    gdrst: "GDRST writes.",
    gdrst_full: "Full GPU resets through GDRST.",
    gdrst_engine: "Engine resets through GDRST.",
    reset_ctl: "RESET_CTL reset requests answered READY_TO_RESET.",
    pcode: "PCODE mailbox commands (answered at once).",
    ggtt_invalidate: "GFX_FLSH_CNTL writes (GGTT invalidations).",
    fence_write: "Writes to the vGPU's own fence registers.",
    fence_dropped: "Accesses to fence registers beyond the vGPU's (read 0, dropped).",
    hws_pga_refused: "HWS_PGA writes outside the vGPU's slices, dropped.",
    elsp_write: "ELSP dword writes.",
    elsp_submit: "ELSP pairs accepted for the submission path.",
    elsp_refused: "ELSP pairs refused (all reasons below).",
    elsp_refused_invalid: "ELSP pairs refused: descriptor 0 not valid.",
    elsp_refused_privilege: "ELSP pairs refused: a descriptor without PRIVILEGE.",
    elsp_refused_mode: "ELSP pairs refused: addressing mode not 4-level.",
    elsp_refused_range: "ELSP pairs refused: context image outside the slices.",
    elsp_refused_busy: "ELSP pairs refused: 8 already waiting on the engine.",
    elsp_failsafe: "ELSP writes ignored in failsafe.",
    csb_update: "CSB entries written (register copy and HWSP).",
    csb_hwsp_fault: "CSB entries the guest HWSP store failed for.",
    event_user: "User interrupt events.",
    event_ctx_switch: "Context switch events.",
    event_error: "CS master error events.",
    irq_injected: "Interrupts the virtual controller injected (delivery: irq_*).",
    inject_user: "Injections caused by a user interrupt event.",
    inject_ctx_switch: "Injections caused by a context switch event.",
    inject_error: "Injections caused by a CS master error event.",
    inject_reg: "Injections of pending interrupts on a master, IER or IMR write.",
    failsafe: "Entries into failsafe (debugfs regs says why).",
    aperture_read: "BAR2 (aperture) reads.",
    aperture_write: "BAR2 (aperture) writes.",
    aperture_outside: "BAR2 accesses outside the vGPU's aperture slice (read 0, ignored).",
    bad_access: "Accesses refused: bad region, offset or length.",
    irq_msi: "Interrupts delivered through MSI.",
    irq_msi_unwired: "Interrupts for MSI, enabled by the guest, with no MSI eventfd.",
    irq_intx: "Interrupts delivered through INTx.",
    irq_dropped: "Interrupts with nowhere to go.",
    resets: "Device resets.",
    opens: "Opens of the vfio device.",
    kvm_track: "Opens that registered KVM write tracking for the shadow PPGTT.",
    kvm_track_failed: "Opens on KVM whose write-tracking registration failed (re-validation).",
    unpinned_by_unmap: "Guest page pins dropped because the user unmapped their range.",
}

impl Counters {
    /// Adds one to `c`.
    pub(crate) fn inc(c: &Atomic<u64>) {
        c.fetch_add(1, Relaxed);
    }
}
