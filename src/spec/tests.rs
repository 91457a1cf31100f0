//! The shared rules without a front door: defaults that follow from other options, the
//! conflicts, and the limits of typed values.

#![allow(clippy::unwrap_used, reason = "a panic is how a test fails")]

use std::path::PathBuf;
use std::time::Duration;

use super::*;
use crate::config::{CommandSpec, ListenAddr, LogFormat, OutputMode};
use crate::core::{Backoff, RestartPolicy};

fn command(program: &str) -> CommandSpec {
    CommandSpec {
        program: PathBuf::from(program),
        argv: vec![program.into(), "app.js".into()],
        display: format!("{program} app.js"),
    }
}

fn request() -> GroupRequest {
    GroupRequest::new("web".into(), command("/bin/true"), std::env::temp_dir())
}

fn cron() -> crate::schedule::Schedule {
    values::cron("@hourly").unwrap()
}

fn run_request() -> RunRequest {
    RunRequest {
        instance: "shop".into(),
        instance_is_default: false,
        dashboard: Some(false),
        log_format: LogFormat::Json,
        verbosity: 0,
        log_dir: None,
        log_keep: 7,
        strip_ansi: false,
        control: Control::Default,
        metrics: None,
    }
}

#[test]
fn a_schedule_runs_one_worker_once_unless_told_otherwise() {
    let mut r = request();
    r.schedule = Some(cron());
    let g = r.clone().build().unwrap();
    assert_eq!((g.workers, g.policy.restart), (1, RestartPolicy::Never));
    assert!(g.core_config().scheduled);
    r.workers = Some(3);
    r.policy.restart = RestartPolicy::OnFailure;
    r.restart_chosen = true;
    let g = r.clone().build().unwrap();
    assert_eq!((g.workers, g.policy.restart), (3, RestartPolicy::OnFailure));
    r.policy.restart = RestartPolicy::Always;
    assert!(matches!(r.build(), Err(SpecError::ScheduleRestartsAlways)));
}

#[test]
fn sockets_are_named_by_position_or_as_handed_and_names_are_unique() {
    let mut r = request();
    for text in ["3000", "fd:web", "api=unix:/tmp/a.sock", "127.0.0.1:0"] {
        r.listen.push(values::listen(text).unwrap());
    }
    let g = r.clone().build().unwrap();
    let names: Vec<&str> = g.listen.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["listen1", "web", "api", "listen4"]);
    assert_eq!(g.listen[1].addr, ListenAddr::Inherited("web".into()));
    r.listen.push(values::listen("api=80").unwrap());
    let Err(SpecError::ListenName { text, name }) = r.clone().build() else {
        panic!("a duplicate")
    };
    assert_eq!((text.as_str(), name.as_str()), ("api=80", "api"));
    // One address twice would fail its second bind at start; port 0 is a new port each time.
    let mut r = request();
    for text in ["127.0.0.1:0", "127.0.0.1:0", "0", "0", "3000"] {
        r.listen.push(values::listen(text).unwrap());
    }
    assert!(r.clone().build().is_ok());
    r.listen.push(values::listen("other=3000").unwrap());
    let Err(SpecError::ListenTwice { text }) = r.build() else { panic!("an address twice") };
    assert_eq!(text, "other=3000");
}

#[test]
fn node_ipc_and_cluster_follow_the_program_in_auto() {
    let mut r = GroupRequest::new("web".into(), command("/usr/bin/node"), PathBuf::from("/"));
    r.node_ipc = Switch::Auto;
    r.node_cluster = Switch::Auto;
    let g = r.clone().build().unwrap();
    assert!(g.node_ipc && g.node_cluster && g.policy.disconnect_first);
    // A one-shot script would hang as a cluster worker: only `always` groups are clusters.
    r.policy.restart = RestartPolicy::Never;
    let g = r.clone().build().unwrap();
    assert!(g.node_ipc && !g.node_cluster && !g.policy.disconnect_first);
    // A cluster is on IPC whatever node-ipc says.
    r.node_ipc = Switch::Off;
    r.node_cluster = Switch::On;
    assert!(r.build().unwrap().node_ipc);
    let mut python = request();
    python.node_ipc = Switch::Auto;
    python.node_cluster = Switch::Auto;
    let g = python.build().unwrap();
    assert!(!g.node_ipc && !g.node_cluster);
}

#[test]
fn a_readiness_probe_is_waited_for() {
    let mut r = request();
    assert!(!r.clone().build().unwrap().wait_ready);
    r.probes.readiness = Some(values::probe("tcp:127.0.0.1:1").unwrap());
    assert!(r.build().unwrap().wait_ready);
}

/// A change to a request that should make it refused.
type Change = Box<dyn Fn(&mut GroupRequest)>;

#[test]
fn typed_values_out_of_range_are_refused_by_name() {
    let refused = |change: &dyn Fn(&mut GroupRequest)| {
        let mut r = request();
        change(&mut r);
        r.build().err().map(|e| e.to_string()).unwrap_or_default()
    };
    let s = Duration::from_secs;
    let cases: Vec<(Change, &str)> = vec![
        (Box::new(|r| r.workers = Some(0)), "workers 0: expected a whole number from 1 to 4096"),
        (Box::new(|r| r.workers = Some(4097)), "workers 4097"),
        (Box::new(|r| r.name = "a.b".into()), "name 'a.b': expected letters"),
        (
            Box::new(move |r| r.policy.backoff = Backoff { first: s(2), max: s(1) }),
            "backoff: expected a first delay not above the maximum",
        ),
        (Box::new(|r| r.policy.restart_window = Duration::ZERO), "restart window: expected"),
        (Box::new(|r| r.policy.ready_timeout = Duration::ZERO), "ready timeout: expected"),
        (Box::new(|r| r.policy.max_memory = Some(0)), "max memory: expected a size above 0"),
        (
            Box::new(move |r| r.policy.kill_timeout = s(400 * 86_400)),
            "kill timeout: expected a duration up to 1 year",
        ),
        (
            Box::new(move |r| r.policy.reload_settle = Duration::MAX),
            "reload settle: expected a duration up to 1 year",
        ),
        (Box::new(|r| r.env.push(("A=B".into(), "c".into()))), "env 'A=B': expected"),
        (Box::new(|r| r.env.push(("A".into(), "c\0".into()))), "env 'A': expected"),
    ];
    for (change, expected) in cases {
        let got = refused(&*change);
        assert!(got.starts_with(expected), "{got:?} should start with {expected:?}");
    }
}

#[test]
fn env_files_and_watched_paths_must_exist_and_say_which() {
    let dir = tempfile::tempdir().unwrap();
    let present = dir.path().join("a.env");
    std::fs::write(&present, "A=1\n").unwrap();
    let mut r = GroupRequest::new("web".into(), command("/bin/true"), dir.path().into());
    r.env_files = vec![present.clone(), dir.path().join("missing.env")];
    let Err(SpecError::EnvFile { index, error }) = r.clone().build() else { panic!("missing") };
    assert_eq!(index, 1, "{}", error.message);
    r.env_files = vec![present];
    assert!(r.clone().build().unwrap().watch.is_none(), "no paths: no watch");
    r.watch = vec!["a.env".into(), "gone".into()];
    let Err(SpecError::Watch { index, path, .. }) = r.clone().build() else { panic!("gone") };
    assert_eq!((index, path), (1, PathBuf::from("gone")));
    r.watch.pop();
    let watch = r.build().unwrap().watch.unwrap();
    assert_eq!(watch.paths, [dir.path().join("a.env")], "absolute, against the base");
}

#[test]
fn the_run_names_its_socket_after_the_instance_and_checks_its_log_dir() {
    let spec = run_request().build(Vec::new()).unwrap();
    assert_eq!(spec.output, OutputMode::Headless(LogFormat::Json));
    let socket = spec.control.unwrap();
    assert_eq!(socket.file_name(), Some("shop.sock".as_ref()));
    let off = RunRequest { control: Control::Off, ..run_request() };
    assert!(off.build(Vec::new()).unwrap().control.is_none());
    let bad = RunRequest { instance: "a/b".into(), ..run_request() };
    assert!(matches!(bad.build(Vec::new()), Err(SpecError::Instance { .. })));
    let logs = RunRequest { log_dir: Some("logs".into()), ..run_request() };
    let logs = logs.build(Vec::new()).unwrap().log_files.unwrap();
    assert!(logs.dir.is_absolute() && logs.keep == 7);
    for (dir, keep) in [("", 7), ("logs", values::MAX_LOG_KEEP + 1)] {
        let r = RunRequest { log_dir: Some(dir.into()), log_keep: keep, ..run_request() };
        assert!(matches!(r.build(Vec::new()), Err(SpecError::LogDir { .. })), "{dir} {keep}");
    }
}

#[test]
fn the_first_source_that_sets_an_option_wins_and_the_rest_keep_the_defaults() {
    let typed = GroupOptions { restart: Some(RestartPolicy::Never), ..GroupOptions::default() };
    let group = GroupOptions {
        restart: Some(RestartPolicy::OnFailure),
        workers: Some(3),
        heartbeat_timeout: Some(None),
        ..GroupOptions::default()
    };
    let defaults = GroupOptions {
        workers: Some(5),
        heartbeat_timeout: Some(Some(Duration::from_secs(9))),
        pty: Some(true),
        ..GroupOptions::default()
    };
    let merged = typed.over(&group.over(&defaults));
    let got = (merged.restart, merged.workers, merged.heartbeat_timeout, merged.pty);
    assert_eq!(got, (Some(RestartPolicy::Never), Some(3), Some(None), Some(true)));
    let mut r = request();
    r.policy.heartbeat_timeout = Some(Duration::from_secs(1));
    merged.apply_to(&mut r);
    assert!(r.restart_chosen && r.pty);
    assert_eq!((r.workers, r.policy.heartbeat_timeout), (Some(3), None), "off undoes a value");
    let mut untouched = request();
    GroupOptions::default().apply_to(&mut untouched);
    assert_eq!(format!("{untouched:?}"), format!("{:?}", request()));
}
