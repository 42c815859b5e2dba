// SPDX-License-Identifier: GPL-2.0

//! The sim's IOMMU: device address to page, the only way the sim turns an address into
//! memory.
//!
//! Device addresses come from a next-fit allocator over a 39-bit space (GEN9's DMA
//! width). Page 0 is never handed out, so a zeroed entry never reaches memory. A mapping
//! of `n` pages is aligned to `n` rounded up to a power of two, so that a run mapped for a
//! 64 KiB or 2 MiB PPGTT entry is aligned as the entry needs. An address no mapping
//! covers is a fault.
//!
//! A mapping holds the pages themselves: guest pages ([`DevPage`], from [`Iommu::map`])
//! or host memory ([`HostBuf`], from [`Iommu::alloc`]). A translation hands out a clone
//! of the page ([`Frame`]), so a page the engine is using stays valid after
//! [`Iommu::unmap`]; a guest page then fails its accesses with `EFAULT` once the pin
//! cache gave it back, and a host buffer is freed by whoever drops it last.
//!
//! Locking: `Iommu::inner` is a leaf spinlock. Pages are never dropped under it: a guest
//! page's drop may give its pin back, which sleeps.
//!
//! Host memory is `KVVec<AtomicU64>`, not `kernel::page::Page`: in Linux 7.2 the contents
//! of a `Page` are only reachable through `unsafe` (`read_raw`, `write_raw`), and this
//! crate allows `unsafe` only in its FFI room. Every access is a single aligned atomic
//! load or store; a 4-byte store is a compare-and-swap on its qword.

use crate::gpu::{DevAddr, DevPage, HostMem, PAGE};
use core::sync::atomic::{AtomicU64, Ordering};
use kernel::{
    new_spinlock,
    prelude::*,
    rbtree::{RBTree, RBTreeNodeReservation},
    sync::{Arc, SpinLock},
};

/// Device address width (GEN9: 39 bits).
pub(crate) const DMA_BITS: u32 = 39;
/// Pages of the device address space.
const SPACE_PAGES: u64 = 1 << (DMA_BITS - 12);
/// Most pages mapped at once (4 GiB).
pub(crate) const MAX_PAGES: u64 = 1 << 20;
/// Qwords in a page.
const QWORDS: usize = (PAGE / 8) as usize;

/// Zeroed host memory the device reaches, in pages.
pub(crate) struct HostBuf {
    words: KVVec<AtomicU64>,
}

/// Whether `off` is a naturally aligned `size`-byte slot below `len`.
fn slot(off: usize, size: usize, len: usize) -> Result {
    if off % size == 0 && off.checked_add(size).is_some_and(|e| e <= len) {
        Ok(())
    } else {
        Err(EINVAL)
    }
}

impl HostBuf {
    /// `pages` zeroed pages.
    fn new(pages: usize) -> Result<Self> {
        let n = pages.checked_mul(QWORDS).ok_or(ENOMEM)?;
        let mut words = KVVec::with_capacity(n, GFP_KERNEL)?;
        for _ in 0..n {
            words
                .push_within_capacity(AtomicU64::new(0))
                .map_err(|_| ENOMEM)?;
        }
        Ok(Self { words })
    }

    fn len(&self) -> usize {
        self.words.len() * 8
    }

    fn word(&self, off: usize, size: usize) -> Result<&AtomicU64> {
        slot(off, size, self.len())?;
        self.words.get(off / 8).ok_or(EINVAL)
    }

    /// One aligned 4-byte load.
    pub(crate) fn load32(&self, off: usize) -> Result<u32> {
        let w = self.word(off, 4)?.load(Ordering::Relaxed);
        Ok((w >> ((off % 8) * 8)) as u32)
    }

    /// One aligned 8-byte load.
    pub(crate) fn load64(&self, off: usize) -> Result<u64> {
        Ok(self.word(off, 8)?.load(Ordering::Relaxed))
    }

    /// One aligned 4-byte store (a compare-and-swap of its qword, so the other half is
    /// kept whatever another thread stores there meanwhile).
    pub(crate) fn store32(&self, off: usize, v: u32) -> Result {
        let shift = (off % 8) * 8;
        let mask = 0xffff_ffffu64 << shift;
        let w = self.word(off, 4)?;
        // Never fails: the closure always returns `Some`.
        let _ = w.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
            Some((old & !mask) | (u64::from(v) << shift))
        });
        Ok(())
    }

    /// One aligned 8-byte store.
    pub(crate) fn store64(&self, off: usize, v: u64) -> Result {
        self.word(off, 8)?.store(v, Ordering::Relaxed);
        Ok(())
    }
}

/// One page the device reaches, as a translation hands it out.
#[derive(Clone)]
pub(crate) enum Frame {
    /// A guest page.
    Guest(Arc<dyn DevPage>),
    /// Page `.1` (a byte offset) of host memory.
    Host(Arc<HostBuf>, usize),
}

impl Frame {
    /// Whether the device may write the page.
    pub(crate) fn writable(&self) -> bool {
        match self {
            Frame::Guest(p) => p.writable(),
            Frame::Host(..) => true,
        }
    }

    /// One aligned 4-byte load at byte `off` of the page.
    pub(crate) fn load32(&self, off: usize) -> Result<u32> {
        slot(off, 4, PAGE as usize)?;
        match self {
            Frame::Guest(p) => p.load32(off),
            Frame::Host(b, base) => b.load32(base + off),
        }
    }

    /// One aligned 8-byte load at byte `off` of the page.
    pub(crate) fn load64(&self, off: usize) -> Result<u64> {
        slot(off, 8, PAGE as usize)?;
        match self {
            Frame::Guest(p) => p.load64(off),
            Frame::Host(b, base) => b.load64(base + off),
        }
    }

    /// One aligned 4-byte store at byte `off` of the page.
    pub(crate) fn store32(&self, off: usize, v: u32) -> Result {
        slot(off, 4, PAGE as usize)?;
        match self {
            Frame::Guest(p) => p.store32(off, v),
            Frame::Host(b, base) => b.store32(base + off, v),
        }
    }

    /// One aligned 8-byte store at byte `off` of the page.
    pub(crate) fn store64(&self, off: usize, v: u64) -> Result {
        slot(off, 8, PAGE as usize)?;
        match self {
            Frame::Guest(p) => p.store64(off, v),
            Frame::Host(b, base) => b.store64(base + off, v),
        }
    }
}

/// What a mapping maps.
enum Backing {
    /// Guest pages, one per page of the mapping.
    Guest(KVec<Arc<dyn DevPage>>),
    /// Host memory, as long as the mapping.
    Host(Arc<HostBuf>),
}

/// One mapping: `pages` pages from page `first` of the device address space.
struct Mapping {
    first: u64,
    pages: u64,
    backing: Backing,
}

impl Mapping {
    fn frame(&self, pfn: u64) -> Option<Frame> {
        let i = usize::try_from(pfn.checked_sub(self.first)?).ok()?;
        match &self.backing {
            Backing::Guest(v) => v.get(i).map(|p| Frame::Guest(p.clone())),
            Backing::Host(b) => {
                (i < b.len() / PAGE as usize).then(|| Frame::Host(b.clone(), i * PAGE as usize))
            }
        }
    }
}

struct Inner {
    /// Mappings keyed by their last page, so that the lower bound of a page is the only
    /// mapping that may hold it.
    tree: RBTree<u64, Mapping>,
    /// Where the next search for free space starts.
    next: u64,
    /// Pages mapped.
    pages: u64,
    /// Mappings.
    count: u64,
}

const fn align_up(v: u64, a: u64) -> u64 {
    v.div_ceil(a) * a
}

impl Inner {
    /// First page of a free, `align`-aligned run of `pages` pages.
    fn find(&self, pages: u64, align: u64) -> Option<u64> {
        let mut cand = align_up(self.next.max(1), align);
        let mut wrapped = false;
        // Each round either succeeds, steps past one mapping, or wraps (once).
        for _ in 0..self.count + 3 {
            if cand.checked_add(pages).is_none_or(|e| e > SPACE_PAGES) {
                if wrapped {
                    return None;
                }
                wrapped = true;
                cand = align_up(1, align);
                continue;
            }
            match self.tree.cursor_lower_bound(&cand) {
                None => return Some(cand),
                Some(c) => {
                    let (last, m) = c.current();
                    if m.first >= cand + pages {
                        return Some(cand);
                    }
                    cand = align_up(last + 1, align);
                }
            }
        }
        None
    }

    /// Runs `f` on the mapping that holds page `pfn`, if any.
    fn lookup<R>(&self, pfn: u64, f: impl FnOnce(&Mapping) -> R) -> Option<R> {
        let c = self.tree.cursor_lower_bound(&pfn)?;
        let m = c.current().1;
        (m.first <= pfn).then(|| f(m))
    }
}

/// The IOMMU.
#[pin_data]
pub(crate) struct Iommu {
    #[pin]
    inner: SpinLock<Inner>,
}

impl Iommu {
    /// An IOMMU with nothing mapped.
    pub(crate) fn new() -> Result<Arc<Self>> {
        Arc::pin_init(
            pin_init!(Self {
                inner <- new_spinlock!(
                    Inner {
                        tree: RBTree::new(),
                        next: 1,
                        pages: 0,
                        count: 0,
                    },
                    "gvtpv_sim_iommu"
                ),
            }),
            GFP_KERNEL,
        )
    }

    fn insert(&self, pages: u64, backing: Backing) -> Result<DevAddr> {
        if pages == 0 {
            return Err(EINVAL);
        }
        let align = pages.checked_next_power_of_two().ok_or(ENOSPC)?;
        let res = RBTreeNodeReservation::new(GFP_KERNEL)?;
        let mut g = self.inner.lock();
        if g.pages + pages > MAX_PAGES {
            return Err(ENOSPC);
        }
        let first = g.find(pages, align).ok_or(ENOSPC)?;
        let last = first + pages - 1;
        g.tree.insert(res.into_node(
            last,
            Mapping {
                first,
                pages,
                backing,
            },
        ));
        g.next = last + 1;
        g.pages += pages;
        g.count += 1;
        Ok(first << 12)
    }

    /// Maps guest `pages` at one contiguous device range.
    ///
    /// # Errors
    ///
    /// `EINVAL` for no pages, `ENOSPC` past [`MAX_PAGES`] or with no room, `ENOMEM`.
    pub(crate) fn map(&self, pages: &[Arc<dyn DevPage>]) -> Result<DevAddr> {
        let mut v = KVec::with_capacity(pages.len(), GFP_KERNEL)?;
        for p in pages {
            v.push(p.clone(), GFP_KERNEL)?;
        }
        self.insert(pages.len() as u64, Backing::Guest(v))
    }

    /// Allocates `pages` zeroed pages of host memory and maps them.
    ///
    /// # Errors
    ///
    /// As [`Self::map`].
    pub(crate) fn alloc(self: &Arc<Self>, pages: usize) -> Result<Arc<dyn HostMem>> {
        if pages == 0 || pages as u64 > MAX_PAGES {
            return Err(if pages == 0 { EINVAL } else { ENOSPC });
        }
        let buf = Arc::new(HostBuf::new(pages)?, GFP_KERNEL)?;
        let addr = self.insert(pages as u64, Backing::Host(buf.clone()))?;
        let mem = SimHostMem {
            addr,
            buf,
            iommu: self.clone(),
        };
        match Arc::new(mem, GFP_KERNEL) {
            Ok(m) => Ok(m),
            // The failed value was dropped, and with it the mapping.
            Err(e) => Err(e.into()),
        }
    }

    /// Removes the mapping that starts at `addr`; nothing if none does.
    pub(crate) fn unmap(&self, addr: DevAddr) {
        let pfn = addr >> 12;
        let node = {
            let mut g = self.inner.lock();
            let Some((last, pages)) = g
                .lookup(pfn, |m| {
                    (m.first == pfn).then(|| (m.first + m.pages - 1, m.pages))
                })
                .flatten()
            else {
                return;
            };
            let node = g.tree.remove_node(&last);
            g.pages = g.pages.saturating_sub(pages);
            g.count = g.count.saturating_sub(1);
            node
        };
        // The pages go here, without the lock.
        drop(node);
    }

    /// The page device address `addr` lies in.
    pub(crate) fn frame(&self, addr: DevAddr) -> Option<Frame> {
        let pfn = addr >> 12;
        self.inner.lock().lookup(pfn, |m| m.frame(pfn)).flatten()
    }

    /// One aligned 8-byte load at device address `addr` (for the PPGTT walker).
    pub(crate) fn load64(&self, addr: DevAddr) -> Option<u64> {
        self.frame(addr)?.load64((addr % PAGE) as usize).ok()
    }

    /// Live mappings.
    pub(crate) fn mappings(&self) -> u64 {
        self.inner.lock().count
    }
}

/// Host memory from [`Iommu::alloc`]; unmapped when dropped, freed with its last
/// translation.
struct SimHostMem {
    addr: DevAddr,
    buf: Arc<HostBuf>,
    iommu: Arc<Iommu>,
}

impl HostMem for SimHostMem {
    fn dev_addr(&self) -> DevAddr {
        self.addr
    }
    fn len(&self) -> usize {
        self.buf.len()
    }
    fn load32(&self, off: usize) -> Result<u32> {
        self.buf.load32(off)
    }
    fn load64(&self, off: usize) -> Result<u64> {
        self.buf.load64(off)
    }
    fn store32(&self, off: usize, v: u32) -> Result {
        self.buf.store32(off, v)
    }
    fn store64(&self, off: usize, v: u64) -> Result {
        self.buf.store64(off, v)
    }
}

impl Drop for SimHostMem {
    fn drop(&mut self) {
        self.iommu.unmap(self.addr);
    }
}
