use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::TcpStream;

use super::*;

fn parsed(head: &str) -> Option<Request> {
    parse(head.as_bytes()).map(|(r, _)| r)
}

#[expect(clippy::unnecessary_wraps, reason = "compared with what `parse` answers")]
const fn metrics(head_only: bool, keep_alive: bool) -> Option<Request> {
    Some(Request::Metrics { head_only, keep_alive, format: Format::Classic })
}

#[expect(clippy::unnecessary_wraps, reason = "compared with what `parse` answers")]
const fn refused(r: Refusal) -> Option<Request> {
    Some(Request::Refused(r))
}

#[test]
fn only_get_and_head_of_metrics_are_served() {
    assert_eq!(parsed("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"), metrics(false, true));
    assert_eq!(parsed("HEAD /metrics HTTP/1.1\r\n\r\n"), metrics(true, true));
    assert_eq!(parsed("GET /metrics?x=1 HTTP/1.1\r\n\r\n"), metrics(false, true));
    assert_eq!(parsed("GET / HTTP/1.1\r\n\r\n"), refused(Refusal::NotFound));
    assert_eq!(parsed("GET /metrics/x HTTP/1.1\r\n\r\n"), refused(Refusal::NotFound));
    assert_eq!(parsed("POST /metrics HTTP/1.1\r\n\r\n"), refused(Refusal::MethodNotAllowed));
    assert_eq!(parsed("DELETE /metrics HTTP/1.1\r\n\r\n"), refused(Refusal::MethodNotAllowed));
    assert_eq!(parsed("\u{1}\u{2} nonsense\r\n\r\n"), refused(Refusal::BadRequest));
}

#[test]
fn the_health_endpoints_are_served_too() {
    let probe = |probe, head_only| Some(Request::Probe { probe, head_only, keep_alive: true });
    assert_eq!(parsed("GET /livez HTTP/1.1\r\n\r\n"), probe(Probe::Live, false));
    assert_eq!(parsed("GET /readyz?verbose HTTP/1.1\r\n\r\n"), probe(Probe::Ready, false));
    assert_eq!(parsed("HEAD /readyz HTTP/1.1\r\n\r\n"), probe(Probe::Ready, true));
    assert_eq!(parsed("POST /livez HTTP/1.1\r\n\r\n"), refused(Refusal::MethodNotAllowed));
    assert_eq!(parsed("GET /healthz HTTP/1.1\r\n\r\n"), refused(Refusal::NotFound));
    let not_found = Refusal::NotFound.response();
    let text = String::from_utf8_lossy(not_found);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or_default();
    assert!(head.contains(&format!("Content-Length: {}", body.len())), "{text}");
}

#[test]
fn keep_alive_follows_the_version_and_the_headers() {
    assert_eq!(parsed("GET /metrics HTTP/1.0\r\n\r\n"), metrics(false, false));
    let http_10_kept = "GET /metrics HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
    assert_eq!(parsed(http_10_kept), metrics(false, true));
    let closed = "GET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n";
    assert_eq!(parsed(closed), metrics(false, false));
    let body = "GET /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc";
    assert_eq!(parsed(body), metrics(false, false), "a body is not read, so no reuse");
}

#[test]
fn heads_are_bounded() {
    assert_eq!(parsed("GET /metrics HTTP/1.1\r\nHost: x\r\n"), None, "more to come");
    let big = format!("GET /metrics HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(MAX_HEAD));
    assert_eq!(parsed(&big), refused(Refusal::HeadTooLarge));
    let unfinished = format!("GET /metrics HTTP/1.1\r\nX: {}", "a".repeat(MAX_HEAD));
    assert_eq!(parsed(&unfinished), refused(Refusal::HeadTooLarge));
    let mut many = String::from("GET /metrics HTTP/1.1\r\n");
    for i in 0..=crate::http::MAX_HEADERS {
        let _ = write!(many, "X{i}: y\r\n");
    }
    many.push_str("\r\n");
    assert_eq!(parsed(&many), refused(Refusal::HeadTooLarge));
}

#[test]
fn the_head_length_lets_a_kept_alive_connection_go_on() {
    let two = "GET /metrics HTTP/1.1\r\n\r\nHEAD /metrics HTTP/1.1\r\n\r\n";
    let (first, len) = parse(two.as_bytes()).expect("complete");
    assert_eq!(Some(first), metrics(false, true));
    assert_eq!(parsed(&two[len..]), metrics(true, true));
}

fn get(addr: SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let request = format!("GET {path} HTTP/1.1\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read to the close");
    response
}

#[test]
fn idle_connections_make_room_for_a_scrape() {
    let listener = bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
    let addr = listener.local_addr().expect("addr");
    let publisher = start(listener, "t".into()).expect("start");
    publisher.publish(Model { instance: "t".into(), ..Model::default() });
    let idle: Vec<TcpStream> =
        (0..MAX_CONNECTIONS * 3).map(|_| TcpStream::connect(addr).expect("connect")).collect();
    let response = get(addr, "/metrics");
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    // No Accept: the classic text format, as the reference client libraries answer.
    assert!(response.contains("text/plain; version=0.0.4"), "{response}");
    assert!(!response.contains("# EOF"), "{response}");
    assert!(get(addr, "/").starts_with("HTTP/1.1 404 "));
    drop(idle);
}
