// SPDX-License-Identifier: GPL-2.0

//! The vGPU's MSI vector and its handler (`i915_irq.c: gen8_irq_handler`,
//! `gt/intel_gt_irq.c: gen8_gt_irq_handler`).
//!
//! The hard handler only touches registers: master off, read the master, read GT IIR
//! bank 0 and write it back (ack), master on; it ors the bits into a word and wakes the
//! thread. The thread hands each engine its half (CSB processing, error capture, waking
//! waiters), so no lock is taken in hard interrupt context.

use super::{
    engine::{or_bits, Engine},
    mmio::Mmio,
    regs::*,
};
use kernel::{
    device::{Bound, Device},
    io::{register::Array, Io},
    irq::{IrqReturn, ThreadedHandler, ThreadedIrqReturn},
    prelude::*,
    sync::{
        atomic::{Atomic, Relaxed},
        Arc,
    },
};

/// What the interrupt handler shares with the rest of the driver.
pub(crate) struct IrqHandler {
    mmio: Arc<Mmio>,
    engines: [Arc<Engine>; 2],
    /// GT IIR bank 0 bits acked by the hard handler, not yet handled by the thread.
    pending: Atomic<u32>,
    /// Interrupts that carried GT bits.
    pub(crate) count: Atomic<u32>,
}

impl IrqHandler {
    /// A handler for these engines.
    pub(crate) fn new(mmio: Arc<Mmio>, engines: [Arc<Engine>; 2]) -> Self {
        Self {
            mmio,
            engines,
            pending: Atomic::new(0),
            count: Atomic::new(0),
        }
    }
}

impl ThreadedHandler for IrqHandler {
    fn handle(&self, _dev: &Device<Bound>) -> ThreadedIrqReturn {
        let iir = self.mmio.with(|b| {
            // gen8_master_intr_disable: master off, then read what is pending.
            b.try_write_reg(MASTER_IRQ::zeroed())?;
            let master = b.try_read(MASTER_IRQ)?;
            let mut iir = 0;
            if master.gt_rcs() || master.gt_bcs() {
                iir = b.try_read(GT_IIR::at(0))?.into_raw();
                if iir != 0 {
                    b.try_write(GT_IIR::at(0), GT_IIR::from(iir))?;
                }
            }
            b.try_write_reg(MASTER_IRQ::zeroed().with_control(true))?;
            Ok(iir)
        });
        match iir {
            Ok(0) | Err(_) => ThreadedIrqReturn::None,
            Ok(iir) => {
                or_bits(&self.pending, iir);
                self.count.add(1u32, Relaxed);
                ThreadedIrqReturn::WakeThread
            }
        }
    }

    fn handle_threaded(&self, _dev: &Device<Bound>) -> IrqReturn {
        let iir = self.pending.xchg(0, Relaxed);
        for e in &self.engines {
            e.irq((iir >> e.id().irq_shift()) & 0xffff);
        }
        IrqReturn::Handled
    }
}
