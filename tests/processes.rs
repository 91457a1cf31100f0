//! Nothing outlives corral, however it dies, and nothing a finished generation left
//! behind outlives that generation; a process group is only ever signalled while its
//! number is provably corral's.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::util::{
    Corral, DEADLINE, SHORT, TOKEN_VAR, all_children_of, describe, is_keeper, is_root, named,
    of_worker, outer_pid, pid_alive, send_signal, stat, token_processes, wait_until, with_command,
};

/// A process the test started outside corral, killed when dropped.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("temp paths are UTF-8")
}

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
    if !nix::unistd::geteuid().is_root() {
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

/// The first run of the worker: it starts E, which forks M (a `sleep` that stays in the
/// worker's process group and ignores SIGTERM), leaves the group (`setsid`), writes M's
/// pid and reaps M as soon as it dies — so once M is gone, nothing but corral's zombie
/// leader (if corral kept it) holds the worker's pgid. Then the leader exits 1. Later runs
/// just sleep.
const RECYCLE_WORKER: &str = r#"
if ! mkdir $DIR"/once" 2>/dev/null; then exec sleep 1000; fi
python3 -c '
import os, signal, sys, time
d = sys.argv[1]
signal.signal(signal.SIGTERM, signal.SIG_IGN)
m = os.fork()
if m == 0:
    os.execvp("sleep", ["sleep", "1000"])
os.setsid()
with open(d + "/member.tmp", "w") as f:
    f.write(str(m))
os.rename(d + "/member.tmp", d + "/member")
os.waitpid(m, 0)
time.sleep(1000)
' $DIR &
while [ ! -e $DIR"/member" ]; do sleep 0.02; done
exit 1
"#;

/// Issue 8 #13, C4: inside a PID namespace, the old pgid of an exited worker is handed to a
/// decoy (`ns_last_pid`) while corral is still emptying that group; when the kill timeout
/// SIGKILLs the group, the decoy must survive. Needs root.
#[test]
fn a_recycled_process_group_is_never_signalled() {
    if !is_root() {
        eprintln!("skipped: needs root for a PID namespace and ns_last_pid");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let script = RECYCLE_WORKER.replace("$DIR", &format!("'{}'", path_str(dir.path())));
    let args = with_command(&["-w", "1", "--kill-timeout", "5s"], &sh(&script));
    let mut corral = Corral::start_in_pid_namespace(&args);
    let inner = corral.inner_pid();
    let leader = corral.wait_for("the first worker's exit", DEADLINE, |events| {
        of_worker(events, "exited", 1).first().and_then(|e| e["pid"].as_u64())
    });
    let leader = u32::try_from(leader).expect("pid");
    let member: u32 = fs::read_to_string(dir.path().join("member"))
        .expect("member pid")
        .trim()
        .parse()
        .expect("member pid is a number");
    let member_outer = outer_pid(inner, member).expect("the group member is alive");

    // corral must not notice M's death before the decoy exists.
    assert!(send_signal(inner, libc::SIGSTOP));
    let decoy = {
        let resumed = Resume(inner);
        assert!(send_signal(member_outer, libc::SIGKILL));
        assert!(wait_until(DEADLINE, || !pid_alive(member_outer)), "M did not die");
        let decoy = start_decoy(inner, leader);
        drop(resumed);
        decoy
    };
    let (decoy_pid, decoy_outer, _decoy_guard) = decoy;

    // The replacement starts once the group is gone: by then the kill timeout's SIGKILL
    // has been sent to whatever corral took for the worker's group.
    corral.wait_spawned(2);
    let dump = corral.dump();
    assert!(pid_alive(decoy_outer), "the decoy (pid {decoy_pid} inside) was killed\n{dump}");
    assert_ne!(decoy_pid, leader, "the decoy got the old pgid while corral held it\n{dump}");

    assert!(send_signal(inner, libc::SIGTERM), "corral is gone\n{}", corral.dump());
    assert_eq!(corral.wait_exit(DEADLINE).code(), Some(0), "{}", corral.dump());
    corral.assert_nothing_left();
}

/// SIGCONTs a stopped process when dropped, so a failing step cannot leave corral frozen.
struct Resume(u32);

impl Drop for Resume {
    fn drop(&mut self) {
        send_signal(self.0, libc::SIGCONT);
    }
}

/// Starts `setsid sleep 1000` inside the PID namespace of `inner`, as the process right
/// after `wanted - 1`: it gets `wanted` if that pid is free. Returns (its pid inside, its
/// pid here, the guard of the `nsenter` that holds it).
fn start_decoy(inner: u32, wanted: u32) -> (u32, u32, Guard) {
    let script = r"echo $(($1 - 1)) > /proc/sys/kernel/ns_last_pid
setsid sleep 1000 &
echo $!
exec sleep 1000";
    let mut child = Command::new("nsenter")
        .args(["-t", &inner.to_string(), "--pid", "--mount", "sh", "-c", script, "sh"])
        .arg(wanted.to_string())
        .env_remove(TOKEN_VAR)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("nsenter starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped"))
        .read_line(&mut line)
        .expect("decoy pid line");
    let guard = Guard(child);
    let pid: u32 = line.trim().parse().expect("decoy pid");
    let outer = outer_pid(inner, pid).expect("the decoy is alive");
    (pid, outer, guard)
}

/// C3: 50 workers that exit together each get one exit record with their own code.
#[test]
fn every_one_of_many_simultaneous_exits_is_recorded() {
    const WORKERS: u64 = 50;
    let dir = tempfile::tempdir().expect("temp dir");
    let fifo = dir.path().join("go");
    let status = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(status.success());
    let script = format!("read x < '{}'; exit $CORRAL_WORKER_ID", path_str(&fifo));
    let args = with_command(&["-w", "50", "--restart", "never"], &sh(&script));
    let mut corral = Corral::start(&args);
    let workers = corral.wait_spawned(50);
    // Every worker is blocked in its open or read of the FIFO; opening it for writing
    // releases them, closing it lets them all read EOF and exit at once.
    let writer = fs::OpenOptions::new().write(true).open(&fifo).expect("open the FIFO");
    let all_open = wait_until(DEADLINE, || workers.iter().all(|&(_, pid)| holds(pid, &fifo)));
    assert!(all_open, "not every worker opened the FIFO\n{}", corral.dump());
    drop(writer);

    assert_eq!(corral.wait_exit(DEADLINE).code(), Some(1), "{}", corral.dump());
    let events = corral.events();
    let dump = corral.dump();
    let exits = named(&events, "exited");
    assert_eq!(exits.len(), 50, "{dump}");
    for worker in 1..=WORKERS {
        let mine = of_worker(&events, "exited", worker);
        assert_eq!(mine.len(), 1, "worker {worker}\n{dump}");
        assert_eq!(mine[0]["code"], worker, "worker {worker}\n{dump}");
    }
    corral.assert_nothing_left();
}

/// Whether process `pid` has `path` open.
fn holds(pid: u32, path: &Path) -> bool {
    let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else { return false };
    fds.filter_map(Result::ok).any(|fd| fs::read_link(fd.path()).is_ok_and(|p| p == path))
}

/// A leader kept as a zombie (its group drains slowly) must not hide other exits: the
/// kernel's "any exited child" keeps answering with that zombie, so the others are found
/// child by child.
#[test]
fn a_draining_group_does_not_hide_other_exits() {
    let script = r#"case "$CORRAL_WORKER_ID" in
1) trap "" TERM; sleep 1000 & exit 3 ;;
*) sleep 0.1; exit 1 ;;
esac"#;
    let args = with_command(
        &["-w", "2", "--kill-timeout", "60s", "--backoff", "50ms", "--max-restarts", "1000"],
        &sh(script),
    );
    let mut corral = Corral::start(&args);
    corral.wait_for("worker 1's exit, its group left draining", DEADLINE, |events| {
        of_worker(events, "exited", 1).first().map(|_| ())
    });
    corral.wait_for("3 more exits of worker 2 meanwhile", DEADLINE, |events| {
        let first = events.iter().position(|e| e["event"] == "exited" && e["worker"] == 1)?;
        let later = of_worker(&events[first..], "exited", 2).len();
        (later >= 3).then_some(())
    });
    let events = corral.events();
    assert_eq!(of_worker(&events, "spawned", 1).len(), 1, "{}", corral.dump());

    // The second request skips the 60 s kill timeout.
    corral.signal(libc::SIGTERM);
    corral.wait_for("shutdown_started", DEADLINE, |events| {
        named(events, "shutdown_started").first().map(|_| ())
    });
    corral.signal(libc::SIGTERM);
    corral.wait_exit(DEADLINE);
    corral.assert_nothing_left();
}
