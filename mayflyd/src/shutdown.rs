//! The daemon's one shutdown: the stages it goes through, what waits on
//! each, and how long its last steps may take.
//!
//! Whatever starts it (SIGTERM, `mayflyctl shutdown`, a front door, the
//! library's handle), a shutdown goes through the same stages, each a
//! cancellation every part of the daemon can wait on:
//!
//! 1. **begun** — the driver stops starting jobs and refuses submits,
//!    signals running jobs; the listeners stop accepting, `/__health` turns
//!    503;
//! 2. **system tasks stop** — near the end, before the log closes, so their
//!    exit is still recorded;
//! 3. **done** — the driver has finished (every job ended, the log is
//!    closed): sessions, the HTTP server and every other task stop.
//!
//! A second signal **forces** the exit at once. Every task that must end
//! before the daemon exits runs on one [`TaskTracker`]; each of the last
//! steps (the log's last acknowledgements, the system tasks, the open
//! connections) waits at most `--shutdown-step-timeout`.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The shutdown: see the module documentation. Cheap to clone; every clone
/// is the same shutdown.
#[derive(Debug, Clone)]
pub struct Shutdown {
    /// Cancelled when a shutdown begins.
    begun: CancellationToken,
    /// Cancelled when the system tasks must stop.
    system: CancellationToken,
    /// Cancelled when the driver has finished.
    done: CancellationToken,
    /// Cancelled on a second signal: exit without waiting.
    forced: CancellationToken,
    /// Every task that must end before the daemon exits.
    tasks: TaskTracker,
    /// How long each of the last steps may take.
    step_timeout: Duration,
}

impl Shutdown {
    /// A shutdown not yet begun, whose last steps wait at most
    /// `step_timeout` each.
    pub fn new(step_timeout: Duration) -> Self {
        Self {
            begun: CancellationToken::new(),
            system: CancellationToken::new(),
            done: CancellationToken::new(),
            forced: CancellationToken::new(),
            tasks: TaskTracker::new(),
            step_timeout,
        }
    }

    /// Begins the shutdown (idempotent).
    pub fn begin(&self) {
        self.begun.cancel();
    }

    /// Resolves once a shutdown has begun (or the daemon is done).
    pub async fn begun(&self) {
        tokio::select! {
            () = self.begun.cancelled() => {}
            () = self.done.cancelled() => {}
        }
    }

    /// True once a shutdown has begun.
    pub fn is_begun(&self) -> bool {
        self.begun.is_cancelled() || self.done.is_cancelled()
    }

    /// The token system tasks get: cancelled when they must stop.
    pub fn system_token(&self) -> CancellationToken {
        self.system.clone()
    }

    /// Tells the system tasks to stop.
    pub fn stop_system_tasks(&self) {
        self.system.cancel();
    }

    /// The driver has finished: everything else stops now.
    pub fn driver_done(&self) {
        self.begun.cancel();
        self.system.cancel();
        self.done.cancel();
    }

    /// The token of the last stage: cancelled when the driver has finished
    /// (sessions and servers stop).
    pub fn done_token(&self) -> CancellationToken {
        self.done.clone()
    }

    /// The token of the first stage: cancelled when a shutdown begins
    /// (listeners stop accepting).
    pub fn begun_token(&self) -> CancellationToken {
        self.begun.clone()
    }

    /// Forces the exit (a second signal).
    pub fn force(&self) {
        self.forced.cancel();
    }

    /// Resolves if the exit is forced.
    pub async fn forced(&self) {
        self.forced.cancelled().await;
    }

    /// Where the tasks that must end before the daemon exits run.
    pub fn tasks(&self) -> &TaskTracker {
        &self.tasks
    }

    /// How long each of the last steps may take.
    pub fn step_timeout(&self) -> Duration {
        self.step_timeout
    }

    /// Stops everything and waits (at most the step timeout) for the
    /// tasks; false if some did not end in time.
    pub async fn wait_tasks(&self) -> bool {
        self.driver_done();
        self.tasks.close();
        tokio::time::timeout(self.step_timeout, self.tasks.wait())
            .await
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn stages_go_in_order_and_the_wait_is_bounded() {
        let shutdown = Shutdown::new(Duration::from_secs(5));
        assert!(!shutdown.is_begun());
        let system = shutdown.system_token();
        let done = shutdown.done_token();
        shutdown.begin();
        assert!(shutdown.is_begun());
        shutdown.begun().await;
        assert!(!system.is_cancelled() && !done.is_cancelled());
        shutdown.stop_system_tasks();
        assert!(system.is_cancelled() && !done.is_cancelled());
        // A task that never ends holds the wait for the step timeout only.
        shutdown.tasks().spawn(std::future::pending::<()>());
        let started = tokio::time::Instant::now();
        assert!(!shutdown.wait_tasks().await);
        assert_eq!(started.elapsed(), Duration::from_secs(5));
        assert!(done.is_cancelled());
    }
}
