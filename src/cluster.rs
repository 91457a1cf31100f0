//! The library's primary (docs/library.md): [`Cluster`] makes the calling program the primary of
//! a group of copies of itself, the shape of Node's `cluster` module. Started by hand, the
//! program is the primary; re-executed by that primary, it is one of the workers and does
//! its work with [`crate::worker`]. It builds the same [`RunSpec`](crate::config::RunSpec)
//! the command line builds and hands it to the same runtime; it never touches a process.

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::cli::values;
pub use crate::config::LogFormat;
use crate::config::{ListenSpec, OutputMode};
use crate::core::MAX_WORKERS;
pub use crate::core::{Backoff, Policy, RestartPolicy};
pub use crate::signal::Signal;

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
    #[error("cannot find this program's own executable: {0}")]
    CurrentExe(#[source] std::io::Error),
    /// `run` was called in one of the cluster's own workers, which would start workers of
    /// its own, and so on: check [`Cluster::is_primary`] first.
    #[error("this process is a worker of cluster '{0}'; only its primary runs the cluster")]
    NotPrimary(String),
    #[error(transparent)]
    Start(#[from] crate::runtime::StartError),
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
/// Every setting is checked by [`spec`](Cluster::spec) (and so by `run`) before anything
/// starts; the listen addresses as they are given:
///
/// ```
/// use std::time::Duration;
/// use corral::cluster::{Cluster, RestartPolicy};
///
/// let spec = Cluster::new("web")
///     .workers(2)
///     .listen("127.0.0.1:0")?
///     .restart(RestartPolicy::OnFailure)
///     .kill_timeout(Duration::from_secs(10))
///     .dashboard(false)
///     .spec()?;
/// assert_eq!(spec.groups[0].workers, 2);
/// assert!(Cluster::new("web").listen("port 80").is_err());
/// assert!(Cluster::new("web.1").spec().is_err(), "a dot would make ids ambiguous");
/// # Ok::<(), corral::ClusterError>(())
/// ```
#[derive(Clone, Debug)]
#[must_use = "a Cluster does nothing until it is run"]
pub struct Cluster {
    name: String,
    workers: Option<u32>,
    listen: Vec<ListenSpec>,
    policy: Policy,
    wait_ready: bool,
    args: Option<Vec<OsString>>,
    env: Vec<(OsString, OsString)>,
    cwd: Option<PathBuf>,
    dashboard: Option<bool>,
    log_format: LogFormat,
    strip_ansi: bool,
    log_dir: Option<(PathBuf, u32)>,
    instance: Option<String>,
    control: Control,
    verbosity: i8,
}

/// Where the control socket (docs/control.md) goes.
#[derive(Clone, Debug)]
enum Control {
    /// `$XDG_RUNTIME_DIR/corral/INSTANCE.sock`, else `/tmp/corral-UID/INSTANCE.sock`.
    Default,
    At(PathBuf),
    Off,
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
            wait_ready: false,
            args: None,
            env: Vec::new(),
            cwd: None,
            dashboard: None,
            log_format: LogFormat::Text,
            strip_ansi: false,
            log_dir: None,
            instance: None,
            control: Control::Default,
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

    /// How many workers, 1 to 4096 [default: the number of CPUs].
    pub fn workers(mut self, n: u32) -> Cluster {
        self.workers = Some(n);
        self
    }

    /// Binds a listening socket once in the primary and hands it to every worker, exactly
    /// as `--listen` does: `[NAME=]ADDR` with ADDR one of `PORT` (all interfaces),
    /// `HOST:PORT`, `[V6]:PORT`, `unix:PATH`. Call it again for more sockets; unnamed ones
    /// are `listen1`, `listen2` … by position.
    pub fn listen(mut self, addr: &str) -> Result<Cluster, ClusterError> {
        let fail = |reason: String| ClusterError::Listen { addr: addr.to_string(), reason };
        let parsed = values::listen(addr).map_err(fail)?;
        let name = parsed.name.unwrap_or_else(|| format!("listen{}", self.listen.len() + 1));
        if self.listen.iter().any(|l| l.name == name) {
            return Err(fail(format!("the name '{name}' is already used")));
        }
        self.listen.push(ListenSpec { name, addr: parsed.addr });
        Ok(self)
    }

    /// Every restart and stop setting at once (docs/supervision.md); the setters below change one.
    pub fn policy(mut self, policy: Policy) -> Cluster {
        self.policy = policy;
        self
    }

    /// When a worker that exited is restarted [default: always].
    pub fn restart(mut self, restart: RestartPolicy) -> Cluster {
        self.policy.restart = restart;
        self
    }

    /// The delay before restarting a worker that ran less than the minimum uptime
    /// [default: from 100 ms doubling up to 30 s]; `Backoff::ZERO` restarts at once.
    pub fn backoff(mut self, backoff: Backoff) -> Cluster {
        self.policy.backoff = backoff;
        self
    }

    /// A run this long counts as stable and resets the backoff [default: 10 s].
    pub fn min_uptime(mut self, d: Duration) -> Cluster {
        self.policy.min_uptime = d;
        self
    }

    /// Gives a worker up after `n` automatic restarts within `window` (0: never)
    /// [default: never, 60 s].
    pub fn max_restarts(mut self, n: u32, window: Duration) -> Cluster {
        self.policy.max_restarts = n;
        self.policy.restart_window = window;
        self
    }

    /// The signal of a graceful stop [default: SIGTERM].
    pub fn stop_signal(mut self, signal: Signal) -> Cluster {
        self.policy.stop_signal = signal;
        self
    }

    /// The grace after the stop signal before SIGKILL [default: 5 s].
    pub fn kill_timeout(mut self, d: Duration) -> Cluster {
        self.policy.kill_timeout = d;
        self
    }

    /// A worker is `starting` until it sends `ready`; rolling reloads wait for it
    /// [default: off].
    pub fn wait_ready(mut self, on: bool) -> Cluster {
        self.wait_ready = on;
        self
    }

    /// With `wait_ready`, a worker not ready by then is killed and counts as failed
    /// [default: 30 s].
    pub fn ready_timeout(mut self, d: Duration) -> Cluster {
        self.policy.ready_timeout = d;
        self
    }

    /// A worker that sent a heartbeat and then none for `d` is killed and restarted
    /// [default: off].
    pub fn heartbeat_timeout(mut self, d: Duration) -> Cluster {
        self.policy.heartbeat_timeout = Some(d);
        self
    }

    /// A worker whose memory (its whole process tree) stays above `bytes` is restarted
    /// gracefully [default: off].
    pub fn max_memory(mut self, bytes: u64) -> Cluster {
        self.policy.max_memory = Some(bytes);
        self
    }

    /// The arguments the workers get [default: this program's own, `std::env::args_os()`
    /// without the program name].
    pub fn args<I, S>(mut self, args: I) -> Cluster
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args = Some(args.into_iter().map(Into::into).collect());
        self
    }

    /// An extra environment variable for the workers (call it once per variable).
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Cluster {
        self.env.push((key.into(), value.into()));
        self
    }

    /// The workers' working directory [default: the primary's].
    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> Cluster {
        self.cwd = Some(dir.into());
        self
    }

    /// The live dashboard (true) or one line per event on stdout (false) [default: the
    /// dashboard when stdout is a terminal, as the command line does].
    pub fn dashboard(mut self, on: bool) -> Cluster {
        self.dashboard = Some(on);
        self
    }

    /// The format of the headless output (docs/output.md) [default: text].
    pub fn log_format(mut self, format: LogFormat) -> Cluster {
        self.log_format = format;
        self
    }

    /// Removes the escape sequences (colours included) from the workers' lines in the
    /// headless output and the log files, as `--strip-ansi` (docs/output.md) [default: off:
    /// colours are kept as received, everything else is made visible].
    pub fn strip_ansi(mut self, strip: bool) -> Cluster {
        self.strip_ansi = strip;
        self
    }

    /// Also writes corral's events to `DIR/corral.log` and each worker's output to
    /// `DIR/NAME.N.log`, rotated daily, keeping `keep` rotated files per log, as
    /// `--log-dir DIR --log-keep N` (docs/logs.md) [default: none].
    pub fn log_dir(mut self, dir: impl Into<PathBuf>, keep: u32) -> Cluster {
        self.log_dir = Some((dir.into(), keep));
        self
    }

    /// This corral's name for `corral ctl -I NAME` and `corral attach`, and its control
    /// socket's file name, as `-I` [default: the cluster's name]. Two primaries of one name
    /// cannot run at once: the second is refused.
    pub fn instance(mut self, name: impl Into<String>) -> Cluster {
        self.instance = Some(name.into());
        self
    }

    /// The control socket at `path` instead of its default place, as `--control`.
    pub fn control(mut self, path: impl Into<PathBuf>) -> Cluster {
        self.control = Control::At(path.into());
        self
    }

    /// No control socket: `ctl` and `attach` cannot reach this cluster, as `--no-control`.
    pub fn no_control(mut self) -> Cluster {
        self.control = Control::Off;
        self
    }

    /// More (1, 2) or less (-1, -2) of corral's own diagnostics, as `-v`/`-q` [default: 0,
    /// warnings]. `RUST_LOG` overrides it.
    pub fn verbosity(mut self, level: i8) -> Cluster {
        self.verbosity = level;
        self
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
        Ok(crate::runtime::run(spec)?)
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
