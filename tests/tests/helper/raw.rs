//! A raw protocol client on a blocking `UnixStream`: the wire as the daemon
//! sees it, without `mayflyctl` in between.
//!
//! Used where the test is about the wire itself (pipelining, hostile input)
//! or where no CLI binary is involved (the in-process daemon tests).

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use mayfly_protocol::{
    Command, Hello, HelloReply, JobSpec, Request, Response, encode_frame, read_frame,
};

/// How long a raw read may block: a daemon that stalls fails the test.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects to `socket` with read and write timeouts and no handshake yet.
pub fn connect_raw(socket: &Path) -> UnixStream {
    let stream = UnixStream::connect(socket)
        .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", socket.display()));
    stream
        .set_read_timeout(Some(IO_TIMEOUT))
        .expect("set read timeout");
    stream
        .set_write_timeout(Some(IO_TIMEOUT))
        .expect("set write timeout");
    stream
}

/// The frame of a message, for tests that assemble their own writes.
pub fn frame<T: serde::Serialize>(msg: &T) -> Vec<u8> {
    encode_frame(msg).expect("encode a frame")
}

/// A shell job that runs `script` in `cwd` with a minimal environment.
pub fn shell_spec(script: &str, cwd: &Path) -> JobSpec {
    JobSpec {
        command: Command::Shell(script.to_string()),
        cwd: cwd.display().to_string(),
        env: vec![(
            "PATH".to_string(),
            std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".to_string()),
        )],
        queue: mayfly_protocol::DEFAULT_QUEUE.to_string(),
        priority: mayfly_protocol::DEFAULT_PRIORITY,
        labels: Vec::new(),
        after: Vec::new(),
        not_before: None,
        timeout_ms: None,
        retries: 0,
        retry_delay_ms: 1_000,
        ext: Vec::new(),
    }
}

/// A connection that has completed the handshake.
#[derive(Debug)]
pub struct RawClient {
    /// The connection, with timeouts set.
    stream: UnixStream,
}

impl RawClient {
    /// Connects and shakes hands; panics if the daemon refuses.
    pub fn connect(socket: &Path) -> Self {
        let mut stream = connect_raw(socket);
        stream
            .write_all(&frame(&Hello::current()))
            .expect("send hello");
        match read_frame::<HelloReply>(&mut stream) {
            Ok(Some(HelloReply::Accepted { .. })) => Self { stream },
            other => panic!("handshake failed: {other:?}"),
        }
    }

    /// Sends one request and reads its whole answer: one frame, or for a
    /// streaming request every frame up to and including `End` or `Error`.
    pub fn request(&mut self, request: &Request) -> Vec<Response> {
        self.try_request(request)
            .unwrap_or_else(|e| panic!("no complete answer to {request:?}: {e}"))
    }

    /// [`RawClient::request`] for a daemon that may die mid-request (the
    /// crash tests): a write error, a read error or end of file before the
    /// answer is complete is an `Err` describing it, not a panic.
    pub fn try_request(&mut self, request: &Request) -> Result<Vec<Response>, String> {
        self.stream
            .write_all(&frame(request))
            .map_err(|e| format!("sending the request failed: {e}"))?;
        let mut answer = Vec::new();
        loop {
            let response = match read_frame::<Response>(&mut self.stream) {
                Ok(Some(r)) => r,
                Ok(None) => return Err(format!("end of file after {answer:?}")),
                Err(e) => return Err(format!("reading the answer failed after {answer:?}: {e}")),
            };
            let last =
                !request.is_streaming() || matches!(response, Response::End | Response::Error(_));
            answer.push(response);
            if last {
                return Ok(answer);
            }
        }
    }
}
