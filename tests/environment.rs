//! What a worker gets (docs/workers.md): its own session and group, corral as its parent, a clean
//! signal state, stdin `/dev/null`, exactly the fds the SPEC lists, and the `CORRAL_*` and
//! `LISTEN_*` variables.

use std::collections::BTreeMap;
use std::fs;
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::util::{
    Corral, DEADLINE, of_worker, read_report, send_signal, spawned, test_worker, with_command,
};

/// Waits for the report of the worker with `pid` (a restart overwrites the file).
fn wait_report(corral: &Corral, path: &Path, pid: u32) -> Value {
    corral.wait_for(&format!("the report of pid {pid}"), DEADLINE, |_| {
        read_report(path).filter(|report| report["pid"] == pid)
    })
}

/// `fd -> target` of a report.
fn fds(report: &Value) -> BTreeMap<i64, String> {
    report["fds"]
        .as_array()
        .unwrap_or_else(|| panic!("fds: {report}"))
        .iter()
        .map(|fd| {
            let number = fd["fd"].as_i64().unwrap_or_else(|| panic!("fd: {fd}"));
            (number, fd["target"].as_str().unwrap_or_default().to_string())
        })
        .collect()
}

fn env<'a>(report: &'a Value, name: &str) -> Option<&'a str> {
    report["env"][name].as_str()
}

fn mask(report: &Value, field: &str) -> u64 {
    let text = report[field].as_str().unwrap_or_else(|| panic!("{field}: {report}"));
    u64::from_str_radix(text, 16).unwrap_or_else(|_| panic!("{field} is not hex: {report}"))
}

/// WHY this hint: a process started with glibc's `posix_spawn` (std's `Command`) from a
/// multi-threaded parent gets signals 32 and 33 (glibc's internal SIGCANCEL/SIGSETXID) as
/// `SIG_IGN`, and glibc's `signal`/`sigaction` refuse to touch them (EINVAL). Only a raw
/// `rt_sigaction` syscall in the child resets them; a test run from `cargo test` sees this.
const GLIBC_HINT: &str = "\n(bits 0x80000000/0x100000000 are signals 32/33: glibc's signal() \
    cannot reset them; the spawn path needs syscall(SYS_rt_sigaction))";

/// Checks what does not depend on `--listen`.
fn check_process(report: &Value, pid: u32, corral_pid: u32) {
    assert_eq!(report["sid"], pid, "own session: {report}");
    assert_eq!(report["pgid"], pid, "own process group: {report}");
    assert_eq!(report["ppid"], corral_pid, "corral is the parent: {report}");
    assert_eq!(mask(report, "sigblk"), 0, "signal mask not empty: {report}");
    // WHY the SIGPIPE bit is masked out: the test worker is a Rust program and the Rust
    // runtime ignores SIGPIPE before `main`, so the worker cannot see what it was given
    // there. `signal_state_is_clean_after_a_direct_exec` checks SigIgn exactly.
    let ignored = mask(report, "sigign") & !(1 << (libc::SIGPIPE - 1));
    assert_eq!(ignored, 0, "signals ignored: {report}{GLIBC_HINT}");
    assert_eq!(report["stdin_is_devnull"], true, "{report}");
    assert_eq!(
        env(report, "CORRAL_PRIMARY_PID"),
        Some(corral_pid.to_string().as_str()),
        "{report}"
    );
    assert!(env(report, "NODE_CHANNEL_FD").is_none(), "Node IPC is off for non-node: {report}");
}

#[test]
fn worker_gets_its_own_session_clean_signals_and_exact_fds() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cwd = dir.path().canonicalize().expect("temp dir path");
    let report_path = dir.path().join("report.json");
    let report_arg = report_path.to_str().expect("UTF-8 temp path");
    let cwd_arg = cwd.to_str().expect("UTF-8 temp path");
    let args = with_command(
        &["-w", "1", "-n", "envtest", "--cwd", cwd_arg, "--env", "CORRAL_EXTRA=from-cli"],
        &test_worker(&["--report", report_arg]),
    );
    let mut corral = Corral::start(&args);
    let (_, pid) = corral.wait_spawned(1)[0];
    let report = wait_report(&corral, &report_path, pid);

    check_process(&report, pid, corral.pid());
    assert_eq!(report["cwd"], cwd_arg, "{report}");
    let event_fd =
        env(&report, "CORRAL_EVENT_FD").unwrap_or_else(|| panic!("no event fd: {report}"));
    assert_eq!(event_fd, "3", "the event channel is the next fd after none: {report}");
    let fds = fds(&report);
    assert_eq!(fds.keys().copied().collect::<Vec<_>>(), [0, 1, 2, 3], "{report}");
    assert_eq!(fds[&0], "/dev/null", "{report}");
    assert!(fds[&1].starts_with("pipe:"), "stdout is a pipe: {report}");
    assert!(fds[&2].starts_with("pipe:"), "stderr is a pipe: {report}");
    assert_ne!(fds[&1], fds[&2], "stdout and stderr are separate pipes: {report}");
    assert!(fds[&3].starts_with("socket:"), "the event channel is a socket: {report}");
    assert_eq!(env(&report, "CORRAL_GROUP"), Some("envtest"), "{report}");
    assert_eq!(env(&report, "CORRAL_WORKER_ID"), Some("1"), "{report}");
    assert_eq!(env(&report, "CORRAL_GENERATION"), Some("0"), "{report}");
    assert_eq!(
        env(&report, "CORRAL_EXTRA"),
        Some("from-cli"),
        "--env reaches the worker: {report}"
    );
    for name in ["LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"] {
        assert!(env(&report, name).is_none(), "{name} without --listen: {report}");
    }

    // The next start of the slot is generation 1, with the same environment otherwise.
    assert!(send_signal(pid, libc::SIGKILL));
    let next = corral
        .wait_for("the restart", DEADLINE, |events| spawned(events).get(1).map(|&(_, pid)| pid));
    let report = wait_report(&corral, &report_path, next);
    check_process(&report, next, corral.pid());
    assert_eq!(env(&report, "CORRAL_GENERATION"), Some("1"), "{report}");
    assert_eq!(env(&report, "CORRAL_WORKER_ID"), Some("1"), "{report}");
    assert_eq!(self::fds(&report).len(), 4, "no fd leaked from the last generation: {report}");

    corral.signal(libc::SIGTERM);
    assert_eq!(corral.wait_exit(DEADLINE).code(), Some(0), "{}", corral.dump());
}

#[test]
fn listening_sockets_come_as_fd_3_the_systemd_way() {
    let dir = tempfile::tempdir().expect("temp dir");
    let report_path = dir.path().join("report.json");
    let report_arg = report_path.to_str().expect("UTF-8 temp path");
    let args = with_command(
        &["-w", "1", "--listen", "127.0.0.1:0"],
        &test_worker(&["--report", report_arg]),
    );
    let mut corral = Corral::start(&args);
    let (_, pid) = corral.wait_spawned(1)[0];
    let report = wait_report(&corral, &report_path, pid);

    check_process(&report, pid, corral.pid());
    let fds = fds(&report);
    assert_eq!(fds.keys().copied().collect::<Vec<_>>(), [0, 1, 2, 3, 4], "{report}");
    assert_eq!(env(&report, "CORRAL_EVENT_FD"), Some("4"), "{report}");
    assert!(fds[&4].starts_with("socket:"), "{report}");
    assert_eq!(env(&report, "LISTEN_FDS"), Some("1"), "{report}");
    assert_eq!(env(&report, "LISTEN_PID"), Some(pid.to_string().as_str()), "{report}");
    assert_eq!(env(&report, "LISTEN_FDNAMES"), Some("listen1"), "{report}");
    // fd 3 is a TCP socket listening on 127.0.0.1 (the port the kernel picked for `:0`).
    let port =
        listening_port(&fds[&3]).unwrap_or_else(|| panic!("fd 3 is not listening: {report}"));
    let connected =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(2));
    assert!(connected.is_ok(), "cannot connect to the shared socket on port {port}: {connected:?}");

    corral.signal(libc::SIGTERM);
    assert_eq!(corral.wait_exit(DEADLINE).code(), Some(0), "{}", corral.dump());
}

/// The port of a `socket:[INODE]` that is a TCP socket listening on 127.0.0.1.
fn listening_port(target: &str) -> Option<u16> {
    let inode = target.strip_prefix("socket:[")?.strip_suffix(']')?;
    let table = fs::read_to_string("/proc/net/tcp").ok()?;
    // `sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode …`
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (local, state, this_inode) = (fields.get(1)?, fields.get(3)?, fields.get(9)?);
        let (address, port) = local.split_once(':')?;
        (*this_inode == inode && *state == "0A" && address == "0100007F")
            .then(|| u16::from_str_radix(port, 16).ok())?
    })
}

/// The test worker cannot report its SIGPIPE disposition (its runtime changes it), and a
/// shell resets the mask, so the exact check execs a plain C program directly.
#[test]
fn signal_state_is_clean_after_a_direct_exec() {
    let command = ["cat", "/proc/self/status"].map(String::from);
    let mut corral = Corral::start(&with_command(&["-w", "1", "--restart", "never"], &command));
    assert_eq!(corral.wait_exit(DEADLINE).code(), Some(0), "{}", corral.dump());
    let events = corral.events();
    let lines: Vec<&str> =
        of_worker(&events, "output", 1).iter().filter_map(|e| e["line"].as_str()).collect();
    for field in ["SigBlk:", "SigIgn:"] {
        let value = lines
            .iter()
            .find_map(|line| line.strip_prefix(field))
            .unwrap_or_else(|| panic!("no {field} line in {lines:?}"));
        let mask = u64::from_str_radix(value.trim(), 16).unwrap_or_else(|_| panic!("{value}"));
        assert_eq!(mask, 0, "{field} {value}{GLIBC_HINT}");
    }
}

/// corral needs three descriptors per worker: it raises its own soft open-file limit to the
/// hard one, so 150 workers start under a soft limit of 200, and each worker gets the 200 it
/// would have had without corral (a `select()` program must not see fds above 1024).
#[test]
fn many_workers_start_under_a_low_soft_fd_limit_which_workers_keep() {
    const WORKERS: usize = 150;
    let dir = tempfile::tempdir().expect("temp dir");
    let script = format!("ulimit -Sn > {}/$$; exec sleep 1000", dir.path().display());
    let mut command = std::process::Command::new("sh");
    command.args(["-c", "ulimit -Sn 200 && exec \"$@\"", "sh", crate::util::corral_bin()]);
    command.args(["--no-ui", "--log-format", "json", "-w", &WORKERS.to_string(), "--"]);
    command.args(["sh", "-c", &script]);
    let corral = Corral::start_command(command);
    let pids = corral.wait_spawned(WORKERS);
    for (_, pid) in pids {
        let path = dir.path().join(pid.to_string());
        let limit = corral.wait_for(&format!("the limit of pid {pid}"), DEADLINE, |_| {
            fs::read_to_string(&path).ok().filter(|s| s.ends_with('\n'))
        });
        assert_eq!(limit.trim(), "200", "pid {pid}\n{}", corral.dump());
    }
    let failed = crate::util::named(&corral.events(), "spawn_failed").len();
    assert_eq!(failed, 0, "{}", corral.dump());
}

/// Under a hard limit too low for the workers asked for, corral says so and starts nothing,
/// instead of failing every spawn with an errno that does not name the limit.
#[test]
fn a_hard_fd_limit_too_low_is_one_clear_line_and_exit_2() {
    let out = std::process::Command::new("sh")
        .args(["-c", "ulimit -n 80 && exec \"$@\"", "sh", crate::util::corral_bin()])
        .args(["--no-ui", "-w", "2", "--", "sleep", "1000"])
        .output()
        .expect("sh runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("open files") && stderr.contains("ulimit -n"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(out.stdout.is_empty(), "nothing started");
}

/// Probes count: each worker's may all be in flight at once (a target that hangs), each a
/// descriptor, so a limit enough for the workers alone is refused with their probes.
#[test]
fn the_fd_limit_check_counts_the_probes() {
    let out = std::process::Command::new("sh")
        .args(["-c", "ulimit -n 210 && exec \"$@\"", "sh", crate::util::corral_bin()])
        .args(["--no-ui", "-w", "20", "--readiness-probe", "tcp:127.0.0.1:9", "--"])
        .args(["sleep", "1000"])
        .output()
        .expect("sh runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("needs about 220 open files for 20 workers"), "{stderr}");
    assert!(out.stdout.is_empty(), "nothing started");
}
