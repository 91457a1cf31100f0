//! corral's integration tests: one test binary (it links once, which matters on 2 cores),
//! one module per area. Every test runs the real `corral` binary, mostly with its hidden
//! `__test-worker` subcommand as the workers, and reads the headless JSON events (docs/output.md);
//! `dashboard` runs it on a pseudo-terminal instead and reads the screen; `logfiles` reads
//! the files of `--log-dir`.

mod util;

mod abuse;
mod activation;
mod attach;
mod channel;
mod cli;
mod cluster;
mod config;
mod control;
mod dashboard;
mod demo;
mod depends;
mod development;
mod env_files;
mod environment;
mod fleet;
mod hygiene;
mod jobcontrol;
mod logfiles;
mod logfiles_flow;
mod metrics;
mod node;
mod node_cluster;
mod output;
mod probes;
mod processes;
mod readme;
mod reload;
mod schedules;
mod share_binds;
mod shutdown;
mod signals;
mod supervise;
mod zero_downtime;
