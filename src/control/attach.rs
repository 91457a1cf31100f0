//! `corral attach` (docs/control.md): the dashboard (docs/dashboard.md) of a running corral. The same `ui` thread
//! as a local dashboard, its views read from the control socket (`view` frames) instead of
//! the runtime, and every key sent back as the control command that does the same thing.
//!
//! Nothing in here can stop the supervisor by accident: `q`, Ctrl-C, a lost terminal, a
//! panic or a signal to `attach` all only detach. Only `Q` answered with `y` sends
//! `shutdown`.

use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex};

use nix::sys::socket::{Shutdown, shutdown};
use serde::Deserialize;
use serde_json::Value;

use super::client::{Conn, Fail, choose, usage};
use super::messages::Request;
use crate::core::{ShutdownTrigger, UserAction, WorkerKey};
use crate::ui::model::{Attached, PaneRequest, UiRequest, View};
use crate::ui::{self, ViewSlot, Waker};

/// What `attach` was asked, parsed by the CLI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attach {
    pub instance: Option<String>,
    pub control: Option<PathBuf>,
}

/// How an attach ended, with the line it prints.
enum End {
    /// `q`, Ctrl-C, a hangup, a signal: corral goes on.
    Detached(ShutdownTrigger),
    /// The shutdown `Q` asked for has happened: corral closed the connection on exit.
    Stopped,
    /// corral went away (or dropped us) without being asked.
    Lost(String),
}

/// What the key thread tells the reading thread about why the connection will close.
#[derive(Default)]
struct Leaving {
    /// What the UI quit with: it detached.
    detached: Mutex<Option<ShutdownTrigger>>,
    shutdown_asked: AtomicBool,
}

/// The socket, for a signal handler to shut down (which ends the reading at once), and the
/// signal that came (0: none).
static SOCKET: AtomicI32 = AtomicI32::new(-1);
static SIGNALLED: AtomicI32 = AtomicI32::new(0);

pub fn run(attach: &Attach) -> ExitCode {
    let (code, message) = run_inner(attach).unwrap_or_else(|Fail(code, message)| (code, message));
    eprintln!("corral attach: {}", crate::text::escape(&message, false));
    ExitCode::from(code)
}

fn run_inner(attach: &Attach) -> Result<(u8, String), Fail> {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() {
        return Err(usage(
            "attach draws a dashboard and needs a terminal (ctl status and ctl events -f do not)",
        ));
    }
    let path = choose(attach.instance.as_deref(), attach.control.as_deref())?;
    let mut conn = Conn::open(&path)?;
    let first = PaneRequest { rows: 20, ..PaneRequest::default() };
    let whom: super::messages::Whom = conn.call_as(&Request::View { pane: first })?;
    let pid = whom.pid;
    let names: Vec<String> = conn.hello.groups.clone();
    let who = Attached { instance: conn.instance.clone(), pid, notice: None };
    let name = format!("{} (pid {pid})", who.instance);
    conn.timeout(None);
    let (reader, writer, next_id) = conn.into_parts();
    watch_signals(&writer);

    let slot = ViewSlot::default();
    let (requests, keys) = tokio::sync::mpsc::unbounded_channel();
    let dashboard = ui::start(Arc::clone(&slot), requests)
        .map_err(|e| Fail(1, format!("cannot start the dashboard: {e}")))?;
    let leaving = Arc::new(Leaving::default());
    let sender = Sender { writer, names, next_id, leaving: Arc::clone(&leaving) };
    // Not joined: it ends with the process (the panic hook keeps a sender alive).
    let _ = std::thread::Builder::new()
        .name("corral-attach-keys".into())
        .spawn(move || sender.run(keys))
        .map_err(|e| Fail(1, format!("cannot start: {e}")))?;
    let end = read_frames(reader, &slot, &dashboard.waker(), who, &leaving);
    dashboard.stop();
    Ok(match end {
        End::Detached(trigger) => {
            let failed = matches!(trigger, ShutdownTrigger::Panic | ShutdownTrigger::TerminalError);
            let why = if failed { " (the dashboard failed)" } else { "" };
            (u8::from(failed), format!("detached from {name}{why}; it keeps running"))
        }
        End::Stopped => (0, format!("{name} has shut down")),
        End::Lost(why) => (1, format!("lost {name}: {why}")),
    })
}

/// A message from corral: a frame, or a reply (only errors matter here).
#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    id: Value,
    #[serde(default)]
    view: Option<View>,
    #[serde(default)]
    ok: Option<bool>,
    #[serde(default)]
    error: Option<String>,
}

/// Reads until the connection ends: frames into the slot (the latest wins; the UI is woken
/// to draw it), error replies into the footer.
fn read_frames(
    mut reader: BufReader<UnixStream>,
    slot: &ViewSlot,
    waker: &Waker,
    mut who: Attached,
    leaving: &Leaving,
) -> End {
    let mut line = Vec::with_capacity(64 * 1024);
    let mut last: Option<View> = None;
    let mut dropped: Option<String> = None;
    let mut serial = 0;
    let why = loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => break None,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => break Some(crate::backend::describe(&e)),
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue; // the server's probe of a quiet client
        }
        let message: Message = match serde_json::from_slice(&line) {
            Ok(m) => m,
            Err(e) => break Some(format!("a message this attach cannot read: {e}")),
        };
        let fresh = if let Some(view) = message.view {
            view
        } else if message.ok == Some(false) {
            let error = message.error.unwrap_or_else(|| "failed".into());
            if message.id.is_null() {
                dropped = Some(error); // corral drops us; the connection ends next
                continue;
            }
            serial += 1;
            who.notice = Some((serial, error));
            match last.clone() {
                Some(view) => view,
                None => continue,
            }
        } else {
            continue; // an ok reply: the next frame shows what it did
        };
        let view = View { attached: Some(who.clone()), ..fresh };
        last = Some(view.clone());
        if let Ok(mut s) = slot.lock() {
            *s = Some(Arc::new(view));
        }
        waker.wake();
    };
    let signal = SIGNALLED.load(Ordering::Relaxed);
    if signal != 0 {
        return End::Detached(ShutdownTrigger::Signal(crate::signal::Signal(signal)));
    }
    if let Some(trigger) = leaving.detached.lock().ok().and_then(|d| *d) {
        return End::Detached(trigger);
    }
    if leaving.shutdown_asked.load(Ordering::SeqCst) && dropped.is_none() {
        return End::Stopped;
    }
    End::Lost(dropped.or(why).unwrap_or_else(|| "it closed the connection (exited?)".into()))
}

/// Turns the UI's requests into control commands, one line each.
struct Sender {
    writer: UnixStream,
    names: Vec<String>,
    next_id: u64,
    leaving: Arc<Leaving>,
}

impl Sender {
    fn run(mut self, mut keys: tokio::sync::mpsc::UnboundedReceiver<UiRequest>) {
        while let Some(request) = keys.blocking_recv() {
            let command = match request {
                UiRequest::Action(action) => command_of(&action, &self.names),
                UiRequest::Pane(pane) => Request::Pane { pane },
                UiRequest::Send { key, message } => {
                    Request::Send { target: key.id(&self.names).to_string(), message }
                }
                UiRequest::Shutdown => {
                    self.leaving.shutdown_asked.store(true, Ordering::SeqCst);
                    Request::Shutdown { force: false }
                }
                UiRequest::Quit(trigger) => {
                    if let Ok(mut d) = self.leaving.detached.lock() {
                        *d = Some(trigger);
                    }
                    // Ends the reading side too: it sees the end of the stream.
                    let _ = self.writer.shutdown(std::net::Shutdown::Both);
                    return;
                }
            };
            if !self.send(&command) {
                return;
            }
        }
    }

    fn send(&mut self, command: &Request) -> bool {
        let line = super::messages::encode(command, self.next_id, false);
        self.next_id += 1;
        self.writer.write_all(&line).is_ok()
    }
}

/// The control command that does what the key asked.
fn command_of(action: &UserAction, names: &[String]) -> Request {
    let group = |g: u16| names.get(usize::from(g)).cloned().unwrap_or_else(|| g.to_string());
    let id = |k: WorkerKey| k.id(names).to_string();
    let scale =
        |g: u16, delta: i64| Request::Scale { group: group(g), workers: None, delta: Some(delta) };
    match *action {
        UserAction::Kill(k) => Request::Kill { target: id(k) },
        UserAction::Restart(k) => Request::Restart { target: id(k) },
        UserAction::Stop(k) => Request::Stop { target: id(k) },
        UserAction::Start(k) => Request::Start { target: id(k) },
        UserAction::ToggleStop(k) => Request::Toggle { target: id(k) },
        UserAction::Reload(g) => Request::Reload { target: group(g) },
        UserAction::ScaleUp(g) => scale(g, 1),
        UserAction::ScaleDown(g) => scale(g, -1),
    }
}

/// SIGINT, SIGTERM and SIGHUP detach (the terminal is restored on the way out) instead of
/// killing `attach` with the terminal still raw.
fn watch_signals(socket: &UnixStream) {
    SOCKET.store(socket.as_raw_fd(), Ordering::SeqCst);
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only touches atomics and calls shutdown(2), which is
        // async-signal-safe (nix's wrapper allocates nothing); the socket stays open until
        // the process exits.
        let _ = unsafe {
            signal_hook_registry::register(signal, move || {
                SIGNALLED.store(signal, Ordering::SeqCst);
                let fd = SOCKET.load(Ordering::SeqCst);
                if fd >= 0 {
                    let _ = shutdown(fd, Shutdown::Both);
                }
            })
        };
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn every_key_becomes_the_matching_command() {
        let names = vec!["web".to_string(), "queue".to_string()];
        let k = WorkerKey { group: 1, slot: 3 };
        let cases = [
            (UserAction::Kill(k), json!({"cmd": "kill", "target": "queue.3"})),
            (UserAction::Restart(k), json!({"cmd": "restart", "target": "queue.3"})),
            (UserAction::Stop(k), json!({"cmd": "stop", "target": "queue.3"})),
            (UserAction::Start(k), json!({"cmd": "start", "target": "queue.3"})),
            (UserAction::ToggleStop(k), json!({"cmd": "toggle", "target": "queue.3"})),
            (UserAction::Reload(0), json!({"cmd": "reload", "target": "web"})),
            (UserAction::ScaleUp(1), json!({"cmd": "scale", "group": "queue", "delta": 1})),
            (UserAction::ScaleDown(0), json!({"cmd": "scale", "group": "web", "delta": -1})),
        ];
        for (action, want) in cases {
            let command = command_of(&action, &names);
            let sent = serde_json::to_value(&command).unwrap_or_default();
            assert_eq!(sent, want, "{action:?}");
            // What is written is what the server reads back.
            let line = super::super::messages::encode(&command, 7, true);
            let (id, parsed) = super::super::messages::parse(&line, true);
            assert_eq!((id, parsed), (json!(7), Ok(command)));
        }
    }
}
