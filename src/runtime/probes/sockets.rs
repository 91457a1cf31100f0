//! HTTP and TCP probes to an IP address, as sockets polled when the loop wakes anyway
//! (docs/application.md#probes).
//!
//! WHY not a tokio task and registration each: at a thousand probes a second, the task, its
//! two `epoll_ctl` calls in tokio's reactor and the wake-up of the loop at every answer were
//! most of what probes cost. Here every probe's socket is added once to an epoll set of the
//! probes' own, which nobody sleeps on: [`Sockets::poll`] asks it, without waiting, which
//! sockets moved, when the loop is awake for its timers. Closing a socket takes it out of
//! the set, so a probe costs `socket`, `setsockopt`, `connect`, `send`, one `epoll_ctl`,
//! `recv` and `close`, and no wake-up of its own.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use socket2::{Domain, Socket, Type};

use super::net::{MAX_READ, answer, describe};

/// Events taken from the set per `epoll_wait`.
const EVENTS: usize = 256;

/// Probes whose socket is open, by the probes' own number for them.
pub(super) struct Sockets {
    /// Made at the first probe: a corral without network probes has none.
    epoll: Option<Epoll>,
    open: HashMap<u64, Probe>,
    events: Vec<EpollEvent>,
}

struct Probe {
    socket: Socket,
    stage: Stage,
    /// What the set watches the socket for; `None` before it is added.
    interest: Option<EpollFlags>,
}

enum Stage {
    /// A TCP probe: the handshake's end is the answer.
    Handshake,
    /// An HTTP probe's request, sent up to `sent`, waits for the handshake or for room.
    Request { bytes: Vec<u8>, sent: usize },
    /// The status line is read into `buf`.
    Response { buf: [u8; MAX_READ], filled: usize },
}

/// What a probe's socket waits for next, or the probe's answer.
enum Step {
    Wait(EpollFlags),
    Done(Result<(), String>),
}

impl Sockets {
    pub fn new() -> Sockets {
        Sockets { epoll: None, open: HashMap::new(), events: Vec::new() }
    }

    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    /// Starts `GET` with `request` to `addr`; its answer when known at once.
    pub fn http(
        &mut self,
        id: u64,
        addr: SocketAddr,
        request: Vec<u8>,
    ) -> Option<Result<(), String>> {
        self.start(id, addr, Stage::Request { bytes: request, sent: 0 })
    }

    /// Starts a connection to `addr`; its answer when known at once.
    pub fn tcp(&mut self, id: u64, addr: SocketAddr) -> Option<Result<(), String>> {
        self.start(id, addr, Stage::Handshake)
    }

    fn start(&mut self, id: u64, addr: SocketAddr, stage: Stage) -> Option<Result<(), String>> {
        // WHY a TCP probe closes gracefully: it sends nothing, and a reset right after the
        // handshake is an error in many servers' logs (a Python traceback per probe), where
        // an HTTP probe's reset comes after the answer it asked for.
        let reset = matches!(stage, Stage::Request { .. });
        let socket = match connect(addr, reset) {
            Ok(socket) => socket,
            Err(e) => return Some(Err(e)),
        };
        let mut probe = Probe { socket, stage, interest: None };
        match probe.step() {
            Step::Done(answer) => Some(answer),
            Step::Wait(interest) => match self.watch(id, &mut probe, interest) {
                Ok(()) => {
                    self.open.insert(id, probe);
                    None
                }
                Err(e) => Some(Err(e)),
            },
        }
    }

    /// Has the set watch `probe`'s socket for `interest`.
    fn watch(&mut self, id: u64, probe: &mut Probe, interest: EpollFlags) -> Result<(), String> {
        if probe.interest == Some(interest) {
            return Ok(());
        }
        let epoll = match &mut self.epoll {
            Some(epoll) => &*epoll,
            none => none.insert(
                Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)
                    .map_err(|e| describe("epoll", &e.into()))?,
            ),
        };
        let mut event = EpollEvent::new(interest, id);
        let done = match probe.interest {
            None => epoll.add(&probe.socket, event),
            Some(_) => epoll.modify(&probe.socket, &mut event),
        };
        done.map_err(|e| describe("epoll", &e.into()))?;
        probe.interest = Some(interest);
        Ok(())
    }

    /// The probe's time ran out: its socket is closed. Whether it was open.
    pub fn cancel(&mut self, id: u64) -> bool {
        self.open.remove(&id).is_some()
    }

    /// Moves every probe whose socket is ready one step on, without waiting; the answers
    /// found go to `answers`.
    pub fn poll(&mut self, answers: &mut Vec<(u64, Result<(), String>)>) {
        if self.open.is_empty() {
            return;
        }
        self.events.resize(EVENTS, EpollEvent::empty());
        // Each round takes up to EVENTS ready sockets; a socket answered or moved on is not
        // ready again within the call, so this ends, and the bound makes sure of it.
        for _ in 0..=self.open.len() / EVENTS {
            let Some(epoll) = &self.epoll else { return };
            let ready = match epoll.wait(&mut self.events, EpollTimeout::ZERO) {
                Ok(n) => n,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    tracing::warn!("cannot poll the probes' sockets: {e}");
                    return;
                }
            };
            for i in 0..ready {
                let id = self.events[i].data();
                let Some(mut probe) = self.open.remove(&id) else { continue };
                match probe.step() {
                    Step::Done(answer) => answers.push((id, answer)),
                    Step::Wait(interest) => match self.watch(id, &mut probe, interest) {
                        Ok(()) => {
                            self.open.insert(id, probe);
                        }
                        Err(e) => answers.push((id, Err(e))),
                    },
                }
            }
            if ready < EVENTS {
                break;
            }
        }
    }
}

impl Probe {
    /// As far as the socket lets it go without waiting.
    fn step(&mut self) -> Step {
        loop {
            match &mut self.stage {
                Stage::Handshake => return self.handshake(),
                Stage::Request { bytes, sent } => match (&self.socket).write(&bytes[*sent..]) {
                    Ok(n) => {
                        *sent += n;
                        if *sent == bytes.len() {
                            self.stage = Stage::Response { buf: [0; MAX_READ], filled: 0 };
                            // The answer takes the server a turn: asking now would only
                            // cost a system call that finds nothing.
                            return Step::Wait(EpollFlags::EPOLLIN);
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) if pending(&e) => return Step::Wait(EpollFlags::EPOLLOUT),
                    // A refused connection shows here, as the write's error.
                    Err(e) => return Step::Done(Err(describe("connect", &e))),
                },
                Stage::Response { buf, filled } => match (&self.socket).read(&mut buf[*filled..]) {
                    Ok(n) => {
                        *filled += n;
                        if let Some(answer) = answer(&buf[..*filled], n == 0) {
                            return Step::Done(answer);
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        return Step::Wait(EpollFlags::EPOLLIN);
                    }
                    Err(e) => return Step::Done(Err(describe("read", &e))),
                },
            }
        }
    }

    /// A TCP probe: done once the peer is known, failed with the socket's error.
    fn handshake(&self) -> Step {
        match self.socket.take_error() {
            Ok(Some(e)) | Err(e) => return Step::Done(Err(describe("connect", &e))),
            Ok(None) => {}
        }
        match self.socket.peer_addr() {
            Ok(_) => Step::Done(Ok(())),
            Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => Step::Wait(EpollFlags::EPOLLOUT),
            Err(e) => Step::Done(Err(describe("connect", &e))),
        }
    }
}

/// The handshake is not over yet (a write before it ends finds no room, or no connection).
fn pending(e: &std::io::Error) -> bool {
    e.kind() == ErrorKind::WouldBlock || e.raw_os_error() == Some(libc::ENOTCONN)
}

/// A non-blocking socket connecting to `addr` (closing with a reset if `reset`). On
/// loopback the handshake is usually over when `connect` returns, though it says it is in
/// progress.
fn connect(addr: SocketAddr, reset: bool) -> Result<Socket, String> {
    let domain = Domain::for_address(addr);
    let socket = Socket::new(domain, Type::STREAM.nonblocking(), None)
        .map_err(|e| describe("socket", &e))?;
    // WHY linger 0: the probe has what it asked for when it closes, and a reset leaves no
    // TIME_WAIT socket behind (a thousand a second, for a minute each, that every later
    // connect would search past), as HAProxy's health checks do.
    if reset {
        socket.set_linger(Some(Duration::ZERO)).map_err(|e| describe("socket", &e))?;
    }
    match socket.connect(&addr.into()) {
        Ok(()) => Ok(socket),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Ok(socket),
        Err(e) => Err(describe("connect", &e)),
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::{SocketAddr, TcpListener};
    use std::time::{Duration, Instant};

    use super::Sockets;

    /// Polls until `id` has its answer (generous deadline: the machine may be loaded).
    fn answer(
        sockets: &mut Sockets,
        id: u64,
        started: Option<Result<(), String>>,
    ) -> Result<(), String> {
        if let Some(answer) = started {
            return answer;
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut answers = Vec::new();
        while Instant::now() < deadline {
            sockets.poll(&mut answers);
            if let Some(i) = answers.iter().position(|(done, _)| *done == id) {
                return answers.swap_remove(i).1;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!("no answer for probe {id}");
    }

    /// A server on 127.0.0.1 that reads a request and writes `reply` to each of `n`
    /// connections, then closes them.
    fn server(reply: &'static [u8], n: usize) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for _ in 0..n {
                let (mut conn, _) = listener.accept().unwrap();
                let mut buf = [0u8; 1024];
                let _ = conn.read(&mut buf);
                let _ = conn.write_all(reply);
            }
        });
        addr
    }

    fn request() -> Vec<u8> {
        super::super::net::request("/health", "127.0.0.1").into_bytes()
    }

    #[test]
    fn http_status_decides() {
        let mut s = Sockets::new();
        let ok = server(b"HTTP/1.1 204 No Content\r\n\r\n", 1);
        let started = s.http(1, ok, request());
        assert_eq!(answer(&mut s, 1, started), Ok(()));
        let bad = server(b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n", 1);
        let started = s.http(2, bad, request());
        assert_eq!(answer(&mut s, 2, started), Err("HTTP 500".into()));
        let silent = server(b"", 1);
        let started = s.http(3, silent, request());
        assert_eq!(
            answer(&mut s, 3, started),
            Err("the connection closed before a response".into())
        );
        assert!(s.is_empty(), "every answered probe's socket is closed");
    }

    #[test]
    fn refused_and_cancelled() {
        let mut s = Sockets::new();
        // A port nobody listens on: bound, then closed.
        let addr = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let started = s.http(1, addr, request());
        let refused = answer(&mut s, 1, started).unwrap_err();
        assert!(refused.starts_with("connect: "), "{refused}");
        let started = s.tcp(2, addr);
        assert!(answer(&mut s, 2, started).unwrap_err().starts_with("connect: "));
        // A server that accepts and never answers: the probe waits until cancelled.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        assert!(s.http(3, listener.local_addr().unwrap(), request()).is_none());
        let mut answers = Vec::new();
        s.poll(&mut answers);
        assert!(answers.is_empty());
        assert!(s.cancel(3));
        assert!(s.is_empty());
        assert!(!s.cancel(3));
    }

    #[test]
    fn a_handshake_that_never_ends_waits_and_is_cancelled() {
        // A listener that never accepts, its queue full: later SYNs are dropped, so these
        // connects stay in progress (as to a host that does not answer).
        let listener = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("socket");
        listener.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into()).expect("bind");
        listener.listen(0).expect("listen");
        let addr = listener.local_addr().unwrap().as_socket().unwrap();
        // The first connection fills the queue; non-blocking, so that one whose SYN is
        // dropped would not hold the test up.
        let _queued = super::connect(addr, true).expect("connect");
        let mut s = Sockets::new();
        assert!(s.http(1, addr, request()).is_none(), "the request waits for the handshake");
        assert!(s.tcp(2, addr).is_none(), "so does a TCP probe");
        let mut answers = Vec::new();
        for _ in 0..5 {
            s.poll(&mut answers);
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(answers.is_empty(), "{answers:?}");
        assert!(s.cancel(1) && s.cancel(2));
        assert!(s.is_empty());
    }

    #[test]
    fn tcp_accepted() {
        let mut s = Sockets::new();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let started = s.tcp(1, listener.local_addr().unwrap());
        assert_eq!(answer(&mut s, 1, started), Ok(()));
        // IPv6 loopback, where the machine has it.
        if let Ok(v6) = TcpListener::bind("[::1]:0") {
            let started = s.tcp(2, v6.local_addr().unwrap());
            assert_eq!(answer(&mut s, 2, started), Ok(()));
        }
    }

    #[test]
    fn many_at_once() {
        // More probes in flight than one epoll_wait returns.
        let n = 600;
        let addr = server(b"HTTP/1.0 200 OK\r\n\r\n", n);
        let mut s = Sockets::new();
        let mut done = 0;
        for id in 0..n as u64 {
            if let Some(answer) = s.http(id, addr, request()) {
                assert_eq!(answer, Ok(()));
                done += 1;
            }
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut answers = Vec::new();
        while done < n && Instant::now() < deadline {
            s.poll(&mut answers);
            for (_, answer) in answers.drain(..) {
                assert_eq!(answer, Ok(()));
                done += 1;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(done, n);
        assert!(s.is_empty());
    }
}
