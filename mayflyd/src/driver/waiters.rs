//! The waiter registry: who waits for which jobs (`wait`, `submit --wait`,
//! `logs --follow`), and what each is told when a job ends.
//!
//! A wait names some jobs; it is told of each as it ends, then that the
//! wait is over. Several waits may name one job. The registry only keeps
//! the books; the driver holds each report in the commit group of the end
//! it reports, so nobody hears of an end before it is durable.

use std::collections::HashMap;
use std::sync::Arc;

use mayfly_protocol::JobId;

use crate::service::WaitSink;

/// One wait: the jobs it still waits for, and where its reports go.
#[derive(Debug)]
struct Wait {
    /// Jobs not yet ended.
    remaining: usize,
    /// Where the reports go.
    sink: Arc<dyn WaitSink>,
}

/// What to tell one wait of a job's end.
#[derive(Debug)]
pub struct Report {
    /// Where to tell it.
    pub sink: Arc<dyn WaitSink>,
    /// True when it was the wait's last job: the wait is over after this.
    pub last: bool,
}

/// Every pending wait.
#[derive(Debug, Default)]
pub struct Waiters {
    /// Waits by key.
    waits: HashMap<u64, Wait>,
    /// The waits of each job.
    by_job: HashMap<JobId, Vec<u64>>,
    /// The next key.
    next: u64,
}

impl Waiters {
    /// Registers a wait for `pending` jobs (none of them ended yet).
    pub fn add(&mut self, pending: &[JobId], sink: Arc<dyn WaitSink>) {
        if pending.is_empty() {
            return;
        }
        let key = self.next;
        self.next += 1;
        for id in pending {
            self.by_job.entry(*id).or_default().push(key);
        }
        self.waits.insert(
            key,
            Wait {
                remaining: pending.len(),
                sink,
            },
        );
    }

    /// Job `id` ended: the waits to tell, each once; waits that are over are
    /// forgotten.
    pub fn ended(&mut self, id: JobId) -> Vec<Report> {
        let Some(keys) = self.by_job.remove(&id) else {
            return Vec::new();
        };
        let mut reports = Vec::with_capacity(keys.len());
        for key in keys {
            let Some(wait) = self.waits.get_mut(&key) else {
                continue;
            };
            wait.remaining -= 1;
            let last = wait.remaining == 0;
            reports.push(Report {
                sink: wait.sink.clone(),
                last,
            });
            if last {
                self.waits.remove(&key);
            }
        }
        reports
    }

    /// Forgets every wait, returning where each went (the daemon is
    /// stopping: each is told so).
    pub fn drain(&mut self) -> Vec<Arc<dyn WaitSink>> {
        self.by_job.clear();
        self.waits.drain().map(|(_, w)| w.sink).collect()
    }
}

#[cfg(test)]
mod tests {
    use mayfly_protocol::JobInfo;

    use super::*;
    use crate::service::ServiceError;

    /// A sink that only exists to be compared.
    #[derive(Debug, Default)]
    struct Nowhere;

    impl WaitSink for Nowhere {
        fn ended(&self, _job: JobInfo) {}
        fn end(&self) {}
        fn error(&self, _error: ServiceError) {}
    }

    #[test]
    fn each_wait_hears_of_its_jobs_and_ends_after_the_last() {
        let mut w = Waiters::default();
        let a: Arc<dyn WaitSink> = Arc::new(Nowhere);
        let b: Arc<dyn WaitSink> = Arc::new(Nowhere);
        w.add(&[JobId(1), JobId(2)], a.clone());
        w.add(&[JobId(2)], b.clone());
        w.add(&[], b.clone());
        let one = w.ended(JobId(1));
        assert_eq!(one.len(), 1);
        assert!(Arc::ptr_eq(&one[0].sink, &a) && !one[0].last);
        let two = w.ended(JobId(2));
        assert_eq!(two.len(), 2);
        assert!(two.iter().all(|r| r.last));
        assert!(w.ended(JobId(2)).is_empty(), "told once");
        assert!(w.drain().is_empty(), "nothing left");
        w.add(&[JobId(3)], a);
        assert_eq!(w.drain().len(), 1);
        assert!(w.ended(JobId(3)).is_empty());
    }
}
