// SPDX-License-Identifier: GPL-2.0

//! Emulated PCI configuration space of a vGPU: a GEN9 GT2 VGA device with a 64-bit 16 MiB
//! MMIO BAR0, a 64-bit prefetchable aperture BAR2 as large as the GPU's whole aperture
//! (GVT-g sizes it so for every vGPU: a GEN9 i915 guest takes the aperture size from BAR2
//! and refuses a balloon that does not fit in it), the GMCH control register that
//! advertises the GGTT size, and an MSI capability.
//!
//! Every byte has a write mask; read-only bits keep their value whatever the guest writes.
//! BARs size like hardware: writing all ones reads back the size mask.

use crate::abi::gen;
use kernel::prelude::*;

/// Size of the emulated config space.
pub(crate) const CFG_SIZE: usize = 256;

const COMMAND: usize = 0x04;
const STATUS: usize = 0x06;
const BAR0: usize = 0x10;
const BAR2: usize = 0x18;
const SUBSYSTEM: usize = 0x2c;
const CAP_PTR: usize = 0x34;
const INTERRUPT_LINE: usize = 0x3c;
const INTERRUPT_PIN: usize = 0x3d;
/// Offset of the MSI capability (where GEN9 has it).
pub(crate) const MSI_CAP: usize = 0xac;
const MSI_FLAGS_ENABLE: u16 = 1 << 0;
const MSI_FLAGS_64BIT: u16 = 1 << 7;

const BAR_MEM_64: u32 = 0x4;
const BAR_PREFETCH: u32 = 0x8;
/// PCI_COMMAND bits a guest may change: I/O, memory, bus master, INTx disable.
const COMMAND_WMASK: u16 = 0x0407;
const STATUS_CAP_LIST: u16 = 0x0010;

/// The config space bytes and their write masks.
#[derive(Clone)]
pub(crate) struct ConfigSpace {
    bytes: [u8; CFG_SIZE],
    wmask: [u8; CFG_SIZE],
}

impl ConfigSpace {
    /// The config space of a vGPU at power-on.
    pub(crate) fn new() -> Self {
        let aperture = crate::mm::partition::APERTURE_SIZE;
        let mut c = Self {
            bytes: [0; CFG_SIZE],
            wmask: [0; CFG_SIZE],
        };
        c.put16(0x00, gen::PCI_VENDOR_ID_INTEL);
        c.put16(0x02, gen::PCI_DEVICE_ID_SKL_GT2);
        c.put16(STATUS, STATUS_CAP_LIST);
        c.put32(0x08, (gen::PCI_CLASS_DISPLAY_VGA << 8) | 0x06);
        c.put32(BAR0, BAR_MEM_64);
        c.put32(BAR2, BAR_MEM_64 | BAR_PREFETCH);
        c.put16(SUBSYSTEM, gen::PCI_VENDOR_ID_INTEL);
        c.put16(SUBSYSTEM + 2, gen::PCI_DEVICE_ID_SKL_GT2);
        c.bytes[CAP_PTR] = MSI_CAP as u8;
        c.bytes[INTERRUPT_PIN] = 1;
        // 4 GiB is one of the sizes GMCH can express (shared-abi tests); 0 would say "no GGTT".
        c.put16(
            gen::GMCH_CTRL as usize,
            gen::gmch_for_ggtt_size(crate::mm::partition::GGTT_SIZE).unwrap_or(0),
        );
        c.bytes[MSI_CAP] = 0x05;
        c.bytes[MSI_CAP + 1] = 0;
        c.put16(MSI_CAP + 2, MSI_FLAGS_64BIT);

        c.wmask_bytes(COMMAND, &COMMAND_WMASK.to_le_bytes());
        c.wmask_bytes(BAR0, &bar_mask(gen::BAR0_SIZE).to_le_bytes());
        c.wmask_bytes(BAR2, &bar_mask(aperture).to_le_bytes());
        c.wmask_bytes(INTERRUPT_LINE, &[0xff]);
        c.wmask_bytes(MSI_CAP + 2, &MSI_FLAGS_ENABLE.to_le_bytes());
        // Address (dword aligned) low and high, data.
        c.wmask_bytes(
            MSI_CAP + 4,
            &[0xfc, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        );
        c
    }

    /// Back to the power-on state: BARs, command, MSI address and data cleared.
    pub(crate) fn reset(&mut self) {
        *self = Self::new();
    }

    fn put16(&mut self, off: usize, v: u16) {
        self.bytes[off..off + 2].copy_from_slice(&v.to_le_bytes());
    }

    fn put32(&mut self, off: usize, v: u32) {
        self.bytes[off..off + 4].copy_from_slice(&v.to_le_bytes());
    }

    fn wmask_bytes(&mut self, off: usize, m: &[u8]) {
        self.wmask[off..off + m.len()].copy_from_slice(m);
    }

    /// Reads `buf.len()` bytes at `off`; the caller bounds-checked the range.
    ///
    /// Returns `false` (and reads nothing) if the range leaves the config space.
    pub(crate) fn read(&self, off: usize, buf: &mut [u8]) -> bool {
        match off
            .checked_add(buf.len())
            .and_then(|end| self.bytes.get(off..end))
        {
            Some(src) => {
                buf.copy_from_slice(src);
                true
            }
            None => false,
        }
    }

    /// Writes `data` at `off`, keeping read-only bits; `false` if out of range.
    pub(crate) fn write(&mut self, off: usize, data: &[u8]) -> bool {
        let Some(end) = off.checked_add(data.len()).filter(|&e| e <= CFG_SIZE) else {
            return false;
        };
        for ((b, m), v) in self.bytes[off..end]
            .iter_mut()
            .zip(&self.wmask[off..end])
            .zip(data)
        {
            *b = (*b & !m) | (v & m);
        }
        true
    }

    /// Whether the guest enabled MSI.
    pub(crate) fn msi_enabled(&self) -> bool {
        u16::from_le_bytes([self.bytes[MSI_CAP + 2], self.bytes[MSI_CAP + 3]]) & MSI_FLAGS_ENABLE
            != 0
    }

    /// Whether the guest set INTx disable in the command register.
    pub(crate) fn intx_disabled(&self) -> bool {
        self.bytes[COMMAND + 1] & 0x04 != 0
    }
}

/// Write mask of a 64-bit memory BAR of `size` bytes (a power of two >= 16).
fn bar_mask(size: u64) -> u64 {
    !(size.next_power_of_two() - 1) & !0xf
}

#[kunit_tests(gvtpv_host_cfg)]
mod tests {
    use super::*;

    fn rd32(c: &ConfigSpace, off: usize) -> u32 {
        let mut b = [0u8; 4];
        assert!(c.read(off, &mut b));
        u32::from_le_bytes(b)
    }

    #[test]
    fn identity() {
        let c = ConfigSpace::new();
        assert_eq!(rd32(&c, 0), 0x1912_8086);
        assert_eq!(rd32(&c, 0x08) >> 8, 0x03_00_00);
        assert_eq!(rd32(&c, 0x34) & 0xff, 0xac);
        assert_eq!(rd32(&c, 0xac) & 0xff, 0x05);
        assert_eq!(
            gen::ggtt_size_from_gmch(rd32(&c, 0x50) as u16),
            Some(4 << 30)
        );
    }

    #[test]
    fn bar_sizing_like_hardware() {
        {
            let ap = crate::mm::partition::APERTURE_SIZE;
            let mut c = ConfigSpace::new();
            assert!(c.write(BAR0, &[0xff; 8]));
            assert_eq!(rd32(&c, BAR0), 0xff00_0004);
            assert_eq!(rd32(&c, BAR0 + 4), 0xffff_ffff);
            assert!(c.write(BAR2, &[0xff; 8]));
            assert_eq!(rd32(&c, BAR2), (!(ap as u32 - 1)) | 0xc);
            // Programming an address keeps the flag bits and drops bits below the size.
            assert!(c.write(BAR2, &0x1234_5678u32.to_le_bytes()));
            assert_eq!(rd32(&c, BAR2), (0x1234_5678 & !(ap as u32 - 1)) | 0xc);
        }
    }

    #[test]
    fn read_only_bits_stay() {
        let mut c = ConfigSpace::new();
        assert!(c.write(0, &[0; 4]));
        assert_eq!(rd32(&c, 0), 0x1912_8086);
        assert!(c.write(COMMAND, &[0xff, 0xff]));
        assert_eq!(rd32(&c, COMMAND) & 0xffff, 0x0407);
        assert!(c.write(0x50, &[0, 0]));
        assert_eq!(rd32(&c, 0x50) & 0xffff, 0xc0);
        assert!(c.intx_disabled());
        assert!(!c.msi_enabled());
        assert!(c.write(MSI_CAP + 2, &[0xff, 0xff]));
        assert!(c.msi_enabled());
        assert_eq!(rd32(&c, MSI_CAP) >> 16, 0x81);
    }

    #[test]
    fn reset_forgets_the_guest() {
        let mut c = ConfigSpace::new();
        assert!(c.write(BAR0, &0xfe00_0000u32.to_le_bytes()));
        assert!(c.write(COMMAND, &[0x07, 0x04]));
        assert!(c.write(MSI_CAP + 2, &[0x01, 0x00]));
        assert!(c.write(MSI_CAP + 4, &[0xfc, 0xff, 0xff, 0xfe]));
        assert!(c.msi_enabled());
        c.reset();
        assert_eq!(rd32(&c, BAR0), 0x4);
        assert_eq!(rd32(&c, COMMAND) & 0xffff, 0);
        assert_eq!(rd32(&c, MSI_CAP + 4), 0);
        assert!(!c.msi_enabled());
        assert!(!c.intx_disabled());
    }

    #[test]
    fn out_of_range_is_refused() {
        let mut c = ConfigSpace::new();
        let mut b = [0u8; 8];
        assert!(!c.read(252, &mut b));
        assert!(!c.write(usize::MAX, &b));
        assert!(c.read(248, &mut b));
    }
}
