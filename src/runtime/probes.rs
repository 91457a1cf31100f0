//! Runs the probes the supervisor asks for (docs/application.md#probes) and reports each
//! result as an `Input::ProbeResult`; the supervisor decides what results mean.
//!
//! HTTP and TCP probes are tasks on corral's own loop (no thread, no process), bounded by
//! their timeout and by what they read. An exec probe is a child in a process group of its
//! own, with the worker's environment and working directory: corral's reaper collects its
//! exit (it reaps every child) and hands it here; at its timeout the whole group is killed
//! and the probe fails at once, its exit still reaped when it comes.

mod exec;
mod net;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::core::{ExitStatus, Input, ProbeKind, WorkerKey};
use crate::probe_spec::{ProbeTarget, expand};
use crate::signal::Signal;

/// What the probes' tasks tell the main loop.
pub(super) enum Report {
    /// An HTTP or TCP probe is done.
    Done(Input),
    /// An exec probe's time is up.
    ExecTimedOut { pid: u32 },
}

/// What one probe is for.
#[derive(Clone, Copy, Debug)]
pub(super) struct Asked {
    pub key: WorkerKey,
    pub generation: u32,
    pub pid: u32,
    pub probe: ProbeKind,
}

impl Asked {
    fn result(self, error: Option<String>) -> Input {
        let Asked { key, generation, probe, .. } = self;
        Input::ProbeResult { key, generation, probe, error }
    }
}

/// A running exec probe.
struct Running {
    asked: Asked,
    timeout: Duration,
    /// Its result went out already (its time ran out): its exit is only reaped.
    reported: bool,
    timer: JoinHandle<()>,
    drain: JoinHandle<()>,
}

/// What a worker's probe needs from its group.
pub(super) struct Context<'a> {
    pub target: &'a ProbeTarget,
    pub timeout: Duration,
    /// The worker's environment (`KEY=VALUE`) and working directory, for exec probes.
    pub env: Vec<Vec<u8>>,
    pub cwd: Option<&'a Path>,
}

pub(super) struct Probes {
    tx: mpsc::UnboundedSender<Report>,
    rx: mpsc::UnboundedReceiver<Report>,
    /// Exec probes whose child is not reaped yet, by pid.
    execs: HashMap<u32, Running>,
}

impl Probes {
    pub fn new() -> Probes {
        // Unbounded, yet bounded: the supervisor has at most one probe of each kind out per
        // run, and each sends one report.
        let (tx, rx) = mpsc::unbounded_channel();
        Probes { tx, rx, execs: HashMap::new() }
    }

    pub async fn recv(&mut self) -> Option<Report> {
        self.rx.recv().await
    }

    /// A report already waiting, without waiting: probes started together end together,
    /// and one turn of the loop takes them all.
    pub fn try_recv(&mut self) -> Option<Report> {
        self.rx.try_recv().ok()
    }

    /// Starts a probe; a result known at once (an exec that cannot start) is returned.
    pub fn start(&mut self, asked: Asked, cx: Context<'_>) -> Option<Input> {
        let (slot, pid) = (asked.key.slot, asked.pid);
        let timeout = cx.timeout;
        match cx.target {
            ProbeTarget::Http(url) => {
                let url = expand(url, slot, pid);
                self.spawn_task(asked, async move { net::http(&url, timeout).await });
                None
            }
            ProbeTarget::Tcp(addr) => {
                let addr = expand(addr, slot, pid);
                self.spawn_task(asked, async move { net::tcp(&addr, timeout).await });
                None
            }
            ProbeTarget::Exec(argv) => {
                let argv: Vec<String> = argv.iter().map(|a| expand(a, slot, pid)).collect();
                match exec::spawn(&argv, cx.env, cx.cwd) {
                    Ok((child, drain)) => {
                        let tx = self.tx.clone();
                        let timer = tokio::task::spawn_local(async move {
                            tokio::time::sleep(timeout).await;
                            let _ = tx.send(Report::ExecTimedOut { pid: child });
                        });
                        let running = Running { asked, timeout, reported: false, timer, drain };
                        self.execs.insert(child, running);
                        None
                    }
                    Err(error) => Some(asked.result(Some(error))),
                }
            }
        }
    }

    fn spawn_task(&self, asked: Asked, probe: impl Future<Output = Result<(), String>> + 'static) {
        let tx = self.tx.clone();
        tokio::task::spawn_local(async move {
            let error = probe.await.err();
            let _ = tx.send(Report::Done(asked.result(error)));
        });
    }

    /// Whether `pid` is an exec probe's child (not a worker's, nor a descendant's).
    pub fn owns(&self, pid: u32) -> bool {
        self.execs.contains_key(&pid)
    }

    /// An exec probe's child exited; the caller reaps it after this. Its result, unless
    /// its timeout reported it already.
    pub fn exited(&mut self, pid: u32, status: ExitStatus) -> Option<Input> {
        let running = self.execs.remove(&pid)?;
        // Whatever it left in its group goes with it (the leader is still a zombie, so the
        // group's number is still its own).
        let _ = crate::backend::signal_group(pid, Signal::KILL);
        running.timer.abort();
        running.drain.abort();
        if running.reported {
            return None;
        }
        let error = match status {
            ExitStatus::Code(0) => None,
            other => Some(format!("the command ended with {other}")),
        };
        Some(running.asked.result(error))
    }

    /// An exec probe's time is up: its group is killed and the probe failed.
    pub fn timed_out(&mut self, pid: u32) -> Option<Input> {
        let running = self.execs.get_mut(&pid)?;
        if running.reported {
            return None;
        }
        running.reported = true;
        // WHY safe: the child is in `execs` until the reaper hands its exit here, so its pid
        // (and group) cannot have been reused.
        let _ = crate::backend::signal_group(pid, Signal::KILL);
        let error = format!("timed out after {}", crate::headless::human_duration(running.timeout));
        Some(running.asked.result(Some(error)))
    }

    /// corral is ending: every exec probe's group is killed (their exits are reaped with
    /// the rest).
    pub fn kill_all(&mut self) {
        for (&pid, running) in &mut self.execs {
            running.reported = true;
            let _ = crate::backend::signal_group(pid, Signal::KILL);
        }
    }
}
