//! The daemon's settings, each one defined in one place.
//!
//! [`Settings`] is that place. A setting is one field, and the field's
//! attributes say everything about it: the flag (the field's name in
//! kebab-case), the help text (the doc comment), the environment variable if
//! there is one, the default, and the parser that checks a value. The rest
//! is derived:
//!
//! - the config file's key is the field's name, the flag in snake_case, and
//!   a value from the file goes through the same parser as the flag's (see
//!   [`crate::config_file`]), so the two cannot accept different things;
//! - precedence (flag > environment > config file > default) is clap's: the
//!   file's values become the flags' defaults (see [`crate::config`]);
//! - [`Settings::default`] is what the attributes give without any flag, and
//!   the core's defaults ([`CoreConfig`]'s) are read from it.
//!
//! So adding a setting is adding a field. A list (like `--allow-uid`, given
//! once per uid) is a `Vec` field: repeated flags on the command line,
//! `allow_uid = [1000, 1001]` in the file, a flag list replacing the file's
//! whole list.
//!
//! Two kinds of field are not settings of the config file: the flags of
//! [`OneRun`], which ask something of one run, and fields marked
//! `#[arg(skip = …)]`, which are settings of the library only (tests and
//! embedders set them through [`crate::SchedulerBuilder`]) until they get a
//! flag.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Command, FromArgMatches, ValueEnum};

use crate::core::CoreConfig;

/// Everything a daemon is configured with: see the module documentation.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// The Unix socket to listen on
    /// [default: $XDG_RUNTIME_DIR/mayfly/mayfly.sock, else /tmp/mayfly-$UID/mayfly.sock].
    #[arg(
        long,
        env = "MAYFLY_SOCKET",
        value_name = "PATH",
        default_value_os_t = default_socket_path(),
        hide_default_value = true
    )]
    pub socket: PathBuf,

    /// Also serve this user (a uid), besides the daemon's own and root; give
    /// it once per uid. Whoever may submit runs commands as the daemon's
    /// user. With any, the socket is made 0666 (its folder must let them
    /// reach it): each connection's peer credentials decide who is served.
    #[arg(long, value_name = "UID", value_parser = clap::value_parser!(u32))]
    pub allow_uid: Vec<u32>,

    /// Where the write-ahead log, snapshots and job output are kept
    /// [default: $XDG_STATE_HOME/mayfly, else ~/.local/state/mayfly].
    #[arg(
        long,
        env = "MAYFLY_STATE_DIR",
        value_name = "DIR",
        default_value_os_t = default_state_dir(),
        hide_default_value = true
    )]
    pub state_dir: PathBuf,

    /// How many jobs may run at once, over all queues [default: number of CPUs].
    #[arg(
        long,
        value_name = "N",
        default_value_t = cpu_count(),
        hide_default_value = true,
        value_parser = parse_concurrency
    )]
    pub concurrency: u32,

    /// The scheduler's time slice: the longest it works on one batch of client
    /// requests before it turns to timers and job exits.
    #[arg(long, value_name = "DUR", default_value = "10ms", value_parser = parse_duration)]
    pub quantum: Duration,

    /// How long running jobs get after SIGTERM at shutdown before SIGKILL.
    #[arg(long, value_name = "DUR", default_value = "10s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,

    /// How long each of a shutdown's last steps may take (the log's last
    /// writes, system tasks, open connections) before it goes on without
    /// them; also how long after SIGKILL it waits for jobs to be reaped.
    #[arg(long, value_name = "DUR", default_value = "5s", value_parser = parse_duration)]
    pub shutdown_step_timeout: Duration,

    /// How long a cancelled job gets after SIGTERM before SIGKILL.
    #[arg(long, value_name = "DUR", default_value = "5s", value_parser = parse_duration)]
    pub kill_grace: Duration,

    /// How often the daemon's own records (job started, job exited) are made
    /// durable. Client changes (submit, cancel) are always fsynced before
    /// they are acknowledged.
    #[arg(long, value_name = "DUR", default_value = "100ms", value_parser = parse_duration)]
    pub wal_flush_interval: Duration,

    /// Write a snapshot of the state once the write-ahead log has grown this
    /// many bytes past the last one, so restarts stay fast.
    #[arg(long, value_name = "BYTES", default_value_t = 64 << 20, value_parser = parse_bytes)]
    pub snapshot_bytes: u64,

    /// Where to serve HTTP (`GET /metrics` in the Prometheus text format,
    /// `GET /__health`), as IP:PORT; `off` serves no HTTP.
    #[arg(
        long,
        env = "MAYFLY_HTTP_ADDR",
        value_name = "ADDR|off",
        default_value = "127.0.0.1:9479",
        value_parser = parse_http_addr
    )]
    pub http_addr: HttpAddr,

    /// Serve the A2A front door (Agent2Agent 1.0, JSON-RPC; docs/a2a.md) on
    /// HOST:PORT, on loopback when HOST is left out (:9480); every call but
    /// the agent card needs the bearer token kept in STATE_DIR/token. `off`
    /// serves none. Only a mayflyd built with the a2a feature takes an
    /// address.
    #[arg(
        long,
        env = "MAYFLY_A2A_ADDR",
        value_name = "HOST:PORT|off",
        default_value = "off",
        value_parser = parse_a2a_addr
    )]
    pub a2a_addr: A2aAddr,

    /// The most A2A connections open at once (streams and SendMessage calls
    /// that wait for their job included); past it, the oldest idle one is
    /// closed, or the new one waits.
    #[arg(long, value_name = "N", default_value_t = 256, value_parser = parse_count)]
    pub a2a_max_connections: usize,

    /// The most A2A push notifications waiting to be delivered, over all
    /// webhooks; past it, new ones are dropped (and counted), so a dead
    /// webhook never holds the daemon.
    #[arg(long, value_name = "N", default_value_t = 1024, value_parser = parse_count)]
    pub a2a_push_queue: usize,

    /// How often the a2a executor asks a remote agent how each job it
    /// cannot follow on a stream stands (one GetTask per such job per
    /// tick, for all of a queue's jobs at once; docs/a2a.md).
    #[arg(long, value_name = "DUR", default_value = "1s", value_parser = parse_interval)]
    pub a2a_poll_interval: Duration,

    /// How long the a2a executor keeps trying a remote agent it cannot
    /// reach (waiting 1 s, then twice as long each time, at most 30 s)
    /// before it fails the job, saying why.
    #[arg(long, value_name = "DUR", default_value = "2m", value_parser = parse_duration)]
    pub a2a_retry_for: Duration,
    /// Where to serve gRPC (docs/grpc.md), once per listener: unix:PATH for
    /// a Unix socket, HOST:PORT for TCP (loopback when HOST is left out, as
    /// in :50051; every call must then carry the bearer token kept in
    /// STATE_DIR/token), or off for none. Unless a unix: one is given, the
    /// Unix socket is grpc.sock beside --socket, with the same access rules.
    /// Only a mayflyd built with the grpc feature takes anything but off.
    #[arg(
        long,
        env = "MAYFLY_GRPC_ADDR",
        value_name = "unix:PATH|HOST:PORT|off",
        value_delimiter = ',',
        value_parser = parse_grpc_addr
    )]
    pub grpc_addr: Vec<GrpcAddr>,

    /// Also push the metrics to this Prometheus Pushgateway (an http:// URL)
    /// every --metrics-interval, as job "mayflyd", instance = host name.
    #[arg(long, value_name = "URL", value_parser = crate::pusher::parse_gateway)]
    pub push_gateway: Option<hyper::Uri>,

    /// How often the metrics task refreshes the sampled gauges and pushes to
    /// --push-gateway.
    #[arg(long, value_name = "DUR", default_value = "10s", value_parser = parse_interval)]
    pub metrics_interval: Duration,

    /// Log line format on stderr.
    #[arg(long, value_enum, ignore_case = true, default_value_t = LogFormat::Text, value_name = "FORMAT")]
    pub log_format: LogFormat,

    /// The most jobs the daemon holds at once: waiting, queued, running, and
    /// finished ones not yet forgotten. A submit past it is refused;
    /// `mayflyctl clean` forgets finished jobs.
    #[arg(long, value_name = "N", default_value_t = 1_000_000, value_parser = parse_max_jobs)]
    pub max_jobs: u64,

    /// The most bytes one job's command and environment may take (64K, 1M);
    /// a bigger one is refused at submit. Linux starts no program given more
    /// than about 2M.
    #[arg(long, value_name = "SIZE", default_value = "1M", value_parser = parse_size_setting)]
    pub max_job_bytes: Size,

    /// Keep at most SIZE bytes of each output stream of a job that sets no
    /// limit of its own (mayflyctl submit --max-output); the rest is dropped
    /// and the cut noted at the end of the file [default: no limit].
    #[arg(long, value_name = "SIZE", value_parser = parse_size_setting)]
    pub max_output: Option<Size>,

    /// Run this shell line (sh -c) when a job ends, for every job that sets
    /// no --on-finish of its own: in the job's directory and environment,
    /// plus MAYFLY_JOB_ID, MAYFLY_JOB_STATE, MAYFLY_EXIT_CODE, MAYFLY_SIGNAL,
    /// MAYFLY_QUEUE, MAYFLY_JOB_STDOUT, MAYFLY_JOB_STDERR,
    /// MAYFLY_DURATION_MS and MAYFLY_SOCKET. It never changes the job's state; one owed when
    /// the daemon stopped runs after its restart (at least once).
    #[arg(long, value_name = "CMD", value_parser = parse_on_finish)]
    pub on_finish: Option<String>,

    /// Stop a finish callback (SIGKILL to its process group) that runs
    /// longer than this.
    #[arg(long, value_name = "DUR", default_value = "1m", value_parser = parse_interval)]
    pub on_finish_timeout: Duration,

    /// How many finish callbacks may run at once; the others wait their
    /// turn.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = parse_count)]
    pub on_finish_concurrency: usize,

    /// The most client connections open at once, those still in their
    /// handshake included. A client past it is told "too many connections"
    /// at once instead of waiting.
    #[arg(long, value_name = "N", default_value_t = 1024, value_parser = parse_count)]
    pub max_connections: usize,

    /// How long a new connection has to send its handshake before it is
    /// closed.
    #[arg(long, value_name = "DUR", default_value = "5s", value_parser = parse_interval)]
    pub handshake_timeout: Duration,

    /// Close a connection that has sent nothing for this long while none of
    /// its requests is in flight (a `wait`, `logs --follow` or `events
    /// --follow` that is open counts as one).
    #[arg(long, value_name = "DUR", default_value = "5m", value_parser = parse_interval)]
    pub idle_timeout: Duration,

    /// How long a request may take to arrive whole once its first byte has
    /// (waiting for --request-buffer-bytes included); a client that stops in
    /// the middle of one is closed.
    #[arg(long, value_name = "DUR", default_value = "10s", value_parser = parse_interval)]
    pub frame_timeout: Duration,

    /// How many requests of one connection may be in flight (read, not yet
    /// fully answered) at once; past it the daemon reads no further
    /// requests from that connection until one is answered.
    #[arg(long, value_name = "N", default_value_t = 256, value_parser = parse_count)]
    pub max_in_flight: usize,

    /// Bytes of partly received requests larger than 64K held at once, over
    /// all connections: such a request waits (within --frame-timeout) until
    /// its announced size fits. At least 16M, the largest request.
    #[arg(
        long,
        value_name = "SIZE",
        default_value = "64M",
        value_parser = parse_request_buffer
    )]
    pub request_buffer_bytes: Size,

    /// Bytes of answers one connection may leave unread. Past it the daemon
    /// reads no further requests from that connection; a client that then
    /// reads nothing for a second (a `wait` or `--follow` that stopped
    /// reading) is dropped, and told why if it reads again.
    #[arg(
        long,
        value_name = "SIZE",
        default_value = "4M",
        value_parser = parse_reply_buffer
    )]
    pub reply_buffer_bytes: Size,

    /// How often a queue with --executor slurm asks Slurm about its jobs:
    /// one squeue call per tick for all of them, however many. A job's end
    /// is seen at most this long after Slurm's.
    #[arg(long, value_name = "DUR", default_value = "1s", value_parser = parse_interval)]
    pub slurm_poll_interval: Duration,

    /// The flags for one run, which have no config key.
    #[command(flatten)]
    pub one_run: OneRun,

    /// Install SIGTERM/SIGINT handlers in [`crate::Scheduler::run_blocking`]
    /// (tests that run a daemon in their own process turn this off).
    #[arg(skip = true)]
    pub handle_signals: bool,
}

/// Flags that ask something of one run rather than set how the daemon runs:
/// they have no config key, so a file cannot leave them on by mistake.
#[derive(Debug, Clone, Default, Args)]
pub struct OneRun {
    /// Start even though the write-ahead log is damaged: copy the damaged
    /// files to a backup folder under STATE_DIR/wal/, then cut the log at the
    /// first bad record (the jobs after it are lost).
    #[arg(long)]
    pub repair_wal: bool,

    /// On shutdown, print a JSON snapshot of every task and queue to stdout
    /// (the same shape as `mayflyctl dump-state`). SIGUSR1 writes one to the
    /// log at any time without stopping anything.
    #[arg(long)]
    pub dump_state: bool,
}

impl Default for Settings {
    /// What the attributes of [`Settings`] give when no flag is given. The
    /// `MAYFLY_*` environment variables are not read here: a program that
    /// embeds the daemon gets the same defaults whatever its caller's
    /// environment (the binary reads them, in [`crate::config`]).
    fn default() -> Self {
        let cmd = Self::augment_args(Command::new("mayflyd")).mut_args(|arg| arg.env(None));
        cmd.try_get_matches_from(["mayflyd"])
            .and_then(|matches| Self::from_arg_matches(&matches))
            .unwrap_or_else(|e| panic!("a built-in default does not parse (a bug): {e}"))
    }
}

impl Settings {
    /// The core's view of these settings.
    pub fn core_config(&self) -> CoreConfig {
        CoreConfig {
            concurrency: self.concurrency,
            kill_grace_ms: millis(self.kill_grace),
            quantum_ms: millis(self.quantum),
            max_jobs: usize::try_from(self.max_jobs).unwrap_or(usize::MAX),
            max_job_bytes: self.max_job_bytes.0,
        }
    }
}

/// A size in bytes, written `65536`, `64K`, `10M` or `1G`: in the config
/// file a number or a string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size(pub u64);

/// Parses a [`Size`].
pub fn parse_size_setting(s: &str) -> Result<Size, String> {
    mayfly_protocol::parse_size(s).map(Size)
}

/// Parses `--on-finish`: a shell line, not blank, without NUL bytes.
fn parse_on_finish(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        return Err("give a shell command to run when a job ends".to_string());
    }
    if s.contains('\0') {
        return Err("has a NUL byte, which no shell can be given".to_string());
    }
    Ok(s.to_string())
}

/// Parses `--max-jobs`: a whole number from 1.
fn parse_max_jobs(s: &str) -> Result<u64, String> {
    match s.parse::<u64>() {
        Ok(0) => Err("must be at least 1 (the most jobs the daemon holds)".to_string()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!(
            "{s:?} is not a number of jobs; write a whole number from 1, like 1000000"
        )),
    }
}

/// `d` in whole milliseconds, saturating.
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The clap arguments of the settings that have a config key: every
/// argument of [`Settings`] except [`OneRun`]'s, in the order of the fields.
/// Each argument's id is its key (the field's name).
pub fn keyed_args() -> Vec<clap::Arg> {
    let one_run = OneRun::augment_args(Command::new("mayflyd"));
    let is_one_run = |arg: &clap::Arg| one_run.get_arguments().any(|o| o.get_id() == arg.get_id());
    Settings::augment_args(Command::new("mayflyd"))
        .get_arguments()
        .filter(|arg| !is_one_run(arg))
        .cloned()
        .collect()
}

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The value of `--http-addr`: an address, or `off` (`None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpAddr(pub Option<SocketAddr>);

/// Parses `--http-addr`: `IP:PORT` or `off`.
pub fn parse_http_addr(s: &str) -> Result<HttpAddr, String> {
    if s.eq_ignore_ascii_case("off") {
        return Ok(HttpAddr(None));
    }
    s.parse().map(|addr| HttpAddr(Some(addr))).map_err(|_| {
        format!("{s:?} is not IP:PORT (write it like 127.0.0.1:9479, or off to serve no HTTP)")
    })
}

/// The value of `--a2a-addr`: an address, or `off` (`None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct A2aAddr(pub Option<SocketAddr>);

/// Parses `--a2a-addr`: `HOST:PORT` (an IP address or `localhost`; no host
/// is loopback) or `off`. In a build without the `a2a` feature anything but
/// `off` is refused, saying so: a user who asks for A2A must learn at once
/// that this daemon cannot serve it, while the same config file still works
/// with a daemon built with it.
pub fn parse_a2a_addr(s: &str) -> Result<A2aAddr, String> {
    if s.eq_ignore_ascii_case("off") {
        return Ok(A2aAddr(None));
    }
    if !cfg!(feature = "a2a") {
        return Err(
            "this mayflyd was built without the a2a feature; rebuild it with --features a2a, \
             or leave --a2a-addr out"
                .to_string(),
        );
    }
    let teach = || {
        format!(
            "{s:?} is not HOST:PORT or off (write it like 127.0.0.1:9480, or :9480 for loopback)"
        )
    };
    let (host, port) = s.rsplit_once(':').ok_or_else(teach)?;
    let port: u16 = port.parse().map_err(|_| teach())?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let ip = match host {
        "" | "localhost" => std::net::IpAddr::from([127, 0, 0, 1]),
        host => host.parse().map_err(|_| teach())?,
    };
    Ok(A2aAddr(Some(SocketAddr::new(ip, port))))
}

/// One value of `--grpc-addr`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrpcAddr {
    /// A Unix socket at this path.
    Unix(PathBuf),
    /// TCP on this address (bearer token required).
    Tcp(SocketAddr),
    /// No gRPC at all.
    Off,
}

/// Where gRPC is served, from the values of `--grpc-addr`: the Unix socket
/// (`None`: none) and the TCP addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GrpcListeners {
    /// The Unix socket.
    pub unix: Option<PathBuf>,
    /// The TCP addresses.
    pub tcp: Vec<SocketAddr>,
}

impl Settings {
    /// Where gRPC is served: see `--grpc-addr`. `off` anywhere in the list
    /// turns gRPC off (the parser takes it only in a build with the
    /// feature, like every other value).
    pub fn grpc_listeners(&self) -> GrpcListeners {
        let none = GrpcListeners {
            unix: None,
            tcp: Vec::new(),
        };
        if !cfg!(feature = "grpc") || self.grpc_addr.contains(&GrpcAddr::Off) {
            return none;
        }
        let mut unix = None;
        let mut tcp = Vec::new();
        for addr in &self.grpc_addr {
            match addr {
                GrpcAddr::Unix(path) => unix = Some(path.clone()),
                GrpcAddr::Tcp(addr) => tcp.push(*addr),
                GrpcAddr::Off => {}
            }
        }
        GrpcListeners {
            unix: Some(unix.unwrap_or_else(|| grpc_socket_beside(&self.socket))),
            tcp,
        }
    }
}

/// The default gRPC socket: `grpc.sock` in the folder of `socket`.
pub fn grpc_socket_beside(socket: &Path) -> PathBuf {
    mayfly_protocol::socket_folder::folder_of(socket).join("grpc.sock")
}

/// Parses one `--grpc-addr`: `unix:PATH`, `HOST:PORT` (an IP address or
/// `localhost`; no host is loopback) or `off`. In a build without the
/// `grpc` feature, anything but `off` is refused, saying how to get it: a
/// user who asks for gRPC must learn at once that this daemon cannot serve
/// it, while the same config file still works with a daemon built with it.
pub fn parse_grpc_addr(s: &str) -> Result<GrpcAddr, String> {
    if s.eq_ignore_ascii_case("off") {
        return Ok(GrpcAddr::Off);
    }
    if !cfg!(feature = "grpc") {
        return Err(
            "this mayflyd was built without the grpc feature; rebuild it with --features grpc, \
             or leave --grpc-addr out"
                .to_string(),
        );
    }
    if let Some(path) = s.strip_prefix("unix:") {
        if !path.starts_with('/') {
            return Err(format!(
                "{s:?} is not unix:PATH with an absolute path (write it like unix:/run/user/1000/mayfly/grpc.sock)"
            ));
        }
        return Ok(GrpcAddr::Unix(PathBuf::from(path)));
    }
    let teach = || {
        format!(
            "{s:?} is not unix:PATH, HOST:PORT or off (write it like 127.0.0.1:50051, \
             :50051 for loopback, or unix:/path/to/grpc.sock)"
        )
    };
    let (host, port) = s.rsplit_once(':').ok_or_else(teach)?;
    let port: u16 = port.parse().map_err(|_| teach())?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ip = match host {
        "" | "localhost" => std::net::IpAddr::from([127, 0, 0, 1]),
        host => host.parse().map_err(|_| teach())?,
    };
    Ok(GrpcAddr::Tcp(SocketAddr::new(ip, port)))
}

/// Parses `--concurrency`: a whole number from 1.
fn parse_concurrency(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(0) => Err("must be at least 1 (the number of jobs that may run at once)".to_string()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!(
            "{s:?} is not a number of jobs; write a whole number from 1, like 4"
        )),
    }
}

/// Parses a count of connections or requests: a whole number from 1.
fn parse_count(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_string()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!(
            "{s:?} is not a count; write a whole number from 1, like 64"
        )),
    }
}

/// Parses `--request-buffer-bytes`: room for at least one request of the
/// largest size, or such a request could never be read.
fn parse_request_buffer(s: &str) -> Result<Size, String> {
    let size = parse_size_setting(s)?;
    if size.0 < mayfly_protocol::MAX_FRAME_LEN as u64 {
        return Err("must be at least 16M (one request of the largest size)".to_string());
    }
    Ok(size)
}

/// Parses `--reply-buffer-bytes`: at least 64K, so a connection's ordinary
/// answers never count as unread.
fn parse_reply_buffer(s: &str) -> Result<Size, String> {
    let size = parse_size_setting(s)?;
    if size.0 < 64 * 1024 {
        return Err("must be at least 64K".to_string());
    }
    Ok(size)
}

/// Parses a size in bytes: a whole number from 0.
fn parse_bytes(s: &str) -> Result<u64, String> {
    s.parse().map_err(|_| {
        format!("{s:?} is not a number of bytes; write a whole number from 0, like 67108864")
    })
}

/// Parses a human duration that must not be zero (a period).
fn parse_interval(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d.is_zero() {
        return Err("must be longer than 0 (write it like 500ms, 10s or 1m)".to_string());
    }
    Ok(d)
}

/// Parses a human duration (`500ms`, `30s`, `5m`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| {
        format!("{s:?} is not a duration: {e} (write durations like 500ms, 30s or 5m)")
    })
}

/// The number of CPUs this process may use (1 when it cannot be told).
fn cpu_count() -> u32 {
    std::thread::available_parallelism()
        .map(|n| u32::try_from(n.get()).unwrap_or(u32::MAX))
        .unwrap_or(1)
}

/// The contract's default socket: `$XDG_RUNTIME_DIR/mayfly/mayfly.sock`, else
/// `/tmp/mayfly-$UID/mayfly.sock`.
pub fn default_socket_path() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        Some(dir) => Path::new(&dir).join("mayfly").join("mayfly.sock"),
        None => PathBuf::from(format!("/tmp/mayfly-{}/mayfly.sock", nix::unistd::getuid())),
    }
}

/// The contract's default state dir: `$XDG_STATE_HOME/mayfly`, else
/// `~/.local/state/mayfly`.
pub fn default_state_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        return Path::new(&dir).join("mayfly");
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/".into());
    Path::new(&home).join(".local/state/mayfly")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_the_documented_ones() {
        let s = Settings::default();
        assert_eq!(s.socket, default_socket_path());
        assert!(s.allow_uid.is_empty());
        assert_eq!(s.state_dir, default_state_dir());
        assert_eq!(s.concurrency, cpu_count());
        assert_eq!(s.quantum, Duration::from_millis(10));
        assert_eq!(s.shutdown_timeout, Duration::from_secs(10));
        assert_eq!(s.kill_grace, Duration::from_secs(5));
        assert_eq!(s.wal_flush_interval, Duration::from_millis(100));
        assert_eq!(s.snapshot_bytes, 64 << 20);
        assert_eq!(
            s.http_addr,
            HttpAddr(Some("127.0.0.1:9479".parse().unwrap()))
        );
        assert_eq!(s.a2a_addr, A2aAddr(None));
        assert_eq!(s.a2a_max_connections, 256);
        assert_eq!(s.a2a_push_queue, 1024);
        assert_eq!(s.a2a_poll_interval, Duration::from_secs(1));
        assert_eq!(s.a2a_retry_for, Duration::from_secs(120));
        assert!(s.grpc_addr.is_empty());
        assert_eq!(s.push_gateway, None);
        assert_eq!(s.metrics_interval, Duration::from_secs(10));
        assert_eq!(s.log_format, LogFormat::Text);
        assert!(!s.one_run.repair_wal && !s.one_run.dump_state);
        assert_eq!(s.max_connections, 1024);
        assert_eq!(s.handshake_timeout, Duration::from_secs(5));
        assert_eq!(s.idle_timeout, Duration::from_secs(300));
        assert_eq!(s.frame_timeout, Duration::from_secs(10));
        assert_eq!(s.max_in_flight, 256);
        assert_eq!(s.request_buffer_bytes, Size(64 << 20));
        assert_eq!(s.reply_buffer_bytes, Size(4 << 20));
        assert!(s.handle_signals);
    }

    #[test]
    fn the_core_defaults_come_from_the_settings() {
        let s = Settings::default();
        assert_eq!(CoreConfig::default(), s.core_config());
        assert_eq!(s.core_config().kill_grace_ms, 5_000);
        assert_eq!(s.core_config().quantum_ms, 10);
    }

    #[test]
    fn every_key_is_its_flag_in_snake_case() {
        let keys: Vec<String> = keyed_args()
            .iter()
            .map(|arg| {
                let key = arg.get_id().as_str();
                let flag = arg.get_long().expect("every keyed setting has a long flag");
                assert_eq!(key, flag.replace('-', "_"), "the key of --{flag}");
                key.to_string()
            })
            .collect();
        assert_eq!(
            keys,
            [
                "socket",
                "allow_uid",
                "state_dir",
                "concurrency",
                "quantum",
                "shutdown_timeout",
                "shutdown_step_timeout",
                "kill_grace",
                "wal_flush_interval",
                "snapshot_bytes",
                "http_addr",
                "a2a_addr",
                "a2a_max_connections",
                "a2a_push_queue",
                "a2a_poll_interval",
                "a2a_retry_for",
                "grpc_addr",
                "push_gateway",
                "metrics_interval",
                "log_format",
                "max_jobs",
                "max_job_bytes",
                "max_output",
                "on_finish",
                "on_finish_timeout",
                "on_finish_concurrency",
                "max_connections",
                "handshake_timeout",
                "idle_timeout",
                "frame_timeout",
                "max_in_flight",
                "request_buffer_bytes",
                "reply_buffer_bytes",
                "slurm_poll_interval",
            ]
        );
    }

    #[test]
    fn grpc_addresses_parse_and_make_listeners() {
        assert_eq!(parse_grpc_addr("OFF"), Ok(GrpcAddr::Off));
        if !cfg!(feature = "grpc") {
            let err = parse_grpc_addr(":50051").unwrap_err();
            assert!(err.contains("rebuild it with --features grpc"), "{err}");
            return;
        }
        let tcp = |s: &str| GrpcAddr::Tcp(s.parse().unwrap());
        assert_eq!(parse_grpc_addr(":50051"), Ok(tcp("127.0.0.1:50051")));
        assert_eq!(parse_grpc_addr("localhost:1"), Ok(tcp("127.0.0.1:1")));
        assert_eq!(parse_grpc_addr("0.0.0.0:2"), Ok(tcp("0.0.0.0:2")));
        assert_eq!(parse_grpc_addr("[::1]:3"), Ok(tcp("[::1]:3")));
        assert_eq!(
            parse_grpc_addr("unix:/run/g.sock"),
            Ok(GrpcAddr::Unix("/run/g.sock".into()))
        );
        assert!(
            parse_grpc_addr("unix:rel.sock")
                .unwrap_err()
                .contains("absolute")
        );
        assert!(
            parse_grpc_addr("example.com:1")
                .unwrap_err()
                .contains(":50051")
        );
        assert!(
            parse_grpc_addr("127.0.0.1")
                .unwrap_err()
                .contains("HOST:PORT")
        );

        let mut s = Settings {
            socket: "/run/m/mayfly.sock".into(),
            ..Settings::default()
        };
        let beside = GrpcListeners {
            unix: Some("/run/m/grpc.sock".into()),
            tcp: Vec::new(),
        };
        assert_eq!(s.grpc_listeners(), beside, "by default, beside the socket");
        s.grpc_addr = vec![parse_grpc_addr(":9").unwrap()];
        assert_eq!(
            s.grpc_listeners(),
            GrpcListeners {
                tcp: vec!["127.0.0.1:9".parse().unwrap()],
                ..beside
            },
            "TCP is added to the socket"
        );
        s.grpc_addr.push(GrpcAddr::Off);
        assert_eq!(s.grpc_listeners(), GrpcListeners::default(), "off wins");
    }

    #[test]
    fn parsers_teach_the_form() {
        assert!(parse_concurrency("0").unwrap_err().contains("at least 1"));
        assert!(parse_concurrency("four").unwrap_err().contains("like 4"));
        assert_eq!(parse_concurrency("4"), Ok(4));
        assert!(parse_bytes("-1").unwrap_err().contains("whole number"));
        let err = parse_duration("soon").unwrap_err();
        assert!(err.starts_with("\"soon\" is not a duration"), "{err}");
        assert!(err.contains("500ms"), "{err}");
        assert!(parse_interval("0s").is_err());
        assert_eq!(parse_http_addr("OFF"), Ok(HttpAddr(None)));
        assert!(parse_count("0").unwrap_err().contains("at least 1"));
        assert_eq!(parse_count("64"), Ok(64));
        assert!(
            parse_request_buffer("1M")
                .unwrap_err()
                .contains("largest size")
        );
        assert_eq!(parse_request_buffer("16M"), Ok(Size(16 << 20)));
        assert!(parse_reply_buffer("1000").unwrap_err().contains("64K"));
        assert_eq!(parse_reply_buffer("4194304"), Ok(Size(4 << 20)));
        assert!(
            parse_http_addr("localhost")
                .unwrap_err()
                .contains("127.0.0.1:9479")
        );
        assert_eq!(parse_a2a_addr("off"), Ok(A2aAddr(None)));
    }

    #[test]
    fn a2a_addresses_default_to_loopback() {
        if cfg!(feature = "a2a") {
            let loopback = "127.0.0.1:9480".parse().ok();
            assert_eq!(parse_a2a_addr(":9480"), Ok(A2aAddr(loopback)));
            assert_eq!(parse_a2a_addr("localhost:9480"), Ok(A2aAddr(loopback)));
            assert_eq!(
                parse_a2a_addr("[::1]:9480"),
                Ok(A2aAddr("[::1]:9480".parse().ok()))
            );
            assert_eq!(
                parse_a2a_addr("0.0.0.0:9480"),
                Ok(A2aAddr("0.0.0.0:9480".parse().ok()))
            );
            assert!(parse_a2a_addr("9480").unwrap_err().contains(":9480"));
            assert!(parse_a2a_addr("host:x").is_err());
        } else {
            let err = parse_a2a_addr(":9480").unwrap_err();
            assert!(err.contains("built without the a2a feature"), "{err}");
        }
    }
}
