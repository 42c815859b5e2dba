// SPDX-License-Identifier: GPL-2.0

//! `make bench-abi`: CTB push+pop throughput and bind encode/decode cost.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use gvtpv_abi::abi::{cmd, ctb};
use std::hint::black_box;

fn ring(c: &mut Criterion) {
    let mut buf = vec![0u32; 4096];
    let mut r = ctb::SliceRing::new(&mut buf);
    let mut p = ctb::Producer::new(4096).unwrap();
    let mut cons = ctb::Consumer::new(4096).unwrap();
    let hdr = ctb::Header {
        action: 1,
        kind: ctb::msg_type::FAST_REQUEST as u8,
        len: 2,
        fence: 0,
    };
    let mut out = [0u32; 8];
    let mut g = c.benchmark_group("ctb");
    g.throughput(Throughput::Elements(1));
    g.bench_function("push_pop_2dw", |b| {
        b.iter(|| {
            // The fence a shared ring pays on every send.
            std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
            p.send(&mut r, black_box(&hdr), black_box(&[1, 2])).unwrap();
            black_box(cons.recv(&mut r, &mut out).unwrap());
        })
    });
    g.finish();
}

fn binds(c: &mut Criterion) {
    let list: Vec<u8> = (1..=512u64).flat_map(|i| (i << 12).to_le_bytes()).collect();
    let mut g = c.benchmark_group("bind");
    g.throughput(Throughput::Elements(512));
    g.bench_function("ggtt_512_byref_encode_decode_check", |b| {
        let mut buf = [0u32; 16];
        b.iter(|| {
            let c = cmd::Command::BindGgtt {
                flags: 1,
                start: 0x800_0000,
                count: 512,
                pages: cmd::Pages::ByRef(0x10_0000),
            };
            let n = c.encode(&mut buf).unwrap();
            let d = cmd::Command::decode(cmd::action::BIND_GGTT, black_box(&buf[..n])).unwrap();
            cmd::check_page_list(black_box(&list), 512).unwrap();
            black_box(d);
        })
    });
    let inline: Vec<u32> = (1..=56u32).flat_map(|i| [i << 12, 0]).collect();
    g.throughput(Throughput::Elements(56));
    g.bench_function("ppgtt_56_inline_encode_decode", |b| {
        let mut buf = [0u32; 128];
        b.iter(|| {
            let c = cmd::Command::BindPpgtt {
                vm: 1,
                flags: 1,
                start: 0x10_0000,
                count: 56,
                pages: cmd::Pages::Inline(&inline),
            };
            let n = c.encode(&mut buf).unwrap();
            black_box(cmd::Command::decode(cmd::action::BIND_PPGTT, black_box(&buf[..n])).unwrap());
        })
    });
    g.finish();
}

criterion_group!(benches, ring, binds);
criterion_main!(benches);
