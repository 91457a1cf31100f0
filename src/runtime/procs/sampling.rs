//! The CPU and memory sampler's runtime side: which leaders it reads, and what its
//! rounds change.

use std::sync::Arc;

use super::super::inputs::Inputs;
use super::ProcessTable;
use crate::backend;
use crate::core::{Input, WorkerKey};

impl ProcessTable {
    /// CPU and memory are sampled when something uses them (`needed`): the dashboard,
    /// `ctl status`, `--max-memory` or `--metrics`. An idle headless corral reads no
    /// `/proc` at all.
    pub fn start_sampler(
        &mut self,
        needed: bool,
    ) -> tokio::sync::mpsc::UnboundedReceiver<Vec<backend::Usage>> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        if needed {
            let targets = backend::Targets::default();
            match backend::start_sampler(Arc::clone(&targets), move |round| tx.send(round).is_ok())
            {
                Ok(()) => {
                    targets.lock().map(|mut t| t.extend(self.leaders.keys())).ok();
                    self.sample_targets = Some(targets);
                }
                Err(e) => tracing::warn!("cannot start the resource sampler: {e}"),
            }
        }
        rx
    }

    /// Tells the sampler about a leader that started (`live`) or ended. One change at a
    /// time: rebuilding the list on every spawn made starting N workers O(N²).
    pub(super) fn update_sample_targets(&self, pid: u32, live: bool) {
        if let Some(Ok(mut t)) = self.sample_targets.as_ref().map(|t| t.lock()) {
            if live {
                t.push(pid);
            } else if let Some(at) = t.iter().position(|&p| p == pid) {
                t.swap_remove(at);
            }
        }
    }

    /// A round of measurements: kept for the views, and each leader's memory to the core.
    /// Returns the live leaders' measurements, by slot (for the dashboard's history).
    pub fn on_samples(
        &mut self,
        round: Vec<backend::Usage>,
        inputs: &Inputs,
    ) -> Vec<(WorkerKey, backend::Usage)> {
        let mut measured = Vec::with_capacity(round.len());
        for usage in round {
            let Some(&(key, generation)) = self.leaders.get(&usage.pid) else {
                continue;
            };
            self.usage.insert(key, usage);
            measured.push((key, usage));
            inputs.push(Input::Sample { key, generation, rss: usage.rss });
        }
        measured
    }
}
