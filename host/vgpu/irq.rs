// SPDX-License-Identifier: GPL-2.0

//! Virtual interrupts of a vGPU: the INTx, MSI and device-request eventfds QEMU hands over
//! with `VFIO_DEVICE_SET_IRQS`, and how the vGPU raises an interrupt through them.
//!
//! INTx is not auto-masked: the vGPU's interrupts are events (a GEN9 IIR bit that the
//! guest clears), each signalled once as an edge on the INTx eventfd. So `GET_IRQ_INFO`
//! does not report `AUTOMASKED`, and the unmask eventfd QEMU registers for KVM's
//! resampling is accepted and held, but has nothing to unmask. An explicit mask from the
//! user (`ACTION_MASK`) holds INTx back until `ACTION_UNMASK`; an interrupt raised while
//! masked is kept pending and delivered on unmask, as a masked PCI INTx line would be.
//!
//! Guests use MSI (i915 does); INTx is there for a guest that disables it.

use crate::vfio::{uapi, EventFd, IrqAction, IrqData, IrqSet};
use kernel::prelude::*;

/// The interrupt wiring of one vGPU.
#[derive(Default)]
pub(crate) struct Irqs {
    intx: Option<EventFd>,
    /// KVM's resample eventfd (`ACTION_UNMASK` with an eventfd); nothing to unmask.
    intx_unmask: Option<EventFd>,
    intx_masked: bool,
    /// An interrupt raised while INTx was masked by the user.
    intx_pending: bool,
    msi: Option<EventFd>,
    /// Where device requests (`VfioOps::request`) are relayed to the user.
    req: Option<EventFd>,
}

/// How an interrupt was delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Delivered {
    /// Through the MSI eventfd.
    Msi,
    /// Through the INTx eventfd.
    Intx,
    /// Not at all: the guest enabled MSI but the user wired no MSI eventfd.
    MsiUnwired,
    /// Not at all: nothing is wired, or INTx is masked or disabled.
    Dropped,
}

/// `(count, flags)` of interrupt `index`, as `VFIO_DEVICE_GET_IRQ_INFO` reports it.
pub(crate) fn info(index: u32) -> (u32, u32) {
    match index {
        uapi::irq::INTX => (1, uapi::IRQ_INFO_EVENTFD | uapi::IRQ_INFO_MASKABLE),
        uapi::irq::MSI => (1, uapi::IRQ_INFO_EVENTFD | uapi::IRQ_INFO_NORESIZE),
        uapi::irq::REQ => (1, uapi::IRQ_INFO_EVENTFD | uapi::IRQ_INFO_NORESIZE),
        _ => (0, 0),
    }
}

/// Whether a bool-data request acts (its one flag is set).
fn flag(v: &KVec<bool>) -> bool {
    v.first().copied().unwrap_or(false)
}

impl Irqs {
    /// Applies a validated SET_IRQS request (the vfio core checked index, range and data
    /// size, the vfio room that exactly one action is named).
    ///
    /// Returns whether the user asked to fire the interrupt (a loopback trigger).
    ///
    /// # Errors
    ///
    /// `EINVAL` for an action this interrupt does not support.
    pub(crate) fn set(&mut self, s: IrqSet) -> Result<bool> {
        use IrqAction::*;
        let mut fire = false;
        match (s.index, s.action, s.data) {
            (uapi::irq::INTX, Trigger, IrqData::EventFd(mut v)) => {
                self.intx = v.pop().flatten();
                self.intx_pending = false;
            }
            (uapi::irq::MSI, Trigger, IrqData::EventFd(mut v)) => self.msi = v.pop().flatten(),
            (uapi::irq::REQ, Trigger, IrqData::EventFd(mut v)) => self.req = v.pop().flatten(),
            (uapi::irq::INTX, Trigger, IrqData::None) if s.count == 0 => {
                self.intx = None;
                self.intx_unmask = None;
                self.intx_masked = false;
                self.intx_pending = false;
            }
            (uapi::irq::MSI, Trigger, IrqData::None) if s.count == 0 => self.msi = None,
            (uapi::irq::REQ, Trigger, IrqData::None) if s.count == 0 => self.req = None,
            (uapi::irq::INTX | uapi::irq::MSI, Trigger, IrqData::None) => fire = true,
            (uapi::irq::INTX | uapi::irq::MSI, Trigger, IrqData::Bool(v)) => fire = flag(&v),
            (uapi::irq::INTX, Mask, IrqData::None) => self.intx_masked = true,
            (uapi::irq::INTX, Mask, IrqData::Bool(v)) => self.intx_masked |= flag(&v),
            (uapi::irq::INTX, Unmask, IrqData::None) => fire |= self.unmask(),
            (uapi::irq::INTX, Unmask, IrqData::Bool(v)) => {
                if flag(&v) {
                    fire |= self.unmask();
                }
            }
            (uapi::irq::INTX, Unmask, IrqData::EventFd(mut v)) => {
                self.intx_unmask = v.pop().flatten()
            }
            _ => return Err(EINVAL),
        }
        Ok(fire)
    }

    /// Unmasks INTx; returns whether an interrupt is pending and should be raised now.
    fn unmask(&mut self) -> bool {
        self.intx_masked = false;
        core::mem::take(&mut self.intx_pending)
    }

    /// Raises one interrupt: MSI if the guest enabled it, else INTx unless the user masked
    /// it (then it stays pending) or the guest disabled it in the command register.
    pub(crate) fn raise(&mut self, msi_enabled: bool, intx_disabled: bool) -> Delivered {
        if msi_enabled {
            if let Some(e) = &self.msi {
                e.signal();
                return Delivered::Msi;
            }
            return Delivered::MsiUnwired;
        }
        if intx_disabled {
            return Delivered::Dropped;
        }
        match &self.intx {
            Some(_) if self.intx_masked => {
                self.intx_pending = true;
                Delivered::Dropped
            }
            Some(e) => {
                e.signal();
                Delivered::Intx
            }
            None => Delivered::Dropped,
        }
    }

    /// Relays a device request to the user; `false` if no request eventfd is registered.
    pub(crate) fn request(&self) -> bool {
        match &self.req {
            Some(e) => {
                e.signal();
                true
            }
            None => false,
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
        // Not auto-masked: the module documentation says why.
        assert!(info(uapi::irq::INTX).1 & uapi::IRQ_INFO_AUTOMASKED == 0);
        assert_eq!(
            info(uapi::irq::MSI),
            (1, uapi::IRQ_INFO_EVENTFD | uapi::IRQ_INFO_NORESIZE)
        );
        assert_eq!(info(uapi::irq::REQ).0, 1);
        assert_eq!(info(2), (0, 0));
        assert_eq!(info(3), (0, 0));
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
        // MSI is not maskable; the request interrupt only takes an eventfd.
        assert_eq!(
            i.set(req(uapi::irq::MSI, 1, IrqAction::Mask, IrqData::None)),
            Err(EINVAL)
        );
        assert_eq!(
            i.set(req(uapi::irq::MSI, 1, IrqAction::Unmask, bools(true))),
            Err(EINVAL)
        );
        assert_eq!(
            i.set(req(uapi::irq::REQ, 1, IrqAction::Trigger, IrqData::None)),
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
    fn masked_intx_stays_pending() {
        let mut i = Irqs {
            intx_masked: true,
            ..Default::default()
        };
        // Nothing wired: dropped, not pending.
        assert_eq!(i.raise(false, false), Delivered::Dropped);
        assert!(!i.intx_pending);
        // Disabled by the guest: dropped.
        assert_eq!(i.raise(false, true), Delivered::Dropped);
        // Unmask with nothing pending does not ask to fire.
        assert_eq!(
            i.set(req(uapi::irq::INTX, 1, IrqAction::Unmask, IrqData::None)),
            Ok(false)
        );
        // A pending interrupt fires on unmask.
        i.intx_masked = true;
        i.intx_pending = true;
        assert_eq!(
            i.set(req(uapi::irq::INTX, 1, IrqAction::Unmask, IrqData::None)),
            Ok(true)
        );
        assert!(!i.intx_pending);
    }

    #[test]
    fn nothing_wired_drops() {
        let mut i = Irqs::default();
        assert_eq!(i.raise(true, false), Delivered::MsiUnwired);
        assert_eq!(i.raise(false, false), Delivered::Dropped);
        assert!(!i.request());
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
        assert_eq!(i.raise(true, false), Delivered::MsiUnwired);
    }
}
