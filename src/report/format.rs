//! Turning records into text or JSON lines.

use std::fmt::Write as _;
use std::io::Write as _;
use std::time::{Duration, SystemTime};

use super::{Record, event_name, scope_id, trigger_text};
use bytesize::ByteSize;

use crate::core::{EventKind, ExitReason, MemoryOver, ReloadCause, Scope, Stream, WorkerKey};

/// Worker-written bytes made safe to print (lossy UTF-8, escapes made visible; see
/// [`crate::text`]).
/// One output line in text mode, `TS ID | LINE`: the hot path of a flood, so it writes
/// straight into `out` and copies a printable ASCII line as it is.
fn output_text(
    out: &mut Vec<u8>,
    ts: &str,
    names: &[String],
    name_widths: &[usize],
    width: usize,
    (key, stream): (WorkerKey, Stream),
    line: &[u8],
) {
    out.extend_from_slice(ts.as_bytes());
    out.push(b' ');
    let name = names.get(usize::from(key.group)).map_or("?", String::as_str);
    out.extend_from_slice(name.as_bytes());
    out.push(b'.');
    let mut digits = itoa::Buffer::new();
    let slot = digits.format(key.slot);
    out.extend_from_slice(slot.as_bytes());
    let name_width = name_widths.get(usize::from(key.group)).copied().unwrap_or(1);
    let shown = name_width + 1 + slot.len();
    out.resize(out.len() + width.saturating_sub(shown), b' ');
    // `!` marks stderr, as in the dashboard's output pane: an error stands out in a flood.
    out.extend_from_slice(match stream {
        Stream::Stdout => b" | ",
        Stream::Stderr => b" ! ",
    });
    worker_line(out, line);
    out.push(b'\n');
}

/// A worker's line in headless text and the log files: printable ASCII and tabs as they
/// are, colours (SGR) kept as received, everything else made visible ([`crate::ansi`]).
#[inline]
pub fn worker_line(out: &mut Vec<u8>, line: &[u8]) {
    if line.iter().all(|&b| (0x20..0x7f).contains(&b) || b == b'\t') {
        out.extend_from_slice(line); // the usual line, copied without allocating
    } else {
        crate::ansi::keep_sgr(line, out);
    }
}

pub fn sanitize(line: &[u8]) -> String {
    crate::text::escape(&String::from_utf8_lossy(line), false)
}

/// `250ms`, `1.50s`, `3m05s`, `2h04m`: milliseconds for short runs, hours however long
/// (the dashboard's fixed-width `ui::format_uptime` differs below a minute and above a day).
pub fn human_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.2}s", d.as_secs_f64())
    } else {
        crate::ui::format_clock(d.as_secs())
    }
}

/// The RFC 3339 UTC text of a time, with milliseconds.
pub fn ts_text(ts: SystemTime) -> String {
    humantime::format_rfc3339_millis(ts).to_string()
}

pub(crate) fn text(
    out: &mut Vec<u8>,
    ts: &str,
    names: &[String],
    name_widths: &[usize],
    width: usize,
    rec: &Record<'_>,
) {
    let (id, body) = match rec {
        Record::Started { pid, instance, groups } => {
            let version = env!("CARGO_PKG_VERSION");
            let instance = crate::text::escape(instance, false);
            let mut body = format!("version {version} started (pid {pid}) as instance {instance}");
            for g in *groups {
                let command = crate::text::escape(&g.command, false);
                let _ = write!(body, "; {}: {} × {command}", g.name, g.workers);
                if !g.listen.is_empty() {
                    let listen = crate::text::escape(&g.listen.join(", "), false);
                    let _ = write!(body, ", listening on {listen}");
                }
            }
            ("corral".to_string(), body)
        }
        Record::Event(e, _) => (scope_id(names, e.scope), event_text(&e.kind, e.pid)),
        Record::Output { key, stream, line, .. } => {
            return output_text(out, ts, names, name_widths, width, (*key, *stream), line);
        }
        Record::Message { key, data, .. } => {
            let value = serde_json::from_slice(data).unwrap_or(serde_json::Value::Null);
            (scope_id(names, Scope::Worker(*key)), message_text(&value))
        }
        Record::ProtocolError { key, error, count, .. } => (
            scope_id(names, Scope::Worker(*key)),
            format!("protocol error: {} line dropped ({count} so far)", error.as_str()),
        ),
        Record::ShutdownComplete { exit_code } => {
            ("corral".to_string(), format!("stopped, exit code {exit_code}"))
        }
    };
    let _ = writeln!(out, "{ts} {id:<width$}   {body}");
}

/// Why a run ended, as the exit lines say it: the reason's words, and for the memory limit
/// by how much (`memory limit: RSS 1.6 MiB > 512 B`).
pub fn exit_why(reason: ExitReason, memory: Option<MemoryOver>) -> String {
    match memory {
        Some(MemoryOver { rss, limit }) => {
            format!("{}: RSS {} > {}", reason.label(), ByteSize(rss), ByteSize(limit))
        }
        None => reason.label().to_string(),
    }
}

pub fn event_text(kind: &EventKind, pid: Option<u32>) -> String {
    let pid = pid.map_or_else(String::new, |p| format!("pid {p} "));
    match kind {
        EventKind::Spawned { generation } => format!("spawned {pid}(generation {generation})"),
        EventKind::Waiting { unmet, blocked: None } => format!("waiting for {}", unmet.join(", ")),
        EventKind::Waiting { unmet, blocked: Some(why) } => format!(
            "waiting for {}, which cannot happen now: {}",
            unmet.join(", "),
            crate::text::escape(why, false)
        ),
        EventKind::SpawnFailed { error } => {
            format!("spawn failed: {}", crate::text::escape(error, false))
        }
        EventKind::Ready => format!("{pid}ready"),
        EventKind::Unready => format!("{pid}unready: its readiness probe fails"),
        EventKind::ProbeFailed { probe, error, count } => format!(
            "{pid}{} probe failed: {} ({count} so far)",
            probe.as_str(),
            crate::text::escape(error, false)
        ),
        EventKind::Exited { status, uptime, reason, memory, .. } => {
            let why = exit_why(*reason, *memory);
            format!("{pid}exited: {status} after {} ({why})", human_duration(*uptime))
        }
        EventKind::RestartScheduled { delay, restarts } if delay.is_zero() => {
            format!("restarting now (restart {restarts})")
        }
        EventKind::RestartScheduled { delay, restarts } => {
            format!("restarting in {} (restart {restarts})", human_duration(*delay))
        }
        EventKind::GaveUp { restarts, last: true } => {
            format!("gave up after {restarts} restarts; no worker left to run, exiting 1")
        }
        EventKind::GaveUp { restarts, last: false } => {
            format!(
                "gave up after {restarts} restarts (start it again by hand: `corral ctl start`, or s in the dashboard)"
            )
        }
        EventKind::Scaled { workers } => format!("scaled to {workers} workers"),
        EventKind::ReloadStarted { cause: ReloadCause::Watch { path } } => {
            format!("rolling reload started (watch: {path} changed)")
        }
        EventKind::ReloadStarted { cause } => {
            format!("rolling reload started ({})", cause.name())
        }
        EventKind::ReloadFinished { replaced, failed: false } => {
            format!("rolling reload finished: {replaced} replaced")
        }
        EventKind::ReloadFinished { replaced, failed: true } => {
            format!(
                "rolling reload stopped: a replacement failed ({replaced} replaced; the old workers stay)"
            )
        }
        EventKind::ScheduleSkipped { running } => format!(
            "scheduled run skipped: {running} worker{} of the last run still going",
            if *running == 1 { "" } else { "s" }
        ),
        EventKind::ShutdownStarted { trigger, .. } if trigger.forces() => {
            format!("shutting down ({}): killing every worker now", trigger_text(*trigger))
        }
        EventKind::ShutdownStarted { trigger, kill_after: Some(grace) } => format!(
            "shutting down ({}): a worker still running {} after it is asked to stop gets \
             SIGKILL; again to kill everything at once",
            trigger_text(*trigger),
            // As the kill timeout was written: `5s`, `1m30s`.
            humantime::format_duration(*grace).to_string().replace(' ', "")
        ),
        EventKind::ShutdownStarted { trigger, kill_after: None } => {
            format!("shutting down ({}); again to kill everything at once", trigger_text(*trigger))
        }
    }
}

fn message_text(data: &serde_json::Value) -> String {
    let field = |k: &str| data.get(k).and_then(serde_json::Value::as_str).unwrap_or("");
    match data.get("type").and_then(serde_json::Value::as_str) {
        Some("status") => format!("status: {}", sanitize(field("text").as_bytes())),
        Some("log") => format!(
            "log {}: {}",
            sanitize(field("level").as_bytes()),
            sanitize(field("msg").as_bytes())
        ),
        Some("metric") => {
            let value = data.get("value").map_or_else(String::new, ToString::to_string);
            format!("metric {} = {value}", sanitize(field("name").as_bytes()))
        }
        _ => format!("message {}", sanitize(data.to_string().as_bytes())),
    }
}

/// A JSON object written field by field: the keys in the order docs/output.md lists them.
struct Obj<'a> {
    out: &'a mut Vec<u8>,
}

impl Obj<'_> {
    fn key(&mut self, k: &str) {
        // Keys are our own literals: nothing to escape.
        self.out.extend_from_slice(b",\"");
        self.out.extend_from_slice(k.as_bytes());
        self.out.extend_from_slice(b"\":");
    }
    /// An integer, without the formatting machinery (the hot path of output floods).
    fn int(&mut self, k: &str, v: impl itoa::Integer) {
        self.key(k);
        self.out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
    }
    fn str(&mut self, k: &str, v: &str) {
        self.key(k);
        let _ = serde_json::to_writer(&mut *self.out, v);
    }
    fn strs(&mut self, k: &str, v: &[String]) {
        self.key(k);
        let _ = serde_json::to_writer(&mut *self.out, v);
    }
    fn num(&mut self, k: &str, v: impl std::fmt::Display) {
        self.key(k);
        let _ = write!(self.out, "{v}");
    }
    fn value(&mut self, k: &str, v: &serde_json::Value) {
        self.key(k);
        let _ = serde_json::to_writer(&mut *self.out, v);
    }
    /// Bytes that are already valid JSON.
    fn raw(&mut self, k: &str, json: &[u8]) {
        self.key(k);
        self.out.extend_from_slice(json);
    }
    fn null(&mut self, k: &str) {
        self.key(k);
        self.out.extend_from_slice(b"null");
    }
    fn worker(&mut self, names: &[String], key: WorkerKey, pid: Option<u32>) {
        self.str("group", names.get(usize::from(key.group)).map_or("?", String::as_str));
        self.int("worker", key.slot);
        if let Some(pid) = pid {
            self.int("pid", pid);
        }
    }
}

pub(crate) fn json(out: &mut Vec<u8>, ts: &str, names: &[String], rec: &Record<'_>) {
    let start = out.len();
    json_fields(out, ts, names, rec);
    // serde_json escapes C0 controls only; the worker's data is copied as sent.
    crate::text::escape_json(out, start);
}

fn json_fields(out: &mut Vec<u8>, ts: &str, names: &[String], rec: &Record<'_>) {
    out.extend_from_slice(b"{\"ts\":\"");
    out.extend_from_slice(ts.as_bytes());
    out.push(b'"');
    let mut o = Obj { out };
    match rec {
        Record::Started { pid, instance, groups } => {
            o.str("event", "supervisor_started");
            o.num("pid", pid);
            o.str("instance", instance);
            o.str("version", env!("CARGO_PKG_VERSION"));
            let groups: Vec<_> = groups
                .iter()
                .map(|g| {
                    serde_json::json!({"name": g.name, "workers": g.workers, "command": g.command, "listen": g.listen})
                })
                .collect();
            o.value("groups", &serde_json::Value::Array(groups));
        }
        Record::Event(e, messages) => {
            o.str("event", event_name(&e.kind));
            match e.scope {
                Scope::Worker(key) => o.worker(names, key, e.pid),
                Scope::Group(g) => {
                    o.str("group", names.get(usize::from(g)).map_or("?", String::as_str));
                }
                Scope::Supervisor => {}
            }
            event_fields(&mut o, &e.kind);
            if let Some(n) = messages {
                o.num("messages", n);
            }
        }
        Record::Output { key, pid, stream, line } => {
            o.str("event", "output");
            o.worker(names, *key, Some(*pid));
            o.str("stream", stream.as_str());
            o.str("line", &String::from_utf8_lossy(line));
        }
        Record::Message { key, pid, data, .. } => {
            o.str("event", "message");
            o.worker(names, *key, Some(*pid));
            o.raw("data", data);
        }
        Record::ProtocolError { key, pid, error, count } => {
            o.str("event", "protocol_error");
            o.worker(names, *key, Some(*pid));
            o.str("error", error.as_str());
            o.num("count", count);
        }
        Record::ShutdownComplete { exit_code } => {
            o.str("event", "shutdown_complete");
            o.num("exit_code", exit_code);
        }
    }
    out.extend_from_slice(b"}\n");
}

fn event_fields(o: &mut Obj<'_>, kind: &EventKind) {
    match kind {
        EventKind::Spawned { generation } => o.num("generation", generation),
        EventKind::SpawnFailed { error } => o.str("error", error),
        EventKind::Ready | EventKind::Unready => {}
        EventKind::ProbeFailed { probe, error, count } => {
            o.str("probe", probe.as_str());
            o.str("error", error);
            o.num("count", count);
        }
        EventKind::Waiting { unmet, blocked } => {
            o.strs("for", unmet);
            if let Some(why) = blocked {
                o.str("blocked", why);
            }
        }
        EventKind::ScheduleSkipped { running } => o.num("running", running),
        EventKind::ReloadStarted { cause } => {
            o.str("cause", cause.name());
            if let ReloadCause::Watch { path } = cause {
                o.str("path", path);
            }
        }
        EventKind::Exited { status, uptime, reason, restarts, memory } => {
            match status.code() {
                Some(c) => o.num("code", c),
                None => o.null("code"),
            }
            match status.signal() {
                Some(s) => o.str("signal", &s.name()),
                None => o.null("signal"),
            }
            o.num("uptime_ms", uptime.as_millis());
            o.str("reason", reason.as_str());
            o.num("restarts", restarts);
            if let Some(MemoryOver { rss, limit }) = memory {
                o.num("rss_bytes", rss);
                o.num("max_memory_bytes", limit);
            }
        }
        EventKind::RestartScheduled { delay, restarts } => {
            o.num("delay_ms", delay.as_millis());
            o.num("restarts", restarts);
        }
        EventKind::GaveUp { restarts, .. } => o.num("restarts", restarts),
        EventKind::Scaled { workers } => o.num("workers", workers),
        EventKind::ReloadFinished { replaced, failed } => {
            o.num("replaced", replaced);
            o.num("failed", failed);
        }
        EventKind::ShutdownStarted { trigger, kill_after } => {
            let (field, value) = trigger.reported();
            o.str(field, &value);
            if let Some(grace) = kill_after {
                o.num("kill_after_ms", u64::try_from(grace.as_millis()).unwrap_or(u64::MAX));
            }
        }
    }
}
