//! Regenerates the man pages (`man/`) and shell completions (`completions/`)
//! of `mayflyctl` and `mayflyd` from their clap definitions:
//!
//! ```text
//! cargo run -p mayfly-tests --bin gen-docs
//! ```
//!
//! Run it after changing a subcommand, flag or help text, and commit the
//! result; the `docs` test fails while the committed files are stale. Files in
//! those two folders that are no longer generated are deleted.

use std::process::ExitCode;

/// Writes every generated file under the repository root and prints what
/// changed.
fn main() -> ExitCode {
    let root = mayfly_tests::repo_root();
    let report = match mayfly_tests::write_all(&root) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("gen-docs: writing under {}: {e}", root.display());
            return ExitCode::FAILURE;
        }
    };
    for path in &report.written {
        println!("wrote     {}", path.display());
    }
    for path in &report.unchanged {
        println!("unchanged {}", path.display());
    }
    for path in &report.removed {
        println!("removed   {}", path.display());
    }
    println!(
        "gen-docs: {} written, {} unchanged, {} removed under {}",
        report.written.len(),
        report.unchanged.len(),
        report.removed.len(),
        root.display()
    );
    ExitCode::SUCCESS
}
