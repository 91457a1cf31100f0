//! HTTP and TCP probes: one connection each, on corral's loop, bounded in time (the
//! probe's timeout covers the connect, the request and the answer) and in what is read
//! (the status line only, at most [`MAX_STATUS_LINE`] bytes; no keep-alive).

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::probe_spec::{parse_http, parse_tcp};

/// The most bytes read of a response before its status line must have ended.
const MAX_STATUS_LINE: usize = 4096;

fn timed_out(timeout: Duration) -> String {
    format!("timed out after {}", crate::headless::human_duration(timeout))
}

/// `GET` the URL: a 2xx or 3xx status is success.
pub(super) async fn http(url: &str, timeout: Duration) -> Result<(), String> {
    let target = parse_http(url)?;
    let exchange = async {
        let authority = target.authority();
        let mut stream = connect(&authority).await?;
        let request = format!(
            "GET {} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: corral-probe\r\n\
             Accept: */*\r\nConnection: close\r\n\r\n",
            target.path
        );
        stream.write_all(request.as_bytes()).await.map_err(|e| describe("send", &e))?;
        let mut buf = vec![0u8; MAX_STATUS_LINE];
        let mut filled = 0;
        loop {
            if let Some(end) = buf[..filled].iter().position(|&b| b == b'\n') {
                return status(&buf[..end]);
            }
            if filled == buf.len() {
                return Err(format!("no status line in the first {MAX_STATUS_LINE} bytes"));
            }
            let n = stream.read(&mut buf[filled..]).await.map_err(|e| describe("read", &e))?;
            if n == 0 {
                return Err("the connection closed before a response".into());
            }
            filled += n;
        }
    };
    tokio::time::timeout(timeout, exchange).await.unwrap_or_else(|_| Err(timed_out(timeout)))
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

/// Connects to `HOST:PORT`: success when it is accepted.
pub(super) async fn tcp(addr: &str, timeout: Duration) -> Result<(), String> {
    let (host, port) = parse_tcp(addr)?;
    let authority = if host.contains(':') { format!("[{host}]:{port}") } else { addr.to_string() };
    tokio::time::timeout(timeout, connect(&authority))
        .await
        .unwrap_or_else(|_| Err(timed_out(timeout)))
        .map(drop)
}

async fn connect(authority: &str) -> Result<TcpStream, String> {
    let stream = TcpStream::connect(authority).await.map_err(|e| describe("connect", &e))?;
    // The connection is closed with the stream; nothing waits on lingering data.
    let _ = stream.set_nodelay(true);
    Ok(stream)
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
