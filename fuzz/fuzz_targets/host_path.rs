// SPDX-License-Identifier: GPL-2.0

//! The host's path over guest-controlled bytes: a shared-area header (one negotiation),
//! a request channel's descriptor and ring, the commands in it, the batch commands a
//! SUBMIT would name, and the response channel the guest drains (or not).

#![no_main]

use gvtpv_abi::abi::{cmd, ctb, events, gpu_cmd, shared};
use libfuzzer_sys::fuzz_target;
use zerocopy::FromBytes;

/// Guest memory that the guest can unmap under the host: every access after `fail_at`
/// faults.
struct Guest<'a> {
    r: ctb::SliceRing<'a>,
    accesses: std::cell::Cell<u32>,
    fail_at: u32,
}

impl Guest<'_> {
    fn tick(&self) -> Result<(), ctb::MemFault> {
        let n = self.accesses.get();
        self.accesses.set(n.saturating_add(1));
        if n >= self.fail_at {
            return Err(ctb::MemFault);
        }
        Ok(())
    }
}

impl ctb::RingMem for Guest<'_> {
    fn read(&self, idx: u32) -> Result<u32, ctb::MemFault> {
        self.tick()?;
        self.r.read(idx)
    }
    fn write(&mut self, idx: u32, v: u32) -> Result<(), ctb::MemFault> {
        self.tick()?;
        self.r.write(idx, v)
    }
    fn load(&self, f: ctb::Field) -> Result<u32, ctb::MemFault> {
        self.tick()?;
        self.r.load(f)
    }
    fn store(&mut self, f: ctb::Field, v: u32) -> Result<(), ctb::MemFault> {
        self.tick()?;
        self.r.store(f, v)
    }
    fn set_status(&mut self, bits: u32) -> Result<(), ctb::MemFault> {
        self.tick()?;
        self.r.set_status(bits)
    }
    fn fence(&self) {}
}

fuzz_target!(|data: &[u8]| {
    // The first 160 bytes as a shared-area header (negotiated against a 4 KiB area).
    if let Ok((h, _)) = shared::SharedHeader::read_from_prefix(data) {
        let req = h.features.get();
        if let Ok(n) = shared::negotiate(&h, 4096, 0x7, req) {
            assert!(n.caps & !req == 0);
            assert!(ctb::check_ring(n.layout.request.1).is_ok());
        }
    }
    // Then a descriptor (tail, status, fault point) and a ring of 256..=1024 dwords.
    let Some((desc, rest)) = data.split_at_checked(12) else {
        return;
    };
    let w = |i: usize| u32::from_le_bytes(desc[i * 4..i * 4 + 4].try_into().unwrap());
    let mut words: Vec<u32> = rest
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let n = (words.len().clamp(256, 1024)) & !1;
    words.resize(n, 0);
    let fail_at = if w(2) & 1 == 0 { u32::MAX } else { w(2) >> 1 & 0x3ff };
    let mut g = Guest {
        r: ctb::SliceRing::new(&mut words),
        accesses: Default::default(),
        fail_at,
    };
    (g.r.tail, g.r.status) = (w(0), w(1) & !ctb::STATUS_ERROR_MASK);
    let mut c = ctb::Consumer::new(n as u32).unwrap();
    let mut q = events::EventQueue::new();
    let mut out = [0u32; ctb::MAX_PAYLOAD as usize];
    for _ in 0..64 {
        match c.recv(&mut g, &mut out) {
            Ok(Some(hdr)) => {
                assert!(usize::from(hdr.len) <= out.len());
                let payload = &out[..usize::from(hdr.len)];
                if let Ok(c) = cmd::Command::decode(hdr.action, payload) {
                    // What decodes must re-encode to the same dwords.
                    let mut again = [0u32; 140];
                    let k = c.encode(&mut again).expect("decoded command re-encodes");
                    assert_eq!(&again[..k], payload);
                    if let cmd::Command::Submit { engine, seqno, .. } = c {
                        q.completion(engine, seqno);
                    }
                }
                // The payload as batch commands: lengths from the one table.
                let mut at = 0;
                while let Some(rest) = payload.get(at..).filter(|r| !r.is_empty()) {
                    match gpu_cmd::GpuCmd::decode(rest) {
                        Ok((_, k)) => at += k,
                        Err(gpu_cmd::GpuCmdError::Unsupported(_, k)) => at += k as usize,
                        Err(_) => break,
                    }
                }
            }
            Ok(None) | Err(_) => break,
        }
    }
    // A fault or a corruption is for good.
    if let Some(e) = c.error() {
        assert_eq!(c.recv(&mut g, &mut out), Err(e));
    }
    // The response ring: the same memory as the guest left it, events flushed into it.
    let mut p = ctb::Producer::new(n as u32).unwrap();
    q.vgpu_error(14);
    let _ = q.flush(&mut p, &mut g, 32);
});
