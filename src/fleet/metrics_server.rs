//! The `/metrics` HTTP endpoint (docs/production.md#prometheus), on a thread of its own with its own small tokio
//! runtime: a scrape never runs on the supervision loop, and the loop never waits for a
//! scraper. The loop only builds a [`Model`] when a scrape asks for one (at most once a
//! [`FRESH`]), and hands it over through a `watch` channel; rendering and writing happen
//! here.
//!
//! Nothing a client does can grow memory or stall anything: at most [`MAX_CONNECTIONS`]
//! at once (a newcomer takes the place of the one idle longest), heads of at most
//! [`MAX_HEAD`] bytes, deadlines on reading a head and on writing an answer, and one
//! rendered text shared by every scrape of the same model. Only `GET`/`HEAD /metrics` is
//! served; anything else is a 404 or a 405.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::timeout;

use super::metrics::{self, Model};
use crate::http;

/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 16;
/// A request head (request line and headers) larger than this is refused with 431.
pub const MAX_HEAD: usize = 8 * 1024;
/// The whole head must arrive within this, however slowly it trickles; it is also how
/// long a kept-alive connection may sit idle between scrapes.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// The whole answer must be taken within this.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// A model younger than this is served as it is: scrapes in a burst cost the loop one
/// model, and a flood of scrapes at most one a second.
pub const FRESH: Duration = Duration::from_secs(1);
/// How long a scrape waits for the loop's fresh model before serving the last one: a
/// loop that is busy (or stuck) delays a scrape by this much, never more.
const MODEL_WAIT: Duration = Duration::from_secs(1);
/// `/livez` fails when the loop has not published a model for this long: it answers a
/// scrape within `MODEL_WAIT` whenever it turns at all.
const LIVE_WITHIN: Duration = Duration::from_secs(5);
/// A pause after an accept error such as EMFILE, which would repeat at once.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// A model and when the loop built it (`None`: the empty one before the first scrape).
#[derive(Clone, Debug, Default)]
struct Published {
    at: Option<Instant>,
    model: Arc<Model>,
}

/// The loop's end: it hears that a scrape wants a model, and publishes one.
#[derive(Debug)]
pub struct Publisher {
    model: watch::Sender<Published>,
    wanted: Arc<Notify>,
}

impl Publisher {
    /// Fires when a scrape wants a fresh model.
    pub fn wanted(&self) -> Arc<Notify> {
        Arc::clone(&self.wanted)
    }

    pub fn publish(&self, model: Model) {
        let published = Published { at: Some(Instant::now()), model: Arc::new(model) };
        self.model.send_replace(published);
    }
}

/// Binds `addr` (before anything starts: a busy address is a usage error).
pub fn bind(addr: SocketAddr) -> io::Result<StdListener> {
    // std's listener is close-on-exec (no worker inherits it) and reuses the address, so a
    // restarted corral is not refused for connections of the last one in TIME_WAIT.
    let listener = StdListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Serves `listener` on a thread of its own until the process ends.
pub fn start(listener: StdListener, instance: String) -> io::Result<Publisher> {
    let empty = Published { at: None, model: Arc::new(Model { instance, ..Model::default() }) };
    let (tx, rx) = watch::channel(empty);
    let wanted = Arc::new(Notify::new());
    let asks = Arc::clone(&wanted);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    std::thread::Builder::new().name("corral-metrics".into()).spawn(move || {
        let scrapes = Scrapes { model: rx, wanted: asks, rendered: RefCell::default() };
        let local = tokio::task::LocalSet::new();
        local.block_on(&runtime, async move {
            match TcpListener::from_std(listener) {
                Ok(listener) => serve(listener, Rc::new(scrapes)).await,
                Err(e) => tracing::error!("cannot serve metrics: {e}"),
            }
        });
    })?;
    Ok(Publisher { model: tx, wanted })
}

/// What every connection shares: the latest model and its rendered text.
struct Scrapes {
    model: watch::Receiver<Published>,
    wanted: Arc<Notify>,
    /// The last model rendered in each format (`Format as usize`) and its text: scrapes
    /// of one model render it once.
    rendered: RefCell<[Option<Rendered>; 2]>,
}

/// What a scraper asked for in `Accept`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `text/plain; version=0.0.4`: for anyone who does not ask for `OpenMetrics`.
    Classic = 0,
    OpenMetrics = 1,
}

impl Format {
    fn content_type(self) -> &'static str {
        match self {
            Format::Classic => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// A model and its exposition.
type Rendered = (Arc<Model>, Rc<[u8]>);

impl Scrapes {
    /// A model no older than [`FRESH`], unless the loop is too busy to say.
    async fn fresh(&self) -> Published {
        let mut model = self.model.clone();
        let fresh = model.borrow_and_update().at.is_some_and(|at| at.elapsed() < FRESH);
        if !fresh {
            self.wanted.notify_one();
            let _ = timeout(MODEL_WAIT, model.changed()).await;
        }
        model.borrow().clone()
    }

    /// `/livez` and `/readyz`: the status line and body.
    async fn probe(&self, probe: Probe) -> (&'static str, String) {
        let published = self.fresh().await;
        let age = published.at.map(|at| at.elapsed());
        if age.is_none_or(|a| a >= LIVE_WITHIN) {
            let body = "corral's loop has not answered for a few seconds\n".to_string();
            return ("503 Service Unavailable", body);
        }
        let problems = &published.model.problems;
        match probe {
            Probe::Live => ("200 OK", "ok\n".to_string()),
            Probe::Ready if problems.is_empty() => ("200 OK", "ready\n".to_string()),
            Probe::Ready => {
                let mut body = problems.join("\n");
                body.push('\n');
                ("503 Service Unavailable", body)
            }
        }
    }

    /// The text of a model no older than [`FRESH`], unless the loop is too busy to say.
    async fn text(&self, format: Format) -> Rc<[u8]> {
        let latest = Arc::clone(&self.fresh().await.model);
        let mut all = self.rendered.borrow_mut();
        let rendered = &mut all[format as usize];
        if let Some((done, text)) = rendered.as_ref()
            && Arc::ptr_eq(done, &latest)
        {
            return Rc::clone(text);
        }
        let mut text = String::with_capacity(rendered.as_ref().map_or(4096, |(_, t)| t.len()));
        let done = match format {
            Format::Classic => metrics::render_classic(&latest, &mut text),
            Format::OpenMetrics => metrics::render(&latest, &mut text),
        };
        if done.is_err() {
            // Writing to a String cannot fail; a collector error would be a bug of ours.
            tracing::error!("cannot render the metrics");
        }
        let text: Rc<[u8]> = Rc::from(text.into_bytes());
        *rendered = Some((latest, Rc::clone(&text)));
        text
    }
}

/// One open connection, as the accept loop tracks it.
struct Open {
    task: AbortHandle,
    /// Answering a request (not waiting for one): not to be evicted.
    busy: Rc<Cell<bool>>,
}

async fn serve(listener: TcpListener, scrapes: Rc<Scrapes>) {
    let mut tasks = JoinSet::new();
    let mut open: VecDeque<Open> = VecDeque::with_capacity(MAX_CONNECTIONS + 1);
    let mut last_error = None;
    loop {
        tokio::select! {
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    last_error = None;
                    open.retain(|o| !o.task.is_finished());
                    if open.len() >= MAX_CONNECTIONS && !evict_idle(&mut open) {
                        drop(stream); // every one is mid-answer: this one must wait its turn
                    } else {
                        let busy = Rc::new(Cell::new(false));
                        let task = tasks.spawn_local(
                            connection(stream, Rc::clone(&scrapes), Rc::clone(&busy)),
                        );
                        open.push_back(Open { task, busy });
                    }
                }
                Err(e) if is_per_connection(&e) => {}
                Err(e) => {
                    // Said once per kind of error, not ten times a second while it lasts.
                    if last_error != e.raw_os_error() {
                        tracing::warn!("metrics: accept failed: {e}; retrying");
                        last_error = e.raw_os_error();
                    }
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            }
        }
    }
}

/// Makes room by closing the connection that has waited longest without asking anything
/// (a half-open one, or a keep-alive between scrapes); `false` if none is idle.
fn evict_idle(open: &mut VecDeque<Open>) -> bool {
    let Some(i) = open.iter().position(|o| !o.busy.get()) else {
        return false;
    };
    if let Some(o) = open.remove(i) {
        o.task.abort();
    }
    true
}

/// Errors that concern one connection that died in the backlog, not the listener.
fn is_per_connection(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
    )
}

async fn connection(mut stream: TcpStream, scrapes: Rc<Scrapes>, busy: Rc<Cell<bool>>) {
    // WHY: the answer goes in one write, and without this a kept-alive scraper's next
    // answer waited for the delayed ACK of the last (Nagle): ~40 ms per scrape.
    let _ = stream.set_nodelay(true);
    let mut buf = Vec::with_capacity(1024);
    let mut answer = Vec::new();
    loop {
        busy.set(false);
        let head = timeout(READ_TIMEOUT, read_head(&mut stream, &mut buf)).await;
        let Ok(Some((request, len))) = head else {
            return; // closed, broken, or too slow
        };
        busy.set(true);
        let keep_alive = match request {
            Request::Metrics { head_only, keep_alive, format } => {
                let text = scrapes.text(format).await;
                answer.clear();
                answer.extend_from_slice(ok_head(text.len(), keep_alive, format).as_bytes());
                if !head_only {
                    answer.extend_from_slice(&text);
                }
                let written = timeout(WRITE_TIMEOUT, stream.write_all(&answer));
                if !matches!(written.await, Ok(Ok(()))) {
                    return;
                }
                keep_alive
            }
            Request::Probe { probe, head_only, keep_alive } => {
                let (status, body) = scrapes.probe(probe).await;
                answer.clear();
                let kind = "text/plain; charset=utf-8";
                let no_store = "Cache-Control: no-store\r\n";
                let head =
                    http::response_head(status, kind, body.len(), keep_alive, false, no_store);
                answer.extend_from_slice(head.as_bytes());
                if !head_only {
                    answer.extend_from_slice(body.as_bytes());
                }
                let written = timeout(WRITE_TIMEOUT, stream.write_all(&answer));
                if !matches!(written.await, Ok(Ok(()))) {
                    return;
                }
                keep_alive
            }
            Request::Refused(refusal) => {
                let _ = timeout(WRITE_TIMEOUT, stream.write_all(refusal.response())).await;
                false
            }
        };
        if !keep_alive {
            let _ = timeout(WRITE_TIMEOUT, stream.shutdown()).await;
            return;
        }
        buf.drain(..len);
    }
}

/// Reads until `buf` holds a whole head; `None` at end of stream (or a read error).
async fn read_head(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<(Request, usize)> {
    let mut chunk = [0u8; 2048];
    loop {
        if let Some(parsed) = parse(buf) {
            return Some(parsed);
        }
        let room = (MAX_HEAD + 1).saturating_sub(buf.len()).min(chunk.len());
        match stream.read(&mut chunk[..room]).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// What a head asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    Metrics { head_only: bool, keep_alive: bool, format: Format },
    Probe { probe: Probe, head_only: bool, keep_alive: bool },
    Refused(Refusal),
}

/// The two health endpoints (docs/application.md#health).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    /// `/livez`: corral's loop turns.
    Live,
    /// `/readyz`: every worker that should be up is up and ready.
    Ready,
}

/// A request answered with an error, after which the connection is closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    BadRequest,
    NotFound,
    MethodNotAllowed,
    HeadTooLarge,
}

impl Refusal {
    fn response(self) -> &'static [u8] {
        match self {
            Refusal::BadRequest => b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            Refusal::NotFound => b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 50\r\nConnection: close\r\n\r\nonly /metrics, /livez and /readyz are served here\n",
            Refusal::MethodNotAllowed => b"HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            Refusal::HeadTooLarge => b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        }
    }
}

fn ok_head(length: usize, keep_alive: bool, format: Format) -> String {
    http::response_head("200 OK", format.content_type(), length, keep_alive, false, "")
}

/// `OpenMetrics` when `Accept` lists it (with a weight above 0), else the classic format.
fn format_of(accept: &str) -> Format {
    let wanted = accept.split(',').any(|item| {
        let mut parts = item.split(';').map(str::trim);
        let kind = parts.next().unwrap_or_default();
        let refused = parts.any(|p| p.strip_prefix("q=").is_some_and(|q| q.parse() == Ok(0.0)));
        kind.eq_ignore_ascii_case("application/openmetrics-text") && !refused
    });
    if wanted { Format::OpenMetrics } else { Format::Classic }
}

/// Parses the head at the start of `buf`: the request and the head's length, or `None`
/// while more bytes are needed.
pub fn parse(buf: &[u8]) -> Option<(Request, usize)> {
    let refused = |r| Some((Request::Refused(r), buf.len()));
    let head = match http::parse_head(buf, MAX_HEAD) {
        Ok(Some(head)) => head,
        Ok(None) => return None,
        Err(http::Reject::HeadTooLarge) => return refused(Refusal::HeadTooLarge),
        Err(http::Reject::BadRequest) => return refused(Refusal::BadRequest),
    };
    let probe = match head.path.as_str() {
        "/metrics" => None,
        "/livez" => Some(Probe::Live),
        "/readyz" => Some(Probe::Ready),
        _ => return refused(Refusal::NotFound),
    };
    let head_only = match head.method {
        http::Method::Get => false,
        http::Method::Head => true,
        http::Method::Other => return refused(Refusal::MethodNotAllowed),
    };
    // A body is never read: the connection cannot be reused after one.
    let keep_alive = head.keep_alive && head.content_length == 0;
    let request = if let Some(probe) = probe {
        Request::Probe { probe, head_only, keep_alive }
    } else {
        let format = head.accept.as_deref().map_or(Format::Classic, format_of);
        Request::Metrics { head_only, keep_alive, format }
    };
    Some((request, head.len))
}

#[cfg(test)]
mod tests;
