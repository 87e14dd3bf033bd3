//! The write-ahead log (`mayflyd::wal::Wal`) in a temp dir:
//!
//! * `append_sync/N`: N appends of a ~150-byte record (the size of a
//!   trivial submit) and one `sync` (write + fdatasync): group commit of N.
//!   With N = 1 this is the durable cost of one unpipelined submit; it
//!   follows the disk.
//! * `append_only`: one append to the in-memory batch (no I/O).
//! * `replay/N`: `Wal::open` of a log holding N records (no snapshot),
//!   records handed to a counting callback: the read + check half of a
//!   restart.
#![allow(missing_docs, clippy::missing_docs_in_private_items)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use mayflyd::wal::{Wal, WalOptions};

fn record() -> Vec<u8> {
    // A real submit payload, so the size is representative.
    let frame = mayfly_bench::submit_frame().expect("encode");
    frame[4..].to_vec()
}

fn open(dir: &std::path::Path) -> Wal {
    Wal::open(
        dir,
        WalOptions::default(),
        |_, _| -> Result<(), std::io::Error> { Ok(()) },
        |_| Ok(()),
    )
    .expect("open wal")
    .0
}

fn bench_wal(c: &mut Criterion) {
    let rec = record();
    let mut g = c.benchmark_group("wal");
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(3));

    let tmp = tempfile::tempdir().expect("tempdir");
    {
        let mut wal = open(&tmp.path().join("append-only"));
        g.bench_function("append_only", |b| {
            b.iter(|| {
                wal.append(black_box(&rec)).expect("append");
                if wal.pending_records() >= 4096 {
                    // Keep the buffer bounded (not timed separately; rare).
                    wal.sync().expect("sync");
                }
            })
        });
    }
    for batch in [1u64, 64] {
        let mut wal = open(&tmp.path().join(format!("sync-{batch}")));
        g.throughput(Throughput::Elements(batch));
        g.bench_with_input(BenchmarkId::new("append_sync", batch), &batch, |b, &n| {
            b.iter(|| {
                for _ in 0..n {
                    wal.append(&rec).expect("append");
                }
                wal.sync().expect("sync")
            })
        });
    }
    for n in [10_000u64, 100_000] {
        let dir = tmp.path().join(format!("replay-{n}"));
        {
            let mut wal = open(&dir);
            for i in 0..n {
                wal.append(&rec).expect("append");
                if i % 4096 == 4095 {
                    wal.sync().expect("sync");
                }
            }
            wal.sync().expect("sync");
        }
        g.throughput(Throughput::Elements(n));
        g.bench_with_input(BenchmarkId::new("replay", n), &n, |b, &n| {
            b.iter_batched(
                || (),
                |()| {
                    let mut seen = 0u64;
                    let (wal, rec) = Wal::open(
                        &dir,
                        WalOptions::default(),
                        |_, _| -> Result<(), std::io::Error> { Ok(()) },
                        |_| {
                            seen += 1;
                            Ok(())
                        },
                    )
                    .expect("replay");
                    assert_eq!(seen, n);
                    drop(wal);
                    rec
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, bench_wal);
criterion_main!(benches);
