//! The `local` executor: starts job processes on this machine and signals
//! their process groups.
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
//! Creating a file can be slow too — on ext4 without a journal, a new inode
//! is found only after skipping every inode deleted in the last minutes,
//! which after a large `rm -r` costs a noticeable part of a job's start
//! (`bench/RESULTS.md`). So the executor's
//! output thread creates the files of the jobs the core expects to start
//! next ([`LocalExecutor::prepare_output`]) ahead of time; a start then merely
//! opens them (and still creates them if the guess was wrong or late).
//! Deleting a forgotten job's files goes through the same thread, so it
//! never races with their creation.
//!
//! A job with an output cap (`--max-output`) is the exception to "never
//! sees its output": its streams are pipes, and a task of the daemon's
//! copies each into its file until the file holds the cap, then drops the
//! rest and notes the cut at the end of the file. Jobs without a cap pay
//! nothing for it.
//!
//! The executor owns no state: it reports each start and each exit to the
//! driver as a [`Report`] and forgets the child.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;

use mayfly_protocol::{Command, JobId, JobSpec, LogStream};
use nix::sys::signal::{Signal as NixSignal, killpg};
use nix::unistd::Pid;
use tokio::sync::mpsc;
use tokio_util::task::TaskTracker;

use super::{Executor, Handle, Report, Where};
use crate::core::{ExitOutcome, Signal};

/// Starts and signals job processes on this machine: the `local` executor.
#[derive(Debug, Clone)]
pub struct LocalExecutor {
    /// What every start needs, shared with the threads that do the starts.
    shared: Arc<Shared>,
    /// Work for the output thread, done in the order it was asked for.
    outputs: std_mpsc::Sender<OutputWork>,
}

/// Work on job output files, for the output thread.
#[derive(Debug)]
enum OutputWork {
    /// Create these jobs' output files (empty) ahead of their start.
    Prepare(Vec<JobId>),
    /// Delete a forgotten job's output files.
    Remove(JobId),
    /// Say when everything asked for before is done.
    Drain(tokio::sync::oneshot::Sender<()>),
}

/// The executor's settings and channels.
#[derive(Debug)]
struct Shared {
    /// Where job output files live.
    logs_dir: PathBuf,
    /// Given to jobs as `MAYFLY_SOCKET`, so they can talk back.
    socket: PathBuf,
    /// The output cap of jobs that set none (`mayflyd --max-output`).
    default_max_output: Option<u64>,
    /// Where starts and exits are reported.
    reports: mpsc::UnboundedSender<Report>,
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

impl LocalExecutor {
    /// An executor writing output under `logs_dir` and reporting starts and
    /// exits on `reports`; jobs without an output cap of their own get
    /// `default_max_output`. Starts its output thread, which stops once
    /// every clone of the executor is dropped.
    pub fn new(
        logs_dir: PathBuf,
        socket: PathBuf,
        default_max_output: Option<u64>,
        reports: mpsc::UnboundedSender<Report>,
        tracker: TaskTracker,
    ) -> std::io::Result<Self> {
        let (outputs, work) = std_mpsc::channel();
        let dir = logs_dir.clone();
        std::thread::Builder::new()
            .name("mayfly-outputs".into())
            .spawn(move || run_outputs(&dir, &work))?;
        Ok(Self {
            shared: Arc::new(Shared {
                logs_dir,
                socket,
                default_max_output,
                reports,
                tracker,
            }),
            outputs,
        })
    }

    /// Creates the output files of jobs `ids` in the background, ahead of
    /// their start. Harmless if a job never starts (its output reads as
    /// empty, as it would without the files) or starts first.
    pub fn prepare_output(&self, ids: Vec<JobId>) {
        if !ids.is_empty() {
            let _ = self.outputs.send(OutputWork::Prepare(ids));
        }
    }

    /// Deletes a forgotten job's output files in the background, after any
    /// preparation asked for earlier.
    pub fn remove_output(&self, id: JobId) {
        let _ = self.outputs.send(OutputWork::Remove(id));
    }

    /// Waits (up to `limit`) until the output thread has done everything
    /// asked of it so far: at shutdown, so that no deletion is lost.
    pub async fn drain_outputs(&self, limit: std::time::Duration) {
        let (done, drained) = tokio::sync::oneshot::channel();
        if self.outputs.send(OutputWork::Drain(done)).is_ok()
            && tokio::time::timeout(limit, drained).await.is_err()
        {
            tracing::warn!("job output files were still being created or deleted at shutdown");
        }
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

impl Executor for LocalExecutor {
    /// Starts the job on the blocking pool and returns at once. The outcome
    /// comes back as [`Report::Started`] (then, when the process ends,
    /// [`Report::Exited`]) or [`Report::StartFailed`]. Must be called
    /// inside the runtime.
    fn start(&self, id: JobId, _attempt: u32, spec: JobSpec) {
        let shared = self.shared.clone();
        self.shared
            .tracker
            .spawn_blocking(move || shared.start(id, &spec));
    }

    fn signal(&self, _id: JobId, handle: &Handle, signal: Signal) {
        if let Handle::Process { pgid } = handle {
            self.signal_group(*pgid, signal);
        }
    }
}

impl Shared {
    /// The body of [`LocalExecutor::start`], on a blocking-pool thread: spawns,
    /// reports, and hands the child to a task that reports its exit.
    fn start(&self, id: JobId, spec: &JobSpec) {
        let before = boot_clock();
        let spawned = self.spawn(id, spec);
        let after = boot_clock();
        let (child, relays) = match spawned {
            Ok(spawned) => spawned,
            Err(failure) => {
                let _ = self.reports.send(Report::StartFailed {
                    id,
                    reason: failure.reason,
                    transient: failure.transient,
                });
                return;
            }
        };
        let pid = child.id();
        let start_ticks = spawn_ticks(before, after).or_else(|| process_start_ticks(pid));
        // Sent before the waiting task exists, so it reaches the driver
        // before the exit does. The driver is gone only when the daemon is
        // exiting.
        let _ = self.reports.send(Report::Started {
            id,
            at: Where::Process { pid, start_ticks },
        });
        let reports = self.reports.clone();
        let relays: Vec<_> = relays.into_iter().map(|r| self.tracker.spawn(r)).collect();
        self.tracker.spawn(async move {
            // `child` is a std Child, which never reaps: `reap::wait` does,
            // and learns what the process used on the way.
            let (outcome, usage) = match super::reap::wait(pid).await {
                Ok((status, usage)) => (exit_outcome(status), Some(usage)),
                Err(e) => (
                    ExitOutcome::SpawnFailed(format!("lost track of the process: {e}")),
                    None,
                ),
            };
            drop(child);
            // A capped job's last output is still in its pipes: let the
            // relays write it before anyone is told the job ended, unless
            // something the job left running keeps the pipes open.
            let _ = tokio::time::timeout(RELAY_DRAIN, futures::future::join_all(relays)).await;
            let _ = reports.send(Report::Exited { id, outcome, usage });
        });
    }

    /// Opens the job's output files (or, for a capped job, the pipes to
    /// them and the relays that copy them) and spawns its process in its own
    /// process group; on failure says why.
    fn spawn(
        &self,
        id: JobId,
        spec: &JobSpec,
    ) -> Result<(std::process::Child, Vec<Relay>), SpawnFailure> {
        let cap = spec.max_output().or(self.default_max_output);
        let relays = std::cell::RefCell::new(Vec::new());
        let open = |stream| -> Result<Stdio, SpawnFailure> {
            let path = log_path(&self.logs_dir, id, stream);
            let file = open_output(&path).map_err(|e| {
                SpawnFailure::of(
                    &e,
                    format!("cannot open output file {}: {e}", path.display()),
                )
            })?;
            let Some(cap) = cap else {
                return Ok(file.into());
            };
            let (reader, writer) = std::io::pipe().map_err(|e| {
                SpawnFailure::of(&e, format!("cannot make a pipe for the job's output: {e}"))
            })?;
            relays
                .borrow_mut()
                .push(Box::pin(relay_output(reader, file, cap)) as Relay);
            Ok(writer.into())
        };
        // Everything but the program and its arguments.
        let command = |program: &std::ffi::OsStr| {
            let mut cmd = std::process::Command::new(program);
            cmd.env_clear()
                .envs(spec.env.iter().map(|(k, v)| (k, v)))
                .env("MAYFLY_JOB_ID", id.to_string())
                .env("MAYFLY_SOCKET", &self.socket)
                .current_dir(&spec.cwd)
                .stdin(Stdio::null())
                .process_group(0);
            cmd
        };
        let with_output = |cmd: &mut std::process::Command| -> Result<(), SpawnFailure> {
            cmd.stdout(open(LogStream::Stdout)?)
                .stderr(open(LogStream::Stderr)?);
            Ok(())
        };
        // First the program found on the job's PATH, by its full path (see
        // `find_program`); if that cannot be spawned, exactly what was done
        // before, which reports the error the way it always did.
        let (word, args): (Option<&str>, Vec<&str>) = match &spec.command {
            Command::Argv(argv) => (
                Some(argv.program()),
                argv.args().iter().map(String::as_str).collect(),
            ),
            Command::Shell(script) => match plain_words(script, &spec.env) {
                Some(words) => (Some(words[0]), words[1..].to_vec()),
                None => (None, Vec::new()),
            },
        };
        if let Some(word) = word
            && let Some(path) = find_program(word, &spec.env, &spec.cwd)
        {
            let mut direct = command(path.as_os_str());
            direct.arg0(word).args(&args);
            if matches!(spec.command, Command::Shell(_)) {
                // What dash would have exported (see `plain_words`).
                direct.env("PWD", shell_pwd(spec));
            }
            with_output(&mut direct)?;
            if let Ok(child) = direct.spawn() {
                return Ok((child, relays.into_inner()));
            }
            // Its pipes' readers wait for writers that never came.
            relays.borrow_mut().clear();
        }
        let mut fallback = match &spec.command {
            Command::Argv(argv) => {
                let mut cmd = command(argv.program().as_ref());
                cmd.args(argv.args());
                cmd
            }
            Command::Shell(script) => {
                let mut cmd = command("/bin/sh".as_ref());
                cmd.arg("-c").arg(script);
                cmd
            }
        };
        // The failed attempt took its descriptors with it: open them again
        // (appending, so nothing is lost or written twice).
        with_output(&mut fallback)?;
        let child = fallback
            .spawn()
            .map_err(|e| SpawnFailure::of(&e, spawn_error(spec, &e)))?;
        Ok((child, relays.into_inner()))
    }
}

/// Why a job's process could not be started.
#[derive(Debug)]
struct SpawnFailure {
    /// One line naming what was missing.
    reason: String,
    /// Whether it is the daemon's passing trouble rather than the job's.
    transient: bool,
}

impl SpawnFailure {
    /// The failure `reason` caused by `error`: transient when the daemon or
    /// the system ran out of file descriptors (EMFILE, ENFILE), which
    /// closing connections or ending jobs gives back.
    fn of(error: &std::io::Error, reason: String) -> Self {
        let transient = matches!(
            error.raw_os_error(),
            Some(code) if code == nix::libc::EMFILE || code == nix::libc::ENFILE
        );
        Self { reason, transient }
    }
}

/// How long a capped job's exit waits for its relays to write what is left
/// in its pipes, once the job itself has exited.
const RELAY_DRAIN: std::time::Duration = std::time::Duration::from_millis(500);

/// A relay of one output stream of a capped job (see [`relay_output`]).
type Relay = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// Copies what a capped job writes to `pipe` into `file` until the file
/// holds `cap` bytes (earlier attempts' output counts), then drops the
/// rest; at the end of the stream, notes in the file how much was dropped.
async fn relay_output(pipe: std::io::PipeReader, mut file: std::fs::File, cap: u64) {
    use std::io::Write;
    use tokio::io::AsyncReadExt;
    let Ok(mut pipe) = tokio::net::unix::pipe::Receiver::from_owned_fd(pipe.into()) else {
        tracing::warn!("could not read a job's output pipe; its output is lost");
        return;
    };
    let mut held = file.metadata().map_or(0, |m| m.len());
    let mut dropped = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let room = usize::try_from(cap.saturating_sub(held)).unwrap_or(usize::MAX);
        let keep = n.min(room);
        // A write to a regular file does not block for long; a failed one
        // (disk full) loses only this job's output, as without a cap.
        if keep > 0 && file.write_all(&buf[..keep]).is_ok() {
            held += keep as u64;
        }
        dropped += (n - keep) as u64;
    }
    if dropped > 0 {
        let _ = write!(
            file,
            "\n[mayfly: output cut at {} (--max-output); {dropped} more bytes were dropped]\n",
            mayfly_protocol::format_size(cap)
        );
    }
}

/// Where `program` is, searched as `execvp` would on the job's `PATH`
/// (empty and relative entries count from the job's `cwd`), or `program`
/// itself, from `cwd`, if it names a path. `None` without a `PATH`, or when
/// no entry holds an executable file of that name. The path is always
/// absolute: a `#!` script found through a relative `PATH` entry sees it
/// as its `$0`, where `sh` would have given the relative one.
///
/// Why: given a program name and an environment with its own `PATH`, the
/// standard library cannot use `posix_spawn` (whose search would use the
/// daemon's `PATH`), and forks the whole daemon instead. Forking a
/// multi-threaded process copies its page tables and makes every later
/// write to its memory fault; here it tripled the daemon's CPU time per
/// job. With a full path, the spawn is a `posix_spawn` (a `vfork`-style
/// clone).
///
/// Not the `which` crate: it expands a leading `~` in `PATH` entries with
/// the daemon's `HOME`, which neither `execvp` nor `sh` does, so it could
/// run a program the job's own shell would not find.
fn find_program(program: &str, env: &[(String, String)], cwd: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    if program.is_empty() {
        return None;
    }
    if program.contains('/') {
        return Some(Path::new(cwd).join(program));
    }
    let (_, path) = env.iter().rev().find(|(k, _)| k == "PATH")?;
    path.split(':').find_map(|dir| {
        let candidate = Path::new(cwd).join(dir).join(program);
        let meta = std::fs::metadata(&candidate).ok()?;
        (meta.is_file() && meta.permissions().mode() & 0o111 != 0).then_some(candidate)
    })
}

/// Words of `sh` that must not be exec'd in its place: its reserved words
/// and its built-ins (dash's list), whose own versions differ from, or do
/// not exist as, programs. `true` and `false` are left out on purpose:
/// `/bin/true` and `/bin/false` do exactly what the built-ins do.
const SHELL_WORDS: &[&str] = &[
    ".", ":", "[", "alias", "bg", "break", "case", "cd", "chdir", "command", "continue", "do",
    "done", "echo", "elif", "else", "esac", "eval", "exec", "exit", "export", "fc", "fg", "fi",
    "for", "function", "getopts", "hash", "if", "in", "jobs", "kill", "local", "printf", "pwd",
    "read", "readonly", "return", "select", "set", "shift", "test", "then", "time", "times",
    "trap", "type", "ulimit", "umask", "unalias", "unset", "until", "wait", "while",
];

/// The words of a shell string that `sh -c` would run as one plain command,
/// so that the daemon can exec them itself and spare a shell's start-up
/// (a measurable part of a short job's cost, `bench/RESULTS.md`; GNU make
/// does the same for its recipe lines). Only
/// for strings where that cannot change what happens: words of letters,
/// digits and `_ . / : , + @ % = -` separated by spaces or tabs (so no
/// quoting, expansion, globbing, redirection, comment or operator), a first
/// word that is not an assignment, a reserved word or a built-in, and a
/// `PATH` in the job's environment (without one, sh and exec search
/// different default paths). `None` means: run it with `sh -c`.
fn plain_words<'a>(script: &'a str, env: &[(String, String)]) -> Option<Vec<&'a str>> {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_./:,+@%=-".contains(c);
    if !script.chars().all(|c| plain(c) || c == ' ' || c == '\t') {
        return None;
    }
    let words: Vec<&str> = script
        .split([' ', '\t'])
        .filter(|w| !w.is_empty())
        .collect();
    let first = *words.first()?;
    if first.contains('=') || SHELL_WORDS.contains(&first) {
        return None;
    }
    env.iter().any(|(k, _)| k == "PATH").then_some(words)
}

/// The `PWD` dash exports to what it runs: the inherited one if it is an
/// absolute name of the working directory, else the directory's physical
/// path (what `getcwd` gives).
fn shell_pwd(spec: &JobSpec) -> std::ffi::OsString {
    use std::os::unix::fs::MetadataExt;
    let inherited = spec.env.iter().rev().find(|(k, _)| k == "PWD");
    if let Some((_, pwd)) = inherited
        && pwd.starts_with('/')
        && (*pwd == spec.cwd
            || matches!(
                (std::fs::metadata(pwd), std::fs::metadata(&spec.cwd)),
                (Ok(a), Ok(b)) if (a.dev(), a.ino()) == (b.dev(), b.ino())
            ))
    {
        return pwd.into();
    }
    std::fs::canonicalize(&spec.cwd).map_or_else(|_| spec.cwd.clone().into(), PathBuf::into)
}

/// Opens an output file for appending, creating it if need be: every
/// attempt of a job appends to the same files. Created `0600` and never
/// through a symbolic link (see [`crate::private`]).
fn open_output(path: &Path) -> std::io::Result<std::fs::File> {
    crate::private::file_options()
        .create(true)
        .append(true)
        .open(path)
        .map_err(crate::private::explain_link)
}

/// The output thread: carries out [`OutputWork`] in order until every
/// sender is gone.
fn run_outputs(logs_dir: &Path, work: &std_mpsc::Receiver<OutputWork>) {
    for item in work {
        match item {
            OutputWork::Prepare(ids) => {
                for id in ids {
                    for stream in [LogStream::Stdout, LogStream::Stderr] {
                        // A failure shows again, with its reason, when the
                        // job starts and opens the file itself.
                        let _ = open_output(&log_path(logs_dir, id, stream));
                    }
                }
            }
            OutputWork::Remove(id) => remove_output(logs_dir, id),
            OutputWork::Drain(done) => {
                let _ = done.send(());
            }
        }
    }
}

/// The boot-time clock (`CLOCK_BOOTTIME`, the clock of a process's start
/// time) now.
fn boot_clock() -> std::time::Duration {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Boottime);
    std::time::Duration::new(
        u64::try_from(now.tv_sec).unwrap_or(0),
        u32::try_from(now.tv_nsec).unwrap_or(0),
    )
}

/// The start time, in clock ticks since boot, of a process forked between
/// the boot-clock readings `before` and `after`, when both fall in the same
/// tick: the kernel stamps a new process with the boot clock and shows it in
/// `/proc/PID/stat` rounded down to a tick, so that tick is the answer.
/// `None` when the readings straddle a tick (a few starts in a hundred on
/// a quiet machine, more when spawns are slow): then only
/// [`process_start_ticks`] can tell.
///
/// Why: reading `/proc/PID/stat` costs about as much as everything else the
/// daemon does to start a short job (`bench/RESULTS.md`, "End to end at the
/// floor").
fn spawn_ticks(before: std::time::Duration, after: std::time::Duration) -> Option<u64> {
    let per_second = u128::from(rustix::param::clock_ticks_per_second());
    let per_tick = 1_000_000_000u128.checked_div(per_second)?;
    let tick = |t: std::time::Duration| u64::try_from(t.as_nanos() / per_tick).ok();
    let (first, last) = (tick(before)?, tick(after)?);
    (first == last).then_some(first)
}

/// The start time of process `pid` in clock ticks since boot (field 22 of
/// `/proc/PID/stat`), which with the pid identifies one process for good.
///
/// Read once per job start, so with one `read` into a buffer larger than
/// the file (`read_to_string` grows its buffer from 32 bytes: six reads).
pub fn process_start_ticks(pid: u32) -> Option<u64> {
    use std::io::Read;
    let mut file = std::fs::File::open(format!("/proc/{pid}/stat")).ok()?;
    let mut buf = [0u8; 4096];
    let mut len = 0;
    // procfs hands the whole line to the first read; loop for the rule.
    while len < buf.len() {
        match file.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
        if buf[..len].ends_with(b"\n") {
            break;
        }
    }
    let stat = &buf[..len];
    // The command name (field 2) may hold spaces and parentheses: the
    // fields we want come after its last ')'. Field 3 is first there.
    let after = &stat[stat.iter().rposition(|&b| b == b')')? + 1..];
    let field = after
        .split(|b| b.is_ascii_whitespace())
        .filter(|w| !w.is_empty())
        .nth(22 - 3)?;
    std::str::from_utf8(field).ok()?.parse().ok()
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
            format!("command {:?} not found", argv.program())
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// An executor over a temporary logs folder, on a small runtime (the
    /// drain waits on a timer), with the receiving end of its reports.
    fn executor() -> (
        LocalExecutor,
        tempfile::TempDir,
        tokio::runtime::Runtime,
        mpsc::UnboundedReceiver<Report>,
    ) {
        let dir = tempfile::tempdir().expect("a temp dir");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let (reports, rx) = mpsc::unbounded_channel();
        let executor = LocalExecutor::new(
            dir.path().to_path_buf(),
            dir.path().join("mayfly.sock"),
            None,
            reports,
            TaskTracker::new(),
        )
        .expect("the output thread starts");
        (executor, dir, rt, rx)
    }

    /// Runs `script` as a shell job in `cwd` with `env`; returns its exit
    /// outcome, stdout and stderr.
    fn run_shell(
        script: &str,
        cwd: &Path,
        env: Vec<(String, String)>,
    ) -> (ExitOutcome, String, String) {
        let (executor, dir, rt, mut rx) = executor();
        let id = JobId(1);
        let mut spec = JobSpec::new(
            Command::Shell(script.into()),
            cwd.to_string_lossy(),
            "default",
            50,
        );
        spec.env = env;
        let outcome = rt.block_on(async {
            executor.start(id, 1, spec);
            loop {
                let next = tokio::time::timeout(Duration::from_secs(20), rx.recv()).await;
                match next.expect("a report in time").expect("open") {
                    Report::Exited { outcome, .. } => break outcome,
                    Report::StartFailed { reason, .. } => panic!("{reason}"),
                    Report::Started { .. } | Report::Found { .. } => {}
                }
            }
        });
        let read = |stream| std::fs::read_to_string(log_path(dir.path(), id, stream)).unwrap();
        (outcome, read(LogStream::Stdout), read(LogStream::Stderr))
    }

    /// The environment of a typical job: a `PATH`.
    fn path_env() -> Vec<(String, String)> {
        vec![("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into())]
    }

    #[test]
    fn plain_words_are_found_only_where_sh_would_run_one_plain_command() {
        let env = path_env();
        let words = |s| plain_words(s, &env);
        assert_eq!(words("true"), Some(vec!["true"]));
        assert_eq!(
            words("  make -C ./src\tall  J=4 "),
            Some(vec!["make", "-C", "./src", "all", "J=4"])
        );
        assert_eq!(
            words("cp a.txt b@host:x,y+z%1"),
            Some(vec!["cp", "a.txt", "b@host:x,y+z%1"])
        );
        for shell in [
            "",
            "   ",
            "echo hi",
            "cd /tmp",
            "exit 3",
            ". ./env.sh",
            ": nothing",
            "[ -f x ]",
            "if true",
            "FOO=1 env",
            "ls *.txt",
            "ls ~",
            "echo $HOME",
            "a | b",
            "a; b",
            "a && b",
            "a > out",
            "a < in",
            "a &",
            "cmd 'quoted'",
            "cmd \"quoted\"",
            "cmd back\\slash",
            "cmd # comment",
            "cmd `sub`",
            "a\nb",
            "(sub)",
            "{ x; }",
            "! x",
            "x ?",
            "caf\u{e9}",
        ] {
            assert_eq!(words(shell), None, "{shell:?}");
        }
        // Without a PATH, sh and exec would search different places.
        assert_eq!(plain_words("true", &[]), None);
    }

    #[test]
    fn a_plain_shell_line_is_exec_d_directly_with_the_pwd_dash_would_export() {
        let cwd = tempfile::tempdir().expect("a cwd");
        let (outcome, out, _) = run_shell("cat /proc/self/status", cwd.path(), path_env());
        assert!(matches!(outcome, ExitOutcome::Code(0)), "{outcome:?}");
        // No shell in between: the job's parent is this process.
        let ppid = out
            .lines()
            .find_map(|l| l.strip_prefix("PPid:"))
            .expect("a PPid line")
            .trim()
            .to_owned();
        assert_eq!(ppid, std::process::id().to_string());
        // With no PWD inherited: the physical working directory, as dash.
        let (_, out, _) = run_shell("printenv PWD", cwd.path(), path_env());
        let real = std::fs::canonicalize(cwd.path()).unwrap();
        assert_eq!(out.trim_end(), real.to_string_lossy());
        // An inherited PWD naming the same directory is kept; another is not.
        let mut env = path_env();
        env.push(("PWD".into(), format!("{}/.", real.display())));
        let (_, out, _) = run_shell("printenv PWD", cwd.path(), env);
        assert_eq!(out.trim_end(), format!("{}/.", real.display()));
        let mut env = path_env();
        env.push(("PWD".into(), "/".into()));
        let (_, out, _) = run_shell("printenv PWD", cwd.path(), env);
        assert_eq!(out.trim_end(), real.to_string_lossy());
    }

    #[test]
    fn programs_are_found_on_the_job_s_path_from_its_cwd_keeping_their_name() {
        use std::os::unix::fs::PermissionsExt;
        let cwd = tempfile::tempdir().expect("a cwd");
        let bin = cwd.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let prog = bin.join("mayfly-test-prog");
        std::fs::write(&prog, "#!/bin/sh\necho \"found $0 $1\"\n").unwrap();
        std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o755)).unwrap();
        // A file of the same name that is not executable comes first and is
        // skipped, as execvp skips it.
        std::fs::write(cwd.path().join("mayfly-test-prog"), "not a program").unwrap();
        let env = vec![("PATH".to_owned(), ":bin:/usr/bin:/bin".to_owned())];
        let cwd_str = cwd.path().to_str().unwrap();
        assert_eq!(
            find_program("mayfly-test-prog", &env, cwd_str),
            Some(cwd.path().join("bin/mayfly-test-prog"))
        );
        assert_eq!(find_program("no-such-prog-mayfly", &env, cwd_str), None);
        assert_eq!(find_program("true", &[], cwd_str), None);
        assert_eq!(
            find_program("./x", &env, cwd_str),
            Some(cwd.path().join("./x"))
        );
        // Run as a job, by argv and as a plain shell line: argv[0] is the
        // word as given, not the path it was found at.
        let (executor, dir, rt, mut rx) = executor();
        let id = JobId(5);
        let mut spec = JobSpec::new(
            Command::Argv(
                vec!["cat".into(), "/proc/self/cmdline".into()]
                    .try_into()
                    .expect("a program"),
            ),
            cwd_str,
            "default",
            50,
        );
        spec.env = env.clone();
        rt.block_on(async {
            executor.start(id, 1, spec);
            loop {
                let next = tokio::time::timeout(Duration::from_secs(20), rx.recv()).await;
                if let Report::Exited { .. } = next.expect("in time").expect("open") {
                    break;
                }
            }
        });
        let out = std::fs::read(log_path(dir.path(), id, LogStream::Stdout)).unwrap();
        assert_eq!(out, b"cat\0/proc/self/cmdline\0");
        // A script found on an absolute PATH entry sees that full path as
        // its $0, just as when sh finds and execs it.
        let abs = vec![(
            "PATH".to_owned(),
            format!("{}:/usr/bin:/bin", bin.display()),
        )];
        let (outcome, out, _) = run_shell("mayfly-test-prog arg", cwd.path(), abs);
        assert!(matches!(outcome, ExitOutcome::Code(0)), "{outcome:?}");
        assert_eq!(out, format!("found {} arg\n", prog.display()));
    }

    #[test]
    fn a_plain_line_that_cannot_be_exec_d_runs_with_sh_as_before() {
        let cwd = tempfile::tempdir().expect("a cwd");
        // Not found: sh says so on the job's stderr and exits 127.
        let (outcome, _, err) = run_shell("no-such-command-mayfly x", cwd.path(), path_env());
        assert!(matches!(outcome, ExitOutcome::Code(127)), "{outcome:?}");
        assert!(err.contains("no-such-command-mayfly"), "{err:?}");
        // An executable file without `#!`: sh runs it as a script.
        let script = cwd.path().join("job");
        std::fs::write(&script, "echo from-the-script \"$1\"\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let (outcome, out, _) = run_shell("./job arg", cwd.path(), path_env());
        assert!(matches!(outcome, ExitOutcome::Code(0)), "{outcome:?}");
        assert_eq!(out, "from-the-script arg\n");
    }

    #[test]
    fn start_ticks_are_field_22_even_after_a_name_with_parentheses() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().expect("a temp dir");
        let odd = dir.path().join("x) 1 (y");
        symlink("/bin/sleep", &odd).expect("a symlink with an odd name");
        let mut child = std::process::Command::new(&odd)
            .arg("30")
            .spawn()
            .expect("sleep starts");
        let pid = child.id();
        // Field 22 read the plain way, counted from the last ')'.
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        assert!(stat.contains("(x) 1 (y)"), "{stat}");
        let after = &stat[stat.rfind(')').unwrap() + 1..];
        let expected: u64 = after.split_whitespace().nth(19).unwrap().parse().unwrap();
        assert_eq!(process_start_ticks(pid), Some(expected));
        assert!(process_start_ticks(std::process::id()).is_some());
        child.kill().expect("kill sleep");
        child.wait().expect("reap sleep");
        // Gone: no start time.
        assert_eq!(process_start_ticks(pid), None);
    }

    #[test]
    fn a_start_time_from_the_boot_clock_is_the_one_proc_shows() {
        let mut exact = 0;
        for _ in 0..50 {
            let before = boot_clock();
            let mut child = std::process::Command::new("/bin/sleep")
                .arg("30")
                .spawn()
                .expect("sleep starts");
            let after = boot_clock();
            let proc = process_start_ticks(child.id());
            assert!(proc.is_some());
            if let Some(ticks) = spawn_ticks(before, after) {
                assert_eq!(Some(ticks), proc, "{before:?}..{after:?}");
                exact += 1;
            }
            child.kill().expect("kill sleep");
            child.wait().expect("reap sleep");
        }
        // A straddled tick is rare; nearly every start is told by the clock.
        assert!(exact >= 40, "{exact} of 50");
        let tick = std::time::Duration::from_millis(10);
        let t = std::time::Duration::from_secs(1000);
        assert_eq!(spawn_ticks(t, t + tick), None, "a tick apart");
        assert_eq!(spawn_ticks(t, t), Some(100_000), "at 100 ticks a second");
    }

    #[test]
    fn prepared_output_files_exist_empty_and_a_later_removal_deletes_them() {
        let (executor, dir, rt, _rx) = executor();
        let (kept, removed) = (JobId(7), JobId(8));
        executor.prepare_output(vec![kept, removed]);
        executor.remove_output(removed);
        rt.block_on(executor.drain_outputs(Duration::from_secs(20)));
        for stream in [LogStream::Stdout, LogStream::Stderr] {
            let path = log_path(dir.path(), kept, stream);
            let meta = std::fs::metadata(&path).expect("a prepared output file");
            assert_eq!(meta.len(), 0, "{}", path.display());
            let gone = log_path(dir.path(), removed, stream);
            assert!(!gone.exists(), "{} survived its removal", gone.display());
        }
    }

    #[test]
    fn a_start_appends_to_prepared_files_and_reports_start_then_exit() {
        let (executor, dir, rt, mut rx) = executor();
        let id = JobId(3);
        let out = log_path(dir.path(), id, LogStream::Stdout);
        std::fs::write(&out, "earlier attempt\n").expect("an earlier attempt's output");
        executor.prepare_output(vec![id]);
        let spec = JobSpec::new(
            Command::Shell("echo again".into()),
            dir.path().to_string_lossy(),
            "default",
            50,
        );
        let reports = rt.block_on(async {
            executor.start(id, 1, spec);
            let mut reports = Vec::new();
            while reports.len() < 2 {
                let next = tokio::time::timeout(Duration::from_secs(20), rx.recv()).await;
                reports.push(
                    next.expect("a report in time")
                        .expect("the channel is open"),
                );
            }
            reports
        });
        assert!(
            matches!(reports[0], Report::Started { id: j, .. } if j == id),
            "{reports:?}"
        );
        assert!(
            matches!(
                &reports[1],
                Report::Exited { id: j, outcome: ExitOutcome::Code(0), .. } if *j == id
            ),
            "{reports:?}"
        );
        let text = std::fs::read_to_string(&out).expect("the output file");
        assert_eq!(text, "earlier attempt\nagain\n");
    }
}
