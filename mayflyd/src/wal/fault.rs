//! The system calls whose failure the WAL must survive, routed through one
//! place so unit tests can make them fail on demand.
//!
//! Outside `cfg(test)` the struct is empty and every method is a plain call,
//! so the production path carries no flag checks at all. The flags are
//! `Cell`s so that methods taking `&self` can consume them.

#[cfg(test)]
use std::cell::Cell;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// One-shot failures armed by tests; each fires once, then disarms itself.
#[derive(Debug, Default)]
pub(super) struct Faults {
    /// Write only this many bytes of the next batch, then fail with ENOSPC,
    /// like a disk filling up mid-write.
    #[cfg(test)]
    pub short_write: Cell<Option<usize>>,
    /// Fail the next fdatasync of a batch with EIO after the data was written.
    #[cfg(test)]
    pub fsync: Cell<bool>,
    /// Fail the next attempt to cut a segment back to its synced length.
    #[cfg(test)]
    pub restore: Cell<bool>,
    /// Fail the next atomic file creation (segment or snapshot) just before
    /// its rename, with ENOSPC.
    #[cfg(test)]
    pub before_rename: Cell<bool>,
    /// Fail the next directory fsync with EIO.
    #[cfg(test)]
    pub dir_sync: Cell<bool>,
}

impl Faults {
    /// Writes all of `data` at `offset` (positioned, so a failed write never
    /// leaves a file cursor to fix up).
    pub(super) fn write_all_at(&self, file: &File, data: &[u8], offset: u64) -> io::Result<()> {
        #[cfg(test)]
        if let Some(written) = self.short_write.take() {
            file.write_all_at(&data[..written.min(data.len())], offset)?;
            return Err(io::Error::from_raw_os_error(nix::libc::ENOSPC));
        }
        file.write_all_at(data, offset)
    }

    /// `fdatasync(2)` of a segment after a batch.
    pub(super) fn sync_data(&self, file: &File) -> io::Result<()> {
        #[cfg(test)]
        if self.fsync.take() {
            return Err(io::Error::from_raw_os_error(nix::libc::EIO));
        }
        file.sync_data()
    }

    /// Checked before cutting a segment back after a failed sync.
    pub(super) fn before_restore(&self) -> io::Result<()> {
        #[cfg(test)]
        if self.restore.take() {
            return Err(io::Error::from_raw_os_error(nix::libc::EIO));
        }
        Ok(())
    }

    /// Checked after a temp file is written and fsynced, before its rename.
    pub(super) fn before_rename(&self) -> io::Result<()> {
        #[cfg(test)]
        if self.before_rename.take() {
            return Err(io::Error::from_raw_os_error(nix::libc::ENOSPC));
        }
        Ok(())
    }

    /// `fsync(2)` of the WAL directory.
    pub(super) fn sync_dir(&self, dir: &File) -> io::Result<()> {
        #[cfg(test)]
        if self.dir_sync.take() {
            return Err(io::Error::from_raw_os_error(nix::libc::EIO));
        }
        dir.sync_all()
    }
}
