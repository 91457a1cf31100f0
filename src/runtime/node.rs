//! corral as the Node cluster primary (docs/node.md): each Node worker's channel carries
//! Node's internal cluster messages, answered here with sockets from the port broker; and
//! messages to a worker (`ctl send`, the disconnect of a graceful stop) are written here,
//! in order, one passed handle at a time as Node requires.
//!
//! Owns: one session per live Node-IPC generation (what it was sent, what it owes), the
//! port broker. Never touches: the core (it returns inputs), the hub, processes.

use std::cell::Cell;
use std::collections::{HashMap, VecDeque};
use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd};
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use nix::errno::Errno;
use nix::sys::socket::{ControlMessage, MsgFlags, send, sendmsg};
use tokio::sync::mpsc;

mod rr;

use self::rr::{MAX_UNANSWERED, Member, RoundRobin, Unanswered};
use super::ports::PortBroker;
use super::streams::Reader;
use crate::core::{Input, WorkerKey};
use crate::protocol::node_cluster::{self as wire, WorkerSays};

/// Cluster messages of one channel waiting for the main loop, at most, in count and bytes:
/// a worker's flood beyond is dropped and counted, and never delays another worker's
/// messages (one that follows Node's protocol sends a few per server).
const MAX_PENDING_LINES: usize = 256;
const MAX_PENDING_BYTES: usize = 1 << 20;

/// Messages queued for one worker, at most: a worker that asks and never reads gets no
/// more answers, and corral's memory stays bounded.
const MAX_OUTBOX: usize = 64;

/// Replies to Node's own requests queued for one worker, at most: one per server it may
/// hold, and room for the rest (a burst of `listen()` calls waits for each handle's ack).
const MAX_OUTBOX_CLUSTER: usize = MAX_SERVERS + MAX_OUTBOX;

/// Servers one worker may hold at once (each `listen()` is one).
const MAX_SERVERS: usize = 256;

/// Times a handle the worker says it lost is sent again (Node's own limit).
const MAX_RESENDS: u8 = 3;

/// A cluster line or the end of a channel, from a stream reader to the main loop.
pub struct Inbound {
    pub key: WorkerKey,
    pub generation: u32,
    pub what: InboundKind,
    /// Counts the line against its channel's share until it is handled.
    _ticket: Option<Ticket>,
}

/// What one channel has waiting for the main loop.
#[derive(Default)]
struct Pending {
    lines: Cell<usize>,
    bytes: Cell<usize>,
}

struct Ticket {
    pending: Rc<Pending>,
    bytes: usize,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.pending.lines.set(self.pending.lines.get().saturating_sub(1));
        self.pending.bytes.set(self.pending.bytes.get().saturating_sub(self.bytes));
    }
}

/// One channel's way to the main loop, held by its reader.
pub struct NodeLink {
    tx: mpsc::UnboundedSender<Inbound>,
    pending: Rc<Pending>,
}

impl NodeLink {
    /// False when the channel has its share waiting already (a flood): the line is dropped.
    pub fn send(&self, key: WorkerKey, generation: u32, what: InboundKind) -> bool {
        let ticket = match &what {
            InboundKind::Line(line) => {
                let (lines, bytes) = (self.pending.lines.get(), self.pending.bytes.get());
                if lines >= MAX_PENDING_LINES || bytes + line.len() > MAX_PENDING_BYTES {
                    return false;
                }
                self.pending.lines.set(lines + 1);
                self.pending.bytes.set(bytes + line.len());
                Some(Ticket { pending: Rc::clone(&self.pending), bytes: line.len() })
            }
            InboundKind::Closed => None,
        };
        self.tx.send(Inbound { key, generation, what, _ticket: ticket }).is_ok()
    }
}

pub enum InboundKind {
    Line(Vec<u8>),
    Closed,
}

/// What the main loop must do after a message: feed the core, or count a worker's bad line.
#[derive(Debug, PartialEq)]
pub enum Effect {
    Input(Input),
    ProtocolError { key: WorkerKey, pid: u32 },
}

/// Why `ctl send` could not deliver.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SendError {
    #[error("its channel is not Node IPC (start it with --node-ipc on)")]
    NotNode,
    #[error("its channel is closed")]
    Closed,
    #[error("it has {MAX_OUTBOX} messages waiting that it has not read")]
    Full,
}

pub struct NodeChannels {
    sessions: HashMap<(WorkerKey, u32), Session>,
    broker: Arc<Mutex<PortBroker>>,
    /// Per group: `listening` makes a worker ready (it has no other readiness).
    ready_on_listen: Vec<bool>,
    tx: mpsc::UnboundedSender<Inbound>,
    rx: mpsc::UnboundedReceiver<Inbound>,
    /// Group names, for diagnostics.
    names: Vec<String>,
    /// Per group: corral accepts and hands out connections (`--node-cluster-sched rr`).
    round_robin: Vec<bool>,
    rr: RoundRobin,
}

/// What the Node channels have for the main loop.
pub enum NodeEvent {
    Inbound(Inbound),
    /// A connection corral accepted on a round-robin socket.
    Connection(usize, OwnedFd),
}

struct Session {
    channel: Rc<Reader>,
    pid: u32,
    /// The group has Node's cluster on (else the channel only carries user messages).
    cluster: bool,
    /// The worker said `online`: it runs Node's cluster code and will answer `disconnect`.
    online: bool,
    /// corral's own message numbers, as Node's primary keeps them per worker.
    seq: u64,
    /// A handle was sent and its `NODE_HANDLE_ACK` has not come: hold everything else.
    inflight: Option<Outgoing>,
    resends: u8,
    outbox: VecDeque<Outgoing>,
    /// The worker's live servers: their keys, and the inode of the socket each was given.
    servers: HashMap<String, u64>,
    /// Round-robin connections handed to this worker and not yet answered.
    unanswered: Unanswered,
    closed: bool,
    /// The last write would have blocked: try again on the next retry tick.
    blocked: bool,
}

struct Outgoing {
    bytes: Vec<u8>,
    sent: usize,
    /// Rides on the first byte (`SCM_RIGHTS`); a copy, closed once the worker has its own.
    fd: Option<OwnedFd>,
}

impl NodeChannels {
    pub fn new(
        broker: Arc<Mutex<PortBroker>>,
        ready_on_listen: Vec<bool>,
        round_robin: Vec<bool>,
        names: Vec<String>,
    ) -> NodeChannels {
        let (tx, rx) = mpsc::unbounded_channel();
        let sessions = HashMap::new();
        let rr = RoundRobin::new();
        NodeChannels { sessions, broker, ready_on_listen, tx, rx, names, round_robin, rr }
    }

    /// Group `group` stopped: its shared sockets close (and round-robin stops accepting).
    pub fn group_stopped(&mut self, group: u16) {
        self.rr.forget_group(group);
        let closed = self.broker.lock().map_or(0, |mut b| b.close_group(group));
        if closed > 0 {
            let name = self.names.get(usize::from(group)).map_or("?", String::as_str);
            tracing::info!("{name} stopped: {closed} shared socket(s) closed");
        }
    }

    /// A worker closed a server: when no live worker holds its socket any more (a reload
    /// onto another port, a server the app closed for good), it closes, so clients are
    /// refused instead of queued for nobody. A worker that dies closes nothing: its
    /// replacement takes the socket over.
    fn close_if_unheld(&mut self, group: u16, inode: u64) {
        if self.sessions.values().any(|s| s.servers.values().any(|&held| held == inode)) {
            return;
        }
        self.rr.forget_socket(inode);
        if self.broker.lock().is_ok_and(|mut b| b.close_socket(group, inode)) {
            let name = self.names.get(usize::from(group)).map_or("?", String::as_str);
            tracing::info!("{name}: a socket no worker listens on any more closed");
        }
    }

    /// Where a reader sends a Node channel's internal lines and its end.
    pub fn link(&self) -> NodeLink {
        NodeLink { tx: self.tx.clone(), pending: Rc::new(Pending::default()) }
    }

    pub async fn recv(&mut self) -> Option<NodeEvent> {
        tokio::select! {
            Some(inbound) = self.rx.recv() => Some(NodeEvent::Inbound(inbound)),
            Some((at, conn)) = self.rr.next() => Some(NodeEvent::Connection(at, conn)),
            else => None,
        }
    }

    /// Hands a connection corral accepted to the next worker listening on its socket.
    pub fn dispatch(&mut self, at: usize, conn: OwnedFd) {
        let sessions = &mut self.sessions;
        self.rr.hand_out(at, conn, |member, conn| hand_to(sessions, at, member, conn));
    }

    /// Connections that waited for a worker go out again.
    fn redispatch(&mut self) {
        for (at, conn) in self.rr.waiting() {
            self.dispatch(at, conn);
        }
    }

    /// A Node-IPC generation was spawned.
    pub fn open(
        &mut self,
        key: WorkerKey,
        generation: u32,
        pid: u32,
        channel: Rc<Reader>,
        cluster: bool,
    ) {
        let session = Session {
            channel,
            pid,
            cluster,
            online: false,
            seq: 0,
            inflight: None,
            resends: 0,
            outbox: VecDeque::new(),
            servers: HashMap::new(),
            unanswered: Unanswered::new(),
            closed: false,
            blocked: false,
        };
        self.sessions.insert((key, generation), session);
    }

    /// The generation is released: its queued messages and their handles go with it, and
    /// connections it was handed and did not answer go to another worker.
    pub fn close(&mut self, key: WorkerKey, generation: u32) {
        let Some(session) = self.sessions.remove(&(key, generation)) else { return };
        self.rr.leave(|m| m.key == key && m.generation == generation);
        for (_, (at, conn)) in session.unanswered {
            self.dispatch(at, conn);
        }
    }

    pub fn any_blocked(&self) -> bool {
        self.sessions.values().any(|s| s.blocked)
    }

    /// Writes what waits behind a full socket buffer.
    pub fn retry(&mut self) {
        for session in self.sessions.values_mut().filter(|s| s.blocked) {
            session.blocked = false;
            session.flush();
        }
    }

    pub fn on_inbound(&mut self, inbound: Inbound) -> Vec<Effect> {
        let Inbound { key, generation, what, .. } = inbound;
        let mut effects = Vec::new();
        let Some(session) = self.sessions.get_mut(&(key, generation)) else {
            return effects; // released meanwhile, or not a Node channel
        };
        let line = match what {
            InboundKind::Closed => {
                session.closed = true;
                session.outbox.clear();
                session.inflight = None;
                if session.cluster {
                    effects.push(Effect::Input(Input::DisconnectDone { key, generation }));
                }
                return effects;
            }
            InboundKind::Line(line) => line,
        };
        if !session.cluster {
            return effects; // Node's own internals outside a cluster: nothing for corral
        }
        let Some(said) = wire::decode(&line) else {
            let excerpt =
                crate::text::escape(&String::from_utf8_lossy(&line[..line.len().min(120)]), false);
            tracing::debug!(pid = session.pid, "a cluster message corral cannot read: {excerpt}");
            effects.push(Effect::ProtocolError { key, pid: session.pid });
            return effects;
        };
        match said {
            WorkerSays::Online => {
                session.online = true;
                let id = key.id(&self.names).to_string();
                tracing::info!(worker = %id, pid = session.pid, "online (Node cluster worker)");
            }
            WorkerSays::QueryServer(query) => {
                let id = key.id(&self.names).to_string();
                let rr = self.round_robin.get(usize::from(key.group)).copied().unwrap_or(false);
                let rr = rr.then_some((&mut self.rr, generation));
                let fine = match self.broker.lock() {
                    Ok(mut broker) => answer_query(session, &mut broker, key, rr, &query, &id),
                    Err(_) => false,
                };
                if !fine {
                    effects.push(Effect::ProtocolError { key, pid: session.pid });
                }
                self.redispatch();
            }
            WorkerSays::Listening => {
                if self.ready_on_listen.get(usize::from(key.group)).copied().unwrap_or(false) {
                    effects.push(Effect::Input(Input::Ready { key, generation }));
                }
            }
            WorkerSays::Close { key: server } => {
                // Nothing corral holds is released: the socket is the group's.
                let inode = session.servers.remove(&server);
                self.rr.leave(|m| m.key == key && m.generation == generation && m.server == server);
                if let Some(inode) = inode {
                    self.close_if_unheld(key.group, inode);
                }
            }
            WorkerSays::ExitedAfterDisconnect { seq } => {
                let id = key.id(&self.names).to_string();
                tracing::info!(worker = %id, pid = session.pid, "disconnected by itself");
                let reply = wire::ack(session.next_seq(), seq);
                if !session.queue(reply, None) {
                    effects.push(Effect::ProtocolError { key, pid: session.pid });
                }
            }
            WorkerSays::HandleAck => {
                session.inflight = None;
                session.resends = 0;
                session.flush();
            }
            WorkerSays::HandleNack => session.resend(),
            WorkerSays::Accepted { ack, accepted } => {
                let handed = session.unanswered.remove(&ack);
                if let (Some((at, conn)), false) = (handed, accepted) {
                    // Closing, or at its maxConnections: another worker takes it.
                    self.dispatch(at, conn);
                }
                self.redispatch();
            }
            WorkerSays::Ignored => {}
        }
        effects
    }

    /// A graceful stop begins. `None`: the worker is asked to disconnect, and
    /// `DisconnectDone` follows when its channel closes. `Some(CannotDisconnect)`: nothing
    /// to wait for (not a cluster worker, or its channel is closed).
    pub fn disconnect(&mut self, key: WorkerKey, generation: u32) -> Option<Input> {
        let done = Some(Input::CannotDisconnect { key, generation });
        let session = self.sessions.get_mut(&(key, generation))?;
        if !session.cluster || session.closed || !session.online {
            return done;
        }
        let line = wire::disconnect(session.next_seq());
        if session.queue(line, None) { None } else { done }
    }

    /// `ctl send`: one JSON value (already checked) to the worker's `process.on('message')`.
    pub fn send_user(
        &mut self,
        key: WorkerKey,
        generation: u32,
        json: &[u8],
    ) -> Result<(), SendError> {
        let session = self.sessions.get_mut(&(key, generation)).ok_or(SendError::NotNode)?;
        if session.closed {
            return Err(SendError::Closed);
        }
        let mut line = Vec::with_capacity(json.len() + 1);
        line.extend_from_slice(json);
        line.push(b'\n');
        if session.queue_user(line) { Ok(()) } else { Err(SendError::Full) }
    }
}

/// Answers one `queryServer`; false when the worker overstepped a bound (counted).
fn answer_query(
    session: &mut Session,
    broker: &mut PortBroker,
    worker: WorkerKey,
    rr: Option<(&mut RoundRobin, u32)>,
    query: &wire::ServerQuery,
    id: &str,
) -> bool {
    let group = worker.group;
    let key = query.key();
    let seq = session.next_seq();
    if session.servers.len() >= MAX_SERVERS || session.servers.contains_key(&key) {
        let errno =
            if session.servers.contains_key(&key) { libc::EADDRINUSE } else { libc::EMFILE };
        session.queue(wire::error_reply(seq, query.seq, &key, wire::uv_errno(errno)), None);
        return false;
    }
    let udp = matches!(query.transport, wire::Transport::Udp4 | wire::Transport::Udp6);
    let error = |errno: i32| wire::error_reply(seq, query.seq, &key, wire::uv_errno(errno));
    let (line, fd, served) = match broker.serve(group, query) {
        Ok(served) => {
            let inode = nix::sys::stat::fstat(served.fd).map_or(0, |st| st.st_ino);
            match rr {
                Some((rr, generation)) if !udp => {
                    let member = Member { key: worker, generation, server: key.clone() };
                    match rr.join(served.fd, member) {
                        Ok(_) => {
                            let sockname = socket2::SockRef::from(&served.fd)
                                .local_addr()
                                .ok()
                                .and_then(|a| a.as_socket());
                            let data = served.data;
                            let line =
                                wire::round_robin_reply(seq, query.seq, &key, data, sockname);
                            (line, None, Some(inode))
                        }
                        Err(e) => (error(e.raw_os_error().unwrap_or(libc::EMFILE)), None, None),
                    }
                }
                _ => match served.fd.try_clone_to_owned() {
                    Ok(fd) => {
                        let line =
                            wire::shared_reply(seq, query.seq, &key, served.data, served.kind);
                        (line, Some(fd), Some(inode))
                    }
                    Err(e) => (error(e.raw_os_error().unwrap_or(libc::EMFILE)), None, None),
                },
            }
        }
        Err(errno) => {
            tracing::info!(worker = %id, "cannot serve {key}: {}", Errno::from_raw(errno).desc());
            (error(errno), None, None)
        }
    };
    if !session.queue(line, fd) {
        return false;
    }
    if let Some(inode) = served {
        session.servers.insert(key, inode);
    }
    true
}

/// Queues a round-robin connection to `member`'s worker; false when it cannot take one now.
fn hand_to(
    sessions: &mut HashMap<(WorkerKey, u32), Session>,
    at: usize,
    member: &Member,
    conn: &OwnedFd,
) -> bool {
    let Some(session) = sessions.get_mut(&(member.key, member.generation)) else {
        return false;
    };
    if session.closed || session.unanswered.len() >= MAX_UNANSWERED {
        return false;
    }
    let (Ok(sent), Ok(kept)) = (conn.try_clone(), conn.try_clone()) else {
        return false;
    };
    let seq = session.next_seq();
    if !session.queue(wire::new_connection(seq, &member.server), Some(sent)) {
        return false;
    }
    session.unanswered.insert(seq, (at, kept));
    true
}

impl Session {
    fn next_seq(&mut self) -> u64 {
        let seq = self.seq;
        self.seq += 1;
        seq
    }

    /// Queues a reply to Node's own request (and a handle); false when the worker has far
    /// too much unread.
    fn queue(&mut self, bytes: Vec<u8>, fd: Option<OwnedFd>) -> bool {
        self.queue_within(bytes, fd, MAX_OUTBOX_CLUSTER)
    }

    /// Queues a message of corral's own (`ctl send`, the disconnect): false beyond
    /// `MAX_OUTBOX` unread.
    fn queue_user(&mut self, bytes: Vec<u8>) -> bool {
        self.queue_within(bytes, None, MAX_OUTBOX)
    }

    fn queue_within(&mut self, bytes: Vec<u8>, fd: Option<OwnedFd>, max: usize) -> bool {
        if self.closed || self.outbox.len() >= max {
            return false;
        }
        self.outbox.push_back(Outgoing { bytes, sent: 0, fd });
        self.flush();
        true
    }

    fn resend(&mut self) {
        let Some(mut lost) = self.inflight.take() else { return };
        if self.resends >= MAX_RESENDS {
            tracing::warn!(
                pid = self.pid,
                "a Node worker lost a passed socket {MAX_RESENDS} times; not sent again"
            );
            self.resends = 0;
            self.flush();
            return;
        }
        self.resends += 1;
        lost.sent = 0;
        self.outbox.push_front(lost);
        self.flush();
    }

    /// Writes queued messages until one carries a handle (then waits for its ack), the
    /// socket is full, or nothing is left.
    fn flush(&mut self) {
        while self.inflight.is_none() && !self.closed {
            let Some(out) = self.outbox.front_mut() else { return };
            match write_some(self.channel.raw_fd(), out) {
                Ok(false) => {}
                Ok(true) => {
                    if let Some(done) = self.outbox.pop_front()
                        && done.fd.is_some()
                    {
                        self.inflight = Some(done);
                    }
                }
                Err(Errno::EAGAIN) => {
                    self.blocked = true;
                    return;
                }
                Err(_) => {
                    // The worker is gone or closed its end; its exit is the kernel's to say.
                    self.closed = true;
                    self.outbox.clear();
                    return;
                }
            }
        }
    }
}

/// One write of what is left of `out`; true when all of it is written.
fn write_some(channel: i32, out: &mut Outgoing) -> nix::Result<bool> {
    // MSG_NOSIGNAL: a closed peer is EPIPE, not a signal; MSG_DONTWAIT: a worker that does
    // not read never blocks corral.
    let flags = MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_DONTWAIT;
    let rest = &out.bytes[out.sent..];
    let n = loop {
        let result = match (&out.fd, out.sent) {
            (Some(fd), 0) => {
                let fds = [fd.as_raw_fd()];
                let rights = [ControlMessage::ScmRights(&fds)];
                sendmsg::<()>(channel, &[IoSlice::new(rest)], &rights, flags, None)
            }
            _ => send(channel, rest, flags),
        };
        match result {
            Err(Errno::EINTR) => {}
            other => break other?,
        }
    };
    out.sent += n;
    Ok(out.sent >= out.bytes.len())
}
