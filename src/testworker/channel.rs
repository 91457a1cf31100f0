//! The test worker's side of the event channel: the steps of `--send` (well-formed messages
//! through `corral::worker::Channel`, and the broken or hostile bytes no library would
//! write), heartbeats, and what `--read-channel` reports when SIGTERM arrives.

use std::io::{self, BufWriter, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use nix::sys::socket::{MsgFlags, recv};
use serde_json::Value;

use crate::worker::Channel;

/// One step of `--send`, in the order given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// A JSON value, sent with `Channel::send` (so `NODE_` commands are refused).
    Json(Value),
    /// A line written as is, unchecked: Node internals, broken JSON (`raw:TEXT`).
    Raw(String),
    /// Bytes given in hex, then a newline: invalid UTF-8 (`hex:FFFE`).
    Bytes(Vec<u8>),
    /// N bytes of `x` and no newline: the start of an overlong line (`long:N`).
    Long(u64),
    /// N lines that are not JSON (`garbage:N`).
    Garbage(u64),
    /// Block until the file exists, so a test can look at corral in between (`wait:FILE`).
    WaitFile(PathBuf),
}

/// Parses a `--send` value: JSON if it is JSON, else `KIND:ARGUMENT`.
pub fn parse_step(text: &str) -> Result<Step, String> {
    if let Ok(value) = serde_json::from_str::<Value>(text) {
        return Ok(Step::Json(value));
    }
    let (kind, argument) = text
        .split_once(':')
        .ok_or_else(|| format!("'{text}' is neither JSON nor raw:/hex:/long:/garbage:/wait:"))?;
    let count = |text: &str| text.parse::<u64>().map_err(|_| format!("'{text}' is not a count"));
    match kind {
        "raw" => Ok(Step::Raw(argument.to_owned())),
        "hex" => parse_hex(argument).map(Step::Bytes),
        "long" => count(argument).map(Step::Long),
        "garbage" => count(argument).map(Step::Garbage),
        "wait" if !argument.is_empty() => Ok(Step::WaitFile(PathBuf::from(argument))),
        _ => Err(format!("'{text}': unknown step '{kind}'")),
    }
}

fn parse_hex(text: &str) -> Result<Vec<u8>, String> {
    let bad = || format!("'{text}' is not an even number of hex digits");
    if text.is_empty() || !text.len().is_multiple_of(2) {
        return Err(bad());
    }
    (0..text.len())
        .step_by(2)
        .map(|i| text.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()).ok_or_else(bad))
        .collect()
}

/// Runs the steps in order.
pub fn send(channel: &Channel, steps: &[Step]) -> io::Result<()> {
    // Unchecked bytes bypass the library (it would refuse them) through a second handle on
    // the same socket; every write is complete before the next step starts, so the two
    // never interleave.
    let mut raw = UnixStream::from(channel.as_fd().try_clone_to_owned()?);
    for step in steps {
        match step {
            Step::Json(value) => channel.send(value)?,
            Step::Raw(text) => raw.write_all(format!("{text}\n").as_bytes())?,
            Step::Bytes(bytes) => raw.write_all(&[bytes.as_slice(), b"\n"].concat())?,
            Step::Long(count) => write_x(&mut raw, *count)?,
            Step::Garbage(count) => {
                let mut out = BufWriter::new(&mut raw);
                for i in 1..=*count {
                    writeln!(out, "not json {i}")?;
                }
                out.flush()?;
            }
            Step::WaitFile(path) => {
                while !path.exists() {
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
    }
    Ok(())
}

/// Writes `count` bytes of `x` in 64 KiB pieces (a 100 MiB line never sits in memory).
pub fn write_x(out: &mut impl Write, count: u64) -> io::Result<()> {
    static CHUNK: [u8; 64 * 1024] = [b'x'; 64 * 1024];
    let mut left = count;
    while left > 0 {
        let n = left.min(CHUNK.len() as u64) as usize;
        out.write_all(&CHUNK[..n])?;
        left -= n as u64;
    }
    Ok(())
}

/// Sends `count` heartbeats, `every` apart.
pub fn heartbeats(channel: &Channel, count: u32, every: Duration) -> io::Result<()> {
    for n in 0..count {
        if n > 0 {
            std::thread::sleep(every);
        }
        channel.heartbeat()?;
    }
    Ok(())
}

/// The channel's fd for the SIGTERM handler of `--read-channel`; -1 for none.
static READ_FD: AtomicI32 = AtomicI32::new(-1);

/// Makes the SIGTERM handler report what the channel holds. The channel must stay open
/// (owned by the caller) until the process ends.
pub fn read_on_sigterm(channel: &Channel) {
    READ_FD.store(channel.as_raw_fd(), Ordering::Relaxed);
}

/// Called from the SIGTERM handler: writes `channel: ` and then every byte the primary
/// has sent so far, as is (or `(nothing)` and a newline), with `write`, which the handler
/// gives (async-signal-safe, as everything here). The stop signal comes after the notice,
/// so whatever corral wrote before it is already in the socket buffer.
pub fn report_from_signal_handler(mut write: impl FnMut(&[u8])) {
    let fd = READ_FD.load(Ordering::Relaxed);
    if fd < 0 {
        return;
    }
    write(b"channel: ");
    let mut buffer = [0u8; 512];
    let mut got_any = false;
    // recv(2) is async-signal-safe and nix's wrapper allocates nothing; MSG_DONTWAIT keeps
    // an empty channel from blocking the handler.
    while let Ok(n @ 1..) = recv(fd, &mut buffer, MsgFlags::MSG_DONTWAIT) {
        got_any = true;
        write(&buffer[..n]);
    }
    if !got_any {
        write(b"(nothing)\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn steps_parse() {
        assert_eq!(parse_step("\"ready\""), Ok(Step::Json(Value::from("ready"))));
        assert_eq!(parse_step("42"), Ok(Step::Json(Value::from(42))));
        assert_eq!(
            parse_step("{\"type\":\"status\",\"text\":\"a:b\"}"),
            Ok(Step::Json(serde_json::json!({"type": "status", "text": "a:b"})))
        );
        assert_eq!(parse_step("raw:{\"a\":"), Ok(Step::Raw("{\"a\":".into())));
        assert_eq!(parse_step("raw:"), Ok(Step::Raw(String::new())));
        assert_eq!(parse_step("hex:fFfe"), Ok(Step::Bytes(vec![0xff, 0xfe])));
        assert_eq!(parse_step("long:104857600"), Ok(Step::Long(100 << 20)));
        assert_eq!(parse_step("garbage:3"), Ok(Step::Garbage(3)));
        assert_eq!(parse_step("wait:/tmp/go"), Ok(Step::WaitFile("/tmp/go".into())));
        for bad in ["{\"a\":", "ready", "hex:f", "hex:zz", "hex:", "long:-1", "wait:", "nope:1"] {
            assert!(parse_step(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn steps_write_what_they_say() {
        let (ours, mut primary) = UnixStream::pair().expect("socketpair");
        let channel = Channel::from_fd(ours.into());
        let steps = [
            Step::Json(serde_json::json!({"type": "ready"})),
            Step::Raw("{\"cmd\":\"NODE_HANDLE\"}".into()),
            Step::Bytes(vec![0xff, 0xfe]),
            Step::Long(70_000),
            Step::Raw(String::new()),
            Step::Garbage(2),
        ];
        let writer = std::thread::spawn(move || send(&channel, &steps));
        let mut got = Vec::new();
        primary.read_to_end(&mut got).expect("read until the writer is done");
        writer.join().expect("writer thread").expect("steps sent");
        let expected = [
            &b"{\"type\":\"ready\"}\n{\"cmd\":\"NODE_HANDLE\"}\n\xff\xfe\n"[..],
            &vec![b'x'; 70_000],
            b"\nnot json 1\nnot json 2\n",
        ]
        .concat();
        assert!(got == expected, "got {} bytes: {:?}…", got.len(), &got[..got.len().min(80)]);
    }
}
