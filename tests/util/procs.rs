//! Processes as the tests see them: waiting, signalling, `/proc`, the test token.

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

pub fn stat(pid: u32) -> Option<Stat> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `comm` may hold spaces and parentheses: count fields from the last `)`.
    let mut fields = text[text.rfind(')')? + 1..].split_whitespace();
    let state = fields.next()?.chars().next()?;
    let mut number = || fields.next()?.parse::<u32>().ok();
    Some(Stat { state, ppid: number()?, pgrp: number()?, session: number()? })
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
    fs::read_dir("/proc").ok()?.filter_map(Result::ok).find_map(|entry| {
        let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
        if fs::read_link(format!("/proc/{pid}/ns/pid")).ok()? != namespace {
            return None;
        }
        let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let ids = status.lines().find_map(|l| l.strip_prefix("NSpid:"))?;
        (ids.split_whitespace().last()?.parse::<u32>().ok()? == ns_pid).then_some(pid)
    })
}

/// Whether `pid` is a corral keeper process.
pub fn is_keeper(pid: u32) -> bool {
    fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|c| c.split(|&b| b == 0).nth(1) == Some(b"__keeper".as_slice()))
}

/// The live children of `pid`, the keeper included.
pub fn all_children_of(pid: u32) -> Vec<u32> {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut children: Vec<u32> = tasks
        .filter_map(Result::ok)
        .filter_map(|task| fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|text| text.split_whitespace().filter_map(|p| p.parse().ok()).collect::<Vec<_>>())
        .filter(|&child| pid_alive(child))
        .collect();
    children.sort_unstable();
    children
}

/// A size line of `/proc/<pid>/status` (`VmRSS`, `VmHWM` …) in KiB; `None` once the
/// process is gone (a zombie has no memory lines).
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let value = status.lines().find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))?;
    value.trim().strip_suffix("kB")?.trim().parse().ok()
}

/// A mask line of `/proc/<pid>/status` (`SigIgn`, `SigBlk`, `SigCgt`) as a number.
pub fn signal_mask(pid: u32, field: &str) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let value = status.lines().find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))?;
    u64::from_str_radix(value.trim(), 16).ok()
}

/// The bit of `signal` in a `/proc` signal mask.
pub fn signal_bit(signal: i32) -> u64 {
    1 << (signal - 1)
}

/// Every live process whose environment carries `CORRAL_TEST_TOKEN=<token>` (workers and
/// anything they started inherit it, escaped or not). Zombies count as dead.
pub fn token_processes(token: &str) -> Vec<u32> {
    let needle = format!("{TOKEN_VAR}={token}");
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids: Vec<u32> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| {
            // Unreadable (another user's, or gone meanwhile) means not ours.
            fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|&b| b == 0).any(|var| var == needle.as_bytes()))
        })
        .filter(|&pid| pid_alive(pid))
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
            let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            format!("{pid}: {} ({:?})", cmdline.trim_end(), stat(*pid))
        })
        .collect::<Vec<_>>()
        .join("; ")
}
