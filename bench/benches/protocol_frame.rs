//! Encode and decode of the submit frame `mayflyctl` sends (the trivial job
//! of `mayfly-load`, and the same job with a ~1.3 KB environment like a
//! desktop `mayflyctl submit` captures): `encode_frame`, `read_frame` from a
//! byte slice, and `decode_payload` of the payload alone.
#![allow(missing_docs, clippy::missing_docs_in_private_items)]

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use mayfly_protocol::{Request, SubmitRequest, decode_payload, encode_frame, read_frame};

fn bench_frames(c: &mut Criterion) {
    for (name, pad) in [("trivial", 0usize), ("env_1300b", 1300)] {
        let spec = mayfly_bench::padded_spec(pad);
        let req = Request::Submit(SubmitRequest { spec });
        let frame = encode_frame(&req).expect("encode");
        let payload = frame[4..].to_vec();
        let mut g = c.benchmark_group(format!("submit_frame/{name}"));
        g.throughput(Throughput::Bytes(frame.len() as u64));
        g.bench_function("encode_frame", |b| {
            b.iter(|| encode_frame(black_box(&req)).expect("encode"))
        });
        g.bench_function("read_frame", |b| {
            b.iter(|| {
                let mut r: &[u8] = black_box(&frame);
                read_frame::<Request>(&mut r)
                    .expect("read")
                    .expect("one frame")
            })
        });
        g.bench_function("decode_payload", |b| {
            b.iter(|| decode_payload::<Request>(black_box(&payload)).expect("decode"))
        });
        g.bench_function("encode_then_decode", |b| {
            b.iter_batched(
                || req.clone(),
                |r| {
                    let f = encode_frame(&r).expect("encode");
                    decode_payload::<Request>(&f[4..]).expect("decode")
                },
                BatchSize::SmallInput,
            )
        });
        g.finish();
    }
}

criterion_group!(benches, bench_frames);
criterion_main!(benches);
