//! A failed write (disk full, I/O error): fail what was not durable,
//! rebuild the state from the log on disk, and keep what happened.
//!
//! The journal drops everything since its last sync. The clients of the
//! groups not yet released hear that their change was not made; the driver
//! re-reads the log into a fresh core, applies again the facts it had
//! already acted on (jobs it started, exits it saw) and logs them again.
//! Reads keep being served throughout. See `docs/durability.md`.

use mayfly_protocol::{ErrorKind, JobId, JobState};

use super::commit::Delivery;
use super::{Driver, activity};
use crate::core::Event;
use crate::journal::{WalCmd, encode_event};
use crate::service::ServiceError;

/// True for the events that record what happened in the world (an exit was
/// observed, a process started, a finish callback became owed by such an
/// exit or ran): they stay true whatever the disk did.
fn is_fact(event: &Event) -> bool {
    matches!(
        event,
        Event::Exited { .. }
            | Event::Interrupted { .. }
            | Event::Spawned { .. }
            | Event::StartDeferred { .. }
            | Event::Attached { .. }
            | Event::Usage { .. }
            | Event::CallbackDue { .. }
            | Event::CallbackDone { .. }
            | Event::Frozen { .. }
            | Event::Thawed { .. }
    )
}

impl Driver {
    /// Recovers from a failed write: see the module documentation.
    pub(super) async fn storage_failed(&mut self, error: String) {
        tracing::error!(%error, "write-ahead log write failed; failing the changes that were not durable");
        let refusal = ServiceError::new(
            ErrorKind::Storage,
            format!(
                "the daemon could not save the change: {error}; nothing was changed — free disk space under the state dir and retry"
            ),
        );
        let failure = self.pipeline.fail();
        // The facts before this index were released, so the activity log
        // has told them; those of the failed groups it has not.
        let mut facts = failure.told;
        let told = facts.len();
        for group in failure.failed {
            facts.extend(group.events.into_iter().filter(is_fact));
            for held in group.held {
                held.deliver(Delivery::Failed(&refusal));
            }
            // Its actions never ran: the rebuilt state does not ask for them.
        }
        let Some(journal) = self.journal.as_ref() else {
            return;
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        let config = self.core.config().clone();
        if !journal.send(WalCmd::Reopen { config, reply: tx }) {
            return;
        }
        let core = match rx.await {
            Ok(Ok(core)) => core,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "cannot re-read the write-ahead log; changes stay refused");
                self.pipeline.keep_facts(facts);
                return;
            }
            Err(_) => return,
        };
        let untold = self.adopt_rebuilt(core, &facts, told);
        // The launches the failed groups would have asked for.
        self.launch_due_callbacks();
        tracing::info!(
            facts = facts.len(),
            jobs = self.core.job_count(),
            "state rebuilt from the log after a storage failure"
        );
        for (id, state) in untold {
            if let Some(activity) = activity::of_transition(&self.core, id, state) {
                self.reporter.tell(activity);
            }
        }
        if !facts.is_empty() {
            let records = facts.iter().map(encode_event).collect();
            let write = self.pipeline.relog(facts, records);
            self.send(write.into_cmd());
        }
    }

    /// Replaces the core with `core`, rebuilt from the log, after applying
    /// `facts` to it (those from `told` on were never told): returns the
    /// state changes the untold facts caused, for the activity log.
    fn adopt_rebuilt(
        &mut self,
        mut core: crate::core::Core,
        facts: &[Event],
        told: usize,
    ) -> Vec<(JobId, JobState)> {
        core.adopt_runtime_state(&self.core);
        // Replaying the log and the told facts changed nothing the activity
        // log has not seen.
        core.take_transitions();
        let mut untold = Vec::new();
        for (n, event) in facts.iter().enumerate() {
            if n == told {
                core.take_transitions();
            }
            if let Err(e) = core.apply(event) {
                tracing::warn!(error = %e, ?event, "could not re-apply an event after a storage failure");
            }
        }
        if told < facts.len() {
            untold = core.take_transitions();
        }
        core.take_transitions();
        while core.poll_action().is_some() {}
        let old = std::mem::replace(&mut self.core, core);
        self.view_stale = true;
        if old.is_shutting_down() {
            // The stop requests may have been among the lost records.
            for event in self
                .core
                .begin_shutdown(self.clock.now(), self.shutdown_grace_ms())
            {
                self.record(event);
            }
        }
        untold
    }

    /// The SIGTERM-to-SIGKILL grace of the shutdown in progress.
    fn shutdown_grace_ms(&self) -> u64 {
        let left = self
            .give_up_at
            .map(|t| {
                t.saturating_duration_since(tokio::time::Instant::now())
                    .saturating_sub(self.shutdown.step_timeout())
            })
            .unwrap_or(self.config.shutdown_timeout);
        u64::try_from(left.as_millis()).unwrap_or(u64::MAX)
    }
}
