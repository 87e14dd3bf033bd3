//! The state dir is private to the daemon's user.
//!
//! What the state dir holds is worth protecting: the write-ahead log and the
//! snapshots carry every job's captured environment (tokens, passwords), and
//! the job logs carry whatever jobs print. And whoever can write there can
//! change what the daemon runs. So:
//!
//! - every folder the daemon creates under the state dir (and the state dir
//!   itself) is created `0700` ([`dir_builder`]), every file `0600`
//!   ([`file_options`]), with those modes asked of `open`/`mkdir` directly,
//!   so they hold whatever the umask (a umask can only take bits away);
//! - at start, [`prepare_state_dir`] refuses a state dir that belongs to
//!   another user or that its group or others may write to (the files in it
//!   could have been changed: the user must look), and tightens whatever
//!   under it is readable by others (left by an older version, a copy, a
//!   loose umask), with one warning that names what changed: the top level
//!   at once, the rest ([`Tightening::finish`]) on a thread of its own
//!   while the daemon starts, since the folders already keep others out;
//! - files are opened with `O_NOFOLLOW`: a symbolic link planted where a
//!   file of the daemon's should be is refused, never written through.
//!
//! Symbolic links found under the state dir at start are neither followed
//! nor changed; the state dir itself may be a link (a user's choice of
//! disk), so it is followed.

use std::fmt::Write as _;
use std::fs::{DirBuilder, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The mode of every folder under the state dir.
pub const DIR_MODE: u32 = 0o700;

/// The mode of every file under the state dir.
pub const FILE_MODE: u32 = 0o600;

/// The bits that give the group or others any access.
const SHARED_BITS: u32 = 0o077;

/// How many changed paths the start-up warning names; it counts the rest.
const NAMED_IN_WARNING: usize = 5;

/// A builder for folders under the state dir: `0700`, with any missing
/// parents (also `0700`).
pub fn dir_builder() -> DirBuilder {
    let mut builder = DirBuilder::new();
    builder.recursive(true).mode(DIR_MODE);
    builder
}

/// Options for files under the state dir: created `0600`, and never opened
/// through a symbolic link. Add the access mode (`write`, `append`, …).
pub fn file_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options
        .mode(FILE_MODE)
        .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits());
    options
}

/// Options for reading a file under the state dir, never through a
/// symbolic link: a link planted in place of a job's output must not show
/// a client (`logs`, an A2A artifact) what the link points to.
pub fn read_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits());
    options
}

/// Turns the `ELOOP` of an `O_NOFOLLOW` open into words.
pub fn explain_link(e: io::Error) -> io::Error {
    if e.raw_os_error() == Some(nix::errno::Errno::ELOOP as i32) {
        io::Error::new(
            e.kind(),
            "it is a symbolic link, and mayflyd never opens files in its state dir through links; \
             remove the link",
        )
    } else {
        e
    }
}

/// Why the state dir cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StateDirError {
    /// It belongs to someone else.
    #[error(
        "state dir {} belongs to uid {owner}, not to the daemon's user (uid {me}); give \
         mayflyd a state dir of its own (--state-dir), or chown it if it really is yours",
        path.display()
    )]
    NotOurs {
        /// The state dir.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// The daemon's uid.
        me: u32,
    },
    /// Its group or others may write to it.
    #[error(
        "state dir {} is writable by others than its owner (mode {mode:04o}), so its jobs \
         and their environments could have been changed; check its contents, then run \
         'chmod 700 {}'",
        path.display(),
        path.display()
    )]
    Writable {
        /// The state dir.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// It is not a folder.
    #[error("state dir {} is not a directory; pass --state-dir with a folder", path.display())]
    NotADirectory {
        /// The path given.
        path: PathBuf,
    },
    /// A file system call failed.
    #[error("cannot {what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// Where.
        path: PathBuf,
        /// The system's error.
        source: io::Error,
    },
}

/// What [`prepare_state_dir`] tightened: each path with its old and new
/// permission bits.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tightened(pub Vec<(PathBuf, u32, u32)>);

impl Tightened {
    /// The one warning for these changes, naming the first few paths
    /// (relative to `root`); `None` if nothing changed.
    pub fn warning(&self, root: &Path) -> Option<String> {
        if self.0.is_empty() {
            return None;
        }
        let mut text = format!(
            "made {} path(s) under the state dir {} private (they were open to others, and a \
             job's environment can hold secrets):",
            self.0.len(),
            root.display()
        );
        for (path, old, new) in self.0.iter().take(NAMED_IN_WARNING) {
            let shown = path.strip_prefix(root).unwrap_or(path);
            let shown = if shown.as_os_str().is_empty() {
                Path::new(".")
            } else {
                shown
            };
            let _ = write!(text, " {} {old:04o}->{new:04o},", shown.display());
        }
        text.pop();
        if self.0.len() > NAMED_IN_WARNING {
            let _ = write!(text, " and {} more", self.0.len() - NAMED_IN_WARNING);
        }
        Some(text)
    }
}

/// Makes the state dir `dir` ready and private, as the module documentation
/// says, for the daemon's user `me`: creates it (and `subdirs` in it) when
/// missing, refuses it when it is not ours or others may write to it, and
/// makes its top level private (itself and what is directly in it). The
/// rest is gone through by [`Tightening::finish`].
pub fn prepare_state_dir(
    dir: &Path,
    me: u32,
    subdirs: &[&str],
) -> Result<Tightening, StateDirError> {
    let io_err = |what, path: &Path| {
        let path = path.to_path_buf();
        move |source| StateDirError::Io { what, path, source }
    };
    let meta = match std::fs::metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            dir_builder()
                .create(dir)
                .map_err(io_err("create the state dir", dir))?;
            std::fs::metadata(dir)
        }
        other => other,
    }
    .map_err(io_err("inspect the state dir", dir))?;
    if !meta.is_dir() {
        return Err(StateDirError::NotADirectory {
            path: dir.to_path_buf(),
        });
    }
    if meta.uid() != me {
        return Err(StateDirError::NotOurs {
            path: dir.to_path_buf(),
            owner: meta.uid(),
            me,
        });
    }
    if meta.mode() & 0o022 != 0 {
        return Err(StateDirError::Writable {
            path: dir.to_path_buf(),
            mode: meta.mode() & 0o7777,
        });
    }
    for sub in subdirs {
        let path = dir.join(sub);
        dir_builder()
            .create(&path)
            .map_err(io_err("create the folder", &path))?;
    }
    let mut done = Tightened::default();
    let chmod_err = |path: &Path| io_err("make private (chmod go-rwx)", path);
    tighten(dir, meta.mode(), &mut done).map_err(chmod_err(dir))?;
    let mut folders = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_err("list", dir))? {
        let entry = entry.map_err(io_err("list", dir))?;
        let path = entry.path();
        // `DirEntry::metadata` does not follow links.
        let meta = entry.metadata().map_err(io_err("inspect", &path))?;
        if meta.is_dir() || meta.is_file() {
            tighten(&path, meta.mode(), &mut done).map_err(chmod_err(&path))?;
        }
        if meta.is_dir() {
            folders.push(path);
        }
    }
    Ok(Tightening { folders, done })
}

/// A state dir whose top level is private, with the rest still to go
/// through. Its folders being `0700` already, nothing below them can be
/// reached by others meanwhile; so the daemon goes on starting while a
/// thread of its own calls [`Tightening::finish`] (`logs/` holds two files
/// per job, which can be millions: a couple of microseconds each).
#[derive(Debug)]
pub struct Tightening {
    /// The state dir's folders, to go through.
    folders: Vec<PathBuf>,
    /// What was changed so far.
    done: Tightened,
}

impl Tightening {
    /// Goes through everything under the state dir's folders, without
    /// following links, making private what is not, and returns every
    /// change, the top level's included. The daemon runs meanwhile, so a
    /// file that disappears is skipped, and a failure is logged and
    /// skipped: it is too late to refuse to start.
    pub fn finish(self) -> Tightened {
        let Tightening {
            mut folders,
            mut done,
        } = self;
        while let Some(folder) = folders.pop() {
            let entries = match std::fs::read_dir(&folder) {
                Ok(entries) => entries,
                Err(e) => {
                    skipped(&folder, &e);
                    continue;
                }
            };
            for entry in entries.flatten() {
                let path = entry.path();
                let meta = match entry.metadata() {
                    Ok(meta) => meta,
                    Err(e) => {
                        skipped(&path, &e);
                        continue;
                    }
                };
                if (meta.is_dir() || meta.is_file())
                    && let Err(e) = tighten(&path, meta.mode(), &mut done)
                {
                    skipped(&path, &e);
                }
                if meta.is_dir() {
                    folders.push(path);
                }
            }
        }
        done
    }
}

/// Logs a path [`Tightening::finish`] could not check or change (one that
/// is gone needs nothing).
fn skipped(path: &Path, e: &io::Error) {
    if e.kind() != io::ErrorKind::NotFound {
        tracing::warn!(path = %path.display(), error = %e, "cannot make this path under the state dir private");
    }
}

/// Takes the group's and others' bits off `path` (of mode `mode`, not a
/// link) if it has any, and notes it.
fn tighten(path: &Path, mode: u32, noted: &mut Tightened) -> io::Result<()> {
    let old = mode & 0o7777;
    if old & SHARED_BITS == 0 {
        return Ok(());
    }
    let new = old & !SHARED_BITS;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(new))?;
    noted.0.push((path.to_path_buf(), old, new));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The permission bits of `path` (not following a link).
    fn mode(path: &Path) -> u32 {
        std::fs::symlink_metadata(path).expect("exists").mode() & 0o7777
    }

    /// Sets the permission bits of `path`.
    fn chmod(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }

    /// The uid that owns `path`.
    fn owner(path: &Path) -> u32 {
        std::fs::metadata(path).expect("exists").uid()
    }

    #[test]
    fn a_new_state_dir_is_created_private() {
        let tmp = tempfile::tempdir().unwrap();
        let me = owner(tmp.path());
        let dir = tmp.path().join("a/b/state");
        let changed = prepare_state_dir(&dir, me, &["logs", "wal"])
            .unwrap()
            .finish();
        assert_eq!(changed, Tightened::default());
        for path in [
            tmp.path().join("a"),
            dir.clone(),
            dir.join("logs"),
            dir.join("wal"),
        ] {
            assert_eq!(mode(&path), 0o700, "{}", path.display());
        }
    }

    #[test]
    fn loose_files_and_folders_are_tightened_and_named_once() {
        let tmp = tempfile::tempdir().unwrap();
        let me = owner(tmp.path());
        let dir = tmp.path().join("state");
        std::fs::create_dir_all(dir.join("logs")).unwrap();
        chmod(&dir, 0o755);
        chmod(&dir.join("logs"), 0o755);
        std::fs::write(dir.join("logs/1.out"), b"secret").unwrap();
        chmod(&dir.join("logs/1.out"), 0o644);
        std::fs::write(dir.join("logs/2.out"), b"").unwrap();
        chmod(&dir.join("logs/2.out"), 0o600);
        // A link is neither followed nor changed.
        let victim = tmp.path().join("victim");
        std::fs::write(&victim, b"").unwrap();
        chmod(&victim, 0o644);
        std::os::unix::fs::symlink(&victim, dir.join("logs/3.out")).unwrap();

        let tightening = prepare_state_dir(&dir, me, &["logs", "wal"]).unwrap();
        // The top level at once: nothing below is reachable by others now.
        assert_eq!(mode(&dir.join("logs")), 0o700);
        assert_eq!(mode(&dir.join("logs/1.out")), 0o644, "left to finish()");
        let changed = tightening.finish();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("logs")), 0o700);
        assert_eq!(mode(&dir.join("logs/1.out")), 0o600);
        assert_eq!(mode(&dir.join("logs/2.out")), 0o600);
        assert_eq!(mode(&dir.join("wal")), 0o700);
        assert_eq!(
            mode(&victim),
            0o644,
            "a link's target is not ours to change"
        );
        assert_eq!(changed.0.len(), 3, "{changed:?}");
        let warning = changed.warning(&dir).expect("a warning");
        assert!(warning.contains(". 0755->0700"), "{warning}");
        assert!(warning.contains("logs/1.out 0644->0600"), "{warning}");
        assert!(!warning.contains("2.out"), "{warning}");

        // Started again, nothing is left to change.
        let again = prepare_state_dir(&dir, me, &["logs", "wal"])
            .unwrap()
            .finish();
        assert_eq!(again.warning(&dir), None);
    }

    #[test]
    fn a_warning_about_many_paths_names_a_few_and_counts_the_rest() {
        let changed = Tightened(
            (0..8)
                .map(|i| (PathBuf::from(format!("/s/logs/{i}.out")), 0o644, 0o600))
                .collect(),
        );
        let warning = changed.warning(Path::new("/s")).unwrap();
        assert!(warning.starts_with("made 8 path(s) under the state dir /s private"));
        assert!(
            warning.contains("logs/4.out 0644->0600 and 3 more"),
            "{warning}"
        );
        assert!(!warning.contains("5.out"), "{warning}");
    }

    #[test]
    fn a_state_dir_others_may_write_or_someone_else_owns_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let me = owner(tmp.path());
        let dir = tmp.path().join("state");
        std::fs::create_dir(&dir).unwrap();
        for loose in [0o775, 0o777, 0o1777, 0o720] {
            chmod(&dir, loose);
            let err = prepare_state_dir(&dir, me, &[]).unwrap_err();
            assert!(matches!(err, StateDirError::Writable { .. }), "{err:?}");
            let text = err.to_string();
            assert!(text.contains("chmod 700"), "{text}");
            assert_eq!(mode(&dir), loose, "left as it was");
        }
        chmod(&dir, 0o700);
        let err = prepare_state_dir(&dir, me.wrapping_add(1), &[]).unwrap_err();
        assert!(matches!(err, StateDirError::NotOurs { .. }), "{err:?}");
        assert!(
            err.to_string().contains(&format!("belongs to uid {me}")),
            "{err}"
        );

        let file = tmp.path().join("file");
        std::fs::write(&file, b"").unwrap();
        let err = prepare_state_dir(&file, me, &[]).unwrap_err();
        assert!(!err.to_string().contains('\n'), "{err}");
    }

    #[test]
    fn files_are_created_0600_and_never_through_a_link() {
        let tmp = tempfile::tempdir().unwrap();
        let victim = tmp.path().join("victim");
        std::fs::write(&victim, b"mine").unwrap();
        let link = tmp.path().join("1.out");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let err = file_options()
            .create(true)
            .append(true)
            .open(&link)
            .map_err(explain_link)
            .unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert_eq!(std::fs::read(&victim).unwrap(), b"mine");

        let fresh = tmp.path().join("2.out");
        file_options()
            .create(true)
            .append(true)
            .open(&fresh)
            .unwrap();
        assert_eq!(mode(&fresh), 0o600);
    }
}
