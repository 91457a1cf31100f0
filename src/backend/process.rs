//! Signals, reaping and process-tree facts, as thin safe wrappers over the syscalls.

use std::io;

use nix::errno::Errno;
use nix::sys::signal::killpg;
use nix::unistd::Pid;

use crate::core::ExitStatus;
use crate::signal::Signal;

/// Sends `signal` to the process group `pgid`. A group that is already gone is not an
/// error.
pub fn signal_group(pgid: u32, signal: Signal) -> io::Result<()> {
    send(pgid, true, signal)
}

/// Sends `signal` to one process.
pub fn signal_pid(pid: u32, signal: Signal) -> io::Result<()> {
    send(pid, false, signal)
}

fn send(pid: u32, group: bool, signal: Signal) -> io::Result<()> {
    let pid = pid as libc::pid_t;
    check_kill(raw(signal, if group { Raw::KillGroup(pid) } else { Raw::Kill(pid) }))
}

/// Restores the default action of `signal` in this process (real-time signals included).
pub fn default_action(signal: Signal) {
    // Failure (SIGKILL, SIGSTOP, a bad number) changes nothing.
    raw(signal, Raw::Default);
}

/// Ignores `signal` in this process from now on (and in what it execs).
pub fn ignore(signal: Signal) {
    raw(signal, Raw::Ignore);
}

/// The signal calls made with a raw number. A disposition is the default or "ignore",
/// never a handler: that is what makes [`raw`] sound.
#[derive(Clone, Copy)]
enum Raw {
    Kill(libc::pid_t),
    KillGroup(libc::pid_t),
    Default,
    Ignore,
}

/// WHY raw: `signal` may be a real-time one, which nix's `Signal` cannot name (and nix's
/// `signal` is unsafe anyway, for the handlers it could install).
fn raw(signal: Signal, call: Raw) -> libc::c_int {
    let action = if matches!(call, Raw::Ignore) { libc::SIG_IGN } else { libc::SIG_DFL };
    // SAFETY: kill and killpg take plain integers and have no memory effects; signal() is
    // given SIG_DFL or SIG_IGN only (see `Raw`), so no code of ours can run at a signal.
    unsafe {
        match call {
            Raw::Kill(pid) => libc::kill(pid, signal.0),
            Raw::KillGroup(pgid) => libc::killpg(pgid, signal.0),
            Raw::Default | Raw::Ignore => {
                if libc::signal(signal.0, action) == libc::SIG_ERR {
                    -1
                } else {
                    0
                }
            }
        }
    }
}

fn check_kill(rc: libc::c_int) -> io::Result<()> {
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::ESRCH) { Ok(()) } else { Err(err) }
}

/// Whether any process (a zombie included) still has process group `pgid`.
pub fn group_alive(pgid: u32) -> bool {
    // WHY: EPERM means members exist that we may not signal (a setuid child): alive.
    matches!(killpg(Pid::from_raw(pgid as libc::pid_t), None), Ok(()) | Err(Errno::EPERM))
}

/// Reaps one exited child of corral, if any, without blocking. Every child is reaped
/// here and only here: a second reaper would steal exit statuses.
pub fn reap_one() -> Option<(u32, ExitStatus)> {
    wait(libc::P_ALL, 0, 0)
}

/// The next exited child, left unreaped (`WNOWAIT`): its pid stays taken, and so does the
/// process group it leads, until [`reap_pid`].
pub fn peek_exit() -> Option<(u32, ExitStatus)> {
    wait(libc::P_ALL, 0, libc::WNOWAIT)
}

/// Whether child `pid` has exited (left unreaped).
pub fn peek_exit_of(pid: u32) -> Option<ExitStatus> {
    wait(libc::P_PID, pid, libc::WNOWAIT).map(|(_, s)| s)
}

/// Reaps child `pid` (already known to have exited).
pub fn reap_pid(pid: u32) {
    let _ = wait(libc::P_PID, pid, 0);
}

/// One exited child that `idtype` and `id` select, without blocking; `flags` adds to
/// `WEXITED | WNOHANG`. `None`: none has exited, or there is no such child.
fn wait(idtype: libc::idtype_t, id: u32, flags: libc::c_int) -> Option<(u32, ExitStatus)> {
    loop {
        // WHY raw: nix's `waitpid` and `waitid` decode into `Signal`, which cannot name a
        // real-time signal (a death by one is an error there); siginfo keeps every number.
        // SAFETY: siginfo_t is plain data, all-zero is valid, and waitid writes only into
        // `info`, which lives for the call. After a successful waitid with WEXITED the
        // pid, code and status fields are set (pid 0: nothing has exited).
        let (rc, pid, code, status) = unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            let flags = libc::WEXITED | libc::WNOHANG | flags;
            let rc = libc::waitid(idtype, id, &raw mut info, flags);
            (rc, info.si_pid(), info.si_code, info.si_status())
        };
        if rc < 0 {
            if io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return None; // ECHILD: no such child
        }
        return (pid > 0).then(|| (pid.cast_unsigned(), decode_status(code, status)));
    }
}
/// The process group of `pid`, if it is alive (not a zombie).
pub fn pgrp_of(pid: u32) -> Option<u32> {
    super::ProcStat::of(pid).filter(|s| !s.is_gone()).map(|s| s.pgrp)
}

/// Whether a live process other than `pgid` itself is in process group `pgid` (a scan of
/// `/proc`: `kill(-pgid, 0)` cannot tell, since a zombie leader counts as a member).
pub fn group_has_member(pgid: u32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else { return false };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .any(|pid| pid != pgid && pgrp_of(pid) == Some(pgid))
}

/// Whether `pid`'s environment holds every one of `vars` (`KEY=VALUE`).
pub fn environ_has(pid: u32, vars: &[Vec<u8>]) -> bool {
    let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
        return false;
    };
    vars.iter().all(|want| env.split(|&b| b == 0).any(|var| var == want.as_slice()))
}

/// A child's end from waitid's `si_code` and `si_status`: an exit code, or the signal that
/// killed it (with or without a core dump).
fn decode_status(code: libc::c_int, status: libc::c_int) -> ExitStatus {
    if code == libc::CLD_EXITED {
        ExitStatus::Code(status)
    } else {
        ExitStatus::Signal(Signal(status))
    }
}

/// Makes orphaned descendants (double-forked, `setsid`) corral's children, so they are
/// reaped here and can be killed at shutdown.
pub fn become_subreaper() -> io::Result<()> {
    Ok(nix::sys::prctl::set_child_subreaper(true)?)
}

/// PIDs of corral's live children.
///
/// WHY only two threads' `children` files, kept open: a child belongs to the thread that
/// forked it, and every worker is forked by the runtime's thread (the caller); an orphan
/// re-parented to corral, the subreaper, goes to its first live thread, the leader. Opening
/// every thread's file by path on every exit was a third of a restart's cost.
pub fn children_of_self() -> Vec<u32> {
    use std::os::unix::fs::FileExt;
    thread_local! {
        static FILES: Vec<std::fs::File> = children_files();
    }
    let mut pids = Vec::new();
    FILES.with(|files| {
        let mut buf = Vec::new();
        for file in files {
            // A seq_file re-read from 0 shows the children as they are now.
            buf.resize(4096, 0);
            let mut len = 0;
            loop {
                match file.read_at(&mut buf[len..], len as u64) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => len += n,
                }
                if len == buf.len() {
                    buf.resize(buf.len() * 2, 0);
                }
            }
            let text = String::from_utf8_lossy(&buf[..len]);
            pids.extend(text.split_whitespace().filter_map(|p| p.parse::<u32>().ok()));
        }
    });
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// The `children` files of the calling thread and of the thread-group leader.
fn children_files() -> Vec<std::fs::File> {
    let pid = std::process::id();
    let tid = nix::unistd::gettid().as_raw().cast_unsigned();
    let mut tids = vec![tid];
    if tid != pid {
        tids.push(pid);
    }
    tids.iter()
        .filter_map(|t| std::fs::File::open(format!("/proc/self/task/{t}/children")).ok())
        .collect()
}

/// Opens `/dev/null` on any of fds 0–2 that is closed, so no socket or pipe corral makes
/// later can land there and be clobbered when a worker's stdio is set up.
pub fn ensure_std_fds() {
    use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd};
    // An open takes the lowest free number: while it is one of 0–2, keep it there for good
    // (inheritable, as a standard stream is); the first above 2 shows they are all open.
    loop {
        let Ok(null) = std::fs::OpenOptions::new().read(true).write(true).open("/dev/null") else {
            return;
        };
        if null.as_raw_fd() > 2 {
            return;
        }
        let _ =
            nix::fcntl::fcntl(&null, nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()));
        let _ = OwnedFd::from(null).into_raw_fd();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_codes_and_signals_exactly() {
        assert_eq!(decode_status(libc::CLD_EXITED, 7), ExitStatus::Code(7));
        assert_eq!(
            decode_status(libc::CLD_KILLED, libc::SIGSEGV),
            ExitStatus::Signal(Signal::SEGV)
        );
        assert_eq!(
            decode_status(libc::CLD_DUMPED, libc::SIGKILL),
            ExitStatus::Signal(Signal::KILL)
        );
        let rt = libc::SIGRTMIN() + 3;
        assert_eq!(decode_status(libc::CLD_KILLED, rt), ExitStatus::Signal(Signal(rt)));
    }

    /// The exit of a real child, peeked (left unreaped) and then reaped here, not by std.
    #[allow(clippy::zombie_processes, reason = "reaped by `reap_pid`, the code under test")]
    fn end_of(script: &str) -> ExitStatus {
        let child = std::process::Command::new("sh").args(["-c", script]).spawn().expect("sh");
        let pid = child.id();
        let deadline = std::time::Instant::now() + std::time::Duration::from_mins(1);
        let status = loop {
            if let Some(status) = peek_exit_of(pid) {
                break status;
            }
            assert!(std::time::Instant::now() < deadline, "sh did not exit in 60 s");
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        assert_eq!(peek_exit_of(pid), Some(status), "a peek leaves it unreaped");
        reap_pid(pid);
        assert_eq!(peek_exit_of(pid), None, "reaped");
        status
    }

    #[test]
    fn real_exits_codes_and_signals_real_time_ones_included() {
        assert_eq!(end_of("exit 7"), ExitStatus::Code(7));
        assert_eq!(end_of("kill -SEGV $$"), ExitStatus::Signal(Signal::SEGV));
        let rt = libc::SIGRTMIN() + 3;
        assert_eq!(end_of(&format!("kill -{rt} $$")), ExitStatus::Signal(Signal(rt)));
    }

    #[test]
    fn a_gone_group_is_not_an_error() {
        // Pid 0x3fff_fff0 is above pid_max on every configuration: no such group.
        assert!(signal_group(0x3fff_fff0, Signal::TERM).is_ok());
        assert!(!group_alive(0x3fff_fff0));
    }
}
