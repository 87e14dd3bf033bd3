//! Shared pieces of Mayfly's load generators: a blocking client, the trivial
//! job every benchmark submits, and latency statistics.
//!
//! This half of the crate depends on nothing but `mayfly-protocol` and `std`,
//! so that `floor-client` (the smallest possible submitting client, the floor
//! against which `mayflyctl`'s per-call cost is judged) stays as light as a
//! client can be. Argument parsing and JSON output live in `mayfly-load`.

use std::fmt;
use std::io::{BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mayfly_protocol::{
    Command, DEFAULT_PRIORITY, DEFAULT_QUEUE, FrameError, Hello, HelloReply, JobId, JobSpec,
    PROTOCOL_VERSION, Request, Response, SubmitRequest, encode_frame, read_frame,
};

/// How long any single read or write may block before the benchmark gives up
/// on a daemon that stopped answering (so that scripts never hang forever).
pub const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// The job every benchmark submits: `true`, run directly, from `/`, with only
/// `PATH` in its environment, in queue `default` at the default priority.
///
/// It is deliberately small, so that what is measured is the daemon's cost
/// per submit rather than the cost of moving a large environment around.
pub fn trivial_spec() -> JobSpec {
    let mut spec = JobSpec::new(
        Command::Argv(vec!["true".to_owned()].try_into().expect("a program")),
        "/",
        DEFAULT_QUEUE,
        DEFAULT_PRIORITY,
    );
    spec.env = vec![("PATH".to_owned(), "/usr/local/bin:/usr/bin:/bin".to_owned())];
    spec
}

/// [`trivial_spec`] with one more environment variable, `MAYFLY_BENCH_PAD`,
/// whose value is `pad_bytes` bytes long (none when `pad_bytes` is 0): a
/// stand-in for the whole environment that `mayflyctl submit` captures, which
/// the daemon keeps with the job, logs and snapshots.
pub fn padded_spec(pad_bytes: usize) -> JobSpec {
    let mut spec = trivial_spec();
    if pad_bytes > 0 {
        spec.env
            .push(("MAYFLY_BENCH_PAD".to_owned(), "x".repeat(pad_bytes)));
    }
    spec
}

/// The whole frame (length prefix and payload) of a submit of `spec`. Every
/// submit of a run is the same bytes, so benchmarks encode it once and write
/// it many times.
pub fn submit_frame_of(spec: JobSpec) -> Result<Vec<u8>, BenchError> {
    encode_frame(&Request::Submit(SubmitRequest { spec })).map_err(BenchError::Frame)
}

/// The frame of a submit of [`trivial_spec`].
pub fn submit_frame() -> Result<Vec<u8>, BenchError> {
    submit_frame_of(trivial_spec())
}

/// The handshake frame this build sends.
pub fn hello_frame() -> Result<Vec<u8>, BenchError> {
    encode_frame(&Hello::current()).map_err(BenchError::Frame)
}

/// Why a benchmark connection failed.
#[derive(Debug)]
pub enum BenchError {
    /// The socket could not be connected to (no daemon, wrong path).
    Connect {
        /// The socket's path.
        socket: PathBuf,
        /// What `connect` said.
        source: std::io::Error,
    },
    /// Reading or writing the connection failed (including a timeout).
    Io(std::io::Error),
    /// A frame could not be encoded, or the daemon sent an unreadable one.
    Frame(FrameError),
    /// The daemon refused the handshake.
    Rejected(String),
    /// The daemon closed the connection before answering everything.
    Closed,
    /// The daemon answered, but not with what a submit expects.
    Unexpected(String),
}

impl fmt::Display for BenchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BenchError::Connect { socket, source } => write!(
                f,
                "cannot connect to {}: {source} (is mayflyd running there?)",
                socket.display()
            ),
            BenchError::Io(e) => write!(f, "connection error: {e}"),
            BenchError::Frame(e) => write!(f, "{e}"),
            BenchError::Rejected(reason) => write!(f, "the daemon refused the handshake: {reason}"),
            BenchError::Closed => f.write_str("the daemon closed the connection early"),
            BenchError::Unexpected(what) => write!(f, "unexpected answer from the daemon: {what}"),
        }
    }
}

/// Each message already says what went wrong underneath, so no `source()`:
/// printing the chain would repeat it.
impl std::error::Error for BenchError {}

/// One handshaken, blocking connection to the daemon.
#[derive(Debug)]
pub struct Client {
    /// The socket, buffered for reading (a response's prefix and payload, and
    /// many pipelined responses, usually cost one `read`). Writes go straight
    /// to the inner stream, unbuffered.
    stream: BufReader<UnixStream>,
}

impl Client {
    /// Connects, sends the handshake alone, and checks the reply.
    pub fn connect(socket: &Path) -> Result<Self, BenchError> {
        Self::connect_with(socket, &[])
    }

    /// Connects and sends the handshake followed by `first` (already encoded
    /// frames, possibly none) in a single write, as `mayflyctl` does, then
    /// checks the handshake reply. Answers to `first` are left to read with
    /// [`Client::recv`].
    pub fn connect_with(socket: &Path, first: &[u8]) -> Result<Self, BenchError> {
        let mut bytes = hello_frame()?;
        bytes.extend_from_slice(first);
        let stream = UnixStream::connect(socket).map_err(|source| BenchError::Connect {
            socket: socket.to_path_buf(),
            source,
        })?;
        stream
            .set_read_timeout(Some(IO_TIMEOUT))
            .map_err(BenchError::Io)?;
        stream
            .set_write_timeout(Some(IO_TIMEOUT))
            .map_err(BenchError::Io)?;
        let write_result = (&stream).write_all(&bytes);
        let mut client = Self {
            stream: BufReader::new(stream),
        };
        // Read the reply even if the write failed: a refusing daemon may close
        // before reading our request, and its reason says more.
        match frame_result(read_frame::<HelloReply>(&mut client.stream))? {
            HelloReply::Rejected { reason } => Err(BenchError::Rejected(reason)),
            HelloReply::Accepted { version, .. } if version != PROTOCOL_VERSION => {
                Err(BenchError::Rejected(format!(
                    "the daemon chose protocol version {version}, this build speaks {PROTOCOL_VERSION}"
                )))
            }
            HelloReply::Accepted { .. } => {
                write_result.map_err(BenchError::Io)?;
                Ok(client)
            }
        }
    }

    /// Writes already encoded frames (one or many: pipelining) in one write.
    pub fn send(&mut self, frames: &[u8]) -> Result<(), BenchError> {
        self.stream
            .get_ref()
            .write_all(frames)
            .map_err(BenchError::Io)
    }

    /// Reads the next response.
    pub fn recv(&mut self) -> Result<Response, BenchError> {
        frame_result(read_frame::<Response>(&mut self.stream))
    }

    /// Reads the next response and checks that it is `Submitted`.
    pub fn recv_submitted(&mut self) -> Result<JobId, BenchError> {
        match self.recv()? {
            Response::Submitted { id } => Ok(id),
            Response::Error(e) => Err(BenchError::Unexpected(format!(
                "submit failed ({:?}): {}",
                e.kind, e.message
            ))),
            other => Err(BenchError::Unexpected(format!("{other:?}"))),
        }
    }

    /// One submit as a full round trip: write `frame`, wait for its answer.
    pub fn submit(&mut self, frame: &[u8]) -> Result<JobId, BenchError> {
        self.send(frame)?;
        self.recv_submitted()
    }
}

/// Maps the result of [`read_frame`] to this crate's error: the end of the
/// stream, anywhere, means the daemon closed the connection early.
fn frame_result<T>(result: Result<Option<T>, FrameError>) -> Result<T, BenchError> {
    match result {
        Ok(Some(msg)) => Ok(msg),
        Ok(None) | Err(FrameError::Truncated) => Err(BenchError::Closed),
        Err(FrameError::Io(e)) => Err(BenchError::Io(e)),
        Err(e) => Err(BenchError::Frame(e)),
    }
}

/// Order statistics of a set of latency samples, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// How many samples.
    pub count: usize,
    /// The fastest sample.
    pub min_us: f64,
    /// The 50th percentile.
    pub median_us: f64,
    /// The 90th percentile.
    pub p90_us: f64,
    /// The 99th percentile.
    pub p99_us: f64,
    /// The 99.9th percentile (with fewer than 1000 samples, the maximum).
    pub p999_us: f64,
    /// The slowest sample.
    pub max_us: f64,
    /// The arithmetic mean.
    pub mean_us: f64,
}

impl Summary {
    /// Summarises `samples` (sorted in place). Percentiles use the
    /// nearest-rank method: p-th percentile = the `ceil(p·n)`-th smallest.
    /// Returns `None` when there are no samples.
    pub fn of(samples: &mut [Duration]) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        let us = |d: Duration| d.as_nanos() as f64 / 1_000.0;
        let n = samples.len();
        let rank = |p: f64| {
            let r = (p * n as f64).ceil() as usize;
            us(samples[r.clamp(1, n) - 1])
        };
        let total: Duration = samples.iter().sum();
        Some(Self {
            count: n,
            min_us: us(samples[0]),
            median_us: rank(0.50),
            p90_us: rank(0.90),
            p99_us: rank(0.99),
            p999_us: rank(0.999),
            max_us: us(samples[n - 1]),
            mean_us: us(total) / n as f64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut samples: Vec<Duration> = (1..=100).rev().map(Duration::from_micros).collect();
        let s = Summary::of(&mut samples).unwrap();
        assert_eq!(s.count, 100);
        assert_eq!(s.min_us, 1.0);
        assert_eq!(s.median_us, 50.0);
        assert_eq!(s.p90_us, 90.0);
        assert_eq!(s.p99_us, 99.0);
        assert_eq!(s.p999_us, 100.0);
        assert_eq!(s.max_us, 100.0);
        assert_eq!(s.mean_us, 50.5);
    }

    #[test]
    fn one_sample_and_none() {
        let mut one = [Duration::from_micros(7)];
        let s = Summary::of(&mut one).unwrap();
        assert_eq!(
            (s.min_us, s.median_us, s.p99_us, s.max_us),
            (7.0, 7.0, 7.0, 7.0)
        );
        assert!(Summary::of(&mut []).is_none());
    }

    #[test]
    fn padding_adds_one_variable_of_that_size() {
        assert_eq!(padded_spec(0), trivial_spec());
        let spec = padded_spec(100);
        assert_eq!(spec.env.len(), trivial_spec().env.len() + 1);
        assert_eq!(spec.env.last().map(|(_, v)| v.len()), Some(100));
    }

    #[test]
    fn submit_frame_is_one_framed_submit() {
        let frame = submit_frame().unwrap();
        let len = u32::from_be_bytes(frame[..4].try_into().unwrap()) as usize;
        assert_eq!(len + 4, frame.len());
        let request: Request = mayfly_protocol::decode_payload(&frame[4..]).unwrap();
        assert_eq!(
            request,
            Request::Submit(SubmitRequest {
                spec: trivial_spec()
            })
        );
    }
}
