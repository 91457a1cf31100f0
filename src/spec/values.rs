//! Parsers for single values as people write them (on the command line, in the config file, in
//! a [`crate::Cluster`]'s string settings): each turns one string into a checked value or a
//! short reason naming what is expected. Nothing here touches the file system or sockets.

use std::ffi::{OsStr, OsString};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{CommandSpec, ListenAddr};
use crate::core::Backoff;
use crate::signal::Signal;

pub(crate) use crate::core::MAX_WORKERS;

pub(crate) fn workers(text: &str) -> Result<u32, String> {
    text.parse::<u32>()
        .ok()
        .filter(|n| (1..=MAX_WORKERS).contains(n))
        .ok_or_else(|| format!("expected a whole number from 1 to {MAX_WORKERS}"))
}

/// The demo's `--jobs`: like `--workers`, but 0 leaves the group out.
pub(crate) fn jobs(text: &str) -> Result<u32, String> {
    text.parse::<u32>()
        .ok()
        .filter(|n| *n <= MAX_WORKERS)
        .ok_or_else(|| format!("expected a whole number from 0 to {MAX_WORKERS}"))
}

pub(crate) fn max_restarts(text: &str) -> Result<u32, String> {
    text.parse::<u32>()
        .map_err(|_| format!("expected a whole number from 0 (never give up) to {}", u32::MAX))
}

/// The most rotated files kept per log: a bound on what one directory listing costs.
pub(crate) const MAX_LOG_KEEP: u32 = 10_000;

pub(crate) fn log_keep(text: &str) -> Result<u32, String> {
    text.parse::<u32>()
        .ok()
        .filter(|n| *n <= MAX_LOG_KEEP)
        .ok_or_else(|| format!("expected a whole number from 0 to {MAX_LOG_KEEP}"))
}

/// Group names end up in worker ids (`web.2`) and file names, so no dots or slashes.
pub(crate) fn name(text: &str) -> Result<String, String> {
    if !text.is_empty() && text.bytes().all(is_name_byte) {
        Ok(text.to_string())
    } else {
        Err("expected letters, digits, '_' and '-' only".to_string())
    }
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// The default group name from a command's file name: `/usr/bin/python3.12` → `python3-12`.
pub(crate) fn name_from_command(command: &OsStr) -> String {
    let file = std::path::Path::new(command).file_name().unwrap_or(command);
    let name: String = file
        .to_string_lossy()
        .chars()
        .map(|c| if c.is_ascii() && is_name_byte(c as u8) { c } else { '-' })
        .collect();
    if name.is_empty() { "group".to_string() } else { name }
}

/// The default instance name of `name`'s run of `command`: with the script it runs, when its
/// first argument is a file (`node server.js` → `node-server`), so that two programs run by
/// one interpreter get names of their own; else `name`.
pub(crate) fn instance_from_command(
    name: &str,
    command: &CommandSpec,
    cwd: Option<&Path>,
) -> String {
    let Some(script) = command.argv.get(1).map(Path::new) else {
        return name.to_string();
    };
    let is_file = || cwd.map_or_else(|| script.to_path_buf(), |dir| dir.join(script)).is_file();
    match script.file_stem() {
        Some(stem) if !script.as_os_str().as_encoded_bytes().starts_with(b"-") && is_file() => {
            format!("{name}-{}", name_from_command(stem))
        }
        _ => name.to_string(),
    }
}

/// The longest duration corral accepts: far beyond any sensible timeout, far below what
/// would overflow the clock arithmetic (`Instant` + 5000000000000000h panics).
pub(crate) const MAX_DURATION: Duration = Duration::from_hours(24 * 365);

/// A cron pattern (`--schedule`, `schedule`), checked now; its zone is set once the options
/// are merged.
pub(crate) fn cron(text: &str) -> Result<crate::schedule::Schedule, String> {
    let now = std::time::SystemTime::now();
    crate::schedule::Schedule::parse(text, crate::schedule::Zone::Local, now)
}

/// A duration up to `MAX_DURATION`.
fn bounded(text: &str) -> Option<Duration> {
    humantime::parse_duration(text).ok().filter(|d| *d <= MAX_DURATION)
}

pub(crate) fn duration(text: &str) -> Result<Duration, String> {
    bounded(text).ok_or_else(|| "expected a duration up to 1 year, like 250ms, 5s or 1m30s".into())
}

pub(crate) fn positive_duration(text: &str) -> Result<Duration, String> {
    match duration(text)? {
        Duration::ZERO => Err("expected a duration above 0, like 30s or 5m".to_string()),
        d => Ok(d),
    }
}

/// `512MiB`, `1G`, `100M`: a bare K/M/G is binary (KiB/MiB/GiB), as in docker's `-m` or
/// PM2's `max_memory_restart`; KB/MB/GB are decimal.
pub(crate) fn memory_size(text: &str) -> Result<u64, String> {
    let expected = || "expected a size above 0 like 512MiB, 1G or 100M".to_string();
    let t = text.trim();
    // A bare number is bytes, and no program runs in less than a KiB: `512` meant MiB, and
    // taken as bytes it would restart every worker at every other sample.
    if t.parse::<u64>().is_ok_and(|n| (1..1024).contains(&n)) {
        return Err(format!("a bare number is bytes: give a unit, like {t}MiB or {t}K"));
    }
    let binary = t.ends_with(['K', 'M', 'G', 'T', 'k', 'm', 'g', 't']);
    let normalized = if binary { format!("{}iB", t.to_ascii_uppercase()) } else { t.to_string() };
    match normalized.parse::<bytesize::ByteSize>() {
        Ok(size) if size.as_u64() > 0 => Ok(size.as_u64()),
        _ => Err(expected()),
    }
}

/// `--readiness-probe` and the others: `http://…`, `tcp:HOST:PORT` or `exec:CMD`, with
/// the default timings.
pub(crate) fn probe(text: &str) -> Result<crate::probe_spec::ProbeSpec, String> {
    let target = crate::probe_spec::parse_cli(text)?;
    Ok(crate::probe_spec::ProbeSpec { target, timing: crate::core::ProbeTiming::default() })
}

pub(crate) fn signal(text: &str) -> Result<Signal, String> {
    Signal::parse(text)
        .ok_or_else(|| "expected a signal name or number like TERM, SIGINT or 2".into())
}

/// `MIN..MAX` or one value meaning `MIN..MIN`, with `MIN <= MAX`; `expected` names the form.
fn duration_range(text: &str, expected: &str) -> Result<(Duration, Duration), String> {
    let parse = |t: &str| {
        bounded(t).ok_or_else(|| {
            format!("expected {expected}, with durations up to 1 year like 250ms, 5s or 1m30s")
        })
    };
    let (first, max) = text.split_once("..").unwrap_or((text, text));
    let (first, max) = (parse(first)?, parse(max)?);
    if max < first {
        return Err(format!("expected {expected}, with the first value not above the second"));
    }
    Ok((first, max))
}

pub(crate) fn backoff(text: &str) -> Result<Backoff, String> {
    let (first, max) = duration_range(text, "D or D..MAX, like 1s or 100ms..30s")?;
    // Doubling from 0 never grows; someone who wrote `0..30s` expected growth.
    if first.is_zero() && !max.is_zero() {
        return Err("a range must start above 0 (it doubles from there); use 0 for none".into());
    }
    Ok(Backoff { first, max })
}

/// The demo's `--crash-after` range; the demo worker is handed it again as text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CrashAfter {
    pub min: Duration,
    pub max: Duration,
}

impl CrashAfter {
    /// `10s..40s`: what the demo worker is given, and parses again with [`crash_after`].
    pub fn to_arg(&self) -> String {
        let compact = |d: Duration| humantime::format_duration(d).to_string().replace(' ', "");
        format!("{}..{}", compact(self.min), compact(self.max))
    }
}

pub(crate) fn crash_after(text: &str) -> Result<CrashAfter, String> {
    let (min, max) = duration_range(text, "MIN..MAX or one duration, like 10s..40s")?;
    Ok(CrashAfter { min, max })
}

/// A `--listen` value before names are defaulted: `[NAME=]ADDR`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Listen {
    pub name: Option<String>,
    pub addr: ListenAddr,
    /// As given, for the message when its name turns out to be taken.
    pub text: String,
}

const LISTEN_EXPECTED: &str = "expected [NAME=]ADDR with ADDR one of PORT, HOST:PORT, [V6]:PORT, \
                               unix:PATH, fd:NAME (HOST is an IP address or localhost)";

pub(crate) fn listen(text: &str) -> Result<Listen, String> {
    // `unix:/tmp/a=b` has no valid NAME before its `=`, so it stays a path.
    let (name, addr) = match text.split_once('=') {
        Some((name, addr)) if is_listen_name(name) => (Some(name.to_string()), addr),
        _ => (None, text),
    };
    let addr = listen_addr(addr).ok_or(LISTEN_EXPECTED)?;
    Ok(Listen { name, addr, text: text.to_string() })
}

/// `LISTEN_FDNAMES` is `:`-separated and names are looked up by workers, so keep them plain.
pub(crate) fn is_listen_name(text: &str) -> bool {
    let mut bytes = text.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic()) && bytes.all(is_name_byte)
}

fn listen_addr(text: &str) -> Option<ListenAddr> {
    if let Some(name) = text.strip_prefix("fd:") {
        // systemd's names may hold dots (`web.socket`); only ':' would break LISTEN_FDNAMES.
        let ok = !name.is_empty() && !name.contains(':') && !name.contains(char::is_control);
        return ok.then(|| ListenAddr::Inherited(name.to_string()));
    }
    if let Some(path) = text.strip_prefix("unix:") {
        return (!path.is_empty()).then(|| ListenAddr::Unix(PathBuf::from(path)));
    }
    if let Some(port) = port(text) {
        return Some(ListenAddr::AnyPort(port));
    }
    let (host, port_text) = text.rsplit_once(':')?;
    let port = port(port_text)?;
    let ip = if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        IpAddr::V6(v6.parse().ok()?)
    } else if host.eq_ignore_ascii_case("localhost") {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        // Unbracketed IPv6 would make `::1:80` ambiguous.
        IpAddr::V4(host.parse().ok()?)
    };
    Some(ListenAddr::Tcp(SocketAddr::new(ip, port)))
}

/// `--metrics`: `PORT` (on 127.0.0.1: metrics are not for the world unless asked),
/// `HOST:PORT` or `[V6]:PORT`.
pub(crate) fn metrics_addr(text: &str) -> Result<SocketAddr, String> {
    let expected =
        || "expected PORT, HOST:PORT or [V6]:PORT, like 9464 or 127.0.0.1:9464".to_string();
    if let Some(port) = port(text) {
        return Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    }
    match listen_addr(text) {
        Some(ListenAddr::Tcp(addr)) => Ok(addr),
        _ => Err(expected()),
    }
}

pub(crate) fn port_arg(text: &str) -> Result<u16, String> {
    port(text).ok_or_else(|| "expected a port number from 0 to 65535".to_string())
}

/// Digits only (no `+`), 0..=65535; 0 lets the OS pick.
fn port(text: &str) -> Option<u16> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// `KEY=VALUE` as `--env` takes it, on `OsStr` because environment values need not be
/// UTF-8.
pub(crate) fn env_pair(value: &OsStr) -> Result<(OsString, OsString), &'static str> {
    let bytes = value.as_bytes();
    if bytes.contains(&0) {
        return Err("expected KEY=VALUE without NUL bytes");
    }
    match bytes.iter().position(|&b| b == b'=') {
        Some(0) | None => Err("expected KEY=VALUE with a non-empty KEY"),
        Some(i) => Ok((
            OsStr::from_bytes(&bytes[..i]).to_os_string(),
            OsStr::from_bytes(&bytes[i + 1..]).to_os_string(),
        )),
    }
}

/// A `--watch-ignore` glob: one gitignore line (`*.log`, `dist/`, `!keep.txt`).
pub(crate) fn watch_glob(text: &str) -> Result<String, String> {
    let mut builder = ignore::gitignore::GitignoreBuilder::new("/");
    if text.trim().is_empty() || text.contains(['\n', '\0']) {
        return Err("expected a glob like *.log or dist/".to_string());
    }
    builder
        .add_line(None, text)
        .map_err(|e| format!("expected a glob like *.log or dist/: {e}"))?;
    Ok(text.to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a panic is how a test fails")]
mod tests {
    use super::*;

    #[test]
    fn listen_forms() {
        let tcp = |s: &str| ListenAddr::Tcp(s.parse().unwrap());
        let cases = [
            ("3000", None, ListenAddr::AnyPort(3000)),
            ("0", None, ListenAddr::AnyPort(0)),
            ("127.0.0.1:80", None, tcp("127.0.0.1:80")),
            ("localhost:80", None, tcp("127.0.0.1:80")),
            ("[::1]:8080", None, tcp("[::1]:8080")),
            ("api=[::]:1", Some("api"), tcp("[::]:1")),
            ("unix:/tmp/s.sock", None, ListenAddr::Unix("/tmp/s.sock".into())),
            ("a-b_1=unix:/x=y", Some("a-b_1"), ListenAddr::Unix("/x=y".into())),
            ("unix:/x=y", None, ListenAddr::Unix("/x=y".into())),
        ];
        for (text, name, addr) in cases {
            let want = Listen { name: name.map(str::to_string), addr, text: text.into() };
            assert_eq!(listen(text), Ok(want), "{text}");
        }
        for bad in [
            "",
            "65536",
            "+80",
            "host:80",
            "::1:80",
            "[::1]",
            "1.2.3.4:",
            "unix:",
            "1=80",
            "a b=80",
            ":80",
            "[1.2.3.4]:80",
        ] {
            assert!(listen(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ranges() {
        let s = Duration::from_secs;
        assert_eq!(backoff("0"), Ok(Backoff::ZERO));
        assert_eq!(backoff("0..0"), Ok(Backoff::ZERO));
        assert_eq!(backoff("2s"), Ok(Backoff { first: s(2), max: s(2) }));
        assert!(backoff("0..1s").is_err());
        assert!(backoff("1s..").is_err());
        let c = crash_after("1m30s..2m").unwrap();
        assert_eq!((c.min, c.max), (s(90), s(120)));
        assert_eq!(c.to_arg(), "1m30s..2m");
        assert_eq!(crash_after(&c.to_arg()), Ok(c));
        assert_eq!(crash_after("500ms").unwrap().to_arg(), "500ms..500ms");
    }

    #[test]
    fn default_names_are_valid_names() {
        for (command, want) in
            [("/usr/bin/node", "node"), ("python3.12", "python3-12"), ("./my app", "my-app")]
        {
            let got = name_from_command(OsStr::new(command));
            assert_eq!(got, want);
            assert_eq!(name(&got), Ok(got.clone()));
        }
    }

    #[test]
    fn env_pairs() {
        let pair = |k: &str, v: &str| Ok((OsString::from(k), OsString::from(v)));
        assert_eq!(env_pair(OsStr::new("A=b=c")), pair("A", "b=c"));
        assert_eq!(env_pair(OsStr::new("A=")), pair("A", ""));
        for bad in ["=x", "A", "", "A=\0"] {
            assert!(env_pair(OsStr::new(bad)).is_err(), "{bad:?}");
        }
    }
}
