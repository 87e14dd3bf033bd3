//! `mayflyd`'s command line, and how flags, environment, config file and
//! defaults become the settings it runs with.
//!
//! Precedence is flag > environment > config file > default, per setting,
//! and it is clap's own: clap takes a flag over its environment variable
//! and either over the argument's default, and says which one it used. The
//! config file comes in as the defaults: [`layer`] checks the whole file
//! ([`crate::config_file`]), then parses the command line again with each
//! key's value as its flag's default. So every value, wherever it came from,
//! is parsed by the one parser its field in [`Settings`] names.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::PathBuf;

use clap::parser::ValueSource;
use clap::{Arg, ArgMatches, Command, CommandFactory, FromArgMatches, Parser};

use crate::config_file::{self, ConfigError, ConfigFile, ConfigPath};
use crate::settings::{self, Settings};

/// Mayfly's daemon: a durable local job queue behind a Unix socket.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "mayflyd",
    version,
    about = "Mayfly's daemon: runs the jobs that `mayflyctl submit` queues.",
    long_about = "Mayfly's daemon: runs the jobs that `mayflyctl submit` queues, with \
priorities, queues and concurrency limits. It listens on a Unix socket (mode 0600) and keeps \
job output under the state dir. It serves only its own user and root (--allow-uid adds \
others), checking each connection's peer credentials, and keeps its files private (a job's \
environment can hold secrets).\n\nSIGTERM or SIGINT starts a graceful shutdown: no new jobs \
start, running jobs get SIGTERM, and whatever still runs after --shutdown-timeout gets SIGKILL. \
A second signal exits at once.\n\n\
Settings come from, per setting and in this order of precedence: flags, environment variables \
(each named with its flag below), the config file, and the built-in defaults. The config file is \
optional TOML at $XDG_CONFIG_HOME/mayfly/mayflyd.toml (else ~/.config/mayfly/mayflyd.toml), or \
the file named by --config. Its keys are the flags' names in snake_case (--shutdown-timeout is \
shutdown_timeout); every flag has one except --repair-wal, --dump-state, --config, \
--print-config and -v/-q, which are for one run. Numbers are integers (concurrency = 4), \
durations are strings (quantum = \"10ms\"), paths are absolute or start with ~/, and \
http_addr = \"off\" serves no HTTP. An unknown key or a bad value is an error naming \
FILE:LINE:COL. --print-config shows the effective settings and where each came from.\n\n\
Exit status: 0 after a graceful shutdown or --print-config; 1 when the daemon could not run \
(socket or port in use, unreadable state); 2 for a bad flag or a bad config file.",
    after_help = "Examples:\n  mayflyd                         # defaults: socket under $XDG_RUNTIME_DIR, one job per CPU\n  mayflyd --concurrency 2 -v\n  RUST_LOG=mayflyd=debug mayflyd --log-format json\n  mayflyd --print-config          # effective settings, and where each came from\n\nA config file (~/.config/mayfly/mayflyd.toml):\n  concurrency = 4\n  state_dir = \"~/jobs/state\"\n  shutdown_timeout = \"30s\"\n  http_addr = \"off\""
)]
pub struct Args {
    /// The daemon's settings.
    #[command(flatten)]
    pub settings: Settings,

    /// Read settings from this TOML file instead of the default
    /// $XDG_CONFIG_HOME/mayfly/mayflyd.toml (else ~/.config/mayfly/mayflyd.toml).
    /// Keys are the flags' names in snake_case (concurrency = 4, quantum =
    /// "10ms"). Flags and environment variables win over the file, the file
    /// wins over the defaults. The default file may be missing; this one must
    /// exist.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

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
}

impl Args {
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
}

/// Where one setting's effective value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A command-line flag.
    Flag,
    /// The named environment variable.
    Env(String),
    /// The config file at this path.
    File(PathBuf),
    /// The built-in default.
    Default,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Flag => f.write_str("flag"),
            Self::Env(name) => write!(f, "env {name}"),
            Self::File(path) => write!(f, "config {}", path.display()),
            Self::Default => f.write_str("default"),
        }
    }
}

/// One line of `--print-config`: a setting, its effective value, and where
/// that value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provenance {
    /// The setting's config key (its flag in snake_case).
    pub key: String,
    /// The value as TOML (`"10ms"`, `4`), or `None` when the setting is unset
    /// (`push_gateway` without a gateway).
    pub value: Option<String>,
    /// Where it came from.
    pub source: Source,
}

/// The command line with the config file and the defaults under it.
#[derive(Debug, Clone)]
pub struct Layered {
    /// The flags, with [`Args::settings`] the effective settings.
    pub args: Args,
    /// One entry per config key, in the order of [`Settings`]' fields.
    pub provenance: Vec<Provenance>,
}

/// Everything `mayflyd` needs from its command line, environment and config
/// file before it starts.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The effective flags and settings, and where each setting came from.
    pub layered: Layered,
    /// Where the config file was looked for.
    pub location: ConfigPath,
    /// Whether a config file was found there.
    pub found: bool,
}

/// Why `mayflyd` cannot start with this command line and config file: a
/// usage error either way (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// A bad flag, or `--help`/`--version` (clap prints and exits).
    #[error(transparent)]
    Flags(#[from] clap::Error),
    /// A bad or missing config file.
    #[error(transparent)]
    File(#[from] ConfigError),
}

/// Parses `argv` (program name first), reads the config file it names (or
/// the default one) and layers them: see the module documentation.
pub fn resolve(argv: &[OsString]) -> Result<Resolved, ResolveError> {
    let flags_only = Args::try_parse_from(argv)?;
    let location = config_file::locate(flags_only.config.as_deref());
    let file = config_file::load(&location)?;
    let layered = layer(argv, file.as_ref(), std::env::var_os("HOME").as_deref())?;
    Ok(Resolved {
        layered,
        location,
        found: file.is_some(),
    })
}

/// Parses `argv` with `file`'s values as the flags' defaults, so that per
/// setting a flag beats its environment variable, which beats the file,
/// which beats the built-in default. `~/` in the file's paths is `home`.
///
/// Every key of the file is checked first, even where a flag overrides it;
/// the first bad one is the error.
pub fn layer(
    argv: &[OsString],
    file: Option<&ConfigFile>,
    home: Option<&OsStr>,
) -> Result<Layered, ResolveError> {
    let keyed = settings::keyed_args();
    let (matches, provenance, mut cmd) = layer_on(Args::command(), &keyed, argv, file, home)?;
    let args = Args::from_arg_matches(&matches).map_err(|e| e.format(&mut cmd))?;
    Ok(Layered { args, provenance })
}

/// [`layer`] on any command `cmd` whose arguments `keyed` have config keys:
/// the matches, where each keyed value came from, and the command as
/// parsed (to format errors with).
fn layer_on(
    mut cmd: Command,
    keyed: &[Arg],
    argv: &[OsString],
    file: Option<&ConfigFile>,
    home: Option<&OsStr>,
) -> Result<(ArgMatches, Vec<Provenance>, Command), ResolveError> {
    let from_file = match file {
        Some(file) => file.flag_values(keyed, home)?,
        None => Vec::new(),
    };
    for given in from_file {
        cmd = cmd.mut_arg(&given.key, |arg| arg.default_values(given.values));
    }
    let matches = cmd.try_get_matches_from_mut(argv)?;
    let provenance = keyed
        .iter()
        .map(|arg| provenance(arg, &matches, file))
        .collect();
    Ok((matches, provenance, cmd))
}

/// Where `arg`'s value in `matches` came from, and that value as TOML.
fn provenance(arg: &Arg, matches: &ArgMatches, file: Option<&ConfigFile>) -> Provenance {
    let key = arg.get_id().as_str();
    let source = match matches.value_source(key) {
        Some(ValueSource::CommandLine) => Source::Flag,
        Some(ValueSource::EnvVariable) => Source::Env(
            arg.get_env()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default(),
        ),
        _ => match file {
            Some(file) if file.has(key) => Source::File(file.path.clone()),
            _ => Source::Default,
        },
    };
    let raw: Vec<&OsStr> = matches
        .get_raw(key)
        .map(Iterator::collect)
        .unwrap_or_default();
    Provenance {
        key: key.to_string(),
        value: config_file::toml_value(arg, &raw),
        source,
    }
}

/// The text `mayflyd --print-config` prints: a comment naming the config
/// file, then one `key = value  # source` line per setting, the comments
/// aligned. Unset settings are commented out, so the text is itself a valid
/// config file.
pub fn render(provenance: &[Provenance], location: &ConfigPath, found: bool) -> String {
    let file_line = match location {
        ConfigPath::Given(path) => format!("# config file: {} (--config)", path.display()),
        ConfigPath::Default(path) if found => format!("# config file: {}", path.display()),
        ConfigPath::Default(path) => {
            format!("# config file: {} (not found)", path.display())
        }
        ConfigPath::Nowhere => {
            "# config file: none (neither XDG_CONFIG_HOME nor HOME is set)".to_string()
        }
    };
    let lines: Vec<(String, &Source)> = provenance
        .iter()
        .map(|p| {
            let text = match &p.value {
                Some(value) => format!("{} = {value}", p.key),
                None => format!("# {} (not set)", p.key),
            };
            (text, &p.source)
        })
        .collect();
    let width = lines
        .iter()
        .map(|(t, _)| t.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    out.push_str(
        "# mayflyd's effective settings; precedence: flag > env > config file > default\n",
    );
    out.push_str(&file_line);
    out.push('\n');
    for (text, source) in lines {
        out.push_str(&format!("{text:<width$}  # {source}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::Duration;

    use super::*;
    use crate::settings::{HttpAddr, LogFormat};

    /// The home folder of the tests' `~/`.
    const HOME: &str = "/home/me";

    /// `argv` with the program name in front.
    fn argv(words: &[&str]) -> Vec<OsString> {
        std::iter::once("mayflyd")
            .chain(words.iter().copied())
            .map(OsString::from)
            .collect()
    }

    /// The settings of `words` alone, without a config file.
    fn flags(words: &[&str]) -> Settings {
        Args::try_parse_from(argv(words))
            .expect("valid flags")
            .settings
    }

    /// A config file at `/etc/x/mayflyd.toml` with `text`.
    fn file(text: &str) -> ConfigFile {
        config_file::parse(PathBuf::from("/etc/x/mayflyd.toml"), text.to_string())
            .expect("valid TOML")
    }

    /// `words` layered over `file`.
    fn layered(words: &[&str], file: Option<&ConfigFile>) -> Layered {
        layer(&argv(words), file, Some(OsStr::new(HOME))).expect("valid flags and file")
    }

    /// Where `key` came from in `l`, and its shown value.
    fn prov<'a>(l: &'a Layered, key: &str) -> &'a Provenance {
        l.provenance
            .iter()
            .find(|p| p.key == key)
            .unwrap_or_else(|| panic!("no {key} in {:?}", l.provenance))
    }

    /// `s` as an address.
    fn addr(s: &str) -> HttpAddr {
        HttpAddr(Some(s.parse::<SocketAddr>().expect("an address")))
    }

    /// The config file used by the precedence tests.
    const FILE: &str = "\
socket = \"/file/s.sock\"
state_dir = \"/file/state\"
concurrency = 5
quantum = \"25ms\"
";

    #[test]
    fn flags_override_defaults() {
        let s = flags(&[
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
        ]);
        assert_eq!(s.socket, PathBuf::from("/tmp/x.sock"));
        assert_eq!(s.state_dir, PathBuf::from("/tmp/st"));
        assert_eq!(s.concurrency, 3);
        assert_eq!(s.shutdown_timeout, Duration::from_secs(2));
        assert_eq!(s.quantum, Duration::from_millis(5));
        assert_eq!(s.wal_flush_interval, Duration::from_millis(250));
        assert_eq!(s.snapshot_bytes, 4096);
        assert!(s.one_run.repair_wal);
        assert!(!flags(&[]).one_run.repair_wal);
    }

    #[test]
    fn http_and_metrics_flags() {
        let defaults = flags(&[]);
        assert_eq!(defaults.http_addr, addr("127.0.0.1:9479"));
        assert_eq!(defaults.push_gateway, None);
        assert_eq!(defaults.metrics_interval, Duration::from_secs(10));
        let s = flags(&[
            "--http-addr",
            "0.0.0.0:8080",
            "--push-gateway",
            "http://127.0.0.1:9091",
            "--metrics-interval",
            "200ms",
        ]);
        assert_eq!(s.http_addr, addr("0.0.0.0:8080"));
        assert_eq!(
            s.push_gateway.map(|u| u.to_string()),
            Some("http://127.0.0.1:9091/".to_string())
        );
        assert_eq!(s.metrics_interval, Duration::from_millis(200));
        assert_eq!(flags(&["--http-addr", "off"]).http_addr, HttpAddr(None));
        let err = Args::try_parse_from(argv(&["--http-addr", "localhost"])).unwrap_err();
        assert!(err.to_string().contains("127.0.0.1:9479"), "{err}");
        assert!(Args::try_parse_from(argv(&["--push-gateway", "https://gw"])).is_err());
        assert!(Args::try_parse_from(argv(&["--metrics-interval", "0s"])).is_err());
    }

    #[test]
    fn bad_values_are_usage_errors() {
        assert!(Args::try_parse_from(argv(&["--concurrency", "0"])).is_err());
        let err = Args::try_parse_from(argv(&["--quantum", "soon"])).unwrap_err();
        assert!(err.to_string().contains("500ms"), "{err}");
    }

    #[test]
    fn verbosity_maps_to_levels() {
        let lvl = |a: &[&str]| Args::try_parse_from(argv(a)).unwrap().log_level();
        assert_eq!(lvl(&[]), "info");
        assert_eq!(lvl(&["-v"]), "debug");
        assert_eq!(lvl(&["-vv"]), "trace");
        assert_eq!(lvl(&["-q"]), "warn");
        assert_eq!(lvl(&["-qq"]), "error");
    }

    #[test]
    fn the_file_wins_over_the_defaults() {
        let f = file(FILE);
        let l = layered(&[], Some(&f));
        let s = &l.args.settings;
        assert_eq!(s.socket, PathBuf::from("/file/s.sock"));
        assert_eq!(s.state_dir, PathBuf::from("/file/state"));
        assert_eq!(s.concurrency, 5);
        // `quantum` has a built-in default ("10ms"): that must not count as
        // given.
        assert_eq!(s.quantum, Duration::from_millis(25));
        let from_file = Source::File(PathBuf::from("/etc/x/mayflyd.toml"));
        for key in ["socket", "state_dir", "concurrency", "quantum"] {
            assert_eq!(prov(&l, key).source, from_file, "{key}");
        }
        assert_eq!(prov(&l, "quantum").value.as_deref(), Some("\"25ms\""));
        // Keys the file lacks keep their defaults.
        assert_eq!(s.shutdown_timeout, Duration::from_secs(10));
        assert_eq!(prov(&l, "shutdown_timeout").source, Source::Default);
        assert_eq!(s.log_format, LogFormat::Text);
    }

    #[test]
    fn flags_win_over_the_file() {
        let f = file(FILE);
        let l = layered(
            &[
                "--concurrency",
                "3",
                "--quantum",
                "10ms",
                "--state-dir",
                "/flag/state",
            ],
            Some(&f),
        );
        let s = &l.args.settings;
        assert_eq!(s.concurrency, 3);
        // Given on the command line, even though it equals the default.
        assert_eq!(s.quantum, Duration::from_millis(10));
        assert_eq!(s.state_dir, PathBuf::from("/flag/state"));
        for key in ["concurrency", "quantum", "state_dir"] {
            assert_eq!(prov(&l, key).source, Source::Flag, "{key}");
        }
        assert_eq!(s.socket, PathBuf::from("/file/s.sock"));
    }

    #[test]
    fn without_a_file_the_flags_and_defaults_apply() {
        let l = layered(&["--kill-grace", "2s", "--repair-wal"], None);
        let s = &l.args.settings;
        let plain = Settings::default();
        assert_eq!(s.kill_grace, Duration::from_secs(2));
        assert_eq!(s.socket, plain.socket);
        assert_eq!(s.concurrency, plain.concurrency);
        assert!(s.one_run.repair_wal);
        assert_eq!(prov(&l, "kill_grace").source, Source::Flag);
        assert_eq!(prov(&l, "concurrency").source, Source::Default);
        let keys: Vec<_> = l.provenance.iter().map(|p| p.key.as_str()).collect();
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
    fn every_key_is_read() {
        let f = file(
            "socket = \"/s\"\nallow_uid = [7]\nstate_dir = \"~/d\"\nconcurrency = 7\nquantum = \"1ms\"\n\
             shutdown_timeout = \"1m\"\nshutdown_step_timeout = \"7s\"\nkill_grace = \"3s\"\nwal_flush_interval = \"5ms\"\n\
             snapshot_bytes = 4096\nhttp_addr = \"0.0.0.0:8080\"\ngrpc_addr = [\"off\"]\n\
             a2a_addr = \"off\"\na2a_max_connections = 32\na2a_push_queue = 64\n\
             a2a_poll_interval = \"250ms\"\na2a_retry_for = \"30s\"\n\
             push_gateway = \"http://127.0.0.1:9091\"\nmetrics_interval = \"2s\"\n\
             log_format = \"json\"\nmax_jobs = 5000\nmax_job_bytes = \"64K\"\n\
             max_output = 1048576\non_finish = \"notify-send done\"\non_finish_timeout = \"9s\"\n\
             on_finish_concurrency = 2\nmax_connections = 16\nhandshake_timeout = \"2s\"\n\
             idle_timeout = \"1m\"\nframe_timeout = \"3s\"\nmax_in_flight = 8\n\
             request_buffer_bytes = \"32M\"\nreply_buffer_bytes = 1048576\n\
             slurm_poll_interval = \"250ms\"\n",
        );
        let l = layered(&[], Some(&f));
        let s = &l.args.settings;
        assert_eq!(s.socket, PathBuf::from("/s"));
        assert_eq!(s.allow_uid, [7]);
        assert_eq!(s.state_dir, PathBuf::from("/home/me/d"));
        assert_eq!(s.concurrency, 7);
        assert_eq!(s.quantum, Duration::from_millis(1));
        assert_eq!(s.shutdown_timeout, Duration::from_secs(60));
        assert_eq!(s.shutdown_step_timeout, Duration::from_secs(7));
        assert_eq!(s.kill_grace, Duration::from_secs(3));
        assert_eq!(s.wal_flush_interval, Duration::from_millis(5));
        assert_eq!(s.snapshot_bytes, 4096);
        assert_eq!(s.http_addr, addr("0.0.0.0:8080"));
        assert_eq!(s.a2a_addr, settings::A2aAddr(None));
        assert_eq!(s.a2a_max_connections, 32);
        assert_eq!(s.a2a_push_queue, 64);
        assert_eq!(s.a2a_poll_interval, Duration::from_millis(250));
        assert_eq!(s.a2a_retry_for, Duration::from_secs(30));
        assert_eq!(s.grpc_addr, [settings::GrpcAddr::Off]);
        assert_eq!(
            s.push_gateway.as_ref().map(ToString::to_string).as_deref(),
            Some("http://127.0.0.1:9091/")
        );
        assert_eq!(s.metrics_interval, Duration::from_secs(2));
        assert_eq!(s.log_format, LogFormat::Json);
        assert_eq!(s.max_jobs, 5000);
        assert_eq!(s.max_job_bytes, settings::Size(64 << 10));
        assert_eq!(s.max_output, Some(settings::Size(1 << 20)));
        assert_eq!(s.on_finish.as_deref(), Some("notify-send done"));
        assert_eq!(s.on_finish_timeout, Duration::from_secs(9));
        assert_eq!(s.on_finish_concurrency, 2);
        assert_eq!(s.max_connections, 16);
        assert_eq!(s.handshake_timeout, Duration::from_secs(2));
        assert_eq!(s.idle_timeout, Duration::from_secs(60));
        assert_eq!(s.frame_timeout, Duration::from_secs(3));
        assert_eq!(s.max_in_flight, 8);
        assert_eq!(s.request_buffer_bytes, settings::Size(32 << 20));
        assert_eq!(s.reply_buffer_bytes, settings::Size(1 << 20));
        assert_eq!(s.slurm_poll_interval, Duration::from_millis(250));
        assert!(
            l.provenance
                .iter()
                .all(|p| matches!(p.source, Source::File(_))),
            "{:?}",
            l.provenance
        );
    }

    /// `grpc_addr` is a list like `allow_uid`; a build without the `grpc`
    /// feature takes only `off`, and says how to get the rest.
    #[test]
    fn grpc_addr_is_a_list_that_needs_the_feature_for_anything_but_off() {
        let f = file("grpc_addr = [\"127.0.0.1:50051\", \"unix:/run/g.sock\"]\n");
        let result = layer(&argv(&[]), Some(&f), Some(OsStr::new(HOME)));
        if cfg!(feature = "grpc") {
            let listeners = result
                .expect("a list of listeners")
                .args
                .settings
                .grpc_listeners();
            assert_eq!(listeners.unix, Some(PathBuf::from("/run/g.sock")));
            assert_eq!(listeners.tcp, ["127.0.0.1:50051".parse().unwrap()]);
        } else {
            let err = match result {
                Err(ResolveError::File(e)) => e.to_string(),
                other => panic!("refused without the feature, not {other:?}"),
            };
            assert!(err.contains("rebuild it with --features grpc"), "{err}");
        }
    }

    #[test]
    fn http_addr_off_turns_http_off() {
        let f = file("http_addr = \"off\"\n");
        let l = layered(&[], Some(&f));
        assert_eq!(l.args.settings.http_addr, HttpAddr(None));
        assert_eq!(prov(&l, "http_addr").value.as_deref(), Some("\"off\""));
        // And a flag turns it back on.
        let l = layered(&["--http-addr", "127.0.0.1:1"], Some(&f));
        assert_eq!(l.args.settings.http_addr, addr("127.0.0.1:1"));
    }

    #[test]
    fn a_bad_value_is_an_error_even_where_a_flag_overrides_it() {
        let f = file("quantum = \"soon\"\n");
        let err = layer(&argv(&["--quantum", "5ms"]), Some(&f), None).unwrap_err();
        assert!(matches!(err, ResolveError::File(_)), "{err:?}");
        assert!(err.to_string().contains("quantum"), "{err}");
    }

    #[test]
    fn allow_uid_is_a_list_that_layers_like_any_other_setting() {
        let uids = |words: &[&str], f: Option<&ConfigFile>| {
            let l = layered(words, f);
            (
                l.args.settings.allow_uid.clone(),
                prov(&l, "allow_uid").clone(),
            )
        };
        let f = file("allow_uid = [1000, 1001]\n");
        let (got, p) = uids(&[], Some(&f));
        assert_eq!(got, [1000, 1001]);
        assert_eq!(p.value.as_deref(), Some("[1000, 1001]"));
        assert!(matches!(p.source, Source::File(_)), "{p:?}");
        // The flags replace the file's whole list.
        let (got, p) = uids(&["--allow-uid", "5", "--allow-uid", "6"], Some(&f));
        assert_eq!(got, [5, 6]);
        assert_eq!(p.source, Source::Flag);
        let (got, p) = uids(&[], None);
        assert!(got.is_empty());
        assert_eq!(
            (p.value.as_deref(), p.source),
            (Some("[]"), Source::Default)
        );
        // A uid is a whole number, in the file as on the command line.
        let err = layer(&argv(&[]), Some(&file("allow_uid = [1000, -1]\n")), None).unwrap_err();
        assert!(err.to_string().contains("allow_uid: item 2"), "{err}");
        assert!(Args::try_parse_from(argv(&["--allow-uid", "me"])).is_err());
    }

    #[test]
    fn print_config_output_is_itself_a_config_file() {
        let f = file("state_dir = \"/file/st\\\"ate\"\nquantum = \"1s 500ms\"\n");
        let l = layered(&["--concurrency", "3", "--http-addr", "off"], Some(&f));
        let text = render(
            &l.provenance,
            &ConfigPath::Given(PathBuf::from("/etc/x/mayflyd.toml")),
            true,
        );
        assert!(text.contains("\nconcurrency = 3"), "{text}");
        assert!(text.contains("# flag\n"), "{text}");
        assert!(text.contains("# config /etc/x/mayflyd.toml\n"), "{text}");
        assert!(text.contains("# push_gateway (not set)"), "{text}");
        // The source comments line up.
        let columns: Vec<_> = text
            .lines()
            .filter(|l| !l.starts_with("# mayflyd") && !l.starts_with("# config file"))
            .map(|l| l.rfind("  # ").expect("a source comment"))
            .collect();
        assert!(columns.windows(2).all(|w| w[0] == w[1]), "{text}");
        // Read back, it gives the same settings.
        let again =
            config_file::parse(PathBuf::from("/printed.toml"), text.clone()).expect("valid TOML");
        let s2 = layered(&[], Some(&again)).args.settings;
        let s = &l.args.settings;
        assert_eq!(s2.state_dir, PathBuf::from("/file/st\"ate"));
        assert_eq!(s2.quantum, Duration::from_millis(1500));
        assert_eq!(s2.concurrency, 3);
        assert_eq!(s2.http_addr, HttpAddr(None));
        assert_eq!(s2.socket, s.socket);
        assert_eq!(s2.push_gateway, None);
        assert_eq!(s2.snapshot_bytes, s.snapshot_bytes);
        assert_eq!(s2.log_format, s.log_format);
    }

    #[test]
    fn sources_render_as_print_config_shows_them() {
        assert_eq!(Source::Flag.to_string(), "flag");
        assert_eq!(
            Source::Env("MAYFLY_SOCKET".into()).to_string(),
            "env MAYFLY_SOCKET"
        );
        assert_eq!(
            Source::File(PathBuf::from("/a/b.toml")).to_string(),
            "config /a/b.toml"
        );
        assert_eq!(Source::Default.to_string(), "default");
    }
}
