//! The first frame each way: a magic value and the protocol version range.
//!
//! The handshake lets either side refuse a peer that is not Mayfly at all
//! (wrong magic) or that speaks an incompatible version, with a clear message,
//! before any request is interpreted.

use serde::{Deserialize, Serialize};

/// Identifies a Mayfly peer: the bytes `MAYFLY` followed by two zero bytes.
pub const MAGIC: [u8; 8] = *b"MAYFLY\0\0";

/// The protocol version this build speaks. Bump it whenever an existing
/// message's layout changes (appending an enum variant does not need a bump).
pub const PROTOCOL_VERSION: u32 = 5;

/// The client's opening frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Hello {
    /// Must equal [`MAGIC`].
    pub magic: [u8; 8],
    /// The oldest protocol version the client can speak.
    pub min_version: u32,
    /// The newest protocol version the client can speak.
    pub max_version: u32,
}

impl Hello {
    /// The hello this build sends: our magic and exactly our version.
    pub fn current() -> Self {
        Self {
            magic: MAGIC,
            min_version: PROTOCOL_VERSION,
            max_version: PROTOCOL_VERSION,
        }
    }

    /// Checks the hello against what this build speaks and returns the reply
    /// the server should send.
    pub fn negotiate(&self) -> HelloReply {
        if self.magic != MAGIC {
            return HelloReply::Rejected {
                reason: "not a Mayfly client (bad magic value in the handshake)".into(),
            };
        }
        if self.min_version > PROTOCOL_VERSION || self.max_version < PROTOCOL_VERSION {
            return HelloReply::Rejected {
                reason: format!(
                    "protocol version mismatch: client speaks {}..={}, daemon speaks {}; \
                     use a mayflyctl from the same release as mayflyd",
                    self.min_version, self.max_version, PROTOCOL_VERSION
                ),
            };
        }
        HelloReply::Accepted {
            version: PROTOCOL_VERSION,
            daemon_version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }
}

/// The server's answer to a [`Hello`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum HelloReply {
    /// The connection goes on with this protocol version.
    Accepted {
        /// The version both sides will speak.
        version: u32,
        /// The daemon's release, for `mayflyctl --version` style diagnostics.
        daemon_version: String,
    },
    /// The server refuses the connection and closes it.
    Rejected {
        /// One line that says what is wrong and what to do.
        reason: String,
    },
}
