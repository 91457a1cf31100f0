//! CPU and memory of each worker's whole process tree, sampled once a second on a thread
//! of its own, so reading `/proc` never slows the supervision loop.
//!
//! A worker leads its own session, and its descendants stay in it unless they `setsid`
//! away (corral reaps and stops those separately): summing the processes of the session
//! covers the worker's process group and everything it started.
//!
//! WHY by hand and not sysinfo: one small read of `/proc/PID/stat` per process says its
//! session, CPU ticks and resident pages — everything needed. A general library reads
//! several files per process and tracks every thread, which made the sampler most of an
//! idle dashboard's CPU. `/proc`'s listing holds processes only (threads live under
//! `/proc/PID/task`), so no thread is counted twice.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::unistd::{SysconfVar, sysconf};

use super::ProcStat;

/// How often workers are sampled, while they are few.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(1);

/// Reading a process's `stat` costs 8–10 µs on a small VM (measured: 1,000 reads of open
/// files, 8.5 ms), the listing of `/proc` a little per process more: beyond this many
/// processes per round, rounds are spread out so the sampler stays near 0.3 % of a core.
const PROCESSES_PER_SECOND: usize = 256;

/// The pause after a round that read `processes` stat files: a second, or one second per
/// `PROCESSES_PER_SECOND` of them (1,000 workers: every 4 s; 4,096: every 16 s).
fn pause_after(processes: usize) -> Duration {
    let seconds = processes.div_ceil(PROCESSES_PER_SECOND).max(1);
    SAMPLE_EVERY * u32::try_from(seconds).unwrap_or(u32::MAX)
}

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

/// A process of a sampled session, with its `stat` file kept open: reading it again at
/// offset 0 costs a fraction of opening it by path, which was most of a round.
struct Known {
    stat: std::fs::File,
    ticks: u64,
    seen: u64,
}

/// Every this many rounds a process outside the sampled sessions is read again, in
/// case its pid was reused by a worker's child since (pids are spread over the rounds).
const FOREIGN_RECHECK: u64 = 8;

/// Reads the stat of every process of the sampled sessions once per round; keeps the
/// ticks of the last round for CPU rates.
struct Reader {
    buf: Vec<u8>,
    ours: HashMap<u32, Known>,
    /// Processes seen outside the sampled sessions, and the round they were last seen.
    foreign: HashMap<u32, u64>,
    round: u64,
    last_at: Option<Instant>,
    tick_hz: f64,
    page: u64,
}

impl Reader {
    fn new() -> Reader {
        let value = |var| sysconf(var).ok().flatten().unwrap_or(0);
        let (hz, page) = (value(SysconfVar::CLK_TCK), value(SysconfVar::PAGE_SIZE));
        Reader {
            buf: Vec::with_capacity(512),
            ours: HashMap::new(),
            foreign: HashMap::new(),
            round: 0,
            last_at: None,
            tick_hz: if hz > 0 { hz as f64 } else { 100.0 },
            page: if page > 0 { page as u64 } else { 4096 },
        }
    }

    /// Usage summed per session, for the sessions in `wanted`.
    fn round(&mut self, wanted: &[u32]) -> Vec<Usage> {
        let now = Instant::now();
        let elapsed = self.last_at.map(|t| now.duration_since(t).as_secs_f64());
        self.last_at = Some(now);
        self.round += 1;
        let round = self.round;
        let mut by_session: HashMap<u32, (f64, u64)> =
            wanted.iter().map(|&w| (w, (0.0, 0))).collect();
        let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
        for entry in entries.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            // A leader is always read: it may have been seen a moment before its setsid.
            let leader = by_session.contains_key(&pid);
            if let Some(last) = self.foreign.get_mut(&pid)
                && !leader
                && !(u64::from(pid) + round).is_multiple_of(FOREIGN_RECHECK)
            {
                *last = round;
                continue;
            }
            // A process seen for the first time has no rate yet (`before` is its ticks).
            let (stat, file, before) = if let Some(known) = self.ours.remove(&pid) {
                let Some(stat) = read_again(&known.stat, &mut self.buf) else {
                    continue; // it exited
                };
                (stat, known.stat, known.ticks)
            } else {
                let Ok(file) = std::fs::File::open(entry.path().join("stat")) else {
                    continue;
                };
                let Some(stat) = read_again(&file, &mut self.buf) else { continue };
                (stat, file, stat.ticks)
            };
            let Some(total) = by_session.get_mut(&stat.session) else {
                self.foreign.insert(pid, round);
                continue;
            };
            self.foreign.remove(&pid);
            total.0 += stat.ticks.saturating_sub(before) as f64;
            total.1 += stat.rss_pages * self.page;
            self.ours.insert(pid, Known { stat: file, ticks: stat.ticks, seen: round });
        }
        // Gone from the listing: forget them (and close their files).
        self.ours.retain(|_, k| k.seen == round);
        self.foreign.retain(|_, &mut last| last == round);
        wanted
            .iter()
            .filter_map(|&pid| {
                let &(ticks, rss) = by_session.get(&pid)?;
                if rss == 0 {
                    return None; // the session is gone
                }
                let cpu = elapsed.map_or(0.0, |e| ticks / self.tick_hz / e * 100.0) as f32;
                Some(Usage { pid, cpu, rss })
            })
            .collect()
    }
}

/// Sampling rounds run by hand, to measure what one costs (`benches/sampler.rs`).
#[doc(hidden)]
pub struct Probe(Reader);

impl Default for Probe {
    fn default() -> Probe {
        Probe(Reader::new())
    }
}

impl Probe {
    /// One round over the sessions led by `leaders`.
    pub fn round(&mut self, leaders: &[u32]) -> Vec<Usage> {
        self.0.round(leaders)
    }
}

/// Reads a `stat` file from its start (an open one shows the process as it is now).
fn read_again(file: &std::fs::File, buf: &mut Vec<u8>) -> Option<ProcStat> {
    use std::os::unix::fs::FileExt;
    buf.resize(1024, 0);
    let n = file.read_at(buf, 0).ok()?;
    ProcStat::parse(std::str::from_utf8(buf.get(..n)?).ok()?)
}

/// Starts the sampling thread; `deliver` gets every round's samples (from that thread).
pub fn start_sampler(
    targets: Targets,
    deliver: impl Fn(Vec<Usage>) -> bool + Send + 'static,
) -> std::io::Result<()> {
    std::thread::Builder::new().name("corral-sampler".into()).spawn(move || {
        let mut reader = Reader::new();
        loop {
            std::thread::sleep(pause_after(reader.ours.len()));
            let leaders: Vec<u32> = match targets.lock() {
                Ok(t) => t.clone(),
                Err(_) => return,
            };
            if leaders.is_empty() {
                continue;
            }
            let started = Instant::now();
            let samples = reader.round(&leaders);
            let took = started.elapsed();
            if took > Duration::from_millis(100) {
                tracing::info!(?took, workers = leaders.len(), "a sampling round took long");
            }
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
    fn rounds_spread_out_only_beyond_a_few_hundred_processes() {
        assert_eq!(pause_after(0), SAMPLE_EVERY);
        assert_eq!(pause_after(PROCESSES_PER_SECOND), SAMPLE_EVERY);
        assert_eq!(pause_after(1000), 4 * SAMPLE_EVERY);
        assert_eq!(pause_after(4096), 16 * SAMPLE_EVERY);
    }

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
