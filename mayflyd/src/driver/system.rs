//! System tasks: the daemon's own work (the WAL flusher, the metrics
//! pusher), started at priority 0 through `spawn_system`, listed in
//! `dump-state`, told in the activity log when they start and exit, and
//! stopped near the end of a shutdown — before the log closes, so their
//! exit is still recorded.

use mayfly_protocol::Activity;

use super::{Driver, InternalMsg, SystemContext, SystemTaskFn};

impl Driver {
    /// Starts a system task and registers it in the core.
    pub(super) fn spawn_system(&mut self, name: String, task: SystemTaskFn) {
        self.core.system_started(&name, self.clock.now());
        self.view_stale = true;
        self.reporter.tell(Activity::SystemTaskStart {
            name: name.clone(),
            priority: 0,
        });
        let ctx = SystemContext {
            shutdown: self.shutdown.system_token(),
        };
        let fut = task(ctx);
        let report = self.internal_tx.clone();
        self.shutdown.tasks().spawn(async move {
            let error = fut.await.err().map(|e| format!("{e:#}"));
            let _ = report.send(InternalMsg::SystemExited { name, error });
        });
    }

    /// A system task returned.
    pub(super) fn system_exited(&mut self, name: String, error: Option<String>) {
        self.core.system_exited(&name, error.is_none());
        self.view_stale = true;
        self.reporter.tell(Activity::SystemTaskExit {
            ok: error.is_none(),
            name,
            error,
        });
    }

    /// Stops the system tasks and waits (bounded) until each has reported
    /// its exit, so `SystemTaskExit` is in the activity log before
    /// `ShutdownComplete`.
    pub(super) async fn stop_system_tasks(&mut self) {
        self.shutdown.stop_system_tasks();
        let wait = self.shutdown.step_timeout();
        let deadline = tokio::time::Instant::now() + wait;
        while self
            .core
            .system_infos()
            .iter()
            .any(|t| t.state == "running")
        {
            match tokio::time::timeout_at(deadline, self.inbox.internal.recv()).await {
                Ok(Some(InternalMsg::SystemExited { name, error })) => {
                    self.system_exited(name, error);
                }
                Ok(Some(_)) => {} // too late for anything else
                Ok(None) | Err(_) => {
                    tracing::warn!(
                        "some system tasks did not stop within {}",
                        humantime::format_duration(wait)
                    );
                    break;
                }
            }
        }
    }
}
