//! The `status --json` array, written by hand.
//!
//! `status --json` prints every job the daemon holds, thousands of them, and
//! scripts call it often. Through serde_json each field costs half a dozen
//! small writes (separator, one write per indentation level, quote, key,
//! quote, colon) and an escape scan of its key; printing the jobs took
//! several times longer than writing them here, a large part of the whole
//! command (measured in `bench/RESULTS.md`, "`status --json`: serde_json's
//! writer against the hand-written one"). Here the fixed parts of a job
//! object (separators, indentation and keys) are constants written in one
//! copy each, and a value is one more.
//!
//! The bytes are exactly what serde_json's `PrettyFormatter` prints for the
//! job objects of [`super::JobJson`] (two-space indentation, keys sorted,
//! `[]`/`{}` for empty containers, the same string escapes); the property
//! tests of `mayflyctl` hold the two against each other and against the
//! `Value` tree the output was once built from.

use std::collections::BTreeMap;

use crate::{Attempt, Command, JobId, JobInfo, Timestamp};

/// Opens the array.
pub(super) fn push_jobs_start(out: &mut Vec<u8>) {
    out.push(b'[');
}

/// Appends one element of the array (a job object at depth 1); `first` for
/// the first one.
pub(super) fn push_job_element(out: &mut Vec<u8>, info: &JobInfo, first: bool) {
    out.extend_from_slice(if first { b"\n  " } else { b",\n  " });
    push_job(out, info);
}

/// Closes the array; `empty` when no element was written.
pub(super) fn push_jobs_end(out: &mut Vec<u8>, empty: bool) {
    out.extend_from_slice(if empty { b"]" } else { b"\n]" });
}

/// One job object whose `{` stands at depth 1 (its fields at depth 2).
fn push_job(out: &mut Vec<u8>, info: &JobInfo) {
    out.extend_from_slice(b"{\n    \"after\": ");
    push_after(out, &info.after);
    out.extend_from_slice(b",\n    \"attempts\": ");
    push_u64(out, info.attempts.into());
    out.extend_from_slice(b",\n    \"command\": ");
    match &info.command {
        Command::Argv(argv) => push_str_array(out, argv),
        Command::Shell(s) => push_str(out, s),
    }
    out.extend_from_slice(b",\n    \"cpu_sys_ms\": ");
    push_opt_u64(out, info.usage.map(|u| u.cpu_sys_ms));
    out.extend_from_slice(b",\n    \"cpu_user_ms\": ");
    push_opt_u64(out, info.usage.map(|u| u.cpu_user_ms));
    out.extend_from_slice(b",\n    \"cwd\": ");
    push_str(out, &info.cwd);
    out.extend_from_slice(b",\n    \"exit_code\": ");
    push_opt_i64(out, info.exit_code.map(i64::from));
    out.extend_from_slice(b",\n    \"finished_at\": ");
    push_opt_time(out, info.finished_at);
    out.extend_from_slice(b",\n    \"history\": ");
    push_history(out, &info.history);
    out.extend_from_slice(b",\n    \"id\": ");
    push_u64(out, info.id.0);
    out.extend_from_slice(b",\n    \"labels\": ");
    push_labels(out, &info.labels);
    out.extend_from_slice(b",\n    \"max_rss_kib\": ");
    push_opt_u64(out, info.usage.map(|u| u.max_rss_kib));
    out.extend_from_slice(b",\n    \"not_before\": ");
    push_opt_time(out, info.not_before);
    out.extend_from_slice(b",\n    \"pid\": ");
    push_opt_u64(out, info.pid.map(u64::from));
    out.extend_from_slice(b",\n    \"preempted\": ");
    out.extend_from_slice(if info.preempted { b"true" } else { b"false" });
    out.extend_from_slice(b",\n    \"priority\": ");
    push_u64(out, info.priority.into());
    out.extend_from_slice(b",\n    \"progress\": ");
    push_opt_str(out, info.progress.as_deref());
    out.extend_from_slice(b",\n    \"queue\": ");
    push_str(out, &info.queue);
    out.extend_from_slice(b",\n    \"reason\": ");
    push_opt_str(out, info.reason.as_deref());
    out.extend_from_slice(b",\n    \"remote_id\": ");
    push_opt_str(out, info.remote_id.as_deref());
    out.extend_from_slice(b",\n    \"retries\": ");
    push_u64(out, info.retries.into());
    out.extend_from_slice(b",\n    \"retry_at\": ");
    push_opt_time(out, info.retry_at);
    out.extend_from_slice(b",\n    \"signal\": ");
    push_opt_i64(out, info.signal.map(i64::from));
    out.extend_from_slice(b",\n    \"started_at\": ");
    push_opt_time(out, info.started_at);
    out.extend_from_slice(b",\n    \"state\": ");
    push_str(out, info.state.as_str());
    out.extend_from_slice(b",\n    \"submitted_at\": ");
    push_time(out, info.submitted_at);
    out.extend_from_slice(b",\n    \"timeout_ms\": ");
    push_opt_u64(out, info.timeout_ms);
    out.extend_from_slice(b"\n  }");
}

/// An argv array at depth 2 (elements at depth 3).
fn push_str_array(out: &mut Vec<u8>, items: &[String]) {
    if items.is_empty() {
        out.extend_from_slice(b"[]");
        return;
    }
    for (i, item) in items.iter().enumerate() {
        out.extend_from_slice(if i == 0 { b"[\n      " } else { b",\n      " });
        push_str(out, item);
    }
    out.extend_from_slice(b"\n    ]");
}

/// The labels object at depth 2: keys sorted, a repeated key keeping its
/// last value (as a JSON map built from the pairs would).
fn push_labels(out: &mut Vec<u8>, pairs: &[(String, String)]) {
    if pairs.is_empty() {
        out.extend_from_slice(b"{}");
        return;
    }
    let mut push_pairs = |pairs: &mut dyn Iterator<Item = (&str, &str)>| {
        for (i, (k, v)) in pairs.enumerate() {
            out.extend_from_slice(if i == 0 { b"{\n      " } else { b",\n      " });
            push_str(out, k);
            out.extend_from_slice(b": ");
            push_str(out, v);
        }
    };
    if pairs.windows(2).all(|w| w[0].0 < w[1].0) {
        push_pairs(&mut pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    } else {
        let map: BTreeMap<&str, &str> = pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        push_pairs(&mut map.into_iter());
    }
    out.extend_from_slice(b"\n    }");
}

/// The prerequisites array at depth 2 (objects at depth 3).
fn push_after(out: &mut Vec<u8>, after: &[(JobId, bool)]) {
    if after.is_empty() {
        out.extend_from_slice(b"[]");
        return;
    }
    for (i, &(id, any)) in after.iter().enumerate() {
        out.extend_from_slice(if i == 0 { b"[\n      " } else { b",\n      " });
        out.extend_from_slice(b"{\n        \"any_outcome\": ");
        out.extend_from_slice(if any { b"true" } else { b"false" });
        out.extend_from_slice(b",\n        \"id\": ");
        push_u64(out, id.0);
        out.extend_from_slice(b"\n      }");
    }
    out.extend_from_slice(b"\n    ]");
}

/// The history array at depth 2 (objects at depth 3).
fn push_history(out: &mut Vec<u8>, history: &[Attempt]) {
    if history.is_empty() {
        out.extend_from_slice(b"[]");
        return;
    }
    for (i, a) in history.iter().enumerate() {
        out.extend_from_slice(if i == 0 { b"[\n      " } else { b",\n      " });
        out.extend_from_slice(b"{\n        \"exit_code\": ");
        push_opt_i64(out, a.exit_code.map(i64::from));
        out.extend_from_slice(b",\n        \"finished_at\": ");
        push_time(out, a.finished_at);
        out.extend_from_slice(b",\n        \"signal\": ");
        push_opt_i64(out, a.signal.map(i64::from));
        out.extend_from_slice(b",\n        \"started_at\": ");
        push_time(out, a.started_at);
        out.extend_from_slice(b"\n      }");
    }
    out.extend_from_slice(b"\n    ]");
}

/// A JSON string with serde_json's escapes: `"`, `\` and control
/// characters; everything else (`/`, DEL, non-ASCII) as is.
fn push_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut run = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let mut unicode = *b"\\u0000";
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\t' => b"\\t",
            b'\r' => b"\\r",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => {
                unicode[4] = HEX[usize::from(b >> 4)];
                unicode[5] = HEX[usize::from(b & 0xf)];
                &unicode
            }
            _ => continue,
        };
        out.extend_from_slice(&bytes[run..i]);
        out.extend_from_slice(escape);
        run = i + 1;
    }
    out.extend_from_slice(&bytes[run..]);
    out.push(b'"');
}

/// Lower-case hex digits, as serde_json writes `\u00XX`.
const HEX: [u8; 16] = *b"0123456789abcdef";

/// An optional string, or `null`.
fn push_opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => push_str(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

/// An unsigned integer.
fn push_u64(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// An optional unsigned integer, or `null`.
fn push_opt_u64(out: &mut Vec<u8>, n: Option<u64>) {
    match n {
        Some(n) => push_u64(out, n),
        None => out.extend_from_slice(b"null"),
    }
}

/// An optional signed integer, or `null`.
fn push_opt_i64(out: &mut Vec<u8>, n: Option<i64>) {
    match n {
        Some(n) => out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes()),
        None => out.extend_from_slice(b"null"),
    }
}

/// A timestamp as an RFC 3339 string (see [`super::rfc3339`]).
fn push_time(out: &mut Vec<u8>, ts: Timestamp) {
    use std::io::Write as _;
    out.push(b'"');
    // Writing to a Vec cannot fail.
    let _ = write!(out, "{}", super::rfc3339_display(ts));
    out.push(b'"');
}

/// An optional timestamp, or `null`.
fn push_opt_time(out: &mut Vec<u8>, ts: Option<Timestamp>) {
    match ts {
        Some(ts) => push_time(out, ts),
        None => out.extend_from_slice(b"null"),
    }
}
