//! What corral speaks to the engines that run fleets: systemd's notification protocol and
//! the Prometheus endpoint. Nothing here decides anything about workers; it reports what
//! the core decided.

pub mod metrics;
pub mod metrics_server;
pub mod notify;

pub use notify::Notifier;
