// SPDX-License-Identifier: GPL-2.0

//! CTB: the command transport between guest and host, one ring per direction.
//!
//! A channel is a descriptor plus a ring of dwords in shared memory. The producer owns
//! `tail`, the consumer owns `head` and `event`; both may set error bits in `status`.
//! `head` and `tail` are free-running dword counters (they wrap at 2^32, not at the ring
//! size), so `tail - head` is the number of used dwords and full and empty are never
//! confused.
//!
//! Each end keeps its own counter privately ([`Consumer`], [`Producer`]) and only ever
//! writes it out; it never reads its own counter back from shared memory, where the other
//! side could have changed it. It reads the other side's counter, and treats it as
//! untrusted: every value is bounded before use and a bad one stops the channel. The
//! ring size comes from the validated registration, never from shared memory.
//!
//! Messages are [`HDR_DWORDS`] header dwords and up to [`MAX_PAYLOAD`] payload dwords,
//! padded to an even length. A message never straddles the end of the ring: when it does
//! not fit before the end, the producer first writes a padding message over the rest. A
//! ring holds at least two maximal messages ([`MIN_RING_DWORDS`]), so an empty ring
//! accepts a maximal message wherever its counters stand, a producer never pads at ring
//! position 0, and a consumer skips at most one padding message per [`Consumer::recv`].
//!
//! Notification suppression (virtio event-index style): before it sleeps, the consumer
//! stores the counter it wants to be woken at in `event`; a producer rings the doorbell
//! only when its new tail passes `event`. A busy consumer that never sleeps costs no
//! doorbells.
//!
//! Memory ordering, which every [`RingMem`] implementation must provide:
//!
//! - the producer writes the message dwords, then stores `tail` with release semantics;
//!   the consumer loads `tail` with acquire semantics before reading the message;
//! - the consumer reads the message, then stores `head` with release; the producer loads
//!   `head` with acquire before reusing the space;
//! - between publishing `tail` and loading `event` (producer), and between storing
//!   `event` and re-loading `tail` (consumer), a full fence ([`RingMem::fence`]); without
//!   it a sleeping consumer can miss a message (the store-load race of virtio).
//!
//! Every access may fail ([`MemFault`]): the host reads guest memory that the guest can
//! unmap under it. A failed access puts the endpoint into its error state
//! ([`CtbError::Fault`]) for good; only a new registration revives the channel.

/// Dwords in a message header.
pub const HDR_DWORDS: u32 = 2;
/// Largest payload of one message, in dwords.
pub const MAX_PAYLOAD: u32 = 126;
/// Ring dwords a maximal message occupies (header, payload, padding to even).
pub const MAX_FOOTPRINT: u32 = footprint(MAX_PAYLOAD);
/// Smallest ring, in dwords: two maximal messages. An empty ring then always takes a
/// maximal message (the padding before it is at most `MAX_FOOTPRINT - 2`), and the
/// credits of a ring ([`Credits`]) are never zero.
pub const MIN_RING_DWORDS: u32 = 2 * MAX_FOOTPRINT;
/// Largest ring, in dwords (64 KiB).
pub const MAX_RING_DWORDS: u32 = 16384;

/// Descriptor status: the consumer found `tail - head` larger than the ring.
pub const STATUS_OVERFLOW: u32 = 1 << 0;
/// Descriptor status: a header claimed more dwords than were published.
pub const STATUS_UNDERFLOW: u32 = 1 << 1;
/// Descriptor status: a header was malformed (length, type or padding).
pub const STATUS_MISMATCH: u32 = 1 << 2;
/// Descriptor status: the channel was disabled (reset or teardown).
pub const STATUS_DISABLED: u32 = 1 << 3;
/// Every status bit that stops the channel.
pub const STATUS_ERROR_MASK: u32 =
    STATUS_OVERFLOW | STATUS_UNDERFLOW | STATUS_MISMATCH | STATUS_DISABLED;

/// Message types (header dword 0, bits 15:12).
pub mod msg_type {
    /// A request that wants a response with the same fence.
    pub const REQUEST: u32 = 0;
    /// A request without a response.
    pub const FAST_REQUEST: u32 = 1;
    /// A successful response.
    pub const RESPONSE_SUCCESS: u32 = 2;
    /// A failed response; payload dword 0 is the error.
    pub const RESPONSE_FAILURE: u32 = 3;
    /// An unsolicited event.
    pub const EVENT: u32 = 4;
    /// Busy: the request was not handled, retry later.
    pub const BUSY: u32 = 5;
    /// Padding up to the end of the ring; consumers skip it.
    pub const PAD: u32 = 15;
}

/// A decoded message header.
///
/// Dword 0: bits 11:0 action, 15:12 type, 23:16 payload length in dwords, 31:24 must be
/// zero. Dword 1: the fence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Action code (what the message asks or reports).
    pub action: u16,
    /// One of [`msg_type`].
    pub kind: u8,
    /// Payload length in dwords.
    pub len: u8,
    /// Fence that pairs a response with its request.
    pub fence: u32,
}

/// Why a channel stopped or a message was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CtbError {
    /// The descriptor has error bits set; the value is `status`.
    Stopped(u32),
    /// An access to the descriptor or ring failed (guest memory gone); the endpoint is
    /// in its error state for good.
    Fault,
    /// Not enough free space now; try again after the consumer advanced.
    NoSpace,
    /// The message is longer than [`MAX_PAYLOAD`] or uses reserved bits.
    BadMessage,
    /// The consumer's buffer is smaller than the message payload.
    BufferTooSmall,
    /// The ring size is not an even number of dwords in range.
    BadRing,
}

impl Header {
    /// Encodes dword 0.
    ///
    /// # Errors
    ///
    /// [`CtbError::BadMessage`] if the action needs more than 12 bits or the type 4.
    pub fn encode(&self) -> Result<[u32; 2], CtbError> {
        if self.action > 0xfff || self.kind > 0xf || u32::from(self.len) > MAX_PAYLOAD {
            return Err(CtbError::BadMessage);
        }
        let dw0 =
            u32::from(self.action) | (u32::from(self.kind) << 12) | (u32::from(self.len) << 16);
        Ok([dw0, self.fence])
    }

    /// Decodes a header; reserved bits must be zero.
    ///
    /// # Errors
    ///
    /// [`CtbError::BadMessage`] for reserved bits, an undefined type, a length above
    /// [`MAX_PAYLOAD`] or a padding message with a length (padding says how far it skips
    /// in its fence dword).
    pub fn decode(dw: [u32; 2]) -> Result<Self, CtbError> {
        let [dw0, fence] = dw;
        if dw0 >> 24 != 0 {
            return Err(CtbError::BadMessage);
        }
        let kind = ((dw0 >> 12) & 0xf) as u8;
        let len = ((dw0 >> 16) & 0xff) as u8;
        let defined = u32::from(kind) <= msg_type::BUSY || u32::from(kind) == msg_type::PAD;
        let pad_len = u32::from(kind) == msg_type::PAD && len != 0;
        if !defined || pad_len || u32::from(len) > MAX_PAYLOAD {
            return Err(CtbError::BadMessage);
        }
        Ok(Self {
            action: (dw0 & 0xfff) as u16,
            kind,
            len,
            fence,
        })
    }
}

/// Dwords a message with `len` payload dwords occupies (header included, padded even).
pub const fn footprint(len: u32) -> u32 {
    (HDR_DWORDS + len + 1) & !1
}

/// A failed access to channel memory (for example a guest page unmapped under the host).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemFault;

/// A descriptor field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// The consumer's count: loaded with acquire (producer), stored with release
    /// (consumer).
    Head,
    /// The producer's count: loaded with acquire (consumer), stored with release
    /// (producer).
    Tail,
    /// The consumer's wake-up count; plain accesses, ordered by [`RingMem::fence`].
    Event,
    /// Error bits; plain loads, set with [`RingMem::set_status`].
    Status,
}

/// Access to one channel's descriptor and ring, with the ordering rules of this module.
///
/// Over live shared memory every access is one naturally aligned 4-byte load or store
/// (`READ_ONCE`/`WRITE_ONCE`, never a `memcpy`), so the other side's counter is read
/// whole. Ring indices are below the registered ring size; an implementation still
/// refuses any other index with [`MemFault`], never panics.
pub trait RingMem {
    /// Reads ring dword `idx`.
    ///
    /// # Errors
    ///
    /// [`MemFault`] if the memory is gone or `idx` is outside the ring.
    fn read(&self, idx: u32) -> Result<u32, MemFault>;
    /// Writes ring dword `idx`.
    ///
    /// # Errors
    ///
    /// [`MemFault`] if the memory is gone or `idx` is outside the ring.
    fn write(&mut self, idx: u32, v: u32) -> Result<(), MemFault>;
    /// Loads a descriptor field, with the ordering [`Field`] gives it.
    ///
    /// # Errors
    ///
    /// [`MemFault`] if the memory is gone.
    fn load(&self, f: Field) -> Result<u32, MemFault>;
    /// Stores a descriptor field, with the ordering [`Field`] gives it. Never called
    /// with [`Field::Status`].
    ///
    /// # Errors
    ///
    /// [`MemFault`] if the memory is gone.
    fn store(&mut self, f: Field, v: u32) -> Result<(), MemFault>;
    /// Sets bits in `status` (an atomic OR where both sides share it).
    ///
    /// # Errors
    ///
    /// [`MemFault`] if the memory is gone.
    fn set_status(&mut self, bits: u32) -> Result<(), MemFault>;
    /// A full memory fence.
    fn fence(&self);
}

/// A channel over plain memory: the ring as a dword slice and the descriptor as fields.
///
/// For tests, the fuzzer and the benchmarks, which drive both ends. `fence` is a no-op:
/// nothing is shared.
#[derive(Debug)]
pub struct SliceRing<'a> {
    /// The ring.
    pub ring: &'a mut [u32],
    /// Consumer count as published.
    pub head: u32,
    /// Producer count as published.
    pub tail: u32,
    /// Consumer wake-up count.
    pub event: u32,
    /// Status bits.
    pub status: u32,
}

impl<'a> SliceRing<'a> {
    /// An empty, healthy channel over `ring`.
    pub fn new(ring: &'a mut [u32]) -> Self {
        Self {
            ring,
            head: 0,
            tail: 0,
            event: 0,
            status: 0,
        }
    }

    /// The ring size in dwords (saturated to `u32`).
    pub fn size(&self) -> u32 {
        u32::try_from(self.ring.len()).unwrap_or(u32::MAX)
    }
}

impl RingMem for SliceRing<'_> {
    fn read(&self, idx: u32) -> Result<u32, MemFault> {
        self.ring.get(idx as usize).copied().ok_or(MemFault)
    }
    fn write(&mut self, idx: u32, v: u32) -> Result<(), MemFault> {
        *self.ring.get_mut(idx as usize).ok_or(MemFault)? = v;
        Ok(())
    }
    fn load(&self, f: Field) -> Result<u32, MemFault> {
        Ok(match f {
            Field::Head => self.head,
            Field::Tail => self.tail,
            Field::Event => self.event,
            Field::Status => self.status,
        })
    }
    fn store(&mut self, f: Field, v: u32) -> Result<(), MemFault> {
        match f {
            Field::Head => self.head = v,
            Field::Tail => self.tail = v,
            Field::Event => self.event = v,
            Field::Status => return Err(MemFault),
        }
        Ok(())
    }
    fn set_status(&mut self, bits: u32) -> Result<(), MemFault> {
        self.status |= bits;
        Ok(())
    }
    fn fence(&self) {}
}

/// Checks a ring size: even, at least [`MIN_RING_DWORDS`], at most [`MAX_RING_DWORDS`].
///
/// # Errors
///
/// [`CtbError::BadRing`].
pub fn check_ring(size: u32) -> Result<(), CtbError> {
    if size % 2 != 0 || !(MIN_RING_DWORDS..=MAX_RING_DWORDS).contains(&size) {
        return Err(CtbError::BadRing);
    }
    Ok(())
}

/// Whether a producer that moved `tail` from `old` to `new` must notify a consumer that
/// asked to be woken at `event` (virtio's `vring_need_event`, on 32-bit counters).
pub fn need_event(event: u32, new: u32, old: u32) -> bool {
    new.wrapping_sub(event).wrapping_sub(1) < new.wrapping_sub(old)
}

impl From<MemFault> for CtbError {
    fn from(_: MemFault) -> Self {
        CtbError::Fault
    }
}

/// What one end of a channel keeps to itself: the ring size, its own counter and
/// whether it has stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct End {
    size: u32,
    count: u32,
    stopped: Option<CtbError>,
}

impl End {
    fn new(size: u32) -> Result<Self, CtbError> {
        check_ring(size)?;
        Ok(Self {
            size,
            count: 0,
            stopped: None,
        })
    }

    /// Fails if this end or the shared status says the channel stopped.
    fn healthy<M: RingMem>(&mut self, m: &M) -> Result<(), CtbError> {
        if let Some(e) = self.stopped {
            return Err(e);
        }
        match m.load(Field::Status)? & STATUS_ERROR_MASK {
            0 => Ok(()),
            s => Err(CtbError::Stopped(s)),
        }
    }

    /// Records a corruption: sets the bit in shared memory (best effort; the memory may
    /// be gone) and stops this end.
    fn corrupt<M: RingMem>(&mut self, m: &mut M, bit: u32) -> CtbError {
        // The end stops whether or not the other side can be told.
        let _ = m.set_status(bit);
        CtbError::Stopped(bit)
    }

    /// Makes an error sticky where it means the channel is dead.
    fn settle<T>(&mut self, r: Result<T, CtbError>) -> Result<T, CtbError> {
        if let Err(e @ (CtbError::Fault | CtbError::Stopped(_))) = r {
            self.stopped = Some(e);
        }
        r
    }
}

/// The producing end of a channel: its private `tail`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Producer(End);

impl Producer {
    /// A producer for a ring of `size` dwords (from the validated registration),
    /// starting at count 0.
    ///
    /// # Errors
    ///
    /// [`CtbError::BadRing`].
    pub fn new(size: u32) -> Result<Self, CtbError> {
        End::new(size).map(Self)
    }

    /// The private tail (the count of dwords produced).
    pub fn tail(&self) -> u32 {
        self.0.count
    }

    /// Whether this end has stopped, and why.
    pub fn error(&self) -> Option<CtbError> {
        self.0.stopped
    }

    /// Sends one message. Returns whether the consumer must be notified (doorbell).
    ///
    /// # Errors
    ///
    /// As [`Producer::send_keeping`] with nothing kept.
    pub fn send<M: RingMem>(
        &mut self,
        m: &mut M,
        hdr: &Header,
        payload: &[u32],
    ) -> Result<bool, CtbError> {
        self.send_keeping(m, hdr, payload, 0)
    }

    /// Sends one message only if at least `keep` dwords stay free after it (the host
    /// keeps room for the responses it owes before it sends an event). Returns whether
    /// the consumer must be notified (doorbell).
    ///
    /// # Errors
    ///
    /// [`CtbError::Stopped`] if the channel is or goes into error (the consumer's `head`
    /// is more than a ring behind or odd), [`CtbError::Fault`] if memory failed (both
    /// stop this end for good), [`CtbError::NoSpace`] if the message (plus padding to
    /// the ring end, plus `keep`) does not fit now, [`CtbError::BadMessage`] for a bad
    /// header or a payload longer than the header says.
    pub fn send_keeping<M: RingMem>(
        &mut self,
        m: &mut M,
        hdr: &Header,
        payload: &[u32],
        keep: u32,
    ) -> Result<bool, CtbError> {
        let r = self.send_inner(m, hdr, payload, keep);
        self.0.settle(r)
    }

    fn send_inner<M: RingMem>(
        &mut self,
        m: &mut M,
        hdr: &Header,
        payload: &[u32],
        keep: u32,
    ) -> Result<bool, CtbError> {
        self.0.healthy(m)?;
        if payload.len() != usize::from(hdr.len) {
            return Err(CtbError::BadMessage);
        }
        let words = hdr.encode()?;
        let size = self.0.size;
        let need = footprint(u32::from(hdr.len));
        let old_tail = self.0.count;
        // The consumer's head is untrusted: it must be at most one ring behind, even.
        let used = old_tail.wrapping_sub(m.load(Field::Head)?);
        if used > size {
            return Err(self.0.corrupt(m, STATUS_OVERFLOW));
        }
        if used % 2 != 0 {
            return Err(self.0.corrupt(m, STATUS_MISMATCH));
        }
        let free = size - used;
        let at = old_tail % size;
        let to_end = size - at;
        let pad = if need > to_end { to_end } else { 0 };
        if u64::from(pad) + u64::from(need) + u64::from(keep) > u64::from(free) {
            return Err(CtbError::NoSpace);
        }
        let mut tail = old_tail;
        if pad > 0 {
            // Padding: type PAD, length 0, and in the fence dword the dwords it skips
            // beyond its header, which must reach exactly the end of the ring.
            m.write(at, msg_type::PAD << 12)?;
            m.write(at + 1, pad - HDR_DWORDS)?;
            tail = tail.wrapping_add(pad);
        }
        let at = tail % size;
        m.write(at, words[0])?;
        m.write(at + 1, words[1])?;
        for (i, w) in (HDR_DWORDS..).zip(payload) {
            m.write(at + i, *w)?;
        }
        if need > HDR_DWORDS + u32::from(hdr.len) {
            m.write(at + need - 1, 0)?;
        }
        tail = tail.wrapping_add(need);
        self.0.count = tail;
        m.store(Field::Tail, tail)?;
        m.fence();
        Ok(need_event(m.load(Field::Event)?, tail, old_tail))
    }
}

/// The consuming end of a channel: its private `head`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Consumer(End);

impl Consumer {
    /// A consumer for a ring of `size` dwords (from the validated registration),
    /// starting at count 0.
    ///
    /// # Errors
    ///
    /// [`CtbError::BadRing`].
    pub fn new(size: u32) -> Result<Self, CtbError> {
        End::new(size).map(Self)
    }

    /// The private head (the count of dwords consumed).
    pub fn head(&self) -> u32 {
        self.0.count
    }

    /// Whether this end has stopped, and why.
    pub fn error(&self) -> Option<CtbError> {
        self.0.stopped
    }

    /// Receives one message into `out`, returning its header, or `None` if the ring is
    /// empty. Skips at most one padding message, so a producer that keeps moving `tail`
    /// cannot keep the consumer here. A malformed ring stops the channel (status bit
    /// set).
    ///
    /// The header and payload are read once each; `out` is the consumer's own copy.
    ///
    /// # Errors
    ///
    /// [`CtbError::Stopped`] if the channel is or goes into error, [`CtbError::Fault`]
    /// if memory failed (both stop this end for good), [`CtbError::BufferTooSmall`] if
    /// `out` cannot hold the payload (nothing is consumed).
    pub fn recv<M: RingMem>(
        &mut self,
        m: &mut M,
        out: &mut [u32],
    ) -> Result<Option<Header>, CtbError> {
        let r = self.recv_inner(m, out);
        self.0.settle(r)
    }

    fn recv_inner<M: RingMem>(
        &mut self,
        m: &mut M,
        out: &mut [u32],
    ) -> Result<Option<Header>, CtbError> {
        self.0.healthy(m)?;
        let size = self.0.size;
        // Two rounds at most: one padding message, then the message at position 0
        // (where a padding message is malformed).
        for _ in 0..2 {
            let head = self.0.count;
            let used = m.load(Field::Tail)?.wrapping_sub(head);
            if used == 0 {
                return Ok(None);
            }
            if used > size {
                return Err(self.0.corrupt(m, STATUS_OVERFLOW));
            }
            if used % 2 != 0 {
                return Err(self.0.corrupt(m, STATUS_MISMATCH));
            }
            let at = head % size;
            let to_end = size - at;
            let Ok(hdr) = Header::decode([m.read(at)?, m.read(at + 1)?]) else {
                return Err(self.0.corrupt(m, STATUS_MISMATCH));
            };
            if u32::from(hdr.kind) == msg_type::PAD {
                if at == 0 || hdr.fence != to_end - HDR_DWORDS {
                    return Err(self.0.corrupt(m, STATUS_MISMATCH));
                }
                if used < to_end {
                    return Err(self.0.corrupt(m, STATUS_UNDERFLOW));
                }
                self.0.count = head.wrapping_add(to_end);
                m.store(Field::Head, self.0.count)?;
                continue;
            }
            let need = footprint(u32::from(hdr.len));
            if need > to_end {
                return Err(self.0.corrupt(m, STATUS_MISMATCH));
            }
            if need > used {
                return Err(self.0.corrupt(m, STATUS_UNDERFLOW));
            }
            let Some(dst) = out.get_mut(..usize::from(hdr.len)) else {
                return Err(CtbError::BufferTooSmall);
            };
            for (i, d) in (HDR_DWORDS..).zip(dst.iter_mut()) {
                *d = m.read(at + i)?;
            }
            self.0.count = head.wrapping_add(need);
            m.store(Field::Head, self.0.count)?;
            return Ok(Some(hdr));
        }
        // PANIC-free fallback, not reached: after a padding message the head is at
        // position 0, where a second one is refused above.
        Err(self.0.corrupt(m, STATUS_MISMATCH))
    }

    /// Called by a consumer that found the ring empty and wants to sleep: publishes its
    /// head as `event`, fences and re-reads `tail`. Returns `true` if a message arrived
    /// meanwhile, in which case the consumer must not sleep but receive again; `false`
    /// means the next producer to publish will ring the doorbell.
    ///
    /// # Errors
    ///
    /// As [`Consumer::recv`] ([`CtbError::Stopped`], [`CtbError::Fault`]).
    pub fn prepare_sleep<M: RingMem>(&mut self, m: &mut M) -> Result<bool, CtbError> {
        let r = self.sleep_inner(m);
        self.0.settle(r)
    }

    fn sleep_inner<M: RingMem>(&mut self, m: &mut M) -> Result<bool, CtbError> {
        self.0.healthy(m)?;
        let head = self.0.count;
        m.store(Field::Event, head)?;
        m.fence();
        Ok(m.load(Field::Tail)? != head)
    }
}

/// Flow control for tracked requests: how many may be outstanding so that their responses
/// always fit in the response ring, whatever the order and padding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Credits {
    avail: u32,
    max: u32,
}

impl Credits {
    /// Credits for a response ring of `ring` dwords whose responses carry at most
    /// `max_payload` dwords: each response takes at most `f = footprint(max_payload)`
    /// dwords and the padding at one wrap less than `f`, so `(ring - f) / f` responses
    /// always fit. At least one for every valid ring ([`MIN_RING_DWORDS`] holds two
    /// maximal messages).
    ///
    /// # Errors
    ///
    /// [`CtbError::BadRing`] for a ring size [`check_ring`] refuses.
    pub fn new(ring: u32, max_payload: u32) -> Result<Self, CtbError> {
        check_ring(ring)?;
        let f = footprint(max_payload.min(MAX_PAYLOAD));
        let max = (ring - f) / f;
        Ok(Self { avail: max, max })
    }

    /// Takes a credit before sending a tracked request; `false` means wait for a response.
    pub fn take(&mut self) -> bool {
        if self.avail == 0 {
            return false;
        }
        self.avail -= 1;
        true
    }

    /// Returns the credit of a request whose response was consumed.
    pub fn give(&mut self) {
        self.avail = (self.avail + 1).min(self.max);
    }

    /// Credits available now.
    pub fn available(&self) -> u32 {
        self.avail
    }

    /// Credits of the ring in all.
    pub fn max(&self) -> u32 {
        self.max
    }
}

#[cfg(test)]
mod tests;
