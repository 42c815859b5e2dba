// SPDX-License-Identifier: GPL-2.0

//! KUnit suite of the command parser: a fake guest memory over `KVec`s and a bump
//! allocator for placements.

use kernel::prelude::*;

#[kunit_tests(gvtpv_host_cmd_parser)]
mod suite {
    use super::super::{
        policy::EXTRA_CMDS, scan, Engine, Limits, Memory, Placement, Ranges, Reason, Refusal,
        Scanned, Space, PPGTT_LIMIT, REASONS,
    };
    use crate::abi::gpu_cmd::{
        table::{ring, CmdKind, LenRule, GEN9_CMDS},
        GpuCmd,
    };
    use core::cell::Cell;
    use kernel::prelude::*;

    const AP_BASE: u64 = 0x10_0000;
    const AP_SIZE: u64 = 0x1_0000;
    const HID_BASE: u64 = 0x4000_0000;
    const HID_SIZE: u64 = 0x1_0000;
    const RING_BASE: u64 = AP_BASE + 0x8000;
    const RING_SIZE: u64 = 0x1000;
    const PP: u64 = 0x7000_0000;
    const PP_SIZE: u64 = 0x4000;
    const PP_TOP: u64 = PPGTT_LIMIT - 0x1000;
    const HOST: u64 = 0x0800_0000;

    const NOOP: u32 = 0;
    const ARB_CHECK: u32 = 0x05 << 23;
    const BB_END: u32 = 0x0a << 23;
    const USER_INTERRUPT: u32 = 0x02 << 23;
    const CACHE_MODE_1: u32 = 0x7004;
    const XY_FAST_COPY_BLT: u32 = (2 << 29) | (0x42 << 22) | (10 - 2);

    const RANGES: Ranges = Ranges {
        aperture_base: AP_BASE,
        aperture_size: AP_SIZE,
        hidden_base: HID_BASE,
        hidden_size: HID_SIZE,
        ring_base: RING_BASE,
        ring_size: RING_SIZE,
        ppgtt_limit: PPGTT_LIMIT,
    };

    /// Guest memory: a few regions of dwords, zero (MI_NOOP) until written.
    struct FakeMem {
        regions: KVec<(Space, u64, KVec<u32>)>,
        reads: Cell<usize>,
        largest: Cell<usize>,
    }

    impl FakeMem {
        fn new() -> Result<Self> {
            let mut regions = KVec::new();
            for (space, base, bytes) in [
                (Space::Ggtt, AP_BASE, AP_SIZE),
                (Space::Ggtt, HID_BASE, HID_SIZE),
                (Space::Ppgtt, PP, PP_SIZE),
                (Space::Ppgtt, PP_TOP, 0x1000),
            ] {
                let words = KVec::from_elem(0u32, (bytes / 4) as usize, GFP_KERNEL)?;
                regions.push((space, base, words), GFP_KERNEL)?;
            }
            Ok(Self {
                regions,
                reads: Cell::new(0),
                largest: Cell::new(0),
            })
        }

        fn region(&self, space: Space, addr: u64, n: usize) -> Option<(usize, usize)> {
            self.regions
                .iter()
                .enumerate()
                .find_map(|(i, (s, base, w))| {
                    let off = usize::try_from(addr.checked_sub(*base)? / 4).ok()?;
                    (*s == space && addr % 4 == 0 && off.checked_add(n)? <= w.len())
                        .then_some((i, off))
                })
        }

        fn write(&mut self, space: Space, addr: u64, words: &[u32]) -> Result {
            let (i, off) = self.region(space, addr, words.len()).ok_or(EINVAL)?;
            let r = self.regions.get_mut(i).ok_or(EINVAL)?;
            r.2.get_mut(off..off + words.len())
                .ok_or(EINVAL)?
                .copy_from_slice(words);
            Ok(())
        }
    }

    impl Memory for FakeMem {
        fn read(&self, space: Space, addr: u64, out: &mut [u32]) -> Result {
            self.reads.set(self.reads.get() + 1);
            self.largest.set(self.largest.get().max(out.len()));
            let (i, off) = self.region(space, addr, out.len()).ok_or(EFAULT)?;
            let r = self.regions.get(i).ok_or(EFAULT)?;
            out.copy_from_slice(r.2.get(off..off + out.len()).ok_or(EFAULT)?);
            Ok(())
        }
    }

    /// A bump allocator of page-aligned host GGTT addresses.
    struct FakePlace {
        next: u64,
        fail: bool,
    }

    impl FakePlace {
        fn new() -> Self {
            Self {
                next: HOST,
                fail: false,
            }
        }
    }

    impl Placement for FakePlace {
        fn place(&mut self, dwords: usize) -> Result<u64> {
            if self.fail {
                return Err(ENOSPC);
            }
            let at = self.next;
            self.next += ((dwords as u64 * 4) + 4095) & !4095;
            Ok(at)
        }
    }

    fn put(v: &mut KVec<u32>, c: GpuCmd<'_>) -> Result {
        let mut buf = [0u32; 16];
        let n = c.encode(&mut buf).map_err(|_| EINVAL)?;
        v.extend_from_slice(buf.get(..n).ok_or(EINVAL)?, GFP_KERNEL)?;
        Ok(())
    }

    fn words(w: &[u32]) -> Result<KVec<u32>> {
        let mut v = KVec::new();
        v.extend_from_slice(w, GFP_KERNEL)?;
        Ok(v)
    }

    fn start(addr: u64, ppgtt: bool, second_level: bool) -> GpuCmd<'static> {
        GpuCmd::BatchBufferStart {
            addr,
            ppgtt,
            second_level,
        }
    }

    fn sdi(addr: u64, ggtt: bool, qword: bool) -> GpuCmd<'static> {
        GpuCmd::StoreDataImm {
            addr,
            ggtt,
            value: 7,
            qword,
        }
    }

    fn run(e: Engine, ring: &[u32], mem: &FakeMem, l: &Limits) -> Result<Scanned, Refusal> {
        let mut p = FakePlace::new();
        scan(e, ring, mem, &mut p, &RANGES, l)
    }

    fn why(r: Result<Scanned, Refusal>) -> Result<(), Reason> {
        r.map(|_| ()).map_err(|r| r.reason)
    }

    /// Every command of the GEN9 table on a ring it exists on, with a valid length and
    /// zero operands: it passes, or is refused by policy as the policy says.
    #[test]
    fn every_table_command() -> Result {
        let mem = FakeMem::new()?;
        let (mut tested, mut passed, mut elsewhere) = (0, 0, 0);
        for info in GEN9_CMDS.iter() {
            let engine = if info.rings & ring::RCS != 0 {
                Engine::Rcs
            } else if info.rings & ring::BCS != 0 {
                Engine::Bcs
            } else {
                // A video or VEBOX command: on RCS its header is another command or none.
                let h = u32::from(info.opcode) << 16;
                let other = crate::abi::gpu_cmd::table::lookup(h, ring::RCS).map(|c| c.name);
                assert!(other != Ok(info.name));
                elsewhere += 1;
                continue;
            };
            let header = match info.kind {
                CmdKind::Mi => u32::from(info.opcode) << 23,
                CmdKind::Blt => u32::from(info.opcode) << 22,
                CmdKind::Gfx => u32::from(info.opcode) << 16,
            };
            let len: u32 = match info.len {
                LenRule::Fixed(n) => u32::from(n),
                LenRule::Exact { len, .. } => u32::from(len),
                LenRule::Var { .. } => match info.name {
                    "MI_STORE_DATA_IMM" | "MI_FLUSH_DW" => 4,
                    "PIPE_CONTROL" => 6,
                    _ if info.kind == CmdKind::Blt => 10,
                    _ => 3,
                },
            };
            let header = match info.len {
                LenRule::Fixed(_) => header,
                _ => header | (len - 2),
            };
            let mut ring = KVec::from_elem(0u32, len as usize + 1, GFP_KERNEL)?;
            ring[0] = header;
            let want = match info.name {
                "MI_BATCH_BUFFER_END" => Err(Reason::Nesting),
                // GGTT address 0 is outside the vGPU's slices.
                "MI_BATCH_BUFFER_START" => Err(Reason::Address),
                "MI_DISPLAY_FLIP"
                | "MI_UPDATE_GTT"
                | "MI_CLFLUSH"
                | "MI_REPORT_PERF_COUNT"
                | "MI_CONDITIONAL_BATCH_BUFFER_END" => Err(Reason::Privileged),
                // Register 0 is not whitelisted; LRR never is on GEN9.
                "MI_LOAD_REGISTER_IMM"
                | "MI_LOAD_REGISTER_REG"
                | "MI_STORE_REGISTER_MEM"
                | "MI_LOAD_REGISTER_MEM" => Err(Reason::Register),
                _ => Ok(()),
            };
            let got = why(run(engine, &ring, &mem, &Limits::DEFAULT));
            if got != want {
                pr_err!("cmd_parser kunit: {} gave {:?}\n", info.name, got);
            }
            assert_eq!(got, want);
            tested += 1;
            if got.is_ok() {
                passed += 1;
            }
        }
        assert_eq!(tested + elsewhere, GEN9_CMDS.len());
        assert_eq!(tested, 182);
        assert_eq!(passed, 171);
        Ok(())
    }

    /// The commands the sim models pass when well formed, and the shadow ring is the
    /// guest's.
    #[test]
    fn sim_commands_pass() -> Result {
        let mem = FakeMem::new()?;
        let mut r = KVec::new();
        let pairs = [CACHE_MODE_1, 0x0001_0001, 0x2000 + 0x9c, 0x0001_0000];
        for c in [
            GpuCmd::Noop,
            GpuCmd::UserInterrupt,
            GpuCmd::ArbCheck,
            sdi(AP_BASE + 0x100, true, false),
            sdi(HID_BASE + 0x100, true, true),
            sdi(PP + 8, false, true),
            GpuCmd::StoreDwordIndex {
                index: 0x30,
                value: 1,
            },
            GpuCmd::LoadRegisterImm {
                pairs: &pairs,
                posted: false,
            },
            GpuCmd::FlushDw {
                addr: AP_BASE + 0x200,
                value: 3,
            },
            GpuCmd::PipeControl {
                addr: HID_BASE + 0x200,
                value: 4,
            },
            GpuCmd::SemaphoreWait {
                addr: AP_BASE + 0x300,
                value: 1,
                op: 4,
            },
            GpuCmd::CopyMemMem {
                dst: AP_BASE + 0x400,
                src: HID_BASE + 0x400,
            },
        ] {
            put(&mut r, c)?;
        }
        let s = run(Engine::Rcs, &r, &mem, &Limits::DEFAULT).map_err(|_| EINVAL);
        assert!(s.is_ok());
        let s = s?;
        assert!(s.ring[..] == r[..]);
        assert_eq!(s.batches.len(), 0);
        assert_eq!(s.stats.commands, 12);
        assert_eq!(s.stats.ring_bytes, r.len() * 4);

        let mut b = KVec::new();
        for c in [
            GpuCmd::ColorBlt {
                dst: PP,
                pitch: 64,
                from: (0, 0),
                to: (16, 16),
                color: 1,
            },
            GpuCmd::SrcCopyBlt {
                dst: PP,
                dst_pitch: 64,
                from: (0, 0),
                to: (16, 16),
                src: PP + 0x1000,
                src_pitch: 64,
                src_from: (0, 0),
            },
            GpuCmd::FlushDw {
                addr: AP_BASE,
                value: 1,
            },
        ] {
            put(&mut b, c)?;
        }
        let hi = (PP_TOP >> 32) as u32;
        b.extend_from_slice(
            &[
                XY_FAST_COPY_BLT,
                0,
                0,
                0,
                PP as u32,
                0,
                0,
                0,
                PP_TOP as u32,
                hi,
            ],
            GFP_KERNEL,
        )?;
        assert_eq!(EXTRA_CMDS.len(), 1);
        assert_eq!(why(run(Engine::Bcs, &b, &mem, &Limits::DEFAULT)), Ok(()));
        // The blitter's commands do not exist on the render ring, and LRI of a BCS
        // register is not the render ring's business.
        assert_eq!(
            why(run(Engine::Rcs, &b, &mem, &Limits::DEFAULT)),
            Err(Reason::Unknown)
        );
        // FAST_COPY with another length; a blitter address above 48 bits.
        let mut bad = words(&b)?;
        bad[21] = XY_FAST_COPY_BLT + 1;
        assert_eq!(
            why(run(Engine::Bcs, &bad, &mem, &Limits::DEFAULT)),
            Err(Reason::Length)
        );
        let mut bad = words(&b)?;
        bad[5] = 0x1_0000;
        assert_eq!(
            why(run(Engine::Bcs, &bad, &mem, &Limits::DEFAULT)),
            Err(Reason::Address)
        );
        Ok(())
    }

    /// A ring batch start is pointed at the copy, which holds exactly the batch.
    #[test]
    fn ring_start_is_patched() -> Result {
        let mut mem = FakeMem::new()?;
        let mut batch = KVec::new();
        put(&mut batch, sdi(PP + 0x100, false, false))?;
        batch.extend_from_slice(&[NOOP, BB_END, ARB_CHECK, ARB_CHECK], GFP_KERNEL)?;
        mem.write(Space::Ppgtt, PP + 0xff8, &batch)?;
        let mut r = words(&[NOOP])?;
        put(&mut r, start(PP + 0xff8, true, false))?;
        r.push(USER_INTERRUPT, GFP_KERNEL)?;
        let s = run(Engine::Rcs, &r, &mem, &Limits::DEFAULT).map_err(|_| EINVAL);
        assert!(s.is_ok());
        let s = s?;
        assert_eq!(s.batches.len(), 1);
        let b = &s.batches[0];
        assert_eq!(b.host_addr, HOST);
        assert_eq!(b.guest_addr, PP + 0xff8);
        assert_eq!(b.space, Space::Ppgtt);
        // SDI (4) + NOOP + BB_END, across a page boundary; not the two ARB_CHECKs.
        assert!(b.data[..] == batch[..6]);
        assert_eq!(s.ring[1], (0x31 << 23) | 1);
        assert_eq!(s.ring[2], HOST as u32);
        assert_eq!(s.ring[3], 0);
        assert_eq!(s.ring[0], NOOP);
        assert_eq!(s.ring[4], USER_INTERRUPT);
        assert_eq!(s.stats.batches, 1);
        assert_eq!(s.stats.batch_bytes, 24);
        assert_eq!(s.stats.commands, 3 + 3);
        // Page by page: the 2 dwords before the boundary, then one page.
        assert_eq!(mem.reads.get(), 2);
        assert_eq!(mem.largest.get(), 1024);
        Ok(())
    }

    /// A first-level GGTT batch with a second-level batch and a chained one: every
    /// start points at its copy through the GGTT, second level kept.
    #[test]
    fn chained_and_second_level() -> Result {
        let mut mem = FakeMem::new()?;
        let (a, b, c) = (AP_BASE + 0x1000, PP + 0x2000, PP + 0x3000);
        let mut first = words(&[NOOP])?;
        put(&mut first, start(c, true, true))?;
        first.push(ARB_CHECK, GFP_KERNEL)?;
        put(&mut first, start(b, true, false))?;
        first.push(ARB_CHECK, GFP_KERNEL)?; // Never runs: the chain ended the batch.
        mem.write(Space::Ggtt, a, &first)?;
        mem.write(Space::Ppgtt, c, &[NOOP, USER_INTERRUPT, BB_END])?;
        mem.write(Space::Ppgtt, b, &[ARB_CHECK, BB_END])?;
        let mut r = KVec::new();
        put(&mut r, start(a, false, false))?;
        let s = run(Engine::Rcs, &r, &mem, &Limits::DEFAULT).map_err(|_| EINVAL);
        assert!(s.is_ok());
        let s = s?;
        assert_eq!(s.batches.len(), 3);
        let (ca, cc, cb) = (&s.batches[0], &s.batches[1], &s.batches[2]);
        assert_eq!((ca.guest_addr, cc.guest_addr, cb.guest_addr), (a, c, b));
        // Copies end at their end: A at the chained start, C and B at BB_END.
        assert_eq!(ca.data.len(), 8);
        assert!(cc.data[..] == [NOOP, USER_INTERRUPT, BB_END]);
        assert!(cb.data[..] == [ARB_CHECK, BB_END]);
        // Ring -> A, GGTT.
        assert!(s.ring[..] == [(0x31 << 23) | 1, ca.host_addr as u32, 0]);
        // A -> C: second level kept, PPGTT bit cleared.
        assert_eq!(ca.data[1], (0x31 << 23) | 1 | (1 << 22));
        assert_eq!(ca.data[2], cc.host_addr as u32);
        // A -> B: chained, GGTT.
        assert_eq!(ca.data[5], (0x31 << 23) | 1);
        assert_eq!(ca.data[6], cb.host_addr as u32);
        assert_eq!(ca.data[7], 0);
        // Three distinct places.
        assert!(ca.host_addr != cc.host_addr && cc.host_addr != cb.host_addr);
        assert_eq!(s.stats.batch_bytes, (8 + 3 + 2) * 4);
        Ok(())
    }

    /// Second level from the ring, inside a second level, or beyond the limit.
    #[test]
    fn nesting() -> Result {
        let mut mem = FakeMem::new()?;
        let (a, c) = (PP, PP + 0x1000);
        let mut first = KVec::new();
        put(&mut first, start(c, true, true))?;
        first.push(BB_END, GFP_KERNEL)?;
        mem.write(Space::Ppgtt, a, &first)?;
        let mut second = KVec::new();
        put(&mut second, start(PP + 0x2000, true, true))?;
        mem.write(Space::Ppgtt, c, &second)?;
        mem.write(Space::Ppgtt, PP + 0x2000, &[BB_END])?;
        let mut r = KVec::new();
        put(&mut r, start(a, true, false))?;
        let got = run(Engine::Rcs, &r, &mem, &Limits::DEFAULT);
        assert_eq!(
            got.as_ref().err().map(|e| (e.reason, e.batch, e.offset)),
            Some((Reason::Nesting, Some(c), 0))
        );
        // A chained start inside a second level (GVT-g refuses any).
        let mut second = KVec::new();
        put(&mut second, start(PP + 0x2000, true, false))?;
        mem.write(Space::Ppgtt, c, &second)?;
        assert_eq!(
            why(run(Engine::Rcs, &r, &mem, &Limits::DEFAULT)),
            Err(Reason::Nesting)
        );
        // A proper second level passes; with one level allowed it does not.
        mem.write(Space::Ppgtt, c, &[BB_END, 0, 0])?;
        assert_eq!(why(run(Engine::Rcs, &r, &mem, &Limits::DEFAULT)), Ok(()));
        let one = Limits {
            max_depth: 1,
            ..Limits::DEFAULT
        };
        assert_eq!(why(run(Engine::Rcs, &r, &mem, &one)), Err(Reason::Nesting));
        // Second level from the ring; a batch end in the ring.
        let mut r2 = KVec::new();
        put(&mut r2, start(a, true, true))?;
        assert_eq!(
            why(run(Engine::Rcs, &r2, &mem, &Limits::DEFAULT)),
            Err(Reason::Nesting)
        );
        assert_eq!(
            why(run(Engine::Rcs, &[NOOP, BB_END], &mem, &Limits::DEFAULT)),
            Err(Reason::Nesting)
        );
        Ok(())
    }

    /// GGTT accesses and GGTT batch starts from a batch are refused; from the ring the
    /// same commands pass.
    #[test]
    fn ggtt_from_batch() -> Result {
        let mut mem = FakeMem::new()?;
        let mut r = KVec::new();
        put(&mut r, start(PP, true, false))?;
        let cases = [
            start(AP_BASE + 0x100, false, false),
            start(AP_BASE + 0x100, false, true),
            sdi(AP_BASE + 0x100, true, false),
            GpuCmd::PipeControl {
                addr: AP_BASE,
                value: 0,
            },
            GpuCmd::FlushDw {
                addr: AP_BASE,
                value: 0,
            },
            GpuCmd::StoreDwordIndex { index: 1, value: 0 },
            GpuCmd::SemaphoreWait {
                addr: AP_BASE,
                value: 0,
                op: 0,
            },
            GpuCmd::CopyMemMem {
                dst: AP_BASE,
                src: AP_BASE,
            },
        ];
        for c in cases {
            let mut b = KVec::new();
            put(&mut b, c)?;
            b.push(BB_END, GFP_KERNEL)?;
            mem.write(Space::Ppgtt, PP, &b)?;
            let got = run(Engine::Rcs, &r, &mem, &Limits::DEFAULT);
            assert_eq!(
                got.as_ref().err().map(|e| (e.reason, e.batch, e.offset)),
                Some((Reason::GgttInBatch, Some(PP), 0))
            );
        }
        // From the ring: a GGTT batch in the slices, and the accesses, pass.
        mem.write(Space::Ggtt, AP_BASE + 0x100, &[BB_END])?;
        for c in cases.iter().filter(|c| {
            !matches!(
                c,
                GpuCmd::BatchBufferStart {
                    second_level: true,
                    ..
                }
            )
        }) {
            let mut ring = KVec::new();
            put(&mut ring, *c)?;
            assert_eq!(why(run(Engine::Rcs, &ring, &mem, &Limits::DEFAULT)), Ok(()));
        }
        Ok(())
    }

    /// Addresses one byte inside and outside the slices and the PPGTT.
    #[test]
    fn address_edges() -> Result {
        let mem = FakeMem::new()?;
        let store = |addr: u64, ggtt: bool, qword: bool| -> Result<Result<(), Reason>> {
            let mut r = KVec::new();
            put(&mut r, sdi(addr, ggtt, qword))?;
            Ok(why(run(Engine::Rcs, &r, &mem, &Limits::DEFAULT)))
        };
        let ap_end = AP_BASE + AP_SIZE;
        let hid_end = HID_BASE + HID_SIZE;
        // Last byte at the end - 1: inside; at the end: outside.
        assert_eq!(store(AP_BASE, true, false)?, Ok(()));
        assert_eq!(store(AP_BASE - 4, true, false)?, Err(Reason::Address));
        assert_eq!(store(ap_end - 4, true, false)?, Ok(()));
        assert_eq!(store(ap_end, true, false)?, Err(Reason::Address));
        assert_eq!(store(ap_end - 8, true, true)?, Ok(()));
        assert_eq!(store(hid_end - 8, true, true)?, Ok(()));
        assert_eq!(store(HID_BASE - 8, true, true)?, Err(Reason::Address));
        assert_eq!(store(hid_end, true, false)?, Err(Reason::Address));
        // PPGTT: up to 2^48.
        assert_eq!(store(PPGTT_LIMIT - 4, false, false)?, Ok(()));
        assert_eq!(store(PPGTT_LIMIT - 8, false, true)?, Ok(()));
        let mut r = KVec::new();
        put(&mut r, sdi(PPGTT_LIMIT - 8, false, true))?;
        r[2] = 0x1_0000; // Address bit 48.
        assert_eq!(
            why(run(Engine::Rcs, &r, &mem, &Limits::DEFAULT)),
            Err(Reason::Address)
        );
        // A qword that straddles the end of the aperture (dword aligned, so encoded by
        // hand).
        let r = [
            (0x20 << 23) | (1 << 22) | (1 << 21) | 3,
            (ap_end - 4) as u32,
            0,
            1,
            2,
        ];
        assert_eq!(
            why(run(Engine::Rcs, &r, &mem, &Limits::DEFAULT)),
            Err(Reason::Address)
        );
        // A GGTT batch in the last 8 bytes of the aperture fits; 4 bytes earlier it
        // needs one more dword past the end.
        let mut mem = FakeMem::new()?;
        mem.write(Space::Ggtt, ap_end - 8, &[NOOP, BB_END])?;
        let mut r = KVec::new();
        put(&mut r, start(ap_end - 8, false, false))?;
        assert_eq!(why(run(Engine::Rcs, &r, &mem, &Limits::DEFAULT)), Ok(()));
        mem.write(Space::Ggtt, ap_end - 8, &[NOOP, NOOP])?;
        assert_eq!(
            why(run(Engine::Rcs, &r, &mem, &Limits::DEFAULT)),
            Err(Reason::Address)
        );
        let mut r = KVec::new();
        put(&mut r, start(ap_end, false, false))?;
        assert_eq!(
            why(run(Engine::Rcs, &r, &mem, &Limits::DEFAULT)),
            Err(Reason::Address)
        );
        // A PPGTT batch at the top of the PPGTT that does not end before 2^48.
        mem.write(Space::Ppgtt, PPGTT_LIMIT - 8, &[NOOP, NOOP])?;
        let mut r = KVec::new();
        put(&mut r, start(PPGTT_LIMIT - 8, true, false))?;
        assert_eq!(
            why(run(Engine::Rcs, &r, &mem, &Limits::DEFAULT)),
            Err(Reason::Address)
        );
        mem.write(Space::Ppgtt, PPGTT_LIMIT - 8, &[NOOP, BB_END])?;
        assert_eq!(why(run(Engine::Rcs, &r, &mem, &Limits::DEFAULT)), Ok(()));
        // The status page: the last dword inside, the next outside.
        let idx = |off: u32| [(0x21 << 23) | 1, off, 0];
        assert_eq!(
            why(run(Engine::Rcs, &idx(4092), &mem, &Limits::DEFAULT)),
            Ok(())
        );
        assert_eq!(
            why(run(Engine::Rcs, &idx(4096), &mem, &Limits::DEFAULT)),
            Err(Reason::Address)
        );
        Ok(())
    }

    /// Multi-register LRI: every register is checked, per engine.
    #[test]
    fn lri_registers() -> Result {
        let mem = FakeMem::new()?;
        let lri = |regs: &[u32]| -> Result<KVec<u32>> {
            let mut r = words(&[(0x22 << 23) | (2 * regs.len() as u32 - 1)])?;
            for &reg in regs {
                r.extend_from_slice(&[reg, 0x1234], GFP_KERNEL)?;
            }
            Ok(r)
        };
        let rcs_mi_mode = 0x2000 + 0x9c;
        let bcs_mi_mode = 0x22000 + 0x9c;
        let good = lri(&[CACHE_MODE_1, rcs_mi_mode, 0xc800 + 0x7f4])?;
        assert_eq!(why(run(Engine::Rcs, &good, &mem, &Limits::DEFAULT)), Ok(()));
        // One bad register in the middle: RING_MODE (0x229c) is not whitelisted.
        let bad = lri(&[CACHE_MODE_1, 0x229c, 0x7008])?;
        let got = run(Engine::Rcs, &bad, &mem, &Limits::DEFAULT);
        assert_eq!(
            got.as_ref().err().map(|e| (e.reason, e.offset, e.header)),
            Some((Reason::Register, 0, bad[0]))
        );
        // The last one bad: the end of the MOCS range, a PDP, a register address bit
        // above 22.
        for reg in [0xc800 + 0x7f8, 0x2270, CACHE_MODE_1 | (1 << 23), 0x4180] {
            let bad = lri(&[CACHE_MODE_1, reg])?;
            assert_eq!(
                why(run(Engine::Rcs, &bad, &mem, &Limits::DEFAULT)),
                Err(Reason::Register)
            );
        }
        // An engine's own ring registers only.
        assert_eq!(
            why(run(
                Engine::Rcs,
                &lri(&[bcs_mi_mode])?,
                &mem,
                &Limits::DEFAULT
            )),
            Err(Reason::Register)
        );
        assert_eq!(
            why(run(
                Engine::Bcs,
                &lri(&[bcs_mi_mode])?,
                &mem,
                &Limits::DEFAULT
            )),
            Ok(())
        );
        assert_eq!(
            why(run(
                Engine::Bcs,
                &lri(&[rcs_mi_mode])?,
                &mem,
                &Limits::DEFAULT
            )),
            Err(Reason::Register)
        );
        // An even length has no whole pairs.
        let mut even = lri(&[CACHE_MODE_1])?;
        even[0] += 1;
        even.push(0, GFP_KERNEL)?;
        assert_eq!(
            why(run(Engine::Rcs, &even, &mem, &Limits::DEFAULT)),
            Err(Reason::Length)
        );
        // SRM/LRM: only GEN8_L3SQCREG4 and 0x21f0.
        let srm = |reg: u32| [(0x24 << 23) | 2, reg, PP as u32, 0];
        assert_eq!(
            why(run(Engine::Rcs, &srm(0xb118), &mem, &Limits::DEFAULT)),
            Ok(())
        );
        assert_eq!(
            why(run(Engine::Rcs, &srm(CACHE_MODE_1), &mem, &Limits::DEFAULT)),
            Err(Reason::Register)
        );
        // PIPE_CONTROL's register write.
        let pc = |reg: u32| [(3 << 29) | (3 << 27) | (2 << 24) | 4, 1 << 23, reg, 0, 0, 0];
        assert_eq!(
            why(run(Engine::Rcs, &pc(CACHE_MODE_1), &mem, &Limits::DEFAULT)),
            Ok(())
        );
        assert_eq!(
            why(run(Engine::Rcs, &pc(0x229c), &mem, &Limits::DEFAULT)),
            Err(Reason::Register)
        );
        Ok(())
    }

    /// Truncated rings and batches, malformed lengths, unknown commands.
    #[test]
    fn truncated_and_malformed() -> Result {
        let mut mem = FakeMem::new()?;
        let d = Limits::DEFAULT;
        // The ring ends inside a store.
        let mut r = KVec::new();
        put(&mut r, sdi(PP, false, false))?;
        let got = run(Engine::Rcs, &r[..3], &mem, &d);
        assert_eq!(
            got.as_ref().err().map(|e| (e.reason, e.batch, e.offset)),
            Some((Reason::Truncated, None, 0))
        );
        // A batch whose budget ends inside a command.
        let small = Limits {
            batch_bytes: 16,
            ..d
        };
        mem.write(Space::Ppgtt, PP, &[NOOP, NOOP, (0x20 << 23) | 2, 0, 0, 0])?;
        let mut b = KVec::new();
        put(&mut b, start(PP, true, false))?;
        let got = run(Engine::Rcs, &b, &mem, &small);
        assert_eq!(
            got.as_ref().err().map(|e| (e.reason, e.batch, e.offset)),
            Some((Reason::Truncated, Some(PP), 2))
        );
        // Exact length rule: MI_SEMAPHORE_WAIT of 5 dwords.
        assert_eq!(
            why(run(Engine::Rcs, &[(0x1c << 23) | 3, 0, 0, 0, 0], &mem, &d)),
            Err(Reason::Length)
        );
        // Store of 5 dwords without the qword bit; qword bit with 4.
        assert_eq!(
            why(run(Engine::Rcs, &[(0x20 << 23) | 3, 0, 0, 0, 0], &mem, &d)),
            Err(Reason::Length)
        );
        assert_eq!(
            why(run(
                Engine::Rcs,
                &[(0x20 << 23) | (1 << 21) | 2, 0, 0, 0],
                &mem,
                &d
            )),
            Err(Reason::Length)
        );
        // Batch start of 4 dwords; with a predicate bit.
        assert_eq!(
            why(run(Engine::Rcs, &[(0x31 << 23) | 2, 0, 0, 0], &mem, &d)),
            Err(Reason::Length)
        );
        assert_eq!(
            why(run(
                Engine::Rcs,
                &[(0x31 << 23) | (1 << 15) | 1, PP as u32, 0],
                &mem,
                &d
            )),
            Err(Reason::Length)
        );
        // MI_FLUSH_DW of 3 dwords; MI_STORE_DWORD_INDEX of 4.
        assert_eq!(
            why(run(Engine::Rcs, &[(0x26 << 23) | 1, 0, 0], &mem, &d)),
            Err(Reason::Length)
        );
        assert_eq!(
            why(run(Engine::Rcs, &[(0x21 << 23) | 2, 0, 0, 0], &mem, &d)),
            Err(Reason::Length)
        );
        // PIPE_CONTROL with a post-sync write but no address dwords.
        assert_eq!(
            why(run(
                Engine::Rcs,
                &[(3 << 29) | (3 << 27) | (2 << 24) | 1, 1 << 14, 0],
                &mem,
                &d
            )),
            Err(Reason::Length)
        );
        // Unknown: MI opcode 0x3f; command type 1; a blitter command on the render ring;
        // a 3D command on the blitter ring; MI_SET_CONTEXT (not in GVT-g's table).
        for h in [
            0x3f << 23,
            1 << 29,
            (2 << 29) | (0x50 << 22) | 5,
            (3 << 29) | (0x7a << 16) | 4,
            0x18 << 23,
        ] {
            let e = if h >> 29 == 3 {
                Engine::Bcs
            } else {
                Engine::Rcs
            };
            let got = run(e, &[NOOP, h, 0, 0, 0, 0, 0, 0], &mem, &d);
            assert_eq!(
                got.as_ref().err().map(|e| (e.reason, e.offset, e.header)),
                Some((Reason::Unknown, 1, h))
            );
        }
        // The same unknown command inside a batch.
        mem.write(Space::Ppgtt, PP, &[NOOP, 0x3f << 23])?;
        assert_eq!(why(run(Engine::Rcs, &b, &mem, &d)), Err(Reason::Unknown));
        Ok(())
    }

    /// A batch without an end runs into the budget; so does a long ring segment.
    #[test]
    fn unterminated_batch() -> Result {
        let mut mem = FakeMem::new()?;
        let small = Limits {
            batch_bytes: 8192,
            ..Limits::DEFAULT
        };
        // 16 KiB of MI_NOOP.
        let mut b = KVec::new();
        put(&mut b, start(PP, true, false))?;
        let got = run(Engine::Rcs, &b, &mem, &small);
        assert_eq!(
            got.as_ref().err().map(|e| (e.reason, e.batch, e.offset)),
            Some((Reason::Budget, Some(PP), 2048))
        );
        // Never more than a page per read, never past the budget.
        assert!(mem.largest.get() <= 1024);
        assert_eq!(mem.reads.get(), 2);
        // The end in the last dword of the budget is fine.
        mem.write(Space::Ppgtt, PP + 8188, &[BB_END])?;
        assert_eq!(why(run(Engine::Rcs, &b, &mem, &small)), Ok(()));
        // The budget is per workload: two such batches do not fit.
        let mut two = words(&b)?;
        two.extend_from_slice(&b, GFP_KERNEL)?;
        assert_eq!(
            why(run(Engine::Rcs, &two, &mem, &small)),
            Err(Reason::Budget)
        );
        let big = Limits {
            batch_bytes: 16384,
            ..Limits::DEFAULT
        };
        assert_eq!(why(run(Engine::Rcs, &two, &mem, &big)), Ok(()));
        // The ring segment limit.
        let ring = KVec::from_elem(NOOP, 1025, GFP_KERNEL)?;
        let r4k = Limits {
            ring_bytes: 4096,
            ..Limits::DEFAULT
        };
        assert_eq!(why(run(Engine::Rcs, &ring[..1024], &mem, &r4k)), Ok(()));
        assert_eq!(
            why(run(Engine::Rcs, &ring, &mem, &r4k)),
            Err(Reason::Budget)
        );
        Ok(())
    }

    /// The batch count limit, including a batch that chains to itself.
    #[test]
    fn too_many_batches() -> Result {
        let mut mem = FakeMem::new()?;
        mem.write(Space::Ppgtt, PP, &[BB_END])?;
        let mut r = KVec::new();
        for _ in 0..3 {
            put(&mut r, start(PP, true, false))?;
        }
        let two = Limits {
            max_batches: 2,
            ..Limits::DEFAULT
        };
        let got = run(Engine::Rcs, &r, &mem, &two);
        assert_eq!(
            got.as_ref().err().map(|e| (e.reason, e.batch, e.offset)),
            Some((Reason::Batches, None, 6))
        );
        assert_eq!(why(run(Engine::Rcs, &r[..6], &mem, &two)), Ok(()));
        // A batch that chains to itself forever.
        let mut lp = KVec::new();
        put(&mut lp, start(PP + 0x100, true, false))?;
        mem.write(Space::Ppgtt, PP + 0x100, &lp)?;
        assert_eq!(
            why(run(Engine::Rcs, &lp, &mem, &Limits::DEFAULT)),
            Err(Reason::Batches)
        );
        Ok(())
    }

    /// Batches in the ring.
    #[test]
    fn batch_in_ring() -> Result {
        let mut mem = FakeMem::new()?;
        mem.write(Space::Ggtt, RING_BASE - 8, &[NOOP, NOOP, BB_END])?;
        let mut r = KVec::new();
        put(&mut r, start(RING_BASE, false, false))?;
        assert_eq!(
            why(run(Engine::Rcs, &r, &mem, &Limits::DEFAULT)),
            Err(Reason::BatchInRing)
        );
        let mut r = KVec::new();
        put(&mut r, start(RING_BASE + RING_SIZE - 4, false, false))?;
        assert_eq!(
            why(run(Engine::Rcs, &r, &mem, &Limits::DEFAULT)),
            Err(Reason::BatchInRing)
        );
        // Starting before the ring and running into it.
        let mut r = KVec::new();
        put(&mut r, start(RING_BASE - 8, false, false))?;
        assert_eq!(
            why(run(Engine::Rcs, &r, &mem, &Limits::DEFAULT)),
            Err(Reason::BatchInRing)
        );
        // Ending just before it, and just after it.
        mem.write(Space::Ggtt, RING_BASE - 8, &[NOOP, BB_END])?;
        assert_eq!(why(run(Engine::Rcs, &r, &mem, &Limits::DEFAULT)), Ok(()));
        mem.write(Space::Ggtt, RING_BASE + RING_SIZE, &[BB_END])?;
        let mut r = KVec::new();
        put(&mut r, start(RING_BASE + RING_SIZE, false, false))?;
        assert_eq!(why(run(Engine::Rcs, &r, &mem, &Limits::DEFAULT)), Ok(()));
        Ok(())
    }

    /// Guest memory that cannot be read, and a host without room.
    #[test]
    fn read_and_place_failures() -> Result {
        let mut mem = FakeMem::new()?;
        let mut r = KVec::new();
        put(&mut r, start(PP + PP_SIZE, true, false))?;
        let got = run(Engine::Rcs, &r, &mem, &Limits::DEFAULT);
        assert_eq!(
            got.as_ref().err().map(|e| (e.reason, e.batch)),
            Some((Reason::ReadFailed, Some(PP + PP_SIZE)))
        );
        // A batch whose second page is not there.
        let mut r = KVec::new();
        put(&mut r, start(PP + PP_SIZE - 8, true, false))?;
        assert_eq!(
            why(run(Engine::Rcs, &r, &mem, &Limits::DEFAULT)),
            Err(Reason::ReadFailed)
        );
        mem.write(Space::Ppgtt, PP + PP_SIZE - 8, &[NOOP, BB_END])?;
        assert_eq!(why(run(Engine::Rcs, &r, &mem, &Limits::DEFAULT)), Ok(()));
        let mut p = FakePlace::new();
        p.fail = true;
        let got = scan(Engine::Rcs, &r, &mem, &mut p, &RANGES, &Limits::DEFAULT);
        assert_eq!(why(got), Err(Reason::NoMemory));
        Ok(())
    }

    /// A wait for a flip becomes a no-op in the copy (GVT-g does the same).
    #[test]
    fn wait_for_flip_is_nooped() -> Result {
        let mem = FakeMem::new()?;
        let wait_flip = (0x03 << 23) | (1 << 1);
        let wait_other = 0x03 << 23;
        let s = run(
            Engine::Rcs,
            &[wait_flip, wait_other, ARB_CHECK],
            &mem,
            &Limits::DEFAULT,
        )
        .map_err(|_| EINVAL);
        assert!(s.is_ok());
        assert!(s?.ring[..] == [NOOP, wait_other, ARB_CHECK]);
        Ok(())
    }

    /// Privileged commands are refused in the ring and in batches.
    #[test]
    fn privileged() -> Result {
        let mut mem = FakeMem::new()?;
        let update_gtt = (0x23 << 23) | 1;
        assert_eq!(
            why(run(
                Engine::Rcs,
                &[update_gtt, 0, 0],
                &mem,
                &Limits::DEFAULT
            )),
            Err(Reason::Privileged)
        );
        mem.write(Space::Ppgtt, PP, &[NOOP, update_gtt, 0, 0, BB_END])?;
        let mut r = KVec::new();
        put(&mut r, start(PP, true, false))?;
        let got = run(Engine::Rcs, &r, &mem, &Limits::DEFAULT);
        assert_eq!(
            got.as_ref()
                .err()
                .map(|e| (e.reason, e.batch, e.offset, e.header)),
            Some((Reason::Privileged, Some(PP), 1, update_gtt))
        );
        Ok(())
    }

    /// Reason names are distinct and indices match.
    #[test]
    fn reason_names() {
        assert_eq!(Reason::ALL.len(), REASONS);
        for (i, a) in Reason::ALL.iter().enumerate() {
            assert_eq!(a.index(), i);
            for b in Reason::ALL.iter().skip(i + 1) {
                assert!(a.name() != b.name());
            }
        }
        assert!(Reason::Register.name() == c"register");
    }
}
