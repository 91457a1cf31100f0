//! Probes (docs/application.md#probes) on the real binary, against real unmodified programs:
//! an HTTP liveness probe restarts a worker whose health turns 500, an exec readiness probe
//! gates `ready`, a TCP one waits for `python3 -m http.server`, a hanging exec probe is
//! killed at its timeout, failing readiness after ready is `unready` (not killed), a
//! rolling reload waits for readiness, failures are reported rate-limited, bad probe keys
//! are one `file:line:col` line and exit 2, and hostile health endpoints (silent, flooding,
//! resetting) fail their probes without leaving a socket open.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::util::{
    Corral, DEADLINE, children_of, corral_command, free_port, named, of_worker, pid_of, spawned,
    with_command,
};

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write file");
    path
}

fn start_config(file: &Path) -> Corral {
    Corral::start(&["--config".as_ref(), file.as_os_str()])
}

/// A health endpoint: 200 on `GET /healthz` unless the file `sick.<slot>` exists in its
/// directory, then 500; it listens on the port `<prefix><slot>`.
const HEALTH_SERVER: &str = r#"
import http.server, os, sys
slot = os.environ["CORRAL_WORKER_ID"]
port = int(sys.argv[1] + slot)
sick = "sick." + slot
class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(500 if os.path.exists(sick) else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", port), Health).serve_forever()
"#;

/// A port prefix P (4 digits) such that P1 and P2 are free ports now.
fn port_prefix() -> u16 {
    loop {
        let prefix = fastrand::u16(2000..6500);
        let free =
            |slot: u16| std::net::TcpListener::bind(("127.0.0.1", prefix * 10 + slot)).is_ok();
        if free(1) && free(2) {
            return prefix;
        }
    }
}

fn events_named<'a>(events: &'a [Value], name: &str, worker: u64) -> Vec<&'a Value> {
    of_worker(events, name, worker)
}

/// A `web` group of `workers` health servers (`health.py`, one port per slot from a free
/// prefix) with the probes `probes` writes for the slot's health URL.
fn health_app(dir: &Path, workers: u32, probes: impl Fn(&str) -> String) -> PathBuf {
    write(dir, "health.py", HEALTH_SERVER);
    let prefix = port_prefix();
    let url = format!("http://127.0.0.1:{prefix}{{slot}}/healthz");
    let text = format!(
        "[group.web]\ncommand = [\"python3\", \"health.py\", \"{prefix}\"]\nworkers = {workers}\n\
         share-binds = \"off\"\n{}",
        probes(&url)
    );
    write(dir, "corral.toml", &text)
}

#[test]
fn an_http_liveness_probe_restarts_a_worker_whose_health_turns_500() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = health_app(dir.path(), 2, |url| {
        format!(
            "startup-probe = {{ http = \"{url}\", period = \"200ms\", failure-threshold = 150 }}\n\
             liveness-probe = {{ http = \"{url}\", period = \"200ms\", failure-threshold = 2 }}\n"
        )
    });
    let mut corral = start_config(&file);
    corral.wait_spawned(2);
    // Both serve: their startup probes passed and liveness runs (a few periods of it).
    std::thread::sleep(Duration::from_secs(1));
    write(dir.path(), "sick.1", "");
    let exited = corral.wait_for("worker 1 restarted by its liveness probe", DEADLINE, |events| {
        events_named(events, "exited", 1).first().map(|e| (*e).clone())
    });
    assert_eq!(exited["reason"], "liveness_probe", "{}", corral.dump());
    std::fs::remove_file(dir.path().join("sick.1")).expect("remove sick.1");
    corral.wait_for("worker 1 spawned again", DEADLINE, |events| {
        (spawned(events).iter().filter(|(w, _)| *w == 1).count() >= 2).then_some(())
    });
    let events = corral.events();
    let failed = events_named(&events, "probe_failed", 1);
    assert!(
        failed.iter().any(|e| e["probe"] == "liveness" && e["error"] == "HTTP 500"),
        "probe_failed says why: {}",
        corral.dump()
    );
    assert!(events_named(&events, "exited", 2).is_empty(), "the healthy worker is untouched");
    corral.signal(libc::SIGTERM);
    corral.wait_exit(DEADLINE);
    corral.assert_nothing_left();
}

#[test]
fn an_exec_readiness_probe_gates_ready() {
    let dir = tempfile::tempdir().expect("tempdir");
    let flag = dir.path().join("ready-now");
    let file = write(
        dir.path(),
        "corral.toml",
        &format!(
            "[group.app]\ncommand = [\"sleep\", \"1000\"]\nworkers = 1\n\
             readiness-probe = {{ exec = [\"test\", \"-f\", {:?}], period = \"200ms\" }}\n",
            flag.display().to_string()
        ),
    );
    let mut corral = start_config(&file);
    corral.wait_spawned(1);
    corral.wait_for("a failed readiness probe", DEADLINE, |events| {
        named(events, "probe_failed").first().map(|_| ())
    });
    assert!(named(&corral.events(), "ready").is_empty(), "not ready before the file exists");
    std::fs::write(&flag, "").expect("create the flag");
    corral.wait_for("ready", DEADLINE, |events| named(events, "ready").first().map(|_| ()));
    let failed = named(&corral.events(), "probe_failed")[0].clone();
    assert_eq!(failed["probe"], "readiness");
    corral.signal(libc::SIGTERM);
    corral.wait_exit(DEADLINE);
    corral.assert_nothing_left();
}

#[test]
fn a_tcp_readiness_probe_waits_for_an_http_server_from_the_command_line() {
    let port = free_port();
    let probe = format!("tcp:127.0.0.1:{port}");
    let command: Vec<String> = ["python3", "-m", "http.server", "--bind", "127.0.0.1"]
        .iter()
        .map(ToString::to_string)
        .chain([port.to_string()])
        .collect();
    let args =
        with_command(&["-w", "1", "--share-binds", "off", "--readiness-probe", &probe], &command);
    let mut corral = Corral::start(&args);
    let pid = corral.wait_spawned(1)[0].1;
    let ready = corral
        .wait_for("ready", DEADLINE, |events| named(events, "ready").first().map(|e| (*e).clone()));
    assert_eq!(pid_of(&ready), Some(pid));
    std::net::TcpStream::connect(("127.0.0.1", port)).expect("the server serves once ready");
    corral.signal(libc::SIGTERM);
    corral.wait_exit(DEADLINE);
    corral.assert_nothing_left();
    // A TCP probe closes gracefully: the server sees an empty connection, not a reset (a
    // Python traceback per probe on the worker's stderr).
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write(
        dir.path(),
        "corral.toml",
        &format!(
            "[group.web]\ncommand = [\"python3\", \"-m\", \"http.server\", \"--bind\", \
             \"127.0.0.1\", \"{port}\"]\nworkers = 1\nshare-binds = \"off\"\n\
             liveness-probe = {{ tcp = \"127.0.0.1:{port}\", period = \"100ms\", \
             failure-threshold = 1000 }}\n"
        ),
    );
    let mut corral = start_config(&file);
    corral.wait_spawned(1);
    std::thread::sleep(Duration::from_secs(2));
    let said: Vec<String> = named(&corral.events(), "output")
        .iter()
        .filter_map(|e| e["line"].as_str().map(String::from))
        .collect();
    assert!(!said.iter().any(|l| l.contains("Traceback")), "{said:?}");
    corral.signal(libc::SIGTERM);
    corral.wait_exit(DEADLINE);
    corral.assert_nothing_left();
}

/// Children of corral running `sleep 1000` (the hanging probe's command).
fn hanging_probes(corral: u32) -> Vec<u32> {
    children_of(corral)
        .into_iter()
        .filter(|&c| {
            std::fs::read(format!("/proc/{c}/cmdline")).is_ok_and(|l| l == b"sleep\x001000\x00")
        })
        .collect()
}

#[test]
fn a_hanging_exec_probe_is_killed_at_its_timeout_and_reaped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write(
        dir.path(),
        "corral.toml",
        "[group.app]\ncommand = [\"sleep\", \"999\"]\nworkers = 1\n\
         liveness-probe = { exec = [\"sleep\", \"1000\"], period = \"300ms\", timeout = \"200ms\", failure-threshold = 1000 }\n",
    );
    let mut corral = start_config(&file);
    corral.wait_spawned(1);
    corral.wait_for("three timed-out probes", DEADLINE, |events| {
        named(events, "probe_failed").iter().any(|e| e["count"].as_u64() >= Some(3)).then_some(())
    });
    let failed = named(&corral.events(), "probe_failed")[0].clone();
    assert_eq!(failed["error"], "timed out after 200ms", "{}", corral.dump());
    // At most the one in flight runs; the timed-out ones are gone (killed and reaped).
    for _ in 0..10 {
        let running = hanging_probes(corral.pid());
        assert!(running.len() <= 1, "timed-out probes left running: {running:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(named(&corral.events(), "exited").is_empty(), "below the failure threshold");
    corral.signal(libc::SIGTERM);
    corral.wait_exit(DEADLINE);
    corral.assert_nothing_left();
}

#[test]
fn failing_readiness_after_ready_is_unready_and_not_killed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = health_app(dir.path(), 1, |url| {
        format!(
            "readiness-probe = {{ http = \"{url}\", period = \"200ms\", failure-threshold = 2 }}\n"
        )
    });
    let mut corral = start_config(&file);
    corral.wait_for("ready", DEADLINE, |events| named(events, "ready").first().map(|_| ()));
    write(dir.path(), "sick.1", "");
    corral.wait_for("unready", DEADLINE, |events| named(events, "unready").first().map(|_| ()));
    let status = corral.ctl(&["status", "--json"]);
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(text.contains("unready"), "ctl status shows the state: {text}");
    let workers: Value = serde_json::from_str(&text).expect("status JSON");
    let probe = &workers[0]["probes"][0];
    assert_eq!(
        (probe["probe"].as_str(), probe["state"].as_str()),
        (Some("readiness"), Some("failing")),
        "{text}"
    );
    assert!(probe["failures"].as_u64() >= Some(2), "{text}");
    assert_eq!(status.status.code(), Some(1), "an unready worker is not healthy");
    std::fs::remove_file(dir.path().join("sick.1")).expect("remove sick.1");
    corral.wait_for("ready again", DEADLINE, |events| {
        (named(events, "ready").len() >= 2).then_some(())
    });
    let events = corral.events();
    assert!(named(&events, "exited").is_empty(), "never killed: {}", corral.dump());
    assert_eq!(spawned(&events).len(), 1);
    corral.signal(libc::SIGTERM);
    corral.wait_exit(DEADLINE);
    corral.assert_nothing_left();
}

#[test]
fn a_rolling_reload_waits_for_the_replacement_readiness() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write(
        dir.path(),
        "corral.toml",
        "[group.app]\ncommand = [\"sleep\", \"1000\"]\nworkers = 1\n\
         readiness-probe = { exec = \"test -f ready.$CORRAL_GENERATION\", period = \"200ms\" }\n",
    );
    let mut corral = start_config(&file);
    write(dir.path(), "ready.0", "");
    corral.wait_for("ready", DEADLINE, |events| named(events, "ready").first().map(|_| ()));
    corral.signal(libc::SIGHUP);
    corral.wait_spawned(2);
    // The replacement is probed and fails for a while: the old worker stays.
    corral.wait_for("the replacement's failed probe", DEADLINE, |events| {
        let new = spawned(events)[1].1;
        named(events, "probe_failed").iter().any(|e| pid_of(e) == Some(new)).then_some(())
    });
    let events = corral.events();
    assert!(named(&events, "exited").is_empty(), "old worker kept: {}", corral.dump());
    assert!(named(&events, "reload_finished").is_empty());
    write(dir.path(), "ready.1", "");
    let finished = corral.wait_for("reload finished", DEADLINE, |events| {
        named(events, "reload_finished").first().map(|e| (*e).clone())
    });
    assert_eq!(finished["failed"], false, "{}", corral.dump());
    let events = corral.events();
    let exited = named(&events, "exited");
    assert_eq!(exited[0]["reason"], "reload");
    corral.signal(libc::SIGTERM);
    corral.wait_exit(DEADLINE);
    corral.assert_nothing_left();
}

#[test]
fn probe_failures_are_reported_rate_limited() {
    let dir = tempfile::tempdir().expect("tempdir");
    let closed = free_port();
    let file = write(
        dir.path(),
        "corral.toml",
        &format!(
            "[group.app]\ncommand = [\"sleep\", \"1000\"]\nworkers = 1\n\
             liveness-probe = {{ tcp = \"127.0.0.1:{closed}\", period = \"20ms\", failure-threshold = 1000000 }}\n"
        ),
    );
    let mut corral = start_config(&file);
    let (reports, count) = corral.wait_for("100 failures", DEADLINE, |events| {
        let failed = named(events, "probe_failed");
        let count = failed.last().and_then(|e| e["count"].as_u64()).unwrap_or(0);
        (count >= 100).then_some((failed.len() as u64, count))
    });
    assert!(reports * 5 <= count, "{reports} reports for {count} failures: not rate-limited");
    let failed = named(&corral.events(), "probe_failed")[0].clone();
    assert_eq!(failed["error"], "connect: connection refused", "{}", corral.dump());
    assert!(named(&corral.events(), "exited").is_empty());
    corral.signal(libc::SIGTERM);
    corral.wait_exit(DEADLINE);
    corral.assert_nothing_left();
}

#[test]
fn bad_probe_config_is_one_line_and_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ok = "[group.web]\ncommand = [\"sleep\", \"1\"]\n";
    let cases: Vec<(String, &str)> = vec![
        (
            format!("{ok}liveness-probe = {{ http = \"http://127.0.0.1:1/\", perod = \"1s\" }}\n"),
            ":3:50: group.web.liveness-probe.perod: unknown key: did you mean 'period'?",
        ),
        (
            format!(
                "{ok}readiness-probe = {{ http = \"http://127.0.0.1:1/\", tcp = \"127.0.0.1:1\" }}\n"
            ),
            ":3:51: group.web.readiness-probe.tcp: a probe has exactly one of http, tcp or exec",
        ),
        (
            format!("{ok}readiness-probe = {{ http = \"https://127.0.0.1/\" }}\n"),
            ":3:28: group.web.readiness-probe.http: https is not supported",
        ),
        (
            format!("{ok}startup-probe = {{ tcp = \"127.0.0.1:1\", failure-threshold = 0 }}\n"),
            ":3:60: group.web.startup-probe.failure-threshold: expected an integer 1..=1000000, got 0",
        ),
        (
            format!("{ok}liveness-probe = {{ period = \"1s\" }}\n"),
            ":3:18: group.web.liveness-probe: a probe needs one of http, tcp or exec",
        ),
        (
            format!("[defaults]\nliveness-probe = {{ tcp = \"nohost\" }}\n{ok}"),
            ":2:26: defaults.liveness-probe.tcp: expected HOST:PORT",
        ),
    ];
    for (i, (text, expected)) in cases.iter().enumerate() {
        let file = write(dir.path(), &format!("bad{i}.toml"), text);
        let out = corral_command()
            .args(["--no-ui".as_ref(), "--config".as_ref(), file.as_os_str()])
            .output()
            .expect("corral runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{text}\nstderr: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        let shown = format!("{}{expected}", file.display());
        assert!(stderr.contains(&shown), "expected {shown:?}\nstderr: {stderr}");
    }
    let out = corral_command()
        .args(["--no-ui", "--readiness-probe", "localhost:80", "--", "sleep", "1"])
        .output()
        .expect("corral runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("expected http://HOST:PORT/PATH, tcp:HOST:PORT or exec:COMMAND"),
        "{stderr}"
    );
}

#[test]
fn probe_keys_resolve_in_check_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write(
        dir.path(),
        "corral.toml",
        "[defaults]\nliveness-probe = { tcp = \"127.0.0.1:9\", period = \"2s\" }\n\
         [group.web]\ncommand = [\"sleep\", \"1\"]\n",
    );
    let out = corral_command()
        .args(["check-config".as_ref(), file.as_os_str()])
        .output()
        .expect("corral runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("[group.web.liveness-probe]"), "{stdout}");
    assert!(stdout.contains("period = \"2s\""), "{stdout}");
}

/// A hostile health endpoint on `127.0.0.1:argv[1]`: `/hang` reads the request and never
/// answers, `/flood` answers a MiB without a line end and holds the connection, `/reset`
/// resets it. Every connection lives until the prober closes it.
const HOSTILE_SERVER: &str = r#"
import socket, socketserver, struct, sys
class Hostile(socketserver.BaseRequestHandler):
    def handle(self):
        line = self.request.recv(4096).split(b"\r\n")[0]
        if b"/flood" in line:
            try:
                self.request.sendall(b"x" * (1 << 20))
            except OSError:
                return
        elif b"/reset" in line:
            self.request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return
        try:
            while self.request.recv(4096):
                pass
        except OSError:
            pass
socketserver.ThreadingTCPServer.daemon_threads = True
socketserver.ThreadingTCPServer.allow_reuse_address = True
socketserver.ThreadingTCPServer(("127.0.0.1", int(sys.argv[1])), Hostile).serve_forever()
"#;

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}

#[test]
fn hostile_health_endpoints_fail_their_probes_and_leave_no_socket_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "hostile.py", HOSTILE_SERVER);
    let port = free_port();
    let mut text = format!(
        "[group.server]\ncommand = [\"python3\", \"hostile.py\", \"{port}\"]\nworkers = 1\n\
         share-binds = \"off\"\nreadiness-probe = {{ tcp = \"127.0.0.1:{port}\", period = \"100ms\" }}\n"
    );
    for path in ["hang", "flood", "reset"] {
        let _ = write!(
            text,
            "[group.{path}]\ncommand = [\"sleep\", \"1000\"]\nworkers = 1\n\
             depends-on = {{ server = \"ready\" }}\n\
             liveness-probe = {{ http = \"http://127.0.0.1:{port}/{path}\", period = \"100ms\", \
             timeout = \"300ms\", failure-threshold = 1000000 }}\n"
        );
    }
    let file = write(dir.path(), "corral.toml", &text);
    let mut corral = start_config(&file);
    let failures = |events: &[Value], group: &str| -> Vec<Value> {
        named(events, "probe_failed").into_iter().filter(|e| e["group"] == group).cloned().collect()
    };
    let enough = |events: &[Value], n: u64| {
        ["hang", "flood", "reset"]
            .iter()
            .all(|g| failures(events, g).last().and_then(|e| e["count"].as_u64()).unwrap_or(0) >= n)
    };
    corral.wait_for("ten failures of each probe", DEADLINE, |events| {
        enough(events, 10).then_some(())
    });
    let settled = open_fds(corral.pid());
    corral.wait_for("twenty more of each", DEADLINE, |events| enough(events, 30).then_some(()));
    let later = open_fds(corral.pid());
    // One probe of each in flight at most: twenty more failures of each leave no socket.
    assert!(later <= settled + 3, "corral's descriptors grew from {settled} to {later}");
    let events = corral.events();
    let first =
        |group: &str| failures(&events, group)[0]["error"].as_str().unwrap_or("").to_string();
    assert_eq!(first("hang"), "timed out after 300ms", "{}", corral.dump());
    assert!(first("flood").starts_with("not an HTTP response: xxx"), "{}", corral.dump());
    let reset = first("reset");
    assert!(
        reset == "read: connection reset by peer"
            || reset == "the connection closed before a response",
        "{reset}"
    );
    assert!(named(&events, "exited").is_empty(), "below the failure threshold: {}", corral.dump());
    corral.signal(libc::SIGTERM);
    corral.wait_exit(DEADLINE);
    corral.assert_nothing_left();
}

/// A listener that never accepts, its queue one connection long: a probe's connection is
/// queued and never answered, or its handshake never ends.
const NEVER_ACCEPTS: &str = r#"
import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(0)
time.sleep(1000)
"#;

#[test]
fn a_runs_probes_end_with_it_and_a_crash_loop_piles_nothing_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "never.py", NEVER_ACCEPTS);
    let port = free_port();
    let crash = "command = [\"sh\", \"-c\", \"sleep 0.1; exit 1\"]\nworkers = 2\n\
                 backoff = \"0\"\nmax-restarts = 1000000\n";
    let text = format!(
        "[group.server]\ncommand = [\"python3\", \"never.py\", \"{port}\"]\nworkers = 1\n\
         share-binds = \"off\"\n\
         [group.net]\n{crash}depends-on = {{ server = \"started\" }}\n\
         liveness-probe = {{ http = \"http://127.0.0.1:{port}/\", period = \"20ms\", timeout = \"60s\" }}\n\
         [group.cmd]\n{crash}\
         startup-probe = {{ exec = [\"sleep\", \"1000\"], period = \"20ms\", timeout = \"60s\" }}\n"
    );
    let file = write(dir.path(), "corral.toml", &text);
    let mut corral = start_config(&file);
    let exits = |events: &[Value], group: &str| {
        named(events, "exited").iter().filter(|e| e["group"] == group).count()
    };
    let both = |events: &[Value], n: usize| exits(events, "net") >= n && exits(events, "cmd") >= n;
    corral.wait_for("20 runs of each ended", DEADLINE, |events| both(events, 20).then_some(()));
    let settled = open_fds(corral.pid());
    corral.wait_for("40 more of each", DEADLINE, |events| both(events, 60).then_some(()));
    let later = open_fds(corral.pid());
    assert!(
        later <= settled + 6,
        "corral's descriptors grew from {settled} to {later} over 80 runs"
    );
    let probes = hanging_probes(corral.pid());
    assert!(probes.len() <= 2, "a probe command per worker at most, not per run: {probes:?}");
    corral.signal(libc::SIGTERM);
    corral.wait_exit(DEADLINE);
    corral.assert_nothing_left();
}

#[test]
fn a_broken_release_answered_for_by_the_old_worker_replaces_nothing() {
    // The docs' port per slot: during a reload the old worker still answers the probe's
    // address while the replacement (here broken: it dies after a second) starts.
    let dir = tempfile::tempdir().expect("tempdir");
    let file = health_app(dir.path(), 2, |url| {
        format!("readiness-probe = {{ http = \"{url}\", period = \"100ms\" }}\n")
    });
    let text = std::fs::read_to_string(&file).expect("read");
    let broken = "command = [\"sh\", \"-c\", \"if [ -e broken ]; then sleep 1; exit 1; fi; \
                  exec python3 health.py \\\"$0\\\"\", ";
    let text = text.replacen("command = [\"python3\", \"health.py\", ", broken, 1);
    std::fs::write(&file, text).expect("write");
    let mut corral = start_config(&file);
    corral.wait_for("both ready", DEADLINE, |events| {
        (named(events, "ready").len() >= 2).then_some(())
    });
    write(dir.path(), "broken", "");
    corral.signal(libc::SIGHUP);
    let finished = corral.wait_for("reload finished", DEADLINE, |events| {
        named(events, "reload_finished").first().map(|e| (*e).clone())
    });
    assert_eq!(finished["failed"], true, "{}", corral.dump());
    assert_eq!(finished["replaced"], 0, "{}", corral.dump());
    let events = corral.events();
    assert!(
        named(&events, "exited").iter().all(|e| e["reason"] != "reload"),
        "no old worker was stopped for the broken release: {}",
        corral.dump()
    );
    corral.signal(libc::SIGTERM);
    corral.wait_exit(DEADLINE);
    corral.assert_nothing_left();
}
