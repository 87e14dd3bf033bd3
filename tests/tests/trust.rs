//! The trust boundary, end to end: who may use a daemon, what it keeps
//! private on disk, which socket folders either side refuses, and the
//! errors a user sees where trust fails (see `docs/security.md`).
//!
//! The daemon runs whatever it is handed as its own user, so each of these
//! tests guards a way to become that user, or to read its secrets, that
//! worked before. They need a second user: the tests run as root (as CI
//! does) and run the real `mayflyctl` and `mayflyd` as uid 65534 (nobody)
//! with `setpriv` (util-linux). Binaries and sockets are put in folders that
//! user can reach. Without root or `setpriv` the tests fail and say why;
//! they never skip.

use std::net::SocketAddr;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::helper;
use crate::helper::http::{Scrape, get};
use crate::helper::{Daemon, bin, code_of, run, stderr_of, stdout_of, tool};

/// The other user: nobody.
pub(crate) const OTHER: u32 = 65534;

/// Fails the test, saying why, unless it runs as root (it must act as
/// another user).
pub(crate) fn require_root() {
    assert_eq!(
        nix::unistd::geteuid().as_raw(),
        0,
        "the trust tests must run as root, to run mayflyctl and mayflyd as uid {OTHER} with \
         setpriv (CI runs the suite as root)"
    );
}

/// Sets the permission bits of `path`.
pub(crate) fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {mode:o} {}: {e}", path.display()));
}

/// Gives `path` to uid and gid `OTHER`.
pub(crate) fn give_to_other(path: &Path) {
    std::os::unix::fs::chown(path, Some(OTHER), Some(OTHER))
        .unwrap_or_else(|e| panic!("chown {OTHER} {}: {e}", path.display()));
}

/// The permission bits of `path`, not following a link.
fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .mode()
        & 0o7777
}

/// Puts the workspace binary `name` into `dir` (a hard link, else a copy),
/// where another user can run it whatever the modes of the build folder.
pub(crate) fn reachable_bin(dir: &Path, name: &str) -> PathBuf {
    let to = dir.join(name);
    if !to.exists() && std::fs::hard_link(bin(name), &to).is_err() {
        std::fs::copy(bin(name), &to).expect("copy the binary");
    }
    chmod(&to, 0o755);
    to
}

/// `program` run as uid and gid `OTHER`, with no supplementary groups and
/// no `XDG_RUNTIME_DIR` or `MAYFLY_SOCKET` of ours.
pub(crate) fn as_other(program: &Path) -> Command {
    require_root();
    let mut cmd = Command::new(tool("setpriv", "util-linux"));
    cmd.args([
        format!("--reuid={OTHER}"),
        format!("--regid={OTHER}"),
        "--clear-groups".to_string(),
    ])
    .arg(program)
    .env_remove("XDG_RUNTIME_DIR")
    .env_remove("MAYFLY_SOCKET")
    .current_dir("/");
    cmd
}

/// A daemon run by root whose socket folder (its temp dir) other users may
/// enter, as a daemon meant to serve them would have; `mayflyctl` is put
/// there for them.
fn daemon_others_can_reach(extra_args: &[&str]) -> (Daemon, SocketAddr, PathBuf) {
    require_root();
    let (d, addr) = Daemon::start_with_http(extra_args);
    chmod(d.dir(), 0o755);
    let ctl = reachable_bin(d.dir(), "mayflyctl");
    (d, addr, ctl)
}

/// The value of metric `name` (no labels) on the daemon at `addr`.
fn metric(addr: SocketAddr, name: &str) -> f64 {
    let response = get(&format!("http://{addr}/metrics")).expect("GET /metrics");
    Scrape::parse(&response.body)
        .value(name, &[])
        .unwrap_or_else(|| panic!("no {name} in:\n{}", response.body))
}

/// Asserts `out` failed with `code` and one line on stderr, which it returns.
fn one_line_failure(out: &Output, code: i32, what: &str) -> String {
    let err = stderr_of(out);
    assert_eq!(code_of(out), code, "{what}: exit code; stderr: {err}");
    assert_eq!(err.lines().count(), 1, "{what}: not one line: {err:?}");
    assert!(err.starts_with("mayflyctl: "), "{what}: {err}");
    err
}

/// The jobs the daemon knows, from root's `status --json`.
fn jobs(d: &Daemon) -> Vec<Value> {
    d.status_json().as_array().cloned().unwrap_or_default()
}

// ------------------------------------------------------------ who may connect

/// Guards the regression where any user who could reach the socket (made
/// `0777` here) ran commands as the daemon's user: uid 65534's `submit --
/// touch X` was accepted and X created by root. Now the peer's credentials
/// are checked: one clear line, exit 1, nothing queued, and the refusal is
/// logged with uid and pid and counted.
#[test]
fn a_user_the_daemon_does_not_serve_is_refused_and_runs_nothing() {
    let (d, addr, ctl) = daemon_others_can_reach(&[]);
    chmod(d.socket(), 0o777);
    let planted = d.dir().join("X");
    let out = run(as_other(&ctl)
        .arg("--socket")
        .arg(d.socket())
        .args(["submit", "--", "touch"])
        .arg(&planted));
    let err = one_line_failure(&out, 1, "a refused user's submit");
    assert!(
        err.contains(&format!("uid {OTHER} may not use this daemon"))
            && err.contains(&format!("--allow-uid {OTHER}")),
        "the refusal does not say why and what to do: {err}"
    );
    assert!(stdout_of(&out).is_empty(), "printed an id: {out:?}");
    assert_eq!(jobs(&d), Vec::<Value>::new(), "a job was queued");
    assert!(!planted.exists(), "the refused user's command ran");
    assert_eq!(metric(addr, "mayfly_ipc_refused_peers_total"), 1.0);
    let log = d.log_text();
    let warned = log
        .lines()
        .find(|l| l.contains("WARN") && l.contains("refused a connection"))
        .unwrap_or_else(|| panic!("the refusal was not logged:\n{log}"));
    assert!(warned.contains(&format!("uid={OTHER}")), "{warned}");
    assert!(warned.contains("pid="), "{warned}");
    // Root and the daemon's own user are still served.
    d.ctl_ok(&["status"]);
}

/// `--allow-uid` lets a user in on purpose: the socket is made `0666` so
/// they can connect, and their jobs run (as the daemon's user).
#[test]
fn an_allowed_uid_is_served() {
    let other = OTHER.to_string();
    let (d, addr, ctl) = daemon_others_can_reach(&["--allow-uid", &other]);
    assert_eq!(mode(d.socket()), 0o666, "the socket others must reach");
    let made = d.dir().join("made-by-an-allowed-user");
    let out = run(as_other(&ctl)
        .arg("--socket")
        .arg(d.socket())
        .args(["submit", "--wait", "--", "touch"])
        .arg(&made));
    assert_eq!(code_of(&out), 0, "{}", stderr_of(&out));
    let owner = std::fs::metadata(&made).expect("the job ran").uid();
    assert_eq!(owner, 0, "the job runs as the daemon's user");
    assert_eq!(metric(addr, "mayfly_ipc_refused_peers_total"), 0.0);
}

/// Guards the misleading "no daemon answers … start it with 'mayflyd'" for
/// a socket that exists but is not the user's: the error now says
/// permission was denied, whose socket it is, and what to do (exit 3:
/// nothing was sent).
#[test]
fn permission_denied_says_whose_socket_it_is() {
    let (d, _addr, ctl) = daemon_others_can_reach(&[]);
    let out = run(as_other(&ctl).arg("--socket").arg(d.socket()).arg("status"));
    let err = one_line_failure(&out, 3, "status on root's 0600 socket");
    let socket = d.socket().display().to_string();
    assert!(
        err.contains(&format!("permission denied on {socket}")),
        "{err}"
    );
    assert!(err.contains("belongs to uid 0"), "{err}");
    assert!(err.contains("mode 0600"), "{err}");
    assert!(err.contains(&format!("--allow-uid {OTHER}")), "{err}");
    assert!(!err.contains("no daemon answers"), "{err}");
}

// ---------------------------------------------------------- the socket folder

/// The ways a socket folder can be someone else's: another user's folder,
/// a symbolic link to one, and a folder anyone may write to. Each holds
/// a live socket (the other user's daemon, or a stale one).
struct Traps {
    /// The other user's daemon, killed (by pid) on drop, before `dir` is
    /// removed (fields drop in order).
    _daemon: Option<helper::Running>,
    /// Holds everything; removed at the end.
    dir: tempfile::TempDir,
    /// Another user's folder (`0700`, theirs), with their daemon's socket.
    theirs: PathBuf,
    /// A link to `theirs`.
    link: PathBuf,
    /// Root's folder, `0777`.
    open: PathBuf,
}

impl Traps {
    /// Sets the traps up; with `live`, the other user's daemon serves in
    /// `theirs`.
    fn new(live: bool) -> Self {
        require_root();
        let dir = tempfile::tempdir().expect("a temp dir");
        chmod(dir.path(), 0o755);
        let theirs = dir.path().join("theirs");
        std::fs::create_dir(&theirs).unwrap();
        chmod(&theirs, 0o700);
        give_to_other(&theirs);
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&theirs, &link).unwrap();
        let open = dir.path().join("open");
        std::fs::create_dir(&open).unwrap();
        chmod(&open, 0o777);
        let daemon = live.then(|| other_daemon(dir.path(), &theirs));
        Self {
            _daemon: daemon,
            dir,
            theirs,
            link,
            open,
        }
    }
}

/// Starts `mayflyd` as the other user, on `theirs/mayfly.sock`, and waits
/// for its socket.
pub(crate) fn other_daemon(bins: &Path, theirs: &Path) -> helper::Running {
    {
        let mayflyd = reachable_bin(bins, "mayflyd");
        let mut cmd = as_other(&mayflyd);
        cmd.arg("--socket")
            .arg(theirs.join("mayfly.sock"))
            .arg("--state-dir")
            .arg(theirs.join("state"))
            .args(["--http-addr", "off"])
            .env("HOME", theirs);
        let running = helper::Running::spawn(&mut cmd);
        let socket = theirs.join("mayfly.sock");
        helper::wait_until(
            helper::DEADLINE,
            "the other user's daemon to listen",
            || std::os::unix::net::UnixStream::connect(&socket).is_ok(),
        );
        running
    }
}

/// Guards the regression where, with `XDG_RUNTIME_DIR` unset, another user
/// who created `/tmp/mayfly-$UID` first (or a link there) received every
/// `mayflyctl submit`'s environment. Here their folder holds their live
/// daemon: `mayflyctl` refuses the folder (exit 3, one line naming it and
/// the fix) and sends nothing, so their daemon never sees a job.
#[test]
fn the_client_refuses_a_socket_folder_it_cannot_trust() {
    let traps = Traps::new(true);
    let cases = [
        (traps.theirs.clone(), format!("belongs to uid {OTHER}")),
        (traps.link.clone(), "is a symbolic link".to_string()),
        (traps.open.clone(), "writable by".to_string()),
    ];
    for (folder, problem) in cases {
        let out = run(Command::new(bin("mayflyctl"))
            .arg("--socket")
            .arg(folder.join("mayfly.sock"))
            .args(["submit", "--env", "SECRET=hunter2", "--", "true"])
            .current_dir(traps.dir.path()));
        let err = one_line_failure(&out, 3, &format!("submit to {}", folder.display()));
        assert!(
            err.contains(&folder.display().to_string()) && err.contains(&problem),
            "{err}"
        );
    }
    let status = run(as_other(&reachable_bin(traps.dir.path(), "mayflyctl"))
        .arg("--socket")
        .arg(traps.theirs.join("mayfly.sock"))
        .args(["--json", "status"]));
    assert_eq!(
        stdout_of(&status),
        "[]",
        "the other user's daemon got a job: {}",
        stderr_of(&status)
    );
}

/// Guards the regression where a socket planted by another user, reached
/// through a link in a folder that passes the folder test, received the
/// request: the client now checks the server's peer credentials before it
/// writes, and refuses a server run by another user (exit 3).
#[test]
fn the_client_sends_nothing_to_a_server_run_by_another_user() {
    let traps = Traps::new(true);
    let mine = tempfile::tempdir().expect("a temp dir");
    let planted = mine.path().join("mayfly.sock");
    std::os::unix::fs::symlink(traps.theirs.join("mayfly.sock"), &planted).unwrap();
    let out = run(Command::new(bin("mayflyctl"))
        .arg("--socket")
        .arg(&planted)
        .args(["submit", "--env", "SECRET=hunter2", "--", "true"])
        .current_dir(mine.path()));
    let err = one_line_failure(&out, 3, "submit to another user's daemon");
    assert!(err.contains("did not send anything"), "{err}");
    assert!(err.contains(&format!("runs as uid {OTHER}")), "{err}");
    let status = run(as_other(&reachable_bin(traps.dir.path(), "mayflyctl"))
        .arg("--socket")
        .arg(traps.theirs.join("mayfly.sock"))
        .args(["--json", "status"]));
    assert_eq!(stdout_of(&status), "[]", "{}", stderr_of(&status));
}

/// Guards the regression where the daemon used a socket folder another
/// user had created (or linked, or left open to all): it now refuses to
/// start, naming the folder and the fix, and leaves no socket there.
#[test]
fn the_daemon_refuses_a_socket_folder_it_does_not_own_alone() {
    let traps = Traps::new(false);
    let cases = [
        (traps.theirs.clone(), format!("belongs to uid {OTHER}")),
        (traps.link.clone(), "is a symbolic link".to_string()),
        (traps.open.clone(), "chmod go-w".to_string()),
    ];
    for (folder, problem) in cases {
        let state = tempfile::tempdir().expect("a temp dir");
        let out = run(Command::new(bin("mayflyd"))
            .arg("--socket")
            .arg(folder.join("mayfly.sock"))
            .arg("--state-dir")
            .arg(state.path().join("state"))
            .args(["--http-addr", "off"]));
        let err = stderr_of(&out);
        assert_eq!(code_of(&out), 1, "{}: {err}", folder.display());
        assert!(
            err.contains(&folder.display().to_string()) && err.contains(&problem),
            "{err}"
        );
        assert!(
            !folder.join("mayfly.sock").exists(),
            "a socket was bound in {}",
            folder.display()
        );
    }
}

// ------------------------------------------------------------------- files

/// Every path under `dir` (and `dir`) with its mode, not following links.
fn modes_under(dir: &Path) -> Vec<(PathBuf, bool, u32)> {
    let mut found = vec![(dir.to_path_buf(), true, mode(dir))];
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).expect("list") {
            let path = entry.expect("an entry").path();
            let meta = std::fs::symlink_metadata(&path).expect("inspect");
            found.push((path.clone(), meta.is_dir(), meta.mode() & 0o7777));
            if meta.is_dir() {
                folders.push(path);
            }
        }
    }
    found
}

/// Guards the regression where the state dir and what is in it (the WAL
/// and snapshots, which hold each job's environment, and the job logs)
/// were created with the umask's modes (`0755`, `0644`; with umask 000,
/// writable by all). After a run with jobs, a snapshot and a restart,
/// under umask 022 and 000, every folder is `0700` and every file `0600`.
#[test]
fn everything_under_the_state_dir_is_private_whatever_the_umask() {
    for umask in [0o022, 0o000] {
        let mut d = Daemon::start_with_umask(umask, &["--snapshot-bytes", "1"]);
        let ids: Vec<String> = (0..3)
            .map(|i| {
                d.submit_shell(
                    &["--env", "TOKEN=secret"],
                    &format!("echo out{i}; echo err{i} >&2"),
                )
                .to_string()
            })
            .collect();
        let mut args = vec!["wait"];
        args.extend(ids.iter().map(String::as_str));
        d.ctl_ok(&args);
        d.stop();
        d.restart(&[]);
        d.submit_shell(&[], "true");
        d.stop();

        let found = modes_under(d.state_dir());
        let names: Vec<String> = found
            .iter()
            .map(|(p, _, _)| p.display().to_string())
            .collect();
        assert!(
            names.iter().any(|n| n.ends_with(".snap")),
            "no snapshot was written: {names:?}"
        );
        assert!(names.iter().any(|n| n.ends_with(".wal")), "{names:?}");
        assert!(names.iter().any(|n| n.ends_with("1.out")), "{names:?}");
        for (path, is_dir, mode) in &found {
            let want = if *is_dir { 0o700 } else { 0o600 };
            assert_eq!(
                *mode,
                want,
                "umask {umask:03o}: {} is {mode:04o}",
                path.display()
            );
        }
    }
}

/// A state dir left open to others (an older version, a copy, a loose
/// umask) is made private at start, with one warning naming what changed:
/// its folders before the daemon serves, the files below them while it
/// starts.
#[test]
fn a_loose_state_dir_is_tightened_with_one_warning() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let state = dir.path().join("state");
    std::fs::create_dir_all(state.join("logs")).unwrap();
    std::fs::write(state.join("logs/7.out"), b"a secret the job printed").unwrap();
    chmod(&state, 0o755);
    chmod(&state.join("logs"), 0o755);
    chmod(&state.join("logs/7.out"), 0o644);
    let d = Daemon::start_with_state_dir(&state, &[]);
    // The folders are private before the daemon serves; the files below
    // them are gone through while it starts, and the warning comes at the
    // end.
    assert_eq!(mode(&state.join("logs")), 0o700);
    helper::wait_until(helper::DEADLINE, "the warning about the state dir", || {
        d.log_text().contains("private (they were open to others")
    });
    for (path, is_dir, mode) in modes_under(&state) {
        let want = if is_dir { 0o700 } else { 0o600 };
        assert_eq!(mode, want, "{} is {mode:04o}", path.display());
    }
    let log = d.log_text();
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("private"))
        .collect();
    assert_eq!(warnings.len(), 1, "{log}");
    for named in [". 0755->0700", "logs 0755->0700", "logs/7.out 0644->0600"] {
        assert!(warnings[0].contains(named), "{}", warnings[0]);
    }
}

/// A state dir that someone else owns, or that others may write to, is
/// refused at start (exit 1), naming it and the fix, and left as it was.
#[test]
fn a_state_dir_others_could_have_changed_is_refused() {
    require_root();
    let dir = tempfile::tempdir().expect("a temp dir");
    let open = dir.path().join("open");
    std::fs::create_dir(&open).unwrap();
    chmod(&open, 0o777);
    let theirs = dir.path().join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    chmod(&theirs, 0o700);
    give_to_other(&theirs);
    for (state, fix) in [
        (&open, format!("chmod 700 {}", open.display())),
        (&theirs, format!("belongs to uid {OTHER}")),
    ] {
        let out = run(Command::new(bin("mayflyd"))
            .arg("--socket")
            .arg(dir.path().join("s.sock"))
            .arg("--state-dir")
            .arg(state)
            .args(["--http-addr", "off"]));
        let err = stderr_of(&out);
        assert_eq!(code_of(&out), 1, "{err}");
        assert!(err.contains(&state.display().to_string()), "{err}");
        assert!(err.contains(&fix), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            std::fs::read_dir(state).unwrap().next().is_none(),
            "changed"
        );
    }
    assert_eq!(mode(&open), 0o777, "left as it was");
}

/// Guards the regression where a symbolic link at `logs/1.out` made the
/// job's output go to the link's target (another user's file, say): output
/// files are opened with `O_NOFOLLOW`, so the job fails to start, saying
/// why, and the target is untouched.
#[test]
fn job_output_never_goes_through_a_planted_link() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let state = dir.path().join("state");
    std::fs::create_dir_all(state.join("logs")).unwrap();
    let victim = dir.path().join("victim");
    std::fs::write(&victim, b"the victim's data\n").unwrap();
    std::os::unix::fs::symlink(&victim, state.join("logs/1.out")).unwrap();
    let d = Daemon::start_with_state_dir(&state, &[]);
    let id = d.submit_shell(&[], "echo pwned");
    let out = d.ctl(&["wait", &id.to_string()]);
    assert_ne!(code_of(&out), 0, "the job ran: {}", stderr_of(&out));
    let job = d.job(id);
    assert_eq!(job["state"], "failed", "{job}");
    let reason = job["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("symbolic link"), "{job}");
    assert_eq!(std::fs::read(&victim).unwrap(), b"the victim's data\n");
}

/// Guards against `logs` reading through a symbolic link planted in place
/// of a job's output after it ran: the client is told the path is a link,
/// and shown nothing of what it points to.
#[test]
fn logs_never_read_through_a_planted_link() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let state = dir.path().join("state");
    let d = Daemon::start_with_state_dir(&state, &[]);
    let id = d.submit_shell(&[], "echo mine");
    let out = d.ctl(&["wait", &id.to_string()]);
    assert_eq!(code_of(&out), 0, "{}", stderr_of(&out));
    assert_eq!(stdout_of(&d.ctl(&["logs", &id.to_string()])), "mine");
    let victim = dir.path().join("victim");
    std::fs::write(&victim, b"the victim's secret\n").unwrap();
    let output = state.join(format!("logs/{id}.out"));
    std::fs::remove_file(&output).unwrap();
    std::os::unix::fs::symlink(&victim, &output).unwrap();
    let out = d.ctl(&["logs", &id.to_string()]);
    assert_ne!(code_of(&out), 0, "{}", stdout_of(&out));
    assert!(!stdout_of(&out).contains("secret"), "{}", stdout_of(&out));
    assert!(
        stderr_of(&out).contains("symbolic link"),
        "{}",
        stderr_of(&out)
    );
}

// ------------------------------------------------------ misleading errors

/// Guards the regression where `mayflyd`, run as a user who cannot search
/// the folders of its default config file (a `HOME` it cannot read), exited
/// 2 with "cannot read config file" for a file that does not exist. A
/// default file this user cannot see is missing; one it can see but not
/// read is still an error, and so is an unreadable `--config FILE`.
#[test]
fn a_default_config_file_the_user_cannot_see_is_simply_missing() {
    require_root();
    let dir = tempfile::tempdir().expect("a temp dir");
    chmod(dir.path(), 0o755);
    let mayflyd = reachable_bin(dir.path(), "mayflyd");
    // Root's home, as a service user's HOME might be: closed to others.
    let closed = dir.path().join("closed");
    std::fs::create_dir_all(closed.join(".config/mayfly")).unwrap();
    std::fs::write(
        closed.join(".config/mayfly/mayflyd.toml"),
        "concurrency = 3\n",
    )
    .unwrap();
    chmod(&closed, 0o700);
    let print = |home: &Path, extra: &[&str]| {
        run(as_other(&mayflyd)
            .env("HOME", home)
            .env_remove("XDG_CONFIG_HOME")
            .arg("--print-config")
            .args(extra))
    };
    let out = print(&closed, &[]);
    assert_eq!(code_of(&out), 0, "{}", stderr_of(&out));
    assert!(
        stdout_of(&out).contains("(not found)"),
        "{}",
        stdout_of(&out)
    );

    // Visible but unreadable: someone meant it to be used.
    let visible = dir.path().join("visible");
    std::fs::create_dir_all(visible.join(".config/mayfly")).unwrap();
    for folder in ["", ".config", ".config/mayfly"] {
        chmod(&visible.join(folder), 0o755);
    }
    let file = visible.join(".config/mayfly/mayflyd.toml");
    std::fs::write(&file, "concurrency = 3\n").unwrap();
    chmod(&file, 0o600);
    let out = print(&visible, &[]);
    assert_eq!(code_of(&out), 2, "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("cannot read config file"),
        "{out:?}"
    );

    // A file given with --config must be there and readable.
    let given = closed.join(".config/mayfly/mayflyd.toml");
    let out = print(&visible, &["--config", &given.display().to_string()]);
    assert_eq!(code_of(&out), 2, "{}", stderr_of(&out));
}

/// Guards the regression where a 20 MB `--stdin` line made `mayflyctl`
/// exit 1, as if the daemon had refused, though it was the client that
/// could not send it. It is the user's input: a usage error (exit 2)
/// naming the line, before anything is sent (no job of the batch queued).
#[test]
fn a_line_too_large_to_send_is_a_usage_error_naming_it() {
    let d = Daemon::start(&[]);
    let input = d.dir().join("input");
    let huge = "x".repeat(20 << 20);
    std::fs::write(&input, format!("true\n# a comment\necho {huge}\ntrue\n")).unwrap();
    let out = run(Command::new("/bin/sh")
        .arg("-c")
        .arg("exec \"$0\" \"$@\" < \"$INPUT\"")
        .arg(bin("mayflyctl"))
        .arg("--socket")
        .arg(d.socket())
        .args(["submit", "--stdin"])
        .env("INPUT", &input)
        .current_dir(d.work()));
    let err = one_line_failure(&out, 2, "a batch with a 20 MiB line");
    assert!(
        err.contains("line 3 of standard input: the job is too large to send"),
        "{err}"
    );
    assert!(err.contains("16 MiB"), "{err}");
    assert_eq!(
        jobs(&d),
        Vec::<Value>::new(),
        "part of the batch was queued"
    );
}
