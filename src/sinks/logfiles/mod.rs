//! `--log-dir` (docs/logs.md): `DIR/corral.log` holds corral's own events as the headless text
//! lines (docs/output.md), `DIR/<group>.<slot>.log` every output line of that slot, every generation:
//!
//! ```text
//! 2026-12-02T10:00:00.123Z stdout 4242 listening on 3000
//! ```
//!
//! The line is the worker's, escaped as headless text escapes it (colours kept as received
//! and reset at the line's end; other sequences, control characters and bidi overrides made
//! visible as `\u{1b}`, invalid UTF-8 as U+FFFD; `--strip-ansi` removes the sequences), so
//! no line can forge another or drive the terminal of whoever runs `tail -f`.
//!
//! Files rotate daily (UTC), keep `--log-keep` rotated copies each, are 0640 in a 0750
//! directory, and are reopened on SIGUSR1. Writing is the lossless writer's (nothing is
//! lost; a slow or full disk holds the workers back), on a thread of its own.
//!
//! WHY not tracing-appender's `RollingFileAppender`, as docs/logs.md first said: its 0.2.5
//! prunes by file-name prefix (keeping `web.2`'s files deletes `web.20`'s), creates files
//! with the umask's mode, cannot reopen for an outside logrotate, and rotates at most once
//! a minute, so no test could drive it. Its naming is kept.

mod files;
pub mod rotation;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::Notify;

pub use self::files::{FileSink, LogId};
use self::rotation::Period;
use crate::config::{self, LogFormat};
use crate::core::Stream;
use crate::report::{Lines, Record, worker_line};
use crate::sinks::lossless::Writer;

/// A log's batch goes to the writer thread at this size (or at every flush).
const BATCH_BYTES: usize = 32 * 1024;

/// Test hook: a rotation period instead of a day (humantime, `2s`), read once at start.
/// Rotated names then carry the second. Not for people: tests cannot wait for midnight.
const ROTATE_EVERY_VAR: &str = "CORRAL_LOG_ROTATE_EVERY";

/// Why the log files could not be started; nothing was spawned.
#[derive(Debug, thiserror::Error)]
pub enum StartFailure {
    #[error("cannot write logs in {dir}: {reason}")]
    Dir { dir: String, reason: String },
    #[error("cannot start the log writer: {0}")]
    Thread(std::io::Error),
    #[error(
        "log directory {dir} is in use by another corral{holder}: give this one its own --log-dir"
    )]
    Locked { dir: String, holder: String },
}

struct Pending {
    id: LogId,
    bytes: Vec<u8>,
    lines: u64,
}

/// The runtime's side of the log files: records become lines, batched per file.
pub struct LogFiles {
    lines: Lines,
    /// Batches not yet handed over, one per log that got lines since the last flush.
    pending: Vec<Pending>,
    index: HashMap<LogId, usize>,
    writer: Writer<LogId>,
    /// The directory, locked while corral runs: two corrals writing the same files would
    /// interleave their lines and rotate each other's files.
    _lock: Option<nix::fcntl::Flock<std::fs::File>>,
}

impl LogFiles {
    /// Opens (creating) the directory and `corral.log` here, so that an unusable
    /// `--log-dir` is a start-up error, then starts the writer thread. `resume` is
    /// notified when held-back output may flow again (shared with headless stdout).
    pub fn start(
        config: &config::LogDir,
        names: Vec<String>,
        show_metrics: bool,
        resume: Arc<Notify>,
    ) -> Result<LogFiles, StartFailure> {
        let mut sink = FileSink::new(
            config.dir.clone(),
            config.keep,
            period_from_env(),
            names.clone(),
            Box::new(SystemTime::now),
        );
        let failed = |reason: String| StartFailure::Dir {
            dir: crate::text::escape(&config.dir.to_string_lossy(), false),
            reason,
        };
        let dir = sink.open_dir().map_err(|e| failed(crate::backend::describe(&e)))?;
        let lock = lock(dir).map_err(|holder| StartFailure::Locked {
            dir: crate::text::escape(&config.dir.to_string_lossy(), false),
            holder,
        })?;
        sink.open(LogId::Corral)
            .map_err(|e| failed(format!("corral.log: {}", crate::backend::describe(&e))))?;
        let writer = Writer::start(sink, "corral-logs", Box::new(|| {}), resume)
            .map_err(StartFailure::Thread)?;
        let mut lines = Lines::new(LogFormat::Text, names);
        lines.show_metrics(show_metrics);
        Ok(LogFiles { lines, pending: Vec::new(), index: HashMap::new(), writer, _lock: lock })
    }

    /// `--strip-ansi`: output lines without their escape sequences.
    pub fn strip_ansi(&mut self, strip: bool) {
        self.lines.strip_ansi(strip);
    }

    /// Writes `record`, which happened `at`, to its log.
    pub fn record(&mut self, when: std::time::SystemTime, record: &Record<'_>) {
        let id = match record {
            Record::Output { key, .. } => LogId::Worker(*key),
            Record::Started { .. }
            | Record::Event(..)
            | Record::Message { .. }
            | Record::ProtocolError { .. }
            | Record::ShutdownComplete { .. } => LogId::Corral,
        };
        let at = *self.index.entry(id).or_insert_with(|| {
            self.pending.push(Pending { id, bytes: Vec::with_capacity(4096), lines: 0 });
            self.pending.len() - 1
        });
        let batch = &mut self.pending[at];
        let wrote = match record {
            Record::Output { pid, stream, line, .. } => {
                let line = self.lines.worker_bytes(line);
                output_line(&mut batch.bytes, self.lines.ts(when), *stream, *pid, &line);
                true
            }
            _ => self.lines.write(&mut batch.bytes, when, record),
        };
        batch.lines += u64::from(wrote);
        if batch.bytes.len() >= BATCH_BYTES {
            let bytes = std::mem::replace(&mut batch.bytes, Vec::with_capacity(BATCH_BYTES));
            let lines = std::mem::take(&mut batch.lines);
            self.writer.push(id, bytes, lines);
        }
    }

    /// Hands every batch to the writer thread; never blocks.
    pub fn flush(&mut self) {
        self.index.clear();
        for p in self.pending.drain(..) {
            if !p.bytes.is_empty() {
                self.writer.push(p.id, p.bytes, p.lines);
            }
        }
    }

    /// SIGUSR1: every open file is closed and opened again at its name.
    pub fn reopen(&self) {
        self.writer.reopen();
    }

    /// Whether the disk is behind: the workers' pipes must not be read until the resume
    /// `Notify` fires.
    pub fn held(&self) -> bool {
        self.writer.held()
    }

    /// Flushes and tells the writer nothing more comes.
    pub fn close(&mut self) {
        self.flush();
        self.writer.close();
    }

    pub fn finished(&self) -> bool {
        self.writer.finished()
    }

    pub fn done(&self) -> Arc<Notify> {
        self.writer.done()
    }

    /// Gives up on what is still queued; returns how many lines were lost in all.
    pub fn abandon(&mut self) -> u64 {
        self.writer.abandon()
    }

    pub fn lost(&self) -> u64 {
        self.writer.lost()
    }

    /// Whether a log file is failing now: lines may be lost at exit.
    pub fn failing(&self) -> bool {
        self.writer.failing()
    }

    /// Whether what was flushed so far is written, or known not to be.
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

/// `2026-12-02T10:00:00.123Z stdout 4242 listening on 3000`
fn output_line(out: &mut Vec<u8>, ts: &str, stream: Stream, pid: u32, line: &[u8]) {
    out.extend_from_slice(ts.as_bytes());
    out.push(b' ');
    out.extend_from_slice(stream.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(itoa::Buffer::new().format(pid).as_bytes());
    out.push(b' ');
    worker_line(out, line);
    out.push(b'\n');
}

/// Locks the open log directory (`flock`, released when corral exits, however it exits).
/// If another process holds it: `Err(" (pid N)")`, from `/proc/locks`, for the refusal.
fn lock(dir: std::fs::File) -> Result<Option<nix::fcntl::Flock<std::fs::File>>, String> {
    use std::os::unix::fs::MetadataExt as _;
    let inode = dir.metadata().map(|m| m.ino()).unwrap_or_default();
    match nix::fcntl::Flock::lock(dir, nix::fcntl::FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Ok(Some(lock)),
        Err((_, errno)) if errno != nix::errno::Errno::EWOULDBLOCK => {
            // A filesystem without locks: log unlocked rather than not at all.
            tracing::warn!("cannot lock the log directory ({errno}); going on without");
            Ok(None)
        }
        Err(_) => {
            let holder = std::fs::read_to_string("/proc/locks").ok().and_then(|locks| {
                locks.lines().find_map(|line| {
                    // `1: FLOCK  ADVISORY  WRITE 4242 08:01:1234 0 EOF`
                    let fields: Vec<&str> = line.split_whitespace().collect();
                    let ino = fields.get(5)?.rsplit(':').next()?.parse::<u64>().ok()?;
                    (fields.get(1) == Some(&"FLOCK") && ino == inode).then(|| fields[4].to_string())
                })
            });
            Err(holder.map(|pid| format!(" (pid {pid})")).unwrap_or_default())
        }
    }
}

fn period_from_env() -> Period {
    let Some(value) = std::env::var_os(ROTATE_EVERY_VAR) else { return Period::Daily };
    match value.to_str().map(humantime::parse_duration) {
        Some(Ok(every))
            if every >= Duration::from_millis(1) && every <= crate::spec::values::MAX_DURATION =>
        {
            Period::Every(every)
        }
        _ => {
            tracing::warn!("ignoring {ROTATE_EVERY_VAR}={value:?}: not a duration; rotating daily");
            Period::Daily
        }
    }
}

#[cfg(test)]
mod tests;
