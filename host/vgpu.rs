// SPDX-License-Identifier: GPL-2.0

//! One virtual GPU: config space, BAR0 with PVINFO, the aperture BAR, interrupts, reset,
//! and the guest memory the device reaches.
//!
//! Lifecycle: opening the device file is a power-on. Config space, BAR0 and PVINFO's
//! guest half go back to their reset values on open, on `VFIO_DEVICE_RESET` and on close;
//! pins go on reset and close, eventfds on close. Nothing of one VM reaches the next.
//!
//! Lock order (each lock only ever taken after the ones before it):
//! 1. `Vgpu::state` - the device model a trapped access changes;
//! 2. `Vgpu::irqs` - the eventfds; taken under `state` to raise an interrupt from inside a
//!    trap handler ([`Vgpu::raise_irq_locked`]), or alone by SET_IRQS and requests;
//! 3. `GuestMemory::inner` (`Vgpu::mem`), alone: it is never held while the vfio core
//!    runs, nor is any other lock of ours (`vfio::dma` says why).

pub(crate) mod access;
pub(crate) mod cfg;
pub(crate) mod irq;
pub(crate) mod mmio;
pub(crate) mod types;

use crate::{
    debugfs::Counters,
    mm::{
        guest::{GuestMemory, Probe},
        partition::{Lease, Slice, APERTURE_SIZE},
    },
    vfio::{uapi, Dma, IrqSet, RegionInfo, VfioOps},
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

/// Most guest pages one vGPU keeps pinned at once (64 MiB): rings, the shared area and
/// page tables, not whole buffers. A guest that wants more gets an error.
const PIN_LIMIT: usize = 16384;

/// The guest memory of a vGPU, reached through its vfio device.
type Mem = GuestMemory<Arc<Dma>>;

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

/// A virtual GPU.
#[pin_data]
pub(crate) struct Vgpu {
    /// The graphics memory and fences it owns; back to the partition when the vGPU goes.
    lease: Lease,
    #[pin]
    state: Mutex<State>,
    #[pin]
    irqs: Mutex<irq::Irqs>,
    /// Guest memory through the pin cache; shared with the debugfs `mem_probe` hook.
    mem: Arc<Mem>,
    /// Its debugfs directory; dropped before the counters it shows.
    files: Files,
    counters: Arc<Counters>,
    /// The [`mmio::Fault`] injected into PVINFO reads (debugfs `pvinfo_fault`).
    fault: Arc<Atomic<u32>>,
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
}

impl Files {
    fn new(
        root: &debugfs::Dir,
        name: &CStr,
        info: Info,
        counters: &Arc<Counters>,
        fault: &Arc<Atomic<u32>>,
        mem: &Arc<Mem>,
    ) -> Result<Self> {
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
        Ok(Self {
            _dir: dir,
            _counters: counters,
            _info: info,
            _fault: fault,
            _probe: probe,
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
    ) -> Result<impl PinInit<Self, Error>> {
        let counters = Arc::new(Counters::default(), GFP_KERNEL)?;
        let fault = Arc::new(Atomic::new(0u32), GFP_KERNEL)?;
        let info = Info {
            slice: *lease.slice(),
            type_index,
        };
        let mem = Arc::pin_init(GuestMemory::new(PIN_LIMIT), GFP_KERNEL)?;
        let files = Files::new(root, name, info, &counters, &fault, &mem)?;
        let mmio = mmio::Mmio::new(lease.slice())?;
        Ok(try_pin_init!(Self {
            state <- new_mutex!(State {
                cfg: cfg::ConfigSpace::new(),
                mmio,
            }),
            irqs <- new_mutex!(irq::Irqs::default()),
            mem,
            files,
            counters,
            fault,
            lease,
        }))
    }

    /// The vGPU's graphics memory and fences.
    pub(crate) fn slice(&self) -> &Slice {
        self.lease.slice()
    }

    /// Serves a trapped access at offset `off` of region `index` (checked by the vfio
    /// room against [`VfioOps::region_info`]).
    fn access(&self, index: u32, off: u64, mut op: Op<'_>) -> Result {
        let c = &*self.counters;
        let (len, write) = match &op {
            Op::Read(b) => (b.len(), false),
            Op::Write(b) => (b.len(), true),
        };
        let fault = mmio::Fault::from_u32(self.fault.load(Relaxed));
        let mut st = self.state.lock();
        match index {
            uapi::region::CONFIG => {
                let off = off as usize;
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
            uapi::region::BAR0 => access::for_each_chunk(off, len, |at, start, n| {
                let hit = match &mut op {
                    Op::Read(buf) => {
                        let Some(chunk) = buf.get_mut(start..start + n) else {
                            return;
                        };
                        Counters::inc(&c.mmio_read);
                        st.mmio.read(at, chunk, fault)
                    }
                    Op::Write(data) => {
                        let Some(chunk) = data.get(start..start + n) else {
                            return;
                        };
                        Counters::inc(&c.mmio_write);
                        st.mmio.write(at, chunk)
                    }
                };
                Counters::inc(match (hit, write) {
                    (mmio::Hit::Pvinfo, false) => &c.pvinfo_read,
                    (mmio::Hit::Pvinfo, true) => &c.pvinfo_write,
                    (mmio::Hit::G2vNotify(_), _) => &c.g2v_notify,
                    (mmio::Hit::PvinfoReadOnly, _) => &c.pvinfo_ro_write,
                    (mmio::Hit::Unhandled, _) => &c.mmio_unhandled,
                });
            }),
            // BAR2 spans the whole aperture, as GVT-g sizes it for every vGPU. The vGPU's
            // own slice is backed by GGTT translation, which the GTT work adds; until then
            // it reads as zero and ignores writes. Outside the slice the same holds for
            // good, and such accesses are counted on their own.
            uapi::region::BAR2 => {
                let s = self.slice();
                let inside = off >= s.aperture_base
                    && off.saturating_add(len as u64) <= s.aperture_base + s.aperture_size;
                if !inside {
                    Counters::inc(&c.aperture_outside);
                }
                match op {
                    Op::Read(buf) => {
                        Counters::inc(&c.aperture_read);
                        buf.fill(0);
                    }
                    Op::Write(_) => Counters::inc(&c.aperture_write),
                }
            }
            _ => {
                Counters::inc(&c.bad_access);
                return Err(EINVAL);
            }
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
            irq::Delivered::Dropped => &c.irq_dropped,
        });
    }

    /// Power-on state of the device model: config space and BAR0 as after a reset.
    fn power_on(&self) {
        let mut st = self.state.lock();
        st.cfg.reset();
        st.mmio.reset();
    }
}

#[vtable]
impl VfioOps for Vgpu {
    fn open(&self, dma: Arc<Dma>) -> Result {
        Counters::inc(&self.counters.opens);
        self.power_on();
        self.mem.attach(dma);
        Ok(())
    }

    fn close(&self) {
        self.mem.detach();
        self.irqs.lock().clear();
        self.power_on();
    }

    fn read(&self, index: u32, off: u64, buf: &mut [u8]) -> Result {
        self.access(index, off, Op::Read(buf))
    }

    fn write(&self, index: u32, off: u64, data: &[u8]) -> Result {
        self.access(index, off, Op::Write(data))
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
    fn vgpu(root: &debugfs::Dir) -> Pin<KBox<Vgpu>> {
        let p = partition::shared().unwrap();
        let lease = Lease::take(&p, &types::TYPES[0].request).unwrap();
        KBox::pin_init(Vgpu::new(lease, 0, root, c"kunit").unwrap(), GFP_KERNEL).unwrap()
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
}
