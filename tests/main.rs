//! corral's integration tests: one test binary (it links once, which matters on 2 cores),
//! one module per area. Every test runs the real `corral` binary, mostly with its hidden
//! `__test-worker` subcommand as the workers, and reads the headless JSON events (SPEC §7);
//! `dashboard` runs it on a pseudo-terminal instead and reads the screen.

mod util;

mod channel;
mod cli;
mod dashboard;
mod demo;
mod environment;
mod hygiene;
mod node;
mod shutdown;
mod supervise;
mod zero_downtime;
