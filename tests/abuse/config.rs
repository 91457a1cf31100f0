//! Bad config and command-line input: one line on stderr and exit 2, at once.

use std::process::{Child, Output, Stdio};

use crate::util::{DEADLINE, corral_command, wait_until};

/// Runs `corral ARGS…`, killing it if it has not ended by the deadline (a FIFO read blocks,
/// `/dev/zero` never ends).
fn run(args: &[&str]) -> Output {
    let mut child: Child = corral_command()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("corral runs");
    let ended = wait_until(DEADLINE, || child.try_wait().expect("wait").is_some());
    if !ended {
        let _ = child.kill();
    }
    let out = child.wait_with_output().expect("output");
    assert!(ended, "corral {args:?} did not end");
    out
}

fn refused(args: &[&str], says: &str) {
    let out = run(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "corral {args:?}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains(says), "{stderr}");
}

#[test]
fn absurd_durations_are_refused_where_they_are_written() {
    refused(&["--kill-timeout", "5000000000000000h", "--", "true"], "up to 1 year");
    refused(&["--backoff", "1s..5000000000000000h", "--", "true"], "up to 1 year");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("corral.toml");
    let toml = "[group.web]\ncommand = [\"sleep\", \"1\"]\nkill-timeout = \"5000000000000000h\"\n";
    std::fs::write(&path, toml).expect("write");
    let path = path.to_str().expect("UTF-8");
    refused(&["check-config", path], "group.web.kill-timeout: expected a duration up to 1 year");
    refused(&["--config", path], "up to 1 year");
}

#[test]
fn a_config_that_is_not_a_small_regular_file_is_refused() {
    refused(&["check-config", "/dev/zero"], "'/dev/zero' is a device, not a regular file");
    refused(&["--config", "/dev/zero"], "is a device, not a regular file");
    let dir = tempfile::tempdir().expect("tempdir");
    let fifo = dir.path().join("fifo.toml");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
    refused(&["check-config", fifo.to_str().expect("UTF-8")], "is a FIFO, not a regular file");
    let big = dir.path().join("big.toml");
    std::fs::write(&big, "#".repeat(2 << 20)).expect("write");
    refused(&["check-config", big.to_str().expect("UTF-8")], "is over 1024 KiB");
}

#[test]
fn a_script_whose_interpreter_is_missing_is_refused_like_a_missing_command() {
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("serve.py");
    std::fs::write(&script, "#!/nonexistent/python3 -u\nprint(1)\n").expect("write");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let config = dir.path().join("shop.toml");
    std::fs::write(&config, "[group.web]\ncommand = [\"./serve.py\"]\n").expect("write");
    let says = "cannot run './serve.py': its #! interpreter /nonexistent/python3: No such file";
    refused(&["check-config", config.to_str().expect("UTF-8")], says);
    refused(&["--", script.to_str().expect("UTF-8")], "its #! interpreter /nonexistent/python3");
}

#[test]
fn a_reply_that_never_comes_names_the_instance() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("quiet.sock");
    // A socket that accepts and never says hello.
    let listener = std::os::unix::net::UnixListener::bind(&path).expect("bind");
    let held = std::thread::spawn(move || listener.accept().map(|(s, _)| s));
    let out = run(&["ctl", "--control", path.to_str().expect("UTF-8"), "status"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // `status` could not ask: 2, as `systemctl status` (other commands failed: 1).
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no reply from quiet within 10s"), "{stderr}");
    drop(held);
}
