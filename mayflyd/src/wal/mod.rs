//! The write-ahead log: durable, append-only storage of opaque event payloads.
//!
//! The daemon appends every state change (a bincode-encoded event, opaque to
//! this module) before acknowledging it, and rebuilds its state at start-up
//! from the latest snapshot plus the records appended after it.
//!
//! # Use
//!
//! ```no_run
//! use mayflyd::wal::{Wal, WalOptions};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = std::path::Path::new("/var/lib/mayfly/wal");
//! let (mut wal, recovery) = Wal::open(
//!     dir,
//!     WalOptions::default(),
//!     |format, snapshot| -> Result<(), std::io::Error> { /* load state */ Ok(()) },
//!     |format, record| { /* apply event */ Ok(()) },
//! )?;
//! wal.append(b"event 1")?; // memory only
//! wal.append(b"event 2")?;
//! wal.sync()?; // one write + one fdatasync for the whole batch
//! if wal.bytes_since_snapshot() > 256 << 20 {
//!     wal.write_snapshot(2, b"full state")?; // payload format 2
//! }
//! # Ok(()) }
//! ```
//!
//! The sync thread owns the [`Wal`]: it appends whatever arrived, calls
//! [`Wal::sync`] once, then acknowledges the whole batch (group commit).
//!
//! # Files
//!
//! Everything lives in one directory (`STATE_DIR/wal/`):
//!
//! | name                          | content                                         |
//! |-------------------------------|-------------------------------------------------|
//! | `<seq:020>.wal`               | segment `seq`: a header, then records           |
//! | `<seq:020>.snap`              | snapshot covering every segment below `seq`     |
//! | `*.wal.tmp`, `*.snap.tmp`     | interrupted atomic writes; deleted at open      |
//! | `backup-<unix secs>[-n]/`     | copies made by [`repair()`]; never read           |
//!
//! Sequence numbers are zero-padded to 20 digits so names sort in log order.
//!
//! All integers are little-endian; all checksums are CRC-32 (IEEE, as
//! computed by `crc32fast`); [`FORMAT_VERSION`] is currently 1.
//!
//! Segment header, 24 bytes:
//!
//! | offset | size | field                                            |
//! |--------|------|--------------------------------------------------|
//! | 0      | 8    | magic `MAYFLYWL`                                 |
//! | 8      | 1    | format version                                   |
//! | 9      | 3    | reserved, zero                                   |
//! | 12     | 8    | `seq`, equal to the number in the file name      |
//! | 20     | 4    | CRC of bytes 0..20                               |
//!
//! Record, 9 bytes + payload, packed back to back after the segment header:
//!
//! | offset | size  | field                                           |
//! |--------|-------|-------------------------------------------------|
//! | 0      | 4     | `len`: payload length, at most [`MAX_RECORD_BYTES`] |
//! | 4      | 4     | CRC of `len` (4 bytes), version (1 byte), payload |
//! | 8      | 1     | format version                                  |
//! | 9      | `len` | payload                                         |
//!
//! Snapshot file, 32 bytes + payload:
//!
//! | offset | size  | field                                           |
//! |--------|-------|-------------------------------------------------|
//! | 0      | 8     | magic `MAYFLYSN`                                |
//! | 8      | 1     | payload format, one of [`SNAPSHOT_FORMATS`]     |
//! | 9      | 3     | reserved, zero                                  |
//! | 12     | 8     | `seq`, equal to the number in the file name     |
//! | 20     | 8     | payload length; must equal file size − 32       |
//! | 28     | 4     | CRC of bytes 0..28 and the payload              |
//! | 32     | …     | payload                                         |
//!
//! # Invariants
//!
//! 1. Segment and snapshot files appear only by rename of a fully written,
//!    fsynced temp file, followed by a directory fsync. So a segment always
//!    has a complete header, and a snapshot is complete or absent.
//! 2. Only the last segment is ever appended to. A segment is closed (the
//!    next sync starts segment `seq + 1`) only after a successful sync, so
//!    every segment but the last ends exactly at a record boundary.
//! 3. Bytes before a segment's synced length are never rewritten. A failed
//!    sync cuts the file back to that length before anything else is
//!    written to it.
//! 4. Snapshot `s` covers all records in segments `< s`. It is durable
//!    before those segments are deleted, and records after it go to
//!    segments `>= s`.
//! 5. The segments that matter ("live") are those numbered from the newest
//!    snapshot's `seq` (or 1 without a snapshot) up, with no gaps.
//!
//! # Recovery and damage
//!
//! [`Wal::open`] loads the newest snapshot, then replays live segments in
//! order. A record is good when its length is within bounds and in the file,
//! its CRC matches and its version is known.
//!
//! * **Torn tail.** A crash during a sync can leave the last segment ending
//!   in a partial or garbled record. A bad record in the *last* segment
//!   counts as torn when nothing but zero bytes follows the end its length
//!   field claims (in particular when it claims to run to or past end of
//!   file). It is cut at the last good record, on disk, with a
//!   `tracing::warn!` naming the file and the bytes dropped. Limitation: a
//!   length field damaged *later* (bit rot) so that it points past end of
//!   file looks exactly like a torn write, so it is cut the same way; the
//!   records after it in that last segment are lost with a warning, not an
//!   error.
//! * **Damage.** Any other bad record, a bad segment header, a foreign
//!   format version (even with a valid CRC), a missing segment, or an
//!   unreadable newest snapshot make `open` fail with an error naming the
//!   file and offset and pointing to `--repair-wal`. Nothing on disk is
//!   touched; the daemon never starts empty over state it could not read.
//!   Only a missing directory is a fresh start.
//! * **Repair.** [`repair()`] copies every file it will change into a backup
//!   folder, then cuts the log at the first bad thing and deletes everything
//!   after it, so the next `open` succeeds with a prefix of the log.
//!
//! # Failing disks
//!
//! If the write or fdatasync inside [`Wal::sync`] fails (ENOSPC, EIO), the
//! segment is cut back to its last synced length through a fresh file
//! descriptor (after a failed fsync the page cache state is unknown, so the
//! unsynced bytes must be discarded, not trusted), the *pending records are
//! dropped* and the error, naming the file, is returned. The caller
//! re-appends what it still wants logged. The [`Wal`] stays usable, and a
//! later sync writes at the synced length again. If even the cut fails, the
//! next sync retries it before writing anything.

mod error;
mod fault;
mod format;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod log;
mod repair;
mod scan;
#[cfg(test)]
mod tests;

pub use error::{BoxError, WalError};
pub use format::{FORMAT_VERSION, MAX_RECORD_BYTES, RECORD_FORMATS, SNAPSHOT_FORMATS};
pub use log::{
    DEFAULT_SEGMENT_BYTES, Recovery, SnapshotStats, SyncStats, Wal, WalMetrics, WalOptions,
};
pub use repair::{RepairReport, repair};
