// SPDX-License-Identifier: GPL-2.0

//! The host's path over guest-controlled bytes: a shared-area header, a request
//! channel's descriptor and ring, and the commands in it.

#![no_main]

use gvtpv_abi::abi::{cmd, ctb, shared};
use libfuzzer_sys::fuzz_target;
use zerocopy::FromBytes;

struct Ring {
    ring: Vec<u32>,
    head: u32,
    tail: u32,
    event: u32,
    status: u32,
}

impl ctb::RingMem for Ring {
    fn size(&self) -> u32 {
        self.ring.len() as u32
    }
    fn read(&self, idx: u32) -> u32 {
        // The consumer only reads below `size`; a read past it would be a bug: panic.
        self.ring[idx as usize]
    }
    fn write(&mut self, idx: u32, v: u32) {
        self.ring[idx as usize] = v;
    }
    fn head(&self) -> u32 {
        self.head
    }
    fn set_head(&mut self, v: u32) {
        self.head = v;
    }
    fn tail(&self) -> u32 {
        self.tail
    }
    fn set_tail(&mut self, v: u32) {
        self.tail = v;
    }
    fn event(&self) -> u32 {
        self.event
    }
    fn set_event(&mut self, v: u32) {
        self.event = v;
    }
    fn status(&self) -> u32 {
        self.status
    }
    fn set_status(&mut self, bits: u32) {
        self.status |= bits;
    }
    fn fence(&self) {}
}

fuzz_target!(|data: &[u8]| {
    // The first 160 bytes as a shared-area header (validated against a 4 KiB area).
    if let Ok((h, _)) = shared::SharedHeader::read_from_prefix(data) {
        let _ = shared::validate(&h, 4096);
        let _ = shared::negotiate_version(h.major.get(), h.minor.get());
    }
    // Then a descriptor (head, tail, status) and a ring of 64..=1024 dwords.
    let Some((desc, rest)) = data.split_at_checked(12) else { return };
    let w = |i: usize| u32::from_le_bytes(desc[i * 4..i * 4 + 4].try_into().unwrap());
    let mut words: Vec<u32> = rest.chunks_exact(4).map(|c| u32::from_le_bytes(c.try_into().unwrap())).collect();
    let n = (words.len().clamp(64, 1024)) & !1;
    words.resize(n, 0);
    let mut r = Ring { ring: words, head: w(0), tail: w(1), event: 0, status: w(2) };
    let mut out = [0u32; ctb::MAX_PAYLOAD as usize];
    for _ in 0..64 {
        match ctb::recv(&mut r, &mut out) {
            Ok(Some(hdr)) => {
                assert!(usize::from(hdr.len) <= out.len());
                let payload = &out[..usize::from(hdr.len)];
                if let Ok(c) = cmd::Command::decode(hdr.action, payload) {
                    // What decodes must re-encode to the same dwords.
                    let mut again = [0u32; 140];
                    let k = c.encode(&mut again).expect("decoded command re-encodes");
                    assert_eq!(&again[..k], payload);
                }
            }
            Ok(None) | Err(_) => break,
        }
    }
});
