//! Tests of the sans-IO core: a fake clock, no sockets, no processes.

use std::collections::{BTreeMap, HashMap};

use mayfly_protocol::{CancelOutcome, Command, JobId, JobSpec, JobState, Timestamp};
use proptest::prelude::*;

use super::{Action, Core, CoreConfig, CoreError, Event, ExitOutcome, Signal, StopReason};

/// A spec for queue `queue` at priority `priority`.
fn spec(queue: &str, priority: u8) -> JobSpec {
    JobSpec {
        command: Command::Argv(vec!["true".into()]),
        cwd: "/".into(),
        env: vec![],
        queue: queue.into(),
        priority,
        labels: vec![],
    }
}

/// Decides and applies a submit; returns the new id.
fn submit(core: &mut Core, now: u64, queue: &str, priority: u8) -> JobId {
    let ev = core
        .decide_submit(Timestamp(now), spec(queue, priority))
        .unwrap();
    core.apply(&ev).unwrap();
    ev.job_id().unwrap()
}

/// Starts everything that may start; returns the ids in start order.
fn start_all(core: &mut Core, now: u64) -> Vec<JobId> {
    let mut started = vec![];
    while let Some(ev) = core.next_start(Timestamp(now)) {
        core.apply(&ev).unwrap();
        started.push(ev.job_id().unwrap());
    }
    started
}

/// Applies an exit with `code`.
fn exit(core: &mut Core, now: u64, id: JobId, code: i32) {
    core.apply(&Event::Exited {
        id,
        at: Timestamp(now),
        outcome: ExitOutcome::Code(code),
    })
    .unwrap();
}

/// A core with the given global limit.
fn core(concurrency: u32) -> Core {
    Core::new(CoreConfig {
        concurrency,
        ..CoreConfig::default()
    })
}

#[test]
fn ids_start_at_one_and_grow() {
    let mut c = core(1);
    assert_eq!(submit(&mut c, 0, "default", 50), JobId(1));
    assert_eq!(submit(&mut c, 0, "default", 50), JobId(2));
    assert_eq!(c.scheduler_info().next_job_id, 3);
}

#[test]
fn lower_priority_number_runs_first_fifo_among_equals() {
    let mut c = core(1);
    let a = submit(&mut c, 0, "default", 50);
    let b = submit(&mut c, 0, "default", 10);
    let d = submit(&mut c, 0, "default", 50);
    let e = submit(&mut c, 0, "default", 10);
    let mut order = vec![];
    for t in 1..=4 {
        let started = start_all(&mut c, t);
        assert_eq!(started.len(), 1, "global limit 1");
        order.push(started[0]);
        exit(&mut c, t, started[0], 0);
    }
    assert_eq!(order, vec![b, e, a, d]);
}

#[test]
fn priority_bounds_are_enforced() {
    let c = core(1);
    for p in [0, 100, 255] {
        let err = c
            .decide_submit(Timestamp(0), spec("default", p))
            .unwrap_err();
        assert!(matches!(err, CoreError::BadRequest(_)), "{p}: {err:?}");
    }
    for p in [1, 50, 99] {
        assert!(c.decide_submit(Timestamp(0), spec("default", p)).is_ok());
    }
}

#[test]
fn empty_command_and_relative_cwd_are_refused() {
    let c = core(1);
    let mut s = spec("default", 50);
    s.command = Command::Argv(vec![]);
    assert!(c.decide_submit(Timestamp(0), s).is_err());
    let mut s = spec("default", 50);
    s.command = Command::Shell("  ".into());
    assert!(c.decide_submit(Timestamp(0), s).is_err());
    let mut s = spec("default", 50);
    s.cwd = "relative".into();
    assert!(c.decide_submit(Timestamp(0), s).is_err());
}

#[test]
fn queue_limit_holds_and_a_full_queue_does_not_block_others() {
    let mut c = core(4);
    c.apply(&Event::QueueConfigured {
        name: "slow".into(),
        concurrency: Some(1),
    })
    .unwrap();
    let s1 = submit(&mut c, 0, "slow", 1);
    let _s2 = submit(&mut c, 0, "slow", 1);
    let f1 = submit(&mut c, 0, "fast", 90);
    let f2 = submit(&mut c, 0, "fast", 90);
    let started = start_all(&mut c, 1);
    assert_eq!(started, vec![s1, f1, f2]);
    assert_eq!(c.running_count(), 3);
}

#[test]
fn spawn_action_follows_start_and_exit_frees_the_slot() {
    let mut c = core(1);
    let a = submit(&mut c, 0, "default", 50);
    let b = submit(&mut c, 0, "default", 50);
    assert_eq!(start_all(&mut c, 1), vec![a]);
    assert_eq!(c.poll_action(), Some(Action::Spawn { id: a, attempt: 1 }));
    assert_eq!(c.poll_action(), None);
    assert!(c.next_start(Timestamp(2)).is_none());
    exit(&mut c, 2, a, 3);
    assert_eq!(c.state_of(a), Some(JobState::Failed));
    assert_eq!(c.job_info(a).unwrap().exit_code, Some(3));
    assert_eq!(start_all(&mut c, 3), vec![b]);
}

#[test]
fn cancel_queued_running_finished_and_unknown() {
    let mut c = core(1);
    let run = submit(&mut c, 0, "default", 50);
    let queued = submit(&mut c, 0, "default", 50);
    start_all(&mut c, 1);
    c.poll_action();

    let (out, ev) = c.decide_cancel(Timestamp(2), queued);
    assert_eq!(out, CancelOutcome::Cancelled);
    c.apply(&ev.unwrap()).unwrap();
    assert_eq!(c.state_of(queued), Some(JobState::Cancelled));

    let (out, ev) = c.decide_cancel(Timestamp(3), run);
    assert_eq!(out, CancelOutcome::Signalled);
    c.apply(&ev.unwrap()).unwrap();
    assert_eq!(
        c.poll_action(),
        Some(Action::Signal {
            id: run,
            signal: Signal::Term
        })
    );
    // A second cancel does not signal again.
    assert_eq!(
        c.decide_cancel(Timestamp(3), run),
        (CancelOutcome::Signalled, None)
    );
    // SIGKILL after the grace period.
    let deadline = c.next_deadline().unwrap();
    assert_eq!(deadline, Timestamp(3 + c.config().kill_grace_ms));
    c.on_timer(Timestamp(deadline.0 - 1));
    assert_eq!(c.poll_action(), None);
    c.on_timer(deadline);
    assert_eq!(
        c.poll_action(),
        Some(Action::Signal {
            id: run,
            signal: Signal::Kill
        })
    );
    c.apply(&Event::Exited {
        id: run,
        at: deadline,
        outcome: ExitOutcome::Signal(9),
    })
    .unwrap();
    assert_eq!(c.state_of(run), Some(JobState::Cancelled));
    assert_eq!(c.next_deadline(), None);

    assert_eq!(
        c.decide_cancel(Timestamp(9), run).0,
        CancelOutcome::AlreadyEnded(JobState::Cancelled)
    );
    assert_eq!(
        c.decide_cancel(Timestamp(9), JobId(99)).0,
        CancelOutcome::NotFound
    );
}

#[test]
fn shutdown_stops_running_jobs_refuses_submits_and_starts_nothing() {
    let mut c = core(1);
    let run = submit(&mut c, 0, "default", 50);
    let queued = submit(&mut c, 0, "default", 50);
    start_all(&mut c, 1);
    let evs = c.begin_shutdown(Timestamp(2), 1000);
    assert_eq!(evs.len(), 1);
    for ev in &evs {
        c.apply(ev).unwrap();
    }
    assert!(c.next_start(Timestamp(3)).is_none());
    assert_eq!(
        c.decide_submit(Timestamp(3), spec("default", 50)),
        Err(CoreError::ShuttingDown)
    );
    assert_eq!(c.next_deadline(), Some(Timestamp(1002)));
    exit(&mut c, 4, run, 143);
    assert_eq!(c.state_of(run), Some(JobState::Interrupted));
    assert_eq!(
        c.state_of(queued),
        Some(JobState::Queued),
        "queued jobs stay for the next start"
    );
}

#[test]
fn spawn_failure_is_a_failed_job_with_a_reason() {
    let mut c = core(1);
    let a = submit(&mut c, 0, "default", 50);
    start_all(&mut c, 1);
    c.apply(&Event::Exited {
        id: a,
        at: Timestamp(2),
        outcome: ExitOutcome::SpawnFailed("No such file or directory".into()),
    })
    .unwrap();
    let info = c.job_info(a).unwrap();
    assert_eq!(info.state, JobState::Failed);
    assert!(info.reason.unwrap().contains("No such file"));
}

#[test]
fn replay_reproduces_state_and_recovery_interrupts_running_jobs() {
    let mut live = core(2);
    let mut log = vec![];
    let record = |c: &mut Core, ev: Event, log: &mut Vec<Event>| {
        c.apply(&ev).unwrap();
        log.push(ev);
    };
    for p in [50, 20, 70] {
        let ev = live
            .decide_submit(Timestamp(1), spec("default", p))
            .unwrap();
        record(&mut live, ev, &mut log);
    }
    while let Some(ev) = live.next_start(Timestamp(2)) {
        record(&mut live, ev, &mut log);
    }
    let ev = Event::Exited {
        id: JobId(2),
        at: Timestamp(3),
        outcome: ExitOutcome::Code(0),
    };
    record(&mut live, ev, &mut log);

    let mut replayed = core(2);
    for ev in &log {
        replayed.apply(ev).unwrap();
    }
    let infos = |c: &Core| {
        c.job_ids()
            .map(|id| c.job_info(id).unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(infos(&live), infos(&replayed));
    assert_eq!(live.queue_infos(), replayed.queue_infos());
    assert_eq!(live.scheduler_info(), replayed.scheduler_info());

    let rec = replayed.recovery_events(Timestamp(9));
    assert_eq!(
        rec,
        vec![Event::Interrupted {
            id: JobId(1),
            at: Timestamp(9)
        }]
    );
    for ev in &rec {
        replayed.apply(ev).unwrap();
    }
    assert_eq!(replayed.state_of(JobId(1)), Some(JobState::Interrupted));
    assert_eq!(replayed.running_count(), 0);
    // Ids continue after a replay.
    assert_eq!(
        replayed
            .decide_submit(Timestamp(9), spec("default", 50))
            .unwrap()
            .job_id(),
        Some(JobId(4))
    );
}

#[test]
fn inconsistent_events_are_errors_not_panics() {
    let mut c = core(1);
    assert!(
        c.apply(&Event::Started {
            id: JobId(5),
            at: Timestamp(0)
        })
        .is_err()
    );
    let a = submit(&mut c, 0, "default", 50);
    assert!(
        c.apply(&Event::Exited {
            id: a,
            at: Timestamp(0),
            outcome: ExitOutcome::Code(0)
        })
        .is_err()
    );
    assert!(
        c.apply(&Event::Submitted {
            id: a,
            at: Timestamp(0),
            spec: spec("default", 1)
        })
        .is_err()
    );
    assert!(
        c.apply(&Event::StopRequested {
            id: a,
            at: Timestamp(0),
            reason: StopReason::Cancel,
            grace_ms: 1
        })
        .is_err()
    );
}

#[test]
fn system_tasks_are_listed_at_priority_zero() {
    let mut c = core(1);
    c.system_started("looptask_test", Timestamp(5));
    let tasks = c.system_infos();
    assert_eq!(tasks.len(), 1);
    assert_eq!((tasks[0].priority, tasks[0].state.as_str()), (0, "running"));
    c.system_exited("looptask_test", true);
    assert_eq!(c.system_infos()[0].state, "exited");
}

/// One step of a random scenario.
#[derive(Debug, Clone)]
enum Op {
    /// Submit to queue index `q` at priority `p`.
    Submit { q: usize, p: u8 },
    /// Cancel the job with this index into the ids submitted so far.
    Cancel(usize),
    /// The `n`-th running job exits with `code`.
    Exit { n: usize, code: i32 },
    /// Time passes by this many ms (timers fire).
    Tick(u64),
    /// Start everything that may start.
    Schedule,
}

/// Strategy for one op.
fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0usize..3, 1u8..=99).prop_map(|(q, p)| Op::Submit { q, p: p % 5 * 20 + 1 }),
        1 => any::<usize>().prop_map(Op::Cancel),
        3 => (any::<usize>(), 0i32..3).prop_map(|(n, code)| Op::Exit { n, code }),
        1 => (0u64..10_000).prop_map(Op::Tick),
        3 => Just(Op::Schedule),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The core's invariants hold over random command sequences.
    #[test]
    fn invariants_hold(global in 1u32..4, limits in prop::collection::vec(prop::option::of(1u32..3), 3), ops in prop::collection::vec(op(), 1..120)) {
        let queues = ["default", "q1", "q2"];
        let mut c = core(global);
        for (name, limit) in queues.iter().zip(&limits) {
            c.apply(&Event::QueueConfigured { name: (*name).into(), concurrency: *limit }).unwrap();
        }
        let mut now = 0u64;
        let mut ids: Vec<JobId> = vec![];
        let mut terminal: HashMap<JobId, JobState> = HashMap::new();
        let mut started_order: BTreeMap<(usize, u8), Vec<JobId>> = BTreeMap::new();

        for op in ops {
            match op {
                Op::Submit { q, p } => {
                    let ev = c.decide_submit(Timestamp(now), spec(queues[q], p)).unwrap();
                    c.apply(&ev).unwrap();
                    ids.push(ev.job_id().unwrap());
                }
                Op::Cancel(i) if !ids.is_empty() => {
                    let id = ids[i % ids.len()];
                    if let (_, Some(ev)) = c.decide_cancel(Timestamp(now), id) {
                        c.apply(&ev).unwrap();
                    }
                }
                Op::Cancel(_) => {}
                Op::Exit { n, code } => {
                    let running: Vec<JobId> = c.job_ids().filter(|&id| c.state_of(id) == Some(JobState::Running)).collect();
                    if !running.is_empty() {
                        exit(&mut c, now, running[n % running.len()], code);
                    }
                }
                Op::Tick(ms) => { now += ms; c.on_timer(Timestamp(now)); }
                Op::Schedule => {
                    while let Some(ev) = c.next_start(Timestamp(now)) {
                        let id = ev.job_id().unwrap();
                        let info = c.job_info(id).unwrap();
                        // Nothing better is queued in a queue that has room.
                        for other in c.job_ids() {
                            let o = c.job_info(other).unwrap();
                            if o.state != JobState::Queued || other == id { continue; }
                            let qi = c.queue_infos().into_iter().find(|q| q.name == o.queue).unwrap();
                            let room = !qi.paused && qi.concurrency.is_none_or(|l| qi.counts.running < u64::from(l));
                            if room {
                                prop_assert!((info.priority, id) < (o.priority, other),
                                    "started {id} (pri {}) while {other} (pri {}) had room", info.priority, o.priority);
                            }
                        }
                        c.apply(&ev).unwrap();
                        let qidx = queues.iter().position(|q| *q == info.queue).unwrap();
                        started_order.entry((qidx, info.priority)).or_default().push(id);
                    }
                }
            }
            // Limits are never exceeded.
            prop_assert!(c.running_count() <= global);
            for (qi, limit) in c.queue_infos().iter().zip(&limits) {
                if let Some(l) = limit {
                    prop_assert!(qi.counts.running <= u64::from(*l), "queue {} runs {} > {l}", qi.name, qi.counts.running);
                }
            }
            let total_running: u64 = c.queue_infos().iter().map(|q| q.counts.running).sum();
            prop_assert_eq!(total_running, u64::from(c.running_count()));
            // A terminal state never changes.
            for &id in &ids {
                let st = c.state_of(id).unwrap();
                if let Some(prev) = terminal.get(&id) {
                    prop_assert_eq!(*prev, st, "job {} left its terminal state", id);
                } else if st.is_terminal() {
                    terminal.insert(id, st);
                }
            }
            while let Some(a) = c.poll_action() {
                if let Action::Spawn { id, .. } = a { c.note_pid(id, 1000 + id.0 as u32); }
            }
        }
        // FIFO among equals: within a queue and priority, start order is id order.
        for starts in started_order.values() {
            let mut sorted = starts.clone();
            sorted.sort();
            prop_assert_eq!(starts, &sorted);
        }
        // Every job is in exactly one state and counts add up.
        let counted: u64 = c.queue_infos().iter().map(|q| JobState::ALL.iter().map(|s| q.counts.get(*s)).sum::<u64>()).sum();
        prop_assert_eq!(counted, ids.len() as u64);
        // Drain: finish everything; every job ends terminal exactly once.
        let mut guard = 0;
        loop {
            guard += 1;
            prop_assert!(guard < 10_000);
            while let Some(ev) = c.next_start(Timestamp(now)) { c.apply(&ev).unwrap(); }
            let running: Vec<JobId> = c.job_ids().filter(|&id| c.state_of(id) == Some(JobState::Running)).collect();
            if running.is_empty() { break; }
            for id in running { exit(&mut c, now, id, 0); }
        }
        for &id in &ids {
            let st = c.state_of(id).unwrap();
            prop_assert!(st.is_terminal(), "job {} ended {}", id, st);
            if let Some(prev) = terminal.get(&id) { prop_assert_eq!(*prev, st); }
        }
        prop_assert_eq!(c.scheduler_info().jobs_finished, ids.len() as u64);
    }
}

#[test]
fn snapshot_restores_the_same_state() {
    let mut c = core(2);
    c.apply(&Event::QueueConfigured {
        name: "q".into(),
        concurrency: Some(1),
    })
    .unwrap();
    let a = submit(&mut c, 1, "q", 5);
    let _b = submit(&mut c, 1, "q", 5);
    let d = submit(&mut c, 1, "default", 50);
    start_all(&mut c, 2);
    exit(&mut c, 3, d, 0);
    let (_, ev) = c.decide_cancel(Timestamp(4), a);
    c.apply(&ev.unwrap()).unwrap();

    let restored = Core::from_snapshot(c.config().clone(), c.snapshot()).unwrap();
    let infos = |c: &Core| {
        c.job_ids()
            .map(|id| {
                c.job_info(id).map(|mut i| {
                    i.pid = None;
                    i
                })
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(infos(&c), infos(&restored));
    assert_eq!(c.queue_infos(), restored.queue_infos());
    assert_eq!(c.scheduler_info(), restored.scheduler_info());
    assert_eq!(c.running_count(), restored.running_count());
    // The cancel in flight survives: the exit ends the job cancelled.
    let mut restored = restored;
    exit(&mut restored, 5, a, 143);
    assert_eq!(restored.state_of(a), Some(JobState::Cancelled));
    // And scheduling continues identically.
    assert_eq!(start_all(&mut restored, 6), vec![JobId(2)]);
}
