//! End to end, what the other local queues do not have: what each job
//! used (CPU, peak memory), finish callbacks, and priority preemption —
//! each driven through the real `mayflyctl` against the real `mayflyd`,
//! with real processes, and across a `kill -9` of the daemon.

use serde_json::Value;

use crate::helper::http::get;
use crate::helper::{
    DEADLINE, Daemon, proc_state, process_gone, read_pid_file, stdout_of, until_file, wait_until,
    write_pid,
};

/// A job that burns CPU (an awk loop) and holds 60 MiB (`tail -c` keeps
/// the last N bytes of a pipe in memory) before it exits 0.
const HUNGRY: &str = "awk 'BEGIN { for (i = 0; i < 30000000; i++) s += i; print s }' >/dev/null; \
                      head -c 62914560 /dev/zero | tail -c 62914560 >/dev/null";

/// The number of a JSON field, failing the test with the object if it is
/// not one.
fn number(job: &Value, field: &str) -> u64 {
    job[field]
        .as_u64()
        .unwrap_or_else(|| panic!("{field} is not a number: {job:#}"))
}

/// A finished job's CPU time and peak memory are in `status --json`, in
/// the `--usage` table, in its `JobFinished` event and in the per-queue
/// histograms; they come back the same after a crash of the daemon.
#[test]
fn a_job_reports_the_cpu_and_memory_it_used() {
    let (mut d, addr) = Daemon::start_with_http(&[]);
    let id = d.submit_shell(&[], HUNGRY);
    let plain = d.submit(&["--", "true"]);
    d.wait_state(id, "succeeded");
    d.wait_state(plain, "succeeded");

    let job = d.job(id);
    let user = number(&job, "cpu_user_ms");
    assert!(user >= 250, "an awk loop of 30 million steps: {job:#}");
    assert!(number(&job, "cpu_sys_ms") < 60_000, "{job:#}");
    let rss = number(&job, "max_rss_kib");
    assert!(rss >= 50_000, "tail held 60 MiB: {job:#}");
    assert_eq!(job["preempted"], false);
    let small = d.job(plain);
    assert!(number(&small, "max_rss_kib") < 50_000, "{small:#}");

    let state: Value = serde_json::from_str(&d.ctl_ok(&["dump-state"])).expect("JSON");
    let dumped = state["tasks"]
        .as_array()
        .and_then(|tasks| tasks.iter().find(|t| t["kind"] == "job" && t["id"] == id))
        .unwrap_or_else(|| panic!("no job {id} in dump-state: {state:#}"));
    assert_eq!(number(dumped, "cpu_user_ms"), user, "{dumped:#}");
    assert_eq!(number(dumped, "max_rss_kib"), rss, "{dumped:#}");

    let table = d.ctl_ok(&["status", "--usage", &id.to_string()]);
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert!(header.windows(2).any(|w| w == ["CPU", "MAXRSS"]), "{table}");
    assert!(table.contains('M'), "60 MiB shows in MiB: {table}");

    let events = d.ctl_ok(&["events", "--json"]);
    let finished: Value = events
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|e| e["event"] == "JobFinished" && e["id"] == id)
        .unwrap_or_else(|| panic!("no JobFinished for job {id}:\n{events}"));
    assert_eq!(number(&finished, "cpu_user_ms"), user, "{finished:#}");
    assert_eq!(number(&finished, "max_rss_kib"), rss, "{finished:#}");

    let metrics = get(&format!("http://{addr}/metrics")).expect("a scrape");
    let count = metrics
        .body
        .lines()
        .find(|l| l.starts_with("mayfly_job_max_rss_bytes_count{queue=\"default\"}"))
        .unwrap_or_else(|| panic!("no max RSS histogram:\n{}", metrics.body));
    assert!(count.ends_with(" 2"), "two jobs measured: {count}");
    assert!(
        metrics
            .body
            .contains("mayfly_job_cpu_seconds_sum{queue=\"default\"}")
    );

    // The figures are in the log with the exit: a crash keeps them. (The
    // exit is the daemon's own record, fsynced within --wal-flush-interval;
    // `wait` answers once it is durable.)
    d.ctl_ok(&["wait", &id.to_string()]);
    d.kill_hard();
    d.restart(&[]);
    let again = d.job(id);
    assert_eq!(number(&again, "cpu_user_ms"), user);
    assert_eq!(number(&again, "max_rss_kib"), rss);
    assert!(stdout_of(&d.ctl(&["status", "-u"])).contains("MAXRSS"));
}

/// The `CallbackFinished` events of job `id` so far, from `events --json`.
fn callback_events(d: &Daemon, id: u64) -> Vec<Value> {
    d.ctl_ok(&["events", "--json"])
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|e| e["event"] == "CallbackFinished" && e["id"] == id)
        .collect()
}

/// The `KEY=VALUE` lines of an `env` dump, as a map.
fn env_file(path: &std::path::Path) -> std::collections::BTreeMap<String, String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A job's own `--on-finish` runs when it ends, in its directory and
/// environment, with the facts of its end; the daemon's `--on-finish` runs
/// for jobs that set none; a retried job's callback runs once, after its
/// last attempt.
#[test]
fn a_finish_callback_runs_with_the_facts_of_the_jobs_end() {
    let d = Daemon::start(&["--on-finish", "env > daemon-$MAYFLY_JOB_ID.env"]);
    let own = d.submit(&[
        "--env",
        "MINE=kept",
        "--retries",
        "1",
        "--retry-delay",
        "10ms",
        "--on-finish",
        "env > own.env; echo run >> own.count",
        "--shell",
        "--",
        "echo out; exit 3",
    ]);
    let plain = d.submit(&["--", "true"]);
    let facts = d.file("own.env");
    wait_until(DEADLINE, "the job's own callback", || {
        env_file(&facts).contains_key("MAYFLY_DURATION_MS")
    });
    let env = env_file(&facts);
    assert_eq!(d.state(own), "failed");
    assert_eq!(env["MAYFLY_JOB_ID"], own.to_string());
    assert_eq!(env["MAYFLY_JOB_STATE"], "failed");
    assert_eq!(env["MAYFLY_EXIT_CODE"], "3");
    assert_eq!(env["MAYFLY_SIGNAL"], "");
    assert_eq!(env["MAYFLY_QUEUE"], "default");
    assert_eq!(env["MINE"], "kept", "the job's environment");
    assert_eq!(
        std::fs::read_to_string(&env["MAYFLY_JOB_STDOUT"]).expect("the stdout log"),
        "out\nout\n",
        "both attempts' output"
    );
    assert!(env["MAYFLY_JOB_STDERR"].ends_with(&format!("{own}.err")));
    assert!(env["MAYFLY_DURATION_MS"].parse::<u64>().is_ok(), "{env:?}");
    assert_eq!(env["MAYFLY_SOCKET"], d.socket().display().to_string());
    assert!(
        !d.file(&format!("daemon-{own}.env")).exists(),
        "the job's own wins"
    );
    wait_until(DEADLINE, "the daemon's callback", || {
        env_file(&d.file(&format!("daemon-{plain}.env"))).contains_key("MAYFLY_DURATION_MS")
    });
    let env = env_file(&d.file(&format!("daemon-{plain}.env")));
    assert_eq!(env["MAYFLY_JOB_STATE"], "succeeded");
    assert_eq!(env["MAYFLY_EXIT_CODE"], "0");
    wait_until(DEADLINE, "the callback's event", || {
        callback_events(&d, own).len() == 1
    });
    let event = &callback_events(&d, own)[0];
    assert_eq!(event["result"], "ok", "{event}");
    assert_eq!(
        std::fs::read_to_string(d.file("own.count")).unwrap_or_default(),
        "run\n",
        "one callback for two attempts"
    );
}

/// A callback that fails or hangs is reported (event, metric) and never
/// changes its job; one that hangs is killed at `--on-finish-timeout`.
#[test]
fn a_failing_or_hanging_callback_leaves_its_job_alone() {
    let (d, addr) = Daemon::start_with_http(&["--on-finish-timeout", "300ms"]);
    let failing = d.submit(&[
        "--on-finish",
        "echo cannot notify >&2; exit 4",
        "--",
        "true",
    ]);
    let hanging = d.submit(&[
        "--on-finish",
        "echo $$ > hang.pid; exec sleep 30",
        "--",
        "true",
    ]);
    wait_until(DEADLINE, "both callbacks to be reported", || {
        callback_events(&d, failing).len() == 1 && callback_events(&d, hanging).len() == 1
    });
    let failed = &callback_events(&d, failing)[0];
    assert_eq!(failed["result"], "failed", "{failed}");
    assert_eq!(failed["exit_code"], 4, "{failed}");
    assert_eq!(failed["error"], "exited 4: cannot notify", "{failed}");
    let hung = &callback_events(&d, hanging)[0];
    assert_eq!(hung["result"], "timed_out", "{hung}");
    assert!(number(hung, "ran_ms") < 10_000, "{hung}");
    let pid = std::fs::read_to_string(d.file("hang.pid")).expect("the hanging callback's pid");
    assert!(
        !std::path::Path::new(&format!("/proc/{}", pid.trim())).exists(),
        "the hanging callback was killed"
    );
    assert_eq!(d.state(failing), "succeeded");
    assert_eq!(d.state(hanging), "succeeded");
    let metrics = get(&format!("http://{addr}/metrics"))
        .expect("a scrape")
        .body;
    for (result, count) in [("failed", 1), ("timed_out", 1), ("ok", 0)] {
        let series = format!("mayfly_callbacks_total{{result=\"{result}\"}} {count}");
        assert!(
            metrics.lines().any(|l| l == series),
            "no {series}:\n{metrics}"
        );
    }
}

/// A callback owed when the daemon crashed runs after the restart (at least
/// once: here it had started, so it runs twice), and once it ran it is not
/// run again.
#[test]
fn a_callback_owed_at_a_crash_runs_after_the_restart() {
    let mut d = Daemon::start(&[]);
    let hold = until_file("release");
    let line = format!("echo called >> calls; {hold}");
    let id = d.submit(&["--on-finish", &line, "--", "true"]);
    let file = d.file("calls");
    let calls = || {
        std::fs::read_to_string(&file)
            .unwrap_or_default()
            .lines()
            .count()
    };
    wait_until(DEADLINE, "the callback to start", || calls() == 1);
    d.kill_hard();
    d.restart(&[]);
    wait_until(DEADLINE, "the callback to run again", || calls() == 2);
    d.touch("release");
    wait_until(DEADLINE, "the callback to end", || {
        callback_events(&d, id).len() == 1
    });
    assert_eq!(callback_events(&d, id)[0]["result"], "ok");

    // Done is logged: a restart does not run it a third time (the next
    // job's callback starts after any owed at start-up).
    assert!(d.stop().success());
    d.restart(&[]);
    let next = d.submit(&["--on-finish", "echo next >> calls", "--", "true"]);
    wait_until(DEADLINE, "the next job's callback", || {
        callback_events(&d, next).len() == 1
    });
    assert_eq!(
        std::fs::read_to_string(d.file("calls")).unwrap_or_default(),
        "called\ncalled\nnext\n"
    );
}

/// A graceful shutdown runs the callbacks of the jobs it interrupts before
/// the daemon exits, and logs them done: the restart runs none again.
#[test]
fn a_shutdown_runs_the_callbacks_of_the_jobs_it_interrupts() {
    let args = ["--on-finish", "echo $MAYFLY_JOB_STATE >> states"];
    let mut d = Daemon::start(&args);
    let id = d.submit_shell(&[], &until_file("release"));
    d.wait_state(id, "running");
    assert!(d.stop().success());
    assert_eq!(
        std::fs::read_to_string(d.file("states")).unwrap_or_default(),
        "interrupted\n",
        "the callback ran before the daemon exited"
    );
    d.restart(&args);
    let next = d.submit(&["--", "true"]);
    d.wait_state(next, "succeeded");
    wait_until(DEADLINE, "the next job's callback", || {
        callback_events(&d, next).len() == 1
    });
    assert_eq!(
        std::fs::read_to_string(d.file("states")).unwrap_or_default(),
        "interrupted\nsucceeded\n"
    );
    d.touch("release");
}

/// The job objects of `events --json` named `event` for job `id`.
fn events_of(d: &Daemon, event: &str, id: u64) -> Vec<Value> {
    d.ctl_ok(&["events", "--json"])
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|e| e["event"] == event && e["id"] == id)
        .collect()
}

/// Starts a daemon running one job at a time, a `--preemptible` job at
/// priority 90 in it, and then an urgent one at priority 10, which freezes
/// it. Returns the daemon, both ids and the preemptible job's pid.
fn frozen_by_urgent() -> (Daemon, u64, u64, u32) {
    let d = Daemon::start(&["--concurrency", "1"]);
    // It ignores SIGHUP, which the kernel sends a stopped process group
    // whose parent dies: the crash test then sees the daemon's recovery,
    // not the kernel, end it.
    let script = format!(
        "trap '' HUP; {}; {}",
        write_pid("low.pid"),
        until_file("low-done")
    );
    let low = d.submit_shell(&["--preemptible", "--priority", "90"], &script);
    let pid = read_pid_file(&d.file("low.pid"));
    d.wait_state(low, "running");
    let urgent = d.submit_shell(&["--priority", "10"], &until_file("urgent-done"));
    d.wait_state(urgent, "running");
    wait_until(DEADLINE, "the preemptible job to be stopped", || {
        proc_state(pid) == Some('T')
    });
    (d, low, urgent, pid)
}

/// With one slot, an urgent job freezes the running preemptible one
/// (SIGSTOP: its processes are `T`), which shows as preempted, and runs
/// again (SIGCONT) once the urgent job is done.
#[test]
fn an_urgent_job_freezes_a_preemptible_one_until_it_is_done() {
    let (d, low, urgent, pid) = frozen_by_urgent();
    let job = d.job(low);
    assert_eq!(job["state"], "running", "{job:#}");
    assert_eq!(job["preempted"], true, "{job:#}");
    assert_eq!(d.job(urgent)["preempted"], false);
    let table = d.ctl_ok(&["status", &low.to_string()]);
    assert!(table.contains("running (preempted)"), "{table}");
    let frozen = events_of(&d, "JobFrozen", low);
    assert_eq!(frozen.len(), 1);
    assert_eq!(frozen[0]["by"], urgent);

    d.touch("urgent-done");
    d.wait_state(urgent, "succeeded");
    wait_until(DEADLINE, "the preemptible job to run again", || {
        d.job(low)["preempted"] == false && matches!(proc_state(pid), Some('S' | 'R'))
    });
    assert_eq!(events_of(&d, "JobThawed", low).len(), 1);
    d.touch("low-done");
    d.wait_state(low, "succeeded");
    assert_eq!(d.job(low)["attempts"], 1);
}

/// A job not marked preemptible keeps its slot: the urgent one waits.
#[test]
fn a_job_not_marked_preemptible_is_never_frozen() {
    let d = Daemon::start(&["--concurrency", "1"]);
    let script = format!("{}; {}", write_pid("low.pid"), until_file("low-done"));
    let low = d.submit_shell(&["--priority", "90"], &script);
    let pid = read_pid_file(&d.file("low.pid"));
    let urgent = d.submit(&["--priority", "10", "--", "true"]);
    // The urgent job is refused a slot as long as the low one runs; once it
    // ends, the urgent one runs.
    assert_eq!(d.state(urgent), "queued");
    assert!(matches!(proc_state(pid), Some('S' | 'R')));
    d.touch("low-done");
    d.wait_state(urgent, "succeeded");
    assert!(events_of(&d, "JobFrozen", low).is_empty());
}

/// A crash while a job is frozen: after the restart it ends `interrupted`
/// and its processes are gone (killed with their group by the recovery).
#[test]
fn a_crash_while_frozen_interrupts_the_job_and_kills_its_processes() {
    let (mut d, low, urgent, pid) = frozen_by_urgent();
    // Whether the freeze was durable yet does not matter: either way the
    // log shows the job running, and recovery interrupts it.
    d.kill_hard();
    // Orphaned, the group got SIGHUP (ignored) and SIGCONT from the kernel.
    wait_until(DEADLINE, "the orphaned job to be running", || {
        matches!(proc_state(pid), Some('S' | 'R'))
    });
    d.restart(&[]);
    d.wait_state(low, "interrupted");
    d.wait_state(urgent, "interrupted");
    wait_until(DEADLINE, "the frozen job's processes to be killed", || {
        process_gone(pid)
    });
    assert_eq!(d.job(low)["preempted"], false);
}
