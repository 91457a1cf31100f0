//! A minimal HTTP client for the servers the tests run: one `GET /` on 127.0.0.1, with
//! short timeouts, answering the pid of `Hello from worker <pid>`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

const CLIENT_TIMEOUT: Duration = Duration::from_secs(2);

/// One `GET /`; the pid from `Hello from worker <pid>`.
pub fn hello(port: u16) -> Result<u32, String> {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream =
        TcpStream::connect_timeout(&address, CLIENT_TIMEOUT).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(CLIENT_TIMEOUT)).map_err(|e| e.to_string())?;
    stream.set_write_timeout(Some(CLIENT_TIMEOUT)).map_err(|e| e.to_string())?;
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let response = read_response(&mut stream)?;
    if !response.starts_with("HTTP/1.1 200") && !response.starts_with("HTTP/1.0 200") {
        return Err(format!("not a 200: {response:?}"));
    }
    let (_, after) = response
        .split_once("Hello from worker ")
        .ok_or_else(|| format!("no greeting: {response:?}"))?;
    let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().map_err(|_| format!("no pid in the greeting: {response:?}"))
}

/// One `GET PATH`: the whole response (status line, headers, body) of a 200.
pub fn get(port: u16, path: &str) -> Result<String, String> {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream =
        TcpStream::connect_timeout(&address, CLIENT_TIMEOUT).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(CLIENT_TIMEOUT)).map_err(|e| e.to_string())?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).map_err(|e| e.to_string())?;
    let response = read_response(&mut stream)?;
    if response.starts_with("HTTP/1.1 200") || response.starts_with("HTTP/1.0 200") {
        Ok(response)
    } else {
        Err(format!("not a 200: {response:?}"))
    }
}

/// Reads one response: up to EOF, or the end of the body its `Content-Length` announces
/// (a server may keep the connection open despite `Connection: close`).
fn read_response(stream: &mut TcpStream) -> Result<String, String> {
    let mut bytes = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        if let Some(complete) = complete_length(&bytes) {
            bytes.truncate(complete);
            break;
        }
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => bytes.extend_from_slice(&buffer[..n]),
            Err(error) => {
                return Err(format!("{error} after {:?}", String::from_utf8_lossy(&bytes)));
            }
        }
    }
    String::from_utf8(bytes).map_err(|e| e.to_string())
}

/// The total length of the response in `bytes`, once its headers and body are all there.
fn complete_length(bytes: &[u8]) -> Option<usize> {
    let text = std::str::from_utf8(bytes).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let length: usize = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("content-length").then(|| value.trim().parse().ok())?
    })?;
    (body.len() >= length).then_some(head.len() + 4 + length)
}
