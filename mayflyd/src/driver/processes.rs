//! The process table: the one owner of where each running attempt runs,
//! and of the signals asked for before that is known.
//!
//! Between `Started` (the core gave the job a slot) and the executor's
//! report that the attempt runs, a cancel or a timeout can already ask for
//! a signal: it waits here and goes out as soon as the attempt's handle is
//! known. Once the attempt ends, its entry is gone.

use std::collections::HashMap;

use mayfly_protocol::JobId;

use crate::core::Signal;
use crate::exec::Handle;

/// A job whose start the executor has not reported yet.
#[derive(Debug, Default)]
struct Starting {
    /// Which attempt it is, for the activity log.
    attempt: u32,
    /// Signals asked for meanwhile, in order.
    signals: Vec<Signal>,
}

/// Where a signal for a job goes now.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// To this running attempt.
    To(Handle),
    /// Nowhere yet: kept until the attempt's start is reported.
    Kept,
    /// Nowhere: the job has no attempt under way.
    Nowhere,
}

/// Running and starting attempts, by job.
#[derive(Debug, Default)]
pub struct ProcessTable {
    /// Attempts being started.
    starting: HashMap<JobId, Starting>,
    /// Attempts that run.
    running: HashMap<JobId, Handle>,
}

impl ProcessTable {
    /// Attempt `attempt` of `id` is being started.
    pub fn starting(&mut self, id: JobId, attempt: u32) {
        self.running.remove(&id);
        self.starting.insert(
            id,
            Starting {
                attempt,
                signals: Vec::new(),
            },
        );
    }

    /// The attempt of `id` runs at `handle`: returns which attempt it is and
    /// the signals kept for it, to send now, in order.
    pub fn started(&mut self, id: JobId, handle: Handle) -> (u32, Vec<Signal>) {
        let Starting { attempt, signals } = self.starting.remove(&id).unwrap_or_default();
        self.running.insert(id, handle);
        (attempt, signals)
    }

    /// The attempt of `id` did not start, or ended: forget it.
    pub fn gone(&mut self, id: JobId) {
        self.starting.remove(&id);
        self.running.remove(&id);
    }

    /// Where `signal` for `id` goes; kept if the attempt is still starting.
    pub fn route(&mut self, id: JobId, signal: Signal) -> Route {
        if let Some(handle) = self.running.get(&id) {
            return Route::To(handle.clone());
        }
        match self.starting.get_mut(&id) {
            Some(starting) => {
                starting.signals.push(signal);
                Route::Kept
            }
            None => Route::Nowhere,
        }
    }

    /// True while an attempt's start has not been reported yet.
    pub fn any_starting(&self) -> bool {
        !self.starting.is_empty()
    }

    /// Notes an attempt that runs already (re-attached after a restart).
    pub fn adopt(&mut self, id: JobId, handle: Handle) {
        self.running.insert(id, handle);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_before_the_start_wait_and_go_out_in_order_after_it() {
        let mut t = ProcessTable::default();
        assert_eq!(t.route(JobId(1), Signal::Term), Route::Nowhere);
        t.starting(JobId(1), 2);
        assert_eq!(t.route(JobId(1), Signal::Term), Route::Kept);
        assert_eq!(t.route(JobId(1), Signal::Cont), Route::Kept);
        let handle = Handle::Process { pgid: 42 };
        let (attempt, kept) = t.started(JobId(1), handle.clone());
        assert_eq!(attempt, 2);
        assert_eq!(kept, vec![Signal::Term, Signal::Cont]);
        assert_eq!(t.route(JobId(1), Signal::Kill), Route::To(handle));
        t.gone(JobId(1));
        assert_eq!(t.route(JobId(1), Signal::Kill), Route::Nowhere);
    }
}
