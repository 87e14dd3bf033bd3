//! `status`: report jobs as an aligned table or as a JSON array of job
//! objects, narrowed by `--queue`, `--state` and `--label`.
//!
//! The filters are applied here, on the client: the daemon streams every
//! job asked for (all of them, or the given ids) and [`StatusFilter`] keeps
//! the matching ones, in the daemon's order.

use std::io::Write;

use crate::cli::StatusArgs;
use crate::client::{Connection, JobStream, Target, read_jobs};
use crate::context::ClientContext;
use crate::error::{CtlError, EXIT_OK, UsageError};
use crate::plan::{Action, parse_ids, parse_key_value, parse_state};
use crate::render::{JobsJsonWriter, TableStyle, status_table};
use mayfly_protocol::{JobInfo, JobState, Request, StatusRequest};

/// Which jobs `status` shows: a job must pass every non-empty filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusFilter {
    /// Its queue is one of these.
    pub queues: Vec<String>,
    /// Its state is one of these.
    pub states: Vec<JobState>,
    /// It has every one of these labels.
    pub labels: Vec<(String, String)>,
}

impl StatusFilter {
    /// Whether `job` passes.
    pub fn matches(&self, job: &JobInfo) -> bool {
        (self.queues.is_empty() || self.queues.contains(&job.queue))
            && (self.states.is_empty() || self.states.contains(&job.state))
            && self.labels.iter().all(|(k, v)| {
                job.labels
                    .iter()
                    .rev()
                    .find(|(jk, _)| jk == k)
                    .map(|(_, jv)| jv)
                    == Some(v)
            })
    }
}

/// The ids to ask for (none means every job) and the filters.
pub fn plan(args: &StatusArgs) -> Result<Action, UsageError> {
    let filter = StatusFilter {
        queues: args
            .queue
            .iter()
            .map(|q| q.trim().to_string())
            .filter(|q| !q.is_empty())
            .collect(),
        states: args
            .state
            .iter()
            .map(|s| parse_state(s))
            .collect::<Result<_, _>>()?,
        labels: args
            .label
            .iter()
            .map(|l| parse_key_value("--label", l))
            .collect::<Result<_, _>>()?,
    };
    Ok(Action::Status {
        request: StatusRequest {
            ids: parse_ids(&args.ids)?,
        },
        filter,
        usage: args.usage,
    })
}

/// Reads the `Jobs` stream, filters, then prints.
///
/// The table needs every row to align, so it is printed once the stream has
/// ended; a failure prints none of it. JSON is printed as the frames arrive
/// (working while the daemon still sends, and holding one frame's jobs at a
/// time): a failure part way leaves the array unclosed, so what was printed
/// is not valid JSON and cannot pass for the whole listing.
pub fn execute(
    target: &Target,
    request: StatusRequest,
    filter: &StatusFilter,
    usage: bool,
    json: bool,
    ctx: &ClientContext,
    out: &mut dyn Write,
) -> Result<u8, CtlError> {
    let mut conn = Connection::open(target, &Request::Status(request))?;
    if json {
        let mut writer = JobsJsonWriter::new(&mut *out);
        let mut stream = JobStream::new(&mut conn, "status");
        for job in stream.by_ref().filter(|job| filter.matches(job)) {
            writer.push(&job).map_err(CtlError::Output)?;
        }
        stream.finish()?;
        writer.finish().map_err(CtlError::Output)?;
    } else {
        let mut jobs = read_jobs(&mut conn, "status")?;
        jobs.retain(|job| filter.matches(job));
        let style = TableStyle {
            width: ctx.term_width,
            color: ctx.color,
        };
        out.write_all(status_table(&jobs, ctx.now, style, usage).as_bytes())
            .map_err(CtlError::Output)?;
    }
    Ok(EXIT_OK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::tests::info;

    #[test]
    /// Every given filter must pass; repeated values of one filter are alternatives.
    fn filters() {
        let mut job = info(1, JobState::Running);
        job.queue = "gpu".into();
        job.labels = vec![("team".into(), "ml".into()), ("run".into(), "7".into())];
        let pass = |f: StatusFilter| f.matches(&job);
        assert!(pass(StatusFilter::default()));
        assert!(pass(StatusFilter {
            queues: vec!["cpu".into(), "gpu".into()],
            ..StatusFilter::default()
        }));
        assert!(!pass(StatusFilter {
            queues: vec!["cpu".into()],
            ..StatusFilter::default()
        }));
        assert!(pass(StatusFilter {
            states: vec![JobState::Queued, JobState::Running],
            ..StatusFilter::default()
        }));
        assert!(!pass(StatusFilter {
            states: vec![JobState::Failed],
            queues: vec!["gpu".into()],
            ..StatusFilter::default()
        }));
        assert!(pass(StatusFilter {
            labels: vec![("team".into(), "ml".into()), ("run".into(), "7".into())],
            ..StatusFilter::default()
        }));
        assert!(!pass(StatusFilter {
            labels: vec![("team".into(), "ml".into()), ("run".into(), "8".into())],
            ..StatusFilter::default()
        }));
        assert!(!pass(StatusFilter {
            labels: vec![("owner".into(), String::new())],
            ..StatusFilter::default()
        }));
    }
}
