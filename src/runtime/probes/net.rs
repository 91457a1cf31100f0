//! HTTP and TCP probes to a host by name: one connection each, a task on corral's loop,
//! bounded in time (the probe's timeout covers the name's lookup, the connect, the request
//! and the answer) and in what is read (the status line only, at most [`MAX_READ`] bytes;
//! no keep-alive). Probes to an IP address take the cheaper way of `sockets`; both read
//! the answer with [`answer`].

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::probe_spec::{parse_http, parse_tcp};

/// The most bytes of a response read: the status line's start (`HTTP/1.1 200`) is all a
/// probe needs. Small on purpose: the buffer lives in the probe's task, and a task of a KiB
/// or more made glibc's malloc consolidate its free lists at every probe.
pub(super) const MAX_READ: usize = 64;

/// `GET` the URL: a 2xx or 3xx status is success. (Its timeout is the caller's.)
pub(super) async fn http(url: &str) -> Result<(), String> {
    let target = parse_http(url)?;
    let exchange = async {
        let authority = target.authority();
        let mut stream = connect(&authority).await?;
        let request = request(&target.path, &authority);
        // A refused connection shows here, as the write's error.
        stream.write_all(request.as_bytes()).await.map_err(|e| describe("connect", &e))?;
        let mut buf = [0u8; MAX_READ];
        let mut filled = 0;
        loop {
            let n = stream.read(&mut buf[filled..]).await.map_err(|e| describe("read", &e))?;
            filled += n;
            if let Some(answer) = answer(&buf[..filled], n == 0) {
                return answer;
            }
        }
    };
    exchange.await
}

/// The request a probe sends: `GET`, closing after the answer.
pub(super) fn request(path: &str, authority: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: corral-probe\r\n\
         Accept: */*\r\nConnection: close\r\n\r\n"
    )
}

/// The probe's answer from the response's first `got` bytes, once they decide it (`eof`:
/// the server closed after them).
pub(super) fn answer(got: &[u8], eof: bool) -> Option<Result<(), String>> {
    if eof && got.is_empty() {
        return Some(Err("the connection closed before a response".into()));
    }
    if let Some(end) = got.iter().position(|&b| b == b'\n') {
        return Some(status(&got[..end]));
    }
    // The status is in the first 13 bytes.
    (eof || got.len() >= MAX_READ).then(|| status(got))
}

/// `HTTP/1.1 200 OK`: success for 200..=399.
fn status(line: &[u8]) -> Result<(), String> {
    let text = String::from_utf8_lossy(line);
    let mut words = text.split_whitespace();
    let code = match (words.next(), words.next()) {
        // Three digits exactly: `+20` or a reply cut off at `20` is no status.
        (Some(version), Some(code))
            if version.starts_with("HTTP/")
                && code.len() == 3
                && code.bytes().all(|b| b.is_ascii_digit()) =>
        {
            code.parse::<u16>().ok()
        }
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

/// Looks the name up and connects, trying each address in turn (tokio's way).
async fn connect(authority: &str) -> Result<TcpStream, String> {
    TcpStream::connect(authority).await.map_err(|e| describe("connect", &e))
}

/// The handshake's outcome for [`tcp`]: writable once it is done, then the socket's error.
async fn established(stream: &TcpStream) -> Result<(), String> {
    stream.writable().await.map_err(|e| describe("connect", &e))?;
    match stream.take_error() {
        Ok(None) => Ok(()),
        Ok(Some(e)) | Err(e) => Err(describe("connect", &e)),
    }
}

pub(super) fn describe(what: &str, e: &std::io::Error) -> String {
    format!("{what}: {}", crate::backend::describe(e).to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::status;

    #[test]
    fn status_lines() {
        assert!(status(b"HTTP/1.1 200 OK\r").is_ok());
        assert!(status(b"HTTP/1.1 +20 X").unwrap_err().starts_with("not an HTTP response"));
        assert!(status(b"HTTP/1.1 20").unwrap_err().starts_with("not an HTTP response"));
        assert!(status(b"HTTP/1.0 302 Found").is_ok());
        assert_eq!(status(b"HTTP/1.1 500 Internal Server Error"), Err("HTTP 500".into()));
        assert_eq!(status(b"HTTP/1.1 404"), Err("HTTP 404".into()));
        assert!(status(b"SSH-2.0-OpenSSH").unwrap_err().starts_with("not an HTTP response"));
    }
}
