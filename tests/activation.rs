//! Socket activation passthrough (docs/production.md#under-systemd): corral started with `LISTEN_FDS` hands those
//! sockets to its workers, so corral itself can be restarted while the kernel queues
//! connections on a socket that never closes. The test is the launcher (as systemd or
//! `systemd-socket-activate` would be): it binds, and execs corral with the socket as fd 3.

use std::net::TcpListener;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::Duration;

use crate::util::http::hello;
use crate::util::{Corral, DEADLINE, corral_bin, named, of_worker, spawned};
use crate::zero_downtime::Load;

/// `sh` sets `LISTEN_PID` to its own pid and execs corral, which keeps that pid.
fn launcher(socket: Option<RawFd>, env: &str, args: &[&str]) -> Command {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(format!("{env} exec \"$0\" \"$@\""))
        .arg(corral_bin())
        .args(["--no-ui", "--log-format", "json"])
        .args(args);
    if let Some(fd) = socket {
        // SAFETY: dup2 and fcntl are async-signal-safe; they put the listener at fd 3,
        // without close-on-exec, in the child only (dup2 onto itself keeps the flag).
        unsafe {
            command.pre_exec(move || {
                let ok = if fd == 3 {
                    libc::fcntl(3, libc::F_SETFD, 0) == 0
                } else {
                    libc::dup2(fd, 3) == 3
                };
                if ok { Ok(()) } else { Err(std::io::Error::last_os_error()) }
            });
        }
    }
    command
}

const ACTIVATED: &str = "LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=web.socket";

fn demo_on(listener: &TcpListener) -> Corral {
    let command = launcher(
        Some(listener.as_raw_fd()),
        ACTIVATED,
        &["demo", "--jobs", "0", "-w", "2", "--crash-after", "1h"],
    );
    let corral = Corral::start_command(command);
    let first = corral.wait_spawned(2);
    corral.wait_for("both workers ready", DEADLINE, |events| {
        first.iter().all(|&(w, _)| !of_worker(events, "ready", w).is_empty()).then_some(())
    });
    corral
}

#[test]
fn a_handed_socket_serves_through_a_restart_of_corral_refusing_nothing() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let mut first = demo_on(&listener);
    let started = named(&first.events(), "supervisor_started")[0].clone();
    let listen = &started["groups"][0]["listen"];
    assert_eq!(listen[0], format!("127.0.0.1:{port}"), "{started}");
    let before: Vec<u32> = spawned(&first.events()).into_iter().map(|(_, p)| p).collect();
    assert!(before.contains(&hello(port).expect("served")), "a worker of corral answers");

    let load = Load::start(port);
    std::thread::sleep(Duration::from_millis(300));
    first.signal(libc::SIGTERM);
    assert_eq!(first.wait_exit(DEADLINE).code(), Some(0), "{}", first.dump());
    first.assert_nothing_left();
    // Connections made now wait in the kernel's queue of the socket the launcher holds.
    std::thread::sleep(Duration::from_millis(300));
    let second = demo_on(&listener);
    let after: Vec<u32> = spawned(&second.events()).into_iter().map(|(_, p)| p).collect();
    let served_new =
        crate::util::wait_until(DEADLINE, || hello(port).is_ok_and(|p| after.contains(&p)));
    let (answers, failures) = load.finish();
    assert!(served_new, "the new corral's workers serve\n{}", second.dump());
    assert!(failures.is_empty(), "refused or failed across the restart: {failures:?}");
    assert!(
        answers.iter().any(|p| before.contains(p)) && answers.iter().any(|p| after.contains(p))
    );
}

#[test]
fn a_group_takes_a_handed_socket_by_name() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let dir = tempfile::tempdir().expect("tempdir");
    let demo = serde_json::to_string(&[corral_bin(), "__demo-worker", "--crash-after", "1h"])
        .expect("json");
    let file = dir.path().join("shop.toml");
    let text = format!(
        "[group.jobs]\ncommand = [\"sleep\", \"100\"]\nworkers = 1\n\
         [group.web]\ncommand = {demo}\nworkers = 1\nlisten = [\"fd:web.socket\"]\n"
    );
    std::fs::write(&file, text).expect("write");
    let path = file.to_str().expect("utf8");
    let command = launcher(Some(listener.as_raw_fd()), ACTIVATED, &["--config", path]);
    let mut corral = Corral::start_command(command);
    corral.wait_for("web ready", DEADLINE, |events| {
        events.iter().any(|e| e["event"] == "ready" && e["group"] == "web").then_some(())
    });
    let started = named(&corral.events(), "supervisor_started")[0].clone();
    assert_eq!(started["groups"][0]["listen"], serde_json::json!([]), "jobs takes nothing");
    assert_eq!(started["groups"][1]["listen"][0], format!("127.0.0.1:{port}"));
    assert!(hello(port).is_ok(), "{}", corral.dump());
    corral.signal(libc::SIGTERM);
    assert_eq!(corral.wait_exit(DEADLINE).code(), Some(0), "{}", corral.dump());
}

#[test]
fn bad_activation_variables_are_one_line_and_exit_2() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let fd = Some(listener.as_raw_fd());
    let cases: &[(Option<RawFd>, &str, &[&str], &str)] = &[
        (
            fd,
            "LISTEN_PID=1 LISTEN_FDS=1",
            &["--", "sleep", "1"],
            "corral: LISTEN_PID=1 is not corral's pid (",
        ),
        (
            None,
            "exec 3</dev/null; LISTEN_PID=$$ LISTEN_FDS=1",
            &["--", "sleep", "1"],
            "corral: LISTEN_FDS: fd 3 is not an open socket",
        ),
        (
            fd,
            "LISTEN_PID=$$ LISTEN_FDS=lots",
            &["--", "sleep", "1"],
            "corral: LISTEN_FDS=lots: expected a number",
        ),
        (
            fd,
            "LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=a:b",
            &["--", "sleep", "1"],
            "corral: LISTEN_FDNAMES has 2 names for LISTEN_FDS=1",
        ),
        (
            fd,
            ACTIVATED,
            &["-l", "fd:api", "--", "sleep", "1"],
            "corral: listen = fd:api: no socket named 'api' was handed to corral (LISTEN_FDNAMES: web.socket)",
        ),
        (
            None,
            "",
            &["-l", "fd:api", "--", "sleep", "1"],
            "corral: listen = fd:api: no socket named 'api' was handed to corral (LISTEN_FDNAMES: none)",
        ),
    ];
    for (socket, env, args, expected) in cases {
        let out = launcher(*socket, env, args).output().expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{env} {args:?}: {stderr}");
        assert!(stderr.starts_with(expected) && stderr.lines().count() == 1, "{env}: {stderr}");
        assert!(out.stdout.is_empty(), "nothing started");
    }
}

/// The launcher people use by hand: `systemd-socket-activate -l ADDR corral …`.
#[test]
fn systemd_socket_activate_hands_corral_its_port() {
    let Ok(launcher) = which("systemd-socket-activate") else {
        eprintln!("skipped: systemd-socket-activate is not installed");
        return;
    };
    let port = crate::util::free_port();
    let mut command = Command::new(launcher);
    command.arg(format!("--listen=127.0.0.1:{port}")).arg("--fdname=http").arg(corral_bin()).args(
        [
            "--no-ui",
            "--log-format",
            "json",
            "demo",
            "--jobs",
            "0",
            "-w",
            "2",
            "--crash-after",
            "1h",
        ],
    );
    let mut corral = Corral::start_command(command);
    // It starts corral on the first connection, which waits in the socket meanwhile.
    assert!(crate::util::wait_until(DEADLINE, || corral.stderr().contains("Listening on")));
    let answered = hello(port).expect("the first connection is served once corral is up");
    let first = corral.wait_spawned(2);
    let pids: Vec<u32> = first.iter().map(|&(_, p)| p).collect();
    assert!(pids.contains(&answered), "{answered} not in {pids:?}\n{}", corral.dump());
    corral.signal(libc::SIGTERM);
    assert_eq!(corral.wait_exit(DEADLINE).code(), Some(0), "{}", corral.dump());
    corral.assert_nothing_left();
}

/// `assets/corral.service` and `assets/corral.socket`, as the README shows them, are units
/// systemd accepts (with `ExecStart` pointing at this build).
#[test]
fn the_unit_files_in_assets_verify() {
    let Ok(analyze) = which("systemd-analyze") else {
        eprintln!("skipped: systemd-analyze is not installed");
        return;
    };
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets");
    let dir = tempfile::tempdir().expect("tempdir");
    for name in ["corral.service", "corral.socket"] {
        let text = std::fs::read_to_string(root.join(name)).expect("unit file");
        let text = text.replace("/usr/local/bin/corral", corral_bin());
        std::fs::write(dir.path().join(name), text).expect("write");
    }
    let out = Command::new(analyze)
        .args(["verify", "--man=no"])
        .arg(dir.path().join("corral.socket"))
        .arg(dir.path().join("corral.service"))
        .output()
        .expect("systemd-analyze runs");
    let said =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && said.trim().is_empty(), "{said}");
}

fn which(program: &str) -> Result<std::path::PathBuf, ()> {
    let path = std::env::var_os("PATH").ok_or(())?;
    std::env::split_paths(&path).map(|d| d.join(program)).find(|p| p.is_file()).ok_or(())
}
