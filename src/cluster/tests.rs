//! The builder without running anything: what spec it builds, what it refuses, and who is a
//! worker.

use std::ffi::{OsStr, OsString};
use std::time::Duration;

use super::{Backoff, CLUSTER_VAR, Cluster, ClusterError, LogFormat, RestartPolicy, is_worker_of};
use crate::config::{ListenAddr, OutputMode};
use crate::schedule::Zone;

#[test]
fn the_spec_is_one_group_that_runs_this_program() -> Result<(), ClusterError> {
    let spec = Cluster::new("web")
        .workers(3)
        .listen("127.0.0.1:0")?
        .listen("api=unix:/tmp/corral-cluster-test.sock")?
        .args(["--serve", "fast"])
        .env("MODE", "test")
        .env(CLUSTER_VAR, "not this")
        .restart(RestartPolicy::OnFailure)
        .backoff(Backoff::ZERO)
        .wait_ready(true)
        .dashboard(false)
        .log_format(LogFormat::Json)
        .verbosity(1)
        .log_dir("logs", 3)
        .instance("shop")
        .control("/tmp/corral-cluster-test/shop.sock")
        .spec()?;
    assert_eq!(spec.instance, "shop");
    assert_eq!(spec.control, Some("/tmp/corral-cluster-test/shop.sock".into()));
    assert!(Cluster::new("web").no_control().spec()?.control.is_none());
    let logs = spec.log_files.as_ref().map(|l| (l.dir.is_absolute(), l.keep));
    assert_eq!(logs, Some((true, 3)), "the log directory made absolute");
    assert_eq!(spec.output, OutputMode::Headless(LogFormat::Json));
    assert_eq!(spec.verbosity, 1);
    let [group] = spec.groups.as_slice() else { panic!("one group: {spec:?}") };
    assert_eq!((group.name.as_str(), group.workers, group.wait_ready), ("web", 3, true));
    assert_eq!(group.policy.restart, RestartPolicy::OnFailure);
    let names: Vec<&str> = group.listen.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["listen1", "api"]);
    assert_eq!(group.listen[0].addr, ListenAddr::Tcp("127.0.0.1:0".parse().expect("addr")));
    let exe = std::env::current_exe().expect("the test's own executable");
    assert_eq!(group.command.program, exe);
    assert_eq!(group.command.argv[1..], [OsString::from("--serve"), OsString::from("fast")]);
    // The marker comes last, so it wins over anything of the same name.
    let last = group.env.last().map(|(k, v)| (k.as_os_str(), v.as_os_str()));
    assert_eq!(last, Some((OsStr::new(CLUSTER_VAR), OsStr::new("web"))));
    assert!(group.env.contains(&("MODE".into(), "test".into())));
    Ok(())
}

#[test]
fn by_default_the_workers_get_this_programs_arguments_and_one_slot_per_cpu()
-> Result<(), ClusterError> {
    let spec = Cluster::new("web").dashboard(true).spec()?;
    assert_eq!(spec.output, OutputMode::Dashboard);
    assert_eq!(spec.instance, "web", "named after the cluster");
    let socket = spec.control.as_ref().and_then(|p| p.file_name()).map(OsStr::to_os_string);
    assert_eq!(socket, Some("web.sock".into()), "{:?}", spec.control);
    let group = &spec.groups[0];
    let own: Vec<OsString> = std::env::args_os().skip(1).collect();
    assert_eq!(group.command.argv[1..], own[..]);
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    assert_eq!(group.workers as usize, cpus.min(4096));
    assert!(group.listen.is_empty());
    Ok(())
}

#[test]
fn bad_settings_are_errors_that_name_them() {
    let message = |r: Result<Cluster, ClusterError>| {
        r.and_then(|c| c.spec().map(|_| ())).map_or_else(|e| e.to_string(), |()| String::new())
    };
    let web = || Ok(Cluster::new("web"));
    let cases: Vec<(Result<Cluster, ClusterError>, &str)> = vec![
        (Ok(Cluster::new("web.1")), "cluster name 'web.1': expected letters"),
        (Ok(Cluster::new("")), "cluster name '': expected"),
        (web().map(|c| c.instance("a/b")), "instance 'a/b': expected letters"),
        (web().map(|c| c.workers(0)), "workers 0: expected a whole number from 1 to 4096"),
        (web().map(|c| c.workers(5000)), "workers 5000"),
        (Cluster::new("web").listen("port 80"), "listen 'port 80': expected [NAME=]ADDR"),
        (
            Cluster::new("web").listen("a=80").and_then(|c| c.listen("a=81")),
            "listen 'a=81': the name 'a' is already used",
        ),
        (
            web()
                .map(|c| c.backoff(Backoff { first: Duration::from_secs(2), max: Duration::ZERO })),
            "backoff: expected a first delay not above the maximum",
        ),
        (
            web()
                .map(|c| c.backoff(Backoff { first: Duration::ZERO, max: Duration::from_secs(1) })),
            "backoff: expected a first delay above 0",
        ),
        (web().map(|c| c.max_restarts(3, Duration::ZERO)), "restart window: expected"),
        (web().map(|c| c.ready_timeout(Duration::ZERO)), "ready timeout: expected"),
        (web().map(|c| c.heartbeat_timeout(Duration::ZERO)), "heartbeat timeout: expected"),
        (web().map(|c| c.max_memory(0)), "max memory: expected a size above 0"),
        (web().map(|c| c.env("A=B", "c")), "env 'A=B': expected"),
        (web().map(|c| c.env("", "c")), "env '': expected"),
        (web().map(|c| c.args(["a\0b"])), "argument 'a\0b' contains a NUL byte"),
        (web().map(|c| c.cwd("/nonexistent/corral")), "cwd '/nonexistent/corral': No such file"),
        (web().map(|c| c.cwd("/proc/self/stat")), "cwd '/proc/self/stat': Not a directory"),
        (web().map(|c| c.log_dir("", 7)), "log dir '': expected a directory"),
        (web().map(|c| c.log_dir("logs", 10_001)), "log dir 'logs': expected at most 10000"),
    ];
    for (cluster, expected) in cases {
        let got = message(cluster);
        assert!(got.starts_with(expected), "{got:?} should start with {expected:?}");
    }
}

#[test]
fn the_command_lines_other_options_reach_the_spec() -> Result<(), ClusterError> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let env = dir.path().join("app.env");
    std::fs::write(&env, "A=1\n").expect("the env file is written");
    let spec = Cluster::new("jobs")
        .schedule("@hourly")?
        .reload_schedule("0 4 * * *")?
        .schedule_utc(true)
        .reload_settle(Duration::from_secs(5))
        .env_file(&env)
        .readiness_probe("tcp:127.0.0.1:1")?
        .liveness_probe("exec:true")?
        .startup_probe("http://127.0.0.1:1/up")?
        .pty(true)
        .share_binds(true)
        .watch(dir.path())
        .watch_ignore("*.log")?
        .watch_debounce(Duration::from_secs(1))
        .metrics("9464")?
        .strip_ansi(true)
        .dashboard(false)
        .spec()?;
    assert_eq!(spec.metrics, Some("127.0.0.1:9464".parse().expect("addr")));
    assert!(spec.strip_ansi);
    let group = &spec.groups[0];
    // A schedule runs one worker and does not restart it, as on the command line.
    assert_eq!((group.workers, group.policy.restart), (1, RestartPolicy::Never));
    let zones = [&group.schedule, &group.reload_schedule].map(|s| s.as_ref().map(|s| s.zone));
    assert_eq!(zones, [Some(Zone::Utc); 2]);
    assert_eq!(group.policy.reload_settle, Duration::from_secs(5));
    assert_eq!(group.env_files, [env]);
    let probes = &group.probes;
    assert!(probes.readiness.is_some() && probes.liveness.is_some() && probes.startup.is_some());
    assert!(group.wait_ready, "a readiness probe is waited for");
    assert!(group.pty && group.share_binds && !group.node_ipc && !group.node_cluster);
    let watch = group.watch.as_ref().expect("a watch");
    assert_eq!(watch.paths, [dir.path().to_path_buf()]);
    assert_eq!(
        (watch.ignore.as_slice(), watch.debounce),
        (&["*.log".to_string()][..], Duration::from_secs(1))
    );
    Ok(())
}

#[test]
fn the_new_options_refuse_what_the_command_line_refuses() {
    let message = |r: Result<Cluster, ClusterError>| {
        r.and_then(|c| c.check()).map_or_else(|e| e.to_string(), |()| String::new())
    };
    let web = || Cluster::new("web");
    let cases: Vec<(Result<Cluster, ClusterError>, &str)> = vec![
        (
            web().restart(RestartPolicy::Always).schedule("@daily"),
            "restart: expected Never or OnFailure",
        ),
        (web().schedule("every day"), "schedule 'every day': "),
        (web().reload_schedule("61 * * * *"), "schedule '61 * * * *': "),
        (web().metrics("port 9"), "metrics 'port 9': expected PORT"),
        (web().readiness_probe("ftp://x"), "readiness probe 'ftp://x': expected http://"),
        (web().watch_ignore(""), "watch ignore '': expected a glob"),
        (Ok(web().watch("/nonexistent/corral")), "watch '/nonexistent/corral': No such file"),
        (Ok(web().env_file("/nonexistent/corral.env")), "cannot read env file"),
        (Ok(web().kill_timeout(Duration::MAX)), "kill timeout: expected a duration up to 1 year"),
        (Ok(web().reload_settle(Duration::MAX)), "reload settle: expected a duration up to 1 year"),
    ];
    for (cluster, expected) in cases {
        let got = message(cluster);
        assert!(got.starts_with(expected), "{got:?} should start with {expected:?}");
    }
}

#[test]
fn a_worker_has_the_marker_and_its_primary_as_parent() {
    let web = OsStr::new("web");
    let pid = |p: &str| Some(OsString::from(p));
    // What a Cluster's worker sees: the marker and CORRAL_PRIMARY_PID = its parent.
    assert!(is_worker_of("web", Some(web), pid("41").as_deref(), 41));
    // A worker's own child, or a program it started: the variables are inherited, the
    // parent is not the primary.
    assert!(!is_worker_of("web", Some(web), pid("41").as_deref(), 77));
    // A program that a plain `corral -- prog` runs wants to be a primary of its own.
    assert!(!is_worker_of("web", None, pid("41").as_deref(), 41));
    // Another cluster's marker, and no or garbled pid.
    assert!(!is_worker_of("jobs", Some(web), pid("41").as_deref(), 41));
    assert!(!is_worker_of("web", Some(web), None, 41));
    assert!(!is_worker_of("web", Some(web), pid("41x").as_deref(), 41));
    // This test process was started by cargo, not by a Cluster.
    assert!(Cluster::new("web").is_primary());
}
