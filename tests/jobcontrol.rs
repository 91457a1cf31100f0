//! corral as a job of an interactive shell, as people start it: `corral … &`, `fg`,
//! `stty tostop`. A background corral that touches the terminal is stopped by it until
//! `fg` (never a busy loop), and the terminal's SIGTTIN/SIGTTOU are never taken for a
//! request to scale.

use std::fs;
use std::time::Duration;

use crate::util::pty::{Term, Tty};
use crate::util::{DEADLINE, SHORT, children_of, send_signal, stat, wait_until};

/// bash on a terminal with job control, no rc files, a plain prompt.
fn shell() -> Tty {
    let term = Term { rows: 30, cols: 100, answers_queries: true };
    let mut tty = Tty::start_program(term, "bash", &["--norc", "--noprofile", "-i"]);
    tty.send(b"PS1='$ '\n");
    tty
}

/// The corral the shell started (its only child named corral).
fn corral_of(tty: &Tty) -> u32 {
    let mut found = None;
    let seen = wait_until(DEADLINE, || {
        found = children_of(tty.pid()).into_iter().find(|&p| {
            fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "corral")
        });
        found.is_some()
    });
    assert!(seen, "the shell started no corral\n{}", tty.dump());
    found.expect("found")
}

/// CPU ticks (user + system) the process has used.
fn cpu_ticks(pid: u32) -> u64 {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = text.rfind(')').map_or("", |i| &text[i + 1..]);
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After the comm: state is field 0, utime 11, stime 12.
    let field = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    field(11) + field(12)
}

fn assert_stopped_and_idle(tty: &Tty, pid: u32) {
    let stopped = wait_until(DEADLINE, || stat(pid).is_some_and(|s| s.state == 'T'));
    assert!(stopped, "a background corral must wait stopped: {:?}\n{}", stat(pid), tty.dump());
    let before = cpu_ticks(pid);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(stat(pid).map(|s| s.state), Some('T'), "still stopped");
    assert!(cpu_ticks(pid) <= before + 1, "a stopped corral uses no CPU");
}

#[test]
fn a_background_dashboard_waits_stopped_until_fg_then_runs() {
    let mut tty = shell();
    tty.send(b"\"$CORRAL\" -w 2 -- sleep 1000 &\n");
    let corral = corral_of(&tty);
    assert_stopped_and_idle(&tty, corral);
    tty.send(b"fg\n");
    tty.wait_screen("the dashboard after fg", DEADLINE, |s| {
        s.contains("sleep.1") && s.contains("sleep.2") && s.matches("running").count() >= 2
    });
    tty.send(b"q");
    let gone = wait_until(DEADLINE, || stat(corral).is_none_or(|s| s.state == 'Z'));
    assert!(gone, "q quits after fg\n{}", tty.dump());
    tty.assert_only_the_shell_left();
}

#[test]
fn headless_in_the_background_under_tostop_stops_and_never_scales() {
    let mut tty = shell();
    tty.send(b"stty tostop; \"$CORRAL\" --no-ui -w 3 -- sleep 1000 &\n");
    let corral = corral_of(&tty);
    assert_stopped_and_idle(&tty, corral);
    tty.send(b"fg\n");
    let three = wait_until(DEADLINE, || children_of(corral).len() == 3);
    assert!(three, "3 workers after fg: {:?}\n{}", children_of(corral), tty.dump());
    // The terminal's SIGTTOUs did not scale anything down; one sent by a person does.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(children_of(corral).len(), 3, "the terminal's signals scaled the group");
    // WHY twice at most: a standard signal that arrives while one of its kind is still
    // pending is merged with it by the kernel; a second try tells a lost signal from a
    // corral that does not scale.
    let mut two = false;
    for _ in 0..2 {
        assert!(send_signal(corral, libc::SIGTTOU));
        two = wait_until(SHORT, || children_of(corral).len() == 2);
        if two {
            break;
        }
    }
    assert!(two, "kill -TTOU from a process scales down ({:?})\n{}", stat(corral), tty.dump());
    tty.send(b"\x03");
    let gone = wait_until(DEADLINE, || stat(corral).is_none_or(|s| s.state == 'Z'));
    assert!(gone, "Ctrl-C stops it\n{}", tty.dump());
    tty.assert_only_the_shell_left();
}
