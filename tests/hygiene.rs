//! What a worker or an operator hands corral that it must not pass on as it came: event
//! lines only some readers accept, terminal escapes, files in the way of a socket, and
//! memory counted once per thread.

use std::fmt::Write as _;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, symlink};
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::{Child, Command, Stdio};
use std::thread;

use serde_json::{Value, json};

use crate::util::pty::Tty;
use crate::util::{
    Corral, DEADLINE, TOKEN_VAR, corral_bin, kill_token_processes, of_worker, test_worker,
    test_worker_per_slot, wait_until, with_command,
};

/// `corral ARGS…` run to its end with its stdout and stderr collected, killed with
/// everything it started if it outlives the deadline or the test fails.
struct Run {
    child: Child,
    token: String,
}

impl Run {
    fn start(args: &[&str]) -> Run {
        let token = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
        let child = crate::util::corral_command()
            .args(args)
            .env(TOKEN_VAR, &token)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("corral starts");
        Run { child, token }
    }

    /// `(exit code, stdout, stderr)` once corral has exited and closed both.
    fn finish(mut self) -> (Option<i32>, Vec<u8>, Vec<u8>) {
        let drain = |pipe: Option<Box<dyn Read + Send>>| {
            thread::spawn(move || {
                let mut bytes = Vec::new();
                if let Some(mut pipe) = pipe {
                    let _ = pipe.read_to_end(&mut bytes);
                }
                bytes
            })
        };
        let stdout = drain(self.child.stdout.take().map(|p| Box::new(p) as _));
        let stderr = drain(self.child.stderr.take().map(|p| Box::new(p) as _));
        let mut status = None;
        let exited = wait_until(DEADLINE, || {
            status = self.child.try_wait().expect("waitpid");
            status.is_some()
        });
        assert!(exited, "corral did not exit");
        let stdout = stdout.join().expect("stdout reader");
        let stderr = stderr.join().expect("stderr reader");
        (status.and_then(|s| s.code()), stdout, stderr)
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        kill_token_processes(&self.token);
    }
}

/// Every character the text rule makes visible: C0 and C1 controls, DEL, a bidi override.
fn control_chars(bytes: &[u8]) -> Vec<char> {
    String::from_utf8_lossy(bytes)
        .chars()
        .filter(|&c| (c.is_control() && c != '\n') || ('\u{202a}'..='\u{2069}').contains(&c))
        .collect()
}

/// `hex:` step for bytes.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold("hex:".to_string(), |mut text, b| {
        let _ = write!(text, "{b:02x}");
        text
    })
}

#[test]
fn event_lines_no_reader_accepts_are_protocol_errors() {
    let deep = format!("raw:{{\"x\":{}{}}}", "[".repeat(10_000), "]".repeat(10_000));
    let bad = [
        hex(b"{\"x\":\"\xff\"}"),
        deep,
        "raw:{\"v\":1e999}".to_string(),
        "raw:{\"x\":\"\\ud800\"}".to_string(),
    ];
    let tick = r#"{"type":"tick","n":1}"#;
    let slots: Vec<[&str; 6]> =
        bad.iter().map(|b| ["--send", b.as_str(), "--send", tick, "--exit", "0"]).collect();
    let slots: Vec<&[&str]> = slots.iter().map(|s| &s[..]).collect();
    let workers = slots.len().to_string();
    let command = test_worker_per_slot(&slots);
    let mut corral =
        Corral::start(&with_command(&["-w", &workers, "--restart", "never"], &command));
    // The harness fails the test on any stdout line that is not JSON.
    let status = corral.wait_exit(DEADLINE);
    let events = corral.events();
    let dump = corral.dump();
    assert!(status.success(), "{dump}");
    for worker in 1..=slots.len() as u64 {
        let errors = of_worker(&events, "protocol_error", worker);
        assert_eq!(errors.len(), 1, "worker {worker}\n{dump}");
        assert_eq!(errors[0]["error"], "malformed", "{dump}");
        assert_eq!(errors[0]["count"], 1, "{dump}");
        let data: Vec<&Value> =
            of_worker(&events, "message", worker).iter().map(|e| &e["data"]).collect();
        assert_eq!(data, [&serde_json::json!({"type": "tick", "n": 1})], "{dump}");
        let exits = of_worker(&events, "exited", worker);
        assert_eq!(exits.len(), 1, "{dump}");
        assert_eq!(exits[0]["messages"], 1, "only the valid line is a message\n{dump}");
    }
    corral.assert_nothing_left();
}

#[test]
fn no_terminal_control_from_a_worker_or_the_command_line_reaches_the_terminal() {
    const HOSTILE: &str = "\x1b]0;PWNED\x07\x1b[2J\x1b[31m\u{7f}\u{9b}1m\u{85}\u{202e}";
    let dir = tempfile::tempdir().expect("tempdir");
    // The command itself is named with an escape: corral echoes it when it starts.
    let shell = dir.path().join(format!("{HOSTILE}sh"));
    symlink("/bin/sh", &shell).expect("symlink to sh");
    let shell = shell.to_str().expect("UTF-8 path");
    let steps = [
        json!({"type": "log", "level": HOSTILE, "msg": HOSTILE}),
        json!({"type": "status", "text": HOSTILE}),
        json!({"type": "metric", "name": HOSTILE, "value": 1}),
        json!({"type": HOSTILE, HOSTILE: [HOSTILE]}),
    ];
    let mut worker = vec![corral_bin().to_string(), "__test-worker".into()];
    for step in &steps {
        worker.extend(["--send".to_string(), step.to_string()]);
    }
    // C1 and bidi characters may stand raw in JSON: one line sends them unescaped.
    worker.extend(["--send".into(), format!("raw:{{\"type\":\"{HOSTILE}\"}}").replace('\x1b', "")]);
    worker.extend(["--exit".into(), "3".into()]);
    let quoted: Vec<String> = worker.iter().map(|w| format!("'{w}'")).collect();
    let script = format!(
        "printf '{esc}out\\n'; printf '{esc}err\\n' >&2; exec {}",
        quoted.join(" "),
        esc = HOSTILE.replace('%', "%%")
    );
    for format in ["text", "json"] {
        let args = ["--no-ui", "--log-format", format, "-w", "1", "--restart", "never", "--"];
        let mut args: Vec<&str> = args.to_vec();
        args.extend([shell, "-c", script.as_str()]);
        let (code, stdout, stderr) = Run::start(&args).finish();
        let out = String::from_utf8_lossy(&stdout);
        assert_eq!(code, Some(1), "the worker failed, so corral exits 1:\n{out}");
        // The run really carried the hostile strings: each kind of record is there.
        for seen in ["PWNED", "out", "err", "1m"] {
            assert!(out.contains(seen), "{format}: {seen} missing\n{out}");
        }
        // Colours are the one kind of sequence text keeps (docs/output.md), each line's
        // reset after them; everything else stays escaped.
        let out_text = out.replace("\x1b[31m", "").replace("\x1b[0m", "");
        assert_eq!(control_chars(out_text.as_bytes()), [], "{format} stdout:\n{out}");
        assert_eq!(format == "text", out.contains("\x1b[31m"), "{format}: colour kept?\n{out}");
        assert_eq!(control_chars(&stderr), [], "{format} stderr");
        if format == "json" {
            for line in out.lines() {
                serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("{e}: {line}"));
            }
        }
    }
    // A command that cannot run is echoed in the one error line.
    let missing = dir.path().join(format!("{HOSTILE}missing"));
    let (code, stdout, stderr) =
        Run::start(&["--no-ui", "--", missing.to_str().expect("UTF-8")]).finish();
    assert_eq!(code, Some(2));
    assert!(stdout.is_empty());
    assert!(String::from_utf8_lossy(&stderr).contains("\\u{1b}]0;PWNED"), "{stderr:?}");
    assert_eq!(control_chars(&stderr), []);
}

#[test]
fn a_negative_number_is_a_usage_error_naming_the_option() {
    for (args, want) in [
        (["-w", "-1"], "corral: invalid value '-1' for '--workers <N>': expected a whole number"),
        (["--min-uptime", "-5s"], "corral: invalid value '-5s' for '--min-uptime <D>': expected"),
    ] {
        let line: Vec<&str> = args.iter().copied().chain(["--", "sleep", "1000"]).collect();
        let (code, stdout, stderr) = Run::start(&line).finish();
        let stderr = String::from_utf8_lossy(&stderr);
        assert_eq!(code, Some(2), "{line:?}: {stderr}");
        assert!(stdout.is_empty(), "{line:?}");
        assert_eq!(stderr.lines().count(), 1, "{line:?}: {stderr}");
        assert!(stderr.starts_with(want), "{line:?}: {stderr}");
    }
}

#[test]
fn listen_unix_never_deletes_what_is_not_a_stale_socket_and_cleans_up_its_own() {
    let dir = tempfile::tempdir().expect("tempdir");
    let regular = dir.path().join("notes.txt");
    fs::write(&regular, "keep me").expect("write");
    let fifo = dir.path().join("fifo");
    let status = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo runs");
    assert!(status.success());
    for path in [&regular, &fifo] {
        let addr = format!("unix:{}", path.display());
        let (code, _, stderr) =
            Run::start(&["--no-ui", "-w", "1", "--listen", &addr, "--", "sleep", "1000"]).finish();
        let stderr = String::from_utf8_lossy(&stderr);
        assert_eq!(code, Some(2), "{stderr}");
        assert_eq!(
            stderr.trim_end(),
            format!("corral: cannot listen on {addr}: a file that is not a socket is in the way")
        );
    }
    assert_eq!(fs::read_to_string(&regular).expect("the file survives"), "keep me");
    assert!(fs::symlink_metadata(&fifo).expect("the FIFO survives").file_type().is_fifo());

    // A socket file left by a run that died: replaced, served, and gone after a clean exit.
    let path = dir.path().join("app.sock");
    drop(UnixListener::bind(&path).expect("bind"));
    assert!(UnixStream::connect(&path).is_err(), "stale: nobody listens");
    let addr = format!("unix:{}", path.display());
    let mut corral =
        Corral::start(&with_command(&["-w", "1", "--listen", &addr], &test_worker(&[])));
    corral.wait_spawned(1);
    assert!(UnixStream::connect(&path).is_ok(), "corral listens on the path\n{}", corral.dump());
    corral.signal(libc::SIGTERM);
    let status = corral.wait_exit(DEADLINE);
    assert!(status.success(), "{}", corral.dump());
    assert!(fs::symlink_metadata(&path).is_err(), "the socket file is left behind");
    corral.assert_nothing_left();
}

#[test]
fn the_dashboard_log_is_private_to_its_owner() {
    use std::os::unix::fs::PermissionsExt;
    let tty = Tty::start(&with_command(&["-n", "web", "-w", "1"], &test_worker(&[])));
    tty.wait_screen("the dashboard", DEADLINE, |s| s.contains("web.1"));
    let mode = |path: &std::path::Path| {
        fs::symlink_metadata(path).map(|m| m.permissions().mode() & 0o777).ok()
    };
    let dir = tty.state_dir().join("corral");
    assert_eq!(mode(&dir), Some(0o700), "{}", tty.dump());
    assert_eq!(mode(&dir.join("corral.log")), Some(0o600), "{}", tty.dump());
}

#[test]
fn max_memory_counts_a_threaded_worker_once() {
    // Worker 1: 8 threads filling 8 MiB each, about 80 MiB in all (counted once per thread
    // it looked like 700 MiB). Worker 2: one thread over the limit, the control that shows
    // the limit is enforced while worker 1 is watched.
    let script = "import threading, time\n\
        def run():\n    data = b'x' * (8 << 20)\n    time.sleep(1000)\n\
        for _ in range(8): threading.Thread(target=run, daemon=True).start()\n\
        time.sleep(1000)\n";
    let case = format!(
        "case \"$CORRAL_WORKER_ID\" in\n1) exec python3 -c \"{script}\" ;;\n2) exec '{}' __test-worker --alloc-mib 400 ;;\nesac\nexit 64\n",
        corral_bin()
    );
    let command = ["sh".to_string(), "-c".into(), case];
    let corral = Corral::start(&with_command(&["-w", "2", "--max-memory", "300MiB"], &command));
    // Two memory-limit restarts of worker 2: worker 1 was sampled for several rounds.
    corral.wait_for("worker 2 restarted twice for its memory", DEADLINE, |events| {
        let exits = of_worker(events, "exited", 2);
        let over = exits.iter().filter(|e| e["reason"] == "memory_limit").count();
        (over >= 2).then_some(())
    });
    let events = corral.events();
    assert_eq!(of_worker(&events, "exited", 1), Vec::<&Value>::new(), "{}", corral.dump());
    assert_eq!(of_worker(&events, "spawned", 1).len(), 1, "{}", corral.dump());
}

/// Headless text keeps a worker's colours as received (docs/output.md), every other
/// sequence still escaped; `--strip-ansi` (or `strip-ansi = true`) removes them all, from
/// text and JSON alike.
#[test]
fn headless_text_keeps_colours_and_strip_ansi_removes_every_sequence() {
    let script = r"printf '\033[32mgreen\033[0m plain \033[2Jcleared\n'";
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("strip.toml");
    let command =
        format!("[group.web]\ncommand = [\"sh\", \"-c\", \"{}\"]\n", script.replace('\\', "\\\\"));
    std::fs::write(&config, format!("strip-ansi = true\n{command}")).expect("write config");
    let config = config.to_str().expect("UTF-8 path");
    let cases: [(&[&str], &str); 4] = [
        (&["--log-format", "text"], "| \x1b[32mgreen\x1b[0m plain \\u{1b}[2Jcleared\x1b[0m\n"),
        (&["--log-format", "text", "--strip-ansi"], "| green plain cleared\n"),
        (&["--log-format", "json", "--strip-ansi"], r#""line":"green plain cleared"}"#),
        (&["--log-format", "text", "--config", config], "| green plain cleared\n"),
    ];
    for (options, want) in cases {
        let mut args = vec!["--no-ui", "--restart", "never", "-w", "1"];
        args.extend(options);
        if !options.contains(&"--config") {
            args.extend(["--", "sh", "-c", script]);
        }
        let (code, stdout, _) = Run::start(&args).finish();
        let out = String::from_utf8_lossy(&stdout);
        assert_eq!(code, Some(0), "{options:?}\n{out}");
        assert!(out.contains(want), "{options:?}: {want:?} not in\n{out:?}");
    }
}
