//! `--node-cluster-sched rr`: corral accepts each connection on the group's socket and hands
//! it to the next worker that listens on it (Node's `newconn`), for an even split. A worker
//! that refuses one (closing, `maxConnections`) or dies before answering passes it on.
//!
//! Owns: the accepting tasks, who listens on which socket, connections not yet taken.

use std::collections::{HashMap, VecDeque};
use std::os::fd::{BorrowedFd, OwnedFd};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::core::WorkerKey;

/// Accepted connections waiting for a worker, at most, per socket: beyond, the newest is
/// closed (while no worker listens, the kernel's backlog holds the rest).
const MAX_PENDING: usize = 1024;

/// Connections handed over and not yet answered, at most, per worker.
pub(super) const MAX_UNANSWERED: usize = 32;

/// A worker's server on a shared socket: its generation and the key it knows it by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Member {
    pub key: WorkerKey,
    pub generation: u32,
    pub server: String,
}

struct Socket {
    /// Which socket it is (device and inode), to find it again.
    id: (u64, u64),
    group: u16,
    members: Vec<Member>,
    next: usize,
    pending: VecDeque<OwnedFd>,
    accepting: JoinHandle<()>,
}

pub(super) struct RoundRobin {
    sockets: Vec<Socket>,
    tx: mpsc::Sender<(usize, OwnedFd)>,
    rx: mpsc::Receiver<(usize, OwnedFd)>,
}

impl Drop for RoundRobin {
    fn drop(&mut self) {
        for socket in &self.sockets {
            socket.accepting.abort();
        }
    }
}

impl RoundRobin {
    pub fn new() -> RoundRobin {
        let (tx, rx) = mpsc::channel(MAX_PENDING);
        RoundRobin { sockets: Vec::new(), tx, rx }
    }

    pub async fn next(&mut self) -> Option<(usize, OwnedFd)> {
        self.rx.recv().await
    }

    /// `member` listens on `listener` from now on; corral starts accepting on it the first
    /// time. The socket's index.
    pub fn join(&mut self, listener: BorrowedFd<'_>, member: Member) -> std::io::Result<usize> {
        let stat = nix::sys::stat::fstat(listener)?;
        let id = (stat.st_dev, stat.st_ino);
        if let Some(at) = self.sockets.iter().position(|s| s.id == id) {
            self.sockets[at].members.push(member);
            return Ok(at);
        }
        let at = self.sockets.len();
        let group = member.key.group;
        let accepting = tokio::task::spawn_local(accept_loop(
            listener.try_clone_to_owned()?,
            at,
            self.tx.clone(),
        ));
        self.sockets.push(Socket {
            id,
            group,
            members: vec![member],
            next: 0,
            pending: VecDeque::new(),
            accepting,
        });
        Ok(at)
    }

    /// The group stopped: its sockets are no longer accepted on (their connections wait
    /// no more: corral's copy closes with the task).
    pub fn forget_group(&mut self, group: u16) {
        for socket in self.sockets.iter_mut().filter(|s| s.group == group) {
            socket.accepting.abort();
            socket.members.clear();
            socket.pending.clear();
            socket.id = (u64::MAX, u64::MAX);
        }
    }

    /// The socket with this inode is closed: no longer accepted on.
    pub fn forget_socket(&mut self, inode: u64) {
        for socket in self.sockets.iter_mut().filter(|s| s.id.1 == inode) {
            socket.accepting.abort();
            socket.members.clear();
            socket.pending.clear();
            socket.id = (u64::MAX, u64::MAX);
        }
    }

    /// The worker's server closed, or the worker is gone.
    pub fn leave(&mut self, gone: impl Fn(&Member) -> bool) {
        for socket in &mut self.sockets {
            socket.members.retain(|m| !gone(m));
        }
    }

    /// The next member of socket `at` for which `take` succeeds (it queues the connection
    /// to that worker); false when none could, and the connection waits.
    pub fn hand_out(
        &mut self,
        at: usize,
        conn: OwnedFd,
        mut take: impl FnMut(&Member, &OwnedFd) -> bool,
    ) {
        let Some(socket) = self.sockets.get_mut(at) else { return };
        let n = socket.members.len();
        for _ in 0..n {
            socket.next = (socket.next + 1) % n;
            if take(&socket.members[socket.next], &conn) {
                return;
            }
        }
        if socket.pending.len() < MAX_PENDING {
            socket.pending.push_back(conn);
        }
    }

    /// Connections that waited for a worker, to hand out again (a worker joined or answered).
    pub fn waiting(&mut self) -> Vec<(usize, OwnedFd)> {
        let mut out = Vec::new();
        for (at, socket) in self.sockets.iter_mut().enumerate() {
            if !socket.members.is_empty() {
                out.extend(socket.pending.drain(..).map(|c| (at, c)));
            }
        }
        out
    }
}

/// Accepts on `listener` for as long as corral runs; each connection goes to the main loop.
async fn accept_loop(listener: OwnedFd, at: usize, tx: mpsc::Sender<(usize, OwnedFd)>) {
    let unix = socket2::SockRef::from(&listener).domain().is_ok_and(|d| d == socket2::Domain::UNIX);
    let accepting = if unix {
        tokio::net::UnixListener::from_std(std::os::unix::net::UnixListener::from(listener))
            .map(Listener::Unix)
    } else {
        tokio::net::TcpListener::from_std(std::net::TcpListener::from(listener)).map(Listener::Tcp)
    };
    let listener = match accepting {
        Ok(listener) => listener,
        Err(e) => {
            tracing::warn!("cannot accept on a round-robin socket ({e}); its connections wait");
            return;
        }
    };
    loop {
        let conn = match &listener {
            Listener::Tcp(l) => l.accept().await.and_then(|(c, _)| c.into_std()).map(OwnedFd::from),
            Listener::Unix(l) => {
                l.accept().await.and_then(|(c, _)| c.into_std()).map(OwnedFd::from)
            }
        };
        match conn {
            Ok(conn) => {
                if tx.send((at, conn)).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                // EMFILE and the like: let the loop breathe, the backlog holds them meanwhile.
                tracing::warn!("accepting for round-robin: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

enum Listener {
    Tcp(tokio::net::TcpListener),
    Unix(tokio::net::UnixListener),
}

/// Connections a worker was handed and has not answered, by corral's message number.
pub(super) type Unanswered = HashMap<u64, (usize, OwnedFd)>;
