//! One client connection: handshake, then requests in, responses out.
//!
//! This is the Unix-socket front door: an adapter between frames and the
//! service API ([`crate::service::Mayfly`]). It decodes frames into typed
//! requests, calls the service, and turns the answers back into frames; it
//! never touches job state. Clients may pipeline: every request gets its own
//! answer in the order queue, and the writer takes the answers in request
//! order, so responses leave in the order requests came in even when a later
//! request is answered first. A streaming response keeps its channel open
//! until its `End` frame.
//!
//! A listing's pages are encoded by its sink ([`crate::reply::IpcList`]),
//! straight from the core's jobs through the protocol crate's `JobsRef`, and
//! the session writes the finished frame ([`Outgoing::Frame`]) as it is:
//! copying every job into a typed response first was most of the cost of
//! `status` with many jobs. A listing goes out one page at a time: when the
//! writer meets [`Outgoing::More`], it first hands everything before it to
//! the socket, then asks for the next page.
//!
//! Before anything is read, the peer's credentials are checked
//! ([`crate::peer`]); a user the daemon does not serve gets one `Rejected`
//! frame saying why.
//!
//! Bad input ends the session with an error frame (after the responses to
//! earlier requests) — never a panic, and never a stall of other sessions.
//!
//! # What one connection can make the daemon hold
//!
//! Each bound is a setting ([`SessionLimits`]); `docs/limits.md` says what a
//! client sees at each.
//!
//! - **The handshake** must arrive within `--handshake-timeout`.
//! - **A request on its way in** must arrive whole within `--frame-timeout`
//!   of its first byte. Its buffer grows with the bytes that arrive, never by
//!   the length its prefix announces; a request larger than [`FREE_FRAME`]
//!   first takes its announced size from a budget shared by every connection
//!   (`--request-buffer-bytes`). While the budget is short the request waits
//!   unread (its bytes stay in the kernel), within that same
//!   `--frame-timeout`, and is then refused.
//! - **Requests in flight** (read, not yet fully answered): at most
//!   `--max-in-flight`; past it the session reads nothing more.
//! - **Answers waiting to be sent** are counted from the moment they are
//!   queued until the writer takes them ([`Backlog`]). Over
//!   `--reply-buffer-bytes` the session reads no further requests, and if the
//!   client then takes nothing from the socket for [`STALL_GRACE`], it is
//!   dropped: what was queued for it is freed, and one last error frame
//!   says why.
//! - **Idle**: with nothing in flight, a connection that sends nothing for
//!   `--idle-timeout` is closed with an error frame saying so. A connection
//!   waiting for an answer (a `wait`, a `--follow`) is never idle.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BufMut, BytesMut};
use mayfly_protocol::{
    ErrorKind, ErrorResponse, EventsRequest, FrameError, Hello, HelloReply, LogsRequest,
    MAX_FRAME_LEN, READ_AHEAD, Request, Response, decode_payload, encode_frame, encode_payload,
    frame_len,
};
use serde::de::DeserializeOwned;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::net::unix::{ReadHalf, WriteHalf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::peer::{PeerPolicy, admit};
use crate::reply::{Backlog, IpcList, IpcWait, Outgoing, Reply};
use crate::service::{EventItem, ListQuery, Mayfly, ServiceResult};
use crate::settings::Settings;

/// How many frames a streaming task (logs, events) may have waiting for the
/// socket. A slow client makes the task wait, never the daemon: `logs` reads
/// the file more slowly, `events` misses events and is told so.
const STREAM_BACKLOG: usize = 16;

/// Requests up to this size are read without taking from the shared
/// budget (`--request-buffer-bytes`): every ordinary request is far
/// smaller, and all connections together can hold only
/// `--max-connections` times this much of them.
pub const FREE_FRAME: usize = 64 * 1024;

/// How long a client whose unread answers are over `--reply-buffer-bytes`
/// may take nothing from the socket before it is dropped.
pub const STALL_GRACE: Duration = Duration::from_secs(1);

/// The room a connection's read buffer starts with.
const READ_BUFFER: usize = 8 * 1024;

/// How much the writer gathers before it writes, when more is ready.
const WRITE_CHUNK: usize = 64 * 1024;

/// What bounds one connection (see the module documentation).
#[derive(Debug, Clone, Copy)]
pub struct SessionLimits {
    /// How long a new connection has to send its hello.
    pub handshake_timeout: Duration,
    /// How long a connection with nothing in flight may send nothing.
    pub idle_timeout: Duration,
    /// How long a request may take to arrive once its first byte has.
    pub frame_timeout: Duration,
    /// Requests read and not yet answered, at most.
    pub max_in_flight: usize,
    /// Bytes of answers queued and not yet sent, over which no further
    /// request is read (and a client that reads nothing is dropped).
    pub reply_buffer_bytes: usize,
}

impl SessionLimits {
    /// The limits `settings` ask for.
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            handshake_timeout: settings.handshake_timeout,
            idle_timeout: settings.idle_timeout,
            frame_timeout: settings.frame_timeout,
            max_in_flight: settings.max_in_flight.max(1),
            reply_buffer_bytes: usize::try_from(settings.reply_buffer_bytes.0)
                .unwrap_or(usize::MAX),
        }
    }
}

/// The budget shared by every connection for requests larger than
/// [`FREE_FRAME`] on their way in: one permit per byte.
pub fn request_budget(bytes: usize) -> Arc<Semaphore> {
    Arc::new(Semaphore::new(
        bytes.clamp(4 + MAX_FRAME_LEN, Semaphore::MAX_PERMITS),
    ))
}

/// One answer of the service, as the one frame it becomes.
type AnswerFrame = Pin<Box<dyn Future<Output = Response> + Send>>;

/// One request's response frames, in the order the writer must send them.
enum Responses {
    /// One frame, once the service answers (the answer itself is small:
    /// what bounds these is `--max-in-flight`).
    Answer(Option<AnswerFrame>),
    /// Frames of a listing or a wait, made by the driver, which never
    /// waits; they count in the connection's [`Backlog`].
    Unbounded(mpsc::UnboundedReceiver<Outgoing>),
    /// Frames of a stream that waits for the socket (its channel is the
    /// bound).
    Bounded(mpsc::Receiver<Response>),
}

impl std::fmt::Debug for Responses {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Responses::Answer(_) => "Answer",
            Responses::Unbounded(_) => "Unbounded",
            Responses::Bounded(_) => "Bounded",
        })
    }
}

impl Responses {
    /// The next frame, or `None` when the request is fully answered.
    async fn recv(&mut self) -> Option<Outgoing> {
        match self {
            Responses::Answer(answer) => match answer.take() {
                Some(answer) => Some(Outgoing::Response(answer.await)),
                None => None,
            },
            Responses::Unbounded(rx) => rx.recv().await,
            Responses::Bounded(rx) => rx.recv().await.map(Outgoing::Response),
        }
    }

    /// The next frame if one is waiting already.
    fn try_recv(&mut self) -> Option<Outgoing> {
        match self {
            Responses::Answer(_) => None,
            Responses::Unbounded(rx) => rx.try_recv().ok(),
            Responses::Bounded(rx) => rx.try_recv().ok().map(Outgoing::Response),
        }
    }

    /// True when its frames were counted in the backlog when queued.
    fn counted(&self) -> bool {
        matches!(self, Responses::Unbounded(_))
    }
}

/// A request the writer answers next: its frames, plus what the IPC metrics
/// need once its last frame is written.
#[derive(Debug)]
struct Pending {
    /// Its response frames.
    responses: Responses,
    /// The request's kind (`"invalid"` for an undecodable frame); `None`
    /// when it is no request (the note that closes an idle connection).
    kind: Option<&'static str>,
    /// When the request was decoded.
    started: std::time::Instant,
}

/// What the reader and the writer share about the requests in flight.
#[derive(Debug, Clone, Copy)]
struct Flight {
    /// Requests read and not yet fully answered (open streams included).
    in_flight: usize,
    /// When the last of them was answered: the connection is idle from then.
    quiet_since: Instant,
}

/// What every session needs from the daemon.
#[derive(Debug, Clone)]
pub struct SessionContext {
    /// The service every request goes to.
    pub mayfly: Mayfly,
    /// Where requests and connections are counted.
    pub metrics: Arc<Metrics>,
    /// What bounds each connection.
    pub limits: SessionLimits,
    /// The budget every connection shares for large requests on their way
    /// in ([`request_budget`]).
    pub request_budget: Arc<Semaphore>,
    /// Who may use the daemon (checked before anything is read).
    pub peers: Arc<PeerPolicy>,
}

/// Why no request could be read.
#[derive(Debug)]
enum ReadError {
    /// The bytes are not a valid frame (or the stream ended inside one).
    Frame(FrameError),
    /// The socket failed: the client has gone.
    Io(std::io::Error),
    /// Nothing in flight and nothing sent for `--idle-timeout`.
    Idle,
    /// A request did not arrive whole within `--frame-timeout`.
    Stalled,
    /// The shared budget for large requests did not have room for this one
    /// within `--frame-timeout`.
    Busy,
}

impl ReadError {
    /// What the client is told before the connection closes; `None` when
    /// there is nobody left to tell.
    fn refusal(&self, limits: &SessionLimits) -> Option<ErrorResponse> {
        let message = match self {
            ReadError::Io(_) | ReadError::Frame(FrameError::Truncated | FrameError::Io(_)) => {
                return None;
            }
            ReadError::Frame(e) => format!("{e}; closing the connection"),
            ReadError::Idle => format!(
                "no request for {}; closing the idle connection (the daemon's --idle-timeout)",
                humantime::format_duration(limits.idle_timeout)
            ),
            ReadError::Stalled => format!(
                "a request did not arrive whole within {} of its first byte (the daemon's \
                 --frame-timeout); closing the connection",
                humantime::format_duration(limits.frame_timeout)
            ),
            ReadError::Busy => format!(
                "the daemon is receiving too many large requests at once (more than its \
                 --request-buffer-bytes) and this one waited {} for room; send it again later",
                humantime::format_duration(limits.frame_timeout)
            ),
        };
        Some(ErrorResponse::new(ErrorKind::Protocol, message))
    }
}

/// Reads frames off a connection within its limits (see the module
/// documentation): the buffer grows with what arrives, a large request
/// first takes room from the shared budget, and a request must arrive
/// whole within `--frame-timeout` of its first byte.
struct FrameReader<'a> {
    /// The socket's reading half.
    io: ReadHalf<'a>,
    /// Bytes read and not yet decoded.
    buf: BytesMut,
    /// When the first byte of the frame now arriving came.
    started: Option<Instant>,
    /// The shared budget.
    budget: Arc<Semaphore>,
    /// What the frame now arriving holds of the budget.
    permit: Option<OwnedSemaphorePermit>,
    /// `--frame-timeout`.
    frame_timeout: Duration,
}

impl<'a> FrameReader<'a> {
    /// A reader over `io`.
    fn new(io: ReadHalf<'a>, budget: Arc<Semaphore>, frame_timeout: Duration) -> Self {
        Self {
            io,
            buf: BytesMut::with_capacity(READ_BUFFER),
            started: None,
            budget,
            permit: None,
            frame_timeout,
        }
    }

    /// The next frame, or `None` at a clean end of stream. Between frames
    /// (nothing of the next one has arrived), `idle` expiring is
    /// [`ReadError::Idle`]; `None` never expires.
    async fn next<T: DeserializeOwned>(
        &mut self,
        mut idle: Option<&mut IdleClock>,
    ) -> Result<Option<T>, ReadError> {
        loop {
            if let Some(frame) = self.take_frame()? {
                return Ok(Some(frame));
            }
            self.make_room().await?;
            let read = if self.buf.is_empty() {
                tokio::select! {
                    read = self.io.read_buf(&mut self.buf) => read,
                    () = idle_expired(idle.as_deref_mut()) => return Err(ReadError::Idle),
                }
            } else {
                let deadline = self.deadline();
                tokio::select! {
                    read = self.io.read_buf(&mut self.buf) => read,
                    () = tokio::time::sleep_until(deadline) => return Err(ReadError::Stalled),
                }
            };
            match read {
                Ok(0) if self.buf.is_empty() => return Ok(None),
                Ok(0) => return Err(ReadError::Frame(FrameError::Truncated)),
                Ok(_) => {
                    self.started.get_or_insert_with(Instant::now);
                }
                Err(e) => return Err(ReadError::Io(e)),
            }
        }
    }

    /// When the frame now arriving must be complete.
    fn deadline(&self) -> Instant {
        self.started.unwrap_or_else(Instant::now) + self.frame_timeout
    }

    /// The announced length of the frame at the front of the buffer, once
    /// its prefix is there.
    fn announced(&self) -> Result<Option<usize>, ReadError> {
        if self.buf.len() < 4 {
            return Ok(None);
        }
        let prefix = [self.buf[0], self.buf[1], self.buf[2], self.buf[3]];
        frame_len(prefix).map(Some).map_err(ReadError::Frame)
    }

    /// Decodes the frame at the front of the buffer if it has arrived whole.
    fn take_frame<T: DeserializeOwned>(&mut self) -> Result<Option<T>, ReadError> {
        let Some(len) = self.announced()? else {
            return Ok(None);
        };
        if self.buf.len() < 4 + len {
            return Ok(None);
        }
        self.buf.advance(4);
        let payload = self.buf.split_to(len);
        let decoded = decode_payload(&payload).map_err(ReadError::Frame);
        drop(payload);
        self.permit = None;
        if len > READ_AHEAD {
            // Let go of the large frame's buffer rather than keep it for
            // the ordinary requests that follow.
            self.buf = BytesMut::from(&self.buf[..]);
        }
        // What is left is the start of the next frame, already here.
        self.started = (!self.buf.is_empty()).then(Instant::now);
        decoded.map(Some)
    }

    /// Makes room for the next read: a large frame first takes its size
    /// from the shared budget (waiting until its deadline); the buffer is
    /// given at most [`READ_AHEAD`] of room ahead of what has arrived.
    async fn make_room(&mut self) -> Result<(), ReadError> {
        let Some(len) = self.announced()? else {
            self.buf.reserve(READ_BUFFER);
            return Ok(());
        };
        if len > FREE_FRAME && self.permit.is_none() {
            let want = u32::try_from(4 + len).unwrap_or(u32::MAX);
            let acquire = self.budget.clone().acquire_many_owned(want);
            let deadline = self.deadline();
            self.permit = Some(tokio::select! {
                permit = acquire => permit.map_err(|_| ReadError::Busy)?,
                () = tokio::time::sleep_until(deadline) => return Err(ReadError::Busy),
            });
        }
        self.buf.reserve((4 + len - self.buf.len()).min(READ_AHEAD));
        Ok(())
    }
}

/// Tells when a connection has had nothing in flight for `--idle-timeout`.
///
/// One timer for the connection's life, moved only when it fires: a
/// request coming and going costs it nothing.
struct IdleClock {
    /// Fires at the earliest moment the connection could be idle long enough.
    timer: Pin<Box<tokio::time::Sleep>>,
    /// The requests in flight, and since when there were none.
    flight: watch::Receiver<Flight>,
    /// `--idle-timeout`.
    idle: Duration,
}

impl IdleClock {
    /// A clock over `flight`, first looking at `idle` from now.
    fn new(flight: watch::Receiver<Flight>, idle: Duration) -> Self {
        Self {
            timer: Box::pin(tokio::time::sleep(idle)),
            flight,
            idle,
        }
    }

    /// Resolves once nothing has been in flight for the idle timeout.
    /// Cancel-safe: the state lives in the clock.
    async fn expired(&mut self) {
        loop {
            self.timer.as_mut().await;
            let now = Instant::now();
            let flight = *self.flight.borrow();
            let at = if flight.in_flight == 0 {
                flight.quiet_since + self.idle
            } else {
                now + self.idle
            };
            if at <= now {
                return;
            }
            self.timer.as_mut().reset(at);
        }
    }
}

/// Resolves when `clock` has expired; never without one.
async fn idle_expired(clock: Option<&mut IdleClock>) {
    match clock {
        Some(clock) => clock.expired().await,
        None => std::future::pending().await,
    }
}

/// Why the writer stopped.
#[derive(Debug)]
enum WriteFailed {
    /// The socket failed: the client has gone.
    Gone,
    /// The client took nothing for [`STALL_GRACE`] while its unread
    /// answers were over the limit.
    Stalled,
}

/// The writing half of a session: frames are gathered in `out` and written
/// when nothing more is ready (or [`WRITE_CHUNK`] has gathered).
struct Writer<'a> {
    /// The socket's writing half.
    io: WriteHalf<'a>,
    /// Encoded frames not yet written.
    out: BytesMut,
    /// The connection's unsent answers.
    backlog: Arc<Backlog>,
}

impl Writer<'_> {
    /// Appends one frame to `out`. A counted frame leaves the backlog here:
    /// what `out` holds is bounded by the writes themselves.
    fn push(&mut self, item: Outgoing, counted: bool) {
        let size = match item {
            Outgoing::Frame(frame) => {
                self.out.extend_from_slice(&frame);
                frame.len()
            }
            Outgoing::Response(response) => match encode_payload(&response) {
                Ok(payload) => {
                    self.put_payload(&payload);
                    4 + payload.len()
                }
                Err(e) => {
                    tracing::warn!(error = %e, "an answer could not be encoded");
                    let refusal = Response::Error(ErrorResponse::new(
                        ErrorKind::Internal,
                        format!(
                            "the answer does not fit in one message ({e}); ask for less at once"
                        ),
                    ));
                    if let Ok(payload) = encode_payload(&refusal) {
                        self.put_payload(&payload);
                    }
                    mayfly_protocol::frame_size(&response)
                }
            },
            Outgoing::More(_) => 0,
        };
        if counted {
            self.backlog.taken(size);
        }
    }

    /// Appends a payload with its length prefix.
    fn put_payload(&mut self, payload: &[u8]) {
        self.out.reserve(4 + payload.len());
        // encode_payload bounded it to MAX_FRAME_LEN, which fits in u32.
        self.out.put_u32(payload.len() as u32);
        self.out.put_slice(payload);
    }

    /// Writes everything in `out`. A client that takes nothing for
    /// [`STALL_GRACE`] while its unread answers are over the limit is given
    /// up on; otherwise this waits for the socket as long as it takes.
    async fn flush(&mut self) -> Result<(), WriteFailed> {
        while !self.out.is_empty() {
            let written = if self.backlog.is_over() {
                tokio::select! {
                    written = self.io.write(&self.out) => written,
                    () = tokio::time::sleep(STALL_GRACE) => {
                        if self.backlog.is_over() {
                            return Err(WriteFailed::Stalled);
                        }
                        continue;
                    }
                }
            } else {
                tokio::select! {
                    written = self.io.write(&self.out) => written,
                    () = self.backlog.wait_overflowed() => continue,
                }
            };
            match written {
                Ok(0) | Err(_) => return Err(WriteFailed::Gone),
                Ok(n) => self.out.advance(n),
            }
        }
        Ok(())
    }
}

/// Serves one connection until the client hangs up, sends bad input, hits
/// a limit, or the daemon shuts down (requests in flight are still
/// answered).
pub async fn serve(stream: UnixStream, ctx: SessionContext, shutdown: CancellationToken) {
    let limits = ctx.limits;
    let Some(mut stream) = admit(stream, &ctx.peers, &ctx.metrics, limits.handshake_timeout).await
    else {
        return;
    };
    let (read_half, mut write_half) = stream.split();
    let mut reader = FrameReader::new(read_half, ctx.request_budget.clone(), limits.frame_timeout);
    let first = tokio::time::timeout(limits.handshake_timeout, reader.next::<Hello>(None)).await;
    let reply = match first {
        Ok(Ok(Some(hello))) => hello.negotiate(),
        Ok(Ok(None) | Err(ReadError::Io(_))) => return,
        Ok(Err(ReadError::Frame(e))) => HelloReply::Rejected {
            reason: format!("bad handshake: {e}"),
        },
        Ok(Err(_)) | Err(_) => HelloReply::Rejected {
            reason: format!(
                "no handshake within {} (the daemon's --handshake-timeout)",
                humantime::format_duration(limits.handshake_timeout)
            ),
        },
    };
    let accepted = matches!(reply, HelloReply::Accepted { .. });
    if let HelloReply::Rejected { reason } = &reply {
        tracing::debug!(%reason, "handshake refused");
    }
    let Ok(frame) = encode_frame(&reply) else {
        return;
    };
    if write_half.write_all(&frame).await.is_err() || !accepted {
        return;
    }

    let backlog = Backlog::new(limits.reply_buffer_bytes);
    let flight = watch::Sender::new(Flight {
        in_flight: 0,
        quiet_since: Instant::now(),
    });
    let (order_tx, order_rx) = mpsc::unbounded_channel::<Pending>();
    // Cancelled when the writer gives up on the client: the reader stops.
    let dropped = CancellationToken::new();
    let writer = Writer {
        io: write_half,
        out: BytesMut::new(),
        backlog: backlog.clone(),
    };
    let reading = read_requests(
        reader, &ctx, &backlog, &flight, order_tx, &shutdown, &dropped,
    );
    let writing = write_answers(writer, order_rx, &ctx, &flight, &dropped);
    tokio::join!(reading, writing);
}

/// The reading half of a session: reads requests while there is room for
/// them, and hands each to the driver (or to a streaming task), queueing
/// its answer for the writer in request order.
async fn read_requests(
    mut reader: FrameReader<'_>,
    ctx: &SessionContext,
    backlog: &Arc<Backlog>,
    flight: &watch::Sender<Flight>,
    order_tx: mpsc::UnboundedSender<Pending>,
    shutdown: &CancellationToken,
    dropped: &CancellationToken,
) {
    let limits = ctx.limits;
    let mut room = flight.subscribe();
    let mut idle = IdleClock::new(flight.subscribe(), limits.idle_timeout);
    let queue = |responses: Responses, kind: Option<&'static str>| {
        flight.send_modify(|f| f.in_flight += 1);
        let pending = Pending {
            responses,
            kind,
            started: std::time::Instant::now(),
        };
        order_tx.send(pending).is_ok()
    };
    loop {
        // Read no further request while the client has too many in flight
        // or leaves too much unread.
        if !wait_for_room(&mut room, backlog, &limits, shutdown, dropped).await {
            return;
        }
        let frame = tokio::select! {
            biased;
            () = shutdown.cancelled() => return,
            () = dropped.cancelled() => return,
            frame = reader.next::<Request>(Some(&mut idle)) => frame,
        };
        let request = match frame {
            Ok(Some(request)) => request,
            Ok(None) => return,
            Err(e) => {
                let Some(refusal) = e.refusal(&limits) else {
                    if let ReadError::Io(e) = &e {
                        tracing::debug!(error = %e, "reading from a client failed");
                    }
                    return;
                };
                match &e {
                    ReadError::Idle => tracing::debug!("closing an idle connection"),
                    _ => tracing::debug!(error = %refusal, "bad frame; closing the connection"),
                }
                let kind = (!matches!(e, ReadError::Idle)).then_some("invalid");
                let (reply, rx) = Reply::counted(backlog.clone());
                let _ = reply.send(Response::Error(refusal).into());
                queue(Responses::Unbounded(rx), kind);
                return;
            }
        };
        // The answers may have piled up while this request was on its way:
        // hold it (one request, already read) until there is room.
        if !wait_for_room(&mut room, backlog, &limits, shutdown, dropped).await {
            return;
        }
        let kind = Some(request.kind());
        let responses = dispatch(request, ctx, backlog).await;
        if !queue(responses, kind) {
            return;
        }
    }
}

/// Hands `request` to the service, in order, and returns where its
/// responses will come from: a stream for `logs` and `events`, the frames of
/// a listing or a wait, or the one frame of any other request.
async fn dispatch(request: Request, ctx: &SessionContext, backlog: &Arc<Backlog>) -> Responses {
    match request {
        Request::Logs(req) => {
            let (tx, rx) = mpsc::channel(STREAM_BACKLOG);
            tokio::spawn(serve_logs(req, ctx.mayfly.clone(), tx));
            Responses::Bounded(rx)
        }
        Request::Events(req) => {
            let (tx, rx) = mpsc::channel(STREAM_BACKLOG);
            tokio::spawn(serve_events(req, ctx.mayfly.clone(), tx));
            Responses::Bounded(rx)
        }
        Request::Status(req) => {
            let (reply, rx) = Reply::counted(backlog.clone());
            let query = ListQuery {
                ids: req.ids,
                ..ListQuery::default()
            };
            ctx.mayfly
                .list_into(query, false, Box::new(IpcList(reply)))
                .await;
            Responses::Unbounded(rx)
        }
        Request::DumpState => {
            let (reply, rx) = Reply::counted(backlog.clone());
            ctx.mayfly
                .list_into(ListQuery::default(), true, Box::new(IpcList(reply)))
                .await;
            Responses::Unbounded(rx)
        }
        Request::Wait(req) => {
            let (reply, rx) = Reply::counted(backlog.clone());
            ctx.mayfly
                .wait_into(req.ids, Arc::new(IpcWait(reply)))
                .await;
            Responses::Unbounded(rx)
        }
        request => Responses::Answer(Some(answer(&ctx.mayfly, request).await)),
    }
}

/// Hands a request that is answered by one frame to the service, in order,
/// and returns the frame its answer becomes.
async fn answer(mayfly: &Mayfly, request: Request) -> AnswerFrame {
    /// The frame of a result: `ok`'s, or the error.
    fn frame<T>(result: ServiceResult<T>, ok: impl FnOnce(T) -> Response) -> Response {
        result.map_or_else(Response::Error, ok)
    }
    match request {
        Request::Submit(req) => {
            let answer = mayfly.submit(req.spec).await;
            Box::pin(async move { frame(answer.await, |id| Response::Submitted { id }) })
        }
        Request::SubmitBatch(req) => {
            let answer = mayfly.submit_batch(req.specs).await;
            Box::pin(async move { frame(answer.await, |ids| Response::SubmittedBatch { ids }) })
        }
        Request::Cancel(req) => {
            let answer = mayfly.cancel(req.ids).await;
            Box::pin(async move { frame(answer.await, Response::Cancelled) })
        }
        Request::QueueSet(req) => {
            let answer = mayfly.queue_set(req).await;
            Box::pin(async move { frame(answer.await, Response::Queues) })
        }
        Request::QueueRemove(req) => {
            let answer = mayfly.queue_remove(req.name).await;
            Box::pin(async move { frame(answer.await, Response::Queues) })
        }
        Request::QueueList => {
            let answer = mayfly.queues().await;
            Box::pin(async move { frame(answer.await, Response::Queues) })
        }
        Request::Pause(req) => {
            let answer = mayfly.pause(req).await;
            Box::pin(async move { frame(answer.await, Response::Queues) })
        }
        Request::Restart(req) => {
            let answer = mayfly.restart(req.ids).await;
            Box::pin(async move { frame(answer.await, Response::Restarted) })
        }
        Request::Clean(req) => {
            let answer = mayfly.clean(req).await;
            Box::pin(async move { frame(answer.await, |ids| Response::Cleaned { ids }) })
        }
        Request::Edit(req) => {
            let answer = mayfly.edit(req).await;
            Box::pin(async move { frame(answer.await, |job| Response::Jobs(vec![job])) })
        }
        Request::Progress(req) => {
            let answer = mayfly.progress(req.id, req.text).await;
            Box::pin(async move { frame(answer.await, |()| Response::Ok) })
        }
        Request::Shutdown(req) => {
            let timeout = req.timeout_ms.map(Duration::from_millis);
            let reason = "requested by a client (mayflyctl shutdown)".to_string();
            let answer = mayfly.shutdown(timeout, reason).await;
            Box::pin(async move { frame(answer.await, |()| Response::ShuttingDown) })
        }
        // Streams are served by the reader; reaching here is a bug.
        Request::Status(_)
        | Request::DumpState
        | Request::Wait(_)
        | Request::Logs(_)
        | Request::Events(_) => Box::pin(async {
            Response::Error(ErrorResponse::new(
                ErrorKind::Internal,
                "a streaming request reached the one-frame path",
            ))
        }),
    }
}

/// Waits until the connection has room for another request: fewer than
/// `--max-in-flight` in flight and its unread answers within
/// `--reply-buffer-bytes`. False when the session is ending instead.
async fn wait_for_room(
    room: &mut watch::Receiver<Flight>,
    backlog: &Backlog,
    limits: &SessionLimits,
    shutdown: &CancellationToken,
    dropped: &CancellationToken,
) -> bool {
    loop {
        let full = room.borrow_and_update().in_flight >= limits.max_in_flight;
        if !full && !backlog.is_over() {
            return true;
        }
        tokio::select! {
            biased;
            () = shutdown.cancelled() => return false,
            () = dropped.cancelled() => return false,
            changed = room.changed() => if changed.is_err() { return false },
            () = backlog.wait_drained(), if !full => {}
        }
    }
}

/// The writing half of a session: writes each request's answer in request
/// order, asks the driver for a listing's next chunk when the previous one
/// has gone, and counts each request once its last frame is written.
async fn write_answers(
    mut writer: Writer<'_>,
    mut order_rx: mpsc::UnboundedReceiver<Pending>,
    ctx: &SessionContext,
    flight: &watch::Sender<Flight>,
    dropped: &CancellationToken,
) {
    while let Some(pending) = order_rx.recv().await {
        let Pending {
            mut responses,
            kind,
            started,
        } = pending;
        let counted = responses.counted();
        let mut ok = true;
        // Frames that are already waiting when one is written (several jobs
        // of a `wait` ending together) go out in the same write: one system
        // call, and one wakeup of the client, for all of them.
        let outcome = async {
            loop {
                let item = match responses.try_recv() {
                    Some(item) => item,
                    None => {
                        writer.flush().await?;
                        match responses.recv().await {
                            Some(item) => item,
                            None => return Ok(()),
                        }
                    }
                };
                match item {
                    Outgoing::More(cursor) => {
                        // The next page is made once this one has left.
                        writer.flush().await?;
                        ctx.mayfly.list_more(cursor);
                    }
                    item => {
                        ok &= !matches!(item, Outgoing::Response(Response::Error(_)));
                        writer.push(item, counted);
                        if writer.out.len() >= WRITE_CHUNK {
                            writer.flush().await?;
                        }
                    }
                }
            }
        }
        .await;
        flight.send_modify(|f| {
            f.in_flight -= 1;
            if f.in_flight == 0 {
                f.quiet_since = Instant::now();
            }
        });
        if let Some(kind) = kind {
            ctx.metrics
                .ipc_request(kind, ok && outcome.is_ok(), started.elapsed());
        }
        match outcome {
            Ok(()) => {}
            Err(WriteFailed::Gone) => return,
            Err(WriteFailed::Stalled) => {
                let unread = writer.backlog.bytes();
                tracing::warn!(
                    unread_bytes = unread,
                    limit = writer.backlog.limit(),
                    "dropping a client that stopped reading its answers"
                );
                // Free what was queued for it, stop reading, and leave one
                // last frame that says why (for a client that reads again
                // before the idle timeout).
                dropped.cancel();
                drop(responses);
                drop(order_rx);
                let note = Response::Error(ErrorResponse::new(
                    ErrorKind::Protocol,
                    format!(
                        "dropped: more than {} bytes of answers were waiting and this client \
                         read none of them for {} (the daemon's --reply-buffer-bytes); read \
                         answers as they come",
                        writer.backlog.limit(),
                        humantime::format_duration(STALL_GRACE)
                    ),
                ));
                writer.push(note.into(), false);
                let last = async {
                    while !writer.out.is_empty() {
                        match writer.io.write(&writer.out).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => writer.out.advance(n),
                        }
                    }
                };
                let _ = tokio::time::timeout(ctx.limits.idle_timeout, last).await;
                return;
            }
        }
    }
    let _ = writer.flush().await;
}

/// Serves `logs` from the service's stream of the job's output.
async fn serve_logs(req: LogsRequest, mayfly: Mayfly, out: mpsc::Sender<Response>) {
    let mut chunks = mayfly.logs(req.id, req.stream, req.follow).await;
    loop {
        let response = tokio::select! {
            chunk = chunks.recv() => match chunk {
                Some(Ok(bytes)) => Response::LogChunk(bytes),
                Some(Err(e)) => {
                    let _ = out.send(Response::Error(e)).await;
                    return;
                }
                None => break,
            },
            () = out.closed() => return,
        };
        if out.send(response).await.is_err() {
            return;
        }
    }
    let _ = out.send(Response::End).await;
}

/// Serves `events` from the service's activity stream.
async fn serve_events(req: EventsRequest, mayfly: Mayfly, out: mpsc::Sender<Response>) {
    let mut events = mayfly.events(req.follow).await;
    loop {
        let response = tokio::select! {
            item = events.recv() => match item {
                Some(Ok(EventItem::Event(record))) => Response::Event(record),
                Some(Ok(EventItem::Missed(count))) => Response::EventsMissed { count },
                Some(Err(e)) => {
                    let _ = out.send(Response::Error(e)).await;
                    return;
                }
                None => break,
            },
            () = out.closed() => return,
        };
        if out.send(response).await.is_err() {
            return;
        }
    }
    let _ = out.send(Response::End).await;
}

#[cfg(test)]
mod tests {
    use futures::{SinkExt, StreamExt};
    use mayfly_protocol::{
        FrameCodec, Hello, HelloReply, JobId, JobSpec, StatusRequest, Timestamp, WaitRequest,
    };
    use tokio_util::codec::Framed;

    use super::*;
    use crate::core::{Core, CoreConfig};
    use crate::driver::InternalMsg;
    use crate::service::{Command, ListCursor, ListRest, NextPage, View};

    /// The longest any step may take.
    const DEADLINE: Duration = Duration::from_secs(20);

    /// Limits that never get in a test's way unless it changes one.
    fn roomy() -> SessionLimits {
        SessionLimits {
            handshake_timeout: DEADLINE,
            idle_timeout: DEADLINE * 10,
            frame_timeout: DEADLINE * 10,
            max_in_flight: 256,
            reply_buffer_bytes: 4 << 20,
        }
    }

    /// A session on one end of a socket pair, with the test playing the
    /// driver: the client's end, the driver's inbox, and the folder the
    /// session takes for job output.
    struct Rig {
        /// The client's end, handshaken.
        client: Framed<UnixStream, FrameCodec<Response, Request>>,
        /// What the session hands to the driver.
        requests: mpsc::Receiver<Command>,
        /// What the session hands to the driver's internal channel.
        internal: mpsc::UnboundedReceiver<InternalMsg>,
        /// The session task.
        session: tokio::task::JoinHandle<()>,
        /// Holds the logs folder.
        _dir: tempfile::TempDir,
    }

    impl Rig {
        /// A session with `limits` and a request budget of `budget` bytes,
        /// its handshake done.
        async fn start(limits: SessionLimits, budget: usize) -> Self {
            Self::start_with_budget(limits, request_budget(budget)).await
        }

        /// [`Rig::start`] sharing `budget` with other sessions.
        async fn start_with_budget(limits: SessionLimits, budget: Arc<Semaphore>) -> Self {
            let (client, server) = UnixStream::pair().expect("a socket pair");
            let (driver, requests) = mpsc::channel(8);
            let (internal_tx, internal) = mpsc::unbounded_channel();
            let dir = tempfile::tempdir().expect("a temp dir");
            let (_, view) = tokio::sync::watch::channel(Arc::new(View::default()));
            let ctx = SessionContext {
                mayfly: Mayfly::new(driver, internal_tx, dir.path().to_path_buf(), view),
                metrics: Metrics::new().expect("metrics"),
                limits,
                request_budget: budget,
                peers: Arc::new(PeerPolicy::for_this_process(Vec::new())),
            };
            let session = tokio::spawn(serve(server, ctx, CancellationToken::new()));
            let mut hello = Framed::new(client, FrameCodec::<HelloReply, Hello>::new());
            hello.send(Hello::current()).await.expect("send hello");
            let reply = tokio::time::timeout(DEADLINE, hello.next()).await;
            assert!(
                matches!(reply, Ok(Some(Ok(HelloReply::Accepted { .. })))),
                "{reply:?}"
            );
            Self {
                client: hello.map_codec(|_| FrameCodec::new()),
                requests,
                internal,
                session,
                _dir: dir,
            }
        }

        /// The next request the session hands to the driver.
        async fn next_request(&mut self) -> Command {
            tokio::time::timeout(DEADLINE, self.requests.recv())
                .await
                .expect("a request in time")
                .expect("the session is running")
        }

        /// The connection's reply channel of the next listing or wait the
        /// session hands to the driver (the test plays the driver on it).
        async fn next_reply(&mut self) -> Reply {
            reply_of(self.next_request().await)
        }

        /// True if the session hands the driver a request within `wait`.
        async fn hands_over_within(&mut self, wait: Duration) -> bool {
            matches!(
                tokio::time::timeout(wait, self.requests.recv()).await,
                Ok(Some(_))
            )
        }

        /// The next frame the client reads, or `None` at the end of the
        /// connection.
        async fn read(&mut self) -> Option<Response> {
            match tokio::time::timeout(DEADLINE, self.client.next())
                .await
                .expect("a frame or the end in time")
            {
                Some(Ok(frame)) => Some(frame),
                Some(Err(_)) | None => None,
            }
        }

        /// Expects the session to end the connection with an error frame
        /// whose message contains `words`.
        async fn expect_closed_with(mut self, words: &str) {
            match self.read().await {
                Some(Response::Error(e)) => assert!(e.message.contains(words), "{e}"),
                other => panic!("expected an error naming {words:?}, got {other:?}"),
            }
            assert!(self.read().await.is_none(), "the connection stays open");
            tokio::time::timeout(DEADLINE, self.session)
                .await
                .expect("the session ends")
                .expect("the session did not panic");
        }
    }

    /// The reply channel behind a listing's or a wait's sink.
    fn reply_of(command: Command) -> Reply {
        match command {
            Command::List { sink, .. } => {
                let sink: Box<dyn std::any::Any> = sink;
                sink.downcast::<IpcList>().expect("the socket's sink").0
            }
            Command::Wait { sink, .. } => {
                let sink: Arc<dyn std::any::Any + Send + Sync> = sink;
                sink.downcast::<IpcWait>()
                    .expect("the socket's sink")
                    .0
                    .clone()
            }
            other => panic!("expected a listing or a wait, got {other:?}"),
        }
    }

    /// A status request for all jobs.
    fn status() -> Request {
        Request::Status(StatusRequest { ids: Vec::new() })
    }

    /// What a job looks like to a client, with id `id`.
    fn job(id: u64) -> mayfly_protocol::JobInfo {
        let mut core = Core::new(CoreConfig::default());
        let spec = JobSpec::new(
            mayfly_protocol::Command::Shell("true".into()),
            "/",
            "default",
            50,
        );
        let event = core.decide_submit(Timestamp(0), spec).expect("a valid job");
        core.apply(&event).expect("the submit applies");
        let info = core.job_info(JobId(1)).expect("the job");
        mayfly_protocol::JobInfo {
            id: JobId(id),
            ..info
        }
    }

    #[tokio::test]
    async fn frames_queued_together_go_out_complete_in_order_and_before_the_next_request() {
        let mut rig = Rig::start(roomy(), 64 << 20).await;
        let ids: Vec<JobId> = (1..=100).map(JobId).collect();
        rig.client
            .feed(Request::Wait(WaitRequest { ids: ids.clone() }))
            .await
            .expect("send wait");
        rig.client.feed(status()).await.expect("send status");
        rig.client.flush().await.expect("flush the pipeline");

        // Play the driver: answer the status first, then every job of the
        // wait at once, with no await in between.
        let wait = rig.next_request().await;
        let status = rig.next_request().await;
        assert!(matches!(wait, Command::Wait { .. }));
        assert!(matches!(status, Command::List { .. }));
        let (wait, status) = (reply_of(wait), reply_of(status));
        status
            .send(Response::Jobs(Vec::new()).into())
            .expect("status");
        status.send(Response::End.into()).expect("status end");
        // The driver lets go of a reply once it is complete.
        drop(status);
        for id in &ids {
            let ended = Response::JobEnded(Box::new(job(id.0)));
            wait.send(ended.into()).expect("job ended");
        }
        wait.send(Response::End.into()).expect("wait end");
        drop(wait);

        let mut frames = Vec::new();
        while frames.len() < ids.len() + 3 {
            frames.push(rig.read().await.expect("a frame"));
        }
        for (frame, id) in frames.iter().zip(&ids) {
            assert!(
                matches!(frame, Response::JobEnded(info) if info.id == *id),
                "expected job {id} to end, got {frame:?}"
            );
        }
        assert!(matches!(frames[ids.len()], Response::End));
        assert!(matches!(&frames[ids.len() + 1], Response::Jobs(jobs) if jobs.is_empty()));
        assert!(matches!(frames[ids.len() + 2], Response::End));

        drop(rig.client);
        tokio::time::timeout(DEADLINE, rig.session)
            .await
            .expect("the session ends when the client hangs up")
            .expect("the session did not panic");
    }

    #[tokio::test]
    async fn a_listing_asks_for_its_next_chunk_only_once_the_last_one_has_left() {
        let mut rig = Rig::start(roomy(), 64 << 20).await;
        rig.client.send(status()).await.expect("send status");
        let listing = rig.next_reply().await;
        let chunk = encode_frame(&Response::Jobs(vec![job(1)])).expect("a chunk");
        listing
            .send(Outgoing::Frame(chunk.clone()))
            .expect("a chunk");
        let cursor = ListCursor {
            sink: Box::new(IpcList(listing.clone())),
            next: NextPage {
                rest: ListRest::After(JobId(1)),
                per_page: 1,
                query: Arc::new(ListQuery::default()),
            },
        };
        listing.send(Outgoing::More(cursor)).expect("more to come");
        assert!(matches!(rig.read().await, Some(Response::Jobs(jobs)) if jobs.len() == 1));
        let more = tokio::time::timeout(DEADLINE, rig.internal.recv())
            .await
            .expect("the session asks for more in time");
        let Some(InternalMsg::ListMore(cursor)) = more else {
            panic!("expected a request for the next chunk, got {more:?}");
        };
        assert!(matches!(cursor.next.rest, ListRest::After(JobId(1))));
        let reply = reply_of(Command::List {
            query: ListQuery::default(),
            header: false,
            sink: cursor.sink,
        });
        reply.send(Outgoing::Frame(chunk)).expect("a chunk");
        reply.send(Response::End.into()).expect("the end");
        drop((reply, listing));
        assert!(matches!(rig.read().await, Some(Response::Jobs(_))));
        assert!(matches!(rig.read().await, Some(Response::End)));
    }

    #[tokio::test]
    async fn past_max_in_flight_no_further_request_is_read() {
        let limits = SessionLimits {
            max_in_flight: 2,
            ..roomy()
        };
        let mut rig = Rig::start(limits, 64 << 20).await;
        for _ in 0..3 {
            rig.client.feed(status()).await.expect("send");
        }
        rig.client.flush().await.expect("flush");
        let first = rig.next_reply().await;
        let _second = rig.next_request().await;
        assert!(
            !rig.hands_over_within(Duration::from_millis(300)).await,
            "a third request was read with two in flight"
        );
        first.send(Response::End.into()).expect("answer");
        drop(first);
        assert!(matches!(rig.read().await, Some(Response::End)));
        assert!(rig.hands_over_within(DEADLINE).await, "the third is read");
    }

    #[tokio::test]
    async fn over_the_reply_buffer_no_request_is_read_and_a_client_that_reads_nothing_is_dropped() {
        let limits = SessionLimits {
            reply_buffer_bytes: 64 * 1024,
            ..roomy()
        };
        let mut rig = Rig::start(limits, 64 << 20).await;
        rig.client.feed(status()).await.expect("send");
        rig.client.feed(status()).await.expect("send");
        rig.client.flush().await.expect("flush");
        let first = rig.next_reply().await;
        let _second = rig.next_request().await;
        // Far more than the socket holds, and nobody reads.
        let chunk = encode_frame(&Response::LogChunk(vec![0; 1 << 20])).expect("a frame");
        for _ in 0..8 {
            first.send(Outgoing::Frame(chunk.clone())).expect("queued");
        }
        rig.client.send(status()).await.expect("send a third");
        assert!(
            !rig.hands_over_within(Duration::from_millis(300)).await,
            "a request was read with 8 MiB unread"
        );
        // The client reads nothing: within the grace (and some), the
        // session gives up, frees what was queued and closes.
        let ended = tokio::time::timeout(STALL_GRACE * 10, async {
            while !first.is_closed() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(ended.is_ok(), "the stalled client was not dropped");
        // What the client finds when it reads again: what had reached the
        // socket, then the reason, then the end.
        let mut last = None;
        while let Some(frame) = rig.read().await {
            last = Some(frame);
        }
        match last {
            Some(Response::Error(e)) => assert!(e.message.contains("--reply-buffer-bytes"), "{e}"),
            other => panic!("expected the reason last, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_slow_reader_over_the_reply_buffer_is_not_dropped() {
        let limits = SessionLimits {
            reply_buffer_bytes: 64 * 1024,
            ..roomy()
        };
        let mut rig = Rig::start(limits, 64 << 20).await;
        rig.client.send(status()).await.expect("send");
        let listing = rig.next_reply().await;
        let chunk = encode_frame(&Response::LogChunk(vec![0; 256 * 1024])).expect("a frame");
        for _ in 0..16 {
            listing
                .send(Outgoing::Frame(chunk.clone()))
                .expect("queued");
        }
        listing.send(Response::End.into()).expect("the end");
        drop(listing);
        // Read it all, pausing less than the grace between frames.
        for _ in 0..16 {
            assert!(matches!(rig.read().await, Some(Response::LogChunk(_))));
            tokio::time::sleep(STALL_GRACE / 4).await;
        }
        assert!(matches!(rig.read().await, Some(Response::End)));
    }

    #[tokio::test]
    async fn an_idle_connection_is_closed_but_one_waiting_for_an_answer_is_not() {
        let limits = SessionLimits {
            idle_timeout: Duration::from_millis(200),
            ..roomy()
        };
        let mut rig = Rig::start(limits, 64 << 20).await;
        rig.client.send(status()).await.expect("send");
        let waiting = rig.next_reply().await;
        // In flight for several idle timeouts: not idle.
        tokio::time::sleep(Duration::from_millis(800)).await;
        waiting.send(Response::End.into()).expect("answer");
        drop(waiting);
        assert!(matches!(rig.read().await, Some(Response::End)));
        let since = std::time::Instant::now();
        rig.expect_closed_with("--idle-timeout").await;
        assert!(since.elapsed() >= Duration::from_millis(150));
    }

    #[tokio::test]
    async fn a_request_that_stops_halfway_is_refused_after_the_frame_timeout() {
        let limits = SessionLimits {
            frame_timeout: Duration::from_millis(300),
            ..roomy()
        };
        let mut rig = Rig::start(limits, 64 << 20).await;
        let frame = encode_frame(&status()).expect("a frame");
        let stream = rig.client.get_mut();
        stream.write_all(&frame[..3]).await.expect("a piece");
        rig.expect_closed_with("--frame-timeout").await;
    }

    #[tokio::test]
    async fn a_large_request_waits_for_the_shared_budget_and_gets_it_when_it_frees() {
        let limits = SessionLimits {
            frame_timeout: Duration::from_millis(600),
            ..roomy()
        };
        let budget = request_budget(4 + MAX_FRAME_LEN);
        let (mut a, mut b) = (
            Rig::start_with_budget(limits, budget.clone()).await,
            Rig::start_with_budget(
                SessionLimits {
                    frame_timeout: DEADLINE,
                    ..limits
                },
                budget,
            )
            .await,
        );
        // A announces the largest request and sends a little of it: it
        // holds the whole budget.
        let announce = (MAX_FRAME_LEN as u32).to_be_bytes();
        a.client
            .get_mut()
            .write_all(&announce)
            .await
            .expect("a prefix");
        a.client
            .get_mut()
            .write_all(&[0; 12])
            .await
            .expect("a little");
        tokio::time::sleep(Duration::from_millis(100)).await;
        // B's request, larger than what is read without the budget (and
        // small enough for the socket to take whole), waits, then goes
        // through once A is refused.
        let ids: Vec<JobId> = (0..25_000).map(JobId).collect();
        let big = Request::Status(StatusRequest { ids });
        let size = mayfly_protocol::frame_size(&big);
        assert!(size > FREE_FRAME && size < 128 * 1024, "{size}");
        b.client.send(big).await.expect("send");
        assert!(
            !b.hands_over_within(Duration::from_millis(200)).await,
            "B was read while A held the budget"
        );
        a.expect_closed_with("--frame-timeout").await;
        assert!(b.hands_over_within(DEADLINE).await, "B was never read");
    }
}
