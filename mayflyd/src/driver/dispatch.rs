//! Request dispatch: the one `match` over the commands of the service API,
//! and one function per request.
//!
//! Each function asks the core to decide, records the events (a client's
//! change: its batch is fsynced) and answers. An answer that acknowledges a
//! change is held until the change is durable ([`Driver::acknowledge`]); a
//! refusal, or an answer that changes nothing, goes out at once.

use std::sync::Arc;
use std::time::Duration;

use mayfly_protocol::{
    CancelOutcome, CleanRequest, EditRequest, ErrorKind, JobId, JobSpec, PauseRequest, QueueInfo,
    QueueSetRequest,
};

use super::Driver;
use super::commit::{Delivery, Held};
use crate::core::{CoreError, Event};
use crate::exec::Executors;
use crate::service::{Command, Respond, ServiceError, WaitSink};

/// The service error for a core refusal.
pub fn service_error(e: &CoreError) -> ServiceError {
    let kind = match e {
        CoreError::BadRequest(_) => ErrorKind::BadRequest,
        CoreError::Conflict(_) => ErrorKind::Conflict,
        CoreError::ShuttingDown => ErrorKind::ShuttingDown,
        CoreError::NotFound(_) => ErrorKind::NotFound,
        CoreError::Limit(_) => ErrorKind::Limit,
        CoreError::Inconsistent(_) => ErrorKind::Internal,
    };
    ServiceError::new(kind, e.to_string())
}

impl Driver {
    /// Handles one command: the one `match` over requests.
    pub(super) fn on_command(&mut self, command: Command) {
        tracing::debug!(kind = command.kind(), "request");
        match command {
            Command::Submit { spec, respond } => self.submit(spec, respond),
            Command::SubmitBatch { specs, respond } => self.submit_batch(specs, respond),
            Command::Cancel { ids, respond } => self.cancel(ids, respond),
            Command::QueueSet { request, respond } => self.queue_set(request, respond),
            Command::QueueRemove { name, respond } => {
                let decided = self.core.decide_queue_remove(&name).map(|e| vec![e]);
                self.queue_change(decided, respond);
            }
            Command::Queues { respond } => {
                let _ = respond.send(Ok(self.core.queue_infos()));
            }
            Command::Pause { request, respond } => self.pause(request, respond),
            Command::Restart { ids, respond } => self.restart(ids, respond),
            Command::Clean { request, respond } => self.clean(request, respond),
            Command::Edit { request, respond } => self.edit(request, respond),
            Command::Progress { id, text, respond } => self.progress(id, text, respond),
            Command::Shutdown {
                timeout,
                reason,
                respond,
            } => self.shutdown_requested(timeout, reason, respond),
            Command::Job { id, respond } => {
                let found = self
                    .core
                    .job_info(id)
                    .ok_or_else(|| service_error(&CoreError::NotFound(id)));
                let _ = respond.send(found);
            }
            Command::List {
                query,
                header,
                sink,
            } => self.list(query, header, sink),
            Command::Wait { ids, sink } => self.wait(ids, sink),
        }
    }

    /// Answers `respond` with `value` once the batch is released: a change
    /// is acknowledged only once durable; if its write fails, the client
    /// hears that instead.
    fn acknowledge<T: Send + 'static>(&mut self, respond: Respond<T>, value: T) {
        self.pipeline.hold(Held::new(move |delivery: Delivery<'_>| {
            let _ = respond.send(match delivery {
                Delivery::Durable => Ok(value),
                Delivery::Failed(error) => Err(error.clone()),
            });
        }));
    }

    /// Answers a refusal at once.
    fn refuse<T>(respond: Respond<T>, error: &CoreError) {
        let _ = respond.send(Err(service_error(error)));
    }

    /// `submit`.
    fn submit(&mut self, spec: JobSpec, respond: Respond<JobId>) {
        match self.core.decide_submit(self.clock.now(), spec) {
            Ok(event) => {
                let id = event.job_id().unwrap_or_default();
                self.record_for_client(event);
                self.acknowledge(respond, id);
            }
            Err(e) => Self::refuse(respond, &e),
        }
    }

    /// `submit --stdin`: all or none.
    fn submit_batch(&mut self, specs: Vec<JobSpec>, respond: Respond<Vec<JobId>>) {
        match self.core.decide_batch(self.clock.now(), specs) {
            Ok(events) => {
                let ids = events.iter().filter_map(Event::job_id).collect();
                for event in events {
                    self.record_for_client(event);
                }
                self.acknowledge(respond, ids);
            }
            Err(e) => Self::refuse(respond, &e),
        }
    }

    /// `cancel`: each job's outcome; the stops are durable before the
    /// answer.
    fn cancel(&mut self, ids: Vec<JobId>, respond: Respond<Vec<(JobId, CancelOutcome)>>) {
        if let Err(e) = crate::core::refuse_duplicates(&ids) {
            return Self::refuse(respond, &e);
        }
        let now = self.clock.now();
        let mut outcomes = Vec::with_capacity(ids.len());
        for id in ids {
            let (outcome, event) = self.core.decide_cancel(now, id);
            if let Some(event) = event {
                self.record_for_client(event);
            }
            outcomes.push((id, outcome));
        }
        self.acknowledge(respond, outcomes);
    }

    /// `queue add` / `queue set`.
    fn queue_set(&mut self, request: QueueSetRequest, respond: Respond<Vec<QueueInfo>>) {
        if let Some(spec) = &request.executor
            && let Err(reason) = Executors::check(spec)
        {
            return Self::refuse(respond, &CoreError::BadRequest(reason));
        }
        let decided = self.core.decide_queue_set(
            &request.name,
            request.concurrency,
            request.create,
            request.executor,
        );
        self.queue_change(decided, respond);
    }

    /// `pause` / `resume`. Pausing with `--running` is refused for a queue
    /// whose executor cannot freeze its jobs, saying why.
    fn pause(&mut self, request: PauseRequest, respond: Respond<Vec<QueueInfo>>) {
        if request.paused
            && request.running
            && let Err(reason) = self.can_suspend(&request.queues)
        {
            return Self::refuse(respond, &CoreError::BadRequest(reason));
        }
        let decided = self
            .core
            .decide_pause(&request.queues, request.paused, request.running);
        self.queue_change(decided, respond);
    }

    /// Whether the running jobs of `queues` (all when empty) can be frozen;
    /// the error names the first queue whose executor cannot.
    fn can_suspend(&mut self, queues: &[String]) -> Result<(), String> {
        let named: Vec<(String, mayfly_protocol::ExecutorSpec)> = self
            .core
            .queue_infos()
            .into_iter()
            .filter(|q| queues.is_empty() || queues.contains(&q.name))
            .filter(|q| !q.executor.is_local())
            .map(|q| (q.name, q.executor))
            .collect();
        for (name, spec) in named {
            let executor = self.executors.get(&spec)?;
            executor
                .can_suspend()
                .map_err(|e| format!("queue {name:?}: {e}"))?;
        }
        Ok(())
    }

    /// Records a queue change (if any) and answers with every queue.
    fn queue_change(
        &mut self,
        decided: Result<Vec<Event>, CoreError>,
        respond: Respond<Vec<QueueInfo>>,
    ) {
        match decided {
            Ok(events) => {
                for event in events {
                    self.record_for_client(event);
                }
                let queues = self.core.queue_infos();
                self.acknowledge(respond, queues);
            }
            Err(e) => Self::refuse(respond, &e),
        }
    }

    /// `restart`: a fresh copy of each finished job.
    fn restart(&mut self, ids: Vec<JobId>, respond: Respond<Vec<(JobId, JobId)>>) {
        match self.core.decide_restart(self.clock.now(), &ids) {
            Ok(events) => {
                let pairs = ids
                    .iter()
                    .copied()
                    .zip(events.iter().filter_map(Event::job_id))
                    .collect();
                for event in events {
                    self.record_for_client(event);
                }
                self.acknowledge(respond, pairs);
            }
            Err(e) => Self::refuse(respond, &e),
        }
    }

    /// `clean`: forget finished jobs.
    fn clean(&mut self, request: CleanRequest, respond: Respond<Vec<JobId>>) {
        let decided =
            self.core
                .decide_clean(self.clock.now(), &request.states, request.older_than_ms);
        match decided {
            Ok(event) => {
                let ids = match &event {
                    Some(Event::Removed { ids }) => ids.clone(),
                    _ => Vec::new(),
                };
                if let Some(event) = event {
                    self.record_for_client(event);
                }
                self.acknowledge(respond, ids);
            }
            Err(e) => Self::refuse(respond, &e),
        }
    }

    /// `edit` of a job that has not started.
    fn edit(&mut self, request: EditRequest, respond: Respond<mayfly_protocol::JobInfo>) {
        let decided =
            self.core
                .decide_edit(request.id, request.priority, request.queue, request.labels);
        match decided {
            Ok(event) => {
                self.record_for_client(event);
                match self.core.job_info(request.id) {
                    Some(info) => self.acknowledge(respond, info),
                    None => Self::refuse(respond, &CoreError::NotFound(request.id)),
                }
            }
            Err(e) => Self::refuse(respond, &e),
        }
    }

    /// `progress`.
    fn progress(&mut self, id: JobId, text: String, respond: Respond<()>) {
        match self.core.decide_progress(id, text) {
            Ok(event) => {
                self.record_for_client(event);
                self.acknowledge(respond, ());
            }
            Err(e) => Self::refuse(respond, &e),
        }
    }

    /// `shutdown`: answered, then begun.
    fn shutdown_requested(
        &mut self,
        timeout: Option<Duration>,
        reason: String,
        respond: Respond<()>,
    ) {
        self.acknowledge(respond, ());
        self.begin_shutdown(timeout, reason);
    }

    /// `wait`: jobs that already ended are reported at once (once their end
    /// is durable), the others as they end.
    fn wait(&mut self, mut ids: Vec<JobId>, sink: Arc<dyn WaitSink>) {
        ids.sort();
        ids.dedup();
        if let Some(missing) = ids.iter().find(|id| self.core.state_of(**id).is_none()) {
            sink.error(service_error(&CoreError::NotFound(*missing)));
            return;
        }
        let (ended, pending): (Vec<JobId>, Vec<JobId>) = ids.into_iter().partition(|id| {
            self.core
                .state_of(*id)
                .is_some_and(mayfly_protocol::JobState::is_terminal)
        });
        if !ended.is_empty() {
            // Their ends may not be durable yet (see `job_ended`). With
            // nothing left unsynced, the journal skips the fsync.
            self.pipeline.needs_sync_for_replies();
        }
        let last = ended.len();
        for (n, id) in ended.into_iter().enumerate() {
            if let Some(info) = self.core.job_info(id) {
                self.hold_end(sink.clone(), info, pending.is_empty() && n + 1 == last);
            }
        }
        if pending.is_empty() {
            if last == 0 {
                sink.end();
            }
            return;
        }
        self.waiters.add(&pending, sink);
    }
}
