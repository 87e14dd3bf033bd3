//! The explicit repair path behind the daemon's `--repair-wal` flag.
//!
//! Repair is the operator's decision to give up records the log can no
//! longer prove intact. It never destroys anything without a copy: every
//! file it is about to cut or delete is first copied, and the copies
//! fsynced, into a `backup-<unix seconds>` folder inside the WAL directory.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::error::WalError;
use super::format::{self, SEGMENT_HEADER_LEN};
use super::log::lock_dir;
use super::scan::{self, SegmentEnd};

/// What [`repair`] found and changed. Empty (see [`RepairReport::is_clean`])
/// when the log was readable as it was.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepairReport {
    /// One line per problem found: file, offset and what was wrong.
    pub problems: Vec<String>,
    /// Folder holding copies of every file changed or removed.
    pub backup_dir: Option<PathBuf>,
    /// Originals that were copied into `backup_dir` before being changed.
    pub backed_up: Vec<PathBuf>,
    /// Segment cut short, with the offset it was cut at.
    pub truncated: Option<(PathBuf, u64)>,
    /// Files deleted: unreadable snapshots, segments from the first bad one
    /// on (or after a missing one).
    pub removed: Vec<PathBuf>,
    /// Bytes no longer in the log (they remain in the backup).
    pub bytes_dropped: u64,
}

impl RepairReport {
    /// True when nothing needed repairing and nothing was touched.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

impl fmt::Display for RepairReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_clean() {
            return f.write_str("WAL is readable; nothing to repair");
        }
        writeln!(f, "WAL repaired; problems found:")?;
        for problem in &self.problems {
            writeln!(f, "  {problem}")?;
        }
        if let Some((path, offset)) = &self.truncated {
            writeln!(f, "cut {} at byte offset {offset}", path.display())?;
        }
        for path in &self.removed {
            writeln!(f, "removed {}", path.display())?;
        }
        write!(f, "{} bytes dropped", self.bytes_dropped)?;
        if let Some(dir) = &self.backup_dir {
            write!(f, "; originals copied to {}", dir.display())?;
        }
        Ok(())
    }
}

/// Makes the log in `dir` openable again by cutting it at the first thing
/// that cannot be read, after backing up every file it changes.
///
/// What counts as "first": an unreadable newest snapshot (it is removed,
/// together with every segment from its sequence number on, which only make
/// sense on top of it; the next older readable snapshot, if any, becomes the
/// base), then a missing segment number, then the first bad record or
/// segment header in sequence order. The cut keeps every record before that
/// point and drops everything after.
///
/// A missing `dir`, or a log with no problem, is left alone and yields a
/// clean report. I/O errors abort before anything is changed, or at worst
/// between fully-fsynced backup copies and the first change.
pub fn repair(dir: &Path) -> Result<RepairReport, WalError> {
    if !dir.exists() {
        return Ok(RepairReport::default());
    }
    let lock = lock_dir(dir)?;
    let mut report = RepairReport::default();
    let plan = plan(dir, &mut report)?;
    if report.problems.is_empty() {
        return Ok(report);
    }
    back_up(dir, &plan, &mut report)?;
    if let Some((path, offset, len)) = plan.cut {
        OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|f| {
                f.set_len(offset)?;
                f.sync_all()
            })
            .map_err(|e| {
                WalError::io(&path, format!("cutting the segment at offset {offset}"), e)
            })?;
        report.bytes_dropped += len - offset;
        report.truncated = Some((path, offset));
    }
    for path in plan.remove {
        let len = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        fs::remove_file(&path)
            .map_err(|e| WalError::io(&path, "removing a file past the cut", e))?;
        report.bytes_dropped += len;
        report.removed.push(path);
    }
    lock.sync_all()
        .map_err(|e| WalError::io(dir, "fsyncing the WAL directory", e))?;
    tracing::warn!("{report}");
    Ok(report)
}

/// What a repair will change (see [`repair`] for how it decides).
#[derive(Debug, Default)]
struct Plan {
    /// Files to delete.
    remove: Vec<PathBuf>,
    /// Segment to cut: (path, cut offset, current length).
    cut: Option<(PathBuf, u64, u64)>,
}

/// Reads the log in `dir` and decides what to cut and delete, noting each
/// problem in `report`. Changes nothing.
fn plan(dir: &Path, report: &mut RepairReport) -> Result<Plan, WalError> {
    let listing = scan::list_dir(dir)?;
    let mut plan = Plan::default();
    let mut base = 1;
    // Records after a removed snapshot were written on top of its state
    // (and it may hold records that never reached a segment), so no segment
    // from its sequence number on can follow an older base.
    let mut limit = u64::MAX;
    for (seq, path) in listing.snapshots.iter().rev() {
        match scan::load_snapshot(path, *seq)? {
            Ok(_) => {
                base = *seq;
                break;
            }
            Err(damage) => {
                report
                    .problems
                    .push(format!("{}: {}", path.display(), damage.describe()));
                plan.remove.push(path.clone());
                limit = *seq;
            }
        }
    }

    let live: Vec<&(u64, PathBuf)> = listing
        .segments
        .iter()
        .filter(|(seq, _)| *seq >= base)
        .collect();
    let mut drop_from = live.len();
    for (i, (expected, (seq, path))) in (base..).zip(live.iter().copied()).enumerate() {
        if *seq >= limit {
            drop_from = i;
            break;
        }
        if *seq != expected {
            report.problems.push(format!(
                "segment {} is missing",
                dir.join(format::segment_file_name(expected)).display()
            ));
            drop_from = i;
            break;
        }
        let scanned = scan::scan_segment(path, *seq, &mut |_, _| Ok(()))?;
        let damage = match scanned.end {
            SegmentEnd::Clean | SegmentEnd::Preallocated => continue,
            SegmentEnd::BadTail { damage, .. } | SegmentEnd::Damaged(damage) => damage,
        };
        report
            .problems
            .push(format!("{}: {}", path.display(), damage.describe()));
        if scanned.valid_len >= SEGMENT_HEADER_LEN as u64 {
            plan.cut = Some((path.clone(), scanned.valid_len, scanned.file_len));
            drop_from = i + 1;
        } else {
            drop_from = i;
        }
        break;
    }
    plan.remove
        .extend(live[drop_from..].iter().map(|(_, path)| path.clone()));
    Ok(plan)
}

/// Copies every file `plan` changes into a fresh backup folder in `dir`,
/// private and fsynced, before anything is changed.
fn back_up(dir: &Path, plan: &Plan, report: &mut RepairReport) -> Result<(), WalError> {
    let backup = create_backup_dir(dir)?;
    let originals = plan.cut.iter().map(|(path, _, _)| path).chain(&plan.remove);
    for original in originals {
        let name = original.file_name().unwrap_or(original.as_os_str());
        let copy = backup.join(name);
        // `fs::copy` gives the copy the original's mode: make it private
        // whatever that was.
        fs::copy(original, &copy)
            .and_then(|_| {
                fs::set_permissions(&copy, fs::Permissions::from_mode(crate::private::FILE_MODE))
            })
            .map_err(|e| WalError::io(original, "copying to the backup folder", e))?;
        File::open(&copy)
            .and_then(|f| f.sync_all())
            .map_err(|e| WalError::io(&copy, "fsyncing the backup copy", e))?;
        report.backed_up.push(original.clone());
    }
    sync_dir(&backup)?;
    sync_dir(dir)?;
    report.backup_dir = Some(backup);
    Ok(())
}

/// Creates a fresh `backup-<unix seconds>[-n]` folder in `dir`.
fn create_backup_dir(dir: &Path) -> Result<PathBuf, WalError> {
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut attempt = 0u32;
    loop {
        let name = if attempt == 0 {
            format!("backup-{stamp}")
        } else {
            format!("backup-{stamp}-{attempt}")
        };
        let path = dir.join(name);
        match crate::private::dir_builder().recursive(false).create(&path) {
            Ok(()) => return Ok(path),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 1000 => {
                attempt += 1
            }
            Err(e) => return Err(WalError::io(&path, "creating the backup folder", e)),
        }
    }
}

/// fsyncs a directory by path.
fn sync_dir(dir: &Path) -> Result<(), WalError> {
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| WalError::io(dir, "fsyncing a directory", e))
}
