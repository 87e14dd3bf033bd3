//! Snapshots (`mayflyd/src/core/snapshot.rs`, loaded by
//! `journal::restore_snapshot` once `wal/format.rs` has checked the file):
//! a header naming the payload's format with a CRC over the file, then the
//! bincode of a `CoreSnapshot` (format 2, with its tables of shared values)
//! or of a `v1::CoreSnapshot` (format 1, read only, converted on load),
//! rebuilt into the scheduler's state with its consistency checks.
//!
//! The raw half reads the bytes as a snapshot file (numbered as its header
//! claims) and restores its payload when the checks pass; it also restores
//! the bytes as a bare payload of each format, where the fuzzer is not
//! stopped by the CRC. The structured half builds snapshots of both formats
//! with `arbitrary`. Asserted:
//! - nothing panics: a bad file, an undecodable payload and an inconsistent
//!   snapshot (a table index out of range, a duplicate job) are errors;
//! - `decode(encode(x)) == x` for format 2; a format-1 payload decodes to
//!   its conversion; a snapshot file of a payload checks out to that format
//!   and payload;
//! - a restored state snapshots to a fixed point: restoring what it
//!   snapshots succeeds and snapshots to the same thing (a restart does not
//!   change the state).

use mayfly_protocol::encode_blob;
use mayflyd::core::{CoreConfig, CoreSnapshot, SNAPSHOT_FORMAT, v1};
use mayflyd::journal::restore_snapshot;
use mayflyd::wal::fuzzing::{check_snapshot, claimed_seq, snapshot_file};

/// The fuzz input. See the module documentation.
pub fn run(data: &[u8]) {
    if let Ok((format, payload)) = check_snapshot(data, claimed_seq(data)) {
        restore_and_check(format, payload);
    }
    restore_and_check(SNAPSHOT_FORMAT, data);
    restore_and_check(1, data);

    if let Some((seq, snap, old)) = crate::structured::<(u64, CoreSnapshot, v1::CoreSnapshot)>(data)
    {
        let payload = snap.encode().expect("a snapshot encodes");
        let back = CoreSnapshot::decode(SNAPSHOT_FORMAT, &payload).expect("a snapshot decodes");
        assert_eq!(back, snap, "decode(encode(x)) != x");
        let file = snapshot_file(seq, SNAPSHOT_FORMAT, &payload);
        assert_eq!(
            check_snapshot(&file, seq),
            Ok((SNAPSHOT_FORMAT, &payload[..])),
            "a written snapshot file does not check out"
        );
        restore_and_check(SNAPSHOT_FORMAT, &payload);

        let old_payload = encode_blob(&old).expect("a format-1 snapshot encodes");
        let converted = CoreSnapshot::decode(1, &old_payload).expect("a format-1 snapshot decodes");
        assert_eq!(converted, CoreSnapshot::from(old), "format 1 misread");
        restore_and_check(1, &old_payload);
    }
}

/// Restores `payload` as recovery does; when that works, checks that the
/// state is a fixed point of snapshot and restore.
fn restore_and_check(format: u8, payload: &[u8]) {
    let config = CoreConfig::default();
    let Ok(core) = restore_snapshot(config.clone(), format, payload) else {
        return;
    };
    let first = core.snapshot();
    let bytes = first.encode().expect("a state's snapshot encodes");
    let again = restore_snapshot(config, SNAPSHOT_FORMAT, &bytes)
        .unwrap_or_else(|e| panic!("a restored state's own snapshot is refused: {e}"));
    assert_eq!(
        again.snapshot(),
        first,
        "snapshot and restore are not a fixed point"
    );
}
