//! The demo (SPEC §8): two HTTP workers share one port; killing one in the middle of a run
//! of requests costs at most the request in flight, and its replacement serves again.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::util::{
    Corral, DEADLINE, free_port, of_worker, pid_alive, send_signal, spawned, wait_until,
};

const REQUESTS: usize = 200;
const KILL_AT: usize = 100;
/// A request in flight on the killed worker may fail (reset or closed); nothing else may.
const ALLOWED_FAILURES: usize = 2;
const CLIENT_TIMEOUT: Duration = Duration::from_secs(2);

/// One `GET /`; the pid from `Hello from worker <pid>`.
fn hello(port: u16) -> Result<u32, String> {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream =
        TcpStream::connect_timeout(&address, CLIENT_TIMEOUT).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(CLIENT_TIMEOUT)).map_err(|e| e.to_string())?;
    stream.set_write_timeout(Some(CLIENT_TIMEOUT)).map_err(|e| e.to_string())?;
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let response = read_response(&mut stream)?;
    if !response.starts_with("HTTP/1.1 200") && !response.starts_with("HTTP/1.0 200") {
        return Err(format!("not a 200: {response:?}"));
    }
    let (_, after) = response
        .split_once("Hello from worker ")
        .ok_or_else(|| format!("no greeting: {response:?}"))?;
    let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().map_err(|_| format!("no pid in the greeting: {response:?}"))
}

/// Reads one response: up to EOF, or the end of the body its `Content-Length` announces
/// (a server may keep the connection open despite `Connection: close`).
fn read_response(stream: &mut TcpStream) -> Result<String, String> {
    let mut bytes = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        if let Some(complete) = complete_length(&bytes) {
            bytes.truncate(complete);
            break;
        }
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => bytes.extend_from_slice(&buffer[..n]),
            Err(error) => {
                return Err(format!("{error} after {:?}", String::from_utf8_lossy(&bytes)));
            }
        }
    }
    String::from_utf8(bytes).map_err(|e| e.to_string())
}

/// The total length of the response in `bytes`, once its headers and body are all there.
fn complete_length(bytes: &[u8]) -> Option<usize> {
    let text = std::str::from_utf8(bytes).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let length: usize = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("content-length").then(|| value.trim().parse().ok())?
    })?;
    (body.len() >= length).then_some(head.len() + 4 + length)
}

#[test]
fn demo_serves_through_a_worker_kill() {
    let port = free_port().to_string();
    let mut corral = Corral::start_raw(&[
        "demo",
        "--port",
        &port,
        "--crash-after",
        "60s",
        "--no-ui",
        "--log-format",
        "json",
        "-w",
        "2",
    ]);
    let port: u16 = port.parse().expect("port");
    let first = corral.wait_spawned(2);
    corral.wait_for("both demo workers ready", DEADLINE, |events| {
        first.iter().all(|&(w, _)| !of_worker(events, "ready", w).is_empty()).then_some(())
    });
    let (victim, victim_pid) = first[0];

    let mut answers: Vec<(usize, u32)> = Vec::new();
    let mut failures: Vec<(usize, String)> = Vec::new();
    for i in 0..REQUESTS {
        if i == KILL_AT {
            assert!(send_signal(victim_pid, libc::SIGKILL), "demo worker {victim_pid} is gone");
        }
        match hello(port) {
            Ok(pid) => answers.push((i, pid)),
            Err(error) => failures.push((i, error)),
        }
    }
    assert!(failures.len() <= ALLOWED_FAILURES, "failed requests: {failures:?}\n{}", corral.dump());
    let known: Vec<u32> = spawned(&corral.events()).into_iter().map(|(_, pid)| pid).collect();
    for &(i, pid) in &answers {
        assert!(known.contains(&pid), "request {i} answered by {pid}, not a worker: {known:?}");
        // SIGKILL is final once kill(2) returns: the victim runs no more code.
        assert!(i < KILL_AT || pid != victim_pid, "request {i} answered by the killed worker");
    }

    // The slot comes back under a new pid, and that pid serves too. Which worker accepts a
    // connection is the kernel's choice, so keep asking (bounded) until the new one does.
    let replacement = corral.wait_for("the killed worker's replacement", DEADLINE, |events| {
        spawned(events).into_iter().filter(|&(w, _)| w == victim).nth(1).map(|(_, pid)| pid)
    });
    assert_ne!(replacement, victim_pid);
    let answered = wait_until(DEADLINE, || hello(port) == Ok(replacement));
    assert!(answered, "the replacement {replacement} never answered\n{}", corral.dump());
    let events = corral.events();
    let exited = of_worker(&events, "exited", victim);
    assert_eq!(exited.first().map(|e| &e["signal"]), Some(&"SIGKILL".into()), "{exited:?}");
    assert_eq!(exited.first().map(|e| &e["reason"]), Some(&"crashed".into()), "{exited:?}");
    assert!(!pid_alive(victim_pid), "the killed worker {victim_pid} is still alive");

    corral.signal(libc::SIGTERM);
    assert_eq!(corral.wait_exit(DEADLINE).code(), Some(0), "{}", corral.dump());
    corral.assert_nothing_left();
}
