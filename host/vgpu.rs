// SPDX-License-Identifier: GPL-2.0

//! One virtual GPU: config space, BAR0 (PVINFO, the GEN9 register model, the virtual
//! interrupt controller, the execlist ports), the aperture BAR, interrupts, reset, and the
//! guest memory the device reaches.
//!
//! Lifecycle: opening the device file is a power-on. Config space, BAR0 and PVINFO's
//! guest half go back to their reset values on open, on `VFIO_DEVICE_RESET` and on close;
//! pins go on reset and close, eventfds on close. Nothing of one VM reaches the next. A
//! full GPU reset through `GDRST` is smaller, as in GVT-g: the GPU's registers and
//! execlists, not config space, PVINFO, interrupts or fences ([`regs::Regs::reset_gt`]).
//!
//! A register access runs under `state` and returns [`regs::Action`]s, which are carried
//! out after `state` is dropped: the submission path (ELSP pairs, g2v notifications)
//! takes locks that come before `state`, and a full reset drops pins.
//!
//! Lock order (each lock only ever taken after the ones before it):
//! 1. `Core::submit` - preparation of submissions, g2v notifications, resets of the GPU
//!    rooms; may be held across pins and copies of guest memory;
//! 2. `Core::ppgtt` - the shadow PPGTT (also taken by the KVM write-tracking notifier);
//! 3. `Core::ggtt` - the GGTT entries (also taken alone by the GTT window and BAR2);
//! 4. `Core::state` - the device model a trapped access changes (also read by the
//!    debugfs `regs` and `unmodelled` files); never held across a vfio call;
//! 5. `Core::irqs` - the eventfds; taken under `state` to raise an interrupt from inside a
//!    trap handler ([`Core::raise_irq_locked`]), or alone by SET_IRQS and requests;
//! 6. leaves, each alone: `GuestMemory::inner` (never held while the vfio core runs, nor
//!    is any lock of `state` or after it: `vfio::dma` says why), the engines' queues in
//!    `sched`, the backend's own locks.
//!
//! A workload's start and end run in the scheduler's threads and take 1 to 5 one at a
//! time; whoever takes a vGPU's work off the engines ([`Core::stop_work`]) holds none of
//! them, since that may wait for a running workload's end.

pub(crate) mod access;
pub(crate) mod cfg;
#[cfg(CONFIG_KUNIT)]
mod e2e;
pub(crate) mod execlist;
pub(crate) mod failsafe;
pub(crate) mod intr;
pub(crate) mod irq;
pub(crate) mod mmio;
pub(crate) mod regs;
pub(crate) mod submit;
pub(crate) mod types;

use crate::{
    abi::regs::GTT_OFFSET,
    debugfs::Counters,
    gpu::{Engine, Gpu},
    mm::{
        ggtt::Ggtt,
        guest::{AnyPinner, GuestMemory, Probe},
        host::HostGgtt,
        partition::{Lease, Slice, APERTURE_SIZE},
        ppgtt::Ppgtt,
    },
    sched::Sched,
    vfio::{kvm::KvmTrack, uapi, Dma, IrqSet, RegionInfo, VfioOps, Vm},
};
use kernel::{
    debugfs, new_mutex,
    prelude::*,
    sync::{
        atomic::{Atomic, Relaxed},
        Arc, Mutex,
    },
    uaccess::UserSliceReader,
};

/// The guest memory of a vGPU, reached through its vfio device (or, in KUnit, a fake).
type Mem = GuestMemory<AnyPinner>;

/// The debugfs `mem_probe` hook: a test of the whole path to real guest memory.
///
/// Writing `ADDR LEN` (hex with `0x`, or decimal) runs [`GuestMemory::probe`] on the
/// range; reading shows the last result and the pin cache's statistics.
#[pin_data]
struct MemProbe {
    mem: Arc<Mem>,
    #[pin]
    last: Mutex<Option<(u64, usize, Result<Probe>)>>,
}

/// Parses one number, hex with `0x` or decimal.
fn parse_num(s: &[u8]) -> Option<u64> {
    let (digits, radix) = match s.strip_prefix(b"0x") {
        Some(h) => (h, 16),
        None => (s, 10),
    };
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |acc, &c| {
        let d = (c as char).to_digit(radix)?;
        acc.checked_mul(u64::from(radix))?.checked_add(u64::from(d))
    })
}

impl MemProbe {
    fn show(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match &*self.last.lock() {
            None => writeln!(f, "last none")?,
            Some((a, l, Ok(p))) => writeln!(
                f,
                "last addr {:#x} len {} xor {:#x} first_pfn {:#x}",
                a, l, p.xor, p.first_pfn
            )?,
            Some((a, l, Err(e))) => {
                writeln!(f, "last addr {:#x} len {} error {}", a, l, e.to_errno())?
            }
        }
        let st = self.mem.stats();
        writeln!(
            f,
            "pins live {} pinned {} hits {} failures {} unmapped {} released {}",
            st.live, st.pinned, st.hits, st.failures, st.unmapped, st.released
        )
    }

    fn run(&self, r: &mut UserSliceReader) -> Result {
        let mut buf = [0u8; 64];
        let n = r.len().min(buf.len());
        let text = buf.get_mut(..n).ok_or(EINVAL)?;
        r.read_slice(text)?;
        let mut words = text
            .trim_ascii()
            .split(|c| c.is_ascii_whitespace())
            .filter(|w| !w.is_empty());
        let addr = words.next().and_then(parse_num).ok_or(EINVAL)?;
        let len = words
            .next()
            .and_then(parse_num)
            .and_then(|l| usize::try_from(l).ok())
            .ok_or(EINVAL)?;
        let r = self.mem.probe(addr, len);
        let ret = r.map(|_| ());
        *self.last.lock() = Some((addr, len, r));
        ret
    }
}

/// A trapped access: the kernel copy of QEMU's buffer, made once by the vfio room.
enum Op<'a> {
    /// Fill the buffer.
    Read(&'a mut [u8]),
    /// Apply the data.
    Write(&'a [u8]),
}

/// Register state a trapped access changes.
struct State {
    cfg: cfg::ConfigSpace,
    mmio: mmio::Mmio,
}

/// The device model behind its lock; shared with the debugfs files that show it.
type Shared = Arc<Mutex<State>>;

/// The device model of a vGPU and everything its work needs, shared by the vfio-facing
/// [`Vgpu`], the workloads on the engines' queues and the KVM write-tracking notifier.
#[pin_data]
pub(crate) struct Core {
    /// The GPU the vGPU's work runs on.
    pub(crate) gpu: Arc<dyn Gpu>,
    /// The engines' queues, shared by every vGPU.
    pub(crate) sched: Arc<Sched>,
    /// The vGPU's window of host graphics memory: shadow contexts, rings, batch copies.
    pub(crate) window: Arc<HostGgtt>,
    /// Preparation of submissions, g2v notifications, resets of the GPU rooms.
    #[pin]
    pub(crate) submit: Mutex<submit::Submit>,
    /// The shadow PPGTT.
    #[pin]
    pub(crate) ppgtt: Mutex<Ppgtt<AnyPinner>>,
    /// The guest's and the host's GGTT entries of the vGPU's slices.
    #[pin]
    pub(crate) ggtt: Mutex<Ggtt<AnyPinner>>,
    state: Shared,
    #[pin]
    irqs: Mutex<irq::Irqs>,
    /// Guest memory through the pin cache; shared with the debugfs `mem_probe` hook.
    mem: Arc<Mem>,
    counters: Arc<Counters>,
    /// The [`mmio::Fault`] injected into PVINFO reads (debugfs `pvinfo_fault`).
    fault: Arc<Atomic<u32>>,
    /// What the submission path counted.
    pub(crate) work: submit::WorkStats,
    /// The graphics memory and fences it owns; back to the partition when the last
    /// reference goes (a workload may outlive the [`Vgpu`] briefly), after the GGTT
    /// entries and the host window above were given back (fields drop in order).
    lease: Lease,
}

/// A virtual GPU: the vfio-facing shell around its [`Core`] (which it dereferences to).
#[pin_data]
pub(crate) struct Vgpu {
    /// Its debugfs directory; dropped first (its files hold the core).
    files: Files,
    /// The KVM write tracker registered at open, if the VM runs on KVM.
    #[pin]
    tracker: Mutex<Option<Arc<KvmTrack>>>,
    core: Arc<Core>,
}

impl core::ops::Deref for Vgpu {
    type Target = Core;

    fn deref(&self) -> &Core {
        &self.core
    }
}

/// The static facts debugfs shows about a vGPU.
struct Info {
    slice: Slice,
    type_index: usize,
}

impl core::fmt::Display for Info {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let s = &self.slice;
        let name = types::MDEV_TYPES
            .get(self.type_index)
            .map_or(c"?", |t| t.pretty_name);
        writeln!(f, "type {}", name.to_str().unwrap_or("?"))?;
        writeln!(f, "vgt_id {}", s.id)?;
        writeln!(f, "version 1.0")?;
        writeln!(f, "caps {:#x}", mmio::HOST_CAPS)?;
        writeln!(f, "aperture {:#x}+{:#x}", s.aperture_base, s.aperture_size)?;
        writeln!(f, "hidden {:#x}+{:#x}", s.hidden_base, s.hidden_size)?;
        writeln!(f, "fences {}+{}", s.fence_base, s.fences)?;
        writeln!(f, "bar2 {:#x}", APERTURE_SIZE)
    }
}

/// The debugfs files of one vGPU; they only live to be dropped with it.
struct Files {
    _dir: debugfs::Dir,
    _counters: Pin<KBox<debugfs::File<Arc<Counters>>>>,
    _info: Pin<KBox<debugfs::File<Info>>>,
    _fault: Pin<KBox<debugfs::File<Arc<Atomic<u32>>>>>,
    _probe: Pin<KBox<debugfs::File<MemProbe>>>,
    _regs: Pin<KBox<debugfs::File<Shared>>>,
    _unmodelled: Pin<KBox<debugfs::File<Shared>>>,
    _gpu: Pin<KBox<debugfs::File<Arc<Core>>>>,
}

impl Files {
    fn new(
        root: &debugfs::Dir,
        name: &CStr,
        info: Info,
        fault: &Arc<Atomic<u32>>,
        core: &Arc<Core>,
    ) -> Result<Self> {
        let (counters, mem, state) = (&core.counters, &core.mem, &core.state);
        let dir = root.subdir(name);
        let counters = KBox::pin_init(
            dir.read_callback_file(c"counters", counters.clone(), &|c: &Arc<Counters>, f| {
                core::fmt::Display::fmt(&**c, f)
            }),
            GFP_KERNEL,
        )?;
        let info = KBox::pin_init(
            dir.read_callback_file(c"info", info, &|i: &Info, f| core::fmt::Display::fmt(i, f)),
            GFP_KERNEL,
        )?;
        let fault = KBox::pin_init(
            dir.read_write_callback_file(
                c"pvinfo_fault",
                fault.clone(),
                &|f: &Arc<Atomic<u32>>, out| {
                    let cur = f.load(Relaxed) as usize;
                    writeln!(
                        out,
                        "{}",
                        mmio::Fault::NAMES.get(cur).copied().unwrap_or("none")
                    )
                },
                &|f: &Arc<Atomic<u32>>, r: &mut UserSliceReader| {
                    let mut buf = [0u8; 16];
                    let n = r.len().min(buf.len());
                    r.read_slice(buf.get_mut(..n).ok_or(EINVAL)?)?;
                    let v = mmio::Fault::parse(buf.get(..n).ok_or(EINVAL)?).ok_or(EINVAL)?;
                    f.store(v as u32, Relaxed);
                    Ok(())
                },
            ),
            GFP_KERNEL,
        )?;
        let probe = KBox::pin_init(
            dir.read_write_callback_file(
                c"mem_probe",
                pin_init!(MemProbe {
                    mem: mem.clone(),
                    last <- new_mutex!(None),
                }),
                &|p: &MemProbe, f| p.show(f),
                &|p: &MemProbe, r: &mut UserSliceReader| p.run(r),
            ),
            GFP_KERNEL,
        )?;
        let regs = KBox::pin_init(
            dir.read_callback_file(c"regs", state.clone(), &|s: &Shared, f| {
                s.lock().mmio.regs().dump(f)
            }),
            GFP_KERNEL,
        )?;
        let unmodelled = KBox::pin_init(
            dir.read_callback_file(c"unmodelled", state.clone(), &|s: &Shared, f| {
                s.lock().mmio.regs().dump_unmodelled(f)
            }),
            GFP_KERNEL,
        )?;
        let gpu = KBox::pin_init(
            dir.read_callback_file(c"gpu", core.clone(), &|c: &Arc<Core>, f| submit::show(c, f)),
            GFP_KERNEL,
        )?;
        Ok(Self {
            _gpu: gpu,
            _dir: dir,
            _counters: counters,
            _info: info,
            _fault: fault,
            _probe: probe,
            _regs: regs,
            _unmodelled: unmodelled,
        })
    }
}

impl Vgpu {
    /// The initialiser of the vGPU holding `lease`, with its debugfs directory `name`
    /// under `root`. Everything large is built in place or on the heap, never on the
    /// stack.
    ///
    /// # Errors
    ///
    /// `ENOMEM`; the lease goes back to the partition on every error path.
    pub(crate) fn new(
        lease: Lease,
        type_index: usize,
        root: &debugfs::Dir,
        name: &CStr,
        gpu: Arc<dyn Gpu>,
        sched: Arc<Sched>,
    ) -> Result<impl PinInit<Self, Error>> {
        let info = Info {
            slice: *lease.slice(),
            type_index,
        };
        let limits = types::TYPES.get(type_index).ok_or(EINVAL)?.limits;
        let core = Core::new(lease, limits, gpu, sched)?;
        let files = Files::new(root, name, info, &core.fault, &core)?;
        Ok(try_pin_init!(Self {
            files,
            tracker <- new_mutex!(None, "Vgpu::tracker"),
            core,
        }))
    }
}

impl Core {
    /// The device model and GPU rooms of the vGPU holding `lease`, on the heap. Not
    /// inlined into [`Vgpu::new`]: the two frames together would be too large.
    #[inline(never)]
    fn new(
        lease: Lease,
        limits: types::Limits,
        gpu: Arc<dyn Gpu>,
        sched: Arc<Sched>,
    ) -> Result<Arc<Self>> {
        let counters = Arc::new(Counters::default(), GFP_KERNEL)?;
        let fault = Arc::new(Atomic::new(0u32), GFP_KERNEL)?;
        let slice = *lease.slice();
        let mem = Arc::pin_init(GuestMemory::new(limits.pins), GFP_KERNEL)?;
        let state = Self::new_state(lease.slice())?;
        let window = HostGgtt::new(gpu.clone(), slice.id)?;
        let ggtt = Ggtt::new(gpu.clone(), mem.clone(), slice)?;
        let ppgtt = Ppgtt::new(gpu.clone(), mem.clone(), limits.ppgtt)?;
        let core = Arc::pin_init(
            try_pin_init!(Core {
                gpu,
                sched,
                window,
                submit <- new_mutex!(submit::Submit::default(), "Core::submit"),
                ppgtt <- new_mutex!(ppgtt, "Core::ppgtt"),
                ggtt <- new_mutex!(ggtt, "Core::ggtt"),
                state,
                irqs <- new_mutex!(irq::Irqs::default(), "Core::irqs"),
                mem,
                counters,
                fault,
                work: submit::WorkStats::default(),
                lease,
            }),
            GFP_KERNEL,
        )?;
        Ok(core)
    }

    /// The register model at power-on, on the heap (its own frame: the model is large).
    #[inline(never)]
    fn new_state(slice: &Slice) -> Result<Shared> {
        let mmio = mmio::Mmio::new(slice)?;
        Arc::pin_init(
            new_mutex!(
                State {
                    cfg: cfg::ConfigSpace::new(),
                    mmio,
                },
                "Vgpu::state"
            ),
            GFP_KERNEL,
        )
    }
}

impl Core {
    /// The vGPU's graphics memory and fences.
    pub(crate) fn slice(&self) -> &Slice {
        self.lease.slice()
    }

    /// The vGPU's id.
    pub(crate) fn id(&self) -> u32 {
        self.slice().id
    }

    /// Serves a trapped access at offset `off` of region `index` (checked by the vfio
    /// room against [`VfioOps::region_info`]).
    fn access(self: &Arc<Self>, index: u32, off: u64, mut op: Op<'_>) -> Result {
        let c = &*self.counters;
        let len = match &op {
            Op::Read(b) => b.len(),
            Op::Write(b) => b.len(),
        };
        match index {
            uapi::region::CONFIG => {
                let off = off as usize;
                let mut st = self.state.lock();
                let ok = match op {
                    Op::Read(buf) => {
                        Counters::inc(&c.cfg_read);
                        st.cfg.read(off, buf)
                    }
                    Op::Write(data) => {
                        Counters::inc(&c.cfg_write);
                        st.cfg.write(off, data)
                    }
                };
                if !ok {
                    Counters::inc(&c.bad_access);
                    return Err(EINVAL);
                }
            }
            uapi::region::BAR0 => {
                let fault = mmio::Fault::from_u32(self.fault.load(Relaxed));
                access::for_each_chunk(off, len, |at, start, n| {
                    self.bar0_chunk(at, start..start + n, &mut op, fault)
                });
            }
            // BAR2 spans the whole aperture, as GVT-g sizes it for every vGPU. The vGPU's
            // own slice is served through its GGTT entries (`mm/ggtt`); outside it reads
            // zero and ignores writes, counted on their own.
            uapi::region::BAR2 => {
                let s = self.slice();
                let inside = off >= s.aperture_base
                    && off.saturating_add(len as u64) <= s.aperture_base + s.aperture_size;
                match &op {
                    Op::Read(_) => Counters::inc(&c.aperture_read),
                    Op::Write(_) => Counters::inc(&c.aperture_write),
                }
                if !inside {
                    Counters::inc(&c.aperture_outside);
                    if let Op::Read(buf) = op {
                        buf.fill(0);
                    }
                    return Ok(());
                }
                let mut g = self.ggtt.lock();
                access::for_each_chunk(off, len, |at, start, n| {
                    let r = start..start + n;
                    match &mut op {
                        Op::Read(buf) => {
                            let v = g.aperture_read(at, n).unwrap_or(0);
                            if let Some(chunk) = buf.get_mut(r) {
                                chunk.copy_from_slice(&v.to_le_bytes()[..n]);
                            }
                        }
                        Op::Write(data) => {
                            if let Some(chunk) = data.get(r) {
                                let mut b = [0u8; 8];
                                b[..n].copy_from_slice(chunk);
                                let _ = g.aperture_write(at, n, u64::from_le_bytes(b));
                            }
                        }
                    }
                });
            }
            _ => {
                Counters::inc(&c.bad_access);
                return Err(EINVAL);
            }
        }
        Ok(())
    }

    /// One naturally aligned chunk of a BAR0 access: bytes `r` of the access, at BAR0
    /// offset `at`. Registers under `state`, which is dropped before the actions the
    /// access returned are carried out.
    fn bar0_chunk(
        self: &Arc<Self>,
        at: u64,
        r: core::ops::Range<usize>,
        op: &mut Op<'_>,
        fault: mmio::Fault,
    ) {
        let c = &*self.counters;
        if at >= u64::from(GTT_OFFSET) {
            self.ggtt_window(at, r, op);
            return;
        }
        let (out, write) = {
            let mut st = self.state.lock();
            let (out, write) = match op {
                Op::Read(buf) => {
                    let Some(chunk) = buf.get_mut(r) else {
                        return;
                    };
                    Counters::inc(&c.mmio_read);
                    (st.mmio.read(at, chunk, fault, c), false)
                }
                Op::Write(data) => {
                    let Some(chunk) = data.get(r) else {
                        return;
                    };
                    Counters::inc(&c.mmio_write);
                    (st.mmio.write(at, chunk, c), true)
                }
            };
            if out.raise {
                self.raise_irq_locked(&st);
            }
            (out, write)
        };
        match (out.hit, write) {
            (mmio::Hit::Pvinfo, false) => Counters::inc(&c.pvinfo_read),
            (mmio::Hit::Pvinfo, true) => Counters::inc(&c.pvinfo_write),
            (mmio::Hit::G2vNotify(_), _) => Counters::inc(&c.g2v_notify),
            (mmio::Hit::PvinfoReadOnly, _) => Counters::inc(&c.pvinfo_ro_write),
            (mmio::Hit::Reg, false) => Counters::inc(&c.reg_read),
            (mmio::Hit::Reg, true) => Counters::inc(&c.reg_write),
            // The default store counts by dword.
            (mmio::Hit::Default, _) => {}
            (mmio::Hit::Unhandled, _) => Counters::inc(&c.mmio_unhandled),
        }
        for a in out.actions.into_iter().flatten() {
            self.act(a);
        }
    }

    /// BAR0 from 8 MiB: the GGTT entries, bytes `r` of the access at `at`, under
    /// `ggtt` without `state` (design, path 2). Accesses other than whole 4- or 8-byte
    /// entries read 0 and are dropped, counted (`ggtt_bad_access` in debugfs `gpu`).
    fn ggtt_window(&self, at: u64, r: core::ops::Range<usize>, op: &mut Op<'_>) {
        let c = &*self.counters;
        Counters::inc(&c.ggtt_window);
        let off = (at - u64::from(GTT_OFFSET)) as u32;
        let n = r.len();
        // In failsafe, GGTT writes are ignored (reads still show the guest's entries).
        let failsafe = self.state.lock().mmio.regs().failsafe().is_some();
        let mut g = self.ggtt.lock();
        match op {
            Op::Read(buf) => {
                Counters::inc(&c.mmio_read);
                let v = g.read(off, n).unwrap_or(0);
                if let Some(chunk) = buf.get_mut(r) {
                    chunk.copy_from_slice(&v.to_le_bytes()[..n.min(8)]);
                }
            }
            Op::Write(_) if failsafe => {
                Counters::inc(&c.mmio_write);
                Counters::inc(&c.ggtt_failsafe);
            }
            Op::Write(data) => {
                Counters::inc(&c.mmio_write);
                if let Some(chunk) = data.get(r) {
                    let mut b = [0u8; 8];
                    b[..n.min(8)].copy_from_slice(&chunk[..n.min(8)]);
                    let _ = g.write(off, n, u64::from_le_bytes(b));
                }
            }
        }
    }

    /// Carries out what a register access asked for, with no lock of ours held.
    fn act(self: &Arc<Self>, a: regs::Action) {
        let c = &*self.counters;
        let id = self.slice().id;
        match a {
            // The submission path (design, path 1 step 3): one workload per descriptor,
            // prepared under `submit`, then the pair's place in the bound is given back.
            regs::Action::Submit { engine, descs } => {
                self.submit_pair(engine, descs);
            }
            // Counted and shown to the guest already (RING_EIR, CS error interrupt).
            regs::Action::Refused { engine, reason } => {
                pr_debug!(
                    "gvtpv: vGPU {}: {} ELSP refused: {}\n",
                    id,
                    engine.name(),
                    reason
                );
            }
            regs::Action::EngineReset(es) => {
                for e in es.iter() {
                    Counters::inc(&c.gdrst_engine);
                    // That engine's workloads go (GVT-g `intel_vgpu_reset_submission`).
                    self.stop_work(Some(e), false);
                    self.state.lock().mmio.regs_mut().reset_engine(e);
                }
            }
            regs::Action::FullReset => {
                Counters::inc(&c.gdrst_full);
                self.gpu_reset();
            }
            // Counted as `ggtt_invalidate`; every GGTT entry write invalidates already.
            regs::Action::GgttInvalidate => self.gpu.ggtt_invalidate(),
            // Counted as `g2v_notify`; the PPGTT path (design, path 3) takes the root.
            regs::Action::G2vNotify { notify, pdp } => self.g2v(notify, pdp[0]),
            // Loud the first time (GVT-g prints it each time); a hostile user can make
            // it happen at every reset, and debugfs `regs` always shows the reason.
            regs::Action::Failsafe(reason) if c.failsafe.load(Relaxed) <= 1 => {
                pr_err!(
                    "gvtpv: vGPU {}: {}: failsafe until the next reset\n",
                    id,
                    reason
                );
            }
            regs::Action::Failsafe(reason) => {
                pr_debug!(
                    "gvtpv: vGPU {}: {}: failsafe until the next reset\n",
                    id,
                    reason
                );
            }
        }
    }

    /// A full GPU reset through `GDRST`: the vGPU's work leaves the engines, its shadow
    /// PPGTT goes (rebuilt from the guest's tables when next used, as GVT-g invalidates
    /// its shadows), then the GPU's registers and execlists. The GGTT and its pins stay:
    /// GDRST does not clear the GGTT, and i915 does not rewrite it after a reset.
    fn gpu_reset(&self) {
        self.stop_work(None, true);
        self.state.lock().mmio.regs_mut().reset_gt();
    }

    /// Emulates the schedule-in of the ELSP pair `pair` on `engine` and raises the
    /// interrupt it causes (design, path 1 step 5; [`execlist::Execlist::schedule_in`]).
    /// `hwsp` is the guest's status page of the engine ([`regs::Regs::hws_pga`]),
    /// resolved and pinned by the caller; `None` writes the register copy only.
    ///
    /// # Errors
    ///
    /// `EBUSY` if both virtual slots are taken.
    pub(crate) fn schedule_in(
        &self,
        engine: Engine,
        pair: [Option<u64>; 2],
        hwsp: Option<&dyn execlist::Hwsp>,
    ) -> Result {
        self.in_model(|r, c| r.schedule_in(engine, pair, hwsp, c))
    }

    /// Emulates the schedule-out of the running context `desc` on `engine` and raises the
    /// interrupt it causes (design, path 1 step 7;
    /// [`execlist::Execlist::schedule_out`]).
    ///
    /// # Errors
    ///
    /// `EINVAL` if `desc` is not the running context.
    pub(crate) fn schedule_out(
        &self,
        engine: Engine,
        desc: u64,
        hwsp: Option<&dyn execlist::Hwsp>,
    ) -> Result {
        self.in_model(|r, c| r.schedule_out(engine, desc, hwsp, c))
    }

    /// Shows an error of `engine` to the guest: `eir` in `RING_EIR` and the CS master
    /// error interrupt ([`regs::Regs::report_error`]).
    pub(crate) fn report_error(&self, engine: Engine, eir: u32) {
        let _ = self.in_model(|r, c| Ok(r.report_error(engine, eir, c)));
    }

    /// Raises interrupt `bits` of `engine` (e.g. `GT_USER_INTERRUPT` after a
    /// `MI_USER_INTERRUPT`) through the virtual interrupt controller.
    pub(crate) fn raise_event(&self, engine: Engine, bits: u32) {
        let _ = self.in_model(|r, c| Ok(r.event(engine, bits, c)));
    }

    /// Runs `f` on the register model under `state` and raises the interrupt if it
    /// returns that one is due.
    fn in_model(&self, f: impl FnOnce(&mut regs::Regs, &Counters) -> Result<bool>) -> Result {
        let mut st = self.state.lock();
        if f(st.mmio.regs_mut(), &self.counters)? {
            self.raise_irq_locked(&st);
        }
        Ok(())
    }

    /// Raises an interrupt to the guest from outside the device model.
    pub(crate) fn raise_irq(&self) {
        let st = self.state.lock();
        self.raise_irq_locked(&st);
    }

    /// Raises an interrupt to the guest from inside a trap handler, which holds `state`.
    fn raise_irq_locked(&self, st: &State) {
        let d = self
            .irqs
            .lock()
            .raise(st.cfg.msi_enabled(), st.cfg.intx_disabled());
        let c = &*self.counters;
        Counters::inc(match d {
            irq::Delivered::Msi => &c.irq_msi,
            irq::Delivered::Intx => &c.irq_intx,
            irq::Delivered::MsiUnwired => &c.irq_msi_unwired,
            irq::Delivered::Dropped => &c.irq_dropped,
        });
    }

    /// Power-on state of the device model: the vGPU's work off the engines, its shadow
    /// PPGTT and GGTT entries gone, config space and BAR0 as after a reset. No lock of
    /// the vGPU is held by the caller.
    fn power_on(&self) {
        self.stop_work(None, true);
        {
            let _sub = self.submit.lock();
            // Nothing to report to: the host entries go back to scratch regardless.
            let _ = self.ggtt.lock().reset();
        }
        self.work
            .offences
            .store(0, core::sync::atomic::Ordering::Relaxed);
        let mut st = self.state.lock();
        st.cfg.reset();
        st.mmio.reset();
    }
}

/// The KVM notifier's view of a vGPU: guest writes to write-protected page tables.
impl crate::vfio::kvm::TrackHandler for Core {
    fn track_write(&self, gpa: u64, bytes: &[u8]) {
        self.ppgtt.lock().track_write(gpa, bytes);
    }

    fn track_remove_region(&self, gfn: u64, pages: u64) {
        self.ppgtt.lock().remove_region(gfn, pages);
    }
}

impl Vgpu {
    /// Registers the KVM write-tracking notifier of the shadow PPGTT, if the VM runs on
    /// KVM and re-validation is not forced; the PPGTT then write-protects the guest's
    /// tables instead of re-validating them before each submission. Runs in QEMU's
    /// process (KVM requires it) with no lock of the vGPU held: callbacks may run before
    /// registration returns.
    fn track(&self, vm: Option<&Vm<'_>>) {
        let Some(vm) = vm else { return };
        if *crate::module_parameters::revalidate.value() != 0 {
            return;
        }
        let handler: Arc<dyn crate::vfio::kvm::TrackHandler> = self.core.clone();
        match KvmTrack::register(vm, handler) {
            Ok(t) => {
                Counters::inc(&self.counters.kvm_track);
                let tracker: Arc<dyn crate::mm::ppgtt::Tracker> = t.clone();
                let _ = self.ppgtt.lock().set_tracker(Some(tracker));
                *self.tracker.lock() = Some(t);
            }
            Err(e) => {
                Counters::inc(&self.counters.kvm_track_failed);
                pr_warn!(
                    "gvtpv: vGPU {}: no KVM write tracking ({:?}): page tables are re-validated\n",
                    self.id(),
                    e
                )
            }
        }
    }

    /// Drops the write tracking: every shadow and protection goes with the tracker, then
    /// the notifier is unregistered (which waits for callbacks that take `ppgtt`) with no
    /// lock of the vGPU held.
    fn untrack(&self) {
        let old = self.ppgtt.lock().set_tracker(None);
        let t = self.tracker.lock().take();
        drop(old);
        drop(t);
    }
}

#[vtable]
impl VfioOps for Vgpu {
    fn open(&self, dma: Arc<Dma>, vm: Option<&Vm<'_>>) -> Result {
        Counters::inc(&self.counters.opens);
        self.power_on();
        self.mem.attach(AnyPinner::Vfio(dma));
        self.track(vm);
        Ok(())
    }

    fn close(&self) {
        self.untrack();
        self.power_on();
        self.mem.detach();
        self.irqs.lock().clear();
        self.power_on();
    }

    fn read(&self, index: u32, off: u64, buf: &mut [u8]) -> Result {
        self.core.access(index, off, Op::Read(buf))
    }

    fn write(&self, index: u32, off: u64, data: &[u8]) -> Result {
        self.core.access(index, off, Op::Write(data))
    }

    fn region_info(&self, index: u32) -> Result<RegionInfo> {
        let rw = uapi::REGION_READ | uapi::REGION_WRITE;
        Ok(match index {
            uapi::region::CONFIG => RegionInfo {
                size: cfg::CFG_SIZE as u64,
                flags: rw,
            },
            uapi::region::BAR0 => RegionInfo {
                size: crate::abi::gen::BAR0_SIZE,
                flags: rw,
            },
            uapi::region::BAR2 => RegionInfo {
                size: APERTURE_SIZE,
                flags: rw,
            },
            i if i < uapi::region::NUM => RegionInfo::default(),
            _ => return Err(EINVAL),
        })
    }

    fn refused(&self) {
        Counters::inc(&self.counters.bad_access);
    }

    fn irq_info(&self, index: u32) -> Result<(u32, u32)> {
        Ok(irq::info(index))
    }

    fn set_irqs(&self, set: IrqSet) -> Result {
        let fire = self.irqs.lock().set(set)?;
        if fire {
            self.raise_irq();
        }
        Ok(())
    }

    fn reset(&self) -> Result {
        Counters::inc(&self.counters.resets);
        self.power_on();
        self.mem.reset();
        Ok(())
    }

    fn dma_unmap(&self, iova: u64, len: u64) {
        let n = self.mem.unmap(iova, len);
        self.counters.unpinned_by_unmap.fetch_add(n as u64, Relaxed);
    }

    fn request(&self, count: u32) {
        let id = self.slice().id;
        if self.irqs.lock().request() {
            if count % 10 == 0 {
                pr_notice!(
                    "gvtpv: vGPU {}: asking the user to release the device (request #{})\n",
                    id,
                    count
                );
            }
        } else if count == 0 {
            pr_warn!(
                "gvtpv: vGPU {}: in use and no device request channel registered; \
                 removal waits until the user closes the device\n",
                id
            );
        }
    }
}

#[kunit_tests(gvtpv_host_vgpu)]
mod tests {
    use super::*;
    use crate::abi::pvinfo::{offset, PVINFO_OFFSET};
    use crate::mm::partition;

    /// A vGPU of the smallest type, driven without QEMU; the debugfs root outlives it.
    /// The backend and queues of a test; the scheduler lets go of the backend on drop.
    struct TestGpu(Arc<Sched>);

    impl Drop for TestGpu {
        fn drop(&mut self) {
            let _ = self.0.shutdown();
        }
    }

    fn vgpu(root: &debugfs::Dir) -> Pin<KBox<Vgpu>> {
        vgpu_on(root).0
    }

    /// A vGPU with `pages` pages of in-memory guest memory behind it.
    fn vgpu_with_guest(
        root: &debugfs::Dir,
        pages: usize,
    ) -> (
        Pin<KBox<Vgpu>>,
        TestGpu,
        Arc<crate::mm::guest::fake::FakeGuest>,
    ) {
        let (v, t) = vgpu_on(root);
        let g = crate::mm::guest::fake::FakeGuest::new(pages).unwrap();
        v.mem.attach(AnyPinner::Fake(g.clone()));
        (v, t, g)
    }

    #[test]
    fn ggtt_window_and_aperture_reach_guest_memory() {
        let root = debugfs::Dir::new(c"gvtpv_host_kunit");
        let (v, _t, g) = vgpu_with_guest(&root, 16);
        let ap = v.slice().aperture_base;
        let entry = u64::from(GTT_OFFSET) + (ap / 4096) * 8;
        // A present entry for guest frame 5, written as two halves as a 32-bit guest
        // would, then read back.
        wr32(&v, BAR0, entry, 0x5001);
        wr32(&v, BAR0, entry + 4, 0);
        assert_eq!(rd32(&v, BAR0, entry), 0x5001);
        // The aperture reaches frame 5 through it.
        wr32(&v, uapi::region::BAR2, ap + 0x10, 0xc0ffee);
        assert_eq!(g.peek32(0x5010), 0xc0ffee);
        assert_eq!(rd32(&v, uapi::region::BAR2, ap + 0x10), 0xc0ffee);
        // Outside the balloon: dropped, reads 0.
        let outside = u64::from(GTT_OFFSET) + ((ap - 4096) / 4096) * 8;
        wr32(&v, BAR0, outside, 0x6001);
        assert_eq!(rd32(&v, BAR0, outside), 0);
        // A reset takes every entry back.
        v.reset().unwrap();
        assert_eq!(rd32(&v, BAR0, entry), 0);
        assert_eq!(rd32(&v, uapi::region::BAR2, ap + 0x10), 0);
    }

    fn vgpu_on(root: &debugfs::Dir) -> (Pin<KBox<Vgpu>>, TestGpu) {
        let gpu = crate::gpu::backend().unwrap();
        let sched = Sched::new(gpu.clone()).unwrap();
        let p = partition::shared().unwrap();
        let lease = Lease::take(&p, &types::TYPES[0].request).unwrap();
        let v = Vgpu::new(lease, 0, root, c"kunit", gpu, sched.clone()).unwrap();
        (KBox::pin_init(v, GFP_KERNEL).unwrap(), TestGpu(sched))
    }

    fn rd32(v: &Vgpu, index: u32, off: u64) -> u32 {
        let mut b = [0u8; 4];
        v.read(index, off, &mut b).unwrap();
        u32::from_le_bytes(b)
    }

    fn wr32(v: &Vgpu, index: u32, off: u64, val: u32) {
        v.write(index, off, &val.to_le_bytes()).unwrap();
    }

    #[test]
    fn reset_is_a_power_on() {
        let root = debugfs::Dir::new(c"gvtpv_host_kunit");
        let v = vgpu(&root);
        let display_ready = u64::from(PVINFO_OFFSET + offset::DISPLAY_READY);
        let msi = cfg::MSI_CAP as u64;
        wr32(&v, uapi::region::CONFIG, 0x10, 0xfe00_0000);
        wr32(&v, uapi::region::CONFIG, 0x04, 0x0407);
        wr32(&v, uapi::region::CONFIG, msi, 0x0001_0005);
        wr32(&v, uapi::region::BAR0, display_ready, 1);
        assert_eq!(rd32(&v, uapi::region::CONFIG, 0x10), 0xfe00_0004);
        assert_eq!(rd32(&v, uapi::region::BAR0, display_ready), 1);
        v.reset().unwrap();
        assert_eq!(rd32(&v, uapi::region::CONFIG, 0x10), 0x4);
        assert_eq!(rd32(&v, uapi::region::CONFIG, 0x04) & 0xffff, 0);
        assert_eq!(rd32(&v, uapi::region::CONFIG, msi) >> 16, 0x80);
        assert_eq!(rd32(&v, uapi::region::BAR0, display_ready), 0);
        // The host half is what the slice says, after the reset as before it.
        assert_eq!(
            rd32(
                &v,
                uapi::region::BAR0,
                u64::from(PVINFO_OFFSET + offset::VGT_ID)
            ),
            v.slice().id
        );
        // Close powers off the same way.
        wr32(&v, uapi::region::BAR0, display_ready, 1);
        v.close();
        assert_eq!(rd32(&v, uapi::region::BAR0, display_ready), 0);
        assert_eq!(v.counters.resets.load(Relaxed), 1);
    }

    #[test]
    fn an_interrupt_can_be_raised_from_a_trap_handler() {
        let root = debugfs::Dir::new(c"gvtpv_host_kunit");
        let v = vgpu(&root);
        // A trap handler holds `state`; raising must not take it again.
        {
            let st = v.state.lock();
            v.raise_irq_locked(&st);
        }
        v.raise_irq();
        // Nothing is wired: both were dropped, and counted.
        assert_eq!(v.counters.irq_dropped.load(Relaxed), 2);
    }

    #[test]
    fn bar2_spans_the_aperture_and_counts_outside_the_slice() {
        let root = debugfs::Dir::new(c"gvtpv_host_kunit");
        let v = vgpu(&root);
        let r = v.region_info(uapi::region::BAR2).unwrap();
        assert_eq!(r.size, APERTURE_SIZE);
        let base = v.slice().aperture_base;
        assert!(base > 0);
        // Below the slice: reads zero, counted as outside.
        assert_eq!(rd32(&v, uapi::region::BAR2, 0), 0);
        assert_eq!(v.counters.aperture_outside.load(Relaxed), 1);
        // Inside the slice: not outside; a write straddling its end is.
        assert_eq!(rd32(&v, uapi::region::BAR2, base), 0);
        assert_eq!(v.counters.aperture_outside.load(Relaxed), 1);
        let end = base + v.slice().aperture_size;
        v.write(uapi::region::BAR2, end - 4, &[0; 8]).unwrap();
        assert_eq!(v.counters.aperture_outside.load(Relaxed), 2);
        assert_eq!(v.counters.aperture_read.load(Relaxed), 2);
    }

    use crate::abi::{
        lrc,
        regs::{self as r, ring},
    };

    const BAR0: u32 = uapi::region::BAR0;

    fn n(c: &Atomic<u64>) -> u64 {
        c.load(Relaxed)
    }

    /// Reads PVINFO as a guest's probe does, which makes it PV-aware.
    fn identify(v: &Vgpu) {
        assert_eq!(rd32(v, BAR0, u64::from(PVINFO_OFFSET)), 0x7654_4776);
    }

    /// Enables MSI in config space, as the guest's PCI core does.
    fn enable_msi(v: &Vgpu) {
        wr32(v, uapi::region::CONFIG, cfg::MSI_CAP as u64, 0x0001_0005);
    }

    /// Programs the GT interrupts as i915's `gen8_gt_irq_postinstall` does for RCS and
    /// BCS and enables the master.
    fn arm_irqs(v: &Vgpu) {
        let bits = r::GT_USER_INTERRUPT | r::GT_CONTEXT_SWITCH | r::GT_CS_MASTER_ERROR;
        let en = r::gt_bits(r::GT_RCS_SHIFT, bits) | r::gt_bits(r::GT_BCS_SHIFT, bits);
        wr32(v, BAR0, r::GT_IER.into(), en);
        wr32(v, BAR0, r::GT_IMR.into(), !en);
        wr32(v, BAR0, r::MASTER_IRQ.into(), r::MASTER_IRQ_CONTROL);
    }

    /// A guest status page in host memory.
    struct Page([core::cell::Cell<u32>; 64]);

    impl execlist::Hwsp for Page {
        fn store32(&self, dword: usize, val: u32) -> Result {
            self.0.get(dword).ok_or(EFAULT)?.set(val);
            Ok(())
        }

        fn store64(&self, dword: usize, val: u64) -> Result {
            self.store32(dword, val as u32)?;
            self.store32(dword + 1, (val >> 32) as u32)
        }
    }

    #[test]
    fn guest_probe_sequence() {
        let root = debugfs::Dir::new(c"gvtpv_host_kunit");
        let v = vgpu(&root);
        identify(&v);
        // Forcewake: request, acknowledged at once.
        wr32(
            &v,
            BAR0,
            r::FORCEWAKE_RENDER.into(),
            r::masked_enable(r::FORCEWAKE_KERNEL),
        );
        assert_eq!(rd32(&v, BAR0, r::FORCEWAKE_ACK_RENDER.into()), 1);
        // GDRST full: self-clearing, a GPU reset that keeps config space and PVINFO.
        enable_msi(&v);
        let ready = u64::from(PVINFO_OFFSET + offset::DISPLAY_READY);
        wr32(&v, BAR0, ready, 1);
        wr32(&v, BAR0, r::GDRST.into(), r::GRDOM_FULL);
        assert_eq!(rd32(&v, BAR0, r::GDRST.into()), 0);
        assert_eq!(n(&v.counters.gdrst_full), 1);
        assert_eq!(rd32(&v, BAR0, r::FORCEWAKE_ACK_RENDER.into()), 0);
        assert!(v.state.lock().cfg.msi_enabled());
        assert_eq!(rd32(&v, BAR0, ready), 1);
        // enable_execlists on each engine after the reset: no failsafe.
        for base in [r::RCS_BASE, r::BCS_BASE] {
            wr32(&v, BAR0, u64::from(base + ring::HWSTAM), !0);
            let mode = r::masked_enable(ring::MODE_RUN_LIST_ENABLE);
            wr32(&v, BAR0, u64::from(base + ring::MODE), mode);
            wr32(
                &v,
                BAR0,
                u64::from(base + ring::MI_MODE),
                r::masked_disable(ring::MI_MODE_STOP_RING),
            );
            wr32(&v, BAR0, u64::from(base + ring::CSB_PTR), 0xffff_0505);
            assert_eq!(rd32(&v, BAR0, u64::from(base + ring::CSB_PTR)), 0x0505);
            assert_eq!(rd32(&v, BAR0, u64::from(base + ring::ESR)), 0);
        }
        assert_eq!(n(&v.counters.failsafe), 0);
        // An engine reset through RESET_CTL and GDRST.
        let rc = u64::from(r::RCS_BASE + ring::RESET_CTL);
        wr32(&v, BAR0, rc, r::masked_enable(ring::RESET_CTL_REQUEST));
        assert_ne!(rd32(&v, BAR0, rc) & ring::RESET_CTL_READY, 0);
        wr32(&v, BAR0, r::GDRST.into(), r::GRDOM_RENDER);
        assert_eq!(n(&v.counters.gdrst_engine), 1);
        assert_eq!(rd32(&v, BAR0, u64::from(r::RCS_BASE + ring::CSB_PTR)), 7);
        // The BCS execlist was not reset.
        assert_eq!(
            rd32(&v, BAR0, u64::from(r::BCS_BASE + ring::CSB_PTR)),
            0x0505
        );
        // The modelled registers were counted as such, none as unhandled.
        assert!(n(&v.counters.reg_write) >= 12);
        assert_eq!(n(&v.counters.mmio_unhandled), 0);
    }

    #[test]
    fn default_accesses_and_the_ggtt_window() {
        let root = debugfs::Dir::new(c"gvtpv_host_kunit");
        let v = vgpu(&root);
        wr32(&v, BAR0, 0xc4000, 0x55);
        assert_eq!(rd32(&v, BAR0, 0xc4000), 0x55);
        // 8 bytes at once: two dwords of the store.
        v.write(BAR0, 0xc4008, &0x2222_2222_1111_1111u64.to_le_bytes())
            .unwrap();
        assert_eq!(rd32(&v, BAR0, 0xc400c), 0x2222_2222);
        assert_eq!(n(&v.counters.default_write), 3);
        assert_eq!(n(&v.counters.default_read), 2);
        // Between the registers and the GGTT, and the GGTT itself: nothing yet.
        wr32(&v, BAR0, 0x30_0000, 1);
        assert_eq!(n(&v.counters.mmio_unhandled), 1);
        wr32(&v, BAR0, 0x80_0000, 0x1001);
        assert_eq!(rd32(&v, BAR0, 0x80_0000), 0);
        assert_eq!(n(&v.counters.ggtt_window), 2);
        // A power-on forgets the store.
        v.reset().unwrap();
        assert_eq!(rd32(&v, BAR0, 0xc4000), 0);
    }

    #[test]
    fn interrupts_reach_msi() {
        let root = debugfs::Dir::new(c"gvtpv_host_kunit");
        let v = vgpu(&root);
        let c = &v.counters;
        enable_msi(&v);
        // Masked (reset values): nothing.
        v.raise_event(Engine::Rcs, r::GT_USER_INTERRUPT);
        assert_eq!(n(&c.irq_injected), 0);
        assert_eq!(rd32(&v, BAR0, r::GT_IIR.into()), 0);
        // Unmasked and enabled, master off: latched, not raised.
        let user = r::gt_bits(r::GT_RCS_SHIFT, r::GT_USER_INTERRUPT);
        wr32(&v, BAR0, r::GT_IER.into(), user);
        wr32(&v, BAR0, r::GT_IMR.into(), !user);
        v.raise_event(Engine::Rcs, r::GT_USER_INTERRUPT);
        assert_eq!(rd32(&v, BAR0, r::GT_IIR.into()), user);
        assert_eq!(n(&c.irq_injected), 0);
        // Enabling the master raises the pending one, through MSI (no eventfd in KUnit).
        wr32(&v, BAR0, r::MASTER_IRQ.into(), r::MASTER_IRQ_CONTROL);
        assert_eq!(n(&c.irq_injected), 1);
        assert_eq!(n(&c.inject_reg), 1);
        assert_eq!(n(&c.irq_msi_unwired), 1);
        assert_eq!(
            rd32(&v, BAR0, r::MASTER_IRQ.into()),
            r::MASTER_IRQ_CONTROL | r::MASTER_GT_RCS
        );
        // i915's handler: master off, ack IIR (w1c), master on: nothing more.
        wr32(&v, BAR0, r::MASTER_IRQ.into(), 0);
        wr32(&v, BAR0, r::GT_IIR.into(), user);
        assert_eq!(rd32(&v, BAR0, r::GT_IIR.into()), 0);
        wr32(&v, BAR0, r::MASTER_IRQ.into(), r::MASTER_IRQ_CONTROL);
        assert_eq!(n(&c.irq_injected), 1);
        // Now an event is raised at once.
        v.raise_event(Engine::Rcs, r::GT_USER_INTERRUPT);
        assert_eq!(n(&c.irq_injected), 2);
        assert_eq!(n(&c.inject_user), 1);
        assert_eq!(n(&c.irq_msi_unwired), 2);
        // Without MSI the same goes to INTx (dropped: nothing wired).
        wr32(&v, uapi::region::CONFIG, cfg::MSI_CAP as u64, 0x0000_0005);
        v.raise_event(Engine::Rcs, r::GT_USER_INTERRUPT);
        assert_eq!(n(&c.irq_msi_unwired), 2);
        assert_eq!(n(&c.irq_dropped), 1);
    }

    #[test]
    fn elsp_to_csb_through_the_vgpu() {
        let root = debugfs::Dir::new(c"gvtpv_host_kunit");
        let v = vgpu(&root);
        let c = &v.counters;
        identify(&v);
        enable_msi(&v);
        arm_irqs(&v);
        let elsp = u64::from(r::BCS_BASE + ring::ELSP);
        let d = lrc::desc::make(v.slice().hidden_base as u32, 9);
        // More pairs than the bound: each is handed to the submission path, which
        // refuses it (the image's GGTT entries map nothing: no guest memory here) and
        // ends it visibly, so every place in the bound comes back.
        // (Fewer than the sixteen refusals in a row that mean failsafe.)
        for _ in 0..execlist::PENDING_LIMIT + 2 {
            for dw in [0, 0, (d >> 32) as u32, d as u32] {
                wr32(&v, BAR0, elsp, dw);
            }
        }
        let pairs = u64::from(execlist::PENDING_LIMIT) + 2;
        assert!(v.state.lock().mmio.regs().failsafe().is_none());
        assert_eq!(n(&c.elsp_write), 4 * pairs);
        assert_eq!(n(&c.elsp_submit), pairs);
        assert_eq!(n(&c.elsp_refused), 0);
        let w = &v.work;
        let a = |x: &core::sync::atomic::AtomicU64| x.load(core::sync::atomic::Ordering::Relaxed);
        assert_eq!(a(&w.refused), pairs);
        assert_eq!(a(&w.refused_image), pairs);
        assert_eq!(a(&w.submitted), 0);
        assert_eq!(
            rd32(&v, BAR0, u64::from(r::BCS_BASE + ring::EIR)),
            ring::EIR_INSTRUCTION
        );
        assert!(n(&c.inject_error) >= 1);
        // Each refused workload went in and out: the last CSB entry says idle.
        let ptr = rd32(&v, BAR0, u64::from(r::BCS_BASE + ring::CSB_PTR)) & 7;
        let last = rd32(&v, BAR0, u64::from(r::BCS_BASE + ring::CSB + 8 * ptr));
        assert_eq!(last, lrc::csb::COMPLETE | lrc::csb::ACTIVE_IDLE);
        // The emulation itself, through a status page the test holds (RCS is idle).
        let page = Page([const { core::cell::Cell::new(0) }; 64]);
        let injected = n(&c.irq_injected);
        v.schedule_in(Engine::Rcs, [Some(d), None], Some(&page))
            .unwrap();
        assert_eq!(page.0[0x10].get(), lrc::csb::IDLE_ACTIVE);
        v.schedule_out(Engine::Rcs, d, Some(&page)).unwrap();
        assert_eq!(
            page.0[0x12].get(),
            lrc::csb::COMPLETE | lrc::csb::ACTIVE_IDLE
        );
        assert_eq!(page.0[0x13].get(), 9);
        assert_eq!(page.0[0x1f].get(), 1);
        assert_eq!(
            rd32(&v, BAR0, u64::from(r::RCS_BASE + ring::CSB + 8)),
            page.0[0x12].get()
        );
        assert_eq!(n(&c.irq_injected), injected + 2);
        assert_eq!(v.schedule_out(Engine::Rcs, d, None), Err(EINVAL));
        // A pair the model refuses: RING_EIR and the error interrupt, nothing handed over.
        let submitted = n(&c.elsp_submit);
        let relsp = u64::from(r::RCS_BASE + ring::ELSP);
        for dw in [0, 0, (d >> 32) as u32, (d & !lrc::desc::PRIVILEGE) as u32] {
            wr32(&v, BAR0, relsp, dw);
        }
        assert_eq!(n(&c.elsp_refused_privilege), 1);
        assert_eq!(n(&c.elsp_submit), submitted);
        assert_eq!(
            rd32(&v, BAR0, u64::from(r::RCS_BASE + ring::EIR)),
            ring::EIR_INSTRUCTION
        );
        v.report_error(Engine::Rcs, ring::EIR_PAGE_TABLE);
        assert_eq!(
            rd32(&v, BAR0, u64::from(r::RCS_BASE + ring::EIR)),
            ring::EIR_INSTRUCTION | ring::EIR_PAGE_TABLE
        );
    }

    #[test]
    fn failsafe_until_reset() {
        let root = debugfs::Dir::new(c"gvtpv_host_kunit");
        let v = vgpu(&root);
        // A guest that enables execlists without reading PVINFO first.
        let mode = u64::from(r::RCS_BASE + ring::MODE);
        wr32(&v, BAR0, mode, r::masked_enable(ring::MODE_RUN_LIST_ENABLE));
        assert_eq!(n(&v.counters.failsafe), 1);
        assert!(v.state.lock().mmio.regs().failsafe().is_some());
        for _ in 0..4 {
            wr32(&v, BAR0, u64::from(r::RCS_BASE + ring::ELSP), 0);
        }
        assert_eq!(n(&v.counters.elsp_failsafe), 4);
        assert_eq!(n(&v.counters.elsp_write), 0);
        // A PVINFO read and a GPU reset do not leave it; a device reset does.
        identify(&v);
        wr32(&v, BAR0, r::GDRST.into(), r::GRDOM_FULL);
        assert!(v.state.lock().mmio.regs().failsafe().is_some());
        v.reset().unwrap();
        assert!(v.state.lock().mmio.regs().failsafe().is_none());
        identify(&v);
        wr32(&v, BAR0, mode, r::masked_enable(ring::MODE_RUN_LIST_ENABLE));
        assert_eq!(n(&v.counters.failsafe), 1);
    }
}
