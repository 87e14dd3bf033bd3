//! The command line as clap sees it: raw, unvalidated arguments.
//!
//! This is the first of two stages. Clap checks the shape (which flags exist,
//! which take values, which conflict); [`crate::plan()`] then validates the
//! values and turns them into a protocol request, as a pure function. So
//! values that need judgement — priorities, `KEY=VALUE` pairs, durations,
//! times, job ids, state names, commands that may not be UTF-8 — are kept as
//! text here and checked there.
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

use clap::{Arg, ArgAction, ArgGroup, Args, FromArgMatches, Parser, Subcommand};
use mayfly_protocol::{DEFAULT_PRIORITY, DEFAULT_QUEUE, DEFAULT_RETRIES};

/// Shown after the short `-h` help.
const AFTER_HELP: &str = "\
Run 'mayflyctl help <COMMAND>' or 'mayflyctl <COMMAND> --help' for details and examples.";

/// Shown after the long `--help`: examples, environment and exit codes.
const AFTER_LONG_HELP: &str = "\
Examples:
  mayflyctl submit -- make test              queue 'make test' in the current directory
  mayflyctl submit --shell -- 'ls | wc -l'   run a shell pipeline
  id=$(mayflyctl submit -- ./build.sh)       keep the new job's id
  mayflyctl submit --after 7 -- ./test.sh    run once job 7 has succeeded
  mayflyctl wait \"$id\" && echo built         block until it ends, with its exit code
  mayflyctl status                           list every job
  mayflyctl status --state failed            list the failed ones
  mayflyctl status --json | jq '.[].state'   machine-readable output
  mayflyctl logs --follow \"$id\"              stream its output as it runs
  mayflyctl cancel 3 4                       cancel two jobs
  mayflyctl pause --all                      start nothing new until 'mayflyctl resume --all'

Environment:
  MAYFLY_SOCKET    the daemon's socket, when --socket is not given
  MAYFLY_DAEMON_TIMEOUT
                   how long to wait for the daemon, when --daemon-timeout is
                   not given (default 30s; 'off' waits as long as it takes)
  XDG_RUNTIME_DIR  the socket defaults to $XDG_RUNTIME_DIR/mayfly/mayfly.sock,
                   else to /tmp/mayfly-$UID/mayfly.sock
  MAYFLY_JOB_ID    set by the daemon inside a job; 'progress' reports for it
  NO_COLOR         if set (to anything), tables are never coloured; they are
                   coloured only when stdout is a terminal anyway

Exit status:
  0  success
  1  the daemon refused or failed the request (for example: no such job, or
     you are a user it does not serve), or stopped answering within
     --daemon-timeout
  2  usage error (bad flag, priority, duration, time, KEY=VALUE or job id),
     or input too large to send (a job over the 16 MiB a request carries)
  3  the daemon could not be reached (start it with 'mayflyd'), or not
     safely: permission denied, or the socket's folder or the server is
     not yours or root's. Nothing was sent. Also when it did not take the
     connection within --daemon-timeout.
  'wait ID' and 'submit --wait' exit with the job's own exit code instead:
  128+N when signal N killed it, 1 when it ended without one (cancelled,
  skipped, interrupted).";

/// The long help of `submit`.
const SUBMIT_LONG_ABOUT: &str = "\
Queue a job; prints its id alone on stdout.

The job runs in the caller's current directory with the caller's complete \
environment, unless --cwd or --env say otherwise. Without --shell the command \
and its arguments are run directly (no shell expansion); with --shell they are \
joined with spaces and run with 'sh -c'. Put the command after '--' so its own \
flags are not taken for mayflyctl's.

When it runs: a job waits ('waiting') until every job named by --after has \
succeeded (if one does not, the job ends 'skipped' without running) and every \
job named by --after-any has ended in any way, and until the time given by \
--delay or --at. Then it is 'queued' until its queue and the daemon have a \
free slot.

How it ends: --timeout stops an attempt that runs too long (SIGTERM to its \
process group, then SIGKILL); it ends 'timed_out'. --retries N runs a failed \
or timed-out job again, up to N more times, waiting --retry-delay before the \
first retry and twice as long before each next one.

Many jobs at once: --stdin reads one shell command per line from standard \
input (blank lines and lines starting with '#' are skipped); --json-input \
reads one JSON object per line instead. Every other flag applies to every \
line. They are queued all or none, and their ids are printed one per line in \
input order (--json: an array of {\"id\", \"line\"}). More than 10,000 lines \
(or about 4 MiB) go as several requests, each all or none: if the daemon \
refuses one, the ids already queued are printed and mayflyctl exits 1. A \
single job larger than a request can carry (16 MiB, say one huge line) is a \
usage error naming its line: nothing is sent, and mayflyctl exits 2.";

/// The examples and the JSON line format of `submit`.
const SUBMIT_AFTER_HELP: &str = "\
Examples:
  mayflyctl submit -- make -j4 test
  mayflyctl submit --queue gpu --priority 10 --label team=ml -- python train.py
  mayflyctl submit --shell -- 'echo hi | wc -c'
  mayflyctl submit --env RUST_LOG=debug --cwd ../other -- cargo build
  mayflyctl submit --wait -- ./deploy.sh    # exits with deploy.sh's exit code
  mayflyctl submit --after 12,13 -- ./package.sh
  mayflyctl submit --after-any 12 -- ./cleanup.sh
  mayflyctl submit --delay 10m -- ./reminder.sh
  mayflyctl submit --at 23:30 -- ./nightly.sh      # today at 23:30, or tomorrow if past
  mayflyctl submit --at 2030-01-01T00:00:00Z -- ./happy-new-year.sh
  mayflyctl submit --timeout 30s --retries 3 --retry-delay 2s -- ./flaky-test.sh
  printf 'make a\\nmake b\\n' | mayflyctl submit --stdin --queue build

TIME (--at): RFC 3339 ('2030-01-01T09:00:00Z', '2030-01-01T09:00:00+02:00'),
or HH:MM[:SS] in local time: today at that time, or tomorrow if that time has
passed. DUR: 500ms, 30s, 5m, 1h 30m.

--json-input reads one JSON object per line; only \"command\" is required:
  command       [\"argv\", \"words\"] run directly, or \"a shell string\" for sh -c
  queue         queue name                    (default: --queue)
  priority      1-99                          (default: --priority)
  after         [ids] that must succeed       (added to --after)
  after_any     [ids] that must end           (added to --after-any)
  after_lines   [line numbers] of this input that must succeed; 1-based,
                earlier lines only (the jobs of one input can depend on each other)
  after_any_lines  [line numbers] of this input that must end
  labels        {\"key\": \"value\"}              (added to --label)
  env           {\"KEY\": \"value\"}              (added to the captured env and --env)
  cwd           directory, relative to the current one (default: --cwd)
  timeout       duration, e.g. \"30s\"          (default: --timeout)
  retries       a number                      (default: --retries)
  retry_delay   duration                      (default: --retry-delay)
  max_output    size, e.g. \"10M\"              (default: --max-output)
  on_finish     shell line run when it ends    (default: --on-finish)
  preemptible   true or false                  (default: --preemptible)
  delay         duration before it may start  (default: --delay)
  at            TIME before which it does not start (default: --at)
Example:
  {\"command\": [\"make\", \"build\"], \"labels\": {\"step\": \"build\"}}
  {\"command\": \"make test > test.log\", \"after_lines\": [1], \"timeout\": \"10m\"}";

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
    /// line, 'submit' {"id": N} ('submit --stdin': an array of {"id", "line"}),
    /// 'cancel' an array of {id, outcome}, 'restart' an array of {"old",
    /// "new"}, 'clean' {"count", "ids"}, 'edit' the edited job object, and
    /// 'queue', 'pause' and 'resume' the array of queue objects. 'dump-state'
    /// always prints JSON.
    #[arg(long, global = true, help_heading = "Global options")]
    pub json: bool,

    /// How long to wait for the daemon: to take the connection, and then
    /// for each answer, e.g. 5s or 2m; 'off' waits as long as it takes.
    ///
    /// A daemon that does not answer in time (stopped, or too busy) is an
    /// error (exit 3 when it never took the connection, else 1). Waiting
    /// for jobs ('wait', 'submit --wait') and following ('logs --follow',
    /// 'events --follow') block on purpose: there it bounds only the start.
    /// Defaults to $MAYFLY_DAEMON_TIMEOUT, else 30s.
    #[arg(
        long,
        global = true,
        value_name = "DUR",
        help_heading = "Global options"
    )]
    pub daemon_timeout: Option<String>,

    /// What to do.
    #[command(subcommand)]
    pub command: CliCommand,
}

/// The subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum CliCommand {
    /// Queue a job (or, with --stdin, many); prints its id.
    #[command(long_about = SUBMIT_LONG_ABOUT, after_help = SUBMIT_AFTER_HELP)]
    Submit(SubmitArgs),

    /// Show jobs as a table (all jobs, or the given ids).
    #[command(
        long_about = "Show jobs as a table: all jobs, or only the given ids, narrowed by \
            --queue, --state and --label (a job must match every filter given; a \
            filter given several times matches any of its values, except --label, \
            where every label must match).\n\n\
            Columns: ID, STATE, QUEUE, PRI (priority), EXIT (exit code or signal), \
            ATTEMPTS (started so far, out of the allowed number when it may be retried), \
            WHEN (when it finished, started or was submitted — '3s ago' — or, for a \
            waiting job, when it may start — 'in 5m'), PROGRESS (the job's last \
            'mayflyctl progress' text) and COMMAND. On a terminal the table is cut \
            to its width and states are coloured (never when NO_COLOR is set).\n\n\
            With --json, prints an array of job objects with the fields id, state, \
            queue, priority, command (an argv array, or the shell string), cwd, \
            labels (an object), exit_code, signal, attempts, submitted_at, \
            started_at, finished_at (RFC 3339 or null), progress, reason, pid, \
            after (an array of {id, any_outcome}), not_before, timeout_ms, retries, \
            retry_at (RFC 3339 or null: when a failed job is tried again) and history \
            (an array of {started_at, finished_at, exit_code, signal}, one per \
            finished attempt). An unknown id is an error (exit 1).",
        after_help = "Examples:\n  \
            mayflyctl status\n  \
            mayflyctl status 12 13\n  \
            mayflyctl status --state running,queued --queue gpu\n  \
            mayflyctl status --label team=ml\n  \
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
            interrupted). With several ids, exits 0 when all succeeded, else 1. \
            When stderr is a terminal, a progress bar there counts the jobs done.",
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

    /// Create, change, remove or list queues.
    #[command(
        long_about = "Create, change, remove or list queues.\n\n\
            Each queue has a concurrency limit (how many of its jobs may run at \
            once; 'unlimited' means only the daemon's global --concurrency applies) \
            and can be paused. Queue 'default' always exists; other queues also \
            appear when a job is submitted to them.",
        after_help = "Examples:\n  \
            mayflyctl queue add gpu --concurrency 1\n  \
            mayflyctl queue set gpu --concurrency 2\n  \
            mayflyctl queue set gpu --unlimited\n  \
            mayflyctl queue list\n  \
            mayflyctl queue rm gpu"
    )]
    Queue(QueueArgs),

    /// Stop starting jobs from queues (and, with --running, freeze running ones).
    #[command(
        long_about = "Pause queues: their queued jobs stay queued and nothing new \
            starts from them until 'mayflyctl resume'. Jobs already running go on, \
            unless --running is given: then they are frozen with SIGSTOP (their \
            timeouts keep counting). Name the queues, or pass --all for every queue. \
            A job submitted to a paused queue is accepted and waits.",
        after_help = "Examples:\n  \
            mayflyctl pause gpu\n  \
            mayflyctl pause --all --running\n  \
            mayflyctl resume --all --running"
    )]
    Pause(PauseArgs),

    /// Start jobs from paused queues again (and, with --running, thaw frozen ones).
    #[command(
        long_about = "Resume paused queues: their queued jobs start again as slots \
            free up. With --running, jobs frozen by 'pause --running' get SIGCONT \
            and go on. Name the queues, or pass --all for every queue.",
        after_help = "Examples:\n  \
            mayflyctl resume gpu\n  \
            mayflyctl resume --all --running"
    )]
    Resume(PauseArgs),

    /// Queue a fresh copy of finished jobs; prints the new ids.
    #[command(
        long_about = "Queue a fresh copy of each finished job: the same command, \
            directory, environment, queue, priority, labels, timeout and retries, \
            without its dependencies or start time. Prints the new ids, one per \
            line, in the order given (--json: an array of {\"old\", \"new\"}). \
            A job that has not finished is refused (cancel it first).",
        after_help = "Examples:\n  \
            mayflyctl restart 12\n  \
            new=$(mayflyctl restart 12) && mayflyctl wait \"$new\"\n  \
            mayflyctl status --json | jq -r '.[] | select(.state == \"failed\") | .id' | xargs mayflyctl restart"
    )]
    Restart(IdsArgs),

    /// Forget finished jobs and delete their output.
    #[command(
        long_about = "Forget finished jobs and delete their log files: all of them, or \
            only those in the given states and finished at least --older-than ago. \
            Jobs that have not finished are never touched. Prints how many were \
            removed (--json: {\"count\", \"ids\"}).",
        after_help = "Examples:\n  \
            mayflyctl clean\n  \
            mayflyctl clean --state succeeded\n  \
            mayflyctl clean --state failed,timed_out --older-than 7d"
    )]
    Clean(CleanArgs),

    /// Change the priority, queue or labels of a job that has not started.
    #[command(
        long_about = "Change a job that has not started yet (waiting or queued): its \
            priority, its queue, or its labels. --label adds or replaces one label \
            and keeps the others; --clear-labels removes every label first. \
            Prints the job as 'status' would (--json: its job object).",
        after_help = "Examples:\n  \
            mayflyctl edit 12 --priority 5\n  \
            mayflyctl edit 12 --queue gpu --label team=ml\n  \
            mayflyctl edit 12 --clear-labels --label owner=me"
    )]
    Edit(EditArgs),

    /// Report a running job's progress, shown by 'status'.
    #[command(
        long_about = "Report progress from inside a job: a short line of text (up to 200 \
            characters) that 'status' shows in its PROGRESS column and 'status --json' \
            as \"progress\". Inside a job, MAYFLY_JOB_ID and MAYFLY_SOCKET are set, so \
            no id or socket is needed; elsewhere pass --id.",
        after_help = "Examples (in a job's script):\n  \
            mayflyctl progress 'step 2 of 5: compiling'\n  \
            mayflyctl progress \"$done/$total files\"\n\
            From outside:\n  \
            mayflyctl progress --id 12 'stuck on the network, retrying'"
    )]
    Progress(ProgressArgs),
}

/// Arguments of `submit`.
#[derive(Debug, Clone, Args)]
pub struct SubmitArgs {
    /// The queue the job waits in.
    #[arg(long, short = 'q', value_name = "QUEUE", default_value = DEFAULT_QUEUE)]
    pub queue: String,

    /// Priority from 1 (runs first) to 99 (runs last); equal priorities run in
    /// submission order.
    #[arg(
        long,
        short = 'p',
        value_name = "N",
        allow_negative_numbers = true,
        default_value_t = i64::from(DEFAULT_PRIORITY)
    )]
    pub priority: i64,

    /// Run in DIR instead of the current directory (relative to the current
    /// directory).
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<PathBuf>,

    /// Set an environment variable for the job, on top of the captured
    /// environment (repeatable).
    #[arg(long, short = 'e', value_name = "KEY=VALUE")]
    pub env: Vec<String>,

    /// Attach a label to the job, shown by 'status' and used by
    /// 'status --label' (repeatable).
    #[arg(long, short = 'l', value_name = "KEY=VALUE")]
    pub label: Vec<String>,

    /// Join the command's words with spaces and run the result with 'sh -c'.
    #[arg(long, conflicts_with = "json_input")]
    pub shell: bool,

    /// After printing the id, wait for the job and exit with its exit code
    /// (with --stdin: wait for all, exit 0 if all succeeded, else 1).
    #[arg(long, short = 'w')]
    pub wait: bool,

    /// Start only after these jobs succeeded; if one does not, this job ends
    /// 'skipped' without running (comma-separated or repeated).
    #[arg(
        long,
        value_name = "ID",
        value_delimiter = ',',
        help_heading = "When it runs"
    )]
    pub after: Vec<String>,

    /// Start only after these jobs ended, whatever their outcome
    /// (comma-separated or repeated).
    #[arg(
        long,
        value_name = "ID",
        value_delimiter = ',',
        help_heading = "When it runs"
    )]
    pub after_any: Vec<String>,

    /// Do not start before this long from now, e.g. 30s or 5m.
    #[arg(
        long,
        value_name = "DUR",
        conflicts_with = "at",
        help_heading = "When it runs"
    )]
    pub delay: Option<String>,

    /// Do not start before TIME: RFC 3339, or HH:MM in local time (today, or
    /// tomorrow if that time has passed).
    #[arg(long, value_name = "TIME", help_heading = "When it runs")]
    pub at: Option<String>,

    /// Stop an attempt that runs longer than this (SIGTERM, then SIGKILL);
    /// it ends 'timed_out'.
    #[arg(long, value_name = "DUR", help_heading = "How it ends")]
    pub timeout: Option<String>,

    /// Run a failed or timed-out job again, up to N more times.
    #[arg(
        long,
        value_name = "N",
        default_value_t = DEFAULT_RETRIES,
        help_heading = "How it ends"
    )]
    pub retries: u32,

    /// The wait before the first retry; it doubles for each further one
    /// (capped at 1h).
    #[arg(
        long,
        value_name = "DUR",
        default_value = DEFAULT_RETRY_DELAY,
        help_heading = "How it ends"
    )]
    pub retry_delay: String,

    /// Keep at most SIZE bytes of each of the job's output streams (64K,
    /// 10M, 1G); the rest is dropped and the cut is noted at the end of the
    /// file [default: the daemon's --max-output, else no limit].
    #[arg(
        long,
        value_name = "SIZE",
        value_parser = mayfly_protocol::parse_size,
        help_heading = "How it ends"
    )]
    pub max_output: Option<u64>,

    /// When the job has ended (for good: after its last retry), run this
    /// shell line, in the job's directory and environment plus
    /// MAYFLY_JOB_ID, MAYFLY_JOB_STATE, MAYFLY_EXIT_CODE, MAYFLY_SIGNAL,
    /// MAYFLY_QUEUE, MAYFLY_JOB_STDOUT, MAYFLY_JOB_STDERR,
    /// MAYFLY_DURATION_MS and MAYFLY_SOCKET [default: the daemon's
    /// --on-finish]. E.g.
    /// 'notify-send "job $MAYFLY_JOB_ID $MAYFLY_JOB_STATE"'.
    #[arg(long, value_name = "CMD", help_heading = "How it ends")]
    pub on_finish: Option<String>,

    /// Let a more urgent job (a lower priority number) take this job's slot
    /// while it runs: it is then frozen (SIGSTOP) until a slot is free again
    /// (SIGCONT). Its timeout does not count the time frozen.
    #[arg(long, help_heading = "When it runs")]
    pub preemptible: bool,

    /// Read one shell command per line from standard input and queue them
    /// all in one request; prints one id per line.
    #[arg(long, conflicts_with = "command", help_heading = "Many jobs")]
    pub stdin: bool,

    /// Read one JSON job per line from standard input (format below) and
    /// queue them all in one request; prints one id per line.
    #[arg(long, conflicts_with = "command", help_heading = "Many jobs")]
    pub json_input: bool,

    /// The command to run and its arguments (put them after '--').
    #[arg(value_name = "CMD", trailing_var_arg = true)]
    pub command: Vec<OsString>,
}

impl Cli {
    /// Parses the process's arguments, as [`Parser::parse`] does (usage
    /// errors, help and version are printed by clap, which exits).
    ///
    /// `submit` first tries a parser that knows only the global options and
    /// `submit`: scripts run it thousands of times, and building clap's
    /// whole command tree (every subcommand with its help) was most of the
    /// instructions of a `mayflyctl submit`. Anything that parser does not
    /// accept — another command, `--help`, a mistake — goes to the full
    /// parser, so help and error messages are always the full ones.
    ///
    /// Before that, the plainest form of all — `[--socket PATH] [--json]
    /// submit -- CMD [ARGS…]`, what scripts and `xargs` run — is recognised
    /// without clap (see [`Cli::try_parse_plain_submit`]): even the small
    /// parser was most of the instructions left in that call. (The callgrind
    /// counts: `bench/RESULTS.md`, "Figures that used to live in code
    /// comments".)
    pub fn parse_args() -> Cli {
        let mut args: Vec<OsString> = std::env::args_os().collect();
        if let Some(cli) = Cli::try_parse_plain_submit(&mut args) {
            return cli;
        }
        Cli::try_parse_submit(&args).unwrap_or_else(|| Cli::parse_from(args))
    }

    /// `[--socket PATH | --socket=PATH] [--json] submit -- CMD [ARGS…]`, each
    /// global option at most once and in either order, `PATH` not empty and
    /// not starting with `-`: the submit of a plain command with every
    /// option at its default. `Some` only for exactly that form, and then
    /// what the full parser gives (the tests hold the two together); `None`
    /// for anything else, which then goes through clap. On `Some`, the
    /// command's words have been moved out of `args`.
    pub fn try_parse_plain_submit(args: &mut [OsString]) -> Option<Cli> {
        let mut socket: Option<PathBuf> = None;
        let mut json = false;
        let mut i = 1;
        loop {
            let word = args.get(i)?.to_str()?;
            i += 1;
            match word {
                "--json" if !json => json = true,
                "--socket" if socket.is_none() => {
                    let path = args.get(i)?.to_str()?;
                    if path.is_empty() || path.starts_with('-') {
                        return None;
                    }
                    socket = Some(PathBuf::from(path));
                    i += 1;
                }
                w if w.starts_with("--socket=") && socket.is_none() => {
                    let path = &w["--socket=".len()..];
                    if path.is_empty() {
                        return None;
                    }
                    socket = Some(PathBuf::from(path));
                }
                "submit" => break,
                _ => return None,
            }
        }
        if args.get(i)?.to_str()? != "--" || args.len() <= i + 1 {
            return None;
        }
        let command = args[i + 1..].iter_mut().map(std::mem::take).collect();
        Some(Cli {
            socket,
            json,
            daemon_timeout: None,
            command: CliCommand::Submit(SubmitArgs {
                command,
                ..SubmitArgs::default()
            }),
        })
    }

    /// The short path of [`Cli::parse_args`]: `Some` only for a `submit` the
    /// small parser accepts, and then exactly what the full parser gives.
    pub fn try_parse_submit(args: &[OsString]) -> Option<Cli> {
        // Quick refusal: the first word that is not a global option must
        // be `submit`.
        let mut words = args.iter().skip(1);
        loop {
            match words.next()?.to_str()? {
                "--json" => {}
                "--socket" | "--daemon-timeout" => {
                    words.next()?;
                }
                w if w.starts_with("--socket=") || w.starts_with("--daemon-timeout=") => {}
                "submit" => break,
                _ => return None,
            }
        }
        let command = clap::Command::new("mayflyctl")
            .disable_help_subcommand(true)
            .arg(
                Arg::new("socket")
                    .long("socket")
                    .global(true)
                    .value_parser(clap::value_parser!(PathBuf)),
            )
            .arg(
                Arg::new("json")
                    .long("json")
                    .global(true)
                    .action(ArgAction::SetTrue),
            )
            .arg(
                Arg::new("daemon_timeout")
                    .long("daemon-timeout")
                    .global(true)
                    .value_parser(clap::value_parser!(String)),
            )
            .subcommand(SubmitArgs::augment_args(clap::Command::new("submit")))
            .subcommand_required(true);
        let matches = command.try_get_matches_from(args).ok()?;
        Cli::from_arg_matches(&matches).ok()
    }
}

/// `submit --retry-delay` when it is not given: the protocol's
/// [`mayfly_protocol::DEFAULT_RETRY_DELAY_MS`], written as the flag takes it
/// (a test holds the two equal).
pub const DEFAULT_RETRY_DELAY: &str = "1s";

impl Default for SubmitArgs {
    /// `submit` with every option at its default and no command: what clap
    /// gives, from the same constants its attributes name (a test holds the
    /// two equal), without building clap, for the plain form of
    /// [`Cli::try_parse_plain_submit`].
    fn default() -> Self {
        Self {
            queue: DEFAULT_QUEUE.to_owned(),
            priority: i64::from(DEFAULT_PRIORITY),
            cwd: None,
            env: Vec::new(),
            label: Vec::new(),
            shell: false,
            wait: false,
            after: Vec::new(),
            after_any: Vec::new(),
            delay: None,
            at: None,
            timeout: None,
            retries: DEFAULT_RETRIES,
            retry_delay: DEFAULT_RETRY_DELAY.to_owned(),
            max_output: None,
            on_finish: None,
            preemptible: false,
            stdin: false,
            json_input: false,
            command: Vec::new(),
        }
    }
}

impl SubmitArgs {
    /// True when the jobs come from standard input (`--stdin`, `--json-input`).
    pub fn reads_stdin(&self) -> bool {
        self.stdin || self.json_input
    }
}

/// Arguments of `status`.
#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// Only jobs in these queues (comma-separated or repeated).
    #[arg(long, short = 'q', value_name = "QUEUE", value_delimiter = ',')]
    pub queue: Vec<String>,

    /// Only jobs in these states: waiting, queued, running, succeeded,
    /// failed, cancelled, timed_out, skipped, interrupted (comma-separated or
    /// repeated).
    #[arg(long, short = 's', value_name = "STATE", value_delimiter = ',')]
    pub state: Vec<String>,

    /// Only jobs with this label (repeated: with all of them).
    #[arg(long, short = 'l', value_name = "KEY=VALUE")]
    pub label: Vec<String>,

    /// Add what each job's last attempt used: CPU (user + system) and peak
    /// memory (RSS of its largest process). `--json` always has them
    /// (`cpu_user_ms`, `cpu_sys_ms`, `max_rss_kib`).
    #[arg(long, short = 'u')]
    pub usage: bool,

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
    /// Print no line per job; only the exit status (and, on a terminal, the
    /// progress bar on stderr) tells.
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

/// Arguments of `queue`: which queue operation.
#[derive(Debug, Clone, Args)]
pub struct QueueArgs {
    /// The operation.
    #[command(subcommand)]
    pub action: QueueCommand,
}

/// The `queue` operations.
#[derive(Debug, Clone, Subcommand)]
pub enum QueueCommand {
    /// Create a queue (refused if it exists).
    #[command(after_help = "Examples:\n  \
        mayflyctl queue add gpu --concurrency 1\n  \
        mayflyctl queue add batch\n  \
        mayflyctl queue add hpc --executor slurm --slurm-partition debug --concurrency 50")]
    Add(QueueAddArgs),

    /// Change a queue's concurrency limit or executor (refused if it does
    /// not exist).
    #[command(after_help = "Examples:\n  \
        mayflyctl queue set gpu --concurrency 4\n  \
        mayflyctl queue set gpu --unlimited\n  \
        mayflyctl queue set hpc --executor local")]
    Set(QueueSetArgs),

    /// Remove a queue (refused while it holds unfinished jobs; never 'default').
    #[command(
        visible_alias = "remove",
        after_help = "Example:\n  mayflyctl queue rm gpu"
    )]
    Rm(QueueNameArgs),

    /// List the queues: limit, paused, and jobs by state.
    #[command(
        visible_alias = "ls",
        long_about = "List the queues as a table: NAME, LIMIT (its concurrency limit, \
            or 'unlimited'), PAUSED, how many of its jobs are WAITING, QUEUED, \
            RUNNING and DONE (finished in any way), and its EXECUTOR. --json prints an \
            array of {\"name\", \"concurrency\" (null: unlimited), \"paused\", \
            \"counts\" (by state), \"executor\" ({\"kind\": \"local\"}, with the kind's \
            settings)}.",
        after_help = "Examples:\n  \
            mayflyctl queue list\n  \
            mayflyctl queue list --json | jq -r '.[] | select(.paused) | .name'"
    )]
    List,
}

/// Arguments of `queue add`.
#[derive(Debug, Clone, Args)]
pub struct QueueAddArgs {
    /// How many of its jobs may run at once. [default: unlimited, i.e. only
    /// the daemon's global limit]
    #[arg(long, short = 'c', value_name = "N")]
    pub concurrency: Option<u32>,

    /// What runs its jobs.
    #[command(flatten)]
    pub executor: ExecutorArgs,

    /// The queue's name.
    #[arg(value_name = "NAME")]
    pub name: String,
}

/// Arguments of `queue set`.
#[derive(Debug, Clone, Args)]
#[command(group(
    ArgGroup::new("change")
        .required(true)
        .multiple(true)
        .args(["concurrency", "unlimited", "executor"])
))]
pub struct QueueSetArgs {
    /// How many of its jobs may run at once.
    #[arg(long, short = 'c', value_name = "N")]
    pub concurrency: Option<u32>,

    /// Remove the queue's own limit (only the daemon's global limit applies).
    #[arg(long, conflicts_with = "concurrency")]
    pub unlimited: bool,

    /// What runs its jobs from now on (only while none of them runs).
    #[command(flatten)]
    pub executor: ExecutorArgs,

    /// The queue's name.
    #[arg(value_name = "NAME")]
    pub name: String,
}

/// Which executor runs a queue's jobs, and its settings.
#[derive(Debug, Clone, Default, Args)]
pub struct ExecutorArgs {
    /// What runs the queue's jobs: local (a process group on this machine),
    /// slurm (sbatch on a Slurm cluster) or a2a (a remote A2A agent). The
    /// daemon's --concurrency bounds local jobs only; the queue's own limit
    /// bounds all of them. [default for a new queue: local]
    #[arg(long, value_name = "KIND", value_parser = ["local", "slurm", "a2a"])]
    pub executor: Option<String>,

    /// With --executor slurm: the partition to submit to.
    #[arg(long, value_name = "PARTITION")]
    pub slurm_partition: Option<String>,

    /// With --executor slurm: one more sbatch argument, as one word
    /// (--slurm-arg=--mem=2G); repeat for more.
    #[arg(long = "slurm-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub slurm_args: Vec<String>,

    /// With --executor a2a: the remote agent's JSON-RPC endpoint.
    #[arg(long, value_name = "URL")]
    pub a2a_url: Option<String>,

    /// With --executor a2a: an absolute path to a file holding the bearer
    /// token to send to the agent.
    #[arg(long, value_name = "FILE")]
    pub a2a_token_file: Option<String>,
}

/// Arguments of commands that take one queue name.
#[derive(Debug, Clone, Args)]
pub struct QueueNameArgs {
    /// The queue's name.
    #[arg(value_name = "NAME")]
    pub name: String,
}

/// Arguments of `pause` and `resume`.
#[derive(Debug, Clone, Args)]
pub struct PauseArgs {
    /// Every queue.
    #[arg(long, conflicts_with = "queues")]
    pub all: bool,

    /// Also freeze (pause: SIGSTOP) or thaw (resume: SIGCONT) the jobs of
    /// those queues that are running now.
    #[arg(long)]
    pub running: bool,

    /// The queues (or --all).
    #[arg(value_name = "QUEUE")]
    pub queues: Vec<String>,
}

/// Arguments of `clean`.
#[derive(Debug, Clone, Args)]
pub struct CleanArgs {
    /// Only jobs that ended in these states: succeeded, failed, cancelled,
    /// timed_out, skipped, interrupted (comma-separated or repeated).
    /// [default: all of them]
    #[arg(long, short = 's', value_name = "STATE", value_delimiter = ',')]
    pub state: Vec<String>,

    /// Only jobs that finished at least this long ago, e.g. 1h or 7d.
    #[arg(long, value_name = "DUR")]
    pub older_than: Option<String>,
}

/// Arguments of `edit`.
#[derive(Debug, Clone, Args)]
pub struct EditArgs {
    /// A new priority, 1 (runs first) to 99 (runs last).
    #[arg(long, short = 'p', value_name = "N", allow_negative_numbers = true)]
    pub priority: Option<i64>,

    /// Move the job to this queue.
    #[arg(long, short = 'q', value_name = "QUEUE")]
    pub queue: Option<String>,

    /// Add or replace a label, keeping the others (repeatable).
    #[arg(long, short = 'l', value_name = "KEY=VALUE")]
    pub label: Vec<String>,

    /// Remove every label (before adding those of --label).
    #[arg(long)]
    pub clear_labels: bool,

    /// The job.
    #[arg(value_name = "ID")]
    pub id: String,
}

/// Arguments of `progress`.
#[derive(Debug, Clone, Args)]
pub struct ProgressArgs {
    /// The job. [default: $MAYFLY_JOB_ID, set inside a job]
    #[arg(long, value_name = "ID")]
    pub id: Option<String>,

    /// The text; several words are joined with spaces.
    #[arg(
        value_name = "TEXT",
        required = true,
        num_args = 1..,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub text: Vec<String>,
}

#[cfg(test)]
mod fast_path_tests {
    use super::*;

    /// `argv` (without the program name) as the process would see it.
    fn argv(words: &[&str]) -> Vec<OsString> {
        std::iter::once("mayflyctl")
            .chain(words.iter().copied())
            .map(OsString::from)
            .collect()
    }

    /// Every `submit` the short path takes gives exactly the full parse.
    #[test]
    fn the_submit_short_path_parses_as_the_full_parser_does() {
        let cases: &[&[&str]] = &[
            &["submit", "--", "true"],
            &["submit", "true"],
            &["--socket", "/s", "submit", "--", "echo", "a b", "--json"],
            &["--socket=/s", "--json", "submit", "--", "true"],
            &["submit", "--json", "--socket", "/t", "--", "true"],
            &["--daemon-timeout", "5s", "submit", "--", "true"],
            &["--daemon-timeout=off", "submit", "--", "x"],
            &["submit", "--daemon-timeout", "1m", "--", "x"],
            &[
                "submit",
                "--queue",
                "gpu",
                "--priority",
                "10",
                "--label",
                "a=b",
                "--label",
                "c=d",
                "--env",
                "K=V",
                "--cwd",
                "..",
                "--",
                "make",
                "-j4",
            ],
            &["submit", "--shell", "--", "echo hi | wc -c"],
            &[
                "submit",
                "--after",
                "12,13",
                "--after-any",
                "4",
                "--wait",
                "--",
                "x",
            ],
            &[
                "submit",
                "--delay",
                "10m",
                "--timeout",
                "30s",
                "--retries",
                "3",
                "--",
                "x",
            ],
            &["submit", "--retry-delay", "2s", "--at", "23:30", "--", "x"],
            &["submit", "--stdin", "--queue", "build"],
            &["submit", "--json-input"],
            // No command: clap accepts it, planning refuses it (exit 2).
            &["submit"],
        ];
        for words in cases {
            let args = argv(words);
            let fast = Cli::try_parse_submit(&args)
                .unwrap_or_else(|| panic!("{words:?}: the short path refused it"));
            let full = Cli::try_parse_from(&args).expect("the full parser accepts it");
            assert_eq!(format!("{fast:?}"), format!("{full:?}"), "{words:?}");
        }
    }

    /// The plain form is parsed without clap, to exactly the full parse.
    #[test]
    fn the_plain_submit_parses_as_the_full_parser_does() {
        let cases: &[&[&str]] = &[
            &["submit", "--", "true"],
            &["--json", "submit", "--", "true"],
            &["--socket", "/s", "submit", "--", "echo", "a b", "--json"],
            &["--socket=/s", "--json", "submit", "--", "true"],
            &["--json", "--socket", "s.sock", "submit", "--", "--help"],
            &["submit", "--", "sh", "-c", "exit 3", "--", "-x"],
            &["submit", "--", ""],
        ];
        for words in cases {
            let mut args = argv(words);
            let full = Cli::try_parse_from(&args).expect("the full parser accepts it");
            let plain = Cli::try_parse_plain_submit(&mut args)
                .unwrap_or_else(|| panic!("{words:?}: the plain path refused it"));
            assert_eq!(format!("{plain:?}"), format!("{full:?}"), "{words:?}");
        }
        // Words that are not UTF-8 are passed through as they are.
        use std::os::unix::ffi::OsStringExt;
        let mut args = argv(&["submit", "--"]);
        args.push(OsString::from_vec(b"caf\xe9".to_vec()));
        let full = Cli::try_parse_from(&args).expect("the full parser accepts it");
        let plain = Cli::try_parse_plain_submit(&mut args).expect("plain");
        assert_eq!(format!("{plain:?}"), format!("{full:?}"));
    }

    /// Any option, a repeated or odd global, or no `--` leaves the plain
    /// path, and the arguments are left as they were.
    #[test]
    fn anything_but_the_plain_form_leaves_the_plain_path() {
        let cases: &[&[&str]] = &[
            &[],
            &["submit"],
            &["submit", "--"],
            &["submit", "true"],
            &["submit", "-q", "x", "--", "true"],
            &["submit", "--wait", "--", "true"],
            &["submit", "--json", "--", "true"],
            &["--json", "--json", "submit", "--", "true"],
            &["--socket", "/a", "--socket", "/b", "submit", "--", "true"],
            &["--socket", "--json", "submit", "--", "true"],
            &["--socket", "", "submit", "--", "true"],
            &["--socket=", "submit", "--", "true"],
            &["--socket"],
            &["--daemon-timeout", "5s", "submit", "--", "true"],
            &["status", "--", "true"],
            &["--help"],
            &["submit", "--help"],
        ];
        for words in cases {
            let mut args = argv(words);
            assert!(
                Cli::try_parse_plain_submit(&mut args).is_none(),
                "{words:?} took the plain path"
            );
            assert_eq!(args, argv(words), "{words:?}: arguments changed");
        }
    }

    /// The defaults the plain path uses are the full parser's.
    #[test]
    fn submit_defaults_are_the_full_parsers() {
        let full = Cli::try_parse_from(argv(&["submit"])).expect("the full parser accepts it");
        let CliCommand::Submit(full) = full.command else {
            panic!("not a submit: {full:?}");
        };
        assert_eq!(format!("{:?}", SubmitArgs::default()), format!("{full:?}"));
        assert_eq!(
            crate::plan::parse_duration_ms("--retry-delay", DEFAULT_RETRY_DELAY),
            Ok(mayfly_protocol::DEFAULT_RETRY_DELAY_MS)
        );
    }

    /// Everything else goes to the full parser, for its help and errors.
    #[test]
    fn anything_else_takes_the_full_parser() {
        let cases: &[&[&str]] = &[
            &[],
            &["status"],
            &["--json", "status", "submit"],
            &["submit", "--help"],
            &["submit", "-h"],
            &["--version"],
            &["submit", "--priority", "high", "--", "true"],
            &["submit", "--no-such-flag", "--", "true"],
            &["--socket"],
            &["help", "submit"],
        ];
        for words in cases {
            assert!(
                Cli::try_parse_submit(&argv(words)).is_none(),
                "{words:?} took the short path"
            );
        }
    }
}
