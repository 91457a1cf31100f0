//! `/metrics` as `promtool` and a kept-alive scraper see it.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::scrape;
use crate::util::{Corral, DEADLINE, free_port, wait_until};

const CLASSIC: &str = "Accept: text/plain;version=0.0.4\r\n";

fn crashing_reporter() -> (Corral, u16) {
    let port = free_port();
    let script = r#"printf '{"type":"metric","name":"queue","value":3}\n{"type":"job"}\n' >&"$CORRAL_EVENT_FD"; sleep 0.2; exit 1"#;
    let port_text = port.to_string();
    let args = ["-I", "scraped", "-w", "2", "--metrics", &port_text, "--", "sh", "-c", script];
    let corral = Corral::start(&args);
    // Until a restart and a reported metric show: every family has samples.
    let mut body = String::new();
    let ready = wait_until(DEADLINE, || {
        body = scrape(port, CLASSIC).map(|r| r.1).unwrap_or_default();
        let crashed = body.contains("reason=\"crashed\"} ");
        crashed && !body.contains("reason=\"crashed\"} 0\n") && body.contains("name=\"queue\"")
    });
    assert!(ready, "no crashes or metrics in:\n{body}");
    (corral, port)
}

/// Every sample's series has a HELP and a TYPE line of its own name, as in the classic
/// format (what `promtool check metrics` asks first).
fn assert_classic(body: &str) {
    let described = |kind: &str| -> HashSet<&str> {
        let prefix = format!("# {kind} ");
        body.lines()
            .filter_map(|l| l.strip_prefix(prefix.as_str()))
            .filter_map(|l| l.split(' ').next())
            .collect()
    };
    let (help, types) = (described("HELP"), described("TYPE"));
    for line in body.lines().filter(|l| !l.starts_with('#')) {
        let name = line.split(['{', ' ']).next().unwrap_or_default();
        assert!(help.contains(name) && types.contains(name), "no HELP/TYPE for {name}:\n{body}");
    }
    assert!(!body.contains("# EOF") && !body.contains("# UNIT"), "{body}");
}

#[test]
fn the_classic_format_is_served_when_asked_and_promtool_clean() {
    let (mut corral, port) = crashing_reporter();
    let (head, body) = scrape(port, CLASSIC).expect("scrape");
    assert!(head.contains("Content-Type: text/plain; version=0.0.4"), "{head}");
    assert_classic(&body);
    assert!(body.contains("corral_exits_total{"), "{body}");
    let promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    if let Ok(mut promtool) = promtool {
        promtool.stdin.take().expect("stdin").write_all(body.as_bytes()).expect("feed");
        let out = promtool.wait_with_output().expect("promtool ends");
        let said = String::from_utf8_lossy(&out.stderr).into_owned()
            + &String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && said.trim().is_empty(), "promtool: {said}\n{body}");
    } else {
        eprintln!("skipped promtool: not installed (apt-get install prometheus)");
    }
    // Prometheus asks for OpenMetrics and gets it.
    let openmetrics = "Accept: application/openmetrics-text;version=1.0.0,text/plain;q=0.5\r\n";
    let (head, body) = scrape(port, openmetrics).expect("scrape");
    assert!(head.contains("application/openmetrics-text"), "{head}");
    assert!(body.ends_with("# EOF\n"), "{body}");
    corral.signal(libc::SIGTERM);
    corral.wait_exit(DEADLINE);
}

/// Reads one response of a kept-alive connection (by its Content-Length).
fn response(reader: &mut BufReader<TcpStream>) -> String {
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("head");
        if let Some(n) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = n.trim().parse().expect("length");
        }
        if line == "\r\n" {
            break;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).expect("body");
    String::from_utf8(body).expect("UTF-8")
}

#[test]
fn kept_alive_scrapes_do_not_wait_for_delayed_acks() {
    let (mut corral, port) = crashing_reporter();
    let stream = TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port))).expect("connect");
    stream.set_read_timeout(Some(DEADLINE)).expect("timeout");
    let mut writer = stream.try_clone().expect("clone");
    let mut reader = BufReader::new(stream);
    let mut took = Vec::new();
    for _ in 0..21 {
        let asked = Instant::now();
        writer.write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").expect("ask");
        assert!(response(&mut reader).contains("corral_exits_total"));
        took.push(asked.elapsed());
    }
    took.sort();
    // Before: ~44 ms each (headers and body in two writes, Nagle and delayed ACK).
    let median = took[took.len() / 2];
    assert!(median < Duration::from_millis(20), "median scrape {median:?} ({took:?})");
    corral.signal(libc::SIGTERM);
    corral.wait_exit(DEADLINE);
}
