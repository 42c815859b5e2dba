// SPDX-License-Identifier: GPL-2.0

//! The PCI driver: probe maps BAR0, reads and validates PVINFO, identifies the vGPU,
//! then brings its GPU up (module parameter `gpu`, on by default) and runs the live
//! selftests (`selftests`, off by default).
//!
//! GPU bring-up fails soft: after a clear message the device stays bound with its
//! identification, as on a host that models no GPU registers yet.

use crate::abi::{gen, pvinfo as abi_pvinfo};
use crate::core::{gpu::Gpu, mmio::Mmio, selftests};
use crate::pvinfo;
use kernel::{
    debugfs,
    device::Core,
    io::{register, Io},
    pci,
    prelude::*,
    sync::Arc,
    time::Delta,
};

/// Size of BAR0 as the device type has it.
const BAR0_SIZE: usize = gen::BAR0_SIZE as usize;

mod regs {
    use super::*;

    register! {
        /// GMCH graphics control (`SNB_GMCH_CTRL`) in config space.
        pub(super) GMCH_CTRL(u16) @ 0x50 {
            /// GGTT size: `1 << ggms` MiB of page table.
            7:6 ggms;
        }
    }
}
const _: () = assert!(gen::GMCH_CTRL == 0x50 && gen::GMCH_GGMS_SHIFT == 6);

/// The driver.
pub(crate) struct Driver;

/// Per-device data: the GPU if it came up, the mapped BAR and what was identified.
pub(crate) struct Data {
    // Dropped first: the GPU is quiesced while BAR0 is still mapped.
    _gpu: Option<Gpu>,
    _mmio: Arc<Mmio>,
    _debugfs: debugfs::Dir,
    _info: Pin<KBox<debugfs::File<pvinfo::Vgpu>>>,
}

kernel::pci_device_table!(
    PCI_TABLE,
    MODULE_PCI_TABLE,
    <Driver as pci::Driver>::IdInfo,
    [(
        pci::DeviceId::from_id(pci::Vendor::INTEL, gen::PCI_DEVICE_ID_SKL_GT2 as u32),
        ()
    )]
);

/// A copy of the PVINFO page, on the heap: 4 KiB does not belong on a kernel stack.
type PvinfoCopy = KBox<[u8; abi_pvinfo::PVINFO_SIZE as usize]>;

/// Reads the PVINFO page through BAR0 into one copy, a dword at a time as the hardware
/// wants; everything after works on the copy.
fn read_pvinfo(bar: &pci::Bar<'_, BAR0_SIZE>) -> Result<PvinfoCopy> {
    let mut page = PvinfoCopy::zeroed(GFP_KERNEL)?;
    let base = abi_pvinfo::PVINFO_OFFSET as usize;
    for (i, dw) in page.chunks_exact_mut(4).enumerate() {
        dw.copy_from_slice(&bar.try_read32(base + i * 4)?.to_le_bytes());
    }
    Ok(page)
}

impl pci::Driver for Driver {
    type IdInfo = ();
    type Data<'bound> = Data;

    const ID_TABLE: pci::IdTable<Self::IdInfo> = &PCI_TABLE;

    fn probe<'bound>(
        pdev: &'bound pci::Device<Core<'_>>,
        _info: &'bound Self::IdInfo,
    ) -> impl PinInit<Self::Data<'bound>, Error> + 'bound {
        pdev.enable_device_mem()?;
        let bar = pdev.iomap_region_sized::<BAR0_SIZE>(0, c"gvtpv_guest")?;
        let gmch = pdev.config_space().read(regs::GMCH_CTRL).into_raw();
        let aperture = pdev.resource_len(2)?;
        let page = read_pvinfo(&bar)?;
        let vgpu =
            pvinfo::validate(zerocopy::transmute_ref!(&*page), gmch, aperture).map_err(|why| {
                dev_err!(pdev, "not a usable gvtpv vGPU: {}\n", why);
                ENODEV
            })?;
        dev_info!(pdev, "gvtpv: {}\n", vgpu);

        let mmio = Arc::pin_init(Mmio::new(bar.into_devres()?), GFP_KERNEL)?;
        let want_gpu = *crate::module_parameters::gpu.value() != 0;
        let selftests = *crate::module_parameters::selftests.value();
        let run_selftests = selftests != 0;
        let gpu = if want_gpu || run_selftests {
            let gpu = Gpu::bring_up(pdev, mmio.clone(), &vgpu, run_selftests);
            match &gpu {
                Ok(g) if g.forcewake_acked() => {
                    dev_info!(pdev, "gvtpv: GPU up: rcs0 bcs0, execlists, MSI\n")
                }
                Ok(_) => dev_warn!(
                    pdev,
                    "gvtpv: GPU set up without forcewake, for the selftests\n"
                ),
                Err(e) => dev_warn!(pdev, "gvtpv: GPU bring-up failed: {}\n", e),
            }
            Some(gpu)
        } else {
            None
        };
        if run_selftests {
            let ms = (*crate::module_parameters::selftest_timeout_ms.value()).clamp(1, 60_000);
            let timeout = Delta::from_millis(i64::from(ms));
            if let Some(gpu) = &gpu {
                let hostile = selftests == 1;
                selftests::run_all(
                    pdev.as_ref(),
                    gpu.as_ref().map_err(|e| *e),
                    timeout,
                    hostile,
                );
            }
        }

        let dir = debugfs::Dir::new(c"gvtpv_guest");
        let info = KBox::pin_init(
            dir.read_callback_file(c"info", vgpu, &|v: &pvinfo::Vgpu, f| {
                kernel::fmt::Display::fmt(v, f)?;
                writeln!(f)
            }),
            GFP_KERNEL,
        )?;
        Ok(Data {
            _gpu: gpu.and_then(Result::ok),
            _mmio: mmio,
            _debugfs: dir,
            _info: info,
        })
    }
}
