//! The service `mayfly.v1.Mayfly`: one method per RPC, each a call on the
//! service handle ([`Mayfly`]) with its request and answer converted
//! ([`super::convert`]). Nothing here knows about jobs beyond that.
//!
//! Streams are pulled by tonic as the connection takes them: a listing
//! asks the driver for its next page only once the previous one has been
//! taken, a job's output is read as it is sent, and the activity log tells
//! a reader that falls behind how many events it missed — as on the Unix
//! socket.
//!
//! Every call is counted in `mayfly_grpc_requests_total{method,code}` and
//! timed in `mayfly_grpc_request_duration_seconds{method}` when it ends: a
//! unary call when it is answered, a stream when its last message is sent
//! (or the client goes away: `Cancelled`).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use futures::Stream;
use mayfly_protocol::{
    CleanRequest, EditRequest, JobInfoRef, PauseRequest, QueueSetRequest, StateHeader, Timestamp,
};
use prost::Message;
use tokio::sync::mpsc;
use tonic::{Code, Request, Response, Status};

use super::convert::{self, status};
use super::proto;
use super::proto::mayfly_server::Mayfly as MayflyService;
use crate::metrics::Metrics;
use crate::service::{EventItem, ListCursor, ListQuery, ListSink, Mayfly, NextPage, ServiceError};

/// The result of a unary call.
type Unary<T> = Result<Response<T>, Status>;

/// A server stream, as every streaming method returns it.
type Out<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// The gRPC service over one [`Mayfly`] handle.
#[derive(Debug, Clone)]
pub struct Door {
    /// Where every call goes.
    mayfly: Mayfly,
    /// Where calls are counted.
    metrics: Arc<Metrics>,
}

impl Door {
    /// The service over `mayfly`, counting in `metrics`.
    pub fn new(mayfly: Mayfly, metrics: Arc<Metrics>) -> Self {
        Self { mayfly, metrics }
    }

    /// Starts counting a call of `method`.
    fn call(&self, method: &'static str) -> Call {
        Call {
            metrics: self.metrics.clone(),
            method,
            started: Instant::now(),
            code: Code::Cancelled,
        }
    }

    /// Counts a unary call of `method` around `body`.
    async fn unary<T>(
        &self,
        method: &'static str,
        body: impl Future<Output = Result<T, Status>>,
    ) -> Unary<T> {
        let mut call = self.call(method);
        let result = body.await;
        call.code = result.as_ref().map_or_else(Status::code, |_| Code::Ok);
        result.map(Response::new)
    }

    /// Counts a streaming call of `method`: `body` makes the stream.
    async fn streaming<T: Send + 'static>(
        &self,
        method: &'static str,
        body: impl Future<Output = Result<Out<T>, Status>>,
    ) -> Result<Response<Counted<T>>, Status> {
        let mut call = self.call(method);
        match body.await {
            Ok(stream) => Ok(Response::new(Counted {
                inner: stream,
                call: Some(call),
            })),
            Err(e) => {
                call.code = e.code();
                Err(e)
            }
        }
    }

    /// `Pause` (`paused`) or `Resume`: the one request behind both, which
    /// differ only in the flag.
    async fn pause_or_resume(
        &self,
        method: &'static str,
        queues: Vec<String>,
        paused: bool,
        running: bool,
    ) -> Unary<proto::QueuesReply> {
        self.unary(method, async {
            let request = PauseRequest {
                queues,
                paused,
                running,
            };
            let queues = self.mayfly.pause(request).await.await.map_err(status)?;
            Ok(convert::queues(queues))
        })
        .await
    }

    /// A listing of jobs as a stream (with `header`, a dump's).
    async fn listing(&self, query: ListQuery, queues: Vec<String>, header: bool) -> Out<ListItem> {
        let (tx, rx) = mpsc::unbounded_channel();
        let sink = GrpcList { tx, queues };
        self.mayfly.list_into(query, header, Box::new(sink)).await;
        let mayfly = self.mayfly.clone();
        Box::pin(futures::stream::unfold(
            (rx, mayfly, false),
            |(mut rx, mayfly, done)| async move {
                if done {
                    return None;
                }
                loop {
                    match rx.recv().await? {
                        ListMsg::Item(item) => return Some((Ok(item), (rx, mayfly, false))),
                        ListMsg::More(cursor) => mayfly.list_more(cursor),
                        ListMsg::End => return None,
                        ListMsg::Error(e) => return Some((Err(status(e)), (rx, mayfly, true))),
                    }
                }
            },
        ))
    }
}

/// One call being counted; counted when dropped, with the code it ended
/// with (`Cancelled` if it never said: the client went away).
struct Call {
    /// Where it is counted.
    metrics: Arc<Metrics>,
    /// The RPC's name.
    method: &'static str,
    /// When it came.
    started: Instant,
    /// How it ended.
    code: Code,
}

impl Drop for Call {
    fn drop(&mut self) {
        self.metrics
            .grpc_request(self.method, code_name(self.code), self.started.elapsed());
    }
}

/// A code's name as gRPC's own libraries spell it (`OK`, `NotFound`, …),
/// for the metrics' `code` label.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "Canceled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}

/// A server stream that counts its call when it ends.
pub struct Counted<T> {
    /// The messages.
    inner: Out<T>,
    /// The call, until it is counted.
    call: Option<Call>,
}

impl<T> Stream for Counted<T> {
    type Item = Result<T, Status>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let next = this.inner.as_mut().poll_next(cx);
        let ended = match &next {
            Poll::Ready(None) => Some(Code::Ok),
            Poll::Ready(Some(Err(e))) => Some(e.code()),
            _ => None,
        };
        if let Some(code) = ended
            && let Some(mut call) = this.call.take()
        {
            call.code = code;
        }
        next
    }
}

/// What a [`GrpcList`] hands its stream.
enum ListMsg {
    /// A message to send.
    Item(ListItem),
    /// The listing goes on from here when asked.
    More(ListCursor),
    /// The end.
    End,
    /// A failure.
    Error(ServiceError),
}

/// One message of a listing.
enum ListItem {
    /// The head of a dump.
    Header(Box<proto::StateHeader>),
    /// A job.
    Job(Box<proto::Job>),
}

/// The [`ListSink`] of this door: converts each page straight from the
/// daemon's jobs to messages (one copy), narrowed to `queues` when there
/// are several (the service's own filter takes one).
struct GrpcList {
    /// Where the messages go.
    tx: mpsc::UnboundedSender<ListMsg>,
    /// Only jobs of these queues, when there are two or more.
    queues: Vec<String>,
}

impl std::fmt::Debug for GrpcList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcList")
            .field("queues", &self.queues)
            .finish_non_exhaustive()
    }
}

impl ListSink for GrpcList {
    fn header(&mut self, header: StateHeader) {
        let _ = self
            .tx
            .send(ListMsg::Item(ListItem::Header(Box::new(convert::header(
                &header,
            )))));
    }

    fn page(&mut self, jobs: &[JobInfoRef<'_>]) -> Option<usize> {
        let mut size = 0;
        for job in jobs {
            if self.queues.len() > 1 && !self.queues.iter().any(|q| q == job.queue) {
                continue;
            }
            let message = convert::job(job);
            size += message.encoded_len();
            self.tx
                .send(ListMsg::Item(ListItem::Job(Box::new(message))))
                .ok()?;
        }
        Some(size)
    }

    fn park(self: Box<Self>, next: NextPage) {
        let tx = self.tx.clone();
        let _ = tx.send(ListMsg::More(ListCursor { sink: self, next }));
    }

    fn end(&mut self) {
        let _ = self.tx.send(ListMsg::End);
    }

    fn error(&mut self, error: ServiceError) {
        let _ = self.tx.send(ListMsg::Error(error));
    }

    fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

/// Maps every item of `stream` with `f`.
fn map_ok<A: Send + 'static, B: Send + 'static>(
    stream: Out<A>,
    f: impl Fn(A) -> Option<B> + Send + 'static,
) -> Out<B> {
    use futures::StreamExt;
    Box::pin(stream.filter_map(move |item| {
        std::future::ready(match item {
            Ok(a) => f(a).map(Ok),
            Err(e) => Some(Err(e)),
        })
    }))
}

/// A receiver as a stream that ends after its first error.
fn from_receiver<T: Send + 'static>(
    rx: impl ReceiverLike<Result<T, ServiceError>> + Send + 'static,
) -> Out<T> {
    Box::pin(futures::stream::unfold(
        (rx, false),
        |(mut rx, done)| async move {
            if done {
                return None;
            }
            match rx.next_item().await? {
                Ok(item) => Some((Ok(item), (rx, false))),
                Err(e) => Some((Err(status(e)), (rx, true))),
            }
        },
    ))
}

/// Bounded and unbounded tokio receivers alike.
trait ReceiverLike<T> {
    /// The next item, `None` once every sender has gone.
    fn next_item(&mut self) -> impl Future<Output = Option<T>> + Send;
}

impl<T: Send> ReceiverLike<T> for mpsc::Receiver<T> {
    fn next_item(&mut self) -> impl Future<Output = Option<T>> + Send {
        self.recv()
    }
}

impl<T: Send> ReceiverLike<T> for mpsc::UnboundedReceiver<T> {
    fn next_item(&mut self) -> impl Future<Output = Option<T>> + Send {
        self.recv()
    }
}

#[tonic::async_trait]
impl MayflyService for Door {
    async fn submit(&self, request: Request<proto::SubmitRequest>) -> Unary<proto::SubmitReply> {
        self.unary("Submit", async {
            let spec = request.into_inner().spec.unwrap_or_default();
            let spec = convert::spec(spec, Timestamp::now())?;
            let id = self.mayfly.submit(spec).await.await.map_err(status)?;
            Ok(proto::SubmitReply { id: id.0 })
        })
        .await
    }

    async fn submit_batch(
        &self,
        request: Request<proto::SubmitBatchRequest>,
    ) -> Unary<proto::SubmitBatchReply> {
        self.unary("SubmitBatch", async {
            let now = Timestamp::now();
            let specs = request
                .into_inner()
                .specs
                .into_iter()
                .enumerate()
                .map(|(i, s)| {
                    convert::spec(s, now).map_err(|e| {
                        Status::new(e.code(), format!("line {}: {}", i + 1, e.message()))
                    })
                })
                .collect::<Result<_, _>>()?;
            let ids = self
                .mayfly
                .submit_batch(specs)
                .await
                .await
                .map_err(status)?;
            Ok(proto::SubmitBatchReply {
                ids: ids.into_iter().map(|id| id.0).collect(),
            })
        })
        .await
    }

    async fn get_job(&self, request: Request<proto::GetJobRequest>) -> Unary<proto::Job> {
        self.unary("GetJob", async {
            let id = convert::job_id(request.into_inner().id);
            let job = self.mayfly.job(id).await.await.map_err(status)?;
            Ok(convert::job(&job.view()))
        })
        .await
    }

    type ListJobsStream = Counted<proto::Job>;

    async fn list_jobs(
        &self,
        request: Request<proto::ListJobsRequest>,
    ) -> Result<Response<Self::ListJobsStream>, Status> {
        self.streaming("ListJobs", async {
            let r = request.into_inner();
            let states = r
                .states
                .iter()
                .map(|s| convert::from_state(*s))
                .collect::<Result<_, _>>()?;
            let mut queues: Vec<String> = r.queues.into_iter().filter(|q| !q.is_empty()).collect();
            queues.dedup();
            let query = ListQuery {
                ids: convert::job_ids(&r.ids),
                queue: match queues.as_slice() {
                    [one] => Some(one.clone()),
                    _ => None,
                },
                states,
                labels: r.labels.into_iter().collect(),
            };
            let items = self.listing(query, queues, false).await;
            Ok(map_ok(items, |item| match item {
                ListItem::Job(job) => Some(*job),
                ListItem::Header(_) => None,
            }))
        })
        .await
    }

    async fn cancel(&self, request: Request<proto::CancelRequest>) -> Unary<proto::CancelReply> {
        self.unary("Cancel", async {
            let ids = convert::job_ids(&request.into_inner().ids);
            let results = self.mayfly.cancel(ids).await.await.map_err(status)?;
            Ok(proto::CancelReply {
                results: results
                    .iter()
                    .map(|(id, outcome)| convert::cancel_result(*id, outcome))
                    .collect(),
            })
        })
        .await
    }

    type WaitStream = Counted<proto::Job>;

    async fn wait(
        &self,
        request: Request<proto::WaitRequest>,
    ) -> Result<Response<Self::WaitStream>, Status> {
        self.streaming("Wait", async {
            let ids = convert::job_ids(&request.into_inner().ids);
            let ended = self.mayfly.wait(ids).await;
            Ok(map_ok(from_receiver(ended), |job| {
                Some(convert::job(&job.view()))
            }))
        })
        .await
    }

    type LogsStream = Counted<proto::LogChunk>;

    async fn logs(
        &self,
        request: Request<proto::LogsRequest>,
    ) -> Result<Response<Self::LogsStream>, Status> {
        self.streaming("Logs", async {
            let r = request.into_inner();
            let stream = convert::log_stream(r.stream)?;
            let chunks = self
                .mayfly
                .logs(convert::job_id(r.id), stream, r.follow)
                .await;
            Ok(map_ok(from_receiver(chunks), |data| {
                Some(proto::LogChunk { data })
            }))
        })
        .await
    }

    type EventsStream = Counted<proto::EventsReply>;

    async fn events(
        &self,
        request: Request<proto::EventsRequest>,
    ) -> Result<Response<Self::EventsStream>, Status> {
        self.streaming("Events", async {
            let follow = request.into_inner().follow;
            let events = self.mayfly.events(follow).await;
            Ok(map_ok(from_receiver(events), |item| {
                let item = match item {
                    EventItem::Event(record) => {
                        proto::events_reply::Item::Event(convert::event(&record))
                    }
                    EventItem::Missed(count) => proto::events_reply::Item::Missed(count),
                };
                Some(proto::EventsReply { item: Some(item) })
            }))
        })
        .await
    }

    async fn pause(&self, request: Request<proto::PauseRequest>) -> Unary<proto::QueuesReply> {
        let r = request.into_inner();
        self.pause_or_resume("Pause", r.queues, true, r.running)
            .await
    }

    async fn resume(&self, request: Request<proto::ResumeRequest>) -> Unary<proto::QueuesReply> {
        let r = request.into_inner();
        self.pause_or_resume("Resume", r.queues, false, r.running)
            .await
    }

    async fn add_queue(
        &self,
        request: Request<proto::AddQueueRequest>,
    ) -> Unary<proto::QueuesReply> {
        self.unary("AddQueue", async {
            let r = request.into_inner();
            let request = QueueSetRequest {
                name: r.name,
                concurrency: Some(r.concurrency),
                create: true,
                executor: convert::from_executor(r.executor),
            };
            let queues = self.mayfly.queue_set(request).await.await.map_err(status)?;
            Ok(convert::queues(queues))
        })
        .await
    }

    async fn set_queue(
        &self,
        request: Request<proto::SetQueueRequest>,
    ) -> Unary<proto::QueuesReply> {
        self.unary("SetQueue", async {
            let r = request.into_inner();
            let concurrency = match (r.concurrency, r.unlimited) {
                (Some(_), true) => {
                    return Err(Status::invalid_argument(
                        "both concurrency and unlimited are set; set one of them",
                    ));
                }
                (Some(n), false) => Some(Some(n)),
                (None, true) => Some(None),
                (None, false) => None,
            };
            let request = QueueSetRequest {
                name: r.name,
                concurrency,
                create: false,
                executor: convert::from_executor(r.executor),
            };
            let queues = self.mayfly.queue_set(request).await.await.map_err(status)?;
            Ok(convert::queues(queues))
        })
        .await
    }

    async fn remove_queue(
        &self,
        request: Request<proto::RemoveQueueRequest>,
    ) -> Unary<proto::QueuesReply> {
        self.unary("RemoveQueue", async {
            let name = request.into_inner().name;
            let queues = self.mayfly.queue_remove(name).await.await.map_err(status)?;
            Ok(convert::queues(queues))
        })
        .await
    }

    async fn list_queues(
        &self,
        _request: Request<proto::ListQueuesRequest>,
    ) -> Unary<proto::QueuesReply> {
        self.unary("ListQueues", async {
            let queues = self.mayfly.queues().await.await.map_err(status)?;
            Ok(convert::queues(queues))
        })
        .await
    }

    async fn restart(&self, request: Request<proto::RestartRequest>) -> Unary<proto::RestartReply> {
        self.unary("Restart", async {
            let ids = convert::job_ids(&request.into_inner().ids);
            let pairs = self.mayfly.restart(ids).await.await.map_err(status)?;
            Ok(proto::RestartReply {
                jobs: pairs
                    .into_iter()
                    .map(|(old, new)| proto::Restarted {
                        old_id: old.0,
                        new_id: new.0,
                    })
                    .collect(),
            })
        })
        .await
    }

    async fn clean(&self, request: Request<proto::CleanRequest>) -> Unary<proto::CleanReply> {
        self.unary("Clean", async {
            let r = request.into_inner();
            let states = r
                .states
                .iter()
                .map(|s| convert::from_state(*s))
                .collect::<Result<_, _>>()?;
            let older_than_ms = convert::grace(r.older_than, "older_than")?
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
            let request = CleanRequest {
                states,
                older_than_ms,
            };
            let ids = self.mayfly.clean(request).await.await.map_err(status)?;
            Ok(proto::CleanReply {
                ids: ids.into_iter().map(|id| id.0).collect(),
            })
        })
        .await
    }

    async fn edit(&self, request: Request<proto::EditRequest>) -> Unary<proto::Job> {
        self.unary("Edit", async {
            let r = request.into_inner();
            let priority = r
                .priority
                .map(|p| {
                    u8::try_from(p).map_err(|_| {
                        Status::invalid_argument(format!(
                            "priority {p} is out of range: use 1 (runs first) to 99 (runs last)"
                        ))
                    })
                })
                .transpose()?;
            let request = EditRequest {
                id: convert::job_id(r.id),
                priority,
                queue: r.queue,
                labels: r.set_labels.then(|| r.labels.into_iter().collect()),
            };
            let job = self.mayfly.edit(request).await.await.map_err(status)?;
            Ok(convert::job(&job.view()))
        })
        .await
    }

    async fn progress(
        &self,
        request: Request<proto::ProgressRequest>,
    ) -> Unary<proto::ProgressReply> {
        self.unary("Progress", async {
            let r = request.into_inner();
            self.mayfly
                .progress(convert::job_id(r.id), r.text)
                .await
                .await
                .map_err(status)?;
            Ok(proto::ProgressReply {})
        })
        .await
    }

    type DumpStateStream = Counted<proto::DumpStateReply>;

    async fn dump_state(
        &self,
        _request: Request<proto::DumpStateRequest>,
    ) -> Result<Response<Self::DumpStateStream>, Status> {
        self.streaming("DumpState", async {
            let items = self.listing(ListQuery::default(), Vec::new(), true).await;
            Ok(map_ok(items, |item| {
                let item = match item {
                    ListItem::Header(h) => proto::dump_state_reply::Item::Header(*h),
                    ListItem::Job(j) => proto::dump_state_reply::Item::Job(*j),
                };
                Some(proto::DumpStateReply { item: Some(item) })
            }))
        })
        .await
    }

    async fn shutdown(
        &self,
        request: Request<proto::ShutdownRequest>,
    ) -> Unary<proto::ShutdownReply> {
        self.unary("Shutdown", async {
            let timeout = convert::grace(request.into_inner().timeout, "timeout")?;
            let reason = "requested by a gRPC client (Shutdown)".to_string();
            self.mayfly
                .shutdown(timeout, reason)
                .await
                .await
                .map_err(status)?;
            Ok(proto::ShutdownReply {})
        })
        .await
    }
}
