//! The caller's context, read from the process exactly once.
//!
//! Everything `mayflyctl` needs from its surroundings — working directory,
//! environment, uid, whether stdout and stderr are terminals, the clock, the
//! local time zone, standard input — is gathered here, in `main`, and handed
//! to the pure planning code and the renderers as plain data. No other module
//! reads the environment, the current directory or the clock, so tests build
//! a [`ClientContext`] by hand and get deterministic results.
//!
//! What is costly is read only for the command that needs it: the time zone
//! (a file) only for `submit --at`/`--json-input`, standard input only for
//! `submit --stdin`/`--json-input`, the terminal's width only for tables.

use std::ffi::OsString;
use std::io::{IsTerminal, Read};
use std::path::PathBuf;

use jiff::tz::TimeZone;
use mayfly_protocol::Timestamp;

use crate::cli::{Cli, CliCommand, QueueCommand};

/// What the client knows about the process that runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientContext {
    /// The current directory, or why it could not be read (it may have been
    /// deleted). Only `submit` needs it, so a failure is reported only there.
    pub cwd: Result<PathBuf, String>,
    /// The caller's environment, in process order, without the variables
    /// whose name or value is not UTF-8 (the protocol carries text).
    pub env: Vec<(String, String)>,
    /// `MAYFLY_SOCKET`, if set.
    pub socket_env: Option<OsString>,
    /// `MAYFLY_DAEMON_TIMEOUT`, if set (and UTF-8).
    pub daemon_timeout_env: Option<String>,
    /// `XDG_RUNTIME_DIR`, if set.
    pub xdg_runtime_dir: Option<OsString>,
    /// `MAYFLY_JOB_ID`, if set: the daemon sets it in a job's environment, so
    /// `mayflyctl progress` run by a job knows which job it is.
    pub job_id_env: Option<String>,
    /// The real user id, for the `/tmp/mayfly-$UID` fallback.
    pub uid: u32,
    /// The terminal's width when stdout is a terminal; `None` when output
    /// goes to a pipe or file, where the table is never truncated.
    pub term_width: Option<usize>,
    /// Whether tables may use colour: stdout is a terminal, `NO_COLOR` is not
    /// set (to any value, see no-color.org) and `TERM` is not `dumb`.
    pub color: bool,
    /// Whether stderr is a terminal, where `wait` draws its progress bar.
    pub stderr_tty: bool,
    /// The time the command started: ages in tables, and the base of
    /// `--delay` and `--at`.
    pub now: Timestamp,
    /// The local time zone, for `--at HH:MM`; UTC for commands that do not
    /// need it (it costs a file read).
    pub time_zone: TimeZone,
    /// Standard input, read to the end — only for the commands that take
    /// their input there (`submit --stdin`, `--json-input`); `Err` says why it
    /// could not be read (or was not UTF-8).
    pub stdin: Option<Result<String, String>>,
}

impl ClientContext {
    /// Reads the context from the running process. Cheap: files and stdin
    /// are only read for the commands that need them.
    pub fn from_process(cli: &Cli) -> Self {
        let env = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        let tabular = match &cli.command {
            CliCommand::Status(_) | CliCommand::Edit(_) => true,
            CliCommand::Queue(q) => matches!(q.action, QueueCommand::List),
            _ => false,
        };
        let term_width = if tabular && !cli.json {
            terminal_width()
        } else {
            None
        };
        let submit = match &cli.command {
            CliCommand::Submit(args) => Some(args),
            _ => None,
        };
        let time_zone = if submit.is_some_and(|a| a.at.is_some() || a.json_input) {
            TimeZone::system()
        } else {
            TimeZone::UTC
        };
        let stdin = submit.filter(|a| a.reads_stdin()).map(|_| read_stdin());
        let no_color = std::env::var_os("NO_COLOR").is_some()
            || std::env::var_os("TERM").is_some_and(|t| t == "dumb");
        Self {
            cwd: std::env::current_dir().map_err(|e| e.to_string()),
            env,
            socket_env: std::env::var_os("MAYFLY_SOCKET"),
            daemon_timeout_env: std::env::var("MAYFLY_DAEMON_TIMEOUT").ok(),
            xdg_runtime_dir: std::env::var_os("XDG_RUNTIME_DIR"),
            job_id_env: std::env::var("MAYFLY_JOB_ID").ok(),
            uid: nix::unistd::getuid().as_raw(),
            term_width,
            color: tabular && !no_color && std::io::stdout().is_terminal(),
            stderr_tty: std::io::stderr().is_terminal(),
            now: Timestamp::now(),
            time_zone,
            stdin,
        }
    }
}

impl ClientContext {
    /// The context of jobs handed in by a program rather than typed at a
    /// terminal — the daemon's A2A front door reads a message's job spec
    /// with this crate's `--json-input` parser, so both accept the same
    /// jobs: relative paths resolve against `cwd`, `env` is the base
    /// environment, `at` times are in the local time zone, and nothing is
    /// a terminal.
    pub fn detached(cwd: PathBuf, env: Vec<(String, String)>) -> Self {
        Self {
            cwd: Ok(cwd),
            env,
            socket_env: None,
            daemon_timeout_env: None,
            xdg_runtime_dir: None,
            job_id_env: None,
            uid: nix::unistd::getuid().as_raw(),
            term_width: None,
            color: false,
            stderr_tty: false,
            now: Timestamp::now(),
            time_zone: TimeZone::system(),
            stdin: None,
        }
    }
}

/// Reads all of standard input as UTF-8 text.
fn read_stdin() -> Result<String, String> {
    let mut bytes = Vec::new();
    std::io::stdin()
        .lock()
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read standard input: {e}"))?;
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "standard input is not valid UTF-8 (byte {}); Mayfly can only carry UTF-8 text",
            e.utf8_error().valid_up_to()
        )
    })
}

/// The width of the terminal on stdout, if stdout is one.
fn terminal_width() -> Option<usize> {
    let stdout = std::io::stdout();
    if !stdout.is_terminal() {
        return None;
    }
    terminal_size::terminal_size_of(&stdout).map(|(w, _)| usize::from(w.0))
}
