//! The second stage of argument handling: raw clap arguments plus the
//! caller's context become a validated [`Plan`] — which socket to talk to and
//! exactly which protocol request to send.
//!
//! [`plan`] is a pure function: it reads nothing from the process (the
//! context — environment, clock, time zone, standard input — was gathered
//! once by [`crate::ClientContext::from_process`]), so every rule about
//! arguments is unit-tested here without a daemon. Command specific
//! conversions live with their command in [`crate::cmd`]; the value parsers
//! they share (ids, `KEY=VALUE`, durations, times, states) live here.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mayfly_protocol::{
    CancelRequest, CleanRequest, EventsRequest, JobId, JobState, LogsRequest, PauseRequest,
    ProgressRequest, QueueRemoveRequest, QueueSetRequest, RestartRequest, ShutdownRequest,
    StatusRequest, SubmitBatchRequest, SubmitRequest, Timestamp, WaitRequest,
};

use crate::cli::{Cli, CliCommand, QueueCommand};
use crate::cmd;
use crate::cmd::edit::EditPlan;
use crate::cmd::status::StatusFilter;
use crate::context::ClientContext;
use crate::error::UsageError;

/// Everything a run needs, validated: where to connect and what to ask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The daemon's socket, resolved by [`socket_path`].
    pub socket: PathBuf,
    /// How long to wait for the daemon ([`daemon_timeout`]); `None` waits
    /// as long as it takes.
    pub timeout: Option<Duration>,
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
    /// Queue the jobs read from standard input, in one request.
    SubmitBatch {
        /// The jobs, in input order.
        request: SubmitBatchRequest,
        /// The input line each job came from (for `--json` output).
        lines: Vec<usize>,
        /// Wait for all of them after printing their ids.
        wait: bool,
    },
    /// Show jobs.
    Status {
        /// Which jobs to ask the daemon for.
        request: StatusRequest,
        /// Which of the answered jobs to show.
        filter: StatusFilter,
        /// Add the CPU and memory columns to the table (`--usage`).
        usage: bool,
    },
    /// Cancel jobs.
    Cancel(CancelRequest),
    /// Wait for jobs.
    Wait {
        /// The jobs.
        request: WaitRequest,
        /// Print no line per job.
        quiet: bool,
    },
    /// Print a job's output.
    Logs(LogsRequest),
    /// Read the activity log.
    Events(EventsRequest),
    /// Print a snapshot of the daemon's state.
    DumpState,
    /// Shut the daemon down.
    Shutdown(ShutdownRequest),
    /// Create a queue or change its limit.
    QueueSet(QueueSetRequest),
    /// Remove a queue.
    QueueRemove(QueueRemoveRequest),
    /// List the queues.
    QueueList,
    /// Pause or resume queues.
    Pause(PauseRequest),
    /// Queue copies of finished jobs.
    Restart(RestartRequest),
    /// Forget finished jobs.
    Clean(CleanRequest),
    /// Change a job that has not started.
    Edit(EditPlan),
    /// Report a job's progress.
    Progress(ProgressRequest),
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
        CliCommand::Queue(args) => match &args.action {
            QueueCommand::Add(a) => cmd::queue::plan_add(a)?,
            QueueCommand::Set(a) => cmd::queue::plan_set(a)?,
            QueueCommand::Rm(a) => cmd::queue::plan_remove(a),
            QueueCommand::List => cmd::queue::plan_list(),
        },
        CliCommand::Pause(args) => cmd::pause::plan(args, true)?,
        CliCommand::Resume(args) => cmd::pause::plan(args, false)?,
        CliCommand::Restart(args) => cmd::restart::plan(args)?,
        CliCommand::Clean(args) => cmd::clean::plan(args)?,
        CliCommand::Edit(args) => cmd::edit::plan(args)?,
        CliCommand::Progress(args) => cmd::progress::plan(args, ctx)?,
    };
    Ok(Plan {
        socket: socket_path(cli.socket.as_deref(), ctx),
        timeout: daemon_timeout(cli.daemon_timeout.as_deref(), ctx)?,
        json: cli.json,
        action,
    })
}

/// How long `mayflyctl` waits for the daemon when neither
/// `--daemon-timeout` nor `MAYFLY_DAEMON_TIMEOUT` says: long enough for a
/// busy daemon and a slow disk, short enough that a stopped daemon does not
/// hang a script for good.
pub const DEFAULT_DAEMON_TIMEOUT: Duration = Duration::from_secs(30);

/// How long to wait for the daemon: `--daemon-timeout`, else
/// `MAYFLY_DAEMON_TIMEOUT` (an empty one counts as unset), else
/// [`DEFAULT_DAEMON_TIMEOUT`]; `off` is `None`, no limit.
pub fn daemon_timeout(
    flag: Option<&str>,
    ctx: &ClientContext,
) -> Result<Option<Duration>, UsageError> {
    let (name, text) = match (flag, ctx.daemon_timeout_env.as_deref()) {
        (Some(text), _) => ("--daemon-timeout", text),
        (None, Some(text)) if !text.is_empty() => ("MAYFLY_DAEMON_TIMEOUT", text),
        _ => return Ok(Some(DEFAULT_DAEMON_TIMEOUT)),
    };
    if text.trim().eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let bad = |reason: String| UsageError::BadDaemonTimeout {
        name,
        value: text.to_string(),
        reason,
    };
    match humantime::parse_duration(text) {
        Ok(d) if d.is_zero() => Err(bad("it must be longer than 0".to_string())),
        Ok(d) => Ok(Some(d)),
        Err(e) => Err(bad(e.to_string())),
    }
}

/// The socket to connect to: `--socket`, else `MAYFLY_SOCKET`, else
/// `$XDG_RUNTIME_DIR/mayfly/mayfly.sock`, else `/tmp/mayfly-$UID/mayfly.sock`
/// (`docs/security.md`, "The socket's folder"). An empty variable counts as
/// unset.
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

/// Parses a priority: 1 (runs first) to 99 (runs last).
pub fn parse_priority(value: i64) -> Result<u8, UsageError> {
    u8::try_from(value)
        .ok()
        .filter(|p| {
            (mayfly_protocol::MIN_USER_PRIORITY..=mayfly_protocol::MAX_USER_PRIORITY).contains(p)
        })
        .ok_or(UsageError::PriorityOutOfRange(value))
}

/// Parses a job state by its contract name (`timed_out`; `timed-out` and
/// upper case are accepted too).
pub fn parse_state(text: &str) -> Result<JobState, UsageError> {
    JobState::parse(&text.trim().to_ascii_lowercase().replace('-', "_"))
        .ok_or_else(|| UsageError::BadState(text.to_string()))
}

/// Parses a timeout: a human duration that is not zero.
pub fn parse_timeout_ms(flag: &'static str, text: &str) -> Result<u64, UsageError> {
    match parse_duration_ms(flag, text)? {
        0 => Err(UsageError::ZeroTimeout),
        ms => Ok(ms),
    }
}

/// Parses the time of `--at`, relative to the context's clock and time zone:
///
/// - `HH:MM` or `HH:MM:SS`: that local time today, or tomorrow if it has
///   already passed (so `--at 02:00` at 23:00 means the coming night);
/// - otherwise RFC 3339 with an offset, e.g. `2030-01-01T09:00:00Z` or
///   `2030-01-01T09:00:00+02:00`. A time in the past is allowed: the job
///   may start at once.
pub fn parse_at(
    flag: &'static str,
    text: &str,
    ctx: &ClientContext,
) -> Result<Timestamp, UsageError> {
    let bad = |reason: String| UsageError::BadTime {
        flag,
        value: text.to_string(),
        reason,
    };
    let trimmed = text.trim();
    let at = match parse_clock(trimmed) {
        Some(clock) => {
            let time = clock.map_err(bad)?;
            let now =
                jiff::Timestamp::from_millisecond(i64::try_from(ctx.now.0).unwrap_or(i64::MAX))
                    .map_err(|e| bad(e.to_string()))?;
            let tz = &ctx.time_zone;
            let today = now.to_zoned(tz.clone()).date();
            let on = |date: jiff::civil::Date| {
                tz.to_timestamp(date.to_datetime(time))
                    .map_err(|e| bad(e.to_string()))
            };
            let at = on(today)?;
            if at < now {
                on(today.tomorrow().map_err(|e| bad(e.to_string()))?)?
            } else {
                at
            }
        }
        None => trimmed
            .parse::<jiff::Timestamp>()
            .map_err(|e| bad(e.to_string()))?,
    };
    u64::try_from(at.as_millisecond())
        .map(Timestamp)
        .map_err(|_| bad("it is before 1970".into()))
}

/// Reads `HH:MM` or `HH:MM:SS`: `None` when `text` does not have that
/// shape, `Some(Err)` when it does but is not a time of day (`25:00`).
fn parse_clock(text: &str) -> Option<Result<jiff::civil::Time, String>> {
    let parts: Vec<&str> = text.split(':').collect();
    let numeric = |p: &&str| (1..=2).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit());
    if !(2..=3).contains(&parts.len()) || !parts.iter().all(numeric) || parts[1].len() != 2 {
        return None;
    }
    let field = |i: usize| parts.get(i).map_or(Ok(0), |p| p.parse::<i8>());
    Some(match (field(0), field(1), field(2)) {
        (Ok(h), Ok(m), Ok(s)) => jiff::civil::Time::new(h, m, s, 0)
            .map_err(|_| format!("{text} is not a time of day (00:00 to 23:59)")),
        _ => Err(format!("{text} is not a time of day (00:00 to 23:59)")),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use std::ffi::OsString;

    use clap::Parser;
    use mayfly_protocol::{
        Command, DepRef, Dependency, EditRequest, LogStream, Request, Timestamp,
    };

    use crate::cmd::edit::LabelEdit;

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
            daemon_timeout_env: None,
            xdg_runtime_dir: Some("/run/user/1000".into()),
            job_id_env: None,
            uid: 1000,
            term_width: None,
            color: false,
            stderr_tty: false,
            // 2023-11-14T22:13:20Z
            now: Timestamp(1_700_000_000_000),
            time_zone: jiff::tz::TimeZone::UTC,
            stdin: None,
        }
    }

    #[test]
    fn the_daemon_timeout_comes_from_the_flag_then_the_environment() {
        let plain = ctx();
        let from_env = ClientContext {
            daemon_timeout_env: Some("5s".into()),
            ..ctx()
        };
        let plan_of = |args: &[&str], c: &ClientContext| plan_args(args, c).map(|p| p.timeout);
        assert_eq!(
            plan_of(&["status"], &plain),
            Ok(Some(DEFAULT_DAEMON_TIMEOUT))
        );
        assert_eq!(
            plan_of(&["status"], &from_env),
            Ok(Some(Duration::from_secs(5)))
        );
        assert_eq!(
            plan_of(&["--daemon-timeout", "2m", "status"], &from_env),
            Ok(Some(Duration::from_secs(120)))
        );
        assert_eq!(
            plan_of(&["status", "--daemon-timeout", "off"], &plain),
            Ok(None)
        );
        let empty = ClientContext {
            daemon_timeout_env: Some(String::new()),
            ..ctx()
        };
        assert_eq!(
            plan_of(&["status"], &empty),
            Ok(Some(DEFAULT_DAEMON_TIMEOUT))
        );
        let err = plan_of(&["--daemon-timeout", "soon", "status"], &plain).unwrap_err();
        assert!(err.to_string().contains("--daemon-timeout 'soon'"), "{err}");
        let bad_env = ClientContext {
            daemon_timeout_env: Some("0s".into()),
            ..ctx()
        };
        let err = plan_of(&["status"], &bad_env).unwrap_err();
        assert!(
            err.to_string().contains("MAYFLY_DAEMON_TIMEOUT '0s'"),
            "{err}"
        );
        assert!(err.to_string().contains("or off"), "{err}");
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
            Command::Argv(
                vec!["ls".into(), "-la".into(), "my dir".into()]
                    .try_into()
                    .expect("a program")
            )
        );
    }

    #[test]
    /// Words after the first positional are the command's, flags included, even without `--`.
    fn submit_argv_without_double_dash() {
        let req = submit(&["submit", "grep", "-r", "--color", "x"]).expect("valid");
        assert_eq!(
            req.spec.command,
            Command::Argv(
                vec!["grep".into(), "-r".into(), "--color".into(), "x".into()]
                    .try_into()
                    .expect("a program")
            )
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
        assert_eq!(
            p.action,
            Action::Status {
                request: StatusRequest { ids: vec![] },
                filter: StatusFilter::default(),
                usage: false,
            }
        );
        let p = plan_args(&["status", "3", "12"], &ctx()).expect("ok");
        assert_eq!(
            p.action,
            Action::Status {
                request: StatusRequest {
                    ids: vec![JobId(3), JobId(12)]
                },
                filter: StatusFilter::default(),
                usage: false,
            }
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

    /// The action a command line plans to, with default context.
    fn action(args: &[&str]) -> Result<Action, UsageError> {
        plan_args(args, &ctx()).map(|p| p.action)
    }

    /// A dependency on job `id`.
    fn dep(id: u64, any_outcome: bool) -> Dependency {
        Dependency {
            on: DepRef::Job(JobId(id)),
            any_outcome,
        }
    }

    #[test]
    /// `--after` and `--after-any`: repeatable and comma-separated, in order.
    fn submit_after() {
        let req = submit(&[
            "submit",
            "--after",
            "3,4",
            "--after",
            "7",
            "--after-any",
            "9",
            "--",
            "true",
        ])
        .expect("valid");
        assert_eq!(
            req.spec.after,
            vec![dep(3, false), dep(4, false), dep(7, false), dep(9, true)]
        );
        assert_eq!(
            submit(&["submit", "--after", "3,x", "--", "true"]),
            Err(UsageError::BadId("x".into()))
        );
        assert_eq!(
            submit(&["submit", "--after-any", "0", "--", "true"]),
            Err(UsageError::BadId("0".into()))
        );
        assert!(
            submit(&["submit", "--", "true"])
                .expect("valid")
                .spec
                .after
                .is_empty()
        );
        // One id per flag: the words after it are the command, even without `--`.
        let req = submit(&["submit", "--after", "3", "make", "test"]).expect("valid");
        assert_eq!(req.spec.after, vec![dep(3, false)]);
        assert_eq!(
            req.spec.command,
            Command::Argv(
                vec!["make".into(), "test".into()]
                    .try_into()
                    .expect("a program")
            )
        );
    }

    #[test]
    /// `--delay D` means not before now + D; `--delay` with `--at` is clap's usage error.
    fn submit_delay() {
        let req = submit(&["submit", "--delay", "5m", "--", "true"]).expect("valid");
        assert_eq!(req.spec.not_before, Some(Timestamp(1_700_000_300_000)));
        let req = submit(&["submit", "--delay", "0s", "--", "true"]).expect("valid");
        assert_eq!(req.spec.not_before, Some(Timestamp(1_700_000_000_000)));
        assert!(matches!(
            submit(&["submit", "--delay", "soon", "--", "true"]),
            Err(UsageError::BadDuration {
                flag: "--delay",
                ..
            })
        ));
        let err = Cli::try_parse_from([
            "mayflyctl",
            "submit",
            "--delay",
            "5s",
            "--at",
            "10:00",
            "--",
            "true",
        ])
        .expect_err("conflict");
        assert_eq!(err.exit_code(), 2);
        assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict);
    }

    #[test]
    /// `--at HH:MM` is today at that local time, or tomorrow once it has passed.
    fn submit_at_clock_time() {
        // The context's now is 2023-11-14T22:13:20Z, i.e. 00:13:20 on the 15th at +02:00.
        let mut ctx = ctx();
        ctx.time_zone = jiff::tz::TimeZone::fixed(jiff::tz::offset(2));
        let at = |text: &str| parse_at("--at", text, &ctx).map(|t| t.0);
        // 00:30 on the 15th (+02:00) = 22:30Z on the 14th: later today.
        assert_eq!(at("00:30"), Ok(1_700_000_000_000 + 16 * 60_000 + 40_000));
        assert_eq!(at("0:30:00"), at("00:30"));
        // 00:10 has passed: 00:10 on the 16th = 22:10Z on the 15th.
        assert_eq!(
            at("00:10"),
            Ok(1_700_000_000_000 + 86_400_000 - 3 * 60_000 - 20_000)
        );
        // 23:59 later on the 15th.
        assert_eq!(
            at("23:59"),
            Ok(1_700_000_000_000 + 23 * 3_600_000 + 45 * 60_000 + 40_000)
        );
        // The same wall-clock time in UTC is a different instant.
        assert_eq!(
            parse_at("--at", "23:00", &super::tests::ctx()).map(|t| t.0),
            Ok(1_700_000_000_000 + 46 * 60_000 + 40_000)
        );
        let req = plan_args(&["submit", "--at", "00:30", "--", "true"], &ctx).expect("valid");
        match req.action {
            Action::Submit { request, .. } => {
                assert_eq!(request.spec.not_before, Some(Timestamp(1_700_001_000_000)));
            }
            other => panic!("planned {other:?}"),
        }
    }

    #[test]
    /// Tomorrow is a calendar day in the local zone, across a change to summer time.
    fn submit_at_across_dst() {
        let mut ctx = ctx();
        ctx.time_zone =
            jiff::tz::TimeZone::posix("CET-1CEST,M3.5.0,M10.5.0/3").expect("a POSIX zone");
        // Saturday 2024-03-30 12:00Z = 13:00 CET; summer time starts that night.
        ctx.now = Timestamp(1_711_800_000_000);
        // 11:00 has passed: Sunday 11:00 CEST = 09:00Z, 21 hours on, not 23.
        assert_eq!(
            parse_at("--at", "11:00", &ctx).map(|t| t.0),
            Ok(1_711_800_000_000 + 21 * 3_600_000)
        );
    }

    #[test]
    /// `--at` also takes RFC 3339; anything else is a usage error that teaches.
    fn submit_at_rfc3339_and_errors() {
        let at = |text: &str| parse_at("--at", text, &ctx()).map(|t| t.0);
        assert_eq!(at("2030-01-01T00:00:00Z"), Ok(1_893_456_000_000));
        assert_eq!(at("2030-01-01T02:00:00+02:00"), Ok(1_893_456_000_000));
        assert_eq!(at("2000-01-01T00:00:00Z"), Ok(946_684_800_000));
        for bad in [
            "25:00",
            "12:60",
            "noon",
            "12",
            "2030-01-01",
            "1969-01-01T00:00:00Z",
            "",
        ] {
            let err = at(bad).expect_err(bad);
            assert!(
                matches!(&err, UsageError::BadTime { value, .. } if value == bad),
                "{bad}: {err:?}"
            );
            assert!(err.to_string().contains("14:30"), "{err}");
            assert!(!err.to_string().contains('\n'), "{err}");
        }
    }

    #[test]
    /// Timeout, retries and retry delay reach the spec; a zero timeout is refused.
    fn submit_timeout_and_retries() {
        let req = submit(&[
            "submit",
            "--timeout",
            "30s",
            "--retries",
            "3",
            "--retry-delay",
            "250ms",
            "--",
            "true",
        ])
        .expect("valid");
        assert_eq!(req.spec.timeout_ms, Some(30_000));
        assert_eq!(req.spec.retries, 3);
        assert_eq!(req.spec.retry_delay_ms, 250);
        let req = submit(&["submit", "--", "true"]).expect("valid");
        assert_eq!(
            (
                req.spec.timeout_ms,
                req.spec.retries,
                req.spec.retry_delay_ms
            ),
            (None, 0, 1_000)
        );
        assert_eq!(
            submit(&["submit", "--timeout", "0s", "--", "true"]),
            Err(UsageError::ZeroTimeout)
        );
        let err = Cli::try_parse_from(["mayflyctl", "submit", "--retries", "-1", "--", "x"])
            .expect_err("not a count");
        assert_eq!(err.exit_code(), 2);
    }

    /// A context whose standard input holds `text`.
    fn with_stdin(text: &str) -> ClientContext {
        let mut ctx = ctx();
        ctx.stdin = Some(Ok(text.to_string()));
        ctx
    }

    #[test]
    /// `--stdin`: one shell job per line, every flag applied to each, in one batch.
    fn submit_stdin_batch() {
        let ctx = with_stdin(
            "echo a

# skip me
echo b | wc -c
",
        );
        let p = plan_args(
            &[
                "submit",
                "--stdin",
                "-q",
                "ci",
                "--after",
                "4",
                "--retries",
                "1",
                "--wait",
            ],
            &ctx,
        )
        .expect("valid");
        let Action::SubmitBatch {
            request,
            lines,
            wait,
        } = p.action
        else {
            panic!("planned {:?}", p.action);
        };
        assert!(wait);
        assert_eq!(lines, vec![1, 4]);
        assert_eq!(request.specs.len(), 2);
        assert_eq!(
            request.specs[1].command,
            Command::Shell("echo b | wc -c".into())
        );
        for spec in &request.specs {
            assert_eq!(spec.queue, "ci");
            assert_eq!(spec.retries, 1);
            assert_eq!(spec.after, vec![dep(4, false)]);
            assert_eq!(spec.cwd, "/home/me/proj");
        }
        assert_eq!(
            plan_args(
                &["submit", "--stdin"],
                &with_stdin(
                    "
# nothing
"
                )
            )
            .map(|p| p.action),
            Err(UsageError::EmptyBatch)
        );
        let mut unreadable = ctx.clone();
        unreadable.stdin = Some(Err("standard input is not valid UTF-8 (byte 3)".into()));
        assert!(matches!(
            plan_args(&["submit", "--stdin"], &unreadable),
            Err(UsageError::Stdin(_))
        ));
        // A command and --stdin together: clap's usage error.
        let err = Cli::try_parse_from(["mayflyctl", "submit", "--stdin", "--", "true"])
            .expect_err("conflict");
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    /// `--json-input`: `after_lines` names earlier lines; a forward reference is refused.
    fn submit_json_input_batch() {
        let ctx = with_stdin(
            "{\"command\": [\"make\"]}\n{\"command\": \"make test\", \"after_lines\": [1]}\n",
        );
        let p = plan_args(&["submit", "--json-input"], &ctx).expect("valid");
        let Action::SubmitBatch { request, lines, .. } = p.action else {
            panic!("planned {:?}", p.action);
        };
        assert_eq!(lines, vec![1, 2]);
        assert_eq!(
            request.specs[1].after,
            vec![Dependency {
                on: DepRef::BatchLine(1),
                any_outcome: false
            }]
        );
        let forward =
            with_stdin("{\"command\": \"a\", \"after_lines\": [2]}\n{\"command\": \"b\"}\n");
        let err = plan_args(&["submit", "--json-input"], &forward).expect_err("forward");
        assert!(matches!(err, UsageError::BadLine { line: 1, .. }), "{err}");
        let err = Cli::try_parse_from(["mayflyctl", "submit", "--json-input", "--shell"])
            .expect_err("conflict");
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    /// Status filters: states are checked, labels are KEY=VALUE.
    fn status_filters() {
        let p = action(&[
            "status",
            "--queue",
            "gpu",
            "--state",
            "running,timed-out",
            "-s",
            "FAILED",
            "--label",
            "team=ml",
        ])
        .expect("valid");
        assert_eq!(
            p,
            Action::Status {
                request: StatusRequest { ids: vec![] },
                filter: StatusFilter {
                    queues: vec!["gpu".into()],
                    states: vec![JobState::Running, JobState::TimedOut, JobState::Failed],
                    labels: vec![("team".into(), "ml".into())],
                },
                usage: false,
            }
        );
        assert_eq!(
            action(&["status", "--state", "done"]),
            Err(UsageError::BadState("done".into()))
        );
        assert!(matches!(
            action(&["status", "--label", "team"]),
            Err(UsageError::NotKeyValue { .. })
        ));
    }

    #[test]
    /// Queue add/set/rm/list, and their refusals.
    fn queue_commands() {
        assert_eq!(
            action(&["queue", "add", "gpu", "--concurrency", "2"]),
            Ok(Action::QueueSet(QueueSetRequest {
                name: "gpu".into(),
                concurrency: Some(Some(2)),
                create: true,
                executor: None,
            }))
        );
        assert_eq!(
            action(&["queue", "add", "io"]),
            Ok(Action::QueueSet(QueueSetRequest {
                name: "io".into(),
                concurrency: Some(None),
                create: true,
                executor: None,
            }))
        );
        assert_eq!(
            action(&["queue", "set", "gpu", "--unlimited"]),
            Ok(Action::QueueSet(QueueSetRequest {
                name: "gpu".into(),
                concurrency: Some(None),
                create: false,
                executor: None,
            }))
        );
        assert_eq!(
            action(&["queue", "set", "gpu", "-c", "3"]),
            Ok(Action::QueueSet(QueueSetRequest {
                name: "gpu".into(),
                concurrency: Some(Some(3)),
                create: false,
                executor: None,
            }))
        );
        assert_eq!(
            action(&[
                "queue",
                "add",
                "hpc",
                "--executor",
                "slurm",
                "--slurm-partition",
                "debug",
                "--slurm-arg=--mem=2G",
            ]),
            Ok(Action::QueueSet(QueueSetRequest {
                name: "hpc".into(),
                concurrency: Some(None),
                create: true,
                executor: Some(mayfly_protocol::ExecutorSpec::Slurm {
                    partition: Some("debug".into()),
                    args: vec!["--mem=2G".into()],
                }),
            }))
        );
        assert_eq!(
            action(&["queue", "set", "hpc", "--executor", "local"]),
            Ok(Action::QueueSet(QueueSetRequest {
                name: "hpc".into(),
                concurrency: None,
                create: false,
                executor: Some(mayfly_protocol::ExecutorSpec::Local),
            }))
        );
        assert_eq!(
            action(&["queue", "add", "x", "--slurm-partition", "p"]),
            Err(UsageError::ExecutorSetting {
                flag: "--slurm-partition",
                kind: "slurm"
            })
        );
        assert_eq!(
            action(&["queue", "add", "x", "--executor", "a2a"]),
            Err(UsageError::A2aUrlMissing)
        );
        assert_eq!(
            action(&[
                "queue",
                "add",
                "x",
                "--executor",
                "a2a",
                "--a2a-url",
                "http://h:1/",
                "--a2a-token-file",
                "tok"
            ]),
            Err(UsageError::RelativeTokenFile("tok".into()))
        );
        assert_eq!(
            action(&["queue", "add", "gpu", "--concurrency", "0"]),
            Err(UsageError::ZeroConcurrency)
        );
        assert_eq!(
            action(&["queue", "rm", "gpu"]),
            Ok(Action::QueueRemove(QueueRemoveRequest {
                name: "gpu".into()
            }))
        );
        assert_eq!(action(&["queue", "list"]), Ok(Action::QueueList));
        assert_eq!(action(&["queue", "ls"]), Ok(Action::QueueList));
        for bad in [
            &["mayflyctl", "queue", "set", "gpu"][..],
            &["mayflyctl", "queue", "set", "gpu", "--unlimited", "-c", "2"],
            &["mayflyctl", "queue", "add"],
            &["mayflyctl", "queue", "add", "gpu", "-c", "many"],
        ] {
            let err = Cli::try_parse_from(bad).expect_err("usage error");
            assert_eq!(err.exit_code(), 2, "{bad:?}");
        }
    }

    #[test]
    /// Pause and resume need queues or --all; --running is passed on.
    fn pause_and_resume() {
        assert_eq!(
            action(&["pause", "gpu", "io"]),
            Ok(Action::Pause(PauseRequest {
                queues: vec!["gpu".into(), "io".into()],
                paused: true,
                running: false
            }))
        );
        assert_eq!(
            action(&["resume", "--all", "--running"]),
            Ok(Action::Pause(PauseRequest {
                queues: vec![],
                paused: false,
                running: true
            }))
        );
        let err = action(&["pause"]).expect_err("no queues");
        assert_eq!(err, UsageError::NoQueues("pause"));
        assert!(err.to_string().contains("--all"), "{err}");
        assert_eq!(
            action(&["resume", "--running"]),
            Err(UsageError::NoQueues("resume"))
        );
        let err = Cli::try_parse_from(["mayflyctl", "pause", "--all", "gpu"]).expect_err("both");
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    /// Restart takes ids; clean takes finished states and an age.
    fn restart_and_clean() {
        assert_eq!(
            action(&["restart", "4", "5"]),
            Ok(Action::Restart(RestartRequest {
                ids: vec![JobId(4), JobId(5)]
            }))
        );
        assert_eq!(
            action(&["restart", "x"]),
            Err(UsageError::BadId("x".into()))
        );
        assert_eq!(
            action(&["clean"]),
            Ok(Action::Clean(CleanRequest {
                states: vec![],
                older_than_ms: None
            }))
        );
        assert_eq!(
            action(&[
                "clean",
                "--state",
                "succeeded,failed",
                "--state",
                "failed",
                "--older-than",
                "1h"
            ]),
            Ok(Action::Clean(CleanRequest {
                states: vec![JobState::Succeeded, JobState::Failed],
                older_than_ms: Some(3_600_000)
            }))
        );
        assert_eq!(
            action(&["clean", "--state", "running"]),
            Err(UsageError::NotFinishedState("running".into()))
        );
        assert_eq!(
            action(&["clean", "--state", "finished"]),
            Err(UsageError::BadState("finished".into()))
        );
        assert!(matches!(
            action(&["clean", "--older-than", "old"]),
            Err(UsageError::BadDuration {
                flag: "--older-than",
                ..
            })
        ));
    }

    #[test]
    /// Edit needs at least one change; labels merge unless cleared.
    fn edit_changes() {
        let Ok(Action::Edit(e)) = action(&["edit", "7", "--priority", "5", "--queue", "gpu"])
        else {
            panic!("an edit");
        };
        assert_eq!(
            e.request(&[]),
            EditRequest {
                id: JobId(7),
                priority: Some(5),
                queue: Some("gpu".into()),
                labels: None
            }
        );
        let Ok(Action::Edit(e)) = action(&["edit", "7", "--label", "a=1", "-l", "b=2"]) else {
            panic!("an edit");
        };
        assert_eq!(
            e.labels,
            LabelEdit::Merge(vec![("a".into(), "1".into()), ("b".into(), "2".into())])
        );
        let Ok(Action::Edit(e)) = action(&["edit", "7", "--clear-labels"]) else {
            panic!("an edit");
        };
        assert_eq!(e.labels, LabelEdit::Replace(vec![]));
        assert_eq!(action(&["edit", "7"]), Err(UsageError::NothingToEdit));
        assert_eq!(
            action(&["edit", "7", "--priority", "0"]),
            Err(UsageError::PriorityOutOfRange(0))
        );
        assert_eq!(
            action(&["edit", "7", "--queue", ""]),
            Err(UsageError::EmptyQueue)
        );
        assert_eq!(
            action(&["edit", "x", "--priority", "3"]),
            Err(UsageError::BadId("x".into()))
        );
    }

    #[test]
    /// Progress reports for --id, else for $MAYFLY_JOB_ID; words are joined.
    fn progress_ids() {
        let mut ctx = ctx();
        assert_eq!(
            plan_args(&["progress", "half"], &ctx).map(|p| p.action),
            Err(UsageError::NoJobId)
        );
        ctx.job_id_env = Some("12".into());
        assert_eq!(
            plan_args(&["progress", "step", "2", "of", "5"], &ctx).map(|p| p.action),
            Ok(Action::Progress(ProgressRequest {
                id: JobId(12),
                text: "step 2 of 5".into()
            }))
        );
        assert_eq!(
            plan_args(&["progress", "--id", "3", "-50%"], &ctx).map(|p| p.action),
            Ok(Action::Progress(ProgressRequest {
                id: JobId(3),
                text: "-50%".into()
            }))
        );
        ctx.job_id_env = Some("abc".into());
        assert_eq!(
            plan_args(&["progress", "x"], &ctx).map(|p| p.action),
            Err(UsageError::BadJobIdEnv("abc".into()))
        );
        let err = Cli::try_parse_from(["mayflyctl", "progress"]).expect_err("no text");
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    /// The clap definition is internally consistent (clap's own debug checks).
    fn clap_definition_is_valid() {
        crate::command().debug_assert();
    }
}
