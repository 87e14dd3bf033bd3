//! Writes the seed corpora of the fuzz targets to `fuzz/corpus/TARGET/`
//! (see `mayfly_fuzz::seeds`), replacing the seeds it wrote before, and
//! runs each seed through its target's checks, so a seed that a check
//! refuses is caught here rather than by libFuzzer.
//!
//! ```text
//! cargo run --manifest-path fuzz/Cargo.toml --example gen_corpus
//! ```

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

/// Writes every seed; exits non-zero (by panic) if it cannot.
fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let seeds = mayfly_fuzz::seeds::all();
    let targets: BTreeSet<&str> = seeds.iter().map(|(target, _, _)| *target).collect();
    for target in &targets {
        let dir = root.join(target);
        if dir.exists() {
            fs::remove_dir_all(&dir).expect("remove the old seeds");
        }
        fs::create_dir_all(&dir).expect("create the corpus folder");
    }
    for (target, name, bytes) in &seeds {
        check(target, bytes);
        fs::write(root.join(target).join(name), bytes).expect("write a seed");
    }
    for target in &targets {
        let (count, size) = seeds
            .iter()
            .filter(|(t, _, _)| t == target)
            .fold((0, 0), |(n, s), (_, _, b)| (n + 1, s + b.len()));
        println!("{target}: {count} seeds, {size} bytes");
    }
}

/// Runs one seed through its target's checks.
fn check(target: &str, bytes: &[u8]) {
    match target {
        "frame" => mayfly_fuzz::frame::run(bytes),
        "handshake" => mayfly_fuzz::handshake::run(bytes),
        "wal_record" => mayfly_fuzz::wal_record::run(bytes),
        "snapshot" => mayfly_fuzz::snapshot::run(bytes),
        "json_line" => mayfly_fuzz::json_line::run(bytes),
        "config_file" => mayfly_fuzz::config_file::run(bytes),
        other => panic!("no target {other}"),
    }
}
