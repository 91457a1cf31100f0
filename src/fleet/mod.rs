//! What corral speaks to the engines that run fleets: systemd's notification protocol
//! (and, to come, socket activation and Prometheus). Nothing here decides anything about
//! workers; it reports what the core decided.

pub mod notify;

pub use notify::Notifier;
