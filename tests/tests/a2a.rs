//! A2A (docs/a2a.md), against real clients and servers this project did
//! not write: the official Python SDK (`a2a-sdk`, in the venv
//! `contrib/test` makes).
//!
//! The front door is driven by the SDK's client through the scenarios of
//! `tests/python/a2a_client.py`: the agent card, messages with a text part
//! and a data part, blocking and non-blocking `SendMessage`, `GetTask`,
//! `CancelTask`, `ListTasks`, streams, push notifications to a webhook the
//! script serves, the bearer token, and a crash after an acknowledgement.
//!
//! The `a2a` executor hands a queue's jobs to two kinds of agent: a second
//! `mayflyd` serving its door, and `tests/python/a2a_agent.py`, built from
//! the SDK's own server components (streaming, or polled). Output and exit
//! status come back, a cancel reaches the remote task, a `kill -9` of the
//! emitting daemon while the remote task runs ends with the job completed
//! and the agent given one task, and an agent that cannot be reached fails
//! the job with the reason.
//!
//! Each test starts its own daemons on free loopback ports. Only with the
//! `a2a` feature (`cargo test --workspace --all-features`, as
//! `contrib/test` runs it).

use std::os::unix::fs::PermissionsExt;

use serde_json::{Value, json};

use crate::helper::a2a::{A2aDaemon, PyAgent};
use crate::helper::http::free_port;
use crate::helper::{DEADLINE, Daemon, until_file, wait_until};

/// The artifact `id` of a task (as ProtoJSON).
fn artifact<'a>(task: &'a Value, id: &str) -> &'a Value {
    task["artifacts"]
        .as_array()
        .and_then(|all| all.iter().find(|a| a["artifactId"] == id))
        .unwrap_or_else(|| panic!("task has no artifact {id}: {task}"))
}

/// The text of artifact `id` of a task.
fn artifact_text(task: &Value, id: &str) -> String {
    artifact(task, id)["parts"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The data of a task's `result` artifact.
fn result(task: &Value) -> &Value {
    &artifact(task, "result")["parts"][0]["data"]
}

/// The state of a task (as ProtoJSON).
fn state(task: &Value) -> &str {
    task["status"]["state"].as_str().unwrap_or_default()
}

/// The task id of a ProtoJSON task, as a job id.
fn job_id(task: &Value) -> u64 {
    task["id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("the task id is no job id: {task}"))
}

/// How many jobs the daemon holds.
fn job_count(d: &A2aDaemon) -> usize {
    d.daemon.status_json().as_array().map_or(0, Vec::len)
}

#[test]
fn the_card_is_public_and_every_call_needs_the_token() {
    let d = A2aDaemon::start(&[]);
    // The SDK resolves the card without a token.
    let card = d.client_with_token("-", "card", &[]);
    assert_eq!(card["name"], "Mayfly");
    assert_eq!(
        card["supportedInterfaces"][0]["url"],
        json!(format!("{}/", d.url()))
    );
    assert_eq!(card["supportedInterfaces"][0]["protocolBinding"], "JSONRPC");
    assert_eq!(card["supportedInterfaces"][0]["protocolVersion"], "1.0");
    assert_eq!(card["capabilities"]["streaming"], true);
    assert_eq!(card["capabilities"]["pushNotifications"], true);
    assert_eq!(card["skills"][0]["name"], "run a command");
    assert!(
        card["skills"][0]["examples"]
            .as_array()
            .is_some_and(|e| e.len() >= 2),
        "{card}"
    );
    assert_eq!(
        card["securitySchemes"]["bearer"]["httpAuthSecurityScheme"]["scheme"],
        "Bearer"
    );

    // Without the token, or with a wrong one, nothing is submitted.
    for token in ["-", "0123456789abcdef0123456789abcdef0123456789abcdef"] {
        let refused = d.client_with_token(token, "noauth", &["touch ran"]);
        assert!(
            refused["message"]
                .as_str()
                .unwrap_or_default()
                .contains("401"),
            "{refused}"
        );
    }
    let raw = d.client_with_token(
        "-",
        "raw",
        &[r#"{"jsonrpc":"2.0","id":1,"method":"ListTasks","params":{}}"#],
    );
    assert_eq!(raw["status"], 401);
    assert_eq!(raw["www_authenticate"], "Bearer realm=\"mayfly\"");
    assert_eq!(raw["body"]["error"]["code"], -32000);
    assert!(
        raw["body"]["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("STATE_DIR/token"),
        "{raw}"
    );
    assert_eq!(job_count(&d), 0, "a refused call submitted a job");
    assert!(!d.daemon.work().join("ran").exists());
}

#[test]
fn a_text_part_and_a_data_part_become_jobs_with_their_output() {
    let d = A2aDaemon::start(&[]);
    // Blocking SendMessage: the answer is the ended task.
    let task = d.client("text", &["sleep 0.3; echo hi; echo err >&2"]);
    assert_eq!(state(&task), "TASK_STATE_COMPLETED", "{task}");
    assert_eq!(artifact_text(&task, "stdout"), "hi\n");
    assert_eq!(artifact_text(&task, "stderr"), "err\n");
    assert_eq!(result(&task)["exitCode"], 0.0);
    assert_eq!(result(&task)["state"], "succeeded");
    // The task id is the job id.
    let id = job_id(&task);
    let job = d.daemon.job(id);
    assert_eq!(job["state"], "succeeded");
    assert_eq!(d.daemon.ctl_ok(&["logs", &id.to_string()]), "hi");

    // A data part is a --json-input job: an argv, labels, a queue.
    let spec = json!({
        "command": ["sh", "-c", "echo data; exit 3"],
        "labels": {"run": "42"},
        "queue": "batch",
    });
    let task = d.client("data", &[&spec.to_string()]);
    assert_eq!(state(&task), "TASK_STATE_FAILED", "{task}");
    assert_eq!(artifact_text(&task, "stdout"), "data\n");
    assert_eq!(result(&task)["exitCode"], 3.0);
    let said = task["status"]["message"]["parts"][0]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(said.contains("exit code 3"), "{task}");
    let job = d.daemon.job(job_id(&task));
    assert_eq!(job["queue"], "batch");
    assert_eq!(job["labels"]["run"], "42");
    assert_eq!(job["command"], json!(["sh", "-c", "echo data; exit 3"]));

    // A wrong job spec is refused with the parser's reason, and nothing runs.
    let before = job_count(&d);
    let bad = d.client(
        "raw",
        &[&json!({
            "jsonrpc": "2.0", "id": "b", "method": "SendMessage",
            "params": {"message": {"messageId": "x", "role": "ROLE_USER",
                "parts": [{"data": {"command": ["true"], "priorty": 5}}]}},
        })
        .to_string()],
    );
    assert_eq!(bad["body"]["error"]["code"], -32602, "{bad}");
    let message = bad["body"]["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("priorty"), "{message}");
    let file = d.client(
        "raw",
        &[&json!({
            "jsonrpc": "2.0", "id": "f", "method": "SendMessage",
            "params": {"message": {"messageId": "y", "role": "ROLE_USER",
                "parts": [{"url": "http://127.0.0.1:1/x.sh"}]}},
        })
        .to_string()],
    );
    assert_eq!(file["body"]["error"]["code"], -32005, "{file}");
    assert_eq!(job_count(&d), before);
}

#[test]
fn return_immediately_answers_at_once_and_get_task_follows_the_job() {
    let d = A2aDaemon::start(&[]);
    let seen = d.client("poll", &["sleep 0.5; echo polled"]);
    let submitted = &seen["submitted"];
    assert!(
        ["TASK_STATE_SUBMITTED", "TASK_STATE_WORKING"].contains(&state(submitted)),
        "{submitted}"
    );
    assert!(submitted.get("artifacts").is_none(), "{submitted}");
    let done = &seen["done"];
    assert_eq!(state(done), "TASK_STATE_COMPLETED", "{done}");
    assert_eq!(artifact_text(done, "stdout"), "polled\n");
    assert_eq!(done["metadata"]["mayflyState"], "succeeded");
    // A missing task is the A2A error.
    let missing = d.client(
        "raw",
        &[r#"{"jsonrpc":"2.0","id":2,"method":"GetTask","params":{"id":"999"}}"#],
    );
    assert_eq!(missing["body"]["error"]["code"], -32001, "{missing}");
}

#[test]
fn cancel_task_stops_a_running_job() {
    let d = A2aDaemon::start(&[]);
    let seen = d.client("cancel", &["sleep 30"]);
    assert_eq!(state(&seen["done"]), "TASK_STATE_CANCELED", "{seen}");
    assert_eq!(seen["done"]["metadata"]["mayflyState"], "cancelled");
    assert_eq!(seen["cancel_again"], "TaskNotCancelableError", "{seen}");
    let id: u64 = seen["id"].as_str().unwrap_or_default().parse().unwrap_or(0);
    assert_eq!(d.daemon.state(id), "cancelled");
}

#[test]
fn list_tasks_pages_and_filters_by_state() {
    let d = A2aDaemon::start(&[]);
    let ok1 = d.daemon.submit(&["true"]);
    let bad = d.daemon.submit(&["false"]);
    let ok2 = d.daemon.submit(&["true"]);
    for id in [ok1, bad, ok2] {
        d.daemon
            .wait_state(id, if id == bad { "failed" } else { "succeeded" });
    }
    let listing = d.client("list", &["", "TASK_STATE_COMPLETED", "TASK_STATE_FAILED"]);
    let ids = |key: &str| -> Vec<u64> {
        listing[key]["ids"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str()?.parse().ok()).collect())
            .unwrap_or_default()
    };
    let mut all = ids("all");
    all.sort_unstable();
    assert_eq!(all, vec![ok1, bad, ok2], "{listing}");
    assert_eq!(listing["all"]["pages"], 2, "a page holds 2: {listing}");
    assert_eq!(listing["all"]["total"], 3);
    let mut completed = ids("TASK_STATE_COMPLETED");
    completed.sort_unstable();
    assert_eq!(completed, vec![ok1, ok2]);
    assert_eq!(ids("TASK_STATE_FAILED"), vec![bad]);
}

#[test]
fn streams_carry_the_task_its_changes_its_artifacts_and_its_end() {
    let d = A2aDaemon::start(&[]);
    for (scenario, line) in [
        ("stream", "echo streamed"),
        ("subscribe", "sleep 0.5; echo subscribed"),
    ] {
        let seen = d.client(scenario, &[line]);
        let events = seen["events"].as_array().cloned().unwrap_or_default();
        assert!(events.len() >= 5, "{scenario}: {seen}");
        assert!(
            events[0].get("task").is_some(),
            "{scenario}: the task first"
        );
        let last = events.last().unwrap_or(&Value::Null);
        assert_eq!(
            last["statusUpdate"]["status"]["state"], "TASK_STATE_COMPLETED",
            "{scenario}: the end last: {seen}"
        );
        let stdout = events
            .iter()
            .find(|e| e["artifactUpdate"]["artifact"]["artifactId"] == "stdout")
            .unwrap_or_else(|| panic!("{scenario}: no stdout artifact: {seen}"));
        let expected = format!("{}\n", line.rsplit("echo ").next().unwrap_or_default());
        assert_eq!(
            stdout["artifactUpdate"]["artifact"]["parts"][0]["text"],
            json!(expected)
        );
    }
}

#[test]
fn push_notifications_reach_the_webhooks_of_a_task() {
    let d = A2aDaemon::start(&[]);
    let seen = d.client("push", &["sleep 0.5; echo pushed"]);
    assert_eq!(seen["made"]["id"], "second");
    assert_eq!(seen["made"]["taskId"], seen["id"]);
    let received = seen["received"].as_array().cloned().unwrap_or_default();
    let states = |token: Option<&str>| -> Vec<String> {
        received
            .iter()
            .filter(|r| r["token"].as_str() == token)
            .map(|r| {
                assert_eq!(r["body"]["statusUpdate"]["taskId"], seen["id"]);
                r["body"]["statusUpdate"]["status"]["state"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect()
    };
    // The webhook given with the message hears the state at registration
    // and the end, in order; the one added later hears the end.
    let first = states(Some("hook-token"));
    assert_eq!(
        first.last().map(String::as_str),
        Some("TASK_STATE_COMPLETED"),
        "{seen}"
    );
    assert!(first.len() >= 2, "{seen}");
    assert_eq!(
        states(None).last().map(String::as_str),
        Some("TASK_STATE_COMPLETED"),
        "{seen}"
    );
}

#[test]
fn an_ended_task_carries_the_last_64_kib_of_a_long_output() {
    let d = A2aDaemon::start(&[]);
    let spec = json!({"command": "head -c 100000 /dev/zero | tr '\\0' x; echo"});
    let task = d.client("data", &[&spec.to_string()]);
    assert_eq!(state(&task), "TASK_STATE_COMPLETED", "{task}");
    let stdout = artifact(&task, "stdout");
    assert_eq!(stdout["metadata"]["truncated"], true);
    assert_eq!(stdout["metadata"]["totalBytes"], 100_001.0);
    let text = artifact_text(&task, "stdout");
    assert_eq!(text.len(), 64 * 1024);
    assert!(text.ends_with("xx\n"));
    assert!(
        stdout["description"]
            .as_str()
            .unwrap_or_default()
            .contains("last 65536 of 100001 bytes"),
        "{stdout}"
    );
    assert_eq!(artifact(&task, "stderr")["metadata"]["truncated"], false);
}

#[test]
fn an_acknowledged_task_survives_a_crash_of_the_daemon() {
    let mut d = A2aDaemon::start(&[]);
    let task = d.client(
        "submit",
        &[r#"{"data": {"command": ["true"], "delay": "1h"}}"#],
    );
    assert_eq!(state(&task), "TASK_STATE_SUBMITTED", "{task}");
    let id = task["id"].as_str().unwrap_or_default().to_string();
    // At once, with no chance to flush anything more.
    d.daemon.kill_hard();
    d.restart(&[]);
    let again = d.client("get", &[&id]);
    assert_eq!(again["id"], json!(id));
    assert_eq!(state(&again), "TASK_STATE_SUBMITTED", "{again}");
    assert_eq!(again["metadata"]["mayflyState"], "waiting");
    wait_until(DEADLINE, "the job is back", || {
        d.daemon.state(job_id(&task)) == "waiting"
    });
}

// ---- the a2a executor ----

/// An agent the emitting daemon hands its jobs to.
trait Remote {
    /// Its JSON-RPC URL.
    fn url(&self) -> String;
    /// The bearer token it wants, if any.
    fn token(&self) -> Option<String>;
    /// How many tasks it has been given.
    fn tasks(&self) -> usize;
}

impl Remote for A2aDaemon {
    fn url(&self) -> String {
        format!("{}/", A2aDaemon::url(self))
    }

    fn token(&self) -> Option<String> {
        Some(A2aDaemon::token(self))
    }

    fn tasks(&self) -> usize {
        job_count(self)
    }
}

/// The test agent and the token it wants.
struct Agent {
    /// The agent.
    agent: PyAgent,
    /// Its token.
    token: &'static str,
}

impl Agent {
    /// Starts the test agent (notes in `dir`) with the script's `flags`.
    fn start(dir: &std::path::Path, flags: &[&str]) -> Self {
        let token = "the-test-agents-token-0123456789abcdef";
        Self {
            agent: PyAgent::start(&dir.join("agent.log"), Some(token), flags),
            token,
        }
    }
}

impl Remote for Agent {
    fn url(&self) -> String {
        self.agent.url()
    }

    fn token(&self) -> Option<String> {
        Some(self.token.to_string())
    }

    fn tasks(&self) -> usize {
        self.agent.tasks()
    }
}

/// Starts the emitting daemon with `args` and adds its queue `remote`,
/// which hands its jobs to `to` (the token in a private file).
fn emitter(to: &dyn Remote, args: &[&str]) -> Daemon {
    let mut all = vec!["--a2a-poll-interval", "100ms"];
    all.extend_from_slice(args);
    let a = Daemon::start(&all);
    add_remote_queue(&a, to);
    a
}

/// Adds queue `remote` to `a`, handing its jobs to `to`.
fn add_remote_queue(a: &Daemon, to: &dyn Remote) {
    let url = to.url();
    let mut args = vec![
        "queue",
        "add",
        "remote",
        "--executor",
        "a2a",
        "--a2a-url",
        &url,
    ];
    let token_file = a.dir().join("remote-token");
    let token_path = token_file.to_string_lossy().to_string();
    if let Some(token) = to.token() {
        std::fs::write(&token_file, format!("{token}\n")).expect("write the token file");
        std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600))
            .expect("make the token file private");
        args.extend(["--a2a-token-file", &token_path]);
    }
    a.ctl_ok(&args);
}

/// Output and exit status come back from `to`, one task per job.
fn output_and_exit_status_come_back(to: &dyn Remote) {
    let a = emitter(to, &[]);
    let before = to.tasks();
    let ok = a.submit_shell(&["--queue", "remote"], "echo out; echo err >&2");
    let bad = a.submit(&[
        "--queue",
        "remote",
        "--",
        "sh",
        "-c",
        "echo why >&2; exit 3",
    ]);
    a.wait_state(ok, "succeeded");
    a.wait_state(bad, "failed");
    assert_eq!(a.ctl_ok(&["logs", &ok.to_string()]), "out");
    assert_eq!(a.ctl_ok(&["logs", "--stderr", &ok.to_string()]), "err");
    assert_eq!(a.ctl_ok(&["logs", "--stderr", &bad.to_string()]), "why");
    let job = a.job(bad);
    assert_eq!(job["exit_code"], 3, "{job}");
    assert!(
        job["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("failed"),
        "{job}"
    );
    assert!(job["remote_id"].is_string(), "{job}");
    assert_eq!(to.tasks(), before + 2);
}

/// A cancel on the emitting daemon reaches `to`'s task; `cancelled_there`
/// says whether the remote side saw it (given the remote task id).
fn a_cancel_reaches_the_remote_task(to: &dyn Remote, cancelled_there: &dyn Fn(&str) -> bool) {
    let a = emitter(to, &[]);
    let before = to.tasks();
    let id = a.submit(&["--queue", "remote", "--", "sleep", "30"]);
    a.wait_state(id, "running");
    wait_until(DEADLINE, "the agent has the task", || {
        to.tasks() == before + 1
    });
    wait_until(DEADLINE, "the remote id is logged", || {
        a.job(id)["remote_id"].is_string()
    });
    let remote = a.job(id)["remote_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(!remote.is_empty());
    a.ctl_ok(&["cancel", &id.to_string()]);
    a.wait_state(id, "cancelled");
    wait_until(DEADLINE, "the remote task is cancelled", || {
        cancelled_there(&remote)
    });
}

/// `kill -9` of the emitting daemon while `to` runs its task: after the
/// restart the job completes, and `to` was given one task.
fn a_crash_of_the_emitter_re_attaches_the_remote_task(to: &dyn Remote) {
    let mut a = emitter(to, &[]);
    let before = to.tasks();
    let script = format!("{}; echo finished", until_file("go"));
    let id = a.submit_shell(&["--queue", "remote"], &script);
    a.wait_state(id, "running");
    wait_until(DEADLINE, "the agent has the task", || {
        to.tasks() == before + 1
    });
    // Killed once the remote id is durable (before that, the daemon cannot
    // know whether the agent has the task: docs/a2a.md).
    wait_until(DEADLINE, "the remote id is logged", || {
        a.job(id)["remote_id"].is_string()
    });
    a.kill_hard();
    a.restart(&["--a2a-poll-interval", "100ms"]);
    a.touch("go");
    a.wait_state(id, "succeeded");
    assert_eq!(a.ctl_ok(&["logs", &id.to_string()]), "finished");
    assert!(
        a.log_text()
            .contains("re-attached a job that runs elsewhere")
    );
    assert_eq!(to.tasks(), before + 1, "the job was sent twice");
    assert_eq!(a.job(id)["attempts"], 1);
}

/// A graceful stop of the emitting daemon leaves `to`'s task running (it
/// does not wait for it, nor cancel it); the next start follows it to its
/// end.
fn a_stop_of_the_emitter_leaves_the_remote_task_running(to: &dyn Remote) {
    // A shutdown timeout far longer than the test's deadline: a stop that
    // waited for the remote job would fail the test.
    let mut a = emitter(to, &["--shutdown-timeout", "1h"]);
    let before = to.tasks();
    let script = format!("{}; echo finished", until_file("go"));
    let id = a.submit_shell(&["--queue", "remote"], &script);
    wait_until(DEADLINE, "the remote id is logged", || {
        a.job(id)["remote_id"].is_string()
    });
    let status = a.stop();
    assert!(status.success(), "{status}");
    a.restart(&["--a2a-poll-interval", "100ms"]);
    assert_eq!(a.state(id), "running");
    a.touch("go");
    a.wait_state(id, "succeeded");
    assert_eq!(a.ctl_ok(&["logs", &id.to_string()]), "finished");
    assert_eq!(to.tasks(), before + 1);
}

#[test]
fn a_queue_hands_its_jobs_to_another_mayfly() {
    let b = A2aDaemon::start(&[]);
    output_and_exit_status_come_back(&b);
    a_cancel_reaches_the_remote_task(&b, &|remote| {
        remote
            .parse()
            .is_ok_and(|id| b.daemon.state(id) == "cancelled")
    });
    a_crash_of_the_emitter_re_attaches_the_remote_task(&b);
    a_stop_of_the_emitter_leaves_the_remote_task_running(&b);
}

#[test]
fn a_queue_hands_its_jobs_to_an_agent_built_with_the_sdk() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let agent = Agent::start(dir.path(), &[]);
    output_and_exit_status_come_back(&agent);
    let cancelled = |remote: &str| {
        agent
            .agent
            .notes()
            .iter()
            .any(|n| n["cancel"].as_str() == Some(remote))
    };
    a_cancel_reaches_the_remote_task(&agent, &cancelled);
    a_crash_of_the_emitter_re_attaches_the_remote_task(&agent);
}

#[test]
fn an_agent_that_does_not_stream_is_polled() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let agent = Agent::start(dir.path(), &["--no-streaming"]);
    output_and_exit_status_come_back(&agent);
}

#[test]
fn a_task_handed_over_just_before_a_crash_is_found_not_sent_again() {
    let dir = tempfile::tempdir().expect("a temp dir");
    // The agent holds its answer for 3 s after taking the job: the daemon
    // is killed in between, so its log has the attempt but no remote id.
    let agent = Agent::start(dir.path(), &["--slow-answer", "3"]);
    let mut a = emitter(&agent, &[]);
    let script = format!("{}; echo finished", until_file("go"));
    let id = a.submit_shell(&["--queue", "remote"], &script);
    wait_until(DEADLINE, "the agent has the task", || agent.tasks() == 1);
    a.kill_hard();
    let notes = |key: &str| {
        agent
            .agent
            .notes()
            .iter()
            .filter(|n| n.get(key).is_some())
            .count()
    };
    wait_until(DEADLINE, "the agent answered", || notes("answered") == 1);
    a.restart(&["--a2a-poll-interval", "100ms"]);
    assert!(a.log_text().contains("remote_id=None"), "the id was logged");
    wait_until(DEADLINE, "the task is found", || {
        a.job(id)["remote_id"].is_string()
    });
    a.touch("go");
    a.wait_state(id, "succeeded");
    assert_eq!(a.ctl_ok(&["logs", &id.to_string()]), "finished");
    assert_eq!(agent.tasks(), 1, "the job was sent twice");
    assert!(
        a.log_text()
            .contains("found the A2A task of a job whose remote id was not logged")
    );
}

#[test]
fn a_task_the_agent_never_got_before_a_crash_runs_again_once() {
    // The agent is not there yet: the daemon logs the start, then keeps
    // trying to reach it, and is killed meanwhile.
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/");
    let mut a = Daemon::start(&["--a2a-poll-interval", "100ms"]);
    a.ctl_ok(&[
        "queue",
        "add",
        "remote",
        "--executor",
        "a2a",
        "--a2a-url",
        &url,
    ]);
    let id = a.submit(&["--queue", "remote", "--retries", "1", "--", "echo", "ran"]);
    a.wait_state(id, "running");
    a.kill_hard();
    let dir = tempfile::tempdir().expect("a temp dir");
    let agent = PyAgent::start_at(Some(port), &dir.path().join("agent.log"), None, &[]);
    a.restart(&["--a2a-poll-interval", "100ms"]);
    a.wait_state(id, "succeeded");
    assert_eq!(a.ctl_ok(&["logs", &id.to_string()]), "ran");
    assert_eq!(agent.tasks(), 1);
    let job = a.job(id);
    assert_eq!(job["attempts"], 2, "{job}");
    assert!(
        a.log_text().contains("which does not have it"),
        "the first attempt was not found lost"
    );
}

#[test]
fn an_agent_that_cannot_be_reached_fails_the_job_with_the_reason() {
    // Nothing listens there (a port that was free a moment ago).
    let url = format!("http://127.0.0.1:{}/", free_port());
    let a = Daemon::start(&["--a2a-retry-for", "2s"]);
    a.ctl_ok(&[
        "queue",
        "add",
        "remote",
        "--executor",
        "a2a",
        "--a2a-url",
        &url,
    ]);
    let id = a.submit(&["--queue", "remote", "--", "true"]);
    a.wait_state(id, "failed");
    let reason = a.job(id)["reason"].as_str().unwrap_or_default().to_string();
    assert!(
        reason.contains("cannot connect to the A2A agent"),
        "{reason}"
    );
    assert!(reason.contains("gave up after"), "{reason}");
    assert!(reason.contains("--a2a-retry-for"), "{reason}");

    // A wrong token is a refusal, said at once.
    let b = A2aDaemon::start(&[]);
    let token = a.dir().join("wrong-token");
    std::fs::write(&token, "not-the-token-0123456789abcdef0123456789\n").expect("write");
    let b_url = format!("{}/", b.url());
    a.ctl_ok(&[
        "queue",
        "add",
        "wrong",
        "--executor",
        "a2a",
        "--a2a-url",
        &b_url,
        "--a2a-token-file",
        &token.to_string_lossy(),
    ]);
    let id = a.submit(&["--queue", "wrong", "--", "true"]);
    a.wait_state(id, "failed");
    let reason = a.job(id)["reason"].as_str().unwrap_or_default().to_string();
    assert!(reason.contains("refused the job"), "{reason}");
    assert!(reason.contains("bearer token"), "{reason}");
    assert_eq!(job_count(&b), 0);

    // A task cannot be frozen: pause --running is refused, pause is not.
    let out = a.ctl(&["pause", "--running", "remote"]);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("not supported for a2a queues"), "{said}");
    a.ctl_ok(&["pause", "remote"]);

    // An https:// agent is refused when the queue is made, saying why.
    let out = a.ctl(&[
        "queue",
        "add",
        "tls",
        "--executor",
        "a2a",
        "--a2a-url",
        "https://127.0.0.1:1/",
    ]);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("no TLS client"), "{said}");
}
