//! Snapshots (`mayflyd/src/core/snapshot.rs`, loaded by
//! `journal::restore_snapshot` once `wal/format.rs` has checked the file):
//! a header with a CRC over the file, then the bincode of a `CoreSnapshot`,
//! rebuilt into the scheduler's state with its consistency checks.
//!
//! The raw half reads the bytes as a snapshot file (numbered as its header
//! claims) and restores its payload when the checks pass; it also restores
//! the bytes as a bare payload, where the fuzzer is not stopped by the CRC.
//! The structured half builds a `CoreSnapshot` with `arbitrary`. Asserted:
//! - nothing panics: a bad file, an undecodable payload and an inconsistent
//!   snapshot are errors;
//! - `decode(encode(x)) == x` for the snapshot, and a snapshot file of a
//!   payload checks out to that payload;
//! - a restored state snapshots to a fixed point: restoring what it
//!   snapshots succeeds and snapshots to the same thing (a restart does not
//!   change the state).

use mayfly_protocol::{decode_blob, encode_blob};
use mayflyd::core::{CoreConfig, CoreSnapshot};
use mayflyd::journal::restore_snapshot;
use mayflyd::wal::fuzzing::{check_snapshot, claimed_seq, snapshot_file};

/// The fuzz input. See the module documentation.
pub fn run(data: &[u8]) {
    if let Ok(payload) = check_snapshot(data, claimed_seq(data)) {
        restore_and_check(payload);
    }
    restore_and_check(data);

    if let Some((seq, snap)) = crate::structured::<(u64, CoreSnapshot)>(data) {
        let payload = encode_blob(&snap).expect("a snapshot encodes");
        let back: CoreSnapshot = decode_blob(&payload).expect("an encoded snapshot decodes");
        assert_eq!(back, snap, "decode(encode(x)) != x");
        let file = snapshot_file(seq, &payload);
        assert_eq!(
            check_snapshot(&file, seq),
            Ok(&payload[..]),
            "a written snapshot file does not check out"
        );
        restore_and_check(&payload);
    }
}

/// Restores `payload` as recovery does; when that works, checks that the
/// state is a fixed point of snapshot and restore.
fn restore_and_check(payload: &[u8]) {
    let config = CoreConfig::default();
    let Ok(core) = restore_snapshot(config.clone(), payload) else {
        return;
    };
    let first = core.snapshot();
    let bytes = encode_blob(&first).expect("a state's snapshot encodes");
    let again = restore_snapshot(config, &bytes)
        .unwrap_or_else(|e| panic!("a restored state's own snapshot is refused: {e}"));
    assert_eq!(
        again.snapshot(),
        first,
        "snapshot and restore are not a fixed point"
    );
}
