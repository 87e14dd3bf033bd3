//! Listings (`status`, `dump-state`, a door's list of jobs), page by page.
//!
//! A listing is read from the core one page at a time, each when the door
//! is ready for it ([`crate::service::ListSink`]): the first page at once,
//! so it sees every request its connection sent before, each later one when
//! the door hands the cursor back. So a listing in flight holds one page,
//! and a job that changes meanwhile shows as it was when its page was read;
//! one submitted meanwhile may show at the end, and one cleaned meanwhile
//! may be left out. Listings change nothing: they never enter the commit
//! pipeline.

use std::sync::Arc;

use mayfly_protocol::{JobId, JobInfoRef, StateHeader};

use super::Driver;
use super::dispatch::service_error;
use crate::core::CoreError;
use crate::service::{ListCursor, ListQuery, ListRest, ListSink, NextPage};

/// How many jobs the first page of a listing takes: few, since how large
/// the jobs are is not known yet; later pages take as many as come to
/// about [`PAGE_BYTES`].
const FIRST_PAGE_JOBS: usize = 64;

/// The most jobs one page takes.
const MAX_PAGE_JOBS: usize = 1000;

/// About how many bytes one page should take.
const PAGE_BYTES: usize = 64 * 1024;

impl Driver {
    /// Starts a listing of the jobs `query` names (all when it names none);
    /// with `header`, a `dump-state`. Unknown or repeated ids fail it.
    pub(super) fn list(&mut self, query: ListQuery, header: bool, mut sink: Box<dyn ListSink>) {
        if let Err(e) = crate::core::refuse_duplicates(&query.ids) {
            return sink.error(service_error(&e));
        }
        if let Some(missing) = query
            .ids
            .iter()
            .find(|id| self.core.state_of(**id).is_none())
        {
            return sink.error(service_error(&CoreError::NotFound(*missing)));
        }
        if header {
            sink.header(StateHeader {
                scheduler: self.core.scheduler_info(),
                queues: self.core.queue_infos(),
                system_tasks: self.core.system_infos(),
            });
        }
        let mut query = query;
        let rest = if query.ids.is_empty() {
            ListRest::After(JobId(0))
        } else {
            ListRest::Ids {
                ids: std::mem::take(&mut query.ids),
                next: 0,
            }
        };
        self.list_more(ListCursor {
            sink,
            next: NextPage {
                rest,
                per_page: FIRST_PAGE_JOBS,
                query: Arc::new(query),
            },
        });
    }

    /// Sends the next page of a listing, then either its end or where it
    /// goes on from.
    pub(super) fn list_more(&mut self, cursor: ListCursor) {
        let ListCursor {
            mut sink,
            next:
                NextPage {
                    rest,
                    per_page,
                    query,
                },
        } = cursor;
        if sink.is_closed() {
            return; // nobody listens any more
        }
        let admits = |job: &JobInfoRef<'_>| query.admits(job);
        let (page, rest): (Vec<JobInfoRef<'_>>, Option<ListRest>) = match rest {
            ListRest::After(after) => {
                let mut views = self.core.job_views_after(after).filter(admits);
                let page: Vec<_> = views.by_ref().take(per_page).collect();
                let more = views.next().is_some();
                let last = page.last().map(|job| job.id);
                (page, last.filter(|_| more).map(ListRest::After))
            }
            ListRest::Ids { ids, next } => {
                let end = (next + per_page).min(ids.len());
                // A job cleaned since the listing began is left out.
                let page = ids[next..end]
                    .iter()
                    .filter_map(|id| self.core.job_view(*id))
                    .filter(admits)
                    .collect();
                let rest = (end < ids.len()).then_some(ListRest::Ids { ids, next: end });
                (page, rest)
            }
        };
        let Some(sent) = sink.page(&page) else {
            return; // the listing has ended with an error
        };
        drop(page);
        match rest {
            Some(rest) => {
                let per_page = (per_page * PAGE_BYTES / sent.max(1)).clamp(1, MAX_PAGE_JOBS);
                sink.park(NextPage {
                    rest,
                    per_page,
                    query,
                });
            }
            None => sink.end(),
        }
    }
}
