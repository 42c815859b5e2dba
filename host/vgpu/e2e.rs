// SPDX-License-Identifier: GPL-2.0

//! KUnit: a whole vGPU driven end to end through in-memory guest memory, as a guest
//! driver drives it, with the software GPU behind it: ELSP to the shadow, the shadow to
//! the sim, the sim's end to the guest's CSB, status page, image head, interrupt
//! registers and MSI (Documentation/design.rst, paths 1 to 3).
//!
//! [`E2e`] is the guest: a [`FakeGuest`] of [`PAGES`] pages attached to a vGPU, brought
//! up as `guest/core` does it (PVINFO read, MSI, GGTT entries through the BAR0 window,
//! the blitter's execlist registers, GT interrupts, a 4-level PPGTT announced with g2v
//! notify 4, a BCS context image and its ring). Guest frame `f` is bound at GGTT address
//! `aperture_base + f * 4 KiB` for `f` below [`BOUND`]; the PPGTT maps [`VA`] + `k` pages
//! through one page table.
//!
//! Completion is asynchronous (the sim runs on its engines' workers): every wait polls
//! the guest's CSB write pointer, bounded by [`WAIT_MS`].

use super::{cfg, types, Vgpu};
use crate::{
    abi::{
        gpu_cmd::GpuCmd,
        gtt, lrc,
        pvinfo::{g2v, offset, PVINFO_OFFSET},
        regs::{self as r, ring, GTT_OFFSET},
    },
    gpu::PAGE,
    mm::{
        guest::{fake::FakeGuest, AnyPinner},
        partition::{self, Lease},
    },
    sched::Sched,
    vfio::{uapi, VfioOps},
};
use kernel::{
    debugfs,
    prelude::*,
    sync::Arc,
    time::{delay::fsleep, Delta},
};

/// Pages of guest memory.
const PAGES: usize = 512;
/// Guest frames of the PPGTT tree: PML4, PDP, PD, PT.
const PML4: u64 = 1;
const PDP: u64 = 2;
const PD: u64 = 3;
const PT: u64 = 4;
/// The data page PPGTT slot 0 maps first.
const DATA: u64 = 8;
/// The page PPGTT slot 0 is moved to by a rewrite.
const DATA2: u64 = 9;
/// The blit surface, two pages (PPGTT slots 2 and 3).
const SURF: u64 = 10;
/// The page GGTT stores land in.
const GDATA: u64 = 12;
/// The batch page (PPGTT slot 1).
const BATCH: u64 = 13;
/// The BCS context image, two pages.
const IMAGE: u64 = 16;
/// The ring, one page.
const RING: u64 = 20;
/// The engine's status page.
const HWSP: u64 = 24;
/// Frames bound in the GGTT, at the same page of the aperture slice.
const BOUND: u64 = 32;
/// The PPGTT address of slot 0: indices 1, 2, 3 and 0 at the four levels.
const VA: u64 = (1 << 39) | (2 << 30) | (3 << 21);
/// PPGTT slots of the page table.
const SLOT_DATA: u64 = 0;
const SLOT_BATCH: u64 = 1;
const SLOT_SURF: u64 = 2;
/// A slot with no entry.
const SLOT_HOLE: u64 = 4;
/// The context id of the guest's context.
const CTX_ID: u32 = 0x2a;
/// i915's CSB reset value (`reset_csb_pointers`): the next entry is 0.
const CSB_RESET: u32 = lrc::csb::ENTRIES - 1;
/// How long a wait may take at most.
const WAIT_MS: u32 = 5000;
/// One poll of a wait.
const POLL_MS: u32 = 10;
/// The engine's interrupts the guest enables.
const IRQS: u32 = r::GT_USER_INTERRUPT | r::GT_CONTEXT_SWITCH | r::GT_CS_MASTER_ERROR;

const BAR0: u32 = uapi::region::BAR0;

/// Polls `f` every [`POLL_MS`] until it holds or [`WAIT_MS`] passed; whether it held.
fn wait_until(mut f: impl FnMut() -> bool) -> bool {
    for _ in 0..WAIT_MS / POLL_MS {
        if f() {
            return true;
        }
        fsleep(Delta::from_millis(POLL_MS.into()));
    }
    f()
}

/// A present, writable PPGTT entry for guest frame `frame`.
fn pte(frame: u64) -> u64 {
    gtt::encode_pte(frame * PAGE, true, 0)
}

/// The backend and queues of a test; the scheduler lets go of the backend on drop.
struct TestGpu(Arc<Sched>);

impl Drop for TestGpu {
    fn drop(&mut self) {
        let _ = self.0.shutdown();
    }
}

/// A guest driving one vGPU's blitter with one context.
pub(super) struct E2e {
    /// The vGPU (dropped first, then the queues, then guest memory).
    pub(super) v: Pin<KBox<Vgpu>>,
    _gpu: TestGpu,
    /// Guest memory.
    pub(super) g: Arc<FakeGuest>,
    /// The aperture slice's base (GGTT address of frame 0).
    ap: u64,
    /// The ring tail (bytes) after what was emitted.
    pub(super) tail: u32,
    /// The CSB write pointer the guest expects next in its status page.
    csb: u32,
}

impl E2e {
    /// A vGPU of the smallest type with a brought-up guest behind it; `None` if any
    /// step failed.
    pub(super) fn new(root: &debugfs::Dir) -> Option<Self> {
        let gpu = crate::gpu::backend().ok()?;
        let sched = Sched::new(gpu.clone()).ok()?;
        let t = TestGpu(sched.clone());
        let p = partition::shared().ok()?;
        let lease = Lease::take(&p, &types::TYPES[0].request).ok()?;
        let v = Vgpu::new(lease, 0, root, c"e2e", gpu, sched).ok()?;
        let v = KBox::pin_init(v, GFP_KERNEL).ok()?;
        let g = FakeGuest::new(PAGES).ok()?;
        v.mem.attach(AnyPinner::Fake(g.clone()));
        let ap = v.slice().aperture_base;
        let mut e = Self {
            v,
            _gpu: t,
            g,
            ap,
            tail: 0,
            csb: CSB_RESET,
        };
        e.bring_up().ok()?;
        Some(e)
    }

    /// GGTT address of guest frame `frame` (below [`BOUND`]).
    pub(super) fn gm(&self, frame: u64) -> u64 {
        self.ap + frame * PAGE
    }

    /// The descriptor of the guest's context.
    pub(super) fn desc(&self) -> u64 {
        lrc::desc::make(self.gm(IMAGE) as u32, CTX_ID)
    }

    /// Reads the BAR0 register at `off` (0 on error).
    pub(super) fn rd(&self, off: u32) -> u32 {
        let mut b = [0u8; 4];
        match self.v.read(BAR0, off.into(), &mut b) {
            Ok(()) => u32::from_le_bytes(b),
            Err(_) => 0,
        }
    }

    /// Writes the BAR0 register at `off`.
    pub(super) fn wr(&self, off: u32, val: u32) -> Result {
        self.v.write(BAR0, off.into(), &val.to_le_bytes())
    }

    /// The GGTT entry of GGTT address `gm`, read through the BAR0 window.
    pub(super) fn ggtt_entry(&self, gm: u64) -> u64 {
        let mut b = [0u8; 8];
        let off = u64::from(GTT_OFFSET) + (gm / PAGE) * 8;
        match self.v.read(BAR0, off, &mut b) {
            Ok(()) => u64::from_le_bytes(b),
            Err(_) => u64::MAX,
        }
    }

    /// Writes dwords into guest memory at guest address `addr`.
    pub(super) fn put(&self, addr: u64, dwords: &[u32]) -> Result {
        let mut bytes = KVec::with_capacity(4 * dwords.len(), GFP_KERNEL)?;
        for d in dwords {
            bytes.extend_from_slice(&d.to_le_bytes(), GFP_KERNEL)?;
        }
        self.v.mem.write(addr, &bytes)
    }

    /// Writes one 8-byte entry into guest memory, at once, as a guest CPU does.
    pub(super) fn put64(&self, addr: u64, v: u64) -> Result {
        self.v.mem.write(addr, &v.to_le_bytes())
    }

    /// The dword at offset `off` of guest frame `frame`.
    pub(super) fn peek(&self, frame: u64, off: u64) -> u32 {
        self.g.peek32(frame * PAGE + off)
    }

    /// Dword `i` of the guest's status page.
    pub(super) fn hwsp(&self, i: usize) -> u32 {
        self.peek(HWSP, 4 * i as u64)
    }

    /// CSB entry `i` of the guest's status page: (status, context id).
    pub(super) fn entry(&self, i: u32) -> (u32, u32) {
        let at = lrc::hwsp::CSB_BUF0 + 2 * i as usize;
        (self.hwsp(at), self.hwsp(at + 1))
    }

    /// Dword `i` of the guest image's register state page.
    pub(super) fn image(&self, i: usize) -> u32 {
        self.peek(IMAGE + u64::from(lrc::STATE_PAGE), 4 * i as u64)
    }

    /// Binds GGTT page `frame` to guest frame `frame` with one 8-byte write of the BAR0
    /// window.
    fn bind(&self, frame: u64) -> Result {
        let off = u64::from(GTT_OFFSET) + (self.gm(frame) / PAGE) * 8;
        let pte = (frame * PAGE) | gtt::PTE_PRESENT;
        self.v.write(BAR0, off, &pte.to_le_bytes())
    }

    /// The bring-up of `guest/core`: probe, MSI, GGTT, engine, interrupts, PPGTT (g2v
    /// notify 4), the context image. The ring starts empty.
    pub(super) fn bring_up(&mut self) -> Result {
        // Reading PVINFO makes the guest PV-aware (no failsafe on execlist enable).
        if self.rd(PVINFO_OFFSET) != 0x7654_4776 {
            return Err(EINVAL);
        }
        self.v.write(
            uapi::region::CONFIG,
            cfg::MSI_CAP as u64,
            &0x0001_0005u32.to_le_bytes(),
        )?;
        for f in 0..BOUND {
            self.bind(f)?;
        }
        // The status page's reset pattern (`bring_up`): entries all ones, the write
        // pointer at the last entry.
        let ones = [u32::MAX; 2 * lrc::csb::ENTRIES as usize];
        self.put(HWSP * PAGE + 4 * lrc::hwsp::CSB_BUF0 as u64, &ones)?;
        self.put(HWSP * PAGE + 4 * lrc::hwsp::CSB_WRITE as u64, &[CSB_RESET])?;
        self.csb = CSB_RESET;
        let b = r::BCS_BASE;
        let csb_ptr = 0xffff_0000 | (CSB_RESET << 8) | CSB_RESET;
        let errors = ring::EIR_INSTRUCTION | ring::EIR_PAGE_TABLE | ring::EIR_HANG;
        self.wr(b + ring::HWSTAM, !0)?;
        self.wr(b + ring::MODE, r::masked_enable(ring::MODE_RUN_LIST_ENABLE))?;
        self.wr(
            b + ring::MI_MODE,
            r::masked_disable(ring::MI_MODE_STOP_RING),
        )?;
        self.wr(b + ring::HWS_PGA, self.gm(HWSP) as u32)?;
        let _posting = self.rd(b + ring::HWS_PGA);
        self.wr(b + ring::CSB_PTR, csb_ptr)?;
        self.wr(b + ring::EMR, !0)?;
        self.wr(b + ring::EIR, !0)?;
        self.wr(b + ring::EMR, !errors)?;
        self.wr(b + ring::IMR, !r::gt_bits(r::GT_BCS_SHIFT, IRQS))?;
        self.wr(b + ring::CSB_PTR, csb_ptr)?;
        // `gen8_gt_irq_postinstall` for BCS, then the master.
        let en = r::gt_bits(r::GT_BCS_SHIFT, IRQS);
        self.wr(r::GT_IER, en)?;
        self.wr(r::GT_IMR, !en)?;
        self.wr(r::MASTER_IRQ, r::MASTER_IRQ_CONTROL)?;
        // The PPGTT: one path down to one page table.
        let [i4, i3, i2, _] = gtt::ppgtt_indices(VA);
        self.put64(PML4 * PAGE + 8 * i4 as u64, pte(PDP))?;
        self.put64(PDP * PAGE + 8 * i3 as u64, pte(PD))?;
        self.put64(PD * PAGE + 8 * i2 as u64, pte(PT))?;
        self.put64(PT * PAGE + 8 * SLOT_DATA, pte(DATA))?;
        self.put64(PT * PAGE + 8 * SLOT_BATCH, pte(BATCH))?;
        self.put64(PT * PAGE + 8 * SLOT_SURF, pte(SURF))?;
        self.put64(PT * PAGE + 8 * (SLOT_SURF + 1), pte(SURF + 1))?;
        self.put64(PT * PAGE + 8 * SLOT_HOLE, 0)?;
        // The image's state page, as `Context::new` fills it (4 KiB: on the heap).
        let mut st = KBox::<[u32; lrc::state::DWORDS]>::zeroed(GFP_KERNEL)?;
        lrc::init_state(&mut st[..], b).ok_or(EINVAL)?;
        let pml4 = PML4 * PAGE;
        st[lrc::state::CONTEXT_CONTROL] = r::masked_enable(
            lrc::CTX_CTRL_INHIBIT_SYN_CTX_SWITCH | lrc::CTX_CTRL_ENGINE_CTX_RESTORE_INHIBIT,
        );
        st[lrc::state::RING_HEAD] = 0;
        st[lrc::state::RING_TAIL] = 0;
        st[lrc::state::RING_START] = self.gm(RING) as u32;
        st[lrc::state::RING_CTL] = ring::CTL_VALID;
        st[lrc::state::PDP0_UDW] = (pml4 >> 32) as u32;
        st[lrc::state::PDP0_LDW] = pml4 as u32;
        self.put((IMAGE + u64::from(lrc::STATE_PAGE)) * PAGE, &st[..])?;
        self.tail = 0;
        // g2v: PVINFO pdp[0], then notify 4.
        self.wr(PVINFO_OFFSET + offset::PDP0_LO, pml4 as u32)?;
        self.wr(PVINFO_OFFSET + offset::PDP0_LO + 4, (pml4 >> 32) as u32)?;
        self.wr(
            PVINFO_OFFSET + offset::G2V_NOTIFY,
            g2v::PPGTT_L4_PAGE_TABLE_CREATE,
        )
    }

    /// Encodes `cmds`, padded with `MI_NOOP` to a qword.
    fn encode(cmds: &[GpuCmd<'_>]) -> Result<KVec<u32>> {
        let mut buf = [0u32; 16];
        let mut out = KVec::new();
        for c in cmds {
            let n = c.encode(&mut buf).map_err(|_| EINVAL)?;
            out.extend_from_slice(buf.get(..n).ok_or(EINVAL)?, GFP_KERNEL)?;
        }
        if out.len() % 2 != 0 {
            out.push(0, GFP_KERNEL)?;
        }
        Ok(out)
    }

    /// Writes `cmds` into the batch page.
    pub(super) fn batch(&self, cmds: &[GpuCmd<'_>]) -> Result {
        self.put(BATCH * PAGE, &Self::encode(cmds)?)
    }

    /// Emits `cmds` into the ring at the tail (no wrap: the tests stay in one page).
    pub(super) fn emit(&mut self, cmds: &[GpuCmd<'_>]) -> Result {
        let dwords = Self::encode(cmds)?;
        let bytes = 4 * dwords.len() as u32;
        if self.tail + bytes >= PAGE as u32 {
            return Err(ENOSPC);
        }
        self.put(RING * PAGE + u64::from(self.tail), &dwords)?;
        self.tail += bytes;
        Ok(())
    }

    /// The new tail into the image, then the ELSP write of `execlists_submit_ports`:
    /// port 1 (empty) first, each port's upper dword before its lower one.
    pub(super) fn submit(&mut self) -> Result {
        let at = (IMAGE + u64::from(lrc::STATE_PAGE)) * PAGE + 4 * lrc::state::RING_TAIL as u64;
        self.put(at, &[self.tail])?;
        let d = self.desc();
        for dw in [0, 0, (d >> 32) as u32, d as u32] {
            self.wr(r::BCS_BASE + ring::ELSP, dw)?;
        }
        // A submission from idle writes two CSB entries: in, and out.
        self.csb = (self.csb + 2) % lrc::csb::ENTRIES;
        Ok(())
    }

    /// Waits until the guest's CSB write pointer says the last submission ended.
    pub(super) fn wait(&self) -> bool {
        wait_until(|| self.hwsp(lrc::hwsp::CSB_WRITE) == self.csb)
    }

    /// Emits `cmds`, submits, and waits for the end; whether it ended in time.
    pub(super) fn run(&mut self, cmds: &[GpuCmd<'_>]) -> bool {
        self.emit(cmds).is_ok() && self.submit().is_ok() && self.wait()
    }

    /// The CSB entries the last submission wrote: (first, second).
    pub(super) fn last_pair(&self) -> ((u32, u32), (u32, u32)) {
        let n = lrc::csb::ENTRIES;
        (self.entry((self.csb + n - 1) % n), self.entry(self.csb))
    }
}

#[kunit_tests(gvtpv_host_e2e)]
mod tests {
    use super::*;
    use crate::{cmd_parser::Reason, gpu::Engine, mm::ppgtt::SyncMode};
    use core::sync::atomic::{AtomicU32, AtomicU64};
    use kernel::sync::atomic::Atomic;

    const ROOT: &CStr = c"gvtpv_host_e2e";

    /// A device counter.
    fn n(c: &Atomic<u64>) -> u64 {
        c.load(kernel::sync::atomic::Relaxed)
    }

    /// A counter of the submission path.
    fn w(c: &AtomicU64) -> u64 {
        c.load(core::sync::atomic::Ordering::Relaxed)
    }

    /// The offences counter of the submission path.
    fn w32(c: &AtomicU32) -> u32 {
        c.load(core::sync::atomic::Ordering::Relaxed)
    }

    /// `IDLE_TO_ACTIVE` (context id 0, as GVT-g), then `COMPLETE | ACTIVE_TO_IDLE` of
    /// the guest's context.
    const IN_OUT: ((u32, u32), (u32, u32)) = (
        (lrc::csb::IDLE_ACTIVE, 0),
        (lrc::csb::COMPLETE | lrc::csb::ACTIVE_IDLE, CTX_ID),
    );

    fn sdi(addr: u64, ggtt: bool, value: u32) -> GpuCmd<'static> {
        GpuCmd::StoreDataImm {
            addr,
            ggtt,
            value: value.into(),
            qword: false,
        }
    }

    #[test]
    fn store_dword_through_ggtt_and_ppgtt() {
        let root = debugfs::Dir::new(ROOT);
        let e = E2e::new(&root);
        assert!(e.is_some());
        let Some(mut e) = e else { return };
        assert_eq!(w(&e.v.work.g2v_create), 1);
        assert_eq!(e.v.ppgtt.lock().stats().roots, 1);
        let c = &e.v.counters;
        let msi = n(&c.irq_msi_unwired) + n(&c.irq_msi);
        let injected = n(&c.irq_injected);
        let gdata = e.gm(GDATA) + 0x80;
        let ok = e.run(&[
            sdi(VA + 0x40, false, 0xc0ff_ee01),
            sdi(gdata, true, 0xc0ff_ee02),
            GpuCmd::UserInterrupt,
        ]);
        assert!(ok);
        // Both stores reached guest memory, through the shadow PPGTT and the GGTT.
        assert_eq!(e.peek(DATA, 0x40), 0xc0ff_ee01);
        assert_eq!(e.peek(GDATA, 0x80), 0xc0ff_ee02);
        // The image's head at the tail (40 bytes: ten dwords).
        assert_eq!(e.tail, 40);
        assert_eq!(e.image(lrc::state::RING_HEAD), e.tail);
        // The guest's status page: in, then out, write pointer 1.
        assert_eq!(e.entry(0), IN_OUT.0);
        assert_eq!(e.entry(1), IN_OUT.1);
        assert_eq!(e.hwsp(lrc::hwsp::CSB_WRITE), 1);
        // The registers agree.
        let b = r::BCS_BASE;
        assert_eq!(e.rd(b + ring::CSB_PTR) & 7, 1);
        assert_eq!(e.rd(b + ring::CSB), lrc::csb::IDLE_ACTIVE);
        assert_eq!(e.rd(b + ring::CSB + 4), 0);
        assert_eq!(e.rd(b + ring::CSB + 8), IN_OUT.1 .0);
        assert_eq!(e.rd(b + ring::CSB + 12), CTX_ID);
        let s = ring::status::EL0_VALID
            | ring::status::EL0_ACTIVE
            | ring::status::EL1_VALID
            | ring::status::EL1_ACTIVE
            | ring::status::QUEUE_FULL;
        assert_eq!(e.rd(b + ring::EXECLIST_STATUS_LO) & s, 0);
        assert_eq!(e.rd(b + ring::EXECLIST_STATUS_HI), 0);
        assert_eq!(e.rd(b + ring::EIR), 0);
        // GT IIR bank 0: the blitter's context switch (24) and user interrupt (16).
        let iir = e.rd(r::GT_IIR);
        let want = r::gt_bits(r::GT_BCS_SHIFT, r::GT_CONTEXT_SWITCH | r::GT_USER_INTERRUPT);
        assert_eq!(want, (1 << 24) | (1 << 16));
        assert_eq!(iir, want);
        assert_eq!(
            e.rd(r::MASTER_IRQ),
            r::MASTER_IRQ_CONTROL | r::MASTER_GT_BCS
        );
        // Delivered through MSI (no eventfd in KUnit: counted as unwired).
        let c = &e.v.counters;
        assert!(n(&c.irq_msi_unwired) + n(&c.irq_msi) > msi);
        assert!(n(&c.irq_injected) > injected);
        assert!(n(&c.inject_user) >= 1);
        assert_eq!(n(&c.csb_hwsp_fault), 0);
        let wk = &e.v.work;
        assert_eq!(w(&wk.submitted), 1);
        assert_eq!(w(&wk.completed), 1);
        assert_eq!(w(&wk.user_interrupts), 1);
        assert_eq!(w(&wk.refused) + w(&wk.faulted) + w(&wk.hung), 0);
        let st = e.v.sched.stats(Engine::Bcs);
        assert_eq!((st.dispatched, st.completed, st.spurious), (1, 1, 0));
    }

    #[test]
    fn blit_fill_in_ppgtt() {
        let root = debugfs::Dir::new(ROOT);
        let e = E2e::new(&root);
        assert!(e.is_some());
        let Some(mut e) = e else { return };
        // The surface starts as something else than the colour.
        let words = 2 * PAGE as usize / 4;
        let mut fill = KVec::new();
        assert!(fill.extend_with(words, 0x5a5a_5a5au32, GFP_KERNEL).is_ok());
        assert!(e.put(SURF * PAGE, &fill).is_ok());
        let color = 0xa1b2_c3d4;
        // 1024 pixels of 32 bits a row, two rows: both pages, every byte.
        let ok = e.run(&[GpuCmd::ColorBlt {
            dst: VA + SLOT_SURF * PAGE,
            pitch: PAGE as u16,
            from: (0, 0),
            to: (1024, 2),
            color,
        }]);
        assert!(ok);
        let wrong = (0..words as u64)
            .filter(|i| e.peek(SURF, 4 * i) != color)
            .count();
        assert_eq!(wrong, 0);
        // Nothing beyond the surface moved.
        assert_eq!(e.peek(SURF + 2, 0), 0);
        assert_eq!(e.peek(SURF - 1, PAGE - 4), 0);
        assert_eq!(e.v.gpu.stats().blit_bytes, 2 * PAGE);
        assert_eq!(e.image(lrc::state::RING_HEAD), e.tail);
        assert_eq!(e.last_pair(), IN_OUT);
        assert_eq!(w(&e.v.work.completed), 1);
        assert_eq!(e.rd(r::BCS_BASE + ring::EIR), 0);
    }

    #[test]
    fn ppgtt_entry_rewrite_is_seen() {
        let root = debugfs::Dir::new(ROOT);
        let e = E2e::new(&root);
        assert!(e.is_some());
        let Some(mut e) = e else { return };
        // No KVM: the shadow re-validates before each submission.
        assert!(e.v.ppgtt.lock().mode() == SyncMode::Revalidate);
        assert!(e.run(&[sdi(VA + 0x100, false, 0x1111_1111)]));
        assert_eq!(e.peek(DATA, 0x100), 0x1111_1111);
        let before = e.v.ppgtt.lock().stats();
        // The guest moves slot 0 to another page with one 8-byte store.
        assert!(e.put64(PT * PAGE + 8 * SLOT_DATA, pte(DATA2)).is_ok());
        assert!(e.run(&[sdi(VA + 0x100, false, 0x2222_2222)]));
        assert_eq!(e.peek(DATA2, 0x100), 0x2222_2222);
        assert_eq!(e.peek(DATA, 0x100), 0x1111_1111);
        let after = e.v.ppgtt.lock().stats();
        assert!(after.revalidations > before.revalidations);
        assert!(after.entries_changed > before.entries_changed);
        assert_eq!(after.roots, 1);
        assert_eq!(e.last_pair(), IN_OUT);
        assert_eq!(e.hwsp(lrc::hwsp::CSB_WRITE), 3);
        assert_eq!(e.image(lrc::state::RING_HEAD), e.tail);
        assert_eq!(w(&e.v.work.submitted), 2);
        assert_eq!(w(&e.v.work.completed), 2);
    }

    #[test]
    fn refused_workloads_complete_visibly() {
        let root = debugfs::Dir::new(ROOT);
        let e = E2e::new(&root);
        assert!(e.is_some());
        let Some(mut e) = e else { return };
        let b = r::BCS_BASE;
        // A PPGTT batch writing RING_HWSTAM, which no guest may write from a batch.
        let pairs = [b + ring::HWSTAM, 0x1234];
        let lri = GpuCmd::LoadRegisterImm {
            pairs: &pairs,
            posted: false,
        };
        assert!(e.batch(&[lri, GpuCmd::BatchBufferEnd]).is_ok());
        let injected = n(&e.v.counters.inject_error);
        let ok = e.run(&[GpuCmd::BatchBufferStart {
            addr: VA + SLOT_BATCH * PAGE,
            ppgtt: true,
            second_level: false,
        }]);
        assert!(ok);
        assert_eq!(e.rd(b + ring::EIR), ring::EIR_INSTRUCTION);
        let err = r::gt_bits(r::GT_BCS_SHIFT, r::GT_CS_MASTER_ERROR);
        assert_eq!(err, 1 << 19);
        assert_eq!(e.rd(r::GT_IIR) & err, err);
        assert!(n(&e.v.counters.inject_error) > injected);
        // Its commands are skipped: the head at the tail, in and out in the CSB.
        assert_eq!(e.image(lrc::state::RING_HEAD), e.tail);
        assert_eq!(e.last_pair(), IN_OUT);
        let wk = &e.v.work;
        assert_eq!(w(&wk.refused), 1);
        assert_eq!(w(&wk.refused_parser[Reason::Register.index()]), 1);
        assert_eq!(w(&wk.submitted), 0);
        assert_eq!(w(&wk.completed), 0);
        assert_eq!(w32(&wk.offences), 1);
        // The guest acknowledges; a good submission still works and forgives.
        assert!(e.wr(b + ring::EIR, ring::EIR_INSTRUCTION).is_ok());
        assert!(e.wr(r::GT_IIR, !0).is_ok());
        assert_eq!(e.rd(b + ring::EIR), 0);
        assert_eq!(e.rd(r::GT_IIR), 0);
        assert!(e.run(&[sdi(VA + 0x200, false, 0x600d)]));
        assert_eq!(e.peek(DATA, 0x200), 0x600d);
        assert_eq!(e.last_pair(), IN_OUT);
        assert_eq!(e.image(lrc::state::RING_HEAD), e.tail);
        assert_eq!(e.rd(b + ring::EIR), 0);
        let wk = &e.v.work;
        assert_eq!(w(&wk.completed), 1);
        assert_eq!(w32(&wk.offences), 0);
    }

    #[test]
    fn fault_and_hang_are_reported() {
        let root = debugfs::Dir::new(ROOT);
        let e = E2e::new(&root);
        assert!(e.is_some());
        let Some(mut e) = e else { return };
        let b = r::BCS_BASE;
        let err = r::gt_bits(r::GT_BCS_SHIFT, r::GT_CS_MASTER_ERROR);
        // A store through a slot with no entry: the sim faults.
        assert!(e.run(&[sdi(VA + SLOT_HOLE * PAGE, false, 0xbad)]));
        assert_eq!(e.rd(b + ring::EIR), ring::EIR_PAGE_TABLE);
        assert_eq!(e.rd(r::GT_IIR) & err, err);
        assert_eq!(e.image(lrc::state::RING_HEAD), e.tail);
        assert_eq!(e.last_pair(), IN_OUT);
        let wk = &e.v.work;
        assert_eq!(w(&wk.submitted), 1);
        assert_eq!(w(&wk.faulted), 1);
        assert_eq!(w(&wk.completed), 0);
        assert_eq!(e.v.gpu.stats().faults, 1);
        assert!(e.wr(b + ring::EIR, ring::EIR_PAGE_TABLE).is_ok());
        assert!(e.wr(r::GT_IIR, !0).is_ok());
        // A ring that starts a GGTT batch in itself (a loop): the parser refuses it
        // before anything runs.
        let ring_gm = e.gm(RING);
        assert!(e.run(&[GpuCmd::BatchBufferStart {
            addr: ring_gm,
            ppgtt: false,
            second_level: false,
        }]));
        assert_eq!(e.rd(b + ring::EIR), ring::EIR_INSTRUCTION);
        assert_eq!(e.rd(r::GT_IIR) & err, err);
        assert_eq!(e.image(lrc::state::RING_HEAD), e.tail);
        assert_eq!(e.last_pair(), IN_OUT);
        let wk = &e.v.work;
        assert_eq!(w(&wk.refused_parser[Reason::BatchInRing.index()]), 1);
        assert_eq!(w(&wk.refused), 1);
        assert_eq!(w(&wk.hung), 0);
        assert!(e.wr(b + ring::EIR, ring::EIR_INSTRUCTION).is_ok());
        // The engine took no harm: a good store runs.
        assert!(e.run(&[sdi(VA + 0x300, false, 0x0c0c)]));
        assert_eq!(e.peek(DATA, 0x300), 0x0c0c);
        assert_eq!(e.rd(b + ring::EIR), 0);
        assert_eq!(w(&e.v.work.completed), 1);
        assert_eq!(w32(&e.v.work.offences), 0);
    }

    #[test]
    fn reset_cancels_and_frees() {
        let root = debugfs::Dir::new(ROOT);
        let e = E2e::new(&root);
        assert!(e.is_some());
        let Some(mut e) = e else { return };
        let free = e.v.window.free_pages();
        assert!(e.run(&[sdi(VA + 0x40, false, 1)]));
        assert_eq!(e.peek(DATA, 0x40), 1);
        assert!(e.v.ppgtt.lock().stats().pins > 0);
        assert!(e.v.mem.stats().live > 0);
        // One more in flight (or queued) when the reset comes.
        assert!(e.emit(&[sdi(VA + 0x44, false, 2)]).is_ok());
        assert!(e.submit().is_ok());
        assert!(e.v.reset().is_ok());
        // Every workload is accounted for when the reset returns.
        let wk = &e.v.work;
        assert_eq!(w(&wk.submitted), 2);
        assert_eq!(
            w(&wk.completed) + w(&wk.cancelled) + w(&wk.faulted) + w(&wk.hung),
            2
        );
        // The GGTT entries, the shadow PPGTT, the host window and the pins are gone.
        let mapped = (0..BOUND).filter(|&f| e.ggtt_entry(e.gm(f)) != 0).count();
        assert_eq!(mapped, 0);
        let pp = e.v.ppgtt.lock().stats();
        assert_eq!((pp.roots, pp.tables, pp.pins), (0, 0, 0));
        assert_eq!(e.v.window.free_pages(), free);
        assert!(wait_until(|| e.v.mem.stats().live == 0));
        assert_eq!(e.v.mem.stats().live, 0);
        assert!(e.g.pins() > 0);
        assert_eq!(e.g.pins(), e.g.unpins());
        // The device model is at power-on.
        let b = r::BCS_BASE;
        assert_eq!(e.rd(b + ring::CSB_PTR) & 7, lrc::csb::PTR_NONE);
        assert_eq!(e.rd(b + ring::HWS_PGA), 0);
        assert_eq!(e.rd(r::GT_IIR), 0);
        // And usable again after a new bring-up.
        assert!(e.bring_up().is_ok());
        assert!(e.run(&[sdi(VA + 0x48, false, 3)]));
        assert_eq!(e.peek(DATA, 0x48), 3);
        assert_eq!(e.last_pair(), IN_OUT);
    }
}
