//! The seed corpora: real inputs of each decoder, made by the code that
//! makes them in Mayfly (the protocol's encoder, the log's record and
//! snapshot writers, the scheduler's own state), not pasted bytes.
//!
//! `examples/gen_corpus.rs` writes them to `fuzz/corpus/TARGET/NAME`; run
//! it again after a format changes:
//!
//! ```text
//! cargo run --manifest-path fuzz/Cargo.toml --example gen_corpus
//! ```

use mayfly_protocol::{
    Activity, ActivityRecord, Attempt, CancelOutcome, CancelRequest, CleanRequest, Command, DepRef,
    Dependency, EditRequest, ErrorKind, ErrorResponse, EventsRequest, ExecutorSpec, Hello,
    HelloReply, JobId, JobInfo, JobSpec, JobState, LogStream, LogsRequest, MAGIC, PROTOCOL_VERSION,
    PauseRequest, ProgressRequest, QueueInfo, QueueRemoveRequest, QueueSetRequest, Request,
    Response, RestartRequest, SchedulerInfo, ShutdownRequest, StateCounts, StateHeader,
    StatusRequest, SubmitBatchRequest, SubmitRequest, SystemTaskInfo, Timestamp, Usage,
    WaitRequest, encode_frame,
};
use mayflyd::core::{
    Core, CoreConfig, EVENT_FORMAT, Event, ExitOutcome, SNAPSHOT_FORMAT, StopReason,
};
use mayflyd::journal::encode_event;
use mayflyd::wal::fuzzing::{encode_record, segment_header, snapshot_file};

/// One seed: the target it feeds, a file name, the bytes.
pub type Seed = (&'static str, String, Vec<u8>);

/// Every seed of every target.
pub fn all() -> Vec<Seed> {
    let mut seeds = Vec::new();
    seeds.extend(frame());
    seeds.extend(handshake());
    seeds.extend(wal_record());
    seeds.extend(snapshot());
    seeds.extend(json_line());
    seeds.extend(config_file());
    seeds
}

/// A frame as the protocol writes it.
fn frame_of<T: serde::Serialize>(msg: &T) -> Vec<u8> {
    encode_frame(msg).expect("a seed message encodes")
}

/// A job spec with most fields set, as `submit` with many flags sends it.
fn rich_spec() -> JobSpec {
    let mut spec = JobSpec::new(
        Command::Shell("make -j4 test > test.log".into()),
        "/home/me/project",
        "ci",
        10,
    );
    spec.env = vec![
        ("HOME".into(), "/home/me".into()),
        ("PATH".into(), "/usr/bin:/bin".into()),
    ];
    spec.labels = vec![("team".into(), "ml".into())];
    spec.after = vec![
        Dependency {
            on: DepRef::Job(JobId(7)),
            any_outcome: false,
        },
        Dependency {
            on: DepRef::Job(JobId(8)),
            any_outcome: true,
        },
    ];
    spec.not_before = Some(Timestamp(1_700_000_060_000));
    spec.timeout_ms = Some(30_000);
    spec.retries = 3;
    spec.retry_delay_ms = 2_000;
    spec
}

/// A plain `submit -- make test`.
fn plain_spec() -> JobSpec {
    JobSpec::new(
        Command::Argv(
            vec!["make".into(), "test".into()]
                .try_into()
                .expect("a program"),
        ),
        "/home/me/project",
        "default",
        50,
    )
}

/// A finished job as `status` reports it.
fn job_info(id: u64, state: JobState) -> JobInfo {
    JobInfo {
        id: JobId(id),
        state,
        command: Command::Argv(
            vec!["./build.sh".into(), "--release".into()]
                .try_into()
                .expect("a program"),
        ),
        cwd: "/home/me/project".into(),
        queue: "default".into(),
        priority: 50,
        labels: vec![("step".into(), "build".into())],
        exit_code: Some(1),
        signal: None,
        attempts: 2,
        submitted_at: Timestamp(1_700_000_000_000),
        started_at: Some(Timestamp(1_700_000_001_000)),
        finished_at: Some(Timestamp(1_700_000_002_500)),
        progress: Some("3/10".into()),
        reason: None,
        pid: None,
        remote_id: None,
        after: vec![(JobId(1), false)],
        not_before: None,
        timeout_ms: Some(60_000),
        retries: 1,
        retry_at: None,
        history: vec![Attempt {
            started_at: Timestamp(1_700_000_000_500),
            finished_at: Timestamp(1_700_000_000_900),
            exit_code: Some(1),
            signal: None,
        }],
        usage: None,
        preempted: false,
    }
}

/// Every request kind, and every response kind, one frame each, plus a
/// pipelined stream and two broken frames.
fn frame() -> Vec<Seed> {
    let requests = vec![
        (
            "submit-argv",
            Request::Submit(SubmitRequest { spec: plain_spec() }),
        ),
        (
            "submit-rich",
            Request::Submit(SubmitRequest { spec: rich_spec() }),
        ),
        ("status-all", Request::Status(StatusRequest { ids: vec![] })),
        (
            "status-ids",
            Request::Status(StatusRequest {
                ids: vec![JobId(1), JobId(2), JobId(300)],
            }),
        ),
        (
            "cancel",
            Request::Cancel(CancelRequest {
                ids: vec![JobId(4)],
            }),
        ),
        (
            "wait",
            Request::Wait(WaitRequest {
                ids: vec![JobId(4), JobId(5)],
            }),
        ),
        (
            "logs",
            Request::Logs(LogsRequest {
                id: JobId(9),
                stream: LogStream::Stderr,
                follow: true,
            }),
        ),
        ("dump-state", Request::DumpState),
        (
            "shutdown",
            Request::Shutdown(ShutdownRequest {
                timeout_ms: Some(5_000),
            }),
        ),
        ("events", Request::Events(EventsRequest { follow: true })),
        (
            "submit-batch",
            Request::SubmitBatch(SubmitBatchRequest {
                specs: vec![plain_spec(), {
                    let mut s = plain_spec();
                    s.after = vec![Dependency {
                        on: DepRef::BatchLine(1),
                        any_outcome: false,
                    }];
                    s
                }],
            }),
        ),
        (
            "queue-set",
            Request::QueueSet(QueueSetRequest {
                name: "gpu".into(),
                concurrency: Some(Some(2)),
                create: true,
                executor: Some(ExecutorSpec::Slurm {
                    partition: Some("debug".into()),
                    args: vec!["--mem=1G".into()],
                }),
            }),
        ),
        (
            "queue-remove",
            Request::QueueRemove(QueueRemoveRequest { name: "gpu".into() }),
        ),
        ("queue-list", Request::QueueList),
        (
            "pause",
            Request::Pause(PauseRequest {
                queues: vec!["gpu".into()],
                paused: true,
                running: true,
            }),
        ),
        (
            "restart",
            Request::Restart(RestartRequest {
                ids: vec![JobId(3)],
            }),
        ),
        (
            "clean",
            Request::Clean(CleanRequest {
                states: vec![JobState::Succeeded, JobState::Failed],
                older_than_ms: Some(86_400_000),
            }),
        ),
        (
            "edit",
            Request::Edit(EditRequest {
                id: JobId(12),
                priority: Some(5),
                queue: Some("fast".into()),
                labels: Some(vec![("k".into(), "v".into())]),
            }),
        ),
        (
            "progress",
            Request::Progress(ProgressRequest {
                id: JobId(12),
                text: "50%".into(),
            }),
        ),
    ];
    let counts = StateCounts {
        queued: 2,
        running: 1,
        succeeded: 40,
        ..StateCounts::default()
    };
    let responses = vec![
        ("submitted", Response::Submitted { id: JobId(42) }),
        (
            "jobs",
            Response::Jobs(vec![
                job_info(1, JobState::Failed),
                job_info(2, JobState::Queued),
            ]),
        ),
        (
            "cancelled",
            Response::Cancelled(vec![
                (JobId(1), CancelOutcome::Signalled),
                (JobId(2), CancelOutcome::AlreadyEnded(JobState::Succeeded)),
                (JobId(3), CancelOutcome::NotFound),
            ]),
        ),
        (
            "job-ended",
            Response::JobEnded(Box::new(job_info(5, JobState::TimedOut))),
        ),
        (
            "log-chunk",
            Response::LogChunk(b"building...\nok\n".to_vec()),
        ),
        (
            "state",
            Response::State(StateHeader {
                scheduler: SchedulerInfo {
                    concurrency: 4,
                    quantum_ms: 10,
                    next_job_id: 43,
                    jobs_submitted: 42,
                    jobs_started: 41,
                    jobs_finished: 40,
                    shutting_down: false,
                },
                queues: vec![QueueInfo {
                    name: "default".into(),
                    concurrency: None,
                    paused: false,
                    counts,
                    executor: ExecutorSpec::Local,
                }],
                system_tasks: vec![SystemTaskInfo {
                    name: "looptask_wal_flush".into(),
                    priority: 0,
                    state: "running".into(),
                    started_at: Timestamp(1_700_000_000_000),
                }],
            }),
        ),
        ("shutting-down", Response::ShuttingDown),
        ("end", Response::End),
        (
            "error",
            Response::Error(ErrorResponse::new(
                ErrorKind::NotFound,
                "no job 99; `mayflyctl status` lists the jobs",
            )),
        ),
        (
            "event",
            Response::Event(ActivityRecord {
                seq: 7,
                at: Timestamp(1_700_000_000_000),
                event: Activity::JobFinished {
                    id: JobId(3),
                    queue: "default".into(),
                    state: JobState::Failed,
                    exit_code: Some(2),
                    signal: None,
                    ran_ms: Some(1_500),
                    reason: None,
                    usage: Some(Usage {
                        cpu_user_ms: 1_200,
                        cpu_sys_ms: 80,
                        max_rss_kib: 10_240,
                    }),
                },
            }),
        ),
        ("events-missed", Response::EventsMissed { count: 12 }),
        (
            "submitted-batch",
            Response::SubmittedBatch {
                ids: vec![JobId(43), JobId(44)],
            },
        ),
        (
            "queues",
            Response::Queues(vec![QueueInfo {
                name: "gpu".into(),
                concurrency: Some(2),
                paused: true,
                counts,
                executor: ExecutorSpec::A2a {
                    url: "http://127.0.0.1:9000/".into(),
                    token_file: Some("/home/me/.a2a-token".into()),
                },
            }]),
        ),
        (
            "restarted",
            Response::Restarted(vec![(JobId(3), JobId(45))]),
        ),
        (
            "cleaned",
            Response::Cleaned {
                ids: vec![JobId(1)],
            },
        ),
        ("ok", Response::Ok),
    ];
    let mut seeds: Vec<Seed> = Vec::new();
    for (name, req) in &requests {
        seeds.push(("frame", format!("request-{name}"), frame_of(req)));
    }
    for (name, resp) in &responses {
        seeds.push(("frame", format!("response-{name}"), frame_of(resp)));
    }
    // A client pipelining three requests in one write.
    let mut pipelined = Vec::new();
    for (_, req) in requests.iter().take(3) {
        pipelined.extend(frame_of(req));
    }
    seeds.push(("frame", "pipelined-requests".into(), pipelined));
    // A frame cut short, and a length prefix over the limit.
    let whole = frame_of(&requests[1].1);
    seeds.push((
        "frame",
        "truncated".into(),
        whole[..whole.len() / 2].to_vec(),
    ));
    seeds.push(("frame", "too-large".into(), vec![0x01, 0x00, 0x00, 0x01, 0]));
    seeds
}

/// Opening bytes of connections, both ways.
fn handshake() -> Vec<Seed> {
    let status = frame_of(&Request::Status(StatusRequest { ids: vec![] }));
    let hellos = [
        ("hello", Hello::current()),
        (
            "hello-bad-magic",
            Hello {
                magic: *b"NOTMAYFL",
                ..Hello::current()
            },
        ),
        (
            "hello-old-client",
            Hello {
                magic: MAGIC,
                min_version: 1,
                max_version: 1,
            },
        ),
        (
            "hello-any-version",
            Hello {
                magic: MAGIC,
                min_version: 0,
                max_version: u32::MAX,
            },
        ),
    ];
    let mut seeds: Vec<Seed> = Vec::new();
    for (name, hello) in &hellos {
        seeds.push(("handshake", name.to_string(), frame_of(hello)));
        let mut with_request = frame_of(hello);
        with_request.extend_from_slice(&status);
        seeds.push(("handshake", format!("{name}-then-status"), with_request));
    }
    let accepted = HelloReply::Accepted {
        version: PROTOCOL_VERSION,
        daemon_version: "0.1.0".into(),
    };
    let rejected = Hello {
        magic: MAGIC,
        min_version: 1,
        max_version: 1,
    }
    .negotiate();
    seeds.push(("handshake", "reply-accepted".into(), frame_of(&accepted)));
    seeds.push(("handshake", "reply-rejected".into(), frame_of(&rejected)));
    let hello = frame_of(&Hello::current());
    seeds.push(("handshake", "hello-truncated".into(), hello[..7].to_vec()));
    seeds
}

/// One of each event the daemon logs, in an order a day could bring.
fn events() -> Vec<Event> {
    let at = Timestamp(1_700_000_000_000);
    vec![
        Event::QueueConfigured {
            name: "gpu".into(),
            concurrency: Some(2),
        },
        Event::Submitted {
            id: JobId(1),
            at,
            spec: plain_spec(),
        },
        Event::Submitted {
            id: JobId(2),
            at,
            spec: rich_spec(),
        },
        Event::Started { id: JobId(1), at },
        Event::Spawned {
            id: JobId(1),
            pid: 4242,
            start_ticks: 123_456,
        },
        Event::Progress {
            id: JobId(1),
            text: "3/10".into(),
        },
        Event::Usage {
            id: JobId(1),
            usage: Usage {
                cpu_user_ms: 250,
                cpu_sys_ms: 12,
                max_rss_kib: 61_440,
            },
        },
        Event::Exited {
            id: JobId(1),
            at,
            outcome: ExitOutcome::Code(0),
        },
        Event::CallbackDue { id: JobId(1) },
        Event::CallbackDone { id: JobId(1) },
        Event::Frozen {
            id: JobId(2),
            at,
            by: JobId(3),
        },
        Event::Thawed { id: JobId(2), at },
        Event::TimeReached { id: JobId(2), at },
        Event::Edited {
            id: JobId(2),
            priority: 5,
            queue: "gpu".into(),
            labels: vec![("k".into(), "v".into())],
        },
        Event::StopRequested {
            id: JobId(2),
            at,
            reason: StopReason::Timeout,
            grace_ms: 5_000,
        },
        Event::Exited {
            id: JobId(2),
            at,
            outcome: ExitOutcome::Signal(9),
        },
        Event::Exited {
            id: JobId(3),
            at,
            outcome: ExitOutcome::SpawnFailed("could not start: No such file or directory".into()),
        },
        Event::Cancelled { id: JobId(4), at },
        Event::Interrupted { id: JobId(5), at },
        Event::QueuePaused {
            name: "gpu".into(),
            paused: true,
            signal_running: false,
        },
        Event::Removed {
            ids: vec![JobId(1), JobId(2)],
        },
        Event::QueueRemoved { name: "gpu".into() },
        Event::IdsReserved { next_id: 10 },
        Event::StartDeferred {
            id: JobId(6),
            at,
            retry_at: Timestamp(1_700_000_001_000),
            reason: "could not start: Too many open files".into(),
        },
        Event::QueueExecutor {
            name: "hpc".into(),
            executor: ExecutorSpec::Slurm {
                partition: None,
                args: vec!["--time=10".into()],
            },
        },
        Event::Attached {
            id: JobId(7),
            remote_id: "1234".into(),
        },
    ]
}

/// A segment numbered `seq` holding `events`, as the log writes it.
fn segment(seq: u64, events: &[Event]) -> Vec<u8> {
    let mut file = segment_header(seq);
    for event in events {
        file.extend_from_slice(&encode_record(EVENT_FORMAT, &encode_event(event)));
    }
    file
}

/// Segments: the whole day, each event alone, an empty one, and the shapes
/// a crash leaves (a torn last record, zeros reserved after the records).
fn wal_record() -> Vec<Seed> {
    let events = events();
    let mut seeds: Vec<Seed> = Vec::new();
    let day = segment(1, &events);
    seeds.push(("wal_record", "segment-day".into(), day.clone()));
    seeds.push(("wal_record", "segment-empty".into(), segment_header(3)));
    for (i, event) in events.iter().enumerate() {
        seeds.push((
            "wal_record",
            format!("record-{i:02}"),
            segment(2, std::slice::from_ref(event)),
        ));
    }
    let two = segment(4, &events[1..3]);
    seeds.push((
        "wal_record",
        "segment-torn-tail".into(),
        two[..two.len() - 5].to_vec(),
    ));
    let mut reserved = segment(5, &events[..2]);
    reserved.resize(reserved.len() + 64, 0);
    seeds.push(("wal_record", "segment-preallocated".into(), reserved));
    seeds
}

/// A scheduler's state after some jobs: one done, one running, one waiting
/// for it, in two queues.
fn busy_core() -> Core {
    let mut core = Core::new(CoreConfig::default());
    let now = Timestamp(1_700_000_000_000);
    let apply = |core: &mut Core, event: Event| {
        core.apply(&event).expect("a seed event applies");
    };
    let gpu = core
        .decide_queue_set("gpu", Some(Some(1)), true, None)
        .expect("a new queue");
    for event in gpu {
        apply(&mut core, event);
    }
    for spec in [plain_spec(), plain_spec()] {
        let submitted = core.decide_submit(now, spec).expect("a valid job");
        apply(&mut core, submitted);
    }
    let start = core.next_start(now).expect("a job to start");
    apply(&mut core, start);
    apply(
        &mut core,
        Event::Usage {
            id: JobId(1),
            usage: Usage {
                cpu_user_ms: 7,
                cpu_sys_ms: 3,
                max_rss_kib: 2_048,
            },
        },
    );
    apply(
        &mut core,
        Event::Exited {
            id: JobId(1),
            at: now.plus_millis(1_000),
            outcome: ExitOutcome::Code(0),
        },
    );
    let start = core.next_start(now).expect("a second job to start");
    apply(&mut core, start);
    let mut waiting = rich_spec();
    waiting.queue = "gpu".into();
    waiting.after = vec![Dependency {
        on: DepRef::Job(JobId(2)),
        any_outcome: false,
    }];
    let submitted = core.decide_submit(now, waiting).expect("a valid job");
    apply(&mut core, submitted);
    core
}

/// Snapshot files of an empty and of a busy state, and their bare
/// payloads; and a format-1 snapshot file as an older daemon wrote it (the
/// fixture of the end-to-end upgrade test).
fn snapshot() -> Vec<Seed> {
    let empty = Core::new(CoreConfig::default()).snapshot();
    let busy = busy_core().snapshot();
    let mut seeds: Vec<Seed> = Vec::new();
    for (name, snap) in [("empty", empty), ("busy", busy)] {
        let payload = snap.encode().expect("a snapshot encodes");
        seeds.push((
            "snapshot",
            format!("file-{name}"),
            snapshot_file(7, SNAPSHOT_FORMAT, &payload),
        ));
        seeds.push(("snapshot", format!("payload-{name}"), payload));
    }
    let v1 = include_bytes!("../../tests/fixtures/snapshot-v1/wal/00000000000000000005.snap");
    seeds.push(("snapshot", "file-format-1".into(), v1.to_vec()));
    seeds
}

/// Lines of `submit --json-input`: the help's examples and every field.
fn json_line() -> Vec<Seed> {
    let inputs = [
        (
            "argv",
            r#"{"command": ["make", "build"], "labels": {"step": "build"}}"#,
        ),
        (
            "shell-after-line",
            "{\"command\": [\"make\", \"build\"]}\n{\"command\": \"make test > test.log\", \"after_lines\": [1], \"timeout\": \"10m\"}",
        ),
        (
            "every-field",
            r#"{"command": "make test", "queue": "ci", "priority": 10, "after": [7], "after_any": [8], "labels": {"team": "ml"}, "env": {"CI": "1"}, "cwd": "out", "timeout": "30s", "retries": 2, "retry_delay": "2s", "delay": "5s"}"#,
        ),
        (
            "at-rfc3339",
            r#"{"command": "x", "at": "2030-01-01T09:00:00+02:00"}"#,
        ),
        ("at-clock", r#"{"command": "x", "at": "23:30"}"#),
        (
            "comments-and-blanks",
            "# jobs\n\n{\"command\": [\"a\"]}\n  # more\n{\"command\": [\"b\"], \"after_any_lines\": [3]}\r\n",
        ),
        ("unknown-field", r#"{"command": "x", "timeot": "5s"}"#),
        ("empty-command", r#"{"command": []}"#),
        ("not-json", "make test"),
        ("bad-priority", r#"{"command": "x", "priority": 0}"#),
        (
            "forward-reference",
            "{\"command\": \"a\", \"after_lines\": [2]}\n{\"command\": \"b\"}",
        ),
        (
            "delay-and-at",
            r#"{"command": "x", "delay": "1s", "at": "10:00"}"#,
        ),
    ];
    inputs
        .iter()
        .map(|(name, text)| {
            (
                "json_line",
                name.to_string(),
                format!("{text}\n").into_bytes(),
            )
        })
        .collect()
}

/// Config files: every key, a minimal one, and the mistakes a person makes.
fn config_file() -> Vec<Seed> {
    let inputs = [
        (
            "every-key",
            r#"# mayflyd settings
socket = "/run/user/1000/mayfly/mayfly.sock"
state_dir = "~/.local/state/mayfly"
concurrency = 4
quantum = "10ms"
shutdown_timeout = "10s"
kill_grace = "5s"
wal_flush_interval = "100ms"
snapshot_bytes = 67108864
http_addr = "127.0.0.1:9479"
push_gateway = "http://127.0.0.1:9091"
metrics_interval = "10s"
log_format = "json"
"#,
        ),
        ("minimal", "concurrency = 2\n"),
        ("empty", ""),
        ("http-off", "http_addr = \"off\"\nlog_format = \"text\"\n"),
        ("unknown-key", "concurency = 4\n"),
        ("wrong-type", "concurrency = \"four\"\n"),
        ("bad-duration", "quantum = \"soon\"\n"),
        ("relative-path", "state_dir = \"state\"\n"),
        ("not-toml", "concurrency: 4\n[[[\n"),
    ];
    inputs
        .iter()
        .map(|(name, text)| ("config_file", name.to_string(), text.as_bytes().to_vec()))
        .collect()
}
