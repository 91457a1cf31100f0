//! Tests of the demo's HTTP server: the head parser as a pure function, and the serve loop on
//! a real loopback socket driven by a blocking std client.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream as StdStream};
use std::sync::mpsc;
use std::time::Instant;

use super::*;

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";

/// The serve loop on its own runtime thread; stopped (with a deadline) when dropped.
struct Server {
    address: SocketAddr,
    served: Arc<AtomicU64>,
    stop: watch::Sender<bool>,
    finished: mpsc::Receiver<()>,
}

impl Server {
    fn start() -> Server {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let address = listener.local_addr().expect("address");
        let served = Arc::new(AtomicU64::new(0));
        let (stop, stopped) = watch::channel(false);
        let (done, finished) = mpsc::channel();
        let counter = Arc::clone(&served);
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let listener = TcpListener::from_std(listener).expect("tokio listener");
                serve(listener, counter, stopped, Duration::from_secs(2)).await;
            });
            let _ = done.send(());
        });
        Server { address, served, stop, finished }
    }

    fn connect(&self) -> BufReader<StdStream> {
        let stream = StdStream::connect(self.address).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(10))).expect("read timeout");
        BufReader::new(stream)
    }

    /// Asks the loop to stop and waits for it, returning how long that took.
    fn stop(&self) -> Duration {
        let started = Instant::now();
        let _ = self.stop.send(true);
        self.finished.recv_timeout(Duration::from_secs(10)).expect("serve returns after a stop");
        started.elapsed()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// One response: its status line, its headers (names lowercased) and its body.
struct Response {
    status: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

fn read_response(client: &mut BufReader<StdStream>, head_only: bool) -> Response {
    let mut line = String::new();
    client.read_line(&mut line).expect("status line");
    let status = line.trim_end().to_owned();
    let mut headers = Vec::new();
    loop {
        line.clear();
        client.read_line(&mut line).expect("header line");
        let Some((name, value)) = line.trim_end().split_once(':') else {
            break;
        };
        headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
    }
    let mut response = Response { status, headers, body: String::new() };
    let length: usize =
        response.header("content-length").and_then(|l| l.parse().ok()).expect("Content-Length");
    if !head_only {
        let mut body = vec![0; length];
        client.read_exact(&mut body).expect("body");
        response.body = String::from_utf8(body).expect("UTF-8 body");
    }
    response
}

fn assert_closed(client: &mut BufReader<StdStream>) {
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).expect("EOF");
    assert!(rest.is_empty(), "unexpected bytes {rest:?}");
}

#[test]
fn keep_alive_serves_two_requests_on_one_connection() {
    let server = Server::start();
    let mut client = server.connect();
    for _ in 0..2 {
        client.get_mut().write_all(GET).expect("request");
        let response = read_response(&mut client, false);
        assert_eq!(response.status, "HTTP/1.1 200 OK");
        assert_eq!(response.header("content-type"), Some("text/plain"));
        assert_eq!(response.header("connection"), None);
        let expected = format!("Hello from worker {}\n", std::process::id());
        assert_eq!(response.body, expected);
    }
    assert_eq!(server.served.load(Ordering::Relaxed), 2);
}

#[test]
fn pipelined_requests_split_across_reads_and_bodies_are_skipped() {
    let server = Server::start();
    let mut client = server.connect();
    let post = b"POST /x HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello world";
    let all = [post.as_slice(), GET, b"HEAD / HTTP/1.1\r\n\r\n"].concat();
    // A byte at a time: heads and the body arrive in pieces, and the last two back to back.
    let (first, rest) = all.split_at(post.len() + 5);
    for byte in first {
        client.get_mut().write_all(&[*byte]).expect("byte");
    }
    client.get_mut().write_all(rest).expect("rest");
    for head_only in [false, false, true] {
        let response = read_response(&mut client, head_only);
        assert_eq!(response.status, "HTTP/1.1 200 OK");
    }
    assert_eq!(server.served.load(Ordering::Relaxed), 3);
}

#[test]
fn expect_continue_gets_an_interim_response() {
    let server = Server::start();
    let mut client = server.connect();
    let head = b"PUT / HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n";
    client.get_mut().write_all(head).expect("head");
    let mut interim = String::new();
    client.read_line(&mut interim).expect("100");
    assert_eq!(interim, "HTTP/1.1 100 Continue\r\n");
    client.read_line(&mut interim).expect("blank line");
    client.get_mut().write_all(b"abc").expect("body");
    assert_eq!(read_response(&mut client, false).status, "HTTP/1.1 200 OK");
}

#[test]
fn connection_close_and_http_10_are_honoured() {
    let server = Server::start();
    let mut client = server.connect();
    let request = b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n";
    client.get_mut().write_all(request).expect("request");
    let response = read_response(&mut client, false);
    assert_eq!(response.header("connection"), Some("close"));
    assert_closed(&mut client);

    let mut client = server.connect();
    let request = b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
    client.get_mut().write_all(request).expect("request");
    let response = read_response(&mut client, false);
    assert_eq!(response.header("connection"), Some("keep-alive"));
    client.get_mut().write_all(b"GET / HTTP/1.0\r\n\r\n").expect("request");
    assert_eq!(read_response(&mut client, false).header("connection"), Some("close"));
    assert_closed(&mut client);
}

#[test]
fn malformed_and_oversized_requests_are_refused() {
    let server = Server::start();
    let mut client = server.connect();
    client.get_mut().write_all(b"GARBAGE\x01 / HTTP/1.1\r\n\r\n").expect("request");
    let response = read_response(&mut client, false);
    assert_eq!(response.status, "HTTP/1.1 400 Bad Request");
    assert_eq!(response.header("connection"), Some("close"));
    assert_closed(&mut client);

    let mut client = server.connect();
    let chunked = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    client.get_mut().write_all(chunked).expect("request");
    assert_eq!(read_response(&mut client, false).status, "HTTP/1.1 400 Bad Request");

    let mut client = server.connect();
    let mut huge = b"GET / HTTP/1.1\r\nX-Big: ".to_vec();
    huge.resize(20 * 1024, b'a');
    client.get_mut().write_all(&huge).expect("request");
    let response = read_response(&mut client, false);
    assert_eq!(response.status, "HTTP/1.1 431 Request Header Fields Too Large");
    assert_eq!(server.served.load(Ordering::Relaxed), 0);
}

#[test]
fn stopping_closes_idle_connections_and_the_listener() {
    let server = Server::start();
    let mut idle = server.connect();
    idle.get_mut().write_all(GET).expect("request");
    read_response(&mut idle, false);
    // Held by the idle connection, the stop would wait out its idle timeout; anything well
    // under that is the server's own pace, however loaded the machine.
    let took = server.stop();
    assert!(took < IDLE_TIMEOUT / 2, "idle connections must not hold the stop: {took:?}");
    assert_closed(&mut idle);
    assert!(StdStream::connect(server.address).is_err(), "listener closed");
}

#[test]
fn a_request_in_flight_at_stop_is_answered_then_closed() {
    let server = Server::start();
    let mut client = server.connect();
    let head = b"PUT / HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n";
    client.get_mut().write_all(head).expect("head");
    // The interim response proves the server is inside this request when the stop comes.
    let mut interim = String::new();
    client.read_line(&mut interim).expect("100");
    client.read_line(&mut interim).expect("blank line");
    server.stop.send(true).expect("serve loop alive");
    client.get_mut().write_all(b"abc").expect("body");
    let response = read_response(&mut client, false);
    assert_eq!(response.status, "HTTP/1.1 200 OK");
    assert_eq!(response.header("connection"), Some("close"));
    assert_closed(&mut client);
    server
        .finished
        .recv_timeout(Duration::from_secs(10))
        .expect("serve returns once the last request is answered");
}
