//! corral's own exit: when it ends by itself, and the code it reports.

use crate::util::{Corral, DEADLINE, named, spawned};

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
