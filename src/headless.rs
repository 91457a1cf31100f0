//! Headless output (docs/output.md): one line per event on stdout, as text for people or JSON for
//! machines, in the words of [`crate::report`]. Lines are batched here and handed to a
//! lossless writer ([`crate::sinks::lossless`]): nothing is dropped; a slow stdout holds the
//! workers' pipes back instead.

use std::io::Write;
use std::sync::Arc;

use tokio::sync::Notify;

use crate::config::LogFormat;
use crate::sinks::lossless::{StreamSink, Writer};

pub use crate::report::{Lines, Record};

/// Batches go to the writer thread at this size (or at every flush).
const BATCH_BYTES: usize = 32 * 1024;

pub struct Headless {
    lines: Lines,
    batch: Vec<u8>,
    batch_lines: u64,
    writer: Writer<()>,
}

impl Headless {
    /// Starts the writer thread; `on_close` runs on it once `out` is gone (EPIPE), and
    /// `resume` is notified when held-back output may flow again. Fails only when the
    /// thread cannot be started: then nothing could be reported at all.
    pub fn new(
        format: LogFormat,
        names: Vec<String>,
        out: Box<dyn Write + Send>,
        on_close: Box<dyn Fn() + Send + Sync>,
        resume: Arc<Notify>,
    ) -> std::io::Result<Headless> {
        let writer = Writer::start(StreamSink(out), "corral-stdout", on_close, resume)?;
        Ok(Headless {
            lines: Lines::new(format, names),
            batch: Vec::with_capacity(BATCH_BYTES),
            batch_lines: 0,
            writer,
        })
    }

    /// Text mode shows `metric` messages only when asked (`-v`).
    pub fn show_metrics(&mut self, show: bool) {
        self.lines.show_metrics(show);
    }

    /// `--strip-ansi`.
    pub fn strip_ansi(&mut self, strip: bool) {
        self.lines.strip_ansi(strip);
    }

    /// Whether stdout has gone away.
    pub fn closed(&self) -> bool {
        self.writer.closed()
    }

    /// Whether stdout is behind: the workers' pipes must not be read until the resume
    /// `Notify` this was started with fires.
    pub fn held(&self) -> bool {
        self.writer.held()
    }

    /// Reports `record`, which happened `at`.
    pub fn record(&mut self, at: std::time::SystemTime, record: &Record<'_>) {
        if self.writer.closed() {
            return;
        }
        if self.lines.write(&mut self.batch, at, record) {
            self.batch_lines += 1;
        }
        if self.batch.len() >= BATCH_BYTES {
            self.flush();
        }
    }

    /// Hands what is batched to the writer thread; never blocks.
    pub fn flush(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH_BYTES));
        let lines = std::mem::take(&mut self.batch_lines);
        self.writer.push((), batch, lines);
    }

    /// Flushes and tells the writer nothing more comes; it ends once everything is written
    /// ([`Headless::done`]).
    pub fn close(&mut self) {
        self.flush();
        self.writer.close();
    }

    /// Whether the writer has ended (everything written, or stdout gone).
    pub fn finished(&self) -> bool {
        self.writer.finished()
    }

    /// Fires when the writer ends.
    pub fn done(&self) -> Arc<Notify> {
        self.writer.done()
    }

    /// Gives up on what is still queued; returns how many lines were lost in all.
    pub fn abandon(&mut self) -> u64 {
        self.writer.abandon()
    }

    /// Lines that could not be written (only ever at exit).
    pub fn lost(&self) -> u64 {
        self.writer.lost()
    }

    /// Whether stdout is failing now: lines may be lost at exit.
    pub fn failing(&self) -> bool {
        self.writer.failing()
    }

    /// Whether what was flushed so far is written, or known not to be (see
    /// [`crate::sinks::lossless::Writer::settled`]).
    pub fn settled(&self) -> bool {
        self.writer.settled()
    }

    /// Closes and waits for everything to be written.
    #[cfg(test)]
    pub fn join(&mut self) {
        self.flush();
        self.writer.join();
    }
}

#[cfg(test)]
mod tests;
