//! `lat-loop N OUTFILE CMD [ARGS...]`: run CMD N times, one after another,
//! and write each run's wall time in microseconds to OUTFILE, one per line.
//!
//! This is how `bench/compare` times one CLI call of each tool. A bash loop
//! forks the whole shell for every call and, to give the call a clean
//! environment, execs `env -i` as well: more than the calls it is measuring
//! (the figure: `bench/RESULTS.md`, "Figures that used to live in code
//! comments"). Here every run is a
//! single `posix_spawn` (which glibc implements with `vfork`-like cloning)
//! from a small process, so the overhead left in each figure is the same
//! small one for every tool, and the bare `lat-loop N F /bin/true` row
//! shows how big it is.
//!
//! CMD inherits this process's environment: start it as
//! `env -i NAME=VALUE... lat-loop ...` for a clean one. Its stdin, stdout and
//! stderr are `/dev/null`. A run that exits non-zero still counts (its time
//! is written) and is reported on stderr; the exit code is then 1. Usage
//! errors exit 2.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::process::{Command, ExitCode};
use std::time::Instant;

/// Parses the arguments, runs the loop and writes the samples.
fn main() -> ExitCode {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let (n, out, cmd) = match args.as_slice() {
        [n, out, cmd @ ..] if !cmd.is_empty() => match n.to_str().and_then(|s| s.parse().ok()) {
            Some(n) => (n, out, cmd),
            None => return usage("N must be a whole number"),
        },
        _ => return usage("missing arguments"),
    };
    match run(n, &cmd[0], &cmd[1..]) {
        Ok((samples, fails)) => {
            if let Err(e) = write_samples(out.as_ref(), &samples) {
                eprintln!("lat-loop: cannot write {}: {e}", out.to_string_lossy());
                return ExitCode::FAILURE;
            }
            if fails > 0 {
                eprintln!("lat-loop: {fails} of {n} runs exited unsuccessfully");
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("lat-loop: cannot run {}: {e}", cmd[0].to_string_lossy());
            ExitCode::FAILURE
        }
    }
}

/// Prints the usage line with `why` and returns exit code 2.
fn usage(why: &str) -> ExitCode {
    eprintln!("lat-loop: {why}\nusage: lat-loop N OUTFILE CMD [ARGS...]");
    ExitCode::from(2)
}

/// Runs `cmd args` `n` times; returns each run's microseconds and how many
/// runs exited unsuccessfully. Fails only if a run cannot be started.
fn run(
    n: usize,
    cmd: &std::ffi::OsStr,
    args: &[std::ffi::OsString],
) -> std::io::Result<(Vec<u64>, usize)> {
    let null = File::options().read(true).write(true).open("/dev/null")?;
    let mut samples = Vec::with_capacity(n);
    let mut fails = 0;
    for _ in 0..n {
        let mut c = Command::new(cmd);
        c.args(args)
            .stdin(null.try_clone()?)
            .stdout(null.try_clone()?)
            .stderr(null.try_clone()?);
        let t0 = Instant::now();
        let status = c.status()?;
        let us = t0.elapsed().as_micros();
        samples.push(u64::try_from(us).unwrap_or(u64::MAX));
        if !status.success() {
            fails += 1;
        }
    }
    Ok((samples, fails))
}

/// Writes one sample per line to `path`.
fn write_samples(path: &std::path::Path, samples: &[u64]) -> std::io::Result<()> {
    let mut w = BufWriter::new(File::create(path)?);
    for s in samples {
        writeln!(w, "{s}")?;
    }
    w.flush()
}
