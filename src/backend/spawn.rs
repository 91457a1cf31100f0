//! Starting one worker process with exactly what docs/workers.md promises.
//!
//! WHY the child does its own `execve`: `LISTEN_PID` must hold the worker's own pid,
//! which exists only after fork, and nothing that allocates or takes a lock may run
//! between fork and exec (`set_var` there deadlocks, `setenv` is lost). So argv, envp and
//! a fixed-size `LISTEN_PID=` slot are all built before the fork; the child only writes
//! digits into the slot and calls async-signal-safe syscalls.
//!
//! WHY spawn from one long-lived thread: the parent-death signal fires when the *thread*
//! that forked exits. The runtime calls this only from the main thread.
//!
//! WHY `clone(CLONE_VM | CLONE_VFORK | CLONE_FILES)` and not `fork`: a fork copies
//! corral's page tables and, worse, its descriptor table, and the exec then closes every
//! close-on-exec descriptor one by one. corral holds three per worker, so with a thousand
//! workers each spawn closed thousands of files and the start of N workers cost O(N²)
//! (measured: 2.1 s for 1,000 workers against 0.57 s for a 50-line C supervisor). Here the
//! child shares corral's memory and descriptor table (corral's thread waits until it has
//! exec'd, as with vfork), and its first act is `close_range(.., CLOSE_RANGE_UNSHARE)`,
//! which gives it a private table holding only the descriptors below a small staging
//! range: nothing of corral's above it is copied or closed. What the worker gets is put
//! into that staging range by the parent first.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::sys::signal::{SigSet, SigmaskHow, pthread_sigmask};

mod stack;
use stack::ChildStack;

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
    pub fds: &'a [BorrowedFd<'a>],
    /// Adopt the worker's own binds (docs/sharing-a-port.md): a seccomp filter that sends
    /// its `bind` and `shutdown` calls to corral; `no_new_privs` is needed unless corral has
    /// `CAP_SYS_ADMIN`.
    pub adopt_binds: Option<AdoptBinds>,
    /// stdout and stderr go to `/dev/null` (an exec probe's, which nobody reads): the
    /// returned `stdout` is `/dev/null` opened for reading, at its end at once.
    pub discard_output: bool,
}

#[derive(Clone, Copy, Debug)]
pub struct AdoptBinds {
    pub no_new_privs: bool,
}

pub struct SpawnedChild {
    pub pid: u32,
    /// With a pty: its master, where stdout and stderr both arrive.
    pub stdout: OwnedFd,
    /// `None` with a pty.
    pub stderr: Option<OwnedFd>,
    /// With `adopt_binds`: where the worker's `bind` calls arrive, or why the filter could
    /// not be installed (an errno; the worker runs without it).
    pub binds: Option<Result<OwnedFd, i32>>,
}

/// The child's answer slot before it tried to install the filter.
const NOT_TRIED: libc::c_int = libc::c_int::MIN;

/// The seccomp filter, built before the clone.
struct SeccompPlan {
    _filter: Box<[libc::sock_filter]>,
    prog: libc::sock_fprog,
    no_new_privs: bool,
}

/// At most this many fds are passed (listeners + the event channel).
pub const MAX_PASSED_FDS: usize = 64;

const LISTEN_PID_PREFIX: &[u8] = b"LISTEN_PID=";
const LISTEN_PID_LEN: usize = 32;

/// Everything the child needs, allocated before the clone.
struct ExecImage {
    program: CString,
    _argv: Vec<CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    _env: Vec<CString>,
    env_ptrs: Vec<*const libc::c_char>,
    cwd: Option<CString>,
    /// Heap buffer the child writes `LISTEN_PID=<pid>\0` into; null when unused.
    listen_pid_slot: *mut u8,
    _listen_pid_buf: Option<Box<[u8; LISTEN_PID_LEN]>>,
    fd_count: usize,
    /// The open-file limit corral inherited, to give back (it raised its own).
    nofile: Option<libc::rlimit64>,
    parent_pid: libc::pid_t,
    max_signal: libc::c_int,
    seccomp: Option<SeccompPlan>,
    /// stdout is a pty's slave: make it the session's controlling terminal.
    ctty: bool,
}

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
        let cwd = spec.cwd.map(|c| cstring(c.as_os_str().as_bytes())).transpose()?;
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
        let seccomp = spec.adopt_binds.and_then(|adopt| {
            let mut filter = super::seccomp::bind_filter().into_boxed_slice();
            let len = u16::try_from(filter.len()).ok().filter(|&n| n > 0)?;
            let prog = libc::sock_fprog { len, filter: filter.as_mut_ptr() };
            Some(SeccompPlan { _filter: filter, prog, no_new_privs: adopt.no_new_privs })
        });
        Ok(ExecImage {
            program,
            _argv: argv,
            argv_ptrs,
            _env: env,
            env_ptrs,
            cwd,
            listen_pid_slot: slot,
            _listen_pid_buf: buf,
            fd_count: spec.fds.len(),
            nofile: super::limits::for_workers(),
            parent_pid: nix::unistd::getpid().as_raw(),
            max_signal: libc::SIGRTMAX(),
            seccomp,
            ctty: false,
        })
    }

    /// Runs in the child between clone and exec, on its own stack, in corral's memory:
    /// async-signal-safe calls only, no allocation, no thread-locals. Returns only on
    /// failure, with the errno.
    ///
    /// WHY one long function: it is the child's whole life between clone and exec, one
    /// sequence of async-signal-safe calls whose order matters (unshare first, the mask
    /// last); helpers would hide that order behind more `unsafe` signatures.
    ///
    /// # Safety
    /// Call only in a child made by `clone(CLONE_VM | CLONE_VFORK | CLONE_FILES)` whose
    /// parent filled `staging` (see [`Staging`]); `binds` must be writable.
    unsafe fn exec(&self, staging: RawFd, binds: *mut libc::c_int) -> libc::c_int {
        // The failed call's errno: this thread's (the suspended parent thread's, which is
        // where the child's failed call put it). Read raw, like the calls themselves.
        macro_rules! errno {
            () => {
                *libc::__errno_location()
            };
        }
        macro_rules! check {
            ($e:expr) => {
                if $e < 0 {
                    return errno!();
                }
            };
        }
        // WHY raw (not nix) on this side of the clone: only calls that are
        // async-signal-safe and allocate nothing by construction, with no wrapper whose
        // implementation could start to; nix's `Signal` cannot name 32, 33 or the
        // real-time signals anyway.
        // SAFETY: every call below is an async-signal-safe syscall wrapper taking
        // integers or pointers into memory allocated before the clone; errno is this
        // thread's; the `LISTEN_PID=` slot is the buffer `new` allocated, with room for the
        // prefix, 20 digits and the NUL.
        unsafe {
            // WHY before the table is unshared: the filter's listener descriptor is then
            // made in corral's table, where corral finds it by the number written back
            // (it is close-on-exec, and above the staging run it is not copied anyway).
            // A filter that cannot be installed leaves the worker as it would be without.
            if let Some(plan) = &self.seccomp {
                let nnp = !plan.no_new_privs
                    || libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1 as libc::c_ulong, 0, 0, 0) == 0;
                *binds = if nnp {
                    let fd = libc::syscall(
                        libc::SYS_seccomp,
                        libc::SECCOMP_SET_MODE_FILTER,
                        libc::SECCOMP_FILTER_FLAG_NEW_LISTENER,
                        &raw const plan.prog,
                    );
                    if fd >= 0 { fd as libc::c_int } else { -errno!() }
                } else {
                    -errno!()
                };
            }
            // A private descriptor table first: until then every change would be
            // corral's too. Only the fds below the staging range's end are copied.
            let staged_end = (staging + STAGED as RawFd) as libc::c_uint;
            let unshared = libc::syscall(
                libc::SYS_close_range,
                staged_end,
                libc::c_uint::MAX,
                libc::CLOSE_RANGE_UNSHARE,
            );
            if unshared != 0 {
                // Before Linux 5.9: copy the whole table; close-on-exec does the rest.
                check!(libc::unshare(libc::CLONE_FILES));
            }
            // Own session and group: terminal signals never reach the worker, and corral
            // can signal its whole tree with one killpg.
            check!(libc::setsid());
            check!(libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0));
            // WHY: if corral died before prctl, the signal will never come; go now.
            if libc::getppid() != self.parent_pid {
                libc::_exit(1);
            }
            // Default dispositions and an empty mask, whatever corral inherited or set
            // (it blocks everything around the clone; nohup's ignored SIGHUP is undone too).
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

            // stdin, stdout, stderr from the first three staged slots; dup2 clears
            // close-on-exec on its target.
            for target in 0..3 {
                check!(libc::dup2(staging + target, target));
            }
            // WHY a controlling terminal: the kernel sends SIGWINCH on a resize only to a
            // terminal's foreground group, and programs that open /dev/tty find this one.
            // Safe here: the worker leads a new session with none, and the pty is new. Its
            // cost is a terminal's: SIGHUP to the group when the leader exits. A refusal
            // leaves a tty that is not controlling, which is still a tty.
            if self.ctty {
                libc::ioctl(1, libc::TIOCSCTTY, 0);
            }
            // Move every passed fd above the target range first, so no dup2 clobbers a
            // source; dup2 onto the target then clears close-on-exec (dup2(fd, fd) would
            // not, which is why a source is never used in place).
            let first: RawFd = 3;
            let end = first + self.fd_count as RawFd;
            let mut moved = [-1; MAX_PASSED_FDS];
            for (i, slot) in moved.iter_mut().take(self.fd_count).enumerate() {
                *slot = libc::fcntl(staging + 3 + i as RawFd, libc::F_DUPFD_CLOEXEC, end);
                check!(*slot);
            }
            for (target, &fd) in (first..end).zip(moved.iter().take(self.fd_count)) {
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
            if let Some(limit) = &self.nofile {
                check!(libc::prlimit64(0, libc::RLIMIT_NOFILE, limit, std::ptr::null_mut()));
            }
            if let Some(cwd) = &self.cwd {
                check!(libc::chdir(cwd.as_ptr()));
            }
            if !self.listen_pid_slot.is_null() {
                let digits = std::slice::from_raw_parts_mut(
                    self.listen_pid_slot.add(LISTEN_PID_PREFIX.len()),
                    LISTEN_PID_LEN - LISTEN_PID_PREFIX.len(),
                );
                write_pid(digits, libc::getpid());
            }
            libc::execve(self.program.as_ptr(), self.argv_ptrs.as_ptr(), self.env_ptrs.as_ptr());
            errno!()
        }
    }
}

/// Writes the decimal digits of `pid` and a NUL into `slot`; writes nothing if it is
/// shorter than 21 bytes. Runs in the child: no allocation, and no panic path either.
fn write_pid(slot: &mut [u8], pid: libc::pid_t) {
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
    let (digits, len) = (&digits[i..], digits.len() - i);
    if let Some(dst) = slot.get_mut(..=len) {
        dst[..len].copy_from_slice(digits);
        dst[len] = 0;
    }
}

/// Blocks every signal on this thread for the duration of a clone, so no handler of
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

/// Staged slots: stdin, stdout, stderr, then the passed fds.
const STAGED: usize = 3 + MAX_PASSED_FDS;

/// A run of `STAGED` consecutive low descriptor numbers that corral keeps for spawning:
/// each holds `/dev/null` until a spawn puts what the worker gets there. Low, because the
/// child's private table is a copy of everything below the run's end.
struct Staging {
    /// The run, in order: `slots[i]` is descriptor `base + i`.
    slots: Vec<OwnedFd>,
    null: OwnedFd,
}

impl Staging {
    fn reserve() -> io::Result<Staging> {
        let open = || -> io::Result<OwnedFd> {
            let file = std::fs::OpenOptions::new().read(true).write(true).open("/dev/null")?;
            Ok(OwnedFd::from(file)) // close-on-exec, as std opens every file
        };
        let null = open()?;
        // Each open takes the lowest free number, so once the holes below are filled the
        // numbers come consecutively. WHY the fillers stay open until the run is complete:
        // a hole closed too early would be taken again. WHY a loop: another thread may
        // open a file in the run meanwhile; the run starts over after it. Descriptors are
        // few when the first worker starts, so this ends fast.
        let mut fillers = Vec::new();
        let mut slots: Vec<OwnedFd> = Vec::with_capacity(STAGED);
        while slots.len() < STAGED {
            let fd = open()?;
            if slots.last().is_some_and(|last| last.as_raw_fd() + 1 != fd.as_raw_fd()) {
                fillers.append(&mut slots);
            }
            slots.push(fd);
        }
        Ok(Staging { slots, null })
    }

    fn base(&self) -> RawFd {
        self.slots[0].as_raw_fd()
    }

    /// Puts `fds` into the slots from 1 on (slot 0, stdin, is always `/dev/null`).
    fn load(&mut self, fds: &[BorrowedFd<'_>]) -> io::Result<()> {
        for (i, fd) in fds.iter().enumerate() {
            let Some(slot) = self.slots.get_mut(1 + i) else {
                self.unload(i);
                return Err(io::Error::new(io::ErrorKind::InvalidInput, "too many fds to stage"));
            };
            // dup3 onto a slot this struct owns closes what was there and puts a copy of
            // `fd` under the same number, still owned by the slot.
            if let Err(e) = nix::unistd::dup3(fd, slot, nix::fcntl::OFlag::O_CLOEXEC) {
                self.unload(i);
                return Err(e.into());
            }
        }
        Ok(())
    }

    /// Puts `/dev/null` back into the first `count` slots from 1 on, closing corral's extra
    /// copies of a worker's pipe ends and sockets (ours would hide its EOF).
    fn unload(&mut self, count: usize) {
        for slot in self.slots.iter_mut().skip(1).take(count) {
            let _ = nix::unistd::dup3(&self.null, slot, nix::fcntl::OFlag::O_CLOEXEC);
        }
    }
}

struct Spawner {
    staging: Staging,
    stack: ChildStack,
}

static SPAWNER: std::sync::Mutex<Option<Spawner>> = std::sync::Mutex::new(None);

/// What the child reads (the image and the staging base) and writes (its errno, and the
/// seccomp listener's descriptor or the negated errno of its failure).
struct Handoff<'a> {
    image: &'a ExecImage,
    staging: RawFd,
    error: libc::c_int,
    binds: libc::c_int,
}

extern "C" fn child_main(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the `Handoff` that `spawn` passed to clone; the parent is suspended
    // (CLONE_VFORK) until this child execs or exits, so nothing else touches it. This is
    // the child `exec` asks for, and the parent staged the fds. _exit is
    // async-signal-safe; 127 as a shell's "could not run".
    unsafe {
        let handoff = &mut *arg.cast::<Handoff<'_>>();
        handoff.error = handoff.image.exec(handoff.staging, &raw mut handoff.binds);
        libc::_exit(127)
    }
}

/// Forks and execs one worker, its stdout and stderr on pipes or on `pty`. Call only from
/// the long-lived spawning thread.
pub fn spawn(spec: &ExecSpec<'_>, pty: Option<super::pty::Pty>) -> io::Result<SpawnedChild> {
    let mut image = ExecImage::new(spec)?;
    image.ctty = pty.is_some();
    let (out_r, out_w, err_r, err_w) = if let Some(pty) = pty {
        let slave = pty.slave.try_clone()?;
        (pty.master, pty.slave, None, slave)
    } else if spec.discard_output {
        let null = |write: bool| -> io::Result<OwnedFd> {
            let file = std::fs::OpenOptions::new().read(!write).write(write).open("/dev/null")?;
            Ok(OwnedFd::from(file))
        };
        (null(false)?, null(true)?, None, null(true)?)
    } else {
        let (out_r, out_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        let (err_r, err_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        (out_r, out_w, Some(err_r), err_w)
    };
    let mut guard = SPAWNER.lock().map_err(|_| io::Error::other("spawner poisoned"))?;
    if guard.is_none() {
        *guard = Some(Spawner { staging: Staging::reserve()?, stack: ChildStack::new()? });
    }
    let Some(spawner) = guard.as_mut() else {
        return Err(io::Error::other("no spawner"));
    };
    let mut staged = Vec::with_capacity(2 + spec.fds.len());
    staged.extend([out_w.as_fd(), err_w.as_fd()]);
    staged.extend_from_slice(spec.fds);
    spawner.staging.load(&staged)?;
    let mut handoff =
        Handoff { image: &image, staging: spawner.staging.base(), error: 0, binds: NOT_TRIED };
    let pid = {
        let _blocked = BlockedSignals::new();
        let flags = libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_FILES | libc::SIGCHLD;
        // SAFETY: the child runs `child_main` on a stack of its own, shares our memory
        // and waits for nothing of ours; this thread is suspended until it execs or
        // exits, so `handoff` and `image` outlive its use of them.
        unsafe {
            libc::clone(
                child_main,
                spawner.stack.top(),
                flags,
                (&raw mut handoff).cast::<libc::c_void>(),
            )
        }
    };
    let clone_error = (pid < 0).then(io::Error::last_os_error);
    spawner.staging.unload(staged.len());
    drop((out_w, err_w));
    if let Some(e) = clone_error {
        return Err(e);
    }
    // The child's writes happened before the parent resumed (CLONE_VFORK). WHY plain
    // reads: `handoff`'s address went to clone, a call the compiler cannot see into, so it
    // reads the fields again after it as it would after any such call that may write them.
    let errno = handoff.error;
    let binds = match handoff.binds {
        NOT_TRIED => None,
        // SAFETY: the child made this descriptor in our table (before unsharing it) and
        // nothing else knows its number: it is ours alone.
        fd if fd >= 0 => Some(Ok(unsafe { OwnedFd::from_raw_fd(fd) })),
        failed => Some(Err(-failed)),
    };
    if errno != 0 {
        // It exited with 127 without exec'ing: collect it here, as the runtime will not
        // hear of a pid it never saw.
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
        return Err(io::Error::from_raw_os_error(errno));
    }
    Ok(SpawnedChild { pid: pid.cast_unsigned(), stdout: out_r, stderr: err_r, binds })
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
        write_pid(&mut buf, 4_194_304);
        assert_eq!(&buf[..8], b"4194304\0");
        write_pid(&mut buf, 7);
        assert_eq!(&buf[..2], b"7\0");
        let mut slot = [0xffu8; LISTEN_PID_LEN - LISTEN_PID_PREFIX.len()];
        write_pid(&mut slot, i32::MAX);
        assert_eq!(&slot[..11], b"2147483647\0");
        let mut short = [0xffu8; 3];
        write_pid(&mut short, 1234);
        assert_eq!(short, [0xff; 3], "no room: nothing written");
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
            adopt_binds: None,
            discard_output: false,
        };
        let err = spawn(&spec, None).err().expect("exec must fail");
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
    }
}
