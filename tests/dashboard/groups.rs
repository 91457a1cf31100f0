//! Several groups in the dashboard (docs/config.md), from a config file on the real binary: each
//! group's rows under its header line, the selection stepping over headers, and `+` on a
//! row of the second group scaling that group only.

use super::{cell, wait_running};
use crate::util::pty::Tty;
use crate::util::{DEADLINE, test_worker};

#[test]
fn two_groups_show_under_their_headers_and_plus_scales_the_selected_rows_group() {
    let dir = tempfile::tempdir().expect("tempdir");
    let worker = serde_json::to_string(&test_worker(&[])).expect("strings serialise");
    let text = format!(
        "[group.web]\ncommand = {worker}\nworkers = 2\n\n\
         [group.queue]\ncommand = {worker}\nworkers = 1\n"
    );
    let file = dir.path().join("shop.toml");
    std::fs::write(&file, text).expect("write config");
    let mut tty = Tty::start(&["--config", &file.to_string_lossy()]);
    wait_running(&tty, &["web.1", "web.2", "queue.1"]);
    let screen = tty.wait_screen("a header line per group", DEADLINE, |s| {
        s.contains(" web  2/2 up · restarts 0") && s.contains(" queue  1/1 up · restarts 0")
    });
    assert!(screen.contains(" corral 2 groups 3/3 up"), "{screen}");
    let lines: Vec<&str> = screen.lines().collect();
    let header = lines.iter().position(|l| l.starts_with(" queue  ")).unwrap_or(0);
    assert!(lines[header + 1].contains("queue.1"), "queue's rows under its header:\n{screen}");

    // web.1 → web.2 → queue.1: two steps, the header between is no stop.
    tty.send(b"jj");
    tty.wait_screen("queue.1 selected", DEADLINE, |s| s.contains("▶ queue.1"));
    tty.send(b"+");
    let screen = tty.wait_screen("queue scaled to 2, its footer note", DEADLINE, |s| {
        s.contains(" queue  2/2 up") && s.contains("queue: one worker more, 2 in all")
    });
    assert!(screen.contains(" web  2/2 up"), "web untouched:\n{screen}");
    assert!(cell(&screen, "web.3", "ID").is_none(), "{screen}");
    wait_running(&tty, &["web.1", "web.2", "queue.1", "queue.2"]);

    tty.send(b"q");
    let status = tty.wait_exit(DEADLINE);
    assert!(status.success(), "{status:?}\n{}", tty.dump());
    tty.assert_nothing_left();
}
