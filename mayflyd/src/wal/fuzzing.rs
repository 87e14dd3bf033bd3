//! In-memory entry points to the WAL's decoders, for the fuzz targets in
//! `fuzz/`. Built only with the `fuzzing` feature; not part of the daemon's
//! interface.
//!
//! Recovery reads files; a fuzzer hands over byte slices. These functions
//! run the very checks recovery runs (the segment scan, the record and
//! snapshot checks) over a slice, and report what they found as plain data
//! a target can assert on, so the byte layout stays known to the format
//! code alone.

use std::io::Cursor;
use std::path::Path;

use super::format::{self, DamageKind};
use super::scan::{self, SegmentEnd};

/// Bytes of a segment header: where the first record starts.
pub const SEGMENT_HEADER_BYTES: usize = format::SEGMENT_HEADER_LEN;

/// Bytes of a record header: the payload of a record starts this far after
/// the record.
pub const RECORD_HEADER_BYTES: usize = format::RECORD_HEADER_LEN;

/// What scanning a segment found, as recovery would see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentReport {
    /// The format (version byte) and payload of each good record, in order.
    pub records: Vec<(u8, Vec<u8>)>,
    /// Offset just past the last good record (zero when even the segment
    /// header is bad): where a repair would cut.
    pub valid_len: u64,
    /// How the good records end.
    pub end: SegmentEnding,
}

/// How the good records of a segment end (the scan's verdict, without the
/// wording of its messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SegmentEnding {
    /// Every byte belongs to a good record.
    Clean,
    /// Zero bytes reserved ahead follow the good records.
    Preallocated,
    /// A record fails its checks; `torn` when it has the shape an
    /// interrupted append leaves (only zeros after where it claims to end).
    BadTail {
        /// Where the bad record starts.
        offset: u64,
        /// Whether recovery may cut it (in the last segment).
        torn: bool,
        /// Where it claims to end, or end of file if sooner.
        end: u64,
    },
    /// Damage an interrupted append cannot explain: a bad segment header,
    /// or a record of a foreign format version with a valid checksum.
    Damaged {
        /// Where the damage starts.
        offset: u64,
        /// The foreign version, when that is the damage.
        unknown_version: Option<u8>,
    },
}

/// A record framed as the log writes it: header (naming payload `format`),
/// then `payload`.
pub fn encode_record(format: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    format::encode_record(&mut out, format, payload);
    out
}

/// The header of segment `seq`, as the log writes it.
pub fn segment_header(seq: u64) -> Vec<u8> {
    format::encode_segment_header(seq).to_vec()
}

/// The sequence number a segment or snapshot header claims (zero when the
/// bytes are too short to hold one), so a target can scan raw bytes as if
/// the file's name agreed with its header.
pub fn claimed_seq(bytes: &[u8]) -> u64 {
    bytes
        .get(12..20)
        .and_then(|raw| raw.try_into().ok())
        .map_or(0, u64::from_le_bytes)
}

/// Scans `bytes` as segment `seq`, as recovery scans a segment file.
pub fn scan_segment(bytes: &[u8], seq: u64) -> SegmentReport {
    let mut records = Vec::new();
    let scanned = scan::scan_source(
        Cursor::new(bytes),
        bytes.len() as u64,
        Path::new("fuzz-input.wal"),
        seq,
        &mut |format, payload| {
            records.push((format, payload.to_vec()));
            Ok(())
        },
    );
    // Reading a slice cannot fail and the sink never refuses, so an error
    // here is a bug of the scan itself: let the fuzzer see it.
    let scanned = match scanned {
        Ok(scanned) => scanned,
        Err(e) => panic!("scanning a byte slice failed: {e}"),
    };
    let end = match scanned.end {
        SegmentEnd::Clean => SegmentEnding::Clean,
        SegmentEnd::Preallocated => SegmentEnding::Preallocated,
        SegmentEnd::BadTail { damage, torn, end } => SegmentEnding::BadTail {
            offset: damage.offset,
            torn,
            end,
        },
        SegmentEnd::Damaged(damage) => SegmentEnding::Damaged {
            offset: damage.offset,
            unknown_version: match damage.kind {
                DamageKind::UnknownVersion { found, .. } => Some(found),
                DamageKind::Corrupt(_) => None,
            },
        },
    };
    SegmentReport {
        records,
        valid_len: scanned.valid_len,
        end,
    }
}

/// A snapshot file of `payload`, encoded in payload `format`, named as
/// snapshot `seq`, as the log writes it.
pub fn snapshot_file(seq: u64, format: u8, payload: &[u8]) -> Vec<u8> {
    let mut file = format::encode_snapshot_header(seq, format, payload).to_vec();
    file.extend_from_slice(payload);
    file
}

/// Checks `bytes` as snapshot file `seq`, as recovery does, and returns its
/// payload's format and the payload, or what is wrong.
pub fn check_snapshot(bytes: &[u8], seq: u64) -> Result<(u8, &[u8]), String> {
    format::check_snapshot(bytes, seq).map_err(|damage| damage.describe())
}
