//! Read-only inspection of a WAL directory: listing its files, streaming the
//! records of one segment and loading a snapshot.
//!
//! Nothing here modifies a file. `open` and `repair` first learn everything
//! they need through these functions and only then decide what to change, so
//! an error leaves the directory exactly as it was found.

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::error::{BoxError, WalError};
use super::format::{
    self, Damage, DamageKind, MAX_RECORD_BYTES, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN,
    SEGMENT_SUFFIX, SNAPSHOT_SUFFIX, TEMP_SUFFIX,
};

/// Read buffer per segment. Records smaller than this are handed to the
/// callback straight out of the buffer, without a copy.
const READ_BUFFER_BYTES: usize = 256 * 1024;

/// The WAL files found in a directory, each list sorted by sequence number.
#[derive(Debug, Default)]
pub(super) struct Listing {
    /// Segment files as `(seq, path)`.
    pub segments: Vec<(u64, PathBuf)>,
    /// Snapshot files as `(seq, path)`.
    pub snapshots: Vec<(u64, PathBuf)>,
    /// Leftovers of interrupted atomic writes.
    pub temps: Vec<PathBuf>,
}

impl Listing {
    /// The snapshot recovery starts from: always the newest, because older
    /// ones survive only when a crash interrupted their deletion.
    pub fn newest_snapshot(&self) -> Option<&(u64, PathBuf)> {
        self.snapshots.last()
    }
}

/// Lists `dir`. Files whose names are not ours (backup folders, editor
/// droppings) are ignored rather than rejected, so an operator poking around
/// cannot make the daemon refuse to start.
pub(super) fn list_dir(dir: &Path) -> Result<Listing, WalError> {
    let mut listing = Listing::default();
    let entries =
        fs::read_dir(dir).map_err(|e| WalError::io(dir, "listing the WAL directory", e))?;
    for entry in entries {
        let entry = entry.map_err(|e| WalError::io(dir, "listing the WAL directory", e))?;
        let file_type = entry
            .file_type()
            .map_err(|e| WalError::io(&entry.path(), "reading the file type", e))?;
        if !file_type.is_file() {
            continue;
        }
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        if let Some(seq) = format::parse_seq(name, SEGMENT_SUFFIX) {
            listing.segments.push((seq, entry.path()));
        } else if let Some(seq) = format::parse_seq(name, SNAPSHOT_SUFFIX) {
            listing.snapshots.push((seq, entry.path()));
        } else if name.ends_with(TEMP_SUFFIX)
            && (name.contains(SEGMENT_SUFFIX) || name.contains(SNAPSHOT_SUFFIX))
        {
            listing.temps.push(entry.path());
        }
    }
    listing.segments.sort_unstable();
    listing.snapshots.sort_unstable();
    listing.temps.sort_unstable();
    Ok(listing)
}

/// Reads and verifies snapshot `seq` at `path`, returning the whole file;
/// the payload starts at [`format::SNAPSHOT_HEADER_LEN`].
pub(super) fn read_snapshot(path: &Path, seq: u64) -> Result<Vec<u8>, WalError> {
    load_snapshot(path, seq)?.map_err(|damage| damage.into_error(path))
}

/// Like [`read_snapshot`], but keeps unreadable content (inner `Err`) apart
/// from I/O failure (outer `Err`): repair acts on the first, never the second.
pub(super) fn load_snapshot(path: &Path, seq: u64) -> Result<Result<Vec<u8>, Damage>, WalError> {
    let data = fs::read(path).map_err(|e| WalError::io(path, "reading the snapshot", e))?;
    Ok(match format::check_snapshot(&data, seq) {
        Ok(_) => Ok(data),
        Err(damage) => Err(damage),
    })
}

/// How the content of a segment ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum SegmentEnd {
    /// Every byte belongs to a good record.
    Clean,
    /// The good records are followed by zero bytes only, up to end of file,
    /// starting where the next record header would be: space the writer
    /// filled with zeros ahead of time (see [`super::WalOptions`]), not
    /// damage. Appending resumes at `valid_len`.
    Preallocated,
    /// A record that fails its checks (or a header cut short). `torn` is true
    /// when nothing but zero bytes follows where the bad record claims to end
    /// (vacuously so when it claims to run to or past end of file): the
    /// shape an interrupted append leaves behind. Whether it may be cut also
    /// depends on the segment being the last one, which the caller knows.
    BadTail {
        /// What is wrong and where.
        damage: Damage,
        /// See above.
        torn: bool,
        /// Where the bad record claims to end, or end of file if sooner:
        /// `end - valid_len` is the size of the torn write (zeros reserved
        /// after it are not counted).
        end: u64,
    },
    /// Damage an interrupted append cannot explain: a bad segment header or a
    /// record with a valid checksum but a foreign format version.
    Damaged(Damage),
}

/// What scanning one segment found.
#[derive(Debug, Clone)]
pub(super) struct SegmentScan {
    /// File size when it was scanned.
    pub file_len: u64,
    /// Offset just past the last good record: where a cut would go. Zero if
    /// even the segment header is bad.
    pub valid_len: u64,
    /// Good records delivered to the callback.
    pub records: u64,
    /// Payload bytes of those records.
    pub payload_bytes: u64,
    /// How the good records end.
    pub end: SegmentEnd,
}

impl SegmentScan {
    /// Bytes of good records (headers included), excluding the segment
    /// header; this is what `bytes_since_snapshot` counts.
    pub fn record_bytes(&self) -> u64 {
        self.valid_len.saturating_sub(SEGMENT_HEADER_LEN as u64)
    }
}

/// Callback receiving each good record's payload; its errors become
/// [`WalError::Replay`] with the record's position attached.
pub(super) type RecordSink<'a> = dyn FnMut(u8, &[u8]) -> Result<(), BoxError> + 'a;

/// Streams the records of segment `seq` at `path` to `on_record`, stopping at
/// the first bad one. Content problems are reported in the returned
/// [`SegmentScan`]; only I/O failures and callback errors are `Err`.
pub(super) fn scan_segment(
    path: &Path,
    seq: u64,
    on_record: &mut RecordSink<'_>,
) -> Result<SegmentScan, WalError> {
    let io_err = |action: &'static str| move |e: io::Error| WalError::io(path, action, e);
    let file = File::open(path).map_err(io_err("opening the segment for reading"))?;
    let file_len = file
        .metadata()
        .map_err(io_err("reading the segment's size"))?
        .len();
    scan_source(file, file_len, path, seq, on_record)
}

/// The scan of [`scan_segment`] over any seekable source of `file_len`
/// bytes: the segment file there, a byte slice in the fuzz target (so the
/// fuzzer drives the very code recovery runs). `path` only names the source
/// in errors.
pub(super) fn scan_source<R: Read + Seek>(
    source: R,
    file_len: u64,
    path: &Path,
    seq: u64,
    on_record: &mut RecordSink<'_>,
) -> Result<SegmentScan, WalError> {
    let io_err = |action: &'static str| move |e: io::Error| WalError::io(path, action, e);
    let mut scan = SegmentScan {
        file_len,
        valid_len: 0,
        records: 0,
        payload_bytes: 0,
        end: SegmentEnd::Clean,
    };
    if file_len < SEGMENT_HEADER_LEN as u64 {
        scan.end = SegmentEnd::BadTail {
            damage: Damage::corrupt(
                0,
                format!(
                    "segment file is {file_len} bytes, shorter than its {SEGMENT_HEADER_LEN}-byte header"
                ),
            ),
            torn: true,
            end: file_len,
        };
        return Ok(scan);
    }
    let mut reader = BufReader::with_capacity(READ_BUFFER_BYTES, source);
    let mut header = [0u8; SEGMENT_HEADER_LEN];
    reader
        .read_exact(&mut header)
        .map_err(io_err("reading the segment header"))?;
    if let Err(damage) = format::check_segment_header(&header, seq) {
        scan.end = SegmentEnd::Damaged(damage);
        return Ok(scan);
    }

    let mut offset = SEGMENT_HEADER_LEN as u64;
    let mut scratch = Vec::new();
    loop {
        scan.valid_len = offset;
        let remaining = file_len - offset;
        if remaining == 0 {
            return Ok(scan);
        }
        if remaining < RECORD_HEADER_LEN as u64 {
            if only_zeros(&mut reader, offset, file_len)
                .map_err(io_err("reading the space after the last record"))?
            {
                scan.end = SegmentEnd::Preallocated;
                return Ok(scan);
            }
            scan.end = SegmentEnd::BadTail {
                damage: Damage::corrupt(
                    offset,
                    format!(
                        "record header cut short: {remaining} of {RECORD_HEADER_LEN} bytes present"
                    ),
                ),
                torn: true,
                end: file_len,
            };
            return Ok(scan);
        }
        let mut raw = [0u8; RECORD_HEADER_LEN];
        reader
            .read_exact(&mut raw)
            .map_err(io_err("reading a record header"))?;
        // A real header is never all zeros (the checksum covers the length
        // and version, and the checksum of a zero length and version is not
        // zero), so zeros here are space reserved ahead — if only zeros follow.
        if raw == [0; RECORD_HEADER_LEN]
            && only_zeros(&mut reader, offset, file_len)
                .map_err(io_err("reading the space after the last record"))?
        {
            scan.end = SegmentEnd::Preallocated;
            return Ok(scan);
        }
        let record = format::decode_record_header(&raw);
        let len = u64::from(record.len);
        let claimed_end = offset + RECORD_HEADER_LEN as u64 + len;
        if let Some(damage) = out_of_bounds(len, offset, remaining) {
            return bad_tail(reader, scan, damage, claimed_end, path);
        }

        match deliver_record(&mut reader, &mut scratch, record, offset, path, on_record)? {
            Ok(()) => {
                scan.records += 1;
                scan.payload_bytes += len;
                offset = claimed_end;
            }
            Err(damage) if matches!(damage.kind, DamageKind::UnknownVersion { .. }) => {
                scan.end = SegmentEnd::Damaged(damage);
                return Ok(scan);
            }
            Err(damage) => return bad_tail(reader, scan, damage, claimed_end, path),
        }
    }
}

/// What is wrong with a record of `len` payload bytes whose header starts
/// at `offset` with `remaining` bytes of file from there, if it is longer
/// than any record may be or than the file.
fn out_of_bounds(len: u64, offset: u64, remaining: u64) -> Option<Damage> {
    let why = if len > MAX_RECORD_BYTES as u64 {
        format!("record length field says {len} bytes, above the {MAX_RECORD_BYTES}-byte limit")
    } else if RECORD_HEADER_LEN as u64 + len > remaining {
        format!(
            "record cut short: its length field says {len} payload bytes but only {} remain",
            remaining - RECORD_HEADER_LEN as u64
        )
    } else {
        return None;
    };
    Some(Damage::corrupt(offset, why))
}

/// Reads the payload of `record` (whose header was just read at `offset`,
/// and whose length is within the limit and the file), checks it, and hands
/// it to `on_record` if it is good. The outer `Err` is an I/O or callback
/// failure; the inner one the record's damage.
fn deliver_record<R: Read>(
    reader: &mut BufReader<R>,
    scratch: &mut Vec<u8>,
    record: format::RecordHeader,
    offset: u64,
    path: &Path,
    on_record: &mut RecordSink<'_>,
) -> Result<Result<(), Damage>, WalError> {
    let io_err = |e: io::Error| WalError::io(path, "reading a record", e);
    // The length is at most MAX_RECORD_BYTES (checked), so it fits in usize.
    let len = record.len as usize;
    // The payload is usually in the buffer already: check it in place.
    let buffered = reader.fill_buf().map_err(io_err)?.len();
    let payload: &[u8] = if buffered >= len {
        &reader.buffer()[..len]
    } else {
        scratch.resize(len, 0);
        reader.read_exact(scratch).map_err(io_err)?;
        scratch
    };
    let verdict = format::check_record(record, payload, offset);
    if verdict.is_ok() {
        on_record(record.version, payload).map_err(|error| replay_error(path, offset, error))?;
    }
    if buffered >= len {
        reader.consume(len);
    }
    Ok(verdict)
}

/// Finishes a scan that hit a bad record: decides whether it looks torn by
/// checking that only zero bytes lie between `claimed_end` and end of file.
fn bad_tail<R: Read + Seek>(
    mut reader: BufReader<R>,
    mut scan: SegmentScan,
    damage: Damage,
    claimed_end: u64,
    path: &Path,
) -> Result<SegmentScan, WalError> {
    let torn = claimed_end >= scan.file_len
        || only_zeros(&mut reader, claimed_end, scan.file_len)
            .map_err(|e| WalError::io(path, "reading the data after a bad record", e))?;
    scan.end = SegmentEnd::BadTail {
        damage,
        torn,
        end: claimed_end.min(scan.file_len),
    };
    Ok(scan)
}

/// True if every byte in `from..to` is zero. Zero-filled tails are what
/// file systems leave when a crash persisted a file's new size but not its
/// data, so a bad record followed only by zeros is still a torn append.
fn only_zeros<R: Read + Seek>(reader: &mut BufReader<R>, from: u64, to: u64) -> io::Result<bool> {
    reader.seek(SeekFrom::Start(from))?;
    let mut left = to - from;
    while left > 0 {
        let chunk = reader.fill_buf()?;
        if chunk.is_empty() {
            // The file shrank under us; what is gone holds no records.
            return Ok(true);
        }
        let take = chunk.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        if chunk[..take].iter().any(|&b| b != 0) {
            return Ok(false);
        }
        reader.consume(take);
        left -= take as u64;
    }
    Ok(true)
}

/// Wraps a callback error with the position of the payload it rejected.
fn replay_error(path: &Path, offset: u64, error: BoxError) -> WalError {
    WalError::Replay {
        path: path.to_path_buf(),
        offset,
        error,
    }
}
