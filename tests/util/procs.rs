//! Processes as the tests see them: waiting, signalling, `/proc` (read with `procfs`), the
//! test token.

use procfs::process::{Process, all_processes};

use super::*;

/// Waits until `condition` holds; `false` if the deadline passed first.
pub fn wait_until(deadline: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + deadline;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        thread::sleep(POLL);
    }
}

/// `kill(pid, signal)`; `false` if there is no such process.
pub fn send_signal(pid: u32, signal: i32) -> bool {
    let pid = i32::try_from(pid).expect("pid fits in pid_t");
    // WHY raw: callers pass plain numbers, real-time signals too, which nix cannot name.
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    unsafe { libc::kill(pid, signal) == 0 }
}

/// The fields of `/proc/<pid>/stat` the tests look at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    pub state: char,
    pub ppid: u32,
    pub pgrp: u32,
    pub session: u32,
}

/// `/proc/<pid>`; `None` if there is no such process (or no such pid).
fn process(pid: u32) -> Option<Process> {
    Process::new(i32::try_from(pid).ok()?).ok()
}

/// A pid as the tests count them (`/proc` has them as `i32`).
fn pid_of(id: i32) -> Option<u32> {
    u32::try_from(id).ok()
}

pub fn stat(pid: u32) -> Option<Stat> {
    let stat = process(pid)?.stat().ok()?;
    Some(Stat {
        state: stat.state,
        ppid: pid_of(stat.ppid)?,
        pgrp: pid_of(stat.pgrp)?,
        session: pid_of(stat.session)?,
    })
}

/// The process exists and is not a zombie (PID 1 here reaps orphans lazily, so a dead
/// process can linger as `Z` for seconds).
pub fn pid_alive(pid: u32) -> bool {
    stat(pid).is_some_and(|s| s.state != 'Z' && s.state != 'X')
}

/// The live children of `pid` (all its threads'), but corral's keeper (`__keeper`).
pub fn children_of(pid: u32) -> Vec<u32> {
    let mut children = all_children_of(pid);
    children.retain(|&c| !is_keeper(c));
    children
}

/// Whether the tests run as root (PID namespaces, `ns_last_pid`).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// The pid, in this test's namespace, of the process that is `ns_pid` inside the PID
/// namespace of process `member`.
pub fn outer_pid(member: u32, ns_pid: u32) -> Option<u32> {
    let namespace = fs::read_link(format!("/proc/{member}/ns/pid")).ok()?;
    all_processes().ok()?.filter_map(Result::ok).find_map(|process| {
        if fs::read_link(format!("/proc/{}/ns/pid", process.pid)).ok()? != namespace {
            return None;
        }
        // NSpid: the pid in each namespace, the process's own (innermost) last.
        let ids = process.status().ok()?.nspid?;
        (pid_of(*ids.last()?)? == ns_pid).then_some(pid_of(process.pid)?)
    })
}

/// Whether `pid` is a corral keeper process.
pub fn is_keeper(pid: u32) -> bool {
    process(pid)
        .and_then(|p| p.cmdline().ok())
        .is_some_and(|argv| argv.get(1).is_some_and(|arg| arg == "__keeper"))
}

/// The live children of `pid`, the keeper included.
pub fn all_children_of(pid: u32) -> Vec<u32> {
    let Some(tasks) = process(pid).and_then(|p| p.tasks().ok()) else {
        return Vec::new();
    };
    let mut children: Vec<u32> = tasks
        .filter_map(Result::ok)
        .filter_map(|task| task.children().ok())
        .flatten()
        .filter(|&child| pid_alive(child))
        .collect();
    children.sort_unstable();
    children
}

/// A size line of `/proc/<pid>/status` (`VmRSS`, `VmHWM`, `VmPeak`, `VmSize`) in KiB;
/// `None` once the process is gone (a zombie has no memory lines).
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = process(pid)?.status().ok()?;
    match field {
        "VmRSS" => status.vmrss,
        "VmHWM" => status.vmhwm,
        "VmPeak" => status.vmpeak,
        "VmSize" => status.vmsize,
        other => panic!("status_kib: no size field {other} here; add it"),
    }
}

/// A mask line of `/proc/<pid>/status` (`SigIgn`, `SigBlk`, `SigCgt`, `SigPnd`, `ShdPnd`)
/// as a number.
pub fn signal_mask(pid: u32, field: &str) -> Option<u64> {
    let status = process(pid)?.status().ok()?;
    Some(match field {
        "SigIgn" => status.sigign,
        "SigBlk" => status.sigblk,
        "SigCgt" => status.sigcgt,
        "SigPnd" => status.sigpnd,
        "ShdPnd" => status.shdpnd,
        other => panic!("signal_mask: no mask field {other}"),
    })
}

/// The bit of `signal` in a `/proc` signal mask.
pub fn signal_bit(signal: i32) -> u64 {
    1 << (signal - 1)
}

/// Every live process whose environment carries `CORRAL_TEST_TOKEN=<token>` (workers and
/// anything they started inherit it, escaped or not). Zombies count as dead.
pub fn token_processes(token: &str) -> Vec<u32> {
    let Ok(processes) = all_processes() else {
        return Vec::new();
    };
    let mut pids: Vec<u32> = processes
        .filter_map(Result::ok)
        // Unreadable (another user's, or gone meanwhile) means not ours.
        .filter(|p| {
            p.environ().is_ok_and(|env| {
                env.get(OsStr::new(TOKEN_VAR)).is_some_and(|v| v.as_os_str() == OsStr::new(token))
            })
        })
        .filter(Process::is_alive)
        .filter_map(|p| pid_of(p.pid))
        .collect();
    pids.sort_unstable();
    pids
}

/// SIGKILLs every process carrying the token until none is left (bounded).
pub fn kill_token_processes(token: &str) {
    wait_until(SHORT, || {
        let pids = token_processes(token);
        for &pid in &pids {
            send_signal(pid, libc::SIGKILL);
        }
        pids.is_empty()
    });
}

/// `pid: command line` for each pid, for failure messages.
pub fn describe(pids: &[u32]) -> String {
    pids.iter()
        .map(|pid| {
            let argv = process(*pid).and_then(|p| p.cmdline().ok()).unwrap_or_default();
            format!("{pid}: {} ({:?})", argv.join(" "), stat(*pid))
        })
        .collect::<Vec<_>>()
        .join("; ")
}
