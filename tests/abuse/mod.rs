//! corral used as a hostile operator would (issue "trust under abuse"): storms, broken
//! pipes, idle and greedy clients, absurd input. Each test here failed before its fix.

mod config;
mod ctl;
mod exits;
mod greedy;
mod logs;
mod notify;
mod peers;
mod scrape;
mod storm;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The test's `NOTIFY_SOCKET`, as systemd listens on it: every datagram and when it came.
pub struct Manager {
    _dir: tempfile::TempDir,
    pub path: String,
    heard: Arc<Mutex<Vec<(Instant, String)>>>,
}

impl Manager {
    pub fn listen() -> Manager {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("notify");
        let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
        let heard = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&heard);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = socket.recv(&mut buf) {
                let message = String::from_utf8_lossy(&buf[..n]).into_owned();
                sink.lock().expect("lock").push((Instant::now(), message));
            }
        });
        Manager { path: path.display().to_string(), _dir: dir, heard }
    }

    pub fn heard(&self) -> Vec<String> {
        self.heard.lock().expect("lock").iter().map(|(_, m)| m.clone()).collect()
    }

    /// The longest gap between `WATCHDOG=1` pings (or since the last one) within `from..to`.
    pub fn longest_silence(&self, from: Instant, to: Instant) -> Duration {
        let heard = self.heard.lock().expect("lock").clone();
        let pings = heard.into_iter().filter(|(_, m)| m == "WATCHDOG=1").map(|(t, _)| t);
        let mut last = from;
        let mut longest = Duration::ZERO;
        for t in pings.filter(|t| *t > from && *t <= to).chain([to]) {
            longest = longest.max(t - last);
            last = t;
        }
        longest
    }
}

/// `GET /metrics` with `extra` header lines, on a fresh connection: the head and the body.
pub fn scrape(port: u16, extra: &str) -> std::io::Result<(String, String)> {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let head =
        format!("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}Connection: close\r\n\r\n");
    stream.write_all(head.as_bytes())?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    Ok((head.to_string(), body.to_string()))
}
