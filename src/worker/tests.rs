//! Tests of the worker-side library: message framing over a real socketpair, the parsing of
//! the inherited environment, and a child process that inherits real fds.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::*;

fn pair() -> (Channel, BufReader<UnixStream>) {
    let (ours, primary) = UnixStream::pair().expect("socketpair");
    primary.set_read_timeout(Some(Duration::from_secs(10))).expect("read timeout");
    (Channel::from_fd(ours.into()), BufReader::new(primary))
}

fn next_line(reader: &mut BufReader<UnixStream>) -> String {
    let mut line = String::new();
    reader.read_line(&mut line).expect("read a line");
    assert!(line.ends_with('\n'), "unterminated line {line:?}");
    line
}

fn next_json(reader: &mut BufReader<UnixStream>) -> Value {
    serde_json::from_str(&next_line(reader)).expect("a JSON line")
}

#[test]
fn every_message_form_is_one_compact_line() {
    let (channel, mut primary) = pair();
    channel.ready().expect("ready");
    channel.heartbeat().expect("heartbeat");
    channel.status("warming \"cache\"\n40%").expect("status");
    channel.metric("requests", 1234.5).expect("metric");
    channel.log("warn", "disk almost full").expect("log");
    channel.send(&json!({"type": "cache", "entries": 12})).expect("send");
    channel.send(&"ready").expect("send a string");

    assert_eq!(next_line(&mut primary), "{\"type\":\"ready\"}\n");
    assert_eq!(next_line(&mut primary), "{\"type\":\"heartbeat\"}\n");
    assert_eq!(
        next_json(&mut primary),
        json!({"type": "status", "text": "warming \"cache\"\n40%"})
    );
    assert_eq!(
        next_line(&mut primary),
        "{\"type\":\"metric\",\"name\":\"requests\",\"value\":1234.5}\n"
    );
    assert_eq!(
        next_json(&mut primary),
        json!({"type": "log", "level": "warn", "msg": "disk almost full"})
    );
    assert_eq!(next_json(&mut primary), json!({"type": "cache", "entries": 12}));
    assert_eq!(next_line(&mut primary), "\"ready\"\n");
}

#[test]
fn refuses_what_the_primary_would_drop_or_cannot_parse() {
    let (channel, mut primary) = pair();
    let node = channel.send(&json!({"cmd": "NODE_HANDLE", "x": 1}));
    assert_eq!(node.map_err(|e| e.kind()), Err(io::ErrorKind::InvalidInput));
    let nan = channel.metric("load", f64::NAN);
    assert_eq!(nan.map_err(|e| e.kind()), Err(io::ErrorKind::InvalidInput));
    let tuple_keys = std::collections::BTreeMap::from([((1, 2), 3)]);
    let keys = channel.send(&tuple_keys);
    assert_eq!(keys.map_err(|e| e.kind()), Err(io::ErrorKind::InvalidInput));
    // A user command that merely mentions NODE_ is fine, and nothing refused was written.
    channel.send(&json!({"cmd": "reload NODE_ENV"})).expect("send");
    assert_eq!(next_json(&mut primary), json!({"cmd": "reload NODE_ENV"}));
}

#[test]
fn a_long_line_survives_partial_writes_on_a_non_blocking_socket() {
    let (ours, primary) = UnixStream::pair().expect("socketpair");
    // Non-blocking forces short sends and EAGAIN, the paths a blocking socket rarely takes.
    ours.set_nonblocking(true).expect("nonblocking");
    let channel = Channel::from_fd(ours.into());
    // Under the primary's 1 MiB limit, over any socket buffer.
    let text = "x".repeat(900 << 10);
    let reader = std::thread::spawn(move || {
        let mut line = String::new();
        BufReader::new(primary).read_line(&mut line).map(|_| line)
    });
    channel.status(&text).expect("status");
    let line = reader.join().expect("reader thread").expect("read");
    assert_eq!(
        serde_json::from_str::<Value>(&line).expect("JSON"),
        json!({"type": "status", "text": text})
    );
}

#[test]
fn what_the_primary_would_drop_is_refused_before_it_is_sent() {
    let (channel, mut primary) = pair();
    let long = channel.status(&"x".repeat(2 << 20)).expect_err("over 1 MiB");
    assert_eq!(long.kind(), io::ErrorKind::InvalidInput);
    let mut deep = json!(1);
    for _ in 0..100 {
        deep = json!([deep]);
    }
    assert_eq!(channel.send(&deep).map_err(|e| e.kind()), Err(io::ErrorKind::InvalidInput));
    let mut batch = channel.buffered();
    assert!(batch.send(&json!({"cmd": "NODE_HANDLE"})).is_err(), "the same rules, batched");
    batch.send(&json!({"type": "ok"})).expect("send");
    drop(batch);
    assert_eq!(next_json(&mut primary), json!({"type": "ok"}), "nothing refused was written");
}

#[test]
fn threads_sharing_a_channel_never_interleave_lines() {
    let (channel, primary) = pair();
    let text = "y".repeat(10_000);
    std::thread::scope(|scope| {
        let reader = scope.spawn(|| {
            let mut lines = 0;
            for line in primary.lines() {
                let value: Value = serde_json::from_str(&line.expect("line")).expect("JSON");
                assert_eq!(value["text"].as_str().map(str::len), Some(text.len()));
                lines += 1;
                if lines == 400 {
                    break;
                }
            }
            lines
        });
        for _ in 0..4 {
            scope.spawn(|| {
                for _ in 0..100 {
                    channel.status(&text).expect("status");
                }
            });
        }
        assert_eq!(reader.join().expect("reader"), 400);
    });
}

#[test]
fn a_closed_primary_is_an_error_not_a_signal() {
    let (channel, primary) = pair();
    drop(primary);
    let error = channel.heartbeat().expect_err("peer is gone");
    assert_eq!(error.kind(), io::ErrorKind::BrokenPipe);
}

#[test]
fn channel_fd_parsing_refuses_stdio_and_garbage() {
    assert_eq!(parse_channel_fd("7"), Some(7));
    assert_eq!(parse_channel_fd(" 12\n"), Some(12));
    for bad in ["", "2", "0", "-1", "x", "3.0", "99999999999"] {
        assert_eq!(parse_channel_fd(bad), None, "{bad:?}");
    }
}

#[test]
fn no_listen_env_means_no_listeners() {
    // The test process was not socket-activated; LISTEN_PID, if any, names another process.
    assert!(listeners().expect("listeners").is_empty());
    assert!(listeners().expect("a second call takes nothing either").is_empty());
}

/// Set in the child of `inherited_fds_are_taken_in_a_real_process`, to the TCP address.
const CHILD_VAR: &str = "CORRAL_WORKER_TEST_CHILD";

/// Kills and reaps the child if the test fails before it is reaped.
struct ChildGuard(Option<u32>);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(pid) = self.0.take() {
            let _ = crate::backend::signal_pid(pid, crate::signal::Signal::KILL);
            let deadline = Instant::now() + Duration::from_secs(10);
            while crate::backend::peek_exit_of(pid).is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            crate::backend::reap_pid(pid);
        }
    }
}

/// `NAME=VALUE` for the child's environment.
fn var(name: &str, value: &str) -> Vec<u8> {
    format!("{name}={value}").into_bytes()
}

#[test]
fn inherited_fds_are_taken_in_a_real_process() {
    use std::os::unix::ffi::OsStrExt;

    let tcp = TcpListener::bind("127.0.0.1:0").expect("bind tcp");
    let dir = tempfile::tempdir().expect("tempdir");
    let unix = UnixListener::bind(dir.path().join("admin.sock")).expect("bind unix");
    let (ours, theirs) = UnixStream::pair().expect("socketpair");
    let fds = [tcp.as_fd(), unix.as_fd(), theirs.as_fd()];

    // corral's own spawn puts the fds at 3, 4 and 5 and sets LISTEN_PID, as for a worker.
    let ours_only =
        ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", EVENT_FD_VAR, NODE_CHANNEL_FD_VAR];
    let mut env: Vec<Vec<u8>> = std::env::vars_os()
        .filter(|(name, _)| !ours_only.iter().any(|o| name.as_bytes() == o.as_bytes()))
        .map(|(name, value)| [name.as_bytes(), b"=", value.as_bytes()].concat())
        .collect();
    env.extend([
        var(CHILD_VAR, &tcp.local_addr().expect("addr").to_string()),
        var("LISTEN_FDS", "2"),
        var("LISTEN_FDNAMES", "http:admin"),
        var(EVENT_FD_VAR, "5"),
    ]);
    let program = std::env::current_exe().expect("test binary");
    let argv: Vec<std::ffi::OsString> = vec![
        program.clone().into(),
        "--exact".into(),
        "worker::tests::child_takes_inherited_fds".into(),
        "--nocapture".into(),
        "--test-threads=1".into(),
    ];
    let spec = crate::backend::ExecSpec {
        program: &program,
        argv: &argv,
        env,
        listen_pid: true,
        cwd: None,
        fds: &fds,
        adopt_binds: None,
        discard_output: false,
    };
    let child = crate::backend::spawn(&spec, None).expect("spawn the test binary");
    let mut guard = ChildGuard(Some(child.pid));

    let deadline = Instant::now() + Duration::from_mins(1);
    let status = loop {
        if let Some(status) = crate::backend::peek_exit_of(child.pid) {
            break status;
        }
        assert!(Instant::now() < deadline, "child test did not finish in 60 s");
        std::thread::sleep(Duration::from_millis(20));
    };
    crate::backend::reap_pid(child.pid);
    guard.0 = None;
    let mut output = String::new();
    std::fs::File::from(child.stdout).read_to_string(&mut output).expect("child stdout");
    if let Some(stderr) = child.stderr {
        std::fs::File::from(stderr).read_to_string(&mut output).expect("child stderr");
    }
    assert_eq!(status, crate::core::ExitStatus::Code(0), "child failed: {output}");
    assert!(output.contains("1 passed"), "child test did not run: {output}");

    ours.set_read_timeout(Some(Duration::from_secs(10))).expect("read timeout");
    assert_eq!(next_line(&mut BufReader::new(ours)), "{\"type\":\"ready\"}\n");
}

/// Read from `/proc/self/fdinfo`, apart from the code under test: `flags` (octal) holds
/// `O_CLOEXEC` for a close-on-exec descriptor.
fn is_cloexec(fd: RawFd) -> bool {
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).unwrap_or_default();
    let flags = info.lines().find_map(|l| l.strip_prefix("flags:")).map(str::trim);
    let flags = flags.and_then(|f| i64::from_str_radix(f, 8).ok());
    flags.is_some_and(|flags| flags & i64::from(libc::O_CLOEXEC) != 0)
}

/// The child half of `inherited_fds_are_taken_in_a_real_process`; passes trivially elsewhere.
#[test]
fn child_takes_inherited_fds() {
    let Ok(tcp_address) = std::env::var(CHILD_VAR) else {
        return;
    };
    assert!(!is_cloexec(3) && !is_cloexec(5), "fds arrive inheritable");

    let taken = listeners().expect("listeners");
    assert_eq!(taken.len(), 2);
    assert_eq!(taken[0].name, "http");
    match &taken[0].socket {
        ListenerSocket::Tcp(tcp) => {
            assert_eq!(tcp.local_addr().expect("addr").to_string(), tcp_address);
        }
        ListenerSocket::Unix(_) => panic!("fd 3 should be TCP"),
    }
    assert_eq!(taken[1].name, "admin");
    assert!(matches!(taken[1].socket, ListenerSocket::Unix(_)));
    assert!(is_cloexec(3) && is_cloexec(4));
    assert!(listeners().is_err(), "a second call must not take the fds again");

    let channel = Channel::from_env().expect("the channel on fd 5");
    assert_eq!(channel.as_raw_fd(), 5);
    assert!(is_cloexec(5));
    assert!(Channel::from_env().is_none(), "taken once");
    channel.ready().expect("ready");
}

#[test]
fn buffered_sender_batches_and_loses_nothing() {
    let (channel, mut reader) = pair();
    let reader_thread = std::thread::spawn(move || {
        let mut n = 0u64;
        loop {
            let v = next_json(&mut reader);
            if v == serde_json::json!("done") {
                return n;
            }
            assert_eq!(v["n"], n);
            n += 1;
        }
    });
    {
        let mut events = channel.buffered();
        for n in 0..20_000u64 {
            events.send(&serde_json::json!({"type": "sample", "n": n})).expect("send");
        }
        let refused = events.send(&serde_json::json!({"cmd": "NODE_HANDLE"}));
        assert_eq!(refused.map_err(|e| e.kind()), Err(std::io::ErrorKind::InvalidInput));
        events.send(&"done").expect("send");
    } // dropped: flushed
    assert_eq!(reader_thread.join().expect("reader"), 20_000);
}
