//! The listening sockets corral binds once and hands to every worker.

use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::Path;

use socket2::{Domain, SockAddr, Socket, Type};

use crate::config::ListenAddr;

/// A bound, listening socket. corral never accepts on it; workers do.
#[derive(Debug)]
pub struct BoundListener {
    pub fd: OwnedFd,
    /// Where it really listens (port 0 resolved).
    pub local: String,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {}: {}", crate::text::escape(addr, false), super::describe(source))]
pub struct BindError {
    pub addr: String,
    #[source]
    pub source: std::io::Error,
}

/// Backlog for the shared socket: large, because connections wait here while a crashed
/// worker is replaced (the kernel caps it at `net.core.somaxconn`).
const BACKLOG: i32 = 4096;

pub fn bind(addr: &ListenAddr) -> Result<BoundListener, BindError> {
    let fail = |source| BindError { addr: addr.to_string(), source };
    let socket = match addr {
        ListenAddr::AnyPort(port) => bind_any(*port).map_err(fail)?,
        ListenAddr::Tcp(sa) => bind_tcp(*sa).map_err(fail)?,
        ListenAddr::Unix(path) => bind_unix(path).map_err(fail)?,
    };
    let local = match socket.local_addr().ok().and_then(|a| a.as_socket()) {
        Some(sa) => sa.to_string(),
        None => addr.to_string(),
    };
    Ok(BoundListener { fd: socket.into(), local })
}

fn bind_tcp(addr: SocketAddr) -> std::io::Result<Socket> {
    // socket2 creates the socket close-on-exec: only the fd a worker gets is inherited.
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket)
}

/// `PORT` alone: IPv6 and IPv4 on one dual-stack socket, like Node's `listen(PORT)`;
/// IPv4 only where the machine has no IPv6.
fn bind_any(port: u16) -> std::io::Result<Socket> {
    let v6 = SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, port, 0, 0));
    let dual = Socket::new(Domain::IPV6, Type::STREAM, None).and_then(|s| {
        s.set_reuse_address(true)?;
        s.set_only_v6(false)?;
        s.bind(&v6.into())?;
        Ok(s)
    });
    let socket = match dual {
        Ok(s) => s,
        Err(e) if e.raw_os_error() == Some(libc::EAFNOSUPPORT) => {
            let s = Socket::new(Domain::IPV4, Type::STREAM, None)?;
            s.set_reuse_address(true)?;
            s.bind(&SocketAddr::from(([0, 0, 0, 0], port)).into())?;
            s
        }
        Err(e) => return Err(e),
    };
    socket.listen(BACKLOG)?;
    Ok(socket)
}

fn bind_unix(path: &Path) -> std::io::Result<Socket> {
    // A socket file nobody listens on is left over from a crashed run: replace it. One
    // somebody answers on is in use.
    if std::fs::symlink_metadata(path).is_ok() {
        match UnixStream::connect(path) {
            Ok(_) => return Err(std::io::Error::from_raw_os_error(libc::EADDRINUSE)),
            Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => std::fs::remove_file(path)?,
            Err(_) => {}
        }
    }
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    socket.bind(&SockAddr::unix(path)?)?;
    socket.listen(BACKLOG)?;
    Ok(socket)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_port_is_a_clear_error() {
        let first = bind(&ListenAddr::Tcp("127.0.0.1:0".parse().expect("addr"))).expect("bind");
        let taken: SocketAddr = first.local.parse().expect("local addr");
        let err = bind(&ListenAddr::Tcp(taken)).expect_err("second bind must fail");
        assert_eq!(err.to_string(), format!("cannot listen on {taken}: Address already in use"));
    }

    #[test]
    fn stale_unix_socket_is_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.sock");
        drop(std::os::unix::net::UnixListener::bind(&path).expect("bind"));
        assert!(path.exists());
        let _live = bind(&ListenAddr::Unix(path.clone())).expect("rebinding a stale socket file");
        let busy = bind(&ListenAddr::Unix(path)).expect_err("in use");
        assert!(busy.to_string().contains("Address already in use"));
    }
}
