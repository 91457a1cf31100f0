//! The keeper: a tiny process corral starts (`corral __keeper PID`) that outlives it just
//! long enough to kill what it left. The parent-death signal reaches only corral's direct
//! children; grandchildren, and processes that left their worker's group, would survive a
//! `kill -9` of corral. The keeper notices corral's death by the end of its stdin (only
//! corral holds the write end) and then SIGKILLs every process group corral told it about
//! and every process that carries corral's environment marker, `CORRAL_PRIMARY_PID=PID`,
//! scanning until none is left. A clean exit says `bye` first: then it just exits.

use std::collections::BTreeSet;
use std::io::BufRead;
use std::process::ExitCode;
use std::time::Duration;

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

/// Scans for marked processes at most this many times (new ones may be forked meanwhile).
const ROUNDS: u32 = 50;

pub fn main(args: &[std::ffi::OsString]) -> ExitCode {
    let Some(primary) = args.first().and_then(|a| a.to_str()).and_then(|a| a.parse::<u32>().ok())
    else {
        eprintln!("corral: __keeper needs the primary's pid");
        return ExitCode::from(2);
    };
    for sig in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGTSTP,
        Signal::SIGTTIN,
        Signal::SIGTTOU,
        Signal::SIGPIPE,
    ] {
        crate::backend::ignore(crate::signal::Signal(sig as i32));
    }
    let mut groups = BTreeSet::new();
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        if line == "bye" {
            return ExitCode::SUCCESS;
        }
        if let Some(n) = line.strip_prefix('+').and_then(|n| n.parse::<i32>().ok()) {
            groups.insert(n);
        } else if let Some(n) = line.strip_prefix('-').and_then(|n| n.parse::<i32>().ok()) {
            groups.remove(&n);
        }
    }
    // corral is gone without saying goodbye: nothing it started may live on.
    for &pgid in &groups {
        if pgid > 1 {
            let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
        }
    }
    let marker = format!("CORRAL_PRIMARY_PID={primary}");
    for _ in 0..ROUNDS {
        let found = marked_processes(marker.as_bytes());
        if found.is_empty() {
            break;
        }
        for pid in found {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    ExitCode::SUCCESS
}

/// Live processes whose environment holds `marker` (`KEY=VALUE`), but this one.
fn marked_processes(marker: &[u8]) -> Vec<i32> {
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me && alive(pid))
        .filter(|&pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|&b| b == 0).any(|var| var == marker))
        })
        .filter_map(|pid| i32::try_from(pid).ok())
        .collect()
}

fn alive(pid: u32) -> bool {
    crate::backend::ProcStat::of(pid).is_some_and(|s| !s.is_gone())
}
