//! The group's settings: how many workers, what they get, how they are supervised.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use super::{Backoff, Cluster, ClusterError, Policy, RestartPolicy, Signal};
use crate::spec::values;

impl Cluster {
    /// How many workers, 1 to 4096 [default: the number of CPUs; 1 with a
    /// [`schedule`](Cluster::schedule)].
    pub fn workers(mut self, n: u32) -> Cluster {
        self.workers = Some(n);
        self
    }

    /// Binds a listening socket once in the primary and hands it to every worker, exactly
    /// as `--listen` does: `[NAME=]ADDR` with ADDR one of `PORT` (all interfaces),
    /// `HOST:PORT`, `[V6]:PORT`, `unix:PATH`, `fd:NAME`. Call it again for more sockets;
    /// unnamed ones are `listen1`, `listen2` … by position (`fd:NAME` ones are `NAME`), and
    /// two of one name are refused when the cluster is checked.
    pub fn listen(mut self, addr: &str) -> Result<Cluster, ClusterError> {
        let parsed = values::listen(addr)
            .map_err(|reason| ClusterError::Listen { addr: addr.to_string(), reason })?;
        self.listen.push(parsed);
        Ok(self)
    }

    /// Every restart and stop setting at once (docs/supervision.md); the setters below change one.
    pub fn policy(mut self, policy: Policy) -> Cluster {
        self.policy = policy;
        self.restart_chosen = true;
        self
    }

    /// When a worker that exited is restarted [default: always; never with a
    /// [`schedule`](Cluster::schedule)].
    pub fn restart(mut self, restart: RestartPolicy) -> Cluster {
        self.policy.restart = restart;
        self.restart_chosen = true;
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

    /// Rolling reload without [`wait_ready`](Cluster::wait_ready): a replacement must stay
    /// up this long before the worker it replaces is stopped; one that dies sooner fails
    /// the reload (zero hands over at once), as `--reload-settle` [default: 2 s].
    pub fn reload_settle(mut self, d: Duration) -> Cluster {
        self.policy.reload_settle = d;
        self
    }

    /// Reads the workers' environment from this dotenv file at every spawn, under
    /// [`env`](Cluster::env); call it again for more (later files win), as `--env-file`
    /// (docs/application.md#environment-files-env-file). A relative path is the primary's
    /// working directory's; a missing or malformed file is refused when the cluster is
    /// checked.
    pub fn env_file(mut self, path: impl Into<PathBuf>) -> Cluster {
        self.env_files.push(path.into());
        self
    }

    /// Runs the workers at these times, one run at a time, as `--schedule`
    /// (docs/application.md#schedules): a cron pattern with 5 fields, 6 (seconds first), or
    /// `@hourly`, `@daily` …; the restart policy then defaults to never (`Always` is
    /// refused) and the workers to 1.
    pub fn schedule(mut self, cron: &str) -> Result<Cluster, ClusterError> {
        self.schedule = Some(schedule(cron)?);
        Ok(self)
    }

    /// A rolling reload of the workers at these times (a cron pattern, as
    /// [`schedule`](Cluster::schedule)), as `--reload-schedule`.
    pub fn reload_schedule(mut self, cron: &str) -> Result<Cluster, ClusterError> {
        self.reload_schedule = Some(schedule(cron)?);
        Ok(self)
    }

    /// Reads the schedules in UTC rather than local time, as `--schedule-tz UTC`
    /// [default: local].
    pub fn schedule_utc(mut self, utc: bool) -> Cluster {
        self.schedule_utc = utc;
        self
    }

    /// Probes each worker's readiness, as `--readiness-probe` (docs/application.md#probes):
    /// `http://HOST:PORT/PATH` (2xx or 3xx), `tcp:HOST:PORT` (connects) or `exec:COMMAND`
    /// (exits 0), with `{slot}` and `{pid}` replaced. A worker is `ready` when it succeeds
    /// (this implies [`wait_ready`](Cluster::wait_ready)) and `unready` when it fails after
    /// (every 5 s, 1 s timeout, 3 failures).
    pub fn readiness_probe(mut self, probe: &str) -> Result<Cluster, ClusterError> {
        self.probes.readiness = Some(parse_probe("readiness probe", probe)?);
        Ok(self)
    }

    /// Probes each worker's liveness (the same forms), as `--liveness-probe`: 3 failures in
    /// a row restart it gracefully.
    pub fn liveness_probe(mut self, probe: &str) -> Result<Cluster, ClusterError> {
        self.probes.liveness = Some(parse_probe("liveness probe", probe)?);
        Ok(self)
    }

    /// A probe (the same forms) that holds the others back until it first succeeds, as
    /// `--startup-probe`; 3 failures in a row restart the worker.
    pub fn startup_probe(mut self, probe: &str) -> Result<Cluster, ClusterError> {
        self.probes.startup = Some(parse_probe("startup probe", probe)?);
        Ok(self)
    }

    /// Adopts the workers' own `bind()` of a TCP or UDP port: every worker gets the group's
    /// one socket for that address, as `--share-binds` (docs/sharing-a-port.md) [default:
    /// off; [`listen`](Cluster::listen) is the way for a program written for corral].
    pub fn share_binds(mut self, on: bool) -> Cluster {
        self.share_binds = on;
        self
    }

    /// Gives each worker a pseudo-terminal as its stdout and stderr, as `--pty`
    /// (docs/development.md) [default: off].
    pub fn pty(mut self, on: bool) -> Cluster {
        self.pty = on;
        self
    }

    /// Reloads the cluster when a file under `path` changes, as `--watch`
    /// (docs/development.md); call it again for more paths. A relative path is the
    /// primary's working directory's; each must exist when the cluster is checked.
    pub fn watch(mut self, path: impl Into<PathBuf>) -> Cluster {
        self.watch.push(path.into());
        self
    }

    /// Leaves out changes to paths matching `glob` (a gitignore line: `*.log`, `target/`),
    /// as `--watch-ignore`; call it again for more.
    pub fn watch_ignore(mut self, glob: &str) -> Result<Cluster, ClusterError> {
        let glob = values::watch_glob(glob)
            .map_err(|reason| ClusterError::WatchIgnore { glob: glob.to_string(), reason })?;
        self.watch_ignore.push(glob);
        Ok(self)
    }

    /// With [`watch`](Cluster::watch): the quiet time after the last change before the
    /// reload, as `--watch-debounce` [default: 300 ms].
    pub fn watch_debounce(mut self, d: Duration) -> Cluster {
        self.watch_debounce = d;
        self
    }
}

fn schedule(cron: &str) -> Result<crate::schedule::Schedule, ClusterError> {
    values::cron(cron)
        .map_err(|reason| ClusterError::Schedule { pattern: cron.to_string(), reason })
}

fn parse_probe(
    probe: &'static str,
    text: &str,
) -> Result<crate::probe_spec::ProbeSpec, ClusterError> {
    values::probe(text).map_err(|reason| ClusterError::Probe {
        probe,
        text: text.to_string(),
        reason,
    })
}
