//! The executor: starts job processes and signals their process groups.
//!
//! Each job runs in its own process group (its pid is the group id), so a
//! signal reaches everything the job started. Its stdout and stderr are file
//! descriptors onto `STATE_DIR/logs/ID.out` and `ID.err`: the daemon never
//! sees, buffers or copies job output. Every attempt appends to the same
//! files, so a retried job's earlier output is kept.
//!
//! Starting a process is slow next to everything else the driver does:
//! creating two output files (on some file systems far slower than a plain
//! open) and `posix_spawn`, which keeps the calling thread until the child
//! has exec'd. So [`Executor::start`] does it on the blocking pool, off the
//! driver's thread, and several starts can be under way at once; the driver
//! goes on handling exits and requests meanwhile.
//!
//! The executor owns no state: it reports each start and each exit to the
//! driver as a [`ProcessReport`] and forgets the child.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use mayfly_protocol::{Command, JobId, JobSpec, LogStream};
use nix::sys::signal::{Signal as NixSignal, killpg};
use nix::unistd::Pid;
use tokio::sync::mpsc;
use tokio_util::task::TaskTracker;

use crate::core::{ExitOutcome, Signal};

/// An exit observed by the executor, for the driver.
#[derive(Debug)]
pub struct JobExit {
    /// The job whose process ended.
    pub id: JobId,
    /// How it ended.
    pub outcome: ExitOutcome,
}

/// What the executor tells the driver about one attempt of a job: first
/// `Started` or `StartFailed`, then, after `Started`, `Exited`. They share one
/// channel and each is sent only after the one before it, so the driver
/// receives them in that order.
#[derive(Debug)]
pub enum ProcessReport {
    /// The process is running.
    Started {
        /// The job.
        id: JobId,
        /// Its pid, which is also its process group id.
        pid: u32,
        /// Its start time in clock ticks since boot (with the pid, what
        /// recovery needs to find exactly this process again), if readable.
        start_ticks: Option<u64>,
    },
    /// The process could not be started.
    StartFailed {
        /// The job.
        id: JobId,
        /// Why, in one line naming what was missing.
        reason: String,
    },
    /// The process ended.
    Exited(JobExit),
}

/// Starts and signals job processes.
#[derive(Debug, Clone)]
pub struct Executor {
    /// What every start needs, shared with the threads that do the starts.
    shared: Arc<Shared>,
}

/// The executor's settings and channels.
#[derive(Debug)]
struct Shared {
    /// Where job output files live.
    logs_dir: PathBuf,
    /// Given to jobs as `MAYFLY_SOCKET`, so they can talk back.
    socket: PathBuf,
    /// Where starts and exits are reported.
    reports: mpsc::UnboundedSender<ProcessReport>,
    /// Tracks the starts under way and the tasks that wait on children, for
    /// shutdown.
    tracker: TaskTracker,
}

/// The path of a job's output file.
pub fn log_path(logs_dir: &Path, id: JobId, stream: LogStream) -> PathBuf {
    let ext = match stream {
        LogStream::Stdout => "out",
        LogStream::Stderr => "err",
    };
    logs_dir.join(format!("{id}.{ext}"))
}

impl Executor {
    /// An executor writing output under `logs_dir` and reporting starts and
    /// exits on `reports`.
    pub fn new(
        logs_dir: PathBuf,
        socket: PathBuf,
        reports: mpsc::UnboundedSender<ProcessReport>,
        tracker: TaskTracker,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                logs_dir,
                socket,
                reports,
                tracker,
            }),
        }
    }

    /// Starts job `id` from `spec` on the blocking pool and returns at once.
    /// The outcome comes back as [`ProcessReport::Started`] (then, when the
    /// process ends, [`ProcessReport::Exited`]) or
    /// [`ProcessReport::StartFailed`]. Must be called inside the runtime.
    pub fn start(&self, id: JobId, spec: JobSpec) {
        let shared = self.shared.clone();
        self.shared
            .tracker
            .spawn_blocking(move || shared.start(id, &spec));
    }

    /// Sends `signal` to process group `pgid`. A group that is already gone
    /// is not an error.
    pub fn signal_group(&self, pgid: u32, signal: Signal) {
        let sig = match signal {
            Signal::Term => NixSignal::SIGTERM,
            Signal::Kill => NixSignal::SIGKILL,
            Signal::Stop => NixSignal::SIGSTOP,
            Signal::Cont => NixSignal::SIGCONT,
        };
        let Ok(raw) = i32::try_from(pgid) else { return };
        if raw <= 1 {
            return; // never signal "every process" or init
        }
        match killpg(Pid::from_raw(raw), sig) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
            Err(e) => tracing::warn!(pgid, ?sig, error = %e, "could not signal job process group"),
        }
    }
}

impl Shared {
    /// The body of [`Executor::start`], on a blocking-pool thread: spawns,
    /// reports, and hands the child to a task that reports its exit.
    fn start(&self, id: JobId, spec: &JobSpec) {
        let mut child = match self.spawn(id, spec) {
            Ok(child) => child,
            Err(reason) => {
                let _ = self.reports.send(ProcessReport::StartFailed { id, reason });
                return;
            }
        };
        let Some(pid) = child.id() else {
            let reason = "the process exited before its pid was known".to_string();
            let _ = self.reports.send(ProcessReport::StartFailed { id, reason });
            return;
        };
        let start_ticks = process_start_ticks(pid);
        // Sent before the waiting task exists, so it reaches the driver
        // before the exit does. The driver is gone only when the daemon is
        // exiting.
        let _ = self.reports.send(ProcessReport::Started {
            id,
            pid,
            start_ticks,
        });
        let reports = self.reports.clone();
        self.tracker.spawn(async move {
            let outcome = match child.wait().await {
                Ok(status) => exit_outcome(status),
                Err(e) => ExitOutcome::SpawnFailed(format!("lost track of the process: {e}")),
            };
            let _ = reports.send(ProcessReport::Exited(JobExit { id, outcome }));
        });
    }

    /// Opens the job's output files and spawns its process in its own
    /// process group; on failure says why.
    fn spawn(&self, id: JobId, spec: &JobSpec) -> Result<tokio::process::Child, String> {
        let open = |stream| {
            let path = log_path(&self.logs_dir, id, stream);
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| format!("cannot open output file {}: {e}", path.display()))
        };
        let stdout = open(LogStream::Stdout)?;
        let stderr = open(LogStream::Stderr)?;

        let mut cmd = match &spec.command {
            Command::Argv(argv) => {
                let mut cmd = tokio::process::Command::new(&argv[0]);
                cmd.args(&argv[1..]);
                cmd
            }
            Command::Shell(script) => {
                let mut cmd = tokio::process::Command::new("/bin/sh");
                cmd.arg("-c").arg(script);
                cmd
            }
        };
        cmd.env_clear()
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .env("MAYFLY_JOB_ID", id.to_string())
            .env("MAYFLY_SOCKET", &self.socket)
            .current_dir(&spec.cwd)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .process_group(0)
            .kill_on_drop(false);
        cmd.spawn().map_err(|e| spawn_error(spec, &e))
    }
}

/// The start time of process `pid` in clock ticks since boot (field 22 of
/// `/proc/PID/stat`), which with the pid identifies one process for good.
pub fn process_start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: the
    // fields we want come after its last ')'. Field 3 is first there.
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(22 - 3)?.parse().ok()
}

/// SIGKILLs the process group a previous daemon left running for a job, if
/// its leader is still the very process that was logged (same pid and start
/// time: a recycled pid is never signalled). Returns whether it did.
pub fn kill_leftover_group(pid: u32, start_ticks: u64) -> bool {
    if process_start_ticks(pid) != Some(start_ticks) {
        return false;
    }
    let Ok(raw) = i32::try_from(pid) else {
        return false;
    };
    if raw <= 1 {
        return false;
    }
    killpg(Pid::from_raw(raw), NixSignal::SIGKILL).is_ok()
}

/// Deletes a forgotten job's output files; missing files are fine.
pub fn remove_output(logs_dir: &Path, id: JobId) {
    for stream in [LogStream::Stdout, LogStream::Stderr] {
        let path = log_path(logs_dir, id, stream);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "could not delete job output")
            }
        }
    }
}

/// A one-line explanation of a failed spawn, naming what was missing.
fn spawn_error(spec: &JobSpec, e: &std::io::Error) -> String {
    if !Path::new(&spec.cwd).is_dir() {
        return format!("working directory {} does not exist", spec.cwd);
    }
    match &spec.command {
        Command::Argv(argv) if e.kind() == std::io::ErrorKind::NotFound => {
            format!("command {:?} not found", argv[0])
        }
        _ => e.to_string(),
    }
}

/// Turns a wait status into an outcome.
fn exit_outcome(status: std::process::ExitStatus) -> ExitOutcome {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => ExitOutcome::Code(code),
        (None, Some(sig)) => ExitOutcome::Signal(sig),
        (None, None) => ExitOutcome::SpawnFailed(format!("unexpected wait status {status:?}")),
    }
}
