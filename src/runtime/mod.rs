//! The tokio glue: feeds kernel facts (exits, signals, output) into the pure core and
//! carries out the commands it returns. Runs on one thread — the main thread, which
//! also forks every worker, so their parent-death signal is tied to a thread that lives
//! as long as corral.

mod adopt;
mod control_glue;
mod control_view;
mod dashboard;
mod env;
mod env_files;
mod finish;
mod generations;
mod hub;
mod inputs;
mod instance;
mod keeper;
mod listeners;
pub mod logs;
mod metrics_glue;
mod node;
mod node_glue;
mod notify_glue;
mod ports;
mod probes;
mod procs;
mod sampling;
mod schedules;
#[allow(unsafe_code, reason = "signal handlers and their siginfo")]
mod signals;
mod signals_glue;
mod stop_signals;
#[allow(unsafe_code, reason = "FIONREAD and registering fds with tokio")]
mod streams;
mod summary;
mod terminals;
mod timers;
mod turns;
mod ui_glue;
mod watch;

use std::collections::{HashMap, VecDeque};
use std::os::fd::AsFd;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use self::env::EnvTemplate;
use self::hub::{Hub, Reports};
use self::inputs::Inputs;
use self::signals::Signals;
use self::streams::Reader;
use self::timers::Timers;
use crate::backend::{self, BoundListener};
use crate::config::{GroupSpec, LogFormat, OutputMode, RunSpec};
use crate::core::{Command, Event, EventKind, Input, Scope, Supervisor, WorkerKey};
use crate::headless::Headless;
use crate::report::{GroupInfo, Record};
use crate::sinks::logfiles::LogFiles;
use crate::ui;

pub(crate) use self::keeper::{KEEPER_VAR, start_as_this_program as keeper_is_this_program};

/// Why corral could not start; nothing was spawned. Exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Bind(#[from] backend::BindError),
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot start the output writer: {0}")]
    Output(std::io::Error),
    #[error(transparent)]
    Control(#[from] crate::control::socket::SocketError),
    #[error("{0}")]
    Inherited(#[from] backend::InheritError),
    #[error(
        "listen = fd:{name}: no socket named '{name}' was handed to corral (LISTEN_FDNAMES: {known})"
    )]
    NoSuchInherited { name: String, known: String },
    #[error(transparent)]
    Logs(#[from] crate::sinks::logfiles::StartFailure),
    #[error(transparent)]
    Metrics(#[from] metrics_glue::MetricsError),
    #[error(
        "corral needs about {needed} open files for {workers} workers and may open only {limit} \
         (ulimit -n): raise the limit"
    )]
    FdLimit { needed: u64, workers: u64, limit: u64 },
}

/// The dashboard gets a fresh view at most this often.
const FRAME: Duration = Duration::from_millis(33);

/// The longest the loop spends spawning before it looks at signals, keys, output and
/// clients again: starting thousands of workers takes seconds, and nothing may wait that long.
const SPAWN_SLICE: Duration = Duration::from_millis(10);

/// How often a process group that outlived its leader is checked for emptiness.
const GROUP_POLL: Duration = Duration::from_millis(20);

/// Runs the groups until shutdown; returns corral's exit code.
pub fn run(mut spec: RunSpec) -> Result<u8, StartError> {
    backend::ensure_std_fds();
    backend::raise_fd_limit();
    let workers: u64 = spec.groups.iter().map(|g| u64::from(g.workers)).sum();
    let (needed, limit) = (backend::fds_needed(workers), backend::fd_limit());
    if limit < needed {
        // WHY refuse: below this no worker can even be spawned, and every spawn would fail
        // with an errno that does not name the limit.
        return Err(StartError::FdLimit { needed, workers, limit });
    }
    let listeners = listeners::bind_all(&mut spec)?;
    let control = instance::bind_control(&mut spec)?;
    let metrics = metrics_glue::start(&spec)?;
    if let Err(e) = backend::become_subreaper() {
        tracing::warn!(
            "cannot become a child subreaper ({e}); escaped descendants may outlive corral"
        );
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(StartError::Runtime)?;
    let stdout_closed = Arc::new(tokio::sync::Notify::new());
    let names: Vec<String> = spec.groups.iter().map(|g| g.name.clone()).collect();
    // Shared by both lossless writers, so a reader held back by either hears the resume.
    let resume = Arc::new(tokio::sync::Notify::new());
    let files = match &spec.log_files {
        Some(config) => {
            let show_metrics = spec.verbosity > 0;
            let mut files =
                LogFiles::start(config, names.clone(), show_metrics, Arc::clone(&resume))?;
            files.strip_ansi(spec.strip_ansi);
            Some(files)
        }
        None => None,
    };
    let headless = match spec.output {
        OutputMode::Headless(format) => {
            let mut h =
                headless(format, &names, &stdout_closed, &resume).map_err(StartError::Output)?;
            h.show_metrics(spec.verbosity > 0);
            h.strip_ansi(spec.strip_ansi);
            Some(h)
        }
        OutputMode::Dashboard => None,
    };
    let log_dir = spec.log_files.as_ref().map(|l| l.dir.clone());
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let inputs = Rc::new(Inputs::default());
        let hub = Reports::new(Hub::new(headless, files, resume, Rc::clone(&inputs)));
        let mut runtime = Runtime::new(spec, listeners, hub, inputs, stdout_closed);
        runtime.control = control.map(control_glue::Control::new);
        if runtime.control.is_some() {
            // `ctl logs` and `status` read what the dashboard would show.
            runtime.hub.keep_logs();
        }
        runtime.attach_metrics(metrics);
        let code = runtime.run().await;
        runtime.print_summary(code, log_dir.as_deref());
        Ok(code)
    })
}

struct GroupIo {
    spec: GroupSpec,
    env: EnvTemplate,
    listeners: Vec<BoundListener>,
    /// How its workers' own binds are adopted, when they are (docs/sharing-a-port.md).
    adopt: Option<backend::AdoptBinds>,
    /// A worker died saying an address was in use, and the hint was given.
    hinted: bool,
}

/// One generation's open pipes and channel.
struct GenerationIo {
    pid: u32,
    readers: Vec<(Rc<Reader>, JoinHandle<()>)>,
    channel: Rc<Reader>,
    /// Its stdout reader reads a pty's master.
    pty: bool,
}

struct Runtime {
    core: Supervisor,
    groups: Vec<GroupIo>,
    /// Live leaders: pid → slot and generation.
    leaders: HashMap<u32, (WorkerKey, u32)>,
    generations: HashMap<(WorkerKey, u32), GenerationIo>,
    /// Generations whose leader exited while their group or escapees lived on.
    draining: Vec<procs::Draining>,
    /// Leaders kept as zombies until their group is empty (see `procs`).
    held: std::collections::HashSet<u32>,
    keeper: Option<keeper::Keeper>,
    timers: Timers,
    /// Env files read at most once per turn of the loop.
    env_files: env_files::EnvFiles,
    /// The groups' schedules and their clocks.
    schedules: schedules::Schedules,
    /// The one queue of inputs for the core, the stream readers' included.
    inputs: Rc<Inputs>,
    /// Spawns the core asked for and the loop has not done yet (the core counts them as
    /// in flight, as it would a spawn that is under way).
    spawns: VecDeque<(WorkerKey, u32)>,
    hub: Reports,
    stdout_closed: Arc<tokio::sync::Notify>,
    exit: Option<u8>,
    /// Leaders the sampler measures (only when something needs the numbers).
    sample_targets: Option<backend::Targets>,
    /// Latest CPU and memory per slot, for the dashboard.
    usage: HashMap<WorkerKey, backend::Usage>,
    names: Vec<String>,
    /// The dashboard's runtime side and its thread, when it is on.
    dashboard: Option<dashboard::ViewFeed>,
    ui: Option<ui::Dashboard>,
    /// The dashboard failed (a panic, a broken terminal), or SIGQUIT forced the stop:
    /// exit 1 after stopping workers.
    ui_failed: bool,
    /// systemd's notification socket, when corral runs as a `Type=notify` service.
    notifier: Option<crate::fleet::Notifier>,
    /// The control socket and its clients (docs/control.md).
    control: Option<control_glue::Control>,
    instance: String,
    /// `--metrics`: the Prometheus endpoint's runtime side.
    metrics: Option<metrics_glue::Metrics>,
    /// Node IPC channels: the cluster protocol, the port broker, messages to workers.
    node: node::NodeChannels,
    /// When a bad cluster message was last reported.
    node_reported: Option<Instant>,
    /// Answers the workers' own binds (groups that share them).
    adopter: Option<adopt::Adopter>,
    /// Which SIGINTs and SIGTERMs are requests (one process's duplicate is not).
    stop_signals: stop_signals::StopSignals,
    /// The size of the workers' pseudo-terminals (`--pty`).
    terminals: terminals::Terminals,
    /// Reload on change (`--watch`), when a group watches paths.
    watch: Option<watch::Watch>,
    /// Readiness, liveness and startup probes in flight.
    probes: probes::Probes,
}

fn headless(
    format: LogFormat,
    names: &[String],
    closed: &Arc<tokio::sync::Notify>,
    resume: &Arc<tokio::sync::Notify>,
) -> std::io::Result<Headless> {
    let notify = Arc::clone(closed);
    let on_close = Box::new(move || notify.notify_one());
    // WHY a file on a copy of fd 1 and not `io::stdout()`: the lossless writer must know
    // exactly how much each write took (std's line buffering hides that on an error), and
    // the copy is close-on-exec, so no worker inherits it.
    let out = std::io::stdout().as_fd().try_clone_to_owned()?;
    let out = Box::new(std::fs::File::from(out));
    Headless::new(format, names.to_vec(), out, on_close, Arc::clone(resume))
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
        let broker = node_glue::broker(&groups);
        let adopter = adopt::start_if_wanted(&groups, &broker);
        let node = node_glue::channels(&groups, broker);
        let dashboard_mode = !hub.headless();
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
            names,
            dashboard: None,
            ui: None,
            ui_failed: false,
            groups,
            leaders: HashMap::new(),
            generations: HashMap::new(),
            draining: Vec::new(),
            held: std::collections::HashSet::new(),
            keeper: None,
            timers: Timers::default(),
            env_files: env_files::EnvFiles::default(),
            schedules,
            inputs,
            spawns: VecDeque::new(),
            hub,
            stdout_closed,
            exit: None,
            sample_targets: None,
            usage: HashMap::new(),
            notifier: crate::fleet::Notifier::from_env(),
            control: None,
            instance,
            metrics: None,
            node,
            node_reported: None,
            adopter,
            stop_signals: stop_signals::StopSignals::default(),
            terminals: terminals::Terminals::new(),
            watch,
            probes: probes::Probes::new(),
        }
    }

    // WHY one long function: its body is one `select!` over everything the loop waits for,
    // and the timers it polls are set up just above it. Not `biased`: a source that is always
    // ready (SIGCHLD in an exit storm) would starve the ones after it; `between_turns` gives
    // the watchdog, control and the other tasks their turn whatever is ready.
    async fn run(&mut self) -> u8 {
        self.keeper = keeper::Keeper::start();
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
        let mut samples = self.start_sampler();
        let mut group_poll = tokio::time::interval(GROUP_POLL);
        let mut frame = tokio::time::interval(FRAME);
        // Polled only while a frame is owed: the first comes at once, the next FRAME later.
        frame.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let watchdog_every = self.notifier.as_ref().and_then(crate::fleet::Notifier::watchdog);
        let mut watchdog = tokio::time::interval(watchdog_every.unwrap_or(Duration::from_hours(1)));
        let mut held = tokio::time::interval(Duration::from_millis(100));
        held.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let metrics_wanted = self.metrics_wanted();
        let mut second = tokio::time::interval(Duration::from_secs(1));
        second.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut node_retry = tokio::time::interval(node_glue::RETRY);
        node_retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut turns = turns::Turns::new();
        loop {
            self.drive();
            self.notify_ready();
            if let Some(code) = self.exit {
                let code = self.finish(code, &mut signals).await;
                self.flush_control().await;
                return code;
            }
            let next_timer = self.next_deadline();
            let schedule_wake = self.schedules.next_wake();
            let sleep_until =
                next_timer.unwrap_or_else(|| Instant::now() + Duration::from_hours(1));
            tokio::select! {
                arrived = signals.recv() => self.on_signals(arrived),
                Some(request) = ui_rx.recv() => self.on_ui(request),
                Some(incoming) = control_glue::next(self.control.as_mut()) => self.on_control(incoming),
                Some(inbound) = self.node.recv() => self.on_node(inbound),
                reloads = watch::next(self.watch.as_mut()) => self.on_watch(reloads),
                _ = node_retry.tick(), if self.node.any_blocked() => self.node.retry(),
                _ = frame.tick(), if self.frame_owed() => self.publish(),
                // WHY from this loop: a loop that is stuck stops the pings, and systemd's
                // watchdog restarts corral. Only a wake-up: `between_turns` pings when due.
                _ = watchdog.tick(), if watchdog_every.is_some() => {}
                // Often enough for any heartbeat timeout a person would set.
                _ = held.tick(), if self.hub.held() => self.keep_alive_held(),
                _ = second.tick(), if self.dashboard.is_some() || self.notifier.is_some() => {
                    self.every_second();
                }
                () = metrics_glue::wanted(metrics_wanted.as_deref()) => self.publish_metrics(),
                () = self.inputs.woken() => {}
                () = tokio::time::sleep_until(sleep_until.into()), if next_timer.is_some() => {
                    let now = Instant::now();
                    while let Some(token) = self.timers.pop_due(now) {
                        self.inputs.push(Input::Timer(token));
                    }
                    self.probes.due(now, &mut &*self.inputs);
                }
                () = tokio::time::sleep_until(schedule_wake.unwrap_or(sleep_until).into()),
                    if schedule_wake.is_some() =>
                {
                    let fired = self.schedules.poll(Instant::now(), std::time::SystemTime::now());
                    self.inputs.extend(fired);
                }
                _ = group_poll.tick(), if !self.draining.is_empty() => self.check_groups(),
                Some(round) = samples.recv() => self.on_samples(round),
                Some(report) = self.probes.recv(), if !self.probes.holding() => {
                    self.probes.hold(report, Instant::now());
                }
                () = self.stdout_closed.notified() => {}
                // The next slice of spawns, taking its turn with whatever else is ready.
                () = std::future::ready(()), if !self.spawns.is_empty() => {}
            }
            self.between_turns(&mut turns).await;
            if self.hub.stdout_closed() {
                self.stdout_gone();
            }
        }
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
        self.start_control();
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

    /// Files changed under a group's watched paths, and the quiet period passed: a rolling
    /// reload of the group, and a start now of its workers that wait to restart after a
    /// crash (the change may be the fix; a reload only replaces running workers).
    fn on_watch(&mut self, reloads: Vec<(u16, String)>) {
        let snapshot = self.core.snapshot(Instant::now());
        for (group, path) in reloads {
            for w in snapshot.workers.iter().filter(|w| w.key.group == group) {
                if matches!(
                    w.state,
                    crate::core::WorkerState::Backoff { .. }
                        | crate::core::WorkerState::Failed { .. }
                        | crate::core::WorkerState::GaveUp
                ) {
                    self.inputs.push(Input::User(crate::core::UserAction::Start(w.key)));
                }
            }
            self.note_queued_reload(group);
            let cause = crate::core::ReloadCause::Watch { path };
            self.inputs.push(Input::Reload { group, cause });
        }
    }

    /// A worker's id as people read it (`web.2`), for diagnostics.
    fn id(&self, key: WorkerKey) -> String {
        key.id(&self.names).to_string()
    }

    fn every_second(&mut self) {
        if let Some(d) = self.dashboard.as_mut() {
            let keys = self.core.worker_keys().into_iter();
            self.hub.with_logs(|logs| d.tick_rates(logs, keys));
        }
        if let Some(n) = self.notifier.as_mut() {
            let now = Instant::now();
            n.retry();
            n.status(now, &crate::fleet::notify::summary(&self.core.snapshot(now)));
        }
    }

    /// While output is held back corral is not reading the event channels, so it cannot
    /// hear heartbeats: a worker that sends them is not judged until reading resumes.
    fn keep_alive_held(&mut self) {
        for (&(key, generation), io) in &self.generations {
            if self.leaders.contains_key(&io.pid) && io.channel.heartbeats() {
                self.inputs.push(Input::Heartbeat { key, generation });
            }
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
                    let Some((key, generation)) = self.spawns.pop_front() else { break };
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
        self.answer_finished_reloads();
        self.hub.flush();
        if let Some(k) = self.keeper.as_mut() {
            k.flush();
        }
    }

    fn execute(&mut self, command: Command) {
        match command {
            Command::Spawn { key, generation } => self.spawns.push_back((key, generation)),
            Command::Signal { key, pid, signal } => {
                tracing::debug!(worker = %self.id(key), pgid = pid, "sending {signal} to the group");
                self.signal(key, pid, signal);
            }
            Command::NotifyShutdown { key, pid } => self.notify_shutdown(key, pid),
            Command::Timer { at, token } => {
                tracing::debug!(worker = %self.id(token.key), kind = ?token.kind, "timer set");
                if matches!(token.kind, crate::core::TimerKind::Probe { .. }) {
                    self.timers.insert_coarse(at, token);
                } else {
                    self.timers.insert(at, token);
                }
            }
            Command::Release { key, generation } => self.release(key, generation),
            Command::Emit(event) => self.emit(&event),
            Command::Probe { key, generation, pid, probe } => {
                let asked = probes::Asked { key, generation, pid, probe };
                self.start_probe(asked);
            }
            Command::Exit(code) => self.exit = Some(code),
        }
    }

    fn emit(&mut self, event: &Event) {
        // `-v`: corral's decisions, in the words of the headless text, with the worker's id.
        if let (EventKind::ScheduleSkipped { running }, Scope::Group(g)) =
            (&event.kind, event.scope)
        {
            let group = self.names.get(usize::from(g)).map_or("?", String::as_str);
            tracing::warn!(
                "{group}: scheduled run skipped: {running} worker(s) of the last run still going"
            );
        } else if tracing::enabled!(tracing::Level::INFO) {
            let who = match event.scope {
                Scope::Worker(key) => self.id(key),
                Scope::Group(g) => self.names.get(usize::from(g)).cloned().unwrap_or_default(),
                Scope::Supervisor => "corral".to_string(),
            };
            tracing::info!(worker = %who, "{}", crate::report::event_text(&event.kind, event.pid));
        }
        if let (Scope::Group(g), EventKind::Waiting { unmet, blocked: Some(why) }) =
            (event.scope, &event.kind)
        {
            let name = self.names.get(usize::from(g)).map_or("?", String::as_str);
            tracing::warn!("{name} waits for {}, which cannot happen now: {why}", unmet.join(", "));
        }
        // `exited` also says how many messages the slot sent so far: scripts (and the
        // ingest benchmark) can check that nothing was lost.
        let messages = match (event.scope, &event.kind) {
            (Scope::Worker(key), EventKind::Exited { .. }) => Some(self.hub.messages(key)),
            _ => None,
        };
        self.hub.report(std::time::SystemTime::now(), &Record::Event(event, messages));
        if let Some(d) = self.dashboard.as_mut() {
            d.on_event(event);
        }
        self.notify_event(&event.kind);
        self.close_stopped_group(event);
        self.control_event(event.scope, &event.kind);
        self.count_exit(event);
    }
}

impl Runtime {
    fn start_probe(&mut self, asked: probes::Asked) {
        let Some(group) = self.groups.get(usize::from(asked.key.group)) else { return };
        let Some(spec) = group.spec.probes.get(asked.probe) else { return };
        // An exec probe runs with the worker's environment, its env files as read now (a
        // file gone since is the probe's failure, said as the spawn's would be).
        let env = match spec.target {
            crate::probe_spec::ProbeTarget::Exec(_) => {
                let (g, slot, generation) = (asked.key.group, asked.key.slot, asked.generation);
                self.env_files.for_worker(g, &group.env, slot, generation)
            }
            crate::probe_spec::ProbeTarget::Http(_) | crate::probe_spec::ProbeTarget::Tcp(_) => {
                Ok(Vec::new())
            }
        };
        let env = match env {
            Ok(env) => env,
            Err(error) => {
                let probe = asked.probe;
                let (key, generation) = (asked.key, asked.generation);
                self.inputs.push(Input::ProbeResult { key, generation, probe, error: Some(error) });
                return;
            }
        };
        let cx = probes::Context {
            target: &spec.target,
            timeout: spec.timing.timeout,
            env,
            cwd: group.spec.cwd.as_deref(),
        };
        if let Some(input) = self.probes.start(asked, cx, Instant::now()) {
            self.inputs.push(input);
        }
    }
}

/// Unblocks every signal corral inherited blocked; call first thing, before any thread.
pub fn unblock_signals() {
    signals::unblock_all();
}
