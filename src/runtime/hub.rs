//! State shared (on the one runtime thread) between the main loop and the stream readers.

use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;

use tokio::sync::Notify;

use super::logs::Logs;
use std::time::SystemTime;

use crate::control::server::Clients;
use crate::core::Input;
use crate::headless::{Headless, Record};

pub struct Hub {
    /// Headless output; `None` while the dashboard owns the terminal.
    pub headless: Option<Headless>,
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

    fn record(&mut self, record: &Record<'_>) {
        let mut clients = self.clients.borrow_mut();
        if let Record::Output { key, .. } = record {
            // Encoding every line of a flood for nobody would be waste.
            if !clients.wants_output(*key) {
                return;
            }
        }
        self.scratch.clear();
        crate::headless::json_line(&mut self.scratch, SystemTime::now(), &self.names, record);
        let object = self.scratch.strip_suffix(b"\n").unwrap_or(&self.scratch);
        match record {
            Record::Output { key, .. } => clients.output(*key, object),
            _ => clients.event(object),
        }
    }
}

impl Hub {
    pub fn new(headless: Option<Headless>) -> Hub {
        let keep_logs = headless.is_none();
        Hub {
            headless,
            dirty: true,
            inputs: VecDeque::new(),
            wake: Rc::new(Notify::new()),
            scratch: vec![0; 64 * 1024],
            logs: Logs::new(keep_logs),
            control: None,
        }
    }

    pub fn report(&mut self, record: &Record<'_>) {
        self.dirty = true;
        if let Some(tap) = self.control.as_mut() {
            tap.record(record);
        }
        if let Some(h) = self.headless.as_mut() {
            h.record(record);
        }
    }

    pub fn flush(&mut self) {
        if let Some(h) = self.headless.as_mut() {
            h.flush();
        }
    }

    pub fn stdout_closed(&self) -> bool {
        self.headless.as_ref().is_some_and(Headless::closed)
    }

    /// Whether output is held back: the lossless sink is behind, so workers' pipes wait.
    pub fn held(&self) -> bool {
        self.headless.as_ref().is_some_and(Headless::held)
    }

    /// Fires when held output may flow again (`None`: nothing ever holds it).
    pub fn resumed(&self) -> Option<Arc<Notify>> {
        self.headless.as_ref().map(Headless::resumed)
    }

    pub fn push_input(&mut self, input: Input) {
        self.inputs.push_back(input);
        self.wake.notify_one();
    }
}
