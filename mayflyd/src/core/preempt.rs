//! Priority preemption: a more urgent job takes the slot of a running
//! `--preemptible` one, which is frozen (SIGSTOP to its process group) until
//! a slot is free again (SIGCONT).
//!
//! The rules, all decided in [`Core::next_start`]:
//! - **freeze** when the head of a local queue (its most urgent queued job)
//!   cannot start for want of a slot, and a running preemptible local job
//!   with a strictly higher priority number holds a slot that would let it
//!   start: one in its own queue when that queue is full, any when only the
//!   global limit stands in the way. The victim is the most preemptible:
//!   the highest priority number, then the most recently started;
//! - **thaw** a frozen job as soon as a slot it could use is free, before
//!   any queued job that is not strictly more urgent than it starts;
//! - a frozen job holds no slot, its timeout does not count the time it is
//!   frozen, and a job not marked preemptible is never frozen.
//!
//! Freezing and thawing are events (`Frozen`, `Thawed`), logged like any
//! other; the signals are their actions. A frozen job that is stopped
//! (cancel, timeout, shutdown) is sent SIGCONT after SIGTERM (see
//! `apply_stop_requested`); one left frozen by a crash is killed with its
//! group at recovery, as any leftover is.

use mayfly_protocol::{JobId, JobState, SpecExt, Timestamp};

use super::{Action, Core, CoreError, Event, Signal};

impl Core {
    /// True when the global limit leaves a slot for one more local job.
    pub(super) fn local_room(&self) -> bool {
        let holding = self.running_local.saturating_sub(self.frozen_len());
        holding < self.config.concurrency
    }

    /// How many jobs are frozen.
    fn frozen_len(&self) -> u32 {
        u32::try_from(self.frozen.len()).unwrap_or(u32::MAX)
    }

    /// The most urgent frozen job that a free slot would let run again, as
    /// `(priority, id)`.
    pub(super) fn thawable(&self, local_room: bool) -> Option<(u8, JobId)> {
        if !local_room {
            return None;
        }
        self.frozen.iter().copied().find(|&(_, id)| {
            self.jobs
                .get(&id)
                .and_then(|job| self.queues.get(&*job.queue))
                .is_some_and(|q| q.has_room())
        })
    }

    /// The freeze that lets the most urgent blocked queue head start, if a
    /// victim exists (see the module documentation).
    pub(super) fn preemption(&self, now: Timestamp, local_room: bool) -> Option<Event> {
        if self.preemptible.is_empty() {
            return None;
        }
        let mut heads: Vec<(u8, JobId, &str, bool)> = self
            .queues
            .iter()
            .filter(|(_, q)| !q.paused && q.executor.is_local())
            .filter_map(|(name, q)| {
                q.ready
                    .first()
                    .map(|&(p, id)| (p, id, name.as_str(), q.has_room()))
            })
            .filter(|&(_, _, _, room)| !(room && local_room))
            .collect();
        heads.sort_unstable();
        heads.into_iter().find_map(|(priority, by, queue, room)| {
            self.victim(priority, (!room).then_some(queue))
                .map(|id| Event::Frozen { id, at: now, by })
        })
    }

    /// The most preemptible running job less urgent than `priority`, in
    /// `queue` when one is named.
    fn victim(&self, priority: u8, queue: Option<&str>) -> Option<JobId> {
        self.preemptible
            .iter()
            .filter_map(|&id| self.jobs.get(&id).map(|job| (id, job)))
            .filter(|(_, job)| job.priority > priority)
            .filter(|(_, job)| queue.is_none_or(|q| *job.queue == *q))
            .max_by_key(|(id, job)| (job.priority, job.run().started_at, *id))
            .map(|(id, _)| id)
    }

    /// Whether a job of `queue` with these extra settings may be frozen.
    pub(super) fn may_freeze(&self, queue: &str, ext: &[SpecExt]) -> bool {
        ext.iter().any(|e| matches!(e, SpecExt::Preemptible))
            && self
                .queues
                .get(queue)
                .is_some_and(|q| q.executor.is_local())
    }

    /// Applies `Frozen`: the job stops (SIGSTOP) and gives up its slot; its
    /// timeout stops counting.
    pub(super) fn apply_frozen(&mut self, id: JobId, at: Timestamp) -> Result<(), CoreError> {
        if !self.preemptible.remove(&id) {
            return Err(CoreError::Inconsistent(format!(
                "job {id} is not a running preemptible job that could be frozen"
            )));
        }
        let job = self.job_in_mut(id, &[JobState::Running])?;
        let key = (job.priority, id);
        let queue = job.queue.clone();
        let run = job.run_mut();
        run.frozen_at = Some(at);
        if let Some(t) = run.timeout_at {
            self.timeout_at.remove(&(t, id));
        }
        self.frozen.insert(key);
        if let Some(q) = self.queues.get_mut(&*queue) {
            q.frozen += 1;
        }
        self.actions.push_back(Action::Signal {
            id,
            signal: Signal::Stop,
        });
        Ok(())
    }

    /// Applies `Thawed`: the job runs again (SIGCONT) and takes a slot
    /// back; its timeout is pushed back by the time it was frozen.
    pub(super) fn apply_thawed(&mut self, id: JobId, at: Timestamp) -> Result<(), CoreError> {
        let job = self.job_in_mut(id, &[JobState::Running])?;
        let key = (job.priority, id);
        let queue = job.queue.clone();
        let run = job.run_mut();
        let Some(since) = run.frozen_at.take() else {
            return Err(CoreError::Inconsistent(format!("job {id} is not frozen")));
        };
        let timeout = run
            .timeout_at
            .map(|t| t.plus_millis(at.millis_since(since)));
        let stopping = run.stop.is_some();
        if let Some(t) = timeout
            && !stopping
        {
            run.timeout_at = Some(t);
            self.timeout_at.insert((t, id));
        }
        self.frozen.remove(&key);
        self.preemptible.insert(id);
        if let Some(q) = self.queues.get_mut(&*queue) {
            q.frozen = q.frozen.saturating_sub(1);
        }
        self.actions.push_back(Action::Signal {
            id,
            signal: Signal::Cont,
        });
        Ok(())
    }

    /// A job left running (it ended, or is being put back): it is no longer
    /// a candidate, nor frozen.
    pub(super) fn leave_preemption(&mut self, id: JobId) {
        self.preemptible.remove(&id);
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        let key = (job.priority, id);
        let frozen = job.run.as_mut().and_then(|r| r.frozen_at.take()).is_some();
        if frozen {
            self.frozen.remove(&key);
            if let Some(q) = self.queues.get_mut(&*job.queue) {
                q.frozen = q.frozen.saturating_sub(1);
            }
        }
    }

    /// Rebuilds the preemption books from the jobs (after a snapshot is
    /// loaded): which running jobs are frozen, which may be.
    pub(super) fn rebuild_preemption(&mut self) {
        let running: Vec<(JobId, u8, bool, bool)> = self
            .jobs
            .iter()
            .filter(|(_, job)| job.state == JobState::Running)
            .map(|(&id, job)| {
                let may = self.may_freeze(&job.queue, &job.options().ext);
                (id, job.priority, job.run().frozen_at.is_some(), may)
            })
            .collect();
        for (id, priority, frozen, may) in running {
            if frozen {
                self.frozen.insert((priority, id));
                if let Some(q) = self
                    .jobs
                    .get(&id)
                    .and_then(|job| self.queues.get_mut(&*job.queue))
                {
                    q.frozen += 1;
                }
            } else if may {
                self.preemptible.insert(id);
            }
        }
    }
}
