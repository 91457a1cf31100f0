//! `--log-dir` (docs/logs.md) on real processes: each slot's file holds exactly what its workers
//! wrote, every generation; corral.log holds corral's events; files rotate and only the
//! newest `--log-keep` stay, nobody else's touched; SIGUSR1 reopens after an outside
//! rename; modes 0640/0750 whatever the umask; a planted link is not followed; an unusable
//! DIR is exit 2. That nothing is lost to them: `logfiles_flow`.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::util::{
    Corral, DEADLINE, children_of, of_worker, pid_of, test_worker, wait_until, with_command,
};

/// One line of a slot's log file: `<ts> <stream> <pid> <line>`.
#[derive(Debug, PartialEq, Eq)]
pub struct Logged {
    pub stream: String,
    pub pid: u32,
    pub line: String,
}

pub fn parse(text: &str) -> Vec<Logged> {
    text.lines()
        .map(|l| {
            let mut parts = l.splitn(4, ' ');
            let ts = parts.next().unwrap_or_default();
            assert!(humantime::parse_rfc3339(ts).is_ok() && ts.ends_with('Z'), "ts of {l:?}");
            let stream = parts.next().unwrap_or_default().to_string();
            assert!(stream == "stdout" || stream == "stderr", "stream of {l:?}");
            let pid = parts.next().and_then(|p| p.parse().ok()).unwrap_or_else(|| panic!("{l:?}"));
            Logged { stream, pid, line: parts.next().unwrap_or_default().to_string() }
        })
        .collect()
}

pub fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_default()
}

fn sh(script: &str) -> Vec<String> {
    vec!["sh".into(), "-c".into(), script.into()]
}

/// The test worker with `args`, as shell words.
fn quoted_worker(args: &[&str]) -> String {
    let quote = |word: &String| format!("'{}'", word.replace('\'', "'\\''"));
    test_worker(args).iter().map(quote).collect::<Vec<_>>().join(" ")
}

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).expect("stat").permissions().mode() & 0o7777
}

fn stop(mut corral: Corral) {
    corral.signal(libc::SIGTERM);
    assert_eq!(corral.wait_exit(DEADLINE).code(), Some(0), "{}", corral.dump());
    corral.assert_nothing_left();
}

#[test]
fn a_slots_log_holds_every_line_of_every_generation_and_corral_log_its_events() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("logs");
    let first = quoted_worker(&["--lines", "3", "--stderr-lines", "2", "--exit", "1"]);
    let second = quoted_worker(&["--lines", "2", "--stderr-lines", "1"]);
    let script = format!("[ \"$CORRAL_GENERATION\" = 0 ] && exec {first}; exec {second}");
    let log_dir = dir.to_str().expect("utf-8");
    let args = ["-n", "web", "-w", "1", "--restart", "on-failure", "--backoff", "50ms"];
    let args = [&args[..], &["--log-dir", log_dir]].concat();
    let corral = Corral::start(&with_command(&args, &sh(&script)));
    let pids: Vec<u32> = corral.wait_spawned(2).iter().map(|&(_, p)| p).collect();
    let file = dir.join("web.1.log");
    let all = wait_until(DEADLINE, || read(&file).lines().count() >= 8);
    assert!(all, "web.1.log: {:?}\n{}", read(&file), corral.dump());
    let events = corral.events();
    stop(corral);

    let logged = parse(&read(&file));
    assert_eq!(logged.len(), 8, "{logged:?}");
    let of = |pid: u32, stream: &str| -> Vec<&str> {
        logged.iter().filter(|l| l.pid == pid && l.stream == stream).map(|l| &*l.line).collect()
    };
    assert_eq!(of(pids[0], "stdout"), ["line 1", "line 2", "line 3"]);
    assert_eq!(of(pids[0], "stderr"), ["line 1", "line 2"]);
    assert_eq!(of(pids[1], "stdout"), ["line 1", "line 2"]);
    assert_eq!(of(pids[1], "stderr"), ["line 1"]);
    let last_of_first = logged.iter().rposition(|l| l.pid == pids[0]);
    let first_of_second = logged.iter().position(|l| l.pid == pids[1]);
    assert!(last_of_first < first_of_second, "generations in order: {logged:?}");

    let corral_log = read(&dir.join("corral.log"));
    let exited = of_worker(&events, "exited", 1);
    assert_eq!(exited.first().and_then(|e| pid_of(e)), Some(pids[0]));
    for expected in [
        format!("web.1    spawned pid {} (generation 0)", pids[0]),
        format!("web.1    pid {} exited: exit 1 after", pids[0]),
        format!("web.1    spawned pid {} (generation 1)", pids[1]),
        "corral   stopped, exit code 0".to_string(),
    ] {
        assert!(corral_log.contains(&expected), "{expected:?} in corral.log:\n{corral_log}");
    }
    assert!(!corral_log.contains(" | "), "worker output stays out of corral.log:\n{corral_log}");
}

#[test]
fn rotation_keeps_the_newest_n_touches_no_other_slots_files_and_drops_no_line() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("logs");
    fs::create_dir(&dir).expect("mkdir");
    let decoys = ["web.10.2020-01-01.log", "web.11.2020-01-01.log", "notes.txt", "web.1.x.log"];
    for decoy in decoys {
        fs::write(dir.join(decoy), "decoy").expect("decoy");
    }
    // web.1's own, from long ago: the oldest, so the first to go.
    fs::write(dir.join("web.1.2020-01-01.log"), "old").expect("old rotated file");
    // Slot 1 writes 100 numbered lines over 5 s or more, five 1-second periods at least;
    // the other nine say nothing (so they never prune anything of their own).
    let script = "[ \"$CORRAL_WORKER_ID\" = 1 ] || exec sleep 1000; i=0; \
                  while [ $i -lt 100 ]; do i=$((i+1)); echo $i; sleep 0.05; done; exec sleep 1000";
    let log_dir = dir.to_str().expect("utf-8");
    let args = ["-n", "web", "-w", "10", "--log-keep", "2", "--log-dir", log_dir];
    let corral = Corral::start_with_env(
        &with_command(&args, &sh(script)),
        &[("CORRAL_LOG_ROTATE_EVERY", "1s")],
    );
    let current = dir.join("web.1.log");
    let done = wait_until(DEADLINE, || read(&current).ends_with(" 100\n"));
    assert!(done, "web.1.log: {:?}\n{}", read(&current), corral.dump());
    stop(corral);

    let mut rotated: Vec<String> = fs::read_dir(&dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().into_string().expect("utf-8"))
        .filter(|n| n.starts_with("web.1.") && n != "web.1.log" && n != "web.1.x.log")
        .collect();
    rotated.sort();
    assert_eq!(rotated.len(), 2, "two rotated files kept: {rotated:?}");
    for name in &rotated {
        let label = name.strip_prefix("web.1.").and_then(|n| n.strip_suffix(".log"));
        let label = label.unwrap_or_default();
        assert_eq!(label.len(), 19, "a test period's name carries the second: {name}");
        assert!(label.bytes().all(|b| b.is_ascii_digit() || b == b'-'), "{name}");
    }
    for decoy in decoys {
        assert_eq!(read(&dir.join(decoy)), "decoy", "{decoy} untouched");
    }
    let mut numbers = Vec::new();
    for name in rotated.iter().map(String::as_str).chain(["web.1.log"]) {
        numbers.extend(parse(&read(&dir.join(name))).iter().map(|l| l.line.parse::<u32>().ok()));
    }
    let numbers: Vec<u32> = numbers.into_iter().map(|n| n.expect("a number")).collect();
    let first = numbers[0];
    assert!(first > 1, "older files were pruned (the first kept line is {first})");
    let expected: Vec<u32> = (first..=100).collect();
    assert_eq!(numbers, expected, "the kept files hold one unbroken run, no line twice");
}

#[test]
fn sigusr1_after_an_outside_rename_starts_a_new_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("logs");
    let go = tmp.path().join("go");
    let script = format!(
        "echo before; while [ ! -e '{}' ]; do sleep 0.05; done; echo after; exec sleep 1000",
        go.display()
    );
    let log_dir = dir.to_str().expect("utf-8");
    let corral =
        Corral::start(&with_command(&["-n", "web", "-w", "1", "--log-dir", log_dir], &sh(&script)));
    let (current, moved) = (dir.join("web.1.log"), dir.join("web.1.log.1"));
    assert!(wait_until(DEADLINE, || read(&current).contains("before")), "{}", corral.dump());
    fs::rename(&current, &moved).expect("mv, as logrotate does");
    corral.signal(libc::SIGUSR1);
    let reopened = wait_until(DEADLINE, || current.exists());
    assert!(reopened, "SIGUSR1 opens a new web.1.log\n{}", corral.dump());
    fs::write(&go, "").expect("let the worker go on");
    assert!(wait_until(DEADLINE, || read(&current).contains("after")), "{}", corral.dump());
    stop(corral);
    let old = read(&moved);
    assert!(old.contains("before") && !old.contains("after"), "{old}");
    assert_eq!(parse(&read(&current)).len(), 1, "{}", read(&current));
    assert_eq!(mode(&current), 0o640);
}

#[test]
fn log_files_are_0640_in_a_0750_directory_whatever_the_umask() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("new/logs");
    let log_dir = dir.to_str().expect("utf-8");
    let args = with_command(
        &["-n", "web", "-w", "1", "--log-dir", log_dir],
        &sh("echo hi; exec sleep 1000"),
    );
    let corral = Corral::start_with_umask(&args, 0o077);
    let file = dir.join("web.1.log");
    assert!(wait_until(DEADLINE, || read(&file).contains(" hi\n")), "{}", corral.dump());
    assert_eq!(mode(&dir), 0o750);
    assert_eq!(mode(&file), 0o640);
    assert_eq!(mode(&dir.join("corral.log")), 0o640);
    stop(corral);
}

#[test]
fn a_link_planted_at_a_log_path_is_not_followed_and_output_waits_for_the_real_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("logs");
    fs::create_dir(&dir).expect("mkdir");
    let victim = tmp.path().join("victim");
    fs::write(&victim, "precious").expect("write");
    fs::set_permissions(&victim, fs::Permissions::from_mode(0o644)).expect("chmod");
    let link = dir.join("web.1.log");
    symlink(&victim, &link).expect("plant a link");
    let log_dir = dir.to_str().expect("utf-8");
    let corral = Corral::start(&with_command(
        &["-n", "web", "-w", "1", "--log-dir", log_dir],
        &sh("echo hello; exec sleep 1000"),
    ));
    let said =
        format!("cannot write log file {}: Too many levels of symbolic links", link.display());
    assert!(wait_until(DEADLINE, || corral.stderr().contains(&said)), "{}", corral.dump());
    assert_eq!(children_of(corral.pid()).len(), 1, "the worker runs on\n{}", corral.dump());
    fs::remove_file(&link).expect("remove the planted link");
    let written = wait_until(DEADLINE, || read(&link).contains(" hello\n"));
    assert!(written, "the held line lands in a real web.1.log\n{}", corral.dump());
    assert!(fs::symlink_metadata(&link).expect("stat").is_file());
    // Said just after the write, on stderr: it may trail the line by a moment.
    let recovered = wait_until(DEADLINE, || corral.stderr().contains("can be written again"));
    assert!(recovered, "{}", corral.dump());
    stop(corral);
    assert_eq!(read(&victim), "precious");
    assert_eq!(mode(&victim), 0o644);
}

#[test]
fn an_unusable_log_dir_is_one_line_and_exit_2_before_any_worker_starts() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let not_a_dir = tmp.path().join("file");
    fs::write(&not_a_dir, "").expect("write");
    let marker = tmp.path().join("marker");
    let worker = test_worker(&["--marker", marker.to_str().expect("utf-8")]);
    for dir in [not_a_dir.clone(), not_a_dir.join("sub")] {
        let out = crate::util::corral_command()
            .args(with_command(
                &["--no-ui", "-w", "1", "--log-dir", dir.to_str().expect("utf-8")],
                &worker,
            ))
            .stdin(Stdio::null())
            .output()
            .expect("corral runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert_eq!(
            stderr,
            format!("corral: cannot write logs in {}: Not a directory\n", dir.display())
        );
        assert!(out.stdout.is_empty(), "nothing was reported: {:?}", out.stdout);
    }
    std::thread::sleep(Duration::from_millis(200));
    assert!(!marker.exists(), "no worker ran");
}
