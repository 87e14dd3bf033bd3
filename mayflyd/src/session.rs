//! One client connection: handshake, then requests in, responses out.
//!
//! The session decodes frames into typed requests and hands them to the
//! driver; it never touches job state. Clients may pipeline: every request
//! gets its own response channel, and the writer drains those channels in
//! request order, so responses leave in the order requests came in even when
//! a later request is answered first. A streaming response simply keeps its
//! channel open until its `End` frame.
//!
//! Responses come from the driver typed ([`Outgoing::Response`]), except the
//! chunks of a listing: the driver encodes those itself, straight from the
//! core's jobs through the protocol crate's `JobsRef`, and the session writes
//! the finished frame ([`Outgoing::Frame`]) as it is. Copying every job into
//! a typed response first was most of the cost of `status` with many jobs.
//!
//! Bad input ends the session with an error frame (after the responses to
//! earlier requests) — never a panic, and never a stall of other sessions.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use futures::{SinkExt, StreamExt};
use mayfly_protocol::{
    ErrorKind, ErrorResponse, EventsRequest, FrameCodec, FrameError, Hello, HelloReply,
    LogsRequest, Request, Response, StatusRequest, WaitRequest,
};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::net::UnixStream;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use tokio_util::codec::{Decoder, Encoder, Framed};
use tokio_util::sync::CancellationToken;

use crate::driver::{ClientMsg, InternalMsg, Outgoing};
use crate::executor::log_path;
use crate::metrics::Metrics;

/// How many requests one connection may have in flight before the session
/// stops reading (backpressure on a client that pipelines without reading).
const MAX_IN_FLIGHT: usize = 256;

/// How often `logs --follow` looks for new output.
const FOLLOW_POLL: Duration = Duration::from_millis(100);

/// Size of one `LogChunk` frame.
const LOG_CHUNK: usize = 64 * 1024;

/// How many frames a streaming task (logs, events) may have waiting for the
/// socket. A slow client makes the task wait, never the daemon: `logs` reads
/// the file more slowly, `events` misses events and is told so.
const STREAM_BACKLOG: usize = 16;

/// One request's response frames, in the order the writer must send them.
#[derive(Debug)]
enum Responses {
    /// Answered by the driver, which never waits (see [`crate::driver::Reply`]).
    Unbounded(mpsc::UnboundedReceiver<Outgoing>),
    /// Answered by a session task that waits for the socket.
    Bounded(mpsc::Receiver<Response>),
}

/// A request the writer answers next: its frames, plus what the IPC metrics
/// need once its last frame is written.
#[derive(Debug)]
struct Pending {
    /// Its response frames.
    responses: Responses,
    /// The request's kind (`"invalid"` for an undecodable frame); `None`
    /// for the end of input, which is no request.
    kind: Option<&'static str>,
    /// When the request was decoded.
    started: Instant,
}

impl Responses {
    /// The next frame, or `None` when the request is fully answered.
    async fn recv(&mut self) -> Option<Outgoing> {
        match self {
            Responses::Unbounded(rx) => rx.recv().await,
            Responses::Bounded(rx) => rx.recv().await.map(Outgoing::Response),
        }
    }

    /// The next frame if one is waiting already.
    fn try_recv(&mut self) -> Option<Outgoing> {
        match self {
            Responses::Unbounded(rx) => rx.try_recv().ok(),
            Responses::Bounded(rx) => rx.try_recv().ok().map(Outgoing::Response),
        }
    }
}

/// What every session needs from the daemon.
#[derive(Debug, Clone)]
pub struct SessionContext {
    /// The driver's command channel.
    pub driver: mpsc::Sender<ClientMsg>,
    /// The driver's internal channel (to subscribe to the activity log).
    pub internal: mpsc::UnboundedSender<InternalMsg>,
    /// Where job output lives.
    pub logs_dir: PathBuf,
    /// How long a new connection has to send its hello.
    pub handshake_timeout: Duration,
    /// Where requests and connections are counted.
    pub metrics: Arc<Metrics>,
}

/// Serves one connection until the client hangs up, sends bad input, or the
/// daemon shuts down (requests in flight are still answered).
pub async fn serve(stream: UnixStream, ctx: SessionContext, shutdown: CancellationToken) {
    let mut hello_framed = Framed::new(stream, FrameCodec::<Hello, HelloReply>::new());
    let first = tokio::time::timeout(ctx.handshake_timeout, hello_framed.next()).await;
    let reply = match first {
        Ok(Some(Ok(hello))) => hello.negotiate(),
        Ok(Some(Err(e))) => HelloReply::Rejected {
            reason: format!("bad handshake: {e}"),
        },
        Ok(None) => return,
        Err(_) => HelloReply::Rejected {
            reason: format!(
                "no handshake within {}",
                humantime::format_duration(ctx.handshake_timeout)
            ),
        },
    };
    let accepted = matches!(reply, HelloReply::Accepted { .. });
    if let HelloReply::Rejected { reason } = &reply {
        tracing::debug!(%reason, "handshake refused");
    }
    if hello_framed.send(reply).await.is_err() || !accepted {
        return;
    }

    let framed = hello_framed.map_codec(|_| SessionCodec(FrameCodec::new()));
    let (mut sink, mut frames) = framed.split();
    let (order_tx, mut order_rx) = mpsc::channel::<Pending>(MAX_IN_FLIGHT);

    // Each request is counted once its last frame is written (or the client
    // has gone): `error` when any of its frames was an error. Frames that
    // are already waiting when one is written (several jobs of a `wait`
    // ending together) go out in the same write: one system call, and one
    // wakeup of the client, for all of them.
    let metrics = ctx.metrics.clone();
    let writer = async move {
        while let Some(pending) = order_rx.recv().await {
            let Pending {
                mut responses,
                kind,
                started,
            } = pending;
            let mut ok = true;
            let mut written = true;
            'frames: while let Some(first) = responses.recv().await {
                let mut next = Some(first);
                while let Some(response) = next {
                    ok &= !matches!(response, Outgoing::Response(Response::Error(_)));
                    if sink.feed(response).await.is_err() {
                        written = false;
                        break 'frames;
                    }
                    next = responses.try_recv();
                }
                if sink.flush().await.is_err() {
                    written = false;
                    break;
                }
            }
            if let Some(kind) = kind {
                metrics.ipc_request(kind, ok, started.elapsed());
            }
            if !written {
                return;
            }
        }
    };

    let reader = async move {
        loop {
            let frame = tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                frame = frames.next() => frame,
            };
            let started = Instant::now();
            let kind = match &frame {
                Some(Ok(request)) => Some(request.kind()),
                Some(Err(_)) => Some("invalid"),
                None => None,
            };
            let streamed = matches!(frame, Some(Ok(Request::Logs(_) | Request::Events(_))));
            let (tx, rx) = mpsc::unbounded_channel();
            let (stream_tx, stream_rx) = mpsc::channel(STREAM_BACKLOG);
            let responses = if streamed {
                Responses::Bounded(stream_rx)
            } else {
                Responses::Unbounded(rx)
            };
            let pending = Pending {
                responses,
                kind,
                started,
            };
            if order_tx.send(pending).await.is_err() {
                break;
            }
            match frame {
                None => break,
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "bad frame; closing the connection");
                    let _ = tx.send(
                        Response::Error(ErrorResponse::new(
                            ErrorKind::Protocol,
                            format!("{e}; closing the connection"),
                        ))
                        .into(),
                    );
                    break;
                }
                Some(Ok(Request::Logs(req))) => {
                    tokio::spawn(serve_logs(req, ctx.clone(), stream_tx));
                }
                Some(Ok(Request::Events(req))) => {
                    tokio::spawn(serve_events(req, ctx.clone(), stream_tx));
                }
                Some(Ok(request)) => {
                    if let Err(refusal) = check_working_dirs(&request) {
                        let _ = tx.send(Response::Error(refusal).into());
                        continue;
                    }
                    if ctx
                        .driver
                        .send(ClientMsg { request, reply: tx })
                        .await
                        .is_err()
                    {
                        break; // the driver has stopped: the daemon is exiting
                    }
                }
            }
        }
    };

    tokio::join!(reader, writer);
}

/// Refuses a submit whose working directory is not a directory: the core
/// checks what it can without I/O (an absolute path), this checks the file
/// system, so the mistake is told at submit, naming the field, instead of
/// failing the job when it starts. Each distinct directory of a batch is
/// looked at once.
fn check_working_dirs(request: &Request) -> Result<(), ErrorResponse> {
    let specs = match request {
        Request::Submit(req) => std::slice::from_ref(&req.spec),
        Request::SubmitBatch(req) => req.specs.as_slice(),
        _ => return Ok(()),
    };
    let mut checked = std::collections::HashSet::new();
    for (line, spec) in specs.iter().enumerate() {
        if !spec.cwd.starts_with('/') || !checked.insert(spec.cwd.as_str()) {
            continue; // the core refuses a relative one, naming it
        }
        let problem = match std::fs::metadata(&spec.cwd) {
            Ok(meta) if meta.is_dir() => continue,
            Ok(_) => "is not a directory".to_string(),
            Err(e) => format!("cannot be used: {e}"),
        };
        let at = if specs.len() > 1 {
            format!("line {}: ", line + 1)
        } else {
            String::new()
        };
        return Err(ErrorResponse::new(
            ErrorKind::BadRequest,
            format!(
                "{at}working directory {} {problem}; give an existing directory with --cwd",
                crate::core::excerpt(&spec.cwd)
            ),
        ));
    }
    Ok(())
}

/// The session's codec: requests in; responses out, and frames the driver
/// encoded itself ([`Outgoing::Frame`]) out as they are.
#[derive(Debug)]
struct SessionCodec(FrameCodec<Request, Response>);

impl Decoder for SessionCodec {
    type Item = Request;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Request>, FrameError> {
        self.0.decode(src)
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Request>, FrameError> {
        self.0.decode_eof(src)
    }
}

impl Encoder<Outgoing> for SessionCodec {
    type Error = FrameError;

    fn encode(&mut self, item: Outgoing, dst: &mut BytesMut) -> Result<(), FrameError> {
        match item {
            Outgoing::Response(response) => self.0.encode(response, dst),
            Outgoing::Frame(frame) => {
                dst.extend_from_slice(&frame);
                Ok(())
            }
        }
    }
}

/// Asks the driver one question and returns its response stream.
async fn ask(ctx: &SessionContext, request: Request) -> Option<mpsc::UnboundedReceiver<Outgoing>> {
    let (tx, rx) = mpsc::unbounded_channel();
    ctx.driver
        .send(ClientMsg { request, reply: tx })
        .await
        .ok()?;
    Some(rx)
}

/// The error a streaming task sends when the driver is gone.
fn shutting_down() -> Response {
    Response::Error(ErrorResponse::new(
        ErrorKind::ShuttingDown,
        "the daemon is shutting down",
    ))
}

/// Serves `logs`: the output file's contents, and with `follow`, what is
/// appended until the job ends.
async fn serve_logs(req: LogsRequest, ctx: SessionContext, out: mpsc::Sender<Response>) {
    // The job must exist; the driver says so (or why not).
    let Some(mut status) = ask(&ctx, Request::Status(StatusRequest { ids: vec![req.id] })).await
    else {
        let _ = out.send(shutting_down()).await;
        return;
    };
    match status.recv().await {
        Some(Outgoing::Response(Response::Error(e))) => {
            let _ = out.send(Response::Error(e)).await;
            return;
        }
        Some(_) => {}
        None => {
            let _ = out.send(shutting_down()).await;
            return;
        }
    }
    let mut ended = if req.follow {
        ask(&ctx, Request::Wait(WaitRequest { ids: vec![req.id] })).await
    } else {
        None
    };
    let path = log_path(&ctx.logs_dir, req.id, req.stream);
    let mut offset = 0u64;
    loop {
        match send_new_output(&path, &mut offset, &out).await {
            Ok(true) => {}
            Ok(false) => return, // the client hung up
            Err(e) => {
                let _ = out
                    .send(Response::Error(ErrorResponse::new(
                        ErrorKind::Internal,
                        format!("cannot read {}: {e}", path.display()),
                    )))
                    .await;
                return;
            }
        }
        let Some(rx) = ended.as_mut() else { break };
        tokio::select! {
            msg = rx.recv() => match msg {
                Some(Outgoing::Response(Response::JobEnded(_))) => {}
                Some(Outgoing::Response(Response::Error(e))) => { let _ = out.send(Response::Error(e)).await; return; }
                // End (or the driver went away): one last read, then stop.
                _ => ended = None,
            },
            () = tokio::time::sleep(FOLLOW_POLL) => {}
            () = out.closed() => return,
        }
    }
    let _ = out.send(Response::End).await;
}

/// Sends whatever `path` holds past `offset`. Returns false if the client
/// has gone. A file that does not exist yet (the job has not started) holds
/// nothing.
async fn send_new_output(
    path: &Path,
    offset: &mut u64,
    out: &mpsc::Sender<Response>,
) -> std::io::Result<bool> {
    let mut file = match tokio::fs::File::open(path).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(true),
        Err(e) => return Err(e),
    };
    file.seek(std::io::SeekFrom::Start(*offset)).await?;
    let mut buf = vec![0u8; LOG_CHUNK];
    loop {
        let n = file.read(&mut buf).await?;
        if n == 0 {
            return Ok(true);
        }
        *offset += n as u64;
        if out
            .send(Response::LogChunk(buf[..n].to_vec()))
            .await
            .is_err()
        {
            return Ok(false);
        }
    }
}

/// Serves `events`: the recent activity, then with `follow` each new event
/// until the daemon stops. A client that reads too slowly is told how many
/// events it missed.
async fn serve_events(req: EventsRequest, ctx: SessionContext, out: mpsc::Sender<Response>) {
    let (tx, rx) = tokio::sync::oneshot::channel();
    if ctx.internal.send(InternalMsg::SubscribeEvents(tx)).is_err() {
        let _ = out.send(shutting_down()).await;
        return;
    }
    let Ok((recent, mut live)) = rx.await else {
        let _ = out.send(shutting_down()).await;
        return;
    };
    for record in recent {
        if out.send(Response::Event(record)).await.is_err() {
            return;
        }
    }
    if req.follow {
        loop {
            let response = tokio::select! {
                next = live.recv() => match next {
                    Ok(record) => Response::Event(record),
                    Err(RecvError::Lagged(count)) => Response::EventsMissed { count },
                    Err(RecvError::Closed) => break,
                },
                () = out.closed() => return,
            };
            if out.send(response).await.is_err() {
                return;
            }
        }
    }
    let _ = out.send(Response::End).await;
}

#[cfg(test)]
mod tests {
    use mayfly_protocol::{Command, Hello, HelloReply, JobId, JobSpec, Timestamp};

    use super::*;
    use crate::core::{Core, CoreConfig};

    /// The longest any step may take.
    const DEADLINE: Duration = Duration::from_secs(20);

    /// What a job looks like to a client, with id `id`.
    fn job(id: u64) -> mayfly_protocol::JobInfo {
        let mut core = Core::new(CoreConfig::default());
        let spec = JobSpec::new(Command::Shell("true".into()), "/", "default", 50);
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
        let (client, server) = UnixStream::pair().expect("a socket pair");
        let (driver, mut requests) = mpsc::channel(8);
        let (internal, _internal) = mpsc::unbounded_channel();
        let dir = tempfile::tempdir().expect("a temp dir");
        let ctx = SessionContext {
            driver,
            internal,
            logs_dir: dir.path().to_path_buf(),
            handshake_timeout: DEADLINE,
            metrics: Metrics::new().expect("metrics"),
        };
        let session = tokio::spawn(serve(server, ctx, CancellationToken::new()));

        let mut hello = Framed::new(client, FrameCodec::<HelloReply, Hello>::new());
        hello.send(Hello::current()).await.expect("send hello");
        let reply = tokio::time::timeout(DEADLINE, hello.next()).await;
        assert!(
            matches!(reply, Ok(Some(Ok(HelloReply::Accepted { .. })))),
            "{reply:?}"
        );
        let mut client = hello.map_codec(|_| FrameCodec::<Response, Request>::new());
        let ids: Vec<JobId> = (1..=100).map(JobId).collect();
        client
            .feed(Request::Wait(WaitRequest { ids: ids.clone() }))
            .await
            .expect("send wait");
        client
            .feed(Request::Status(StatusRequest { ids: Vec::new() }))
            .await
            .expect("send status");
        client.flush().await.expect("flush the pipeline");

        // Play the driver: answer the status first, then every job of the
        // wait at once, with no await in between.
        let mut next = async || {
            tokio::time::timeout(DEADLINE, requests.recv())
                .await
                .expect("a request in time")
                .expect("the session is running")
        };
        let wait = next().await;
        let status = next().await;
        assert!(matches!(wait.request, Request::Wait(_)));
        assert!(matches!(status.request, Request::Status(_)));
        status
            .reply
            .send(Response::Jobs(Vec::new()).into())
            .expect("status");
        status.reply.send(Response::End.into()).expect("status end");
        // The driver lets go of a reply once it is complete.
        drop(status);
        for id in &ids {
            let ended = Response::JobEnded(Box::new(job(id.0)));
            wait.reply.send(ended.into()).expect("job ended");
        }
        wait.reply.send(Response::End.into()).expect("wait end");
        drop(wait);

        let mut frames = Vec::new();
        while frames.len() < ids.len() + 3 {
            let frame = tokio::time::timeout(DEADLINE, client.next())
                .await
                .expect("a frame in time")
                .expect("the session is open")
                .expect("a well-formed frame");
            frames.push(frame);
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

        drop(client);
        tokio::time::timeout(DEADLINE, session)
            .await
            .expect("the session ends when the client hangs up")
            .expect("the session did not panic");
    }
}
