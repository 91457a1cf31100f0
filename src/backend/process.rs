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
    // WHY raw: `signal` may be a real-time one, which nix's `Signal` cannot name.
    // SAFETY: killpg takes plain integers and has no memory effects.
    let rc = unsafe { libc::killpg(pgid as libc::pid_t, signal.0) };
    check_kill(rc)
}

/// Sends `signal` to one process.
pub fn signal_pid(pid: u32, signal: Signal) -> io::Result<()> {
    // WHY raw: `signal` may be a real-time one, which nix's `Signal` cannot name.
    // SAFETY: kill takes plain integers and has no memory effects.
    let rc = unsafe { libc::kill(pid as libc::pid_t, signal.0) };
    check_kill(rc)
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
    loop {
        let mut status: libc::c_int = 0;
        // WHY raw: nix's `WaitStatus` fails on a death by a real-time signal; the raw
        // status keeps every number.
        // SAFETY: waitpid writes only into `status`, which lives for the call.
        let pid = unsafe { libc::waitpid(-1, &raw mut status, libc::WNOHANG) };
        if pid > 0 {
            return Some((pid as u32, decode_status(status)));
        }
        if pid < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        return None; // 0: children exist but none exited; ECHILD: no children at all
    }
}

/// The next exited child, left unreaped (`WNOWAIT`): its pid stays taken, and so does the
/// process group it leads, until [`reap_pid`].
pub fn peek_exit() -> Option<(u32, ExitStatus)> {
    peek(libc::P_ALL, 0)
}

/// Whether child `pid` has exited (left unreaped).
pub fn peek_exit_of(pid: u32) -> Option<ExitStatus> {
    peek(libc::P_PID, pid).map(|(_, s)| s)
}

fn peek(idtype: libc::idtype_t, id: u32) -> Option<(u32, ExitStatus)> {
    loop {
        // SAFETY: siginfo_t is plain data; all-zero is valid and waitid overwrites it.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
        // WHY raw: nix's `waitid` decodes into `Signal`, which cannot name a real-time
        // signal; the raw siginfo keeps every number.
        // SAFETY: waitid writes only into `info`, which lives for the call.
        let rc = unsafe { libc::waitid(idtype, id, &raw mut info, flags) };
        if rc < 0 {
            if io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return None; // ECHILD: no such child
        }
        // SAFETY: after a successful waitid with WEXITED these fields are set (pid 0:
        // nothing has exited).
        let (pid, code, status) = unsafe { (info.si_pid(), info.si_code, info.si_status()) };
        if pid <= 0 {
            return None;
        }
        let status = if code == libc::CLD_EXITED {
            ExitStatus::Code(status)
        } else {
            ExitStatus::Signal(Signal(status))
        };
        return Some((pid as u32, status));
    }
}

/// Reaps child `pid` (already known to have exited).
pub fn reap_pid(pid: u32) {
    let mut status: libc::c_int = 0;
    loop {
        // WHY raw: like `reap_one`, so a real-time death is not an error here either.
        // SAFETY: waitpid writes only into `status`, which lives for the call.
        let rc = unsafe { libc::waitpid(pid as libc::pid_t, &raw mut status, libc::WNOHANG) };
        if rc < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        return;
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

fn decode_status(status: libc::c_int) -> ExitStatus {
    if libc::WIFSIGNALED(status) {
        ExitStatus::Signal(Signal(libc::WTERMSIG(status)))
    } else {
        ExitStatus::Code(libc::WEXITSTATUS(status))
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
    for fd in 0..3 {
        // WHY raw: the fd may be closed, so there is no `AsFd` to hand nix's fcntl.
        // SAFETY: F_GETFD only queries the descriptor table.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
            // SAFETY: the path is a valid NUL-terminated string; open returns the lowest
            // free descriptor, which is `fd` because lower ones are open.
            unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_codes_and_signals_exactly() {
        let mut child = std::process::Command::new("sh")
            .args(["-c", "kill -SEGV $$"])
            .spawn()
            .expect("spawn sh");
        let pid = child.id();
        // std reaps it for us here; decode_status is checked on synthetic statuses below.
        let _ = child.wait();
        assert!(pid > 0);
        assert_eq!(decode_status(7 << 8), ExitStatus::Code(7));
        assert_eq!(decode_status(libc::SIGSEGV), ExitStatus::Signal(Signal::SEGV));
        assert_eq!(decode_status(libc::SIGKILL | 0x80), ExitStatus::Signal(Signal::KILL));
    }

    #[test]
    fn a_gone_group_is_not_an_error() {
        // Pid 0x3fff_fff0 is above pid_max on every configuration: no such group.
        assert!(signal_group(0x3fff_fff0, Signal::TERM).is_ok());
        assert!(!group_alive(0x3fff_fff0));
    }
}
