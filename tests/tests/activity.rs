//! The activity log and the state snapshots, end to end: `mayflyctl events`
//! (recent and `--follow`), system tasks in `dump-state`, `mayflyd
//! --dump-state` on shutdown, and SIGUSR1.

#[path = "helper/wait.rs"]
#[allow(
    dead_code,
    reason = "shared with the other test binaries; this one uses part of it"
)]
mod wait;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

use wait::{DEADLINE, wait_until};

/// A built binary of this workspace, next to the test binary's folder.
fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace` first",
        path.display()
    );
    path
}

/// A `mayflyd` started by this test, with stdout and stderr in files; killed
/// by its pid if the test fails before it stops.
struct Daemon {
    /// The process.
    child: Child,
    /// Its temp dir (socket, state, logs, work dir).
    dir: tempfile::TempDir,
}

impl Daemon {
    /// Starts `mayflyd` with its own socket and state dir plus `args`, and
    /// waits until it answers.
    fn start(args: &[&str]) -> Self {
        Self::start_with_env(args, &[])
    }

    /// [`Daemon::start`] with extra environment variables for the daemon.
    fn start_with_env(args: &[&str], env: &[(&str, &std::ffi::OsStr)]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("work")).expect("work dir");
        let stdout = std::fs::File::create(dir.path().join("stdout")).expect("stdout file");
        let stderr = std::fs::File::create(dir.path().join("stderr")).expect("stderr file");
        let child = Command::new(bin("mayflyd"))
            .arg("--socket")
            .arg(dir.path().join("s.sock"))
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            // Parallel tests must not compete for the default HTTP port.
            .args(["--http-addr", "off"])
            .args(args)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .expect("start mayflyd");
        let mut d = Self { child, dir };
        let socket = d.dir.path().join("s.sock");
        let mut exited = None;
        wait_until(DEADLINE, "mayflyd to accept connections", || {
            exited = d.child.try_wait().ok().flatten();
            exited.is_some() || std::os::unix::net::UnixStream::connect(&socket).is_ok()
        });
        if let Some(status) = exited {
            panic!(
                "mayflyd exited at start-up ({status}): {}",
                d.output("stderr")
            );
        }
        d
    }

    /// A `mayflyctl` command aimed at this daemon, run from its work dir.
    fn ctl(&self) -> Command {
        let mut cmd = Command::new(bin("mayflyctl"));
        cmd.arg("--socket")
            .arg(self.dir.path().join("s.sock"))
            .current_dir(self.dir.path().join("work"));
        cmd
    }

    /// Runs `mayflyctl ARGS` to completion and returns its output.
    fn run(&self, args: &[&str]) -> Output {
        self.ctl().args(args).output().expect("run mayflyctl")
    }

    /// Sends `signal` to the daemon.
    fn signal(&self, signal: Signal) {
        let pid = i32::try_from(self.child.id()).expect("pid fits");
        kill(Pid::from_raw(pid), signal).expect("signal mayflyd");
    }

    /// What the daemon wrote to `name` (`stdout` or `stderr`) so far.
    fn output(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }

    /// Waits for the daemon to exit and returns its exit code.
    fn wait_exit(&mut self) -> Option<i32> {
        let mut code = None;
        wait_until(DEADLINE, "mayflyd to exit", || {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    code = status.code();
                    true
                }
                _ => false,
            }
        });
        code
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Parses one JSON object per line.
fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// The position of the first event matching `pred`, or a panic naming `what`.
fn position(events: &[Value], what: &str, pred: impl Fn(&Value) -> bool) -> usize {
    events
        .iter()
        .position(pred)
        .unwrap_or_else(|| panic!("no {what} among {events:#?}"))
}

#[test]
fn events_follow_sees_boot_jobs_system_tasks_and_shutdown_in_order() {
    let mut d = Daemon::start(&[]);
    let mut follower = d
        .ctl()
        .args(["events", "--follow", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start events --follow");
    let submitted = d.run(&["submit", "--", "sh", "-c", "exit 4"]);
    assert!(submitted.status.success(), "{submitted:?}");
    let id: u64 = String::from_utf8_lossy(&submitted.stdout)
        .trim()
        .parse()
        .expect("an id");
    assert_eq!(d.run(&["wait", &id.to_string()]).status.code(), Some(4));
    assert!(d.run(&["shutdown"]).status.success());
    assert_eq!(d.wait_exit(), Some(0));

    // The follower ends by itself when the daemon has gone.
    let mut exited = None;
    wait_until(DEADLINE, "events --follow to end with the daemon", || {
        exited = follower.try_wait().expect("poll follower");
        exited.is_some()
    });
    let out = follower.wait_with_output().expect("follower output");
    assert!(out.status.success(), "{out:?}");
    let events = json_lines(&String::from_utf8_lossy(&out.stdout));

    let is = |name: &'static str| move |e: &Value| e["event"] == name;
    let for_job = |name: &'static str| move |e: &Value| e["event"] == name && e["id"] == id;
    let boot = position(&events, "SchedulerBoot", is("SchedulerBoot"));
    let sys_start = position(&events, "SystemTaskStart of the WAL flusher", |e| {
        e["event"] == "SystemTaskStart" && e["name"] == "looptask_wal_flush" && e["priority"] == 0
    });
    let submitted = position(&events, "JobSubmitted", for_job("JobSubmitted"));
    let started = position(&events, "JobStarted", for_job("JobStarted"));
    let finished = position(&events, "JobFinished", for_job("JobFinished"));
    let begin = position(&events, "ShutdownBegin", is("ShutdownBegin"));
    let sys_exit = position(&events, "SystemTaskExit of the WAL flusher", |e| {
        e["event"] == "SystemTaskExit" && e["name"] == "looptask_wal_flush" && e["ok"] == true
    });
    let complete = position(&events, "ShutdownComplete", is("ShutdownComplete"));
    assert!(boot < sys_start && sys_start < begin, "{events:#?}");
    assert!(
        boot < submitted && submitted < started && started < finished,
        "{events:#?}"
    );
    assert!(
        finished < begin && begin < sys_exit && sys_exit < complete,
        "{events:#?}"
    );
    assert_eq!(
        complete,
        events.len() - 1,
        "ShutdownComplete is the last word"
    );

    // The fields explain each event.
    let fin = &events[finished];
    assert_eq!(
        (fin["state"].as_str(), fin["exit_code"].as_i64()),
        (Some("failed"), Some(4))
    );
    assert!(fin["ran_ms"].is_u64(), "{fin}");
    assert!(events[started]["pid"].is_u64(), "{}", events[started]);
    assert_eq!(
        events[begin]["reason"],
        "requested by a client (mayflyctl shutdown)"
    );
    for e in &events {
        assert!(e["at"].as_str().is_some_and(|t| t.ends_with('Z')), "{e}");
    }
    let seqs: Vec<u64> = events
        .iter()
        .map(|e| e["seq"].as_u64().expect("seq"))
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "sequence grows: {seqs:?}"
    );
}

#[test]
fn events_without_follow_prints_the_recent_ones_and_exits() {
    let d = Daemon::start(&[]);
    let out = d.run(&["events"]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let first = text.lines().next().expect("at least one event");
    assert!(first.contains("  SchedulerBoot "), "{text}");
    assert!(first.contains("recovered_jobs=0"), "{text}");
    assert!(
        text.contains("SystemTaskStart name=looptask_wal_flush priority=0"),
        "{text}"
    );
}

#[test]
fn dump_state_lists_the_wal_flusher_at_priority_0() {
    let d = Daemon::start(&[]);
    let out = d.run(&["dump-state"]);
    assert!(out.status.success(), "{out:?}");
    let state: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let flusher = state["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .find(|t| t["kind"] == "system" && t["name"] == "looptask_wal_flush")
        .unwrap_or_else(|| panic!("no WAL flusher in {state:#}"));
    assert_eq!(flusher["priority"], 0);
    assert_eq!(flusher["state"], "running");
}

#[test]
fn sigusr1_logs_a_snapshot_and_dump_state_flag_prints_one_on_shutdown() {
    let mut d = Daemon::start(&["--dump-state"]);
    let out = d.run(&["submit", "--", "true"]);
    assert!(out.status.success(), "{out:?}");
    assert!(d.run(&["wait", "1"]).status.success());

    d.signal(Signal::SIGUSR1);
    wait_until(DEADLINE, "the SIGUSR1 snapshot in the log", || {
        d.output("stderr").contains("state snapshot (SIGUSR1)")
    });
    assert!(
        d.run(&["status"]).status.success(),
        "still serving after SIGUSR1"
    );
    assert!(
        d.output("stdout").is_empty(),
        "nothing on stdout before shutdown"
    );

    d.signal(Signal::SIGTERM);
    assert_eq!(d.wait_exit(), Some(0));
    let state: Value = serde_json::from_str(&d.output("stdout"))
        .unwrap_or_else(|e| panic!("--dump-state printed no JSON ({e}): {}", d.output("stdout")));
    let tasks = state["tasks"].as_array().expect("tasks");
    assert!(
        tasks
            .iter()
            .any(|t| t["kind"] == "job" && t["id"] == 1 && t["state"] == "succeeded"),
        "{state:#}"
    );
    assert!(
        tasks
            .iter()
            .any(|t| t["kind"] == "system" && t["name"] == "looptask_wal_flush"),
        "{state:#}"
    );
    assert_eq!(state["scheduler"]["shutting_down"], true);
    assert!(state["queues"].as_array().is_some_and(|q| !q.is_empty()));
}

#[test]
fn sd_notify_gets_ready_then_stopping() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("notify.sock");
    let notify = std::os::unix::net::UnixDatagram::bind(&path).expect("bind the notify socket");
    notify
        .set_read_timeout(Some(DEADLINE))
        .expect("read timeout");
    let mut d = Daemon::start_with_env(&[], &[("NOTIFY_SOCKET", path.as_os_str())]);
    let mut buf = [0u8; 256];
    let n = notify.recv(&mut buf).expect("READY=1 within the deadline");
    assert_eq!(&buf[..n], b"READY=1");
    // Ready means serving: the socket answers now.
    assert!(d.run(&["status"]).status.success());
    d.signal(Signal::SIGTERM);
    let n = notify
        .recv(&mut buf)
        .expect("STOPPING=1 within the deadline");
    assert_eq!(&buf[..n], b"STOPPING=1");
    assert_eq!(d.wait_exit(), Some(0));
}
