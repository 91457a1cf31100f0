//! Sharing the port of a program that knows nothing of corral (docs/sharing-a-port.md):
//! each worker's `bind()` of a TCP or UDP port arrives here (seccomp user notification)
//! and is answered with the group's socket for that address, put at the caller's
//! descriptor; a `shutdown()` of that shared socket is answered as done without doing it
//! (it would stop the listener for every worker); everything else goes ahead untouched.
//!
//! WHY a thread of its own: a worker waits in `bind()` until it is answered, and it must
//! never wait for the main loop (an exit storm, a flood); the main loop never waits for
//! a worker's bind either.
//!
//! Owns: the seccomp listeners of the live workers. Shares: the port broker (a mutex held
//! for one lookup at a time).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::mpsc::{Receiver, Sender, TryRecvError, channel};
use std::sync::{Arc, Mutex};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use super::ports::PortBroker;
use crate::backend::seccomp::{self, Call};
use crate::backend::{Wanted, set_nonblocking};

/// Longest `sockaddr` corral reads from a worker (`sockaddr_in6` is 28 bytes).
const MAX_SOCKADDR: usize = 128;

/// How a group's workers get the filter: not at all with `--share-binds off`; never for a
/// set-user-ID program, which
/// `no_new_privs` would strip of its privileges (it gets one warning instead).
pub(super) fn plan(group: &crate::config::GroupSpec) -> Option<crate::backend::AdoptBinds> {
    use std::os::unix::fs::PermissionsExt;
    if !group.share_binds || bind_filter_is_empty() {
        return None;
    }
    let mode = std::fs::metadata(&group.command.program).map_or(0, |m| m.permissions().mode());
    if mode & 0o6000 != 0 {
        tracing::warn!(
            "{}: {} is set-user-ID or set-group-ID, so corral cannot share the ports it binds \
             (it would lose its privileges); give it a socket with --listen (fd 3, LISTEN_FDS)",
            group.name,
            group.command.program.display()
        );
        return None;
    }
    // WHY: without CAP_SYS_ADMIN the kernel takes a filter only from a process that can
    // gain no privileges; as root corral need not impose that on the worker.
    Some(crate::backend::AdoptBinds { no_new_privs: !nix::unistd::geteuid().is_root() })
}

fn bind_filter_is_empty() -> bool {
    seccomp::bind_filter().is_empty()
}

/// The adopter's thread, when a group shares its workers' binds.
pub(super) fn start_if_wanted(
    groups: &[super::GroupIo],
    broker: &Arc<Mutex<PortBroker>>,
) -> Option<Adopter> {
    if groups.iter().all(|g| g.adopt.is_none()) {
        return None;
    }
    match Adopter::start(Arc::clone(broker)) {
        Ok(adopter) => Some(adopter),
        Err(e) => {
            tracing::warn!("cannot start sharing the workers' own ports: {e}");
            None
        }
    }
}

impl super::GroupIo {
    /// Worker `id` died (`said`: saying an address was in use): once per group, the way
    /// out. Called at its reaping, when its last words were read.
    pub(super) fn hint_addr_in_use(
        &mut self,
        id: &str,
        status: crate::core::ExitStatus,
        said: bool,
    ) {
        if status.success() || self.hinted || !said {
            return;
        }
        self.hinted = true;
        if self.adopt.is_some() {
            tracing::warn!(
                "{id} died on an address already in use: not one corral shares (a unix socket, \
                 a port of another group or program); its group shares TCP and UDP ports its \
                 workers bind (docs/sharing-a-port.md)"
            );
        } else {
            tracing::warn!(
                "{id} died on an address already in use: its workers all bind the same port; \
                 corral shares it with --share-binds on (the default, where the kernel allows \
                 seccomp) or hands them one socket with --listen (fd 3, LISTEN_FDS)"
            );
        }
    }

    /// The filter could not be installed for a worker of this group: said once per group.
    pub(super) fn cannot_adopt(&mut self, errno: i32) {
        if self.adopt.take().is_none() {
            return;
        }
        let why = nix::errno::Errno::from_raw(errno).desc();
        tracing::warn!(
            "{}: cannot share the ports its workers bind (seccomp: {why}); they bind their \
             own, so only one can have a port: give them a socket with --listen (fd 3, \
             LISTEN_FDS) instead",
            self.spec.name
        );
    }
}

pub struct Adopter {
    tx: Sender<(u16, OwnedFd)>,
    wake: std::fs::File,
}

impl Adopter {
    pub fn start(broker: Arc<Mutex<PortBroker>>) -> std::io::Result<Adopter> {
        let (wake_r, wake_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        set_nonblocking(&wake_r)?;
        let (tx, rx) = channel();
        std::thread::Builder::new()
            .name("corral-binds".into())
            .spawn(move || run(&broker, &rx, &wake_r))?;
        Ok(Adopter { tx, wake: std::fs::File::from(wake_w) })
    }

    /// Answers the binds of the worker (and its descendants) behind `notify`, for `group`.
    pub fn watch(&mut self, group: u16, notify: OwnedFd) {
        use std::io::Write;
        if self.tx.send((group, notify)).is_ok() {
            let _ = self.wake.write(&[1]);
        }
    }
}

fn run(broker: &Mutex<PortBroker>, rx: &Receiver<(u16, OwnedFd)>, wake: &OwnedFd) {
    let mut watched: Vec<(u16, OwnedFd)> = Vec::new();
    loop {
        let ready: Vec<PollFlags> = {
            let mut fds = Vec::with_capacity(watched.len() + 1);
            fds.push(PollFd::new(wake.as_fd(), PollFlags::POLLIN));
            fds.extend(watched.iter().map(|(_, fd)| PollFd::new(fd.as_fd(), PollFlags::POLLIN)));
            if poll(&mut fds, PollTimeout::NONE).is_err() {
                continue; // EINTR
            }
            fds.iter().map(|f| f.revents().unwrap_or(PollFlags::empty())).collect()
        };
        let mut gone = Vec::new();
        for (i, flags) in ready.iter().enumerate().skip(1) {
            let (group, notify) = &watched[i - 1];
            if flags.contains(PollFlags::POLLIN) {
                answer(broker, *group, notify.as_fd());
            } else if flags
                .intersects(PollFlags::POLLHUP | PollFlags::POLLERR | PollFlags::POLLNVAL)
            {
                gone.push(i - 1); // every process under this filter has exited
            }
        }
        for at in gone.into_iter().rev() {
            watched.swap_remove(at);
        }
        if ready[0].contains(PollFlags::POLLIN) {
            let mut drain = [0u8; 64];
            while matches!(nix::unistd::read(wake, &mut drain), Ok(n) if n > 0) {}
            loop {
                match rx.try_recv() {
                    Ok(entry) => watched.push(entry),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => return,
                }
            }
        }
    }
}

/// One intercepted call of a worker of `group`.
fn answer(broker: &Mutex<PortBroker>, group: u16, notify: BorrowedFd<'_>) {
    let Some(call) = seccomp::receive(notify) else { return };
    let handled = if call.is_bind() {
        adopt_bind(broker, group, notify, &call)
    } else if call.is_shutdown() {
        keep_listening(broker, notify, &call)
    } else {
        false
    };
    if !handled {
        seccomp::go_ahead(notify, call.id);
    }
}

/// A bind of a TCP or UDP port: the group's socket for it, at the caller's descriptor.
/// False: not one corral shares (port 0, another family), or it cannot; the bind goes
/// ahead as it would without corral.
fn adopt_bind(broker: &Mutex<PortBroker>, group: u16, notify: BorrowedFd<'_>, call: &Call) -> bool {
    let Ok(fd) = RawFd::try_from(call.args[0]) else { return false };
    // A length the kernel would refuse is left for the kernel to refuse.
    let len = usize::try_from(call.args[2]).unwrap_or(0);
    if !(std::mem::size_of::<libc::sockaddr_in>()..=MAX_SOCKADDR).contains(&len) {
        return false;
    }
    let Some(addr) = seccomp::read_memory(call.pid, call.args[1], len) else { return false };
    // The memory read belongs to the caller only if it is still waiting (a pid reused).
    if !seccomp::still_waiting(notify, call.id) {
        return true; // nobody to answer
    }
    let Some((ip, port)) = socket_address(&addr) else { return false };
    if port == 0 {
        return false; // any free port: each keeps its own, as asked
    }
    let Ok(theirs) = seccomp::their_fd(call.pid, fd) else { return false };
    if !fresh_of_family(&theirs, ip) {
        return false; // bound already, or of another family: the kernel says why
    }
    let Some(wanted) = wanted(&theirs, ip, port) else { return false };
    let nonblocking = nix::fcntl::fcntl(&theirs, nix::fcntl::FcntlArg::F_GETFL).is_ok_and(|f| {
        nix::fcntl::OFlag::from_bits_retain(f).contains(nix::fcntl::OFlag::O_NONBLOCK)
    });
    let served = match broker.lock() {
        Ok(mut broker) => broker.serve_bind(group, wanted, nonblocking),
        Err(_) => return false,
    };
    let ours = match served {
        Ok(ours) => ours,
        Err(libc::EMFILE) => {
            warn_cap_once(group);
            return false;
        }
        Err(_) => return false,
    };
    let cloexec = close_on_exec(call.pid, fd);
    if seccomp::place(notify, call.id, ours.as_fd(), fd, cloexec).is_err() {
        return false;
    }
    seccomp::succeed(notify, call.id);
    true
}

/// Whether the program's socket is unbound and of the address's family, as a `bind` the
/// kernel would accept needs.
fn fresh_of_family(theirs: &OwnedFd, ip: IpAddr) -> bool {
    let socket = socket2::SockRef::from(theirs);
    let family_ok = socket.domain().is_ok_and(|d| {
        d == if ip.is_ipv6() { socket2::Domain::IPV6 } else { socket2::Domain::IPV4 }
    });
    let unbound =
        socket.local_addr().ok().and_then(|a| a.as_socket()).is_some_and(|a| a.port() == 0);
    family_ok && unbound
}

/// The group bound as many sockets as it may: said once per group, the binds go ahead.
fn warn_cap_once(group: u16) {
    static WARNED: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let Ok(mut warned) = WARNED.lock() else { return };
    if !warned.contains(&group) {
        warned.push(group);
        tracing::warn!(
            "group {group} binds more than {} ports: the others are not shared (each worker \
             binds its own)",
            super::ports::MAX_SOCKETS_PER_GROUP
        );
    }
}

/// What the program's socket is, for the address it binds: TCP or UDP, and for IPv6
/// whether it takes IPv4 too.
fn wanted(theirs: &OwnedFd, ip: IpAddr, port: u16) -> Option<Wanted> {
    let socket = socket2::SockRef::from(theirs);
    let v6_only = ip.is_ipv6() && socket.only_v6().unwrap_or(true);
    match (socket.r#type().ok()?, socket.protocol().ok().flatten()) {
        (socket2::Type::STREAM, None | Some(socket2::Protocol::TCP)) => {
            Some(Wanted::Tcp { ip: Some(ip), port, v6_only })
        }
        (socket2::Type::DGRAM, None | Some(socket2::Protocol::UDP)) => {
            Some(Wanted::Udp { ip: Some(ip), port, v6_only, v6: ip.is_ipv6() })
        }
        _ => None,
    }
}

/// A `shutdown()` of the group's shared socket would stop it for every worker: it is
/// answered as done, and nothing happens. Any other goes ahead.
fn keep_listening(broker: &Mutex<PortBroker>, notify: BorrowedFd<'_>, call: &Call) -> bool {
    let link = std::fs::read_link(format!("/proc/{}/fd/{}", call.pid, call.args[0]));
    let inode = link.ok().and_then(|l| {
        let text = l.to_str()?.strip_prefix("socket:[")?.strip_suffix(']')?.to_string();
        text.parse::<u64>().ok()
    });
    let Some(inode) = inode else { return false };
    // `shutdown(fd, 7)` and the like are the kernel's to refuse.
    if !matches!(i32::try_from(call.args[1]), Ok(libc::SHUT_RD | libc::SHUT_RDWR)) {
        return false;
    }
    if !broker.lock().is_ok_and(|b| b.holds(inode)) || !seccomp::still_waiting(notify, call.id) {
        return false;
    }
    seccomp::succeed(notify, call.id);
    true
}

/// `sockaddr_in` or `sockaddr_in6`: the address and port; `None` for any other family.
fn socket_address(bytes: &[u8]) -> Option<(IpAddr, u16)> {
    let family = i32::from(u16::from_ne_bytes([*bytes.first()?, *bytes.get(1)?]));
    let port = u16::from_be_bytes([*bytes.get(2)?, *bytes.get(3)?]);
    match family {
        libc::AF_INET => {
            let octets: [u8; 4] = bytes.get(4..8)?.try_into().ok()?;
            Some((IpAddr::V4(Ipv4Addr::from(octets)), port))
        }
        libc::AF_INET6 => {
            let octets: [u8; 16] = bytes.get(8..24)?.try_into().ok()?;
            Some((IpAddr::V6(Ipv6Addr::from(octets)), port))
        }
        _ => None,
    }
}

/// Whether the caller's descriptor is close-on-exec (its `fdinfo` flags): the shared
/// socket put there keeps the program's choice.
fn close_on_exec(pid: u32, fd: RawFd) -> bool {
    let Ok(info) = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")) else {
        return false;
    };
    info.lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .and_then(|f| u32::from_str_radix(f.trim(), 8).ok())
        .is_some_and(|flags| flags & libc::O_CLOEXEC as u32 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_addresses_are_read_in_network_order() {
        let mut v4 = vec![0u8; 16];
        v4[..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
        v4[2..4].copy_from_slice(&8000u16.to_be_bytes());
        v4[4..8].copy_from_slice(&[127, 0, 0, 1]);
        assert_eq!(socket_address(&v4), Some(("127.0.0.1".parse().expect("ip"), 8000)));
        let mut v6 = vec![0u8; 28];
        v6[..2].copy_from_slice(&(libc::AF_INET6 as u16).to_ne_bytes());
        v6[2..4].copy_from_slice(&443u16.to_be_bytes());
        v6[23] = 1;
        assert_eq!(socket_address(&v6), Some(("::1".parse().expect("ip"), 443)));
        let mut unix = vec![0u8; 16];
        unix[..2].copy_from_slice(&(libc::AF_UNIX as u16).to_ne_bytes());
        assert_eq!(socket_address(&unix), None);
        assert_eq!(socket_address(&v4[..6]), None, "short: refused, not read past");
    }
}
