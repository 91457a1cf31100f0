//! corral: run N copies of a program as worker processes, restart the ones that die, and
//! report everything, in a live terminal dashboard or as headless lines (text or JSON).
//!
//! Data flows one way:
//!
//! ```text
//!   kernel facts (exits, output) ─▶ runtime ─Input─▶ core (pure) ─Command─▶ runtime ─▶ backend
//!                                      └──────── events / snapshots ──────▶ headless, ui
//! ```
//!
//! `core` decides, `backend` is the only code that touches processes, `runtime` is the
//! tokio glue between them, and the front-ends only read what the core reports.
//!
//! `unsafe` is denied everywhere but in the modules allowed below, each with its reason.
//!
//! The library's surface is [`Cluster`] (a Rust program as its own cluster primary) and
//! [`worker`] (what a worker reads and sends): docs/library.md. Every other module is public
//! only for corral's own binary, tests and benchmarks, and hidden from the documentation.

#![deny(unsafe_code)]

#[doc(hidden)]
pub mod ansi;
#[doc(hidden)]
pub mod backend;
#[doc(hidden)]
pub mod cli;
pub mod cluster;
#[doc(hidden)]
pub mod config;
#[doc(hidden)]
pub mod control;
#[doc(hidden)]
pub mod core;
#[doc(hidden)]
pub mod demo;
#[doc(hidden)]
pub mod env_file;
#[doc(hidden)]
pub mod fleet;
#[doc(hidden)]
pub mod headless;
#[doc(hidden)]
pub mod http;
#[doc(hidden)]
#[allow(unsafe_code, reason = "ignoring signals: nix's `signal` is unsafe")]
pub mod keeper;
#[doc(hidden)]
pub mod logging;
#[doc(hidden)]
pub mod probe_spec;
#[doc(hidden)]
pub mod protocol;
#[doc(hidden)]
pub mod report;
#[doc(hidden)]
pub mod runtime;
#[doc(hidden)]
pub mod schedule;
#[doc(hidden)]
pub mod signal;
#[doc(hidden)]
pub mod sinks;
#[doc(hidden)]
pub mod spec;
#[doc(hidden)]
pub mod testworker;
#[doc(hidden)]
pub mod text;
#[doc(hidden)]
pub mod ui;
#[allow(unsafe_code, reason = "taking ownership of fds inherited from corral")]
pub mod worker;

pub use cluster::{Cluster, ClusterError};
