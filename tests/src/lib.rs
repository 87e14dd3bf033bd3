//! Support code of the tests crate. The end-to-end tests themselves live in
//! `tests/`; this library holds what is shared with the `gen-docs` binary:
//! rendering the man pages and shell completions of `mayflyctl` and
//! `mayflyd` from their clap definitions.
//!
//! The clap definitions are the one source of truth. [`render_all`] turns
//! them into the exact bytes of every generated file, the `gen-docs` binary
//! ([`write_all`]) puts those bytes under `man/` and `completions/`, and the
//! `docs` test compares them with the committed files, so a changed flag or
//! subcommand fails the tests until the files are regenerated with
//! [`REGENERATE`].
//!
//! Output is deterministic: the man pages carry no date, and
//! neither the man pages nor the completions depend on the terminal or the
//! environment (only the *names* of environment variables are shown).

use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};

use clap::{Command, CommandFactory};
use clap_complete::{Generator, Shell};
use clap_mangen::Man;

/// The command that regenerates every file of [`render_all`].
pub const REGENERATE: &str = "cargo run -p mayfly-tests --bin gen-docs";

/// The folders (relative to the repository root) that hold only generated
/// files; [`write_all`] removes anything else found in them.
pub const GENERATED_DIRS: [&str; 2] = ["man", "completions"];

/// The shells completions are generated for.
const SHELLS: [Shell; 3] = [Shell::Bash, Shell::Zsh, Shell::Fish];

/// The repository root: the parent of this crate's manifest directory.
pub fn repo_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// The clap definition of `mayflyctl`.
pub fn mayflyctl_command() -> Command {
    mayflyctl::command()
}

/// The clap definition of `mayflyd`.
pub fn mayflyd_command() -> Command {
    <mayflyd::config::Args as CommandFactory>::command()
}

/// Every generated file, as its path relative to the repository root and
/// its exact contents, sorted by path:
///
/// - `man/mayflyctl.1`, plus `man/mayflyctl-<sub>.1` for every visible
///   subcommand, recursively (`queue add` gives `mayflyctl-queue-add.1`);
///   the automatic `help` subcommand gets no page;
/// - `man/mayflyd.8` (a daemon: section 8);
/// - `completions/` for bash (`<bin>.bash`), zsh (`_<bin>`) and fish
///   (`<bin>.fish`), for both binaries.
pub fn render_all() -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    man_pages(mayflyctl_command(), "1", &mut files);
    man_pages(mayflyd_command(), "8", &mut files);
    completions(mayflyctl_command(), "mayflyctl", &mut files);
    completions(mayflyd_command(), "mayflyd", &mut files);
    files.sort_by(|a, b| a.0.cmp(&b.0));
    files
}

/// Renders the man page of `cmd` and of each of its visible subcommands,
/// recursively, in `section`, appending them to `files`.
///
/// The help subcommand is disabled first, so it neither gets a page nor is
/// listed on its parent's page. Building the command names each subcommand
/// `<parent>-<sub>` (its file name and title) and gives it the usage line
/// `<parent> <sub>`. Every page's footer names the program and its version
/// (`mayflyctl 0.1.0`, also on the subcommands' pages).
fn man_pages(cmd: Command, section: &str, files: &mut Vec<(PathBuf, Vec<u8>)>) {
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    let source = format!(
        "{} {}",
        cmd.get_name(),
        cmd.get_version().unwrap_or_default()
    );
    add_man_page(cmd, section, &source, files);
}

/// Renders the page of one built command and then those of its visible
/// subcommands.
fn add_man_page(cmd: Command, section: &str, source: &str, files: &mut Vec<(PathBuf, Vec<u8>)>) {
    for sub in cmd.get_subcommands().filter(|sub| !sub.is_hide_set()) {
        add_man_page(sub.clone(), section, source, files);
    }
    // No date, so the pages only change when the command line does. An
    // empty date must still be written as an explicit empty roff argument:
    // clap_mangen writes an empty string as nothing at all, which would move
    // the source ("mayflyctl 0.1.0") into the date's place in the footer.
    let man = Man::new(cmd).section(section).date("\"\"").source(source);
    let mut page = Vec::new();
    man.render(&mut page)
        .expect("rendering into a Vec<u8> cannot fail");
    files.push((
        Path::new("man").join(man.get_filename()),
        escape_non_ascii(&page),
    ));
}

/// Rewrites every non-ASCII character of a rendered page (an em dash in a
/// help text, say) as the roff escape `\[uXXXX]`, so the page is plain
/// ASCII: groff reads it correctly with or without the `preconv` step that
/// `man` adds, and mandoc reads it too.
fn escape_non_ascii(page: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(page);
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            out.push_str(&format!("\\[u{:04X}]", u32::from(c)));
        }
    }
    out.into_bytes()
}

/// Renders the completions of `cmd`, installed as `bin`, for every shell in
/// [`SHELLS`], appending them to `files`.
fn completions(mut cmd: Command, bin: &str, files: &mut Vec<(PathBuf, Vec<u8>)>) {
    for shell in SHELLS {
        let mut script = Vec::new();
        clap_complete::generate(shell, &mut cmd, bin, &mut script);
        files.push((Path::new("completions").join(shell.file_name(bin)), script));
    }
}

/// What [`write_all`] did.
#[derive(Debug, Default)]
pub struct WriteReport {
    /// Files written (or rewritten), relative to the repository root.
    pub written: Vec<PathBuf>,
    /// Files already up to date, left untouched.
    pub unchanged: Vec<PathBuf>,
    /// Files in [`GENERATED_DIRS`] that [`render_all`] no longer produces
    /// (a renamed or removed subcommand), deleted.
    pub removed: Vec<PathBuf>,
}

/// Writes every file of [`render_all`] under `root`, creating folders as
/// needed; files whose contents are already right are not rewritten. Then
/// deletes the files in [`GENERATED_DIRS`] that are not generated any more.
pub fn write_all(root: &Path) -> io::Result<WriteReport> {
    let files = render_all();
    let mut report = WriteReport::default();
    for (rel, contents) in &files {
        let path = root.join(rel);
        if std::fs::read(&path).is_ok_and(|old| old == *contents) {
            report.unchanged.push(rel.clone());
            continue;
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&path, contents)?;
        report.written.push(rel.clone());
    }
    let expected: BTreeSet<&PathBuf> = files.iter().map(|(rel, _)| rel).collect();
    for rel in extra_files(root, &expected)? {
        std::fs::remove_file(root.join(&rel))?;
        report.removed.push(rel);
    }
    Ok(report)
}

/// The files under `root`'s [`GENERATED_DIRS`] (relative to `root`, sorted,
/// recursively) that are not in `expected`. A missing folder has none.
pub fn extra_files(root: &Path, expected: &BTreeSet<&PathBuf>) -> io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for dir in GENERATED_DIRS {
        list_files(root, Path::new(dir), &mut found)?;
    }
    found.retain(|rel| !expected.contains(rel));
    found.sort();
    Ok(found)
}

/// Appends the files under `root/rel` to `found`, as paths relative to
/// `root`, descending into subfolders. A missing folder adds nothing.
fn list_files(root: &Path, rel: &Path, found: &mut Vec<PathBuf>) -> io::Result<()> {
    let entries = match std::fs::read_dir(root.join(rel)) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let child = rel.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            list_files(root, &child, found)?;
        } else {
            found.push(child);
        }
    }
    Ok(())
}
