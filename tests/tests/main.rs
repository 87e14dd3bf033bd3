//! The end-to-end tests, as one test binary: the real `mayflyd` driven by
//! the real `mayflyctl` through the fixture in [`helper`].
//!
//! Each file is a group of tests, a module here, so
//! `cargo test -p mayfly-tests e2e::` runs one group, and the fixture is
//! compiled and linked once for all of them. Every test starts its own
//! daemon in its own temporary folder, so the groups run in parallel.
//!
//! `signals.rs` is the one test binary besides this one: it runs the daemon
//! inside its own process and sends that process signals, which must not
//! reach the tests here (see that file).

mod helper;

#[cfg(feature = "a2a")]
mod a2a;
mod activity;
mod config;
mod docs;
mod durability;
mod e2e;
mod extras;
mod features;
#[cfg(feature = "grpc")]
mod grpc;
mod limits;
mod observability;
mod slurm;
mod trust;
mod tty;
