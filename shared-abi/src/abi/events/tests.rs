// SPDX-License-Identifier: GPL-2.0

//! Event flow control: coalescing, priority, no error ever dropped, responses never
//! crowded out.

extern crate std;

use super::*;
use crate::abi::cmd::{action, Command};
use crate::abi::ctb::{footprint, Consumer, SliceRing, MAX_PAYLOAD, MIN_RING_DWORDS};
use crate::abi::testutil::counted;
use proptest::prelude::*;
use std::{vec, vec::Vec};

fn drain(c: &mut Consumer, r: &mut SliceRing<'_>) -> Vec<(u16, Vec<u32>)> {
    let mut out = [0u32; MAX_PAYLOAD as usize];
    let mut got = Vec::new();
    while let Some(h) = c.recv(r, &mut out).unwrap() {
        got.push((h.action, out[..usize::from(h.len)].to_vec()));
    }
    got
}

#[test]
fn completions_coalesce_and_errors_go_first() {
    let mut q = EventQueue::new();
    for s in 1..=1000 {
        q.completion(Engine::RCS0, s);
    }
    q.completion(Engine::RCS0, 3); // older: ignored
    q.completion(Engine::BCS0, 7);
    q.engine_reset(Engine::BCS0);
    q.engine_reset(Engine::BCS0);
    q.vgpu_error(14);
    q.vgpu_error(22); // the first error is kept
    q.completion(
        Engine {
            class: 1,
            instance: 5,
        },
        1,
    ); // no slot: ignored
    assert_eq!(q.coalesced(), 1000);
    let mut buf = vec![0u32; MIN_RING_DWORDS as usize];
    let mut r = SliceRing::new(&mut buf);
    let mut p = Producer::new(MIN_RING_DWORDS).unwrap();
    let mut c = Consumer::new(MIN_RING_DWORDS).unwrap();
    assert_eq!(q.flush(&mut p, &mut r, 0), Ok(true));
    assert!(q.is_empty());
    let got = drain(&mut c, &mut r);
    let want: Vec<(u16, Vec<u32>)> = vec![
        (action::EV_VGPU_ERROR, vec![14, 0]),
        (action::EV_ENGINE_RESET, vec![1, 0]),
        (action::EV_COMPLETION, vec![0, 1000]),
        (action::EV_COMPLETION, vec![1, 7]),
    ];
    assert_eq!(got, want);
    assert!(seqno_after(1, u32::MAX));
    assert!(!seqno_after(u32::MAX, 1));
}

/// Random posts against a ring the guest drains only sometimes, with responses owed:
/// no error event is ever lost, the completion the guest sees last per engine is the
/// latest posted, the queue stays bounded, and the owed responses always fit.
#[test]
fn flow_control_under_pressure() {
    let ops = proptest::collection::vec((0u8..40, 0usize..5, 1u32..20), 150..400);
    counted(
        "event flow control",
        256,
        (ops, 0u32..3),
        50,
        |(ops, owed)| {
            let size = MIN_RING_DWORDS;
            let mut buf = vec![0u32; size as usize];
            let mut r = SliceRing::new(&mut buf);
            let mut p = Producer::new(size).unwrap();
            let mut c = Consumer::new(size).unwrap();
            let mut q = EventQueue::new();
            let f = footprint(MAX_PAYLOAD.min(14));
            let keep = (owed + 1) * f;
            let mut seq = [0u32; ENGINE_SLOTS.len()];
            let (mut errors_posted, mut errors_seen) = (0u32, 0u32);
            let mut last_seen = [0u32; ENGINE_SLOTS.len()];
            let mut full = false;
            for (op, slot_i, step) in ops {
                let e = ENGINE_SLOTS[slot_i];
                match op {
                    0..=30 => {
                        seq[slot_i] += step;
                        q.completion(e, seq[slot_i]);
                    }
                    31 if errors_posted == 0 => {
                        q.vgpu_error(14);
                        errors_posted += 1;
                    }
                    32 => {
                        // The guest drains.
                        for (a, pl) in drain(&mut c, &mut r) {
                            match a {
                                action::EV_VGPU_ERROR => errors_seen += 1,
                                action::EV_COMPLETION => {
                                    let Command::Completion { engine, seqno } =
                                        Command::decode(a, &pl).unwrap()
                                    else {
                                        unreachable!()
                                    };
                                    let i = slot(engine).unwrap();
                                    prop_assert!(seqno_after(seqno, last_seen[i]));
                                    last_seen[i] = seqno;
                                }
                                _ => {}
                            }
                        }
                    }
                    _ => {}
                }
                q.flush(&mut p, &mut r, keep).unwrap();
                full |= !q.is_empty();
                // What the host owes still fits.
                let free = size - p.tail().wrapping_sub(c.head());
                prop_assert!(free >= keep);
            }
            // The guest drains until the host has nothing left.
            for _ in 0..64 {
                for (a, pl) in drain(&mut c, &mut r) {
                    if a == action::EV_VGPU_ERROR {
                        errors_seen += 1;
                    }
                    if let Ok(Command::Completion { engine, seqno }) = Command::decode(a, &pl) {
                        last_seen[slot(engine).unwrap()] = seqno;
                    }
                }
                q.flush(&mut p, &mut r, keep).unwrap();
                if q.is_empty() && r.tail == r.head {
                    break;
                }
            }
            let _ = drain(&mut c, &mut r);
            prop_assert!(q.is_empty());
            prop_assert_eq!(errors_seen, errors_posted);
            prop_assert_eq!(last_seen, seq);
            // Valid branch: the ring ran full at least once, so coalescing was exercised.
            Ok(full)
        },
    );
}
