// SPDX-License-Identifier: GPL-2.0

//! Guest memory, the one way the host reaches it: copies of ranges, and mapped views whose
//! pages stay pinned in a pin cache keyed by guest frame.
//!
//! Addresses are guest DMA addresses (IOVAs of the vfio container; guest physical
//! addresses while the guest has no vIOMMU).
//!
//! - [`GuestMemory::read`] and [`GuestMemory::write`] copy a range once. Whatever the
//!   caller validates is its own copy, which the guest cannot change afterwards.
//! - [`GuestMemory::map`] pins the pages of a range and returns a [`View`]: rings and the
//!   shared area are read and written through it with single aligned 4- and 8-byte loads
//!   and stores (never a byte-wise copy), so a value the guest writes concurrently is seen
//!   whole or not at all.
//!
//! Pins are refcounted: a page mapped by several views is pinned once; the cache keeps it
//! pinned after the last view is gone, until the guest unmaps it (`dma_unmap`), the device
//! is reset or closed, or the cache needs room. When the user unmaps a range, every pin in
//! it is dropped at once (the vfio core requires it), and views over it fail with `EFAULT`
//! from then on: they never reach memory that is no longer the guest's.
//!
//! Memory ordering: a view's loads and stores are volatile and single-copy atomic, nothing
//! more. A consumer that reads a producer's index and then the data it covers issues
//! [`kernel::sync::barrier::smp_rmb`] between the two (the producer's `smp_wmb` pairs with
//! it); a consumer that publishes its own index after reading the data issues
//! [`kernel::sync::barrier::smp_mb`] before the store. The CTB rules in
//! Documentation/abi.rst say which.
//!
//! Locking: `GuestMemory::inner` is never held while the backend runs (see
//! [`GuestMemory`]).

use crate::{gpu, vfio};
use core::sync::atomic::{AtomicUsize, Ordering};
use kernel::{
    new_condvar, new_mutex,
    page::PAGE_SIZE,
    prelude::*,
    rbtree::{RBTree, RBTreeNode},
    sync::{Arc, CondVar, Mutex},
    time::{Instant, Monotonic},
};

const PAGE: u64 = PAGE_SIZE as u64;

/// A guest page held for device access.
pub(crate) trait GuestPage: Send + Sync {
    /// The host frame number of the page.
    fn pfn(&self) -> u64;
    /// Whether the page is still pinned.
    fn is_pinned(&self) -> bool;
    /// Drops the pin now, after the accesses in progress; later accesses fail with
    /// `EFAULT`, and nothing touches the page once this returns. Idempotent.
    fn unpin(&self);
    /// One aligned 4-byte load at byte offset `off`.
    fn load32(&self, off: usize) -> Result<u32>;
    /// One aligned 8-byte load at byte offset `off`.
    fn load64(&self, off: usize) -> Result<u64>;
    /// One aligned 4-byte store at byte offset `off`.
    fn store32(&self, off: usize, v: u32) -> Result;
    /// One aligned 8-byte store at byte offset `off`.
    fn store64(&self, off: usize, v: u64) -> Result;
    /// One aligned load of 1, 2, 4 or 8 bytes at byte offset `off`, zero-extended.
    fn load_sized(&self, off: usize, size: usize) -> Result<u64>;
    /// One aligned store of the low 1, 2, 4 or 8 bytes of `v` at byte offset `off`.
    fn store_sized(&self, off: usize, size: usize, v: u64) -> Result;
}

/// Where guest pages come from: the vfio device of an open vGPU, or a fake in KUnit.
pub(crate) trait Pinner: Send + Sync + Unpin {
    /// A pinned page.
    type Page: GuestPage;
    /// Pins the page at DMA address `addr` (page aligned).
    fn pin(&self, addr: u64, write: bool) -> Result<Self::Page>;
    /// Copies between guest memory at `addr` and `buf` (`write`: to the guest).
    fn rw(&self, addr: u64, buf: &mut [u8], write: bool) -> Result;
}

impl GuestPage for vfio::PinnedPage {
    fn pfn(&self) -> u64 {
        vfio::PinnedPage::pfn(self)
    }
    fn is_pinned(&self) -> bool {
        vfio::PinnedPage::is_pinned(self)
    }
    fn unpin(&self) {
        vfio::PinnedPage::unpin(self)
    }
    fn load32(&self, off: usize) -> Result<u32> {
        vfio::PinnedPage::load32(self, off)
    }
    fn load64(&self, off: usize) -> Result<u64> {
        vfio::PinnedPage::load64(self, off)
    }
    fn store32(&self, off: usize, v: u32) -> Result {
        vfio::PinnedPage::store32(self, off, v)
    }
    fn store64(&self, off: usize, v: u64) -> Result {
        vfio::PinnedPage::store64(self, off, v)
    }
    fn load_sized(&self, off: usize, size: usize) -> Result<u64> {
        vfio::PinnedPage::load_sized(self, off, size)
    }
    fn store_sized(&self, off: usize, size: usize, v: u64) -> Result {
        vfio::PinnedPage::store_sized(self, off, size, v)
    }
}

impl Pinner for Arc<vfio::Dma> {
    type Page = vfio::PinnedPage;
    fn pin(&self, addr: u64, write: bool) -> Result<Self::Page> {
        vfio::Dma::pin(self, addr, write)
    }
    fn rw(&self, addr: u64, buf: &mut [u8], write: bool) -> Result {
        vfio::Dma::rw(self, addr, buf, write)
    }
}

/// The guest memory of a vGPU: its vfio device's, or (KUnit) an in-memory fake, so that
/// tests drive a whole vGPU with real guest memory behind it.
#[derive(Clone)]
pub(crate) enum AnyPinner {
    /// The vfio device of an open vGPU.
    Vfio(Arc<vfio::Dma>),
    /// An in-memory guest.
    #[cfg(CONFIG_KUNIT)]
    Fake(Arc<fake::FakeGuest>),
}

/// A page of an [`AnyPinner`].
pub(crate) enum AnyPage {
    /// A vfio pin.
    Vfio(vfio::PinnedPage),
    /// A fake pin.
    #[cfg(CONFIG_KUNIT)]
    Fake(fake::FakePage),
}

macro_rules! any_page {
    ($self:ident, $p:ident => $e:expr) => {
        match $self {
            AnyPage::Vfio($p) => $e,
            #[cfg(CONFIG_KUNIT)]
            AnyPage::Fake($p) => $e,
        }
    };
}

impl GuestPage for AnyPage {
    fn pfn(&self) -> u64 {
        any_page!(self, p => GuestPage::pfn(p))
    }
    fn is_pinned(&self) -> bool {
        any_page!(self, p => GuestPage::is_pinned(p))
    }
    fn unpin(&self) {
        any_page!(self, p => GuestPage::unpin(p))
    }
    fn load32(&self, off: usize) -> Result<u32> {
        any_page!(self, p => GuestPage::load32(p, off))
    }
    fn load64(&self, off: usize) -> Result<u64> {
        any_page!(self, p => GuestPage::load64(p, off))
    }
    fn store32(&self, off: usize, v: u32) -> Result {
        any_page!(self, p => GuestPage::store32(p, off, v))
    }
    fn store64(&self, off: usize, v: u64) -> Result {
        any_page!(self, p => GuestPage::store64(p, off, v))
    }
    fn load_sized(&self, off: usize, size: usize) -> Result<u64> {
        any_page!(self, p => GuestPage::load_sized(p, off, size))
    }
    fn store_sized(&self, off: usize, size: usize, v: u64) -> Result {
        any_page!(self, p => GuestPage::store_sized(p, off, size, v))
    }
}

impl Pinner for AnyPinner {
    type Page = AnyPage;
    fn pin(&self, addr: u64, write: bool) -> Result<AnyPage> {
        match self {
            AnyPinner::Vfio(d) => Pinner::pin(d, addr, write).map(AnyPage::Vfio),
            #[cfg(CONFIG_KUNIT)]
            AnyPinner::Fake(g) => Pinner::pin(g, addr, write).map(AnyPage::Fake),
        }
    }
    fn rw(&self, addr: u64, buf: &mut [u8], write: bool) -> Result {
        match self {
            AnyPinner::Vfio(d) => Pinner::rw(d, addr, buf, write),
            #[cfg(CONFIG_KUNIT)]
            AnyPinner::Fake(g) => Pinner::rw(g, addr, buf, write),
        }
    }
}

/// One cached pin.
struct Entry<G> {
    page: G,
    /// Whether the pin allows device writes.
    writable: bool,
    /// Live views holding this entry; only unused entries are evicted.
    users: AtomicUsize,
}

/// What the pin cache did, for debugfs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct PinStats {
    /// Pages pinned now.
    pub(crate) live: usize,
    /// Pins taken.
    pub(crate) pinned: u64,
    /// Lookups served from the cache.
    pub(crate) hits: u64,
    /// Pins refused by the backend (unmapped address, memlock limit, ...).
    pub(crate) failures: u64,
    /// Pins dropped because the user unmapped their range.
    pub(crate) unmapped: u64,
    /// Pins dropped on reset, close or eviction.
    pub(crate) released: u64,
}

/// A pin being taken without the cache's lock held.
struct Pending {
    gfn: u64,
    /// The user unmapped the frame meanwhile: the pin is given back, not cached.
    cancelled: bool,
}

/// How long a frame range stays refused after its unmap returned. The legacy container
/// looks for pins again as soon as `dma_unmap` is back, before it drops the mapping, and
/// calls `BUG()` after ten rounds that find one (iommufd `WARN`s after a hundred); a pin
/// sneaking into that window each round is what the guard rules out. The window is
/// microseconds; the guard covers it with a wide margin, and pins elsewhere go on.
const LINGER_MS: i64 = 10;

/// A frame range in which no new pin starts: being unmapped or reset, or unmapped
/// [`LINGER_MS`] (or what the cache was made with) ago at most.
#[derive(Clone, Copy)]
struct Guard {
    first: u64,
    last: u64,
    /// When the unmap returned; `None` while it runs.
    done: Option<Instant<Monotonic>>,
}

impl Guard {
    fn live(&self, linger_ms: i64) -> bool {
        self.done
            .is_none_or(|t| t.elapsed().as_millis() < linger_ms)
    }
}

/// Guards kept at once; more concurrent unmaps than that refuse every pin instead.
const GUARDS: usize = 8;

struct Inner<P: Pinner> {
    /// The source of pins; `None` while the device is closed.
    pinner: Option<P>,
    /// Guest frame number to pin.
    map: RBTree<u64, Arc<Entry<P::Page>>>,
    /// Pins in flight.
    pending: KVec<Pending>,
    /// Ranges in which no pin starts (no allocation: an unmap must not fail).
    guards: [Option<Guard>; GUARDS],
    /// Unmaps or resets running without a guard slot: no pin starts anywhere.
    unguarded: usize,
    /// When the last unmap without a guard slot returned: no pin starts anywhere for
    /// `linger_ms` after it.
    unguarded_done: Option<Instant<Monotonic>>,
    /// How long an unmapped range stays refused ([`LINGER_MS`]).
    linger_ms: i64,
    /// Batches of entries taken out of the cache whose pins are not given back yet
    /// ([`GuestMemory::drain`]); an unmap waits for them, since they may hold pins in
    /// its range that it cannot see.
    draining: usize,
    /// Most pages pinned at once.
    limit: usize,
    stats: PinStats,
}

/// Entries taken out of the cache, whose pins go once the cache's lock is released.
struct Released<G: GuestPage>(RBTree<u64, Arc<Entry<G>>>);

impl<G: GuestPage> Released<G> {
    fn new() -> Self {
        Self(RBTree::new())
    }

    /// Gives every pin back; call without the cache's lock held.
    fn unpin(self) -> usize {
        let mut n = 0;
        for e in self.0.values() {
            e.page.unpin();
            n += 1;
        }
        n
    }
}

/// The guest memory of one vGPU.
///
/// No lock of the cache is held while the backend runs: with the legacy vfio container,
/// a lock held across `vfio_pin_pages` and taken again in `dma_unmap` closes a lock cycle
/// through the container's own locks. A pin is taken with the frame marked pending; an
/// unmap of the frame meanwhile cancels it and waits until it has been given back, so no
/// pin in an unmapped range outlives `dma_unmap`.
#[pin_data]
pub(crate) struct GuestMemory<P: Pinner> {
    #[pin]
    inner: Mutex<Inner<P>>,
    /// Signalled whenever a pending pin settles.
    #[pin]
    settled: CondVar,
}

impl<P: Pinner> Inner<P> {
    /// Takes every entry whose frame lies in `[first, last]` out of the cache into
    /// `out`, and cancels the pins in flight there.
    fn take_frames(&mut self, first: u64, last: u64, out: &mut Released<P::Page>) {
        let mut n = 0;
        while let Some(c) = self.map.cursor_lower_bound_mut(&first) {
            if *c.current().0 > last {
                break;
            }
            let (_, node) = c.remove_current();
            // No allocation: the node moves from one tree to the other.
            out.0.insert(node);
            n += 1;
        }
        for p in self.pending.iter_mut() {
            if (first..=last).contains(&p.gfn) {
                p.cancelled = true;
            }
        }
        self.stats.live = self.stats.live.saturating_sub(n);
    }

    /// Makes room for one more pin, evicting into `out` an entry no view uses.
    fn make_room(&mut self, out: &mut Released<P::Page>) -> Result {
        if self.stats.live + self.pending.len() < self.limit {
            return Ok(());
        }
        let victim = self
            .map
            .iter()
            .find(|(_, e)| e.users.load(Ordering::Acquire) == 0)
            .map(|(k, _)| *k)
            .ok_or(ENOSPC)?;
        self.take_frames(victim, victim, out);
        self.stats.released += 1;
        Ok(())
    }

    /// Refuses new pins in `[first, last]` until [`Self::unguard`]; returns the slot.
    fn guard(&mut self, first: u64, last: u64) -> Option<usize> {
        let fresh = Guard {
            first,
            last,
            done: None,
        };
        let linger = self.linger_ms;
        let i = self
            .guards
            .iter()
            .position(|g| !g.is_some_and(|g| g.live(linger)));
        match i.and_then(|i| self.guards.get_mut(i).map(|g| (i, g))) {
            Some((i, g)) => {
                *g = Some(fresh);
                Some(i)
            }
            None => {
                self.unguarded += 1;
                None
            }
        }
    }

    /// Ends a guard: it lingers for [`LINGER_MS`] if `linger`, else goes at once.
    fn unguard(&mut self, slot: Option<usize>, linger: bool) {
        match slot.and_then(|i| self.guards.get_mut(i)) {
            Some(g) => {
                *g = g.filter(|_| linger).map(|mut g| {
                    g.done = Some(Instant::now());
                    g
                })
            }
            None => {
                self.unguarded = self.unguarded.saturating_sub(1);
                if linger {
                    self.unguarded_done = Some(Instant::now());
                }
            }
        }
    }

    /// Whether a new pin of `gfn` must not start now.
    fn guarded(&self, gfn: u64) -> bool {
        let linger = self.linger_ms;
        self.unguarded != 0
            || self
                .unguarded_done
                .is_some_and(|t| t.elapsed().as_millis() < linger)
            || self
                .guards
                .iter()
                .flatten()
                .any(|g| g.live(linger) && (g.first..=g.last).contains(&gfn))
    }

    /// A cached entry for `gfn` that serves a `write` access, counted as used.
    fn hit(&mut self, gfn: u64, write: bool) -> Option<Arc<Entry<P::Page>>> {
        let e = self.map.get(&gfn)?;
        if !e.writable && write {
            return None;
        }
        e.users.fetch_add(1, Ordering::AcqRel);
        let e = e.clone();
        self.stats.hits += 1;
        Some(e)
    }

    /// Whether the pending pin of `gfn` was cancelled.
    fn is_cancelled(&self, gfn: u64) -> bool {
        self.pending.iter().any(|p| p.gfn == gfn && p.cancelled)
    }

    /// Ends the pending pin of `gfn`; returns whether it was cancelled.
    fn settle(&mut self, gfn: u64) -> bool {
        let mut cancelled = false;
        self.pending.retain(|p| {
            if p.gfn == gfn {
                cancelled = p.cancelled;
            }
            p.gfn != gfn
        });
        cancelled
    }
}

impl<P: Pinner + Clone> GuestMemory<P> {
    /// Guest memory with no device behind it yet, pinning at most `limit` pages at once.
    pub(crate) fn new(limit: usize) -> impl PinInit<Self> {
        Self::with_linger(limit, LINGER_MS)
    }

    /// As [`Self::new`], with unmapped ranges refused for `linger_ms` (tests stretch it so
    /// that a preempted test thread cannot outlast it).
    fn with_linger(limit: usize, linger_ms: i64) -> impl PinInit<Self> {
        pin_init!(Self {
            inner <- new_mutex!(Inner {
                pinner: None,
                map: RBTree::new(),
                pending: KVec::new(),
                guards: [None; GUARDS],
                unguarded: 0,
                unguarded_done: None,
                linger_ms,
                draining: 0,
                limit,
                stats: PinStats::default(),
            }),
            settled <- new_condvar!(),
        })
    }

    /// Drops every pin (and, with `detach`, the backend); returns how many pins went.
    fn release_all(&self, detach: Option<Option<P>>) -> usize {
        let mut out = Released::new();
        let slot = {
            let mut g = self.inner.lock();
            g.draining += 1;
            g.take_frames(0, u64::MAX, &mut out);
            if let Some(p) = detach {
                g.pinner = p;
            }
            // No new pin starts until the old ones are gone.
            let slot = g.guard(0, u64::MAX);
            // Pins in flight were cancelled: wait until they are given back.
            while !g.pending.is_empty() {
                self.settled.wait(&mut g);
            }
            slot
        };
        let n = self.drain(out);
        let mut g = self.inner.lock();
        g.unguard(slot, false);
        g.stats.released += n as u64;
        n
    }

    /// Gives back the pins of a batch taken out of the cache (counted in `draining` when
    /// it was filled), without the cache's lock; returns how many.
    fn drain(&self, out: Released<P::Page>) -> usize {
        let n = out.unpin();
        let mut g = self.inner.lock();
        g.draining = g.draining.saturating_sub(1);
        self.settled.notify_all();
        n
    }

    /// The device was opened: pins come from `pinner` now.
    pub(crate) fn attach(&self, pinner: P) {
        self.release_all(Some(Some(pinner)));
    }

    /// The device was closed: every pin goes, and nothing reaches guest memory any more.
    pub(crate) fn detach(&self) {
        self.release_all(Some(None));
    }

    /// Device reset: every pin goes; the device stays usable.
    pub(crate) fn reset(&self) {
        self.release_all(None);
    }

    /// The user unmapped `[addr, addr + len)`: every pin in it goes before this returns,
    /// including pins that were being taken meanwhile, and no new pin starts in it until
    /// shortly after.
    pub(crate) fn unmap(&self, addr: u64, len: u64) -> usize {
        if len == 0 {
            return 0;
        }
        let (first, last) = (addr / PAGE, addr.saturating_add(len - 1) / PAGE);
        let mut out = Released::new();
        let slot = {
            let mut g = self.inner.lock();
            g.draining += 1;
            g.take_frames(first, last, &mut out);
            g.guard(first, last)
        };
        let n = self.drain(out);
        // Wait for pins of the range still in flight: pending ones (cancelled above, they
        // give themselves back) and batches other threads took out of the cache.
        let mut g = self.inner.lock();
        while g.draining != 0 || g.pending.iter().any(|p| (first..=last).contains(&p.gfn)) {
            self.settled.wait(&mut g);
        }
        g.unguard(slot, true);
        g.stats.unmapped += n as u64;
        n
    }

    /// What the cache did so far.
    pub(crate) fn stats(&self) -> PinStats {
        self.inner.lock().stats
    }

    /// The backend, for a copy (taken under the lock, used without it).
    fn pinner(&self) -> Result<P> {
        self.inner.lock().pinner.clone().ok_or(ENODEV)
    }

    /// Copies `buf.len()` bytes of guest memory at `addr` into `buf`, once.
    ///
    /// With the legacy container the copy goes through the user's address space: it works
    /// from the user's own process (a trapped access) or a kernel thread (a work item),
    /// and fails with `EPERM` from any other process. Views work from anywhere.
    ///
    /// # Errors
    ///
    /// `ENODEV` while closed; the backend's error for an unmapped range.
    pub(crate) fn read(&self, addr: u64, buf: &mut [u8]) -> Result {
        self.pinner()?.rw(addr, buf, false)
    }

    /// Copies `data` into guest memory at `addr`.
    ///
    /// # Errors
    ///
    /// As for [`Self::read`].
    pub(crate) fn write(&self, addr: u64, data: &[u8]) -> Result {
        let mut tmp = KVec::new();
        tmp.extend_from_slice(data, GFP_KERNEL)?;
        self.pinner()?.rw(addr, &mut tmp, true)
    }

    /// The entry of frame `gfn`, pinned now if it is not cached, counted as used (the
    /// caller owes a decrement of `users`).
    fn get(&self, gfn: u64, write: bool) -> Result<Arc<Entry<P::Page>>> {
        let addr = gfn.checked_mul(PAGE).ok_or(EINVAL)?;
        let mut out = Released::new();
        let pinner = {
            let mut g = self.inner.lock();
            loop {
                if let Some(e) = g.hit(gfn, write) {
                    return Ok(e);
                }
                if !g.pending.iter().any(|p| p.gfn == gfn) {
                    break;
                }
                self.settled.wait(&mut g);
            }
            if g.guarded(gfn) {
                return Err(EFAULT);
            }
            let pinner = g.pinner.clone().ok_or(ENODEV)?;
            // Read-only but wanted writable: pin anew, unless a view still uses it.
            if g.map
                .get(&gfn)
                .is_some_and(|e| e.users.load(Ordering::Acquire) != 0)
            {
                return Err(EBUSY);
            }
            // From here on, what is taken out of the cache is a draining batch.
            g.draining += 1;
            if g.map.get(&gfn).is_some() {
                g.take_frames(gfn, gfn, &mut out);
                g.stats.released += 1;
            }
            let room = g.make_room(&mut out);
            let pend = room.and_then(|()| {
                g.pending
                    .push(
                        Pending {
                            gfn,
                            cancelled: false,
                        },
                        GFP_KERNEL,
                    )
                    .map_err(|_| ENOMEM)
            });
            if let Err(e) = pend {
                drop(g);
                self.drain(out);
                return Err(e);
            }
            pinner
        };
        self.drain(out);
        let r = pinner.pin(addr, write).and_then(|page| {
            let e = Arc::new(
                Entry {
                    page,
                    writable: write,
                    users: AtomicUsize::new(0),
                },
                GFP_KERNEL,
            )?;
            let node = RBTreeNode::new(gfn, e.clone(), GFP_KERNEL)?;
            Ok((e, node))
        });
        // Settle the pending pin. A pin cancelled meanwhile (the user unmapped the frame,
        // or the device is going) is given back first, without the lock, so that whoever
        // waits for the settle knows it is gone.
        let mut g = self.inner.lock();
        loop {
            let cancelled = g.is_cancelled(gfn) || g.pinner.is_none();
            match &r {
                Ok((e, _)) if cancelled && e.page.is_pinned() => {
                    drop(g);
                    e.page.unpin();
                    g = self.inner.lock();
                }
                _ => break,
            }
        }
        let cancelled = g.settle(gfn) || g.pinner.is_none();
        self.settled.notify_all();
        match r {
            Err(err) => {
                g.stats.failures += 1;
                Err(err)
            }
            Ok(_) if cancelled => Err(EFAULT),
            Ok((e, node)) => {
                // Counted as used before anyone can see it, so it cannot be evicted.
                e.users.fetch_add(1, Ordering::AcqRel);
                // Nothing is cached for `gfn` here: it was taken out above and pins of one
                // frame are never in flight twice.
                let _ = g.map.insert(node);
                g.stats.live += 1;
                g.stats.pinned += 1;
                Ok(e)
            }
        }
    }

    /// Pins the pages of `[addr, addr + len)` and returns a view of them; `write` asks for
    /// a view the host may store through.
    ///
    /// # Errors
    ///
    /// `EINVAL` for an empty or wrapping range, `ENOSPC` when the pins would exceed the
    /// limit, `ENODEV` while closed, `EFAULT` for a range being unmapped, the backend's
    /// error for a page it cannot pin. On error no view exists; pages pinned on the way
    /// stay cached and evictable.
    pub(crate) fn map(&self, addr: u64, len: usize, write: bool) -> Result<View<P::Page>> {
        let end = addr.checked_add(len as u64).ok_or(EINVAL)?;
        if len == 0 {
            return Err(EINVAL);
        }
        let (first, last) = (addr / PAGE, (end - 1) / PAGE);
        let count = usize::try_from(last - first + 1).map_err(|_| EINVAL)?;
        if count > self.inner.lock().limit {
            return Err(ENOSPC);
        }
        let mut view = View {
            pages: KVec::with_capacity(count, GFP_KERNEL)?,
            start: (addr % PAGE) as usize,
            len,
            write,
        };
        for gfn in first..=last {
            // `get` counts the entry as used; the view's drop balances it.
            let e = self.get(gfn, write)?;
            if let Err(err) = view.pages.push(e.clone(), GFP_KERNEL) {
                e.users.fetch_sub(1, Ordering::AcqRel);
                return Err(err.into());
            }
        }
        Ok(view)
    }
}

/// What [`GuestMemory::probe`] saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Probe {
    /// XOR of the qwords of the range, as they were.
    pub(crate) xor: u64,
    /// Host frame number of the first page.
    pub(crate) first_pfn: u64,
}

/// Largest range [`GuestMemory::probe`] takes.
pub(crate) const PROBE_MAX: usize = 64 << 10;

impl<P: Pinner + Clone> GuestMemory<P> {
    /// A test hook (debugfs `mem_probe`) for the whole path to real guest memory: maps
    /// `[addr, addr + len)` through the pin cache, loads every qword once, stores its
    /// complement, and returns the XOR of what it loaded. The view is dropped at once;
    /// the pins stay cached, as for a ring.
    ///
    /// # Errors
    ///
    /// `EINVAL` unless `addr` and `len` are qword multiples and `len` is at most
    /// [`PROBE_MAX`]; everything [`Self::map`] and [`View::load64`] return.
    pub(crate) fn probe(&self, addr: u64, len: usize) -> Result<Probe> {
        if addr % 8 != 0 || len % 8 != 0 || len > PROBE_MAX {
            return Err(EINVAL);
        }
        let v = self.map(addr, len, true)?;
        let mut xor = 0;
        for off in (0..len).step_by(8) {
            let q = v.load64(off)?;
            xor ^= q;
            v.store64(off, !q)?;
        }
        let first_pfn = v.pfns().next().unwrap_or(0);
        Ok(Probe { xor, first_pfn })
    }
}

/// Pinned guest pages seen as one range.
pub(crate) struct View<G: GuestPage> {
    pages: KVec<Arc<Entry<G>>>,
    /// Offset of the range in its first page.
    start: usize,
    len: usize,
    write: bool,
}

impl<G: GuestPage> View<G> {
    /// Length of the range in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The page and in-page offset of byte `off` for a `size`-byte access.
    fn slot(&self, off: usize, size: usize) -> Result<(&G, usize)> {
        let end = off.checked_add(size).ok_or(EINVAL)?;
        if end > self.len {
            return Err(EINVAL);
        }
        let abs = self.start + off;
        if abs % size != 0 {
            return Err(EINVAL);
        }
        let e = self.pages.get(abs / PAGE_SIZE).ok_or(EINVAL)?;
        if !e.page.is_pinned() {
            return Err(EFAULT);
        }
        Ok((&e.page, abs % PAGE_SIZE))
    }

    fn writable(&self) -> Result {
        if self.write {
            Ok(())
        } else {
            Err(EPERM)
        }
    }

    /// Loads the dword at `off` (4-byte aligned in guest memory) with one access.
    ///
    /// # Errors
    ///
    /// `EINVAL` if unaligned or outside the view, `EFAULT` once the page was unmapped.
    pub(crate) fn load32(&self, off: usize) -> Result<u32> {
        let (p, o) = self.slot(off, 4)?;
        p.load32(o)
    }

    /// Loads the qword at `off` (8-byte aligned in guest memory) with one access.
    ///
    /// # Errors
    ///
    /// As for [`Self::load32`].
    pub(crate) fn load64(&self, off: usize) -> Result<u64> {
        let (p, o) = self.slot(off, 8)?;
        p.load64(o)
    }

    /// Stores the dword `v` at `off` (4-byte aligned in guest memory) with one access.
    ///
    /// # Errors
    ///
    /// As for [`Self::load32`]; `EPERM` for a read-only view.
    pub(crate) fn store32(&self, off: usize, v: u32) -> Result {
        self.writable()?;
        let (p, o) = self.slot(off, 4)?;
        p.store32(o, v)
    }

    /// Stores the qword `v` at `off` (8-byte aligned in guest memory) with one access.
    ///
    /// # Errors
    ///
    /// As for [`Self::store32`].
    pub(crate) fn store64(&self, off: usize, v: u64) -> Result {
        self.writable()?;
        let (p, o) = self.slot(off, 8)?;
        p.store64(o, v)
    }

    /// Loads the `size`-byte value (1, 2, 4 or 8, naturally aligned in guest memory) at
    /// `off` with one access, zero-extended.
    ///
    /// # Errors
    ///
    /// As for [`Self::load32`].
    pub(crate) fn load_sized(&self, off: usize, size: usize) -> Result<u64> {
        if !matches!(size, 1 | 2 | 4 | 8) {
            return Err(EINVAL);
        }
        let (p, o) = self.slot(off, size)?;
        p.load_sized(o, size)
    }

    /// Stores the low `size` bytes (1, 2, 4 or 8) of `v` at `off` (naturally aligned in
    /// guest memory) with one access.
    ///
    /// # Errors
    ///
    /// As for [`Self::store32`].
    pub(crate) fn store_sized(&self, off: usize, size: usize, v: u64) -> Result {
        if !matches!(size, 1 | 2 | 4 | 8) {
            return Err(EINVAL);
        }
        self.writable()?;
        let (p, o) = self.slot(off, size)?;
        p.store_sized(o, size, v)
    }

    /// Whether every page of the view is still pinned (the user unmapped none of them).
    pub(crate) fn is_live(&self) -> bool {
        self.pages.iter().all(|e| e.page.is_pinned())
    }

    /// The host frame numbers of the view's pages, in order.
    pub(crate) fn pfns(&self) -> impl Iterator<Item = u64> + '_ {
        self.pages.iter().map(|e| e.page.pfn())
    }
}

impl<G: GuestPage> Drop for View<G> {
    fn drop(&mut self) {
        for e in self.pages.iter() {
            e.users.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// A one-page view is how a guest page reaches the device ([`gpu::Gpu::dma_map`]): the
/// view keeps its cache entry from eviction, and its accesses fail with `EFAULT` once the
/// user unmapped the page.
impl<G: GuestPage + 'static> gpu::DevPage for View<G> {
    fn load32(&self, off: usize) -> Result<u32> {
        View::load32(self, off)
    }
    fn load64(&self, off: usize) -> Result<u64> {
        View::load64(self, off)
    }
    fn store32(&self, off: usize, v: u32) -> Result {
        View::store32(self, off, v)
    }
    fn store64(&self, off: usize, v: u64) -> Result {
        View::store64(self, off, v)
    }
    fn writable(&self) -> bool {
        self.write
    }
}

#[cfg(CONFIG_KUNIT)]
pub(crate) mod fake;

#[kunit_tests(gvtpv_host_guest_memory)]
mod tests {
    use super::fake::FakeGuest;
    use super::*;

    type Mem = Pin<KBox<GuestMemory<Arc<FakeGuest>>>>;

    /// Long enough that a preempted test thread cannot outlast it between an unmap and
    /// the check that follows.
    const TEST_LINGER_MS: i64 = 300;

    fn mem(pages: usize, limit: usize) -> (Arc<FakeGuest>, Mem) {
        let g = FakeGuest::new(pages).unwrap();
        let m =
            KBox::pin_init(GuestMemory::with_linger(limit, TEST_LINGER_MS), GFP_KERNEL).unwrap();
        m.attach(g.clone());
        (g, m)
    }

    #[test]
    fn copies_and_single_accesses() {
        let (g, m) = mem(4, 8);
        let pattern: [u8; 12] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
        // A copy across a page boundary.
        m.write(PAGE - 4, &pattern).unwrap();
        let mut back = [0u8; 12];
        m.read(PAGE - 4, &mut back).unwrap();
        assert_eq!(back, pattern);
        // A view across the same boundary sees it, dword by dword.
        let v = m.map(PAGE - 8, 16, true).unwrap();
        assert_eq!(v.load32(4).unwrap(), 0x0403_0201);
        assert_eq!(v.load64(8).unwrap(), 0x0c0b_0a09_0807_0605);
        v.store32(12, 0xdead_beef).unwrap();
        assert_eq!(g.peek32(PAGE + 4), 0xdead_beef);
        v.store64(0, 0x1122_3344_5566_7788).unwrap();
        assert_eq!(g.peek32(PAGE - 8), 0x5566_7788);
        assert_eq!(g.peek32(PAGE - 4), 0x1122_3344);
        // Unaligned, outside, and read-only stores are refused.
        assert_eq!(v.load32(2), Err(EINVAL));
        assert_eq!(v.load64(4), Err(EINVAL));
        assert_eq!(v.load32(16), Err(EINVAL));
        let ro = m.map(0, 8, false).unwrap();
        assert_eq!(ro.store32(0, 1), Err(EPERM));
        // Two pages pinned once each, though mapped twice over.
        assert_eq!(m.stats().live, 2);
        assert_eq!(g.pins(), 2);
        assert_eq!(v.pfns().count(), 2);
        assert_eq!(v.len(), 16);
    }

    #[test]
    fn probe_complements_and_reports() {
        let (g, m) = mem(4, 8);
        m.write(PAGE, &0x0102_0304_0506_0708u64.to_le_bytes())
            .unwrap();
        m.write(PAGE + 8, &0x1000_0000_0000_0001u64.to_le_bytes())
            .unwrap();
        let p = m.probe(PAGE, 16).unwrap();
        assert_eq!(p.xor, 0x1102_0304_0506_0709);
        assert_eq!(p.first_pfn, 1);
        assert_eq!(g.peek32(PAGE), !0x0506_0708u32);
        assert_eq!(m.probe(PAGE + 4, 8), Err(EINVAL));
        assert_eq!(m.probe(PAGE, 12), Err(EINVAL));
        assert_eq!(m.probe(PAGE, PROBE_MAX + 8), Err(EINVAL));
        assert_eq!(m.probe(64 * PAGE, 8), Err(EFAULT));
    }

    #[test]
    fn unmap_while_pinned() {
        let (g, m) = mem(4, 8);
        let v = m.map(0, 2 * PAGE as usize, true).unwrap();
        v.store32(PAGE as usize, 7).unwrap();
        // The user unmaps the second page: its pin goes at once, the view fails there.
        assert_eq!(m.unmap(PAGE, PAGE), 1);
        assert_eq!(g.unpins(), 1);
        assert_eq!(v.load32(PAGE as usize), Err(EFAULT));
        assert_eq!(v.store32(PAGE as usize, 8), Err(EFAULT));
        // The page the guest unmapped was not written after the unmap.
        assert_eq!(g.peek32(PAGE), 7);
        // The first page is still fine. Right after the unmap the range refuses new pins
        // (the container still looks for pins there); a little later it pins anew.
        assert!(v.load32(0).is_ok());
        assert!(matches!(m.map(PAGE, 4, false), Err(e) if e == EFAULT));
        kernel::time::delay::fsleep(kernel::time::Delta::from_millis(TEST_LINGER_MS + 10));
        let v2 = m.map(PAGE, 4, false).unwrap();
        assert_eq!(v2.load32(0).unwrap(), 7);
        assert_eq!(g.pins(), 3);
        assert_eq!(m.stats().unmapped, 1);
        // An unmap of nothing drops nothing; pins elsewhere go on during a linger.
        assert_eq!(m.unmap(3 * PAGE, 0), 0);
        assert_eq!(m.unmap(3 * PAGE, PAGE), 0);
        assert!(matches!(m.map(3 * PAGE, 4, false), Err(e) if e == EFAULT));
        assert!(m.map(2 * PAGE, 4, false).is_ok());
    }

    #[test]
    fn reset_and_close_drop_every_pin() {
        let (g, m) = mem(4, 8);
        let v = m.map(0, 3 * PAGE as usize, false).unwrap();
        m.reset();
        assert_eq!(g.unpins(), 3);
        assert_eq!(m.stats().live, 0);
        assert_eq!(v.load32(0), Err(EFAULT));
        let _v = m.map(0, 4, false).unwrap();
        m.detach();
        assert_eq!(g.unpins(), 4);
        let mut b = [0u8; 4];
        assert_eq!(m.read(0, &mut b), Err(ENODEV));
        assert!(matches!(m.map(0, 4, false), Err(e) if e == ENODEV));
    }

    #[test]
    fn failures_are_errors() {
        let (g, m) = mem(4, 3);
        // A page the backend refuses (outside guest memory, or the memlock limit).
        g.fail_at(2);
        assert!(matches!(m.map(PAGE, 2 * PAGE as usize, false), Err(e) if e == EFAULT));
        assert_eq!(m.stats().failures, 1);
        // Nothing of the failed view stays in use: all of it can be evicted.
        g.fail_at(u64::MAX);
        let _a = m.map(2 * PAGE, 4, false).unwrap();
        let _b = m.map(3 * PAGE, 4, false).unwrap();
        let _c = m.map(0, 4, false).unwrap();
        // Three pages in use: a fourth is refused, not pinned beyond the limit.
        assert!(matches!(m.map(PAGE, 4, false), Err(e) if e == ENOSPC));
        assert!(matches!(m.map(0, 4 * PAGE as usize, false), Err(e) if e == ENOSPC));
        drop(_c);
        assert!(m.map(PAGE, 4, false).is_ok());
        assert!(m.stats().live <= 3);
        // A writable view of a page a read-only view still uses is refused, not forced.
        let ro = m.map(2 * PAGE, 4, false).unwrap();
        assert!(matches!(m.map(2 * PAGE, 4, true), Err(e) if e == EBUSY));
        drop(ro);
        drop(_a);
        assert!(m.map(2 * PAGE, 4, true).is_ok());
        // Empty and wrapping ranges.
        assert!(matches!(m.map(0, 0, false), Err(e) if e == EINVAL));
        assert!(matches!(m.map(u64::MAX - 1, 4, false), Err(e) if e == EINVAL));
    }
}
