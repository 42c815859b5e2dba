// SPDX-License-Identifier: GPL-2.0

//! The virtual interrupt controller of a vGPU: `GEN8_MASTER_IRQ` and the four GT banks
//! (ISR, IMR, IIR, IER), as GVT-g emulates them (`interrupt.c`).
//!
//! An event (an engine and its bits of GT bank 0) sets its IIR bits where IMR is clear
//! (`propagate_event`). The master's GT bits follow `IIR & IER` of their bank half
//! (`update_upstream_irq`, with GVT-g's `gen8_irq_map`); when the guest's enable bit
//! (bit 31) is set and a GT bit is set, the vGPU injects an interrupt
//! (`gen8_check_pending_irq`). IIR writes clear bits; IER writes recompute the master's
//! bits of their bank and re-evaluate; IMR and master writes re-evaluate. Only bit 31 of
//! the master is guest-writable (`intel_vgpu_reg_master_irq_handler`).
//!
//! The controller only decides; the caller raises the interrupt (MSI or INTx) through
//! `Vgpu::raise_irq_locked`, under `state`.

use crate::abi::regs;
use crate::gpu::Engine;
use core::fmt;

/// GT interrupt banks.
const BANKS: usize = regs::GT_BANKS as usize;

/// `gen8_irq_map` for the GT banks: (bank, bits of the bank, master bit).
const MASTER_MAP: [(usize, u32, u32); 6] = [
    (0, 0x0000_ffff, regs::MASTER_GT_RCS),
    (0, 0xffff_0000, regs::MASTER_GT_BCS),
    (1, 0x0000_ffff, 1 << 2),
    (1, 0xffff_0000, 1 << 3),
    (2, 0x0000_ffff, 1 << 4),
    (3, 0x0000_ffff, 1 << 6),
];

/// One register of a GT bank, by its offset from the bank's ISR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BankReg {
    Isr,
    Imr,
    Iir,
    Ier,
}

/// Where an offset lands in the controller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    Master,
    Bank(usize, BankReg),
}

/// Decodes a BAR0 offset of the controller.
fn decode(off: u32) -> Option<Slot> {
    if off == regs::MASTER_IRQ {
        return Some(Slot::Master);
    }
    let rel = off.checked_sub(regs::GT_ISR)?;
    let bank = (rel / 0x10) as usize;
    if bank >= BANKS || rel % 4 != 0 {
        return None;
    }
    let reg = match rel % 0x10 {
        0x0 => BankReg::Isr,
        0x4 => BankReg::Imr,
        0x8 => BankReg::Iir,
        _ => BankReg::Ier,
    };
    Some(Slot::Bank(bank, reg))
}

/// Whether `off` is a register of the controller.
pub(crate) fn contains(off: u32) -> bool {
    decode(off).is_some()
}

/// The interrupt registers of one vGPU.
#[derive(Clone, Debug)]
pub(crate) struct Intr {
    master: u32,
    isr: [u32; BANKS],
    imr: [u32; BANKS],
    iir: [u32; BANKS],
    ier: [u32; BANKS],
}

impl Intr {
    /// The power-on state: everything masked and disabled, nothing pending (GEN9's reset
    /// values, and what `gen8_gt_irq_reset` leaves).
    pub(crate) const fn new() -> Self {
        Self {
            master: 0,
            isr: [0; BANKS],
            imr: [!0; BANKS],
            iir: [0; BANKS],
            ier: [0; BANKS],
        }
    }

    /// Back to the power-on state.
    pub(crate) fn reset(&mut self) {
        *self = Self::new();
    }

    /// Reads the register at BAR0 offset `off` (0 if it is not one of the controller's).
    pub(crate) fn read(&self, off: u32) -> u32 {
        match decode(off) {
            Some(Slot::Master) => self.master,
            Some(Slot::Bank(b, r)) => self.bank(b, r).copied().unwrap_or(0),
            None => 0,
        }
    }

    fn bank(&self, b: usize, r: BankReg) -> Option<&u32> {
        match r {
            BankReg::Isr => self.isr.get(b),
            BankReg::Imr => self.imr.get(b),
            BankReg::Iir => self.iir.get(b),
            BankReg::Ier => self.ier.get(b),
        }
    }

    fn bank_mut(&mut self, b: usize, r: BankReg) -> Option<&mut u32> {
        match r {
            BankReg::Isr => self.isr.get_mut(b),
            BankReg::Imr => self.imr.get_mut(b),
            BankReg::Iir => self.iir.get_mut(b),
            BankReg::Ier => self.ier.get_mut(b),
        }
    }

    /// A guest write of `v` at BAR0 offset `off`. Returns whether the vGPU must inject an
    /// interrupt now.
    pub(crate) fn write(&mut self, off: u32, v: u32) -> bool {
        match decode(off) {
            Some(Slot::Master) => {
                self.master =
                    (self.master & !regs::MASTER_IRQ_CONTROL) | (v & regs::MASTER_IRQ_CONTROL);
                self.check_pending()
            }
            // Read only: the status of the (unmodelled) interrupt lines.
            Some(Slot::Bank(_, BankReg::Isr)) => false,
            Some(Slot::Bank(b, BankReg::Imr)) => {
                if let Some(r) = self.imr.get_mut(b) {
                    *r = v;
                }
                self.check_pending()
            }
            Some(Slot::Bank(b, BankReg::Iir)) => {
                if let Some(r) = self.iir.get_mut(b) {
                    *r &= !v;
                }
                self.update_upstream(b);
                false
            }
            Some(Slot::Bank(b, BankReg::Ier)) => {
                if let Some(r) = self.ier.get_mut(b) {
                    *r = v;
                }
                self.update_upstream(b);
                self.check_pending()
            }
            None => false,
        }
    }

    /// Stores `v` as it is, without side effects (failsafe).
    pub(crate) fn store_raw(&mut self, off: u32, v: u32) {
        match decode(off) {
            Some(Slot::Master) => self.master = v,
            Some(Slot::Bank(b, r)) => {
                if let Some(x) = self.bank_mut(b, r) {
                    *x = v;
                }
            }
            None => {}
        }
    }

    /// An event on `engine`: `bits` of its half of GT bank 0 (`regs::GT_USER_INTERRUPT`,
    /// `regs::GT_CONTEXT_SWITCH`, `regs::GT_CS_MASTER_ERROR`). Sets the IIR bits IMR
    /// lets through (`propagate_event`) and returns whether the vGPU must inject an
    /// interrupt (`intel_vgpu_trigger_virtual_event`).
    pub(crate) fn event(&mut self, engine: Engine, bits: u32) -> bool {
        let bits = regs::gt_bits(engine.irq_shift(), bits);
        self.iir[0] |= bits & !self.imr[0];
        self.check_pending()
    }

    /// Recomputes the master's bits of bank `b` from its `IIR & IER`
    /// (`update_upstream_irq`).
    fn update_upstream(&mut self, b: usize) {
        let (Some(iir), Some(ier)) = (self.iir.get(b), self.ier.get(b)) else {
            return;
        };
        let val = iir & ier;
        for (bank, mask, bit) in MASTER_MAP {
            if bank != b {
                continue;
            }
            if val & mask != 0 {
                self.master |= bit;
            } else {
                self.master &= !bit;
            }
        }
    }

    /// `gen8_check_pending_irq`: with the master enabled, raises the master bits of every
    /// bank with `IIR & IER` set; returns whether any master bit is set, that is whether
    /// an interrupt must be injected.
    pub(crate) fn check_pending(&mut self) -> bool {
        if self.master & regs::MASTER_IRQ_CONTROL == 0 {
            return false;
        }
        for b in 0..BANKS {
            if self.iir[b] & self.ier[b] != 0 {
                self.update_upstream(b);
            }
        }
        self.master & !regs::MASTER_IRQ_CONTROL != 0
    }
}

impl fmt::Display for Intr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "master {:#010x}", self.master)?;
        for b in 0..BANKS {
            writeln!(
                f,
                "gt{} isr {:#010x} imr {:#010x} iir {:#010x} ier {:#010x}",
                b, self.isr[b], self.imr[b], self.iir[b], self.ier[b]
            )?;
        }
        Ok(())
    }
}

#[kernel::prelude::kunit_tests(gvtpv_host_intr)]
mod tests {
    use super::*;

    const IMR0: u32 = regs::GT_IMR;
    const IIR0: u32 = regs::GT_IIR;
    const IER0: u32 = regs::GT_IER;
    const CS: u32 = regs::GT_CONTEXT_SWITCH;
    const USER: u32 = regs::GT_USER_INTERRUPT;

    /// The controller as i915's `gen8_gt_irq_postinstall` leaves it for `engine`'s
    /// context-switch and user interrupts, master still off.
    fn armed() -> Intr {
        let mut i = Intr::new();
        let en = regs::gt_bits(regs::GT_RCS_SHIFT, CS | USER)
            | regs::gt_bits(regs::GT_BCS_SHIFT, CS | USER);
        assert!(!i.write(IER0, en));
        assert!(!i.write(IMR0, !en));
        i
    }

    #[test]
    fn decode_covers_master_and_four_banks() {
        assert_eq!(decode(regs::MASTER_IRQ), Some(Slot::Master));
        assert_eq!(decode(regs::GT_ISR), Some(Slot::Bank(0, BankReg::Isr)));
        assert_eq!(
            decode(regs::GT_IER + 0x30),
            Some(Slot::Bank(3, BankReg::Ier))
        );
        assert_eq!(decode(regs::GT_ISR + 0x40), None);
        assert_eq!(decode(regs::GT_ISR + 2), None);
        assert!(!contains(regs::MASTER_IRQ + 4));
    }

    #[test]
    fn event_with_master_enabled_injects() {
        let mut i = armed();
        assert!(!i.write(regs::MASTER_IRQ, regs::MASTER_IRQ_CONTROL));
        assert!(i.event(Engine::Rcs, CS));
        assert_eq!(i.read(IIR0), 1 << 8);
        assert_eq!(
            i.read(regs::MASTER_IRQ),
            regs::MASTER_IRQ_CONTROL | regs::MASTER_GT_RCS
        );
        // BCS lands in the upper half and its own master bit.
        assert!(i.event(Engine::Bcs, USER));
        assert_eq!(i.read(IIR0), (1 << 8) | (1 << 16));
        assert_ne!(i.read(regs::MASTER_IRQ) & regs::MASTER_GT_BCS, 0);
    }

    #[test]
    fn masked_event_sets_nothing() {
        let mut i = armed();
        i.write(regs::MASTER_IRQ, regs::MASTER_IRQ_CONTROL);
        // Semaphore wait (bit 11) is masked by IMR: no IIR bit, no interrupt.
        assert!(!i.event(Engine::Rcs, 1 << 11));
        assert_eq!(i.read(IIR0), 0);
        // Unmasked in IMR but disabled in IER: latched, not injected.
        i.write(IMR0, 0);
        assert!(!i.event(Engine::Rcs, 1 << 11));
        assert_eq!(i.read(IIR0), 1 << 11);
        assert_eq!(i.read(regs::MASTER_IRQ), regs::MASTER_IRQ_CONTROL);
    }

    #[test]
    fn master_disabled_holds_then_enable_injects() {
        let mut i = armed();
        assert!(!i.event(Engine::Rcs, USER));
        assert_eq!(i.read(IIR0), 1);
        assert_eq!(i.read(regs::MASTER_IRQ), 0);
        // Only bit 31 is writable; enabling raises the pending one.
        assert!(i.write(regs::MASTER_IRQ, !0));
        assert_eq!(
            i.read(regs::MASTER_IRQ),
            regs::MASTER_IRQ_CONTROL | regs::MASTER_GT_RCS
        );
    }

    #[test]
    fn iir_is_write_one_to_clear_and_drops_the_master_bit() {
        let mut i = armed();
        i.write(regs::MASTER_IRQ, regs::MASTER_IRQ_CONTROL);
        i.event(Engine::Rcs, CS | USER);
        // i915's handler: master off, read IIR, write it back, master on.
        assert!(!i.write(regs::MASTER_IRQ, 0));
        assert_eq!(i.read(regs::MASTER_IRQ), regs::MASTER_GT_RCS);
        assert!(!i.write(IIR0, CS));
        assert_eq!(i.read(IIR0), USER);
        assert_eq!(i.read(regs::MASTER_IRQ), regs::MASTER_GT_RCS);
        assert!(!i.write(IIR0, USER));
        assert_eq!(i.read(IIR0), 0);
        assert_eq!(i.read(regs::MASTER_IRQ), 0);
        assert!(!i.write(regs::MASTER_IRQ, regs::MASTER_IRQ_CONTROL));
    }

    #[test]
    fn ier_and_imr_writes_re_evaluate() {
        let mut i = Intr::new();
        i.write(regs::MASTER_IRQ, regs::MASTER_IRQ_CONTROL);
        i.write(IMR0, 0);
        assert!(!i.event(Engine::Bcs, CS));
        assert_eq!(i.read(IIR0), 1 << 24);
        // Enabling it in IER sets the master bit and injects.
        assert!(i.write(IER0, 1 << 24));
        assert_eq!(
            i.read(regs::MASTER_IRQ),
            regs::MASTER_IRQ_CONTROL | regs::MASTER_GT_BCS
        );
        // Disabling it again clears the master bit.
        assert!(!i.write(IER0, 0));
        assert_eq!(i.read(regs::MASTER_IRQ), regs::MASTER_IRQ_CONTROL);
        // ISR is read only; reset masks everything again.
        i.write(regs::GT_ISR, !0);
        assert_eq!(i.read(regs::GT_ISR), 0);
        i.reset();
        assert_eq!(i.read(IMR0), !0);
        assert_eq!(i.read(IIR0), 0);
    }
}
