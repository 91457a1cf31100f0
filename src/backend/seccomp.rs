//! Seccomp user notification: how corral adopts a worker's own `bind()` without the
//! program's help (docs/sharing-a-port.md). A filter installed in the child before exec
//! sends every `bind` and `shutdown` of the worker and its descendants to corral, which
//! answers each: with the group's shared socket put at the caller's descriptor number, as
//! a no-op (a `shutdown` of the shared listener), or "go ahead" (everything else).
//!
//! The syscalls here have no safe wrapper in nix: the seccomp ioctls, `pidfd_getfd`.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// `AUDIT_ARCH_*` of the architecture corral is built for: a worker's syscalls of another
/// ABI (a 32-bit program) are let through, not adopted.
#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7;

/// The filter, as classic BPF: `bind` of this ABI goes to corral, and so does `shutdown`
/// unless it is `SHUT_WR`. WHY not every `shutdown`: only `SHUT_RD` and `SHUT_RDWR` stop a
/// listening socket, and servers call `shutdown(SHUT_WR)` on every connection they close;
/// those must cost nothing.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub fn bind_filter() -> Vec<libc::sock_filter> {
    let stmt = |code: u32, k: u32| libc::sock_filter { code: code as u16, jt: 0, jf: 0, k };
    let jeq = |k: u32, jt: u8, jf: u8| libc::sock_filter {
        code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
        jt,
        jf,
        k,
    };
    let load = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
    let ret = libc::BPF_RET | libc::BPF_K;
    // Offsets in `struct seccomp_data`: nr at 0, arch at 4, args at 16 (8 bytes each; the
    // low half first on these little-endian machines).
    vec![
        stmt(load, 4),
        jeq(AUDIT_ARCH, 1, 0),
        stmt(ret, libc::SECCOMP_RET_ALLOW),
        stmt(load, 0),
        jeq(libc::SYS_bind as u32, 4, 0),
        jeq(libc::SYS_shutdown as u32, 0, 2),
        stmt(load, 16 + 8),
        jeq(libc::SHUT_WR as u32, 0, 1),
        stmt(ret, libc::SECCOMP_RET_ALLOW),
        stmt(ret, libc::SECCOMP_RET_USER_NOTIF),
    ]
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub fn bind_filter() -> Vec<libc::sock_filter> {
    Vec::new()
}

/// One intercepted call, as the kernel reports it.
#[derive(Clone, Copy, Debug)]
pub struct Call {
    pub id: u64,
    pub pid: u32,
    pub nr: i64,
    pub args: [u64; 6],
}

impl Call {
    pub fn is_bind(&self) -> bool {
        self.nr == libc::SYS_bind
    }

    pub fn is_shutdown(&self) -> bool {
        self.nr == libc::SYS_shutdown
    }
}

/// One seccomp user-notification ioctl, each request with the only argument type it
/// takes: the pairing that makes [`ioctl`] sound.
enum Request<'a> {
    Recv(&'a mut libc::seccomp_notif),
    IdValid(&'a mut u64),
    Send(&'a mut libc::seccomp_notif_resp),
    AddFd(&'a mut libc::seccomp_notif_addfd),
}

/// WHY raw: nix's ioctl macros only generate unsafe functions; one door here instead.
fn ioctl(notify: BorrowedFd<'_>, request: Request<'_>) -> io::Result<()> {
    let (request, arg): (_, *mut libc::c_void) = match request {
        Request::Recv(a) => (libc::SECCOMP_IOCTL_NOTIF_RECV, std::ptr::from_mut(a).cast()),
        Request::IdValid(a) => (libc::SECCOMP_IOCTL_NOTIF_ID_VALID, std::ptr::from_mut(a).cast()),
        Request::Send(a) => (libc::SECCOMP_IOCTL_NOTIF_SEND, std::ptr::from_mut(a).cast()),
        Request::AddFd(a) => (libc::SECCOMP_IOCTL_NOTIF_ADDFD, std::ptr::from_mut(a).cast()),
    };
    // SAFETY: each request reads or writes exactly one value of the type `Request` pairs
    // it with, which `arg` points to and which outlives the call.
    let rc = unsafe { libc::ioctl(notify.as_raw_fd(), request, arg) };
    if rc < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// The next call waiting on `notify`; `None` when it went away meanwhile (its caller died).
pub fn receive(notify: BorrowedFd<'_>) -> Option<Call> {
    // All zero, as the RECV ioctl requires of its input.
    let data = libc::seccomp_data { nr: 0, arch: 0, instruction_pointer: 0, args: [0; 6] };
    let mut raw = libc::seccomp_notif { id: 0, pid: 0, flags: 0, data };
    ioctl(notify, Request::Recv(&mut raw)).ok()?;
    Some(Call { id: raw.id, pid: raw.pid, nr: i64::from(raw.data.nr), args: raw.data.args })
}

/// Whether the call (and so its process) is still waiting: checked after reading its
/// memory, so a pid reused meanwhile is never trusted.
pub fn still_waiting(notify: BorrowedFd<'_>, id: u64) -> bool {
    let mut id = id;
    ioctl(notify, Request::IdValid(&mut id)).is_ok()
}

/// Lets the call go through as if corral were not there.
pub fn go_ahead(notify: BorrowedFd<'_>, id: u64) {
    respond(notify, id, 0, 0, libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32);
}

/// Answers the call with success (its return value 0) without doing it.
pub fn succeed(notify: BorrowedFd<'_>, id: u64) {
    respond(notify, id, 0, 0, 0);
}

fn respond(notify: BorrowedFd<'_>, id: u64, val: i64, error: i32, flags: u32) {
    let mut resp = libc::seccomp_notif_resp { id, val, error, flags };
    // A failure means the caller is gone: nothing to answer.
    let _ = ioctl(notify, Request::Send(&mut resp));
}

/// Puts `ours` into the caller at descriptor `target` (replacing what was there), with
/// close-on-exec as asked.
pub fn place(
    notify: BorrowedFd<'_>,
    id: u64,
    ours: BorrowedFd<'_>,
    target: RawFd,
    cloexec: bool,
) -> io::Result<()> {
    let mut add = libc::seccomp_notif_addfd {
        id,
        flags: libc::SECCOMP_ADDFD_FLAG_SETFD as u32,
        srcfd: ours.as_raw_fd() as u32,
        newfd: target as u32,
        newfd_flags: if cloexec { libc::O_CLOEXEC as u32 } else { 0 },
    };
    ioctl(notify, Request::AddFd(&mut add))
}

/// A copy of descriptor `fd` of process `pid` (the socket a worker is binding).
pub fn their_fd(pid: u32, fd: RawFd) -> io::Result<OwnedFd> {
    let pid = libc::pid_t::try_from(pid).map_err(|_| io::Error::from_raw_os_error(libc::ESRCH))?;
    // WHY raw: nix has neither pidfd_open nor pidfd_getfd.
    // SAFETY: both syscalls take integers and return a new descriptor or -1; each new
    // descriptor is ours alone (pidfd_getfd's is close-on-exec, and so is pidfd_open's), so
    // an `OwnedFd` takes it at once.
    unsafe {
        let pidfd = libc::syscall(libc::SYS_pidfd_open, pid, 0);
        if pidfd < 0 {
            return Err(io::Error::last_os_error());
        }
        let pidfd = OwnedFd::from_raw_fd(pidfd as RawFd);
        let got = libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0);
        if got < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(OwnedFd::from_raw_fd(got as RawFd))
    }
}

/// `len` bytes at `addr` in process `pid` (a `sockaddr` it passed to `bind`).
pub fn read_memory(pid: u32, addr: u64, len: usize) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; len];
    let pid = nix::unistd::Pid::from_raw(libc::pid_t::try_from(pid).ok()?);
    let remote = [nix::sys::uio::RemoteIoVec { base: usize::try_from(addr).ok()?, len }];
    let n =
        nix::sys::uio::process_vm_readv(pid, &mut [std::io::IoSliceMut::new(&mut buf)], &remote)
            .ok()?;
    (n == len).then_some(buf)
}
