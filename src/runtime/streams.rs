//! Reading a worker generation's stdout, stderr and event channel: line by line, bounded,
//! drainable on demand so a worker's `exited` always comes after everything it wrote.
//! Reading pauses while output is held back (a slow stdout, a slow or full disk under the
//! log files): the worker's own writes then block, and nothing it wrote is dropped.

use std::cell::RefCell;
use std::os::fd::{AsRawFd, OwnedFd};
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::socket::{MsgFlags, send};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use super::hub::{Hub, Reports};
use super::node::{InboundKind, NodeLink};
use crate::core::Stream;
use crate::core::{Input, WorkerKey};
use crate::protocol::{self, LineSplitter, Message, Overflow, Piece, ProtocolError};
use crate::report::{MessageKind, Record};

/// Output lines longer than this are split into several.
pub const MAX_OUTPUT_LINE: usize = 16 * 1024;

/// Heartbeats reach the core at most this often per worker: a flood of them costs one
/// input, and a timeout of seconds does not need finer news.
const HEARTBEAT_EVERY: Duration = Duration::from_millis(100);

/// Protocol errors are reported at most this often per worker (the count says the rest).
const ERROR_REPORT_EVERY: Duration = Duration::from_secs(1);

/// Reads a turn for a stream whose lines only the in-memory tail wants: its reads are
/// gathered and only the lines the tail keeps are looked at, once per turn, so a flood
/// costs about what reading it costs.
const FLOOD_READS: usize = 64;

/// A drain on exit reads at most this much per stream: what the pipe held when the
/// leader was reaped (a pipe holds at most 1 MiB unless root raised the limit).
const MAX_DRAIN: usize = 1024 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Output(Stream),
    Events,
}

pub struct Reader {
    fd: AsyncFd<OwnedFd>,
    state: RefCell<State>,
}

struct State {
    key: WorkerKey,
    /// `web.2`, for diagnostics.
    id: String,
    generation: u32,
    pid: u32,
    kind: Kind,
    splitter: LineSplitter,
    eof: bool,
    errors: u64,
    last_report: Option<Instant>,
    last_heartbeat: Option<Instant>,
    /// Tail-only reads of this turn, not yet looked at (see `FLOOD_READS`).
    flood: Vec<u8>,
    /// Bytes before `flood` were dropped unread: what the splitter holds is stale.
    flood_cut: bool,
    /// A Node channel: its internal lines and its end go to the Node sessions.
    node: Option<NodeLink>,
    /// The worker said on stderr that an address was already in use (for a hint).
    addr_in_use: bool,
    /// Reads a pty's master: stdout and stderr in one, and an EIO ends it.
    pty: bool,
}

pub enum Pumped {
    /// Nothing more to read now.
    Drained,
    /// The writer side is closed for good.
    Eof,
    /// The budget ran out with data still waiting.
    More,
    /// Output is held back (a slow stdout): wait for the hub's resume before reading on.
    Held,
}

impl Reader {
    pub fn new(
        fd: OwnedFd,
        kind: Kind,
        key: WorkerKey,
        generation: u32,
        pid: u32,
        id: String,
    ) -> std::io::Result<Rc<Reader>> {
        set_nonblocking(&fd)?;
        let (max, overflow) = match kind {
            Kind::Output(_) => (MAX_OUTPUT_LINE, Overflow::Split),
            Kind::Events => (protocol::MAX_EVENT_LINE, Overflow::Discard),
        };
        let state = State {
            key,
            id,
            generation,
            pid,
            kind,
            splitter: LineSplitter::new(max, overflow),
            eof: false,
            errors: 0,
            last_report: None,
            last_heartbeat: None,
            flood: Vec::new(),
            flood_cut: false,
            node: None,
            addr_in_use: false,
            pty: false,
        };
        // SAFETY: the OwnedFd is moved into the AsyncFd, which owns it (and so keeps it
        // open and unchanged) for its whole lifetime.
        let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }?;
        Ok(Rc::new(Reader { fd, state: RefCell::new(state) }))
    }

    /// This stream is a pty's master (docs/development.md).
    pub fn on_pty(self: Rc<Self>, pty: bool) -> Rc<Self> {
        self.state.borrow_mut().pty = pty;
        self
    }

    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd as _;
        self.fd.get_ref().as_fd()
    }

    /// Whether the worker wrote on stderr that an address was already in use.
    pub fn said_addr_in_use(&self) -> bool {
        self.state.borrow().addr_in_use
    }

    /// Hands this Node channel's internal messages and its end to `node`.
    pub fn forward_to_node(&self, node: NodeLink) {
        self.state.borrow_mut().node = Some(node);
    }

    pub fn raw_fd(&self) -> i32 {
        self.fd.get_ref().as_raw_fd()
    }

    /// Reads what is there, up to `budget` reads, handing every line to the hub; stops
    /// early while output is held back.
    pub fn pump(&self, hub: &mut Hub, budget: usize) -> Pumped {
        self.read(hub, budget, usize::MAX, true)
    }

    /// Reads what the stream holds right now (bounded), held back or not, plus one more
    /// read that sees an EOF: the last words of a worker that was just reaped. Whatever a
    /// leftover descendant keeps writing waits for the next turn, so this always ends.
    pub fn drain_now(&self, hub: &mut Hub) {
        // WHY not FIONREAD on a pty: what the worker wrote reaches the master's buffer a
        // moment later (the kernel moves it from a worker thread), so the count can be
        // short. A read that finds nothing waits for that move first: reading until
        // EAGAIN (or EIO, the slave closed) gets every byte written before the exit.
        let queued = if self.state.borrow().pty { MAX_DRAIN } else { self.queued().min(MAX_DRAIN) };
        if queued > 0 {
            self.read(hub, usize::MAX, queued, false);
        }
        self.read(hub, 1, usize::MAX, false);
    }

    /// Bytes waiting in the pipe or socket.
    fn queued(&self) -> usize {
        let mut n: libc::c_int = 0;
        // WHY raw: nix's ioctl macros only generate unsafe functions; no gain over this.
        // SAFETY: FIONREAD writes one int into `n`, which lives for the call.
        let rc = unsafe { libc::ioctl(self.raw_fd(), libc::FIONREAD, &raw mut n) };
        if rc == 0 { usize::try_from(n).unwrap_or(0) } else { 0 }
    }

    /// At most `reads` reads and `bytes` bytes; `respect_hold`: stop while held back.
    fn read(&self, hub: &mut Hub, reads: usize, bytes: usize, respect_hold: bool) -> Pumped {
        let mut state = self.state.borrow_mut();
        if state.eof {
            return Pumped::Eof;
        }
        let mut scratch = hub.take_scratch();
        let mut outcome = Pumped::More;
        let mut left = bytes;
        let tail_only = matches!(state.kind, Kind::Output(_)) && hub.tail_only(state.key);
        let reads = if tail_only { reads.max(FLOOD_READS) } else { reads };
        for _ in 0..reads {
            if respect_hold && hub.held() {
                outcome = Pumped::Held;
                break;
            }
            if left == 0 {
                break;
            }
            let want = scratch.len().min(left);
            match nix::unistd::read(self.fd.get_ref(), &mut scratch[..want]) {
                Ok(n @ 1..) => {
                    left -= n;
                    tracing::debug!(worker = %state.id, pid = state.pid, kind = ?state.kind, bytes = n, "read");
                    if tail_only {
                        state.gather(&scratch[..n]);
                    } else {
                        state.feed(SystemTime::now(), &scratch[..n], hub);
                    }
                    continue;
                }
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => {
                    outcome = Pumped::Drained;
                    break;
                }
                // Any other error ends the stream like EOF: a pty's master says EIO once
                // no process has the slave open any more.
                Ok(0) | Err(_) => {}
            }
            state.feed_gathered(hub);
            state.finish(hub);
            outcome = Pumped::Eof;
            break;
        }
        state.feed_gathered(hub);
        hub.put_scratch(scratch);
        outcome
    }

    /// The generation is over: read what is left (bounded) and emit a last unfinished
    /// line.
    pub fn close(&self, hub: &mut Hub) {
        self.drain_now(hub);
        self.state.borrow_mut().finish(hub);
    }

    /// Whether this is an event channel whose worker has sent heartbeats.
    pub fn kind(&self) -> Kind {
        self.state.borrow().kind
    }

    pub fn heartbeats(&self) -> bool {
        let state = self.state.borrow();
        state.kind == Kind::Events && state.last_heartbeat.is_some()
    }

    /// Best-effort, never-blocking write to the worker (only the shutdown notice).
    pub fn send(&self, bytes: &[u8]) {
        // MSG_NOSIGNAL turns a closed peer into EPIPE instead of killing corral,
        // MSG_DONTWAIT keeps a worker that does not read from blocking us.
        let _ = send(self.raw_fd(), bytes, MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_DONTWAIT);
    }
}

impl State {
    /// Keeps a tail-only read for the end of the turn, dropping at once what the tail
    /// would drop: everything before its last `KEEP_ENTRIES` complete lines.
    fn gather(&mut self, data: &[u8]) {
        self.flood.extend_from_slice(data);
        if let Some(at) = cut_before_last(&self.flood, super::logs::KEEP_ENTRIES) {
            self.flood.drain(..=at);
            self.flood_cut = true;
        }
    }

    /// Looks at what `gather` kept this turn, with the time of the last read.
    fn feed_gathered(&mut self, hub: &mut Hub) {
        if self.flood.is_empty() {
            return;
        }
        if std::mem::take(&mut self.flood_cut) {
            self.splitter.discard_pending();
        }
        let flood = std::mem::take(&mut self.flood);
        self.feed(SystemTime::now(), &flood, hub);
        self.flood = flood;
        self.flood.clear();
        if self.flood.capacity() > 1024 * 1024 {
            self.flood.shrink_to(64 * 1024);
        }
    }

    /// Handles what one read brought, every line of it stamped `at`, the read's time:
    /// they did arrive together, and asking the clock once per read instead of once per
    /// line is a tenth of a flood's cost.
    fn feed(&mut self, at: SystemTime, data: &[u8], hub: &mut Hub) {
        let (key, generation, pid, kind) = (self.key, self.generation, self.pid, self.kind);
        let mut errors = Vec::new();
        let last_heartbeat = &mut self.last_heartbeat;
        let node = Node { to: self.node.as_ref(), key, generation };
        let addr_in_use = &mut self.addr_in_use;
        let pty = self.pty;
        let mut emit = |piece: Piece<'_>| {
            if let (Kind::Output(stream), Piece::Line(line)) = (kind, &piece)
                && (stream == Stream::Stderr || pty)
            {
                *addr_in_use |= says_addr_in_use(line);
            }
            let heard = handle_piece(hub, at, &node, pid, kind, piece, &mut errors);
            if heard {
                let now = Instant::now();
                if last_heartbeat.is_none_or(|t| now.duration_since(t) >= HEARTBEAT_EVERY) {
                    *last_heartbeat = Some(now);
                    hub.push_input(Input::Heartbeat { key, generation });
                }
            }
        };
        self.splitter.push(data, &mut emit);
        for e in errors {
            self.protocol_error(hub, at, e);
        }
    }

    fn finish(&mut self, hub: &mut Hub) {
        if self.eof {
            return;
        }
        self.eof = true;
        let (key, generation, pid, kind) = (self.key, self.generation, self.pid, self.kind);
        let mut errors = Vec::new();
        let node = Node { to: self.node.as_ref(), key, generation };
        let at = SystemTime::now();
        self.splitter.finish(&mut |piece| {
            if handle_piece(hub, at, &node, pid, kind, piece, &mut errors) {
                hub.push_input(Input::Heartbeat { key, generation });
            }
        });
        node.forward(InboundKind::Closed);
        for e in errors {
            self.protocol_error(hub, at, e);
        }
    }

    fn protocol_error(&mut self, hub: &mut Hub, at: SystemTime, error: ProtocolError) {
        self.errors += 1;
        hub.logs_mut().protocol_error(self.key);
        let now = Instant::now();
        if self.last_report.is_some_and(|t| now.duration_since(t) < ERROR_REPORT_EVERY) {
            return;
        }
        self.last_report = Some(now);
        let (key, pid, count) = (self.key, self.pid, self.errors);
        let id = &self.id;
        tracing::warn!(worker = %id, pid, count, "dropped a {} event line", error.as_str());
        hub.report(at, &Record::ProtocolError { key, pid, error, count });
    }
}

/// Where a Node channel's internal lines go, if this is one.
struct Node<'a> {
    to: Option<&'a NodeLink>,
    key: WorkerKey,
    generation: u32,
}

impl Node<'_> {
    /// False when the main loop has too many waiting (a flood): the line is dropped.
    fn forward(&self, what: InboundKind) -> bool {
        let Some(to) = self.to else { return true };
        to.send(self.key, self.generation, what)
    }
}

fn handle_piece(
    hub: &mut Hub,
    at: SystemTime,
    node: &Node<'_>,
    pid: u32,
    kind: Kind,
    piece: Piece<'_>,
    errors: &mut Vec<ProtocolError>,
) -> bool {
    let (key, generation) = (node.key, node.generation);
    match (kind, piece) {
        (Kind::Output(stream), Piece::Line(line)) => {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            hub.logs_mut().line(at, key, pid, stream, line);
            hub.report(at, &Record::Output { key, pid, stream, line });
        }
        (Kind::Output(_), Piece::Oversized) => {}
        (Kind::Events, Piece::Oversized) => errors.push(ProtocolError::Oversized),
        (Kind::Events, Piece::Line(line)) => match protocol::decode(line) {
            Err(e) => errors.push(e),
            Ok(Message::Internal) => {
                if !node.forward(InboundKind::Line(line.to_vec())) {
                    errors.push(ProtocolError::Malformed);
                }
            }
            Ok(message) => {
                hub.logs_mut().message(key);
                match message {
                    Message::Ready => hub.push_input(Input::Ready { key, generation }),
                    Message::Heartbeat => return true,
                    Message::Internal => {}
                    Message::Status(_)
                    | Message::Log { .. }
                    | Message::Metric { .. }
                    | Message::Custom => {
                        // The line decoded, so it is valid JSON: it is the data, as sent.
                        let (status, kind) = match &message {
                            Message::Status(text) => {
                                (Some(text.as_str()), MessageKind::Status(text.as_str()))
                            }
                            Message::Metric { .. } => (None, MessageKind::Metric),
                            _ => (None, MessageKind::Other),
                        };
                        hub.logs_mut().event(at, key, pid, line, status);
                        hub.report(at, &Record::Message { key, pid, data: line, kind });
                    }
                }
            }
        },
    }
    false
}

/// Python's `Address already in use`, Go's `address already in use`, Node's `EADDRINUSE`.
fn says_addr_in_use(line: &[u8]) -> bool {
    memchr::memmem::find(line, b"already in use").is_some()
        || memchr::memmem::find(line, b"EADDRINUSE").is_some()
}

/// The newline before the last `keep` complete lines of `data`, if it has more.
///
/// WHY two ways: short lines are found fastest by a plain backward scan (`yes` writes
/// two-byte lines: a search call per line was most of a flood's cost), long ones by
/// memchr's search, which skips the bytes between.
fn cut_before_last(data: &[u8], keep: usize) -> Option<usize> {
    const SCAN: usize = 64 * 1024;
    let start = data.len().saturating_sub(SCAN);
    let mut seen = 0;
    for (i, &b) in data[start..].iter().enumerate().rev() {
        if b == b'\n' {
            if seen == keep {
                return Some(start + i);
            }
            seen += 1;
        }
    }
    let before = &data[..start];
    memchr::memrchr_iter(b'\n', before).nth(keep - seen)
}

fn set_nonblocking(fd: &OwnedFd) -> std::io::Result<()> {
    let flags = OFlag::from_bits_retain(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

/// Reads one stream until EOF or until its generation is released (the task is aborted).
pub async fn read_task(reader: Rc<Reader>, hub: Reports) {
    let resumed = hub.resumed();
    loop {
        wait_while_held(&hub, &resumed).await;
        let Ok(mut guard) = reader.fd.readable().await else {
            return;
        };
        // A couple of reads a turn: a worker flooding tiny lines must not keep exits,
        // timers and keys waiting while its megabytes are formatted.
        let outcome = hub.pump(&reader, 2);
        hub.flush();
        match outcome {
            Pumped::Drained => guard.clear_ready(),
            Pumped::Eof => return,
            Pumped::More => {
                drop(guard);
                tokio::task::yield_now().await; // let other workers' streams have a turn
            }
            Pumped::Held => {
                drop(guard);
                // The main loop keeps workers whose heartbeats it cannot hear now alive:
                // wake it so it notices the hold.
                hub.wake();
            }
        }
    }
}

/// Returns once output is not held back.
async fn wait_while_held(hub: &Reports, resumed: &tokio::sync::Notify) {
    loop {
        let notified = resumed.notified();
        tokio::pin!(notified);
        // WHY enable first: the writer thread may release the hold between our check and
        // the await; an enabled `Notified` catches a `notify_waiters` sent after it.
        notified.as_mut().enable();
        if !hub.held() {
            return;
        }
        notified.await;
    }
}

#[cfg(test)]
mod flood_tests {
    use super::cut_before_last;

    /// The cut keeps exactly the last `keep` complete lines (and what follows them), for
    /// short lines, long ones beyond the backward scan, and too few lines.
    #[test]
    fn the_cut_keeps_exactly_the_last_lines() {
        let short: Vec<u8> = (0..5000).flat_map(|i| format!("{i}\n").into_bytes()).collect();
        let at = cut_before_last(&short, 1000).expect("enough lines");
        let kept = std::str::from_utf8(&short[at + 1..]).expect("utf8");
        assert_eq!(kept.lines().count(), 1000);
        assert_eq!(kept.lines().next(), Some("4000"));
        let long: Vec<u8> =
            (0..50).flat_map(|i| format!("{i}{}\n", "x".repeat(4000)).into_bytes()).collect();
        let at = cut_before_last(&long, 30).expect("enough lines");
        assert!(long[at + 1..].starts_with(b"20x"));
        assert_eq!(cut_before_last(b"a\nb\n", 2), None);
        assert_eq!(cut_before_last(b"a\nb\nc\npartial", 2), Some(1));
    }
}
