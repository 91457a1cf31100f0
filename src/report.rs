//! What corral reports, in its two forms (docs/output.md): a [`Record`] of what happened,
//! turned into a JSON object or a line of text for people. Every sink speaks these words:
//! headless stdout, the log files (docs/logs.md) and the control socket's subscribers, so
//! they cannot drift apart. Nothing here writes anywhere.

use std::collections::HashMap;
use std::time::SystemTime;

use crate::config::LogFormat;
use crate::core::{Event, EventKind, Scope, ShutdownTrigger, WorkerKey};
use crate::protocol::ProtocolError;

pub(crate) mod format;

pub use format::{event_text, exit_why, human_duration, sanitize, worker_line};

/// One record as its JSON object (docs/output.md), newline-terminated, stamped `at`: what the control
/// socket's subscribers get, in the very words of headless JSON.
/// RFC 3339, UTC, milliseconds: the `ts` of every JSON object.
pub fn format_ts(at: SystemTime) -> String {
    format::ts_text(at)
}

pub fn json_line(out: &mut Vec<u8>, at: SystemTime, names: &[String], record: &Record<'_>) {
    format::json(out, &format::ts_text(at), names, record);
}

/// A group as announced in `supervisor_started`.
#[derive(Clone, Debug)]
pub struct GroupInfo {
    pub name: String,
    pub workers: u32,
    pub command: String,
    /// Where its sockets really listen (port 0 resolved).
    pub listen: Vec<String>,
}

pub use crate::core::Stream;

/// One thing to report.
pub enum Record<'a> {
    Started {
        pid: u32,
        /// This corral's name (`-I`, or the default chosen), for `ctl` and `attach`.
        instance: &'a str,
        groups: &'a [GroupInfo],
    },
    /// A supervisor event; `messages` (for `exited`) is how many messages the slot sent.
    Event(&'a Event, Option<u64>),
    Output {
        key: WorkerKey,
        pid: u32,
        stream: Stream,
        line: &'a [u8],
    },
    /// `data` is the worker's line: valid JSON, exactly as sent. `kind` says what it is,
    /// for text mode's choice of what to show.
    Message {
        key: WorkerKey,
        pid: u32,
        data: &'a [u8],
        kind: MessageKind<'a>,
    },
    ProtocolError {
        key: WorkerKey,
        pid: u32,
        error: ProtocolError,
        count: u64,
    },
    ShutdownComplete {
        exit_code: u8,
    },
}

/// What a reported message is, as far as text mode cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageKind<'a> {
    Status(&'a str),
    Metric,
    /// A log line or a custom event.
    Other,
}

/// Turns records into lines of one format, for headless stdout and for `corral.log`
/// alike (docs/logs.md: the same text), so the two cannot drift apart.
pub struct Lines {
    format: LogFormat,
    names: Vec<String>,
    id_width: usize,
    /// The last formatted timestamp, its millisecond and the time it was made from.
    ts: String,
    ts_ms: u128,
    ts_at: SystemTime,
    /// Each group name's width in characters, for the id column.
    name_widths: Vec<usize>,
    /// Text mode: each worker's last status shown, so an unchanged one is not repeated.
    statuses: HashMap<WorkerKey, String>,
    /// Text mode: show `metric` messages (`-v`); JSON always has them.
    show_metrics: bool,
    /// `--strip-ansi`: workers' lines without their escape sequences.
    strip_ansi: bool,
}

impl Lines {
    pub fn new(format: LogFormat, names: Vec<String>) -> Lines {
        let id_width = names.iter().map(|n| n.len() + 3).max().unwrap_or(6).max(6);
        let name_widths = names.iter().map(|n| n.chars().count()).collect();
        Lines {
            name_widths,
            format,
            names,
            id_width,
            ts: String::new(),
            ts_ms: u128::MAX,
            ts_at: SystemTime::UNIX_EPOCH,
            statuses: HashMap::new(),
            show_metrics: false,
            strip_ansi: false,
        }
    }

    /// `--strip-ansi`: output lines lose their escape sequences, colours included (text,
    /// JSON and the log files alike).
    pub fn strip_ansi(&mut self, strip: bool) {
        self.strip_ansi = strip;
    }

    /// A worker's line as this output shows it: without escape sequences under
    /// `--strip-ansi`, else as received.
    pub fn worker_bytes<'a>(&self, line: &'a [u8]) -> std::borrow::Cow<'a, [u8]> {
        if self.strip_ansi && crate::ansi::has_escape(line) {
            let stripped = crate::ansi::strip_bytes(line).into_owned();
            std::borrow::Cow::Owned(stripped.into_bytes())
        } else {
            std::borrow::Cow::Borrowed(line)
        }
    }

    /// Text mode shows `metric` messages only when asked (`-v`): a worker reporting a
    /// number every second would bury the output people read.
    pub fn show_metrics(&mut self, show: bool) {
        self.show_metrics = show;
    }

    /// The group names, indexed as in `WorkerKey::group`.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// `now`, as RFC 3339 UTC text with milliseconds.
    pub fn ts(&mut self, now: SystemTime) -> &str {
        // A flood of lines shares a handful of milliseconds: format each one once.
        // Lines of one read share its time: the same instant needs no arithmetic.
        if now == self.ts_at && self.ts_ms != u128::MAX {
            return &self.ts;
        }
        self.ts_at = now;
        let ms = now.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis());
        if ms != self.ts_ms {
            self.ts_ms = ms;
            self.ts = format::ts_text(now);
        }
        &self.ts
    }

    /// Appends `record`'s line, stamped `at`, to `out`; `false` when this format leaves
    /// it out.
    pub fn write(&mut self, out: &mut Vec<u8>, at: SystemTime, record: &Record<'_>) -> bool {
        if let Record::Output { key, pid, stream, line } = *record
            && let std::borrow::Cow::Owned(line) = self.worker_bytes(line)
        {
            let record = Record::Output { key, pid, stream, line: &line };
            return self.write_as_is(out, at, &record);
        }
        self.write_as_is(out, at, record)
    }

    fn write_as_is(&mut self, out: &mut Vec<u8>, at: SystemTime, record: &Record<'_>) -> bool {
        match self.format {
            LogFormat::Json => {
                self.ts(at);
                format::json(out, &self.ts, &self.names, record);
            }
            LogFormat::Text => {
                if self.skipped_in_text(record) {
                    return false;
                }
                self.ts(at);
                format::text(out, &self.ts, &self.names, &self.name_widths, self.id_width, record);
            }
        }
        true
    }

    /// Text mode leaves out what a person does not need to read again: a status equal
    /// to the worker's last one, and metrics unless asked for.
    fn skipped_in_text(&mut self, record: &Record<'_>) -> bool {
        let Record::Message { key, kind, .. } = record else { return false };
        match kind {
            MessageKind::Metric => !self.show_metrics,
            MessageKind::Status(text) => {
                if self.statuses.get(key).is_some_and(|last| last == text) {
                    return true;
                }
                self.statuses.insert(*key, (*text).to_string());
                false
            }
            MessageKind::Other => false,
        }
    }
}

pub(crate) fn scope_id(names: &[String], scope: Scope) -> String {
    let name = |g: u16| names.get(usize::from(g)).map_or("?", String::as_str);
    match scope {
        Scope::Supervisor => "corral".to_string(),
        Scope::Group(g) => name(g).to_string(),
        Scope::Worker(key) => key.id(names).to_string(),
    }
}

pub(crate) fn event_name(kind: &EventKind) -> &'static str {
    match kind {
        EventKind::Spawned { .. } => "spawned",
        EventKind::SpawnFailed { .. } => "spawn_failed",
        EventKind::Ready => "ready",
        EventKind::Unready => "unready",
        EventKind::ProbeFailed { .. } => "probe_failed",
        EventKind::Exited { .. } => "exited",
        EventKind::RestartScheduled { .. } => "restart_scheduled",
        EventKind::GaveUp { .. } => "gave_up",
        EventKind::Scaled { .. } => "scaled",
        EventKind::ReloadStarted { .. } => "reload_started",
        EventKind::ReloadFinished { .. } => "reload_finished",
        EventKind::ShutdownStarted { .. } => "shutdown_started",
        EventKind::Waiting { .. } => "waiting",
        EventKind::ScheduleSkipped { .. } => "schedule_skipped",
    }
}

pub(crate) fn trigger_text(trigger: ShutdownTrigger) -> String {
    match trigger.reported() {
        ("signal", name) => name,
        (_, key) => format!("key {key}"),
    }
}
