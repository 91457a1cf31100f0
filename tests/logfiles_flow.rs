//! Nothing is lost to `--log-dir`'s files (docs/output.md): a flood arrives whole, the
//! dashboard writes them too, and a full disk under them holds the workers back (reported,
//! naming the file) while supervision goes on, then loses nothing once there is room.

use std::fs;
use std::io::Read;
use std::process::{Child, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::logfiles::{Logged, parse, read};
use crate::util::{DEADLINE, TOKEN_VAR, children_of, kill_token_processes, wait_until};

/// corral with stdout to /dev/null (a flood's JSON is not what these tests read) and
/// stderr collected; killed with everything it started when dropped.
struct Quiet {
    child: Child,
    token: String,
    stderr: Arc<Mutex<String>>,
}

impl Quiet {
    fn start(args: &[&str]) -> Quiet {
        let token = format!("{:016x}", fastrand::u64(..));
        let mut child = crate::util::corral_command()
            .args(["--no-ui", "--log-format", "json"])
            .args(args)
            .env(TOKEN_VAR, &token)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("corral starts");
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().expect("piped");
        let collected = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(n @ 1..) = pipe.read(&mut buffer) {
                let text = String::from_utf8_lossy(&buffer[..n]).into_owned();
                collected.lock().expect("lock").push_str(&text);
            }
        });
        Quiet { child, token, stderr }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().expect("lock").clone()
    }

    fn wait(&mut self, deadline: Duration) -> ExitStatus {
        let mut status = None;
        let exited = wait_until(deadline, || {
            status = self.child.try_wait().expect("waitpid");
            status.is_some()
        });
        assert!(exited, "corral did not exit in {deadline:?}; stderr: {}", self.stderr());
        status.expect("exited")
    }
}

impl Drop for Quiet {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        kill_token_processes(&self.token);
    }
}

fn assert_numbered(logged: &[Logged], count: u32) {
    assert_eq!(logged.len(), count as usize, "every line arrives, once");
    for (i, l) in (1..=count).zip(logged) {
        assert_eq!(l.line, i.to_string(), "line {i} in order");
    }
}

#[test]
fn a_flood_reaches_the_log_file_whole() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("logs");
    let log_dir = dir.to_str().expect("utf-8");
    let mut run = Quiet::start(&[
        "-n",
        "web",
        "-w",
        "1",
        "--restart",
        "never",
        "--log-dir",
        log_dir,
        "--",
        "seq",
        "1",
        "200000",
    ]);
    assert!(run.wait(DEADLINE).success(), "{}", run.stderr());
    assert_numbered(&parse(&read(&dir.join("web.1.log"))), 200_000);
    let corral_log = read(&dir.join("corral.log"));
    assert!(corral_log.contains("exited: exit 0"), "{corral_log}");
}

#[test]
fn the_dashboard_writes_the_log_files_too() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("logs");
    let log_dir = dir.to_str().expect("utf-8");
    let mut tty = crate::util::pty::Tty::start(&[
        "-n",
        "web",
        "-w",
        "1",
        "--log-dir",
        log_dir,
        "--",
        "sh",
        "-c",
        "seq 1 50000; exec sleep 1000",
    ]);
    let file = dir.join("web.1.log");
    let all = wait_until(DEADLINE, || read(&file).ends_with(" 50000\n"));
    assert!(all, "{} lines so far\n{}", read(&file).lines().count(), tty.dump());
    tty.send(b"q");
    tty.wait_exit(DEADLINE);
    assert_numbered(&parse(&read(&file)), 50_000);
    let corral_log = read(&dir.join("corral.log"));
    assert!(corral_log.contains("web.1    spawned pid"), "{corral_log}");
    assert!(corral_log.contains("corral   stopped, exit code 0"), "{corral_log}");
}

#[test]
fn a_full_disk_under_the_log_dir_holds_workers_back_and_stops_nothing() {
    // Needs root for a small tmpfs; CI runs as root.
    let Some(disk) = crate::util::Tmpfs::mount() else { return };
    let mnt = disk.path();
    let dir = mnt.join("logs");
    fs::create_dir(&dir).expect("mkdir");
    let filler = disk.fill();
    // Slot 1: ~12 MB of log lines, far more than corral queues, so it must wait. Slot 2
    // crashes over and over: supervision goes on meanwhile.
    let script = "[ \"$CORRAL_WORKER_ID\" = 1 ] && exec seq 1 300000; sleep 0.2; exit 1";
    let log_dir = dir.to_str().expect("utf-8");
    let args = ["-n", "web", "-w", "2", "--restart", "on-failure", "--backoff", "50ms"];
    let mut run =
        Quiet::start(&[&args[..], &["--log-dir", log_dir, "--", "sh", "-c", script]].concat());
    let corral = run.child.id();
    let said = format!("cannot write log file {}/", dir.display());
    let reported = wait_until(DEADLINE, || run.stderr().contains(&said));
    assert!(reported, "the full disk is said, naming the log file: {}", run.stderr());
    assert!(run.stderr().contains("No space left on device"), "{}", run.stderr());
    let mut seen = std::collections::BTreeSet::new();
    let restarted = wait_until(DEADLINE, || {
        seen.extend(children_of(corral));
        seen.len() >= 5
    });
    assert!(restarted, "supervision stalled on a full disk: {seen:?}");
    let flooder = children_of(corral)
        .into_iter()
        .find(|&p| fs::read(format!("/proc/{p}/cmdline")).is_ok_and(|c| c.starts_with(b"seq")));
    let flooder = flooder.expect("the flooding worker is held back, not finished");
    fs::remove_file(&filler).expect("free the disk");
    let finished = wait_until(DEADLINE, || !children_of(corral).contains(&flooder));
    assert!(finished, "the worker finishes once there is room: {}", run.stderr());
    assert!(crate::util::send_signal(corral, libc::SIGTERM));
    let status = run.wait(DEADLINE);
    let stderr = run.stderr();
    assert!(status.success(), "{status:?}: {stderr}");
    assert_eq!(stderr.matches("cannot write log file").count(), 1, "said once: {stderr}");
    assert!(stderr.contains("can be written again"), "{stderr}");
    assert_numbered(&parse(&read(&dir.join("web.1.log"))), 300_000);
}
