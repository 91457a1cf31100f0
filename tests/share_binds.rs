//! Any program, unmodified, shares its port (docs/sharing-a-port.md): Python, `python3 -m
//! http.server`, Perl, a server behind `sh -c` and a statically linked C server each bind
//! a port themselves, and every worker of the group serves it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::util::http::{get, hello};
use crate::util::{Corral, DEADLINE, free_port, named, on_path};

/// A Python server that answers with its pid, and on SIGTERM finishes the request it is
/// in and stops (as servers made for production do).
const PYTHON_SERVER: &str = r#"import http.server, os, signal, sys, threading
class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"Hello from worker {os.getpid()}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Hello)
signal.signal(signal.SIGTERM, lambda *a: threading.Thread(target=server.shutdown).start())
server.serve_forever()
"#;

const PERL_SERVER: &str = r#"use IO::Socket::INET;
my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => $ARGV[0], Listen => 128, ReuseAddr => 1) or die "bind: $!";
while (my $c = $s->accept) {
    while (my $l = <$c>) { last if $l =~ /^\r?\n$/ }
    my $body = "Hello from worker $$";
    print $c "HTTP/1.1 200 OK\r\nContent-Length: " . length($body) . "\r\nConnection: close\r\n\r\n$body";
    close $c;
}
"#;

fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).expect("write");
    }
    dir
}

/// The pids of the `spawned` events so far.
fn pids(corral: &Corral) -> BTreeSet<u32> {
    named(&corral.events(), "spawned")
        .iter()
        .filter_map(|e| e["pid"].as_u64().and_then(|p| u32::try_from(p).ok()))
        .collect()
}

/// Asks until every pid answered (each worker needs its moment to start).
fn all_answer(corral: &Corral, port: u16, want: &BTreeSet<u32>) {
    let mut answered = BTreeSet::new();
    let deadline = Instant::now() + DEADLINE;
    while answered != *want && Instant::now() < deadline {
        match hello(port) {
            Ok(pid) => {
                answered.insert(pid);
            }
            Err(_) => thread::sleep(Duration::from_millis(20)),
        }
    }
    assert_eq!(answered, *want, "every worker answers on port {port}\n{}", corral.dump());
}

fn stop(mut corral: Corral) {
    corral.signal(libc::SIGTERM);
    assert_eq!(corral.wait_exit(DEADLINE).code(), Some(0), "{}", corral.dump());
    corral.assert_nothing_left();
}

#[test]
fn an_unmodified_python_server_serves_from_every_worker() {
    let port = free_port();
    let dir = dir_with(&[("server.py", PYTHON_SERVER)]);
    let port_arg = port.to_string();
    let corral =
        Corral::start_in(dir.path(), &["-w", "3", "--", "python3", "server.py", &port_arg]);
    corral.wait_spawned(3);
    all_answer(&corral, port, &pids(&corral));
    assert!(named(&corral.events(), "exited").is_empty(), "{}", corral.dump());
    stop(corral);
}

#[test]
fn python_m_http_server_shares_one_socket_across_the_workers() {
    let port = free_port();
    let dir = dir_with(&[("index.html", "shared\n")]);
    let port_arg = port.to_string();
    let args = ["-w", "3", "--", "python3", "-m", "http.server", "--bind", "127.0.0.1", &port_arg];
    let corral = Corral::start_in(dir.path(), &args);
    let workers = corral.wait_spawned(3);
    let deadline = Instant::now() + DEADLINE;
    let mut ok = 0;
    while ok < 30 && Instant::now() < deadline {
        match get(port, "/") {
            Ok(text) if text.ends_with("shared\n") => ok += 1,
            _ => thread::sleep(Duration::from_millis(20)),
        }
    }
    assert_eq!(ok, 30, "{}", corral.dump());
    // Every worker holds the one socket corral bound: the same inode (each once it started).
    let ours = sockets(corral.pid());
    for (_, pid) in &workers {
        let deadline = Instant::now() + DEADLINE;
        let held = |pid: u32| sockets(pid).intersection(&ours).count();
        while held(*pid) == 0 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(held(*pid), 1, "worker {pid} holds corral's socket\n{}", corral.dump());
    }
    assert!(named(&corral.events(), "exited").is_empty(), "none crash-looped\n{}", corral.dump());
    stop(corral);
}

/// The socket inodes a process holds.
fn sockets(pid: u32) -> BTreeSet<u64> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return BTreeSet::new() };
    dir.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| l.to_str()?.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok())
        .collect()
}

#[test]
fn a_server_behind_sh_c_and_a_perl_server_share_their_ports() {
    let dir = dir_with(&[("server.py", PYTHON_SERVER), ("server.pl", PERL_SERVER)]);
    let port = free_port();
    // Not exec'd: the shell stays, the server is its child, and its bind is adopted too.
    let script = format!("python3 server.py {port}; echo gone");
    let corral = Corral::start_in(dir.path(), &["-w", "2", "--", "sh", "-c", &script]);
    corral.wait_spawned(2);
    let children: BTreeSet<u32> =
        pids(&corral).iter().flat_map(|&sh| crate::util::children_of(sh)).collect();
    let deadline = Instant::now() + DEADLINE;
    let mut servers = children;
    while servers.len() < 2 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
        servers = pids(&corral).iter().flat_map(|&sh| crate::util::children_of(sh)).collect();
    }
    all_answer(&corral, port, &servers);
    stop(corral);
    if !on_path("perl") {
        println!("SKIPPED share_binds: no perl");
        return;
    }
    let port = free_port();
    let port_arg = port.to_string();
    let corral = Corral::start_in(dir.path(), &["-w", "2", "--", "perl", "server.pl", &port_arg]);
    corral.wait_spawned(2);
    all_answer(&corral, port, &pids(&corral));
    stop(corral);
}

/// Builds the C server statically (no loader: only seccomp can reach its bind).
fn static_server() -> Option<PathBuf> {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/plain_server.c");
    let out = std::env::temp_dir().join(format!("corral-plain-server-{}", std::process::id()));
    let built = std::process::Command::new("gcc")
        .args(["-static", "-O1", "-o"])
        .arg(&out)
        .arg(&source)
        .status()
        .is_ok_and(|s| s.success());
    built.then_some(out)
}

#[test]
fn a_static_binary_shares_its_port_and_its_shutdown_stops_nobody_else() {
    let Some(server) = static_server() else {
        println!("SKIPPED share_binds::static: no gcc -static (scripts/test installs it)");
        return;
    };
    let port = free_port();
    let (server_arg, port_arg) = (server.to_str().expect("utf-8"), port.to_string());
    let corral = Corral::start(&["-w", "2", "--", server_arg, &port_arg]);
    let workers = corral.wait_spawned(2);
    all_answer(&corral, port, &pids(&corral));
    // web.1's SIGTERM handler shuts its listener down: the others must keep serving.
    let (stop_flag, client) = client_loop(port);
    let stopped = corral.ctl(&["stop", &format!("{}.1", name_of(&server))]);
    assert!(stopped.status.success(), "{}", corral.dump());
    corral.wait_for("web.1 stopped", DEADLINE, |events| {
        named(events, "exited").iter().find(|e| e["pid"] == workers[0].1).map(|_| ())
    });
    thread::sleep(Duration::from_millis(300));
    stop_flag.store(true, Ordering::Relaxed);
    let (ok, refused, other) = client.join().expect("client");
    assert!(
        refused.is_empty(),
        "refused after a worker's shutdown(): {refused:?}\n{}",
        corral.dump()
    );
    assert!(ok > 0 && other.len() <= 1, "{other:?}\n{}", corral.dump());
    let remaining = hello(port).unwrap_or_else(|e| panic!("{e}\n{}", corral.dump()));
    assert_eq!(remaining, workers[1].1, "the other worker serves on");
    stop(corral);
    let _ = std::fs::remove_file(server);
}

fn name_of(program: &Path) -> String {
    program.file_name().and_then(|f| f.to_str()).unwrap_or_default().to_string()
}

/// A client asking again and again until told to stop: (ok, refused, other failures).
type Seen = (usize, Vec<String>, Vec<String>);

fn client_loop(port: u16) -> (Arc<AtomicBool>, thread::JoinHandle<Seen>) {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let handle = thread::spawn(move || {
        let (mut ok, mut refused, mut other) = (0, Vec::new(), Vec::new());
        let deadline = Instant::now() + DEADLINE;
        while !flag.load(Ordering::Relaxed) && Instant::now() < deadline {
            match hello(port) {
                Ok(_) => ok += 1,
                Err(e) if e.contains("refused") => refused.push(e),
                Err(e) => other.push(e),
            }
        }
        (ok, refused, other)
    });
    (stop, handle)
}

#[test]
fn kill_9_under_load_refuses_nothing_and_a_reload_of_one_worker_fails_nothing() {
    let port = free_port();
    let dir = dir_with(&[("server.py", PYTHON_SERVER)]);
    let port_arg = port.to_string();
    let corral =
        Corral::start_in(dir.path(), &["-w", "2", "--", "python3", "server.py", &port_arg]);
    corral.wait_spawned(2);
    all_answer(&corral, port, &pids(&corral));
    let (stop_flag, client) = client_loop(port);
    for round in 1..=2 {
        for pid in pids(&corral).iter().rev().take(2) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(*pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        corral.wait_spawned(2 + 2 * round);
        thread::sleep(Duration::from_millis(300));
    }
    stop_flag.store(true, Ordering::Relaxed);
    let (ok, refused, other) = client.join().expect("client");
    assert!(refused.is_empty(), "{refused:?}\n{}", corral.dump());
    assert!(ok > 0 && other.len() <= 4, "only the killed workers' requests: {other:?}");
    stop(corral);

    // One worker, replaced by a rolling reload while requests keep coming.
    let port = free_port();
    let port_arg = port.to_string();
    let args = ["-w", "1", "--reload-settle", "500ms", "--", "python3", "server.py", &port_arg];
    let mut corral = Corral::start_in(dir.path(), &args);
    corral.wait_spawned(1);
    all_answer(&corral, port, &pids(&corral));
    let (stop_flag, client) = client_loop(port);
    thread::sleep(Duration::from_millis(200));
    corral.signal(libc::SIGHUP);
    corral.wait_for("the reload finished", DEADLINE, |events| {
        named(events, "reload_finished").first().map(|e| (*e).clone())
    });
    thread::sleep(Duration::from_millis(300));
    stop_flag.store(true, Ordering::Relaxed);
    let (ok, refused, other) = client.join().expect("client");
    assert!(
        ok > 0 && refused.is_empty() && other.is_empty(),
        "{refused:?} {other:?}\n{}",
        corral.dump()
    );
    assert_eq!(named(&corral.events(), "reload_finished")[0]["failed"], false);
    corral.signal(libc::SIGTERM);
    assert_eq!(corral.wait_exit(DEADLINE).code(), Some(0), "{}", corral.dump());
}

#[test]
fn a_port_per_slot_stays_each_workers_own() {
    let Some(server) = static_server() else {
        println!("SKIPPED share_binds::per_slot: no gcc -static");
        return;
    };
    // Three free ports in a row after `base`.
    let base = loop {
        let base = free_port();
        let free = (1..=3).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok());
        if base < u16::MAX - 3 && free {
            break base;
        }
    };
    let (server_arg, base_arg) = (server.to_str().expect("utf-8"), base.to_string());
    let corral = Corral::start(&["-w", "3", "--", server_arg, &base_arg, "per-slot"]);
    let workers = corral.wait_spawned(3);
    let by_slot: BTreeMap<u64, u32> = workers.iter().copied().collect();
    for (slot, pid) in &by_slot {
        let port = base + u16::try_from(*slot).expect("slot");
        let deadline = Instant::now() + DEADLINE;
        let mut answer = hello(port);
        while answer.is_err() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
            answer = hello(port);
        }
        assert_eq!(answer.ok(), Some(*pid), "port {port} is worker {slot}'s\n{}", corral.dump());
    }
    stop(corral);
    let _ = std::fs::remove_file(server);
}

#[test]
fn with_share_binds_off_a_second_worker_dies_and_the_hint_says_what_to_do() {
    let port = free_port();
    let dir = dir_with(&[("server.py", PYTHON_SERVER)]);
    let port_arg = port.to_string();
    let args = ["-w", "2", "--share-binds", "off", "--", "python3", "server.py", &port_arg];
    let corral = Corral::start_in(dir.path(), &args);
    corral
        .wait_for("a worker died", DEADLINE, |events| named(events, "exited").first().map(|_| ()));
    let deadline = Instant::now() + DEADLINE;
    while !corral.stderr().contains("address already in use") && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
    }
    let stderr = corral.stderr();
    assert!(stderr.contains("died on an address already in use"), "{stderr}\n{}", corral.dump());
    assert!(stderr.contains("--share-binds on") && stderr.contains("--listen"), "{stderr}");
    assert_eq!(stderr.matches("died on an address already in use").count(), 1, "once per group");
    stop(corral);
}

#[test]
fn a_stopped_group_closes_its_port_and_takes_it_again_when_started() {
    let port = free_port();
    // A second group keeps corral busy while the first is stopped.
    let config = format!(
        "[group.web]\ncommand = [\"python3\", \"server.py\", \"{port}\"]\nworkers = 2\n\n\
         [group.idle]\ncommand = [\"sleep\", \"600\"]\nworkers = 1\n"
    );
    let dir = dir_with(&[("server.py", PYTHON_SERVER), ("corral.toml", &config)]);
    let corral = Corral::start_in(dir.path(), &["--config", "corral.toml"]);
    corral.wait_spawned(3);
    all_answer(&corral, port, &web_pids(&corral, 0));
    let stopped = corral.ctl(&["stop", "web"]);
    assert!(stopped.status.success(), "{}", corral.dump());
    corral.wait_for("both stopped", DEADLINE, |events| {
        (named(events, "exited").len() >= 2).then_some(())
    });
    // Nobody serves: a client is told so at once instead of waiting in a queue.
    let deadline = Instant::now() + DEADLINE;
    let mut refused = false;
    while !refused && Instant::now() < deadline {
        refused = hello(port).is_err_and(|e| e.contains("refused"));
        thread::sleep(Duration::from_millis(20));
    }
    assert!(refused, "the port closed with the group\n{}", corral.dump());
    let started = corral.ctl(&["start", "web"]);
    assert!(started.status.success(), "{}", corral.dump());
    corral.wait_spawned(5);
    all_answer(&corral, port, &web_pids(&corral, 2));
    stop(corral);
}

/// The pids of group `web`'s spawns, after the first `skip` of them.
fn web_pids(corral: &Corral, skip: usize) -> BTreeSet<u32> {
    named(&corral.events(), "spawned")
        .iter()
        .filter(|e| e["group"] == "web")
        .skip(skip)
        .filter_map(|e| e["pid"].as_u64().and_then(|p| u32::try_from(p).ok()))
        .collect()
}

#[test]
fn binds_are_answered_during_an_exit_storm() {
    let port = free_port();
    // Eight workers that exit at once, restarted at once, for as long as the test runs:
    // the binds of the web group are answered by a thread that never waits for them.
    let config = format!(
        "[group.storm]\ncommand = [\"sh\", \"-c\", \"exit 1\"]\nworkers = 8\nbackoff = \"0\"\n\n\
         [group.web]\ncommand = [\"python3\", \"server.py\", \"{port}\"]\nworkers = 2\n"
    );
    let dir = dir_with(&[("server.py", PYTHON_SERVER), ("corral.toml", &config)]);
    let corral = Corral::start_in(dir.path(), &["--config", "corral.toml"]);
    corral.wait_for("the storm is on", DEADLINE, |events| {
        (named(events, "exited").len() >= 50).then_some(())
    });
    corral.wait_for("web spawned", DEADLINE, |events| {
        let web = named(events, "spawned").iter().filter(|e| e["group"] == "web").count();
        (web >= 2).then_some(())
    });
    all_answer(&corral, port, &web_pids(&corral, 0));
    stop(corral);
}
