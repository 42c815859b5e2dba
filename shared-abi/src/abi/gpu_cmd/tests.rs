// SPDX-License-Identifier: GPL-2.0

//! Round trips, length rules and refusals of the GEN command subset.

extern crate std;

use super::*;

const LRI_ONE: [u32; 2] = [0x2000, 1];
const LRI_THREE: [u32; 6] = [0x2244, 0xffff_0008, 0x2034, 0, 0x20c0, 5];

fn all() -> [GpuCmd<'static>; 17] {
    [
        GpuCmd::Noop,
        GpuCmd::UserInterrupt,
        GpuCmd::ArbCheck,
        GpuCmd::BatchBufferEnd,
        GpuCmd::BatchBufferStart {
            addr: 0x1234_5678_9abc,
            ppgtt: true,
            second_level: false,
        },
        GpuCmd::BatchBufferStart {
            addr: 0x1000,
            ppgtt: false,
            second_level: true,
        },
        GpuCmd::StoreDataImm {
            addr: 0x10_0004,
            ggtt: true,
            value: 0xdead_beef,
            qword: false,
        },
        GpuCmd::StoreDataImm {
            addr: 0xffff_0000_0008,
            ggtt: false,
            value: u64::MAX,
            qword: true,
        },
        GpuCmd::StoreDwordIndex {
            index: 1023,
            value: 5,
        },
        GpuCmd::LoadRegisterImm {
            pairs: &LRI_ONE,
            posted: false,
        },
        GpuCmd::LoadRegisterImm {
            pairs: &LRI_THREE,
            posted: true,
        },
        GpuCmd::FlushDw {
            addr: 0x8000,
            value: 42,
        },
        GpuCmd::PipeControl {
            addr: 0x8008,
            value: 1 << 40,
        },
        GpuCmd::SemaphoreWait {
            addr: 0x9000,
            value: 3,
            op: 4,
        },
        GpuCmd::CopyMemMem {
            dst: 0x100,
            src: 0x200,
        },
        GpuCmd::ColorBlt {
            dst: 0x40_0000,
            pitch: 4096,
            from: (0, 0),
            to: (1024, 768),
            color: 0xff00_ff00,
        },
        GpuCmd::SrcCopyBlt {
            dst: 0x40_0000,
            dst_pitch: 4096,
            from: (8, 8),
            to: (16, 16),
            src: 0x80_0000,
            src_pitch: 256,
            src_from: (0, 0),
        },
    ]
}

#[test]
fn round_trips_and_lengths() {
    let want_len = [1, 1, 1, 1, 3, 3, 4, 5, 3, 3, 7, 4, 6, 4, 5, 7, 10];
    let mut stream = [0u32; 128];
    let mut at = 0;
    for (c, want) in all().iter().zip(want_len) {
        let mut out = [0u32; 16];
        let n = c.encode(&mut out).unwrap();
        assert_eq!(n, want, "{c:?}");
        // The one length table agrees with every encoding.
        let on = if out[0] >> 29 == 2 {
            table::ring::BCS
        } else {
            table::ring::RCS
        };
        assert_eq!(table::cmd_len(out[0], on), Ok(n as u32), "{c:?}");
        assert_eq!(GpuCmd::decode(&out[..n]), Ok((*c, n)));
        // Multi-dword commands carry their length minus two.
        if n > 1 {
            let field = if out[0] >> 29 == 0 && (out[0] >> 23) & 0x3f == 0x20 {
                out[0] & 0x3ff
            } else {
                out[0] & 0xff
            };
            assert_eq!(field as usize, n - 2, "{c:?}");
        }
        stream[at..at + n].copy_from_slice(&out[..n]);
        at += n;
    }
    // A stream decodes command by command.
    let mut pos = 0;
    for c in all() {
        let (d, n) = GpuCmd::decode(&stream[pos..at]).unwrap();
        assert_eq!(d, c);
        pos += n;
    }
    assert_eq!(pos, at);
}

#[test]
fn known_encodings() {
    let mut o = [0u32; 10];
    GpuCmd::BatchBufferEnd.encode(&mut o).unwrap();
    assert_eq!(o[0], 0x0500_0000);
    GpuCmd::UserInterrupt.encode(&mut o).unwrap();
    assert_eq!(o[0], 0x0100_0000);
    GpuCmd::BatchBufferStart {
        addr: 0,
        ppgtt: true,
        second_level: false,
    }
    .encode(&mut o)
    .unwrap();
    assert_eq!(o[0], 0x1880_0101);
    GpuCmd::StoreDataImm {
        addr: 0,
        ggtt: true,
        value: 0,
        qword: false,
    }
    .encode(&mut o)
    .unwrap();
    assert_eq!(o[0], 0x1040_0002);
    // i915's MI_STORE_QWORD_IMM_GEN8: MI_INSTR(0x20, 3) | BIT(21).
    GpuCmd::StoreDataImm {
        addr: 0,
        ggtt: false,
        value: 0,
        qword: true,
    }
    .encode(&mut o)
    .unwrap();
    assert_eq!(o[0], (0x20 << 23) | 3 | (1 << 21));
    // MI_LOAD_REGISTER_IMM(3) = MI_INSTR(0x22, 2 * 3 - 1).
    GpuCmd::LoadRegisterImm {
        pairs: &LRI_THREE,
        posted: false,
    }
    .encode(&mut o)
    .unwrap();
    assert_eq!(o[0], (0x22 << 23) | 5);
    GpuCmd::PipeControl { addr: 0, value: 0 }
        .encode(&mut o)
        .unwrap();
    assert_eq!(o[0], 0x7a00_0004);
    GpuCmd::ColorBlt {
        dst: 0,
        pitch: 64,
        from: (0, 0),
        to: (1, 1),
        color: 0,
    }
    .encode(&mut o)
    .unwrap();
    assert_eq!(o[0], 0x5430_0005);
}

#[test]
fn refusals() {
    fn d(s: &[u32]) -> Option<GpuCmdError> {
        GpuCmd::decode(s).err()
    }
    assert_eq!(d(&[]), Some(GpuCmdError::Truncated));
    assert_eq!(d(&[0x0500_0001]), Some(GpuCmdError::BadField));
    assert_eq!(d(&[mi(0x3f, 0)]), Some(GpuCmdError::Unknown(mi(0x3f, 0))));
    assert_eq!(d(&[0x2000_0000]), Some(GpuCmdError::Unknown(0x2000_0000)));
    // A GEN9 command outside the subset reports its length: MI_LOAD_REGISTER_REG.
    assert_eq!(
        d(&[mi(0x2a, 1), 0, 0]),
        Some(GpuCmdError::Unsupported(mi(0x2a, 1), 3))
    );
    // ... and with a length GEN9 does not define, BadLength.
    assert_eq!(
        d(&[mi(0x2a, 2), 0, 0, 0]),
        Some(GpuCmdError::BadLength(mi(0x2a, 2)))
    );
    // The qword bit with the dword length, and the dword form with the qword length.
    assert_eq!(
        d(&[mi(0x20, 2) | MI_SDI_QWORD, 0, 0, 0]),
        Some(GpuCmdError::BadLength(mi(0x20, 2) | MI_SDI_QWORD))
    );
    assert_eq!(
        d(&[mi(0x20, 3), 0, 0, 0, 0]),
        Some(GpuCmdError::BadLength(mi(0x20, 3)))
    );
    // LRI: an even length field is not 2n - 1; a bad offset in the second pair.
    assert_eq!(
        d(&[mi(0x22, 2), 0x2000, 0, 0]),
        Some(GpuCmdError::BadLength(mi(0x22, 2)))
    );
    assert_eq!(
        d(&[mi(0x22, 3), 0x2000, 0, 0x2002, 0]),
        Some(GpuCmdError::BadField)
    );
    assert_eq!(
        d(&[mi(0x22, 3), 0x2000, 0, 0x2004]),
        Some(GpuCmdError::Truncated)
    );
    assert_eq!(
        d(&[0x1880_0102, 0, 0, 0]),
        Some(GpuCmdError::BadLength(0x1880_0102))
    );
    assert_eq!(d(&[0x1880_0101, 0]), Some(GpuCmdError::Truncated));
    assert_eq!(d(&[0x1880_0101, 2, 0]), Some(GpuCmdError::BadField));
    assert_eq!(d(&[0x1880_0101, 0, 0x1_0000]), Some(GpuCmdError::BadField));
    assert_eq!(d(&[mi(0x22, 1), 0x2001, 0]), Some(GpuCmdError::BadField));
    assert_eq!(d(&[mi(0x22, 1), 1 << 23, 0]), Some(GpuCmdError::BadField));
    assert_eq!(d(&[mi(0x21, 1), 4096, 0]), Some(GpuCmdError::BadField));
    assert_eq!(
        d(&[mi(0x26, 2) | (1 << 14), 0x8000, 0, 0]),
        Some(GpuCmdError::BadField)
    );
    assert_eq!(
        d(&[PIPE_CONTROL | 4, 0, 0, 0, 0, 0]),
        Some(GpuCmdError::BadField)
    );
    let sem = mi(0x1c, 2) | MI_USE_GGTT | MI_SEMAPHORE_POLL;
    assert_eq!(d(&[sem | (6 << 12), 0, 0, 0]), Some(GpuCmdError::BadField));
    assert_eq!(
        d(&[mi(0x1c, 2) | MI_USE_GGTT, 0, 0, 0]),
        Some(GpuCmdError::BadField)
    );
    // Empty blit rectangles.
    let mut o = [0u32; 10];
    assert_eq!(
        GpuCmd::ColorBlt {
            dst: 0,
            pitch: 64,
            from: (4, 0),
            to: (4, 1),
            color: 0
        }
        .encode(&mut o),
        Err(GpuCmdError::BadField)
    );
    assert_eq!(
        GpuCmd::LoadRegisterImm {
            pairs: &[3, 0],
            posted: false
        }
        .encode(&mut o),
        Err(GpuCmdError::BadField)
    );
    assert_eq!(
        GpuCmd::LoadRegisterImm {
            pairs: &[],
            posted: false
        }
        .encode(&mut o),
        Err(GpuCmdError::BadField)
    );
    assert_eq!(GpuCmd::Noop.encode(&mut []), Err(GpuCmdError::Truncated));
}

proptest::proptest! {
    /// Any dwords decode or fail; what decodes re-encodes to the same dwords.
    #[test]
    fn decode_is_total_and_canonical(s in proptest::collection::vec(proptest::num::u32::ANY, 0..12)) {
        if let Ok((c, n)) = GpuCmd::decode(&s) {
            proptest::prop_assert!(n <= s.len());
            let mut out = [0u32; 10];
            let m = c.encode(&mut out).unwrap();
            proptest::prop_assert_eq!(&out[..m], &s[..n]);
        }
    }
}

#[test]
fn length_table() {
    use table::{cmd_len, lookup, ring, LenError, GEN9_CMDS};
    // Sorted by (kind, opcode) so lookup can bisect; no two entries share an opcode on
    // a ring; every render and blitter command GVT-g lists is there.
    for w in GEN9_CMDS.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        assert!(
            (a.kind as u8, a.opcode) <= (b.kind as u8, b.opcode),
            "{a:?} {b:?}"
        );
        if (a.kind, a.opcode) == (b.kind, b.opcode) {
            assert_eq!(a.rings & b.rings, 0, "{a:?} {b:?}");
        }
    }
    assert_eq!(GEN9_CMDS.len(), 225);
    assert!(
        GEN9_CMDS
            .iter()
            .filter(|c| c.rings & ring::RCS != 0)
            .count()
            >= 150
    );
    assert_eq!(
        GEN9_CMDS.iter().filter(|c| c.rings == ring::BCS).count(),
        24
    );
    // MI: 6-bit field for MI_FLUSH_DW (bits 7:6 are flags, not length).
    assert_eq!(cmd_len(mi(0x26, 2) | 0xc0, ring::BCS), Ok(4));
    // MI_STORE_DATA_IMM: 10-bit field; bit 21 does not change the length.
    assert_eq!(cmd_len(mi(0x20, 3) | (1 << 21), ring::RCS), Ok(5));
    // MI_BATCH_BUFFER_START: 8-bit field.
    assert_eq!(cmd_len(0x1880_0101, ring::VECS), Ok(3));
    // 2D: 8-bit field plus 2, only on the blitter.
    assert_eq!(cmd_len(0x54f0_0008, ring::BCS), Ok(10));
    assert_eq!(cmd_len(0x54f0_0008, ring::RCS), Err(LenError::Unknown));
    // 3D: PIPE_CONTROL (6), 3DPRIMITIVE (7), 3DSTATE_VERTEX_BUFFERS (1 + 4n).
    assert_eq!(cmd_len(0x7a00_0004, ring::RCS), Ok(6));
    assert_eq!(cmd_len(0x7b00_0005, ring::RCS), Ok(7));
    assert_eq!(cmd_len(0x7808_0007, ring::RCS), Ok(9));
    assert_eq!(
        lookup(0x7808_0007, ring::RCS).unwrap().name,
        "3DSTATE_VERTEX_BUFFERS"
    );
    // Fixed lengths ignore the low bits; exact lengths refuse any other.
    assert_eq!(cmd_len(mi(0x0a, 0), ring::RCS), Ok(1));
    assert_eq!(cmd_len(mi(0x1c, 2), ring::RCS), Ok(4));
    assert_eq!(cmd_len(mi(0x1c, 3), ring::RCS), Err(LenError::BadLength));
    // Types with no decoder on a ring, and holes in the opcode space.
    assert_eq!(cmd_len(0x2000_0000, ring::RCS), Err(LenError::Unknown));
    assert_eq!(cmd_len(mi(0x3f, 0), ring::RCS), Err(LenError::Unknown));
    assert_eq!(cmd_len(0x7a00_0004, ring::BCS), Err(LenError::Unknown));
}

/// Generated commands of the subset, encoded, one dword in ten corrupted: most decode
/// and re-encode to the same dwords; the valid branch must run for at least 80%.
#[test]
fn mostly_valid_streams_round_trip() {
    use proptest::prelude::*;
    let a48 = |align: u64| (0u64..(1 << 48) / align).prop_map(move |a| a * align);
    let strat = (
        0usize..9,
        (a48(8), a48(8), any::<u64>(), any::<u32>()),
        (0u32..1024, 0u8..6, any::<bool>(), any::<bool>()),
        proptest::collection::vec(
            ((0u32..(1 << 21)).prop_map(|r| r << 2), any::<u32>()),
            1..20,
        ),
        (0u32..20, any::<usize>(), any::<u32>()),
    );
    crate::abi::testutil::counted(
        "gpu_cmd round trip",
        2000,
        strat,
        80,
        |(k, (a, b, v, w), (idx, op, f1, f2), regs, (roll, at, junk))| {
            let pairs: std::vec::Vec<u32> = regs.iter().flat_map(|(r, v)| [*r, *v]).collect();
            let c = match k {
                0 => GpuCmd::BatchBufferStart {
                    addr: a,
                    ppgtt: f1,
                    second_level: f2,
                },
                1 => GpuCmd::StoreDataImm {
                    addr: a,
                    ggtt: f1,
                    value: if f2 { v } else { u64::from(w) },
                    qword: f2,
                },
                2 => GpuCmd::StoreDwordIndex {
                    index: idx,
                    value: w,
                },
                3 => GpuCmd::LoadRegisterImm {
                    pairs: &pairs,
                    posted: f1,
                },
                4 => GpuCmd::FlushDw { addr: a, value: w },
                5 => GpuCmd::PipeControl { addr: a, value: v },
                6 => GpuCmd::SemaphoreWait {
                    addr: a,
                    value: w,
                    op,
                },
                7 => GpuCmd::CopyMemMem { dst: a, src: b },
                _ => GpuCmd::ColorBlt {
                    dst: a,
                    pitch: w as u16,
                    from: (0, 0),
                    to: (1 + idx as u16, 1),
                    color: w,
                },
            };
            let mut out = [0u32; 64];
            let n = c.encode(&mut out).unwrap();
            if roll == 0 {
                out[at % n] = junk;
            }
            match GpuCmd::decode(&out[..n]) {
                Ok((d, m)) => {
                    let mut again = [0u32; 64];
                    let k = d.encode(&mut again).unwrap();
                    proptest::prop_assert_eq!(&again[..k], &out[..m]);
                    if roll != 0 {
                        proptest::prop_assert_eq!((d, m), (c, n));
                    }
                    Ok(true)
                }
                Err(_) => {
                    proptest::prop_assert!(roll == 0, "a valid encoding failed to decode: {:?}", c);
                    Ok(false)
                }
            }
        },
    );
}
