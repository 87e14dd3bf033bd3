//! `edit`: change the priority, queue or labels of a job that has not
//! started, then print it as `status` would (`--json`: its job object).
//!
//! The protocol's edit replaces the whole label list, while `--label K=V`
//! adds or replaces one label and keeps the others; so a label change
//! without `--clear-labels` first reads the job's labels (a `status` of that
//! one job on the same connection) and merges ([`merge_labels`], pure).

use std::io::Write;

use mayfly_protocol::{EditRequest, JobId, JobInfo, Request, Response, StatusRequest};

use super::emit_line;
use crate::cli::EditArgs;
use crate::client::{Connection, Target, daemon_error, read_jobs, unexpected};
use crate::context::ClientContext;
use crate::error::{CtlError, EXIT_OK, UsageError};
use crate::plan::{Action, parse_id, parse_key_value, parse_priority, upsert};
use crate::render::{TableStyle, job_json, status_table};

/// What happens to the labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelEdit {
    /// They stay as they are.
    Keep,
    /// They become exactly these (`--clear-labels`, with or without `--label`).
    Replace(Vec<(String, String)>),
    /// These are added to (or replace) the current ones.
    Merge(Vec<(String, String)>),
}

/// A validated `edit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditPlan {
    /// The job.
    pub id: JobId,
    /// A new priority.
    pub priority: Option<u8>,
    /// A new queue.
    pub queue: Option<String>,
    /// The label change.
    pub labels: LabelEdit,
}

impl EditPlan {
    /// The request, given the job's current labels (needed only to merge).
    pub fn request(&self, current: &[(String, String)]) -> EditRequest {
        EditRequest {
            id: self.id,
            priority: self.priority,
            queue: self.queue.clone(),
            labels: match &self.labels {
                LabelEdit::Keep => None,
                LabelEdit::Replace(labels) => Some(labels.clone()),
                LabelEdit::Merge(add) => Some(merge_labels(current, add)),
            },
        }
    }
}

/// `current` with each of `add` set: replaced in place, or appended.
pub fn merge_labels(
    current: &[(String, String)],
    add: &[(String, String)],
) -> Vec<(String, String)> {
    let mut labels = current.to_vec();
    for (key, value) in add {
        upsert(&mut labels, key.clone(), value.clone());
    }
    labels
}

/// Validates the changes; at least one is required.
pub fn plan(args: &EditArgs) -> Result<Action, UsageError> {
    let id = parse_id(&args.id)?;
    let priority = args.priority.map(parse_priority).transpose()?;
    if args.queue.as_deref() == Some("") {
        return Err(UsageError::EmptyQueue);
    }
    let mut add = Vec::new();
    for text in &args.label {
        let (key, value) = parse_key_value("--label", text)?;
        upsert(&mut add, key, value);
    }
    let labels = match (args.clear_labels, add.is_empty()) {
        (true, _) => LabelEdit::Replace(add),
        (false, false) => LabelEdit::Merge(add),
        (false, true) => LabelEdit::Keep,
    };
    if priority.is_none() && args.queue.is_none() && labels == LabelEdit::Keep {
        return Err(UsageError::NothingToEdit);
    }
    Ok(Action::Edit(EditPlan {
        id,
        priority,
        queue: args.queue.clone(),
        labels,
    }))
}

/// Reads the current labels if needed, sends the edit and prints the job.
pub fn execute(
    target: &Target,
    edit: &EditPlan,
    json: bool,
    ctx: &ClientContext,
    out: &mut dyn Write,
) -> Result<u8, CtlError> {
    let mut conn = if matches!(edit.labels, LabelEdit::Merge(_)) {
        let status = Request::Status(StatusRequest { ids: vec![edit.id] });
        let mut conn = Connection::open(target, &status)?;
        let jobs = read_jobs(&mut conn, "edit")?;
        let current = jobs
            .iter()
            .find(|j| j.id == edit.id)
            .map(|j| j.labels.clone())
            .unwrap_or_default();
        conn.send(&Request::Edit(edit.request(&current)))?;
        conn
    } else {
        Connection::open(target, &Request::Edit(edit.request(&[])))?
    };
    let jobs: Vec<JobInfo> = match conn.recv()? {
        Response::Jobs(jobs) => jobs,
        Response::Error(e) => return Err(daemon_error("edit", e)),
        other => return Err(unexpected("edit", &other)),
    };
    if json {
        for job in &jobs {
            emit_line(out, &format!("{:#}", job_json(job)))?;
        }
    } else {
        let style = TableStyle {
            width: ctx.term_width,
            color: ctx.color,
        };
        out.write_all(status_table(&jobs, ctx.now, style, false).as_bytes())
            .map_err(CtlError::Output)?;
    }
    Ok(EXIT_OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(k, v)` pairs from string slices.
    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    /// Merging keeps the order and the other labels; replacing ignores the current ones.
    fn label_edits() {
        let current = pairs(&[("team", "ops"), ("ci", "yes")]);
        assert_eq!(
            merge_labels(&current, &pairs(&[("ci", "no"), ("new", "1")])),
            pairs(&[("team", "ops"), ("ci", "no"), ("new", "1")])
        );
        let plan = EditPlan {
            id: JobId(3),
            priority: Some(5),
            queue: None,
            labels: LabelEdit::Replace(pairs(&[("a", "b")])),
        };
        assert_eq!(plan.request(&current).labels, Some(pairs(&[("a", "b")])));
        let keep = EditPlan {
            labels: LabelEdit::Keep,
            ..plan
        };
        assert_eq!(keep.request(&current).labels, None);
        assert_eq!(keep.request(&current).priority, Some(5));
    }
}
