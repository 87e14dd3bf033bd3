//! The two input formats of `submit --stdin` and `submit --json-input`:
//! pure functions from the text of standard input (and the flags' shared
//! [`JobDefaults`]) to the job specs of one `SubmitBatch` request.
//!
//! Conventions of both formats: lines are numbered from 1 as in an editor;
//! blank lines and lines whose first non-blank character is `#` are
//! skipped (they keep their number); an error names its line. Jobs of one
//! input depend on each other by line number (`after_lines`), which becomes
//! the protocol's [`DepRef::BatchLine`] — the position of the job in the
//! batch, which differs from the line number when lines were skipped. Only
//! earlier lines can be named, so a batch can never hold a cycle.

use std::collections::BTreeMap;
use std::path::Path;

use mayfly_protocol::{Argv, Command, DepRef, Dependency, JobSpec};
use serde::Deserialize;

use crate::cmd::submit::{JobDefaults, not_before, resolve_cwd};
use crate::context::ClientContext;
use crate::error::UsageError;
use crate::plan::{
    parse_at, parse_duration_ms, parse_id, parse_priority, parse_timeout_ms, upsert, utf8,
};

/// The jobs read from standard input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// The job specs, in input order.
    pub specs: Vec<JobSpec>,
    /// The input line of each spec (from 1).
    pub lines: Vec<usize>,
}

/// The lines that hold something: `(number, text)` without blank lines and
/// `#` comments, with a trailing `\r` removed.
fn content_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, line)| (i + 1, line.trim()))
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
}

/// `--stdin`: each line is a shell command (run with `sh -c`), with every
/// setting taken from the flags.
pub fn parse_shell_lines(text: &str, defaults: &JobDefaults) -> Result<Batch, UsageError> {
    let mut batch = Batch {
        specs: Vec::new(),
        lines: Vec::new(),
    };
    for (number, line) in content_lines(text) {
        batch
            .specs
            .push(defaults.spec(Command::Shell(line.to_string())));
        batch.lines.push(number);
    }
    if batch.specs.is_empty() {
        return Err(UsageError::EmptyBatch);
    }
    Ok(batch)
}

/// One line of `--json-input`, as documented in `submit --help`. Unknown
/// fields are refused, so a misspelt field is an error rather than ignored.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonJob {
    /// An argv array, or a shell string.
    command: JsonCommand,
    /// Overrides `--queue`.
    queue: Option<String>,
    /// Overrides `--priority`.
    priority: Option<i64>,
    /// Existing jobs that must succeed.
    #[serde(default)]
    after: Vec<u64>,
    /// Existing jobs that must end.
    #[serde(default)]
    after_any: Vec<u64>,
    /// Earlier lines whose jobs must succeed.
    #[serde(default)]
    after_lines: Vec<usize>,
    /// Earlier lines whose jobs must end.
    #[serde(default)]
    after_any_lines: Vec<usize>,
    /// Added to `--label`.
    #[serde(default)]
    labels: BTreeMap<String, String>,
    /// Added to the environment.
    #[serde(default)]
    env: BTreeMap<String, String>,
    /// Overrides `--cwd`; relative to the caller's directory.
    cwd: Option<String>,
    /// Overrides `--timeout`.
    timeout: Option<String>,
    /// Overrides `--retries`.
    retries: Option<u32>,
    /// Overrides `--retry-delay`.
    retry_delay: Option<String>,
    /// Overrides `--max-output`.
    max_output: Option<String>,
    /// Overrides `--on-finish`.
    on_finish: Option<String>,
    /// Overrides `--preemptible`.
    preemptible: Option<bool>,
    /// Overrides `--delay` / `--at`.
    delay: Option<String>,
    /// Overrides `--delay` / `--at`.
    at: Option<String>,
}

/// The `command` of a JSON line.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum JsonCommand {
    /// Run directly.
    Argv(Vec<String>),
    /// Run with `sh -c`.
    Shell(String),
}

/// `--json-input`: each line is a JSON object (the fields `submit --help` lists) whose
/// fields override or add to the flags' settings.
pub fn parse_json_lines(
    text: &str,
    defaults: &JobDefaults,
    ctx: &ClientContext,
) -> Result<Batch, UsageError> {
    let mut batch = Batch {
        specs: Vec::new(),
        lines: Vec::new(),
    };
    for (number, line) in content_lines(text) {
        let spec = json_spec(line, number, &batch.lines, defaults, ctx).map_err(|reason| {
            UsageError::BadLine {
                line: number,
                reason: one_line(reason),
            }
        })?;
        batch.specs.push(spec);
        batch.lines.push(number);
    }
    if batch.specs.is_empty() {
        return Err(UsageError::EmptyBatch);
    }
    Ok(batch)
}

/// One job in the `--json-input` form (one JSON object, as a line of that
/// input holds), on its own: what another program hands the daemon (the A2A
/// front door reads a message's data part with this). It can depend on
/// existing jobs (`after`), not on lines. The error is one line, the
/// reason alone.
pub fn parse_json_job(
    text: &str,
    defaults: &JobDefaults,
    ctx: &ClientContext,
) -> Result<JobSpec, String> {
    json_spec(text, 1, &[], defaults, ctx).map_err(one_line)
}

/// `reason` with its control characters escaped: it quotes the line's own
/// text (serde_json names a misspelt field as written, and a JSON string
/// may hold an escaped newline), and an error is one line.
fn one_line(reason: String) -> String {
    if !reason.contains(char::is_control) {
        return reason;
    }
    reason
        .chars()
        .flat_map(|c| {
            let escaped = c.is_control().then(|| c.escape_debug());
            escaped
                .into_iter()
                .flatten()
                .chain((!c.is_control()).then_some(c))
        })
        .collect()
}

/// The spec of one JSON line. `earlier` holds the line numbers of the jobs
/// before it, in order; the error is the reason, without the line number.
fn json_spec(
    line: &str,
    number: usize,
    earlier: &[usize],
    defaults: &JobDefaults,
    ctx: &ClientContext,
) -> Result<JobSpec, String> {
    let job: JsonJob = serde_json::from_str(line).map_err(|e| {
        format!(
            "{e}; each line must be one JSON object such as {{\"command\": [\"make\", \"test\"]}}"
        )
    })?;
    let text = |e: UsageError| e.to_string();

    let command = match job.command {
        JsonCommand::Argv(words) => match Argv::try_from(words) {
            Ok(argv) if !argv.program().is_empty() => Some(Command::Argv(argv)),
            _ => None,
        },
        JsonCommand::Shell(script) => (!script.trim().is_empty()).then_some(Command::Shell(script)),
    };
    let Some(command) = command else {
        return Err("\"command\" is empty; give an argv array or a shell string".into());
    };
    let mut spec = defaults.spec(command);

    if let Some(queue) = job.queue {
        if queue.is_empty() {
            return Err("\"queue\" is empty; leave it out for --queue's queue".into());
        }
        spec.queue = queue;
    }
    if let Some(p) = job.priority {
        spec.priority = parse_priority(p).map_err(text)?;
    }
    if let Some(dir) = job.cwd {
        let path = resolve_cwd(Some(Path::new(&dir)), &ctx.cwd).map_err(text)?;
        spec.cwd = utf8(path.as_os_str(), "the working directory").map_err(text)?;
    }
    for (key, value) in job.labels {
        if key.is_empty() {
            return Err("a label key is empty".into());
        }
        upsert(&mut spec.labels, key, value);
    }
    for (key, value) in job.env {
        if key.is_empty() || key.contains('=') {
            return Err(format!(
                "{key:?} is not an environment variable name (non-empty, no '=')"
            ));
        }
        upsert(&mut spec.env, key, value);
    }
    if let Some(t) = job.timeout {
        spec.timeout_ms = Some(parse_timeout_ms("\"timeout\"", &t).map_err(text)?);
    }
    if let Some(n) = job.retries {
        spec.retries = n;
    }
    if let Some(size) = job.max_output {
        let bytes =
            mayfly_protocol::parse_size(&size).map_err(|e| format!("\"max_output\": {e}"))?;
        spec.set_max_output(Some(bytes));
    }
    if let Some(line) = job.on_finish {
        spec.set_on_finish(Some(line));
    }
    if let Some(preemptible) = job.preemptible {
        spec.set_preemptible(preemptible);
    }
    if let Some(d) = job.retry_delay {
        spec.retry_delay_ms = parse_duration_ms("\"retry_delay\"", &d).map_err(text)?;
    }
    match (job.delay, job.at) {
        (Some(_), Some(_)) => return Err("give \"delay\" or \"at\", not both".into()),
        (Some(d), None) => spec.not_before = not_before(Some(&d), None, ctx).map_err(text)?,
        (None, Some(t)) => spec.not_before = Some(parse_at("\"at\"", &t, ctx).map_err(text)?),
        (None, None) => {}
    }

    for (ids, any_outcome) in [(job.after, false), (job.after_any, true)] {
        for id in ids {
            spec.after.push(Dependency {
                on: DepRef::Job(parse_id(&id.to_string()).map_err(text)?),
                any_outcome,
            });
        }
    }
    for (lines, any_outcome) in [(job.after_lines, false), (job.after_any_lines, true)] {
        for target in lines {
            spec.after.push(Dependency {
                on: DepRef::BatchLine(batch_position(target, number, earlier)?),
                any_outcome,
            });
        }
    }
    Ok(spec)
}

/// The batch position (from 1) of the job on input line `target`, named by
/// the job on line `number`; only earlier lines that hold a job qualify.
fn batch_position(target: usize, number: usize, earlier: &[usize]) -> Result<u32, String> {
    if target >= number {
        return Err(format!(
            "it depends on line {target}, which is not an earlier line; a job can only \
             depend on the lines before it"
        ));
    }
    let index = earlier
        .iter()
        .position(|l| *l == target)
        .ok_or_else(|| format!("it depends on line {target}, which holds no job"))?;
    u32::try_from(index + 1).map_err(|_| "the batch is too large".to_string())
}

#[cfg(test)]
mod tests {
    use mayfly_protocol::{JobId, Timestamp};

    use super::*;
    use crate::plan::tests::ctx;

    /// The defaults of a plain `submit` in the test context.
    fn defaults() -> JobDefaults {
        JobDefaults {
            cwd: "/home/me/proj".into(),
            env: ctx().env,
            queue: "default".into(),
            priority: 50,
            labels: vec![("batch".into(), "yes".into())],
            after: vec![],
            not_before: None,
            timeout_ms: None,
            retries: 0,
            retry_delay_ms: 1_000,
            max_output: None,
            on_finish: None,
            preemptible: false,
        }
    }

    #[test]
    /// Shell lines: blanks and comments skipped, numbers kept, flags applied.
    fn shell_lines() {
        let text = "make a\n\n# a comment\n  make b && echo ok  \r\nmake c\n";
        let batch = parse_shell_lines(text, &defaults()).expect("valid");
        assert_eq!(batch.lines, vec![1, 4, 5]);
        assert_eq!(
            batch
                .specs
                .iter()
                .map(|s| s.command.clone())
                .collect::<Vec<_>>(),
            vec![
                Command::Shell("make a".into()),
                Command::Shell("make b && echo ok".into()),
                Command::Shell("make c".into()),
            ]
        );
        assert!(batch.specs.iter().all(|s| s.labels == defaults().labels));
        assert_eq!(
            parse_shell_lines("\n# only\n   \n", &defaults()),
            Err(UsageError::EmptyBatch)
        );
    }

    #[test]
    /// JSON lines: fields override the flags, `after_lines` becomes a batch position.
    fn json_lines_with_dependencies() {
        let text = r#"{"command": ["make", "build"], "labels": {"step": "build"}}

# the tests need the build
{"command": "make test", "after_lines": [1], "after": [7], "timeout": "30s", "retries": 2, "priority": 10, "queue": "ci", "env": {"CI": "1"}, "delay": "5s"}
{"command": ["./report"], "after_any_lines": [1, 4], "cwd": "out", "retry_delay": "2s"}
"#;
        let batch = parse_json_lines(text, &defaults(), &ctx()).expect("valid");
        assert_eq!(batch.lines, vec![1, 4, 5]);
        let [build, test, report] = &batch.specs[..] else {
            panic!("three specs: {batch:?}");
        };
        assert_eq!(
            build.command,
            Command::Argv(
                vec!["make".into(), "build".into()]
                    .try_into()
                    .expect("a program")
            )
        );
        assert_eq!(
            build.labels,
            vec![
                ("batch".to_string(), "yes".to_string()),
                ("step".to_string(), "build".to_string())
            ]
        );
        assert_eq!(test.command, Command::Shell("make test".into()));
        assert_eq!(
            test.after,
            vec![
                Dependency {
                    on: DepRef::Job(JobId(7)),
                    any_outcome: false
                },
                Dependency {
                    on: DepRef::BatchLine(1),
                    any_outcome: false
                },
            ]
        );
        assert_eq!(test.timeout_ms, Some(30_000));
        assert_eq!(test.retries, 2);
        assert_eq!(test.priority, 10);
        assert_eq!(test.queue, "ci");
        assert!(test.env.contains(&("CI".into(), "1".into())));
        assert_eq!(test.not_before, Some(Timestamp(1_700_000_005_000)));
        assert_eq!(
            report.after,
            vec![
                Dependency {
                    on: DepRef::BatchLine(1),
                    any_outcome: true
                },
                Dependency {
                    on: DepRef::BatchLine(2),
                    any_outcome: true
                },
            ]
        );
        assert_eq!(report.cwd, "/home/me/proj/out");
        assert_eq!(report.retry_delay_ms, 2_000);
        assert_eq!(report.queue, "default");
    }

    #[test]
    /// A forward or self reference, or a line without a job, is refused with its line.
    fn json_lines_refuse_bad_references() {
        let forward = "{\"command\": \"a\", \"after_lines\": [2]}\n{\"command\": \"b\"}\n";
        let err = parse_json_lines(forward, &defaults(), &ctx()).expect_err("forward");
        assert!(
            matches!(&err, UsageError::BadLine { line: 1, reason } if reason.contains("not an earlier line")),
            "{err}"
        );
        let own = "{\"command\": \"a\"}\n{\"command\": \"b\", \"after_lines\": [2]}\n";
        let err = parse_json_lines(own, &defaults(), &ctx()).expect_err("itself");
        assert!(matches!(err, UsageError::BadLine { line: 2, .. }), "{err}");
        let comment = "# x\n{\"command\": \"b\", \"after_lines\": [1]}\n";
        let err = parse_json_lines(comment, &defaults(), &ctx()).expect_err("no job");
        assert!(err.to_string().contains("holds no job"), "{err}");
    }

    #[test]
    /// A field name or value holding an escaped newline does not break the
    /// error onto two lines (found by the json_line fuzz target).
    fn json_line_errors_stay_one_line_with_control_characters() {
        let text = "{\"comm\\nd, \"at\": \"2prior:00\"}\n";
        let err = parse_json_lines(text, &defaults(), &ctx()).expect_err("unknown field");
        let msg = err.to_string();
        assert!(!msg.contains('\n'), "one line: {msg}");
        assert!(
            msg.contains(r"comm\nd"),
            "the field as written, escaped: {msg}"
        );
        let text = "{\"command\": \"x\", \"timeout\": \"soon\\nlater\"}\n";
        let msg = parse_json_lines(text, &defaults(), &ctx())
            .expect_err("bad timeout")
            .to_string();
        assert!(!msg.contains('\n'), "one line: {msg}");
    }

    #[test]
    /// Malformed lines name the line and say what is wrong.
    fn json_lines_refuse_bad_lines() {
        for (text, needle) in [
            ("make test\n", "JSON object"),
            ("{\"command\": []}\n", "empty"),
            ("{\"command\": \"x\", \"timeot\": \"5s\"}\n", "timeot"),
            ("{\"command\": \"x\", \"priority\": 0}\n", "out of range"),
            ("{\"command\": \"x\", \"timeout\": \"soon\"}\n", "30s"),
            (
                "{\"command\": \"x\", \"timeout\": \"0s\"}\n",
                "timeout of 0",
            ),
            (
                "{\"command\": \"x\", \"delay\": \"1s\", \"at\": \"10:00\"}\n",
                "not both",
            ),
            ("{\"command\": \"x\", \"after\": [0]}\n", "not a job id"),
            ("{\"command\": \"x\", \"labels\": {\"k\": 1}}\n", "string"),
            (
                "{\"command\": \"x\", \"env\": {\"A=B\": \"1\"}}\n",
                "environment",
            ),
        ] {
            let err = parse_json_lines(text, &defaults(), &ctx()).expect_err(text);
            let msg = err.to_string();
            assert!(msg.starts_with("line 1 of standard input: "), "{msg}");
            assert!(msg.contains(needle), "{text:?}: {msg}");
            assert!(!msg.contains('\n'), "one line: {msg}");
        }
    }
}
