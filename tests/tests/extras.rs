//! End to end, what the other local queues do not have: what each job
//! used (CPU, peak memory), finish callbacks, and priority preemption —
//! each driven through the real `mayflyctl` against the real `mayflyd`,
//! with real processes, and across a `kill -9` of the daemon.

use serde_json::Value;

use crate::helper::http::get;
use crate::helper::{Daemon, stdout_of};

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

    // The figures are in the log with the exit: a crash keeps them.
    d.kill_hard();
    d.restart(&[]);
    let again = d.job(id);
    assert_eq!(number(&again, "cpu_user_ms"), user);
    assert_eq!(number(&again, "max_rss_kib"), rss);
    assert!(stdout_of(&d.ctl(&["status", "-u"])).contains("MAXRSS"));
}
