//! The `slurm` executor against a real Slurm cluster (`docs/slurm.md`).
//!
//! These tests need a running cluster, found through `SLURM_CONF`:
//! `contrib/test` starts a single-node one on this machine with
//! `contrib/slurm-cluster start` (and stops it afterwards). Without one,
//! every test here fails saying so; none is skipped. The daemons' state
//! dirs are temporary folders on this machine, which is also the cluster's
//! only node, so Slurm writes job output where the daemon reads it.
//!
//! Every test's daemon has queue `hpc` run by Slurm and asks Slurm about
//! its jobs every 250ms. Tests share the cluster and run in parallel; Mayfly
//! job ids repeat between their daemons (each starts at 1), so a Slurm job
//! is recognised by its id or by its output file, never by name alone.
//! Every job script is bounded (`until_file` gives up after 30 s), so
//! nothing a failed test leaves in Slurm runs for long.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;

use crate::helper::http::{Scrape, get};
use crate::helper::{Daemon, Running, code_of, stderr_of, stdout_of, until_file, wait_until};

/// How long a wait on a Slurm job may take: submitting, Slurm's scheduling
/// pass (about a second), the run, and the next poll, on a machine busy
/// with the rest of the suite.
const SLURM_DEADLINE: Duration = Duration::from_secs(60);

/// The daemons' poll interval here: short, so the tests are quick.
const POLL: &str = "250ms";

/// Panics, saying how to get one, unless a Slurm cluster answers (once per
/// test binary).
fn need_cluster() {
    static ANSWER: OnceLock<Result<(), String>> = OnceLock::new();
    let answer = ANSWER.get_or_init(|| {
        let conf = std::env::var_os("SLURM_CONF").ok_or(
            "SLURM_CONF is not set: these tests need a running Slurm cluster; run the suite \
             with contrib/test, which starts one (contrib/slurm-cluster start), or start one \
             and export SLURM_CONF",
        )?;
        if !Path::new(&conf).is_file() {
            return Err(format!(
                "SLURM_CONF names {}, which is not a file: start the cluster with \
                 contrib/slurm-cluster start",
                Path::new(&conf).display()
            ));
        }
        let ping = Command::new("scontrol")
            .arg("ping")
            .output()
            .map_err(|e| format!("cannot run scontrol ({e}): install Slurm (contrib/test does)"))?;
        let text = String::from_utf8_lossy(&ping.stdout);
        if !text.contains("UP") {
            return Err(format!(
                "the Slurm controller does not answer (scontrol ping: {} {}): start the \
                 cluster with contrib/slurm-cluster start",
                text.trim(),
                String::from_utf8_lossy(&ping.stderr).trim()
            ));
        }
        Ok(())
    });
    if let Err(e) = answer {
        panic!("{e}");
    }
}

/// A daemon with queue `hpc` run by Slurm, plus `extra_args`.
fn slurm_daemon(extra_args: &[&str]) -> Daemon {
    need_cluster();
    let mut args = vec!["--slurm-poll-interval", POLL];
    args.extend_from_slice(extra_args);
    let d = Daemon::start(&args);
    add_slurm_queue(&d, "hpc", &[]);
    d
}

/// `queue add NAME --executor slurm EXTRA…`.
fn add_slurm_queue(d: &Daemon, name: &str, extra: &[&str]) {
    let mut args = vec!["queue", "add", name, "--executor", "slurm"];
    args.extend_from_slice(extra);
    d.ctl_ok(&args);
}

/// `mayflyctl wait IDS…`, given [`SLURM_DEADLINE`].
fn wait(d: &Daemon, ids: &[u64]) -> Output {
    let ids: Vec<String> = ids.iter().map(u64::to_string).collect();
    let mut cmd = d.ctl_command();
    cmd.arg("wait").args(&ids);
    Running::spawn(&mut cmd).finish(SLURM_DEADLINE)
}

/// Waits until job `id` is in `state`, for up to [`SLURM_DEADLINE`].
fn wait_state(d: &Daemon, id: u64, state: &str) {
    let mut last = String::new();
    wait_until(SLURM_DEADLINE, &format!("job {id} to be {state}"), || {
        last = d.state(id);
        last == state
    });
}

/// The Slurm job id of job `id`'s attempt, once it has one.
fn slurm_id(d: &Daemon, id: u64) -> String {
    let mut found = None;
    wait_until(SLURM_DEADLINE, &format!("job {id}'s Slurm id"), || {
        found = d.job(id)["remote_id"].as_str().map(str::to_owned);
        found.is_some()
    });
    found.expect("seen")
}

/// `squeue -h -t all -j ID -o FORMAT`: what Slurm says of one job.
fn squeue(slurm_id: &str, format: &str) -> String {
    let out = Command::new("squeue")
        .args(["-h", "-t", "all", "-j", slurm_id, "-o", format])
        .output()
        .expect("run squeue");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// `scontrol -o show job ID`: the controller's one line on a job.
fn scontrol_job(slurm_id: &str) -> String {
    let out = Command::new("scontrol")
        .args(["-o", "show", "job", slurm_id])
        .output()
        .expect("run scontrol");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Waits until Slurm says job `slurm_id` is in `state`.
fn wait_slurm_state(slurm_id: &str, state: &str) {
    let mut last = String::new();
    wait_until(
        SLURM_DEADLINE,
        &format!("Slurm job {slurm_id} to be {state}"),
        || {
            last = squeue(slurm_id, "%T");
            last == state
        },
    );
}

/// Runs a Slurm client command and asserts it succeeded.
fn slurm_ok(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The lines of a file in the daemon's work folder (empty if missing).
fn lines_of(d: &Daemon, name: &str) -> Vec<String> {
    fs::read_to_string(d.file(name))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

// ------------------------------------------------------------------ running

/// A batch of jobs on the Slurm queue: each one's output, exit code and
/// state come back as a local job's would, `status` shows the Slurm ids,
/// and the daemon asks Slurm one `squeue` per tick for all of them.
#[test]
fn a_batch_of_slurm_jobs_brings_back_output_and_exit_codes() {
    need_cluster();
    let (d, addr) = Daemon::start_with_http(&["--slurm-poll-interval", POLL]);
    add_slurm_queue(&d, "hpc", &[]);
    let ids: Vec<u64> = (0..10)
        .map(|i| {
            let code = (i % 3).to_string();
            d.submit(&[
                "--queue",
                "hpc",
                "--",
                "sh",
                "-c",
                "echo out-$1 $MAYFLY_JOB_ID; echo err-$1 >&2; exit $2",
                "sh",
                &i.to_string(),
                &code,
            ])
        })
        .collect();
    let out = wait(&d, &ids);
    assert_eq!(code_of(&out), 1, "some jobs fail: {}", stdout_of(&out));
    let mut remote = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let job = d.job(*id);
        let code = i64::try_from(i % 3).unwrap();
        let state = if code == 0 { "succeeded" } else { "failed" };
        assert_eq!(job["state"], state, "{job}");
        assert_eq!(job["exit_code"], code, "{job}");
        assert_eq!(job["signal"], Value::Null, "{job}");
        // Slurm keeps usage in its accounting, which is not required.
        assert_eq!(job["cpu_user_ms"], Value::Null, "{job}");
        assert_eq!(job["max_rss_kib"], Value::Null, "{job}");
        let slurm_id = job["remote_id"].as_str().expect("a Slurm id").to_owned();
        assert_eq!(squeue(&slurm_id, "%j"), format!("mayfly-{id}"));
        // What the daemon read from squeue is what scontrol reports.
        let shown = scontrol_job(&slurm_id);
        assert!(
            shown.contains(&format!(" ExitCode={code}:0 ")),
            "job {id}: {shown}"
        );
        remote.push(slurm_id);
        assert_eq!(
            d.ctl_ok(&["logs", &id.to_string()]),
            format!("out-{i} {id}")
        );
        assert_eq!(
            d.ctl_ok(&["logs", "--stderr", &id.to_string()]),
            format!("err-{i}")
        );
    }
    let table = d.ctl_ok(&["status"]);
    let header = table.lines().next().unwrap_or_default();
    assert!(header.contains("REMOTE"), "{table}");
    for slurm_id in &remote {
        assert!(table.contains(slurm_id.as_str()), "{table}");
    }
    let scrape = Scrape::parse(
        &get(&format!("http://{addr}/metrics"))
            .expect("a scrape")
            .body,
    );
    let slurm = [("executor", "slurm")];
    let polls = scrape.value_or_zero("mayfly_executor_polls_total", &slurm);
    let squeues: f64 = scrape
        .matching(
            "mayfly_executor_calls_total",
            &[("executor", "slurm"), ("command", "squeue")],
        )
        .iter()
        .map(|s| s.value)
        .sum();
    assert!(polls >= 1.0, "{}", scrape.text);
    assert_eq!(squeues, polls, "one squeue per tick for all ten jobs");
    let calls: f64 = scrape
        .matching("mayfly_executor_calls_total", &slurm)
        .iter()
        .map(|s| s.value)
        .sum();
    // Besides: ten sbatch, and one scontrol show config when the executor
    // starts; never a call per job per tick.
    assert_eq!(calls, polls + 10.0 + 1.0, "{}", scrape.text);
    assert_eq!(
        scrape.value_or_zero(
            "mayfly_executor_starts_total",
            &[("executor", "slurm"), ("result", "ok")]
        ),
        10.0
    );
    assert_eq!(
        scrape.value_or_zero("mayfly_executor_jobs_tracked", &slurm),
        0.0
    );
}

/// What a job is given reaches it under Slurm exactly as it reaches a local
/// job: odd arguments (a lone `:`, empty, spaces, quotes, `$`, globs, a
/// newline), the captured environment (commas, `=`, newlines in values),
/// and its working directory.
#[test]
fn odd_arguments_environment_and_directory_reach_a_slurm_job_as_given() {
    let d = slurm_daemon(&[]);
    let dir = d.work().join("a dir with 'quotes' and spaces");
    fs::create_dir_all(&dir).expect("create the job's directory");
    let script = "pwd; printf '[%s]\\n' \"$@\"; printf 'A=[%s] B=[%s] ID=[%s]\\n' \"$A\" \"$B\" \"$MAYFLY_JOB_ID\"";
    let run = |queue: &str| {
        let id = d.submit(&[
            "--queue",
            queue,
            "--cwd",
            dir.to_str().expect("a UTF-8 path"),
            "--env",
            "A=x,y=z",
            "--env",
            "B=two\nlines $HOME *",
            "--",
            "sh",
            "-c",
            script,
            "sh",
            ":",
            "",
            "a b",
            "\"quoted\"",
            "'single'",
            "$HOME",
            "*",
            "--flag",
            "=x",
            "new\nline",
            "caf\u{e9} \u{1F980}",
        ]);
        let out = wait(&d, &[id]);
        assert_eq!(code_of(&out), 0, "{}", stderr_of(&out));
        let text = fs::read_to_string(d.state_dir().join(format!("logs/{id}.out")))
            .expect("the job's output");
        (id, text)
    };
    let (local_id, local) = run("default");
    let (slurm_id, slurm) = run("hpc");
    assert!(d.job(slurm_id)["remote_id"].is_string());
    assert_eq!(
        slurm,
        local.replace(&format!("ID=[{local_id}]"), &format!("ID=[{slurm_id}]")),
        "the Slurm job saw something else than the local one"
    );
    assert!(
        slurm.contains("[:]\n[]\n[a b]\n"),
        "a lone ':' and an empty argument pass: {slurm}"
    );
}

/// A Slurm job gets the environment `submit` captured, not the daemon's:
/// a variable only the daemon has does not reach it, one the client gave
/// does, and Slurm adds its own `SLURM_*`.
#[test]
fn a_slurm_job_gets_the_captured_environment_not_the_daemon_s() {
    need_cluster();
    let d = Daemon::start_with_env(
        &["--slurm-poll-interval", POLL],
        &[("MAYFLY_TEST_DAEMON_ONLY", std::ffi::OsStr::new("leaked"))],
    );
    add_slurm_queue(&d, "hpc", &[]);
    let id = d.submit_shell(
        &["--queue", "hpc", "--env", "MINE=given"],
        "echo \"daemon=[${MAYFLY_TEST_DAEMON_ONLY-unset}] mine=[$MINE] slurm=[$SLURM_JOB_ID]\"",
    );
    assert_eq!(code_of(&wait(&d, &[id])), 0);
    let slurm = d.job(id)["remote_id"]
        .as_str()
        .expect("a Slurm id")
        .to_owned();
    assert_eq!(
        d.ctl_ok(&["logs", &id.to_string()]),
        format!("daemon=[unset] mine=[given] slurm=[{slurm}]")
    );
}

/// A job whose directory is gone by the time it runs fails, saying so,
/// instead of running in the `/tmp` Slurm falls back to.
#[test]
fn a_slurm_job_never_runs_outside_its_directory() {
    let d = slurm_daemon(&[]);
    let gone = d.work().join("gone");
    fs::create_dir_all(&gone).expect("create the job's directory");
    let marker = format!("mayfly-test-ran-here-{}", std::process::id());
    // Held by a local job until its directory is removed.
    let hold = d.submit_shell(&[], &until_file("release"));
    let id = d.submit(&[
        "--queue",
        "hpc",
        "--after",
        &hold.to_string(),
        "--cwd",
        gone.to_str().expect("a UTF-8 path"),
        "--",
        "touch",
        &marker,
    ]);
    fs::remove_dir(&gone).expect("remove the job's directory");
    d.touch("release");
    let out = wait(&d, &[id]);
    assert_eq!(code_of(&out), 1, "{}", stdout_of(&out));
    let err = d.ctl_ok(&["logs", "--stderr", &id.to_string()]);
    assert!(err.contains("cannot run in"), "{err}");
    assert!(!Path::new("/tmp").join(&marker).exists());
}

/// `--after` links jobs across a local queue and the Slurm queue both
/// ways, and a failed Slurm job skips what depends on it.
#[test]
fn after_links_jobs_across_a_local_and_a_slurm_queue() {
    let d = slurm_daemon(&[]);
    let first = d.submit_shell(&[], "echo local-1 >> order");
    let second = d.submit_shell(
        &["--queue", "hpc", "--after", &first.to_string()],
        "echo slurm-2 >> order",
    );
    let third = d.submit_shell(&["--after", &second.to_string()], "echo local-3 >> order");
    let failing = d.submit_shell(&["--queue", "hpc", "--after", &third.to_string()], "exit 4");
    let skipped = d.submit_shell(&["--after", &failing.to_string()], "echo never >> order");
    let out = wait(&d, &[first, second, third, failing, skipped]);
    assert_eq!(code_of(&out), 1);
    assert_eq!(lines_of(&d, "order"), ["local-1", "slurm-2", "local-3"]);
    assert_eq!(d.state(failing), "failed");
    assert_eq!(d.job(failing)["exit_code"], 4);
    let job = d.job(skipped);
    assert_eq!(job["state"], "skipped", "{job}");
}

/// A failing Slurm job with retries runs again (a new Slurm job) until it
/// succeeds.
#[test]
fn a_failed_slurm_job_is_retried() {
    let d = slurm_daemon(&[]);
    let id = d.submit_shell(
        &["--queue", "hpc", "--retries", "2", "--retry-delay", "100ms"],
        "echo run >> runs; [ $(wc -l < runs) -ge 2 ]",
    );
    let out = wait(&d, &[id]);
    assert_eq!(code_of(&out), 0, "{}", stdout_of(&out));
    assert_eq!(lines_of(&d, "runs").len(), 2);
    assert_eq!(d.job(id)["attempts"], 2);
}

/// `logs --follow` streams a Slurm job's output as Slurm writes it, and
/// ends when the job does.
#[test]
fn logs_follow_a_slurm_job_to_its_end() {
    let d = slurm_daemon(&[]);
    let id = d.submit_shell(
        &["--queue", "hpc"],
        &format!("echo first; {}; echo second", until_file("release")),
    );
    let follow = d.ctl_spawn(&["logs", &id.to_string(), "--follow"]);
    wait_until(SLURM_DEADLINE, "the first line", || {
        follow.stdout_so_far().contains("first")
    });
    d.touch("release");
    let out = follow.finish(SLURM_DEADLINE);
    assert_eq!(code_of(&out), 0);
    assert_eq!(stdout_of(&out), "first\nsecond");
}

// ----------------------------------------------------------- stopping jobs

/// `--timeout` stops a Slurm job at its time (Mayfly cancels it in Slurm)
/// and the job ends `timed_out`; Slurm holds the limit as `--time` too.
#[test]
fn a_timeout_ends_a_slurm_job_timed_out() {
    let d = slurm_daemon(&[]);
    let id = d.submit(&["--queue", "hpc", "--timeout", "2s", "--", "sleep", "60"]);
    let slurm = slurm_id(&d, id);
    // Slurm was given the limit too, in whole minutes rounded up.
    assert_eq!(squeue(&slurm, "%l"), "1:00");
    let out = wait(&d, &[id]);
    assert_ne!(code_of(&out), 0);
    let job = d.job(id);
    assert_eq!(job["state"], "timed_out", "{job}");
    wait_slurm_state(&slurm, "CANCELLED");
}

/// A Slurm `TIMEOUT` (the job ran past the queue's `--time`, which Slurm
/// enforces in whole minutes, checking about every 30 s) ends the job
/// `timed_out`, saying Slurm stopped it. The slowest test here.
#[test]
fn a_slurm_time_limit_ends_the_job_timed_out() {
    let d = slurm_daemon(&[]);
    add_slurm_queue(&d, "short", &["--slurm-arg=--time=1"]);
    let id = d.submit(&["--queue", "short", "--", "sleep", "300"]);
    let slurm = slurm_id(&d, id);
    let mut cmd = d.ctl_command();
    cmd.args(["wait", &id.to_string()]);
    let out = Running::spawn(&mut cmd).finish(Duration::from_secs(240));
    assert_ne!(code_of(&out), 0);
    let job = d.job(id);
    assert_eq!(job["state"], "timed_out", "{job}");
    let reason = job["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("TIMEOUT"), "{job}");
    assert_eq!(squeue(&slurm, "%T"), "TIMEOUT");
}

/// `cancel` of a running Slurm job cancels it in Slurm (`CANCELLED`) and
/// ends it `cancelled`.
#[test]
fn cancel_cancels_the_slurm_job() {
    let d = slurm_daemon(&[]);
    let id = d.submit_shell(
        &["--queue", "hpc"],
        &format!("echo started; {}", until_file("never")),
    );
    let slurm = slurm_id(&d, id);
    wait_slurm_state(&slurm, "RUNNING");
    let out = d.ctl_ok(&["cancel", &id.to_string()]);
    assert!(out.contains("signalled"), "{out}");
    let out = wait(&d, &[id]);
    assert_eq!(code_of(&out), 1);
    assert_eq!(d.state(id), "cancelled");
    wait_slurm_state(&slurm, "CANCELLED");
}

/// `pause --running` suspends the queue's Slurm jobs (`scontrol suspend`:
/// the daemon runs as root here) and `resume --running` resumes them.
#[test]
fn pause_running_suspends_and_resumes_slurm_jobs() {
    let d = slurm_daemon(&[]);
    let id = d.submit_shell(&["--queue", "hpc"], &until_file("release"));
    let slurm = slurm_id(&d, id);
    wait_slurm_state(&slurm, "RUNNING");
    d.ctl_ok(&["pause", "hpc", "--running"]);
    wait_slurm_state(&slurm, "SUSPENDED");
    d.ctl_ok(&["resume", "hpc", "--running"]);
    wait_slurm_state(&slurm, "RUNNING");
    d.touch("release");
    assert_eq!(code_of(&wait(&d, &[id])), 0);
}

// ------------------------------------------------------------------ errors

/// `sbatch` refusing a job (an unknown partition) fails it with Slurm's
/// own words; `sbatch` missing fails it saying so; either way the daemon
/// goes on serving.
#[test]
fn sbatch_failures_fail_the_job_with_slurm_s_words() {
    let d = slurm_daemon(&[]);
    add_slurm_queue(&d, "nowhere", &["--slurm-partition", "no-such-partition"]);
    let id = d.submit(&["--queue", "nowhere", "--", "true"]);
    let out = wait(&d, &[id]);
    assert_eq!(code_of(&out), 1);
    let job = d.job(id);
    assert_eq!(job["state"], "failed", "{job}");
    let reason = job["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("sbatch") && reason.contains("Invalid partition"),
        "{job}"
    );
    let fine = d.submit(&["--queue", "hpc", "--", "true"]);
    assert_eq!(code_of(&wait(&d, &[fine])), 0);

    need_cluster();
    let no_slurm = Daemon::start_with_env(&[], &[("PATH", std::ffi::OsStr::new("/nonexistent"))]);
    add_slurm_queue(&no_slurm, "hpc", &[]);
    let id = no_slurm.submit(&["--queue", "hpc", "--", "/bin/true"]);
    assert_eq!(code_of(&wait(&no_slurm, &[id])), 1);
    let job = no_slurm.job(id);
    let reason = job["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("cannot run sbatch"), "{job}");
    no_slurm.ctl_ok(&["status"]);
}

/// A queue refuses `sbatch` arguments that would undo what Mayfly relies
/// on, saying which and why; `queue list` and `dump-state` show the
/// executor.
#[test]
fn slurm_queues_are_configured_and_shown() {
    let d = slurm_daemon(&[]);
    for bad in [
        "--slurm-arg=--job-name=x",
        "--slurm-arg=-o/tmp/x",
        "--slurm-arg=--array=1-3",
    ] {
        let out = d.ctl(&["queue", "add", "bad", "--executor", "slurm", bad]);
        assert_eq!(code_of(&out), 1, "{bad}");
        assert!(
            stderr_of(&out).contains("leave it out"),
            "{}",
            stderr_of(&out)
        );
    }
    add_slurm_queue(
        &d,
        "gpu",
        &["--slurm-partition", "debug", "--slurm-arg=--mem=10M"],
    );
    let list = d.ctl_ok(&["queue", "list"]);
    assert!(
        list.lines()
            .any(|l| l.starts_with("gpu") && l.contains("slurm partition=debug --mem=10M")),
        "{list}"
    );
    let dump: Value = serde_json::from_str(&d.ctl_ok(&["dump-state"])).expect("JSON");
    let gpu = dump["queues"]
        .as_array()
        .expect("queues")
        .iter()
        .find(|q| q["name"] == "gpu")
        .cloned()
        .expect("queue gpu");
    assert!(gpu.to_string().contains("slurm"), "{gpu}");
    let id = d.submit(&["--queue", "gpu", "--", "true"]);
    assert_eq!(code_of(&wait(&d, &[id])), 0);
}

/// `queue set` turns a local queue into a Slurm one with a partition and
/// extra arguments, which `queue list`, `dump-state` and Slurm itself
/// show; its executor cannot change while one of its jobs runs, and can
/// once none does.
#[test]
fn queue_set_moves_a_queue_to_slurm_and_back() {
    let d = slurm_daemon(&[]);
    d.ctl_ok(&["queue", "add", "batch"]);
    d.ctl_ok(&[
        "queue",
        "set",
        "batch",
        "--executor",
        "slurm",
        "--slurm-partition",
        "debug",
        "--slurm-arg=--mem=20M",
        "--slurm-arg=--nice=5",
    ]);
    let list = d.ctl_ok(&["queue", "list"]);
    assert!(
        list.lines()
            .any(|l| l.starts_with("batch")
                && l.contains("slurm partition=debug --mem=20M --nice=5")),
        "{list}"
    );
    let dump: Value = serde_json::from_str(&d.ctl_ok(&["dump-state"])).expect("JSON");
    let batch = dump["queues"]
        .as_array()
        .expect("queues")
        .iter()
        .find(|q| q["name"] == "batch")
        .cloned()
        .expect("queue batch");
    assert_eq!(batch["executor"]["kind"], "slurm", "{batch}");
    assert_eq!(batch["executor"]["partition"], "debug", "{batch}");
    assert_eq!(
        batch["executor"]["args"],
        serde_json::json!(["--mem=20M", "--nice=5"]),
        "{batch}"
    );

    let id = d.submit_shell(&["--queue", "batch"], &until_file("release"));
    let slurm = slurm_id(&d, id);
    assert_eq!(squeue(&slurm, "%P|%m|%y"), "debug|20M|5");
    let out = d.ctl(&["queue", "set", "batch", "--executor", "local"]);
    assert_eq!(code_of(&out), 1, "{}", stdout_of(&out));
    let err = stderr_of(&out);
    assert!(err.contains("running") && err.contains("slurm"), "{err}");
    d.touch("release");
    assert_eq!(code_of(&wait(&d, &[id])), 0);

    d.ctl_ok(&["queue", "set", "batch", "--executor", "local"]);
    let list = d.ctl_ok(&["queue", "list"]);
    assert!(
        list.lines()
            .any(|l| l.starts_with("batch") && l.contains("local") && !l.contains("slurm")),
        "{list}"
    );
    let local = d.submit(&["--queue", "batch", "--", "true"]);
    assert_eq!(code_of(&wait(&d, &[local])), 0);
    assert_eq!(d.job(local)["remote_id"], Value::Null);
}

/// A daemon that is neither root nor Slurm's `SlurmUser` may not suspend
/// Slurm jobs: `pause --running` of a Slurm queue is refused, saying so and
/// what to do instead, and a plain `pause` still works. (The daemon and
/// its client run as uid 65534 here, as in the trust tests.)
#[test]
fn pause_running_of_a_slurm_queue_is_refused_where_slurm_would_refuse_it() {
    need_cluster();
    let dir = tempfile::tempdir().expect("a temp dir");
    crate::trust::chmod(dir.path(), 0o755);
    let theirs = dir.path().join("theirs");
    fs::create_dir(&theirs).expect("create their folder");
    crate::trust::chmod(&theirs, 0o700);
    crate::trust::give_to_other(&theirs);
    let _daemon = crate::trust::other_daemon(dir.path(), &theirs);
    let ctl = crate::trust::reachable_bin(dir.path(), "mayflyctl");
    let as_them = |args: &[&str]| {
        crate::helper::run(
            crate::trust::as_other(&ctl)
                .arg("--socket")
                .arg(theirs.join("mayfly.sock"))
                .args(args),
        )
    };
    let out = as_them(&["queue", "add", "hpc", "--executor", "slurm"]);
    assert_eq!(code_of(&out), 0, "{}", stderr_of(&out));
    let out = as_them(&["pause", "hpc", "--running"]);
    assert_eq!(code_of(&out), 1, "{}", stdout_of(&out));
    let err = stderr_of(&out);
    assert!(
        err.contains("not supported for slurm queues") && err.contains("SlurmUser"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    let out = as_them(&["pause", "hpc"]);
    assert_eq!(code_of(&out), 0, "{}", stderr_of(&out));
}

// -------------------------------------------------------------- durability

/// The Mayfly job ids of `ids` whose Slurm jobs (any state) write to this
/// daemon's log files: how many Slurm jobs each got.
fn slurm_jobs_of(d: &Daemon, ids: &[u64]) -> Vec<usize> {
    let names: Vec<String> = ids.iter().map(|id| format!("mayfly-{id}")).collect();
    let out = Command::new("squeue")
        .args([
            "-h",
            "-t",
            "all",
            "-n",
            &names.join(","),
            "-O",
            "Name:|,STDOUT:|",
        ])
        .output()
        .expect("run squeue");
    let text = String::from_utf8_lossy(&out.stdout);
    let logs = d.state_dir().join("logs");
    ids.iter()
        .map(|id| {
            let path = logs.join(format!("{id}.out"));
            let mine = format!("mayfly-{id}|{}|", path.display());
            text.lines().filter(|l| l.trim() == mine).count()
        })
        .collect()
}

/// `kill -9` of `mayflyd` while Slurm runs its jobs: the next daemon
/// re-attaches them by their logged ids and follows them to their end —
/// never submitted again, never `interrupted` while Slurm runs them.
#[test]
fn kill_9_while_slurm_jobs_run_reattaches_them_and_each_runs_once() {
    let mut d = slurm_daemon(&[]);
    let ids: Vec<u64> = (0..5)
        .map(|i| {
            d.submit_shell(
                &["--queue", "hpc", "--retries", "2"],
                &format!("echo $SLURM_JOB_ID >> runs-{i}; {}", until_file("release")),
            )
        })
        .collect();
    let before: Vec<String> = ids.iter().map(|id| slurm_id(&d, *id)).collect();
    for (i, slurm) in before.iter().enumerate() {
        wait_slurm_state(slurm, "RUNNING");
        wait_until(SLURM_DEADLINE, "the job to start", || {
            !lines_of(&d, &format!("runs-{i}")).is_empty()
        });
    }
    d.kill_hard();
    d.restart(&["--slurm-poll-interval", POLL]);
    for id in &ids {
        assert_eq!(d.state(*id), "running", "re-attached, not interrupted");
    }
    d.touch("release");
    let out = wait(&d, &ids);
    assert_eq!(code_of(&out), 0, "{}", stdout_of(&out));
    for (i, (id, slurm)) in ids.iter().zip(&before).enumerate() {
        let job = d.job(*id);
        assert_eq!(job["attempts"], 1, "{job}");
        assert_eq!(job["remote_id"], slurm.as_str(), "{job}");
        assert_eq!(
            lines_of(&d, &format!("runs-{i}")),
            std::slice::from_ref(slurm),
            "ran once"
        );
    }
    assert_eq!(slurm_jobs_of(&d, &ids), vec![1; ids.len()]);
}

/// A graceful shutdown does not stop Slurm jobs: the daemon exits at once,
/// Slurm runs on, and the next start follows the job to its end.
#[test]
fn a_graceful_shutdown_leaves_slurm_jobs_running_for_the_next_start() {
    let mut d = slurm_daemon(&["--shutdown-timeout", "30s"]);
    let id = d.submit_shell(&["--queue", "hpc"], &until_file("release"));
    let slurm = slurm_id(&d, id);
    wait_slurm_state(&slurm, "RUNNING");
    let status = d.stop();
    assert!(status.success(), "{status}");
    assert_eq!(squeue(&slurm, "%T"), "RUNNING");
    d.restart(&["--slurm-poll-interval", POLL]);
    assert_eq!(d.state(id), "running");
    d.touch("release");
    assert_eq!(code_of(&wait(&d, &[id])), 0);
    assert_eq!(d.job(id)["attempts"], 1);
}

/// The newest WAL segment of a daemon.
fn newest_segment(d: &Daemon) -> std::path::PathBuf {
    fs::read_dir(d.wal_dir())
        .expect("list the WAL folder")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .max()
        .expect("a segment")
}

/// The records of a WAL segment: `(offset, length with header, event)`
/// (the layout is in `mayflyd/src/wal/mod.rs`: a 24-byte segment header,
/// then records of `u32 len | u32 crc | u8 format | payload`, then zeros).
fn records(bytes: &[u8]) -> Vec<(usize, usize, mayflyd::core::Event)> {
    const SEGMENT_HEADER: usize = 24;
    const RECORD_HEADER: usize = 9;
    let mut out = Vec::new();
    let mut at = SEGMENT_HEADER;
    while at + RECORD_HEADER <= bytes.len() && !bytes[at..].iter().all(|&b| b == 0) {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
        let len = usize::try_from(len).expect("fits");
        let payload = &bytes[at + RECORD_HEADER..at + RECORD_HEADER + len];
        let event = mayflyd::core::Event::decode(bytes[at + 8], payload).expect("a record");
        out.push((at, RECORD_HEADER + len, event));
        at += RECORD_HEADER + len;
    }
    out
}

/// Crashes the daemon while job `id` runs in Slurm, and takes the record of
/// its Slurm id off the end of the log: the state a crash between `sbatch`
/// and the fsync of its id leaves.
fn crash_before_the_slurm_id_was_logged(d: &mut Daemon, id: u64) {
    let segment = newest_segment(d);
    let attached = |bytes: &[u8]| {
        records(bytes).last().is_some_and(
            |(_, _, e)| matches!(e, mayflyd::core::Event::Attached { id: j, .. } if j.0 == id),
        )
    };
    wait_until(SLURM_DEADLINE, "the Slurm id to be logged last", || {
        attached(&fs::read(&segment).unwrap_or_default())
    });
    d.kill_hard();
    let mut bytes = fs::read(&segment).expect("read the segment");
    assert!(attached(&bytes), "the Slurm id is the log's last record");
    let (at, len, _) = records(&bytes).pop().expect("a last record");
    bytes[at..at + len].fill(0);
    fs::write(&segment, &bytes).expect("write the segment back");
}

/// A crash between `sbatch` and the fsync of the Slurm id it printed: the
/// next daemon finds the job by its name, comment and output file, logs
/// its id, and follows it to its end — run once, not interrupted. Looking
/// for it costs no extra Slurm call: still one `squeue` per tick.
#[test]
fn an_attempt_whose_slurm_id_was_not_logged_is_found_and_followed() {
    need_cluster();
    let (mut d, addr) = Daemon::start_with_http(&["--slurm-poll-interval", POLL]);
    add_slurm_queue(&d, "hpc", &[]);
    // Followed by its logged id after the crash, while the other is looked for.
    let known = d.submit_shell(&["--queue", "hpc"], &until_file("release"));
    slurm_id(&d, known);
    let id = d.submit_shell(
        &["--queue", "hpc", "--retries", "2"],
        &format!("echo $SLURM_JOB_ID >> runs; {}", until_file("release")),
    );
    let slurm = slurm_id(&d, id);
    wait_slurm_state(&slurm, "RUNNING");
    crash_before_the_slurm_id_was_logged(&mut d, id);
    let http = addr.to_string();
    d.restart(&["--slurm-poll-interval", POLL, "--http-addr", &http]);
    let job = d.job(id);
    assert_eq!(job["state"], "running", "{job}");
    wait_until(SLURM_DEADLINE, "the job to be found", || {
        d.job(id)["remote_id"] == slurm.as_str()
    });
    d.touch("release");
    assert_eq!(code_of(&wait(&d, &[id, known])), 0);
    assert_eq!(d.job(id)["attempts"], 1);
    assert_eq!(lines_of(&d, "runs"), [slurm], "ran once");
    assert_eq!(slurm_jobs_of(&d, &[id, known]), [1, 1]);
    let scrape = Scrape::parse(
        &get(&format!("http://{addr}/metrics"))
            .expect("a scrape")
            .body,
    );
    let polls = scrape.value_or_zero("mayfly_executor_polls_total", &[("executor", "slurm")]);
    let squeues: f64 = scrape
        .matching(
            "mayfly_executor_calls_total",
            &[("executor", "slurm"), ("command", "squeue")],
        )
        .iter()
        .map(|s| s.value)
        .sum();
    assert!(polls >= 2.0, "{}", scrape.text);
    assert_eq!(squeues, polls, "one squeue per tick while looking too");
}

/// Slurm no longer has a job under the logged id and name — here the id
/// now names another job, as after a cluster restart that began its ids
/// again: the attempt ends `interrupted`, saying why, and the other job is
/// not taken for it.
#[test]
fn a_slurm_id_that_names_another_job_now_ends_the_attempt_interrupted() {
    let mut d = slurm_daemon(&[]);
    let id = d.submit_shell(&["--queue", "hpc"], &until_file("release"));
    let slurm = slurm_id(&d, id);
    wait_slurm_state(&slurm, "RUNNING");
    d.kill_hard();
    slurm_ok(
        "scontrol",
        &["update", &format!("JobId={slurm}"), "JobName=someone-else"],
    );
    d.restart(&["--slurm-poll-interval", POLL]);
    wait_state(&d, id, "interrupted");
    let job = d.job(id);
    let reason = job["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("no longer knows"), "{job}");
    d.touch("release");
}

/// A crash after the start was logged but before Slurm had the job under
/// this attempt's name and comment: the next daemon looks for it, finds
/// none, and ends the attempt `interrupted`, saying why.
#[test]
fn an_attempt_slurm_never_had_ends_interrupted() {
    let mut d = slurm_daemon(&[]);
    let id = d.submit_shell(&["--queue", "hpc"], &until_file("release"));
    let slurm = slurm_id(&d, id);
    wait_slurm_state(&slurm, "RUNNING");
    crash_before_the_slurm_id_was_logged(&mut d, id);
    // The job Slurm runs is no longer this attempt's.
    slurm_ok(
        "scontrol",
        &["update", &format!("JobId={slurm}"), "Comment=other"],
    );
    d.restart(&["--slurm-poll-interval", POLL]);
    wait_state(&d, id, "interrupted");
    let job = d.job(id);
    let reason = job["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("lists no job mayfly-"), "{job}");
    d.touch("release");
}

/// A `squeue` that answers as a controller that has forgotten every job
/// (`MinJobAge` passed, or a restart without its state) once `forget`
/// exists, and runs the real `squeue` until then: put first on a daemon's
/// `PATH`, it makes the daemon meet purged jobs without waiting the
/// cluster's five minutes. Slurm itself, its job completion log included,
/// is untouched. Returns the folder to put on `PATH`.
fn forgetful_squeue(dir: &Path, forget: &Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let real = crate::helper::tool("squeue", "slurm-client");
    let bin = dir.join("bin");
    fs::create_dir_all(&bin).expect("create the folder");
    let script = bin.join("squeue");
    fs::write(
        &script,
        format!(
            "#!/bin/sh\n\
             if [ -e '{}' ]; then\n\
             \x20   echo 'slurm_load_jobs error: Invalid job id specified' >&2\n\
             \x20   exit 1\n\
             fi\n\
             exec '{}' \"$@\"\n",
            forget.display(),
            real.display()
        ),
    )
    .expect("write the script");
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).expect("chmod");
    bin
}

/// The daemon was away while its Slurm jobs ended, and came back after the
/// controller forgot them: the end of one that finished is read from the
/// job completion log (its state and exit code), and one Slurm has no
/// trace of ends `interrupted`, saying so; neither ran twice.
#[test]
fn jobs_the_controller_forgot_are_read_from_the_job_completion_log() {
    need_cluster();
    let tools = tempfile::tempdir().expect("a temp dir");
    let forget = tools.path().join("forget");
    let bin = forgetful_squeue(tools.path(), &forget);
    let mut path = std::ffi::OsString::from(bin.as_os_str());
    path.push(":");
    path.push(std::env::var_os("PATH").unwrap_or_default());
    let mut d = Daemon::start_with_env(
        &["--slurm-poll-interval", POLL, "--shutdown-timeout", "30s"],
        &[("PATH", path.as_os_str())],
    );
    add_slurm_queue(&d, "hpc", &[]);
    let ended = d.submit_shell(
        &["--queue", "hpc"],
        &format!("echo run >> runs-ended; {}; exit 3", until_file("release")),
    );
    let lost = d.submit_shell(
        &["--queue", "hpc"],
        &format!("echo run >> runs-lost; {}", until_file("release-lost")),
    );
    let (ended_slurm, lost_slurm) = (slurm_id(&d, ended), slurm_id(&d, lost));
    wait_slurm_state(&ended_slurm, "RUNNING");
    wait_slurm_state(&lost_slurm, "RUNNING");
    assert!(d.stop().success());
    d.touch("release");
    wait_slurm_state(&ended_slurm, "FAILED");
    fs::write(&forget, "").expect("make the controller forget");
    d.restart(&["--slurm-poll-interval", POLL, "--shutdown-timeout", "30s"]);

    wait_state(&d, ended, "failed");
    let job = d.job(ended);
    assert_eq!(job["exit_code"], 3, "{job}");
    assert_eq!(job["attempts"], 1, "{job}");
    assert_eq!(job["remote_id"], ended_slurm.as_str(), "{job}");
    assert_eq!(lines_of(&d, "runs-ended"), ["run"]);
    assert_eq!(slurm_jobs_of(&d, &[ended, lost]), [1, 1]);

    wait_state(&d, lost, "interrupted");
    let job = d.job(lost);
    let reason = job["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("Slurm no longer knows its job") && reason.contains(&lost_slurm),
        "{job}"
    );
    d.touch("release-lost");
}
