//! The port broker: one socket per group and address, bound the first time a worker of the
//! group asks for it and kept, across restarts, reloads and scaling, until the group stops.
//! Workers of one group asking for the same address get the same socket, so the kernel
//! spreads connections over them (docs/node.md, docs/sharing-a-port.md).
//!
//! Owns: the sockets bound on demand, and copies of the groups' `--listen` sockets (which
//! answer a request for the same port or path). Never touches: processes, channels.

use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::backend::{self, BoundListener, Wanted};
use crate::protocol::node_cluster::{HandleType, ServerQuery, Transport};

/// Sockets one group may have bound on demand: a worker asking for thousands of ports gets
/// `EMFILE` after this many, and corral's descriptors stay bounded.
pub const MAX_SOCKETS_PER_GROUP: usize = 64;

/// The first descriptor a worker's `--listen` sockets take (`LISTEN_FDS`).
const FIRST_LISTEN_FD: i64 = 3;

pub struct PortBroker {
    groups: Vec<GroupPorts>,
}

/// What a group's workers may be handed.
pub struct GroupPorts {
    /// Relative unix socket paths are the workers' cwd's.
    cwd: PathBuf,
    /// The group's `--listen` sockets, in the order workers get them.
    given: Vec<Given>,
    bound: Vec<Shared>,
}

struct Given {
    fd: OwnedFd,
    local: Option<SocketAddr>,
    path: Option<PathBuf>,
}

struct Shared {
    wanted: Wanted,
    listener: BoundListener,
    /// The first worker's server data (TLS ticket keys), handed to every later one so
    /// sessions resume on any worker, as Node's primary does.
    data: Option<Value>,
}

/// A socket to hand to a worker.
pub struct Served<'a> {
    pub fd: BorrowedFd<'a>,
    pub kind: HandleType,
    pub data: Option<&'a Value>,
}

impl GroupPorts {
    /// `listeners`: the group's `--listen` sockets (copied: the group keeps its own).
    pub fn new(cwd: PathBuf, listeners: &[BoundListener]) -> GroupPorts {
        let given = listeners
            .iter()
            .filter_map(|l| {
                let fd = l.fd.try_clone().ok()?;
                let path = l.local.strip_prefix("unix:").map(PathBuf::from);
                Some(Given { fd, local: l.local.parse().ok(), path })
            })
            .collect();
        GroupPorts { cwd, given, bound: Vec::new() }
    }
}

impl PortBroker {
    pub fn new(groups: Vec<GroupPorts>) -> PortBroker {
        PortBroker { groups }
    }

    /// The socket for `query` from a worker of `group`, bound now if it is the first ask.
    /// `Err` is the errno the worker's `listen()` reports.
    pub fn serve(&mut self, group: u16, query: &ServerQuery) -> Result<Served<'_>, i32> {
        let ports = self.groups.get_mut(usize::from(group)).ok_or(libc::EINVAL)?;
        if query.transport == Transport::Descriptor {
            let n = query.fd.unwrap_or(-1) - FIRST_LISTEN_FD;
            let given = usize::try_from(n).ok().and_then(|n| ports.given.get(n));
            return given.map(served_given).ok_or(libc::EBADF);
        }
        let wanted = wanted(query)?;
        if let Some(at) = ports.given.iter().position(|g| answers(g, &wanted, &ports.cwd)) {
            return Ok(served_given(&ports.given[at]));
        }
        let found = ports.bound.iter().position(|s| s.serves(&wanted));
        let at =
            if let Some(at) = found { at } else { ports.bind_for_node(group, wanted, query)? };
        let shared = &mut ports.bound[at];
        if shared.data.is_none() {
            shared.data.clone_from(&query.data);
        }
        let kind = match shared.wanted {
            Wanted::Udp { .. } => HandleType::Dgram,
            Wanted::Tcp { .. } | Wanted::Unix(_) => HandleType::Net,
        };
        Ok(Served { fd: shared.listener.fd.as_fd(), kind, data: shared.data.as_ref() })
    }

    /// A copy of the group's socket for a program's own `bind()` of `wanted` (adopted
    /// through seccomp), bound now if it is the first; `nonblocking` is the first binder's
    /// choice, which every later worker shares (one open file).
    pub fn serve_bind(
        &mut self,
        group: u16,
        wanted: Wanted,
        nonblocking: bool,
    ) -> Result<OwnedFd, i32> {
        let ports = self.groups.get_mut(usize::from(group)).ok_or(libc::EINVAL)?;
        if let Some(given) = ports.given.iter().find(|g| answers(g, &wanted, &ports.cwd)) {
            return given.fd.try_clone().map_err(|e| e.raw_os_error().unwrap_or(libc::EMFILE));
        }
        let at = match ports.bound.iter().position(|s| s.serves(&wanted)) {
            Some(at) => at,
            None => ports.bind(group, wanted, nonblocking)?,
        };
        ports.bound[at]
            .listener
            .fd
            .try_clone()
            .map_err(|e| e.raw_os_error().unwrap_or(libc::EMFILE))
    }

    /// The group stopped: the sockets bound for it close (new connections are refused, as
    /// they should be while nobody serves), and are bound again when a worker asks.
    pub fn close_group(&mut self, group: u16) -> usize {
        let Some(ports) = self.groups.get_mut(usize::from(group)) else { return 0 };
        let closed = ports.bound.len();
        ports.bound.clear();
        closed
    }

    /// Closes the group's socket with this inode, when it was bound on demand.
    pub fn close_socket(&mut self, group: u16, inode: u64) -> bool {
        let Some(ports) = self.groups.get_mut(usize::from(group)) else { return false };
        let before = ports.bound.len();
        ports.bound.retain(|s| {
            nix::sys::stat::fstat(s.listener.fd.as_fd()).map_or(true, |st| st.st_ino != inode)
        });
        ports.bound.len() != before
    }

    /// Whether the socket with this inode is one the broker holds (a `shutdown()` of it
    /// would stop it for every worker).
    pub fn holds(&self, inode: u64) -> bool {
        self.groups.iter().any(|g| {
            let fds = g
                .bound
                .iter()
                .map(|s| s.listener.fd.as_fd())
                .chain(g.given.iter().map(|g| g.fd.as_fd()));
            fds.filter_map(|fd| nix::sys::stat::fstat(fd).ok()).any(|st| st.st_ino == inode)
        })
    }

    /// Sockets bound on demand so far, per group.
    #[cfg(test)]
    pub fn bound(&self, group: u16) -> usize {
        self.groups.get(usize::from(group)).map_or(0, |g| g.bound.len())
    }
}

impl Shared {
    /// The address asked for, or the port it was given when asked for port 0.
    fn serves(&self, wanted: &Wanted) -> bool {
        let (own, wanted) = (&explicit(&self.wanted), &explicit(wanted));
        if own == wanted {
            return true;
        }
        let bound_port = || self.listener.local.parse::<SocketAddr>().ok().map(|a| a.port());
        match (own, wanted) {
            (
                Wanted::Tcp { ip, port: 0, v6_only },
                Wanted::Tcp { ip: asked, port: p, v6_only: asked_v6 },
            ) => ip == asked && v6_only == asked_v6 && bound_port() == Some(*p),
            (
                Wanted::Udp { ip, port: 0, v6_only, v6 },
                Wanted::Udp { ip: asked, port: p, v6_only: o, v6: asked_v6 },
            ) => ip == asked && v6_only == o && v6 == asked_v6 && bound_port() == Some(*p),
            _ => false,
        }
    }
}

impl GroupPorts {
    /// Binds a socket a Node worker asked for (non-blocking, its unix file shared as asked).
    fn bind_for_node(
        &mut self,
        group: u16,
        wanted: Wanted,
        query: &ServerQuery,
    ) -> Result<usize, i32> {
        let at = self.bind(group, wanted, true)?;
        let shared = &self.bound[at];
        if matches!(shared.wanted, Wanted::Unix(_)) && (query.readable_all || query.writable_all) {
            share_unix_file(&shared.listener, query);
        }
        Ok(at)
    }

    /// Binds a socket the group has not had yet; its index.
    fn bind(&mut self, group: u16, wanted: Wanted, nonblocking: bool) -> Result<usize, i32> {
        if self.bound.len() >= MAX_SOCKETS_PER_GROUP {
            return Err(libc::EMFILE);
        }
        let listener = backend::bind_on_demand(&wanted, &self.cwd, nonblocking)
            .map_err(|e| e.raw_os_error().unwrap_or(libc::EINVAL))?;
        tracing::info!(group, socket = %listener.local, "bound on demand");
        self.bound.push(Shared { wanted, listener, data: None });
        Ok(self.bound.len() - 1)
    }
}

/// The unspecified address as the address it means: a Node `listen(3000)` (`::`
/// dual-stack) is the same socket as a program's own `bind([::]:3000)`.
fn explicit(wanted: &Wanted) -> Wanted {
    let any6 = Some(IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED));
    let any4 = Some(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    match wanted.clone() {
        Wanted::Tcp { ip: None, port, v6_only } => Wanted::Tcp { ip: any6, port, v6_only },
        Wanted::Udp { ip: None, port, v6_only, v6 } => {
            Wanted::Udp { ip: if v6 { any6 } else { any4 }, port, v6_only, v6 }
        }
        other => other,
    }
}

fn served_given(given: &Given) -> Served<'_> {
    // WHY here and not at start: only a Node worker needs it non-blocking, and the
    // descriptor is shared with the group's other workers, which get it as fd 3.
    if let Err(e) = backend::set_nonblocking(&given.fd) {
        tracing::warn!("cannot make a --listen socket non-blocking: {e}");
    }
    Served { fd: given.fd.as_fd(), kind: HandleType::Net, data: None }
}

/// Whether a `--listen` socket answers the request: the same TCP port, or the same path.
fn answers(given: &Given, wanted: &Wanted, cwd: &Path) -> bool {
    match wanted {
        Wanted::Tcp { port, .. } => *port != 0 && given.local.is_some_and(|a| a.port() == *port),
        Wanted::Udp { .. } => false,
        Wanted::Unix(path) => given.path.as_deref() == Some(cwd.join(path).as_path()),
    }
}

fn wanted(query: &ServerQuery) -> Result<Wanted, i32> {
    let ip = match query.address.as_deref() {
        None => None,
        Some(text) => match text.parse::<IpAddr>() {
            Ok(ip) => Some(ip),
            Err(_) if query.transport == Transport::Pipe => None,
            Err(_) => return Err(libc::EINVAL),
        },
    };
    let port = u16::try_from(query.port).unwrap_or(0);
    Ok(match query.transport {
        Transport::Tcp4 | Transport::Tcp6 => Wanted::Tcp { ip, port, v6_only: query.ipv6_only },
        Transport::Udp4 => Wanted::Udp { ip, port, v6_only: false, v6: false },
        Transport::Udp6 => Wanted::Udp { ip, port, v6_only: query.ipv6_only, v6: true },
        Transport::Pipe => Wanted::Unix(PathBuf::from(query.address.as_deref().unwrap_or(""))),
        Transport::Descriptor => return Err(libc::EBADF),
    })
}

/// `listen({readableAll, writableAll})`: other users may connect to the socket file.
fn share_unix_file(listener: &BoundListener, query: &ServerQuery) {
    use std::os::unix::fs::PermissionsExt;
    let Some(path) = listener.local.strip_prefix("unix:") else { return };
    let Ok(meta) = std::fs::metadata(path) else { return };
    let mut mode = meta.permissions().mode();
    if query.readable_all {
        mode |= 0o444;
    }
    if query.writable_all {
        mode |= 0o222;
    }
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode));
}

#[cfg(test)]
mod tests;
