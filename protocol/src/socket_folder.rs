//! The test both sides apply to the folder that holds the socket, before
//! they use the socket in it.
//!
//! Whoever can write to that folder can put a socket of their own at the
//! socket's path: the daemon would then serve nobody (or replace theirs),
//! and a client would send its request — with its whole environment — to a
//! stranger. Whoever owns the folder, or can swap a symbolic link for it,
//! can do the same. So the folder must be a real directory (not a symbolic
//! link), owned by a trusted user, and writable by no one else (neither its
//! group nor others). The daemon trusts only its own uid; `mayflyctl`
//! trusts its own and root's (a daemon run by root may serve other users).
//!
//! A folder that does not exist passes: the daemon creates it `0700`, and a
//! client finds no socket in it. Only the socket's own folder is looked at,
//! not the folders above it.
//!
//! The messages are one line each and say how to fix it; they are shared by
//! both binaries, so they speak of "the socket's folder".

use std::fmt;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The folder that holds `socket`: its parent, or `.` for a bare file name.
pub fn folder_of(socket: &Path) -> &Path {
    match socket.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// Why a socket's folder must not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A symbolic link stands where the folder should be.
    Symlink,
    /// Something that is not a directory stands there.
    NotADirectory,
    /// The folder belongs to an untrusted user.
    Owner {
        /// The folder's owner.
        owner: u32,
    },
    /// The folder's group or others may write to it.
    Writable {
        /// The folder's permission bits (`0o7777` of its mode).
        mode: u32,
    },
}

/// A socket folder that failed the test: where, why, and whom it was
/// checked for (for the message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsafeFolder {
    /// The folder.
    pub dir: PathBuf,
    /// What is wrong with it.
    pub problem: Problem,
    /// The uid of the process that checked it.
    pub me: u32,
    /// Whether it also trusts root's folders (the client does).
    pub root_trusted: bool,
}

impl fmt::Display for UnsafeFolder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dir = self.dir.display();
        let me = if self.root_trusted && self.me != 0 {
            format!("you (uid {}) or root", self.me)
        } else {
            format!("you (uid {})", self.me)
        };
        let elsewhere = "or use a socket in a folder of your own (--socket)";
        match self.problem {
            Problem::Symlink => write!(
                f,
                "the socket's folder {dir} is a symbolic link, and it must be a real directory \
                 (someone may have planted it to intercept the socket); remove the link \
                 (mayflyd creates the folder afresh) {elsewhere}"
            ),
            Problem::NotADirectory => write!(
                f,
                "the socket's folder {dir} is not a directory; remove it (mayflyd creates the \
                 folder afresh) {elsewhere}"
            ),
            Problem::Owner { owner } => write!(
                f,
                "the socket's folder {dir} belongs to uid {owner}, not to {me}; \
                 someone else may have created it to intercept the socket: have it removed \
                 (mayflyd creates the folder afresh) {elsewhere}"
            ),
            Problem::Writable { mode } => write!(
                f,
                "the socket's folder {dir} is writable by {} (mode {:04o}), so someone else \
                 could replace the socket; run 'chmod go-w {dir}' {elsewhere}",
                writable_by(mode),
                mode
            ),
        }
    }
}

impl std::error::Error for UnsafeFolder {}

/// "its group", "others" or "its group and others", for `mode`.
fn writable_by(mode: u32) -> &'static str {
    match (mode & 0o020 != 0, mode & 0o002 != 0) {
        (true, true) => "its group and others",
        (true, false) => "its group",
        _ => "others",
    }
}

/// Applies the test to `dir` for the process `me`, which trusts folders
/// owned by a uid in `owners`. `Ok(Ok(()))` when the folder passes or does
/// not exist; `Ok(Err(_))` when it fails; `Err` when it cannot be looked at
/// (the caller's own connect or bind then says why).
pub fn check(dir: &Path, me: u32, owners: &[u32]) -> io::Result<Result<(), UnsafeFolder>> {
    let meta = match std::fs::symlink_metadata(dir) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Ok(())),
        Err(e) => return Err(e),
    };
    let kind = meta.file_type();
    let problem = if kind.is_symlink() {
        Some(Problem::Symlink)
    } else if !kind.is_dir() {
        Some(Problem::NotADirectory)
    } else if !owners.contains(&meta.uid()) {
        Some(Problem::Owner { owner: meta.uid() })
    } else if meta.mode() & 0o022 != 0 {
        Some(Problem::Writable {
            mode: meta.mode() & 0o7777,
        })
    } else {
        None
    };
    Ok(match problem {
        None => Ok(()),
        Some(problem) => Err(UnsafeFolder {
            dir: dir.to_path_buf(),
            problem,
            me,
            root_trusted: owners.contains(&0),
        }),
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    /// The uid the tests run as, read from a file they create.
    fn me(dir: &Path) -> u32 {
        std::fs::metadata(dir).expect("the temp dir").uid()
    }

    #[test]
    fn the_folder_of_a_bare_name_is_the_current_one() {
        assert_eq!(folder_of(Path::new("s.sock")), Path::new("."));
        assert_eq!(folder_of(Path::new("/run/m/s.sock")), Path::new("/run/m"));
        assert_eq!(folder_of(Path::new("/s.sock")), Path::new("/"));
    }

    #[test]
    fn a_private_or_missing_folder_passes() {
        let tmp = tempfile::tempdir().expect("a temp dir");
        let uid = me(tmp.path());
        for mode in [0o700, 0o755, 0o711, 0o1755] {
            std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(mode)).unwrap();
            assert_eq!(check(tmp.path(), uid, &[uid]).unwrap(), Ok(()), "{mode:o}");
        }
        let missing = tmp.path().join("absent");
        assert_eq!(check(&missing, uid, &[uid]).unwrap(), Ok(()));
    }

    #[test]
    fn each_problem_is_found_and_told_with_its_fix() {
        let tmp = tempfile::tempdir().expect("a temp dir");
        let uid = me(tmp.path());
        let problem = |dir: &Path, owners: &[u32]| {
            check(dir, uid, owners)
                .expect("can look")
                .expect_err("should fail")
        };

        let open = tmp.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o1777)).unwrap();
        let err = problem(&open, &[uid]);
        assert_eq!(err.problem, Problem::Writable { mode: 0o1777 });
        let text = err.to_string();
        assert!(text.contains("its group and others (mode 1777)"), "{text}");
        assert!(text.contains("chmod go-w"), "{text}");

        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(tmp.path(), &link).unwrap();
        let err = problem(&link, &[uid]);
        assert_eq!(err.problem, Problem::Symlink);
        assert!(err.to_string().contains("symbolic link"), "{err}");

        let file = tmp.path().join("file");
        std::fs::write(&file, b"").unwrap();
        assert_eq!(problem(&file, &[uid]).problem, Problem::NotADirectory);

        let stranger = uid.wrapping_add(1);
        let err = problem(tmp.path(), &[stranger]);
        assert_eq!(err.problem, Problem::Owner { owner: uid });
        let text = err.to_string();
        assert!(text.contains(&format!("belongs to uid {uid}")), "{text}");
        assert!(!text.contains('\n'), "one line: {text}");
        // A client, which trusts root too, says so.
        let client = UnsafeFolder {
            me: 1000,
            root_trusted: true,
            ..err
        };
        assert!(
            client.to_string().contains("not to you (uid 1000) or root"),
            "{client}"
        );
    }
}
