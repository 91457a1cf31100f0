#![allow(clippy::unwrap_used, reason = "a panic is how a test fails")]

use std::path::Path;
use std::time::Duration;

use super::*;
use crate::config::Sched;
use crate::core::{Backoff, RestartPolicy};
use crate::signal::Signal;
use crate::spec::Switch;

fn ok(text: &str) -> ConfigFile {
    parse(text, Path::new("/etc/shop")).unwrap_or_else(|e| panic!("{text}\n{e:?}"))
}

fn err(text: &str) -> String {
    let e = parse(text, Path::new("/etc/shop")).expect_err(text);
    e.render(Path::new("shop.toml"))
}

const WEB: &str = "[group.web]\ncommand = [\"node\", \"server.js\"]\n";

#[test]
fn the_spec_example_reads_as_written() {
    let file = ok(r#"
instance = "shop"
log-dir = "/var/log/shop"
log-keep = 3

[defaults]
kill-timeout = "10s"

[group.web]
command = ["node", "server.js"]
workers = 4
listen = ["127.0.0.1:3000"]
wait-ready = true
env = { NODE_ENV = "production", PORT = 3000 }

[group.queue]
command = "python3 worker.py --queue jobs"
workers = 2
restart = "on-failure"
cwd = "services/queue"
"#);
    assert_eq!(file.instance.as_deref(), Some("shop"));
    assert_eq!(file.log_dir.as_deref(), Some(Path::new("/var/log/shop")));
    assert_eq!(file.log_keep, Some(3));
    assert_eq!(file.defaults.options.kill_timeout, Some(Duration::from_secs(10)));
    let names: Vec<&str> = file.groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(names, ["web", "queue"], "file order");
    let web = &file.groups[0];
    assert_eq!(web.command, FileCommand::Argv(vec!["node".into(), "server.js".into()]));
    assert_eq!(web.command_at, Pos { line: 10, column: 11 });
    assert_eq!(web.layer.options.workers, Some(4));
    assert_eq!(web.layer.options.wait_ready, Some(true));
    assert_eq!(web.layer.options.listen.as_ref().map(Vec::len), Some(1));
    let env: Vec<(String, String)> = web
        .layer
        .env
        .iter()
        .map(|(k, v)| (k.to_string_lossy().into(), v.to_string_lossy().into()))
        .collect();
    assert_eq!(env, [("NODE_ENV".into(), "production".into()), ("PORT".into(), "3000".into())]);
    let queue = &file.groups[1];
    assert_eq!(queue.command, FileCommand::Shell("python3 worker.py --queue jobs".into()));
    assert_eq!(queue.layer.options.restart, Some(RestartPolicy::OnFailure));
    let (cwd, _) = queue.layer.cwd.as_ref().unwrap();
    assert_eq!(cwd, Path::new("/etc/shop/services/queue"), "relative to the file");
}

#[test]
fn every_group_key_is_read() {
    let file = ok(r#"
[group.all]
command = ["x"]
workers = 3
listen = "8080"
restart = "never"
backoff = 0
min-uptime = "1m"
max-restarts = 5
restart-window = "2m"
stop-signal = 2
kill-timeout = "0s"
cwd = "/srv"
env = { A = "1" }
wait-ready = true
ready-timeout = "5s"
reload-settle = "0"
heartbeat-timeout = "3s"
max-memory = "512MiB"
node-ipc = true
node-cluster = "off"
node-cluster-sched = "rr"
share-binds = false
readiness-probe = { http = "http://127.0.0.1:80{slot}/healthz", period = "2s", timeout = "500ms", initial-delay = "1s", failure-threshold = 4, success-threshold = 2 }
liveness-probe = { tcp = "127.0.0.1:5432" }
startup-probe = { exec = ["pg_isready", "-q"] }
pty = true
watch = ["src", "package.json"]
watch-ignore = "*.log"
watch-debounce = "1s"
env-file = [".env", "/etc/app.env"]
schedule = "*/5 * * * *"
reload-schedule = "@daily"
schedule-tz = "UTC"
depends-on = { db = "ready" }

[group.db]
command = ["db"]
"#);
    let l = &file.groups[0].layer;
    let db = crate::core::Dependency { group: 1, condition: crate::core::Condition::Ready };
    assert_eq!(file.groups[0].depends_on.iter().map(|d| d.dependency).collect::<Vec<_>>(), [db]);
    assert_eq!(l.options.workers, Some(3));
    assert_eq!(l.options.listen.as_ref().unwrap()[0].text, "8080");
    assert_eq!(l.options.restart, Some(RestartPolicy::Never));
    assert_eq!(l.options.backoff, Some(Backoff { first: Duration::ZERO, max: Duration::ZERO }));
    assert_eq!(l.options.min_uptime, Some(Duration::from_mins(1)));
    assert_eq!(l.options.max_restarts, Some(5));
    assert_eq!(l.options.restart_window, Some(Duration::from_mins(2)));
    assert_eq!(l.options.stop_signal, Some(Signal::INT));
    assert_eq!(l.options.kill_timeout, Some(Duration::ZERO));
    assert_eq!(l.cwd.as_ref().map(|c| c.0.clone()), Some("/srv".into()), "absolute as given");
    assert_eq!(l.options.wait_ready, Some(true));
    assert_eq!(l.options.ready_timeout, Some(Duration::from_secs(5)));
    assert_eq!(l.options.reload_settle, Some(Duration::ZERO));
    assert_eq!(l.options.heartbeat_timeout, Some(Some(Duration::from_secs(3))));
    assert_eq!(l.options.max_memory, Some(Some(512 * 1024 * 1024)));
    assert_eq!(l.options.node_ipc, Some(Switch::On));
    assert_eq!(l.options.node_cluster, Some(Switch::Off));
    assert_eq!(l.options.node_cluster_sched, Some(Sched::RoundRobin));
    assert_eq!(l.options.share_binds, Some(false));
    let files = l.env_file.as_ref().map(|f| f.0.clone());
    let want: Vec<std::path::PathBuf> = vec!["/etc/shop/.env".into(), "/etc/app.env".into()];
    assert_eq!(files, Some(want), "relative to the file");
    assert_eq!(l.schedule.as_ref().map(|s| s.0.text.as_str()), Some("*/5 * * * *"));
    assert_eq!(l.reload_schedule.as_ref().map(|s| s.0.text.as_str()), Some("@daily"));
    assert_eq!(l.options.schedule_tz, Some(crate::schedule::Zone::Utc));
    assert_eq!(l.options.pty, Some(true));
    let watch: Vec<_> = l.watch.as_ref().unwrap().iter().map(|(p, _)| p.clone()).collect();
    assert_eq!(watch, [Path::new("/etc/shop/src"), Path::new("/etc/shop/package.json")]);
    assert_eq!(l.options.watch_ignore.as_deref(), Some(&["*.log".to_string()][..]));
    assert_eq!(l.options.watch_debounce, Some(Duration::from_secs(1)));
    let readiness = l.options.readiness_probe.as_ref().unwrap();
    let target = crate::probe_spec::ProbeTarget::Http("http://127.0.0.1:80{slot}/healthz".into());
    assert_eq!(readiness.target, target);
    let timing = crate::core::ProbeTiming {
        period: Duration::from_secs(2),
        timeout: Duration::from_millis(500),
        initial_delay: Duration::from_secs(1),
        failure_threshold: 4,
        success_threshold: 2,
    };
    assert_eq!(readiness.timing, timing);
    let liveness = l.options.liveness_probe.as_ref().unwrap();
    assert_eq!(liveness.target, crate::probe_spec::ProbeTarget::Tcp("127.0.0.1:5432".into()));
    assert_eq!(liveness.timing, crate::core::ProbeTiming::default());
    let argv = vec!["pg_isready".to_string(), "-q".to_string()];
    let startup = l.options.startup_probe.as_ref().unwrap();
    assert_eq!(startup.target, crate::probe_spec::ProbeTarget::Exec(argv));
    // Every key the reference lists is one this reader takes.
    let listed = GROUP_KEYS.len();
    assert_eq!(listed, 33);
}

#[test]
fn off_undoes_a_default() {
    let file = ok(&format!(
        "[defaults]\nheartbeat-timeout = \"5s\"\nmax-memory = \"1G\"\n{WEB}\
         heartbeat-timeout = \"off\"\nmax-memory = \"off\"\n"
    ));
    assert_eq!(file.defaults.options.heartbeat_timeout, Some(Some(Duration::from_secs(5))));
    assert_eq!(file.groups[0].layer.options.heartbeat_timeout, Some(None));
    assert_eq!(file.groups[0].layer.options.max_memory, Some(None));
}

/// Every kind of mistake: one line, `file:line:column: key: what is expected`.
#[test]
fn every_mistake_is_one_line_with_its_place_and_key() {
    let cases: &[(&str, &str)] = &[
        (
            "[group.web]\ncommand = [\"x\"]\nworkers = \"four\"\n",
            "shop.toml:3:11: group.web.workers: expected an integer 1..=4096, got \"four\"",
        ),
        (
            "[group.web]\ncommand = [\"x\"]\nworkers = 0\n",
            "shop.toml:3:11: group.web.workers: expected an integer 1..=4096, got 0",
        ),
        (
            "[group.web]\ncommand = [\"x\"]\nwrkers = 4\n",
            "shop.toml:3:1: group.web.wrkers: unknown key: did you mean 'workers'?",
        ),
        (
            "[group.web]\ncommand = [\"x\"]\nfrobnicate = 4\n",
            "shop.toml:3:1: group.web.frobnicate: unknown key: expected one of command, workers,",
        ),
        ("loglevel = 3\n", "shop.toml:1:1: loglevel: unknown key: expected instance, log-dir"),
        ("[group.web]\nworkers = 4\n", "shop.toml:1:8: group.web: missing key 'command'"),
        (
            "[group.web]\ncommand = [\"x\"]\n[group.web]\ncommand = [\"y\"]\n",
            "shop.toml:3:8: invalid TOML: duplicate key",
        ),
        ("workers = = 3\n", "shop.toml:1:11: invalid TOML:"),
        (
            "[group.web]\ncommand = []\n",
            "shop.toml:2:11: group.web.command: expected an array of strings",
        ),
        (
            "[group.web]\ncommand = [\"x\", 3]\n",
            "shop.toml:2:17: group.web.command.1: expected a string, got 3",
        ),
        ("[group.web]\ncommand = 3\n", "shop.toml:2:11: group.web.command: expected an array"),
        (
            "[group.web]\ncommand = [\"x\"]\nkill-timeout = 5\n",
            "shop.toml:3:16: group.web.kill-timeout: expected a duration string like \"250ms\"",
        ),
        (
            "[group.web]\ncommand = [\"x\"]\nkill-timeout = \"5 parsecs\"\n",
            "shop.toml:3:16: group.web.kill-timeout: expected a duration up to 1 year, like 250ms, 5s or \
             1m30s, got \"5 parsecs\"",
        ),
        (
            "[group.web]\ncommand = [\"x\"]\nrestart = \"sometimes\"\n",
            "shop.toml:3:11: group.web.restart: expected one of \"always\", \"on-failure\", \
             \"never\", got \"sometimes\"",
        ),
        (
            "[group.web]\ncommand = [\"x\"]\nlisten = [\"99999\"]\n",
            "shop.toml:3:11: group.web.listen.0: expected [NAME=]ADDR",
        ),
        (
            "[group.web]\ncommand = [\"x\"]\nwait-ready = \"yes\"\n",
            "shop.toml:3:14: group.web.wait-ready: expected true or false, got \"yes\"",
        ),
        (
            "[group.web]\ncommand = [\"x\"]\nstop-signal = \"SIGNOPE\"\n",
            "shop.toml:3:15: group.web.stop-signal: expected a signal name or number",
        ),
        (
            "[group.web]\ncommand = [\"x\"]\nmax-memory = \"lots\"\n",
            "shop.toml:3:14: group.web.max-memory: expected a size above 0",
        ),
        (
            "[group.web]\ncommand = [\"x\"]\nbackoff = \"0..30s\"\n",
            "shop.toml:3:11: group.web.backoff: a range must start above 0",
        ),
        (
            "[group.web]\ncommand = [\"x\"]\nenv = { A = [1] }\n",
            "shop.toml:3:13: group.web.env.A: expected a string, number or boolean, got [1]",
        ),
        ("[group.\"a.b\"]\ncommand = [\"x\"]\n", "shop.toml:1:8: group.a.b: bad group name"),
        (
            "[group.web]\ncommand = [\"x\"]\nname = \"api\"\n",
            "shop.toml:3:1: group.web.name: unknown key:",
        ),
        (
            "[defaults]\ncommand = [\"x\"]\n",
            "shop.toml:2:1: defaults.command: 'command' belongs in a [group.NAME] table",
        ),
        ("instance = \"my shop\"\n", "shop.toml:1:12: instance: expected letters, digits"),
        ("log-keep = -1\n", "shop.toml:1:12: log-keep: expected an integer 0..=10000, got -1"),
        ("log-format = \"xml\"\n", "shop.toml:1:14: log-format: expected one of \"text\""),
        ("group = 3\n", "shop.toml:1:9: group: expected a table, got 3"),
        ("[group]\n", "shop.toml:1:1: group: expected at least one [group.NAME] table"),
        ("instance = \"shop\"\n", "shop.toml: group: no groups: expected at least one"),
        ("[defaults]\nworkers = 2\n", "shop.toml: group: no groups"),
    ];
    for (text, expected) in cases {
        let got = err(text);
        assert!(got.starts_with(expected), "{text}\n got: {got}\nwant: {expected}");
        assert!(!got.contains('\n'), "one line: {got:?}");
    }
}

#[test]
fn a_value_is_shown_short() {
    let long = "x".repeat(500);
    let got = err(&format!("{WEB}workers = \"{long}\"\n"));
    assert!(got.len() < 200, "{got}");
    assert!(got.ends_with('…'), "{got}");
}

#[test]
fn columns_count_characters_not_bytes() {
    let got = err("# é\n[group.web]\ncommand = [\"x\"]\nenv = { \"é\" = [1] }\n");
    assert!(got.starts_with("shop.toml:4:15: group.web.env.é:"), "{got}");
    assert_eq!(position("ab\ncé", 5), Pos { line: 2, column: 3 });
}

#[test]
fn too_many_groups_are_refused() {
    let text: String = (0..=MAX_GROUPS).fold(String::new(), |mut text, i| {
        use std::fmt::Write as _;
        let _ = write!(text, "[group.g{i}]\ncommand = \"x\"\n");
        text
    });
    assert!(err(&text).contains("too many groups: at most 256"));
}

#[test]
fn strip_ansi_is_a_top_level_switch() {
    assert_eq!(ok(&format!("strip-ansi = true\n{WEB}")).strip_ansi, Some(true));
    assert_eq!(ok(WEB).strip_ansi, None);
    let wrong = err(&format!("strip-ansi = \"yes\"\n{WEB}"));
    assert!(wrong.starts_with("shop.toml:1:14: strip-ansi: expected true or false"), "{wrong}");
}
