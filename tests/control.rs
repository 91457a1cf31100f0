//! The control socket and `corral ctl` (docs/control.md) on the real binary: every command does
//! what its key does (checked in the headless JSON events), and no client — hostile, slow
//! or of another user — can hurt the supervisor or the other clients.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::util::{
    Corral, DEADLINE, SHORT, is_root, named, of_worker, spawned, status_kib, test_worker,
    wait_until, with_command,
};

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn ok(corral: &Corral, args: &[&str]) -> String {
    let out = corral.ctl(args);
    assert_eq!(out.status.code(), Some(0), "ctl {args:?}: {}\n{}", text(&out), corral.dump());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn ticking(workers: &str) -> Corral {
    let script =
        "i=0; while :; do i=$((i+1)); echo \"tick $CORRAL_WORKER_ID $i\"; sleep 0.05; done";
    let args = [
        "-I",
        "shop",
        "-n",
        "web",
        "-w",
        workers,
        "--backoff",
        "0",
        "--reload-settle",
        "0",
        "--",
        "sh",
        "-c",
        script,
    ];
    let corral = Corral::start(&args);
    corral.wait_spawned(workers.parse().expect("n"));
    corral
}

fn socket(corral: &Corral) -> PathBuf {
    corral.runtime_dir().join("corral/shop.sock")
}

#[test]
fn ctl_actions_do_what_the_keys_do() {
    let mut corral = ticking("2");
    let ls = ok(&corral, &["ls"]);
    assert!(
        ls.starts_with("NAME") && ls.contains("shop") && ls.contains(&corral.pid().to_string()),
        "{ls}"
    );
    let status: Value = serde_json::from_str(&ok(&corral, &["status", "--json"])).expect("json");
    let ids: Vec<&str> =
        status.as_array().expect("array").iter().map(|w| w["id"].as_str().unwrap_or("")).collect();
    assert_eq!(ids, ["web.1", "web.2"]);
    assert!(status[0]["pid"].is_u64() && status[0]["state"] == "running", "{status}");
    let table = ok(&corral, &["status"]);
    assert!(
        table.lines().next().is_some_and(|h| h.starts_with("ID") && h.contains("LAST EXIT")),
        "{table}"
    );

    ok(&corral, &["kill", "web.1"]);
    corral.wait_for("web.1 killed and back", DEADLINE, |events| {
        let exited = of_worker(events, "exited", 1);
        (exited
            .first()
            .is_some_and(|e| e["reason"] == "killed_by_user" && e["signal"] == "SIGKILL")
            && spawned(events).iter().filter(|(w, _)| *w == 1).count() == 2)
            .then_some(())
    });
    ok(&corral, &["restart", "web.2"]);
    corral.wait_for("web.2 restarted", DEADLINE, |events| {
        of_worker(events, "exited", 2)
            .iter()
            .any(|e| e["reason"] == "restarted_by_user")
            .then_some(())
    });
    ok(&corral, &["stop", "web.2"]);
    corral.wait_for("web.2 stopped", DEADLINE, |events| {
        of_worker(events, "exited", 2).iter().any(|e| e["reason"] == "stopped").then_some(())
    });
    let status: Value = serde_json::from_str(&ok(&corral, &["status", "--json"])).expect("json");
    assert_eq!(status[1]["state"], "stopped", "{status}");
    ok(&corral, &["start", "web"]);
    corral.wait_for("web.2 started again", DEADLINE, |events| {
        (spawned(events).iter().filter(|(w, _)| *w == 2).count() == 3).then_some(())
    });
    assert!(ok(&corral, &["scale", "web", "+2"]).contains("4 workers"));
    corral.wait_for("scaled to 4", DEADLINE, |events| {
        named(events, "scaled").iter().any(|e| e["workers"] == 4).then_some(())
    });
    assert!(ok(&corral, &["scale", "web", "1"]).contains("web: 1 worker"));
    corral.wait_for("scaled to 1, the other three gone", DEADLINE, |events| {
        let gone = named(events, "exited").iter().filter(|e| e["reason"] == "scaled_down").count();
        (named(events, "scaled").iter().any(|e| e["workers"] == 1) && gone == 3).then_some(())
    });
    let reload = ok(&corral, &["reload", "web"]);
    assert!(reload.contains("reloaded, 1 worker replaced"), "{reload}");
    // The reply comes over the socket; the event through stdout, maybe a moment later.
    corral.wait_for("reload_finished", DEADLINE, |events| {
        (!named(events, "reload_finished").is_empty()).then_some(())
    });
    let events = corral.events();
    let started = named(&events, "reload_started");
    assert_eq!(started[0]["cause"], "ctl", "{started:?}");

    let out = corral.ctl(&["shutdown"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("shop stopped"), "{}", text(&out));
    assert_eq!(corral.wait_exit(DEADLINE).code(), Some(0), "{}", corral.dump());
    let events = corral.events();
    let shutdown = named(&events, "shutdown_started");
    assert_eq!(shutdown[0]["key"], "ctl", "{shutdown:?}");
    assert!(!socket(&corral).exists(), "the socket file goes with corral");
    corral.assert_nothing_left();
}

#[test]
fn ctl_reads_logs_and_events_and_follows_them() {
    let corral = ticking("1");
    corral.wait_for("some output", DEADLINE, |events| {
        (named(events, "output").len() >= 5).then_some(())
    });
    let logs = ok(&corral, &["logs", "-n", "5"]);
    assert_eq!(logs.lines().count(), 5, "{logs}");
    assert!(logs.lines().all(|l| l.contains(" | tick ")), "{logs}");
    let json = ok(&corral, &["logs", "-n", "2", "--json", "web.1"]);
    for line in json.lines() {
        let v: Value = serde_json::from_str(line).expect("an event object");
        assert_eq!(
            (v["event"].as_str(), v["group"].as_str(), v["worker"].as_u64()),
            (Some("output"), Some("web"), Some(1))
        );
    }
    let events = ok(&corral, &["events"]);
    let kinds: Vec<String> = events
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).expect("json")["event"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    assert!(
        kinds.contains(&"spawned".to_string()) && kinds.contains(&"supervisor_started".to_string()),
        "{kinds:?}"
    );
    assert!(!kinds.contains(&"output".to_string()), "output is for logs");

    // Follow: new lines and events arrive as they happen.
    let mut logs = corral
        .ctl_command(&["logs", "-f", "-n", "0", "web"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("ctl");
    let mut reader = BufReader::new(logs.stdout.take().expect("stdout"));
    let mut line = String::new();
    reader.read_line(&mut line).expect("a followed line");
    assert!(line.contains("web.1 | tick 1 "), "{line}");
    let mut events =
        corral.ctl_command(&["events", "-f"]).stdout(Stdio::piped()).spawn().expect("ctl");
    let mut events_out = BufReader::new(events.stdout.take().expect("stdout"));
    let kept = named(&corral.events(), "spawned").len()
        + named(&corral.events(), "supervisor_started").len();
    assert!(kept > 0);
    ok(&corral, &["kill", "web.1"]);
    let found = (0..10_000).any(|_| {
        let mut l = String::new();
        events_out.read_line(&mut l).is_ok_and(|n| n > 0) && l.contains("\"killed_by_user\"")
    });
    assert!(found, "events -f shows the kill");
    let _ = logs.kill();
    let _ = events.kill();
    let _ = logs.wait();
    let _ = events.wait();
}

#[test]
fn ctl_mistakes_are_one_line_with_exit_1_or_2() {
    let corral = ticking("1");
    let cases: &[(&[&str], i32, &str)] = &[
        (&["kill", "web.9"], 1, "corral ctl: unknown worker or group 'web.9' (groups: web)"),
        (&["reload", "nope"], 1, "corral ctl: unknown group 'nope'"),
        (&["scale", "web", "0"], 2, "invalid value '0' for 'scale'"),
        (&["scale", "nope", "+1"], 1, "corral ctl: unknown group 'nope'"),
        (&["-I", "other", "status"], 2, "corral ctl: no instance 'other' is running"),
        (&["frobnicate"], 2, "unrecognized subcommand 'frobnicate'"),
    ];
    for (args, code, want) in cases {
        let out = corral.ctl(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(*code), "{args:?}: {stderr}");
        assert!(stderr.contains(want) && stderr.lines().count() == 1, "{args:?}: {stderr}");
    }
    let second = Corral::start(&with_command(
        &["-I", "shop", "--control", socket(&corral).to_str().expect("utf8")],
        &test_worker(&[]),
    ));
    let mut second = second;
    assert_eq!(second.wait_exit(DEADLINE).code(), Some(2));
    let said = format!("corral: instance 'shop' is already running (pid {})", corral.pid());
    assert!(second.stderr().starts_with(&said), "{}", second.stderr());
    // No instance at all.
    let empty = tempfile::tempdir().expect("tempdir");
    let out = std::process::Command::new(crate::util::corral_bin())
        .args(["ctl", "status"])
        .env("XDG_RUNTIME_DIR", empty.path())
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("corral ctl: no corral is running"));
}

/// Raw protocol: what `socat` or `nc -U` would send.
fn raw(corral: &Corral) -> (BufReader<UnixStream>, UnixStream) {
    let stream = UnixStream::connect(socket(corral)).expect("connect");
    stream.set_read_timeout(Some(DEADLINE)).expect("timeout");
    let writer = stream.try_clone().expect("clone");
    let mut reader = BufReader::new(stream);
    let mut hello = String::new();
    reader.read_line(&mut hello).expect("hello");
    let hello: Value = serde_json::from_str(&hello).expect("json hello");
    assert_eq!(hello["v"], 1);
    assert_eq!(hello["hello"]["instance"], "shop");
    (reader, writer)
}

fn reply(reader: &mut BufReader<UnixStream>) -> Value {
    let mut line = String::new();
    reader.read_line(&mut line).expect("a reply");
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"))
}

#[test]
fn hostile_clients_get_errors_and_never_hurt_the_supervisor() {
    let corral = ticking("1");
    let (mut reader, mut writer) = raw(&corral);
    writer.write_all(b"{\"cmd\":\"status\"}\n").expect("write");
    assert!(
        reply(&mut reader)["error"].as_str().is_some_and(|e| e.contains("\"v\":1")),
        "no version"
    );
    let mut closed = String::new();
    assert_eq!(reader.read_line(&mut closed).unwrap_or(0), 0, "closed after a version mismatch");

    let (mut reader, mut writer) = raw(&corral);
    for (line, want) in [
        (&b"{\"v\":1,\"id\":1,\"cmd\":\"status\"}\n"[..], "ok"),
        (b"this is not json\n", "not JSON"),
        (b"{\"id\":2,\"cmd\":\"explode\"}\n", "unknown command 'explode'"),
        (b"[\"cmd\"]\n", "expected a JSON object"),
        (b"{\"id\":3,\"cmd\":\"kill\",\"target\":\"../../etc\"}\n", "unknown worker"),
        (b"\xff\xfe\xfd\n", "not JSON"),
    ] {
        writer.write_all(line).expect("write");
        let r = reply(&mut reader);
        if want == "ok" {
            assert_eq!(r["ok"], true, "{r}");
        } else {
            assert!(r["error"].as_str().is_some_and(|e| e.contains(want)), "{want}: {r}");
        }
    }
    // A request line of 100 MiB: refused at 1 MiB, the connection closed, memory bounded.
    let (mut reader, mut writer) = raw(&corral);
    let chunk = vec![b'x'; 1024 * 1024];
    let mut sent = 0;
    for _ in 0..100 {
        if writer.write_all(&chunk).is_err() {
            break;
        }
        sent += 1;
    }
    assert!(sent < 100 || reply(&mut reader)["error"].as_str().is_some(), "a huge line is refused");
    let mut rest = Vec::new();
    let _ = reader.read_to_end(&mut rest);
    let rss = status_kib(corral.pid(), "VmRSS").expect("rss");
    assert!(rss < 200 * 1024, "corral's RSS {rss} KiB after a 100 MiB line");
    // Half-closed: a request, then EOF, still gets its reply.
    let (mut reader, writer) = raw(&corral);
    (&writer).write_all(b"{\"v\":1,\"id\":9,\"cmd\":\"status\"}\n").expect("write");
    writer.shutdown(std::net::Shutdown::Write).expect("half-close");
    assert_eq!(reply(&mut reader)["id"], 9);
    // And the supervisor is still itself.
    let status = ok(&corral, &["status", "--json"]);
    assert!(status.contains("\"running\""), "{status}");
}

#[test]
fn a_client_that_never_reads_is_dropped_and_others_do_not_notice() {
    // A worker flooding events; a client follows them and never reads.
    let flood = "while :; do echo '{\"type\":\"tick\",\"pad\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}' >&$CORRAL_EVENT_FD; done";
    let corral = Corral::start(&["-I", "shop", "-n", "flood", "-w", "1", "--", "sh", "-c", flood]);
    corral.wait_spawned(1);
    let (_reader, mut writer) = raw(&corral);
    writer
        .write_all(b"{\"v\":1,\"id\":1,\"cmd\":\"events\",\"follow\":true}\n")
        .expect("subscribe");
    let start = status_kib(corral.pid(), "VmRSS").expect("rss");
    std::thread::sleep(Duration::from_secs(3));
    for _ in 0..20 {
        let out = corral.ctl(&["status", "--json"]);
        assert_eq!(out.status.code(), Some(0), "another client is served: {}", text(&out));
    }
    let rss = status_kib(corral.pid(), "VmRSS").expect("rss");
    assert!(
        rss < start + 64 * 1024,
        "RSS grew from {start} to {rss} KiB with a client that never reads"
    );
    let dropped = wait_until(DEADLINE, || corral.stderr().contains("too far behind"));
    assert!(dropped, "the slow client is dropped\n{}", corral.dump());
}

#[test]
fn the_socket_is_private_and_another_user_is_refused() {
    let corral = ticking("1");
    let path = socket(&corral);
    let mode =
        |p: &std::path::Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(path.parent().expect("dir")), 0o700);
    if !is_root() {
        eprintln!("skipped: another uid needs root (setpriv)");
        return;
    }
    // Open the way on purpose, so that only SO_PEERCRED stands between them.
    let open = std::fs::Permissions::from_mode(0o755);
    for dir in path
        .ancestors()
        .skip(1)
        .take_while(|d| d.starts_with(std::env::temp_dir()) && *d != std::env::temp_dir())
    {
        std::fs::set_permissions(dir, open.clone()).expect("chmod");
    }
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let out = std::process::Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            crate::util::corral_bin(),
            "ctl",
            "--control",
        ])
        .arg(&path)
        .arg("status")
        .output()
        .expect("setpriv runs");
    let said = text(&out);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(said.contains("permission denied: not this user's corral"), "{said}");
    assert!(wait_until(SHORT, || corral
        .stderr()
        .contains("refused a connection from another user")));
}
