//! The library's primary (docs/library.md): [`Cluster`] makes the calling program the primary of
//! a group of copies of itself, the shape of Node's `cluster` module. Started by hand, the
//! program is the primary; re-executed by that primary, it is one of the workers and does
//! its work with [`crate::worker`]. Its settings go through the rules the command line's
//! options go through, into the same checked run, handed to the same runtime; it never
//! touches a process.

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

pub use crate::config::LogFormat;
use crate::config::OutputMode;
use crate::core::MAX_WORKERS;
pub use crate::core::{Backoff, Policy, RestartPolicy};
pub use crate::signal::Signal;
use crate::spec::Control;
use crate::spec::values::Listen;

mod group;
mod run_options;
mod spec;
#[cfg(test)]
mod tests;

/// Set in every worker a [`Cluster`] starts, to the cluster's name. A process is a worker
/// when it has this variable with its cluster's name *and* `CORRAL_PRIMARY_PID` names its
/// parent: a program that merely inherited the variables (a worker's own child, or a
/// program run by another corral) is a primary.
pub const CLUSTER_VAR: &str = "CORRAL_CLUSTER";
/// The variable corral sets in every worker to the primary's pid (docs/workers.md).
const PRIMARY_PID_VAR: &str = "CORRAL_PRIMARY_PID";

/// What is wrong with a [`Cluster`]'s settings, or why it could not start. Nothing was
/// started when one is returned.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cluster name '{name}': {reason}")]
    Name { name: String, reason: String },
    #[error("instance '{name}': {reason}")]
    Instance { name: String, reason: String },
    #[error("workers {0}: expected a whole number from 1 to {MAX_WORKERS}")]
    Workers(u32),
    #[error("listen '{addr}': {reason}")]
    Listen { addr: String, reason: String },
    #[error("{option}: expected {expected}")]
    Invalid { option: &'static str, expected: &'static str },
    #[error("env '{0}': expected a non-empty KEY without '=' or NUL, a VALUE without NUL")]
    Env(String),
    #[error("argument '{0}' contains a NUL byte")]
    Argument(String),
    #[error("log dir '{path}': {reason}")]
    LogDir { path: String, reason: String },
    #[error("cwd '{path}': {reason}")]
    Cwd { path: String, reason: String },
    #[error("{0}")]
    EnvFile(String),
    #[error("schedule '{pattern}': {reason}")]
    Schedule { pattern: String, reason: String },
    #[error("{probe} '{text}': {reason}")]
    Probe { probe: &'static str, text: String, reason: String },
    #[error("watch '{path}': {reason}")]
    Watch { path: String, reason: String },
    #[error("watch ignore '{glob}': {reason}")]
    WatchIgnore { glob: String, reason: String },
    #[error("metrics '{addr}': {reason}")]
    Metrics { addr: String, reason: String },
    #[error("cannot find this program's own executable: {0}")]
    CurrentExe(#[source] std::io::Error),
    /// `run` was called in one of the cluster's own workers, which would start workers of
    /// its own, and so on: check [`Cluster::is_primary`] first.
    #[error("this process is a worker of cluster '{0}'; only its primary runs the cluster")]
    NotPrimary(String),
    /// The run could not start: a socket could not be bound, the control socket is taken, …
    #[error(transparent)]
    Start(Box<dyn std::error::Error + Send + Sync>),
}

/// A group of workers that are copies of the calling program, supervised by it.
///
/// Build it the same way in the primary and in the workers, then ask which one this
/// process is: the primary [`run`](Cluster::run)s the cluster, a worker serves (its
/// listening sockets from [`crate::worker::listeners`], its reports through
/// [`crate::worker::Channel`]). The workers are started as `std::env::current_exe()` with
/// this program's own arguments (or those of [`args`](Cluster::args)).
///
/// ```no_run
/// use std::process::ExitCode;
///
/// fn main() -> Result<ExitCode, Box<dyn std::error::Error>> {
///     let cluster = corral::Cluster::new("web").workers(4).listen("127.0.0.1:3000")?;
///     if cluster.is_primary() {
///         // Blocks, supervising, until SIGINT/SIGTERM (or `q` in the dashboard).
///         return Ok(cluster.run());
///     }
///     // A worker: the socket the primary bound, and the channel to report on.
///     let listeners = corral::worker::listeners()?;
///     let channel = corral::worker::Channel::from_env();
///     // ... accept on `listeners[0].socket`, then:
///     if let Some(channel) = &channel {
///         channel.ready()?;
///     }
///     Ok(ExitCode::SUCCESS)
/// }
/// ```
///
/// Every setting is checked by [`check`](Cluster::check) (and so by `run`) before anything
/// starts, by the rules the command line's options follow; the listen addresses as they are
/// given:
///
/// ```
/// use std::time::Duration;
/// use corral::cluster::{Cluster, RestartPolicy};
///
/// Cluster::new("web")
///     .workers(2)
///     .listen("127.0.0.1:0")?
///     .restart(RestartPolicy::OnFailure)
///     .kill_timeout(Duration::from_secs(10))
///     .dashboard(false)
///     .check()?;
/// assert!(Cluster::new("web").listen("port 80").is_err());
/// assert!(Cluster::new("web.1").check().is_err(), "a dot would make ids ambiguous");
/// assert!(Cluster::new("web").workers(0).check().is_err());
/// # Ok::<(), corral::ClusterError>(())
/// ```
#[derive(Clone, Debug)]
#[must_use = "a Cluster does nothing until it is run"]
pub struct Cluster {
    name: String,
    workers: Option<u32>,
    listen: Vec<Listen>,
    policy: Policy,
    /// Whether the restart policy was set: a schedule then refuses `Always` instead of
    /// running the group once.
    restart_chosen: bool,
    wait_ready: bool,
    args: Option<Vec<OsString>>,
    env: Vec<(OsString, OsString)>,
    env_files: Vec<PathBuf>,
    cwd: Option<PathBuf>,
    schedule: Option<crate::schedule::Schedule>,
    reload_schedule: Option<crate::schedule::Schedule>,
    schedule_utc: bool,
    probes: crate::probe_spec::GroupProbes,
    share_binds: bool,
    pty: bool,
    watch: Vec<PathBuf>,
    watch_ignore: Vec<String>,
    watch_debounce: Duration,
    dashboard: Option<bool>,
    log_format: LogFormat,
    strip_ansi: bool,
    log_dir: Option<(PathBuf, u32)>,
    instance: Option<String>,
    control: Control,
    metrics: Option<std::net::SocketAddr>,
    verbosity: i8,
}

impl Cluster {
    /// A cluster whose workers are called `NAME.1`, `NAME.2` …: letters, digits, `_` and
    /// `-` (checked when the cluster is run). The defaults are the command line's: one
    /// worker per CPU, restart always, backoff `100ms..30s`, and so on (docs/config.md).
    pub fn new(name: impl Into<String>) -> Cluster {
        Cluster {
            name: name.into(),
            workers: None,
            listen: Vec::new(),
            policy: Policy::default(),
            restart_chosen: false,
            wait_ready: false,
            args: None,
            env: Vec::new(),
            env_files: Vec::new(),
            cwd: None,
            schedule: None,
            reload_schedule: None,
            schedule_utc: false,
            probes: crate::probe_spec::GroupProbes::default(),
            share_binds: false,
            pty: false,
            watch: Vec::new(),
            watch_ignore: Vec::new(),
            watch_debounce: crate::config::DEFAULT_WATCH_DEBOUNCE,
            dashboard: None,
            log_format: LogFormat::Text,
            strip_ansi: false,
            log_dir: None,
            instance: None,
            control: Control::Default,
            metrics: None,
            verbosity: 0,
        }
    }

    /// Whether this process is the cluster's primary: false in the workers it started.
    ///
    /// The primary also starts a copy of the program as its keeper, a helper that outlives
    /// a killed primary just long enough to kill what it left (the workers' own children).
    /// There this call does not return: it does the keeper's work and exits. So call it
    /// early, before the program does anything but read its arguments and build the
    /// cluster; the keeper and the workers get the same arguments as the primary.
    pub fn is_primary(&self) -> bool {
        if let Some(primary) = std::env::var_os(crate::runtime::KEEPER_VAR) {
            keep(primary);
        }
        let marker = std::env::var_os(CLUSTER_VAR);
        let primary = std::env::var_os(PRIMARY_PID_VAR);
        !is_worker_of(&self.name, marker.as_deref(), primary.as_deref(), parent_pid())
    }

    /// Runs the cluster until it shuts down (SIGINT, SIGTERM, `q`; or, headless, when no
    /// worker is left to run); returns corral's exit code: 0 after a shutdown, 1 when the
    /// last workers failed, 2 when the cluster could not start (the reason is then on
    /// stderr, as `PROGRAM: reason`).
    ///
    /// Call it from a thread that lives until it returns (the main thread is best): the
    /// workers are forked from it and die with it. Signals should not be blocked on it;
    /// threads started before it keep their own signal mask.
    pub fn run(self) -> ExitCode {
        match self.try_run() {
            Ok(code) => ExitCode::from(code),
            Err(e) => {
                let program = std::env::args_os().next().unwrap_or_default();
                let program = std::path::Path::new(&program).file_name().unwrap_or_default();
                let message = crate::text::escape(&e.to_string(), false);
                eprintln!("{}: {message}", program.to_string_lossy());
                ExitCode::from(2)
            }
        }
    }

    /// [`run`](Cluster::run), with the reason it could not start as an error instead of a
    /// line on stderr.
    pub fn try_run(self) -> Result<u8, ClusterError> {
        if !self.is_primary() {
            return Err(ClusterError::NotPrimary(self.name));
        }
        let spec = self.spec()?;
        crate::runtime::unblock_signals();
        // This program is not the corral binary: its keeper is a copy of it (see above).
        crate::runtime::keeper_is_this_program();
        let dashboard = spec.output == OutputMode::Dashboard;
        // An application's own subscriber, when it has one, is kept.
        let _log_guard = crate::logging::init(spec.verbosity, dashboard);
        crate::runtime::run(spec).map_err(|e| ClusterError::Start(Box::new(e)))
    }
}

/// The keeper of the primary `primary` (its pid): reads what the primary tells it until
/// the primary is gone, then kills what is left, and exits. A primary that died before
/// this copy got here is handled the same way: its end of the pipe is closed already.
fn keep(primary: OsString) -> ! {
    let code = crate::keeper::main(&[primary]);
    std::process::exit(if code == ExitCode::SUCCESS { 0 } else { 2 })
}

fn parent_pid() -> u32 {
    std::os::unix::process::parent_id()
}

/// Whether a process with these variables and this parent is a worker of cluster `name`.
fn is_worker_of(name: &str, marker: Option<&OsStr>, primary: Option<&OsStr>, parent: u32) -> bool {
    let primary = primary.and_then(|p| p.to_str()?.parse::<u32>().ok());
    marker.is_some_and(|m| m == OsStr::new(name)) && primary == Some(parent)
}
