// SPDX-License-Identifier: GPL-2.0

//! One virtual GPU: config space, BAR0 with PVINFO, the aperture BAR, interrupts, reset.
//!
//! Lock order: `state` before `irqs`.

pub(crate) mod access;
pub(crate) mod cfg;
pub(crate) mod irq;
pub(crate) mod mmio;
pub(crate) mod types;

use crate::{
    debugfs::Counters,
    mm::partition::Slice,
    vfio::{uapi, IrqSet, RegionInfo, VfioDevice, VfioOps},
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
    /// The graphics memory and fences it owns; returned to the partition on remove.
    pub(crate) slice: Slice,
    /// Index into [`types::TYPES`].
    pub(crate) type_index: usize,
    #[pin]
    state: Mutex<State>,
    #[pin]
    irqs: Mutex<irq::Irqs>,
    counters: Arc<Counters>,
    /// The [`mmio::Fault`] injected into PVINFO reads (debugfs `pvinfo_fault`).
    fault: Arc<Atomic<u32>>,
    // Dropped before the counters they show.
    _debugfs: debugfs::Dir,
    _files: KVec<Pin<KBox<debugfs::File<Arc<Counters>>>>>,
    _info: Pin<KBox<debugfs::File<Info>>>,
    _fault_file: Pin<KBox<debugfs::File<Arc<Atomic<u32>>>>>,
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
        writeln!(f, "fences {}+{}", s.fence_base, s.fences)
    }
}

impl Vgpu {
    /// Creates the vGPU for `slice`, with its debugfs directory `name` under `root`.
    pub(crate) fn new(
        slice: Slice,
        type_index: usize,
        root: &debugfs::Dir,
        name: &CStr,
    ) -> Result<Arc<Self>> {
        let aperture = slice.aperture_size;
        let mmio = mmio::Mmio::new(&slice);
        let counters = Arc::new(Counters::default(), GFP_KERNEL)?;
        let dir = root.subdir(name);
        let mut files = KVec::new();
        files.push(
            KBox::pin_init(
                dir.read_callback_file(c"counters", counters.clone(), &|c: &Arc<Counters>, f| {
                    core::fmt::Display::fmt(&**c, f)
                }),
                GFP_KERNEL,
            )?,
            GFP_KERNEL,
        )?;
        let info = KBox::pin_init(
            dir.read_callback_file(c"info", Info { slice, type_index }, &|i: &Info, f| {
                core::fmt::Display::fmt(i, f)
            }),
            GFP_KERNEL,
        )?;
        let fault = Arc::new(Atomic::new(0u32), GFP_KERNEL)?;
        let fault_file = KBox::pin_init(
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
        Arc::pin_init(
            try_pin_init!(Self {
                slice,
                type_index,
                state <- new_mutex!(State {
                    cfg: cfg::ConfigSpace::new(aperture),
                    mmio,
                }),
                irqs <- new_mutex!(irq::Irqs::default()),
                counters,
                fault,
                _debugfs: dir,
                _files: files,
                _info: info,
                _fault_file: fault_file,
            }),
            GFP_KERNEL,
        )
    }

    /// Serves a trapped access at file position `pos`.
    fn access(&self, pos: u64, mut op: Op<'_>) -> Result {
        let c = &*self.counters;
        let (len, write) = match &op {
            Op::Read(b) => (b.len(), false),
            Op::Write(b) => (b.len(), true),
        };
        let a = access::decode(pos, len, write, |i| self.region_info(i))
            .inspect_err(|_| Counters::inc(&c.bad_access))?;
        let fault = mmio::Fault::from_u32(self.fault.load(Relaxed));
        let mut st = self.state.lock();
        match a.index {
            uapi::region::CONFIG => {
                let off = a.off as usize;
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
                    return Err(EINVAL);
                }
            }
            uapi::region::BAR0 => access::for_each_chunk(a.off, len, |at, start, n| {
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
            // The aperture is backed by GGTT translation, which the GTT work adds; until
            // then it reads as zero and ignores writes, and says so in counters.
            uapi::region::BAR2 => match op {
                Op::Read(buf) => {
                    Counters::inc(&c.aperture_read);
                    buf.fill(0);
                }
                Op::Write(_) => Counters::inc(&c.aperture_write),
            },
            _ => return Err(EINVAL),
        }
        Ok(())
    }

    /// Raises an interrupt to the guest.
    pub(crate) fn raise_irq(&self) {
        let st = self.state.lock();
        let d = self
            .irqs
            .lock()
            .raise(st.cfg.msi_enabled(), st.cfg.intx_disabled());
        self.count_irq(d);
    }

    fn count_irq(&self, d: irq::Delivered) {
        let c = &*self.counters;
        Counters::inc(match d {
            irq::Delivered::Msi => &c.irq_msi,
            irq::Delivered::Intx => &c.irq_intx,
            irq::Delivered::Dropped => &c.irq_dropped,
        });
    }
}

impl VfioOps for Vgpu {
    fn open(&self) -> Result {
        Counters::inc(&self.counters.opens);
        Ok(())
    }

    fn close(&self) {
        self.irqs.lock().clear();
    }

    fn read(&self, _vfio: &VfioDevice<'_>, pos: u64, buf: &mut [u8]) -> Result {
        self.access(pos, Op::Read(buf))
    }

    fn write(&self, _vfio: &VfioDevice<'_>, pos: u64, buf: &[u8]) -> Result {
        self.access(pos, Op::Write(buf))
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
                size: self.slice.aperture_size,
                flags: rw,
            },
            i if i < uapi::region::NUM => RegionInfo::default(),
            _ => return Err(EINVAL),
        })
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
        self.state.lock().mmio.reset();
        Ok(())
    }

    fn dma_unmap(&self, _iova: u64, _len: u64) {
        // No guest page is pinned yet: the pin cache arrives with the shadow GTTs.
    }
}
