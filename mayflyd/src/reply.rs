//! Where a request's answer goes, and how much of a connection's answers is
//! waiting to be sent.
//!
//! The driver answers into a [`Reply`]: an unbounded channel, because the
//! driver must never wait for a client. What bounds it is the session on
//! the other end: every frame sent into a connection's reply is counted in
//! that connection's [`Backlog`] until its writer takes it, and a session
//! whose backlog is over its limit (`--reply-buffer-bytes`) reads no further
//! requests, so a client that asks and never reads can make the daemon hold
//! only what its requests already in flight produce. Listings, which could
//! be large, go out in chunks the session asks for one at a time
//! ([`Outgoing::More`]), so a listing in flight holds one chunk.
//!
//! Replies made for the daemon's own use ([`Reply::new`]) count nothing.
//!
//! [`IpcList`] and [`IpcWait`] are the service API's sinks of a listing
//! and of a wait, for this door: they put each page (encoded straight from
//! the core's jobs) or report on a connection's [`Reply`].

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use mayfly_protocol::{
    ErrorKind, JobId, JobInfo, JobInfoRef, JobsRef, Response, StateHeader, encode_frame,
};
use tokio::sync::{Notify, mpsc};

use crate::service::{ListCursor, ListSink, NextPage, ServiceError, WaitSink};

/// One frame of an answer on its way to a session.
#[derive(Debug)]
pub enum Outgoing {
    /// A response for the session to encode.
    Response(Response),
    /// A whole frame, length prefix included, that the driver encoded
    /// itself: the chunks of a listing, encoded straight from the core's
    /// jobs (see [`mayfly_protocol::JobsRef`]) rather than copied into
    /// `JobInfo`s for the session to encode and then drop. It decodes as a
    /// [`Response::Jobs`].
    Frame(Vec<u8>),
    /// The listing goes on: the session hands this back to the driver
    /// ([`crate::service::Mayfly::list_more`]) once everything before it has
    /// left for the socket, and the driver answers with the next page.
    /// Never written.
    More(ListCursor),
}

impl From<Response> for Outgoing {
    fn from(response: Response) -> Self {
        Outgoing::Response(response)
    }
}

impl Outgoing {
    /// The bytes this frame takes on the wire (nothing for a [`Outgoing::More`]).
    pub fn wire_size(&self) -> usize {
        match self {
            Outgoing::Response(response) => mayfly_protocol::frame_size(response),
            Outgoing::Frame(frame) => frame.len(),
            Outgoing::More(_) => 0,
        }
    }
}

/// The answers of one connection that are queued and not yet taken by its
/// writer, in bytes, with the limit the session holds it to.
#[derive(Debug)]
pub struct Backlog {
    /// Bytes queued and not yet taken.
    bytes: AtomicUsize,
    /// The connection's limit (`--reply-buffer-bytes`).
    limit: usize,
    /// Woken when the backlog falls back to the limit or below (the reader
    /// may read again).
    drained: Notify,
    /// Woken when the backlog goes over the limit (the writer starts
    /// watching for a client that reads nothing).
    overflowed: Notify,
}

impl Backlog {
    /// An empty backlog held to `limit` bytes.
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            bytes: AtomicUsize::new(0),
            limit,
            drained: Notify::new(),
            overflowed: Notify::new(),
        })
    }

    /// Bytes queued now.
    pub fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Acquire)
    }

    /// The limit.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// True when more than the limit is queued.
    pub fn is_over(&self) -> bool {
        self.bytes() > self.limit
    }

    /// Counts `n` more bytes queued.
    fn queued(&self, n: usize) {
        let before = self.bytes.fetch_add(n, Ordering::AcqRel);
        if before <= self.limit && before + n > self.limit {
            self.overflowed.notify_one();
        }
    }

    /// Counts `n` bytes taken by the writer (or never queued after all).
    pub fn taken(&self, n: usize) {
        let before = self.bytes.fetch_sub(n, Ordering::AcqRel);
        if before > self.limit && before - n <= self.limit {
            self.drained.notify_one();
        }
    }

    /// Returns once the backlog is at most the limit.
    pub async fn wait_drained(&self) {
        while self.is_over() {
            self.drained.notified().await;
        }
    }

    /// Returns once the backlog has gone over the limit (at once if it is).
    pub async fn wait_overflowed(&self) {
        while !self.is_over() {
            self.overflowed.notified().await;
        }
    }
}

/// A reply's receiving end has gone: the client hung up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gone;

/// Where a request's response frames go. Unbounded on purpose: the driver
/// must never wait on a slow client (see the module documentation for what
/// bounds it instead).
#[derive(Debug, Clone)]
pub struct Reply {
    /// The channel to the session (or to whoever asked).
    tx: mpsc::UnboundedSender<Outgoing>,
    /// The connection's backlog, when the frames are counted.
    backlog: Option<Arc<Backlog>>,
}

impl Reply {
    /// A reply that counts nothing, and its receiving end: for the daemon's
    /// own questions to the driver.
    pub fn new() -> (Self, mpsc::UnboundedReceiver<Outgoing>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Self { tx, backlog: None }, rx)
    }

    /// A reply whose frames count in `backlog` until the writer takes them.
    pub fn counted(backlog: Arc<Backlog>) -> (Self, mpsc::UnboundedReceiver<Outgoing>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let reply = Self {
            tx,
            backlog: Some(backlog),
        };
        (reply, rx)
    }

    /// Queues one frame; fails when the receiving end has gone (the client
    /// hung up), which callers ignore. The frame is dropped then: nobody
    /// is left to read it.
    pub fn send(&self, item: Outgoing) -> Result<(), Gone> {
        let Some(backlog) = &self.backlog else {
            return self.tx.send(item).map_err(|_| Gone);
        };
        let size = item.wire_size();
        backlog.queued(size);
        let sent = self.tx.send(item);
        if sent.is_err() {
            backlog.taken(size);
        }
        sent.map_err(|_| Gone)
    }

    /// True once the receiving end has gone.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

/// A listing's pages as `Jobs` frames on a connection (see
/// [`crate::service::ListSink`]): encoded here, straight from the core's
/// borrowed jobs, rather than copied into `JobInfo`s for the session to
/// encode and then drop.
#[derive(Debug)]
pub struct IpcList(pub Reply);

impl ListSink for IpcList {
    fn header(&mut self, header: StateHeader) {
        let _ = self.0.send(Response::State(header).into());
    }

    fn page(&mut self, jobs: &[JobInfoRef<'_>]) -> Option<usize> {
        send_jobs(&self.0, jobs)
    }

    fn park(self: Box<Self>, next: NextPage) {
        let reply = self.0.clone();
        let _ = reply.send(Outgoing::More(ListCursor { sink: self, next }));
    }

    fn end(&mut self) {
        let _ = self.0.send(Response::End.into());
    }

    fn error(&mut self, error: ServiceError) {
        let _ = self.0.send(Response::Error(error).into());
    }

    fn is_closed(&self) -> bool {
        self.0.is_closed()
    }
}

/// Sends `jobs` as one `Jobs` frame (nothing for no jobs). A page too large
/// for one frame goes out in halves; a single job too large for a frame
/// ends the stream with an error. Returns the bytes sent, or `None` when
/// the stream has ended.
fn send_jobs(reply: &Reply, jobs: &[JobInfoRef<'_>]) -> Option<usize> {
    if jobs.is_empty() {
        return Some(0);
    }
    match encode_frame(&JobsRef(jobs)) {
        Ok(frame) => {
            let len = frame.len();
            let _ = reply.send(Outgoing::Frame(frame));
            Some(len)
        }
        Err(_) if jobs.len() > 1 => {
            let (first, second) = jobs.split_at(jobs.len() / 2);
            Some(send_jobs(reply, first)? + send_jobs(reply, second)?)
        }
        Err(e) => {
            let id = jobs.first().map_or(JobId(0), |job| job.id);
            let _ = reply.send(
                Response::Error(ServiceError::new(
                    ErrorKind::Internal,
                    format!("job {id} cannot be listed: {e}"),
                ))
                .into(),
            );
            None
        }
    }
}

/// A wait's reports as `JobEnded` frames on a connection, then `End`.
#[derive(Debug)]
pub struct IpcWait(pub Reply);

impl WaitSink for IpcWait {
    fn ended(&self, job: JobInfo) {
        let _ = self.0.send(Response::JobEnded(Box::new(job)).into());
    }

    fn end(&self) {
        let _ = self.0.send(Response::End.into());
    }

    fn error(&self, error: ServiceError) {
        let _ = self.0.send(Response::Error(error).into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_counted_reply_counts_until_taken_and_wakes_both_sides() {
        let backlog = Backlog::new(100);
        let (reply, mut rx) = Reply::counted(backlog.clone());
        reply.send(Outgoing::Frame(vec![0; 60])).unwrap();
        assert_eq!(backlog.bytes(), 60);
        assert!(!backlog.is_over());
        reply.send(Outgoing::Frame(vec![0; 60])).unwrap();
        assert!(backlog.is_over());
        // The writer hears of the overflow; the reader waits for the drain.
        tokio::time::timeout(std::time::Duration::from_secs(5), backlog.wait_overflowed())
            .await
            .expect("told of the overflow");
        let item = rx.recv().await.unwrap();
        backlog.taken(item.wire_size());
        tokio::time::timeout(std::time::Duration::from_secs(5), backlog.wait_drained())
            .await
            .expect("told of the drain");
        assert_eq!(backlog.bytes(), 60);
        // A response counts what it will take on the wire.
        reply.send(Response::End.into()).unwrap();
        assert_eq!(
            backlog.bytes(),
            60 + mayfly_protocol::encode_frame(&Response::End).unwrap().len()
        );
        // Nothing stays counted for a client that has gone.
        drop(rx);
        let before = backlog.bytes();
        assert!(reply.send(Outgoing::Frame(vec![0; 500])).is_err());
        assert_eq!(backlog.bytes(), before);
    }

    #[test]
    fn an_uncounted_reply_counts_nothing() {
        let (reply, mut rx) = Reply::new();
        reply.send(Outgoing::Frame(vec![0; 10])).unwrap();
        assert!(matches!(rx.try_recv(), Ok(Outgoing::Frame(f)) if f.len() == 10));
        assert!(!reply.is_closed());
    }

    /// A queued job with one label of `label_bytes` bytes.
    fn job_with_label(id: u64, label_bytes: usize) -> JobInfo {
        use mayfly_protocol::{Command, Timestamp};
        JobInfo {
            labels: vec![("pad".into(), "x".repeat(label_bytes))],
            ..JobInfo::submitted(
                JobId(id),
                Command::Shell("true".into()),
                "/",
                "default",
                50,
                Timestamp(0),
            )
        }
    }

    #[test]
    /// A page too large for one frame goes out in smaller frames, in
    /// order; a single job too large for any frame ends the stream with an
    /// error instead of a frame the client would refuse.
    fn listing_pages_split_to_fit_the_frame_limit() {
        use mayfly_protocol::{MAX_FRAME_LEN, decode_payload};
        let (tx, mut rx) = Reply::new();
        let jobs = [
            job_with_label(1, 9 << 20),
            job_with_label(2, 9 << 20),
            job_with_label(3, 10),
        ];
        let views: Vec<JobInfoRef<'_>> = jobs.iter().map(JobInfo::view).collect();
        assert!(send_jobs(&tx, &views).is_some());
        let mut ids = Vec::new();
        let mut frames = 0;
        while let Ok(out) = rx.try_recv() {
            let Outgoing::Frame(frame) = out else {
                panic!("expected a frame, got {out:?}");
            };
            assert!(frame.len() <= 4 + MAX_FRAME_LEN, "{} bytes", frame.len());
            let Ok(Response::Jobs(page)) = decode_payload::<Response>(&frame[4..]) else {
                panic!("a frame that is not Response::Jobs");
            };
            ids.extend(page.iter().map(|job| job.id.0));
            frames += 1;
        }
        assert_eq!(ids, vec![1, 2, 3]);
        assert_eq!(frames, 2, "the page of three went out as [1] and [2, 3]");

        let huge = [job_with_label(4, MAX_FRAME_LEN)];
        let views: Vec<JobInfoRef<'_>> = huge.iter().map(JobInfo::view).collect();
        assert!(send_jobs(&tx, &views).is_none(), "the stream has ended");
        match rx.try_recv() {
            Ok(Outgoing::Response(Response::Error(e))) => {
                assert_eq!(e.kind, ErrorKind::Internal);
                assert!(e.message.starts_with("job 4 cannot be listed"), "{e}");
            }
            Ok(Outgoing::Frame(frame)) => panic!("a frame of {} bytes, not an error", frame.len()),
            other => panic!("expected an error response, got {other:?}"),
        }
        assert!(rx.try_recv().is_err(), "nothing after the error");
    }
}
