//! Each worker generation's process and pipes: spawned with its event channel and listeners,
//! its streams read, its last words drained on exit, its readers released when done.

use std::os::fd::AsRawFd;
use std::rc::Rc;

use super::streams::{self, Kind, Reader};
use super::{GenerationIo, Runtime};
use crate::backend::{self, ExecSpec};
use crate::core::Stream;
use crate::core::{Input, WorkerKey};

impl Runtime {
    pub(super) fn spawn(&mut self, key: WorkerKey, generation: u32) -> Input {
        let failed = |e: &std::io::Error| Input::SpawnFailed {
            key,
            generation,
            error: backend::describe(e),
        };
        let Some(group) = self.groups.get(usize::from(key.group)) else {
            return Input::SpawnFailed { key, generation, error: "no such group".into() };
        };
        // Before anything is opened: a missing or broken env file fails this spawn.
        let env = match self.env_files.for_worker(key.group, &group.env, key.slot, generation) {
            Ok(env) => env,
            Err(error) => return Input::SpawnFailed { key, generation, error },
        };
        let (ours, theirs) = match backend::event_socketpair() {
            Ok(pair) => pair,
            Err(e) => return failed(&e),
        };
        let mut fds: Vec<i32> = group.listeners.iter().map(|l| l.fd.as_raw_fd()).collect();
        fds.push(theirs.as_raw_fd());
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
            match self.terminals.open() {
                Ok(pty) => Some(pty),
                Err(e) => return failed(&e),
            }
        } else {
            None
        };
        let pty_master = pty.is_some();
        let child = match backend::spawn(&spec, pty) {
            Ok(child) => child,
            Err(e) => return failed(&e),
        };
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
                        self.hub.clone(),
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
                channel.forward_to_node(self.node.link());
                let cluster = group.spec.node_cluster;
                self.node.open(key, generation, pid, Rc::clone(&channel), cluster);
            }
            let io = GenerationIo { pid, readers, channel, pty: pty_master };
            self.generations.insert((key, generation), io);
        }
        match binds {
            Some(Ok(notify)) => {
                if let Some(adopter) = self.adopter.as_mut() {
                    adopter.watch(key.group, notify);
                }
            }
            Some(Err(errno)) => self.cannot_adopt(key.group, errno),
            None => {}
        }
        Input::Spawned { key, generation, pid }
    }

    /// The dashboard's pane is now `cols` x `rows`: so are the workers' terminals.
    pub(super) fn resize_terminals(&mut self, cols: usize, rows: usize) {
        let size = backend::PtySize::clamped(cols, rows);
        let masters = self.generations.values().filter(|io| io.pty).filter_map(|io| {
            let out = io.readers.iter().find(|(r, _)| r.kind() == Kind::Output(Stream::Stdout));
            out.map(|(r, _)| r.fd())
        });
        self.terminals.resize(size, masters);
    }

    pub(super) fn drain(&self, key: WorkerKey, generation: u32) {
        let Some(io) = self.generations.get(&(key, generation)) else {
            return;
        };
        for (reader, _) in &io.readers {
            self.hub.drain(reader);
        }
    }

    pub(super) fn release(&mut self, key: WorkerKey, generation: u32) {
        self.draining.retain(|d| (d.key, d.generation) != (key, generation));
        self.node.close(key, generation);
        let Some(io) = self.generations.remove(&(key, generation)) else {
            return;
        };
        if self.leaders.get(&io.pid) == Some(&(key, generation)) {
            self.leaders.remove(&io.pid);
            self.update_sample_targets(io.pid, false);
        }
        for (reader, task) in io.readers {
            task.abort();
            self.hub.close(&reader);
        }
    }
}
