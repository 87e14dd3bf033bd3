//! The Mayfly daemon as a library: everything `mayflyd` does, so that tests
//! can run a daemon inside their own process.
//!
//! Data flows one way (see `docs/architecture.md`): a front door (the
//! Unix-socket [`session`]) turns a request into a call on the [`service`]
//! handle, which becomes a command for the [`driver`]; the driver asks the
//! sans-IO [`core`] to decide, logs and applies the resulting events,
//! answers once they are durable, and hands actions to the queue's
//! executor ([`exec`]); starts and exits come back to the driver as
//! reports. [`scheduler`] starts it all, step by step; [`shutdown`] is how
//! it stops.

#[cfg(feature = "a2a")]
pub mod a2a;
pub mod callback;
pub mod config;
pub mod config_file;
pub mod core;
pub mod driver;
pub mod exec;
#[cfg(feature = "grpc")]
pub mod grpc;
pub mod http;
pub mod journal;
#[cfg(feature = "ipc")]
pub mod listener;
pub mod logbuf;
pub mod metrics;
pub mod notify;
pub mod pal;
#[cfg(feature = "ipc")]
pub mod peer;
pub mod private;
pub mod pusher;
pub mod reply;
pub mod scheduler;
pub mod service;
#[cfg(feature = "ipc")]
pub mod session;
pub mod settings;
pub mod shutdown;
pub mod slice;
#[cfg(any(feature = "a2a", feature = "grpc"))]
pub mod token;
pub mod wal;

pub use scheduler::{DaemonError, Scheduler, SchedulerBuilder, SchedulerHandle};
pub use settings::Settings;
