//! `Supervisor`: the state machine over all slots of all groups.

use std::time::{Duration, Instant};

use super::command::{Command, TimerKind, TimerToken};
use super::event::{Event, EventKind, ExitReason, ExitStatus, Scope, ShutdownTrigger};
use super::input::{Input, UserAction};
use super::policy::with_jitter;
use super::policy::{
    ABANDON_AFTER_KILL, CRASH_LOOP_RUNS, MEMORY_SAMPLES, MIN_SPAWN_RETRY, Policy, RestartPolicy,
};
use super::snapshot::{GroupView, LastExit, Snapshot, WorkerState, WorkerView};
use super::worker::{After, Phase, Run, Slot, StopRequest, WorkerKey};
use crate::signal::Signal;

mod reload;

/// The most workers one group may have (SPEC §2).
pub const MAX_WORKERS: u32 = 4096;

/// A group as the supervisor needs it: no command line, no sockets.
#[derive(Clone, Debug)]
pub struct GroupConfig {
    pub name: String,
    pub workers: u32,
    pub policy: Policy,
    pub wait_ready: bool,
}

struct Group {
    config: GroupConfig,
    /// Sorted by slot number.
    slots: Vec<Slot>,
    reload: Option<reload::ReloadRun>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shutdown {
    Running,
    Graceful,
    Forced,
}

/// How a stop is delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum How {
    /// The group's stop signal, then SIGKILL after the kill timeout.
    Graceful,
    /// SIGABRT (a hung worker may dump its state), then SIGKILL after the kill timeout.
    Abort,
    /// SIGKILL at once.
    Kill,
}

/// What every slot-level step needs besides the slot itself.
struct Cx<'a> {
    now: Instant,
    policy: Policy,
    wait_ready: bool,
    shutting_down: bool,
    out: &'a mut Vec<Command>,
    rng: &'a mut fastrand::Rng,
}

impl<'a> Cx<'a> {
    fn new(
        now: Instant,
        config: &GroupConfig,
        shutting_down: bool,
        out: &'a mut Vec<Command>,
        rng: &'a mut fastrand::Rng,
    ) -> Cx<'a> {
        Cx { now, policy: config.policy, wait_ready: config.wait_ready, shutting_down, out, rng }
    }

    fn emit(&mut self, slot: &Slot, pid: Option<u32>, kind: EventKind) {
        self.out.push(Command::Emit(Event { scope: Scope::Worker(slot.key), pid, kind }));
    }

    fn signal(&mut self, key: WorkerKey, pid: u32, signal: Signal) {
        self.out.push(Command::Signal { key, pid, signal });
    }

    fn arm(&mut self, slot: &mut Slot, kind: TimerKind, at: Instant) {
        slot.epoch += 1;
        slot.timers.retain(|&(_, k)| k != kind);
        slot.timers.push((slot.epoch, kind));
        let token = TimerToken { key: slot.key, epoch: slot.epoch, kind };
        self.out.push(Command::Timer { at, token });
    }
}

pub struct Supervisor {
    groups: Vec<Group>,
    shutdown: Shutdown,
    exit_when_idle: bool,
    started: bool,
    exit_sent: bool,
    rng: fastrand::Rng,
    out: Vec<Command>,
}

impl Supervisor {
    /// `exit_when_idle`: exit by itself once no worker runs or will be restarted
    /// (headless mode). `seed` feeds the backoff jitter.
    pub fn new(groups: Vec<GroupConfig>, exit_when_idle: bool, seed: u64) -> Supervisor {
        let groups = groups
            .into_iter()
            .enumerate()
            .map(|(g, config)| {
                let slots = (1..=config.workers)
                    .map(|slot| Slot::new(WorkerKey { group: g as u16, slot }))
                    .collect();
                Group { config, slots, reload: None }
            })
            .collect();
        Supervisor {
            groups,
            shutdown: Shutdown::Running,
            exit_when_idle,
            started: false,
            exit_sent: false,
            rng: fastrand::Rng::with_seed(seed),
            out: Vec::new(),
        }
    }

    /// Headless mode exits once nothing is left to run; the dashboard stays up.
    pub fn set_exit_when_idle(&mut self, on: bool) {
        self.exit_when_idle = on;
    }

    /// Whether a shutdown has begun (cheaper than a snapshot).
    pub fn shutting_down(&self) -> bool {
        self.shutdown != Shutdown::Running
    }

    /// Every slot, in display order (cheaper than a snapshot).
    pub fn worker_keys(&self) -> Vec<WorkerKey> {
        self.groups.iter().flat_map(|g| g.slots.iter().map(|s| s.key)).collect()
    }

    /// Whether a rolling reload of group `g` is under way: a reload asked for now is
    /// queued to run after it.
    pub fn reloading(&self, g: u16) -> bool {
        self.groups.get(usize::from(g)).is_some_and(|group| group.reload.is_some())
    }

    /// Feed one fact in, get the commands it calls for.
    pub fn handle(&mut self, now: Instant, input: Input) -> Vec<Command> {
        match input {
            Input::Start => self.start(now),
            Input::Spawned { key, generation, pid } => self.on_spawned(now, key, generation, pid),
            Input::SpawnFailed { key, generation, error } => {
                self.on_spawn_failed(now, key, generation, error);
            }
            Input::Exited { key, generation, status, group_alive } => {
                self.on_exited(now, key, generation, status, group_alive);
            }
            Input::GroupGone { key, generation } => self.on_group_gone(now, key, generation),
            Input::Ready { key, generation } => self.on_ready(now, key, generation),
            Input::Heartbeat { key, generation } => self.on_heartbeat(now, key, generation),
            Input::Sample { key, generation, rss } => self.on_sample(now, key, generation, rss),
            Input::Timer(token) => self.on_timer(now, token),
            Input::User(action) => self.on_user(now, &action),
            Input::Shutdown(trigger) => self.on_shutdown(now, trigger),
        }
        self.step_reloads(now);
        if self.shutdown == Shutdown::Graceful {
            self.stop_next_group(now);
        }
        self.sweep_retired();
        self.check_done();
        std::mem::take(&mut self.out)
    }

    fn with_slot(&mut self, now: Instant, key: WorkerKey, f: impl FnOnce(&mut Slot, &mut Cx<'_>)) {
        let shutting_down = self.shutdown != Shutdown::Running;
        let Some(group) = self.groups.get_mut(usize::from(key.group)) else {
            return;
        };
        let Some(slot) = group.slots.iter_mut().find(|s| s.key == key) else {
            return;
        };
        let mut cx = Cx::new(now, &group.config, shutting_down, &mut self.out, &mut self.rng);
        f(slot, &mut cx);
    }

    fn for_each_slot(&mut self, now: Instant, mut f: impl FnMut(&mut Slot, &mut Cx<'_>)) {
        let shutting_down = self.shutdown != Shutdown::Running;
        for group in &mut self.groups {
            for slot in &mut group.slots {
                let mut cx =
                    Cx::new(now, &group.config, shutting_down, &mut self.out, &mut self.rng);
                f(slot, &mut cx);
            }
        }
    }

    fn start(&mut self, now: Instant) {
        if self.started {
            return;
        }
        self.started = true;
        self.for_each_slot(now, |slot, cx| {
            if matches!(slot.phase, Phase::Stopped) {
                spawn(slot, cx);
            }
        });
    }

    fn on_spawned(&mut self, now: Instant, key: WorkerKey, generation: u32, pid: u32) {
        self.with_slot(now, key, |slot, cx| {
            if reload::is_successor(slot, generation) {
                return reload::on_spawned(slot, cx, pid);
            }
            let Phase::Live(run) = &mut slot.phase else {
                return;
            };
            if run.generation != generation || run.pid.is_some() {
                return;
            }
            run.pid = Some(pid);
            run.started = cx.now;
            slot.last_pid = Some(pid);
            slot.start_failed = false;
            let pending = run.stop;
            cx.emit(slot, Some(pid), EventKind::Spawned { generation });
            if cx.wait_ready && pending.is_none() {
                let at = cx.now + cx.policy.ready_timeout;
                cx.arm(slot, TimerKind::Ready, at);
            }
            // A stop asked for while the spawn was in flight is delivered now.
            if let Some(stop) = pending {
                let how =
                    if stop.reason == ExitReason::KilledByUser { How::Kill } else { How::Graceful };
                request_stop(slot, cx, stop.reason, how, stop.then);
            }
        });
    }

    fn on_spawn_failed(&mut self, now: Instant, key: WorkerKey, generation: u32, error: String) {
        self.with_slot(now, key, |slot, cx| {
            if reload::is_successor(slot, generation) {
                return reload::on_spawn_failed(slot, cx, error);
            }
            let Phase::Live(run) = &slot.phase else {
                return;
            };
            if run.generation != generation || run.pid.is_some() {
                return;
            }
            let then = run.stop.map_or(After::Policy, |s| s.then);
            cx.emit(slot, None, EventKind::SpawnFailed { error: error.clone() });
            slot.phase = Phase::Stopped;
            slot.start_failed = true;
            cx.out.push(Command::Release { key: slot.key, generation });
            match then {
                _ if cx.shutting_down => {}
                After::Policy | After::RestartNow | After::Handover => {
                    let (status, reason) = (ExitStatus::Code(127), ExitReason::Crashed);
                    decide_restart(slot, cx, status, reason, Duration::ZERO, Some(error));
                }
                After::Stay | After::Remove => {}
            }
        });
    }

    fn on_exited(
        &mut self,
        now: Instant,
        key: WorkerKey,
        generation: u32,
        status: ExitStatus,
        group_alive: bool,
    ) {
        self.with_slot(now, key, |slot, cx| {
            if reload::is_successor(slot, generation) {
                return reload::on_exited(slot, cx, status, group_alive);
            }
            let Phase::Live(run) = &mut slot.phase else {
                return;
            };
            if run.generation != generation || run.exit.is_some() || run.pid.is_none() {
                return;
            }
            let reason = match run.stop {
                Some(stop) => stop.reason,
                None if status.success() => ExitReason::Exited,
                None => ExitReason::Crashed,
            };
            run.exit = Some((status, cx.now, reason));
            let uptime = cx.now.saturating_duration_since(run.started);
            let pid = run.pid;
            let restarts = slot.restarts;
            cx.emit(slot, pid, EventKind::Exited { status, uptime, reason, restarts });
            if group_alive {
                // The leader is gone but members of its group live on (a crash that left
                // children behind, or a child that ignores the stop signal): they are
                // stopped before the slot moves on, so no stale server keeps the port.
                start_group_cleanup(slot, cx);
            } else {
                finish(slot, cx);
            }
        });
    }

    fn on_group_gone(&mut self, now: Instant, key: WorkerKey, generation: u32) {
        self.with_slot(now, key, |slot, cx| {
            let Phase::Live(run) = &slot.phase else {
                return;
            };
            if run.generation == generation && run.exit.is_some() {
                finish(slot, cx);
            }
        });
    }

    fn on_ready(&mut self, now: Instant, key: WorkerKey, generation: u32) {
        self.with_slot(now, key, |slot, cx| {
            if reload::is_successor(slot, generation) {
                return reload::on_ready(slot, cx);
            }
            let Phase::Live(run) = &mut slot.phase else {
                return;
            };
            if run.generation != generation || run.ready || run.exit.is_some() {
                return;
            }
            run.ready = true;
            let pid = run.pid;
            slot.timers.retain(|&(_, k)| k != TimerKind::Ready);
            cx.emit(slot, pid, EventKind::Ready);
        });
    }

    fn on_heartbeat(&mut self, now: Instant, key: WorkerKey, generation: u32) {
        self.with_slot(now, key, |slot, cx| {
            let Some(timeout) = cx.policy.heartbeat_timeout else {
                return;
            };
            let Phase::Live(run) = &mut slot.phase else {
                return;
            };
            if run.generation != generation || run.stop.is_some() || run.exit.is_some() {
                return;
            }
            run.last_heartbeat = Some(cx.now);
            // One timer per slot, re-armed when it fires: a flood of heartbeats costs no
            // timers.
            if !slot.has_timer(TimerKind::Heartbeat) {
                cx.arm(slot, TimerKind::Heartbeat, cx.now + timeout);
            }
        });
    }

    fn on_sample(&mut self, now: Instant, key: WorkerKey, generation: u32, rss: u64) {
        self.with_slot(now, key, |slot, cx| {
            let Some(limit) = cx.policy.max_memory else {
                return;
            };
            let Phase::Live(run) = &mut slot.phase else {
                return;
            };
            if run.generation != generation || run.stop.is_some() || run.exit.is_some() {
                return;
            }
            run.over_memory = if rss > limit { run.over_memory + 1 } else { 0 };
            if run.over_memory >= MEMORY_SAMPLES {
                request_stop(slot, cx, ExitReason::MemoryLimit, How::Graceful, After::Policy);
            }
        });
    }

    fn on_timer(&mut self, now: Instant, token: TimerToken) {
        self.with_slot(now, token.key, |slot, cx| {
            if !slot.take_timer(token.epoch, token.kind) {
                return; // stale: the slot moved on since this timer was armed
            }
            match token.kind {
                TimerKind::Restart => {
                    if matches!(slot.phase, Phase::Waiting { .. }) {
                        if cx.shutting_down {
                            slot.phase = Phase::Stopped;
                        } else {
                            spawn(slot, cx);
                        }
                    }
                }
                TimerKind::Kill => {
                    let Phase::Live(run) = &mut slot.phase else {
                        return;
                    };
                    if let (Some(pid), false) = (run.pid, run.kill_sent) {
                        run.kill_sent = true;
                        cx.signal(slot.key, pid, Signal::KILL);
                        cx.arm(slot, TimerKind::Abandon, cx.now + ABANDON_AFTER_KILL);
                    }
                }
                TimerKind::Abandon => abandon(slot, cx),
                TimerKind::Ready => {
                    let Phase::Live(run) = &slot.phase else {
                        return;
                    };
                    if !run.ready && run.stop.is_none() && run.exit.is_none() {
                        request_stop(slot, cx, ExitReason::ReadyTimeout, How::Kill, After::Policy);
                    }
                }
                TimerKind::Heartbeat => check_heartbeat(slot, cx),
                TimerKind::SuccessorReady => reload::on_ready_timeout(slot, cx),
                TimerKind::SuccessorSettled => reload::on_settled(slot, cx),
            }
        });
    }

    fn on_user(&mut self, now: Instant, action: &UserAction) {
        match *action {
            UserAction::Kill(key) => self.with_slot(now, key, |slot, cx| {
                if slot.is_live() {
                    request_stop(slot, cx, ExitReason::KilledByUser, How::Kill, After::Policy);
                }
            }),
            UserAction::Restart(key) => self.with_slot(now, key, |slot, cx| {
                if slot.is_live() {
                    request_stop(
                        slot,
                        cx,
                        ExitReason::RestartedByUser,
                        How::Graceful,
                        After::RestartNow,
                    );
                } else if !cx.shutting_down && !slot.retiring {
                    start_fresh(slot, cx);
                }
            }),
            UserAction::Stop(key) => self.with_slot(now, key, stop_slot),
            UserAction::Start(key) => self.with_slot(now, key, |slot, cx| {
                if !slot.is_live() && !cx.shutting_down && !slot.retiring {
                    start_fresh(slot, cx);
                }
            }),
            UserAction::ToggleStop(key) => self.with_slot(now, key, |slot, cx| {
                let stopping_for_good = match &mut slot.phase {
                    Phase::Live(run) => run.stop.is_some_and(|s| s.then == After::Stay),
                    Phase::Waiting { .. } => false,
                    Phase::Stopped | Phase::GaveUp => true,
                };
                if !stopping_for_good {
                    stop_slot(slot, cx);
                } else if let Phase::Live(run) = &mut slot.phase {
                    // `s` again while it stops: start it once it is down.
                    if let (Some(stop), false) = (run.stop.as_mut(), cx.shutting_down) {
                        stop.then = After::RestartNow;
                    }
                } else if !cx.shutting_down && !slot.retiring {
                    start_fresh(slot, cx);
                }
            }),
            UserAction::Reload(group) => self.start_reload(now, group),
            UserAction::ScaleUp(group) => self.scale_up(now, group),
            UserAction::ScaleDown(group) => self.scale_down(now, group),
        }
    }

    fn scale_up(&mut self, now: Instant, g: u16) {
        if self.shutdown != Shutdown::Running {
            return;
        }
        let Some(group) = self.groups.get_mut(usize::from(g)) else {
            return;
        };
        let active = group.slots.iter().filter(|s| !s.retiring).count() as u32;
        if active >= MAX_WORKERS {
            return;
        }
        let mut cx = Cx::new(now, &group.config, false, &mut self.out, &mut self.rng);
        // Taking back a slot that is still being scaled down beats starting a new number.
        if let Some(slot) = group.slots.iter_mut().find(|s| s.retiring) {
            slot.retiring = false;
            match &mut slot.phase {
                Phase::Live(run) => {
                    if let Some(stop) = run.stop.as_mut() {
                        stop.then = After::RestartNow;
                    }
                }
                Phase::Waiting { .. } | Phase::Stopped | Phase::GaveUp => {
                    start_fresh(slot, &mut cx);
                }
            }
        } else {
            let number = group.slots.last().map_or(1, |s| s.key.slot + 1);
            let mut slot = Slot::new(WorkerKey { group: g, slot: number });
            spawn(&mut slot, &mut cx);
            group.slots.push(slot);
        }
        group.config.workers = active + 1;
        let workers = group.config.workers;
        self.out.push(Command::Emit(Event {
            scope: Scope::Group(g),
            pid: None,
            kind: EventKind::Scaled { workers },
        }));
    }

    fn scale_down(&mut self, now: Instant, g: u16) {
        if self.shutdown != Shutdown::Running {
            return;
        }
        let Some(group) = self.groups.get_mut(usize::from(g)) else {
            return;
        };
        let active = group.slots.iter().filter(|s| !s.retiring).count() as u32;
        if active <= 1 {
            return;
        }
        let mut cx = Cx::new(now, &group.config, false, &mut self.out, &mut self.rng);
        if let Some(slot) = group.slots.iter_mut().rev().find(|s| !s.retiring) {
            slot.retiring = true;
            if slot.is_live() {
                request_stop(slot, &mut cx, ExitReason::ScaledDown, How::Graceful, After::Remove);
            } else {
                slot.timers.clear();
                slot.phase = Phase::Stopped;
            }
        }
        group.config.workers = active - 1;
        let workers = group.config.workers;
        self.out.push(Command::Emit(Event {
            scope: Scope::Group(g),
            pid: None,
            kind: EventKind::Scaled { workers },
        }));
    }

    fn on_shutdown(&mut self, now: Instant, trigger: ShutdownTrigger) {
        let forces = trigger.forces();
        match self.shutdown {
            Shutdown::Running => {
                self.shutdown = Shutdown::Graceful;
                for group in &mut self.groups {
                    if let Some(g) = group.reload.as_mut() {
                        g.cancel();
                    }
                }
                self.out.push(Command::Emit(Event {
                    scope: Scope::Supervisor,
                    pid: None,
                    kind: EventKind::ShutdownStarted { trigger },
                }));
                self.for_each_slot(now, |slot, cx| match slot.phase {
                    Phase::Live(_) => {
                        // A half-started replacement serves nobody yet: no grace for it.
                        reload::kill(slot, cx, ExitReason::Shutdown);
                        if forces {
                            request_stop(slot, cx, ExitReason::Shutdown, How::Kill, After::Stay);
                        }
                    }
                    Phase::Waiting { .. } => {
                        slot.timers.clear();
                        slot.phase = Phase::Stopped;
                    }
                    Phase::Stopped | Phase::GaveUp => {}
                });
                if forces {
                    self.shutdown = Shutdown::Forced;
                } else {
                    self.stop_next_group(now);
                }
            }
            Shutdown::Graceful if trigger.escalates() || forces => {
                self.shutdown = Shutdown::Forced;
                self.for_each_slot(now, |slot, cx| {
                    if slot.is_live() {
                        request_stop(slot, cx, ExitReason::Shutdown, How::Kill, After::Stay);
                    }
                });
            }
            Shutdown::Graceful | Shutdown::Forced => {}
        }
    }

    /// A graceful shutdown stops the groups in reverse order, one group at a time: groups
    /// start in the order given, so a later one may depend on an earlier one (a web server
    /// on its queue) and must not outlive it.
    fn stop_next_group(&mut self, now: Instant) {
        let Some(g) = self.groups.iter().rposition(|g| g.slots.iter().any(Slot::has_process))
        else {
            return;
        };
        let group = &mut self.groups[g];
        for slot in &mut group.slots {
            let mut cx = Cx::new(now, &group.config, true, &mut self.out, &mut self.rng);
            if slot.is_live() {
                request_stop(slot, &mut cx, ExitReason::Shutdown, How::Graceful, After::Stay);
            }
        }
    }

    fn sweep_retired(&mut self) {
        for group in &mut self.groups {
            group.slots.retain(|s| !s.retiring || s.has_process());
        }
    }

    fn check_done(&mut self) {
        if self.exit_sent || !self.started {
            return;
        }
        let slots = || self.groups.iter().flat_map(|g| g.slots.iter());
        let code = if self.shutdown == Shutdown::Running {
            let idle = slots().all(|s| {
                matches!(s.phase, Phase::Stopped | Phase::GaveUp) && s.successor.is_none()
            });
            if !self.exit_when_idle || !idle {
                return;
            }
            let all_ok = slots().all(|s| {
                matches!(s.phase, Phase::Stopped)
                    && !s.start_failed
                    && s.last_exit.as_ref().is_none_or(|e| e.status.success())
            });
            // A worker that gave up just now cannot be restarted by hand: corral is leaving.
            for command in &mut self.out {
                if let Command::Emit(Event { kind: EventKind::GaveUp { last, .. }, .. }) = command {
                    *last = true;
                }
            }
            u8::from(!all_ok)
        } else {
            if slots().any(Slot::has_process) {
                return;
            }
            0
        };
        self.exit_sent = true;
        self.out.push(Command::Exit(code));
    }

    /// The picture front-ends draw, as of `now`.
    pub fn snapshot(&self, now: Instant) -> Snapshot {
        let mut workers = Vec::new();
        let mut groups = Vec::new();
        let mut total_restarts = 0;
        for group in &self.groups {
            let mut up = 0;
            for slot in &group.slots {
                let view = view_of(slot, &group.config, now);
                if matches!(view.state, WorkerState::Running | WorkerState::Starting) {
                    up += 1;
                }
                total_restarts += slot.restarts;
                workers.push(view);
            }
            groups.push(GroupView {
                name: group.config.name.clone(),
                workers: group.config.workers,
                up,
            });
        }
        Snapshot {
            groups,
            workers,
            total_restarts,
            shutting_down: self.shutdown != Shutdown::Running,
        }
    }
}

fn view_of(slot: &Slot, config: &GroupConfig, now: Instant) -> WorkerView {
    let (state, pid, generation, uptime) = match &slot.phase {
        Phase::Live(run) => {
            let state = if run.stop.is_some() || run.exit.is_some() {
                WorkerState::Stopping
            } else if run.pid.is_none() || (config.wait_ready && !run.ready) {
                WorkerState::Starting
            } else {
                WorkerState::Running
            };
            let uptime = match (run.pid, run.exit) {
                (Some(_), None) => Some(now.saturating_duration_since(run.started)),
                _ => None,
            };
            (state, run.pid, Some(run.generation), uptime)
        }
        Phase::Waiting { until, failed } => {
            let left = until.saturating_duration_since(now);
            let state = match failed {
                None => WorkerState::Backoff { left },
                Some(error) => WorkerState::Failed { left, error: error.clone() },
            };
            (state, None, None, None)
        }
        Phase::Stopped => (WorkerState::Stopped, None, None, None),
        Phase::GaveUp => (WorkerState::GaveUp, None, None, None),
    };
    WorkerView {
        key: slot.key,
        id: format!("{}.{}", config.name, slot.key.slot),
        pid,
        generation,
        state,
        uptime,
        restarts: slot.restarts,
        last_exit: slot.last_exit.clone(),
        crash_looping: slot.failed_short_runs >= CRASH_LOOP_RUNS,
        replacement: slot.successor.as_ref().and_then(|s| s.pid),
    }
}

fn spawn(slot: &mut Slot, cx: &mut Cx<'_>) {
    let generation = slot.next_generation;
    slot.next_generation += 1;
    slot.timers.clear();
    slot.phase = Phase::Live(Run::new(generation, cx.now));
    cx.out.push(Command::Spawn { key: slot.key, generation });
}

/// A start the user asked for: a fresh crash-loop budget, no backoff.
fn start_fresh(slot: &mut Slot, cx: &mut Cx<'_>) {
    slot.restart_log.clear();
    slot.short_runs = 0;
    slot.failed_short_runs = 0;
    spawn(slot, cx);
}

fn stop_slot(slot: &mut Slot, cx: &mut Cx<'_>) {
    match slot.phase {
        Phase::Live(_) => request_stop(slot, cx, ExitReason::Stopped, How::Graceful, After::Stay),
        Phase::Waiting { .. } | Phase::GaveUp => {
            // A stop during backoff cancels the pending restart for good.
            slot.timers.clear();
            slot.phase = Phase::Stopped;
        }
        Phase::Stopped => {}
    }
}

fn request_stop(slot: &mut Slot, cx: &mut Cx<'_>, reason: ExitReason, how: How, then: After) {
    let Phase::Live(run) = &mut slot.phase else {
        return;
    };
    match run.stop.as_mut() {
        None => run.stop = Some(StopRequest { reason, then }),
        // A later request wins when it asks for at least as much (stop beats restart,
        // scale-down beats stop); requests never undo each other.
        Some(stop) if then >= stop.then => *stop = StopRequest { reason, then },
        Some(_) => {}
    }
    let Some(pid) = run.pid else { return }; // delivered once the spawn reports its pid
    let key = slot.key;
    match how {
        How::Kill => {
            if !run.kill_sent {
                run.kill_sent = true;
                cx.signal(key, pid, Signal::KILL);
                cx.arm(slot, TimerKind::Abandon, cx.now + ABANDON_AFTER_KILL);
            }
        }
        How::Graceful | How::Abort => {
            if run.term_sent || run.kill_sent {
                return;
            }
            run.term_sent = true;
            let signal = if how == How::Abort { Signal::ABRT } else { cx.policy.stop_signal };
            if run.exit.is_none() && how == How::Graceful {
                cx.out.push(Command::NotifyShutdown { key, pid });
            }
            cx.signal(key, pid, signal);
            // A stopped (SIGSTOP'd) process only acts on the stop signal once continued.
            if signal != Signal::CONT {
                cx.signal(key, pid, Signal::CONT);
            }
            let at = cx.now + cx.policy.kill_timeout;
            cx.arm(slot, TimerKind::Kill, at);
        }
    }
}

fn start_group_cleanup(slot: &mut Slot, cx: &mut Cx<'_>) {
    let Phase::Live(run) = &mut slot.phase else {
        return;
    };
    if run.term_sent || run.kill_sent {
        return; // a stop is under way and its timers are armed
    }
    let Some(pid) = run.pid else { return };
    run.term_sent = true;
    let signal = cx.policy.stop_signal;
    cx.signal(slot.key, pid, signal);
    cx.signal(slot.key, pid, Signal::CONT);
    let at = cx.now + cx.policy.kill_timeout;
    cx.arm(slot, TimerKind::Kill, at);
}

/// The heartbeat timer fired: kill the worker if it has been silent too long, else wait
/// for the rest of the timeout since its last heartbeat.
fn check_heartbeat(slot: &mut Slot, cx: &mut Cx<'_>) {
    let Some(timeout) = cx.policy.heartbeat_timeout else {
        return;
    };
    let Phase::Live(run) = &slot.phase else {
        return;
    };
    let Some(last) = run.last_heartbeat else {
        return;
    };
    if run.stop.is_some() || run.exit.is_some() {
        return;
    }
    if cx.now.saturating_duration_since(last) >= timeout {
        // SIGABRT first: a hung worker may dump its state before the SIGKILL.
        request_stop(slot, cx, ExitReason::HeartbeatTimeout, How::Abort, After::Policy);
    } else {
        cx.arm(slot, TimerKind::Heartbeat, last + timeout);
    }
}

/// SIGKILL did not end the run in time (a process in uninterruptible sleep): stop
/// waiting so a stop, a restart or the shutdown can finish.
fn abandon(slot: &mut Slot, cx: &mut Cx<'_>) {
    let Phase::Live(run) = &mut slot.phase else {
        return;
    };
    if run.exit.is_none() {
        let reason = run.stop.map_or(ExitReason::Crashed, |s| s.reason);
        let uptime = cx.now.saturating_duration_since(run.started);
        let status = ExitStatus::Signal(Signal::KILL);
        run.exit = Some((status, cx.now, reason));
        let (pid, restarts) = (run.pid, slot.restarts);
        cx.emit(slot, pid, EventKind::Exited { status, uptime, reason, restarts });
    }
    finish(slot, cx);
}

/// The run and its whole process group are gone: record it and decide what comes next.
fn finish(slot: &mut Slot, cx: &mut Cx<'_>) {
    let Phase::Live(run) = std::mem::replace(&mut slot.phase, Phase::Stopped) else {
        return;
    };
    slot.timers.clear();
    cx.out.push(Command::Release { key: slot.key, generation: run.generation });
    let Some((status, at, reason)) = run.exit else {
        return;
    };
    let uptime = at.saturating_duration_since(run.started);
    slot.last_exit = Some(LastExit { status, reason, at, uptime });
    let then = run.stop.map_or(After::Policy, |s| s.then);
    if reload::promote(slot, cx, then) {
        return; // a rolling reload's replacement carries on for the slot
    }
    if cx.shutting_down || slot.retiring {
        return;
    }
    match then {
        After::Policy => decide_restart(slot, cx, status, reason, uptime, None),
        After::RestartNow | After::Handover => spawn(slot, cx),
        After::Stay | After::Remove => {}
    }
}

/// The restart policy after a run ended on its own (or a start failed).
fn decide_restart(
    slot: &mut Slot,
    cx: &mut Cx<'_>,
    status: ExitStatus,
    reason: ExitReason,
    uptime: Duration,
    spawn_error: Option<String>,
) {
    // A worker corral ended because it hung, bloated or never got ready failed, whatever
    // its exit code.
    let inflicted = matches!(
        reason,
        ExitReason::HeartbeatTimeout | ExitReason::MemoryLimit | ExitReason::ReadyTimeout
    );
    let failed = spawn_error.is_some() || !status.success() || inflicted;
    match cx.policy.restart {
        RestartPolicy::Never => return,
        RestartPolicy::OnFailure if !failed => return,
        RestartPolicy::OnFailure | RestartPolicy::Always => {}
    }
    let stable = spawn_error.is_none() && uptime >= cx.policy.min_uptime;
    let mut delay = if stable {
        slot.short_runs = 0;
        slot.failed_short_runs = 0;
        Duration::ZERO
    } else {
        slot.short_runs = slot.short_runs.saturating_add(1);
        slot.failed_short_runs = if failed { slot.failed_short_runs.saturating_add(1) } else { 0 };
        with_jitter(cx.policy.backoff.delay(slot.short_runs), cx.rng.f64())
    };
    if spawn_error.is_some() {
        delay = delay.max(MIN_SPAWN_RETRY);
    }
    let max = cx.policy.max_restarts as usize;
    if max > 0 {
        let window = cx.policy.restart_window;
        while slot
            .restart_log
            .front()
            .is_some_and(|&t| cx.now.saturating_duration_since(t) >= window)
        {
            slot.restart_log.pop_front();
        }
        if slot.restart_log.len() >= max {
            slot.phase = Phase::GaveUp;
            let (pid, restarts) = (slot.last_pid, slot.restarts);
            cx.emit(slot, pid, EventKind::GaveUp { restarts, last: false });
            return;
        }
        slot.restart_log.push_back(cx.now);
    }
    slot.restarts = slot.restarts.saturating_add(1);
    let (pid, restarts) = (slot.last_pid, slot.restarts);
    cx.emit(slot, pid, EventKind::RestartScheduled { delay, restarts });
    if delay.is_zero() {
        spawn(slot, cx);
    } else {
        let until = cx.now + delay;
        slot.phase = Phase::Waiting { until, failed: spawn_error };
        cx.arm(slot, TimerKind::Restart, until);
    }
}
