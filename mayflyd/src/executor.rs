//! The executor: starts job processes and signals their process groups.
//!
//! Each job runs in its own process group (its pid is the group id), so a
//! signal reaches everything the job started. Its stdout and stderr are file
//! descriptors onto `STATE_DIR/logs/ID.out` and `ID.err`: the daemon never
//! sees, buffers or copies job output. Every attempt appends to the same
//! files, so a retried job's earlier output is kept.
//!
//! The executor owns no state: it reports each exit to the driver as a
//! message and forgets the child.

use std::path::{Path, PathBuf};
use std::process::Stdio;

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

/// Starts and signals job processes.
#[derive(Debug, Clone)]
pub struct Executor {
    /// Where job output files live.
    logs_dir: PathBuf,
    /// Given to jobs as `MAYFLY_SOCKET`, so they can talk back.
    socket: PathBuf,
    /// Where exits are reported.
    exits: mpsc::UnboundedSender<JobExit>,
    /// Tracks the tasks that wait on children, for shutdown.
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
    /// An executor writing output under `logs_dir` and reporting exits on `exits`.
    pub fn new(
        logs_dir: PathBuf,
        socket: PathBuf,
        exits: mpsc::UnboundedSender<JobExit>,
        tracker: TaskTracker,
    ) -> Self {
        Self {
            logs_dir,
            socket,
            exits,
            tracker,
        }
    }

    /// Starts attempt `attempt` of job `id`. On success returns the pid (also
    /// the process group id) and reports the exit later; on failure returns
    /// why, and the caller records the job as failed to start.
    pub fn spawn(&self, id: JobId, spec: &JobSpec) -> Result<u32, String> {
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
        let mut child = cmd.spawn().map_err(|e| spawn_error(spec, &e))?;
        let pid = child
            .id()
            .ok_or_else(|| "the process exited before its pid was known".to_string())?;
        let exits = self.exits.clone();
        self.tracker.spawn(async move {
            let outcome = match child.wait().await {
                Ok(status) => exit_outcome(status),
                Err(e) => ExitOutcome::SpawnFailed(format!("lost track of the process: {e}")),
            };
            // The driver is gone only when the daemon is exiting.
            let _ = exits.send(JobExit { id, outcome });
        });
        Ok(pid)
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
