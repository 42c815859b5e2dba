// SPDX-License-Identifier: GPL-2.0

//! Live selftests against the vGPU, as i915 has them (`selftests/i915_live_selftests.h`):
//! with `selftests=1` they run after bring-up, inside probe, and print KTAP.
//!
//! Every test builds what it needs (a PPGTT, contexts, buffers bound in it, batches) in a
//! [`Fixture`], runs work, waits for it with a timeout and checks the result with the CPU.
//! A test that fails leaves its fixture to the [`Gpu`] until teardown: the device may
//! still use that memory. The hostile tests expect the host to refuse the work and report
//! it (the refused seqno, `RING_EIR`, the CS master error interrupt), then check that the
//! next good submission still works.

pub(crate) mod ktap;

use super::{
    context::Context,
    engine::Engine,
    gpu::{BringUpError, Gpu},
    mem::{GpuMem, PAGE},
    ppgtt::Ppgtt,
    Access, Batch, Binder, EngineId, Seqno, Submitter, WaitError,
};
use crate::abi::{
    gpu_cmd::GpuCmd,
    gtt::{SZ_2M, SZ_4K, SZ_64K},
    lrc, regs as abi,
};
use core::fmt;
use kernel::{
    device::{Bound, Device},
    prelude::*,
    sync::{atomic::Relaxed, Arc},
    time::{delay::fsleep, Delta, Instant, Monotonic},
};
use ktap::{Console, Ktap, Outcome};

/// PPGTT address of the first batch of a test.
const BATCH: u64 = 0x1_0000;
/// PPGTT address of a second batch.
const BATCH2: u64 = 0x2_0000;
/// PPGTT address of the first data buffer.
const DATA: u64 = 0x10_0000;
/// PPGTT address of a second data buffer.
const DATA2: u64 = 0x20_0000;

/// The tests, in order.
const TESTS: &[(&str, Test)] = &[
    ("bring_up", bring_up),
    ("store_dword_rcs", store_dword_rcs),
    ("store_dword_bcs", store_dword_bcs),
    ("store_dword_ggtt", store_dword_ggtt),
    ("xy_color_blt", xy_color_blt),
    ("xy_src_copy_blt", xy_src_copy_blt),
    ("second_level_batch", second_level_batch),
    ("huge_2m", huge_2m),
    ("huge_64k", huge_64k),
    ("ppgtt_rewrite", ppgtt_rewrite),
    ("two_contexts_one_elsp", two_contexts_one_elsp),
    ("tiny_submissions_1000", tiny_submissions),
    ("hostile_ggtt_outside_balloon", hostile_ggtt_outside_balloon),
    ("hostile_frame_outside_ram", hostile_frame_outside_ram),
    ("hostile_privileged_lri", hostile_privileged_lri),
    ("hostile_batch_loop", hostile_batch_loop),
    ("hostile_bad_descriptor", hostile_bad_descriptor),
];

type Test = fn(&mut Cx<'_>, &mut Fixture) -> Result;

/// What a test runs with.
struct Cx<'a> {
    dev: &'a Device<Bound>,
    gpu: &'a Gpu,
    /// How long to wait for one submission.
    timeout: Delta,
    ktap: Ktap<Console>,
}

impl Cx<'_> {
    fn diag(&mut self, args: fmt::Arguments<'_>) {
        self.ktap.diag(args);
    }
}

/// Fails the test with a diagnostic unless `cond` holds.
macro_rules! check {
    ($cx:expr, $cond:expr, $($arg:tt)+) => {
        if !$cond {
            $cx.diag(format_args!($($arg)+));
            return Err(EIO);
        }
    };
}

/// Everything a test allocated that the device may touch.
struct Fixture {
    ppgtts: KVec<Arc<Ppgtt>>,
    contexts: KVec<Arc<Context>>,
    mems: KVec<Arc<GpuMem<u32>>>,
}

impl Fixture {
    fn new() -> Self {
        Self {
            ppgtts: KVec::new(),
            contexts: KVec::new(),
            mems: KVec::new(),
        }
    }

    fn ppgtt(&mut self, cx: &Cx<'_>) -> Result<Arc<Ppgtt>> {
        let p = Ppgtt::new(cx.dev, cx.gpu.mmio().clone(), true)?;
        self.ppgtts.push(p.clone(), GFP_KERNEL)?;
        Ok(p)
    }

    fn context(&mut self, cx: &Cx<'_>, e: EngineId, ppgtt: &Arc<Ppgtt>) -> Result<Arc<Context>> {
        let c = cx.gpu.engine(e).create_context(cx.dev, ppgtt.clone())?;
        self.contexts.push(c.clone(), GFP_KERNEL)?;
        Ok(c)
    }

    fn keep(&mut self, m: GpuMem<u32>) -> Result<Arc<GpuMem<u32>>> {
        let m = Arc::new(m, GFP_KERNEL)?;
        self.mems.push(m.clone(), GFP_KERNEL)?;
        Ok(m)
    }

    /// `pages` zeroed pages mapped at `va` of `ppgtt`.
    fn buffer(
        &mut self,
        cx: &Cx<'_>,
        ppgtt: &Ppgtt,
        va: u64,
        pages: usize,
    ) -> Result<Arc<GpuMem<u32>>> {
        let m = self.keep(GpuMem::new(cx.dev, pages)?)?;
        map(cx, ppgtt, &m.page_list()?, va)?;
        Ok(m)
    }

    /// A batch at `va` of `ppgtt`: `cmds`, then `MI_BATCH_BUFFER_END`, padded to 8 bytes.
    fn batch(
        &mut self,
        cx: &Cx<'_>,
        ppgtt: &Ppgtt,
        va: u64,
        cmds: &Cmds,
    ) -> Result<(Arc<GpuMem<u32>>, Batch)> {
        let mut end = [0u32; 2];
        let n = GpuCmd::BatchBufferEnd
            .encode(&mut end)
            .map_err(|_| EINVAL)?;
        let total = (cmds.n + n).next_multiple_of(2);
        let m = self.buffer(cx, ppgtt, va, 1)?;
        m.write_slice(0, cmds.as_slice())?;
        // The padding is MI_NOOP (zero), as the page already is.
        m.write_slice(cmds.n, &end[..n])?;
        let len = u32::try_from(total * 4).map_err(|_| EINVAL)?;
        Ok((m, Batch { addr: va, len }))
    }
}

/// Allocates the tables for `pages` at `va` and binds them.
fn map(cx: &Cx<'_>, ppgtt: &Ppgtt, pages: &[u64], va: u64) -> Result {
    ppgtt.allocate_va_range(cx.dev, va, (pages.len() * PAGE) as u64)?;
    ppgtt.bind(va, pages, Access::ReadWrite)
}

/// A short command stream built on the stack.
struct Cmds {
    buf: [u32; 132],
    n: usize,
}

impl Cmds {
    fn new() -> Self {
        Self {
            buf: [0; 132],
            n: 0,
        }
    }

    fn push(&mut self, c: GpuCmd<'_>) -> Result<&mut Self> {
        let used = c
            .encode(self.buf.get_mut(self.n..).ok_or(ENOSPC)?)
            .map_err(|_| EINVAL)?;
        self.n += used;
        Ok(self)
    }

    fn as_slice(&self) -> &[u32] {
        &self.buf[..self.n]
    }
}

/// `MI_STORE_DATA_IMM` of a dword through the PPGTT.
fn store(addr: u64, value: u32) -> GpuCmd<'static> {
    GpuCmd::StoreDataImm {
        addr,
        ggtt: false,
        value: u64::from(value),
        qword: false,
    }
}

/// Waits for `seqno` and says why not.
fn wait(cx: &mut Cx<'_>, e: EngineId, ctx: &Arc<Context>, seqno: Seqno, timeout: Delta) -> Result {
    match cx.gpu.engine(e).wait(ctx, seqno, timeout) {
        Ok(()) => Ok(()),
        Err(w) => {
            cx.diag(format_args!(
                "{}: seqno {seqno} of context {}: {:?} (ring head in image {:#x})",
                e.name(),
                ctx.id(),
                w,
                ctx.image_head().unwrap_or(u32::MAX)
            ));
            Err(w.into())
        }
    }
}

/// Submits `batch` on `ctx` and waits for it.
fn run(cx: &mut Cx<'_>, ctx: &Arc<Context>, batch: Batch) -> Result {
    let e = ctx.engine();
    let seqno = cx.gpu.engine(e).submit(ctx, batch)?;
    wait(cx, e, ctx, seqno, cx.timeout)
}

/// Polls `cond` every millisecond for up to `timeout`.
fn eventually(timeout: Delta, cond: impl Fn() -> bool) -> bool {
    let start: Instant<Monotonic> = Instant::now();
    while !cond() {
        if start.elapsed() > timeout {
            return false;
        }
        fsleep(Delta::from_millis(1));
    }
    true
}

/// Runs the selftests and prints KTAP. `gpu` is `Err` if bring-up failed: every test
/// then fails with the reason.
pub(crate) fn run_all(
    dev: &Device<Bound>,
    gpu: Result<&Gpu, BringUpError>,
    timeout: Delta,
    hostile: bool,
) {
    // Without the hostile cases, a guest only does good work (the second vGPU of the
    // `gpu` scenario, which must be unaffected by the first one's hostile work).
    let chosen = |name: &str| hostile || !name.starts_with("hostile_");
    let planned = TESTS.iter().filter(|(n, _)| chosen(n)).count();
    let mut cx_ktap = Ktap::new(Console, planned);
    let gpu = match gpu {
        Ok(g) => g,
        Err(why) => {
            for (name, _) in TESTS.iter().filter(|(n, _)| chosen(n)) {
                cx_ktap.diag(format_args!("no GPU: bring-up failed: {why}"));
                cx_ktap.result(name, Outcome::Fail);
            }
            return;
        }
    };
    let mut cx = Cx {
        dev,
        gpu,
        timeout,
        ktap: cx_ktap,
    };
    let (mut pass, mut fail) = (0, 0);
    for (name, test) in TESTS.iter().filter(|(n, _)| chosen(n)) {
        let mut fx = Fixture::new();
        let r = test(&mut cx, &mut fx);
        if let Err(e) = r {
            cx.diag(format_args!("{name}: error {}", e.to_errno()));
            cx.ktap.result(name, Outcome::Fail);
            fail += 1;
            // Without memory to park it, the engines still hold what is in flight.
            if let Ok(b) = KBox::new(fx, GFP_KERNEL) {
                gpu.keep(b);
            }
        } else {
            for c in &fx.contexts {
                gpu.engine(c.engine()).release_context(c);
            }
            cx.ktap.result(name, Outcome::Pass);
            pass += 1;
        }
    }
    cx.diag(format_args!(
        "gvtpv_guest live selftests: pass:{pass} fail:{fail} interrupts:{}",
        gpu.interrupts()
    ));
}

fn bring_up(cx: &mut Cx<'_>, _fx: &mut Fixture) -> Result {
    check!(
        cx,
        cx.gpu.forcewake_acked(),
        "forcewake was not acknowledged"
    );
    Ok(())
}

/// Stores a dword from a PPGTT batch and checks it, and that the context-switch
/// interrupt arrived.
fn store_dword(cx: &mut Cx<'_>, fx: &mut Fixture, e: EngineId) -> Result {
    let ppgtt = fx.ppgtt(cx)?;
    let ctx = fx.context(cx, e, &ppgtt)?;
    let buf = fx.buffer(cx, &ppgtt, DATA, 1)?;
    let value = 0xc0ff_ee00 | e.index() as u32;
    let mut c = Cmds::new();
    c.push(store(DATA + 0x40, value))?;
    let (_b, batch) = fx.batch(cx, &ppgtt, BATCH, &c)?;
    let engine = cx.gpu.engine(e);
    let irqs = engine.stats.ctx_switch_irqs.load(Relaxed);
    run(cx, &ctx, batch)?;
    let got = buf.read(0x10)?;
    check!(
        cx,
        got == value,
        "{}: read {got:#x}, want {value:#x}",
        e.name()
    );
    let seen = eventually(Delta::from_millis(100), || {
        engine.stats.ctx_switch_irqs.load(Relaxed) != irqs
    });
    check!(cx, seen, "{}: no context-switch interrupt", e.name());
    Ok(())
}

fn store_dword_rcs(cx: &mut Cx<'_>, fx: &mut Fixture) -> Result {
    store_dword(cx, fx, EngineId::Rcs)
}

fn store_dword_bcs(cx: &mut Cx<'_>, fx: &mut Fixture) -> Result {
    store_dword(cx, fx, EngineId::Bcs)
}

/// `MI_STORE_DATA_IMM` with its GGTT bit from the ring, into a GGTT-bound page.
fn store_dword_ggtt(cx: &mut Cx<'_>, fx: &mut Fixture) -> Result {
    let ppgtt = fx.ppgtt(cx)?;
    let ctx = fx.context(cx, EngineId::Rcs, &ppgtt)?;
    let page = cx.gpu.ggtt().alloc_bound(cx.dev, 1)?;
    let mut c = Cmds::new();
    c.push(GpuCmd::StoreDataImm {
        addr: u64::from(page.addr()) + 8,
        ggtt: true,
        value: 0x6767_7474,
        qword: false,
    })?;
    let engine = cx.gpu.engine(EngineId::Rcs);
    let seqno = engine.submit_ring(&ctx, c.as_slice(), cx.timeout)?;
    let r = wait(cx, EngineId::Rcs, &ctx, seqno, cx.timeout);
    let got = page.mem().read(2)?;
    if r.is_err() {
        // The device may still write the page later.
        cx.gpu.keep(KBox::new(page, GFP_KERNEL)?);
        return r;
    }
    check!(cx, got == 0x6767_7474, "read {got:#x}");
    Ok(())
}

/// Blit geometry: 1024 32-bit pixels per row (one page), 16 rows.
const BLT_W: u16 = 1024;
const BLT_H: u16 = 16;
const BLT_PAGES: usize = BLT_H as usize;

/// Compares every byte of `m` with `want(dword index)`.
fn check_bytes(cx: &mut Cx<'_>, m: &GpuMem<u32>, want: impl Fn(usize) -> u32) -> Result {
    // FNV-1a over what the GPU wrote, printed for `make demo`.
    let mut fnv = 0x811c_9dc5u32;
    for i in 0..m.len() {
        let got = m.read(i)?.to_le_bytes();
        for b in got {
            fnv = (fnv ^ u32::from(b)).wrapping_mul(0x0100_0193);
        }
        let exp = want(i).to_le_bytes();
        for b in 0..4 {
            check!(
                cx,
                got[b] == exp[b],
                "byte {:#x}: {:#04x}, want {:#04x}",
                i * 4 + b,
                got[b],
                exp[b]
            );
        }
    }
    cx.diag(format_args!(
        "blitter result: {} bytes checked byte by byte, FNV-1a {:#010x}",
        m.len() * 4,
        fnv
    ));
    Ok(())
}

fn xy_color_blt(cx: &mut Cx<'_>, fx: &mut Fixture) -> Result {
    let ppgtt = fx.ppgtt(cx)?;
    let ctx = fx.context(cx, EngineId::Bcs, &ppgtt)?;
    let dst = fx.buffer(cx, &ppgtt, DATA, BLT_PAGES)?;
    dst.fill(0..dst.len(), 0x1111_1111)?;
    let color = 0x5aa5_3cc3;
    let mut c = Cmds::new();
    c.push(GpuCmd::ColorBlt {
        dst: DATA,
        pitch: BLT_W * 4,
        from: (0, 0),
        to: (BLT_W, BLT_H),
        color,
    })?;
    let (_b, batch) = fx.batch(cx, &ppgtt, BATCH, &c)?;
    run(cx, &ctx, batch)?;
    check_bytes(cx, &dst, |_| color)
}

/// A pattern no two dwords of a buffer share.
fn pattern(i: usize) -> u32 {
    (i as u32).wrapping_mul(0x9e37_79b9) ^ 0xa5a5_0000
}

fn xy_src_copy_blt(cx: &mut Cx<'_>, fx: &mut Fixture) -> Result {
    let ppgtt = fx.ppgtt(cx)?;
    let ctx = fx.context(cx, EngineId::Bcs, &ppgtt)?;
    let src = fx.buffer(cx, &ppgtt, DATA, BLT_PAGES)?;
    let dst = fx.buffer(cx, &ppgtt, DATA2, BLT_PAGES)?;
    for i in 0..src.len() {
        src.write(i, pattern(i))?;
    }
    let mut c = Cmds::new();
    c.push(GpuCmd::SrcCopyBlt {
        dst: DATA2,
        dst_pitch: BLT_W * 4,
        from: (0, 0),
        to: (BLT_W, BLT_H),
        src: DATA,
        src_pitch: BLT_W * 4,
        src_from: (0, 0),
    })?;
    let (_b, batch) = fx.batch(cx, &ppgtt, BATCH, &c)?;
    run(cx, &ctx, batch)?;
    check_bytes(cx, &dst, pattern)
}

fn second_level_batch(cx: &mut Cx<'_>, fx: &mut Fixture) -> Result {
    let ppgtt = fx.ppgtt(cx)?;
    let ctx = fx.context(cx, EngineId::Rcs, &ppgtt)?;
    let buf = fx.buffer(cx, &ppgtt, DATA, 1)?;
    let mut inner = Cmds::new();
    inner.push(store(DATA + 4, 2))?;
    fx.batch(cx, &ppgtt, BATCH2, &inner)?;
    let mut outer = Cmds::new();
    outer
        .push(store(DATA, 1))?
        .push(GpuCmd::BatchBufferStart {
            addr: BATCH2,
            ppgtt: true,
            second_level: true,
        })?
        .push(store(DATA + 8, 3))?;
    let (_b, batch) = fx.batch(cx, &ppgtt, BATCH, &outer)?;
    run(cx, &ctx, batch)?;
    let got = [buf.read(0)?, buf.read(1)?, buf.read(2)?];
    check!(
        cx,
        got == [1, 2, 3],
        "before, inside, after the second level: {got:?}, want [1, 2, 3]"
    );
    Ok(())
}

/// Stores through a 2 MiB page and finds the values where the CPU expects them.
fn huge_2m(cx: &mut Cx<'_>, fx: &mut Fixture) -> Result {
    let ppgtt = fx.ppgtt(cx)?;
    let ctx = fx.context(cx, EngineId::Rcs, &ppgtt)?;
    let mem = fx.keep(GpuMem::new_aligned(cx.dev, 512, SZ_2M)?)?;
    let va = 1u64 << 30;
    map(cx, &ppgtt, &mem.page_list()?, va)?;
    let size = ppgtt.lookup(va).map(|t| t.1);
    check!(
        cx,
        size == Some(SZ_2M),
        "mapped with page size {size:?}, want 2 MiB"
    );
    let offsets = [0u64, 0x1000, 0x10_0000, SZ_2M - 4];
    let mut c = Cmds::new();
    for (k, off) in offsets.iter().enumerate() {
        c.push(store(va + off, 0x2000_0000 | k as u32))?;
    }
    let (_b, batch) = fx.batch(cx, &ppgtt, BATCH, &c)?;
    run(cx, &ctx, batch)?;
    for (k, off) in offsets.iter().enumerate() {
        let got = mem.read((off / 4) as usize)?;
        check!(
            cx,
            got == 0x2000_0000 | k as u32,
            "offset {off:#x}: {got:#x}"
        );
    }
    Ok(())
}

/// A 64 KiB page table whose 32 chunks are mapped in reverse order (and whose unused
/// slots are scrubbed): only a walker that uses the 64 KiB slots finds the values.
fn huge_64k(cx: &mut Cx<'_>, fx: &mut Fixture) -> Result {
    let ppgtt = fx.ppgtt(cx)?;
    let ctx = fx.context(cx, EngineId::Rcs, &ppgtt)?;
    let mem = fx.keep(GpuMem::new_aligned(cx.dev, 512, SZ_64K)?)?;
    let mut pages = mem.page_list()?;
    pages.reverse();
    for chunk in pages.chunks_mut(16) {
        chunk.reverse();
    }
    let va = 2u64 << 30;
    map(cx, &ppgtt, &pages, va)?;
    let size = ppgtt.lookup(va).map(|t| t.1);
    check!(
        cx,
        size == Some(SZ_64K),
        "mapped with page size {size:?}, want 64 KiB"
    );
    let mut c = Cmds::new();
    for k in 0..32u64 {
        c.push(store(va + k * SZ_64K + 4 * k, 0x6400_0000 | k as u32))?;
    }
    let (_b, batch) = fx.batch(cx, &ppgtt, BATCH, &c)?;
    run(cx, &ctx, batch)?;
    for k in 0..32u64 {
        let at = ((31 - k) * SZ_64K + 4 * k) / 4;
        let got = mem.read(at as usize)?;
        check!(
            cx,
            got == 0x6400_0000 | k as u32,
            "chunk {k}: {got:#x} at byte {:#x}",
            at * 4
        );
    }
    Ok(())
}

/// One PPGTT entry rewritten between two submissions: the second store lands in the
/// new page, the first page keeps the first value.
fn ppgtt_rewrite(cx: &mut Cx<'_>, fx: &mut Fixture) -> Result {
    let ppgtt = fx.ppgtt(cx)?;
    let ctx = fx.context(cx, EngineId::Rcs, &ppgtt)?;
    let a = fx.buffer(cx, &ppgtt, DATA, 1)?;
    let b = fx.keep(GpuMem::new(cx.dev, 1)?)?;
    let mut c1 = Cmds::new();
    c1.push(store(DATA, 0xaaaa_0001))?;
    let (_b1, batch1) = fx.batch(cx, &ppgtt, BATCH, &c1)?;
    let mut c2 = Cmds::new();
    c2.push(store(DATA, 0xbbbb_0002))?;
    let (_b2, batch2) = fx.batch(cx, &ppgtt, BATCH2, &c2)?;
    run(cx, &ctx, batch1)?;
    ppgtt.bind(DATA, &[b.dma()], Access::ReadWrite)?;
    run(cx, &ctx, batch2)?;
    let (ga, gb) = (a.read(0)?, b.read(0)?);
    check!(
        cx,
        ga == 0xaaaa_0001 && gb == 0xbbbb_0002,
        "old page {ga:#x}, new page {gb:#x}"
    );
    Ok(())
}

/// Two contexts queued together go into one ELSP write.
fn two_contexts_one_elsp(cx: &mut Cx<'_>, fx: &mut Fixture) -> Result {
    let e = EngineId::Bcs;
    let (p1, p2) = (fx.ppgtt(cx)?, fx.ppgtt(cx)?);
    let (c1, c2) = (fx.context(cx, e, &p1)?, fx.context(cx, e, &p2)?);
    let (m1, m2) = (fx.buffer(cx, &p1, DATA, 1)?, fx.buffer(cx, &p2, DATA, 1)?);
    let (_b1, batch1) = one_store_batch(cx, fx, &p1, 0x1111)?;
    let (_b2, batch2) = one_store_batch(cx, fx, &p2, 0x2222)?;
    let bbs = |b: Batch| -> Result<[u32; 3]> {
        let mut c = [0u32; 3];
        GpuCmd::BatchBufferStart {
            addr: b.addr,
            ppgtt: true,
            second_level: false,
        }
        .encode(&mut c)
        .map_err(|_| EINVAL)?;
        Ok(c)
    };
    let (r1, r2) = (bbs(batch1)?, bbs(batch2)?);
    let engine = cx.gpu.engine(e);
    let pairs = engine.stats.elsp_pairs.load(Relaxed);
    let [s1, s2] = engine.submit_many(&[(&c1, &r1[..]), (&c2, &r2[..])], cx.timeout)?;
    let paired = engine.stats.elsp_pairs.load(Relaxed) != pairs;
    wait(cx, e, &c1, s1, cx.timeout)?;
    wait(cx, e, &c2, s2, cx.timeout)?;
    check!(
        cx,
        paired,
        "the two contexts did not share an ELSP write (engine busy before)"
    );
    let (g1, g2) = (m1.read(0)?, m2.read(0)?);
    check!(
        cx,
        g1 == 0x1111 && g2 == 0x2222,
        "context 1 wrote {g1:#x}, context 2 {g2:#x}"
    );
    Ok(())
}

/// A batch at [`BATCH`] storing `value` at [`DATA`].
fn one_store_batch(
    cx: &Cx<'_>,
    fx: &mut Fixture,
    ppgtt: &Ppgtt,
    value: u32,
) -> Result<(Arc<GpuMem<u32>>, Batch)> {
    let mut c = Cmds::new();
    c.push(store(DATA, value))?;
    fx.batch(cx, ppgtt, BATCH, &c)
}

/// 1000 tiny batches back to back, each waited for; the time is the baseline for the
/// paravirtual path.
fn tiny_submissions(cx: &mut Cx<'_>, fx: &mut Fixture) -> Result {
    const N: u32 = 1000;
    let ppgtt = fx.ppgtt(cx)?;
    let ctx = fx.context(cx, EngineId::Rcs, &ppgtt)?;
    let buf = fx.buffer(cx, &ppgtt, DATA, 1)?;
    let mut c = Cmds::new();
    c.push(store(DATA, 0))?;
    let (bmem, batch) = fx.batch(cx, &ppgtt, BATCH, &c)?;
    let engine = cx.gpu.engine(EngineId::Rcs);
    let start: Instant<Monotonic> = Instant::now();
    for i in 0..N {
        // The value dword of the store; the previous batch finished.
        bmem.write(3, i)?;
        let seqno = engine.submit(&ctx, batch)?;
        if let Err(e) = wait(cx, EngineId::Rcs, &ctx, seqno, cx.timeout) {
            cx.diag(format_args!("submission {i} of {N}"));
            return Err(e);
        }
    }
    let us = start.elapsed().as_micros_ceil();
    cx.diag(format_args!(
        "{N} submissions with seqno waits in {us} us ({} us each)",
        us / i64::from(N)
    ));
    let got = buf.read(0)?;
    check!(cx, got == N - 1, "last value {got}, want {}", N - 1);
    Ok(())
}

/// Waits for a submission the host must refuse: the wait ends with
/// [`WaitError::Refused`] and a CS master error interrupt brings `RING_EIR` bits.
fn expect_refused(
    cx: &mut Cx<'_>,
    ctx: &Arc<Context>,
    seqno: Seqno,
    errors: u32,
    timeout: Delta,
) -> Result {
    let e = ctx.engine();
    let engine = cx.gpu.engine(e);
    let r = engine.wait(ctx, seqno, timeout);
    check!(
        cx,
        r == Err(WaitError::Refused),
        "{}: wait returned {r:?}, want Refused",
        e.name()
    );
    error_seen(cx, engine, errors)
}

/// A CS master error interrupt with `RING_EIR` bits arrived after `errors` were counted.
fn error_seen(cx: &mut Cx<'_>, engine: &Engine, errors: u32) -> Result {
    let seen = eventually(cx.timeout, || engine.stats.errors.load(Relaxed) != errors);
    let eir = engine.stats.eir.xchg(0, Relaxed);
    check!(
        cx,
        seen,
        "{}: no CS master error interrupt (EIR bits seen {eir:#x})",
        engine.id().name()
    );
    cx.diag(format_args!("{}: RING_EIR {eir:#x}", engine.id().name()));
    check!(cx, eir != 0, "no RING_EIR bits");
    Ok(())
}

/// A good submission on `ctx` after a hostile one: a store lands.
fn still_works(cx: &mut Cx<'_>, fx: &mut Fixture, ctx: &Arc<Context>) -> Result {
    let ppgtt = ctx.ppgtt().clone();
    let va = 0x80_0000;
    let buf = fx.buffer(cx, &ppgtt, va, 1)?;
    let mut c = Cmds::new();
    c.push(store(va, 0x600d))?;
    let (_b, batch) = fx.batch(cx, &ppgtt, va + 0x10_0000, &c)?;
    run(cx, ctx, batch)?;
    let got = buf.read(0)?;
    check!(cx, got == 0x600d, "the next good submission wrote {got:#x}");
    Ok(())
}

/// A GGTT address outside both ballooned slices.
fn outside_balloon(cx: &Cx<'_>) -> Option<u64> {
    let id = &cx.gpu.vgpu().id;
    let (ap, hid) = (id.mappable, id.nonmappable);
    if ap.0 >= SZ_4K as u32 {
        Some(u64::from(ap.0) - SZ_4K)
    } else {
        let end = u64::from(hid.0) + u64::from(hid.1);
        (end < 1 << 32).then_some(end)
    }
}

fn hostile_ggtt_outside_balloon(cx: &mut Cx<'_>, fx: &mut Fixture) -> Result {
    let Some(out) = outside_balloon(cx) else {
        cx.diag(format_args!("the slices cover the GGTT"));
        return Err(EINVAL);
    };
    let page = fx.keep(GpuMem::new(cx.dev, 1)?)?;
    let ggtt = cx.gpu.ggtt();
    ggtt.write_entry_unchecked(out, page.dma() | crate::abi::gtt::PTE_PRESENT)?;
    let back = ggtt.read_entry(out)?;
    check!(
        cx,
        back == 0,
        "GGTT entry {out:#x} outside the balloon reads back {back:#x}, want 0"
    );
    let ppgtt = fx.ppgtt(cx)?;
    let ctx = fx.context(cx, EngineId::Rcs, &ppgtt)?;
    let mut c = Cmds::new();
    c.push(GpuCmd::StoreDataImm {
        addr: out,
        ggtt: true,
        value: 0xbad,
        qword: false,
    })?;
    let engine = cx.gpu.engine(EngineId::Rcs);
    let errors = engine.stats.errors.load(Relaxed);
    let seqno = engine.submit_ring(&ctx, c.as_slice(), cx.timeout)?;
    expect_refused(cx, &ctx, seqno, errors, cx.timeout)?;
    let got = page.read(0)?;
    check!(
        cx,
        got == 0,
        "the page behind the dropped entry was written: {got:#x}"
    );
    still_works(cx, fx, &ctx)
}

fn hostile_frame_outside_ram(cx: &mut Cx<'_>, fx: &mut Fixture) -> Result {
    let ppgtt = fx.ppgtt(cx)?;
    let ctx = fx.context(cx, EngineId::Rcs, &ppgtt)?;
    // 256 GiB: below the 39-bit DMA limit, far above any L2's memory.
    map(cx, &ppgtt, &[1u64 << 38], DATA)?;
    let mut c = Cmds::new();
    c.push(store(DATA, 0xbad))?;
    let (_b, batch) = fx.batch(cx, &ppgtt, BATCH, &c)?;
    let engine = cx.gpu.engine(EngineId::Rcs);
    let errors = engine.stats.errors.load(Relaxed);
    let seqno = engine.submit(&ctx, batch)?;
    expect_refused(cx, &ctx, seqno, errors, cx.timeout)?;
    still_works(cx, fx, &ctx)
}

fn hostile_privileged_lri(cx: &mut Cx<'_>, fx: &mut Fixture) -> Result {
    let ppgtt = fx.ppgtt(cx)?;
    let ctx = fx.context(cx, EngineId::Rcs, &ppgtt)?;
    // RING_HWSTAM of the render engine: not for a batch to change.
    let pairs = [abi::RCS_BASE + abi::ring::HWSTAM, 0];
    let mut c = Cmds::new();
    c.push(GpuCmd::LoadRegisterImm {
        pairs: &pairs,
        posted: false,
    })?;
    let (_b, batch) = fx.batch(cx, &ppgtt, BATCH, &c)?;
    let engine = cx.gpu.engine(EngineId::Rcs);
    let errors = engine.stats.errors.load(Relaxed);
    let seqno = engine.submit(&ctx, batch)?;
    expect_refused(cx, &ctx, seqno, errors, cx.timeout)?;
    still_works(cx, fx, &ctx)
}

fn hostile_batch_loop(cx: &mut Cx<'_>, fx: &mut Fixture) -> Result {
    let ppgtt = fx.ppgtt(cx)?;
    let ctx = fx.context(cx, EngineId::Rcs, &ppgtt)?;
    let mut c = Cmds::new();
    c.push(GpuCmd::BatchBufferStart {
        addr: BATCH,
        ppgtt: true,
        second_level: false,
    })?;
    let (_b, batch) = fx.batch(cx, &ppgtt, BATCH, &c)?;
    let engine = cx.gpu.engine(EngineId::Rcs);
    let errors = engine.stats.errors.load(Relaxed);
    let seqno = engine.submit(&ctx, batch)?;
    // The host's watchdog is 2 s per workload.
    let timeout = Delta::from_millis(cx.timeout.as_millis().max(5000));
    expect_refused(cx, &ctx, seqno, errors, timeout)?;
    still_works(cx, fx, &ctx)
}

fn hostile_bad_descriptor(cx: &mut Cx<'_>, fx: &mut Fixture) -> Result {
    let Some(out) = outside_balloon(cx) else {
        cx.diag(format_args!("the slices cover the GGTT"));
        return Err(EINVAL);
    };
    let engine = cx.gpu.engine(EngineId::Rcs);
    let errors = engine.stats.errors.load(Relaxed);
    let anomalies = engine.stats.csb_anomalies.load(Relaxed);
    if let Err(e) = engine.submit_raw_descriptor(lrc::desc::make(out as u32, 0x3ff)) {
        cx.diag(format_args!("rcs0 not idle: earlier work never completed"));
        return Err(e);
    }
    error_seen(cx, engine, errors)?;
    let extra = engine.stats.csb_anomalies.load(Relaxed) - anomalies;
    if extra != 0 {
        cx.diag(format_args!(
            "{extra} CSB events for the refused descriptor"
        ));
    }
    let ppgtt = fx.ppgtt(cx)?;
    let ctx = fx.context(cx, EngineId::Rcs, &ppgtt)?;
    still_works(cx, fx, &ctx)
}
