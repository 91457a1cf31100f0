//! The workers' pseudo-terminals (docs/development.md): their size is the dashboard's output
//! pane's (80x24 without a dashboard, or until it said), and a new size reaches every live one.

use std::os::fd::BorrowedFd;

use crate::backend::{self, Pty, PtySize};

pub struct Terminals {
    size: PtySize,
}

impl Terminals {
    pub fn new() -> Terminals {
        Terminals { size: PtySize::DEFAULT }
    }

    /// A new pty of the current size.
    pub fn open(&self) -> std::io::Result<Pty> {
        backend::open_pty(self.size)
    }

    /// The pane is now `size`: resizes the `masters` (the live ptys) when it changed.
    pub fn resize<'a>(&mut self, size: PtySize, masters: impl Iterator<Item = BorrowedFd<'a>>) {
        if size == self.size {
            return;
        }
        self.size = size;
        for master in masters {
            if let Err(e) = backend::resize_pty(master, size) {
                tracing::debug!("cannot resize a worker's terminal: {e}");
            }
        }
    }
}
