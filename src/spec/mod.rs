//! What a run asks for, from any of corral's three front doors (the command line, the config
//! file, the library's [`crate::Cluster`]), turned into the checked
//! [`RunSpec`](crate::config::RunSpec) the runtime runs, by one set of rules: each value's
//! range when it is read from text ([`values`]), the file system's say on commands and
//! directories ([`resolve`]), and the defaults and conflicts between options (here).
//! The front doors only read their own form (clap's strings, TOML keys with their positions,
//! builder calls) and say a refusal their own way.

mod group;
mod options;
pub(crate) mod resolve;
mod run;
#[cfg(test)]
mod tests;
pub(crate) mod values;

use std::path::PathBuf;

pub(crate) use group::{GroupRequest, Switch};
pub(crate) use options::GroupOptions;
pub(crate) use run::{Control, RunRequest};

/// Why a request is refused, for each front door to say its way (an option name and its
/// text for the command line, `file:line:col` for the config file, a `ClusterError`).
#[derive(Debug)]
pub(crate) enum SpecError {
    /// A group's name: `reason` names what is expected.
    Name {
        name: String,
        reason: String,
    },
    Instance {
        name: String,
        reason: String,
    },
    /// Workers out of 1..=`MAX_WORKERS`.
    Workers(u32),
    /// Two sockets of one group with one name; `text` is the address as given.
    ListenName {
        text: String,
        name: String,
    },
    /// One address twice in a group (a second bind of it would fail at start).
    ListenTwice {
        text: String,
    },
    /// A scheduled group cannot restart `always`.
    ScheduleRestartsAlways,
    /// A typed value out of its range (the library's; text is refused when it is read).
    Policy {
        option: &'static str,
        expected: &'static str,
    },
    /// An environment variable `execve` cannot pass on, by its key.
    Env(String),
    /// The env file at this index of the group's list is missing or malformed.
    EnvFile {
        index: usize,
        error: crate::env_file::EnvFileError,
    },
    /// The watched path at this index does not exist (`reason` says so, naming it).
    Watch {
        index: usize,
        path: PathBuf,
        reason: String,
    },
    LogDir {
        path: PathBuf,
        reason: String,
    },
}

/// The error message for each variant is the front door's; this one is for tests and logs.
impl std::fmt::Display for SpecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SpecError::Name { name, reason } => write!(f, "name '{name}': {reason}"),
            SpecError::Instance { name, reason } => write!(f, "instance '{name}': {reason}"),
            SpecError::Workers(n) => write!(
                f,
                "workers {n}: expected a whole number from 1 to {}",
                crate::core::MAX_WORKERS
            ),
            SpecError::ListenName { text, name } => {
                write!(f, "listen '{text}': the name '{name}' is already used")
            }
            SpecError::ListenTwice { text } => {
                write!(f, "listen '{text}': the address is given twice")
            }
            SpecError::ScheduleRestartsAlways => f.write_str(SCHEDULE_RESTARTS_ALWAYS),
            SpecError::Policy { option, expected } => write!(f, "{option}: expected {expected}"),
            SpecError::Env(key) => write!(
                f,
                "env '{key}': expected a non-empty KEY without '=' or NUL, a VALUE without NUL"
            ),
            SpecError::EnvFile { error, .. } => f.write_str(&error.message),
            SpecError::Watch { reason, .. } => f.write_str(reason),
            SpecError::LogDir { path, reason } => {
                write!(f, "log dir '{}': {reason}", path.display())
            }
        }
    }
}

/// Why a schedule refuses `restart = always`.
pub(crate) const SCHEDULE_RESTARTS_ALWAYS: &str = "a schedule runs a one-shot group (restart \"never\" or \"on-failure\"), not one with \
     restart \"always\": for a long-running group, use reload-schedule";
