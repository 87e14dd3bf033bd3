//! Job types: what a client hands the daemon and what the daemon reports back.
//!
//! These are plain data. Rendering (tables, JSON objects for scripts) belongs
//! to `mayflyctl`; scheduling rules belong to the daemon's core.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A job's identifier. Ids start at 1, grow by one per job and are never
/// reused, not even across daemon restarts.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct JobId(pub u64);

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Wall-clock time in milliseconds since the Unix epoch.
///
/// Milliseconds rather than `SystemTime` so that the type is plain data that
/// the sans-IO core can compare and do arithmetic on, and that encodes the
/// same on every platform.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// The current wall-clock time. Only I/O edges (the daemon's driver, the
    /// client) call this; the scheduler core gets `now` passed in.
    pub fn now() -> Self {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Self(u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
    }

    /// This time as a [`std::time::SystemTime`], for formatting.
    pub fn to_system_time(self) -> std::time::SystemTime {
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(self.0)
    }

    /// This time plus `ms` milliseconds, saturating.
    pub fn plus_millis(self, ms: u64) -> Self {
        Self(self.0.saturating_add(ms))
    }

    /// Milliseconds from `earlier` to `self`, zero if `earlier` is later.
    pub fn millis_since(self, earlier: Timestamp) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

/// The words of a command run without a shell: a program and its
/// arguments, never empty (so whoever runs it always has a program).
///
/// On the wire and in the log it is exactly a `Vec<String>`; decoding an
/// empty one fails, as does [`Argv::try_from`]. It reads as a slice of its
/// words (`argv[0]`, `argv.len()`, `argv.iter()`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Argv(Vec<String>);

/// Why a list of words is not an [`Argv`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a command needs at least a program to run")]
pub struct EmptyArgv;

impl Argv {
    /// `program` with `args`.
    pub fn new(program: impl Into<String>, args: impl IntoIterator<Item = String>) -> Self {
        let mut words = vec![program.into()];
        words.extend(args);
        Self(words)
    }

    /// The program (the first word).
    pub fn program(&self) -> &str {
        &self.0[0]
    }

    /// The arguments after the program.
    pub fn args(&self) -> &[String] {
        &self.0[1..]
    }

    /// The words, program first.
    pub fn into_vec(self) -> Vec<String> {
        self.0
    }
}

impl TryFrom<Vec<String>> for Argv {
    type Error = EmptyArgv;

    fn try_from(words: Vec<String>) -> Result<Self, EmptyArgv> {
        if words.is_empty() {
            Err(EmptyArgv)
        } else {
            Ok(Self(words))
        }
    }
}

impl std::ops::Deref for Argv {
    type Target = [String];

    fn deref(&self) -> &[String] {
        &self.0
    }
}

impl Serialize for Argv {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Argv {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let words = Vec::<String>::deserialize(deserializer)?;
        Argv::try_from(words).map_err(serde::de::Error::custom)
    }
}

#[cfg(feature = "arbitrary")]
impl<'a> arbitrary::Arbitrary<'a> for Argv {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(Argv::new(
            String::arbitrary(u)?,
            Vec::<String>::arbitrary(u)?,
        ))
    }
}

/// What a job runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Command {
    /// Run this argv directly (no shell): its program is looked up on the
    /// job's own `PATH`.
    Argv(Argv),
    /// Run this string with `sh -c`. A string that is one plain command
    /// (plain words only, the first neither an assignment nor a shell
    /// built-in) may be exec'd directly instead, with the `PWD` sh would
    /// have set, as GNU make does: it runs the same program with the same
    /// arguments and environment, minus a shell's start-up. What can tell
    /// the two apart: no `sh` process sits between the daemon and the
    /// program, so a program killed by signal N ends by that signal rather
    /// than as sh's exit code 128+N (`mayflyctl wait` exits 128+N for both).
    Shell(String),
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::Shell(s) => f.write_str(s),
            Command::Argv(argv) => {
                for (i, arg) in argv.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    let plain = !arg.is_empty()
                        && arg
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b));
                    if plain {
                        f.write_str(arg)?;
                    } else {
                        write!(f, "'{}'", arg.replace('\'', r"'\''"))?;
                    }
                }
                Ok(())
            }
        }
    }
}

/// Everything the client captures at submit time: the command and the
/// context it runs in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct JobSpec {
    /// What to run.
    pub command: Command,
    /// The working directory, captured from the client unless `--cwd` says otherwise.
    pub cwd: String,
    /// The complete environment the job sees (the daemon adds `MAYFLY_JOB_ID`
    /// and `MAYFLY_SOCKET`), captured from the client by default.
    pub env: Vec<(String, String)>,
    /// The queue the job waits in.
    pub queue: String,
    /// Lower runs first; user jobs take 1–99.
    pub priority: u8,
    /// Free-form `key=value` labels, in the order given.
    pub labels: Vec<(String, String)>,
    /// Jobs this one waits for (`--after`, `--after-any`).
    pub after: Vec<Dependency>,
    /// Do not start before this time (`--delay`, `--at`).
    pub not_before: Option<Timestamp>,
    /// Stop a running attempt after this long; it ends `timed_out`.
    pub timeout_ms: Option<u64>,
    /// How many times to run it again after a failed attempt.
    pub retries: u32,
    /// The wait before the first retry; it doubles each time (capped).
    pub retry_delay_ms: u64,
    /// The settings a job seldom has, each a [`SpecExt`] at most once.
    /// Settings added to jobs over time are new variants of that enum, so a
    /// new one changes neither this type's encoding nor the write-ahead
    /// log's: read them with the accessors ([`JobSpec::max_output`], …).
    pub ext: Vec<SpecExt>,
}

/// A setting a job seldom has (see [`JobSpec::ext`]). Variants are only
/// ever appended: bincode numbers them by position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum SpecExt {
    /// Keep at most this many bytes of each of the job's output streams
    /// (`--max-output`); what comes after is dropped, and the cut is noted
    /// at the end of the file.
    MaxOutput(u64),
    /// Run this shell line when the job ends (`--on-finish`), with the
    /// job's facts in its environment.
    OnFinish(String),
    /// The job may be frozen (SIGSTOP) to give its slot to a more urgent
    /// one, and thawed when a slot frees (`--preemptible`).
    Preemptible,
}

impl SpecExt {
    /// Which setting this is, to tell two of the same kind apart from two
    /// different ones.
    pub fn kind(&self) -> &'static str {
        match self {
            SpecExt::MaxOutput(_) => "max_output",
            SpecExt::OnFinish(_) => "on_finish",
            SpecExt::Preemptible => "preemptible",
        }
    }
}

impl JobSpec {
    /// A spec with only the essentials; everything else takes its default
    /// (no dependencies, no delay, no timeout, no retries).
    pub fn new(
        command: Command,
        cwd: impl Into<String>,
        queue: impl Into<String>,
        priority: u8,
    ) -> Self {
        Self {
            command,
            cwd: cwd.into(),
            env: Vec::new(),
            queue: queue.into(),
            priority,
            labels: Vec::new(),
            after: Vec::new(),
            not_before: None,
            timeout_ms: None,
            retries: crate::DEFAULT_RETRIES,
            retry_delay_ms: crate::DEFAULT_RETRY_DELAY_MS,
            ext: Vec::new(),
        }
    }

    /// The cap on each output stream (`--max-output`), if the job has one.
    #[allow(
        clippy::unnecessary_find_map,
        reason = "SpecExt has one variant so far; the match is the shape every accessor takes"
    )]
    pub fn max_output(&self) -> Option<u64> {
        self.ext.iter().find_map(|e| match e {
            SpecExt::MaxOutput(bytes) => Some(*bytes),
            _ => None,
        })
    }

    /// The shell line to run when the job ends, if it has its own.
    pub fn on_finish(&self) -> Option<&str> {
        self.ext.iter().find_map(|e| match e {
            SpecExt::OnFinish(line) => Some(line.as_str()),
            _ => None,
        })
    }

    /// Sets or clears the job's own finish callback.
    pub fn set_on_finish(&mut self, line: Option<String>) {
        self.ext.retain(|e| !matches!(e, SpecExt::OnFinish(_)));
        if let Some(line) = line {
            self.ext.push(SpecExt::OnFinish(line));
        }
    }

    /// Whether the job may be frozen to give its slot away.
    pub fn preemptible(&self) -> bool {
        self.ext.iter().any(|e| matches!(e, SpecExt::Preemptible))
    }

    /// Marks the job preemptible or not.
    pub fn set_preemptible(&mut self, yes: bool) {
        self.ext.retain(|e| !matches!(e, SpecExt::Preemptible));
        if yes {
            self.ext.push(SpecExt::Preemptible);
        }
    }

    /// Sets or clears the cap on each output stream.
    pub fn set_max_output(&mut self, bytes: Option<u64>) {
        self.ext.retain(|e| !matches!(e, SpecExt::MaxOutput(_)));
        if let Some(bytes) = bytes {
            self.ext.push(SpecExt::MaxOutput(bytes));
        }
    }
}

/// One prerequisite of a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Dependency {
    /// The job it waits for.
    pub on: DepRef,
    /// `false` (`--after`): the prerequisite must succeed, or this job is
    /// skipped. `true` (`--after-any`): any outcome will do.
    pub any_outcome: bool,
}

/// How a dependency names its prerequisite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum DepRef {
    /// An existing job.
    Job(JobId),
    /// The job on this line (from 1) of the same batch submit.
    BatchLine(u32),
}

/// One finished attempt of a job (a job with retries has several).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Attempt {
    /// When it started.
    pub started_at: Timestamp,
    /// When it ended.
    pub finished_at: Timestamp,
    /// Its exit code, if it exited.
    pub exit_code: Option<i32>,
    /// The signal that killed it, if one did.
    pub signal: Option<i32>,
}

/// A job's state. The names are the contract's snake_case spellings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum JobState {
    /// Dependencies or a not-before time are pending.
    Waiting,
    /// Ready to run, waiting for a free slot.
    Queued,
    /// Its process is running.
    Running,
    /// Exited with status 0.
    Succeeded,
    /// Exited non-zero, was killed by a signal, or could not be started.
    Failed,
    /// Cancelled by a user.
    Cancelled,
    /// Ran past its timeout and was stopped.
    TimedOut,
    /// Never ran because a dependency did not succeed.
    Skipped,
    /// The daemon stopped or crashed while it ran.
    Interrupted,
}

impl JobState {
    /// Every state, in lifecycle order.
    pub const ALL: [JobState; 9] = [
        JobState::Waiting,
        JobState::Queued,
        JobState::Running,
        JobState::Succeeded,
        JobState::Failed,
        JobState::Cancelled,
        JobState::TimedOut,
        JobState::Skipped,
        JobState::Interrupted,
    ];

    /// The contract's name for this state.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Waiting => "waiting",
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
            JobState::TimedOut => "timed_out",
            JobState::Skipped => "skipped",
            JobState::Interrupted => "interrupted",
        }
    }

    /// Parses a contract name (as printed by [`JobState::as_str`]).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// True once the job can never change again.
    pub fn is_terminal(self) -> bool {
        !matches!(
            self,
            JobState::Waiting | JobState::Queued | JobState::Running
        )
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which of a job's two output files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum LogStream {
    /// The job's standard output.
    Stdout,
    /// The job's standard error.
    Stderr,
}

/// What the daemon reports about one job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct JobInfo {
    /// The job's id.
    pub id: JobId,
    /// Its current state.
    pub state: JobState,
    /// What it runs.
    pub command: Command,
    /// Where it runs.
    pub cwd: String,
    /// The queue it belongs to.
    pub queue: String,
    /// Its priority (lower runs first).
    pub priority: u8,
    /// Its labels.
    pub labels: Vec<(String, String)>,
    /// The exit code of the last attempt, if it exited normally.
    pub exit_code: Option<i32>,
    /// The signal that killed the last attempt, if one did.
    pub signal: Option<i32>,
    /// How many times it has been started.
    pub attempts: u32,
    /// When the daemon accepted it.
    pub submitted_at: Timestamp,
    /// When its last attempt started.
    pub started_at: Option<Timestamp>,
    /// When it reached its terminal state.
    pub finished_at: Option<Timestamp>,
    /// The latest progress text the job reported.
    pub progress: Option<String>,
    /// Why it ended the way it did, when that is not obvious from the exit
    /// status (for example "could not start: No such file or directory").
    pub reason: Option<String>,
    /// The process id (and process group id) of the running attempt.
    pub pid: Option<u32>,
    /// Jobs it waits for: `(id, any_outcome)`.
    pub after: Vec<(JobId, bool)>,
    /// Not before this time.
    pub not_before: Option<Timestamp>,
    /// Its timeout.
    pub timeout_ms: Option<u64>,
    /// Retries allowed after a failed attempt.
    pub retries: u32,
    /// When the next attempt may start, while it waits to be retried.
    pub retry_at: Option<Timestamp>,
    /// Every finished attempt, oldest first.
    pub history: Vec<Attempt>,
    /// What the queue's executor calls the running attempt elsewhere (a
    /// Slurm job id, a remote A2A task id), for a job that runs elsewhere.
    pub remote_id: Option<String>,
    /// What the last attempt used, once it ended, when its executor could
    /// tell.
    pub usage: Option<Usage>,
    /// True while the running attempt is frozen to give its slot to a more
    /// urgent job (`submit --preemptible`).
    pub preempted: bool,
}

/// What an attempt used, as the kernel counted it when it ended: the
/// process the daemon started and every descendant it waited for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Usage {
    /// CPU time in user mode, in milliseconds.
    pub cpu_user_ms: u64,
    /// CPU time in the kernel on its behalf, in milliseconds.
    pub cpu_sys_ms: u64,
    /// The largest resident set of any one of its processes, in KiB.
    pub max_rss_kib: u64,
}

/// [`JobInfo`] borrowed from wherever the job is held: the daemon lists its
/// jobs through this, so a listing encodes straight from its state instead
/// of copying every job's strings into a [`JobInfo`] first.
///
/// It encodes to exactly the bytes of the [`JobInfo`] it mirrors (the same
/// fields in the same order, borrowed types encode like owned ones), so the
/// receiver decodes a [`JobInfo`]. [`JobInfo::view`] and
/// [`JobInfoRef::to_info`] name every field of both, so the two types
/// cannot drift apart unnoticed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct JobInfoRef<'a> {
    /// The job's id.
    pub id: JobId,
    /// Its current state.
    pub state: JobState,
    /// What it runs.
    pub command: &'a Command,
    /// Where it runs.
    pub cwd: &'a str,
    /// The queue it belongs to.
    pub queue: &'a str,
    /// Its priority (lower runs first).
    pub priority: u8,
    /// Its labels.
    pub labels: &'a [(String, String)],
    /// The exit code of the last attempt, if it exited normally.
    pub exit_code: Option<i32>,
    /// The signal that killed the last attempt, if one did.
    pub signal: Option<i32>,
    /// How many times it has been started.
    pub attempts: u32,
    /// When the daemon accepted it.
    pub submitted_at: Timestamp,
    /// When its last attempt started.
    pub started_at: Option<Timestamp>,
    /// When it reached its terminal state.
    pub finished_at: Option<Timestamp>,
    /// The latest progress text the job reported.
    pub progress: Option<&'a str>,
    /// Why it ended the way it did.
    pub reason: Option<&'a str>,
    /// The process id (and process group id) of the running attempt.
    pub pid: Option<u32>,
    /// Jobs it waits for: `(id, any_outcome)`.
    pub after: &'a [(JobId, bool)],
    /// Not before this time.
    pub not_before: Option<Timestamp>,
    /// Its timeout.
    pub timeout_ms: Option<u64>,
    /// Retries allowed after a failed attempt.
    pub retries: u32,
    /// When the next attempt may start, while it waits to be retried.
    pub retry_at: Option<Timestamp>,
    /// Every finished attempt, oldest first.
    pub history: &'a [Attempt],
    /// What the queue's executor calls the running attempt elsewhere.
    pub remote_id: Option<&'a str>,
    /// What the last attempt used.
    pub usage: Option<Usage>,
    /// True while the running attempt is frozen.
    pub preempted: bool,
}

impl JobInfo {
    /// A job as it stands once submitted: queued, `command` to run in
    /// `cwd` on `queue` at `priority`, nothing else known yet. Set more with
    /// struct update syntax: `JobInfo { state, ..JobInfo::submitted(..) }`.
    pub fn submitted(
        id: JobId,
        command: Command,
        cwd: impl Into<String>,
        queue: impl Into<String>,
        priority: u8,
        submitted_at: Timestamp,
    ) -> Self {
        Self {
            id,
            state: JobState::Queued,
            command,
            cwd: cwd.into(),
            queue: queue.into(),
            priority,
            labels: Vec::new(),
            exit_code: None,
            signal: None,
            attempts: 0,
            submitted_at,
            started_at: None,
            finished_at: None,
            progress: None,
            reason: None,
            pid: None,
            after: Vec::new(),
            not_before: None,
            timeout_ms: None,
            retries: 0,
            retry_at: None,
            history: Vec::new(),
            remote_id: None,
            usage: None,
            preempted: false,
        }
    }

    /// This job as a [`JobInfoRef`].
    pub fn view(&self) -> JobInfoRef<'_> {
        // Destructured, so that a field added to `JobInfo` fails to compile
        // here until `JobInfoRef` has it too.
        let JobInfo {
            id,
            state,
            command,
            cwd,
            queue,
            priority,
            labels,
            exit_code,
            signal,
            attempts,
            submitted_at,
            started_at,
            finished_at,
            progress,
            reason,
            pid,
            after,
            not_before,
            timeout_ms,
            retries,
            retry_at,
            history,
            remote_id,
            usage,
            preempted,
        } = self;
        JobInfoRef {
            id: *id,
            state: *state,
            command,
            cwd,
            queue,
            priority: *priority,
            labels,
            exit_code: *exit_code,
            signal: *signal,
            attempts: *attempts,
            submitted_at: *submitted_at,
            started_at: *started_at,
            finished_at: *finished_at,
            progress: progress.as_deref(),
            reason: reason.as_deref(),
            pid: *pid,
            after,
            not_before: *not_before,
            timeout_ms: *timeout_ms,
            retries: *retries,
            retry_at: *retry_at,
            history,
            remote_id: remote_id.as_deref(),
            usage: *usage,
            preempted: *preempted,
        }
    }
}

impl JobInfoRef<'_> {
    /// An owned copy.
    pub fn to_info(&self) -> JobInfo {
        JobInfo {
            id: self.id,
            state: self.state,
            command: self.command.clone(),
            cwd: self.cwd.to_owned(),
            queue: self.queue.to_owned(),
            priority: self.priority,
            labels: self.labels.to_vec(),
            exit_code: self.exit_code,
            signal: self.signal,
            attempts: self.attempts,
            submitted_at: self.submitted_at,
            started_at: self.started_at,
            finished_at: self.finished_at,
            progress: self.progress.map(str::to_owned),
            reason: self.reason.map(str::to_owned),
            pid: self.pid,
            after: self.after.to_vec(),
            not_before: self.not_before,
            timeout_ms: self.timeout_ms,
            retries: self.retries,
            retry_at: self.retry_at,
            history: self.history.to_vec(),
            remote_id: self.remote_id.map(str::to_owned),
            usage: self.usage,
            preempted: self.preempted,
        }
    }
}

/// How many jobs are in each state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct StateCounts {
    /// Jobs in `waiting`.
    pub waiting: u64,
    /// Jobs in `queued`.
    pub queued: u64,
    /// Jobs in `running`.
    pub running: u64,
    /// Jobs in `succeeded`.
    pub succeeded: u64,
    /// Jobs in `failed`.
    pub failed: u64,
    /// Jobs in `cancelled`.
    pub cancelled: u64,
    /// Jobs in `timed_out`.
    pub timed_out: u64,
    /// Jobs in `skipped`.
    pub skipped: u64,
    /// Jobs in `interrupted`.
    pub interrupted: u64,
}

impl StateCounts {
    /// The counter for `state`.
    pub fn get(&self, state: JobState) -> u64 {
        match state {
            JobState::Waiting => self.waiting,
            JobState::Queued => self.queued,
            JobState::Running => self.running,
            JobState::Succeeded => self.succeeded,
            JobState::Failed => self.failed,
            JobState::Cancelled => self.cancelled,
            JobState::TimedOut => self.timed_out,
            JobState::Skipped => self.skipped,
            JobState::Interrupted => self.interrupted,
        }
    }

    /// A mutable reference to the counter for `state`.
    pub fn get_mut(&mut self, state: JobState) -> &mut u64 {
        match state {
            JobState::Waiting => &mut self.waiting,
            JobState::Queued => &mut self.queued,
            JobState::Running => &mut self.running,
            JobState::Succeeded => &mut self.succeeded,
            JobState::Failed => &mut self.failed,
            JobState::Cancelled => &mut self.cancelled,
            JobState::TimedOut => &mut self.timed_out,
            JobState::Skipped => &mut self.skipped,
            JobState::Interrupted => &mut self.interrupted,
        }
    }
}

/// One queue as `dump-state` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct QueueInfo {
    /// The queue's name.
    pub name: String,
    /// How many of its jobs may run at once; `None` means only the global
    /// limit applies.
    pub concurrency: Option<u32>,
    /// A paused queue starts no new jobs.
    pub paused: bool,
    /// Its jobs, counted by state.
    pub counts: StateCounts,
    /// What runs its jobs.
    pub executor: ExecutorSpec,
}

/// What runs a queue's jobs. Variants are only ever appended.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum ExecutorSpec {
    /// A process group on the daemon's machine.
    #[default]
    Local,
    /// `sbatch` on a Slurm cluster.
    Slurm {
        /// The partition to submit to (`--partition`), if not the default.
        partition: Option<String>,
        /// More `sbatch` arguments, as given.
        args: Vec<String>,
    },
    /// `SendMessage` to a remote A2A agent.
    A2a {
        /// The agent's JSON-RPC endpoint.
        url: String,
        /// A file holding the bearer token to send, if the agent wants one.
        token_file: Option<String>,
    },
}

impl ExecutorSpec {
    /// Its kind, as `queue list` and the metrics name it.
    pub fn kind(&self) -> &'static str {
        match self {
            ExecutorSpec::Local => "local",
            ExecutorSpec::Slurm { .. } => "slurm",
            ExecutorSpec::A2a { .. } => "a2a",
        }
    }

    /// True for the executor whose jobs count against the daemon's global
    /// `--concurrency` (the others run elsewhere).
    pub fn is_local(&self) -> bool {
        matches!(self, ExecutorSpec::Local)
    }
}

impl fmt::Display for ExecutorSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExecutorSpec::Local => f.write_str("local"),
            ExecutorSpec::Slurm { partition, args } => {
                f.write_str("slurm")?;
                if let Some(p) = partition {
                    write!(f, " partition={p}")?;
                }
                for arg in args {
                    write!(f, " {arg}")?;
                }
                Ok(())
            }
            ExecutorSpec::A2a { url, .. } => write!(f, "a2a {url}"),
        }
    }
}

/// The scheduler's settings and counters, as `dump-state` shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct SchedulerInfo {
    /// The global limit on running jobs.
    pub concurrency: u32,
    /// The driver's time slice in milliseconds.
    pub quantum_ms: u64,
    /// The id the next job will get.
    pub next_job_id: u64,
    /// Jobs accepted since the state began.
    pub jobs_submitted: u64,
    /// Attempts started since the state began.
    pub jobs_started: u64,
    /// Jobs that reached a terminal state since the state began.
    pub jobs_finished: u64,
    /// True once a graceful shutdown has begun.
    pub shutting_down: bool,
}

/// One system task (priority 0) as `dump-state` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct SystemTaskInfo {
    /// The task's name, e.g. `looptask_wal_flush`.
    pub name: String,
    /// Always `0` for system tasks; carried so clients need not know the rule.
    pub priority: u8,
    /// `running`, `exited` or `failed`.
    pub state: String,
    /// When it started.
    pub started_at: Timestamp,
}
