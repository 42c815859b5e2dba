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
    mmio_unhandled: "BAR0 accesses outside any modelled register.",
    aperture_read: "BAR2 (aperture) reads.",
    aperture_write: "BAR2 (aperture) writes.",
    aperture_outside: "BAR2 accesses outside the vGPU's aperture slice (read 0, ignored).",
    bad_access: "Accesses refused: bad region, offset or length.",
    irq_msi: "Interrupts delivered through MSI.",
    irq_intx: "Interrupts delivered through INTx.",
    irq_dropped: "Interrupts with nowhere to go.",
    resets: "Device resets.",
    opens: "Opens of the vfio device.",
    unpinned_by_unmap: "Guest page pins dropped because the user unmapped their range.",
}

impl Counters {
    /// Adds one to `c`.
    pub(crate) fn inc(c: &Atomic<u64>) {
        c.fetch_add(1, Relaxed);
    }
}
