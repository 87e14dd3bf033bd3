//! The driver's side of finish callbacks (see [`crate::callback`]): when
//! one is owed, when it is handed to the runner, and what is logged once it
//! ran.
//!
//! A callback is owed when a job reaches its terminal state and it or the
//! daemon sets one: `CallbackDue` goes into the same group as the end. The
//! group's release (the end is durable) asks for the launch through the
//! driver's own inbox, so the callback is built from the state as it is
//! then; a job forgotten (`clean`) in the meantime gets none. Whatever is
//! due and not running is launched at start and after a rebuild, so
//! nothing owed is dropped.

use mayfly_protocol::{Activity, JobId};
use tokio::time::Instant;

use super::commit::{Delivery, Held};
use super::{Driver, InternalMsg};
use crate::callback::Callback;
use crate::core::Event;

impl Driver {
    /// `id` just ended: if a callback applies, logs that it is owed and
    /// asks for its launch once that is durable.
    pub(super) fn callback_owed(&mut self, id: JobId) {
        let applies =
            self.config.callbacks.default_line.is_some() || self.core.on_finish_of(id).is_some();
        if !applies {
            return;
        }
        // The end must be durable before the callback tells anyone of it:
        // a crash could otherwise turn it into another end (`interrupted`).
        // A group of the daemon's own facts is released before its write is
        // acknowledged, so this one asks for an fsync, and the launch is a
        // reply held until then.
        self.pipeline.needs_sync_for_replies();
        self.record(Event::CallbackDue { id });
        let internal = self.internal_tx.clone();
        self.pipeline.hold(Held::new(move |delivery: Delivery<'_>| {
            // A failed write is followed by a rebuild, which launches
            // whatever the log on disk says is owed.
            if matches!(delivery, Delivery::Durable) {
                let _ = internal.send(InternalMsg::CallbackOwed(id));
            }
        }));
    }

    /// Hands `id`'s callback to the runner, unless it runs already or is
    /// not owed (any more).
    pub(super) fn launch_callback(&mut self, id: JobId) {
        if !self.core.callback_due(id) || self.callbacks_running.contains(&id) {
            return;
        }
        let (Some(job), Some(spec)) = (self.core.job_info(id), self.core.spec(id)) else {
            return;
        };
        let own = spec.on_finish();
        let Some(callback) = Callback::of(&job, own, &spec.env, &self.config.callbacks) else {
            // Owed under a daemon --on-finish that is no longer set.
            tracing::info!(job = %id, "finish callback owed, but none is set any more; dropped");
            self.record(Event::CallbackDone { id });
            return;
        };
        let Some(runner) = &self.callback_runner else {
            return;
        };
        if runner.run(callback) {
            self.callbacks_running.insert(id);
        }
    }

    /// Launches every callback that is owed and not running: at start (the
    /// ones the last run did not get to) and after a rebuild.
    pub(super) fn launch_due_callbacks(&mut self) {
        for id in self.core.callbacks_due() {
            self.launch_callback(id);
        }
    }

    /// A callback ran: it is done (logged, not again after a restart),
    /// and the activity log and the metrics hear how it went.
    pub(super) fn callback_finished(&mut self, finished: Activity) {
        if let Activity::CallbackFinished { id, .. } = &finished {
            self.callbacks_running.remove(id);
            if self.core.callback_due(*id) {
                self.record(Event::CallbackDone { id: *id });
            }
        }
        self.pipeline.tell(finished);
    }

    /// At shutdown, once the last ends are durable: runs the callbacks they
    /// owe and waits (until `deadline`) for those running. What is still
    /// running then is left owed, and runs again after the restart.
    pub(super) async fn settle_callbacks(&mut self, deadline: Instant) {
        loop {
            while let Ok(msg) = self.inbox.internal.try_recv() {
                self.on_settling(msg);
            }
            if self.callbacks_running.is_empty() {
                return;
            }
            match tokio::time::timeout_at(deadline, self.inbox.internal.recv()).await {
                Ok(Some(msg)) => self.on_settling(msg),
                Ok(None) | Err(_) => {
                    tracing::warn!(
                        running = self.callbacks_running.len(),
                        "finish callbacks still running at shutdown; they run again after the restart"
                    );
                    return;
                }
            }
        }
    }

    /// [`Driver::settle_callbacks`]' handling of one internal message: the
    /// callbacks' own, and system tasks' exits; the rest is too late.
    fn on_settling(&mut self, msg: InternalMsg) {
        match msg {
            InternalMsg::CallbackOwed(id) => self.launch_callback(id),
            InternalMsg::CallbackFinished(finished) => self.callback_finished(finished),
            InternalMsg::SystemExited { name, error } => self.system_exited(name, error),
            _ => {}
        }
    }
}
