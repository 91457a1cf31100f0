//! The server side of the control socket, on the runtime's thread: an accept task, and per
//! client a reader (one request at a time, lines capped) and a writer draining a bounded
//! queue. Requests go to the runtime, which acts through the same inputs the keys use. A
//! client that stops reading is dropped when its queue is full; nothing a client does can
//! block the supervisor or make it grow without bound.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::net::unix::OwnedWriteHalf;
use tokio::sync::{Notify, mpsc, oneshot};

use super::messages::{self, BadRequest, MAX_LINE, Request};
use crate::core::WorkerKey;

/// Bytes queued for one client before it counts as too far behind and is dropped.
pub const MAX_QUEUED: usize = 8 * 1024 * 1024;
/// Clients at once; more are turned away with a message.
pub const MAX_CLIENTS: usize = 64;
/// Events kept for `events` without `follow`.
pub const KEEP_EVENTS: usize = 1000;
/// ... and at most this many bytes of them: a worker's messages are events too, and each
/// may be a megabyte.
pub const KEEP_EVENT_BYTES: usize = 2 * 1024 * 1024;
/// An event larger than this reaches those who follow, but is not kept for newcomers.
const KEEP_EVENT_MAX: usize = KEEP_EVENT_BYTES / 16;
/// How often a follower that hung up its side is probed with an empty line.
const PROBE_EVERY: Duration = Duration::from_secs(10);
/// A dropped client gets this long to take its last line.
const LAST_WORDS: Duration = Duration::from_secs(1);
/// A client must send its first request this soon after connecting, or be disconnected:
/// connections that never speak must not hold the places `ctl` needs.
pub const IDENTIFY_WITHIN: Duration = Duration::from_secs(5);

/// A request, for the runtime; `done` tells the reader to read the next one.
pub struct Incoming {
    pub client: Rc<Client>,
    pub id: Value,
    pub command: Result<Request, BadRequest>,
    pub done: oneshot::Sender<()>,
}

/// What a client follows.
#[derive(Default)]
struct Subscriptions {
    /// `logs -f`: the request id, and whose lines (`None`: everyone's).
    logs: Option<(Value, Option<Vec<WorkerKey>>)>,
    /// `events -f`: the request id.
    events: Option<Value>,
    /// `view` (`corral attach`): frames follow; the runtime keeps what their pane shows.
    view: bool,
}

pub struct Client {
    pub serial: u64,
    queue: RefCell<VecDeque<Vec<u8>>>,
    queued: Cell<usize>,
    wake: Notify,
    /// No more reading; the writer ends once the queue is empty and nothing is followed.
    eof: Cell<bool>,
    /// Dropped (too far behind, or gone): the writer sends what is queued and closes.
    closing: Cell<bool>,
    /// The writer has ended: the reader stops too, whatever the client does.
    hung_up: Notify,
    /// Borrowed only inside this type's methods, never across an `.await`.
    subs: RefCell<Subscriptions>,
    /// It has sent a request.
    spoke: Cell<bool>,
    /// A request of its own is with the runtime.
    busy: Cell<bool>,
    /// When it connected or last sent a request.
    active: Cell<Instant>,
}

impl Client {
    pub(crate) fn new(serial: u64) -> Client {
        Client {
            serial,
            queue: RefCell::new(VecDeque::new()),
            queued: Cell::new(0),
            wake: Notify::new(),
            eof: Cell::new(false),
            closing: Cell::new(false),
            hung_up: Notify::new(),
            subs: RefCell::new(Subscriptions::default()),
            spoke: Cell::new(false),
            busy: Cell::new(false),
            active: Cell::new(Instant::now()),
        }
    }

    /// Sends `why` and closes the connection once it is written (or after `LAST_WORDS`).
    fn disconnect(&self, why: &str) {
        self.send(messages::error(&Value::Null, why));
        self.closing.set(true);
        self.wake.notify_one();
    }

    /// Whether it may be closed to make room for a newcomer, and how idle it is: one that
    /// follows nothing and waits for no reply, silent ones first, then the longest idle.
    fn idle(&self) -> Option<(bool, Instant)> {
        let idle = !self.closing.get() && !self.busy.get() && !self.follows();
        idle.then(|| (self.spoke.get(), self.active.get()))
    }

    /// Queues a line; a client too far behind is dropped instead, and told why.
    pub fn send(&self, line: Vec<u8>) {
        if self.closing.get() {
            return;
        }
        let queued = self.queued.get() + line.len();
        if queued > MAX_QUEUED {
            tracing::warn!(client = self.serial, "control client too far behind: disconnected");
            let mut q = self.queue.borrow_mut();
            q.clear();
            q.push_back(messages::error(
                &Value::Null,
                "disconnected: not reading fast enough (its queue is full)",
            ));
            self.queued.set(0);
            self.closing.set(true);
        } else {
            self.queue.borrow_mut().push_back(line);
            self.queued.set(queued);
        }
        self.wake.notify_one();
    }

    /// `logs -f`: the output of `keys`' workers (everyone's: `None`) follows, as items
    /// of request `id`.
    pub fn follow_logs(&self, id: Value, keys: Option<Vec<WorkerKey>>) {
        self.subs.borrow_mut().logs = Some((id, keys));
    }

    /// `events -f`: every event follows, as items of request `id`.
    pub fn follow_events(&self, id: Value) {
        self.subs.borrow_mut().events = Some(id);
    }

    /// `view`: frames follow (the runtime's viewers send them).
    pub fn follow_view(&self) {
        self.subs.borrow_mut().view = true;
    }

    /// Takes everything queued, as if written (for tests of what a client is sent).
    #[cfg(test)]
    pub(crate) fn take_queued(&self) -> Vec<Vec<u8>> {
        self.queued.set(0);
        self.queue.borrow_mut().drain(..).collect()
    }

    /// Bytes waiting to be written to this client.
    pub fn queued(&self) -> usize {
        self.queued.get()
    }

    pub fn follows(&self) -> bool {
        let subs = self.subs.borrow();
        subs.logs.is_some() || subs.events.is_some() || subs.view
    }

    /// The next line to write; it counts as queued until [`Client::written`].
    fn pop(&self) -> Option<Vec<u8>> {
        self.queue.borrow_mut().pop_front()
    }

    fn written(&self, len: usize) {
        self.queued.set(self.queued.get().saturating_sub(len));
    }

    fn finished(&self) -> bool {
        self.queue.borrow().is_empty()
            && (self.closing.get() || (self.eof.get() && !self.follows()))
    }
}

/// Every connected client, and the events kept for newcomers.
#[derive(Default)]
struct Clients {
    next: u64,
    live: HashMap<u64, Rc<Client>>,
    /// Recent events (not output), encoded as docs/output.md says, oldest first.
    recent: VecDeque<Vec<u8>>,
    recent_bytes: usize,
}

/// The clients, shared on the runtime's thread by the accept and serve tasks and the
/// runtime. WHY a `RefCell` behind an `Rc`: every borrow lasts one method call and none is
/// handed out or held across an `.await`, so two cannot meet.
#[derive(Clone, Default)]
pub struct SharedClients(Rc<RefCell<Clients>>);

impl SharedClients {
    /// Keeps `event` (one JSON object of docs/output.md) and sends it to the clients that follow events.
    pub fn event(&self, event: &[u8]) {
        self.0.borrow_mut().event(event);
    }

    /// Whether anyone follows `key`'s output (so it is worth encoding).
    pub fn wants_output(&self, key: WorkerKey) -> bool {
        self.0.borrow().wants_output(key)
    }

    pub fn output(&self, key: WorkerKey, line: &[u8]) {
        self.0.borrow().output(key, line);
    }

    /// Whether client `serial` is still connected.
    pub fn is_live(&self, serial: u64) -> bool {
        self.0.borrow().live.contains_key(&serial)
    }

    /// Whether some client has lines not written yet.
    pub fn any_queued(&self) -> bool {
        self.0.borrow().live.values().any(|c| c.queued() > 0)
    }

    /// The reply to `events`: the events kept, as a list for request `id`.
    pub fn recent(&self, id: &Value) -> Vec<u8> {
        let clients = self.0.borrow();
        messages::ok_list(id, "events", clients.recent.iter().map(Vec::as_slice))
    }

    /// A newcomer's place, if one can be made (see `make_room`).
    fn admit(&self) -> Option<Rc<Client>> {
        if !make_room(&self.0.borrow()) {
            return None;
        }
        let mut all = self.0.borrow_mut();
        all.next += 1;
        let client = Rc::new(Client::new(all.next));
        all.live.insert(client.serial, Rc::clone(&client));
        Some(client)
    }

    fn remove(&self, serial: u64) {
        self.0.borrow_mut().live.remove(&serial);
    }
}

impl Clients {
    fn event(&mut self, event: &[u8]) {
        if event.len() <= KEEP_EVENT_MAX {
            self.recent_bytes += event.len();
            self.recent.push_back(event.to_vec());
            while self.recent.len() > KEEP_EVENTS || self.recent_bytes > KEEP_EVENT_BYTES {
                let Some(old) = self.recent.pop_front() else { break };
                self.recent_bytes -= old.len();
            }
        }
        for client in self.live.values() {
            if let Some(id) = &client.subs.borrow().events {
                client.send(messages::item(id, event));
            }
        }
    }

    fn wants_output(&self, key: WorkerKey) -> bool {
        self.live.values().any(|c| match &c.subs.borrow().logs {
            Some((_, None)) => true,
            Some((_, Some(keys))) => keys.contains(&key),
            None => false,
        })
    }

    fn output(&self, key: WorkerKey, line: &[u8]) {
        for client in self.live.values() {
            let subs = client.subs.borrow();
            if let Some((id, keys)) = &subs.logs
                && keys.as_ref().is_none_or(|k| k.contains(&key))
            {
                client.send(messages::item(id, line));
            }
        }
    }
}

/// Accepts clients until the runtime ends; `hello` is each one's first line.
pub async fn accept(
    listener: tokio::net::UnixListener,
    clients: SharedClients,
    requests: mpsc::UnboundedSender<Incoming>,
    hello: Rc<dyn Fn() -> Vec<u8>>,
) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // EMFILE and the like: wait instead of spinning on the error.
                tracing::warn!("control socket: cannot accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if !allowed(&stream) {
            tracing::warn!("control socket: refused a connection from another user");
            let mut stream = stream;
            let refusal =
                messages::error(&Value::Null, "permission denied: not this user's corral");
            let _ = tokio::time::timeout(LAST_WORDS, stream.write_all(&refusal)).await;
            continue;
        }
        let Some(client) = clients.admit() else {
            let mut stream = stream;
            let busy = messages::error(&Value::Null, "too many clients: try again later");
            let _ = tokio::time::timeout(LAST_WORDS, stream.write_all(&busy)).await;
            continue;
        };
        client.send(hello());
        tokio::task::spawn_local(serve(stream, client, clients.clone(), requests.clone()));
    }
}

/// Whether a newcomer may be served: under `MAX_CLIENTS`, or after the idlest client that
/// follows nothing was disconnected for it. Only clients that are following, or waiting for
/// a reply, can keep a newcomer out.
fn make_room(clients: &Clients) -> bool {
    let open = clients.live.values().filter(|c| !c.closing.get());
    if open.count() < MAX_CLIENTS {
        return true;
    }
    let idlest = clients.live.values().filter_map(|c| Some((c.idle()?, c))).min_by_key(|(k, _)| *k);
    let Some((_, client)) = idlest else { return false };
    tracing::warn!(client = client.serial, "control: closing an idle client for a newcomer");
    client.disconnect("disconnected: idle while another client needed the place");
    true
}

/// Only this user (or root) may steer this corral.
fn allowed(stream: &UnixStream) -> bool {
    let Ok(cred) = stream.peer_cred() else { return false };
    let me = nix::unistd::geteuid().as_raw();
    cred.uid() == me || cred.uid() == 0
}

async fn serve(
    stream: UnixStream,
    client: Rc<Client>,
    clients: SharedClients,
    requests: mpsc::UnboundedSender<Incoming>,
) {
    let (mut read, write) = stream.into_split();
    let writer = tokio::task::spawn_local(write_queue(write, Rc::clone(&client)));
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = vec![0u8; 16 * 1024];
    let mut first = true;
    let identify_by = tokio::time::Instant::now() + IDENTIFY_WITHIN;
    'reading: while !client.closing.get() {
        let n = tokio::select! {
            read = read.read(&mut chunk) => match read {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            },
            () = client.hung_up.notified() => break,
            () = tokio::time::sleep_until(identify_by), if first => {
                tracing::warn!(client = client.serial, "control client sent no request: closed");
                let secs = IDENTIFY_WITHIN.as_secs();
                client.disconnect(&format!("no request within {secs}s: disconnected"));
                break;
            }
        };
        buf.extend_from_slice(&chunk[..n]);
        while let Some(end) = memchr::memchr(b'\n', &buf) {
            let line: Vec<u8> = buf.drain(..=end).collect();
            let line = line.strip_suffix(b"\n").unwrap_or(&line);
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let (id, command) = messages::parse(line, first);
            let refused_version =
                matches!(command, Err(BadRequest::Version(_) | BadRequest::NoVersion));
            first = false;
            client.spoke.set(true);
            client.busy.set(true);
            client.active.set(Instant::now());
            let (done, wait) = oneshot::channel();
            let incoming = Incoming { client: Rc::clone(&client), id, command, done };
            if requests.send(incoming).is_err() {
                break 'reading; // the runtime is gone
            }
            // One request at a time per client: a flood of requests waits here, not in
            // the supervisor's memory.
            let _ = wait.await;
            client.busy.set(false);
            if refused_version {
                client.closing.set(true);
                client.wake.notify_one();
                break 'reading;
            }
        }
        if buf.len() > MAX_LINE {
            client.send(messages::error(&Value::Null, "request line over 1 MiB: disconnected"));
            client.closing.set(true);
            client.wake.notify_one();
            break;
        }
    }
    client.eof.set(true);
    client.wake.notify_one();
    let _ = writer.await;
    clients.remove(client.serial);
    tracing::debug!(client = client.serial, "control client gone");
}

async fn write_queue(write: OwnedWriteHalf, client: Rc<Client>) {
    write_until_done(write, &client).await;
    client.closing.set(true);
    // notify_one keeps the wake-up for a reader that is not waiting yet.
    client.hung_up.notify_one();
}

async fn write_until_done(mut write: OwnedWriteHalf, client: &Client) {
    loop {
        while let Some(line) = client.pop() {
            let written = if client.closing.get() {
                tokio::time::timeout(LAST_WORDS, write.write_all(&line)).await.unwrap_or(Ok(()))
            } else {
                write.write_all(&line).await
            };
            if written.is_err() {
                client.closing.set(true);
                return;
            }
            client.written(line.len());
        }
        if client.finished() {
            let _ = write.shutdown().await;
            return;
        }
        if client.eof.get() && client.follows() {
            // It follows but has stopped talking: gone entirely, or only half-closed
            // (`nc -U` after its input ended). Only a write tells which, so an idle one
            // gets an empty line now and then; a gone one frees its place.
            let woken = tokio::time::timeout(PROBE_EVERY, client.wake.notified()).await;
            if woken.is_err() && write.write_all(b"\n").await.is_err() {
                return;
            }
        } else {
            client.wake.notified().await;
        }
    }
}
