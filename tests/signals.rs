//! corral's own signals, headless: every catchable one is handled (none kills corral
//! behind its back), SIGQUIT kills everything now, and a signal mask inherited blocked is
//! cleared so corral still reaps and still hears SIGTERM.

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::Stdio;

use crate::util::{
    Corral, DEADLINE, SHORT, TOKEN_VAR, children_of, kill_token_processes, named, send_signal,
    token_processes, wait_until, with_command,
};

fn sh(script: &str) -> Vec<String> {
    vec!["sh".into(), "-c".into(), script.into()]
}

#[test]
fn stray_signals_are_logged_and_change_nothing() {
    let corral = Corral::start(&with_command(&["-w", "2"], &sh("sleep 1000 & wait")));
    let spawned = corral.wait_spawned(2);
    let strays = [
        libc::SIGUSR1,
        libc::SIGUSR2,
        libc::SIGALRM,
        libc::SIGVTALRM,
        libc::SIGPROF,
        libc::SIGPWR,
        libc::SIGXCPU,
        libc::SIGSTKFLT,
        libc::SIGRTMIN(),
        libc::SIGRTMAX(),
    ];
    for signal in strays {
        corral.signal(signal);
    }
    let logged = wait_until(DEADLINE, || corral.stderr().contains("ignoring SIGUSR2"));
    assert!(logged, "a stray signal is logged\n{}", corral.dump());
    assert!(pid_alive(corral.pid()), "corral survives every stray signal\n{}", corral.dump());
    let pids: Vec<u32> = spawned.iter().map(|&(_, p)| p).collect();
    assert_eq!(children_of(corral.pid()), pids, "no worker was touched");
    assert!(named(&corral.events(), "exited").is_empty(), "{}", corral.dump());
}

fn pid_alive(pid: u32) -> bool {
    crate::util::pid_alive(pid)
}

#[test]
fn sigquit_kills_every_group_at_once_and_exits_1() {
    let script = "trap '' TERM; sleep 1000 & wait";
    let mut corral =
        Corral::start(&with_command(&["-w", "3", "--kill-timeout", "60s"], &sh(script)));
    corral.wait_spawned(3);
    corral.signal(libc::SIGQUIT);
    // Well before the 60 s grace: no graceful step at all.
    let status = corral.wait_exit(DEADLINE);
    assert_eq!(status.code(), Some(1), "{}", corral.dump());
    let events = corral.events();
    let exits = named(&events, "exited");
    assert_eq!(exits.len(), 3, "{}", corral.dump());
    assert!(exits.iter().all(|e| e["signal"] == "SIGKILL"), "{}", corral.dump());
    corral.assert_nothing_left();
}

/// Runs corral with SIGTERM, SIGINT and SIGCHLD blocked, as a careless parent leaves them.
fn start_blocked(args: &[String]) -> (std::process::Child, String) {
    let token = format!("{:016x}", fastrand::u64(..));
    let mut command = crate::util::corral_command();
    command
        .args(["--no-ui", "--log-format", "json"])
        .args(args)
        .env(TOKEN_VAR, &token)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: only async-signal-safe calls on stack data between fork and exec.
    unsafe {
        command.pre_exec(|| {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&raw mut set);
            for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGCHLD] {
                libc::sigaddset(&raw mut set, signal);
            }
            libc::pthread_sigmask(libc::SIG_BLOCK, &raw const set, std::ptr::null_mut());
            Ok(())
        });
    }
    (command.spawn().expect("corral starts"), token)
}

#[test]
fn a_blocked_signal_mask_from_the_parent_is_cleared() {
    // It reaps: a worker that exits is seen, and corral exits by itself (policy never).
    let args = with_command(&["-w", "1", "--restart", "never"], &sh("sleep 0.2; exit 3"));
    let (mut child, token) = start_blocked(&args);
    let mut status = None;
    let exited = wait_until(DEADLINE, || {
        status = child.try_wait().expect("waitpid");
        status.is_some()
    });
    kill_token_processes(&token);
    assert!(exited, "corral never reaped its worker (SIGCHLD blocked?)");
    assert_eq!(status.and_then(|s| s.code()), Some(1), "the worker's exit 3 is a failure");
    // It hears SIGTERM.
    let args = with_command(&["-w", "1"], &sh("exec sleep 1000"));
    let (mut child, token) = start_blocked(&args);
    // The worker, not the keeper between its fork and exec: once a worker runs, corral's
    // handlers are in place.
    let worker_runs = |pid: u32| {
        std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c.starts_with(b"sleep\0"))
    };
    let started = wait_until(DEADLINE, || children_of(child.id()).into_iter().any(worker_runs));
    assert!(started, "no worker started");
    assert!(send_signal(child.id(), libc::SIGTERM));
    let mut status = None;
    let exited = wait_until(DEADLINE, || {
        status = child.try_wait().expect("waitpid");
        status.is_some()
    });
    if !exited {
        let _ = child.kill();
    }
    kill_token_processes(&token);
    assert!(exited, "SIGTERM was ignored (still blocked?)");
    let status = status.expect("exited");
    assert_eq!((status.code(), status.signal()), (Some(0), None));
    let gone = wait_until(SHORT, || token_processes(&token).is_empty());
    assert!(gone, "workers outlived corral");
}

/// One process that sends SIGTERM twice at once (GNU `timeout` can: to its child, then
/// to its process group) made one request, a graceful stop; it was taken as the second
/// request, which SIGKILLs every worker.
#[test]
fn one_process_sending_sigterm_twice_at_once_is_one_graceful_stop() {
    // A worker that takes a moment to stop: a SIGKILL meanwhile would show in its exit.
    let slow = sh("trap 'sleep 0.5; exit 0' TERM; while :; do sleep 0.1; done");
    let mut corral = Corral::start(&with_command(&["-w", "2", "--kill-timeout", "10s"], &slow));
    corral.wait_spawned(2);
    let twice = format!("kill -TERM {pid}; kill -TERM {pid}", pid = corral.pid());
    let sent = std::process::Command::new("sh").args(["-c", &twice]).status().expect("sh");
    assert!(sent.success());
    assert_eq!(corral.wait_exit(DEADLINE).code(), Some(0), "{}", corral.dump());
    let events = corral.events();
    let exits = named(&events, "exited");
    assert_eq!(exits.len(), 2, "{}", corral.dump());
    for e in exits {
        assert_eq!((e["code"].as_i64(), e["reason"].as_str()), (Some(0), Some("shutdown")), "{e}");
    }
    corral.assert_nothing_left();
}
