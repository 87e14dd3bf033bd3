//! The metrics pusher: the `looptask_metrics` system task.
//!
//! Every `--metrics-interval` it runs the [`Refresh`] hook (so sampled
//! gauges stay current even when nobody scrapes) and, with
//! `--push-gateway URL`, PUTs every metric in the text format to
//! `URL/metrics/job/mayflyd/instance/INSTANCE`, where INSTANCE is the host
//! name (the pid when the host has no name). PUT replaces the group's
//! metrics on the gateway, so series that vanished here vanish there too.
//!
//! # Conventions
//!
//! - Only plain `http://` gateways are supported (no TLS client is built
//!   in); the URL is checked when the flags are parsed
//!   ([`parse_gateway`]). Put a TLS-terminating proxy in front of a remote
//!   gateway if one is needed.
//! - A gateway that is down or refuses the push is never fatal: the failure
//!   is logged once (a warning) when pushing starts to fail, once (info)
//!   when it works again, and the push is retried on the next tick.
//! - Each push is bounded by [`push_timeout`], so a gateway that accepts
//!   connections but never answers cannot pile up requests.
//! - When the daemon stops, one last push (bounded to a second) leaves the
//!   final counts on the gateway.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::CONTENT_TYPE;
use hyper::{Method, Request, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio_util::sync::CancellationToken;

use crate::metrics::{self, Metrics, Refresh};

/// The Pushgateway `job` label of this daemon.
pub const JOB: &str = "mayflyd";

/// How long the refresh hook may take before a push goes out without it.
const REFRESH_TIMEOUT: Duration = Duration::from_secs(2);

/// How long the final push at shutdown may take.
const FINAL_PUSH_TIMEOUT: Duration = Duration::from_secs(1);

/// How much of a refusing gateway's answer goes into the log.
const ERROR_BODY_CHARS: usize = 200;

/// What the pusher does.
#[derive(Debug, Clone)]
pub struct PushConfig {
    /// The gateway's base URL (`http://HOST:PORT[/PATH]`); `None` pushes
    /// nothing (the task then only keeps the gauges fresh).
    pub gateway: Option<Uri>,
    /// Time between pushes.
    pub interval: Duration,
}

/// Why one push failed.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// No HTTP exchange: connection refused, reset, bad address, ...
    #[error("cannot push metrics to {url}: {reason}")]
    Request {
        /// Where to.
        url: Uri,
        /// The client's error, with its causes.
        reason: String,
    },
    /// The gateway answered with an error status.
    #[error("{url} refused the metrics push: {status} {body}")]
    Refused {
        /// Where to.
        url: Uri,
        /// Its status.
        status: hyper::StatusCode,
        /// The start of its answer.
        body: String,
    },
    /// No answer in time.
    #[error("{url} did not answer the metrics push within {}", humantime::format_duration(*.timeout))]
    Timeout {
        /// Where to.
        url: Uri,
        /// How long we waited.
        timeout: Duration,
    },
}

/// Checks a `--push-gateway` value: an `http://` URL with a host and no
/// query; its path (if any) is the gateway's prefix.
pub fn parse_gateway(s: &str) -> Result<Uri, String> {
    let uri: Uri = s
        .parse()
        .map_err(|e| format!("{e} (write it like http://127.0.0.1:9091)"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(
                "https is not supported; give an http:// URL (a local gateway, or a \
                        TLS-terminating proxy in front of a remote one)"
                    .to_string(),
            );
        }
        _ => return Err("give an http:// URL, like http://127.0.0.1:9091".to_string()),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err("the URL has no host; write it like http://127.0.0.1:9091".to_string());
    }
    if uri.query().is_some() {
        return Err("the URL must not have a query string".to_string());
    }
    Ok(uri)
}

/// The name this daemon pushes under: the host name, else `pid-PID`.
pub fn instance_name() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| format!("pid-{}", std::process::id()))
}

/// Percent-encodes `s` for one URL path segment (everything but RFC 3986's
/// unreserved characters).
fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The URL one daemon's metrics go to on `gateway`.
pub fn push_url(gateway: &Uri, instance: &str) -> Result<Uri, String> {
    let scheme = gateway.scheme_str().unwrap_or("http");
    let authority = gateway.authority().map(|a| a.as_str()).unwrap_or_default();
    let prefix = gateway.path().trim_end_matches('/');
    format!(
        "{scheme}://{authority}{prefix}/metrics/job/{JOB}/instance/{}",
        path_segment(instance)
    )
    .parse()
    .map_err(|e| format!("cannot build the push URL from {gateway}: {e}"))
}

/// The longest one push may take: the interval, within 1 to 10 seconds.
pub fn push_timeout(interval: Duration) -> Duration {
    interval.clamp(Duration::from_secs(1), Duration::from_secs(10))
}

/// How pushing went last time, so that only changes are logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Health {
    /// Nothing pushed yet.
    Unknown,
    /// The last push worked.
    Working,
    /// The last push failed.
    Failing,
}

/// One gateway client.
struct Pusher {
    /// The HTTP client (keeps the connection alive between pushes).
    client: Client<HttpConnector, Full<Bytes>>,
    /// Where to PUT.
    url: Uri,
    /// How pushing went last time.
    health: Health,
}

impl Pusher {
    /// A client for `url`.
    fn new(url: Uri) -> Self {
        Self {
            client: Client::builder(TokioExecutor::new()).build_http(),
            url,
            health: Health::Unknown,
        }
    }

    /// PUTs `body`, waiting at most `timeout`.
    async fn push(&self, body: String, timeout: Duration) -> Result<(), PushError> {
        let request = Request::builder()
            .method(Method::PUT)
            .uri(self.url.clone())
            .header(CONTENT_TYPE, metrics::CONTENT_TYPE)
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| PushError::Request {
                url: self.url.clone(),
                reason: e.to_string(),
            })?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| PushError::Request {
                    url: self.url.clone(),
                    reason: error_chain(&e),
                })?;
            let status = response.status();
            if status.is_success() {
                return Ok(());
            }
            let body = match response.into_body().collect().await {
                Ok(b) => String::from_utf8_lossy(&b.to_bytes())
                    .trim()
                    .chars()
                    .take(ERROR_BODY_CHARS)
                    .collect(),
                Err(_) => String::new(),
            };
            Err(PushError::Refused {
                url: self.url.clone(),
                status,
                body,
            })
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .unwrap_or_else(|_| {
                Err(PushError::Timeout {
                    url: self.url.clone(),
                    timeout,
                })
            })
    }

    /// Pushes and logs a change between working and failing.
    async fn push_and_report(&mut self, body: String, timeout: Duration, every: Duration) {
        match self.push(body, timeout).await {
            Ok(()) => {
                match self.health {
                    Health::Unknown => {
                        tracing::info!(url = %self.url, "pushing metrics to the Pushgateway");
                    }
                    Health::Failing => {
                        tracing::info!(url = %self.url, "metrics push works again");
                    }
                    Health::Working => {}
                }
                self.health = Health::Working;
            }
            Err(e) => {
                if self.health == Health::Failing {
                    tracing::debug!(error = %e, "metrics push failed again");
                } else {
                    tracing::warn!(
                        error = %e,
                        "metrics push failed; retrying every {} (logged again only once it works)",
                        humantime::format_duration(every)
                    );
                }
                self.health = Health::Failing;
            }
        }
    }
}

/// An error and its causes on one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Runs `refresh` if there is one, for at most [`REFRESH_TIMEOUT`].
async fn run_refresh(refresh: Option<&Refresh>) {
    if let Some(refresh) = refresh
        && tokio::time::timeout(REFRESH_TIMEOUT, refresh())
            .await
            .is_err()
    {
        tracing::debug!("metrics refresh timed out");
    }
}

/// The task body: ticks until `shutdown` fires (see the module docs).
pub async fn run(
    metrics: Arc<Metrics>,
    refresh: Option<Refresh>,
    config: PushConfig,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut pusher = match &config.gateway {
        Some(gateway) => Some(Pusher::new(
            push_url(gateway, &instance_name()).map_err(anyhow::Error::msg)?,
        )),
        None => None,
    };
    let timeout = push_timeout(config.interval);
    let mut tick = tokio::time::interval(config.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = shutdown.cancelled() => break,
        }
        run_refresh(refresh.as_ref()).await;
        if let Some(pusher) = pusher.as_mut() {
            tokio::select! {
                () = pusher.push_and_report(metrics.render(), timeout, config.interval) => {}
                () = shutdown.cancelled() => break,
            }
        }
    }
    if let Some(pusher) = pusher {
        // The driver has finished: the gauges are as final as they get.
        if let Err(e) = pusher.push(metrics.render(), FINAL_PUSH_TIMEOUT).await {
            tracing::debug!(error = %e, "final metrics push failed");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::body::Incoming;
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    use hyper::{Response, StatusCode};
    use hyper_util::rt::TokioIo;
    use tokio::sync::mpsc;

    #[test]
    fn gateway_urls_are_checked() {
        assert!(parse_gateway("http://127.0.0.1:9091").is_ok());
        assert!(parse_gateway("http://gw.local/prefix/").is_ok());
        let https = parse_gateway("https://gw:9091").unwrap_err();
        assert!(https.contains("https is not supported"), "{https}");
        assert!(parse_gateway("127.0.0.1:9091").is_err());
        assert!(parse_gateway("ftp://gw").is_err());
        assert!(parse_gateway("http://gw:9091/?x=1").is_err());
        assert!(parse_gateway("not a url").is_err());
    }

    #[test]
    fn the_push_url_names_job_and_instance() {
        let gw = parse_gateway("http://127.0.0.1:9091").unwrap();
        assert_eq!(
            push_url(&gw, "box-1.lan").unwrap().to_string(),
            "http://127.0.0.1:9091/metrics/job/mayflyd/instance/box-1.lan"
        );
        let gw = parse_gateway("http://gw:80/pgw/").unwrap();
        assert_eq!(
            push_url(&gw, "a b/c").unwrap().to_string(),
            "http://gw:80/pgw/metrics/job/mayflyd/instance/a%20b%2Fc"
        );
        assert!(!instance_name().is_empty());
    }

    #[test]
    fn push_timeouts_stay_within_bounds() {
        assert_eq!(
            push_timeout(Duration::from_millis(200)),
            Duration::from_secs(1)
        );
        assert_eq!(push_timeout(Duration::from_secs(5)), Duration::from_secs(5));
        assert_eq!(
            push_timeout(Duration::from_secs(60)),
            Duration::from_secs(10)
        );
    }

    /// One request a fake gateway received.
    #[derive(Debug)]
    struct Seen {
        /// Its method.
        method: Method,
        /// Its path.
        path: String,
        /// Its Content-Type.
        content_type: String,
        /// Its body.
        body: String,
    }

    /// A fake gateway on `127.0.0.1:0` that answers the first `failures`
    /// requests with 500 and the rest with 200, reporting each request.
    async fn fake_gateway(failures: usize) -> (Uri, mpsc::UnboundedReceiver<Seen>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        let served = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let tx = tx.clone();
                let served = served.clone();
                let service = service_fn(move |req: Request<Incoming>| {
                    let tx = tx.clone();
                    let served = served.clone();
                    async move {
                        let method = req.method().clone();
                        let path = req.uri().path().to_string();
                        let content_type = req
                            .headers()
                            .get(CONTENT_TYPE)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_string();
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        let _ = tx.send(Seen {
                            method,
                            path,
                            content_type,
                            body: String::from_utf8_lossy(&body).into_owned(),
                        });
                        let n = served.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        let status = if n < failures {
                            StatusCode::INTERNAL_SERVER_ERROR
                        } else {
                            StatusCode::OK
                        };
                        let mut response = Response::new(Full::new(Bytes::from_static(b"")));
                        *response.status_mut() = status;
                        Ok::<_, std::convert::Infallible>(response)
                    }
                });
                tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
            }
        });
        (format!("http://{addr}").parse().unwrap(), rx)
    }

    /// The next request the fake gateway saw, within 10 seconds.
    async fn next(rx: &mut mpsc::UnboundedReceiver<Seen>) -> Seen {
        tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("a push within 10 s")
            .expect("the fake gateway runs")
    }

    #[tokio::test]
    async fn pushes_put_the_text_format_and_survive_a_refusing_gateway() {
        let (gateway, mut seen) = fake_gateway(2).await;
        let metrics = Metrics::new().unwrap();
        metrics.job_submitted("pushq");
        let refreshes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = refreshes.clone();
        let refresh: Refresh = Arc::new(move || {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Box::pin(async {})
        });
        let stop = CancellationToken::new();
        let task = tokio::spawn(run(
            metrics,
            Some(refresh),
            PushConfig {
                gateway: Some(gateway),
                interval: Duration::from_millis(50),
            },
            stop.clone(),
        ));
        // Two refused pushes, then one that works: the task keeps going.
        for _ in 0..3 {
            let push = next(&mut seen).await;
            assert_eq!(push.method, Method::PUT);
            assert_eq!(
                push.path,
                format!(
                    "/metrics/job/mayflyd/instance/{}",
                    path_segment(&instance_name())
                )
            );
            assert_eq!(push.content_type, "text/plain; version=0.0.4");
            assert!(
                push.body
                    .contains("mayfly_jobs_submitted_total{queue=\"pushq\"} 1"),
                "{}",
                push.body
            );
        }
        assert!(refreshes.load(std::sync::atomic::Ordering::SeqCst) >= 3);
        stop.cancel();
        let result = tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("the task stops on shutdown")
            .unwrap();
        assert!(result.is_ok(), "{result:?}");
    }

    #[tokio::test]
    async fn a_gateway_that_is_down_is_not_fatal() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let (ticks_tx, mut ticks) = mpsc::unbounded_channel();
        let refresh: Refresh = Arc::new(move || {
            let _ = ticks_tx.send(());
            Box::pin(async {})
        });
        let stop = CancellationToken::new();
        let task = tokio::spawn(run(
            Metrics::new().unwrap(),
            Some(refresh),
            PushConfig {
                gateway: Some(format!("http://127.0.0.1:{port}").parse().unwrap()),
                interval: Duration::from_millis(20),
            },
            stop.clone(),
        ));
        // A refresh starts every tick: three of them mean two failed pushes
        // were followed by more ticks.
        for _ in 0..3 {
            tokio::time::timeout(Duration::from_secs(10), ticks.recv())
                .await
                .expect("the pusher keeps ticking")
                .expect("the pusher runs");
        }
        assert!(!task.is_finished(), "the pusher gave up");
        stop.cancel();
        let result = tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("the task stops on shutdown")
            .unwrap();
        assert!(result.is_ok(), "{result:?}");
    }
}
