//! The test's `NOTIFY_SOCKET`, as systemd listens on it.

use std::os::unix::net::UnixDatagram;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The test's `NOTIFY_SOCKET`, as systemd listens on it: every datagram and when it came.
pub struct NotifySocket {
    _dir: tempfile::TempDir,
    pub path: String,
    heard: Arc<Mutex<Vec<(Instant, String)>>>,
}

impl NotifySocket {
    pub fn listen() -> NotifySocket {
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
        NotifySocket { path: path.display().to_string(), _dir: dir, heard }
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
