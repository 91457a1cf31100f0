//! Each worker generation's process and pipes: spawned with its event channel and listeners,
//! its streams read, its last words drained on exit, its readers released when done.

use std::os::fd::AsFd;
use std::rc::Rc;

use super::super::GroupIo;
use super::super::env_files::EnvFiles;
use super::super::hub::Reports;
use super::super::node::{self, NodeChannels};
use super::super::streams::{self, Kind, Reader};
use super::{GenerationIo, ProcessTable};
use crate::backend::{self, ExecSpec};
use crate::core::Stream;
use crate::core::{Input, WorkerKey};
use crate::protocol;

/// What a spawn needs besides the table: the group, its env files as read this turn, the
/// sinks its readers feed, and the Node channels.
pub(in crate::runtime) struct SpawnCx<'a> {
    pub group: Option<&'a GroupIo>,
    pub env_files: &'a mut EnvFiles,
    pub hub: &'a Reports,
    pub node: &'a mut NodeChannels,
}

/// A spawn's outcome for the core, and where the worker's own binds arrive (see `adopt`).
pub(in crate::runtime) struct Spawned {
    pub input: Input,
    pub binds: Option<Result<std::os::fd::OwnedFd, i32>>,
}

impl ProcessTable {
    pub fn spawn(&mut self, key: WorkerKey, generation: u32, mut cx: SpawnCx<'_>) -> Spawned {
        let input = match self.spawn_inner(key, generation, &mut cx) {
            Ok(spawned) => return spawned,
            Err(input) => input,
        };
        Spawned { input, binds: None }
    }

    fn spawn_inner(
        &mut self,
        key: WorkerKey,
        generation: u32,
        cx: &mut SpawnCx<'_>,
    ) -> Result<Spawned, Input> {
        let failed = |e: &std::io::Error| Input::SpawnFailed {
            key,
            generation,
            error: backend::describe(e),
        };
        let Some(group) = cx.group else {
            return Err(Input::SpawnFailed { key, generation, error: "no such group".into() });
        };
        // Before anything is opened: a missing or broken env file fails this spawn.
        let env = match cx.env_files.for_worker(key.group, &group.env, key.slot, generation) {
            Ok(env) => env,
            Err(error) => return Err(Input::SpawnFailed { key, generation, error }),
        };
        let (ours, theirs) = backend::event_socketpair().map_err(|e| failed(&e))?;
        let mut fds: Vec<_> = group.listeners.iter().map(|l| l.fd.as_fd()).collect();
        fds.push(theirs.as_fd());
        let spec = ExecSpec {
            discard_output: false,
            program: &group.spec.command.program,
            argv: &group.spec.command.argv,
            env,
            listen_pid: !group.listeners.is_empty(),
            cwd: group.spec.cwd.as_deref(),
            fds: &fds,
            adopt_binds: group.adopt,
        };
        let pty = if group.spec.pty {
            Some(self.terminals.open().map_err(|e| failed(&e))?)
        } else {
            None
        };
        let pty_master = pty.is_some();
        let child = backend::spawn(&spec, pty).map_err(|e| failed(&e))?;
        drop(theirs); // the worker has its copy; ours would hide its EOF
        let pid = child.pid;
        let binds = child.binds;
        self.leaders.insert(pid, (key, generation));
        if let Some(k) = self.keeper.as_mut() {
            k.watch(pid);
        }
        self.update_sample_targets(pid, true);
        // A pty is one stream: everything the worker writes is stdout.
        let mut streams = vec![(child.stdout, Kind::Output(Stream::Stdout))];
        if let Some(stderr) = child.stderr {
            streams.push((stderr, Kind::Output(Stream::Stderr)));
        }
        streams.push((ours, Kind::Events));
        let mut readers = Vec::new();
        for (fd, kind) in streams {
            let made = Reader::new(fd, kind, key, generation, pid, self.id(key));
            match made.map(|r| r.on_pty(pty_master && kind != Kind::Events)) {
                Ok(reader) => {
                    let task = tokio::task::spawn_local(streams::read_task(
                        Rc::clone(&reader),
                        cx.hub.clone(),
                    ));
                    readers.push((reader, task));
                }
                Err(e) => {
                    tracing::warn!(worker = %self.id(key), "cannot watch a worker stream: {e}");
                }
            }
        }
        let channel = readers.iter().find(|(r, _)| r.kind() == Kind::Events);
        if let Some(channel) = channel.map(|(r, _)| Rc::clone(r)) {
            if group.spec.node_ipc {
                channel.forward_to_node(cx.node.link());
                let cluster = group.spec.node_cluster;
                cx.node.open(key, generation, pid, Rc::clone(&channel), cluster);
            }
            let io = GenerationIo { pid, readers, channel, pty: pty_master };
            self.generations.insert((key, generation), io);
        }
        Ok(Spawned { input: Input::Spawned { key, generation, pid }, binds })
    }

    /// The dashboard's pane is now `cols` x `rows`: so are the workers' terminals.
    pub fn resize_terminals(&mut self, cols: usize, rows: usize) {
        let size = backend::PtySize::clamped(cols, rows);
        let masters = self.generations.values().filter(|io| io.pty).filter_map(|io| {
            let out = io.readers.iter().find(|(r, _)| r.kind() == Kind::Output(Stream::Stdout));
            out.map(|(r, _)| r.fd())
        });
        self.terminals.resize(size, masters);
    }

    pub fn drain(&self, key: WorkerKey, generation: u32, hub: &Reports) {
        let Some(io) = self.generations.get(&(key, generation)) else {
            return;
        };
        for (reader, _) in &io.readers {
            hub.drain(reader);
        }
    }

    /// The core is done with the generation: its pipes close, what they held is read.
    pub fn release(
        &mut self,
        key: WorkerKey,
        generation: u32,
        node: &mut NodeChannels,
        hub: &Reports,
    ) {
        self.draining.retain(|d| (d.key, d.generation) != (key, generation));
        node.close(key, generation);
        let Some(io) = self.generations.remove(&(key, generation)) else {
            return;
        };
        if self.leaders.get(&io.pid) == Some(&(key, generation)) {
            self.leaders.remove(&io.pid);
            self.update_sample_targets(io.pid, false);
        }
        for (reader, task) in io.readers {
            task.abort();
            hub.close(&reader);
        }
    }

    /// Every generation released (the end of the run).
    pub fn release_all(&mut self, node: &mut NodeChannels, hub: &Reports) {
        let keys: Vec<_> = self.generations.keys().copied().collect();
        for (key, generation) in keys {
            self.release(key, generation, node, hub);
        }
    }

    /// The notice before a graceful stop's signal: Node's `disconnect` for a cluster
    /// worker whose group asks for it, corral's shutdown line for everyone else. Returns
    /// the input a disconnect that is already done gives.
    pub fn notify_shutdown(
        &self,
        key: WorkerKey,
        pid: u32,
        disconnect_first: bool,
        node: &mut node::NodeChannels,
    ) -> Option<Input> {
        let Some(&(key_at, generation)) = self.leaders.get(&pid) else {
            tracing::debug!(worker = %self.id(key), pid, "no channel for the shutdown notice");
            return None;
        };
        let mut done = None;
        if disconnect_first {
            match node.disconnect(key_at, generation) {
                None => {
                    tracing::debug!(worker = %self.id(key), pid, "asked to disconnect");
                    return None;
                }
                Some(input) => done = Some(input),
            }
        }
        if let Some(io) = self.generations.get(&(key_at, generation)) {
            tracing::debug!(worker = %self.id(key), pid, "sending the shutdown notice");
            io.channel.send(protocol::SHUTDOWN_LINE);
        }
        done
    }
}
