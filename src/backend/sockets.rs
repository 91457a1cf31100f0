//! The listening sockets corral binds once and hands to every worker.

use std::io;
use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6};
use std::os::fd::OwnedFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use socket2::{Domain, SockAddr, Socket, Type};

use crate::config::ListenAddr;

/// A bound, listening socket. corral never accepts on it; workers do. A Unix socket's file
/// is removed when this is dropped (corral's exit), if it is still the one corral made.
#[derive(Debug)]
pub struct BoundListener {
    pub fd: OwnedFd,
    /// Where it really listens (port 0 resolved).
    pub local: String,
    socket_file: Option<SocketFile>,
}

/// The file a Unix socket was bound to, and which file it was.
#[derive(Debug)]
struct SocketFile {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl Drop for BoundListener {
    fn drop(&mut self) {
        let Some(file) = &self.socket_file else {
            return;
        };
        // Only our own socket: someone may have replaced it with something of theirs since.
        let ours = std::fs::symlink_metadata(&file.path)
            .is_ok_and(|m| m.file_type().is_socket() && m.dev() == file.dev && m.ino() == file.ino);
        if ours {
            let _ = std::fs::remove_file(&file.path);
        }
    }
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

impl BoundListener {
    /// A socket corral was handed: passed on as is, and never unlinked (not ours).
    pub fn inherited(fd: OwnedFd, local: String) -> BoundListener {
        BoundListener { fd, local, socket_file: None }
    }
}

pub fn bind(addr: &ListenAddr) -> Result<BoundListener, BindError> {
    let fail = |source| BindError { addr: addr.to_string(), source };
    let (socket, socket_file) = match addr {
        ListenAddr::Inherited(_) => {
            let why = "only a socket corral was handed (LISTEN_FDS) can be taken by name";
            return Err(fail(io::Error::new(io::ErrorKind::NotFound, why)));
        }
        ListenAddr::AnyPort(port) => (bind_any(*port).map_err(fail)?, None),
        ListenAddr::Tcp(sa) => (bind_tcp(*sa).map_err(fail)?, None),
        ListenAddr::Unix(path) => {
            let (socket, file) = bind_unix(path).map_err(fail)?;
            (socket, Some(file))
        }
    };
    let local = match socket.local_addr().ok().and_then(|a| a.as_socket()) {
        Some(sa) => sa.to_string(),
        None => addr.to_string(),
    };
    Ok(BoundListener { fd: socket.into(), local, socket_file })
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

/// A unix socket bound and listening at `path`, removed when dropped (if still ours).
pub(super) fn bind_unix_listener(path: &Path) -> io::Result<BoundListener> {
    let (socket, file) = bind_unix(path)?;
    let local = format!("unix:{}", path.display());
    Ok(BoundListener { fd: socket.into(), local, socket_file: Some(file) })
}

fn bind_unix(path: &Path) -> io::Result<(Socket, SocketFile)> {
    clear_stale_socket(path)?;
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    socket.bind(&SockAddr::unix(path)?)?;
    let meta = std::fs::symlink_metadata(path)?;
    let file = SocketFile { path: path.to_path_buf(), dev: meta.dev(), ino: meta.ino() };
    socket.listen(BACKLOG)?;
    Ok((socket, file))
}

/// A socket file nobody listens on is left over from a crashed run: it is removed. One
/// somebody answers on is in use; anything that is not a socket (a file, a FIFO, a
/// directory, a symbolic link) is somebody's data and is never touched.
fn clear_stale_socket(path: &Path) -> io::Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "a file that is not a socket is in the way",
        ));
    }
    match UnixStream::connect(path) {
        Ok(_) => Err(io::Error::from_raw_os_error(libc::EADDRINUSE)),
        Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => {
            // Still the socket file that refused, not one a new owner just bound.
            let same = std::fs::symlink_metadata(path)
                .is_ok_and(|m| m.dev() == meta.dev() && m.ino() == meta.ino());
            if same { std::fs::remove_file(path) } else { Ok(()) }
        }
        // Not known to be stale (permission, a full backlog): bind says it is in use.
        Err(_) => Ok(()),
    }
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
    fn only_a_stale_socket_is_replaced_and_ours_goes_at_drop() {
        let dir = tempfile::tempdir().expect("tempdir");
        let regular = dir.path().join("file");
        std::fs::write(&regular, "data").expect("write");
        let fifo = dir.path().join("fifo");
        let mode = nix::sys::stat::Mode::from_bits_retain(0o600);
        nix::unistd::mkfifo(&fifo, mode).expect("mkfifo");
        let subdir = dir.path().join("dir");
        std::fs::create_dir(&subdir).expect("mkdir");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&regular, &link).expect("symlink");
        for path in [&regular, &fifo, &subdir, &link] {
            let err = bind(&ListenAddr::Unix(path.clone())).expect_err("something is in the way");
            let want = format!(
                "cannot listen on unix:{}: a file that is not a socket is in the way",
                path.display()
            );
            assert_eq!(err.to_string(), want);
        }
        assert_eq!(std::fs::read_to_string(&regular).expect("the file is intact"), "data");
        assert!(std::fs::symlink_metadata(&fifo).expect("fifo").file_type().is_fifo());
        assert!(subdir.is_dir() && std::fs::symlink_metadata(&link).is_ok());

        let path = dir.path().join("s.sock");
        let bound = bind(&ListenAddr::Unix(path.clone())).expect("bind");
        assert!(std::fs::symlink_metadata(&path).expect("socket file").file_type().is_socket());
        drop(bound);
        assert!(std::fs::symlink_metadata(&path).is_err(), "the socket file is removed");

        // A file that replaced our socket is not ours to remove.
        let bound = bind(&ListenAddr::Unix(path.clone())).expect("bind");
        std::fs::remove_file(&path).expect("rm");
        std::fs::write(&path, "theirs").expect("write");
        drop(bound);
        assert_eq!(std::fs::read_to_string(&path).expect("left alone"), "theirs");
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
