//! The runtime's process table: the workers' leaders and their generations' pipes, the
//! spawns not done yet, reaping, the groups a finished generation left behind, its
//! escapees, which pids may still be signalled, the keeper's list and the sampler's.
//! Never touches: the core (it returns inputs), the sinks (it lends them its readers).
//!
//! WHY leaders are kept unreaped: a pid number cannot be reused while a zombie holds it,
//! nor while any process still has it as its process group. A leader that dies while
//! members of its group live on stays a zombie until the group is empty, so `killpg` on
//! its pid can only ever reach that group, never a recycled one.

use std::collections::{HashMap, HashSet, VecDeque};
use std::rc::Rc;

use tokio::task::JoinHandle;

use super::GroupIo;
use super::hub::Reports;
use super::inputs::Inputs;
use super::keeper::Keeper;
use super::probes::Probes;
use super::streams::Reader;
use super::terminals::Terminals;
use crate::backend;
use crate::core::{ExitStatus, Input, WorkerKey};
use crate::signal::Signal;

mod generations;
mod sampling;

pub(super) use self::generations::SpawnCx;

/// A generation whose leader exited while something it started lives on.
struct Draining {
    key: WorkerKey,
    generation: u32,
    pgid: u32,
    /// The leader is kept a zombie: the group's number is ours for sure.
    held: bool,
    /// Processes that left the group (`setsid`, a double fork) and were re-parented to
    /// corral, found by the generation's environment marker.
    escapees: Vec<u32>,
    marker: Vec<Vec<u8>>,
}

/// One generation's open pipes and channel.
struct GenerationIo {
    pid: u32,
    readers: Vec<(Rc<Reader>, JoinHandle<()>)>,
    channel: Rc<Reader>,
    /// Its stdout reader reads a pty's master.
    pty: bool,
}

pub(super) struct ProcessTable {
    /// Live leaders: pid → slot and generation.
    leaders: HashMap<u32, (WorkerKey, u32)>,
    generations: HashMap<(WorkerKey, u32), GenerationIo>,
    /// Generations whose leader exited while their group or escapees lived on.
    draining: Vec<Draining>,
    /// Leaders kept as zombies until their group is empty.
    held: HashSet<u32>,
    /// Spawns the core asked for and the loop has not done yet (the core counts them as
    /// in flight, as it would a spawn that is under way).
    spawns: VecDeque<(WorkerKey, u32)>,
    keeper: Option<Keeper>,
    /// Leaders the sampler measures (only when something needs the numbers).
    sample_targets: Option<backend::Targets>,
    /// Latest CPU and memory per slot.
    usage: HashMap<WorkerKey, backend::Usage>,
    /// The size of the workers' pseudo-terminals (`--pty`).
    terminals: Terminals,
    /// Group names, for ids and the escapees' marker.
    names: Vec<String>,
}

impl ProcessTable {
    pub fn new(names: Vec<String>) -> ProcessTable {
        ProcessTable {
            leaders: HashMap::new(),
            generations: HashMap::new(),
            draining: Vec::new(),
            held: HashSet::new(),
            spawns: VecDeque::new(),
            keeper: None,
            sample_targets: None,
            usage: HashMap::new(),
            terminals: Terminals::new(),
            names,
        }
    }

    fn id(&self, key: WorkerKey) -> String {
        key.id(&self.names).to_string()
    }

    /// Starts the keeper, which kills what is left if corral is killed.
    pub fn start_keeper(&mut self) {
        self.keeper = Keeper::start();
    }

    /// Sends the keeper the leaders it learnt of this turn.
    pub fn flush_keeper(&mut self) {
        if let Some(k) = self.keeper.as_mut() {
            k.flush();
        }
    }

    /// The end of the run, after the probes were killed: kept zombies reaped, escaped
    /// descendants stopped (a grace, then SIGKILL), the keeper told goodbye, every
    /// generation released.
    pub async fn stop_all(
        &mut self,
        grace: std::time::Duration,
        signals: &mut super::signals::Signals,
        stops: &mut super::stop_signals::StopSignals,
        node: &mut super::node::NodeChannels,
        hub: &Reports,
    ) {
        self.reap_held();
        let keeper = self.keeper.as_ref().map(Keeper::pid);
        super::finish::kill_strays(grace, signals, stops, keeper).await;
        if let Some(k) = self.keeper.as_mut() {
            k.bye();
        }
        self.release_all(node, hub);
    }

    /// A spawn the core asked for, done in a later slice of the loop.
    pub fn queue_spawn(&mut self, key: WorkerKey, generation: u32) {
        self.spawns.push_back((key, generation));
    }

    pub fn next_spawn(&mut self) -> Option<(WorkerKey, u32)> {
        self.spawns.pop_front()
    }

    pub fn spawns_waiting(&self) -> bool {
        !self.spawns.is_empty()
    }

    /// Whether a finished generation's group still lives (see [`ProcessTable::check_groups`]).
    pub fn draining(&self) -> bool {
        !self.draining.is_empty()
    }

    /// The running generations of `keys`, in order.
    pub fn running(&self, keys: &[WorkerKey]) -> Vec<(WorkerKey, u32)> {
        let mut running: Vec<(WorkerKey, u32)> =
            self.leaders.values().copied().filter(|(k, _)| keys.contains(k)).collect();
        running.sort_unstable();
        running
    }

    /// Latest CPU and memory per slot.
    pub fn usage(&self) -> &HashMap<WorkerKey, backend::Usage> {
        &self.usage
    }

    /// While output is held back corral is not reading the event channels, so it cannot
    /// hear heartbeats: a worker that sends them is not judged until reading resumes.
    pub fn keep_alive_held(&self, inputs: &Inputs) {
        for (&(key, generation), io) in &self.generations {
            if self.leaders.contains_key(&io.pid) && io.channel.heartbeats() {
                inputs.push(Input::Heartbeat { key, generation });
            }
        }
    }

    /// Collects every exited child. A worker's exit goes to the core after its pipes are
    /// drained, so its last words come before the `exited` event.
    pub fn reap(
        &mut self,
        probes: &mut Probes,
        groups: &mut [GroupIo],
        hub: &Reports,
        inputs: &Inputs,
    ) {
        loop {
            match backend::peek_exit() {
                None => break,
                Some((pid, _)) if self.held.contains(&pid) => {
                    // A kept zombie is first in line: look at the other children one by one.
                    for child in backend::children_of_self() {
                        if !self.held.contains(&child)
                            && let Some(status) = backend::peek_exit_of(child)
                        {
                            self.on_child_exit(child, status, probes, groups, hub, inputs);
                        }
                    }
                    break;
                }
                Some((pid, status)) => {
                    self.on_child_exit(pid, status, probes, groups, hub, inputs);
                }
            }
        }
        self.check_groups(probes, inputs);
    }

    fn on_child_exit(
        &mut self,
        pid: u32,
        status: ExitStatus,
        probes: &mut Probes,
        groups: &mut [GroupIo],
        hub: &Reports,
        inputs: &Inputs,
    ) {
        if probes.owns(pid) {
            let result = probes.exited(pid, status);
            backend::reap_pid(pid);
            inputs.extend(result);
            return;
        }
        let Some((key, generation)) = self.leaders.remove(&pid) else {
            backend::reap_pid(pid);
            for d in &mut self.draining {
                d.escapees.retain(|&e| e != pid);
            }
            if self.keeper.as_ref().is_some_and(|k| k.pid() == pid) {
                tracing::warn!("the keeper exited: descendants may outlive a killed corral");
            } else {
                tracing::debug!(pid, "reaped a descendant that outlived its parent");
            }
            return;
        };
        self.usage.remove(&key);
        probes.forget(key, generation);
        self.update_sample_targets(pid, false);
        self.drain(key, generation, hub);
        if let Some(group) = groups.get_mut(usize::from(key.group)) {
            let said = self
                .generations
                .get(&(key, generation))
                .is_some_and(|io| io.readers.iter().any(|(r, _)| r.said_addr_in_use()));
            group.hint_addr_in_use(&self.id(key), status, said);
        }
        let strays = self.stray_children(probes);
        let held = group_has_children(pid, &strays);
        if held {
            self.held.insert(pid);
        } else {
            backend::reap_pid(pid);
        }
        let mut d = Draining {
            key,
            generation,
            pgid: pid,
            held,
            escapees: Vec::new(),
            marker: self.marker(key, generation),
        };
        self.find_escapees(&mut d, &strays);
        let group_alive = held || backend::group_alive(pid) || !d.escapees.is_empty();
        if group_alive {
            self.draining.push(d);
        } else if let Some(k) = self.keeper.as_mut() {
            k.forget(pid);
        }
        inputs.push(Input::Exited { key, generation, status, group_alive });
    }

    /// corral's children that are neither workers' leaders nor the keeper.
    fn stray_children(&self, probes: &Probes) -> Vec<u32> {
        let keeper = self.keeper.as_ref().map(Keeper::pid);
        backend::children_of_self()
            .into_iter()
            .filter(|c| !self.leaders.contains_key(c) && Some(*c) != keeper && !probes.owns(*c))
            .collect()
    }

    /// `CORRAL_…` variables every process the generation started carries.
    fn marker(&self, key: WorkerKey, generation: u32) -> Vec<Vec<u8>> {
        let name = self.names.get(usize::from(key.group)).map_or("", String::as_str);
        vec![
            format!("CORRAL_PRIMARY_PID={}", std::process::id()).into_bytes(),
            format!("CORRAL_GROUP={name}").into_bytes(),
            format!("CORRAL_WORKER_ID={}", key.slot).into_bytes(),
            format!("CORRAL_GENERATION={generation}").into_bytes(),
        ]
    }

    /// Adds the generation's escapees among corral's children: marked as its, alive, and
    /// outside its process group.
    fn find_escapees(&self, d: &mut Draining, strays: &[u32]) {
        for &child in strays {
            if d.escapees.contains(&child) || self.held.contains(&child) {
                continue;
            }
            let Some(pgrp) = backend::pgrp_of(child) else { continue };
            if pgrp != d.pgid && backend::environ_has(child, &d.marker) {
                tracing::debug!(worker = %self.id(d.key), pid = child, "found an escaped descendant");
                d.escapees.push(child);
            }
        }
    }

    /// Generations whose group emptied are gone: the core hears of each.
    pub fn check_groups(&mut self, probes: &Probes, inputs: &Inputs) {
        let mut draining = std::mem::take(&mut self.draining);
        let mut gone = Vec::new();
        let strays = self.stray_children(probes);
        for d in &mut draining {
            if d.held && !group_has_children(d.pgid, &strays) {
                // The members it waited for are gone: let the number go.
                backend::reap_pid(d.pgid);
                self.held.remove(&d.pgid);
                d.held = false;
            }
            self.find_escapees(d, &strays);
            d.escapees.retain(|&e| backend::pgrp_of(e).is_some());
            let alive = d.held || backend::group_alive(d.pgid) || !d.escapees.is_empty();
            if !alive {
                gone.push((d.key, d.generation, d.pgid));
            }
        }
        draining.retain(|d| !gone.iter().any(|&(k, g, _)| (k, g) == (d.key, d.generation)));
        self.draining = draining;
        for (key, generation, pgid) in gone {
            if let Some(k) = self.keeper.as_mut() {
                k.forget(pgid);
            }
            inputs.push(Input::GroupGone { key, generation });
        }
    }

    pub fn signal(&self, key: WorkerKey, pid: u32, signal: Signal) {
        // WHY: a pid is signalled only while it cannot have been recycled: the leader is
        // not reaped yet (alive, or kept a zombie), or its group was seen alive since.
        if self.leaders.get(&pid).is_some_and(|(k, _)| *k == key) {
            self.signal_group(key, pid, signal);
            return;
        }
        let Some(d) = self.draining.iter().find(|d| d.key == key && d.pgid == pid) else {
            tracing::debug!(worker = %self.id(key), pid, %signal, "not signalling a process that is gone");
            return;
        };
        self.signal_group(key, pid, signal);
        for &e in &d.escapees {
            // An escapee that leads its own group takes its group with it.
            let result = if backend::pgrp_of(e) == Some(e) {
                backend::signal_group(e, signal)
            } else {
                backend::signal_pid(e, signal)
            };
            if let Err(err) = result {
                tracing::warn!(worker = %self.id(key), pid = e, %signal, "cannot signal an escapee: {err}");
            }
        }
    }

    fn signal_group(&self, key: WorkerKey, pgid: u32, signal: Signal) {
        if let Err(e) = backend::signal_group(pgid, signal) {
            tracing::warn!(worker = %self.id(key), pid = pgid, %signal, "cannot signal the worker's group: {e}");
        }
    }

    /// Kept zombies that nothing waits for any more (shutdown): reap them.
    pub fn reap_held(&mut self) {
        let held: HashSet<u32> = std::mem::take(&mut self.held);
        for pid in held {
            backend::reap_pid(pid);
        }
    }
}

/// Whether a live process other than the (dead) leader is still in process group
/// `pgid`. What a dead leader left has been re-parented to corral, its subreaper: with
/// no child of corral's but workers' leaders, nothing is left (the usual case, one
/// read). Otherwise a member may sit anywhere below those children (under an escapee
/// that left the group, say), so `/proc` is searched for the group.
fn group_has_children(pgid: u32, strays: &[u32]) -> bool {
    let others: Vec<u32> = strays.iter().copied().filter(|&c| c != pgid).collect();
    if others.is_empty() {
        return false;
    }
    others.iter().any(|&c| backend::pgrp_of(c) == Some(pgid)) || backend::group_has_member(pgid)
}
