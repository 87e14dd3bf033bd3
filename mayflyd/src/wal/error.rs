//! The error type of the WAL.
//!
//! Every variant names the file involved, because the operator reading the
//! log line has to find it on disk; damage variants also carry the byte
//! offset and point at `--repair-wal`, since that is the only way forward
//! that does not involve a hex editor.

use std::error::Error as StdError;
use std::io;
use std::path::{Path, PathBuf};

/// Error returned by replay callbacks, boxed so `open` can accept any error
/// type the caller uses (`anyhow::Error`, `String`, custom enums...).
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Appended to every damage message: the daemon must not start over state it
/// cannot read, so the message has to say how to proceed deliberately.
const REPAIR_HINT: &str = "mayflyd refuses to start over state it cannot read; \
    restart it with --repair-wal to copy the damaged files to a backup folder and \
    cut the log at the last good record (later records are lost)";

/// Everything that can go wrong in the WAL.
///
/// I/O variants include the OS error in their `Display` text (and do not
/// expose it again through `source()`), because log lines are usually
/// rendered with `Display` alone and "while fdatasync" without "No space left
/// on device" would not tell the operator what to fix. Use
/// [`WalError::io_kind`] to branch on the OS error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WalError {
    /// A system call failed.
    #[error("WAL I/O error on {path} while {action}: {error}")]
    Io {
        /// File or directory the call was about.
        path: PathBuf,
        /// What the WAL was doing, phrased to follow "while".
        action: String,
        /// The OS error.
        error: io::Error,
    },
    /// A file's content fails its checks somewhere other than a torn tail.
    #[error("WAL file {path} is damaged at byte offset {offset}: {reason}. {hint}", hint = REPAIR_HINT)]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// Where the first bad byte structure starts.
        offset: u64,
        /// What check failed.
        reason: String,
    },
    /// A well-formed structure written in a format this build cannot read,
    /// most likely by a newer mayflyd after a downgrade.
    #[error(
        "WAL file {path} has format version {found} at byte offset {offset}, but this build \
         only reads version {supported} (was it written by a newer mayflyd?). {hint}",
        hint = REPAIR_HINT
    )]
    UnknownVersion {
        /// The file holding the foreign structure.
        path: PathBuf,
        /// Start of the record or header carrying the version.
        offset: u64,
        /// Version byte found.
        found: u8,
        /// Version this build writes and reads.
        supported: u8,
    },
    /// Segment numbers have a hole: records between the snapshot (or the
    /// start of the log) and the later segments are gone.
    #[error("WAL segment {missing} is missing although {found} exists. {hint}", hint = REPAIR_HINT)]
    MissingSegment {
        /// Path the next segment should have.
        missing: PathBuf,
        /// The segment found in its place.
        found: PathBuf,
    },
    /// Another process (or another `Wal` in this one) has the directory open.
    #[error("WAL directory {dir} is locked by another process (is another mayflyd running?)")]
    Locked {
        /// The WAL directory.
        dir: PathBuf,
    },
    /// `append` was handed a payload above [`super::MAX_RECORD_BYTES`].
    #[error("WAL record of {len} bytes exceeds the {max}-byte limit")]
    RecordTooLarge {
        /// Payload length offered.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// An earlier failure left the on-disk state ambiguous (a snapshot was
    /// renamed into place but the directory fsync failed); writing more
    /// could make recovery apply records twice, so the handle refuses. A
    /// restart recovers a consistent state: with or without that snapshot.
    #[error("WAL in {dir} refuses further writes because {reason}; restart mayflyd to recover")]
    Poisoned {
        /// The WAL directory.
        dir: PathBuf,
        /// What went wrong originally.
        reason: String,
    },
    /// A replay callback rejected a snapshot or record.
    #[error("replaying WAL file {path} at byte offset {offset} failed: {error}")]
    Replay {
        /// File the payload came from.
        path: PathBuf,
        /// Offset of the record (or snapshot header) in that file.
        offset: u64,
        /// The callback's error.
        error: BoxError,
    },
}

impl WalError {
    /// Builds an [`WalError::Io`]; `action` follows the word "while".
    pub(super) fn io(path: &Path, action: impl Into<String>, error: io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            action: action.into(),
            error,
        }
    }

    /// The OS error kind, for I/O failures; lets the daemon tell a full disk
    /// (`StorageFull`) from other trouble without parsing messages.
    pub fn io_kind(&self) -> Option<io::ErrorKind> {
        match self {
            Self::Io { error, .. } => Some(error.kind()),
            _ => None,
        }
    }

    /// True when the on-disk state is unreadable and only [`super::repair()`]
    /// (the daemon's `--repair-wal`) gets the daemon started again.
    pub fn needs_repair(&self) -> bool {
        matches!(
            self,
            Self::Corrupt { .. } | Self::UnknownVersion { .. } | Self::MissingSegment { .. }
        )
    }
}
