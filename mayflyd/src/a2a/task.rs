//! A job as an A2A task: its state, its conversation, its timestamps and,
//! once it has ended, its artifacts.
//!
//! The task id is the job id in decimal, so `mayflyctl status ID` shows
//! the same job. States map as `docs/a2a.md` lists them: waiting and queued
//! are `SUBMITTED`, running is `WORKING`, succeeded is `COMPLETED`; failed,
//! timed out and interrupted are `FAILED`; cancelled and skipped are
//! `CANCELED`.
//!
//! An ended task carries three artifacts: `stdout` and `stderr` (text: the
//! last 64 KiB of each output file, with a note in the artifact's
//! description and metadata when that is not all of it), and `result` (a
//! data part: state, exit code, signal, attempts, reason, times and, when
//! the executor could tell, resource usage).

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use mayfly_protocol::json::rfc3339;
use mayfly_protocol::{JobId, JobInfo, JobState, LogStream, Timestamp};
use serde_json::{Map, Value, json};

use super::wire::{Artifact, Message, Part, Role, Task, TaskState, TaskStatus};

/// The label that keeps a task's conversation id (the message's
/// `contextId`, when the client gave one).
pub const CONTEXT_LABEL: &str = "a2a.context_id";

/// How much of each output stream an ended task carries.
pub const OUTPUT_TAIL: u64 = 64 * 1024;

/// The A2A state of a job in `state`.
pub fn state_of(state: JobState) -> TaskState {
    match state {
        JobState::Waiting | JobState::Queued => TaskState::Submitted,
        JobState::Running => TaskState::Working,
        JobState::Succeeded => TaskState::Completed,
        JobState::Failed | JobState::TimedOut | JobState::Interrupted => TaskState::Failed,
        JobState::Cancelled | JobState::Skipped => TaskState::Canceled,
    }
}

/// The job states that show as `state` (none for the states a job never
/// has, such as `INPUT_REQUIRED`).
pub fn job_states(state: TaskState) -> &'static [JobState] {
    match state {
        TaskState::Submitted => &[JobState::Waiting, JobState::Queued],
        TaskState::Working => &[JobState::Running],
        TaskState::Completed => &[JobState::Succeeded],
        TaskState::Failed => &[JobState::Failed, JobState::TimedOut, JobState::Interrupted],
        TaskState::Canceled => &[JobState::Cancelled, JobState::Skipped],
        TaskState::Unspecified
        | TaskState::InputRequired
        | TaskState::Rejected
        | TaskState::AuthRequired => &[],
    }
}

/// A task id as a job id: a decimal number from 1.
pub fn job_id(task_id: &str) -> Option<JobId> {
    if task_id.is_empty() || !task_id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    task_id.parse().ok().filter(|&n| n > 0).map(JobId)
}

/// The conversation a job belongs to: the client's `contextId` if it gave
/// one, else the job's own id (each task its own conversation).
pub fn context_of(info: &JobInfo) -> String {
    info.labels
        .iter()
        .find(|(k, _)| k == CONTEXT_LABEL)
        .map_or_else(|| info.id.to_string(), |(_, v)| v.clone())
}

/// When the job last changed state: its end, the start of its running
/// attempt, the end of its last attempt (a job waiting to be retried), or
/// its submission.
pub fn changed_at(info: &JobInfo) -> Timestamp {
    if let Some(end) = info.finished_at {
        return end;
    }
    if info.state == JobState::Running
        && let Some(start) = info.started_at
    {
        return start;
    }
    info.history
        .last()
        .map_or(info.submitted_at, |attempt| attempt.finished_at)
}

/// The job's status: its state, when it got there, and for a job that did
/// not succeed, a word saying why.
pub fn status_of(info: &JobInfo) -> TaskStatus {
    let state = state_of(info.state);
    let why = match info.state {
        JobState::Succeeded | JobState::Running | JobState::Queued => None,
        JobState::Waiting if info.attempts == 0 => None,
        _ => Some(outcome_text(info)),
    };
    TaskStatus {
        state,
        message: why.map(|text| Message {
            message_id: format!("mayfly-{}-{}", info.id, info.state.as_str()),
            context_id: context_of(info),
            task_id: info.id.to_string(),
            role: Role::Agent,
            parts: vec![Part::text(text)],
            metadata: None,
        }),
        timestamp: Some(rfc3339(changed_at(info))),
    }
}

/// One line on how the job ended (or, waiting for a retry, how its last
/// attempt did).
fn outcome_text(info: &JobInfo) -> String {
    let how = match (info.exit_code, info.signal) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => String::new(),
    };
    let mut text = format!("job {} {}", info.id, info.state.as_str());
    if !how.is_empty() {
        text.push_str(&format!(" ({how})"));
    }
    if let Some(reason) = &info.reason {
        text.push_str(": ");
        text.push_str(reason);
    }
    text
}

/// The job as a task, without artifacts.
pub fn task_of(info: &JobInfo) -> Task {
    Task {
        id: info.id.to_string(),
        context_id: context_of(info),
        status: status_of(info),
        artifacts: None,
        metadata: Some(metadata_of(info)),
    }
}

/// What a task's metadata says of its job: its Mayfly state and queue, so a
/// client can tell `timed_out` from `failed`.
fn metadata_of(info: &JobInfo) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert("mayflyState".into(), json!(info.state.as_str()));
    map.insert("queue".into(), json!(info.queue));
    map
}

/// The artifacts of an ended job: its output's tails and its result.
/// Reads the output files (blocking: call it off the runtime's threads).
pub fn artifacts_of(logs_dir: &Path, info: &JobInfo) -> Vec<Artifact> {
    let mut artifacts: Vec<Artifact> = [LogStream::Stdout, LogStream::Stderr]
        .into_iter()
        .map(|stream| output_artifact(logs_dir, info.id, stream))
        .collect();
    artifacts.push(Artifact {
        artifact_id: "result".into(),
        name: "result".into(),
        description: "how the job ended: state, exit code, signal, attempts and times".into(),
        parts: vec![Part::data(result_of(info))],
        metadata: None,
    });
    artifacts
}

/// The `result` artifact's data.
pub fn result_of(info: &JobInfo) -> Value {
    let time = |t: Option<Timestamp>| t.map(rfc3339);
    json!({
        "state": info.state.as_str(),
        "exitCode": info.exit_code,
        "signal": info.signal,
        "attempts": info.attempts,
        "reason": info.reason,
        "submittedAt": rfc3339(info.submitted_at),
        "startedAt": time(info.started_at),
        "finishedAt": time(info.finished_at),
        "usage": info.usage.map(|u| json!({
            "cpuUserMs": u.cpu_user_ms,
            "cpuSysMs": u.cpu_sys_ms,
            "maxRssKib": u.max_rss_kib,
        })),
    })
}

/// One output stream as an artifact: the file's last [`OUTPUT_TAIL`]
/// bytes as text, noted when cut.
fn output_artifact(logs_dir: &Path, id: JobId, stream: LogStream) -> Artifact {
    let name = match stream {
        LogStream::Stdout => "stdout",
        LogStream::Stderr => "stderr",
    };
    let path = crate::exec::log_path(logs_dir, id, stream);
    let (text, total) = match read_tail(&path, OUTPUT_TAIL) {
        Ok(found) => found,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (String::new(), 0),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot read a job's output for its A2A artifact");
            (String::new(), 0)
        }
    };
    let cut = total > OUTPUT_TAIL;
    let mut metadata = Map::new();
    metadata.insert("totalBytes".into(), json!(total));
    metadata.insert("truncated".into(), json!(cut));
    Artifact {
        artifact_id: name.into(),
        name: name.into(),
        description: if cut {
            format!(
                "the job's {name}: its last {OUTPUT_TAIL} of {total} bytes (mayflyctl logs shows all of it)"
            )
        } else {
            format!("the job's {name}")
        },
        parts: vec![Part::text(text)],
        metadata: Some(metadata),
    }
}

/// The last `limit` bytes of the file at `path`, as text (invalid UTF-8
/// replaced; a character cut at the start dropped), and the file's size.
pub fn read_tail(path: &Path, limit: u64) -> std::io::Result<(String, u64)> {
    let mut file = crate::private::read_options()
        .open(path)
        .map_err(crate::private::explain_link)?;
    let total = file.metadata()?.len();
    let start = total.saturating_sub(limit);
    file.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::with_capacity(usize::try_from(total - start).unwrap_or(0));
    file.take(limit).read_to_end(&mut bytes)?;
    let skip = if start > 0 {
        // UTF-8 continuation bytes are 0b10xxxxxx: the cut fell inside a
        // character, whose first bytes are gone.
        bytes
            .iter()
            .take(3)
            .take_while(|&&b| b & 0xC0 == 0x80)
            .count()
    } else {
        0
    };
    Ok((String::from_utf8_lossy(&bytes[skip..]).into_owned(), total))
}

#[cfg(test)]
mod tests {
    use mayfly_protocol::Command;

    use super::*;

    /// A job record in `state`.
    fn job(state: JobState) -> JobInfo {
        JobInfo {
            state,
            ..JobInfo::submitted(
                JobId(7),
                Command::Shell("true".into()),
                "/",
                "default",
                50,
                Timestamp(1_000),
            )
        }
    }

    #[test]
    fn every_job_state_has_its_task_state_and_back() {
        for state in JobState::ALL {
            let mapped = state_of(state);
            assert!(job_states(mapped).contains(&state), "{state:?}");
        }
        assert_eq!(state_of(JobState::Queued), TaskState::Submitted);
        assert_eq!(state_of(JobState::TimedOut), TaskState::Failed);
        assert_eq!(state_of(JobState::Skipped), TaskState::Canceled);
        assert!(job_states(TaskState::InputRequired).is_empty());
    }

    #[test]
    fn task_ids_are_decimal_job_ids() {
        assert_eq!(job_id("42"), Some(JobId(42)));
        for bad in ["", "0", "-1", "+1", "4 2", "x", "99999999999999999999999"] {
            assert_eq!(job_id(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_context_is_the_label_or_the_id() {
        let mut info = job(JobState::Queued);
        assert_eq!(context_of(&info), "7");
        info.labels.push((CONTEXT_LABEL.into(), "chat-1".into()));
        assert_eq!(context_of(&info), "chat-1");
    }

    #[test]
    fn a_failed_job_says_why() {
        let mut info = job(JobState::Failed);
        info.exit_code = Some(3);
        info.finished_at = Some(Timestamp(5_000));
        let status = status_of(&info);
        assert_eq!(status.state, TaskState::Failed);
        assert_eq!(
            status.timestamp.as_deref(),
            Some("1970-01-01T00:00:05.000Z")
        );
        let text = status.message.unwrap().parts[0].text.clone().unwrap();
        assert_eq!(text, "job 7 failed (exit code 3)");
        assert!(status_of(&job(JobState::Queued)).message.is_none());
    }

    #[test]
    fn the_tail_of_a_long_output_is_noted_and_starts_on_a_character() {
        let dir = tempfile::tempdir().unwrap();
        let path = crate::exec::log_path(dir.path(), JobId(7), LogStream::Stdout);
        // "é" is two bytes: a cut at an odd offset lands inside one.
        let text = "é".repeat(40_000);
        std::fs::write(&path, &text).unwrap();
        let (tail, total) = read_tail(&path, 1001).unwrap();
        assert_eq!(total, 80_000);
        assert_eq!(tail, "é".repeat(500));
        let artifact = output_artifact(dir.path(), JobId(7), LogStream::Stdout);
        assert_eq!(artifact.metadata.unwrap()["truncated"], json!(true));
        assert!(artifact.description.contains("last 65536 of 80000 bytes"));
        let missing = output_artifact(dir.path(), JobId(8), LogStream::Stderr);
        assert_eq!(missing.parts[0].text.as_deref(), Some(""));
    }
}
