//! A cluster in one program (docs/library.md), Node's `cluster` shape: started by hand it is the
//! primary, which binds the port once and supervises copies of itself; each copy is a
//! worker that answers HTTP requests on that shared port with `Hello from worker <pid>`,
//! says when it is ready and reports a `requests` metric every second.
//!
//! ```text
//! cargo run --example cluster                                # the dashboard
//! cargo run --example cluster -- --no-ui --json --workers 4  # headless JSON events
//! curl http://127.0.0.1:3000/
//! ```
//!
//! Options (the workers get the same ones): `--port P` (3000), `--workers N` (2),
//! `--no-ui`, `--json`, `--metrics ADDR` (Prometheus text at `http://ADDR/metrics`).

use std::io;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use corral::cluster::{Cluster, LogFormat};
use corral::worker::{Channel, ListenerSocket};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{SignalKind, signal};

struct Options {
    port: u16,
    workers: u32,
    no_ui: bool,
    json: bool,
    metrics: Option<String>,
}

fn options() -> Result<Options, String> {
    let mut options = Options { port: 3000, workers: 2, no_ui: false, json: false, metrics: None };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => options.port = value(&arg, args.next())?,
            "--workers" => options.workers = value(&arg, args.next())?,
            "--no-ui" => options.no_ui = true,
            "--json" => options.json = true,
            "--metrics" => options.metrics = Some(args.next().ok_or("--metrics needs a value")?),
            other => return Err(format!("unknown argument '{other}'")),
        }
    }
    Ok(options)
}

fn value<T: std::str::FromStr>(name: &str, text: Option<String>) -> Result<T, String> {
    let text = text.ok_or(format!("{name} needs a value"))?;
    text.parse().map_err(|_| format!("{name}: '{text}' is not a number"))
}

fn main() -> ExitCode {
    let cluster = options().and_then(|o| {
        let cluster = Cluster::new("web").workers(o.workers);
        let mut cluster =
            cluster.listen(&format!("127.0.0.1:{}", o.port)).map_err(|e| e.to_string())?;
        if o.no_ui {
            cluster = cluster.dashboard(false);
        }
        if o.json {
            cluster = cluster.log_format(LogFormat::Json);
        }
        if let Some(addr) = &o.metrics {
            cluster = cluster.metrics(addr).map_err(|e| e.to_string())?;
        }
        Ok(cluster)
    });
    let cluster = match cluster {
        Ok(cluster) => cluster,
        Err(e) => {
            eprintln!("cluster: {e}");
            return ExitCode::from(2);
        }
    };
    if cluster.is_primary() {
        return cluster.run();
    }
    match serve() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("worker {}: {e}", std::process::id());
            ExitCode::FAILURE
        }
    }
}

/// The worker: serves until SIGTERM (corral's graceful stop), then exits 0.
fn serve() -> io::Result<()> {
    let listener = corral::worker::listeners()?
        .into_iter()
        .find_map(|l| match l.socket {
            ListenerSocket::Tcp(tcp) => Some(tcp),
            ListenerSocket::Unix(_) => None,
        })
        .ok_or_else(|| io::Error::other("corral passed no TCP listener"))?;
    // The socket is shared with the other workers: accept through an event loop only.
    listener.set_nonblocking(true)?;
    // `None` when run outside corral: then nothing is reported.
    let channel = Channel::from_env();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async move {
        let listener = TcpListener::from_std(listener)?;
        let mut stop = signal(SignalKind::terminate())?;
        let served = Arc::new(AtomicU64::new(0));
        let mut every_second = tokio::time::interval(Duration::from_secs(1));
        if let Some(channel) = &channel {
            channel.ready()?;
        }
        println!("worker {} serving", std::process::id());
        loop {
            tokio::select! {
                _ = stop.recv() => return Ok(()),
                _ = every_second.tick() => {
                    if let Some(channel) = &channel {
                        let n = served.load(Ordering::Relaxed);
                        channel.metric("requests", n as f64)?;
                        channel.status(&format!("{n} requests served"))?;
                    }
                }
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        tokio::spawn(answer(stream, Arc::clone(&served)));
                    }
                    // Out of file descriptors, say: it would fail again at once.
                    Err(e) => {
                        eprintln!("accept: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        }
    })
}

/// Reads one request head and answers it; a client that sends nothing is dropped.
async fn answer(mut stream: TcpStream, served: Arc<AtomicU64>) {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut chunk)).await;
        match read {
            Ok(Ok(n)) if n > 0 && head.len() < 16 * 1024 => head.extend_from_slice(&chunk[..n]),
            _ => return,
        }
    }
    let body = format!("Hello from worker {}\n", std::process::id());
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    if stream.write_all(response.as_bytes()).await.is_ok() {
        served.fetch_add(1, Ordering::Relaxed);
    }
}
