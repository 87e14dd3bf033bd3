//! The second stage of argument handling: raw clap arguments plus the
//! caller's context become a validated [`Plan`] — which socket to talk to and
//! exactly which protocol request to send.
//!
//! [`plan`] is a pure function: it reads nothing from the process (the
//! context was gathered once by [`crate::ClientContext::from_process`]), so
//! every rule about arguments is unit-tested here without a daemon. Command
//! specific conversions live with their command in [`crate::cmd`]; the value
//! parsers they share (ids, `KEY=VALUE`, durations) live here.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use mayfly_protocol::{
    CancelRequest, JobId, LogsRequest, ShutdownRequest, StatusRequest, SubmitRequest, WaitRequest,
};

use crate::cli::{Cli, CliCommand};
use crate::cmd;
use crate::context::ClientContext;
use crate::error::UsageError;

/// Everything a run needs, validated: where to connect and what to ask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The daemon's socket, resolved by [`socket_path`].
    pub socket: PathBuf,
    /// Whether output is JSON rather than text.
    pub json: bool,
    /// The request and how to present its answer.
    pub action: Action,
}

/// One command, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Queue a job.
    Submit {
        /// The job.
        request: SubmitRequest,
        /// Wait for the job after printing its id, and exit with its code.
        wait: bool,
    },
    /// Show jobs.
    Status(StatusRequest),
    /// Cancel jobs.
    Cancel(CancelRequest),
    /// Wait for jobs.
    Wait {
        /// The jobs.
        request: WaitRequest,
        /// Print nothing.
        quiet: bool,
    },
    /// Print a job's output.
    Logs(LogsRequest),
    /// Read the activity log.
    Events(mayfly_protocol::EventsRequest),
    /// Print a snapshot of the daemon's state.
    DumpState,
    /// Shut the daemon down.
    Shutdown(ShutdownRequest),
}

/// Turns parsed arguments and the caller's context into a [`Plan`].
pub fn plan(cli: &Cli, ctx: &ClientContext) -> Result<Plan, UsageError> {
    let action = match &cli.command {
        CliCommand::Submit(args) => cmd::submit::plan(args, ctx)?,
        CliCommand::Status(args) => cmd::status::plan(args)?,
        CliCommand::Cancel(args) => cmd::cancel::plan(args)?,
        CliCommand::Wait(args) => cmd::wait::plan(args)?,
        CliCommand::Logs(args) => cmd::logs::plan(args)?,
        CliCommand::Events(args) => cmd::events::plan(args),
        CliCommand::DumpState => cmd::dump_state::plan(),
        CliCommand::Shutdown(args) => cmd::shutdown::plan(args)?,
    };
    Ok(Plan {
        socket: socket_path(cli.socket.as_deref(), ctx),
        json: cli.json,
        action,
    })
}

/// The socket to connect to: `--socket`, else `MAYFLY_SOCKET`, else
/// `$XDG_RUNTIME_DIR/mayfly/mayfly.sock`, else `/tmp/mayfly-$UID/mayfly.sock`
/// (DESIGN.md §1). An empty variable counts as unset.
pub fn socket_path(flag: Option<&Path>, ctx: &ClientContext) -> PathBuf {
    if let Some(path) = flag {
        return path.to_path_buf();
    }
    let set = |v: &Option<std::ffi::OsString>| v.clone().filter(|s| !s.is_empty());
    if let Some(path) = set(&ctx.socket_env) {
        return PathBuf::from(path);
    }
    if let Some(dir) = set(&ctx.xdg_runtime_dir) {
        return PathBuf::from(dir).join("mayfly").join("mayfly.sock");
    }
    PathBuf::from(format!("/tmp/mayfly-{}", ctx.uid)).join("mayfly.sock")
}

/// Parses one job id: a whole number from 1.
pub fn parse_id(text: &str) -> Result<JobId, UsageError> {
    match text.parse::<u64>() {
        Ok(n) if n >= 1 => Ok(JobId(n)),
        _ => Err(UsageError::BadId(text.to_string())),
    }
}

/// Parses a list of job ids, refusing the first bad one.
pub fn parse_ids(texts: &[String]) -> Result<Vec<JobId>, UsageError> {
    texts.iter().map(|t| parse_id(t)).collect()
}

/// Splits `KEY=VALUE` at the first `=`; the key must not be empty, the value may.
pub fn parse_key_value(flag: &'static str, text: &str) -> Result<(String, String), UsageError> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(UsageError::NotKeyValue {
            flag,
            value: text.to_string(),
        }),
    }
}

/// Parses a human duration (`500ms`, `30s`, `5m`, `1h 30m`) into milliseconds,
/// saturating at `u64::MAX`.
pub fn parse_duration_ms(flag: &'static str, text: &str) -> Result<u64, UsageError> {
    humantime::parse_duration(text)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .map_err(|e| UsageError::BadDuration {
            flag,
            value: text.to_string(),
            reason: e.to_string(),
        })
}

/// Converts an OS string to UTF-8, or explains which value is not.
pub fn utf8(value: &OsStr, what: impl Into<String>) -> Result<String, UsageError> {
    value
        .to_str()
        .map(str::to_string)
        .ok_or_else(|| UsageError::NotUtf8 {
            what: what.into(),
            lossy: value.to_string_lossy().into_owned(),
        })
}

/// Sets `key` in a `(key, value)` list: replaces the first entry with that
/// key in place (keeping its position), or appends.
pub fn upsert(list: &mut Vec<(String, String)>, key: String, value: String) {
    match list.iter_mut().find(|(k, _)| *k == key) {
        Some(entry) => entry.1 = value,
        None => list.push((key, value)),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::ffi::OsString;

    use clap::Parser;
    use mayfly_protocol::{Command, LogStream, Request, Timestamp};

    use super::*;

    /// A context as if run by uid 1000 in `/home/me/proj` with a tiny environment.
    pub(crate) fn ctx() -> ClientContext {
        ClientContext {
            cwd: Ok(PathBuf::from("/home/me/proj")),
            env: vec![
                ("PATH".into(), "/usr/bin:/bin".into()),
                ("HOME".into(), "/home/me".into()),
            ],
            socket_env: None,
            xdg_runtime_dir: Some("/run/user/1000".into()),
            uid: 1000,
            term_width: None,
            now: Timestamp(1_700_000_000_000),
        }
    }

    /// Parses a command line (without the program name) and plans it.
    fn plan_args(args: &[&str], ctx: &ClientContext) -> Result<Plan, UsageError> {
        let cli = Cli::try_parse_from(std::iter::once("mayflyctl").chain(args.iter().copied()))
            .expect("clap accepts the command line");
        plan(&cli, ctx)
    }

    /// The submit request a command line plans to, with default context.
    fn submit(args: &[&str]) -> Result<SubmitRequest, UsageError> {
        match plan_args(args, &ctx())?.action {
            Action::Submit { request, .. } => Ok(request),
            other => panic!("planned {other:?}"),
        }
    }

    #[test]
    /// Without `--shell` the words are an argv, run as is.
    fn submit_argv() {
        let req = submit(&["submit", "--", "ls", "-la", "my dir"]).expect("valid");
        assert_eq!(
            req.spec.command,
            Command::Argv(vec!["ls".into(), "-la".into(), "my dir".into()])
        );
    }

    #[test]
    /// Words after the first positional are the command's, flags included, even without `--`.
    fn submit_argv_without_double_dash() {
        let req = submit(&["submit", "grep", "-r", "--color", "x"]).expect("valid");
        assert_eq!(
            req.spec.command,
            Command::Argv(vec![
                "grep".into(),
                "-r".into(),
                "--color".into(),
                "x".into()
            ])
        );
    }

    #[test]
    /// With `--shell` the words are joined into one `sh -c` string.
    fn submit_shell() {
        let req = submit(&["submit", "--shell", "--", "echo hi | wc -c"]).expect("valid");
        assert_eq!(req.spec.command, Command::Shell("echo hi | wc -c".into()));
        let req = submit(&["submit", "--shell", "--", "echo", "a", "&&", "true"]).expect("valid");
        assert_eq!(req.spec.command, Command::Shell("echo a && true".into()));
    }

    #[test]
    /// The defaults: priority 50, queue `default`, caller's cwd and env, no labels.
    fn submit_defaults() {
        let req = submit(&["submit", "--", "true"]).expect("valid");
        assert_eq!(req.spec.priority, 50);
        assert_eq!(req.spec.queue, "default");
        assert_eq!(req.spec.cwd, "/home/me/proj");
        assert_eq!(req.spec.env, ctx().env);
        assert!(req.spec.labels.is_empty());
    }

    #[test]
    /// Priorities 1 and 99 are the bounds; 0, 100 and negatives are usage errors.
    fn submit_priority_bounds() {
        for ok in ["1", "99", "50", "7"] {
            let req = submit(&["submit", "--priority", ok, "--", "true"]).expect("valid");
            assert_eq!(req.spec.priority.to_string(), ok);
        }
        for bad in [0, 100, -1, 1000] {
            let text = bad.to_string();
            assert_eq!(
                submit(&["submit", "--priority", &text, "--", "true"]),
                Err(UsageError::PriorityOutOfRange(bad))
            );
        }
    }

    #[test]
    /// A non-numeric priority is clap's usage error.
    fn submit_priority_not_a_number() {
        let err = Cli::try_parse_from(["mayflyctl", "submit", "--priority", "high", "--", "true"])
            .expect_err("refused");
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    /// `--env` adds variables and overrides captured ones in place.
    fn submit_env_override() {
        let req = submit(&[
            "submit",
            "--env",
            "HOME=/tmp",
            "--env",
            "NEW=a=b",
            "--env",
            "EMPTY=",
            "--",
            "true",
        ])
        .expect("valid");
        assert_eq!(
            req.spec.env,
            vec![
                ("PATH".to_string(), "/usr/bin:/bin".to_string()),
                ("HOME".to_string(), "/tmp".to_string()),
                ("NEW".to_string(), "a=b".to_string()),
                ("EMPTY".to_string(), String::new()),
            ]
        );
    }

    #[test]
    /// `--env` without `=` or with an empty key is refused.
    fn submit_env_malformed() {
        for bad in ["NOEQUALS", "=value"] {
            assert_eq!(
                submit(&["submit", "--env", bad, "--", "true"]),
                Err(UsageError::NotKeyValue {
                    flag: "--env",
                    value: bad.into()
                })
            );
        }
    }

    #[test]
    /// Labels are parsed in order; a repeated key takes the last value.
    fn submit_labels() {
        let req = submit(&[
            "submit", "--label", "team=ops", "-l", "ci=yes", "--label", "team=dev", "--", "true",
        ])
        .expect("valid");
        assert_eq!(
            req.spec.labels,
            vec![
                ("team".to_string(), "dev".to_string()),
                ("ci".to_string(), "yes".to_string())
            ]
        );
        assert_eq!(
            submit(&["submit", "--label", "oops", "--", "true"]),
            Err(UsageError::NotKeyValue {
                flag: "--label",
                value: "oops".into()
            })
        );
    }

    #[test]
    /// A relative `--cwd` is resolved against the caller's directory; an absolute one is kept.
    fn submit_cwd_resolution() {
        let req = submit(&["submit", "--cwd", "sub/./dir", "--", "true"]).expect("valid");
        assert_eq!(req.spec.cwd, "/home/me/proj/sub/dir");
        let req = submit(&["submit", "--cwd", "../other", "--", "true"]).expect("valid");
        assert_eq!(req.spec.cwd, "/home/me/proj/../other");
        let req = submit(&["submit", "--cwd", "/srv/x/", "--", "true"]).expect("valid");
        assert_eq!(req.spec.cwd, "/srv/x");
    }

    #[test]
    /// A lost current directory only matters when it is needed.
    fn submit_without_cwd() {
        let mut ctx = ctx();
        ctx.cwd = Err("No such file or directory".into());
        let err = plan_args(&["submit", "--", "true"], &ctx).expect_err("needs a cwd");
        assert!(matches!(err, UsageError::NoCwd(_)));
        let ok = plan_args(&["submit", "--cwd", "/srv", "--", "true"], &ctx).expect("absolute");
        assert!(matches!(ok.action, Action::Submit { .. }));
        assert!(plan_args(&["status"], &ctx).is_ok());
    }

    #[test]
    /// No command, or an empty one, is a usage error.
    fn submit_missing_command() {
        assert_eq!(submit(&["submit"]), Err(UsageError::NoCommand));
        assert_eq!(submit(&["submit", "--"]), Err(UsageError::NoCommand));
        assert_eq!(
            submit(&["submit", "--shell", "--", "  "]),
            Err(UsageError::NoCommand)
        );
        assert_eq!(submit(&["submit", "--", ""]), Err(UsageError::NoCommand));
        assert_eq!(
            submit(&["submit", "--queue", "", "--", "true"]),
            Err(UsageError::EmptyQueue)
        );
    }

    #[test]
    /// Non-UTF-8 arguments and directories are clear usage errors.
    fn submit_non_utf8() {
        use std::os::unix::ffi::OsStringExt;
        let bad = OsString::from_vec(vec![b'a', 0xFF, b'b']);
        let cli = Cli::try_parse_from([
            OsString::from("mayflyctl"),
            "submit".into(),
            "--".into(),
            "echo".into(),
            bad.clone(),
        ])
        .expect("clap accepts OS strings");
        let err = plan(&cli, &ctx()).expect_err("refused");
        assert!(matches!(err, UsageError::NotUtf8 { .. }), "{err:?}");
        assert!(err.to_string().contains("a\u{FFFD}b"), "{err}");

        let cli = Cli::try_parse_from([
            OsString::from("mayflyctl"),
            "submit".into(),
            "--cwd".into(),
            bad,
            "--".into(),
            "true".into(),
        ])
        .expect("clap accepts OS strings");
        let err = plan(&cli, &ctx()).expect_err("refused");
        assert!(err.to_string().contains("working directory"), "{err}");
    }

    #[test]
    /// Queue, `--wait` and the rest reach the request.
    fn submit_queue_and_wait() {
        let plan = plan_args(&["submit", "-q", "gpu", "--wait", "--", "x"], &ctx()).expect("ok");
        match plan.action {
            Action::Submit { request, wait } => {
                assert!(wait);
                assert_eq!(request.spec.queue, "gpu");
            }
            other => panic!("planned {other:?}"),
        }
    }

    #[test]
    /// `--socket` beats `MAYFLY_SOCKET` beats `XDG_RUNTIME_DIR` beats `/tmp/mayfly-UID`.
    fn socket_precedence() {
        let mut ctx = ctx();
        ctx.socket_env = Some("/env/sock".into());
        assert_eq!(
            socket_path(Some(Path::new("/flag/sock")), &ctx),
            Path::new("/flag/sock")
        );
        assert_eq!(socket_path(None, &ctx), Path::new("/env/sock"));
        ctx.socket_env = None;
        assert_eq!(
            socket_path(None, &ctx),
            Path::new("/run/user/1000/mayfly/mayfly.sock")
        );
        ctx.xdg_runtime_dir = None;
        assert_eq!(
            socket_path(None, &ctx),
            Path::new("/tmp/mayfly-1000/mayfly.sock")
        );
        // Empty variables count as unset.
        ctx.socket_env = Some(OsString::new());
        ctx.xdg_runtime_dir = Some(OsString::new());
        assert_eq!(
            socket_path(None, &ctx),
            Path::new("/tmp/mayfly-1000/mayfly.sock")
        );
    }

    #[test]
    /// The global flags work before and after the subcommand.
    fn global_flags_anywhere() {
        let p = plan_args(&["status", "--json", "--socket", "/s"], &ctx()).expect("ok");
        assert!(p.json);
        assert_eq!(p.socket, Path::new("/s"));
        let p = plan_args(&["--json", "--socket", "/s", "status"], &ctx()).expect("ok");
        assert!(p.json);
        assert_eq!(p.socket, Path::new("/s"));
    }

    #[test]
    /// Status ids: none means all; bad ones are refused.
    fn status_ids() {
        let p = plan_args(&["status"], &ctx()).expect("ok");
        assert_eq!(p.action, Action::Status(StatusRequest { ids: vec![] }));
        let p = plan_args(&["status", "3", "12"], &ctx()).expect("ok");
        assert_eq!(
            p.action,
            Action::Status(StatusRequest {
                ids: vec![JobId(3), JobId(12)]
            })
        );
        for bad in ["0", "abc", "-1", "1.5", "", "18446744073709551616"] {
            let cli = Cli::try_parse_from(["mayflyctl", "status", "--", bad]).expect("clap ok");
            assert_eq!(
                plan(&cli, &ctx()),
                Err(UsageError::BadId(bad.to_string())),
                "{bad:?}"
            );
        }
    }

    #[test]
    /// Cancel and wait need at least one id (clap's usage error).
    fn ids_required() {
        for cmd in ["cancel", "wait"] {
            let err = Cli::try_parse_from(["mayflyctl", cmd]).expect_err("needs ids");
            assert_eq!(err.exit_code(), 2);
        }
        let p = plan_args(&["cancel", "1", "2"], &ctx()).expect("ok");
        assert_eq!(
            p.action,
            Action::Cancel(CancelRequest {
                ids: vec![JobId(1), JobId(2)]
            })
        );
        let p = plan_args(&["wait", "-q", "5"], &ctx()).expect("ok");
        assert_eq!(
            p.action,
            Action::Wait {
                request: WaitRequest {
                    ids: vec![JobId(5)]
                },
                quiet: true
            }
        );
    }

    #[test]
    /// Logs picks the stream and follow mode.
    fn logs_request() {
        let p = plan_args(&["logs", "--follow", "--stderr", "9"], &ctx()).expect("ok");
        assert_eq!(
            p.action,
            Action::Logs(LogsRequest {
                id: JobId(9),
                stream: LogStream::Stderr,
                follow: true
            })
        );
        let p = plan_args(&["logs", "9"], &ctx()).expect("ok");
        assert_eq!(
            Request::from(match p.action {
                Action::Logs(l) => l,
                other => panic!("planned {other:?}"),
            }),
            Request::Logs(LogsRequest {
                id: JobId(9),
                stream: LogStream::Stdout,
                follow: false
            })
        );
    }

    #[test]
    /// Shutdown timeouts are human durations; bad ones are usage errors.
    fn shutdown_timeout() {
        let p = plan_args(&["shutdown"], &ctx()).expect("ok");
        assert_eq!(
            p.action,
            Action::Shutdown(ShutdownRequest { timeout_ms: None })
        );
        for (text, ms) in [
            ("500ms", 500),
            ("30s", 30_000),
            ("5m", 300_000),
            ("1h 1s", 3_601_000),
        ] {
            let p = plan_args(&["shutdown", "--timeout", text], &ctx()).expect("ok");
            assert_eq!(
                p.action,
                Action::Shutdown(ShutdownRequest {
                    timeout_ms: Some(ms)
                })
            );
        }
        for bad in ["soon", "30", "5 parsecs", ""] {
            let err = plan_args(&["shutdown", "--timeout", bad], &ctx()).expect_err("refused");
            assert!(
                matches!(&err, UsageError::BadDuration { value, .. } if value == bad),
                "{err:?}"
            );
            assert!(err.to_string().contains("30s"), "{err}");
        }
    }

    #[test]
    /// Dump-state needs nothing.
    fn dump_state() {
        let p = plan_args(&["dump-state"], &ctx()).expect("ok");
        assert_eq!(p.action, Action::DumpState);
    }

    #[test]
    /// The clap definition is internally consistent (clap's own debug checks).
    fn clap_definition_is_valid() {
        crate::command().debug_assert();
    }
}
