//! Push notifications: each task's webhooks, and their delivery.
//!
//! A client registers a webhook for a task (`CreateTaskPushNotificationConfig`,
//! or `configuration.taskPushNotificationConfig` of `SendMessage`). From
//! then on the task is followed (`super::watch`): each change of its A2A
//! state is POSTed to every webhook of the task as a `StreamResponse`
//! holding a `statusUpdate` (the webhook asks `GetTask` for the
//! artifacts). The task's first webhook also hears the state the task is
//! in when it is registered; one added later hears from the next change
//! on (telling it the current state could overtake a change already
//! queued). After the task's end has been queued, its webhooks are
//! forgotten.
//!
//! Delivery never holds the daemon. Each webhook has its own queue, so one
//! webhook's notifications arrive in order and a dead webhook delays only
//! itself; all the queues together hold at most `--a2a-push-queue`
//! notifications, and a notification past that is dropped (logged and
//! counted in `mayfly_a2a_push_notifications_total{result="dropped"}`). A
//! POST that fails or answers other than 2xx is tried again after 1, 2
//! and 4 seconds, then given up (`result="failed"`); each try waits at most
//! 10 seconds for an answer.
//!
//! The registrations live in memory: after a restart, clients register
//! again (`docs/a2a.md`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use mayfly_protocol::JobId;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::rpc::RpcError;
use super::watch::{self, Telling, Watch};
use super::wire::{StreamResponse, TaskPushNotificationConfig};
use crate::metrics::Metrics;
use crate::service::Mayfly;

/// The most webhooks one task may have.
pub const MAX_PER_TASK: usize = 8;

/// The most webhooks registered at once, over all tasks.
pub const MAX_CONFIGS: usize = 4096;

/// The longest webhook URL, token or credentials taken.
const MAX_FIELD_CHARS: usize = 4096;

/// How long one POST may take.
const POST_TIMEOUT: Duration = Duration::from_secs(10);

/// The waits before the tries after the first.
const RETRY_DELAYS: [Duration; 3] = [
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
];

/// The header that carries a configuration's token to its webhook.
const TOKEN_HEADER: &str = "x-a2a-notification-token";

/// Every task's webhooks and their delivery: see the module documentation.
/// Cheap to clone.
#[derive(Debug, Clone)]
pub struct Push {
    /// What every clone shares.
    inner: Arc<Inner>,
}

/// What [`Push`] holds.
#[derive(Debug)]
struct Inner {
    /// The webhooks of each followed task.
    tasks: Mutex<HashMap<JobId, TaskHooks>>,
    /// How many webhooks are registered.
    count: AtomicUsize,
    /// The next configuration id handed out.
    next_id: AtomicU64,
    /// Notifications queued and not yet delivered or given up.
    pending: AtomicUsize,
    /// The most that may be pending.
    bound: usize,
    /// The HTTP client.
    client: Client<HttpConnector, Full<Bytes>>,
    /// The door's metrics.
    metrics: Arc<Metrics>,
    /// Fires when the door stops: deliveries and follows end.
    stop: CancellationToken,
    /// Where the follows and deliveries run.
    tasks_tracker: TaskTracker,
    /// To follow tasks.
    mayfly: Mayfly,
    /// To follow tasks.
    watch: Watch,
    /// Where job output lives.
    logs_dir: PathBuf,
}

/// One task's webhooks.
#[derive(Debug)]
struct TaskHooks {
    /// Each with the queue of its delivery task.
    hooks: Vec<(TaskPushNotificationConfig, mpsc::UnboundedSender<Bytes>)>,
    /// Stops the task's follow once it has no webhook left.
    follow: CancellationToken,
}

/// What the door hands [`Push::new`].
#[derive(Debug)]
pub struct PushContext {
    /// The service.
    pub mayfly: Mayfly,
    /// The door's watch.
    pub watch: Watch,
    /// Where job output lives.
    pub logs_dir: PathBuf,
    /// The door's metrics.
    pub metrics: Arc<Metrics>,
    /// `--a2a-push-queue`.
    pub bound: usize,
    /// Fires when the door stops.
    pub stop: CancellationToken,
    /// Where its tasks run.
    pub tracker: TaskTracker,
}

/// Checks a webhook's configuration before anything is changed: an
/// `http://` URL with a host, and fields of sane length.
pub fn check(config: &TaskPushNotificationConfig) -> Result<Uri, RpcError> {
    let field = "taskPushNotificationConfig";
    if config.url.is_empty() {
        return Err(RpcError::invalid_params(format!(
            "{field}.url is missing: give the webhook's http:// URL"
        )));
    }
    let long = [
        ("url", config.url.len()),
        ("token", config.token.len()),
        (
            "authentication.credentials",
            config
                .authentication
                .as_ref()
                .map_or(0, |a| a.credentials.len() + a.scheme.len()),
        ),
    ]
    .into_iter()
    .find(|(_, len)| *len > MAX_FIELD_CHARS);
    if let Some((name, len)) = long {
        return Err(RpcError::invalid_params(format!(
            "{field}.{name} is {len} characters long; the most this agent takes is {MAX_FIELD_CHARS}"
        )));
    }
    let uri: Uri = config.url.parse().map_err(|e| {
        RpcError::invalid_params(format!(
            "{field}.url {:?} is not a URL ({e}); write it like http://127.0.0.1:8000/hook",
            config.url
        ))
    })?;
    match uri.scheme_str() {
        Some("http") if uri.host().is_some_and(|h| !h.is_empty()) => Ok(uri),
        Some("https") => Err(RpcError::invalid_params(format!(
            "{field}.url: this agent sends push notifications over plain http:// only (it has no \
             TLS client); give an http:// URL, or a TLS-terminating proxy in front of the webhook"
        ))),
        _ => Err(RpcError::invalid_params(format!(
            "{field}.url {:?} is not an http:// URL with a host; write it like \
             http://127.0.0.1:8000/hook",
            config.url
        ))),
    }
}

impl Push {
    /// No webhooks yet.
    pub fn new(ctx: PushContext) -> Self {
        let client = Client::builder(TokioExecutor::new()).build_http();
        Self {
            inner: Arc::new(Inner {
                tasks: Mutex::new(HashMap::new()),
                count: AtomicUsize::new(0),
                next_id: AtomicU64::new(1),
                pending: AtomicUsize::new(0),
                bound: ctx.bound,
                client,
                metrics: ctx.metrics,
                stop: ctx.stop,
                tasks_tracker: ctx.tracker,
                mayfly: ctx.mayfly,
                watch: ctx.watch,
                logs_dir: ctx.logs_dir,
            }),
        }
    }

    /// The table, locked (it holds no invariant a panic could break).
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<JobId, TaskHooks>> {
        self.inner.tasks.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// True when one more webhook may be registered for job `id` (for a
    /// check before the job exists).
    pub fn has_room(&self, id: Option<JobId>) -> Result<(), RpcError> {
        if self.inner.count.load(Ordering::Acquire) >= MAX_CONFIGS {
            return Err(RpcError::internal(format!(
                "this agent holds {MAX_CONFIGS} push notification configurations already, the \
                 most it keeps; delete some, or wait for their tasks to end"
            )));
        }
        if let Some(id) = id
            && self
                .lock()
                .get(&id)
                .is_some_and(|t| t.hooks.len() >= MAX_PER_TASK)
        {
            return Err(RpcError::invalid_params(format!(
                "task {id} has {MAX_PER_TASK} push notification configurations already, the most \
                 a task may have; delete one first"
            )));
        }
        Ok(())
    }

    /// Registers a webhook for job `id` (which exists), replacing one of
    /// the same id; returns it with its id and task filled in.
    pub fn create(
        &self,
        id: JobId,
        mut config: TaskPushNotificationConfig,
    ) -> Result<TaskPushNotificationConfig, RpcError> {
        let uri = check(&config)?;
        config.task_id = id.to_string();
        if config.id.is_empty() {
            config.id = self
                .inner
                .next_id
                .fetch_add(1, Ordering::Relaxed)
                .to_string();
        }
        let mut table = self.lock();
        let replaces = table
            .get(&id)
            .is_some_and(|t| t.hooks.iter().any(|(c, _)| c.id == config.id));
        if !replaces {
            drop(table);
            self.has_room(Some(id))?;
            table = self.lock();
        }
        let queue = self.start_delivery(&config, uri);
        let new_task = !table.contains_key(&id);
        let hooks = table.entry(id).or_insert_with(|| TaskHooks {
            hooks: Vec::new(),
            follow: self.inner.stop.child_token(),
        });
        if let Some(slot) = hooks.hooks.iter_mut().find(|(c, _)| c.id == config.id) {
            *slot = (config.clone(), queue);
        } else {
            hooks.hooks.push((config.clone(), queue));
            self.inner.count.fetch_add(1, Ordering::AcqRel);
        }
        let follow = hooks.follow.clone();
        drop(table);
        if new_task {
            self.start_follow(id, follow);
        }
        Ok(config)
    }

    /// Job `id`'s webhook `config_id`.
    pub fn get(&self, id: JobId, config_id: &str) -> Option<TaskPushNotificationConfig> {
        self.lock()
            .get(&id)?
            .hooks
            .iter()
            .find(|(c, _)| c.id == config_id)
            .map(|(c, _)| c.clone())
    }

    /// Job `id`'s webhooks.
    pub fn list(&self, id: JobId) -> Vec<TaskPushNotificationConfig> {
        self.lock()
            .get(&id)
            .map(|t| t.hooks.iter().map(|(c, _)| c.clone()).collect())
            .unwrap_or_default()
    }

    /// Forgets job `id`'s webhook `config_id` (what is queued for it is
    /// still delivered). Deleting one that is not there is no error.
    pub fn delete(&self, id: JobId, config_id: &str) {
        let mut table = self.lock();
        let Some(hooks) = table.get_mut(&id) else {
            return;
        };
        let before = hooks.hooks.len();
        hooks.hooks.retain(|(c, _)| c.id != config_id);
        self.inner
            .count
            .fetch_sub(before - hooks.hooks.len(), Ordering::AcqRel);
        if hooks.hooks.is_empty()
            && let Some(gone) = table.remove(&id)
        {
            gone.follow.cancel();
        }
    }

    /// Forgets every webhook of job `id` (its end has been queued).
    fn forget(&self, id: JobId) {
        if let Some(gone) = self.lock().remove(&id) {
            self.inner
                .count
                .fetch_sub(gone.hooks.len(), Ordering::AcqRel);
            gone.follow.cancel();
        }
    }

    /// Follows job `id` and queues each status it tells to the job's
    /// webhooks; forgets them after its end.
    fn start_follow(&self, id: JobId, follow: CancellationToken) {
        let push = self.clone();
        self.inner.tasks_tracker.spawn(async move {
            let (tx, mut rx) = mpsc::channel(4);
            let inner = &push.inner;
            let end = tokio::select! {
                end = watch::follow(
                    &inner.mayfly,
                    &inner.watch,
                    inner.logs_dir.clone(),
                    id,
                    Telling::Status,
                    &tx,
                    &follow,
                ) => end,
                () = async {
                    while let Some(item) = rx.recv().await {
                        push.enqueue(id, &item);
                    }
                } => return,
            };
            // What the follow sent last (the end) may still be in the channel.
            while let Ok(item) = rx.try_recv() {
                push.enqueue(id, &item);
            }
            if let watch::FollowEnd::Failed(e) = &end {
                tracing::debug!(job = %id, error = %e.message, "stopped following a task for its webhooks");
            }
            push.forget(id);
        });
    }

    /// Queues `item` for every webhook of job `id`, or drops it for those
    /// whose queue is full.
    fn enqueue(&self, id: JobId, item: &StreamResponse) {
        let body = match serde_json::to_vec(item) {
            Ok(body) => Bytes::from(body),
            Err(e) => {
                tracing::warn!(job = %id, error = %e, "cannot encode a push notification");
                return;
            }
        };
        let table = self.lock();
        let Some(hooks) = table.get(&id) else { return };
        for (config, queue) in &hooks.hooks {
            let pending = self.inner.pending.fetch_add(1, Ordering::AcqRel);
            if pending >= self.inner.bound {
                self.inner.pending.fetch_sub(1, Ordering::AcqRel);
                self.inner.metrics.a2a_push("dropped");
                tracing::warn!(job = %id, url = %config.url, bound = self.inner.bound, "push notification dropped: the queue of undelivered notifications is full (--a2a-push-queue)");
                continue;
            }
            if queue.send(body.clone()).is_err() {
                self.inner.pending.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }

    /// Starts the delivery task of one webhook; returns its queue.
    fn start_delivery(
        &self,
        config: &TaskPushNotificationConfig,
        uri: Uri,
    ) -> mpsc::UnboundedSender<Bytes> {
        let (tx, mut rx) = mpsc::unbounded_channel::<Bytes>();
        let inner = self.inner.clone();
        let headers = headers_of(config);
        let url = config.url.clone();
        self.inner.tasks_tracker.spawn(async move {
            while let Some(body) = rx.recv().await {
                let delivered = tokio::select! {
                    ok = post_with_retries(&inner.client, &uri, &headers, body) => ok,
                    () = inner.stop.cancelled() => return,
                };
                inner.pending.fetch_sub(1, Ordering::AcqRel);
                if delivered {
                    inner.metrics.a2a_push("delivered");
                } else {
                    inner.metrics.a2a_push("failed");
                    tracing::warn!(%url, "gave up a push notification after 4 tries");
                }
            }
        });
        tx
    }
}

/// The extra headers of a webhook's POSTs: its token, its credentials.
fn headers_of(config: &TaskPushNotificationConfig) -> Vec<(&'static str, HeaderValue)> {
    let mut headers = Vec::new();
    if !config.token.is_empty()
        && let Ok(value) = HeaderValue::from_str(&config.token)
    {
        headers.push((TOKEN_HEADER, value));
    }
    if let Some(auth) = &config.authentication
        && !auth.scheme.is_empty()
        && !auth.credentials.is_empty()
        && let Ok(value) = HeaderValue::from_str(&format!("{} {}", auth.scheme, auth.credentials))
    {
        headers.push((AUTHORIZATION.as_str(), value));
    }
    headers
}

/// POSTs `body` to `uri`, trying again after each of [`RETRY_DELAYS`];
/// true once a try is answered 2xx.
async fn post_with_retries(
    client: &Client<HttpConnector, Full<Bytes>>,
    uri: &Uri,
    headers: &[(&'static str, HeaderValue)],
    body: Bytes,
) -> bool {
    for delay in std::iter::once(Duration::ZERO).chain(RETRY_DELAYS) {
        tokio::time::sleep(delay).await;
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(uri.clone())
            .header(CONTENT_TYPE, "application/json");
        for (name, value) in headers {
            request = request.header(*name, value.clone());
        }
        let Ok(request) = request.body(Full::new(body.clone())) else {
            return false;
        };
        match tokio::time::timeout(POST_TIMEOUT, client.request(request)).await {
            Ok(Ok(response)) if response.status().is_success() => return true,
            Ok(Ok(response)) => {
                tracing::debug!(%uri, status = %response.status(), "a webhook refused a push notification")
            }
            Ok(Err(e)) => {
                tracing::debug!(%uri, error = %e, "a push notification was not delivered")
            }
            Err(_) => tracing::debug!(%uri, "a webhook did not answer within 10s"),
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::a2a::wire::AuthenticationInfo;

    /// A configuration for `url`.
    fn config(url: &str) -> TaskPushNotificationConfig {
        TaskPushNotificationConfig {
            url: url.into(),
            ..TaskPushNotificationConfig::default()
        }
    }

    #[test]
    fn webhooks_are_plain_http_with_a_host() {
        assert!(check(&config("http://127.0.0.1:8000/hook")).is_ok());
        for (url, says) in [
            ("", "missing"),
            ("https://example.invalid/hook", "plain http:// only"),
            ("ftp://x/", "not an http:// URL"),
            ("/hook", "not an http:// URL"),
            ("http://", "not a URL"),
        ] {
            let err = check(&config(url)).unwrap_err();
            assert!(err.message.contains(says), "{url:?}: {}", err.message);
            assert_eq!(err.code, RpcError::INVALID_PARAMS);
        }
        let long = config(&format!("http://h/{}", "x".repeat(MAX_FIELD_CHARS)));
        assert!(
            check(&long)
                .unwrap_err()
                .message
                .contains("characters long")
        );
    }

    #[test]
    fn the_token_and_credentials_become_headers() {
        let mut c = config("http://h/");
        c.token = "t0k".into();
        c.authentication = Some(AuthenticationInfo {
            scheme: "Bearer".into(),
            credentials: "secret".into(),
        });
        let headers = headers_of(&c);
        assert_eq!(headers[0], (TOKEN_HEADER, HeaderValue::from_static("t0k")));
        assert_eq!(
            headers[1],
            ("authorization", HeaderValue::from_static("Bearer secret"))
        );
        assert!(headers_of(&config("http://h/")).is_empty());
    }
}
