//! The runtime's side of the control socket: each request becomes the same inputs the
//! dashboard's keys send (one way to act), and is answered from the same snapshot, logs and
//! events the dashboard and headless output use (one source of truth).

use std::rc::Rc;
use std::time::{Instant, SystemTime};

use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::Runtime;
use super::dashboard::{GroupFacts, ViewFeed};
use super::hub::ControlTap;
use super::logs::Logs;
use crate::control::messages::{self, Request};
use crate::control::server::{self, Incoming, SharedClients};
use crate::control::socket::ControlSocket;
use crate::core::Stream;
use crate::core::{EventKind, Input, ShutdownTrigger, UserAction, WorkerKey};
use crate::report::Record;

/// Output lines `logs` sends when the request names no count.
pub const DEFAULT_LINES: usize = 100;

pub(super) struct Control {
    /// Held for its file, which goes when corral does.
    socket: ControlSocket,
    pub clients: SharedClients,
    pub requests: mpsc::UnboundedReceiver<Incoming>,
    sender: Option<mpsc::UnboundedSender<Incoming>>,
    started: SystemTime,
    /// `reload` requests waiting for their groups to finish.
    reloads: Vec<PendingReload>,
    /// Attached clients (`view`).
    pub viewers: super::control_view::Viewers,
}

struct PendingReload {
    client: Rc<server::Client>,
    id: Value,
    /// Groups not finished yet.
    groups: Vec<u16>,
    replaced: u32,
    failed: bool,
}

impl Control {
    pub fn new(socket: ControlSocket) -> Control {
        let (sender, requests) = mpsc::unbounded_channel();
        Control {
            socket,
            clients: SharedClients::default(),
            requests,
            sender: Some(sender),
            started: SystemTime::now(),
            reloads: Vec::new(),
            viewers: super::control_view::Viewers::default(),
        }
    }
}

/// The next request, or never without a control socket (for the main loop's select).
pub(super) async fn next(control: Option<&mut Control>) -> Option<Incoming> {
    match control {
        Some(c) => c.requests.recv().await,
        None => std::future::pending().await,
    }
}

impl Runtime {
    /// Starts serving the socket (bound before anything started); call inside the runtime.
    pub(super) fn start_control(&mut self) {
        let Some(control) = self.control.as_mut() else { return };
        let Some(sender) = control.sender.take() else { return };
        let listener = match control
            .socket
            .listener
            .try_clone()
            .and_then(tokio::net::UnixListener::from_std)
        {
            Ok(l) => l,
            Err(e) => {
                tracing::error!("cannot serve the control socket: {e}");
                return;
            }
        };
        if self.dashboard.is_none() {
            // Someone may attach: keep what a dashboard shows (a local one replaces this).
            let facts = self.groups.iter().map(|g| GroupFacts::new(&g.spec, &g.listeners));
            self.dashboard = Some(ViewFeed::new(None, None, facts.collect()));
        }
        let clients = control.clients.clone();
        self.hub.tap(ControlTap::new(clients.clone(), self.names.clone()));
        let hello = Rc::new(hello_line(
            self.instance.clone(),
            self.names.clone(),
            control.started,
            control.socket.path().display().to_string(),
        ));
        tokio::task::spawn_local(server::accept(listener, clients, sender, hello));
    }

    /// The last replies and events (`shutdown_complete`) reach the clients before corral
    /// exits; a client that does not read gets a second, no more.
    pub(super) async fn flush_control(&mut self) {
        let Some(control) = self.control.as_ref() else { return };
        let end = Instant::now() + std::time::Duration::from_secs(1);
        while Instant::now() < end && control.clients.any_queued() {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    pub(super) fn on_control(&mut self, incoming: Incoming) {
        let Incoming { client, id, command, done } = incoming;
        let reply = match command {
            Err(bad) => messages::error(&id, &bad.to_string()),
            Ok(command) => self.control_command(&client, &id, command),
        };
        if !reply.is_empty() {
            client.send(reply);
        }
        let _ = done.send(());
    }

    fn control_command(
        &mut self,
        client: &Rc<server::Client>,
        id: &Value,
        command: Request,
    ) -> Vec<u8> {
        match command {
            Request::Hello {} => {
                let hello = self.control.as_ref().map(|c| {
                    hello_value(
                        &self.instance,
                        &self.names,
                        c.started,
                        &c.socket.path().display().to_string(),
                    )
                });
                messages::ok(id, json!({ "hello": hello }))
            }
            Request::Status {} => messages::ok(id, self.status_value()),
            Request::Kill { target } => self.act(id, &target, UserAction::Kill),
            Request::Restart { target } => self.act(id, &target, UserAction::Restart),
            Request::Stop { target } => self.act(id, &target, UserAction::Stop),
            Request::Start { target } => self.act(id, &target, UserAction::Start),
            Request::Toggle { target } => self.act(id, &target, UserAction::ToggleStop),
            Request::Scale { group, workers, delta } => self.scale_to(id, &group, workers, delta),
            Request::Reload { target } => self.reload_request(client, id, &target),
            Request::Logs { target, lines, follow } => {
                self.logs(client, id, target.as_deref(), lines, follow)
            }
            Request::Events { follow } => {
                let Some(control) = self.control.as_ref() else { return Vec::new() };
                if follow {
                    client.subs.borrow_mut().events = Some(id.clone());
                }
                control.clients.recent(id)
            }
            Request::View { pane } => self.view_request(client, id, pane),
            Request::Pane { pane } => self.pane_request(client, id, pane),
            Request::Send { target, message } => self.send_message(id, &target, &message),
            Request::Shutdown { force } => {
                self.inputs.push(Input::Shutdown(ShutdownTrigger::Control { force }));
                messages::ok_with(id, &messages::Whom { instance: None, pid: std::process::id() })
            }
        }
    }

    /// `all`, a group's name or a worker's id, as the slots they mean now.
    pub(super) fn targets(&self, target: &str) -> Result<Vec<WorkerKey>, String> {
        let keys = self.core.worker_keys();
        if target == "all" {
            return Ok(keys);
        }
        if let Some(g) = self.names.iter().position(|n| n == target) {
            return Ok(keys.into_iter().filter(|k| usize::from(k.group) == g).collect());
        }
        let found = target.rsplit_once('.').and_then(|(group, slot)| {
            let g = self.names.iter().position(|n| n == group)?;
            let slot: u32 = slot.parse().ok()?;
            keys.iter().copied().find(|k| usize::from(k.group) == g && k.slot == slot)
        });
        found.map(|k| vec![k]).ok_or_else(|| {
            format!("unknown worker or group '{target}' (groups: {})", self.names.join(", "))
        })
    }

    fn act(&mut self, id: &Value, target: &str, action: fn(WorkerKey) -> UserAction) -> Vec<u8> {
        match self.targets(target) {
            Ok(keys) => {
                let ids: Vec<String> = keys.iter().map(|k| self.id(*k)).collect();
                for key in keys {
                    self.inputs.push(Input::User(action(key)));
                }
                messages::ok_with(id, &messages::Reached { workers: ids })
            }
            Err(e) => messages::error(id, &e),
        }
    }

    fn scale_to(
        &mut self,
        id: &Value,
        group: &str,
        workers: Option<u32>,
        delta: Option<i64>,
    ) -> Vec<u8> {
        let Some(g) = self.names.iter().position(|n| n == group) else {
            return messages::error(
                id,
                &format!("unknown group '{group}' (groups: {})", self.names.join(", ")),
            );
        };
        let snapshot = self.core.snapshot(Instant::now());
        let now = snapshot.groups.get(g).map_or(0, |v| i64::from(v.workers));
        let want = match (workers, delta) {
            (Some(n), None) => i64::from(n),
            (None, Some(d)) => now + d,
            _ => return messages::error(id, "scale takes either workers or delta"),
        };
        let max = i64::from(crate::core::MAX_WORKERS);
        if !(1..=max).contains(&want) {
            return messages::error(id, &format!("a group has 1 to {max} workers, not {want}"));
        }
        let g16 = g as u16;
        for _ in 0..(want - now).unsigned_abs() {
            let action =
                if want > now { UserAction::ScaleUp(g16) } else { UserAction::ScaleDown(g16) };
            self.inputs.push(Input::User(action));
        }
        messages::ok_with(id, &messages::Scaled { group: group.to_string(), workers: want })
    }

    fn reload_request(&mut self, client: &Rc<server::Client>, id: &Value, target: &str) -> Vec<u8> {
        let groups: Vec<u16> = if target == "all" {
            (0..self.names.len() as u16).collect()
        } else if let Some(g) = self.names.iter().position(|n| n == target) {
            vec![g as u16]
        } else {
            return messages::error(
                id,
                &format!("unknown group '{target}' (groups: {})", self.names.join(", ")),
            );
        };
        if self.core.shutting_down() {
            return messages::error(id, "corral is shutting down");
        }
        if let [g] = groups[..]
            && self.core.waits(g)
        {
            return messages::error(
                id,
                &format!("{target} waits for the groups it depends on: it runs nothing to reload"),
            );
        }
        let groups: Vec<u16> = groups.into_iter().filter(|&g| !self.core.waits(g)).collect();
        for &g in &groups {
            self.note_queued_reload(g);
            self.inputs.push(Input::Reload { group: g, cause: crate::core::ReloadCause::Ctl });
        }
        if let Some(control) = self.control.as_mut() {
            control.reloads.push(PendingReload {
                client: Rc::clone(client),
                id: id.clone(),
                groups,
                replaced: 0,
                failed: false,
            });
        }
        Vec::new() // answered when it has finished
    }

    /// After each event: a finished reload answers the requests that wait for it.
    pub(super) fn control_event(&mut self, scope: crate::core::Scope, kind: &EventKind) {
        let Some(control) = self.control.as_mut() else { return };
        match (scope, kind) {
            (crate::core::Scope::Group(g), EventKind::ReloadFinished { replaced, failed }) => {
                for pending in &mut control.reloads {
                    if let Some(i) = pending.groups.iter().position(|x| *x == g) {
                        pending.groups.remove(i);
                        pending.replaced += replaced;
                        pending.failed |= failed;
                    }
                }
            }
            (_, EventKind::ShutdownStarted { .. }) => {
                for pending in control.reloads.drain(..) {
                    pending.client.send(messages::error(&pending.id, "corral is shutting down"));
                }
            }
            _ => {}
        }
        // Answered after the inputs of this turn have run (`drive`): a reload of `all`
        // must not be answered between its groups.
    }

    /// Answers reloads with nothing left to wait for: finished, or never started (a group
    /// with no running worker has nothing to reload).
    pub(super) fn answer_finished_reloads(&mut self) {
        let Some(control) = self.control.as_mut() else { return };
        let core = &self.core;
        let mut i = 0;
        while i < control.reloads.len() {
            let pending = &control.reloads[i];
            if pending.groups.iter().any(|g| core.reloading(*g)) {
                i += 1;
                continue;
            }
            let pending = control.reloads.swap_remove(i);
            let reply = if pending.failed {
                messages::error(
                    &pending.id,
                    "the reload failed: a replacement did not come up; the old workers stay",
                )
            } else {
                messages::ok_with(&pending.id, &messages::Reloaded { replaced: pending.replaced })
            };
            pending.client.send(reply);
        }
    }

    fn logs(
        &mut self,
        client: &Rc<server::Client>,
        id: &Value,
        target: Option<&str>,
        lines: Option<usize>,
        follow: bool,
    ) -> Vec<u8> {
        let keys = match target.map(|t| self.targets(t)).transpose() {
            Ok(keys) => keys,
            Err(e) => return messages::error(id, &e),
        };
        let want = lines.unwrap_or(DEFAULT_LINES);
        let from = keys.clone().unwrap_or_else(|| self.core.worker_keys());
        let shown = self.hub.with_logs(|logs| last_lines(logs, &from, want, &self.names));
        if follow {
            client.subs.borrow_mut().logs = Some((id.clone(), keys));
        }
        messages::ok_list(id, "lines", shown.iter().map(Vec::as_slice))
    }

    fn status_value(&self) -> Value {
        serde_json::to_value(self.status()).unwrap_or(Value::Null)
    }

    fn status(&self) -> crate::control::status::Status {
        let snapshot = self.core.snapshot(Instant::now());
        self.hub.with_logs(|logs| self.status_of(&snapshot, logs))
    }

    fn status_of(
        &self,
        snapshot: &crate::core::Snapshot,
        logs: &Logs,
    ) -> crate::control::status::Status {
        use crate::control::status::{GroupStatus, LastExitStatus, Status, WorkerStatus};
        let ms = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let workers = snapshot
            .workers
            .iter()
            .map(|w| {
                let usage = self.usage.get(&w.key).filter(|u| Some(u.pid) == w.pid);
                let group = snapshot.groups.get(usize::from(w.key.group));
                let next = match w.state {
                    crate::core::WorkerState::Scheduled { .. } => group.and_then(|g| g.next_run),
                    _ => None,
                };
                WorkerStatus {
                    id: w.id.clone(),
                    group: self.names.get(usize::from(w.key.group)).cloned(),
                    worker: w.key.slot,
                    pid: w.pid,
                    generation: w.generation,
                    state: w.state.label().to_string(),
                    uptime_ms: w.uptime.map(ms),
                    restarts: w.restarts,
                    last_exit: w.last_exit.as_ref().map(|e| LastExitStatus {
                        code: e.status.code(),
                        signal: e.status.signal().map(crate::signal::Signal::name),
                        reason: e.reason.as_str().to_string(),
                        uptime_ms: ms(e.uptime),
                    }),
                    cpu_percent: usage.map(|u| f64::from(u.cpu)),
                    memory_bytes: usage.map(|u| u.rss),
                    status: logs.get(w.key).and_then(|l| l.status_of(w.pid)).map(str::to_string),
                    waiting_for: group
                        .filter(|_| w.state == crate::core::WorkerState::Waiting)
                        .map(|g| g.waiting_for.clone()),
                    next_run: next.map(|n| crate::report::format_ts(n.wall)),
                    next_run_in_ms: next.map(|n| ms(n.left)),
                    probes: w
                        .probes
                        .iter()
                        .map(|p| crate::control::status::ProbeStatus {
                            probe: p.kind.as_str().to_string(),
                            state: match p.passing {
                                Some(true) => "passing",
                                Some(false) => "failing",
                                None => "pending",
                            }
                            .to_string(),
                            failures: p.failures,
                        })
                        .collect(),
                }
            })
            .collect();
        let at = |d: Option<crate::core::Due>| d.map(|d| crate::report::format_ts(d.wall));
        let groups = snapshot
            .groups
            .iter()
            .map(|g| GroupStatus {
                name: g.name.clone(),
                workers: g.workers,
                up: g.up,
                waiting_for: g.waiting_for.clone(),
                blocked: g.blocked.clone(),
                next_run: at(g.next_run),
                next_reload: at(g.next_reload),
            })
            .collect();
        let problems = crate::core::health::problems(snapshot);
        Status {
            healthy: problems.is_empty(),
            problems,
            instance: self.instance.clone(),
            pid: std::process::id(),
            shutting_down: snapshot.shutting_down,
            restarts: snapshot.total_restarts,
            groups,
            workers,
        }
    }
}

fn hello_value(instance: &str, names: &[String], started: SystemTime, socket: &str) -> Value {
    let hello = messages::Hello {
        instance: instance.to_string(),
        pid: std::process::id(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        started: crate::report::format_ts(started),
        groups: names.to_vec(),
        socket: socket.to_string(),
    };
    serde_json::to_value(hello).unwrap_or(Value::Null)
}

fn hello_line(
    instance: String,
    names: Vec<String>,
    started: SystemTime,
    socket: String,
) -> impl Fn() -> Vec<u8> {
    move || {
        let hello = hello_value(&instance, &names, started, &socket);
        messages::line(&json!({ "v": messages::VERSION, "hello": hello }))
    }
}

/// The last `want` output lines of `keys`' workers, oldest first, each encoded as an item.
fn last_lines(logs: &Logs, keys: &[WorkerKey], want: usize, names: &[String]) -> Vec<Vec<u8>> {
    let mut all: Vec<(SystemTime, WorkerKey, u32, Stream, &str)> = Vec::new();
    for &key in keys {
        if let Some(log) = logs.get(key) {
            let skip = log.lines.len().saturating_sub(want);
            all.extend(
                log.lines.iter().skip(skip).map(|l| (l.at, key, l.pid, l.stream, l.text.as_str())),
            );
        }
    }
    all.sort_by_key(|(at, ..)| *at);
    let skip = all.len().saturating_sub(want);
    let mut shown = Vec::with_capacity(want.min(all.len()));
    for (at, key, pid, stream, text) in all.into_iter().skip(skip) {
        let mut out = Vec::new();
        let record = Record::Output { key, pid, stream, line: text.as_bytes() };
        crate::report::json_line(&mut out, at, names, &record);
        out.pop(); // its newline: an item of the list
        shown.push(out);
    }
    shown
}
