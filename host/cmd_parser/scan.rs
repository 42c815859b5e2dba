// SPDX-License-Identifier: GPL-2.0

//! Stepping through a ring segment and the batches it starts.
//!
//! GVT-g (`command_scan`, `cmd_parser_exec`) walks one instruction pointer through the
//! ring and, at each batch start, first sizes the batch (`find_bb_size`: reading header
//! by header until `MI_BATCH_BUFFER_END` or a chained start), copies it
//! (`perform_bb_shadow`) and continues in the copy, returning to the ring or to the
//! first-level batch at the end. Here each batch is copied while it is scanned, a page
//! at a time, into the copy itself, so every dword is read once, the reads stop at the
//! page that holds the batch's end, and the guest can never make the parser read
//! without bound: all batches of a workload share one budget ([`Limits::batch_bytes`]).
//!
//! Second-level batches use an explicit stack of at most [`MAX_DEPTH`] frames; no
//! recursion. A chained start ends its batch and replaces its frame.

use super::{
    policy::{self, Action, Ctx, Start},
    shadow, Batch, Engine, Limits, Memory, Placement, Ranges, Reason, Refusal, Scanned, Space,
    Stats, BATCH_ALIGN, HOST_GGTT_END, MAX_DEPTH,
};
use crate::abi::gpu_cmd::table::{self, CmdInfo, LenError};
use kernel::prelude::*;

/// Bytes of one read: the GGTT and PPGTT page.
const PAGE: u64 = 4096;

/// See [`super::scan`].
pub(super) fn scan_ring(
    engine: Engine,
    ring_segment: &[u32],
    mem: &dyn Memory,
    place: &mut dyn Placement,
    ranges: &Ranges,
    limits: &Limits,
) -> Result<Scanned, Refusal> {
    let refuse = |reason, offset, header| Refusal {
        reason,
        batch: None,
        offset,
        header,
    };
    if ring_segment.len() > limits.ring_bytes / 4 {
        return Err(refuse(Reason::Budget, limits.ring_bytes / 4, 0));
    }
    let mut ring = KVec::with_capacity(ring_segment.len(), GFP_KERNEL)
        .map_err(|_| refuse(Reason::NoMemory, 0, 0))?;
    ring.extend_from_slice(ring_segment, GFP_KERNEL)
        .map_err(|_| refuse(Reason::NoMemory, 0, 0))?;
    let mut s = Scanner {
        engine,
        mem,
        place,
        ranges,
        limits,
        batches: KVec::new(),
        budget: limits.batch_bytes / 4,
        stats: Stats {
            ring_bytes: ring_segment.len() * 4,
            ..Stats::default()
        },
    };
    let ctx = Ctx {
        engine,
        in_batch: false,
        ranges,
    };
    let mut pos = 0;
    while pos < ring.len() {
        let header = ring.get(pos).copied().unwrap_or(0);
        let (info, len) = lookup(header, engine).map_err(|r| refuse(r, pos, header))?;
        let end = pos
            .checked_add(len)
            .filter(|&e| e <= ring.len())
            .ok_or(refuse(Reason::Truncated, pos, header))?;
        let cmd = ring.get(pos..end).unwrap_or(&[]);
        let action = policy::check(&ctx, info, cmd).map_err(|r| refuse(r, pos, header))?;
        s.stats.commands += 1;
        match action {
            Action::Next => {}
            Action::Noop => shadow::noop(&mut ring, pos, end),
            // GVT-g would "return" to the ring from a batch that never started; GEN9
            // rings end at their tail, not at a batch end.
            Action::End => return Err(refuse(Reason::Nesting, pos, header)),
            // GVT-g: "Jumping to 2nd level BB from RB is not allowed".
            Action::Start(st) if st.second => return Err(refuse(Reason::Nesting, pos, header)),
            Action::Start(st) => {
                // A refusal while opening the first batch is about this command.
                let host = s.run(st).map_err(|r| match r.batch {
                    None => refuse(r.reason, pos, header),
                    Some(_) => r,
                })?;
                shadow::point_start(&mut ring, pos, host);
            }
        }
        pos = end;
    }
    Ok(Scanned {
        ring,
        batches: s.batches,
        stats: s.stats,
    })
}

/// The command `header` starts on `engine`, and its length in dwords.
fn lookup(header: u32, engine: Engine) -> Result<(&'static CmdInfo, usize), Reason> {
    let on = super::ring_of(engine);
    let info = match table::lookup(header, on) {
        Ok(info) => info,
        Err(_) => {
            let (kind, op) = table::opcode(header, on).ok_or(Reason::Unknown)?;
            policy::EXTRA_CMDS
                .iter()
                .find(|c| c.kind == kind && c.opcode == op && c.rings & on != 0)
                .ok_or(Reason::Unknown)?
        }
    };
    let len = info.length(header).map_err(|e| match e {
        LenError::Unknown => Reason::Unknown,
        LenError::BadLength => Reason::Length,
    })?;
    Ok((info, len as usize))
}

/// One batch being scanned.
#[derive(Clone, Copy)]
struct Frame {
    /// Its index in [`Scanner::batches`].
    idx: usize,
    /// Dword offset of the next command in the copy.
    pos: usize,
    /// Level: 1 first (or chained), 2 second.
    depth: usize,
    /// The batch start that started it, `(batch index, dword offset)`, or `None` for the
    /// ring (the caller patches the ring).
    from: Option<(usize, usize)>,
}

/// The second-level stack: at most [`MAX_DEPTH`] frames.
struct Stack {
    frames: [Option<Frame>; MAX_DEPTH],
    len: usize,
}

impl Stack {
    fn top(&self) -> Option<Frame> {
        self.frames.get(self.len.checked_sub(1)?).copied().flatten()
    }

    fn set_top(&mut self, f: Frame) {
        if let Some(slot) = self.len.checked_sub(1).and_then(|i| self.frames.get_mut(i)) {
            *slot = Some(f);
        }
    }

    fn push(&mut self, f: Frame) -> bool {
        match self.frames.get_mut(self.len) {
            Some(slot) => {
                *slot = Some(f);
                self.len += 1;
                true
            }
            None => false,
        }
    }

    fn pop(&mut self) {
        if let Some(i) = self.len.checked_sub(1) {
            if let Some(slot) = self.frames.get_mut(i) {
                *slot = None;
            }
            self.len = i;
        }
    }
}

struct Scanner<'a> {
    engine: Engine,
    mem: &'a dyn Memory,
    place: &'a mut dyn Placement,
    ranges: &'a Ranges,
    limits: &'a Limits,
    batches: KVec<Batch>,
    /// Dwords of batch copies still allowed.
    budget: usize,
    stats: Stats,
}

impl Scanner<'_> {
    fn refuse(&self, reason: Reason, idx: usize, offset: usize) -> Refusal {
        let b = self.batches.get(idx);
        Refusal {
            reason,
            batch: b.map(|b| b.guest_addr),
            offset,
            header: b.and_then(|b| b.data.get(offset)).copied().unwrap_or(0),
        }
    }

    /// A refusal at the batch start `from` (`None`: the ring's, which the ring fills in).
    fn refuse_from(&self, reason: Reason, from: Option<(usize, usize)>) -> Refusal {
        match from {
            Some((idx, pos)) => self.refuse(reason, idx, pos),
            None => Refusal {
                reason,
                batch: None,
                offset: 0,
                header: 0,
            },
        }
    }

    fn data(&self, idx: usize) -> &[u32] {
        self.batches.get(idx).map_or(&[], |b| &b.data[..])
    }

    fn data_mut(&mut self, idx: usize) -> &mut [u32] {
        self.batches
            .get_mut(idx)
            .map_or(&mut [], |b| &mut b.data[..])
    }

    /// Scans the batch the ring starts with `start`, every batch it starts in turn, and
    /// returns the host address of the first one's copy.
    fn run(&mut self, start: Start) -> Result<u64, Refusal> {
        let depth_limit = self.limits.max_depth.min(MAX_DEPTH);
        let mut stack = Stack {
            frames: [None; MAX_DEPTH],
            len: 0,
        };
        let mut first = None;
        let root = self.open(start, 1, None)?;
        if depth_limit == 0 || !stack.push(root) {
            return Err(self.refuse(Reason::Nesting, root.idx, 0));
        }
        while let Some(mut f) = stack.top() {
            let ctx = Ctx {
                engine: self.engine,
                in_batch: true,
                ranges: self.ranges,
            };
            let pos = f.pos;
            self.fill(f.idx, pos, pos + 1, Reason::Budget)?;
            let header = self.data(f.idx).get(pos).copied().unwrap_or(0);
            let (info, len) =
                lookup(header, self.engine).map_err(|r| self.refuse(r, f.idx, pos))?;
            let end = pos
                .checked_add(len)
                .ok_or(self.refuse(Reason::Length, f.idx, pos))?;
            self.fill(f.idx, pos, end, Reason::Truncated)?;
            let cmd = self.data(f.idx).get(pos..end).unwrap_or(&[]);
            let action = policy::check(&ctx, info, cmd).map_err(|r| self.refuse(r, f.idx, pos))?;
            self.stats.commands += 1;
            match action {
                Action::Next => {
                    f.pos = end;
                    stack.set_top(f);
                }
                Action::Noop => {
                    shadow::noop(self.data_mut(f.idx), pos, end);
                    f.pos = end;
                    stack.set_top(f);
                }
                Action::End => {
                    self.close(f, end, &mut first)?;
                    stack.pop();
                }
                // GVT-g: "Found MI_BATCH_BUFFER_START in 2nd level BB", chained or not.
                Action::Start(_) if f.depth >= 2 => {
                    return Err(self.refuse(Reason::Nesting, f.idx, pos));
                }
                Action::Start(st) if st.second => {
                    if f.depth + 1 > depth_limit {
                        return Err(self.refuse(Reason::Nesting, f.idx, pos));
                    }
                    f.pos = end;
                    stack.set_top(f);
                    let child = self.open(st, f.depth + 1, Some((f.idx, pos)))?;
                    if !stack.push(child) {
                        return Err(self.refuse(Reason::Nesting, f.idx, pos));
                    }
                }
                // A chained start ends this batch (GVT-g: `find_bb_size`), and the next
                // one takes its place on the same level.
                Action::Start(st) => {
                    self.close(f, end, &mut first)?;
                    let next = self.open(st, f.depth, Some((f.idx, pos)))?;
                    stack.set_top(next);
                }
            }
        }
        first.ok_or(Refusal {
            reason: Reason::Nesting,
            batch: Some(start.addr),
            offset: 0,
            header: 0,
        })
    }

    /// Starts the copy of the batch `start` names, at level `depth`.
    fn open(
        &mut self,
        start: Start,
        depth: usize,
        from: Option<(usize, usize)>,
    ) -> Result<Frame, Refusal> {
        let at = |s: &Self, reason| s.refuse_from(reason, from);
        if self.batches.len() >= self.limits.max_batches {
            return Err(at(self, Reason::Batches));
        }
        match start.space {
            Space::Ggtt if !self.ranges.ggtt_ok(start.addr, 4) => {
                return Err(at(self, Reason::Address))
            }
            Space::Ggtt if self.ranges.in_ring(start.addr) => {
                return Err(at(self, Reason::BatchInRing))
            }
            Space::Ppgtt if !self.ranges.ppgtt_ok(start.addr, 4) => {
                return Err(at(self, Reason::Address))
            }
            _ => {}
        }
        let b = Batch {
            host_addr: 0,
            guest_addr: start.addr,
            space: start.space,
            data: KVec::new(),
        };
        if self.batches.push(b, GFP_KERNEL).is_err() {
            return Err(at(self, Reason::NoMemory));
        }
        Ok(Frame {
            idx: self.batches.len() - 1,
            pos: 0,
            depth,
            from,
        })
    }

    /// Reads batch `idx` on until its copy holds `need` dwords, a page (or less) at a
    /// time, for the command at dword `at`; `short` is the reason when the budget runs
    /// out first.
    fn fill(&mut self, idx: usize, at: usize, need: usize, short: Reason) -> Result<(), Refusal> {
        loop {
            let (have, guest, space) = match self.batches.get(idx) {
                Some(b) => (b.data.len(), b.guest_addr, b.space),
                None => return Err(self.refuse(Reason::NoMemory, idx, at)),
            };
            if have >= need {
                return Ok(());
            }
            let refuse = |reason| self.refuse(reason, idx, at);
            let addr = (have as u64)
                .checked_mul(4)
                .and_then(|o| guest.checked_add(o))
                .ok_or(refuse(Reason::Address))?;
            // Up to the end of the page, the budget, the GGTT slice, the ring.
            let mut n = (PAGE - addr % PAGE) / 4;
            n = n.min(self.budget as u64);
            match space {
                Space::Ggtt => {
                    if self.ranges.in_ring(addr) {
                        return Err(refuse(Reason::BatchInRing));
                    }
                    let room = self.ranges.ggtt_room(addr).ok_or(refuse(Reason::Address))?;
                    n = n.min(room / 4);
                    if addr < self.ranges.ring_base {
                        n = n.min((self.ranges.ring_base - addr) / 4);
                    }
                }
                Space::Ppgtt => {
                    let room = self.ranges.ppgtt_limit.saturating_sub(addr);
                    if room < 4 {
                        return Err(refuse(Reason::Address));
                    }
                    n = n.min(room / 4);
                }
            }
            if n == 0 {
                return Err(refuse(if self.budget == 0 {
                    short
                } else {
                    Reason::Address
                }));
            }
            let n = n as usize;
            let mem = self.mem;
            let b = self.batches.get_mut(idx).ok_or(Refusal {
                reason: Reason::NoMemory,
                batch: Some(guest),
                offset: at,
                header: 0,
            })?;
            if b.data.resize(have + n, 0, GFP_KERNEL).is_err() {
                return Err(self.refuse(Reason::NoMemory, idx, at));
            }
            let read = b
                .data
                .get_mut(have..)
                .map_or(Err(EINVAL), |out| mem.read(space, addr, out));
            if read.is_err() {
                b.data.truncate(have);
                return Err(self.refuse(Reason::ReadFailed, idx, at));
            }
            self.budget -= n;
        }
    }

    /// Ends the copy of `f` after dword `end`, places it, and points its start at it.
    fn close(&mut self, f: Frame, end: usize, first: &mut Option<u64>) -> Result<(), Refusal> {
        let refuse = |s: &Self, reason| s.refuse(reason, f.idx, end.saturating_sub(1));
        let have = self.data(f.idx).len();
        if let Some(b) = self.batches.get_mut(f.idx) {
            b.data.truncate(end);
        }
        // What was read past the end goes back to the budget.
        self.budget += have.saturating_sub(end);
        let host = self
            .place
            .place(end)
            .map_err(|_| refuse(self, Reason::NoMemory))?;
        let fits = (end as u64)
            .checked_mul(4)
            .and_then(|bytes| host.checked_add(bytes))
            .is_some_and(|e| e <= HOST_GGTT_END);
        if host % BATCH_ALIGN != 0 || !fits {
            pr_warn!("gvtpv: cmd_parser: placement {host:#x} unusable\n");
            return Err(refuse(self, Reason::NoMemory));
        }
        if let Some(b) = self.batches.get_mut(f.idx) {
            b.host_addr = host;
        }
        self.stats.batches += 1;
        self.stats.batch_bytes += end * 4;
        match f.from {
            Some((idx, pos)) => {
                shadow::point_start(self.data_mut(idx), pos, host);
            }
            None => *first = Some(host),
        }
        Ok(())
    }
}
