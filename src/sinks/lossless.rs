//! The lossless writer behind headless stdout and the log files: formatted bytes queue
//! here, each batch tagged with where it goes, and a thread of its own hands them to a
//! [`Sink`]. It never drops a line. When the sink (a slow reader of stdout, a disk) falls
//! behind, the queue passes its high mark and `held()` turns true: the stream readers
//! then stop reading the pipes of the workers, whose own writes block, as if they wrote
//! to that slow reader themselves. Supervision never waits on this queue.
//!
//! Write errors: one the sink calls final (stdout's EPIPE: nobody reads any more) closes
//! the writer and the runtime shuts down cleanly. Any other error (ENOSPC, EIO, a log file
//! that cannot be opened) holds output back and is retried every second, reported on
//! stderr once and then at most once a minute.

use std::collections::VecDeque;
use std::io::{self, ErrorKind, Write};
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

/// Where the writer thread puts batches: one destination (stdout) or many (log files).
pub trait Sink: Send + 'static {
    /// Which of the sink's destinations a batch is for.
    type Dest: Send + 'static;

    /// Called before the first write of each batch: a log file opens or rotates here, so a
    /// batch (whole lines) never straddles two files. An error is retried like a write's.
    fn begin(&mut self, _dest: &Self::Dest) -> io::Result<()> {
        Ok(())
    }

    /// Writes some of `bytes` to `dest`, as `io::Write::write` does.
    fn write(&mut self, dest: &Self::Dest, bytes: &[u8]) -> io::Result<usize>;

    /// After a whole batch was written.
    fn flush(&mut self, dest: &Self::Dest) -> io::Result<()>;

    /// Reopens what is open (SIGUSR1, for an outside logrotate). Reports its own errors:
    /// what cannot be opened now is tried again at the next batch.
    fn reopen(&mut self) {}

    /// What a report calls `dest`: `output`, `log file /var/log/app/web.2.log`.
    fn name(&self, dest: &Self::Dest) -> String;

    /// Whether `error` means nobody will ever read again (stdout's EPIPE): the writer
    /// closes instead of retrying.
    fn gone(&self, _error: &io::Error) -> bool {
        false
    }
}

/// A single byte stream (corral's stdout): one destination, and EPIPE closes it.
pub struct StreamSink<W>(pub W);

impl<W: Write + Send + 'static> Sink for StreamSink<W> {
    type Dest = ();

    fn write(&mut self, (): &(), bytes: &[u8]) -> io::Result<usize> {
        self.0.write(bytes)
    }

    fn flush(&mut self, (): &()) -> io::Result<()> {
        self.0.flush()
    }

    fn name(&self, (): &()) -> String {
        "output".to_string()
    }

    fn gone(&self, error: &io::Error) -> bool {
        error.kind() == ErrorKind::BrokenPipe
    }
}

struct Queue<D> {
    batches: VecDeque<(D, Vec<u8>, u64)>,
    /// Bytes queued, including the batch being written.
    bytes: usize,
    /// No more batches will come: write what is queued, then end.
    closing: bool,
    /// SIGUSR1 asked for the sink to be reopened before its next batch.
    reopen: bool,
}

struct Shared<D> {
    queue: Mutex<Queue<D>>,
    more: Condvar,
    held: AtomicBool,
    closed: AtomicBool,
    /// Lines given up at exit because they could not be written.
    lost: AtomicU64,
    /// Writes are failing now (being retried): lines may yet be lost at exit.
    failing: AtomicBool,
    resume: Arc<Notify>,
    done: Arc<Notify>,
    finished: AtomicBool,
    on_close: Box<dyn Fn() + Send + Sync>,
}

/// The queue and its writer thread.
pub struct Writer<D> {
    shared: Arc<Shared<D>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl<D: Send + 'static> Writer<D> {
    /// Starts the writer thread `name`; `on_close` runs on it once the sink is gone
    /// ([`Sink::gone`]). `resume` is notified (all waiters) whenever the queue drains
    /// below its low mark: several writers may share one, so held readers wait on one.
    pub fn start<S: Sink<Dest = D>>(
        sink: S,
        name: &str,
        on_close: Box<dyn Fn() + Send + Sync>,
        resume: Arc<Notify>,
    ) -> io::Result<Writer<D>> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                batches: VecDeque::new(),
                bytes: 0,
                closing: false,
                reopen: false,
            }),
            more: Condvar::new(),
            held: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            lost: AtomicU64::new(0),
            failing: AtomicBool::new(false),
            resume,
            done: Arc::new(Notify::new()),
            finished: AtomicBool::new(false),
            on_close,
        });
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || write_loop(sink, &thread_shared))?;
        Ok(Writer { shared, thread: Some(thread) })
    }

    /// Queues a batch of `lines` lines for `dest`. Never blocks (beyond a short lock),
    /// never drops: callers keep the queue bounded by honouring [`Writer::held`].
    pub fn push(&self, dest: D, batch: Vec<u8>, lines: u64) {
        if self.closed() {
            return; // nobody reads any more: nothing to keep
        }
        let mut q = self.shared.lock();
        q.bytes += batch.len();
        if q.bytes > HIGH_MARK {
            self.shared.held.store(true, Ordering::Release);
        }
        q.batches.push_back((dest, batch, lines));
        drop(q);
        self.shared.more.notify_one();
    }

    /// Asks the thread to reopen the sink before its next batch (at once when idle).
    pub fn reopen(&self) {
        self.shared.lock().reopen = true;
        self.shared.more.notify_one();
    }

    /// Whether output is being held back: stop reading workers' pipes until the resume
    /// `Notify` given to [`Writer::start`] fires.
    pub fn held(&self) -> bool {
        self.shared.held.load(Ordering::Acquire)
    }

    /// Whether the sink has gone away (stdout's EPIPE).
    pub fn closed(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire)
    }

    /// Lines that could not be written at exit.
    pub fn lost(&self) -> u64 {
        self.shared.lost.load(Ordering::Acquire)
    }

    /// Whether the fate of everything pushed so far is known: written, or writing is
    /// failing, or the reader has gone.
    pub fn settled(&self) -> bool {
        self.closed() || self.failing() || self.shared.lock().bytes == 0
    }

    /// Whether writes are failing now, or lines were already lost.
    pub fn failing(&self) -> bool {
        self.shared.failing.load(Ordering::Acquire) || self.lost() > 0
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
        let lines: u64 = q.batches.iter().map(|(_, _, n)| n).sum();
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

    /// Blocks until the thread has written everything or given up.
    #[cfg(test)]
    pub fn join(&mut self) {
        self.close();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl<D> Shared<D> {
    fn lock(&self) -> MutexGuard<'_, Queue<D>> {
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

    fn take_reopen(&self) -> bool {
        std::mem::take(&mut self.lock().reopen)
    }

    fn end(&self) {
        self.held.store(false, Ordering::Release);
        self.resume.notify_waiters();
        self.finished.store(true, Ordering::Release);
        self.done.notify_one();
    }
}

/// Ends the thread on every way out, a panic included, so nobody waits on it forever.
struct EndGuard<'a, D>(&'a Shared<D>);

impl<D> Drop for EndGuard<'_, D> {
    fn drop(&mut self) {
        self.0.end();
    }
}

fn write_loop<S: Sink>(mut sink: S, shared: &Shared<S::Dest>) {
    let _end = EndGuard(shared);
    let mut failure = Failure::default();
    loop {
        let next = {
            let mut q = shared.lock();
            loop {
                if std::mem::take(&mut q.reopen) {
                    break None;
                }
                if let Some(b) = q.batches.pop_front() {
                    break Some(b);
                }
                if q.closing {
                    return;
                }
                q = shared.more.wait(q).unwrap_or_else(std::sync::PoisonError::into_inner);
            }
        };
        let Some((dest, batch, lines)) = next else {
            sink.reopen();
            continue;
        };
        match write_batch(&mut sink, &dest, &batch, shared, &mut failure) {
            Outcome::Written => {}
            Outcome::Closed => {
                tracing::debug!("{} closed by its reader", sink.name(&dest));
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
                let rest: u64 = q.batches.iter().map(|(_, _, n)| n).sum();
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

fn write_batch<S: Sink>(
    sink: &mut S,
    dest: &S::Dest,
    batch: &[u8],
    shared: &Shared<S::Dest>,
    f: &mut Failure,
) -> Outcome {
    let mut begun = false;
    let mut at = 0;
    while at < batch.len() {
        let result =
            if begun { sink.write(dest, &batch[at..]) } else { sink.begin(dest).map(|()| 0) };
        let error = match result {
            Ok(0) if begun => io::Error::from(ErrorKind::WriteZero),
            Ok(n) => {
                begun = true;
                at += n;
                continue;
            }
            Err(e) => e,
        };
        if sink.gone(&error) {
            return Outcome::Closed;
        }
        match error.kind() {
            ErrorKind::Interrupted => continue,
            // A non-blocking stdout inherited from the parent: wait for room, like a
            // blocking write would.
            ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
            _ => {}
        }
        f.count += 1;
        shared.failing.store(true, Ordering::Release);
        let now = Instant::now();
        if f.last_report.is_none_or(|t| now.duration_since(t) >= REPORT_EVERY) {
            f.last_report = Some(now);
            tracing::error!(
                failures = f.count,
                "cannot write {}: {}; holding it back and retrying every second",
                sink.name(dest),
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
        // WHY here too: the way out of some errors is an outside rotation (a file moved
        // away, a planted link removed) followed by SIGUSR1.
        if shared.take_reopen() {
            sink.reopen();
            begun = begun && at > 0;
        }
    }
    if f.count > 0 {
        tracing::warn!(failures = f.count, "{} can be written again", sink.name(dest));
        *f = Failure::default();
        shared.failing.store(false, Ordering::Release);
    }
    let _ = sink.flush(dest);
    Outcome::Written
}

#[cfg(test)]
mod tests;
