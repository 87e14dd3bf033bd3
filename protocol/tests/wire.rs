//! Tests of the wire format as a peer sees it: round trips of every message
//! through both framings (the blocking one the client uses and the tokio-util
//! codec the daemon uses), encodings pinned byte for byte, hostile input, and
//! the handshake's negotiation rules.
//!
//! Conventions:
//! - `examples_*` functions list one value of every variant; the exhaustive
//!   `*_variant` matches make the build fail when a variant is appended, so a
//!   new message kind cannot slip past these tests unexercised.
//! - Pinned encodings were computed once with `encode_frame` and written down
//!   as literals. If one of those tests fails, the wire changed: either undo
//!   the change or bump `PROTOCOL_VERSION` and update the literal on purpose.

use std::collections::BTreeSet;
use std::io::{Cursor, Read};

use mayfly_protocol::{
    Argv, CancelOutcome, CancelRequest, Command, ErrorKind, ErrorResponse, FrameError, Hello,
    HelloReply, JobId, JobInfo, JobInfoRef, JobSpec, JobState, JobsRef, LogStream, LogsRequest,
    MAGIC, MAX_FRAME_LEN, PROTOCOL_VERSION, QueueInfo, Request, Response, SchedulerInfo,
    ShutdownRequest, SpecExt, StateCounts, StateHeader, StatusRequest, SubmitRequest,
    SystemTaskInfo, Timestamp, WaitRequest, decode_payload, encode_frame, encode_payload,
    read_frame,
};
use proptest::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Encodes `msg` with `encode_frame` and reads it back with `read_frame`,
/// checking that the stream is exhausted afterwards.
fn blocking_round_trip<T>(msg: &T) -> T
where
    T: Serialize + DeserializeOwned + std::fmt::Debug,
{
    let bytes = encode_frame(msg).expect("encodes");
    let mut cursor = Cursor::new(bytes);
    let back: T = read_frame(&mut cursor)
        .expect("decodes")
        .expect("one frame present");
    let rest: Option<T> = read_frame(&mut cursor).expect("clean end of stream");
    assert!(
        rest.is_none(),
        "a single frame must decode to a single message"
    );
    back
}

/// A small job spec used by several fixed examples.
fn sample_spec() -> JobSpec {
    JobSpec {
        command: Command::Argv(
            vec!["echo".into(), "hi".into()]
                .try_into()
                .expect("a program"),
        ),
        cwd: "/tmp".into(),
        env: vec![("K".into(), "V".into())],
        queue: "default".into(),
        priority: 50,
        labels: vec![("team".into(), "ops".into())],
        after: Vec::new(),
        not_before: None,
        timeout_ms: None,
        retries: 0,
        retry_delay_ms: 1_000,
        ext: Vec::new(),
    }
}

/// A job report with every optional field filled in.
fn sample_info() -> JobInfo {
    JobInfo {
        id: JobId(3),
        state: JobState::Failed,
        command: Command::Shell("make test | tee log".into()),
        cwd: "/home/me/src".into(),
        queue: "build".into(),
        priority: 10,
        labels: vec![("ci".into(), "yes".into())],
        exit_code: None,
        signal: Some(9),
        attempts: 2,
        submitted_at: Timestamp(1_700_000_000_000),
        started_at: Some(Timestamp(1_700_000_001_000)),
        finished_at: Some(Timestamp(1_700_000_002_500)),
        progress: Some("40%".into()),
        reason: Some("killed by SIGKILL".into()),
        pid: Some(4242),
        after: vec![],
        not_before: None,
        timeout_ms: None,
        retries: 0,
        retry_at: None,
        history: vec![],
        remote_id: Some("4711".into()),
        usage: Some(mayfly_protocol::Usage {
            cpu_user_ms: 1_250,
            cpu_sys_ms: 40,
            max_rss_kib: 65_536,
        }),
        preempted: true,
    }
}

/// The position of a request variant; exhaustive so that an appended variant
/// breaks the build here until the examples below cover it.
fn request_variant(r: &Request) -> usize {
    match r {
        Request::Submit(_) => 0,
        Request::Status(_) => 1,
        Request::Cancel(_) => 2,
        Request::Wait(_) => 3,
        Request::Logs(_) => 4,
        Request::DumpState => 5,
        Request::Shutdown(_) => 6,
        Request::Events(_) => 7,
        Request::SubmitBatch(_) => 8,
        Request::QueueSet(_) => 9,
        Request::QueueRemove(_) => 10,
        Request::QueueList => 11,
        Request::Pause(_) => 12,
        Request::Restart(_) => 13,
        Request::Clean(_) => 14,
        Request::Edit(_) => 15,
        Request::Progress(_) => 16,
    }
}

/// How many request variants [`request_variant`] knows.
const REQUEST_VARIANTS: usize = 17;

/// The position of a response variant; exhaustive like [`request_variant`].
fn response_variant(r: &Response) -> usize {
    match r {
        Response::Submitted { .. } => 0,
        Response::Jobs(_) => 1,
        Response::Cancelled(_) => 2,
        Response::JobEnded(_) => 3,
        Response::LogChunk(_) => 4,
        Response::State(_) => 5,
        Response::ShuttingDown => 6,
        Response::End => 7,
        Response::Error(_) => 8,
        Response::Event(_) => 9,
        Response::EventsMissed { .. } => 10,
        Response::SubmittedBatch { .. } => 11,
        Response::Queues(_) => 12,
        Response::Restarted(_) => 13,
        Response::Cleaned { .. } => 14,
        Response::Ok => 15,
    }
}

/// How many response variants [`response_variant`] knows.
const RESPONSE_VARIANTS: usize = 16;

/// One example of each request kind added for job control.
fn job_control_requests() -> Vec<Request> {
    use mayfly_protocol::*;
    let mut with_deps = sample_spec();
    with_deps.after = vec![Dependency {
        on: DepRef::BatchLine(1),
        any_outcome: false,
    }];
    with_deps.not_before = Some(Timestamp(9));
    with_deps.timeout_ms = Some(30_000);
    with_deps.retries = 3;
    vec![
        Request::SubmitBatch(SubmitBatchRequest {
            specs: vec![sample_spec(), with_deps],
        }),
        Request::QueueSet(QueueSetRequest {
            name: "gpu".into(),
            concurrency: Some(Some(1)),
            create: true,
            executor: Some(mayfly_protocol::ExecutorSpec::Slurm {
                partition: Some("debug".into()),
                args: vec!["--mem=2G".into()],
            }),
        }),
        Request::QueueRemove(QueueRemoveRequest { name: "gpu".into() }),
        Request::QueueList,
        Request::Pause(PauseRequest {
            queues: vec![],
            paused: true,
            running: true,
        }),
        Request::Restart(RestartRequest {
            ids: vec![JobId(4)],
        }),
        Request::Clean(CleanRequest {
            states: vec![JobState::Succeeded],
            older_than_ms: Some(60_000),
        }),
        Request::Edit(EditRequest {
            id: JobId(2),
            priority: Some(3),
            queue: None,
            labels: Some(vec![]),
        }),
        Request::Progress(ProgressRequest {
            id: JobId(2),
            text: "40%".into(),
        }),
    ]
}

/// One activity record of each kind.
fn sample_activities() -> Vec<mayfly_protocol::ActivityRecord> {
    use mayfly_protocol::Activity as A;
    let events = vec![
        A::SchedulerBoot {
            version: "0.1.0".into(),
            concurrency: 2,
            recovered_jobs: 5,
            replayed_records: 12,
            replay_ms: 3,
            interrupted_jobs: 1,
        },
        A::ShutdownBegin {
            reason: "signal SIGTERM".into(),
            timeout_ms: 10_000,
            running_jobs: 2,
        },
        A::ShutdownComplete { uptime_ms: 99 },
        A::SystemTaskStart {
            name: "looptask_wal_flush".into(),
            priority: 0,
        },
        A::SystemTaskExit {
            name: "looptask_metrics".into(),
            ok: false,
            error: Some("boom".into()),
        },
        A::JobSubmitted {
            id: JobId(1),
            queue: "default".into(),
            priority: 50,
            command: "echo hi".into(),
        },
        A::JobStarted {
            id: JobId(1),
            queue: "default".into(),
            attempt: 1,
            pid: 77,
            waited_ms: 4,
        },
        A::JobStopRequested {
            id: JobId(1),
            reason: "cancel".into(),
            grace_ms: 5000,
        },
        A::JobFinished {
            id: JobId(1),
            queue: "default".into(),
            state: JobState::Cancelled,
            exit_code: None,
            signal: Some(15),
            ran_ms: Some(8),
            reason: None,
            usage: None,
        },
    ];
    events
        .into_iter()
        .enumerate()
        .map(|(i, event)| mayfly_protocol::ActivityRecord {
            seq: i as u64 + 1,
            at: Timestamp(1_700_000_000_000 + i as u64),
            event,
        })
        .collect()
}

/// One request of every kind.
fn examples_requests() -> Vec<Request> {
    vec![
        SubmitRequest {
            spec: sample_spec(),
        }
        .into(),
        StatusRequest { ids: vec![] }.into(),
        CancelRequest {
            ids: vec![JobId(1), JobId(2)],
        }
        .into(),
        WaitRequest {
            ids: vec![JobId(u64::MAX)],
        }
        .into(),
        LogsRequest {
            id: JobId(5),
            stream: LogStream::Stderr,
            follow: true,
        }
        .into(),
        Request::DumpState,
        ShutdownRequest { timeout_ms: None }.into(),
        mayfly_protocol::EventsRequest { follow: true }.into(),
    ]
    .into_iter()
    .chain(job_control_requests())
    .collect()
}

/// One response of every kind.
fn examples_responses() -> Vec<Response> {
    vec![
        Response::Submitted { id: JobId(7) },
        Response::Jobs(vec![sample_info(), sample_info()]),
        Response::Cancelled(vec![
            (JobId(1), CancelOutcome::Cancelled),
            (JobId(2), CancelOutcome::Signalled),
            (JobId(3), CancelOutcome::AlreadyEnded(JobState::Succeeded)),
            (JobId(4), CancelOutcome::NotFound),
        ]),
        Response::JobEnded(Box::new(sample_info())),
        Response::LogChunk(vec![0, 1, 2, 250, 251, 252, 253, 254, 255]),
        Response::State(StateHeader {
            scheduler: SchedulerInfo {
                concurrency: 4,
                quantum_ms: 10,
                next_job_id: 8,
                jobs_submitted: 7,
                jobs_started: 6,
                jobs_finished: 5,
                shutting_down: false,
            },
            queues: vec![QueueInfo {
                name: "default".into(),
                concurrency: None,
                paused: true,
                counts: StateCounts {
                    queued: 2,
                    ..StateCounts::default()
                },
                executor: mayfly_protocol::ExecutorSpec::Local,
            }],
            system_tasks: vec![SystemTaskInfo {
                name: "looptask_wal_flush".into(),
                priority: 0,
                state: "running".into(),
                started_at: Timestamp(1),
            }],
        }),
        Response::ShuttingDown,
        Response::End,
        Response::Error(ErrorResponse::new(ErrorKind::NotFound, "no job 9")),
    ]
    .into_iter()
    .chain(sample_activities().into_iter().map(Response::Event))
    .chain([
        Response::EventsMissed { count: 3 },
        Response::SubmittedBatch {
            ids: vec![JobId(5), JobId(6)],
        },
        Response::Queues(vec![]),
        Response::Restarted(vec![(JobId(1), JobId(9))]),
        Response::Cleaned {
            ids: vec![JobId(1)],
        },
        Response::Ok,
    ])
    .collect()
}

// ---------------------------------------------------------------------------
// Proptest strategies for every message type
// ---------------------------------------------------------------------------

/// Short strings, any Unicode (the wire carries UTF-8 verbatim).
fn text() -> impl Strategy<Value = String> {
    ".{0,12}"
}

/// `(key, value)` lists as used for env and labels.
fn pairs() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec((text(), text()), 0..4)
}

/// Any job id.
fn job_id() -> impl Strategy<Value = JobId> {
    any::<u64>().prop_map(JobId)
}

/// Any timestamp.
fn timestamp() -> impl Strategy<Value = Timestamp> {
    any::<u64>().prop_map(Timestamp)
}

/// Any command, argv or shell.
fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        (text(), prop::collection::vec(text(), 0..3))
            .prop_map(|(program, args)| Command::Argv(Argv::new(program, args))),
        text().prop_map(Command::Shell),
    ]
}

/// Any job state.
fn job_state() -> impl Strategy<Value = JobState> {
    prop::sample::select(JobState::ALL.to_vec())
}

/// Any job spec.
fn job_spec() -> impl Strategy<Value = JobSpec> {
    (command(), text(), pairs(), text(), any::<u8>(), pairs()).prop_map(
        |(command, cwd, env, queue, priority, labels)| JobSpec {
            command,
            cwd,
            env,
            queue,
            priority,
            labels,
            after: Vec::new(),
            not_before: None,
            timeout_ms: None,
            retries: 0,
            retry_delay_ms: 1_000,
            ext: vec![SpecExt::MaxOutput(u64::from(priority) << 10)],
        },
    )
}

/// Any job report.
fn job_info() -> impl Strategy<Value = JobInfo> {
    let head = (
        job_id(),
        job_state(),
        command(),
        text(),
        text(),
        any::<u8>(),
        pairs(),
    );
    let tail = (
        any::<Option<i32>>(),
        any::<Option<i32>>(),
        any::<u32>(),
        timestamp(),
        prop::option::of(timestamp()),
        prop::option::of(timestamp()),
        prop::option::of(text()),
        prop::option::of(text()),
        any::<Option<u32>>(),
    );
    let more = (
        prop::option::of(text()),
        prop::option::of((any::<u64>(), any::<u64>(), any::<u64>())),
        any::<bool>(),
    );
    (head, tail, more).prop_map(
        |(
            (id, state, command, cwd, queue, priority, labels),
            (
                exit_code,
                signal,
                attempts,
                submitted_at,
                started_at,
                finished_at,
                progress,
                reason,
                pid,
            ),
            (remote_id, usage, preempted),
        )| JobInfo {
            id,
            state,
            command,
            cwd,
            queue,
            priority,
            labels,
            exit_code,
            signal,
            attempts,
            submitted_at,
            started_at,
            finished_at,
            progress,
            reason,
            pid,
            after: vec![(JobId(1), true)],
            not_before: Some(Timestamp(5)),
            timeout_ms: Some(1000),
            retries: 2,
            retry_at: None,
            history: vec![mayfly_protocol::Attempt {
                started_at: Timestamp(1),
                finished_at: Timestamp(2),
                exit_code: Some(1),
                signal: None,
            }],
            remote_id,
            usage: usage.map(
                |(cpu_user_ms, cpu_sys_ms, max_rss_kib)| mayfly_protocol::Usage {
                    cpu_user_ms,
                    cpu_sys_ms,
                    max_rss_kib,
                },
            ),
            preempted,
        },
    )
}

/// Any per-state counters.
fn state_counts() -> impl Strategy<Value = StateCounts> {
    prop::array::uniform9(any::<u64>()).prop_map(|c| StateCounts {
        waiting: c[0],
        queued: c[1],
        running: c[2],
        succeeded: c[3],
        failed: c[4],
        cancelled: c[5],
        timed_out: c[6],
        skipped: c[7],
        interrupted: c[8],
    })
}

/// Any `dump-state` header.
fn state_header() -> impl Strategy<Value = StateHeader> {
    let scheduler = (
        any::<u32>(),
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        any::<bool>(),
    )
        .prop_map(
            |(
                concurrency,
                quantum_ms,
                next_job_id,
                jobs_submitted,
                jobs_started,
                jobs_finished,
                shutting_down,
            )| SchedulerInfo {
                concurrency,
                quantum_ms,
                next_job_id,
                jobs_submitted,
                jobs_started,
                jobs_finished,
                shutting_down,
            },
        );
    let queue = (text(), any::<Option<u32>>(), any::<bool>(), state_counts()).prop_map(
        |(name, concurrency, paused, counts)| QueueInfo {
            name,
            concurrency,
            paused,
            counts,
            executor: mayfly_protocol::ExecutorSpec::Local,
        },
    );
    let task = (text(), any::<u8>(), text(), timestamp()).prop_map(
        |(name, priority, state, started_at)| SystemTaskInfo {
            name,
            priority,
            state,
            started_at,
        },
    );
    (
        scheduler,
        prop::collection::vec(queue, 0..3),
        prop::collection::vec(task, 0..3),
    )
        .prop_map(|(scheduler, queues, system_tasks)| StateHeader {
            scheduler,
            queues,
            system_tasks,
        })
}

/// Any error class.
fn error_kind() -> impl Strategy<Value = ErrorKind> {
    prop::sample::select(vec![
        ErrorKind::BadRequest,
        ErrorKind::NotFound,
        ErrorKind::ShuttingDown,
        ErrorKind::Storage,
        ErrorKind::Protocol,
        ErrorKind::Internal,
    ])
}

/// Any cancel outcome.
fn cancel_outcome() -> impl Strategy<Value = CancelOutcome> {
    prop_oneof![
        Just(CancelOutcome::Cancelled),
        Just(CancelOutcome::Signalled),
        job_state().prop_map(CancelOutcome::AlreadyEnded),
        Just(CancelOutcome::NotFound),
    ]
}

/// Lists of job ids.
fn ids() -> impl Strategy<Value = Vec<JobId>> {
    prop::collection::vec(job_id(), 0..5)
}

/// Any request.
fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        job_spec().prop_map(|spec| SubmitRequest { spec }.into()),
        ids().prop_map(|ids| StatusRequest { ids }.into()),
        ids().prop_map(|ids| CancelRequest { ids }.into()),
        ids().prop_map(|ids| WaitRequest { ids }.into()),
        (
            job_id(),
            prop_oneof![Just(LogStream::Stdout), Just(LogStream::Stderr)],
            any::<bool>()
        )
            .prop_map(|(id, stream, follow)| LogsRequest { id, stream, follow }.into()),
        Just(Request::DumpState),
        any::<Option<u64>>().prop_map(|timeout_ms| ShutdownRequest { timeout_ms }.into()),
        any::<bool>().prop_map(|follow| mayfly_protocol::EventsRequest { follow }.into()),
        (0..9usize).prop_map(|i| job_control_requests()[i].clone()),
    ]
}

/// Any response.
fn response() -> impl Strategy<Value = Response> {
    prop_oneof![
        job_id().prop_map(|id| Response::Submitted { id }),
        prop::collection::vec(job_info(), 0..3).prop_map(Response::Jobs),
        prop::collection::vec((job_id(), cancel_outcome()), 0..4).prop_map(Response::Cancelled),
        job_info().prop_map(|j| Response::JobEnded(Box::new(j))),
        prop::collection::vec(any::<u8>(), 0..64).prop_map(Response::LogChunk),
        state_header().prop_map(Response::State),
        Just(Response::ShuttingDown),
        Just(Response::End),
        (error_kind(), text())
            .prop_map(|(kind, message)| Response::Error(ErrorResponse { kind, message })),
        (0..9usize).prop_map(|i| Response::Event(sample_activities()[i].clone())),
        any::<u64>().prop_map(|count| Response::EventsMissed { count }),
        ids().prop_map(|ids| Response::SubmittedBatch { ids }),
        ids().prop_map(|ids| Response::Cleaned { ids }),
        Just(Response::Ok),
    ]
}

/// Any hello, mostly with our magic so negotiation gets past the first check.
fn hello() -> impl Strategy<Value = Hello> {
    let magic = prop_oneof![3 => Just(MAGIC), 1 => any::<[u8; 8]>()];
    (magic, any::<u32>(), any::<u32>()).prop_map(|(magic, min_version, max_version)| Hello {
        magic,
        min_version,
        max_version,
    })
}

/// Any hello reply.
fn hello_reply() -> impl Strategy<Value = HelloReply> {
    prop_oneof![
        (any::<u32>(), text()).prop_map(|(version, daemon_version)| HelloReply::Accepted {
            version,
            daemon_version
        }),
        text().prop_map(|reason| HelloReply::Rejected { reason }),
    ]
}

// ---------------------------------------------------------------------------
// Round trips
// ---------------------------------------------------------------------------

/// The fixed examples name every variant, so the round trips below cover them all.
#[test]
fn examples_cover_every_variant() {
    let requests: BTreeSet<usize> = examples_requests().iter().map(request_variant).collect();
    assert_eq!(requests, (0..REQUEST_VARIANTS).collect());
    let responses: BTreeSet<usize> = examples_responses().iter().map(response_variant).collect();
    assert_eq!(responses, (0..RESPONSE_VARIANTS).collect());
}

/// An argv is a plain list of words on the wire, and an empty one does not
/// decode: whatever a client sends, the daemon never holds a command without
/// a program.
#[test]
fn an_argv_is_a_word_list_and_never_empty() {
    let argv = Argv::new("make", ["-j".to_string(), "4".to_string()]);
    let words = vec!["make".to_string(), "-j".to_string(), "4".to_string()];
    assert_eq!(
        encode_payload(&Command::Argv(argv.clone())).expect("encodes"),
        encode_payload(&(0u32, words.clone())).expect("encodes"),
        "the same bytes as the variant index and a Vec<String>"
    );
    assert_eq!(argv.program(), "make");
    assert_eq!(argv.args(), &words[1..]);

    let empty = encode_payload(&(0u32, Vec::<String>::new())).expect("encodes");
    let err = decode_payload::<Command>(&empty).expect_err("an empty argv must not decode");
    assert!(
        err.to_string().contains("at least a program"),
        "unexpected error: {err}"
    );
    assert!(Argv::try_from(Vec::new()).is_err());
}

/// Every request variant survives `encode_frame` + `read_frame`.
#[test]
fn every_request_round_trips_blocking() {
    for req in examples_requests() {
        assert_eq!(blocking_round_trip(&req), req);
    }
}

/// Every response variant survives `encode_frame` + `read_frame`.
#[test]
fn every_response_round_trips_blocking() {
    for resp in examples_responses() {
        assert_eq!(blocking_round_trip(&resp), resp);
    }
}

/// The handshake messages survive `encode_frame` + `read_frame`.
#[test]
fn handshake_round_trips_blocking() {
    let hello = Hello::current();
    assert_eq!(blocking_round_trip(&hello), hello);
    for reply in [
        HelloReply::Accepted {
            version: PROTOCOL_VERSION,
            daemon_version: "0.1.0".into(),
        },
        HelloReply::Rejected {
            reason: "go away".into(),
        },
    ] {
        assert_eq!(blocking_round_trip(&reply), reply);
    }
}

/// Several frames written back to back (as the client writes its hello and its
/// first request in one write) are read back one by one.
#[test]
fn concatenated_frames_read_in_order() {
    let mut bytes = encode_frame(&Hello::current()).expect("encodes");
    for req in examples_requests() {
        bytes.extend(encode_frame(&req).expect("encodes"));
    }
    let mut cursor = Cursor::new(bytes);
    let hello: Hello = read_frame(&mut cursor).expect("decodes").expect("present");
    assert_eq!(hello, Hello::current());
    for want in examples_requests() {
        let got: Request = read_frame(&mut cursor).expect("decodes").expect("present");
        assert_eq!(got, want);
    }
    let end: Option<Request> = read_frame(&mut cursor).expect("clean end");
    assert!(end.is_none());
}

/// A reader that hands out at most one byte per call and reports an
/// interruption before every byte, as a slow or signal-heavy socket can.
struct TrickleReader {
    /// The bytes still to hand out.
    data: Cursor<Vec<u8>>,
    /// Whether the next call returns `Interrupted` instead of data.
    interrupt_next: bool,
}

impl Read for TrickleReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.interrupt_next = !self.interrupt_next;
        if self.interrupt_next {
            return Err(std::io::ErrorKind::Interrupted.into());
        }
        let n = buf.len().min(1);
        self.data.read(&mut buf[..n])
    }
}

/// `read_frame` copes with short reads and `EINTR` in the prefix and the payload.
#[test]
fn read_frame_survives_short_reads_and_interrupts() {
    let resp = Response::JobEnded(Box::new(sample_info()));
    let mut reader = TrickleReader {
        data: Cursor::new(encode_frame(&resp).expect("encodes")),
        interrupt_next: false,
    };
    let got: Response = read_frame(&mut reader).expect("decodes").expect("present");
    assert_eq!(got, resp);
}

proptest! {
    /// Any request survives the blocking framing.
    #[test]
    fn any_request_round_trips(req in request()) {
        prop_assert_eq!(blocking_round_trip(&req), req);
    }

    /// Any response survives the blocking framing.
    #[test]
    fn any_response_round_trips(resp in response()) {
        prop_assert_eq!(blocking_round_trip(&resp), resp);
    }

    /// Borrowed jobs encode like the owned ones they mirror, and convert
    /// back to them.
    #[test]
    fn borrowed_jobs_encode_like_owned_ones(jobs in prop::collection::vec(job_info(), 0..4)) {
        let views: Vec<JobInfoRef<'_>> = jobs.iter().map(JobInfo::view).collect();
        prop_assert_eq!(
            encode_frame(&JobsRef(&views)).expect("encodes"),
            encode_frame(&Response::Jobs(jobs.clone())).expect("encodes")
        );
        for (view, job) in views.iter().zip(&jobs) {
            prop_assert_eq!(&view.to_info(), job);
        }
    }

    /// Any hello and hello reply survive the blocking framing.
    #[test]
    fn any_handshake_round_trips(h in hello(), r in hello_reply()) {
        prop_assert_eq!(blocking_round_trip(&h), h);
        prop_assert_eq!(blocking_round_trip(&r), r);
    }

    /// The frame's length prefix is exactly the payload's length.
    #[test]
    fn prefix_matches_payload(resp in response()) {
        let payload = encode_payload(&resp).expect("encodes");
        let frame = encode_frame(&resp).expect("encodes");
        prop_assert_eq!(&frame[..4], &(payload.len() as u32).to_be_bytes()[..]);
        prop_assert_eq!(&frame[4..], &payload[..]);
    }
}

// ---------------------------------------------------------------------------
// Pinned encodings
// ---------------------------------------------------------------------------

/// The client's hello: length 10, `MAYFLY\0\0`, versions 5..=5 (version 2
/// added dependencies, times, timeouts and retries to the job spec; version
/// 3 its `ext` settings; version 4 queue executors and a job's remote id;
/// version 5 a job's resource usage and whether it is preempted).
#[test]
fn pinned_hello_current() {
    assert_eq!(
        encode_frame(&Hello::current()).expect("encodes"),
        [0, 0, 0, 10, 77, 65, 89, 70, 76, 89, 0, 0, 5, 5]
    );
}

/// An accepted handshake reply.
#[test]
fn pinned_hello_accepted() {
    let reply = HelloReply::Accepted {
        version: 1,
        daemon_version: "0.1.0".into(),
    };
    assert_eq!(
        encode_frame(&reply).expect("encodes"),
        [0, 0, 0, 8, 0, 1, 5, 48, 46, 49, 46, 48]
    );
}

/// A submit of `echo hi` in `/tmp` with one env var and one label.
#[test]
fn pinned_submit() {
    let req = Request::Submit(SubmitRequest {
        spec: sample_spec(),
    });
    #[rustfmt::skip]
    let want = [
        0, 0, 0, 48,            // length
        0,                      // Request::Submit
        0,                      // Command::Argv
        2, 4, b'e', b'c', b'h', b'o', 2, b'h', b'i',
        4, b'/', b't', b'm', b'p',
        1, 1, b'K', 1, b'V',    // env
        7, b'd', b'e', b'f', b'a', b'u', b'l', b't',
        50,                     // priority
        1, 4, b't', b'e', b'a', b'm', 3, b'o', b'p', b's',
        0,                      // after: none
        0,                      // not_before: None
        0,                      // timeout_ms: None
        0,                      // retries
        251, 0xe8, 0x03,        // retry_delay_ms: 1000
        0,                      // ext: none
    ];
    assert_eq!(encode_frame(&req).expect("encodes"), want);
}

/// A spec setting of `ext`: the list's length, the variant, its value
/// (`MaxOutput(1024)`: 1024 in the varint's two-byte form).
#[test]
fn pinned_spec_ext() {
    let mut spec = sample_spec();
    spec.set_max_output(Some(1024));
    let bytes = encode_payload(&spec).expect("encodes");
    assert_eq!(bytes[bytes.len() - 5..], [1, 0, 251, 0x00, 0x04]);
    assert_eq!(spec.max_output(), Some(1024));
    spec.set_max_output(None);
    assert!(spec.ext.is_empty());
}

/// A status request; 300 needs the varint's two-byte form (`251`, then LE u16).
#[test]
fn pinned_status() {
    let req = Request::Status(StatusRequest {
        ids: vec![JobId(1), JobId(300)],
    });
    assert_eq!(
        encode_frame(&req).expect("encodes"),
        [0, 0, 0, 6, 1, 2, 1, 251, 44, 1]
    );
}

/// A `Jobs` frame encoded from borrowed jobs (how the daemon lists them) is
/// byte for byte the `Response::Jobs` of the same jobs, so clients decode it
/// as one; pinned, so neither can change alone.
#[test]
fn pinned_jobs_from_borrowed_jobs() {
    let mut job = sample_info();
    job.after = vec![(JobId(2), true)];
    job.history = vec![mayfly_protocol::Attempt {
        started_at: Timestamp(1),
        finished_at: Timestamp(2),
        exit_code: Some(1),
        signal: None,
    }];
    let jobs = vec![job.clone(), sample_info()];
    let views: Vec<JobInfoRef<'_>> = jobs.iter().map(JobInfo::view).collect();
    let borrowed = encode_frame(&JobsRef(&views)).expect("encodes");
    assert_eq!(
        borrowed,
        encode_frame(&Response::Jobs(jobs.clone())).expect("encodes")
    );
    assert_eq!(
        &borrowed[..12],
        [0, 0, 1, 23, 1, 2, 3, 4, 1, 19, 109, 97],
        "length, Response::Jobs (1), two jobs, id 3, Failed (4), Shell (1), 19 bytes \"ma…"
    );
    let back: Option<Response> = read_frame(&mut Cursor::new(borrowed)).expect("decodes");
    assert_eq!(
        back,
        Some(Response::Jobs(jobs)),
        "decodes as Response::Jobs"
    );
    assert_eq!(
        encode_frame(&JobsRef(&[])).expect("encodes"),
        [0, 0, 0, 2, 1, 0]
    );
}

/// The payload-free requests and responses.
#[test]
fn pinned_unit_variants() {
    assert_eq!(
        encode_frame(&Request::DumpState).expect("encodes"),
        [0, 0, 0, 1, 5]
    );
    assert_eq!(
        encode_frame(&Response::End).expect("encodes"),
        [0, 0, 0, 1, 7]
    );
    assert_eq!(
        encode_frame(&Response::ShuttingDown).expect("encodes"),
        [0, 0, 0, 1, 6]
    );
}

/// A shutdown with a 30 s timeout.
#[test]
fn pinned_shutdown() {
    let req = Request::Shutdown(ShutdownRequest {
        timeout_ms: Some(30_000),
    });
    assert_eq!(
        encode_frame(&req).expect("encodes"),
        [0, 0, 0, 5, 6, 1, 251, 48, 117]
    );
}

/// The answer to a submit.
#[test]
fn pinned_submitted() {
    assert_eq!(
        encode_frame(&Response::Submitted { id: JobId(7) }).expect("encodes"),
        [0, 0, 0, 2, 0, 7]
    );
}

/// An error response.
#[test]
fn pinned_error() {
    let resp = Response::Error(ErrorResponse::new(ErrorKind::NotFound, "no job 9"));
    assert_eq!(
        encode_frame(&resp).expect("encodes"),
        [
            0, 0, 0, 11, 8, 1, 8, b'n', b'o', b' ', b'j', b'o', b'b', b' ', b'9'
        ]
    );
}

// ---------------------------------------------------------------------------
// Hostile and broken input
// ---------------------------------------------------------------------------

/// A reader that yields `prefix` and then fails the test if anything more is
/// read: proof that a refused frame's payload is never touched.
struct PrefixOnly {
    /// The bytes to hand out.
    prefix: Cursor<Vec<u8>>,
}

impl Read for PrefixOnly {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.prefix.read(buf)?;
        assert!(
            n > 0 || buf.is_empty(),
            "read past the length prefix of a refused frame"
        );
        Ok(n)
    }
}

/// `frame_size` is the length of what `encode_frame` writes, for every
/// message: the daemon counts queued replies with it.
#[test]
fn frame_size_is_the_encoded_length() {
    for resp in examples_responses() {
        let frame = encode_frame(&resp).expect("encodes");
        assert_eq!(mayfly_protocol::frame_size(&resp), frame.len(), "{resp:?}");
    }
    for req in examples_requests() {
        let frame = encode_frame(&req).expect("encodes");
        assert_eq!(mayfly_protocol::frame_size(&req), frame.len(), "{req:?}");
    }
}

/// Length prefixes beyond the limit are refused before any payload is read.
#[test]
fn read_frame_refuses_oversized_prefix() {
    for len in [u32::MAX, (MAX_FRAME_LEN + 1) as u32] {
        let mut reader = PrefixOnly {
            prefix: Cursor::new(len.to_be_bytes().to_vec()),
        };
        match read_frame::<Response>(&mut reader) {
            Err(FrameError::TooLarge { len: got }) => assert_eq!(got, u64::from(len)),
            other => panic!("prefix {len:#x}: expected TooLarge, got {other:?}"),
        }
    }
}

/// A frame of exactly the limit is allowed; only its missing body fails.
#[test]
fn read_frame_accepts_prefix_at_the_limit() {
    let mut cursor = Cursor::new((MAX_FRAME_LEN as u32).to_be_bytes().to_vec());
    assert!(matches!(
        read_frame::<Response>(&mut cursor),
        Err(FrameError::Truncated)
    ));
}

/// A stranger speaking HTTP is refused by the size check: `GET ` read as a
/// length is about 1.2 GB.
#[test]
fn http_request_is_refused_by_size() {
    let mut cursor = Cursor::new(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec());
    assert!(matches!(
        read_frame::<Hello>(&mut cursor),
        Err(FrameError::TooLarge { .. })
    ));
}

/// The stream ending inside a frame is an error, whether in the prefix or the payload.
#[test]
fn truncated_frames_are_errors() {
    let frame = encode_frame(&Response::JobEnded(Box::new(sample_info()))).expect("encodes");
    for cut in 1..frame.len() {
        let mut cursor = Cursor::new(frame[..cut].to_vec());
        assert!(
            matches!(
                read_frame::<Response>(&mut cursor),
                Err(FrameError::Truncated)
            ),
            "cut at {cut} of {}",
            frame.len()
        );
    }
}

/// An empty stream is a clean end, not an error.
#[test]
fn empty_stream_is_clean_end() {
    let mut cursor = Cursor::new(Vec::new());
    assert!(matches!(read_frame::<Response>(&mut cursor), Ok(None)));
}

/// A valid message followed by extra bytes in the same frame is refused.
#[test]
fn trailing_bytes_are_refused() {
    let mut payload = encode_payload(&Response::End).expect("encodes");
    payload.extend_from_slice(&[0, 0, 0]);
    assert!(matches!(
        decode_payload::<Response>(&payload),
        Err(FrameError::TrailingBytes { extra: 3 })
    ));

    let mut frame = (payload.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&payload);
    assert!(matches!(
        read_frame::<Response>(&mut Cursor::new(frame)),
        Err(FrameError::TrailingBytes { extra: 3 })
    ));
}

/// An empty payload is not a message.
#[test]
fn empty_payload_is_an_error() {
    assert!(matches!(
        read_frame::<Response>(&mut Cursor::new(vec![0, 0, 0, 0])),
        Err(FrameError::Decode(_))
    ));
}

/// Payloads whose inner length fields claim billions of elements or bytes:
/// each is an error, and none makes the decoder allocate for the claim (a
/// multi-gigabyte allocation would abort the test process).
#[test]
fn huge_inner_lengths_are_refused() {
    let ff8 = [0xFF; 8];
    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
    // Response::Jobs with u64::MAX elements (varint tag 253 = u64 follows).
    cases.push(("jobs u64::MAX", [&[1u8, 253][..], &ff8].concat()));
    // Response::LogChunk with 2^32-1 bytes (tag 252 = u32 follows).
    cases.push(("log chunk 4G", vec![4, 252, 0xFF, 0xFF, 0xFF, 0xFF]));
    // Response::Error whose message claims u64::MAX bytes.
    cases.push(("error message", [&[8u8, 1, 253][..], &ff8].concat()));
    // Response::Error whose message claims just over the frame limit.
    let over = (MAX_FRAME_LEN as u32 + 1).to_le_bytes();
    cases.push(("message over limit", [&[8u8, 1, 252][..], &over].concat()));
    // Request::Status with three billion ids.
    let three_g = 3_000_000_000u32.to_le_bytes();
    cases.push(("status 3G ids", [&[1u8, 252][..], &three_g].concat()));
    // Request::Submit whose argv claims u64::MAX strings.
    cases.push(("argv u64::MAX", [&[0u8, 0, 253][..], &ff8].concat()));
    // A string claiming 1000 bytes with only 3 present.
    cases.push((
        "short string",
        vec![8, 1, 251, 0xE8, 0x03, b'a', b'b', b'c'],
    ));

    for (name, payload) in cases {
        let as_response = decode_payload::<Response>(&payload);
        let as_request = decode_payload::<Request>(&payload);
        assert!(
            as_response.is_err() || as_request.is_err(),
            "{name}: decoded although it claims more than it holds"
        );
        // Through the framing too.
        let mut frame = (payload.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(&payload);
        assert!(
            read_frame::<Response>(&mut Cursor::new(frame)).is_err(),
            "{name}: read_frame accepted it"
        );
    }
}

/// Each specific hostile payload above is refused for the type it targets.
#[test]
fn huge_inner_lengths_fail_for_their_target_type() {
    assert!(decode_payload::<Response>(&[4, 252, 0xFF, 0xFF, 0xFF, 0xFF]).is_err());
    assert!(decode_payload::<Request>(&[1, 252, 0x00, 0x5E, 0xD0, 0xB2]).is_err());
    assert!(
        decode_payload::<Request>(&[0, 0, 253, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF])
            .is_err()
    );
}

/// Unknown variant numbers (a newer peer's message) are errors, not panics.
#[test]
fn unknown_variants_are_errors() {
    assert!(decode_payload::<Request>(&[REQUEST_VARIANTS as u8]).is_err());
    assert!(decode_payload::<Response>(&[RESPONSE_VARIANTS as u8]).is_err());
    assert!(decode_payload::<HelloReply>(&[2]).is_err());
}

/// Invalid UTF-8 inside a string field is refused.
#[test]
fn invalid_utf8_is_refused() {
    // Response::Error(NotFound, <2 bytes: 0xC3 0x28>)
    assert!(matches!(
        decode_payload::<Response>(&[8, 1, 2, 0xC3, 0x28]),
        Err(FrameError::Decode(_))
    ));
}

/// A message too large for one frame cannot be encoded.
#[test]
fn oversized_message_is_not_encoded() {
    let resp = Response::LogChunk(vec![0; MAX_FRAME_LEN]);
    assert!(matches!(
        encode_frame(&resp),
        Err(FrameError::TooLarge { .. } | FrameError::Encode(_))
    ));
}

proptest! {
    /// Random payloads never panic the decoder, for any message type.
    #[test]
    fn garbage_payload_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode_payload::<Request>(&bytes);
        let _ = decode_payload::<Response>(&bytes);
        let _ = decode_payload::<Hello>(&bytes);
        let _ = decode_payload::<HelloReply>(&bytes);
    }

    /// Random byte streams never panic `read_frame`; a successful read implies
    /// the prefix was within the limit.
    #[test]
    fn garbage_stream_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let mut cursor = Cursor::new(bytes.clone());
        if let Ok(Some(_)) = read_frame::<Response>(&mut cursor) {
            let len = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
            prop_assert!(len <= MAX_FRAME_LEN && len + 4 <= bytes.len());
        }
    }

    /// Random bytes behind a correct length prefix reach the decoder and
    /// still never panic.
    #[test]
    fn garbage_with_valid_prefix_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let mut frame = (bytes.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(&bytes);
        let _ = read_frame::<Request>(&mut Cursor::new(frame.clone()));
        let _ = read_frame::<Response>(&mut Cursor::new(frame));
    }

    /// Corrupting one byte of a valid encoding never panics the decoder.
    #[test]
    fn mutated_messages_never_panic(
        resp in response(),
        pos in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let mut payload = encode_payload(&resp).expect("encodes");
        let i = pos.index(payload.len());
        payload[i] = byte;
        let _ = decode_payload::<Response>(&payload);
    }

    /// A strict prefix of a valid payload never decodes as a message.
    #[test]
    fn truncated_payload_is_an_error(resp in response(), pos in any::<prop::sample::Index>()) {
        let payload = encode_payload(&resp).expect("encodes");
        let cut = pos.index(payload.len());
        prop_assert!(decode_payload::<Response>(&payload[..cut]).is_err());
    }
}

// ---------------------------------------------------------------------------
// Handshake negotiation
// ---------------------------------------------------------------------------

/// Our own hello is accepted at our version, naming this build's release.
#[test]
fn current_hello_is_accepted() {
    assert_eq!(
        Hello::current().negotiate(),
        HelloReply::Accepted {
            version: PROTOCOL_VERSION,
            daemon_version: env!("CARGO_PKG_VERSION").to_string(),
        }
    );
}

/// A peer that is not Mayfly is refused, and the reason says why.
#[test]
fn wrong_magic_is_rejected() {
    let hello = Hello {
        magic: *b"PUEUE\0\0\0",
        ..Hello::current()
    };
    match hello.negotiate() {
        HelloReply::Rejected { reason } => {
            assert!(reason.contains("magic"), "unclear reason: {reason}");
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
}

/// Version ranges that do not contain ours are refused with both ranges named
/// and advice on what to do.
#[test]
fn unsupported_versions_are_rejected() {
    let v = PROTOCOL_VERSION;
    for (min, max) in [
        (v + 1, v + 5),
        (v - 1, v - 1),
        (v + 1, v - 1),
        (u32::MAX, u32::MAX),
    ] {
        let hello = Hello {
            magic: MAGIC,
            min_version: min,
            max_version: max,
        };
        match hello.negotiate() {
            HelloReply::Rejected { reason } => {
                assert!(reason.contains("version"), "unclear reason: {reason}");
                assert!(
                    reason.contains(&format!("{min}..={max}")),
                    "reason does not name the client's range: {reason}"
                );
                assert!(reason.contains("mayflyctl"), "no advice: {reason}");
            }
            other => panic!("{min}..={max}: expected a rejection, got {other:?}"),
        }
    }
}

/// A wider range that contains our version is accepted at our version.
#[test]
fn overlapping_range_is_accepted_at_our_version() {
    let hello = Hello {
        magic: MAGIC,
        min_version: 0,
        max_version: u32::MAX,
    };
    assert!(matches!(
        hello.negotiate(),
        HelloReply::Accepted { version, .. } if version == PROTOCOL_VERSION
    ));
}

/// A hello with a foreign magic still decodes as a frame, so the daemon can
/// answer it with a clear rejection rather than a decode error.
#[test]
fn foreign_hello_decodes_then_is_rejected() {
    let bytes = [0, 0, 0, 10, b'N', b'O', b'T', b'M', b'A', b'Y', 0, 0, 1, 1];
    let hello: Hello = read_frame(&mut Cursor::new(bytes.to_vec()))
        .expect("decodes")
        .expect("present");
    assert!(matches!(hello.negotiate(), HelloReply::Rejected { .. }));
}

proptest! {
    /// Negotiation accepts exactly the hellos with our magic whose range
    /// contains our version.
    #[test]
    fn negotiation_rule(h in hello()) {
        let ok = h.magic == MAGIC
            && h.min_version <= PROTOCOL_VERSION
            && PROTOCOL_VERSION <= h.max_version;
        match h.negotiate() {
            HelloReply::Accepted { version, .. } => {
                prop_assert!(ok);
                prop_assert_eq!(version, PROTOCOL_VERSION);
            }
            HelloReply::Rejected { reason } => {
                prop_assert!(!ok);
                prop_assert!(!reason.is_empty());
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Request metadata
// ---------------------------------------------------------------------------

/// Exactly the contract's streaming requests are marked streaming, and every
/// kind has a distinct name.
#[test]
fn streaming_and_kind_names() {
    let streaming: Vec<&str> = examples_requests()
        .iter()
        .filter(|r| r.is_streaming())
        .map(Request::kind)
        .collect();
    assert_eq!(
        streaming,
        ["status", "wait", "logs", "dump_state", "events"]
    );
    let kinds: BTreeSet<&str> = examples_requests().iter().map(Request::kind).collect();
    assert_eq!(kinds.len(), REQUEST_VARIANTS);
}

// ---------------------------------------------------------------------------
// The tokio-util codec (the daemon's side)
// ---------------------------------------------------------------------------

/// The same properties through [`mayfly_protocol::FrameCodec`].
#[cfg(feature = "codec")]
mod codec {
    use bytes::BytesMut;
    use futures::{SinkExt, StreamExt};
    use mayfly_protocol::FrameCodec;
    use tokio_util::codec::{Decoder, Encoder, FramedRead, FramedWrite};

    use super::*;

    /// Encodes with the codec and decodes with the codec, and checks that the
    /// codec's bytes are exactly `encode_frame`'s (client and daemon must agree).
    fn codec_round_trip<T>(msg: &T) -> T
    where
        T: Serialize + DeserializeOwned + Clone + std::fmt::Debug,
    {
        let mut codec = FrameCodec::<T, T>::new();
        let mut buf = BytesMut::new();
        codec.encode(msg.clone(), &mut buf).expect("encodes");
        assert_eq!(&buf[..], &encode_frame(msg).expect("encodes")[..]);
        let back = codec
            .decode(&mut buf)
            .expect("decodes")
            .expect("whole frame present");
        assert!(buf.is_empty(), "the codec must consume exactly one frame");
        back
    }

    /// Every request variant survives the codec.
    #[test]
    fn every_request_round_trips_codec() {
        for req in examples_requests() {
            assert_eq!(codec_round_trip(&req), req);
        }
    }

    /// Every response variant survives the codec.
    #[test]
    fn every_response_round_trips_codec() {
        for resp in examples_responses() {
            assert_eq!(codec_round_trip(&resp), resp);
        }
    }

    /// The handshake messages survive the codec.
    #[test]
    fn handshake_round_trips_codec() {
        assert_eq!(codec_round_trip(&Hello::current()), Hello::current());
        let reply = HelloReply::Rejected {
            reason: "nope".into(),
        };
        assert_eq!(codec_round_trip(&reply), reply);
    }

    /// Frames fed one byte at a time (a slow peer) decode to the same messages.
    #[test]
    fn byte_by_byte_decoding() {
        let mut stream = Vec::new();
        for resp in examples_responses() {
            stream.extend(encode_frame(&resp).expect("encodes"));
        }
        let mut codec = FrameCodec::<Response, Response>::new();
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for byte in stream {
            buf.extend_from_slice(&[byte]);
            while let Some(msg) = codec.decode(&mut buf).expect("decodes") {
                got.push(msg);
            }
        }
        assert_eq!(got, examples_responses());
        assert!(matches!(codec.decode_eof(&mut buf), Ok(None)));
    }

    /// Regression: a frame whose prefix arrives in one read and whose payload
    /// arrives in the next must decode. (A codec that lets the inner
    /// length-delimited decoder consume the prefix and then "peeks" at the
    /// buffer again mistakes payload bytes — here `01 03 01 01` — for a
    /// 16.9 MB prefix and refuses the frame.)
    #[test]
    fn codec_decodes_frame_split_after_prefix() {
        let req = Request::Status(StatusRequest {
            ids: vec![JobId(1); 3],
        });
        let frame = encode_frame(&req).expect("encodes");
        let mut codec = FrameCodec::<Request, Response>::new();
        let mut buf = BytesMut::from(&frame[..4]);
        assert!(matches!(codec.decode(&mut buf), Ok(None)));
        buf.extend_from_slice(&frame[4..]);
        let got = codec.decode(&mut buf).expect("decodes").expect("present");
        assert_eq!(got, req);
    }

    /// The client's single write (hello + request) decodes as two frames on
    /// the daemon's side.
    #[test]
    fn hello_and_request_in_one_buffer() {
        let req = Request::Status(StatusRequest {
            ids: vec![JobId(1)],
        });
        let mut bytes = encode_frame(&Hello::current()).expect("encodes");
        bytes.extend(encode_frame(&req).expect("encodes"));
        let mut buf = BytesMut::from(&bytes[..]);
        let hello = FrameCodec::<Hello, HelloReply>::new()
            .decode(&mut buf)
            .expect("decodes")
            .expect("present");
        assert_eq!(hello, Hello::current());
        let got = FrameCodec::<Request, Response>::new()
            .decode(&mut buf)
            .expect("decodes")
            .expect("present");
        assert_eq!(got, req);
        assert!(buf.is_empty());
    }

    /// Oversized prefixes are refused before the codec reserves room for them.
    #[test]
    fn codec_refuses_oversized_prefix_without_reserving() {
        for len in [u32::MAX, (MAX_FRAME_LEN + 1) as u32] {
            let mut buf = BytesMut::with_capacity(64);
            buf.extend_from_slice(&len.to_be_bytes());
            buf.extend_from_slice(b"some payload bytes");
            let mut codec = FrameCodec::<Request, Response>::new();
            match codec.decode(&mut buf) {
                Err(FrameError::TooLarge { len: got }) => assert_eq!(got, u64::from(len)),
                other => panic!("prefix {len:#x}: expected TooLarge, got {other:?}"),
            }
            assert!(
                buf.capacity() < 1024,
                "the codec reserved {} bytes for a refused frame",
                buf.capacity()
            );
        }
    }

    /// Regression: a prefix announcing 16 MiB followed by 12 bytes made the
    /// codec reserve the whole 16 MiB at once, so 32 such connections held
    /// half a gigabyte. The buffer now grows with what has arrived.
    #[test]
    fn codec_does_not_reserve_what_a_prefix_announces() {
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&(MAX_FRAME_LEN as u32).to_be_bytes());
        buf.extend_from_slice(&[0; 12]);
        let mut codec = FrameCodec::<Request, Response>::new();
        assert!(matches!(codec.decode(&mut buf), Ok(None)));
        assert!(
            buf.capacity() <= 16 + mayfly_protocol::READ_AHEAD,
            "the codec reserved {} bytes for 16 bytes of a frame",
            buf.capacity()
        );
        // A legitimate large frame still arrives whole.
        let big = Response::LogChunk(vec![7; 3 * mayfly_protocol::READ_AHEAD]);
        let frame = encode_frame(&big).expect("encodes");
        let mut buf = BytesMut::new();
        let mut got = None;
        for piece in frame.chunks(1000) {
            buf.extend_from_slice(piece);
            if let Some(msg) = FrameCodec::<Response, Response>::new()
                .decode(&mut buf)
                .expect("decodes")
            {
                got = Some(msg);
            }
        }
        assert_eq!(got, Some(big));
    }

    /// A frame cut off at end of stream is an error; a clean end is not.
    #[test]
    fn codec_truncated_frame_at_eof() {
        let frame = encode_frame(&Response::JobEnded(Box::new(sample_info()))).expect("encodes");
        for cut in 1..frame.len() {
            let mut buf = BytesMut::from(&frame[..cut]);
            let mut codec = FrameCodec::<Response, Response>::new();
            assert!(matches!(codec.decode(&mut buf), Ok(None)), "cut at {cut}");
            assert!(
                matches!(codec.decode_eof(&mut buf), Err(FrameError::Truncated)),
                "cut at {cut}"
            );
        }
        let mut empty = BytesMut::new();
        assert!(matches!(
            FrameCodec::<Response, Response>::new().decode_eof(&mut empty),
            Ok(None)
        ));
    }

    /// Trailing bytes inside a frame are refused by the codec too.
    #[test]
    fn codec_refuses_trailing_bytes() {
        let mut payload = encode_payload(&Response::End).expect("encodes");
        payload.push(0);
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        buf.extend_from_slice(&payload);
        assert!(matches!(
            FrameCodec::<Response, Response>::new().decode(&mut buf),
            Err(FrameError::TrailingBytes { extra: 1 })
        ));
    }

    /// The codec refuses an oversized outgoing message.
    #[test]
    fn codec_refuses_oversized_message() {
        let mut buf = BytesMut::new();
        let res = FrameCodec::<Response, Response>::new()
            .encode(Response::LogChunk(vec![0; MAX_FRAME_LEN]), &mut buf);
        assert!(res.is_err());
    }

    /// The codec over a real async pipe: a stream of responses written with
    /// `FramedWrite` arrives intact through `FramedRead`.
    #[tokio::test]
    async fn framed_pipe_round_trip() {
        let (client, server) = tokio::io::duplex(64);
        let mut write = FramedWrite::new(server, FrameCodec::<Request, Response>::new());
        let mut read = FramedRead::new(client, FrameCodec::<Response, Request>::new());
        let sender = tokio::spawn(async move {
            for resp in examples_responses() {
                write.send(resp).await.expect("sends");
            }
        });
        let mut got = Vec::new();
        while let Some(msg) = read.next().await {
            got.push(msg.expect("decodes"));
        }
        sender.await.expect("sender finished");
        assert_eq!(got, examples_responses());
    }

    proptest! {
        /// Any request and response survive the codec.
        #[test]
        fn any_message_round_trips_codec(req in request(), resp in response()) {
            prop_assert_eq!(codec_round_trip(&req), req);
            prop_assert_eq!(codec_round_trip(&resp), resp);
        }

        /// Random bytes never panic the codec, whether more data may follow
        /// or the stream has ended.
        #[test]
        fn garbage_never_panics_codec(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let mut codec = FrameCodec::<Request, Response>::new();
            let mut buf = BytesMut::from(&bytes[..]);
            while let Ok(Some(_)) = codec.decode(&mut buf) {}
            let mut buf = BytesMut::from(&bytes[..]);
            while let Ok(Some(_)) = codec.decode_eof(&mut buf) {}
        }
    }
}

/// On-disk blobs round-trip, are not limited to one frame, and refuse
/// trailing bytes like frames do.
#[test]
fn blobs_round_trip_beyond_the_frame_limit() {
    let big = vec![7u8; mayfly_protocol::MAX_FRAME_LEN + 10];
    let bytes = mayfly_protocol::encode_blob(&big).unwrap();
    assert!(mayfly_protocol::encode_payload(&big).is_err());
    let back: Vec<u8> = mayfly_protocol::decode_blob(&bytes).unwrap();
    assert_eq!(back, big);
    let mut extra = mayfly_protocol::encode_blob(&5u32).unwrap();
    extra.push(0);
    assert!(mayfly_protocol::decode_blob::<u32>(&extra).is_err());
}

/// A payload under the frame limit whose decoded value would claim more
/// memory than the limit (millions of empty strings: one byte each on the
/// wire, 24 in memory) is refused with words that say so and what to do.
#[test]
fn a_payload_that_claims_too_much_memory_is_refused_in_words() {
    let many = vec![String::new(); 4_000_000];
    let payload = mayfly_protocol::encode_payload(&many).expect("4 MB encodes");
    assert!(payload.len() < mayfly_protocol::MAX_FRAME_LEN);
    let err = mayfly_protocol::decode_payload::<Vec<String>>(&payload).expect_err("refused");
    let text = err.to_string();
    assert!(
        text.contains("limit") && text.contains("smaller requests"),
        "{text}"
    );
}
