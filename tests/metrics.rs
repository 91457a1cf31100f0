//! `--metrics` (docs/production.md#prometheus): the Prometheus endpoint, scraped over TCP on 127.0.0.1 and read
//! with a parser that is not ours (Python's `prometheus_client`, whose `OpenMetrics` parser
//! refuses what the format does not allow), while workers crash, report their own numbers,
//! and scrapers misbehave.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::util::{
    Corral, DEADLINE, SHORT, deps, free_port, of_worker, send_signal, spawned, status_kib,
    test_worker, wait_until, with_command,
};

const FAST: [&str; 4] = ["--backoff", "20ms..200ms", "--kill-timeout", "300ms"];
const TIMEOUT: Duration = Duration::from_secs(5);

/// One request on a fresh connection; the status line and the body.
fn request(port: u16, head: &str) -> Result<(String, String), String> {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&address, TIMEOUT).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(TIMEOUT)).map_err(|e| e.to_string())?;
    stream.write_all(head.as_bytes()).map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).map_err(|e| e.to_string())?;
    let response = String::from_utf8(response).map_err(|e| e.to_string())?;
    let (head, body) = response.split_once("\r\n\r\n").ok_or(format!("no head: {response:?}"))?;
    let status = head.lines().next().unwrap_or_default().to_string();
    Ok((status, body.to_string()))
}

pub(crate) fn get(port: u16, path: &str) -> Result<(String, String), String> {
    // OpenMetrics, as Prometheus asks for it: the parser below reads that format.
    let accept = "Accept: application/openmetrics-text;version=1.0.0,text/plain;q=0.5";
    request(
        port,
        &format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{accept}\r\nConnection: close\r\n\r\n"),
    )
}

/// The body of a successful `GET /metrics`.
fn scrape(port: u16) -> Result<String, String> {
    let (status, body) = get(port, "/metrics")?;
    if status != "HTTP/1.1 200 OK" {
        return Err(format!("{status}: {body}"));
    }
    Ok(body)
}

/// One sample as the parser read it.
#[derive(Debug)]
struct Sample {
    family: String,
    kind: String,
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

const PARSE: &str = r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
out = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        out.append({"family": family.name, "kind": family.type, "name": s.name,
                    "labels": s.labels, "value": s.value})
print(json.dumps(out))
"#;

/// Every sample of `text`, through `prometheus_client`'s `OpenMetrics` parser.
fn parse(text: &str) -> Vec<Sample> {
    let mut python = Command::new(deps::python3())
        .args(["-c", PARSE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    python.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("feed the parser");
    let output = python.wait_with_output().expect("python3 ends");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the OpenMetrics parser refused the exposition:\n{stderr}\n--- exposition:\n{text}"
    );
    let samples: Vec<Value> = serde_json::from_slice(&output.stdout).expect("parser's JSON");
    samples
        .iter()
        .map(|s| Sample {
            family: s["family"].as_str().unwrap_or_default().to_string(),
            kind: s["kind"].as_str().unwrap_or_default().to_string(),
            name: s["name"].as_str().unwrap_or_default().to_string(),
            labels: serde_json::from_value(s["labels"].clone()).expect("labels"),
            value: s["value"].as_f64().expect("value"),
        })
        .collect()
}

/// The value of the sample `name` whose labels include all of `labels`.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s.name == name
                && labels.iter().all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(v))
        })
        .map(|s| s.value)
}

/// Scrapes until `found` holds on the parsed samples; fails with the last scrape.
fn scrape_until(
    corral: &Corral,
    port: u16,
    what: &str,
    found: impl Fn(&[Sample]) -> bool,
) -> Vec<Sample> {
    let mut last = String::new();
    let mut samples = Vec::new();
    let ok = wait_until(DEADLINE, || match scrape(port) {
        Ok(text) => {
            samples = parse(&text);
            last = text;
            found(&samples)
        }
        Err(e) => {
            last = e;
            false
        }
    });
    assert!(ok, "no scrape showed {what}; last:\n{last}\n{}", corral.dump());
    samples
}

#[test]
fn metrics_parse_as_openmetrics_and_follow_a_restart() {
    let port = free_port();
    let metric = r#"{"type":"metric","name":"requests","value":42}"#;
    let port_arg = port.to_string();
    let options =
        [&["-n", "web", "-w", "2", "-I", "shop", "--metrics", &port_arg][..], &FAST].concat();
    let mut corral = Corral::start(&with_command(&options, &test_worker(&["--send", metric])));
    let first = corral.wait_spawned(2);
    let w1 = [("instance", "shop"), ("group", "web"), ("worker", "1")];
    let samples = scrape_until(&corral, port, "both workers' own metric", |s| {
        (1..=2).all(|w| {
            let worker = w.to_string();
            let labels = [("instance", "shop"), ("group", "web"), ("worker", worker.as_str())];
            value(s, "corral_worker_metric", &[&labels[..], &[("name", "requests")]].concat())
                == Some(42.0)
        })
    });
    assert_eq!(value(&samples, "corral_worker_up", &w1), Some(1.0));
    assert_eq!(value(&samples, "corral_worker_restarts_total", &w1), Some(0.0));
    let running = [&w1[..], &[("state", "running")]].concat();
    assert_eq!(value(&samples, "corral_worker_state", &running), Some(1.0));
    let states = samples.iter().filter(|s| s.name == "corral_worker_state");
    assert_eq!(states.count(), 2, "one state series per worker");
    let group = [("instance", "shop"), ("group", "web")];
    assert_eq!(value(&samples, "corral_group_workers", &group), Some(2.0));
    assert!(value(&samples, "corral_messages_total", &group) >= Some(2.0));
    assert_eq!(value(&samples, "corral_protocol_errors_total", &group), Some(0.0));
    // CPU and memory come with the sampler's first round for the worker's process.
    let measured = scrape_until(&corral, port, "the sampler's memory", |s| {
        value(s, "corral_worker_memory_bytes", &w1).is_some_and(|b| b > 0.0)
    });
    assert!(value(&measured, "corral_worker_cpu_ratio", &w1).is_some());
    let families = ["corral_worker_uptime_seconds", "corral_worker_cpu_ratio"];
    for family in families.iter().chain(&["corral_worker_memory_bytes"]) {
        let s = measured.iter().find(|s| s.family == *family);
        assert_eq!(s.map(|s| s.kind.as_str()), Some("gauge"), "{family}: {s:?}");
    }
    for s in &samples {
        for label in ["instance", "group"] {
            assert!(s.labels.contains_key(label), "{s:?} has no {label}");
        }
    }

    let (victim, pid) = first[0];
    assert_eq!(victim, 1);
    assert!(send_signal(pid, libc::SIGKILL), "worker {pid} is gone");
    let exited = corral.wait_for("the victim's exit", DEADLINE, |events| {
        of_worker(events, "exited", victim).first().map(|&e| e.clone())
    });
    corral.wait_for("the respawn", DEADLINE, |e| (spawned(e).len() > 2).then_some(()));
    let reason = exited["reason"].as_str().expect("reason").to_string();
    let samples = scrape_until(&corral, port, "the restart", |s| {
        value(s, "corral_worker_restarts_total", &w1) == Some(1.0)
    });
    let exits = [&group[..], &[("reason", reason.as_str())]].concat();
    assert_eq!(value(&samples, "corral_exits_total", &exits), Some(1.0), "{reason}");
    let w2 = [("instance", "shop"), ("group", "web"), ("worker", "2")];
    assert_eq!(value(&samples, "corral_worker_restarts_total", &w2), Some(0.0));

    corral.signal(libc::SIGTERM);
    assert_eq!(corral.wait_exit(DEADLINE).code(), Some(0), "{}", corral.dump());
    corral.assert_nothing_left();
}

#[test]
fn metrics_serves_nothing_but_get_and_head_of_metrics() {
    let port = free_port();
    let port_arg = port.to_string();
    let corral = Corral::start(&with_command(&["--metrics", &port_arg], &test_worker(&[])));
    corral.wait_spawned(1);
    assert!(wait_until(DEADLINE, || scrape(port).is_ok()), "no scrape\n{}", corral.dump());
    let (status, _) = get(port, "/").expect("GET /");
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    let (status, _) = get(port, "/metrics/../etc").expect("GET elsewhere");
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    let posted = "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(request(port, posted).expect("POST").0, "HTTP/1.1 405 Method Not Allowed");
    let head = "HEAD /metrics HTTP/1.1\r\nConnection: close\r\n\r\n";
    let (status, body) = request(port, head).expect("HEAD");
    assert_eq!((status.as_str(), body.as_str()), ("HTTP/1.1 200 OK", ""));
    let huge = format!("GET /metrics HTTP/1.1\r\nX: {}\r\n\r\n", "y".repeat(16 * 1024));
    // Refused at 8 KiB: the 431 arrives, or the reset for the unread rest cuts it off.
    if let Ok((status, _)) = request(port, &huge) {
        assert!(status.starts_with("HTTP/1.1 431 "), "{status}");
    }
    assert!(scrape(port).is_ok(), "still serving");
}

#[test]
fn metrics_under_a_flood_of_half_open_connections() {
    let port = free_port();
    let port_arg = port.to_string();
    let options = [&["-w", "1", "--metrics", &port_arg][..], &FAST].concat();
    let mut corral = Corral::start(&with_command(&options, &test_worker(&[])));
    let first = corral.wait_spawned(1);
    assert!(wait_until(DEADLINE, || scrape(port).is_ok()), "no scrape\n{}", corral.dump());
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    // 200 that never send a byte, and some that stop halfway through a head.
    let mut flood: Vec<TcpStream> = Vec::new();
    for i in 0..200 {
        let Ok(mut stream) = TcpStream::connect_timeout(&address, TIMEOUT) else { continue };
        if i % 4 == 0 {
            let _ = stream.write_all(b"GET /metrics HTTP/1.1\r\nX-Slow: ");
        }
        flood.push(stream);
    }
    assert!(flood.len() > 100, "the flood connected: {}", flood.len());

    let (_, pid) = first[0];
    assert!(send_signal(pid, libc::SIGKILL), "worker {pid} is gone");
    corral
        .wait_for("the respawn during the flood", SHORT, |e| (spawned(e).len() > 1).then_some(()));
    let text = scrape(port).expect("a normal scrape answers during the flood");
    assert!(text.contains("corral_worker_restarts_total{"), "{text}");
    let rss = status_kib(corral.pid(), "VmRSS").expect("corral's memory");
    assert!(rss < 64 * 1024, "corral holds {rss} KiB during the flood");
    drop(flood);

    corral.signal(libc::SIGTERM);
    assert_eq!(corral.wait_exit(DEADLINE).code(), Some(0), "{}", corral.dump());
    corral.assert_nothing_left();
}

#[test]
fn metrics_on_a_busy_address_is_a_usage_error() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let port_arg = port.to_string();
    let mut corral = Corral::start(&with_command(&["--metrics", &port_arg], &test_worker(&[])));
    assert_eq!(corral.wait_exit(DEADLINE).code(), Some(2), "{}", corral.dump());
    assert_eq!(
        corral.stderr(),
        format!("corral: cannot serve metrics on 127.0.0.1:{port}: Address already in use\n")
    );
    assert!(spawned(&corral.events()).is_empty(), "nothing started\n{}", corral.dump());
    corral.assert_nothing_left();
}
