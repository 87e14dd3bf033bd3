//! Applying: each event changes the state exactly as its record says, the
//! same way live and at recovery (so the two cannot drift apart). An event
//! that does not fit the state (only from a damaged log) is an error, never
//! a panic.

use mayfly_protocol::{Attempt, DepRef, JobId, JobSpec, JobState, Timestamp};

use super::job::Job;
use super::{
    Action, Core, CoreError, Event, ExitOutcome, Queue, RETRY_DELAY_CAP_MS, Signal, StopReason,
};

impl Core {
    /// Applies one event to the state, queueing any actions it implies: one
    /// method per kind of event.
    pub fn apply(&mut self, event: &Event) -> Result<(), CoreError> {
        match event {
            Event::Submitted { id, at, spec } => self.apply_submitted(*id, *at, spec),
            Event::Cancelled { id, at } => self.apply_cancelled(*id, *at),
            Event::StopRequested {
                id,
                at,
                reason,
                grace_ms,
            } => self.apply_stop_requested(*id, *at, *reason, *grace_ms),
            Event::Started { id, at } => self.apply_started(*id, *at),
            Event::Exited { id, at, outcome } => self.apply_exited(*id, *at, outcome),
            Event::Interrupted { id, at } => self.apply_interrupted(*id, *at),
            Event::QueueConfigured { name, concurrency } => {
                self.queues.entry(name.clone()).or_default().concurrency = *concurrency;
                Ok(())
            }
            Event::TimeReached { id, .. } => self.apply_time_reached(*id),
            Event::QueuePaused {
                name,
                paused,
                signal_running,
            } => {
                self.apply_queue_paused(name, *paused, *signal_running);
                Ok(())
            }
            Event::QueueRemoved { name } => self.apply_queue_removed(name),
            Event::Removed { ids } => self.apply_removed(ids),
            Event::Edited {
                id,
                priority,
                queue,
                labels,
            } => self.apply_edited(*id, *priority, queue, labels),
            Event::Progress { id, text } => {
                if let Some(job) = self.jobs.get_mut(id) {
                    job.run_mut().progress = Some(text.clone());
                }
                Ok(())
            }
            Event::Spawned {
                id,
                pid,
                start_ticks,
            } => {
                self.apply_spawned(*id, *pid, *start_ticks);
                Ok(())
            }
            Event::IdsReserved { next_id } => {
                self.next_id = self.next_id.max(*next_id);
                Ok(())
            }
            Event::StartDeferred {
                id,
                retry_at,
                reason,
                ..
            } => self.apply_start_deferred(*id, *retry_at, reason),
            Event::QueueExecutor { name, executor } => {
                self.queue_mut(name).executor = executor.clone();
                Ok(())
            }
            Event::Attached { id, remote_id } => {
                self.job_in_mut(*id, &[JobState::Running])?.run_mut().remote =
                    Some(remote_id.clone());
                Ok(())
            }
            Event::Usage { id, usage } => {
                self.job_in_mut(*id, &[JobState::Running])?.run_mut().usage = Some(*usage);
                Ok(())
            }
            Event::CallbackDue { id } => {
                let job = self
                    .jobs
                    .get(id)
                    .ok_or_else(|| CoreError::Inconsistent(format!("job {id} does not exist")))?;
                if !job.state.is_terminal() {
                    return Err(CoreError::Inconsistent(format!(
                        "job {id} is {} and has no finish callback to run yet",
                        job.state
                    )));
                }
                self.callbacks_due.insert(*id);
                Ok(())
            }
            Event::CallbackDone { id } => {
                self.callbacks_due.remove(id);
                Ok(())
            }
            Event::Frozen { id, at, .. } => self.apply_frozen(*id, *at),
            Event::Thawed { id, at } => self.apply_thawed(*id, *at),
        }
    }

    /// Applies `Cancelled`: a job that had not started ends `cancelled`.
    fn apply_cancelled(&mut self, id: JobId, at: Timestamp) -> Result<(), CoreError> {
        self.job_in(id, &[JobState::Waiting, JobState::Queued])?;
        self.leave_waiting(id);
        self.finish(
            id,
            JobState::Cancelled,
            at,
            Some("cancelled before it started".into()),
        );
        Ok(())
    }

    /// Applies `StopRequested`: SIGTERM now, SIGKILL when the grace runs
    /// out, and the reason kept for the exit to come.
    fn apply_stop_requested(
        &mut self,
        id: JobId,
        at: Timestamp,
        reason: StopReason,
        grace_ms: u64,
    ) -> Result<(), CoreError> {
        let run = self.job_in_mut(id, &[JobState::Running])?.run_mut();
        run.stop = Some(reason);
        if let Some(t) = run.timeout_at.take() {
            self.timeout_at.remove(&(t, id));
        }
        self.kill_at.insert((at.plus_millis(grace_ms), id));
        self.actions.push_back(Action::Signal {
            id,
            signal: Signal::Term,
        });
        // A job frozen by `pause --running` would sit on SIGTERM until the
        // grace ran out: thaw it so it can act on it.
        self.actions.push_back(Action::Signal {
            id,
            signal: Signal::Cont,
        });
        Ok(())
    }

    /// Applies `Started`: a queued job takes its slots and is spawned.
    fn apply_started(&mut self, id: JobId, at: Timestamp) -> Result<(), CoreError> {
        let may_freeze = self
            .job_in(id, &[JobState::Queued])
            .map(|job| self.may_freeze(&job.queue, &job.options().ext))?;
        let job = self.job_in_mut(id, &[JobState::Queued])?;
        job.attempts += 1;
        let attempt = job.attempts;
        let key = (job.priority, id);
        let queue_name = job.queue.clone();
        let timeout_at = job.options().timeout_ms.map(|ms| at.plus_millis(ms));
        let run = job.run_mut();
        run.started_at = Some(at);
        run.exit_code = None;
        run.signal = None;
        run.usage = None;
        run.stop = None;
        run.remote = None;
        run.timeout_at = timeout_at;
        if let Some(t) = timeout_at {
            self.timeout_at.insert((t, id));
        }
        self.set_state(id, JobState::Running);
        let mut local = true;
        if let Some(q) = self.queues.get_mut(&*queue_name) {
            q.ready.remove(&key);
            q.running += 1;
            local = q.executor.is_local();
        }
        self.running += 1;
        if local {
            self.running_local += 1;
        }
        if may_freeze {
            self.preemptible.insert(id);
        }
        self.counters.started += 1;
        self.actions.push_back(Action::Spawn { id, attempt });
        Ok(())
    }

    /// Applies `TimeReached`: a waiting job's not-before time or backoff
    /// is over; it queues if nothing else holds it.
    fn apply_time_reached(&mut self, id: JobId) -> Result<(), CoreError> {
        let job = self.job_in_mut(id, &[JobState::Waiting])?;
        let wake = job.wake_time();
        if job.run.as_mut().and_then(|r| r.retry_at.take()).is_none() {
            job.time_ok = true;
        }
        if let Some(t) = wake {
            self.wake_at.remove(&(t, id));
        }
        self.maybe_release(id);
        Ok(())
    }

    /// Applies `QueuePaused`: the queue stops (or starts again) starting
    /// jobs, and with `signal_running` its running jobs are frozen (thawed).
    fn apply_queue_paused(&mut self, name: &str, paused: bool, signal_running: bool) {
        let queue = self.queues.entry(name.to_owned()).or_default();
        queue.paused = paused;
        if signal_running {
            let signal = if paused { Signal::Stop } else { Signal::Cont };
            let running: Vec<JobId> = self
                .jobs
                .iter()
                // A job frozen for a more urgent one stays frozen until
                // the scheduler thaws it.
                .filter(|(_, j)| {
                    j.state == JobState::Running && *j.queue == *name && j.run().frozen_at.is_none()
                })
                .map(|(id, _)| *id)
                .collect();
            for id in running {
                self.actions.push_back(Action::Signal { id, signal });
            }
        }
    }

    /// Applies `QueueRemoved`.
    fn apply_queue_removed(&mut self, name: &str) -> Result<(), CoreError> {
        if name == mayfly_protocol::DEFAULT_QUEUE {
            return Err(CoreError::Inconsistent(
                "the default queue cannot be removed".into(),
            ));
        }
        self.queues.remove(name);
        Ok(())
    }

    /// Applies `Removed` (`clean`): finished jobs are forgotten, with their
    /// output files.
    fn apply_removed(&mut self, ids: &[JobId]) -> Result<(), CoreError> {
        for id in ids {
            let Some(job) = self.jobs.get(id) else {
                continue;
            };
            if !job.state.is_terminal() {
                return Err(CoreError::Inconsistent(format!(
                    "job {id} is {} and cannot be removed",
                    job.state
                )));
            }
            if let Some(job) = self.jobs.remove(id)
                && let Some(q) = self.queues.get_mut(&*job.queue)
            {
                let c = q.counts.get_mut(job.state);
                *c = c.saturating_sub(1);
            }
            self.callbacks_due.remove(id);
            self.actions.push_back(Action::RemoveOutput { id: *id });
        }
        // Directories and environments only forgotten jobs used.
        self.interner.purge();
        Ok(())
    }

    /// Applies `Edited`: a job that has not started takes its new priority,
    /// queue and labels.
    fn apply_edited(
        &mut self,
        id: JobId,
        priority: u8,
        queue: &str,
        labels: &[(String, String)],
    ) -> Result<(), CoreError> {
        let job = self.job_in(id, &[JobState::Waiting, JobState::Queued])?;
        let state = job.state;
        let old_key = (job.priority, id);
        let old_queue = job.queue.clone();
        if let Some(q) = self.queues.get_mut(&*old_queue) {
            q.ready.remove(&old_key);
            let c = q.counts.get_mut(state);
            *c = c.saturating_sub(1);
        }
        let q = self.queue_mut(queue);
        *q.counts.get_mut(state) += 1;
        if state == JobState::Queued {
            q.ready.insert((priority, id));
        }
        let queue = self.interner.str(queue);
        if let Some(job) = self.jobs.get_mut(&id) {
            job.priority = priority;
            job.queue = queue;
            job.options_mut().labels = labels.to_vec();
            job.compact_options();
        }
        Ok(())
    }

    /// Applies `Spawned`: the running attempt's process, as logged.
    fn apply_spawned(&mut self, id: JobId, pid: u32, start_ticks: u64) {
        if let Some(job) = self
            .jobs
            .get_mut(&id)
            .filter(|j| j.state == JobState::Running)
        {
            job.run_mut().process = Some((pid, start_ticks));
        }
    }

    /// Applies `StartDeferred`: the start did not happen; the job waits
    /// until `retry_at` without having used an attempt (a cancel asked for
    /// meanwhile ends it).
    fn apply_start_deferred(
        &mut self,
        id: JobId,
        retry_at: Timestamp,
        reason: &str,
    ) -> Result<(), CoreError> {
        let job = self.job_in_mut(id, &[JobState::Running])?;
        job.attempts = job.attempts.saturating_sub(1);
        let run = job.run_mut();
        run.started_at = run.history.last().map(|a| a.started_at);
        run.reason = Some(format!("could not start yet: {reason}"));
        let stop = run.stop.take();
        self.leave_running(id);
        self.counters.started = self.counters.started.saturating_sub(1);
        if stop == Some(StopReason::Cancel) {
            self.finish(
                id,
                JobState::Cancelled,
                retry_at,
                Some("cancelled before it could start".into()),
            );
        } else {
            if let Some(job) = self.jobs.get_mut(&id) {
                job.run_mut().retry_at = Some(retry_at);
            }
            self.set_state(id, JobState::Waiting);
            self.wake_at.insert((retry_at, id));
        }
        Ok(())
    }

    /// Applies `Submitted`: the job waits, queues, or (a prerequisite has
    /// already failed) is skipped at once.
    fn apply_submitted(
        &mut self,
        id: JobId,
        at: Timestamp,
        spec: &JobSpec,
    ) -> Result<(), CoreError> {
        if id.0 < self.next_id {
            return Err(CoreError::Inconsistent(format!("job {id} submitted twice")));
        }
        self.next_id = id.0 + 1;
        self.counters.submitted += 1;
        let mut deps = Vec::with_capacity(spec.after.len());
        for dep in &spec.after {
            match dep.on {
                DepRef::Job(dep_id) => deps.push((dep_id, dep.any_outcome)),
                DepRef::BatchLine(_) => {
                    return Err(CoreError::Inconsistent(format!(
                        "job {id} names an unresolved batch line"
                    )));
                }
            }
        }
        let mut pending = 0u32;
        let mut doomed = None;
        for &(dep_id, any) in &deps {
            match self.jobs.get(&dep_id).map(|j| j.state) {
                Some(s) if !s.is_terminal() => {
                    pending += 1;
                    self.dependents.entry(dep_id).or_default().push(id);
                }
                Some(s) if !any && s != JobState::Succeeded => doomed = Some((dep_id, s)),
                // Finished as required, or forgotten by `clean` after it ended.
                _ => {}
            }
        }
        let mut job = Job::new(spec, deps, at, &mut self.interner);
        job.pending_deps = pending;
        let time_ok = job.time_ok;
        self.queue_mut(&spec.queue).counts.waiting += 1;
        // A new job's first state is told once: if it queues (or is
        // skipped) at once, it was never seen waiting, and only that
        // transition is reported (see the end of this function).
        let first_transition = self.transitions.len();
        self.transitions.push((id, JobState::Waiting));
        self.jobs.insert(id, Box::new(job));
        if let Some((dep_id, state)) = doomed {
            self.leave_waiting(id);
            self.finish(
                id,
                JobState::Skipped,
                at,
                Some(format!("job {dep_id} it depends on ended {state}")),
            );
        } else {
            if !time_ok && let Some(t) = spec.not_before {
                self.wake_at.insert((t, id));
            }
            self.maybe_release(id);
        }
        if self
            .jobs
            .get(&id)
            .is_some_and(|j| j.state != JobState::Waiting)
        {
            self.transitions.remove(first_transition);
        }
        Ok(())
    }

    /// Applies `Interrupted`: the daemon stopped or crashed while the job
    /// ran. A stop that was asked for and logged before the crash still
    /// decides the outcome — an acknowledged cancel ends the job
    /// `cancelled` and is never undone by a retry, a timeout ends it
    /// `timed_out` (retried like any timeout) — so a crash cannot make the
    /// daemon forget what it told a client. Otherwise the attempt counts as
    /// failed by the crash: retried at once if it has retries left, else
    /// `interrupted`.
    fn apply_interrupted(&mut self, id: JobId, at: Timestamp) -> Result<(), CoreError> {
        let job = self.job_in_mut(id, &[JobState::Running])?;
        let timeout_ms = job.options().timeout_ms;
        let stop = job.run_mut().stop.take();
        self.end_attempt(id, at);
        self.leave_running(id);
        match stop {
            Some(StopReason::Cancel) => self.finish(
                id,
                JobState::Cancelled,
                at,
                Some("cancelled while running (the daemon stopped before the job exited)".into()),
            ),
            Some(StopReason::Timeout) => {
                let reason = timed_out_reason(timeout_ms);
                if self.retry(id, at, self.backoff_ms(id)) {
                    if let Some(job) = self.jobs.get_mut(&id) {
                        job.run_mut().reason = Some(reason);
                    }
                } else {
                    self.finish(id, JobState::TimedOut, at, Some(reason));
                }
            }
            Some(StopReason::Shutdown) | None => {
                if !self.retry(id, at, 0) {
                    self.finish(
                        id,
                        JobState::Interrupted,
                        at,
                        Some("the daemon stopped or crashed while it ran".into()),
                    );
                }
            }
        }
        Ok(())
    }

    /// Applies `Exited`: the attempt ends; the job is retried or finishes.
    fn apply_exited(
        &mut self,
        id: JobId,
        at: Timestamp,
        outcome: &ExitOutcome,
    ) -> Result<(), CoreError> {
        let job = self.job_in_mut(id, &[JobState::Running])?;
        let timeout_ms = job.options().timeout_ms;
        let run = job.run_mut();
        let stop = run.stop.take();
        if let (Some(_), Some((pgid, _))) = (stop, run.process) {
            self.actions.push_back(Action::SweepGroup { pgid });
        }
        let run = self.job_in_mut(id, &[JobState::Running])?.run_mut();
        let (state, reason) = match outcome {
            ExitOutcome::Code(code) => {
                run.exit_code = Some(*code);
                let state = if *code == 0 {
                    JobState::Succeeded
                } else {
                    JobState::Failed
                };
                (state, None)
            }
            ExitOutcome::Signal(sig) => {
                run.signal = Some(*sig);
                (JobState::Failed, None)
            }
            ExitOutcome::SpawnFailed(msg) => {
                (JobState::Failed, Some(format!("could not start: {msg}")))
            }
            ExitOutcome::Ended {
                state,
                exit_code,
                signal,
                reason,
            } => {
                run.exit_code = *exit_code;
                run.signal = *signal;
                let state = match state {
                    JobState::TimedOut | JobState::Cancelled | JobState::Interrupted => *state,
                    _ => JobState::Failed,
                };
                (state, Some(reason.clone()))
            }
        };
        let (state, reason) = match stop {
            Some(StopReason::Cancel) => (
                JobState::Cancelled,
                Some("cancelled while running".to_string()),
            ),
            Some(StopReason::Shutdown) => (
                JobState::Interrupted,
                Some("the daemon shut down while it ran".to_string()),
            ),
            Some(StopReason::Timeout) => (JobState::TimedOut, Some(timed_out_reason(timeout_ms))),
            None => (state, reason),
        };
        self.end_attempt(id, at);
        self.leave_running(id);
        // An attempt its executor lost (not one a shutdown stopped) is
        // retried at once, as one a crash interrupted (`apply_interrupted`).
        let lost = stop.is_none() && state == JobState::Interrupted;
        let delay_ms = if lost { 0 } else { self.backoff_ms(id) };
        let retryable = lost || matches!(state, JobState::Failed | JobState::TimedOut);
        if retryable && self.retry(id, at, delay_ms) {
            if let Some(job) = self.jobs.get_mut(&id) {
                job.run_mut().reason = reason;
            }
            return Ok(());
        }
        self.finish(id, state, at, reason);
        Ok(())
    }

    /// The backoff before the next attempt of `id`: the retry delay,
    /// doubled for each attempt after the first, capped.
    pub(super) fn backoff_ms(&self, id: JobId) -> u64 {
        let Some(job) = self.jobs.get(&id) else {
            return 0;
        };
        let doublings = job.attempts.saturating_sub(1).min(40);
        job.options()
            .retry_delay_ms
            .saturating_mul(1u64 << doublings)
            .min(RETRY_DELAY_CAP_MS)
    }

    /// Puts a job whose attempt just ended back to waiting, if it has
    /// retries left; `delay_ms` 0 queues it at once. Returns whether it did.
    pub(super) fn retry(&mut self, id: JobId, at: Timestamp, delay_ms: u64) -> bool {
        let Some(job) = self.jobs.get_mut(&id) else {
            return false;
        };
        if job.attempts > job.options().retries || self.shutting_down {
            return false;
        }
        let wake = (delay_ms > 0).then(|| at.plus_millis(delay_ms));
        job.run_mut().retry_at = wake;
        self.set_state(id, JobState::Waiting);
        if let Some(t) = wake {
            self.wake_at.insert((t, id));
        }
        self.maybe_release(id);
        true
    }

    /// Records the end of a job's running attempt in its history.
    pub(super) fn end_attempt(&mut self, id: JobId, at: Timestamp) {
        if let Some(job) = self.jobs.get_mut(&id) {
            let run = job.run_mut();
            run.history.push(Attempt {
                started_at: run.started_at.unwrap_or(at),
                finished_at: at,
                exit_code: run.exit_code,
                signal: run.signal,
            });
        }
    }

    /// Queues a waiting job whose prerequisites and time have all come.
    pub(super) fn maybe_release(&mut self, id: JobId) {
        let Some(job) = self.jobs.get(&id) else {
            return;
        };
        if job.state != JobState::Waiting
            || job.pending_deps > 0
            || !job.time_ok
            || job.run().retry_at.is_some()
        {
            return;
        }
        let key = (job.priority, id);
        let queue = job.queue.clone();
        self.set_state(id, JobState::Queued);
        self.queue_mut(&queue).ready.insert(key);
    }

    /// Takes a job that has not started out of the ready set and the timers.
    pub(super) fn leave_waiting(&mut self, id: JobId) {
        let Some(job) = self.jobs.get(&id) else {
            return;
        };
        let key = (job.priority, id);
        if let Some(t) = job.wake_time() {
            self.wake_at.remove(&(t, id));
        }
        if let Some(q) = self.queues.get_mut(&*job.queue) {
            q.ready.remove(&key);
        }
    }

    /// Bookkeeping when a job stops running: frees its slots and its timers.
    pub(super) fn leave_running(&mut self, id: JobId) {
        self.leave_preemption(id);
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        if let Some(run) = job.run.as_mut() {
            // The remote id stays: `status` shows which Slurm job (or
            // remote task) the last attempt was.
            run.process = None;
            if let Some(t) = run.timeout_at.take() {
                self.timeout_at.remove(&(t, id));
            }
        }
        let mut local = true;
        if let Some(q) = self.queues.get_mut(&*job.queue) {
            q.running = q.running.saturating_sub(1);
            local = q.executor.is_local();
        }
        self.running = self.running.saturating_sub(1);
        if local {
            self.running_local = self.running_local.saturating_sub(1);
        }
        self.kill_at.retain(|&(_, j)| j != id);
    }

    /// Moves a job into a terminal state, and settles the jobs that wait for
    /// it: they may now queue, or (it did not succeed) be skipped in turn.
    pub(super) fn finish(
        &mut self,
        id: JobId,
        state: JobState,
        at: Timestamp,
        reason: Option<String>,
    ) {
        let mut work = vec![(id, state, reason)];
        while let Some((id, state, reason)) = work.pop() {
            self.set_state(id, state);
            if let Some(job) = self.jobs.get_mut(&id) {
                let run = job.run_mut();
                run.finished_at = Some(at);
                run.retry_at = None;
                if reason.is_some() {
                    run.reason = reason;
                }
            }
            self.counters.finished += 1;
            for dependent in self.dependents.remove(&id).unwrap_or_default() {
                let Some(job) = self.jobs.get_mut(&dependent) else {
                    continue;
                };
                if job.state.is_terminal() {
                    continue;
                }
                job.pending_deps = job.pending_deps.saturating_sub(1);
                let any = job.deps().iter().any(|&(d, any)| d == id && any);
                if !any && state != JobState::Succeeded {
                    self.leave_waiting(dependent);
                    work.push((
                        dependent,
                        JobState::Skipped,
                        Some(format!("job {id} it depends on ended {state}")),
                    ));
                } else {
                    self.maybe_release(dependent);
                }
            }
        }
    }

    /// The queue `name`, created (with default settings) if it does not
    /// exist: a job may name a queue nobody configured.
    pub(super) fn queue_mut(&mut self, name: &str) -> &mut Queue {
        self.queues.entry(name.to_owned()).or_default()
    }

    /// Changes a job's state, keeping its queue's counts right.
    pub(super) fn set_state(&mut self, id: JobId, state: JobState) {
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        let old = std::mem::replace(&mut job.state, state);
        self.transitions.push((id, state));
        if let Some(q) = self.queues.get_mut(&*job.queue) {
            let c = q.counts.get_mut(old);
            *c = c.saturating_sub(1);
            *q.counts.get_mut(state) += 1;
        }
    }

    /// The job `id`, which must be in one of `states`.
    pub(super) fn job_in(&self, id: JobId, states: &[JobState]) -> Result<&Job, CoreError> {
        match self.jobs.get(&id) {
            Some(job) if states.contains(&job.state) => Ok(job),
            Some(job) => Err(CoreError::Inconsistent(format!(
                "job {id} is {}, expected one of {states:?}",
                job.state
            ))),
            None => Err(CoreError::Inconsistent(format!("job {id} does not exist"))),
        }
    }

    /// Mutable [`Core::job_in`].
    pub(super) fn job_in_mut(
        &mut self,
        id: JobId,
        states: &[JobState],
    ) -> Result<&mut Job, CoreError> {
        self.job_in(id, states)?;
        self.jobs
            .get_mut(&id)
            .map(|job| &mut **job)
            .ok_or_else(|| CoreError::Inconsistent(format!("job {id} does not exist")))
    }
}

/// Why a job ended `timed_out`, for its `reason`.
fn timed_out_reason(timeout_ms: Option<u64>) -> String {
    let ms = timeout_ms.unwrap_or_default();
    format!(
        "ran past its {} timeout",
        humantime::format_duration(std::time::Duration::from_millis(ms))
    )
}
