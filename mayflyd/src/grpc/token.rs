//! The bearer token of the TCP front doors: 32 random bytes, written as 64
//! hex digits to `STATE_DIR/token` (`0600`) the first time a TCP listener
//! needs it, and read back on every later start, so clients keep working
//! across restarts. A client sends it as `authorization: Bearer <token>`;
//! the daemon compares in constant time, so the time a refusal takes says
//! nothing about how much of a guess was right (docs/security.md).

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use subtle::ConstantTimeEq;

/// The token's file name under the state dir.
pub const FILE_NAME: &str = "token";

/// How many random bytes a token is made of.
const TOKEN_BYTES: usize = 32;

/// The token, as the text clients send.
#[derive(Clone)]
pub struct Token(String);

// Never printed: a log line must not hand out the token.
impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(..)")
    }
}

/// Why the token could not be had.
#[derive(Debug, thiserror::Error)]
#[error("cannot {what} the gRPC token {}: {source}", path.display())]
pub struct TokenError {
    /// What was being done.
    what: &'static str,
    /// The token file.
    path: PathBuf,
    /// The system's error.
    source: io::Error,
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
                tracing::info!(path = %path.display(), "made the bearer token for gRPC over TCP");
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
        if text.len() < 32 || !text.bytes().all(|b| b.is_ascii_graphic()) {
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

    /// True when `header` (an `authorization` value) is `Bearer <this
    /// token>`. The comparison of the token takes the same time wherever
    /// the two differ.
    pub fn admits(&self, header: &[u8]) -> bool {
        let Some(given) = header
            .strip_prefix(b"Bearer ")
            .or_else(|| header.strip_prefix(b"bearer "))
        else {
            return false;
        };
        bool::from(given.ct_eq(self.0.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn made_once_private_then_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let first = Token::load_or_create(dir.path()).unwrap();
        let mode = std::fs::metadata(dir.path().join(FILE_NAME))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(first.0.len(), 64);
        let again = Token::load_or_create(dir.path()).unwrap();
        assert_eq!(first.0, again.0, "a restart keeps the token");
        assert!(first.admits(format!("Bearer {}", first.0).as_bytes()));
        assert!(!first.admits(first.0.as_bytes()), "the scheme is required");
        assert!(!first.admits(b"Bearer "));
        assert!(!first.admits(format!("Bearer {}x", first.0).as_bytes()));
        assert!(!first.admits(format!("Bearer {}", &first.0[1..]).as_bytes()));
        assert_eq!(format!("{first:?}"), "Token(..)");
    }

    #[test]
    fn a_file_that_is_no_token_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE_NAME), "short\n").unwrap();
        let err = Token::load_or_create(dir.path()).unwrap_err().to_string();
        assert!(err.contains("remove the file"), "{err}");
    }
}
