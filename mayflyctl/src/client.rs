//! One blocking connection to the daemon.
//!
//! There is no async runtime in the client: a run is one connect, one write
//! and a few reads, and start-up time is what scripts pay thousands of times.
//! [`Connection::open`] sends the handshake *and* the first request in a
//! single write, then reads the handshake reply, so a unary command costs one
//! round trip.
//!
//! That one write carries the caller's whole environment, so before it goes
//! out the client makes sure it talks to its own daemon (see `connect`):
//! the socket's folder must pass [`socket_folder`]'s test (a real directory
//! of this user's or root's, writable by no one else), and the process that
//! accepted the connection must run as this user or root (its peer
//! credentials, `SO_PEERCRED`). A `stat` and a `getsockopt`: microseconds,
//! next to the round trip.
//!
//! Every failure is translated here into a [`CtlError`] with the right exit
//! code: a failed connect, a socket whose folder or server is not to be
//! trusted, or a denied permission is "unreachable" (3), and nothing was
//! sent; a request too large to send is the caller's input (2); a refused
//! handshake, an `Error` frame, a dropped connection or an undecodable frame
//! is a failed request (1).
//!
//! Nothing waits for the daemon for longer than the [`Target`]'s timeout
//! (`--daemon-timeout`): the connect (which blocks while the daemon's
//! backlog is full), each write and each read. A daemon that never took the
//! connection or never answered the handshake could not be reached (3); one
//! that stops answering later fails the request (1). Commands that block on
//! purpose lift the limit once the handshake is done
//! ([`Connection::wait_as_long_as_it_takes`]).

use std::io::{BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mayfly_protocol::socket_folder;
use mayfly_protocol::{
    FrameError, Hello, HelloReply, JobInfo, PROTOCOL_VERSION, Request, Response, encode_frame,
    read_frame,
};
use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
use serde::de::DeserializeOwned;

use crate::error::{CtlError, UsageError};

/// Which daemon to talk to, and how long to wait for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The daemon's socket.
    pub socket: PathBuf,
    /// How long any one step may wait for the daemon; `None`: as long as it
    /// takes.
    pub timeout: Option<Duration>,
}

/// A handshaken connection to the daemon.
#[derive(Debug)]
pub struct Connection {
    /// The socket, buffered for reading so that a frame's prefix and payload
    /// usually cost one `read` between them. Writes go to the inner stream.
    stream: BufReader<UnixStream>,
    /// The socket's path, for error messages.
    socket: PathBuf,
    /// The limit on each read and write now in force.
    timeout: Option<Duration>,
    /// Whether the handshake has been answered (a timeout before it means
    /// the daemon could not be reached).
    handshaken: bool,
}

impl Connection {
    /// Connects to the target's socket, sends the handshake and `first` in
    /// one write, and checks the daemon's handshake reply. The answer to
    /// `first` is then read with [`Connection::recv`].
    pub fn open(target: &Target, first: &Request) -> Result<Self, CtlError> {
        let socket = target.socket.as_path();
        let mut bytes = encode_frame(&Hello::current()).map_err(encode_error)?;
        bytes.extend(encode_frame(first).map_err(encode_error)?);

        let stream = connect(socket, target.timeout)?;
        if target.timeout.is_some() {
            stream
                .set_read_timeout(target.timeout)
                .map_err(|e| io_error(e, "while connecting"))?;
        }
        let write_result = (&stream).write_all(&bytes);
        let mut conn = Self {
            stream: BufReader::new(stream),
            socket: socket.to_path_buf(),
            timeout: target.timeout,
            handshaken: false,
        };

        // Read the reply even if the write failed: a daemon that rejects the
        // handshake may close before reading our request, and its reason is
        // worth more than "broken pipe".
        let reply = conn.read::<HelloReply>("during the handshake");
        conn.handshaken = true;
        let write_result = write_result.map_err(|e| conn.io_error(e, "while sending the request"));
        match (reply, write_result) {
            (Ok(HelloReply::Rejected { reason }), _) => Err(CtlError::Rejected {
                socket: conn.socket,
                reason,
            }),
            (Ok(HelloReply::Accepted { version, .. }), Ok(())) if version == PROTOCOL_VERSION => {
                Ok(conn)
            }
            (Ok(HelloReply::Accepted { version, .. }), Ok(())) => Err(CtlError::Protocol(format!(
                "the daemon chose protocol version {version}, but this mayflyctl speaks only \
                 version {PROTOCOL_VERSION}"
            ))),
            (_, Err(err)) => Err(err),
            (Err(err), Ok(())) => Err(err),
        }
    }

    /// From now on, waits for the daemon as long as it takes: for commands
    /// whose answer comes when jobs end (`wait`) or that follow (`logs
    /// --follow`, `events --follow`).
    pub fn wait_as_long_as_it_takes(&mut self) -> Result<(), CtlError> {
        if self.timeout.take().is_some() {
            self.stream
                .get_ref()
                .set_read_timeout(None)
                .map_err(|e| io_error(e, "while setting up the connection"))?;
        }
        Ok(())
    }

    /// Sends another request on this connection (e.g. the `wait` that
    /// follows `submit --wait`).
    pub fn send(&mut self, request: &Request) -> Result<(), CtlError> {
        let bytes = encode_frame(request).map_err(encode_error)?;
        self.stream
            .get_ref()
            .write_all(&bytes)
            .map_err(|e| self.io_error(e, "while sending the request"))
    }

    /// Reads the next response frame. The daemon closing the connection here
    /// is an error: every request is answered.
    pub fn recv(&mut self) -> Result<Response, CtlError> {
        self.read("before the answer was complete")
    }

    /// Reads one frame of type `T`; `during` says when, for error messages.
    fn read<T: DeserializeOwned>(&mut self, during: &'static str) -> Result<T, CtlError> {
        match read_frame(&mut self.stream) {
            Ok(Some(msg)) => Ok(msg),
            Ok(None) | Err(FrameError::Truncated) => Err(CtlError::ConnectionLost { during }),
            Err(FrameError::Io(e)) => Err(self.io_error(e, during)),
            Err(e) => Err(CtlError::Protocol(format!(
                "unreadable answer from the daemon {during}: {e}"
            ))),
        }
    }

    /// [`io_error`], except that a read or write that ran out of time is
    /// [`CtlError::Timeout`].
    fn io_error(&self, source: std::io::Error, during: &'static str) -> CtlError {
        match self.timeout {
            Some(timeout) if is_timeout(&source) => CtlError::Timeout {
                socket: self.socket.clone(),
                timeout,
                during,
                unreachable: !self.handshaken,
            },
            _ => io_error(source, during),
        }
    }
}

/// Connects to `socket` if, and only if, it is safe to send it anything:
/// see the module documentation. Nothing is written here. The daemon has
/// `timeout` to take the connection (a Unix socket's connect blocks while
/// the listener's backlog is full); each later write has as long.
///
/// Whose daemon is trusted is this process's effective uid (what the
/// kernel reports to the daemon, and what the folder's owner is compared
/// with), read here rather than in [`crate::ClientContext`]: it is a
/// property of the process at the moment it connects, not of its
/// surroundings, and no test could fake it.
fn connect(socket: &Path, timeout: Option<Duration>) -> Result<UnixStream, CtlError> {
    let me = nix::unistd::geteuid().as_raw();
    let trusted = [me, 0];
    // A folder that cannot be looked at is left to the connect, which then
    // says why.
    if let Ok(Err(unsafe_folder)) =
        socket_folder::check(socket_folder::folder_of(socket), me, &trusted)
    {
        return Err(CtlError::UnsafeFolder(unsafe_folder));
    }
    let stream = connect_within(socket, timeout).map_err(|source| match timeout {
        Some(timeout) if is_timeout(&source) => CtlError::Timeout {
            socket: socket.to_path_buf(),
            timeout,
            during: "while connecting",
            unreachable: true,
        },
        _ => connect_error(socket, me, source),
    })?;
    let server = getsockopt(&stream, PeerCredentials).map_err(|e| CtlError::Connection {
        during: "while checking who serves the socket",
        source: e.into(),
    })?;
    let uid = server.uid();
    if !trusted.contains(&uid) {
        return Err(CtlError::UntrustedServer {
            socket: socket.to_path_buf(),
            uid,
            name: user_name(uid),
            pid: server.pid(),
            me,
        });
    }
    Ok(stream)
}

/// A plain connect to `socket`, giving up after `timeout`: the socket is
/// made with `SO_SNDTIMEO` set, which bounds a Unix socket's connect.
fn connect_within(socket: &Path, timeout: Option<Duration>) -> std::io::Result<UnixStream> {
    use nix::sys::socket::{self, AddressFamily, SockFlag, SockType, UnixAddr, sockopt};
    use nix::sys::time::{TimeVal, TimeValLike};

    let Some(timeout) = timeout else {
        return UnixStream::connect(socket);
    };
    let fd = socket::socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    let address = UnixAddr::new(socket)?;
    let deadline = std::time::Instant::now() + timeout;
    // A signal may cut the wait for room in a full backlog short (EINTR);
    // a Unix socket is still unconnected then, so it tries again for the
    // time left.
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let micros = i64::try_from(left.as_micros()).unwrap_or(i64::MAX).max(1);
        socket::setsockopt(&fd, sockopt::SendTimeout, &TimeVal::microseconds(micros))?;
        match socket::connect(fd.as_raw_fd(), &address) {
            Ok(()) => return Ok(UnixStream::from(fd)),
            Err(nix::errno::Errno::EINTR) if !left.is_zero() => continue,
            Err(nix::errno::Errno::EINTR) => return Err(std::io::ErrorKind::TimedOut.into()),
            Err(e) => return Err(e.into()),
        }
    }
}

/// True for the errors a socket timeout gives (`EAGAIN` on Linux).
fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

/// The error for a failed connect: a denied permission says whose socket
/// (or folder) it is; anything else means no daemon answers.
fn connect_error(socket: &Path, me: u32, source: std::io::Error) -> CtlError {
    if source.kind() != std::io::ErrorKind::PermissionDenied {
        return CtlError::Unreachable {
            socket: socket.to_path_buf(),
            source,
        };
    }
    let folder = socket_folder::folder_of(socket);
    let (what, meta) = match std::fs::metadata(socket) {
        Ok(meta) => ("the socket".to_string(), Some(meta)),
        Err(_) => (
            format!("its folder {}", folder.display()),
            std::fs::metadata(folder).ok(),
        ),
    };
    let whose = match meta {
        Some(meta) => format!(
            "{what} belongs to {} and has mode {:04o}",
            describe_uid(meta.uid()),
            meta.permissions().mode() & 0o7777
        ),
        None => format!("{what} is not open to you"),
    };
    CtlError::Forbidden {
        socket: socket.to_path_buf(),
        detail: format!(
            "{whose}, so it is another user's daemon; start your own with 'mayflyd' (or pass \
             --socket), or ask its owner to run it with --allow-uid {me}"
        ),
    }
}

/// `uid 1000 (alice)`, or `uid 1000` when it has no name.
fn describe_uid(uid: u32) -> String {
    match user_name(uid) {
        Some(name) => format!("uid {uid} ({name})"),
        None => format!("uid {uid}"),
    }
}

/// The user name of `uid`, if the user database has one (read only on
/// the way to an error message).
fn user_name(uid: u32) -> Option<String> {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|user| user.name)
}

/// The error for a request that could not be encoded: one larger than a
/// frame is the caller's input, too large to send (exit 2).
fn encode_error(e: FrameError) -> CtlError {
    match e {
        FrameError::TooLarge { len } => UsageError::TooLarge { bytes: len }.into(),
        e => CtlError::Encode(e),
    }
}

/// An I/O error while talking: a reset or closed peer is a lost connection,
/// anything else is reported as is.
fn io_error(source: std::io::Error, during: &'static str) -> CtlError {
    use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset, UnexpectedEof};
    match source.kind() {
        BrokenPipe | ConnectionReset | ConnectionAborted | UnexpectedEof => {
            CtlError::ConnectionLost { during }
        }
        _ => CtlError::Connection { during, source },
    }
}

/// The error for an answer that does not fit the request.
pub fn unexpected(request: &'static str, got: &Response) -> CtlError {
    CtlError::Protocol(format!(
        "unexpected answer to {request} from the daemon: {}",
        response_name(got)
    ))
}

/// The error for an `Error` frame.
pub fn daemon_error(request: &'static str, error: mayfly_protocol::ErrorResponse) -> CtlError {
    CtlError::Daemon { request, error }
}

/// A response variant's name, for messages.
pub fn response_name(response: &Response) -> &'static str {
    match response {
        Response::Submitted { .. } => "Submitted",
        Response::Jobs(_) => "Jobs",
        Response::Cancelled(_) => "Cancelled",
        Response::JobEnded(_) => "JobEnded",
        Response::LogChunk(_) => "LogChunk",
        Response::State(_) => "State",
        Response::ShuttingDown => "ShuttingDown",
        Response::End => "End",
        Response::Error(_) => "Error",
        Response::Event(_) => "Event",
        Response::EventsMissed { .. } => "EventsMissed",
        Response::SubmittedBatch { .. } => "SubmittedBatch",
        Response::Queues(_) => "Queues",
        Response::Restarted(_) => "Restarted",
        Response::Cleaned { .. } => "Cleaned",
        Response::Ok => "Ok",
    }
}

/// Reads a stream of `Jobs` chunks up to `End` (the body of `status`, and of
/// `dump-state` after its header).
pub fn read_jobs(conn: &mut Connection, request: &'static str) -> Result<Vec<JobInfo>, CtlError> {
    let mut stream = JobStream::new(conn, request);
    let jobs = stream.by_ref().collect();
    stream.finish().map(|()| jobs)
}

/// The jobs of a `Jobs` stream, read one frame at a time as they are
/// consumed: a caller that prints as it goes works while the daemon still
/// sends, and each frame's jobs are freed before the next is read.
///
/// The iteration ends at `End` or at the first failure; [`JobStream::finish`]
/// says which. A caller must not treat what it got as complete before that.
#[derive(Debug)]
pub struct JobStream<'c> {
    /// Where the frames come from.
    conn: &'c mut Connection,
    /// The request, for error messages.
    request: &'static str,
    /// The rest of the current frame's jobs.
    chunk: std::vec::IntoIter<JobInfo>,
    /// The stream has ended (`End`, an error, or a broken connection).
    done: bool,
    /// Why it ended early, if it did.
    error: Option<CtlError>,
}

impl<'c> JobStream<'c> {
    /// The stream of answers to `request` (already sent) on `conn`.
    pub fn new(conn: &'c mut Connection, request: &'static str) -> Self {
        Self {
            conn,
            request,
            chunk: Vec::new().into_iter(),
            done: false,
            error: None,
        }
    }

    /// `Ok` if the stream ended with `End` (every job was read), else why not.
    pub fn finish(mut self) -> Result<(), CtlError> {
        // Drain, so that "complete" is never claimed for a stream that
        // was only partly consumed.
        for _ in self.by_ref() {}
        self.error.map_or(Ok(()), Err)
    }
}

impl Iterator for JobStream<'_> {
    type Item = JobInfo;

    fn next(&mut self) -> Option<JobInfo> {
        loop {
            if let Some(job) = self.chunk.next() {
                return Some(job);
            }
            if self.done {
                return None;
            }
            let failure = match self.conn.recv() {
                Ok(Response::Jobs(chunk)) => {
                    self.chunk = chunk.into_iter();
                    continue;
                }
                Ok(Response::End) => None,
                Ok(Response::Error(e)) => Some(daemon_error(self.request, e)),
                Ok(other) => Some(unexpected(self.request, &other)),
                Err(e) => Some(e),
            };
            self.done = true;
            self.error = failure;
        }
    }
}
