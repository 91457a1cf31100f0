//! corral used as a hostile operator would (issue "trust under abuse"): storms, broken
//! pipes, idle and greedy clients, absurd input. Each test here failed before its fix.

mod config;
mod ctl;
mod exits;
mod greedy;
mod logs;
mod notify;
mod peers;
mod scrape;
mod storm;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

pub use crate::util::notify::NotifySocket as Manager;

/// `GET /metrics` with `extra` header lines, on a fresh connection: the head and the body.
pub fn scrape(port: u16, extra: &str) -> std::io::Result<(String, String)> {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let head =
        format!("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}Connection: close\r\n\r\n");
    stream.write_all(head.as_bytes())?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    Ok((head.to_string(), body.to_string()))
}
