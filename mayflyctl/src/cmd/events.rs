//! `events`: the daemon's activity log — recent events, and with `--follow`
//! each new one as it happens.

use std::io::Write;

use mayfly_protocol::json::{activity_json, rfc3339};
use mayfly_protocol::{ActivityRecord, EventsRequest, Request, Response};
use serde_json::Value;

use super::{emit_line, flush};
use crate::cli::EventsArgs;
use crate::client::{Connection, Target, daemon_error, unexpected};
use crate::error::{CtlError, EXIT_OK};
use crate::plan::Action;

/// Only whether to follow.
pub fn plan(args: &EventsArgs) -> Action {
    Action::Events(EventsRequest {
        follow: args.follow,
    })
}

/// One event as a line: time, name, then `key=value` fields.
pub fn event_line(record: &ActivityRecord) -> String {
    let mut line = format!("{}  {}", rfc3339(record.at), record.event.name());
    if let Value::Object(map) = activity_json(record) {
        for (key, value) in map {
            if matches!(key.as_str(), "event" | "at" | "seq") || value.is_null() {
                continue;
            }
            let text = match value {
                Value::String(s) if !s.is_empty() && !s.contains(char::is_whitespace) => s,
                other => other.to_string(),
            };
            line.push_str(&format!(" {key}={text}"));
        }
    }
    line
}

/// Prints each event as it arrives (flushed, for `--follow`), one JSON
/// object a line with `--json`.
pub fn execute(
    target: &Target,
    request: EventsRequest,
    json: bool,
    out: &mut dyn Write,
) -> Result<u8, CtlError> {
    let follow = request.follow;
    let mut conn = Connection::open(target, &Request::Events(request))?;
    if follow {
        // New events come when things happen.
        conn.wait_as_long_as_it_takes()?;
    }
    loop {
        match conn.recv()? {
            Response::Event(record) => {
                let line = if json {
                    activity_json(&record).to_string()
                } else {
                    event_line(&record)
                };
                emit_line(out, &line)?;
                flush(out)?;
            }
            Response::EventsMissed { count } => {
                let line = if json {
                    serde_json::json!({"event": "EventsMissed", "count": count}).to_string()
                } else {
                    format!("... {count} events missed (this reader fell behind)")
                };
                emit_line(out, &line)?;
            }
            Response::End => return Ok(EXIT_OK),
            Response::Error(e) => return Err(daemon_error("events", e)),
            other => return Err(unexpected("events", &other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use mayfly_protocol::{Activity, JobId, JobState, Timestamp};

    use super::*;

    #[test]
    fn lines_name_the_event_and_its_fields() {
        let record = ActivityRecord {
            seq: 4,
            at: Timestamp(0),
            event: Activity::JobFinished {
                id: JobId(3),
                queue: "default".into(),
                state: JobState::Failed,
                exit_code: Some(2),
                signal: None,
                ran_ms: Some(15),
                reason: None,
                usage: None,
            },
        };
        let line = event_line(&record);
        assert!(
            line.starts_with("1970-01-01T00:00:00.000Z  JobFinished"),
            "{line}"
        );
        for part in [
            "id=3",
            "state=failed",
            "exit_code=2",
            "ran_ms=15",
            "queue=default",
        ] {
            assert!(line.contains(part), "{line} lacks {part}");
        }
        assert!(!line.contains("signal"), "nulls are left out: {line}");
        let json = activity_json(&record);
        assert_eq!(json["event"], "JobFinished");
        assert_eq!(json["state"], "failed");
        assert_eq!(json["seq"], 4);
    }
}
