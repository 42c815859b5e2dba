// SPDX-License-Identifier: GPL-2.0

//! The host's path over guest-controlled bytes: a shared-area header, a request
//! channel's descriptor and ring, and the commands in it.

#![no_main]

use gvtpv_abi::abi::{cmd, ctb, shared};
use libfuzzer_sys::fuzz_target;
use zerocopy::FromBytes;

fuzz_target!(|data: &[u8]| {
    // The first 160 bytes as a shared-area header (validated against a 4 KiB area).
    if let Ok((h, _)) = shared::SharedHeader::read_from_prefix(data) {
        let _ = shared::validate(&h, 4096);
        let _ = shared::negotiate_version(h.major.get(), h.minor.get());
    }
    // Then a descriptor (head, tail, status) and a ring of 64..=1024 dwords.
    let Some((desc, rest)) = data.split_at_checked(12) else {
        return;
    };
    let w = |i: usize| u32::from_le_bytes(desc[i * 4..i * 4 + 4].try_into().unwrap());
    let mut words: Vec<u32> = rest
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let n = (words.len().clamp(64, 1024)) & !1;
    words.resize(n, 0);
    let mut r = ctb::SliceRing::new(&mut words);
    (r.head, r.tail, r.status) = (w(0), w(1), w(2));
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
