//! End-to-end tests of the scheduling features and the commands that
//! control them, each driven through the real `mayflyctl` against the real
//! `mayflyd` (see the README's tour and `man mayflyctl-submit`):
//! dependencies, delays, timeouts, retries, queues, pause and resume,
//! restart, clean, edit, batch submits, progress, labels and status filters
//! — and the same state surviving a `kill -9` of the daemon.
//!
//! Each test starts its own daemon, so tests run in parallel. Job scripts are
//! bounded (every loop gives up after 30 s), and a test that must show that
//! something did *not* happen (a paused queue starting nothing) first waits
//! for something else that proves the daemon had its chance.

use std::process::{Command, Output};

use serde_json::Value;

use crate::helper::{
    DEADLINE, Daemon, Grandchild, bin, code_of, proc_state, process_gone, read_pid_file, run,
    stderr_of, stdout_of, still_before, until_file, wait_until, write_pid,
};

/// Runs `mayflyctl wait ID…` and returns its exit code.
fn wait_code(d: &Daemon, ids: &[u64]) -> i32 {
    let ids: Vec<String> = ids.iter().map(u64::to_string).collect();
    let mut args = vec!["wait"];
    args.extend(ids.iter().map(String::as_str));
    code_of(&d.ctl(&args))
}

/// Runs `mayflyctl wait ID…` and asserts every job succeeded.
fn wait_all_succeeded(d: &Daemon, ids: &[u64]) {
    assert_eq!(wait_code(d, ids), 0, "not every job of {ids:?} succeeded");
}

/// Runs `mayflyctl ARGS…` with `input` on its standard input (through a
/// file in the test's folder and a shell redirect, so the fixture's
/// deadline applies as to any other run).
fn ctl_with_stdin(d: &Daemon, args: &[&str], input: &str) -> Output {
    let file = d.dir().join("stdin.txt");
    std::fs::write(&file, input).expect("write the input file");
    run(Command::new("sh")
        .arg("-c")
        .arg("exec \"$0\" \"$@\" < \"$MAYFLY_TEST_INPUT\"")
        .arg(bin("mayflyctl"))
        .arg("--socket")
        .arg(d.socket())
        .args(args)
        .env("MAYFLY_TEST_INPUT", &file)
        .current_dir(d.work()))
}

/// Asserts that a run failed with `code` and printed one line on stderr
/// (and nothing on stdout); returns that line.
fn refused(out: &Output, code: i32) -> String {
    let err = stderr_of(out);
    assert_eq!(
        code_of(out),
        code,
        "expected exit {code}; stderr: {err}, stdout: {}",
        stdout_of(out)
    );
    assert_eq!(err.lines().count(), 1, "one line on stderr: {err:?}");
    assert!(err.starts_with("mayflyctl: "), "{err}");
    assert_eq!(stdout_of(out), "", "nothing on stdout when refused");
    err
}

/// The ids of the jobs `mayflyctl --json status ARGS…` lists.
fn status_ids(d: &Daemon, args: &[&str]) -> Vec<u64> {
    let mut full = vec!["--json", "status"];
    full.extend_from_slice(args);
    let out = d.ctl_ok(&full);
    let parsed: Value = serde_json::from_str(&out).expect("status --json prints JSON");
    parsed
        .as_array()
        .expect("an array")
        .iter()
        .filter_map(|j| j["id"].as_u64())
        .collect()
}

/// The queue object named `name` from `queue list --json`, if it exists.
fn queue(d: &Daemon, name: &str) -> Option<Value> {
    let out = d.ctl_ok(&["--json", "queue", "list"]);
    let parsed: Value = serde_json::from_str(&out).expect("queue list --json prints JSON");
    parsed
        .as_array()
        .expect("an array")
        .iter()
        .find(|q| q["name"] == name)
        .cloned()
}

// ------------------------------------------------------------ dependencies

/// `--after` holds a job `waiting` until its prerequisite succeeded; a chain
/// runs in order.
#[test]
fn after_runs_a_chain_in_order() {
    let d = Daemon::start(&["--concurrency", "4"]);
    let a = d.submit_shell(&[], &format!("{}; echo a >> order", until_file("go")));
    let a_arg = a.to_string();
    let b = d.submit_shell(&["--after", &a_arg], "echo b >> order");
    let c = d.submit_shell(&["--after", &b.to_string()], "echo c >> order");
    d.wait_state(a, "running");
    assert_eq!(d.state(b), "waiting");
    assert_eq!(d.state(c), "waiting");
    let job_b = d.job(b);
    assert_eq!(
        job_b["after"],
        serde_json::json!([{"id": a, "any_outcome": false}])
    );
    d.touch("go");
    wait_all_succeeded(&d, &[a, b, c]);
    let order = std::fs::read_to_string(d.file("order")).expect("the order file");
    assert_eq!(
        order.split_whitespace().collect::<Vec<_>>(),
        ["a", "b", "c"]
    );
}

/// A failed prerequisite skips its dependants, and theirs; `--after-any`
/// runs whatever the outcome; `wait` on a skipped job exits 1.
#[test]
fn after_failure_skips_the_chain_but_after_any_runs() {
    let d = Daemon::start(&[]);
    let failing = d.submit_shell(&[], &format!("{}; exit 3", until_file("go")));
    let f = failing.to_string();
    let skipped = d.submit_shell(&["--after", &f], "touch must-not-run-1");
    let transitive = d.submit_shell(&["--after", &skipped.to_string()], "touch must-not-run-2");
    let any = d.submit_shell(&["--after-any", &f], "touch ran-anyway");
    let both = d.submit(&["--after", &format!("{f},{skipped}"), "--", "true"]);
    d.touch("go");
    assert_eq!(wait_code(&d, &[failing]), 3);
    assert_eq!(wait_code(&d, &[skipped]), 1, "a skipped job exits 1");
    assert_eq!(wait_code(&d, &[transitive]), 1);
    assert_eq!(wait_code(&d, &[both]), 1);
    wait_all_succeeded(&d, &[any]);
    for id in [skipped, transitive, both] {
        let job = d.job(id);
        assert_eq!(job["state"], "skipped", "{job}");
        assert_eq!(job["attempts"], 0, "{job}");
    }
    assert!(
        d.job(skipped)["reason"]
            .as_str()
            .is_some_and(|r| r.contains(&f)),
        "the reason names the failed job: {}",
        d.job(skipped)
    );
    assert!(!d.file("must-not-run-1").exists());
    assert!(!d.file("must-not-run-2").exists());
    assert!(d.file("ran-anyway").exists());
    // A dependency on a job that ended badly before the submit is skipped at once.
    let late = d.submit(&["--after", &f, "--", "true"]);
    assert_eq!(d.state(late), "skipped");
}

// ----------------------------------------------------------- time and ends

/// `--delay` keeps a job `waiting` with its `not_before`, then it runs; and
/// `--at` takes an RFC 3339 time.
///
/// What the short delay's job looks like before its time is checked only if
/// the test got to look before its time: a loaded machine may take longer
/// than the delay between the submit and the look. The far `--at` job is
/// always looked at in time.
#[test]
fn delay_keeps_a_job_waiting_then_it_runs() {
    let d = Daemon::start(&[]);
    let id = d.submit(&["--delay", "1500ms", "--", "true"]);
    let job = d.job(id);
    let not_before = job["not_before"]
        .as_str()
        .expect("not_before is set")
        .to_string();
    if still_before(&not_before) {
        assert_eq!(job["state"], "waiting", "{job}");
    }
    assert!(
        job["submitted_at"].as_str().expect("submitted_at") < not_before.as_str(),
        "{job}"
    );
    let table = d.ctl_ok(&["status", &id.to_string()]);
    if still_before(&not_before) {
        assert!(
            table.contains("in 1s") || table.contains("in 2s"),
            "{table}"
        );
    }
    wait_all_succeeded(&d, &[id]);
    let job = d.job(id);
    // Same RFC 3339 format (UTC, milliseconds): text order is time order.
    assert!(
        job["started_at"].as_str().expect("started") >= not_before.as_str(),
        "started before its time: {job}"
    );

    let far = d.submit(&["--at", "2099-01-01T00:00:00Z", "--", "true"]);
    let job = d.job(far);
    assert_eq!(job["state"], "waiting");
    assert_eq!(job["not_before"], "2099-01-01T00:00:00.000Z");
    let out = d.ctl(&["submit", "--at", "25:00", "--", "true"]);
    assert!(
        refused(&out, 2).contains("14:30"),
        "the error teaches the format"
    );
    let out = d.ctl(&["submit", "--delay", "5s", "--at", "10:00", "--", "true"]);
    assert_eq!(code_of(&out), 2, "--delay with --at is a usage error");
}

/// `--timeout` ends a job `timed_out`, with the whole process group gone.
#[test]
fn timeout_ends_a_job_timed_out_and_kills_its_group() {
    let d = Daemon::start(&[]);
    let script = format!(
        "sleep 30 & echo $! > gc.tmp && mv gc.tmp gc; {}; wait",
        write_pid("pid")
    );
    let id = d.submit_shell(&["--timeout", "700ms"], &script);
    let shell = read_pid_file(&d.file("pid"));
    let grandchild = Grandchild(read_pid_file(&d.file("gc")));
    assert_eq!(wait_code(&d, &[id]), 128 + 15, "killed by SIGTERM");
    let job = d.job(id);
    assert_eq!(job["state"], "timed_out", "{job}");
    assert_eq!(job["timeout_ms"], 700);
    assert!(
        job["reason"]
            .as_str()
            .is_some_and(|r| r.contains("timeout")),
        "{job}"
    );
    wait_until(DEADLINE, "the job's shell and its sleep to be gone", || {
        process_gone(shell) && process_gone(grandchild.0)
    });
}

/// `--retries` runs a failing job again after the backoff, until it
/// succeeds; every attempt is in its history.
#[test]
fn retries_run_a_failing_job_until_it_succeeds() {
    let d = Daemon::start(&[]);
    let script = "n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count; \
                  [ $n -ge 3 ] || exit 7";
    let id = d.submit_shell(&["--retries", "4", "--retry-delay", "100ms"], script);
    wait_all_succeeded(&d, &[id]);
    let job = d.job(id);
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["attempts"], 3, "{job}");
    assert_eq!(job["retries"], 4);
    let history = job["history"].as_array().expect("a history");
    assert_eq!(history.len(), 3, "{job}");
    let codes: Vec<&Value> = history.iter().map(|a| &a["exit_code"]).collect();
    assert_eq!(codes, [&Value::from(7), &Value::from(7), &Value::from(0)]);
    assert!(history[0]["finished_at"].as_str() <= history[1]["started_at"].as_str());
    let table = d.ctl_ok(&["status", &id.to_string()]);
    assert!(table.contains("3/5"), "attempts out of allowed: {table}");

    // Without retries left, the job ends failed.
    let failing = d.submit_shell(&["--retries", "1", "--retry-delay", "50ms"], "exit 5");
    assert_eq!(wait_code(&d, &[failing]), 5);
    assert_eq!(d.job(failing)["attempts"], 2);
}

// ------------------------------------------------------------------ queues

/// A queue's own limit holds, can be raised, and a busy queue cannot be removed.
#[test]
fn queues_limit_their_jobs_and_are_removed_only_when_idle() {
    let d = Daemon::start(&["--concurrency", "4"]);
    assert_eq!(d.ctl_ok(&["queue", "add", "gpu", "--concurrency", "1"]), "");
    let again = refused(&d.ctl(&["queue", "add", "gpu"]), 1);
    assert!(again.contains("already exists"), "{again}");
    let script = format!("touch started.$MAYFLY_JOB_ID; {}", until_file("release"));
    let ids: Vec<u64> = (0..3)
        .map(|_| d.submit_shell(&["-q", "gpu"], &script))
        .collect();
    wait_until(DEADLINE, "one gpu job to run", || {
        queue(&d, "gpu").is_some_and(|q| q["counts"]["running"] == 1)
    });
    let gpu = queue(&d, "gpu").expect("the gpu queue");
    assert_eq!(gpu["counts"]["queued"], 2, "{gpu}");
    assert_eq!(gpu["concurrency"], 1);

    d.ctl_ok(&["queue", "set", "gpu", "--concurrency", "2"]);
    wait_until(DEADLINE, "a second gpu job to run", || {
        queue(&d, "gpu").is_some_and(|q| q["counts"]["running"] == 2)
    });
    let table = d.ctl_ok(&["queue", "list"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        [
            "NAME", "LIMIT", "PAUSED", "WAITING", "QUEUED", "RUNNING", "DONE", "EXECUTOR"
        ]
    );
    let row = lines
        .iter()
        .find(|l| l.starts_with("gpu "))
        .expect("a gpu row");
    assert_eq!(
        row.split_whitespace().collect::<Vec<_>>(),
        ["gpu", "2", "no", "0", "1", "2", "0", "local"]
    );

    let busy = refused(&d.ctl(&["queue", "rm", "gpu"]), 1);
    assert!(busy.contains("unfinished"), "{busy}");
    d.touch("release");
    wait_all_succeeded(&d, &ids);
    d.ctl_ok(&["queue", "set", "gpu", "--unlimited"]);
    assert_eq!(queue(&d, "gpu").expect("gpu")["concurrency"], Value::Null);
    d.ctl_ok(&["queue", "rm", "gpu"]);
    assert!(queue(&d, "gpu").is_none(), "gpu was removed");
    let missing = refused(&d.ctl(&["queue", "set", "gpu", "-c", "1"]), 1);
    assert!(missing.contains("queue add"), "{missing}");
    refused(&d.ctl(&["queue", "rm", "default"]), 1);
    refused(&d.ctl(&["queue", "add", "x", "--concurrency", "0"]), 2);
}

/// A paused queue starts nothing (while other queues do); resume starts it.
#[test]
fn pause_stops_starting_and_resume_starts() {
    let d = Daemon::start(&[]);
    let bare = refused(&d.ctl(&["pause"]), 2);
    assert!(bare.contains("--all"), "{bare}");
    d.ctl_ok(&["pause", "default"]);
    assert_eq!(queue(&d, "default").expect("default")["paused"], true);
    let held = d.submit(&["--", "touch", "held-ran"]);
    let other = d.submit(&["-q", "other", "--", "true"]);
    // The other queue's job ran, so the scheduler had its chance.
    wait_all_succeeded(&d, &[other]);
    assert_eq!(d.state(held), "queued");
    assert!(!d.file("held-ran").exists());
    d.ctl_ok(&["resume", "default"]);
    wait_all_succeeded(&d, &[held]);

    // --all pauses (and resumes) every queue that exists.
    d.ctl_ok(&["pause", "--all"]);
    assert_eq!(queue(&d, "other").expect("other")["paused"], true);
    d.ctl_ok(&["resume", "--all"]);
    assert_eq!(queue(&d, "other").expect("other")["paused"], false);
    refused(&d.ctl(&["resume", "nosuchqueue"]), 1);
}

/// `pause --running` freezes running jobs with SIGSTOP; `resume --running`
/// thaws them and they finish.
#[test]
fn pause_running_stops_jobs_and_resume_continues_them() {
    let d = Daemon::start(&[]);
    let id = d.submit_shell(
        &[],
        &format!("{}; {}", write_pid("pid"), until_file("release")),
    );
    let pid = read_pid_file(&d.file("pid"));
    d.ctl_ok(&["pause", "--running", "default"]);
    wait_until(DEADLINE, "the job to be stopped (state T)", || {
        proc_state(pid) == Some('T')
    });
    assert_eq!(
        d.state(id),
        "running",
        "a frozen job still counts as running"
    );
    d.ctl_ok(&["resume", "--running", "default"]);
    wait_until(DEADLINE, "the job to run again", || {
        proc_state(pid).is_some_and(|s| s != 'T')
    });
    d.touch("release");
    wait_all_succeeded(&d, &[id]);
}

// ------------------------------------------------ restart, clean and edit

/// `restart` prints the new id alone; the copy runs the same command.
#[test]
fn restart_prints_a_new_id_that_runs_the_same_command() {
    let d = Daemon::start(&[]);
    let old = d.submit(&[
        "--label",
        "k=v",
        "--shell",
        "--",
        "echo run >> runs; exit 2",
    ]);
    assert_eq!(wait_code(&d, &[old]), 2);
    let printed = d.ctl_ok(&["restart", &old.to_string()]);
    let new: u64 = printed
        .parse()
        .unwrap_or_else(|_| panic!("restart printed {printed:?}, not an id"));
    assert!(new > old);
    assert_eq!(wait_code(&d, &[new]), 2);
    let runs = std::fs::read_to_string(d.file("runs")).expect("the runs file");
    assert_eq!(runs.lines().count(), 2);
    let (a, b) = (d.job(old), d.job(new));
    for field in ["command", "cwd", "queue", "priority", "labels"] {
        assert_eq!(a[field], b[field], "{field}");
    }
    let json: Value =
        serde_json::from_str(&d.ctl_ok(&["--json", "restart", &old.to_string()])).expect("JSON");
    assert_eq!(json[0]["old"], old);
    assert!(json[0]["new"].as_u64().is_some_and(|n| n > new), "{json}");

    let running = d.submit_shell(&[], &until_file("release"));
    let err = refused(&d.ctl(&["restart", &running.to_string()]), 1);
    assert!(err.contains("only finished jobs"), "{err}");
    let err = refused(&d.ctl(&["restart", "999"]), 1);
    assert!(err.contains("no job 999"), "{err}");
    d.touch("release");
    wait_all_succeeded(&d, &[running]);
}

/// `clean` forgets finished jobs and deletes their log files, never
/// unfinished jobs; `--state` narrows it.
#[test]
fn clean_removes_finished_jobs_and_their_logs() {
    let d = Daemon::start(&[]);
    let ok = d.submit_shell(&[], "echo out; echo err >&2");
    let bad = d.submit_shell(&[], "exit 1");
    let busy = d.submit_shell(&[], &until_file("release"));
    wait_all_succeeded(&d, &[ok]);
    assert_eq!(wait_code(&d, &[bad]), 1);
    let logs = d.state_dir().join("logs");
    let out_file = logs.join(format!("{ok}.out"));
    let err_file = logs.join(format!("{ok}.err"));
    assert!(
        out_file.exists(),
        "{} exists before clean",
        out_file.display()
    );

    assert_eq!(
        d.ctl_ok(&["clean", "--state", "succeeded"]),
        "removed 1 job"
    );
    wait_until(DEADLINE, "the job's log files to be deleted", || {
        !out_file.exists() && !err_file.exists()
    });
    let gone = refused(&d.ctl(&["status", &ok.to_string()]), 1);
    assert!(gone.contains(&format!("no job {ok}")), "{gone}");
    assert_eq!(status_ids(&d, &[]), [bad, busy]);

    let json: Value = serde_json::from_str(&d.ctl_ok(&["--json", "clean"])).expect("JSON");
    assert_eq!(json, serde_json::json!({"count": 1, "ids": [bad]}));
    assert_eq!(
        status_ids(&d, &[]),
        [busy],
        "a running job is never cleaned"
    );
    assert_eq!(d.ctl_ok(&["clean", "--older-than", "1h"]), "removed 0 jobs");
    refused(&d.ctl(&["clean", "--state", "running"]), 2);
    d.touch("release");
    wait_all_succeeded(&d, &[busy]);
}

/// `edit` changes a queued job's labels (merged or cleared), priority and
/// queue; moving it out of a paused queue lets it run.
#[test]
fn edit_changes_priority_queue_and_labels_of_a_queued_job() {
    let d = Daemon::start(&[]);
    d.ctl_ok(&["pause", "default"]);
    let id = d.submit(&["--label", "a=1", "--", "touch", "edited-ran"]);
    let arg = id.to_string();
    assert_eq!(d.state(id), "queued");

    let table = d.ctl_ok(&["edit", &arg, "--priority", "7", "--label", "b=2"]);
    assert!(table.starts_with("ID"), "edit prints the job: {table}");
    let job = d.job(id);
    assert_eq!(job["priority"], 7);
    assert_eq!(job["labels"], serde_json::json!({"a": "1", "b": "2"}));
    d.ctl_ok(&["edit", &arg, "--clear-labels", "--label", "c=3"]);
    assert_eq!(d.job(id)["labels"], serde_json::json!({"c": "3"}));
    refused(&d.ctl(&["edit", &arg]), 2);
    refused(&d.ctl(&["edit", &arg, "--priority", "100"]), 2);

    let moved: Value =
        serde_json::from_str(&d.ctl_ok(&["--json", "edit", &arg, "--queue", "fast"]))
            .expect("edit --json prints the job object");
    assert_eq!(moved["queue"], "fast");
    wait_all_succeeded(&d, &[id]);
    assert!(d.file("edited-ran").exists());
    let late = refused(&d.ctl(&["edit", &arg, "--priority", "3"]), 1);
    assert!(late.contains("not started"), "{late}");
    let unknown = refused(&d.ctl(&["edit", "999", "--label", "x=y"]), 1);
    assert!(unknown.contains("no job 999"), "{unknown}");
}

// ---------------------------------------------------------------- listings

/// A listing longer than one `Jobs` frame (the daemon sends at most 1,000
/// jobs a frame) comes back whole and in id order, as JSON and as a table;
/// chosen ids come back in the order they were asked for.
#[test]
fn status_of_thousands_of_jobs_comes_back_whole_and_in_order() {
    let d = Daemon::start(&[]);
    d.ctl_ok(&["pause", "--all"]);
    let out = ctl_with_stdin(&d, &["submit", "--stdin"], &"true\n".repeat(2_500));
    assert!(out.status.success(), "{}", stderr_of(&out));
    let ids: Vec<u64> = stdout_of(&out)
        .lines()
        .map(|l| l.parse().expect("one id per line"))
        .collect();
    assert_eq!(ids.len(), 2_500);

    let all = d.status_json();
    let jobs = all.as_array().expect("an array");
    let listed: Vec<u64> = jobs.iter().filter_map(|j| j["id"].as_u64()).collect();
    assert_eq!(listed, ids);
    assert!(
        jobs.iter()
            .all(|j| j["state"] == "queued" && j["command"] == "true")
    );

    let picked = [ids[2_400], ids[3], ids[1_500]];
    let mut args = vec!["--json".to_string(), "status".to_string()];
    args.extend(picked.iter().map(u64::to_string));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let some: Value = serde_json::from_str(&d.ctl_ok(&args)).expect("JSON");
    let some: Vec<u64> = some
        .as_array()
        .expect("an array")
        .iter()
        .filter_map(|j| j["id"].as_u64())
        .collect();
    assert_eq!(some, picked);

    let table = d.ctl_ok(&["status"]);
    assert_eq!(
        table.lines().count(),
        1 + 2_500,
        "a header and one line a job"
    );
}

// ----------------------------------------------------------- batch submits

/// `submit --stdin` queues one shell job per line (comments and blanks
/// skipped), with every flag applied, and prints one id per line.
#[test]
fn submit_stdin_queues_one_job_per_line() {
    let d = Daemon::start(&[]);
    let input = "echo one > one.txt\n\n# a comment\necho two | tr a-z A-Z > two.txt\n\
                 echo \"$BATCH\" > three.txt\n";
    let out = ctl_with_stdin(
        &d,
        &[
            "submit",
            "--stdin",
            "--label",
            "batch=yes",
            "--env",
            "BATCH=b",
        ],
        input,
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    let ids: Vec<u64> = stdout_of(&out)
        .lines()
        .map(|l| l.parse().expect("one id per line"))
        .collect();
    assert_eq!(ids.len(), 3);
    assert!(ids.windows(2).all(|w| w[1] == w[0] + 1), "{ids:?}");
    wait_all_succeeded(&d, &ids);
    let read = |f: &str| std::fs::read_to_string(d.file(f)).expect("output file");
    assert_eq!(read("one.txt"), "one\n");
    assert_eq!(read("two.txt"), "TWO\n");
    assert_eq!(read("three.txt"), "b\n");
    for id in ids {
        assert_eq!(d.job(id)["labels"]["batch"], "yes");
    }
    let empty = ctl_with_stdin(&d, &["submit", "--stdin"], "# nothing\n");
    refused(&empty, 2);
}

/// A line that is one plain command runs without a shell in between, and
/// nothing a job can see tells the difference: the `PWD` dash would set,
/// the daemon's variables, and sh's "not found" (exit 127) for a command
/// that does not exist.
#[test]
fn plain_stdin_lines_run_as_sh_would_run_them() {
    let d = Daemon::start(&["--concurrency", "2"]);
    let input = "printenv PWD\nprintenv MAYFLY_JOB_ID\nno-such-command-mayfly now\n\
                 cat /proc/self/status\n";
    let out = ctl_with_stdin(&d, &["submit", "--stdin"], input);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let ids: Vec<u64> = stdout_of(&out)
        .lines()
        .map(|l| l.parse().expect("one id per line"))
        .collect();
    assert_eq!(ids.len(), 4);
    assert_eq!(wait_code(&d, &ids), 1, "the missing command fails");
    let logs = |id: u64, stream: &[&str]| {
        let id = id.to_string();
        let mut args = vec!["logs", id.as_str()];
        args.extend(stream);
        stdout_of(&d.ctl(&args))
    };
    // The test's own PWD names another folder, so dash would export the
    // working directory's physical path.
    let work = std::fs::canonicalize(d.work()).expect("the work folder");
    assert_eq!(logs(ids[0], &[]).trim_end(), work.to_string_lossy());
    assert_eq!(logs(ids[1], &[]).trim_end(), ids[1].to_string());
    assert_eq!(d.job(ids[2])["exit_code"], 127, "{}", d.job(ids[2]));
    assert!(
        logs(ids[2], &["--stderr"]).contains("no-such-command-mayfly"),
        "sh reports the missing command on the job's stderr"
    );
    // The plain line's program is the daemon's own child: no sh between.
    let status = logs(ids[3], &[]);
    let ppid = status
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))
        .expect("a PPid line")
        .trim()
        .parse::<u32>()
        .expect("a pid");
    assert_eq!(Some(ppid), d.pid(), "{status}");
}

/// `--json-input`: jobs of one input depend on earlier lines; a forward
/// reference is refused and nothing is queued.
#[test]
fn json_input_jobs_depend_on_earlier_lines() {
    let d = Daemon::start(&["--concurrency", "4"]);
    let input = r#"{"command": "sleep 0.2; echo one > one.txt"}
{"command": ["sh", "-c", "cat one.txt > two.txt"], "after_lines": [1]}
{"command": "exit 4", "labels": {"k": "v"}}
{"command": "touch never", "after_lines": [3]}
{"command": "touch anyway", "after_any_lines": [3], "priority": 9}
"#;
    let out = ctl_with_stdin(&d, &["--json", "submit", "--json-input"], input);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let printed: Value = serde_json::from_str(&stdout_of(&out)).expect("a JSON array");
    let ids: Vec<u64> = printed
        .as_array()
        .expect("an array")
        .iter()
        .map(|e| e["id"].as_u64().expect("an id"))
        .collect();
    assert_eq!(printed[4]["line"], 5);
    assert_eq!(ids.len(), 5);
    assert_eq!(wait_code(&d, &ids), 1, "one failed");
    let states: Vec<String> = ids.iter().map(|id| d.state(*id)).collect();
    assert_eq!(
        states,
        ["succeeded", "succeeded", "failed", "skipped", "succeeded"]
    );
    assert_eq!(
        std::fs::read_to_string(d.file("two.txt")).expect("two.txt"),
        "one\n"
    );
    assert_eq!(
        d.job(ids[1])["after"],
        serde_json::json!([{"id": ids[0], "any_outcome": false}])
    );
    assert_eq!(d.job(ids[2])["labels"], serde_json::json!({"k": "v"}));
    assert_eq!(d.job(ids[4])["priority"], 9);
    assert!(!d.file("never").exists());

    let before = status_ids(&d, &[]).len();
    let forward = "{\"command\": \"true\", \"after_lines\": [2]}\n{\"command\": \"true\"}\n";
    let err = refused(&ctl_with_stdin(&d, &["submit", "--json-input"], forward), 2);
    assert!(err.contains("line 1"), "{err}");
    assert_eq!(status_ids(&d, &[]).len(), before, "nothing was queued");
}

/// A batch larger than one request (over 10,000 lines) still queues every
/// line in order, and a dependency on a line of an earlier request points
/// at that line's job.
#[test]
fn a_batch_larger_than_one_request_is_queued_whole() {
    let d = Daemon::start(&[]);
    let lines = 12_001;
    let mut input = String::new();
    for n in 1..=lines {
        if n == lines {
            input.push_str("{\"command\": \"true\", \"after_lines\": [1, 10001, 12000]}\n");
        } else {
            input.push_str("{\"command\": \"true\"}\n");
        }
    }
    // Not before an hour from now: nothing runs while the test looks.
    let out = ctl_with_stdin(&d, &["submit", "--json-input", "--delay", "1h"], &input);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let ids: Vec<u64> = stdout_of(&out)
        .lines()
        .map(|l| l.parse().expect("one id per line"))
        .collect();
    assert_eq!(ids.len(), lines);
    assert!(
        ids.windows(2).all(|w| w[1] == w[0] + 1),
        "ids in input order"
    );
    let after: Vec<u64> = d.job(ids[lines - 1])["after"]
        .as_array()
        .expect("after")
        .iter()
        .map(|dep| dep["id"].as_u64().expect("an id"))
        .collect();
    assert_eq!(after, vec![ids[0], ids[10_000], ids[11_999]]);
    assert_eq!(status_ids(&d, &[]).len(), lines);
}

// ------------------------------------------------- progress, labels, filters

/// A job reports progress with `mayflyctl progress` (finding its id and the
/// socket in its environment); `status` shows it.
#[test]
fn progress_from_inside_a_job_shows_in_status() {
    let d = Daemon::start(&[]);
    let ctl = bin("mayflyctl");
    let script = format!(
        "'{}' progress half way && touch reported; {}",
        ctl.display(),
        until_file("release")
    );
    let id = d.submit_shell(&[], &script);
    wait_until(DEADLINE, "the job to report progress", || {
        d.file("reported").exists()
    });
    assert_eq!(d.job(id)["progress"], "half way");
    let table = d.ctl_ok(&["status"]);
    assert!(table.lines().next().is_some_and(|h| h.contains("PROGRESS")));
    assert!(table.contains("half way"), "{table}");
    d.ctl_ok(&["progress", "--id", &id.to_string(), "from", "outside"]);
    assert_eq!(d.job(id)["progress"], "from outside");
    d.touch("release");
    wait_all_succeeded(&d, &[id]);
    let late = refused(&d.ctl(&["progress", "--id", &id.to_string(), "x"]), 1);
    assert!(late.contains("already ended"), "{late}");
}

/// Labels are kept, and `status --queue/--state/--label` select jobs, also
/// combined.
#[test]
fn status_filters_by_queue_state_and_label() {
    let d = Daemon::start(&[]);
    let a = d.submit(&["-q", "q1", "-l", "team=ml", "--", "true"]);
    let b = d.submit(&["-q", "q2", "-l", "team=ops", "--", "false"]);
    let c = d.submit(&["-l", "team=ml", "-l", "run=2", "--", "true"]);
    wait_all_succeeded(&d, &[a, c]);
    assert_eq!(wait_code(&d, &[b]), 1);
    assert_eq!(status_ids(&d, &["--queue", "q1"]), [a]);
    assert_eq!(status_ids(&d, &["--state", "failed"]), [b]);
    assert_eq!(status_ids(&d, &["--label", "team=ml"]), [a, c]);
    assert_eq!(status_ids(&d, &["-l", "team=ml", "-l", "run=2"]), [c]);
    assert_eq!(
        status_ids(&d, &["--state", "succeeded,failed", "--queue", "q1,q2"]),
        [a, b]
    );
    assert_eq!(status_ids(&d, &["--state", "running"]), Vec::<u64>::new());
    assert_eq!(
        status_ids(&d, &["--queue", "q2", &c.to_string(), &b.to_string()]),
        [b]
    );
    let table = d.ctl_ok(&["status", "--label", "team=ops"]);
    assert_eq!(table.lines().count(), 2, "header and one row: {table}");
    refused(&d.ctl(&["status", "--state", "bogus"]), 2);
    assert_eq!(
        d.job(c)["labels"],
        serde_json::json!({"team": "ml", "run": "2"})
    );
}

/// Failures are one line on stderr that say what failed, with the contract's
/// exit codes: 1 for the daemon's refusals, 2 for usage errors.
#[test]
fn errors_are_one_line_with_the_contract_exit_codes() {
    let d = Daemon::start(&[]);
    let e = refused(&d.ctl(&["submit", "--after", "999", "--", "true"]), 1);
    assert!(e.contains("no job 999"), "{e}");
    let e = refused(&d.ctl(&["submit", "--delay", "soon", "--", "true"]), 2);
    assert!(e.contains("30s"), "{e}");
    let e = refused(&d.ctl(&["submit", "--timeout", "0s", "--", "true"]), 2);
    assert!(e.contains("timeout"), "{e}");
    let e = refused(&d.ctl(&["submit", "--after", "abc", "--", "true"]), 2);
    assert!(e.contains("not a job id"), "{e}");
    let e = refused(&d.ctl(&["progress", "x"]), 2);
    assert!(e.contains("MAYFLY_JOB_ID"), "{e}");
    let e = refused(&d.ctl(&["progress", "--id", "42", "x"]), 1);
    assert!(e.contains("no job 42"), "{e}");
}

// ------------------------------------------------------- across a crash

/// A job waiting for its `--delay` or `--at` time is still waiting after a
/// `kill -9` and restart, with the same time, and then runs on time.
#[test]
fn waiting_for_a_time_survives_a_crash() {
    let mut d = Daemon::start(&[]);
    let soon = d.submit(&["--delay", "2500ms", "--", "touch", "soon-ran"]);
    let later = d.submit(&["--at", "2099-01-01T00:00:00Z", "--", "true"]);
    let not_before = d.job(soon)["not_before"].clone();
    d.kill_hard();
    d.restart(&[]);
    assert_eq!(d.job(soon)["not_before"], not_before);
    assert_eq!(d.job(later)["state"], "waiting");
    assert_eq!(d.job(later)["not_before"], "2099-01-01T00:00:00.000Z");
    wait_all_succeeded(&d, &[soon]);
    let started = d.job(soon)["started_at"].clone();
    assert!(
        started.as_str() >= not_before.as_str(),
        "{started} before {not_before}"
    );
    assert_eq!(d.state(later), "waiting");
}

/// A dependency chain whose head waits for its time runs in order after a
/// `kill -9` and restart; a dependency that had already succeeded counts.
///
/// That the whole chain is still waiting after the restart is checked if
/// the test got there before the head's time (a loaded machine may not);
/// the order is checked always.
#[test]
fn dependency_chain_survives_a_crash() {
    let mut d = Daemon::start(&[]);
    let done = d.submit_shell(&[], "echo done >> order");
    wait_all_succeeded(&d, &[done]);
    let head = d.submit_shell(
        &["--after", &done.to_string(), "--delay", "2s"],
        "echo head >> order",
    );
    let mid = d.submit_shell(&["--after", &head.to_string()], "echo mid >> order");
    let tail = d.submit_shell(&["--after", &mid.to_string()], "echo tail >> order");
    let head_at = d.job(head)["not_before"]
        .as_str()
        .expect("the head has a not_before")
        .to_string();
    d.kill_hard();
    d.restart(&[]);
    let states: Vec<String> = [head, mid, tail].iter().map(|&id| d.state(id)).collect();
    if still_before(&head_at) {
        assert_eq!(
            states, ["waiting"; 3],
            "jobs {head}, {mid}, {tail} after the restart"
        );
    }
    wait_all_succeeded(&d, &[head, mid, tail]);
    let order = std::fs::read_to_string(d.file("order")).expect("the order file");
    assert_eq!(
        order.split_whitespace().collect::<Vec<_>>(),
        ["done", "head", "mid", "tail"]
    );
}

/// A paused queue is still paused after a `kill -9` and restart: its job
/// stays queued while others run, until `resume`.
#[test]
fn paused_queue_survives_a_crash() {
    let mut d = Daemon::start(&[]);
    d.ctl_ok(&["queue", "add", "slow", "--concurrency", "1"]);
    d.ctl_ok(&["pause", "slow"]);
    let held = d.submit(&["-q", "slow", "--", "touch", "held-ran"]);
    d.kill_hard();
    d.restart(&[]);
    let slow = queue(&d, "slow").expect("the slow queue after the restart");
    assert_eq!(slow["paused"], true, "{slow}");
    assert_eq!(slow["concurrency"], 1, "{slow}");
    let other = d.submit(&["--", "true"]);
    wait_all_succeeded(&d, &[other]);
    assert_eq!(d.state(held), "queued");
    d.ctl_ok(&["resume", "slow"]);
    wait_all_succeeded(&d, &[held]);
    assert!(d.file("held-ran").exists());
}

/// A job waiting to be retried is still waiting for the same time after a
/// `kill -9` and restart, and its next attempt comes no earlier.
///
/// What it looks like just after the restart is checked if the test got
/// there before the retry's time (a loaded machine may not); that the retry
/// came no earlier is checked always.
#[test]
fn retry_in_backoff_survives_a_crash() {
    let mut d = Daemon::start(&[]);
    let script = "n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count; \
                  [ $n -ge 2 ] || exit 9";
    let id = d.submit_shell(&["--retries", "2", "--retry-delay", "2500ms"], script);
    let mut job = Value::Null;
    wait_until(
        DEADLINE,
        "the first attempt to fail and wait for its retry",
        || {
            job = d.job(id);
            job["state"] == "waiting" && job["retry_at"].is_string()
        },
    );
    let retry_at = job["retry_at"].clone();
    // A submit is answered once its record is on disk, and the log is
    // written in order: the first attempt's end is durable too.
    d.submit(&["--", "true"]);
    d.kill_hard();
    d.restart(&[]);
    let after = d.job(id);
    if still_before(retry_at.as_str().expect("retry_at is a time")) {
        assert_eq!(after["state"], "waiting", "{after}");
        assert_eq!(after["retry_at"], retry_at, "{after}");
        assert_eq!(after["attempts"], 1, "{after}");
    }
    wait_all_succeeded(&d, &[id]);
    let job = d.job(id);
    assert_eq!(job["attempts"], 2, "{job}");
    let history = job["history"].as_array().expect("a history");
    assert_eq!(history.len(), 2, "{job}");
    assert_eq!(history[0]["exit_code"], 9);
    assert!(
        history[1]["started_at"].as_str() >= retry_at.as_str(),
        "retried before its time: {job}"
    );
}

// ------------------------------------------------------------ output caps

/// `submit --max-output` keeps the first SIZE bytes of each stream and
/// notes the cut at the end; the daemon's `--max-output` caps jobs that set
/// none; a job's own cap wins; output under the cap is untouched; the job's
/// exit status is its own. (Before, output had no bound at all.)
#[test]
fn max_output_keeps_the_first_bytes_and_notes_the_cut() {
    let d = Daemon::start(&["--max-output", "100"]);
    let noisy =
        "head -c 5000 /dev/zero | tr '\\0' a; head -c 3000 /dev/zero | tr '\\0' b >&2; exit 3";
    let capped = d.submit_shell(&["--max-output", "1K"], noisy);
    let by_default = d.submit_shell(&[], "head -c 300 /dev/zero | tr '\\0' c");
    let own_cap = d.submit_shell(
        &["--max-output", "1M"],
        "head -c 300 /dev/zero | tr '\\0' d",
    );
    let small = d.submit_shell(&[], "echo short");
    assert_eq!(code_of(&d.ctl(&["wait", &capped.to_string()])), 3);
    wait_all_succeeded(&d, &[by_default, own_cap, small]);

    let out = d.ctl_ok(&["logs", &capped.to_string()]);
    let (kept, note) = out.split_at(1024);
    assert_eq!(kept, "a".repeat(1024));
    assert_eq!(
        note.trim(),
        "[mayfly: output cut at 1K (--max-output); 3976 more bytes were dropped]"
    );
    let err = d.ctl_ok(&["logs", "--stderr", &capped.to_string()]);
    assert!(err.starts_with(&"b".repeat(1024)), "{err}");
    assert!(err.contains("1976 more bytes were dropped"), "{err}");
    let out = d.ctl_ok(&["logs", &by_default.to_string()]);
    assert!(out.starts_with(&"c".repeat(100)), "{out}");
    assert!(out.contains("output cut at 100"), "{out}");
    assert_eq!(d.ctl_ok(&["logs", &own_cap.to_string()]), "d".repeat(300));
    assert_eq!(d.ctl_ok(&["logs", &small.to_string()]), "short");

    // Through --json-input too, and a bad size is a usage error.
    let json = r#"{"command": "head -c 50 /dev/zero | tr '\\0' e", "max_output": "10"}"#;
    let out = ctl_with_stdin(&d, &["submit", "--json-input"], json);
    assert_eq!(code_of(&out), 0, "{}", stderr_of(&out));
    let id: u64 = stdout_of(&out).trim().parse().expect("an id");
    wait_all_succeeded(&d, &[id]);
    assert!(
        d.ctl_ok(&["logs", &id.to_string()])
            .starts_with("eeeeeeeeee\n[mayfly")
    );
    let out = d.ctl(&["submit", "--max-output", "lots", "--", "true"]);
    assert_eq!(code_of(&out), 2, "a bad size is a usage error");
    let err = stderr_of(&out);
    assert!(err.contains("--max-output") && err.contains("10M"), "{err}");
}

/// The daemon holds at most `--max-jobs` jobs and takes none bigger than
/// `--max-job-bytes`; each refusal says which limit and what to do.
#[test]
fn job_limits_refuse_with_what_to_do() {
    let d = Daemon::start(&["--max-jobs", "2", "--max-job-bytes", "8K"]);
    let first = d.submit(&["--", "true"]);
    let second = d.submit(&["--", "true"]);
    wait_all_succeeded(&d, &[first, second]);
    let err = refused(&d.ctl(&["submit", "--", "true"]), 1);
    assert!(
        err.contains("--max-jobs") && err.contains("mayflyctl clean"),
        "{err}"
    );
    d.ctl_ok(&["clean"]);
    let third = d.submit(&["--", "true"]);
    wait_all_succeeded(&d, &[third]);

    let big = format!("BIG={}", "x".repeat(10_000));
    let err = refused(&d.ctl(&["submit", "--env", &big, "--", "true"]), 1);
    assert!(err.contains("--max-job-bytes"), "{err}");
}

// ---------------------------------------------------------------- executors

/// Each queue names what runs its jobs: `local` unless set, shown by `queue
/// list` and `dump-state`. An executor this daemon does not have (`a2a`
/// in a build without that feature; `slurm` has its own tests, in
/// `slurm.rs`, and `a2a` in `a2a.rs`) is refused with what to use instead,
/// and a setting of another kind is a usage error.
#[test]
fn a_queue_shows_its_executor_and_an_unknown_one_is_refused() {
    let d = Daemon::start(&[]);
    d.ctl_ok(&["queue", "add", "build", "--executor", "local", "-c", "2"]);
    let queues: Value =
        serde_json::from_str(&d.ctl_ok(&["--json", "queue", "list"])).expect("queue list --json");
    let build = queues
        .as_array()
        .and_then(|qs| qs.iter().find(|q| q["name"] == "build"))
        .expect("the build queue");
    assert_eq!(build["executor"]["kind"], "local", "{build}");
    let dump: Value = serde_json::from_str(&d.ctl_ok(&["dump-state"])).expect("dump-state");
    let queues = dump["queues"].as_array().expect("queues");
    assert!(
        queues.iter().all(|q| q["executor"]["kind"] == "local"),
        "{queues:?}"
    );
    let add_agents = d.ctl(&[
        "queue",
        "add",
        "agents",
        "--executor",
        "a2a",
        "--a2a-url",
        "http://127.0.0.1:1/",
    ]);
    if cfg!(feature = "a2a") {
        // This build has it: the queue is made, and shows its executor.
        assert!(add_agents.status.success(), "{add_agents:?}");
        let queues: Value = serde_json::from_str(&d.ctl_ok(&["--json", "queue", "list"]))
            .expect("queue list --json");
        let agents = queues
            .as_array()
            .and_then(|qs| qs.iter().find(|q| q["name"] == "agents"))
            .expect("the agents queue");
        assert_eq!(agents["executor"]["kind"], "a2a", "{agents}");
    } else {
        let err = refused(&add_agents, 1);
        assert!(
            err.contains("no a2a executor") && err.contains("--executor local"),
            "{err}"
        );
    }
    let err = refused(
        &d.ctl(&["queue", "set", "build", "-c", "3", "--a2a-url", "http://x/"]),
        2,
    );
    assert!(err.contains("--executor a2a"), "{err}");
}
