//! `mayflyd`'s optional TOML config file, and the merge of flags,
//! environment, file and defaults into the effective settings.
//!
//! The file is `$XDG_CONFIG_HOME/mayfly/mayflyd.toml`, else
//! `~/.config/mayfly/mayflyd.toml`, or the one named by `--config FILE`. The
//! default file may be missing; a file named by `--config` must exist.
//!
//! Precedence is decided per setting: **flag > environment > config file >
//! default**. Every setting with a lasting meaning has a key, spelled like its
//! flag in snake_case:
//!
//! | key | type | example |
//! |---|---|---|
//! | `socket` | path | `"/run/user/1000/mayfly/mayfly.sock"` |
//! | `state_dir` | path | `"~/.local/state/mayfly"` |
//! | `concurrency` | integer ≥ 1 | `4` |
//! | `quantum` | duration | `"10ms"` |
//! | `shutdown_timeout` | duration | `"10s"` |
//! | `kill_grace` | duration | `"5s"` |
//! | `wal_flush_interval` | duration | `"100ms"` |
//! | `snapshot_bytes` | integer ≥ 0 | `67108864` |
//! | `http_addr` | `"IP:PORT"` or `"off"` | `"127.0.0.1:9479"` |
//! | `push_gateway` | `http://` URL | `"http://127.0.0.1:9091"` |
//! | `metrics_interval` | duration > 0 | `"10s"` |
//! | `log_format` | `"text"` or `"json"` | `"json"` |
//!
//! Paths are absolute, or start with `~/` (the home folder). Durations are
//! strings in human form (`"500ms"`, `"30s"`, `"5m"`). The flags that only make
//! sense for one run have no key: `-v`/`-q` (use `RUST_LOG` for a lasting log
//! level), `--repair-wal`, `--dump-state`, `--config` and `--print-config`.
//!
//! An unknown key, a value of the wrong type and a bad value are all errors
//! ([`ConfigError`]), reported as one line `FILE:LINE:COL: message`;
//! `mayflyd` exits 2 for them, like for a bad flag. The whole file is checked
//! even where a flag overrides a key, so a mistake in it never waits for the
//! day the flag is dropped.
//!
//! [`merge`] does no I/O: the command line's values arrive as [`Args`], where
//! clap found each one as [`ArgSources`], and the file as a parsed
//! [`ConfigFile`]. It reads the environment only as the built-in defaults do
//! (`XDG_RUNTIME_DIR`, `XDG_STATE_HOME`, `HOME`, the CPU count) and for the
//! `~/` of paths in the file.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fmt;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::ValueEnum;
use clap::parser::ValueSource;
use serde::Deserialize;
use toml::Spanned;

use crate::config::{Args, LogFormat, parse_duration, parse_http_addr};
use crate::scheduler::Settings;

/// The default config file's place under the config home.
const FILE_UNDER_CONFIG_HOME: &str = "mayfly/mayflyd.toml";

/// One key's value as written in the file, with its byte span there.
type Raw = Option<Spanned<toml::Value>>;

/// The keys of the config file, as written: each is checked and converted by
/// [`merge`]. Any other key is an error that names it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// `socket`: the Unix socket to listen on (a path).
    pub socket: Raw,
    /// `state_dir`: where the WAL, snapshots and job output are kept (a path).
    pub state_dir: Raw,
    /// `concurrency`: how many jobs may run at once (an integer ≥ 1).
    pub concurrency: Raw,
    /// `quantum`: the scheduler's time slice (a duration).
    pub quantum: Raw,
    /// `shutdown_timeout`: how long jobs get after SIGTERM at shutdown.
    pub shutdown_timeout: Raw,
    /// `kill_grace`: how long a cancelled job gets after SIGTERM.
    pub kill_grace: Raw,
    /// `wal_flush_interval`: how often the daemon's own records are synced.
    pub wal_flush_interval: Raw,
    /// `snapshot_bytes`: log growth that triggers a snapshot (an integer).
    pub snapshot_bytes: Raw,
    /// `http_addr`: where to serve HTTP, `"IP:PORT"` or `"off"`.
    pub http_addr: Raw,
    /// `push_gateway`: a Prometheus Pushgateway URL (`http://…`).
    pub push_gateway: Raw,
    /// `metrics_interval`: how often metrics are refreshed and pushed.
    pub metrics_interval: Raw,
    /// `log_format`: `"text"` or `"json"`.
    pub log_format: Raw,
}

/// A config file that was read and parsed (its values are checked by
/// [`merge`]).
#[derive(Debug)]
pub struct ConfigFile {
    /// Where it was read from, as given.
    pub path: PathBuf,
    /// Its text, to turn byte spans into lines and columns.
    pub text: String,
    /// Its keys.
    pub values: FileConfig,
}

/// Which config file to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigPath {
    /// Named by `--config`: it must exist.
    Given(PathBuf),
    /// The default file: it may be missing.
    Default(PathBuf),
    /// Neither `XDG_CONFIG_HOME` nor `HOME` is set: there is no default file.
    Nowhere,
}

/// Why the config file could not be used. Each renders as one line.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file named by `--config` does not exist.
    #[error(
        "config file {} (given with --config) does not exist; check the path, or leave \
         out --config to use {}",
        path.display(),
        DEFAULT_LOCATION
    )]
    Missing {
        /// The path given.
        path: PathBuf,
    },
    /// The file exists but could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// The file is not valid TOML, has an unknown key, or a bad value.
    #[error("{at}: {message}")]
    Invalid {
        /// `FILE:LINE:COL` (or just `FILE` when the place is unknown).
        at: String,
        /// What is wrong, on one line.
        message: String,
    },
}

/// The default file, as the help and the errors name it.
pub const DEFAULT_LOCATION: &str =
    "$XDG_CONFIG_HOME/mayfly/mayflyd.toml (else ~/.config/mayfly/mayflyd.toml)";

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
    pub key: &'static str,
    /// The value as TOML (`"10ms"`, `4`), or `None` when the setting is unset
    /// (`push_gateway` without a gateway).
    pub value: Option<String>,
    /// Where it came from.
    pub source: Source,
}

/// The settings the daemon runs with, and where each came from.
#[derive(Debug, Clone)]
pub struct Effective {
    /// The scheduler's settings.
    pub settings: Settings,
    /// How log lines look.
    pub log_format: LogFormat,
    /// One entry per config key, in the file's documented order.
    pub provenance: Vec<Provenance>,
}

/// Which arguments the command line or the environment gave, by clap id (the
/// field name, which is also the config key). Arguments not listed here took
/// clap's default or were absent, so the config file may set them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArgSources {
    /// Clap id → [`Source::Flag`] or [`Source::Env`].
    given: BTreeMap<String, Source>,
}

impl ArgSources {
    /// Reads where each argument of `cmd` came from in `matches`.
    pub fn from_matches(cmd: &clap::Command, matches: &clap::ArgMatches) -> Self {
        let mut given = BTreeMap::new();
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            let source = match matches.value_source(id) {
                Some(ValueSource::CommandLine) => Source::Flag,
                Some(ValueSource::EnvVariable) => Source::Env(
                    arg.get_env()
                        .map(|name| name.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                ),
                _ => continue,
            };
            given.insert(id.to_string(), source);
        }
        Self { given }
    }

    /// Records that `id` came from `source` (for callers that build the
    /// sources by hand, such as tests).
    pub fn with(mut self, id: &str, source: Source) -> Self {
        self.given.insert(id.to_string(), source);
        self
    }

    /// Where `id` came from, if the command line or environment gave it.
    pub fn get(&self, id: &str) -> Option<&Source> {
        self.given.get(id)
    }
}

/// The default config file for these values of `XDG_CONFIG_HOME` and
/// `HOME`. Empty or relative values are ignored, as the XDG base directory
/// specification asks.
pub fn default_path_in(xdg_config_home: Option<&OsStr>, home: Option<&OsStr>) -> ConfigPath {
    if let Some(dir) = absolute(xdg_config_home) {
        return ConfigPath::Default(dir.join(FILE_UNDER_CONFIG_HOME));
    }
    match absolute(home) {
        Some(home) => ConfigPath::Default(home.join(".config").join(FILE_UNDER_CONFIG_HOME)),
        None => ConfigPath::Nowhere,
    }
}

/// `v` as a path, if it is set and absolute.
fn absolute(v: Option<&OsStr>) -> Option<&Path> {
    v.map(Path::new).filter(|p| p.is_absolute())
}

/// The config file to read: `--config`'s, else the default one of this
/// process's environment.
pub fn locate(flag: Option<&Path>) -> ConfigPath {
    match flag {
        Some(path) => ConfigPath::Given(path.to_path_buf()),
        None => default_path_in(
            std::env::var_os("XDG_CONFIG_HOME").as_deref(),
            std::env::var_os("HOME").as_deref(),
        ),
    }
}

/// Reads and parses the config file at `location`: `Ok(None)` when there is
/// none (a missing default file is fine); a missing `--config` file, an
/// unreadable file or a bad one is an error.
pub fn load(location: &ConfigPath) -> Result<Option<ConfigFile>, ConfigError> {
    let (path, required) = match location {
        ConfigPath::Given(path) => (path, true),
        ConfigPath::Default(path) => (path, false),
        ConfigPath::Nowhere => return Ok(None),
    };
    match std::fs::read_to_string(path) {
        Ok(text) => parse(path.clone(), text).map(Some),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if required {
                Err(ConfigError::Missing { path: path.clone() })
            } else {
                Ok(None)
            }
        }
        Err(source) => Err(ConfigError::Read {
            path: path.clone(),
            source,
        }),
    }
}

/// Parses the text of a config file read from `path`: TOML syntax and key
/// names; the values are checked by [`merge`].
pub fn parse(path: PathBuf, text: String) -> Result<ConfigFile, ConfigError> {
    match toml::from_str::<FileConfig>(&text) {
        Ok(values) => Ok(ConfigFile { path, text, values }),
        Err(e) => Err(invalid(&path, &text, e.span(), &in_our_words(e.message()))),
    }
}

/// serde's "unknown field `x`, expected one of …" in the words of a config
/// file: "unknown key `x`; the keys are …". Other messages are unchanged.
fn in_our_words(message: &str) -> String {
    match message.strip_prefix("unknown field ") {
        Some(rest) => format!(
            "unknown key {}",
            rest.replacen(", expected one of ", "; the keys are ", 1)
                .replacen(", expected ", "; the key is ", 1)
        ),
        None => message.to_string(),
    }
}

/// An [`ConfigError::Invalid`] at `span` of `text` (a file read from `path`),
/// with `message` folded onto one line.
fn invalid(path: &Path, text: &str, span: Option<Range<usize>>, message: &str) -> ConfigError {
    let at = match span {
        Some(span) => {
            let (line, col) = line_col(text, span.start);
            format!("{}:{line}:{col}", path.display())
        }
        None => path.display().to_string(),
    };
    let message = message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    ConfigError::Invalid { at, message }
}

/// The 1-based line and column (in characters) of byte `offset` in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, col)
}

impl ConfigFile {
    /// Checks `key`'s value with `check`, if the file has the key: the
    /// converted value, or an error at the value's place naming the key.
    fn value<T>(
        &self,
        key: &str,
        raw: impl Fn(&FileConfig) -> &Raw,
        check: impl Fn(&toml::Value) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        let Some(raw) = raw(&self.values) else {
            return Ok(None);
        };
        check(raw.get_ref()).map(Some).map_err(|message| {
            invalid(
                &self.path,
                &self.text,
                Some(raw.span()),
                &format!("{key}: {message}"),
            )
        })
    }
}

/// Collects the effective settings one key at a time, remembering where each
/// came from.
struct Merger<'a> {
    /// What the command line and environment gave.
    given: &'a ArgSources,
    /// The config file, if one was read.
    file: Option<&'a ConfigFile>,
    /// The provenance of the keys merged so far.
    provenance: Vec<Provenance>,
}

impl Merger<'_> {
    /// The effective value of `key`: `cli` when the command line or the
    /// environment gave it, else the file's value, else `cli` (which then
    /// holds clap's default or the built-in one). The file's value is checked
    /// with `check` even when it is not used. `show` renders the result as
    /// TOML, `None` for unset.
    fn pick<T>(
        &mut self,
        key: &'static str,
        cli: T,
        raw: impl Fn(&FileConfig) -> &Raw,
        check: impl Fn(&toml::Value) -> Result<T, String>,
        show: impl Fn(&T) -> Option<String>,
    ) -> Result<T, ConfigError> {
        let from_file = match self.file {
            Some(file) => file
                .value(key, raw, check)?
                .map(|v| (v, Source::File(file.path.clone()))),
            None => None,
        };
        let (value, source) = match (self.given.get(key), from_file) {
            (Some(given), _) => (cli, given.clone()),
            (None, Some(file)) => file,
            (None, None) => (cli, Source::Default),
        };
        self.provenance.push(Provenance {
            key,
            value: show(&value),
            source,
        });
        Ok(value)
    }
}

/// Merges the command line (`args`, with where clap found each value in
/// `given`), the config file and the defaults into the effective settings:
/// per setting, flag > environment > config file > default.
///
/// Every key of the file is checked, even where a flag overrides it; the
/// first bad one is the error.
pub fn merge(
    args: &Args,
    given: &ArgSources,
    file: Option<&ConfigFile>,
) -> Result<Effective, ConfigError> {
    let defaults = Settings::default();
    let home = std::env::var_os("HOME");
    let path = |v: &toml::Value| file_path(v, home.as_deref());
    let mut m = Merger {
        given,
        file,
        provenance: Vec::new(),
    };
    let socket = m.pick(
        "socket",
        args.socket.clone().unwrap_or(defaults.socket.clone()),
        |f| &f.socket,
        path,
        |p| Some(toml_string(&p.to_string_lossy())),
    )?;
    let state_dir = m.pick(
        "state_dir",
        args.state_dir.clone().unwrap_or(defaults.state_dir.clone()),
        |f| &f.state_dir,
        path,
        |p| Some(toml_string(&p.to_string_lossy())),
    )?;
    let concurrency = m.pick(
        "concurrency",
        args.concurrency.unwrap_or(defaults.concurrency),
        |f| &f.concurrency,
        file_concurrency,
        |n| Some(n.to_string()),
    )?;
    let quantum = m.pick(
        "quantum",
        args.quantum,
        |f| &f.quantum,
        file_duration,
        show_duration,
    )?;
    let shutdown_timeout = m.pick(
        "shutdown_timeout",
        args.shutdown_timeout,
        |f| &f.shutdown_timeout,
        file_duration,
        show_duration,
    )?;
    let kill_grace = m.pick(
        "kill_grace",
        args.kill_grace,
        |f| &f.kill_grace,
        file_duration,
        show_duration,
    )?;
    let wal_flush_interval = m.pick(
        "wal_flush_interval",
        args.wal_flush_interval,
        |f| &f.wal_flush_interval,
        file_duration,
        show_duration,
    )?;
    let snapshot_bytes = m.pick(
        "snapshot_bytes",
        args.snapshot_bytes,
        |f| &f.snapshot_bytes,
        file_bytes,
        |n| Some(n.to_string()),
    )?;
    let http_addr = m.pick(
        "http_addr",
        args.http_addr,
        |f| &f.http_addr,
        |v| {
            parse_http_addr(file_str(
                v,
                "an address like \"127.0.0.1:9479\", or \"off\"",
            )?)
        },
        |a| {
            Some(toml_string(
                &a.0.map_or_else(|| "off".to_string(), |addr| addr.to_string()),
            ))
        },
    )?;
    let push_gateway = m.pick(
        "push_gateway",
        args.push_gateway.clone(),
        |f| &f.push_gateway,
        |v| crate::pusher::parse_gateway(file_str(v, "an http:// URL")?).map(Some),
        |g| g.as_ref().map(|uri| toml_string(&uri.to_string())),
    )?;
    let metrics_interval = m.pick(
        "metrics_interval",
        args.metrics_interval,
        |f| &f.metrics_interval,
        |v| {
            let d = file_duration(v)?;
            if d.is_zero() {
                return Err("must be longer than 0 (write it like \"10s\")".to_string());
            }
            Ok(d)
        },
        show_duration,
    )?;
    let log_format = m.pick(
        "log_format",
        args.log_format,
        |f| &f.log_format,
        file_log_format,
        |f| f.to_possible_value().map(|v| toml_string(v.get_name())),
    )?;
    let settings = Settings {
        socket,
        state_dir,
        concurrency,
        quantum,
        shutdown_timeout,
        kill_grace,
        wal_flush_interval,
        snapshot_bytes,
        repair_wal: args.repair_wal,
        http_addr: http_addr.0,
        push_gateway,
        metrics_interval,
        dump_state: args.dump_state,
        ..defaults
    };
    Ok(Effective {
        settings,
        log_format,
        provenance: m.provenance,
    })
}

/// The string in `v`, or an error saying that the key wants `what`.
fn file_str<'v>(v: &'v toml::Value, what: &str) -> Result<&'v str, String> {
    v.as_str()
        .ok_or_else(|| format!("expected {what} (a string), found {}", type_name(v)))
}

/// The TOML name of `v`'s type, with the value for short scalars.
fn type_name(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => format!("the string {}", toml_string(s)),
        toml::Value::Integer(n) => format!("the integer {n}"),
        toml::Value::Float(x) => format!("the float {x}"),
        toml::Value::Boolean(b) => format!("the boolean {b}"),
        toml::Value::Datetime(d) => format!("the date-time {d}"),
        toml::Value::Array(_) => "an array".to_string(),
        toml::Value::Table(_) => "a table".to_string(),
    }
}

/// A path in the file: absolute, or `~/…` under `home`.
fn file_path(v: &toml::Value, home: Option<&OsStr>) -> Result<PathBuf, String> {
    expand_home(file_str(v, "a path")?, home)
}

/// Turns `~/rest` into `home/rest`; other paths must be absolute (a relative
/// path in a config file has no obvious base).
pub fn expand_home(raw: &str, home: Option<&OsStr>) -> Result<PathBuf, String> {
    if raw == "~" || raw.starts_with("~/") {
        let home = home.filter(|h| !h.is_empty()).ok_or_else(|| {
            format!("{raw:?} starts with ~ but HOME is not set; write an absolute path")
        })?;
        let rest = raw.trim_start_matches('~').trim_start_matches('/');
        let mut path = PathBuf::from(home);
        if !rest.is_empty() {
            path.push(rest);
        }
        return Ok(path);
    }
    let path = PathBuf::from(raw);
    if path.is_absolute() {
        Ok(path)
    } else {
        Err(format!(
            "{raw:?} is a relative path; write an absolute path, or one starting with ~/"
        ))
    }
}

/// `concurrency`: an integer from 1 to 2³²−1.
fn file_concurrency(v: &toml::Value) -> Result<u32, String> {
    let n = v
        .as_integer()
        .ok_or_else(|| format!("expected an integer ≥ 1, found {}", type_name(v)))?;
    u32::try_from(n)
        .ok()
        .filter(|&n| n >= 1)
        .ok_or_else(|| format!("{n} is out of range: give at least 1 (jobs at once)"))
}

/// `snapshot_bytes`: a non-negative integer.
fn file_bytes(v: &toml::Value) -> Result<u64, String> {
    let n = v
        .as_integer()
        .ok_or_else(|| format!("expected a number of bytes, found {}", type_name(v)))?;
    u64::try_from(n).map_err(|_| format!("{n} is negative: give a number of bytes"))
}

/// A duration: a string in human form.
fn file_duration(v: &toml::Value) -> Result<Duration, String> {
    match v {
        toml::Value::String(s) => {
            parse_duration(s).map_err(|e| format!("{s:?} is not a duration: {e}"))
        }
        toml::Value::Integer(n) => Err(format!(
            "durations are strings with a unit: write \"{n}s\" or \"{n}ms\", not {n}"
        )),
        other => Err(format!(
            "expected a duration like \"10s\", found {}",
            type_name(other)
        )),
    }
}

/// `log_format`: `"text"` or `"json"`.
fn file_log_format(v: &toml::Value) -> Result<LogFormat, String> {
    let s = file_str(v, "\"text\" or \"json\"")?;
    LogFormat::from_str(s, true)
        .map_err(|_| format!("{s:?} is not a log format; write \"text\" or \"json\""))
}

/// A duration as a TOML string in human form (`"10ms"`).
fn show_duration(d: &Duration) -> Option<String> {
    Some(toml_string(&humantime::format_duration(*d).to_string()))
}

/// `s` as a TOML basic string, quoted and escaped.
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
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
    use super::*;
    use clap::{CommandFactory, FromArgMatches};

    /// Parses `argv` like `mayflyd` does, with where each value came from.
    fn cli(argv: &[&str]) -> (Args, ArgSources) {
        let cmd = Args::command();
        let matches = cmd.clone().try_get_matches_from(argv).expect("valid flags");
        let args = Args::from_arg_matches(&matches).expect("flags convert");
        (args, ArgSources::from_matches(&cmd, &matches))
    }

    /// A config file at `/etc/x/mayflyd.toml` with `text`.
    fn file(text: &str) -> ConfigFile {
        parse(PathBuf::from("/etc/x/mayflyd.toml"), text.to_string()).expect("valid file")
    }

    /// The error of parsing `text` as a config file, then merging it.
    fn error_of(text: &str) -> String {
        let (args, given) = cli(&["mayflyd"]);
        match parse(PathBuf::from("/etc/x/mayflyd.toml"), text.to_string()) {
            Err(e) => e.to_string(),
            Ok(f) => merge(&args, &given, Some(&f))
                .expect_err("the file should be rejected")
                .to_string(),
        }
    }

    /// Where `key` came from in `e`, and its shown value.
    fn prov<'a>(e: &'a Effective, key: &str) -> &'a Provenance {
        e.provenance
            .iter()
            .find(|p| p.key == key)
            .unwrap_or_else(|| panic!("no {key} in {:?}", e.provenance))
    }

    /// The config file used by the precedence tests.
    const FILE: &str = "\
socket = \"/file/s.sock\"
state_dir = \"/file/state\"
concurrency = 5
quantum = \"25ms\"
";

    #[test]
    fn the_file_wins_over_the_defaults() {
        let (args, given) = cli(&["mayflyd"]);
        let f = file(FILE);
        let e = merge(&args, &given, Some(&f)).unwrap();
        assert_eq!(e.settings.socket, PathBuf::from("/file/s.sock"));
        assert_eq!(e.settings.state_dir, PathBuf::from("/file/state"));
        assert_eq!(e.settings.concurrency, 5);
        // `quantum` has a clap default ("10ms"): that must not count as given.
        assert_eq!(e.settings.quantum, Duration::from_millis(25));
        let from_file = Source::File(PathBuf::from("/etc/x/mayflyd.toml"));
        for key in ["socket", "state_dir", "concurrency", "quantum"] {
            assert_eq!(prov(&e, key).source, from_file, "{key}");
        }
        assert_eq!(prov(&e, "quantum").value.as_deref(), Some("\"25ms\""));
        // Keys the file lacks keep their defaults.
        assert_eq!(e.settings.shutdown_timeout, Duration::from_secs(10));
        assert_eq!(prov(&e, "shutdown_timeout").source, Source::Default);
        assert_eq!(e.log_format, LogFormat::Text);
    }

    #[test]
    fn the_environment_wins_over_the_file() {
        // clap read MAYFLY_STATE_DIR and MAYFLY_SOCKET into these values.
        let (args, _) = cli(&["mayflyd", "--state-dir", "/env/state", "--socket", "/env/s"]);
        let given = ArgSources::default()
            .with("state_dir", Source::Env("MAYFLY_STATE_DIR".into()))
            .with("socket", Source::Env("MAYFLY_SOCKET".into()));
        let f = file(FILE);
        let e = merge(&args, &given, Some(&f)).unwrap();
        assert_eq!(e.settings.state_dir, PathBuf::from("/env/state"));
        assert_eq!(e.settings.socket, PathBuf::from("/env/s"));
        assert_eq!(
            prov(&e, "state_dir").source.to_string(),
            "env MAYFLY_STATE_DIR"
        );
        assert_eq!(e.settings.concurrency, 5, "the file still sets the rest");
    }

    #[test]
    fn flags_win_over_the_file() {
        let (args, given) = cli(&[
            "mayflyd",
            "--concurrency",
            "3",
            "--quantum",
            "10ms",
            "--state-dir",
            "/flag/state",
        ]);
        let f = file(FILE);
        let e = merge(&args, &given, Some(&f)).unwrap();
        assert_eq!(e.settings.concurrency, 3);
        // Given on the command line, even though it equals the default.
        assert_eq!(e.settings.quantum, Duration::from_millis(10));
        assert_eq!(e.settings.state_dir, PathBuf::from("/flag/state"));
        for key in ["concurrency", "quantum", "state_dir"] {
            assert_eq!(prov(&e, key).source, Source::Flag, "{key}");
        }
        assert_eq!(e.settings.socket, PathBuf::from("/file/s.sock"));
    }

    #[test]
    fn without_a_file_the_flags_and_defaults_apply() {
        let (args, given) = cli(&["mayflyd", "--kill-grace", "2s", "--repair-wal"]);
        let e = merge(&args, &given, None).unwrap();
        let plain = args.settings();
        assert_eq!(e.settings.kill_grace, Duration::from_secs(2));
        assert_eq!(e.settings.socket, plain.socket);
        assert_eq!(e.settings.concurrency, plain.concurrency);
        assert!(e.settings.repair_wal);
        assert_eq!(prov(&e, "kill_grace").source, Source::Flag);
        assert_eq!(prov(&e, "concurrency").source, Source::Default);
        let keys: Vec<_> = e.provenance.iter().map(|p| p.key).collect();
        assert_eq!(
            keys,
            [
                "socket",
                "state_dir",
                "concurrency",
                "quantum",
                "shutdown_timeout",
                "kill_grace",
                "wal_flush_interval",
                "snapshot_bytes",
                "http_addr",
                "push_gateway",
                "metrics_interval",
                "log_format",
            ]
        );
    }

    #[test]
    fn every_key_is_read() {
        let f = file(
            "socket = \"/s\"\nstate_dir = \"/d\"\nconcurrency = 7\nquantum = \"1ms\"\n\
             shutdown_timeout = \"1m\"\nkill_grace = \"3s\"\nwal_flush_interval = \"5ms\"\n\
             snapshot_bytes = 4096\nhttp_addr = \"0.0.0.0:8080\"\n\
             push_gateway = \"http://127.0.0.1:9091\"\nmetrics_interval = \"2s\"\n\
             log_format = \"json\"\n",
        );
        let (args, given) = cli(&["mayflyd"]);
        let e = merge(&args, &given, Some(&f)).unwrap();
        let s = &e.settings;
        assert_eq!(s.concurrency, 7);
        assert_eq!(s.shutdown_timeout, Duration::from_secs(60));
        assert_eq!(s.kill_grace, Duration::from_secs(3));
        assert_eq!(s.wal_flush_interval, Duration::from_millis(5));
        assert_eq!(s.snapshot_bytes, 4096);
        assert_eq!(s.http_addr, Some("0.0.0.0:8080".parse().unwrap()));
        assert_eq!(
            s.push_gateway.as_ref().map(ToString::to_string).as_deref(),
            Some("http://127.0.0.1:9091/")
        );
        assert_eq!(s.metrics_interval, Duration::from_secs(2));
        assert_eq!(e.log_format, LogFormat::Json);
        assert!(
            e.provenance
                .iter()
                .all(|p| matches!(p.source, Source::File(_))),
            "{:?}",
            e.provenance
        );
    }

    #[test]
    fn http_addr_off_turns_http_off() {
        let (args, given) = cli(&["mayflyd"]);
        let f = file("http_addr = \"off\"\n");
        let e = merge(&args, &given, Some(&f)).unwrap();
        assert_eq!(e.settings.http_addr, None);
        assert_eq!(prov(&e, "http_addr").value.as_deref(), Some("\"off\""));
        // And a flag turns it back on.
        let (args, given) = cli(&["mayflyd", "--http-addr", "127.0.0.1:1"]);
        let e = merge(&args, &given, Some(&f)).unwrap();
        assert_eq!(e.settings.http_addr, Some("127.0.0.1:1".parse().unwrap()));
    }

    #[test]
    fn an_unknown_key_is_an_error_naming_it_and_its_line() {
        let err = error_of("concurrency = 2\n\n  frobnicate = 1\n");
        assert!(err.starts_with("/etc/x/mayflyd.toml:3:3: "), "{err}");
        assert!(err.contains("unknown key `frobnicate`"), "{err}");
        assert!(err.contains("`state_dir`"), "lists the keys: {err}");
        assert!(!err.contains('\n'), "one line: {err}");
        // A table is an unknown key too.
        let err = error_of("[daemon]\nconcurrency = 2\n");
        assert!(err.starts_with("/etc/x/mayflyd.toml:1:"), "{err}");
        assert!(err.contains("daemon"), "{err}");
    }

    #[test]
    fn bad_toml_is_an_error_with_its_line() {
        let err = error_of("concurrency = 2\nquantum = \"10ms\n");
        assert!(err.starts_with("/etc/x/mayflyd.toml:2:"), "{err}");
        assert!(!err.contains('\n'), "one line: {err}");
        let err = error_of("concurrency = 2\nconcurrency = 3\n");
        assert!(err.starts_with("/etc/x/mayflyd.toml:2:"), "{err}");
    }

    #[test]
    fn bad_values_are_errors_naming_key_and_place() {
        let err = error_of("concurrency = 2\nquantum = \"soon\"\n");
        assert!(
            err.starts_with("/etc/x/mayflyd.toml:2:11: quantum: \"soon\" is not a duration"),
            "{err}"
        );
        assert!(err.contains("500ms"), "teaches the form: {err}");
        let err = error_of("shutdown_timeout = 10\n");
        assert!(err.contains("shutdown_timeout: "), "{err}");
        assert!(err.contains("\"10s\""), "{err}");
        for (text, key) in [
            ("concurrency = 0", "concurrency"),
            ("concurrency = \"4\"", "concurrency"),
            ("snapshot_bytes = -1", "snapshot_bytes"),
            ("http_addr = \"localhost\"", "http_addr"),
            ("push_gateway = \"https://gw\"", "push_gateway"),
            ("metrics_interval = \"0s\"", "metrics_interval"),
            ("log_format = \"xml\"", "log_format"),
            ("state_dir = \"relative/dir\"", "state_dir"),
            ("socket = 3", "socket"),
        ] {
            let err = error_of(text);
            assert!(
                err.starts_with(&format!("/etc/x/mayflyd.toml:1:{}: {key}: ", key.len() + 4)),
                "{text}: {err}"
            );
            assert!(!err.contains('\n'), "one line: {err}");
        }
    }

    #[test]
    fn a_bad_value_is_an_error_even_where_a_flag_overrides_it() {
        let (args, given) = cli(&["mayflyd", "--quantum", "5ms"]);
        let f = file("quantum = \"soon\"\n");
        let err = merge(&args, &given, Some(&f)).unwrap_err();
        assert!(err.to_string().contains("quantum"), "{err}");
    }

    #[test]
    fn home_relative_paths_expand() {
        let home = Some(OsStr::new("/home/me"));
        assert_eq!(
            expand_home("~/jobs", home).unwrap(),
            PathBuf::from("/home/me/jobs")
        );
        assert_eq!(expand_home("~", home).unwrap(), PathBuf::from("/home/me"));
        assert_eq!(expand_home("/abs", None).unwrap(), PathBuf::from("/abs"));
        assert!(expand_home("~/jobs", None).is_err());
        assert!(expand_home("jobs", home).is_err());
        assert!(expand_home("~other/jobs", home).is_err());
    }

    #[test]
    fn the_default_file_follows_xdg() {
        let p = |x: Option<&str>, h: Option<&str>| {
            default_path_in(x.map(OsStr::new), h.map(OsStr::new))
        };
        assert_eq!(
            p(Some("/cfg"), Some("/home/me")),
            ConfigPath::Default(PathBuf::from("/cfg/mayfly/mayflyd.toml"))
        );
        for xdg in [None, Some(""), Some("relative")] {
            assert_eq!(
                p(xdg, Some("/home/me")),
                ConfigPath::Default(PathBuf::from("/home/me/.config/mayfly/mayflyd.toml"))
            );
        }
        assert_eq!(p(None, None), ConfigPath::Nowhere);
    }

    #[test]
    fn a_missing_default_file_is_fine_a_missing_given_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("mayflyd.toml");
        assert!(
            load(&ConfigPath::Default(missing.clone()))
                .unwrap()
                .is_none()
        );
        assert!(load(&ConfigPath::Nowhere).unwrap().is_none());
        let err = load(&ConfigPath::Given(missing.clone())).unwrap_err();
        assert!(matches!(err, ConfigError::Missing { .. }), "{err:?}");
        assert!(
            err.to_string().contains(&*missing.to_string_lossy()),
            "{err}"
        );
        // A default file that exists is read; one that cannot be read is an
        // error, not silently skipped.
        std::fs::write(&missing, "concurrency = 2\n").unwrap();
        let f = load(&ConfigPath::Default(missing.clone()))
            .unwrap()
            .unwrap();
        assert!(f.values.concurrency.is_some());
        let err = load(&ConfigPath::Default(dir.path().to_path_buf())).unwrap_err();
        assert!(matches!(err, ConfigError::Read { .. }), "{err:?}");
    }

    #[test]
    fn print_config_output_is_itself_a_config_file() {
        let (args, given) = cli(&["mayflyd", "--concurrency", "3", "--http-addr", "off"]);
        let f = file("state_dir = \"/file/st\\\"ate\"\nquantum = \"1s 500ms\"\n");
        let e = merge(&args, &given, Some(&f)).unwrap();
        let text = render(
            &e.provenance,
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
        let again = parse(PathBuf::from("/printed.toml"), text.clone()).expect("valid TOML");
        let (plain, none) = cli(&["mayflyd"]);
        let e2 = merge(&plain, &none, Some(&again)).unwrap();
        assert_eq!(e2.settings.state_dir, PathBuf::from("/file/st\"ate"));
        assert_eq!(e2.settings.quantum, Duration::from_millis(1500));
        assert_eq!(e2.settings.concurrency, 3);
        assert_eq!(e2.settings.http_addr, None);
        assert_eq!(e2.settings.socket, e.settings.socket);
        assert_eq!(e2.settings.push_gateway, None);
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

    #[test]
    fn lines_and_columns_count_characters() {
        assert_eq!(line_col("abc", 0), (1, 1));
        assert_eq!(line_col("a\nbc", 3), (2, 2));
        assert_eq!(line_col("é = 1\nx", 6), (1, 6));
        assert_eq!(line_col("a", 99), (1, 2));
    }
}
