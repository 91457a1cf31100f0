//! Nothing outlives corral, however it dies, and nothing a finished generation left
//! behind outlives that generation; a process group is only ever signalled while its
//! number is provably corral's.

use std::time::Duration;

use crate::util::{
    Corral, DEADLINE, SHORT, all_children_of, describe, is_keeper, named, stat, token_processes,
    wait_until, with_command,
};

fn sh(script: &str) -> Vec<String> {
    vec!["sh".into(), "-c".into(), script.into()]
}

/// The test's processes whose command line is exactly `words`.
fn running(token: &str, words: &[&str]) -> Vec<u32> {
    token_processes(token)
        .into_iter()
        .filter(|p| {
            let cmdline = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
            let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).filter(|a| !a.is_empty()).collect();
            args == words.iter().map(|w| w.as_bytes()).collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn kill_9_of_corral_leaves_no_grandchild_and_no_escapee() {
    let script = "trap '' TERM; sleep 1000 & (setsid sleep 1001 &); sleep 1002";
    let mut corral = Corral::start(&with_command(&["-w", "3"], &sh(script)));
    corral.wait_spawned(3);
    let all_there = wait_until(DEADLINE, || {
        ["1000", "1001", "1002"].iter().all(|n| running(corral.token(), &["sleep", n]).len() == 3)
    });
    assert!(all_there, "{}", describe(&token_processes(corral.token())));
    let keeper = all_children_of(corral.pid()).into_iter().find(|&p| is_keeper(p));
    assert!(keeper.is_some(), "corral runs a keeper");
    corral.signal(libc::SIGKILL);
    corral.wait_exit(DEADLINE);
    // Every worker, grandchild and escapee — and the keeper itself — is gone.
    corral.assert_nothing_left();
}

#[test]
fn a_clean_exit_leaves_no_keeper() {
    let mut corral = Corral::start(&with_command(&["-w", "1"], &sh("exec sleep 1000")));
    corral.wait_spawned(1);
    let keeper = all_children_of(corral.pid()).into_iter().find(|&p| is_keeper(p));
    let keeper = keeper.expect("a keeper");
    corral.signal(libc::SIGTERM);
    assert!(corral.wait_exit(DEADLINE).success());
    let gone = wait_until(SHORT, || stat(keeper).is_none_or(|s| s.state == 'Z'));
    assert!(gone, "the keeper exits with corral");
    corral.assert_nothing_left();
}

#[test]
fn escapees_of_a_finished_generation_are_stopped_before_its_replacement_starts() {
    // Each generation daemonises a `sleep 1000` (double fork + setsid), then crashes.
    let script = "(setsid sh -c 'exec sleep 1000' &) ; sleep 0.3; exit 1";
    let mut corral = Corral::start(&with_command(&["-w", "1", "--backoff", "50ms"], &sh(script)));
    let mut most = 0;
    let restarted = wait_until(DEADLINE, || {
        most = most.max(running(corral.token(), &["sleep", "1000"]).len());
        named(&corral.events(), "spawned").len() >= 5
    });
    assert!(restarted, "{}", corral.dump());
    assert!(most <= 1, "escapees of several generations were alive at once ({most})");
    corral.signal(libc::SIGTERM);
    assert!(corral.wait_exit(DEADLINE).success());
    corral.assert_nothing_left();
}

#[test]
fn a_leader_whose_group_lives_on_is_kept_unreaped_until_the_group_is_empty() {
    // The leader exits at once; `sleep` stays in its group, ignoring SIGTERM, until the
    // kill timeout's SIGKILL. Meanwhile the leader's pid stays a zombie child of corral:
    // its number — the group's — cannot be recycled, so signalling the group is safe.
    let script = "trap '' TERM; sleep 1000 & exit 0";
    let mut corral = Corral::start(&with_command(
        &["-w", "1", "--restart", "never", "--kill-timeout", "3s"],
        &sh(script),
    ));
    let (_, leader) = corral.wait_spawned(1)[0];
    corral.wait_for("the leader's exit", DEADLINE, |e| named(e, "exited").first().map(|_| ()));
    let held = stat(leader);
    assert_eq!(held.map(|s| (s.state, s.ppid)), Some(('Z', corral.pid())), "{held:?}");
    // Once the group is empty, the zombie is reaped and corral exits by itself.
    let status = corral.wait_exit(DEADLINE);
    assert!(status.success(), "{}", corral.dump());
    std::thread::sleep(Duration::from_millis(50));
    assert!(stat(leader).is_none_or(|s| s.ppid != corral.pid()), "reaped at the end");
    corral.assert_nothing_left();
}

#[test]
fn as_pid_1_of_a_namespace_it_reaps_orphans_and_stops_on_sigterm() {
    // Needs root for a PID namespace (as a container entrypoint would be); CI runs as root.
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root for unshare --pid");
        return;
    }
    // Workers that keep double-forking short-lived orphans, which land on PID 1: corral.
    let script = "while :; do (sh -c 'sleep 0.01 & exit 3' &); sleep 0.02; done";
    let token = format!("{:016x}", fastrand::u64(..));
    let mut unshare = std::process::Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc"])
        .arg(crate::util::corral_bin())
        .args(["--no-ui", "-w", "2", "--", "sh", "-c", script])
        .env(crate::util::TOKEN_VAR, &token)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("unshare runs");
    let mut corral = None;
    let found = wait_until(DEADLINE, || {
        corral = all_children_of(unshare.id()).first().copied();
        corral.is_some_and(|c| crate::util::children_of(c).len() == 2)
    });
    let corral = corral.filter(|_| found);
    let Some(corral) = corral else {
        let _ = unshare.kill();
        let _ = unshare.wait();
        crate::util::kill_token_processes(&token);
        eprintln!("skipped: unshare --pid did not start corral here");
        return;
    };
    std::thread::sleep(Duration::from_secs(2));
    let zombies = zombie_children(corral);
    assert!(zombies.len() < 5, "orphans pile up as zombies: {zombies:?}");
    assert!(crate::util::send_signal(corral, libc::SIGTERM), "corral as PID 1 is alive");
    let mut status = None;
    let exited = wait_until(DEADLINE, || {
        status = unshare.try_wait().expect("waitpid");
        status.is_some()
    });
    if !exited {
        let _ = unshare.kill();
        let _ = unshare.wait();
    }
    crate::util::kill_token_processes(&token);
    assert!(exited, "SIGTERM to PID 1 must stop it (the kernel ignores unhandled ones)");
    assert_eq!(status.and_then(|s| s.code()), Some(0));
}

/// corral's children that are zombies (not yet reaped).
fn zombie_children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return Vec::new() };
    tasks
        .filter_map(Result::ok)
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|t| t.split_whitespace().filter_map(|p| p.parse().ok()).collect::<Vec<u32>>())
        .filter(|&c| stat(c).is_some_and(|s| s.state == 'Z'))
        .collect()
}
