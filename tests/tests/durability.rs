//! Durability end to end (`docs/durability.md`): what a client was told is
//! on disk survives `kill -9`; a job running at a crash comes back
//! `interrupted`; a full disk refuses changes but keeps serving reads; a
//! snapshot plus the log after it rebuilds exactly the live state; a
//! damaged log stops the daemon until `--repair-wal`, while a torn tail is
//! cut with a warning.
//!
//! Jobs of a daemon killed with SIGKILL keep running (each has its own
//! process group), so every long job here waits for a `release` file that a
//! [`Blockers`] guard creates at the end of the test, and the guard waits for
//! those processes to be gone.
//!
//! `MAYFLY_CRASH_ROUNDS` (default 20) sets how many rounds the crash test
//! runs and `MAYFLY_CRASH_SEED` replays a failing run; `bench/crash-soak.sh`
//! runs the crash test for many rounds.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command as Process;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use mayfly_protocol::{Command, JobInfo, JobSpec, Request, Response, StateHeader, SubmitRequest};
use mayflyd::core::CoreConfig;
use mayflyd::journal::recover;
use mayflyd::wal::WalOptions;
use serde_json::{Map, Value, json};
use tempfile::TempDir;

use crate::helper;
use crate::helper::raw::RawClient;
use crate::helper::wait::sleep_before_random_crash;
use crate::helper::{
    DEADLINE, Daemon, code_of, poll_until, process_gone, read_pid_file, run, stderr_of, stdout_of,
    until_file, wait_until, write_pid,
};

// ------------------------------------------------------------------ fixtures

/// Long-running jobs that wait for the file `release` in a daemon's work
/// folder. On drop the file is created and the guard waits (bounded) until
/// every such job's process is gone, so no job outlives its test — not even
/// one orphaned by a crashed daemon.
struct Blockers {
    /// The daemon's work folder (the jobs' cwd).
    work: PathBuf,
    /// Where each blocker job writes its pid once it runs.
    pid_files: Vec<PathBuf>,
}

impl Blockers {
    /// No blockers yet, for jobs running in `daemon`'s work folder.
    fn new(daemon: &Daemon) -> Self {
        Self {
            work: daemon.work().to_path_buf(),
            pid_files: Vec::new(),
        }
    }

    /// The shell script of a new blocker named `name`: it writes its pid to
    /// `NAME.pid`, prints nothing, and waits for `release`.
    fn script(&mut self, name: &str) -> String {
        let pid_file = format!("{name}.pid");
        self.pid_files.push(self.work.join(&pid_file));
        format!("{}; {}", write_pid(&pid_file), until_file("release"))
    }
}

impl Drop for Blockers {
    /// Releases every blocker and waits for their processes to end.
    fn drop(&mut self) {
        let _ = fs::write(self.work.join("release"), b"");
        for pid_file in &self.pid_files {
            let pid = fs::read_to_string(pid_file)
                .ok()
                .and_then(|s| s.trim().parse::<u32>().ok());
            if let Some(pid) = pid
                && !poll_until(DEADLINE, || process_gone(pid))
            {
                eprintln!("blocker job {pid} is still running after its release");
            }
        }
    }
}

/// A small tmpfs mounted for one test (the full-disk test), unmounted on
/// drop. Declare it before the [`Daemon`] that uses it, so the daemon (and
/// its jobs, whose output files live there) stop before the unmount.
struct Tmpfs {
    /// The mount point.
    mountpoint: PathBuf,
    /// Holds the mount point; removed after the unmount (fields drop after
    /// [`Drop::drop`]).
    _dir: TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (as `mount -o size=` takes it). Fails the
    /// test, with the reason, if that is not possible: the test cannot fake a
    /// full disk any other way, and CI runs as root.
    fn mount(size: &str) -> Self {
        let dir = tempfile::tempdir().expect("create a temp dir");
        let mountpoint = dir.path().join("mnt");
        fs::create_dir(&mountpoint).expect("create the mount point");
        let out = run(Process::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&mountpoint));
        assert!(
            out.status.success(),
            "cannot mount a {size} tmpfs at {} (mount exited {}: {}); this test needs root \
             (CI runs as root; effective uid here: {}) to simulate a full disk",
            mountpoint.display(),
            code_of(&out),
            stderr_of(&out),
            nix::unistd::geteuid()
        );
        Self {
            mountpoint,
            _dir: dir,
        }
    }

    /// The mount point.
    fn path(&self) -> &Path {
        &self.mountpoint
    }
}

impl Drop for Tmpfs {
    /// Unmounts, retrying while a straggling process still holds a file
    /// there, and detaching it lazily as a last resort.
    fn drop(&mut self) {
        // Not `run`: a drop must not panic (it may run during a panic).
        let umount = |extra: &[&str]| {
            Process::new("umount")
                .args(extra)
                .arg(&self.mountpoint)
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|status| status.success())
        };
        if !poll_until(DEADLINE, || umount(&[])) && !umount(&["-l"]) {
            eprintln!("could not unmount {}", self.mountpoint.display());
        }
    }
}

/// SplitMix64: a tiny seeded generator, so a failing crash round can be
/// replayed exactly from the seed it prints.
struct Rng(u64);

impl Rng {
    /// The next 64 random bits.
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `low..=high`.
    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next_u64() % (high - low + 1)
    }

    /// One of `items`.
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        let len = u64::try_from(items.len()).expect("a short list");
        items[usize::try_from(self.next_u64() % len).expect("an index")]
    }
}

/// The number in environment variable `name`, or `default` when unset.
fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Err(_) => default,
        Ok(text) => text
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={text:?} is not a whole number")),
    }
}

/// `PATH` for jobs submitted over the raw protocol.
fn path_env() -> (String, String) {
    (
        "PATH".to_string(),
        std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".to_string()),
    )
}

/// The jobs of a `status --json` array (or of `dump-state`'s `tasks`, system
/// tasks left out), by id.
fn jobs_by_id(jobs: &Value) -> BTreeMap<u64, Map<String, Value>> {
    jobs.as_array()
        .unwrap_or_else(|| panic!("expected an array of jobs, got {jobs}"))
        .iter()
        .filter(|job| job.get("kind").is_none_or(|kind| kind == "job"))
        .map(|job| {
            let obj = job.as_object().expect("a job object").clone();
            let id = obj["id"].as_u64().expect("a numeric job id");
            (id, obj)
        })
        .collect()
}

/// `mayflyctl logs ID`, asserted to succeed.
fn logs(d: &Daemon, id: u64) -> String {
    d.ctl_ok(&["logs", &id.to_string()])
}

/// Runs `mayflyctl wait ID` and returns its exit code (the job's own).
fn wait_for(d: &Daemon, id: u64) -> i32 {
    code_of(&d.ctl(&["wait", &id.to_string()]))
}

/// `DumpState` over the raw protocol: the header and every job.
fn raw_dump(socket: &Path) -> (StateHeader, Vec<JobInfo>) {
    let answer = RawClient::connect(socket).request(&Request::DumpState);
    let mut header = None;
    let mut jobs = Vec::new();
    for response in answer {
        match response {
            Response::State(h) => header = Some(h),
            Response::Jobs(batch) => jobs.extend(batch),
            Response::End => {}
            other => panic!("dump-state answered {other:?}"),
        }
    }
    (header.expect("dump-state sends its header first"), jobs)
}

// --------------------------------------------------------------- crash test

/// Concurrent clients per crash round.
const CLIENTS: usize = 4;

/// Upper bound on one client's submits in one round (the daemon dies long
/// before; the bound only keeps the loop finite).
const MAX_SUBMITS_PER_CLIENT: usize = 5_000;

/// Queues the crash test's jobs are spread over.
const QUEUES: [&str; 4] = ["default", "alpha", "beta", "gamma"];

/// One submit a client sent.
#[derive(Debug, Clone)]
struct Sent {
    /// The job's argv; its second word names the round, client and submit.
    argv: Vec<String>,
    /// Its queue.
    queue: String,
    /// Its priority.
    priority: u8,
}

/// What one client did until the daemon died.
#[derive(Debug, Default)]
struct ClientLog {
    /// Every submit sent, in order. Each waits for its answer before the
    /// next is sent, so only the last can be unanswered.
    sent: Vec<Sent>,
    /// The ids acknowledged: `acked[i]` is the answer to `sent[i]`.
    acked: Vec<u64>,
    /// An answer that was neither an id nor a lost connection.
    unexpected: Option<String>,
}

/// One crash-test client on its own connection: waits for the start signal,
/// then submits distinctive jobs one after another until the connection dies.
fn crash_client(
    mut conn: RawClient,
    work: &Path,
    round: u64,
    client: usize,
    seed: u64,
    start: &Barrier,
) -> ClientLog {
    let mut rng = Rng(seed);
    let mut log = ClientLog::default();
    start.wait();
    for n in 0..MAX_SUBMITS_PER_CLIENT {
        let sent = Sent {
            argv: vec!["true".into(), format!("crash-r{round}-c{client}-n{n}")],
            queue: rng.pick(&QUEUES).to_string(),
            priority: u8::try_from(rng.between(1, 99)).expect("a priority"),
        };
        let spec = JobSpec {
            env: vec![path_env()],
            ..JobSpec::new(
                Command::Argv(sent.argv.clone().try_into().expect("a program")),
                work.display().to_string(),
                sent.queue.clone(),
                sent.priority,
            )
        };
        log.sent.push(sent);
        match conn.try_request(&Request::Submit(SubmitRequest { spec })) {
            Ok(answer) => match answer.as_slice() {
                [Response::Submitted { id }] => log.acked.push(id.0),
                other => {
                    log.unexpected = Some(format!("submit {n} was answered {other:?}"));
                    break;
                }
            },
            // The daemon died: this submit may or may not be durable.
            Err(_) => break,
        }
    }
    log
}

/// Figures of one crash round.
#[derive(Debug, Default, Clone, Copy)]
struct RoundStats {
    /// Submits acknowledged before the kill.
    acked: usize,
    /// Submits that were durable although their client never heard so.
    durable_unacked: usize,
}

/// Checks the state after a crash against what the clients were told:
/// every acknowledged job is there, exactly as submitted; each client's ids
/// grow; nothing appears that no client sent; ids have no holes.
fn check_after_crash(
    jobs: &BTreeMap<u64, Map<String, Value>>,
    (blocker, blocker_script): (u64, &str),
    logs: &[ClientLog],
) -> RoundStats {
    let mut stats = RoundStats::default();
    // Every id from 1 up to the highest: a later record is on disk only if
    // every earlier one is.
    let ids: Vec<u64> = jobs.keys().copied().collect();
    let expected: Vec<u64> = (1..=ids.last().copied().unwrap_or(0)).collect();
    assert_eq!(ids, expected, "the recovered ids have holes");
    assert_eq!(
        jobs[&blocker]["command"],
        json!(blocker_script),
        "the blocker job changed"
    );

    // Which client sent each tag, and at which position.
    let mut by_tag: HashMap<&str, (usize, usize)> = HashMap::new();
    for (c, log) in logs.iter().enumerate() {
        for (i, sent) in log.sent.iter().enumerate() {
            by_tag.insert(sent.argv[1].as_str(), (c, i));
        }
    }

    for (c, log) in logs.iter().enumerate() {
        assert!(
            log.acked.windows(2).all(|w| w[0] < w[1]),
            "client {c}'s acknowledged ids do not increase: {:?}",
            log.acked
        );
        for (i, id) in log.acked.iter().enumerate() {
            let sent = &log.sent[i];
            let job = jobs.get(id).unwrap_or_else(|| {
                panic!("job {id} (client {c}, submit {i}: {sent:?}) was acknowledged but is gone")
            });
            assert_eq!(
                (&job["command"], &job["queue"], &job["priority"]),
                (&json!(sent.argv), &json!(sent.queue), &json!(sent.priority)),
                "job {id} (client {c}, submit {i}) came back different from what was submitted"
            );
        }
        stats.acked += log.acked.len();
    }

    let mut seen_tags = BTreeSet::new();
    for (id, job) in jobs {
        if *id == blocker {
            continue;
        }
        let tag = job["command"]
            .get(1)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("job {id} has a command no client sent: {job:?}"));
        let &(c, i) = by_tag
            .get(tag)
            .unwrap_or_else(|| panic!("job {id} has a command no client sent: {job:?}"));
        assert!(seen_tags.insert(tag), "job {id}: {tag} appears twice");
        let log = &logs[c];
        let sent = &log.sent[i];
        assert_eq!(
            (&job["command"], &job["queue"], &job["priority"]),
            (&json!(sent.argv), &json!(sent.queue), &json!(sent.priority)),
            "job {id} does not match the submit that carried its command"
        );
        if i >= log.acked.len() {
            // Durable but never acknowledged: only the submit in flight at
            // the kill can be that, and it comes after the client's others.
            assert_eq!(
                i + 1,
                log.sent.len(),
                "job {id} ({tag}) is there, but client {c} never sent it unanswered"
            );
            assert!(
                log.acked.last().is_none_or(|last| last < id),
                "job {id} ({tag}) was sent after client {c}'s acknowledged jobs but has a lower id"
            );
            stats.durable_unacked += 1;
        }
    }
    stats
}

/// One crash round: a blocker runs, clients submit concurrently, the daemon
/// is killed with SIGKILL after a random delay, restarts on the same state
/// dir and socket, and must hold everything it acknowledged.
///
/// Odd rounds take a snapshot every 4 KiB of log, so kills also land while
/// snapshots are written and covered segments deleted.
fn crash_round(round: u64, seed: u64) -> RoundStats {
    let mut rng = Rng(seed);
    let args: &[&str] = if round % 2 == 1 {
        &["--concurrency", "1", "--snapshot-bytes", "4096"]
    } else {
        &["--concurrency", "1"]
    };
    let mut d = Daemon::start(args);
    let mut blockers = Blockers::new(&d);
    let blocker_script = blockers.script("blocker");
    let blocker = d.submit_shell(&[], &blocker_script);
    read_pid_file(&d.file("blocker.pid"));

    let start = Arc::new(Barrier::new(CLIENTS + 1));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            // Connected here, so a failed handshake fails the test instead of
            // leaving the others waiting at the barrier.
            let conn = RawClient::connect(d.socket());
            let work = d.work().to_path_buf();
            let start = start.clone();
            let seed = rng.next_u64();
            std::thread::spawn(move || crash_client(conn, &work, round, client, seed, &start))
        })
        .collect();
    let delay = Duration::from_millis(rng.between(3, 100));
    start.wait();
    sleep_before_random_crash(delay);
    d.kill_hard();
    let logs: Vec<ClientLog> = clients
        .into_iter()
        .map(|c| c.join().expect("a crash-test client panicked"))
        .collect();
    for (c, log) in logs.iter().enumerate() {
        assert!(log.unexpected.is_none(), "client {c}: {:?}", log.unexpected);
    }

    d.restart(args);
    let jobs = jobs_by_id(&d.status_json());
    let stats = check_after_crash(&jobs, (blocker, &blocker_script), &logs);
    let highest = jobs.keys().last().copied().unwrap_or(0);
    let next = d.submit(&["--", "true", "after-the-crash"]);
    assert_eq!(
        next,
        highest + 1,
        "the first id after the restart does not follow the recovered ones"
    );
    drop(blockers);
    stats
}

/// Says, when a crash round fails, which one it was and how to run it again
/// (the kill moment is wall-clock time, so a replay is close, not exact).
struct RoundContext {
    /// The failing round.
    round: u64,
    /// The seed of the whole run.
    seed: u64,
}

impl Drop for RoundContext {
    /// Prints the round and seed if the round is failing.
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "crash round {} failed; run it again with MAYFLY_CRASH_SEED={} \
                 MAYFLY_CRASH_ROUNDS={}",
                self.round,
                self.seed,
                self.round + 1
            );
        }
    }
}

/// Acknowledged submits survive `kill -9` at a random moment under
/// concurrent load, exactly as submitted, in order, with no strangers.
#[test]
fn crash_acknowledged_submits_survive_kill_9() {
    let rounds = env_u64("MAYFLY_CRASH_ROUNDS", 20);
    let default_seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    let seed = env_u64("MAYFLY_CRASH_SEED", default_seed);
    eprintln!("crash test: {rounds} rounds, MAYFLY_CRASH_SEED={seed}");
    let mut rng = Rng(seed);
    let started = Instant::now();
    let mut total = RoundStats::default();
    for round in 0..rounds {
        let round_seed = rng.next_u64();
        let context = RoundContext { round, seed };
        let stats = crash_round(round, round_seed);
        drop(context);
        total.acked += stats.acked;
        total.durable_unacked += stats.durable_unacked;
        if rounds > 20 && (round + 1) % 50 == 0 {
            eprintln!(
                "round {}: {} acknowledged, {} durable unacknowledged so far ({:.1}s)",
                round + 1,
                total.acked,
                total.durable_unacked,
                started.elapsed().as_secs_f64()
            );
        }
    }
    eprintln!(
        "crash test: {rounds} rounds in {:.1}s; {} submits acknowledged and recovered, {} \
         durable without an acknowledgement",
        started.elapsed().as_secs_f64(),
        total.acked,
        total.durable_unacked
    );
    assert!(
        total.acked > 0,
        "no submit was ever acknowledged before the kill: the test tested nothing"
    );
}

// --------------------------------------------------- interrupted jobs

/// A job running when the daemon is killed comes back `interrupted` with
/// its output kept; the queued jobs then run; new ids follow the old ones.
#[test]
fn a_job_running_at_a_crash_comes_back_interrupted() {
    let args = ["--concurrency", "1"];
    let mut d = Daemon::start(&args);
    let mut blockers = Blockers::new(&d);
    let script = format!("echo before-the-crash; {}", blockers.script("running"));
    let running = d.submit_shell(&[], &script);
    // It writes its pid after its line of output.
    read_pid_file(&d.file("running.pid"));
    assert_eq!(logs(&d, running), "before-the-crash");
    // Client changes are fsynced, and each fsync also covers the daemon's own
    // earlier record that the running job started.
    let queued: Vec<u64> = (1..=3)
        .map(|n| d.submit_shell(&[], &format!("echo queued-{n}")))
        .collect();
    for id in &queued {
        assert_eq!(d.state(*id), "queued");
    }

    d.kill_hard();
    d.restart(&args);

    let job = d.job(running);
    assert_eq!(job["state"], "interrupted", "after the crash: {job}");
    assert!(job["finished_at"].is_string(), "no finished_at: {job}");
    assert_eq!(job["exit_code"], Value::Null, "{job}");
    assert_eq!(job["attempts"], 1, "{job}");
    assert_eq!(logs(&d, running), "before-the-crash", "its output was lost");
    for (n, id) in (1..).zip(&queued) {
        assert_eq!(wait_for(&d, *id), 0, "queued job {id} did not succeed");
        assert_eq!(logs(&d, *id), format!("queued-{n}"));
    }
    let next = d.submit_shell(&[], "echo after");
    let last = queued.last().copied().unwrap_or(running);
    assert_eq!(
        next,
        last + 1,
        "ids after the restart must continue after {last}"
    );
}

// ------------------------------------------------------------- full disk

/// Fills the file system holding `path` by writing `path` until the write
/// fails with ENOSPC; returns the bytes written.
fn fill_until_enospc(path: &Path) -> u64 {
    let mut file = fs::File::create(path).expect("create the filler file");
    let chunk = vec![0x5a_u8; 64 * 1024];
    let mut written = 0u64;
    // Bounded: a 2 MiB file system fills long before 1024 chunks (64 MiB).
    for _ in 0..1024 {
        match file.write_all(&chunk) {
            Ok(()) => written += chunk.len() as u64,
            Err(e) if e.raw_os_error() == Some(nix::libc::ENOSPC) => return written,
            Err(e) => panic!("writing the filler failed otherwise: {e}"),
        }
    }
    panic!("the file system never filled up after {written} bytes");
}

/// With the state dir's disk full, a submit fails (exit 1, one line naming
/// the disk space), reads still work, and once space is freed submits work
/// again; after a restart every acknowledged job is there and the refused
/// one is not.
#[test]
fn a_full_disk_refuses_changes_and_keeps_serving_reads() {
    let disk = Tmpfs::mount("2m");
    let state = disk.path().join("state");
    let args = ["--concurrency", "1"];
    let mut d = Daemon::start_with_state_dir(&state, &args);
    let mut blockers = Blockers::new(&d);
    // The blocker keeps the other jobs queued; none of them prints, so job
    // output takes no space on the small disk.
    let blocker = d.submit_shell(&[], &blockers.script("blocker"));
    d.wait_state(blocker, "running");
    let mut acked = vec![blocker];
    for n in 1..=3 {
        acked.push(d.submit(&["--", "true", &format!("before-full-{n}")]));
    }

    let filler = disk.path().join("filler");
    fill_until_enospc(&filler);
    // The log goes on in the space it reserved ahead (zeros written before
    // the disk filled up); big records (their environment) use it up.
    // Bounded: 200 × 16 KiB is more than the whole 2 MiB disk.
    let pad = format!("MAYFLY_PAD={}", "p".repeat(16 * 1024));
    let mut refused = None;
    for n in 0..200 {
        let out = d.ctl(&["submit", "--env", &pad, "--", "true", &format!("big-{n}")]);
        if out.status.success() {
            acked.push(stdout_of(&out).trim().parse().expect("an id"));
        } else {
            refused = Some(out);
            break;
        }
    }
    let out = refused.expect("no submit was refused on a full disk");
    let err = stderr_of(&out);
    assert_eq!(code_of(&out), 1, "submit on a full disk: {err}");
    assert_eq!(stdout_of(&out), "", "a refused submit printed an id");
    assert_eq!(err.lines().count(), 1, "not one line: {err}");
    assert!(
        err.contains("No space left on device") && err.contains("free disk space"),
        "the error does not say the disk is full and what to do: {err}"
    );

    let jobs = jobs_by_id(&d.status_json());
    assert_eq!(
        jobs.keys().copied().collect::<Vec<_>>(),
        acked,
        "status on a full disk"
    );
    // Regression: the activity log told of the refused submit (a
    // JobSubmitted and a JobQueued for an id that then named another job).
    let told: Vec<u64> = d
        .ctl_ok(&["--json", "events"])
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).expect("events --json: a JSON line"))
        .filter(|e| e["event"] == "JobSubmitted" || e["event"] == "JobQueued")
        .filter_map(|e| e["id"].as_u64())
        .collect();
    let expected: Vec<u64> = acked.iter().flat_map(|&id| [id, id]).collect();
    assert_eq!(told, expected, "activity of submits on a full disk");

    fs::remove_file(&filler).expect("remove the filler");
    let after = d.submit(&["--", "true", "after-space-freed"]);
    assert!(after > acked[acked.len() - 1], "id {after} after {acked:?}");
    acked.push(after);

    assert!(d.stop().success(), "mayflyd did not stop cleanly");
    d.restart(&args);
    let jobs = jobs_by_id(&d.status_json());
    assert_eq!(
        jobs.keys().copied().collect::<Vec<_>>(),
        acked,
        "jobs after the restart"
    );
    for (n, id) in (1..=3).zip(&acked[1..]) {
        assert_eq!(
            jobs[id]["command"],
            json!(["true", format!("before-full-{n}")])
        );
    }
    assert_eq!(
        jobs[&after]["command"],
        json!(["true", "after-space-freed"])
    );
    drop(blockers);
}

// ------------------------------------------------------- snapshot + replay

/// Field-by-field equality of two job objects, naming the job and field.
fn assert_same_job(id: u64, before: &Map<String, Value>, after: &Map<String, Value>) {
    let fields: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    for field in fields {
        assert_eq!(
            before.get(field),
            after.get(field),
            "job {id}: field {field} differs after the restart\nbefore: {before:?}\nafter:  {after:?}"
        );
    }
}

/// Moves one job from state `from` to `to` in a `dump-state` queue list.
fn move_count(queues: &mut [Value], queue: &Value, from: &str, to: &str) {
    let q = queues
        .iter_mut()
        .find(|q| &q["name"] == queue)
        .unwrap_or_else(|| panic!("no queue {queue}"));
    let counts = &mut q["counts"];
    let dec = counts[from].as_u64().expect("a count") - 1;
    let inc = counts[to].as_u64().expect("a count") + 1;
    counts[from] = json!(dec);
    counts[to] = json!(inc);
}

/// With small snapshots, the state rebuilt from snapshot plus log after
/// `kill -9` equals the live state: exactly, when replayed in process; and
/// over `dump-state` after a restart, apart from what a restart changes (the
/// running job is interrupted, and the next one in line starts).
#[test]
fn snapshot_and_replay_rebuild_the_live_state() {
    let args = ["--concurrency", "1", "--snapshot-bytes", "4096"];
    let mut d = Daemon::start(&args);
    let mut blockers = Blockers::new(&d);

    // Jobs that end, one way or another.
    let ok = d.submit_shell(&["--label", "kind=ok"], "echo ok");
    let fail = d.submit_shell(
        &["--queue", "build", "--priority", "20"],
        "echo oops >&2; exit 3",
    );
    let signalled = d.submit_shell(&["--queue", "test"], "kill -9 $$");
    let unstartable = d.submit(&["--", "/nonexistent/mayfly-no-such-program"]);
    let cancel_me = d.submit_shell(&["--priority", "5"], &blockers.script("cancel-me"));
    read_pid_file(&d.file("cancel-me.pid"));
    d.ctl_ok(&["cancel", &cancel_me.to_string()]);
    let mut fillers = Vec::new();
    for n in 0..10u8 {
        let queue = ["default", "build", "test"][usize::from(n % 3)];
        let priority = (10 + 7 * n).to_string();
        let label = format!("n={n}");
        fillers.push(d.submit_shell(
            &["--queue", queue, "--priority", &priority, "--label", &label],
            &format!("echo filler-{n}"),
        ));
    }
    for id in [ok, fail, signalled, unstartable, cancel_me]
        .iter()
        .chain(&fillers)
    {
        wait_for(&d, *id);
    }
    let expect = [
        (ok, "succeeded"),
        (fail, "failed"),
        (signalled, "failed"),
        (unstartable, "failed"),
        (cancel_me, "cancelled"),
    ];
    for (id, state) in expect {
        assert_eq!(d.state(id), state, "job {id}: {}", d.job(id));
    }

    // Jobs that do not end before the kill: one running, the rest queued
    // behind it; `next` (priority 1) is the one a restart starts.
    let blocker = d.submit_shell(&[], &blockers.script("blocker"));
    read_pid_file(&d.file("blocker.pid"));
    let next = d.submit_shell(&["--priority", "1"], &blockers.script("next"));
    let mut queued = Vec::new();
    for (n, (queue, priority)) in [("default", "10"), ("build", "30"), ("test", "60")]
        .into_iter()
        .enumerate()
    {
        queued.push(d.submit_shell(
            &["--queue", queue, "--priority", priority],
            &format!("echo queued-{n}"),
        ));
    }
    d.ctl_ok(&["cancel", &queued[1].to_string()]);
    // A last client change: its fsync makes every earlier record durable,
    // the daemon's own (job started, job exited) included.
    d.submit_shell(&["--priority", "99"], "echo sentinel");

    let wal = d.wal_dir();
    let has_snapshot = || {
        fs::read_dir(&wal).is_ok_and(|entries| {
            entries
                .flatten()
                .any(|e| e.file_name().to_string_lossy().ends_with(".snap"))
        })
    };
    wait_until(DEADLINE, "a snapshot file in STATE_DIR/wal", has_snapshot);

    let (header, live_jobs) = raw_dump(d.socket());
    let before: Value = serde_json::from_str(&d.ctl_ok(&["dump-state"])).expect("JSON");
    d.kill_hard();

    // Replay in process, before a restart changes anything: exactly the
    // live state (pids are not durable: a snapshot leaves them out, while a
    // job's Spawned record, which may come after the snapshot, sets one).
    let config = CoreConfig {
        concurrency: 1,
        ..CoreConfig::default()
    };
    let recovered = recover(&wal, WalOptions::default(), config).expect("replay the log");
    assert!(
        recovered.stats.snapshot_bytes.is_some(),
        "the replay did not start from a snapshot: {:?}",
        recovered.stats
    );
    let replayed: Vec<JobInfo> = recovered
        .core
        .job_ids()
        .filter_map(|id| recovered.core.job_info(id))
        .map(|job| JobInfo { pid: None, ..job })
        .collect();
    let live: Vec<JobInfo> = live_jobs
        .into_iter()
        .map(|job| JobInfo { pid: None, ..job })
        .collect();
    assert_eq!(replayed.len(), live.len(), "job count");
    for (r, l) in replayed.iter().zip(&live) {
        assert_eq!(r, l, "job {} replayed differently", l.id);
    }
    assert_eq!(recovered.core.scheduler_info(), header.scheduler);
    assert_eq!(recovered.core.queue_infos(), header.queues);
    drop(recovered); // releases the log's lock

    d.restart(&args);
    let after: Value = serde_json::from_str(&d.ctl_ok(&["dump-state"])).expect("JSON");

    let mut jobs_before = jobs_by_id(&before["tasks"]);
    let mut jobs_after = jobs_by_id(&after["tasks"]);
    assert_eq!(
        jobs_before.keys().collect::<Vec<_>>(),
        jobs_after.keys().collect::<Vec<_>>(),
        "job ids after the restart"
    );
    let mut expected_queues = before["queues"].as_array().expect("queues").clone();
    for (id, job) in &mut jobs_before {
        let restarted = jobs_after.get_mut(id).expect("same ids");
        job.remove("pid");
        restarted.remove("pid");
        if *id == blocker {
            assert_eq!(job["state"], "running");
            assert_eq!(restarted["state"], "interrupted", "job {id}: {restarted:?}");
            assert!(restarted["finished_at"].is_string(), "{restarted:?}");
            assert!(restarted["reason"].is_string(), "{restarted:?}");
            // The interrupted attempt joins the job's finished attempts.
            let mut history = job["history"].as_array().cloned().unwrap_or_default();
            history.push(json!({
                "started_at": job["started_at"],
                "finished_at": restarted["finished_at"],
                "exit_code": null,
                "signal": null,
            }));
            assert_eq!(restarted["history"], json!(history), "job {id}: history");
            move_count(
                &mut expected_queues,
                &job["queue"],
                "running",
                "interrupted",
            );
            for field in ["state", "finished_at", "reason", "history"] {
                job.remove(field);
                restarted.remove(field);
            }
        } else if *id == next {
            assert_eq!(job["state"], "queued");
            assert_eq!(restarted["state"], "running", "job {id}: {restarted:?}");
            assert_eq!(restarted["attempts"], 1, "{restarted:?}");
            assert!(restarted["started_at"].is_string(), "{restarted:?}");
            move_count(&mut expected_queues, &job["queue"], "queued", "running");
            for field in ["state", "attempts", "started_at"] {
                job.remove(field);
                restarted.remove(field);
            }
        }
        assert_same_job(*id, job, restarted);
    }
    assert_eq!(
        after["queues"],
        Value::Array(expected_queues),
        "queue counts after the restart"
    );

    let (s0, s1) = (&before["scheduler"], &after["scheduler"]);
    for field in ["concurrency", "quantum_ms", "next_job_id", "jobs_submitted"] {
        assert_eq!(s0[field], s1[field], "scheduler.{field}");
    }
    let plus_one = |v: &Value| json!(v.as_u64().expect("a counter") + 1);
    assert_eq!(s1["jobs_started"], plus_one(&s0["jobs_started"]), "{s1}");
    assert_eq!(s1["jobs_finished"], plus_one(&s0["jobs_finished"]), "{s1}");
    assert_eq!(s1["shutting_down"], false);
    let system_tasks = |v: &Value| -> BTreeSet<String> {
        v["tasks"]
            .as_array()
            .expect("tasks")
            .iter()
            .filter(|t| t["kind"] == "system")
            .map(|t| t["name"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    assert_eq!(system_tasks(&before), system_tasks(&after), "system tasks");
    drop(blockers);
}

/// The daemon keeps one copy of each distinct environment and working
/// directory that jobs share; every job must still run with its own, also
/// after the state was rebuilt from a snapshot plus the log.
#[test]
fn each_job_keeps_its_own_environment_through_a_snapshot_and_a_restart() {
    let args = ["--concurrency", "1", "--snapshot-bytes", "256"];
    let mut d = Daemon::start(&args);
    d.ctl_ok(&["pause", "--all"]);
    let script = "echo \"$WHO${EXTRA:-} $(pwd)\" > \"$OUT/out-$MAYFLY_JOB_ID.txt\"";
    let out = d.work().display().to_string();
    let sub = d.work().join("sub");
    fs::create_dir_all(&sub).expect("create a second working folder");
    let sub = sub.canonicalize().expect("canonical path");
    let jobs: Vec<(u64, String)> = [
        (vec!["--env", "WHO=alice"], "alice", None),
        (vec!["--env", "WHO=bob"], "bob", None),
        (vec!["--env", "WHO=alice"], "alice", None),
        (
            vec!["--env", "WHO=alice", "--env", "EXTRA=+x"],
            "alice+x",
            None,
        ),
        (vec!["--env", "WHO=bob"], "bob", Some(&sub)),
    ]
    .into_iter()
    .map(|(env, who, cwd)| {
        let mut options: Vec<&str> = env;
        let out_env = format!("OUT={out}");
        options.extend(["--env", &out_env]);
        let cwd_text;
        if let Some(cwd) = cwd {
            cwd_text = cwd.display().to_string();
            options.extend(["--cwd", &cwd_text]);
        }
        let id = d.submit_shell(&options, script);
        let dir = cwd.map_or_else(
            || d.work().canonicalize().expect("canonical path"),
            Clone::clone,
        );
        (id, format!("{who} {}\n", dir.display()))
    })
    .collect();

    let wal = d.wal_dir();
    wait_until(DEADLINE, "a snapshot file in STATE_DIR/wal", || {
        fs::read_dir(&wal).is_ok_and(|entries| {
            entries
                .flatten()
                .any(|e| e.file_name().to_string_lossy().ends_with(".snap"))
        })
    });
    d.stop();
    d.restart(&args);
    d.ctl_ok(&["resume", "--all"]);
    for (id, expected) in &jobs {
        assert_eq!(wait_for(&d, *id), 0, "job {id}: {}", d.job(*id));
        let written = fs::read_to_string(d.work().join(format!("out-{id}.txt")))
            .unwrap_or_else(|e| panic!("job {id} wrote no output file: {e}"));
        assert_eq!(&written, expected, "job {id}");
    }
}

// ------------------------------------------------------------------- damage

/// The newest segment file (`<20 digits>.wal`) in `wal`.
fn newest_segment(wal: &Path) -> PathBuf {
    fs::read_dir(wal)
        .expect("list the WAL folder")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".wal"))
                .is_some_and(|stem| stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()))
        })
        .max()
        .unwrap_or_else(|| panic!("no segment in {}", wal.display()))
}

/// Size of a segment's header.
const SEGMENT_HEADER: usize = 24;

/// Size of a record's header: `u32 len | u32 crc | u8 version`.
const RECORD_HEADER: usize = 9;

/// The records of a segment as `(offset, length with header)`; asserts the
/// segment is well formed (magic, whole records, then only the zeros the
/// daemon reserves ahead, if any).
fn segment_records(bytes: &[u8]) -> Vec<(usize, usize)> {
    assert!(
        bytes.len() >= SEGMENT_HEADER && bytes.starts_with(b"MAYFLYWL"),
        "not a segment"
    );
    let mut records = Vec::new();
    let mut offset = SEGMENT_HEADER;
    while offset + RECORD_HEADER <= bytes.len() {
        if bytes[offset..].iter().all(|&b| b == 0) {
            return records; // reserved space
        }
        let len_field: [u8; 4] = bytes[offset..offset + 4].try_into().expect("4 bytes");
        let len = RECORD_HEADER + usize::try_from(u32::from_le_bytes(len_field)).expect("fits");
        if offset + len > bytes.len() {
            break;
        }
        records.push((offset, len));
        offset += len;
    }
    assert_eq!(offset, bytes.len(), "the segment does not end at a record");
    records
}

/// Every file in `dir` (not in its subfolders) with its content.
fn files_in(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fs::read_dir(dir)
        .expect("list a folder")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .map(|p| {
            let content = fs::read(&p).expect("read a file");
            (p, content)
        })
        .collect()
}

/// Starts a daemon, runs three quick jobs and stops it cleanly; returns the
/// stopped daemon and the jobs' ids.
fn daemon_with_a_log() -> (Daemon, Vec<u64>) {
    let mut d = Daemon::start(&[]);
    let ids: Vec<u64> = (1..=3)
        .map(|n| d.submit(&["--", "true", &format!("logged-{n}")]))
        .collect();
    for id in &ids {
        assert_eq!(wait_for(&d, *id), 0, "job {id}");
    }
    assert!(d.stop().success(), "mayflyd did not stop cleanly");
    (d, ids)
}

/// A flipped byte inside the first record (with good records after it) is
/// damage, not a torn write: the daemon refuses to start, names the file,
/// the offset and `--repair-wal`, and changes nothing; `--repair-wal` then
/// backs the segment up and starts.
#[test]
fn a_damaged_record_blocks_the_start_until_repair_wal() {
    let (mut d, _) = daemon_with_a_log();
    let wal = d.wal_dir();
    let segment = newest_segment(&wal);
    let mut bytes = fs::read(&segment).expect("read the segment");
    let records = segment_records(&bytes);
    assert!(records.len() >= 2, "want records after the first");
    let (offset, len) = records[0];
    bytes[offset + RECORD_HEADER + (len - RECORD_HEADER) / 2] ^= 0xff;
    fs::write(&segment, &bytes).expect("damage the segment");
    let untouched = files_in(&wal);

    let (status, log) = d.restart_expecting_failure(&[]);
    assert!(
        status.code().is_some_and(|c| c != 0),
        "mayflyd should exit non-zero (not by a signal) on a damaged log: {status}"
    );
    for needle in [
        segment.display().to_string(),
        format!("offset {offset}"),
        "--repair-wal".to_string(),
    ] {
        assert!(
            log.contains(&needle),
            "the start-up error does not mention {needle:?}:\n{log}"
        );
    }
    assert!(
        files_in(&wal) == untouched,
        "a refused start changed files in {}",
        wal.display()
    );

    d.restart(&["--repair-wal"]);
    let backups: Vec<PathBuf> = fs::read_dir(&wal)
        .expect("list the WAL folder")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.is_dir()
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("backup-"))
        })
        .collect();
    assert_eq!(backups.len(), 1, "backup folders: {backups:?}");
    let name = segment.file_name().expect("a file name");
    assert!(
        fs::read(backups[0].join(name)).is_ok_and(|copy| copy == bytes),
        "the backup does not hold the damaged segment as it was"
    );
    // The log was cut at its first record: nothing after it is kept.
    assert_eq!(d.status_json(), json!([]), "jobs after the repair");
    // But the dropped jobs' output files remain, so their ids stay taken: a
    // new job never appends to an old job's output.
    let new_id = d.submit(&["--", "echo", "new-output"]);
    assert_eq!(new_id, 4, "ids 1-3 have output files and are not reused");
    assert_eq!(wait_for(&d, new_id), 0);
    assert_eq!(stdout_of(&d.ctl(&["logs", "4"])), "new-output");
}

/// A crash leaves job processes running; the next daemon stops exactly
/// those (checked by pid and start time) since it reports them interrupted.
#[test]
fn processes_a_crash_left_running_are_stopped_at_restart() {
    let mut d = Daemon::start(&[]);
    let pid_file = d.file("leader.pid");
    let id = d.submit_shell(
        &[],
        &format!("echo $$ > {}; exec sleep 300", pid_file.display()),
    );
    let pid = read_pid_file(&pid_file);
    d.wait_state(id, "running");
    // The process is logged without waiting for an fsync; a submit is
    // fsynced, and its fsync covers every record logged before it.
    d.submit(&["--", "true"]);
    d.kill_hard();
    assert!(
        !process_gone(pid),
        "a SIGKILLed daemon leaves its job running"
    );
    d.restart(&[]);
    helper::wait_until(DEADLINE, "the leftover job process to be stopped", || {
        process_gone(pid)
    });
    assert_eq!(d.state(id), "interrupted");
}

/// Kills the daemon with SIGKILL right after an acknowledgement and starts
/// it again on the same state.
fn crash_and_restart(d: &mut Daemon, args: &[&str]) {
    d.kill_hard();
    d.restart(args);
}

/// The queue `name` as `queue list --json` shows it, if it exists.
fn queue(d: &Daemon, name: &str) -> Option<Value> {
    let out = d.ctl_ok(&["--json", "queue", "list"]);
    let queues: Value = serde_json::from_str(&out).expect("queue list --json is JSON");
    queues
        .as_array()
        .expect("an array of queues")
        .iter()
        .find(|q| q["name"] == name)
        .cloned()
}

/// Regression: `cancel` of a running job answered "signalled", then a crash
/// made the next daemon forget it: the job came back `interrupted`, or with
/// retries left it ran again. The stop request is in the log before the
/// cancel is acknowledged, so it must win at recovery.
#[test]
fn an_acknowledged_cancel_of_a_running_job_survives_a_crash() {
    let args = ["--concurrency", "1"];
    let mut d = Daemon::start(&args);
    let mut blockers = Blockers::new(&d);
    let script = format!(
        "echo start >> runs; trap '' TERM; {}",
        blockers.script("stubborn")
    );
    let id = d.submit_shell(&["--retries", "3", "--retry-delay", "1s"], &script);
    read_pid_file(&d.file("stubborn.pid"));
    let out = d.ctl_ok(&["cancel", &id.to_string()]);
    assert!(out.contains("signalled"), "{out}");
    crash_and_restart(&mut d, &args);

    let job = d.job(id);
    assert_eq!(job["state"], "cancelled", "after the crash: {job}");
    assert_eq!(job["attempts"], 1, "it must not run again: {job}");
    // Nothing starts it again later either: a job submitted after it runs
    // and ends while `runs` still has one line.
    let after = d.submit(&["--", "true"]);
    assert_eq!(wait_for(&d, after), 0);
    assert_eq!(
        fs::read_to_string(d.file("runs")).expect("the job's runs file"),
        "start\n",
        "the cancelled job ran again"
    );
}

/// Regression: `wait` told a client a job succeeded while the job's exit
/// was not yet in the log; a crash then brought the job back `interrupted`
/// (or, with retries left, ran it again). A job's end is durable before
/// anyone is told of it — whether the wait came before the end or after.
#[test]
fn a_job_end_reported_by_wait_survives_a_crash() {
    // The daemon's own records would otherwise be synced by the flusher
    // within 100ms, which could hide the bug.
    let args = ["--wal-flush-interval", "1h"];
    let mut d = Daemon::start(&args);
    d.ctl_ok(&["pause", "default"]);
    let first = d.submit(&["--", "true"]);
    let waited = d.ctl_spawn(&["wait", &first.to_string()]);
    wait_until(DEADLINE, "the daemon to take the wait", || {
        d.log_text().contains(r#"kind="wait""#)
    });
    d.ctl_ok(&["resume", "default"]);
    let out = waited.finish(DEADLINE);
    assert_eq!(code_of(&out), 0, "{}", stderr_of(&out));
    let second = d.submit(&["--", "true"]);
    wait_until(DEADLINE, "the second job to end", || {
        d.state(second) == "succeeded"
    });
    assert_eq!(wait_for(&d, second), 0);
    crash_and_restart(&mut d, &args);
    assert_eq!(d.state(first), "succeeded");
    assert_eq!(d.state(second), "succeeded");
}

/// Every kind of request that changes state is durable once acknowledged:
/// after each acknowledgement the daemon is killed with SIGKILL and
/// restarted, and the change is still there.
#[test]
fn every_acknowledged_change_survives_a_crash() {
    let args = ["--concurrency", "1"];
    let mut d = Daemon::start(&args);
    let mut blockers = Blockers::new(&d);

    // cancel of a queued job (one runs, so the next one stays queued)
    let blocker = d.submit_shell(&[], &blockers.script("first"));
    read_pid_file(&d.file("first.pid"));
    let queued = d.submit(&["--", "true"]);
    assert_eq!(d.state(queued), "queued");
    d.ctl_ok(&["cancel", &queued.to_string()]);
    crash_and_restart(&mut d, &args);
    assert_eq!(d.state(queued), "cancelled");
    assert_eq!(d.state(blocker), "interrupted");

    // cancel of a waiting job
    let waiting = d.submit(&["--delay", "1h", "--", "true"]);
    assert_eq!(d.state(waiting), "waiting");
    d.ctl_ok(&["cancel", &waiting.to_string()]);
    crash_and_restart(&mut d, &args);
    assert_eq!(d.state(waiting), "cancelled");

    // queue add, set; pause and resume with and without --running
    d.ctl_ok(&["queue", "add", "q", "--concurrency", "2"]);
    crash_and_restart(&mut d, &args);
    assert_eq!(queue(&d, "q").expect("queue q")["concurrency"], 2);
    d.ctl_ok(&["queue", "set", "q", "--concurrency", "3"]);
    crash_and_restart(&mut d, &args);
    assert_eq!(queue(&d, "q").expect("queue q")["concurrency"], 3);
    d.ctl_ok(&["pause", "q"]);
    crash_and_restart(&mut d, &args);
    assert_eq!(queue(&d, "q").expect("queue q")["paused"], true);
    let held = d.submit(&["--queue", "q", "--", "true"]);
    assert_eq!(d.state(held), "queued", "a paused queue starts nothing");
    d.ctl_ok(&["resume", "q"]);
    assert_eq!(wait_for(&d, held), 0, "a resumed queue starts its jobs");
    crash_and_restart(&mut d, &args);
    assert_eq!(queue(&d, "q").expect("queue q")["paused"], false);
    let frozen = d.submit_shell(&["--queue", "q"], &blockers.script("frozen"));
    read_pid_file(&d.file("frozen.pid"));
    d.ctl_ok(&["pause", "--running", "q"]);
    crash_and_restart(&mut d, &args);
    assert_eq!(queue(&d, "q").expect("queue q")["paused"], true);
    assert_eq!(d.state(frozen), "interrupted");
    d.ctl_ok(&["resume", "--running", "q"]);
    crash_and_restart(&mut d, &args);
    assert_eq!(queue(&d, "q").expect("queue q")["paused"], false);

    // edit of a job that has not started
    let edited = d.submit(&["--delay", "1h", "--", "true"]);
    d.ctl_ok(&[
        "edit",
        &edited.to_string(),
        "--priority",
        "7",
        "--queue",
        "q",
        "--label",
        "k=v",
    ]);
    crash_and_restart(&mut d, &args);
    let job = d.job(edited);
    assert_eq!(job["priority"], 7, "{job}");
    assert_eq!(job["queue"], "q", "{job}");
    assert_eq!(job["labels"]["k"], "v", "{job}");
    d.ctl_ok(&["cancel", &edited.to_string()]);

    // progress of a running job
    let reporter = d.submit_shell(&[], &blockers.script("reporter"));
    read_pid_file(&d.file("reporter.pid"));
    d.ctl_ok(&["progress", "--id", &reporter.to_string(), "half", "way"]);
    crash_and_restart(&mut d, &args);
    assert_eq!(d.job(reporter)["progress"], "half way");

    // queue rm, once q holds nothing unfinished
    d.ctl_ok(&["queue", "rm", "q"]);
    crash_and_restart(&mut d, &args);
    assert!(queue(&d, "q").is_none(), "queue q came back");

    // restart of a finished job (its copy held in a paused queue, so the
    // crash does not catch it running), then clean
    d.ctl_ok(&["pause", "default"]);
    let out = d.ctl_ok(&["restart", &waiting.to_string()]);
    let copy: u64 = out
        .parse()
        .unwrap_or_else(|_| panic!("restart printed {out:?}, not an id"));
    crash_and_restart(&mut d, &args);
    assert_eq!(d.state(copy), "queued");
    d.ctl_ok(&["resume", "default"]);
    assert_eq!(wait_for(&d, copy), 0, "the restarted copy runs");
    d.ctl_ok(&["clean", "--state", "succeeded"]);
    crash_and_restart(&mut d, &args);
    for id in [held, copy] {
        let out = d.ctl(&["status", &id.to_string()]);
        assert!(!out.status.success(), "job {id} came back after clean");
    }
}

/// Regression (memory after a restart): snapshots held a copy of every
/// job's environment, so a daemon holding many jobs with a large
/// environment wrote a snapshot larger than its whole memory and came back
/// from it using over ten times the memory it had run in (the figures:
/// `bench/RESULTS.md`, "Figures that used to live in code comments").
/// Snapshots have been format 2 (each shared value once) and are now
/// format 3 (format 2 and the facts about jobs it has no field for). A
/// state dir written by an older build (format 1, the committed fixture
/// `tests/fixtures/snapshot-v1`, made by `mayflyd` before format 2) still
/// loads, job for job, and the next snapshot is the current format.
#[test]
fn a_format_1_snapshot_loads_and_the_next_snapshot_is_the_current_format() {
    let state = tempfile::tempdir().expect("a temp dir");
    let wal = state.path().join("wal");
    fs::create_dir(&wal).expect("create the wal dir");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/snapshot-v1/wal");
    for entry in fs::read_dir(&fixture).expect("the fixture") {
        let entry = entry.expect("a fixture file");
        fs::copy(entry.path(), wal.join(entry.file_name())).expect("copy the fixture");
    }
    let format_of = |dir: &Path| -> Vec<u8> {
        snapshot_files(dir)
            .iter()
            .map(|p| fs::read(p).expect("read a snapshot")[8])
            .collect()
    };
    assert_eq!(format_of(&wal), vec![1]);

    let args = ["--snapshot-bytes", "1"];
    let mut d = Daemon::start_with_state_dir(state.path(), &args);
    let expected = [
        (1, "queued", "slow", 10, json!(["echo", "one"])),
        (2, "queued", "slow", 50, json!(["echo", "two"])),
        (3, "waiting", "default", 50, json!(["echo", "three"])),
        (4, "succeeded", "default", 50, json!(["true"])),
        (5, "waiting", "default", 50, json!(["echo", "five"])),
        (6, "succeeded", "default", 50, json!("echo six")),
    ];
    let check = |d: &Daemon, count: usize| {
        let jobs = jobs_by_id(&d.status_json());
        assert_eq!(jobs.len(), count, "{jobs:?}");
        for (id, state, queue, priority, command) in &expected {
            let job = &jobs[id];
            assert_eq!(job["state"], *state, "job {id}: {job:?}");
            assert_eq!(job["queue"], *queue, "job {id}: {job:?}");
            assert_eq!(job["priority"], *priority, "job {id}: {job:?}");
            assert_eq!(job["command"], *command, "job {id}: {job:?}");
            assert_eq!(job["cwd"], "/", "job {id}: {job:?}");
        }
        assert_eq!(jobs[&1]["labels"]["team"], "ml");
        assert_eq!(jobs[&2]["retries"], 2);
        assert_eq!(jobs[&2]["timeout_ms"], 30_000);
        assert_eq!(jobs[&5]["after"][0]["id"], 1);
    };
    check(&d, expected.len());
    // A change makes the daemon write a snapshot: format 3 now.
    let job = d.submit(&["--queue", "slow", "--", "true"]);
    wait_until(DEADLINE, "a format 3 snapshot", || {
        format_of(&wal) == vec![3]
    });
    d.ctl_ok(&["cancel", &job.to_string()]);
    assert!(d.stop().success(), "mayflyd did not stop cleanly");
    d.restart(&args);
    check(&d, expected.len() + 1);
    // The jobs still run as they were submitted, environment included.
    d.ctl_ok(&["resume", "slow"]);
    assert_eq!(wait_for(&d, 1), 0);
    assert_eq!(logs(&d, 1), "one");
}

/// The resident memory of the daemon, in KiB (`VmRSS` of `/proc/PID/status`).
fn rss_kib(d: &Daemon) -> u64 {
    let pid = d.pid().expect("the daemon runs");
    fs::read_to_string(format!("/proc/{pid}/status"))
        .expect("read its status")
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a VmRSS line")
}

/// Regression: a restart from a snapshot left the daemon at many times the
/// memory it had used live (the figures: `bench/RESULTS.md`, "Figures that
/// used to live in code comments"), because the snapshot held a copy of
/// every job's environment and decoding allocated all of them. Here 20,000
/// jobs with a 2 KiB environment: after the restart the daemon uses about
/// what it used live.
#[test]
fn a_restart_from_a_snapshot_uses_about_the_live_memory() {
    let args = ["--concurrency", "1", "--snapshot-bytes", "1048576"];
    let mut d = Daemon::start(&args);
    d.ctl_ok(&["pause", "default"]);
    let pad = format!("MAYFLY_PAD={}", "p".repeat(2000));
    let lines = "true\n".repeat(20_000);
    fs::write(d.file("jobs.txt"), lines).expect("write the jobs");
    let out = run(Process::new("sh")
        .arg("-c")
        .arg("exec \"$@\" < jobs.txt")
        .arg("sh")
        .arg(helper::bin("mayflyctl"))
        .arg("--socket")
        .arg(d.socket())
        .args(["submit", "--stdin", "--env", &pad])
        .current_dir(d.work()));
    assert_eq!(code_of(&out), 0, "{}", stderr_of(&out));
    assert_eq!(stdout_of(&out).lines().count(), 20_000);
    let live = rss_kib(&d);
    assert!(
        !snapshot_files(&d.wal_dir()).is_empty(),
        "no snapshot was written"
    );
    assert!(d.stop().success(), "mayflyd did not stop cleanly");
    d.restart(&args);
    assert_eq!(d.state(20_000), "queued");
    let restarted = rss_kib(&d);
    assert!(
        restarted < live + live / 2 + 8 * 1024,
        "after the restart {restarted} KiB against {live} KiB live"
    );
}

/// Finds the torn-write warning in the daemon's log and checks it names
/// `dropped` bytes. The socket accepts before recovery has finished (clients
/// queue rather than fail), so the warning may land just after "ready".
fn assert_torn_warning(d: &Daemon, dropped: usize) {
    helper::wait_until(DEADLINE, "the torn-tail warning in the daemon log", || {
        d.log_text()
            .lines()
            .any(|l| l.contains("WARN") && l.contains("torn"))
    });
    let log = d.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("WARN") && l.contains("torn"))
        .unwrap_or_else(|| panic!("no torn-tail warning in the daemon log:\n{log}"));
    assert!(
        line.contains(&format!("dropped_bytes={dropped}")),
        "the warning does not name the {dropped} dropped bytes: {line}"
    );
}

/// A last record cut short by a crash mid-write is a torn tail: the daemon
/// starts, cuts it with a warning naming the dropped bytes, and keeps every
/// record before it.
#[test]
fn a_record_cut_short_at_the_tail_is_dropped_with_a_warning() {
    let (mut d, ids) = daemon_with_a_log();
    let segment = newest_segment(&d.wal_dir());
    let bytes = fs::read(&segment).expect("read the segment");
    let &(offset, len) = segment_records(&bytes).last().expect("a record");
    let cut = 4;
    // The file ends inside the record (the shape a crash leaves when the
    // write grew the file; reserved zeros after the records are gone too).
    fs::write(&segment, &bytes[..offset + len - cut]).expect("tear the last record");

    d.restart(&[]);
    assert_torn_warning(&d, len - cut);
    let now = fs::read(&segment).expect("read the segment");
    assert_eq!(
        now.get(..offset),
        bytes.get(..offset),
        "the good records changed"
    );
    let jobs = jobs_by_id(&d.status_json());
    for id in &ids {
        assert!(jobs.contains_key(id), "job {id} is gone: {jobs:?}");
    }
}

/// A partial record header after the last record (the first 5 bytes of a
/// plausible one, written over the zeros the daemon reserves ahead) is a
/// torn tail: the daemon starts, cuts the torn record with a warning that
/// names its size, and the state is as before.
#[test]
fn a_partial_record_header_at_the_tail_is_dropped_with_a_warning() {
    let (mut d, _) = daemon_with_a_log();
    d.restart(&[]);
    let before = d.status_json();
    assert!(d.stop().success(), "mayflyd did not stop cleanly");

    let segment = newest_segment(&d.wal_dir());
    let bytes = fs::read(&segment).expect("read the segment");
    let &(offset, len) = segment_records(&bytes).last().expect("a record");
    let end = offset + len;
    assert!(
        bytes.len() >= end + len,
        "the daemon reserved no space after its records"
    );
    let mut torn = bytes.clone();
    torn[end..end + 5].copy_from_slice(&bytes[offset..offset + 5]);
    fs::write(&segment, &torn).expect("write a partial record");

    d.restart(&[]);
    // The torn record claims the length of the one it copies.
    assert_torn_warning(&d, len);
    assert_eq!(d.status_json(), before, "the state changed");
    let now = fs::read(&segment).expect("read the segment");
    assert_eq!(now.get(..end), Some(&bytes[..end]), "the records changed");
}

/// Jobs that cannot start (their program does not exist) fail at once,
/// while the log grows past small snapshot thresholds; the state must still
/// replay after a restart.
#[test]
fn snapshots_among_jobs_that_cannot_start_still_replay() {
    let args = ["--concurrency", "1", "--snapshot-bytes", "256"];
    let mut d = Daemon::start(&args);
    let ids: Vec<u64> = (0..20)
        .map(|n| d.submit(&["--", &format!("/nonexistent/mayfly-missing-{n}")]))
        .collect();
    for id in &ids {
        wait_for(&d, *id);
        assert_eq!(d.state(*id), "failed", "job {id}");
    }
    let before = d.status_json();
    assert!(d.stop().success(), "mayflyd did not stop cleanly");
    d.restart(&args);
    assert_eq!(d.status_json(), before, "the state after the restart");
}

/// Snapshot files (`<20 digits>.snap`) in `wal`, sorted.
fn snapshot_files(wal: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = fs::read_dir(wal)
        .expect("list the WAL folder")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "snap"))
        .collect();
    found.sort();
    found
}

/// A restart keeps the snapshot threshold where the state's size put it:
/// with a state far bigger than `--snapshot-bytes`, a few kilobytes of log
/// after a restart do not write the whole state again.
#[test]
fn a_restart_does_not_lower_the_snapshot_threshold() {
    // Each job its own 2 KB environment (a snapshot holds an environment
    // that jobs share only once).
    let pad = |n: usize| format!("MAYFLY_PAD={n}{}", "p".repeat(2000));
    // No snapshot while the state grows: the whole log is replayed later.
    let mut d = Daemon::start(&["--concurrency", "1", "--snapshot-bytes", "100000000"]);
    for n in 0..60 {
        let name = format!("held-{n}");
        d.submit(&["--delay", "1h", "--env", &pad(n), "--", "true", &name]);
    }
    assert!(d.stop().success(), "mayflyd did not stop cleanly");
    assert!(snapshot_files(&d.wal_dir()).is_empty());

    // ~120 KB of log is past 4 KB: the restarted daemon snapshots.
    let args = ["--concurrency", "1", "--snapshot-bytes", "4096"];
    d.restart(&args);
    let wal = d.wal_dir();
    wait_until(DEADLINE, "a snapshot after the restart", || {
        !snapshot_files(&wal).is_empty()
    });
    assert!(d.stop().success(), "mayflyd did not stop cleanly");
    let snapshots = snapshot_files(&wal);
    let size = fs::metadata(snapshots.last().expect("a snapshot"))
        .expect("snapshot size")
        .len();
    assert!(size > 100_000, "the snapshot is only {size} bytes");

    // Again, with a fresh snapshot: ~10 KB of new log is past 4 KB but far
    // below the snapshot's size, so no new snapshot is due. (A snapshot due
    // at a submit is written before the next submit is answered, so the
    // last submit is the point to look.)
    d.restart(&args);
    for n in 0..5 {
        let name = format!("after-{n}");
        d.submit(&["--delay", "1h", "--env", &pad(100 + n), "--", "true", &name]);
    }
    assert_eq!(
        snapshot_files(&wal),
        snapshots,
        "a snapshot of the whole state was written again after a little log"
    );
    assert_eq!(jobs_by_id(&d.status_json()).len(), 65);
}
