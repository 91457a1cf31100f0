//! The hidden `corral __test-worker` subcommand: a worker whose misbehaviour the
//! integration tests switch on with flags (exit codes, signal deaths, ignored SIGTERM,
//! children, escaped descendants, output floods, a report of what it was given) and
//! whatever it says on the event channel, well-formed or hostile.
//!
//! It only ever acts on its own process and the processes it starts; it is not part of the
//! public interface and may change with the tests.

use std::ffi::OsString;
use std::fs::{self, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use clap::{ArgGroup, Parser};
use serde_json::{Map, Value, json};

use crate::signal::Signal;
use crate::worker::Channel;

mod channel;

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
    behave_like_a_c_program();
    if let Some(path) = &options.marker {
        write_marker(path)?;
    }
    if let Some(path) = &options.report {
        write_report(path)?;
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
    let _children = spawn_children(options.children)?;
    if options.escape {
        escape()?;
    }
    if options.ignore_term {
        set_disposition(libc::SIGTERM, libc::SIG_IGN);
    }
    if let Some(code) = options.term_exit {
        TERM_EXIT_CODE.store(i32::from(code), Ordering::Relaxed);
        if let (Some(events), true) = (&events, options.read_channel) {
            channel::read_on_sigterm(events);
        }
        set_disposition(libc::SIGTERM, on_sigterm as extern "C" fn(libc::c_int) as usize);
    }
    if let Some(after) = options.after {
        std::thread::sleep(after);
    }
    if let Some(code) = options.exit {
        return Ok(ExitCode::from(code));
    }
    if let Some(signal) = options.signal {
        die_by(signal);
        // Still here: the signal's default action is to ignore, stop or continue. A stopped
        // worker that is continued goes on like one that never stopped.
    }
    loop {
        std::thread::park();
    }
}

/// Undoes what the Rust runtime changed that a C program would not have.
///
/// WHY: std installs a SIGSEGV/SIGBUS handler (stack-overflow detection) that, for a signal
/// sent with `kill` rather than a real fault, resets the disposition and *returns*: the
/// first `kill -SEGV` from a test would be swallowed. Core dumps are turned off so that
/// signal deaths in tests leave no `core` files and take no time to write.
fn behave_like_a_c_program() {
    set_disposition(libc::SIGSEGV, libc::SIG_DFL);
    set_disposition(libc::SIGBUS, libc::SIG_DFL);
    // Lowering a limit is always allowed.
    let _ = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_CORE, 0, 0);
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

fn write_marker(path: &Path) -> io::Result<()> {
    let generation = std::env::var("CORRAL_GENERATION").unwrap_or_else(|_| "-".to_string());
    let line = format!("{} {generation}\n", std::process::id());
    // One write to an O_APPEND file: lines of concurrent workers never interleave.
    OpenOptions::new().create(true).append(true).open(path)?.write_all(line.as_bytes())
}

fn write_report(path: &Path) -> io::Result<()> {
    let status = fs::read_to_string("/proc/self/status")?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .map_or_else(String::new, |value| value.trim().to_string())
    };
    let stat = ProcStat::parse(&fs::read_to_string("/proc/self/stat")?)
        .ok_or_else(|| io::Error::other("unparseable /proc/self/stat"))?;
    let fds = open_fds()?;
    let stdin_is_devnull = fds.iter().any(|(fd, target)| *fd == 0 && target == "/dev/null");
    let report = json!({
        "pid": std::process::id(),
        "ppid": stat.ppid,
        "pgid": stat.pgrp,
        "sid": stat.session,
        "sigblk": field("SigBlk:"),
        "sigign": field("SigIgn:"),
        "fds": fds.iter().map(|(fd, target)| json!({"fd": fd, "target": target})).collect::<Vec<_>>(),
        "env": reported_env(),
        "stdin_is_devnull": stdin_is_devnull,
        "cwd": std::env::current_dir()?.to_string_lossy(),
    });
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    fs::write(&tmp, serde_json::to_vec_pretty(&report)?)?;
    // A reader never sees a half-written report.
    fs::rename(&tmp, path)
}

/// The variables corral sets for a worker (and the test token), nothing else.
fn reported_env() -> Map<String, Value> {
    std::env::vars_os()
        .map(|(key, value)| (key.to_string_lossy().into_owned(), value))
        .filter(|(key, _)| {
            ["CORRAL_", "LISTEN_", "NODE_CHANNEL"].iter().any(|prefix| key.starts_with(prefix))
        })
        .map(|(key, value)| (key, Value::String(value.to_string_lossy().into_owned())))
        .collect()
}

/// Every open fd of this process and what it points to, sorted by fd.
fn open_fds() -> io::Result<Vec<(i32, String)>> {
    let names = fs::read_dir("/proc/self/fd")?
        .map(|entry| entry.map(|e| e.file_name()))
        .collect::<io::Result<Vec<_>>>()?;
    // The directory iterator's own fd is among `names` but is closed by now, so its
    // readlink fails with ENOENT: that is how it is told apart from the fds we were given.
    let mut fds = Vec::new();
    for name in names {
        let Ok(fd) = name.to_string_lossy().parse::<i32>() else {
            continue;
        };
        match fs::read_link(format!("/proc/self/fd/{fd}")) {
            Ok(target) => fds.push((fd, target.to_string_lossy().into_owned())),
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(error),
        }
    }
    fds.sort();
    Ok(fds)
}

/// The fields of `/proc/<pid>/stat` the report needs.
#[derive(Debug, PartialEq, Eq)]
struct ProcStat {
    ppid: u32,
    pgrp: u32,
    session: u32,
}

impl ProcStat {
    /// `pid (comm) state ppid pgrp session …`; `comm` may hold spaces and parentheses, so
    /// the fields are counted from the last `)`.
    fn parse(text: &str) -> Option<ProcStat> {
        let rest = &text[text.rfind(')')? + 1..];
        let mut fields = rest.split_whitespace().skip(1); // the state
        let mut number = || fields.next()?.parse::<u32>().ok();
        Some(ProcStat { ppid: number()?, pgrp: number()?, session: number()? })
    }
}

fn print_lines(out: impl Write, count: u64) -> io::Result<()> {
    let mut out = BufWriter::new(out);
    for i in 1..=count {
        writeln!(out, "line {i}")?;
    }
    out.flush()
}

fn spawn_children(count: u32) -> io::Result<Vec<Child>> {
    (0..count).map(|_| Command::new("sleep").arg("1000").stdin(Stdio::null()).spawn()).collect()
}

/// Leaves a `sleep 1000` behind that is neither our child nor in our group or session:
/// the intermediate process exits at once, so the sleep is re-parented (to corral, the
/// subreaper, if corral does its job).
fn escape() -> io::Result<()> {
    let mut command = Command::new("sleep");
    command.arg("1000").stdin(Stdio::null());
    // WHY raw: between fork and exec only calls that cannot allocate (nix's fork is unsafe
    // too, for the same reason).
    // SAFETY: the closure runs in the forked child between fork and exec and calls only
    // async-signal-safe functions (fork, setsid, _exit); it allocates nothing.
    unsafe {
        command.pre_exec(|| match libc::fork() {
            -1 => Err(io::Error::last_os_error()),
            // The grandchild: a new session (hence a new group), then exec of `sleep`.
            0 if libc::setsid() == -1 => Err(io::Error::last_os_error()),
            0 => Ok(()),
            // The intermediate: gone before exec, which orphans the grandchild.
            _ => libc::_exit(0),
        });
    }
    // Reap the intermediate; the grandchild is someone else's now.
    command.spawn()?.wait()?;
    Ok(())
}

/// The exit code of `--term-exit`, read by the signal handler.
static TERM_EXIT_CODE: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_sigterm(_: libc::c_int) {
    const MESSAGE: &[u8] = b"got SIGTERM\n";
    channel::report_from_signal_handler();
    // WHY raw: `_exit` has no nix wrapper, and nix's write wants a borrowed fd that only
    // `Stdout` (a lock, not for a signal handler) or an unsafe borrow would give.
    // SAFETY: write(2) and _exit(2) are async-signal-safe, the buffer is static, and an
    // atomic load takes no lock. _exit skips Rust's stdout buffer, which is why the
    // message is written straight to fd 1.
    unsafe {
        libc::write(libc::STDOUT_FILENO, MESSAGE.as_ptr().cast(), MESSAGE.len());
        libc::_exit(TERM_EXIT_CODE.load(Ordering::Relaxed));
    }
}

fn set_disposition(signal: libc::c_int, handler: libc::sighandler_t) {
    // WHY raw: `die_by` passes any number `--signal` parsed, real-time ones included, which
    // nix's `Signal` cannot name.
    // SAFETY: glibc's signal() installs the handler with sigaction (BSD semantics); the
    // handlers used here are SIG_DFL, SIG_IGN or the async-signal-safe `on_sigterm`.
    // Failure (SIGKILL, SIGSTOP cannot be changed) leaves the default, which is wanted.
    unsafe { libc::signal(signal, handler) };
}

/// Dies by `signal` the way a crashing C program would: default disposition, unblocked,
/// raised at itself. Returns only if the default action does not end the process.
fn die_by(signal: Signal) {
    set_disposition(signal.0, libc::SIG_DFL);
    // WHY raw: `signal` may be a real-time one, which nix's `SigSet` and `raise` cannot take.
    // SAFETY: plain libc calls on a local, zero-initialised sigset_t.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&raw mut set);
        libc::sigaddset(&raw mut set, signal.0);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &raw const set, std::ptr::null_mut());
        libc::raise(signal.0);
    }
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

    #[test]
    fn proc_stat_fields_count_from_the_last_parenthesis() {
        let stat = ProcStat::parse("42 (a (b) c) S 1 42 42 0 -1 4194560 …").expect("parses");
        assert_eq!(stat, ProcStat { ppid: 1, pgrp: 42, session: 42 });
        assert_eq!(ProcStat::parse("42 (x"), None);
    }

    #[test]
    fn open_fds_lists_real_fds_and_not_its_own() {
        let file = tempfile::NamedTempFile::new().expect("temp file");
        let fds = open_fds().expect("read /proc/self/fd");
        let path = file.path().to_string_lossy().into_owned();
        assert!(fds.iter().any(|(_, target)| *target == path), "{fds:?} lacks {path}");
        assert!(
            fds.iter().all(|(_, target)| !target.ends_with("/fd")),
            "the iterator's own fd leaked into {fds:?}"
        );
    }
}
