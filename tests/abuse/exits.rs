//! corral's own exit: when it ends by itself, and the code it reports.

use std::process::Stdio;

use crate::util::{Corral, DEADLINE, corral_command, named, spawned, wait_until};

#[test]
fn ctl_stop_all_keeps_headless_corral_up() {
    let mut corral = Corral::start(&["-I", "shop", "-w", "2", "--", "sleep", "1000"]);
    corral.wait_spawned(2);
    let out = corral.ctl(&["stop", "all"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    corral.wait_for("both stopped", DEADLINE, |e| {
        let stopped = named(e, "exited").iter().filter(|x| x["reason"] == "stopped").count();
        (stopped == 2).then_some(())
    });
    // Still there for the person who stopped them (before: it exited 1 here).
    let out = corral.ctl(&["start", "all"]);
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stderr), corral.dump());
    corral.wait_for("both started again", DEADLINE, |e| (spawned(e).len() == 4).then_some(()));
    corral.signal(libc::SIGTERM);
    assert!(corral.wait_exit(DEADLINE).success());
}

#[test]
fn shutdown_complete_says_the_exit_code_corral_exits_with() {
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = dir.path().to_str().expect("UTF-8");
    // Headless output to a full disk: its lines are lost, so corral exits 1; the record of
    // the end, in corral.log, must say 1 too (it said 0).
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").expect("/dev/full");
    let mut child = corral_command()
        .args(["--no-ui", "--restart", "never", "--log-dir", logs, "-w", "1", "--", "true"])
        .stdout(full)
        .stderr(Stdio::null())
        .spawn()
        .expect("corral runs");
    let ended = wait_until(DEADLINE, || child.try_wait().expect("wait").is_some());
    if !ended {
        let _ = child.kill();
    }
    let status = child.wait().expect("status");
    assert!(ended, "corral did not end");
    let log = std::fs::read_to_string(dir.path().join("corral.log")).expect("corral.log");
    let last = log.lines().last().unwrap_or_default();
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(last.ends_with("stopped, exit code 1"), "{log}");
}
