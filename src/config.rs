//! The validated run configuration: what the command line (or later a config file) asks
//! for, already checked, with the command resolved to an executable path.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::core::{GroupConfig, Policy};

/// Everything one `corral` run needs.
#[derive(Clone, Debug)]
pub struct RunSpec {
    pub groups: Vec<GroupSpec>,
    pub output: OutputMode,
    /// -v raises, -q lowers; 0 is the default level (warnings).
    pub verbosity: i8,
    /// Log files (docs/logs.md): corral's events and each slot's output, rotated daily.
    pub log_files: Option<LogDir>,
    /// `--strip-ansi`: workers' lines lose their escape sequences in the headless output and
    /// the log files (kept as received otherwise: colours pass, the rest is made visible).
    pub strip_ansi: bool,
    /// This corral's name: `-I`, the config file's `instance` or stem, else the group's
    /// (with the script's name: `node-server` for `node server.js`).
    pub instance: String,
    /// Whether `instance` is a default rather than a name the user chose: when a running
    /// corral has it, this one takes the first free `NAME-2`, `NAME-3`, … (and its socket),
    /// so running the same command twice needs no `-I`.
    pub instance_is_default: bool,
    /// The control socket (docs/control.md); `None`: `--no-control`.
    pub control: Option<std::path::PathBuf>,
    /// `--metrics`: where to serve Prometheus text (docs/production.md#prometheus).
    pub metrics: Option<std::net::SocketAddr>,
}

/// `--log-dir` and `--log-keep`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogDir {
    pub dir: PathBuf,
    /// Rotated files kept per log, besides the current one.
    pub keep: u32,
}

/// `--log-keep`'s default: a week of daily files.
pub const DEFAULT_LOG_KEEP: u32 = 7;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputMode {
    /// One line per event on stdout (docs/output.md).
    Headless(LogFormat),
    /// The terminal dashboard (docs/dashboard.md).
    Dashboard,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// One group of identical workers.
#[derive(Clone, Debug)]
pub struct GroupSpec {
    pub name: String,
    pub workers: u32,
    pub command: CommandSpec,
    pub policy: Policy,
    pub cwd: Option<PathBuf>,
    /// Extra environment, applied over corral's own and the env files': the file's `env`
    /// table, then `--env`.
    pub env: Vec<(OsString, OsString)>,
    /// Env files (absolute paths), read in order at every spawn, between corral's own
    /// environment and `env` (docs/application.md#environment-files-env-file).
    pub env_files: Vec<PathBuf>,
    /// A one-shot group's cron schedule: its workers run at these times, one run at a time
    /// (docs/application.md#schedules).
    pub schedule: Option<crate::schedule::Schedule>,
    /// A rolling reload of the group at these times.
    pub reload_schedule: Option<crate::schedule::Schedule>,
    pub listen: Vec<ListenSpec>,
    pub wait_ready: bool,
    /// Also announce the event channel as Node's IPC channel (`NODE_CHANNEL_FD`).
    pub node_ipc: bool,
    /// corral is the Node cluster primary of this group's workers (docs/node.md).
    pub node_cluster: bool,
    /// How a Node cluster group's connections reach its workers.
    pub node_cluster_sched: Sched,
    /// Adopt the workers' own `bind()` of a TCP or UDP port: every worker gets the group's
    /// one socket for that address (docs/sharing-a-port.md). Node cluster groups share the
    /// Node way instead.
    pub share_binds: bool,
    /// Conditions on other groups (by index) that must hold before this group starts
    /// (docs/application.md#dependencies-depends-on).
    pub depends_on: Vec<crate::core::Dependency>,
    /// Workers' stdout and stderr are one pseudo-terminal (docs/development.md).
    pub pty: bool,
    /// Reload the group when a file under these paths changes (docs/development.md).
    pub watch: Option<WatchSpec>,
    /// Readiness, liveness and startup probes (docs/application.md#probes).
    pub probes: crate::probe_spec::GroupProbes,
}

/// `--watch` and its companions, checked: the paths exist and are absolute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchSpec {
    pub paths: Vec<PathBuf>,
    /// Gitignore-style globs, relative to `base`.
    pub ignore: Vec<String>,
    /// The quiet period after the last change before the reload.
    pub debounce: std::time::Duration,
    /// Where relative globs and the project's `.gitignore` are read from: corral's working
    /// directory, or the config file's (Procfile's) directory.
    pub base: PathBuf,
}

/// `--watch-debounce`'s default.
pub const DEFAULT_WATCH_DEBOUNCE: std::time::Duration = std::time::Duration::from_millis(300);

/// How connections reach a Node cluster group's workers (docs/node.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Sched {
    /// One socket shared by every worker: the kernel picks who accepts.
    #[default]
    Shared,
    /// corral accepts and hands each connection to the next worker, for an even split.
    RoundRobin,
}

impl GroupSpec {
    pub fn core_config(&self) -> GroupConfig {
        GroupConfig {
            name: self.name.clone(),
            workers: self.workers,
            policy: self.policy,
            // Set with a readiness probe (cli): the library's groups have no probes.
            wait_ready: self.wait_ready || self.probes.readiness.is_some(),
            depends_on: self.depends_on.clone(),
            scheduled: self.schedule.is_some(),
            probes: self.probes.timings(),
        }
    }
}

/// The program to run, resolved once at start-up.
#[derive(Clone, Debug)]
pub struct CommandSpec {
    /// Absolute (or cwd-relative, when given with a `/`) path passed to `execve`.
    pub program: PathBuf,
    /// `argv`, including `argv[0]` as the user wrote it.
    pub argv: Vec<OsString>,
    /// The command line as shown to people (`node server.js`).
    pub display: String,
}

/// A listening socket corral binds once and hands to every worker of the group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenSpec {
    /// Its entry in `LISTEN_FDNAMES`.
    pub name: String,
    pub addr: ListenAddr,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListenAddr {
    /// `PORT`: all interfaces, IPv6 and IPv4, as Node's `listen(PORT)`.
    AnyPort(u16),
    /// `HOST:PORT` or `[V6]:PORT`.
    Tcp(SocketAddr),
    /// `unix:PATH`
    Unix(PathBuf),
    /// `fd:NAME`: a socket corral was handed (`LISTEN_FDS`), by its `LISTEN_FDNAMES` name.
    Inherited(String),
}

impl std::fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ListenAddr::AnyPort(port) => write!(f, "[::]:{port}"),
            ListenAddr::Tcp(addr) => write!(f, "{addr}"),
            ListenAddr::Unix(path) => write!(f, "unix:{}", path.display()),
            ListenAddr::Inherited(name) => write!(f, "fd:{name}"),
        }
    }
}
