//! Observability end to end (the README's "Watching it"): the real
//! `mayflyd` serves `GET /metrics` and `GET /__health` on `--http-addr`,
//! pushes to a real Prometheus Pushgateway with `--push-gateway`, and its
//! metrics pass `promtool check metrics` without a lint warning.
//!
//! Each test starts its own daemon on a free loopback port
//! ([`Daemon::start_with_http`]); the daemons of every other test run with
//! `--http-addr off`, so nothing collides on the default port. `promtool`
//! and `prometheus-pushgateway` come from Debian's `prometheus` and
//! `prometheus-pushgateway` packages, which `contrib/test` installs.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use crate::helper;
use crate::helper::http::{Scrape, free_port, get, request};
use crate::helper::raw::RawClient;
use crate::helper::{DEADLINE, Daemon, poll_until, run, stderr_of, until_file, wait_until};

/// Every family the daemon promises to serve, spelled as served (the
/// README's "Watching it" names them by prefix).
const FAMILIES: &[&str] = &[
    "mayfly_jobs_submitted_total",
    "mayfly_jobs_finished_total",
    "mayfly_jobs_queued",
    "mayfly_jobs_running",
    "mayfly_job_wait_seconds",
    "mayfly_job_run_seconds",
    "mayfly_job_cpu_seconds",
    "mayfly_job_max_rss_bytes",
    "mayfly_ipc_requests_total",
    "mayfly_ipc_request_duration_seconds",
    "mayfly_ipc_connections",
    "mayfly_wal_appends_total",
    "mayfly_wal_bytes_total",
    "mayfly_wal_fsync_duration_seconds",
    "mayfly_system_task_up",
    "mayfly_build_info",
    "mayfly_callbacks_total",
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "process_open_fds",
];

/// `GET http://ADDR/metrics`, asserted to be a 200 in the text format, parsed.
fn scrape(addr: SocketAddr) -> Scrape {
    let response = get(&format!("http://{addr}/metrics"))
        .unwrap_or_else(|e| panic!("GET /metrics on {addr}: {e}"));
    assert_eq!(response.status, 200, "GET /metrics: {}", response.body);
    assert_eq!(
        response.content_type.as_deref(),
        Some("text/plain; version=0.0.4"),
        "the Prometheus text format's content type"
    );
    Scrape::parse(&response.body)
}

/// The status of `GET http://ADDR/__health`, or `None` when nothing answers.
fn health(addr: SocketAddr) -> Option<u16> {
    get(&format!("http://{addr}/__health"))
        .ok()
        .map(|r| r.status)
}

/// `value(after) - value(before)` of one series (missing reads 0).
fn delta(before: &Scrape, after: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    after.value_or_zero(name, labels) - before.value_or_zero(name, labels)
}

/// Runs `mayflyctl wait IDS…` and returns its exit code.
fn wait_code(d: &Daemon, ids: &[u64]) -> Option<i32> {
    let ids: Vec<String> = ids.iter().map(u64::to_string).collect();
    let mut args = vec!["wait"];
    args.extend(ids.iter().map(String::as_str));
    d.ctl(&args).status.code()
}

/// The seed item "validate metric exposure using HTTP client + assert":
/// scrape, run 3 jobs that succeed and 1 that fails, scrape again; every
/// counter and histogram moved by exactly what happened.
#[test]
fn validate_metric_exposure_using_http_client_and_assert() {
    let (d, addr) = Daemon::start_with_http(&["--concurrency", "2"]);
    let before = scrape(addr);

    let ids = [
        d.submit_shell(&[], "true"),
        d.submit_shell(&[], "true"),
        d.submit_shell(&[], "exit 1"),
        d.submit_shell(&[], "true"),
    ];
    assert_eq!(wait_code(&d, &ids), Some(1), "one job fails");
    let after = scrape(addr);
    for family in FAMILIES {
        assert!(
            after.text.contains(&format!("# HELP {family} ")),
            "no HELP for {family} in:\n{}",
            after.text
        );
        assert!(
            after.text.contains(&format!("# TYPE {family} ")),
            "no TYPE for {family}"
        );
    }

    let q = [("queue", "default")];
    let moved = |name: &str, labels: &[(&str, &str)]| delta(&before, &after, name, labels);
    assert_eq!(moved("mayfly_jobs_submitted_total", &q), 4.0);
    assert_eq!(
        moved(
            "mayfly_jobs_finished_total",
            &[("queue", "default"), ("outcome", "succeeded")]
        ),
        3.0
    );
    assert_eq!(
        moved(
            "mayfly_jobs_finished_total",
            &[("queue", "default"), ("outcome", "failed")]
        ),
        1.0
    );
    assert_eq!(moved("mayfly_job_wait_seconds_count", &q), 4.0);
    assert_eq!(moved("mayfly_job_run_seconds_count", &q), 4.0);
    assert_eq!(
        moved(
            "mayfly_ipc_requests_total",
            &[("kind", "submit"), ("result", "ok")]
        ),
        4.0
    );
    assert_eq!(
        moved(
            "mayfly_ipc_request_duration_seconds_count",
            &[("kind", "submit")]
        ),
        4.0
    );
    assert_eq!(
        moved(
            "mayfly_ipc_requests_total",
            &[("kind", "wait"), ("result", "ok")]
        ),
        1.0
    );
    assert!(
        moved("mayfly_wal_appends_total", &[]) >= 4.0,
        "one record per submit at least"
    );
    assert!(moved("mayfly_wal_bytes_total", &[]) > 0.0);
    assert!(moved("mayfly_wal_fsync_duration_seconds_count", &[]) >= 1.0);
    assert_eq!(after.value("mayfly_jobs_queued", &q), Some(0.0));
    assert_eq!(after.value("mayfly_jobs_running", &q), Some(0.0));
    for task in ["looptask_wal_flush", "looptask_metrics"] {
        assert_eq!(
            after.value("mayfly_system_task_up", &[("name", task)]),
            Some(1.0),
            "{task} runs"
        );
    }
    let version = after.matching("mayfly_build_info", &[]);
    assert_eq!(version.len(), 1, "{version:?}");
    assert_eq!(version[0].value, 1.0);
    assert!(
        version[0]
            .labels
            .get("version")
            .is_some_and(|v| !v.is_empty())
    );
    assert!(after.value_or_zero("process_resident_memory_bytes", &[]) > 0.0);
}

/// A request that fails is counted as an error of its kind.
#[test]
fn failed_requests_count_as_errors() {
    let (d, addr) = Daemon::start_with_http(&[]);
    let before = scrape(addr);
    let out = d.ctl(&["status", "999"]);
    assert!(!out.status.success(), "status of an unknown job fails");
    let after = scrape(addr);
    assert_eq!(
        delta(
            &before,
            &after,
            "mayfly_ipc_requests_total",
            &[("kind", "status"), ("result", "error")]
        ),
        1.0,
        "{}",
        after.text
    );
}

/// With one job running (concurrency 1) and two waiting behind it, the
/// gauges read running=1 and queued=2 for the queue; once all ended, 0 and 0.
#[test]
fn queue_gauges_show_running_and_queued_jobs() {
    let (d, addr) = Daemon::start_with_http(&["--concurrency", "1"]);
    let blocker = d.submit_shell(&["--queue", "gauges"], &until_file("release"));
    d.wait_state(blocker, "running");
    let queued = [
        d.submit_shell(&["--queue", "gauges"], "true"),
        d.submit_shell(&["--queue", "gauges"], "true"),
    ];
    let q = [("queue", "gauges")];
    let now = scrape(addr);
    assert_eq!(
        now.value("mayfly_jobs_running", &q),
        Some(1.0),
        "{}",
        now.text
    );
    assert_eq!(
        now.value("mayfly_jobs_queued", &q),
        Some(2.0),
        "{}",
        now.text
    );

    d.touch("release");
    assert_eq!(wait_code(&d, &[blocker, queued[0], queued[1]]), Some(0));
    let end = scrape(addr);
    assert_eq!(end.value("mayfly_jobs_running", &q), Some(0.0));
    assert_eq!(end.value("mayfly_jobs_queued", &q), Some(0.0));
    assert_eq!(end.value("mayfly_job_wait_seconds_count", &q), Some(3.0));
}

/// `mayfly_ipc_connections` counts open client connections.
#[test]
fn the_connections_gauge_follows_open_connections() {
    let (d, addr) = Daemon::start_with_http(&[]);
    let open = |n: f64| move || scrape(addr).value("mayfly_ipc_connections", &[]) == Some(n);
    wait_until(DEADLINE, "no connection open", open(0.0));
    let first = RawClient::connect(d.socket());
    let second = RawClient::connect(d.socket());
    wait_until(DEADLINE, "two connections open", open(2.0));
    drop(first);
    wait_until(DEADLINE, "one connection open", open(1.0));
    drop(second);
    wait_until(DEADLINE, "no connection open again", open(0.0));
}

/// Unknown paths are 404; other methods on the known paths are 405 with
/// `Allow`.
#[test]
fn unknown_paths_are_404_and_other_methods_405() {
    let (_d, addr) = Daemon::start_with_http(&[]);
    let nope = get(&format!("http://{addr}/nope")).expect("an answer");
    assert_eq!(nope.status, 404);
    for path in ["/metrics", "/__health"] {
        let post = request("POST", &format!("http://{addr}{path}"), "x").expect("an answer");
        assert_eq!(post.status, 405, "POST {path}");
        assert_eq!(post.allow.as_deref(), Some("GET, HEAD"), "POST {path}");
    }
}

/// The scraped text passes `promtool check metrics` with no error and no
/// lint warning, with jobs in several queues (one with a name that needs
/// escaping) and failed requests on record.
#[test]
fn scrape_passes_promtool_check_metrics() {
    let promtool = helper::tool("promtool", "prometheus");
    let (d, addr) = Daemon::start_with_http(&[]);
    let ids = [
        d.submit_shell(&["--queue", "alpha"], "true"),
        d.submit_shell(&["--queue", "beta"], "exit 2"),
        d.submit_shell(&[], "true"),
    ];
    assert_eq!(wait_code(&d, &ids), Some(1));
    assert!(!d.ctl(&["status", "424242"]).status.success());
    let text = scrape(addr).text;

    // promtool reads the metrics on stdin.
    let file = d.dir().join("scrape.prom");
    std::fs::write(&file, &text).expect("write the scrape");
    let out = run(Command::new("sh")
        .arg("-c")
        .arg(r#"exec "$0" check metrics < "$1""#)
        .arg(&promtool)
        .arg(&file));
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool check metrics: {} {said}\n--- the text ---\n{text}",
        out.status
    );
}

/// `/__health` is 200 once the daemon answers on its socket, 503 from the
/// moment a shutdown begins (while a job that ignores SIGTERM holds it up),
/// and nothing answers once the daemon has exited.
#[test]
fn health_is_200_when_ready_and_503_once_shutdown_begins() {
    let (mut d, addr) = Daemon::start_with_http(&["--shutdown-timeout", "5s"]);
    d.ctl_ok(&["status"]);
    assert_eq!(health(addr), Some(200), "ready once the socket answers");

    let job = d.submit_shell(
        &[],
        &format!("trap '' TERM; {}", until_file("never-created")),
    );
    d.wait_state(job, "running");
    d.ctl_ok(&["shutdown"]);
    let mut seen = None;
    wait_until(DEADLINE, "/__health to turn 503", || {
        seen = health(addr);
        seen != Some(200)
    });
    assert_eq!(seen, Some(503), "a stopping daemon still answers, with 503");
    let status = d.wait_exit(DEADLINE);
    assert!(status.success(), "mayflyd exited with {status}");
    assert_eq!(health(addr), None, "nothing answers after exit");
}

/// A busy `--http-addr` is a startup error that names the flag and the way
/// out, and leaves no socket file behind.
#[test]
fn a_busy_http_port_is_a_clear_startup_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let addr = taken.local_addr().expect("its address");
    let dir = tempfile::tempdir().expect("temp dir");
    let socket = dir.path().join("s.sock");
    let out = run(Command::new(helper::bin("mayflyd"))
        .arg("--socket")
        .arg(&socket)
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .arg("--http-addr")
        .arg(addr.to_string()));
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    let err = stderr_of(&out);
    assert!(
        err.contains(&format!(
            "cannot listen on {addr} (--http-addr): address in use; pass --http-addr ADDR or --http-addr off"
        )),
        "{err}"
    );
    assert!(!socket.exists(), "the socket was left behind");
}

/// A Pushgateway started by a test, stopped (by pid) when dropped.
struct Gateway {
    /// The gateway process.
    child: Child,
    /// Where it listens.
    addr: SocketAddr,
}

impl Gateway {
    /// Starts `prometheus-pushgateway` on a free loopback port and waits
    /// until it is ready; retries on another port if the first was taken.
    fn start() -> Gateway {
        let bin = helper::tool("prometheus-pushgateway", "prometheus-pushgateway");
        for _ in 0..5 {
            let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
            let child = Command::new(&bin)
                .arg(format!("--web.listen-address={addr}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start prometheus-pushgateway");
            let mut gateway = Gateway { child, addr };
            let mut exited = false;
            let ready = poll_until(DEADLINE, || {
                exited = matches!(gateway.child.try_wait(), Ok(Some(_)));
                exited || get(&format!("http://{addr}/-/ready")).is_ok_and(|r| r.status == 200)
            });
            if ready && !exited {
                return gateway;
            }
            assert!(
                exited,
                "the Pushgateway on {addr} did not get ready in time"
            );
        }
        panic!("the Pushgateway did not start on any of 5 free ports");
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// With `--push-gateway`, the metrics task pushes to a real Pushgateway:
/// a submitted job's queue shows up there under job "mayflyd".
#[test]
fn the_pusher_reaches_a_real_pushgateway() {
    let gateway = Gateway::start();
    let url = format!("http://{}", gateway.addr);
    let (d, _addr) =
        Daemon::start_with_http(&["--push-gateway", &url, "--metrics-interval", "200ms"]);
    let id = d.submit_shell(&["--queue", "pushed"], "true");
    assert_eq!(wait_code(&d, &[id]), Some(0));
    let mut last = String::new();
    let arrived = poll_until(DEADLINE, || {
        let Ok(response) = get(&format!("{url}/metrics")) else {
            return false;
        };
        last = response.body;
        let scrape = Scrape::parse(&last);
        scrape
            .matching(
                "mayfly_jobs_submitted_total",
                &[("job", "mayflyd"), ("queue", "pushed")],
            )
            .iter()
            .any(|s| s.value == 1.0 && s.labels.get("instance").is_some_and(|i| !i.is_empty()))
    });
    assert!(
        arrived,
        "the gateway never showed the pushed submit; its metrics:\n{last}"
    );
}
