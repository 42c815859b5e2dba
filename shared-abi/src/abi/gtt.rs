// SPDX-License-Identifier: GPL-2.0

//! GEN8+ graphics memory encodings: GGTT and PPGTT entries, 4-level 48-bit PPGTT index
//! math with 4 KiB, 64 KiB and 2 MiB pages, and GGTT partition checks.

/// Entry is valid (`GEN8_PAGE_PRESENT`).
pub const PTE_PRESENT: u64 = 1 << 0;
/// Entry is writable (`GEN8_PAGE_RW`; PPGTT only, the GGTT is always writable).
pub const PTE_RW: u64 = 1 << 1;
/// PPAT index bit 0 (`_PAGE_PWT`).
pub const PTE_PWT: u64 = 1 << 3;
/// PPAT index bit 1 (`_PAGE_PCD`).
pub const PTE_PCD: u64 = 1 << 4;
/// PPAT index bit 2 (`_PAGE_PAT`, 4 KiB entries).
pub const PTE_PAT: u64 = 1 << 7;
/// In a page-directory entry: maps a 2 MiB page (`GEN8_PDE_PS_2M`).
pub const PDE_PS_2M: u64 = 1 << 7;
/// In a page-directory entry: its page table holds 64 KiB entries (`GEN8_PDE_IPS_64K`).
///
/// The bit covers the whole page table, i.e. the whole 2 MiB the entry maps: the
/// hardware then reads only slots 0, 16, ..., 496 of the table, each as a 64 KiB page.
/// i915 sets it only after filling all 32 used slots with 64 KiB-aligned pages
/// (`gen8_ppgtt_insert_huge`); GVT-g walks such a table with a stride of 16 and ignores
/// writes to the other slots (`gvt/gtt.c`). See [`check_pt_64k`].
pub const PDE_IPS_64K: u64 = 1 << 11;
/// Entries in one page table (or directory).
pub const PT_ENTRIES: usize = 512;
/// Slot stride of the entries the hardware uses in a 64 KiB page table.
pub const PT_64K_STRIDE: usize = 16;
/// Used entries in a 64 KiB page table (512 / 16).
pub const PT_64K_ENTRIES: usize = PT_ENTRIES / PT_64K_STRIDE;
/// Address bits of an entry: 38:12 (39-bit physical addresses, as GEN9).
pub const PTE_ADDR_MASK: u64 = ((1 << 39) - 1) & !0xfff;

/// 4 KiB.
pub const SZ_4K: u64 = 1 << 12;
/// 64 KiB.
pub const SZ_64K: u64 = 1 << 16;
/// 2 MiB.
pub const SZ_2M: u64 = 1 << 21;
/// Size of the full PPGTT address space (48 bits).
pub const PPGTT_SIZE: u64 = 1 << 48;

/// A decoded entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pte {
    /// Physical (or guest physical) address of the page or next-level table.
    pub addr: u64,
    /// Writable.
    pub writable: bool,
    /// PPAT index (0..=7).
    pub pat: u8,
}

/// Encodes a present 4 KiB entry. The address is masked to [`PTE_ADDR_MASK`].
pub fn encode_pte(addr: u64, writable: bool, pat: u8) -> u64 {
    let mut v = (addr & PTE_ADDR_MASK) | PTE_PRESENT;
    if writable {
        v |= PTE_RW;
    }
    let pat = u64::from(pat & 7);
    v |= if pat & 1 != 0 { PTE_PWT } else { 0 };
    v |= if pat & 2 != 0 { PTE_PCD } else { 0 };
    v |= if pat & 4 != 0 { PTE_PAT } else { 0 };
    v
}

/// Decodes a 4 KiB entry; `None` if it is not present.
pub fn decode_pte(v: u64) -> Option<Pte> {
    if v & PTE_PRESENT == 0 {
        return None;
    }
    let pat = u8::from(v & PTE_PWT != 0)
        | (u8::from(v & PTE_PCD != 0) << 1)
        | (u8::from(v & PTE_PAT != 0) << 2);
    Some(Pte {
        addr: v & PTE_ADDR_MASK,
        writable: v & PTE_RW != 0,
        pat,
    })
}

/// The four table indices of a 48-bit PPGTT address: PML4, PDP, PD, PT (9 bits each).
pub fn ppgtt_indices(va: u64) -> [usize; 4] {
    let i = |shift: u32| ((va >> shift) & 0x1ff) as usize;
    [i(39), i(30), i(21), i(12)]
}

/// Builds the address of the given indices (inverse of [`ppgtt_indices`] for page
/// aligned addresses).
pub fn ppgtt_address(idx: [usize; 4]) -> u64 {
    let [a, b, c, d] = idx.map(|i| (i & 0x1ff) as u64);
    (a << 39) | (b << 30) | (c << 21) | (d << 12)
}

/// Index of a 64 KiB entry inside a page table whose PDE has [`PDE_IPS_64K`]: the
/// hardware reads every 16th slot.
pub fn pt_index_64k(va: u64) -> usize {
    (((va >> 16) & 0x1f) * 16) as usize
}

/// The largest page size usable at `va` for `len` bytes mapping the contiguous physical
/// range at `pa`: 2 MiB, 64 KiB or 4 KiB.
///
/// 2 MiB needs both addresses 2 MiB aligned and `len >= 2 MiB`. 64 KiB is a property of a
/// whole page table ([`PDE_IPS_64K`]), so it needs the table's full 2 MiB: `va` 2 MiB
/// aligned, `pa` 64 KiB aligned and `len >= 2 MiB`. Anything else is 4 KiB.
pub fn best_page_size(va: u64, pa: u64, len: u64) -> u64 {
    if len < SZ_2M || va % SZ_2M != 0 {
        SZ_4K
    } else if pa % SZ_2M == 0 {
        SZ_2M
    } else if pa % SZ_64K == 0 {
        SZ_64K
    } else {
        SZ_4K
    }
}

/// Why a page-directory entry or a page table is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PtError {
    /// A directory entry has both [`PDE_PS_2M`] and [`PDE_IPS_64K`].
    PsAndIps,
    /// A table is not [`PT_ENTRIES`] entries long.
    BadTableSize,
    /// Used slot `n` of a 64 KiB table is present but not a 64 KiB page (its address is
    /// not 64 KiB aligned).
    Not64k(usize),
}

/// What a present page-directory entry points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PdeTarget {
    /// A 2 MiB page.
    Page2M,
    /// A page table of 4 KiB entries.
    Table4k,
    /// A page table of 64 KiB entries (every 16th slot used).
    Table64k,
}

/// Classifies a present page-directory entry.
///
/// # Errors
///
/// [`PtError::PsAndIps`].
pub fn pde_target(pde: u64) -> Result<PdeTarget, PtError> {
    match (pde & PDE_PS_2M != 0, pde & PDE_IPS_64K != 0) {
        (true, true) => Err(PtError::PsAndIps),
        (true, false) => Ok(PdeTarget::Page2M),
        (false, true) => Ok(PdeTarget::Table64k),
        (false, false) => Ok(PdeTarget::Table4k),
    }
}

/// Checks a page table under a directory entry with [`PDE_IPS_64K`]: all
/// [`PT_64K_ENTRIES`] used slots (0, 16, ..., 496) are 64 KiB entries or not present;
/// the other slots are ignored, as the hardware and GVT-g ignore them.
///
/// A table with a 4 KiB page in a used slot cannot be marked 64 KiB: it must be split
/// (the whole table becomes 4 KiB entries) or refused.
///
/// # Errors
///
/// [`PtError::BadTableSize`], [`PtError::Not64k`] with the first offending slot.
pub fn check_pt_64k(pt: &[u64]) -> Result<(), PtError> {
    if pt.len() != PT_ENTRIES {
        return Err(PtError::BadTableSize);
    }
    for (i, e) in pt.iter().enumerate().step_by(PT_64K_STRIDE) {
        if e & PTE_PRESENT != 0 && (e & PTE_ADDR_MASK) % SZ_64K != 0 {
            return Err(PtError::Not64k(i));
        }
    }
    Ok(())
}

/// Whether `[start, start + len)` lies inside `[base, base + size)`, without overflow.
pub fn range_inside(start: u64, len: u64, base: u64, size: u64) -> bool {
    let (Some(end), Some(lim)) = (start.checked_add(len), base.checked_add(size)) else {
        return false;
    };
    start >= base && end <= lim
}

/// Whether a GGTT range lies inside a vGPU's aperture or hidden slice (all in bytes).
pub fn ggtt_range_in_slices(
    start: u64,
    len: u64,
    aperture: (u64, u64),
    hidden: (u64, u64),
) -> bool {
    len != 0
        && (range_inside(start, len, aperture.0, aperture.1)
            || range_inside(start, len, hidden.0, hidden.1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pte_round_trip() {
        for pat in 0..8u8 {
            for w in [false, true] {
                let v = encode_pte(0x12_3456_7000, w, pat);
                assert_eq!(
                    decode_pte(v),
                    Some(Pte {
                        addr: 0x12_3456_7000,
                        writable: w,
                        pat
                    })
                );
            }
        }
        assert_eq!(decode_pte(0x1000), None);
        // Bits outside the address mask never leak into the address.
        assert_eq!(encode_pte(u64::MAX, false, 0) & !PTE_ADDR_MASK, PTE_PRESENT);
        assert_eq!(encode_pte(0x1000, true, 5), 0x1000 | 1 | 2 | 8 | 0x80);
    }

    #[test]
    fn index_math() {
        assert_eq!(ppgtt_indices(0), [0, 0, 0, 0]);
        assert_eq!(ppgtt_indices(PPGTT_SIZE - SZ_4K), [511; 4]);
        assert_eq!(
            ppgtt_indices((1 << 39) | (2 << 30) | (3 << 21) | (4 << 12) | 0xfff),
            [1, 2, 3, 4]
        );
        assert_eq!(
            ppgtt_address([1, 2, 3, 4]),
            (1 << 39) | (2 << 30) | (3 << 21) | (4 << 12)
        );
        assert_eq!(pt_index_64k(0x1_0000), 16);
        assert_eq!(pt_index_64k(0x1f_0000), 496);
        assert_eq!(best_page_size(0x20_0000, 0x40_0000, 0x20_0000), SZ_2M);
        assert_eq!(best_page_size(0x20_0000, 0x41_0000, 0x20_0000), SZ_64K);
        // 64 KiB covers a whole table: one 64 KiB chunk, or a table entered in the
        // middle, is 4 KiB.
        assert_eq!(best_page_size(0x20_0000, 0x40_0000, 0x1_0000), SZ_4K);
        assert_eq!(best_page_size(0x21_0000, 0x41_0000, 0x20_0000), SZ_4K);
        assert_eq!(best_page_size(0x1000, 0x40_0000, 0x20_0000), SZ_4K);
    }

    #[test]
    fn sixty_four_k_tables() {
        assert_eq!(pde_target(0x1000 | 1), Ok(PdeTarget::Table4k));
        assert_eq!(
            pde_target(0x1000 | 1 | PDE_IPS_64K),
            Ok(PdeTarget::Table64k)
        );
        assert_eq!(pde_target(0x20_0000 | 1 | PDE_PS_2M), Ok(PdeTarget::Page2M));
        assert_eq!(
            pde_target(1 | PDE_PS_2M | PDE_IPS_64K),
            Err(PtError::PsAndIps)
        );
        // All 32 used slots 64 KiB pages; junk in the unused slots is ignored.
        let mut pt = [0u64; PT_ENTRIES];
        for (k, i) in (0..PT_ENTRIES).step_by(PT_64K_STRIDE).enumerate() {
            pt[i] = encode_pte(0x100_0000 + k as u64 * SZ_64K, true, 0);
            pt[i + 1] = encode_pte(0x1000, true, 0);
        }
        assert_eq!(check_pt_64k(&pt), Ok(()));
        // One used slot not present (scratch) is fine.
        pt[32] = 0;
        assert_eq!(check_pt_64k(&pt), Ok(()));
        // The last used slot a 4 KiB page: the table cannot be a 64 KiB table.
        pt[496] = encode_pte(0x200_1000, true, 0);
        assert_eq!(check_pt_64k(&pt), Err(PtError::Not64k(496)));
        assert_eq!(check_pt_64k(&pt[..256]), Err(PtError::BadTableSize));
        assert_eq!(PT_64K_ENTRIES, 32);
    }

    #[test]
    fn partition_checks() {
        let ap = (128 << 20, 64 << 20);
        let hid = (1536 << 20, 384 << 20);
        assert!(ggtt_range_in_slices(128 << 20, 64 << 20, ap, hid));
        assert!(ggtt_range_in_slices(1536 << 20, 4096, ap, hid));
        assert!(!ggtt_range_in_slices((192 << 20) - 4096, 8192, ap, hid));
        assert!(!ggtt_range_in_slices(0, 4096, ap, hid));
        assert!(!ggtt_range_in_slices(128 << 20, 0, ap, hid));
        assert!(!ggtt_range_in_slices(u64::MAX - 10, 100, ap, hid));
        assert!(!range_inside(0, 1, u64::MAX, 2));
    }

    proptest::proptest! {
        #[test]
        fn indices_invert(va in 0u64..PPGTT_SIZE) {
            let page = va & !0xfff;
            proptest::prop_assert_eq!(ppgtt_address(ppgtt_indices(va)), page);
        }
    }
}
