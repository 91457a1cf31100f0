//! `Supervisor`: the state machine over all slots of all groups.

use std::time::{Duration, Instant};

use super::command::{Command, TimerKind, TimerToken};
use super::event::{Event, EventKind, ExitReason, ExitStatus, MemoryOver, Scope, ShutdownTrigger};
use super::input::{Input, UserAction};
use super::policy::with_jitter;
use super::policy::{
    ABANDON_AFTER_KILL, CRASH_LOOP_RUNS, MEMORY_SAMPLES, MIN_SPAWN_RETRY, Policy, RestartPolicy,
};
use super::probe::ProbeSet;
use super::snapshot::{GroupView, LastExit, NextRun, Snapshot, WorkerState, WorkerView};
use super::worker::{After, Phase, Run, Slot, Stage, StopRequest, WorkerKey};
use crate::signal::Signal;

mod depend;
mod probes;
mod reload;
mod restart;
mod scale;
mod schedule;
mod stop;
mod user;
mod view;

use restart::{check_heartbeat, decide_restart, finish, spawn, start_fresh};
#[cfg(test)]
pub(crate) use stop::DISCONNECT_GRACE;
use stop::{abandon, request_stop, start_group_cleanup, stop_slot};

/// The most workers one group may have (docs/config.md).
pub const MAX_WORKERS: u32 = 4096;

/// A group as the supervisor needs it: no command line, no sockets.
#[derive(Clone, Debug, Default)]
pub struct GroupConfig {
    pub name: String,
    pub workers: u32,
    pub policy: Policy,
    pub wait_ready: bool,
    /// Conditions on other groups that must hold before this one starts
    /// (docs/application.md#dependencies-depends-on); never a cycle.
    pub depends_on: Vec<super::Dependency>,
    /// A one-shot group on a schedule: not started with the others, started by
    /// `Input::ScheduleDue`, and never a reason for headless corral to leave.
    pub scheduled: bool,
    /// Readiness, liveness and startup probes' timings (docs/application.md#probes).
    pub probes: ProbeSet,
}

struct Group {
    config: GroupConfig,
    /// Sorted by slot number.
    slots: Vec<Slot>,
    /// How many slots are `retiring`, so the sweep after each input costs nothing
    /// unless a scale-down is under way.
    retiring: usize,
    reload: Option<reload::ReloadRun>,
    /// Its dependencies have not all held yet: its slots wait, unspawned.
    waiting: bool,
    /// While waiting: why one of its conditions can never hold (said once, then kept for
    /// the views and for the groups that depend on this one).
    blocked: Option<String>,
    /// When its schedules fire next, as the runtime last said.
    next_run: Option<NextRun>,
    next_reload: Option<NextRun>,
}

/// The slot numbered `number` in a group's sorted slots: a binary search, as every input
/// names a slot and a linear scan made each one cost O(workers).
fn slot_mut(slots: &mut [Slot], number: u32) -> Option<&mut Slot> {
    let at = slots.binary_search_by_key(&number, |s| s.key.slot).ok()?;
    slots.get_mut(at)
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
    scheduled: bool,
    probes: ProbeSet,
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
        Cx {
            now,
            policy: config.policy,
            wait_ready: config.wait_ready,
            scheduled: config.scheduled,
            probes: config.probes,
            shutting_down,
            out,
            rng,
        }
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
    /// Group indices, each after everything it depends on.
    order: Vec<u16>,
    /// For each group, the groups that depend on it (they stop first).
    dependents: Vec<Vec<u16>>,
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
                let waiting = !config.depends_on.is_empty();
                Group {
                    config,
                    slots,
                    retiring: 0,
                    reload: None,
                    waiting,
                    blocked: None,
                    next_run: None,
                    next_reload: None,
                }
            })
            .collect::<Vec<Group>>();
        let depends: Vec<Vec<u16>> =
            groups.iter().map(|g| g.config.depends_on.iter().map(|d| d.group).collect()).collect();
        // A cycle is refused where configs are read; were one to come through, file order
        // is as good as any.
        let order =
            super::start_order(&depends).unwrap_or_else(|_| (0..groups.len() as u16).collect());
        let mut dependents = vec![Vec::new(); groups.len()];
        for (g, edges) in depends.iter().enumerate() {
            for &d in edges {
                if let Some(list) = dependents.get_mut(usize::from(d)) {
                    list.push(g as u16);
                }
            }
        }
        Supervisor {
            groups,
            order,
            dependents,
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

    /// Whether this slot is stopped or given up, with no replacement coming: a binary search,
    /// cheap enough to ask after every exit.
    pub fn slot_stopped(&self, key: WorkerKey) -> bool {
        let Some(group) = self.groups.get(usize::from(key.group)) else { return false };
        let at = group.slots.binary_search_by_key(&key.slot, |s| s.key.slot);
        at.ok().and_then(|at| group.slots.get(at)).is_some_and(|s| {
            matches!(s.phase, Phase::Stopped | Phase::GaveUp) && s.successor.is_none()
        })
    }

    /// Whether group `g` has stopped: every slot stopped or given up, no process left and
    /// none coming (its shared sockets can close).
    pub fn group_stopped(&self, g: u16) -> bool {
        self.groups.get(usize::from(g)).is_some_and(|group| {
            group
                .slots
                .iter()
                .all(|s| matches!(s.phase, Phase::Stopped | Phase::GaveUp) && s.successor.is_none())
        })
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
            Input::SpawnCancelled { key, generation } => {
                self.on_spawn_cancelled(now, key, generation);
            }
            Input::SpawnFailed { key, generation, error } => {
                self.on_spawn_failed(now, key, generation, error);
            }
            Input::Exited { key, generation, status, group_alive } => {
                self.on_exited(now, key, generation, status, group_alive);
            }
            Input::GroupGone { key, generation } => self.on_group_gone(now, key, generation),
            Input::Ready { key, generation } => self.on_ready(now, key, generation),
            Input::Heartbeat { key, generation } => self.on_heartbeat(now, key, generation),
            Input::DisconnectDone { key, generation } => {
                self.on_disconnect(now, key, generation, true);
            }
            Input::CannotDisconnect { key, generation } => {
                self.on_disconnect(now, key, generation, false);
            }
            Input::Sample { key, generation, rss } => self.on_sample(now, key, generation, rss),
            Input::ProbeResult { key, generation, probe, error } => {
                self.with_slot(now, key, |slot, cx| {
                    probes::on_result(slot, cx, generation, probe, error);
                });
            }
            Input::Timer(token) => self.on_timer(now, token),
            Input::User(action) => self.on_user(now, &action),
            Input::Reload { group, cause } => self.start_reload(now, group, cause),
            Input::ScheduleDue { group } => self.on_schedule_due(now, group),
            Input::NextRun { group, kind, next } => self.set_next_run(group, kind, next),
            Input::Shutdown(trigger) => self.on_shutdown(now, trigger),
        }
        self.step_reloads(now);
        self.release_waiting(now);
        if self.shutdown == Shutdown::Graceful {
            self.stop_next_groups(now);
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
        let Some(slot) = slot_mut(&mut group.slots, key.slot) else {
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
        let shutting_down = self.shutdown != Shutdown::Running;
        for g in 0..self.groups.len() as u16 {
            if self.groups[usize::from(g)].waiting {
                let unmet = self.labels(g, |_| true);
                self.out.push(depend::waiting_event(g, unmet, None));
            }
        }
        // A scheduled group waits for its first due time, as cron and process-compose do.
        for group in self.groups.iter_mut().filter(|g| !g.waiting && !g.config.scheduled) {
            for slot in &mut group.slots {
                if matches!(slot.phase, Phase::Stopped) {
                    let mut cx =
                        Cx::new(now, &group.config, shutting_down, &mut self.out, &mut self.rng);
                    spawn(slot, &mut cx);
                }
            }
        }
    }

    fn on_spawned(&mut self, now: Instant, key: WorkerKey, generation: u32, pid: u32) {
        self.with_slot(now, key, |slot, cx| {
            if reload::is_successor(slot, generation) {
                return reload::on_spawned(slot, cx, pid);
            }
            let Phase::Live(run) = &mut slot.phase else {
                return;
            };
            if run.generation != generation || !run.spawned(pid) {
                return;
            }
            run.started = cx.now;
            slot.last_pid = Some(pid);
            slot.start_failed = false;
            let pending = run.stop();
            cx.emit(slot, Some(pid), EventKind::Spawned { generation });
            if cx.wait_ready && pending.is_none() {
                let at = cx.now + cx.policy.ready_timeout;
                cx.arm(slot, TimerKind::Ready, at);
            }
            if pending.is_none() {
                probes::start(slot, cx, generation);
            }
            // A stop asked for while the spawn was in flight is delivered now.
            if let Some(stop) = pending {
                let how =
                    if stop.reason == ExitReason::KilledByUser { How::Kill } else { How::Graceful };
                request_stop(slot, cx, stop.reason, how, stop.then);
            }
        });
    }

    fn on_spawn_cancelled(&mut self, now: Instant, key: WorkerKey, generation: u32) {
        self.with_slot(now, key, |slot, cx| {
            let Phase::Live(run) = &slot.phase else {
                return;
            };
            if !cx.shutting_down || run.generation != generation || run.pid().is_some() {
                return;
            }
            slot.phase = Phase::Stopped;
            cx.out.push(Command::Release { key: slot.key, generation });
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
            if run.generation != generation || run.pid().is_some() {
                return;
            }
            let then = run.stop().map_or(After::Policy, |s| s.then);
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
            if run.generation != generation || run.exit().is_some() || run.pid().is_none() {
                return;
            }
            let reason = match run.stop() {
                Some(stop) => stop.reason,
                None if status.success() => ExitReason::Exited,
                None => ExitReason::Crashed,
            };
            run.end(status, cx.now, reason);
            let uptime = cx.now.saturating_duration_since(run.started);
            let pid = run.pid();
            let restarts = slot.restarts;
            let memory = run.memory_over.filter(|_| reason == ExitReason::MemoryLimit);
            cx.emit(slot, pid, EventKind::Exited { status, uptime, reason, restarts, memory });
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
            if run.generation == generation && run.exit().is_some() {
                finish(slot, cx);
            }
        });
    }

    fn on_ready(&mut self, now: Instant, key: WorkerKey, generation: u32) {
        self.with_slot(now, key, |slot, cx| {
            if reload::is_successor(slot, generation) {
                return reload::on_ready(slot, cx, false);
            }
            mark_ready(slot, cx, generation);
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
            if run.generation != generation || run.stage() >= Stage::Stopping {
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

    fn on_disconnect(&mut self, now: Instant, key: WorkerKey, generation: u32, done: bool) {
        self.with_slot(now, key, |slot, cx| {
            if !matches!(&slot.phase, Phase::Live(run) if run.generation == generation) {
                return;
            }
            if done {
                stop::disconnect_done(slot, cx);
            } else {
                stop::after_disconnect(slot, cx);
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
            if run.generation != generation || run.stage() >= Stage::Stopping {
                return;
            }
            run.over_memory = if rss > limit { run.over_memory + 1 } else { 0 };
            if run.over_memory >= MEMORY_SAMPLES {
                run.memory_over = Some(MemoryOver { rss, limit });
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
                    if let (Some(pid), false) = (run.pid(), run.sent.kill) {
                        run.sent.kill = true;
                        cx.signal(slot.key, pid, Signal::KILL);
                        cx.arm(slot, TimerKind::Abandon, cx.now + ABANDON_AFTER_KILL);
                    }
                }
                TimerKind::Abandon => abandon(slot, cx),
                TimerKind::Disconnect => stop::after_disconnect(slot, cx),
                TimerKind::Ready => {
                    let Phase::Live(run) = &slot.phase else {
                        return;
                    };
                    if !run.ready && run.stage() <= Stage::Up {
                        request_stop(slot, cx, ExitReason::ReadyTimeout, How::Kill, After::Policy);
                    }
                }
                TimerKind::Heartbeat => check_heartbeat(slot, cx),
                TimerKind::SuccessorReady => reload::on_ready_timeout(slot, cx),
                TimerKind::SuccessorSettled => reload::on_settled(slot, cx),
                TimerKind::SuccessorKill => reload::kill(slot, cx, ExitReason::Shutdown),
                TimerKind::Probe { probe, generation } => {
                    probes::on_timer(slot, cx, probe, generation);
                }
            }
        });
    }

    fn sweep_retired(&mut self) {
        for group in &mut self.groups {
            if group.retiring > 0 {
                group.slots.retain(|s| !s.retiring || s.has_process());
                group.retiring = group.slots.iter().filter(|s| s.retiring).count();
            }
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
            // A worker a person stopped waits for them: only ends the policy decided (runs
            // that finished, workers that gave up) make headless corral leave by itself.
            // A scheduled group's next run is always to come.
            let scheduled = self.groups.iter().any(|g| g.config.scheduled);
            if !self.exit_when_idle || !idle || scheduled || slots().any(|s| s.held) {
                return;
            }
            // A group still waiting now never starts: its work is not done.
            let all_ok = !self.any_waiting()
                && slots().all(|s| {
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
}

/// The slot's own run `generation` is ready (it said so, or its readiness probe passed).
fn mark_ready(slot: &mut Slot, cx: &mut Cx<'_>, generation: u32) {
    let Phase::Live(run) = &mut slot.phase else {
        return;
    };
    if run.generation != generation || run.ready || run.exit().is_some() {
        return;
    }
    run.ready = true;
    let pid = run.pid();
    slot.timers.retain(|&(_, k)| k != TimerKind::Ready);
    cx.emit(slot, pid, EventKind::Ready);
}
