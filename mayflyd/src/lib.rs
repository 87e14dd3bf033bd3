//! The Mayfly daemon as a library: everything `mayflyd` does, so that tests
//! can run a daemon inside their own process.
//!
//! Data flows one way (see DESIGN.md section 8): a socket frame is decoded by
//! a [`session`], becomes a command for the [`driver`], which asks the
//! sans-IO [`core`] to decide, logs and applies the resulting events, replies,
//! and hands actions to the [`executor`]; job exits come back to the driver
//! as messages. [`scheduler`] wires it together and owns shutdown.

pub mod config;
pub mod config_file;
pub mod core;
pub mod driver;
pub mod executor;
pub mod http;
pub mod journal;
#[cfg(feature = "ipc")]
pub mod listener;
pub mod logbuf;
pub mod metrics;
pub mod notify;
pub mod pal;
pub mod pusher;
pub mod scheduler;
#[cfg(feature = "ipc")]
pub mod session;
pub mod settings;
pub mod wal;

pub use scheduler::{DaemonError, Scheduler, SchedulerBuilder, SchedulerHandle};
pub use settings::Settings;
