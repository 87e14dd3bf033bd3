//! Byte layout of segment files, records and snapshot files.
//!
//! Everything that knows where a field sits lives here, so the layout tables
//! in the parent module's documentation can be checked against one short
//! file, and the I/O code never does offset arithmetic of its own.

use std::ops::RangeInclusive;
use std::path::Path;

/// Version byte written into every record, segment header and snapshot
/// header. Bumped when the layout changes, so an older build refuses a newer
/// log instead of misreading it. Independent of the wire protocol's version.
pub const FORMAT_VERSION: u8 = 1;

/// Versions a record may carry. A record's version says how its payload is
/// encoded (the scheduler core's event formats; the log's own layout is
/// the same for all), and is handed to the reader with the payload. The
/// newest is what this build writes; the older ones are read so that a log
/// written by an older build still loads. A newer one is refused by its
/// version, never misread.
pub const RECORD_FORMATS: RangeInclusive<u8> = 1..=2;

/// Versions a snapshot header may carry. The snapshot file's own layout is
/// the same for all of them; the version says how its payload is encoded,
/// which is the writer's business (the scheduler core's snapshot formats),
/// so the writer names it ([`super::Wal::write_snapshot`]) and the reader
/// is handed it with the payload. An older build refuses a newer snapshot
/// by its version rather than misreading it.
pub const SNAPSHOT_FORMATS: RangeInclusive<u8> = 1..=3;

/// Largest payload a record may carry. Appends above it are refused, and the
/// reader treats a larger length field as damage *before* allocating, so a
/// flipped bit can never make recovery try to allocate gigabytes.
pub const MAX_RECORD_BYTES: usize = 16 * 1024 * 1024;

/// Bytes in a record header: `u32 len | u32 crc | u8 version`.
pub(super) const RECORD_HEADER_LEN: usize = 9;

/// Bytes in a segment file header:
/// `magic[8] | u8 version | 3 reserved | u64 seq | u32 crc`.
pub(super) const SEGMENT_HEADER_LEN: usize = 24;

/// Bytes in a snapshot file header:
/// `magic[8] | u8 version | 3 reserved | u64 seq | u64 payload_len | u32 crc`.
pub(super) const SNAPSHOT_HEADER_LEN: usize = 32;

/// First bytes of every segment file; tells a WAL segment from a stray file.
const SEGMENT_MAGIC: [u8; 8] = *b"MAYFLYWL";

/// First bytes of every snapshot file.
const SNAPSHOT_MAGIC: [u8; 8] = *b"MAYFLYSN";

/// File name suffix of segment files.
pub(super) const SEGMENT_SUFFIX: &str = ".wal";

/// File name suffix of snapshot files.
pub(super) const SNAPSHOT_SUFFIX: &str = ".snap";

/// Suffix of files being written before their atomic rename; any such file
/// found at start-up is debris of an interrupted write and is deleted.
pub(super) const TEMP_SUFFIX: &str = ".tmp";

/// Digits in the zero-padded sequence number of a file name; 20 digits hold
/// any `u64`, so names sort lexically in sequence order.
const SEQ_DIGITS: usize = 20;

/// What is wrong with a file and where, before the file's path is attached
/// (the format code never sees paths).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Damage {
    /// Byte offset in the file where the bad structure starts.
    pub offset: u64,
    /// The nature of the problem.
    pub kind: DamageKind,
}

/// The two kinds of unreadable content, which get different error messages
/// because their likely causes (media damage versus a newer writer) differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum DamageKind {
    /// Checksum, magic, length or sequence number does not add up.
    Corrupt(String),
    /// The structure checks out but carries a format version this build does
    /// not know.
    UnknownVersion {
        /// The version byte found.
        found: u8,
        /// The newest version this build reads there.
        supported: u8,
    },
}

impl Damage {
    /// Shorthand for a [`DamageKind::Corrupt`] at `offset`.
    pub(super) fn corrupt(offset: u64, reason: impl Into<String>) -> Self {
        Self {
            offset,
            kind: DamageKind::Corrupt(reason.into()),
        }
    }

    /// Turns the finding into the error `open` reports, naming `path`.
    pub(super) fn into_error(self, path: &Path) -> super::WalError {
        match self.kind {
            DamageKind::Corrupt(reason) => super::WalError::Corrupt {
                path: path.to_path_buf(),
                offset: self.offset,
                reason,
            },
            DamageKind::UnknownVersion { found, supported } => super::WalError::UnknownVersion {
                path: path.to_path_buf(),
                offset: self.offset,
                found,
                supported,
            },
        }
    }

    /// One-line human description, used in repair reports.
    pub(super) fn describe(&self) -> String {
        match &self.kind {
            DamageKind::Corrupt(reason) => format!("offset {}: {reason}", self.offset),
            DamageKind::UnknownVersion { found, .. } => {
                format!("offset {}: unknown format version {found}", self.offset)
            }
        }
    }
}

/// Checksum of a record. The length is covered too (not only version and
/// payload) so a damaged length that still lands inside the file is caught
/// by the checksum instead of silently re-framing the following bytes.
pub(super) fn record_crc(len: u32, version: u8, payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&len.to_le_bytes());
    hasher.update(&[version]);
    hasher.update(payload);
    hasher.finalize()
}

/// Appends one framed record to `out`. The caller has checked
/// `payload.len() <= MAX_RECORD_BYTES`, so the length fits in a `u32`.
pub(super) fn encode_record(out: &mut Vec<u8>, version: u8, payload: &[u8]) {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    out.reserve(RECORD_HEADER_LEN + payload.len());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&record_crc(len, version, payload).to_le_bytes());
    out.push(version);
    out.extend_from_slice(payload);
}

/// The decoded fixed part of a record, not yet verified.
#[derive(Debug, Clone, Copy)]
pub(super) struct RecordHeader {
    /// Payload length as stored; may be garbage until the checksum passes.
    pub len: u32,
    /// Stored checksum.
    pub crc: u32,
    /// Stored format version.
    pub version: u8,
}

/// Splits the nine header bytes into their fields.
pub(super) fn decode_record_header(bytes: &[u8; RECORD_HEADER_LEN]) -> RecordHeader {
    RecordHeader {
        len: u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]),
        crc: u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]),
        version: bytes[8],
    }
}

/// Verifies a complete record (header plus exactly `len` payload bytes) that
/// starts at `offset`. A checksum failure is [`DamageKind::Corrupt`] (the
/// caller decides whether it is a torn tail); a good checksum with a foreign
/// version is [`DamageKind::UnknownVersion`], never a torn tail, because an
/// interrupted write does not produce a valid checksum.
pub(super) fn check_record(
    header: RecordHeader,
    payload: &[u8],
    offset: u64,
) -> Result<(), Damage> {
    let computed = record_crc(header.len, header.version, payload);
    if computed != header.crc {
        return Err(Damage::corrupt(
            offset,
            format!(
                "record checksum mismatch (stored {:#010x}, computed {computed:#010x}, length field {})",
                header.crc, header.len
            ),
        ));
    }
    if !RECORD_FORMATS.contains(&header.version) {
        return Err(Damage {
            offset,
            kind: DamageKind::UnknownVersion {
                found: header.version,
                supported: *RECORD_FORMATS.end(),
            },
        });
    }
    Ok(())
}

/// Builds the header of segment `seq`.
pub(super) fn encode_segment_header(seq: u64) -> [u8; SEGMENT_HEADER_LEN] {
    let mut header = [0u8; SEGMENT_HEADER_LEN];
    header[..8].copy_from_slice(&SEGMENT_MAGIC);
    header[8] = FORMAT_VERSION;
    header[12..20].copy_from_slice(&seq.to_le_bytes());
    let crc = crc32fast::hash(&header[..20]);
    header[20..].copy_from_slice(&crc.to_le_bytes());
    header
}

/// Checks a segment header read from the file whose name says `seq`.
pub(super) fn check_segment_header(
    header: &[u8; SEGMENT_HEADER_LEN],
    seq: u64,
) -> Result<(), Damage> {
    if header[..8] != SEGMENT_MAGIC {
        return Err(Damage::corrupt(
            0,
            "segment header magic is wrong (not a Mayfly WAL segment)",
        ));
    }
    let stored = u32::from_le_bytes([header[20], header[21], header[22], header[23]]);
    let computed = crc32fast::hash(&header[..20]);
    if stored != computed {
        return Err(Damage::corrupt(
            20,
            format!(
                "segment header checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
            ),
        ));
    }
    if header[8] != FORMAT_VERSION {
        return Err(Damage {
            offset: 8,
            kind: DamageKind::UnknownVersion {
                found: header[8],
                supported: FORMAT_VERSION,
            },
        });
    }
    let found = u64_at(header, 12);
    if found != seq {
        return Err(Damage::corrupt(
            12,
            format!("segment header says sequence {found} but the file name says {seq}"),
        ));
    }
    Ok(())
}

/// Builds the header of snapshot `seq` whose payload is encoded in
/// `format` (one of [`SNAPSHOT_FORMATS`]); the checksum covers the header's
/// first 28 bytes and the whole payload.
pub(super) fn encode_snapshot_header(
    seq: u64,
    format: u8,
    payload: &[u8],
) -> [u8; SNAPSHOT_HEADER_LEN] {
    let mut header = [0u8; SNAPSHOT_HEADER_LEN];
    header[..8].copy_from_slice(&SNAPSHOT_MAGIC);
    header[8] = format;
    header[12..20].copy_from_slice(&seq.to_le_bytes());
    header[20..28].copy_from_slice(&(payload.len() as u64).to_le_bytes());
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&header[..28]);
    hasher.update(payload);
    header[28..].copy_from_slice(&hasher.finalize().to_le_bytes());
    header
}

/// Checks a whole snapshot file read into memory and returns its payload
/// format and its payload.
pub(super) fn check_snapshot(data: &[u8], seq: u64) -> Result<(u8, &[u8]), Damage> {
    if data.len() < SNAPSHOT_HEADER_LEN {
        return Err(Damage::corrupt(
            data.len() as u64,
            format!(
                "snapshot file is {} bytes, shorter than its {SNAPSHOT_HEADER_LEN}-byte header",
                data.len()
            ),
        ));
    }
    if data[..8] != SNAPSHOT_MAGIC {
        return Err(Damage::corrupt(
            0,
            "snapshot header magic is wrong (not a Mayfly snapshot)",
        ));
    }
    let payload = &data[SNAPSHOT_HEADER_LEN..];
    let declared = u64_at(data, 20);
    if declared != payload.len() as u64 {
        return Err(Damage::corrupt(
            20,
            format!(
                "snapshot header declares {declared} payload bytes but the file holds {}",
                payload.len()
            ),
        ));
    }
    let stored = u32::from_le_bytes([data[28], data[29], data[30], data[31]]);
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&data[..28]);
    hasher.update(payload);
    let computed = hasher.finalize();
    if stored != computed {
        return Err(Damage::corrupt(
            28,
            format!(
                "snapshot checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
            ),
        ));
    }
    if !SNAPSHOT_FORMATS.contains(&data[8]) {
        return Err(Damage {
            offset: 8,
            kind: DamageKind::UnknownVersion {
                found: data[8],
                supported: *SNAPSHOT_FORMATS.end(),
            },
        });
    }
    let found = u64_at(data, 12);
    if found != seq {
        return Err(Damage::corrupt(
            12,
            format!("snapshot header says sequence {found} but the file name says {seq}"),
        ));
    }
    Ok((data[8], payload))
}

/// Reads a little-endian `u64` at `at`; callers have checked the length.
fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut raw = [0u8; 8];
    raw.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(raw)
}

/// Name of segment `seq`, e.g. `00000000000000000001.wal`.
pub(super) fn segment_file_name(seq: u64) -> String {
    format!("{seq:0SEQ_DIGITS$}{SEGMENT_SUFFIX}")
}

/// Name of the snapshot that covers every segment below `seq`.
pub(super) fn snapshot_file_name(seq: u64) -> String {
    format!("{seq:0SEQ_DIGITS$}{SNAPSHOT_SUFFIX}")
}

/// Parses `<20 digits><suffix>`; anything else (other digit counts, signs,
/// other suffixes) is not ours and yields `None`.
pub(super) fn parse_seq(name: &str, suffix: &str) -> Option<u64> {
    let digits = name.strip_suffix(suffix)?;
    if digits.len() != SEQ_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sort() {
        assert_eq!(segment_file_name(1), "00000000000000000001.wal");
        assert_eq!(
            parse_seq(&segment_file_name(u64::MAX), SEGMENT_SUFFIX),
            Some(u64::MAX)
        );
        assert_eq!(parse_seq(&snapshot_file_name(7), SNAPSHOT_SUFFIX), Some(7));
        assert_eq!(parse_seq("1.wal", SEGMENT_SUFFIX), None);
        assert_eq!(parse_seq("+0000000000000000001.wal", SEGMENT_SUFFIX), None);
        assert_eq!(parse_seq("99999999999999999999.wal", SEGMENT_SUFFIX), None);
        assert!(segment_file_name(9) < segment_file_name(10));
    }

    #[test]
    fn record_round_trip_and_version_check() {
        let mut buf = Vec::new();
        encode_record(&mut buf, 1, b"hello");
        let mut header = [0u8; RECORD_HEADER_LEN];
        header.copy_from_slice(&buf[..RECORD_HEADER_LEN]);
        let decoded = decode_record_header(&header);
        assert_eq!(decoded.len, 5);
        assert_eq!(check_record(decoded, &buf[RECORD_HEADER_LEN..], 0), Ok(()));

        let mut other = Vec::new();
        encode_record(&mut other, 9, b"hello");
        header.copy_from_slice(&other[..RECORD_HEADER_LEN]);
        let err = check_record(
            decode_record_header(&header),
            &other[RECORD_HEADER_LEN..],
            100,
        );
        assert_eq!(
            err,
            Err(Damage {
                offset: 100,
                kind: DamageKind::UnknownVersion {
                    found: 9,
                    supported: *RECORD_FORMATS.end()
                }
            })
        );
    }

    #[test]
    fn an_all_zero_record_header_never_checks_out() {
        // Readers take an all-zero header as reserved space; that is only
        // sound if no real record can have one.
        let zero = decode_record_header(&[0; RECORD_HEADER_LEN]);
        assert_ne!(record_crc(0, 0, &[]), 0);
        assert_ne!(record_crc(0, FORMAT_VERSION, &[]), 0);
        assert!(check_record(zero, &[], 0).is_err());
    }

    #[test]
    fn headers_detect_damage() {
        let header = encode_segment_header(3);
        assert_eq!(check_segment_header(&header, 3), Ok(()));
        assert!(check_segment_header(&header, 4).is_err());
        for i in 0..SEGMENT_HEADER_LEN {
            let mut bad = header;
            bad[i] ^= 0x40;
            assert!(
                check_segment_header(&bad, 3).is_err(),
                "flip at {i} undetected"
            );
        }

        let payload = b"state".to_vec();
        let mut file = encode_snapshot_header(5, 2, &payload).to_vec();
        file.extend_from_slice(&payload);
        assert_eq!(check_snapshot(&file, 5), Ok((2, &payload[..])));
        for i in 0..file.len() {
            let mut bad = file.clone();
            bad[i] ^= 0x01;
            assert!(check_snapshot(&bad, 5).is_err(), "flip at {i} undetected");
        }
        assert!(check_snapshot(&file[..10], 5).is_err());
        let next = *SNAPSHOT_FORMATS.end() + 1;
        let mut future = encode_snapshot_header(5, next, &payload).to_vec();
        future.extend_from_slice(&payload);
        assert_eq!(
            check_snapshot(&future, 5),
            Err(Damage {
                offset: 8,
                kind: DamageKind::UnknownVersion {
                    found: next,
                    supported: *SNAPSHOT_FORMATS.end()
                }
            }),
            "a snapshot format from a newer build is refused by its version"
        );
    }
}
