//! A whole application from one file (docs/application.md): groups that wait for others
//! start when what they need is there, a failure that holds a group is said once and makes
//! `ctl status` and `/readyz` say so, cycles are refused, and a shutdown stops dependents
//! before what they depend on.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::util::{Corral, DEADLINE, corral_bin, free_port, named, test_worker, wait_until};

fn toml_array(words: &[String]) -> String {
    serde_json::to_string(words).expect("strings serialise")
}

fn write(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("app.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

fn ts(event: &Value) -> std::time::SystemTime {
    let text = event["ts"].as_str().unwrap_or_else(|| panic!("no ts: {event}"));
    humantime::parse_rfc3339(text).unwrap_or_else(|e| panic!("ts {text}: {e}"))
}

fn first<'a>(events: &'a [Value], name: &str, group: &str) -> Option<&'a Value> {
    events.iter().find(|e| e["event"] == name && e["group"] == group)
}

/// db says `ready` after a gate file appears; migrate runs once after db is ready; web
/// starts after migrate completed; `other` needs nothing.
fn app(dir: &Path, migrate_exit: u8) -> (PathBuf, PathBuf) {
    let gate = dir.join("db-may-be-ready");
    let gate_arg = format!("wait:{}", gate.display());
    let db = toml_array(&test_worker(&["--send", &gate_arg, "--send", "\"ready\""]));
    let migrate_code = migrate_exit.to_string();
    let migrate = toml_array(&test_worker(&["--after", "300ms", "--exit", &migrate_code]));
    let plain = toml_array(&test_worker(&[]));
    let text = format!(
        "[defaults]\nworkers = 1\nkill-timeout = \"5s\"\n\n\
         [group.db]\ncommand = {db}\nwait-ready = true\nready-timeout = \"1m\"\n\n\
         [group.migrate]\ncommand = {migrate}\nrestart = \"never\"\n\
         depends-on = {{ db = \"ready\" }}\n\n\
         [group.web]\ncommand = {plain}\nworkers = 2\n\
         depends-on = {{ migrate = \"completed\", db = \"ready\" }}\n\n\
         [group.other]\ncommand = {plain}\n"
    );
    (write(dir, &text), gate)
}

/// corral on `file`, serving `/metrics`, `/livez` and `/readyz` on a free port.
fn start_with_metrics(file: &Path) -> (Corral, u16) {
    let port = free_port();
    let metrics = format!("127.0.0.1:{port}");
    let args = ["--config".as_ref(), file.as_os_str(), "--metrics".as_ref(), metrics.as_ref()];
    (Corral::start(&args), port)
}

#[test]
fn a_db_migrate_web_file_starts_each_after_what_it_needs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (file, gate) = app(dir.path(), 0);
    let mut corral = Corral::start(&["--config".as_ref(), file.as_os_str()]);
    corral.wait_for("db and other spawned", DEADLINE, |events| {
        (first(events, "spawned", "db").is_some() && first(events, "spawned", "other").is_some())
            .then_some(())
    });
    let events = corral.events();
    let waiting = named(&events, "waiting");
    assert_eq!(waiting.len(), 2, "{}", corral.dump());
    assert_eq!(waiting[0]["group"], "migrate");
    assert_eq!(waiting[0]["for"], serde_json::json!(["db ready"]));
    assert_eq!(waiting[1]["for"], serde_json::json!(["migrate completed", "db ready"]));
    let status = corral.ctl(&["status", "--json"]);
    let workers: Value = serde_json::from_slice(&status.stdout).expect("status JSON");
    let web = workers.as_array().into_iter().flatten().find(|w| w["id"] == "web.1");
    let web = web.unwrap_or_else(|| panic!("no web.1 in {workers}"));
    assert_eq!(
        (web["state"].as_str(), &web["waiting_for"]),
        (Some("waiting"), &serde_json::json!(["migrate completed", "db ready"]))
    );
    assert_eq!(status.status.code(), Some(1), "not healthy while web waits");
    let reload = corral.ctl(&["reload", "web"]);
    let said = String::from_utf8_lossy(&reload.stderr);
    assert_eq!(reload.status.code(), Some(1), "{said}");
    assert!(said.contains("web waits for the groups it depends on"), "{said}");
    assert!(first(&events, "spawned", "migrate").is_none(), "db is not ready yet");

    std::fs::write(&gate, b"").expect("open the gate");
    let events = corral.wait_for("web spawned", DEADLINE, |events| {
        (named(events, "spawned").iter().filter(|e| e["group"] == "web").count() == 2)
            .then(|| events.to_vec())
    });
    let db_ready = ts(first(&events, "ready", "db").expect("db ready"));
    let migrate_spawned = ts(first(&events, "spawned", "migrate").expect("migrate spawned"));
    let migrate_done = first(&events, "exited", "migrate").expect("migrate exited");
    assert_eq!(migrate_done["code"], 0);
    let web_spawned = ts(first(&events, "spawned", "web").expect("web spawned"));
    assert!(db_ready <= migrate_spawned, "migrate after db ready\n{}", corral.dump());
    assert!(ts(migrate_done) <= web_spawned, "web after migrate completed\n{}", corral.dump());
    let healthy = wait_until(DEADLINE, || corral.ctl(&["status", "-q"]).status.code() == Some(0));
    assert!(healthy, "a finished migration and running workers are healthy\n{}", corral.dump());
    corral.signal(libc::SIGTERM);
    assert_eq!(corral.wait_exit(DEADLINE).code(), Some(0), "{}", corral.dump());
    corral.assert_nothing_left();
}

#[test]
fn a_failed_migration_holds_web_not_other_and_health_names_web() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (file, gate) = app(dir.path(), 3);
    std::fs::write(&gate, b"").expect("db ready at once");
    let (mut corral, port) = start_with_metrics(&file);
    let blocked = corral.wait_for("web blocked", DEADLINE, |events| {
        named(events, "waiting").into_iter().find(|e| e["blocked"].is_string()).cloned()
    });
    assert_eq!(blocked["group"], "web");
    assert_eq!(blocked["blocked"], "migrate.1 ended (exit 3) and will not run again");
    assert!(corral.stderr().contains("web waits for migrate completed"), "{}", corral.stderr());
    let events = corral.events();
    assert!(first(&events, "spawned", "other").is_some());
    assert!(first(&events, "spawned", "web").is_none());

    let out = corral.ctl(&["status"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("web waits for migrate completed, which cannot happen now"),
        "{stderr}"
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("waits for migrate completed"), "the STATUS column says it: {table}");
    let quiet = corral.ctl(&["status", "--quiet"]);
    assert_eq!((quiet.status.code(), quiet.stdout.len(), quiet.stderr.len()), (Some(1), 0, 0));
    let (status, body) = crate::metrics::get(port, "/readyz").expect("GET /readyz");
    assert!(status.contains("503"), "{status}");
    assert!(body.contains("web waits for migrate completed"), "{body}");
    assert!(body.contains("migrate.1 ended (exit 3)"), "{body}");
    let (status, body) = crate::metrics::get(port, "/livez").expect("GET /livez");
    assert_eq!((status.contains("200"), body.as_str()), (true, "ok\n"));

    // Said once, however long it waits.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let said =
        named(&corral.events(), "waiting").iter().filter(|e| e["blocked"].is_string()).count();
    assert_eq!(said, 1, "{}", corral.dump());
    corral.signal(libc::SIGTERM);
    assert_eq!(corral.wait_exit(DEADLINE).code(), Some(0), "{}", corral.dump());
    let out = corral.ctl(&["status"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "nobody to ask: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    corral.assert_nothing_left();
}

#[test]
fn readyz_turns_200_once_every_group_is_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (file, gate) = app(dir.path(), 0);
    let (mut corral, port) = start_with_metrics(&file);
    corral.wait_spawned(2);
    let (status, body) = crate::metrics::get(port, "/readyz").expect("GET /readyz");
    assert!(status.contains("503") && body.contains("db.1 is starting"), "{status}\n{body}");
    std::fs::write(&gate, b"").expect("open the gate");
    let ready = wait_until(DEADLINE, || {
        crate::metrics::get(port, "/readyz").is_ok_and(|(s, b)| s.contains("200") && b == "ready\n")
    });
    assert!(ready, "{}", corral.dump());
    corral.signal(libc::SIGTERM);
    assert_eq!(corral.wait_exit(DEADLINE).code(), Some(0), "{}", corral.dump());
}

#[test]
fn headless_corral_whose_waiting_group_can_never_start_exits_1() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fail = toml_array(&test_worker(&["--exit", "1"]));
    let plain = toml_array(&test_worker(&[]));
    let text = format!(
        "[group.migrate]\ncommand = {fail}\nrestart = \"never\"\nworkers = 1\n\n\
         [group.web]\ncommand = {plain}\nworkers = 1\ndepends-on = {{ migrate = \"completed\" }}\n"
    );
    let file = write(dir.path(), &text);
    let mut corral = Corral::start(&["--config".as_ref(), file.as_os_str()]);
    assert_eq!(corral.wait_exit(DEADLINE).code(), Some(1), "{}", corral.dump());
    assert!(first(&corral.events(), "spawned", "web").is_none());
}

#[test]
fn shutdown_stops_dependents_before_what_they_need() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plain = toml_array(&test_worker(&[]));
    // Each reports SIGTERM and takes a moment to go, so an early stop of db would show.
    let slow = toml_array(&test_worker(&["--term-exit", "0"]));
    let text = format!(
        "[defaults]\nworkers = 2\n\n[group.db]\ncommand = {slow}\n\n\
         [group.api]\ncommand = {slow}\ndepends-on = {{ db = \"started\" }}\n\n\
         [group.web]\ncommand = {plain}\ndepends-on = {{ api = \"started\" }}\n"
    );
    let file = write(dir.path(), &text);
    let mut corral = Corral::start(&["--config".as_ref(), file.as_os_str()]);
    corral.wait_spawned(6);
    corral.signal(libc::SIGTERM);
    assert_eq!(corral.wait_exit(DEADLINE).code(), Some(0), "{}", corral.dump());
    let events = corral.events();
    let exits: Vec<&str> =
        named(&events, "exited").iter().map(|e| e["group"].as_str().unwrap_or_default()).collect();
    assert_eq!(exits, ["web", "web", "api", "api", "db", "db"], "{}", corral.dump());
    corral.assert_nothing_left();
}

#[test]
fn a_cycle_or_a_dependency_on_nothing_is_one_line_and_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plain = toml_array(&test_worker(&[]));
    let cases = [
        (
            format!(
                "[group.a]\ncommand = {plain}\ndepends-on = {{ b = \"ready\" }}\n\
                 [group.b]\ncommand = {plain}\ndepends-on = {{ c = \"started\" }}\n\
                 [group.c]\ncommand = {plain}\ndepends-on = {{ a = \"ready\" }}\n"
            ),
            ":3:16: group.a.depends-on.b: dependency cycle: a → b → c → a",
        ),
        (
            format!("[group.a]\ncommand = {plain}\ndepends-on = {{ web = \"ready\" }}\n"),
            ":3:16: group.a.depends-on.web: no group named 'web'; the groups are a",
        ),
        (
            format!(
                "[group.a]\ncommand = {plain}\ndepends-on = {{ b = \"healthy\" }}\n\
                 [group.b]\ncommand = {plain}\n"
            ),
            ":3:20: group.a.depends-on.b: unknown condition \"healthy\"",
        ),
    ];
    for (text, expected) in cases {
        let file = write(dir.path(), &text);
        for args in [
            vec!["--config".as_ref(), file.as_os_str()],
            vec!["check-config".as_ref(), file.as_os_str()],
        ] {
            let out =
                std::process::Command::new(corral_bin()).args(&args).output().expect("run corral");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{stderr}");
            assert_eq!(stderr.lines().count(), 1, "{stderr}");
            assert!(stderr.contains(expected), "{stderr}\nwanted: {expected}");
        }
    }
}

#[test]
fn a_db_ready_by_its_tcp_probe_starts_migrate_then_web() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let text = format!(
        "[defaults]\nworkers = 1\nshare-binds = \"off\"\n\n\
         [group.db]\ncommand = \"sleep 1; exec python3 -m http.server --bind 127.0.0.1 {port}\"\n\
         readiness-probe = {{ tcp = \"127.0.0.1:{port}\", period = \"200ms\" }}\n\n\
         [group.migrate]\ncommand = \"echo migrating; sleep 0.3\"\nrestart = \"never\"\n\
         depends-on = {{ db = \"ready\" }}\n\n\
         [group.web]\ncommand = \"sleep 1000\"\ndepends-on = {{ migrate = \"completed\" }}\n"
    );
    let file = write(dir.path(), &text);
    let mut corral = Corral::start(&["--config".as_ref(), file.as_os_str()]);
    let events = corral.wait_for("web spawned", DEADLINE, |events| {
        first(events, "spawned", "web").is_some().then(|| events.to_vec())
    });
    let db_ready = first(&events, "ready", "db").expect("db ready by its probe");
    let failed_before = events
        .iter()
        .take_while(|e| e["event"] != "ready")
        .any(|e| e["event"] == "probe_failed" && e["group"] == "db");
    assert!(failed_before, "the probe failed while db slept\n{}", corral.dump());
    let migrate = first(&events, "spawned", "migrate").expect("migrate");
    let migrated = first(&events, "exited", "migrate").expect("migrate done");
    let web = first(&events, "spawned", "web").expect("web");
    assert!(ts(db_ready) <= ts(migrate), "{}", corral.dump());
    assert_eq!(migrated["code"], 0);
    assert!(ts(migrated) <= ts(web), "{}", corral.dump());
    corral.signal(libc::SIGTERM);
    assert_eq!(corral.wait_exit(DEADLINE).code(), Some(0), "{}", corral.dump());
    corral.assert_nothing_left();
}

#[test]
fn an_exec_readiness_probe_turns_readyz_from_503_to_200() {
    let dir = tempfile::tempdir().expect("tempdir");
    let flag = dir.path().join("warm");
    let text = format!(
        "[group.app]\ncommand = [\"sleep\", \"1000\"]\nworkers = 2\n\
         readiness-probe = {{ exec = [\"test\", \"-f\", {:?}], period = \"200ms\" }}\n",
        flag.display().to_string()
    );
    let file = write(dir.path(), &text);
    let (mut corral, port) = start_with_metrics(&file);
    corral.wait_for("a failed readiness probe", DEADLINE, |events| {
        named(events, "probe_failed").first().map(|_| ())
    });
    let (status, body) = crate::metrics::get(port, "/readyz").expect("GET /readyz");
    assert!(status.contains("503") && body.contains("app.1 is starting"), "{status}\n{body}");
    let out = corral.ctl(&["status", "--json"]);
    let workers: Value = serde_json::from_slice(&out.stdout).expect("status JSON");
    // A verdict takes three failures in a row; before that, "pending", failures counted.
    let probe = &workers[0]["probes"][0];
    assert!(probe["state"] == "pending" || probe["state"] == "failing", "{workers}");
    assert!(probe["failures"].as_u64() >= Some(1), "{workers}");
    assert_eq!(out.status.code(), Some(1));
    std::fs::write(&flag, b"").expect("warm up");
    let ready = wait_until(DEADLINE, || {
        crate::metrics::get(port, "/readyz").is_ok_and(|(s, b)| s.contains("200") && b == "ready\n")
    });
    assert!(ready, "{}", corral.dump());
    assert_eq!(named(&corral.events(), "ready").len(), 2);
    let out = corral.ctl(&["status", "--json"]);
    let workers: Value = serde_json::from_slice(&out.stdout).expect("status JSON");
    assert_eq!(workers[0]["probes"][0]["state"], "passing", "{workers}");
    assert_eq!(out.status.code(), Some(0));
    corral.signal(libc::SIGTERM);
    assert_eq!(corral.wait_exit(DEADLINE).code(), Some(0), "{}", corral.dump());
    corral.assert_nothing_left();
}
