//! Runs the probes the supervisor asks for (docs/application.md#probes) and reports each
//! result as an `Input::ProbeResult`; the supervisor decides what results mean.
//!
//! HTTP and TCP probes run on corral's own thread (no thread, no process), bounded by their
//! timeout and by what they read: to an IP address as sockets polled when the loop is awake
//! anyway (`sockets`), to a name as tasks (`net`), which look the name up first. An exec probe is a child in a process group of its
//! own, with the worker's environment and working directory: corral's reaper collects its
//! exit (it reaps every child) and hands it here; at its timeout the whole group is killed
//! and the probe fails at once, its exit still reaped when it comes.
//!
//! WHY no tokio timer per probe: each one registered while the loop runs costs a wake-up
//! of the runtime (an eventfd write), a third of a probe's cost at a thousand a second.
//! Deadlines are kept here instead, and the main loop sleeps until the earliest of its
//! timers and [`Probes::next_deadline`], then calls [`Probes::due`].

mod exec;
mod net;
mod sockets;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::core::{ExitStatus, Input, ProbeKind, WorkerKey};
use crate::probe_spec::{ProbeTarget, expand, parse_http, parse_tcp};
use crate::signal::Signal;

/// A probe in flight: its deadline and a number that tells it from others due then.
type Id = (Instant, u64);

/// An HTTP or TCP probe's end, sent by its task.
pub(super) struct Report {
    id: Id,
    error: Option<String>,
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

/// A probe in flight, by deadline.
enum InFlight {
    /// To a name: a task.
    Net {
        asked: Asked,
        timeout: Duration,
        task: JoinHandle<()>,
    },
    /// To an address: a socket in `sockets`.
    Socket {
        asked: Asked,
        timeout: Duration,
    },
    Exec {
        pid: u32,
    },
}

/// A running exec probe, until its child is reaped.
struct Running {
    asked: Asked,
    id: Id,
    timeout: Duration,
    /// Its result went out already (its time ran out): its exit is only reaped.
    reported: bool,
}

/// What a worker's probe needs from its group.
pub(super) struct Context<'a> {
    pub target: &'a ProbeTarget,
    pub timeout: Duration,
    /// The worker's environment (`KEY=VALUE`) and working directory, for exec probes.
    pub env: Vec<Vec<u8>>,
    pub cwd: Option<&'a Path>,
}

/// Results are handed to the supervisor at most this long after the first of a batch came:
/// probes that end close together are handled in one turn of the main loop.
const BATCH: Duration = Duration::from_millis(10);

/// Sockets in flight are looked at least this often, and whenever a timer wakes the loop
/// before: with many probes, the wake-ups of the coarse timers that start them (every
/// 20 ms) find the answers of the ones before.
const CHECK: Duration = Duration::from_millis(20);

pub(super) struct Probes {
    tx: mpsc::UnboundedSender<Report>,
    rx: mpsc::UnboundedReceiver<Report>,
    /// Results not handed over yet, and when they will be.
    held: Vec<Input>,
    batch_at: Option<Instant>,
    /// Probes in flight, and their deadlines earliest first (a deadline whose probe ended
    /// is dropped when it comes up). A map and a heap, not a `BTreeMap`: their buffers
    /// stay, where a tree's nodes were allocated and freed at every probe.
    in_flight: HashMap<u64, InFlight>,
    deadlines: BinaryHeap<Reverse<Id>>,
    seq: u64,
    /// Exec probes whose child is not reaped yet, by pid.
    execs: HashMap<u32, Running>,
    sockets: sockets::Sockets,
    /// Each run's probes that may be in flight (at most one of each kind, so the list is
    /// pruned to what is in flight whenever one is added): a run that ends takes its
    /// probes with it.
    by_run: HashMap<(WorkerKey, u32), Vec<u64>>,
    /// When the sockets are looked at, if nothing wakes the loop before.
    check_at: Option<Instant>,
    answers: Vec<(u64, Result<(), String>)>,
}

impl Probes {
    pub fn new() -> Probes {
        // Unbounded, yet bounded: the supervisor has at most one probe of each kind out per
        // run, and each sends one report.
        let (tx, rx) = mpsc::unbounded_channel();
        Probes {
            tx,
            rx,
            held: Vec::new(),
            batch_at: None,
            in_flight: HashMap::new(),
            deadlines: BinaryHeap::new(),
            seq: 0,
            execs: HashMap::new(),
            sockets: sockets::Sockets::new(),
            by_run: HashMap::new(),
            check_at: None,
            answers: Vec::new(),
        }
    }

    /// The next report of an HTTP or TCP probe (a `select!` branch; cancel-safe). Not to
    /// be polled while [`Probes::holding`]: the rest of a batch is taken at its end, so a
    /// thousand reports a second cost a hundred turns of the loop, not a thousand.
    pub async fn recv(&mut self) -> Option<Report> {
        self.rx.recv().await
    }

    /// A batch is held: its end is a deadline of [`Probes::next_deadline`].
    pub fn holding(&self) -> bool {
        self.batch_at.is_some()
    }

    /// Keeps a report's result for the next batch.
    pub fn hold(&mut self, report: Report, now: Instant) {
        let Some(InFlight::Net { asked, .. }) = self.in_flight.remove(&report.id.1) else {
            return; // it timed out, and that was reported
        };
        self.held.push(asked.result(report.error));
        self.batch_at.get_or_insert(now + BATCH);
        self.drop_ended();
    }

    /// Drops the earliest deadlines whose probes ended in time, so that the loop does not
    /// wake for them: with a thousand probes a second nearly every deadline is one.
    fn drop_ended(&mut self) {
        while let Some(&Reverse((_, id))) = self.deadlines.peek() {
            if self.in_flight.contains_key(&id) {
                break;
            }
            self.deadlines.pop();
        }
    }

    /// When [`Probes::due`] has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        let first = self.deadlines.peek().map(|d| d.0.0);
        [first, self.batch_at, self.check_at].into_iter().flatten().min()
    }

    /// The results due at `now`: the batch held, the sockets that have their answer (looked
    /// at whenever the loop wakes for a timer, which a thousand probes a second make it do
    /// every 10 ms anyway), and the probes whose time ran out (their task stopped, their
    /// socket closed, or their process group killed).
    pub fn due(&mut self, now: Instant, out: &mut impl Extend<Input>) {
        self.sockets.poll(&mut self.answers);
        for (id, answer) in self.answers.drain(..) {
            if let Some(InFlight::Socket { asked, .. }) = self.in_flight.remove(&id) {
                out.extend([asked.result(answer.err())]);
            }
        }
        self.check_at = (!self.sockets.is_empty()).then_some(now + CHECK);
        if self.batch_at.is_some_and(|at| at <= now) {
            while let Ok(report) = self.rx.try_recv() {
                self.hold(report, now);
            }
            self.batch_at = None;
            out.extend(self.held.drain(..));
        }
        while let Some(&Reverse((at, id))) = self.deadlines.peek() {
            if at > now {
                break;
            }
            self.deadlines.pop();
            match self.in_flight.remove(&id) {
                None => {} // it ended in time
                Some(InFlight::Net { asked, timeout, task }) => {
                    task.abort();
                    out.extend([asked.result(Some(timed_out(timeout)))]);
                }
                Some(InFlight::Socket { asked, timeout }) => {
                    self.sockets.cancel(id);
                    out.extend([asked.result(Some(timed_out(timeout)))]);
                }
                Some(InFlight::Exec { pid }) => out.extend(self.exec_timed_out(pid)),
            }
        }
        self.drop_ended();
    }

    fn next_id(&mut self, deadline: Instant) -> Id {
        self.seq += 1;
        self.deadlines.push(Reverse((deadline, self.seq)));
        (deadline, self.seq)
    }

    /// Starts a probe; a result known at once (an exec that cannot start, a refused
    /// connection) is returned.
    pub fn start(&mut self, asked: Asked, cx: Context<'_>, now: Instant) -> Option<Input> {
        let (slot, pid) = (asked.key.slot, asked.pid);
        let timeout = cx.timeout;
        let id = self.next_id(now + timeout);
        match cx.target {
            ProbeTarget::Http(url) => {
                let url = expand(url, slot, pid);
                let target = match parse_http(&url) {
                    Ok(target) => target,
                    Err(e) => return Some(asked.result(Some(e))),
                };
                let authority = target.authority();
                let Ok(addr) = authority.parse::<SocketAddr>() else {
                    self.spawn_task(id, asked, timeout, async move { net::http(&url).await });
                    return None;
                };
                let request = net::request(&target.path, &authority).into_bytes();
                let answer = self.sockets.http(id.1, addr, request);
                self.socket_started(id, asked, timeout, answer, now)
            }
            ProbeTarget::Tcp(addr) => {
                let addr = expand(addr, slot, pid);
                let (host, port) = match parse_tcp(&addr) {
                    Ok(parsed) => parsed,
                    Err(e) => return Some(asked.result(Some(e))),
                };
                let Ok(ip) = host.parse::<IpAddr>() else {
                    self.spawn_task(id, asked, timeout, async move { net::tcp(&addr).await });
                    return None;
                };
                let answer = self.sockets.tcp(id.1, SocketAddr::new(ip, port));
                self.socket_started(id, asked, timeout, answer, now)
            }
            ProbeTarget::Exec(argv) => {
                let argv: Vec<String> = argv.iter().map(|a| expand(a, slot, pid)).collect();
                match exec::spawn(&argv, cx.env, cx.cwd) {
                    Ok(child) => {
                        let running = Running { asked, id, timeout, reported: false };
                        self.execs.insert(child, running);
                        self.flying(asked, id.1, InFlight::Exec { pid: child });
                        None
                    }
                    Err(error) => Some(asked.result(Some(error))),
                }
            }
        }
    }

    /// A socket probe began: its answer if it came at once, else it is in flight and looked
    /// at within [`CHECK`].
    fn socket_started(
        &mut self,
        id: Id,
        asked: Asked,
        timeout: Duration,
        answer: Option<Result<(), String>>,
        now: Instant,
    ) -> Option<Input> {
        if let Some(answer) = answer {
            self.drop_ended();
            return Some(asked.result(answer.err()));
        }
        self.flying(asked, id.1, InFlight::Socket { asked, timeout });
        self.check_at.get_or_insert(now + CHECK);
        None
    }

    /// WHY `tokio::spawn` and not `spawn_local`: waking a local task wakes the whole local
    /// set, which polls the main loop's `select!` again; a runtime task's wake-up stays in
    /// the scheduler.
    fn spawn_task(
        &mut self,
        id: Id,
        asked: Asked,
        timeout: Duration,
        probe: impl Future<Output = Result<(), String>> + Send + 'static,
    ) {
        let tx = self.tx.clone();
        let task = tokio::spawn(async move {
            let error = probe.await.err();
            let _ = tx.send(Report { id, error });
        });
        self.flying(asked, id.1, InFlight::Net { asked, timeout, task });
    }

    fn flying(&mut self, asked: Asked, id: u64, probe: InFlight) {
        let run = self.by_run.entry((asked.key, asked.generation)).or_default();
        run.retain(|other| self.in_flight.contains_key(other));
        run.push(id);
        self.in_flight.insert(id, probe);
    }

    /// Run `generation` of `key` ended (its leader exited, or it was released): its probes
    /// in flight end with it, unreported: their socket closed, their task stopped, their
    /// command's group killed (its exit is still reaped). Without this a crash loop with a
    /// probe that hangs piled up one socket or process per run until each timed out.
    pub fn forget(&mut self, key: WorkerKey, generation: u32) {
        let Some(ids) = self.by_run.remove(&(key, generation)) else { return };
        for id in ids {
            match self.in_flight.remove(&id) {
                None => {}
                Some(InFlight::Net { task, .. }) => task.abort(),
                Some(InFlight::Socket { .. }) => {
                    self.sockets.cancel(id);
                }
                Some(InFlight::Exec { pid }) => {
                    if let Some(running) = self.execs.get_mut(&pid) {
                        running.reported = true;
                        let _ = crate::backend::signal_group(pid, Signal::KILL);
                    }
                }
            }
        }
        self.drop_ended();
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
        self.in_flight.remove(&running.id.1);
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
    fn exec_timed_out(&mut self, pid: u32) -> Option<Input> {
        let running = self.execs.get_mut(&pid)?;
        if running.reported {
            return None;
        }
        running.reported = true;
        // WHY safe: the child is in `execs` until the reaper hands its exit here, so its pid
        // (and group) cannot have been reused.
        let _ = crate::backend::signal_group(pid, Signal::KILL);
        Some(running.asked.result(Some(timed_out(running.timeout))))
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

fn timed_out(timeout: Duration) -> String {
    format!("timed out after {}", crate::report::human_duration(timeout))
}
