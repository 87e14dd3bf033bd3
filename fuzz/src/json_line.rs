//! `mayflyctl submit --json-input` (`mayflyctl/src/batch.rs`,
//! `parse_json_lines`): one JSON object per line, each a job whose fields
//! override the flags' defaults.
//!
//! The raw half parses the bytes (as UTF-8, lossily) as standard input.
//! Asserted: nothing panics; a refusal is one line naming an input line; a
//! parsed batch holds only valid jobs (a queue, a user priority, each
//! dependency on an earlier job of the batch) and survives the trip to the
//! daemon (`SubmitBatch` encodes and decodes to itself).
//!
//! The structured half builds a job with `arbitrary`, writes it as the JSON
//! line a script would, and parses it back. Asserted: the spec holds exactly
//! what the line said, over the defaults (`parse(write(x)) == x`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use arbitrary::{Arbitrary, Unstructured};
use mayfly_protocol::{
    Command, DepRef, Dependency, JobId, Request, SubmitBatchRequest, Timestamp, decode_payload,
    encode_payload,
};
use mayflyctl::ClientContext;
use mayflyctl::batch::parse_json_lines;
use mayflyctl::cmd::submit::JobDefaults;
use serde_json::{Value, json};

/// The fuzz input. See the module documentation.
pub fn run(data: &[u8]) {
    let ctx = context();
    let defaults = defaults();
    let text = String::from_utf8_lossy(data);
    match parse_json_lines(&text, &defaults, &ctx) {
        Ok(batch) => {
            assert_eq!(batch.specs.len(), batch.lines.len());
            for (i, spec) in batch.specs.iter().enumerate() {
                assert!(!spec.queue.is_empty(), "a job without a queue");
                assert!(
                    (1..=99).contains(&spec.priority),
                    "priority {}",
                    spec.priority
                );
                for dep in &spec.after {
                    if let DepRef::BatchLine(n) = dep.on {
                        assert!(n >= 1 && (n as usize) <= i, "job {} depends on {n}", i + 1);
                    }
                }
            }
            let request = Request::SubmitBatch(SubmitBatchRequest { specs: batch.specs });
            if let Ok(payload) = encode_payload(&request) {
                let back: Request = decode_payload(&payload).expect("a batch decodes");
                assert_eq!(back, request, "decode(encode(x)) != x");
            }
        }
        Err(e) => {
            let message = e.to_string();
            assert!(!message.contains('\n'), "an error is one line: {message:?}");
        }
    }

    if let Ok(job) = JsonJob::arbitrary_take_rest(Unstructured::new(data)) {
        job.check(&defaults, &ctx);
    }
}

/// The context `mayflyctl` would read from its process, fixed (the fuzz
/// input is the only variable): a working directory, an environment, a
/// clock at a fixed time, UTC.
fn context() -> ClientContext {
    ClientContext {
        cwd: Ok(PathBuf::from("/home/fuzz/project")),
        env: vec![
            ("HOME".into(), "/home/fuzz".into()),
            ("PATH".into(), "/usr/bin:/bin".into()),
        ],
        socket_env: None,
        daemon_timeout_env: None,
        xdg_runtime_dir: None,
        job_id_env: None,
        uid: 1000,
        term_width: None,
        color: false,
        stderr_tty: false,
        now: Timestamp(1_700_000_000_000),
        time_zone: jiff::tz::TimeZone::UTC,
        stdin: None,
    }
}

/// The flags' settings of a plain `submit --json-input`.
fn defaults() -> JobDefaults {
    JobDefaults {
        cwd: "/home/fuzz/project".into(),
        env: context().env,
        queue: "default".into(),
        priority: 50,
        labels: vec![("from".into(), "flags".into())],
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

/// A job as a script would write it on one line: every field valid, so
/// the parse must accept it and keep every value.
#[derive(Debug, Arbitrary)]
struct JsonJob {
    /// `command`: an argv (its first word made non-empty) or a shell string
    /// (made non-blank).
    command: Result<Vec<String>, String>,
    /// `queue`, made non-empty.
    queue: Option<String>,
    /// `priority`, mapped into 1–99.
    priority: Option<u8>,
    /// `labels`; empty keys are dropped.
    labels: BTreeMap<String, String>,
    /// `env`; keys that are empty or hold `=` are dropped.
    env: BTreeMap<String, String>,
    /// `after`: ids, made at least 1.
    after: Vec<u64>,
    /// `after_any`: ids, made at least 1.
    after_any: Vec<u64>,
    /// `retries`.
    retries: Option<u32>,
    /// `timeout` in milliseconds, made at least 1 and written as `"Nms"`.
    timeout_ms: Option<u32>,
    /// `retry_delay` in milliseconds, written as `"Nms"`.
    retry_delay_ms: Option<u32>,
    /// `delay` in milliseconds, written as `"Nms"`.
    delay_ms: Option<u32>,
    /// `on_finish`: any shell line (the daemon, not the parser, refuses a
    /// blank one).
    on_finish: Option<String>,
    /// `preemptible`.
    preemptible: Option<bool>,
}

impl JsonJob {
    /// Writes the line, parses it, and compares the spec with what the line
    /// said.
    fn check(self, defaults: &JobDefaults, ctx: &ClientContext) {
        let command = match self.command {
            Ok(mut argv) => {
                match argv.first_mut() {
                    Some(first) if !first.is_empty() => {}
                    Some(first) => first.push('x'),
                    None => argv.push("x".into()),
                }
                Command::Argv(argv.try_into().expect("a first word"))
            }
            Err(script) if script.trim().is_empty() => Command::Shell(format!("x{script}")),
            Err(script) => Command::Shell(script),
        };
        let mut line = serde_json::Map::new();
        line.insert(
            "command".into(),
            match &command {
                Command::Argv(argv) => json!(&argv[..]),
                Command::Shell(script) => json!(script),
            },
        );
        let mut expected = defaults.spec(command);

        if let Some(mut queue) = self.queue {
            if queue.is_empty() {
                queue.push('q');
            }
            line.insert("queue".into(), json!(queue));
            expected.queue = queue;
        }
        if let Some(p) = self.priority {
            let p = p % 99 + 1;
            line.insert("priority".into(), json!(p));
            expected.priority = p;
        }
        let labels: BTreeMap<_, _> = self
            .labels
            .into_iter()
            .filter(|(k, _)| !k.is_empty())
            .collect();
        for (key, value) in &labels {
            upsert(&mut expected.labels, key, value);
        }
        line.insert("labels".into(), json!(labels));
        let env: BTreeMap<_, _> = self
            .env
            .into_iter()
            .filter(|(k, _)| !k.is_empty() && !k.contains('='))
            .collect();
        for (key, value) in &env {
            upsert(&mut expected.env, key, value);
        }
        line.insert("env".into(), json!(env));
        for (field, ids, any_outcome) in [
            ("after", self.after, false),
            ("after_any", self.after_any, true),
        ] {
            let ids: Vec<u64> = ids.into_iter().map(|id| id.max(1)).collect();
            expected.after.extend(ids.iter().map(|&id| Dependency {
                on: DepRef::Job(JobId(id)),
                any_outcome,
            }));
            line.insert(field.into(), json!(ids));
        }
        if let Some(n) = self.retries {
            line.insert("retries".into(), json!(n));
            expected.retries = n;
        }
        if let Some(ms) = self.timeout_ms {
            let ms = ms.max(1);
            line.insert("timeout".into(), json!(format!("{ms}ms")));
            expected.timeout_ms = Some(u64::from(ms));
        }
        if let Some(ms) = self.retry_delay_ms {
            line.insert("retry_delay".into(), json!(format!("{ms}ms")));
            expected.retry_delay_ms = u64::from(ms);
        }
        if let Some(ms) = self.delay_ms {
            line.insert("delay".into(), json!(format!("{ms}ms")));
            expected.not_before = Some(ctx.now.plus_millis(u64::from(ms)));
        }
        if let Some(on_finish) = self.on_finish {
            line.insert("on_finish".into(), json!(on_finish));
            expected.set_on_finish(Some(on_finish));
        }
        if let Some(preemptible) = self.preemptible {
            line.insert("preemptible".into(), json!(preemptible));
            expected.set_preemptible(preemptible);
        }

        let text = Value::Object(line).to_string();
        let batch = parse_json_lines(&text, defaults, ctx)
            .unwrap_or_else(|e| panic!("a valid line is refused: {e}\n{text}"));
        assert_eq!(batch.lines, vec![1]);
        assert_eq!(
            batch.specs,
            vec![expected],
            "parse(write(x)) != x for {text}"
        );
    }
}

/// Sets `key` in a list of pairs: replaced where it is, else appended (as
/// the parser merges a line's labels and environment into the flags').
fn upsert(pairs: &mut Vec<(String, String)>, key: &str, value: &str) {
    match pairs.iter_mut().find(|(k, _)| k == key) {
        Some(pair) => pair.1 = value.to_string(),
        None => pairs.push((key.to_string(), value.to_string())),
    }
}
