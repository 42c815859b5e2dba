// SPDX-License-Identifier: GPL-2.0

//! Facts about the virtual GEN9 device that both sides must agree on.

/// PCI vendor id of Intel.
pub const PCI_VENDOR_ID_INTEL: u16 = 0x8086;

/// PCI device id of the virtual GPU: GEN9 Skylake GT2 (HD Graphics 530, desktop).
pub const PCI_DEVICE_ID_SKL_GT2: u16 = 0x1912;

/// PCI class code of a VGA compatible display controller (class, subclass, prog-if).
pub const PCI_CLASS_DISPLAY_VGA: u32 = 0x03_00_00;

/// Size of BAR0 (MMIO and GTT), as on GEN9 hardware.
pub const BAR0_SIZE: u64 = 16 << 20;

/// Offset in config space of the GMCH graphics control register (`SNB_GMCH_CTRL`).
pub const GMCH_CTRL: u16 = 0x50;

/// Shift of the GGTT size field (GGMS) in [`GMCH_CTRL`] on GEN8+.
pub const GMCH_GGMS_SHIFT: u32 = 6;

/// Mask of the GGTT size field (GGMS) in [`GMCH_CTRL`] after shifting, GEN8+.
pub const GMCH_GGMS_MASK: u16 = 0x3;

/// Size in bytes of one GGTT page.
pub const GTT_PAGE_SIZE: u64 = 4096;

/// Size of one GGTT entry (gen8+ 64-bit PTE).
pub const GGTT_PTE_SIZE: u64 = 8;

/// Number of fence registers on GEN9.
pub const MAX_FENCES: u32 = 32;

/// Decodes the GGTT (graphics memory address space) size from a GMCH control value.
///
/// GEN8+: the GGMS field gives the size of the page table as `1 << ggms` MiB; each 8-byte
/// entry maps 4 KiB, so the address space is 512 times that. Returns `None` for 0
/// (no GGTT).
pub fn ggtt_size_from_gmch(gmch: u16) -> Option<u64> {
    let ggms = (gmch >> GMCH_GGMS_SHIFT) & GMCH_GGMS_MASK;
    if ggms == 0 {
        return None;
    }
    let table_bytes = 1u64 << (20 + u32::from(ggms));
    Some(table_bytes / GGTT_PTE_SIZE * GTT_PAGE_SIZE)
}

/// Encodes the GMCH control value that advertises a GGTT of `size` bytes.
///
/// Returns `None` unless `size` is one of the sizes GEN8+ can express (1, 2 or 4 GiB).
pub fn gmch_for_ggtt_size(size: u64) -> Option<u16> {
    (1u16..=3)
        .find(|&g| ggtt_size_from_gmch(g << GMCH_GGMS_SHIFT) == Some(size))
        .map(|g| g << GMCH_GGMS_SHIFT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gmch_round_trip() {
        assert_eq!(ggtt_size_from_gmch(0), None);
        assert_eq!(ggtt_size_from_gmch(3 << 6), Some(4 << 30));
        assert_eq!(ggtt_size_from_gmch(1 << 6), Some(1 << 30));
        assert_eq!(gmch_for_ggtt_size(4 << 30), Some(3 << 6));
        assert_eq!(gmch_for_ggtt_size(3 << 30), None);
        // Bits outside GGMS do not change the answer.
        assert_eq!(ggtt_size_from_gmch(0xff00 | (2 << 6)), Some(2 << 30));
    }
}
