//! corral as the cluster primary of unmodified Node programs (docs/node.md): their own
//! `server.listen(PORT)` shares one socket across the group. Every app here is plain Node
//! (or Express) that knows nothing of corral. Skipped, with a line saying so, without
//! `node` (the test command installs it).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::util::http::hello;
use crate::util::{Corral, DEADLINE, free_port, named, of_worker, spawned};

/// Requests sent, at most, before every worker must have answered one.
const MAX_REQUESTS: usize = 2000;

pub fn node_on_path() -> bool {
    crate::util::on_path("node")
}

macro_rules! need_node {
    ($name:literal) => {
        if !node_on_path() {
            println!("SKIPPED node_cluster::{}: no `node` on PATH", $name);
            return;
        }
    };
}

/// A directory holding `app.js` with `source`.
fn app(source: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("app.js"), source).expect("write app.js");
    dir
}

/// The plainest server there is: answers with its pid and its cluster id.
fn plain_app(port: u16) -> String {
    format!(
        "const http = require('http');\n\
         const cluster = require('cluster');\n\
         http.createServer((req, res) => {{\n\
           res.end(`Hello from worker ${{process.pid}} id ${{cluster.worker ? cluster.worker.id : 'none'}}`);\n\
         }}).listen({port});\n"
    )
}

fn start(dir: &Path, options: &[&str]) -> Corral {
    let mut args: Vec<&str> = options.to_vec();
    args.extend(["--", "node", "app.js"]);
    Corral::start_in(dir, &args)
}

/// Waits for `n` `ready` events (a cluster worker is ready once it listens).
fn wait_ready(corral: &Corral, n: usize) -> Vec<(u64, u32)> {
    corral.wait_for("workers ready", DEADLINE, |events| {
        (named(events, "ready").len() >= n).then_some(())
    });
    spawned(&corral.events())
}

/// Asks until every pid in `pids` answered; the pids that did.
pub fn ask_until_all_answer(port: u16, pids: &BTreeSet<u32>) -> (BTreeSet<u32>, Vec<String>) {
    let mut answered = BTreeSet::new();
    let mut failures = Vec::new();
    for _ in 0..MAX_REQUESTS {
        match hello(port) {
            Ok(pid) => {
                answered.insert(pid);
            }
            Err(e) => failures.push(e),
        }
        if answered == *pids {
            break;
        }
    }
    (answered, failures)
}

#[test]
fn an_unmodified_app_serves_from_every_worker_on_its_own_port() {
    need_node!("an_unmodified_app_serves_from_every_worker_on_its_own_port");
    let port = free_port();
    let dir = app(&plain_app(port));
    let mut corral = start(dir.path(), &["-w", "3"]);
    let workers = wait_ready(&corral, 3);
    let pids: BTreeSet<u32> = workers.iter().map(|&(_, pid)| pid).collect();
    let (answered, failures) = ask_until_all_answer(port, &pids);
    assert!(failures.is_empty(), "failed requests: {failures:?}\n{}", corral.dump());
    assert_eq!(answered, pids, "every worker answers on the one port\n{}", corral.dump());
    // `cluster.worker.id` is the slot: ask each worker's id through its answer.
    let ids = ids_by_pid(port, &pids);
    for &(slot, pid) in &workers {
        assert_eq!(ids.get(&pid), Some(&slot), "worker {slot} (pid {pid})\n{}", corral.dump());
    }
    // Internal cluster messages are never events.
    let events = corral.events();
    assert!(named(&events, "message").is_empty(), "{}", corral.dump());
    corral.signal(libc::SIGTERM);
    assert_eq!(corral.wait_exit(DEADLINE).code(), Some(0), "{}", corral.dump());
    for exit in named(&corral.events(), "exited") {
        assert_eq!(exit["reason"], "shutdown", "{exit}");
    }
    corral.assert_nothing_left();
}

/// The `id N` of each pid's answers.
fn ids_by_pid(port: u16, pids: &BTreeSet<u32>) -> BTreeMap<u32, u64> {
    let mut ids = BTreeMap::new();
    for _ in 0..MAX_REQUESTS {
        if let Ok((pid, id)) = hello_with_id(port) {
            ids.insert(pid, id);
        }
        if ids.len() == pids.len() {
            break;
        }
    }
    ids
}

fn hello_with_id(port: u16) -> Result<(u32, u64), String> {
    let text = crate::util::http::get(port, "/")?;
    let (_, rest) = text.split_once("Hello from worker ").ok_or("no greeting")?;
    let mut words = rest.split_whitespace();
    let pid = words.next().and_then(|w| w.parse().ok()).ok_or("no pid")?;
    let id = words.nth(1).and_then(|w| w.parse().ok()).ok_or("no id")?;
    Ok((pid, id))
}

#[test]
fn an_unmodified_express_app_serves_from_every_worker() {
    need_node!("an_unmodified_express_app_serves_from_every_worker");
    let Some(modules) = test_node_modules() else {
        println!("SKIPPED node_cluster::express: run scripts/test, which installs Express");
        return;
    };
    let port = free_port();
    let source = format!(
        "const express = require('express');\n\
         const app = express();\n\
         app.get('/', (req, res) => res.send(`Hello from worker ${{process.pid}}`));\n\
         app.listen({port}, () => console.log('listening'));\n"
    );
    let dir = app(&source);
    let modules = modules.to_str().expect("utf-8 path");
    let mut corral = start(dir.path(), &["-w", "3", "--env", &format!("NODE_PATH={modules}")]);
    let workers = wait_ready(&corral, 3);
    let pids: BTreeSet<u32> = workers.iter().map(|&(_, pid)| pid).collect();
    let (answered, failures) = ask_until_all_answer(port, &pids);
    assert!(failures.is_empty(), "failed requests: {failures:?}\n{}", corral.dump());
    assert_eq!(answered, pids, "{}", corral.dump());
    corral.signal(libc::SIGTERM);
    assert_eq!(corral.wait_exit(DEADLINE).code(), Some(0), "{}", corral.dump());
    corral.assert_nothing_left();
}

/// Where the test command installed the pinned Express (`CORRAL_TEST_DEPS`).
fn test_node_modules() -> Option<PathBuf> {
    let dir = PathBuf::from(std::env::var_os("CORRAL_TEST_DEPS")?).join("node_modules");
    dir.join("express").is_dir().then_some(dir)
}

/// What a client loop saw.
#[derive(Default)]
struct Seen {
    ok: usize,
    /// Connections refused: the port had no listener. Never acceptable.
    refused: Vec<String>,
    /// Any other failure (a connection reset by a worker killed while it held it).
    other: Vec<String>,
}

/// Starts a client that asks `port` again and again until told to stop (and until it has
/// asked at least `min` times, within the deadline).
fn client_loop(port: u16, min: usize) -> (Arc<AtomicBool>, thread::JoinHandle<Seen>) {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let handle = thread::spawn(move || {
        let mut seen = Seen::default();
        let deadline = Instant::now() + DEADLINE;
        let asked = |s: &Seen| s.ok + s.refused.len() + s.other.len();
        while !(flag.load(Ordering::Relaxed) && asked(&seen) >= min) && Instant::now() < deadline {
            match hello(port) {
                Ok(_) => seen.ok += 1,
                Err(e) if e.contains("refused") => seen.refused.push(e),
                Err(e) => seen.other.push(e),
            }
        }
        seen
    });
    (stop, handle)
}

#[test]
fn kill_9_of_a_worker_under_a_request_loop_refuses_no_connection() {
    need_node!("kill_9_of_a_worker_under_a_request_loop_refuses_no_connection");
    let port = free_port();
    let dir = app(&plain_app(port));
    let mut corral = start(dir.path(), &["-w", "2"]);
    wait_ready(&corral, 2);
    let (stop, client) = client_loop(port, 300);
    let kills = 3;
    for round in 1..=kills {
        let victims: Vec<u32> = crate::util::spawned(&corral.events())
            .into_iter()
            .rev()
            .take(2)
            .map(|(_, pid)| pid)
            .collect();
        // Both at once: the socket stays with corral, so connections wait, none is refused
        // (the one a killed worker had accepted is reset: that is the kill, not the port).
        for pid in victims {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        corral.wait_for("replacements ready", DEADLINE, |events| {
            (named(events, "ready").len() >= 2 + 2 * round).then_some(())
        });
    }
    stop.store(true, Ordering::Relaxed);
    let seen = client.join().expect("client thread");
    let (ok, failures) = (seen.ok, seen.refused);
    assert!(ok >= 300 - 2 * kills, "the client got answers\n{}", corral.dump());
    assert!(
        seen.other.len() <= 2 * kills,
        "resets beyond the killed workers' requests: {:?}",
        seen.other
    );
    assert!(
        failures.is_empty(),
        "{} failed of {}: {failures:?}\n{}",
        failures.len(),
        ok + failures.len(),
        corral.dump()
    );
    corral.signal(libc::SIGTERM);
    assert_eq!(corral.wait_exit(DEADLINE).code(), Some(0), "{}", corral.dump());
    corral.assert_nothing_left();
}

#[test]
fn a_rolling_reload_of_an_app_without_a_sigterm_handler_fails_no_request() {
    need_node!("a_rolling_reload_of_an_app_without_a_sigterm_handler_fails_no_request");
    let port = free_port();
    // Slow answers: a request is in flight whenever the reload stops a worker, and only
    // Node's disconnect (not SIGTERM, which this app does not handle) lets it finish.
    let source = format!(
        "require('http').createServer((req, res) => {{\n\
           setTimeout(() => res.end(`Hello from worker ${{process.pid}}`), 150);\n\
         }}).listen({port});\n"
    );
    let dir = app(&source);
    let mut corral = start(dir.path(), &["-w", "2"]);
    let before: BTreeSet<u32> = wait_ready(&corral, 2).iter().map(|&(_, pid)| pid).collect();
    let clients: Vec<_> = (0..3).map(|_| client_loop(port, 10)).collect();
    thread::sleep(Duration::from_millis(300));
    corral.signal(libc::SIGHUP);
    corral.wait_for("the reload finished", DEADLINE, |events| {
        named(events, "reload_finished").first().map(|e| (*e).clone())
    });
    thread::sleep(Duration::from_millis(300));
    let mut failures = Vec::new();
    let mut ok = 0;
    for (stop, client) in clients {
        stop.store(true, Ordering::Relaxed);
        let seen = client.join().expect("client thread");
        ok += seen.ok;
        failures.extend(seen.refused);
        failures.extend(seen.other);
    }
    let events = corral.events();
    let finished = named(&events, "reload_finished")[0].clone();
    assert_eq!(
        (&finished["replaced"], &finished["failed"]),
        (&2.into(), &false.into()),
        "{}",
        corral.dump()
    );
    assert!(
        ok > 0 && failures.is_empty(),
        "{} failed of {}: {failures:?}\n{}",
        failures.len(),
        ok + failures.len(),
        corral.dump()
    );
    for old in &before {
        let exit = named(&events, "exited").into_iter().find(|e| e["pid"] == *old).cloned();
        let exit = exit.unwrap_or_else(|| panic!("pid {old} replaced\n{}", corral.dump()));
        assert_eq!((&exit["reason"], &exit["code"]), (&"reload".into(), &0.into()), "{exit}");
    }
    corral.signal(libc::SIGTERM);
    assert_eq!(corral.wait_exit(DEADLINE).code(), Some(0), "{}", corral.dump());
    corral.assert_nothing_left();
}

#[test]
fn listen_0_gives_every_worker_the_same_port() {
    need_node!("listen_0_gives_every_worker_the_same_port");
    let source = "const server = require('http').createServer((req, res) => {\n\
                    res.end(`Hello from worker ${process.pid}`);\n\
                  });\n\
                  server.listen(0, () => process.send({ port: server.address().port }));\n";
    let dir = app(source);
    let mut corral = start(dir.path(), &["-w", "3"]);
    let workers = wait_ready(&corral, 3);
    let events = corral.wait_for("every worker says its port", DEADLINE, |events| {
        let said = named(events, "message");
        (said.len() >= 3).then(|| events.to_vec())
    });
    let ports: BTreeSet<u64> =
        named(&events, "message").iter().filter_map(|e| e["data"]["port"].as_u64()).collect();
    assert_eq!(ports.len(), 1, "one port for the group: {ports:?}\n{}", corral.dump());
    let port = u16::try_from(*ports.iter().next().expect("a port")).expect("a port number");
    assert!(port > 0);
    let pids: BTreeSet<u32> = workers.iter().map(|&(_, pid)| pid).collect();
    let (answered, failures) = ask_until_all_answer(port, &pids);
    assert!(failures.is_empty() && answered == pids, "{failures:?}\n{}", corral.dump());
    corral.signal(libc::SIGTERM);
    assert_eq!(corral.wait_exit(DEADLINE).code(), Some(0), "{}", corral.dump());
}

#[test]
fn ctl_send_reaches_process_on_message_of_the_worker_it_names() {
    need_node!("ctl_send_reaches_process_on_message_of_the_worker_it_names");
    let port = free_port();
    let source = format!(
        "process.on('message', (m) => console.log(`got ${{JSON.stringify(m)}}`));\n{}",
        plain_app(port)
    );
    let dir = app(&source);
    let mut corral = start(dir.path(), &["-w", "2"]);
    let workers = wait_ready(&corral, 2);
    let sent = corral.ctl(&["send", "node.2", r#"{"hello":[1,"two"]}"#]);
    assert!(sent.status.success(), "{}\n{}", String::from_utf8_lossy(&sent.stderr), corral.dump());
    let line = corral.wait_for("the worker got it", DEADLINE, |events| {
        of_worker(events, "output", 2)
            .iter()
            .find_map(|e| e["line"].as_str().filter(|l| l.starts_with("got ")).map(str::to_string))
    });
    assert_eq!(line, r#"got {"hello":[1,"two"]}"#);
    assert!(of_worker(&corral.events(), "output", 1).is_empty(), "only node.2\n{}", corral.dump());
    // Node's own messages cannot be forged through ctl.
    let forged = corral.ctl(&["send", "node.1", r#"{"cmd":"NODE_CLUSTER","act":"disconnect"}"#]);
    assert_eq!(forged.status.code(), Some(1), "{}", corral.dump());
    assert!(String::from_utf8_lossy(&forged.stderr).contains("NODE_"));
    let bad = corral.ctl(&["send", "node.1", "{not json"]);
    assert_eq!(bad.status.code(), Some(2));
    assert_eq!(named(&corral.events(), "exited").len(), 0, "{}", corral.dump());
    drop(workers);
    corral.signal(libc::SIGTERM);
    assert_eq!(corral.wait_exit(DEADLINE).code(), Some(0), "{}", corral.dump());
}

#[test]
fn the_articles_cluster_demo_runs_its_worker_branch_only() {
    need_node!("the_articles_cluster_demo_runs_its_worker_branch_only");
    if !crate::util::is_root() {
        println!(
            "SKIPPED node_cluster::cluster_demo: needs root for a network namespace (port 3000)"
        );
        return;
    }
    // The article's file, byte for byte: it listens on 3000, so it runs in a network
    // namespace of its own, where 3000 is free whatever this machine runs.
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cluster-demo.js");
    let ran = thread::spawn(move || in_own_network(|| run_cluster_demo(&demo)));
    ran.join().expect("the demo's thread");
}

fn run_cluster_demo(demo: &Path) {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(demo, dir.path().join("cluster-demo.js")).expect("copy");
    let mut corral = Corral::start_in(dir.path(), &["-w", "2", "--", "node", "cluster-demo.js"]);
    let workers = wait_ready(&corral, 2);
    let pids: BTreeSet<u32> = workers.iter().map(|&(_, pid)| pid).collect();
    let (answered, failures) = ask_until_all_answer(3000, &pids);
    assert!(failures.is_empty() && answered == pids, "{failures:?}\n{}", corral.dump());
    let events = corral.events();
    let lines: Vec<&str> =
        named(&events, "output").iter().filter_map(|e| e["line"].as_str()).collect();
    for pid in &pids {
        let said = format!("Worker {pid} listening on port 3000");
        assert!(lines.contains(&said.as_str()), "no {said:?}\n{}", corral.dump());
    }
    assert!(
        !lines.iter().any(|l| l.starts_with("primary ")),
        "the primary branch ran\n{}",
        corral.dump()
    );
    corral.signal(libc::SIGTERM);
    assert_eq!(corral.wait_exit(DEADLINE).code(), Some(0), "{}", corral.dump());
    corral.assert_nothing_left();
}

/// Runs `f` on this thread in a new network namespace with its loopback up.
fn in_own_network(f: impl FnOnce()) {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("a network namespace");
    let up = std::process::Command::new("ip").args(["link", "set", "lo", "up"]).status();
    assert!(up.is_ok_and(|s| s.success()), "ip link set lo up");
    f();
}

#[test]
fn hostile_cluster_messages_change_nothing() {
    need_node!("hostile_cluster_messages_change_nothing");
    let port = free_port();
    let dir = app(&plain_app(port));
    // A program that speaks the cluster protocol badly, on purpose: wrong types, 10,000
    // ports, a key it does not own, a flood of queries, and it never reads a reply.
    let hostile = format!(
        r#"import os, json, time
fd = int(os.environ["CORRAL_EVENT_FD"])
while not os.path.exists("go"):
    time.sleep(0.02)
def send(o):
    os.write(fd, (json.dumps(o) + "\n").encode())
q = lambda seq, port, t=4: {{"cmd": "NODE_CLUSTER", "act": "queryServer", "address": "127.0.0.1", "port": port, "addressType": t, "index": 0, "seq": seq}}
send({{"cmd": "NODE_CLUSTER", "act": "online", "seq": 0}})
send({{"cmd": "NODE_CLUSTER", "act": "queryServer", "port": "x", "addressType": 4, "seq": 1}})
send({{"cmd": "NODE_CLUSTER", "act": "close", "key": "null:{port}:4:-1:0", "seq": 2}})
send({{"cmd": "NODE_CLUSTER", "act": "queryServer", "address": None, "port": {port}, "addressType": 4, "seq": 3}})
for i in range(10000):
    try:
        send(q(10 + i, 20000 + i, "udp4"))
    except BlockingIOError:
        pass
open("flooded", "w").close()
time.sleep(600)
"#
    );
    std::fs::write(dir.path().join("hostile.py"), hostile).expect("write hostile.py");
    let config = String::from(
        "[group.web]\ncommand = [\"node\", \"app.js\"]\nworkers = 2\n\n\
         [group.hostile]\ncommand = [\"python3\", \"hostile.py\"]\nworkers = 1\nnode-cluster = \"on\"\n",
    );
    std::fs::write(dir.path().join("corral.toml"), config).expect("write config");
    let mut corral = Corral::start_in(dir.path(), &["--config", "corral.toml"]);
    let workers = wait_ready(&corral, 2);
    // The web group serves first: the hostile worker then asks for its port, and floods.
    std::fs::write(dir.path().join("go"), "").expect("write go");
    let flooded = dir.path().join("flooded");
    let deadline = Instant::now() + DEADLINE;
    while !flooded.exists() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
    }
    assert!(flooded.exists(), "the hostile worker sent its flood\n{}", corral.dump());
    // The web group still serves on its port, from both workers.
    drop(workers);
    let pids: BTreeSet<u32> = named(&corral.events(), "spawned")
        .iter()
        .filter(|e| e["group"] == "web")
        .filter_map(|e| e["pid"].as_u64().and_then(|p| u32::try_from(p).ok()))
        .collect();
    assert_eq!(pids.len(), 2, "{}", corral.dump());
    let (answered, failures) = ask_until_all_answer(port, &pids);
    assert!(failures.is_empty(), "{failures:?}\n{}", corral.dump());
    assert!(!answered.is_empty(), "{}", corral.dump());
    // corral's descriptors stay bounded: the group's socket cap and the unread replies' cap.
    let fds = std::fs::read_dir(format!("/proc/{}/fd", corral.pid())).expect("fds").count();
    assert!(fds < 300, "corral holds {fds} descriptors\n{}", corral.dump());
    // The bad lines are counted, against the hostile worker only: its flood costs the
    // others nothing.
    let errors = named(&corral.events(), "protocol_error").into_iter().cloned().collect::<Vec<_>>();
    assert!(!errors.is_empty(), "{}", corral.dump());
    assert!(errors.iter().all(|e| e["group"] == "hostile"), "{errors:?}");
    assert!(named(&corral.events(), "exited").is_empty(), "{}", corral.dump());
    corral.signal(libc::SIGTERM);
    assert_eq!(corral.wait_exit(DEADLINE).code(), Some(0), "{}", corral.dump());
    corral.assert_nothing_left();
}

#[test]
fn round_robin_splits_connections_evenly_and_survives_kill_9() {
    need_node!("round_robin_splits_connections_evenly_and_survives_kill_9");
    let port = free_port();
    let dir = app(&plain_app(port));
    let mut corral = start(dir.path(), &["-w", "3", "--node-cluster-sched", "rr"]);
    let workers = wait_ready(&corral, 3);
    let mut split: BTreeMap<u32, usize> = BTreeMap::new();
    for _ in 0..90 {
        let pid = hello(port).unwrap_or_else(|e| panic!("{e}\n{}", corral.dump()));
        *split.entry(pid).or_default() += 1;
    }
    let pids: BTreeSet<u32> = workers.iter().map(|&(_, pid)| pid).collect();
    assert_eq!(split.keys().copied().collect::<BTreeSet<_>>(), pids, "{}", corral.dump());
    // corral hands out connections in turn: an exact split, give or take one.
    assert!(split.values().all(|&n| (29..=31).contains(&n)), "{split:?}\n{}", corral.dump());
    // A killed worker's turn passes to the others; nothing is refused meanwhile.
    let (stop, client) = client_loop(port, 200);
    let victim = workers[0].1;
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(victim as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
    corral.wait_for("the replacement ready", DEADLINE, |events| {
        (named(events, "ready").len() >= 4).then_some(())
    });
    stop.store(true, Ordering::Relaxed);
    let seen = client.join().expect("client thread");
    assert!(seen.refused.is_empty(), "{:?}\n{}", seen.refused, corral.dump());
    assert!(seen.other.len() <= 1, "only the killed worker's request: {:?}", seen.other);
    corral.signal(libc::SIGTERM);
    assert_eq!(corral.wait_exit(DEADLINE).code(), Some(0), "{}", corral.dump());
    corral.assert_nothing_left();
}

#[test]
fn udp_and_unix_socket_servers_are_shared_too() {
    need_node!("udp_and_unix_socket_servers_are_shared_too");
    let port = free_port();
    // A UDP echo of the pid, and an HTTP server on a relative unix socket path.
    let source = format!(
        "const dgram = require('dgram');\n\
         const udp = dgram.createSocket('udp4');\n\
         udp.on('message', (m, from) => udp.send(String(process.pid), from.port, from.address));\n\
         udp.bind({port}, '127.0.0.1');\n\
         require('http').createServer((req, res) => res.end(`Hello from worker ${{process.pid}}`))\n\
           .listen('app.sock');\n"
    );
    let dir = app(&source);
    let mut corral = start(dir.path(), &["-w", "2"]);
    let workers = wait_ready(&corral, 2);
    let pids: BTreeSet<u32> = workers.iter().map(|&(_, pid)| pid).collect();
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("client socket");
    socket.set_read_timeout(Some(Duration::from_secs(2))).expect("timeout");
    let mut answered = BTreeSet::new();
    for _ in 0..MAX_REQUESTS {
        socket.send_to(b"who", ("127.0.0.1", port)).expect("send");
        let mut buf = [0u8; 32];
        let said = socket.recv(&mut buf).ok().and_then(|n| std::str::from_utf8(&buf[..n]).ok());
        if let Some(pid) = said.and_then(|t| t.parse().ok()) {
            answered.insert(pid);
        }
        if answered == pids {
            break;
        }
    }
    assert_eq!(answered, pids, "both workers read the one UDP socket\n{}", corral.dump());
    let path = dir.path().join("app.sock");
    let mut by_unix = BTreeSet::new();
    for _ in 0..MAX_REQUESTS {
        use std::io::{Read, Write};
        let mut stream = std::os::unix::net::UnixStream::connect(&path)
            .unwrap_or_else(|e| panic!("{e}\n{}", corral.dump()));
        stream.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").expect("write");
        let mut text = String::new();
        let _ = stream.read_to_string(&mut text);
        if let Some((_, rest)) = text.split_once("Hello from worker ") {
            by_unix.insert(rest.trim().parse::<u32>().expect("pid"));
        }
        if by_unix == pids {
            break;
        }
    }
    assert_eq!(by_unix, pids, "both workers accept on the unix socket\n{}", corral.dump());
    corral.signal(libc::SIGTERM);
    assert_eq!(corral.wait_exit(DEADLINE).code(), Some(0), "{}", corral.dump());
    assert!(!path.exists(), "corral removes the socket file it made");
}

#[test]
fn a_worker_that_disconnects_itself_exits_normally_and_is_replaced() {
    need_node!("a_worker_that_disconnects_itself_exits_normally_and_is_replaced");
    let port = free_port();
    // `cluster.worker.disconnect()` waits for corral's acknowledgement before it closes
    // the channel: without one the worker would hang here.
    let source = format!(
        "process.on('message', (m) => {{ if (m === 'leave') require('cluster').worker.disconnect(); }});\n{}",
        plain_app(port)
    );
    let dir = app(&source);
    let mut corral = start(dir.path(), &["-w", "1"]);
    let workers = wait_ready(&corral, 1);
    let sent = corral.ctl(&["send", "node.1", r#""leave""#]);
    assert!(sent.status.success(), "{}", corral.dump());
    let exit = corral.wait_for("the worker left", DEADLINE, |events| {
        named(events, "exited").first().map(|e| (*e).clone())
    });
    assert_eq!(exit["pid"], workers[0].1);
    assert_eq!((&exit["code"], &exit["reason"]), (&0.into(), &"exited".into()), "{exit}");
    corral.wait_for("its replacement serves", DEADLINE, |events| {
        (named(events, "ready").len() >= 2).then_some(())
    });
    assert!(hello(port).is_ok(), "{}", corral.dump());
    corral.signal(libc::SIGTERM);
    assert_eq!(corral.wait_exit(DEADLINE).code(), Some(0), "{}", corral.dump());
}

#[test]
fn a_message_typed_in_the_dashboards_details_reaches_the_worker() {
    need_node!("a_message_typed_in_the_dashboards_details_reaches_the_worker");
    let dir = app("process.on('message', (m) => console.log(`got ${JSON.stringify(m)}`));\n\
                   setInterval(() => {}, 1000);\n");
    let app = dir.path().join("app.js");
    let app = app.to_str().expect("utf-8 path");
    let mut tty = crate::util::pty::Tty::start(&["-w", "1", "--", "node", app]);
    tty.wait_screen("the worker running", DEADLINE, |s| s.contains("running"));
    tty.send(b"\r"); // the details
    tty.send(b">");
    tty.send(br#"{"hi":[1,2]}"#);
    tty.wait_screen("the message typed", DEADLINE, |s| {
        s.contains(r#"to node.1 (JSON): {"hi":[1,2]}"#)
    });
    tty.send(b"\r"); // sent
    tty.send(b"\r"); // back to the output
    tty.wait_screen("the worker got it", DEADLINE, |s| s.contains(r#"got {"hi":[1,2]}"#));
    tty.send(b"q");
    let status = tty.wait_exit(DEADLINE);
    assert!(status.success(), "{status:?}\n{}", tty.dump());
    tty.assert_nothing_left();
}

#[test]
fn a_node_launcher_whose_child_binds_shares_the_port_too() {
    need_node!("a_node_launcher_whose_child_binds_shares_the_port_too");
    let port = free_port();
    // npm-start style: the worker is a launcher; the server is a plain child `node` (not a
    // cluster worker), whose own bind() corral adopts.
    let dir = app(&format!(
        "require('child_process').spawn(process.execPath, ['server.js'], {{ stdio: 'inherit' }});\n\
         setInterval(() => {{}}, 1000);\n// {port}\n"
    ));
    std::fs::write(
        dir.path().join("server.js"),
        format!(
            "require('http').createServer((q, s) => s.end(`Hello from worker ${{process.pid}}`))\
             .listen({port});\n"
        ),
    )
    .expect("write server.js");
    let mut corral = start(dir.path(), &["-w", "2"]);
    corral.wait_spawned(2);
    let deadline = Instant::now() + DEADLINE;
    let mut answered = BTreeSet::new();
    while answered.len() < 2 && Instant::now() < deadline {
        if let Ok(pid) = hello(port) {
            answered.insert(pid);
        }
    }
    assert_eq!(answered.len(), 2, "both children serve\n{}", corral.dump());
    assert!(named(&corral.events(), "exited").is_empty(), "{}", corral.dump());
    corral.signal(libc::SIGTERM);
    assert_eq!(corral.wait_exit(DEADLINE).code(), Some(0), "{}", corral.dump());
    corral.assert_nothing_left();
}

#[test]
fn a_server_every_worker_closed_refuses_and_many_listens_are_all_answered() {
    need_node!("a_server_every_worker_closed_refuses_and_many_listens_are_all_answered");
    let port = free_port();
    // One server closed for good after a request; then 70 more listen() calls, past
    // corral's 64 sockets per group: every one gets an answer ('listening' or an error).
    let source = format!(
        "const http = require('http');\n\
         const s = http.createServer((q, r) => {{ r.end(`Hello from worker ${{process.pid}}`); s.close(); }});\n\
         s.listen({port});\n\
         let answered = 0;\n\
         for (let i = 0; i < 70; i++) {{\n\
           const extra = http.createServer();\n\
           extra.on('listening', () => {{ answered++; if (answered === 70) console.log('all answered'); }});\n\
           extra.on('error', () => {{ answered++; if (answered === 70) console.log('all answered'); }});\n\
           extra.listen(0, '127.0.0.' + (2 + i));\n\
         }}\n"
    );
    let dir = app(&source);
    let mut corral = start(dir.path(), &["-w", "1"]);
    corral.wait_for("every listen answered", DEADLINE, |events| {
        named(events, "output").iter().any(|e| e["line"] == "all answered").then_some(())
    });
    hello(port).unwrap_or_else(|e| panic!("{e}\n{}", corral.dump()));
    let deadline = Instant::now() + DEADLINE;
    let mut refused = false;
    while !refused && Instant::now() < deadline {
        refused = hello(port).is_err_and(|e| e.contains("refused"));
        thread::sleep(Duration::from_millis(20));
    }
    assert!(refused, "nobody listens on {port} any more\n{}", corral.dump());
    corral.signal(libc::SIGTERM);
    assert_eq!(corral.wait_exit(DEADLINE).code(), Some(0), "{}", corral.dump());
}
