//! The lossless sink behind headless output: formatted bytes queue here and a thread of
//! its own writes them out. It never drops a line. When the reader of stdout (or the disk
//! under it) falls behind, the queue passes its high mark and `held()` turns true: the
//! stream readers then stop reading the pipes of the workers, whose own writes block, as
//! if they wrote to that slow reader themselves. Supervision never waits on this queue.
//!
//! Write errors: EPIPE means nobody reads any more (`corral … | head -1`): the sink closes
//! and the runtime shuts down cleanly. Any other error (ENOSPC, EIO) holds output back and
//! is retried every second, reported on stderr once and then at most once a minute.

use std::collections::VecDeque;
use std::io::{ErrorKind, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// Above this many queued bytes the workers' pipes stop being read.
pub const HIGH_MARK: usize = 4 * 1024 * 1024;
/// Reading resumes once the queue is back under this.
pub const LOW_MARK: usize = 1024 * 1024;
/// A failing write is tried again this often.
const RETRY_EVERY: Duration = Duration::from_secs(1);
/// A write error that goes on is reported again at most this often.
const REPORT_EVERY: Duration = Duration::from_mins(1);
/// At exit, output that still cannot be written after this long is given up.
const EXIT_RETRIES: u32 = 5;

#[derive(Default)]
struct Queue {
    batches: VecDeque<(Vec<u8>, u64)>,
    /// Bytes queued, including the batch being written.
    bytes: usize,
    /// No more batches will come: write what is queued, then end.
    closing: bool,
}

pub(super) struct Shared {
    queue: Mutex<Queue>,
    more: Condvar,
    held: AtomicBool,
    closed: AtomicBool,
    /// Lines given up at exit because they could not be written.
    lost: AtomicU64,
    resume: Arc<Notify>,
    done: Arc<Notify>,
    finished: AtomicBool,
    on_close: Box<dyn Fn() + Send + Sync>,
}

/// The queue and its writer thread.
pub struct Writer {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Writer {
    /// Starts the writer thread; `on_close` runs on it once the reader is gone (EPIPE).
    pub fn start(
        out: Box<dyn Write + Send>,
        on_close: Box<dyn Fn() + Send + Sync>,
    ) -> std::io::Result<Writer> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            more: Condvar::new(),
            held: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            lost: AtomicU64::new(0),
            resume: Arc::new(Notify::new()),
            done: Arc::new(Notify::new()),
            finished: AtomicBool::new(false),
            on_close,
        });
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("corral-stdout".into())
            .spawn(move || write_loop(out, &thread_shared))?;
        Ok(Writer { shared, thread: Some(thread) })
    }

    /// Queues a batch of `lines` lines. Never blocks (beyond a short lock), never drops:
    /// callers keep the queue bounded by honouring [`Writer::held`].
    pub fn push(&self, batch: Vec<u8>, lines: u64) {
        if self.closed() {
            return; // nobody reads any more: nothing to keep
        }
        let mut q = self.shared.lock();
        q.bytes += batch.len();
        if q.bytes > HIGH_MARK {
            self.shared.held.store(true, Ordering::Release);
        }
        q.batches.push_back((batch, lines));
        drop(q);
        self.shared.more.notify_one();
    }

    /// Whether output is being held back: stop reading workers' pipes until
    /// [`Writer::resumed`] fires.
    pub fn held(&self) -> bool {
        self.shared.held.load(Ordering::Acquire)
    }

    /// Notified (all waiters) when the queue has drained below its low mark.
    pub fn resumed(&self) -> Arc<Notify> {
        Arc::clone(&self.shared.resume)
    }

    /// Whether stdout has gone away (EPIPE).
    pub fn closed(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire)
    }

    /// Lines that could not be written at exit.
    pub fn lost(&self) -> u64 {
        self.shared.lost.load(Ordering::Acquire)
    }

    /// No more batches: the thread writes what is queued and ends. Wait for
    /// [`Writer::done`] to know when.
    pub fn close(&self) {
        self.shared.lock().closing = true;
        self.shared.more.notify_one();
    }

    /// Notified once the writer thread has ended; check [`Writer::finished`] first.
    pub fn done(&self) -> Arc<Notify> {
        Arc::clone(&self.shared.done)
    }

    pub fn finished(&self) -> bool {
        self.shared.finished.load(Ordering::Acquire)
    }

    /// Gives up on what is still queued (a person asked twice to stop, or the writer is
    /// stuck): counts it as lost. The thread, if blocked in a write, is left behind.
    pub fn abandon(&mut self) -> u64 {
        let mut q = self.shared.lock();
        let lines: u64 = q.batches.iter().map(|(_, n)| n).sum();
        q.batches.clear();
        q.closing = true;
        drop(q);
        self.shared.more.notify_one();
        self.shared.lost.fetch_add(lines, Ordering::AcqRel);
        if self.finished()
            && let Some(t) = self.thread.take()
        {
            let _ = t.join();
        }
        self.lost()
    }

    /// Blocks until the thread has written everything or given up (tests and benches).
    pub fn join(&mut self) {
        self.close();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A poisoned lock only means the writer panicked mid-update; the queue is plain
        // data and still usable.
        self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn written(&self, len: usize) {
        let mut q = self.lock();
        q.bytes = q.bytes.saturating_sub(len);
        let below = q.bytes < LOW_MARK;
        drop(q);
        if below && self.held.swap(false, Ordering::AcqRel) {
            self.resume.notify_waiters();
        }
    }

    fn end(&self) {
        self.held.store(false, Ordering::Release);
        self.resume.notify_waiters();
        self.finished.store(true, Ordering::Release);
        self.done.notify_one();
    }
}

/// Ends the thread on every way out, a panic included, so nobody waits on it forever.
struct EndGuard<'a>(&'a Shared);

impl Drop for EndGuard<'_> {
    fn drop(&mut self) {
        self.0.end();
    }
}

fn write_loop(mut out: Box<dyn Write + Send>, shared: &Shared) {
    let _end = EndGuard(shared);
    let mut failure = Failure::default();
    loop {
        let (batch, lines) = {
            let mut q = shared.lock();
            loop {
                if let Some(b) = q.batches.pop_front() {
                    break b;
                }
                if q.closing {
                    return;
                }
                q = shared.more.wait(q).unwrap_or_else(std::sync::PoisonError::into_inner);
            }
        };
        match write_batch(&mut *out, &batch, shared, &mut failure) {
            Outcome::Written => {}
            Outcome::Closed => {
                tracing::debug!("stdout closed by its reader");
                shared.closed.store(true, Ordering::Release);
                let mut q = shared.lock();
                q.batches.clear();
                q.bytes = 0;
                drop(q);
                (shared.on_close)();
                return;
            }
            Outcome::GaveUp => {
                let mut q = shared.lock();
                let rest: u64 = q.batches.iter().map(|(_, n)| n).sum();
                q.batches.clear();
                drop(q);
                shared.lost.fetch_add(lines + rest, Ordering::AcqRel);
                return;
            }
        }
        shared.written(batch.len());
    }
}

enum Outcome {
    Written,
    Closed,
    /// Still failing at exit: what is left is lost.
    GaveUp,
}

/// How the current run of write errors is going, for rate-limited reports.
#[derive(Default)]
struct Failure {
    count: u64,
    last_report: Option<Instant>,
    /// Retries since the queue was closed.
    exit_retries: u32,
}

fn write_batch(out: &mut dyn Write, batch: &[u8], shared: &Shared, f: &mut Failure) -> Outcome {
    let mut at = 0;
    while at < batch.len() {
        let error = match out.write(&batch[at..]) {
            Ok(0) => std::io::Error::from(ErrorKind::WriteZero),
            Ok(n) => {
                at += n;
                continue;
            }
            Err(e) => e,
        };
        match error.kind() {
            ErrorKind::Interrupted => continue,
            ErrorKind::BrokenPipe => return Outcome::Closed,
            // A non-blocking stdout inherited from the parent: wait for room, like a
            // blocking write would.
            ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
            _ => {}
        }
        f.count += 1;
        let now = Instant::now();
        if f.last_report.is_none_or(|t| now.duration_since(t) >= REPORT_EVERY) {
            f.last_report = Some(now);
            tracing::error!(
                failures = f.count,
                "cannot write output: {}; holding it back and retrying every second",
                crate::backend::describe(&error)
            );
        }
        if shared.lock().closing {
            f.exit_retries += 1;
            if f.exit_retries > EXIT_RETRIES {
                return Outcome::GaveUp;
            }
        }
        std::thread::sleep(RETRY_EVERY);
    }
    if f.count > 0 {
        tracing::warn!(failures = f.count, "output can be written again");
        *f = Failure::default();
    }
    let _ = out.flush();
    Outcome::Written
}
