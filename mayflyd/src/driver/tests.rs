//! The driver's commit pipeline against a stand-in journal: the test sees
//! every command the driver hands to the log, in order, and decides when and
//! how each is acknowledged. Jobs are real (tiny `sh -c` scripts), so a
//! spawn is a spawn.
//!
//! Nothing here sleeps: every wait is on a channel, bounded by [`DEADLINE`].

use std::future::Future;
use std::path::PathBuf;
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::sync::Arc;

use mayfly_protocol::{Activity, Command, JobId, JobSpec, JobState, Response, decode_payload};
use tokio::sync::{mpsc, watch};
use tokio_util::task::TaskTracker;

use super::{BootInfo, Driver, DriverConfig, DriverInbox, InternalMsg};
use crate::core::{Action, Core, CoreConfig, Event, Signal};
use crate::exec::{Executors, Handle, LocalExecutor, Report, Where};
use crate::journal::{AckInfo, Journal, WalAck, WalCmd};
use crate::reply::{IpcList, Outgoing, Reply};
use crate::service::{Answer, ListQuery, Mayfly, View};
use crate::shutdown::Shutdown;

/// The longest any single step of a test may take.
const DEADLINE: Duration = Duration::from_secs(20);

/// One `Write` the driver handed to the journal.
#[derive(Debug)]
struct Write {
    /// Its ticket, for the acknowledgement.
    ticket: u64,
    /// Its records, decoded.
    events: Vec<Event>,
    /// Whether the driver asked for an fsync.
    sync: bool,
    /// Whether that fsync may wait to be shared.
    soon: bool,
}

/// A driver that is not running yet, and the other ends of its channels.
struct Parts {
    /// The driver.
    driver: Driver,
    /// The service handle over it.
    mayfly: Mayfly,
    /// What the driver hands to the journal.
    journal: std_mpsc::Receiver<WalCmd>,
    /// The journal's answers, as the test gives them.
    acks: mpsc::UnboundedSender<WalAck>,
    /// Keeps the driver's internal channel open.
    internal: mpsc::UnboundedSender<InternalMsg>,
    /// Where executors report, for a test that stands in for one.
    reports: mpsc::UnboundedSender<Report>,
    /// Job output files.
    logs: PathBuf,
    /// Where the jobs run; holds `logs`.
    dir: tempfile::TempDir,
}

impl Parts {
    /// A driver over an empty core that runs at most `concurrency` jobs,
    /// with a stand-in journal.
    fn new(concurrency: u32) -> Self {
        Self::with_callback(concurrency, None)
    }

    /// [`Parts::new`], with `on_finish` as the daemon's finish callback.
    fn with_callback(concurrency: u32, on_finish: Option<&str>) -> Self {
        let dir = tempfile::tempdir().expect("a temp dir");
        let logs = dir.path().join("logs");
        std::fs::create_dir(&logs).expect("the logs dir");
        let (commands_tx, commands_rx) = mpsc::channel(64);
        let (internal_tx, internal_rx) = mpsc::unbounded_channel();
        let (reports_tx, reports_rx) = mpsc::unbounded_channel();
        let (acks_tx, acks_rx) = mpsc::unbounded_channel();
        let (wal_tx, wal_rx) = std_mpsc::channel();
        let (view_tx, view_rx) = watch::channel(Arc::new(View::default()));
        let local = LocalExecutor::new(
            logs.clone(),
            dir.path().join("mayfly.sock"),
            None,
            reports_tx.clone(),
            TaskTracker::new(),
        )
        .expect("the executor's output thread starts");
        let mayfly = Mayfly::new(commands_tx, internal_tx.clone(), logs.clone(), view_rx);
        let core = Core::new(CoreConfig {
            concurrency,
            ..CoreConfig::default()
        });
        let driver = Driver::new(
            core,
            Journal::detached(wal_tx),
            Executors::new(
                local,
                reports_tx.clone(),
                crate::exec::RemoteContext {
                    state_dir: dir.path().to_path_buf(),
                    logs_dir: logs.clone(),
                    socket: dir.path().join("mayfly.sock"),
                    slurm_poll: Duration::from_secs(1),
                    metrics: None,
                    a2a_poll: Duration::from_secs(1),
                    a2a_retry_for: Duration::from_secs(1),
                },
            ),
            DriverConfig {
                quantum: Duration::from_millis(10),
                shutdown_timeout: Duration::from_secs(1),
                snapshot_bytes: u64::MAX,
                callbacks: crate::callback::CallbackConfig {
                    default_line: on_finish.map(str::to_string),
                    timeout: Duration::from_secs(5),
                    concurrency: 2,
                    logs_dir: logs.clone(),
                    socket: dir.path().join("mayfly.sock"),
                },
            },
            DriverInbox {
                commands: commands_rx,
                internal: internal_rx,
                internal_tx: internal_tx.clone(),
                reports: reports_rx,
                acks: acks_rx,
            },
            view_tx,
            Shutdown::new(Duration::from_secs(5)),
        );
        Self {
            driver,
            mayfly,
            journal: wal_rx,
            acks: acks_tx,
            internal: internal_tx,
            reports: reports_tx,
            logs,
            dir,
        }
    }
}

/// A driver on its own runtime, with the test standing in for the journal.
struct Rig {
    /// Runs the driver and the job waiters.
    rt: tokio::runtime::Runtime,
    /// The service handle over the driver.
    mayfly: Mayfly,
    /// What the driver hands to the journal.
    journal: std_mpsc::Receiver<WalCmd>,
    /// The journal's answers, as the test gives them.
    acks: mpsc::UnboundedSender<WalAck>,
    /// The driver's internal channel (a session asks for a listing's next
    /// chunk there).
    internal: mpsc::UnboundedSender<InternalMsg>,
    /// Where executors report, for a test that stands in for one.
    reports: mpsc::UnboundedSender<Report>,
    /// The driver task, aborted at drop.
    driver: tokio::task::JoinHandle<Core>,
    /// Job output files.
    logs: PathBuf,
    /// Where the jobs run; holds `logs`.
    dir: tempfile::TempDir,
}

impl Rig {
    /// A driver over an empty core that runs at most `concurrency` jobs.
    fn start(concurrency: u32) -> Self {
        Self::start_with(concurrency, None, |_| {})
    }

    /// [`Rig::start`], with `on_finish` as the daemon's finish callback.
    fn start_with_callback(concurrency: u32, on_finish: Option<&str>) -> Self {
        Self::start_with(concurrency, on_finish, |_| {})
    }

    /// [`Rig::start`], with `on_finish` as the daemon's finish callback and
    /// `setup` given the driver before it runs.
    fn start_with(
        concurrency: u32,
        on_finish: Option<&str>,
        setup: impl FnOnce(&mut Driver),
    ) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        let mut parts = Parts::with_callback(concurrency, on_finish);
        setup(&mut parts.driver);
        let driver = rt.spawn(parts.driver.run(BootInfo::default(), Vec::new()));
        Self {
            rt,
            mayfly: parts.mayfly,
            journal: parts.journal,
            acks: parts.acks,
            internal: parts.internal,
            reports: parts.reports,
            driver,
            logs: parts.logs,
            dir: parts.dir,
        }
    }

    /// A shell job running `script` in the rig's folder.
    fn shell(&self, script: &str) -> JobSpec {
        JobSpec::new(
            Command::Shell(script.to_string()),
            self.dir.path().to_string_lossy(),
            "default",
            50,
        )
    }

    /// Runs `fut` on the rig's runtime; panics after [`DEADLINE`].
    fn within<F: Future>(&self, what: &str, fut: F) -> F::Output {
        self.rt
            .block_on(async { tokio::time::timeout(DEADLINE, fut).await })
            .unwrap_or_else(|_| panic!("{what}: nothing within {DEADLINE:?}"))
    }

    /// Submits `specs` as one batch; the answer comes once durable.
    fn submit(&self, specs: Vec<JobSpec>) -> Answer<Vec<JobId>> {
        self.within(
            "handing a submit to the driver",
            self.mayfly.submit_batch(specs),
        )
    }

    /// Starts a listing as the Unix-socket door does; its frames arrive on
    /// the returned receiver.
    fn list(&self, query: ListQuery, header: bool) -> mpsc::UnboundedReceiver<Outgoing> {
        let (reply, frames) = Reply::new();
        self.within(
            "handing a listing to the driver",
            self.mayfly
                .list_into(query, header, Box::new(IpcList(reply))),
        );
        frames
    }

    /// The next frame of a listing on `rx`.
    fn frame(&self, rx: &mut mpsc::UnboundedReceiver<Outgoing>) -> Response {
        match self
            .within("a response", rx.recv())
            .expect("the driver dropped the reply channel")
        {
            Outgoing::Response(response) => response,
            Outgoing::Frame(frame) => {
                decode_payload(&frame[4..]).expect("a frame the driver encoded")
            }
            Outgoing::More(cursor) => panic!("a listing longer than expected: {cursor:?}"),
        }
    }

    /// The next command the driver hands to the journal.
    fn next_cmd(&self) -> WalCmd {
        self.journal
            .recv_timeout(DEADLINE)
            .expect("the driver handed nothing to the journal")
    }

    /// The next command, which must be a `Write`.
    fn next_write(&self) -> Write {
        match self.next_cmd() {
            WalCmd::Write {
                ticket,
                records,
                sync,
                soon,
            } => Write {
                ticket,
                events: records
                    .iter()
                    .map(|r| decode_payload(r).expect("a record decodes as an event"))
                    .collect(),
                sync,
                soon,
            },
            WalCmd::Snapshot { .. } => panic!("expected a write, got a snapshot"),
            WalCmd::Reopen { .. } => panic!("expected a write, got a reopen"),
            WalCmd::Stop { .. } => panic!("expected a write, got a stop"),
        }
    }

    /// The writes handed over until one holds an event matching `last`,
    /// acknowledging none of them.
    fn writes_until(&self, last: impl Fn(&Event) -> bool) -> Vec<Write> {
        let mut writes = Vec::new();
        loop {
            let write = self.next_write();
            let done = write.events.iter().any(&last);
            writes.push(write);
            if done {
                return writes;
            }
        }
    }

    /// Acknowledges ticket `ticket` as written (and fsynced, with `synced`).
    fn ack(&self, ticket: u64, synced: bool) {
        let info = AckInfo {
            synced,
            bytes_since_snapshot: 0,
            fsync: synced.then_some(Duration::ZERO),
            snapshot_bytes: 0,
        };
        self.acks
            .send(WalAck {
                ticket,
                result: Ok(info),
            })
            .expect("the driver is running");
    }

    /// Reports that the write of ticket `ticket` failed.
    fn fail(&self, ticket: u64, error: &str) {
        self.acks
            .send(WalAck {
                ticket,
                result: Err(error.to_string()),
            })
            .expect("the driver is running");
    }

    /// The state of job `id`, asked through a status request (which the
    /// driver answers without waiting for the journal).
    fn state(&self, id: u64) -> JobState {
        let query = ListQuery {
            ids: vec![JobId(id)],
            ..ListQuery::default()
        };
        let mut rx = self.list(query, false);
        match self.frame(&mut rx) {
            Response::Jobs(jobs) if jobs.len() == 1 => jobs[0].state,
            other => panic!("status of job {id}: {other:?}"),
        }
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// Whether `event` is `Started` for job `id`.
fn started(event: &Event, id: u64) -> bool {
    matches!(event, Event::Started { id: j, .. } if j.0 == id)
}

/// Whether `event` is `Exited` for job `id`.
fn exited(event: &Event, id: u64) -> bool {
    matches!(event, Event::Exited { id: j, .. } if j.0 == id)
}

/// Whether `event` is `Spawned` for job `id`.
fn spawned(event: &Event, id: u64) -> bool {
    matches!(event, Event::Spawned { id: j, .. } if j.0 == id)
}

/// The position (write, record) of the first event matching `pred`.
fn position(writes: &[Write], pred: impl Fn(&Event) -> bool) -> Option<(usize, usize)> {
    writes.iter().enumerate().find_map(|(w, write)| {
        write
            .events
            .iter()
            .position(&pred)
            .map(|record| (w, record))
    })
}

/// Submits `specs` as one batch, acknowledges its fsync, and checks the
/// answer and the write: the submits are fsynced and the first job's start
/// rides in the same group.
fn submit_acknowledged(rig: &Rig, specs: Vec<JobSpec>) -> Write {
    let n = specs.len();
    let answer = rig.submit(specs);
    let write = rig.next_write();
    assert!(write.sync, "a client's submit is fsynced: {write:?}");
    let submitted = write
        .events
        .iter()
        .filter(|e| matches!(e, Event::Submitted { .. }))
        .count();
    assert_eq!(submitted, n, "{write:?}");
    rig.ack(write.ticket, true);
    let ids = rig.within("the submit's answer", answer).expect("accepted");
    assert_eq!(ids.len(), n);
    write
}

/// Every frame of a listing up to `End`, asking for each next chunk as a
/// session would; returns the frames (`More` markers left out) and how many
/// times the driver was asked for more.
fn whole_listing(rig: &Rig, query: ListQuery, header: bool) -> (Vec<Response>, usize) {
    let mut rx = rig.list(query, header);
    let mut frames = Vec::new();
    let mut asked = 0;
    loop {
        let out = rig
            .within("a listing frame", rx.recv())
            .expect("the driver dropped the reply channel");
        let response = match out {
            Outgoing::More(cursor) => {
                asked += 1;
                rig.mayfly.list_more(cursor);
                continue;
            }
            Outgoing::Frame(frame) => decode_payload(&frame[4..]).expect("a listing frame"),
            Outgoing::Response(response) => response,
        };
        let end = matches!(response, Response::End | Response::Error(_));
        frames.push(response);
        if end {
            return (frames, asked);
        }
    }
}

#[test]
fn a_long_listing_goes_out_one_chunk_at_a_time_as_the_session_asks() {
    let rig = Rig::start(1);
    let later = mayfly_protocol::Timestamp(mayfly_protocol::Timestamp::now().0 + 3_600_000);
    let specs: Vec<JobSpec> = (0..300)
        .map(|_| JobSpec {
            not_before: Some(later),
            ..rig.shell("true")
        })
        .collect();
    let answer = rig.submit(specs);
    let write = rig.next_write();
    rig.ack(write.ticket, true);
    let ids = rig.within("the submit's answer", answer).expect("accepted");
    assert_eq!(ids.len(), 300);

    let (frames, asked) = whole_listing(&rig, ListQuery::default(), false);
    let chunks: Vec<Vec<u64>> = frames
        .iter()
        .filter_map(|f| match f {
            Response::Jobs(jobs) => Some(jobs.iter().map(|j| j.id.0).collect()),
            _ => None,
        })
        .collect();
    assert!(matches!(frames.last(), Some(Response::End)), "{frames:?}");
    assert_eq!(chunks[0].len(), 64, "the first chunk is small");
    assert_eq!(asked, chunks.len() - 1, "one request for each later chunk");
    let ids: Vec<u64> = chunks.concat();
    assert_eq!(ids, (1..=300).collect::<Vec<_>>());

    // By name, and a dump with its header first.
    let named: Vec<mayfly_protocol::JobId> = (1..=300).rev().map(mayfly_protocol::JobId).collect();
    let query = ListQuery {
        ids: named,
        ..ListQuery::default()
    };
    let (frames, asked) = whole_listing(&rig, query, false);
    let ids: Vec<u64> = frames
        .iter()
        .filter_map(|f| match f {
            Response::Jobs(jobs) => Some(jobs.iter().map(|j| j.id.0)),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(ids, (1..=300).rev().collect::<Vec<_>>());
    assert!(asked >= 1);
    let (frames, _) = whole_listing(&rig, ListQuery::default(), true);
    assert!(matches!(frames[0], Response::State(_)), "{:?}", frames[0]);
    let listed: usize = frames
        .iter()
        .map(|f| match f {
            Response::Jobs(jobs) => jobs.len(),
            _ => 0,
        })
        .sum();
    assert_eq!(listed, 300);
}

#[test]
fn a_job_the_daemon_starts_does_not_wait_for_the_journal_but_its_start_is_logged_first() {
    let rig = Rig::start(1);
    let first = submit_acknowledged(&rig, vec![rig.shell("exit 0"), rig.shell("echo ran")]);
    assert!(first.events.iter().any(|e| started(e, 1)), "{first:?}");

    // From here on nothing is acknowledged: job 2 starts on job 1's exit,
    // a group of the daemon's own records, and must not wait for the log.
    let writes = rig.writes_until(|e| exited(e, 2));
    assert!(
        writes.iter().all(|w| !w.sync),
        "the daemon's own records are not fsynced: {writes:?}"
    );
    let start = position(&writes, |e| started(e, 2)).expect("job 2's Started record");
    let spawn = position(&writes, |e| spawned(e, 2)).expect("job 2's Spawned record");
    let exit = position(&writes, |e| exited(e, 2)).expect("job 2's Exited record");
    assert!(
        start < spawn && spawn < exit,
        "records out of order: Started {start:?}, Spawned {spawn:?}, Exited {exit:?}"
    );
    let out = std::fs::read_to_string(rig.logs.join("2.out")).expect("job 2's output");
    assert_eq!(out, "ran\n");
    assert_eq!(rig.state(2), JobState::Succeeded);
}

#[test]
fn an_end_told_to_a_wait_frees_its_slot_at_once_and_is_told_once_durable() {
    let rig = Rig::start(1);
    submit_acknowledged(&rig, vec![rig.shell("exit 0"), rig.shell("echo ran")]);
    let mut told = rig.within(
        "handing a wait to the driver",
        rig.mayfly.wait(vec![JobId(1)]),
    );
    // Job 1's end is fsynced for the wait, but job 2 starts, runs and
    // ends without that fsync being acknowledged.
    let writes = rig.writes_until(|e| exited(e, 2));
    let (end, _) = position(&writes, |e| exited(e, 1)).expect("job 1's Exited record");
    let end = &writes[end];
    assert!(end.sync && end.soon, "{end:?}");
    assert!(position(&writes, |e| spawned(e, 2)).is_some(), "{writes:?}");
    assert!(
        matches!(
            told.try_recv(),
            Err(tokio::sync::mpsc::error::TryRecvError::Empty)
        ),
        "the wait heard of an end before it was durable"
    );
    rig.ack(end.ticket, true);
    let job = rig
        .within("the wait's report", told.recv())
        .expect("a report")
        .expect("job 1");
    assert_eq!((job.id, job.state), (JobId(1), JobState::Succeeded));
}

#[test]
fn a_submit_is_answered_and_started_only_once_its_fsync_is_acknowledged() {
    let rig = Rig::start(1);
    let mut answer = rig.within(
        "handing a submit to the driver",
        rig.mayfly.submit(rig.shell("echo ran")),
    );
    let write = rig.next_write();
    assert!(
        write.sync && !write.soon,
        "a client's change is fsynced at once: {write:?}"
    );
    assert!(write.events.iter().any(|e| started(e, 1)), "{write:?}");

    // A status round trip: the driver has committed the submit's group by
    // the time it answers, yet holds the answer and the spawn.
    assert_eq!(rig.state(1), JobState::Running);
    assert!(
        rig.rt
            .block_on(async { futures::poll!(&mut answer) })
            .is_pending(),
        "the submit was answered before its fsync"
    );
    assert!(
        matches!(rig.journal.try_recv(), Err(std_mpsc::TryRecvError::Empty)),
        "something was logged (a spawn?) before the fsync"
    );

    rig.ack(write.ticket, true);
    let id = rig.within("the submit's answer", answer).expect("accepted");
    assert_eq!(id.0, 1);
    rig.writes_until(|e| exited(e, 1));
    let out = std::fs::read_to_string(rig.logs.join("1.out")).expect("job 1's output");
    assert_eq!(out, "ran\n");
}

#[test]
fn after_a_storage_failure_acted_on_facts_are_logged_again_and_stale_answers_ignored() {
    let rig = Rig::start(1);
    let durable = submit_acknowledged(&rig, vec![rig.shell("exit 0")]);
    let writes = rig.writes_until(|e| exited(e, 1));
    let failed = writes.first().expect("a write after the submit");

    // The disk fails under the daemon's own records, which were acted on
    // already: job 1 ran and exited.
    rig.fail(failed.ticket, "disk full");
    let (config, reply) = match rig.next_cmd() {
        WalCmd::Reopen { config, reply } => (config, reply),
        _ => panic!("a failed write must make the driver rebuild from the log"),
    };
    // What is on disk: only the fsynced submit group.
    let mut on_disk = Core::new(config);
    for event in &durable.events {
        on_disk.apply(event).expect("the durable events apply");
    }
    reply
        .send(Ok(on_disk))
        .expect("the driver waits for the rebuild");

    let relogged = rig.next_write();
    assert!(
        relogged.events.iter().any(|e| spawned(e, 1))
            && relogged.events.iter().any(|e| exited(e, 1)),
        "the facts acted on are logged again: {relogged:?}"
    );

    // The journal's answers to writes the failure already covered are
    // stale: they must not start a second rebuild (the driver would then
    // wait for a reopen, and not answer the status below).
    let stale = writes.last().expect("the exit's write").ticket;
    rig.fail(stale, "disk full");
    assert_eq!(rig.state(1), JobState::Succeeded);
    assert!(
        matches!(rig.journal.try_recv(), Err(std_mpsc::TryRecvError::Empty)),
        "a stale failure was acted on again"
    );
}

#[test]
fn a_signal_asked_for_while_a_job_is_starting_goes_out_once_its_pid_is_known() {
    let Parts {
        mut driver, dir, ..
    } = Parts::new(1);
    let spec = JobSpec::new(
        Command::Argv(
            vec!["sleep".into(), "30".into()]
                .try_into()
                .expect("a program"),
        ),
        dir.path().to_string_lossy(),
        "default",
        50,
    );
    let now = mayfly_protocol::Timestamp::now();
    let submitted = driver.core.decide_submit(now, spec).expect("a valid job");
    let id = submitted.job_id().expect("the new job's id");
    driver.core.apply(&submitted).expect("the submit applies");
    let start = driver.core.next_start(now).expect("the job may start");
    driver.core.apply(&start).expect("the start applies");
    while driver.core.poll_action().is_some() {}

    // The executor has been asked to start it; its pid is not known yet.
    driver.processes.starting(id, 1);
    driver.run_action(Action::Signal {
        id,
        signal: Signal::Term,
    });

    // Stand in for the executor: the process it started.
    let mut child = std::process::Command::new("sleep")
        .arg("30")
        .process_group(0)
        .spawn()
        .expect("sleep starts");
    driver.on_report(Report::Started {
        id,
        at: Where::Process {
            pid: child.id(),
            start_ticks: None,
        },
    });
    assert_eq!(
        driver.processes.route(id, Signal::Cont),
        super::processes::Route::To(Handle::Process { pgid: child.id() })
    );
    assert_eq!(driver.core.job_info(id).unwrap().pid, Some(child.id()));

    let deadline = std::time::Instant::now() + DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for sleep") {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the SIGTERM asked for while the job was starting never arrived"
        );
        // A poll bounded by the deadline: std has no wait with a timeout.
        std::thread::sleep(Duration::from_millis(2));
    };
    assert_eq!(status.signal(), Some(15), "{status:?}");
}

/// Polls `done` until it holds; panics after [`DEADLINE`] naming `what`.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + DEADLINE;
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: not within {DEADLINE:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn the_output_files_of_the_jobs_next_in_line_exist_before_they_start() {
    let rig = Rig::start(1);
    // Job 1 holds the only slot until the test creates `release`.
    let hold = "i=0; while [ ! -e release ] && [ $i -lt 2000 ]; do sleep 0.01; i=$((i+1)); done";
    submit_acknowledged(
        &rig,
        vec![
            rig.shell(hold),
            rig.shell("echo two"),
            rig.shell("echo three"),
        ],
    );
    let queued = [2, 3].map(|id| rig.logs.join(format!("{id}.out")));
    wait_until("the queued jobs' output files", || {
        queued.iter().all(|path| path.exists())
    });
    assert_eq!(rig.state(2), JobState::Queued, "job 2 started early");
    assert_eq!(rig.state(3), JobState::Queued, "job 3 started early");
    for path in &queued {
        let text = std::fs::read_to_string(path).expect("a prepared file");
        assert_eq!(
            text,
            "",
            "{} was written before its job ran",
            path.display()
        );
    }

    std::fs::write(rig.dir.path().join("release"), "").expect("release job 1");
    rig.writes_until(|e| exited(e, 3));
    let out = std::fs::read_to_string(&queued[1]).expect("job 3's output");
    assert_eq!(out, "three\n");
}

/// The activity of job `id` in `records`, by event name, with the finish
/// (if any) for its fields.
fn job_activity(
    records: &[mayfly_protocol::ActivityRecord],
    id: u64,
) -> (Vec<&'static str>, Option<&Activity>) {
    use mayfly_protocol::JobId as J;
    let mut names = Vec::new();
    let mut finished = None;
    for record in records {
        let of_job = match &record.event {
            Activity::JobSubmitted { id: j, .. }
            | Activity::JobQueued { id: j }
            | Activity::JobWaiting { id: j }
            | Activity::JobStarted { id: j, .. }
            | Activity::JobRetrying { id: j, .. }
            | Activity::JobStopRequested { id: j, .. } => *j == J(id),
            Activity::JobFinished { id: j, .. } => {
                if *j == J(id) {
                    finished = Some(&record.event);
                }
                *j == J(id)
            }
            _ => false,
        };
        if of_job {
            names.push(record.event.name());
        }
    }
    (names, finished)
}

#[test]
fn a_retried_job_tells_its_whole_life_to_the_activity_log() {
    let rig = Rig::start(1);
    let (tx, rx) = tokio::sync::oneshot::channel();
    rig.internal
        .send(InternalMsg::SubscribeEvents(tx))
        .expect("the driver is running");
    let (_, mut events) = rig.within("a subscription", rx).expect("subscribed");
    let mut spec = rig.shell("exit 3");
    spec.retries = 1;
    spec.retry_delay_ms = 0;
    submit_acknowledged(&rig, vec![spec]);
    rig.writes_until(|e| matches!(e, Event::Exited { .. }));
    rig.writes_until(|e| matches!(e, Event::Exited { .. }));
    assert_eq!(rig.state(1), JobState::Failed);

    let mut records = Vec::new();
    while let Ok(record) = events.try_recv() {
        records.push(record);
    }
    let (names, finished) = job_activity(&records, 1);
    assert_eq!(
        names,
        [
            "JobSubmitted",
            "JobQueued",
            "JobStarted",
            "JobRetrying",
            "JobQueued",
            "JobStarted",
            "JobFinished"
        ],
        "{records:#?}"
    );
    match finished {
        Some(Activity::JobFinished {
            state,
            exit_code,
            queue,
            ran_ms,
            ..
        }) => {
            assert_eq!(*state, JobState::Failed);
            assert_eq!(*exit_code, Some(3));
            assert_eq!(queue, "default");
            assert!(ran_ms.is_some(), "{finished:?}");
        }
        other => panic!("no JobFinished: {other:?}"),
    }
}

/// A remote executor that runs nothing: it notes the attempts it is asked
/// to start, and the test reports for it.
#[derive(Debug, Default)]
struct StandIn {
    /// The jobs it was asked to start, in order.
    starts: std::sync::Mutex<Vec<JobId>>,
}

impl crate::exec::Executor for StandIn {
    fn start(&self, id: JobId, _attempt: u32, _spec: JobSpec) {
        self.starts.lock().expect("not poisoned").push(id);
    }

    fn signal(&self, _id: JobId, _handle: &Handle, _signal: Signal) {}
}

/// Whether `record` tells that job `id` started.
fn tells_start(record: &mayfly_protocol::ActivityRecord, id: u64) -> bool {
    matches!(&record.event, Activity::JobStarted { id: j, .. } if j.0 == id)
}

/// A job of a queue run elsewhere (a Slurm cluster): its start is fsynced
/// before the executor is asked — also when the daemon starts it on its
/// own, as a slot frees — and it counts as started (`JobStarted`) only
/// once the remote id its executor reports is fsynced too.
#[test]
fn a_remote_start_is_durable_before_it_is_handed_over_and_told_after_its_id_is() {
    let slurm = mayfly_protocol::ExecutorSpec::Slurm {
        partition: None,
        args: Vec::new(),
    };
    let stand_in = Arc::new(StandIn::default());
    let rig = Rig::start_with(1, None, |driver| {
        driver.executors.insert(slurm.clone(), stand_in.clone());
    });
    let answer = rig.within(
        "handing a queue add to the driver",
        rig.mayfly.queue_set(mayfly_protocol::QueueSetRequest {
            name: "hpc".into(),
            concurrency: Some(Some(1)),
            create: true,
            executor: Some(slurm),
        }),
    );
    let write = rig.next_write();
    rig.ack(write.ticket, true);
    rig.within("the queue add's answer", answer)
        .expect("queue added");
    let (tx, rx) = tokio::sync::oneshot::channel();
    rig.internal
        .send(InternalMsg::SubscribeEvents(tx))
        .expect("the driver is running");
    let (_, mut events) = rig.within("a subscription", rx).expect("subscribed");

    let mut spec = rig.shell("true");
    spec.queue = "hpc".into();
    let answer = rig.within("handing a submit to the driver", rig.mayfly.submit(spec));
    let write = rig.next_write();
    assert!(write.sync, "{write:?}");
    assert!(write.events.iter().any(|e| started(e, 1)), "{write:?}");
    assert_eq!(rig.state(1), JobState::Running);
    assert!(
        stand_in.starts.lock().expect("not poisoned").is_empty(),
        "handed over before its start was durable"
    );
    rig.ack(write.ticket, true);
    rig.within("the submit's answer", answer).expect("accepted");
    wait_until("the executor to be asked", || {
        !stand_in.starts.lock().expect("not poisoned").is_empty()
    });

    rig.reports
        .send(Report::Started {
            id: JobId(1),
            at: Where::Remote { id: "4711".into() },
        })
        .expect("the driver is running");
    let write = rig.next_write();
    assert!(write.sync, "a remote id is fsynced: {write:?}");
    assert!(
        write.events.iter().any(|e| matches!(
            e,
            Event::Attached { id, remote_id } if id.0 == 1 && remote_id == "4711"
        )),
        "{write:?}"
    );
    // A status round trip: the driver has handled the report by now.
    rig.state(1);
    let mut told = Vec::new();
    while let Ok(record) = events.try_recv() {
        told.push(record);
    }
    assert!(
        !told.iter().any(|r| tells_start(r, 1)),
        "told started before its remote id was durable: {told:#?}"
    );
    rig.ack(write.ticket, true);
    let record = rig.within("JobStarted", async {
        loop {
            let record = events.recv().await.expect("the driver is running");
            if tells_start(&record, 1) {
                return record;
            }
        }
    });
    assert!(tells_start(&record, 1), "{record:?}");

    // Job 2 waits for the queue's one slot; job 1's end frees it, and the
    // daemon's own start of job 2 is fsynced before the handover too.
    let mut spec = rig.shell("true");
    spec.queue = "hpc".into();
    let answer = rig.within("handing a submit to the driver", rig.mayfly.submit(spec));
    let write = rig.next_write();
    rig.ack(write.ticket, true);
    rig.within("the submit's answer", answer).expect("accepted");
    assert_eq!(rig.state(2), JobState::Queued);
    rig.reports
        .send(Report::Exited {
            id: JobId(1),
            outcome: crate::core::ExitOutcome::Code(0),
            usage: None,
        })
        .expect("the driver is running");
    let write = rig.next_write();
    assert!(write.events.iter().any(|e| exited(e, 1)), "{write:?}");
    assert!(write.events.iter().any(|e| started(e, 2)), "{write:?}");
    assert!(write.sync, "a remote start is fsynced: {write:?}");
    assert_eq!(rig.state(2), JobState::Running);
    assert_eq!(
        *stand_in.starts.lock().expect("not poisoned"),
        [JobId(1)],
        "handed over before its start was durable"
    );
    rig.ack(write.ticket, true);
    wait_until("the executor to be asked for job 2", || {
        stand_in.starts.lock().expect("not poisoned").len() == 2
    });
}

#[test]
fn a_finish_callback_runs_once_its_jobs_end_is_durable_and_is_then_logged_done() {
    let rig = Rig::start_with_callback(1, Some("echo \"$MAYFLY_JOB_STATE\" >> called"));
    submit_acknowledged(&rig, vec![rig.shell("exit 3")]);
    let called = rig.dir.path().join("called");
    let writes = rig.writes_until(|e| exited(e, 1));
    let end = writes.last().expect("the write with the exit");
    let due = end
        .events
        .iter()
        .position(|e| matches!(e, Event::CallbackDue { id } if id.0 == 1));
    let exit = end.events.iter().position(|e| exited(e, 1));
    assert!(
        due.is_some() && due > exit,
        "the callback is owed in the group of the end, after it: {end:?}"
    );
    // Not acknowledged yet: the end could still be lost, so no callback.
    for write in &writes[..writes.len() - 1] {
        rig.ack(write.ticket, true);
    }
    if let Ok(WalCmd::Write { records, .. }) = rig.journal.recv_timeout(Duration::from_millis(300))
    {
        let events: Vec<Event> = records.iter().map(|r| decode_payload(r).unwrap()).collect();
        panic!("written before the end is durable: {events:?}");
    }
    assert!(
        !called.exists(),
        "the callback ran before the end was durable"
    );
    rig.ack(end.ticket, true);
    let done = rig.writes_until(|e| matches!(e, Event::CallbackDone { id } if id.0 == 1));
    assert_eq!(
        std::fs::read_to_string(&called).expect("the callback ran"),
        "failed\n"
    );
    for write in done {
        rig.ack(write.ticket, true);
    }
}
