//! What `ctl` prints, and what it does when nobody reads it: a closed pipe
//! (`ctl logs -f | head -1`) ends ctl quietly with 0, any other failure to write
//! (`> /dev/full`) with one line and 1. Either way the connection, and its slot on the
//! control socket, goes with it.

use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use serde_json::Value;

use super::Fail;

fn write_failed(e: &std::io::Error) -> Fail {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        return Fail(0, String::new());
    }
    Fail(1, format!("cannot write the output: {}", crate::backend::describe(e)))
}

/// Writes `text` to stdout and flushes it (std ignores a failed flush at exit).
fn out(text: &str) -> Result<(), Fail> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes()).and_then(|()| out.flush()).map_err(|e| write_failed(&e))
}

pub(super) fn print_line(line: &str) -> Result<(), Fail> {
    out(&format!("{line}\n"))
}

/// Waits until `socket` has something to read; fails when stdout is a pipe whose reader
/// went away meanwhile (poll reports an error on it, without a write).
pub(super) fn wait_readable(socket: &UnixStream) -> Result<(), Fail> {
    let stdout = std::io::stdout();
    loop {
        let mut fds = [
            PollFd::new(socket.as_fd(), PollFlags::POLLIN),
            PollFd::new(stdout.as_fd(), PollFlags::empty()),
        ];
        // WHY a timeout at all: a second is how late a closed stdout may be noticed if
        // poll ever misses it; it costs nothing.
        let timeout = PollTimeout::try_from(Duration::from_secs(1)).unwrap_or(PollTimeout::MAX);
        match poll(&mut fds, timeout) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(Fail(1, format!("cannot wait for corral: {e}"))),
        }
        let closed = PollFlags::POLLERR | PollFlags::POLLHUP;
        if fds[1].revents().is_some_and(|r| r.intersects(closed)) {
            return Err(Fail(0, String::new()));
        }
        if fds[0].revents().is_some_and(|r| !r.is_empty()) {
            return Ok(());
        }
    }
}
pub(super) fn print_json(value: &Value) -> Result<(), Fail> {
    print_line(&value.to_string())
}

pub(super) fn print_output(line: &Value, json: bool) -> Result<(), Fail> {
    if json {
        return print_json(line);
    }
    let group = line["group"].as_str().unwrap_or("?");
    let slot = line["worker"].as_u64().and_then(|s| u32::try_from(s).ok()).unwrap_or(0);
    let id = crate::core::WorkerId { group, slot };
    let text = crate::report::sanitize(line["line"].as_str().unwrap_or_default().as_bytes());
    // `!` marks stderr, as in headless text output and the dashboard.
    let mark = if line["stream"] == "stderr" { '!' } else { '|' };
    print_line(&format!("{} {id} {mark} {text}", line["ts"].as_str().unwrap_or_default()))
}

pub(super) fn print_status(status: &crate::control::status::Status) -> Result<(), Fail> {
    let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".to_string());
    let rows: Vec<Vec<String>> = status
        .workers
        .iter()
        .map(|w| {
            let uptime = match (w.uptime_ms, w.next_run_in_ms) {
                (Some(ms), _) => crate::report::human_duration(Duration::from_millis(ms)),
                // Between runs of a schedule: when the next one is.
                (None, Some(ms)) => {
                    format!("in {}", crate::ui::format_uptime(Duration::from_millis(ms)))
                }
                (None, None) => "-".to_string(),
            };
            let last = w.last_exit.as_ref().map(|last| {
                let how = match (last.code, &last.signal) {
                    (Some(c), _) => format!("exit {c}"),
                    (None, Some(s)) => s.clone(),
                    _ => "?".into(),
                };
                // The reason in words, as the dashboard says it: `killed by user`.
                format!("{how} ({})", last.reason.replace('_', " "))
            });
            let cpu = w.cpu_percent.map(|c| format!("{c:.1}%"));
            let mem =
                w.memory_bytes.map(|b| bytesize::ByteSize(b).display().iec_short().to_string());
            vec![
                w.id.clone(),
                or_dash(w.pid.map(|p| p.to_string())),
                w.state.clone(),
                uptime,
                w.restarts.to_string(),
                or_dash(last),
                or_dash(cpu),
                or_dash(mem),
                match &w.waiting_for {
                    Some(what) => format!("waits for {}", what.join(", ")),
                    None => crate::report::sanitize(w.status.as_deref().unwrap_or("").as_bytes()),
                },
            ]
        })
        .collect();
    print_table(
        &["ID", "PID", "STATE", "UPTIME", "RESTARTS", "LAST EXIT", "CPU", "MEM", "STATUS"],
        &rows,
    )
}

pub(super) fn print_table(head: &[&str], rows: &[Vec<String>]) -> Result<(), Fail> {
    let mut widths: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        use std::fmt::Write as _;
        let mut text = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                let _ = write!(text, "{cell:<w$}  ");
            }
        }
        text.trim_end().to_string()
    };
    let mut text = line(head.to_vec()) + "\n";
    for row in rows {
        text += &line(row.iter().map(String::as_str).collect());
        text.push('\n');
    }
    out(&text)
}
