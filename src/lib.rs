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
//! [`worker`] (what a worker reads and sends): docs/library.md. Every other module is private;
//! corral's own binary and its benchmarks reach what they need through one hidden module,
//! `internals`, which is no part of the API.

#![deny(unsafe_code)]

mod ansi;
mod backend;
mod cli;
pub mod cluster;
mod config;
mod control;
mod core;
mod demo;
mod env_file;
mod fleet;
mod headless;
mod http;
mod keeper;
mod logging;
mod probe_spec;
mod protocol;
mod report;
mod runtime;
mod schedule;
mod signal;
mod sinks;
mod spec;
mod testworker;
mod text;
mod ui;
#[allow(unsafe_code, reason = "taking ownership of fds inherited from corral")]
pub mod worker;

pub use cluster::{Cluster, ClusterError};

/// What corral's own binary (`src/main.rs`) and its benchmarks (`benches/`) reach inside the
/// library, by the paths of the modules they come from. No part of the library's API: it
/// changes with any release.
#[doc(hidden)]
pub mod internals {
    pub mod ansi {
        pub use crate::ansi::strip;
    }
    pub mod backend {
        pub use crate::backend::SamplerProbe;
    }
    pub mod cli {
        pub use crate::cli::{CliExit, Invocation, parse_from, write_completions};
    }
    pub mod config {
        pub use crate::config::{LogFormat, OutputMode};
    }
    pub mod control {
        pub use crate::control::{attach, client};
    }
    pub mod core {
        pub use crate::core::{GroupView, Snapshot, Stream, WorkerKey, WorkerState, WorkerView};
    }
    pub mod demo {
        pub use crate::demo::worker_main;
    }
    pub mod fleet {
        pub use crate::fleet::{metrics, metrics_server};
    }
    pub mod keeper {
        pub use crate::keeper::main;
    }
    pub mod logging {
        pub use crate::logging::init;
    }
    pub mod report {
        pub use crate::report::{Lines, Record};
    }
    pub mod runtime {
        pub use crate::runtime::{logs, run, unblock_signals};
    }
    /// The test worker (`corral __test-worker`), the integration tests' cooperating program.
    pub mod testworker {
        pub use crate::testworker::main;
    }
    pub mod ui {
        pub use crate::ui::{UiState, model, render};
    }
}
