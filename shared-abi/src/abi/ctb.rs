// SPDX-License-Identifier: GPL-2.0

//! CTB: the command transport between guest and host, one ring per direction.
//!
//! A channel is a descriptor plus a ring of dwords in shared memory. The producer owns
//! `tail`, the consumer owns `head` and `event`; both may set error bits in `status`.
//! `head` and `tail` are free-running dword counters (they wrap at 2^32, not at the ring
//! size), so `tail - head` is the number of used dwords and full and empty are never
//! confused.
//!
//! Messages are [`HDR_DWORDS`] header dwords and up to [`MAX_PAYLOAD`] payload dwords,
//! padded to an even length. A message never straddles the end of the ring: when it does
//! not fit before the end, the producer first writes a padding message over the rest.
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

/// Dwords in a message header.
pub const HDR_DWORDS: u32 = 2;
/// Largest payload of one message, in dwords.
pub const MAX_PAYLOAD: u32 = 126;
/// Smallest ring, in dwords.
pub const MIN_RING_DWORDS: u32 = 64;
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
pub fn footprint(len: u32) -> u32 {
    (HDR_DWORDS + len + 1) & !1
}

/// Access to one channel's descriptor and ring, with the ordering rules of this module.
///
/// Ring indices passed to `read`/`write` are already reduced modulo the ring size.
pub trait RingMem {
    /// Ring size in dwords, as registered (checked by [`check_ring`]).
    fn size(&self) -> u32;
    /// Reads ring dword `idx`.
    fn read(&self, idx: u32) -> u32;
    /// Writes ring dword `idx`.
    fn write(&mut self, idx: u32, v: u32);
    /// Loads `head` (acquire).
    fn head(&self) -> u32;
    /// Stores `head` (release).
    fn set_head(&mut self, v: u32);
    /// Loads `tail` (acquire).
    fn tail(&self) -> u32;
    /// Stores `tail` (release).
    fn set_tail(&mut self, v: u32);
    /// Loads `event`.
    fn event(&self) -> u32;
    /// Stores `event`.
    fn set_event(&mut self, v: u32);
    /// Loads `status`.
    fn status(&self) -> u32;
    /// Sets bits in `status` (an atomic OR where both sides share it).
    fn set_status(&mut self, bits: u32);
    /// A full memory fence.
    fn fence(&self);
}

/// A channel over plain memory: the ring as a dword slice and the descriptor as fields.
///
/// Used where one side owns a private copy: the host consumes from a snapshot copied
/// once from guest memory and writes `head` (and `status`) back; tests, the fuzzer and
/// the benchmarks drive both ends with it. `fence` is a no-op: nothing is shared.
#[derive(Debug)]
pub struct SliceRing<'a> {
    /// The ring; its length is the ring size.
    pub ring: &'a mut [u32],
    /// Consumer count.
    pub head: u32,
    /// Producer count.
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
}

impl RingMem for SliceRing<'_> {
    fn size(&self) -> u32 {
        u32::try_from(self.ring.len()).unwrap_or(0)
    }
    fn read(&self, idx: u32) -> u32 {
        // `send`/`recv` only pass indices below `size()`; out of range reads as 0.
        self.ring.get(idx as usize).copied().unwrap_or(0)
    }
    fn write(&mut self, idx: u32, v: u32) {
        if let Some(d) = self.ring.get_mut(idx as usize) {
            *d = v;
        }
    }
    fn head(&self) -> u32 {
        self.head
    }
    fn set_head(&mut self, v: u32) {
        self.head = v;
    }
    fn tail(&self) -> u32 {
        self.tail
    }
    fn set_tail(&mut self, v: u32) {
        self.tail = v;
    }
    fn event(&self) -> u32 {
        self.event
    }
    fn set_event(&mut self, v: u32) {
        self.event = v;
    }
    fn status(&self) -> u32 {
        self.status
    }
    fn set_status(&mut self, bits: u32) {
        self.status |= bits;
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

fn stopped<M: RingMem>(m: &M) -> Result<(), CtbError> {
    match m.status() & STATUS_ERROR_MASK {
        0 => Ok(()),
        s => Err(CtbError::Stopped(s)),
    }
}

/// Whether a producer that moved `tail` from `old` to `new` must notify a consumer that
/// asked to be woken at `event` (virtio's `vring_need_event`, on 32-bit counters).
pub fn need_event(event: u32, new: u32, old: u32) -> bool {
    new.wrapping_sub(event).wrapping_sub(1) < new.wrapping_sub(old)
}

/// Sends one message. Returns whether the consumer must be notified (doorbell).
///
/// # Errors
///
/// [`CtbError::Stopped`] if the channel is in error, [`CtbError::NoSpace`] if the message
/// (plus padding to the ring end, if needed) does not fit now, [`CtbError::BadMessage`]
/// for a bad header or a payload longer than the header says.
pub fn send<M: RingMem>(m: &mut M, hdr: &Header, payload: &[u32]) -> Result<bool, CtbError> {
    stopped(m)?;
    let size = m.size();
    check_ring(size)?;
    if payload.len() != usize::from(hdr.len) {
        return Err(CtbError::BadMessage);
    }
    let words = hdr.encode()?;
    let need = footprint(u32::from(hdr.len));
    let (head, old_tail) = (m.head(), m.tail());
    let used = old_tail.wrapping_sub(head);
    if used > size {
        m.set_status(STATUS_OVERFLOW);
        return Err(CtbError::Stopped(STATUS_OVERFLOW));
    }
    let free = size - used;
    let at = old_tail % size;
    let to_end = size - at;
    let pad = if need > to_end { to_end } else { 0 };
    if pad + need > free {
        return Err(CtbError::NoSpace);
    }
    let mut tail = old_tail;
    if pad > 0 {
        // Padding: type PAD, length 0, and in the fence dword the dwords it skips beyond
        // its header, which must reach exactly the end of the ring.
        m.write(at, msg_type::PAD << 12);
        m.write(at + 1, pad - HDR_DWORDS);
        tail = tail.wrapping_add(pad);
    }
    let at = tail % size;
    m.write(at, words[0]);
    m.write(at + 1, words[1]);
    for (i, w) in (HDR_DWORDS..).zip(payload) {
        m.write(at + i, *w);
    }
    if need > HDR_DWORDS + u32::from(hdr.len) {
        m.write(at + need - 1, 0);
    }
    tail = tail.wrapping_add(need);
    m.set_tail(tail);
    m.fence();
    Ok(need_event(m.event(), tail, old_tail))
}

/// Receives one message into `out`, returning its header, or `None` if the ring is empty.
/// Padding is skipped. A malformed ring stops the channel (status bit set).
///
/// # Errors
///
/// [`CtbError::Stopped`] if the channel is or goes into error,
/// [`CtbError::BufferTooSmall`] if `out` cannot hold the payload (nothing is consumed).
pub fn recv<M: RingMem>(m: &mut M, out: &mut [u32]) -> Result<Option<Header>, CtbError> {
    stopped(m)?;
    let size = m.size();
    check_ring(size)?;
    loop {
        let (head, tail) = (m.head(), m.tail());
        let used = tail.wrapping_sub(head);
        if used == 0 {
            return Ok(None);
        }
        let fail = |m: &mut M, bit: u32| {
            m.set_status(bit);
            Err(CtbError::Stopped(bit))
        };
        if used > size {
            return fail(m, STATUS_OVERFLOW);
        }
        if used % 2 != 0 || head % 2 != 0 {
            return fail(m, STATUS_MISMATCH);
        }
        let at = head % size;
        let to_end = size - at;
        let Ok(hdr) = Header::decode([m.read(at), m.read(at + 1)]) else {
            return fail(m, STATUS_MISMATCH);
        };
        if u32::from(hdr.kind) == msg_type::PAD {
            if hdr.fence != to_end - HDR_DWORDS {
                return fail(m, STATUS_MISMATCH);
            }
            if used < to_end {
                return fail(m, STATUS_UNDERFLOW);
            }
            m.set_head(head.wrapping_add(to_end));
            continue;
        }
        let need = footprint(u32::from(hdr.len));
        if need > to_end {
            return fail(m, STATUS_MISMATCH);
        }
        if need > used {
            return fail(m, STATUS_UNDERFLOW);
        }
        let Some(dst) = out.get_mut(..usize::from(hdr.len)) else {
            return Err(CtbError::BufferTooSmall);
        };
        for (i, d) in (HDR_DWORDS..).zip(dst.iter_mut()) {
            *d = m.read(at + i);
        }
        m.set_head(head.wrapping_add(need));
        return Ok(Some(hdr));
    }
}

/// Called by a consumer that found the ring empty and wants to sleep: asks to be woken at
/// the next message. Returns `true` if a message arrived meanwhile, in which case the
/// consumer must not sleep but receive again.
pub fn prepare_sleep<M: RingMem>(m: &mut M) -> bool {
    let head = m.head();
    m.set_event(head);
    m.fence();
    m.tail() != head
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
    /// always fit.
    pub fn new(ring: u32, max_payload: u32) -> Self {
        let f = footprint(max_payload.min(MAX_PAYLOAD));
        let max = ring.saturating_sub(f) / f;
        Self { avail: max, max }
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
}

#[cfg(test)]
mod tests;
