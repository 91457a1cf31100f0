//! The live dashboard (docs/dashboard.md). It runs on a thread of its own: terminal writes block when
//! a terminal stops reading, and supervision must never wait for that. It reads the latest
//! `View` the runtime left in a slot and sends `UiRequest`s back; it never touches a
//! process. The terminal is restored on every way out: quit, signal, error, panic.

mod colour;
mod details;
mod footer;
mod format;
mod groups;
mod keys;
mod metrics;
pub mod model;
mod pane;
mod render;
mod state;
mod table;
#[allow(unsafe_code, reason = "the SIGWINCH handler: signal_hook_registry::register is unsafe")]
mod tty;
mod wire;

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, raise};
use nix::unistd::{getpgrp, tcgetpgrp};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{self, DisableMouseCapture, EnableMouseCapture, Event};
use ratatui::crossterm::terminal::{
    Clear, ClearType, EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use ratatui::crossterm::{cursor, execute};

pub use self::format::{clock as format_clock, uptime as format_uptime};
pub use self::model::{UiRequest, View};
pub use self::render::render;
pub use self::state::{Effect, UiState};
use self::tty::{Tty, TtyWatch};

/// At most ~30 frames a second, however fast things change.
const FRAME: Duration = Duration::from_millis(33);
/// How often an idle dashboard looks at its slot.
const LOOK: Duration = Duration::from_millis(50);

/// The latest view, handed over without waiting.
pub type ViewSlot = Arc<Mutex<Option<Arc<View>>>>;
type Requests = tokio::sync::mpsc::UnboundedSender<UiRequest>;

/// The running dashboard thread.
pub struct Dashboard {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    waker: Waker,
}

/// Wakes the dashboard thread to look at its slot now rather than at its next look (a
/// view that came over a socket is drawn at once).
#[derive(Clone)]
pub struct Waker(Option<Arc<std::os::unix::net::UnixStream>>);

impl Waker {
    pub fn wake(&self) {
        // A full socket already holds a wake-up; one is enough.
        if let Some(mut s) = self.0.as_deref() {
            let _ = s.write(&[1]);
        }
    }
}

impl Dashboard {
    pub fn waker(&self) -> Waker {
        self.waker.clone()
    }

    /// Stops the thread and waits (briefly) until it has restored the terminal.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let until = Instant::now() + Duration::from_secs(2);
            while !thread.is_finished() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(5));
            }
            if thread.is_finished() {
                let _ = thread.join();
            }
        }
    }
}

/// Whether colours are wanted (`NO_COLOR` set and not empty turns them off).
pub fn color_wanted() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

fn setup_terminal() -> io::Result<()> {
    enable_raw_mode()?;
    execute!(io::stdout(), EnterAlternateScreen, EnableMouseCapture, cursor::Hide)
}

/// Puts the terminal back as it was: safe to call more than once, from a panic hook too.
pub fn restore_terminal() {
    let mut out = io::stdout();
    let _ = execute!(out, DisableMouseCapture, LeaveAlternateScreen, cursor::Show);
    let _ = disable_raw_mode();
    let _ = out.flush();
}

static PANIC_REQUESTS: OnceLock<Requests> = OnceLock::new();

/// A panic anywhere restores the terminal first, so its message is readable, and asks the
/// runtime to stop every worker; then the default hook prints it.
fn install_panic_hook(requests: Requests) {
    let _ = PANIC_REQUESTS.set(requests);
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore_terminal();
        if let Some(tx) = PANIC_REQUESTS.get() {
            let _ = tx.send(UiRequest::Quit(crate::core::ShutdownTrigger::Panic));
        }
        previous(info);
    }));
}

/// Starts the dashboard on its own thread.
pub fn start(slot: ViewSlot, requests: Requests) -> io::Result<Dashboard> {
    setup_terminal().inspect_err(|_| restore_terminal())?;
    install_panic_hook(requests.clone());
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let (woken, waker) = match std::os::unix::net::UnixStream::pair() {
        Ok((ours, theirs))
            if ours.set_nonblocking(true).is_ok() && theirs.set_nonblocking(true).is_ok() =>
        {
            (Some(ours), Waker(Some(Arc::new(theirs))))
        }
        // Without one the dashboard still looks at its slot every 50 ms.
        _ => (None, Waker(None)),
    };
    let thread = std::thread::Builder::new().name("corral-ui".into()).spawn(move || {
        if let Err(e) = ui_loop(&slot, &requests, &flag, woken) {
            tracing::error!("dashboard stopped: {e}");
            let _ = requests.send(UiRequest::Quit(crate::core::ShutdownTrigger::TerminalError));
        }
        restore_terminal();
    })?;
    Ok(Dashboard { stop, thread: Some(thread), waker })
}

/// A cleared screen and a terminal with empty buffers, so the next frame draws everything.
/// WHY not `Terminal::clear`: it asks the terminal for the cursor position and fails
/// where nothing answers (a bare pseudo-terminal); a fullscreen app needs no answer.
fn fresh_terminal() -> io::Result<Terminal<CrosstermBackend<io::Stdout>>> {
    execute!(io::stdout(), Clear(ClearType::All))?;
    Terminal::new(CrosstermBackend::new(io::stdout()))
}

fn ui_loop(
    slot: &ViewSlot,
    requests: &Requests,
    stop: &AtomicBool,
    woken: Option<std::os::unix::net::UnixStream>,
) -> io::Result<()> {
    let mut terminal = fresh_terminal()?;
    let mut ui = UiState::new(color_wanted());
    let mut view = Arc::new(View::default());
    let mut dirty = true;
    let mut last_draw = Instant::now().checked_sub(FRAME).unwrap_or_else(Instant::now);
    let mut last_request = None;
    let tty = TtyWatch::open(woken);
    let mut stalled = false;
    while !stop.load(Ordering::Relaxed) {
        if let Some(fresh) = slot.lock().ok().and_then(|mut s| s.take()) {
            view = fresh;
            ui.clamp(&view);
            ui.adopt_notice(&view, Instant::now());
            dirty = true;
        }
        if dirty && last_draw.elapsed() >= FRAME {
            terminal.draw(|f| render(f, &view, &mut ui, Instant::now()))?;
            dirty = false;
            last_draw = Instant::now();
            let request = ui.pane_request(&view);
            if last_request.as_ref() != Some(&request) {
                let _ = requests.send(UiRequest::Pane(request.clone()));
                last_request = Some(request);
            }
        }
        // WHY a short wait: a new view is picked up within a frame, and an idle dashboard
        // wakes only ~20 times a second to look. A frame held back by the rate limit is
        // drawn as soon as the limit allows.
        let wait = if dirty { FRAME.saturating_sub(last_draw.elapsed()) } else { LOOK };
        match tty.wait(wait.max(Duration::from_millis(1)), stalled) {
            Tty::Gone => {
                // The terminal hung up: stop everything in order (never a spin on EIO).
                let _ = requests.send(UiRequest::Quit(crate::core::ShutdownTrigger::Hangup));
                return Ok(());
            }
            Tty::Quiet => {
                stalled = false;
                continue;
            }
            Tty::Woken => continue,
            Tty::Resized => {
                // ratatui resizes its buffers to the terminal on the next draw.
                dirty = true;
                continue;
            }
            Tty::Input => {}
        }
        let mut read = handle_events(&mut ui, &view, requests, &mut terminal)?;
        if read == 0 {
            // WHY: crossterm's reader waits edge-triggered. When a resize and a key arrive in
            // the same wakeup it returns the resize and loses the tty's edge, so the key
            // stays unread (and our level-triggered poll sees it forever). A termios write
            // wakes the tty's readers, which gives crossterm a new edge.
            tty.rearm();
            read = handle_events(&mut ui, &view, requests, &mut terminal)?;
        }
        // Input that nobody can read (a partial sequence, another reader) must not make
        // this loop spin: until the next quiet wait, only a hangup wakes us early.
        stalled = read == 0;
        dirty |= read > 0;
    }
    Ok(())
}

/// Handles every event crossterm has ready; returns how many there were.
fn handle_events(
    ui: &mut UiState,
    view: &View,
    requests: &Requests,
    terminal: &mut Terminal<CrosstermBackend<io::Stdout>>,
) -> io::Result<usize> {
    let mut read = 0;
    // Only a zero-timeout poll here: crossterm's own waiting spins on a hung-up tty.
    while event::poll(Duration::ZERO)? {
        read += 1;
        let effects = match event::read()? {
            Event::Key(key) => ui.on_key(key, view, Instant::now()),
            Event::Mouse(m) => {
                ui.on_mouse(m, view);
                vec![]
            }
            _ => vec![], // resize and focus: just redraw
        };
        for effect in effects {
            match effect {
                Effect::Send(request) => {
                    let _ = requests.send(request);
                }
                Effect::Suspend => {
                    suspend();
                    *terminal = fresh_terminal()?;
                    if ui.mouse_released {
                        execute!(io::stdout(), DisableMouseCapture)?;
                    }
                }
                Effect::Mouse(true) => execute!(io::stdout(), EnableMouseCapture)?,
                Effect::Mouse(false) => execute!(io::stdout(), DisableMouseCapture)?,
            }
        }
    }
    Ok(read)
}

/// Ctrl-Z: give the terminal back, stop the whole process (workers keep running in their
/// own sessions), and take the terminal again once in the foreground.
fn suspend() {
    restore_terminal();
    // WHY SIGSTOP, not SIGTSTP: a self-sent SIGTSTP is discarded when the process group is
    // orphaned (started from a script), SIGSTOP always stops.
    let _ = raise(Signal::SIGSTOP);
    // Resumed with `bg` instead of `fg`: touching the terminal would stop us again.
    while !in_foreground() {
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = setup_terminal();
}

fn in_foreground() -> bool {
    tcgetpgrp(io::stdout()).is_ok_and(|group| group == getpgrp())
}

#[cfg(test)]
mod tests;
