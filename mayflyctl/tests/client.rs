//! The client against a fake daemon: the round trip of each command, the
//! streaming responses, and the exit codes for every way a run can end.
//! Most tests call the library's `run` in-process; the `binary_*` tests run
//! the built `mayflyctl` to check what only the process shows (stderr,
//! exit status, a closed stdout).

mod helper;

use std::io::Read;
use std::os::unix::net::UnixListener;
use std::process::{Command as Process, Stdio};

use helper::{FakeDaemon, end, ended, job, run_client, run_client_in};
use mayfly_protocol::{
    CancelOutcome, CleanRequest, Command, EditRequest, ErrorKind, ErrorResponse, Hello, HelloReply,
    JobId, JobState, LogStream, LogsRequest, PauseRequest, ProgressRequest, QueueInfo,
    QueueSetRequest, Request, Response, RestartRequest, SchedulerInfo, ShutdownRequest,
    StateCounts, StateHeader, StatusRequest, SystemTaskInfo, Timestamp, WaitRequest,
};
use serde_json::Value;

// --- submit ---------------------------------------------------------------

#[test]
/// Submit sends hello + request in one write, with the caller's context, and prints the id.
fn submit_round_trip() {
    let daemon = FakeDaemon::start(|s| {
        s.accept_hello();
        s.send(&Response::Submitted { id: JobId(7) });
    });
    let out = run_client(
        &daemon.socket,
        &[
            "submit",
            "--priority",
            "10",
            "--label",
            "k=v",
            "--env",
            "X=1",
            "--",
            "echo",
            "hi",
        ],
    );
    let got = daemon.finish();
    assert_eq!(out.code(), 0, "{:?}", out.result);
    assert_eq!(out.stdout, "7\n");
    assert_eq!(got.hello, Hello::current());
    assert!(got.one_write, "hello and request must go out in one write");
    let Request::Submit(req) = &got.requests[0] else {
        panic!("sent {:?}", got.requests[0]);
    };
    assert_eq!(
        req.spec.command,
        Command::Argv(
            vec!["echo".into(), "hi".into()]
                .try_into()
                .expect("a program")
        )
    );
    assert_eq!(req.spec.cwd, "/work");
    assert_eq!(req.spec.priority, 10);
    assert_eq!(req.spec.queue, "default");
    assert_eq!(req.spec.labels, vec![("k".into(), "v".into())]);
    assert_eq!(req.spec.env.len(), 3);
    assert!(req.spec.env.contains(&("X".into(), "1".into())));
}

#[test]
/// `--json` prints `{"id": N}`; `--shell` sends one string.
fn submit_json_shell() {
    let daemon = FakeDaemon::start(|s| {
        s.accept_hello();
        s.send(&Response::Submitted { id: JobId(42) });
    });
    let out = run_client(
        &daemon.socket,
        &["--json", "submit", "--shell", "--", "echo hi | wc -c"],
    );
    let got = daemon.finish();
    assert_eq!(out.code(), 0);
    let v: Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(v, serde_json::json!({"id": 42}));
    let Request::Submit(req) = &got.requests[0] else {
        panic!("sent {:?}", got.requests[0]);
    };
    assert_eq!(req.spec.command, Command::Shell("echo hi | wc -c".into()));
}

#[test]
/// `submit --wait` prints the id, waits on the same connection, and exits with the job's code.
fn submit_wait_exits_with_job_code() {
    let daemon = FakeDaemon::start(|s| {
        s.accept_hello();
        s.send(&Response::Submitted { id: JobId(7) });
        let wait = s.recv();
        assert_eq!(
            wait,
            Request::Wait(WaitRequest {
                ids: vec![JobId(7)]
            })
        );
        s.send(&Response::JobEnded(Box::new(ended(
            7,
            JobState::Failed,
            Some(3),
            None,
        ))));
        s.send(&end());
    });
    let out = run_client(&daemon.socket, &["submit", "--wait", "--", "false"]);
    let got = daemon.finish();
    assert_eq!(got.requests.len(), 2);
    assert_eq!(out.stdout, "7\n");
    assert_eq!(out.code(), 3, "{:?}", out.result);
}

#[test]
/// `submit --wait` on a job killed by SIGKILL exits 137.
fn submit_wait_signal() {
    let daemon = FakeDaemon::start(|s| {
        s.accept_hello();
        s.send(&Response::Submitted { id: JobId(1) });
        s.recv();
        s.send(&Response::JobEnded(Box::new(ended(
            1,
            JobState::Failed,
            None,
            Some(9),
        ))));
        s.send(&end());
    });
    let out = run_client(&daemon.socket, &["submit", "--wait", "--", "sleep", "100"]);
    daemon.finish();
    assert_eq!(out.code(), 137);
}

#[test]
/// A daemon that refuses the submit is exit 1 with its message.
fn submit_refused() {
    let daemon = FakeDaemon::start(|s| {
        s.accept_hello();
        s.send(&Response::Error(ErrorResponse::new(
            ErrorKind::ShuttingDown,
            "the daemon is shutting down and accepts no new jobs",
        )));
    });
    let out = run_client(&daemon.socket, &["submit", "--", "true"]);
    daemon.finish();
    assert_eq!(out.code(), 1);
    assert_eq!(
        out.error(),
        "submit failed: the daemon is shutting down and accepts no new jobs"
    );
    assert_eq!(out.stdout, "");
}

// --- status ---------------------------------------------------------------

/// The daemon side of a status stream delivered in two chunks.
fn two_chunks(s: &mut helper::Server) {
    s.accept_hello();
    let mut done = ended(1, JobState::Succeeded, Some(0), None);
    done.labels = vec![("team".into(), "ops".into())];
    s.send(&Response::Jobs(vec![done, job(2, JobState::Running)]));
    s.send(&Response::Jobs(vec![job(3, JobState::Queued)]));
    s.send(&end());
}

#[test]
/// Status reads every chunk up to End and prints one aligned row per job.
fn status_table_streams() {
    let daemon = FakeDaemon::start(two_chunks);
    let out = run_client(&daemon.socket, &["status"]);
    let got = daemon.finish();
    assert_eq!(out.code(), 0, "{:?}", out.result);
    assert_eq!(
        got.requests[0],
        Request::Status(StatusRequest { ids: vec![] })
    );
    assert!(got.one_write);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{}", out.stdout);
    assert!(lines[0].starts_with("ID  STATE"));
    assert!(
        lines[1].starts_with("1   succeeded  default  50   0 "),
        "{}",
        lines[1]
    );
    assert!(lines[3].starts_with("3   queued "), "{}", lines[3]);
    assert!(
        lines[3].ends_with("1m ago             make test"),
        "{}",
        lines[3]
    );
}

#[test]
/// `status --json` prints an array of job objects with the contract's fields.
fn status_json_streams() {
    let daemon = FakeDaemon::start(two_chunks);
    let out = run_client(&daemon.socket, &["status", "--json", "1", "2", "3"]);
    let got = daemon.finish();
    assert_eq!(
        got.requests[0],
        Request::Status(StatusRequest {
            ids: vec![JobId(1), JobId(2), JobId(3)]
        })
    );
    let v: Value = serde_json::from_str(&out.stdout).expect("JSON");
    let jobs = v.as_array().expect("an array");
    assert_eq!(jobs.len(), 3);
    assert_eq!(jobs[0]["id"], 1);
    assert_eq!(jobs[0]["state"], "succeeded");
    assert_eq!(jobs[0]["command"], serde_json::json!(["make", "test"]));
    assert_eq!(jobs[0]["labels"], serde_json::json!({"team": "ops"}));
    assert_eq!(jobs[0]["exit_code"], 0);
    assert_eq!(jobs[0]["submitted_at"], "2023-11-14T22:13:20.000Z");
    assert_eq!(jobs[0]["finished_at"], "2023-11-14T22:14:10.000Z");
    assert_eq!(jobs[1]["finished_at"], Value::Null);
    for key in [
        "id",
        "state",
        "queue",
        "priority",
        "command",
        "cwd",
        "labels",
        "exit_code",
        "signal",
        "attempts",
        "submitted_at",
        "started_at",
        "finished_at",
        "progress",
        "reason",
        "pid",
    ] {
        assert!(jobs[2].get(key).is_some(), "missing {key}");
    }
}

#[test]
/// An unknown id is the daemon's NotFound: exit 1 with its message.
fn status_not_found() {
    let daemon = FakeDaemon::start(|s| {
        s.accept_hello();
        s.send(&Response::Error(ErrorResponse::new(
            ErrorKind::NotFound,
            "no job 99",
        )));
    });
    let out = run_client(&daemon.socket, &["status", "99"]);
    daemon.finish();
    assert_eq!(out.code(), 1);
    assert_eq!(out.error(), "status failed: no job 99");
}

#[test]
/// A connection dropped mid-stream is exit 1 with a clear message, and no partial table.
fn status_dropped_mid_stream() {
    let daemon = FakeDaemon::start(|s| {
        s.accept_hello();
        s.send(&Response::Jobs(vec![job(1, JobState::Queued)]));
        // Half a frame, then hang up.
        let frame = mayfly_protocol::encode_frame(&Response::Jobs(vec![job(2, JobState::Queued)]))
            .expect("encodes");
        s.send_raw(&frame[..frame.len() / 2]);
    });
    let out = run_client(&daemon.socket, &["status"]);
    daemon.finish();
    assert_eq!(out.code(), 1);
    assert!(
        out.error().contains("closed the connection"),
        "{}",
        out.error()
    );
    assert_eq!(out.stdout, "");
}

#[test]
/// `status --json` prints jobs as they arrive; a connection dropped part way
/// is exit 1 and leaves the array unclosed, so the output is not valid JSON
/// and cannot pass for a whole listing.
fn status_json_dropped_mid_stream_is_not_valid_json() {
    let daemon = FakeDaemon::start(|s| {
        s.accept_hello();
        s.send(&Response::Jobs(vec![job(1, JobState::Queued)]));
        let frame = mayfly_protocol::encode_frame(&Response::Jobs(vec![job(2, JobState::Queued)]))
            .expect("encodes");
        s.send_raw(&frame[..frame.len() / 2]);
    });
    let out = run_client(&daemon.socket, &["status", "--json"]);
    daemon.finish();
    assert_eq!(out.code(), 1);
    assert!(
        out.error().contains("closed the connection"),
        "{}",
        out.error()
    );
    assert!(
        serde_json::from_str::<Value>(&out.stdout).is_err(),
        "a cut listing must not parse: {:?}",
        out.stdout
    );
    assert!(!out.stdout.contains("\n]"), "{:?}", out.stdout);

    // An error frame after some jobs: the same.
    let daemon = FakeDaemon::start(|s| {
        s.accept_hello();
        s.send(&Response::Jobs(vec![job(1, JobState::Queued)]));
        s.send(&Response::Error(ErrorResponse::new(
            ErrorKind::Internal,
            "job 2 cannot be listed",
        )));
    });
    let out = run_client(&daemon.socket, &["status", "--json"]);
    daemon.finish();
    assert_eq!(out.code(), 1);
    assert_eq!(out.error(), "status failed: job 2 cannot be listed");
    assert!(serde_json::from_str::<Value>(&out.stdout).is_err());
}

#[test]
/// A frame this client cannot read (here: a hostile length) is exit 1, not a hang or a crash.
fn status_garbage_reply() {
    let daemon = FakeDaemon::start(|s| {
        s.accept_hello();
        s.send_raw(&[0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3]);
    });
    let out = run_client(&daemon.socket, &["status"]);
    daemon.finish();
    assert_eq!(out.code(), 1);
    assert!(
        out.error().contains("different releases"),
        "{}",
        out.error()
    );
}

#[test]
/// An answer of the wrong kind is a protocol error, exit 1.
fn status_unexpected_answer() {
    let daemon = FakeDaemon::start(|s| {
        s.accept_hello();
        s.send(&Response::Submitted { id: JobId(1) });
    });
    let out = run_client(&daemon.socket, &["status"]);
    daemon.finish();
    assert_eq!(out.code(), 1);
    assert!(out.error().contains("Submitted"), "{}", out.error());
}

// --- wait -----------------------------------------------------------------

#[test]
/// One id: the job's own exit code; a line as it ends.
fn wait_one_job() {
    let daemon = FakeDaemon::start(|s| {
        s.accept_hello();
        s.send(&Response::JobEnded(Box::new(ended(
            5,
            JobState::Failed,
            None,
            Some(9),
        ))));
        s.send(&end());
    });
    let out = run_client(&daemon.socket, &["wait", "5"]);
    let got = daemon.finish();
    assert_eq!(
        got.requests[0],
        Request::Wait(WaitRequest {
            ids: vec![JobId(5)]
        })
    );
    assert_eq!(out.stdout, "5 failed (killed by SIGKILL)\n");
    assert_eq!(out.code(), 137);
}

#[test]
/// A cancelled job has no exit code: 1.
fn wait_cancelled() {
    let daemon = FakeDaemon::start(|s| {
        s.accept_hello();
        s.send(&Response::JobEnded(Box::new(ended(
            5,
            JobState::Cancelled,
            None,
            None,
        ))));
        s.send(&end());
    });
    let out = run_client(&daemon.socket, &["wait", "5"]);
    daemon.finish();
    assert_eq!(out.stdout, "5 cancelled\n");
    assert_eq!(out.code(), 1);
}

#[test]
/// Several ids: one line per job in the order they end; 0 only if all succeeded.
fn wait_several() {
    let daemon = FakeDaemon::start(|s| {
        s.accept_hello();
        s.send(&Response::JobEnded(Box::new(ended(
            2,
            JobState::Succeeded,
            Some(0),
            None,
        ))));
        s.send(&Response::JobEnded(Box::new(ended(
            1,
            JobState::Failed,
            Some(4),
            None,
        ))));
        s.send(&end());
    });
    let out = run_client(&daemon.socket, &["wait", "1", "2"]);
    daemon.finish();
    assert_eq!(out.stdout, "2 succeeded (exit 0)\n1 failed (exit 4)\n");
    assert_eq!(out.code(), 1);

    let daemon = FakeDaemon::start(|s| {
        s.accept_hello();
        s.send(&Response::JobEnded(Box::new(ended(
            1,
            JobState::Succeeded,
            Some(0),
            None,
        ))));
        s.send(&Response::JobEnded(Box::new(ended(
            2,
            JobState::Succeeded,
            Some(0),
            None,
        ))));
        s.send(&end());
    });
    let out = run_client(&daemon.socket, &["--json", "wait", "1", "2"]);
    daemon.finish();
    assert_eq!(out.code(), 0);
    let objects: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(objects.len(), 2);
    assert_eq!(objects[1]["id"], 2);
    assert_eq!(objects[1]["state"], "succeeded");
}

#[test]
/// `--quiet` prints nothing; the exit code still tells.
fn wait_quiet() {
    let daemon = FakeDaemon::start(|s| {
        s.accept_hello();
        s.send(&Response::JobEnded(Box::new(ended(
            3,
            JobState::Failed,
            Some(2),
            None,
        ))));
        s.send(&end());
    });
    let out = run_client(&daemon.socket, &["wait", "--quiet", "3"]);
    daemon.finish();
    assert_eq!(out.stdout, "");
    assert_eq!(out.code(), 2);
}

#[test]
/// The daemon dying while the client waits is exit 1, after the lines already printed.
fn wait_daemon_dies() {
    let daemon = FakeDaemon::start(|s| {
        s.accept_hello();
        s.send(&Response::JobEnded(Box::new(ended(
            1,
            JobState::Succeeded,
            Some(0),
            None,
        ))));
    });
    let out = run_client(&daemon.socket, &["wait", "1", "2"]);
    daemon.finish();
    assert_eq!(out.stdout, "1 succeeded (exit 0)\n");
    assert_eq!(out.code(), 1);
    assert!(
        out.error().contains("closed the connection"),
        "{}",
        out.error()
    );
}

#[test]
/// Waiting on an unknown job: the daemon's NotFound ends the stream, exit 1.
fn wait_not_found() {
    let daemon = FakeDaemon::start(|s| {
        s.accept_hello();
        s.send(&Response::Error(ErrorResponse::new(
            ErrorKind::NotFound,
            "no job 8",
        )));
    });
    let out = run_client(&daemon.socket, &["wait", "8"]);
    daemon.finish();
    assert_eq!(out.code(), 1);
    assert_eq!(out.error(), "wait failed: no job 8");
}

// --- the other commands -----------------------------------------------------

#[test]
/// Cancel prints one line per job and exits 1 when an id did not exist.
fn cancel_outcomes() {
    let daemon = FakeDaemon::start(|s| {
        s.accept_hello();
        s.send(&Response::Cancelled(vec![
            (JobId(1), CancelOutcome::Cancelled),
            (JobId(2), CancelOutcome::Signalled),
            (JobId(3), CancelOutcome::AlreadyEnded(JobState::Succeeded)),
            (JobId(4), CancelOutcome::NotFound),
        ]));
    });
    let out = run_client(&daemon.socket, &["cancel", "1", "2", "3", "4"]);
    daemon.finish();
    assert_eq!(
        out.stdout,
        "1: cancelled\n2: signalled (SIGTERM sent)\n3: already succeeded\n4: no such job\n"
    );
    assert_eq!(out.code(), 1);
    assert_eq!(out.error(), "no such job: 4");

    let daemon = FakeDaemon::start(|s| {
        s.accept_hello();
        s.send(&Response::Cancelled(vec![(
            JobId(1),
            CancelOutcome::Cancelled,
        )]));
    });
    let out = run_client(&daemon.socket, &["--json", "cancel", "1"]);
    daemon.finish();
    assert_eq!(out.code(), 0);
    let v: Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(v, serde_json::json!([{"id": 1, "outcome": "cancelled"}]));
}

#[test]
/// Logs copies chunks byte for byte, text or not.
fn logs_raw_bytes() {
    let daemon = FakeDaemon::start(|s| {
        s.accept_hello();
        s.send(&Response::LogChunk(b"line one\n".to_vec()));
        s.send(&Response::LogChunk(b"line two\n".to_vec()));
        s.send(&end());
    });
    let out = run_client(&daemon.socket, &["logs", "--stderr", "--follow", "6"]);
    let got = daemon.finish();
    assert_eq!(
        got.requests[0],
        Request::Logs(LogsRequest {
            id: JobId(6),
            stream: LogStream::Stderr,
            follow: true
        })
    );
    assert_eq!(out.code(), 0);
    assert_eq!(out.stdout, "line one\nline two\n");
}

#[test]
/// dump-state reads the header, then the jobs, and prints the contract's object.
fn dump_state_object() {
    let daemon = FakeDaemon::start(|s| {
        s.accept_hello();
        s.send(&Response::State(StateHeader {
            scheduler: SchedulerInfo {
                concurrency: 2,
                quantum_ms: 10,
                next_job_id: 3,
                jobs_submitted: 2,
                jobs_started: 1,
                jobs_finished: 1,
                shutting_down: false,
            },
            queues: vec![QueueInfo {
                name: "default".into(),
                concurrency: Some(1),
                paused: false,
                counts: StateCounts {
                    succeeded: 1,
                    queued: 1,
                    ..StateCounts::default()
                },
                executor: mayfly_protocol::ExecutorSpec::Local,
            }],
            system_tasks: vec![SystemTaskInfo {
                name: "looptask_wal_flush".into(),
                priority: 0,
                state: "running".into(),
                started_at: Timestamp(1_700_000_000_000),
            }],
        }));
        s.send(&Response::Jobs(vec![ended(
            1,
            JobState::Succeeded,
            Some(0),
            None,
        )]));
        s.send(&Response::Jobs(vec![job(2, JobState::Queued)]));
        s.send(&end());
    });
    let out = run_client(&daemon.socket, &["dump-state"]);
    let got = daemon.finish();
    assert_eq!(got.requests[0], Request::DumpState);
    assert_eq!(out.code(), 0, "{:?}", out.result);
    assert!(out.stdout.contains("\n  "), "pretty-printed");
    let v: Value = serde_json::from_str(&out.stdout).expect("JSON");
    let tasks = v["tasks"].as_array().expect("tasks");
    assert_eq!(tasks.len(), 3);
    let kinds: Vec<&str> = tasks.iter().filter_map(|t| t["kind"].as_str()).collect();
    assert_eq!(kinds, ["system", "job", "job"]);
    assert_eq!(tasks[0]["started_at"], "2023-11-14T22:13:20.000Z");
    assert_eq!(v["queues"][0]["concurrency"], 1);
    assert_eq!(v["queues"][0]["counts"]["succeeded"], 1);
    assert_eq!(v["scheduler"]["next_job_id"], 3);
}

#[test]
/// Shutdown sends the timeout in milliseconds and prints nothing.
fn shutdown_request() {
    let daemon = FakeDaemon::start(|s| {
        s.accept_hello();
        s.send(&Response::ShuttingDown);
    });
    let out = run_client(&daemon.socket, &["shutdown", "--timeout", "1m 30s"]);
    let got = daemon.finish();
    assert_eq!(
        got.requests[0],
        Request::Shutdown(ShutdownRequest {
            timeout_ms: Some(90_000)
        })
    );
    assert_eq!(out.code(), 0);
    assert_eq!(out.stdout, "");
}

// --- batch submits, queues, restart, clean, edit, progress -----------------

#[test]
/// `submit --stdin` sends one SubmitBatch (with the hello, in one write) and
/// prints one id per line; `--json` an array of {id, line}.
fn submit_stdin_sends_one_batch() {
    let daemon = FakeDaemon::start(|s| {
        s.accept_hello();
        s.send(&Response::SubmittedBatch {
            ids: vec![JobId(4), JobId(5)],
        });
    });
    let mut ctx = helper::ctx();
    ctx.stdin = Some(Ok("echo a\n# skipped\necho b\n".into()));
    let out = run_client_in(&daemon.socket, &["submit", "--stdin", "-q", "ci"], &ctx);
    let got = daemon.finish();
    assert_eq!(out.code(), 0, "{:?}", out.result);
    assert_eq!(out.stdout, "4\n5\n");
    assert!(got.one_write);
    assert_eq!(got.requests.len(), 1);
    let Request::SubmitBatch(batch) = &got.requests[0] else {
        panic!("sent {:?}", got.requests[0]);
    };
    assert_eq!(batch.specs.len(), 2);
    assert_eq!(batch.specs[1].command, Command::Shell("echo b".into()));
    assert!(batch.specs.iter().all(|s| s.queue == "ci"));

    let daemon = FakeDaemon::start(|s| {
        s.accept_hello();
        s.send(&Response::SubmittedBatch {
            ids: vec![JobId(4), JobId(5)],
        });
    });
    let out = run_client_in(&daemon.socket, &["--json", "submit", "--stdin"], &ctx);
    daemon.finish();
    let v: Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(
        v,
        serde_json::json!([{"id": 4, "line": 1}, {"id": 5, "line": 3}])
    );
}

#[test]
/// A batch refused by the daemon (a bad line) is exit 1 with its message.
fn submit_batch_refused() {
    let daemon = FakeDaemon::start(|s| {
        s.accept_hello();
        s.send(&Response::Error(ErrorResponse::new(
            ErrorKind::BadRequest,
            "line 2: no job 99 to wait for; `mayflyctl status` lists the jobs",
        )));
    });
    let mut ctx = helper::ctx();
    ctx.stdin = Some(Ok("true\ntrue\n".into()));
    let out = run_client_in(&daemon.socket, &["submit", "--stdin"], &ctx);
    daemon.finish();
    assert_eq!(out.code(), 1);
    assert_eq!(
        out.error(),
        "submit failed: line 2: no job 99 to wait for; `mayflyctl status` lists the jobs"
    );
}

#[test]
/// A full disk: the daemon's Storage error is exit 1 with its message.
fn storage_failure_is_exit_1_with_the_daemons_message() {
    let daemon = FakeDaemon::start(|s| {
        s.accept_hello();
        s.send(&Response::Error(ErrorResponse::new(
            ErrorKind::Storage,
            "could not write the journal: No space left on device; free space in the state dir",
        )));
    });
    let out = run_client(&daemon.socket, &["submit", "--", "true"]);
    daemon.finish();
    assert_eq!(out.code(), 1);
    assert!(
        out.error().contains("No space left on device"),
        "{}",
        out.error()
    );
    assert_eq!(out.stdout, "");
}

/// Two queues as the daemon reports them.
fn two_queues() -> Vec<QueueInfo> {
    vec![
        QueueInfo {
            name: "default".into(),
            concurrency: None,
            paused: false,
            counts: StateCounts {
                queued: 1,
                succeeded: 2,
                ..StateCounts::default()
            },
            executor: mayfly_protocol::ExecutorSpec::Local,
        },
        QueueInfo {
            name: "gpu".into(),
            concurrency: Some(2),
            paused: true,
            counts: StateCounts::default(),
            executor: mayfly_protocol::ExecutorSpec::Local,
        },
    ]
}

#[test]
/// `queue list` prints a table; `queue add` prints nothing; `--json` the queues.
fn queue_commands_round_trip() {
    let daemon = FakeDaemon::start(|s| {
        s.accept_hello();
        s.send(&Response::Queues(two_queues()));
    });
    let out = run_client(&daemon.socket, &["queue", "list"]);
    let got = daemon.finish();
    assert_eq!(got.requests[0], Request::QueueList);
    assert_eq!(
        out.stdout,
        "NAME     LIMIT      PAUSED  WAITING  QUEUED  RUNNING  DONE  EXECUTOR\n\
         default  unlimited  no      0        1       0        2     local\n\
         gpu      2          yes     0        0       0        0     local\n"
    );

    let daemon = FakeDaemon::start(|s| {
        s.accept_hello();
        s.send(&Response::Queues(two_queues()));
    });
    let out = run_client(&daemon.socket, &["queue", "add", "gpu", "-c", "2"]);
    let got = daemon.finish();
    assert_eq!(out.code(), 0);
    assert_eq!(out.stdout, "");
    assert_eq!(
        got.requests[0],
        Request::QueueSet(QueueSetRequest {
            name: "gpu".into(),
            concurrency: Some(Some(2)),
            create: true,
            executor: None,
        })
    );

    let daemon = FakeDaemon::start(|s| {
        s.accept_hello();
        s.send(&Response::Queues(two_queues()));
    });
    let out = run_client(&daemon.socket, &["--json", "pause", "gpu"]);
    let got = daemon.finish();
    assert_eq!(
        got.requests[0],
        Request::Pause(PauseRequest {
            queues: vec!["gpu".into()],
            paused: true,
            running: false
        })
    );
    let v: Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(v[1]["paused"], true);
    assert_eq!(v[1]["concurrency"], 2);

    let daemon = FakeDaemon::start(|s| {
        s.accept_hello();
        s.send(&Response::Error(ErrorResponse::new(
            ErrorKind::BadRequest,
            "queue \"gpu\" still holds 2 unfinished jobs; cancel them or wait for them first",
        )));
    });
    let out = run_client(&daemon.socket, &["queue", "rm", "gpu"]);
    daemon.finish();
    assert_eq!(out.code(), 1);
    assert!(
        out.error().starts_with("queue rm failed: queue \"gpu\""),
        "{}",
        out.error()
    );
}

#[test]
/// `restart` prints the new ids alone; `clean` prints how many went.
fn restart_and_clean_output() {
    let daemon = FakeDaemon::start(|s| {
        s.accept_hello();
        s.send(&Response::Restarted(vec![
            (JobId(3), JobId(10)),
            (JobId(4), JobId(11)),
        ]));
    });
    let out = run_client(&daemon.socket, &["restart", "3", "4"]);
    let got = daemon.finish();
    assert_eq!(
        got.requests[0],
        Request::Restart(RestartRequest {
            ids: vec![JobId(3), JobId(4)]
        })
    );
    assert_eq!(out.stdout, "10\n11\n");

    let daemon = FakeDaemon::start(|s| {
        s.accept_hello();
        s.send(&Response::Cleaned {
            ids: vec![JobId(1), JobId(2)],
        });
    });
    let out = run_client(&daemon.socket, &["clean", "--state", "failed"]);
    let got = daemon.finish();
    assert_eq!(
        got.requests[0],
        Request::Clean(CleanRequest {
            states: vec![JobState::Failed],
            older_than_ms: None
        })
    );
    assert_eq!(out.stdout, "removed 2 jobs\n");
}

#[test]
/// `edit --label` reads the job's labels, then sends the merged list, on one connection.
fn edit_merges_labels_on_one_connection() {
    let daemon = FakeDaemon::start(|s| {
        s.accept_hello();
        let mut current = job(7, JobState::Queued);
        current.labels = vec![("team".into(), "ops".into()), ("ci".into(), "yes".into())];
        s.send(&Response::Jobs(vec![current.clone()]));
        s.send(&end());
        let Request::Edit(edit) = s.recv() else {
            panic!("expected an edit");
        };
        current.labels = edit.labels.clone().unwrap_or_default();
        s.send(&Response::Jobs(vec![current]));
    });
    let out = run_client(&daemon.socket, &["--json", "edit", "7", "--label", "ci=no"]);
    let got = daemon.finish();
    assert_eq!(out.code(), 0, "{:?}", out.result);
    assert_eq!(
        got.requests[0],
        Request::Status(StatusRequest {
            ids: vec![JobId(7)]
        })
    );
    assert_eq!(
        got.requests[1],
        Request::Edit(EditRequest {
            id: JobId(7),
            priority: None,
            queue: None,
            labels: Some(vec![
                ("team".into(), "ops".into()),
                ("ci".into(), "no".into())
            ]),
        })
    );
    let v: Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(v["labels"], serde_json::json!({"team": "ops", "ci": "no"}));
}

#[test]
/// `progress` inside a job: the id comes from MAYFLY_JOB_ID; nothing is printed.
fn progress_uses_the_jobs_id() {
    let daemon = FakeDaemon::start(|s| {
        s.accept_hello();
        s.send(&Response::Ok);
    });
    let mut ctx = helper::ctx();
    ctx.job_id_env = Some("12".into());
    let out = run_client_in(&daemon.socket, &["progress", "3/10", "files"], &ctx);
    let got = daemon.finish();
    assert_eq!(out.code(), 0, "{:?}", out.result);
    assert_eq!(out.stdout, "");
    assert_eq!(
        got.requests[0],
        Request::Progress(ProgressRequest {
            id: JobId(12),
            text: "3/10 files".into()
        })
    );
}

#[test]
/// Status filters are applied by the client to what the daemon streamed.
fn status_filters_locally() {
    let daemon = FakeDaemon::start(two_chunks);
    let out = run_client(
        &daemon.socket,
        &["--json", "status", "--state", "succeeded,queued"],
    );
    let got = daemon.finish();
    assert_eq!(
        got.requests[0],
        Request::Status(StatusRequest { ids: vec![] })
    );
    let v: Value = serde_json::from_str(&out.stdout).expect("JSON");
    let ids: Vec<u64> = v
        .as_array()
        .expect("an array")
        .iter()
        .filter_map(|j| j["id"].as_u64())
        .collect();
    assert_eq!(ids, [1, 3]);
}

// --- connection failures ----------------------------------------------------

#[test]
/// A rejected handshake is exit 1 with the daemon's reason.
fn handshake_rejected() {
    let daemon = FakeDaemon::start(|s| {
        s.send(&HelloReply::Rejected {
            reason: "protocol version mismatch: client speaks 1..=1, daemon speaks 2".into(),
        });
    });
    let out = run_client(&daemon.socket, &["status"]);
    daemon.finish();
    assert_eq!(out.code(), 1);
    assert!(
        out.error()
            .contains("refused the connection: protocol version mismatch")
    );
}

#[test]
/// A daemon that hangs up during the handshake is exit 1, not "unreachable".
fn handshake_hang_up() {
    let daemon = FakeDaemon::start(|_| {});
    let out = run_client(&daemon.socket, &["status"]);
    daemon.finish();
    assert_eq!(out.code(), 1);
    assert!(
        out.error().contains("during the handshake"),
        "{}",
        out.error()
    );
}

#[test]
/// No socket file: exit 3 with the path and what to do.
fn unreachable_no_socket() {
    let dir = tempfile::tempdir().expect("temp dir");
    let socket = dir.path().join("absent.sock");
    let out = run_client(&socket, &["status"]);
    assert_eq!(out.code(), 3);
    let msg = out.error();
    assert!(msg.contains(&socket.display().to_string()), "{msg}");
    assert!(msg.contains("start it with 'mayflyd'"), "{msg}");
}

#[test]
/// A stale socket file with no daemon behind it: exit 3, "connection refused".
fn unreachable_stale_socket() {
    let dir = tempfile::tempdir().expect("temp dir");
    let socket = dir.path().join("stale.sock");
    drop(UnixListener::bind(&socket).expect("bind"));
    let out = run_client(&socket, &["submit", "--", "true"]);
    assert_eq!(out.code(), 3);
    assert!(
        out.error().contains("connection refused"),
        "{}",
        out.error()
    );
}

// --- the binary -------------------------------------------------------------

/// The built binary.
fn binary() -> Process {
    let mut cmd = Process::new(env!("CARGO_BIN_EXE_mayflyctl"));
    cmd.env_remove("MAYFLY_SOCKET");
    cmd
}

#[test]
/// Exit 3 from the real process, with exactly one `mayflyctl: ` line on stderr.
fn binary_unreachable() {
    let dir = tempfile::tempdir().expect("temp dir");
    let socket = dir.path().join("none.sock");
    let out = binary()
        .arg("--socket")
        .arg(&socket)
        .arg("status")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(3));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("mayflyctl: no daemon answers at "),
        "{stderr}"
    );
}

#[test]
/// MAYFLY_SOCKET is honoured by the real process.
fn binary_socket_from_env() {
    let dir = tempfile::tempdir().expect("temp dir");
    let socket = dir.path().join("env.sock");
    let out = binary()
        .env("MAYFLY_SOCKET", &socket)
        .arg("status")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&socket.display().to_string()), "{stderr}");
}

#[test]
/// Usage errors, ours and clap's, exit 2.
fn binary_usage_errors() {
    for args in [
        &["submit", "--priority", "100", "--", "true"][..],
        &["submit", "--env", "NOEQUALS", "--", "true"],
        &["submit"],
        &["shutdown", "--timeout", "soon"],
        &["wait", "abc"],
        &["wait"],
        &["submit", "--delay", "1s", "--at", "10:00", "--", "true"],
        &["submit", "--at", "tomorrowish", "--", "true"],
        &["pause"],
        &["resume"],
        &["edit", "3"],
        &["queue", "set", "gpu"],
        &["clean", "--state", "queued"],
        &["status", "--state", "nope"],
        &["frobnicate"],
        &[],
    ] {
        let out = binary()
            .args(["--socket", "/nonexistent/x.sock"])
            .args(args)
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(2), "{args:?}: {:?}", out);
    }
}

#[test]
/// Help and version exit 0 and teach.
fn binary_help() {
    let out = binary().arg("--help").output().expect("runs");
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("Examples:") && help.contains("Exit status:"));
    let out = binary().args(["submit", "--help"]).output().expect("runs");
    assert!(String::from_utf8_lossy(&out.stdout).contains("mayflyctl submit --shell --"));
    let out = binary().arg("--version").output().expect("runs");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
/// `logs | head`: the reader going away is a clean exit 0, not an error.
fn binary_logs_broken_pipe() {
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let daemon = FakeDaemon::start(move |s| {
        s.accept_hello();
        s.send(&Response::LogChunk(b"first\n".to_vec()));
        // Wait until the test has closed the client's stdout, then keep talking.
        let _ = done_rx.recv();
        for _ in 0..4 {
            s.send(&Response::LogChunk(b"more\n".to_vec()));
        }
        s.send(&end());
    });
    let mut child = binary()
        .arg("--socket")
        .arg(&daemon.socket)
        .args(["logs", "--follow", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawns");
    let mut stdout = child.stdout.take().expect("piped");
    let mut first = [0u8; 6];
    stdout.read_exact(&mut first).expect("first chunk");
    assert_eq!(&first, b"first\n");
    drop(stdout);
    done_tx.send(()).expect("server waiting");
    let status = child.wait().expect("exits");
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("piped")
        .read_to_string(&mut stderr)
        .expect("stderr");
    daemon.finish();
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    assert_eq!(stderr, "");
}

// --- timeouts ---------------------------------------------------------------

/// How long the timeout tests let the client wait: long enough for a slow
/// machine to get a first answer through, short enough to keep them quick.
const SHORT: &str = "300ms";

#[test]
/// A daemon that takes the connection but never answers the handshake:
/// the client gives up after --daemon-timeout, exit 3, saying so.
fn a_daemon_that_never_answers_the_handshake_times_out() {
    let daemon = FakeDaemon::start(helper::Server::until_client_leaves);
    let started = std::time::Instant::now();
    let out = run_client(&daemon.socket, &["--daemon-timeout", SHORT, "status"]);
    let took = started.elapsed();
    daemon.finish();
    assert_eq!(out.code(), 3, "{:?}", out.result);
    let error = out.error();
    assert!(
        error.contains("within 300ms during the handshake") && error.contains("--daemon-timeout"),
        "{error}"
    );
    assert!(took < std::time::Duration::from_secs(5), "took {took:?}");
}

#[test]
/// A daemon that shakes hands and then never answers: exit 1, after
/// MAYFLY_DAEMON_TIMEOUT.
fn a_daemon_that_stops_answering_fails_the_request() {
    let daemon = FakeDaemon::start(|s| {
        s.accept_hello();
        s.until_client_leaves();
    });
    let ctx = mayflyctl::ClientContext {
        daemon_timeout_env: Some(SHORT.to_string()),
        ..helper::ctx()
    };
    let out = run_client_in(&daemon.socket, &["status"], &ctx);
    daemon.finish();
    assert_eq!(out.code(), 1, "{:?}", out.result);
    assert!(
        out.error()
            .contains("within 300ms before the answer was complete"),
        "{}",
        out.error()
    );
}

#[test]
/// `wait` blocks on purpose: an answer that comes long after the timeout is
/// still read.
fn wait_is_not_cut_short_by_the_timeout() {
    let daemon = FakeDaemon::start(|s| {
        s.accept_hello();
        std::thread::sleep(std::time::Duration::from_millis(900));
        s.send(&Response::JobEnded(Box::new(ended(
            1,
            JobState::Succeeded,
            Some(0),
            None,
        ))));
        s.send(&end());
    });
    let out = run_client(&daemon.socket, &["--daemon-timeout", SHORT, "wait", "1"]);
    daemon.finish();
    assert_eq!(out.code(), 0, "{:?}", out.result);
}

#[test]
/// A daemon whose backlog is full does not take the connection: the
/// connect itself gives up, exit 3.
fn a_full_backlog_times_out_while_connecting() {
    use nix::sys::socket::{self, AddressFamily, Backlog, SockFlag, SockType, UnixAddr};
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("full.sock");
    let listener = socket::socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .expect("a socket");
    socket::bind(
        std::os::fd::AsRawFd::as_raw_fd(&listener),
        &UnixAddr::new(&path).expect("an address"),
    )
    .expect("bind");
    socket::listen(&listener, Backlog::new(0).expect("a backlog")).expect("listen");
    // Never accepted: it fills the backlog of 0.
    let _queued = std::os::unix::net::UnixStream::connect(&path).expect("the first connect");
    let started = std::time::Instant::now();
    let out = run_client(&path, &["--daemon-timeout", SHORT, "status"]);
    let took = started.elapsed();
    assert_eq!(out.code(), 3, "{:?}", out.result);
    assert!(out.error().contains("while connecting"), "{}", out.error());
    assert!(took < std::time::Duration::from_secs(5), "took {took:?}");
}
