//! `floor-client SOCKET`: the smallest client that submits a job.
//!
//! It connects to the Unix socket, writes the handshake and one submit of a
//! trivial job (`true`, from `/`, with only `PATH` set) in a single write,
//! reads the two answers, prints the new job's id and exits 0. It parses no
//! flags, captures no environment and starts no runtime, so its wall time is
//! the floor for one `mayflyctl submit`: process start-up plus one round
//! trip. The socket may also come from `MAYFLY_SOCKET`.
//!
//! Exit codes follow `mayflyctl`: 1 the daemon refused or failed the request,
//! 2 usage error, 3 the daemon could not be reached.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use mayfly_bench::{BenchError, Client, submit_frame};

/// Parses the one argument, submits, and maps failures to exit codes.
fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let socket = match (args.next(), args.next()) {
        (Some(arg), None) if arg != "-h" && arg != "--help" => PathBuf::from(arg),
        (None, None) => match std::env::var_os("MAYFLY_SOCKET") {
            Some(s) => PathBuf::from(s),
            None => return usage(),
        },
        _ => return usage(),
    };
    match run(&socket) {
        Ok(id) => {
            // Like `mayflyctl submit`: the id alone on stdout. A closed stdout
            // does not make the submit fail.
            let _ = writeln!(std::io::stdout().lock(), "{id}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("floor-client: {e}");
            ExitCode::from(match e {
                BenchError::Connect { .. } => 3,
                _ => 1,
            })
        }
    }
}

/// Handshake and submit in one write, then both answers.
fn run(socket: &std::path::Path) -> Result<u64, BenchError> {
    let frame = submit_frame()?;
    let mut client = Client::connect_with(socket, &frame)?;
    Ok(client.recv_submitted()?.0)
}

/// Prints the usage line and returns the usage exit code.
fn usage() -> ExitCode {
    eprintln!("usage: floor-client SOCKET   (or set MAYFLY_SOCKET)");
    ExitCode::from(2)
}
