//! The config file, end to end: a real `mayflyd` takes its settings from the
//! file named by `--config`, and a flag still wins over the file.
//!
//! The first test spawns the daemon itself, because the fixture passes
//! `--socket`, `--state-dir` and `--http-addr off` as flags, and the point is
//! that those come from the file alone.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::helper::{DEADLINE, Daemon, Running, bin, poll_until, run, stderr_of, stdout_of};

/// Writes `text` to `path` (a config file for the test).
fn write_config(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write the config file");
}

/// `mayflyctl --socket SOCKET ARGS…`, asserting it exits 0; its stdout.
fn ctl_ok(socket: &Path, args: &[&str]) -> String {
    let out = run(Command::new(bin("mayflyctl"))
        .arg("--socket")
        .arg(socket)
        .args(args)
        .env_remove("MAYFLY_SOCKET"));
    assert!(
        out.status.success(),
        "mayflyctl {args:?} failed ({}): {}",
        out.status,
        stderr_of(&out)
    );
    stdout_of(&out)
}

/// The output of `mayflyctl dump-state`, parsed.
fn parse_state(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("dump-state is not JSON ({e}): {out}"))
}

#[test]
fn a_daemon_takes_its_socket_state_dir_concurrency_and_log_format_from_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let socket = dir.path().join("from-file.sock");
    let state = dir.path().join("state-from-file");
    let config = dir.path().join("mayflyd.toml");
    write_config(
        &config,
        &format!(
            "# Everything the daemon needs, and nothing on its command line.\n\
             socket = \"{}\"\n\
             state_dir = \"{}\"\n\
             concurrency = 5\n\
             quantum = \"7ms\"\n\
             http_addr = \"off\"\n\
             log_format = \"json\"\n",
            socket.display(),
            state.display()
        ),
    );
    let mut daemon = Running::spawn(
        Command::new(bin("mayflyd"))
            .arg("--config")
            .arg(&config)
            .env_remove("MAYFLY_SOCKET")
            .env_remove("MAYFLY_STATE_DIR")
            .env_remove("MAYFLY_HTTP_ADDR")
            .env("XDG_CONFIG_HOME", dir.path().join("no-config-home"))
            .env("RUST_LOG", "info"),
    );
    let ready = poll_until(DEADLINE, || {
        !daemon.is_running() || std::os::unix::net::UnixStream::connect(&socket).is_ok()
    });
    assert!(
        ready && daemon.is_running(),
        "mayflyd did not come up on the file's socket {}",
        socket.display()
    );

    let state_json = parse_state(&ctl_ok(&socket, &["dump-state"]));
    assert_eq!(state_json["scheduler"]["concurrency"], 5, "{state_json:#}");
    assert_eq!(state_json["scheduler"]["quantum_ms"], 7, "{state_json:#}");
    assert!(
        state.join("wal").is_dir(),
        "the file's state dir holds the WAL"
    );

    ctl_ok(&socket, &["shutdown"]);
    let out = daemon.finish(DEADLINE);
    assert!(out.status.success(), "{out:?}");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(!log.trim().is_empty(), "the daemon logged nothing");
    for line in log.lines() {
        assert!(
            serde_json::from_str::<Value>(line).is_ok(),
            "log_format = \"json\" from the file, yet this line is not JSON: {line}"
        );
    }
}

#[test]
fn a_flag_wins_over_the_file_in_a_running_daemon() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file_state = dir.path().join("state-the-flag-overrides");
    let config = dir.path().join("mayflyd.toml");
    write_config(
        &config,
        &format!(
            "state_dir = \"{}\"\nconcurrency = 3\n",
            file_state.display()
        ),
    );
    // The fixture passes --state-dir as a flag: it must win over the file's
    // state_dir, while the file's concurrency still applies.
    let config_arg = config.to_str().expect("a UTF-8 temp path");
    let mut d = Daemon::start(&["--config", config_arg]);
    let state_json = parse_state(&d.ctl_ok(&["dump-state"]));
    assert_eq!(state_json["scheduler"]["concurrency"], 3, "{state_json:#}");
    assert!(d.wal_dir().is_dir(), "the flag's state dir holds the WAL");
    assert!(!file_state.exists(), "the file's state_dir was overridden");
    assert!(d.stop().success(), "{}", d.log_text());
}
