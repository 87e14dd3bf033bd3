//! `mayfly-load`: a blocking load generator for `mayflyd`.
//!
//! Every mode submits the same trivial job ([`mayfly_bench::trivial_spec`],
//! optionally padded with `--env-bytes`)
//! over `std` Unix sockets, with no async runtime, and checks that every
//! answer is `Submitted`:
//!
//! - `fill`: N submits over one connection, up to `--pipeline` in flight;
//! - `latency`: M sequential round trips, on one persistent connection or
//!   (`--fresh-connection`) connect + handshake + submit per sample;
//! - `throughput`: C threads, each with its own connection, doing sequential
//!   submits, N in total.
//!
//! Results go to stdout as human lines, or with `--json` as one JSON object.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use clap::{Args, Parser, Subcommand};
use mayfly_bench::{Client, Summary, padded_spec, submit_frame_of};
use mayfly_protocol::DEFAULT_QUEUE;
use serde_json::{Value, json};

/// Load generator for mayflyd: fill a queue, measure submit latency and
/// throughput.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// Print one JSON object on stdout instead of human lines.
    #[arg(long, global = true)]
    json: bool,
    /// Add an environment variable of this many bytes to every job, to stand
    /// in for the environment `mayflyctl` captures (a desktop session's is
    /// typically 2–5 KB). 0: the job's environment is `PATH` alone.
    #[arg(long, global = true, default_value_t = 0, value_name = "BYTES")]
    env_bytes: usize,
    /// Spread the submits round-robin over this many queues: `default`,
    /// then `bench-q1` … `bench-q{N-1}` (the daemon creates a queue the
    /// first time a job names it). 1: every job goes to `default`.
    #[arg(long, global = true, default_value_t = 1, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    queues: u64,
    /// What to measure.
    #[command(subcommand)]
    mode: Mode,
}

/// The benchmarks.
#[derive(Debug, Subcommand)]
enum Mode {
    /// Submit N trivial jobs over one connection, pipelined; print the rate.
    Fill(FillArgs),
    /// Time M sequential submits, each a full round trip; print percentiles.
    Latency(LatencyArgs),
    /// C connections on C threads doing sequential submits; print submits/s.
    Throughput(ThroughputArgs),
}

/// Where the daemon listens (every mode needs it).
#[derive(Debug, Args)]
struct SocketArg {
    /// The daemon's Unix socket.
    #[arg(long, env = "MAYFLY_SOCKET")]
    socket: PathBuf,
}

/// Options of `fill`.
#[derive(Debug, Args)]
struct FillArgs {
    /// The daemon's socket.
    #[command(flatten)]
    socket: SocketArg,
    /// How many jobs to submit.
    #[arg(long)]
    count: u64,
    /// The most submits in flight (sent, not yet answered) at once.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..))]
    pipeline: u64,
}

/// Options of `latency`.
#[derive(Debug, Args)]
struct LatencyArgs {
    /// The daemon's socket.
    #[command(flatten)]
    socket: SocketArg,
    /// How many samples (submits) to time.
    #[arg(long)]
    count: usize,
    /// Untimed submits before the samples (warms caches, the connection and
    /// the daemon's allocator).
    #[arg(long, default_value_t = 20)]
    warmup: usize,
    /// Connect, handshake and submit for every sample (what one `mayflyctl
    /// submit` does, minus process start-up), instead of reusing one
    /// connection.
    #[arg(long)]
    fresh_connection: bool,
}

/// Options of `throughput`.
#[derive(Debug, Args)]
struct ThroughputArgs {
    /// The daemon's socket.
    #[command(flatten)]
    socket: SocketArg,
    /// How many client threads, each with its own connection.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=4096))]
    clients: u64,
    /// How many submits in total, shared evenly among the clients.
    #[arg(long)]
    count: u64,
}

/// Runs the chosen mode and prints its result; a failure is one line on
/// stderr and exit code 1.
fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = Frames::new(cli.env_bytes, cli.queues)
        .and_then(|frames| match &cli.mode {
            Mode::Fill(args) => fill(args, &frames),
            Mode::Latency(args) => latency(args, &frames),
            Mode::Throughput(args) => throughput(args, &frames),
        })
        .map(|(human, mut json)| {
            json["env_bytes"] = json!(cli.env_bytes);
            json["queues"] = json!(cli.queues);
            (human, json)
        });
    match result {
        Ok((_, json)) if cli.json => println!("{json}"),
        Ok((human, _)) => println!("{human}"),
        Err(e) => {
            eprintln!("mayfly-load: {e:#}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

/// The encoded submit frames, one per queue; submit `i` uses frame
/// `i % len`, so a run spreads its jobs evenly over the queues.
struct Frames(Vec<Vec<u8>>);

impl Frames {
    /// One frame per queue, each of the padded trivial job.
    fn new(env_bytes: usize, queues: u64) -> Result<Self> {
        (0..queues)
            .map(|q| {
                let mut spec = padded_spec(env_bytes);
                spec.queue = if q == 0 {
                    DEFAULT_QUEUE.to_owned()
                } else {
                    format!("bench-q{q}")
                };
                submit_frame_of(spec).map_err(anyhow::Error::from)
            })
            .collect::<Result<Vec<_>>>()
            .map(Self)
    }

    /// The frame of submit number `i`.
    fn get(&self, i: u64) -> &[u8] {
        &self.0[(i % self.0.len() as u64) as usize]
    }
}

/// Submits per second, guarding against a zero elapsed time.
fn rate(count: u64, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64().max(1e-9)
}

/// `fill`: one connection, up to `pipeline` submits in flight. The window is
/// topped up in one write whenever half of it has been answered, so writes
/// stay large and the daemon always has requests waiting.
fn fill(args: &FillArgs, frames: &Frames) -> Result<(String, Value)> {
    let socket = &args.socket.socket;
    let mut client = Client::connect(socket)?;
    let pipeline = args.pipeline;
    let refill_at = pipeline / 2;
    let mut batch = Vec::with_capacity(frames.get(0).len() * usize::try_from(pipeline)?);
    let (mut sent, mut answered, mut in_flight) = (0u64, 0u64, 0u64);
    let (mut first_id, mut last_id, mut out_of_order) = (None, 0u64, 0u64);

    let start = Instant::now();
    while answered < args.count {
        if in_flight <= refill_at && sent < args.count {
            let n = (pipeline - in_flight).min(args.count - sent);
            batch.clear();
            for i in sent..sent + n {
                batch.extend_from_slice(frames.get(i));
            }
            client.send(&batch).context("sending submits")?;
            sent += n;
            in_flight += n;
        }
        let id = client
            .recv_submitted()
            .with_context(|| format!("answer to submit {} of {}", answered + 1, args.count))?
            .0;
        if id <= last_id {
            out_of_order += 1;
        }
        first_id.get_or_insert(id);
        last_id = id;
        answered += 1;
        in_flight -= 1;
    }
    let elapsed = start.elapsed();

    if out_of_order > 0 {
        eprintln!(
            "warning: {out_of_order} answers carried an id not above the previous one \
             (responses out of request order?)"
        );
    }
    let per_s = rate(args.count, elapsed);
    let human = format!(
        "fill: {} submits in {:.3} s = {:.0} submits/s (pipeline {}, ids {}..={})",
        args.count,
        elapsed.as_secs_f64(),
        per_s,
        pipeline,
        first_id.unwrap_or(0),
        last_id
    );
    let json = json!({
        "mode": "fill",
        "count": args.count,
        "pipeline": pipeline,
        "elapsed_s": elapsed.as_secs_f64(),
        "submits_per_s": per_s,
        "first_id": first_id,
        "last_id": last_id,
        "out_of_order": out_of_order,
    });
    Ok((human, json))
}

/// One timed submit on a fresh connection: connect, handshake and submit in
/// one write, both answers, close.
fn fresh_submit(socket: &Path, frame: &[u8]) -> Result<()> {
    let mut client = Client::connect_with(socket, frame)?;
    client.recv_submitted()?;
    Ok(())
}

/// `latency`: sequential submits, each timed from the write (or the connect)
/// to the answer.
fn latency(args: &LatencyArgs, frames: &Frames) -> Result<(String, Value)> {
    ensure!(args.count > 0, "--count must be at least 1");
    let socket = &args.socket.socket;
    let mut samples = Vec::with_capacity(args.count);
    let wall = Instant::now();
    let mut n = 0u64;
    let mut next = || {
        n += 1;
        frames.get(n - 1)
    };
    if args.fresh_connection {
        for _ in 0..args.warmup {
            fresh_submit(socket, next()).context("warm-up submit")?;
        }
        for i in 0..args.count {
            let frame = next();
            let t = Instant::now();
            fresh_submit(socket, frame).with_context(|| format!("sample {}", i + 1))?;
            samples.push(t.elapsed());
        }
    } else {
        let mut client = Client::connect(socket)?;
        for _ in 0..args.warmup {
            client.submit(next()).context("warm-up submit")?;
        }
        for i in 0..args.count {
            let frame = next();
            let t = Instant::now();
            client
                .submit(frame)
                .with_context(|| format!("sample {}", i + 1))?;
            samples.push(t.elapsed());
        }
    }
    let wall = wall.elapsed();
    let Some(s) = Summary::of(&mut samples) else {
        bail!("no samples");
    };
    let connection = if args.fresh_connection {
        "fresh"
    } else {
        "persistent"
    };
    let human = format!(
        "latency ({connection} connection, {} samples, µs): min {:.1}  median {:.1}  \
         p90 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}  mean {:.1}",
        s.count, s.min_us, s.median_us, s.p90_us, s.p99_us, s.p999_us, s.max_us, s.mean_us
    );
    let mut json = summary_json(&s);
    json["mode"] = json!("latency");
    json["connection"] = json!(connection);
    json["warmup"] = json!(args.warmup);
    json["elapsed_s"] = json!(wall.as_secs_f64());
    Ok((human, json))
}

/// A [`Summary`] as JSON fields.
fn summary_json(s: &Summary) -> Value {
    json!({
        "count": s.count,
        "min_us": s.min_us,
        "median_us": s.median_us,
        "p90_us": s.p90_us,
        "p99_us": s.p99_us,
        "p999_us": s.p999_us,
        "max_us": s.max_us,
        "mean_us": s.mean_us,
    })
}

/// `throughput`: every client connects and handshakes first; the clock
/// starts when all are ready and stops when the last one is done.
fn throughput(args: &ThroughputArgs, frames: &Frames) -> Result<(String, Value)> {
    ensure!(args.count > 0, "--count must be at least 1");
    let socket = &args.socket.socket;
    let clients = args.clients;
    // Connect on this thread so that a dead socket is one clear error.
    let conns = (0..clients)
        .map(|_| Client::connect(socket))
        .collect::<Result<Vec<_>, _>>()?;
    let ready = Barrier::new(usize::try_from(clients)? + 1);

    let (elapsed, mut samples) = std::thread::scope(|scope| -> Result<_> {
        let handles: Vec<_> = conns
            .into_iter()
            .zip(0..)
            .map(|(mut client, i)| {
                let share = args.count / clients + u64::from(i < args.count % clients);
                let ready = &ready;
                scope.spawn(move || -> Result<Vec<Duration>> {
                    let mut samples = Vec::with_capacity(usize::try_from(share)?);
                    ready.wait();
                    for k in 0..share {
                        let frame = frames.get(i + k * clients);
                        let t = Instant::now();
                        client.submit(frame)?;
                        samples.push(t.elapsed());
                    }
                    Ok(samples)
                })
            })
            .collect();
        ready.wait();
        let start = Instant::now();
        let mut all = Vec::new();
        for h in handles {
            match h.join() {
                Ok(r) => all.extend(r.context("a client thread failed")?),
                Err(_) => bail!("a client thread panicked"),
            }
        }
        Ok((start.elapsed(), all))
    })?;

    let per_s = rate(args.count, elapsed);
    let s = Summary::of(&mut samples).context("no samples")?;
    let human = format!(
        "throughput: {clients} clients, {} submits in {:.3} s = {:.0} submits/s \
         (per submit, µs: median {:.1}  p99 {:.1})",
        args.count,
        elapsed.as_secs_f64(),
        per_s,
        s.median_us,
        s.p99_us
    );
    let json = json!({
        "mode": "throughput",
        "clients": clients,
        "count": args.count,
        "elapsed_s": elapsed.as_secs_f64(),
        "submits_per_s": per_s,
        "latency": summary_json(&s),
    });
    Ok((human, json))
}
