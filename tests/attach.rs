//! `corral attach` (docs/control.md) end to end: a headless corral (`-I shop`) and the real binary
//! attached to it on a pseudo-terminal, sharing its `XDG_RUNTIME_DIR`. The attached screen
//! shows the workers, keys act through the socket (checked in the headless JSON events),
//! `q` and Ctrl-C only detach, `Q` `y` shuts corral down, and corral going away ends the
//! attach with the terminal restored.

use std::ffi::OsStr;
use std::process::Command;

use crate::util::pty::{Term, Tty};
use crate::util::{
    Corral, DEADLINE, SHORT, corral_bin, of_worker, pid_alive, spawned, wait_until, with_command,
};

/// A headless `shop` of `workers` that each print a line and sleep.
fn shop(workers: &str) -> Corral {
    let script = "echo \"hello from $CORRAL_WORKER_ID\"; exec sleep 600";
    let args = with_command(
        &["-I", "shop", "-n", "web", "-w", workers, "--backoff", "0"],
        &["sh".to_string(), "-c".to_string(), script.to_string()],
    );
    let corral = Corral::start(&args);
    corral.wait_spawned(workers.parse().expect("a count"));
    corral
}

/// `corral attach ARGS…` on a terminal of its own, beside `corral`.
fn attach(corral: &Corral, args: &[&str]) -> Tty {
    let args: Vec<&str> = ["attach"].iter().chain(args).copied().collect();
    let env = [("XDG_RUNTIME_DIR", corral.runtime_dir().as_os_str())];
    Tty::start_with_env(Term::default(), &args, &env)
}

/// Waits until the attached screen shows every worker of `shop` and says it is attached.
fn wait_table(tty: &Tty, corral: &Corral, workers: &[&str]) -> String {
    let attached = format!("attached to shop (pid {})", corral.pid());
    tty.wait_screen("the attached table", DEADLINE, |s| {
        s.contains(&attached) && workers.iter().all(|w| s.contains(w)) && s.contains("running")
    })
}

fn exit_code(tty: &mut Tty) -> u32 {
    tty.wait_exit(DEADLINE).exit_code()
}

#[test]
fn attach_shows_the_table_acts_through_the_socket_and_q_leaves_corral_running() {
    let mut corral = shop("2");
    let pids: Vec<u32> = corral.wait_spawned(2).iter().map(|(_, p)| *p).collect();
    let mut tty = attach(&corral, &["-I", "shop"]);
    let screen = wait_table(&tty, &corral, &["web.1", "web.2"]);
    assert!(screen.contains("q detach"), "{screen}");
    tty.wait_screen("web.1's output in the pane", DEADLINE, |s| s.contains("hello from 1"));

    tty.send(b"x");
    corral.wait_for("web.1 killed through attach", DEADLINE, |events| {
        of_worker(events, "exited", 1)
            .first()
            .is_some_and(|e| e["reason"] == "killed_by_user")
            .then_some(())
    });
    corral.wait_for("web.1 back", DEADLINE, |events| {
        (spawned(events).iter().filter(|(w, _)| *w == 1).count() == 2).then_some(())
    });
    tty.wait_screen("the restart on the attached screen", DEADLINE, |s| {
        s.contains("SIGKILL (user)") || s.contains("SIGKILL (killed by user)")
    });

    tty.send(b"q");
    assert_eq!(exit_code(&mut tty), 0, "{}", tty.dump());
    let screen = tty.screen();
    assert!(screen.contains("detached from shop") && screen.contains("keeps running"), "{screen}");
    assert!(corral.try_exit().is_none(), "q only detaches\n{}", corral.dump());
    assert!(pid_alive(pids[1]), "web.2 is still running");
    tty.assert_nothing_left();

    // A second attach, after the first left.
    let mut again = attach(&corral, &[]);
    wait_table(&again, &corral, &["web.1", "web.2"]);
    again.send(b"\x03");
    assert_eq!(exit_code(&mut again), 0, "Ctrl-C detaches\n{}", again.dump());
    assert!(corral.try_exit().is_none(), "Ctrl-C only detaches\n{}", corral.dump());
    assert!(pid_alive(pids[1]));

    // A signal to attach itself detaches too, and gives the terminal back.
    let mut third = attach(&corral, &[]);
    wait_table(&third, &corral, &["web.1", "web.2"]);
    third.signal(libc::SIGTERM);
    assert_eq!(exit_code(&mut third), 0, "SIGTERM detaches\n{}", third.dump());
    let (alternate, hidden) = third.with_screen(|s| (s.alternate_screen(), s.hide_cursor()));
    assert!(!alternate && !hidden, "alternate screen {alternate}, cursor hidden {hidden}");
    let flags = |t: &libc::termios| (t.c_iflag, t.c_oflag, t.c_lflag);
    assert_eq!(flags(&third.termios()), flags(&third.cooked), "termios restored");
    assert!(third.screen().contains("detached from shop"), "{}", third.screen());
    assert!(corral.try_exit().is_none(), "SIGTERM to attach only detaches");
    assert!(pid_alive(pids[1]));
}

#[test]
fn two_attached_at_once_both_see_a_change_and_q_then_y_shuts_down() {
    let mut corral = shop("1");
    let first = attach(&corral, &["-I", "shop"]);
    let mut second = attach(&corral, &["--control", &socket(&corral)]);
    wait_table(&first, &corral, &["web.1"]);
    wait_table(&second, &corral, &["web.1"]);
    let out = corral.ctl(&["scale", "web", "+1"]);
    assert_eq!(out.status.code(), Some(0), "{}", corral.dump());
    for tty in [&first, &second] {
        tty.wait_screen("web.2 on both screens", DEADLINE, |s| {
            s.contains("web.2") && s.contains("web 2/2 up")
        });
    }

    second.send(b"Q");
    second
        .wait_screen("the question", SHORT, |s| s.contains("shut down shop") && s.contains("y/n"));
    second.send(b"n");
    second.wait_screen("the answer", SHORT, |s| s.contains("shop keeps running"));
    assert!(corral.try_exit().is_none(), "n: nothing happens");
    second.send(b"Q");
    second.wait_screen("the question again", SHORT, |s| s.contains("y/n"));
    second.send(b"y");
    assert_eq!(corral.wait_exit(DEADLINE).code(), Some(0), "{}", corral.dump());
    assert_eq!(exit_code(&mut second), 0, "the shutdown it asked for\n{}", second.dump());
    assert!(second.screen().contains("has shut down"), "{}", second.screen());
    // The other attach did not ask: corral going away is a loss to it.
    let mut first = first;
    assert_eq!(exit_code(&mut first), 1, "{}", first.dump());
    assert!(first.screen().contains("lost shop"), "{}", first.screen());
    corral.assert_nothing_left();
}

fn socket(corral: &Corral) -> String {
    corral.runtime_dir().join("corral/shop.sock").display().to_string()
}

#[test]
fn attach_needs_a_terminal_and_a_corral() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(corral_bin())
        .arg("attach")
        .env("XDG_RUNTIME_DIR", dir.path())
        .output()
        .expect("attach runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("needs a terminal"), "{err}");

    let env = [("XDG_RUNTIME_DIR", OsStr::new(dir.path()))];
    let mut tty = Tty::start_with_env(Term::default(), &["attach"], &env);
    assert_eq!(tty.wait_exit(DEADLINE).exit_code(), 2, "{}", tty.dump());
    assert!(tty.screen().contains("no corral is running"), "{}", tty.screen());
    let gone = wait_until(SHORT, || tty.try_exit().is_some());
    assert!(gone);
}

/// The `view` subscription over a bare socket, as any client could use it: frames carry
/// the request's id, a `pane` request changes what they show, and a client that stops
/// reading while frames would keep coming is neither flooded nor dropped: it gets the
/// latest when it reads again.
#[test]
fn a_viewer_that_stops_reading_gets_the_latest_frame_not_a_backlog() {
    use std::io::{BufRead, BufReader, Write};
    use std::os::unix::net::UnixStream;
    // Output all the time: every frame tick has something new.
    let script = "while :; do echo \"$CORRAL_WORKER_ID $(printf '%0200d' 0)\"; sleep 0.002; done";
    let args = with_command(
        &["-I", "shop", "-n", "web", "-w", "2"],
        &["sh".to_string(), "-c".to_string(), script.to_string()],
    );
    let mut corral = Corral::start(&args);
    corral.wait_spawned(2);
    let stream = UnixStream::connect(socket(&corral)).expect("connect");
    stream.set_read_timeout(Some(DEADLINE)).expect("timeout");
    let mut writer = stream.try_clone().expect("clone");
    let mut reader = BufReader::new(stream);
    let mut read = || -> serde_json::Value {
        let mut line = String::new();
        reader.read_line(&mut line).expect("a line from corral");
        serde_json::from_str(&line).expect("JSON")
    };
    assert_eq!(read()["v"], 1, "the hello");
    let view = r#"{"v":1,"id":"v","cmd":"view","pane":{"rows":500}}"#;
    writer.write_all(format!("{view}\n").as_bytes()).expect("send view");
    let reply = read();
    assert_eq!((reply["id"].as_str(), reply["ok"].as_bool()), (Some("v"), Some(true)), "{reply}");
    assert_eq!(reply["pid"], corral.pid());
    let frame = read();
    assert_eq!(frame["id"], "v");
    let workers = frame["view"]["snapshot"]["workers"].as_array().expect("workers").len();
    assert_eq!(workers, 2, "{frame}");
    // Not reading for a while: ~90 frames of ~100 KiB would be due meanwhile.
    std::thread::sleep(std::time::Duration::from_secs(3));
    let pane = r#"{"id":2,"cmd":"pane","pane":{"worker":{"group":0,"slot":2},"rows":5}}"#;
    writer.write_all(format!("{pane}\n").as_bytes()).expect("send pane");
    let (mut waiting, mut waiting_bytes) = (0, 0);
    loop {
        let message = read();
        assert!(message["id"] != serde_json::Value::Null, "dropped? {message}");
        if message["id"] == 2 {
            assert_eq!(message["ok"], true, "{message}");
            break;
        }
        waiting += 1;
        waiting_bytes += message.to_string().len();
    }
    // What the socket's buffer took (~200 KiB) and one frame more; a backlog would be the
    // 3 s of frames, ~90 of them.
    assert!(waiting < 30 && waiting_bytes < 1 << 20, "{waiting} stale frames, {waiting_bytes} B");
    let frame = read();
    let lines = frame["view"]["pane"]["lines"].as_array().expect("lines");
    assert!(lines.len() <= 5 && lines.iter().all(|l| l["id"] == "web.2"), "{frame}");
    assert!(corral.try_exit().is_none(), "{}", corral.dump());
}
