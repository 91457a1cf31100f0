//! Headless output (SPEC §7): one line per event on stdout, as text for people or JSON for
//! machines. Lines are handed to a writer thread through a bounded queue, so a slow or
//! stuck stdout drops (and counts) lines instead of stalling the workers' pipes.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::time::{Duration, SystemTime};

use crate::config::LogFormat;
use crate::core::{Event, EventKind, Scope, ShutdownTrigger, WorkerKey};
use crate::protocol::ProtocolError;

mod format;

pub use format::{human_duration, sanitize};

/// A group as announced in `supervisor_started`.
#[derive(Clone, Debug)]
pub struct GroupInfo {
    pub name: String,
    pub workers: u32,
    pub command: String,
    /// Where its sockets really listen (port 0 resolved).
    pub listen: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// One thing to report.
pub enum Record<'a> {
    Started {
        pid: u32,
        groups: &'a [GroupInfo],
    },
    /// A supervisor event; `messages` (for `exited`) is how many messages the slot sent.
    Event(&'a Event, Option<u64>),
    Output {
        key: WorkerKey,
        pid: u32,
        stream: Stream,
        line: &'a [u8],
    },
    /// `data` is the worker's line: valid JSON, exactly as sent.
    Message {
        key: WorkerKey,
        pid: u32,
        data: &'a [u8],
    },
    ProtocolError {
        key: WorkerKey,
        pid: u32,
        error: ProtocolError,
        count: u64,
    },
    ShutdownComplete {
        exit_code: u8,
    },
}

/// Batches go to the writer thread at this size (or at every flush).
const BATCH_BYTES: usize = 32 * 1024;
/// Batches queued for the writer before new ones are dropped: about 2 MiB.
const QUEUE_BATCHES: usize = 64;

pub struct Headless {
    format: LogFormat,
    names: Vec<String>,
    id_width: usize,
    batch: Vec<u8>,
    batch_lines: u64,
    /// The last formatted timestamp and its millisecond.
    ts: String,
    ts_ms: u128,
    tx: Option<SyncSender<Vec<u8>>>,
    writer: Option<std::thread::JoinHandle<()>>,
    shared: Arc<Shared>,
}

struct Shared {
    dropped: AtomicU64,
    closed: AtomicBool,
    on_close: Box<dyn Fn() + Send + Sync>,
}

impl Headless {
    /// `on_close` runs (on the writer thread) once stdout is gone (EPIPE).
    pub fn new(
        format: LogFormat,
        names: Vec<String>,
        out: Box<dyn Write + Send>,
        on_close: Box<dyn Fn() + Send + Sync>,
    ) -> Headless {
        let shared = Arc::new(Shared {
            dropped: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            on_close,
        });
        let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE_BATCHES);
        let thread_shared = Arc::clone(&shared);
        let writer = std::thread::Builder::new()
            .name("corral-stdout".into())
            .spawn(move || write_loop(&rx, out, &thread_shared))
            .ok();
        let id_width = names.iter().map(|n| n.len() + 3).max().unwrap_or(6).max(6);
        Headless {
            format,
            names,
            id_width,
            batch: Vec::with_capacity(BATCH_BYTES),
            batch_lines: 0,
            ts: String::new(),
            ts_ms: u128::MAX,
            tx: Some(tx),
            writer,
            shared,
        }
    }

    /// Whether stdout has gone away.
    pub fn closed(&self) -> bool {
        self.shared.closed.load(Ordering::Relaxed)
    }

    /// Lines dropped so far because stdout could not keep up.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    pub fn record(&mut self, record: &Record<'_>) {
        // A flood of lines shares a handful of milliseconds: format each one once.
        let now = SystemTime::now();
        let ms = now.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis());
        if ms != self.ts_ms {
            self.ts_ms = ms;
            self.ts = format::ts_text(now);
        }
        match self.format {
            LogFormat::Json => format::json(&mut self.batch, &self.ts, &self.names, record),
            LogFormat::Text => {
                format::text(&mut self.batch, &self.ts, &self.names, self.id_width, record);
            }
        }
        self.batch_lines += 1;
        if self.batch.len() >= BATCH_BYTES {
            self.flush();
        }
    }

    /// Hands what is batched to the writer thread; never blocks.
    pub fn flush(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let Some(tx) = &self.tx else { return };
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH_BYTES));
        let lines = std::mem::take(&mut self.batch_lines);
        match tx.try_send(batch) {
            Ok(()) => {}
            Err(TrySendError::Full(mut batch) | TrySendError::Disconnected(mut batch)) => {
                if self.closed() {
                    batch.clear(); // nobody reads any more: nothing to warn about
                    self.batch = batch;
                    return;
                }
                let before = self.shared.dropped.fetch_add(lines, Ordering::Relaxed);
                if before == 0 {
                    tracing::warn!("stdout is not keeping up; dropping output lines (counted)");
                }
                batch.clear();
                self.batch = batch;
            }
        }
    }

    /// Flushes everything and waits (at most `deadline`) for the writer to finish.
    pub fn finish(&mut self, deadline: Duration) {
        self.flush();
        self.tx = None;
        let Some(writer) = self.writer.take() else {
            return;
        };
        let until = std::time::Instant::now() + deadline;
        while !writer.is_finished() && std::time::Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
        if writer.is_finished() {
            let _ = writer.join();
        }
        let dropped = self.dropped();
        if dropped > 0 && !self.closed() {
            tracing::warn!(dropped, "output lines were dropped because stdout was too slow");
        }
    }
}

fn write_loop(rx: &Receiver<Vec<u8>>, out: Box<dyn Write + Send>, shared: &Shared) {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, out);
    while let Ok(batch) = rx.recv() {
        let mut result = out.write_all(&batch);
        // Flush when the queue is empty: low latency when quiet, few syscalls when busy.
        let mut more = rx.try_recv();
        while let (Ok(()), Ok(next)) = (&result, &more) {
            result = out.write_all(next);
            more = rx.try_recv();
        }
        if result.is_ok() {
            result = out.flush();
        }
        if let Err(e) = result {
            // EPIPE: nobody reads (`corral … | head -1`). Anything else: the same for us.
            tracing::debug!("stdout closed: {e}");
            shared.closed.store(true, Ordering::Relaxed);
            (shared.on_close)();
            return;
        }
    }
}

fn scope_id(names: &[String], scope: Scope) -> String {
    let name = |g: u16| names.get(usize::from(g)).map_or("?", String::as_str);
    match scope {
        Scope::Supervisor => "corral".to_string(),
        Scope::Group(g) => name(g).to_string(),
        Scope::Worker(key) => format!("{}.{}", name(key.group), key.slot),
    }
}

fn event_name(kind: &EventKind) -> &'static str {
    match kind {
        EventKind::Spawned { .. } => "spawned",
        EventKind::SpawnFailed { .. } => "spawn_failed",
        EventKind::Ready => "ready",
        EventKind::Exited { .. } => "exited",
        EventKind::RestartScheduled { .. } => "restart_scheduled",
        EventKind::GaveUp { .. } => "gave_up",
        EventKind::Scaled { .. } => "scaled",
        EventKind::ReloadStarted => "reload_started",
        EventKind::ReloadFinished { .. } => "reload_finished",
        EventKind::ShutdownStarted { .. } => "shutdown_started",
    }
}

fn trigger_text(trigger: &ShutdownTrigger) -> String {
    match trigger {
        ShutdownTrigger::Signal(s) => s.name(),
        ShutdownTrigger::Key(k) => format!("key {k}"),
    }
}

#[cfg(test)]
mod tests;
