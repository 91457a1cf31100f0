//! The one HTTP/1.1 request reader corral has: the metrics server (`/metrics`, `/livez`,
//! `/readyz`) and the demo worker's server both read heads with it and write response heads
//! with it, so both refuse the same malformed, oversized and smuggling requests.

/// More headers than this is refused as too large.
pub const MAX_HEADERS: usize = 64;

/// The request methods the servers tell apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Other,
}

/// What a server needs to know about one request.
#[derive(Debug, PartialEq, Eq)]
pub struct Head {
    /// Bytes of the request line and headers, including the blank line.
    pub len: usize,
    pub method: Method,
    /// The path without its query.
    pub path: String,
    pub http_10: bool,
    pub keep_alive: bool,
    pub expect_continue: bool,
    pub content_length: u64,
    /// The `Accept` header, if any.
    pub accept: Option<String>,
}

/// A request answered with an error, after which the connection is closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reject {
    BadRequest,
    HeadTooLarge,
}

/// Parses a request head from the start of `buf`: `Ok(None)` while more bytes are needed.
/// A head over `max_head` bytes or `MAX_HEADERS` headers is too large; a body whose length
/// only its encoding knows, or two lengths, is refused (it would hide a second request).
pub fn parse_head(buf: &[u8], max_head: usize) -> Result<Option<Head>, Reject> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let len = match request.parse(buf) {
        Ok(httparse::Status::Complete(len)) if len <= max_head => len,
        Ok(httparse::Status::Partial) if buf.len() <= max_head => return Ok(None),
        Ok(_) | Err(httparse::Error::TooManyHeaders) => return Err(Reject::HeadTooLarge),
        Err(_) => return Err(Reject::BadRequest),
    };
    let http_10 = request.version == Some(0);
    let method = match request.method {
        Some("GET") => Method::Get,
        Some("HEAD") => Method::Head,
        _ => Method::Other,
    };
    let path = request.path.unwrap_or_default();
    let path = path.split_once('?').map_or(path, |(p, _)| p).to_string();
    let mut head = Head {
        len,
        method,
        path,
        http_10,
        keep_alive: !http_10,
        expect_continue: false,
        content_length: 0,
        accept: None,
    };
    let mut content_length = None;
    for header in request.headers.iter() {
        let value = std::str::from_utf8(header.value).map_err(|_| Reject::BadRequest)?;
        let name = header.name;
        if name.eq_ignore_ascii_case("connection") {
            for token in value.split(',').map(str::trim) {
                if token.eq_ignore_ascii_case("close") {
                    head.keep_alive = false;
                } else if token.eq_ignore_ascii_case("keep-alive") && http_10 {
                    head.keep_alive = true;
                }
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(Reject::BadRequest);
        } else if name.eq_ignore_ascii_case("content-length") {
            let length = parse_content_length(value).ok_or(Reject::BadRequest)?;
            if content_length.is_some_and(|previous| previous != length) {
                return Err(Reject::BadRequest);
            }
            content_length = Some(length);
        } else if name.eq_ignore_ascii_case("expect") {
            head.expect_continue = value.trim().eq_ignore_ascii_case("100-continue");
        } else if name.eq_ignore_ascii_case("accept") {
            head.accept = Some(value.to_string());
        }
    }
    head.content_length = content_length.unwrap_or(0);
    Ok(Some(head))
}

/// Digits only: `+5`, `-1` and `5, 5` are all ways to smuggle a second request.
fn parse_content_length(value: &str) -> Option<u64> {
    let value = value.trim();
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

/// A response's status line and headers, up to and including the blank line. `extra` is
/// more header lines, each ending in `\r\n`.
pub fn response_head(
    status: &str,
    content_type: &str,
    length: usize,
    keep_alive: bool,
    http_10: bool,
    extra: &str,
) -> String {
    let connection = match (keep_alive, http_10) {
        (false, _) => "Connection: close\r\n",
        (true, true) => "Connection: keep-alive\r\n",
        (true, false) => "",
    };
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {length}\r\n\
         {extra}{connection}\r\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 16 * 1024;
    const GET: &[u8] = b"GET /x?y=1 HTTP/1.1\r\nHost: localhost\r\nAccept: text/plain\r\n\r\n";

    fn head(bytes: &[u8]) -> Head {
        parse_head(bytes, MAX).expect("acceptable").expect("complete")
    }

    #[test]
    fn keep_alive_follows_the_http_version_and_connection_tokens() {
        let get = head(GET);
        assert!(get.keep_alive);
        assert_eq!((get.method, get.path.as_str(), get.len), (Method::Get, "/x", GET.len()));
        assert_eq!(get.accept.as_deref(), Some("text/plain"));
        assert!(!head(b"GET / HTTP/1.1\r\nConnection: Upgrade, Close\r\n\r\n").keep_alive);
        assert!(!head(b"GET / HTTP/1.0\r\n\r\n").keep_alive);
        let kept = head(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        assert!(kept.keep_alive && kept.http_10);
        assert_eq!(head(b"HEAD / HTTP/1.1\r\n\r\n").method, Method::Head);
        assert_eq!(head(b"DELETE / HTTP/1.1\r\n\r\n").method, Method::Other);
    }

    #[test]
    fn bodies_are_measured_or_refused() {
        let post = head(b"POST / HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
        assert_eq!((post.content_length, post.expect_continue), (5, true));
        let same_twice = b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n";
        assert_eq!(head(same_twice).content_length, 5);
        for smuggling in [
            &b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
            b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: \r\n\r\n",
        ] {
            assert_eq!(parse_head(smuggling, MAX), Err(Reject::BadRequest));
        }
    }

    #[test]
    fn heads_are_partial_bad_or_too_large() {
        assert_eq!(parse_head(b"GET / HTTP/1.1\r\nHost: x\r\n", MAX), Ok(None));
        assert_eq!(parse_head(b"GET", MAX), Ok(None));
        assert_eq!(parse_head(b"NOT HTTP AT ALL\r\n\r\n", MAX), Err(Reject::BadRequest));
        let mut long = b"GET / HTTP/1.1\r\nX-Big: ".to_vec();
        long.resize(MAX + 1, b'a');
        assert_eq!(parse_head(&long, MAX), Err(Reject::HeadTooLarge));
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            many.extend_from_slice(format!("X-{i}: 1\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(parse_head(&many, MAX), Err(Reject::HeadTooLarge));
    }

    #[test]
    fn response_heads_say_the_length_and_the_connection() {
        let h = response_head("200 OK", "text/plain", 5, true, false, "");
        assert_eq!(h, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\n");
        let h = response_head("503 Service Unavailable", "text/plain", 0, false, false, "X: y\r\n");
        assert!(h.ends_with("Content-Length: 0\r\nX: y\r\nConnection: close\r\n\r\n"), "{h}");
        assert!(response_head("200 OK", "t", 0, true, true, "").contains("keep-alive"));
    }
}
