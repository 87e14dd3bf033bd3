//! The caller's context, read from the process exactly once.
//!
//! Everything `mayflyctl` needs from its surroundings — working directory,
//! environment, uid, terminal width, the clock — is gathered here, in `main`,
//! and handed to the pure planning code and the renderers as plain data. No
//! other module reads the environment or the current directory, so tests
//! build a [`ClientContext`] by hand and get deterministic results.

use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::PathBuf;

use mayfly_protocol::Timestamp;

use crate::cli::{Cli, CliCommand};

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
    /// `XDG_RUNTIME_DIR`, if set.
    pub xdg_runtime_dir: Option<OsString>,
    /// The real user id, for the `/tmp/mayfly-$UID` fallback.
    pub uid: u32,
    /// The terminal's width when stdout is a terminal; `None` when output
    /// goes to a pipe or file, where the table is never truncated.
    pub term_width: Option<usize>,
    /// The time the command started, for ages in the status table.
    pub now: Timestamp,
}

impl ClientContext {
    /// Reads the context from the running process. Cheap: no files are read,
    /// and the terminal is only queried for the command that needs it.
    pub fn from_process(cli: &Cli) -> Self {
        let env = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        let term_width = match cli.command {
            CliCommand::Status(_) if !cli.json => terminal_width(),
            _ => None,
        };
        Self {
            cwd: std::env::current_dir().map_err(|e| e.to_string()),
            env,
            socket_env: std::env::var_os("MAYFLY_SOCKET"),
            xdg_runtime_dir: std::env::var_os("XDG_RUNTIME_DIR"),
            uid: nix::unistd::getuid().as_raw(),
            term_width,
            now: Timestamp::now(),
        }
    }
}

/// The width of the terminal on stdout, if stdout is one.
fn terminal_width() -> Option<usize> {
    let stdout = std::io::stdout();
    if !stdout.is_terminal() {
        return None;
    }
    terminal_size::terminal_size_of(&stdout).map(|(w, _)| usize::from(w.0))
}
