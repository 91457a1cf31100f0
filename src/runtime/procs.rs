//! The runtime's process table: reaping, the groups a finished generation left behind,
//! its escapees, and which pids may still be signalled.
//!
//! WHY leaders are kept unreaped: a pid number cannot be reused while a zombie holds it,
//! nor while any process still has it as its process group. A leader that dies while
//! members of its group live on stays a zombie until the group is empty, so `killpg` on
//! its pid can only ever reach that group, never a recycled one.

use std::collections::HashSet;

use super::Runtime;
use crate::backend;
use crate::core::{ExitStatus, Input, WorkerKey};
use crate::signal::Signal;

/// A generation whose leader exited while something it started lives on.
pub(super) struct Draining {
    pub key: WorkerKey,
    pub generation: u32,
    pub pgid: u32,
    /// The leader is kept a zombie: the group's number is ours for sure.
    pub held: bool,
    /// Processes that left the group (`setsid`, a double fork) and were re-parented to
    /// corral, found by the generation's environment marker.
    pub escapees: Vec<u32>,
    marker: Vec<Vec<u8>>,
}

impl Runtime {
    /// Collects every exited child. A worker's exit goes to the core after its pipes are
    /// drained, so its last words come before the `exited` event.
    pub(super) fn reap(&mut self) {
        loop {
            match backend::peek_exit() {
                None => break,
                Some((pid, _)) if self.held.contains(&pid) => {
                    // A kept zombie is first in line: look at the other children one by one.
                    for child in backend::children_of_self() {
                        if !self.held.contains(&child)
                            && let Some(status) = backend::peek_exit_of(child)
                        {
                            self.on_child_exit(child, status);
                        }
                    }
                    break;
                }
                Some((pid, status)) => self.on_child_exit(pid, status),
            }
        }
        self.check_groups();
    }

    fn on_child_exit(&mut self, pid: u32, status: ExitStatus) {
        if self.probes.owns(pid) {
            let result = self.probes.exited(pid, status);
            backend::reap_pid(pid);
            self.inputs.extend(result);
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
        self.update_sample_targets(pid, false);
        self.drain(key, generation);
        self.hint_addr_in_use(key, generation, status);
        let strays = self.stray_children();
        let held = Self::group_has_children(pid, &strays);
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
        self.inputs.push(Input::Exited { key, generation, status, group_alive });
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

    /// corral's children that are neither workers' leaders nor the keeper.
    fn stray_children(&self) -> Vec<u32> {
        let keeper = self.keeper.as_ref().map(super::keeper::Keeper::pid);
        backend::children_of_self()
            .into_iter()
            .filter(|c| {
                !self.leaders.contains_key(c) && Some(*c) != keeper && !self.probes.owns(*c)
            })
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

    pub(super) fn check_groups(&mut self) {
        let mut draining = std::mem::take(&mut self.draining);
        let mut gone = Vec::new();
        let strays = self.stray_children();
        for d in &mut draining {
            if d.held && !Self::group_has_children(d.pgid, &strays) {
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
            self.inputs.push(Input::GroupGone { key, generation });
        }
    }

    pub(super) fn signal(&self, key: WorkerKey, pid: u32, signal: Signal) {
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
    pub(super) fn reap_held(&mut self) {
        let held: HashSet<u32> = std::mem::take(&mut self.held);
        for pid in held {
            backend::reap_pid(pid);
        }
    }
}
