//! `corral ctl` whose output nobody reads, or cannot be written; clients that never speak.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};

use crate::util::{Corral, DEADLINE, SHORT, corral_bin, wait_until};

/// A child killed when the test ends, however it ends.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn chatty() -> Corral {
    let script = "while :; do echo \"tick $CORRAL_WORKER_ID\"; sleep 0.05; done";
    let corral = Corral::start(&["-I", "shop", "-n", "web", "-w", "2", "--", "sh", "-c", script]);
    corral.wait_spawned(2);
    corral
}

/// `sh -c 'corral ctl ARGS | head -1'`: ends, and with ctl's own exit code 0.
fn piped_into_head(corral: &Corral, args: &str) {
    let script = format!("\"$0\" ctl {args} | head -1 >/dev/null; echo \"${{PIPESTATUS[0]}}\"");
    let child = Command::new("bash")
        .args(["-c", &script, corral_bin()])
        .env("XDG_RUNTIME_DIR", corral.runtime_dir())
        .stdout(Stdio::piped())
        .spawn()
        .expect("bash runs");
    let mut child = Reaped(child);
    let ended = wait_until(DEADLINE, || child.0.try_wait().expect("wait").is_some());
    assert!(ended, "`ctl {args} | head -1` did not end");
    let mut code = String::new();
    Read::read_to_string(child.0.stdout.as_mut().expect("stdout"), &mut code).expect("read");
    assert_eq!(code.trim(), "0", "ctl {args} exit code");
}

#[test]
fn a_follower_whose_reader_went_away_ends() {
    let mut corral = chatty();
    piped_into_head(&corral, "logs -f");
    piped_into_head(&corral, "events -f");
    // Their slots are free again: the last client gone, status still answers.
    let out = corral.ctl(&["status"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    corral.signal(libc::SIGTERM);
    assert!(corral.wait_exit(DEADLINE).success());
}

#[test]
fn ctl_that_cannot_write_its_output_fails() {
    let mut corral = chatty();
    for args in [&["status"][..], &["events"], &["logs"], &["ls"]] {
        let full = std::fs::OpenOptions::new().write(true).open("/dev/full").expect("/dev/full");
        let out = corral.ctl_command(args).stdout(full).output().expect("ctl runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "ctl {args:?} > /dev/full: {stderr}");
        assert!(stderr.contains("No space left on device"), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
    corral.signal(libc::SIGTERM);
    assert!(corral.wait_exit(SHORT * 4).success());
}

fn connect(corral: &Corral) -> BufReader<UnixStream> {
    let stream = UnixStream::connect(corral.runtime_dir().join("corral/shop.sock"))
        .expect("connect to the control socket");
    stream.set_read_timeout(Some(DEADLINE)).expect("timeout");
    let mut reader = BufReader::new(stream);
    let mut hello = String::new();
    reader.read_line(&mut hello).expect("hello");
    assert!(hello.contains("\"hello\""), "{hello}");
    reader
}

fn status_ok(corral: &Corral, why: &str) {
    let out = corral.ctl(&["status"]);
    assert!(out.status.success(), "{why}: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn connections_that_never_speak_lock_nobody_out() {
    let mut corral = chatty();
    // More silent connections than corral serves at once (64).
    let mut silent: Vec<_> = (0..70).map(|_| connect(&corral)).collect();
    status_ok(&corral, "ctl beside 70 silent connections");
    // Each is told why and closed within a few seconds (the first few at once, for the
    // newcomers).
    let started = std::time::Instant::now();
    for reader in &mut silent {
        let mut rest = String::new();
        reader.read_to_string(&mut rest).expect("closed, not timed out");
        let why = ["no request within 5s", "idle while another client needed the place"];
        assert!(why.iter().any(|w| rest.contains(w)), "{rest}");
    }
    assert!(started.elapsed() < DEADLINE, "silent connections stay");
    corral.signal(libc::SIGTERM);
    assert!(corral.wait_exit(DEADLINE).success());
}

#[test]
fn idle_clients_that_spoke_once_lock_nobody_out() {
    let mut corral = chatty();
    let mut idle = Vec::new();
    for _ in 0..64 {
        let mut reader = connect(&corral);
        reader.get_mut().write_all(b"{\"v\":1,\"cmd\":\"hello\"}\n").expect("request");
        let mut reply = String::new();
        reader.read_line(&mut reply).expect("reply");
        assert!(reply.contains("\"ok\":true"), "{reply}");
        idle.push(reader);
    }
    status_ok(&corral, "ctl beside 64 idle clients");
    status_ok(&corral, "ctl again");
    corral.signal(libc::SIGTERM);
    assert!(corral.wait_exit(DEADLINE).success());
}
