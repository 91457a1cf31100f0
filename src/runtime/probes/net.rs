//! HTTP and TCP probes: one connection each, on corral's loop, bounded in time (the
//! probe's timeout covers the connect, the request and the answer) and in what is read
//! (the status line only, at most [`MAX_STATUS_LINE`] bytes; no keep-alive).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::probe_spec::{parse_http, parse_tcp};

/// The most bytes of a response read: the status line's start (`HTTP/1.1 200`) is all a
/// probe needs. Small on purpose: the buffer lives in the probe's task, and a task of a KiB
/// or more made glibc's malloc consolidate its free lists at every probe.
const MAX_READ: usize = 64;

/// `GET` the URL: a 2xx or 3xx status is success. (Its timeout is the caller's.)
pub(super) async fn http(url: &str) -> Result<(), String> {
    let target = parse_http(url)?;
    let exchange = async {
        let authority = target.authority();
        let mut stream = connect(&authority).await?;
        let request = format!(
            "GET {} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: corral-probe\r\n\
             Accept: */*\r\nConnection: close\r\n\r\n",
            target.path
        );
        // A refused connection shows here, as the write's error.
        stream.write_all(request.as_bytes()).await.map_err(|e| describe("connect", &e))?;
        let mut buf = [0u8; MAX_READ];
        let mut filled = 0;
        loop {
            let n = stream.read(&mut buf[filled..]).await.map_err(|e| describe("read", &e))?;
            if n == 0 && filled == 0 {
                return Err("the connection closed before a response".into());
            }
            filled += n;
            if let Some(end) = buf[..filled].iter().position(|&b| b == b'\n') {
                return status(&buf[..end]);
            }
            if n == 0 || filled == buf.len() {
                return status(&buf[..filled]); // the status is in its first 13 bytes
            }
        }
    };
    exchange.await
}

/// `HTTP/1.1 200 OK`: success for 200..=399.
fn status(line: &[u8]) -> Result<(), String> {
    let text = String::from_utf8_lossy(line);
    let mut words = text.split_whitespace();
    let code = match (words.next(), words.next()) {
        (Some(version), Some(code)) if version.starts_with("HTTP/") => code.parse::<u16>().ok(),
        _ => None,
    };
    match code {
        Some(code) if (200..400).contains(&code) => Ok(()),
        Some(code) => Err(format!("HTTP {code}")),
        None => {
            let shown: String = text.trim().chars().take(80).collect();
            Err(format!("not an HTTP response: {}", crate::text::escape(&shown, false)))
        }
    }
}

/// Connects to `HOST:PORT`: success when it is accepted. (Its timeout is the caller's.)
pub(super) async fn tcp(addr: &str) -> Result<(), String> {
    let (host, port) = parse_tcp(addr)?;
    let authority = if host.contains(':') { format!("[{host}]:{port}") } else { addr.to_string() };
    let stream = connect(&authority).await?;
    established(&stream).await
}

/// Connects to `HOST:PORT`. An IP address is connected to without waiting for the
/// handshake (a loopback connect is usually done at once): the first write or read says
/// whether it failed, which saves two system calls a probe over `TcpStream::connect`. A
/// name is resolved and connected to by tokio.
async fn connect(authority: &str) -> Result<TcpStream, String> {
    let Ok(addr) = authority.parse::<SocketAddr>() else {
        return TcpStream::connect(authority).await.map_err(|e| describe("connect", &e));
    };
    let domain = socket2::Domain::for_address(addr);
    let socket = socket2::Socket::new(domain, socket2::Type::STREAM.nonblocking(), None)
        .map_err(|e| describe("socket", &e))?;
    // WHY linger 0: the probe has what it asked for when it closes, and a reset leaves no
    // TIME_WAIT socket behind (a thousand a second, for a minute each, that every later
    // connect would search past), as HAProxy's health checks do.
    socket.set_linger(Some(Duration::ZERO)).map_err(|e| describe("socket", &e))?;
    match socket.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(describe("connect", &e)),
    }
    TcpStream::from_std(socket.into()).map_err(|e| describe("connect", &e))
}

/// The handshake's outcome for [`tcp`]: writable once it is done, then the socket's error.
async fn established(stream: &TcpStream) -> Result<(), String> {
    stream.writable().await.map_err(|e| describe("connect", &e))?;
    match stream.take_error() {
        Ok(None) => Ok(()),
        Ok(Some(e)) | Err(e) => Err(describe("connect", &e)),
    }
}

fn describe(what: &str, e: &std::io::Error) -> String {
    format!("{what}: {}", crate::backend::describe(e).to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::status;

    #[test]
    fn status_lines() {
        assert!(status(b"HTTP/1.1 200 OK\r").is_ok());
        assert!(status(b"HTTP/1.0 302 Found").is_ok());
        assert_eq!(status(b"HTTP/1.1 500 Internal Server Error"), Err("HTTP 500".into()));
        assert_eq!(status(b"HTTP/1.1 404"), Err("HTTP 404".into()));
        assert!(status(b"SSH-2.0-OpenSSH").unwrap_err().starts_with("not an HTTP response"));
    }
}
