//! Carrying out the core's commands: spawns, signals, timers, probes, releases and the
//! events every sink, the dashboard, systemd, metrics and the control service hear of.

use std::time::Instant;

use super::{Runtime, probes, procs};
use crate::core::{Command, Event, EventKind, Input, Scope, TimerKind, WorkerKey};
use crate::report::Record;

impl Runtime {
    pub(super) fn execute(&mut self, command: Command) {
        match command {
            Command::Spawn { key, generation } => self.procs.queue_spawn(key, generation),
            Command::Signal { key, pid, signal } => {
                tracing::debug!(worker = %self.id(key), pgid = pid, "sending {signal} to the group");
                self.procs.signal(key, pid, signal);
            }
            Command::NotifyShutdown { key, pid } => {
                let group = self.groups.get(usize::from(key.group));
                let disconnect_first = group.is_some_and(|g| g.spec.policy.disconnect_first);
                let done = self.procs.notify_shutdown(key, pid, disconnect_first, &mut self.node);
                self.inputs.extend(done);
            }
            Command::Timer { at, token } => {
                tracing::debug!(worker = %self.id(token.key), kind = ?token.kind, "timer set");
                if matches!(token.kind, TimerKind::Probe { .. }) {
                    self.timers.insert_coarse(at, token);
                } else {
                    self.timers.insert(at, token);
                }
            }
            Command::Release { key, generation } => {
                self.probes.forget(key, generation);
                self.procs.release(key, generation, &mut self.node, &self.hub);
            }
            Command::Emit(event) => self.emit(&event),
            Command::Probe { key, generation, pid, probe } => {
                let asked = probes::Asked { key, generation, pid, probe };
                self.start_probe(asked);
            }
            Command::Exit(code) => self.exit = Some(code),
        }
    }

    /// A spawn the core asked for, now: the process table starts it; a worker whose
    /// binds corral adopts gets them watched.
    pub(super) fn spawn(&mut self, key: WorkerKey, generation: u32) -> Input {
        let cx = procs::SpawnCx {
            group: self.groups.get(usize::from(key.group)),
            env_files: &mut self.env_files,
            hub: &self.hub,
            node: &mut self.node,
        };
        let spawned = self.procs.spawn(key, generation, cx);
        match spawned.binds {
            Some(Ok(notify)) => {
                if let Some(adopter) = self.adopter.as_mut() {
                    adopter.watch(key.group, notify);
                }
            }
            Some(Err(errno)) => {
                if let Some(group) = self.groups.get_mut(usize::from(key.group)) {
                    group.cannot_adopt(errno);
                }
            }
            None => {}
        }
        spawned.input
    }

    fn emit(&mut self, event: &Event) {
        self.trace(event);
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
        self.systemd.on_event(&event.kind, &self.core, self.groups.len());
        self.close_stopped_group(event);
        if let Some(control) = self.control.as_mut() {
            control.on_event(event.scope, &event.kind);
        }
        if let Some(m) = self.metrics.as_mut() {
            m.count_exit(event);
        }
    }

    /// `-v`: corral's decisions, in the words of the headless text, with the worker's id.
    fn trace(&self, event: &Event) {
        if let (EventKind::ScheduleSkipped { running }, Scope::Group(g)) =
            (&event.kind, event.scope)
        {
            let group = self.names.get(usize::from(g)).map_or("?", String::as_str);
            tracing::warn!(
                "{group}: scheduled run skipped: {running} worker(s) of the last run still going"
            );
        } else if self.echo_events && tracing::enabled!(tracing::Level::INFO) {
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
    }

    /// The last worker of a group that stopped exited: its shared sockets close (new
    /// connections are refused while nobody serves). Checked only when the exiting slot
    /// itself stays stopped, so an exit storm costs a lookup per exit, not a group scan.
    fn close_stopped_group(&mut self, event: &Event) {
        let (Scope::Worker(key), EventKind::Exited { .. }) = (event.scope, &event.kind) else {
            return;
        };
        if self.core.slot_stopped(key)
            && self.core.group_stopped(key.group)
            && !self.core.shutting_down()
        {
            self.node.group_stopped(key.group);
        }
    }

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

    /// A worker's id as people read it (`web.2`), for diagnostics.
    pub(super) fn id(&self, key: WorkerKey) -> String {
        key.id(&self.names).to_string()
    }
}
