//! Bugs the peers' users suffer that corral must never have (regression tests).

use crate::util::{
    Corral, DEADLINE, named, of_worker, pid_alive, test_worker, wait_until, with_command,
};

/// process-compose#520: the leader exits on TERM at once while its child ignores TERM; the
/// group must still be killed (SIGKILL) when the kill timeout ends, not left running.
#[test]
fn a_child_that_ignores_term_dies_with_its_group_after_the_timeout() {
    let script = "(trap '' TERM; echo \"child $(exec sh -c 'echo $PPID')\"; \
                  while :; do sleep 0.1; done) & wait";
    let args = ["-I", "shop", "-n", "web", "-w", "1", "--kill-timeout", "500ms"];
    let mut corral = Corral::start(&[&args[..], &["--", "sh", "-c", script]].concat());
    let child: u32 = corral.wait_for("the child's pid", DEADLINE, |events| {
        named(events, "output")
            .iter()
            .find_map(|e| e["line"].as_str()?.strip_prefix("child ")?.trim().parse().ok())
    });
    assert!(pid_alive(child));
    let out = corral.ctl(&["stop", "web.1"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    corral.wait_for("web.1 stopped", DEADLINE, |e| {
        of_worker(e, "exited", 1).iter().any(|x| x["reason"] == "stopped").then_some(())
    });
    // corral is still up (a stop keeps it up): the child went with the group, not at exit.
    assert!(wait_until(DEADLINE, || !pid_alive(child)), "the child outlived its group");
    assert!(corral.try_exit().is_none(), "{}", corral.dump());
    corral.signal(libc::SIGTERM);
    assert!(corral.wait_exit(DEADLINE).success());
    corral.assert_nothing_left();
}

/// PM2#839: restarts for the memory limit count toward --max-restarts like crashes, so a
/// worker that leaks at once ends up given up instead of restarted forever.
#[test]
fn memory_limit_restarts_count_toward_the_crash_loop_window() {
    let options = ["-w", "1", "--max-memory", "32MiB", "--max-restarts", "2", "--backoff", "0"];
    let options = [&options[..], &["--kill-timeout", "300ms"]].concat();
    let mut corral = Corral::start(&with_command(&options, &test_worker(&["--alloc-mib", "100"])));
    let gave_up = corral
        .wait_for("gave_up", DEADLINE * 2, |e| named(e, "gave_up").first().map(|g| (*g).clone()));
    assert_eq!(gave_up["restarts"], 2, "{gave_up}");
    let events = corral.events();
    let exits = named(&events, "exited");
    assert_eq!(exits.len(), 3, "{}", corral.dump());
    assert!(exits.iter().all(|e| e["reason"] == "memory_limit"), "{}", corral.dump());
    // Given up and nothing else to run: headless corral ends, and says it failed.
    assert_eq!(corral.wait_exit(DEADLINE).code(), Some(1));
}
