// SPDX-License-Identifier: GPL-2.0

//! Bring-up of the vGPU's GPU after identification, and its teardown.
//!
//! In order: bus mastering; forcewake (render, GT, media; each ack within 50 ms); the
//! GGTT over the ballooned slices; per engine a GGTT-bound status page and seqno page;
//! one MSI vector with a threaded handler; per engine the execlist registers
//! ([`Engine::bring_up`]); GT interrupt bank 0 (IER, then IMR) and the master enable
//! (`gen8_gt_irq_postinstall`, `gen8_irq_postinstall`).
//!
//! On a host that models no registers the forcewake ack never comes: bring-up stops
//! there with [`BringUpError::Forcewake`] after 50 ms, and the caller carries on
//! without a GPU (or, for the selftests, carries on regardless so that every test fails
//! on its own timeout).

use super::{
    engine::{Engine, ENGINE_IRQS},
    ggtt::Ggtt,
    irq::IrqHandler,
    mmio::Mmio,
    regs::*,
    EngineId,
};
use crate::{abi::regs as abi, pvinfo::Vgpu};
use kernel::{
    device::Core,
    fmt,
    io::{register::Array, Io},
    irq::{self, ThreadedRegistration},
    new_mutex, pci,
    prelude::*,
    sync::{atomic::Relaxed, Arc, Mutex},
};

/// Why bring-up stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BringUpError {
    /// A forcewake domain never acknowledged.
    Forcewake(&'static str),
    /// A step failed with an error.
    Step(&'static str, Error),
}

impl core::fmt::Display for BringUpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BringUpError::Forcewake(d) => write!(f, "forcewake ack timeout ({d} domain)"),
            BringUpError::Step(what, e) => write!(f, "{what}: error {}", e.to_errno()),
        }
    }
}

impl fmt::Display for BringUpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        core::fmt::Display::fmt(self, f)
    }
}

/// Attaches a step name to an error.
trait Step<T> {
    fn step(self, what: &'static str) -> Result<T, BringUpError>;
}

impl<T, E: Into<Error>> Step<T> for Result<T, E> {
    fn step(self, what: &'static str) -> Result<T, BringUpError> {
        self.map_err(|e| BringUpError::Step(what, e.into()))
    }
}

/// The GPU of a bound vGPU, up and running.
pub(crate) struct Gpu {
    // Field order is drop order: the interrupt goes first, then whatever the selftests
    // parked, then the engines with their contexts, then the GGTT.
    irq: Pin<KBox<ThreadedRegistration<IrqHandler>>>,
    /// GPU memory of failed selftests, kept until the engines are stopped.
    #[allow(clippy::type_complexity)]
    graveyard: Pin<KBox<Mutex<KVec<KBox<dyn Send>>>>>,
    engines: [Arc<Engine>; 2],
    ggtt: Arc<Ggtt>,
    mmio: Arc<Mmio>,
    /// The vGPU as PVINFO describes it.
    vgpu: Vgpu,
    /// Forcewake was acknowledged.
    forcewake: bool,
}

impl Gpu {
    /// Brings the GPU up. With `keep_going`, a forcewake timeout is only reported and
    /// bring-up continues (for the selftests on a host without a register model).
    pub(crate) fn bring_up(
        pdev: &pci::Device<Core<'_>>,
        mmio: Arc<Mmio>,
        vgpu: &Vgpu,
        keep_going: bool,
    ) -> Result<Self, BringUpError> {
        pdev.set_master();
        let forcewake = match mmio.forcewake_get().step("forcewake")? {
            Ok(()) => true,
            Err(t) if keep_going => {
                dev_warn!(
                    pdev,
                    "gvtpv: {}; continuing for the selftests\n",
                    BringUpError::Forcewake(t.0)
                );
                false
            }
            Err(t) => return Err(BringUpError::Forcewake(t.0)),
        };
        let id = &vgpu.id;
        let slice = |r: (u32, u32)| (u64::from(r.0), u64::from(r.1));
        let ggtt =
            Ggtt::new(mmio.clone(), slice(id.mappable), slice(id.nonmappable)).step("GGTT")?;
        let dev = pdev.as_ref();
        let rcs = Engine::new(dev, EngineId::Rcs, mmio.clone(), ggtt.clone()).step("rcs0")?;
        let bcs = Engine::new(dev, EngineId::Bcs, mmio.clone(), ggtt.clone()).step("bcs0")?;
        let engines = [rcs, bcs];

        let vectors = pdev
            .alloc_irq_vectors(1, 1, pci::IrqTypes::default().with(pci::IrqType::Msi))
            .step("MSI vector")?;
        let handler: Result<IrqHandler> = Ok(IrqHandler::new(mmio.clone(), engines.clone()));
        let irq = KBox::pin_init(
            pdev.request_threaded_irq(
                *vectors.start(),
                irq::Flags::TRIGGER_NONE,
                c"gvtpv_guest",
                handler,
            ),
            GFP_KERNEL,
        )
        .step("interrupt handler")?;
        let graveyard = KBox::pin_init(
            new_mutex!(KVec::new(), "gvtpv_guest::Gpu::graveyard"),
            GFP_KERNEL,
        )
        .step("allocation")?;
        let gpu = Self {
            irq,
            graveyard,
            engines,
            ggtt,
            mmio,
            vgpu: *vgpu,
            forcewake,
        };
        for e in &gpu.engines {
            e.bring_up().step(e.id().name())?;
        }
        let irqs = abi::gt_bits(abi::GT_RCS_SHIFT, ENGINE_IRQS)
            | abi::gt_bits(abi::GT_BCS_SHIFT, ENGINE_IRQS);
        gpu.mmio
            .with(|b| {
                // gen2_irq_init: IER, then IMR, posting read; then the master.
                b.try_write(GT_IER::at(0), GT_IER::from(irqs))?;
                b.try_write(GT_IMR::at(0), GT_IMR::from(!irqs))?;
                let _posting: GT_IMR = b.try_read(GT_IMR::at(0))?;
                b.try_write_reg(MASTER_IRQ::zeroed().with_control(true))
            })
            .step("interrupt enable")?;
        Ok(gpu)
    }

    /// The engine `id`.
    pub(crate) fn engine(&self, id: EngineId) -> &Arc<Engine> {
        &self.engines[id.index()]
    }

    /// The GGTT.
    pub(crate) fn ggtt(&self) -> &Arc<Ggtt> {
        &self.ggtt
    }

    /// The BAR0 mapping.
    pub(crate) fn mmio(&self) -> &Arc<Mmio> {
        &self.mmio
    }

    /// The vGPU's identity.
    pub(crate) fn vgpu(&self) -> &Vgpu {
        &self.vgpu
    }

    /// Whether forcewake was acknowledged at bring-up.
    pub(crate) fn forcewake_acked(&self) -> bool {
        self.forcewake
    }

    /// Interrupts with GT bits handled so far.
    pub(crate) fn interrupts(&self) -> u32 {
        self.irq.handler().count.load(Relaxed)
    }

    /// Keeps `x` (GPU memory the device may still use) until teardown.
    pub(crate) fn keep(&self, x: KBox<dyn Send>) {
        // On allocation failure `x` is dropped here; the engines hold what is in flight.
        let _ = self.graveyard.lock().push(x, GFP_KERNEL);
    }
}

impl Drop for Gpu {
    fn drop(&mut self) {
        // Interrupts off, rings stopped, then the memory can go.
        let _ = self.mmio.with(|b| b.try_write_reg(MASTER_IRQ::zeroed()));
        for e in &self.engines {
            e.stop();
            e.forget_all();
        }
        if self.forcewake {
            let _ = self.mmio.forcewake_put();
        }
    }
}
