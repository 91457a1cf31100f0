//! The options of a run (docs/config.md), as clap reads them; `mod.rs` turns them into a
//! [`crate::config::RunSpec`].

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use clap::builder::TypedValueParser;

use crate::core::Backoff;
use crate::signal::Signal;
use crate::spec::values::{self, Listen};

/// Options of a run, accepted before or after `demo`.
// Options that take a number or a duration have `allow_hyphen_values`: `-w -1` then reaches
// the value parser and is refused by name, instead of `-1` looking like an unknown flag.
#[derive(Args, Clone, Debug)]
pub(super) struct RunOpts {
    /// Workers in the group, 1 to 4096 [default: number of CPUs; 2 for demo].
    #[arg(
        short, long, global = true, value_name = "N",
        value_parser = values::workers, allow_hyphen_values = true,
    )]
    pub(super) workers: Option<u32>,
    /// Group name, used in worker ids (web.2) [default: COMMAND's file name; web for demo].
    #[arg(short, long, global = true, value_name = "NAME", value_parser = values::name)]
    pub(super) name: Option<String>,
    /// Bind a socket once and hand it to every worker: [NAME=]PORT (every interface, as
    /// Node's listen(PORT); 127.0.0.1:PORT for this machine only), HOST:PORT, [V6]:PORT or
    /// unix:PATH (repeatable; names default to listen1, listen2, ...).
    #[arg(short, long, global = true, value_name = "ADDR", value_parser = values::listen)]
    pub(super) listen: Vec<Listen>,
    /// When to restart a worker that exited; on-failure means after a non-zero exit or a signal.
    #[arg(long, global = true, value_name = "POLICY", default_value = "always")]
    pub(super) restart: RestartArg,
    /// Delay before restarting a worker that ran less than --min-uptime: D..MAX doubles from D
    /// up to MAX, one value is fixed, 0 restarts at once.
    #[arg(
        long, global = true, value_name = "D[..MAX]", default_value = "100ms..30s",
        value_parser = values::backoff, allow_hyphen_values = true,
    )]
    pub(super) backoff: Backoff,
    /// A run this long counts as stable: the backoff starts again from its first step.
    #[arg(
        long, global = true, value_name = "D", default_value = "10s",
        value_parser = values::duration, allow_hyphen_values = true,
    )]
    pub(super) min_uptime: Duration,
    /// Give a worker up after N automatic restarts within --restart-window (0 = never).
    #[arg(
        long, global = true, value_name = "N", default_value_t = 0,
        value_parser = values::max_restarts, allow_hyphen_values = true,
    )]
    pub(super) max_restarts: u32,
    /// The window for --max-restarts.
    #[arg(
        long, global = true, value_name = "D", default_value = "60s",
        value_parser = values::positive_duration, allow_hyphen_values = true,
    )]
    pub(super) restart_window: Duration,
    /// Signal for a graceful stop (TERM, SIGINT, 2, ...).
    #[arg(
        long, global = true, value_name = "SIG", default_value = "SIGTERM",
        value_parser = values::signal, allow_hyphen_values = true,
    )]
    pub(super) stop_signal: Signal,
    /// Grace after the stop signal before SIGKILL.
    #[arg(
        long, global = true, value_name = "D", default_value = "5s",
        value_parser = values::duration, allow_hyphen_values = true,
    )]
    pub(super) kill_timeout: Duration,
    /// Working directory of the workers [default: corral's].
    #[arg(long, global = true, value_name = "DIR")]
    pub(super) cwd: Option<PathBuf>,
    /// Extra environment for the workers (repeatable).
    #[arg(long, global = true, value_name = "K=V", value_parser = EnvParser)]
    pub(super) env: Vec<(OsString, OsString)>,
    /// Read the workers' environment from this dotenv file at every spawn, under --env
    /// (repeatable; later files win).
    #[arg(long, global = true, value_name = "FILE")]
    pub(super) env_file: Vec<PathBuf>,
    /// Run the workers at these times, one run at a time: a cron pattern with 5 fields, 6
    /// (seconds first) or @hourly, @daily, … (implies --restart never) [default: off].
    #[arg(long, global = true, value_name = "CRON", value_parser = values::cron)]
    pub(super) schedule: Option<crate::schedule::Schedule>,
    /// A rolling reload of the workers at these times (cron, as --schedule).
    #[arg(long, global = true, value_name = "CRON", value_parser = values::cron)]
    pub(super) reload_schedule: Option<crate::schedule::Schedule>,
    /// The time zone of --schedule and --reload-schedule: local or UTC.
    #[arg(
        long, global = true, value_name = "TZ", default_value = "local",
        value_parser = crate::schedule::Zone::parse,
    )]
    pub(super) schedule_tz: crate::schedule::Zone,
    /// A worker is `starting` until it sends `ready` on its event channel.
    #[arg(long, global = true)]
    pub(super) wait_ready: bool,
    /// With --wait-ready, a worker not ready by then is killed and counts as failed.
    #[arg(
        long, global = true, value_name = "D", default_value = "30s",
        value_parser = values::positive_duration, allow_hyphen_values = true,
    )]
    pub(super) ready_timeout: Duration,
    /// Rolling reload without --wait-ready: a replacement must stay up this long before the
    /// worker it replaces is stopped; one that dies sooner fails the reload (0 = hand over
    /// at once).
    #[arg(
        long, global = true, value_name = "D", default_value = "2s",
        value_parser = values::duration,
    )]
    pub(super) reload_settle: Duration,
    /// A worker that sent a heartbeat and then none for D is killed (SIGABRT, then SIGKILL
    /// after --kill-timeout) and restarted [default: off].
    #[arg(
        long, global = true, value_name = "D",
        value_parser = values::positive_duration, allow_hyphen_values = true,
    )]
    pub(super) heartbeat_timeout: Option<Duration>,
    /// Restart a worker whose resident memory (its whole process tree) stays above SIZE for
    /// two one-second samples: 512MiB, 1G [default: off].
    #[arg(
        long, global = true, value_name = "SIZE",
        value_parser = values::memory_size, allow_hyphen_values = true,
    )]
    pub(super) max_memory: Option<u64>,
    /// Also announce the event channel as Node's IPC channel (`NODE_CHANNEL_FD`), so an
    /// unmodified Node worker's messages reach corral; auto = when COMMAND is node, nodejs
    /// or bun.
    #[arg(long, global = true, value_name = "MODE", default_value = "auto")]
    pub(super) node_ipc: NodeIpcArg,
    /// Be the Node cluster primary of Node workers: each `server.listen(…)` of theirs gets
    /// one socket per address shared by the whole group, and a graceful stop disconnects
    /// first (docs/node.md); auto = with Node IPC on and --restart always. On implies
    /// --node-ipc on.
    #[arg(long, global = true, value_name = "MODE", default_value = "auto")]
    pub(super) node_cluster: NodeIpcArg,
    /// How connections reach Node cluster workers: shared (one socket, the kernel picks
    /// the worker; fastest) or rr (corral accepts and hands each to the next worker).
    #[arg(long, global = true, value_name = "SCHED", default_value = "shared")]
    pub(super) node_cluster_sched: SchedArg,
    /// Share a port the program binds itself: each worker's `bind()` of a TCP or UDP port
    /// gets the group's one socket for it, so `-w 4 -- python3 -m http.server` serves from
    /// four processes (docs/sharing-a-port.md).
    #[arg(long, global = true, value_name = "MODE", default_value = "on")]
    pub(super) share_binds: SwitchArg,
    /// Give each worker a pseudo-terminal as its stdout and stderr (sized like the output
    /// pane), so tools that colour or line-buffer only on a terminal do so.
    #[arg(long, global = true)]
    pub(super) pty: bool,
    /// Reload the group when a file under PATH changes (repeatable; `.git/`,
    /// `node_modules/` and what the root's .gitignore lists are left out).
    #[arg(long, global = true, value_name = "PATH")]
    pub(super) watch: Vec<PathBuf>,
    /// Leave out changes to paths matching GLOB (gitignore syntax, repeatable).
    #[arg(long, global = true, value_name = "GLOB", value_parser = values::watch_glob)]
    pub(super) watch_ignore: Vec<String>,
    /// With --watch: the quiet time after the last change before the reload.
    #[arg(
        long, global = true, value_name = "D", default_value = "300ms",
        value_parser = values::duration, allow_hyphen_values = true,
    )]
    pub(super) watch_debounce: Duration,
    /// Probe each worker's readiness: http://HOST:PORT/PATH (2xx/3xx), tcp:HOST:PORT
    /// (connects) or exec:COMMAND (exit 0), `{slot}` and `{pid}` replaced; `ready` when it
    /// succeeds (implies --wait-ready), `unready` when it fails after (every 5s, 1s
    /// timeout, 3 failures; a config file sets the numbers).
    #[arg(long, global = true, value_name = "PROBE", value_parser = values::probe)]
    pub(super) readiness_probe: Option<crate::probe_spec::ProbeSpec>,
    /// Probe each worker's liveness (same forms): 3 failures in a row restart it
    /// gracefully (reason `liveness_probe`).
    #[arg(long, global = true, value_name = "PROBE", value_parser = values::probe)]
    pub(super) liveness_probe: Option<crate::probe_spec::ProbeSpec>,
    /// A probe (same forms) that holds the others back until it first succeeds; failing
    /// 3 times in a row restarts the worker (reason `liveness_probe`).
    #[arg(long, global = true, value_name = "PROBE", value_parser = values::probe)]
    pub(super) startup_probe: Option<crate::probe_spec::ProbeSpec>,
    /// No dashboard: one line per event on stdout [default when stdout is not a terminal].
    #[arg(long, global = true)]
    pub(super) no_ui: bool,
    /// Format of the headless output.
    #[arg(long, global = true, value_name = "FORMAT", default_value = "text")]
    pub(super) log_format: FormatArg,
    /// Remove escape sequences, colours included, from the workers' lines in the headless
    /// output and the log files [default: colours kept, other sequences shown escaped].
    #[arg(long, global = true)]
    pub(super) strip_ansi: bool,
    /// Write corral's events to DIR/corral.log and each worker's output to
    /// DIR/GROUP.N.log, rotated daily.
    #[arg(long, global = true, value_name = "DIR")]
    pub(super) log_dir: Option<PathBuf>,
    /// Rotated files kept per log file in --log-dir.
    #[arg(
        long, global = true, value_name = "N", default_value_t = crate::config::DEFAULT_LOG_KEEP,
        value_parser = values::log_keep, allow_hyphen_values = true,
    )]
    pub(super) log_keep: u32,
    /// This corral's name, for ctl/attach and its control socket [default: the config
    /// file's stem, else -n, else the program and its script (node-app); -2, -3… when taken].
    #[arg(short = 'I', long, global = true, value_name = "NAME", value_parser = values::name)]
    pub(super) instance: Option<String>,
    /// The control socket [default: `$XDG_RUNTIME_DIR/corral/NAME.sock`, else
    /// `/tmp/corral-UID/NAME.sock`].
    #[arg(long, global = true, value_name = "PATH", conflicts_with = "no_control")]
    pub(super) control: Option<PathBuf>,
    /// Serve no control socket (ctl and attach cannot reach this corral).
    #[arg(long, global = true)]
    pub(super) no_control: bool,
    /// Serve Prometheus/OpenMetrics text at `http://ADDR/metrics`: PORT (127.0.0.1 only,
    /// not every interface), HOST:PORT or [V6]:PORT [default: off].
    #[arg(long, global = true, value_name = "ADDR", value_parser = values::metrics_addr)]
    pub(super) metrics: Option<std::net::SocketAddr>,
    /// More of corral's own diagnostics (repeatable).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(super) verbose: u8,
    /// Less of corral's own diagnostics (repeatable).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(super) quiet: u8,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum RestartArg {
    Always,
    OnFailure,
    Never,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum NodeIpcArg {
    Auto,
    On,
    Off,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum SwitchArg {
    On,
    Off,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum SchedArg {
    Shared,
    Rr,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum FormatArg {
    Text,
    Json,
}

/// `--env K=V` on `OsStr`, because environment values need not be UTF-8.
#[derive(Clone, Copy, Debug)]
pub(super) struct EnvParser;

impl TypedValueParser for EnvParser {
    type Value = (OsString, OsString);

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<Self::Value, clap::Error> {
        values::env_pair(value).map_err(|reason| {
            let arg = arg.map_or_else(|| "--env".to_string(), ToString::to_string);
            let message =
                format!("invalid value '{}' for '{arg}': {reason}", value.to_string_lossy());
            clap::Error::raw(clap::error::ErrorKind::ValueValidation, message).with_cmd(cmd)
        })
    }
}
