//! Starting one worker process with exactly what SPEC §3 promises.
//!
//! WHY the child does its own `execve`: `LISTEN_PID` must hold the worker's own pid,
//! which exists only after fork, and nothing that allocates or takes a lock may run
//! between fork and exec (`set_var` there deadlocks, `setenv` is lost). So argv, envp and
//! a fixed-size `LISTEN_PID=` slot are all built before the fork; the child only writes
//! digits into the slot and calls async-signal-safe syscalls.
//!
//! WHY spawn from one long-lived thread: the parent-death signal fires when the *thread*
//! that forked exits. The runtime calls this only from the main thread.

use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::{OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Stdio;

use nix::sys::signal::{SigSet, SigmaskHow, pthread_sigmask};

/// What to exec, prepared by the caller.
pub struct ExecSpec<'a> {
    pub program: &'a Path,
    pub argv: &'a [std::ffi::OsString],
    /// Complete environment as `KEY=VALUE`, without `LISTEN_PID`.
    pub env: Vec<Vec<u8>>,
    /// Add `LISTEN_PID=<the worker's pid>` (only when it gets listening sockets).
    pub listen_pid: bool,
    pub cwd: Option<&'a Path>,
    /// Placed at fds 3, 4, … in this order.
    pub fds: &'a [RawFd],
}

pub struct SpawnedChild {
    pub pid: u32,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

/// At most this many fds are passed (listeners + the event channel).
pub const MAX_PASSED_FDS: usize = 64;

const LISTEN_PID_PREFIX: &[u8] = b"LISTEN_PID=";
const LISTEN_PID_LEN: usize = 32;

/// Everything the child needs, allocated before the fork.
struct ExecImage {
    program: CString,
    _argv: Vec<CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    _env: Vec<CString>,
    env_ptrs: Vec<*const libc::c_char>,
    /// Heap buffer the child writes `LISTEN_PID=<pid>\0` into; null when unused.
    listen_pid_slot: *mut u8,
    _listen_pid_buf: Option<Box<[u8; LISTEN_PID_LEN]>>,
    fds: [RawFd; MAX_PASSED_FDS],
    fd_count: usize,
    parent_pid: libc::pid_t,
    max_signal: libc::c_int,
}

// SAFETY: the raw pointers point into heap buffers owned by this same struct (argv, env,
// the LISTEN_PID box), which never move or change after construction. The image is only
// read in the parent and, after fork, in the child's own copy of memory.
unsafe impl Send for ExecImage {}
// SAFETY: see Send; nothing is mutated through a shared reference in the parent.
unsafe impl Sync for ExecImage {}

fn cstring(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL byte in argument"))
}

impl ExecImage {
    fn new(spec: &ExecSpec<'_>) -> io::Result<ExecImage> {
        if spec.fds.len() > MAX_PASSED_FDS {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "too many sockets to pass"));
        }
        let program = cstring(spec.program.as_os_str().as_bytes())?;
        let argv =
            spec.argv.iter().map(|a| cstring(a.as_bytes())).collect::<io::Result<Vec<_>>>()?;
        let env = spec.env.iter().map(|e| cstring(e)).collect::<io::Result<Vec<_>>>()?;
        let mut argv_ptrs: Vec<_> = argv.iter().map(|a| a.as_ptr()).collect();
        argv_ptrs.push(std::ptr::null());
        let mut env_ptrs: Vec<_> = env.iter().map(|e| e.as_ptr()).collect();
        let (mut buf, mut slot) = (None, std::ptr::null_mut());
        if spec.listen_pid {
            let mut b = Box::new([0u8; LISTEN_PID_LEN]);
            b[..LISTEN_PID_PREFIX.len()].copy_from_slice(LISTEN_PID_PREFIX);
            slot = b.as_mut_ptr();
            env_ptrs.push(slot.cast_const().cast());
            buf = Some(b);
        }
        env_ptrs.push(std::ptr::null());
        let mut fds = [-1; MAX_PASSED_FDS];
        fds[..spec.fds.len()].copy_from_slice(spec.fds);
        Ok(ExecImage {
            program,
            _argv: argv,
            argv_ptrs,
            _env: env,
            env_ptrs,
            listen_pid_slot: slot,
            _listen_pid_buf: buf,
            fds,
            fd_count: spec.fds.len(),
            parent_pid: nix::unistd::getpid().as_raw(),
            max_signal: libc::SIGRTMAX(),
        })
    }

    /// Runs in the child between fork and exec: async-signal-safe calls only, no
    /// allocation. Returns only on failure; std reports the error to the parent.
    ///
    /// # Safety
    /// Call only in a freshly forked child.
    unsafe fn exec(&self) -> io::Error {
        macro_rules! check {
            ($e:expr) => {
                if $e < 0 {
                    return io::Error::last_os_error();
                }
            };
        }
        // WHY raw (not nix) on this side of the fork: only calls that are async-signal-safe
        // and allocate nothing by construction, with no wrapper whose implementation could
        // start to; nix's `Signal` cannot name 32, 33 or the real-time signals anyway.
        // SAFETY: every call below is an async-signal-safe syscall wrapper taking
        // integers or pointers into memory allocated before the fork.
        unsafe {
            // Own session and group: terminal signals never reach the worker, and corral
            // can signal its whole tree with one killpg.
            check!(libc::setsid());
            check!(libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0));
            // WHY: if corral died before prctl, the signal will never come; go now.
            if libc::getppid() != self.parent_pid {
                libc::_exit(1);
            }
            // Default dispositions and an empty mask, whatever corral inherited or set
            // (it blocks everything around the fork; nohup's ignored SIGHUP is undone too).
            // WHY the raw syscall: glibc's signal() refuses 32 and 33 (reserved for its
            // threads), yet a parent can leave them ignored (glibc's posix_spawn does) and
            // an ignored disposition survives exec. A zeroed kernel sigaction is SIG_DFL,
            // no flags, empty mask, whatever the architecture's field order.
            let zero = [0u64; 4];
            for sig in 1..=self.max_signal {
                if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                    let none = std::ptr::null_mut::<u64>();
                    libc::syscall(libc::SYS_rt_sigaction, sig, zero.as_ptr(), none, 8usize);
                }
            }
            let mut empty: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&raw mut empty);
            check!(libc::sigprocmask(libc::SIG_SETMASK, &raw const empty, std::ptr::null_mut()));

            // Move every source above the target range first, so no dup2 clobbers a
            // source; dup2 onto the target then clears close-on-exec (dup2(fd, fd) would
            // not, which is why a source is never used in place).
            let first: RawFd = 3;
            let end = first + self.fd_count as RawFd;
            let mut moved = [-1; MAX_PASSED_FDS];
            for (slot, &fd) in moved.iter_mut().zip(&self.fds[..self.fd_count]) {
                *slot = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, end);
                check!(*slot);
            }
            for (target, &fd) in (first..end).zip(&moved[..self.fd_count]) {
                check!(libc::dup2(fd, target));
            }
            // Nothing else of the primary's crosses exec, not even a descriptor someone
            // leaked into corral itself.
            let rc = libc::syscall(
                libc::SYS_close_range,
                end as libc::c_uint,
                libc::c_uint::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            );
            if rc != 0 {
                for fd in end..4096 {
                    libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
                }
            }
            if !self.listen_pid_slot.is_null() {
                write_pid(self.listen_pid_slot.add(LISTEN_PID_PREFIX.len()), libc::getpid());
            }
            libc::execve(self.program.as_ptr(), self.argv_ptrs.as_ptr(), self.env_ptrs.as_ptr());
        }
        io::Error::last_os_error()
    }
}

/// Writes the decimal digits of `pid` and a NUL at `at` (room for 20 bytes).
///
/// # Safety
/// `at` must point to at least 21 writable bytes.
unsafe fn write_pid(at: *mut u8, pid: libc::pid_t) {
    let mut digits = [0u8; 20];
    let mut n = pid.unsigned_abs();
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let len = digits.len() - i;
    // SAFETY: the caller guarantees room for 20 digits and the NUL.
    unsafe {
        std::ptr::copy_nonoverlapping(digits[i..].as_ptr(), at, len);
        *at.add(len) = 0;
    }
}

/// Blocks every signal on this thread for the duration of a fork, so no handler of
/// corral's runs in the child before it has reset the dispositions.
struct BlockedSignals(SigSet);

impl BlockedSignals {
    fn new() -> BlockedSignals {
        let mut old = SigSet::empty();
        // sigfillset's set holds the real-time signals too, whatever nix's `Signal` names.
        let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::all()), Some(&mut old));
        BlockedSignals(old)
    }
}

impl Drop for BlockedSignals {
    fn drop(&mut self) {
        let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&self.0), None);
    }
}

/// Forks and execs one worker. Call only from the long-lived spawning thread.
pub fn spawn(spec: &ExecSpec<'_>) -> io::Result<SpawnedChild> {
    let image = ExecImage::new(spec)?;
    let mut cmd = std::process::Command::new(OsStr::from_bytes(image.program.as_bytes()));
    // The env std would build is never used (the child execs itself); clearing it saves
    // copying corral's whole environment on every spawn.
    cmd.env_clear().stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    if let Some(cwd) = spec.cwd {
        cmd.current_dir(cwd);
    }
    // SAFETY: the closure only calls `ExecImage::exec`, which is async-signal-safe and
    // allocates nothing (see there).
    unsafe {
        cmd.pre_exec(move || Err(image.exec()));
    }
    let mut child = {
        let _blocked = BlockedSignals::new();
        cmd.spawn()?
    };
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(io::Error::other("stdio pipes missing"));
    };
    // Dropping `child` neither waits nor kills: the runtime's single reaper collects it.
    Ok(SpawnedChild { pid: child.id(), stdout: stdout.into(), stderr: stderr.into() })
}

/// The event channel for one worker generation: (primary's end, worker's end). Both are
/// close-on-exec; the worker's end crosses exec only through the fd placement above.
pub fn event_socketpair() -> io::Result<(OwnedFd, OwnedFd)> {
    let (a, b) = std::os::unix::net::UnixStream::pair()?;
    a.set_nonblocking(true)?;
    Ok((a.into(), b.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_digits() {
        let mut buf = [0xffu8; 24];
        // SAFETY: 24 bytes of room.
        unsafe { write_pid(buf.as_mut_ptr(), 4_194_304) };
        assert_eq!(&buf[..8], b"4194304\0");
        // SAFETY: 24 bytes of room.
        unsafe { write_pid(buf.as_mut_ptr(), 7) };
        assert_eq!(&buf[..2], b"7\0");
    }

    #[test]
    fn exec_failure_is_reported_not_hidden() {
        let spec = ExecSpec {
            program: Path::new("/nonexistent/corral-test"),
            argv: &["x".into()],
            env: vec![],
            listen_pid: true,
            cwd: None,
            fds: &[],
        };
        let err = spawn(&spec).err().expect("exec must fail");
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
    }
}
