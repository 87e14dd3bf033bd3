//! Tests of the sans-IO core: a fake clock, no sockets, no processes.

use std::collections::{BTreeMap, HashMap};

use mayfly_protocol::{CancelOutcome, Command, JobId, JobSpec, JobState, Timestamp};
use proptest::prelude::*;

use super::{Action, Core, CoreConfig, CoreError, Event, ExitOutcome, Signal, StopReason};

/// A spec for queue `queue` at priority `priority`.
fn spec(queue: &str, priority: u8) -> JobSpec {
    JobSpec::new(
        Command::Argv(vec!["true".into()].try_into().expect("a program")),
        "/",
        queue,
        priority,
    )
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
fn upcoming_lists_queued_jobs_in_start_order_across_queues_without_paused_ones() {
    let mut c = core(1);
    let running = submit(&mut c, 0, "default", 50);
    assert_eq!(start_all(&mut c, 0), vec![running]);
    for q in ["build", "paused"] {
        for ev in c.decide_queue_set(q, None, true, None).unwrap() {
            c.apply(&ev).unwrap();
        }
    }
    let late = submit(&mut c, 1, "default", 50);
    let urgent = submit(&mut c, 1, "build", 10);
    let held = submit(&mut c, 1, "paused", 1);
    let early = submit(&mut c, 1, "default", 20);
    let pause = c
        .decide_pause(&["paused".to_string()], true, false)
        .unwrap();
    for ev in pause {
        c.apply(&ev).unwrap();
    }
    // The running job is not upcoming; the paused queue's job is not either,
    // though its priority is the best.
    assert_eq!(c.upcoming(10), vec![urgent, early, late]);
    assert_eq!(c.upcoming(2), vec![urgent, early]);
    assert!(c.upcoming(0).is_empty());
    assert_ne!(held, urgent);

    for ev in c.begin_shutdown(Timestamp(2), 1000) {
        c.apply(&ev).unwrap();
    }
    assert!(
        c.upcoming(10).is_empty(),
        "nothing starts during a shutdown"
    );
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
    // No argv is without a first word (the type holds it); an empty one is
    // still refused.
    s.command = Command::Argv(mayfly_protocol::Argv::new("", ["x".to_string()]));
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
    assert_eq!(
        c.poll_action(),
        Some(Action::Signal {
            id: run,
            signal: Signal::Cont
        }),
        "a frozen job is thawed so it hears SIGTERM"
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

    let rec = replayed.recovery_events(Timestamp(9), &[]);
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
    /// Submit to queue index `q` at priority `p`, `--preemptible` or not.
    Submit { q: usize, p: u8, pre: bool },
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
        4 => (0usize..3, 1u8..=99, prop::bool::weighted(0.3))
            .prop_map(|(q, p, pre)| Op::Submit { q, p: p % 5 * 20 + 1, pre }),
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
        let mut preemptible: std::collections::HashSet<JobId> = std::collections::HashSet::new();
        // Running jobs of a queue that hold a slot (frozen ones do not).
        let holding = |c: &Core, queue: Option<&str>| -> u64 {
            c.job_views()
                .filter(|j| j.state == JobState::Running && !j.preempted)
                .filter(|j| queue.is_none_or(|q| j.queue == q))
                .count() as u64
        };

        for op in ops {
            match op {
                Op::Submit { q, p, pre } => {
                    let mut s = spec(queues[q], p);
                    s.set_preemptible(pre);
                    let ev = c.decide_submit(Timestamp(now), s).unwrap();
                    c.apply(&ev).unwrap();
                    ids.push(ev.job_id().unwrap());
                    if pre {
                        preemptible.insert(ev.job_id().unwrap());
                    }
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
                        if let Event::Frozen { by, .. } = &ev {
                            // Only a preemptible job, for a more urgent one.
                            prop_assert!(preemptible.contains(&id), "froze {id}, not preemptible");
                            let victim = c.job_info(id).unwrap().priority;
                            let urgent = c.job_info(*by).unwrap().priority;
                            prop_assert!(victim > urgent, "froze {id} (pri {victim}) for {by} (pri {urgent})");
                        }
                        if !matches!(ev, Event::Started { .. }) {
                            c.apply(&ev).unwrap();
                            continue;
                        }
                        let info = c.job_info(id).unwrap();
                        // Nothing better is queued in a queue that has room.
                        for other in c.job_ids() {
                            let o = c.job_info(other).unwrap();
                            if o.state != JobState::Queued || other == id { continue; }
                            let qi = c.queue_infos().into_iter().find(|q| q.name == o.queue).unwrap();
                            let room = !qi.paused && qi.concurrency.is_none_or(|l| holding(&c, Some(&qi.name)) < u64::from(l));
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
            // Limits are never exceeded by the jobs that hold slots.
            prop_assert!(holding(&c, None) <= u64::from(global));
            for (qi, limit) in c.queue_infos().iter().zip(&limits) {
                if let Some(l) = limit {
                    let held = holding(&c, Some(&qi.name));
                    prop_assert!(held <= u64::from(*l), "queue {} runs {} > {l}", qi.name, held);
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
                if let Action::Spawn { id, .. } = a {
                    let spawned = Event::Spawned { id, pid: 1000 + id.0 as u32, start_ticks: 1 };
                    c.apply(&spawned).unwrap();
                }
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

// ------------------------------------------------------------ job features

use mayfly_protocol::{DepRef, Dependency};

/// Decides and applies a submit of `spec`; returns the new id.
fn submit_spec(core: &mut Core, now: u64, spec: JobSpec) -> JobId {
    let ev = core.decide_submit(Timestamp(now), spec).unwrap();
    core.apply(&ev).unwrap();
    ev.job_id().unwrap()
}

/// A default-queue spec that waits for `deps` (`any`: any outcome will do).
fn after(deps: &[u64], any: bool) -> JobSpec {
    let mut s = spec("default", 50);
    s.after = deps
        .iter()
        .map(|&d| Dependency {
            on: DepRef::Job(JobId(d)),
            any_outcome: any,
        })
        .collect();
    s
}

/// Applies every time-driven event due at `now`.
fn tick(core: &mut Core, now: u64) {
    for ev in core.due_events(Timestamp(now)) {
        core.apply(&ev).unwrap();
    }
    core.on_timer(Timestamp(now));
}

#[test]
fn a_dependent_waits_then_runs_after_its_prerequisite_succeeds() {
    let mut c = core(2);
    let a = submit(&mut c, 0, "default", 50);
    let b = submit_spec(&mut c, 0, after(&[a.0], false));
    assert_eq!(c.state_of(b), Some(JobState::Waiting));
    assert_eq!(
        start_all(&mut c, 1),
        vec![a],
        "b must not start with a free slot"
    );
    exit(&mut c, 2, a, 0);
    assert_eq!(c.state_of(b), Some(JobState::Queued));
    assert_eq!(start_all(&mut c, 3), vec![b]);
    assert_eq!(c.job_info(b).unwrap().after, vec![(a, false)]);
}

#[test]
fn skipped_propagates_down_a_chain_and_after_any_runs_anyway() {
    let mut c = core(4);
    let a = submit(&mut c, 0, "default", 50);
    let b = submit_spec(&mut c, 0, after(&[a.0], false));
    let d = submit_spec(&mut c, 0, after(&[b.0], false));
    let cleanup = submit_spec(&mut c, 0, after(&[d.0], true));
    start_all(&mut c, 1);
    exit(&mut c, 2, a, 1);
    assert_eq!(c.state_of(b), Some(JobState::Skipped));
    assert_eq!(c.state_of(d), Some(JobState::Skipped));
    assert!(
        c.job_info(d)
            .unwrap()
            .reason
            .unwrap()
            .contains(&format!("job {b}"))
    );
    assert_eq!(
        c.state_of(cleanup),
        Some(JobState::Queued),
        "--after-any runs whatever happened"
    );
    let transitions = c.take_transitions();
    assert!(
        transitions.contains(&(d, JobState::Skipped)),
        "{transitions:?}"
    );
}

#[test]
fn a_dependency_on_a_failed_job_is_skipped_at_submit_and_unknown_ids_are_refused() {
    let mut c = core(1);
    let a = submit(&mut c, 0, "default", 50);
    start_all(&mut c, 1);
    exit(&mut c, 2, a, 3);
    let b = submit_spec(&mut c, 3, after(&[a.0], false));
    assert_eq!(c.state_of(b), Some(JobState::Skipped));
    let err = c
        .decide_submit(Timestamp(3), after(&[99], false))
        .unwrap_err();
    assert!(err.to_string().contains("no job 99"), "{err}");
}

#[test]
fn batches_name_earlier_lines_and_refuse_forward_references() {
    let mut c = core(1);
    let mut second = spec("default", 50);
    second.after = vec![Dependency {
        on: DepRef::BatchLine(1),
        any_outcome: false,
    }];
    let events = c
        .decide_batch(Timestamp(0), vec![spec("default", 50), second.clone()])
        .unwrap();
    for ev in &events {
        c.apply(ev).unwrap();
    }
    assert_eq!(c.job_info(JobId(2)).unwrap().after, vec![(JobId(1), false)]);
    let mut forward = spec("default", 50);
    forward.after = vec![Dependency {
        on: DepRef::BatchLine(2),
        any_outcome: false,
    }];
    let err = c
        .decide_batch(Timestamp(0), vec![forward, spec("default", 50)])
        .unwrap_err();
    assert!(err.to_string().contains("line 1"), "{err}");
    assert!(err.to_string().contains("no cycles"), "{err}");
}

#[test]
fn not_before_keeps_a_job_waiting_until_its_time() {
    let mut c = core(1);
    let mut s = spec("default", 50);
    s.not_before = Some(Timestamp(1_000));
    let a = submit_spec(&mut c, 0, s);
    assert_eq!(c.state_of(a), Some(JobState::Waiting));
    assert_eq!(c.next_deadline(), Some(Timestamp(1_000)));
    tick(&mut c, 999);
    assert_eq!(c.state_of(a), Some(JobState::Waiting));
    tick(&mut c, 1_000);
    assert_eq!(c.state_of(a), Some(JobState::Queued));
    assert_eq!(c.next_deadline(), None);
}

#[test]
fn a_timeout_stops_the_job_and_it_ends_timed_out() {
    let mut c = core(1);
    let mut s = spec("default", 50);
    s.timeout_ms = Some(500);
    let a = submit_spec(&mut c, 0, s);
    start_all(&mut c, 100);
    c.apply(&Event::Spawned {
        id: a,
        pid: 4242,
        start_ticks: 1,
    })
    .unwrap();
    while c.poll_action().is_some() {}
    assert_eq!(c.next_deadline(), Some(Timestamp(600)));
    tick(&mut c, 600);
    assert_eq!(
        c.poll_action(),
        Some(Action::Signal {
            id: a,
            signal: Signal::Term
        })
    );
    assert_eq!(
        c.poll_action(),
        Some(Action::Signal {
            id: a,
            signal: Signal::Cont
        })
    );
    c.apply(&Event::Exited {
        id: a,
        at: Timestamp(650),
        outcome: ExitOutcome::Signal(15),
    })
    .unwrap();
    assert_eq!(c.state_of(a), Some(JobState::TimedOut));
    assert_eq!(
        c.poll_action(),
        Some(Action::SweepGroup { pgid: 4242 }),
        "the group is swept"
    );
    assert!(c.job_info(a).unwrap().reason.unwrap().contains("timeout"));
}

#[test]
fn retries_back_off_exponentially_and_stop_at_n() {
    let mut c = core(1);
    let mut s = spec("default", 50);
    s.retries = 2;
    s.retry_delay_ms = 100;
    let a = submit_spec(&mut c, 0, s);
    let mut now = 0;
    let mut waits = vec![];
    for attempt in 1..=3 {
        assert_eq!(start_all(&mut c, now), vec![a], "attempt {attempt}");
        now += 10;
        exit(&mut c, now, a, 7);
        if attempt < 3 {
            assert_eq!(c.state_of(a), Some(JobState::Waiting));
            let retry_at = c.job_info(a).unwrap().retry_at.unwrap();
            waits.push(retry_at.0 - now);
            assert!(c.next_start(Timestamp(retry_at.0 - 1)).is_none());
            now = retry_at.0;
            tick(&mut c, now);
            assert_eq!(c.state_of(a), Some(JobState::Queued));
        }
    }
    assert_eq!(waits, vec![100, 200], "the delay doubles");
    let info = c.job_info(a).unwrap();
    assert_eq!(info.state, JobState::Failed);
    assert_eq!(info.attempts, 3);
    assert_eq!(info.history.len(), 3);
    assert!(info.history.iter().all(|h| h.exit_code == Some(7)));
}

#[test]
fn a_crash_interrupts_a_job_unless_it_has_retries_left() {
    let mut c = core(2);
    let mut s = spec("default", 50);
    s.retries = 1;
    let a = submit_spec(&mut c, 0, s);
    let b = submit(&mut c, 0, "default", 50);
    start_all(&mut c, 1);
    for ev in c.recovery_events(Timestamp(5), &[]) {
        c.apply(&ev).unwrap();
    }
    assert_eq!(
        c.state_of(a),
        Some(JobState::Queued),
        "runs again per its retry policy"
    );
    assert_eq!(c.state_of(b), Some(JobState::Interrupted));
}

/// Regression: a cancel of a running job was acknowledged (its stop request
/// logged and fsynced), then a crash made recovery interrupt the job — and
/// retry it when it had retries left, so the cancelled job ran again.
#[test]
fn a_logged_cancel_wins_over_the_crash_and_is_never_retried() {
    let mut c = core(1);
    let mut s = spec("default", 50);
    s.retries = 3;
    let a = submit_spec(&mut c, 0, s);
    start_all(&mut c, 1);
    let (outcome, event) = c.decide_cancel(Timestamp(2), a);
    assert_eq!(outcome, CancelOutcome::Signalled);
    c.apply(&event.expect("a stop request to log")).unwrap();
    for ev in c.recovery_events(Timestamp(5), &[]) {
        c.apply(&ev).unwrap();
    }
    let info = c.job_info(a).unwrap();
    assert_eq!(info.state, JobState::Cancelled, "{info:?}");
    assert_eq!(info.attempts, 1, "not started again");
    assert!(info.reason.unwrap().contains("cancelled"));
    assert_eq!(c.running_count(), 0);
    assert!(c.next_start(Timestamp(6)).is_none());
}

/// A timeout whose stop was logged before a crash ends the job `timed_out`
/// (retried as timeouts are), not `interrupted`; and a retried attempt
/// starts with no stop request of its own, so a cancel of it is logged.
#[test]
fn a_logged_timeout_survives_the_crash_and_the_next_attempt_starts_clean() {
    let mut c = core(1);
    let mut s = spec("default", 50);
    s.timeout_ms = Some(100);
    s.retries = 1;
    s.retry_delay_ms = 10;
    let a = submit_spec(&mut c, 0, s);
    start_all(&mut c, 0);
    tick(&mut c, 100);
    assert_eq!(c.job_info(a).unwrap().state, JobState::Running);
    for ev in c.recovery_events(Timestamp(150), &[]) {
        c.apply(&ev).unwrap();
    }
    let info = c.job_info(a).unwrap();
    assert_eq!(info.state, JobState::Waiting, "retried: {info:?}");
    assert!(info.reason.unwrap().contains("timeout"));
    tick(&mut c, 160);
    assert_eq!(start_all(&mut c, 160), vec![a]);
    let (_, event) = c.decide_cancel(Timestamp(170), a);
    assert!(
        event.is_some(),
        "the new attempt has no stop request left over from the last one"
    );
    c.apply(&event.unwrap()).unwrap();
    for ev in c.recovery_events(Timestamp(180), &[]) {
        c.apply(&ev).unwrap();
    }
    assert_eq!(c.state_of(a), Some(JobState::Cancelled));

    let mut c = core(1);
    let mut s = spec("default", 50);
    s.timeout_ms = Some(100);
    let b = submit_spec(&mut c, 0, s);
    start_all(&mut c, 0);
    tick(&mut c, 100);
    for ev in c.recovery_events(Timestamp(150), &[]) {
        c.apply(&ev).unwrap();
    }
    assert_eq!(c.state_of(b), Some(JobState::TimedOut));
}

#[test]
fn paused_queues_start_nothing_and_can_freeze_running_jobs() {
    let mut c = core(2);
    let a = submit(&mut c, 0, "default", 50);
    start_all(&mut c, 1);
    while c.poll_action().is_some() {}
    let b = submit(&mut c, 1, "default", 50);
    for ev in c.decide_pause(&[], true, true).unwrap() {
        c.apply(&ev).unwrap();
    }
    assert_eq!(
        c.poll_action(),
        Some(Action::Signal {
            id: a,
            signal: Signal::Stop
        })
    );
    assert!(c.next_start(Timestamp(2)).is_none());
    assert!(c.queue_infos().iter().all(|q| q.paused));
    for ev in c.decide_pause(&["default".into()], false, true).unwrap() {
        c.apply(&ev).unwrap();
    }
    assert_eq!(
        c.poll_action(),
        Some(Action::Signal {
            id: a,
            signal: Signal::Cont
        })
    );
    assert_eq!(start_all(&mut c, 3), vec![b]);
    assert!(c.decide_pause(&["nope".into()], true, false).is_err());
}

/// Applies every event of a queue change.
fn set_queue(c: &mut Core, name: &str, concurrency: Option<Option<u32>>, create: bool) {
    for ev in c.decide_queue_set(name, concurrency, create, None).unwrap() {
        c.apply(&ev).unwrap();
    }
}

#[test]
fn queues_are_added_set_and_removed_only_when_empty() {
    let mut c = core(2);
    set_queue(&mut c, "gpu", Some(Some(1)), true);
    assert!(
        c.decide_queue_set("gpu", Some(Some(2)), true, None)
            .is_err(),
        "add refuses an existing queue"
    );
    assert!(
        c.decide_queue_set("cpu", Some(Some(2)), false, None)
            .is_err(),
        "set refuses a missing queue"
    );
    assert!(
        c.decide_queue_set("gpu", Some(Some(0)), false, None)
            .is_err()
    );
    set_queue(&mut c, "gpu", Some(Some(3)), false);
    let gpu = c
        .queue_infos()
        .into_iter()
        .find(|q| q.name == "gpu")
        .unwrap();
    assert_eq!(gpu.concurrency, Some(3));
    assert_eq!(
        c.decide_queue_set("gpu", None, false, None).unwrap(),
        vec![],
        "a set that changes nothing logs nothing"
    );
    let a = submit(&mut c, 0, "gpu", 50);
    let err = c.decide_queue_remove("gpu").unwrap_err();
    assert!(err.to_string().contains("unfinished"), "{err}");
    start_all(&mut c, 1);
    exit(&mut c, 2, a, 0);
    c.apply(&c.decide_queue_remove("gpu").unwrap()).unwrap();
    assert!(c.queue_infos().iter().all(|q| q.name != "gpu"));
    assert!(c.decide_queue_remove("default").is_err());
}

/// A queue's executor is durable and shown; it changes only while none of
/// its jobs runs; the global limit bounds only local queues' jobs.
#[test]
fn a_queue_runs_its_jobs_on_its_executor_and_remote_jobs_skip_the_global_limit() {
    use mayfly_protocol::ExecutorSpec;
    let slurm = ExecutorSpec::Slurm {
        partition: Some("debug".into()),
        args: Vec::new(),
    };
    let mut c = core(1);
    let events = c
        .decide_queue_set("hpc", Some(Some(2)), true, Some(slurm.clone()))
        .unwrap();
    assert_eq!(events.len(), 2);
    for ev in &events {
        c.apply(ev).unwrap();
    }
    assert_eq!(c.executor_of("hpc"), slurm);
    assert_eq!(c.executor_of("default"), ExecutorSpec::Local);
    let info = c
        .queue_infos()
        .into_iter()
        .find(|q| q.name == "hpc")
        .unwrap();
    assert_eq!(info.executor, slurm);
    // One local job fills the global limit; the hpc queue still starts two.
    let local = submit(&mut c, 0, "default", 50);
    let remote: Vec<JobId> = (0..3).map(|_| submit(&mut c, 0, "hpc", 50)).collect();
    let started = start_all(&mut c, 1);
    assert_eq!(started, vec![local, remote[0], remote[1]]);
    assert_eq!(c.running_count(), 3);
    // Not while its jobs run.
    let err = c
        .decide_queue_set("hpc", None, false, Some(ExecutorSpec::Local))
        .unwrap_err();
    assert!(err.to_string().contains("running"), "{err}");
    // A remote attempt's id is durable, and comes back in recovery.
    c.apply(&Event::Attached {
        id: remote[0],
        remote_id: "4711".into(),
    })
    .unwrap();
    let attempts = c.running_attempts();
    let hpc = attempts.iter().find(|a| a.id == remote[0]).unwrap();
    assert_eq!(hpc.remote_id.as_deref(), Some("4711"));
    assert_eq!(hpc.executor, slurm);
    assert_eq!(
        c.job_info(remote[0]).unwrap().remote_id.as_deref(),
        Some("4711")
    );
    let restored = Core::from_snapshot(c.config().clone(), c.snapshot()).unwrap();
    assert_eq!(restored.running_attempts(), attempts);
    assert_eq!(restored.executor_of("hpc"), slurm);
    // Recovery interrupts the rest, not the re-attached one.
    let events = c.recovery_events(Timestamp(5), &[remote[0]]);
    let interrupted: Vec<JobId> = events.iter().filter_map(Event::job_id).collect();
    assert_eq!(interrupted, vec![local, remote[1]]);
}

/// A core with queue `hpc` run by Slurm, retries allowed through `spec`.
fn core_with_slurm_queue() -> Core {
    let mut c = core(1);
    let slurm = mayfly_protocol::ExecutorSpec::Slurm {
        partition: None,
        args: Vec::new(),
    };
    for ev in c.decide_queue_set("hpc", None, true, Some(slurm)).unwrap() {
        c.apply(&ev).unwrap();
    }
    c
}

/// Submits to `hpc` with `retries`, starts it, and attaches it as Slurm
/// job `slurm_id`.
fn start_on_slurm(c: &mut Core, retries: u32, slurm_id: &str) -> JobId {
    let mut s = spec("hpc", 50);
    s.retries = retries;
    let id = submit_spec(c, 0, s);
    assert_eq!(start_all(c, 1), vec![id]);
    c.apply(&Event::Attached {
        id,
        remote_id: slurm_id.into(),
    })
    .unwrap();
    id
}

/// What the other side says of an attempt's end decides its state: a
/// Slurm TIMEOUT ends `timed_out`, a cancel there `cancelled`, a lost job
/// `interrupted` (retried at once when it may be), with the reason given.
#[test]
fn ends_told_by_a_remote_executor_map_to_mayfly_states() {
    let ended = |state, reason: &str| ExitOutcome::Ended {
        state,
        exit_code: None,
        signal: Some(15),
        reason: reason.into(),
    };
    let mut c = core_with_slurm_queue();
    for (state, expect) in [
        (JobState::TimedOut, JobState::TimedOut),
        (JobState::Cancelled, JobState::Cancelled),
        (JobState::Failed, JobState::Failed),
        (JobState::Interrupted, JobState::Interrupted),
        // Nothing else is an end the other side may choose.
        (JobState::Succeeded, JobState::Failed),
    ] {
        let id = start_on_slurm(&mut c, 0, "1");
        c.apply(&Event::Exited {
            id,
            at: Timestamp(2),
            outcome: ended(state, "said so"),
        })
        .unwrap();
        let info = c.job_info(id).unwrap();
        assert_eq!(info.state, expect, "{state}");
        assert_eq!(info.reason.as_deref(), Some("said so"));
        assert_eq!(info.signal, Some(15));
        // The Slurm id stays for `status` once the attempt ended.
        assert_eq!(info.remote_id.as_deref(), Some("1"));
    }
    // A lost attempt with retries left runs again at once, without the
    // old Slurm id; a timed-out one waits for its backoff.
    let lost = start_on_slurm(&mut c, 1, "7");
    c.apply(&Event::Exited {
        id: lost,
        at: Timestamp(2),
        outcome: ended(JobState::Interrupted, "forgotten"),
    })
    .unwrap();
    assert_eq!(c.state_of(lost), Some(JobState::Queued));
    assert_eq!(start_all(&mut c, 3), vec![lost]);
    assert_eq!(c.job_info(lost).unwrap().remote_id, None);
    // A stop Mayfly asked for still decides: a cancel ends `cancelled`
    // whatever Slurm reports.
    let cancelled = start_on_slurm(&mut c, 1, "8");
    let (_, stop) = c.decide_cancel(Timestamp(4), cancelled);
    c.apply(&stop.unwrap()).unwrap();
    c.apply(&Event::Exited {
        id: cancelled,
        at: Timestamp(5),
        outcome: ended(JobState::Failed, "node failed"),
    })
    .unwrap();
    assert_eq!(c.state_of(cancelled), Some(JobState::Cancelled));
}

/// A graceful shutdown stops local jobs only: jobs on a cluster go on, and
/// the log keeps them running for the next start to re-attach.
#[test]
fn a_shutdown_stops_local_jobs_and_leaves_remote_ones_running() {
    let mut c = core_with_slurm_queue();
    let remote = start_on_slurm(&mut c, 0, "3");
    let local = submit(&mut c, 0, "default", 50);
    assert_eq!(start_all(&mut c, 1), vec![local]);
    assert!(!c.runs_locally(remote));
    assert!(c.runs_locally(local));
    let stops = c.begin_shutdown(Timestamp(2), 1000);
    let stopped: Vec<JobId> = stops.iter().filter_map(Event::job_id).collect();
    assert_eq!(stopped, vec![local]);
    for ev in &stops {
        c.apply(ev).unwrap();
    }
    exit(&mut c, 3, local, 0);
    assert_eq!(c.running_local_count(), 0);
    assert_eq!(c.running_count(), 1);
    let attempts = c.running_attempts();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].id, remote);
    assert_eq!(attempts[0].attempt, 1);
    assert_eq!(attempts[0].remote_id.as_deref(), Some("3"));
}

#[test]
fn restart_clean_edit_and_progress() {
    let mut c = core(1);
    let a = submit(&mut c, 0, "default", 50);
    let b = submit(&mut c, 0, "default", 50);
    start_all(&mut c, 1);
    c.apply(&c.decide_progress(a, "half\nway".into()).unwrap())
        .unwrap();
    assert_eq!(c.job_info(a).unwrap().progress.as_deref(), Some("halfway"));
    // Edit a queued job; a running one is refused.
    assert!(c.decide_edit(a, Some(10), None, None).is_err());
    let ev = c
        .decide_edit(
            b,
            Some(10),
            Some("other".into()),
            Some(vec![("k".into(), "v".into())]),
        )
        .unwrap();
    c.apply(&ev).unwrap();
    let info = c.job_info(b).unwrap();
    assert_eq!((info.priority, info.queue.as_str()), (10, "other"));
    assert_eq!(info.labels, vec![("k".to_string(), "v".to_string())]);
    assert!(
        c.decide_edit(b, Some(0), None, None).is_err(),
        "priority still validated"
    );
    exit(&mut c, 2, a, 0);
    // Restart gives a new id; running/queued jobs are refused.
    assert!(c.decide_restart(Timestamp(3), &[b]).is_err());
    let evs = c.decide_restart(Timestamp(3), &[a]).unwrap();
    assert_eq!(evs.len(), 1);
    c.apply(&evs[0]).unwrap();
    assert_eq!(evs[0].job_id(), Some(JobId(3)));
    // Clean forgets finished jobs (and asks for their output to go); ids are
    // never reused.
    let ev = c
        .decide_clean(Timestamp(10), &[JobState::Succeeded], None)
        .unwrap()
        .unwrap();
    c.apply(&ev).unwrap();
    assert_eq!(c.state_of(a), None);
    assert!(std::iter::from_fn(|| c.poll_action()).any(|x| x == Action::RemoveOutput { id: a }));
    assert!(
        c.decide_clean(Timestamp(10), &[JobState::Running], None)
            .is_err()
    );
    assert_eq!(
        c.decide_clean(Timestamp(10), &[], Some(1_000_000)).unwrap(),
        None
    );
    assert_eq!(submit(&mut c, 11, "default", 50), JobId(4));
}

#[test]
fn snapshot_keeps_dependencies_and_clocks() {
    let mut c = core(1);
    let a = submit(&mut c, 0, "default", 50);
    let b = submit_spec(&mut c, 0, after(&[a.0], false));
    let mut s = spec("default", 50);
    s.not_before = Some(Timestamp(5_000));
    let d = submit_spec(&mut c, 0, s);
    let mut r = Core::from_snapshot(c.config().clone(), c.snapshot()).unwrap();
    assert_eq!(r.next_deadline(), Some(Timestamp(5_000)));
    assert_eq!(start_all(&mut r, 1), vec![a]);
    exit(&mut r, 2, a, 0);
    assert_eq!(r.state_of(b), Some(JobState::Queued));
    tick(&mut r, 5_000);
    assert_eq!(r.state_of(d), Some(JobState::Queued));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Dependencies never run before their prerequisites succeed (or end,
    /// for after-any); a failed prerequisite skips its whole chain; retries
    /// stop at N.
    #[test]
    fn dependencies_and_retries_hold(
        plan in prop::collection::vec((prop::collection::vec(any::<prop::sample::Index>(), 0..3), any::<bool>(), 0u32..3), 1..25),
        outcomes in prop::collection::vec(0i32..3, 200),
    ) {
        let mut c = core(3);
        let mut ids: Vec<JobId> = vec![];
        for (deps, any, retries) in &plan {
            let mut s = spec("default", 50);
            s.retries = *retries;
            s.retry_delay_ms = 0;
            if !ids.is_empty() {
                s.after = deps.iter().map(|ix| Dependency { on: DepRef::Job(ids[ix.index(ids.len())]), any_outcome: *any }).collect();
            }
            ids.push(submit_spec(&mut c, 0, s));
        }
        let mut outcome = outcomes.into_iter().cycle();
        let mut started_at_least_once = std::collections::HashSet::new();
        for round in 0..500u64 {
            while let Some(ev) = c.next_start(Timestamp(round)) {
                let id = ev.job_id().unwrap();
                for (dep, any) in c.job_info(id).unwrap().after {
                    let st = c.state_of(dep);
                    if any {
                        prop_assert!(st.is_none_or(|s| s.is_terminal()), "{id} started before {dep} ended");
                    } else {
                        prop_assert!(st.is_none_or(|s| s == JobState::Succeeded), "{id} started before {dep} succeeded: {st:?}");
                    }
                }
                c.apply(&ev).unwrap();
                started_at_least_once.insert(id);
            }
            let running: Vec<JobId> = c.job_ids().filter(|&id| c.state_of(id) == Some(JobState::Running)).collect();
            if running.is_empty() { break; }
            for id in running { exit(&mut c, round, id, outcome.next().unwrap()); }
        }
        for (&id, (_, _, retries)) in ids.iter().zip(&plan) {
            let info = c.job_info(id).unwrap();
            prop_assert!(info.state.is_terminal(), "{id} ended {}", info.state);
            prop_assert!(info.attempts <= retries + 1, "{id}: {} attempts for {retries} retries", info.attempts);
            if info.state == JobState::Skipped {
                prop_assert!(!started_at_least_once.contains(&id), "a skipped job {id} ran");
                // Some prerequisite needing success did not succeed.
                prop_assert!(info.after.iter().any(|&(d, any)| !any && c.state_of(d) != Some(JobState::Succeeded)));
            }
            if info.state == JobState::Failed {
                prop_assert_eq!(info.attempts, retries + 1, "a failed job used all its retries");
            }
        }
    }
}

#[test]
fn the_logged_process_of_a_running_job_survives_replay_and_ends_with_it() {
    let mut c = core(1);
    let a = submit(&mut c, 0, "default", 50);
    start_all(&mut c, 1);
    c.apply(&Event::Spawned {
        id: a,
        pid: 4321,
        start_ticks: 99,
    })
    .unwrap();
    assert_eq!(c.logged_processes(), vec![(a, 4321, 99)]);
    assert_eq!(c.job_info(a).unwrap().pid, Some(4321));
    let restored = Core::from_snapshot(c.config().clone(), c.snapshot()).unwrap();
    assert_eq!(
        restored.logged_processes(),
        vec![(a, 4321, 99)],
        "kept by snapshots"
    );
    exit(&mut c, 2, a, 0);
    assert!(c.logged_processes().is_empty());
}

#[test]
fn reserved_ids_are_never_handed_out() {
    let mut c = core(1);
    submit(&mut c, 0, "default", 50);
    assert_eq!(c.reserve_ids_through(0), None, "already past");
    let ev = c.reserve_ids_through(7).unwrap();
    c.apply(&ev).unwrap();
    assert_eq!(submit(&mut c, 1, "default", 50), JobId(8));
}

/// A new job's first state is reported once: `Queued` when it may run at
/// once, `Waiting` when it must wait, `Skipped` when a prerequisite has
/// already failed — never a `Waiting` it was not seen in.
#[test]
fn a_new_job_reports_only_the_state_it_lands_in() {
    let mut c = core(1);
    let a = submit(&mut c, 0, "default", 50);
    assert_eq!(c.take_transitions(), vec![(a, JobState::Queued)]);
    let b = submit_spec(&mut c, 1, after(&[a.0], false));
    assert_eq!(c.take_transitions(), vec![(b, JobState::Waiting)]);
    start_all(&mut c, 2);
    exit(&mut c, 3, a, 1);
    c.take_transitions();
    let d = submit_spec(&mut c, 4, after(&[a.0], false));
    assert_eq!(c.take_transitions(), vec![(d, JobState::Skipped)]);
}

// ------------------------------------------------------- compact job storage

/// A spec for `queue` with its own cwd and environment.
fn spec_in(queue: &str, cwd: &str, env: &[(&str, &str)]) -> JobSpec {
    let mut s = JobSpec::new(Command::Shell("true".into()), cwd, queue, 50);
    s.env = env
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect();
    s
}

#[test]
fn jobs_share_equal_environments_and_keep_their_own() {
    let home: &[(&str, &str)] = &[("PATH", "/usr/bin:/bin"), ("HOME", "/home/me")];
    let work: &[(&str, &str)] = &[("PATH", "/opt/bin"), ("LANG", "C.UTF-8")];
    let mut c = core(1);
    let specs = [
        spec_in("default", "/src", home),
        spec_in("default", "/src", home),
        spec_in("build", "/tmp", work),
        spec_in("default", "/src", &[]),
    ];
    let ids: Vec<JobId> = specs
        .iter()
        .map(|s| submit_spec(&mut c, 0, s.clone()))
        .collect();
    for (id, s) in ids.iter().zip(&specs) {
        assert_eq!(c.spec(*id).as_ref(), Some(s), "job {id} keeps its spec");
    }
    // One copy of each distinct value: two cwds and two queue names; three
    // environments (the empty one too).
    assert_eq!(c.interner.len(), (4, 3));
    assert!(std::sync::Arc::ptr_eq(
        &c.jobs[&ids[0]].env,
        &c.jobs[&ids[1]].env
    ));
    assert!(std::sync::Arc::ptr_eq(
        &c.jobs[&ids[0]].cwd,
        &c.jobs[&ids[1]].cwd
    ));

    // Through a snapshot and back (the daemon's restart): the same spec per
    // job, and shared again.
    let restored = Core::from_snapshot(c.config().clone(), c.snapshot()).unwrap();
    for (id, s) in ids.iter().zip(&specs) {
        assert_eq!(
            restored.spec(*id).as_ref(),
            Some(s),
            "job {id} after restore"
        );
    }
    assert_eq!(restored.interner.len(), (4, 3));
    assert!(std::sync::Arc::ptr_eq(
        &restored.jobs[&ids[0]].env,
        &restored.jobs[&ids[1]].env
    ));

    // Forgetting the only job with an environment drops that environment.
    let build = ids[2];
    c.apply(&Event::Cancelled {
        id: build,
        at: Timestamp(1),
    })
    .unwrap();
    let ev = c.decide_clean(Timestamp(2), &[], None).unwrap().unwrap();
    c.apply(&ev).unwrap();
    assert_eq!(c.state_of(build), None);
    assert_eq!(c.interner.len(), (2, 2), "/tmp, build and its env are gone");
    assert_eq!(c.spec(ids[0]).as_ref(), Some(&specs[0]));
}

#[test]
fn a_plain_queued_job_allocates_no_option_or_run_box() {
    let mut c = core(1);
    let plain = submit(&mut c, 0, "default", 50);
    let job = &c.jobs[&plain];
    assert!(job.options.is_none() && job.run.is_none());
    // What one queued job costs is mostly this struct (boxed in the map):
    // keep it small. Growing it is a decision, not an accident.
    assert!(
        std::mem::size_of::<super::job::Job>() <= 128,
        "Job is {} bytes",
        std::mem::size_of::<super::job::Job>()
    );

    // Options live in a box only while something differs from the default;
    // an edit back to no labels drops the box again.
    let mut labelled = spec("default", 50);
    labelled.labels = vec![("k".into(), "v".into())];
    let id = submit_spec(&mut c, 0, labelled.clone());
    assert!(c.jobs[&id].options.is_some());
    assert_eq!(c.spec(id), Some(labelled));
    c.apply(&c.decide_edit(id, None, None, Some(vec![])).unwrap())
        .unwrap();
    assert!(c.jobs[&id].options.is_none());
    assert_eq!(c.job_info(id).unwrap().labels, vec![]);

    // Every seldom-used spec field survives the trip through the box and a
    // snapshot.
    let mut rich = after(&[plain.0], true);
    rich.not_before = Some(Timestamp(9_000));
    rich.timeout_ms = Some(1_500);
    rich.retries = 3;
    rich.retry_delay_ms = 250;
    rich.labels = vec![("b".into(), "1".into()), ("a".into(), "2".into())];
    let id = submit_spec(&mut c, 0, rich.clone());
    assert_eq!(c.spec(id).as_ref(), Some(&rich));
    let restored = Core::from_snapshot(c.config().clone(), c.snapshot()).unwrap();
    assert_eq!(restored.spec(id), Some(rich));
    // Starting a job gives it a run box; the view and the owned info agree.
    start_all(&mut c, 1);
    assert!(c.jobs[&plain].run.is_some());
    assert_eq!(
        c.job_view(plain).map(|v| v.to_info()),
        c.job_info(plain),
        "job_info is the view, copied"
    );
    assert_eq!(c.job_info(plain).unwrap().started_at, Some(Timestamp(1)));
}

#[test]
fn snapshots_hold_each_shared_value_once_and_read_format_1() {
    let env: &[(&str, &str)] = &[("PATH", "/usr/bin"), ("LANG", "C.UTF-8")];
    let mut c = core(1);
    let mut rich = spec_in("build", "/src", env);
    rich.labels = vec![("k".into(), "v".into())];
    rich.timeout_ms = Some(5_000);
    let a = submit_spec(&mut c, 0, spec_in("default", "/src", env));
    let b = submit_spec(&mut c, 0, after(&[a.0], false));
    let d = submit_spec(&mut c, 0, rich);
    let snap = c.snapshot();
    let spec_of = |id: JobId| &snap.jobs.iter().find(|j| j.id == id).unwrap().spec;
    // Each shared value is in the tables once, shared with the core (taking
    // a snapshot copies pointers, not every job's environment).
    assert_eq!(snap.envs.len(), 2, "{:?}", snap.envs);
    assert_eq!(snap.strs.len(), 4, "{:?}", snap.strs);
    assert_eq!(spec_of(a).env, spec_of(d).env);
    assert_eq!(spec_of(a).cwd, spec_of(d).cwd);
    assert!(std::sync::Arc::ptr_eq(
        &snap.envs[spec_of(a).env as usize],
        &c.jobs[&a].env
    ));
    for id in [a, b, d] {
        assert_eq!(Some(snap.spec_of(spec_of(id)).unwrap()), c.spec(id));
    }

    // Format 2 round-trips through its encoding.
    let bytes = snap.encode().unwrap();
    let back = super::CoreSnapshot::decode(super::SNAPSHOT_FORMAT, &bytes).unwrap();
    assert_eq!(back, snap);
    let restored = Core::from_snapshot(c.config().clone(), back).unwrap();
    for id in [a, b, d] {
        assert_eq!(restored.spec(id), c.spec(id));
    }

    // Format 1 (every job its own copy of every value) reads as the same
    // state.
    let old = super::v1::CoreSnapshot {
        next_id: snap.next_id,
        submitted: snap.submitted,
        started: snap.started,
        finished: snap.finished,
        queues: snap
            .queues
            .iter()
            .map(|q| (q.name.clone(), q.concurrency, q.paused))
            .collect(),
        jobs: snap
            .jobs
            .iter()
            .map(|j| super::v1::JobSnapshot {
                id: j.id,
                spec: {
                    let spec = snap.spec_of(&j.spec).unwrap();
                    super::v1::JobSpec {
                        command: spec.command,
                        cwd: spec.cwd,
                        env: spec.env,
                        queue: spec.queue,
                        priority: spec.priority,
                        labels: spec.labels,
                        after: spec.after,
                        not_before: spec.not_before,
                        timeout_ms: spec.timeout_ms,
                        retries: spec.retries,
                        retry_delay_ms: spec.retry_delay_ms,
                    }
                },
                state: j.state,
                attempts: j.attempts,
                exit_code: j.exit_code,
                signal: j.signal,
                submitted_at: j.submitted_at,
                started_at: j.started_at,
                finished_at: j.finished_at,
                progress: j.progress.clone(),
                reason: j.reason.clone(),
                stop: j.stop,
                deps: j.deps.clone(),
                time_ok: j.time_ok,
                retry_at: j.retry_at,
                history: j.history.clone(),
                process: j.process,
            })
            .collect(),
    };
    let bytes = mayfly_protocol::encode_blob(&old).unwrap();
    let back = super::CoreSnapshot::decode(1, &bytes).unwrap();
    assert_eq!(back, snap, "format 1 converts to the same tables");
    let restored = Core::from_snapshot(c.config().clone(), back).unwrap();
    for id in [a, b, d] {
        assert_eq!(restored.spec(id), c.spec(id));
    }
    assert!(super::CoreSnapshot::decode(9, &bytes).is_err());
}

/// A snapshot naming a table entry it does not have is refused as
/// inconsistent, never a panic.
#[test]
fn a_snapshot_with_a_bad_table_index_is_an_error() {
    let mut c = core(1);
    submit(&mut c, 0, "default", 50);
    let mut snap = c.snapshot();
    snap.jobs[0].spec.env = 7;
    let err = Core::from_snapshot(c.config().clone(), snap).unwrap_err();
    assert!(matches!(err, CoreError::Inconsistent(_)), "{err:?}");
}

/// A start that failed for the daemon's passing trouble (out of file
/// descriptors) is no attempt: the job waits a moment and starts again,
/// and a cancel asked for meanwhile ends it.
#[test]
fn a_deferred_start_waits_and_starts_again_without_using_an_attempt() {
    let mut c = core(1);
    let a = submit(&mut c, 0, "default", 50);
    assert_eq!(start_all(&mut c, 10), vec![a]);
    c.apply(&Event::StartDeferred {
        id: a,
        at: Timestamp(11),
        retry_at: Timestamp(1011),
        reason: "Too many open files".into(),
    })
    .unwrap();
    let info = c.job_info(a).unwrap();
    assert_eq!(info.state, JobState::Waiting);
    assert_eq!(info.attempts, 0);
    assert!(info.reason.unwrap().contains("Too many open files"));
    assert_eq!(c.running_count(), 0);
    assert_eq!(c.next_deadline(), Some(Timestamp(1011)));
    assert!(c.next_start(Timestamp(500)).is_none());
    tick(&mut c, 1011);
    assert_eq!(start_all(&mut c, 1011), vec![a]);
    exit(&mut c, 1020, a, 0);
    let info = c.job_info(a).unwrap();
    assert_eq!(info.state, JobState::Succeeded);
    assert_eq!(info.attempts, 1, "only the real start counts");

    let b = submit(&mut c, 2000, "default", 50);
    assert_eq!(start_all(&mut c, 2000), vec![b]);
    let (_, stop) = c.decide_cancel(Timestamp(2001), b);
    c.apply(&stop.unwrap()).unwrap();
    c.apply(&Event::StartDeferred {
        id: b,
        at: Timestamp(2002),
        retry_at: Timestamp(3002),
        reason: "Too many open files".into(),
    })
    .unwrap();
    assert_eq!(c.state_of(b), Some(JobState::Cancelled));
}

/// `--max-jobs` bounds the jobs held in any state, with a refusal that says
/// to clean; `--max-job-bytes` bounds one job's command and environment.
#[test]
fn limits_on_jobs_held_and_job_bytes_refuse_with_what_to_do() {
    let mut c = Core::new(CoreConfig {
        concurrency: 1,
        max_jobs: 3,
        max_job_bytes: 1024,
        ..CoreConfig::default()
    });
    for _ in 0..2 {
        submit(&mut c, 0, "default", 50);
    }
    let batch = vec![spec("default", 50), spec("default", 50)];
    match c.decide_batch(Timestamp(0), batch) {
        Err(CoreError::Limit(m)) => assert!(
            m.contains("--max-jobs") && m.contains("mayflyctl clean"),
            "{m}"
        ),
        other => panic!("{other:?}"),
    }
    let third = submit(&mut c, 0, "default", 50);
    assert!(matches!(
        c.decide_submit(Timestamp(0), spec("default", 50)),
        Err(CoreError::Limit(_))
    ));
    // Forgetting finished jobs makes room.
    start_all(&mut c, 1);
    exit(&mut c, 2, JobId(1), 0);
    let clean = c.decide_clean(Timestamp(3), &[], None).unwrap().unwrap();
    c.apply(&clean).unwrap();
    assert!(c.decide_submit(Timestamp(4), spec("default", 50)).is_ok());
    assert!(c.state_of(third).is_some());

    let mut big = spec("default", 50);
    big.env.push(("DATA".into(), "x".repeat(2000)));
    match c.decide_submit(Timestamp(5), big) {
        Err(CoreError::Limit(m)) => assert!(m.contains("--max-job-bytes"), "{m}"),
        other => panic!("{other:?}"),
    }
}

/// A setting of the spec's `ext` given twice is refused.
#[test]
fn a_spec_setting_given_twice_is_refused() {
    let c = core(1);
    let mut s = spec("default", 50);
    s.ext = vec![
        mayfly_protocol::SpecExt::MaxOutput(1),
        mayfly_protocol::SpecExt::MaxOutput(2),
    ];
    match c.decide_submit(Timestamp(0), s) {
        Err(CoreError::BadRequest(m)) => assert!(m.contains("max_output twice"), "{m}"),
        other => panic!("{other:?}"),
    }
}

/// What the core writes is the newest format the write-ahead log accepts,
/// and the older ones it accepts are the ones the core can still read.
#[test]
fn the_core_writes_the_newest_formats_the_log_knows() {
    assert_eq!(super::EVENT_FORMAT, *crate::wal::RECORD_FORMATS.end());
    assert_eq!(super::SNAPSHOT_FORMAT, *crate::wal::SNAPSHOT_FORMATS.end());
    let mut c = core(1);
    let id = submit(&mut c, 0, "default", 50);
    let event = Event::Cancelled {
        id,
        at: Timestamp(1),
    };
    let bytes = mayfly_protocol::encode_payload(&event).unwrap();
    for format in crate::wal::RECORD_FORMATS {
        assert_eq!(
            Event::decode(format, &bytes).as_ref(),
            Ok(&event),
            "format {format}"
        );
    }
    let snapshot = c.snapshot().encode().unwrap();
    assert!(super::CoreSnapshot::decode(super::SNAPSHOT_FORMAT, &snapshot).is_ok());
    assert!(Event::decode(super::EVENT_FORMAT + 1, &bytes).is_err());
}

/// An attempt's usage, logged before its exit, is the job's until its next
/// attempt starts; it survives a snapshot (format 3), and a format-2
/// snapshot, which has no room for it, still loads.
#[test]
fn usage_is_kept_with_the_exit_and_in_snapshots() {
    let mut c = core(1);
    let mut retried = spec("default", 50);
    retried.retries = 1;
    retried.retry_delay_ms = 0;
    let ev = c.decide_submit(Timestamp(0), retried).unwrap();
    c.apply(&ev).unwrap();
    let id = ev.job_id().unwrap();
    let other = submit(&mut c, 0, "default", 50);
    assert_eq!(start_all(&mut c, 1), vec![id]);
    let usage = mayfly_protocol::Usage {
        cpu_user_ms: 250,
        cpu_sys_ms: 20,
        max_rss_kib: 51_200,
    };
    c.apply(&Event::Usage { id, usage }).unwrap();
    exit(&mut c, 2, id, 1);
    // Failed, waiting for its retry: the figures of the attempt that ended.
    assert_eq!(c.job_info(id).unwrap().usage, Some(usage));
    assert_eq!(c.job_info(other).unwrap().usage, None);
    // Only a running job has an attempt to measure.
    assert!(c.apply(&Event::Usage { id, usage }).is_err());

    let snap = c.snapshot();
    assert_eq!(snap.job_ext, vec![(id, vec![super::JobExt::Usage(usage)])]);
    let bytes = snap.encode().unwrap();
    let back = super::CoreSnapshot::decode(super::SNAPSHOT_FORMAT, &bytes).unwrap();
    assert_eq!(back, snap);
    let restored = Core::from_snapshot(c.config().clone(), back).unwrap();
    assert_eq!(restored.job_info(id).unwrap().usage, Some(usage));

    // Format 2 is format 3 without the facts that follow it.
    let format_2 = mayfly_protocol::encode_blob(&snap).unwrap();
    assert!(bytes.starts_with(&format_2) && bytes.len() > format_2.len());
    let old = super::CoreSnapshot::decode(2, &format_2).unwrap();
    assert!(old.job_ext.is_empty());
    let restored = Core::from_snapshot(c.config().clone(), old).unwrap();
    assert_eq!(restored.job_info(id).unwrap().usage, None);
    assert_eq!(restored.job_count(), 2);

    // The next attempt starts with no figures.
    let mut started = vec![];
    for t in 3..10 {
        started.extend(start_all(&mut c, t));
        c.on_timer(Timestamp(t));
    }
    assert_eq!(started.first(), Some(&id), "{started:?}");
    assert_eq!(c.job_info(id).unwrap().usage, None);
}

/// Submits a `--preemptible` job to `queue` at `priority`.
fn submit_preemptible(core: &mut Core, now: u64, queue: &str, priority: u8) -> JobId {
    let mut s = spec(queue, priority);
    s.set_preemptible(true);
    submit_spec(core, now, s)
}

/// The signals the core asked for since the last call, by job.
fn signals(core: &mut Core) -> Vec<(JobId, Signal)> {
    std::iter::from_fn(|| core.poll_action())
        .filter_map(|a| match a {
            Action::Signal { id, signal } => Some((id, signal)),
            _ => None,
        })
        .collect()
}

#[test]
fn an_urgent_job_freezes_the_most_preemptible_and_it_is_thawed_first() {
    let mut c = core(2);
    let plain = submit(&mut c, 0, "default", 90);
    let older = submit_preemptible(&mut c, 0, "default", 80);
    assert_eq!(start_all(&mut c, 1), vec![older, plain]);
    exit(&mut c, 2, plain, 0);
    let newer = submit_preemptible(&mut c, 3, "default", 80);
    assert_eq!(start_all(&mut c, 4), vec![newer]);
    let _ = signals(&mut c);

    // Equal urgency takes no slot.
    let peer = submit(&mut c, 5, "default", 80);
    assert_eq!(c.next_start(Timestamp(5)), None);
    // A more urgent job freezes the most recently started of the least
    // urgent preemptible jobs, then starts in its slot.
    let urgent = submit(&mut c, 6, "default", 10);
    assert_eq!(
        c.next_start(Timestamp(6)),
        Some(Event::Frozen {
            id: newer,
            at: Timestamp(6),
            by: urgent
        })
    );
    assert_eq!(start_all(&mut c, 6), vec![newer, urgent]);
    assert_eq!(signals(&mut c), vec![(newer, Signal::Stop)]);
    assert!(c.job_info(newer).unwrap().preempted);
    assert!(!c.job_info(older).unwrap().preempted);
    assert_eq!(c.running_count(), 3, "a frozen job still runs");

    // The slot frees: the frozen job gets it before `peer`, which is not
    // more urgent than it.
    exit(&mut c, 7, urgent, 0);
    assert_eq!(
        c.next_start(Timestamp(8)),
        Some(Event::Thawed {
            id: newer,
            at: Timestamp(8)
        })
    );
    assert_eq!(start_all(&mut c, 8), vec![newer]);
    assert_eq!(signals(&mut c), vec![(newer, Signal::Cont)]);
    assert!(!c.job_info(newer).unwrap().preempted);
    assert_eq!(c.state_of(peer), Some(JobState::Queued));
}

#[test]
fn jobs_not_marked_preemptible_are_never_frozen() {
    let mut c = core(1);
    let low = submit(&mut c, 0, "default", 99);
    assert_eq!(start_all(&mut c, 1), vec![low]);
    submit(&mut c, 2, "default", 1);
    assert_eq!(c.next_start(Timestamp(2)), None);
    // Nor is a preemptible job of a remote queue (its slot is elsewhere).
    let mut r = core(1);
    set_queue(&mut r, "hpc", Some(Some(1)), true);
    r.apply(&Event::QueueExecutor {
        name: "hpc".into(),
        executor: mayfly_protocol::ExecutorSpec::Slurm {
            partition: None,
            args: Vec::new(),
        },
    })
    .unwrap();
    let remote = submit_preemptible(&mut r, 0, "hpc", 99);
    assert_eq!(start_all(&mut r, 1), vec![remote]);
    submit(&mut r, 2, "hpc", 1);
    assert_eq!(r.next_start(Timestamp(2)), None);
}

#[test]
fn a_full_queue_freezes_only_its_own_jobs() {
    let mut c = core(3);
    set_queue(&mut c, "gpu", Some(Some(1)), true);
    let elsewhere = submit_preemptible(&mut c, 0, "default", 90);
    let train = submit_preemptible(&mut c, 0, "gpu", 60);
    assert_eq!(start_all(&mut c, 1), vec![train, elsewhere]);
    // Queue-bound: only `train` frees a gpu slot, though `elsewhere` is
    // less urgent.
    let eval = submit(&mut c, 2, "gpu", 20);
    assert_eq!(
        c.next_start(Timestamp(2)),
        Some(Event::Frozen {
            id: train,
            at: Timestamp(2),
            by: eval
        })
    );
    assert_eq!(start_all(&mut c, 2), vec![train, eval]);
    // Bound by the global limit alone: any preemptible job will do, the
    // least urgent first.
    let filler = submit(&mut c, 3, "default", 50);
    assert_eq!(start_all(&mut c, 3), vec![filler]);
    let urgent = submit(&mut c, 4, "default", 5);
    assert_eq!(
        c.next_start(Timestamp(4)),
        Some(Event::Frozen {
            id: elsewhere,
            at: Timestamp(4),
            by: urgent
        })
    );
}

#[test]
fn a_frozen_job_times_out_on_its_running_time_and_survives_a_snapshot() {
    let mut c = core(1);
    let mut s = spec("default", 90);
    s.set_preemptible(true);
    s.timeout_ms = Some(10_000);
    let low = submit_spec(&mut c, 0, s);
    assert_eq!(start_all(&mut c, 0), vec![low]);
    let urgent = submit(&mut c, 4_000, "default", 10);
    assert_eq!(start_all(&mut c, 4_000), vec![low, urgent]);

    // Frozen from 4s to 104s: nothing times out meanwhile.
    assert!(c.due_events(Timestamp(50_000)).is_empty());
    let snap = c.snapshot();
    assert!(
        snap.job_ext
            .iter()
            .any(|(id, ext)| *id == low && ext.contains(&super::JobExt::Frozen(Timestamp(4_000)))),
        "{:?}",
        snap.job_ext
    );
    let mut restored = Core::from_snapshot(c.config().clone(), snap).unwrap();
    assert!(restored.job_info(low).unwrap().preempted);
    exit(&mut restored, 5_000, urgent, 0);
    assert_eq!(
        start_all(&mut restored, 5_000),
        vec![low],
        "thawed after the restore"
    );

    exit(&mut c, 104_000, urgent, 0);
    assert_eq!(start_all(&mut c, 104_000), vec![low]);
    // 6s of its 10s are left: it times out at 110s, not 10s.
    assert!(c.due_events(Timestamp(109_999)).is_empty());
    assert!(matches!(
        c.due_events(Timestamp(110_000)).as_slice(),
        [Event::StopRequested { id, reason: StopReason::Timeout, .. }] if *id == low
    ));
}

#[test]
fn stopping_a_frozen_job_thaws_it_and_resume_running_leaves_it_frozen() {
    let mut c = core(1);
    let low = submit_preemptible(&mut c, 0, "default", 90);
    assert_eq!(start_all(&mut c, 0), vec![low]);
    submit(&mut c, 1, "default", 10);
    start_all(&mut c, 1);
    let _ = signals(&mut c);
    // resume --running thaws what pause --running froze, not what a more
    // urgent job froze.
    for paused in [true, false] {
        c.apply(&Event::QueuePaused {
            name: "default".into(),
            paused,
            signal_running: true,
        })
        .unwrap();
    }
    assert!(signals(&mut c).iter().all(|(id, _)| *id != low));
    // A cancel sends SIGTERM, then SIGCONT so it can act on it.
    let (_, ev) = c.decide_cancel(Timestamp(2), low);
    c.apply(&ev.expect("a stop request")).unwrap();
    assert_eq!(
        signals(&mut c),
        vec![(low, Signal::Term), (low, Signal::Cont)]
    );
    c.apply(&Event::Exited {
        id: low,
        at: Timestamp(3),
        outcome: ExitOutcome::Signal(15),
    })
    .unwrap();
    assert_eq!(c.state_of(low), Some(JobState::Cancelled));
    assert!(!c.job_info(low).unwrap().preempted);
}
