//! The `mayflyd` binary's command line, run for real.

use std::process::Command;

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
