//! The gRPC front door (docs/grpc.md), end to end, with clients this
//! project did not write: Python's grpcio, on stubs generated from the
//! repository's `.proto` at test time (`tests/python/grpc_client.py`, one
//! scenario per test), and tonic's client, on the code generated for the
//! daemon. Only with the tests crate's `grpc` feature (contrib/test turns
//! every feature on).
//!
//! The Python interpreter is the one `contrib/test` sets up in a venv with
//! the packages of `contrib/test-requirements.txt`, named by
//! `MAYFLY_TEST_PYTHON`; without it these tests fail and say so.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use mayflyd::grpc::proto;
use mayflyd::grpc::proto::mayfly_client::MayflyClient;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::helper::http::{Scrape, get};
use crate::helper::{DEADLINE, Daemon, run, stderr_of, stdout_of, tool, until_file, wait_until};

/// The other user of the refusal test: nobody.
const OTHER: u32 = 65534;

/// The repository's root (the tests crate is one of its folders).
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate sits in the repository")
        .to_path_buf()
}

/// The Python of the venv `contrib/test` makes; panics saying how to get
/// it.
fn python() -> PathBuf {
    let path = std::env::var_os("MAYFLY_TEST_PYTHON").map(PathBuf::from);
    match path {
        Some(path) if path.is_file() => path,
        _ => panic!(
            "MAYFLY_TEST_PYTHON does not name a Python: run the suite with contrib/test, which \
             makes a venv with grpcio (contrib/test-requirements.txt) under target/test-venv \
             and sets it"
        ),
    }
}

/// The gRPC socket of `d`: beside its socket.
fn grpc_socket(d: &Daemon) -> PathBuf {
    d.socket().with_file_name("grpc.sock")
}

/// The Python client's command for `scenario` against `target`, its stubs
/// generated into a folder of `d`'s.
fn python_client(d: &Daemon, target: &str, scenario: &str) -> Command {
    let stubs = d.dir().join(format!("stubs-{scenario}"));
    std::fs::create_dir_all(&stubs).expect("make the stubs folder");
    let mut cmd = Command::new(python());
    cmd.arg(repo().join("tests/python/grpc_client.py"))
        .arg("--proto-root")
        .arg(repo().join("protocol/proto"))
        .args(["--target", target])
        .arg("--work")
        .arg(d.work())
        .arg("--stubs")
        .arg(&stubs)
        .arg(scenario)
        .env("PATH", std::env::var_os("PATH").unwrap_or_default());
    cmd
}

/// Asserts the Python client's run passed, showing everything if not.
fn assert_passed(out: &Output, scenario: &str, d: &Daemon) {
    assert!(
        out.status.success() && stdout_of(out).contains(&format!("scenario {scenario}: passed")),
        "the Python client's scenario {scenario} failed ({}):\n{}\n{}\nthe daemon's log:\n{}",
        out.status,
        stdout_of(out),
        stderr_of(out),
        d.log_text()
    );
}

/// Runs `scenario` of the Python client on `d`'s gRPC socket.
fn python_on_socket(scenario: &str) -> Daemon {
    let d = Daemon::start(&[]);
    let target = format!("unix:{}", grpc_socket(&d).display());
    let out = run(&mut python_client(&d, &target, scenario));
    assert_passed(&out, scenario, &d);
    d
}

#[test]
fn python_submit_wait_get_and_logs() {
    python_on_socket("submit");
}

#[test]
fn python_errors_have_their_codes_and_mayflyctls_words() {
    python_on_socket("errors");
}

#[test]
fn python_list_jobs_with_filters_queues_and_dump_state() {
    python_on_socket("list");
}

#[test]
fn python_cancel() {
    python_on_socket("cancel");
}

#[test]
fn python_logs_follow_streams_while_the_job_runs() {
    python_on_socket("logs-follow");
}

#[test]
fn python_events_recent_and_followed() {
    python_on_socket("events");
}

#[test]
fn python_health_check_says_serving() {
    python_on_socket("health");
}

#[test]
fn python_reflection_lists_the_service() {
    python_on_socket("reflection");
}

/// The TCP address the daemon says it listens on for gRPC.
fn tcp_addr(d: &Daemon) -> String {
    let mut addr = None;
    wait_until(DEADLINE, "the gRPC TCP listener in the log", || {
        addr = d
            .log_text()
            .lines()
            .find(|l| l.contains("gRPC listening on TCP"))
            .and_then(|l| l.split("addr=").nth(1))
            .map(|a| a.split_whitespace().next().unwrap_or_default().to_string());
        addr.is_some()
    });
    addr.unwrap_or_default()
}

/// On TCP, a call without the token (or with a wrong one) is refused
/// `UNAUTHENTICATED` and runs nothing; with the token from the state dir
/// it is served. The token file is private.
#[test]
fn python_on_tcp_needs_the_bearer_token() {
    // No host named: loopback.
    let (d, http) = Daemon::start_with_http(&["--grpc-addr", ":0"]);
    let addr = tcp_addr(&d);
    assert!(addr.starts_with("127.0.0.1:"), "listening on {addr}");
    let out = run(&mut python_client(&d, &addr, "no-token"));
    assert_passed(&out, "no-token", &d);
    assert!(
        !d.work().join("should-not-exist").exists(),
        "a refused Submit ran"
    );
    assert!(d.status_json().as_array().is_some_and(Vec::is_empty));
    let scrape = Scrape::parse(
        &get(&format!("http://{http}/metrics"))
            .expect("/metrics")
            .body,
    );
    assert_eq!(
        scrape.value_or_zero("mayfly_grpc_refused_total", &[("reason", "token")]),
        4.0,
        "every refused call is counted: {}",
        scrape.text
    );
    let token = d.state_dir().join("token");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&token)
        .expect("the token")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the token file's mode");
    let out = run(python_client(&d, &addr, "token")
        .arg("--token-file")
        .arg(&token));
    assert_passed(&out, "token", &d);
    assert!(
        d.log_text().contains("loopback only"),
        "the log says where TCP listens"
    );
}

/// A user the daemon does not serve is refused on the gRPC socket with the
/// words of the Unix-socket door, and the refusal is logged. The socket is
/// made reachable (`--allow-uid` of someone else makes it `0666`), so that
/// it is the peer check that refuses, not the file's mode.
#[test]
fn python_as_another_user_is_refused_on_the_socket() {
    assert_eq!(
        nix::unistd::geteuid().as_raw(),
        0,
        "this test must run as root, to run the Python client as uid {OTHER} with setpriv \
         (CI runs the suite as root)"
    );
    let d = Daemon::start(&["--allow-uid", "12345"]);
    std::fs::set_permissions(d.dir(), std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("open the daemon's folder to others");
    let target = format!("unix:{}", grpc_socket(&d).display());
    let python = python_client(&d, &target, "refused-peer");
    let stubs = d.dir().join("stubs-refused-peer");
    std::os::unix::fs::chown(&stubs, Some(OTHER), Some(OTHER)).expect("chown the stubs folder");
    let mut cmd = Command::new(tool("setpriv", "util-linux"));
    cmd.args([
        format!("--reuid={OTHER}"),
        format!("--regid={OTHER}"),
        "--clear-groups".to_string(),
    ])
    .arg(python.get_program())
    .args(python.get_args())
    .env("PATH", std::env::var_os("PATH").unwrap_or_default())
    .current_dir("/");
    let out = run(&mut cmd);
    assert_passed(&out, "refused-peer", &d);
    let log = d.log_text();
    assert!(
        log.lines().any(|l| l.contains("WARN")
            && l.contains("refused a gRPC connection")
            && l.contains(&format!("uid={OTHER}"))),
        "the refusal was not logged:\n{log}"
    );
}

/// A runtime for the tonic client.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// A tonic channel to the gRPC socket at `path`.
async fn connect(path: PathBuf) -> Channel {
    Endpoint::from_static("http://localhost")
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move {
                let stream = tokio::net::UnixStream::connect(path).await?;
                Ok::<_, std::io::Error>(TokioIo::new(stream))
            }
        }))
        .await
        .expect("connect to the gRPC socket")
}

/// A spec of a shell job run in `d`'s work folder.
fn shell(d: &Daemon, script: &str) -> proto::JobSpec {
    proto::JobSpec {
        shell: script.to_string(),
        cwd: d.work().display().to_string(),
        env: [(
            "PATH".to_string(),
            std::env::var("PATH").unwrap_or_default(),
        )]
        .into(),
        ..Default::default()
    }
}

/// Submits `spec` and returns the id.
async fn submit(client: &mut MayflyClient<Channel>, spec: proto::JobSpec) -> u64 {
    client
        .submit(proto::SubmitRequest { spec: Some(spec) })
        .await
        .expect("Submit")
        .into_inner()
        .id
}

/// The jobs `ids` as the Wait stream reports them.
async fn wait(client: &mut MayflyClient<Channel>, ids: &[u64]) -> Vec<proto::Job> {
    let mut stream = client
        .wait(proto::WaitRequest { ids: ids.to_vec() })
        .await
        .expect("Wait")
        .into_inner();
    let mut ended = Vec::new();
    while let Some(job) = stream.message().await.expect("a Wait message") {
        ended.push(job);
    }
    ended
}

/// The ids ListJobs sends for `request`.
async fn list(client: &mut MayflyClient<Channel>, request: proto::ListJobsRequest) -> Vec<u64> {
    let mut stream = client
        .list_jobs(request)
        .await
        .expect("ListJobs")
        .into_inner();
    let mut ids = Vec::new();
    while let Some(job) = stream.message().await.expect("a ListJobs message") {
        ids.push(job.id);
    }
    ids
}

/// The same paths as the Python client, with tonic's: Submit, GetJob,
/// ListJobs with filters, Cancel, Wait, Logs with follow, Events, health.
#[test]
fn tonic_client_paths() {
    let d = Daemon::start(&[]);
    let socket = grpc_socket(&d);
    assert_eq!(mode_of(&socket), 0o600, "the gRPC socket's mode");
    runtime().block_on(async {
        let channel = connect(socket).await;
        let mut client = MayflyClient::new(channel.clone());
        let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
        let serving = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: "mayfly.v1.Mayfly".into(),
            })
            .await
            .expect("health Check")
            .into_inner();
        assert_eq!(serving.status, 1, "SERVING");

        let mut labelled = shell(&d, "echo out");
        labelled.labels.insert("team".into(), "rs".into());
        let a = submit(&mut client, labelled).await;
        let mut told = shell(&d, "exit 2");
        told.on_finish =
            Some("echo $MAYFLY_JOB_STATE $MAYFLY_EXIT_CODE > told.tmp && mv told.tmp told".into());
        let b = submit(&mut client, told).await;
        let ended = wait(&mut client, &[a, b]).await;
        assert_eq!(ended.len(), 2);
        let told = d.file("told");
        wait_until(DEADLINE, "the finish callback set over gRPC", || {
            told.exists()
        });
        assert_eq!(
            std::fs::read_to_string(&told).unwrap_or_default(),
            "failed 2\n"
        );
        let job = client
            .get_job(proto::GetJobRequest { id: b })
            .await
            .expect("GetJob")
            .into_inner();
        assert_eq!(job.state(), proto::JobState::Failed);
        assert_eq!(job.exit_code, Some(2));
        let usage = job.usage.expect("an ended local job has its usage");
        assert!(usage.max_rss_kib > 0, "{usage:?}");
        assert!(!job.preempted);
        let missing = client
            .get_job(proto::GetJobRequest { id: 9999 })
            .await
            .expect_err("GetJob of an unknown job");
        assert_eq!(missing.code(), tonic::Code::NotFound);
        assert_eq!(
            missing.message(),
            "no job 9999; `mayflyctl status` lists the jobs"
        );

        let by_label = proto::ListJobsRequest {
            labels: [("team".to_string(), "rs".to_string())].into(),
            ..Default::default()
        };
        assert_eq!(list(&mut client, by_label).await, [a]);
        let failed = proto::ListJobsRequest {
            states: vec![proto::JobState::Failed.into()],
            ..Default::default()
        };
        assert_eq!(list(&mut client, failed).await, [b]);

        let gate = d.work().join("go");
        let script = format!("echo one; {}; echo two", until_file("go"));
        let follow = submit(&mut client, shell(&d, &script)).await;
        let mut chunks = client
            .logs(proto::LogsRequest {
                id: follow,
                stream: proto::LogStream::Stdout.into(),
                follow: true,
            })
            .await
            .expect("Logs")
            .into_inner();
        let first = chunks.message().await.expect("a chunk").expect("output");
        assert_eq!(first.data, b"one\n");
        std::fs::write(&gate, "").expect("open the gate");
        let mut rest = Vec::new();
        while let Some(chunk) = chunks.message().await.expect("a chunk") {
            rest.extend(chunk.data);
        }
        assert_eq!(rest, b"two\n");

        let sleeper = submit(&mut client, shell(&d, "sleep 30")).await;
        let mut waiting = client
            .wait(proto::WaitRequest { ids: vec![sleeper] })
            .await
            .expect("Wait")
            .into_inner();
        let started = async {
            loop {
                let job = client
                    .get_job(proto::GetJobRequest { id: sleeper })
                    .await
                    .expect("GetJob")
                    .into_inner();
                if job.state() == proto::JobState::Running {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        tokio::time::timeout(DEADLINE, started)
            .await
            .expect("the sleeper started");
        let cancelled = client
            .cancel(proto::CancelRequest { ids: vec![sleeper] })
            .await
            .expect("Cancel")
            .into_inner();
        assert_eq!(
            cancelled.results[0].outcome(),
            proto::CancelOutcome::Signalled
        );
        let ended = waiting.message().await.expect("Wait").expect("a job");
        assert_eq!(ended.state(), proto::JobState::Cancelled);

        let mut events = client
            .events(proto::EventsRequest { follow: false })
            .await
            .expect("Events")
            .into_inner();
        let mut names = Vec::new();
        while let Some(reply) = events.message().await.expect("an event") {
            if let Some(proto::events_reply::Item::Event(e)) = reply.item {
                names.push(e.event);
            }
        }
        assert_eq!(names.first().map(String::as_str), Some("SchedulerBoot"));
        assert!(names.iter().any(|n| n == "JobFinished"), "{names:?}");
    });
}

/// A `Submit` (or `SubmitBatch`) answered over gRPC is durable: the daemon
/// killed with SIGKILL right after the last answer, with nothing else said
/// in between, still has every job when it comes back. The queue is paused
/// so that the jobs are still queued, as they were answered.
#[test]
fn jobs_submitted_over_grpc_survive_kill_9() {
    let mut d = Daemon::start(&[]);
    d.ctl_ok(&["pause", "default"]);
    let socket = grpc_socket(&d);
    let specs: Vec<_> = (0..20)
        .map(|n| shell(&d, &format!("echo job {n}")))
        .collect();
    let ids = runtime().block_on(async {
        let mut client = MayflyClient::new(connect(socket).await);
        let mut ids = client
            .submit_batch(proto::SubmitBatchRequest {
                specs: specs[..3].to_vec(),
            })
            .await
            .expect("SubmitBatch")
            .into_inner()
            .ids;
        for spec in &specs[3..] {
            ids.push(submit(&mut client, spec.clone()).await);
        }
        ids
    });
    d.kill_hard();
    d.restart(&[]);
    assert_eq!(ids.len(), 20);
    for (n, id) in ids.iter().enumerate() {
        let job = d.job(*id);
        assert_eq!(job["command"], format!("echo job {n}"), "{job}");
        assert_eq!(job["state"], "queued", "{job}");
    }
}

/// Shutdown over gRPC drains like the Unix socket's: health turns
/// NOT_SERVING, an open Wait stream ends (its job interrupted by the
/// shutdown, or the call told UNAVAILABLE), the daemon exits 0 and removes
/// the gRPC socket.
#[test]
fn shutdown_over_grpc_ends_open_streams_and_removes_the_socket() {
    let mut d = Daemon::start(&["--shutdown-timeout", "1s"]);
    let socket = grpc_socket(&d);
    runtime().block_on(async {
        let channel = connect(socket.clone()).await;
        let mut client = MayflyClient::new(channel);
        let id = submit(&mut client, shell(&d, "sleep 30")).await;
        let mut waiting = client
            .wait(proto::WaitRequest { ids: vec![id] })
            .await
            .expect("Wait")
            .into_inner();
        client
            .shutdown(proto::ShutdownRequest {
                timeout: Some(prost_types::Duration {
                    seconds: 1,
                    nanos: 0,
                }),
            })
            .await
            .expect("Shutdown");
        let refused = client.submit(proto::SubmitRequest {
            spec: Some(shell(&d, "true")),
        });
        match refused.await {
            Err(e) => assert!(
                matches!(e.code(), tonic::Code::Unavailable),
                "a Submit while shutting down: {e:?}"
            ),
            Ok(reply) => panic!("a Submit while shutting down was taken: {reply:?}"),
        }
        let ended = tokio::time::timeout(DEADLINE, waiting.message())
            .await
            .expect("the Wait stream ended within the deadline");
        match ended {
            Ok(Some(job)) => assert!(
                job.state() != proto::JobState::Running,
                "reported while running: {job:?}"
            ),
            Ok(None) => {}
            Err(e) => assert_eq!(e.code(), tonic::Code::Unavailable, "{e:?}"),
        }
    });
    let status = d.wait_exit(DEADLINE);
    assert!(status.success(), "{status}; log:\n{}", d.log_text());
    assert!(!socket.exists(), "the gRPC socket was left behind");
}

/// `--grpc-addr off` serves no gRPC; `unix:PATH` moves the socket.
#[test]
fn grpc_addr_off_and_unix_path() {
    let d = Daemon::start(&["--grpc-addr", "off"]);
    assert!(
        !grpc_socket(&d).exists(),
        "a gRPC socket with --grpc-addr off"
    );
    drop(d);
    let dir = tempfile::tempdir().expect("a temp dir");
    let elsewhere = dir.path().join("other.sock");
    let arg = format!("unix:{}", elsewhere.display());
    let d = Daemon::start(&["--grpc-addr", &arg]);
    assert!(!grpc_socket(&d).exists(), "the default socket too");
    assert_eq!(mode_of(&elsewhere), 0o600);
}

/// The permission bits of the file at `path`.
fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Calls are counted by method and code, in new families beside the IPC
/// ones.
#[test]
fn grpc_calls_are_counted_by_method_and_code() {
    let (d, addr) = Daemon::start_with_http(&[]);
    let socket = grpc_socket(&d);
    runtime().block_on(async {
        let mut client = MayflyClient::new(connect(socket).await);
        submit(&mut client, shell(&d, "true")).await;
        let _ = client.get_job(proto::GetJobRequest { id: 4242 }).await;
    });
    let scrape = Scrape::parse(
        &get(&format!("http://{addr}/metrics"))
            .expect("/metrics")
            .body,
    );
    let count = |method: &str, code: &str| {
        scrape.value_or_zero(
            "mayfly_grpc_requests_total",
            &[("method", method), ("code", code)],
        )
    };
    assert_eq!(count("Submit", "OK"), 1.0, "{}", scrape.text);
    assert_eq!(count("GetJob", "NotFound"), 1.0, "{}", scrape.text);
    assert_eq!(
        scrape.value_or_zero(
            "mayfly_grpc_request_duration_seconds_count",
            &[("method", "Submit")]
        ),
        1.0
    );
}

/// The error of a call, or of the first message of a stream.
async fn error_of<T>(
    call: Result<tonic::Response<tonic::Streaming<T>>, tonic::Status>,
) -> tonic::Status {
    match call {
        Err(e) => e,
        Ok(stream) => match stream.into_inner().message().await {
            Err(e) => e,
            Ok(_) => panic!("the stream did not fail"),
        },
    }
}

/// Asserts that `e` has `code` and that `mayflyctl args` failed saying
/// `REQUEST failed: ` and then the very message of `e`.
fn same_error(d: &Daemon, e: &tonic::Status, code: tonic::Code, args: &[&str], request: &str) {
    assert_eq!(e.code(), code, "{e:?}");
    let out = d.ctl(args);
    assert!(!out.status.success(), "mayflyctl {args:?} succeeded");
    assert_eq!(
        stderr_of(&out),
        format!("mayflyctl: {request} failed: {}", e.message()),
        "mayflyctl {args:?} and gRPC disagree"
    );
}

/// Each kind of refusal has its status code, and its message is the very
/// line `mayflyctl` prints for the same refusal (after `REQUEST failed:`).
#[test]
fn errors_have_their_codes_and_the_words_of_mayflyctl() {
    let d = Daemon::start(&["--max-jobs", "2"]);
    runtime().block_on(async {
        let mut client = MayflyClient::new(connect(grpc_socket(&d)).await);
        let e = client
            .get_job(proto::GetJobRequest { id: 9999 })
            .await
            .expect_err("an unknown job");
        same_error(&d, &e, tonic::Code::NotFound, &["status", "9999"], "status");
        let e = error_of(client.wait(proto::WaitRequest { ids: vec![9999] }).await).await;
        same_error(&d, &e, tonic::Code::NotFound, &["wait", "9999"], "wait");
        let logs = proto::LogsRequest {
            id: 9999,
            ..Default::default()
        };
        let e = error_of(client.logs(logs).await).await;
        same_error(&d, &e, tonic::Code::NotFound, &["logs", "9999"], "logs");

        let mut waits = shell(&d, "true");
        waits.after.push(proto::Dependency {
            id: 9999,
            ..Default::default()
        });
        let e = client
            .submit(proto::SubmitRequest { spec: Some(waits) })
            .await
            .expect_err("a dependency on no job");
        let args = ["submit", "--after", "9999", "--", "true"];
        same_error(&d, &e, tonic::Code::InvalidArgument, &args, "submit");
        let set = proto::SetQueueRequest {
            name: "nope".into(),
            concurrency: Some(2),
            ..Default::default()
        };
        let e = client.set_queue(set).await.expect_err("an unknown queue");
        let args = ["queue", "set", "nope", "--concurrency", "2"];
        same_error(&d, &e, tonic::Code::InvalidArgument, &args, "queue set");

        let add = proto::AddQueueRequest {
            name: "default".into(),
            ..Default::default()
        };
        let e = client.add_queue(add).await.expect_err("default exists");
        let args = ["queue", "add", "default"];
        same_error(&d, &e, tonic::Code::FailedPrecondition, &args, "queue add");
        let done = submit(&mut client, shell(&d, "true")).await;
        wait(&mut client, &[done]).await;
        let edit = proto::EditRequest {
            id: done,
            priority: Some(3),
            ..Default::default()
        };
        let e = client.edit(edit).await.expect_err("a finished job");
        let args = ["edit", &done.to_string(), "--priority", "3"];
        same_error(&d, &e, tonic::Code::FailedPrecondition, &args, "edit");

        // Two jobs held, and --max-jobs 2.
        submit(&mut client, shell(&d, "true")).await;
        let e = client
            .submit(proto::SubmitRequest {
                spec: Some(shell(&d, "true")),
            })
            .await
            .expect_err("past --max-jobs");
        assert!(e.message().contains("--max-jobs"), "{e:?}");
        let args = ["submit", "--", "true"];
        same_error(&d, &e, tonic::Code::ResourceExhausted, &args, "submit");
    });
}

/// The health service's answer for the door's service.
async fn health_of(channel: Channel) -> i32 {
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "mayfly.v1.Mayfly".into(),
        })
        .await
        .expect("health Check")
        .into_inner()
        .status
}

/// The names of the events of a followed Events stream, until it ends.
async fn event_names(mut stream: tonic::Streaming<proto::EventsReply>) -> Vec<String> {
    let mut names = Vec::new();
    while let Some(reply) = stream.message().await.expect("an event") {
        if let Some(proto::events_reply::Item::Event(e)) = reply.item {
            names.push(e.event);
        }
    }
    names
}

/// While a shutdown is held up by a job that ignores SIGTERM, the door
/// answers as the socket does: health is NOT_SERVING, a Submit is refused
/// UNAVAILABLE with the words `mayflyctl` prints. Followed streams are
/// drained like the socket's: `Logs` gives the job's last output and ends
/// with it, `Events` ends with ShutdownComplete, the same last word a
/// `mayflyctl events --follow` beside it gets, and the daemon exits 0.
#[test]
fn a_stopping_daemon_is_not_serving_and_drains_followed_streams() {
    let mut d = Daemon::start(&["--shutdown-timeout", "20s"]);
    let script = format!(
        "trap '' TERM; echo started; {}; echo released",
        until_file("release")
    );
    runtime().block_on(async {
        let channel = connect(grpc_socket(&d)).await;
        let mut client = MayflyClient::new(channel.clone());
        assert_eq!(health_of(channel.clone()).await, 1, "SERVING");
        let id = submit(&mut client, shell(&d, &script)).await;
        let logs = proto::LogsRequest {
            id,
            stream: proto::LogStream::Stdout.into(),
            follow: true,
        };
        let mut chunks = client.logs(logs).await.expect("Logs").into_inner();
        let first = chunks.message().await.expect("a chunk").expect("output");
        assert_eq!(first.data, b"started\n");
        let events = client
            .events(proto::EventsRequest { follow: true })
            .await
            .expect("Events")
            .into_inner();
        let ctl_events = d.ctl_spawn(&["events", "--follow", "--json"]);
        let ctl_logs = d.ctl_spawn(&["logs", "--follow", &id.to_string()]);
        // Both are connected once they have printed what is there already.
        wait_until(DEADLINE, "mayflyctl's followers to connect", || {
            ctl_logs.stdout_so_far().contains("started")
                && ctl_events.stdout_so_far().contains("JobStarted")
        });

        d.ctl_ok(&["shutdown"]);
        let mut health = 1;
        for _ in 0..200 {
            health = health_of(channel.clone()).await;
            if health != 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert_eq!(health, 2, "NOT_SERVING once the shutdown has begun");
        let e = client
            .submit(proto::SubmitRequest {
                spec: Some(shell(&d, "true")),
            })
            .await
            .expect_err("a Submit while stopping");
        same_error(
            &d,
            &e,
            tonic::Code::Unavailable,
            &["submit", "--", "true"],
            "submit",
        );

        d.touch("release");
        let mut rest = Vec::new();
        let drained = tokio::time::timeout(DEADLINE, async {
            while let Some(chunk) = chunks.message().await.expect("a chunk") {
                rest.extend(chunk.data);
            }
        });
        drained.await.expect("the Logs stream ended");
        assert_eq!(String::from_utf8_lossy(&rest), "released\n");
        let names = tokio::time::timeout(DEADLINE, event_names(events))
            .await
            .expect("the Events stream ended");
        assert_eq!(
            names.last().map(String::as_str),
            Some("ShutdownComplete"),
            "{names:?}"
        );
        assert!(names.iter().any(|n| n == "ShutdownBegin"), "{names:?}");

        let ctl = ctl_events.finish(DEADLINE);
        let last = stdout_of(&ctl)
            .lines()
            .last()
            .unwrap_or_default()
            .to_string();
        assert!(
            last.contains("\"ShutdownComplete\""),
            "mayflyctl's last event: {last}"
        );
        let ctl = ctl_logs.finish(DEADLINE);
        assert_eq!(
            stdout_of(&ctl),
            "started\nreleased",
            "mayflyctl logs --follow"
        );
    });
    let status = d.wait_exit(DEADLINE);
    assert!(status.success(), "{status}; log:\n{}", d.log_text());
    assert!(!grpc_socket(&d).exists(), "the gRPC socket was left behind");
}

/// The body of the first block fenced as `lang` in `text`.
fn fenced<'a>(text: &'a str, lang: &str) -> &'a str {
    let open = format!("```{lang}\n");
    let start = text
        .find(&open)
        .unwrap_or_else(|| panic!("no ```{lang} block in:\n{text}"))
        + open.len();
    let len = text[start..].find("```").expect("the block is closed");
    &text[start..start + len]
}

/// The README's Python client, run as written against a daemon whose
/// socket is where the README looks (`$XDG_RUNTIME_DIR/mayfly/`): its
/// protoc command (with the venv's Python) generates the stubs from the
/// repository's `.proto`, and its program submits `make test` in the
/// current folder, waits for it and prints its output. A `make` of this
/// test's, first on `PATH`, stands in for the real one.
#[test]
fn the_readmes_python_client_runs_as_written() {
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("read the README");
    let section = readme
        .split("\n## gRPC\n")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("the README has a section ## gRPC");
    let commands = fenced(section, "sh").replace("\\\n", " ");
    let protoc = commands
        .lines()
        .find(|l| l.contains("grpc_tools.protoc"))
        .expect("the README says how to generate the stubs");
    let program = fenced(section, "python");

    let dir = tempfile::tempdir().expect("a temp dir");
    let runtime_dir = dir.path().join("run");
    let d = Daemon::start_in(dir, runtime_dir.join("mayfly/mayfly.sock"), &[]);
    // The reader's folder: the repository's proto/ folder is where the
    // README's command looks for it, the stubs land here, the job runs here.
    let here = d.dir().join("client");
    std::fs::create_dir_all(&here).expect("make the client's folder");
    std::os::unix::fs::symlink(repo().join("protocol"), here.join("protocol"))
        .expect("link the proto folder");
    let python = python();
    let protoc = protoc
        .trim()
        .replacen("venv/bin/python", &python.display().to_string(), 1);
    let out = run(Command::new("/bin/sh")
        .args(["-c", &protoc])
        .current_dir(&here));
    assert!(out.status.success(), "{protoc}: {}", stderr_of(&out));

    let bin = d.dir().join("bin");
    std::fs::create_dir_all(&bin).expect("make a bin folder");
    let make = bin.join("make");
    std::fs::write(&make, "#!/bin/sh\necho \"make $*: all tests pass\"\n").expect("write make");
    std::fs::set_permissions(&make, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod make");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = run(Command::new(&python)
        .args(["-c", program])
        .current_dir(&here)
        .env("XDG_RUNTIME_DIR", &runtime_dir)
        .env("PATH", path));
    assert!(
        out.status.success(),
        "the README's program failed: {}",
        stderr_of(&out)
    );
    assert_eq!(
        stdout_of(&out),
        "1 JOB_STATE_SUCCEEDED 0\nmake test: all tests pass",
        "{}",
        stderr_of(&out)
    );
}

/// `preemptible` set over gRPC is honoured like `submit --preemptible`:
/// with one slot, an urgent job submitted over gRPC freezes it, and
/// `GetJob` says `preempted` until the urgent job is done.
#[test]
fn a_preemptible_job_submitted_over_grpc_yields_to_an_urgent_one() {
    let d = Daemon::start(&["--concurrency", "1"]);
    runtime().block_on(async {
        let mut client = MayflyClient::new(connect(grpc_socket(&d)).await);
        let mut low = shell(&d, &until_file("low-done"));
        low.priority = 90;
        low.preemptible = true;
        let low = submit(&mut client, low).await;
        let state = |client: &mut MayflyClient<Channel>, id| {
            let mut client = client.clone();
            async move {
                client
                    .get_job(proto::GetJobRequest { id })
                    .await
                    .expect("GetJob")
                    .into_inner()
            }
        };
        let running = async {
            while state(&mut client, low).await.state() != proto::JobState::Running {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        tokio::time::timeout(DEADLINE, running)
            .await
            .expect("the preemptible job started");
        let mut urgent = shell(&d, &until_file("urgent-done"));
        urgent.priority = 10;
        let urgent = submit(&mut client, urgent).await;
        let frozen = async {
            loop {
                let job = state(&mut client, low).await;
                if job.preempted {
                    return job;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        let job = tokio::time::timeout(DEADLINE, frozen)
            .await
            .expect("the preemptible job was frozen");
        assert_eq!(job.state(), proto::JobState::Running, "{job:?}");
        let urgent_job = state(&mut client, urgent).await;
        assert_eq!(urgent_job.state(), proto::JobState::Running);
        assert!(!urgent_job.preempted);
        assert_eq!(d.job(low)["preempted"], true, "status --json agrees");

        d.touch("urgent-done");
        wait(&mut client, &[urgent]).await;
        let thawed = async {
            while state(&mut client, low).await.preempted {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        tokio::time::timeout(DEADLINE, thawed)
            .await
            .expect("the preemptible job ran again");
        d.touch("low-done");
        let ended = wait(&mut client, &[low]).await;
        assert_eq!(ended[0].state(), proto::JobState::Succeeded);
    });
}
