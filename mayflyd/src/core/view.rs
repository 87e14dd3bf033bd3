//! What the core shows of its state: jobs, queues, counters and system
//! tasks, for listings, `dump-state` and the driver's bookkeeping. Nothing
//! here changes the state.

use mayfly_protocol::{
    JobId, JobInfo, JobInfoRef, JobState, QueueInfo, SchedulerInfo, SystemTaskInfo,
};

use super::Core;

impl Core {
    /// True once a graceful shutdown began.
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down
    }

    /// How many jobs run now.
    pub fn running_count(&self) -> u32 {
        self.running
    }

    /// How many jobs of local queues run now: what a graceful shutdown
    /// waits for (jobs that run elsewhere go on without the daemon and are
    /// re-attached when it is back).
    pub fn running_local_count(&self) -> u32 {
        self.running_local
    }

    /// True when job `id` belongs to a queue whose jobs run on this
    /// machine (or to no queue the core knows: those run locally).
    pub fn runs_locally(&self, id: JobId) -> bool {
        self.jobs
            .get(&id)
            .and_then(|job| self.queues.get(&*job.queue))
            .is_none_or(|q| q.executor.is_local())
    }

    /// Finished jobs whose finish callback is owed and has not run, in id
    /// order (after a restart: those the last run did not get to).
    pub fn callbacks_due(&self) -> Vec<JobId> {
        self.callbacks_due.iter().copied().collect()
    }

    /// The finish callback job `id` set for itself (`submit --on-finish`).
    pub fn on_finish_of(&self, id: JobId) -> Option<&str> {
        self.jobs
            .get(&id)?
            .options()
            .ext
            .iter()
            .find_map(|e| match e {
                mayfly_protocol::SpecExt::OnFinish(line) => Some(line.as_str()),
                _ => None,
            })
    }

    /// Whether `id`'s finish callback is owed.
    pub fn callback_due(&self, id: JobId) -> bool {
        self.callbacks_due.contains(&id)
    }

    /// How many jobs the core holds, in any state.
    pub fn job_count(&self) -> usize {
        self.jobs.len()
    }

    /// The state of job `id`.
    pub fn state_of(&self, id: JobId) -> Option<JobState> {
        self.jobs.get(&id).map(|j| j.state)
    }

    /// What clients see of job `id`.
    pub fn job_info(&self, id: JobId) -> Option<JobInfo> {
        self.job_view(id).map(|view| view.to_info())
    }

    /// What clients see of job `id`, borrowed: listings encode this
    /// straight into frames, without copying the job.
    pub fn job_view(&self, id: JobId) -> Option<JobInfoRef<'_>> {
        self.jobs.get(&id).map(|job| job.view(id))
    }

    /// What clients see of every job, borrowed, in submission order.
    pub fn job_views(&self) -> impl Iterator<Item = JobInfoRef<'_>> + '_ {
        self.jobs.iter().map(|(&id, job)| job.view(id))
    }

    /// What clients see of the jobs after `after`, borrowed, in submission
    /// order: the rest of a listing that goes out in chunks.
    pub fn job_views_after(&self, after: JobId) -> impl Iterator<Item = JobInfoRef<'_>> + '_ {
        use std::ops::Bound;
        self.jobs
            .range((Bound::Excluded(after), Bound::Unbounded))
            .map(|(&id, job)| job.view(id))
    }

    /// Every job id, in submission order.
    pub fn job_ids(&self) -> impl Iterator<Item = JobId> + '_ {
        self.jobs.keys().copied()
    }

    /// Every queue as `dump-state` shows it.
    pub fn queue_infos(&self) -> Vec<QueueInfo> {
        self.queues
            .iter()
            .map(|(name, q)| QueueInfo {
                name: name.clone(),
                concurrency: q.concurrency,
                paused: q.paused,
                counts: q.counts,
                executor: q.executor.clone(),
            })
            .collect()
    }

    /// The scheduler's settings and counters.
    pub fn scheduler_info(&self) -> SchedulerInfo {
        SchedulerInfo {
            concurrency: self.config.concurrency,
            quantum_ms: self.config.quantum_ms,
            next_job_id: self.next_id,
            jobs_submitted: self.counters.submitted,
            jobs_started: self.counters.started,
            jobs_finished: self.counters.finished,
            shutting_down: self.shutting_down,
        }
    }

    /// Every system task, by name.
    pub fn system_infos(&self) -> Vec<SystemTaskInfo> {
        let mut tasks: Vec<_> = self
            .system
            .values()
            .map(|t| SystemTaskInfo {
                name: t.name.clone(),
                priority: 0,
                state: t.state.to_string(),
                started_at: t.started_at,
            })
            .collect();
        tasks.sort_by(|a, b| a.name.cmp(&b.name));
        tasks
    }
}
