//! What an ended A2A task means for its job: the output files, the
//! attempt's outcome, and its usage.
//!
//! # Output
//!
//! The task's artifacts are written to the job's two output files under
//! `STATE_DIR/logs/`, replacing what was there (so a task whose end is
//! read again after a restart is not written twice; the files hold the
//! last attempt's output). The text parts of an artifact named `stderr`
//! go to stderr; every other text part goes to stdout, a data part as one
//! line of JSON, a link as its URL. An artifact named `result` whose data
//! holds `exitCode` says how the command ended and is not output (Mayfly's
//! door and the test agent both send one). An artifact the agent cut (its
//! metadata says `truncated`, as Mayfly's last-64-KiB tails do) gets a
//! note on stderr.
//!
//! # Outcome
//!
//! | task | attempt |
//! |---|---|
//! | `COMPLETED` | exit code 0 (or the `result`'s code) |
//! | `FAILED` | failed, with the `result`'s exit code or signal if there is one, and the status message as the reason; a Mayfly task that `timed_out` or was `interrupted` there ends so here too |
//! | `CANCELED` | cancelled (there, unless this daemon asked) |
//! | `REJECTED` | failed: the agent would not do it |

use std::io::Write;
use std::path::Path;

use mayfly_protocol::{JobId, JobState, LogStream, Usage};
use serde_json::Value;

use crate::a2a::wire::{Artifact, Message, Part, Task, TaskState, TaskStatus};
use crate::core::ExitOutcome;

/// The name of the artifact that says how the command ended.
const RESULT: &str = "result";

/// An artifact's name, or its id when it has none.
fn name_of(artifact: &Artifact) -> &str {
    if artifact.name.is_empty() {
        &artifact.artifact_id
    } else {
        &artifact.name
    }
}

/// The data of the task's `result` artifact, if it has one that holds
/// `exitCode`.
fn result_of(task: &Task) -> Option<&serde_json::Map<String, Value>> {
    task.artifacts
        .iter()
        .flatten()
        .filter(|a| name_of(a) == RESULT)
        .flat_map(|a| &a.parts)
        .filter_map(|p| p.data.as_ref()?.as_object())
        .find(|data| data.contains_key("exitCode"))
}

/// True for the `result` artifact (not output).
fn is_result(artifact: &Artifact) -> bool {
    name_of(artifact) == RESULT
        && artifact
            .parts
            .iter()
            .any(|p| p.data.as_ref().and_then(|d| d.get("exitCode")).is_some())
}

/// The job's stdout and stderr as the task's artifacts tell them.
pub fn texts_of(task: &Task) -> (String, String) {
    let (mut out, mut err, mut notes) = (String::new(), String::new(), String::new());
    for artifact in task.artifacts.iter().flatten() {
        if is_result(artifact) {
            continue;
        }
        let to_stderr = name_of(artifact) == "stderr";
        let target = if to_stderr { &mut err } else { &mut out };
        for part in &artifact.parts {
            push_part(target, part);
        }
        let meta = artifact.metadata.as_ref();
        if meta.and_then(|m| m.get("truncated")) == Some(&Value::Bool(true)) {
            let total = meta
                .and_then(|m| m.get("totalBytes"))
                .and_then(Value::as_u64)
                .map_or_else(String::new, |t| format!(" of {t} bytes"));
            notes.push_str(&format!(
                "[mayfly: the A2A agent sent only the end of the job's {}{total}]\n",
                name_of(artifact)
            ));
        }
    }
    // The notes after the job's own words.
    err.push_str(&notes);
    (out, err)
}

/// Adds what `part` holds to `text`.
fn push_part(text: &mut String, part: &Part) {
    if let Some(t) = &part.text {
        text.push_str(t);
    } else if let Some(data) = &part.data {
        text.push_str(&data.to_string());
        text.push('\n');
    } else if let Some(url) = &part.url {
        text.push_str(url);
        text.push('\n');
    } else if part.raw.is_some() {
        let name = part.filename.as_deref().unwrap_or("a file");
        text.push_str(&format!(
            "[mayfly: the A2A agent sent {name} as bytes; not kept]\n"
        ));
    }
}

/// Writes the task's output to job `id`'s files under `logs_dir`,
/// replacing what they held. Blocking: call off the runtime's threads.
pub fn write(logs_dir: &Path, id: JobId, task: &Task) -> std::io::Result<()> {
    let (out, err) = texts_of(task);
    for (stream, text) in [(LogStream::Stdout, out), (LogStream::Stderr, err)] {
        let path = crate::exec::log_path(logs_dir, id, stream);
        let mut file = crate::private::file_options()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(crate::private::explain_link)?;
        file.write_all(text.as_bytes())?;
    }
    Ok(())
}

/// The words of the task's status message, after ": ", or nothing.
pub fn status_text(task: &Task) -> String {
    let text: Vec<&str> = task
        .status
        .message
        .iter()
        .flat_map(|m| &m.parts)
        .filter_map(|p| p.text.as_deref())
        .collect();
    if text.is_empty() {
        String::new()
    } else {
        format!(": {}", text.join(" ").trim())
    }
}

/// A whole number of `data` at `key`, as an i32.
fn int(data: Option<&serde_json::Map<String, Value>>, key: &str) -> Option<i32> {
    let value = data?.get(key)?;
    value
        .as_i64()
        .or_else(|| {
            value
                .as_f64()
                .filter(|f| f.fract() == 0.0)
                .map(|f| f as i64)
        })
        .and_then(|n| i32::try_from(n).ok())
}

/// How the attempt ended, by the task's state (see the module
/// documentation).
pub fn outcome_of(task: &Task) -> ExitOutcome {
    let result = result_of(task);
    let exit_code = int(result, "exitCode");
    let signal = int(result, "signal");
    let mayfly_state = task
        .metadata
        .as_ref()
        .and_then(|m| m.get("mayflyState"))
        .and_then(Value::as_str);
    let said = status_text(task);
    let ended = |state, reason: String| ExitOutcome::Ended {
        state,
        exit_code,
        signal,
        reason,
    };
    match task.status.state {
        TaskState::Completed => ExitOutcome::Code(exit_code.unwrap_or(0)),
        TaskState::Failed => {
            let state = match mayfly_state {
                Some("timed_out") => JobState::TimedOut,
                Some("interrupted") => JobState::Interrupted,
                _ => JobState::Failed,
            };
            ended(state, format!("the A2A task {} failed{said}", task.id))
        }
        TaskState::Canceled => ended(
            JobState::Cancelled,
            format!("the A2A task {} was cancelled at the agent{said}", task.id),
        ),
        TaskState::Rejected => ended(
            JobState::Failed,
            format!("the A2A agent rejected task {}{said}", task.id),
        ),
        other => ended(
            JobState::Failed,
            format!("the A2A task {} ended as {}{said}", task.id, other.name()),
        ),
    }
}

/// What the attempt used, when a Mayfly agent said (`result.usage`).
pub fn usage_of(task: &Task) -> Option<Usage> {
    let usage = result_of(task)?.get("usage")?.as_object()?;
    let field = |key| usage.get(key).and_then(Value::as_f64).map(|f| f as u64);
    Some(Usage {
        cpu_user_ms: field("cpuUserMs")?,
        cpu_sys_ms: field("cpuSysMs")?,
        max_rss_kib: field("maxRssKib")?,
    })
}

/// An agent that answered a message with a message: a completed task
/// whose one artifact is that message.
pub fn message_task(message: Message) -> Task {
    Task {
        id: message.message_id.clone(),
        context_id: message.context_id.clone(),
        status: TaskStatus {
            state: TaskState::Completed,
            ..TaskStatus::default()
        },
        artifacts: Some(vec![Artifact {
            artifact_id: "message".into(),
            parts: message.parts,
            ..Artifact::default()
        }]),
        metadata: None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// A task in `state` with `artifacts` (ProtoJSON).
    fn task(state: &str, artifacts: Value, extra: Value) -> Task {
        let mut value = json!({
            "id": "t1",
            "status": {"state": state},
            "artifacts": artifacts,
        });
        if let (Some(map), Some(more)) = (value.as_object_mut(), extra.as_object()) {
            map.extend(more.clone());
        }
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn a_mayfly_task_becomes_its_output_and_exit_status() {
        let t = task(
            "TASK_STATE_FAILED",
            json!([
                {"artifactId": "stdout", "name": "stdout", "parts": [{"text": "tail\n"}],
                 "metadata": {"truncated": true, "totalBytes": 100001}},
                {"artifactId": "stderr", "name": "stderr", "parts": [{"text": "oops\n"}]},
                {"artifactId": "result", "name": "result", "parts": [{"data": {
                    "state": "failed", "exitCode": 3, "signal": null,
                    "usage": {"cpuUserMs": 5, "cpuSysMs": 1, "maxRssKib": 2048}}}]},
            ]),
            json!({
                "status": {"state": "TASK_STATE_FAILED", "message": {"parts": [{"text": "job 4 failed (exit code 3)"}]}},
                "metadata": {"mayflyState": "failed"},
            }),
        );
        let (out, err) = texts_of(&t);
        assert_eq!(out, "tail\n");
        assert_eq!(
            err,
            "oops\n[mayfly: the A2A agent sent only the end of the job's stdout of 100001 bytes]\n"
        );
        assert_eq!(
            outcome_of(&t),
            ExitOutcome::Ended {
                state: JobState::Failed,
                exit_code: Some(3),
                signal: None,
                reason: "the A2A task t1 failed: job 4 failed (exit code 3)".into(),
            }
        );
        assert_eq!(
            usage_of(&t),
            Some(Usage {
                cpu_user_ms: 5,
                cpu_sys_ms: 1,
                max_rss_kib: 2048
            })
        );
    }

    #[test]
    fn other_agents_tasks_are_read_by_their_artifacts_names() {
        let t = task(
            "TASK_STATE_COMPLETED",
            json!([
                {"artifactId": "a1", "parts": [{"text": "hello "}, {"data": {"n": 1}}]},
                {"artifactId": "result", "parts": [{"data": {"exitCode": 0.0}}]},
                {"artifactId": "a2", "parts": [{"url": "http://x/y"}]},
            ]),
            json!({}),
        );
        assert_eq!(texts_of(&t).0, "hello {\"n\":1}\nhttp://x/y\n");
        assert_eq!(outcome_of(&t), ExitOutcome::Code(0));
        assert_eq!(usage_of(&t), None);
        let timed_out = task(
            "TASK_STATE_FAILED",
            json!([]),
            json!({"metadata": {"mayflyState": "timed_out"}}),
        );
        assert!(matches!(
            outcome_of(&timed_out),
            ExitOutcome::Ended {
                state: JobState::TimedOut,
                ..
            }
        ));
        let rejected = task("TASK_STATE_REJECTED", json!([]), json!({}));
        assert!(matches!(
            outcome_of(&rejected),
            ExitOutcome::Ended { state: JobState::Failed, reason, .. } if reason.contains("rejected")
        ));
    }

    #[test]
    fn output_replaces_what_the_files_held() {
        let dir = tempfile::tempdir().unwrap();
        let t = task(
            "TASK_STATE_COMPLETED",
            json!([{"name": "stdout", "parts": [{"text": "once\n"}]}]),
            json!({}),
        );
        write(dir.path(), JobId(3), &t).unwrap();
        write(dir.path(), JobId(3), &t).unwrap();
        let path = crate::exec::log_path(dir.path(), JobId(3), LogStream::Stdout);
        assert_eq!(std::fs::read_to_string(path).unwrap(), "once\n");
    }
}
