// SPDX-License-Identifier: GPL-2.0

//! Tests of the CTB channel logic over plain memory and over shared atomics.

extern crate std;

use super::*;
use proptest::prelude::*;
use std::{
    collections::VecDeque,
    sync::atomic::{AtomicU32, Ordering},
    sync::Arc,
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
    assert_eq!(check_ring(64), Ok(()));
    assert_eq!(check_ring(16384), Ok(()));
    assert_eq!(check_ring(62), Err(CtbError::BadRing));
    assert_eq!(check_ring(65), Err(CtbError::BadRing));
    assert_eq!(check_ring(16386), Err(CtbError::BadRing));
}

#[test]
fn send_recv_wrap_and_padding() {
    let mut buf = vec![0u32; 64];
    let mut r = SliceRing::new(&mut buf);
    let mut out = [0u32; MAX_PAYLOAD as usize];
    // Move near the end: 60 dwords used by two messages, then consumed.
    send(&mut r, &req(1, 28, 1), &[1; 28]).unwrap();
    send(&mut r, &req(2, 28, 2), &[2; 28]).unwrap();
    assert_eq!(send(&mut r, &req(3, 4, 3), &[3; 4]), Err(CtbError::NoSpace));
    assert_eq!(recv(&mut r, &mut out).unwrap().unwrap().fence, 1);
    assert_eq!(recv(&mut r, &mut out).unwrap().unwrap().fence, 2);
    assert_eq!(recv(&mut r, &mut out), Ok(None));
    // 4 dwords left before the end: a 5-dword message (6 with padding) wraps.
    send(&mut r, &req(4, 3, 4), &[4, 5, 6]).unwrap();
    assert_eq!(r.tail, 60 + 4 + 6);
    assert_eq!(r.read(60), msg_type::PAD << 12);
    assert_eq!(r.read(61), 2);
    let h = recv(&mut r, &mut out).unwrap().unwrap();
    assert_eq!((h.action, h.len, h.fence), (4, 3, 4));
    assert_eq!(&out[..3], &[4, 5, 6]);
    assert_eq!(r.head, r.tail);
}

#[test]
fn small_buffer_consumes_nothing() {
    let mut buf = vec![0u32; 64];
    let mut r = SliceRing::new(&mut buf);
    send(&mut r, &req(1, 4, 9), &[1, 2, 3, 4]).unwrap();
    let mut small = [0u32; 3];
    assert_eq!(recv(&mut r, &mut small), Err(CtbError::BufferTooSmall));
    assert_eq!(r.status, 0);
    let mut out = [0u32; 4];
    assert_eq!(recv(&mut r, &mut out).unwrap().unwrap().fence, 9);
}

#[test]
fn payload_must_match_header() {
    let mut buf = vec![0u32; 64];
    let mut r = SliceRing::new(&mut buf);
    assert_eq!(send(&mut r, &req(1, 2, 0), &[1]), Err(CtbError::BadMessage));
    assert_eq!(r.tail, 0);
}

#[test]
fn corruption_stops_the_channel() {
    let mut out = [0u32; 8];
    // Tail beyond the ring.
    let mut buf = vec![0u32; 64];
    let mut r = SliceRing::new(&mut buf);
    r.tail = 66;
    assert_eq!(
        recv(&mut r, &mut out),
        Err(CtbError::Stopped(STATUS_OVERFLOW))
    );
    assert_eq!(
        recv(&mut r, &mut out),
        Err(CtbError::Stopped(STATUS_OVERFLOW))
    );
    assert_eq!(
        send(&mut r, &req(1, 0, 0), &[]),
        Err(CtbError::Stopped(STATUS_OVERFLOW))
    );
    // Garbage header.
    let mut buf = vec![0u32; 64];
    let mut r = SliceRing::new(&mut buf);
    r.tail = 2;
    r.ring[0] = 0xff00_0000;
    assert_eq!(
        recv(&mut r, &mut out),
        Err(CtbError::Stopped(STATUS_MISMATCH))
    );
    // Header claims more than published.
    let mut buf = vec![0u32; 64];
    let mut r = SliceRing::new(&mut buf);
    r.ring[0] = 6 << 16;
    r.tail = 4;
    assert_eq!(
        recv(&mut r, &mut out),
        Err(CtbError::Stopped(STATUS_UNDERFLOW))
    );
    // Padding that does not reach the end of the ring.
    let mut buf = vec![0u32; 64];
    let mut r = SliceRing::new(&mut buf);
    r.ring[0] = msg_type::PAD << 12;
    r.ring[1] = 10;
    r.tail = 64;
    assert_eq!(
        recv(&mut r, &mut out),
        Err(CtbError::Stopped(STATUS_MISMATCH))
    );
    // Odd counters.
    let mut buf = vec![0u32; 64];
    let mut r = SliceRing::new(&mut buf);
    r.tail = 3;
    assert_eq!(
        recv(&mut r, &mut out),
        Err(CtbError::Stopped(STATUS_MISMATCH))
    );
    // A disabled channel refuses both ends.
    let mut buf = vec![0u32; 64];
    let mut r = SliceRing::new(&mut buf);
    r.set_status(STATUS_DISABLED);
    assert_eq!(
        send(&mut r, &req(1, 0, 0), &[]),
        Err(CtbError::Stopped(STATUS_DISABLED))
    );
}

#[test]
fn counters_wrap_at_2_pow_32() {
    let mut buf = vec![0u32; 64];
    let mut r = SliceRing::new(&mut buf);
    r.head = u32::MAX - 9;
    r.tail = u32::MAX - 9;
    let mut out = [0u32; 8];
    for i in 0..20 {
        send(&mut r, &req(1, 5, i), &[i; 5]).unwrap();
        assert_eq!(recv(&mut r, &mut out).unwrap().unwrap().fence, i);
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
    let c = Credits::new(64, MAX_PAYLOAD);
    assert_eq!(c.available(), 0);
    let mut c = Credits::new(1024, 14);
    assert_eq!(c.available(), (1024 - 16) / 16);
    while c.take() {}
    assert_eq!(c.available(), 0);
    c.give();
    assert_eq!(c.available(), 1);
    for _ in 0..100 {
        c.give();
    }
    assert_eq!(c.available(), 63);
}

proptest! {
    /// Random sends and receives: nothing is lost, duplicated or reordered, and a sleeping
    /// consumer is always woken for a message that arrives while it sleeps.
    #[test]
    fn fifo_and_wakeups(ops in proptest::collection::vec((0u8..3, 0u8..40), 1..400),
                        size_half in 32u32..200) {
        let size = size_half * 2;
        let mut buf = vec![0u32; size as usize];
    let mut r = SliceRing::new(&mut buf);
        let mut model = VecDeque::new();
        let mut out = [0u32; MAX_PAYLOAD as usize];
        let mut fence = 0u32;
        let mut sleeping = false;
        for (op, len) in ops {
            if op < 2 {
                let payload: Vec<u32> = (0..u32::from(len)).map(|i| fence ^ i).collect();
                match send(&mut r, &req(3, len, fence), &payload) {
                    Ok(doorbell) => {
                        model.push_back((fence, payload));
                        if doorbell { sleeping = false; }
                        fence += 1;
                    }
                    Err(CtbError::NoSpace) => {
                        let free = size - r.tail.wrapping_sub(r.head);
                        prop_assert!(free < footprint(u32::from(len)) * 2);
                    }
                    Err(e) => prop_assert!(false, "send: {:?}", e),
                }
                // A consumer asleep with a message pending was woken: never stuck.
                prop_assert!(!sleeping || model.is_empty());
            } else {
                prop_assert!(!sleeping || model.is_empty());
                match recv(&mut r, &mut out) {
                    Ok(Some(h)) => {
                        let (f, p) = model.pop_front().unwrap();
                        prop_assert_eq!(h.fence, f);
                        prop_assert_eq!(&out[..usize::from(h.len)], &p[..]);
                    }
                    Ok(None) => {
                        prop_assert!(model.is_empty());
                        sleeping = !prepare_sleep(&mut r);
                    }
                    Err(e) => prop_assert!(false, "recv: {:?}", e),
                }
            }
        }
        while let Some((f, _)) = model.pop_front() {
            prop_assert_eq!(recv(&mut r, &mut out).unwrap().unwrap().fence, f);
        }
        prop_assert_eq!(r.status, 0);
    }

    /// Arbitrary descriptor and ring contents: the consumer returns errors, never panics,
    /// and never reports a payload longer than the buffer it was given.
    #[test]
    fn garbage_never_panics(ring in proptest::collection::vec(any::<u32>(), 64..300),
                            head in any::<u32>(), tail in any::<u32>(), status in any::<u32>()) {
        let n = ring.len() & !1;
        let mut buf = ring[..n].to_vec();
        let mut r = SliceRing::new(&mut buf);
        r.head = head;
        r.tail = tail;
        r.status = status & !STATUS_ERROR_MASK;
        let mut out = [0u32; 16];
        for _ in 0..8 {
            match recv(&mut r, &mut out) {
                Ok(Some(h)) => prop_assert!(usize::from(h.len) <= out.len()),
                Ok(None) | Err(_) => break,
            }
        }
        let _ = send(&mut r, &req(1, 3, 1), &[1, 2, 3]);
    }

    /// With credits taken before each tracked request, responses always fit.
    #[test]
    fn credits_guarantee_response_space(lens in proptest::collection::vec(0u8..32, 1..300),
                                        size_half in 64u32..256) {
        let size = size_half * 2;
        let mut rbuf = vec![0u32; size as usize];
        let mut resp = SliceRing::new(&mut rbuf);
        let mut credits = Credits::new(size, 31);
        let mut out = [0u32; MAX_PAYLOAD as usize];
        for (i, len) in lens.into_iter().enumerate() {
            if !credits.take() {
                // Consume one response, which returns its credit.
                prop_assert!(recv(&mut resp, &mut out).unwrap().is_some());
                credits.give();
                prop_assert!(credits.take());
            }
            let h = Header { action: 1, kind: msg_type::RESPONSE_SUCCESS as u8, len, fence: i as u32 };
            let p = vec![0u32; usize::from(len)];
            prop_assert_eq!(send(&mut resp, &h, &p).map(|_| ()), Ok(()));
        }
    }
}

/// A channel in shared atomics: the producer and the consumer in two threads.
struct AtomicRing {
    ring: Arc<Vec<AtomicU32>>,
    idx: Arc<[AtomicU32; 4]>,
}

const HEAD: usize = 0;
const TAIL: usize = 1;
const EVENT: usize = 2;
const STATUS: usize = 3;

impl RingMem for AtomicRing {
    fn size(&self) -> u32 {
        self.ring.len() as u32
    }
    fn read(&self, idx: u32) -> u32 {
        self.ring[idx as usize].load(Ordering::Relaxed)
    }
    fn write(&mut self, idx: u32, v: u32) {
        self.ring[idx as usize].store(v, Ordering::Relaxed)
    }
    fn head(&self) -> u32 {
        self.idx[HEAD].load(Ordering::Acquire)
    }
    fn set_head(&mut self, v: u32) {
        self.idx[HEAD].store(v, Ordering::Release)
    }
    fn tail(&self) -> u32 {
        self.idx[TAIL].load(Ordering::Acquire)
    }
    fn set_tail(&mut self, v: u32) {
        self.idx[TAIL].store(v, Ordering::Release)
    }
    fn event(&self) -> u32 {
        self.idx[EVENT].load(Ordering::Relaxed)
    }
    fn set_event(&mut self, v: u32) {
        self.idx[EVENT].store(v, Ordering::Relaxed)
    }
    fn status(&self) -> u32 {
        self.idx[STATUS].load(Ordering::Relaxed)
    }
    fn set_status(&mut self, bits: u32) {
        self.idx[STATUS].fetch_or(bits, Ordering::Relaxed);
    }
    fn fence(&self) {
        std::sync::atomic::fence(Ordering::SeqCst);
    }
}

/// Two threads over shared atomics, with a real sleep/wake protocol (a parked consumer
/// woken only by doorbells): every message arrives once, in order, intact, and the
/// consumer is never left asleep with a message pending.
#[test]
fn two_threads_with_suppression() {
    const N: u32 = 200_000;
    let ring: Arc<Vec<AtomicU32>> = Arc::new((0..256).map(|_| AtomicU32::new(0)).collect());
    let idx = Arc::new([
        AtomicU32::new(0),
        AtomicU32::new(0),
        AtomicU32::new(0),
        AtomicU32::new(0),
    ]);
    let doorbells = Arc::new(AtomicU32::new(0));
    let mut prod = AtomicRing {
        ring: ring.clone(),
        idx: idx.clone(),
    };
    let mut cons = AtomicRing { ring, idx };
    let consumer = std::thread::spawn(move || {
        let mut out = [0u32; MAX_PAYLOAD as usize];
        let mut next = 0u32;
        let mut sleeps = 0u32;
        while next < N {
            match recv(&mut cons, &mut out).unwrap() {
                Some(h) => {
                    assert_eq!(h.fence, next);
                    let len = usize::from(h.len);
                    assert!(out[..len]
                        .iter()
                        .enumerate()
                        .all(|(i, w)| *w == next.wrapping_mul(31) ^ i as u32));
                    next += 1;
                }
                None => {
                    // Every announcement of a sleep may draw one doorbell, even when a
                    // message arrived before the consumer actually slept.
                    sleeps += 1;
                    if !prepare_sleep(&mut cons) {
                        // Parking may return early (a stale unpark, or spuriously); only
                        // five seconds without a message means a doorbell was missed.
                        let start = std::time::Instant::now();
                        while cons.tail() == cons.head() {
                            assert!(start.elapsed().as_secs() < 5, "slept through a message");
                            std::thread::park_timeout(std::time::Duration::from_millis(500));
                        }
                    }
                }
            }
        }
        sleeps
    });
    let waker = consumer.thread().clone();
    let mut payload = [0u32; 13];
    for i in 0..N {
        let len = (i % 14) as u8;
        for (k, w) in payload.iter_mut().enumerate() {
            *w = i.wrapping_mul(31) ^ k as u32;
        }
        loop {
            match send(&mut prod, &req(2, len, i), &payload[..usize::from(len)]) {
                Ok(true) => {
                    doorbells.fetch_add(1, Ordering::Relaxed);
                    waker.unpark();
                    break;
                }
                Ok(false) => break,
                Err(CtbError::NoSpace) => {
                    assert!(!consumer.is_finished(), "consumer died");
                    std::thread::yield_now()
                }
                Err(e) => panic!("send: {e:?}"),
            }
        }
    }
    let sleeps = consumer.join().unwrap();
    // Suppression: fewer doorbells than messages, and at most one per announced sleep.
    let rung = doorbells.load(Ordering::Relaxed);
    assert!(rung <= sleeps + 1, "{rung} doorbells for {sleeps} sleeps");
    assert!(rung < N);
}
