//! The journal: the daemon's side of the write-ahead log.
//!
//! The [`Wal`] itself is blocking file I/O, so it lives on a dedicated thread
//! (never on the async runtime). The driver sends it [`WalCmd`]s and gets
//! [`WalAck`]s back, in order: for every write that asked for an fsync, for
//! every snapshot, and for every write that failed. A write without an fsync
//! only lands in the log's memory buffer, so nothing waits for it: it is
//! queued, in order, without waking the thread (a wakeup per job start and
//! exit showed up as preempted workers), its success is not acknowledged,
//! and the next command that needs the thread — an fsync (the WAL flusher's
//! tick at the latest), a snapshot, a stop — or a long enough queue carries
//! it along. This module owns:
//!
//! - **recovery** ([`recover`]): open the log, load the snapshot into a
//!   [`Core`], replay every later record through the same `Core::apply` the
//!   live daemon uses;
//! - **group commit**: the thread takes every command that is waiting,
//!   appends all their records, and fsyncs *once* if any of them asked for
//!   durability, then acknowledges those that asked;
//! - **failure mode**: after a failed write or fsync the log has dropped
//!   everything since its last sync, so the thread refuses further writes
//!   until the driver has rebuilt its state from disk ([`WalCmd::Reopen`]) —
//!   otherwise a later record could depend on one that was lost.

use std::path::{Path, PathBuf};
use std::sync::Arc;
#[cfg(test)]
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use mayfly_protocol::encode_payload;
use tokio::sync::{mpsc, oneshot};

use crate::core::{Core, CoreConfig, CoreSnapshot, Event};
use crate::metrics::Metrics;
use crate::wal::{Recovery, SyncStats, Wal, WalError, WalOptions};

/// Why the state could not be recovered at start-up.
#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    /// The log could not be opened or read (damage, version, I/O).
    #[error("cannot recover the job state: {0}")]
    Wal(#[from] WalError),
}

/// What recovery produced.
#[derive(Debug)]
pub struct Recovered {
    /// The open log, ready for appends.
    pub wal: Wal,
    /// The rebuilt state. Its pending actions were discarded: nothing is
    /// re-spawned or re-signalled by a replay.
    pub core: Core,
    /// Figures for the log line.
    pub stats: Recovery,
}

/// Opens the log in `dir` and rebuilds the core from it.
pub fn recover(dir: &Path, opts: WalOptions, config: CoreConfig) -> Result<Recovered, WalError> {
    // Both callbacks build the same core: the snapshot replaces it, records
    // apply to it. Open calls them one at a time.
    let core = std::cell::RefCell::new(Core::new(config.clone()));
    let (wal, stats) = Wal::open(
        dir,
        opts,
        |format, snapshot| -> Result<(), String> {
            *core.borrow_mut() = restore_snapshot(config.clone(), format, snapshot)?;
            Ok(())
        },
        |format, record| -> Result<(), String> {
            let event = decode_event(format, record)?;
            core.borrow_mut().apply(&event).map_err(|e| e.to_string())
        },
    )?;
    let mut core = core.into_inner();
    while core.poll_action().is_some() {}
    core.take_transitions();
    Ok(Recovered { wal, core, stats })
}

/// Builds a core from a snapshot's payload in `format` (what [`Wal::open`]
/// hands over once the file's checksum passed): decode, then check and
/// rebuild. Public so the snapshot fuzz target drives exactly what
/// recovery runs.
pub fn restore_snapshot(config: CoreConfig, format: u8, payload: &[u8]) -> Result<Core, String> {
    let snap =
        CoreSnapshot::decode(format, payload).map_err(|e| format!("undecodable snapshot: {e}"))?;
    Core::from_snapshot(config, snap).map_err(|e| format!("inconsistent snapshot: {e}"))
}

/// Decodes a log record whose payload is in event `format` (the record's
/// version byte) into the event [`encode_event`] wrote. Public so the WAL
/// record fuzz target drives exactly what recovery runs.
pub fn decode_event(format: u8, record: &[u8]) -> Result<Event, String> {
    Event::decode(format, record).map_err(|e| format!("undecodable event: {e}"))
}

/// Encodes an event as a log record.
///
/// # Panics
///
/// If bincode refuses the event. Events are plain data whose every
/// sequence has a known length, so this is a bug, not a condition: the
/// driver stops (the daemon exits non-zero, having acknowledged nothing
/// that is not in the log) rather than write a record recovery could not
/// read back. The WAL fuzz target encodes arbitrary events to hold this.
pub fn encode_event(event: &Event) -> Vec<u8> {
    match encode_payload(event) {
        Ok(record) => record,
        Err(e) => panic!("cannot encode {event:?} for the log: {e}"),
    }
}

/// A command for the journal thread.
pub enum WalCmd {
    /// Append `records`; with `sync`, make them (and everything before)
    /// durable and acknowledge. Without `sync` only a failure is answered.
    Write {
        /// Echoed in the ack.
        ticket: u64,
        /// Encoded events.
        records: Vec<Vec<u8>>,
        /// Whether to fsync.
        sync: bool,
        /// With `sync`: the fsync may wait until [`SYNC_SOON`] after the
        /// previous such one, to be shared with the writes that come meanwhile
        /// (for replies that tell of the daemon's own facts, not for a
        /// client's change).
        soon: bool,
    },
    /// Write a snapshot covering everything appended so far.
    Snapshot {
        /// Echoed in the ack.
        ticket: u64,
        /// The state to write (encoded on the journal thread, off the driver).
        snapshot: Box<CoreSnapshot>,
    },
    /// Close and reopen the log, returning the state it holds (after a
    /// failure, to drop what did not reach the disk). Leaves failure mode.
    Reopen {
        /// Settings for the rebuilt core.
        config: CoreConfig,
        /// Where the rebuilt core goes.
        reply: oneshot::Sender<Result<Core, String>>,
    },
    /// Sync what is pending and stop.
    Stop {
        /// Told when the log is closed.
        done: oneshot::Sender<Result<(), String>>,
    },
}

/// The journal thread's answer to a `Write` or `Snapshot`.
#[derive(Debug)]
pub struct WalAck {
    /// The command's ticket.
    pub ticket: u64,
    /// `Ok` with what happened, or the error (one line, naming the file).
    pub result: Result<AckInfo, String>,
}

/// Details of a successful command.
#[derive(Debug, Clone, Copy)]
pub struct AckInfo {
    /// True when everything up to this command is now on disk.
    pub synced: bool,
    /// Log bytes written since the last snapshot (to decide when to take one).
    pub bytes_since_snapshot: u64,
    /// How long the fsync took, if there was one.
    pub fsync: Option<Duration>,
    /// For a snapshot: its size in bytes (0 otherwise).
    pub snapshot_bytes: u64,
}

/// How many commands may wait without waking the journal thread.
const LAZY_QUEUE: usize = 256;

/// How long after the end of the last fsync that answered a `soon` write
/// the next one may wait: when jobs end faster than an fsync takes (short
/// jobs told to a `wait`), their ends share one fsync every 2 ms instead of
/// queueing one each, which on a busy machine takes CPU from the jobs (an
/// fsync costs tens of microseconds of CPU here, `bench/RESULTS.md`). An
/// end after a quiet spell is synced at once, and a client's change never
/// waits. See `docs/durability.md`.
pub const SYNC_SOON: Duration = Duration::from_millis(2);

/// The journal thread's queue of commands.
#[derive(Debug, Default)]
struct Inbox {
    /// The commands, oldest first, and whether the thread has stopped.
    state: std::sync::Mutex<InboxState>,
    /// Wakes the thread.
    ready: std::sync::Condvar,
}

/// What [`Inbox`] guards.
#[derive(Default)]
struct InboxState {
    /// Commands not yet taken by the thread.
    cmds: Vec<WalCmd>,
    /// Set when the thread has stopped (nothing is taken any more) or the
    /// handle is gone (the thread should stop).
    closed: bool,
}

impl std::fmt::Debug for InboxState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboxState")
            .field("cmds", &self.cmds.len())
            .field("closed", &self.closed)
            .finish()
    }
}

/// Whether `cmd` can wait until something else wakes the thread (or, for
/// a `soon` write, until [`SYNC_SOON`] after the last one's fsync).
fn can_wait(cmd: &WalCmd) -> bool {
    matches!(
        cmd,
        WalCmd::Write { sync: false, .. } | WalCmd::Write { soon: true, .. }
    )
}

/// Whether `cmd` is an fsync that may wait a little.
fn is_soon(cmd: &WalCmd) -> bool {
    matches!(
        cmd,
        WalCmd::Write {
            sync: true,
            soon: true,
            ..
        }
    )
}

impl Inbox {
    /// Queues `cmd`, waking the thread if it must act now. False when the
    /// thread has stopped.
    fn push(&self, cmd: WalCmd) -> bool {
        // The first `soon` fsync wakes the thread, which then knows when
        // it is due.
        let soon = is_soon(&cmd);
        let wait = can_wait(&cmd);
        let Ok(mut state) = self.state.lock() else {
            return false;
        };
        if state.closed {
            return false;
        }
        let first_soon = soon && !state.cmds.iter().any(is_soon);
        state.cmds.push(cmd);
        let wake = !wait || first_soon || state.cmds.len() >= LAZY_QUEUE;
        drop(state);
        if wake {
            self.ready.notify_one();
        }
        true
    }

    /// Waits for work: every command queued, oldest first, once one of them
    /// needs the thread (or the queue is long, or closing, or a `soon`
    /// fsync is due: [`SYNC_SOON`] after `last_soon`, the end of the last
    /// fsync that answered one); `None` when the queue is closed and empty.
    fn take(&self, last_soon: Instant) -> Option<Vec<WalCmd>> {
        let soon_due = last_soon + SYNC_SOON;
        let mut state = self.state.lock().ok()?;
        loop {
            let now = Instant::now();
            let soon = state.cmds.iter().any(is_soon);
            let due = state.cmds.len() >= LAZY_QUEUE
                || state.cmds.iter().any(|c| !can_wait(c))
                || (soon && now >= soon_due)
                || (state.closed && !state.cmds.is_empty());
            if due {
                return Some(std::mem::take(&mut state.cmds));
            }
            if state.closed {
                return None;
            }
            state = if soon {
                self.ready.wait_timeout(state, soon_due - now).ok()?.0
            } else {
                self.ready.wait(state).ok()?
            };
        }
    }

    /// Marks the queue closed and wakes the thread.
    fn close(&self) {
        if let Ok(mut state) = self.state.lock() {
            state.closed = true;
        }
        self.ready.notify_one();
    }
}

/// Where the driver's commands go.
#[derive(Debug)]
enum Outbox {
    /// To the journal thread.
    Thread(Arc<Inbox>),
    /// To a test standing in for the thread.
    #[cfg(test)]
    Test(std_mpsc::Sender<WalCmd>),
}

/// The handle the driver holds.
#[derive(Debug)]
pub struct Journal {
    /// Commands to the thread.
    tx: Outbox,
    /// The thread, joined at stop.
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Journal {
    fn drop(&mut self) {
        // Nothing more can come: the thread ends once it has done what is
        // queued.
        match &self.tx {
            Outbox::Thread(inbox) => inbox.close(),
            #[cfg(test)]
            Outbox::Test(_) => {}
        }
    }
}

impl Journal {
    /// Moves `wal` onto its own thread; acks arrive on `acks`. With
    /// `metrics`, every sync that writes records counts them, their bytes
    /// and its fdatasync time.
    pub fn start(
        wal: Wal,
        acks: mpsc::UnboundedSender<WalAck>,
        metrics: Option<Arc<Metrics>>,
    ) -> std::io::Result<Self> {
        let inbox = Arc::new(Inbox::default());
        let rx = inbox.clone();
        let dir = wal.dir().to_path_buf();
        let thread = std::thread::Builder::new()
            .name("mayfly-wal".into())
            .spawn(move || {
                // A client's fsync waits on this thread.
                crate::slice::shorten_for_this_thread();
                run_thread(wal, dir, &rx, acks, metrics.as_deref());
                // However the thread ended, later sends must fail.
                rx.close();
            })?;
        Ok(Self {
            tx: Outbox::Thread(inbox),
            thread: Some(thread),
        })
    }

    /// A handle whose commands go to `tx` rather than to a thread, so that a
    /// test can play the journal: see what the driver hands over, and
    /// acknowledge it (or not) when it likes.
    #[cfg(test)]
    pub(crate) fn detached(tx: std_mpsc::Sender<WalCmd>) -> Self {
        Self {
            tx: Outbox::Test(tx),
            thread: None,
        }
    }

    /// Sends a command. Returns false if the thread has stopped.
    pub fn send(&self, cmd: WalCmd) -> bool {
        match &self.tx {
            Outbox::Thread(inbox) => inbox.push(cmd),
            #[cfg(test)]
            Outbox::Test(tx) => tx.send(cmd).is_ok(),
        }
    }

    /// Syncs, stops the thread and waits for it.
    pub async fn stop(mut self) -> Result<(), String> {
        let (done, rx) = oneshot::channel();
        if !self.send(WalCmd::Stop { done }) {
            return Err("the WAL thread had already stopped".into());
        }
        let result = rx
            .await
            .unwrap_or_else(|_| Err("the WAL thread died".into()));
        if let Some(thread) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        result
    }
}

/// The journal thread: group commit, snapshots, failure mode.
fn run_thread(
    wal: Wal,
    dir: PathBuf,
    rx: &Inbox,
    acks: mpsc::UnboundedSender<WalAck>,
    metrics: Option<&Metrics>,
) {
    let mut wal = Some(wal);
    // Set after a failed write or sync: the log dropped its unsynced
    // records, so nothing may be appended until the driver has rebuilt.
    let mut failure: Option<String> = None;
    // When the last fsync that answered a `soon` write ended (long ago, at
    // first), and whether the writes collected hold one.
    let mut last_soon = Instant::now()
        .checked_sub(SYNC_SOON)
        .unwrap_or_else(Instant::now);
    let mut soon_held = false;
    while let Some(cmds) = rx.take(last_soon) {
        let mut writes: Vec<(u64, bool)> = Vec::new();
        for cmd in cmds {
            match cmd {
                WalCmd::Write {
                    ticket,
                    records,
                    sync,
                    soon,
                } => {
                    soon_held |= sync && soon;
                    if failure.is_none()
                        && let Some(w) = wal.as_mut()
                    {
                        for record in &records {
                            if let Err(e) = w.append(record) {
                                failure = Some(e.to_string());
                                break;
                            }
                        }
                    }
                    writes.push((ticket, sync));
                }
                other => {
                    let synced = flush_writes(&mut wal, &mut failure, &mut writes, &acks, metrics);
                    if std::mem::take(&mut soon_held) && synced {
                        last_soon = Instant::now();
                    }
                    match other {
                        WalCmd::Snapshot { ticket, snapshot } => {
                            let result = take_snapshot(wal.as_mut(), failure.as_deref(), snapshot);
                            let _ = acks.send(WalAck { ticket, result });
                        }
                        WalCmd::Reopen { config, reply } => {
                            let old = wal.take();
                            let opts = WalOptions::default();
                            drop(old); // releases the directory lock
                            let result = match recover(&dir, opts, config) {
                                Ok(r) => {
                                    wal = Some(r.wal);
                                    failure = None;
                                    Ok(r.core)
                                }
                                Err(e) => Err(e.to_string()),
                            };
                            let _ = reply.send(result);
                        }
                        WalCmd::Stop { done } => {
                            let result = match (&failure, wal.as_mut()) {
                                (Some(f), _) => Err(f.clone()),
                                (None, Some(w)) => w
                                    .sync()
                                    .map(|stats| count_sync(metrics, &stats))
                                    .map_err(|e| e.to_string()),
                                (None, None) => Ok(()),
                            };
                            let _ = done.send(result);
                            return;
                        }
                        WalCmd::Write { .. } => {}
                    }
                }
            }
        }
        let synced = flush_writes(&mut wal, &mut failure, &mut writes, &acks, metrics);
        if std::mem::take(&mut soon_held) && synced {
            last_soon = Instant::now();
        }
    }
}

/// Writes `snapshot` into the log, unless the log has failed (`failure`)
/// or is closed, and says what became of it.
fn take_snapshot(
    wal: Option<&mut Wal>,
    failure: Option<&str>,
    snapshot: Box<CoreSnapshot>,
) -> Result<AckInfo, String> {
    let started = Instant::now();
    let encoded = snapshot
        .encode()
        .map_err(|e| format!("cannot encode the snapshot: {e}"));
    // The state copy can be large: free it before writing.
    drop(snapshot);
    let w = match (failure, wal) {
        (Some(f), _) => return Err(f.to_string()),
        (None, None) => return Err("the WAL is closed".to_string()),
        (None, Some(w)) => w,
    };
    let payload = encoded?;
    let stats = w
        .write_snapshot(crate::core::SNAPSHOT_FORMAT, &payload)
        .map_err(|e| e.to_string())?;
    tracing::info!(
        bytes = payload.len(),
        segments_removed = stats.files_removed,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "snapshot written"
    );
    Ok(AckInfo {
        synced: true,
        bytes_since_snapshot: w.bytes_since_snapshot(),
        fsync: None,
        snapshot_bytes: payload.len() as u64,
    })
}

/// Syncs (if any write asked for it) and answers the collected writes:
/// those that asked for an fsync, and every one when the log has failed.
/// True when it synced.
fn flush_writes(
    wal: &mut Option<Wal>,
    failure: &mut Option<String>,
    writes: &mut Vec<(u64, bool)>,
    acks: &mpsc::UnboundedSender<WalAck>,
    metrics: Option<&Metrics>,
) -> bool {
    if writes.is_empty() {
        return false;
    }
    let wants_sync = writes.iter().any(|&(_, sync)| sync);
    let mut info = AckInfo {
        synced: false,
        bytes_since_snapshot: 0,
        fsync: None,
        snapshot_bytes: 0,
    };
    if failure.is_none() {
        match wal.as_mut() {
            None => *failure = Some("the WAL is closed".into()),
            Some(w) => {
                if wants_sync {
                    match w.sync() {
                        Ok(stats) => {
                            count_sync(metrics, &stats);
                            info.synced = true;
                            info.fsync = Some(stats.fsync);
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "WAL write failed; refusing changes until it works again");
                            *failure = Some(e.to_string());
                        }
                    }
                }
                info.bytes_since_snapshot = w.bytes_since_snapshot();
            }
        }
    }
    for (ticket, sync) in writes.drain(..) {
        let result = match failure {
            Some(f) => Err(f.clone()),
            None if sync => Ok(info),
            None => continue,
        };
        let _ = acks.send(WalAck { ticket, result });
    }
    info.synced
}

/// Counts a successful sync in the metrics: the records and bytes it wrote,
/// and its fdatasync time when it wrote anything (an empty sync makes no
/// system call worth timing).
fn count_sync(metrics: Option<&Metrics>, stats: &SyncStats) {
    if let Some(m) = metrics
        && stats.records > 0
    {
        m.wal_appended(stats.records, stats.bytes);
        m.wal_fsynced(stats.fsync);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wal::MAX_RECORD_BYTES;

    /// The longest a test waits for an answer.
    const DEADLINE: Duration = Duration::from_secs(20);

    /// A journal thread over a fresh log in a temp dir, and its answers.
    fn journal() -> (
        Journal,
        mpsc::UnboundedReceiver<WalAck>,
        tempfile::TempDir,
        tokio::runtime::Runtime,
    ) {
        let dir = tempfile::tempdir().expect("a temp dir");
        let recovered = recover(dir.path(), WalOptions::default(), CoreConfig::default())
            .expect("an empty log opens");
        let (acks, rx) = mpsc::unbounded_channel();
        let journal = Journal::start(recovered.wal, acks, None).expect("the thread starts");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        (journal, rx, dir, rt)
    }

    /// The next answer from the journal thread.
    fn next_ack(rt: &tokio::runtime::Runtime, rx: &mut mpsc::UnboundedReceiver<WalAck>) -> WalAck {
        rt.block_on(async { tokio::time::timeout(DEADLINE, rx.recv()).await })
            .expect("an answer in time")
            .expect("the thread is running")
    }

    /// A write of `records` under `ticket`.
    fn write(ticket: u64, records: Vec<Vec<u8>>, sync: bool) -> WalCmd {
        WalCmd::Write {
            ticket,
            records,
            sync,
            soon: false,
        }
    }

    /// An fsynced write that may wait to be shared.
    fn soon_write(ticket: u64) -> WalCmd {
        WalCmd::Write {
            ticket,
            records: vec![record()],
            sync: true,
            soon: true,
        }
    }

    #[test]
    fn a_soon_fsync_waits_its_turn_after_the_last_one_and_takes_what_came_meanwhile() {
        let inbox = Inbox::default();
        // Long after the last fsync: due at once.
        assert!(inbox.push(soon_write(1)));
        let long_ago = Instant::now()
            .checked_sub(SYNC_SOON * 10)
            .unwrap_or_else(Instant::now);
        assert_eq!(inbox.take(long_ago).map(|c| c.len()), Some(1));
        // Right after one: due only once SYNC_SOON has passed, with what
        // was queued meanwhile.
        let last = Instant::now();
        assert!(inbox.push(soon_write(2)));
        assert!(inbox.push(write(3, vec![record()], false)));
        let cmds = inbox.take(last).expect("open");
        assert!(last.elapsed() >= SYNC_SOON, "{:?}", last.elapsed());
        assert_eq!(cmds.len(), 2);
        // A client's fsync does not wait, and takes the waiting one along.
        assert!(inbox.push(soon_write(4)));
        assert!(inbox.push(write(5, vec![record()], true)));
        assert_eq!(inbox.take(Instant::now()).map(|c| c.len()), Some(2));
    }

    /// An encoded record (any event will do).
    fn record() -> Vec<u8> {
        encode_event(&Event::IdsReserved { next_id: 7 })
    }

    #[test]
    fn only_fsynced_writes_are_acknowledged_and_an_fsync_covers_the_writes_before_it() {
        let (journal, mut rx, dir, rt) = journal();
        assert!(journal.send(write(0, vec![record()], false)));
        assert!(journal.send(write(1, vec![record()], false)));
        assert!(journal.send(write(2, Vec::new(), true)));
        let ack = next_ack(&rt, &mut rx);
        assert_eq!(ack.ticket, 2, "the unsynced writes were answered: {ack:?}");
        assert!(ack.result.expect("the fsync worked").synced);
        assert!(rx.try_recv().is_err(), "more answers than fsynced writes");
        rt.block_on(journal.stop()).expect("the log closes");

        let reopened = recover(dir.path(), WalOptions::default(), CoreConfig::default())
            .expect("the log reopens");
        assert_eq!(
            reopened.stats.records, 2,
            "both unsynced records are durable"
        );
    }

    #[test]
    fn a_failed_unsynced_write_is_answered_by_the_next_fsync_at_the_latest() {
        let (journal, mut rx, _dir, rt) = journal();
        let too_large = vec![0u8; MAX_RECORD_BYTES + 1];
        assert!(journal.send(write(0, vec![too_large], false)));
        assert!(journal.send(write(1, vec![record()], false)));
        assert!(journal.send(write(2, Vec::new(), true)));
        for ticket in 0..3 {
            let ack = next_ack(&rt, &mut rx);
            assert_eq!(ack.ticket, ticket, "answers out of order: {ack:?}");
            assert!(
                ack.result.is_err(),
                "a write at or after a failure must fail: {ack:?}"
            );
        }
    }

    #[test]
    fn unsynced_writes_wait_for_the_thread_only_up_to_a_bound() {
        let (journal, mut rx, _dir, rt) = journal();
        let too_large = vec![0u8; MAX_RECORD_BYTES + 1];
        assert!(journal.send(write(0, vec![too_large], false)));
        // Nothing needs the thread yet; a long enough queue wakes it, and
        // it answers the failure without any fsync being asked for.
        for ticket in 1..LAZY_QUEUE as u64 {
            assert!(journal.send(write(ticket, Vec::new(), false)));
        }
        let ack = next_ack(&rt, &mut rx);
        assert_eq!(ack.ticket, 0);
        assert!(ack.result.is_err(), "{ack:?}");
    }

    #[test]
    fn a_stop_writes_what_was_queued_without_waking_the_thread() {
        let (journal, _rx, dir, rt) = journal();
        assert!(journal.send(write(0, vec![record(), record()], false)));
        rt.block_on(journal.stop()).expect("the log closes");
        let reopened = recover(dir.path(), WalOptions::default(), CoreConfig::default())
            .expect("the log reopens");
        assert_eq!(reopened.stats.records, 2);
    }
}
