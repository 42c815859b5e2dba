// SPDX-License-Identifier: GPL-2.0

//! Round trips, every refusal, and totality of the command decoder.

extern crate std;

use super::*;
use crate::abi::testutil::counted;
use proptest::prelude::*;
use std::vec::Vec;

fn round_trip(c: Command<'_>) {
    let mut out = [0u32; 128];
    let n = c.encode(&mut out).unwrap();
    assert_eq!(Command::decode(c.action(), &out[..n]), Ok(c));
}

fn inline(n: u32) -> Vec<u32> {
    (0..n).flat_map(|i| [(i + 1) << 12, i & 0x7f]).collect()
}

#[test]
fn every_command_round_trips() {
    let pages = inline(3);
    round_trip(Command::PpgttCreate { vm: 7 });
    round_trip(Command::PpgttDestroy { vm: 7 });
    round_trip(Command::BindPpgtt {
        vm: 7,
        flags: 3,
        start: 0xffff_ffff_f000,
        count: 1,
        pages: Pages::ByRef(0x1000),
    });
    round_trip(Command::BindPpgtt {
        vm: 1,
        flags: 0,
        start: 0x10_0000,
        count: 3,
        pages: Pages::Inline(&pages),
    });
    round_trip(Command::UnbindPpgtt {
        vm: 1,
        start: 0x10_0000,
        count: 3,
    });
    round_trip(Command::BindGgtt {
        flags: 1,
        start: 0x800_0000,
        count: 3,
        pages: Pages::Inline(&pages),
    });
    round_trip(Command::BindGgtt {
        flags: 1,
        start: 0x800_0000,
        count: 512,
        pages: Pages::ByRef(0x7f_ffff_f000),
    });
    round_trip(Command::UnbindGgtt {
        start: 0x800_0000,
        count: 512,
    });
    round_trip(Command::Submit {
        engine: Engine::BCS0,
        vm: 3,
        ctx: 1,
        batch: 0x1008,
        batch_len: 64,
        seqno: 9,
    });
    round_trip(Command::Submit {
        engine: Engine::RCS0,
        vm: u32::MAX,
        ctx: u32::MAX,
        batch: (1 << 48) - u64::from(MAX_BATCH_BYTES),
        batch_len: MAX_BATCH_BYTES,
        seqno: 0,
    });
    round_trip(Command::Completion {
        engine: Engine::RCS0,
        seqno: u32::MAX,
    });
    round_trip(Command::EngineReset {
        engine: Engine {
            class: 2,
            instance: 1,
        },
    });
    round_trip(Command::VgpuError {
        reason: WireError::Fault as u32,
    });
    round_trip(Command::ResetNotice);
}

#[test]
fn inline_limit_fits_one_message() {
    let pages = inline(MAX_INLINE_PAGES);
    let c = Command::BindGgtt {
        flags: 0,
        start: 0,
        count: MAX_INLINE_PAGES,
        pages: Pages::Inline(&pages),
    };
    let mut out = [0u32; 128];
    let n = c.encode(&mut out).unwrap();
    assert!(n <= crate::abi::ctb::MAX_PAYLOAD as usize);
    let more = inline(MAX_INLINE_PAGES + 1);
    let c = Command::BindGgtt {
        flags: 0,
        start: 0,
        count: MAX_INLINE_PAGES + 1,
        pages: Pages::Inline(&more),
    };
    assert_eq!(c.encode(&mut out), Err(WireError::TooBig));
}

#[test]
fn refusals() {
    use action::*;
    let d = |a, p: &[u32]| Command::decode(a, p).err();
    assert_eq!(d(0x7ff, &[]), Some(WireError::Proto));
    // 0x001 was a version handshake; the version is negotiated at registration only.
    assert_eq!(d(0x001, &[1 << 16, 0]), Some(WireError::Proto));
    // Wrong lengths.
    assert_eq!(d(EV_RESET_NOTICE, &[0]), Some(WireError::Inval));
    assert_eq!(d(SUBMIT, &[0; 7]), Some(WireError::Inval));
    assert_eq!(d(SUBMIT, &[0; 9]), Some(WireError::Inval));
    // Reserved dwords.
    assert_eq!(d(PPGTT_CREATE, &[1, 1]), Some(WireError::Inval));
    // SUBMIT: engine, vm, ctx, batch lo/hi, len, seqno, flags. No flag exists, so none
    // can ask for GGTT privilege; vm 0 (a GGTT batch) is refused.
    let sub = [0, 1, 1, 0x1000, 0, 64, 7, 0];
    assert!(d(SUBMIT, &sub).is_none());
    for (i, v, e) in [
        (7, 1, WireError::Inval),        // flags
        (7, 1 << 31, WireError::Inval),  // flags
        (1, 0, WireError::Inval),        // vm 0: GGTT
        (2, 0, WireError::Inval),        // ctx 0
        (3, 0x1004, WireError::Inval),   // batch alignment
        (4, 0x1_0000, WireError::Inval), // batch above 48 bits
        (5, 0, WireError::Inval),        // empty batch
        (5, 60, WireError::Inval),       // length not a multiple of 8
        (5, MAX_BATCH_BYTES + 8, WireError::TooBig),
    ] {
        let mut p = sub;
        p[i] = v;
        assert_eq!(d(SUBMIT, &p), Some(e), "dword {i} = {v:#x}");
    }
    // A batch that starts below 2^48 but runs past it.
    let mut p = sub;
    (p[3], p[4]) = (0xffff_fff8, 0xffff);
    assert_eq!(d(SUBMIT, &p), Some(WireError::Inval));
    (p[3], p[5]) = (0xffff_ffc0, 64);
    assert!(d(SUBMIT, &p).is_none());
    assert_eq!(d(EV_ENGINE_RESET, &[0, 1]), Some(WireError::Inval));
    assert_eq!(d(EV_VGPU_ERROR, &[0, 1]), Some(WireError::Inval));
    assert_eq!(
        d(BIND_GGTT, &[1, 0, 0, 0, 1, 1, 0x1000, 0]),
        Some(WireError::Inval)
    );
    assert_eq!(d(UNBIND_GGTT, &[1, 0, 0, 1]), Some(WireError::Inval));
    // VM id 0 is not a PPGTT.
    assert_eq!(d(PPGTT_CREATE, &[0, 0]), Some(WireError::Inval));
    assert_eq!(d(UNBIND_PPGTT, &[0, 0, 0, 1]), Some(WireError::Inval));
    // Bind fields: unknown flags, unaligned or huge start, zero count, bad mode,
    // reference dwords with inline pages, trailing dwords with a reference.
    assert_eq!(
        d(BIND_PPGTT, &[1, 0x10, 0, 0, 1, 1, 0x1000, 0]),
        Some(WireError::Inval)
    );
    assert_eq!(
        d(BIND_PPGTT, &[1, 0, 0x800, 0, 1, 1, 0x1000, 0]),
        Some(WireError::Inval)
    );
    assert_eq!(
        d(BIND_PPGTT, &[1, 0, 0, 0x1_0000, 1, 1, 0x1000, 0]),
        Some(WireError::Inval)
    );
    assert_eq!(
        d(BIND_PPGTT, &[1, 0, 0, 0, 0, 1, 0x1000, 0]),
        Some(WireError::Inval)
    );
    assert_eq!(
        d(BIND_PPGTT, &[1, 0, 0, 0, 1, 2, 0x1000, 0]),
        Some(WireError::Inval)
    );
    assert_eq!(
        d(BIND_PPGTT, &[1, 0, 0, 0, 1, 0, 0x1000, 0, 0x1000, 0]),
        Some(WireError::Inval)
    );
    assert_eq!(
        d(BIND_PPGTT, &[1, 0, 0, 0, 1, 1, 0x1000, 0, 5]),
        Some(WireError::Inval)
    );
    // GGTT range past 4 GiB.
    assert_eq!(
        d(UNBIND_GGTT, &[0, 0xffff_f000, 0, 2]),
        Some(WireError::Inval)
    );
    // Inline count and pairs disagree; too many pages; bad page addresses.
    assert_eq!(
        d(BIND_GGTT, &[0, 0, 0, 0, 2, 0, 0, 0, 0x1000, 0]),
        Some(WireError::Inval)
    );
    assert_eq!(
        d(BIND_GGTT, &[0, 0, 0, 0, 513, 1, 0x1000, 0]),
        Some(WireError::TooBig)
    );
    assert_eq!(
        d(BIND_GGTT, &[0, 0, 0, 0, 1, 1, 0x1001, 0]),
        Some(WireError::Fault)
    );
    assert_eq!(
        d(BIND_GGTT, &[0, 0, 0, 0, 1, 0, 0, 0, 0x1000, 0x80]),
        Some(WireError::Fault)
    );
    // Engines: class beyond video enhance, bits above the instance.
    assert_eq!(d(EV_COMPLETION, &[4, 0]), Some(WireError::Inval));
    assert_eq!(d(EV_COMPLETION, &[1 << 16, 0]), Some(WireError::Inval));

    // The encoder refuses what the decoder would refuse, and small buffers.
    assert_eq!(
        Command::PpgttCreate { vm: 0 }.encode(&mut [0; 4]),
        Err(WireError::Inval)
    );
    assert_eq!(
        Command::PpgttCreate { vm: 1 }.encode(&mut [0; 1]),
        Err(WireError::NoSpc)
    );
    assert_eq!(
        Command::Submit {
            engine: Engine::RCS0,
            vm: 0,
            ctx: 1,
            batch: 0,
            batch_len: 8,
            seqno: 0
        }
        .encode(&mut [0; 8]),
        Err(WireError::Inval)
    );
}

#[test]
fn page_lists() {
    let list: Vec<u8> = (1..=512u64).flat_map(|i| (i << 12).to_le_bytes()).collect();
    assert_eq!(check_page_list(&list, 512), Ok(()));
    assert_eq!(
        check_page_list(&list[..8 * 511], 512),
        Err(WireError::Inval)
    );
    assert_eq!(check_page_list(&list, 513), Err(WireError::TooBig));
    let mut bad = list.clone();
    bad[8 * 300] = 1;
    assert_eq!(check_page_list(&bad, 512), Err(WireError::Fault));
}

#[test]
fn wire_errors() {
    for e in [1, 2, 7, 14, 16, 17, 22, 28, 71, 95] {
        assert_eq!(WireError::from_u32(e).map(|w| w as u32), Some(e));
    }
    assert_eq!(WireError::from_u32(0), None);
    assert_eq!(WireError::from_u32(23), None);
}

proptest! {
    /// Any payload under any action decodes or fails with an error, and what decodes
    /// re-encodes to the same dwords (totality; few random inputs decode).
    #[test]
    fn decode_is_total_and_canonical(action in 0u16..0x1000, p in proptest::collection::vec(any::<u32>(), 0..130)) {
        if let Ok(c) = Command::decode(action, &p) {
            let mut out = [0u32; 140];
            let n = c.encode(&mut out).unwrap();
            prop_assert_eq!(&out[..n], &p[..]);
        }
    }
}

/// A strategy of mostly valid payloads: a valid command's dwords, then with a small
/// chance one dword replaced by a random value.
fn mostly_valid() -> impl Strategy<Value = (u16, Vec<u32>)> {
    let engine = (0u32..4, 0u32..2).prop_map(|(c, i)| c | (i << 8));
    let page = (1u64..(1 << 27)).prop_map(|p| p << 12);
    let cmd = prop_oneof![
        (1u32..u32::MAX).prop_map(|vm| (action::PPGTT_CREATE, vec_of(&[vm, 0]))),
        (1u32..u32::MAX).prop_map(|vm| (action::PPGTT_DESTROY, vec_of(&[vm, 0]))),
        (
            1u32..100,
            0u32..16,
            0u64..(1 << 35),
            proptest::collection::vec(page.clone(), 1..=MAX_INLINE_PAGES as usize)
        )
            .prop_map(|(vm, flags, pg, pages)| {
                let start = pg << 12;
                let mut v = vec_of(&[vm, flags, start as u32, (start >> 32) as u32]);
                v.extend([pages.len() as u32, 0, 0, 0]);
                v.extend(pages.iter().flat_map(|p| [*p as u32, (*p >> 32) as u32]));
                (action::BIND_PPGTT, v)
            }),
        (
            0u32..16,
            0u64..(1 << 19),
            1u32..=MAX_LIST_PAGES,
            page.clone()
        )
            .prop_map(|(flags, pg, count, r)| {
                let start = pg << 12;
                let v = vec_of(&[
                    0,
                    flags,
                    start as u32,
                    0,
                    count,
                    1,
                    r as u32,
                    (r >> 32) as u32,
                ]);
                (action::BIND_GGTT, v)
            }),
        (1u32..9, 0u64..(1 << 35), 1u32..1000).prop_map(|(vm, pg, count)| {
            let start = pg << 12;
            (
                action::UNBIND_PPGTT,
                vec_of(&[vm, start as u32, (start >> 32) as u32, count]),
            )
        }),
        (
            engine.clone(),
            1u32..50,
            1u32..50,
            0u64..(1 << 44),
            1u32..=(MAX_BATCH_BYTES / 8),
            any::<u32>()
        )
            .prop_map(|(e, vm, ctx, b, len, seqno)| {
                let b = b << 3;
                let v = vec_of(&[e, vm, ctx, b as u32, (b >> 32) as u32, len * 8, seqno, 0]);
                (action::SUBMIT, v)
            }),
        (engine.clone(), any::<u32>()).prop_map(|(e, s)| (action::EV_COMPLETION, vec_of(&[e, s]))),
        engine.prop_map(|e| (action::EV_ENGINE_RESET, vec_of(&[e, 0]))),
        any::<u32>().prop_map(|r| (action::EV_VGPU_ERROR, vec_of(&[r, 0]))),
        Just((action::EV_RESET_NOTICE, Vec::new())),
    ];
    (cmd, 0u32..10, any::<usize>(), any::<u32>()).prop_map(|((a, mut v), roll, at, val)| {
        // One case in ten gets one dword corrupted.
        if roll == 0 && !v.is_empty() {
            let i = at % v.len();
            v[i] = val;
        }
        (a, v)
    })
}

fn vec_of(w: &[u32]) -> Vec<u32> {
    w.to_vec()
}

/// Structured, mostly valid payloads: they decode, and round-trip exactly; the valid
/// branch must run for at least 80% of the cases.
#[test]
fn mostly_valid_commands_round_trip() {
    counted(
        "cmd round trip",
        2000,
        mostly_valid(),
        80,
        |(action, p)| match Command::decode(action, &p) {
            Ok(c) => {
                let mut out = [0u32; 140];
                let n = c.encode(&mut out).unwrap();
                prop_assert_eq!(&out[..n], &p[..]);
                prop_assert_eq!(c.action(), action);
                Ok(true)
            }
            Err(_) => Ok(false),
        },
    );
}
