// SPDX-License-Identifier: GPL-2.0

//! Round trips, every refusal, and totality of the command decoder.

extern crate std;

use super::*;
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
    round_trip(Command::Handshake { version: 1 << 16 });
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
        vm: 0,
        batch: 0x1008,
        seqno: 9,
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
    // Wrong lengths.
    assert_eq!(d(HANDSHAKE, &[1]), Some(WireError::Inval));
    assert_eq!(d(EV_RESET_NOTICE, &[0]), Some(WireError::Inval));
    assert_eq!(d(SUBMIT, &[0; 7]), Some(WireError::Inval));
    // Reserved dwords.
    assert_eq!(d(HANDSHAKE, &[1, 1]), Some(WireError::Inval));
    assert_eq!(d(PPGTT_CREATE, &[1, 1]), Some(WireError::Inval));
    assert_eq!(d(SUBMIT, &[0, 0, 8, 0, 1, 1]), Some(WireError::Inval));
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
    // Batch alignment and width.
    assert_eq!(d(SUBMIT, &[0, 0, 4, 0, 1, 0]), Some(WireError::Inval));
    assert_eq!(
        d(SUBMIT, &[0, 0, 0, 0x1_0000, 1, 0]),
        Some(WireError::Inval)
    );
    // The encoder refuses what the decoder would refuse, and small buffers.
    assert_eq!(
        Command::PpgttCreate { vm: 0 }.encode(&mut [0; 4]),
        Err(WireError::Inval)
    );
    assert_eq!(
        Command::Handshake { version: 0 }.encode(&mut [0; 1]),
        Err(WireError::NoSpc)
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
    /// re-encodes to the same dwords.
    #[test]
    fn decode_is_total_and_canonical(action in 0u16..0x1000, p in proptest::collection::vec(any::<u32>(), 0..130)) {
        if let Ok(c) = Command::decode(action, &p) {
            let mut out = [0u32; 140];
            let n = c.encode(&mut out).unwrap();
            prop_assert_eq!(&out[..n], &p[..]);
        }
    }

    /// Structured inputs: binds with random fields either round-trip or are refused.
    #[test]
    fn binds(vm in 0u32..3, flags in 0u32..32, start in any::<u64>(), count in 0u32..600,
             mode in 0u32..3, r in any::<u64>()) {
        let p = [vm, flags, start as u32, (start >> 32) as u32, count, mode, r as u32, (r >> 32) as u32];
        if let Ok(c) = Command::decode(action::BIND_PPGTT, &p) {
            let mut out = [0u32; 16];
            let n = c.encode(&mut out).unwrap();
            prop_assert_eq!(&out[..n], &p[..]);
        }
    }
}
