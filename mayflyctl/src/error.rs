//! What can go wrong in `mayflyctl`, and the exit code each failure maps to.
//!
//! Conventions: every message is one line that says what failed and, where
//! there is something to do, what to do. Messages carry no `mayflyctl:`
//! prefix and no trailing period; `main` adds the prefix and prints the error
//! exactly once. The exit codes are a contract: `docs/protocol.md`, "Exit
//! codes of `mayflyctl`".

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use mayfly_protocol::socket_folder::UnsafeFolder;
use mayfly_protocol::{ErrorResponse, FrameError, JobId};

/// Exit code: success.
pub const EXIT_OK: u8 = 0;
/// Exit code: the daemon refused or failed the request.
pub const EXIT_FAILED: u8 = 1;
/// Exit code: the command line (or the input it names) is wrong.
pub const EXIT_USAGE: u8 = 2;
/// Exit code: the daemon could not be reached, or not safely (the socket's
/// folder or the server's user fails the client's checks, or permission is
/// denied); nothing was sent.
pub const EXIT_UNREACHABLE: u8 = 3;

/// A command line that parsed but does not make sense. Always exit code 2,
/// like clap's own usage errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsageError {
    /// `--priority` outside the user range.
    #[error(
        "priority {0} is out of range: use 1 (runs first) to 99 (runs last); \
         0 is reserved for system tasks"
    )]
    PriorityOutOfRange(i64),

    /// A `KEY=VALUE` argument without `=` or with an empty key.
    #[error("{flag} expects KEY=VALUE with a non-empty KEY, got '{value}'")]
    NotKeyValue {
        /// The flag, e.g. `--env`.
        flag: &'static str,
        /// What the user wrote.
        value: String,
    },

    /// A duration `humantime` cannot read.
    #[error("invalid duration '{value}' for {flag}: {reason}; write it like 500ms, 30s or 5m")]
    BadDuration {
        /// The flag, e.g. `--timeout`.
        flag: &'static str,
        /// What the user wrote.
        value: String,
        /// Why it was refused.
        reason: String,
    },

    /// `submit` without a command.
    #[error("no command given; put the command after '--', e.g. 'mayflyctl submit -- make test'")]
    NoCommand,

    /// A path or argument that is not UTF-8 (the protocol carries text).
    #[error("{what} is not valid UTF-8 ('{lossy}'); Mayfly can only carry UTF-8 text")]
    NotUtf8 {
        /// Which value, e.g. "the working directory".
        what: String,
        /// The value with invalid bytes replaced, to show the user.
        lossy: String,
    },

    /// Something that should be a job id is not.
    #[error("'{0}' is not a job id; ids are whole numbers from 1, such as 42")]
    BadId(String),

    /// The current directory could not be determined and `--cwd` did not
    /// give an absolute one.
    #[error("cannot determine the current directory ({0}); pass --cwd with an absolute path")]
    NoCwd(String),

    /// `--queue ''`.
    #[error("the queue name is empty; pass --queue NAME or leave it out for 'default'")]
    EmptyQueue,

    /// A time (`--at`) that is neither RFC 3339 nor `HH:MM`.
    #[error(
        "invalid time '{value}' for {flag}: {reason}; write it like 14:30 (today, or tomorrow \
         if that time has passed) or 2030-01-01T09:00:00Z"
    )]
    BadTime {
        /// The flag, e.g. `--at`.
        flag: &'static str,
        /// What the user wrote.
        value: String,
        /// Why it was refused.
        reason: String,
    },

    /// A `--daemon-timeout` (or `MAYFLY_DAEMON_TIMEOUT`) that is neither a
    /// duration nor `off`.
    #[error(
        "invalid {name} '{value}': {reason}; write it like 5s or 2m, or off to wait as long \
         as it takes"
    )]
    BadDaemonTimeout {
        /// `--daemon-timeout` or `MAYFLY_DAEMON_TIMEOUT`.
        name: &'static str,
        /// What the user wrote.
        value: String,
        /// Why it was refused.
        reason: String,
    },

    /// `--timeout 0`.
    #[error("a timeout of 0 would stop the job at once; give a positive duration such as 30s")]
    ZeroTimeout,

    /// Standard input could not be read, or is not UTF-8.
    #[error("{0}")]
    Stdin(String),

    /// One line of `submit --stdin` / `--json-input` is wrong.
    #[error("line {line} of standard input: {reason}")]
    BadLine {
        /// The line's number, from 1.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },

    /// `submit --stdin` with nothing to submit.
    #[error(
        "no commands on standard input; give one command per line (blank lines and lines \
         starting with '#' are skipped)"
    )]
    EmptyBatch,

    /// Something that should be a job state is not.
    #[error(
        "'{0}' is not a job state; use waiting, queued, running, succeeded, failed, \
         cancelled, timed_out, skipped or interrupted"
    )]
    BadState(String),

    /// `clean --state` with a state jobs are not finished in.
    #[error(
        "'{0}' jobs have not finished and are never cleaned; use succeeded, failed, \
         cancelled, timed_out, skipped or interrupted"
    )]
    NotFinishedState(String),

    /// `pause`/`resume` without queues and without `--all`.
    #[error("name the queues to {0} (e.g. 'mayflyctl {0} default'), or pass --all for every queue")]
    NoQueues(&'static str),

    /// `queue add/set --concurrency 0`.
    #[error(
        "a concurrency of 0 would never run anything; to stop a queue for a while use \
         'mayflyctl pause NAME'"
    )]
    ZeroConcurrency,

    /// A setting of one executor kind given for another.
    #[error("{flag} is a setting of --executor {kind}; add --executor {kind} or leave it out")]
    ExecutorSetting {
        /// The flag, e.g. `--slurm-partition`.
        flag: &'static str,
        /// The kind it belongs to.
        kind: &'static str,
    },

    /// `--executor a2a` without `--a2a-url`.
    #[error("--executor a2a needs the agent's URL: add --a2a-url URL")]
    A2aUrlMissing,

    /// `--a2a-token-file` with a relative path (the daemon reads it).
    #[error(
        "--a2a-token-file {0:?} is relative; give an absolute path (the daemon reads the file)"
    )]
    RelativeTokenFile(String),

    /// `edit` without any change.
    #[error("nothing to change; pass --priority, --queue, --label or --clear-labels")]
    NothingToEdit,

    /// `progress` outside a job without `--id`.
    #[error(
        "no job to report progress for: pass --id ID, or run this inside a Mayfly job \
         (the daemon sets MAYFLY_JOB_ID there)"
    )]
    NoJobId,

    /// A request too large for one frame: the caller's input (a `--stdin`
    /// line, an environment) is too big to send, not the daemon's doing.
    #[error(
        "the request is too large to send: {} encoded, more than the {} one request can \
         carry; pass large data to the job through a file instead",
        mib(*bytes),
        mib(mayfly_protocol::MAX_FRAME_LEN as u64)
    )]
    TooLarge {
        /// The request's encoded size, as far as it is known.
        bytes: u64,
    },

    /// `MAYFLY_JOB_ID` is set but is not a job id.
    #[error("MAYFLY_JOB_ID is '{0}', which is not a job id; pass --id ID")]
    BadJobIdEnv(String),
}

/// Any failure of a `mayflyctl` run.
#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    /// The command line does not make sense.
    #[error(transparent)]
    Usage(#[from] UsageError),

    /// Connecting to the socket failed: no daemon runs there.
    #[error(
        "no daemon answers at {}: {}; start it with 'mayflyd' or pass --socket",
        socket.display(),
        describe_connect_error(source)
    )]
    Unreachable {
        /// The socket tried.
        socket: PathBuf,
        /// Why the connection failed.
        source: io::Error,
    },

    /// Connecting was denied (`EACCES`): the socket, or its folder, is
    /// another user's.
    #[error("permission denied on {}: {detail}", socket.display())]
    Forbidden {
        /// The socket tried.
        socket: PathBuf,
        /// Whose it is and what to do, in words.
        detail: String,
    },

    /// The socket's folder fails the test of
    /// [`mayfly_protocol::socket_folder`]; nothing was sent.
    #[error("did not connect: {0}")]
    UnsafeFolder(UnsafeFolder),

    /// The process serving the socket runs as another user (not ours, not
    /// root); nothing was sent.
    #[error(
        "did not send anything to {}: the server there runs as {} (pid {pid}), not as you (uid {me}) \
         or root, so it is not your daemon (someone may have put their socket there to read \
         what you send); check --socket and MAYFLY_SOCKET",
        socket.display(),
        match name { Some(name) => format!("uid {uid} ({name})"), None => format!("uid {uid}") },
    )]
    UntrustedServer {
        /// The socket connected to.
        socket: PathBuf,
        /// The server's uid.
        uid: u32,
        /// The server's user name, if it has one.
        name: Option<String>,
        /// The server's pid.
        pid: i32,
        /// This process's uid.
        me: u32,
    },

    /// The daemon refused the handshake (wrong version, not Mayfly, or a
    /// user it does not serve).
    #[error("the daemon at {} refused the connection: {reason}", socket.display())]
    Rejected {
        /// The socket connected to.
        socket: PathBuf,
        /// The daemon's explanation.
        reason: String,
    },

    /// The daemon answered the request with an error.
    #[error("{request} failed: {}", error.message)]
    Daemon {
        /// The kind of request, e.g. `status`.
        request: &'static str,
        /// The daemon's answer.
        error: ErrorResponse,
    },

    /// Some of the jobs named on the command line do not exist.
    #[error("no such job: {}", join_ids(.0))]
    JobsNotFound(Vec<JobId>),

    /// The daemon closed the connection before the answer was complete.
    #[error(
        "the daemon closed the connection {during}; it may have stopped or crashed, or dropped \
         this client for reading its answers too slowly; see its log"
    )]
    ConnectionLost {
        /// When, e.g. "during the handshake".
        during: &'static str,
    },

    /// The daemon took neither the connection nor the request, or gave no
    /// answer, within `--daemon-timeout`.
    #[error(
        "no answer from the daemon at {} within {} {during}; it may be stopped or overloaded \
         (see its log), or give it longer with --daemon-timeout",
        socket.display(),
        humantime::format_duration(*timeout)
    )]
    Timeout {
        /// The socket.
        socket: PathBuf,
        /// How long the client waited.
        timeout: Duration,
        /// When, e.g. "while connecting".
        during: &'static str,
        /// True when the daemon never completed the handshake (so it could
        /// not be reached: exit 3).
        unreachable: bool,
    },

    /// Reading from or writing to the daemon failed for another reason.
    #[error("connection to the daemon failed {during}: {source}")]
    Connection {
        /// When, e.g. "while reading the reply".
        during: &'static str,
        /// The error.
        source: io::Error,
    },

    /// The daemon sent something this client does not understand.
    #[error("{0}; mayflyctl and mayflyd may be from different releases")]
    Protocol(String),

    /// The request could not be encoded (for example, larger than a frame).
    #[error("could not send the request: {0}")]
    Encode(FrameError),

    /// Writing to stdout failed (a broken pipe is not reported: it is a clean exit).
    #[error("could not write the output: {0}")]
    Output(io::Error),

    /// A batch too large for one request went as several, and one of them
    /// was refused after earlier ones had been queued.
    #[error(
        "{error}; the first {queued} of {total} jobs were queued (their ids are printed), \
         the rest were not"
    )]
    Partial {
        /// Jobs queued (and printed) before the refusal.
        queued: usize,
        /// Jobs in the whole batch.
        total: usize,
        /// Why the next request was refused.
        error: Box<CtlError>,
    },
}

impl CtlError {
    /// The process exit code for this failure (`docs/protocol.md`, "Exit
    /// codes of `mayflyctl`").
    pub fn exit_code(&self) -> u8 {
        match self {
            CtlError::Usage(_) => EXIT_USAGE,
            CtlError::Unreachable { .. }
            | CtlError::Forbidden { .. }
            | CtlError::UnsafeFolder(_)
            | CtlError::UntrustedServer { .. }
            | CtlError::Timeout {
                unreachable: true, ..
            } => EXIT_UNREACHABLE,
            CtlError::Rejected { .. }
            | CtlError::Daemon { .. }
            | CtlError::JobsNotFound(_)
            | CtlError::ConnectionLost { .. }
            | CtlError::Connection { .. }
            | CtlError::Timeout { .. }
            | CtlError::Protocol(_)
            | CtlError::Encode(_)
            | CtlError::Output(_)
            | CtlError::Partial { .. } => EXIT_FAILED,
        }
    }
}

/// Words for the usual reasons a connect fails, instead of `os error 111`.
fn describe_connect_error(err: &io::Error) -> String {
    match err.kind() {
        io::ErrorKind::NotFound => "no socket at that path".to_string(),
        io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
        io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => err.to_string(),
    }
}

/// `bytes` in MiB, like `16 MiB` or `19.1 MiB`.
pub fn mib(bytes: u64) -> String {
    let mib = bytes as f64 / (1024.0 * 1024.0);
    if mib.fract() == 0.0 {
        format!("{mib:.0} MiB")
    } else {
        format!("{mib:.1} MiB")
    }
}

/// `1, 2, 3`.
fn join_ids(ids: &[JobId]) -> String {
    ids.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use mayfly_protocol::ErrorKind;

    use super::*;

    /// Each failure class has the contract's exit code.
    #[test]
    fn exit_codes() {
        assert_eq!(CtlError::from(UsageError::NoCommand).exit_code(), 2);
        let unreachable = CtlError::Unreachable {
            socket: "/x".into(),
            source: io::ErrorKind::ConnectionRefused.into(),
        };
        assert_eq!(unreachable.exit_code(), 3);
        let daemon = CtlError::Daemon {
            request: "status",
            error: ErrorResponse::new(ErrorKind::NotFound, "no job 4"),
        };
        assert_eq!(daemon.exit_code(), 1);
        assert_eq!(CtlError::JobsNotFound(vec![JobId(4)]).exit_code(), 1);
        assert_eq!(CtlError::ConnectionLost { during: "x" }.exit_code(), 1);
        // The client's own input, too large to send, is a usage error.
        assert_eq!(
            CtlError::from(UsageError::TooLarge { bytes: 1 << 30 }).exit_code(),
            2
        );
        // Not reached safely: nothing was sent.
        let forbidden = CtlError::Forbidden {
            socket: "/x".into(),
            detail: "y".into(),
        };
        assert_eq!(forbidden.exit_code(), 3);
        let untrusted = CtlError::UntrustedServer {
            socket: "/x".into(),
            uid: 1001,
            name: None,
            pid: 7,
            me: 1000,
        };
        assert_eq!(untrusted.exit_code(), 3);
        assert_eq!(
            untrusted.to_string(),
            "did not send anything to /x: the server there runs as uid 1001 (pid 7), not as \
             you (uid 1000) or root, so it is not your daemon (someone may have put their \
             socket there to read what you send); check --socket and MAYFLY_SOCKET"
        );
        let unsafe_folder = CtlError::UnsafeFolder(UnsafeFolder {
            dir: "/tmp/mayfly-1000".into(),
            problem: mayfly_protocol::socket_folder::Problem::Owner { owner: 1001 },
            me: 1000,
            root_trusted: true,
        });
        assert_eq!(unsafe_folder.exit_code(), 3);
        assert!(
            unsafe_folder
                .to_string()
                .starts_with("did not connect: the socket's folder /tmp/mayfly-1000 belongs"),
            "{unsafe_folder}"
        );
    }

    /// Sizes read as MiB, whole when they are.
    #[test]
    fn sizes_in_mib() {
        assert_eq!(mib(16 << 20), "16 MiB");
        assert_eq!(mib(20_000_000), "19.1 MiB");
    }

    /// The unreachable message names the socket, the reason in words, and what to do.
    #[test]
    fn unreachable_message() {
        let err = CtlError::Unreachable {
            socket: "/run/user/1000/mayfly/mayfly.sock".into(),
            source: io::ErrorKind::ConnectionRefused.into(),
        };
        assert_eq!(
            err.to_string(),
            "no daemon answers at /run/user/1000/mayfly/mayfly.sock: connection refused; \
             start it with 'mayflyd' or pass --socket"
        );
    }

    /// Daemon errors name the request and carry the daemon's message.
    #[test]
    fn daemon_message() {
        let err = CtlError::Daemon {
            request: "cancel",
            error: ErrorResponse::new(ErrorKind::ShuttingDown, "the daemon is shutting down"),
        };
        assert_eq!(
            err.to_string(),
            "cancel failed: the daemon is shutting down"
        );
        assert_eq!(
            CtlError::JobsNotFound(vec![JobId(4), JobId(9)]).to_string(),
            "no such job: 4, 9"
        );
    }
}
