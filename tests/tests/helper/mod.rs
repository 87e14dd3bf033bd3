//! The daemon fixture: a real `mayflyd` in a temporary directory, driven by
//! the real `mayflyctl`.
//!
//! Conventions:
//! - every test gets its own daemon, socket and state dir, so tests run in
//!   parallel;
//! - jobs run in the fixture's `work/` folder (the CLI captures its cwd, and
//!   [`Daemon::ctl_command`] runs the CLI there), so job files never land in
//!   the source tree;
//! - every process the fixture starts is stopped by its pid, with a
//!   deadline; nothing is signalled by name;
//! - the daemon's log (stderr, at debug level) goes to a file that is printed
//!   when a test fails; its stdout (where `--dump-state` prints) to another.

#[cfg(feature = "a2a")]
pub mod a2a;
pub mod http;
pub mod raw;
pub mod wait;

use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;
use tempfile::TempDir;

pub use self::wait::{
    DEADLINE, poll_until, proc_state, process_gone, read_pid_file, still_before, until_file,
    wait_until, write_pid,
};

/// How long a stopping daemon gets after SIGTERM before the fixture kills it.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// The folder holding the workspace's binaries: this test runs as
/// `target/debug/deps/integration-HASH`, the binaries are in `target/debug/`.
fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    exe.parent()
        .and_then(Path::parent)
        .expect("the test binary lives in target/<profile>/deps")
        .to_path_buf()
}

/// The path of the workspace binary `name`; panics with the fix if it has not
/// been built (cargo does not build other packages' binaries for our tests).
pub fn bin(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build --workspace` first",
        path.display()
    );
    path
}

/// The full path of `program`, looked up on `PATH` as a shell would; panics
/// saying which Debian package has it and that `contrib/test` installs it.
/// Tests need these tools; a missing one is a failure, never a silent skip.
pub fn tool(program: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(candidate)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
        .unwrap_or_else(|| {
            panic!(
                "{program} is not on PATH: run the suite with contrib/test, which installs \
                 it, or install the Debian package {package} yourself"
            )
        })
}

/// Sends `signal` to a process this test started.
fn signal_pid(child: &Child, signal: Signal) {
    let pid = i32::try_from(child.id()).expect("pid fits in i32");
    // ESRCH: it has already exited (and awaits reaping); nothing to do.
    let _ = kill(Pid::from_raw(pid), signal);
}

/// A child process with its output collected by background threads, so the
/// child never blocks on a full pipe while the test waits for it.
#[derive(Debug)]
pub struct Running {
    /// The process; `None` once reaped.
    child: Option<Child>,
    /// What it wrote to stdout so far.
    stdout: Arc<Mutex<Vec<u8>>>,
    /// What it wrote to stderr so far.
    stderr: Arc<Mutex<Vec<u8>>>,
    /// The threads draining the pipes; joined once the child has exited.
    readers: Vec<JoinHandle<()>>,
    /// The command line, for failure messages.
    what: String,
}

/// Copies everything from `pipe` into `into` until end of file.
fn drain(mut pipe: impl Read + Send + 'static, into: Arc<Mutex<Vec<u8>>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => into
                    .lock()
                    .expect("output buffer lock")
                    .extend_from_slice(&buf[..n]),
            }
        }
    })
}

impl Running {
    /// Starts `cmd` with stdin closed and stdout/stderr captured.
    pub fn spawn(cmd: &mut Command) -> Self {
        let what = format!("{cmd:?}");
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let readers = vec![
            drain(child.stdout.take().expect("piped stdout"), stdout.clone()),
            drain(child.stderr.take().expect("piped stderr"), stderr.clone()),
        ];
        Self {
            child: Some(child),
            stdout,
            stderr,
            readers,
            what,
        }
    }

    /// Its stdout so far, as text.
    pub fn stdout_so_far(&self) -> String {
        String::from_utf8_lossy(&self.stdout.lock().expect("output buffer lock")).into_owned()
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Waits up to `timeout` for the process to exit and returns everything
    /// it wrote; kills it (by pid) and panics if it does not exit in time.
    pub fn finish(mut self, timeout: Duration) -> Output {
        let mut child = self.child.take().expect("not yet reaped");
        let mut status = None;
        let exited = poll_until(timeout, || {
            status = child.try_wait().expect("poll the child");
            status.is_some()
        });
        if !exited {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{} did not exit within {timeout:?}; stdout so far: {:?}",
                self.what,
                self.stdout_so_far()
            );
        }
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        Output {
            status: status.expect("exited"),
            stdout: std::mem::take(&mut *self.stdout.lock().expect("output buffer lock")),
            stderr: std::mem::take(&mut *self.stderr.lock().expect("output buffer lock")),
        }
    }
}

impl Drop for Running {
    /// A process left running by a failed test is killed (by its pid) and
    /// reaped.
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs `cmd` to completion, for at most [`DEADLINE`].
pub fn run(cmd: &mut Command) -> Output {
    Running::spawn(cmd).finish(DEADLINE)
}

/// The text of a command's stdout, trimmed.
pub fn stdout_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The text of a command's stderr, trimmed.
pub fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).trim().to_string()
}

/// The exit code of a finished command, or 128+N when signal N killed it
/// (the CLI itself must never die of a signal; this keeps messages useful).
pub fn code_of(out: &Output) -> i32 {
    out.status
        .code()
        .unwrap_or_else(|| 128 + out.status.signal().unwrap_or(0))
}

/// Starts `mayflyd` on `socket` with state in `state`, plus `extra_args`,
/// its stdout going to `stdout` and its stderr (at debug level) to `stderr`,
/// with `launch`'s environment and shell prelude. Unless `extra_args` name
/// `--http-addr`, the daemon serves no HTTP, so that daemons of tests
/// running in parallel do not compete for the default port.
///
/// With a prelude (shell commands such as `umask 022` or `ulimit -n 64`),
/// `sh` runs it and then execs the daemon in its place, so the pid is the
/// daemon's.
fn spawn_mayflyd(
    socket: &Path,
    state: &Path,
    (stdout, stderr): (std::fs::File, std::fs::File),
    extra_args: &[&str],
    launch: &Launch,
) -> Child {
    let http_off: &[&str] = if extra_args.iter().any(|a| a.starts_with("--http-addr")) {
        &[]
    } else {
        &["--http-addr", "off"]
    };
    let mut cmd = match launch.prelude.as_deref() {
        None => Command::new(bin("mayflyd")),
        Some(prelude) => {
            let mut sh = Command::new("/bin/sh");
            sh.arg("-c")
                .arg(format!("{prelude} && exec \"$0\" \"$@\""))
                .arg(bin("mayflyd"));
            sh
        }
    };
    cmd.arg("--socket")
        .arg(socket)
        .arg("--state-dir")
        .arg(state)
        .args(http_off)
        .args(extra_args)
        .env("RUST_LOG", "mayflyd=debug,info")
        .env_remove("MAYFLY_SOCKET")
        .env_remove("MAYFLY_STATE_DIR")
        .envs(launch.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .expect("start mayflyd")
}

/// How the fixture starts the daemon, beyond its arguments; kept for
/// restarts.
#[derive(Debug, Default)]
struct Launch {
    /// Shell commands it starts after (a umask, a limit), when a test chose
    /// some.
    prelude: Option<String>,
    /// Environment variables it gets on top of the test's (e.g.
    /// `NOTIFY_SOCKET`).
    env: Vec<(String, OsString)>,
}

/// A running `mayflyd` in its own temporary directory.
#[derive(Debug)]
pub struct Daemon {
    /// The daemon process; `None` once it has been reaped.
    child: Option<Child>,
    /// How it exited, once it has.
    exit: Option<ExitStatus>,
    /// The socket it serves.
    socket: PathBuf,
    /// Where its stderr goes.
    log: PathBuf,
    /// Where its stdout goes.
    out: PathBuf,
    /// Where jobs run (the CLI runs here, and jobs inherit its cwd).
    work: PathBuf,
    /// The daemon's `--state-dir` (WAL, snapshots, job output).
    state: PathBuf,
    /// Its prelude and environment (kept for restarts).
    launch: Launch,
    /// Everything the test owns; removed after the daemon has stopped
    /// (fields drop after [`Drop::drop`] ran).
    dir: TempDir,
}

impl Daemon {
    /// Starts a daemon on `<tmp>/s.sock` with state in `<tmp>/state`, plus
    /// `extra_args`, and waits until it accepts connections.
    pub fn start(extra_args: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("create a temp dir");
        let socket = dir.path().join("s.sock");
        Self::start_in(dir, socket, extra_args)
    }

    /// The daemon's pid (while it has not been reaped).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Starts a daemon in an existing temp dir with the given socket path
    /// (for tests that prepare the socket's surroundings first).
    pub fn start_in(dir: TempDir, socket: PathBuf, extra_args: &[&str]) -> Self {
        let state = dir.path().join("state");
        Self::start_full(dir, socket, state, extra_args)
    }

    /// Starts a daemon in `dir` (socket `socket`) whose state lives in
    /// `state`, which may be outside `dir` (e.g. on a small file system).
    fn start_full(dir: TempDir, socket: PathBuf, state: PathBuf, extra_args: &[&str]) -> Self {
        let mut daemon = Self::spawn_full(dir, socket, state, extra_args);
        daemon.wait_ready();
        daemon
    }

    /// Like [`Daemon::start`], with the daemon (and its restarts) under
    /// `umask`, for tests of the modes of the files it creates.
    pub fn start_with_umask(umask: u32, extra_args: &[&str]) -> Self {
        Self::start_launched(
            extra_args,
            Launch {
                prelude: Some(format!("umask {umask:03o}")),
                ..Launch::default()
            },
        )
    }

    /// Like [`Daemon::start`], with `env` added to the daemon's environment
    /// (and its restarts'), e.g. `NOTIFY_SOCKET` for the systemd tests.
    pub fn start_with_env(extra_args: &[&str], env: &[(&str, &std::ffi::OsStr)]) -> Self {
        Self::start_launched(
            extra_args,
            Launch {
                env: env
                    .iter()
                    .map(|(k, v)| ((*k).to_string(), (*v).to_os_string()))
                    .collect(),
                ..Launch::default()
            },
        )
    }

    /// Starts a daemon whose open files are limited to `n` (soft and hard,
    /// set by the shell that execs it), for tests of running out of file
    /// descriptors.
    pub fn start_with_fd_limit(n: usize, extra_args: &[&str]) -> Self {
        Self::start_launched(
            extra_args,
            Launch {
                prelude: Some(format!("ulimit -n {n}")),
                ..Launch::default()
            },
        )
    }

    /// [`Daemon::start`] the way `launch` says.
    fn start_launched(extra_args: &[&str], launch: Launch) -> Self {
        let dir = tempfile::tempdir().expect("create a temp dir");
        let socket = dir.path().join("s.sock");
        let state = dir.path().join("state");
        let mut daemon = Self::spawn_with(dir, socket, state, extra_args, launch);
        daemon.wait_ready();
        daemon
    }

    /// Like [`Daemon::start_full`], without waiting for the socket.
    fn spawn_full(dir: TempDir, socket: PathBuf, state: PathBuf, extra_args: &[&str]) -> Self {
        Self::spawn_with(dir, socket, state, extra_args, Launch::default())
    }

    /// [`Daemon::spawn_full`], the way `launch` says.
    fn spawn_with(
        dir: TempDir,
        socket: PathBuf,
        state: PathBuf,
        extra_args: &[&str],
        launch: Launch,
    ) -> Self {
        let work = dir.path().join("work");
        std::fs::create_dir_all(&work).expect("create the work dir");
        let log = dir.path().join("mayflyd.log");
        let out = dir.path().join("mayflyd.out");
        let files = (
            std::fs::File::create(&out).expect("create the daemon's stdout file"),
            std::fs::File::create(&log).expect("create the daemon log"),
        );
        let child = spawn_mayflyd(&socket, &state, files, extra_args, &launch);
        Self {
            child: Some(child),
            exit: None,
            socket,
            log,
            out,
            work,
            state,
            launch,
            dir,
        }
    }

    /// Waits until the socket accepts a connection; fails at once, with the
    /// daemon's log, if the daemon exits instead.
    fn wait_ready(&mut self) {
        if let Err(e) = self.try_wait_ready() {
            panic!("{e}");
        }
    }

    /// Like [`Daemon::wait_ready`], but a daemon that exits during start-up
    /// is an `Err` naming its exit status, with its log (for callers that
    /// retry, e.g. on another port).
    fn try_wait_ready(&mut self) -> Result<(), String> {
        let mut exited = None;
        let ready = poll_until(DEADLINE, || {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                exited = Some(status);
                return true;
            }
            std::os::unix::net::UnixStream::connect(&self.socket).is_ok()
        });
        if let Some(status) = exited {
            self.child = None;
            self.exit = Some(status);
            return Err(format!(
                "mayflyd exited during start-up ({status}); its log:\n{}",
                self.log_text()
            ));
        }
        assert!(
            ready,
            "mayflyd did not accept connections on {} within {DEADLINE:?}; its log:\n{}",
            self.socket.display(),
            self.log_text()
        );
        Ok(())
    }

    /// The socket it serves.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The temp dir holding socket, state, log and work folder.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The folder jobs run in; relative paths in job scripts are relative to it.
    pub fn work(&self) -> &Path {
        &self.work
    }

    /// A file in the work folder.
    pub fn file(&self, name: &str) -> PathBuf {
        self.work.join(name)
    }

    /// Creates the (empty) file `name` in the work folder, e.g. to release a
    /// job that waits for it.
    pub fn touch(&self, name: &str) {
        std::fs::write(self.file(name), b"").expect("create a file in the work dir");
    }

    /// The daemon's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// What the daemon printed on its stdout so far (`--dump-state` prints
    /// there at shutdown).
    pub fn stdout_text(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    /// Sends `signal` to the running daemon, by its pid.
    pub fn signal(&self, signal: Signal) {
        let child = self.child.as_ref().expect("the daemon is running");
        let pid = i32::try_from(child.id()).expect("pid fits in i32");
        kill(Pid::from_raw(pid), signal).expect("signal mayflyd");
    }

    /// A `mayflyctl --socket S` command, run from the work folder.
    pub fn ctl_command(&self) -> Command {
        let mut cmd = Command::new(bin("mayflyctl"));
        cmd.arg("--socket")
            .arg(&self.socket)
            .current_dir(&self.work);
        cmd
    }

    /// Runs `mayflyctl --socket S ARGS…` to completion (with a deadline).
    pub fn ctl(&self, args: &[&str]) -> Output {
        run(self.ctl_command().args(args))
    }

    /// Starts `mayflyctl --socket S ARGS…` in the background.
    pub fn ctl_spawn(&self, args: &[&str]) -> Running {
        Running::spawn(self.ctl_command().args(args))
    }

    /// Runs `mayflyctl` and asserts it exited 0; returns its stdout.
    pub fn ctl_ok(&self, args: &[&str]) -> String {
        let out = self.ctl(args);
        assert!(
            out.status.success(),
            "mayflyctl {args:?} failed ({}): {}",
            out.status,
            stderr_of(&out)
        );
        stdout_of(&out)
    }

    /// `mayflyctl submit ARGS…`: asserts success and returns the printed id.
    pub fn submit(&self, args: &[&str]) -> u64 {
        let mut full = vec!["submit"];
        full.extend_from_slice(args);
        let printed = self.ctl_ok(&full);
        printed
            .parse()
            .unwrap_or_else(|_| panic!("submit printed {printed:?}, not a job id"))
    }

    /// Submits a shell job: `mayflyctl submit OPTIONS… --shell -- SCRIPT`.
    pub fn submit_shell(&self, options: &[&str], script: &str) -> u64 {
        let mut args = options.to_vec();
        args.extend_from_slice(&["--shell", "--", script]);
        self.submit(&args)
    }

    /// `mayflyctl --json status`, parsed.
    pub fn status_json(&self) -> Value {
        let out = self.ctl_ok(&["--json", "status"]);
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("status --json printed invalid JSON ({e}): {out}"))
    }

    /// The job object of `id` from `status ID --json` (the flag after the
    /// subcommand, where [`Daemon::status_json`] puts it before).
    pub fn job(&self, id: u64) -> Value {
        let out = self.ctl_ok(&["status", &id.to_string(), "--json"]);
        let parsed: Value = serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("status --json printed invalid JSON ({e}): {out}"));
        parsed
            .as_array()
            .and_then(|jobs| jobs.iter().find(|j| j["id"] == id))
            .cloned()
            .unwrap_or_else(|| panic!("status --json {id} does not list job {id}: {out}"))
    }

    /// The state of job `id`, as `status --json` spells it.
    pub fn state(&self, id: u64) -> String {
        self.job(id)["state"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Waits until job `id` is in `state`.
    pub fn wait_state(&self, id: u64, state: &str) {
        let mut last = String::new();
        let reached = poll_until(DEADLINE, || {
            last = self.state(id);
            last == state
        });
        assert!(
            reached,
            "job {id} did not reach {state} within {DEADLINE:?}; last seen {last}"
        );
    }

    /// True while the daemon process runs.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            None => false,
            Some(child) => match child.try_wait().expect("poll mayflyd") {
                None => true,
                Some(status) => {
                    self.exit = Some(status);
                    self.child = None;
                    false
                }
            },
        }
    }

    /// Sends SIGTERM to the daemon (by pid) and waits for it to exit.
    pub fn stop(&mut self) -> ExitStatus {
        if let Some(child) = self.child.as_ref() {
            signal_pid(child, Signal::SIGTERM);
        }
        self.wait_exit(DEADLINE)
    }

    /// Waits up to `timeout` for the daemon to exit and returns its status;
    /// panics (the fixture then kills it) if it does not.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let exited = poll_until(timeout, || !self.is_running());
        assert!(
            exited,
            "mayflyd did not exit within {timeout:?}; its log:\n{}",
            self.log_text()
        );
        self.exit.expect("the daemon has exited")
    }
}

/// Crashes, restarts and failed starts on the same socket and state dir, for
/// the durability tests.
impl Daemon {
    /// Starts a daemon (socket, log and work folder in a fresh temp dir) whose
    /// state dir is `state`, for example a small file system the test mounted.
    pub fn start_with_state_dir(state: &Path, extra_args: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("create a temp dir");
        let socket = dir.path().join("s.sock");
        Self::start_full(dir, socket, state.to_path_buf(), extra_args)
    }

    /// The daemon's state dir.
    pub fn state_dir(&self) -> &Path {
        &self.state
    }

    /// The write-ahead log's folder, `STATE_DIR/wal`.
    pub fn wal_dir(&self) -> PathBuf {
        self.state.join("wal")
    }

    /// Kills the daemon with SIGKILL (by pid): a crash, with no chance to
    /// flush anything. Waits until it is reaped and checks that SIGKILL is
    /// what ended it. Its jobs keep running (each has its own process group).
    pub fn kill_hard(&mut self) {
        let child = self.child.as_ref().expect("the daemon is running");
        signal_pid(child, Signal::SIGKILL);
        let status = self.wait_exit(DEADLINE);
        assert_eq!(
            status.signal(),
            Some(Signal::SIGKILL as i32),
            "mayflyd exited on its own ({status}) before SIGKILL reached it; its log:\n{}",
            self.log_text()
        );
    }

    /// Appends a marker to the log and starts `mayflyd` again on the same
    /// socket and state dir (the previous one must have exited). Returns the
    /// log's length before the marker, so callers can read this run's part.
    fn relaunch(&mut self, extra_args: &[&str]) -> u64 {
        assert!(
            !self.is_running(),
            "restart asked for while mayflyd still runs"
        );
        let append = |path: &Path| {
            std::fs::OpenOptions::new()
                .append(true)
                .open(path)
                .expect("open the daemon's output for appending")
        };
        let mut log = append(&self.log);
        let before = log.metadata().map(|m| m.len()).unwrap_or(0);
        writeln!(log, "==== mayflyd started again with {extra_args:?} ====")
            .expect("write to the daemon log");
        self.child = Some(spawn_mayflyd(
            &self.socket,
            &self.state,
            (append(&self.out), log),
            extra_args,
            &self.launch,
        ));
        self.exit = None;
        before
    }

    /// Starts the daemon again on the same socket and state dir, after
    /// [`Daemon::stop`] or [`Daemon::kill_hard`], and waits until it accepts
    /// connections. Its log goes on in the same file.
    pub fn restart(&mut self, extra_args: &[&str]) {
        self.relaunch(extra_args);
        self.wait_ready();
    }

    /// Starts the daemon again on the same socket and state dir, expecting it
    /// to refuse to start: waits for it to exit and returns its exit status
    /// and what it logged during this attempt. Panics (the daemon is then
    /// stopped by [`Drop`]) if it comes up instead.
    pub fn restart_expecting_failure(&mut self, extra_args: &[&str]) -> (ExitStatus, String) {
        let before = self.relaunch(extra_args);
        let status = self.wait_exit_or_panic();
        let full = std::fs::read(&self.log).unwrap_or_default();
        let start = usize::try_from(before)
            .unwrap_or(usize::MAX)
            .min(full.len());
        (status, String::from_utf8_lossy(&full[start..]).into_owned())
    }

    /// Waits for a daemon that should not start to exit; panics with its log
    /// if it accepts connections instead, or is still running at the deadline.
    fn wait_exit_or_panic(&mut self) -> ExitStatus {
        let mut serving = false;
        let exited = poll_until(DEADLINE, || {
            if !self.is_running() {
                return true;
            }
            serving = std::os::unix::net::UnixStream::connect(&self.socket).is_ok();
            serving
        });
        assert!(
            exited && !serving,
            "mayflyd started (or hung) where it should have refused to start; its log:\n{}",
            self.log_text()
        );
        self.exit.expect("the daemon has exited")
    }
}

impl Drop for Daemon {
    /// Really stops the daemon: SIGTERM, a few seconds' grace, then SIGKILL,
    /// always by pid, and reaps it. On a failing test, prints its log.
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal_pid(&child, Signal::SIGTERM);
            let exited = poll_until(STOP_GRACE, || matches!(child.try_wait(), Ok(Some(_))));
            if !exited {
                eprintln!("mayflyd ignored SIGTERM for {STOP_GRACE:?}; killing it");
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if std::thread::panicking() {
            eprintln!(
                "---- mayflyd log ({}) ----\n{}",
                self.log.display(),
                self.log_text()
            );
        }
    }
}

/// A grandchild process (a `sleep` a job started in the background) that a
/// test must not leave behind if it fails: killed on drop, by pid, and only
/// if that pid still is a `sleep`.
pub struct Grandchild(pub u32);

impl Drop for Grandchild {
    /// Kills the grandchild if a failed test left it running.
    fn drop(&mut self) {
        let cmdline = std::fs::read(format!("/proc/{}/cmdline", self.0)).unwrap_or_default();
        if !process_gone(self.0) && cmdline.starts_with(b"sleep") {
            let pid = nix::unistd::Pid::from_raw(i32::try_from(self.0).unwrap_or(i32::MAX));
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        }
    }
}
