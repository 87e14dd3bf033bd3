//! The handshake (`protocol/src/handshake.rs`): the client's `Hello` frame,
//! the daemon's `HelloReply`.
//!
//! The bytes are read as the daemon reads a new connection: a `Hello` frame
//! with the handshake codec, the reply `negotiate` picks, then the frames
//! that follow with the request codec (a client sends its hello and its
//! request in one write). They are also read as the client reads the
//! daemon's answer. Asserted:
//! - nothing panics;
//! - `negotiate` accepts exactly a hello with the magic and a version range
//!   that holds this build's version, and its reply (or the rejection of an
//!   undecodable hello) is one line that encodes and decodes to itself (it
//!   is what the daemon sends);
//! - a `Hello` and a `HelloReply` built from the bytes with `arbitrary`
//!   survive a frame round trip unchanged.

use std::io::Cursor;

use arbitrary::Arbitrary;
use bytes::BytesMut;
use mayfly_protocol::{
    FrameCodec, Hello, HelloReply, MAGIC, PROTOCOL_VERSION, Request, Response, decode_payload,
    encode_frame, read_frame,
};
use tokio_util::codec::Decoder;

/// The fuzz input. See the module documentation.
pub fn run(data: &[u8]) {
    daemon_side(data);
    // The client's side: the first frame back must be a reply.
    if let Ok(Some(reply)) = read_frame::<HelloReply>(&mut Cursor::new(data)) {
        assert_round_trip(&reply);
    }

    if let Some(Pair { hello, reply }) = crate::structured(data) {
        assert_round_trip(&hello);
        assert_round_trip(&reply);
        check_negotiation(&hello);
    }
}

/// What the structured half builds from the bytes.
#[derive(Debug, Arbitrary)]
struct Pair {
    /// Any hello a client could send.
    hello: Hello,
    /// Any reply a daemon could send.
    reply: HelloReply,
}

/// The daemon's reading of a connection's first bytes.
fn daemon_side(data: &[u8]) {
    let mut buf = BytesMut::from(data);
    let mut hello_codec = FrameCodec::<Hello, HelloReply>::new();
    let hello = match hello_codec.decode_eof(&mut buf) {
        Ok(Some(hello)) => hello,
        Ok(None) => return,
        Err(e) => {
            // A bad frame: the daemon answers with this and closes.
            let reason = format!("bad handshake: {e}");
            assert!(
                !reason.contains('\n'),
                "a rejection is one line: {reason:?}"
            );
            assert_round_trip(&HelloReply::Rejected { reason });
            return;
        }
    };
    if !matches!(check_negotiation(&hello), HelloReply::Accepted { .. }) {
        return;
    }
    // Accepted: the same buffer goes on under the request codec.
    let mut codec = FrameCodec::<Request, Response>::new();
    for _ in 0..=buf.len() / 4 {
        match codec.decode_eof(&mut buf) {
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => return,
        }
    }
    panic!(
        "the request codec did not reach the end of {} bytes",
        data.len()
    );
}

/// Checks `negotiate`'s verdict against the rule, and that its reply
/// survives the wire; returns the reply.
fn check_negotiation(hello: &Hello) -> HelloReply {
    let reply = hello.negotiate();
    let compatible = hello.magic == MAGIC
        && hello.min_version <= PROTOCOL_VERSION
        && PROTOCOL_VERSION <= hello.max_version;
    match &reply {
        HelloReply::Accepted { version, .. } => {
            assert!(compatible, "accepted an incompatible hello: {hello:?}");
            assert_eq!(*version, PROTOCOL_VERSION);
        }
        HelloReply::Rejected { reason } => {
            assert!(!compatible, "rejected a compatible hello: {hello:?}");
            assert!(
                !reason.contains('\n'),
                "a rejection is one line: {reason:?}"
            );
        }
    }
    assert_round_trip(&reply);
    reply
}

/// `decode(encode(x)) == x` for one handshake message.
fn assert_round_trip<T>(msg: &T)
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let Ok(frame) = encode_frame(msg) else {
        // Larger than a frame: refused by the encoder, never sent.
        return;
    };
    let back: T = decode_payload(&frame[4..]).expect("a handshake frame decodes");
    assert_eq!(&back, msg, "decode(encode(x)) != x");
}
