//! `a2a-load --addr HOST:PORT --token-file F [--clients 8] [--count N]
//! [--queue bench] [--json]`: `SendMessage` load on Mayfly's A2A door.
//!
//! C threads, each with its own keep-alive HTTP/1.1 connection (plain
//! `std::net::TcpStream`, no runtime), send N `SendMessage` requests in all,
//! one after another per connection, each with `returnImmediately` and one
//! data part: the trivial job `true` in queue `--queue` (pause that queue
//! first, so the jobs stay queued and the figures are the door's and the
//! log's, not the jobs'). Each request is timed from its write to the end of
//! its answer, which the door gives once the job is durable. Every answer is
//! checked to hold a task; anything else stops the run with exit code 1.
//!
//! Prints submits/s (the clock starts once all C are connected) and the
//! latency's median, p90, p99 and max in µs.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;

/// The command line.
#[derive(Debug, Parser)]
#[command(about = "SendMessage load on Mayfly's A2A door")]
struct Args {
    /// The door's address.
    #[arg(long)]
    addr: String,
    /// The file holding the bearer token (the daemon's STATE_DIR/token).
    #[arg(long)]
    token_file: std::path::PathBuf,
    /// Connections, each sending one request at a time.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Requests in all.
    #[arg(long, default_value_t = 2000)]
    count: usize,
    /// The queue the jobs go to.
    #[arg(long, default_value = "bench")]
    queue: String,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// Runs the load and prints the figures.
fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("a2a-load: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The load, then the figures.
fn run(args: &Args) -> Result<()> {
    let token = std::fs::read_to_string(&args.token_file)
        .with_context(|| format!("read {}", args.token_file.display()))?;
    let request = request(&args.addr, token.trim(), &args.queue);
    let clients = args.clients.max(1);
    let barrier = Arc::new(Barrier::new(clients + 1));
    let mut threads = Vec::new();
    for c in 0..clients {
        let share = args.count / clients + usize::from(c < args.count % clients);
        let stream =
            TcpStream::connect(&args.addr).with_context(|| format!("connect to {}", args.addr))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        let barrier = barrier.clone();
        let request = request.clone();
        threads.push(std::thread::spawn(move || -> Result<Vec<u64>> {
            barrier.wait();
            client(stream, &request, share)
        }));
    }
    barrier.wait();
    let began = Instant::now();
    let mut samples = Vec::with_capacity(args.count);
    for thread in threads {
        let joined = thread
            .join()
            .map_err(|_| anyhow::anyhow!("a client thread panicked"))?;
        samples.extend(joined?);
    }
    let elapsed = began.elapsed();
    report(args, &mut samples, elapsed);
    Ok(())
}

/// One `SendMessage` request, whole.
fn request(addr: &str, token: &str, queue: &str) -> Vec<u8> {
    let body = serde_json::json!({
        "jsonrpc": "2.0", "id": 1, "method": "SendMessage",
        "params": {
            "message": {"messageId": "load", "role": "ROLE_USER",
                "parts": [{"data": {"command": ["true"], "queue": queue, "cwd": "/"}}]},
            "configuration": {"returnImmediately": true},
        },
    })
    .to_string();
    format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         A2A-Version: 1.0\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Sends `request` `count` times on `stream`, one at a time; returns each
/// round trip in µs.
fn client(stream: TcpStream, request: &[u8], count: usize) -> Result<Vec<u64>> {
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let mut samples = Vec::with_capacity(count);
    for _ in 0..count {
        let sent = Instant::now();
        writer.write_all(request)?;
        let body = read_response(&mut reader)?;
        samples.push(u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX));
        if !body.contains("\"result\"") || !body.contains("\"task\"") {
            bail!("the answer holds no task: {body}");
        }
    }
    Ok(samples)
}

/// Reads one HTTP/1.1 response with a `Content-Length`; returns its body.
fn read_response(reader: &mut BufReader<TcpStream>) -> Result<String> {
    let mut line = String::new();
    let mut length = None;
    let mut status = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            bail!("the door closed the connection");
        }
        let trimmed = line.trim_end();
        if status.is_empty() {
            status = trimmed.to_string();
            continue;
        }
        if trimmed.is_empty() {
            break;
        }
        if let Some((name, value)) = trimmed.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse::<usize>().ok();
        }
    }
    let length = length.context("an answer without Content-Length")?;
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    if !status.contains(" 200 ") {
        bail!("{status}: {}", String::from_utf8_lossy(&body));
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// Prints the figures.
fn report(args: &Args, samples: &mut [u64], elapsed: Duration) {
    samples.sort_unstable();
    let at = |q: f64| {
        let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples.get(i).copied().unwrap_or(0)
    };
    let rate = samples.len() as f64 / elapsed.as_secs_f64();
    let (p50, p90, p99, max) = (at(0.5), at(0.9), at(0.99), at(1.0));
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "mode": "a2a-send-message", "clients": args.clients, "count": samples.len(),
                "elapsed_s": elapsed.as_secs_f64(), "per_s": rate,
                "median_us": p50, "p90_us": p90, "p99_us": p99, "max_us": max,
            })
        );
    } else {
        println!(
            "{} SendMessage in {:.2}s over {} connections: {rate:.0}/s; \
             median {p50} µs, p90 {p90} µs, p99 {p99} µs, max {max} µs",
            samples.len(),
            elapsed.as_secs_f64(),
            args.clients
        );
    }
}
