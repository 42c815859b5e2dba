// SPDX-License-Identifier: GPL-2.0

//! One guest context submission, read and shadowed (GVT-g: `scheduler.c:
//! intel_vgpu_create_workload`, `populate_shadow_context`, `update_guest_context`).
//!
//! [`GuestContext::read`] copies the guest's register state page once, through the
//! vGPU's GGTT, and checks its ring against the vGPU's slices; [`GuestContext::segment`]
//! copies the ring commands between head and tail (with wrap); [`Shadow::build`] makes
//! the host-owned context image and ring the backend runs, in the vGPU's host window;
//! [`GuestContext::write_back`] gives the guest its ring head when the context ends.
//! Everything the backend will run is a host copy: the guest cannot change it after the
//! scan.

use crate::{
    abi::{lrc, regs::ring},
    cmd_parser::{self, Memory, Placement, Refusal, Space},
    gpu::{DevPage, Engine, PAGE},
    mm::{
        ggtt::Ggtt,
        guest::Pinner,
        host::{HostBuf, HostGgtt},
        ppgtt::{Ppgtt, Root},
    },
};
use kernel::{prelude::*, sync::Arc};

/// Largest ring segment one workload may carry (the shadow ring's size).
pub(crate) const SEGMENT_MAX: usize = 64 << 10;

/// Why a guest context cannot run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ContextError {
    /// The context image (or its state page) is not inside the vGPU's slices, or its
    /// GGTT entry maps no guest page.
    Image,
    /// The ring is outside the vGPU's slices, or head or tail lie outside the ring.
    Ring,
    /// A ring page's GGTT entry maps no guest page, or a guest page went away.
    RingPage,
    /// The segment is longer than [`SEGMENT_MAX`].
    TooLong,
    /// Host memory for the shadows ran out (the vGPU's window is full).
    NoSpace,
    /// The context's PPGTT could not be shadowed (its root or a bound).
    Ppgtt,
}

impl ContextError {
    /// A short name for logs and counters.
    pub(crate) const fn name(self) -> &'static str {
        match self {
            ContextError::Image => "bad_image",
            ContextError::Ring => "bad_ring",
            ContextError::RingPage => "ring_unmapped",
            ContextError::TooLong => "segment_too_long",
            ContextError::NoSpace => "no_space",
            ContextError::Ppgtt => "bad_ppgtt",
        }
    }
}

/// The guest context a descriptor names, as read once.
pub(crate) struct GuestContext {
    /// The engine.
    pub(crate) engine: Engine,
    /// The guest's descriptor.
    pub(crate) desc: u64,
    /// A copy of the guest's register state page.
    pub(crate) state: KVec<u32>,
    /// The guest page holding the state page (for the write-back).
    state_page: Arc<dyn DevPage>,
    /// Ring start (GGTT) and size in bytes.
    pub(crate) ring_start: u64,
    /// Ring size in bytes.
    pub(crate) ring_size: u32,
    /// Head offset in the ring (bytes).
    pub(crate) head: u32,
    /// Tail offset in the ring (bytes).
    pub(crate) tail: u32,
    /// The PML4 the context names (guest DMA address, PDP0).
    pub(crate) pml4: u64,
}

/// The page that GGTT address `gm` lies in, if the vGPU owns it and it maps a guest page.
fn page_at<P: Pinner + Clone>(ggtt: &Ggtt<P>, gm: u64) -> Option<Arc<dyn DevPage>>
where
    P::Page: 'static,
{
    if !ggtt.owns(gm, 1) {
        return None;
    }
    let p: Arc<dyn DevPage> = ggtt.page(u32::try_from(gm / PAGE).ok()?)?;
    Some(p)
}

impl GuestContext {
    /// Reads the context `desc` names on `engine` through the vGPU's GGTT. `head` is
    /// the ring head to start from when an earlier workload of the same context is still
    /// queued (its tail: the image's head may not be written back yet, as GVT-g notes).
    ///
    /// # Errors
    ///
    /// [`ContextError::Image`] or [`ContextError::Ring`].
    pub(crate) fn read<P: Pinner + Clone>(
        ggtt: &Ggtt<P>,
        engine: Engine,
        desc: u64,
        head: Option<u32>,
    ) -> Result<Self, ContextError>
    where
        P::Page: 'static,
    {
        let lrca = u64::from(lrc::desc::lrca(desc));
        let pages = u64::from(engine.context_pages());
        if !ggtt.owns(lrca, pages * PAGE) {
            return Err(ContextError::Image);
        }
        let state_page =
            page_at(ggtt, lrca + u64::from(lrc::STATE_PAGE) * PAGE).ok_or(ContextError::Image)?;
        let mut state = KVec::with_capacity(lrc::state::DWORDS, GFP_KERNEL)
            .map_err(|_| ContextError::NoSpace)?;
        for i in 0..lrc::state::DWORDS {
            let v = state_page.load32(4 * i).map_err(|_| ContextError::Image)?;
            state
                .push(v, GFP_KERNEL)
                .map_err(|_| ContextError::NoSpace)?;
        }
        let ring_start = u64::from(state[lrc::state::RING_START] & !0xfff);
        let ctl = state[lrc::state::RING_CTL];
        let ring_size = (((ctl & ring::CTL_SIZE_MASK) >> 12) + 1) * PAGE as u32;
        let head = head.unwrap_or(state[lrc::state::RING_HEAD] & ring::HEAD_ADDR);
        let tail = state[lrc::state::RING_TAIL] & ring::TAIL_ADDR;
        if !ggtt.owns(ring_start, u64::from(ring_size)) || head >= ring_size || tail >= ring_size {
            return Err(ContextError::Ring);
        }
        let pml4 =
            (u64::from(state[lrc::state::PDP0_UDW]) << 32) | u64::from(state[lrc::state::PDP0_LDW]);
        Ok(Self {
            engine,
            desc,
            state,
            state_page,
            ring_start,
            ring_size,
            head,
            tail,
            pml4,
        })
    }

    /// Bytes of ring commands between head and tail.
    pub(crate) fn segment_len(&self) -> u32 {
        if self.tail >= self.head {
            self.tail - self.head
        } else {
            self.ring_size - self.head + self.tail
        }
    }

    /// Copies the ring commands between head and tail, with wrap, through the GGTT.
    ///
    /// # Errors
    ///
    /// [`ContextError::TooLong`] or [`ContextError::RingPage`].
    pub(crate) fn segment<P: Pinner + Clone>(
        &self,
        ggtt: &Ggtt<P>,
    ) -> Result<KVec<u32>, ContextError>
    where
        P::Page: 'static,
    {
        let len = self.segment_len() as usize;
        if len > SEGMENT_MAX {
            return Err(ContextError::TooLong);
        }
        let mut out =
            KVec::with_capacity(len / 4, GFP_KERNEL).map_err(|_| ContextError::NoSpace)?;
        let mut page: Option<(u64, Arc<dyn DevPage>)> = None;
        let mut off = self.head;
        for _ in 0..len / 4 {
            let gm = self.ring_start + u64::from(off);
            let base = gm & !(PAGE - 1);
            let p = match &page {
                Some((b, p)) if *b == base => p.clone(),
                _ => {
                    let p = page_at(ggtt, base).ok_or(ContextError::RingPage)?;
                    page = Some((base, p.clone()));
                    p
                }
            };
            let v = p
                .load32((gm - base) as usize)
                .map_err(|_| ContextError::RingPage)?;
            out.push(v, GFP_KERNEL).map_err(|_| ContextError::NoSpace)?;
            off += 4;
            if off >= self.ring_size {
                off = 0;
            }
        }
        Ok(out)
    }

    /// Gives the guest its ring head when the context ended: the image's RING_HEAD =
    /// the workload's tail (GVT-g `update_guest_context` writes the tail, without a wrap
    /// count, into the image).
    ///
    /// # Errors
    ///
    /// `EFAULT` if the guest page went away.
    pub(crate) fn write_back(&self) -> Result {
        self.state_page
            .store32(4 * lrc::state::RING_HEAD, self.tail)
    }

    /// The ring head value with the wrap count carried, as GVT-g keeps it in the
    /// engine's `RING_HEAD` register copy.
    pub(crate) fn head_with_wrap(&self) -> u32 {
        let guest = self.state[lrc::state::RING_HEAD];
        let mut wrap = guest >> ring::HEAD_WRAP_SHIFT;
        if self.tail < self.head {
            wrap = if wrap == (1 << (32 - ring::HEAD_WRAP_SHIFT)) - 1 {
                0
            } else {
                wrap + 1
            };
        }
        (wrap << ring::HEAD_WRAP_SHIFT) | self.tail
    }
}

/// The host-owned context image and ring the backend runs for one workload.
pub(crate) struct Shadow {
    /// The image (as many pages as the engine's context).
    pub(crate) context: HostBuf,
    /// The ring, holding the scanned commands from offset 0.
    pub(crate) ring: HostBuf,
    /// The descriptor of the shadow context.
    pub(crate) desc: u64,
}

impl Shadow {
    /// Builds the shadow of `ctx` running `commands` (the scanned segment, batch starts
    /// already pointing at their copies) with PPGTT root `pml4_dev` (the shadow PML4's
    /// device address): the guest's state page with our ring start, head, tail, ring
    /// control and PDP0 patched in (GVT-g `populate_shadow_context`,
    /// `set_context_ppgtt_from_shadow`).
    ///
    /// # Errors
    ///
    /// [`ContextError::NoSpace`] or [`ContextError::TooLong`].
    pub(crate) fn build(
        window: &Arc<HostGgtt>,
        ctx: &GuestContext,
        commands: &[u32],
        pml4_dev: u64,
    ) -> Result<Self, ContextError> {
        // Tail must be qword aligned: pad with MI_NOOP.
        let dwords = commands.len() + commands.len() % 2;
        let bytes = dwords * 4;
        if bytes > SEGMENT_MAX {
            return Err(ContextError::TooLong);
        }
        // One page more than the commands need, so that tail never equals the size.
        let ring_pages = bytes / PAGE as usize + 1;
        let ring = window
            .alloc(ring_pages)
            .map_err(|_| ContextError::NoSpace)?;
        let context = window
            .alloc(ctx.engine.context_pages() as usize)
            .map_err(|_| ContextError::NoSpace)?;
        let fail = |_| ContextError::NoSpace;
        ring.mem().write_dwords(0, commands).map_err(fail)?;
        let mut state = KVec::new();
        state
            .extend_from_slice(&ctx.state, GFP_KERNEL)
            .map_err(|_| ContextError::NoSpace)?;
        state[lrc::state::RING_START] = ring.gm() as u32;
        state[lrc::state::RING_HEAD] = 0;
        state[lrc::state::RING_TAIL] = bytes as u32;
        state[lrc::state::RING_CTL] = ((ring_pages as u32 - 1) << 12) | ring::CTL_VALID;
        state[lrc::state::PDP0_UDW] = (pml4_dev >> 32) as u32;
        state[lrc::state::PDP0_LDW] = pml4_dev as u32;
        let state_off = lrc::STATE_PAGE as usize * PAGE as usize;
        context
            .mem()
            .write_dwords(state_off, &state)
            .map_err(fail)?;
        let desc = lrc::desc::make(context.gm() as u32, lrc::desc::ctx_id(ctx.desc));
        Ok(Self {
            context,
            ring,
            desc,
        })
    }
}

/// Reads guest memory through the workload's PPGTT (the shadow the mediator built from
/// the guest's tables, so a translation the host validated).
pub(crate) trait PpgttReader {
    /// Reads `out.len()` dwords at PPGTT address `va` (inside one page).
    fn read(&self, va: u64, out: &mut [u32]) -> Result;
}

/// Reads through a shadow root of the vGPU's PPGTT.
pub(crate) struct ShadowReader<'a, P: Pinner + Clone>
where
    P::Page: 'static,
{
    /// The vGPU's shadow PPGTT.
    pub(crate) ppgtt: &'a Ppgtt<P>,
    /// The workload's root.
    pub(crate) root: &'a Root,
}

impl<P: Pinner + Clone> PpgttReader for ShadowReader<'_, P>
where
    P::Page: 'static,
{
    fn read(&self, va: u64, out: &mut [u32]) -> Result {
        let (page, off) = self.ppgtt.translate(self.root, va).ok_or(EFAULT)?;
        if off % 4 != 0 || off + 4 * out.len() > PAGE as usize {
            return Err(EINVAL);
        }
        for (i, d) in out.iter_mut().enumerate() {
            *d = page.load32(off + 4 * i)?;
        }
        Ok(())
    }
}

/// How the command parser reads guest batches: GGTT addresses through the vGPU's GGTT
/// entries, PPGTT addresses through the workload's shadow PPGTT.
pub(crate) struct GuestBatches<'a, P: Pinner + Clone>
where
    P::Page: 'static,
{
    /// The vGPU's GGTT.
    pub(crate) ggtt: &'a Ggtt<P>,
    /// The workload's PPGTT, if its context has one.
    pub(crate) ppgtt: Option<&'a dyn PpgttReader>,
}

impl<P: Pinner + Clone> Memory for GuestBatches<'_, P>
where
    P::Page: 'static,
{
    fn read(&self, space: Space, addr: u64, out: &mut [u32]) -> Result {
        match space {
            Space::Ppgtt => self.ppgtt.ok_or(EFAULT)?.read(addr, out),
            Space::Ggtt => {
                let base = addr & !(PAGE - 1);
                let end = (addr - base) as usize + 4 * out.len();
                if addr % 4 != 0 || end > PAGE as usize {
                    return Err(EINVAL);
                }
                let page = page_at(self.ggtt, base).ok_or(EFAULT)?;
                for (i, d) in out.iter_mut().enumerate() {
                    *d = page.load32((addr - base) as usize + 4 * i)?;
                }
                Ok(())
            }
        }
    }
}

/// Batch copies go to pages of the vGPU's host window, one allocation per batch.
pub(crate) struct BatchPlacer<'a> {
    window: &'a Arc<HostGgtt>,
    /// The allocations made, in order.
    pub(crate) bufs: KVec<HostBuf>,
}

impl<'a> BatchPlacer<'a> {
    /// A placer over `window`.
    pub(crate) fn new(window: &'a Arc<HostGgtt>) -> Self {
        Self {
            window,
            bufs: KVec::new(),
        }
    }
}

impl Placement for BatchPlacer<'_> {
    fn place(&mut self, dwords: usize) -> Result<u64> {
        let bytes = dwords.checked_mul(4).ok_or(EINVAL)?;
        let pages = bytes.div_ceil(PAGE as usize).max(1);
        let buf = self.window.alloc(pages)?;
        let gm = buf.gm();
        self.bufs.push(buf, GFP_KERNEL)?;
        Ok(gm)
    }
}

/// Why a workload was refused before the backend saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// Its context image or ring.
    Context(ContextError),
    /// The command parser.
    Parser(Refusal),
}

/// A workload ready for the backend: the guest context it came from, its shadows and
/// the batch copies it runs.
pub(crate) struct Prepared {
    /// The guest context.
    pub(crate) guest: GuestContext,
    /// The shadow image and ring.
    pub(crate) shadow: Shadow,
    /// The batch copies (the shadow ring and the copies point at them).
    pub(crate) batches: KVec<HostBuf>,
    /// What the parser saw.
    pub(crate) stats: cmd_parser::Stats,
}

/// Scans and shadows a guest context read with [`GuestContext::read`] (the caller found
/// its PPGTT root from it): the rest of the preparation of one workload (path 1, steps
/// 3 and 4 of Documentation/design.rst). `pml4_dev` is the shadow root's device
/// address, `ppgtt` reads through it.
///
/// # Errors
///
/// [`Refused`], with the reason.
pub(crate) fn prepare<P: Pinner + Clone>(
    ggtt: &Ggtt<P>,
    window: &Arc<HostGgtt>,
    slice: &crate::mm::partition::Slice,
    guest: GuestContext,
    ppgtt: Option<&dyn PpgttReader>,
    pml4_dev: u64,
) -> Result<Prepared, Refused>
where
    P::Page: 'static,
{
    let segment = guest.segment(ggtt).map_err(Refused::Context)?;
    let ranges = cmd_parser::Ranges {
        aperture_base: slice.aperture_base,
        aperture_size: slice.aperture_size,
        hidden_base: slice.hidden_base,
        hidden_size: slice.hidden_size,
        ring_base: guest.ring_start,
        ring_size: u64::from(guest.ring_size),
        ppgtt_limit: cmd_parser::PPGTT_LIMIT,
    };
    let mem = GuestBatches { ggtt, ppgtt };
    let mut placer = BatchPlacer::new(window);
    let scanned = cmd_parser::scan(
        guest.engine,
        &segment,
        &mem,
        &mut placer,
        &ranges,
        &cmd_parser::Limits::DEFAULT,
    )
    .map_err(Refused::Parser)?;
    for b in scanned.batches.iter() {
        let buf = placer
            .bufs
            .iter()
            .find(|buf| buf.gm() <= b.host_addr && b.host_addr < buf.gm() + buf.len() as u64)
            .ok_or(Refused::Context(ContextError::NoSpace))?;
        buf.mem()
            .write_dwords((b.host_addr - buf.gm()) as usize, &b.data)
            .map_err(|_| Refused::Context(ContextError::NoSpace))?;
    }
    let shadow =
        Shadow::build(window, &guest, &scanned.ring, pml4_dev).map_err(Refused::Context)?;
    Ok(Prepared {
        guest,
        shadow,
        batches: placer.bufs,
        stats: scanned.stats,
    })
}

#[kunit_tests(gvtpv_host_workload)]
mod tests {
    use super::*;
    use crate::{
        abi::gtt::PTE_PRESENT,
        mm::{
            ggtt::{fake_gpu::FakeGpu, ENTRY},
            guest::{fake::FakeGuest, GuestMemory},
            partition::Slice,
        },
    };

    const AP: u64 = 64 << 20;
    const SLICE: Slice = Slice {
        id: 2,
        aperture_base: AP,
        aperture_size: 64 << 20,
        hidden_base: 2048 << 20,
        hidden_size: 128 << 20,
        fence_base: 0,
        fences: 4,
    };
    /// Guest frames: the image at 0..22, the ring (two pages) at 24 and 25.
    const RING_GM: u64 = AP + 32 * PAGE;

    struct Setup {
        guest: Arc<FakeGuest>,
        mem: Arc<GuestMemory<Arc<FakeGuest>>>,
        gpu: Arc<FakeGpu>,
        ggtt: Ggtt<Arc<FakeGuest>>,
    }

    fn bind(g: &mut Ggtt<Arc<FakeGuest>>, gm: u64, frame: u64) {
        g.write((gm / PAGE) as u32 * ENTRY, 8, (frame * PAGE) | PTE_PRESENT)
            .unwrap();
    }

    fn put(s: &Setup, addr: u64, v: u32) {
        s.mem.write(addr, &v.to_le_bytes()).unwrap();
    }

    /// A render context at `AP` with a two-page ring at `RING_GM`.
    fn setup(head: u32, tail: u32) -> Setup {
        let guest = FakeGuest::new(32).unwrap();
        let mem = Arc::pin_init(GuestMemory::new(256), GFP_KERNEL).unwrap();
        mem.attach(guest.clone());
        let gpu = FakeGpu::new().unwrap();
        let mut ggtt = Ggtt::new(gpu.clone(), mem.clone(), SLICE).unwrap();
        for i in 0..22 {
            bind(&mut ggtt, AP + i * PAGE, i);
        }
        bind(&mut ggtt, RING_GM, 24);
        bind(&mut ggtt, RING_GM + PAGE, 25);
        let s = Setup {
            guest,
            mem,
            gpu,
            ggtt,
        };
        let st = PAGE;
        put(&s, st + 4 * lrc::state::RING_START as u64, RING_GM as u32);
        put(&s, st + 4 * lrc::state::RING_CTL as u64, (1 << 12) | 1);
        put(&s, st + 4 * lrc::state::RING_HEAD as u64, (3 << 21) | head);
        put(&s, st + 4 * lrc::state::RING_TAIL as u64, tail);
        put(&s, st + 4 * lrc::state::PDP0_UDW as u64, 0x1);
        put(&s, st + 4 * lrc::state::PDP0_LDW as u64, 0x2345_6000);
        // Ring dwords hold their own offset in the ring, plus a marker.
        for off in (0..2 * PAGE).step_by(4) {
            put(&s, 24 * PAGE + off, 0xa000_0000 | off as u32);
        }
        s
    }

    const DESC: u64 = lrc::desc::make(AP as u32, 9);

    #[test]
    fn reads_the_image_and_copies_the_segment_with_wrap() {
        let s = setup(8192 - 8, 16);
        let c = GuestContext::read(&s.ggtt, Engine::Rcs, DESC, None).unwrap();
        assert_eq!((c.ring_start, c.ring_size), (RING_GM, 8192));
        assert_eq!((c.head, c.tail), (8184, 16));
        assert_eq!(c.pml4, 0x1_2345_6000);
        assert_eq!(c.segment_len(), 24);
        let seg = c.segment(&s.ggtt).unwrap();
        let want = [8184, 8188, 0, 4, 8, 12].map(|o| 0xa000_0000u32 | o);
        assert_eq!(&seg[..], &want[..]);
        // A queued workload of the same context gives the head instead.
        let c = GuestContext::read(&s.ggtt, Engine::Rcs, DESC, Some(8)).unwrap();
        assert_eq!(c.segment(&s.ggtt).unwrap().len(), 2);
        // Wrap count carried into the register copy's head.
        let c = GuestContext::read(&s.ggtt, Engine::Rcs, DESC, None).unwrap();
        assert_eq!(c.head_with_wrap(), (4 << 21) | 16);
    }

    #[test]
    fn bad_images_and_rings_are_refused() {
        let mut s = setup(0, 4096 + 8);
        // Outside the slices, or straddling the slice's start.
        let d = lrc::desc::make((AP - PAGE) as u32, 1);
        assert_eq!(
            GuestContext::read(&s.ggtt, Engine::Bcs, d, None).err(),
            Some(ContextError::Image)
        );
        // A render image straddling the slice's end (22 pages).
        let d = lrc::desc::make((AP + (64 << 20) - 8 * PAGE) as u32, 1);
        assert_eq!(
            GuestContext::read(&s.ggtt, Engine::Rcs, d, None).err(),
            Some(ContextError::Image)
        );
        // Head beyond the ring.
        assert_eq!(
            GuestContext::read(&s.ggtt, Engine::Rcs, DESC, Some(8192)).err(),
            Some(ContextError::Ring)
        );
        // A ring page that maps nothing.
        s.ggtt
            .write((RING_GM / PAGE + 1) as u32 * ENTRY, 8, 0)
            .unwrap();
        let c = GuestContext::read(&s.ggtt, Engine::Rcs, DESC, None).unwrap();
        assert_eq!(c.segment(&s.ggtt).err(), Some(ContextError::RingPage));
        // A ring outside the slices.
        put(
            &s,
            PAGE + 4 * lrc::state::RING_START as u64,
            (AP - 2 * PAGE) as u32,
        );
        assert_eq!(
            GuestContext::read(&s.ggtt, Engine::Rcs, DESC, None).err(),
            Some(ContextError::Ring)
        );
        // The state page's entry maps nothing.
        s.ggtt.write((AP / PAGE + 1) as u32 * ENTRY, 8, 0).unwrap();
        assert_eq!(
            GuestContext::read(&s.ggtt, Engine::Rcs, DESC, None).err(),
            Some(ContextError::Image)
        );
    }

    #[test]
    fn shadow_patches_ring_and_root_and_write_back_moves_the_head() {
        let s = setup(0, 24);
        let c = GuestContext::read(&s.ggtt, Engine::Bcs, DESC, None).unwrap();
        let seg = c.segment(&s.ggtt).unwrap();
        let w = HostGgtt::new(s.gpu.clone(), SLICE.id).unwrap();
        let sh = Shadow::build(&w, &c, &seg[..5], 0xdead_b000).unwrap();
        let st = |i: usize| sh.context.mem().load32(PAGE as usize + 4 * i).unwrap();
        assert_eq!(u64::from(st(lrc::state::RING_START)), sh.ring.gm());
        assert_eq!(st(lrc::state::RING_HEAD), 0);
        // Five dwords padded to six.
        assert_eq!(st(lrc::state::RING_TAIL), 24);
        assert_eq!(st(lrc::state::RING_CTL), 1);
        assert_eq!(st(lrc::state::PDP0_LDW), 0xdead_b000);
        assert_eq!(st(lrc::state::PDP0_UDW), 0);
        assert_eq!(sh.ring.mem().load32(16).unwrap(), 0xa000_0010);
        assert_eq!(sh.ring.mem().load32(20).unwrap(), 0);
        assert_eq!(lrc::desc::lrca(sh.desc), sh.context.gm() as u32);
        assert_eq!(lrc::desc::ctx_id(sh.desc), 9);
        c.write_back().unwrap();
        assert_eq!(s.guest.peek32(PAGE + 4 * lrc::state::RING_HEAD as u64), 24);
    }

    #[test]
    fn prepare_copies_batches_and_points_the_shadow_ring_at_them() {
        let mut s = setup(0, 16);
        let batch_gm = AP + 40 * PAGE;
        bind(&mut s.ggtt, batch_gm, 26);
        // Ring: MI_BATCH_BUFFER_START (GGTT) to the batch, MI_NOOP.
        let bb_start = (0x31 << 23) | 1;
        for (i, v) in [bb_start, batch_gm as u32, 0, 0].iter().enumerate() {
            put(&s, 24 * PAGE + 4 * i as u64, *v);
        }
        // Batch: MI_NOOP, MI_BATCH_BUFFER_END.
        put(&s, 26 * PAGE, 0);
        put(&s, 26 * PAGE + 4, 0x0a << 23);
        let w = HostGgtt::new(s.gpu.clone(), SLICE.id).unwrap();
        let c = GuestContext::read(&s.ggtt, Engine::Rcs, DESC, None).unwrap();
        let p = prepare(&s.ggtt, &w, &SLICE, c, None, 0x5000).unwrap();
        assert_eq!(p.batches.len(), 1);
        let copy = &p.batches[0];
        assert!(copy.gm() >= w.base());
        assert_eq!(copy.mem().load32(4).unwrap(), 0x0a << 23);
        let ring = p.shadow.ring.mem();
        assert_eq!(ring.load32(0).unwrap(), bb_start);
        assert_eq!(u64::from(ring.load32(4).unwrap()), copy.gm());
        assert_eq!(p.stats.batches, 1);

        // MI_LOAD_REGISTER_IMM of RING_TAIL in the ring: refused by the parser, and
        // nothing stays allocated.
        for (i, v) in [(0x22 << 23) | 1, 0x2030, 0, 0].iter().enumerate() {
            put(&s, 24 * PAGE + 4 * i as u64, *v);
        }
        drop(p);
        let free = w.free_pages();
        let c = GuestContext::read(&s.ggtt, Engine::Rcs, DESC, None).unwrap();
        let r = prepare(&s.ggtt, &w, &SLICE, c, None, 0x5000);
        assert!(matches!(
            r,
            Err(Refused::Parser(Refusal {
                reason: cmd_parser::Reason::Register,
                ..
            }))
        ));
        assert_eq!(w.free_pages(), free);
    }
}
