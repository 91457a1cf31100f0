//! The tokio glue: feeds kernel facts (exits, signals, output) into the pure core and
//! carries out the commands it returns. Runs on one thread — the main thread, which
//! also forks every worker, so their parent-death signal is tied to a thread that lives
//! as long as corral.

mod adopt;
mod commands;
mod control_service;
mod dashboard;
mod env;
mod env_files;
mod finish;
mod handlers;
mod hub;
mod inputs;
mod instance;
mod keeper;
mod listeners;
pub mod logs;
mod metrics_glue;
mod node;
mod node_setup;
mod ports;
mod probes;
mod procs;
mod schedules;
#[allow(unsafe_code, reason = "signal handlers and their siginfo")]
mod signals;
mod start;
mod stop_signals;
#[allow(unsafe_code, reason = "FIONREAD and registering fds with tokio")]
mod streams;
mod summary;
mod systemd;
mod terminals;
mod timers;
mod turns;
mod watch;

use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use self::env::EnvTemplate;
use self::hub::Reports;
use self::inputs::Inputs;
use self::procs::ProcessTable;
use self::signals::Signals;
use self::timers::Timers;
use crate::backend::{self, BoundListener};
use crate::config::{GroupSpec, RunSpec};
use crate::core::{Input, Supervisor};
use crate::report::{GroupInfo, Record};
use crate::ui;

pub(crate) use self::keeper::{KEEPER_VAR, start_as_this_program as keeper_is_this_program};
pub use self::start::{StartError, run};

/// The dashboard gets a fresh view at most this often.
const FRAME: Duration = Duration::from_millis(33);

/// The longest the loop spends spawning before it looks at signals, keys, output and
/// clients again: starting thousands of workers takes seconds, and nothing may wait that long.
const SPAWN_SLICE: Duration = Duration::from_millis(10);

/// How often a process group that outlived its leader is checked for emptiness.
const GROUP_POLL: Duration = Duration::from_millis(20);

/// A group as the loop runs it: its spec, environment, sockets and binds.
struct GroupIo {
    spec: GroupSpec,
    env: EnvTemplate,
    listeners: Vec<BoundListener>,
    /// How its workers' own binds are adopted, when they are (docs/sharing-a-port.md).
    adopt: Option<backend::AdoptBinds>,
    /// A worker died saying an address was in use, and the hint was given.
    hinted: bool,
}

/// The loop and everything it drives. Each field is a component that owns its state;
/// only the loop (this file, `commands` for the core's commands, `handlers` for what
/// arrives from outside) sees them all, and lends each what it needs for one call.
struct Runtime {
    core: Supervisor,
    groups: Vec<GroupIo>,
    names: Vec<String>,
    instance: String,
    /// The one queue of inputs for the core, the stream readers' included.
    inputs: Rc<Inputs>,
    /// The report fan-out: headless output, log files, the control tap, the logs.
    hub: Reports,
    stdout_closed: Arc<tokio::sync::Notify>,
    exit: Option<u8>,
    /// Leaders, generations, spawns, reaping and signalling.
    procs: ProcessTable,
    timers: Timers,
    /// Env files read at most once per turn of the loop.
    env_files: env_files::EnvFiles,
    /// The groups' schedules and their clocks.
    schedules: schedules::Schedules,
    /// Readiness, liveness and startup probes in flight.
    probes: probes::Probes,
    /// Node IPC channels: the cluster protocol, the port broker, messages to workers.
    node: node::NodeChannels,
    /// The workers' bad cluster messages, rate-limited.
    node_errors: node_setup::NodeErrors,
    /// Answers the workers' own binds (groups that share them).
    adopter: Option<adopt::Adopter>,
    /// Reload on change (`--watch`), when a group watches paths.
    watch: Option<watch::Watch>,
    /// Which SIGINTs and SIGTERMs are requests (one process's duplicate is not).
    stop_signals: stop_signals::StopSignals,
    /// The dashboard's runtime side, when it is on or someone may attach.
    dashboard: Option<dashboard::ViewFeed>,
    ui: Option<ui::Dashboard>,
    /// The dashboard failed (a panic, a broken terminal), or SIGQUIT forced the stop:
    /// exit 1 after stopping workers.
    ui_failed: bool,
    /// systemd's notification socket, when corral runs as a `Type=notify` service.
    systemd: systemd::Systemd,
    /// The control socket and its clients (docs/control.md).
    control: Option<control_service::Control>,
    /// `--metrics`: the Prometheus endpoint's runtime side.
    metrics: Option<metrics_glue::Metrics>,
    /// `-v` repeats each event in corral's diagnostics: not when headless output and the
    /// diagnostics go to the same place (one terminal), where every event showed twice.
    echo_events: bool,
}

/// Whether stdout and stderr are one file (the same terminal, or `2>&1`).
fn one_destination() -> bool {
    use std::os::fd::AsFd;
    let out = nix::sys::stat::fstat(std::io::stdout().as_fd());
    let err = nix::sys::stat::fstat(std::io::stderr().as_fd());
    matches!((out, err), (Ok(o), Ok(e)) if (o.st_dev, o.st_ino) == (e.st_dev, e.st_ino))
}

impl Runtime {
    fn new(
        spec: RunSpec,
        listeners: Vec<Vec<BoundListener>>,
        hub: Reports,
        inputs: Rc<Inputs>,
        stdout_closed: Arc<tokio::sync::Notify>,
    ) -> Runtime {
        let instance = spec.instance.clone();
        let log_dir = spec.log_files.as_ref().map(|l| l.dir.clone());
        let inherited: Vec<_> = std::env::vars_os().collect();
        let pid = std::process::id();
        let groups: Vec<GroupIo> = spec
            .groups
            .into_iter()
            .zip(listeners)
            .map(|(spec, listeners)| GroupIo {
                env: EnvTemplate::new(&spec, &inherited, pid),
                adopt: adopt::plan(&spec),
                hinted: false,
                spec,
                listeners,
            })
            .collect();
        let names: Vec<String> = groups.iter().map(|g| g.spec.name.clone()).collect();
        let schedules = schedules::Schedules::new(groups.iter().map(|g| &g.spec));
        let specs: Vec<&GroupSpec> = groups.iter().map(|g| &g.spec).collect();
        let watch = watch::Watch::start(&specs, log_dir.as_deref());
        let broker = node_setup::broker(&groups);
        let adopter = adopt::start_if_wanted(&groups, &broker);
        let node = node_setup::channels(&groups, broker);
        let dashboard_mode = !hub.headless();
        let echo_events = dashboard_mode || !one_destination();
        let configs = groups.iter().map(|g| g.spec.core_config()).collect();
        // Jitter only needs to differ between corrals started together: the wall clock's
        // nanoseconds and the pid do (`Instant::now().elapsed()` was always ~0).
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let seed = u64::from(pid).rotate_left(32) ^ nanos;
        Runtime {
            // Headless corral exits once nothing is left to run; the dashboard stays up so
            // people can read what happened.
            core: Supervisor::new(configs, !dashboard_mode, seed),
            procs: ProcessTable::new(names.clone()),
            names,
            instance,
            groups,
            inputs,
            hub,
            stdout_closed,
            exit: None,
            timers: Timers::default(),
            env_files: env_files::EnvFiles::default(),
            schedules,
            probes: probes::Probes::new(),
            node,
            node_errors: node_setup::NodeErrors::default(),
            adopter,
            watch,
            stop_signals: stop_signals::StopSignals::default(),
            dashboard: None,
            ui: None,
            ui_failed: false,
            systemd: systemd::Systemd::from_env(),
            control: None,
            metrics: None,
            echo_events,
        }
    }

    // WHY one long function: its body is one `select!` over everything the loop waits for,
    // and the timers it polls are set up just above it. Not `biased`: a source that is always
    // ready (SIGCHLD in an exit storm) would starve the ones after it; `between_turns` gives
    // the watchdog, control and the other tasks their turn whatever is ready.
    async fn run(&mut self) -> u8 {
        self.procs.start_keeper();
        let mut signals = match Signals::install() {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("cannot install signal handlers: {e}");
                return 1;
            }
        };
        self.announce_start();
        let (ui_tx, mut ui_rx) = tokio::sync::mpsc::unbounded_channel();
        if !self.hub.headless() {
            self.start_dashboard(ui_tx);
        }
        let wall = std::time::SystemTime::now();
        self.inputs.extend(self.schedules.start(Instant::now(), wall));
        self.inputs.push(Input::Start);
        // `ctl status` shows CPU and memory as the dashboard does.
        let sample = self.dashboard.is_some()
            || self.control.is_some()
            || self.groups.iter().any(|g| g.spec.policy.max_memory.is_some())
            || self.metrics.is_some();
        let mut samples = self.procs.start_sampler(sample);
        let mut group_poll = tokio::time::interval(GROUP_POLL);
        let mut frame = tokio::time::interval(FRAME);
        // Polled only while a frame is owed: the first comes at once, the next FRAME later.
        frame.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let watchdog_every = self.systemd.watchdog();
        let mut watchdog = tokio::time::interval(watchdog_every.unwrap_or(Duration::from_hours(1)));
        let mut held = tokio::time::interval(Duration::from_millis(100));
        held.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let metrics_wanted = self.metrics.as_ref().map(metrics_glue::Metrics::wanted);
        let mut second = tokio::time::interval(Duration::from_secs(1));
        second.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut node_retry = tokio::time::interval(node_setup::RETRY);
        node_retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut turns = turns::Turns::new();
        loop {
            self.drive();
            self.systemd.ready_if_so(&self.core, &self.groups);
            if let Some(code) = self.exit {
                let code = self.finish(code, &mut signals).await;
                if let Some(control) = self.control.as_ref() {
                    control.flush().await;
                }
                return code;
            }
            let next_timer = self.next_deadline();
            let schedule_wake = self.schedules.next_wake();
            let sleep_until =
                next_timer.unwrap_or_else(|| Instant::now() + Duration::from_hours(1));
            tokio::select! {
                arrived = signals.recv() => self.on_signals(arrived),
                Some(request) = ui_rx.recv() => self.on_ui(request),
                Some(incoming) = next_request(self.control.as_mut()) => self.on_control(incoming),
                Some(inbound) = self.node.recv() => self.on_node(inbound),
                reloads = watch::next(self.watch.as_mut()) => self.on_watch(reloads),
                _ = node_retry.tick(), if self.node.any_blocked() => self.node.retry(),
                _ = frame.tick(), if self.frame_owed() => self.publish(),
                // WHY from this loop: a loop that is stuck stops the pings, and systemd's
                // watchdog restarts corral. Only a wake-up: `between_turns` pings when due.
                _ = watchdog.tick(), if watchdog_every.is_some() => {}
                // Often enough for any heartbeat timeout a person would set.
                _ = held.tick(), if self.hub.held() => self.procs.keep_alive_held(&self.inputs),
                _ = second.tick(), if self.dashboard.is_some() || self.systemd.on() => {
                    self.every_second();
                }
                () = metrics_glue::wanted(metrics_wanted.as_deref()) => self.publish_metrics(),
                () = self.inputs.woken() => {}
                () = tokio::time::sleep_until(sleep_until.into()), if next_timer.is_some() => {
                    self.timers_due();
                }
                () = tokio::time::sleep_until(schedule_wake.unwrap_or(sleep_until).into()),
                    if schedule_wake.is_some() =>
                {
                    let fired = self.schedules.poll(Instant::now(), std::time::SystemTime::now());
                    self.inputs.extend(fired);
                }
                _ = group_poll.tick(), if self.procs.draining() => {
                    self.procs.check_groups(&self.probes, &self.inputs);
                }
                Some(round) = samples.recv() => self.on_samples(round),
                Some(report) = self.probes.recv(), if !self.probes.holding() => {
                    self.probes.hold(report, Instant::now());
                }
                () = self.stdout_closed.notified() => {}
                // The next slice of spawns, taking its turn with whatever else is ready.
                () = std::future::ready(()), if self.procs.spawns_waiting() => {}
            }
            self.between_turns(&mut turns).await;
            if self.hub.stdout_closed() {
                self.stdout_gone();
            }
        }
    }

    /// After every turn, whatever the `select!` took: the watchdog's ping, the control
    /// requests already queued, and the thread given back now and then (see `turns`).
    async fn between_turns(&mut self, turns: &mut turns::Turns) {
        self.systemd.watchdog_if_due(Instant::now());
        for _ in 0..turns::Turns::CONTROL_REQUESTS {
            let Some(incoming) = self.control.as_mut().and_then(control_service::Control::try_next)
            else {
                break;
            };
            self.on_control(incoming);
        }
        turns.yield_if_due().await;
    }

    /// The control socket first, so `ctl events` has everything from `supervisor_started`
    /// on; then `supervisor_started` itself.
    fn announce_start(&mut self) {
        let infos: Vec<GroupInfo> = self
            .groups
            .iter()
            .map(|g| GroupInfo {
                name: g.spec.name.clone(),
                workers: g.spec.workers,
                command: g.spec.command.display.clone(),
                listen: g.listeners.iter().map(|l| l.local.clone()).collect(),
            })
            .collect();
        let pid = std::process::id();
        let served =
            self.control.as_mut().is_some_and(|c| c.start(&self.hub, &self.names, &self.instance));
        if served && self.dashboard.is_none() {
            // Someone may attach: keep what a dashboard shows (a local one replaces this).
            let facts =
                self.groups.iter().map(|g| dashboard::GroupFacts::new(&g.spec, &g.listeners));
            self.dashboard = Some(dashboard::ViewFeed::new(None, None, facts.collect()));
        }
        let started = Record::Started { pid, instance: &self.instance, groups: &infos };
        self.hub.report(std::time::SystemTime::now(), &started);
    }

    /// The earliest of the core's timers and the probes' deadlines.
    fn next_deadline(&self) -> Option<Instant> {
        match (self.timers.next_deadline(), self.probes.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Runs every pending input through the core and executes the resulting commands,
    /// then spawns for up to `SPAWN_SLICE`. Each spawn's outcome goes to the core at once,
    /// so its event carries the time it happened and reaches the output with the next
    /// flush, not after the last of a thousand spawns.
    fn drive(&mut self) {
        let slice_end = Instant::now() + SPAWN_SLICE;
        self.env_files.next_turn();
        loop {
            let input = match self.inputs.pop() {
                Some(input) => input,
                None if Instant::now() < slice_end || self.core.shutting_down() => {
                    let Some((key, generation)) = self.procs.next_spawn() else { break };
                    if self.core.shutting_down() {
                        Input::SpawnCancelled { key, generation }
                    } else {
                        self.spawn(key, generation)
                    }
                }
                None => break,
            };
            let commands = self.core.handle(Instant::now(), input);
            for command in commands {
                self.execute(command);
            }
        }
        if let Some(control) = self.control.as_mut() {
            control.answer_finished_reloads(&self.core);
        }
        self.hub.flush();
        self.procs.flush_keeper();
    }

    /// Every worker is gone: stop escaped descendants, report, flush.
    async fn finish(&mut self, code: u8, signals: &mut Signals) -> u8 {
        let grace =
            self.groups.iter().map(|g| g.spec.policy.kill_timeout).max().unwrap_or_default();
        self.probes.kill_all();
        self.procs
            .stop_all(grace, signals, &mut self.stop_signals, &mut self.node, &self.hub)
            .await;
        // The broker is shared with the thread for binds, which outlives this: its sockets
        // (and the unix socket files corral made) go now.
        for group in 0..self.groups.len() {
            self.node.group_stopped(u16::try_from(group).unwrap_or(u16::MAX));
        }
        let code = if self.ui_failed { 1 } else { code };
        finish::write_out(&self.hub, code, self.ui.take(), signals, &mut self.stop_signals).await
    }

    /// Whether the local dashboard is on. (`self.dashboard` is also kept in headless mode
    /// when someone may attach: that corral still reloads on SIGHUP, scales on SIGTTIN.)
    fn dashboard_on(&self) -> bool {
        self.dashboard.as_ref().is_some_and(dashboard::ViewFeed::has_local)
    }
}

/// The next control request, or never without a control socket (for the main loop's
/// select).
async fn next_request(
    control: Option<&mut control_service::Control>,
) -> Option<crate::control::server::Incoming> {
    match control {
        Some(c) => c.next().await,
        None => std::future::pending().await,
    }
}

/// The core coalesces a reload asked for during one into one more after it; say so,
/// or the request looks ignored.
fn note_queued_reload(core: &Supervisor, names: &[String], g: u16) {
    if core.reloading(g) {
        let group = names.get(usize::from(g)).map_or("?", String::as_str);
        tracing::info!("reload requested during a reload of {group}: queued");
    }
}

/// Unblocks every signal corral inherited blocked; call first thing, before any thread.
pub fn unblock_signals() {
    signals::unblock_all();
}
