// SPDX-License-Identifier: GPL-2.0

//! Round trips, length rules and refusals of the GEN command subset.

use super::*;

fn all() -> [GpuCmd; 16] {
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
            reg: 0x2000,
            value: 1,
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
    let want_len = [1, 1, 1, 1, 3, 3, 4, 5, 3, 3, 4, 6, 4, 5, 7, 10];
    let mut stream = [0u32; 64];
    let mut at = 0;
    for (c, want) in all().iter().zip(want_len) {
        let mut out = [0u32; 10];
        let n = c.encode(&mut out).unwrap();
        assert_eq!(n, want, "{c:?}");
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
    let d = |s: &[u32]| GpuCmd::decode(s).err();
    assert_eq!(d(&[]), Some(GpuCmdError::Truncated));
    assert_eq!(d(&[0x0500_0001]), Some(GpuCmdError::BadField));
    assert_eq!(d(&[mi(0x3f, 0)]), Some(GpuCmdError::Unknown(mi(0x3f, 0))));
    assert_eq!(d(&[0x2000_0000]), Some(GpuCmdError::Unknown(0x2000_0000)));
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
        GpuCmd::LoadRegisterImm { reg: 3, value: 0 }.encode(&mut o),
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
