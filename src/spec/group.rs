//! One group as asked for ([`GroupRequest`]) into the checked [`GroupSpec`]: the defaults
//! that depend on other options (a scheduled group runs once, not once per CPU, and does not
//! restart), the limits a typed value can still break (a backoff that shrinks, a zero window),
//! the names of the sockets, the env files and watched paths as they are now.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::Duration;

use super::SpecError;
use super::values::{self, Listen, MAX_DURATION};
use crate::config::{CommandSpec, GroupSpec, ListenAddr, ListenSpec, Sched, WatchSpec};
use crate::core::{MAX_WORKERS, Policy, RestartPolicy};
use crate::probe_spec::GroupProbes;
use crate::schedule::{Schedule, Zone};

/// A switch that may follow from the program (`--node-ipc auto`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Switch {
    Auto,
    On,
    Off,
}

/// What one group asks for, each value read and in its own range; the command resolved and
/// the working directory checked (the command may be relative to it).
#[derive(Clone, Debug)]
pub(crate) struct GroupRequest {
    pub name: String,
    /// `None`: one per CPU, or one for a group on a schedule.
    pub workers: Option<u32>,
    pub command: CommandSpec,
    pub listen: Vec<Listen>,
    pub policy: Policy,
    /// Whether `policy.restart` was chosen rather than left at its default: a schedule
    /// then refuses `always` instead of turning it into `never`.
    pub restart_chosen: bool,
    pub cwd: Option<PathBuf>,
    pub env: Vec<(OsString, OsString)>,
    /// Absolute paths, read now to refuse a missing or malformed one.
    pub env_files: Vec<PathBuf>,
    pub schedule: Option<Schedule>,
    pub reload_schedule: Option<Schedule>,
    pub schedule_tz: Zone,
    pub wait_ready: bool,
    pub node_ipc: Switch,
    pub node_cluster: Switch,
    pub node_cluster_sched: Sched,
    pub share_binds: bool,
    pub pty: bool,
    /// Paths as written, read against `watch_base`; they must exist now.
    pub watch: Vec<PathBuf>,
    pub watch_base: PathBuf,
    pub watch_ignore: Vec<String>,
    pub watch_debounce: Duration,
    pub probes: GroupProbes,
}

impl GroupRequest {
    /// A group of `name` running `command` with every other option at its default.
    pub fn new(name: String, command: CommandSpec, watch_base: PathBuf) -> GroupRequest {
        GroupRequest {
            name,
            workers: None,
            command,
            listen: Vec::new(),
            policy: Policy::default(),
            restart_chosen: false,
            cwd: None,
            env: Vec::new(),
            env_files: Vec::new(),
            schedule: None,
            reload_schedule: None,
            schedule_tz: Zone::Local,
            wait_ready: false,
            node_ipc: Switch::Off,
            node_cluster: Switch::Off,
            node_cluster_sched: Sched::Shared,
            share_binds: false,
            pty: false,
            watch: Vec::new(),
            watch_base,
            watch_ignore: Vec::new(),
            watch_debounce: crate::config::DEFAULT_WATCH_DEBOUNCE,
            probes: GroupProbes::default(),
        }
    }

    /// The checked group. Dependencies on other groups are the config file's to add.
    pub fn build(self) -> Result<GroupSpec, SpecError> {
        let name = values::name(&self.name)
            .map_err(|reason| SpecError::Name { name: self.name.clone(), reason })?;
        let listen = listen_specs(&self.listen)?;
        let mut policy = self.policy;
        if self.schedule.is_some() && policy.restart == RestartPolicy::Always {
            if self.restart_chosen {
                return Err(SpecError::ScheduleRestartsAlways);
            }
            policy.restart = RestartPolicy::Never;
        }
        check_policy(&policy)?;
        let workers = match self.workers {
            Some(n) if (1..=MAX_WORKERS).contains(&n) => n,
            Some(n) => return Err(SpecError::Workers(n)),
            None if self.schedule.is_some() => 1,
            None => default_workers(),
        };
        check_env(&self.env)?;
        for (index, file) in self.env_files.iter().enumerate() {
            crate::env_file::read(file).map_err(|error| SpecError::EnvFile { index, error })?;
        }
        let watch = self.watch_spec()?;
        let node_ipc = match self.node_ipc {
            Switch::On => true,
            Switch::Off => false,
            Switch::Auto => is_node(&self.command),
        };
        // WHY only `always` in auto: a cluster worker never exits by itself while its channel
        // is open, so a one-shot script would hang; such groups stay plain.
        let node_cluster = match self.node_cluster {
            Switch::On => true,
            Switch::Off => false,
            Switch::Auto => node_ipc && policy.restart == RestartPolicy::Always,
        };
        policy.disconnect_first = node_cluster;
        let zone = self.schedule_tz;
        Ok(GroupSpec {
            name,
            workers,
            command: self.command,
            policy,
            cwd: self.cwd,
            env: self.env,
            env_files: self.env_files,
            schedule: self.schedule.map(|s| s.in_zone(zone)),
            reload_schedule: self.reload_schedule.map(|s| s.in_zone(zone)),
            listen,
            // A readiness probe decides `ready` as the worker's own message does: it is
            // waited for.
            wait_ready: self.wait_ready || self.probes.readiness.is_some(),
            node_ipc: node_ipc || node_cluster,
            node_cluster,
            node_cluster_sched: self.node_cluster_sched,
            share_binds: self.share_binds,
            depends_on: Vec::new(),
            pty: self.pty,
            watch,
            probes: self.probes,
        })
    }

    /// The watch, when the group watches anything: every path exists now (a typo would
    /// otherwise watch nothing, silently) and is made absolute.
    fn watch_spec(&self) -> Result<Option<WatchSpec>, SpecError> {
        if self.watch.is_empty() {
            return Ok(None);
        }
        let mut paths = Vec::with_capacity(self.watch.len());
        for (index, path) in self.watch.iter().enumerate() {
            let checked = super::resolve::watch_path(path, &self.watch_base)
                .map_err(|reason| SpecError::Watch { index, path: path.clone(), reason })?;
            paths.push(checked);
        }
        if self.watch_debounce > MAX_DURATION {
            return Err(SpecError::Policy { option: "watch debounce", expected: UP_TO_A_YEAR });
        }
        Ok(Some(WatchSpec {
            paths,
            ignore: self.watch_ignore.clone(),
            debounce: self.watch_debounce,
            base: self.watch_base.clone(),
        }))
    }
}

/// One worker per CPU, as Node's cluster examples do.
fn default_workers() -> u32 {
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    u32::try_from(cpus).map_or(MAX_WORKERS, |n| n.min(MAX_WORKERS))
}

fn is_node(command: &CommandSpec) -> bool {
    let file = command.program.file_name().and_then(|f| f.to_str()).unwrap_or("");
    matches!(file, "node" | "nodejs" | "bun")
}

/// Unnamed sockets are named by position (`listen2` is the second one), inherited ones by
/// the name they were handed with; names must be unique because workers look their sockets
/// up by name.
fn listen_specs(listen: &[Listen]) -> Result<Vec<ListenSpec>, SpecError> {
    let mut specs: Vec<ListenSpec> = Vec::with_capacity(listen.len());
    for (i, l) in listen.iter().enumerate() {
        let name = match (&l.name, &l.addr) {
            (Some(name), _) | (None, ListenAddr::Inherited(name)) => name.clone(),
            (None, _) => format!("listen{}", i + 1),
        };
        if specs.iter().any(|s| s.name == name) {
            return Err(SpecError::ListenName { text: l.text.clone(), name });
        }
        // Port 0 is a new port at each bind; any other address binds once.
        let any_port = matches!(l.addr, ListenAddr::AnyPort(0))
            || matches!(l.addr, ListenAddr::Tcp(a) if a.port() == 0);
        if !any_port && specs.iter().any(|s| s.addr == l.addr) {
            return Err(SpecError::ListenTwice { text: l.text.clone() });
        }
        specs.push(ListenSpec { name, addr: l.addr.clone() });
    }
    Ok(specs)
}

const UP_TO_A_YEAR: &str = "a duration up to 1 year";

/// What the value parsers refuse in text, refused in typed values (the library's).
fn check_policy(p: &Policy) -> Result<(), SpecError> {
    let invalid = |option, expected| Err(SpecError::Policy { option, expected });
    if p.backoff.max < p.backoff.first {
        return invalid("backoff", "a first delay not above the maximum");
    }
    if p.backoff.first.is_zero() && !p.backoff.max.is_zero() {
        return invalid(
            "backoff",
            "a first delay above 0 (it doubles from there), or Backoff::ZERO",
        );
    }
    if p.restart_window.is_zero() {
        return invalid("restart window", "a duration above 0");
    }
    if p.ready_timeout.is_zero() {
        return invalid("ready timeout", "a duration above 0");
    }
    if p.heartbeat_timeout.is_some_and(|d| d.is_zero()) {
        return invalid("heartbeat timeout", "a duration above 0");
    }
    if p.max_memory == Some(0) {
        return invalid("max memory", "a size above 0");
    }
    // Far beyond any sensible setting, far below what would overflow the clock arithmetic.
    let durations = [
        ("backoff", Some(p.backoff.max)),
        ("min uptime", Some(p.min_uptime)),
        ("restart window", Some(p.restart_window)),
        ("kill timeout", Some(p.kill_timeout)),
        ("ready timeout", Some(p.ready_timeout)),
        ("heartbeat timeout", p.heartbeat_timeout),
        ("reload settle", Some(p.reload_settle)),
    ];
    for (option, d) in durations {
        if d.is_some_and(|d| d > MAX_DURATION) {
            return invalid(option, UP_TO_A_YEAR);
        }
    }
    Ok(())
}

/// Keys that `execve` could not pass on (empty, with `=` or NUL), values with NUL.
fn check_env(env: &[(OsString, OsString)]) -> Result<(), SpecError> {
    for (key, value) in env {
        let bad_key = key.is_empty() || key.as_bytes().iter().any(|&b| b == b'=' || b == 0);
        if bad_key || value.as_bytes().contains(&0) {
            return Err(SpecError::Env(key.to_string_lossy().into_owned()));
        }
    }
    Ok(())
}
