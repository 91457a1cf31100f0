//! The hidden `corral __test-worker` subcommand: a worker whose misbehaviour the
//! integration tests switch on with flags (exit codes, signal deaths, ignored SIGTERM,
//! children, escaped descendants, output floods, a report of what it was given) and
//! whatever it says on the event channel, well-formed or hostile.
//!
//! It only ever acts on its own process and the processes it starts; it is not part of the
//! public interface and may change with the tests.

use std::ffi::OsString;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{ArgGroup, Parser};

use crate::signal::Signal;
use crate::worker::Channel;

mod channel;
mod processes;
mod report;
#[allow(unsafe_code, reason = "the SIGTERM handler writes and exits with raw calls")]
mod signals;

pub use channel::Step;

/// Flags, applied in the order they are declared here.
#[derive(Debug, Parser, PartialEq, Eq)]
#[command(
    name = "corral __test-worker",
    about = "A worker with switchable misbehaviour, for corral's own tests",
    group(ArgGroup::new("outcome").args(["exit", "signal"]))
)]
pub struct Options {
    /// Append `<pid> <CORRAL_GENERATION>` to FILE at start.
    #[arg(long, value_name = "FILE")]
    pub marker: Option<PathBuf>,
    /// Write a JSON report of this process's environment to FILE (atomically).
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Allocate N MiB and write to every page, so all of it counts in the RSS; kept.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub alloc_mib: u64,
    /// Print N lines `line <i>` to stdout.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub lines: u64,
    /// Then print N lines `line <i>` to stderr.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub stderr_lines: u64,
    /// Then do this on the event channel (repeatable, in order): a JSON value (sent with
    /// `corral::worker::Channel`); `raw:TEXT` (TEXT and a newline, unchecked); `hex:FFFE`
    /// (those bytes and a newline); `long:N` (N bytes of `x`, no newline); `garbage:N` (N
    /// lines that are not JSON); `wait:FILE` (block until FILE exists).
    #[arg(long, value_name = "STEP", value_parser = channel::parse_step)]
    pub send: Vec<Step>,
    /// Then print one line of N bytes of `x` to stdout (no newline until the end).
    #[arg(long, value_name = "N")]
    pub long_line: Option<u64>,
    /// Then send N heartbeats on the event channel, `--heartbeat-every` apart.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub heartbeats: u32,
    /// The interval of `--heartbeats`.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration, default_value = "100ms")]
    pub heartbeat_every: Duration,
    /// Start N `sleep 1000` children in this process group and keep them.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub children: u32,
    /// Double-fork a `sleep 1000` in a new session, so it leaves this group and session.
    #[arg(long)]
    pub escape: bool,
    /// Ignore SIGTERM.
    #[arg(long, conflicts_with = "term_exit")]
    pub ignore_term: bool,
    /// On SIGTERM print `got SIGTERM` and exit with code N.
    #[arg(long, value_name = "N")]
    pub term_exit: Option<u8>,
    /// With `--term-exit`: on SIGTERM first print `channel: ` and the bytes corral has sent
    /// on the event channel so far, as is (or `(nothing)`).
    #[arg(long, requires = "term_exit")]
    pub read_channel: bool,
    /// Wait this long (humantime) before `--exit` or `--signal`.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration, requires = "outcome")]
    pub after: Option<Duration>,
    /// Exit with code N (at once, or after `--after`).
    #[arg(long, value_name = "N")]
    pub exit: Option<u8>,
    /// Die by this signal (`SEGV`, `SIGKILL`, `9` …), at once or after `--after`.
    #[arg(long, value_name = "SIG", value_parser = parse_signal)]
    pub signal: Option<Signal>,
}

fn parse_signal(text: &str) -> Result<Signal, String> {
    Signal::parse(text).ok_or_else(|| format!("'{text}' is not a signal name or number"))
}

/// Runs the test worker; `args` are the arguments after `__test-worker`.
pub fn main(args: Vec<OsString>) -> ExitCode {
    let command_line = std::iter::once(OsString::from("corral __test-worker")).chain(args);
    let options = match Options::try_parse_from(command_line) {
        Ok(options) => options,
        Err(error) => {
            // Best effort: a closed stderr cannot be reported anywhere else.
            let _ = error.print();
            return ExitCode::from(if error.use_stderr() { 2 } else { 0 });
        }
    };
    match run(&options) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("corral __test-worker: {error}");
            // EX_SOFTWARE: distinct from every code a test asks for with --exit.
            ExitCode::from(70)
        }
    }
}

fn run(options: &Options) -> io::Result<ExitCode> {
    signals::behave_like_a_c_program();
    if let Some(path) = &options.marker {
        report::write_marker(path)?;
    }
    if let Some(path) = &options.report {
        report::write_report(path)?;
    }
    // Kept (not dropped) until this process ends.
    let _memory = allocate(options.alloc_mib);
    print_lines(io::stdout().lock(), options.lines)?;
    print_lines(io::stderr().lock(), options.stderr_lines)?;
    // Kept open until this process ends: `--read-channel` reads it at SIGTERM.
    let events = event_channel(options)?;
    if let Some(events) = &events {
        channel::send(events, &options.send)?;
    }
    if let Some(bytes) = options.long_line {
        let mut out = io::stdout().lock();
        channel::write_x(&mut out, bytes)?;
        out.write_all(b"\n")?;
        out.flush()?;
    }
    if let Some(events) = &events {
        channel::heartbeats(events, options.heartbeats, options.heartbeat_every)?;
    }
    // Kept (not dropped, not waited for) until this process ends.
    let _children = processes::spawn_children(options.children)?;
    if options.escape {
        processes::escape()?;
    }
    if options.ignore_term {
        signals::ignore_term();
    }
    if let Some(code) = options.term_exit {
        if let (Some(events), true) = (&events, options.read_channel) {
            channel::read_on_sigterm(events);
        }
        signals::exit_on_term(code);
    }
    if let Some(after) = options.after {
        std::thread::sleep(after);
    }
    if let Some(code) = options.exit {
        return Ok(ExitCode::from(code));
    }
    if let Some(signal) = options.signal {
        signals::die_by(signal);
        // Still here: the signal's default action is to ignore, stop or continue. A stopped
        // worker that is continued goes on like one that never stopped.
    }
    loop {
        std::thread::park();
    }
}

/// The event channel, when a flag needs it.
fn event_channel(options: &Options) -> io::Result<Option<Channel>> {
    if options.send.is_empty() && options.heartbeats == 0 && !options.read_channel {
        return Ok(None);
    }
    Channel::from_env()
        .map(Some)
        .ok_or_else(|| io::Error::other("no event channel (CORRAL_EVENT_FD)"))
}

/// `mib` MiB that really are resident: fresh zeroed pages are all one shared zero page
/// until written, so one byte of every page is written.
fn allocate(mib: u64) -> Vec<u8> {
    let bytes = usize::try_from(mib).unwrap_or(usize::MAX).saturating_mul(1 << 20);
    let mut memory = vec![0u8; bytes];
    for byte in memory.iter_mut().step_by(4096) {
        *byte = 1;
    }
    std::hint::black_box(memory)
}

fn print_lines(out: impl Write, count: u64) -> io::Result<()> {
    let mut out = BufWriter::new(out);
    for i in 1..=count {
        writeln!(out, "line {i}")?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, clap::Error> {
        Options::try_parse_from(std::iter::once("corral __test-worker").chain(args.iter().copied()))
    }

    fn parsed(args: &[&str]) -> Options {
        parse(args).expect("valid test-worker arguments")
    }

    #[test]
    fn no_flags_means_sleep_forever() {
        let options = parsed(&[]);
        assert_eq!(
            options,
            Options {
                marker: None,
                report: None,
                alloc_mib: 0,
                lines: 0,
                stderr_lines: 0,
                send: Vec::new(),
                long_line: None,
                heartbeats: 0,
                heartbeat_every: Duration::from_millis(100),
                children: 0,
                escape: false,
                ignore_term: false,
                term_exit: None,
                read_channel: false,
                after: None,
                exit: None,
                signal: None,
            }
        );
    }

    #[test]
    fn every_flag_parses() {
        let options = parsed(&[
            "--marker",
            "/tmp/m",
            "--report",
            "/tmp/r.json",
            "--lines",
            "10000",
            "--stderr-lines",
            "3",
            "--alloc-mib",
            "200",
            "--long-line",
            "4096",
            "--send",
            "\"ready\"",
            "--send",
            "raw:{\"cmd\":\"NODE_HANDLE\"}",
            "--heartbeats",
            "10",
            "--heartbeat-every",
            "50ms",
            "--read-channel",
            "--children",
            "2",
            "--escape",
            "--term-exit",
            "9",
            "--after",
            "1m30s",
            "--exit",
            "255",
        ]);
        assert_eq!(options.marker, Some(PathBuf::from("/tmp/m")));
        assert_eq!(options.report, Some(PathBuf::from("/tmp/r.json")));
        assert_eq!((options.lines, options.stderr_lines, options.children), (10_000, 3, 2));
        assert!(options.escape);
        assert!(!options.ignore_term);
        assert_eq!(options.term_exit, Some(9));
        assert!(options.read_channel);
        assert_eq!((options.alloc_mib, options.long_line), (200, Some(4096)));
        assert_eq!(
            options.send,
            [Step::Json("ready".into()), Step::Raw("{\"cmd\":\"NODE_HANDLE\"}".into())]
        );
        assert_eq!((options.heartbeats, options.heartbeat_every), (10, Duration::from_millis(50)));
        assert_eq!(options.after, Some(Duration::from_secs(90)));
        assert_eq!(options.exit, Some(255));
        assert_eq!(options.signal, None);
    }

    #[test]
    fn signals_parse_by_name_and_number() {
        for (text, expected) in [
            ("SEGV", libc::SIGSEGV),
            ("SIGKILL", libc::SIGKILL),
            ("abrt", libc::SIGABRT),
            ("15", libc::SIGTERM),
        ] {
            assert_eq!(parsed(&["--signal", text]).signal, Some(Signal(expected)), "{text}");
        }
        let options = parsed(&["--after", "250ms", "--signal", "TERM"]);
        assert_eq!(options.after, Some(Duration::from_millis(250)));
        assert_eq!(options.signal, Some(Signal::TERM));
    }

    #[test]
    fn mistakes_are_rejected() {
        for args in [
            &["--after", "1s"][..],               // --after needs --exit or --signal
            &["--exit", "1", "--signal", "TERM"], // one outcome only
            &["--ignore-term", "--term-exit", "0"],
            &["--read-channel"], // it reports at SIGTERM, so it needs --term-exit
            &["--send", "{\"a\":"],
            &["--heartbeat-every", "often"],
            &["--signal", "NOPE"],
            &["--signal", "0"],
            &["--exit", "256"],
            &["--exit", "-1"],
            &["--after", "soon", "--exit", "0"],
            &["--lines", "many"],
            &["--no-such-flag"],
            &["stray"],
        ] {
            assert!(parse(args).is_err(), "{args:?} should be rejected");
        }
    }
}
