//! `submit`: queue a job with the caller's context; print its id; with
//! `--wait`, wait for it on the same connection and exit with its code.
//! With `--stdin` or `--json-input`, queue every job read from standard
//! input ([`crate::batch`]) in one `SubmitBatch` request.
//!
//! The flags shared by every job of a submit (queue, priority, directory,
//! environment, labels, dependencies, start time, timeout, retries) become
//! one [`JobDefaults`]; a single submit adds the command, a batch adds each
//! line's command and overrides.

use std::io::Write;
use std::path::{Path, PathBuf};

use mayfly_protocol::{
    Argv, Command, DepRef, Dependency, FrameError, JobId, JobSpec, Request, Response,
    SubmitBatchRequest, SubmitRequest, Timestamp, WaitRequest,
};
use serde_json::{Value, json};

use super::{emit_line, flush};
use crate::batch;
use crate::cli::SubmitArgs;
use crate::client::{Connection, Target, daemon_error, unexpected};
use crate::context::ClientContext;
use crate::error::{CtlError, UsageError};
use crate::plan::{
    Action, parse_at, parse_duration_ms, parse_id, parse_key_value, parse_priority,
    parse_timeout_ms, upsert, utf8,
};

/// Everything a job spec holds except its command: what the flags of one
/// `submit` give every job it queues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobDefaults {
    /// The absolute working directory.
    pub cwd: String,
    /// The captured environment with `--env` applied.
    pub env: Vec<(String, String)>,
    /// The queue.
    pub queue: String,
    /// The priority.
    pub priority: u8,
    /// The labels, in the order given.
    pub labels: Vec<(String, String)>,
    /// `--after` then `--after-any`.
    pub after: Vec<Dependency>,
    /// From `--delay` or `--at`.
    pub not_before: Option<Timestamp>,
    /// From `--timeout`.
    pub timeout_ms: Option<u64>,
    /// From `--retries`.
    pub retries: u32,
    /// From `--retry-delay`.
    pub retry_delay_ms: u64,
    /// From `--max-output`.
    pub max_output: Option<u64>,
    /// From `--on-finish`.
    pub on_finish: Option<String>,
    /// From `--preemptible`.
    pub preemptible: bool,
}

impl JobDefaults {
    /// Validates the shared flags of `submit` against the caller's context.
    pub fn from_args(args: &SubmitArgs, ctx: &ClientContext) -> Result<Self, UsageError> {
        let priority = parse_priority(args.priority)?;
        if args.queue.is_empty() {
            return Err(UsageError::EmptyQueue);
        }
        let cwd = resolve_cwd(args.cwd.as_deref(), &ctx.cwd)?;
        let cwd = utf8(
            cwd.as_os_str(),
            format!("the working directory {}", cwd.display()),
        )?;

        let mut env = ctx.env.clone();
        for text in &args.env {
            let (key, value) = parse_key_value("--env", text)?;
            upsert(&mut env, key, value);
        }
        let mut labels = Vec::new();
        for text in &args.label {
            let (key, value) = parse_key_value("--label", text)?;
            upsert(&mut labels, key, value);
        }

        let mut after = Vec::new();
        for (texts, any_outcome) in [(&args.after, false), (&args.after_any, true)] {
            for text in texts {
                after.push(Dependency {
                    on: DepRef::Job(parse_id(text.trim())?),
                    any_outcome,
                });
            }
        }

        Ok(Self {
            cwd,
            env,
            queue: args.queue.clone(),
            priority,
            labels,
            after,
            not_before: not_before(args.delay.as_deref(), args.at.as_deref(), ctx)?,
            timeout_ms: args
                .timeout
                .as_deref()
                .map(|t| parse_timeout_ms("--timeout", t))
                .transpose()?,
            retries: args.retries,
            retry_delay_ms: parse_duration_ms("--retry-delay", &args.retry_delay)?,
            max_output: args.max_output,
            on_finish: args.on_finish.clone(),
            preemptible: args.preemptible,
        })
    }

    /// The spec of a job running `command` with these settings.
    pub fn spec(&self, command: Command) -> JobSpec {
        let mut spec = JobSpec {
            command,
            cwd: self.cwd.clone(),
            env: self.env.clone(),
            queue: self.queue.clone(),
            priority: self.priority,
            labels: self.labels.clone(),
            after: self.after.clone(),
            not_before: self.not_before,
            timeout_ms: self.timeout_ms,
            retries: self.retries,
            retry_delay_ms: self.retry_delay_ms,
            ext: Vec::new(),
        };
        spec.set_max_output(self.max_output);
        spec.set_on_finish(self.on_finish.clone());
        spec.set_preemptible(self.preemptible);
        spec
    }
}

/// The not-before time of `--delay DUR` (now + DUR) or `--at TIME`; clap
/// already refused both together.
pub fn not_before(
    delay: Option<&str>,
    at: Option<&str>,
    ctx: &ClientContext,
) -> Result<Option<Timestamp>, UsageError> {
    match (delay, at) {
        (Some(d), _) => Ok(Some(ctx.now.plus_millis(parse_duration_ms("--delay", d)?))),
        (None, Some(t)) => parse_at("--at", t, ctx).map(Some),
        (None, None) => Ok(None),
    }
}

/// Builds the request(s) from the arguments and the caller's context.
pub fn plan(args: &SubmitArgs, ctx: &ClientContext) -> Result<Action, UsageError> {
    let defaults = JobDefaults::from_args(args, ctx)?;
    if args.reads_stdin() {
        let text = match &ctx.stdin {
            Some(Ok(text)) => text.as_str(),
            Some(Err(reason)) => return Err(UsageError::Stdin(reason.clone())),
            None => return Err(UsageError::Stdin("standard input was not read".into())),
        };
        let parsed = if args.json_input {
            batch::parse_json_lines(text, &defaults, ctx)?
        } else {
            batch::parse_shell_lines(text, &defaults)?
        };
        return Ok(Action::SubmitBatch {
            request: SubmitBatchRequest {
                specs: parsed.specs,
            },
            lines: parsed.lines,
            wait: args.wait,
        });
    }

    let words = args
        .command
        .iter()
        .map(|w| utf8(w, "an argument of the command"))
        .collect::<Result<Vec<_>, _>>()?;
    let command = if args.shell {
        let script = words.join(" ");
        if script.trim().is_empty() {
            return Err(UsageError::NoCommand);
        }
        Command::Shell(script)
    } else {
        match Argv::try_from(words) {
            Ok(argv) if !argv.program().is_empty() => Command::Argv(argv),
            _ => return Err(UsageError::NoCommand),
        }
    };
    Ok(Action::Submit {
        request: SubmitRequest {
            spec: defaults.spec(command),
        },
        wait: args.wait,
    })
}

/// The job's directory: `dir` made absolute against the caller's
/// directory, or the caller's directory. `.` components are dropped; `..`
/// is kept (resolving it lexically would be wrong across symlinks).
pub fn resolve_cwd(
    dir: Option<&Path>,
    caller: &Result<PathBuf, String>,
) -> Result<PathBuf, UsageError> {
    let base = || caller.clone().map_err(UsageError::NoCwd);
    let path = match dir {
        Some(dir) if dir.is_absolute() => dir.to_path_buf(),
        Some(dir) => base()?.join(dir),
        None => base()?,
    };
    Ok(path.components().collect())
}

/// Submits; prints the id (flushed, so it is visible while `--wait` blocks);
/// with `wait`, then waits and returns the job's exit code.
pub fn execute(
    target: &Target,
    request: SubmitRequest,
    wait: bool,
    json: bool,
    out: &mut dyn Write,
) -> Result<u8, CtlError> {
    let mut conn = Connection::open(target, &Request::Submit(request))?;
    let id = match conn.recv()? {
        Response::Submitted { id } => id,
        Response::Error(e) => return Err(daemon_error("submit", e)),
        other => return Err(unexpected("submit", &other)),
    };
    if json {
        emit_line(out, &json!({ "id": id.0 }).to_string())?;
    } else {
        emit_line(out, &id.to_string())?;
    }
    flush(out)?;
    if !wait {
        return Ok(crate::error::EXIT_OK);
    }
    wait_for(&mut conn, vec![id])
}

/// Most jobs sent in one `SubmitBatch` request.
const CHUNK_JOBS: usize = 10_000;

/// Most (estimated) bytes of job specs sent in one `SubmitBatch` request: a
/// quarter of the frame limit, so the estimate can be off by 4× and the
/// frame still fits.
const CHUNK_BYTES: usize = mayfly_protocol::MAX_FRAME_LEN / 4;

/// An upper bound of a spec's encoded size: every string's bytes plus
/// room for its length prefix, and room for the fixed fields.
fn estimated_size(spec: &JobSpec) -> usize {
    let strings = |pairs: &[(String, String)]| -> usize {
        pairs.iter().map(|(k, v)| k.len() + v.len() + 20).sum()
    };
    let command = match &spec.command {
        Command::Argv(words) => words.iter().map(|w| w.len() + 10).sum(),
        Command::Shell(script) => script.len() + 10,
    };
    command
        + spec.cwd.len()
        + spec.queue.len()
        + strings(&spec.env)
        + strings(&spec.labels)
        + spec.after.len() * 16
        + 128
}

/// Splits `specs` into runs that each fit one request: at most
/// [`CHUNK_JOBS`] jobs and about [`CHUNK_BYTES`] bytes (a single larger
/// spec gets a run of its own; the daemon judges it).
fn chunk_bounds(specs: &[JobSpec]) -> Vec<std::ops::Range<usize>> {
    let mut bounds = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, spec) in specs.iter().enumerate() {
        let size = estimated_size(spec);
        if i > start && (i - start == CHUNK_JOBS || bytes + size > CHUNK_BYTES) {
            bounds.push(start..i);
            (start, bytes) = (i, 0);
        }
        bytes += size;
    }
    if start < specs.len() {
        bounds.push(start..specs.len());
    }
    bounds
}

/// Rewrites the dependencies of the specs in `range` for a request of
/// their own: a line before the range becomes the id it was given
/// (`ids[k - 1]`), a line inside it is renumbered from the range's start.
fn rebase_chunk(specs: &mut [JobSpec], range: std::ops::Range<usize>, ids: &[JobId]) {
    for spec in &mut specs[range.clone()] {
        for dep in &mut spec.after {
            if let DepRef::BatchLine(k) = dep.on {
                let line = k as usize;
                if (1..=range.start).contains(&line) {
                    dep.on = DepRef::Job(ids[line - 1]);
                } else if line > range.start {
                    dep.on = DepRef::BatchLine((line - range.start) as u32);
                }
            }
        }
    }
}

/// Submits a batch; prints one id per line (`--json`: an array of
/// `{"id", "line"}`), flushed; with `wait`, then waits for all of them.
///
/// A batch too large for one frame goes as several requests, one after
/// another on the same connection, each all or none; a dependency on a
/// line of an earlier request is sent as that line's id. If the daemon
/// refuses a request, the ids already queued are printed before the error.
pub fn execute_batch(
    target: &Target,
    request: SubmitBatchRequest,
    lines: &[usize],
    wait: bool,
    json: bool,
    out: &mut dyn Write,
) -> Result<u8, CtlError> {
    let mut specs = request.specs;
    let bounds = chunk_bounds(&specs);
    check_sizes(&specs, &bounds, lines)?;
    let mut ids: Vec<JobId> = Vec::with_capacity(specs.len());
    let mut conn: Option<Connection> = None;
    let mut refused = None;
    for range in bounds {
        rebase_chunk(&mut specs, range.clone(), &ids);
        let chunk = Request::SubmitBatch(SubmitBatchRequest {
            specs: specs[range.clone()].to_vec(),
        });
        let c = match conn.as_mut() {
            Some(c) => {
                c.send(&chunk)?;
                c
            }
            None => conn.insert(Connection::open(target, &chunk)?),
        };
        match c.recv()? {
            Response::SubmittedBatch { ids: got } if got.len() == range.len() => ids.extend(got),
            Response::SubmittedBatch { ids: got } => {
                return Err(CtlError::Protocol(format!(
                    "the daemon queued {} jobs for the {} lines sent",
                    got.len(),
                    range.len()
                )));
            }
            Response::Error(e) => {
                refused = Some(daemon_error("submit", e));
                break;
            }
            other => return Err(unexpected("submit", &other)),
        }
    }
    if json {
        let array: Vec<Value> = ids
            .iter()
            .zip(lines)
            .map(|(id, line)| json!({"id": id.0, "line": line}))
            .collect();
        emit_line(out, &format!("{:#}", Value::Array(array)))?;
    } else {
        for id in &ids {
            emit_line(out, &id.to_string())?;
        }
    }
    flush(out)?;
    if let Some(error) = refused {
        return Err(match ids.len() {
            0 => error,
            n => CtlError::Partial {
                queued: n,
                total: specs.len(),
                error: Box::new(error),
            },
        });
    }
    match conn {
        Some(mut conn) if wait => wait_for(&mut conn, ids),
        _ => Ok(crate::error::EXIT_OK),
    }
}

/// Refuses, before anything is sent, a batch with a job too large for a
/// request of its own: that is its input line's fault (a usage error
/// naming the line), and refusing it midway would leave the batch half
/// queued. Only a job whose estimate exceeds [`CHUNK_BYTES`] can be too
/// large, so only those are encoded to find out.
fn check_sizes(
    specs: &[JobSpec],
    bounds: &[std::ops::Range<usize>],
    lines: &[usize],
) -> Result<(), UsageError> {
    for range in bounds {
        let spec = &specs[range.start];
        if range.len() != 1 || estimated_size(spec) <= CHUNK_BYTES {
            continue;
        }
        let request = Request::SubmitBatch(SubmitBatchRequest {
            specs: vec![spec.clone()],
        });
        if let Err(FrameError::TooLarge { len }) = mayfly_protocol::encode_payload(&request) {
            return Err(UsageError::BadLine {
                line: lines.get(range.start).copied().unwrap_or(range.start + 1),
                reason: format!(
                    "the job is too large to send: {} encoded, more than the {} one request \
                     can carry; pass large data to the job through a file instead",
                    crate::error::mib(len),
                    crate::error::mib(mayfly_protocol::MAX_FRAME_LEN as u64)
                ),
            });
        }
    }
    Ok(())
}

/// Waits on `conn` for `ids` and returns the exit code of `wait`.
fn wait_for(conn: &mut Connection, ids: Vec<JobId>) -> Result<u8, CtlError> {
    conn.send(&Request::Wait(WaitRequest { ids: ids.clone() }))?;
    // The answers come when the jobs end, however long that takes.
    conn.wait_as_long_as_it_takes()?;
    let ended = super::wait::read_wait_stream(conn, |_| Ok(()))?;
    super::wait::exit_code_for(&ids, &ended)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A trivial spec with `env_bytes` of environment.
    fn spec(env_bytes: usize) -> JobSpec {
        let mut spec = JobSpec::new(Command::Shell("true".into()), "/", "default", 50);
        spec.env = vec![("X".into(), "x".repeat(env_bytes))];
        spec
    }

    /// A job too large for any request is refused before anything is
    /// sent, as a usage error naming its input line; large ones that fit
    /// pass.
    #[test]
    fn a_job_too_large_to_send_is_its_lines_usage_error() {
        let specs = vec![
            spec(10),
            spec(CHUNK_BYTES * 2),
            spec(mayfly_protocol::MAX_FRAME_LEN + 1),
        ];
        let bounds = chunk_bounds(&specs);
        let err = check_sizes(&specs, &bounds, &[1, 4, 7]).unwrap_err();
        assert!(
            matches!(err, UsageError::BadLine { line: 7, .. }),
            "{err:?}"
        );
        let text = CtlError::from(err.clone()).to_string();
        assert!(
            text.starts_with("line 7 of standard input: the job is too large"),
            "{text}"
        );
        assert!(text.contains("16 MiB"), "{text}");
        assert_eq!(CtlError::from(err).exit_code(), crate::error::EXIT_USAGE);
        assert_eq!(check_sizes(&specs[..2], &bounds[..2], &[1, 4]), Ok(()));
    }

    /// Runs cover every spec once, in order, within both limits.
    #[test]
    fn chunks_respect_the_count_and_size_limits() {
        let small: Vec<JobSpec> = (0..25_001).map(|_| spec(10)).collect();
        let bounds = chunk_bounds(&small);
        assert_eq!(bounds, vec![0..10_000, 10_000..20_000, 20_000..25_001]);

        let big: Vec<JobSpec> = (0..10).map(|_| spec(CHUNK_BYTES / 3)).collect();
        let bounds = chunk_bounds(&big);
        assert_eq!(bounds.len(), 5, "{bounds:?}");
        assert!(bounds.iter().all(|r| r.len() == 2));

        // One spec above the limit still goes, alone.
        let huge = vec![spec(10), spec(CHUNK_BYTES), spec(10)];
        assert_eq!(chunk_bounds(&huge), vec![0..1, 1..2, 2..3]);
        assert!(chunk_bounds(&[]).is_empty());
    }

    /// Every chunk's frame fits the frame limit and decodes within the
    /// decoder's size limit (which counts the memory a decoded value
    /// claims, more than its encoded bytes for many short strings).
    #[test]
    fn every_chunk_encodes_and_decodes_within_the_limits() {
        let mut specs: Vec<JobSpec> = (0..10_000).map(|_| spec(300)).collect();
        specs[7].labels = vec![("k".into(), "v".repeat(1000))];
        specs[8].command = Command::Argv(vec!["echo".into(); 500].try_into().expect("a program"));
        // The worst case for the decoder: many tiny strings.
        let mut tiny = spec(0);
        tiny.env = (0..200).map(|_| (String::new(), String::new())).collect();
        tiny.command = Command::Argv(vec![String::new(); 200].try_into().expect("a program"));
        specs.extend(std::iter::repeat_n(tiny, 5_000));
        let bounds = chunk_bounds(&specs);
        assert!(bounds.len() > 3, "{bounds:?}");
        for range in bounds {
            let request = Request::SubmitBatch(SubmitBatchRequest {
                specs: specs[range.clone()].to_vec(),
            });
            let frame = mayfly_protocol::encode_frame(&request).expect("fits a frame");
            let estimate: usize = specs[range].iter().map(estimated_size).sum();
            assert!(frame.len() <= estimate, "{} > {estimate}", frame.len());
            let decoded: Request =
                mayfly_protocol::decode_payload(&frame[4..]).expect("decodes within the limit");
            assert_eq!(decoded, request);
        }
    }

    /// Dependencies on earlier requests become ids; later ones are renumbered.
    #[test]
    fn dependencies_across_requests_are_rebased() {
        let dep = |k| Dependency {
            on: DepRef::BatchLine(k),
            any_outcome: false,
        };
        let mut specs: Vec<JobSpec> = (0..6).map(|_| spec(1)).collect();
        specs[4].after = vec![dep(1), dep(3), dep(4)];
        specs[5].after = vec![
            dep(5),
            Dependency {
                on: DepRef::Job(JobId(99)),
                any_outcome: true,
            },
        ];
        let ids = [JobId(10), JobId(11), JobId(12)];
        rebase_chunk(&mut specs, 3..6, &ids);
        let ons = |s: &JobSpec| s.after.iter().map(|d| d.on).collect::<Vec<_>>();
        assert_eq!(
            ons(&specs[4]),
            vec![
                DepRef::Job(JobId(10)),
                DepRef::Job(JobId(12)),
                DepRef::BatchLine(1)
            ]
        );
        assert_eq!(
            ons(&specs[5]),
            vec![DepRef::BatchLine(2), DepRef::Job(JobId(99))]
        );
        // The first request is left as it is.
        let mut first = specs.clone();
        rebase_chunk(&mut first, 0..3, &[]);
        assert_eq!(first, specs);
    }
}
