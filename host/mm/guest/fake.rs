// SPDX-License-Identifier: GPL-2.0

//! An in-memory guest for KUnit: pins that count, and that fail where a test says.

use super::{GuestPage, Pinner, PAGE};
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use kernel::{
    new_mutex,
    prelude::*,
    sync::{Arc, Mutex},
};

/// Guest memory of a few pages.
#[pin_data]
pub(crate) struct FakeGuest {
    #[pin]
    bytes: Mutex<KVVec<u8>>,
    pins: AtomicU64,
    unpins: AtomicU64,
    /// The frame whose pin fails with `EFAULT`; `u64::MAX` for none.
    fail: AtomicU64,
}

impl FakeGuest {
    /// A zeroed guest of `pages` pages.
    pub(crate) fn new(pages: usize) -> Result<Arc<Self>> {
        let mut v = KVVec::new();
        v.extend_with(pages * PAGE as usize, 0u8, GFP_KERNEL)?;
        Arc::pin_init(
            pin_init!(Self {
                bytes <- new_mutex!(v),
                pins: AtomicU64::new(0),
                unpins: AtomicU64::new(0),
                fail: AtomicU64::new(u64::MAX),
            }),
            GFP_KERNEL,
        )
    }

    /// Pins taken so far.
    pub(crate) fn pins(&self) -> u64 {
        self.pins.load(Ordering::Relaxed)
    }

    /// Pins given back so far.
    pub(crate) fn unpins(&self) -> u64 {
        self.unpins.load(Ordering::Relaxed)
    }

    /// Makes pinning frame `gfn` fail from now on (`u64::MAX`: nothing fails).
    pub(crate) fn fail_at(&self, gfn: u64) {
        self.fail.store(gfn, Ordering::Relaxed);
    }

    /// The dword at guest address `addr`, as the guest sees it.
    pub(crate) fn peek32(&self, addr: u64) -> u32 {
        let b = self.bytes.lock();
        let a = addr as usize;
        b.get(a..a + 4)
            .and_then(|s| s.try_into().ok())
            .map_or(0, u32::from_le_bytes)
    }

    fn access(&self, addr: u64, len: usize, f: impl FnOnce(&mut [u8])) -> Result {
        let mut b = self.bytes.lock();
        let a = usize::try_from(addr).map_err(|_| EFAULT)?;
        let end = a.checked_add(len).ok_or(EFAULT)?;
        f(b.get_mut(a..end).ok_or(EFAULT)?);
        Ok(())
    }
}

/// A pinned page of a [`FakeGuest`].
pub(crate) struct FakePage {
    guest: Arc<FakeGuest>,
    addr: u64,
    writable: bool,
    pinned: AtomicBool,
}

impl FakePage {
    /// The guest address of a `size`-byte access at `off`, as `vfio::PinnedPage` checks
    /// it: aligned, inside the page, still pinned, writable for a store.
    fn at(&self, off: usize, size: usize, store: bool) -> Result<u64> {
        if off % size != 0 || off + size > PAGE as usize {
            return Err(EINVAL);
        }
        if store && !self.writable {
            return Err(EPERM);
        }
        if !self.is_pinned() {
            return Err(EFAULT);
        }
        Ok(self.addr + off as u64)
    }

    fn load<const N: usize>(&self, off: usize) -> Result<[u8; N]> {
        let a = self.at(off, N, false)?;
        let mut out = [0u8; N];
        self.guest.access(a, N, |s| out.copy_from_slice(s))?;
        Ok(out)
    }

    fn store(&self, off: usize, v: &[u8]) -> Result {
        let a = self.at(off, v.len(), true)?;
        self.guest.access(a, v.len(), |s| s.copy_from_slice(v))
    }
}

impl GuestPage for FakePage {
    fn pfn(&self) -> u64 {
        self.addr / PAGE
    }
    fn is_pinned(&self) -> bool {
        self.pinned.load(Ordering::Acquire)
    }
    fn unpin(&self) {
        if self.pinned.swap(false, Ordering::AcqRel) {
            self.guest.unpins.fetch_add(1, Ordering::Relaxed);
        }
    }
    fn load32(&self, off: usize) -> Result<u32> {
        self.load::<4>(off).map(u32::from_le_bytes)
    }
    fn load64(&self, off: usize) -> Result<u64> {
        self.load::<8>(off).map(u64::from_le_bytes)
    }
    fn store32(&self, off: usize, v: u32) -> Result {
        self.store(off, &v.to_le_bytes())
    }
    fn store64(&self, off: usize, v: u64) -> Result {
        self.store(off, &v.to_le_bytes())
    }
    fn load_sized(&self, off: usize, size: usize) -> Result<u64> {
        match size {
            1 => self.load::<1>(off).map(|b| u64::from(b[0])),
            2 => self
                .load::<2>(off)
                .map(|b| u64::from(u16::from_le_bytes(b))),
            4 => self.load32(off).map(u64::from),
            8 => self.load64(off),
            _ => Err(EINVAL),
        }
    }
    fn store_sized(&self, off: usize, size: usize, v: u64) -> Result {
        match size {
            1 | 2 | 4 | 8 => self.store(off, &v.to_le_bytes()[..size]),
            _ => Err(EINVAL),
        }
    }
}

impl Drop for FakePage {
    fn drop(&mut self) {
        self.unpin();
    }
}

impl Pinner for Arc<FakeGuest> {
    type Page = FakePage;

    fn pin(&self, addr: u64, write: bool) -> Result<FakePage> {
        if addr / PAGE == self.fail.load(Ordering::Relaxed) {
            return Err(EFAULT);
        }
        // The page must exist, as vfio requires the address to be mapped.
        self.access(addr, PAGE as usize, |_| ())?;
        self.pins.fetch_add(1, Ordering::Relaxed);
        Ok(FakePage {
            guest: self.clone(),
            addr,
            writable: write,
            pinned: AtomicBool::new(true),
        })
    }

    fn rw(&self, addr: u64, buf: &mut [u8], write: bool) -> Result {
        let len = buf.len();
        self.access(addr, len, |s| {
            if write {
                s.copy_from_slice(buf)
            } else {
                buf.copy_from_slice(s)
            }
        })
    }
}
