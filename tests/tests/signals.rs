//! The daemon as a library inside this test process (the embedding
//! `mayflyd`'s library offers): a real SIGINT to our own pid shuts the
//! scheduler down gracefully, and system tasks registered with
//! `spawn_system` run at priority 0 and see the shutdown.
//!
//! This file is its own test binary (its own process), not a module of the
//! end-to-end binary (`main.rs`): it sends signals to itself, and the
//! daemon's signal handlers, once installed, stay for the life of the
//! process (signal-hook never puts the default action back), so a Ctrl-C or
//! a SIGTERM meant to stop that binary would be swallowed. Its tests are
//! `serial` for the same reason.

#[path = "helper/raw.rs"]
mod raw;
#[path = "helper/wait.rs"]
#[allow(
    dead_code,
    reason = "the waits of the end-to-end binary; this binary needs a few of them"
)]
mod wait;

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use mayfly_protocol::{Request, Response, SubmitRequest};
use mayflyd::{DaemonError, Scheduler, SchedulerHandle};
use nix::sys::signal::{Signal, kill};
use nix::unistd::getpid;
use tempfile::TempDir;

use raw::{RawClient, shell_spec};
use wait::{DEADLINE, process_gone, read_pid_file, until_file, wait_until, write_pid};

/// A scheduler running on its own thread, in a temp dir.
struct InProcess {
    /// Holds socket, state and the jobs' work folder.
    dir: TempDir,
    /// Controls the scheduler.
    handle: SchedulerHandle,
    /// The thread running `run_blocking`; `None` once joined.
    thread: Option<JoinHandle<Result<(), DaemonError>>>,
}

impl InProcess {
    /// Builds a scheduler (concurrency 1, 2 s shutdown timeout), lets `setup`
    /// use its handle before it runs, runs it on a thread and waits until
    /// its socket accepts connections.
    fn start(setup: impl FnOnce(&SchedulerHandle)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join("work")).expect("create the work dir");
        let scheduler = Scheduler::builder()
            .socket(dir.path().join("s.sock"))
            .state_dir(dir.path().join("state"))
            .concurrency(1)
            .shutdown_timeout(Duration::from_secs(2))
            .http_addr(None)
            .build();
        let handle = scheduler.handle();
        setup(&handle);
        let thread = std::thread::spawn(move || scheduler.run_blocking());
        let this = Self {
            dir,
            handle,
            thread: Some(thread),
        };
        wait_until(DEADLINE, "the in-process daemon's socket", || {
            std::os::unix::net::UnixStream::connect(this.socket()).is_ok()
        });
        this
    }

    /// The socket it serves.
    fn socket(&self) -> PathBuf {
        self.dir.path().join("s.sock")
    }

    /// The folder jobs run in.
    fn work(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    /// Waits for `run_blocking` to return and returns its result.
    fn join(&mut self) -> Result<(), DaemonError> {
        let thread = self.thread.take().expect("not joined yet");
        wait_until(DEADLINE, "run_blocking to return", || thread.is_finished());
        thread.join().expect("the scheduler thread panicked")
    }
}

impl Drop for InProcess {
    /// A scheduler left running by a failed test is shut down and joined
    /// (with a deadline), so the next serial test starts clean.
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.handle.shutdown(Some(Duration::from_millis(500)));
            if wait::poll_until(DEADLINE, || thread.is_finished()) {
                let _ = thread.join();
            }
        }
    }
}

/// Submits a shell job over the raw protocol and returns its id.
fn submit(socket: &Path, script: &str, cwd: &Path) -> u64 {
    let spec = shell_spec(script, cwd);
    let answer = RawClient::connect(socket).request(&Request::Submit(SubmitRequest { spec }));
    match answer.as_slice() {
        [Response::Submitted { id }] => id.0,
        other => panic!("submit answered {other:?}"),
    }
}

/// SIGINT to the process makes `run_blocking` stop the running job and
/// return `Ok(())`.
#[test]
#[serial_test::serial]
fn sigint_shuts_down_gracefully_and_stops_jobs() {
    let mut daemon = InProcess::start(|_| {});
    let script = format!("{}; {}", write_pid("job.pid"), until_file("release"));
    submit(&daemon.socket(), &script, &daemon.work());
    // The job runs, so the driver (started after the signal handlers) runs.
    let pid = read_pid_file(&daemon.work().join("job.pid"));

    kill(getpid(), Signal::SIGINT).expect("send SIGINT to ourselves");
    let result = daemon.join();
    assert!(result.is_ok(), "run_blocking after SIGINT: {result:?}");
    wait_until(DEADLINE, "the job's process to be gone", || {
        process_gone(pid)
    });
}

/// A system task registered before the scheduler runs is listed in
/// `dump-state` at priority 0, running, and sees its cancellation token fire
/// at shutdown (before `run_blocking` returns).
#[test]
#[serial_test::serial]
fn spawn_system_runs_at_priority_0_until_shutdown() {
    let (cancelled_tx, cancelled_rx) = mpsc::channel();
    let mut daemon = InProcess::start(|handle| {
        handle.spawn_system("e2e_probe", move |ctx| async move {
            ctx.shutdown.cancelled().await;
            let _ = cancelled_tx.send(());
            Ok::<(), anyhow::Error>(())
        });
    });

    let answer = RawClient::connect(&daemon.socket()).request(&Request::DumpState);
    let Some(Response::State(header)) = answer.first() else {
        panic!("dump-state answered {answer:?}");
    };
    let probe = header
        .system_tasks
        .iter()
        .find(|t| t.name == "e2e_probe")
        .unwrap_or_else(|| panic!("e2e_probe not in dump-state: {header:?}"));
    assert_eq!(probe.priority, 0);
    assert_eq!(probe.state, "running");
    assert!(
        cancelled_rx.try_recv().is_err(),
        "the system task saw a shutdown before one began"
    );

    daemon.handle.shutdown(None);
    let result = daemon.join();
    assert!(result.is_ok(), "run_blocking after shutdown: {result:?}");
    assert!(
        cancelled_rx.try_recv().is_ok(),
        "the system task did not observe its cancellation token"
    );
}
