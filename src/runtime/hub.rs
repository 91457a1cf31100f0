//! State shared (on the one runtime thread) between the main loop and the stream readers.

use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;

use tokio::sync::Notify;

use super::logs::Logs;

use crate::control::server::Clients;
use crate::core::Input;
use crate::headless::Headless;
use crate::report::Record;
use crate::sinks::logfiles::LogFiles;

pub struct Hub {
    /// Headless output; `None` while the dashboard owns the terminal.
    pub headless: Option<Headless>,
    /// `--log-dir`'s files, in either mode.
    pub files: Option<LogFiles>,
    /// Fired by either lossless writer when it drains: held readers wait on this one.
    resume: Arc<Notify>,
    /// Something the dashboard shows changed since it was last published.
    pub dirty: bool,
    /// Inputs the readers found (a worker said `ready`), for the main loop.
    pub inputs: VecDeque<Input>,
    pub wake: Rc<Notify>,
    /// One read buffer for every stream: readers run one at a time on this thread.
    pub scratch: Vec<u8>,
    pub logs: Logs,
    /// The control socket's clients, for the events and output they follow.
    pub control: Option<ControlTap>,
}

/// What the hub tells the control socket: every event (kept for newcomers) and the output
/// lines someone follows.
pub struct ControlTap {
    pub clients: Rc<std::cell::RefCell<Clients>>,
    pub names: Vec<String>,
    scratch: Vec<u8>,
}

impl ControlTap {
    pub fn new(clients: Rc<std::cell::RefCell<Clients>>, names: Vec<String>) -> ControlTap {
        ControlTap { clients, names, scratch: Vec::new() }
    }

    fn record(&mut self, at: std::time::SystemTime, record: &Record<'_>) {
        let mut clients = self.clients.borrow_mut();
        if let Record::Output { key, .. } = record {
            // Encoding every line of a flood for nobody would be waste.
            if !clients.wants_output(*key) {
                return;
            }
        }
        self.scratch.clear();
        crate::report::json_line(&mut self.scratch, at, &self.names, record);
        let object = self.scratch.strip_suffix(b"\n").unwrap_or(&self.scratch);
        match record {
            Record::Output { key, .. } => clients.output(*key, object),
            _ => clients.event(object),
        }
    }
}

impl Hub {
    /// `resume` must be the `Notify` both writers were started with.
    pub fn new(headless: Option<Headless>, files: Option<LogFiles>, resume: Arc<Notify>) -> Hub {
        let keep_logs = headless.is_none();
        Hub {
            headless,
            files,
            resume,
            dirty: true,
            inputs: VecDeque::new(),
            wake: Rc::new(Notify::new()),
            scratch: vec![0; 64 * 1024],
            logs: Logs::new(keep_logs),
            control: None,
        }
    }

    /// Whether nothing but the in-memory tail wants `key`'s output lines: no headless
    /// output, no log files, no control client following them. Then a flood's lines that
    /// the tail would drop at once need not be looked at.
    pub fn tail_only(&self, key: crate::core::WorkerKey) -> bool {
        self.headless.is_none()
            && self.files.is_none()
            && self.control.as_ref().is_none_or(|c| !c.clients.borrow().wants_output(key))
    }

    /// Hands `record`, which happened `at`, to every sink.
    pub fn report(&mut self, at: std::time::SystemTime, record: &Record<'_>) {
        if !self.dirty {
            // The main loop publishes frames only when one is owed; a line read by a
            // stream's task must tell it so (once per frame, not once per line).
            self.dirty = true;
            self.wake.notify_one();
        }
        if let Some(tap) = self.control.as_mut() {
            tap.record(at, record);
        }
        if let Some(h) = self.headless.as_mut() {
            h.record(at, record);
        }
        if let Some(f) = self.files.as_mut() {
            f.record(at, record);
        }
    }

    pub fn flush(&mut self) {
        if let Some(h) = self.headless.as_mut() {
            h.flush();
        }
        if let Some(f) = self.files.as_mut() {
            f.flush();
        }
    }

    pub fn stdout_closed(&self) -> bool {
        self.headless.as_ref().is_some_and(Headless::closed)
    }

    /// Whether output is held back: a lossless sink (stdout, the log files) is behind,
    /// so workers' pipes wait.
    pub fn held(&self) -> bool {
        self.headless.as_ref().is_some_and(Headless::held)
            || self.files.as_ref().is_some_and(LogFiles::held)
    }

    /// Fires when held output may flow again. Also the `Notify` a lossless writer
    /// started later (the dashboard's fallback to headless output) must share.
    pub fn resumed(&self) -> Arc<Notify> {
        Arc::clone(&self.resume)
    }

    pub fn push_input(&mut self, input: Input) {
        self.inputs.push_back(input);
        self.wake.notify_one();
    }
}
