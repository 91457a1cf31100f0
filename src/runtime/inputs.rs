//! The main loop's one queue of inputs for the core. The loop's own handlers and the
//! stream readers (a worker said `ready`, sent a heartbeat) push into the same queue, so
//! the core sees inputs in the order they arrived.
//!
//! WHY a `RefCell` behind an `Rc`: the readers are tasks on the loop's thread. Every
//! borrow lasts one method call and none is handed out, so two cannot meet.

use std::cell::RefCell;
use std::collections::VecDeque;

use tokio::sync::Notify;

use crate::core::Input;

#[derive(Default)]
pub(super) struct Inputs {
    queue: RefCell<VecDeque<Input>>,
    /// Wakes the main loop: an input arrived, or something it shows changed.
    wake: Notify,
}

impl Inputs {
    /// From the main loop itself, which looks at the queue before it waits again.
    pub fn push(&self, input: Input) {
        self.queue.borrow_mut().push_back(input);
    }

    /// From a task: the main loop may be waiting, so it is woken.
    pub fn post(&self, input: Input) {
        self.push(input);
        self.wake.notify_one();
    }

    pub fn extend(&self, inputs: impl IntoIterator<Item = Input>) {
        // Collected first: the iterator runs outside the borrow, whatever it does.
        let inputs: Vec<Input> = inputs.into_iter().collect();
        self.queue.borrow_mut().extend(inputs);
    }

    pub fn pop(&self) -> Option<Input> {
        self.queue.borrow_mut().pop_front()
    }

    /// Wakes the main loop (see [`Inputs::woken`]).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Resolves when a task woke the main loop.
    pub async fn woken(&self) {
        self.wake.notified().await;
    }
}

impl Extend<Input> for &Inputs {
    fn extend<T: IntoIterator<Item = Input>>(&mut self, inputs: T) {
        Inputs::extend(self, inputs);
    }
}

#[cfg(test)]
mod tests {
    use super::Inputs;
    use crate::core::{Input, WorkerKey};

    const WEB_1: WorkerKey = WorkerKey { group: 0, slot: 1 };

    /// The loop's inputs and a reader's are one queue, in the order they arrived; only a
    /// reader's post (or an explicit wake) wakes the loop.
    #[tokio::test(flavor = "current_thread")]
    async fn one_queue_in_arrival_order() {
        let inputs = Inputs::default();
        inputs.push(Input::Start);
        inputs.post(Input::Ready { key: WEB_1, generation: 1 });
        inputs.extend([Input::Heartbeat { key: WEB_1, generation: 1 }]);
        let woken = tokio::time::timeout(std::time::Duration::from_secs(5), inputs.woken());
        assert!(woken.await.is_ok(), "a post wakes the loop");
        assert!(matches!(inputs.pop(), Some(Input::Start)));
        assert!(matches!(inputs.pop(), Some(Input::Ready { .. })));
        assert!(matches!(inputs.pop(), Some(Input::Heartbeat { .. })));
        assert!(inputs.pop().is_none());
    }
}
