//! Finish callbacks: a shell line run when a job ends (`--on-finish`).
//!
//! A job's own `submit --on-finish CMD` wins over the daemon's
//! `--on-finish`. The driver decides that a callback is owed when the job
//! reaches its terminal state, and logs it (`CallbackDue`) in the same group
//! as the end; once that group is durable it hands the callback to the
//! [`Runner`] here. The runner runs it off the scheduler's path, at most
//! `--on-finish-concurrency` at once, each bounded by `--on-finish-timeout`,
//! and reports the result back; the driver then logs `CallbackDone` and
//! tells the activity log (`CallbackFinished`) and the metrics. A callback's
//! result never changes its job.
//!
//! Durability: a callback owed and not done when the daemon stopped (it
//! crashed, or shut down while the callback waited its turn) is run again
//! after the restart. So a callback runs at least once, and may run twice
//! if the daemon died between its end and the log of it being done. See
//! `docs/callbacks.md`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mayfly_protocol::{Activity, JobInfo, LogStream};
use tokio::io::AsyncReadExt;
use tokio::sync::{Semaphore, mpsc};

use crate::exec::local::log_path;

/// How much of a failed callback's stderr the activity log keeps.
const STDERR_TAIL: usize = 2048;

/// How long the end of a callback's stderr is read for once it exited
/// (something it started in the background may hold the pipe open).
const STDERR_DRAIN: Duration = Duration::from_millis(200);

/// The daemon's callback settings.
#[derive(Debug, Clone)]
pub struct CallbackConfig {
    /// `--on-finish`: the line run for jobs that set none.
    pub default_line: Option<String>,
    /// `--on-finish-timeout`.
    pub timeout: Duration,
    /// `--on-finish-concurrency`.
    pub concurrency: usize,
    /// Where the jobs' output files are, for `MAYFLY_JOB_STDOUT`/`_STDERR`.
    pub logs_dir: PathBuf,
    /// The daemon's socket, as `MAYFLY_SOCKET` (as jobs get it), so that a
    /// callback's `mayflyctl` talks to this daemon.
    pub socket: PathBuf,
}

/// One callback to run: the line, where, and with what environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callback {
    /// The job it is for.
    pub id: mayfly_protocol::JobId,
    /// The shell line.
    pub line: String,
    /// The job's working directory.
    pub cwd: String,
    /// The job's environment and the `MAYFLY_*` facts about its end.
    pub env: Vec<(String, String)>,
}

impl Callback {
    /// The callback of the finished `job`, whose own `--on-finish` is
    /// `own` and whose environment is `env`; `None` when neither the job nor
    /// the daemon sets one.
    pub fn of(
        job: &JobInfo,
        own: Option<&str>,
        env: &[(String, String)],
        config: &CallbackConfig,
    ) -> Option<Callback> {
        let line = own.or(config.default_line.as_deref())?.to_string();
        let mut env = env.to_vec();
        let socket = ("MAYFLY_SOCKET", config.socket.display().to_string());
        for (key, value) in facts(job, &config.logs_dir).into_iter().chain([socket]) {
            match env.iter_mut().find(|(k, _)| *k == key) {
                Some(slot) => slot.1 = value,
                None => env.push((key.to_string(), value)),
            }
        }
        Some(Callback {
            id: job.id,
            line,
            cwd: job.cwd.clone(),
            env,
        })
    }
}

/// The `MAYFLY_*` variables that tell a callback how its job ended.
fn facts(job: &JobInfo, logs_dir: &Path) -> [(&'static str, String); 8] {
    let text = |v: Option<i32>| v.map(|n| n.to_string()).unwrap_or_default();
    let path = |stream| log_path(logs_dir, job.id, stream).display().to_string();
    let duration = job
        .started_at
        .zip(job.finished_at)
        .map(|(start, end)| end.millis_since(start).to_string())
        .unwrap_or_default();
    [
        ("MAYFLY_JOB_ID", job.id.to_string()),
        ("MAYFLY_JOB_STATE", job.state.as_str().to_string()),
        ("MAYFLY_EXIT_CODE", text(job.exit_code)),
        ("MAYFLY_SIGNAL", text(job.signal)),
        ("MAYFLY_QUEUE", job.queue.clone()),
        ("MAYFLY_JOB_STDOUT", path(LogStream::Stdout)),
        ("MAYFLY_JOB_STDERR", path(LogStream::Stderr)),
        ("MAYFLY_DURATION_MS", duration),
    ]
}

/// Runs callbacks handed to it, a bounded number at once, and reports each
/// result as a `CallbackFinished` activity.
#[derive(Debug, Clone)]
pub struct Runner {
    /// Where callbacks are handed over.
    tx: mpsc::UnboundedSender<Callback>,
}

impl Runner {
    /// Starts the runner's task; each finished callback is reported to
    /// `done`. The task ends once every clone of the runner is dropped and
    /// the callbacks it holds have run.
    pub fn start(
        config: &CallbackConfig,
        done: impl Fn(Activity) + Send + Sync + 'static,
    ) -> Runner {
        let done = Arc::new(done);
        let (tx, mut rx) = mpsc::unbounded_channel::<Callback>();
        let slots = Arc::new(Semaphore::new(config.concurrency.max(1)));
        let timeout = config.timeout;
        tokio::spawn(async move {
            while let Some(callback) = rx.recv().await {
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    break;
                };
                let done = done.clone();
                tokio::spawn(async move {
                    let finished = run(&callback, timeout).await;
                    drop(slot);
                    done(finished);
                });
            }
        });
        Runner { tx }
    }

    /// Queues `callback`; false if the runner is gone.
    pub fn run(&self, callback: Callback) -> bool {
        self.tx.send(callback).is_ok()
    }
}

/// Runs one callback to its end or its timeout; says how it went.
async fn run(callback: &Callback, timeout: Duration) -> Activity {
    let started = Instant::now();
    let finished = |result: &str, exit_code, error| Activity::CallbackFinished {
        id: callback.id,
        result: result.to_string(),
        exit_code,
        ran_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        error,
    };
    let spawned = tokio::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(&callback.line)
        .env_clear()
        .envs(callback.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&callback.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => {
            let error = format!("could not start it in {}: {e}", callback.cwd);
            tracing::warn!(job = %callback.id, %error, "finish callback failed");
            return finished("failed", None, Some(error));
        }
    };
    let pgid = child.id();
    let mut stderr = child.stderr.take();
    let tail = tokio::spawn(async move {
        let mut bytes = Vec::new();
        if let Some(pipe) = stderr.as_mut() {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                bytes.extend_from_slice(&buf[..n]);
                if bytes.len() > 2 * STDERR_TAIL {
                    bytes.drain(..bytes.len() - STDERR_TAIL);
                }
            }
        }
        bytes
    });
    let status = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(status) => status,
        Err(_) => {
            if let Some(pgid) = pgid {
                kill_group(pgid);
            }
            let _ = child.wait().await;
            tail.abort();
            let error = format!(
                "ran longer than its {} timeout (--on-finish-timeout) and was killed",
                humantime::format_duration(timeout)
            );
            tracing::warn!(job = %callback.id, %error, "finish callback timed out");
            return finished("timed_out", None, Some(error));
        }
    };
    let stderr = match tokio::time::timeout(STDERR_DRAIN, tail).await {
        Ok(Ok(bytes)) => last_chars(&bytes),
        _ => String::new(),
    };
    match status {
        Ok(status) if status.success() => {
            tracing::debug!(job = %callback.id, "finish callback ran");
            finished("ok", Some(0), None)
        }
        Ok(status) => {
            use std::os::unix::process::ExitStatusExt;
            let how = match (status.code(), status.signal()) {
                (Some(code), _) => format!("exited {code}"),
                (None, Some(signal)) => format!("was killed by signal {signal}"),
                _ => "ended".to_string(),
            };
            let error = if stderr.is_empty() {
                how
            } else {
                format!("{how}: {stderr}")
            };
            tracing::warn!(job = %callback.id, %error, "finish callback failed");
            finished("failed", status.code(), Some(error))
        }
        Err(e) => {
            let error = format!("lost track of it: {e}");
            tracing::warn!(job = %callback.id, %error, "finish callback failed");
            finished("failed", None, Some(error))
        }
    }
}

/// SIGKILL to process group `pgid` (the callback and what it started).
fn kill_group(pgid: u32) {
    if let Ok(pgid) = i32::try_from(pgid) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pgid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// The last [`STDERR_TAIL`] bytes of `bytes` as text, trimmed.
fn last_chars(bytes: &[u8]) -> String {
    let start = bytes.len().saturating_sub(STDERR_TAIL);
    String::from_utf8_lossy(&bytes[start..]).trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use mayfly_protocol::{JobId, JobState, Timestamp};

    /// A finished job as the driver sees it.
    fn job() -> JobInfo {
        JobInfo {
            state: JobState::Failed,
            exit_code: Some(1),
            attempts: 1,
            started_at: Some(Timestamp(1_000)),
            finished_at: Some(Timestamp(3_500)),
            ..JobInfo::submitted(
                JobId(7),
                mayfly_protocol::Command::Shell("false".into()),
                "/",
                "q",
                50,
                Timestamp(0),
            )
        }
    }

    /// Settings with `line` as the daemon's callback.
    fn config(line: Option<&str>) -> CallbackConfig {
        CallbackConfig {
            default_line: line.map(str::to_string),
            timeout: Duration::from_secs(5),
            concurrency: 2,
            logs_dir: PathBuf::from("/state/logs"),
            socket: PathBuf::from("/run/m.sock"),
        }
    }

    #[test]
    fn the_jobs_own_callback_wins_and_its_facts_override_its_environment() {
        let env = vec![
            ("HOME".to_string(), "/home/u".to_string()),
            ("MAYFLY_JOB_STATE".to_string(), "forged".to_string()),
        ];
        assert_eq!(Callback::of(&job(), None, &env, &config(None)), None);
        let daemon = Callback::of(&job(), None, &env, &config(Some("d"))).unwrap();
        assert_eq!(daemon.line, "d");
        let own = Callback::of(&job(), Some("mine"), &env, &config(Some("d"))).unwrap();
        assert_eq!(own.line, "mine");
        let var = |k: &str| {
            own.env
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(var("HOME"), Some("/home/u"));
        assert_eq!(var("MAYFLY_JOB_ID"), Some("7"));
        assert_eq!(var("MAYFLY_JOB_STATE"), Some("failed"));
        assert_eq!(var("MAYFLY_EXIT_CODE"), Some("1"));
        assert_eq!(var("MAYFLY_SIGNAL"), Some(""));
        assert_eq!(var("MAYFLY_QUEUE"), Some("q"));
        assert_eq!(var("MAYFLY_JOB_STDOUT"), Some("/state/logs/7.out"));
        assert_eq!(var("MAYFLY_JOB_STDERR"), Some("/state/logs/7.err"));
        assert_eq!(var("MAYFLY_DURATION_MS"), Some("2500"));
        assert_eq!(var("MAYFLY_SOCKET"), Some("/run/m.sock"));
        assert_eq!(own.env.len(), 2 + 8, "MAYFLY_JOB_STATE is set once");
    }

    /// A callback to run `line` in `/`.
    fn callback(line: &str) -> Callback {
        Callback {
            id: JobId(1),
            line: line.into(),
            cwd: "/".into(),
            env: vec![("PATH".into(), "/usr/bin:/bin".into())],
        }
    }

    #[tokio::test]
    async fn results_say_ok_failed_or_timed_out() {
        let ok = run(&callback("true"), Duration::from_secs(5)).await;
        assert!(
            matches!(&ok, Activity::CallbackFinished { result, exit_code: Some(0), error: None, .. } if result == "ok"),
            "{ok:?}"
        );
        let failed = run(&callback("echo boom >&2; exit 3"), Duration::from_secs(5)).await;
        assert!(
            matches!(&failed, Activity::CallbackFinished { result, exit_code: Some(3), error: Some(e), .. } if result == "failed" && e == "exited 3: boom"),
            "{failed:?}"
        );
        let hung = run(&callback("sleep 30"), Duration::from_millis(200)).await;
        assert!(
            matches!(&hung, Activity::CallbackFinished { result, ran_ms, .. } if result == "timed_out" && *ran_ms < 10_000),
            "{hung:?}"
        );
        let mut nowhere = callback("true");
        nowhere.cwd = "/no/such/dir".into();
        let failed = run(&nowhere, Duration::from_secs(5)).await;
        assert!(
            matches!(&failed, Activity::CallbackFinished { result, exit_code: None, .. } if result == "failed"),
            "{failed:?}"
        );
    }

    #[tokio::test]
    async fn no_more_run_at_once_than_allowed() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = config(None);
        config.concurrency = 2;
        let (done_tx, mut done) = mpsc::unbounded_channel();
        let runner = Runner::start(&config, move |a| {
            let _ = done_tx.send(a);
        });
        // Each callback counts how many run at once, in a file, with a lock
        // made of mkdir.
        let line = format!(
            "cd {} && until mkdir lock 2>/dev/null; do :; done; n=$(cat n 2>/dev/null || echo 0); \
             echo $((n+1)) > n; echo $((n+1)) >> seen; rmdir lock; sleep 0.2; \
             until mkdir lock 2>/dev/null; do :; done; n=$(cat n); echo $((n-1)) > n; rmdir lock",
            dir.path().display()
        );
        for id in 1..=5 {
            let mut c = callback(&line);
            c.id = JobId(id);
            assert!(runner.run(c));
        }
        for _ in 0..5 {
            let finished = tokio::time::timeout(Duration::from_secs(20), done.recv())
                .await
                .expect("each callback finishes")
                .expect("the runner reports");
            assert!(
                matches!(&finished, Activity::CallbackFinished { result, .. } if result == "ok"),
                "{finished:?}"
            );
        }
        let seen = std::fs::read_to_string(dir.path().join("seen")).unwrap();
        let most = seen.lines().filter_map(|l| l.parse::<u32>().ok()).max();
        assert!(most.is_some_and(|n| (1..=2).contains(&n)), "{seen}");
    }
}
