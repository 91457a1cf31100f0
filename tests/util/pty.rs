//! The dashboard harness: the real `corral` on a pseudo-terminal, as a person would run it.
//! portable-pty makes corral a session leader with the pty as its controlling terminal (so
//! SIGWINCH and the hangup on close behave as in a real terminal); a reader thread feeds
//! everything corral writes into a `vt100` parser, which the tests read back as text.
//!
//! Like the headless harness it marks corral and its workers with a per-test token and
//! kills whatever carries it on drop, even when the test failed.

use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, FromRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, poll};
use portable_pty::{CommandBuilder, ExitStatus, MasterPty, PtySize, native_pty_system};

use super::{
    SHORT, TOKEN_VAR, children_of, corral_bin, describe, kill_token_processes, lock, send_signal,
    token_processes,
};

const POLL: Duration = Duration::from_millis(15);

/// Records the window titles a program sets: a worker must never be able to set one.
#[derive(Default)]
pub struct Titles(pub Vec<Vec<u8>>);

impl vt100::Callbacks for Titles {
    fn set_window_title(&mut self, _: &mut vt100::Screen, title: &[u8]) {
        self.0.push(title.to_vec());
    }

    fn set_window_icon_name(&mut self, _: &mut vt100::Screen, name: &[u8]) {
        self.0.push(name.to_vec());
    }
}

/// What the reader thread collects.
struct Output {
    parser: Mutex<vt100::Parser<Titles>>,
    /// Every byte corral wrote, for checks on the raw stream (how it left the terminal).
    bytes: Mutex<Vec<u8>>,
    /// The slave side is closed: corral has exited and nothing more can arrive.
    closed: AtomicBool,
}

/// A running `corral ARGS…` on a pty, killed with everything it started when dropped.
pub struct Tty {
    child: Box<dyn portable_pty::Child + Send + Sync>,
    pid: u32,
    master: Option<Box<dyn MasterPty + Send>>,
    input: Option<File>,
    output: Arc<Output>,
    stop_reader: Arc<AtomicBool>,
    reader: Option<JoinHandle<()>>,
    token: String,
    /// `XDG_STATE_HOME`: corral's log file goes here while the dashboard is on.
    state: tempfile::TempDir,
    /// The pty's termios before corral touched it.
    pub cooked: libc::termios,
    exit: Option<ExitStatus>,
}

/// A second descriptor for the master, owned by us.
///
/// WHY not portable-pty's reader and writer: the writer sends `\n` + EOF when dropped (keys
/// corral would read), and a reader blocked in `read` keeps the master open, so dropping the
/// master would not hang the terminal up. Our own descriptor lets the reader thread poll
/// with a timeout and let go of it on request.
fn dup_master(fd: RawFd) -> File {
    // SAFETY: fcntl on a descriptor we hold open; it returns a new one or -1.
    let copy = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    assert!(copy >= 0, "dup of the pty master: {}", std::io::Error::last_os_error());
    // SAFETY: `copy` is a fresh descriptor that nothing else owns.
    unsafe { File::from_raw_fd(copy) }
}

/// The termios of the pty (on Linux, the master reports the slave's).
pub fn termios_of(fd: RawFd) -> libc::termios {
    // SAFETY: termios is plain data; all-zero is a valid value that tcgetattr overwrites.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: tcgetattr writes into the struct we pass and reads nothing else of ours.
    let rc = unsafe { libc::tcgetattr(fd, &raw mut t) };
    assert_eq!(rc, 0, "tcgetattr on the pty: {}", std::io::Error::last_os_error());
    t
}

fn size(rows: u16, cols: u16) -> PtySize {
    PtySize { rows, cols, pixel_width: 0, pixel_height: 0 }
}

/// The terminal a test runs corral on.
#[derive(Clone, Copy, Debug)]
pub struct Term {
    pub rows: u16,
    pub cols: u16,
    /// Answer a cursor-position request (`ESC [ 6 n`) as every terminal emulator does.
    pub answers_queries: bool,
}

impl Default for Term {
    fn default() -> Term {
        Term { rows: 30, cols: 100, answers_queries: true }
    }
}

impl Tty {
    /// Starts `corral ARGS…` on a 30×100 terminal.
    pub fn start<S: AsRef<str>>(args: &[S]) -> Tty {
        Tty::start_on(Term::default(), args)
    }

    pub fn start_on<S: AsRef<str>>(term: Term, args: &[S]) -> Tty {
        Tty::start_program(term, corral_bin(), args)
    }

    /// Starts `corral ARGS…` with these environment variables besides (or instead of) the
    /// harness's own: `XDG_RUNTIME_DIR` of a running corral, for `corral attach`.
    pub fn start_with_env<S: AsRef<str>>(
        term: Term,
        args: &[S],
        env: &[(&str, &std::ffi::OsStr)],
    ) -> Tty {
        Tty::start_full(term, corral_bin(), args, env)
    }

    /// Starts another program on the terminal (an interactive shell, to run corral as a
    /// job); `pid()` is then that program's.
    pub fn start_program<S: AsRef<str>>(term: Term, program: &str, args: &[S]) -> Tty {
        Tty::start_full(term, program, args, &[])
    }

    fn start_full<S: AsRef<str>>(
        term: Term,
        program: &str,
        args: &[S],
        env: &[(&str, &std::ffi::OsStr)],
    ) -> Tty {
        let Term { rows, cols, answers_queries } = term;
        let pair = native_pty_system().openpty(size(rows, cols)).expect("openpty");
        let master_fd = pair.master.as_raw_fd().expect("the master has a descriptor");
        let cooked = termios_of(master_fd);
        let token = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
        let state = tempfile::tempdir().expect("temp dir");
        let mut command = CommandBuilder::new(program);
        for arg in args {
            command.arg(arg.as_ref());
        }
        command.cwd(std::env::temp_dir());
        command.env("TERM", "xterm-256color");
        // Plain text: the assertions read words, not colours.
        command.env("NO_COLOR", "1");
        command.env(TOKEN_VAR, &token);
        command.env("CORRAL", corral_bin());
        command.env("XDG_STATE_HOME", state.path());
        command.env("XDG_RUNTIME_DIR", super::runtime_dir());
        for (key, value) in env {
            command.env(key, value);
        }
        let child = pair.slave.spawn_command(command).expect("corral starts on the pty");
        // Only corral may hold the slave: then its exit closes it and the reader sees EOF.
        drop(pair.slave);
        let pid = child.process_id().expect("corral has a pid");
        let parser = vt100::Parser::new_with_callbacks(
            rows.try_into().expect("rows > 0"),
            cols.try_into().expect("cols > 0"),
            0,
            Titles::default(),
        );
        let output = Arc::new(Output {
            parser: Mutex::new(parser),
            bytes: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
        });
        let stop_reader = Arc::new(AtomicBool::new(false));
        let reader = {
            let file = dup_master(master_fd);
            let replies = answers_queries.then(|| dup_master(master_fd));
            let (output, stop) = (Arc::clone(&output), Arc::clone(&stop_reader));
            thread::spawn(move || read_master(file, replies, &output, &stop))
        };
        Tty {
            child,
            pid,
            input: Some(dup_master(master_fd)),
            master: Some(pair.master),
            output,
            stop_reader,
            reader: Some(reader),
            token,
            state,
            cooked,
            exit: None,
        }
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Its `XDG_STATE_HOME`.
    pub fn state_dir(&self) -> &std::path::Path {
        self.state.path()
    }

    /// Types `keys` (raw bytes: `q`, `\x1b[A`, `\x03` …).
    pub fn send(&mut self, keys: &[u8]) {
        let input = self.input.as_mut().expect("the terminal is still open");
        input.write_all(keys).expect("write to the pty");
    }

    /// Sends `signal` to corral itself.
    pub fn signal(&self, signal: i32) {
        assert!(send_signal(self.pid, signal), "corral {} is gone", self.pid);
    }

    /// Resizes the terminal (corral gets SIGWINCH) and the screen model with it.
    pub fn resize(&self, rows: u16, cols: u16) {
        let master = self.master.as_ref().expect("the terminal is still open");
        master.resize(size(rows, cols)).expect("TIOCSWINSZ");
        let (r, c) = (rows.max(1).try_into().expect("> 0"), cols.max(1).try_into().expect("> 0"));
        lock(&self.output.parser).set_size(r, c);
    }

    /// The screen as text, one line per row, trailing blanks trimmed.
    pub fn screen(&self) -> String {
        lock(&self.output.parser).screen().contents()
    }

    /// Runs `look` on the screen model (cursor, modes, cell attributes).
    pub fn with_screen<T>(&self, look: impl FnOnce(&vt100::Screen) -> T) -> T {
        look(lock(&self.output.parser).screen())
    }

    /// Every window title anything set.
    pub fn titles(&self) -> Vec<Vec<u8>> {
        lock(&self.output.parser).callbacks().0.clone()
    }

    /// Every byte corral wrote so far.
    pub fn bytes(&self) -> Vec<u8> {
        lock(&self.output.bytes).clone()
    }

    /// The pty's termios now.
    pub fn termios(&self) -> libc::termios {
        let master = self.master.as_ref().expect("the terminal is still open");
        termios_of(master.as_raw_fd().expect("the master has a descriptor"))
    }

    /// Polls the screen until `done` holds and returns it; at the deadline, or once corral
    /// has exited without it, fails the test with the screen and corral's log.
    pub fn wait_screen(
        &self,
        what: &str,
        deadline: Duration,
        mut done: impl FnMut(&str) -> bool,
    ) -> String {
        let end = Instant::now() + deadline;
        loop {
            // Read before the screen: once closed, nothing can change it any more.
            let closed = self.output.closed.load(Ordering::SeqCst);
            let screen = self.screen();
            if done(&screen) {
                return screen;
            }
            assert!(!closed, "corral's terminal closed before {what}\n{}", self.dump());
            assert!(Instant::now() < end, "timed out waiting for {what}\n{}", self.dump());
            thread::sleep(POLL);
        }
    }

    /// corral's exit status if it has exited (reaping it), else `None`.
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            self.exit = self.child.try_wait().expect("waitpid on corral");
        }
        self.exit.clone()
    }

    /// Waits for corral to exit and, while the terminal is open, for the reader to have
    /// everything it wrote.
    pub fn wait_exit(&mut self, deadline: Duration) -> ExitStatus {
        let end = Instant::now() + deadline;
        let status = loop {
            if let Some(status) = self.try_exit() {
                break status;
            }
            assert!(Instant::now() < end, "corral did not exit\n{}", self.dump());
            thread::sleep(POLL);
        };
        if self.master.is_some() {
            let closed = super::wait_until(SHORT, || self.output.closed.load(Ordering::SeqCst));
            assert!(closed, "corral exited but its terminal stayed open\n{}", self.dump());
        }
        status
    }

    /// Closes the master side, as a terminal window that is closed or an SSH connection
    /// that drops: the kernel hangs up the session (SIGHUP to corral).
    pub fn hang_up(&mut self) {
        self.stop_reader.store(true, Ordering::SeqCst);
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        self.input = None;
        self.master = None;
    }

    /// corral's worker processes (its children; each leads its own session).
    pub fn workers(&self) -> Vec<u32> {
        children_of(self.pid)
    }

    /// Asserts that no process carrying this test's token is left.
    pub fn assert_nothing_left(&self) {
        let gone = super::wait_until(SHORT, || token_processes(&self.token).is_empty());
        let left = token_processes(&self.token);
        assert!(gone, "processes outlived corral: {}\n{}", describe(&left), self.dump());
    }

    /// The same, for a shell started with [`Tty::start_program`]: everything but the shell.
    pub fn assert_only_the_shell_left(&self) {
        let others = || -> Vec<u32> {
            token_processes(&self.token).into_iter().filter(|&p| p != self.pid).collect()
        };
        let gone = super::wait_until(SHORT, || others().is_empty());
        assert!(gone, "processes outlived corral: {}\n{}", describe(&others()), self.dump());
    }

    /// corral's diagnostics file (`$XDG_STATE_HOME/corral/corral.log`) as it is now.
    pub fn log(&self) -> String {
        fs::read_to_string(self.state.path().join("corral/corral.log")).unwrap_or_default()
    }

    /// The screen, corral's state and its log, for failure messages.
    pub fn dump(&self) -> String {
        let mut text = format!("--- corral pid {} ({:?})\n", self.pid, self.exit);
        let _ = writeln!(text, "--- screen:\n{}", self.screen());
        let processes = token_processes(&self.token);
        let _ = writeln!(text, "--- token processes: {}", describe(&processes));
        let log = fs::read_to_string(self.state.path().join("corral/corral.log"));
        let log = log.unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        let _ = write!(text, "--- corral.log (tail):\n{}", tail.join("\n"));
        text
    }
}

impl Drop for Tty {
    fn drop(&mut self) {
        if self.try_exit().is_none() {
            send_signal(self.pid, libc::SIGKILL);
            let _ = self.child.wait();
        }
        self.stop_reader.store(true, Ordering::SeqCst);
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        kill_token_processes(&self.token);
    }
}

/// The cursor position request a program sends to find where the cursor is.
const CURSOR_QUERY: &[u8] = b"\x1b[6n";

/// Feeds everything corral writes into the parser until the slave closes (EIO) or the
/// test asks to let go of the master; with `replies`, answers cursor position requests
/// from the screen model, as a terminal emulator would.
fn read_master(mut file: File, mut replies: Option<File>, output: &Output, stop: &AtomicBool) {
    let mut buffer = vec![0u8; 64 * 1024];
    // Where to look for the next request in `bytes` (one may be split across reads).
    let mut scanned = 0;
    while !stop.load(Ordering::SeqCst) {
        let ready = poll(&mut [PollFd::new(file.as_fd(), PollFlags::POLLIN)], 50u16);
        if !matches!(ready, Ok(1..)) {
            continue; // timeout or EINTR: look at the stop flag again
        }
        match file.read(&mut buffer) {
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            // EIO: every slave descriptor is closed (Linux reports it so instead of EOF).
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let mut bytes = lock(&output.bytes);
                bytes.extend_from_slice(&buffer[..n]);
                let mut parser = lock(&output.parser);
                parser.process(&buffer[..n]);
                let Some(replies) = replies.as_mut() else { continue };
                while let Some(at) = find(&bytes[scanned..], CURSOR_QUERY) {
                    scanned += at + CURSOR_QUERY.len();
                    let (row, col) = parser.screen().cursor_position();
                    let answer = format!("\x1b[{};{}R", row + 1, col + 1);
                    let _ = replies.write_all(answer.as_bytes());
                }
                scanned = scanned.max(bytes.len().saturating_sub(CURSOR_QUERY.len() - 1));
            }
        }
    }
    output.closed.store(true, Ordering::SeqCst);
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
