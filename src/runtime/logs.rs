//! What the dashboard shows of each worker: its last output lines and events, bounded by
//! count and by bytes, plus counters that run over its whole life.

use std::collections::{HashMap, VecDeque};
use std::time::SystemTime;

use serde_json::Value;

use crate::core::WorkerKey;
use crate::headless::Stream;

/// Lines and events kept per worker (SPEC §9).
pub const KEEP_ENTRIES: usize = 1000;
/// Bytes of text kept per worker and kind, whatever the count: long lines evict sooner.
pub const KEEP_BYTES: usize = 256 * 1024;

#[derive(Clone, Debug, PartialEq)]
pub struct LogLine {
    pub at: SystemTime,
    pub pid: u32,
    pub stream: Stream,
    /// As written (lossy UTF-8); sanitised when drawn.
    pub text: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct LogEvent {
    pub at: SystemTime,
    pub pid: u32,
    pub data: Value,
}

/// A bounded FIFO: at most `KEEP_ENTRIES` entries and about `KEEP_BYTES` bytes.
#[derive(Debug)]
pub struct Ring<T> {
    entries: VecDeque<(usize, T)>,
    bytes: usize,
}

impl<T> Default for Ring<T> {
    fn default() -> Self {
        Ring { entries: VecDeque::new(), bytes: 0 }
    }
}

impl<T> Ring<T> {
    pub fn push(&mut self, size: usize, item: T) {
        self.entries.push_back((size, item));
        self.bytes += size;
        while self.entries.len() > KEEP_ENTRIES
            || (self.bytes > KEEP_BYTES && self.entries.len() > 1)
        {
            if let Some((s, _)) = self.entries.pop_front() {
                self.bytes -= s;
            }
        }
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &T> + ExactSizeIterator {
        self.entries.iter().map(|(_, t)| t)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

/// One slot's history, across its generations.
#[derive(Debug, Default)]
pub struct WorkerLog {
    pub lines: Ring<LogLine>,
    pub events: Ring<LogEvent>,
    /// Every message received (ready, heartbeats and custom events included).
    pub messages: u64,
    pub protocol_errors: u64,
    /// The last `status` text.
    pub status: Option<String>,
}

/// Histories of all slots. With `keep` off (headless) only the counters run: nobody
/// would read the text.
#[derive(Debug, Default)]
pub struct Logs {
    keep: bool,
    workers: HashMap<WorkerKey, WorkerLog>,
}

impl Logs {
    pub fn new(keep: bool) -> Logs {
        Logs { keep, workers: HashMap::new() }
    }

    pub fn get(&self, key: WorkerKey) -> Option<&WorkerLog> {
        self.workers.get(&key)
    }

    fn entry(&mut self, key: WorkerKey) -> &mut WorkerLog {
        self.workers.entry(key).or_default()
    }

    pub fn line(&mut self, key: WorkerKey, pid: u32, stream: Stream, line: &[u8]) {
        if self.keep {
            let text = String::from_utf8_lossy(line).into_owned();
            let line = LogLine { at: SystemTime::now(), pid, stream, text };
            self.entry(key).lines.push(line.text.len(), line);
        }
    }

    pub fn message(&mut self, key: WorkerKey) {
        self.entry(key).messages += 1;
    }

    /// A message event: `raw` is its (valid) JSON line, `status` its text when it is one.
    pub fn event(&mut self, key: WorkerKey, pid: u32, raw: &[u8], status: Option<&str>) {
        let keep = self.keep;
        let log = self.entry(key);
        if let Some(text) = status {
            text.clone_into(log.status.get_or_insert_with(String::new));
        }
        if keep && let Ok(data) = serde_json::from_slice::<Value>(raw) {
            log.events.push(raw.len(), LogEvent { at: SystemTime::now(), pid, data });
        }
    }

    pub fn protocol_error(&mut self, key: WorkerKey) {
        self.entry(key).protocol_errors += 1;
    }

    /// Messages received from a slot so far (over all its generations).
    pub fn messages(&self, key: WorkerKey) -> u64 {
        self.workers.get(&key).map_or(0, |w| w.messages)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: WorkerKey = WorkerKey { group: 0, slot: 1 };

    #[test]
    fn keeps_the_last_thousand_lines() {
        let mut logs = Logs::new(true);
        for i in 0..2500 {
            logs.line(KEY, 1, Stream::Stdout, format!("line {i}").as_bytes());
        }
        let log = logs.get(KEY).expect("log");
        assert_eq!(log.lines.len(), KEEP_ENTRIES);
        assert_eq!(log.lines.iter().next().map(|l| l.text.as_str()), Some("line 1500"));
        assert_eq!(log.lines.iter().last().map(|l| l.text.as_str()), Some("line 2499"));
    }

    #[test]
    fn long_lines_are_bounded_by_bytes() {
        let mut logs = Logs::new(true);
        let big = vec![b'x'; 16 * 1024];
        for _ in 0..1000 {
            logs.line(KEY, 1, Stream::Stderr, &big);
        }
        let log = logs.get(KEY).expect("log");
        assert!(log.lines.bytes() <= KEEP_BYTES);
        assert_eq!(log.lines.len(), KEEP_BYTES / big.len());
    }

    #[test]
    fn headless_keeps_counters_and_status_only() {
        let mut logs = Logs::new(false);
        logs.line(KEY, 1, Stream::Stdout, b"hello");
        logs.message(KEY);
        logs.event(KEY, 1, br#"{"type":"status","text":"warming"}"#, Some("warming"));
        let log = logs.get(KEY).expect("log");
        assert!(log.lines.is_empty() && log.events.is_empty());
        assert_eq!((log.messages, log.status.as_deref()), (1, Some("warming")));
    }
}
