//! The wire protocol shared by `mayflyd` and `mayflyctl`.
//!
//! This crate owns every type that crosses the Unix socket and the only place
//! where bincode is named. A connection looks like this:
//!
//! 1. The client sends a [`Hello`] frame, the server answers with a
//!    [`HelloReply`]. A wrong magic value or a protocol version range that does
//!    not overlap the server's is answered with [`HelloReply::Rejected`] and the
//!    connection is closed.
//! 2. The client sends [`Request`] frames; it may pipeline them. The server
//!    answers each with one [`Response`] frame, in request order. Streaming
//!    requests ([`Request::is_streaming`]) are answered with a series of frames
//!    that ends with [`Response::End`] (or a [`Response::Error`]).
//!
//! Before either side uses the socket, it checks the socket's folder
//! ([`socket_folder`]): a folder someone else controls could hold a socket
//! of theirs.
//!
//! Each frame is a 4-byte big-endian length followed by a bincode 2 payload
//! (serde, standard configuration, decoded with a size limit). Frames larger
//! than [`MAX_FRAME_LEN`] are refused before anything is allocated.
//!
//! **Compatibility rule**: bincode numbers enum variants and struct fields by
//! position. New message kinds are only ever appended to the enums; a change
//! to an existing struct's fields bumps [`PROTOCOL_VERSION`].

pub mod activity;
pub mod codec;
pub mod handshake;
pub mod job;
#[cfg(feature = "json")]
pub mod json;
pub mod request;
pub mod response;
pub mod size;
pub mod socket_folder;

pub use activity::{Activity, ActivityRecord};
#[cfg(feature = "codec")]
pub use codec::FrameCodec;
pub use codec::{
    FrameError, READ_AHEAD, decode_blob, decode_payload, encode_blob, encode_frame, encode_payload,
    frame_len, frame_size, read_frame,
};
pub use handshake::{Hello, HelloReply, MAGIC, PROTOCOL_VERSION};
pub use job::{
    Argv, Attempt, Command, DepRef, Dependency, EmptyArgv, ExecutorSpec, JobId, JobInfo,
    JobInfoRef, JobSpec, JobState, LogStream, QueueInfo, SchedulerInfo, SpecExt, StateCounts,
    SystemTaskInfo, Timestamp, Usage,
};
pub use request::{
    CancelRequest, CleanRequest, EditRequest, EventsRequest, LogsRequest, PauseRequest,
    ProgressRequest, QueueRemoveRequest, QueueSetRequest, Request, RestartRequest, ShutdownRequest,
    StatusRequest, SubmitBatchRequest, SubmitRequest, WaitRequest,
};
pub use response::{CancelOutcome, ErrorKind, ErrorResponse, JobsRef, Response, StateHeader};
pub use size::{format_size, parse_size};

/// The largest frame either side accepts: 16 MiB. Larger length prefixes are
/// refused before any allocation.
pub const MAX_FRAME_LEN: usize = 16 * 1024 * 1024;

/// The default job priority: the middle of the user range.
pub const DEFAULT_PRIORITY: u8 = 50;

/// The lowest priority number (highest precedence) a user job may have; `0`
/// is reserved for system tasks.
pub const MIN_USER_PRIORITY: u8 = 1;

/// The highest priority number (lowest precedence) a user job may have.
pub const MAX_USER_PRIORITY: u8 = 99;

/// The wait before the first retry of a failed job when the submit does not
/// say (`--retry-delay`); it doubles for each later retry.
pub const DEFAULT_RETRY_DELAY_MS: u64 = 1_000;

/// How many times a failed job is run again when the submit does not say
/// (`--retries`): none.
pub const DEFAULT_RETRIES: u32 = 0;

/// The queue every daemon has and every job goes to unless told otherwise.
pub const DEFAULT_QUEUE: &str = "default";
