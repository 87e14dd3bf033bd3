//! The command line as clap sees it: raw, unvalidated arguments.
//!
//! This is the first of two stages. Clap checks the shape (which flags exist,
//! which take values); [`crate::plan`] then validates the values and turns
//! them into a protocol request, as a pure function. So values that need
//! judgement — priorities, `KEY=VALUE` pairs, durations, job ids, commands
//! that may not be UTF-8 — are kept as text here and checked there.
//!
//! These definitions are also the single source of the `--help` text, the
//! man pages and the shell completions, so help is written to teach: what a
//! command does, what it prints, how it exits, and an example.
//!
//! Environment variables are deliberately *not* bound with clap's `env`
//! attribute: the caller's environment is read once, in
//! [`crate::ClientContext::from_process`], so that parsing stays pure and
//! testable.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Shown after the short `-h` help.
const AFTER_HELP: &str = "\
Run 'mayflyctl help <COMMAND>' or 'mayflyctl <COMMAND> --help' for details and examples.";

/// Shown after the long `--help`: examples, environment and exit codes.
const AFTER_LONG_HELP: &str = "\
Examples:
  mayflyctl submit -- make test              queue 'make test' in the current directory
  mayflyctl submit --shell -- 'ls | wc -l'   run a shell pipeline
  id=$(mayflyctl submit -- ./build.sh)       keep the new job's id
  mayflyctl wait \"$id\" && echo built         block until it ends, with its exit code
  mayflyctl status                           list every job
  mayflyctl status --json | jq '.[].state'   machine-readable output
  mayflyctl logs --follow \"$id\"              stream its output as it runs
  mayflyctl cancel 3 4                       cancel two jobs

Environment:
  MAYFLY_SOCKET    the daemon's socket, when --socket is not given
  XDG_RUNTIME_DIR  the socket defaults to $XDG_RUNTIME_DIR/mayfly/mayfly.sock,
                   else to /tmp/mayfly-$UID/mayfly.sock

Exit status:
  0  success
  1  the daemon refused or failed the request (for example: no such job)
  2  usage error (bad flag, priority, duration, KEY=VALUE or job id)
  3  the daemon could not be reached (start it with 'mayflyd')
  'wait ID' and 'submit --wait' exit with the job's own exit code instead:
  128+N when signal N killed it, 1 when it ended without one (cancelled,
  skipped, interrupted).";

/// The whole command line of `mayflyctl`.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "mayflyctl",
    version,
    about = "Queue, watch and control jobs of the Mayfly daemon (mayflyd)",
    long_about = "Queue, watch and control jobs of the Mayfly daemon (mayflyd).\n\n\
        mayflyctl talks to a running mayflyd over its Unix socket. Each job is a \
        command with the context it was submitted from: working directory, \
        environment, queue, priority and labels. Jobs run in the daemon, so they \
        survive the shell that queued them; their output goes to log files you can \
        read with 'mayflyctl logs'.",
    after_help = AFTER_HELP,
    after_long_help = AFTER_LONG_HELP,
    propagate_version = true,
    arg_required_else_help = true
)]
pub struct Cli {
    /// Path of the daemon's Unix socket.
    ///
    /// Defaults to $MAYFLY_SOCKET, else $XDG_RUNTIME_DIR/mayfly/mayfly.sock,
    /// else /tmp/mayfly-$UID/mayfly.sock — the same rules mayflyd uses.
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        help_heading = "Global options"
    )]
    pub socket: Option<PathBuf>,

    /// Print machine-readable JSON on stdout instead of text.
    ///
    /// 'status' prints an array of job objects, 'wait' one job object per
    /// line, 'submit' {"id": N}, 'cancel' an array of {id, outcome}.
    /// 'dump-state' always prints JSON.
    #[arg(long, global = true, help_heading = "Global options")]
    pub json: bool,

    /// What to do.
    #[command(subcommand)]
    pub command: CliCommand,
}

/// The subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum CliCommand {
    /// Queue a job; prints its id.
    #[command(
        long_about = "Queue a job; prints its id alone on stdout.\n\n\
            The job runs in the caller's current directory with the caller's \
            complete environment, unless --cwd or --env say otherwise. Without \
            --shell the command and its arguments are run directly (no shell \
            expansion); with --shell they are joined with spaces and run with \
            'sh -c'. Put the command after '--' so its own flags are not taken \
            for mayflyctl's.",
        after_help = "Examples:\n  \
            mayflyctl submit -- make -j4 test\n  \
            mayflyctl submit --queue gpu --priority 10 --label team=ml -- python train.py\n  \
            mayflyctl submit --shell -- 'echo hi | wc -c'\n  \
            mayflyctl submit --env RUST_LOG=debug --cwd ../other -- cargo build\n  \
            mayflyctl submit --wait -- ./deploy.sh    # exits with deploy.sh's exit code"
    )]
    Submit(SubmitArgs),

    /// Show jobs as a table (all jobs, or the given ids).
    #[command(
        long_about = "Show jobs as a table: all jobs, or only the given ids.\n\n\
            With --json, prints an array of job objects with the fields id, state, \
            queue, priority, command (an argv array, or the shell string), cwd, \
            labels, exit_code, signal, attempts, submitted_at, started_at, \
            finished_at (RFC 3339 or null), progress, reason and pid. An unknown \
            id is an error (exit 1).",
        after_help = "Examples:\n  \
            mayflyctl status\n  \
            mayflyctl status 12 13\n  \
            mayflyctl status --json | jq -r '.[] | select(.state == \"failed\") | .id'"
    )]
    Status(StatusArgs),

    /// Cancel queued or running jobs.
    #[command(
        long_about = "Cancel queued or running jobs.\n\n\
            A job that has not started is cancelled at once. A running job's \
            process group gets SIGTERM, then SIGKILL after the daemon's grace \
            period; it ends 'cancelled'. Jobs that already ended are left alone. \
            Prints one line per job; exits 1 if any id does not exist.",
        after_help = "Examples:\n  \
            mayflyctl cancel 7\n  \
            mayflyctl cancel 7 8 9\n  \
            mayflyctl --json cancel 7"
    )]
    Cancel(IdsArgs),

    /// Block until jobs end.
    #[command(
        long_about = "Block until the given jobs end, printing one line per job as it ends.\n\n\
            With one id, exits with that job's own exit code: 128+N if signal N \
            killed it, 1 if it ended without an exit code (cancelled, skipped, \
            interrupted). With several ids, exits 0 when all succeeded, else 1.",
        after_help = "Examples:\n  \
            mayflyctl wait 12 && echo 'job 12 succeeded'\n  \
            mayflyctl wait --quiet 12 13 14\n  \
            mayflyctl --json wait 12 | jq .state"
    )]
    Wait(WaitArgs),

    /// Print a job's output.
    #[command(
        long_about = "Print a job's standard output (or, with --stderr, its standard \
            error) exactly as the job wrote it.\n\n\
            With --follow, keeps printing new output until the job ends. Closing \
            the reading end (for example '| head') is a clean exit.",
        after_help = "Examples:\n  \
            mayflyctl logs 12\n  \
            mayflyctl logs --stderr 12\n  \
            mayflyctl logs --follow 12 | grep -i error"
    )]
    Logs(LogsArgs),

    /// Print a JSON snapshot of every task and queue.
    #[command(
        long_about = "Print a JSON snapshot of the daemon's state: 'tasks' (every job, \
            with \"kind\": \"job\", and every system task, with \"kind\": \"system\"), \
            'queues' (name, concurrency limit, paused, counts by state) and \
            'scheduler' (global limit, quantum and counters). Always JSON.",
        after_help = "Examples:\n  \
            mayflyctl dump-state > state.json\n  \
            mayflyctl dump-state | jq '.queues[] | {name, running: .counts.running}'"
    )]
    DumpState,

    /// Shut the daemon down gracefully.
    #[command(
        long_about = "Shut the daemon down gracefully: it stops accepting jobs, sends \
            SIGTERM to running jobs, waits up to the timeout, kills what is left, \
            makes its state durable and exits. Returns once the shutdown has begun.",
        after_help = "Examples:\n  \
            mayflyctl shutdown\n  \
            mayflyctl shutdown --timeout 30s"
    )]
    Shutdown(ShutdownArgs),

    /// Show the daemon's activity log: scheduler, system task and job events.
    #[command(
        long_about = "Show the daemon's activity log: when it booted (and what it recovered), \
            every job transition (submitted, started, stop requested, finished with its \
            state, exit status and run time), system tasks starting and exiting, and \
            shutdown. Without --follow it prints the recent events (the last 1024) and \
            exits; with --follow it keeps printing new ones until the daemon stops. A \
            reader that falls behind is told how many events it missed. --json prints one \
            object a line with 'event', 'at', 'seq' and the event's fields.",
        after_help = "Examples:\n  \
            mayflyctl events\n  \
            mayflyctl events --follow\n  \
            mayflyctl events --follow --json | jq -c 'select(.event == \"JobFinished\")'"
    )]
    Events(EventsArgs),
}

/// Arguments of `submit`.
#[derive(Debug, Clone, Args)]
pub struct SubmitArgs {
    /// The queue the job waits in.
    #[arg(long, short = 'q', value_name = "QUEUE", default_value = mayfly_protocol::DEFAULT_QUEUE)]
    pub queue: String,

    /// Priority from 1 (runs first) to 99 (runs last); equal priorities run in
    /// submission order. [default: 50]
    #[arg(long, short = 'p', value_name = "N", allow_negative_numbers = true)]
    pub priority: Option<i64>,

    /// Run in DIR instead of the current directory (relative to the current
    /// directory).
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<PathBuf>,

    /// Set an environment variable for the job, on top of the captured
    /// environment (repeatable).
    #[arg(long, short = 'e', value_name = "KEY=VALUE")]
    pub env: Vec<String>,

    /// Attach a label to the job, shown by 'status --json' (repeatable).
    #[arg(long, short = 'l', value_name = "KEY=VALUE")]
    pub label: Vec<String>,

    /// Join the command's words with spaces and run the result with 'sh -c'.
    #[arg(long)]
    pub shell: bool,

    /// After printing the id, wait for the job and exit with its exit code.
    #[arg(long, short = 'w')]
    pub wait: bool,

    /// The command to run and its arguments (put them after '--').
    #[arg(value_name = "CMD", trailing_var_arg = true)]
    pub command: Vec<OsString>,
}

/// Arguments of `status`.
#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// Jobs to show; all jobs when none are given.
    #[arg(value_name = "ID")]
    pub ids: Vec<String>,
}

/// Arguments of commands that take one or more job ids.
#[derive(Debug, Clone, Args)]
pub struct IdsArgs {
    /// The jobs.
    #[arg(value_name = "ID", required = true)]
    pub ids: Vec<String>,
}

/// Arguments of `wait`.
#[derive(Debug, Clone, Args)]
pub struct WaitArgs {
    /// Print nothing; only the exit status tells.
    #[arg(long, short = 'q')]
    pub quiet: bool,

    /// The jobs to wait for.
    #[arg(value_name = "ID", required = true)]
    pub ids: Vec<String>,
}

/// Arguments of `logs`.
#[derive(Debug, Clone, Args)]
pub struct LogsArgs {
    /// Keep printing new output until the job ends.
    #[arg(long, short = 'f')]
    pub follow: bool,

    /// Print the job's standard error instead of its standard output.
    #[arg(long)]
    pub stderr: bool,

    /// The job.
    #[arg(value_name = "ID")]
    pub id: String,
}

/// Arguments of `events`.
#[derive(Debug, Clone, Args)]
pub struct EventsArgs {
    /// Keep printing new events until the daemon stops.
    #[arg(long, short = 'f')]
    pub follow: bool,
}

/// Arguments of `shutdown`.
#[derive(Debug, Clone, Args)]
pub struct ShutdownArgs {
    /// How long running jobs get after SIGTERM before SIGKILL, e.g. 30s or
    /// 2m. [default: the daemon's --shutdown-timeout]
    #[arg(long, value_name = "DUR")]
    pub timeout: Option<String>,
}
