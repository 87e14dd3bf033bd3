//! The `slurm` executor: hands each attempt to `sbatch` on an existing
//! Slurm cluster and follows it to its end (see `docs/slurm.md`).
//!
//! One executor serves every queue configured alike (same partition and
//! extra arguments). It is a task of its own, driven by messages, so the
//! driver never waits on a Slurm command:
//!
//! - a start runs `sbatch` (a few at once) with the job's
//!   command, directory and captured environment ([`submit`]), and
//!   reports `Started` with the Slurm job id, which the driver logs before
//!   anything else about the attempt;
//! - every tick (`--slurm-poll-interval`) while it follows attempts, *one*
//!   `squeue` asks about all of them, whatever their number; a job the
//!   controller has already forgotten is looked up in the job completion
//!   log, and one Slurm has no trace of ends `interrupted`, saying so;
//! - cancels and `pause --running` become `scancel`, `scontrol suspend` and
//!   `scontrol resume`, the requests that come together merged into one
//!   call each.
//!
//! After a restart, the attempts the log shows running are followed again
//! by their logged ids ([`Executor::reattach`]); one whose id never made it
//! to the log is looked for by its name, comment and output file, and
//! reported [`Report::Found`] when Slurm has it.

pub mod parse;
pub mod submit;

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use mayfly_protocol::{JobId, JobSpec, JobState, LogStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use self::parse::{ClusterConfig, Row};
pub use self::submit::check_args;
use super::{Executor, Handle, RemoteContext, Report, Where, log_path};
use crate::core::{ExitOutcome, RunningAttempt, Signal};
use crate::metrics::Metrics;

/// How many `sbatch` may run at once: enough to keep up with a burst of
/// starts, few enough not to swamp the controller (or a 2-core node).
const MAX_SUBMITS: usize = 4;

/// The longest `squeue`, `scancel` or `scontrol` may take before it is
/// killed and counted as failed. (`sbatch` is never cut short: one killed
/// half way may still have submitted.)
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// In how many polls in a row a job must be missing from Slurm (and from
/// its job completion log) before it counts as lost.
const MISSES_BEFORE_LOST: u8 = 2;

/// The label of this executor in the metrics.
const KIND: &str = "slurm";

/// Runs jobs with `sbatch`: see the module documentation.
#[derive(Debug)]
pub struct SlurmExecutor {
    /// Starts and re-attachments, for the executor's task.
    inbox: mpsc::UnboundedSender<Msg>,
    /// Signals, for the task that sends them.
    signals: mpsc::UnboundedSender<(String, Signal)>,
    /// What the tasks share.
    shared: Arc<Shared>,
}

/// What the executor's tasks share.
#[derive(Debug)]
struct Shared {
    /// The queue's partition.
    partition: Option<String>,
    /// The queue's extra `sbatch` arguments.
    args: Vec<String>,
    /// Where job output files live, as an absolute path (Slurm opens them
    /// on the node that runs the job).
    logs_dir: PathBuf,
    /// The batch script every job runs as.
    launcher: PathBuf,
    /// Given to jobs as `MAYFLY_SOCKET`.
    socket: PathBuf,
    /// Where starts and ends are reported.
    reports: mpsc::UnboundedSender<Report>,
    /// The daemon's metrics.
    metrics: Option<Arc<Metrics>>,
    /// What `scontrol show config` said, once it has.
    config: OnceLock<ClusterConfig>,
    /// The daemon's uid: its jobs are the ones searched for after a crash.
    uid: u32,
}

/// A message for the executor's task.
#[derive(Debug)]
enum Msg {
    /// Submit this attempt.
    Start(Start),
    /// Follow an attempt the log shows running (after a restart).
    Follow {
        /// The job.
        id: JobId,
        /// Which attempt.
        attempt: u32,
        /// Its Slurm id, if the log has it.
        slurm_id: Option<String>,
    },
}

/// An attempt to submit.
#[derive(Debug)]
struct Start {
    /// The job.
    id: JobId,
    /// Which attempt, from 1.
    attempt: u32,
    /// What to run.
    spec: Box<JobSpec>,
}

impl SlurmExecutor {
    /// An executor for queues with `partition` and extra `sbatch` arguments
    /// `args`, reporting on `reports`. Writes its batch script under the
    /// state dir and starts its tasks (so it must be called inside the
    /// runtime); the error says what could not be set up.
    pub fn new(
        partition: Option<String>,
        args: Vec<String>,
        context: &RemoteContext,
        reports: mpsc::UnboundedSender<Report>,
    ) -> Result<Self, String> {
        let absolute = |path: &Path| {
            std::path::absolute(path)
                .map_err(|e| format!("cannot make {} absolute: {e}", path.display()))
        };
        let logs_dir = absolute(&context.logs_dir)?;
        let launcher = absolute(&write_launcher(&context.state_dir)?)?;
        let shared = Arc::new(Shared {
            partition,
            args,
            logs_dir,
            launcher,
            socket: context.socket.clone(),
            reports,
            metrics: context.metrics.clone(),
            config: OnceLock::new(),
            uid: nix::unistd::geteuid().as_raw(),
        });
        let (inbox, messages) = mpsc::unbounded_channel();
        let (signals, to_send) = mpsc::unbounded_channel();
        let actor = Actor {
            shared: shared.clone(),
            messages,
            poll_every: context.slurm_poll,
            queued: VecDeque::new(),
            submits: JoinSet::new(),
            tracked: BTreeMap::new(),
            searching: BTreeMap::new(),
            polls: JoinSet::new(),
            failing: false,
        };
        tokio::spawn(actor.run());
        tokio::spawn(send_signals(shared.clone(), to_send));
        Ok(Self {
            inbox,
            signals,
            shared,
        })
    }
}

/// Writes the batch script ([`submit::LAUNCHER`]) to
/// `STATE_DIR/slurm/launch.sh` (private, like everything there) unless it
/// is there already; returns its path.
fn write_launcher(state_dir: &Path) -> Result<PathBuf, String> {
    use std::io::Write;
    let dir = state_dir.join("slurm");
    crate::private::dir_builder()
        .recursive(true)
        .create(&dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let path = dir.join("launch.sh");
    if std::fs::read(&path).is_ok_and(|old| old == submit::LAUNCHER.as_bytes()) {
        return Ok(path);
    }
    let fresh = dir.join("launch.sh.new");
    let written = crate::private::file_options()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&fresh)
        .map_err(crate::private::explain_link)
        .and_then(|mut file| file.write_all(submit::LAUNCHER.as_bytes()))
        .and_then(|()| std::fs::rename(&fresh, &path));
    written.map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

impl Executor for SlurmExecutor {
    fn start(&self, id: JobId, attempt: u32, spec: JobSpec) {
        let _ = self.inbox.send(Msg::Start(Start {
            id,
            attempt,
            spec: Box::new(spec),
        }));
    }

    /// `Term` and `Kill` cancel the Slurm job (`scancel`: Slurm sends
    /// SIGTERM, then SIGKILL after its `KillWait`); `Stop` suspends it and
    /// `Cont` resumes it, if this executor suspended it.
    fn signal(&self, _id: JobId, handle: &Handle, signal: Signal) {
        if let Handle::Remote { id } = handle {
            let _ = self.signals.send((id.clone(), signal));
        }
    }

    /// Always follows the attempt: by its Slurm id when the log has one,
    /// else by looking for it (see the module documentation).
    fn reattach(&self, attempt: &RunningAttempt) -> bool {
        self.inbox
            .send(Msg::Follow {
                id: attempt.id,
                attempt: attempt.attempt,
                slurm_id: attempt.remote_id.clone(),
            })
            .is_ok()
    }

    /// Only Slurm's operators may suspend jobs: root and the cluster's
    /// `SlurmUser`.
    fn can_suspend(&self) -> Result<(), String> {
        let uid = self.shared.uid;
        let slurm_user = self.shared.config.get().and_then(|c| c.slurm_uid);
        if uid == 0 || slurm_user == Some(uid) {
            return Ok(());
        }
        Err(
            "pause --running is not supported for slurm queues: only root and Slurm's \
             SlurmUser may suspend jobs (scontrol suspend); pause without --running, which \
             starts nothing new and leaves running jobs be"
                .into(),
        )
    }
}

/// An attempt handed to Slurm and not yet seen to end.
#[derive(Debug)]
struct Tracked {
    /// The Mayfly job.
    id: JobId,
    /// Polls in a row that did not find it.
    misses: u8,
}

/// An attempt the log shows running without a Slurm id, being looked for.
#[derive(Debug)]
struct Searching {
    /// Which attempt.
    attempt: u32,
    /// Polls in a row that did not find it.
    misses: u8,
}

/// What one `sbatch` gave.
#[derive(Debug)]
struct Submitted {
    /// The job.
    id: JobId,
    /// Its Slurm id, or why it was not submitted.
    result: Result<String, String>,
}

/// What Slurm says of one followed job.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    /// Pending, running, suspended or still completing.
    Live,
    /// Ended like this.
    Ended(ExitOutcome),
    /// Not known to the controller (or known as another job: a restarted
    /// cluster reuses ids), nor to the job completion log.
    Missing,
}

/// What one poll learned.
#[derive(Debug)]
struct Polled {
    /// Of each followed job, by Slurm id; `Err` when `squeue` failed.
    jobs: Result<Vec<(String, Seen)>, String>,
    /// Of each attempt looked for: its Slurm id if found; `Err` when
    /// `squeue` failed.
    searches: Result<Vec<(JobId, Option<String>)>, String>,
}

/// The executor's task.
struct Actor {
    /// What it shares with its helpers.
    shared: Arc<Shared>,
    /// Starts and re-attachments.
    messages: mpsc::UnboundedReceiver<Msg>,
    /// How often to poll while it follows anything.
    poll_every: Duration,
    /// Starts waiting for a free `sbatch` slot.
    queued: VecDeque<Start>,
    /// `sbatch` runs under way.
    submits: JoinSet<Submitted>,
    /// Attempts followed, by Slurm id.
    tracked: BTreeMap<String, Tracked>,
    /// Attempts looked for, by job.
    searching: BTreeMap<JobId, Searching>,
    /// The poll under way, if one is (never more than one).
    polls: JoinSet<Polled>,
    /// True while polls fail, so that a failure is logged once, not every
    /// tick.
    failing: bool,
}

impl Actor {
    /// Runs until the executor is dropped.
    async fn run(mut self) {
        if let Ok(config) = fetch_config(&self.shared).await {
            let _ = self.shared.config.set(config);
        }
        let mut tick = tokio::time::interval(self.poll_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let busy = !self.tracked.is_empty() || !self.searching.is_empty();
            tokio::select! {
                message = self.messages.recv() => match message {
                    Some(Msg::Start(start)) => {
                        self.queued.push_back(start);
                        self.submit_more();
                    }
                    Some(Msg::Follow { id, attempt, slurm_id }) => self.follow(id, attempt, slurm_id),
                    None => break,
                },
                Some(done) = self.submits.join_next() => {
                    if let Ok(done) = done {
                        self.submitted(done);
                    }
                    self.submit_more();
                }
                Some(polled) = self.polls.join_next() => {
                    if let Ok(polled) = polled {
                        self.polled(polled);
                    }
                }
                _ = tick.tick(), if busy && self.polls.is_empty() => self.poll(),
            }
        }
    }

    /// Starts `sbatch` for queued starts while slots are free.
    fn submit_more(&mut self) {
        while self.submits.len() < MAX_SUBMITS {
            let Some(start) = self.queued.pop_front() else {
                return;
            };
            let shared = self.shared.clone();
            self.submits.spawn(async move {
                let id = start.id;
                let result = sbatch(&shared, start).await;
                Submitted { id, result }
            });
        }
    }

    /// An `sbatch` ended: reports the start (then follows the job) or the
    /// failure.
    fn submitted(&mut self, done: Submitted) {
        let Submitted { id, result } = done;
        match result {
            Ok(slurm_id) => {
                tracing::debug!(job = %id, %slurm_id, "submitted to Slurm");
                self.report(Report::Started {
                    id,
                    at: Where::Remote {
                        id: slurm_id.clone(),
                    },
                });
                self.track(slurm_id, id);
            }
            Err(reason) => self.report(Report::StartFailed {
                id,
                reason,
                transient: false,
            }),
        }
    }

    /// Follows a job the log shows running.
    fn follow(&mut self, id: JobId, attempt: u32, slurm_id: Option<String>) {
        match slurm_id {
            Some(slurm_id) => self.track(slurm_id, id),
            None => {
                tracing::warn!(job = %id, attempt, "no Slurm job id was logged for the attempt; looking for it by name");
                self.searching.insert(id, Searching { attempt, misses: 0 });
            }
        }
    }

    /// Follows Slurm job `slurm_id`, which runs job `id`.
    fn track(&mut self, slurm_id: String, id: JobId) {
        if self
            .tracked
            .insert(slurm_id, Tracked { id, misses: 0 })
            .is_none()
            && let Some(m) = &self.shared.metrics
        {
            m.executor_tracking(KIND, 1);
        }
    }

    /// Stops following Slurm job `slurm_id`; returns its Mayfly job.
    fn untrack(&mut self, slurm_id: &str) -> Option<JobId> {
        let gone = self.tracked.remove(slurm_id)?;
        if let Some(m) = &self.shared.metrics {
            m.executor_tracking(KIND, -1);
        }
        Some(gone.id)
    }

    /// Tells the driver.
    fn report(&self, report: Report) {
        // The driver is gone only when the daemon exits.
        let _ = self.shared.reports.send(report);
    }

    /// Starts one poll about everything followed and looked for.
    fn poll(&mut self) {
        if let Some(m) = &self.shared.metrics {
            m.executor_poll(KIND);
        }
        let jobs: Vec<(String, JobId)> = self
            .tracked
            .iter()
            .map(|(slurm_id, t)| (slurm_id.clone(), t.id))
            .collect();
        let searches: Vec<(JobId, u32)> = self
            .searching
            .iter()
            .map(|(id, s)| (*id, s.attempt))
            .collect();
        let shared = self.shared.clone();
        self.polls
            .spawn(async move { poll_once(&shared, &jobs, &searches).await });
    }

    /// Acts on what a poll learned: reports the ends, the attempts found,
    /// and the ones lost.
    fn polled(&mut self, polled: Polled) {
        let failure = [&polled.jobs.as_ref().err(), &polled.searches.as_ref().err()]
            .into_iter()
            .flatten()
            .next()
            .map(|e| e.to_string());
        match failure {
            Some(e) if !self.failing => {
                tracing::warn!(error = %e, "cannot ask Slurm about its jobs; trying again every tick");
                self.failing = true;
            }
            None if self.failing => {
                tracing::info!("Slurm answers again");
                self.failing = false;
            }
            _ => {}
        }
        for (slurm_id, seen) in polled.jobs.unwrap_or_default() {
            self.seen(&slurm_id, seen);
        }
        for (id, found) in polled.searches.unwrap_or_default() {
            self.searched(id, found);
        }
    }

    /// What a poll saw of Slurm job `slurm_id`.
    fn seen(&mut self, slurm_id: &str, seen: Seen) {
        let Some(tracked) = self.tracked.get_mut(slurm_id) else {
            return;
        };
        match seen {
            Seen::Live => tracked.misses = 0,
            Seen::Ended(outcome) => {
                if let Some(id) = self.untrack(slurm_id) {
                    tracing::debug!(job = %id, %slurm_id, ?outcome, "Slurm job ended");
                    self.report(Report::Exited {
                        id,
                        outcome,
                        usage: None,
                    });
                }
            }
            Seen::Missing => {
                tracked.misses += 1;
                let lost_it = tracked.misses >= MISSES_BEFORE_LOST;
                if lost_it && let Some(id) = self.untrack(slurm_id) {
                    let reason = format!(
                        "Slurm no longer knows its job {slurm_id} ({}): the cluster forgot it \
                         (restarted without its state, or purged it after MinJobAge) and its job \
                         completion log has no line for it; it may or may not have run",
                        parse::job_name(id)
                    );
                    tracing::warn!(job = %id, %slurm_id, "{reason}");
                    self.report(Report::Exited {
                        id,
                        outcome: lost(reason),
                        usage: None,
                    });
                }
            }
        }
    }

    /// What a poll found of attempt of `id` looked for.
    fn searched(&mut self, id: JobId, found: Option<String>) {
        let Some(searching) = self.searching.get_mut(&id) else {
            return;
        };
        match found {
            Some(slurm_id) => {
                tracing::info!(job = %id, %slurm_id, "found the attempt's Slurm job");
                self.searching.remove(&id);
                self.report(Report::Found {
                    id,
                    at: Where::Remote {
                        id: slurm_id.clone(),
                    },
                });
                self.track(slurm_id, id);
            }
            None => {
                searching.misses += 1;
                if searching.misses >= MISSES_BEFORE_LOST {
                    let attempt = searching.attempt;
                    self.searching.remove(&id);
                    let reason = format!(
                        "the daemon stopped after handing attempt {attempt} to Slurm and before \
                         logging its Slurm job id, and Slurm lists no job {} for it (it was \
                         never submitted, or ended longer ago than MinJobAge)",
                        parse::job_name(id)
                    );
                    tracing::warn!(job = %id, "{reason}");
                    self.report(Report::Exited {
                        id,
                        outcome: lost(reason),
                        usage: None,
                    });
                }
            }
        }
    }
}

/// The end of an attempt Slurm lost track of: `interrupted`, with `reason`.
fn lost(reason: String) -> ExitOutcome {
    ExitOutcome::Ended {
        state: JobState::Interrupted,
        exit_code: None,
        signal: None,
        reason,
    }
}

/// Submits one attempt: creates its output files (private, before Slurm
/// opens them for appending), runs `sbatch`, and returns the Slurm job id
/// or Slurm's own words on why not.
async fn sbatch(shared: &Shared, start: Start) -> Result<String, String> {
    let Start { id, attempt, spec } = start;
    for stream in [LogStream::Stdout, LogStream::Stderr] {
        let path = log_path(&shared.logs_dir, id, stream);
        crate::private::file_options()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| format!("cannot open output file {}: {e}", path.display()))?;
    }
    let at = submit::Attempt {
        id,
        attempt,
        partition: shared.partition.as_deref(),
        extra: &shared.args,
        logs_dir: &shared.logs_dir,
        launcher: &shared.launcher,
    };
    let args = submit::sbatch_args(&spec, &at);
    let env = submit::env_file(&spec, id, &shared.socket);
    let out = call(shared, "sbatch", args, Some(env), None).await?;
    if !out.status.success() {
        return Err(format!("sbatch refused the job: {}", one_line(&out.stderr)));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    parse::sbatch_id(&stdout).ok_or_else(|| {
        format!(
            "sbatch printed no job id ({:?}); whether it submitted the job is unknown",
            stdout.trim()
        )
    })
}

/// One tick's question to Slurm: *one* `squeue` about every followed job
/// (by their ids) — or, while attempts whose ids were not logged are
/// looked for, about every job of this user, which answers both — then
/// the job completion log about the followed jobs the controller no longer
/// has.
async fn poll_once(shared: &Shared, jobs: &[(String, JobId)], searches: &[(JobId, u32)]) -> Polled {
    if jobs.is_empty() && searches.is_empty() {
        return Polled {
            jobs: Ok(Vec::new()),
            searches: Ok(Vec::new()),
        };
    }
    let filter: Vec<OsString> = if searches.is_empty() {
        let ids: Vec<&str> = jobs.iter().map(|(slurm_id, _)| slurm_id.as_str()).collect();
        vec!["-j".into(), ids.join(",").into()]
    } else {
        vec!["-u".into(), shared.uid.to_string().into()]
    };
    let rows = match squeue(shared, &filter).await {
        Ok(rows) => rows,
        Err(e) => {
            return Polled {
                jobs: Err(e.clone()),
                searches: Err(e),
            };
        }
    };
    let mut seen = seen_in(jobs, &rows);
    if seen.iter().any(|(_, s)| *s == Seen::Missing) {
        from_jobcomp(shared, jobs, &mut seen).await;
    }
    Polled {
        jobs: Ok(seen),
        searches: Ok(found_in(shared, searches, &rows)),
    }
}

/// What `rows` say of each followed job: a row counts only with the job's
/// Slurm id *and* its name (a restarted cluster reuses ids).
fn seen_in(jobs: &[(String, JobId)], rows: &[Row]) -> Vec<(String, Seen)> {
    jobs.iter()
        .map(|(slurm_id, id)| {
            let name = parse::job_name(*id);
            let state = rows
                .iter()
                .find(|r| r.slurm_id == *slurm_id && r.name == name)
                .map_or(Seen::Missing, |r| {
                    parse::outcome(&r.state, &r.reason, r.exit_status)
                        .map_or(Seen::Live, Seen::Ended)
                });
            (slurm_id.clone(), state)
        })
        .collect()
}

/// Looks the missing jobs up in the job completion log, if the cluster
/// keeps one as a file this machine can read.
async fn from_jobcomp(shared: &Shared, jobs: &[(String, JobId)], seen: &mut [(String, Seen)]) {
    if shared.config.get().is_none()
        && let Ok(config) = fetch_config(shared).await
    {
        let _ = shared.config.set(config);
    }
    let Some(path) = shared.config.get().and_then(|c| c.jobcomp_file.clone()) else {
        return;
    };
    let text = match tokio::fs::read(&path).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) => {
            tracing::debug!(%path, error = %e, "cannot read Slurm's job completion log");
            return;
        }
    };
    for ((slurm_id, state), (_, id)) in seen.iter_mut().zip(jobs) {
        if *state != Seen::Missing {
            continue;
        }
        if let Some(end) = parse::jobcomp_end(&text, slurm_id, &parse::job_name(*id))
            && let Some(outcome) = parse::outcome(&end.state, "", end.exit_status)
        {
            *state = Seen::Ended(outcome);
        }
    }
}

/// The attempts whose Slurm id was not logged, found in `rows` (this
/// user's jobs): a job with the attempt's name, comment and output file;
/// the newest if several.
fn found_in(
    shared: &Shared,
    searches: &[(JobId, u32)],
    rows: &[Row],
) -> Vec<(JobId, Option<String>)> {
    searches
        .iter()
        .map(|&(id, attempt)| {
            let (name, comment) = (parse::job_name(id), parse::job_comment(id, attempt));
            let out = log_path(&shared.logs_dir, id, LogStream::Stdout);
            let found = rows
                .iter()
                .filter(|r| r.name == name && r.comment == comment)
                .filter(|r| Path::new(&r.stdout) == out)
                .filter_map(|r| r.slurm_id.parse::<u64>().ok())
                .max()
                .map(|n| n.to_string());
            (id, found)
        })
        .collect()
}

/// `squeue -h -t all -O …` with `filter`: the jobs it lists, finished ones
/// included. A filter naming only ids the controller has forgotten lists
/// none.
async fn squeue(shared: &Shared, filter: &[OsString]) -> Result<Vec<Row>, String> {
    let mut args: Vec<OsString> = vec!["-h".into(), "-t".into(), "all".into()];
    args.extend(filter.iter().cloned());
    args.extend(["-O".into(), parse::SQUEUE_FORMAT.into()]);
    let out = call(shared, "squeue", args, None, Some(CALL_TIMEOUT)).await?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        if stderr.contains("Invalid job id") {
            return Ok(Vec::new());
        }
        return Err(format!("squeue failed: {}", one_line(&out.stderr)));
    }
    Ok(parse::squeue_rows(&String::from_utf8_lossy(&out.stdout)))
}

/// `scontrol show config`, parsed.
async fn fetch_config(shared: &Shared) -> Result<ClusterConfig, String> {
    let args = vec!["show".into(), "config".into()];
    let out = call(shared, "scontrol", args, None, Some(CALL_TIMEOUT)).await?;
    if !out.status.success() {
        let e = one_line(&out.stderr);
        tracing::debug!(error = %e, "scontrol show config failed");
        return Err(e);
    }
    Ok(parse::cluster_config(&String::from_utf8_lossy(&out.stdout)))
}

/// Sends the signals asked for, in order, merging the ones that come
/// together into one call per kind: `scancel`, `scontrol suspend`,
/// `scontrol resume` (only of jobs it suspended).
async fn send_signals(shared: Arc<Shared>, mut signals: mpsc::UnboundedReceiver<(String, Signal)>) {
    let mut suspended: HashSet<String> = HashSet::new();
    while let Some(first) = signals.recv().await {
        let mut batch = vec![first];
        while let Ok(more) = signals.try_recv() {
            batch.push(more);
        }
        for (verb, ids) in merge(batch) {
            let ids: Vec<String> = match verb {
                Verb::Resume => ids
                    .into_iter()
                    .filter(|id| suspended.contains(id))
                    .collect(),
                _ => ids,
            };
            if ids.is_empty() {
                continue;
            }
            let (program, mut args): (&'static str, Vec<OsString>) = match verb {
                Verb::Cancel => ("scancel", Vec::new()),
                Verb::Suspend => ("scontrol", vec!["suspend".into()]),
                Verb::Resume => ("scontrol", vec!["resume".into()]),
            };
            match verb {
                Verb::Cancel => {
                    args.extend(ids.iter().map(OsString::from));
                    for id in &ids {
                        suspended.remove(id);
                    }
                }
                Verb::Suspend | Verb::Resume => args.push(ids.join(",").into()),
            }
            let jobs = ids.join(",");
            tracing::info!(?verb, %jobs, "asking Slurm");
            let done = call(&shared, program, args, None, Some(CALL_TIMEOUT)).await;
            let failed = match &done {
                Ok(out) if out.status.success() => None,
                Ok(out) => Some(one_line(&out.stderr)),
                Err(e) => Some(e.clone()),
            };
            match (verb, failed) {
                (Verb::Suspend, None) => suspended.extend(ids),
                (Verb::Resume, None) => {
                    for id in &ids {
                        suspended.remove(id);
                    }
                }
                (Verb::Cancel, None) => {}
                // A cancel of a job that has just ended fails harmlessly;
                // whatever else went wrong shows in the job's end.
                (Verb::Cancel, Some(e)) => tracing::debug!(%jobs, error = %e, "scancel"),
                (verb, Some(e)) => tracing::warn!(?verb, %jobs, error = %e, "Slurm refused"),
            }
        }
    }
}

/// What a signal asks of Slurm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verb {
    /// `scancel` (for `Term` and `Kill`).
    Cancel,
    /// `scontrol suspend` (`Stop`).
    Suspend,
    /// `scontrol resume` (`Cont`).
    Resume,
}

/// Signals in order as runs of one verb each, every job once per run.
fn merge(batch: Vec<(String, Signal)>) -> Vec<(Verb, Vec<String>)> {
    let mut runs: Vec<(Verb, Vec<String>)> = Vec::new();
    for (id, signal) in batch {
        let verb = match signal {
            Signal::Term | Signal::Kill => Verb::Cancel,
            Signal::Stop => Verb::Suspend,
            Signal::Cont => Verb::Resume,
        };
        match runs.last_mut() {
            Some((last, ids)) if *last == verb => {
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
            _ => runs.push((verb, vec![id])),
        }
    }
    runs
}

/// Runs Slurm command `program` with `args` (and `input` on its standard
/// input), counting it in the metrics. `Err` only when it could not run or
/// took longer than `limit`; a command that ran and failed is an `Ok` whose
/// status says so. With a `limit`, the command is killed when it passes it.
async fn call(
    shared: &Shared,
    program: &'static str,
    args: Vec<OsString>,
    input: Option<Vec<u8>>,
    limit: Option<Duration>,
) -> Result<Output, String> {
    use tokio::io::AsyncWriteExt;
    let started = Instant::now();
    let mut command = tokio::process::Command::new(program);
    command
        .args(&args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(limit.is_some());
    let run = async {
        let mut child = command.spawn().map_err(|e| {
            format!(
                "cannot run {program}: {e}; install Slurm's client commands where mayflyd \
                 finds them (its PATH)"
            )
        })?;
        let stdin = child.stdin.take();
        let feed = async move {
            if let (Some(mut stdin), Some(input)) = (stdin, input) {
                // A command that exits without reading all of it fails on
                // its own; its status says why.
                let _ = stdin.write_all(&input).await;
            }
        };
        let ((), out) = tokio::join!(feed, child.wait_with_output());
        out.map_err(|e| format!("lost track of {program}: {e}"))
    };
    let result = match limit {
        Some(limit) => tokio::time::timeout(limit, run)
            .await
            .unwrap_or_else(|_| Err(format!("{program} took longer than {limit:?}"))),
        None => run.await,
    };
    if let Some(m) = &shared.metrics {
        let ok = result.as_ref().is_ok_and(|out| out.status.success());
        m.executor_call(KIND, program, ok, started.elapsed());
    }
    result
}

/// A command's error output as one line: its lines joined, cut at 500
/// characters.
fn one_line(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let joined = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    if joined.is_empty() {
        return "it printed no error".into();
    }
    crate::core::shorten(&joined, 500).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_that_come_together_become_one_call_per_run_of_a_kind() {
        let s = |id: &str, signal| (id.to_string(), signal);
        let runs = merge(vec![
            s("1", Signal::Term),
            s("2", Signal::Term),
            s("1", Signal::Kill),
            s("3", Signal::Stop),
            s("4", Signal::Stop),
            s("3", Signal::Cont),
            s("5", Signal::Term),
        ]);
        assert_eq!(
            runs,
            vec![
                (Verb::Cancel, vec!["1".to_string(), "2".to_string()]),
                (Verb::Suspend, vec!["3".to_string(), "4".to_string()]),
                (Verb::Resume, vec!["3".to_string()]),
                (Verb::Cancel, vec!["5".to_string()]),
            ]
        );
    }

    #[test]
    fn error_output_becomes_one_line() {
        assert_eq!(
            one_line(b"sbatch: error: invalid partition specified: x\nsbatch: error: Batch job submission failed\n"),
            "sbatch: error: invalid partition specified: x; sbatch: error: Batch job submission failed"
        );
        assert_eq!(one_line(b"\n"), "it printed no error");
    }
}
