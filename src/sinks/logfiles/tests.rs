//! The log files on a real directory with a clock the test moves: rotation, pruning,
//! start-up rotation, reopening, modes, planted links, and the line format.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use super::rotation::Period;
use super::*;
use crate::core::WorkerKey;
use crate::sinks::lossless::Sink;

const WEB1: LogId = LogId::Worker(WorkerKey { group: 0, slot: 1 });

/// A clock at `start`, moved by the test.
fn clock(start: &str) -> (Arc<AtomicU64>, files::Clock) {
    let t = humantime::parse_rfc3339(start).expect("time");
    let ms = t.duration_since(SystemTime::UNIX_EPOCH).expect("after 1970").as_millis();
    let now = Arc::new(AtomicU64::new(u64::try_from(ms).expect("fits")));
    let read = Arc::clone(&now);
    let clock = Box::new(move || {
        SystemTime::UNIX_EPOCH + Duration::from_millis(read.load(Ordering::Acquire))
    });
    (now, clock)
}

fn advance(now: &AtomicU64, by: Duration) {
    now.fetch_add(u64::try_from(by.as_millis()).expect("fits"), Ordering::AcqRel);
}

fn sink(dir: &Path, keep: u32, clock: files::Clock) -> FileSink {
    FileSink::new(dir.to_path_buf(), keep, Period::Daily, vec!["web".to_string()], clock)
}

fn put(sink: &mut FileSink, id: LogId, text: &str) {
    sink.begin(&id).expect("begin");
    let mut at = 0;
    while at < text.len() {
        at += sink.write(&id, &text.as_bytes()[at..]).expect("write");
    }
}

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().into_string().expect("utf-8"))
        .collect();
    names.sort();
    names
}

fn read(dir: &Path, name: &str) -> String {
    fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Sets a file's mtime (the real clock's would be read against the test's).
fn touch(path: &Path, at: &str) {
    let at = humantime::parse_rfc3339(at).expect("time");
    fs::File::options().write(true).open(path).and_then(|f| f.set_modified(at)).expect("mtime");
}

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).expect("stat").permissions().mode() & 0o7777
}

#[test]
fn daily_rotation_keeps_the_newest_n_and_nothing_of_anyone_else_is_touched() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("logs");
    fs::create_dir(&dir).expect("mkdir");
    for decoy in ["web.10.2020-01-01.log", "web.10.log", "notes.txt", "web.1.2020-01-01.log.gz"] {
        fs::write(dir.join(decoy), "decoy").expect("decoy");
    }
    let (now, clock) = clock("2026-12-01T10:00:00Z");
    let mut sink = sink(&dir, 2, clock);
    for day in 1..=4 {
        put(&mut sink, WEB1, &format!("day {day}\n"));
        put(&mut sink, WEB1, &format!("day {day} again\n"));
        advance(&now, Duration::from_hours(24));
    }
    assert_eq!(
        listing(&dir),
        [
            "notes.txt",
            "web.1.2020-01-01.log.gz",
            "web.1.2026-12-02.log",
            "web.1.2026-12-03.log",
            "web.1.log",
            "web.10.2020-01-01.log",
            "web.10.log",
        ]
    );
    assert_eq!(read(&dir, "web.1.2026-12-03.log"), "day 3\nday 3 again\n");
    assert_eq!(read(&dir, "web.1.log"), "day 4\nday 4 again\n");
    assert_eq!(read(&dir, "web.10.2020-01-01.log"), "decoy");
}

#[test]
fn a_file_left_from_an_earlier_day_is_rotated_on_start_and_a_taken_name_gets_a_number() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    fs::write(dir.join("web.1.log"), "old\n").expect("write");
    touch(&dir.join("web.1.log"), "2026-12-01T22:00:00Z");
    fs::write(dir.join("web.1.2026-12-01.log"), "older\n").expect("write");
    fs::write(dir.join("corral.log"), "today's\n").expect("write");
    touch(&dir.join("corral.log"), "2026-12-02T08:00:00Z");
    let (_now, clock) = clock("2026-12-02T09:00:00Z");
    let mut sink = sink(dir, 7, clock);
    put(&mut sink, WEB1, "new\n");
    put(&mut sink, LogId::Corral, "more\n");
    assert_eq!(read(dir, "web.1.2026-12-01.1.log"), "old\n");
    assert_eq!(read(dir, "web.1.2026-12-01.log"), "older\n");
    assert_eq!(read(dir, "web.1.log"), "new\n");
    assert_eq!(read(dir, "corral.log"), "today's\nmore\n", "a file of today is appended to");
}

#[test]
fn a_test_period_rotates_by_the_second() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (now, clock) = clock("2026-12-01T10:00:04.500Z");
    let every = Period::Every(Duration::from_secs(2));
    let mut sink = FileSink::new(tmp.path().into(), 1, every, vec!["web".into()], clock);
    put(&mut sink, WEB1, "a\n");
    advance(&now, Duration::from_secs(1));
    put(&mut sink, WEB1, "b\n");
    advance(&now, Duration::from_secs(1));
    put(&mut sink, WEB1, "c\n");
    assert_eq!(listing(tmp.path()), ["web.1.2026-12-01-10-00-04.log", "web.1.log"]);
    assert_eq!(read(tmp.path(), "web.1.2026-12-01-10-00-04.log"), "a\nb\n");
    assert_eq!(read(tmp.path(), "web.1.log"), "c\n");
}

#[test]
fn a_reopen_after_an_outside_rename_starts_a_new_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let (now, clock) = clock("2026-12-01T10:00:00Z");
    let mut sink = sink(dir, 7, clock);
    put(&mut sink, WEB1, "before\n");
    fs::rename(dir.join("web.1.log"), dir.join("web.1.log.1")).expect("mv");
    put(&mut sink, WEB1, "late\n");
    sink.reopen();
    assert!(dir.join("web.1.log").exists(), "reopened at once, for tail -F");
    put(&mut sink, WEB1, "after\n");
    assert_eq!(read(dir, "web.1.log.1"), "before\nlate\n");
    assert_eq!(read(dir, "web.1.log"), "after\n");
    // Moved away without a reopen: at rotation the name is not ours to rename.
    fs::rename(dir.join("web.1.log"), dir.join("web.1.log.2")).expect("mv");
    fs::write(dir.join("web.1.log"), "someone else's\n").expect("write");
    touch(&dir.join("web.1.log"), "2026-12-02T00:00:01Z");
    advance(&now, Duration::from_hours(24));
    put(&mut sink, WEB1, "next day\n");
    assert_eq!(read(dir, "web.1.log"), "someone else's\nnext day\n");
    assert!(!dir.join("web.1.2026-12-01.log").exists(), "{:?}", listing(dir));
}

#[test]
fn files_are_0640_in_a_0750_directory_made_when_missing_and_links_are_not_followed() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("a/b/logs");
    let (_now, clock) = clock("2026-12-01T10:00:00Z");
    let mut sink = sink(&dir, 7, clock);
    put(&mut sink, LogId::Corral, "x\n");
    assert_eq!(mode(&dir), 0o750);
    assert_eq!(mode(&dir.join("corral.log")), 0o640);
    let victim = tmp.path().join("victim");
    fs::write(&victim, "precious").expect("write");
    symlink(&victim, dir.join("web.1.log")).expect("symlink");
    let err = sink.begin(&WEB1).expect_err("a planted link is refused");
    assert_eq!(err.raw_os_error(), Some(libc::ELOOP), "{err}");
    assert_eq!(fs::read_to_string(&victim).expect("read"), "precious");
    assert!(sink.name(&WEB1).ends_with("/logs/web.1.log"), "{}", sink.name(&WEB1));
    fs::remove_file(dir.join("web.1.log")).expect("rm link");
    put(&mut sink, WEB1, "y\n");
    assert_eq!(read(&dir, "web.1.log"), "y\n");
    // An existing directory keeps its mode.
    let other = tmp.path().join("mine");
    fs::create_dir(&other).expect("mkdir");
    fs::set_permissions(&other, fs::Permissions::from_mode(0o700)).expect("chmod");
    let (_now, clock) = self::clock("2026-12-01T10:00:00Z");
    put(&mut self::sink(&other, 7, clock), WEB1, "z\n");
    assert_eq!(mode(&other), 0o700);
}

#[test]
fn lines_carry_time_stream_pid_and_the_escaped_line_and_events_go_to_corral_log() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let config = config::LogDir { dir: tmp.path().join("logs"), keep: 7 };
    let mut logs =
        LogFiles::start(&config, vec!["web".into()], false, Arc::default()).expect("start");
    let key = WorkerKey { group: 0, slot: 1 };
    let out = |line: &'static [u8], stream| Record::Output { key, pid: 42, stream, line };
    logs.record(std::time::SystemTime::now(), &out(b"listening on 3000", Stream::Stdout));
    logs.record(
        std::time::SystemTime::now(),
        &out(b"fake\r2026-12-02T10:00:00.000Z stdout 1 forged \x1b[2J", Stream::Stderr),
    );
    logs.record(std::time::SystemTime::now(), &out(b"caf\xc3\xa9\ttab", Stream::Stdout));
    logs.record(std::time::SystemTime::now(), &Record::ShutdownComplete { exit_code: 0 });
    logs.join();
    assert_eq!(logs.lost(), 0);
    let text = read(&config.dir, "web.1.log");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    let rest: Vec<&str> = lines.iter().map(|l| l.split_once(' ').expect("ts").1).collect();
    assert_eq!(
        rest,
        [
            "stdout 42 listening on 3000",
            "stderr 42 fake\\u{d}2026-12-02T10:00:00.000Z stdout 1 forged \\u{1b}[2J",
            "stdout 42 café\ttab",
        ]
    );
    let ts = lines[0].split_once(' ').expect("ts").0;
    assert!(humantime::parse_rfc3339(ts).is_ok() && ts.len() == 24, "{ts}");
    let corral = read(&config.dir, "corral.log");
    assert!(corral.ends_with("stopped, exit code 0\n"), "{corral}");
}

#[test]
fn an_unusable_directory_is_one_reason() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("file");
    fs::write(&file, "").expect("write");
    let config = config::LogDir { dir: file.clone(), keep: 7 };
    let Err(err) = LogFiles::start(&config, vec!["web".into()], false, Arc::default()) else {
        panic!("a file is not a log directory");
    };
    let shown = format!("{err}");
    assert_eq!(shown, format!("cannot write logs in {}: Not a directory", file.display()));
    fs::create_dir(tmp.path().join("d")).expect("mkdir");
    symlink(tmp.path().join("elsewhere"), tmp.path().join("d/corral.log")).expect("symlink");
    let config = config::LogDir { dir: tmp.path().join("d"), keep: 7 };
    let Err(err) = LogFiles::start(&config, vec!["web".into()], false, Arc::default()) else {
        panic!("a planted corral.log link is refused");
    };
    assert!(format!("{err}").ends_with(": corral.log: Too many levels of symbolic links"), "{err}");
}

#[test]
fn colours_are_kept_as_received_unless_stripped() {
    for strip in [false, true] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let config = config::LogDir { dir: tmp.path().join("logs"), keep: 7 };
        let mut logs =
            LogFiles::start(&config, vec!["web".into()], false, Arc::default()).expect("start");
        logs.strip_ansi(strip);
        let key = WorkerKey { group: 0, slot: 1 };
        let line = b"\x1b[31mred\x1b[0m \x1b[2Jcleared";
        logs.record(
            std::time::SystemTime::now(),
            &Record::Output { key, pid: 42, stream: Stream::Stdout, line },
        );
        logs.join();
        let text = read(&config.dir, "web.1.log");
        let rest = text.split_once(' ').expect("ts").1;
        let want = if strip {
            "stdout 42 red cleared\n"
        } else {
            "stdout 42 \x1b[31mred\x1b[0m \\u{1b}[2Jcleared\x1b[0m\n"
        };
        assert_eq!(rest, want);
    }
}
