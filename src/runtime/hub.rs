//! The report fan-out: every record (supervisor events, output lines, worker messages)
//! goes to each sink that is on — headless stdout, the log files, the control socket's
//! tap — and into the in-memory logs the dashboard, `ctl` and `/metrics` read; each record
//! also marks the viewers' frame owed and wakes the main loop.
//!
//! Shared (on the one runtime thread) by the main loop and the stream readers through
//! [`Reports`], a handle whose every method borrows the state for that call only: never
//! across an `.await`, never handed out, so two borrows cannot meet. The readers work on
//! [`Hub`] itself, lent to them by [`Reports::pump`] and its kin.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::Notify;

use super::inputs::Inputs;
use super::logs::Logs;
use super::streams::{Pumped, Reader};
use crate::control::server::SharedClients;
use crate::core::{Input, WorkerKey};
use crate::headless::Headless;
use crate::report::Record;
use crate::sinks::logfiles::LogFiles;

/// An observer of every record.
trait Sink {
    fn record(&mut self, at: SystemTime, record: &Record<'_>);
}

/// A sink that loses nothing: when it falls behind, the workers' pipes wait; at the end,
/// corral waits for it.
trait Lossless: Sink {
    fn flush(&mut self);
    fn held(&self) -> bool;
    fn settled(&self) -> bool;
    fn failing(&self) -> bool;
    fn close(&mut self);
}

macro_rules! lossless {
    ($sink:ty) => {
        impl Sink for $sink {
            fn record(&mut self, at: SystemTime, record: &Record<'_>) {
                <$sink>::record(self, at, record);
            }
        }
        impl Lossless for $sink {
            fn flush(&mut self) {
                <$sink>::flush(self);
            }
            fn held(&self) -> bool {
                <$sink>::held(self)
            }
            fn settled(&self) -> bool {
                <$sink>::settled(self)
            }
            fn failing(&self) -> bool {
                <$sink>::failing(self)
            }
            fn close(&mut self) {
                <$sink>::close(self);
            }
        }
    };
}
lossless!(Headless);
lossless!(LogFiles);

/// The fan-out's state; the stream readers get it lent (`&mut Hub`) for one read.
pub struct Hub {
    /// Headless output; `None` while the dashboard owns the terminal.
    headless: Option<Headless>,
    /// `--log-dir`'s files, in either mode.
    files: Option<LogFiles>,
    /// Fired by either lossless writer when it drains: held readers wait on this one.
    resume: Arc<Notify>,
    /// Something the dashboard shows changed since it was last published.
    dirty: bool,
    /// The main loop's queue, for what the readers find (a worker said `ready`).
    inputs: Rc<Inputs>,
    /// One read buffer for every stream: readers run one at a time on this thread.
    scratch: Vec<u8>,
    logs: Logs,
    /// The control socket's clients, for the events and output they follow.
    control: Option<ControlTap>,
}

/// What the hub tells the control socket: every event (kept for newcomers) and the output
/// lines someone follows.
pub(super) struct ControlTap {
    clients: SharedClients,
    names: Vec<String>,
    scratch: Vec<u8>,
}

impl ControlTap {
    pub fn new(clients: SharedClients, names: Vec<String>) -> ControlTap {
        ControlTap { clients, names, scratch: Vec::new() }
    }
}

impl Sink for ControlTap {
    fn record(&mut self, at: SystemTime, record: &Record<'_>) {
        if let Record::Output { key, .. } = record {
            // Encoding every line of a flood for nobody would be waste.
            if !self.clients.wants_output(*key) {
                return;
            }
        }
        self.scratch.clear();
        crate::report::json_line(&mut self.scratch, at, &self.names, record);
        let object = self.scratch.strip_suffix(b"\n").unwrap_or(&self.scratch);
        match record {
            Record::Output { key, .. } => self.clients.output(*key, object),
            _ => self.clients.event(object),
        }
    }
}

impl Hub {
    /// `resume` must be the `Notify` both writers were started with.
    pub(super) fn new(
        headless: Option<Headless>,
        files: Option<LogFiles>,
        resume: Arc<Notify>,
        inputs: Rc<Inputs>,
    ) -> Hub {
        let keep_logs = headless.is_none();
        Hub {
            headless,
            files,
            resume,
            dirty: true,
            inputs,
            scratch: vec![0; 64 * 1024],
            logs: Logs::new(keep_logs),
            control: None,
        }
    }

    /// Every sink that is on, in the order records reach them.
    fn sinks_mut(&mut self) -> impl Iterator<Item = &mut dyn Sink> {
        let tap = self.control.as_mut().map(|c| c as &mut dyn Sink);
        let headless = self.headless.as_mut().map(|h| h as &mut dyn Sink);
        tap.into_iter().chain(headless).chain(self.files.as_mut().map(|f| f as &mut dyn Sink))
    }

    fn lossless_mut(&mut self) -> impl Iterator<Item = &mut dyn Lossless> {
        let headless = self.headless.as_mut().map(|h| h as &mut dyn Lossless);
        headless.into_iter().chain(self.files.as_mut().map(|f| f as &mut dyn Lossless))
    }

    fn lossless(&self) -> impl Iterator<Item = &dyn Lossless> {
        let headless = self.headless.as_ref().map(|h| h as &dyn Lossless);
        headless.into_iter().chain(self.files.as_ref().map(|f| f as &dyn Lossless))
    }

    /// Whether nothing but the in-memory tail wants `key`'s output lines: no headless
    /// output, no log files, no control client following them. Then a flood's lines that
    /// the tail would drop at once need not be looked at.
    pub fn tail_only(&self, key: WorkerKey) -> bool {
        self.headless.is_none()
            && self.files.is_none()
            && self.control.as_ref().is_none_or(|c| !c.clients.wants_output(key))
    }

    /// Hands `record`, which happened `at`, to every sink.
    pub fn report(&mut self, at: SystemTime, record: &Record<'_>) {
        if !self.dirty {
            // The main loop publishes frames only when one is owed; a line read by a
            // stream's task must tell it so (once per frame, not once per line).
            self.dirty = true;
            self.inputs.wake();
        }
        for sink in self.sinks_mut() {
            sink.record(at, record);
        }
    }

    pub fn flush(&mut self) {
        for sink in self.lossless_mut() {
            sink.flush();
        }
    }

    /// Whether output is held back: a lossless sink (stdout, the log files) is behind,
    /// so workers' pipes wait.
    pub fn held(&self) -> bool {
        self.lossless().any(Lossless::held)
    }

    /// For the core, from a reader.
    pub fn push_input(&self, input: Input) {
        self.inputs.post(input);
    }

    pub fn logs_mut(&mut self) -> &mut Logs {
        &mut self.logs
    }

    /// The shared read buffer, until [`Hub::put_scratch`] gives it back.
    pub fn take_scratch(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.scratch)
    }

    pub fn put_scratch(&mut self, scratch: Vec<u8>) {
        self.scratch = scratch;
    }
}

/// The main loop's and the readers' handle on the fan-out (see the module's note).
#[derive(Clone)]
pub(super) struct Reports(Rc<RefCell<Hub>>);

impl Reports {
    pub fn new(hub: Hub) -> Reports {
        Reports(Rc::new(RefCell::new(hub)))
    }

    pub fn report(&self, at: SystemTime, record: &Record<'_>) {
        self.0.borrow_mut().report(at, record);
    }

    pub fn flush(&self) {
        self.0.borrow_mut().flush();
    }

    /// Reads what `reader` has, up to `budget` reads (see [`Reader::pump`]).
    pub fn pump(&self, reader: &Reader, budget: usize) -> Pumped {
        reader.pump(&mut self.0.borrow_mut(), budget)
    }

    /// A reaped worker's last words (see [`Reader::drain_now`]).
    pub fn drain(&self, reader: &Reader) {
        reader.drain_now(&mut self.0.borrow_mut());
    }

    /// The generation is over (see [`Reader::close`]).
    pub fn close(&self, reader: &Reader) {
        reader.close(&mut self.0.borrow_mut());
    }

    pub fn held(&self) -> bool {
        self.0.borrow().held()
    }

    /// Fires when held output may flow again. Also the `Notify` a lossless writer
    /// started later (the dashboard's fallback to headless output) must share.
    pub fn resumed(&self) -> Arc<Notify> {
        Arc::clone(&self.0.borrow().resume)
    }

    /// Wakes the main loop (a reader found output held back).
    pub fn wake(&self) {
        self.0.borrow().inputs.wake();
    }

    pub fn stdout_closed(&self) -> bool {
        self.0.borrow().headless.as_ref().is_some_and(Headless::closed)
    }

    /// Whether records go to stdout (no local dashboard owns the terminal).
    pub fn headless(&self) -> bool {
        self.0.borrow().headless.is_some()
    }

    /// The dashboard could not start: stdout gets the records after all.
    pub fn start_headless(&self, headless: Headless) {
        self.0.borrow_mut().headless = Some(headless);
    }

    /// The control socket follows every record from now on.
    pub fn tap(&self, tap: ControlTap) {
        self.0.borrow_mut().control = Some(tap);
    }

    /// Keeps what a dashboard shows (`ctl logs`, `status` and `attach` read it).
    pub fn keep_logs(&self) {
        self.0.borrow_mut().logs = Logs::new(true);
    }

    /// Keeps the workers' metrics (`--metrics`), even headless.
    pub fn record_metrics(&self) {
        self.0.borrow_mut().logs.record_metrics();
    }

    /// Whether a frame is owed since the last [`Reports::take_dirty`].
    pub fn dirty(&self) -> bool {
        self.0.borrow().dirty
    }

    pub fn take_dirty(&self) -> bool {
        std::mem::take(&mut self.0.borrow_mut().dirty)
    }

    /// How many messages `key`'s workers sent so far.
    pub fn messages(&self, key: WorkerKey) -> u64 {
        self.0.borrow().logs.messages(key)
    }

    /// Counts a protocol error of `key`'s; returns the count so far.
    pub fn protocol_error(&self, key: WorkerKey) -> u64 {
        let mut hub = self.0.borrow_mut();
        hub.logs.protocol_error(key);
        hub.logs.protocol_errors(key)
    }

    /// Runs `read` on the logs. WHY a closure: the logs are read in place (a view, a
    /// status), and the borrow ends with it; `read` is given the logs, not this handle.
    pub fn with_logs<R>(&self, read: impl FnOnce(&Logs) -> R) -> R {
        read(&self.0.borrow().logs)
    }

    /// SIGUSR1: reopens the log files; false when there are none.
    pub fn reopen_files(&self) -> bool {
        let hub = self.0.borrow();
        let Some(files) = hub.files.as_ref() else { return false };
        files.reopen();
        true
    }

    /// Whether every lossless sink has written, or failed to write, what it was given.
    pub fn settled(&self) -> bool {
        self.0.borrow().lossless().all(Lossless::settled)
    }

    /// Whether a lossless sink fails to write (it will lose lines).
    pub fn failing(&self) -> bool {
        self.0.borrow().lossless().any(Lossless::failing)
    }

    /// The last record, then the lossless sinks close (they write what they hold).
    pub fn close_with(&self, record: &Record<'_>) {
        let mut hub = self.0.borrow_mut();
        hub.report(SystemTime::now(), record);
        for sink in hub.lossless_mut() {
            sink.close();
        }
    }

    /// Fired by stdout's and the log files' writers as they finish.
    pub fn done(&self) -> (Option<Arc<Notify>>, Option<Arc<Notify>>) {
        let hub = self.0.borrow();
        (hub.headless.as_ref().map(Headless::done), hub.files.as_ref().map(LogFiles::done))
    }

    /// Whether stdout's writer has written everything.
    pub fn output_finished(&self) -> bool {
        self.0.borrow().headless.as_ref().is_none_or(Headless::finished)
    }

    /// Whether the log files' writer has written everything.
    pub fn files_finished(&self) -> bool {
        self.0.borrow().files.as_ref().is_none_or(LogFiles::finished)
    }

    /// A person asked again to stop: what is still unwritten is given up.
    pub fn abandon(&self) {
        let mut hub = self.0.borrow_mut();
        hub.headless.as_mut().map(Headless::abandon);
        hub.files.as_mut().map(LogFiles::abandon);
    }

    /// Lines lost on stdout and on the log files.
    pub fn lost(&self) -> (u64, u64) {
        let hub = self.0.borrow();
        (
            hub.headless.as_ref().map_or(0, Headless::lost),
            hub.files.as_ref().map_or(0, LogFiles::lost),
        )
    }
}
