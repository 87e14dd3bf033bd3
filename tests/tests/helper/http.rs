//! HTTP for the observability tests: a blocking client (hyper's, on a
//! one-off current-thread runtime, so the tests stay synchronous), free
//! loopback ports, a daemon fixture that serves `--http-addr`, and a parser
//! for the Prometheus text format.
//!
//! Only loopback addresses are used. Every request has a deadline.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::Daemon;

/// How long one HTTP exchange may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How many free ports a fixture tries before it gives up (another process
/// may take a port between our probe and the daemon's bind).
const PORT_ATTEMPTS: usize = 5;

/// An HTTP answer.
#[derive(Debug)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The `Content-Type` header, if any.
    pub content_type: Option<String>,
    /// The `Allow` header, if any.
    pub allow: Option<String>,
    /// The body, as text.
    pub body: String,
}

/// Sends `method url` (with `body`) and returns the answer, or why there was
/// none (e.g. connection refused).
pub fn request(method: &str, url: &str, body: &str) -> Result<HttpResponse, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a runtime: {e}"))?;
    let req = hyper::Request::builder()
        .method(method)
        .uri(url)
        .body(Full::new(Bytes::from(body.to_string())))
        .map_err(|e| format!("bad request {method} {url}: {e}"))?;
    runtime.block_on(async move {
        let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let exchange = async {
            let response = client.request(req).await.map_err(|e| {
                let mut text = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(cause) = source {
                    text.push_str(&format!(": {cause}"));
                    source = cause.source();
                }
                text
            })?;
            let header = |name: hyper::header::HeaderName| {
                response
                    .headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            };
            let status = response.status().as_u16();
            let content_type = header(hyper::header::CONTENT_TYPE);
            let allow = header(hyper::header::ALLOW);
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| format!("reading the body: {e}"))?
                .to_bytes();
            Ok(HttpResponse {
                status,
                content_type,
                allow,
                body: String::from_utf8_lossy(&body).into_owned(),
            })
        };
        tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {REQUEST_TIMEOUT:?}")))
    })
}

/// `GET url`.
pub fn get(url: &str) -> Result<HttpResponse, String> {
    request("GET", url, "")
}

/// A loopback port that was free a moment ago: bound on `127.0.0.1:0`, read,
/// released. Callers retry if someone else takes it first.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a probe socket on 127.0.0.1:0")
        .port()
}

impl Daemon {
    /// Starts a daemon (as [`Daemon::start`]) that serves HTTP on a free
    /// loopback port, and returns it with that address. A port taken
    /// between the probe and the daemon's bind makes the daemon exit with
    /// an error naming `--http-addr`; then another port is tried.
    pub fn start_with_http(extra_args: &[&str]) -> (Daemon, SocketAddr) {
        let mut last = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
            let addr_arg = addr.to_string();
            let mut args = vec!["--http-addr", addr_arg.as_str()];
            args.extend_from_slice(extra_args);
            let dir = tempfile::tempdir().expect("create a temp dir");
            let socket = dir.path().join("s.sock");
            let state = dir.path().join("state");
            let mut daemon = Daemon::spawn_full(dir, socket, state, &args);
            match daemon.try_wait_ready() {
                Ok(()) => return (daemon, addr),
                Err(e) if e.contains("(--http-addr): address in use") => last = e,
                Err(e) => panic!("{e}"),
            }
        }
        panic!("no free port after {PORT_ATTEMPTS} attempts; last failure: {last}");
    }
}

/// One sample of a scrape: `name{labels} value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The series name (with `_bucket`, `_sum`, `_count` for histograms).
    pub name: String,
    /// Its labels, unescaped.
    pub labels: BTreeMap<String, String>,
    /// Its value.
    pub value: f64,
}

/// A parsed Prometheus text-format scrape.
#[derive(Debug, Clone)]
pub struct Scrape {
    /// The text as served.
    pub text: String,
    /// Every sample, in order.
    pub samples: Vec<Sample>,
}

impl Scrape {
    /// Parses `text`; panics, quoting the line, on anything that is not the
    /// text format.
    pub fn parse(text: &str) -> Scrape {
        let samples = text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|line| {
                parse_sample(line).unwrap_or_else(|e| panic!("bad sample line {line:?}: {e}"))
            })
            .collect();
        Scrape {
            text: text.to_string(),
            samples,
        }
    }

    /// The value of the series `name` whose labels are exactly `labels`.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let want: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.samples
            .iter()
            .find(|s| s.name == name && s.labels == want)
            .map(|s| s.value)
    }

    /// Like [`Scrape::value`], with a series that does not exist yet read as
    /// 0 (counters appear on first use).
    pub fn value_or_zero(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.value(name, labels).unwrap_or(0.0)
    }

    /// The samples named `name` that carry every label of `labels` (and
    /// possibly more).
    pub fn matching(&self, name: &str, labels: &[(&str, &str)]) -> Vec<&Sample> {
        self.samples
            .iter()
            .filter(|s| {
                s.name == name
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).is_some_and(|x| x == v))
            })
            .collect()
    }
}

/// Parses one sample line: `name{k="v",...} value [timestamp]`.
fn parse_sample(line: &str) -> Result<Sample, String> {
    let (name, rest) = match line.find(['{', ' ']) {
        Some(i) => line.split_at(i),
        None => return Err("no value".into()),
    };
    let mut labels = BTreeMap::new();
    let rest = if let Some(body) = rest.strip_prefix('{') {
        let mut chars = body.char_indices().peekable();
        let end = loop {
            // label name
            let start = match chars.peek() {
                Some(&(i, '}')) => break i,
                Some(&(i, _)) => i,
                None => return Err("unterminated labels".into()),
            };
            let eq = body[start..].find('=').ok_or("label without =")? + start;
            let key = body[start..eq].to_string();
            while chars.peek().is_some_and(|&(i, _)| i <= eq) {
                chars.next();
            }
            if chars.next().map(|(_, c)| c) != Some('"') {
                return Err("label value not quoted".into());
            }
            let mut value = String::new();
            loop {
                match chars.next() {
                    Some((_, '\\')) => match chars.next() {
                        Some((_, 'n')) => value.push('\n'),
                        Some((_, c)) => value.push(c),
                        None => return Err("dangling escape".into()),
                    },
                    Some((_, '"')) => break,
                    Some((_, c)) => value.push(c),
                    None => return Err("unterminated label value".into()),
                }
            }
            labels.insert(key, value);
            if chars.peek().is_some_and(|&(_, c)| c == ',') {
                chars.next();
            }
        };
        &body[end + 1..]
    } else {
        rest
    };
    let value = rest
        .split_whitespace()
        .next()
        .ok_or("no value")?
        .parse::<f64>()
        .map_err(|e| format!("bad value: {e}"))?;
    Ok(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}
