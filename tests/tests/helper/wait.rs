//! Bounded waiting: the one place in the end-to-end tests that sleeps.
//!
//! Every wait in these tests has a deadline and names what it waited for, so
//! a broken daemon fails a test with a message instead of hanging the suite.
//! Tests never sleep and hope; they poll a condition through [`wait_until`].

use std::time::{Duration, Instant};

/// How long one wait may take before the test fails. Generous, because the
/// suite runs many daemons in parallel on a small machine.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// How often a condition is polled.
const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// Polls `cond` until it holds or `timeout` passes; returns whether it held.
/// For callers that must clean up (kill a child) before failing.
pub fn poll_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// Polls `cond` until it holds; panics naming `what` if `timeout` passes first.
pub fn wait_until(timeout: Duration, what: &str, cond: impl FnMut() -> bool) {
    assert!(
        poll_until(timeout, cond),
        "timed out after {timeout:?} waiting for {what}"
    );
}

/// True while the time `at` (as the daemon's JSON writes times: RFC 3339,
/// UTC, milliseconds, whose text order is time order) is still to come.
///
/// For tests that look at a job waiting for its time on a machine that may
/// be too slow to look before the time comes: read the job first, then ask
/// this; when it is true, the job was looked at before its time, and must
/// still have been waiting. Nothing here waits.
pub fn still_before(at: &str) -> bool {
    mayfly_protocol::json::rfc3339(mayfly_protocol::Timestamp::now()).as_str() < at
}

/// True when process `pid` no longer runs: `/proc/PID` is gone, or the
/// process is a zombie (dead, not yet reaped by whoever inherited it).
pub fn process_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // The state letter follows the command name, which is in parentheses
        // and may itself contain spaces or parentheses.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

/// Waits until a job has written its pid into `path` (written to a temporary
/// name and renamed, so it is never read half-written) and returns the pid.
pub fn read_pid_file(path: &std::path::Path) -> u32 {
    let mut pid = None;
    wait_until(DEADLINE, &format!("pid file {}", path.display()), || {
        pid = std::fs::read_to_string(path)
            .ok()
            .and_then(|s| s.trim().parse().ok());
        pid.is_some()
    });
    pid.unwrap_or_default()
}

/// A shell snippet that loops until the file `name` exists (in the job's
/// working directory), for at most 30 s, so a job never outlives a failed test
/// by long.
pub fn until_file(name: &str) -> String {
    format!("i=0; while [ ! -e {name} ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done")
}

/// The one-letter state of process `pid` from `/proc/PID/stat` (`T` when
/// stopped), or `None` when it is gone.
pub fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// A shell snippet that writes the shell's pid (which is also the job's
/// process group id) to the file `name` atomically.
pub fn write_pid(name: &str) -> String {
    format!("echo $$ > {name}.tmp && mv {name}.tmp {name}")
}

/// Sleeps for `delay`: the one deliberate sleep outside [`poll_until`]. The
/// crash tests kill the daemon at a random moment while clients submit, and
/// a random moment is, by definition, not a condition anything can poll for.
pub fn sleep_before_random_crash(delay: Duration) {
    std::thread::sleep(delay);
}
