//! The daemon's Prometheus metrics: one [`Metrics`] per daemon, shared as
//! `Arc<Metrics>` by the driver, the sessions, the journal thread, the HTTP
//! server and the pusher.
//!
//! # What it owns
//!
//! Its own [`Registry`] (nothing is registered globally, so several daemons
//! can live in one process, as the tests do) holding every `mayfly_*` family
//! listed in `docs/metrics.md` plus the standard `process_*` metrics of
//! [`ProcessCollector::for_self`]. [`Metrics::render`] produces the
//! Prometheus text format for `GET /metrics` and the Pushgateway.
//!
//! # Conventions
//!
//! Counters end in `_total`, times are in seconds, `outcome` is the terminal
//! state's contract name (`succeeded`, `failed`, `cancelled`, `timed_out`,
//! `skipped`, `interrupted`), `result` is `ok` or `error`. The first time a
//! queue is seen, every series of that queue is created at zero (including
//! each outcome), so `rate()` and `increase()` work from the first scrape.
//!
//! # Locking
//!
//! Updating a metric never takes a lock that the submit path waits on. The
//! families' `with_label_values` looks the child up under a read lock inside
//! the vec (and takes its write lock to create a child), and `render` holds
//! those read locks while it collects; a pending writer makes new readers
//! queue behind it. So the hot paths ([`Metrics::job_submitted`],
//! [`Metrics::job_started`], [`Metrics::job_finished`],
//! [`Metrics::ipc_request`], [`Metrics::grpc_request`] when it answers `OK`)
//! do not call `with_label_values` at all after a label's first use: they find the label's children in a copy-on-write map
//! behind an [`ArcSwap`], whose `load` is lock-free and never waits on
//! anything, and then update the children, which are plain atomics
//! (histogram observations are lock-free too; a concurrent collect never
//! blocks them). Only the first use of a queue, request kind or gRPC method
//! takes the vecs' write locks once, to create its children, and copies the
//! small map.
//! The rare paths (queue gauges, system tasks, the WAL's unlabelled series)
//! update children directly or through `with_label_values`, whose read lock
//! is shared with other readers and is held for a hash lookup.
//!
//! Queue names come from clients, so the number of series grows with the
//! number of distinct queues ever used (about 40 series each, histogram
//! buckets included); queues are expected to be a handful to a few hundred.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use mayfly_protocol::{JobState, QueueInfo, Usage};
use prometheus::core::Collector;
use prometheus::process_collector::ProcessCollector;
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// The content type of [`Metrics::render`]'s output (Prometheus text format
/// 0.0.4).
pub const CONTENT_TYPE: &str = prometheus::TEXT_FORMAT;

/// Something to run before the metrics are read (by a scrape or a push), so
/// that gauges sampled from the driver's state (queued and running jobs per
/// queue) are current. It typically asks the driver for its queue counts
/// and calls [`Metrics::set_queue_gauges`]. Callers bound how long they wait
/// for it.
pub type Refresh = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// The terminal states, in the order of [`QueueSeries::finished`].
const TERMINAL: [JobState; 6] = [
    JobState::Succeeded,
    JobState::Failed,
    JobState::Cancelled,
    JobState::TimedOut,
    JobState::Skipped,
    JobState::Interrupted,
];

/// Buckets of the job wait time (submit to start): from a millisecond to
/// hours, because jobs may wait on dependencies and `--at` times.
const WAIT_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 14400.0,
];

/// Buckets of the job run time: from 10 ms to six hours.
const RUN_BUCKETS: &[f64] = &[
    0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 21600.0,
];

/// Buckets of a job's CPU time (user + system): from 10 ms to six hours.
const CPU_BUCKETS: &[f64] = RUN_BUCKETS;

/// Buckets of a job's peak resident memory, in bytes: 1 MiB to 64 GiB, by
/// fours.
const RSS_BUCKETS: &[f64] = &[
    1048576.0,
    4194304.0,
    16777216.0,
    67108864.0,
    268435456.0,
    1073741824.0,
    4294967296.0,
    17179869184.0,
    68719476736.0,
];

/// Buckets of IPC request latency: a submit takes about a millisecond
/// (most of it the fsync); streams (`wait`, `logs --follow`) land high.
const IPC_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// Buckets of the WAL's fdatasync time: tens of microseconds on a good SSD,
/// seconds on a sick disk.
const FSYNC_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5,
];

/// The children of one queue's series, resolved once (see "Locking").
#[derive(Clone)]
struct QueueSeries {
    /// `mayfly_jobs_submitted_total{queue}`.
    submitted: IntCounter,
    /// `mayfly_jobs_finished_total{queue,outcome}`, indexed like [`TERMINAL`].
    finished: [IntCounter; TERMINAL.len()],
    /// `mayfly_jobs_queued{queue}`.
    queued: IntGauge,
    /// `mayfly_jobs_running{queue}`.
    running: IntGauge,
    /// `mayfly_job_wait_seconds{queue}`.
    wait: Histogram,
    /// `mayfly_job_run_seconds{queue}`.
    run: Histogram,
    /// `mayfly_job_cpu_seconds{queue}`.
    cpu: Histogram,
    /// `mayfly_job_max_rss_bytes{queue}`.
    max_rss: Histogram,
}

/// The children of one request kind's series, resolved once.
#[derive(Clone)]
struct KindSeries {
    /// `mayfly_ipc_requests_total{kind,result="ok"}`.
    ok: IntCounter,
    /// `mayfly_ipc_requests_total{kind,result="error"}`.
    error: IntCounter,
    /// `mayfly_ipc_request_duration_seconds{kind}`.
    duration: Histogram,
}

/// The children of one gRPC method's series, resolved once.
#[derive(Clone)]
struct MethodSeries {
    /// `mayfly_grpc_requests_total{method,code="OK"}`; the other codes go
    /// through the vec (failures are the rare path).
    ok: IntCounter,
    /// `mayfly_grpc_request_duration_seconds{method}`.
    duration: Histogram,
}

/// A read-mostly map from a label value to its resolved children: lookups
/// are lock-free ([`ArcSwap::load`]); an insert copies the map.
struct LabelCache<T> {
    /// The current map; replaced whole on insert.
    map: ArcSwap<HashMap<String, T>>,
}

impl<T: Clone> LabelCache<T> {
    /// An empty cache.
    fn new() -> Self {
        Self {
            map: ArcSwap::from_pointee(HashMap::new()),
        }
    }

    /// Runs `f` on the children of `key`, creating them with `make` on first
    /// use. Two threads missing at once may both call `make`; both get the
    /// same children from the vecs, so either copy is as good.
    fn with<R>(&self, key: &str, make: impl FnOnce() -> T, f: impl FnOnce(&T) -> R) -> R {
        if let Some(series) = self.map.load().get(key) {
            return f(series);
        }
        let made = make();
        let result = f(&made);
        self.map.rcu(|map| {
            let mut map = HashMap::clone(map);
            map.entry(key.to_string()).or_insert_with(|| made.clone());
            map
        });
        result
    }

    /// The keys and children present now.
    fn snapshot(&self) -> Arc<HashMap<String, T>> {
        self.map.load_full()
    }
}

/// Every metric of one daemon; see the module documentation.
pub struct Metrics {
    /// The registry `render` gathers; private to this daemon.
    registry: Registry,
    /// The per-queue job families.
    jobs: JobFamilies,
    /// The Unix-socket families.
    ipc: IpcFamilies,
    /// The write-ahead log's families.
    wal: WalFamilies,
    /// The A2A door's and executor's families.
    #[cfg(feature = "a2a")]
    a2a: A2aFamilies,
    /// The gRPC door's families (registered in every build; without the
    /// `grpc` feature they stay empty and are not rendered).
    grpc: GrpcFamilies,
    /// `mayfly_system_task_up{name}`.
    system_task_up: IntGaugeVec,
    /// The families of each executor (local, slurm).
    executors: ExecutorFamilies,
    /// `mayfly_callbacks_total{result}`.
    callbacks: IntCounterVec,
    /// Resolved per-queue children, for the job hot paths.
    queues: LabelCache<QueueSeries>,
    /// Resolved per-kind children, for the IPC hot path.
    kinds: LabelCache<KindSeries>,
    /// Resolved per-method children, for the gRPC hot path.
    methods: LabelCache<MethodSeries>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("queues", &self.queues.snapshot().len())
            .field("kinds", &self.kinds.snapshot().len())
            .field("methods", &self.methods.snapshot().len())
            .finish_non_exhaustive()
    }
}

/// Registers `collector` with `registry` and hands it back.
fn register<C: Collector + Clone + 'static>(
    registry: &Registry,
    collector: C,
) -> Result<C, prometheus::Error> {
    registry.register(Box::new(collector.clone()))?;
    Ok(collector)
}

/// Registers a counter family `name` with `labels`.
fn counter_vec(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> Result<IntCounterVec, prometheus::Error> {
    register(registry, IntCounterVec::new(Opts::new(name, help), labels)?)
}

/// Registers a gauge family `name` with `labels`.
fn gauge_vec(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> Result<IntGaugeVec, prometheus::Error> {
    register(registry, IntGaugeVec::new(Opts::new(name, help), labels)?)
}

/// Registers a histogram family `name` with `buckets` and `labels`.
fn histogram_vec(
    registry: &Registry,
    name: &str,
    help: &str,
    buckets: &[f64],
    labels: &[&str],
) -> Result<HistogramVec, prometheus::Error> {
    let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
    register(registry, HistogramVec::new(opts, labels)?)
}

/// Seconds as Prometheus wants them.
fn seconds(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// The results of a finish callback, as `mayfly_callbacks_total` labels
/// them: each series exists from the start, at zero.
pub const CALLBACK_RESULTS: [&str; 3] = ["ok", "failed", "timed_out"];

/// The families of every queue's jobs.
struct JobFamilies {
    /// `mayfly_jobs_submitted_total{queue}`.
    submitted: IntCounterVec,
    /// `mayfly_jobs_finished_total{queue,outcome}`.
    finished: IntCounterVec,
    /// `mayfly_jobs_queued{queue}`.
    queued: IntGaugeVec,
    /// `mayfly_jobs_running{queue}`.
    running: IntGaugeVec,
    /// `mayfly_job_wait_seconds{queue}`.
    wait: HistogramVec,
    /// `mayfly_job_run_seconds{queue}`.
    run: HistogramVec,
    /// `mayfly_job_cpu_seconds{queue}`.
    cpu: HistogramVec,
    /// `mayfly_job_max_rss_bytes{queue}`.
    max_rss: HistogramVec,
}

impl JobFamilies {
    /// Registers them with `r`.
    fn register(r: &Registry) -> Result<Self, prometheus::Error> {
        let submitted = counter_vec(
            r,
            "mayfly_jobs_submitted_total",
            "Jobs accepted by submit requests, by queue.",
            &["queue"],
        )?;
        let finished = counter_vec(
            r,
            "mayfly_jobs_finished_total",
            "Jobs that reached a terminal state, by queue and outcome (the terminal \
         state: succeeded, failed, cancelled, timed_out, skipped, interrupted).",
            &["queue", "outcome"],
        )?;
        let queued = gauge_vec(
            r,
            "mayfly_jobs_queued",
            "Jobs ready to run and waiting for a free slot, by queue.",
            &["queue"],
        )?;
        let running = gauge_vec(
            r,
            "mayfly_jobs_running",
            "Jobs whose process is running, by queue.",
            &["queue"],
        )?;
        let wait = histogram_vec(
            r,
            "mayfly_job_wait_seconds",
            "Time from a job's submission to the start of its process, by queue.",
            WAIT_BUCKETS,
            &["queue"],
        )?;
        let run = histogram_vec(
            r,
            "mayfly_job_run_seconds",
            "Time from the start of a job's process to its exit, by queue.",
            RUN_BUCKETS,
            &["queue"],
        )?;
        let cpu = histogram_vec(
            r,
            "mayfly_job_cpu_seconds",
            "CPU time (user + system) of a job's attempt when it ended, by queue, for \
             executors that measure it.",
            CPU_BUCKETS,
            &["queue"],
        )?;
        let max_rss = histogram_vec(
            r,
            "mayfly_job_max_rss_bytes",
            "Peak resident memory of the largest process of a job's attempt, by queue, \
             for executors that measure it.",
            RSS_BUCKETS,
            &["queue"],
        )?;
        Ok(Self {
            submitted,
            finished,
            queued,
            running,
            wait,
            run,
            cpu,
            max_rss,
        })
    }
}

/// The families of the Unix-socket door.
struct IpcFamilies {
    /// `mayfly_ipc_requests_total{kind,result}`.
    requests: IntCounterVec,
    /// `mayfly_ipc_request_duration_seconds{kind}`.
    duration: HistogramVec,
    /// `mayfly_ipc_connections`.
    connections: IntGauge,
    /// `mayfly_ipc_refused_peers_total`: connections refused for their
    /// peer's uid (see [`crate::peer`]); a rising count is someone trying.
    refused_peers: IntCounter,
}

impl IpcFamilies {
    /// Registers them with `r`.
    fn register(r: &Registry) -> Result<Self, prometheus::Error> {
        let requests = counter_vec(
            r,
            "mayfly_ipc_requests_total",
            "Requests served on the Unix socket, by kind and result (error when \
         any response frame was an error).",
            &["kind", "result"],
        )?;
        let duration = histogram_vec(
            r,
            "mayfly_ipc_request_duration_seconds",
            "Time from decoding a Unix-socket request to writing its last response \
         frame, by kind (streams such as wait and logs --follow last as long as \
         they are followed).",
            IPC_BUCKETS,
            &["kind"],
        )?;
        let connections = register(
            r,
            IntGauge::new(
                "mayfly_ipc_connections",
                "Unix-socket client connections open now.",
            )?,
        )?;
        let refused_peers = register(
            r,
            IntCounter::new(
                "mayfly_ipc_refused_peers_total",
                "Unix-socket connections refused because their user may not use this daemon.",
            )?,
        )?;
        Ok(Self {
            requests,
            duration,
            connections,
            refused_peers,
        })
    }
}

/// The families of the A2A front door and executor (`docs/a2a.md`).
#[cfg(feature = "a2a")]
struct A2aFamilies {
    /// `mayfly_a2a_requests_total{method,result}`.
    requests: IntCounterVec,
    /// `mayfly_a2a_request_duration_seconds{method}`.
    duration: HistogramVec,
    /// `mayfly_a2a_connections`.
    connections: IntGauge,
    /// `mayfly_a2a_streams`.
    streams: IntGauge,
    /// `mayfly_a2a_unauthorized_total`: requests refused for a missing or
    /// wrong token; a rising count is someone trying.
    unauthorized: IntCounter,
    /// `mayfly_a2a_push_notifications_total{result}`.
    push: IntCounterVec,
    /// `mayfly_a2a_remote_calls_total{method,result}`: the executor's calls
    /// to remote agents.
    remote: IntCounterVec,
}

#[cfg(feature = "a2a")]
impl A2aFamilies {
    /// Registers them with `r`.
    fn register(r: &Registry) -> Result<Self, prometheus::Error> {
        let requests = counter_vec(
            r,
            "mayfly_a2a_requests_total",
            "A2A JSON-RPC requests answered, by method (invalid for a request that named \
             none this daemon serves) and result (error when the answer was an error).",
            &["method", "result"],
        )?;
        let duration = histogram_vec(
            r,
            "mayfly_a2a_request_duration_seconds",
            "Time from reading an A2A request to its answer (a blocking SendMessage lasts \
             as long as its job; for a stream, until the stream starts), by method.",
            IPC_BUCKETS,
            &["method"],
        )?;
        let connections = register(
            r,
            IntGauge::new("mayfly_a2a_connections", "A2A connections open now.")?,
        )?;
        let streams = register(
            r,
            IntGauge::new(
                "mayfly_a2a_streams",
                "A2A server-sent event streams open now (SendStreamingMessage, SubscribeToTask).",
            )?,
        )?;
        let unauthorized = register(
            r,
            IntCounter::new(
                "mayfly_a2a_unauthorized_total",
                "A2A requests refused for a missing or wrong bearer token.",
            )?,
        )?;
        let push = counter_vec(
            r,
            "mayfly_a2a_push_notifications_total",
            "A2A push notifications, by result: delivered, failed (given up after its \
             retries) or dropped (the queue was full).",
            &["result"],
        )?;
        let remote = counter_vec(
            r,
            "mayfly_a2a_remote_calls_total",
            "Calls of the a2a executor to remote agents, by method and result (error when \
             the call failed or was answered with an error).",
            &["method", "result"],
        )?;
        Ok(Self {
            requests,
            duration,
            connections,
            streams,
            unauthorized,
            push,
            remote,
        })
    }
}

/// The families of the write-ahead log.
struct WalFamilies {
    /// `mayfly_wal_appends_total`.
    appends: IntCounter,
    /// `mayfly_wal_bytes_total`.
    bytes: IntCounter,
    /// `mayfly_wal_fsync_duration_seconds`.
    fsync: Histogram,
}

impl WalFamilies {
    /// Registers them with `r`.
    fn register(r: &Registry) -> Result<Self, prometheus::Error> {
        let appends = register(
            r,
            IntCounter::new(
                "mayfly_wal_appends_total",
                "Records written to the write-ahead log files.",
            )?,
        )?;
        let bytes = register(
            r,
            IntCounter::new(
                "mayfly_wal_bytes_total",
                "Bytes written to the write-ahead log files, record headers included.",
            )?,
        )?;
        let fsync = register(
            r,
            Histogram::with_opts(
                HistogramOpts::new(
                    "mayfly_wal_fsync_duration_seconds",
                    "Time the write-ahead log spent in fdatasync, per sync that wrote records.",
                )
                .buckets(FSYNC_BUCKETS.to_vec()),
            )?,
        )?;
        Ok(Self {
            appends,
            bytes,
            fsync,
        })
    }
}

/// The families of each executor: what runs the jobs, and what a remote
/// one costs (the commands it runs against its side, its poll ticks).
struct ExecutorFamilies {
    /// `mayfly_executor_jobs_running{executor}`.
    running: IntGaugeVec,
    /// `mayfly_executor_starts_total{executor,result}`.
    starts: IntCounterVec,
    /// `mayfly_executor_calls_total{executor,command,result}`: commands run
    /// against what runs the jobs (`sbatch`, `squeue`, …).
    calls: IntCounterVec,
    /// `mayfly_executor_call_duration_seconds{executor,command}`.
    call_duration: HistogramVec,
    /// `mayfly_executor_polls_total{executor}`: rounds of asking a remote
    /// executor's side about every job it runs (one tick each).
    polls: IntCounterVec,
    /// `mayfly_executor_jobs_tracked{executor}`.
    tracked: IntGaugeVec,
}

impl ExecutorFamilies {
    /// Registers them with `r`.
    fn register(r: &Registry) -> Result<Self, prometheus::Error> {
        let running = gauge_vec(
            r,
            "mayfly_executor_jobs_running",
            "Jobs running now, by the executor of their queue (local, slurm).",
            &["executor"],
        )?;
        let starts = counter_vec(
            r,
            "mayfly_executor_starts_total",
            "Attempts an executor was asked to start, by executor and result (error \
             when it could not start the attempt).",
            &["executor", "result"],
        )?;
        let calls = counter_vec(
            r,
            "mayfly_executor_calls_total",
            "Commands an executor ran against what runs its jobs (sbatch, squeue, \
             scancel, scontrol), by executor, command and result (error when the \
             command failed or could not run).",
            &["executor", "command", "result"],
        )?;
        let call_duration = histogram_vec(
            r,
            "mayfly_executor_call_duration_seconds",
            "Time one such command took, by executor and command.",
            IPC_BUCKETS,
            &["executor", "command"],
        )?;
        let polls = counter_vec(
            r,
            "mayfly_executor_polls_total",
            "Ticks on which a remote executor asked its side about all of its jobs \
             at once; calls per tick is mayfly_executor_calls_total over this.",
            &["executor"],
        )?;
        let tracked = gauge_vec(
            r,
            "mayfly_executor_jobs_tracked",
            "Attempts a remote executor follows now (submitted and not yet seen to end).",
            &["executor"],
        )?;
        Ok(Self {
            running,
            starts,
            calls,
            call_duration,
            polls,
            tracked,
        })
    }
}

/// The families of the gRPC door.
struct GrpcFamilies {
    /// `mayfly_grpc_requests_total{method,code}`.
    requests: IntCounterVec,
    /// `mayfly_grpc_request_duration_seconds{method}`.
    duration: HistogramVec,
    /// `mayfly_grpc_refused_total{reason}`: calls refused before they
    /// reached the service (a peer's uid on the Unix socket, a missing or
    /// wrong token on TCP).
    refused: IntCounterVec,
}

impl GrpcFamilies {
    /// Registers them with `r`.
    fn register(r: &Registry) -> Result<Self, prometheus::Error> {
        let requests = counter_vec(
            r,
            "mayfly_grpc_requests_total",
            "gRPC calls of the service mayfly.v1.Mayfly, by method and status code \
             (OK, NotFound, ...; Canceled when the client went away first).",
            &["method", "code"],
        )?;
        let duration = histogram_vec(
            r,
            "mayfly_grpc_request_duration_seconds",
            "Time from a gRPC call's arrival to its answer (for a stream, to its \
             last message), by method.",
            IPC_BUCKETS,
            &["method"],
        )?;
        let refused = counter_vec(
            r,
            "mayfly_grpc_refused_total",
            "gRPC calls refused before the service: reason peer (a user the daemon \
             does not serve, on the Unix socket) or token (TCP without the bearer \
             token).",
            &["reason"],
        )?;
        Ok(Self {
            requests,
            duration,
            refused,
        })
    }
}

impl Metrics {
    /// A fresh set of metrics in its own registry, with the process
    /// collector and `mayfly_build_info` registered. Fails only if two
    /// families clash, which would be a bug.
    pub fn new() -> Result<Arc<Metrics>, prometheus::Error> {
        let registry = Registry::new();
        let r = &registry;
        let jobs = JobFamilies::register(r)?;
        let ipc = IpcFamilies::register(r)?;
        let wal = WalFamilies::register(r)?;
        #[cfg(feature = "a2a")]
        let a2a = A2aFamilies::register(r)?;
        let grpc = GrpcFamilies::register(r)?;
        let system_task_up = gauge_vec(
            r,
            "mayfly_system_task_up",
            "1 while the system task (WAL flusher, metrics pusher, ...) runs, 0 once \
             it has exited.",
            &["name"],
        )?;
        let executors = ExecutorFamilies::register(r)?;
        let build_info = gauge_vec(
            r,
            "mayfly_build_info",
            "Always 1; the version label says which mayflyd this is.",
            &["version"],
        )?;
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        let callbacks = counter_vec(
            r,
            "mayfly_callbacks_total",
            "Finish callbacks (--on-finish) that ran, by result: ok, failed (exited \
             non-zero, killed, or could not start), timed_out.",
            &["result"],
        )?;
        for result in CALLBACK_RESULTS {
            callbacks.with_label_values(&[result]).reset();
        }
        registry.register(Box::new(ProcessCollector::for_self()))?;
        let metrics = Metrics {
            registry,
            jobs,
            ipc,
            wal,
            #[cfg(feature = "a2a")]
            a2a,
            grpc,
            system_task_up,
            executors,
            callbacks,
            queues: LabelCache::new(),
            kinds: LabelCache::new(),
            methods: LabelCache::new(),
        };
        // Queue `default` always exists: its series are there from the
        // first scrape, at zero.
        metrics.queue(mayfly_protocol::DEFAULT_QUEUE, |_| ());
        for result in ["ok", "error"] {
            metrics
                .executors
                .starts
                .with_label_values(&["local", result]);
        }
        metrics.executors.running.with_label_values(&["local"]);
        Ok(Arc::new(metrics))
    }

    /// Resolves every series of `queue` (the first use of a queue).
    fn make_queue(&self, queue: &str) -> QueueSeries {
        let labels = [queue];
        QueueSeries {
            submitted: self.jobs.submitted.with_label_values(&labels),
            finished: TERMINAL.map(|s| self.jobs.finished.with_label_values(&[queue, s.as_str()])),
            queued: self.jobs.queued.with_label_values(&labels),
            running: self.jobs.running.with_label_values(&labels),
            wait: self.jobs.wait.with_label_values(&labels),
            run: self.jobs.run.with_label_values(&labels),
            cpu: self.jobs.cpu.with_label_values(&labels),
            max_rss: self.jobs.max_rss.with_label_values(&labels),
        }
    }

    /// Runs `f` on the series of `queue`.
    fn queue<R>(&self, queue: &str, f: impl FnOnce(&QueueSeries) -> R) -> R {
        self.queues.with(queue, || self.make_queue(queue), f)
    }

    /// A job was accepted into `queue`.
    pub fn job_submitted(&self, queue: &str) {
        self.queue(queue, |q| q.submitted.inc());
    }

    /// A job of `queue` started its process after waiting `waited` since its
    /// submission.
    pub fn job_started(&self, queue: &str, waited: Duration) {
        self.queue(queue, |q| q.wait.observe(seconds(waited)));
    }

    /// A job of `queue` reached the terminal state `outcome`; `ran` is how
    /// long its process ran, if it ever started. A non-terminal `outcome` is
    /// a caller bug: it is logged and not counted.
    pub fn job_finished(
        &self,
        queue: &str,
        outcome: JobState,
        ran: Option<Duration>,
        usage: Option<Usage>,
    ) {
        let Some(index) = TERMINAL.iter().position(|s| *s == outcome) else {
            tracing::warn!(
                queue,
                outcome = outcome.as_str(),
                "job_finished with a non-terminal state; not counted"
            );
            return;
        };
        self.queue(queue, |q| {
            q.finished[index].inc();
            if let Some(ran) = ran {
                q.run.observe(seconds(ran));
            }
            if let Some(usage) = usage {
                let cpu_ms = usage.cpu_user_ms.saturating_add(usage.cpu_sys_ms);
                q.cpu.observe(cpu_ms as f64 / 1000.0);
                q.max_rss.observe(usage.max_rss_kib as f64 * 1024.0);
            }
        });
    }

    /// Sets `mayfly_jobs_queued` and `mayfly_jobs_running` of every queue in
    /// `queues` from its counts; a queue seen before but missing from
    /// `queues` reads 0.
    pub fn set_queue_gauges(&self, queues: &[QueueInfo]) {
        let mut listed = HashSet::with_capacity(queues.len());
        for info in queues {
            listed.insert(info.name.as_str());
            self.queue(&info.name, |q| {
                q.queued.set(gauge_value(info.counts.get(JobState::Queued)));
                q.running
                    .set(gauge_value(info.counts.get(JobState::Running)));
            });
        }
        for (name, q) in self.queues.snapshot().iter() {
            if !listed.contains(name.as_str()) {
                q.queued.set(0);
                q.running.set(0);
            }
        }
        let mut by_executor: HashMap<String, u64> = HashMap::new();
        // Every executor seen before reads 0 when no queue uses it now.
        for family in self.executors.running.collect() {
            for metric in family.get_metric() {
                if let Some(label) = metric.get_label().first() {
                    by_executor.insert(label.value().to_owned(), 0);
                }
            }
        }
        for info in queues {
            *by_executor
                .entry(info.executor.kind().to_owned())
                .or_default() += info.counts.get(JobState::Running);
        }
        for (kind, running) in by_executor {
            self.executors
                .running
                .with_label_values(&[&kind])
                .set(gauge_value(running));
        }
    }

    /// An executor was asked to start an attempt, and could (`ok`) or not.
    /// Rare next to submits: resolved through the vec's read lock.
    pub fn executor_start(&self, executor: &str, ok: bool) {
        self.executors
            .starts
            .with_label_values(&[executor, if ok { "ok" } else { "error" }])
            .inc();
    }

    /// An executor ran `command` against its side, which took `elapsed` and
    /// succeeded (`ok`) or not.
    pub fn executor_call(&self, executor: &str, command: &str, ok: bool, elapsed: Duration) {
        self.executors
            .calls
            .with_label_values(&[executor, command, if ok { "ok" } else { "error" }])
            .inc();
        self.executors
            .call_duration
            .with_label_values(&[executor, command])
            .observe(seconds(elapsed));
    }

    /// A remote executor asked its side about all of its jobs (one tick).
    pub fn executor_poll(&self, executor: &str) {
        self.executors.polls.with_label_values(&[executor]).inc();
    }

    /// A remote executor follows `delta` more attempts (fewer when negative).
    pub fn executor_tracking(&self, executor: &str, delta: i64) {
        self.executors
            .tracked
            .with_label_values(&[executor])
            .add(delta);
    }

    /// The system task `name` started (`up`) or exited.
    pub fn system_task_up(&self, name: &str, up: bool) {
        self.system_task_up
            .with_label_values(&[name])
            .set(i64::from(up));
    }

    /// One Unix-socket request of `kind` was answered in `elapsed`; `ok` is
    /// false when any of its response frames was an error.
    pub fn ipc_request(&self, kind: &str, ok: bool, elapsed: Duration) {
        let make = || KindSeries {
            ok: self.ipc.requests.with_label_values(&[kind, "ok"]),
            error: self.ipc.requests.with_label_values(&[kind, "error"]),
            duration: self.ipc.duration.with_label_values(&[kind]),
        };
        self.kinds.with(kind, make, |k| {
            let counter = if ok { &k.ok } else { &k.error };
            counter.inc();
            k.duration.observe(seconds(elapsed));
        });
    }

    /// A finish callback ran and ended with `result` (one of
    /// [`CALLBACK_RESULTS`]).
    pub fn callback_finished(&self, result: &str) {
        self.callbacks.with_label_values(&[result]).inc();
    }

    /// A connection was refused for its peer's uid.
    pub fn ipc_refused_peer(&self) {
        self.ipc.refused_peers.inc();
    }

    /// A client connected to the Unix socket.
    pub fn ipc_connection_opened(&self) {
        self.ipc.connections.inc();
    }

    /// A client connection ended.
    pub fn ipc_connection_closed(&self) {
        self.ipc.connections.dec();
    }

    /// One gRPC call of `method` ended with `code` (as gRPC's libraries
    /// name it: `OK`, `NotFound`, ...) after `elapsed`.
    pub fn grpc_request(&self, method: &str, code: &str, elapsed: Duration) {
        let make = || MethodSeries {
            ok: self.grpc.requests.with_label_values(&[method, "OK"]),
            duration: self.grpc.duration.with_label_values(&[method]),
        };
        self.methods.with(method, make, |m| {
            if code == "OK" {
                m.ok.inc();
            } else {
                self.grpc.requests.with_label_values(&[method, code]).inc();
            }
            m.duration.observe(seconds(elapsed));
        });
    }

    /// A gRPC call was refused before the service, for `reason` (`peer` or
    /// `token`).
    pub fn grpc_refused(&self, reason: &str) {
        self.grpc.refused.with_label_values(&[reason]).inc();
    }

    /// `records` records of `bytes` bytes (framing included) reached the
    /// write-ahead log files.
    pub fn wal_appended(&self, records: u64, bytes: u64) {
        self.wal.appends.inc_by(records);
        self.wal.bytes.inc_by(bytes);
    }

    /// The write-ahead log's fdatasync took `took`.
    pub fn wal_fsynced(&self, took: Duration) {
        self.wal.fsync.observe(seconds(took));
    }

    /// One A2A request of `method` was answered in `elapsed`; `ok` is false
    /// when the answer was an error.
    #[cfg(feature = "a2a")]
    pub fn a2a_request(&self, method: &str, ok: bool, elapsed: Duration) {
        let result = if ok { "ok" } else { "error" };
        self.a2a.requests.with_label_values(&[method, result]).inc();
        self.a2a
            .duration
            .with_label_values(&[method])
            .observe(seconds(elapsed));
    }

    /// An A2A connection opened (`1`) or closed (`-1`).
    #[cfg(feature = "a2a")]
    pub fn a2a_connection(&self, delta: i64) {
        self.a2a.connections.add(delta);
    }

    /// An A2A stream opened (`1`) or ended (`-1`).
    #[cfg(feature = "a2a")]
    pub fn a2a_stream(&self, delta: i64) {
        self.a2a.streams.add(delta);
    }

    /// An A2A request was refused for its token.
    #[cfg(feature = "a2a")]
    pub fn a2a_unauthorized(&self) {
        self.a2a.unauthorized.inc();
    }

    /// A push notification was `delivered`, `failed` or `dropped`.
    #[cfg(feature = "a2a")]
    pub fn a2a_push(&self, result: &str) {
        self.a2a.push.with_label_values(&[result]).inc();
    }

    /// The a2a executor called `method` on a remote agent.
    #[cfg(feature = "a2a")]
    pub fn a2a_remote_call(&self, method: &str, ok: bool) {
        let result = if ok { "ok" } else { "error" };
        self.a2a.remote.with_label_values(&[method, result]).inc();
    }

    /// Every metric in the Prometheus text format (see [`CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        let families = self.registry.gather();
        TextEncoder::new()
            .encode_to_string(&families)
            .unwrap_or_else(|e| {
                // Encoding into a String fails only on an invalid family,
                // which `register` would have refused; say so, serve nothing.
                tracing::error!(error = %e, "cannot encode the metrics");
                String::new()
            })
    }
}

/// A job count as a gauge value (saturating; counts never get near it).
fn gauge_value(count: u64) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mayfly_protocol::StateCounts;

    /// The value of the sample written exactly as `series` in `text`.
    fn sample(text: &str, series: &str) -> Option<f64> {
        text.lines().find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == series).then(|| value.parse().ok())?
        })
    }

    /// A queue's info with `queued` and `running` jobs.
    fn queue_info(name: &str, queued: u64, running: u64) -> QueueInfo {
        QueueInfo {
            executor: mayfly_protocol::ExecutorSpec::Local,
            name: name.to_string(),
            concurrency: None,
            paused: false,
            counts: StateCounts {
                queued,
                running,
                ..StateCounts::default()
            },
        }
    }

    #[test]
    fn render_contains_every_family_after_one_update_of_each() {
        let m = Metrics::new().unwrap();
        m.job_submitted("default");
        m.job_started("default", Duration::from_millis(3));
        m.job_finished(
            "default",
            JobState::Succeeded,
            Some(Duration::from_millis(20)),
            Some(Usage {
                cpu_user_ms: 1_500,
                cpu_sys_ms: 500,
                max_rss_kib: 3 * 1024,
            }),
        );
        m.set_queue_gauges(&[queue_info("default", 2, 1)]);
        m.system_task_up("looptask_wal_flush", true);
        m.callback_finished("failed");
        m.ipc_request("submit", true, Duration::from_micros(700));
        m.ipc_connection_opened();
        m.grpc_request("Submit", "OK", Duration::from_micros(300));
        m.grpc_request("GetJob", "NotFound", Duration::from_micros(90));
        m.grpc_refused("token");
        m.wal_appended(2, 120);
        m.wal_fsynced(Duration::from_micros(300));
        let text = m.render();
        for family in [
            "mayfly_jobs_submitted_total",
            "mayfly_jobs_finished_total",
            "mayfly_jobs_queued",
            "mayfly_jobs_running",
            "mayfly_job_wait_seconds",
            "mayfly_job_run_seconds",
            "mayfly_job_cpu_seconds",
            "mayfly_job_max_rss_bytes",
            "mayfly_ipc_requests_total",
            "mayfly_ipc_request_duration_seconds",
            "mayfly_ipc_connections",
            "mayfly_ipc_refused_peers_total",
            "mayfly_grpc_requests_total",
            "mayfly_grpc_request_duration_seconds",
            "mayfly_grpc_refused_total",
            "mayfly_wal_appends_total",
            "mayfly_wal_bytes_total",
            "mayfly_wal_fsync_duration_seconds",
            "mayfly_system_task_up",
            "mayfly_build_info",
            "mayfly_callbacks_total",
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
        ] {
            assert!(
                text.contains(&format!("# HELP {family} ")),
                "no HELP for {family}:\n{text}"
            );
            assert!(
                text.contains(&format!("# TYPE {family} ")),
                "no TYPE for {family}"
            );
        }
        let at = |series: &str| {
            sample(&text, series).unwrap_or_else(|| panic!("no sample {series}:\n{text}"))
        };
        assert_eq!(at(r#"mayfly_jobs_submitted_total{queue="default"}"#), 1.0);
        assert_eq!(
            at(r#"mayfly_jobs_finished_total{outcome="succeeded",queue="default"}"#),
            1.0
        );
        assert_eq!(
            at(r#"mayfly_jobs_finished_total{outcome="timed_out",queue="default"}"#),
            0.0,
            "every outcome exists from the queue's first use"
        );
        assert_eq!(at(r#"mayfly_callbacks_total{result="failed"}"#), 1.0);
        assert_eq!(at(r#"mayfly_callbacks_total{result="timed_out"}"#), 0.0);
        assert_eq!(at(r#"mayfly_jobs_queued{queue="default"}"#), 2.0);
        assert_eq!(at(r#"mayfly_jobs_running{queue="default"}"#), 1.0);
        assert_eq!(at(r#"mayfly_job_wait_seconds_count{queue="default"}"#), 1.0);
        assert_eq!(at(r#"mayfly_job_run_seconds_count{queue="default"}"#), 1.0);
        assert_eq!(at(r#"mayfly_job_cpu_seconds_sum{queue="default"}"#), 2.0);
        assert_eq!(
            at(r#"mayfly_job_max_rss_bytes_sum{queue="default"}"#),
            3.0 * 1024.0 * 1024.0
        );
        assert_eq!(
            at(r#"mayfly_ipc_requests_total{kind="submit",result="ok"}"#),
            1.0
        );
        assert_eq!(
            at(r#"mayfly_ipc_requests_total{kind="submit",result="error"}"#),
            0.0
        );
        assert_eq!(
            at(r#"mayfly_ipc_request_duration_seconds_count{kind="submit"}"#),
            1.0
        );
        assert_eq!(at("mayfly_ipc_connections"), 1.0);
        assert_eq!(
            at(r#"mayfly_grpc_requests_total{code="OK",method="Submit"}"#),
            1.0
        );
        assert_eq!(
            at(r#"mayfly_grpc_requests_total{code="NotFound",method="GetJob"}"#),
            1.0
        );
        assert_eq!(
            at(r#"mayfly_grpc_requests_total{code="OK",method="GetJob"}"#),
            0.0
        );
        assert_eq!(
            at(r#"mayfly_grpc_request_duration_seconds_count{method="GetJob"}"#),
            1.0
        );
        assert_eq!(at(r#"mayfly_grpc_refused_total{reason="token"}"#), 1.0);
        assert_eq!(at("mayfly_wal_appends_total"), 2.0);
        assert_eq!(at("mayfly_wal_bytes_total"), 120.0);
        assert_eq!(at("mayfly_wal_fsync_duration_seconds_count"), 1.0);
        assert_eq!(
            at(r#"mayfly_system_task_up{name="looptask_wal_flush"}"#),
            1.0
        );
        assert_eq!(
            at(&format!(
                r#"mayfly_build_info{{version="{}"}}"#,
                env!("CARGO_PKG_VERSION")
            )),
            1.0
        );
    }

    #[cfg(feature = "a2a")]
    #[test]
    fn the_a2a_families_render_after_one_update_of_each() {
        let m = Metrics::new().unwrap();
        m.a2a_request("SendMessage", true, Duration::from_millis(2));
        m.a2a_connection(1);
        m.a2a_stream(1);
        m.a2a_unauthorized();
        m.a2a_push("delivered");
        m.a2a_remote_call("GetTask", false);
        let text = m.render();
        for (series, value) in [
            (
                r#"mayfly_a2a_requests_total{method="SendMessage",result="ok"}"#,
                1.0,
            ),
            (
                r#"mayfly_a2a_request_duration_seconds_count{method="SendMessage"}"#,
                1.0,
            ),
            ("mayfly_a2a_connections", 1.0),
            ("mayfly_a2a_streams", 1.0),
            ("mayfly_a2a_unauthorized_total", 1.0),
            (
                r#"mayfly_a2a_push_notifications_total{result="delivered"}"#,
                1.0,
            ),
            (
                r#"mayfly_a2a_remote_calls_total{method="GetTask",result="error"}"#,
                1.0,
            ),
        ] {
            assert_eq!(sample(&text, series), Some(value), "{series}:\n{text}");
        }
    }

    #[test]
    fn label_values_are_escaped() {
        let m = Metrics::new().unwrap();
        m.job_submitted("we\"ird\\queue\nname");
        let text = m.render();
        assert!(
            text.contains(r#"mayfly_jobs_submitted_total{queue="we\"ird\\queue\nname"} 1"#),
            "{text}"
        );
        assert!(
            !text.contains("queue\nname"),
            "a raw newline in a label ends the line"
        );
    }

    #[test]
    fn queue_gauges_follow_the_latest_counts() {
        let m = Metrics::new().unwrap();
        m.set_queue_gauges(&[queue_info("a", 3, 1), queue_info("b", 0, 2)]);
        m.set_queue_gauges(&[queue_info("a", 1, 0)]);
        let text = m.render();
        assert_eq!(sample(&text, r#"mayfly_jobs_queued{queue="a"}"#), Some(1.0));
        assert_eq!(
            sample(&text, r#"mayfly_jobs_running{queue="a"}"#),
            Some(0.0)
        );
        assert_eq!(
            sample(&text, r#"mayfly_jobs_running{queue="b"}"#),
            Some(0.0),
            "a queue no longer listed reads 0"
        );
    }

    #[test]
    fn non_terminal_outcomes_and_failures_are_counted_apart() {
        let m = Metrics::new().unwrap();
        m.job_finished("q", JobState::Running, None, None);
        m.job_finished("q", JobState::Failed, None, None);
        m.ipc_request("status", false, Duration::from_millis(1));
        m.system_task_up("looptask_metrics", true);
        m.system_task_up("looptask_metrics", false);
        let text = m.render();
        assert_eq!(
            sample(
                &text,
                r#"mayfly_jobs_finished_total{outcome="failed",queue="q"}"#
            ),
            Some(1.0)
        );
        assert!(!text.contains(r#"outcome="running""#), "{text}");
        assert_eq!(
            sample(&text, r#"mayfly_job_run_seconds_count{queue="q"}"#),
            Some(0.0),
            "a job that never ran has no run time"
        );
        assert_eq!(
            sample(
                &text,
                r#"mayfly_ipc_requests_total{kind="status",result="error"}"#
            ),
            Some(1.0)
        );
        assert_eq!(
            sample(&text, r#"mayfly_system_task_up{name="looptask_metrics"}"#),
            Some(0.0)
        );
    }

    #[test]
    fn daemons_in_one_process_have_separate_registries() {
        let a = Metrics::new().unwrap();
        let b = Metrics::new().unwrap();
        a.job_submitted("only_a");
        assert!(a.render().contains("queue=\"only_a\""));
        assert!(!b.render().contains("only_a"));
        assert!(
            b.render()
                .contains("mayfly_jobs_submitted_total{queue=\"default\"} 0"),
            "queue default exists from the start"
        );
    }

    #[test]
    fn concurrent_first_uses_of_a_queue_count_every_update() {
        let m = Metrics::new().unwrap();
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let m = m.clone();
                std::thread::spawn(move || {
                    for i in 0..250 {
                        m.job_submitted(&format!("q{}", i % 10));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let text = m.render();
        let total: f64 = (0..10)
            .map(|i| {
                sample(
                    &text,
                    &format!(r#"mayfly_jobs_submitted_total{{queue="q{i}"}}"#),
                )
                .unwrap()
            })
            .sum();
        assert_eq!(total, 1000.0);
    }
}
