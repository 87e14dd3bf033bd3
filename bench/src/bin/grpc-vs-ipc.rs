//! `grpc-vs-ipc`: a durable submit over the gRPC Unix socket against the
//! same over the daemon's own socket, on one daemon in one run
//! (bench/README.md, "grpc-vs-ipc").
//!
//! The job is the trivial one of every harness here
//! ([`mayfly_bench::trivial_spec`]). Rounds alternate between the doors so
//! that drift in the machine (page cache, a neighbour's load) falls on both.
//! Each round measures, for IPC then gRPC:
//!
//! - the latency of `--count` sequential queue listings on one persistent
//!   connection: a request that goes to the driver and back like a submit
//!   but writes nothing, so it shows what the door itself costs;
//! - the latency of `--count` sequential durable submits on one persistent
//!   connection, with the daemon's CPU time per submit;
//! - the rate of `--clients` connections submitting at once, each
//!   sequentially (`--count` submits in total);
//! - the latency of `--count` durable submits on each door taken in turns,
//!   one IPC and one gRPC (the order swapped every time), so that whatever
//!   the machine does at any moment falls on both alike: the fairest ratio
//!   on a shared machine.
//!
//! The IPC client is a blocking one on the calling thread (a thread per
//! connection for the rate); the gRPC client is tonic's, on a runtime on the
//! calling thread for the latencies, and on a runtime of `--client-threads`
//! workers for the rate. Prints a table, or one JSON object with `--json`.

use std::path::{Path, PathBuf};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use hyper_util::rt::TokioIo;
use mayfly_bench::{Client, Summary, submit_frame, trivial_spec};
use mayfly_protocol::{Command, Request, Response, encode_frame};
use mayflyd::grpc::proto;
use mayflyd::grpc::proto::mayfly_client::MayflyClient;
use serde_json::json;
use tokio::runtime::Runtime;
use tonic::transport::{Channel, Endpoint, Uri};

/// Durable submits over gRPC (Unix socket) and IPC, side by side.
#[derive(Debug, Parser)]
struct Cli {
    /// The daemon's socket (its gRPC socket is grpc.sock beside it unless
    /// --grpc-socket says otherwise).
    #[arg(long, env = "MAYFLY_SOCKET")]
    socket: PathBuf,
    /// The gRPC socket.
    #[arg(long)]
    grpc_socket: Option<PathBuf>,
    /// Requests per measurement.
    #[arg(long, default_value_t = 2000)]
    count: usize,
    /// Concurrent clients of the throughput measurement.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Worker threads of the gRPC client's runtime in the throughput
    /// measurement.
    #[arg(long, default_value_t = 2)]
    client_threads: usize,
    /// Rounds (each measures both doors).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Untimed requests before each latency measurement.
    #[arg(long, default_value_t = 50)]
    warmup: usize,
    /// The daemon's pid: its CPU time per submit is reported for each door
    /// (from /proc/PID/stat), to tell the daemon's cost from the client's.
    #[arg(long)]
    daemon_pid: Option<u32>,
    /// One JSON object instead of the table.
    #[arg(long)]
    json: bool,
    /// Measure only this door (`ipc` or `grpc`), e.g. to profile the daemon
    /// while it serves one; the other's columns then repeat it.
    #[arg(long, value_parser = ["ipc", "grpc"])]
    only: Option<String>,
}

/// What one door did in one round.
#[derive(Debug, Clone, Copy)]
struct Round {
    /// Latency of one client's sequential queue listings.
    read: Summary,
    /// Latency of one client's sequential submits.
    latency: Summary,
    /// CPU per submit in the latency measurement, µs: the daemon's and
    /// this client process's.
    cpu_us: (Option<f64>, Option<f64>),
    /// Submits per second with `--clients` at once.
    rate: f64,
    /// CPU per submit in the throughput measurement, µs: the daemon's and
    /// this client process's.
    rate_cpu_us: (Option<f64>, Option<f64>),
}

/// One round: each door's measurements, and the submits taken in turns
/// (IPC's, gRPC's), which a run of one door (`--only`) leaves out.
#[derive(Debug, Clone, Copy)]
struct RoundPair {
    /// The Unix socket's.
    ipc: Round,
    /// The gRPC door's.
    grpc: Round,
    /// The submits taken in turns.
    turns: Option<(Summary, Summary)>,
}

/// The CPU time (user + system) `pid` has used, from /proc/PID/stat.
fn cpu_time(pid: Option<u32>) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid?)).ok()?;
    // The fields after the command name (which may hold spaces).
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on Linux.
    Some(Duration::from_millis(ticks * 10))
}

/// The CPU time per request `pid` used between `before` and now, µs.
fn cpu_per_request(pid: Option<u32>, before: Option<Duration>, count: usize) -> Option<f64> {
    let spent = cpu_time(pid)?.checked_sub(before?)?;
    Some(spent.as_secs_f64() * 1e6 / count as f64)
}

/// Times `count` sequential calls of `one` after `warmup` untimed ones.
fn timed(warmup: usize, count: usize, mut one: impl FnMut() -> Result<()>) -> Result<Summary> {
    for _ in 0..warmup {
        one()?;
    }
    let mut samples = Vec::with_capacity(count);
    for _ in 0..count {
        let t = Instant::now();
        one()?;
        samples.push(t.elapsed());
    }
    Summary::of(&mut samples).context("no samples")
}

/// The trivial job as the `.proto` has it.
fn grpc_spec() -> proto::JobSpec {
    let spec = trivial_spec();
    let Command::Argv(argv) = spec.command else {
        unreachable!("the trivial job is an argv");
    };
    proto::JobSpec {
        argv: argv.into_vec(),
        cwd: spec.cwd,
        env: spec.env.into_iter().collect(),
        ..Default::default()
    }
}

/// A gRPC client on its own connection to `socket`.
async fn grpc_client(socket: &Path) -> Result<MayflyClient<Channel>> {
    let socket = socket.to_path_buf();
    let channel = Endpoint::from_static("http://localhost")
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let socket = socket.clone();
            async move {
                Ok::<_, std::io::Error>(TokioIo::new(
                    tokio::net::UnixStream::connect(socket).await?,
                ))
            }
        }))
        .await
        .context("connect to the gRPC socket")?;
    Ok(MayflyClient::new(channel))
}

/// One gRPC submit, checked.
async fn grpc_submit(client: &mut MayflyClient<Channel>, spec: &proto::JobSpec) -> Result<u64> {
    let reply = client
        .submit(proto::SubmitRequest {
            spec: Some(spec.clone()),
        })
        .await
        .context("gRPC Submit")?;
    Ok(reply.into_inner().id)
}

/// IPC: the listing and submit latencies of one connection, then the rate
/// of `clients`.
fn ipc_round(cli: &Cli) -> Result<Round> {
    let frame = submit_frame()?;
    let list = encode_frame(&Request::QueueList)?;
    let mut client = Client::connect(&cli.socket)?;
    let read = timed(cli.warmup, cli.count, || {
        client.send(&list)?;
        match client.recv()? {
            Response::Queues(_) => Ok(()),
            other => bail!("a queue listing answered {other:?}"),
        }
    })?;
    let me = Some(std::process::id());
    let cpu = (cpu_time(cli.daemon_pid), cpu_time(me));
    let latency = timed(cli.warmup, cli.count, || {
        client.submit(&frame)?;
        Ok(())
    })?;
    let cpu_us = (
        cpu_per_request(cli.daemon_pid, cpu.0, cli.count + cli.warmup),
        cpu_per_request(me, cpu.1, cli.count + cli.warmup),
    );
    let per_client = cli.count / cli.clients;
    let barrier = Barrier::new(cli.clients + 1);
    let (cpu_daemon, cpu_me) = (cpu_time(cli.daemon_pid), cpu_time(me));
    let elapsed = std::thread::scope(|scope| -> Result<Duration> {
        let workers: Vec<_> = (0..cli.clients)
            .map(|_| {
                let (frame, barrier) = (&frame, &barrier);
                scope.spawn(move || -> Result<()> {
                    let client = Client::connect(&cli.socket);
                    // Every thread reaches the barrier, connected or not.
                    barrier.wait();
                    let mut client = client?;
                    for _ in 0..per_client {
                        client.submit(frame)?;
                    }
                    Ok(())
                })
            })
            .collect();
        barrier.wait();
        let t = Instant::now();
        for worker in workers {
            worker
                .join()
                .map_err(|_| anyhow::anyhow!("a client panicked"))??;
        }
        Ok(t.elapsed())
    })?;
    let total = per_client * cli.clients;
    Ok(Round {
        read,
        latency,
        cpu_us,
        rate: total as f64 / elapsed.as_secs_f64(),
        rate_cpu_us: (
            cpu_per_request(cli.daemon_pid, cpu_daemon, total),
            cpu_per_request(me, cpu_me, total),
        ),
    })
}

/// gRPC: the same measurements; the latencies on `local` (a runtime on
/// this thread), the rate on `pool`.
fn grpc_round(cli: &Cli, socket: &Path, local: &Runtime, pool: &Runtime) -> Result<Round> {
    let spec = grpc_spec();
    let mut client = local.block_on(grpc_client(socket))?;
    let read = timed(cli.warmup, cli.count, || {
        local.block_on(client.list_queues(proto::ListQueuesRequest {}))?;
        Ok(())
    })?;
    let me = Some(std::process::id());
    let cpu = (cpu_time(cli.daemon_pid), cpu_time(me));
    let latency = timed(cli.warmup, cli.count, || {
        local.block_on(grpc_submit(&mut client, &spec))?;
        Ok(())
    })?;
    let cpu_us = (
        cpu_per_request(cli.daemon_pid, cpu.0, cli.count + cli.warmup),
        cpu_per_request(me, cpu.1, cli.count + cli.warmup),
    );
    pool.block_on(async {
        let per_client = cli.count / cli.clients;
        let mut clients = Vec::new();
        for _ in 0..cli.clients {
            clients.push(grpc_client(socket).await?);
        }
        let (cpu_daemon, cpu_me) = (cpu_time(cli.daemon_pid), cpu_time(me));
        let t = Instant::now();
        let tasks: Vec<_> = clients
            .into_iter()
            .map(|mut client| {
                let spec = spec.clone();
                tokio::spawn(async move {
                    for _ in 0..per_client {
                        grpc_submit(&mut client, &spec).await?;
                    }
                    Ok::<_, anyhow::Error>(())
                })
            })
            .collect();
        for task in tasks {
            task.await.context("a client task")??;
        }
        let elapsed = t.elapsed();
        let total = per_client * cli.clients;
        Ok(Round {
            read,
            latency,
            cpu_us,
            rate: total as f64 / elapsed.as_secs_f64(),
            rate_cpu_us: (
                cpu_per_request(cli.daemon_pid, cpu_daemon, total),
                cpu_per_request(me, cpu_me, total),
            ),
        })
    })
}

/// Durable submits on both doors in turns, one connection each: the
/// latencies of IPC's and of gRPC's.
fn in_turns(cli: &Cli, socket: &Path, local: &Runtime) -> Result<(Summary, Summary)> {
    let frame = submit_frame()?;
    let spec = grpc_spec();
    let mut ipc = Client::connect(&cli.socket)?;
    let mut grpc = local.block_on(grpc_client(socket))?;
    let mut ipc_one = || -> Result<Duration> {
        let t = Instant::now();
        ipc.submit(&frame)?;
        Ok(t.elapsed())
    };
    let mut grpc_one = || -> Result<Duration> {
        let t = Instant::now();
        local.block_on(grpc_submit(&mut grpc, &spec))?;
        Ok(t.elapsed())
    };
    for _ in 0..cli.warmup {
        ipc_one()?;
        grpc_one()?;
    }
    let mut samples = (Vec::with_capacity(cli.count), Vec::with_capacity(cli.count));
    for n in 0..cli.count {
        if n % 2 == 0 {
            samples.0.push(ipc_one()?);
            samples.1.push(grpc_one()?);
        } else {
            samples.1.push(grpc_one()?);
            samples.0.push(ipc_one()?);
        }
    }
    let ipc = Summary::of(&mut samples.0).context("no samples")?;
    let grpc = Summary::of(&mut samples.1).context("no samples")?;
    Ok((ipc, grpc))
}

/// The rounds as one JSON object.
fn print_json(cli: &Cli, rounds: &[RoundPair]) {
    let side = |r: &Round| {
        json!({"read_median_us": r.read.median_us, "read_p99_us": r.read.p99_us,
               "median_us": r.latency.median_us, "p99_us": r.latency.p99_us,
               "mean_us": r.latency.mean_us, "daemon_cpu_us": r.cpu_us.0,
               "client_cpu_us": r.cpu_us.1,
               "rate_per_s": r.rate, "rate_daemon_cpu_us": r.rate_cpu_us.0,
               "rate_client_cpu_us": r.rate_cpu_us.1})
    };
    let turns = |t: &Option<(Summary, Summary)>| {
        t.map(|(i, g)| {
            json!({"ipc_median_us": i.median_us, "ipc_p99_us": i.p99_us,
                   "grpc_median_us": g.median_us, "grpc_p99_us": g.p99_us})
        })
    };
    let all: Vec<_> = rounds
        .iter()
        .map(|r| json!({"ipc": side(&r.ipc), "grpc": side(&r.grpc), "in_turns": turns(&r.turns)}))
        .collect();
    println!(
        "{}",
        json!({"count": cli.count, "clients": cli.clients, "rounds": all})
    );
}

/// The rounds as Markdown tables.
fn print_table(cli: &Cli, rounds: &[RoundPair]) {
    let cpu = |c: Option<f64>| c.map_or_else(|| "-".to_string(), |c| format!("{c:.0}"));
    let pair = |(d, c): (Option<f64>, Option<f64>)| format!("{}, {}", cpu(d), cpu(c));
    println!("One client, sequential requests, latency in µs (median, p99):");
    println!();
    println!(
        "| round | list IPC | list gRPC | submit IPC | submit gRPC | submit gRPC/IPC | CPU per submit IPC (daemon, client) | gRPC |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (n, RoundPair { ipc, grpc, .. }) in rounds.iter().enumerate() {
        println!(
            "| {} | {:.0}, {:.0} | {:.0}, {:.0} | {:.0}, {:.0} | {:.0}, {:.0} | {:.2} | {} | {} |",
            n + 1,
            ipc.read.median_us,
            ipc.read.p99_us,
            grpc.read.median_us,
            grpc.read.p99_us,
            ipc.latency.median_us,
            ipc.latency.p99_us,
            grpc.latency.median_us,
            grpc.latency.p99_us,
            grpc.latency.median_us / ipc.latency.median_us,
            pair(ipc.cpu_us),
            pair(grpc.cpu_us),
        );
    }
    println!();
    println!(
        "{c} clients at once: submits/s, and CPU per submit (µs) of the daemon and of the clients:",
        c = cli.clients
    );
    println!();
    println!(
        "| round | IPC /s | gRPC /s | daemon CPU IPC | daemon CPU gRPC | client CPU IPC | client CPU gRPC |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (n, RoundPair { ipc, grpc, .. }) in rounds.iter().enumerate() {
        println!(
            "| {} | {:.0} | {:.0} | {} | {} | {} | {} |",
            n + 1,
            ipc.rate,
            grpc.rate,
            cpu(ipc.rate_cpu_us.0),
            cpu(grpc.rate_cpu_us.0),
            cpu(ipc.rate_cpu_us.1),
            cpu(grpc.rate_cpu_us.1),
        );
    }
    if rounds.iter().all(|r| r.turns.is_none()) {
        return;
    }
    println!();
    println!("Durable submits on both doors in turns, latency in µs (median, p99):");
    println!();
    println!("| round | IPC | gRPC | gRPC/IPC (medians) |");
    println!("|---|---|---|---|");
    for (n, r) in rounds.iter().enumerate() {
        if let Some((ipc, grpc)) = r.turns {
            println!(
                "| {} | {:.0}, {:.0} | {:.0}, {:.0} | {:.2} |",
                n + 1,
                ipc.median_us,
                ipc.p99_us,
                grpc.median_us,
                grpc.p99_us,
                grpc.median_us / ipc.median_us
            );
        }
    }
}

/// Runs the rounds and prints the table (or JSON).
fn main() -> Result<()> {
    let cli = Cli::parse();
    if cli.clients == 0 || cli.count < cli.clients || cli.client_threads == 0 {
        bail!("--count must be at least --clients, and --clients and --client-threads at least 1");
    }
    let grpc_socket = cli
        .grpc_socket
        .clone()
        .unwrap_or_else(|| cli.socket.with_file_name("grpc.sock"));
    let local = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("a tokio runtime")?;
    let pool = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.client_threads)
        .enable_all()
        .build()
        .context("a tokio runtime")?;
    // Nothing runs: the submitted jobs would otherwise compete with the
    // measurements for the CPU, each door with the jobs of the one before.
    local.block_on(async {
        let mut client = grpc_client(&grpc_socket).await?;
        client
            .pause(proto::PauseRequest {
                queues: vec!["default".into()],
                running: false,
            })
            .await
            .context("pause the default queue")?;
        Ok::<_, anyhow::Error>(())
    })?;
    let mut rounds = Vec::new();
    for _ in 0..cli.rounds {
        let round = match cli.only.as_deref() {
            Some("ipc") => {
                let ipc = ipc_round(&cli)?;
                RoundPair {
                    ipc,
                    grpc: ipc,
                    turns: None,
                }
            }
            Some(_) => {
                let grpc = grpc_round(&cli, &grpc_socket, &local, &pool)?;
                RoundPair {
                    ipc: grpc,
                    grpc,
                    turns: None,
                }
            }
            None => RoundPair {
                ipc: ipc_round(&cli)?,
                grpc: grpc_round(&cli, &grpc_socket, &local, &pool)?,
                turns: Some(in_turns(&cli, &grpc_socket, &local)?),
            },
        };
        rounds.push(round);
    }
    if cli.json {
        print_json(&cli, &rounds);
    } else {
        print_table(&cli, &rounds);
    }
    Ok(())
}
