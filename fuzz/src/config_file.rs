//! The daemon's config file (`mayflyd/src/config_file.rs`).

/// The fuzz input.
pub fn run(data: &[u8]) {
    let text = String::from_utf8_lossy(data).into_owned();
    let _ = mayflyd::config_file::parse("mayflyd.toml".into(), text);
}
