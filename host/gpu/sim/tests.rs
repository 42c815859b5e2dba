// SPDX-License-Identifier: GPL-2.0

//! KUnit suite of the software GEN9: contexts built in sim host memory, run on the
//! engines' workers, checked byte by byte through the memory they wrote.

use kernel::prelude::*;

#[kunit_tests(gvtpv_host_sim)]
mod sim_tests {
    use super::super::Sim;
    use crate::{
        abi::{
            gpu_cmd::GpuCmd,
            gtt, lrc,
            regs::{self, ring},
        },
        gpu::{DevPage, Engine, EngineError, Events, Gpu, HostMem, PAGE},
    };
    use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use kernel::{
        new_condvar, new_mutex,
        prelude::*,
        sync::{Arc, CondVar, Mutex},
        time::{msecs_to_jiffies, Instant, Monotonic},
    };

    /// Budget of a context that should complete.
    const BUDGET: u32 = 1 << 20;
    /// Ring pages of a test context.
    const RING_PAGES: u32 = 4;
    /// Where a context's image, status page and ring sit in the GGTT (per engine).
    const RCS_BASE: u64 = 0x0010_0000;
    const BCS_BASE: u64 = 0x0020_0000;
    /// GGTT data pages.
    const DATA_GFX: u64 = 0x0040_0000;
    /// A PPGTT address used for data.
    const VA: u64 = 0x0000_1234_5600_0000;

    // ---- Events ----------------------------------------------------------------------

    #[derive(Default, Clone, Copy)]
    struct Log {
        switches: [u32; 2],
        users: [u32; 2],
        bits: [u32; 2],
    }

    #[pin_data]
    struct TestEvents {
        #[pin]
        log: Mutex<Log>,
        #[pin]
        cv: CondVar,
    }

    impl TestEvents {
        fn new() -> Arc<Self> {
            Arc::pin_init(
                pin_init!(Self {
                    log <- new_mutex!(Log::default()),
                    cv <- new_condvar!(),
                }),
                GFP_KERNEL,
            )
            .unwrap()
        }

        fn log(&self) -> Log {
            *self.log.lock()
        }

        /// Waits (5 s at most) until `engine` reported `n` context switches.
        fn wait(&self, engine: Engine, n: u32) -> bool {
            let i = engine.index();
            let mut g = self.log.lock();
            for _ in 0..500 {
                if g.switches.get(i).is_some_and(|s| *s >= n) {
                    return true;
                }
                let _ = self
                    .cv
                    .wait_interruptible_timeout(&mut g, msecs_to_jiffies(10));
            }
            false
        }
    }

    impl Events for TestEvents {
        fn interrupt(&self, engine: Engine, bits: u32) {
            let i = engine.index();
            let mut g = self.log.lock();
            if bits & regs::GT_CONTEXT_SWITCH != 0 {
                if let Some(s) = g.switches.get_mut(i) {
                    *s += 1;
                }
            }
            if bits & regs::GT_USER_INTERRUPT != 0 {
                if let Some(s) = g.users.get_mut(i) {
                    *s += 1;
                }
            }
            if let Some(b) = g.bits.get_mut(i) {
                *b = bits;
            }
            drop(g);
            self.cv.notify_all();
        }
    }

    // ---- A fake guest page -----------------------------------------------------------

    struct FakePage {
        words: KVec<AtomicU64>,
        writable: bool,
        gone: AtomicBool,
    }

    impl FakePage {
        fn new(writable: bool) -> Arc<Self> {
            let mut words = KVec::with_capacity(512, GFP_KERNEL).unwrap();
            for _ in 0..512 {
                words.push(AtomicU64::new(0), GFP_KERNEL).unwrap();
            }
            Arc::new(
                Self {
                    words,
                    writable,
                    gone: AtomicBool::new(false),
                },
                GFP_KERNEL,
            )
            .unwrap()
        }

        fn word(&self, off: usize) -> Result<&AtomicU64> {
            if self.gone.load(Ordering::Acquire) {
                return Err(EFAULT);
            }
            self.words.get(off / 8).ok_or(EINVAL)
        }

        fn peek32(&self, off: usize) -> u32 {
            self.words
                .get(off / 8)
                .map_or(0, |w| (w.load(Ordering::Relaxed) >> ((off % 8) * 8)) as u32)
        }
    }

    impl DevPage for FakePage {
        fn load32(&self, off: usize) -> Result<u32> {
            Ok((self.word(off)?.load(Ordering::Relaxed) >> ((off % 8) * 8)) as u32)
        }
        fn load64(&self, off: usize) -> Result<u64> {
            Ok(self.word(off)?.load(Ordering::Relaxed))
        }
        fn store32(&self, off: usize, v: u32) -> Result {
            let shift = (off % 8) * 8;
            let w = self.word(off)?;
            let _ = w.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |o| {
                Some((o & !(0xffff_ffffu64 << shift)) | (u64::from(v) << shift))
            });
            Ok(())
        }
        fn store64(&self, off: usize, v: u64) -> Result {
            self.word(off)?.store(v, Ordering::Relaxed);
            Ok(())
        }
        fn writable(&self) -> bool {
            self.writable
        }
    }

    // ---- The test machine and its contexts -------------------------------------------

    struct Env {
        sim: Arc<Sim>,
        ev: Arc<TestEvents>,
    }

    fn env() -> Env {
        let sim = Sim::new().unwrap();
        let ev = TestEvents::new();
        sim.set_events(ev.clone());
        Env { sim, ev }
    }

    /// Maps `pages` pages from device address `dev` at graphics address `gfx`.
    fn ggtt_map(sim: &Sim, gfx: u64, dev: u64, pages: u64) {
        for i in 0..pages {
            let pte = (dev + i * PAGE) | gtt::PTE_PRESENT;
            sim.ggtt_write(((gfx >> 12) + i) as u32, pte).unwrap();
        }
    }

    /// Encodes one command.
    fn enc(c: GpuCmd<'_>) -> KVec<u32> {
        let mut b = [0u32; 16];
        let n = c.encode(&mut b).unwrap();
        let mut v = KVec::new();
        v.extend_from_slice(&b[..n], GFP_KERNEL).unwrap();
        v
    }

    fn sdi(addr: u64, ggtt: bool, value: u64, qword: bool) -> KVec<u32> {
        enc(GpuCmd::StoreDataImm {
            addr,
            ggtt,
            value,
            qword,
        })
    }

    fn bb_start(addr: u64, ppgtt: bool, second_level: bool) -> KVec<u32> {
        enc(GpuCmd::BatchBufferStart {
            addr,
            ppgtt,
            second_level,
        })
    }

    const MI_NOOP: u32 = 0;
    const MI_BB_END: u32 = 0x0a << 23;
    const MI_USER_INTERRUPT: u32 = 0x02 << 23;
    const MI_ARB_CHECK: u32 = 0x05 << 23;

    struct Ctx<'a> {
        env: &'a Env,
        engine: Engine,
        image: Arc<dyn HostMem>,
        image_gfx: u64,
        ring: Arc<dyn HostMem>,
        ring_gfx: u64,
        tail: u32,
        hwsp: Arc<dyn HostMem>,
        pml4: Arc<dyn HostMem>,
        tables: KVec<Arc<dyn HostMem>>,
        keep: KVec<Arc<dyn HostMem>>,
        id: u32,
        runs: u32,
    }

    impl<'a> Ctx<'a> {
        fn new(env: &'a Env, engine: Engine) -> Self {
            let base = match engine {
                Engine::Rcs => RCS_BASE,
                Engine::Bcs => BCS_BASE,
            };
            let sim = &env.sim;
            let image = sim.alloc(2).unwrap();
            ggtt_map(sim, base, image.dev_addr(), 2);
            let hwsp = sim.alloc(1).unwrap();
            ggtt_map(sim, base + 0x2000, hwsp.dev_addr(), 1);
            hwsp.store32(4 * lrc::hwsp::CSB_WRITE, lrc::csb::PTR_NONE)
                .unwrap();
            sim.set_hwsp(engine, (base + 0x2000) as u32).unwrap();
            let ring_gfx = base + 0x4000;
            let ring = sim.alloc(RING_PAGES as usize).unwrap();
            ggtt_map(sim, ring_gfx, ring.dev_addr(), RING_PAGES.into());
            let pml4 = sim.alloc(1).unwrap();

            let mut state = KVec::new();
            state
                .extend_with(lrc::state::DWORDS, 0u32, GFP_KERNEL)
                .unwrap();
            lrc::init_state(&mut state, engine.base()).unwrap();
            let set = |s: &mut KVec<u32>, i: usize, v: u32| {
                if let Some(d) = s.get_mut(i) {
                    *d = v;
                }
            };
            set(&mut state, lrc::state::RING_START, ring_gfx as u32);
            set(
                &mut state,
                lrc::state::RING_CTL,
                ((RING_PAGES - 1) << 12) | ring::CTL_VALID,
            );
            set(&mut state, lrc::state::PDP0_LDW, pml4.dev_addr() as u32);
            set(
                &mut state,
                lrc::state::PDP0_UDW,
                (pml4.dev_addr() >> 32) as u32,
            );
            image.write_dwords(PAGE as usize, &state).unwrap();
            Self {
                env,
                engine,
                image,
                image_gfx: base,
                ring,
                ring_gfx,
                tail: 0,
                hwsp,
                pml4,
                tables: KVec::new(),
                keep: KVec::new(),
                id: 0x100 + engine.index() as u32,
                runs: 0,
            }
        }

        /// Host memory kept for the test, mapped at `gfx` in the GGTT if given.
        fn mem(&mut self, pages: usize, gfx: Option<u64>) -> Arc<dyn HostMem> {
            let m = self.env.sim.alloc(pages).unwrap();
            if let Some(g) = gfx {
                ggtt_map(&self.env.sim, g, m.dev_addr(), pages as u64);
            }
            self.keep.push(m.clone(), GFP_KERNEL).unwrap();
            m
        }

        fn ring_size(&self) -> u32 {
            RING_PAGES * PAGE as u32
        }

        /// Appends dwords at the tail (wrapping).
        fn emit(&mut self, w: &[u32]) {
            for d in w {
                self.ring.store32(self.tail as usize, *d).unwrap();
                self.tail = (self.tail + 4) % self.ring_size();
            }
        }

        /// Sets head and tail (bytes) directly.
        fn set_head_tail(&mut self, head: u32, tail: u32) {
            self.state_store(lrc::state::RING_HEAD, head);
            self.tail = tail;
        }

        fn state_store(&self, i: usize, v: u32) {
            self.image.store32(PAGE as usize + 4 * i, v).unwrap();
        }

        fn state(&self, i: usize) -> u32 {
            self.image.load32(PAGE as usize + 4 * i).unwrap()
        }

        fn desc(&self) -> u64 {
            lrc::desc::make(self.image_gfx as u32, self.id)
        }

        /// Submits what was emitted since the last run, the tail padded to a qword with
        /// `MI_NOOP` as i915 does (`RING_TAIL` bits 20:3).
        fn submit(&mut self, budget: u32) -> Result {
            if self.tail % 8 != 0 {
                self.emit(&[MI_NOOP]);
            }
            self.state_store(lrc::state::RING_TAIL, self.tail);
            self.env.sim.submit(self.engine, self.desc(), budget)?;
            self.runs += 1;
            Ok(())
        }

        /// Waits for the submitted context to end; its error.
        fn wait(&self) -> Option<EngineError> {
            assert!(self.env.ev.wait(self.engine, self.runs));
            assert!(!self.env.sim.busy(self.engine));
            let e = self.env.sim.engine_error(self.engine);
            if e.is_some() {
                pr_info!(
                    "    # {}: stopped: {:?}, head {:#x}\n",
                    self.engine.name(),
                    e,
                    self.head()
                );
            }
            e
        }

        fn run(&mut self, budget: u32) -> Option<EngineError> {
            self.submit(budget).unwrap();
            self.wait()
        }

        fn head(&self) -> u32 {
            self.state(lrc::state::RING_HEAD)
        }

        fn csb_wp(&self) -> u32 {
            self.hwsp.load32(4 * lrc::hwsp::CSB_WRITE).unwrap()
        }

        fn csb(&self, i: u32) -> u64 {
            self.hwsp
                .load64(4 * (lrc::hwsp::CSB_BUF0 + 2 * i as usize))
                .unwrap()
        }

        fn entry(&self, status: u32) -> u64 {
            u64::from(status) | (u64::from(self.id) << 32)
        }

        /// The table entry `idx` of `table` points at, made if missing.
        fn table(&mut self, table: &Arc<dyn HostMem>, idx: usize, extra: u64) -> Arc<dyn HostMem> {
            let e = table.load64(8 * idx).unwrap();
            if e & gtt::PTE_PRESENT != 0 {
                let a = e & gtt::PTE_ADDR_MASK;
                for t in self.tables.iter() {
                    if t.dev_addr() == a {
                        return t.clone();
                    }
                }
            }
            let t = self.env.sim.alloc(1).unwrap();
            let pde = t.dev_addr() | gtt::PTE_PRESENT | gtt::PTE_RW | extra;
            table.store64(8 * idx, pde).unwrap();
            self.tables.push(t.clone(), GFP_KERNEL).unwrap();
            t
        }

        /// The page directory for `va`.
        fn pd(&mut self, va: u64) -> Arc<dyn HostMem> {
            let [i4, i3, _, _] = gtt::ppgtt_indices(va);
            let pml4 = self.pml4.clone();
            let pdp = self.table(&pml4, i4, 0);
            self.table(&pdp, i3, 0)
        }

        fn map_4k(&mut self, va: u64, dev: u64, rw: bool) {
            let [_, _, i2, i1] = gtt::ppgtt_indices(va);
            let pd = self.pd(va);
            let pt = self.table(&pd, i2, 0);
            pt.store64(8 * i1, gtt::encode_pte(dev, rw, 0)).unwrap();
        }

        fn unmap_4k(&mut self, va: u64) {
            let [_, _, i2, i1] = gtt::ppgtt_indices(va);
            let pd = self.pd(va);
            let pt = self.table(&pd, i2, 0);
            pt.store64(8 * i1, 0).unwrap();
        }

        fn map_2m(&mut self, va: u64, dev: u64) {
            let [_, _, i2, _] = gtt::ppgtt_indices(va);
            let pd = self.pd(va);
            let e = dev | gtt::PTE_PRESENT | gtt::PTE_RW | gtt::PDE_PS_2M;
            pd.store64(8 * i2, e).unwrap();
        }

        /// Maps the 2 MiB at `va` as 32 64 KiB pages, page `k` at `dev(k)`.
        fn map_64k(&mut self, va: u64, dev: impl Fn(u64) -> u64) {
            let [_, _, i2, _] = gtt::ppgtt_indices(va);
            let pd = self.pd(va);
            let pt = self.table(&pd, i2, gtt::PDE_IPS_64K);
            for k in 0..gtt::PT_64K_ENTRIES {
                let e = match dev(k as u64) {
                    0 => 0,
                    d => gtt::encode_pte(d, true, 0),
                };
                pt.store64(8 * k * gtt::PT_64K_STRIDE, e).unwrap();
            }
        }

        /// Maps `pages` fresh host pages at `va` (4 KiB entries); returns the memory.
        fn ppgtt_mem(&mut self, va: u64, pages: usize) -> Arc<dyn HostMem> {
            let m = self.mem(pages, None);
            for i in 0..pages as u64 {
                self.map_4k(va + i * PAGE, m.dev_addr() + i * PAGE, true);
            }
            m
        }
    }

    fn ld(m: &Arc<dyn HostMem>, off: usize) -> u32 {
        m.load32(off).unwrap()
    }

    /// Fills `m` with a pattern no command writes.
    fn poison(m: &Arc<dyn HostMem>) {
        for off in (0..m.len()).step_by(8) {
            m.store64(off, 0x5a5a_5a5a_5a5a_5a5a).unwrap();
        }
    }

    fn untouched(m: &Arc<dyn HostMem>) -> bool {
        (0..m.len())
            .step_by(8)
            .all(|off| m.load64(off).unwrap() == 0x5a5a_5a5a_5a5a_5a5a)
    }

    // ---- The cases -------------------------------------------------------------------

    #[test]
    fn backend_and_mappings() {
        let sim = super::super::super::backend().unwrap();
        assert_eq!(sim.name(), c"sim");
        assert_eq!(sim.ggtt_entries(), 1 << 20);
        sim.ggtt_write(5, 0x1234_5001).unwrap();
        assert_eq!(sim.ggtt_read(5).unwrap(), 0x1234_5001);
        assert!(sim.ggtt_write(1 << 20, 1).is_err());
        // Never address 0; runs aligned to their power-of-two size.
        let p = FakePage::new(true);
        let a = sim.dma_map(p.clone()).unwrap();
        assert_ne!(a, 0);
        let mut run: KVec<Arc<dyn DevPage>> = KVec::new();
        for _ in 0..16 {
            run.push(FakePage::new(true), GFP_KERNEL).unwrap();
        }
        let r = sim.map_run(&run).unwrap().unwrap();
        assert_eq!(r % gtt::SZ_64K, 0);
        let big = sim.alloc(512).unwrap();
        assert_eq!(big.dev_addr() % gtt::SZ_2M, 0);
        let odd = sim.alloc(3).unwrap();
        assert_eq!(odd.dev_addr() % (4 * PAGE), 0);
        assert_eq!(odd.len(), 3 * PAGE as usize);
        assert_eq!(sim.stats().mappings, 4);
        sim.dma_unmap(a);
        sim.dma_unmap(r);
        drop(big);
        assert_eq!(sim.stats().mappings, 1);
        // The bound on mapped pages.
        assert!(matches!(sim.alloc((1 << 20) + 1), Err(e) if e == ENOSPC));
        assert!(matches!(sim.alloc(0), Err(e) if e == EINVAL));
        // Descriptors: not valid, or mode 1 (legacy 32-bit), are refused.
        let d = lrc::desc::make(0x10_0000, 1);
        assert_eq!(
            sim.submit(Engine::Rcs, d & !lrc::desc::VALID, 10),
            Err(EINVAL)
        );
        let m1 =
            (d & !lrc::desc::MODE_MASK) | (lrc::desc::MODE_LEGACY_32B << lrc::desc::MODE_SHIFT);
        assert_eq!(sim.submit(Engine::Rcs, m1, 10), Err(EINVAL));
        assert!(sim.set_hwsp(Engine::Rcs, 0x1004).is_err());
        assert!(!sim.busy(Engine::Rcs));
    }

    #[test]
    fn mi_commands_store_and_report() {
        let env = env();
        let mut c = Ctx::new(&env, Engine::Rcs);
        let data = c.mem(1, Some(DATA_GFX));
        let pp = c.ppgtt_mem(VA, 1);
        let lri_pairs = [0x2000 + 0x80, 0xdead_0001, 0x2000 + 0x9c, 0xdead_0002];
        let mut cmds: KVec<u32> = KVec::new();
        let mut add = |v: KVec<u32>| cmds.extend_from_slice(&v, GFP_KERNEL).unwrap();
        add(sdi(DATA_GFX, true, 0x1111_1111, false));
        add(sdi(DATA_GFX + 8, true, 0x2222_2222_3333_3333, true));
        add(sdi(VA + 0x10, false, 0x4444_4444, false));
        add(sdi(VA + 0x18, false, 0x5555_5555_6666_6666, true));
        add(enc(GpuCmd::StoreDwordIndex {
            index: 0x40,
            value: 0x7777_7777,
        }));
        add(enc(GpuCmd::LoadRegisterImm {
            pairs: &lri_pairs,
            posted: false,
        }));
        add(enc(GpuCmd::FlushDw {
            addr: DATA_GFX + 0x20,
            value: 0x8888_8888,
        }));
        add(enc(GpuCmd::PipeControl {
            addr: DATA_GFX + 0x28,
            value: 0x9999_9999_aaaa_aaaa,
        }));
        add(enc(GpuCmd::CopyMemMem {
            dst: DATA_GFX + 0x30,
            src: DATA_GFX,
        }));
        // MI_STORE_DATA_INDEX qword (length 4) and MI_COPY_MEM_MEM PPGTT to GGTT.
        add({
            let mut v = KVec::new();
            v.extend_from_slice(
                &[
                    (0x21 << 23) | 2,
                    0x108,
                    0xbbbb_bbbb,
                    0xcccc_cccc,
                    (0x2e << 23) | (1 << 21) | 3,
                    (DATA_GFX + 0x34) as u32,
                    0,
                    (VA + 0x10) as u32,
                    (VA >> 32) as u32,
                    MI_USER_INTERRUPT,
                    MI_ARB_CHECK,
                    MI_NOOP,
                    MI_NOOP,
                ],
                GFP_KERNEL,
            )
            .unwrap();
            v
        });
        c.emit(&cmds);
        let before = env.sim.stats();
        assert_eq!(c.run(BUDGET), None);
        // Memory, dword by dword.
        assert_eq!(ld(&data, 0), 0x1111_1111);
        assert_eq!(ld(&data, 4), 0);
        assert_eq!(ld(&data, 8), 0x3333_3333);
        assert_eq!(ld(&data, 12), 0x2222_2222);
        assert_eq!(ld(&pp, 0x10), 0x4444_4444);
        assert_eq!(ld(&pp, 0x18), 0x6666_6666);
        assert_eq!(ld(&pp, 0x1c), 0x5555_5555);
        assert_eq!(ld(&c.image, 0x100), 0x7777_7777);
        assert_eq!(ld(&c.image, 0x108), 0xbbbb_bbbb);
        assert_eq!(ld(&c.image, 0x10c), 0xcccc_cccc);
        assert_eq!(ld(&data, 0x20), 0x8888_8888);
        assert_eq!(ld(&data, 0x24), 0);
        assert_eq!(ld(&data, 0x28), 0xaaaa_aaaa);
        assert_eq!(ld(&data, 0x2c), 0x9999_9999);
        assert_eq!(ld(&data, 0x30), 0x1111_1111);
        assert_eq!(ld(&data, 0x34), 0x4444_4444);
        assert_eq!(ld(&data, 0x38), 0);
        // The register file, the user interrupt, the counters.
        assert_eq!(env.sim.reg(Engine::Rcs, 0x2080), Some(0xdead_0001));
        assert_eq!(env.sim.reg(Engine::Rcs, 0x209c), Some(0xdead_0002));
        assert_eq!(env.sim.reg(Engine::Bcs, 0x2080), None);
        let log = env.ev.log();
        assert_eq!(log.users, [1, 0]);
        assert_eq!(log.bits[0], regs::GT_CONTEXT_SWITCH);
        let after = env.sim.stats();
        assert_eq!(after.commands - before.commands, 15);
        assert_eq!(after.completed - before.completed, 1);
        assert_eq!(after.not_modelled, before.not_modelled);
        // CSB: idle to active, then complete, with the context id; pointer at 1.
        assert_eq!(c.csb_wp(), 1);
        assert_eq!(c.csb(0), c.entry(lrc::csb::IDLE_ACTIVE));
        assert_eq!(
            c.csb(1),
            c.entry(lrc::csb::COMPLETE | lrc::csb::ACTIVE_IDLE)
        );
        // Head written back at the tail, wrap count 0.
        assert_eq!(c.head(), c.tail);
        // A second context on the same engine goes on round robin.
        c.emit(&[MI_NOOP, MI_NOOP]);
        assert_eq!(c.run(BUDGET), None);
        assert_eq!(c.csb_wp(), 3);
        assert_eq!(c.csb(2), c.entry(lrc::csb::IDLE_ACTIVE));
        assert_eq!(
            c.csb(3),
            c.entry(lrc::csb::COMPLETE | lrc::csb::ACTIVE_IDLE)
        );
        for _ in 0..2 {
            c.emit(&[MI_NOOP, MI_NOOP]);
            assert_eq!(c.run(BUDGET), None);
        }
        assert_eq!(c.csb_wp(), 1);
        assert_eq!(c.csb(0), c.entry(lrc::csb::IDLE_ACTIVE));
    }

    #[test]
    fn page_sizes_64k_and_2m() {
        let env = env();
        let mut c = Ctx::new(&env, Engine::Bcs);
        // 2 MiB: one PD entry over 512 host pages (the allocator aligns them to 2 MiB).
        let big = c.mem(512, None);
        let va2m = 0x0000_0040_0000_0000;
        c.map_2m(va2m, big.dev_addr());
        // 64 KiB: a page table of 64 KiB entries over 512 host pages, in reverse order,
        // and a second one whose first entry is a run of 16 guest pages.
        let sixty = c.mem(512, None);
        let va64 = va2m + gtt::SZ_2M;
        let base = sixty.dev_addr();
        c.map_64k(va64, |k| base + (31 - k) * gtt::SZ_64K);
        let mut run: KVec<Arc<dyn DevPage>> = KVec::new();
        let mut fakes: KVec<Arc<FakePage>> = KVec::new();
        for _ in 0..16 {
            let p = FakePage::new(true);
            fakes.push(p.clone(), GFP_KERNEL).unwrap();
            run.push(p, GFP_KERNEL).unwrap();
        }
        let r = env.sim.map_run(&run).unwrap().unwrap();
        let va64g = va64 + gtt::SZ_2M;
        c.map_64k(va64g, |k| if k == 0 { r } else { 0 });
        c.emit(&sdi(va2m + 0x1f_f004, false, 0xa1, false));
        c.emit(&sdi(va2m + 0x1000, false, 0xa2, false));
        c.emit(&sdi(va64 + 0x1_2348, false, 0xb1, false));
        c.emit(&sdi(va64 + 0x1f_0000, false, 0xb2, false));
        c.emit(&sdi(va64g + 0x5008, false, 0xc1, false));
        assert_eq!(c.run(BUDGET), None);
        assert_eq!(ld(&big, 0x1f_f004), 0xa1);
        assert_eq!(ld(&big, 0x1000), 0xa2);
        // Slot 16 (the second 64 KiB) maps the 31st 64 KiB of the memory minus one.
        assert_eq!(ld(&sixty, (30 * gtt::SZ_64K + 0x2348) as usize), 0xb1);
        assert_eq!(ld(&sixty, 0x0), 0xb2);
        assert_eq!(fakes[5].peek32(8), 0xc1);
        // Past the 64 KiB run: slot 16 of that table is not present.
        c.emit(&sdi(va64g + gtt::SZ_64K, false, 0xc2, false));
        assert_eq!(
            c.run(BUDGET),
            Some(EngineError::Fault {
                addr: va64g + gtt::SZ_64K,
                ppgtt: true,
                write: true
            })
        );
    }

    #[test]
    fn batches_chain_and_nest() {
        let env = env();
        let mut c = Ctx::new(&env, Engine::Rcs);
        let data = c.mem(1, Some(DATA_GFX));
        // bb1 (GGTT) chains to bb2 (PPGTT), which calls bb3 (GGTT, second level) and
        // stores after it returns.
        let bb1_gfx = DATA_GFX + 0x1_0000;
        let bb3_gfx = DATA_GFX + 0x2_0000;
        let bb2_va = VA + 0x10_0000;
        let bb1 = c.mem(1, Some(bb1_gfx));
        let bb3 = c.mem(1, Some(bb3_gfx));
        let bb2 = c.ppgtt_mem(bb2_va, 1);
        let mut w: KVec<u32> = KVec::new();
        w.extend_from_slice(&sdi(DATA_GFX, true, 1, false), GFP_KERNEL)
            .unwrap();
        w.extend_from_slice(&bb_start(bb2_va, true, false), GFP_KERNEL)
            .unwrap();
        w.push(0xffff_ffff, GFP_KERNEL).unwrap(); // never reached
        bb1.write_dwords(0, &w).unwrap();
        w.clear();
        w.extend_from_slice(&bb_start(bb3_gfx, false, true), GFP_KERNEL)
            .unwrap();
        w.extend_from_slice(&sdi(DATA_GFX + 8, true, 3, false), GFP_KERNEL)
            .unwrap();
        w.push(MI_BB_END, GFP_KERNEL).unwrap();
        bb2.write_dwords(0, &w).unwrap();
        w.clear();
        w.extend_from_slice(&sdi(DATA_GFX + 4, true, 2, false), GFP_KERNEL)
            .unwrap();
        w.push(MI_BB_END, GFP_KERNEL).unwrap();
        bb3.write_dwords(0, &w).unwrap();
        c.emit(&bb_start(bb1_gfx, false, false));
        c.emit(&sdi(DATA_GFX + 12, true, 4, false));
        assert_eq!(c.run(BUDGET), None);
        assert_eq!(
            [ld(&data, 0), ld(&data, 4), ld(&data, 8), ld(&data, 12)],
            [1, 2, 3, 4]
        );
        assert_eq!(c.head(), c.tail);

        // Too deep: a second-level batch starting another second level.
        bb3.write_dwords(0, &bb_start(bb3_gfx + 0x100, false, true))
            .unwrap();
        let start = c.tail;
        c.emit(&bb_start(bb1_gfx, false, false));
        assert_eq!(c.run(BUDGET), Some(EngineError::Malformed { at: bb3_gfx }));
        // Head stays at the batch start in the ring.
        assert_eq!(c.head(), start);
        assert_eq!(
            env.ev.log().bits[0],
            regs::GT_CONTEXT_SWITCH | regs::GT_CS_MASTER_ERROR
        );
        // MI_BATCH_BUFFER_END in the ring.
        c.set_head_tail(c.tail, c.tail);
        let at = c.ring_gfx + u64::from(c.tail);
        c.emit(&[MI_BB_END]);
        assert_eq!(c.run(BUDGET), Some(EngineError::Malformed { at }));
    }

    #[test]
    fn ring_wraps() {
        let env = env();
        let mut c = Ctx::new(&env, Engine::Bcs);
        let data = c.mem(1, Some(DATA_GFX));
        // Start 8 bytes before the end: a 4-dword store wraps across it.
        let size = c.ring_size();
        c.set_head_tail((3 << ring::HEAD_WRAP_SHIFT) | (size - 8), size - 8);
        c.emit(&sdi(DATA_GFX, true, 0x77, false));
        c.emit(&sdi(DATA_GFX + 4, true, 0x88, false));
        assert_eq!(c.tail, 24);
        assert_eq!(c.run(BUDGET), None);
        assert_eq!(ld(&data, 0), 0x77);
        assert_eq!(ld(&data, 4), 0x88);
        // Wrap count carried and incremented once.
        assert_eq!(c.head(), (4 << ring::HEAD_WRAP_SHIFT) | 24);
        // A command running past the tail is truncated.
        let at = c.ring_gfx + u64::from(c.tail);
        let s = sdi(DATA_GFX, true, 0x99, false);
        c.emit(&s[..2]);
        assert_eq!(c.run(BUDGET), Some(EngineError::Malformed { at }));
        assert_eq!(ld(&data, 0), 0x77);
        assert_eq!(c.head(), (4 << ring::HEAD_WRAP_SHIFT) | 24);
    }

    #[test]
    fn not_modelled_and_malformed() {
        let env = env();
        let mut c = Ctx::new(&env, Engine::Rcs);
        let data = c.mem(1, Some(DATA_GFX));
        let before = env.sim.stats();
        // 3DSTATE_CLIP (4 dwords, junk payload) and MI_SET_PREDICATE: skipped.
        c.emit(&[
            (3 << 29) | (0x7812 << 16) | 2,
            0xffff_ffff,
            0xffff_ffff,
            0xffff_ffff,
        ]);
        c.emit(&[1 << 23]);
        c.emit(&sdi(DATA_GFX, true, 5, false));
        assert_eq!(c.run(BUDGET), None);
        assert_eq!(ld(&data, 0), 5);
        assert_eq!(env.sim.stats().not_modelled - before.not_modelled, 2);
        // Not in the table: an MI opcode GEN9 lacks, a blitter command on RCS, type 1.
        for bad in [0x3f << 23, (2 << 29) | (0x50 << 22) | 5, 1 << 29] {
            let at = c.ring_gfx + u64::from(c.tail);
            c.emit(&[bad, 0, 0, 0, 0, 0, 0]);
            assert_eq!(c.run(BUDGET), Some(EngineError::Malformed { at }));
            c.set_head_tail(c.tail, c.tail);
        }
        // A length GEN9 does not define: MI_SEMAPHORE_WAIT of 5 dwords, a dword SDI with
        // the qword bit, an even MI_LOAD_REGISTER_IMM.
        for bad in [
            (0x1c << 23) | 3,
            (0x20 << 23) | (1 << 21) | 2,
            (0x22 << 23) | 2,
        ] {
            let at = c.ring_gfx + u64::from(c.tail);
            c.emit(&[bad, 0, 0, 0, 0]);
            assert_eq!(c.run(BUDGET), Some(EngineError::Malformed { at }));
            assert_eq!(
                c.csb(c.csb_wp()),
                c.entry(lrc::csb::PREEMPTED | lrc::csb::ACTIVE_IDLE)
            );
            c.set_head_tail(c.tail, c.tail);
        }
        assert_eq!(ld(&data, 0), 5);
        assert!(env.sim.stats().faults - before.faults >= 6);
    }

    #[test]
    fn faults_touch_nothing() {
        let env = env();
        let mut c = Ctx::new(&env, Engine::Bcs);
        let pp = c.ppgtt_mem(VA, 1);
        poison(&pp);
        // A non-present PTE: the qword store to the page before is not made either.
        let hole = VA + 0x10_0000;
        c.emit(&sdi(hole + 8, false, 1, true));
        assert_eq!(
            c.run(BUDGET),
            Some(EngineError::Fault {
                addr: hole + 8,
                ppgtt: true,
                write: true
            })
        );
        assert_eq!(
            c.csb(c.csb_wp()),
            c.entry(lrc::csb::PREEMPTED | lrc::csb::ACTIVE_IDLE)
        );
        // A read-only PTE.
        c.set_head_tail(c.tail, c.tail);
        let ro = c.mem(1, None);
        poison(&ro);
        c.map_4k(VA + 0x1000, ro.dev_addr(), false);
        c.emit(&sdi(VA + 0x1000, false, 1, false));
        assert_eq!(
            c.run(BUDGET),
            Some(EngineError::Fault {
                addr: VA + 0x1000,
                ppgtt: true,
                write: true
            })
        );
        // ... which reads fine: MI_COPY_MEM_MEM from it into the GGTT.
        c.set_head_tail(c.tail, c.tail);
        let data = c.mem(1, Some(DATA_GFX));
        c.emit(&[
            (0x2e << 23) | (1 << 21) | 3,
            DATA_GFX as u32,
            0,
            (VA + 0x1000) as u32,
            (VA >> 32) as u32,
        ]);
        assert_eq!(c.run(BUDGET), None);
        assert_eq!(ld(&data, 0), 0x5a5a_5a5a);
        // A read-only guest page behind a writable PTE.
        let rop = FakePage::new(false);
        let rop_dev = env.sim.dma_map(rop.clone()).unwrap();
        c.map_4k(VA + 0x2000, rop_dev, true);
        c.emit(&sdi(VA + 0x2004, false, 1, false));
        assert_eq!(
            c.run(BUDGET),
            Some(EngineError::Fault {
                addr: VA + 0x2004,
                ppgtt: true,
                write: true
            })
        );
        assert_eq!(rop.peek32(4), 0);
        // A device address after dma_unmap.
        c.set_head_tail(c.tail, c.tail);
        let gp = FakePage::new(true);
        let gdev = env.sim.dma_map(gp.clone()).unwrap();
        c.map_4k(VA + 0x3000, gdev, true);
        c.emit(&sdi(VA + 0x3000, false, 0x42, false));
        assert_eq!(c.run(BUDGET), None);
        assert_eq!(gp.peek32(0), 0x42);
        env.sim.dma_unmap(gdev);
        c.emit(&sdi(VA + 0x3000, false, 0x43, false));
        assert_eq!(
            c.run(BUDGET),
            Some(EngineError::Fault {
                addr: VA + 0x3000,
                ppgtt: true,
                write: true
            })
        );
        assert_eq!(gp.peek32(0), 0x42);
        // A GGTT entry not present (and a GGTT address past 4 GiB).
        c.set_head_tail(c.tail, c.tail);
        c.emit(&sdi(DATA_GFX + 0x10_0000, true, 1, false));
        assert_eq!(
            c.run(BUDGET),
            Some(EngineError::Fault {
                addr: DATA_GFX + 0x10_0000,
                ppgtt: false,
                write: true
            })
        );
        c.set_head_tail(c.tail, c.tail);
        c.emit(&sdi(1 << 32, true, 1, false));
        assert!(matches!(
            c.run(BUDGET),
            Some(EngineError::Fault { ppgtt: false, .. })
        ));
        // A two-page fill whose second page is not present: the first is not touched.
        c.set_head_tail(c.tail, c.tail);
        c.unmap_4k(VA + 0x1000);
        c.emit(&enc(GpuCmd::ColorBlt {
            dst: VA,
            pitch: 4096,
            from: (0, 0),
            to: (1024, 2),
            color: 0x1234_5678,
        }));
        assert_eq!(
            c.run(BUDGET),
            Some(EngineError::Fault {
                addr: VA + 0x1000,
                ppgtt: true,
                write: true
            })
        );
        assert!(untouched(&pp));
        assert!(untouched(&ro));
        // A copy whose source faults on its second page writes nothing either.
        c.set_head_tail(c.tail, c.tail);
        let dst = c.ppgtt_mem(VA + 0x20_0000, 2);
        poison(&dst);
        c.emit(&enc(GpuCmd::SrcCopyBlt {
            dst: VA + 0x20_0000,
            dst_pitch: 4096,
            from: (0, 0),
            to: (1024, 2),
            src: VA,
            src_pitch: 4096,
            src_from: (0, 0),
        }));
        assert_eq!(
            c.run(BUDGET),
            Some(EngineError::Fault {
                addr: VA + 0x1000,
                ppgtt: true,
                write: false
            })
        );
        assert!(untouched(&dst));
    }

    #[test]
    fn blits_fill_and_copy() {
        let env = env();
        let mut c = Ctx::new(&env, Engine::Bcs);
        let m = c.ppgtt_mem(VA, 4);
        let before = env.sim.stats();
        // 32 bpp fill of a 3x2 rectangle at (1, 1), pitch 64.
        c.emit(&enc(GpuCmd::ColorBlt {
            dst: VA,
            pitch: 64,
            from: (1, 1),
            to: (4, 3),
            color: 0xc0ff_ee00,
        }));
        assert_eq!(c.run(BUDGET), None);
        for y in 0..4usize {
            for x in 0..6usize {
                let want = if (1..3).contains(&y) && (1..4).contains(&x) {
                    0xc0ff_ee00
                } else {
                    0
                };
                assert_eq!(ld(&m, y * 64 + x * 4), want);
            }
        }
        assert_eq!(env.sim.stats().blit_bytes - before.blit_bytes, 24);
        // 8 bpp fill from x = 3 to 10 on one row, at 0x1000.
        let h8 = (2 << 29) | (0x50 << 22) | (3 << 20) | 5;
        c.emit(&[
            h8,
            (0xf0 << 16) | 64,
            3,
            (1 << 16) | 10,
            (VA + 0x1000) as u32,
            (VA >> 32) as u32,
            0xab,
        ]);
        // 16 bpp fill from x = 1 to 4, at 0x1100.
        c.emit(&[
            h8,
            (1 << 24) | (0xf0 << 16) | 64,
            1,
            (1 << 16) | 4,
            (VA + 0x1100) as u32,
            (VA >> 32) as u32,
            0x1234,
        ]);
        // 32 bpp with only the alpha write enable, over the first fill.
        let ha = (2 << 29) | (0x50 << 22) | (2 << 20) | 5;
        c.emit(&[
            ha,
            (3 << 24) | (0xf0 << 16) | 64,
            (1 << 16) | 1,
            (2 << 16) | 2,
            VA as u32,
            (VA >> 32) as u32,
            0x11_22_33_44,
        ]);
        assert_eq!(c.run(BUDGET), None);
        assert_eq!(ld(&m, 0x1000), 0xab00_0000);
        assert_eq!(ld(&m, 0x1004), 0xabab_abab);
        assert_eq!(ld(&m, 0x1008), 0x0000_abab);
        assert_eq!(ld(&m, 0x1100), 0x1234_0000);
        assert_eq!(ld(&m, 0x1104), 0x1234_1234);
        assert_eq!(ld(&m, 0x1108), 0);
        assert_eq!(ld(&m, 64 + 4), 0x11ff_ee00);
        assert_eq!(ld(&m, 64 + 8), 0xc0ff_ee00);
        // 32 bpp copy of 2x2 from (1, 1) to (0, 8) at pitch 64, then an 8 bpp copy
        // of 7 bytes to an odd destination from an odd source.
        c.emit(&enc(GpuCmd::SrcCopyBlt {
            dst: VA,
            dst_pitch: 64,
            from: (0, 8),
            to: (2, 10),
            src: VA,
            src_pitch: 64,
            src_from: (1, 1),
        }));
        let hc = (2 << 29) | (0x53 << 22) | (3 << 20) | 8;
        c.emit(&[
            hc,
            (0xcc << 16) | 64,
            5,
            (1 << 16) | 12,
            (VA + 0x2000) as u32,
            (VA >> 32) as u32,
            3,
            64,
            (VA + 0x1000) as u32,
            (VA >> 32) as u32,
        ]);
        // XY_FAST_COPY_BLT, 32 bpp, one page across two rows of 2 KiB.
        let hf = (2 << 29) | (0x42 << 22) | 8;
        c.emit(&[
            hf,
            (3 << 24) | 2048,
            0,
            (2 << 16) | 512,
            (VA + 0x3000) as u32,
            (VA >> 32) as u32,
            0,
            2048,
            VA as u32,
            (VA >> 32) as u32,
        ]);
        assert_eq!(c.run(BUDGET), None);
        assert_eq!(ld(&m, 8 * 64), 0x11ff_ee00);
        assert_eq!(ld(&m, 8 * 64 + 4), 0xc0ff_ee00);
        assert_eq!(ld(&m, 9 * 64), 0xc0ff_ee00);
        assert_eq!(ld(&m, 10 * 64), 0);
        // Source bytes 3..10 of 0x1000: ab ab ab ab ab ab ab; to bytes 5..12 of 0x2000.
        assert_eq!(ld(&m, 0x2000), 0);
        assert_eq!(ld(&m, 0x2004), 0xabab_ab00);
        assert_eq!(ld(&m, 0x2008), 0xabab_abab);
        assert_eq!(ld(&m, 0x200c), 0);
        for off in (0..4096).step_by(4) {
            assert_eq!(ld(&m, 0x3000 + off), ld(&m, off));
        }
        // Tiled, or another ROP: skipped and counted.
        let nm = env.sim.stats().not_modelled;
        c.emit(&[
            h8 | (1 << 11),
            (0xf0 << 16) | 64,
            0,
            (1 << 16) | 1,
            (VA + 0x2100) as u32,
            (VA >> 32) as u32,
            0xff,
        ]);
        c.emit(&[
            h8,
            (0x5a << 16) | 64,
            0,
            (1 << 16) | 1,
            (VA + 0x2100) as u32,
            (VA >> 32) as u32,
            0xff,
        ]);
        assert_eq!(c.run(BUDGET), None);
        assert_eq!(ld(&m, 0x2100), 0);
        assert_eq!(env.sim.stats().not_modelled - nm, 2);
    }

    #[test]
    fn budget_runs_out() {
        let env = env();
        let mut c = Ctx::new(&env, Engine::Rcs);
        let data = c.mem(1, Some(DATA_GFX));
        let bb_gfx = DATA_GFX + 0x1_0000;
        let bb = c.mem(1, Some(bb_gfx));
        // A batch that starts itself.
        bb.write_dwords(0, &bb_start(bb_gfx, false, false)).unwrap();
        let start = c.tail;
        c.emit(&bb_start(bb_gfx, false, false));
        let hangs = env.sim.stats().hangs;
        assert_eq!(c.run(1000), Some(EngineError::Hang));
        assert_eq!(env.sim.stats().hangs - hangs, 1);
        assert_eq!(c.head(), start);
        assert_eq!(
            c.csb(c.csb_wp()),
            c.entry(lrc::csb::PREEMPTED | lrc::csb::ACTIVE_IDLE)
        );
        assert_eq!(
            env.ev.log().bits[0],
            regs::GT_CONTEXT_SWITCH | regs::GT_CS_MASTER_ERROR
        );
        // A semaphore that never holds.
        c.set_head_tail(c.tail, c.tail);
        c.emit(&enc(GpuCmd::SemaphoreWait {
            addr: DATA_GFX,
            value: 1,
            op: 4,
        }));
        c.emit(&sdi(DATA_GFX + 4, true, 9, false));
        assert_eq!(c.run(200), Some(EngineError::Hang));
        assert_eq!(ld(&data, 4), 0);
        // ... and one that does.
        data.store32(0, 1).unwrap();
        c.set_head_tail(start + 12, c.tail);
        assert_eq!(c.run(200), None);
        assert_eq!(ld(&data, 4), 9);
        // A blit whose rows do not fit the budget writes nothing.
        let mut b = Ctx::new(&env, Engine::Bcs);
        let m = b.ppgtt_mem(VA, 1);
        poison(&m);
        b.emit(&enc(GpuCmd::ColorBlt {
            dst: VA,
            pitch: 16,
            from: (0, 0),
            to: (4, 100),
            color: 1,
        }));
        assert_eq!(b.run(100), Some(EngineError::Hang));
        assert!(untouched(&m));
        // The blit (1 + 100 rows) and the MI_NOOP padding the tail.
        assert_eq!(b.run(102), None);
        assert_eq!(ld(&m, 99 * 16), 1);
    }

    #[test]
    fn reset_busy_and_two_engines() {
        let env = env();
        let mut r = Ctx::new(&env, Engine::Rcs);
        let mut b = Ctx::new(&env, Engine::Bcs);
        let data = r.mem(1, Some(DATA_GFX));
        let bb_gfx = DATA_GFX + 0x1_0000;
        let bb = r.mem(1, Some(bb_gfx));
        bb.write_dwords(0, &[MI_NOOP, MI_NOOP]).unwrap();
        bb.write_dwords(8, &bb_start(bb_gfx, false, false)).unwrap();
        r.emit(&bb_start(bb_gfx, false, false));
        r.submit(u32::MAX).unwrap();
        assert!(env.sim.busy(Engine::Rcs));
        assert_eq!(env.sim.submit(Engine::Rcs, r.desc(), 10), Err(EBUSY));
        env.sim.reset_engine(Engine::Rcs);
        assert!(!env.sim.busy(Engine::Rcs));
        assert_eq!(r.wait(), Some(EngineError::Reset));
        assert_eq!(
            r.csb(r.csb_wp()),
            r.entry(lrc::csb::PREEMPTED | lrc::csb::ACTIVE_IDLE)
        );
        assert_eq!(env.ev.log().bits[0], regs::GT_CONTEXT_SWITCH);
        // Idle: a reset returns at once.
        env.sim.reset_engine(Engine::Rcs);

        // RCS waits on a semaphore BCS releases: both run at once.
        r.set_head_tail(r.tail, r.tail);
        r.emit(&enc(GpuCmd::SemaphoreWait {
            addr: DATA_GFX,
            value: 0x5e,
            op: 4,
        }));
        r.emit(&sdi(DATA_GFX + 4, true, 0x600d, false));
        r.submit(BUDGET).unwrap();
        b.emit(&sdi(DATA_GFX, true, 0x5e, false));
        b.emit(&[MI_USER_INTERRUPT]);
        assert_eq!(b.run(BUDGET), None);
        assert_eq!(r.wait(), None);
        assert_eq!(ld(&data, 4), 0x600d);
        assert_eq!(env.ev.log().users, [0, 1]);
        assert_eq!(b.csb_wp(), 1);
        assert_eq!(
            b.csb(1),
            b.entry(lrc::csb::COMPLETE | lrc::csb::ACTIVE_IDLE)
        );
    }

    #[test]
    fn speed() {
        let env = env();
        let mut c = Ctx::new(&env, Engine::Bcs);
        // 100k MI_STORE_DATA_IMM (PPGTT) in one GGTT batch.
        const N: usize = 100_000;
        let bb_gfx = 0x0100_0000u64;
        let pages = (N * 16 + 4).div_ceil(PAGE as usize);
        let bb = c.mem(pages, Some(bb_gfx));
        let _target = c.ppgtt_mem(VA, 1);
        let mut w: KVVec<u32> = KVVec::with_capacity(N * 4 + 1, GFP_KERNEL).unwrap();
        for i in 0..N {
            let a = VA + ((i % 512) * 8) as u64;
            w.extend_from_slice(
                &[(0x20 << 23) | 2, a as u32, (a >> 32) as u32, i as u32],
                GFP_KERNEL,
            )
            .unwrap();
        }
        w.push(MI_BB_END, GFP_KERNEL).unwrap();
        bb.write_dwords(0, &w).unwrap();
        c.emit(&bb_start(bb_gfx, false, false));
        let t = Instant::<Monotonic>::now();
        assert_eq!(c.run(BUDGET), None);
        let us = t.elapsed().as_micros_ceil().max(1) as u64;
        pr_info!(
            "    # sim speed: {} MI_STORE_DATA_IMM in {} us: {} commands/s\n",
            N,
            us,
            N as u64 * 1_000_000 / us
        );
        // 4 MiB fill and 4 MiB copy, 32 bpp, pitch 4096, through 2 MiB pages.
        let src = c.mem(1024, None);
        let dst = c.mem(1024, None);
        let (vs, vd) = (0x0000_0080_0000_0000u64, 0x0000_0080_4000_0000u64);
        for k in 0..2 {
            c.map_2m(vs + k * gtt::SZ_2M, src.dev_addr() + k * gtt::SZ_2M);
            c.map_2m(vd + k * gtt::SZ_2M, dst.dev_addr() + k * gtt::SZ_2M);
        }
        let mib = 4u64;
        c.emit(&enc(GpuCmd::ColorBlt {
            dst: vs,
            pitch: 4096,
            from: (0, 0),
            to: (1024, 1024),
            color: 0x0102_0304,
        }));
        let t = Instant::<Monotonic>::now();
        assert_eq!(c.run(BUDGET), None);
        let fill_us = t.elapsed().as_micros_ceil().max(1) as u64;
        c.emit(&enc(GpuCmd::SrcCopyBlt {
            dst: vd,
            dst_pitch: 4096,
            from: (0, 0),
            to: (1024, 1024),
            src: vs,
            src_pitch: 4096,
            src_from: (0, 0),
        }));
        let t = Instant::<Monotonic>::now();
        assert_eq!(c.run(BUDGET), None);
        let copy_us = t.elapsed().as_micros_ceil().max(1) as u64;
        assert_eq!(ld(&dst, 4 * 1024 * 1024 - 4), 0x0102_0304);
        assert_eq!(ld(&dst, 0), 0x0102_0304);
        pr_info!(
            "    # sim speed: XY_COLOR_BLT {} MiB in {} us: {} MB/s; XY_SRC_COPY_BLT {} MiB in {} us: {} MB/s\n",
            mib,
            fill_us,
            mib * 1_048_576 / fill_us,
            mib,
            copy_us,
            mib * 1_048_576 / copy_us
        );
    }
}
