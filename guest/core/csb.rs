// SPDX-License-Identifier: GPL-2.0

//! The context status buffer and the execlist ports, as pure logic
//! (`gt/intel_execlists_submission.c: process_csb`, `gen8_csb_parse`).
//!
//! The host writes CSB entries into the engine's status page (dwords 0x10 + 2i) and the
//! write pointer into dword 0x1f, then raises the context-switch interrupt. Everything
//! read there is device input: the pointer is range checked, at most
//! [`lrc::csb::ENTRIES`] entries are consumed per call, and an entry that still holds the
//! reset pattern (all ones) stops the walk until the next interrupt.

use crate::abi::lrc;

/// Entries in the ring.
const ENTRIES: u8 = lrc::csb::ENTRIES as u8;

/// The read pointer after a reset: the last entry, so that the first one read is 0
/// (`reset_csb_pointers`).
pub(crate) const RESET_HEAD: u8 = ENTRIES - 1;

/// What one CSB entry means to the driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Event {
    /// The pending ELSP pair became the running one (idle to active, or preempted).
    Promote,
    /// The running element completed; the context id is the entry's upper dword.
    Complete(u32),
    /// Anything else (e.g. active to idle alone): nothing to do.
    Other,
}

/// Decodes one entry as GEN8/9 i915 does: promotion wins over completion.
pub(crate) fn parse(entry: u64) -> Event {
    let status = entry as u32;
    if status & (lrc::csb::IDLE_ACTIVE | lrc::csb::PREEMPTED) != 0 {
        Event::Promote
    } else if status & lrc::csb::COMPLETE != 0 {
        Event::Complete((entry >> 32) as u32)
    } else {
        Event::Other
    }
}

/// Why the CSB could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CsbError {
    /// The write pointer is outside the ring (and not "none yet").
    BadPointer(u32),
}

/// The driver's read position in the CSB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Reader {
    head: u8,
}

impl Reader {
    /// A reader after `reset_csb_pointers`.
    pub(crate) const fn new() -> Self {
        Self { head: RESET_HEAD }
    }

    /// Consumes the entries up to the device's write pointer `tail`, reading entry `i` with
    /// `read(i)` and handing each event to `f`; returns how many were consumed.
    ///
    /// # Errors
    ///
    /// [`CsbError::BadPointer`]; nothing is consumed.
    pub(crate) fn consume(
        &mut self,
        tail: u32,
        mut read: impl FnMut(usize) -> Option<u64>,
        mut f: impl FnMut(Event),
    ) -> Result<usize, CsbError> {
        if tail == lrc::csb::PTR_NONE {
            return Ok(0);
        }
        if tail >= u32::from(ENTRIES) {
            return Err(CsbError::BadPointer(tail));
        }
        let mut n = 0;
        while self.head != tail as u8 && n < usize::from(ENTRIES) {
            let next = (self.head + 1) % ENTRIES;
            let Some(entry) = read(usize::from(next)) else {
                break;
            };
            if entry == u64::MAX {
                // Not written yet (the reset pattern): look again on the next interrupt.
                break;
            }
            self.head = next;
            n += 1;
            f(parse(entry));
        }
        Ok(n)
    }
}

/// The two execlist ports: what was written to the ELSP (`pending`) and what the device
/// acknowledged as running (`inflight`), element 0 first.
pub(crate) struct Ports<T> {
    pending: [Option<T>; 2],
    inflight: [Option<T>; 2],
}

impl<T> Ports<T> {
    /// Idle ports.
    pub(crate) const fn new() -> Self {
        Self {
            pending: [None, None],
            inflight: [None, None],
        }
    }

    /// Whether nothing is pending or running.
    pub(crate) fn is_idle(&self) -> bool {
        self.pending
            .iter()
            .chain(self.inflight.iter())
            .all(Option::is_none)
    }

    /// Records an ELSP submission of `first` and optionally `second`.
    ///
    /// # Errors
    ///
    /// Gives the elements back if the ports are not idle.
    pub(crate) fn submit(&mut self, first: T, second: Option<T>) -> Result<(), (T, Option<T>)> {
        if !self.is_idle() {
            return Err((first, second));
        }
        self.pending = [Some(first), second];
        Ok(())
    }

    /// The pending pair starts running. Elements still running are displaced (the device
    /// dropped them) and handed to `displaced`. Returns `false` if nothing was pending
    /// (a spurious event).
    pub(crate) fn promote(&mut self, mut displaced: impl FnMut(T)) -> bool {
        if self.pending.iter().all(Option::is_none) {
            return false;
        }
        for old in self.inflight.iter_mut() {
            if let Some(t) = old.take() {
                displaced(t);
            }
        }
        self.inflight = [self.pending[0].take(), self.pending[1].take()];
        true
    }

    /// The running element 0 completed: returns it and moves element 1 up; `None` if
    /// nothing was running (a spurious event).
    pub(crate) fn complete(&mut self) -> Option<T> {
        let done = self.inflight[0].take()?;
        self.inflight[0] = self.inflight[1].take();
        Some(done)
    }

    /// The running element 0, if any.
    pub(crate) fn active(&self) -> Option<&T> {
        self.inflight[0].as_ref()
    }

    /// Forgets everything (engine reset or teardown), handing each element to `f`.
    pub(crate) fn clear(&mut self, mut f: impl FnMut(T)) {
        for slot in self.pending.iter_mut().chain(self.inflight.iter_mut()) {
            if let Some(t) = slot.take() {
                f(t);
            }
        }
    }
}

#[kernel::prelude::kunit_tests(gvtpv_guest_csb)]
mod tests {
    use super::*;
    use lrc::csb::*;

    fn e(status: u32, id: u32) -> u64 {
        u64::from(status) | (u64::from(id) << 32)
    }

    #[test]
    fn parses_as_gen8() {
        assert_eq!(parse(e(IDLE_ACTIVE, 0)), Event::Promote);
        assert_eq!(parse(e(PREEMPTED | LITE_RESTORE, 3)), Event::Promote);
        assert_eq!(parse(e(COMPLETE | ELEMENT_SWITCH, 5)), Event::Complete(5));
        assert_eq!(parse(e(COMPLETE | ACTIVE_IDLE, 6)), Event::Complete(6));
        assert_eq!(parse(e(ACTIVE_IDLE, 6)), Event::Other);
        // Both bits: promotion wins, as gen8_csb_parse.
        assert_eq!(parse(e(IDLE_ACTIVE | COMPLETE, 1)), Event::Promote);
    }

    #[test]
    fn reads_from_entry_zero_and_wraps() {
        let mut ring = [u64::MAX; 6];
        let mut r = Reader::new();
        let mut seen = [Event::Other; 8];
        let mut n = 0;
        // Nothing written yet ("none yet").
        assert_eq!(r.consume(PTR_NONE, |i| ring.get(i).copied(), |_| ()), Ok(0));
        ring[0] = e(IDLE_ACTIVE, 0);
        ring[1] = e(COMPLETE | ACTIVE_IDLE, 9);
        let got = r.consume(
            1,
            |i| ring.get(i).copied(),
            |ev| {
                seen[n] = ev;
                n += 1;
            },
        );
        assert_eq!(got, Ok(2));
        assert_eq!(&seen[..2], &[Event::Promote, Event::Complete(9)]);
        // Around the end: entries 2..5 then 0.
        for (i, slot) in ring.iter_mut().enumerate() {
            *slot = e(COMPLETE, i as u32);
        }
        n = 0;
        assert_eq!(
            r.consume(
                0,
                |i| ring.get(i).copied(),
                |ev| {
                    seen[n] = ev;
                    n += 1;
                }
            ),
            Ok(5)
        );
        assert_eq!(seen[0], Event::Complete(2));
        assert_eq!(seen[4], Event::Complete(0));
        // Same tail again: nothing new.
        assert_eq!(r.consume(0, |i| ring.get(i).copied(), |_| ()), Ok(0));
    }

    #[test]
    fn hostile_pointers_and_unwritten_entries() {
        let ring = [u64::MAX; 6];
        let mut r = Reader::new();
        assert_eq!(
            r.consume(6, |i| ring.get(i).copied(), |_| ()),
            Err(CsbError::BadPointer(6))
        );
        assert_eq!(
            r.consume(u32::MAX, |i| ring.get(i).copied(), |_| ()),
            Err(CsbError::BadPointer(u32::MAX))
        );
        // The pointer moved but the entry still holds the reset pattern: stop, retry later.
        assert_eq!(r.consume(3, |i| ring.get(i).copied(), |_| ()), Ok(0));
        assert_eq!(r, Reader::new());
        // A reader that fails (out of range) stops too.
        assert_eq!(r.consume(3, |_| None, |_| ()), Ok(0));
    }

    #[test]
    fn ports_follow_the_csb() {
        let mut p = Ports::<u32>::new();
        assert!(p.is_idle());
        assert!(!p.promote(|_| ()));
        assert_eq!(p.complete(), None);
        p.submit(1, Some(2)).unwrap();
        assert_eq!(p.submit(3, None), Err((3, None)));
        assert!(p.promote(|_| panic!("nothing was running")));
        assert_eq!(p.active(), Some(&1));
        assert_eq!(p.complete(), Some(1));
        assert_eq!(p.active(), Some(&2));
        assert_eq!(p.complete(), Some(2));
        assert!(p.is_idle());
        // A promotion over running elements displaces them.
        p.submit(4, None).unwrap();
        assert!(p.promote(|_| ()));
        p.inflight[1] = Some(5);
        p.pending[0] = Some(6);
        let mut gone = 0;
        assert!(p.promote(|t| gone += t));
        assert_eq!(gone, 9);
        let mut left = 0;
        p.clear(|t| left += t);
        assert_eq!(left, 6);
        assert!(p.is_idle());
    }
}
