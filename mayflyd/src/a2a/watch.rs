//! Following tasks as their jobs move: what streams and push notifications
//! are made of.
//!
//! One task of the door ([`Watch::start`]) follows the daemon's activity
//! log — a single subscription, however many tasks are followed — and pokes
//! the followers of each job an event names. A follower then reads its
//! job's record and tells the change, if its A2A state changed. The end
//! comes from a `wait` on the job, so a follower tells a task's end only
//! once it is durable, exactly as `mayflyctl wait` does. The activity log
//! never waits for this door: if the door falls behind, it is told how many
//! events it missed, and every follower is poked to read its job again.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use mayfly_protocol::{Activity, JobId, JobInfo};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use super::task::{artifacts_of, context_of, status_of, task_of};
use super::wire::{StreamResponse, TaskArtifactUpdateEvent, TaskState, TaskStatusUpdateEvent};
use crate::service::{EventItem, Mayfly, ServiceError};

/// Who follows which job: see the module documentation. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Watch {
    /// The followers of each job, each with its number (to leave).
    followers: Arc<Mutex<Followers>>,
}

/// The table behind [`Watch`].
#[derive(Debug, Default)]
struct Followers {
    /// The next follower's number.
    next: u64,
    /// By job.
    by_job: HashMap<JobId, Vec<(u64, Arc<Notify>)>>,
}

/// One follower's registration: poked when its job may have changed;
/// leaves the table when dropped.
#[derive(Debug)]
pub struct Poke {
    /// The job.
    id: JobId,
    /// The follower's number.
    number: u64,
    /// What is poked.
    notify: Arc<Notify>,
    /// The table, to leave it.
    watch: Watch,
}

impl Poke {
    /// Resolves once the job may have changed since the last call (a poke
    /// that came in between is kept, never lost).
    pub async fn changed(&self) {
        self.notify.notified().await;
    }
}

impl Drop for Poke {
    fn drop(&mut self) {
        let mut table = self.watch.lock();
        if let Some(list) = table.by_job.get_mut(&self.id) {
            list.retain(|(n, _)| *n != self.number);
            if list.is_empty() {
                table.by_job.remove(&self.id);
            }
        }
    }
}

impl Watch {
    /// The table, locked (a panic elsewhere leaves it usable: it holds no
    /// invariant a half-done change could break).
    fn lock(&self) -> std::sync::MutexGuard<'_, Followers> {
        self.followers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Follows the activity log until `stop` fires or the daemon stops,
    /// poking the followers of each job an event names.
    pub fn start(self, mayfly: Mayfly, stop: CancellationToken) -> impl Future<Output = ()> {
        let watch = self;
        async move {
            let mut events = mayfly.events(true).await;
            loop {
                let item = tokio::select! {
                    item = events.recv() => item,
                    () = stop.cancelled() => break,
                };
                match item {
                    Some(Ok(EventItem::Event(record))) => {
                        if let Some(id) = job_of(&record.event) {
                            watch.poke(id);
                        }
                    }
                    Some(Ok(EventItem::Missed(count))) => {
                        tracing::debug!(
                            count,
                            "the A2A door fell behind the activity log; every follower reads its job again"
                        );
                        watch.poke_all();
                    }
                    Some(Err(_)) | None => break,
                }
            }
        }
    }

    /// Registers a follower of job `id`.
    pub fn follow(&self, id: JobId) -> Poke {
        let notify = Arc::new(Notify::new());
        let mut table = self.lock();
        let number = table.next;
        table.next += 1;
        table
            .by_job
            .entry(id)
            .or_default()
            .push((number, notify.clone()));
        Poke {
            id,
            number,
            notify,
            watch: self.clone(),
        }
    }

    /// Pokes the followers of job `id`.
    fn poke(&self, id: JobId) {
        if let Some(list) = self.lock().by_job.get(&id) {
            for (_, notify) in list {
                notify.notify_one();
            }
        }
    }

    /// Pokes every follower.
    fn poke_all(&self) {
        for list in self.lock().by_job.values() {
            for (_, notify) in list {
                notify.notify_one();
            }
        }
    }

    /// How many jobs are followed now.
    pub fn followed(&self) -> usize {
        self.lock().by_job.len()
    }
}

/// The job an activity is about, if any.
fn job_of(activity: &Activity) -> Option<JobId> {
    match activity {
        Activity::JobSubmitted { id, .. }
        | Activity::JobStarted { id, .. }
        | Activity::JobStopRequested { id, .. }
        | Activity::JobFinished { id, .. }
        | Activity::JobWaiting { id }
        | Activity::JobQueued { id }
        | Activity::JobRetrying { id, .. } => Some(*id),
        Activity::SchedulerBoot { .. }
        | Activity::ShutdownBegin { .. }
        | Activity::ShutdownComplete { .. }
        | Activity::SystemTaskStart { .. }
        | Activity::SystemTaskExit { .. }
        // A callback changes nothing a task shows, nor does a freeze: a
        // frozen job is still WORKING (A2A has no state for it).
        | Activity::CallbackFinished { .. }
        | Activity::JobFrozen { .. }
        | Activity::JobThawed { .. } => None,
    }
}

/// What a follower sends besides status changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Telling {
    /// Everything, as a stream does: the task as it stands first, each
    /// status change, and at the end the artifacts, then the final status.
    Stream,
    /// Status changes only, as a push notification does (the webhook asks
    /// `GetTask` for the artifacts): the current status first.
    Status,
}

/// Why a follow ended without telling the task's end.
#[derive(Debug)]
pub enum FollowEnd {
    /// The job's end was told.
    Ended,
    /// The receiver went away, or the door is stopping.
    Left,
    /// The daemon refused (an unknown job, a shutdown).
    Failed(ServiceError),
}

/// Follows job `id` and sends what `telling` asks on `out` until the job's
/// end (durable) has been told, `out` is dropped, or `stop` fires. The
/// first item tells the job as it stands when the follow begins.
pub async fn follow(
    mayfly: &Mayfly,
    watch: &Watch,
    logs_dir: PathBuf,
    id: JobId,
    telling: Telling,
    out: &mpsc::Sender<StreamResponse>,
    stop: &CancellationToken,
) -> FollowEnd {
    // Register and ask for the end before reading the job, so no change
    // after the read is missed.
    let poke = watch.follow(id);
    let mut ended = mayfly.wait(vec![id]).await;
    let first = match job(mayfly, id).await {
        Ok(info) => info,
        Err(e) => return FollowEnd::Failed(e),
    };
    let mut told = state_told(&first);
    let item = match telling {
        Telling::Stream => StreamResponse::task(task_of(&first)),
        Telling::Status => StreamResponse::status(status_event(&first)),
    };
    if out.send(item).await.is_err() {
        return FollowEnd::Left;
    }
    loop {
        tokio::select! {
            report = ended.recv() => return match report {
                Some(Ok(info)) => tell_end(info, telling, logs_dir, out).await,
                Some(Err(e)) => FollowEnd::Failed(e),
                None => FollowEnd::Left,
            },
            () = poke.changed() => {
                let info = match job(mayfly, id).await {
                    Ok(info) => info,
                    Err(e) => return FollowEnd::Failed(e),
                };
                let state = state_told(&info);
                // An end is told from the wait, once durable.
                if state != told && !state.is_terminal() {
                    told = state;
                    if out.send(StreamResponse::status(status_event(&info))).await.is_err() {
                        return FollowEnd::Left;
                    }
                }
            },
            () = out.closed() => return FollowEnd::Left,
            () = stop.cancelled() => return FollowEnd::Left,
        }
    }
}

/// The A2A state of a job's record.
fn state_told(info: &JobInfo) -> TaskState {
    super::task::state_of(info.state)
}

/// One job's record.
async fn job(mayfly: &Mayfly, id: JobId) -> Result<JobInfo, ServiceError> {
    mayfly.job(id).await.await
}

/// The status change that tells `info`.
pub fn status_event(info: &JobInfo) -> TaskStatusUpdateEvent {
    TaskStatusUpdateEvent {
        task_id: info.id.to_string(),
        context_id: context_of(info),
        status: status_of(info),
    }
}

/// Tells a job's end: for a stream its artifacts first, then the final
/// status.
async fn tell_end(
    info: JobInfo,
    telling: Telling,
    logs_dir: PathBuf,
    out: &mpsc::Sender<StreamResponse>,
) -> FollowEnd {
    if telling == Telling::Stream {
        let (info, artifacts) = with_artifacts(info, logs_dir).await;
        for artifact in artifacts {
            let event = TaskArtifactUpdateEvent {
                task_id: info.id.to_string(),
                context_id: context_of(&info),
                artifact,
                append: false,
                last_chunk: true,
            };
            if out.send(StreamResponse::artifact(event)).await.is_err() {
                return FollowEnd::Left;
            }
        }
        return match out.send(StreamResponse::status(status_event(&info))).await {
            Ok(()) => FollowEnd::Ended,
            Err(_) => FollowEnd::Left,
        };
    }
    match out.send(StreamResponse::status(status_event(&info))).await {
        Ok(()) => FollowEnd::Ended,
        Err(_) => FollowEnd::Left,
    }
}

/// Reads an ended job's artifacts off the runtime's threads.
pub async fn with_artifacts(
    info: JobInfo,
    logs_dir: PathBuf,
) -> (JobInfo, Vec<super::wire::Artifact>) {
    let read = info.clone();
    match tokio::task::spawn_blocking(move || artifacts_of(&logs_dir, &read)).await {
        Ok(artifacts) => (info, artifacts),
        Err(e) => {
            tracing::warn!(job = %info.id, error = %e, "reading a job's artifacts failed");
            (info, Vec::new())
        }
    }
}
