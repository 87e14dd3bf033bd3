//! The `mayflyd` binary's command line, run for real.

use std::path::Path;
use std::process::{Command, Output};

/// Runs the built `mayflyd` with `args`.
fn mayflyd(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mayflyd"))
        .args(args)
        .output()
        .expect("run mayflyd")
}

#[test]
fn help_lists_every_contract_flag() {
    let out = mayflyd(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--socket",
        "--state-dir",
        "--concurrency",
        "--quantum",
        "--shutdown-timeout",
        "--verbose",
        "--quiet",
        "--log-format",
        "--config",
        "--print-config",
        "--http-addr",
        "--push-gateway",
        "--metrics-interval",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}:\n{help}");
    }
}

#[test]
fn bad_flags_are_usage_errors_with_exit_2() {
    let out = mayflyd(&["--concurrency", "zero"]);
    assert_eq!(out.status.code(), Some(2));
    let out = mayflyd(&["--shutdown-timeout", "soon"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("30s"));
}

#[test]
fn an_unusable_socket_path_fails_with_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"not a socket").unwrap();
    let out = mayflyd(&[
        "--socket",
        blocker.to_str().unwrap(),
        "--state-dir",
        dir.path().join("state").to_str().unwrap(),
        // Not the default port: another daemon on this machine may hold it.
        "--http-addr",
        "off",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is not a socket"), "{stderr}");
    assert_eq!(
        std::fs::read(&blocker).unwrap(),
        b"not a socket",
        "left untouched"
    );
}

/// Runs the built `mayflyd` with `args` and `env`, in an environment of its
/// own: none of its `MAYFLY_*` variables, and `XDG_CONFIG_HOME` set to
/// `config_home`, so a config file of the machine cannot leak in.
fn mayflyd_env(config_home: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mayflyd"))
        .args(args)
        .env_remove("MAYFLY_SOCKET")
        .env_remove("MAYFLY_STATE_DIR")
        .env_remove("MAYFLY_HTTP_ADDR")
        .env("XDG_CONFIG_HOME", config_home)
        .envs(env.iter().copied())
        .output()
        .expect("run mayflyd")
}

/// The `--print-config` line of `key` in `out`'s stdout.
fn line_of(out: &Output, key: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .find(|l| l.starts_with(&format!("{key} = ")))
        .unwrap_or_else(|| panic!("no {key} line in:\n{stdout}"))
        .to_string()
}

/// Writes `text` as `<dir>/<name>` and returns the path as a string.
fn write_file(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().expect("a parent")).expect("create the folder");
    std::fs::write(&path, text).expect("write the config file");
    path.to_str().expect("a UTF-8 temp path").to_string()
}

#[test]
fn print_config_shows_a_config_file_named_by_the_flag_as_the_source() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state-from-file");
    let file = write_file(
        dir.path(),
        "my.toml",
        &format!(
            "concurrency = 3\nstate_dir = \"{}\"\nquantum = \"25ms\"\n",
            state.display()
        ),
    );
    let out = mayflyd_env(dir.path(), &["--config", &file, "--print-config"], &[]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let source = format!("# config {file}");
    let line = line_of(&out, "concurrency");
    assert!(line.starts_with("concurrency = 3 "), "{line}");
    assert!(line.ends_with(&source), "{line}");
    assert!(line_of(&out, "quantum").starts_with("quantum = \"25ms\" "));
    assert!(line_of(&out, "shutdown_timeout").ends_with("# default"));
    assert!(!state.exists(), "--print-config starts nothing");
}

#[test]
fn print_config_finds_the_default_file_under_xdg_config_home() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(
        dir.path(),
        "mayfly/mayflyd.toml",
        "concurrency = 4\nhttp_addr = \"off\"\n",
    );
    let out = mayflyd_env(dir.path(), &["--print-config"], &[]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let concurrency = line_of(&out, "concurrency");
    assert!(concurrency.starts_with("concurrency = 4 "), "{concurrency}");
    assert!(
        concurrency.ends_with(&format!("# config {file}")),
        "{concurrency}"
    );
    assert!(line_of(&out, "http_addr").starts_with("http_addr = \"off\" "));
}

#[test]
fn flags_and_environment_win_over_the_file() {
    let dir = tempfile::tempdir().unwrap();
    write_file(
        dir.path(),
        "mayfly/mayflyd.toml",
        "concurrency = 4\nstate_dir = \"/from/file\"\nsocket = \"/from/file.sock\"\n",
    );
    let out = mayflyd_env(
        dir.path(),
        &["--print-config", "--concurrency", "2"],
        &[("MAYFLY_STATE_DIR", "/from/env")],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let concurrency = line_of(&out, "concurrency");
    assert!(concurrency.starts_with("concurrency = 2 "), "{concurrency}");
    assert!(concurrency.ends_with("# flag"), "{concurrency}");
    let state = line_of(&out, "state_dir");
    assert!(state.starts_with("state_dir = \"/from/env\" "), "{state}");
    assert!(state.ends_with("# env MAYFLY_STATE_DIR"), "{state}");
    let socket = line_of(&out, "socket");
    assert!(
        socket.starts_with("socket = \"/from/file.sock\" "),
        "{socket}"
    );
}

#[test]
fn an_unknown_key_fails_with_file_and_line_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "bad.toml", "concurrency = 2\nconcurency = 3\n");
    let out = mayflyd_env(dir.path(), &["--config", &file], &[]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.starts_with(&format!("mayflyd: {file}:2:1: unknown key `concurency`")),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn a_bad_value_or_a_missing_config_file_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "bad.toml", "shutdown_timeout = \"soon\"\n");
    let out = mayflyd_env(dir.path(), &["--config", &file, "--print-config"], &[]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(&format!("mayflyd: {file}:1:20: shutdown_timeout: ")),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");

    let missing = dir.path().join("missing.toml");
    let out = mayflyd_env(
        dir.path(),
        &["--config", missing.to_str().unwrap(), "--print-config"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("does not exist"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");

    // No default file at all is fine.
    let out = mayflyd_env(dir.path(), &["--print-config"], &[]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("(not found)"),
        "{out:?}"
    );
}

#[test]
fn help_teaches_the_config_file() {
    let out = mayflyd(&["--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "--config <FILE>",
        "--print-config",
        "mayfly/mayflyd.toml",
        "precedence",
    ] {
        assert!(help.contains(needle), "--help lacks {needle}:\n{help}");
    }
}

#[test]
fn the_environment_wins_over_the_file_and_the_file_sets_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(
        dir.path(),
        "mayfly/mayflyd.toml",
        "socket = \"/file/s.sock\"\nstate_dir = \"/file/state\"\nconcurrency = 5\n\
         http_addr = \"off\"\n",
    );
    let out = mayflyd_env(
        dir.path(),
        &["--print-config"],
        &[
            ("MAYFLY_SOCKET", "/env/s.sock"),
            ("MAYFLY_STATE_DIR", "/env/state"),
            ("MAYFLY_HTTP_ADDR", "127.0.0.1:1"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    for (key, value, var) in [
        ("socket", "\"/env/s.sock\"", "MAYFLY_SOCKET"),
        ("state_dir", "\"/env/state\"", "MAYFLY_STATE_DIR"),
        ("http_addr", "\"127.0.0.1:1\"", "MAYFLY_HTTP_ADDR"),
    ] {
        let line = line_of(&out, key);
        assert!(line.starts_with(&format!("{key} = {value} ")), "{line}");
        assert!(line.ends_with(&format!("# env {var}")), "{line}");
    }
    let concurrency = line_of(&out, "concurrency");
    assert!(concurrency.starts_with("concurrency = 5 "), "{concurrency}");
    assert!(
        concurrency.ends_with(&format!("# config {file}")),
        "the file still sets the rest: {concurrency}"
    );
}
