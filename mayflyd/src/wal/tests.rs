//! Behavioural tests of the WAL: round trips, torn tails, damage, snapshots,
//! failed syncs, repair, and a property test over random logs and damage.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use super::format::{self, SEGMENT_HEADER_LEN};
use super::*;

/// The snapshot format these tests write (the WAL does not look into
/// payloads; it only hands the format back).
const FORMAT: u8 = 2;

/// What one `open` produced, collected for comparison.
#[derive(Debug)]
struct Opened {
    /// The handle, ready for appending.
    wal: Wal,
    /// Snapshot payload handed to `on_snapshot`, if any.
    snapshot: Option<Vec<u8>>,
    /// The format `on_snapshot` was told, if it was called.
    snapshot_format: Option<u8>,
    /// Record payloads handed to `on_record`, in order.
    records: Vec<Vec<u8>>,
    /// The returned statistics.
    recovery: Recovery,
}

/// Opens `dir` with `segment_bytes` and no space reserved ahead (so a
/// segment file ends where its last record does, which the byte-level
/// damage tests rely on), collecting everything replayed.
fn open_with(dir: &Path, segment_bytes: u64) -> Result<Opened, WalError> {
    open_opts(
        dir,
        WalOptions {
            segment_bytes,
            preallocate_bytes: 0,
        },
    )
}

/// Opens `dir` with `opts`, collecting everything replayed.
fn open_opts(dir: &Path, opts: WalOptions) -> Result<Opened, WalError> {
    let mut snapshot = None;
    let mut snapshot_format = None;
    let mut records = Vec::new();
    let (wal, recovery) = Wal::open(
        dir,
        opts,
        |format, s| -> Result<(), std::convert::Infallible> {
            snapshot = Some(s.to_vec());
            snapshot_format = Some(format);
            Ok(())
        },
        |r| {
            records.push(r.to_vec());
            Ok(())
        },
    )?;
    Ok(Opened {
        wal,
        snapshot,
        snapshot_format,
        records,
        recovery,
    })
}

/// Opens `dir` with the default segment size and no space reserved ahead.
fn open(dir: &Path) -> Result<Opened, WalError> {
    open_with(dir, DEFAULT_SEGMENT_BYTES)
}

/// A distinguishable payload of `len` bytes for record number `n`.
fn payload(n: usize, len: usize) -> Vec<u8> {
    (0..len).map(|i| (n * 31 + i * 7) as u8).collect()
}

/// Appends and syncs each payload individually.
fn append_synced(wal: &mut Wal, payloads: &[Vec<u8>]) {
    for p in payloads {
        wal.append(p).unwrap();
        wal.sync().unwrap();
    }
}

/// Segment files in `dir`, in log order.
fn segments(dir: &Path) -> Vec<PathBuf> {
    files_with_suffix(dir, ".wal")
}

/// Snapshot files in `dir`, in log order.
fn snapshots(dir: &Path) -> Vec<PathBuf> {
    files_with_suffix(dir, ".snap")
}

/// Regular files in `dir` ending in `suffix`, sorted.
fn files_with_suffix(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && p.to_string_lossy().ends_with(suffix))
        .collect();
    out.sort();
    out
}

/// Every file under `dir` (recursively) with its content, for proving that
/// a failed open changed nothing.
fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.insert(path.clone(), fs::read(&path).unwrap());
            }
        }
    }
    out
}

/// Flips bits of the byte at `offset` in `path`.
fn flip(path: &Path, offset: u64, mask: u8) {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut byte = [0u8];
    file.read_exact_at(&mut byte, offset).unwrap();
    byte[0] ^= mask;
    file.write_all_at(&byte, offset).unwrap();
}

/// Appends raw bytes to the end of `path`.
fn append_raw(path: &Path, bytes: &[u8]) {
    let len = fs::metadata(path).unwrap().len();
    let file = OpenOptions::new().write(true).open(path).unwrap();
    file.write_all_at(bytes, len).unwrap();
}

/// Framed size of a record with `len` payload bytes.
fn framed(len: usize) -> u64 {
    (format::RECORD_HEADER_LEN + len) as u64
}

#[test]
fn missing_dir_is_a_fresh_start() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("state").join("wal");
    let opened = open(&dir).unwrap();
    assert!(dir.is_dir());
    assert_eq!(opened.snapshot, None);
    assert!(opened.records.is_empty());
    assert_eq!(opened.recovery.torn_bytes_cut, 0);
    // No segment until something is synced.
    assert!(segments(&dir).is_empty());
}

#[test]
fn path_that_is_a_file_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wal");
    fs::write(&dir, b"x").unwrap();
    let err = open(&dir).unwrap_err();
    assert!(err.to_string().contains("not a directory"), "{err}");
}

#[test]
fn round_trip_across_segments() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wal");
    let sizes = [0, 1, 3000, 0, 17, 9000, 5, 0, 250, 4096];
    let written: Vec<Vec<u8>> = sizes
        .iter()
        .enumerate()
        .map(|(n, &len)| payload(n, len))
        .collect();
    {
        let mut opened = open_with(&dir, 4096).unwrap();
        for chunk in written.chunks(3) {
            for p in chunk {
                opened.wal.append(p).unwrap();
            }
            let stats = opened.wal.sync().unwrap();
            assert_eq!(stats.records, chunk.len() as u64);
        }
        assert_eq!(opened.wal.pending_bytes(), 0);
    }
    assert!(segments(&dir).len() > 1, "small segment size must roll");
    let opened = open_with(&dir, 4096).unwrap();
    assert_eq!(opened.records, written);
    assert_eq!(opened.recovery.records, written.len() as u64);
    assert_eq!(opened.recovery.bytes, sizes.iter().sum::<usize>() as u64);
    assert_eq!(opened.recovery.segments, segments(&dir).len() as u64);
    assert_eq!(
        opened.wal.bytes_since_snapshot(),
        sizes.iter().map(|&s| framed(s)).sum::<u64>()
    );
}

#[test]
fn unsynced_appends_are_not_durable() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wal");
    {
        let mut opened = open(&dir).unwrap();
        append_synced(&mut opened.wal, &[b"kept".to_vec()]);
        opened.wal.append(b"lost").unwrap();
        assert_eq!(opened.wal.pending_records(), 1);
        assert_eq!(opened.wal.pending_bytes() as u64, framed(4));
    }
    assert_eq!(open(&dir).unwrap().records, vec![b"kept".to_vec()]);
}

#[test]
fn empty_sync_touches_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wal");
    let mut opened = open(&dir).unwrap();
    let stats = opened.wal.sync().unwrap();
    assert_eq!(stats.records, 0);
    assert!(segments(&dir).is_empty());
    assert_eq!(opened.wal.metrics().syncs, 0);
}

#[test]
fn torn_tail_is_cut_and_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wal");
    let written: Vec<Vec<u8>> = (0..5).map(|n| payload(n, 100)).collect();
    append_synced(&mut open(&dir).unwrap().wal, &written);
    let seg = segments(&dir).pop().unwrap();
    let full = fs::metadata(&seg).unwrap().len();
    // A crash in the middle of the last record's payload.
    fs::OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(full - 30)
        .unwrap();

    let mut opened = open(&dir).unwrap();
    assert_eq!(opened.records, written[..4]);
    assert_eq!(opened.recovery.torn_bytes_cut, framed(100) - 30);
    assert_eq!(
        fs::metadata(&seg).unwrap().len(),
        full - framed(100),
        "cut on disk"
    );

    append_synced(&mut opened.wal, &[b"after".to_vec()]);
    drop(opened);
    let opened = open(&dir).unwrap();
    let mut expected = written[..4].to_vec();
    expected.push(b"after".to_vec());
    assert_eq!(opened.records, expected);
    assert_eq!(opened.recovery.torn_bytes_cut, 0);
}

/// Options that reserve `preallocate_bytes` ahead in 64 KiB segments.
fn preallocating(preallocate_bytes: u64) -> WalOptions {
    WalOptions {
        segment_bytes: 64 * 1024,
        preallocate_bytes,
    }
}

#[test]
fn reserved_space_is_zeros_and_replays_as_free_space() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wal");
    let written: Vec<Vec<u8>> = (0..20).map(|n| payload(n, 50)).collect();
    let data_end = SEGMENT_HEADER_LEN as u64 + written.iter().map(|p| framed(p.len())).sum::<u64>();
    {
        let mut opened = open_opts(&dir, preallocating(4096)).unwrap();
        append_synced(&mut opened.wal, &written);
    }
    let seg = segments(&dir).pop().unwrap();
    let bytes = fs::read(&seg).unwrap();
    // 20 × 59 bytes of records crossed one reservation: the file is longer
    // than its records, and the rest is zeros.
    assert!(
        bytes.len() as u64 > data_end,
        "{} <= {data_end}",
        bytes.len()
    );
    assert!(bytes[data_end as usize..].iter().all(|&b| b == 0));

    let mut opened = open_opts(&dir, preallocating(4096)).unwrap();
    assert_eq!(opened.records, written);
    assert_eq!(opened.recovery.torn_bytes_cut, 0);
    assert_eq!(
        opened.wal.bytes_since_snapshot(),
        data_end - SEGMENT_HEADER_LEN as u64,
        "reserved zeros are not log bytes"
    );
    assert_eq!(
        fs::metadata(&seg).unwrap().len(),
        bytes.len() as u64,
        "reserved space is kept, not cut"
    );
    // Appending resumes right after the last record, over the zeros.
    append_synced(&mut opened.wal, &[b"after".to_vec()]);
    drop(opened);
    let opened = open_opts(&dir, preallocating(4096)).unwrap();
    assert_eq!(opened.records.len(), 21);
    assert_eq!(opened.records[20], b"after");
    // A reader that does not reserve reads the same log.
    drop(opened);
    assert_eq!(open(&dir).unwrap().records.len(), 21);
}

#[test]
fn earlier_segments_may_end_in_reserved_space() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wal");
    let opts = WalOptions {
        segment_bytes: 1024,
        preallocate_bytes: 512,
    };
    let written: Vec<Vec<u8>> = (0..60).map(|n| payload(n, 40)).collect();
    append_synced(&mut open_opts(&dir, opts.clone()).unwrap().wal, &written);
    assert!(segments(&dir).len() > 2, "must roll");
    let opened = open_opts(&dir, opts).unwrap();
    assert_eq!(opened.records, written);
    assert_eq!(opened.recovery.torn_bytes_cut, 0);
}

#[test]
fn torn_write_into_reserved_space_is_cut() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wal");
    let written: Vec<Vec<u8>> = (0..3).map(|n| payload(n, 100)).collect();
    append_synced(
        &mut open_opts(&dir, preallocating(4096)).unwrap().wal,
        &written,
    );
    let seg = segments(&dir).pop().unwrap();
    let data_end = SEGMENT_HEADER_LEN as u64 + 3 * framed(100);
    // A crash wrote the first 40 bytes of the next record over the zeros.
    let mut record = Vec::new();
    format::encode_record(&mut record, FORMAT_VERSION, &payload(9, 100));
    OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .write_all_at(&record[..40], data_end)
        .unwrap();

    let mut opened = open_opts(&dir, preallocating(4096)).unwrap();
    assert_eq!(opened.records, written);
    assert!(opened.recovery.torn_bytes_cut > 0);
    assert_eq!(fs::metadata(&seg).unwrap().len(), data_end, "cut on disk");
    append_synced(&mut opened.wal, &[b"after".to_vec()]);
    drop(opened);
    let opened = open_opts(&dir, preallocating(4096)).unwrap();
    assert_eq!(opened.records.len(), 4);
    assert_eq!(opened.recovery.torn_bytes_cut, 0);
}

#[test]
fn data_after_reserved_zeros_is_damage() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wal");
    let written: Vec<Vec<u8>> = (0..3).map(|n| payload(n, 100)).collect();
    append_synced(
        &mut open_opts(&dir, preallocating(4096)).unwrap().wal,
        &written,
    );
    let seg = segments(&dir).pop().unwrap();
    // Our writer never leaves data behind its reserved zeros.
    append_raw(&seg, b"stray");
    let before = tree(&dir);
    let err = open_opts(&dir, preallocating(4096)).unwrap_err();
    assert!(err.needs_repair(), "{err:?}");
    assert_eq!(tree(&dir), before, "a refused open changes nothing");
}

#[test]
fn torn_tail_shapes() {
    // Each damage is applied after three good records; each must be cut.
    // (A tail of zeros alone is not damage but reserved space:
    // `reserved_space_is_zeros_and_replays_as_free_space`.)
    let garbage_record = {
        let mut r = Vec::new();
        format::encode_record(&mut r, FORMAT_VERSION, b"complete but scrambled");
        let last = r.len() - 1;
        r[last] ^= 0xff;
        r
    };
    // (name, tail, size of the torn write the warning reports)
    let shapes: Vec<(&str, Vec<u8>, u64)> = vec![
        ("partial header", vec![7, 0, 0], 3),
        (
            "complete record with bad CRC running to EOF",
            garbage_record,
            framed(22),
        ),
        (
            "huge length field",
            vec![0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4, 1, 9, 9],
            11,
        ),
        (
            "header then zeros",
            {
                let mut v = vec![200, 0, 0, 0, 1, 2, 3, 4, 1];
                v.extend([0; 500]);
                v
            },
            framed(200),
        ),
    ];
    for (name, tail, torn) in shapes {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("wal");
        let written: Vec<Vec<u8>> = (0..3).map(|n| payload(n, 40)).collect();
        append_synced(&mut open(&dir).unwrap().wal, &written);
        let seg = segments(&dir).pop().unwrap();
        append_raw(&seg, &tail);
        let opened = open(&dir).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(opened.records, written, "{name}");
        assert_eq!(opened.recovery.torn_bytes_cut, torn, "{name}");
        assert_eq!(
            fs::metadata(&seg).unwrap().len(),
            SEGMENT_HEADER_LEN as u64 + 3 * framed(40),
            "{name}: everything after the good records is cut"
        );
    }
}

#[test]
fn segment_with_torn_header_is_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wal");
    let written = vec![payload(0, 10)];
    append_synced(&mut open(&dir).unwrap().wal, &written);
    let next = dir.join(format::segment_file_name(2));
    fs::write(&next, &format::encode_segment_header(2)[..5]).unwrap();

    let mut opened = open(&dir).unwrap();
    assert_eq!(opened.records, written);
    assert_eq!(opened.recovery.torn_bytes_cut, 5);
    assert!(!next.exists());
    append_synced(&mut opened.wal, &[b"x".to_vec()]);
    drop(opened);
    assert_eq!(
        open(&dir).unwrap().records,
        vec![payload(0, 10), b"x".to_vec()]
    );
}

#[test]
fn damage_before_the_tail_is_an_error_and_touches_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wal");
    let written: Vec<Vec<u8>> = (0..4).map(|n| payload(n, 50)).collect();
    append_synced(&mut open(&dir).unwrap().wal, &written);
    let seg = segments(&dir).pop().unwrap();
    // Payload byte of the second record; two good records follow it.
    let second = SEGMENT_HEADER_LEN as u64 + framed(50);
    flip(&seg, second + 20, 0x10);
    let before = tree(&dir);

    let err = open(&dir).unwrap_err();
    match &err {
        WalError::Corrupt { path, offset, .. } => {
            assert_eq!(path, &seg);
            assert_eq!(*offset, second);
        }
        other => panic!("unexpected {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains(&seg.display().to_string()), "{msg}");
    assert!(msg.contains(&format!("offset {second}")), "{msg}");
    assert!(msg.contains("--repair-wal"), "{msg}");
    assert!(err.needs_repair());
    assert_eq!(tree(&dir), before, "a failed open must not change any file");
}

#[test]
fn damage_at_the_end_of_an_earlier_segment_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wal");
    let written: Vec<Vec<u8>> = (0..6).map(|n| payload(n, 300)).collect();
    append_synced(&mut open_with(&dir, 600).unwrap().wal, &written);
    let segs = segments(&dir);
    assert!(segs.len() >= 3);
    let len = fs::metadata(&segs[0]).unwrap().len();
    flip(&segs[0], len - 1, 0x01);
    let before = tree(&dir);
    let err = open_with(&dir, 600).unwrap_err();
    assert!(
        matches!(&err, WalError::Corrupt { path, .. } if path == &segs[0]),
        "{err:?}"
    );
    assert!(err.to_string().contains("later segments exist"), "{err}");
    assert_eq!(tree(&dir), before);
}

#[test]
fn huge_length_field_in_an_earlier_segment_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wal");
    append_synced(
        &mut open_with(&dir, 100).unwrap().wal,
        &[payload(0, 200), payload(1, 200)],
    );
    let first = &segments(&dir)[0];
    // Length field of the first record: 0xff in the top byte = ~4 GiB.
    flip(first, SEGMENT_HEADER_LEN as u64 + 3, 0xff);
    let err = open_with(&dir, 100).unwrap_err();
    assert!(err.to_string().contains("limit"), "{err}");
}

#[test]
fn unknown_format_version_is_an_error_and_touches_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wal");
    append_synced(&mut open(&dir).unwrap().wal, &[payload(0, 10)]);
    let seg = segments(&dir).pop().unwrap();
    let offset = fs::metadata(&seg).unwrap().len();
    // A record from a future writer: valid CRC, version 2, at the very end
    // (where a torn write would be cut) to show it is not mistaken for one.
    let mut future = Vec::new();
    format::encode_record(&mut future, FORMAT_VERSION + 1, b"from the future");
    append_raw(&seg, &future);
    let before = tree(&dir);

    let err = open(&dir).unwrap_err();
    match &err {
        WalError::UnknownVersion {
            path,
            offset: at,
            found,
            supported,
        } => {
            assert_eq!(path, &seg);
            assert_eq!(*at, offset);
            assert_eq!(*found, FORMAT_VERSION + 1);
            assert_eq!(*supported, FORMAT_VERSION);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains("--repair-wal"));
    assert_eq!(tree(&dir), before);
}

#[test]
fn corrupt_snapshot_is_an_error_not_an_empty_start() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wal");
    {
        let mut opened = open(&dir).unwrap();
        append_synced(&mut opened.wal, &[payload(0, 10)]);
        opened
            .wal
            .write_snapshot(FORMAT, b"the whole state")
            .unwrap();
        append_synced(&mut opened.wal, &[payload(1, 10)]);
    }
    let snap = snapshots(&dir).pop().unwrap();
    flip(&snap, 40, 0x01);
    let before = tree(&dir);
    let err = open(&dir).unwrap_err();
    assert!(
        matches!(&err, WalError::Corrupt { path, .. } if path == &snap),
        "{err:?}"
    );
    assert_eq!(tree(&dir), before);

    // Cut short (e.g. copied by hand and interrupted): also an error.
    flip(&snap, 40, 0x01);
    let len = fs::metadata(&snap).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(&snap)
        .unwrap()
        .set_len(len - 1)
        .unwrap();
    let err = open(&dir).unwrap_err();
    assert!(err.needs_repair(), "{err:?}");

    // Repair gives up the snapshot and the segments that depend on it.
    let report = repair(&dir).unwrap();
    assert!(!report.is_clean());
    assert!(report.removed.contains(&snap));
    let backup = report.backup_dir.clone().unwrap();
    assert!(backup.join(snap.file_name().unwrap()).is_file());
    let opened = open(&dir).unwrap();
    assert_eq!(opened.snapshot, None);
    assert!(opened.records.is_empty());
}

#[test]
fn snapshot_then_replay() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wal");
    let before: Vec<Vec<u8>> = (0..6).map(|n| payload(n, 300)).collect();
    let after: Vec<Vec<u8>> = (6..9).map(|n| payload(n, 300)).collect();
    {
        let mut opened = open_with(&dir, 700).unwrap();
        append_synced(&mut opened.wal, &before);
        let old_segments = segments(&dir);
        assert!(old_segments.len() > 1);
        assert!(opened.wal.bytes_since_snapshot() > 0);
        let stats = opened
            .wal
            .write_snapshot(FORMAT, b"state after six")
            .unwrap();
        assert_eq!(opened.wal.bytes_since_snapshot(), 0);
        assert_eq!(stats.files_removed, old_segments.len() as u64);
        for seg in &old_segments {
            assert!(
                !seg.exists(),
                "covered segment {} not deleted",
                seg.display()
            );
        }
        append_synced(&mut opened.wal, &after);
    }
    let mut opened = open_with(&dir, 700).unwrap();
    assert_eq!(opened.snapshot.as_deref(), Some(&b"state after six"[..]));
    assert_eq!(opened.snapshot_format, Some(FORMAT));
    assert_eq!(opened.records, after);
    assert_eq!(opened.recovery.snapshot_bytes, Some(15));

    // A second snapshot replaces the first; its format comes back as
    // written.
    opened.wal.write_snapshot(1, b"second").unwrap();
    assert_eq!(snapshots(&dir).len(), 1);
    drop(opened);
    let opened = open(&dir).unwrap();
    assert_eq!(opened.snapshot.as_deref(), Some(&b"second"[..]));
    assert_eq!(opened.snapshot_format, Some(1));
    assert!(opened.records.is_empty());
}

#[test]
fn snapshot_covers_pending_records_and_back_to_back_snapshots_work() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wal");
    {
        let mut opened = open(&dir).unwrap();
        opened.wal.append(b"in the snapshot").unwrap();
        opened.wal.write_snapshot(FORMAT, b"one").unwrap();
        assert_eq!(opened.wal.pending_bytes(), 0);
        opened.wal.write_snapshot(FORMAT, b"two").unwrap();
        append_synced(&mut opened.wal, &[b"r".to_vec()]);
    }
    let opened = open(&dir).unwrap();
    assert_eq!(opened.snapshot.as_deref(), Some(&b"two"[..]));
    assert_eq!(opened.records, vec![b"r".to_vec()]);
}

#[test]
fn leftovers_of_interrupted_snapshots_are_cleaned_up() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wal");
    {
        let mut opened = open(&dir).unwrap();
        append_synced(&mut opened.wal, &[b"a".to_vec()]);
    }
    // A crash between snapshot rename and deletion leaves the covered
    // segment and an older snapshot; one during the write leaves a temp.
    let covered = segments(&dir);
    fs::copy(&covered[0], tmp.path().join("seg1")).unwrap();
    {
        let mut opened = open(&dir).unwrap();
        opened.wal.write_snapshot(FORMAT, b"s").unwrap();
    }
    fs::copy(tmp.path().join("seg1"), &covered[0]).unwrap();
    let old_snap = dir.join(format::snapshot_file_name(1));
    let mut file = format::encode_snapshot_header(1, FORMAT, b"old").to_vec();
    file.extend_from_slice(b"old");
    fs::write(&old_snap, file).unwrap();
    let temp = dir.join("00000000000000000009.snap.tmp");
    fs::write(&temp, b"half").unwrap();
    fs::create_dir(dir.join("backup-1")).unwrap();

    let opened = open(&dir).unwrap();
    assert_eq!(opened.snapshot.as_deref(), Some(&b"s"[..]));
    assert!(opened.records.is_empty());
    assert!(!covered[0].exists() && !old_snap.exists() && !temp.exists());
    assert!(
        dir.join("backup-1").is_dir(),
        "foreign entries are left alone"
    );
}

#[test]
fn missing_segment_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wal");
    append_synced(
        &mut open_with(&dir, 10).unwrap().wal,
        &[payload(0, 20), payload(1, 20), payload(2, 20)],
    );
    let segs = segments(&dir);
    assert_eq!(segs.len(), 3);
    fs::remove_file(&segs[1]).unwrap();
    let err = open_with(&dir, 10).unwrap_err();
    assert!(
        matches!(&err, WalError::MissingSegment { missing, .. } if missing == &segs[1]),
        "{err:?}"
    );
    assert!(err.to_string().contains("--repair-wal"));

    // Without a snapshot the log must start at segment 1.
    fs::remove_file(&segs[0]).unwrap();
    assert!(matches!(
        open_with(&dir, 10),
        Err(WalError::MissingSegment { .. })
    ));
}

#[test]
fn failed_write_keeps_earlier_records_and_the_wal_usable() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wal");
    let mut opened = open(&dir).unwrap();
    append_synced(&mut opened.wal, &[b"A".to_vec()]);
    let seg = segments(&dir).pop().unwrap();
    let synced = fs::metadata(&seg).unwrap().len();

    opened.wal.append(&payload(1, 500)).unwrap();
    opened.wal.faults().short_write.set(Some(100));
    let err = opened.wal.sync().unwrap_err();
    assert_eq!(err.io_kind(), Some(ErrorKind::StorageFull));
    assert!(
        err.to_string().contains(&seg.display().to_string()),
        "{err}"
    );
    assert_eq!(opened.wal.pending_bytes(), 0, "pending batch is dropped");
    assert_eq!(
        fs::metadata(&seg).unwrap().len(),
        synced,
        "cut back to synced length"
    );
    assert_eq!(opened.wal.metrics().failed_syncs, 1);

    append_synced(&mut opened.wal, &[b"C".to_vec()]);
    drop(opened);
    assert_eq!(
        open(&dir).unwrap().records,
        vec![b"A".to_vec(), b"C".to_vec()]
    );
}

#[test]
fn failed_fsync_keeps_earlier_records_and_the_wal_usable() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wal");
    let mut opened = open(&dir).unwrap();
    append_synced(&mut opened.wal, &[b"A".to_vec()]);
    let seg = segments(&dir).pop().unwrap();
    let synced = fs::metadata(&seg).unwrap().len();

    opened.wal.append(b"B").unwrap();
    opened.wal.faults().fsync.set(true);
    let err = opened.wal.sync().unwrap_err();
    assert!(
        err.to_string().contains("fdatasync") || err.to_string().contains("flushing"),
        "{err}"
    );
    assert_eq!(fs::metadata(&seg).unwrap().len(), synced);

    append_synced(&mut opened.wal, &[b"C".to_vec()]);
    drop(opened);
    assert_eq!(
        open(&dir).unwrap().records,
        vec![b"A".to_vec(), b"C".to_vec()]
    );
}

#[test]
fn failed_cut_back_is_retried_before_the_next_write() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wal");
    let mut opened = open(&dir).unwrap();
    append_synced(&mut opened.wal, &[b"A".to_vec()]);
    let seg = segments(&dir).pop().unwrap();
    let synced = fs::metadata(&seg).unwrap().len();

    opened.wal.append(&payload(1, 500)).unwrap();
    opened.wal.faults().short_write.set(Some(100));
    opened.wal.faults().restore.set(true);
    let err = opened.wal.sync().unwrap_err();
    assert!(
        err.to_string().contains("retried on the next sync"),
        "{err}"
    );
    assert_eq!(
        fs::metadata(&seg).unwrap().len(),
        synced + 100,
        "half batch still there"
    );

    // Crashing now leaves a torn tail, which recovery cuts.
    let copy = tempfile::tempdir().unwrap();
    let copied = copy.path().join("wal");
    fs::create_dir(&copied).unwrap();
    fs::copy(&seg, copied.join(seg.file_name().unwrap())).unwrap();
    let crashed = open(&copied).unwrap();
    assert_eq!(crashed.records, vec![b"A".to_vec()]);
    assert_eq!(crashed.recovery.torn_bytes_cut, 100);

    // Carrying on: the next sync first cuts the half batch off.
    append_synced(&mut opened.wal, &[b"C".to_vec()]);
    drop(opened);
    assert_eq!(
        open(&dir).unwrap().records,
        vec![b"A".to_vec(), b"C".to_vec()]
    );
}

#[test]
fn failed_sync_into_a_new_segment_after_a_roll() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wal");
    let mut opened = open_with(&dir, 10).unwrap();
    append_synced(&mut opened.wal, &[b"A".to_vec()]);
    opened.wal.append(b"B").unwrap();
    opened.wal.faults().fsync.set(true);
    opened.wal.sync().unwrap_err();
    append_synced(&mut opened.wal, &[b"C".to_vec()]);
    drop(opened);
    assert_eq!(
        open_with(&dir, 10).unwrap().records,
        vec![b"A".to_vec(), b"C".to_vec()]
    );
}

#[test]
fn failed_snapshot_write_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wal");
    let mut opened = open(&dir).unwrap();
    append_synced(&mut opened.wal, &[b"A".to_vec()]);
    opened.wal.append(b"B").unwrap();
    opened.wal.faults().before_rename.set(true);
    let err = opened.wal.write_snapshot(FORMAT, b"state").unwrap_err();
    assert_eq!(err.io_kind(), Some(ErrorKind::StorageFull), "{err}");
    assert!(snapshots(&dir).is_empty());
    assert!(
        files_with_suffix(&dir, ".tmp").is_empty(),
        "temp file removed"
    );
    assert_eq!(opened.wal.pending_records(), 1, "pending records kept");
    opened.wal.sync().unwrap();
    drop(opened);
    let opened = open(&dir).unwrap();
    assert_eq!(opened.snapshot, None);
    assert_eq!(opened.records, vec![b"A".to_vec(), b"B".to_vec()]);
}

#[test]
fn failed_segment_creation_leaves_no_debris() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wal");
    let mut opened = open(&dir).unwrap();
    opened.wal.append(b"A").unwrap();
    opened.wal.faults().before_rename.set(true);
    opened.wal.sync().unwrap_err();
    assert!(segments(&dir).is_empty());
    assert!(files_with_suffix(&dir, ".tmp").is_empty());
    assert_eq!(opened.wal.pending_bytes(), 0);

    // The segment appears, but its directory entry may not be durable:
    // the next sync recreates it in place.
    opened.wal.append(b"B").unwrap();
    opened.wal.faults().dir_sync.set(true);
    opened.wal.sync().unwrap_err();
    append_synced(&mut opened.wal, &[b"C".to_vec()]);
    drop(opened);
    assert_eq!(open(&dir).unwrap().records, vec![b"C".to_vec()]);
}

#[test]
fn ambiguous_snapshot_poisons_the_handle() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wal");
    let mut opened = open(&dir).unwrap();
    append_synced(&mut opened.wal, &[b"A".to_vec()]);
    opened.wal.faults().dir_sync.set(true);
    opened.wal.write_snapshot(FORMAT, b"state").unwrap_err();
    opened.wal.append(b"B").unwrap();
    let err = opened.wal.sync().unwrap_err();
    assert!(matches!(err, WalError::Poisoned { .. }), "{err:?}");
    assert!(err.to_string().contains("restart"), "{err}");
    assert!(matches!(
        opened.wal.write_snapshot(FORMAT, b"x"),
        Err(WalError::Poisoned { .. })
    ));
    drop(opened);
    // Here the rename did reach the disk; either outcome is consistent.
    let opened = open(&dir).unwrap();
    assert_eq!(opened.snapshot.as_deref(), Some(&b"state"[..]));
    assert!(opened.records.is_empty());
}

#[test]
fn oversized_append_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let mut opened = open(&tmp.path().join("wal")).unwrap();
    let err = opened
        .wal
        .append(&vec![0; MAX_RECORD_BYTES + 1])
        .unwrap_err();
    assert!(matches!(err, WalError::RecordTooLarge { .. }));
    assert_eq!(opened.wal.pending_bytes(), 0);
    opened.wal.append(&vec![0; MAX_RECORD_BYTES]).unwrap();
}

#[test]
fn second_open_is_locked_out() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wal");
    let first = open(&dir).unwrap();
    assert!(matches!(open(&dir), Err(WalError::Locked { .. })));
    assert!(matches!(repair(&dir), Err(WalError::Locked { .. })));
    drop(first);
    open(&dir).unwrap();
}

#[test]
fn replay_callback_errors_carry_the_position_and_change_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wal");
    append_synced(
        &mut open(&dir).unwrap().wal,
        &[b"a".to_vec(), b"b".to_vec(), b"c".to_vec()],
    );
    let seg = segments(&dir).pop().unwrap();
    append_raw(&seg, &[1, 2, 3]); // a torn tail that must not be cut
    let before = tree(&dir);
    let mut seen = 0;
    let err = Wal::open(
        &dir,
        WalOptions::default(),
        |_, _| Ok(()),
        |r| {
            seen += 1;
            if r == b"b" {
                Err(format!("cannot apply {r:?}"))
            } else {
                Ok(())
            }
        },
    )
    .unwrap_err();
    match &err {
        WalError::Replay {
            path,
            offset,
            error,
        } => {
            assert_eq!(path, &seg);
            assert_eq!(*offset, SEGMENT_HEADER_LEN as u64 + framed(1));
            assert!(error.to_string().contains("cannot apply"));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(seen, 2);
    assert_eq!(tree(&dir), before);
}

#[test]
fn repair_cuts_at_the_first_bad_record_and_keeps_a_backup() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wal");
    let written: Vec<Vec<u8>> = (0..8).map(|n| payload(n, 100)).collect();
    append_synced(&mut open_with(&dir, 200).unwrap().wal, &written);
    let segs = segments(&dir);
    assert_eq!(segs.len(), 4, "two records per segment");
    // Damage the second record of the second segment.
    flip(&segs[1], SEGMENT_HEADER_LEN as u64 + framed(100) + 50, 0x80);
    let originals = tree(&dir);
    let err = open_with(&dir, 200).unwrap_err();
    assert!(err.needs_repair());

    let report = repair(&dir).unwrap();
    assert_eq!(report.problems.len(), 1, "{report}");
    assert_eq!(
        report.truncated,
        Some((segs[1].clone(), SEGMENT_HEADER_LEN as u64 + framed(100)))
    );
    assert_eq!(report.removed, segs[2..].to_vec());
    assert_eq!(
        report.bytes_dropped,
        framed(100) * 5 + 2 * SEGMENT_HEADER_LEN as u64
    );
    let backup = report.backup_dir.clone().unwrap();
    assert!(backup.starts_with(&dir));
    for seg in &segs[1..] {
        let copy = fs::read(backup.join(seg.file_name().unwrap())).unwrap();
        assert_eq!(&copy, &originals[seg], "backup must be byte-identical");
    }
    assert!(report.to_string().contains("originals copied to"));

    let mut opened = open_with(&dir, 200).unwrap();
    assert_eq!(opened.records, written[..3]);
    append_synced(&mut opened.wal, &[b"new".to_vec()]);
    drop(opened);
    let mut expected = written[..3].to_vec();
    expected.push(b"new".to_vec());
    assert_eq!(open_with(&dir, 200).unwrap().records, expected);
}

#[test]
fn repair_of_a_missing_segment_and_of_a_clean_log() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wal");
    assert!(repair(&dir).unwrap().is_clean(), "missing dir");
    append_synced(
        &mut open_with(&dir, 10).unwrap().wal,
        &[payload(0, 20), payload(1, 20), payload(2, 20)],
    );
    let report = repair(&dir).unwrap();
    assert!(report.is_clean());
    assert_eq!(report.backup_dir, None);

    let segs = segments(&dir);
    fs::remove_file(&segs[1]).unwrap();
    let report = repair(&dir).unwrap();
    assert_eq!(report.removed, vec![segs[2].clone()]);
    assert_eq!(open_with(&dir, 10).unwrap().records, vec![payload(0, 20)]);
}

#[test]
fn unknown_version_is_repairable() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wal");
    append_synced(&mut open(&dir).unwrap().wal, &[b"a".to_vec()]);
    let seg = segments(&dir).pop().unwrap();
    let mut future = Vec::new();
    format::encode_record(&mut future, 7, b"x");
    append_raw(&seg, &future);
    append_raw(&seg, &future);
    repair(&dir).unwrap();
    assert_eq!(open(&dir).unwrap().records, vec![b"a".to_vec()]);
}

#[test]
fn metrics_count_appends_and_syncs() {
    let tmp = tempfile::tempdir().unwrap();
    let mut opened = open(&tmp.path().join("wal")).unwrap();
    opened.wal.append(b"abc").unwrap();
    opened.wal.append(b"de").unwrap();
    let stats = opened.wal.sync().unwrap();
    assert_eq!(stats.records, 2);
    assert_eq!(stats.bytes, framed(3) + framed(2));
    assert_eq!(stats.segment, 1);
    opened.wal.write_snapshot(FORMAT, b"s").unwrap();
    let m = opened.wal.metrics();
    assert_eq!(
        (
            m.appends,
            m.appended_bytes,
            m.syncs,
            m.synced_bytes,
            m.snapshots
        ),
        (2, 5, 1, stats.bytes, 1)
    );
    assert_eq!(m.last_fsync, stats.fsync);
}

/// One step of a generated workload.
#[derive(Debug, Clone)]
enum Op {
    /// Append this payload.
    Append(Vec<u8>),
    /// Sync pending records.
    Sync,
    /// Write a snapshot covering everything appended.
    Snapshot,
}

/// How the generated log is damaged after it is written.
#[derive(Debug, Clone)]
enum Harm {
    /// Cut the last segment at a random length.
    Truncate(prop::sample::Index),
    /// XOR a random nonzero mask into a random byte of any file.
    Flip(prop::sample::Index, u8),
}

/// Payloads of the interesting sizes: empty, small, multi-KB.
fn payload_strategy() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        1 => Just(Vec::new()),
        4 => prop::collection::vec(any::<u8>(), 1..64),
        1 => prop::collection::vec(any::<u8>(), 1000..5000),
    ]
}

/// Workload steps, mostly appends.
fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => payload_strategy().prop_map(Op::Append),
        3 => Just(Op::Sync),
        1 => Just(Op::Snapshot),
    ]
}

/// Both kinds of damage.
fn harm_strategy() -> impl Strategy<Value = Harm> {
    prop_oneof![
        any::<prop::sample::Index>().prop_map(Harm::Truncate),
        (any::<prop::sample::Index>(), 1u8..=255).prop_map(|(i, m)| Harm::Flip(i, m)),
    ]
}

/// Snapshot payloads record how many records they cover, so the checker
/// knows where replay must resume.
fn snapshot_payload(covered: usize) -> Vec<u8> {
    let mut p = (covered as u64).to_le_bytes().to_vec();
    p.extend(std::iter::repeat_n(b'S', covered % 40));
    p
}

/// Checks that what `opened` replayed is a prefix of `written`: a snapshot
/// we wrote, followed by exactly the records after it, in order, unchanged.
fn check_prefix(
    opened: &Opened,
    written: &[Vec<u8>],
    snapshots_written: &[usize],
) -> Result<usize, TestCaseError> {
    let covered = match &opened.snapshot {
        None => 0,
        Some(p) => {
            prop_assert!(p.len() >= 8, "snapshot payload too short");
            let covered = u64::from_le_bytes(p[..8].try_into().unwrap()) as usize;
            prop_assert!(
                snapshots_written.contains(&covered),
                "snapshot never written"
            );
            prop_assert_eq!(p, &snapshot_payload(covered));
            covered
        }
    };
    let end = covered + opened.records.len();
    prop_assert!(end <= written.len(), "more records than written");
    prop_assert!(
        opened.records[..] == written[covered..end],
        "replay is not a prefix"
    );
    Ok(end)
}

/// Walks the record frames of an undamaged segment: how many records it
/// holds, and how many of them end at or before byte `cut`.
fn records_ending_before(segment: &Path, cut: u64) -> (usize, usize) {
    let data = fs::read(segment).unwrap();
    let mut offset = SEGMENT_HEADER_LEN;
    let (mut total, mut kept) = (0, 0);
    while offset < data.len() {
        let header = &data[offset..(offset + format::RECORD_HEADER_LEN).min(data.len())];
        if header.iter().all(|&b| b == 0) {
            break; // space reserved ahead
        }
        let len = u32::from_le_bytes(data[offset..offset + 4].try_into().unwrap()) as usize;
        offset += format::RECORD_HEADER_LEN + len;
        total += 1;
        if offset as u64 <= cut {
            kept += 1;
        }
    }
    (total, kept)
}

/// Temp directory on tmpfs when available: the property test does
/// thousands of fsyncs, which cost real time on a disk.
fn fast_tempdir() -> tempfile::TempDir {
    tempfile::tempdir_in("/dev/shm").unwrap_or_else(|_| tempfile::tempdir().unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig {
        // At least 256 cases; PROPTEST_CASES raises it for soak runs.
        cases: ProptestConfig::default().cases.max(256),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn recovery_yields_a_prefix_or_a_clear_error(
        ops in prop::collection::vec(op_strategy(), 1..40),
        segment_bytes in 64u64..4096,
        preallocate_bytes in prop_oneof![Just(0u64), 1u64..600],
        harm in harm_strategy(),
    ) {
        let opts = WalOptions { segment_bytes, preallocate_bytes };
        let tmp = fast_tempdir();
        let dir = tmp.path().join("wal");
        let mut written: Vec<Vec<u8>> = Vec::new();
        let mut snapshots_written = Vec::new();
        {
            let mut opened = open_opts(&dir, opts.clone()).unwrap();
            for op in &ops {
                match op {
                    Op::Append(p) => {
                        opened.wal.append(p).unwrap();
                        written.push(p.clone());
                    }
                    Op::Sync => {
                        opened.wal.sync().unwrap();
                    }
                    Op::Snapshot => {
                        opened.wal.write_snapshot(FORMAT, &snapshot_payload(written.len())).unwrap();
                        snapshots_written.push(written.len());
                    }
                }
            }
            opened.wal.sync().unwrap();
        }
        // Undamaged, everything comes back.
        {
            let opened = open_opts(&dir, opts.clone()).unwrap();
            prop_assert_eq!(check_prefix(&opened, &written, &snapshots_written)?, written.len());
        }

        let files: Vec<PathBuf> = segments(&dir).into_iter().chain(snapshots(&dir)).collect();
        // For truncation: how many records recovery must still return.
        let mut must_keep = None;
        match &harm {
            Harm::Truncate(at) => {
                if let Some(last) = segments(&dir).pop() {
                    let len = fs::metadata(&last).unwrap().len();
                    let cut = at.index(len as usize + 1) as u64;
                    let (in_last, before_cut) = records_ending_before(&last, cut);
                    must_keep = Some(written.len() - in_last + before_cut);
                    OpenOptions::new().write(true).open(&last).unwrap().set_len(cut).unwrap();
                }
            }
            Harm::Flip(at, mask) => {
                let sizes: Vec<u64> = files.iter().map(|f| fs::metadata(f).unwrap().len()).collect();
                let total: u64 = sizes.iter().sum();
                prop_assume!(total > 0);
                let mut pos = at.index(total as usize) as u64;
                for (file, size) in files.iter().zip(&sizes) {
                    if pos < *size {
                        flip(file, pos, *mask);
                        break;
                    }
                    pos -= size;
                }
            }
        }

        let before = tree(&dir);
        match open_opts(&dir, opts.clone()) {
            Ok(mut opened) => {
                let end = check_prefix(&opened, &written, &snapshots_written)?;
                if let Some(keep) = must_keep {
                    prop_assert_eq!(end, keep, "a cut may only lose the torn record");
                }
                // The cut (if any) happened on disk: new records follow the
                // recovered ones directly.
                let new = vec![b"new-1".to_vec(), Vec::new()];
                append_synced(&mut opened.wal, &new);
                drop(opened);
                let reopened = open_opts(&dir, opts.clone()).unwrap();
                prop_assert_eq!(reopened.recovery.torn_bytes_cut, 0);
                let mut expected_tail = written[..end].to_vec();
                expected_tail.extend(new);
                let covered = end - (reopened.records.len() - 2);
                prop_assert_eq!(&reopened.records[..], &expected_tail[covered..]);
            }
            Err(err) => {
                prop_assert!(matches!(harm, Harm::Flip(..)), "a truncated tail must never be an error: {}", err);
                prop_assert!(err.needs_repair(), "unexpected error kind: {:?}", err);
                let named = match &err {
                    WalError::Corrupt { path, .. } | WalError::UnknownVersion { path, .. } => path.clone(),
                    other => return Err(TestCaseError::fail(format!("unexpected {other:?}"))),
                };
                prop_assert!(files.contains(&named), "error names {}", named.display());
                let msg = err.to_string();
                prop_assert!(msg.contains("offset") && msg.contains("--repair-wal"), "{}", msg);
                prop_assert_eq!(tree(&dir), before.clone(), "failed open changed files");

                let report = repair(&dir).unwrap();
                prop_assert!(!report.is_clean());
                let backup = report.backup_dir.clone().unwrap();
                prop_assert!(!report.backed_up.is_empty());
                for original in &report.backed_up {
                    let copy = fs::read(backup.join(original.file_name().unwrap())).unwrap();
                    prop_assert!(copy == before[original], "backup differs from original");
                }
                let opened = open_opts(&dir, opts.clone()).unwrap();
                check_prefix(&opened, &written, &snapshots_written)?;
            }
        }
    }
}

#[test]
#[ignore = "speed check; run with --release -- --ignored --nocapture"]
fn replay_one_million_records() {
    const RECORDS: usize = 1_000_000;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wal");
    {
        let mut opened = open(&dir).unwrap();
        for n in 0..RECORDS {
            let len = 24 + n % 17;
            let mut p = vec![0u8; len];
            p[..8].copy_from_slice(&(n as u64).to_le_bytes());
            opened.wal.append(&p).unwrap();
            if n % 10_000 == 9_999 {
                opened.wal.sync().unwrap();
            }
        }
        opened.wal.sync().unwrap();
    }
    let started = Instant::now();
    let mut next = 0u64;
    let (_wal, recovery) = Wal::open(
        &dir,
        WalOptions::default(),
        |_, _| Ok(()),
        |r| {
            let n = u64::from_le_bytes(r[..8].try_into().unwrap());
            if n == next {
                next += 1;
                Ok(())
            } else {
                Err(format!("record {n} out of order"))
            }
        },
    )
    .unwrap();
    let elapsed = started.elapsed();
    eprintln!(
        "replayed {} records ({} payload bytes, {} segments) in {elapsed:?}",
        recovery.records, recovery.bytes, recovery.segments
    );
    assert_eq!(recovery.records, RECORDS as u64);
    if !cfg!(debug_assertions) {
        assert!(elapsed < Duration::from_secs(2), "replay took {elapsed:?}");
    }
}
