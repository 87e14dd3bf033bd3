//! Framing and encoding: a 4-byte big-endian length prefix, then a bincode 2
//! payload.
//!
//! Invariants kept here, so no caller has to remember them:
//! - a length prefix above [`MAX_FRAME_LEN`] is an error *before* any buffer
//!   is allocated for it;
//! - a buffer grows with the bytes that have arrived, never to the length a
//!   prefix announces: a peer that announces 16 MiB and sends 12 bytes costs
//!   12 bytes (plus at most [`READ_AHEAD`] of room to read into), not 16 MiB;
//! - payloads are decoded with bincode's size limit, so a hostile length field
//!   inside the payload cannot make the decoder allocate either;
//! - a payload with bytes left over after the message is refused, so two
//!   versions that disagree on a layout fail loudly instead of misreading.
//!
//! The async side ([`FrameCodec`], behind the `codec` feature) is used by the
//! daemon; the blocking side ([`encode_frame`], [`read_frame`]) by the client,
//! which has no async runtime.

use std::io::Read;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::MAX_FRAME_LEN;

/// The bincode configuration of the wire: standard (varint), limited to one frame.
fn config() -> bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Varint,
    bincode::config::Limit<MAX_FRAME_LEN>,
> {
    bincode::config::standard().with_limit::<MAX_FRAME_LEN>()
}

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The underlying stream failed.
    #[error("connection error: {0}")]
    Io(#[from] std::io::Error),
    /// The peer announced a frame larger than the protocol allows.
    #[error("frame of {len} bytes exceeds the {MAX_FRAME_LEN}-byte limit")]
    TooLarge {
        /// The announced length, as far as it is known.
        len: u64,
    },
    /// The payload is not a valid message.
    #[error("undecodable message: {0}")]
    Decode(String),
    /// The payload holds a valid message followed by extra bytes.
    #[error("message followed by {extra} unexpected trailing bytes")]
    TrailingBytes {
        /// How many bytes were left over.
        extra: usize,
    },
    /// A message could not be encoded (or would exceed the frame limit).
    #[error("could not encode message: {0}")]
    Encode(String),
    /// The stream ended in the middle of a frame.
    #[error("connection closed in the middle of a frame")]
    Truncated,
}

/// The most room a reader sets aside ahead of the bytes that have arrived.
/// A frame larger than this grows its buffer as its bytes come in (doubling,
/// so the copying stays linear), never by the announced length at once.
pub const READ_AHEAD: usize = 64 * 1024;

/// The payload length a frame's 4-byte prefix announces, refused when it
/// exceeds [`MAX_FRAME_LEN`] (before anything is allocated for it).
pub fn frame_len(prefix: [u8; 4]) -> Result<usize, FrameError> {
    let len = u32::from_be_bytes(prefix) as usize;
    if len > MAX_FRAME_LEN {
        return Err(FrameError::TooLarge { len: len as u64 });
    }
    Ok(len)
}

/// The size of `msg` as a whole frame (prefix and payload), without encoding
/// it: what a writer will put on the wire for it, so the daemon can count a
/// reply against a connection's budget when it is queued.
pub fn frame_size<T: Serialize>(msg: &T) -> usize {
    let mut size = bincode::enc::write::SizeWriter::default();
    // An encoding that fails here fails in the writer too, which reports
    // it; what it would have cost does not matter.
    let _ = bincode::serde::encode_into_writer(msg, &mut size, config());
    4 + size.bytes_written
}

/// The largest blob [`encode_blob`] writes and [`decode_blob`] reads: 4 GiB.
pub const MAX_BLOB_LEN: usize = 1 << 32;

/// The bincode configuration of on-disk state: like the wire, but limited to
/// [`MAX_BLOB_LEN`] instead of one frame (a snapshot of many jobs is larger
/// than any message).
fn blob_config() -> bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Varint,
    bincode::config::Limit<MAX_BLOB_LEN>,
> {
    bincode::config::standard().with_limit::<MAX_BLOB_LEN>()
}

/// Encodes on-disk state (the daemon's snapshots) with the wire's encoding
/// but a larger limit.
pub fn encode_blob<T: Serialize>(value: &T) -> Result<Vec<u8>, FrameError> {
    bincode::serde::encode_to_vec(value, blob_config())
        .map_err(|e| FrameError::Encode(e.to_string()))
}

/// Decodes what [`encode_blob`] wrote, refusing trailing bytes.
pub fn decode_blob<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, FrameError> {
    let (value, used) = bincode::serde::decode_from_slice(bytes, blob_config())
        .map_err(|e| FrameError::Decode(e.to_string()))?;
    if used != bytes.len() {
        return Err(FrameError::TrailingBytes {
            extra: bytes.len() - used,
        });
    }
    Ok(value)
}

/// Encodes a message into a bare payload (no length prefix).
pub fn encode_payload<T: Serialize>(msg: &T) -> Result<Vec<u8>, FrameError> {
    let payload = bincode::serde::encode_to_vec(msg, config())
        .map_err(|e| FrameError::Encode(e.to_string()))?;
    if payload.len() > MAX_FRAME_LEN {
        return Err(FrameError::TooLarge {
            len: payload.len() as u64,
        });
    }
    Ok(payload)
}

/// Decodes a bare payload, refusing trailing bytes.
pub fn decode_payload<T: DeserializeOwned>(payload: &[u8]) -> Result<T, FrameError> {
    let (msg, used) = bincode::serde::decode_from_slice(payload, config()).map_err(|e| {
        FrameError::Decode(match e {
            bincode::error::DecodeError::LimitExceeded => format!(
                "decoded, it would take more than the {MAX_FRAME_LEN}-byte limit \
                 (send it as several smaller requests)"
            ),
            other => other.to_string(),
        })
    })?;
    if used != payload.len() {
        return Err(FrameError::TrailingBytes {
            extra: payload.len() - used,
        });
    }
    Ok(msg)
}

/// Encodes a message as a whole frame: length prefix and payload. Several
/// frames may be concatenated into one write (the client sends its handshake
/// and its request together).
pub fn encode_frame<T: Serialize>(msg: &T) -> Result<Vec<u8>, FrameError> {
    let payload = encode_payload(msg)?;
    let mut frame = Vec::with_capacity(4 + payload.len());
    // encode_payload bounded the length to MAX_FRAME_LEN, which fits in u32.
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    frame.extend_from_slice(&payload);
    Ok(frame)
}

/// Reads one frame from a blocking stream and decodes it.
///
/// Returns `Ok(None)` on a clean end of stream before the first byte of a frame.
pub fn read_frame<T: DeserializeOwned>(r: &mut impl Read) -> Result<Option<T>, FrameError> {
    let mut len_buf = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match r.read(&mut len_buf[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(FrameError::Truncated),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    let len = frame_len(len_buf)?;
    // Grown as the payload arrives (see [`READ_AHEAD`]), not set to `len`
    // up front.
    let mut payload = Vec::with_capacity(len.min(READ_AHEAD));
    r.take(len as u64).read_to_end(&mut payload)?;
    if payload.len() < len {
        return Err(FrameError::Truncated);
    }
    decode_payload(&payload).map(Some)
}

#[cfg(feature = "codec")]
pub use self::framed::FrameCodec;

/// The tokio-util codec, for the daemon.
#[cfg(feature = "codec")]
mod framed {
    use std::marker::PhantomData;

    use bytes::{Buf, BufMut, BytesMut};
    use serde::Serialize;
    use serde::de::DeserializeOwned;
    use tokio_util::codec::{Decoder, Encoder};

    use super::{FrameError, READ_AHEAD, decode_payload, encode_payload, frame_len};

    /// Decodes frames into `In` and encodes `Out` into frames, with the
    /// protocol's 16 MiB limit checked before anything is reserved.
    ///
    /// The length prefix is left in the buffer until the whole frame has
    /// arrived, so a frame split across reads is checked once, at its real
    /// prefix, and an end of stream inside a frame is always `Truncated`.
    /// The buffer grows with what has arrived, at most [`READ_AHEAD`] ahead
    /// of it: never by the announced length at once.
    #[derive(Debug)]
    pub struct FrameCodec<In, Out> {
        /// The message types this codec reads and writes.
        _types: PhantomData<fn(Out) -> In>,
    }

    impl<In, Out> Default for FrameCodec<In, Out> {
        fn default() -> Self {
            Self::new()
        }
    }

    impl<In, Out> FrameCodec<In, Out> {
        /// A codec with the protocol's framing.
        pub fn new() -> Self {
            Self {
                _types: PhantomData,
            }
        }
    }

    impl<In: DeserializeOwned, Out> Decoder for FrameCodec<In, Out> {
        type Item = In;
        type Error = FrameError;

        fn decode(&mut self, src: &mut BytesMut) -> Result<Option<In>, FrameError> {
            // The prefix stays in `src` until the whole frame is there, so it
            // is always the first four bytes whenever this runs.
            if src.len() < 4 {
                return Ok(None);
            }
            let len = frame_len([src[0], src[1], src[2], src[3]])?;
            if src.len() < 4 + len {
                src.reserve((4 + len - src.len()).min(READ_AHEAD));
                return Ok(None);
            }
            src.advance(4);
            let payload = src.split_to(len);
            decode_payload(&payload).map(Some)
        }

        fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<In>, FrameError> {
            match self.decode(src)? {
                Some(msg) => Ok(Some(msg)),
                None if src.is_empty() => Ok(None),
                None => Err(FrameError::Truncated),
            }
        }
    }

    impl<In, Out: Serialize> Encoder<Out> for FrameCodec<In, Out> {
        type Error = FrameError;

        fn encode(&mut self, msg: Out, dst: &mut BytesMut) -> Result<(), FrameError> {
            let payload = encode_payload(&msg)?;
            dst.reserve(4 + payload.len());
            dst.put_u32(payload.len() as u32);
            dst.put_slice(&payload);
            Ok(())
        }
    }
}
