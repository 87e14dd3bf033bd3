//! The bearer token of the daemon's TCP front doors: the A2A door and gRPC
//! on TCP share it (features `a2a`, `grpc`).
//!
//! Whoever may submit a job runs commands as the daemon's user, so a door
//! that listens on TCP, where peer credentials say nothing, admits only
//! callers that present this token (`docs/security.md`). It is 32 random
//! bytes, written as 64 hex digits to `STATE_DIR/token` the first time a
//! door needs it (created `0600` through [`crate::private::file_options`],
//! never through a symbolic link) and read back at every later start, so
//! clients keep working across restarts; delete the file to make a new one.
//!
//! The token is never logged: [`Token`]'s `Debug` hides it. [`Token::verify`]
//! compares in constant time, so how long a refusal takes says nothing about
//! how much of a guess was right.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use subtle::ConstantTimeEq;

/// The token's file name under the state dir.
pub const FILE_NAME: &str = "token";

/// How many random bytes a new token is made of.
const TOKEN_BYTES: usize = 32;

/// The shortest token file the daemon accepts (a user may write their own).
const MIN_TOKEN_CHARS: usize = 32;

/// The token, as the text clients send after `Bearer `.
#[derive(Clone)]
pub struct Token(String);

// Never printed: a log line must not hand out the token.
impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(..)")
    }
}

/// Why the token could not be had: what was being done, to which file, and
/// why it failed (the message says what to do).
#[derive(Debug, thiserror::Error)]
#[error("cannot {what} the bearer token {}: {source}", path.display())]
pub struct TokenError {
    /// What was being done (make, write, read, use).
    what: &'static str,
    /// The token file.
    path: PathBuf,
    /// The system's error, or why the file's text is no token.
    source: io::Error,
}

/// Reads the token in `state_dir`, making one first if there is none. See
/// the module documentation.
pub fn load_or_create(state_dir: &Path) -> Result<Token, TokenError> {
    Token::load_or_create(state_dir)
}

impl Token {
    /// Reads the token in `state_dir`, making one first if there is none.
    pub fn load_or_create(state_dir: &Path) -> Result<Self, TokenError> {
        let path = state_dir.join(FILE_NAME);
        let err = |what, source| TokenError {
            what,
            path: path.clone(),
            source,
        };
        let mut fresh = [0u8; TOKEN_BYTES];
        getrandom::fill(&mut fresh).map_err(|e| err("make", io::Error::other(e)))?;
        let text: String = fresh.iter().map(|b| format!("{b:02x}")).collect();
        match crate::private::file_options()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut file) => {
                file.write_all(format!("{text}\n").as_bytes())
                    .and_then(|()| file.sync_all())
                    .map_err(|e| err("write", e))?;
                tracing::info!(path = %path.display(), "made the bearer token of the TCP front doors");
                return Ok(Self(text));
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(err("create", crate::private::explain_link(e))),
        }
        let mut text = String::new();
        crate::private::file_options()
            .read(true)
            .open(&path)
            .and_then(|mut file| file.read_to_string(&mut text))
            .map_err(|e| err("read", crate::private::explain_link(e)))?;
        let text = text.trim();
        if text.len() < MIN_TOKEN_CHARS || !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(err(
                "use",
                io::Error::other(
                    "it is not a token (32 or more printable characters); remove the file and \
                     a new token is made at the next start",
                ),
            ));
        }
        Ok(Self(text.to_string()))
    }

    /// True when `presented` is this token. Takes the same time wherever
    /// the two differ (a different length is told at once: the length of
    /// a token is no secret).
    pub fn verify(&self, presented: &[u8]) -> bool {
        bool::from(presented.ct_eq(self.0.as_bytes()))
    }

    /// True when `header` (an `Authorization` value) is `Bearer <this
    /// token>` (the scheme in any case, as HTTP has it). The comparison of
    /// the token takes the same time wherever the two differ.
    pub fn admits(&self, header: &[u8]) -> bool {
        const SCHEME: &[u8] = b"bearer ";
        match header.split_at_checked(SCHEME.len()) {
            Some((scheme, given)) if scheme.eq_ignore_ascii_case(SCHEME) => {
                self.verify(given.trim_ascii())
            }
            _ => false,
        }
    }

    /// The token's text, for a client of this daemon in the same process
    /// (tests, benchmarks). Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn made_once_private_then_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create(dir.path()).unwrap();
        let mode = std::fs::metadata(dir.path().join(FILE_NAME))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(first.0.len(), 64);
        let again = Token::load_or_create(dir.path()).unwrap();
        assert_eq!(first.0, again.0, "a restart keeps the token");
        assert!(first.verify(first.0.as_bytes()));
        assert!(!first.verify(b""));
        assert!(!first.verify(format!("{}x", first.0).as_bytes()));
        assert!(!first.verify(&first.0.as_bytes()[1..]));
        assert_eq!(format!("{first:?}"), "Token(..)");
    }

    #[test]
    fn the_header_needs_the_bearer_scheme() {
        let dir = tempfile::tempdir().unwrap();
        let token = Token::load_or_create(dir.path()).unwrap();
        let text = token.expose().to_string();
        assert!(token.admits(format!("Bearer {text}").as_bytes()));
        assert!(token.admits(format!("bearer {text}").as_bytes()));
        assert!(!token.admits(text.as_bytes()), "the scheme is required");
        assert!(!token.admits(format!("Basic {text}").as_bytes()));
        assert!(!token.admits(b"Bearer "));
        assert!(!token.admits(b"Bear"));
    }

    #[test]
    fn a_file_that_is_no_token_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE_NAME), "short\n").unwrap();
        let err = Token::load_or_create(dir.path()).unwrap_err().to_string();
        assert!(err.contains("remove the file"), "{err}");
    }

    #[test]
    fn a_link_in_place_of_the_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = dir.path().join("elsewhere");
        std::fs::write(&elsewhere, "a".repeat(64)).unwrap();
        std::os::unix::fs::symlink(&elsewhere, dir.path().join(FILE_NAME)).unwrap();
        let err = Token::load_or_create(dir.path()).unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
    }
}
