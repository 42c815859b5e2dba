// SPDX-License-Identifier: GPL-2.0

//! Tests of the CTB channel logic over plain memory and over shared atomics.

extern crate std;

use super::*;
use crate::abi::testutil::counted;
use proptest::prelude::*;
use std::{
    cell::Cell,
    collections::VecDeque,
    sync::atomic::{AtomicU32, Ordering},
    sync::{Arc, Condvar, Mutex},
    time::{Duration, Instant},
    vec,
    vec::Vec,
};

fn req(action: u16, len: u8, fence: u32) -> Header {
    Header {
        action,
        kind: msg_type::REQUEST as u8,
        len,
        fence,
    }
}

/// Both ends over one plain ring.
fn pair(size: u32) -> (Producer, Consumer) {
    (Producer::new(size).unwrap(), Consumer::new(size).unwrap())
}

#[test]
fn header_round_trip_and_reserved_bits() {
    let h = Header {
        action: 0xabc,
        kind: msg_type::EVENT as u8,
        len: 126,
        fence: 7,
    };
    assert_eq!(Header::decode(h.encode().unwrap()), Ok(h));
    for bit in 24..32 {
        let mut w = h.encode().unwrap();
        w[0] |= 1 << bit;
        assert_eq!(Header::decode(w), Err(CtbError::BadMessage));
    }
    for kind in 6..15u32 {
        assert_eq!(Header::decode([kind << 12, 0]), Err(CtbError::BadMessage));
    }
    assert_eq!(Header::decode([127 << 16, 0]), Err(CtbError::BadMessage));
    assert_eq!(
        Header::decode([(15 << 12) | (1 << 16), 0]),
        Err(CtbError::BadMessage)
    );
    assert_eq!(
        Header {
            action: 0x1000,
            ..h
        }
        .encode(),
        Err(CtbError::BadMessage)
    );
    assert_eq!(Header { len: 127, ..h }.encode(), Err(CtbError::BadMessage));
}

#[test]
fn ring_sizes() {
    assert_eq!(MAX_FOOTPRINT, 128);
    assert_eq!(MIN_RING_DWORDS, 256);
    assert_eq!(check_ring(256), Ok(()));
    assert_eq!(check_ring(16384), Ok(()));
    assert_eq!(check_ring(254), Err(CtbError::BadRing));
    assert_eq!(check_ring(64), Err(CtbError::BadRing));
    assert_eq!(check_ring(257), Err(CtbError::BadRing));
    assert_eq!(check_ring(16386), Err(CtbError::BadRing));
    assert_eq!(Producer::new(64), Err(CtbError::BadRing));
    assert_eq!(Consumer::new(255), Err(CtbError::BadRing));
}

/// Whatever the counters, an empty ring of any valid size takes a maximal message, and
/// two maximal messages fit the smallest ring.
#[test]
fn empty_ring_takes_a_maximal_message() {
    let payload = [7u32; MAX_PAYLOAD as usize];
    let mut out = [0u32; MAX_PAYLOAD as usize];
    for size in [256u32, 258, 300, 512, 1000] {
        for start in (0..size).step_by(2) {
            let mut buf = vec![0u32; size as usize];
            let mut r = SliceRing::new(&mut buf);
            let (mut p, mut c) = pair(size);
            // Move both ends to `start` with small messages.
            while p.tail() != start {
                let len = ((start - p.tail()).min(MAX_FOOTPRINT) - HDR_DWORDS) as u8;
                p.send(&mut r, &req(1, len, 0), &payload[..usize::from(len)])
                    .unwrap();
                c.recv(&mut r, &mut out).unwrap().unwrap();
            }
            let h = req(2, MAX_PAYLOAD as u8, 9);
            assert_eq!(
                p.send(&mut r, &h, &payload).map(|_| ()),
                Ok(()),
                "{size} {start}"
            );
            assert_eq!(c.recv(&mut r, &mut out).unwrap(), Some(h));
        }
    }
    let mut buf = vec![0u32; 256];
    let mut r = SliceRing::new(&mut buf);
    let (mut p, _) = pair(256);
    let h = req(2, MAX_PAYLOAD as u8, 9);
    p.send(&mut r, &h, &payload).unwrap();
    p.send(&mut r, &h, &payload).unwrap();
    assert_eq!(p.send(&mut r, &req(1, 0, 0), &[]), Err(CtbError::NoSpace));
}

#[test]
fn credits_never_zero_for_a_valid_ring() {
    for ring in (MIN_RING_DWORDS..=MAX_RING_DWORDS).step_by(2) {
        for max_payload in [0, 1, 14, 125, MAX_PAYLOAD, 1000] {
            let c = Credits::new(ring, max_payload).unwrap();
            assert!(c.available() >= 1, "{ring} {max_payload}");
        }
    }
    assert_eq!(Credits::new(64, 2), Err(CtbError::BadRing));
    assert_eq!(Credits::new(256, MAX_PAYLOAD).unwrap().available(), 1);
}

#[test]
fn send_recv_wrap_and_padding() {
    let mut buf = vec![0u32; 256];
    let mut r = SliceRing::new(&mut buf);
    let (mut p, mut c) = pair(256);
    let mut out = [0u32; MAX_PAYLOAD as usize];
    // Move near the end: 252 dwords used by two messages, then consumed.
    p.send(&mut r, &req(1, 124, 1), &[1; 124]).unwrap();
    p.send(&mut r, &req(2, 124, 2), &[2; 124]).unwrap();
    assert_eq!(
        p.send(&mut r, &req(3, 4, 3), &[3; 4]),
        Err(CtbError::NoSpace)
    );
    assert_eq!(c.recv(&mut r, &mut out).unwrap().unwrap().fence, 1);
    assert_eq!(c.recv(&mut r, &mut out).unwrap().unwrap().fence, 2);
    assert_eq!(c.recv(&mut r, &mut out), Ok(None));
    // 4 dwords left before the end: a 5-dword message (6 with padding) wraps.
    p.send(&mut r, &req(4, 3, 4), &[4, 5, 6]).unwrap();
    assert_eq!(r.tail, 252 + 4 + 6);
    assert_eq!(r.read(252), Ok(msg_type::PAD << 12));
    assert_eq!(r.read(253), Ok(2));
    let h = c.recv(&mut r, &mut out).unwrap().unwrap();
    assert_eq!((h.action, h.len, h.fence), (4, 3, 4));
    assert_eq!(&out[..3], &[4, 5, 6]);
    assert_eq!(r.head, r.tail);
}

#[test]
fn small_buffer_consumes_nothing() {
    let mut buf = vec![0u32; 256];
    let mut r = SliceRing::new(&mut buf);
    let (mut p, mut c) = pair(256);
    p.send(&mut r, &req(1, 4, 9), &[1, 2, 3, 4]).unwrap();
    let mut small = [0u32; 3];
    assert_eq!(c.recv(&mut r, &mut small), Err(CtbError::BufferTooSmall));
    assert_eq!((r.status, c.error()), (0, None));
    let mut out = [0u32; 4];
    assert_eq!(c.recv(&mut r, &mut out).unwrap().unwrap().fence, 9);
}

#[test]
fn payload_must_match_header() {
    let mut buf = vec![0u32; 256];
    let mut r = SliceRing::new(&mut buf);
    let (mut p, _) = pair(256);
    assert_eq!(
        p.send(&mut r, &req(1, 2, 0), &[1]),
        Err(CtbError::BadMessage)
    );
    assert_eq!((r.tail, p.tail()), (0, 0));
}

fn stopped_by(setup: impl FnOnce(&mut SliceRing<'_>), want: u32) {
    let mut out = [0u32; 8];
    let mut buf = vec![0u32; 256];
    let mut r = SliceRing::new(&mut buf);
    setup(&mut r);
    let mut c = Consumer::new(256).unwrap();
    assert_eq!(c.recv(&mut r, &mut out), Err(CtbError::Stopped(want)));
    assert_eq!(r.status & want, want);
    // Sticky in the consumer, even if the guest clears the shared status.
    r.status = 0;
    assert_eq!(c.recv(&mut r, &mut out), Err(CtbError::Stopped(want)));
    assert_eq!(c.error(), Some(CtbError::Stopped(want)));
}

#[test]
fn corruption_stops_the_channel() {
    // Tail beyond the ring.
    stopped_by(|r| r.tail = 258, STATUS_OVERFLOW);
    // Garbage header.
    stopped_by(
        |r| {
            r.tail = 2;
            r.ring[0] = 0xff00_0000;
        },
        STATUS_MISMATCH,
    );
    // Header claims more than published.
    stopped_by(
        |r| {
            r.ring[0] = 6 << 16;
            r.tail = 4;
        },
        STATUS_UNDERFLOW,
    );
    // Padding that does not reach the end of the ring.
    stopped_by(
        |r| {
            r.ring[0] = msg_type::PAD << 12;
            r.ring[1] = 10;
            r.tail = 12;
        },
        STATUS_MISMATCH,
    );
    // Padding at ring position 0, even one that skips the whole ring.
    stopped_by(
        |r| {
            r.ring[0] = msg_type::PAD << 12;
            r.ring[1] = 254;
            r.tail = 256;
        },
        STATUS_MISMATCH,
    );
    // Odd counter.
    stopped_by(|r| r.tail = 3, STATUS_MISMATCH);
    // A disabled channel refuses both ends.
    let mut buf = vec![0u32; 256];
    let mut r = SliceRing::new(&mut buf);
    r.status = STATUS_DISABLED;
    let (mut p, mut c) = pair(256);
    assert_eq!(
        p.send(&mut r, &req(1, 0, 0), &[]),
        Err(CtbError::Stopped(STATUS_DISABLED))
    );
    assert_eq!(
        c.prepare_sleep(&mut r),
        Err(CtbError::Stopped(STATUS_DISABLED))
    );
    // A producer whose consumer claims more than a ring, or an odd head.
    for (head, bit) in [(2u32.wrapping_neg(), STATUS_OVERFLOW), (1, STATUS_MISMATCH)] {
        let mut buf = vec![0u32; 256];
        let mut r = SliceRing::new(&mut buf);
        let (mut p, _) = pair(256);
        p.send(&mut r, &req(1, 0, 0), &[]).unwrap();
        r.head = head.wrapping_add(p.tail()).wrapping_sub(p.tail() + 256);
        if bit == STATUS_MISMATCH {
            r.head = 1;
        }
        assert_eq!(
            p.send(&mut r, &req(1, 0, 0), &[]),
            Err(CtbError::Stopped(bit))
        );
        assert_eq!(p.error(), Some(CtbError::Stopped(bit)));
    }
}

/// A ring memory that counts `tail` loads and can fail from the n-th access on.
struct Probe<'a> {
    inner: SliceRing<'a>,
    tail_loads: Cell<u32>,
    accesses: Cell<u32>,
    fail_from: Option<u32>,
    /// A hostile producer: every `tail` load says the ring is full, whatever the
    /// consumer consumed.
    tail_a_ring_ahead: bool,
}

impl<'a> Probe<'a> {
    fn new(ring: &'a mut [u32]) -> Self {
        Self {
            inner: SliceRing::new(ring),
            tail_loads: Cell::new(0),
            accesses: Cell::new(0),
            fail_from: None,
            tail_a_ring_ahead: false,
        }
    }
    fn tick(&self) -> Result<(), MemFault> {
        let n = self.accesses.get();
        self.accesses.set(n + 1);
        match self.fail_from {
            Some(k) if n >= k => Err(MemFault),
            _ => Ok(()),
        }
    }
}

impl RingMem for Probe<'_> {
    fn read(&self, idx: u32) -> Result<u32, MemFault> {
        self.tick()?;
        self.inner.read(idx)
    }
    fn write(&mut self, idx: u32, v: u32) -> Result<(), MemFault> {
        self.tick()?;
        self.inner.write(idx, v)
    }
    fn load(&self, f: Field) -> Result<u32, MemFault> {
        self.tick()?;
        if f == Field::Tail {
            self.tail_loads.set(self.tail_loads.get() + 1);
            if self.tail_a_ring_ahead {
                return Ok(self.inner.head.wrapping_add(self.inner.size()));
            }
        }
        self.inner.load(f)
    }
    fn store(&mut self, f: Field, v: u32) -> Result<(), MemFault> {
        self.tick()?;
        self.inner.store(f, v)
    }
    fn set_status(&mut self, bits: u32) -> Result<(), MemFault> {
        self.tick()?;
        self.inner.set_status(bits)
    }
    fn fence(&self) {}
}

/// A hostile producer that fills the ring with padding and keeps moving `tail` a whole
/// ring ahead of every head the consumer publishes cannot keep the consumer in one
/// `recv`: at most two rounds, then the channel stops.
#[test]
fn padding_is_bounded() {
    let mut buf = vec![0u32; 256];
    let mut m = Probe::new(&mut buf);
    // Every even position holds a padding header that reaches the ring end.
    for at in (0..256u32).step_by(2) {
        m.inner.ring[at as usize] = msg_type::PAD << 12;
        m.inner.ring[at as usize + 1] = 256 - at - HDR_DWORDS;
    }
    // A real 100-dword message at 0 first, so the consumer stands at 100.
    m.inner.ring[0] = (98 << 16) | 1;
    m.inner.tail = 100;
    let mut c = Consumer::new(256).unwrap();
    let mut out = [0u32; MAX_PAYLOAD as usize];
    assert_eq!(c.recv(&mut m, &mut out).unwrap().unwrap().len, 98);
    m.inner.ring[0] = msg_type::PAD << 12;
    m.inner.ring[1] = 254;
    m.tail_a_ring_ahead = true;
    m.tail_loads.set(0);
    assert_eq!(
        c.recv(&mut m, &mut out),
        Err(CtbError::Stopped(STATUS_MISMATCH))
    );
    assert_eq!(m.tail_loads.get(), 2);
    assert_eq!(c.head(), 256);
}

/// The consumer never reads its head back, the producer never its tail: a guest that
/// rewrites them in shared memory changes nothing on the host's side.
#[test]
fn private_counters_ignore_shared_memory() {
    let mut buf = vec![0u32; 256];
    let mut r = SliceRing::new(&mut buf);
    let (mut p, mut c) = pair(256);
    let mut out = [0u32; 8];
    for i in 0..300u32 {
        p.send(&mut r, &req(1, 3, i), &[i; 3]).unwrap();
        // The other side scribbles over the counters it does not own.
        r.head = r.head.wrapping_add(0x4000_0001);
        r.tail = r.tail.wrapping_add(0x1234_5679);
        let back = (p.tail(), c.head());
        r.head = back.1;
        r.tail = back.0;
        assert_eq!(c.recv(&mut r, &mut out).unwrap().unwrap().fence, i);
        // The consumer's view of its own head is its own, whatever memory says.
        r.head = 0xdead_beee;
        assert_eq!(c.head(), p.tail());
        r.head = c.head();
    }
    // A guest head write that would make the host consumer re-read old messages has no
    // effect: the host's head is private.
    p.send(&mut r, &req(1, 0, 1000), &[]).unwrap();
    r.head = 0;
    assert_eq!(c.recv(&mut r, &mut out).unwrap().unwrap().fence, 1000);
    assert_eq!(c.recv(&mut r, &mut out), Ok(None));
}

/// Any failed access puts the endpoint into its error state for good.
#[test]
fn faults_stop_the_endpoint() {
    let mut out = [0u32; 8];
    // Fail each access of a recv in turn.
    for k in 0..8 {
        let mut buf = vec![0u32; 256];
        let mut m = Probe::new(&mut buf);
        let (mut p, mut c) = pair(256);
        p.send(&mut m, &req(1, 3, 5), &[1, 2, 3]).unwrap();
        m.accesses.set(0);
        m.fail_from = Some(k);
        match c.recv(&mut m, &mut out) {
            Err(CtbError::Fault) => {
                m.fail_from = None;
                assert_eq!(c.recv(&mut m, &mut out), Err(CtbError::Fault));
                assert_eq!(c.prepare_sleep(&mut m), Err(CtbError::Fault));
                assert_eq!(c.error(), Some(CtbError::Fault));
            }
            Ok(Some(h)) => assert!(k >= 6, "recv survived fault at access {k}: {h:?}"),
            other => panic!("{k}: {other:?}"),
        }
    }
    // And each access of a send.
    for k in 0..10 {
        let mut buf = vec![0u32; 256];
        let mut m = Probe::new(&mut buf);
        let (mut p, _) = pair(256);
        m.fail_from = Some(k);
        match p.send(&mut m, &req(1, 3, 5), &[1, 2, 3]) {
            Err(CtbError::Fault) => {
                m.fail_from = None;
                assert_eq!(p.send(&mut m, &req(1, 0, 0), &[]), Err(CtbError::Fault));
                assert_eq!(p.error(), Some(CtbError::Fault));
            }
            Ok(_) => assert!(k >= 9, "send survived fault at access {k}"),
            other => panic!("{k}: {other:?}"),
        }
    }
    // An index outside the ring is a fault, never a panic.
    let mut buf = vec![0u32; 4];
    let mut r = SliceRing::new(&mut buf);
    assert_eq!(r.read(4), Err(MemFault));
    assert_eq!(r.write(u32::MAX, 0), Err(MemFault));
}

#[test]
fn counters_wrap_at_2_pow_32() {
    let mut buf = vec![0u32; 256];
    let mut r = SliceRing::new(&mut buf);
    let (mut p, mut c) = pair(256);
    // Start both ends just below the wrap.
    p.0.count = u32::MAX - 9;
    c.0.count = u32::MAX - 9;
    (r.head, r.tail) = (u32::MAX - 9, u32::MAX - 9);
    let mut out = [0u32; 8];
    for i in 0..200 {
        p.send(&mut r, &req(1, 5, i), &[i; 5]).unwrap();
        assert_eq!(c.recv(&mut r, &mut out).unwrap().unwrap().fence, i);
    }
}

#[test]
fn need_event_is_virtio_semantics() {
    assert!(need_event(5, 6, 5));
    assert!(need_event(5, 10, 0));
    assert!(!need_event(5, 5, 0));
    assert!(!need_event(10, 8, 2));
    assert!(need_event(u32::MAX, 1, u32::MAX - 1));
}

#[test]
fn credits_bound_responses() {
    let mut c = Credits::new(1024, 14).unwrap();
    assert_eq!(c.available(), (1024 - 16) / 16);
    while c.take() {}
    assert_eq!(c.available(), 0);
    c.give();
    assert_eq!(c.available(), 1);
    for _ in 0..100 {
        c.give();
    }
    assert_eq!(c.available(), 63);
    assert_eq!(c.max(), 63);
}

/// Random sends and receives: nothing is lost, duplicated or reordered, and a sleeping
/// consumer is always woken for a message that arrives while it sleeps. The valid branch
/// (a message sent, received and compared) must run for most operations.
#[test]
fn fifo_and_wakeups() {
    let strat = (
        proptest::collection::vec((0u8..3, 0u8..40), 1..400),
        (MIN_RING_DWORDS / 2)..1000,
    );
    counted("fifo_and_wakeups", 256, strat, 50, |(ops, size_half)| {
        let size = size_half * 2;
        let mut buf = vec![0u32; size as usize];
        let mut r = SliceRing::new(&mut buf);
        let (mut p, mut c) = pair(size);
        let mut model = VecDeque::new();
        let mut out = [0u32; MAX_PAYLOAD as usize];
        let (mut fence, mut compared, mut sent, mut tries) = (0u32, 0u32, 0u32, 0u32);
        let mut sleeping = false;
        for (op, len) in ops {
            if op < 2 {
                tries += 1;
                let payload: Vec<u32> = (0..u32::from(len)).map(|i| fence ^ i).collect();
                match p.send(&mut r, &req(3, len, fence), &payload) {
                    Ok(doorbell) => {
                        model.push_back((fence, payload));
                        if doorbell {
                            sleeping = false;
                        }
                        fence += 1;
                        sent += 1;
                    }
                    Err(CtbError::NoSpace) => {
                        let free = size - p.tail().wrapping_sub(c.head());
                        prop_assert!(free < footprint(u32::from(len)) * 2);
                    }
                    Err(e) => prop_assert!(false, "send: {:?}", e),
                }
                // A consumer asleep with a message pending was woken: never stuck.
                prop_assert!(!sleeping || model.is_empty());
            } else {
                prop_assert!(!sleeping || model.is_empty());
                match c.recv(&mut r, &mut out) {
                    Ok(Some(h)) => {
                        let (f, want) = model.pop_front().unwrap();
                        prop_assert_eq!(h.fence, f);
                        prop_assert_eq!(&out[..usize::from(h.len)], &want[..]);
                        compared += 1;
                    }
                    Ok(None) => {
                        prop_assert!(model.is_empty());
                        sleeping = !c.prepare_sleep(&mut r).unwrap();
                    }
                    Err(e) => prop_assert!(false, "recv: {:?}", e),
                }
            }
        }
        while let Some((f, _)) = model.pop_front() {
            prop_assert_eq!(c.recv(&mut r, &mut out).unwrap().unwrap().fence, f);
            compared += 1;
        }
        prop_assert_eq!(r.status, 0);
        prop_assert_eq!(compared, sent);
        // Valid: at least half the sends got through (and were compared above).
        Ok(sent > 0 && sent * 2 >= tries)
    });
}

proptest! {
    /// Arbitrary descriptor and ring contents: the consumer returns errors, never panics,
    /// and never reports a payload longer than the buffer it was given.
    #[test]
    fn garbage_never_panics(ring in proptest::collection::vec(any::<u32>(), 256..600),
                            tail in any::<u32>(), status in any::<u32>()) {
        let n = ring.len() & !1;
        let mut buf = ring[..n].to_vec();
        let mut r = SliceRing::new(&mut buf);
        r.tail = tail;
        r.status = status & !STATUS_ERROR_MASK;
        let (mut p, mut c) = pair(n as u32);
        let mut out = [0u32; 16];
        for _ in 0..8 {
            match c.recv(&mut r, &mut out) {
                Ok(Some(h)) => prop_assert!(usize::from(h.len) <= out.len()),
                Ok(None) | Err(_) => break,
            }
        }
        let _ = p.send(&mut r, &req(1, 3, 1), &[1, 2, 3]);
    }

    /// With credits taken before each tracked request, responses always fit.
    #[test]
    fn credits_guarantee_response_space(lens in proptest::collection::vec(0u8..32, 1..300),
                                        size_half in 128u32..512) {
        let size = size_half * 2;
        let mut rbuf = vec![0u32; size as usize];
        let mut resp = SliceRing::new(&mut rbuf);
        let (mut p, mut c) = pair(size);
        let mut credits = Credits::new(size, 31).unwrap();
        let mut out = [0u32; MAX_PAYLOAD as usize];
        for (i, len) in lens.into_iter().enumerate() {
            if !credits.take() {
                // Consume one response, which returns its credit.
                prop_assert!(c.recv(&mut resp, &mut out).unwrap().is_some());
                credits.give();
                prop_assert!(credits.take());
            }
            let h = Header { action: 1, kind: msg_type::RESPONSE_SUCCESS as u8, len, fence: i as u32 };
            let pl = vec![0u32; usize::from(len)];
            prop_assert_eq!(p.send(&mut resp, &h, &pl).map(|_| ()), Ok(()));
        }
    }
}

/// A channel in shared atomics: the producer and the consumer in two threads.
struct AtomicRing {
    ring: Arc<Vec<AtomicU32>>,
    idx: Arc<[AtomicU32; 4]>,
}

impl AtomicRing {
    fn slot(f: Field) -> usize {
        match f {
            Field::Head => 0,
            Field::Tail => 1,
            Field::Event => 2,
            Field::Status => 3,
        }
    }
}

impl RingMem for AtomicRing {
    fn read(&self, idx: u32) -> Result<u32, MemFault> {
        let w = self.ring.get(idx as usize).ok_or(MemFault)?;
        Ok(w.load(Ordering::Relaxed))
    }
    fn write(&mut self, idx: u32, v: u32) -> Result<(), MemFault> {
        let w = self.ring.get(idx as usize).ok_or(MemFault)?;
        w.store(v, Ordering::Relaxed);
        Ok(())
    }
    fn load(&self, f: Field) -> Result<u32, MemFault> {
        let o = match f {
            Field::Head | Field::Tail => Ordering::Acquire,
            Field::Event | Field::Status => Ordering::Relaxed,
        };
        Ok(self.idx[Self::slot(f)].load(o))
    }
    fn store(&mut self, f: Field, v: u32) -> Result<(), MemFault> {
        let o = match f {
            Field::Head | Field::Tail => Ordering::Release,
            Field::Event | Field::Status => Ordering::Relaxed,
        };
        self.idx[Self::slot(f)].store(v, o);
        Ok(())
    }
    fn set_status(&mut self, bits: u32) -> Result<(), MemFault> {
        self.idx[3].fetch_or(bits, Ordering::Relaxed);
        Ok(())
    }
    fn fence(&self) {
        std::sync::atomic::fence(Ordering::SeqCst);
    }
}

/// A doorbell: a latch the producer sets and the consumer waits on, with no timeout.
#[derive(Default)]
struct Doorbell {
    rung: Mutex<bool>,
    cv: Condvar,
}

impl Doorbell {
    fn ring(&self) {
        *self.rung.lock().unwrap() = true;
        self.cv.notify_one();
    }
    /// Sleeps until rung (no timeout: a lost doorbell hangs here for good).
    fn wait(&self) {
        let mut rung = self.rung.lock().unwrap();
        while !*rung {
            rung = self.cv.wait(rung).unwrap();
        }
        *rung = false;
    }
}

/// Two threads over shared atomics, with a real sleep/wake protocol: the consumer sleeps
/// on the doorbell alone (a condition variable, no timeout, nothing else wakes it) and
/// the test thread is the watchdog: if the consumer makes no progress for five seconds
/// it was left asleep with a message pending, a lost wake-up, and the test fails. Every
/// message arrives once, in order, intact.
#[test]
fn two_threads_with_suppression() {
    const N: u32 = 400_000;
    const SIZE: u32 = MIN_RING_DWORDS;
    let ring: Arc<Vec<AtomicU32>> = Arc::new((0..SIZE).map(|_| AtomicU32::new(0)).collect());
    let idx = Arc::new([
        AtomicU32::new(0),
        AtomicU32::new(0),
        AtomicU32::new(0),
        AtomicU32::new(0),
    ]);
    let bell = Arc::new(Doorbell::default());
    let progress = Arc::new(AtomicU32::new(0));
    let mut pm = AtomicRing {
        ring: ring.clone(),
        idx: idx.clone(),
    };
    let mut cm = AtomicRing { ring, idx };
    let (cbell, cprogress) = (bell.clone(), progress.clone());
    let consumer = std::thread::spawn(move || {
        let mut c = Consumer::new(SIZE).unwrap();
        let mut out = [0u32; MAX_PAYLOAD as usize];
        let (mut next, mut sleeps) = (0u32, 0u32);
        while next < N {
            match c.recv(&mut cm, &mut out).unwrap() {
                Some(h) => {
                    assert_eq!(h.fence, next);
                    let len = usize::from(h.len);
                    assert!(out[..len]
                        .iter()
                        .enumerate()
                        .all(|(i, w)| *w == next.wrapping_mul(31) ^ i as u32));
                    next += 1;
                    cprogress.store(next, Ordering::Relaxed);
                }
                None => {
                    // Every announcement of a sleep may draw one doorbell, even when a
                    // message arrived before the consumer actually slept.
                    sleeps += 1;
                    if !c.prepare_sleep(&mut cm).unwrap() {
                        cbell.wait();
                    }
                }
            }
        }
        sleeps
    });
    let (pbell, pprogress) = (bell.clone(), progress.clone());
    let producer = std::thread::spawn(move || {
        let mut p = Producer::new(SIZE).unwrap();
        let (mut payload, mut rung) = ([0u32; 13], 0u32);
        for i in 0..N {
            let len = (i % 14) as u8;
            for (k, w) in payload.iter_mut().enumerate() {
                *w = i.wrapping_mul(31) ^ k as u32;
            }
            // Vary the pace so that sends often race with the consumer announcing a
            // sleep: the window a missing fence or re-check opens.
            for _ in 0..(i.wrapping_mul(2_654_435_761) >> 26) {
                std::hint::spin_loop();
            }
            loop {
                match p.send(&mut pm, &req(2, len, i), &payload[..usize::from(len)]) {
                    Ok(true) => {
                        rung += 1;
                        pbell.ring();
                        break;
                    }
                    Ok(false) => break,
                    Err(CtbError::NoSpace) => {
                        // The consumer is behind; give up if it stopped for good (the
                        // watchdog reports it).
                        if pprogress.load(Ordering::Relaxed) == u32::MAX {
                            return rung;
                        }
                        std::thread::yield_now()
                    }
                    Err(e) => panic!("send: {e:?}"),
                }
            }
        }
        rung
    });
    // Watchdog: progress must never stall for 5 s.
    let (mut last, mut since) = (0u32, Instant::now());
    while !consumer.is_finished() {
        std::thread::sleep(Duration::from_millis(20));
        let now = progress.load(Ordering::Relaxed);
        if now != last {
            (last, since) = (now, Instant::now());
        }
        if since.elapsed() > Duration::from_secs(5) {
            progress.store(u32::MAX, Ordering::Relaxed);
            panic!("lost wake-up: consumer asleep at message {last} of {N} for 5 s");
        }
    }
    let sleeps = consumer.join().unwrap();
    let rung = producer.join().unwrap();
    // Suppression: fewer doorbells than messages, and at most one per announced sleep.
    assert!(rung <= sleeps + 1, "{rung} doorbells for {sleeps} sleeps");
    assert!(rung < N);
}
