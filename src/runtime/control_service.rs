//! The control socket's service (docs/control.md): typed requests in, one handler per verb
//! (`verbs`, `status`, `view`), replies and subscriptions out. Each request becomes the
//! same inputs the dashboard's keys send (one way to act), and is answered from the same
//! snapshot, logs and events the dashboard and headless output use (one source of truth).
//! Never touches: the core's state (it reads a `&Supervisor`, queues inputs), processes.

mod status;
mod verbs;
mod view;

use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Instant, SystemTime};

use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::hub::{ControlTap, Reports};
use super::inputs::Inputs;
use super::node::NodeChannels;
use super::procs::ProcessTable;
use crate::backend::Usage;
use crate::control::messages::{self, Request};
use crate::control::server::{self, Incoming, SharedClients};
use crate::control::socket::ControlSocket;
use crate::core::{EventKind, Scope, Supervisor, WorkerKey};
use crate::ui::model::{PaneRequest, View};

use self::view::Viewers;

/// Output lines `logs` sends when the request names no count.
pub const DEFAULT_LINES: usize = 100;

pub(super) struct Control {
    /// Held for its file, which goes when corral does.
    socket: ControlSocket,
    clients: SharedClients,
    requests: mpsc::UnboundedReceiver<Incoming>,
    sender: Option<mpsc::UnboundedSender<Incoming>>,
    started: SystemTime,
    /// `reload` requests waiting for their groups to finish.
    reloads: Vec<PendingReload>,
    /// Attached clients (`view`).
    viewers: Viewers,
}

struct PendingReload {
    client: Rc<server::Client>,
    id: Value,
    /// Groups not finished yet.
    groups: Vec<u16>,
    replaced: u32,
    failed: bool,
}

/// What a request is answered from and acts on, lent by the main loop for one request.
pub(super) struct Cx<'a> {
    pub core: &'a Supervisor,
    pub names: &'a [String],
    pub instance: &'a str,
    pub inputs: &'a Inputs,
    pub hub: &'a Reports,
    pub procs: &'a ProcessTable,
    pub node: &'a mut NodeChannels,
    /// A dashboard's facts are kept: `corral attach` has something to show.
    pub attachable: bool,
}

impl Cx<'_> {
    fn usage(&self) -> &HashMap<WorkerKey, Usage> {
        self.procs.usage()
    }

    /// `all`, a group's name or a worker's id, as the slots they mean now.
    fn targets(&self, target: &str) -> Result<Vec<WorkerKey>, String> {
        targets(self.core, self.names, target)
    }
}

/// `all`, a group's name or a worker's id, as the slots they mean now.
pub(super) fn targets(
    core: &Supervisor,
    names: &[String],
    target: &str,
) -> Result<Vec<WorkerKey>, String> {
    let keys = core.worker_keys();
    if target == "all" {
        return Ok(keys);
    }
    if let Some(g) = names.iter().position(|n| n == target) {
        return Ok(keys.into_iter().filter(|k| usize::from(k.group) == g).collect());
    }
    let found = target.rsplit_once('.').and_then(|(group, slot)| {
        let g = names.iter().position(|n| n == group)?;
        let slot: u32 = slot.parse().ok()?;
        keys.iter().copied().find(|k| usize::from(k.group) == g && k.slot == slot)
    });
    found
        .map(|k| vec![k])
        .ok_or_else(|| format!("unknown worker or group '{target}' (groups: {})", names.join(", ")))
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
            viewers: Viewers::default(),
        }
    }

    /// Starts serving the socket (bound before anything started); call inside the
    /// runtime. From now on `hub` tells the clients every record. False when it could
    /// not be served.
    pub fn start(&mut self, hub: &Reports, names: &[String], instance: &str) -> bool {
        let Some(sender) = self.sender.take() else { return false };
        let listener =
            match self.socket.listener.try_clone().and_then(tokio::net::UnixListener::from_std) {
                Ok(l) => l,
                Err(e) => {
                    tracing::error!("cannot serve the control socket: {e}");
                    return false;
                }
            };
        hub.tap(ControlTap::new(self.clients.clone(), names.to_vec()));
        let hello = Rc::new(hello_line(
            instance.to_string(),
            names.to_vec(),
            self.started,
            self.socket.path().display().to_string(),
        ));
        tokio::task::spawn_local(server::accept(listener, self.clients.clone(), sender, hello));
        true
    }

    /// The next request (for the main loop's select; cancel-safe).
    pub async fn next(&mut self) -> Option<Incoming> {
        self.requests.recv().await
    }

    /// A request already waiting, if any.
    pub fn try_next(&mut self) -> Option<Incoming> {
        self.requests.try_recv().ok()
    }

    /// The last replies and events (`shutdown_complete`) reach the clients before corral
    /// exits; a client that does not read gets a second, no more.
    pub async fn flush(&self) {
        let end = Instant::now() + std::time::Duration::from_secs(1);
        while Instant::now() < end && self.clients.any_queued() {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    pub fn handle(&mut self, incoming: Incoming, mut cx: Cx<'_>) {
        let Incoming { client, id, command, done } = incoming;
        let reply = match command {
            Err(bad) => messages::error(&id, &bad.to_string()),
            Ok(command) => self.dispatch(&client, &id, command, &mut cx),
        };
        if !reply.is_empty() {
            client.send(reply);
        }
        let _ = done.send(());
    }

    /// One handler per verb; an empty reply is sent later (a reload, when it finished).
    fn dispatch(
        &mut self,
        client: &Rc<server::Client>,
        id: &Value,
        command: Request,
        cx: &mut Cx<'_>,
    ) -> Vec<u8> {
        use crate::core::UserAction;
        match command {
            Request::Hello {} => {
                let socket = self.socket.path().display().to_string();
                let hello = hello_value(cx.instance, cx.names, self.started, &socket);
                messages::ok(id, json!({ "hello": hello }))
            }
            Request::Status {} => status::reply(id, cx),
            Request::Kill { target } => verbs::act(id, &target, UserAction::Kill, cx),
            Request::Restart { target } => verbs::act(id, &target, UserAction::Restart, cx),
            Request::Stop { target } => verbs::act(id, &target, UserAction::Stop, cx),
            Request::Start { target } => verbs::act(id, &target, UserAction::Start, cx),
            Request::Toggle { target } => verbs::act(id, &target, UserAction::ToggleStop, cx),
            Request::Scale { group, workers, delta } => {
                verbs::scale(id, &group, workers, delta, cx)
            }
            Request::Reload { target } => match verbs::reload(id, &target, cx) {
                Ok(groups) => {
                    let (client, id) = (Rc::clone(client), id.clone());
                    let pending = PendingReload { client, id, groups, replaced: 0, failed: false };
                    self.reloads.push(pending);
                    Vec::new() // answered when it has finished
                }
                Err(reply) => reply,
            },
            Request::Logs { target, lines, follow } => {
                verbs::logs(client, id, target.as_deref(), lines, follow, cx)
            }
            Request::Events { follow } => {
                if follow {
                    client.follow_events(id.clone());
                }
                self.clients.recent(id)
            }
            Request::View { pane } => self.viewers.view(client, id, pane, cx),
            Request::Pane { pane } => self.viewers.pane(client, id, pane),
            Request::Send { target, message } => verbs::send(id, &target, &message, cx),
            Request::Shutdown { force } => verbs::shutdown(id, force, cx),
        }
    }

    /// After each event: a finished reload answers the requests that wait for it.
    pub fn on_event(&mut self, scope: Scope, kind: &EventKind) {
        match (scope, kind) {
            (Scope::Group(g), EventKind::ReloadFinished { replaced, failed }) => {
                for pending in &mut self.reloads {
                    if let Some(i) = pending.groups.iter().position(|x| *x == g) {
                        pending.groups.remove(i);
                        pending.replaced += replaced;
                        pending.failed |= failed;
                    }
                }
            }
            (_, EventKind::ShutdownStarted { .. }) => {
                for pending in self.reloads.drain(..) {
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
    pub fn answer_finished_reloads(&mut self, core: &Supervisor) {
        let mut i = 0;
        while i < self.reloads.len() {
            let pending = &self.reloads[i];
            if pending.groups.iter().any(|g| core.reloading(*g)) {
                i += 1;
                continue;
            }
            let pending = self.reloads.swap_remove(i);
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

    /// Whether an attached client is owed a frame (`changed`: something every view shows).
    pub fn frame_owed(&self, changed: bool) -> bool {
        self.viewers.owed(changed)
    }

    /// The panes to build for this frame, each with the viewers that get it.
    pub fn due_panes(&mut self, changed: bool) -> Vec<(PaneRequest, Vec<usize>)> {
        let clients = &self.clients;
        self.viewers.due(changed, |serial| clients.is_live(serial))
    }

    /// One view, built for the viewers `who`, goes out to them.
    pub fn send_view(&mut self, who: &[usize], view: View) {
        self.viewers.send_view(who, view);
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
