//! The [`Wal`] handle: recovery on open, buffered appends, group-commit
//! syncs, snapshots and segment rolling.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use super::error::{BoxError, WalError};
use super::fault::Faults;
use super::format::{
    self, MAX_RECORD_BYTES, RECORD_FORMATS, SEGMENT_HEADER_LEN, SNAPSHOT_HEADER_LEN, TEMP_SUFFIX,
};
use super::scan::{self, SegmentEnd, SegmentScan};

/// Default segment size: large enough that rolling is rare, small enough
/// that deleting covered segments after a snapshot frees space promptly.
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 * 1024 * 1024;

/// Default zero-filled space reserved ahead of the records (see
/// [`WalOptions::preallocate_bytes`]).
pub const DEFAULT_PREALLOCATE_BYTES: u64 = 1024 * 1024;

/// Buffer capacity kept between syncs; more is released after each sync.
const PENDING_RETAIN_BYTES: usize = 8 * 1024 * 1024;

/// Zeros written per call while reserving space.
static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];

/// Tuning knobs. Only affect how new data is written; any options can read
/// any log.
#[derive(Debug, Clone)]
pub struct WalOptions {
    /// A segment that has reached this size after a sync is closed and the
    /// next sync starts a new one. One sync's batch is never split across
    /// segments (a sync must succeed or fail as a whole), so a segment can
    /// exceed this by up to one batch.
    pub segment_bytes: u64,
    /// When a batch reaches the end of the zero-filled space of its segment,
    /// this many more bytes of zeros are written (and synced with it), capped
    /// at `segment_bytes`. 0 turns it off.
    ///
    /// Why: an fdatasync that makes a file longer must also commit the new
    /// size and block allocation through the file system's journal, which
    /// on ext4 costs markedly more than an fdatasync that only overwrites
    /// blocks already written (measured in `bench/RESULTS.md`). With reserved zeros, nearly every sync is the cheap
    /// kind, and the size changes once per `preallocate_bytes`. Readers
    /// treat a zero-filled tail as free space, never as damage. If the
    /// zeros cannot be written (a full disk), the segment goes on without
    /// them.
    pub preallocate_bytes: u64,
}

impl Default for WalOptions {
    fn default() -> Self {
        Self {
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            preallocate_bytes: DEFAULT_PREALLOCATE_BYTES,
        }
    }
}

/// What [`Wal::open`] found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Payload size of the snapshot handed to `on_snapshot`, if there was
    /// one. (The payload itself went to the callback; it is not kept here so
    /// a large snapshot is not held twice.)
    pub snapshot_bytes: Option<u64>,
    /// Segment files replayed.
    pub segments: u64,
    /// Records handed to `on_record`.
    pub records: u64,
    /// Payload bytes of those records.
    pub bytes: u64,
    /// Size of the torn write cut from the end of the last segment: from
    /// the last good record to where the torn record claims to end (or to
    /// end of file, if sooner). Zeros after it, reserved or left by the
    /// file system, are cut too but not counted. 0 if it ended cleanly.
    pub torn_bytes_cut: u64,
    /// Wall time of the whole open, replay included.
    pub elapsed: Duration,
}

/// What one successful [`Wal::sync`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncStats {
    /// Records made durable.
    pub records: u64,
    /// Bytes written, record headers included.
    pub bytes: u64,
    /// Time spent in fdatasync alone; the best single indicator of disk
    /// health, hence reported separately from the write.
    pub fsync: Duration,
    /// Sequence number of the segment written to.
    pub segment: u64,
}

/// What one successful [`Wal::write_snapshot`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnapshotStats {
    /// Sequence number of the snapshot (it covers all segments below it).
    pub seq: u64,
    /// Snapshot file size.
    pub bytes: u64,
    /// Covered segment and old snapshot files deleted.
    pub files_removed: u64,
    /// Wall time, fsyncs included.
    pub elapsed: Duration,
}

/// Running counters since open, for the daemon's metrics endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WalMetrics {
    /// Records appended (synced or not).
    pub appends: u64,
    /// Payload bytes appended.
    pub appended_bytes: u64,
    /// Successful syncs that wrote something.
    pub syncs: u64,
    /// Failed syncs.
    pub failed_syncs: u64,
    /// Bytes made durable by syncs, record headers included.
    pub synced_bytes: u64,
    /// fdatasync duration of the latest successful sync.
    pub last_fsync: Duration,
    /// Snapshots written.
    pub snapshots: u64,
}

/// The segment currently being appended to.
#[derive(Debug)]
struct ActiveSegment {
    /// Its path, for error messages and for reopening.
    path: PathBuf,
    /// Open for writing; writes are positioned, the cursor is never used.
    file: File,
    /// Length known to be on disk: everything before it was fdatasynced.
    synced_len: u64,
    /// File length: the bytes from `synced_len` up to here are zeros
    /// reserved ahead (and synced), so writing over them changes no
    /// file-system metadata.
    allocated_len: u64,
    /// False once reserving zeros has failed (a full disk); the segment is
    /// then only ever extended by its records.
    may_preallocate: bool,
    /// A write or fsync failed and the bytes after `synced_len` are in an
    /// unknown state; nothing may be appended until they are cut off.
    dirty: bool,
}

impl ActiveSegment {
    /// Cuts the file back to `synced_len` through a fresh descriptor. A fresh
    /// one because after a failed fsync the old descriptor's error state and
    /// the page cache are unknown; the truncate discards whatever the failed
    /// batch left, durably, before anything new is written after it.
    fn restore(&mut self, faults: &Faults) -> io::Result<()> {
        faults.before_restore()?;
        let file = OpenOptions::new().write(true).open(&self.path)?;
        file.set_len(self.synced_len)?;
        file.sync_all()?;
        self.file = file;
        self.allocated_len = self.synced_len;
        self.dirty = false;
        Ok(())
    }
}

/// An open write-ahead log. See the [module docs](super) for the format and
/// the failure model.
///
/// All methods take `&mut self`: the daemon owns the `Wal` on its dedicated
/// sync thread, which appends everything queued, then syncs, then
/// acknowledges (group commit). Dropping the handle discards unsynced
/// records and releases the directory lock.
#[derive(Debug)]
pub struct Wal {
    /// The WAL directory.
    dir: PathBuf,
    /// Exclusive `flock` on the directory, held for the handle's lifetime so
    /// two daemons can never interleave writes; its descriptor doubles as
    /// the handle for directory fsyncs.
    dir_lock: Flock<File>,
    /// Options given at open.
    opts: WalOptions,
    /// Segment the next sync writes to.
    seq: u64,
    /// Segment `seq`, once its file exists. `None` after a roll or snapshot
    /// until the next non-empty sync creates it, so no empty segments pile up.
    active: Option<ActiveSegment>,
    /// Framed records appended since the last sync.
    pending: Vec<u8>,
    /// Number of records in `pending`.
    pending_records: u64,
    /// Durable record bytes since the last snapshot (replayed ones included).
    bytes_since_snapshot: u64,
    /// Counters for the metrics hook.
    metrics: WalMetrics,
    /// Set when an I/O failure left the on-disk state ambiguous in a way
    /// that further writes could turn into double-applied records; every
    /// later sync and snapshot fails with [`WalError::Poisoned`].
    poisoned: Option<String>,
    /// Failure injection for tests; empty in production builds.
    faults: Faults,
}

impl Wal {
    /// Opens the log in `dir` (creating the directory if it does not exist,
    /// which is the only case that starts empty), replays it and readies it
    /// for appending.
    ///
    /// The newest snapshot's format and payload go to `on_snapshot`, then
    /// every later record's format (one of [`RECORD_FORMATS`]) and payload
    /// to `on_record`, in append order, streamed (memory
    /// use does not grow with the log). A torn tail of the last segment is
    /// cut on disk, with a warning, before this returns.
    ///
    /// On error no file has been changed, created or deleted, but the
    /// callbacks may already have seen part of the log: discard whatever
    /// they built. Damage errors ([`WalError::needs_repair`]) name the file
    /// and offset and point to `--repair-wal` ([`super::repair()`]).
    pub fn open<E, S, R>(
        dir: &Path,
        opts: WalOptions,
        mut on_snapshot: S,
        mut on_record: R,
    ) -> Result<(Wal, Recovery), WalError>
    where
        S: FnMut(u8, &[u8]) -> Result<(), E>,
        R: FnMut(u8, &[u8]) -> Result<(), E>,
        E: Into<BoxError>,
    {
        let started = Instant::now();
        ensure_dir(dir)?;
        let dir_lock = lock_dir(dir)?;
        let listing = scan::list_dir(dir)?;
        let mut recovery = Recovery::default();

        let base = match listing.newest_snapshot() {
            Some((seq, path)) => {
                let data = scan::read_snapshot(path, *seq)?;
                // Checked by `read_snapshot`: one of `SNAPSHOT_FORMATS`.
                let format = data[8];
                let payload = &data[SNAPSHOT_HEADER_LEN..];
                on_snapshot(format, payload).map_err(|e| WalError::Replay {
                    path: path.clone(),
                    offset: SNAPSHOT_HEADER_LEN as u64,
                    error: e.into(),
                })?;
                recovery.snapshot_bytes = Some(payload.len() as u64);
                *seq
            }
            None => 1,
        };

        let live: Vec<&(u64, PathBuf)> = listing
            .segments
            .iter()
            .filter(|(seq, _)| *seq >= base)
            .collect();
        check_contiguous(dir, base, &live)?;

        let mut sink = |format: u8, payload: &[u8]| on_record(format, payload).map_err(Into::into);
        let mut last: Option<SegmentScan> = None;
        let mut record_bytes = 0;
        for (i, (seq, path)) in live.iter().enumerate() {
            let scanned = scan::scan_segment(path, *seq, &mut sink)?;
            let is_last = i + 1 == live.len();
            refuse_damage(&scanned.end, is_last, path)?;
            recovery.segments += 1;
            recovery.records += scanned.records;
            recovery.bytes += scanned.payload_bytes;
            record_bytes += scanned.record_bytes();
            if is_last {
                last = Some(scanned);
            }
        }

        // Everything is readable: from here on, files may change.
        let mut wal = Wal {
            dir: dir.to_path_buf(),
            dir_lock,
            opts,
            seq: base,
            active: None,
            pending: Vec::new(),
            pending_records: 0,
            bytes_since_snapshot: record_bytes,
            metrics: WalMetrics::default(),
            poisoned: None,
            faults: Faults::default(),
        };
        if let (Some((seq, path)), Some(scanned)) = (live.last(), last) {
            recovery.torn_bytes_cut = wal.resume_segment(*seq, path, &scanned)?;
        }
        wal.remove_files(&listing, base);
        recovery.elapsed = started.elapsed();
        tracing::debug!(
            dir = %dir.display(),
            records = recovery.records,
            segments = recovery.segments,
            elapsed_ms = recovery.elapsed.as_millis() as u64,
            "WAL replayed"
        );
        Ok((wal, recovery))
    }

    /// Makes the last replayed segment the active one, cutting its torn tail
    /// first. Returns the number of bytes cut.
    fn resume_segment(
        &mut self,
        seq: u64,
        path: &Path,
        scanned: &SegmentScan,
    ) -> Result<u64, WalError> {
        self.seq = seq;
        // What is cut: everything after the last good record, reserved
        // zeros included. What is reported: the torn write itself.
        let (cut, torn) = match scanned.end {
            SegmentEnd::Clean | SegmentEnd::Preallocated => (0, 0),
            SegmentEnd::BadTail { end, .. } => (
                scanned.file_len - scanned.valid_len,
                end.saturating_sub(scanned.valid_len),
            ),
            SegmentEnd::Damaged(_) => (scanned.file_len - scanned.valid_len, 0),
        };
        if cut > 0 {
            tracing::warn!(
                file = %path.display(),
                offset = scanned.valid_len,
                dropped_bytes = torn,
                "WAL segment {} ends in a torn write of {torn} bytes: cutting the file at offset {}",
                path.display(),
                scanned.valid_len
            );
        }
        if scanned.valid_len < SEGMENT_HEADER_LEN as u64 {
            // Not even the header made it; the next sync recreates the file.
            fs::remove_file(path)
                .map_err(|e| WalError::io(path, "removing a segment with a torn header", e))?;
            self.sync_dir()?;
            return Ok(torn);
        }
        let file = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| WalError::io(path, "opening the last segment for appending", e))?;
        if cut > 0 {
            file.set_len(scanned.valid_len)
                .and_then(|()| file.sync_all())
                .map_err(|e| {
                    WalError::io(
                        path,
                        format!("cutting the torn tail at offset {}", scanned.valid_len),
                        e,
                    )
                })?;
        }
        self.active = Some(ActiveSegment {
            path: path.to_path_buf(),
            file,
            synced_len: scanned.valid_len,
            // Reserved zeros stay reserved; a cut tail is gone.
            allocated_len: if cut > 0 {
                scanned.valid_len
            } else {
                scanned.file_len
            },
            may_preallocate: true,
            dirty: false,
        });
        self.roll_if_full();
        Ok(torn)
    }

    /// Buffers one record in memory; nothing reaches the disk (and no system
    /// call is made) until [`Wal::sync`]. Fails only for payloads above
    /// [`MAX_RECORD_BYTES`], which a reader would refuse.
    pub fn append(&mut self, payload: &[u8]) -> Result<(), WalError> {
        if payload.len() > MAX_RECORD_BYTES {
            return Err(WalError::RecordTooLarge {
                len: payload.len(),
                max: MAX_RECORD_BYTES,
            });
        }
        // The newest record format is the one this build writes.
        format::encode_record(&mut self.pending, *RECORD_FORMATS.end(), payload);
        self.pending_records += 1;
        self.metrics.appends += 1;
        self.metrics.appended_bytes += payload.len() as u64;
        Ok(())
    }

    /// Bytes buffered by [`Wal::append`] and not yet synced, framing included;
    /// lets the caller bound a batch.
    pub fn pending_bytes(&self) -> usize {
        self.pending.len()
    }

    /// Records buffered and not yet synced.
    pub fn pending_records(&self) -> u64 {
        self.pending_records
    }

    /// Writes the buffered records to the active segment and fdatasyncs it:
    /// on `Ok`, every record appended so far is durable.
    ///
    /// On `Err` the buffered records are **dropped**, none of them durable:
    /// the segment is cut back to its last synced length (best effort; if
    /// even that fails, the next `sync` retries it before writing anything).
    /// Records synced earlier are never touched. The `Wal` stays usable; the
    /// caller re-appends whatever it still wants logged (after reverting
    /// what it told clients) and syncs again once the disk recovers.
    pub fn sync(&mut self) -> Result<SyncStats, WalError> {
        let result = self.write_pending();
        self.pending.clear();
        // One huge batch should not pin its buffer for the process lifetime.
        self.pending.shrink_to(PENDING_RETAIN_BYTES);
        self.pending_records = 0;
        match &result {
            Ok(stats) if stats.records > 0 => {
                self.metrics.syncs += 1;
                self.metrics.synced_bytes += stats.bytes;
                self.metrics.last_fsync = stats.fsync;
                self.bytes_since_snapshot += stats.bytes;
            }
            Ok(_) => {}
            Err(_) => self.metrics.failed_syncs += 1,
        }
        result
    }

    /// The body of [`Wal::sync`], minus the buffer and metric bookkeeping.
    fn write_pending(&mut self) -> Result<SyncStats, WalError> {
        self.check_usable()?;
        if let Some(active) = self.active.as_mut().filter(|a| a.dirty) {
            active.restore(&self.faults).map_err(|e| {
                WalError::io(&active.path, "cutting off the remains of a failed sync", e)
            })?;
        }
        if self.pending.is_empty() {
            return Ok(SyncStats {
                segment: self.seq,
                ..SyncStats::default()
            });
        }
        let mut active = match self.active.take() {
            Some(active) => active,
            None => self.create_segment(self.seq)?,
        };
        let reserve = self.opts.preallocate_bytes.min(self.opts.segment_bytes);
        let result = write_batch(&mut active, &self.pending, reserve, &self.faults);
        self.active = Some(active);
        let fsync = result?;
        let segment = self.seq;
        self.roll_if_full();
        Ok(SyncStats {
            records: self.pending_records,
            bytes: self.pending.len() as u64,
            fsync,
            segment,
        })
    }

    /// Closes the active segment once it has reached the size limit; the
    /// next sync then starts a new file.
    fn roll_if_full(&mut self) {
        if self
            .active
            .as_ref()
            .is_some_and(|a| !a.dirty && a.synced_len >= self.opts.segment_bytes)
        {
            self.active = None;
            self.seq += 1;
        }
    }

    /// Creates segment `seq` atomically: header into a temp file, fsync,
    /// rename, fsync the directory. A crash at any point leaves either no
    /// segment or one with a complete header, never a half-written header.
    fn create_segment(&self, seq: u64) -> Result<ActiveSegment, WalError> {
        let path = self.dir.join(format::segment_file_name(seq));
        let tmp = temp_path(&path);
        let file = write_atomically(
            &tmp,
            &path,
            &[&format::encode_segment_header(seq)],
            &self.faults,
        )?;
        self.sync_dir()?;
        Ok(ActiveSegment {
            path,
            file,
            synced_len: SEGMENT_HEADER_LEN as u64,
            allocated_len: SEGMENT_HEADER_LEN as u64,
            may_preallocate: true,
            dirty: false,
        })
    }

    /// Writes a snapshot covering every record appended so far, synced or
    /// not, then starts a new segment and deletes the covered ones.
    ///
    /// `format` names the payload's encoding (one of
    /// [`super::SNAPSHOT_FORMATS`],
    /// handed back with the payload at open).
    ///
    /// `payload` must reflect the state after *all* appended records: pending
    /// records are not written to a segment but discarded, because the
    /// snapshot already contains their effect. So on `Ok` everything
    /// appended is durable, just as after a successful [`Wal::sync`].
    ///
    /// On `Err` nothing changed: the previous snapshot and segments are
    /// intact and the pending records are still buffered. One exception: if
    /// the directory fsync after the snapshot's rename fails, it is unknown
    /// which snapshot a crash would leave, so the handle is poisoned (see
    /// [`WalError::Poisoned`]) and the daemon must restart; recovery then
    /// finds a consistent state either way. Failing to delete covered files
    /// afterwards is only logged; the next open removes them.
    pub fn write_snapshot(
        &mut self,
        format: u8,
        payload: &[u8],
    ) -> Result<SnapshotStats, WalError> {
        let started = Instant::now();
        // The active segment, if its file exists, is covered too.
        let snap_seq = if self.active.is_some() {
            self.seq + 1
        } else {
            self.seq
        };
        let path = self.dir.join(format::snapshot_file_name(snap_seq));
        let header = format::encode_snapshot_header(snap_seq, format, payload);
        self.check_usable()?;
        write_atomically(&temp_path(&path), &path, &[&header, payload], &self.faults)?;
        if let Err(e) = self.sync_dir() {
            // The new snapshot is in place but perhaps not durable. Both the
            // old and the new on-disk state are consistent on their own, as
            // long as nothing more is written: re-appended records could be
            // applied twice if the new snapshot (which has their effect)
            // survives. So stop writing; a restart recovers either state.
            self.poisoned = Some(format!(
                "the directory fsync after installing snapshot {} failed ({e})",
                path.display()
            ));
            return Err(e);
        }

        // Durable: the snapshot now stands in for everything before it.
        self.active = None;
        self.seq = snap_seq;
        self.pending.clear();
        self.pending_records = 0;
        self.bytes_since_snapshot = 0;
        self.metrics.snapshots += 1;
        let files_removed = match scan::list_dir(&self.dir) {
            Ok(listing) => self.remove_files(&listing, snap_seq),
            Err(e) => {
                tracing::warn!("could not list the WAL directory to delete covered segments: {e}");
                0
            }
        };
        Ok(SnapshotStats {
            seq: snap_seq,
            bytes: (header.len() + payload.len()) as u64,
            files_removed,
            elapsed: started.elapsed(),
        })
    }

    /// Record bytes made durable in segments since the last snapshot
    /// (framing included; after open, what replay had to read). The caller
    /// compares it with its threshold to decide when to snapshot.
    pub fn bytes_since_snapshot(&self) -> u64 {
        self.bytes_since_snapshot
    }

    /// Counters since open.
    pub fn metrics(&self) -> WalMetrics {
        self.metrics.clone()
    }

    /// The WAL directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Deletes files `listing` shows to be superseded: segments and
    /// snapshots below `base` (the snapshot in use) and temp files left by
    /// interrupted writes. Failures are logged, not returned, because the
    /// files are garbage either way and the next open retries. Returns how
    /// many were removed.
    fn remove_files(&self, listing: &scan::Listing, base: u64) -> u64 {
        let stale = listing
            .segments
            .iter()
            .chain(&listing.snapshots)
            .filter(|(seq, _)| *seq < base)
            .map(|(_, path)| path)
            .chain(&listing.temps);
        let mut removed = 0;
        for path in stale {
            match fs::remove_file(path) {
                Ok(()) => removed += 1,
                Err(e) => tracing::warn!(
                    "could not delete superseded WAL file {}: {e}",
                    path.display()
                ),
            }
        }
        if removed > 0 {
            self.sync_dir().unwrap_or_else(|e| tracing::warn!("{e}"));
        }
        removed
    }

    /// Fails once the handle is poisoned.
    fn check_usable(&self) -> Result<(), WalError> {
        match &self.poisoned {
            None => Ok(()),
            Some(reason) => Err(WalError::Poisoned {
                dir: self.dir.clone(),
                reason: reason.clone(),
            }),
        }
    }

    /// fsyncs the directory so created, renamed and deleted entries persist.
    fn sync_dir(&self) -> Result<(), WalError> {
        self.faults
            .sync_dir(&self.dir_lock)
            .map_err(|e| WalError::io(&self.dir, "fsyncing the WAL directory", e))
    }

    /// Arms one-shot I/O failures for the next sync.
    #[cfg(test)]
    pub(super) fn faults(&self) -> &Faults {
        &self.faults
    }
}

/// Appends `batch` at the synced end of `active` and fdatasyncs it,
/// returning the fsync time. If the batch runs past the zeros reserved
/// ahead, `reserve` more bytes of zeros are written after it first, so they
/// are synced with it. On failure marks the segment dirty and tries to cut
/// it back at once, so a crash right after leaves no half batch.
fn write_batch(
    active: &mut ActiveSegment,
    batch: &[u8],
    reserve: u64,
    faults: &Faults,
) -> Result<Duration, WalError> {
    let end = active.synced_len + batch.len() as u64;
    let step = match faults.write_all_at(&active.file, batch, active.synced_len) {
        Ok(()) => {
            if end > active.allocated_len {
                active.allocated_len = end;
                if reserve > 0 && active.may_preallocate {
                    preallocate(active, reserve);
                }
            }
            let started = Instant::now();
            match faults.sync_data(&active.file) {
                Ok(()) => {
                    active.synced_len = end;
                    return Ok(started.elapsed());
                }
                Err(e) => ("flushing", e),
            }
        }
        Err(e) => ("writing", e),
    };
    let (verb, error) = step;
    active.dirty = true;
    let restored = match active.restore(faults) {
        Ok(()) => format!("cut back to the {} synced bytes", active.synced_len),
        Err(e) => format!(
            "cutting back to the {} synced bytes also failed ({e}); retried on the next sync",
            active.synced_len
        ),
    };
    Err(WalError::io(
        &active.path,
        format!(
            "{verb} {} appended bytes at offset {} (the unsynced records were dropped; segment {restored})",
            batch.len(),
            active.synced_len
        ),
        error,
    ))
}

/// Writes `bytes` zeros at the end of `active` (its `allocated_len`, just
/// past the records) and moves `allocated_len` past them. Best effort: if
/// that fails (a full disk), the zeros written are cut off again and the
/// segment stops reserving space, so a nearly full disk does not pay for a
/// failed reservation on every sync.
fn preallocate(active: &mut ActiveSegment, bytes: u64) {
    let start = active.allocated_len;
    let mut at = start;
    while at < start + bytes {
        let n = (start + bytes - at).min(ZEROS.len() as u64) as usize;
        if let Err(e) = active.file.write_all_at(&ZEROS[..n], at) {
            tracing::debug!(
                file = %active.path.display(),
                error = %e,
                "could not reserve space ahead in the WAL segment; appending without"
            );
            active.may_preallocate = false;
            // The records end at `start`; if cutting fails, the zeros stay,
            // which readers take as reserved space.
            if active.file.set_len(start).is_err() {
                active.allocated_len = at;
            }
            return;
        }
        at += n as u64;
    }
    active.allocated_len = at;
}

/// Creates `tmp`, writes `parts`, fsyncs, and renames it to `path`, so
/// `path` either keeps its old content or has the complete new one. Returns
/// the still-open file (now under `path`). Removes `tmp` on failure.
fn write_atomically(
    tmp: &Path,
    path: &Path,
    parts: &[&[u8]],
    faults: &Faults,
) -> Result<File, WalError> {
    let result = (|| {
        let mut file = crate::private::file_options()
            .write(true)
            .create(true)
            .truncate(true)
            .open(tmp)
            .map_err(crate::private::explain_link)
            .map_err(|e| WalError::io(tmp, "creating a temp file", e))?;
        for part in parts {
            file.write_all(part)
                .map_err(|e| WalError::io(tmp, "writing a temp file", e))?;
        }
        file.sync_all()
            .and_then(|()| faults.before_rename())
            .map_err(|e| WalError::io(tmp, "fsyncing a temp file", e))?;
        fs::rename(tmp, path)
            .map_err(|e| WalError::io(path, "renaming a temp file into place", e))?;
        Ok(file)
    })();
    if result.is_err() {
        let _ = fs::remove_file(tmp);
    }
    result
}

/// `<path>.tmp`.
fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(TEMP_SUFFIX);
    PathBuf::from(name)
}

/// Creates the WAL directory if it is missing (a fresh start) and makes its
/// entry durable; refuses a path that exists but is not a directory.
fn ensure_dir(dir: &Path) -> Result<(), WalError> {
    match fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(WalError::io(
            dir,
            "opening the WAL directory",
            io::Error::new(
                io::ErrorKind::NotADirectory,
                "exists but is not a directory",
            ),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            crate::private::dir_builder()
                .create(dir)
                .map_err(|e| WalError::io(dir, "creating the WAL directory", e))?;
            let parent = dir
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            File::open(parent).and_then(|f| f.sync_all()).map_err(|e| {
                WalError::io(parent, "fsyncing the parent of the new WAL directory", e)
            })
        }
        Err(e) => Err(WalError::io(dir, "opening the WAL directory", e)),
    }
}

/// Takes the exclusive, non-blocking `flock` on `dir`.
pub(super) fn lock_dir(dir: &Path) -> Result<Flock<File>, WalError> {
    let file = File::open(dir).map_err(|e| WalError::io(dir, "opening the WAL directory", e))?;
    Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|(_, errno)| {
        if errno == Errno::EWOULDBLOCK {
            WalError::Locked {
                dir: dir.to_path_buf(),
            }
        } else {
            WalError::io(dir, "locking the WAL directory", io::Error::from(errno))
        }
    })
}

/// Checks that the live segments are numbered `base, base + 1, ...` with no
/// hole: a hole means records are gone, which must not pass silently.
pub(super) fn check_contiguous(
    dir: &Path,
    base: u64,
    live: &[&(u64, PathBuf)],
) -> Result<(), WalError> {
    for (expected, (seq, path)) in (base..).zip(live.iter().copied()) {
        if *seq != expected {
            return Err(WalError::MissingSegment {
                missing: dir.join(format::segment_file_name(expected)),
                found: path.clone(),
            });
        }
    }
    Ok(())
}

/// Recovery's verdict on how a segment's good records end: a torn tail is
/// forgiven only in the last segment (`is_last`), where an interrupted
/// append leaves one; anything else is damage recovery refuses to guess
/// about (the `--repair-wal` path decides).
fn refuse_damage(end: &SegmentEnd, is_last: bool, path: &Path) -> Result<(), WalError> {
    match end {
        SegmentEnd::Clean | SegmentEnd::Preallocated => Ok(()),
        SegmentEnd::BadTail { torn: true, .. } if is_last => Ok(()),
        SegmentEnd::BadTail { damage, .. } => {
            let why = if is_last {
                "non-zero data follows it, so this is not a torn final write"
            } else {
                "later segments exist, so this is not a torn final write"
            };
            let mut damage = damage.clone();
            if let format::DamageKind::Corrupt(reason) = &mut damage.kind {
                reason.push_str("; ");
                reason.push_str(why);
            }
            Err(damage.into_error(path))
        }
        SegmentEnd::Damaged(damage) => Err(damage.clone().into_error(path)),
    }
}
