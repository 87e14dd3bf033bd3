//! Who may use the daemon: the peer credentials of each connection.
//!
//! The daemon runs whatever it is handed, as its own user, so whoever can
//! submit owns that user. The socket's mode (`0600`, in a `0700` folder) is
//! the first fence; this is the second, and the one that holds when the
//! mode does not (a socket made `0666` for `--allow-uid`, a folder someone
//! loosened): on every accepted connection the kernel's record of the
//! peer (`SO_PEERCRED`: the uid of the process that connected) is checked
//! before a byte of it is read. The daemon serves its own uid, root (who can
//! read the state anyway), and the uids given with `--allow-uid`.
//!
//! A refused peer gets one frame, a [`HelloReply::Rejected`] that says why
//! and how the owner could allow it, in place of the answer to its hello
//! (nothing it sent is read, so nothing it sent is decoded), and the
//! connection is closed. Each refusal is logged (warn, with uid and pid) and
//! counted (`mayfly_ipc_refused_peers_total`).

use std::sync::Arc;
use std::time::Duration;

use mayfly_protocol::{HelloReply, encode_frame};
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;

use crate::metrics::Metrics;

/// The uids the daemon serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerPolicy {
    /// The daemon's own (effective) uid.
    own: u32,
    /// Other uids allowed on purpose (`--allow-uid`).
    allowed: Vec<u32>,
}

impl PeerPolicy {
    /// Serves `own`, root and `allowed`.
    pub fn new(own: u32, allowed: Vec<u32>) -> Self {
        Self { own, allowed }
    }

    /// Serves this process's effective uid, root and `allowed`.
    pub fn for_this_process(allowed: Vec<u32>) -> Self {
        Self::new(nix::unistd::geteuid().as_raw(), allowed)
    }

    /// Whether a peer running as `uid` is served.
    pub fn admits(&self, uid: u32) -> bool {
        uid == self.own || uid == 0 || self.allowed.contains(&uid)
    }

    /// Why `uid` is refused, and what the daemon's owner could do: the text
    /// the refused client prints.
    pub fn refusal(&self, uid: u32) -> String {
        let serves = if self.own == 0 {
            "root".to_string()
        } else {
            format!("uid {} and root", self.own)
        };
        let also = match self.allowed.as_slice() {
            [] => String::new(),
            allowed => {
                let uids: Vec<String> = allowed.iter().map(u32::to_string).collect();
                format!(", and uid {} by --allow-uid", uids.join(", "))
            }
        };
        format!(
            "uid {uid} may not use this daemon (it serves {serves}{also}); the daemon's owner \
             can allow it with --allow-uid {uid}"
        )
    }
}

/// Checks the peer of a new connection. `Some(stream)` to serve it; `None`
/// when it was refused (answered, logged, counted) or its credentials could
/// not be read.
pub async fn admit(
    stream: UnixStream,
    policy: &Arc<PeerPolicy>,
    metrics: &Metrics,
    timeout: Duration,
) -> Option<UnixStream> {
    let reason = match stream.peer_cred() {
        Ok(cred) if policy.admits(cred.uid()) => return Some(stream),
        Ok(cred) => {
            tracing::warn!(
                uid = cred.uid(),
                pid = cred.pid().unwrap_or(0),
                "refused a connection: its user may not use this daemon (--allow-uid adds users)"
            );
            policy.refusal(cred.uid())
        }
        Err(e) => {
            tracing::warn!(error = %e, "refused a connection whose peer credentials cannot be read");
            format!("the daemon cannot tell who is connecting ({e}), so it serves no one")
        }
    };
    metrics.ipc_refused_peer();
    refuse(stream, reason, timeout).await;
    None
}

/// Sends the one `Rejected` frame (bounded by `timeout`, though it fits in
/// any socket buffer) and closes the connection.
async fn refuse(mut stream: UnixStream, reason: String, timeout: Duration) {
    let Ok(frame) = encode_frame(&HelloReply::Rejected { reason }) else {
        return;
    };
    let _ = tokio::time::timeout(timeout, async {
        let _ = stream.write_all(&frame).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;
    use mayfly_protocol::{FrameCodec, Hello};
    use tokio_util::codec::Framed;

    use super::*;

    #[test]
    fn own_uid_root_and_allowed_uids_are_served() {
        let policy = PeerPolicy::new(1000, vec![1001]);
        assert!(policy.admits(1000));
        assert!(policy.admits(0));
        assert!(policy.admits(1001));
        assert!(!policy.admits(65534));
        let root = PeerPolicy::new(0, Vec::new());
        assert!(root.admits(0));
        assert!(!root.admits(1000));
    }

    #[test]
    fn the_refusal_says_who_is_served_and_how_to_allow_more() {
        assert_eq!(
            PeerPolicy::new(0, Vec::new()).refusal(65534),
            "uid 65534 may not use this daemon (it serves root); the daemon's owner can \
             allow it with --allow-uid 65534"
        );
        assert_eq!(
            PeerPolicy::new(1000, vec![5, 6]).refusal(7),
            "uid 7 may not use this daemon (it serves uid 1000 and root, and uid 5, 6 by \
             --allow-uid); the daemon's owner can allow it with --allow-uid 7"
        );
    }

    /// The refusal itself (the whole path, with a real other user, is
    /// tested end to end in tests/tests/trust.rs: as root, which the tests
    /// run as, every peer here is served).
    #[tokio::test]
    async fn a_refusal_is_one_rejected_frame_then_the_end() {
        let (client, server) = UnixStream::pair().expect("a socket pair");
        refuse(server, "go away".into(), Duration::from_secs(5)).await;
        let mut framed = Framed::new(client, FrameCodec::<HelloReply, Hello>::new());
        let reply = framed.next().await;
        assert!(
            matches!(&reply, Some(Ok(HelloReply::Rejected { reason })) if reason == "go away"),
            "{reply:?}"
        );
        assert!(framed.next().await.is_none(), "closed after the one frame");
    }

    #[tokio::test]
    async fn an_allowed_peer_is_served_untouched() {
        let (_client, server) = UnixStream::pair().expect("a socket pair");
        let metrics = Metrics::new().expect("metrics");
        let policy = Arc::new(PeerPolicy::for_this_process(Vec::new()));
        assert!(
            admit(server, &policy, &metrics, Duration::from_secs(5))
                .await
                .is_some()
        );
        assert!(
            metrics
                .render()
                .contains("mayfly_ipc_refused_peers_total 0")
        );
    }
}
