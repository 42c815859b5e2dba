// SPDX-License-Identifier: GPL-2.0

//! Event flow control: what the host does when it has more events than room in the
//! response ring.
//!
//! The host never blocks on the guest and never drops an error. It keeps, per vGPU, a
//! bounded set of pending events ([`EventQueue`]) and sends them when there is room:
//!
//! - completions coalesce: per engine only the latest seqno is pending ("everything up
//!   to `seqno` completed"), so any number of completions costs one slot per engine;
//! - errors (vGPU error, engine reset, reset notice) are sticky until sent and go first;
//! - an event is sent only while the ring keeps room for every response the host still
//!   owes ([`Producer::send_keeping`]), so events never take a response's space.
//!
//! The engine status region of the shared area ([`crate::abi::shared::StatusArea`]) is
//! the authoritative state, written in place before the event is queued: the last
//! completed seqno and the reset count per engine, and the vGPU error. An event is a
//! wake-up that says "look"; a guest that finds events missing from the ring loses
//! nothing by reading the region.

use super::cmd::{Command, Engine};
use super::ctb::{msg_type, CtbError, Header, Producer, RingMem};

/// Engines with a slot in the status region, in slot order.
pub const ENGINE_SLOTS: [Engine; 5] = [
    Engine::RCS0,
    Engine::BCS0,
    Engine {
        class: 2,
        instance: 0,
    },
    Engine {
        class: 2,
        instance: 1,
    },
    Engine {
        class: 3,
        instance: 0,
    },
];

/// The status-region slot of `e`, if it has one.
pub fn slot(e: Engine) -> Option<usize> {
    ENGINE_SLOTS.iter().position(|s| *s == e)
}

/// Whether seqno `a` is after `b` (wrapping, as i915 compares seqnos).
pub fn seqno_after(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

/// The events a host has not sent yet, bounded whatever the guest does.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventQueue {
    /// Per slot: the latest completed seqno not yet announced.
    completion: [Option<u32>; ENGINE_SLOTS.len()],
    /// Per slot: an engine reset not yet announced.
    engine_reset: [bool; ENGINE_SLOTS.len()],
    /// The first vGPU error not yet announced (a [`crate::abi::cmd::WireError`] code).
    vgpu_error: Option<u32>,
    /// A reset notice not yet announced.
    reset_notice: bool,
    /// Completions merged into a later one (statistics).
    coalesced: u32,
}

impl EventQueue {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues "`engine` completed everything up to `seqno`", merging with a pending one.
    /// An engine without a slot is ignored (it cannot run guest work).
    pub fn completion(&mut self, engine: Engine, seqno: u32) {
        let Some(c) = slot(engine).and_then(|i| self.completion.get_mut(i)) else {
            return;
        };
        match c {
            Some(old) => {
                if seqno_after(seqno, *old) {
                    *old = seqno;
                }
                self.coalesced = self.coalesced.saturating_add(1);
            }
            None => *c = Some(seqno),
        }
    }

    /// Queues an engine reset (repeated resets before it is sent are one event; the
    /// status region counts them all).
    pub fn engine_reset(&mut self, engine: Engine) {
        if let Some(r) = slot(engine).and_then(|i| self.engine_reset.get_mut(i)) {
            *r = true;
        }
    }

    /// Queues a vGPU error; the first one is kept (the vGPU is in failsafe after it).
    pub fn vgpu_error(&mut self, reason: u32) {
        self.vgpu_error.get_or_insert(reason);
    }

    /// Queues a reset notice.
    pub fn reset_notice(&mut self) {
        self.reset_notice = true;
    }

    /// Whether anything waits to be sent.
    pub fn is_empty(&self) -> bool {
        self.completion.iter().all(Option::is_none)
            && !self.engine_reset.iter().any(|r| *r)
            && self.vgpu_error.is_none()
            && !self.reset_notice
    }

    /// Completions merged so far.
    pub fn coalesced(&self) -> u32 {
        self.coalesced
    }

    /// The next event to send, errors first.
    fn next(&self) -> Option<Command<'static>> {
        if self.reset_notice {
            return Some(Command::ResetNotice);
        }
        if let Some(reason) = self.vgpu_error {
            return Some(Command::VgpuError { reason });
        }
        let reset = ENGINE_SLOTS
            .iter()
            .zip(self.engine_reset)
            .find(|(_, r)| *r)
            .map(|(e, _)| Command::EngineReset { engine: *e });
        reset.or_else(|| {
            ENGINE_SLOTS
                .iter()
                .zip(self.completion)
                .find_map(|(e, c)| c.map(|seqno| Command::Completion { engine: *e, seqno }))
        })
    }

    fn clear(&mut self, c: &Command<'_>) {
        match *c {
            Command::ResetNotice => self.reset_notice = false,
            Command::VgpuError { .. } => self.vgpu_error = None,
            Command::EngineReset { engine } => {
                if let Some(r) = slot(engine).and_then(|i| self.engine_reset.get_mut(i)) {
                    *r = false;
                }
            }
            Command::Completion { engine, .. } => {
                if let Some(r) = slot(engine).and_then(|i| self.completion.get_mut(i)) {
                    *r = None;
                }
            }
            _ => {}
        }
    }

    /// Sends what fits, errors first, keeping `keep` dwords free for the responses the
    /// host owes (`(owed + 1) * footprint(max response)` dwords). What does not fit stays
    /// queued for the next call (after the guest consumed). Returns whether the guest
    /// must be notified.
    ///
    /// # Errors
    ///
    /// What [`Producer::send_keeping`] returns other than [`CtbError::NoSpace`]; the
    /// event stays queued.
    pub fn flush<M: RingMem>(
        &mut self,
        p: &mut Producer,
        m: &mut M,
        keep: u32,
    ) -> Result<bool, CtbError> {
        let mut doorbell = false;
        while let Some(c) = self.next() {
            let mut payload = [0u32; 2];
            let n = c.encode(&mut payload).map_err(|_| CtbError::BadMessage)?;
            let hdr = Header {
                action: c.action(),
                kind: msg_type::EVENT as u8,
                len: n as u8,
                fence: 0,
            };
            match p.send_keeping(m, &hdr, payload.get(..n).unwrap_or(&[]), keep) {
                Ok(d) => {
                    doorbell |= d;
                    self.clear(&c);
                }
                Err(CtbError::NoSpace) => break,
                Err(e) => return Err(e),
            }
        }
        Ok(doorbell)
    }
}

#[cfg(test)]
mod tests;
