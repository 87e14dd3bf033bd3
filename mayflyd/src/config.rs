//! `mayflyd`'s command line: flags, their environment variables, and the
//! conversion into [`Settings`].
//!
//! Precedence is flag > environment > config file > default, per setting.
//! clap reads the flags and the environment variables named on them;
//! [`Args::try_parse_with_sources`] also says where it found each value, so
//! that [`crate::config_file::merge`] can let the config file fill in the
//! rest.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser, ValueEnum};

use crate::config_file::ArgSources;
use crate::scheduler::Settings;

/// Mayfly's daemon: a durable local job queue behind a Unix socket.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "mayflyd",
    version,
    about = "Mayfly's daemon: runs the jobs that `mayflyctl submit` queues.",
    long_about = "Mayfly's daemon: runs the jobs that `mayflyctl submit` queues, with \
priorities, queues and concurrency limits. It listens on a Unix socket (mode 0600) and keeps \
job output under the state dir.\n\nSIGTERM or SIGINT starts a graceful shutdown: no new jobs \
start, running jobs get SIGTERM, and whatever still runs after --shutdown-timeout gets SIGKILL. \
A second signal exits at once.\n\n\
Settings come from, per setting and in this order of precedence: flags, environment variables \
(MAYFLY_SOCKET, MAYFLY_STATE_DIR, MAYFLY_HTTP_ADDR), the config file, and the built-in \
defaults. The config file is optional TOML at $XDG_CONFIG_HOME/mayfly/mayflyd.toml (else \
~/.config/mayfly/mayflyd.toml), or the file named by --config. Its keys are the flags' names \
in snake_case: socket, state_dir, concurrency, quantum, shutdown_timeout, kill_grace, \
wal_flush_interval, snapshot_bytes, http_addr, push_gateway, metrics_interval and log_format. \
Durations are strings (quantum = \"10ms\"), paths are absolute or start with ~/, and \
http_addr = \"off\" serves no HTTP. -v/-q, --repair-wal and --dump-state are for one run and \
have no key. An unknown key or a bad value is an error naming FILE:LINE:COL. \
--print-config shows the effective settings and where each came from.\n\n\
Exit status: 0 after a graceful shutdown or --print-config; 1 when the daemon could not run \
(socket or port in use, unreadable state); 2 for a bad flag or a bad config file.",
    after_help = "Examples:\n  mayflyd                         # defaults: socket under $XDG_RUNTIME_DIR, one job per CPU\n  mayflyd --concurrency 2 -v\n  RUST_LOG=mayflyd=debug mayflyd --log-format json\n  mayflyd --print-config          # effective settings, and where each came from\n\nA config file (~/.config/mayfly/mayflyd.toml):\n  concurrency = 4\n  state_dir = \"~/jobs/state\"\n  shutdown_timeout = \"30s\"\n  http_addr = \"off\""
)]
pub struct Args {
    /// The Unix socket to listen on
    /// [default: $XDG_RUNTIME_DIR/mayfly/mayfly.sock, else /tmp/mayfly-$UID/mayfly.sock].
    #[arg(long, env = "MAYFLY_SOCKET", value_name = "PATH")]
    pub socket: Option<PathBuf>,

    /// Where the write-ahead log, snapshots and job output are kept
    /// [default: $XDG_STATE_HOME/mayfly, else ~/.local/state/mayfly].
    #[arg(long, env = "MAYFLY_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// Read settings from this TOML file instead of the default
    /// $XDG_CONFIG_HOME/mayfly/mayflyd.toml (else ~/.config/mayfly/mayflyd.toml).
    /// Keys are the flags' names in snake_case (concurrency = 4, quantum =
    /// "10ms"). Flags and environment variables win over the file, the file
    /// wins over the defaults. The default file may be missing; this one must
    /// exist.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// How many jobs may run at once, over all queues [default: number of CPUs].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub concurrency: Option<u32>,

    /// The scheduler's time slice: the longest it works on one batch of client
    /// requests before it turns to timers and job exits.
    #[arg(long, value_name = "DUR", default_value = "10ms", value_parser = parse_duration)]
    pub quantum: Duration,

    /// How long running jobs get after SIGTERM at shutdown before SIGKILL.
    #[arg(long, value_name = "DUR", default_value = "10s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,

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
    #[arg(long, value_name = "BYTES", default_value_t = 64 << 20)]
    pub snapshot_bytes: u64,

    /// Start even though the write-ahead log is damaged: copy the damaged
    /// files to a backup folder under STATE_DIR/wal/, then cut the log at the
    /// first bad record (the jobs after it are lost).
    #[arg(long)]
    pub repair_wal: bool,

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

    /// Also push the metrics to this Prometheus Pushgateway (an http:// URL)
    /// every --metrics-interval, as job "mayflyd", instance = host name.
    #[arg(long, value_name = "URL", value_parser = crate::pusher::parse_gateway)]
    pub push_gateway: Option<hyper::Uri>,

    /// How often the metrics task refreshes the sampled gauges and pushes to
    /// --push-gateway.
    #[arg(long, value_name = "DUR", default_value = "10s", value_parser = parse_interval)]
    pub metrics_interval: Duration,

    /// On shutdown, print a JSON snapshot of every task and queue to stdout
    /// (the same shape as `mayflyctl dump-state`). SIGUSR1 writes one to the
    /// log at any time without stopping anything.
    #[arg(long)]
    pub dump_state: bool,

    /// Print the effective settings, each with where it came from (flag, env,
    /// config file or default), as TOML, and exit without starting the daemon.
    #[arg(long)]
    pub print_config: bool,

    /// More log output (-v debug, -vv trace). RUST_LOG, when set, wins.
    #[arg(short, long, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,

    /// Less log output (-q warnings only, -qq errors only).
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub quiet: u8,

    /// Log line format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, value_name = "FORMAT")]
    pub log_format: LogFormat,
}

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The value of `--http-addr`: an address, or `off`.
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
    humantime::parse_duration(s).map_err(|e| format!("{e} (write durations like 500ms, 30s or 5m)"))
}

impl Args {
    /// Parses `argv` (program name first) and says where clap found each
    /// value: on the command line, in the environment, or not at all (a
    /// default), so the config file can fill in what neither gave.
    pub fn try_parse_with_sources<I, T>(argv: I) -> Result<(Self, ArgSources), clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let mut cmd = Self::command();
        let matches = cmd.try_get_matches_from_mut(argv)?;
        let args = Self::from_arg_matches(&matches).map_err(|e| e.format(&mut cmd))?;
        Ok((args, ArgSources::from_matches(&cmd, &matches)))
    }

    /// The tracing filter these flags ask for (used when `RUST_LOG` is unset).
    pub fn log_level(&self) -> &'static str {
        match (self.verbose, self.quiet) {
            (0, 0) => "info",
            (1, _) => "debug",
            (v, _) if v >= 2 => "trace",
            (_, 1) => "warn",
            _ => "error",
        }
    }

    /// The daemon settings these flags describe, on top of the defaults,
    /// without a config file (see [`crate::config_file::merge`] for that).
    pub fn settings(&self) -> Settings {
        let defaults = Settings::default();
        Settings {
            socket: self.socket.clone().unwrap_or(defaults.socket),
            state_dir: self.state_dir.clone().unwrap_or(defaults.state_dir),
            concurrency: self.concurrency.unwrap_or(defaults.concurrency),
            quantum: self.quantum,
            shutdown_timeout: self.shutdown_timeout,
            kill_grace: self.kill_grace,
            wal_flush_interval: self.wal_flush_interval,
            snapshot_bytes: self.snapshot_bytes,
            repair_wal: self.repair_wal,
            http_addr: self.http_addr.0,
            push_gateway: self.push_gateway.clone(),
            metrics_interval: self.metrics_interval,
            dump_state: self.dump_state,
            ..defaults
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_defaults() {
        let args = Args::try_parse_from([
            "mayflyd",
            "--socket",
            "/tmp/x.sock",
            "--state-dir",
            "/tmp/st",
            "--concurrency",
            "3",
            "--shutdown-timeout",
            "2s",
            "--quantum",
            "5ms",
            "--wal-flush-interval",
            "250ms",
            "--snapshot-bytes",
            "4096",
            "--repair-wal",
        ])
        .unwrap();
        let s = args.settings();
        assert_eq!(s.socket, PathBuf::from("/tmp/x.sock"));
        assert_eq!(s.state_dir, PathBuf::from("/tmp/st"));
        assert_eq!(s.concurrency, 3);
        assert_eq!(s.shutdown_timeout, Duration::from_secs(2));
        assert_eq!(s.quantum, Duration::from_millis(5));
        assert_eq!(s.wal_flush_interval, Duration::from_millis(250));
        assert_eq!(s.snapshot_bytes, 4096);
        assert!(s.repair_wal);
        assert!(
            !Args::try_parse_from(["mayflyd"])
                .unwrap()
                .settings()
                .repair_wal
        );
    }

    #[test]
    fn http_and_metrics_flags() {
        let defaults = Args::try_parse_from(["mayflyd"]).unwrap().settings();
        assert_eq!(defaults.http_addr, Some("127.0.0.1:9479".parse().unwrap()));
        assert_eq!(defaults.push_gateway, None);
        assert_eq!(defaults.metrics_interval, Duration::from_secs(10));
        let s = Args::try_parse_from([
            "mayflyd",
            "--http-addr",
            "0.0.0.0:8080",
            "--push-gateway",
            "http://127.0.0.1:9091",
            "--metrics-interval",
            "200ms",
        ])
        .unwrap()
        .settings();
        assert_eq!(s.http_addr, Some("0.0.0.0:8080".parse().unwrap()));
        assert_eq!(
            s.push_gateway.map(|u| u.to_string()),
            Some("http://127.0.0.1:9091/".to_string())
        );
        assert_eq!(s.metrics_interval, Duration::from_millis(200));
        let off = Args::try_parse_from(["mayflyd", "--http-addr", "off"]).unwrap();
        assert_eq!(off.settings().http_addr, None);
        let err = Args::try_parse_from(["mayflyd", "--http-addr", "localhost"]).unwrap_err();
        assert!(err.to_string().contains("127.0.0.1:9479"), "{err}");
        assert!(Args::try_parse_from(["mayflyd", "--push-gateway", "https://gw"]).is_err());
        assert!(Args::try_parse_from(["mayflyd", "--metrics-interval", "0s"]).is_err());
    }

    #[test]
    fn bad_values_are_usage_errors() {
        assert!(Args::try_parse_from(["mayflyd", "--concurrency", "0"]).is_err());
        let err = Args::try_parse_from(["mayflyd", "--quantum", "soon"]).unwrap_err();
        assert!(err.to_string().contains("500ms"), "{err}");
    }

    #[test]
    fn verbosity_maps_to_levels() {
        let lvl = |a: &[&str]| Args::try_parse_from(a).unwrap().log_level();
        assert_eq!(lvl(&["mayflyd"]), "info");
        assert_eq!(lvl(&["mayflyd", "-v"]), "debug");
        assert_eq!(lvl(&["mayflyd", "-vv"]), "trace");
        assert_eq!(lvl(&["mayflyd", "-q"]), "warn");
        assert_eq!(lvl(&["mayflyd", "-qq"]), "error");
    }
}
