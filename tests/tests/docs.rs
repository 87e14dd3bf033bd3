//! The committed man pages (`man/`) and shell completions (`completions/`)
//! are exactly what the clap definitions render today, and they are sound:
//! the top page names every subcommand, the completions know `submit`, and
//! groff formats every page without a warning. And the README and `docs/`
//! link only to files that exist.
//!
//! When a test here fails after a change to a command line, regenerate with
//! `cargo run -p mayfly-tests --bin gen-docs` and commit the result.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use mayfly_tests::{REGENERATE, extra_files, mayflyctl_command, render_all, repo_root};

/// Reads a committed file, relative to the repository root, failing the test
/// with the regeneration hint if it cannot be read.
fn read_committed(rel: &str) -> String {
    let path = repo_root().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!("{rel} cannot be read ({e}): run `{REGENERATE}` and commit the result")
    })
}

/// The names of `mayflyctl`'s visible subcommands, without `help`.
fn subcommand_names() -> Vec<String> {
    mayflyctl_command()
        .get_subcommands()
        .filter(|sub| !sub.is_hide_set() && sub.get_name() != "help")
        .map(|sub| sub.get_name().to_owned())
        .collect()
}

#[test]
fn committed_docs_match_the_clap_definitions() {
    let root = repo_root();
    let files = render_all();
    let mut problems = Vec::new();
    for (rel, rendered) in &files {
        match std::fs::read(root.join(rel)) {
            Ok(committed) if committed == *rendered => {}
            Ok(_) => problems.push(format!(
                "{} is stale: run `{REGENERATE}` and commit the result",
                rel.display()
            )),
            Err(e) => problems.push(format!(
                "{} is missing ({e}): run `{REGENERATE}` and commit the result",
                rel.display()
            )),
        }
    }
    let expected: BTreeSet<&PathBuf> = files.iter().map(|(rel, _)| rel).collect();
    let extra = extra_files(&root, &expected).expect("listing man/ and completions/");
    for rel in extra {
        problems.push(format!(
            "{} is no longer generated: run `{REGENERATE}` (it deletes the file) and commit the result",
            rel.display()
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn rendering_is_deterministic() {
    assert_eq!(render_all(), render_all());
}

#[test]
fn every_generated_path_is_unique_and_relative() {
    let files = render_all();
    let paths: BTreeSet<&PathBuf> = files.iter().map(|(rel, _)| rel).collect();
    assert_eq!(paths.len(), files.len(), "two files share a path");
    for rel in paths {
        assert!(rel.is_relative(), "{} is absolute", rel.display());
    }
}

#[test]
fn the_expected_files_are_generated() {
    let files = render_all();
    let paths: BTreeSet<&Path> = files.iter().map(|(rel, _)| rel.as_path()).collect();
    let mut wanted = vec![
        "man/mayflyctl.1".to_owned(),
        "man/mayflyd.8".to_owned(),
        "completions/mayflyctl.bash".to_owned(),
        "completions/_mayflyctl".to_owned(),
        "completions/mayflyctl.fish".to_owned(),
        "completions/mayflyd.bash".to_owned(),
        "completions/_mayflyd".to_owned(),
        "completions/mayflyd.fish".to_owned(),
    ];
    wanted.extend(
        subcommand_names()
            .iter()
            .map(|sub| format!("man/mayflyctl-{sub}.1")),
    );
    for want in &wanted {
        assert!(
            paths.contains(Path::new(want)),
            "{want} is not generated; generated: {paths:?}"
        );
    }
    assert!(
        !paths.contains(Path::new("man/mayflyctl-help.1")),
        "the help subcommand must not get a page"
    );
}

#[test]
fn the_top_man_page_names_every_subcommand() {
    let page = read_committed("man/mayflyctl.1");
    let names = subcommand_names();
    assert!(!names.is_empty(), "mayflyctl has no subcommands?");
    for name in names {
        // Each is listed as a reference to its own page: mayflyctl-NAME(1).
        // roff escapes '-' as '\-', so compare with the escape removed.
        let listed = format!("mayflyctl-{name}(1)");
        assert!(
            page.replace("\\-", "-").contains(&listed),
            "man/mayflyctl.1 does not mention the subcommand {name} (as {listed})"
        );
    }
}

#[test]
fn the_bash_completion_knows_submit() {
    let script = read_committed("completions/mayflyctl.bash");
    assert!(
        script.contains("submit"),
        "completions/mayflyctl.bash does not mention submit"
    );
}

/// Every committed man page formats with `groff -man -Tutf8` without a
/// warning or error on stderr.
///
/// groff comes from the Debian/Ubuntu package `groff-base`, which
/// `contrib/test` installs; without it this test fails and says so.
#[test]
fn groff_formats_every_man_page_without_warnings() {
    let pages: Vec<PathBuf> = render_all()
        .into_iter()
        .map(|(rel, _)| rel)
        .filter(|rel| rel.starts_with("man"))
        .collect();
    assert!(!pages.is_empty());
    for rel in pages {
        let path = repo_root().join(&rel);
        let output = match Command::new("groff")
            .args(["-man", "-Tutf8", "-ww", "-z"])
            .arg(&path)
            .stdin(Stdio::null())
            .output()
        {
            Ok(output) => output,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                "groff is not on PATH: run the suite with contrib/test, which installs it, \
                 or install the Debian package groff-base yourself"
            ),
            Err(e) => panic!("running groff on {}: {e}", rel.display()),
        };
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success() && stderr.trim().is_empty(),
            "groff -man -Tutf8 on {} ({}):\n{stderr}",
            rel.display(),
            output.status
        );
    }
}

/// The Markdown links of `text` (`[label](target)`) that point into the
/// repository: not a URL, not an anchor of the same page.
fn local_links(text: &str) -> Vec<String> {
    let mut links = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("](") {
        rest = &rest[at + 2..];
        let Some(end) = rest.find(')') else { break };
        let target = &rest[..end];
        let target = target.split('#').next().unwrap_or_default();
        if !target.is_empty() && !target.contains("://") && !target.starts_with("mailto:") {
            links.push(target.to_owned());
        }
        rest = &rest[end..];
    }
    links
}

/// Every link between the README and the documents in `docs/` leads to a
/// file that exists, so the repository's own documentation has no dead
/// ends when a file is renamed.
#[test]
fn the_readme_and_docs_link_only_to_files_that_exist() {
    let root = repo_root();
    let mut pages = vec![PathBuf::from("README.md")];
    let docs = std::fs::read_dir(root.join("docs")).expect("docs/ exists");
    for entry in docs {
        let path = entry.expect("a docs/ entry").path();
        if path.extension().is_some_and(|e| e == "md") {
            pages.push(path.strip_prefix(&root).expect("under the root").to_owned());
        }
    }
    let mut dead = Vec::new();
    let mut seen = 0;
    for page in &pages {
        let text = read_committed(page.to_str().expect("a UTF-8 path"));
        let folder = page.parent().unwrap_or(Path::new(""));
        for link in local_links(&text) {
            seen += 1;
            if !root.join(folder).join(&link).exists() {
                dead.push(format!("{}: {link}", page.display()));
            }
        }
    }
    assert!(seen > 10, "only {seen} links found: is the parser right?");
    assert!(
        dead.is_empty(),
        "links to missing files:\n{}",
        dead.join("\n")
    );
}
