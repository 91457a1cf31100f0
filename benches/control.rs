//! The control socket (docs/control.md) on the real binary, a headless corral of 64 idle workers:
//!
//! - `status` round trips: over one connection, over a fresh connection each (connect,
//!   hello, request, reply), and as whole `corral ctl status` processes;
//! - a change on an attached screen: from a `kill` sent on the socket to the restart
//!   counted on a `corral attach` screen (a pty read through vt100), which includes the
//!   restart itself;
//! - the supervisor's CPU with nobody attached, with 1 and with 10 `corral attach` clients
//!   on their own 120×40 ptys (goal for 10: under 1% of a core).
//!
//! `cargo bench --bench control`; under `cargo test` a short smoke run that states no goals.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::cpu_seconds;
use portable_pty::{CommandBuilder, PtySize, native_pty_system};

struct Shop {
    child: Child,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Shop {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_shop(workers: u32) -> Shop {
    let dir = tempfile::tempdir().expect("temp dir");
    let child = Command::new(common::corral_bin())
        .args(["--no-ui", "-I", "shop", "-n", "web", "-w", &workers.to_string()])
        .args(["--backoff", "0", "--", "sleep", "3600"])
        .env("XDG_RUNTIME_DIR", dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("corral starts");
    let socket = dir.path().join("corral/shop.sock");
    let shop = Shop { child, socket, _dir: dir };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(mut c) = Client::connect(&shop.socket)
            && c.call(r#"{"cmd":"status"}"#)["groups"][0]["up"] == workers
        {
            return shop;
        }
        assert!(Instant::now() < deadline, "{workers} workers did not come up");
        std::thread::sleep(Duration::from_millis(50));
    }
}

struct Client {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    first: bool,
    line: String,
}

impl Client {
    fn connect(path: &Path) -> std::io::Result<Client> {
        let stream = UnixStream::connect(path)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        let writer = stream.try_clone()?;
        let mut client =
            Client { reader: BufReader::new(stream), writer, first: true, line: String::new() };
        client.read(); // the hello
        Ok(client)
    }

    fn read(&mut self) -> &str {
        self.line.clear();
        self.reader.read_line(&mut self.line).expect("a line from corral");
        &self.line
    }

    /// `request` (an object without `v`/`id`), its reply parsed.
    fn call(&mut self, request: &str) -> serde_json::Value {
        let body = request.strip_prefix('{').expect("an object");
        let v = if self.first { r#""v":1,"# } else { "" };
        self.first = false;
        let line = format!("{{{v}\"id\":1,{body}\n");
        self.writer.write_all(line.as_bytes()).expect("send");
        serde_json::from_str(self.read()).expect("a JSON reply")
    }
}

fn stats(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.9), at(0.99))
}

fn timed(n: usize, mut once: impl FnMut()) -> Vec<f64> {
    (0..n)
        .map(|_| {
            let t = Instant::now();
            once();
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect()
}

/// A `corral attach` on a 120×40 pty of its own; with `screen`, its output is parsed.
struct Attached {
    child: Box<dyn portable_pty::Child + Send + Sync>,
    screen: Arc<Mutex<vt100::Parser>>,
    _master: Box<dyn portable_pty::MasterPty + Send>,
}

impl Drop for Attached {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn attach(shop: &Shop, parse: bool) -> Attached {
    let pair = native_pty_system()
        .openpty(PtySize { rows: 40, cols: 120, pixel_width: 0, pixel_height: 0 })
        .expect("pty");
    let mut cmd = CommandBuilder::new(common::corral_bin());
    cmd.args(["attach", "--control"]);
    cmd.arg(&shop.socket);
    cmd.env("TERM", "xterm-256color");
    let child = pair.slave.spawn_command(cmd).expect("attach starts");
    drop(pair.slave);
    let size = |n: u16| std::num::NonZeroU16::new(n).expect("non-zero");
    let screen = Arc::new(Mutex::new(vt100::Parser::new(size(40), size(120), 0)));
    let mut reader = pair.master.try_clone_reader().expect("reader");
    let sink = Arc::clone(&screen);
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        while let Ok(n @ 1..) = reader.read(&mut buf) {
            if parse && let Ok(mut p) = sink.lock() {
                p.process(&buf[..n]);
            }
        }
    });
    Attached { child, screen, _master: pair.master }
}

fn wait_screen(a: &Attached, what: &str, deadline: Duration) -> Option<Duration> {
    let t0 = Instant::now();
    while t0.elapsed() < deadline {
        if a.screen.lock().is_ok_and(|p| p.screen().contents().contains(what)) {
            return Some(t0.elapsed());
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    None
}

fn cpu_percent(pid: u32, window: Duration) -> f64 {
    let c0 = cpu_seconds(pid).unwrap_or(0.0);
    std::thread::sleep(window);
    (cpu_seconds(pid).unwrap_or(c0) - c0) / window.as_secs_f64() * 100.0
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (n, spawns, kills) = if full { (1000, 100, 30) } else { (50, 3, 2) };
    let window = if full { Duration::from_secs(20) } else { Duration::from_secs(1) };
    let goal = |text: &'static str| if full { text } else { "" };
    let shop = start_shop(64);
    let pid = shop.child.id();

    let mut one = Client::connect(&shop.socket).expect("connect");
    let same = timed(n, || drop(one.call(r#"{"cmd":"status"}"#)));
    let fresh = timed(n, || {
        let mut c = Client::connect(&shop.socket).expect("connect");
        drop(c.call(r#"{"cmd":"status"}"#));
    });
    let ctl = timed(spawns, || {
        let out = Command::new(common::corral_bin())
            .args(["ctl", "--control"])
            .arg(&shop.socket)
            .arg("status")
            .output()
            .expect("ctl runs");
        assert!(out.status.success(), "ctl status failed");
    });

    // One attach whose screen is read: each kill's restart, until it shows.
    let watcher = attach(&shop, true);
    wait_screen(&watcher, "web 64/64 up", Duration::from_secs(30)).expect("the attached table");
    let mut latency = Vec::new();
    for k in 1..=kills {
        let slot = 1 + (k - 1) % 64;
        let t = Instant::now();
        drop(one.call(&format!(r#"{{"cmd":"kill","target":"web.{slot}"}}"#)));
        let shown = wait_screen(&watcher, &format!("restarts {k} "), Duration::from_secs(10));
        let at = shown.map(|_| t.elapsed().as_secs_f64() * 1000.0);
        latency.push(at.expect("the restart on the attached screen"));
    }
    std::thread::sleep(Duration::from_secs(2)); // the kills' CPU out of the windows
    drop(watcher);
    std::thread::sleep(Duration::from_millis(500));
    let alone = cpu_percent(pid, window);
    let single = attach(&shop, false);
    std::thread::sleep(Duration::from_secs(1));
    let with_one = cpu_percent(pid, window);
    let mut ten = vec![single];
    ten.extend((1..10).map(|_| attach(&shop, false)));
    std::thread::sleep(Duration::from_secs(2));
    let attach_pid = ten[0].child.process_id();
    let attach_c0 = attach_pid.and_then(cpu_seconds);
    let with_ten = cpu_percent(pid, window);
    let attach_cpu = match (attach_pid.and_then(cpu_seconds), attach_c0) {
        (Some(c1), Some(c0)) => (c1 - c0) / window.as_secs_f64() * 100.0,
        _ => f64::NAN,
    };
    let connected = Client::connect(&shop.socket)
        .map(|mut c| c.call(r#"{"cmd":"status"}"#)["workers"].as_array().map_or(0, Vec::len));

    println!("\ncontrol socket, headless corral with 64 idle workers");
    println!("{:<44} {:>9} {:>9} {:>9}", "", "median", "p90", "p99");
    let row = |name: &str, v: Vec<f64>| {
        let (m, p90, p99) = stats(v);
        println!("{name:<44} {m:>6.3} ms {p90:>6.3} ms {p99:>6.3} ms");
    };
    row(&format!("status, one connection (n = {n})"), same);
    row(&format!("status, a fresh connection each (n = {n})"), fresh);
    row(&format!("`corral ctl status` process (n = {spawns})"), ctl);
    row(&format!("kill → restart on an attached screen (n = {kills})"), latency);
    if full {
        println!("  (goal for the last: a change on an attached screen within 100 ms)");
    }
    println!("supervisor CPU ({} s windows):", window.as_secs());
    println!("  nobody attached:        {alone:5.2}% of one core");
    println!("  1 attach:               {with_one:5.2}%");
    println!("  10 attach:              {with_ten:5.2}%{}", goal(" (goal: under 1%)"));
    println!("  one attach client itself: {attach_cpu:5.2}%");
    println!("  workers still served after: {}", connected.unwrap_or(0));
}
