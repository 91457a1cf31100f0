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

#![deny(unsafe_code)]

pub mod backend;
pub mod cli;
pub(crate) mod clock;
pub mod cluster;
pub mod config;
pub mod control;
pub mod core;
#[doc(hidden)]
pub mod demo;
pub mod fleet;
pub mod headless;
#[doc(hidden)]
#[allow(unsafe_code, reason = "ignoring signals: nix's `signal` is unsafe")]
pub mod keeper;
pub mod logging;
pub mod probe_spec;
pub mod protocol;
pub mod runtime;
pub mod signal;
pub mod sinks;
#[doc(hidden)]
pub mod testworker;
pub mod text;
pub mod ui;
#[allow(unsafe_code, reason = "taking ownership of fds inherited from corral")]
pub mod worker;

pub use cluster::{Cluster, ClusterError};
