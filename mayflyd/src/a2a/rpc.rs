//! The JSON-RPC 2.0 methods of the A2A door: one request in, one answer
//! (or a stream of them) out, each method a few calls on the service.
//!
//! | method | does |
//! |---|---|
//! | `SendMessage` | submits the message's job; answers when the task has ended (or at once, with `configuration.returnImmediately`) |
//! | `SendStreamingMessage` | submits it, then streams the task |
//! | `GetTask` | the task (with its artifacts once ended) |
//! | `ListTasks` | a page of tasks, the most recently changed first |
//! | `CancelTask` | cancels the job; the task as it then stands |
//! | `SubscribeToTask` | streams a task that has not ended |
//! | `CreateTaskPushNotificationConfig`, `Get…`, `List…Configs`, `Delete…` | a task's webhooks (`super::push`) |
//!
//! Errors are JSON-RPC error objects with the codes of the A2A
//! specification (`-32001` task not found, `-32002` not cancelable, …,
//! `-326xx` for malformed requests), and a message that says what was
//! wrong and what to do. A service error keeps its text.

use std::time::Duration;

use mayfly_protocol::{CancelOutcome, Command, ErrorKind, JobId, JobInfo, JobSpec, JobState};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use super::Door;
use super::push;
use super::task::{self, CONTEXT_LABEL, changed_at, job_id, job_states, task_of};
use super::watch::{self, FollowEnd, Telling, with_artifacts};
use super::wire::{
    ListPushConfigsResponse, ListTasksRequest, ListTasksResponse, Message, PushConfigParams,
    SendMessageRequest, SendMessageResponse, StreamResponse, Task, TaskIdParams,
    TaskPushNotificationConfig, TaskState,
};
use crate::service::{ListQuery, ServiceError};

/// A JSON-RPC error: a code and one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcError {
    /// The code (JSON-RPC's, or the A2A specification's).
    pub code: i64,
    /// What was wrong, and what to do.
    pub message: String,
}

impl RpcError {
    /// The body is not JSON.
    pub const PARSE: i64 = -32700;
    /// The body is not a JSON-RPC request.
    pub const INVALID_REQUEST: i64 = -32600;
    /// No such method.
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// The parameters are wrong.
    pub const INVALID_PARAMS: i64 = -32602;
    /// The daemon could not do it.
    pub const INTERNAL: i64 = -32603;
    /// No task has that id.
    pub const TASK_NOT_FOUND: i64 = -32001;
    /// The task has ended.
    pub const TASK_NOT_CANCELABLE: i64 = -32002;
    /// This agent does not do that.
    pub const UNSUPPORTED: i64 = -32004;
    /// The message holds a kind of part this agent does not read.
    pub const CONTENT_TYPE: i64 = -32005;
    /// The client speaks another version of the protocol.
    pub const VERSION: i64 = -32009;
    /// No (or a wrong) bearer token; JSON-RPC's range for a server's own
    /// errors, outside the codes A2A reserves.
    pub const UNAUTHENTICATED: i64 = -32000;

    /// An error with `code`.
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// Bad parameters.
    pub fn invalid_params(message: impl Into<String>) -> Self {
        Self::new(Self::INVALID_PARAMS, message)
    }

    /// The daemon could not do it.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(Self::INTERNAL, message)
    }

    /// No task `id`.
    pub fn task_not_found(id: &str) -> Self {
        Self::new(
            Self::TASK_NOT_FOUND,
            format!(
                "no task {id:?} here: a task id is a Mayfly job id (a decimal number), and a \
                 forgotten job's task is gone"
            ),
        )
    }

    /// The A2A name of the error (`google.rpc.ErrorInfo`'s reason), for the
    /// codes the specification names.
    fn reason(&self) -> Option<&'static str> {
        Some(match self.code {
            Self::TASK_NOT_FOUND => "TASK_NOT_FOUND",
            Self::TASK_NOT_CANCELABLE => "TASK_NOT_CANCELABLE",
            Self::UNSUPPORTED => "UNSUPPORTED_OPERATION",
            Self::CONTENT_TYPE => "CONTENT_TYPE_NOT_SUPPORTED",
            Self::VERSION => "VERSION_NOT_SUPPORTED",
            Self::INVALID_PARAMS => "INVALID_PARAMS",
            Self::INVALID_REQUEST => "INVALID_REQUEST",
            Self::METHOD_NOT_FOUND => "METHOD_NOT_FOUND",
            _ => return None,
        })
    }

    /// The JSON-RPC error object.
    pub fn to_json(&self) -> Value {
        let mut error = json!({"code": self.code, "message": self.message});
        if let Some(reason) = self.reason() {
            error["data"] = json!([{
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": reason,
                "domain": "a2a-protocol.org",
            }]);
        }
        error
    }

    /// A whole JSON-RPC response carrying this error.
    pub fn response(&self, id: &Value) -> Value {
        json!({"jsonrpc": "2.0", "id": id, "error": self.to_json()})
    }
}

impl From<ServiceError> for RpcError {
    fn from(e: ServiceError) -> Self {
        let code = match e.kind {
            // What the request names is not in a state that allows it;
            // the message says what to do first.
            ErrorKind::BadRequest | ErrorKind::Conflict => Self::INVALID_PARAMS,
            ErrorKind::NotFound => Self::TASK_NOT_FOUND,
            ErrorKind::Protocol => Self::INVALID_REQUEST,
            ErrorKind::ShuttingDown
            | ErrorKind::Storage
            | ErrorKind::Internal
            | ErrorKind::Limit => Self::INTERNAL,
        };
        Self::new(code, e.message)
    }
}

/// A success response to request `id`.
pub fn success(id: &Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

/// How a request is answered.
#[derive(Debug)]
pub enum Reply {
    /// With one response object.
    Json(Value),
    /// With a stream of them (server-sent events).
    Stream(Stream),
}

/// A streamed answer: the items, then (if the stream failed) an error.
#[derive(Debug)]
pub struct Stream {
    /// The request's id, echoed in every item.
    pub id: Value,
    /// The items, in order.
    pub items: mpsc::Receiver<StreamResponse>,
    /// Why the stream ended early, if it did (sent after the last item).
    pub failed: oneshot::Receiver<RpcError>,
}

/// A request, as far as the envelope goes.
#[derive(Debug)]
struct Envelope {
    /// Its id (a string, a number, or null).
    id: Value,
    /// The method.
    method: String,
    /// Its parameters (an empty object when left out).
    params: Value,
}

/// Reads the JSON-RPC envelope of `body`; the error comes with the id to
/// answer it under.
fn envelope(body: &[u8]) -> Result<Envelope, (Value, RpcError)> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        (
            Value::Null,
            RpcError::new(
                RpcError::PARSE,
                format!("the body is not JSON ({e}); send one JSON-RPC 2.0 request object"),
            ),
        )
    })?;
    let Value::Object(mut map) = value else {
        let what = if value.is_array() {
            "batch requests are not supported; send one request per HTTP request"
        } else {
            "the body must be a JSON-RPC 2.0 request object"
        };
        return Err((Value::Null, RpcError::new(RpcError::INVALID_REQUEST, what)));
    };
    let id = match map.remove("id") {
        Some(id @ (Value::String(_) | Value::Number(_) | Value::Null)) => id,
        Some(_) => {
            return Err((
                Value::Null,
                RpcError::new(
                    RpcError::INVALID_REQUEST,
                    "\"id\" must be a string or a number",
                ),
            ));
        }
        None => {
            return Err((
                Value::Null,
                RpcError::new(
                    RpcError::INVALID_REQUEST,
                    "the request has no \"id\"; this agent answers every call, so give each an id",
                ),
            ));
        }
    };
    if map.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err((
            id,
            RpcError::new(RpcError::INVALID_REQUEST, "\"jsonrpc\" must be \"2.0\""),
        ));
    }
    let Some(Value::String(method)) = map.remove("method") else {
        return Err((
            id,
            RpcError::new(
                RpcError::INVALID_REQUEST,
                "\"method\" is missing; name one, like \"SendMessage\"",
            ),
        ));
    };
    let params = match map.remove("params") {
        None | Some(Value::Null) => json!({}),
        Some(params @ Value::Object(_)) => params,
        Some(_) => {
            return Err((id, RpcError::invalid_params("\"params\" must be an object")));
        }
    };
    Ok(Envelope { id, method, params })
}

/// The methods, by name; the metrics label of anything else.
const METHODS: &[&str] = &[
    "SendMessage",
    "SendStreamingMessage",
    "GetTask",
    "ListTasks",
    "CancelTask",
    "SubscribeToTask",
    "CreateTaskPushNotificationConfig",
    "GetTaskPushNotificationConfig",
    "ListTaskPushNotificationConfigs",
    "DeleteTaskPushNotificationConfig",
    "GetExtendedAgentCard",
];

/// Answers one request body. `version` is the request's `A2A-Version`
/// header. Returns the method's name (for the metrics: one of the methods,
/// or `invalid`) and the answer.
pub async fn call(door: &Door, body: &[u8], version: Option<&str>) -> (&'static str, Reply) {
    let request = match envelope(body) {
        Ok(request) => request,
        Err((id, e)) => return ("invalid", Reply::Json(e.response(&id))),
    };
    let name = METHODS
        .iter()
        .find(|m| **m == request.method)
        .copied()
        .unwrap_or("invalid");
    if let Err(e) = check_version(version) {
        return (name, Reply::Json(e.response(&request.id)));
    }
    let Envelope { id, method, params } = request;
    let result = match method.as_str() {
        "SendMessage" => send_message(door, params).await,
        "SendStreamingMessage" => {
            return (name, send_streaming(door, id, params).await);
        }
        "GetTask" => get_task(door, params).await,
        "ListTasks" => list_tasks(door, params).await,
        "CancelTask" => cancel_task(door, params).await,
        "SubscribeToTask" => return (name, subscribe(door, id, params).await),
        "CreateTaskPushNotificationConfig" => create_push(door, params).await,
        "GetTaskPushNotificationConfig" => get_push(door, params).await,
        "ListTaskPushNotificationConfigs" => list_push(door, params).await,
        "DeleteTaskPushNotificationConfig" => delete_push(door, params).await,
        "GetExtendedAgentCard" => Err(RpcError::new(
            RpcError::UNSUPPORTED,
            "this agent has no extended agent card: the public one at \
             /.well-known/agent-card.json is all there is",
        )),
        other => Err(RpcError::new(
            RpcError::METHOD_NOT_FOUND,
            format!(
                "no method {other:?}; this agent serves {} (A2A 1.0 names)",
                METHODS.join(", ")
            ),
        )),
    };
    let reply = match result {
        Ok(value) => success(&id, value),
        Err(e) => e.response(&id),
    };
    (name, Reply::Json(reply))
}

/// Refuses a request of another protocol version than 1.0 (no header means
/// 0.3, as the specification has it).
fn check_version(version: Option<&str>) -> Result<(), RpcError> {
    let given = version.map(str::trim).filter(|v| !v.is_empty());
    let major_minor = given.map(|v| {
        let mut parts = v.split('.');
        (parts.next().unwrap_or(""), parts.next().unwrap_or("0"))
    });
    if matches!(major_minor, Some(("1", "0"))) {
        return Ok(());
    }
    Err(RpcError::new(
        RpcError::VERSION,
        format!(
            "A2A protocol version {} is not supported; this agent speaks 1.0: send the header \
             A2A-Version: 1.0",
            given.map_or_else(|| "0.3 (no A2A-Version header)".to_string(), str::to_string)
        ),
    ))
}

/// Decodes a method's parameters.
fn params<T: DeserializeOwned>(method: &str, params: Value) -> Result<T, RpcError> {
    serde_json::from_value(params)
        .map_err(|e| RpcError::invalid_params(format!("the params of {method} are wrong: {e}")))
}

/// The job a task id names, or the task-not-found error.
fn task_job(id: &str) -> Result<JobId, RpcError> {
    job_id(id).ok_or_else(|| RpcError::task_not_found(id))
}

/// Job `id`'s record; a missing job is task-not-found.
async fn job(door: &Door, id: JobId) -> Result<JobInfo, RpcError> {
    door.mayfly.job(id).await.await.map_err(|e| match e.kind {
        ErrorKind::NotFound => RpcError::task_not_found(&id.to_string()),
        _ => e.into(),
    })
}

/// The task of a job's record, with its artifacts once it has ended.
async fn full_task(door: &Door, info: JobInfo) -> Task {
    if !info.state.is_terminal() {
        return task_of(&info);
    }
    let (info, artifacts) = with_artifacts(info, door.logs_dir.clone()).await;
    let mut task = task_of(&info);
    task.artifacts = Some(artifacts);
    task
}

/// A task as a method's result.
fn task_value(task: &Task) -> Result<Value, RpcError> {
    serde_json::to_value(task).map_err(|e| RpcError::internal(format!("cannot encode a task: {e}")))
}

/// The job spec of a message: its one text part is a shell line, its one
/// data part a job in the form of `mayflyctl submit --json-input`; the
/// message's `contextId` becomes the job's [`CONTEXT_LABEL`].
fn spec_of(door: &Door, message: &Message) -> Result<JobSpec, RpcError> {
    let teach = "send one text part (a shell line, run with sh -c) or one data part (a job: \
                 the JSON object of mayflyctl submit --json-input, like {\"command\": [\"make\", \
                 \"test\"]})";
    if message
        .parts
        .iter()
        .any(|p| p.raw.is_some() || p.url.is_some())
    {
        return Err(RpcError::new(
            RpcError::CONTENT_TYPE,
            format!("this agent runs commands and reads no files or links: {teach}"),
        ));
    }
    let mut parts = message
        .parts
        .iter()
        .filter(|p| p.text.is_some() || p.data.is_some());
    let (Some(part), None) = (parts.next(), parts.next()) else {
        return Err(RpcError::invalid_params(format!(
            "the message holds {} parts with content: {teach}",
            message.parts.len()
        )));
    };
    let mut spec = if let Some(data) = &part.data {
        if !data.is_object() {
            return Err(RpcError::invalid_params(format!(
                "the data part holds {}, not a job object: {teach}",
                kind_of(data)
            )));
        }
        let line = data.to_string();
        let mut ctx = door.jobs.context.clone();
        ctx.now = mayfly_protocol::Timestamp::now();
        mayflyctl::batch::parse_json_job(&line, &door.jobs.defaults, &ctx).map_err(|reason| {
            RpcError::invalid_params(format!("the job in the data part is wrong: {reason}"))
        })?
    } else {
        let text = part.text.clone().unwrap_or_default();
        if text.trim().is_empty() {
            return Err(RpcError::invalid_params(format!(
                "the text part is empty: {teach}"
            )));
        }
        door.jobs.defaults.spec(Command::Shell(text))
    };
    if !message.context_id.is_empty() {
        spec.labels.retain(|(k, _)| k != CONTEXT_LABEL);
        spec.labels
            .push((CONTEXT_LABEL.to_string(), message.context_id.clone()));
    }
    Ok(spec)
}

/// A JSON value's kind, in words.
fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Submits the job of a `SendMessage` request (and registers its webhook,
/// if the request has one); returns the job and how to answer.
async fn submit(door: &Door, request: SendMessageRequest) -> Result<(JobId, bool), RpcError> {
    let Some(message) = request.message else {
        return Err(RpcError::invalid_params(
            "params.message is missing: send {\"message\": {\"messageId\": …, \"role\": \
             \"ROLE_USER\", \"parts\": [{\"text\": \"echo hello\"}]}}",
        ));
    };
    if !message.task_id.is_empty() {
        let id = task_job(&message.task_id)?;
        let info = job(door, id).await?;
        return Err(RpcError::new(
            RpcError::UNSUPPORTED,
            format!(
                "task {id} is one job ({}) and takes no further messages; send a message \
                 without taskId for a new job",
                info.state.as_str()
            ),
        ));
    }
    let config = request.configuration.unwrap_or_default();
    if let Some(hook) = &config.task_push_notification_config {
        push::check(hook)?;
        door.push.has_room(None)?;
    }
    let spec = spec_of(door, &message)?;
    let id = door.mayfly.submit(spec).await.await?;
    if let Some(hook) = config.task_push_notification_config
        && let Err(e) = door.push.create(id, hook)
    {
        // The job is durable; the webhook could not be kept.
        tracing::warn!(job = %id, error = %e.message, "a SendMessage webhook was not registered");
    }
    Ok((id, config.return_immediately))
}

/// `SendMessage`: submits the job; answers with the task once it has ended
/// (durably), or at once as it stands with `returnImmediately`.
async fn send_message(door: &Door, params_value: Value) -> Result<Value, RpcError> {
    let request: SendMessageRequest = params("SendMessage", params_value)?;
    let (id, at_once) = submit(door, request).await?;
    let info = if at_once {
        job(door, id).await?
    } else {
        let mut ended = door.mayfly.wait(vec![id]).await;
        match ended.recv().await {
            Some(Ok(info)) => info,
            Some(Err(e)) => return Err(e.into()),
            None => {
                return Err(RpcError::internal(format!(
                    "the daemon is shutting down; task {id} was accepted: ask GetTask for it \
                     once the daemon is back"
                )));
            }
        }
    };
    let task = full_task(door, info).await;
    let answer = SendMessageResponse {
        task: Some(task),
        message: None,
    };
    serde_json::to_value(&answer)
        .map_err(|e| RpcError::internal(format!("cannot encode the answer: {e}")))
}

/// `SendStreamingMessage`: submits the job, then streams its task.
async fn send_streaming(door: &Door, id: Value, params_value: Value) -> Reply {
    let submitted = match params::<SendMessageRequest>("SendStreamingMessage", params_value) {
        Ok(request) => submit(door, request).await,
        Err(e) => Err(e),
    };
    match submitted {
        Ok((job, _)) => Reply::Stream(stream_task(door, id, job)),
        Err(e) => Reply::Json(e.response(&id)),
    }
}

/// `SubscribeToTask`: streams a task that has not ended.
async fn subscribe(door: &Door, id: Value, params_value: Value) -> Reply {
    let checked = async {
        let request: TaskIdParams = params("SubscribeToTask", params_value)?;
        let job_id = task_job(&request.id)?;
        let info = job(door, job_id).await?;
        if info.state.is_terminal() {
            return Err(RpcError::new(
                RpcError::UNSUPPORTED,
                format!(
                    "task {job_id} has ended ({}); ask GetTask for its final state and artifacts",
                    info.state.as_str()
                ),
            ));
        }
        Ok(job_id)
    };
    match checked.await {
        Ok(job) => Reply::Stream(stream_task(door, id, job)),
        Err(e) => Reply::Json(e.response(&id)),
    }
}

/// Streams job `job`'s task to the stream answering request `id`.
fn stream_task(door: &Door, id: Value, job: JobId) -> Stream {
    let (tx, items) = mpsc::channel(16);
    let (failed_tx, failed) = oneshot::channel();
    let mayfly = door.mayfly.clone();
    let watch = door.watch.clone();
    let logs_dir = door.logs_dir.clone();
    let stop = door.stop.clone();
    door.tracker.spawn(async move {
        let end = watch::follow(&mayfly, &watch, logs_dir, job, Telling::Stream, &tx, &stop).await;
        if let FollowEnd::Failed(e) = end {
            let _ = failed_tx.send(e.into());
        }
    });
    Stream { id, items, failed }
}

/// `GetTask`.
async fn get_task(door: &Door, params_value: Value) -> Result<Value, RpcError> {
    let request: TaskIdParams = params("GetTask", params_value)?;
    let info = job(door, task_job(&request.id)?).await?;
    task_value(&full_task(door, info).await)
}

/// `CancelTask`: cancels a job that has not ended; answers with its task as
/// it then stands (a running job is told to stop and ends `CANCELED` soon
/// after).
async fn cancel_task(door: &Door, params_value: Value) -> Result<Value, RpcError> {
    let request: TaskIdParams = params("CancelTask", params_value)?;
    let id = task_job(&request.id)?;
    let not_cancelable = |state: JobState| {
        RpcError::new(
            RpcError::TASK_NOT_CANCELABLE,
            format!(
                "task {id} has already ended ({}); nothing to cancel",
                state.as_str()
            ),
        )
    };
    let outcomes = door.mayfly.cancel(vec![id]).await.await?;
    match outcomes.first().map(|(_, o)| o) {
        Some(CancelOutcome::AlreadyEnded(state)) => return Err(not_cancelable(*state)),
        Some(CancelOutcome::NotFound) | None => {
            return Err(RpcError::task_not_found(&request.id));
        }
        Some(CancelOutcome::Cancelled | CancelOutcome::Signalled) => {}
    }
    let info = job(door, id).await?;
    task_value(&full_task(door, info).await)
}

/// The largest page `ListTasks` gives.
const MAX_PAGE: i64 = 100;

/// The page `ListTasks` gives when asked for none.
const DEFAULT_PAGE: i64 = 50;

/// `ListTasks`: every job passing the filters, the most recently changed
/// first (so it reads every job the daemon holds), a page at a time.
async fn list_tasks(door: &Door, params_value: Value) -> Result<Value, RpcError> {
    let request: ListTasksRequest = params("ListTasks", params_value)?;
    let page_size = request.page_size.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&page_size) {
        return Err(RpcError::invalid_params(format!(
            "pageSize must be from 1 to {MAX_PAGE}, not {page_size}"
        )));
    }
    let after = request
        .status_timestamp_after
        .as_deref()
        .map(parse_time)
        .transpose()?;
    let cursor = cursor_of(&request.page_token)?;
    let states = match request.status {
        TaskState::Unspecified => Vec::new(),
        state => {
            let states = job_states(state).to_vec();
            if states.is_empty() {
                return list_answer(Vec::new(), String::new(), page_size, 0);
            }
            states
        }
    };
    // Keys (changed at, id) of every job passing the filters.
    let mut keys: Vec<(u64, u64)> = Vec::new();
    let mut pages = door
        .mayfly
        .list(ListQuery {
            states,
            ..ListQuery::default()
        })
        .await;
    while let Some(page) = pages.next().await {
        for info in page? {
            let at = changed_at(&info).0;
            if after.is_some_and(|after| at < after)
                || (!request.context_id.is_empty() && task::context_of(&info) != request.context_id)
            {
                continue;
            }
            keys.push((at, info.id.0));
        }
    }
    keys.sort_unstable_by(|a, b| b.cmp(a));
    let total = keys.len();
    let start = cursor.map_or(0, |c| keys.partition_point(|k| *k >= c));
    let size = usize::try_from(page_size).unwrap_or(usize::MAX);
    let page = &keys[start..total.min(start.saturating_add(size))];
    let next = if start + page.len() < total {
        page.last()
            .map(|(at, id)| format!("{at}.{id}"))
            .unwrap_or_default()
    } else {
        String::new()
    };
    let with_artifacts = request.include_artifacts.unwrap_or(false);
    let mut tasks = Vec::with_capacity(page.len());
    for (_, id) in page {
        // A job forgotten since the scan is left out.
        let Ok(info) = job(door, JobId(*id)).await else {
            continue;
        };
        tasks.push(if with_artifacts {
            full_task(door, info).await
        } else {
            task_of(&info)
        });
    }
    list_answer(tasks, next, page_size, total)
}

/// The result of `ListTasks`.
fn list_answer(
    tasks: Vec<Task>,
    next_page_token: String,
    page_size: i64,
    total: usize,
) -> Result<Value, RpcError> {
    let answer = ListTasksResponse {
        tasks,
        next_page_token,
        page_size,
        total_size: i64::try_from(total).unwrap_or(i64::MAX),
    };
    serde_json::to_value(&answer)
        .map_err(|e| RpcError::internal(format!("cannot encode the listing: {e}")))
}

/// A `ListTasks` page token: where the previous page stopped.
fn cursor_of(token: &str) -> Result<Option<(u64, u64)>, RpcError> {
    if token.is_empty() {
        return Ok(None);
    }
    token
        .split_once('.')
        .and_then(|(at, id)| Some((at.parse().ok()?, id.parse().ok()?)))
        .map(Some)
        .ok_or_else(|| {
            RpcError::invalid_params(format!(
                "pageToken {token:?} is not one this agent gave; pass the nextPageToken of the \
                 previous page, or none for the first"
            ))
        })
}

/// An RFC 3339 time, in milliseconds since the epoch.
fn parse_time(text: &str) -> Result<u64, RpcError> {
    humantime::parse_rfc3339_weak(text)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .ok_or_else(|| {
            RpcError::invalid_params(format!(
                "statusTimestampAfter {text:?} is not an RFC 3339 time like \
                 2026-01-02T03:04:05.000Z"
            ))
        })
}

/// `CreateTaskPushNotificationConfig`.
async fn create_push(door: &Door, params_value: Value) -> Result<Value, RpcError> {
    let config: TaskPushNotificationConfig =
        params("CreateTaskPushNotificationConfig", params_value)?;
    let id = task_job(&config.task_id)?;
    job(door, id).await?;
    let made = door.push.create(id, config)?;
    serde_json::to_value(&made).map_err(|e| RpcError::internal(e.to_string()))
}

/// `GetTaskPushNotificationConfig`.
async fn get_push(door: &Door, params_value: Value) -> Result<Value, RpcError> {
    let request: PushConfigParams = params("GetTaskPushNotificationConfig", params_value)?;
    let id = task_job(&request.task_id)?;
    job(door, id).await?;
    let found = door.push.get(id, &request.id).ok_or_else(|| {
        RpcError::new(
            RpcError::TASK_NOT_FOUND,
            format!(
                "task {id} has no push notification configuration {:?} (its webhooks are \
                 forgotten once it has ended)",
                request.id
            ),
        )
    })?;
    serde_json::to_value(&found).map_err(|e| RpcError::internal(e.to_string()))
}

/// `ListTaskPushNotificationConfigs`.
async fn list_push(door: &Door, params_value: Value) -> Result<Value, RpcError> {
    let request: PushConfigParams = params("ListTaskPushNotificationConfigs", params_value)?;
    let id = task_job(&request.task_id)?;
    job(door, id).await?;
    let answer = ListPushConfigsResponse {
        configs: door.push.list(id),
        next_page_token: String::new(),
    };
    serde_json::to_value(&answer).map_err(|e| RpcError::internal(e.to_string()))
}

/// `DeleteTaskPushNotificationConfig`.
async fn delete_push(door: &Door, params_value: Value) -> Result<Value, RpcError> {
    let request: PushConfigParams = params("DeleteTaskPushNotificationConfig", params_value)?;
    let id = task_job(&request.task_id)?;
    job(door, id).await?;
    door.push.delete(id, &request.id);
    Ok(json!({}))
}

/// How often an idle stream sends a comment, so that proxies keep it open
/// and a client that has gone is noticed.
pub const KEEPALIVE: Duration = Duration::from_secs(15);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_envelope_is_checked_with_clear_errors() {
        let err = |body: &str| envelope(body.as_bytes()).unwrap_err();
        assert_eq!(err("{").1.code, RpcError::PARSE);
        assert!(err("[]").1.message.contains("batch"));
        assert!(
            err(r#"{"jsonrpc":"2.0","method":"GetTask"}"#)
                .1
                .message
                .contains("no \"id\"")
        );
        let (id, e) = err(r#"{"jsonrpc":"1.0","id":7,"method":"GetTask"}"#);
        assert_eq!((id, e.code), (json!(7), RpcError::INVALID_REQUEST));
        let (_, e) = err(r#"{"jsonrpc":"2.0","id":"a","method":"GetTask","params":[1]}"#);
        assert_eq!(e.code, RpcError::INVALID_PARAMS);
        let ok = envelope(br#"{"jsonrpc":"2.0","id":"a","method":"GetTask"}"#).unwrap();
        assert_eq!(
            (ok.id, ok.method, ok.params),
            (json!("a"), "GetTask".into(), json!({}))
        );
    }

    #[test]
    fn only_version_1_0_is_spoken() {
        assert!(check_version(Some("1.0")).is_ok());
        assert!(check_version(Some("1.0.2")).is_ok());
        assert!(check_version(Some("1")).is_ok());
        let e = check_version(None).unwrap_err();
        assert_eq!(e.code, RpcError::VERSION);
        assert!(e.message.contains("A2A-Version: 1.0"), "{}", e.message);
        assert!(check_version(Some("0.3")).is_err());
        assert!(check_version(Some("2.0")).is_err());
    }

    #[test]
    fn a2a_errors_carry_their_reason() {
        let e = RpcError::task_not_found("x").to_json();
        assert_eq!(e["code"], json!(-32001));
        assert_eq!(e["data"][0]["reason"], json!("TASK_NOT_FOUND"));
        assert!(RpcError::internal("x").to_json().get("data").is_none());
    }

    #[test]
    fn page_tokens_round_trip_and_bad_ones_are_refused() {
        assert_eq!(cursor_of("").unwrap(), None);
        assert_eq!(cursor_of("12.3").unwrap(), Some((12, 3)));
        assert!(cursor_of("abc").is_err());
        assert_eq!(parse_time("1970-01-01T00:00:01.5Z").unwrap(), 1_500);
        assert!(parse_time("yesterday").is_err());
    }
}
