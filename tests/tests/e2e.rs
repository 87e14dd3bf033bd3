//! End-to-end tests: the real `mayflyd` driven by the real `mayflyctl` (and,
//! where the wire itself is under test, by a raw protocol client).
//!
//! Each test starts its own daemon through [`helper::Daemon`], so tests run
//! in parallel; each is named after the contract rule it guards
//! (`docs/protocol.md` for the wire, the JSON and the exit codes,
//! `docs/architecture.md` for the scheduling). Job scripts are bounded:
//! every loop gives up after 30 s.

use std::io::{ErrorKind as IoErrorKind, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::process::Command;

use mayfly_protocol::{
    ErrorKind, Hello, HelloReply, MAGIC, PROTOCOL_VERSION, Request, Response, StatusRequest,
    SubmitRequest, read_frame,
};
use serde_json::Value;

use crate::helper;
use crate::helper::raw::{RawClient, connect_raw, frame, shell_spec};
use crate::helper::{
    DEADLINE, Daemon, Grandchild, code_of, process_gone, read_pid_file, run, stderr_of, stdout_of,
    until_file, wait_until, write_pid,
};

/// Turns job ids into the string arguments `wait`/`cancel` take.
fn id_args(ids: &[u64]) -> Vec<String> {
    ids.iter().map(u64::to_string).collect()
}

/// Runs `mayflyctl wait IDS…` and returns its exit code.
fn wait_code(d: &Daemon, ids: &[u64]) -> i32 {
    let ids = id_args(ids);
    let mut args = vec!["wait"];
    args.extend(ids.iter().map(String::as_str));
    code_of(&d.ctl(&args))
}

/// Runs `mayflyctl wait IDS…` and asserts every job succeeded.
fn wait_all_succeeded(d: &Daemon, ids: &[u64]) {
    assert_eq!(wait_code(d, ids), 0, "not every job of {ids:?} succeeded");
}

/// `mayflyctl logs ID [EXTRA…]`, asserted to succeed.
fn logs(d: &Daemon, id: u64, extra: &[&str]) -> String {
    let id = id.to_string();
    let mut args = vec!["logs", id.as_str()];
    args.extend_from_slice(extra);
    d.ctl_ok(&args)
}

// ------------------------------------------------------------------ output

/// A job's stdout and stderr land in separate files: `logs` shows one,
/// `logs --stderr` the other.
#[test]
fn logs_keep_stdout_and_stderr_apart() {
    let d = Daemon::start(&[]);
    let id = d.submit_shell(&[], "echo to-out; echo to-err >&2");
    wait_all_succeeded(&d, &[id]);
    assert_eq!(logs(&d, id, &[]), "to-out");
    assert_eq!(logs(&d, id, &["--stderr"]), "to-err");
}

/// `logs --follow` on a running job streams output as it is written and ends
/// (exit 0) when the job ends.
#[test]
fn logs_follow_streams_until_the_job_ends() {
    let d = Daemon::start(&[]);
    let script = format!("echo first; {}; echo second", until_file("release"));
    let id = d.submit_shell(&[], &script);
    let mut follow = d.ctl_spawn(&["logs", &id.to_string(), "--follow"]);
    wait_until(DEADLINE, "`logs --follow` to print the first line", || {
        follow.stdout_so_far().contains("first")
    });
    assert!(
        follow.is_running(),
        "`logs --follow` ended while the job still runs: {:?}",
        follow.stdout_so_far()
    );
    d.touch("release");
    let out = follow.finish(DEADLINE);
    assert!(out.status.success(), "logs --follow: {}", stderr_of(&out));
    assert_eq!(stdout_of(&out), "first\nsecond");
}

// --------------------------------------------------------------- scheduling

/// Under `--concurrency 1`, queued jobs start lowest priority number first,
/// and jobs of equal priority in submission order.
#[test]
fn lower_priority_number_runs_first_and_ties_are_fifo() {
    let d = Daemon::start(&["--concurrency", "1"]);
    let blocker = d.submit_shell(&[], &format!("touch started; {}", until_file("release")));
    wait_until(DEADLINE, "the blocker job to start", || {
        d.file("started").exists()
    });
    let mut ids = vec![blocker];
    for (priority, tag) in [("90", "90"), ("10", "10a"), ("50", "50"), ("10", "10b")] {
        ids.push(d.submit_shell(&["--priority", priority], &format!("echo {tag} >> order")));
    }
    d.touch("release");
    wait_all_succeeded(&d, &ids);
    let order = std::fs::read_to_string(d.file("order")).expect("the order file");
    assert_eq!(
        order.split_whitespace().collect::<Vec<_>>(),
        ["10a", "10b", "50", "90"]
    );
}

/// With `--concurrency 2`, never more than two jobs run at once, and two do.
///
/// "Never more than two" is read from the jobs' own start and end times.
/// "Two do" is not: how many of these short jobs happen to overlap depends
/// on how fast the submits come, and a loaded machine may run them one
/// after another. Two jobs that each wait for the other to start prove it
/// instead: both succeed only if both ran at once.
#[test]
fn concurrency_limit_holds_under_load() {
    const JOBS: usize = 12;
    let d = Daemon::start(&["--concurrency", "2"]);
    let script = "date +%s%N > start.$MAYFLY_JOB_ID; sleep 0.2; date +%s%N > end.$MAYFLY_JOB_ID";
    let ids: Vec<u64> = (0..JOBS).map(|_| d.submit_shell(&[], script)).collect();
    wait_all_succeeded(&d, &ids);

    let read_ns = |name: String| -> u128 {
        let text = std::fs::read_to_string(d.file(&name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        text.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name} holds {text:?}, not nanoseconds"))
    };
    let spans: Vec<(u128, u128)> = ids
        .iter()
        .map(|id| (read_ns(format!("start.{id}")), read_ns(format!("end.{id}"))))
        .collect();
    // A job's end is written before its process exits, and the next start
    // after the next process was spawned, so back-to-back jobs never overlap.
    let max_overlap = spans
        .iter()
        .map(|&(s, _)| spans.iter().filter(|&&(s2, e2)| s2 <= s && s < e2).count())
        .max()
        .unwrap_or(0);
    assert!(
        max_overlap <= 2,
        "{max_overlap} jobs ran at once: {spans:?}"
    );

    let meet = |me: &str, other: &str| format!("touch {me}; {}; [ -e {other} ]", until_file(other));
    let pair = [
        d.submit_shell(&[], &meet("left", "right")),
        d.submit_shell(&[], &meet("right", "left")),
    ];
    assert_eq!(
        wait_code(&d, &pair),
        0,
        "the second slot was never used: jobs {pair:?} did not run at once"
    );
}

// ------------------------------------------------------------------- cancel

/// Cancelling a queued job ends it `cancelled` without ever running it.
#[test]
fn cancel_of_a_queued_job_means_it_never_runs() {
    let d = Daemon::start(&["--concurrency", "1"]);
    let blocker = d.submit_shell(&[], &format!("touch started; {}", until_file("release")));
    wait_until(DEADLINE, "the blocker job to start", || {
        d.file("started").exists()
    });
    let queued = d.submit_shell(&[], "touch ran");
    assert_eq!(d.state(queued), "queued");
    d.ctl_ok(&["cancel", &queued.to_string()]);
    assert_eq!(d.state(queued), "cancelled");

    d.touch("release");
    wait_all_succeeded(&d, &[blocker]);
    let job = d.job(queued);
    assert_eq!(job["state"], "cancelled");
    assert_eq!(job["attempts"], 0);
    assert!(
        job["started_at"].is_null(),
        "a cancelled job started: {job}"
    );
    assert!(!d.file("ran").exists(), "the cancelled job ran");
}

/// Cancelling a running job signals its whole process group: the job ends
/// `cancelled` and a grandchild it started in the background is gone too.
#[test]
fn cancel_of_a_running_job_kills_its_grandchildren() {
    let d = Daemon::start(&[]);
    let id = d.submit_shell(
        &[],
        "sleep 300 & echo $! > gc.pid.tmp && mv gc.pid.tmp gc.pid; wait",
    );
    let grandchild = Grandchild(read_pid_file(&d.file("gc.pid")));
    d.wait_state(id, "running");
    assert!(!process_gone(grandchild.0), "the grandchild never ran");

    d.ctl_ok(&["cancel", &id.to_string()]);
    d.ctl(&["wait", "--quiet", &id.to_string()]);
    assert_eq!(d.state(id), "cancelled");
    wait_until(DEADLINE, "the job's grandchild to be killed", || {
        process_gone(grandchild.0)
    });
}

// --------------------------------------------------------------- exit codes

/// `submit --wait` and `wait` exit with the job's exit code, 128+N for a job
/// killed by signal N.
#[test]
fn wait_exits_with_the_jobs_exit_code() {
    let d = Daemon::start(&[]);
    let out = d.ctl(&["submit", "--wait", "--shell", "--", "exit 3"]);
    assert_eq!(
        code_of(&out),
        3,
        "submit --wait of `exit 3`: {}",
        stderr_of(&out)
    );
    let out = d.ctl(&["submit", "--wait", "--shell", "--", "kill -9 $$"]);
    assert_eq!(
        code_of(&out),
        137,
        "submit --wait of `kill -9 $$`: {}",
        stderr_of(&out)
    );

    let three = d.submit_shell(&[], "exit 3");
    assert_eq!(wait_code(&d, &[three]), 3);
    let killed = d.submit_shell(&[], "kill -9 $$");
    assert_eq!(wait_code(&d, &[killed]), 137);
    let job = d.job(killed);
    assert_eq!(job["state"], "failed");
    assert_eq!(job["signal"], 9);
}

/// A job that ends without an exit code (cancelled) makes `wait` and
/// `submit --wait` exit 1.
#[test]
fn wait_on_a_cancelled_job_exits_1() {
    let d = Daemon::start(&["--concurrency", "1"]);
    let blocker = d.submit_shell(&[], &format!("touch started; {}", until_file("release")));
    wait_until(DEADLINE, "the blocker job to start", || {
        d.file("started").exists()
    });

    let queued = d.submit_shell(&[], "true");
    d.ctl_ok(&["cancel", &queued.to_string()]);
    assert_eq!(wait_code(&d, &[queued]), 1);

    // `submit --wait` of a job that is cancelled while it waits in the queue.
    let waiting = d.ctl_spawn(&["submit", "--wait", "--shell", "--", "true"]);
    let mut newest = 0;
    wait_until(DEADLINE, "the `submit --wait` job to be queued", || {
        newest = d
            .status_json()
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|j| j["id"].as_u64())
            .max()
            .unwrap_or(0);
        newest > queued
    });
    d.ctl_ok(&["cancel", &newest.to_string()]);
    let out = waiting.finish(DEADLINE);
    assert_eq!(
        code_of(&out),
        1,
        "submit --wait of a cancelled job: {}",
        stderr_of(&out)
    );

    d.touch("release");
    wait_all_succeeded(&d, &[blocker]);
}

/// A job cancelled while it runs ended without an exit code of its own (the
/// daemon's SIGTERM stopped it), so `wait` exits 1, as for any cancelled job.
#[test]
fn wait_on_a_job_cancelled_while_running_exits_1() {
    let d = Daemon::start(&[]);
    let id = d.submit_shell(&[], &format!("touch started; {}", until_file("release")));
    wait_until(DEADLINE, "the job to start", || d.file("started").exists());
    d.ctl_ok(&["cancel", &id.to_string()]);
    let code = wait_code(&d, &[id]);
    let job = d.job(id);
    assert_eq!(job["state"], "cancelled", "{job}");
    assert_eq!(code, 1, "wait on a job cancelled while running: {job}");
}

/// `wait` on several jobs exits 0 when all succeeded and 1 when any did not.
#[test]
fn wait_on_several_jobs_exits_0_only_if_all_succeeded() {
    let d = Daemon::start(&[]);
    let a = d.submit_shell(&[], "true");
    let b = d.submit_shell(&[], "exit 0");
    let failed = d.submit_shell(&[], "exit 3");
    assert_eq!(wait_code(&d, &[a, b]), 0);
    assert_eq!(wait_code(&d, &[a, failed, b]), 1);
}

// ------------------------------------------------------------------- socket

/// A second daemon on a socket a live daemon serves refuses to start, says
/// why, and leaves the first daemon serving.
#[test]
fn second_daemon_on_a_live_socket_is_refused() {
    let mut d = Daemon::start(&[]);
    let out = run(Command::new(helper::bin("mayflyd"))
        .arg("--socket")
        .arg(d.socket())
        .arg("--state-dir")
        .arg(d.dir().join("state2")));
    assert!(
        !out.status.success(),
        "a second daemon started on a live socket"
    );
    let err = stderr_of(&out);
    assert!(
        err.contains("another mayflyd is") && err.contains("serving"),
        "unclear refusal: {err}"
    );
    assert!(d.is_running());
    d.ctl_ok(&["status"]);
}

/// A socket file that no daemon answers on is replaced.
#[test]
fn stale_socket_is_taken_over() {
    let dir = tempfile::tempdir().expect("temp dir");
    let socket = dir.path().join("s.sock");
    drop(UnixListener::bind(&socket).expect("bind a socket to leave behind"));
    assert!(socket.exists(), "the stale socket file is gone");
    let d = Daemon::start_in(dir, socket, &[]);
    let id = d.submit_shell(&[], "echo hello");
    wait_all_succeeded(&d, &[id]);
}

/// The socket is `0600` and a socket folder the daemon creates is `0700`.
#[test]
fn socket_is_0600_in_a_new_0700_folder() {
    let dir = tempfile::tempdir().expect("temp dir");
    let socket = dir.path().join("run").join("mayfly").join("s.sock");
    let d = Daemon::start_in(dir, socket, &[]);
    let mode = |p: &Path| {
        std::fs::metadata(p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(d.socket()), 0o600, "socket mode");
    let folder = d.socket().parent().expect("socket folder");
    assert_eq!(mode(folder), 0o700, "socket folder mode");
}

/// Without a daemon (no socket, or a stale one), the CLI exits 3 with one
/// line on stderr that says what to do.
#[test]
fn no_daemon_means_exit_3_with_a_one_line_hint() {
    let dir = tempfile::tempdir().expect("temp dir");
    let stale = dir.path().join("stale.sock");
    drop(UnixListener::bind(&stale).expect("bind a socket to leave behind"));
    for socket in [dir.path().join("absent.sock"), stale] {
        let out = run(Command::new(helper::bin("mayflyctl"))
            .arg("--socket")
            .arg(&socket)
            .arg("status")
            .current_dir(dir.path()));
        let err = stderr_of(&out);
        assert_eq!(code_of(&out), 3, "status without a daemon: {err}");
        assert_eq!(err.lines().count(), 1, "not one line: {err:?}");
        assert!(err.contains("mayflyd"), "no hint to start mayflyd: {err:?}");
    }
}

// ------------------------------------------------------------- wire protocol

/// Reads until the daemon closes `stream`; a read timeout means the daemon
/// left a bad connection open.
fn assert_closed(stream: &mut UnixStream, what: &str) {
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == IoErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), IoErrorKind::WouldBlock | IoErrorKind::TimedOut) => {
                panic!("the daemon kept the connection with {what} open")
            }
            // Reset by the daemon: closed as well.
            Err(_) => return,
        }
    }
}

/// The answer to a bad hello must be a refusal or a closed connection.
fn assert_hello_refused(stream: &mut UnixStream, what: &str) -> Option<String> {
    let reason = match read_frame::<HelloReply>(stream) {
        Ok(Some(HelloReply::Rejected { reason })) => Some(reason),
        Ok(None) => None,
        Ok(Some(accepted)) => panic!("{what} was accepted: {accepted:?}"),
        Err(mayfly_protocol::FrameError::Io(e))
            if matches!(e.kind(), IoErrorKind::WouldBlock | IoErrorKind::TimedOut) =>
        {
            panic!("no answer to {what}")
        }
        Err(_) => None,
    };
    assert_closed(stream, what);
    reason
}

/// The answer to a bad request after a good hello must be an error frame
/// (`Protocol`) or a closed connection.
fn assert_request_refused(stream: &mut UnixStream, what: &str) {
    match read_frame::<HelloReply>(stream) {
        Ok(Some(HelloReply::Accepted { .. })) => {}
        other => panic!("the good hello before {what} was not accepted: {other:?}"),
    }
    match read_frame::<Response>(stream) {
        Ok(Some(Response::Error(e))) => assert_eq!(e.kind, ErrorKind::Protocol, "{what}: {e}"),
        Ok(None) => {}
        Ok(Some(other)) => panic!("{what} got {other:?}"),
        Err(mayfly_protocol::FrameError::Io(e))
            if matches!(e.kind(), IoErrorKind::WouldBlock | IoErrorKind::TimedOut) =>
        {
            panic!("no answer to {what}")
        }
        Err(_) => {}
    }
    assert_closed(stream, what);
}

/// Garbage, an oversize length prefix, an undecodable request, a wrong
/// protocol version and a client that stalls mid-frame each get an error or a
/// closed connection, while other clients keep being served and the daemon
/// stays up.
#[test]
fn bad_input_is_refused_and_other_clients_are_served() {
    let mut d = Daemon::start(&[]);

    // A client that sends half a length prefix and then nothing.
    let mut stalled = connect_raw(d.socket());
    stalled.write_all(&[0, 0]).expect("write");

    let mut garbage = connect_raw(d.socket());
    garbage
        .write_all(b"GET / HTTP/1.1\r\nHost: mayfly\r\n\r\n")
        .expect("write");

    let mut version = connect_raw(d.socket());
    let hello = Hello {
        magic: MAGIC,
        min_version: PROTOCOL_VERSION + 1,
        max_version: PROTOCOL_VERSION + 9,
    };
    version.write_all(&frame(&hello)).expect("write");

    let mut oversize = connect_raw(d.socket());
    let mut bytes = frame(&Hello::current());
    bytes.extend_from_slice(&[0xff; 4]);
    oversize.write_all(&bytes).expect("write");

    let mut undecodable = connect_raw(d.socket());
    let mut bytes = frame(&Hello::current());
    bytes.extend_from_slice(&[0, 0, 0, 5, 0xff, 0xff, 0xff, 0xff, 0xff]);
    undecodable.write_all(&bytes).expect("write");

    // Others are served while all of those are open.
    d.ctl_ok(&["status"]);

    assert_hello_refused(&mut garbage, "garbage instead of a hello");
    let reason = assert_hello_refused(&mut version, "a hello of a newer protocol version");
    if let Some(reason) = reason {
        assert!(reason.contains("version"), "unclear refusal: {reason}");
    }
    assert_request_refused(&mut oversize, "a 0xFFFFFFFF length prefix");
    assert_request_refused(&mut undecodable, "an undecodable request");

    // Still serving, on the raw protocol and through the CLI.
    let answer =
        RawClient::connect(d.socket()).request(&Request::Status(StatusRequest { ids: Vec::new() }));
    assert!(
        matches!(answer.last(), Some(Response::End)),
        "status after bad input: {answer:?}"
    );
    let id = d.submit_shell(&[], "echo still-here");
    wait_all_succeeded(&d, &[id]);
    assert_eq!(logs(&d, id, &[]), "still-here");
    assert!(d.is_running(), "the daemon died of bad input");
    // The stalled client is let go once the handshake timeout (5 s) passes.
    assert_hello_refused(&mut stalled, "half a length prefix, then silence");
}

/// The error of a refused request, or a panic naming what was answered.
fn refusal(answer: &[Response]) -> String {
    match answer {
        [Response::Error(e)] => {
            assert_eq!(e.kind, ErrorKind::BadRequest, "{e:?}");
            e.message.clone()
        }
        other => panic!("expected one BadRequest error, got {other:?}"),
    }
}

/// Regression: the daemon accepted specs no process can be started with
/// (an environment name with '=' or NUL, NUL in an argument), label keys
/// that break every listing, a working directory that does not exist, and
/// lists naming one job many times (`restart 1 1 1` made three copies; a
/// status request repeating one id answered with as many copies). Each is
/// refused at submit, naming the field, and quoting at most a little of it.
#[test]
fn bad_specs_and_repeated_ids_are_refused_naming_the_field() {
    let d = Daemon::start(&[]);
    let mut raw = RawClient::connect(d.socket());
    let good = shell_spec("true", d.work());
    let submit = |spec: mayfly_protocol::JobSpec| Request::Submit(SubmitRequest { spec });

    let cases: Vec<(&str, mayfly_protocol::JobSpec, &str)> = vec![
        (
            "an empty env name",
            {
                let mut s = good.clone();
                s.env.push((String::new(), "v".into()));
                s
            },
            "environment variable name",
        ),
        (
            "'=' in an env name",
            {
                let mut s = good.clone();
                s.env.push(("A=B".into(), "v".into()));
                s
            },
            "\"A=B\"",
        ),
        (
            "NUL in an env name",
            {
                let mut s = good.clone();
                s.env.push(("A\0B".into(), "v".into()));
                s
            },
            "environment variable name",
        ),
        (
            "NUL in an env value",
            {
                let mut s = good.clone();
                s.env.push(("TOKEN".into(), "a\0b".into()));
                s
            },
            "\"TOKEN\" has a NUL byte",
        ),
        (
            "NUL in an argument",
            {
                let mut s = good.clone();
                s.command = mayfly_protocol::Command::Argv(
                    vec!["echo".into(), "a\0b".into()]
                        .try_into()
                        .expect("a program"),
                );
                s
            },
            "word 2 of the command",
        ),
        (
            "NUL in a shell line",
            {
                let mut s = good.clone();
                s.command = mayfly_protocol::Command::Shell("echo a\0b".into());
                s
            },
            "NUL byte",
        ),
        (
            "an empty label key",
            {
                let mut s = good.clone();
                s.labels.push((String::new(), "v".into()));
                s
            },
            "label key",
        ),
        (
            "a newline in a label key",
            {
                let mut s = good.clone();
                s.labels.push(("a\nb".into(), "v".into()));
                s
            },
            "label key",
        ),
        (
            "a missing working directory",
            {
                let mut s = good.clone();
                s.cwd = d.work().join("no-such-dir").display().to_string();
                s
            },
            "no-such-dir",
        ),
        (
            "a file as working directory",
            {
                d.touch("a-file");
                let mut s = good.clone();
                s.cwd = d.file("a-file").display().to_string();
                s
            },
            "is not a directory",
        ),
    ];
    for (what, spec, names) in cases {
        let message = refusal(&raw.request(&submit(spec)));
        assert!(message.contains(names), "{what}: {message}");
    }
    let long = "q".repeat(10_000);
    let mut spec = good.clone();
    spec.queue = long.clone();
    let message = refusal(&raw.request(&submit(spec)));
    assert!(
        message.contains("queue name") && message.len() < 300,
        "a 10k-character queue name is quoted whole: {} bytes",
        message.len()
    );
    // Nothing above was accepted: the next job is job 1.
    let first = d.submit(&["--", "true"]);
    assert_eq!(first, 1);
    wait_all_succeeded(&d, &[first]);

    // Through the CLI too, with the exit code of a refusal.
    let out = d.ctl(&["submit", "--cwd", "/no/such/mayfly/dir", "--", "true"]);
    assert_eq!(code_of(&out), 1, "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("/no/such/mayfly/dir"),
        "{}",
        stderr_of(&out)
    );
    for args in [
        ["restart", "1", "1"],
        ["status", "1", "1"],
        ["cancel", "1", "1"],
    ] {
        let out = d.ctl(&args);
        assert_eq!(code_of(&out), 1, "{args:?}: {}", stderr_of(&out));
        assert!(
            stderr_of(&out).contains("job 1 is named more than once"),
            "{args:?}: {}",
            stderr_of(&out)
        );
    }
    let listed = d.status_json();
    assert_eq!(
        listed.as_array().map(Vec::len),
        Some(1),
        "restart 1 1 made copies: {listed}"
    );
}

/// Regression: a 1 MB command was written whole into one activity-log
/// line (and every `events` reader got all of it). The log tells the start
/// of a long command and its length; `status` still shows it whole.
#[test]
fn a_huge_command_is_not_logged_whole() {
    let d = Daemon::start(&[]);
    // Words of 1,000 characters: one 1 MB word is more than Linux lets a
    // program be given (128 KiB a word), and the job should succeed.
    let line = format!("true{}", format!(" {}", "x".repeat(999)).repeat(1000));
    let mut cmd = d.ctl_command();
    cmd.args(["submit", "--stdin"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("start mayflyctl submit --stdin");
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(format!("{line}\n").as_bytes())
        .expect("write the command");
    let out = child.wait_with_output().expect("mayflyctl submit --stdin");
    assert_eq!(code_of(&out), 0, "{}", stderr_of(&out));
    let id: u64 = stdout_of(&out).trim().parse().expect("an id");
    wait_all_succeeded(&d, &[id]);

    let longest = d.log_text().lines().map(str::len).max().unwrap_or(0);
    assert!(longest < 16 * 1024, "a log line of {longest} bytes");
    let events = d.ctl_ok(&["--json", "events"]);
    let submitted: Value = events
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("a JSON line"))
        .find(|e| e["event"] == "JobSubmitted")
        .expect("a JobSubmitted event");
    let told = submitted["command"].as_str().expect("the command");
    assert!(
        told.len() < 4096 && told.contains(&format!("({} bytes)", line.len())),
        "the event tells {} bytes of the command",
        told.len()
    );
    assert_eq!(d.job(id)["command"], line.as_str(), "status shows it whole");
}

/// A client may pipeline: a hello and 50 submits in one write get 50
/// `Submitted` answers, in request order (ids strictly increasing, and the
/// k-th id runs the k-th command).
#[test]
fn pipelined_submits_are_answered_in_request_order() {
    const N: usize = 50;
    let d = Daemon::start(&[]);
    let mut stream = connect_raw(d.socket());
    let mut bytes = frame(&Hello::current());
    for k in 0..N {
        let spec = shell_spec(&format!("echo {k}"), d.work());
        bytes.extend(frame(&Request::Submit(SubmitRequest { spec })));
    }
    stream.write_all(&bytes).expect("write the pipeline");

    match read_frame::<HelloReply>(&mut stream) {
        Ok(Some(HelloReply::Accepted { .. })) => {}
        other => panic!("handshake: {other:?}"),
    }
    let ids: Vec<u64> = (0..N)
        .map(|k| match read_frame::<Response>(&mut stream) {
            Ok(Some(Response::Submitted { id })) => id.0,
            other => panic!("answer {k}: {other:?}"),
        })
        .collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "ids not strictly increasing: {ids:?}"
    );
    wait_all_succeeded(&d, &ids);
    for k in [0, N / 2, N - 1] {
        assert_eq!(
            logs(&d, ids[k], &[]),
            k.to_string(),
            "output of job {}",
            ids[k]
        );
    }
}

// ----------------------------------------------------------------- shutdown

/// SIGTERM to the daemon stops a running job's process and the daemon exits 0.
#[test]
fn sigterm_stops_running_jobs_and_exits_0() {
    let mut d = Daemon::start(&["--shutdown-timeout", "3s"]);
    d.submit_shell(
        &[],
        &format!("{}; {}", write_pid("job.pid"), until_file("release")),
    );
    let pid = read_pid_file(&d.file("job.pid"));
    let status = d.stop();
    assert!(
        status.success(),
        "mayflyd exited with {status} after SIGTERM"
    );
    wait_until(DEADLINE, "the job's process to be gone", || {
        process_gone(pid)
    });
}

/// `mayflyctl shutdown` stops a running job's process and the daemon exits 0.
#[test]
fn ctl_shutdown_stops_running_jobs_and_exits_0() {
    let mut d = Daemon::start(&["--shutdown-timeout", "3s"]);
    d.submit_shell(
        &[],
        &format!("{}; {}", write_pid("job.pid"), until_file("release")),
    );
    let pid = read_pid_file(&d.file("job.pid"));
    d.ctl_ok(&["shutdown"]);
    let status = d.wait_exit(DEADLINE);
    assert!(
        status.success(),
        "mayflyd exited with {status} after `mayflyctl shutdown`"
    );
    wait_until(DEADLINE, "the job's process to be gone", || {
        process_gone(pid)
    });
}

// -------------------------------------------------------------- job context

/// A job sees its own id and the socket, plus the environment and working
/// directory of the shell that submitted it.
#[test]
fn job_sees_its_id_the_socket_and_the_submitters_env_and_cwd() {
    let d = Daemon::start(&[]);
    let elsewhere = d.dir().join("elsewhere");
    std::fs::create_dir(&elsewhere).expect("create a folder");
    let script = r#"echo "id=$MAYFLY_JOB_ID"; echo "socket=$MAYFLY_SOCKET"; echo "foo=$FOO"; pwd"#;
    let out = run(d
        .ctl_command()
        .current_dir(&elsewhere)
        .env("FOO", "bar")
        .args(["submit", "--shell", "--", script]));
    assert!(out.status.success(), "submit: {}", stderr_of(&out));
    let id: u64 = stdout_of(&out).parse().expect("submit prints the id");
    wait_all_succeeded(&d, &[id]);

    let cwd = elsewhere.canonicalize().expect("canonical path");
    let expected = format!(
        "id={id}\nsocket={}\nfoo=bar\n{}",
        d.socket().display(),
        cwd.display()
    );
    assert_eq!(logs(&d, id, &[]), expected);
}

// -------------------------------------------------------------- JSON shapes

/// True for an RFC 3339 timestamp such as `2025-01-02T03:04:05Z` (the shape,
/// not the calendar).
fn is_rfc3339(v: &Value) -> bool {
    let Some(s) = v.as_str() else { return false };
    let b = s.as_bytes();
    b.len() >= 20
        && b[4] == b'-'
        && b[7] == b'-'
        && matches!(b[10], b'T' | b't')
        && b[13] == b':'
        && b[16] == b':'
        && (s.ends_with(['Z', 'z']) || b[b.len() - 6] == b'+' || b[b.len() - 6] == b'-')
}

/// `status --json` prints an array of job objects with the contract's fields.
#[test]
fn status_json_has_the_contract_fields() {
    let d = Daemon::start(&[]);
    let shell = d.submit(&[
        "--priority",
        "7",
        "--label",
        "team=infra",
        "--shell",
        "--",
        "echo hi",
    ]);
    let argv = d.submit(&["--", "echo", "two words"]);
    wait_all_succeeded(&d, &[shell, argv]);

    let all = d.status_json();
    let jobs = all.as_array().expect("status --json prints an array");
    assert_eq!(jobs.len(), 2, "{all}");
    for job in jobs {
        for field in [
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
        ] {
            assert!(
                job.get(field).is_some(),
                "job object lacks {field:?}: {job}"
            );
        }
        assert_eq!(job["state"], "succeeded", "{job}");
        assert_eq!(job["queue"], "default", "{job}");
        assert_eq!(job["exit_code"], 0, "{job}");
        assert!(job["signal"].is_null(), "{job}");
        assert_eq!(job["attempts"], 1, "{job}");
        for time in ["submitted_at", "started_at", "finished_at"] {
            assert!(is_rfc3339(&job[time]), "{time} is not RFC 3339: {job}");
        }
        let cwd = job["cwd"]
            .as_str()
            .map(|c| Path::new(c).canonicalize().ok());
        assert_eq!(cwd, Some(d.work().canonicalize().ok()), "{job}");
    }

    let job = d.job(shell);
    assert_eq!(job["priority"], 7);
    assert_eq!(job["command"], "echo hi");
    let labels = job["labels"].to_string();
    assert!(
        labels.contains("team") && labels.contains("infra"),
        "labels: {labels}"
    );
    let job = d.job(argv);
    assert_eq!(job["priority"], 50);
    assert_eq!(job["command"], serde_json::json!(["echo", "two words"]));
}

/// `dump-state` prints `tasks` (jobs with `kind: job`; system tasks with
/// `kind: system` at priority 0), `queues` (with `default`) and `scheduler`.
#[test]
fn dump_state_lists_tasks_queues_and_scheduler() {
    let d = Daemon::start(&["--concurrency", "3"]);
    let ids = [d.submit_shell(&[], "true"), d.submit_shell(&[], "true")];
    wait_all_succeeded(&d, &ids);

    let out = d.ctl_ok(&["dump-state"]);
    let state: Value = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("dump-state printed invalid JSON ({e}): {out}"));
    let tasks = state["tasks"].as_array().expect("tasks is an array");
    let mut job_ids = Vec::new();
    for task in tasks {
        match task["kind"].as_str() {
            Some("job") => job_ids.push(task["id"].as_u64().expect("a job task has an id")),
            Some("system") => {
                assert!(task["name"].is_string(), "{task}");
                assert_eq!(task["priority"], 0, "{task}");
                assert!(task["state"].is_string(), "{task}");
            }
            _ => panic!("task of unknown kind: {task}"),
        }
    }
    job_ids.sort_unstable();
    assert_eq!(job_ids, ids);
    for task in tasks.iter().filter(|t| t["kind"] == "job") {
        assert_eq!(task["state"], "succeeded", "{task}");
    }
    let queues = state["queues"].as_array().expect("queues is an array");
    let default = queues
        .iter()
        .find(|q| q["name"] == "default")
        .unwrap_or_else(|| panic!("no default queue: {out}"));
    assert_eq!(default["paused"], false, "{default}");
    assert_eq!(default["counts"]["succeeded"], 2, "{default}");
    let scheduler = &state["scheduler"];
    assert!(scheduler.is_object(), "no scheduler object: {out}");
    assert_eq!(scheduler["concurrency"], 3, "the global limit: {scheduler}");
}
