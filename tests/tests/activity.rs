//! The activity log and the state snapshots, end to end: `mayflyctl events`
//! (recent and `--follow`), system tasks in `dump-state`, `mayflyd
//! --dump-state` on shutdown, and SIGUSR1.

use nix::sys::signal::Signal;
use serde_json::Value;

use crate::helper::{DEADLINE, Daemon, code_of, stdout_of, wait_until};

/// Parses one JSON object per line.
fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// The position of the first event matching `pred`, or a panic naming `what`.
fn position(events: &[Value], what: &str, pred: impl Fn(&Value) -> bool) -> usize {
    events
        .iter()
        .position(pred)
        .unwrap_or_else(|| panic!("no {what} among {events:#?}"))
}

#[test]
fn events_follow_sees_boot_jobs_system_tasks_and_shutdown_in_order() {
    let mut d = Daemon::start(&[]);
    let follower = d.ctl_spawn(&["events", "--follow", "--json"]);
    let id = d.submit(&["--", "sh", "-c", "exit 4"]);
    assert_eq!(code_of(&d.ctl(&["wait", &id.to_string()])), 4);
    d.ctl_ok(&["shutdown"]);
    assert_eq!(d.wait_exit(DEADLINE).code(), Some(0));

    // The follower ends by itself when the daemon has gone.
    let out = follower.finish(DEADLINE);
    assert!(out.status.success(), "{out:?}");
    let events = json_lines(&stdout_of(&out));

    let is = |name: &'static str| move |e: &Value| e["event"] == name;
    let for_job = |name: &'static str| move |e: &Value| e["event"] == name && e["id"] == id;
    let boot = position(&events, "SchedulerBoot", is("SchedulerBoot"));
    let sys_start = position(&events, "SystemTaskStart of the WAL flusher", |e| {
        e["event"] == "SystemTaskStart" && e["name"] == "looptask_wal_flush" && e["priority"] == 0
    });
    let submitted = position(&events, "JobSubmitted", for_job("JobSubmitted"));
    let started = position(&events, "JobStarted", for_job("JobStarted"));
    let finished = position(&events, "JobFinished", for_job("JobFinished"));
    let begin = position(&events, "ShutdownBegin", is("ShutdownBegin"));
    let sys_exit = position(&events, "SystemTaskExit of the WAL flusher", |e| {
        e["event"] == "SystemTaskExit" && e["name"] == "looptask_wal_flush" && e["ok"] == true
    });
    let complete = position(&events, "ShutdownComplete", is("ShutdownComplete"));
    assert!(boot < sys_start && sys_start < begin, "{events:#?}");
    assert!(
        boot < submitted && submitted < started && started < finished,
        "{events:#?}"
    );
    assert!(
        finished < begin && begin < sys_exit && sys_exit < complete,
        "{events:#?}"
    );
    assert_eq!(
        complete,
        events.len() - 1,
        "ShutdownComplete is the last word"
    );

    // The fields explain each event.
    let fin = &events[finished];
    assert_eq!(
        (fin["state"].as_str(), fin["exit_code"].as_i64()),
        (Some("failed"), Some(4))
    );
    assert!(fin["ran_ms"].is_u64(), "{fin}");
    assert!(events[started]["pid"].is_u64(), "{}", events[started]);
    assert_eq!(
        events[begin]["reason"],
        "requested by a client (mayflyctl shutdown)"
    );
    for e in &events {
        assert!(e["at"].as_str().is_some_and(|t| t.ends_with('Z')), "{e}");
    }
    let seqs: Vec<u64> = events
        .iter()
        .map(|e| e["seq"].as_u64().expect("seq"))
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "sequence grows: {seqs:?}"
    );
}

#[test]
fn events_without_follow_prints_the_recent_ones_and_exits() {
    let d = Daemon::start(&[]);
    let text = d.ctl_ok(&["events"]);
    let first = text.lines().next().expect("at least one event");
    assert!(first.contains("  SchedulerBoot "), "{text}");
    assert!(first.contains("recovered_jobs=0"), "{text}");
    assert!(
        text.contains("SystemTaskStart name=looptask_wal_flush priority=0"),
        "{text}"
    );
}

#[test]
fn dump_state_lists_the_wal_flusher_at_priority_0() {
    let d = Daemon::start(&[]);
    let out = d.ctl_ok(&["dump-state"]);
    let state: Value = serde_json::from_str(&out).expect("JSON");
    let flusher = state["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .find(|t| t["kind"] == "system" && t["name"] == "looptask_wal_flush")
        .unwrap_or_else(|| panic!("no WAL flusher in {state:#}"));
    assert_eq!(flusher["priority"], 0);
    assert_eq!(flusher["state"], "running");
}

#[test]
fn sigusr1_logs_a_snapshot_and_dump_state_flag_prints_one_on_shutdown() {
    let mut d = Daemon::start(&["--dump-state"]);
    let id = d.submit(&["--", "true"]);
    d.ctl_ok(&["wait", &id.to_string()]);

    d.signal(Signal::SIGUSR1);
    wait_until(DEADLINE, "the SIGUSR1 snapshot in the log", || {
        d.log_text().contains("state snapshot (SIGUSR1)")
    });
    // Still serving after SIGUSR1.
    d.ctl_ok(&["status"]);
    assert!(
        d.stdout_text().is_empty(),
        "nothing on stdout before shutdown"
    );

    d.signal(Signal::SIGTERM);
    assert_eq!(d.wait_exit(DEADLINE).code(), Some(0));
    let stdout = d.stdout_text();
    let state: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("--dump-state printed no JSON ({e}): {stdout}"));
    let tasks = state["tasks"].as_array().expect("tasks");
    assert!(
        tasks
            .iter()
            .any(|t| t["kind"] == "job" && t["id"] == id && t["state"] == "succeeded"),
        "{state:#}"
    );
    assert!(
        tasks
            .iter()
            .any(|t| t["kind"] == "system" && t["name"] == "looptask_wal_flush"),
        "{state:#}"
    );
    assert_eq!(state["scheduler"]["shutting_down"], true);
    assert!(state["queues"].as_array().is_some_and(|q| !q.is_empty()));
}

#[test]
fn sd_notify_gets_ready_then_stopping() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("notify.sock");
    let notify = std::os::unix::net::UnixDatagram::bind(&path).expect("bind the notify socket");
    notify
        .set_read_timeout(Some(DEADLINE))
        .expect("read timeout");
    let mut d = Daemon::start_with_env(&[], &[("NOTIFY_SOCKET", path.as_os_str())]);
    let mut buf = [0u8; 256];
    let n = notify.recv(&mut buf).expect("READY=1 within the deadline");
    assert_eq!(&buf[..n], b"READY=1");
    // Ready means serving: the socket answers now.
    d.ctl_ok(&["status"]);
    d.signal(Signal::SIGTERM);
    let n = notify
        .recv(&mut buf)
        .expect("STOPPING=1 within the deadline");
    assert_eq!(&buf[..n], b"STOPPING=1");
    assert_eq!(d.wait_exit(DEADLINE).code(), Some(0));
}
