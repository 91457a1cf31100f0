//! Node, for real (docs/workers.md): an unmodified Node HTTP server (`assets/server.js`) under
//! corral serves on the shared socket, reports through `process.send`, and stops
//! gracefully on the shutdown message. Skipped, with a line saying so, without `node`.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use crate::node_cluster::node_on_path;
use crate::util::http::hello;
use crate::util::{Corral, DEADLINE, free_port, named, of_worker};

#[test]
fn a_node_cluster_serves_reports_and_stops_gracefully() {
    if !node_on_path() {
        println!(
            "SKIPPED node::a_node_cluster_serves_reports_and_stops_gracefully: no `node` on PATH"
        );
        return;
    }
    let server = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/server.js");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let server = server.to_str().expect("the repository path is UTF-8");
    // Node's cluster off: this is the plain Node IPC path (corral's shutdown message).
    let mut corral = Corral::start(&[
        "-w",
        "2",
        "--node-cluster",
        "off",
        "--listen",
        &listen,
        "--",
        "node",
        server,
    ]);
    let workers = corral.wait_spawned(2);
    // `process.send('ready')` once listening, a status line every second.
    corral.wait_for("both workers ready and reporting status", DEADLINE, |events| {
        workers
            .iter()
            .all(|&(w, _)| {
                !of_worker(events, "ready", w).is_empty()
                    && of_worker(events, "message", w).iter().any(|e| is_status(&e["data"]))
            })
            .then_some(())
    });

    let pids: BTreeSet<u32> = workers.iter().map(|&(_, pid)| pid).collect();
    // Which worker accepts a connection is the kernel's choice: ask until both answered.
    let (answered, failures) = crate::node_cluster::ask_until_all_answer(port, &pids);
    assert!(failures.is_empty(), "failed requests: {failures:?}\n{}", corral.dump());
    assert_eq!(answered, pids, "answers from both workers\n{}", corral.dump());

    corral.signal(libc::SIGTERM);
    assert_eq!(corral.wait_exit(DEADLINE).code(), Some(0), "{}", corral.dump());
    let events = corral.events();
    let dump = corral.dump();
    for &(worker, pid) in &workers {
        let said = format!("Worker {pid} shutting down gracefully (shutdown message)");
        let output = of_worker(&events, "output", worker);
        assert!(output.iter().any(|e| e["line"] == said.as_str()), "no {said:?}\n{dump}");
        let exits = of_worker(&events, "exited", worker);
        assert_eq!(exits.len(), 1, "{dump}");
        let exit = exits[0];
        assert_eq!((&exit["code"], &exit["reason"]), (&0.into(), &"shutdown".into()), "{exit}");
    }
    assert_eq!(named(&events, "ready").len(), 2, "one ready per worker\n{dump}");
    // Heartbeats keep the worker alive; they are not reported as messages.
    let heartbeats =
        named(&events, "message").iter().filter(|e| e["data"]["type"] == "heartbeat").count();
    assert_eq!(heartbeats, 0, "{dump}");
    corral.assert_nothing_left();
}

/// `{"type":"status","text":"serving, N requests"}`, as `server.js` sends it.
fn is_status(data: &Value) -> bool {
    data["type"] == "status"
        && data.as_object().is_some_and(|o| o.len() == 2)
        && data["text"].as_str().is_some_and(|t| t.starts_with("serving, "))
}

/// Two `corral -- node server.js` at once: the first is instance `node-server` (the script
/// names it), the second, finding that name taken, `node-server-2`; both serve, each says
/// its name, and `ctl -I` reaches each.
#[test]
fn two_node_corrals_run_side_by_side_under_names_of_their_own() {
    if !node_on_path() {
        println!(
            "SKIPPED node::two_node_corrals_run_side_by_side_under_names_of_their_own: no `node` on PATH"
        );
        return;
    }
    let server = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/server.js");
    let server = server.to_str().expect("the repository path is UTF-8");
    let ports = [free_port(), free_port()];
    let args = |port: u16| {
        ["-w", "1", "--listen", &format!("127.0.0.1:{port}"), "--", "node", server]
            .map(String::from)
    };
    let first = Corral::start(&args(ports[0]));
    let started = |corral: &Corral| {
        corral.wait_for("supervisor_started", DEADLINE, |events| {
            named(events, "supervisor_started").first().map(|&e| e["instance"].clone())
        })
    };
    assert_eq!(started(&first), "node-server", "{}", first.dump());
    // The same runtime directory, so the second sees the first's socket.
    let dir = first.runtime_dir().to_str().expect("UTF-8").to_string();
    let second = Corral::start_with_env(&args(ports[1]), &[("XDG_RUNTIME_DIR", &dir)]);
    assert_eq!(started(&second), "node-server-2", "{}", second.dump());

    for (corral, port, name) in
        [(&first, ports[0], "node-server"), (&second, ports[1], "node-server-2")]
    {
        let pid = corral.wait_spawned(1)[0].1;
        corral.wait_for("ready", DEADLINE, |events| {
            (!named(events, "ready").is_empty()).then_some(())
        });
        assert_eq!(hello(port), Ok(pid), "{name} serves\n{}", corral.dump());
        let status = corral.ctl(&["-I", name, "status", "--json"]);
        let stdout = String::from_utf8_lossy(&status.stdout);
        assert!(
            status.status.success(),
            "ctl -I {name}: {stdout}{}",
            String::from_utf8_lossy(&status.stderr)
        );
        let workers: Value = serde_json::from_str(&stdout).expect("status --json");
        assert_eq!(workers[0]["pid"], pid, "ctl -I {name} reaches its own corral: {workers}");
    }
    for mut corral in [first, second] {
        corral.signal(libc::SIGTERM);
        assert_eq!(corral.wait_exit(DEADLINE).code(), Some(0), "{}", corral.dump());
        corral.assert_nothing_left();
    }
}
