//! The `mayflyctl` binary: parse the command line, read the caller's context
//! once, run, and turn the outcome into an exit code. Errors are printed here
//! and only here, as one line prefixed `mayflyctl: `.

use std::io::{BufWriter, Write};
use std::process::ExitCode;

use mayflyctl::{Cli, ClientContext};

fn main() -> ExitCode {
    // Clap prints its own usage errors and exits 2 (help and version: 0).
    let cli = Cli::parse_args();
    let ctx = ClientContext::from_process(&cli);
    let mut out = BufWriter::new(std::io::stdout().lock());
    let outcome = mayflyctl::run(&cli, &ctx, &mut out);
    // `run` has flushed; drop the writer so stdout is complete before stderr.
    drop(out);
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            // Never panic on a closed stderr, unlike `eprintln!`.
            let _ = writeln!(std::io::stderr(), "mayflyctl: {err}");
            ExitCode::from(err.exit_code())
        }
    }
}
