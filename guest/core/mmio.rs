// SPDX-License-Identifier: GPL-2.0

//! BAR0 after identification: registers, the GGTT window, PVINFO notifications and
//! forcewake.
//!
//! The mapping is device managed (`Devres`), so it can be shared with the interrupt
//! handler; every access goes through [`Mmio::with`], which fails with `ENODEV` once the
//! device is unbound. Nothing here sleeps while holding the mapping.

use super::regs::*;
use crate::abi::{gen, pvinfo::g2v, regs as abi};
use kernel::{
    devres::Devres,
    io::Io,
    new_mutex, pci,
    prelude::*,
    sync::Mutex,
    time::{delay::fsleep, Delta, Instant, Monotonic},
};

/// Size of BAR0.
pub(crate) const BAR0_SIZE: usize = gen::BAR0_SIZE as usize;

/// The mapped BAR0.
pub(crate) type Bar0 = pci::Bar<'static, BAR0_SIZE>;

/// How long i915 waits for a forcewake acknowledgement (`FORCEWAKE_ACK_TIMEOUT_MS`).
pub(crate) const FORCEWAKE_ACK_TIMEOUT: Delta = Delta::from_millis(50);

/// Reads one forcewake acknowledgement.
type AckFn = fn(&Bar0) -> Result<bool>;

/// BAR0 of a bound vGPU.
#[pin_data]
pub(crate) struct Mmio {
    bar: Devres<Bar0>,
    /// Serialises the PVINFO `pdp[0]` + `g2v_notify` pairs: one notification at a time,
    /// as i915 writes them under its uncore lock.
    #[pin]
    notify: Mutex<()>,
}

/// Why forcewake failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ForcewakeTimeout(pub(crate) &'static str);

impl Mmio {
    /// Takes over a mapped BAR0.
    pub(crate) fn new(bar: Devres<Bar0>) -> impl PinInit<Self> {
        pin_init!(Self {
            bar,
            notify <- new_mutex!((), "gvtpv_guest::Mmio::notify"),
        })
    }

    /// Runs `f` on the mapping; `ENODEV` if the device is gone.
    ///
    /// `f` runs in an RCU read-side section: it must not sleep.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&Bar0) -> Result<R>) -> Result<R> {
        self.bar.try_access_with(f).unwrap_or(Err(ENODEV))
    }

    /// Writes GGTT entry `index` with one 8-byte store (`gen8_set_pte`).
    pub(crate) fn write_gtt(&self, index: u64, pte: u64) -> Result {
        let off = gtt_offset(index)?;
        self.with(|b| b.try_write64(pte, off))
    }

    /// Reads GGTT entry `index`.
    pub(crate) fn read_gtt(&self, index: u64) -> Result<u64> {
        let off = gtt_offset(index)?;
        self.with(|b| b.try_read64(off))
    }

    /// Invalidates the GGTT TLBs (`gen8_ggtt_invalidate`).
    pub(crate) fn invalidate_ggtt(&self) -> Result {
        self.with(|b| b.try_write_reg(GFX_FLSH_CNTL::zeroed().with_enable(true)))
    }

    /// Tells the host that the 4-level PPGTT rooted at `pml4` was created (`create`) or
    /// is about to be destroyed (`gen8_ppgtt_notify_vgt`): `pdp[0]` then `g2v_notify`.
    pub(crate) fn notify_ppgtt(&self, pml4: u64, create: bool) -> Result {
        let what = if create {
            g2v::PPGTT_L4_PAGE_TABLE_CREATE
        } else {
            g2v::PPGTT_L4_PAGE_TABLE_DESTROY
        };
        let _guard = self.notify.lock();
        self.with(|b| {
            b.try_write_reg(PVINFO_PDP0_LO::from(pml4 as u32))?;
            b.try_write_reg(PVINFO_PDP0_HI::from((pml4 >> 32) as u32))?;
            b.try_write_reg(PVINFO_G2V_NOTIFY::from(what))
        })
    }

    /// Takes forcewake on the render, GT and media domains as i915 does
    /// (`fw_domains_get_normal`): wait for each ack to clear, request each, wait for each
    /// ack, at most [`FORCEWAKE_ACK_TIMEOUT`] per wait.
    ///
    /// # Errors
    ///
    /// [`ForcewakeTimeout`] naming the domain, or the access error as `Err(Err(_))`.
    pub(crate) fn forcewake_get(&self) -> Result<Result<(), ForcewakeTimeout>> {
        let acks: [(&'static str, AckFn); 3] = [
            ("render", |b| Ok(b.try_read(FORCEWAKE_ACK_RENDER)?.kernel())),
            ("gt", |b| Ok(b.try_read(FORCEWAKE_ACK_GT)?.kernel())),
            ("media", |b| Ok(b.try_read(FORCEWAKE_ACK_MEDIA)?.kernel())),
        ];
        for (name, ack) in acks {
            if !self.poll(|b| Ok(!ack(b)?), FORCEWAKE_ACK_TIMEOUT)? {
                return Ok(Err(ForcewakeTimeout(name)));
            }
        }
        self.with(|b| {
            b.try_write_reg(
                FORCEWAKE_RENDER::zeroed()
                    .with_kernel_mask(true)
                    .with_kernel(true),
            )?;
            b.try_write_reg(
                FORCEWAKE_GT::zeroed()
                    .with_kernel_mask(true)
                    .with_kernel(true),
            )?;
            b.try_write_reg(
                FORCEWAKE_MEDIA::zeroed()
                    .with_kernel_mask(true)
                    .with_kernel(true),
            )
        })?;
        for (name, ack) in acks {
            if !self.poll(ack, FORCEWAKE_ACK_TIMEOUT)? {
                return Ok(Err(ForcewakeTimeout(name)));
            }
        }
        Ok(Ok(()))
    }

    /// Releases forcewake on all three domains (`fw_domain_put`).
    pub(crate) fn forcewake_put(&self) -> Result {
        self.with(|b| {
            b.try_write_reg(FORCEWAKE_RENDER::zeroed().with_kernel_mask(true))?;
            b.try_write_reg(FORCEWAKE_GT::zeroed().with_kernel_mask(true))?;
            b.try_write_reg(FORCEWAKE_MEDIA::zeroed().with_kernel_mask(true))
        })
    }

    /// Polls `cond` every 10 us up to 100 us, then every 1 ms, until it holds or `timeout`
    /// passed; `Ok(false)` on timeout.
    pub(crate) fn poll(
        &self,
        cond: impl Fn(&Bar0) -> Result<bool>,
        timeout: Delta,
    ) -> Result<bool> {
        let start: Instant<Monotonic> = Instant::now();
        // Bounded by the clock; the count only guards against a clock that stands still.
        for i in 0..100_000u32 {
            if self.with(&cond)? {
                return Ok(true);
            }
            if start.elapsed() > timeout {
                return Ok(false);
            }
            fsleep(if i < 10 {
                Delta::from_micros(10)
            } else {
                Delta::from_millis(1)
            });
        }
        Ok(false)
    }
}

/// BAR0 offset of GGTT entry `index`; `EINVAL` past the 4 GiB GGTT.
fn gtt_offset(index: u64) -> Result<usize> {
    let off = index.checked_mul(gen::GGTT_PTE_SIZE).ok_or(EINVAL)?;
    if off >= u64::from(abi::GTT_SIZE) {
        return Err(EINVAL);
    }
    Ok(abi::GTT_OFFSET as usize + off as usize)
}
