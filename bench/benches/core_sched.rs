//! The scheduler core's hot path at 0, 10,000 and 100,000 jobs held
//! (queued behind one running job in a one-slot core, so nothing drains):
//!
//! * `submit`: `Core::decide_submit` + `Core::apply` of the `Submitted`
//!   event. Each timed submit is undone untimed (`Cancelled` + `Removed`),
//!   so the depth stays what the benchmark's name says.
//! * `next_start`: `Core::next_start` when a slot is free (a fresh core
//!   with concurrency 2, one running; at 0 held nothing can start, so it
//!   returns `None` after scanning the queues).
//! * `next_start_full`: the same with no free slot (the early return).
#![allow(missing_docs, clippy::missing_docs_in_private_items)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use mayfly_protocol::Timestamp;
use mayflyd::core::{Core, CoreConfig, Event};

const DEPTHS: [usize; 3] = [0, 10_000, 100_000];

/// A core with `concurrency` slots, one job running, and `held` more queued.
fn core_with(concurrency: u32, held: usize) -> Core {
    let mut core = Core::new(CoreConfig {
        concurrency,
        ..CoreConfig::default()
    });
    let now = Timestamp(1_700_000_000_000);
    let blocker = core
        .decide_submit(now, mayfly_bench::trivial_spec())
        .expect("submit");
    core.apply(&blocker).expect("apply");
    let started = core.next_start(now).expect("a slot is free");
    core.apply(&started).expect("start");
    while core.poll_action().is_some() {}
    for _ in 0..held {
        let ev = core
            .decide_submit(now, mayfly_bench::trivial_spec())
            .expect("submit");
        core.apply(&ev).expect("apply");
    }
    core.take_transitions();
    core
}

fn bench_core(c: &mut Criterion) {
    let mut g = c.benchmark_group("core");
    g.sample_size(30);
    g.measurement_time(Duration::from_secs(3));
    for held in DEPTHS {
        let mut core = core_with(1, held);
        let spec = mayfly_bench::trivial_spec();
        let now = Timestamp(1_700_000_001_000);
        g.bench_with_input(BenchmarkId::new("submit", held), &held, |b, _| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let spec = spec.clone();
                    let t0 = Instant::now();
                    let ev = core.decide_submit(now, spec).expect("submit");
                    core.apply(&ev).expect("apply");
                    total += t0.elapsed();
                    // Undo, untimed: keep the depth constant.
                    let id = ev.job_id().expect("submitted has an id");
                    core.apply(&Event::Cancelled { id, at: now })
                        .expect("cancel");
                    core.apply(&Event::Removed { ids: vec![id] })
                        .expect("remove");
                    while core.poll_action().is_some() {}
                    core.take_transitions();
                }
                total
            })
        });
        let full = core;
        g.bench_with_input(BenchmarkId::new("next_start_full", held), &held, |b, _| {
            b.iter(|| full.next_start(black_box(now)))
        });
        drop(full);
        let free = core_with(2, held);
        g.bench_with_input(BenchmarkId::new("next_start", held), &held, |b, _| {
            b.iter(|| free.next_start(black_box(now)))
        });
    }
    g.finish();
}

criterion_group!(benches, bench_core);
criterion_main!(benches);
