//! The demo worker's HTTP/1.1 server: accepts on the shared listener and answers every request
//! with `Hello from worker <pid>`. Knows nothing of the event channel or of crashing.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::timeout;

use crate::http::{Head, Method, Reject, parse_head};

#[cfg(test)]
mod tests;

/// A request head larger than this is refused with 431.
const MAX_HEAD: usize = 16 * 1024;
/// An idle keep-alive connection is closed after this (Node's `keepAliveTimeout` is 5 s).
const IDLE_TIMEOUT: Duration = Duration::from_secs(5);
/// A client that stalls in the middle of a request is dropped after this.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to pause accepting after an error such as EMFILE, which would repeat at once.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Microseconds spent answering requests, and connections accepted, over the process's
/// life: the demo's latency and connections metrics. WHY statics: one server per worker
/// process, and the counters cost nothing to share.
pub(super) static LATENCY_US: AtomicU64 = AtomicU64::new(0);
pub(super) static CONNECTIONS: AtomicU64 = AtomicU64::new(0);

/// Serves until `stop` turns true (or its sender is dropped), then stops accepting and gives
/// in-flight connections `grace` to finish their current request. `served` counts the 200
/// responses written.
pub(super) async fn serve(
    listener: TcpListener,
    served: Arc<AtomicU64>,
    mut stop: watch::Receiver<bool>,
    grace: Duration,
) {
    let body: Arc<str> = format!("Hello from worker {}\n", std::process::id()).into();
    let mut connections = JoinSet::new();
    let mut last_error = None;
    loop {
        tokio::select! {
            () = stopping(&mut stop) => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    last_error = None;
                    CONNECTIONS.fetch_add(1, Ordering::Relaxed);
                    let _ = stream.set_nodelay(true);
                    let connection = Connection {
                        stream,
                        buf: Vec::with_capacity(1024),
                        stop: stop.clone(),
                        served: Arc::clone(&served),
                        body: Arc::clone(&body),
                        answered: 0,
                    };
                    connections.spawn(connection.run());
                }
                Err(e) if is_per_connection(&e) => {}
                Err(e) => {
                    if last_error != e.raw_os_error() {
                        eprintln!("Worker {}: accept failed: {e}; retrying", std::process::id());
                        last_error = e.raw_os_error();
                    }
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            }
        }
    }
    // Closing our copy of the shared socket hands new connections to the other workers.
    drop(listener);
    let drained = timeout(grace, async { while connections.join_next().await.is_some() {} });
    if drained.await.is_err() {
        connections.shutdown().await;
    }
}

/// Resolves once the server is stopping. A dropped sender counts as a stop: nobody is left
/// to ask for one any more.
async fn stopping(stop: &mut watch::Receiver<bool>) {
    // The `Ref` the wait returns holds a lock; it must not live across the select's awaits.
    let _ = stop.wait_for(|stopping| *stopping).await;
}

/// Errors that concern one connection that died in the backlog, not the listener: accepting
/// again at once is right. Anything else (EMFILE, ENOBUFS, …) would repeat immediately.
fn is_per_connection(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
    )
}

/// The whole response: status line, headers and (unless `head_only`) the body.
fn response(status: &str, body: &str, keep_alive: bool, http_10: bool, head_only: bool) -> Vec<u8> {
    let head =
        crate::http::response_head(status, "text/plain", body.len(), keep_alive, http_10, "");
    let mut bytes = head.into_bytes();
    if !head_only {
        bytes.extend_from_slice(body.as_bytes());
    }
    bytes
}

struct Connection {
    stream: TcpStream,
    /// Bytes read and not yet consumed: a partial head, or pipelined requests.
    buf: Vec<u8>,
    stop: watch::Receiver<bool>,
    served: Arc<AtomicU64>,
    body: Arc<str>,
    /// Requests answered on this connection.
    answered: u64,
}

impl Connection {
    async fn run(mut self) {
        // An I/O error means the client went away; there is no one left to tell.
        let _ = self.serve_requests().await;
    }

    async fn serve_requests(&mut self) -> io::Result<()> {
        loop {
            let head = match self.read_head().await? {
                None => return Ok(()),
                Some(Ok(head)) => head,
                Some(Err(reject)) => return self.reject(&reject).await,
            };
            let started = std::time::Instant::now();
            self.skip_body(&head).await?;
            let keep_alive = head.keep_alive && !*self.stop.borrow();
            let bytes = response(
                "200 OK",
                &self.body,
                keep_alive,
                head.http_10,
                head.method == Method::Head,
            );
            // Counted before the write, so a client that has its response sees it counted.
            self.served.fetch_add(1, Ordering::Relaxed);
            self.answered += 1;
            self.stream.write_all(&bytes).await?;
            let took = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
            LATENCY_US.fetch_add(took, Ordering::Relaxed);
            if !keep_alive {
                return self.stream.shutdown().await;
            }
        }
    }

    /// The next request head; `None` when the client closed, idled out, or the server is
    /// stopping while the connection is idle.
    async fn read_head(&mut self) -> io::Result<Option<Result<Head, Reject>>> {
        loop {
            if !self.buf.is_empty() {
                match parse_head(&self.buf, MAX_HEAD) {
                    Ok(None) => {}
                    Ok(Some(head)) => return Ok(Some(Ok(head))),
                    Err(reject) => return Ok(Some(Err(reject))),
                }
            }
            // WHY only after a first answer: a connection accepted just before a stop has
            // its request on the way; closing it unread would reset that client. Only a
            // keep-alive connection between requests is idle.
            let read = if self.buf.is_empty() && self.answered > 0 {
                tokio::select! {
                    () = stopping(&mut self.stop) => return Ok(None),
                    read = timeout(IDLE_TIMEOUT, read_more(&mut self.stream, &mut self.buf)) => read,
                }
            } else {
                timeout(READ_TIMEOUT, read_more(&mut self.stream, &mut self.buf)).await
            };
            match read {
                Err(_) | Ok(Ok(0)) => return Ok(None),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(e),
            }
        }
    }

    /// Consumes the head and a `Content-Length` body, keeping any pipelined bytes after it.
    async fn skip_body(&mut self, head: &Head) -> io::Result<()> {
        let buffered = (self.buf.len() - head.len) as u64;
        let in_buf = buffered.min(head.content_length);
        self.buf.drain(..head.len + in_buf as usize);
        let mut remaining = head.content_length - in_buf;
        if remaining > 0 && head.expect_continue {
            self.stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await?;
        }
        while remaining > 0 {
            let n = match timeout(READ_TIMEOUT, read_more(&mut self.stream, &mut self.buf)).await {
                Ok(Ok(0)) | Err(_) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(read) => read? as u64,
            };
            let body_part = n.min(remaining);
            self.buf.drain(..body_part as usize);
            remaining -= body_part;
        }
        Ok(())
    }

    /// Answers a request we will not serve, then closes without resetting the connection.
    async fn reject(&mut self, reject: &Reject) -> io::Result<()> {
        let (status, body) = match reject {
            Reject::BadRequest => ("400 Bad Request", "Bad Request\n"),
            Reject::HeadTooLarge => {
                ("431 Request Header Fields Too Large", "Request Header Fields Too Large\n")
            }
        };
        self.stream.write_all(&response(status, body, false, false, false)).await?;
        self.stream.shutdown().await?;
        // WHY: closing with unread bytes in the receive buffer sends RST, which can destroy
        // the response before the client reads it. Drain briefly, as nginx's lingering close.
        let mut sink = [0; 4096];
        let _ = timeout(Duration::from_millis(500), async {
            let mut total = 0;
            while total < 64 * 1024 {
                match self.stream.read(&mut sink).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => total += n,
                }
            }
        })
        .await;
        Ok(())
    }
}

/// Appends one read's worth of bytes to `buf`; 0 at end of stream.
async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<usize> {
    let mut chunk = [0; 4096];
    let n = stream.read(&mut chunk).await?;
    buf.extend_from_slice(&chunk[..n]);
    Ok(n)
}
