//! CPU and memory of each worker's whole process tree, sampled once a second with
//! sysinfo on a thread of its own, so reading `/proc` never slows the supervision loop.
//!
//! A worker leads its own session, and its descendants stay in it unless they `setsid`
//! away (corral reaps and stops those separately): summing the processes of the session
//! covers the worker's process group and everything it started.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sysinfo::{ProcessRefreshKind, ProcessesToUpdate, System};

/// How often workers are sampled.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(1);

/// One worker's usage at one moment.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Usage {
    /// Leader pid (= session id) the sample belongs to.
    pub pid: u32,
    /// Percent of one core, summed over the tree.
    pub cpu: f32,
    /// Resident bytes, summed over the tree.
    pub rss: u64,
}

/// The leaders to sample, kept current by the runtime.
pub type Targets = Arc<Mutex<Vec<u32>>>;

/// Starts the sampling thread; `deliver` gets every round's samples (from that thread).
pub fn start_sampler(
    targets: Targets,
    deliver: impl Fn(Vec<Usage>) -> bool + Send + 'static,
) -> std::io::Result<()> {
    std::thread::Builder::new().name("corral-sampler".into()).spawn(move || {
        let Ok(mut system) = System::new() else {
            tracing::warn!("cannot read process statistics; CPU and memory stay unknown");
            return;
        };
        // WHY: without `without_tasks`, sysinfo lists every thread of a process as a
        // process of its own with the whole process's RSS and CPU: a worker's usage
        // counted once per thread.
        let kind = ProcessRefreshKind::nothing().with_memory().with_cpu().without_tasks();
        loop {
            std::thread::sleep(SAMPLE_EVERY);
            let leaders: Vec<u32> = match targets.lock() {
                Ok(t) => t.clone(),
                Err(_) => return,
            };
            if leaders.is_empty() {
                continue;
            }
            system.refresh_processes_specifics(ProcessesToUpdate::All, true, kind);
            let mut by_session: HashMap<u32, (f32, u64)> = HashMap::new();
            for process in system.processes().values() {
                if process.thread_kind().is_some() {
                    continue; // a thread: its process is counted already
                }
                let Some(sid) = process.session_id() else {
                    continue;
                };
                let entry = by_session.entry(sid.as_u32()).or_default();
                entry.0 += process.cpu_usage();
                entry.1 += process.memory();
            }
            let samples = leaders
                .iter()
                .filter_map(|&pid| by_session.get(&pid).map(|&(cpu, rss)| Usage { pid, cpu, rss }))
                .collect();
            if !deliver(samples) {
                return; // the runtime is gone
            }
        }
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_a_process_tree_by_session() {
        let mut child = std::process::Command::new("setsid")
            .args(["sh", "-c", "sleep 30 & sleep 30 & wait"])
            .spawn()
            .expect("spawn");
        let pid = child.id();
        let targets: Targets = Arc::new(Mutex::new(vec![pid]));
        let (tx, rx) = std::sync::mpsc::channel();
        start_sampler(targets, move |s| tx.send(s).is_ok()).expect("sampler");
        let samples = rx.recv_timeout(Duration::from_secs(20)).expect("a sample round");
        let mut kill = std::process::Command::new("kill");
        let _ = kill.args(["-KILL", "--", &format!("-{pid}")]).status();
        let _ = child.wait();
        let usage = samples.iter().find(|u| u.pid == pid).expect("the tree was sampled");
        // sh and two sleeps: well over one page each.
        assert!(usage.rss > 3 * 4096, "{usage:?}");
    }

    /// `VmRSS` of `pid` in bytes.
    fn vm_rss(pid: u32) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    }

    #[test]
    fn threads_are_not_counted_as_processes() {
        const THREADS: usize = 8;
        // Each thread fills 8 MiB, so the process's RSS is mostly the threads' data.
        let script = "import threading, time\n\
            def run():\n    data = b'x' * (8 << 20)\n    time.sleep(1000)\n\
            for _ in range(8): threading.Thread(target=run, daemon=True).start()\n\
            time.sleep(1000)\n";
        let mut child = std::process::Command::new("setsid")
            .args(["python3", "-c", script])
            .spawn()
            .expect("spawn python3");
        let pid = child.id();
        let kill = || {
            let _ = std::process::Command::new("kill").args(["-KILL", &pid.to_string()]).status();
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let threads_up = || {
            let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, Iterator::count);
            tasks > THREADS && vm_rss(pid).is_some_and(|r| r > (THREADS as u64) * (8 << 20))
        };
        while !threads_up() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let ready = threads_up();
        let (tx, rx) = std::sync::mpsc::channel();
        if ready {
            start_sampler(Arc::new(Mutex::new(vec![pid])), move |s| tx.send(s).is_ok())
                .expect("sampler");
        }
        let samples = rx.recv_timeout(Duration::from_secs(20));
        let real = vm_rss(pid);
        kill();
        let _ = child.wait();
        assert!(ready, "python3 did not start its threads");
        let samples = samples.expect("a sample round");
        let usage = samples.iter().find(|u| u.pid == pid).expect("sampled");
        let real = real.expect("VmRSS");
        // Within 50% of the real RSS (it moves a little between the two reads), never
        // anywhere near once per thread.
        assert!(usage.rss < real * 3 / 2 && usage.rss > real / 2, "{usage:?} vs VmRSS {real}");
    }
}
