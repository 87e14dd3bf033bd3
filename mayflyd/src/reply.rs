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
//! Replies made for the daemon's own use ([`Reply::new`]: the metrics
//! refresh, a session asking the driver about a job) count nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use mayfly_protocol::{JobId, Response};
use tokio::sync::{Notify, mpsc};

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
    /// (`InternalMsg::ListMore`) once everything before it has left for the
    /// socket, and the driver answers with the next chunk. Never written.
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

/// Where a listing stops until the client is ready for more of it.
#[derive(Debug)]
pub struct ListCursor {
    /// Where the next chunk goes (the same request's reply).
    pub reply: Reply,
    /// Which jobs are left.
    pub rest: ListRest,
    /// How many jobs the next chunk takes: adjusted after each chunk so
    /// that a chunk comes to about 64 KiB however large the jobs are.
    pub per_chunk: usize,
}

/// The jobs a listing has yet to send.
#[derive(Debug)]
pub enum ListRest {
    /// Every job after this id (ids grow in submission order).
    After(JobId),
    /// These ids, from `next` on (ids asked for by name).
    Ids {
        /// The ids the client named, in its order.
        ids: Vec<JobId>,
        /// The first one not yet sent.
        next: usize,
    },
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
    /// hung up), which callers ignore.
    pub fn send(&self, item: Outgoing) -> Result<(), mpsc::error::SendError<Outgoing>> {
        let Some(backlog) = &self.backlog else {
            return self.tx.send(item);
        };
        let size = item.wire_size();
        backlog.queued(size);
        let sent = self.tx.send(item);
        if sent.is_err() {
            backlog.taken(size);
        }
        sent
    }

    /// True once the receiving end has gone.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
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
}
