//! What a person at a terminal sees: `mayflyctl` run inside a real
//! terminal (a detached `tmux` session, 120×40), read back with
//! `tmux capture-pane -e` (which keeps the colour sequences), and the same
//! commands through a pipe, which must stay free of escape codes.
//!
//! Every tmux command names a private server (`-S`, a socket in the test's
//! own temporary folder, like `-L` with a unique name but leaving nothing
//! behind in `/tmp/tmux-UID`), so a user's own tmux is never touched; the
//! [`Tmux`] guard kills the session — and with it that private server — by
//! name when the test ends.
//! tmux is the Debian package `tmux`; `contrib/test` installs it.

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::helper;
use crate::helper::{DEADLINE, Daemon, bin, poll_until, run, stderr_of, stdout_of, until_file};

/// Gives each session of this test process its own name.
static SESSIONS: AtomicU32 = AtomicU32::new(0);

/// A detached tmux session on a private tmux server, running one shell
/// command in a 120×40 terminal; killed (by its name) on drop.
struct Tmux {
    /// The session's name, unique to the test run.
    name: String,
    /// Holds the private server's socket; removed after the session is killed.
    dir: tempfile::TempDir,
}

impl Tmux {
    /// Starts `command` (a shell command line) in a new session. The pane
    /// stays open for a while after the command ends, so its output can be
    /// read; the guard ends it sooner.
    fn start(command: &str) -> Self {
        assert!(
            run(Command::new("sh").args(["-c", "command -v tmux"]))
                .status
                .success(),
            "tmux is not on PATH: run the suite with contrib/test, which installs it, \
             or install the Debian package tmux yourself"
        );
        let name = format!(
            "mayfly-tty-{}-{}",
            std::process::id(),
            SESSIONS.fetch_add(1, Ordering::Relaxed)
        );
        let dir = tempfile::tempdir().expect("a temp dir for the tmux socket");
        let tmux = Self { name, dir };
        let out = run(tmux.command().args([
            "new-session",
            "-d",
            "-s",
            &tmux.name,
            "-x",
            "120",
            "-y",
            "40",
            &format!("{command}; sleep 30"),
        ]));
        assert!(
            out.status.success(),
            "tmux new-session failed: {}",
            stderr_of(&out)
        );
        tmux
    }

    /// A `tmux` command on this test's private server.
    fn command(&self) -> Command {
        let mut cmd = Command::new("tmux");
        // Inside a user's tmux, $TMUX names their server: never inherit it.
        cmd.arg("-S")
            .arg(self.dir.path().join("tmux.sock"))
            .env_remove("TMUX");
        cmd
    }

    /// The pane's text, with colour and attribute sequences (`-e`).
    fn capture(&self) -> String {
        let out = run(self
            .command()
            .args(["capture-pane", "-p", "-e", "-t", &self.name]));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Captures until `ready` holds for the screen, and returns that screen;
    /// fails with the last screen after [`DEADLINE`].
    fn wait_for(&self, what: &str, ready: impl Fn(&str) -> bool) -> String {
        let mut screen = String::new();
        let seen = poll_until(DEADLINE, || {
            screen = self.capture();
            ready(&screen)
        });
        assert!(
            seen,
            "timed out after {DEADLINE:?} waiting for {what}; the screen:\n{screen}"
        );
        screen
    }
}

impl Drop for Tmux {
    /// Kills the session by name (its private server then exits, having no
    /// session left).
    fn drop(&mut self) {
        let _ = run(self.command().args(["kill-session", "-t", &self.name]));
    }
}

/// `mayflyctl --socket S` as a quoted shell command prefix, with the
/// colour switch `NO_COLOR` removed from the environment unless asked for.
fn ctl_line(d: &Daemon, no_color: bool) -> String {
    let env = if no_color {
        "env NO_COLOR=1"
    } else {
        "env -u NO_COLOR"
    };
    format!(
        "cd '{}' && {env} TERM=xterm-256color '{}' --socket '{}'",
        d.work().display(),
        bin("mayflyctl").display(),
        d.socket().display()
    )
}

/// `text` without ANSI escape sequences (CSI ... final byte).
fn strip_escapes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A daemon with a succeeded, a failed and a running job (the last with a
/// command far wider than the terminal); returns the running job's id.
fn daemon_with_jobs() -> (Daemon, u64) {
    let d = Daemon::start(&[]);
    let ok = d.submit(&["--", "true"]);
    let bad = d.submit(&["--", "false"]);
    let long = format!("{}; : {}", until_file("release"), "x".repeat(200));
    let running = d.submit_shell(&[], &long);
    assert_eq!(
        helper::code_of(&d.ctl(&["wait", &ok.to_string(), &bad.to_string()])),
        1
    );
    d.wait_state(running, "running");
    (d, running)
}

/// On a terminal, `status` is an aligned table cut to the terminal's width,
/// with states in colour.
#[test]
fn status_on_a_terminal_is_a_coloured_table_that_fits() {
    let (d, running) = daemon_with_jobs();
    let tmux = Tmux::start(&format!("{} status", ctl_line(&d, false)));
    let screen = tmux.wait_for("the status table", |s| s.contains("running"));
    let plain = strip_escapes(&screen);
    let lines: Vec<&str> = plain.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        [
            "ID", "STATE", "QUEUE", "PRI", "EXIT", "ATTEMPTS", "WHEN", "PROGRESS", "COMMAND"
        ],
        "{plain}"
    );
    assert!(lines[1].starts_with("1   succeeded  default"), "{plain}");
    assert!(lines[2].starts_with("2   failed     default"), "{plain}");
    let row = lines[3];
    assert!(row.starts_with(&format!("{running}   running")), "{plain}");
    assert!(row.ends_with('…'), "the long command is cut: {row:?}");
    assert!(row.chars().count() <= 120, "{row:?}");
    // Colour: green succeeded, red failed, yellow running, a bold header.
    assert!(screen.contains("\u{1b}[32msucceeded"), "{screen:?}");
    assert!(screen.contains("\u{1b}[31mfailed"), "{screen:?}");
    assert!(screen.contains("\u{1b}[33mrunning"), "{screen:?}");
    assert!(screen.contains("\u{1b}[1mID"), "{screen:?}");
    d.touch("release");
}

/// `NO_COLOR` (any value) turns colour off, even on a terminal.
#[test]
fn no_color_turns_colour_off_on_a_terminal() {
    let (d, _) = daemon_with_jobs();
    let tmux = Tmux::start(&format!("{} status", ctl_line(&d, true)));
    let screen = tmux.wait_for("the status table", |s| s.contains("running"));
    assert!(screen.contains("succeeded"), "{screen}");
    assert!(!screen.contains('\u{1b}'), "no escape codes: {screen:?}");
    d.touch("release");
}

/// Through a pipe, `status` has no escape codes (also run in a terminal,
/// so only the pipe can be what turns colour off), and nothing is cut.
#[test]
fn piped_status_has_no_escape_codes() {
    let (d, _) = daemon_with_jobs();
    let tmux = Tmux::start(&format!("{} status | cat", ctl_line(&d, false)));
    let screen = tmux.wait_for("the piped status table", |s| s.contains("running"));
    assert!(!screen.contains('\u{1b}'), "no escape codes: {screen:?}");

    let out = d.ctl(&["status"]);
    let text = stdout_of(&out);
    assert!(!text.contains('\u{1b}'), "{text:?}");
    assert!(
        text.contains(&"x".repeat(200)),
        "a pipe gets the whole command"
    );
    d.touch("release");
}

/// On a terminal, `wait` draws a progress bar on stderr counting the jobs
/// done, next to the per-job lines; without a terminal it draws nothing.
#[test]
fn wait_on_a_terminal_shows_a_progress_bar() {
    let d = Daemon::start(&[]);
    let a = d.submit_shell(&[], &until_file("release-a"));
    let b = d.submit_shell(&[], &until_file("release-b"));
    let tmux = Tmux::start(&format!("{} wait {a} {b}", ctl_line(&d, false)));
    tmux.wait_for("the bar at 0 of 2", |s| s.contains("0/2 jobs done"));
    d.touch("release-a");
    let screen = tmux.wait_for("the bar at 1 of 2", |s| s.contains("1/2 jobs done"));
    assert!(
        screen.contains(&format!("{a} succeeded (exit 0)")),
        "{screen}"
    );
    d.touch("release-b");
    let screen = tmux.wait_for("the bar at 2 of 2", |s| s.contains("2/2 jobs done"));
    assert!(
        screen.contains(&format!("{b} succeeded (exit 0)")),
        "{screen}"
    );

    // Not a terminal: the lines, and nothing on stderr.
    let out = d.ctl(&["wait", &a.to_string(), &b.to_string()]);
    assert!(out.status.success());
    assert_eq!(stderr_of(&out), "", "no bar without a terminal");
    assert_eq!(
        stdout_of(&out),
        format!("{a} succeeded (exit 0)\n{b} succeeded (exit 0)")
    );
    // --quiet: no lines; the bar alone tells on a terminal.
    let quiet = Tmux::start(&format!("{} wait --quiet {a} {b}", ctl_line(&d, false)));
    let screen = quiet.wait_for("the finished bar", |s| s.contains("2/2 jobs done"));
    assert!(!screen.contains("succeeded (exit"), "{screen}");
}
