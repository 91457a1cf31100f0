use std::time::{Duration, SystemTime};

use serde_json::Value;

use super::*;
use crate::core::{Event, EventKind, Scope, ShutdownTrigger, WorkerKey};
use crate::core::{ExitReason, ExitStatus};
use crate::report::{GroupInfo, MessageKind, Stream, format, human_duration};
use crate::signal::Signal;

const KEY: WorkerKey = WorkerKey { group: 0, slot: 2 };

fn names() -> Vec<String> {
    vec!["web".into()]
}

fn json_of(rec: &Record<'_>) -> Value {
    let mut out = Vec::new();
    format::json(&mut out, &format::ts_text(SystemTime::UNIX_EPOCH), &names(), rec);
    assert_eq!(out.last(), Some(&b'\n'));
    assert_eq!(memchr::memchr_iter(b'\n', &out).count(), 1, "one line per record");
    serde_json::from_slice(&out).expect("valid JSON")
}

fn text_of(rec: &Record<'_>) -> String {
    let mut out = Vec::new();
    let widths: Vec<usize> = names().iter().map(|n| n.chars().count()).collect();
    format::text(&mut out, &format::ts_text(SystemTime::UNIX_EPOCH), &names(), &widths, 6, rec);
    String::from_utf8(out).expect("utf8")
}

#[test]
fn exited_has_exactly_the_spec_fields() {
    let e = Event {
        scope: Scope::Worker(KEY),
        pid: Some(42),
        kind: EventKind::Exited {
            status: ExitStatus::Signal(Signal::SEGV),
            uptime: Duration::from_millis(1500),
            reason: ExitReason::Crashed,
            restarts: 3,
            memory: None,
        },
    };
    let v = json_of(&Record::Event(&e, None));
    assert_eq!(
        v,
        serde_json::json!({"ts":"1970-01-01T00:00:00.000Z","event":"exited","group":"web","worker":2,"pid":42,
            "code":null,"signal":"SIGSEGV","uptime_ms":1500,"reason":"crashed","restarts":3})
    );
    assert!(
        text_of(&Record::Event(&e, None))
            .ends_with("web.2    pid 42 exited: SIGSEGV after 1.50s (crashed)\n")
    );
}

#[test]
fn a_memory_limit_exit_says_the_rss_and_the_limit() {
    let e = Event {
        scope: Scope::Worker(KEY),
        pid: Some(42),
        kind: EventKind::Exited {
            status: ExitStatus::Signal(Signal::TERM),
            uptime: Duration::from_millis(2500),
            reason: ExitReason::MemoryLimit,
            restarts: 1,
            memory: Some(crate::core::MemoryOver { rss: 1_677_722, limit: 512 }),
        },
    };
    let v = json_of(&Record::Event(&e, None));
    assert_eq!(
        (&v["reason"], &v["rss_bytes"], &v["max_memory_bytes"]),
        (&"memory_limit".into(), &1_677_722.into(), &512.into())
    );
    let text = text_of(&Record::Event(&e, None));
    assert!(
        text.ends_with("pid 42 exited: SIGTERM after 2.50s (memory limit: RSS 1.6 MiB > 512 B)\n"),
        "{text}"
    );
}

#[test]
fn output_lines_are_escaped_in_both_formats() {
    let line = b"\x1b]0;PWNED\x07 hi \xff\r";
    let rec = Record::Output { key: KEY, pid: 1, stream: Stream::Stderr, line };
    let v = json_of(&rec);
    assert_eq!(v["stream"], "stderr");
    assert_eq!(v["line"], "\u{1b}]0;PWNED\u{7} hi \u{fffd}\r");
    let t = text_of(&rec);
    assert!(t.contains("web.2  ! \\u{1b}]0;PWNED\\u{7} hi \u{fffd}\\u{d}"), "{t}");
    assert!(!t.contains('\x1b'));
}

#[test]
fn a_reload_says_its_cause_and_a_watched_file_its_path() {
    let watch = crate::core::ReloadCause::Watch { path: "src/app.js".into() };
    let e = Event {
        scope: Scope::Group(0),
        pid: None,
        kind: EventKind::ReloadStarted { cause: watch },
    };
    let v = json_of(&Record::Event(&e, None));
    assert_eq!(
        (v["event"].as_str(), v["cause"].as_str(), v["path"].as_str()),
        (Some("reload_started"), Some("watch"), Some("src/app.js"))
    );
    assert!(text_of(&Record::Event(&e, None)).contains("watch: src/app.js changed"));
    let cause = crate::core::ReloadCause::Schedule;
    let e = Event { scope: Scope::Group(0), pid: None, kind: EventKind::ReloadStarted { cause } };
    let v = json_of(&Record::Event(&e, None));
    assert_eq!((v["cause"].as_str(), v.get("path")), (Some("schedule"), None));
}

#[test]
fn shutdown_events() {
    let e = Event {
        scope: Scope::Supervisor,
        pid: None,
        kind: EventKind::ShutdownStarted {
            trigger: ShutdownTrigger::Signal(Signal::INT),
            kill_after: Some(std::time::Duration::from_secs(5)),
        },
    };
    let v = json_of(&Record::Event(&e, None));
    assert_eq!(
        (v["event"].as_str(), v["signal"].as_str(), v["kill_after_ms"].as_u64()),
        (Some("shutdown_started"), Some("SIGINT"), Some(5000))
    );
    let text = crate::report::event_text(&e.kind, None);
    assert_eq!(
        text,
        "shutting down (SIGINT): a worker still running 5s after it is asked to stop gets \
         SIGKILL; again to kill everything at once"
    );
    let v = json_of(&Record::ShutdownComplete { exit_code: 1 });
    assert_eq!(v["exit_code"], 1);
}

#[test]
fn durations_read_well() {
    assert_eq!(human_duration(Duration::from_millis(250)), "250ms");
    assert_eq!(human_duration(Duration::from_millis(1500)), "1.50s");
    assert_eq!(human_duration(Duration::from_secs(185)), "3m05s");
    assert_eq!(human_duration(Duration::from_mins(124)), "2h04m");
}

/// A writer that blocks until released (stdout piped into `sleep`), counting what it got.
struct Gate {
    open: std::sync::Arc<std::sync::atomic::AtomicBool>,
    got: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
}

impl std::io::Write for Gate {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        while !self.open.load(std::sync::atomic::Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(1));
        }
        let n = b.len().min(4096); // short writes, as pipes do
        self.got.lock().expect("lock").extend_from_slice(&b[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_stuck_stdout_holds_output_back_and_loses_nothing() {
    let open = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let gate = Gate { open: open.clone(), got: got.clone() };
    let mut h = Headless::new(
        LogFormat::Text,
        names(),
        Box::new(gate),
        Box::new(|| {}),
        std::sync::Arc::default(),
    )
    .expect("writer thread");
    let line = [b'x'; 1000];
    let mut n = 0u32;
    while !h.held() {
        h.record(
            std::time::SystemTime::now(),
            &Record::Output { key: KEY, pid: 1, stream: Stream::Stdout, line: &line },
        );
        n += 1;
        assert!(n < 100_000, "the queue must say when it is full");
    }
    open.store(true, std::sync::atomic::Ordering::Release);
    h.join();
    assert!(!h.held(), "held is released once the queue drains");
    let got = got.lock().expect("lock");
    assert_eq!(memchr::memchr_iter(b'\n', &got).count(), n as usize, "every line arrives");
    assert_eq!(h.lost(), 0);
}

#[test]
fn a_failing_stdout_is_retried_not_dropped() {
    /// Fails with ENOSPC a few times, then accepts everything.
    struct Full {
        failures: u32,
        got: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    }
    impl std::io::Write for Full {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            if self.failures > 0 {
                self.failures -= 1;
                return Err(std::io::Error::from_raw_os_error(libc::ENOSPC));
            }
            self.got.lock().expect("lock").extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let full = Full { failures: 2, got: got.clone() };
    let mut h = Headless::new(
        LogFormat::Json,
        names(),
        Box::new(full),
        Box::new(|| {}),
        std::sync::Arc::default(),
    )
    .expect("writer");
    for _ in 0..10 {
        h.record(
            std::time::SystemTime::now(),
            &Record::Output { key: KEY, pid: 1, stream: Stream::Stdout, line: b"hi" },
        );
    }
    h.join();
    assert_eq!(memchr::memchr_iter(b'\n', &got.lock().expect("lock")).count(), 10);
    assert!(!h.closed(), "ENOSPC is not a closed stdout");
}

#[test]
fn a_closed_stdout_closes_the_sink() {
    struct Gone;
    impl std::io::Write for Gone {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let called = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let c = called.clone();
    let on_close = Box::new(move || c.store(true, std::sync::atomic::Ordering::Release));
    let mut h = Headless::new(
        LogFormat::Json,
        names(),
        Box::new(Gone),
        on_close,
        std::sync::Arc::default(),
    )
    .expect("writer");
    h.record(
        std::time::SystemTime::now(),
        &Record::Output { key: KEY, pid: 1, stream: Stream::Stdout, line: b"hi" },
    );
    h.join();
    assert!(h.closed());
    assert!(called.load(std::sync::atomic::Ordering::Acquire));
}

fn run_records(format: LogFormat, show_metrics: bool, records: &[Record<'_>]) -> String {
    let open = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let gate = Gate { open, got: got.clone() };
    let mut h =
        Headless::new(format, names(), Box::new(gate), Box::new(|| {}), std::sync::Arc::default())
            .expect("writer");
    h.show_metrics(show_metrics);
    for r in records {
        h.record(std::time::SystemTime::now(), r);
    }
    h.join();
    String::from_utf8(got.lock().expect("lock").clone()).expect("utf8")
}

#[test]
fn text_shows_a_status_when_it_changes_and_metrics_only_when_asked() {
    let status = |text: &'static str| Record::Message {
        key: KEY,
        pid: 1,
        data: b"{}",
        kind: MessageKind::Status(text),
    };
    let metric = || Record::Message {
        key: KEY,
        pid: 1,
        data: br#"{"type":"metric"}"#,
        kind: MessageKind::Metric,
    };
    let records = [status("a"), status("a"), metric(), status("b"), status("a"), metric()];
    let text = run_records(LogFormat::Text, false, &records);
    assert_eq!(text.lines().count(), 3, "a, b, a; no metric: {text}");
    assert!(!text.contains("metric"), "{text}");
    let verbose = run_records(LogFormat::Text, true, &records);
    assert_eq!(verbose.lines().count(), 5, "-v adds the metrics: {verbose}");
    let json = run_records(LogFormat::Json, false, &records);
    assert_eq!(json.lines().count(), 6, "JSON keeps everything: {json}");
}

/// Every character `crate::text::escape` makes visible, in one worker-supplied string.
const HOSTILE: &str = "\x1b]0;PWNED\x07\x1b[2J\u{7f}\u{9b}1m\u{85}\u{202e}";

fn assert_no_controls(out: &str) {
    let bad: Vec<char> = out
        .chars()
        .filter(|&c| (c.is_control() && c != '\n') || ('\u{202a}'..='\u{2069}').contains(&c))
        .collect();
    assert!(bad.is_empty(), "raw {bad:?} in {out:?}");
}

#[test]
fn worker_and_operator_strings_are_escaped_in_every_record() {
    let data = serde_json::json!({"type": "log", "level": HOSTILE, "msg": HOSTILE}).to_string();
    let status = serde_json::json!({"type": "status", "text": HOSTILE}).to_string();
    let metric = serde_json::json!({"type": "metric", "name": HOSTILE, "value": 1}).to_string();
    let custom = serde_json::json!({"type": HOSTILE, HOSTILE: [HOSTILE]}).to_string();
    let raw_c1 = "{\"type\":\"\u{9b}\u{202e}\"}".to_string(); // valid JSON, C1 unescaped
    let groups = [GroupInfo {
        name: "web".into(),
        workers: 1,
        command: format!("./{HOSTILE} --flag"),
        listen: vec![format!("unix:/tmp/{HOSTILE}")],
    }];
    let failed = Event {
        scope: Scope::Worker(KEY),
        pid: None,
        kind: EventKind::SpawnFailed { error: HOSTILE.into() },
    };
    let line = HOSTILE.as_bytes();
    let mut records = vec![
        Record::Started { pid: 1, instance: HOSTILE, groups: &groups },
        Record::Event(&failed, None),
        Record::Output { key: KEY, pid: 1, stream: Stream::Stdout, line },
    ];
    for data in [&data, &status, &metric, &custom, &raw_c1] {
        records.push(Record::Message {
            key: KEY,
            pid: 1,
            data: data.as_bytes(),
            kind: MessageKind::Other,
        });
    }
    for rec in &records {
        let text = text_of(rec);
        assert_no_controls(&text);
        let mut json = Vec::new();
        format::json(&mut json, "t", &names(), rec);
        let json = String::from_utf8(json).expect("utf8");
        assert_no_controls(&json);
        serde_json::from_str::<Value>(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
    }
    let log = text_of(&Record::Message {
        key: KEY,
        pid: 1,
        data: data.as_bytes(),
        kind: MessageKind::Other,
    });
    assert!(log.contains("log \\u{1b}]0;PWNED\\u{7}"), "{log}");
    let v = json_of(&Record::Message {
        key: KEY,
        pid: 1,
        data: raw_c1.as_bytes(),
        kind: MessageKind::Other,
    });
    assert_eq!(v["data"]["type"], "\u{9b}\u{202e}", "the same value, escaped");
}

#[test]
fn a_last_give_up_says_corral_is_exiting_not_restart_it_by_hand() {
    let gave_up = |last| Event {
        scope: Scope::Worker(KEY),
        pid: Some(7),
        kind: EventKind::GaveUp { restarts: 5, last },
    };
    let last = text_of(&Record::Event(&gave_up(true), None));
    assert!(last.contains("gave up after 5 restarts; no worker left to run, exiting 1"), "{last}");
    assert!(!last.contains("by hand"));
    let not_last = text_of(&Record::Event(&gave_up(false), None));
    assert!(not_last.contains("(start it again by hand: `corral ctl start`"), "{not_last}");
    assert_eq!(json_of(&Record::Event(&gave_up(true), None))["restarts"], 5);
}

/// The fast path for a printable ASCII line and the careful one agree on the id column
/// and the separator, and only the careful one rewrites anything.
#[test]
fn output_lines_fast_and_careful_paths_agree() {
    let key = WorkerKey { group: 0, slot: 12 };
    let plain = text_of(&Record::Output { key, pid: 1, stream: Stream::Stdout, line: b"a\tb c" });
    let escaped =
        text_of(&Record::Output { key, pid: 1, stream: Stream::Stdout, line: b"a\x1b[31mb" });
    let (p, e) = (plain.find(" | ").expect("separator"), escaped.find(" | ").expect("separator"));
    assert_eq!(p, e, "{plain:?} {escaped:?}");
    assert!(plain.ends_with(" | a\tb c\n"), "{plain:?}");
    assert!(escaped.ends_with(" | a\x1b[31mb\x1b[0m\n"), "colours kept, then reset: {escaped:?}");
    let wide =
        text_of(&Record::Output { key, pid: 1, stream: Stream::Stdout, line: "é".as_bytes() });
    assert!(wide.ends_with(" | é\n"), "{wide:?}");
}

#[test]
fn strip_ansi_removes_sequences_from_text_and_json_lines() {
    let key = WorkerKey { group: 0, slot: 1 };
    let line = b"\x1b[32mgreen\x1b[0m \x1b]0;title\x07plain\x07";
    let record = Record::Output { key, pid: 1, stream: Stream::Stdout, line };
    let write = |format, strip| {
        let mut lines = Lines::new(format, vec!["web".into()]);
        lines.strip_ansi(strip);
        let mut out = Vec::new();
        lines.write(&mut out, std::time::SystemTime::UNIX_EPOCH, &record);
        String::from_utf8(out).unwrap()
    };
    let kept = write(LogFormat::Text, false);
    assert!(
        kept.ends_with(" | \x1b[32mgreen\x1b[0m \\u{1b}]0;title\\u{7}plain\\u{7}\x1b[0m\n"),
        "{kept:?}"
    );
    let stripped = write(LogFormat::Text, true);
    assert!(stripped.ends_with(" | green plain\\u{7}\n"), "{stripped:?}");
    let json: serde_json::Value = serde_json::from_str(&write(LogFormat::Json, true)).unwrap();
    assert_eq!(json["line"], "green plain\u{7}");
    let json: serde_json::Value = serde_json::from_str(&write(LogFormat::Json, false)).unwrap();
    assert_eq!(json["line"], std::str::from_utf8(line).unwrap(), "JSON carries the line as sent");
}
