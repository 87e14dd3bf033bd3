//! The daemon's config file (`mayflyd/src/config_file.rs`, `config.rs`):
//! `config_file::parse` reads the TOML text, `config::layer` checks each
//! key and value (through the flag's own parser) and lays the file under
//! the command line, and `config::render` writes the effective settings as
//! `mayflyd --print-config` prints them — itself a config file.
//!
//! The raw half reads the bytes (as UTF-8, lossily) as the file, under a
//! command line that gives nothing, so every key the file sets is used.
//! Asserted: nothing panics; a refusal is the config file's error (one
//! line), never a usage error of a flag the person did not type; settings
//! that layer survive the trip through `--print-config`: the printed text
//! reads back to the same settings.
//!
//! The structured half builds settings with `arbitrary`, writes them as the
//! config file a person would, and reads it back. Asserted: the effective
//! settings are exactly what the file said (`parse(write(x)) == x`).

use std::ffi::{OsStr, OsString};
use std::net::{Ipv4Addr, SocketAddr};

use arbitrary::{Arbitrary, Unstructured};
use mayflyd::config::{Layered, ResolveError, layer, render};
use mayflyd::config_file::{ConfigPath, parse};
use mayflyd::settings::LogFormat;

/// The fuzz input. See the module documentation.
pub fn run(data: &[u8]) {
    let text = String::from_utf8_lossy(data).into_owned();
    if let Ok(layered) = read(text) {
        // What --print-config prints for it, read back as a config file.
        let printed = render(&layered.provenance, &ConfigPath::Nowhere, false);
        let again = read(printed.clone())
            .unwrap_or_else(|e| panic!("--print-config's text is refused: {e}\n{printed}"));
        assert_eq!(
            format!("{:?}", layered.args.settings),
            format!("{:?}", again.args.settings),
            "settings changed through --print-config:\n{printed}"
        );
    }

    if let Ok(file) = FileSettings::arbitrary_take_rest(Unstructured::new(data)) {
        file.check();
    }
}

/// Reads `text` as the daemon reads its config file at start-up, under a
/// bare `mayflyd` command line and `HOME=/home/fuzz`; a refusal is the
/// message, after checking that it is one line.
fn read(text: String) -> Result<Layered, String> {
    let one_line = |message: String| {
        assert!(!message.contains('\n'), "an error is one line: {message:?}");
        message
    };
    let file = parse("mayflyd.toml".into(), text).map_err(|e| one_line(e.to_string()))?;
    let argv = [OsString::from("mayflyd")];
    match layer(&argv, Some(&file), Some(OsStr::new("/home/fuzz"))) {
        Ok(layered) => Ok(layered),
        Err(ResolveError::File(e)) => Err(one_line(e.to_string())),
        Err(ResolveError::Flags(e)) => {
            panic!("a config file's value was refused as a flag the person did not type: {e}")
        }
    }
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

        let layered =
            read(text.clone()).unwrap_or_else(|e| panic!("a valid file is refused: {e}\n{text}"));
        let s = &layered.args.settings;
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
            assert_eq!(s.http_addr.0, addr, "{text}");
        }
        if let Some(json) = self.json_logs {
            let want = if json {
                LogFormat::Json
            } else {
                LogFormat::Text
            };
            assert_eq!(s.log_format, want, "{text}");
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
