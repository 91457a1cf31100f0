//! Sockets bound when a worker first asks for an address (docs/sharing-a-port.md): the
//! same options Node's own primary uses, non-blocking because event loops expect it.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::OwnedFd;
use std::path::Path;

use socket2::{Domain, Socket, Type};

use super::sockets::{BoundListener, bind_unix_listener};

/// What a worker asked to bind.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Wanted {
    /// `ip: None` is the unspecified address: `::` dual-stack, or `0.0.0.0` where the
    /// machine has no IPv6.
    Tcp {
        ip: Option<IpAddr>,
        port: u16,
        v6_only: bool,
    },
    Udp {
        ip: Option<IpAddr>,
        port: u16,
        v6_only: bool,
        v6: bool,
    },
    Unix(std::path::PathBuf),
}

/// Backlog of a socket bound on demand: connections wait here while a worker is replaced.
const BACKLOG: i32 = 4096;

/// Binds `wanted` (and listens, for a stream socket). Relative unix paths are taken from
/// `cwd`.
pub fn bind_on_demand(wanted: &Wanted, cwd: &Path, nonblocking: bool) -> io::Result<BoundListener> {
    match wanted {
        Wanted::Tcp { ip, port, v6_only } => {
            let socket = bind_ip(Type::STREAM, *ip, *port, *v6_only, true)?;
            socket.listen(BACKLOG)?;
            finish(socket, nonblocking)
        }
        Wanted::Udp { ip, port, v6_only, v6 } => {
            let ip = ip.or_else(|| (!v6).then_some(IpAddr::V4(Ipv4Addr::UNSPECIFIED)));
            finish(bind_ip(Type::DGRAM, ip, *port, *v6_only, *v6)?, nonblocking)
        }
        Wanted::Unix(path) => {
            let path = if path.is_absolute() || path.starts_with("\0") {
                path.clone()
            } else {
                cwd.join(path)
            };
            let listener = bind_unix_listener(&path)?;
            if nonblocking {
                set_nonblocking(&listener.fd)?;
            }
            Ok(listener)
        }
    }
}

fn bind_ip(
    kind: Type,
    ip: Option<IpAddr>,
    port: u16,
    v6_only: bool,
    dual_stack: bool,
) -> io::Result<Socket> {
    let open = |addr: SocketAddr, only_v6: bool| -> io::Result<Socket> {
        // socket2 makes it close-on-exec: a worker only ever gets it passed on purpose.
        let s = Socket::new(Domain::for_address(addr), kind, None)?;
        s.set_reuse_address(true)?;
        if addr.is_ipv6() {
            s.set_only_v6(only_v6)?;
        }
        s.bind(&addr.into())?;
        Ok(s)
    };
    match ip {
        Some(ip) => open(SocketAddr::new(ip, port), v6_only),
        None if dual_stack => {
            match open(SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port), v6_only) {
                Err(e) if e.raw_os_error() == Some(libc::EAFNOSUPPORT) => {
                    open(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port), false)
                }
                other => other,
            }
        }
        None => open(SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port), v6_only),
    }
}

fn finish(socket: Socket, nonblocking: bool) -> io::Result<BoundListener> {
    // WHY non-blocking for Node: Node 18 does not set it on a socket it is handed and would
    // hang in accept(). A program that accepts blockingly gets what it made.
    socket.set_nonblocking(nonblocking)?;
    let local = socket.local_addr()?.as_socket().map_or_else(String::new, |a| a.to_string());
    Ok(BoundListener::inherited(socket.into(), local))
}

pub fn set_nonblocking(fd: &OwnedFd) -> io::Result<()> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    let flags = OFlag::from_bits_retain(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_is_dual_stack_nonblocking_and_port_zero_is_resolved() {
        let wanted = Wanted::Tcp { ip: None, port: 0, v6_only: false };
        let bound = bind_on_demand(&wanted, Path::new("/"), true).expect("bind");
        let addr: SocketAddr = bound.local.parse().expect("addr");
        assert!(addr.port() > 0);
        let flags = nix::fcntl::fcntl(&bound.fd, nix::fcntl::FcntlArg::F_GETFL).expect("flags");
        assert!(nix::fcntl::OFlag::from_bits_retain(flags).contains(nix::fcntl::OFlag::O_NONBLOCK));
        // Dual-stack: an IPv4 client reaches it.
        std::net::TcpStream::connect(("127.0.0.1", addr.port())).expect("v4 client");
        let busy = bind_on_demand(
            &Wanted::Tcp { ip: None, port: addr.port(), v6_only: false },
            Path::new("/"),
            true,
        );
        assert_eq!(busy.expect_err("in use").raw_os_error(), Some(libc::EADDRINUSE));
    }

    #[test]
    fn udp_and_relative_unix_paths() {
        let udp = Wanted::Udp {
            ip: Some("127.0.0.1".parse().expect("ip")),
            port: 0,
            v6_only: false,
            v6: false,
        };
        let bound = bind_on_demand(&udp, Path::new("/"), true).expect("udp");
        assert!(bound.local.starts_with("127.0.0.1:"));
        let dir = tempfile::tempdir().expect("dir");
        let unix = Wanted::Unix("app.sock".into());
        let bound = bind_on_demand(&unix, dir.path(), true).expect("unix");
        assert!(dir.path().join("app.sock").exists());
        drop(bound);
        assert!(!dir.path().join("app.sock").exists(), "ours is removed when dropped");
    }
}
