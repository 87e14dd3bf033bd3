//! The daemon's config file (`mayflyd/src/config_file.rs`): `parse` reads
//! the TOML text (syntax and key names), `merge` checks each value and lays
//! the file under the command line's values, `render` writes the effective
//! settings as `mayflyd --print-config` prints them — itself a config file.
//!
//! The raw half reads the bytes (as UTF-8, lossily) as the file, with a
//! command line that gives nothing, so every key the file sets is used.
//! Asserted: nothing panics; an error is one line; settings that merge
//! survive the trip through `--print-config`: the printed text parses and
//! merges to the same settings.
//!
//! The structured half builds settings with `arbitrary`, writes them as the
//! config file a person would, and reads it back. Asserted: the effective
//! settings are exactly what the file said (`parse(write(x)) == x`).

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::OnceLock;

use arbitrary::{Arbitrary, Unstructured};
use mayflyd::config::{Args, LogFormat};
use mayflyd::config_file::{ArgSources, ConfigPath, Effective, merge, parse, render};

/// The fuzz input. See the module documentation.
pub fn run(data: &[u8]) {
    let text = String::from_utf8_lossy(data).into_owned();
    if let Ok(effective) = read(text) {
        // What --print-config prints for it, read back as a config file.
        let printed = render(&effective.provenance, &ConfigPath::Nowhere, false);
        let again = read(printed.clone())
            .unwrap_or_else(|e| panic!("--print-config's text is refused: {e}\n{printed}"));
        assert_same(&effective, &again, &printed);
    }

    if let Ok(file) = FileSettings::arbitrary_take_rest(Unstructured::new(data)) {
        file.check();
    }
}

/// The command line of a plain `mayflyd` (nothing given), parsed once.
fn command_line() -> &'static (Args, ArgSources) {
    static PARSED: OnceLock<(Args, ArgSources)> = OnceLock::new();
    PARSED.get_or_init(|| {
        Args::try_parse_with_sources(["mayflyd"]).expect("a bare command line parses")
    })
}

/// Parses and merges `text` as the daemon does at start-up; the error
/// message of a refused file, after checking that it is one line.
fn read(text: String) -> Result<Effective, String> {
    let (args, given) = command_line();
    parse("mayflyd.toml".into(), text)
        .and_then(|file| merge(args, given, Some(&file)))
        .map_err(|e| {
            let message = e.to_string();
            assert!(!message.contains('\n'), "an error is one line: {message:?}");
            message
        })
}

/// The two readings give the same settings.
fn assert_same(first: &Effective, second: &Effective, text: &str) {
    assert_eq!(
        format!("{:?}", first.settings),
        format!("{:?}", second.settings),
        "settings changed through:\n{text}"
    );
    assert_eq!(first.log_format, second.log_format, "through:\n{text}");
}

/// Settings as a person would write them: every value valid.
#[derive(Debug, Arbitrary)]
struct FileSettings {
    /// `socket`, made absolute.
    socket: Option<String>,
    /// `concurrency`, made at least 1.
    concurrency: Option<u32>,
    /// `quantum` in milliseconds.
    quantum_ms: Option<u32>,
    /// `kill_grace` in seconds.
    kill_grace_s: Option<u16>,
    /// `snapshot_bytes`.
    snapshot_bytes: Option<u32>,
    /// `http_addr`: `None` writes `"off"`, else a loopback port.
    http_port: Option<Option<u16>>,
    /// `log_format`: JSON when true.
    json_logs: Option<bool>,
}

impl FileSettings {
    /// Writes the file, reads it, and compares the settings with it.
    fn check(self) {
        let mut text = String::from("# written by the config_file fuzz target\n");
        let mut line = |key: &str, value: String| text.push_str(&format!("{key} = {value}\n"));
        let socket = self.socket.map(|s| format!("/{s}"));
        if let Some(socket) = &socket {
            line("socket", toml_string(socket));
        }
        if let Some(n) = self.concurrency {
            line("concurrency", n.max(1).to_string());
        }
        if let Some(ms) = self.quantum_ms {
            line("quantum", toml_string(&format!("{ms}ms")));
        }
        if let Some(s) = self.kill_grace_s {
            line("kill_grace", toml_string(&format!("{s}s")));
        }
        if let Some(n) = self.snapshot_bytes {
            line("snapshot_bytes", n.to_string());
        }
        let http = self
            .http_port
            .map(|port| port.map(|p| SocketAddr::from((Ipv4Addr::LOCALHOST, p))));
        if let Some(addr) = http {
            let written = addr.map_or_else(|| "off".to_string(), |a| a.to_string());
            line("http_addr", toml_string(&written));
        }
        if let Some(json) = self.json_logs {
            line(
                "log_format",
                toml_string(if json { "json" } else { "text" }),
            );
        }

        let effective =
            read(text.clone()).unwrap_or_else(|e| panic!("a valid file is refused: {e}\n{text}"));
        let s = &effective.settings;
        if let Some(socket) = socket {
            assert_eq!(s.socket.as_os_str(), socket.as_str(), "{text}");
        }
        if let Some(n) = self.concurrency {
            assert_eq!(s.concurrency, n.max(1), "{text}");
        }
        if let Some(ms) = self.quantum_ms {
            assert_eq!(s.quantum.as_millis(), u128::from(ms), "{text}");
        }
        if let Some(secs) = self.kill_grace_s {
            assert_eq!(s.kill_grace.as_secs(), u64::from(secs), "{text}");
            assert_eq!(s.kill_grace.subsec_nanos(), 0, "{text}");
        }
        if let Some(n) = self.snapshot_bytes {
            assert_eq!(s.snapshot_bytes, u64::from(n), "{text}");
        }
        if let Some(addr) = http {
            assert_eq!(s.http_addr, addr, "{text}");
        }
        if let Some(json) = self.json_logs {
            let want = if json {
                LogFormat::Json
            } else {
                LogFormat::Text
            };
            assert_eq!(effective.log_format, want, "{text}");
        }
    }
}

/// `s` as a TOML basic string: quotes and backslashes escaped, and every
/// control character (TOML refuses them raw, DEL included) as `\uXXXX`.
fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
