//! `fsync-probe`: what one durable write costs on a file system, with no
//! daemon involved — the floor under a durable submit's round trip.
//!
//! It creates a file in `--dir` (use the daemon's state dir, or a folder on
//! the same file system), then times `--count` iterations of "write
//! `--bytes` bytes + `File::sync_data` (fdatasync)", after `--warmup`
//! untimed ones, and prints min / median / p90 / p99 / p99.9 / max / mean
//! in µs (or one JSON object with `--json`). The file is removed at the end.
//!
//! Two modes:
//!
//! - `append` (default): every write goes at the end of the file, which
//!   grows — as the write-ahead log's segment does (`pwrite` at the synced
//!   length, then `fdatasync`). Each fdatasync must also commit the new file
//!   size, i.e. a file-system journal commit on ext4/xfs.
//! - `overwrite`: the file is first filled to its final size and synced;
//!   then each write overwrites blocks that already exist, so the fdatasync
//!   has only data to flush and no metadata: the cheapest durable write the
//!   disk offers (what a log with preallocated segments would pay).

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use clap::{Parser, ValueEnum};
use mayfly_bench::Summary;
use serde_json::json;

/// Time write + fdatasync of a small record on a file system.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// The folder to create the probe file in (the state dir's file system).
    #[arg(long)]
    dir: PathBuf,
    /// Timed iterations.
    #[arg(long, default_value_t = 2000)]
    count: usize,
    /// Untimed iterations first.
    #[arg(long, default_value_t = 20)]
    warmup: usize,
    /// Bytes written per iteration.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=1 << 20))]
    bytes: u64,
    /// Grow the file (like the WAL) or overwrite preallocated blocks.
    #[arg(long, value_enum, default_value_t = Mode::Append)]
    mode: Mode,
    /// Print one JSON object instead of a human line.
    #[arg(long)]
    json: bool,
}

/// Where each write goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// At the end of the file: the file grows with every write.
    Append,
    /// Over blocks written and synced beforehand: the size never changes.
    Overwrite,
}

/// Runs the probe; a failure is one line on stderr and exit code 1.
fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fsync-probe: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Creates the file, times the loop, prints, removes the file.
fn run(cli: &Cli) -> Result<()> {
    ensure!(cli.count > 0, "--count must be at least 1");
    let path = cli
        .dir
        .join(format!("fsync-probe.{}.tmp", std::process::id()));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .with_context(|| format!("creating {}", path.display()))?;
    let result = time_loop(cli, &file);
    let _ = std::fs::remove_file(&path);
    let mut samples = result?;
    let s = Summary::of(&mut samples).context("no samples")?;
    let mode = match cli.mode {
        Mode::Append => "append",
        Mode::Overwrite => "overwrite",
    };
    if cli.json {
        println!(
            "{}",
            json!({
                "mode": mode,
                "bytes": cli.bytes,
                "count": s.count,
                "min_us": s.min_us,
                "median_us": s.median_us,
                "p90_us": s.p90_us,
                "p99_us": s.p99_us,
                "p999_us": s.p999_us,
                "max_us": s.max_us,
                "mean_us": s.mean_us,
            })
        );
    } else {
        println!(
            "fsync-probe ({mode}, {} B + fdatasync, {} samples, µs): min {:.1}  median {:.1}  \
             p90 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}  mean {:.1}",
            cli.bytes,
            s.count,
            s.min_us,
            s.median_us,
            s.p90_us,
            s.p99_us,
            s.p999_us,
            s.max_us,
            s.mean_us
        );
    }
    Ok(())
}

/// The timed loop: returns one sample per timed iteration.
fn time_loop(cli: &Cli, file: &File) -> Result<Vec<Duration>> {
    let record = vec![0xA5u8; usize::try_from(cli.bytes)?];
    let total = u64::try_from(cli.warmup + cli.count)?;
    if cli.mode == Mode::Overwrite {
        // Allocate and write every block the loop will touch, then sync, so
        // the loop changes neither the size nor the block map.
        let len = total * cli.bytes;
        let zeros = vec![0u8; 1 << 20];
        let mut off = 0;
        while off < len {
            let n = (len - off).min(zeros.len() as u64);
            file.write_all_at(&zeros[..usize::try_from(n)?], off)?;
            off += n;
        }
        file.sync_all().context("syncing the preallocated file")?;
    }
    let mut samples = Vec::with_capacity(cli.count);
    for i in 0..total {
        let t = Instant::now();
        file.write_all_at(&record, i * cli.bytes)
            .context("writing")?;
        file.sync_data().context("fdatasync")?;
        if i >= cli.warmup as u64 {
            samples.push(t.elapsed());
        }
    }
    Ok(samples)
}
