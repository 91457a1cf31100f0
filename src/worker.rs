//! The worker side of corral: the event channel a worker writes to and the listening sockets
//! it inherits. Runs inside worker processes only; it never touches the primary's state.
//!
//! A program started by corral finds everything in its environment (docs/workers.md):
//!
//! ```no_run
//! use corral::worker::{self, ListenerSocket};
//!
//! // `None` when the program runs outside corral: every report becomes a no-op.
//! let channel = worker::Channel::from_env();
//! for listener in worker::listeners()? {
//!     if let ListenerSocket::Tcp(tcp) = listener.socket {
//!         tcp.set_nonblocking(true)?; // the socket is shared: never accept blocking
//!         // ... hand `tcp` to tokio, then:
//!         if let Some(channel) = &channel {
//!             channel.ready()?;
//!         }
//!     }
//! }
//! # Ok::<(), std::io::Error>(())
//! ```

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use serde::Serialize;
use socket2::{Domain, SockRef, Socket, Type};

pub(crate) mod listen_env;
#[cfg(test)]
mod tests;

/// The variable that names the event channel's fd.
pub const EVENT_FD_VAR: &str = "CORRAL_EVENT_FD";
/// Node's name for the same fd, set when corral announces the channel as Node IPC.
pub const NODE_CHANNEL_FD_VAR: &str = "NODE_CHANNEL_FD";

// Each inherited fd may have only one owner in the process; a second `OwnedFd` for the same
// number would close it twice and could close an unrelated file that reused the number.
static CHANNEL_TAKEN: AtomicBool = AtomicBool::new(false);
static LISTENERS_TAKEN: AtomicBool = AtomicBool::new(false);

/// The event channel to the primary: one JSON value per line (docs/workers.md).
///
/// Every method writes one complete line with a single lock held, so a `Channel` can be shared
/// between threads (`&Channel` or `Arc<Channel>`) without lines interleaving. Writes block
/// until the whole line is in the socket buffer (the primary reads continuously, so this is
/// short), even if someone set `O_NONBLOCK` on the socket.
///
/// An error (`BrokenPipe` once the primary has closed its end) is returned, never raised as
/// `SIGPIPE`. A line cut short by an error corrupts only that line; most programs simply stop
/// reporting after the first error.
///
/// ```
/// use std::io::{BufRead, BufReader};
/// use std::os::unix::net::UnixStream;
///
/// let (ours, primary) = UnixStream::pair()?;
/// let channel = corral::worker::Channel::from_fd(ours.into());
/// channel.status("warming cache 40%")?;
/// let mut line = String::new();
/// BufReader::new(primary).read_line(&mut line)?;
/// assert_eq!(line, "{\"type\":\"status\",\"text\":\"warming cache 40%\"}\n");
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Channel {
    socket: Socket,
    // Reused for every line: reporting a metric each second should not allocate each second.
    line: Mutex<Vec<u8>>,
}

/// The messages with a meaning to the primary; anything else goes through [`Channel::send`].
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Message<'a> {
    Ready,
    Heartbeat,
    Status { text: &'a str },
    Metric { name: &'a str, value: f64 },
    Log { level: &'a str, msg: &'a str },
}

impl Channel {
    /// The channel corral passed to this process, from `CORRAL_EVENT_FD` (or Node's
    /// `NODE_CHANNEL_FD`), or `None` when there is none: the program runs outside corral, the
    /// variable does not name an open Unix stream socket, or the channel was already taken.
    ///
    /// The fd is marked close-on-exec, so the worker's own children do not inherit it. They
    /// do inherit the variable, naming an fd they lack; that is why the fd is checked, and why
    /// spawning with `Command::env_remove(EVENT_FD_VAR)` is tidier.
    ///
    /// Call it once: the second call returns `None`.
    ///
    /// ```
    /// let channel = corral::worker::Channel::from_env();
    /// if let Some(channel) = &channel {
    ///     channel.ready()?;
    /// }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn from_env() -> Option<Channel> {
        [EVENT_FD_VAR, NODE_CHANNEL_FD_VAR]
            .into_iter()
            .filter_map(|name| parse_channel_fd(std::env::var(name).ok()?.as_str()))
            .find(|&fd| is_unix_stream(fd))
            .and_then(|fd| {
                if CHANNEL_TAKEN.swap(true, Ordering::SeqCst) {
                    return None;
                }
                // SAFETY: `is_unix_stream` checked that the fd is open, corral handed it to this
                // process for exactly this use, and CHANNEL_TAKEN makes this the only owner.
                let owned = unsafe { OwnedFd::from_raw_fd(fd) };
                let channel = Channel::from_fd(owned);
                // Failure only lets the worker's children inherit the fd; the channel works.
                let _ = channel.socket.set_cloexec(true);
                Some(channel)
            })
    }

    /// Wraps a connected stream socket, e.g. one end of `UnixStream::pair()` in tests.
    pub fn from_fd(fd: OwnedFd) -> Channel {
        Channel { socket: Socket::from(fd), line: Mutex::new(Vec::with_capacity(128)) }
    }

    /// Tells the primary the worker is serving: `{"type":"ready"}`.
    pub fn ready(&self) -> io::Result<()> {
        self.write_message(&Message::Ready)
    }

    /// Proves liveness for `--heartbeat-timeout`: `{"type":"heartbeat"}`.
    pub fn heartbeat(&self) -> io::Result<()> {
        self.write_message(&Message::Heartbeat)
    }

    /// Sets the short text shown in the worker's row: `{"type":"status","text":…}`.
    pub fn status(&self, text: &str) -> io::Result<()> {
        self.write_message(&Message::Status { text })
    }

    /// Reports the latest value of a named number: `{"type":"metric","name":…,"value":…}`.
    ///
    /// A NaN or infinite value is refused (`InvalidInput`): JSON cannot carry it.
    pub fn metric(&self, name: &str, value: f64) -> io::Result<()> {
        if !value.is_finite() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("metric {name:?}: {value} cannot be sent as JSON"),
            ));
        }
        self.write_message(&Message::Metric { name, value })
    }

    /// Sends a structured log line: `{"type":"log","level":…,"msg":…}`. The primary knows
    /// the levels `info`, `warn` and `error`.
    pub fn log(&self, level: &str, msg: &str) -> io::Result<()> {
        self.write_message(&Message::Log { level, msg })
    }

    /// Sends any JSON value, shown by the primary as a custom event.
    ///
    /// A value that does not serialize to JSON, or an object whose `cmd` starts with
    /// `NODE_` (reserved for Node's internals, which the primary drops), is refused with
    /// `InvalidInput`.
    ///
    /// ```no_run
    /// # let channel = corral::worker::Channel::from_env().expect("run under corral");
    /// channel.send(&serde_json::json!({"type": "cache", "entries": 1200}))?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn send(&self, value: &impl Serialize) -> io::Result<()> {
        self.write_message(value)
    }

    fn write_message(&self, message: &impl Serialize) -> io::Result<()> {
        // A panic while another thread held the lock leaves at most a stale buffer, which is
        // cleared here anyway.
        let mut line = self.line.lock().unwrap_or_else(PoisonError::into_inner);
        line.clear();
        crate::protocol::encode(&mut line, message).map_err(invalid)?;
        self.send_all(&line)
    }

    fn send_all(&self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            // MSG_NOSIGNAL: a closed primary must be an error here, not a SIGPIPE that kills
            // a worker whose program happens to have SIGPIPE at its default disposition.
            match self.socket.send_with_flags(bytes, libc::MSG_NOSIGNAL) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => bytes = &bytes[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => wait_writable(self.as_fd())?,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl Channel {
    /// A sender that batches messages and writes them in chunks of up to 64 KiB: a few
    /// system calls for thousands of messages, for high-rate event streams (a
    /// profiler's samples). Messages leave when the batch is full, on
    /// [`Buffered::flush`], and when the sender is dropped.
    ///
    /// ```no_run
    /// # let channel = corral::worker::Channel::from_env().expect("run under corral");
    /// let mut events = channel.buffered();
    /// for n in 0..100_000 {
    ///     events.send(&serde_json::json!({"type": "sample", "n": n}))?;
    /// }
    /// events.flush()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn buffered(&self) -> Buffered<'_> {
        Buffered { channel: self, batch: Vec::with_capacity(BATCH_BYTES) }
    }
}

/// Bytes a [`Buffered`] sender collects before it writes.
const BATCH_BYTES: usize = 64 * 1024;

/// See [`Channel::buffered`].
#[derive(Debug)]
pub struct Buffered<'a> {
    channel: &'a Channel,
    batch: Vec<u8>,
}

impl Buffered<'_> {
    /// Queues one message (the same rules as [`Channel::send`]); writes the batch once it
    /// is full.
    pub fn send(&mut self, value: &impl Serialize) -> io::Result<()> {
        crate::protocol::encode(&mut self.batch, value).map_err(invalid)?;
        if self.batch.len() >= BATCH_BYTES { self.flush() } else { Ok(()) }
    }

    /// Writes every queued message now.
    pub fn flush(&mut self) -> io::Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        // The channel's lock keeps a batch from interleaving with another thread's lines.
        let _lock = self.channel.line.lock().unwrap_or_else(PoisonError::into_inner);
        let result = self.channel.send_all(&self.batch);
        self.batch.clear();
        result
    }
}

impl Drop for Buffered<'_> {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

impl AsFd for Channel {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

impl AsRawFd for Channel {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}

fn invalid(e: crate::protocol::EncodeError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, e)
}

/// Parses an fd number from the environment. Fds 0–2 are refused: the channel owns its fd,
/// and dropping it must never close the worker's stdio.
fn parse_channel_fd(value: &str) -> Option<RawFd> {
    value.trim().parse().ok().filter(|&fd| fd > 2)
}

/// Whether `fd` is open and is a Unix stream socket, without taking ownership of it.
fn is_unix_stream(fd: RawFd) -> bool {
    inherited_fd(fd).is_some_and(|fd| fd.socket == Some((Domain::UNIX, Type::STREAM)))
}

/// What an inherited descriptor number is, read without taking it.
#[derive(Debug)]
pub(crate) struct InheritedFd {
    /// `None`: not a socket.
    pub socket: Option<(Domain, Type)>,
}

/// What descriptor `fd` is, or `None` when it is not open. WHY: until it is known to be
/// open an inherited fd is only a number, with no `AsFd` to hand nix or socket2; this is
/// the one place that looks at one, with queries that only read.
pub(crate) fn inherited_fd(fd: RawFd) -> Option<InheritedFd> {
    // SAFETY: F_GETFD only reads the descriptor's flags, and any integer is a valid
    // argument. An open fd is borrowed only for the read-only queries below, in this
    // function, which closes nothing.
    let borrowed =
        unsafe { (libc::fcntl(fd, libc::F_GETFD) != -1).then(|| BorrowedFd::borrow_raw(fd)) }?;
    let socket = SockRef::from(&borrowed);
    Some(InheritedFd { socket: socket.domain().ok().zip(socket.r#type().ok()) })
}

/// Blocks until `fd` accepts more bytes, for a channel someone made non-blocking.
fn wait_writable(fd: BorrowedFd<'_>) -> io::Result<()> {
    let mut poll_fds = [PollFd::new(fd, PollFlags::POLLOUT)];
    loop {
        match poll(&mut poll_fds, PollTimeout::NONE) {
            // POLLERR/POLLHUP also end the wait; the next send reports the actual error.
            Ok(_) => return Ok(()),
            Err(Errno::EINTR) => {}
            Err(error) => return Err(error.into()),
        }
    }
}

/// A listening socket inherited from corral (`--listen`), with the name it was announced by.
#[derive(Debug)]
pub struct Listener {
    /// The name from `LISTEN_FDNAMES` (corral uses the `--listen` address); `unknown` when the
    /// parent gave none, as systemd does.
    pub name: String,
    /// The socket itself.
    pub socket: ListenerSocket,
}

/// The two kinds of listening socket corral hands out.
///
/// The sockets are close-on-exec, and are left in whatever blocking mode they came in. That
/// mode is a property of the socket shared by every process holding it (corral, the other
/// workers, and a Node worker that sets `O_NONBLOCK` for all of them), so never `accept` in
/// blocking mode: call `set_nonblocking(true)` and accept through an event loop (tokio's
/// `TcpListener::from_std`, mio, epoll).
#[derive(Debug)]
pub enum ListenerSocket {
    /// A TCP listener (`--listen 3000`, `--listen [::1]:8080`).
    Tcp(std::net::TcpListener),
    /// A Unix stream listener (`--listen unix:/run/app.sock`).
    Unix(std::os::unix::net::UnixListener),
}

/// Takes the listening sockets corral passed as fds 3, 4, … (systemd's socket activation:
/// `LISTEN_FDS`, `LISTEN_PID`, `LISTEN_FDNAMES`), in the order of `--listen`.
///
/// Empty when there are none, or when `LISTEN_PID` names another process (the variables were
/// inherited from a parent that was given the sockets). An fd that is not an open, listening
/// TCP or Unix stream socket is an error.
///
/// Call it once: the fds are then owned by the returned values, and a second call that would
/// take them again is an error.
///
/// ```no_run
/// let listeners = corral::worker::listeners()?;
/// for listener in &listeners {
///     println!("inherited {}", listener.name);
/// }
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn listeners() -> io::Result<Vec<Listener>> {
    let entries = match listen_env::from_env() {
        Ok(listen_env::Announced::Fds(entries)) => entries,
        Ok(listen_env::Announced::Nothing | listen_env::Announced::ForAnother(_)) => Vec::new(),
        Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidInput, e)),
    };
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    if LISTENERS_TAKEN.swap(true, Ordering::SeqCst) {
        return Err(io::Error::other(
            "corral::worker::listeners() called twice: the inherited sockets are already taken",
        ));
    }
    entries
        .into_iter()
        .map(|(fd, name)| {
            let socket = take_listener(fd).map_err(|e| {
                io::Error::new(e.kind(), format!("listening fd {fd} ({name}): {e}"))
            })?;
            Ok(Listener { name, socket })
        })
        .collect()
}

fn take_listener(fd: RawFd) -> io::Result<ListenerSocket> {
    if inherited_fd(fd).is_none() {
        return Err(io::Error::from_raw_os_error(libc::EBADF));
    }
    // SAFETY: the fd is open (checked above); LISTEN_FDS/LISTEN_PID hand it to this very
    // process, and LISTENERS_TAKEN makes this the only owner ever created for it.
    let socket = unsafe { Socket::from_raw_fd(fd) };
    socket.set_cloexec(true)?;
    if socket.r#type()? != Type::STREAM || !socket.is_listener()? {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a listening stream socket"));
    }
    let address = socket.local_addr()?;
    if address.is_unix() {
        Ok(ListenerSocket::Unix(socket.into()))
    } else if address.as_socket().is_some() {
        Ok(ListenerSocket::Tcp(socket.into()))
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("unsupported address family {}", address.family()),
        ))
    }
}
