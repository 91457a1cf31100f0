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
        let kind = ProcessRefreshKind::nothing().with_memory().with_cpu();
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
}
