//! What the dashboard shows of each worker: its last output lines and events, bounded by
//! count and by bytes, the history of every number it reports (fixed size per series, a
//! capped number of series), plus counters that run over its whole life.

pub mod history;

use std::collections::{HashMap, VecDeque};
use std::time::SystemTime;

use serde_json::Value;

use self::history::{History, Kind};

use crate::core::Stream;
use crate::core::WorkerKey;

/// Lines and events kept per worker (docs/logs.md).
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

    /// Like `push`, but when the ring is full the entry it drops is handed to `make` to
    /// be refilled.
    pub fn push_reusing(&mut self, size: usize, make: impl FnOnce(Option<T>) -> T) {
        let old = if self.entries.len() >= KEEP_ENTRIES {
            self.entries.pop_front().map(|(s, t)| {
                self.bytes -= s;
                t
            })
        } else {
            None
        };
        self.push(size, make(old));
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

/// Series kept per worker (docs/dashboard.md#the-profiler-view); further names are counted and named as dropped.
pub const MAX_SERIES: usize = 64;
/// Dropped names remembered, to say which.
const DROPPED_NAMES: usize = 8;
/// The longest metric name or custom event type kept, in bytes; a longer one is dropped
/// and counted (each of the 64 could otherwise be a megabyte, kept twice).
pub const MAX_NAME: usize = 200;
/// A dropped name is remembered (to say which) cut to this many bytes.
const SHOWN_NAME: usize = 48;
/// The longest `status` text kept, in bytes; the rest is cut.
pub const MAX_STATUS: usize = 1024;

/// `text` cut to at most `max` bytes, on a character boundary.
fn cut(text: &str, max: usize) -> &str {
    &text[..text.floor_char_boundary(max)]
}

/// One reported number: a `metric` name or a custom event type.
#[derive(Debug)]
pub struct NamedSeries {
    pub name: String,
    /// A custom event type (counted), not a `metric` (a value).
    pub event: bool,
    pub history: History,
}

/// The numbers a slot reported, across its generations.
#[derive(Debug, Default)]
pub struct WorkerMetrics {
    pub series: Vec<NamedSeries>,
    index: HashMap<String, usize>,
    pub dropped: u64,
    pub dropped_names: Vec<String>,
    /// Of `dropped`, the names longer than `MAX_NAME`.
    pub too_long: u64,
}

impl WorkerMetrics {
    /// The series called `name`, made if there is room.
    fn series(&mut self, name: &str, event: bool) -> Option<&mut History> {
        if name.len() > MAX_NAME {
            self.too_long += 1;
            if self.too_long == 1 {
                tracing::warn!(
                    "a worker sent a metric name of {} bytes (at most {MAX_NAME} are kept): \
                     dropped and counted",
                    name.len()
                );
            }
            self.drop_name(&format!("{}…", cut(name, SHOWN_NAME)));
            return None;
        }
        let key = if event { format!("»{name}") } else { name.to_string() };
        if let Some(&i) = self.index.get(&key) {
            return self.series.get_mut(i).map(|s| &mut s.history);
        }
        if self.series.len() >= MAX_SERIES {
            self.drop_name(name);
            return None;
        }
        let kind = if event { Kind::Counter } else { Kind::Gauge };
        self.index.insert(key, self.series.len());
        let history = History::new(kind);
        self.series.push(NamedSeries { name: name.to_string(), event, history });
        self.series.last_mut().map(|s| &mut s.history)
    }

    fn drop_name(&mut self, name: &str) {
        self.dropped += 1;
        if self.dropped_names.len() < DROPPED_NAMES && !self.dropped_names.iter().any(|n| n == name)
        {
            self.dropped_names.push(name.to_string());
        }
    }

    /// Records a message worth charting: a `metric`'s value, or one more custom event of
    /// its type (`status` and `log` are not numbers).
    pub fn record(&mut self, second: u64, pid: u32, data: &Value) {
        let kind = data.get("type").and_then(Value::as_str);
        match kind {
            Some("status" | "log") => {}
            Some("metric") => {
                let name = data.get("name").and_then(Value::as_str);
                if let (Some(name), Some(v)) = (name, data.get("value").and_then(Value::as_f64))
                    && let Some(h) = self.series(name, false)
                {
                    h.set(second, pid, v);
                }
            }
            other => {
                if let Some(h) = self.series(other.unwrap_or("(untyped)"), true) {
                    h.count(second, pid);
                }
            }
        }
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
    /// The last `status` text, and the process that sent it: a status belongs to a run.
    status: Option<(u32, String)>,
    pub metrics: WorkerMetrics,
}

impl WorkerLog {
    /// The status `pid`'s run sent last; none from an earlier run.
    pub fn status_of(&self, pid: Option<u32>) -> Option<&str> {
        self.status.as_ref().filter(|(p, _)| Some(*p) == pid).map(|(_, text)| text.as_str())
    }
}

fn unix_second(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Histories of all slots. With `keep` off (headless) only the counters run: nobody
/// would read the text.
#[derive(Debug, Default)]
pub struct Logs {
    keep: bool,
    /// Record the `metric` values even without `keep`: `/metrics` serves them.
    metrics: bool,
    workers: crate::core::KeyMap<WorkerLog>,
}

impl Logs {
    pub fn new(keep: bool) -> Logs {
        Logs { keep, metrics: false, workers: crate::core::KeyMap::default() }
    }

    /// Keeps the numbers workers report (not their text) when headless too.
    pub fn record_metrics(&mut self) {
        self.metrics = true;
    }

    /// Every slot that ever sent something, scaled-away ones included.
    pub fn iter(&self) -> impl Iterator<Item = (WorkerKey, &WorkerLog)> {
        self.workers.iter().map(|(&key, log)| (key, log))
    }

    pub fn get(&self, key: WorkerKey) -> Option<&WorkerLog> {
        self.workers.get(&key)
    }

    fn entry(&mut self, key: WorkerKey) -> &mut WorkerLog {
        self.workers.entry(key).or_default()
    }

    /// A line `key`'s process `pid` wrote, read `at`.
    pub fn line(&mut self, at: SystemTime, key: WorkerKey, pid: u32, stream: Stream, line: &[u8]) {
        if self.keep {
            // The line the full ring drops lends its buffer: no allocation per line.
            self.entry(key).lines.push_reusing(line.len(), |old| {
                let mut text = old.map(|l| l.text).unwrap_or_default();
                text.clear();
                match std::str::from_utf8(line) {
                    Ok(valid) => text.push_str(valid),
                    Err(_) => text.push_str(&String::from_utf8_lossy(line)),
                }
                LogLine { at, pid, stream, text }
            });
        }
    }

    pub fn message(&mut self, key: WorkerKey) {
        self.entry(key).messages += 1;
    }

    /// A message event: `raw` is its (valid) JSON line, `status` its text when it is one.
    pub fn event(
        &mut self,
        at: SystemTime,
        key: WorkerKey,
        pid: u32,
        raw: &[u8],
        status: Option<&str>,
    ) {
        let (keep, metrics) = (self.keep, self.metrics);
        let log = self.entry(key);
        if let Some(text) = status {
            let (p, old) = log.status.get_or_insert_with(|| (pid, String::new()));
            *p = pid;
            cut(text, MAX_STATUS).clone_into(old);
        }
        if (keep || metrics)
            && let Ok(data) = serde_json::from_slice::<Value>(raw)
        {
            log.metrics.record(unix_second(at), pid, &data);
            if keep {
                log.events.push(raw.len(), LogEvent { at, pid, data });
            }
        }
    }

    pub fn protocol_error(&mut self, key: WorkerKey) {
        self.entry(key).protocol_errors += 1;
    }

    /// Lines of a slot's event channel dropped so far.
    pub fn protocol_errors(&self, key: WorkerKey) -> u64 {
        self.workers.get(&key).map_or(0, |w| w.protocol_errors)
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
    fn long_metric_names_and_statuses_are_bounded() {
        let mut logs = Logs::new(true);
        let name = "m".repeat(MAX_NAME + 1);
        let metric = format!(r#"{{"type":"metric","name":"{name}","value":1}}"#);
        logs.event(std::time::SystemTime::now(), KEY, 1, metric.as_bytes(), None);
        logs.event(
            std::time::SystemTime::now(),
            KEY,
            1,
            format!(r#"{{"type":"{name}"}}"#).as_bytes(),
            None,
        );
        let status = "é".repeat(MAX_STATUS);
        logs.event(std::time::SystemTime::now(), KEY, 1, br#"{"type":"status"}"#, Some(&status));
        let log = logs.get(KEY).expect("log");
        assert!(log.metrics.series.is_empty());
        assert_eq!((log.metrics.dropped, log.metrics.too_long), (2, 2));
        assert!(log.metrics.dropped_names.iter().all(|n| n.len() <= SHOWN_NAME + 3));
        let kept = log.status_of(Some(1)).expect("status");
        assert!(kept.len() <= MAX_STATUS && kept.chars().all(|c| c == 'é'), "{}", kept.len());
    }

    #[test]
    fn keeps_the_last_thousand_lines() {
        let mut logs = Logs::new(true);
        for i in 0..2500 {
            logs.line(
                std::time::SystemTime::now(),
                KEY,
                1,
                Stream::Stdout,
                format!("line {i}").as_bytes(),
            );
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
            logs.line(std::time::SystemTime::now(), KEY, 1, Stream::Stderr, &big);
        }
        let log = logs.get(KEY).expect("log");
        assert!(log.lines.bytes() <= KEEP_BYTES);
        assert_eq!(log.lines.len(), KEEP_BYTES / big.len());
    }

    #[test]
    fn headless_keeps_counters_and_status_only() {
        let mut logs = Logs::new(false);
        logs.line(std::time::SystemTime::now(), KEY, 1, Stream::Stdout, b"hello");
        logs.message(KEY);
        logs.event(
            std::time::SystemTime::now(),
            KEY,
            1,
            br#"{"type":"status","text":"warming"}"#,
            Some("warming"),
        );
        let log = logs.get(KEY).expect("log");
        assert!(log.lines.is_empty() && log.events.is_empty());
        assert_eq!((log.messages, log.status_of(Some(1))), (1, Some("warming")));
    }

    #[test]
    fn headless_with_metrics_keeps_the_numbers_but_not_the_events() {
        let mut logs = Logs::new(false);
        logs.record_metrics();
        logs.event(
            std::time::SystemTime::now(),
            KEY,
            1,
            br#"{"type":"metric","name":"requests","value":12}"#,
            None,
        );
        let log = logs.get(KEY).expect("log");
        assert!(log.events.is_empty());
        let latest = log.metrics.series.first().map(|s| (s.name.as_str(), s.history.latest));
        assert_eq!(latest, Some(("requests", 12.0)));
        assert_eq!(logs.iter().map(|(k, _)| k).collect::<Vec<_>>(), [KEY]);
    }

    #[test]
    fn a_status_belongs_to_the_run_that_sent_it() {
        let mut logs = Logs::new(true);
        logs.event(
            std::time::SystemTime::now(),
            KEY,
            7,
            br#"{"type":"status","text":"crashing in 1s"}"#,
            Some("crashing in 1s"),
        );
        let log = logs.get(KEY).expect("log");
        assert_eq!(log.status_of(Some(7)), Some("crashing in 1s"));
        assert_eq!(log.status_of(None), None, "no run, no status");
        assert_eq!(log.status_of(Some(8)), None, "the next run has not said anything yet");
    }

    #[test]
    fn metrics_and_custom_events_become_series_up_to_the_cap() {
        let mut logs = Logs::new(true);
        logs.event(
            std::time::SystemTime::now(),
            KEY,
            1,
            br#"{"type":"metric","name":"requests","value":12}"#,
            None,
        );
        logs.event(
            std::time::SystemTime::now(),
            KEY,
            1,
            br#"{"type":"cache-miss","key":"a"}"#,
            None,
        );
        logs.event(
            std::time::SystemTime::now(),
            KEY,
            1,
            br#"{"type":"cache-miss","key":"b"}"#,
            None,
        );
        logs.event(std::time::SystemTime::now(), KEY, 1, b"[1,2]", None);
        logs.event(
            std::time::SystemTime::now(),
            KEY,
            1,
            br#"{"type":"log","level":"info","msg":"hi"}"#,
            None,
        );
        for i in 0..100 {
            let line = format!(r#"{{"type":"metric","name":"m{i}","value":{i}}}"#);
            logs.event(std::time::SystemTime::now(), KEY, 1, line.as_bytes(), None);
        }
        let m = &logs.get(KEY).expect("log").metrics;
        let names: Vec<(&str, bool)> =
            m.series.iter().take(3).map(|s| (s.name.as_str(), s.event)).collect();
        assert_eq!(names, [("requests", false), ("cache-miss", true), ("(untyped)", true)]);
        assert!((m.series[1].history.latest - 2.0).abs() < f64::EPSILON);
        assert_eq!(m.series.len(), MAX_SERIES);
        assert_eq!(m.dropped, 103 - MAX_SERIES as u64);
        assert_eq!(m.dropped_names.first().map(String::as_str), Some("m61"));
    }
}
