//! `mayflyd`'s optional TOML config file: where it is, and its values
//! checked and turned into the values the flags would take.
//!
//! The file is `$XDG_CONFIG_HOME/mayfly/mayflyd.toml`, else
//! `~/.config/mayfly/mayflyd.toml`, or the one named by `--config FILE`. The
//! default file may be missing; a file named by `--config` must exist.
//!
//! Every setting of [`crate::settings::Settings`] has a key, spelled like
//! its flag in snake_case (`--shutdown-timeout` is `shutdown_timeout`), except
//! the flags for one run ([`crate::settings::OneRun`]); `mayflyd
//! --print-config` lists them all with their values. What a value looks like
//! in TOML follows from the type its flag parses to:
//!
//! | the flag takes | in the file | example |
//! |---|---|---|
//! | a whole number | an integer | `concurrency = 4` |
//! | a duration | a string with a unit | `quantum = "10ms"` |
//! | a path | a string: absolute, or starting with `~/` | `state_dir = "~/jobs/state"` |
//! | on or off | `true` or `false` | |
//! | anything else | a string | `http_addr = "off"`, `log_format = "json"` |
//! | any of these, repeatedly | a list of them | `[1000, 1001]` |
//!
//! Then the value goes through the flag's own parser, so the file accepts
//! exactly what the flag accepts.
//!
//! An unknown key, a value of the wrong type and a bad value are all errors
//! ([`ConfigError`]), reported as one line `FILE:LINE:COL: message` that says
//! what to write; `mayflyd` exits 2 for them, like for a bad flag. The whole
//! file is checked even where a flag overrides a key, so a mistake in it
//! never waits for the day the flag is dropped.

use std::any::TypeId;
use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::error::{ContextKind, ContextValue};
use clap::{Arg, ArgAction, Command};
use toml::Spanned;

/// The default config file's place under the config home.
const FILE_UNDER_CONFIG_HOME: &str = "mayfly/mayflyd.toml";

/// The default file, as the help and the errors name it.
pub const DEFAULT_LOCATION: &str =
    "$XDG_CONFIG_HOME/mayfly/mayflyd.toml (else ~/.config/mayfly/mayflyd.toml)";

/// A config file that was read and parsed as TOML (its keys and values are
/// checked by [`ConfigFile::flag_values`]).
#[derive(Debug)]
pub struct ConfigFile {
    /// Where it was read from, as given.
    pub path: PathBuf,
    /// Its text, to turn byte spans into lines and columns.
    pub text: String,
    /// Its keys and values with their places, in the file's order.
    pub entries: Vec<(Spanned<String>, Spanned<toml::Value>)>,
}

/// One key of the file, checked: the values its flag would take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagValues {
    /// The key, which is the clap id of the setting.
    pub key: String,
    /// The values, as they would be written after the flag (one for most
    /// settings, any number for a list).
    pub values: Vec<OsString>,
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
/// unreadable file or one that is not TOML is an error.
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

/// Parses the text of a config file read from `path` as TOML, keeping where
/// each key and value is; the keys and values are checked by
/// [`ConfigFile::flag_values`].
pub fn parse(path: PathBuf, text: String) -> Result<ConfigFile, ConfigError> {
    match toml::from_str::<BTreeMap<Spanned<String>, Spanned<toml::Value>>>(&text) {
        Ok(table) => {
            let mut entries: Vec<_> = table.into_iter().collect();
            entries.sort_by_key(|(key, _)| key.span().start);
            Ok(ConfigFile {
                path,
                text,
                entries,
            })
        }
        Err(e) => Err(invalid(&path, &text, e.span(), e.message())),
    }
}

impl ConfigFile {
    /// Checks every key of the file against `settings` (the arguments of the
    /// settings that have a key, each with the key as its id) and returns
    /// each key's values as its flag would take them. The first bad key, in
    /// the file's order, is the error.
    pub fn flag_values(
        &self,
        settings: &[Arg],
        home: Option<&OsStr>,
    ) -> Result<Vec<FlagValues>, ConfigError> {
        self.entries
            .iter()
            .map(|(key, value)| {
                let Some(arg) = settings
                    .iter()
                    .find(|a| a.get_id() == key.get_ref().as_str())
                else {
                    let keys: Vec<String> = settings
                        .iter()
                        .map(|a| format!("`{}`", a.get_id()))
                        .collect();
                    return Err(self.invalid_at(
                        key.span(),
                        &format!(
                            "unknown key `{}`; the keys are {}",
                            key.get_ref(),
                            keys.join(", ")
                        ),
                    ));
                };
                let values = to_flag_values(arg, value.get_ref(), home)
                    .and_then(|values| check_each(arg, &values).map(|()| values))
                    .map_err(|message| {
                        self.invalid_at(value.span(), &format!("{}: {message}", key.get_ref()))
                    })?;
                Ok(FlagValues {
                    key: key.get_ref().clone(),
                    values,
                })
            })
            .collect()
    }

    /// Whether the file sets `key`.
    pub fn has(&self, key: &str) -> bool {
        self.entries.iter().any(|(k, _)| k.get_ref() == key)
    }

    /// A [`ConfigError::Invalid`] at `span` of this file.
    fn invalid_at(&self, span: Range<usize>, message: &str) -> ConfigError {
        invalid(&self.path, &self.text, Some(span), message)
    }
}

/// What a setting's value looks like in TOML, from what its flag parses to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A whole number: a TOML integer.
    Integer,
    /// On or off: a TOML boolean.
    Boolean,
    /// A [`Duration`]: a string with a unit.
    Duration,
    /// A path: a string, absolute or starting with `~/`.
    Path,
    /// Anything else: a string, checked by the flag's parser.
    Text,
}

/// The kind of `arg`'s values, from the type its value parser makes.
fn kind_of(arg: &Arg) -> Kind {
    let parses_to = arg.get_value_parser().type_id();
    let integers = [
        TypeId::of::<u8>(),
        TypeId::of::<u16>(),
        TypeId::of::<u32>(),
        TypeId::of::<u64>(),
        TypeId::of::<usize>(),
        TypeId::of::<i8>(),
        TypeId::of::<i16>(),
        TypeId::of::<i32>(),
        TypeId::of::<i64>(),
        TypeId::of::<isize>(),
    ];
    if integers.iter().any(|&t| parses_to == t) {
        Kind::Integer
    } else if parses_to == TypeId::of::<bool>() {
        Kind::Boolean
    } else if parses_to == TypeId::of::<Duration>() {
        Kind::Duration
    } else if parses_to == TypeId::of::<PathBuf>() {
        Kind::Path
    } else {
        Kind::Text
    }
}

/// Whether `arg` takes a list: its flag may be repeated.
fn is_list(arg: &Arg) -> bool {
    matches!(arg.get_action(), ArgAction::Append)
}

/// The values `arg`'s flag would take for the file's `value`, or what is
/// wrong with its type.
fn to_flag_values(
    arg: &Arg,
    value: &toml::Value,
    home: Option<&OsStr>,
) -> Result<Vec<OsString>, String> {
    let kind = kind_of(arg);
    if !is_list(arg) {
        return to_flag_value(arg, kind, value, home).map(|v| vec![v]);
    }
    let toml::Value::Array(items) = value else {
        return Err(format!(
            "expected a list in brackets, like [{}], found {}",
            match kind {
                Kind::Integer => "1, 2",
                _ => "\"a\", \"b\"",
            },
            type_name(value)
        ));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            to_flag_value(arg, kind, item, home).map_err(|e| format!("item {}: {e}", i + 1))
        })
        .collect()
}

/// The value `arg`'s flag would take for one TOML value of `kind`.
fn to_flag_value(
    arg: &Arg,
    kind: Kind,
    value: &toml::Value,
    home: Option<&OsStr>,
) -> Result<OsString, String> {
    let found = type_name(value);
    match (kind, value) {
        (Kind::Integer, toml::Value::Integer(n)) => Ok(n.to_string().into()),
        (Kind::Integer, toml::Value::String(s)) if s.trim().parse::<i64>().is_ok() => Err(format!(
            "expected a number, found {found}; write it without quotes: {} = {}",
            arg.get_id(),
            s.trim()
        )),
        (Kind::Integer, _) => Err(format!("expected a whole number, found {found}")),
        (Kind::Boolean, toml::Value::Boolean(b)) => Ok(b.to_string().into()),
        (Kind::Boolean, _) => Err(format!("expected true or false, found {found}")),
        (Kind::Duration, toml::Value::String(s)) => Ok(s.into()),
        (Kind::Duration, toml::Value::Integer(n)) => Err(format!(
            "durations are strings with a unit: write \"{n}s\" or \"{n}ms\", not {n}"
        )),
        (Kind::Duration, _) => Err(format!(
            "expected a duration in quotes, like \"10s\", found {found}"
        )),
        (Kind::Path, toml::Value::String(s)) => expand_home(s, home).map(PathBuf::into_os_string),
        (Kind::Path, _) => Err(format!(
            "expected a path in quotes (absolute, or starting with ~/), found {found}"
        )),
        (Kind::Text, toml::Value::String(s)) => Ok(s.into()),
        (Kind::Text, _) => {
            let example = match arg.get_default_values().first() {
                Some(default) if !arg.is_hide_default_value_set() => format!(
                    ", like {} = {}",
                    arg.get_id(),
                    toml_string(&default.to_string_lossy())
                ),
                _ => String::new(),
            };
            Err(format!(
                "expected a string in quotes{example}, found {found}"
            ))
        }
    }
}

/// Runs each of `values` through `arg`'s own parser, naming the item of a
/// list that it refuses.
fn check_each(arg: &Arg, values: &[OsString]) -> Result<(), String> {
    for (i, value) in values.iter().enumerate() {
        check(arg, std::slice::from_ref(value)).map_err(|e| {
            if is_list(arg) {
                format!("item {}: {e}", i + 1)
            } else {
                e
            }
        })?;
    }
    Ok(())
}

/// Runs `values` through `arg`'s own parser (as its defaults, in a command
/// of that one argument), so the file accepts exactly what the flag does.
fn check(arg: &Arg, values: &[OsString]) -> Result<(), String> {
    let probe = Command::new("mayflyd")
        .no_binary_name(true)
        .arg(arg.clone().env(None).default_values(values.iter().cloned()));
    match probe.try_get_matches_from(std::iter::empty::<OsString>()) {
        Ok(_) => Ok(()),
        Err(e) => Err(parser_message(arg, &e)),
    }
}

/// What `arg`'s parser said about a value, without clap's framing (which
/// names the flag, not the key).
fn parser_message(arg: &Arg, e: &clap::Error) -> String {
    if let Some(source) = std::error::Error::source(e) {
        return source.to_string();
    }
    let value = match e.get(ContextKind::InvalidValue) {
        Some(ContextValue::String(v)) => format!("{v:?}"),
        _ => "the value".to_string(),
    };
    let choices: Vec<String> = arg
        .get_possible_values()
        .iter()
        .filter(|p| !p.is_hide_set())
        .map(|p| toml_string(p.get_name()))
        .collect();
    if choices.is_empty() {
        format!("{value} is not valid ({})", e.kind())
    } else {
        format!("{value} is not valid; write one of {}", choices.join(", "))
    }
}

/// The TOML name of `v`'s type, with the value for short scalars.
fn type_name(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => format!("the string {}", toml_string(s)),
        toml::Value::Integer(n) => format!("the integer {n}"),
        toml::Value::Float(x) => format!("the float {x}"),
        toml::Value::Boolean(b) => format!("the boolean {b}"),
        toml::Value::Datetime(d) => format!("the date-time {d}"),
        toml::Value::Array(_) => "a list".to_string(),
        toml::Value::Table(_) => "a table".to_string(),
    }
}

/// `arg`'s values as TOML (`"10ms"`, `4`, `[1, 2]`), from the text they had
/// as flag values (`raw`: on the command line, in the environment, or as
/// defaults); `None` for a setting that is not set. What this gives reads
/// back as the same values.
pub fn toml_value(arg: &Arg, raw: &[&OsStr]) -> Option<String> {
    let kind = kind_of(arg);
    let items: Vec<String> = raw.iter().map(|r| toml_scalar(kind, r)).collect();
    if is_list(arg) {
        Some(format!("[{}]", items.join(", ")))
    } else {
        items.into_iter().next()
    }
}

/// One flag value of `kind` as TOML.
fn toml_scalar(kind: Kind, raw: &OsStr) -> String {
    let text = raw.to_string_lossy();
    match kind {
        Kind::Integer => match text.trim().parse::<i128>() {
            Ok(n) => n.to_string(),
            Err(_) => toml_string(&text),
        },
        Kind::Boolean if text == "true" || text == "false" => text.into_owned(),
        _ => toml_string(&text),
    }
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

/// `s` as a TOML basic string, quoted and escaped.
pub fn toml_string(s: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::keyed_args;

    /// The file every test pretends to read.
    const PATH: &str = "/etc/x/mayflyd.toml";

    /// The error of `text` as a config file of the daemon's settings.
    fn error_of(text: &str) -> String {
        match parse(PathBuf::from(PATH), text.to_string()) {
            Err(e) => e.to_string(),
            Ok(f) => f
                .flag_values(&keyed_args(), Some(OsStr::new("/home/me")))
                .expect_err("the file should be rejected")
                .to_string(),
        }
    }

    /// The flag values of `text`, checked against `args`.
    fn values_of(text: &str, args: &[Arg]) -> Vec<FlagValues> {
        parse(PathBuf::from(PATH), text.to_string())
            .expect("valid TOML")
            .flag_values(args, Some(OsStr::new("/home/me")))
            .expect("valid values")
    }

    /// A setting like the `allow_uid` to come: a list of uids, the flag
    /// repeated once per uid.
    fn allow_uid() -> Arg {
        Arg::new("allow_uid")
            .long("allow-uid")
            .action(ArgAction::Append)
            .value_parser(clap::value_parser!(u32))
    }

    #[test]
    fn values_become_what_the_flags_would_take() {
        let got = values_of(
            "concurrency = 7\nstate_dir = \"~/jobs\"\nquantum = \"1s 500ms\"\n\
             http_addr = \"off\"\n",
            &keyed_args(),
        );
        let got: Vec<(&str, Vec<&OsStr>)> = got
            .iter()
            .map(|v| {
                (
                    v.key.as_str(),
                    v.values.iter().map(OsString::as_os_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("concurrency", vec![OsStr::new("7")]),
                ("state_dir", vec![OsStr::new("/home/me/jobs")]),
                ("quantum", vec![OsStr::new("1s 500ms")]),
                ("http_addr", vec![OsStr::new("off")]),
            ],
            "in the file's order, paths expanded"
        );
    }

    #[test]
    fn a_list_setting_takes_a_toml_list() {
        let args = [allow_uid()];
        let got = values_of("allow_uid = [1000, 1001]\n", &args);
        assert_eq!(
            got,
            [FlagValues {
                key: "allow_uid".into(),
                values: vec!["1000".into(), "1001".into()],
            }]
        );
        assert_eq!(values_of("allow_uid = []\n", &args)[0].values.len(), 0);
        let err = parse(PathBuf::from(PATH), "allow_uid = [1000, -1]\n".into())
            .unwrap()
            .flag_values(&args, None)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("/etc/x/mayflyd.toml:1:13: allow_uid: item 2: "),
            "{err}"
        );
        let err = parse(PathBuf::from(PATH), "allow_uid = 1000\n".into())
            .unwrap()
            .flag_values(&args, None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("expected a list in brackets, like [1, 2]"),
            "{err}"
        );
        // Shown as a list, which reads back the same.
        let shown = toml_value(&args[0], &[OsStr::new("1000"), OsStr::new("1001")]);
        assert_eq!(shown.as_deref(), Some("[1000, 1001]"));
        assert_eq!(toml_value(&args[0], &[]).as_deref(), Some("[]"));
    }

    #[test]
    fn values_show_as_toml_that_reads_back() {
        let arg = |id: &str| {
            keyed_args()
                .into_iter()
                .find(|a| a.get_id() == id)
                .unwrap_or_else(|| panic!("no {id}"))
        };
        let show = |id: &str, raw: &str| toml_value(&arg(id), &[OsStr::new(raw)]);
        assert_eq!(show("concurrency", "+04").as_deref(), Some("4"));
        assert_eq!(show("quantum", "10ms").as_deref(), Some("\"10ms\""));
        assert_eq!(show("state_dir", "/a\"b").as_deref(), Some("\"/a\\\"b\""));
        assert_eq!(show("http_addr", "off").as_deref(), Some("\"off\""));
        assert_eq!(toml_value(&arg("push_gateway"), &[]), None);
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
        // So are the flags for one run.
        for key in [
            "repair_wal",
            "dump_state",
            "config",
            "print_config",
            "verbose",
        ] {
            let err = error_of(&format!("{key} = true\n"));
            assert!(err.contains(&format!("unknown key `{key}`")), "{err}");
        }
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
        let err = error_of("concurrency = \"4\"\n");
        assert!(err.contains("concurrency = 4"), "says what to write: {err}");
        let err = error_of("log_format = \"xml\"\n");
        assert!(
            err.contains("\"text\", \"json\""),
            "says what to write: {err}"
        );
        for (text, key) in [
            ("concurrency = 0", "concurrency"),
            ("concurrency = \"4\"", "concurrency"),
            ("concurrency = 1.5", "concurrency"),
            ("snapshot_bytes = -1", "snapshot_bytes"),
            ("http_addr = \"localhost\"", "http_addr"),
            ("http_addr = 9479", "http_addr"),
            ("push_gateway = \"https://gw\"", "push_gateway"),
            ("metrics_interval = \"0s\"", "metrics_interval"),
            ("log_format = \"xml\"", "log_format"),
            ("state_dir = \"relative/dir\"", "state_dir"),
            ("socket = 3", "socket"),
            ("quantum = [\"1s\"]", "quantum"),
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
        assert!(f.has("concurrency"));
        let err = load(&ConfigPath::Default(dir.path().to_path_buf())).unwrap_err();
        assert!(matches!(err, ConfigError::Read { .. }), "{err:?}");
    }

    #[test]
    fn lines_and_columns_count_characters() {
        assert_eq!(line_col("abc", 0), (1, 1));
        assert_eq!(line_col("a\nbc", 3), (2, 2));
        assert_eq!(line_col("é = 1\nx", 6), (1, 6));
        assert_eq!(line_col("a", 99), (1, 2));
    }
}
