// SPDX-License-Identifier: GPL-2.0

//! Virtual interrupts of a vGPU: the INTx and MSI eventfds QEMU hands over with
//! `VFIO_DEVICE_SET_IRQS`, and how the vGPU raises an interrupt through them.

use crate::vfio::{uapi, EventFd, IrqAction, IrqData, IrqSet};
use kernel::prelude::*;

/// The interrupt wiring of one vGPU.
#[derive(Default)]
pub(crate) struct Irqs {
    intx: Option<EventFd>,
    intx_unmask: Option<EventFd>,
    intx_masked: bool,
    msi: Option<EventFd>,
}

/// How an interrupt was delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Delivered {
    /// Through the MSI eventfd.
    Msi,
    /// Through the INTx eventfd.
    Intx,
    /// Not at all: nothing is wired, or INTx is masked or disabled.
    Dropped,
}

/// `(count, flags)` of interrupt `index`, as `VFIO_DEVICE_GET_IRQ_INFO` reports it.
pub(crate) fn info(index: u32) -> (u32, u32) {
    match index {
        uapi::irq::INTX => (1, uapi::IRQ_INFO_EVENTFD | uapi::IRQ_INFO_MASKABLE),
        uapi::irq::MSI => (1, uapi::IRQ_INFO_EVENTFD | uapi::IRQ_INFO_NORESIZE),
        _ => (0, 0),
    }
}

impl Irqs {
    /// Applies a validated SET_IRQS request (the vfio core checked index, range and flags).
    ///
    /// # Errors
    ///
    /// `EINVAL` for an action this interrupt does not support.
    pub(crate) fn set(&mut self, s: IrqSet) -> Result<bool> {
        let mut fire = false;
        match (s.index, s.action, s.data) {
            (uapi::irq::INTX, IrqAction::Trigger, IrqData::EventFd(mut v)) => {
                self.intx = v.pop().flatten()
            }
            (uapi::irq::MSI, IrqAction::Trigger, IrqData::EventFd(mut v)) => {
                self.msi = v.pop().flatten()
            }
            (uapi::irq::INTX, IrqAction::Trigger, IrqData::None) if s.count == 0 => {
                self.intx = None;
                self.intx_unmask = None;
            }
            (uapi::irq::MSI, IrqAction::Trigger, IrqData::None) if s.count == 0 => self.msi = None,
            (_, IrqAction::Trigger, IrqData::None) => fire = true,
            (_, IrqAction::Trigger, IrqData::Bool(v)) => fire = v.first().copied().unwrap_or(false),
            (uapi::irq::INTX, IrqAction::Mask, IrqData::None) => self.intx_masked = true,
            (uapi::irq::INTX, IrqAction::Mask, IrqData::Bool(v)) => {
                if v.first().copied().unwrap_or(false) {
                    self.intx_masked = true;
                }
            }
            (uapi::irq::INTX, IrqAction::Unmask, IrqData::None) => self.intx_masked = false,
            (uapi::irq::INTX, IrqAction::Unmask, IrqData::Bool(v)) => {
                if v.first().copied().unwrap_or(false) {
                    self.intx_masked = false;
                }
            }
            // KVM signals this eventfd when the guest EOIs the level interrupt (resample).
            // The vGPU re-asserts nothing on EOI: its interrupts are edge-like events.
            (uapi::irq::INTX, IrqAction::Unmask, IrqData::EventFd(mut v)) => {
                self.intx_unmask = v.pop().flatten()
            }
            _ => return Err(EINVAL),
        }
        Ok(fire)
    }

    /// Raises one interrupt: MSI if the guest enabled it, else INTx unless masked or
    /// disabled in the command register.
    pub(crate) fn raise(&mut self, msi_enabled: bool, intx_disabled: bool) -> Delivered {
        if msi_enabled {
            if let Some(e) = &self.msi {
                e.signal();
                return Delivered::Msi;
            }
            return Delivered::Dropped;
        }
        match &self.intx {
            Some(e) if !self.intx_masked && !intx_disabled => {
                e.signal();
                // INTx is level-triggered and vfio masks it on delivery.
                self.intx_masked = true;
                Delivered::Intx
            }
            _ => Delivered::Dropped,
        }
    }

    /// The device file was closed: let go of every eventfd.
    pub(crate) fn clear(&mut self) {
        *self = Self::default();
    }
}

#[kunit_tests(gvtpv_host_irq)]
mod tests {
    use super::*;

    fn req(index: u32, count: u32, action: IrqAction, data: IrqData) -> IrqSet {
        IrqSet {
            index,
            count,
            action,
            data,
        }
    }

    fn bools(v: bool) -> IrqData {
        let mut k = KVec::new();
        k.push(v, GFP_KERNEL).unwrap();
        IrqData::Bool(k)
    }

    #[test]
    fn info_matches_vfio_pci() {
        assert_eq!(info(uapi::irq::INTX).0, 1);
        assert!(info(uapi::irq::INTX).1 & uapi::IRQ_INFO_MASKABLE != 0);
        assert_eq!(
            info(uapi::irq::MSI),
            (1, uapi::IRQ_INFO_EVENTFD | uapi::IRQ_INFO_NORESIZE)
        );
        assert_eq!(info(2), (0, 0));
        assert_eq!(info(4), (0, 0));
    }

    #[test]
    fn trigger_and_mask_rules() {
        let mut i = Irqs::default();
        // A data-less or true trigger asks to fire; false does not; count 0 disables.
        assert_eq!(
            i.set(req(uapi::irq::MSI, 1, IrqAction::Trigger, IrqData::None)),
            Ok(true)
        );
        assert_eq!(
            i.set(req(uapi::irq::INTX, 1, IrqAction::Trigger, bools(false))),
            Ok(false)
        );
        assert_eq!(
            i.set(req(uapi::irq::INTX, 0, IrqAction::Trigger, IrqData::None)),
            Ok(false)
        );
        // MSI is not maskable.
        assert_eq!(
            i.set(req(uapi::irq::MSI, 1, IrqAction::Mask, IrqData::None)),
            Err(EINVAL)
        );
        assert_eq!(
            i.set(req(uapi::irq::MSI, 1, IrqAction::Unmask, bools(true))),
            Err(EINVAL)
        );
        // INTx masks and unmasks; mask with an eventfd is not a thing.
        assert_eq!(
            i.set(req(uapi::irq::INTX, 1, IrqAction::Mask, IrqData::None)),
            Ok(false)
        );
        assert!(i.intx_masked);
        assert_eq!(
            i.set(req(uapi::irq::INTX, 1, IrqAction::Unmask, bools(false))),
            Ok(false)
        );
        assert!(i.intx_masked);
        assert_eq!(
            i.set(req(uapi::irq::INTX, 1, IrqAction::Unmask, bools(true))),
            Ok(false)
        );
        assert!(!i.intx_masked);
        let fds = IrqData::EventFd(KVec::new());
        assert_eq!(
            i.set(req(uapi::irq::INTX, 1, IrqAction::Mask, fds)),
            Err(EINVAL)
        );
    }

    #[test]
    fn nothing_wired_drops() {
        let mut i = Irqs::default();
        assert_eq!(i.raise(true, false), Delivered::Dropped);
        assert_eq!(i.raise(false, false), Delivered::Dropped);
        // Tearing an eventfd down (fd -1) leaves nothing wired.
        let mut v = KVec::new();
        v.push(None, GFP_KERNEL).unwrap();
        assert_eq!(
            i.set(req(
                uapi::irq::MSI,
                1,
                IrqAction::Trigger,
                IrqData::EventFd(v)
            )),
            Ok(false)
        );
        assert!(i.msi.is_none());
        assert_eq!(i.raise(true, false), Delivered::Dropped);
    }
}
