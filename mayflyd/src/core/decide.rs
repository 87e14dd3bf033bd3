//! Deciding: each request a client makes becomes the events it causes, or a
//! refusal. Nothing here changes the state; the driver logs the events and
//! then applies them (see [`super::apply`]).

use mayfly_protocol::{
    CancelOutcome, DepRef, ExecutorSpec, JobId, JobSpec, JobState, MAX_USER_PRIORITY,
    MIN_USER_PRIORITY, Timestamp,
};

use super::validate::{
    excerpt, priority_error, refuse_duplicates, validate_labels, validate_queue_name,
};
use super::{Core, CoreError, Event, RunningAttempt, StopReason};

impl Core {
    /// Validates a submit and returns its event (which assigns the next id).
    pub fn decide_submit(&self, now: Timestamp, spec: JobSpec) -> Result<Event, CoreError> {
        let mut events = self.decide_batch(now, vec![spec])?;
        events
            .pop()
            .ok_or_else(|| CoreError::BadRequest("nothing to submit".into()))
    }

    /// Validates a batch submit and returns one `Submitted` event per job,
    /// with consecutive ids. A dependency on `BatchLine(k)` names the job on
    /// line `k` (from 1) of the batch, which must come before it.
    pub fn decide_batch(
        &self,
        now: Timestamp,
        specs: Vec<JobSpec>,
    ) -> Result<Vec<Event>, CoreError> {
        if self.shutting_down {
            return Err(CoreError::ShuttingDown);
        }
        if specs.is_empty() {
            return Err(CoreError::BadRequest(
                "the batch is empty: give at least one command".into(),
            ));
        }
        let held = self.jobs.len();
        if held.saturating_add(specs.len()) > self.config.max_jobs {
            return Err(CoreError::Limit(format!(
                "the daemon holds {held} jobs and may hold {} (--max-jobs); {} more would pass \
                 that: forget finished jobs with `mayflyctl clean`, or raise --max-jobs",
                self.config.max_jobs,
                specs.len()
            )));
        }
        let first = self.next_id;
        let count = specs.len();
        let mut events = Vec::with_capacity(count);
        for (index, mut spec) in specs.into_iter().enumerate() {
            let line = index + 1;
            let at_line = |msg: String| CoreError::BadRequest(format!("line {line}: {msg}"));
            let batch = count > 1;
            self.validate_spec(&spec).map_err(|e| match e {
                CoreError::BadRequest(m) if batch => at_line(m),
                CoreError::Limit(m) if batch => CoreError::Limit(format!("line {line}: {m}")),
                other => other,
            })?;
            for dep in &mut spec.after {
                let id = match dep.on {
                    DepRef::Job(id) => {
                        if !self.jobs.contains_key(&id)
                            && !(first..first + index as u64).contains(&id.0)
                        {
                            let msg = format!(
                                "no job {id} to wait for; `mayflyctl status` lists the jobs"
                            );
                            return Err(if batch {
                                at_line(msg)
                            } else {
                                CoreError::BadRequest(msg)
                            });
                        }
                        id
                    }
                    DepRef::BatchLine(k) if k >= 1 && (k as usize) < line => {
                        JobId(first + u64::from(k) - 1)
                    }
                    DepRef::BatchLine(k) => {
                        return Err(at_line(format!(
                            "line {k} is not an earlier line of this batch; a job can only wait for jobs before it (no cycles)"
                        )));
                    }
                };
                dep.on = DepRef::Job(id);
            }
            events.push(Event::Submitted {
                id: JobId(first + index as u64),
                at: now,
                spec,
            });
        }
        Ok(events)
    }

    /// Decides what cancelling `id` means: the outcome to report and the
    /// event to log, if any.
    pub fn decide_cancel(&self, now: Timestamp, id: JobId) -> (CancelOutcome, Option<Event>) {
        let Some(job) = self.jobs.get(&id) else {
            return (CancelOutcome::NotFound, None);
        };
        match job.state {
            JobState::Waiting | JobState::Queued => (
                CancelOutcome::Cancelled,
                Some(Event::Cancelled { id, at: now }),
            ),
            JobState::Running if job.run().stop.is_some() => (CancelOutcome::Signalled, None),
            JobState::Running => (
                CancelOutcome::Signalled,
                Some(Event::StopRequested {
                    id,
                    at: now,
                    reason: StopReason::Cancel,
                    grace_ms: self.config.kill_grace_ms,
                }),
            ),
            state => (CancelOutcome::AlreadyEnded(state), None),
        }
    }

    /// Decides `queue add` (`create`) or `queue set`.
    /// `concurrency` and `executor` are the settings to change (`None`:
    /// leave as they are; a new queue has no limit of its own and runs its
    /// jobs locally). A queue's executor changes only while none of its
    /// jobs runs: a running job stays with the executor that started it.
    pub fn decide_queue_set(
        &self,
        name: &str,
        concurrency: Option<Option<u32>>,
        create: bool,
        executor: Option<ExecutorSpec>,
    ) -> Result<Vec<Event>, CoreError> {
        validate_queue_name(name)?;
        if concurrency == Some(Some(0)) {
            return Err(CoreError::BadRequest(
                "a concurrency of 0 would never run anything; pause the queue instead".into(),
            ));
        }
        let existing = self.queues.get(name);
        match (create, existing) {
            (true, Some(_)) => {
                return Err(CoreError::Conflict(format!(
                    "queue {name:?} already exists; change it with `mayflyctl queue set {name} ...`"
                )));
            }
            (false, None) => {
                return Err(CoreError::BadRequest(format!(
                    "no queue {name:?}; create it with `mayflyctl queue add {name}`"
                )));
            }
            _ => {}
        }
        if let (Some(queue), Some(new)) = (existing, &executor)
            && *new != queue.executor
            && queue.running > 0
        {
            return Err(CoreError::Conflict(format!(
                "queue {name:?} has {} running jobs on its {} executor; change its executor \
                 once none runs (pause the queue and wait for them)",
                queue.running,
                queue.executor.kind()
            )));
        }
        let mut events = Vec::new();
        if create || concurrency.is_some() {
            events.push(Event::QueueConfigured {
                name: name.to_string(),
                concurrency: concurrency.flatten(),
            });
        }
        if let Some(executor) = executor
            && existing.is_none_or(|q| q.executor != executor)
            && !(create && executor.is_local())
        {
            events.push(Event::QueueExecutor {
                name: name.to_string(),
                executor,
            });
        }
        Ok(events)
    }

    /// Decides `queue rm`: only an existing queue other than `default` that
    /// holds no unfinished job.
    pub fn decide_queue_remove(&self, name: &str) -> Result<Event, CoreError> {
        if name == mayfly_protocol::DEFAULT_QUEUE {
            return Err(CoreError::BadRequest(
                "the default queue always exists and cannot be removed".into(),
            ));
        }
        let Some(q) = self.queues.get(name) else {
            return Err(CoreError::BadRequest(format!(
                "no queue {}; `mayflyctl queue list` shows them",
                excerpt(name)
            )));
        };
        let unfinished = q.counts.waiting + q.counts.queued + q.counts.running;
        if unfinished > 0 {
            return Err(CoreError::Conflict(format!(
                "queue {name:?} still holds {unfinished} unfinished jobs; cancel them or wait for them first"
            )));
        }
        Ok(Event::QueueRemoved {
            name: name.to_string(),
        })
    }

    /// Decides `pause`/`resume` of `queues` (all when empty).
    pub fn decide_pause(
        &self,
        queues: &[String],
        paused: bool,
        running: bool,
    ) -> Result<Vec<Event>, CoreError> {
        if let Some(missing) = queues.iter().find(|q| !self.queues.contains_key(*q)) {
            return Err(CoreError::BadRequest(format!(
                "no queue {}; `mayflyctl queue list` shows them",
                excerpt(missing)
            )));
        }
        let names: Vec<String> = if queues.is_empty() {
            self.queues.keys().cloned().collect()
        } else {
            queues.to_vec()
        };
        Ok(names
            .into_iter()
            .map(|name| Event::QueuePaused {
                name,
                paused,
                signal_running: running,
            })
            .collect())
    }

    /// Decides `restart`: each listed job must have finished; its copy gets
    /// a new id (and no dependencies or delay: those were about the original).
    pub fn decide_restart(&self, now: Timestamp, ids: &[JobId]) -> Result<Vec<Event>, CoreError> {
        refuse_duplicates(ids)?;
        let mut specs = Vec::with_capacity(ids.len());
        for id in ids {
            let job = self.jobs.get(id).ok_or(CoreError::NotFound(*id))?;
            if !job.state.is_terminal() {
                return Err(CoreError::Conflict(format!(
                    "job {id} is {}; only finished jobs can be restarted (cancel it first)",
                    job.state
                )));
            }
            let mut spec = job.spec();
            spec.after.clear();
            spec.not_before = None;
            specs.push(spec);
        }
        self.decide_batch(now, specs)
    }

    /// Decides `clean`: the finished jobs in `states` (all terminal states
    /// when empty) that finished at least `older_than_ms` ago.
    pub fn decide_clean(
        &self,
        now: Timestamp,
        states: &[JobState],
        older_than_ms: Option<u64>,
    ) -> Result<Option<Event>, CoreError> {
        if let Some(bad) = states.iter().find(|s| !s.is_terminal()) {
            return Err(CoreError::BadRequest(format!(
                "{bad} jobs have not finished; clean takes finished states (succeeded, failed, cancelled, timed_out, skipped, interrupted)"
            )));
        }
        let ids: Vec<JobId> = self
            .jobs
            .iter()
            .filter(|(_, j)| j.state.is_terminal())
            .filter(|(_, j)| states.is_empty() || states.contains(&j.state))
            .filter(|(_, j)| {
                older_than_ms.is_none_or(|age| {
                    j.run()
                        .finished_at
                        .is_some_and(|t| now.millis_since(t) >= age)
                })
            })
            .map(|(id, _)| *id)
            .collect();
        Ok((!ids.is_empty()).then_some(Event::Removed { ids }))
    }

    /// Decides `edit` of a job that has not started.
    pub fn decide_edit(
        &self,
        id: JobId,
        priority: Option<u8>,
        queue: Option<String>,
        labels: Option<Vec<(String, String)>>,
    ) -> Result<Event, CoreError> {
        let job = self.jobs.get(&id).ok_or(CoreError::NotFound(id))?;
        if !matches!(job.state, JobState::Waiting | JobState::Queued) {
            return Err(CoreError::Conflict(format!(
                "job {id} is {}; only jobs that have not started can be edited",
                job.state
            )));
        }
        let priority = priority.unwrap_or(job.priority);
        let queue = queue.unwrap_or_else(|| job.queue.to_string());
        if !(MIN_USER_PRIORITY..=MAX_USER_PRIORITY).contains(&priority) {
            return Err(priority_error(priority));
        }
        validate_queue_name(&queue)?;
        if let Some(labels) = &labels {
            validate_labels(labels)?;
        }
        Ok(Event::Edited {
            id,
            priority,
            queue,
            labels: labels.unwrap_or_else(|| job.options().labels.clone()),
        })
    }

    /// Decides a progress report from a job.
    pub fn decide_progress(&self, id: JobId, text: String) -> Result<Event, CoreError> {
        let job = self.jobs.get(&id).ok_or(CoreError::NotFound(id))?;
        if job.state.is_terminal() {
            return Err(CoreError::Conflict(format!(
                "job {id} has already ended ({})",
                job.state
            )));
        }
        let text: String = text.chars().filter(|c| !c.is_control()).take(200).collect();
        Ok(Event::Progress { id, text })
    }

    /// Begins a graceful shutdown: from now on nothing new starts and
    /// submits are refused. Returns the events that stop every running job
    /// of a local queue, SIGKILL following after `grace_ms`. Jobs that run
    /// elsewhere (a Slurm cluster) are left running: the log keeps them
    /// running, and the next start re-attaches them.
    pub fn begin_shutdown(&mut self, now: Timestamp, grace_ms: u64) -> Vec<Event> {
        self.shutting_down = true;
        self.jobs
            .iter()
            .filter(|(_, job)| {
                job.state == JobState::Running
                    && job.run().stop != Some(StopReason::Shutdown)
                    && self
                        .queues
                        .get(&*job.queue)
                        .is_none_or(|q| q.executor.is_local())
            })
            .map(|(&id, _)| Event::StopRequested {
                id,
                at: now,
                reason: StopReason::Shutdown,
                grace_ms,
            })
            .collect()
    }

    /// The next job to start, as a `Started` event, or `None` when nothing
    /// can start (no free slot, nothing queued, or shutting down).
    ///
    /// Picks the best `(priority, id)` among the queues that have room, so a
    /// full or paused queue never blocks the others.
    ///
    /// The global limit (`--concurrency`) bounds the jobs of local queues;
    /// a queue whose jobs run elsewhere is bounded by its own limit alone.
    pub fn next_start(&self, now: Timestamp) -> Option<Event> {
        if self.shutting_down {
            return None;
        }
        let local_room = self.local_room();
        let start = self
            .queues
            .values()
            .filter(|q| q.has_room() && (local_room || !q.executor.is_local()))
            .filter_map(|q| q.ready.first())
            .min()
            .copied();
        // A frozen job gets a free slot before any job that is not more
        // urgent; with no slot free, a more urgent job may take one from a
        // preemptible job.
        match (self.thawable(local_room), start) {
            (Some((p, id)), start) if start.is_none_or(|(q, _)| p <= q) => {
                Some(Event::Thawed { id, at: now })
            }
            (_, Some((_, id))) => Some(Event::Started { id, at: now }),
            _ => self.preemption(now, local_room),
        }
    }

    /// Up to `n` queued jobs, in the order they would start if every queue
    /// had room (paused queues left out, nothing while shutting down): the
    /// jobs worth getting ready ahead of their start. A guess, not a
    /// promise: limits, new submits and cancels may change the order.
    pub fn upcoming(&self, n: usize) -> Vec<JobId> {
        if self.shutting_down {
            return Vec::new();
        }
        let mut next: Vec<(u8, JobId)> = self
            .queues
            .values()
            .filter(|q| !q.paused)
            .flat_map(|q| q.ready.iter().take(n).copied())
            .collect();
        next.sort_unstable();
        next.truncate(n);
        next.into_iter().map(|(_, id)| id).collect()
    }

    /// The processes the log says are running, `(job, pid, start ticks)`:
    /// after a crash, what the previous daemon left behind.
    pub fn logged_processes(&self) -> Vec<(JobId, u32, u64)> {
        self.jobs
            .iter()
            .filter(|(_, j)| j.state == JobState::Running)
            .filter_map(|(id, j)| j.run().process.map(|(pid, start)| (*id, pid, start)))
            .collect()
    }

    /// The event that keeps ids below `seen + 1` from being handed out, if
    /// the log does not already.
    pub fn reserve_ids_through(&self, seen: u64) -> Option<Event> {
        (seen >= self.next_id).then_some(Event::IdsReserved { next_id: seen + 1 })
    }

    /// The attempts the log shows running, with where they run: after a
    /// restart, each is re-attached by its executor or interrupted.
    pub fn running_attempts(&self) -> Vec<RunningAttempt> {
        self.jobs
            .iter()
            .filter(|(_, job)| job.state == JobState::Running)
            .map(|(&id, job)| RunningAttempt {
                id,
                attempt: job.attempts,
                executor: self.executor_of(&job.queue),
                process: job.run().process,
                remote_id: job.run().remote.clone(),
            })
            .collect()
    }

    /// Events that close the books after a replay: every job the log still
    /// shows running was interrupted by the crash or stop, except those
    /// `reattached` (their executor follows them to their end).
    pub fn recovery_events(&self, now: Timestamp, reattached: &[JobId]) -> Vec<Event> {
        self.jobs
            .iter()
            .filter(|(id, job)| job.state == JobState::Running && !reattached.contains(id))
            .map(|(&id, _)| Event::Interrupted { id, at: now })
            .collect()
    }
}
