//! A fake daemon for testing the client without `mayflyd`: a thread with a
//! std `UnixListener` in a temp dir that accepts one connection and plays a
//! script — check the handshake and the request, answer with canned frames.
//!
//! The listener is bound *before* the client runs, so nothing waits for a
//! socket file to appear; the thread's result (what the client sent) comes
//! back through [`FakeDaemon::finish`], which also surfaces the server's
//! assertion failures as test failures.

use std::io::{Cursor, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use mayfly_protocol::{
    Hello, HelloReply, JobId, JobInfo, JobState, PROTOCOL_VERSION, Request, Response, Timestamp,
    encode_frame, read_frame,
};
use mayflyctl::{Cli, ClientContext, CtlError};
use serde::Serialize;

/// What the client sent on its connection.
#[derive(Debug)]
pub struct Received {
    /// The handshake.
    pub hello: Hello,
    /// Every request, in order.
    pub requests: Vec<Request>,
    /// Whether the hello and the first request arrived in one read, i.e. were
    /// sent in one write.
    pub one_write: bool,
}

/// The server side of the one connection, handed to a script.
pub struct Server {
    /// The accepted connection.
    stream: UnixStream,
    /// What has been received so far.
    received: Received,
}

impl Server {
    /// Sends one message as a frame.
    pub fn send<T: Serialize>(&mut self, msg: &T) {
        let bytes = encode_frame(msg).expect("encodes");
        self.send_raw(&bytes);
    }

    /// Sends raw bytes (for broken or hostile frames). A client that already
    /// hung up is fine.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes);
    }

    /// Reads the next request.
    pub fn recv(&mut self) -> Request {
        let req: Request = read_frame(&mut self.stream)
            .expect("a valid request frame")
            .expect("the client sent another request");
        self.received.requests.push(req.clone());
        req
    }

    /// Reads (and drops) whatever the client sends until it hangs up, for
    /// at most 10 s: a daemon that never answers.
    pub fn until_client_leaves(&mut self) {
        let _ = self
            .stream
            .set_read_timeout(Some(std::time::Duration::from_secs(10)));
        let mut sink = [0u8; 4096];
        while matches!(self.stream.read(&mut sink), Ok(n) if n > 0) {}
    }

    /// Accepts the handshake as the real daemon would.
    pub fn accept_hello(&mut self) {
        self.send(&HelloReply::Accepted {
            version: PROTOCOL_VERSION,
            daemon_version: "0.0.0-fake".into(),
        });
    }
}

/// A running fake daemon.
pub struct FakeDaemon {
    /// Keeps the socket's directory alive.
    _dir: tempfile::TempDir,
    /// The socket path to pass with `--socket`.
    pub socket: PathBuf,
    /// The server thread.
    thread: Option<JoinHandle<Received>>,
}

impl FakeDaemon {
    /// Binds a socket and starts a thread that accepts one connection, reads
    /// the hello and the first request, and then runs `script` (which
    /// normally starts with [`Server::accept_hello`]).
    pub fn start(script: impl FnOnce(&mut Server) + Send + 'static) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let socket = dir.path().join("mayfly.sock");
        let listener = UnixListener::bind(&socket).expect("bind");
        let thread = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().expect("accept");
            // One read: if the client wrote hello and request together, both
            // are in the socket buffer by the time it returns.
            let mut first = vec![0u8; 1 << 20];
            let n = stream.read(&mut first).expect("read");
            first.truncate(n);
            let mut reader = Cursor::new(first.clone()).chain(&mut stream);
            let hello: Hello = read_frame(&mut reader)
                .expect("a valid hello frame")
                .expect("a hello");
            let request: Request = read_frame(&mut reader)
                .expect("a valid request frame")
                .expect("a first request");
            let both = encode_frame(&hello).expect("encodes").len()
                + encode_frame(&request).expect("encodes").len();
            let mut server = Server {
                stream,
                received: Received {
                    hello,
                    requests: vec![request],
                    one_write: first.len() >= both,
                },
            };
            script(&mut server);
            server.received
        });
        Self {
            _dir: dir,
            socket,
            thread: Some(thread),
        }
    }

    /// Waits for the server thread and returns what the client sent.
    pub fn finish(mut self) -> Received {
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(received)) => received,
            Some(Err(panic)) => std::panic::resume_unwind(panic),
            None => unreachable!("finish is called once"),
        }
    }
}

/// A context as if run by uid 1000 in `/work` with a two-variable environment.
pub fn ctx() -> ClientContext {
    ClientContext {
        cwd: Ok(PathBuf::from("/work")),
        env: vec![
            ("PATH".into(), "/usr/bin:/bin".into()),
            ("LANG".into(), "C.UTF-8".into()),
        ],
        socket_env: None,
        daemon_timeout_env: None,
        xdg_runtime_dir: None,
        job_id_env: None,
        uid: 1000,
        term_width: None,
        color: false,
        stderr_tty: false,
        now: Timestamp(1_700_000_060_000),
        time_zone: jiff::tz::TimeZone::UTC,
        stdin: None,
    }
}

/// What a client run produced.
#[derive(Debug)]
pub struct Outcome {
    /// The exit code, or the error `main` would print.
    pub result: Result<u8, CtlError>,
    /// What was written to stdout.
    pub stdout: String,
}

impl Outcome {
    /// The exit code the binary would return.
    pub fn code(&self) -> u8 {
        match &self.result {
            Ok(code) => *code,
            Err(e) => e.exit_code(),
        }
    }

    /// The error message `main` would print (without the prefix).
    pub fn error(&self) -> String {
        match &self.result {
            Ok(code) => panic!("expected an error, got exit {code}"),
            Err(e) => e.to_string(),
        }
    }
}

/// Runs the client in-process against `socket` with `args` (after the
/// program name; `--socket` is added).
pub fn run_client(socket: &Path, args: &[&str]) -> Outcome {
    run_client_in(socket, args, &ctx())
}

/// Like [`run_client`], in the given context (e.g. with standard input).
pub fn run_client_in(socket: &Path, args: &[&str], ctx: &ClientContext) -> Outcome {
    let socket = socket.to_str().expect("temp paths are UTF-8");
    let argv = ["mayflyctl", "--socket", socket]
        .into_iter()
        .chain(args.iter().copied());
    let cli = <Cli as clap::Parser>::try_parse_from(argv).expect("valid command line");
    let mut out = Vec::new();
    let result = mayflyctl::run(&cli, ctx, &mut out);
    Outcome {
        result,
        stdout: String::from_utf8(out).expect("UTF-8 output"),
    }
}

/// A job report in `state`.
pub fn job(id: u64, state: JobState) -> JobInfo {
    JobInfo {
        state,
        attempts: u32::from(state != JobState::Queued),
        ..JobInfo::submitted(
            JobId(id),
            mayfly_protocol::Command::Argv(
                vec!["make".into(), "test".into()]
                    .try_into()
                    .expect("a program"),
            ),
            "/work",
            "default",
            50,
            Timestamp(1_700_000_000_000),
        )
    }
}

/// A job that ended with `exit_code` / `signal`.
pub fn ended(id: u64, state: JobState, exit_code: Option<i32>, signal: Option<i32>) -> JobInfo {
    JobInfo {
        exit_code,
        signal,
        finished_at: Some(Timestamp(1_700_000_050_000)),
        ..job(id, state)
    }
}

/// Shorthand for the End frame.
pub fn end() -> Response {
    Response::End
}
