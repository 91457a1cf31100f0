//! State shared (on the one runtime thread) between the main loop and the stream readers.

use std::collections::VecDeque;
use std::rc::Rc;

use tokio::sync::Notify;

use super::logs::Logs;
use crate::core::Input;
use crate::headless::Headless;

pub struct Hub {
    pub headless: Headless,
    /// Inputs the readers found (a worker said `ready`), for the main loop.
    pub inputs: VecDeque<Input>,
    pub wake: Rc<Notify>,
    /// One read buffer for every stream: readers run one at a time on this thread.
    pub scratch: Vec<u8>,
    pub logs: Logs,
}

impl Hub {
    pub fn new(headless: Headless, keep_logs: bool) -> Hub {
        Hub {
            headless,
            inputs: VecDeque::new(),
            wake: Rc::new(Notify::new()),
            scratch: vec![0; 64 * 1024],
            logs: Logs::new(keep_logs),
        }
    }

    pub fn push_input(&mut self, input: Input) {
        self.inputs.push_back(input);
        self.wake.notify_one();
    }
}
