//! The frame codec (`protocol/src/codec.rs`): a 4-byte big-endian length,
//! then a bincode payload decoded with the 16 MiB limit.
//!
//! The bytes are read as a stream of frames twice over, as the daemon reads
//! requests (the tokio codec, fed in chunks of the size the first byte
//! picks) and as the client reads responses (the blocking `read_frame`).
//! Asserted:
//! - nothing panics, and each stream ends in a message, an error or a clean
//!   end within one pass over the bytes;
//! - the blocking and the async decoder agree, message for message and
//!   error for error, whatever the chunking (framing does not depend on
//!   read boundaries);
//! - every decoded message re-encodes and decodes to itself;
//! - a `Request` and a `Response` built from the bytes with `arbitrary`
//!   survive `encode_frame` then both decoders unchanged, the async
//!   encoder writes the very bytes of `encode_frame`, and a `JobsRef`
//!   listing encodes exactly like the `Response::Jobs` it stands for.

use std::fmt::Debug;
use std::io::Cursor;

use arbitrary::Arbitrary;
use bytes::BytesMut;
use mayfly_protocol::{
    FrameCodec, JobInfo, JobsRef, Request, Response, decode_payload, encode_frame, encode_payload,
    read_frame,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_util::codec::{Decoder, Encoder};

/// One step of a frame stream: a message, or the error that ends it.
type Step<T> = Result<T, String>;

/// The fuzz input. See the module documentation.
pub fn run(data: &[u8]) {
    let chunk = usize::from(data.first().copied().unwrap_or(0) % 16) + 1;
    check_stream::<Request, Response>(data, chunk);
    check_stream::<Response, Request>(data, chunk);

    if let Some(Messages {
        request,
        response,
        jobs,
    }) = crate::structured(data)
    {
        round_trip::<Request, Response>(&request);
        round_trip::<Response, Request>(&response);
        let views: Vec<_> = jobs.iter().map(JobInfo::view).collect();
        let borrowed = encode_payload(&JobsRef(&views)).map_err(|e| e.to_string());
        let owned = encode_payload(&Response::Jobs(jobs)).map_err(|e| e.to_string());
        assert_eq!(borrowed, owned, "JobsRef encodes unlike Response::Jobs");
    }
}

/// What the structured half builds from the bytes.
#[derive(Debug, Arbitrary)]
struct Messages {
    /// A request, as a client could send it.
    request: Request,
    /// A response, as the daemon could send it.
    response: Response,
    /// A listing, to compare the borrowed and the owned encodings.
    jobs: Vec<JobInfo>,
}

/// Decodes `data` as frames of `In` with both decoders and checks that they
/// agree and that each message round-trips. `Out` is what the codec would
/// send back; it does not take part in decoding.
fn check_stream<In, Out>(data: &[u8], chunk: usize)
where
    In: DeserializeOwned + Serialize + PartialEq + Debug,
{
    let blocking = blocking_steps::<In>(data);
    let whole = codec_steps::<In, Out>(data, data.len().max(1));
    let chunked = codec_steps::<In, Out>(data, chunk);
    assert_eq!(blocking, whole, "read_frame and FrameCodec disagree");
    assert_eq!(whole, chunked, "FrameCodec depends on read boundaries");
    for msg in blocking.iter().filter_map(|s| s.as_ref().ok()) {
        let frame = encode_frame(msg).expect("a decoded message re-encodes");
        let again: In = decode_payload(&frame[4..]).expect("a re-encoded message decodes");
        assert_eq!(&again, msg, "decode(encode(x)) != x");
    }
}

/// The frames of `data` as the client reads them: `read_frame` until the
/// end or the first error.
fn blocking_steps<In: DeserializeOwned>(data: &[u8]) -> Vec<Step<In>> {
    let mut reader = Cursor::new(data);
    let mut steps = Vec::new();
    // Each frame takes at least its 4-byte prefix, so this many reads end it.
    for _ in 0..=data.len() / 4 {
        match read_frame::<In>(&mut reader) {
            Ok(Some(msg)) => steps.push(Ok(msg)),
            Ok(None) => return steps,
            Err(e) => {
                steps.push(Err(e.to_string()));
                return steps;
            }
        }
    }
    panic!("read_frame did not reach the end of {} bytes", data.len());
}

/// The frames of `data` as the daemon reads them: bytes arrive `chunk` at
/// a time, the codec decodes what it can after each, and `decode_eof` runs
/// at the end — as `Framed` drives it.
fn codec_steps<In: DeserializeOwned, Out>(data: &[u8], chunk: usize) -> Vec<Step<In>> {
    let mut codec = FrameCodec::<In, Out>::new();
    let mut buf = BytesMut::new();
    let mut steps = Vec::new();
    for piece in data.chunks(chunk) {
        buf.extend_from_slice(piece);
        // Each decoded frame consumes at least 4 bytes.
        for _ in 0..=buf.len() / 4 {
            match codec.decode(&mut buf) {
                Ok(Some(msg)) => steps.push(Ok(msg)),
                Ok(None) => break,
                Err(e) => {
                    steps.push(Err(e.to_string()));
                    return steps;
                }
            }
        }
    }
    for _ in 0..=buf.len() / 4 {
        match codec.decode_eof(&mut buf) {
            Ok(Some(msg)) => steps.push(Ok(msg)),
            Ok(None) => return steps,
            Err(e) => {
                steps.push(Err(e.to_string()));
                return steps;
            }
        }
    }
    panic!("decode_eof did not reach the end of {} bytes", data.len());
}

/// `msg` through `encode_frame` and back through both decoders, and through
/// the codec's encoder, which must write the same bytes.
fn round_trip<T, Other>(msg: &T)
where
    T: Serialize + DeserializeOwned + PartialEq + Debug + Clone,
{
    // A message over the frame limit is refused by the encoder: fine.
    let Ok(frame) = encode_frame(msg) else {
        return;
    };
    let read: T = read_frame(&mut Cursor::new(&frame[..]))
        .expect("read_frame reads what encode_frame wrote")
        .expect("a whole frame is there");
    assert_eq!(&read, msg, "read_frame(encode_frame(x)) != x");

    let mut buf = BytesMut::from(&frame[..]);
    let decoded = FrameCodec::<T, Other>::new()
        .decode(&mut buf)
        .expect("FrameCodec reads what encode_frame wrote")
        .expect("a whole frame is there");
    assert_eq!(&decoded, msg, "FrameCodec::decode(encode_frame(x)) != x");
    assert!(buf.is_empty(), "FrameCodec left bytes of a whole frame");

    let mut encoded = BytesMut::new();
    FrameCodec::<Other, T>::new()
        .encode(msg.clone(), &mut encoded)
        .expect("FrameCodec encodes what encode_frame encoded");
    assert_eq!(&encoded[..], &frame[..], "the two encoders disagree");
}
