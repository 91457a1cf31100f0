//! Wall-clock time for what corral reports. Every line that arrived in one read of a pipe
//! gets that read's time: they did arrive together, and asking the clock once per read
//! instead of once per line is a tenth of a flood's cost.

use std::cell::Cell;
use std::time::SystemTime;

thread_local! {
    static PINNED: Cell<Option<SystemTime>> = const { Cell::new(None) };
}

/// Now, or the time of the read being handled on this thread.
pub fn now() -> SystemTime {
    PINNED.with(Cell::get).unwrap_or_else(SystemTime::now)
}

/// Runs `f` with [`now`] fixed at the moment of the call.
pub fn pinned<R>(f: impl FnOnce() -> R) -> R {
    let before = PINNED.with(|p| p.replace(Some(SystemTime::now())));
    let result = f();
    PINNED.with(|p| p.set(before));
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_time_holds_inside_and_is_released_after() {
        let (a, b) = pinned(|| (now(), now()));
        assert_eq!(a, b);
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert!(now() > a);
        assert!(PINNED.with(Cell::get).is_none());
    }
}
