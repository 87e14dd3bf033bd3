//! A2A for the end-to-end tests: a daemon serving its A2A door on a free
//! loopback port, and the official Python SDK (`a2a-sdk`) driving it through
//! the scenarios of `tests/python/a2a_client.py`, or serving as a remote
//! agent (`tests/python/a2a_agent.py`).
//!
//! The SDK lives in the venv `contrib/test` makes; the tests find its
//! Python through `MAYFLY_TEST_PYTHON` (set by `contrib/test`), else in
//! `target/test-venv`. A missing venv is a failure that says to run
//! `contrib/test`, never a silent skip.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;

use super::http::free_port;
use super::{DEADLINE, Daemon, Running, poll_until, stderr_of, stdout_of};

/// How many free ports a fixture tries before it gives up.
const PORT_ATTEMPTS: usize = 5;

/// The Python of the test venv.
pub fn python() -> PathBuf {
    if let Some(path) = std::env::var_os("MAYFLY_TEST_PYTHON") {
        return PathBuf::from(path);
    }
    let venv = mayfly_tests::repo_root().join("target/test-venv/bin/python");
    assert!(
        venv.is_file(),
        "the A2A tests need the official a2a-sdk in a venv: run the suite with contrib/test, \
         which makes target/test-venv, or set MAYFLY_TEST_PYTHON to a python that has \
         contrib/test-requirements.txt installed"
    );
    venv
}

/// The path of a script under `tests/python/`.
pub fn script(name: &str) -> PathBuf {
    mayfly_tests::repo_root().join("tests/python").join(name)
}

/// A daemon serving its A2A door.
#[derive(Debug)]
pub struct A2aDaemon {
    /// The daemon.
    pub daemon: Daemon,
    /// Where the door listens.
    pub addr: SocketAddr,
}

impl A2aDaemon {
    /// Starts a daemon (as [`Daemon::start`]) whose A2A door listens on a
    /// free loopback port; a port taken between the probe and the bind is
    /// retried on another.
    pub fn start(extra_args: &[&str]) -> Self {
        let mut last = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
            let addr_arg = addr.to_string();
            let mut args = vec!["--a2a-addr", addr_arg.as_str()];
            args.extend_from_slice(extra_args);
            let dir = tempfile::tempdir().expect("create a temp dir");
            let socket = dir.path().join("s.sock");
            let state = dir.path().join("state");
            let mut daemon = Daemon::spawn_full(dir, socket, state, &args);
            match daemon.try_wait_ready() {
                Ok(()) => return Self { daemon, addr },
                Err(e) if e.contains("(--a2a-addr): address in use") => last = e,
                Err(e) => panic!("{e}"),
            }
        }
        panic!("no free port after {PORT_ATTEMPTS} attempts; last failure: {last}");
    }

    /// The door's base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bearer token (`STATE_DIR/token`).
    pub fn token(&self) -> String {
        token_in(self.daemon.state_dir())
    }

    /// Restarts the daemon on the same state dir and port.
    pub fn restart(&mut self, extra_args: &[&str]) {
        let addr_arg = self.addr.to_string();
        let mut args = vec!["--a2a-addr", addr_arg.as_str()];
        args.extend_from_slice(extra_args);
        self.daemon.restart(&args);
    }

    /// Runs scenario `name` of `a2a_client.py` with the right token and
    /// returns what it printed.
    pub fn client(&self, name: &str, args: &[&str]) -> Value {
        client(&self.url(), &self.token(), name, args)
    }

    /// Like [`A2aDaemon::client`], with `token` (`-` for none).
    pub fn client_with_token(&self, token: &str, name: &str, args: &[&str]) -> Value {
        client(&self.url(), token, name, args)
    }
}

/// The token kept in `state_dir`.
pub fn token_in(state_dir: &Path) -> String {
    std::fs::read_to_string(state_dir.join("token"))
        .expect("read STATE_DIR/token")
        .trim()
        .to_string()
}

/// Runs `a2a_client.py URL TOKEN NAME ARGS…` and returns the one JSON
/// object it printed; panics with its stderr if it failed.
pub fn client(url: &str, token: &str, name: &str, args: &[&str]) -> Value {
    let mut cmd = Command::new(python());
    cmd.arg(script("a2a_client.py"))
        .arg(url)
        .arg(token)
        .arg(name)
        .args(args);
    let out = Running::spawn(&mut cmd).finish(DEADLINE + Duration::from_secs(30));
    parse_output(&format!("a2a_client.py {name} {args:?}"), &out)
}

/// The JSON object a Python script printed last; panics with its stderr if
/// it failed or printed none.
pub fn parse_output(what: &str, out: &Output) -> Value {
    let text = stdout_of(out);
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{text}",
        out.status,
        stderr_of(out)
    );
    let last = text.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| {
        panic!(
            "{what} printed no JSON ({e}): {text}\nstderr: {}",
            stderr_of(out)
        )
    })
}

/// The test agent of `tests/python/a2a_agent.py`: the SDK's own server
/// components running each message's command. Stopped (by pid) when
/// dropped.
#[derive(Debug)]
pub struct PyAgent {
    /// The agent's process.
    _process: Running,
    /// Where it listens.
    pub addr: SocketAddr,
    /// The file it notes each message and cancel in, one JSON line each.
    pub log: PathBuf,
}

impl PyAgent {
    /// Starts the agent on a free loopback port, noting messages in `log`;
    /// with `token`, it wants that bearer token; `flags` are the script's
    /// (`--no-streaming`, `--slow-answer SECS`).
    pub fn start(log: &Path, token: Option<&str>, flags: &[&str]) -> Self {
        Self::start_at(None, log, token, flags)
    }

    /// [`PyAgent::start`] on `port` if given (a port the test chose before,
    /// tried once), else on a free one.
    pub fn start_at(port: Option<u16>, log: &Path, token: Option<&str>, flags: &[&str]) -> Self {
        let mut last = String::new();
        let attempts = if port.is_some() { 1 } else { PORT_ATTEMPTS };
        for _ in 0..attempts {
            let addr = SocketAddr::from(([127, 0, 0, 1], port.unwrap_or_else(free_port)));
            let mut cmd = Command::new(python());
            cmd.arg(script("a2a_agent.py"))
                .arg(addr.port().to_string())
                .arg(log)
                .arg(token.unwrap_or("-"))
                .args(flags);
            let mut process = Running::spawn(&mut cmd);
            let up = poll_until(DEADLINE, || {
                !process.is_running() || std::net::TcpStream::connect(addr).is_ok()
            });
            if up && process.is_running() {
                return Self {
                    _process: process,
                    addr,
                    log: log.to_path_buf(),
                };
            }
            let out = process.finish(DEADLINE);
            last = format!("{}\n{}", stdout_of(&out), stderr_of(&out));
        }
        panic!("the test agent did not start after {attempts} attempts; last:\n{last}");
    }

    /// Its JSON-RPC URL.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// What it noted, one JSON object per message or cancel.
    pub fn notes(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// How many tasks it was given.
    pub fn tasks(&self) -> usize {
        self.notes()
            .iter()
            .filter(|n| n.get("task").is_some())
            .count()
    }
}
