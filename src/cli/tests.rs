#![allow(clippy::unwrap_used, reason = "a panic is how a test fails")]

use std::ffi::OsStr;
use std::fs;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::*;
use crate::config::{CommandSpec, GroupSpec, ListenAddr, ListenSpec, LogFormat, OutputMode};
use crate::core::{Backoff, Policy, RestartPolicy};
use crate::signal::Signal;
use std::time::Duration;

fn parse(args: &[&str]) -> Result<Invocation, CliExit> {
    parse_from(std::iter::once("corral").chain(args.iter().copied()))
}

/// The one group of a command line; for the demo, its HTTP group (the first).
fn group(args: &[&str]) -> GroupSpec {
    let spec = run(args);
    let demo = args.iter().take_while(|a| **a != "--").any(|a| *a == "demo");
    assert_eq!(spec.groups.len() == 1, !demo || args.contains(&"--jobs"), "{args:?}");
    spec.groups.into_iter().next().unwrap()
}

fn run(args: &[&str]) -> RunSpec {
    match parse(args) {
        Ok(Invocation::Run(spec)) => spec,
        other => panic!("{args:?}: {other:?}"),
    }
}

/// Asserts the docs/config.md error shape and returns the message.
fn fail(args: &[&str]) -> String {
    let exit = match parse(args) {
        Err(exit) => exit,
        Ok(ok) => panic!("{args:?} parsed: {ok:?}"),
    };
    assert_eq!((exit.code, exit.to_stderr), (2, true), "{args:?}");
    assert!(exit.message.starts_with("corral: "), "{}", exit.message);
    assert!(!exit.message.contains('\n'), "{:?}", exit.message);
    assert!(!exit.message.contains("error:"), "{}", exit.message);
    exit.message
}

fn executable(dir: &Path, name: &str, mode: u32) -> String {
    let path = dir.join(name);
    fs::write(&path, "#!/bin/sh\n").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn clap_definition_is_consistent() {
    Cli::command().debug_assert();
}

#[test]
fn defaults() {
    let spec = run(&["--", "/bin/sh", "-c", "exit 0"]);
    let g = &spec.groups[0];
    let cpus = std::thread::available_parallelism().unwrap().get();
    assert_eq!(g.workers as usize, cpus.min(4096));
    assert_eq!(g.name, "sh");
    assert_eq!(g.policy, Policy::default());
    assert_eq!(g.cwd, None);
    assert!(g.env.is_empty() && g.listen.is_empty());
    assert!(!g.wait_ready && !g.node_ipc);
    assert_eq!(g.command.program, Path::new("/bin/sh"));
    assert_eq!(g.command.argv, ["/bin/sh", "-c", "exit 0"]);
    assert_eq!(g.command.display, "/bin/sh -c exit 0");
    let want = if std::io::stdout().is_terminal() {
        OutputMode::Dashboard
    } else {
        OutputMode::Headless(LogFormat::Text)
    };
    assert_eq!(spec.output, want);
    assert_eq!(spec.verbosity, 0);
}

#[test]
fn every_option_reaches_the_spec() {
    let dir = tempfile::tempdir().unwrap();
    let dir_text = dir.path().to_str().unwrap();
    let spec = run(&[
        "-w",
        "8",
        "-n",
        "api_1",
        "-l",
        "3000",
        "-l",
        "admin=127.0.0.1:9000",
        "-l",
        "[::1]:80",
        "-l",
        "unix:/tmp/api.sock",
        "--restart",
        "on-failure",
        "--backoff",
        "250ms..1m",
        "--min-uptime",
        "30s",
        "--max-restarts",
        "5",
        "--restart-window",
        "2m",
        "--stop-signal",
        "INT",
        "--kill-timeout",
        "1500ms",
        "--cwd",
        dir_text,
        "--env",
        "A=1",
        "--env",
        "B=x=y",
        "--env",
        "C=",
        "--no-ui",
        "--log-format",
        "json",
        "-vvv",
        "-q",
        "--",
        "/bin/sh",
        "server.sh",
    ]);
    let g = &spec.groups[0];
    assert_eq!((g.workers, g.name.as_str()), (8, "api_1"));
    let tcp = |s: &str| ListenAddr::Tcp(s.parse::<SocketAddr>().unwrap());
    let listen: Vec<_> = g.listen.iter().map(|l| (l.name.as_str(), l.addr.clone())).collect();
    assert_eq!(
        listen,
        [
            ("listen1", ListenAddr::AnyPort(3000)),
            ("admin", tcp("127.0.0.1:9000")),
            ("listen3", tcp("[::1]:80")),
            ("listen4", ListenAddr::Unix("/tmp/api.sock".into())),
        ]
    );
    let ms = Duration::from_millis;
    let want = Policy {
        restart: RestartPolicy::OnFailure,
        backoff: Backoff { first: ms(250), max: ms(60_000) },
        min_uptime: ms(30_000),
        max_restarts: 5,
        restart_window: ms(120_000),
        stop_signal: Signal::INT,
        kill_timeout: ms(1500),
        ..Policy::default()
    };
    assert_eq!(g.policy, want);
    assert_eq!(g.cwd.as_deref(), Some(dir.path()));
    let env: Vec<_> =
        g.env.iter().map(|(k, v)| (k.to_str().unwrap(), v.to_str().unwrap())).collect();
    assert_eq!(env, [("A", "1"), ("B", "x=y"), ("C", "")]);
    assert_eq!(spec.output, OutputMode::Headless(LogFormat::Json));
    assert_eq!(spec.verbosity, 2);
}

#[test]
fn option_variants() {
    let policy = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--", "/bin/sh"]);
        group(&all).policy
    };
    assert_eq!(policy(&["--restart", "never"]).restart, RestartPolicy::Never);
    assert_eq!(policy(&["--restart", "always"]).restart, RestartPolicy::Always);
    assert_eq!(policy(&["--backoff", "0"]).backoff, Backoff::ZERO);
    let fixed = Backoff { first: Duration::from_secs(1), max: Duration::from_secs(1) };
    assert_eq!(policy(&["--backoff", "1s"]).backoff, fixed);
    assert_eq!(policy(&["--stop-signal", "KILL"]).stop_signal, Signal::KILL);
    assert_eq!(policy(&["--stop-signal", "2"]).stop_signal, Signal::INT);
    assert_eq!(policy(&["--min-uptime", "0"]).min_uptime, Duration::ZERO);
    assert_eq!(run(&["-qq", "--", "/bin/sh"]).verbosity, -2);
    let text = run(&["--no-ui", "--", "/bin/sh"]).output;
    assert_eq!(text, OutputMode::Headless(LogFormat::Text));
    assert_eq!(group(&["-w", "4096", "--", "/bin/sh"]).workers, 4096);
}

#[test]
fn env_values_need_not_be_utf8() {
    let args = [OsStr::new("corral"), OsStr::new("--env"), OsStr::from_bytes(b"K=\xff")];
    let args = args.into_iter().chain([OsStr::new("--"), OsStr::new("/bin/sh")]);
    let Ok(Invocation::Run(spec)) = parse_from(args) else { panic!("not parsed") };
    assert_eq!(spec.groups[0].env[0].1.as_bytes(), b"\xff");
}

#[test]
fn bad_values_name_the_value() {
    let dir = tempfile::tempdir().unwrap();
    let file = executable(dir.path(), "file", 0o755);
    let cases: &[(&[&str], &str)] = &[
        (&["-w", "0"], "'0'"),
        (&["-w", "4097"], "'4097'"),
        (
            &["--workers", "abc"],
            "invalid value 'abc' for '--workers <N>': expected a whole number from 1 to 4096",
        ),
        (&["-n", "a.b"], "'a.b'"),
        (&["-n", ""], "''"),
        (&["-l", "example.com:80"], "'example.com:80'"),
        (&["-l", "70000"], "'70000'"),
        (&["-l", "::1:80"], "'::1:80'"),
        (
            &["--restart", "sometimes"],
            "'sometimes' for '--restart <POLICY>': expected one of always, on-failure, never",
        ),
        (&["--backoff", "5s..1s"], "'5s..1s'"),
        (&["--backoff", "abc"], "'abc'"),
        (&["--backoff", "0..1s"], "'0..1s'"),
        (&["--min-uptime", "5"], "'5'"),
        (&["--max-restarts", "many"], "'many'"),
        (&["--restart-window", "0"], "'0'"),
        (&["--stop-signal", "NOPE"], "'NOPE'"),
        (&["--kill-timeout", "forever"], "'forever'"),
        (&["--env", "=x"], "'=x'"),
        (&["--env", "NOEQ"], "'NOEQ'"),
        (&["--log-format", "yaml"], "'yaml'"),
        (&["--cwd", "/nope/x"], "--cwd '/nope/x': No such file or directory"),
        (&["--cwd", &file], "Not a directory"),
        (&["--frobnicate"], "'--frobnicate'"),
        (&["-w", "1", "-w", "2"], "'--workers <N>'"),
        (&["-l", "a=1", "-l", "a=2"], "'a=2'"),
        (&["-l", "2", "-l", "listen1=3"], "'listen1=3'"),
    ];
    for (args, needle) in cases {
        let mut all = args.to_vec();
        all.extend(["--", "/bin/sh"]);
        let message = fail(&all);
        assert!(message.contains(needle), "{args:?}: {message}");
    }
    for (args, needle) in [
        (&["demo", "--port", "70000"][..], "'70000'"),
        (&["demo", "--crash-after", "40s..10s"], "'40s..10s'"),
        (&["demo", "--crash-after", "soon"], "'soon'"),
        (&["demo", "-l", "80"], "'--listen'"),
        (&["-l", "80", "demo"], "'--listen'"),
        (&["completions", "tcsh"], "'tcsh'"),
        (&["completions"], "<SHELL>"),
        (&["completions", "bash", "-w", "3"], "'--workers'"),
        (&["-w", "3", "completions", "bash"], "'--workers'"),
    ] {
        let message = fail(args);
        assert!(message.contains(needle), "{args:?}: {message}");
    }
}

#[test]
fn missing_command() {
    for args in [&[][..], &["-w", "2"], &["--"], &["--no-ui", "--"]] {
        assert!(fail(args).contains("missing COMMAND"), "{args:?}");
    }
}

#[test]
fn command_that_cannot_run() {
    let message = fail(&["nodee-not-installed-anywhere"]);
    assert_eq!(
        message,
        "corral: cannot run 'nodee-not-installed-anywhere': No such file or directory"
    );
    let dir = tempfile::tempdir().unwrap();
    let plain = executable(dir.path(), "x.sh", 0o644);
    assert_eq!(fail(&["--", &plain]), format!("corral: cannot run '{plain}': Permission denied"));
    let dir_text = dir.path().to_str().unwrap();
    let message = fail(&["--cwd", dir_text, "./x.sh"]);
    assert_eq!(message, "corral: cannot run './x.sh': Permission denied");
    assert!(fail(&["--", dir_text]).ends_with("Is a directory"));
    assert!(fail(&["--", ""]).contains("cannot run ''"));
}

#[test]
fn relative_command_is_resolved_in_cwd() {
    let dir = tempfile::tempdir().unwrap();
    let script = executable(dir.path(), "server.sh", 0o755);
    let g = group(&["--cwd", dir.path().to_str().unwrap(), "--", "./server.sh", "--port", "1"]);
    assert_eq!(g.command.program, Path::new(&script));
    assert_eq!(g.command.argv, ["./server.sh", "--port", "1"]);
    assert_eq!(g.name, "server-sh");
}

#[test]
fn path_search() {
    let [denied, ok] = [(); 2].map(|()| tempfile::tempdir().unwrap());
    executable(denied.path(), "tool", 0o644);
    let found = executable(ok.path(), "tool", 0o755);
    let dirs = |ds: &[&Path]| std::env::join_paths(ds).unwrap();
    let resolve = |path: &OsStr| resolve::command(vec!["tool".into()], None, Some(path));
    let spec = resolve(&dirs(&[denied.path(), ok.path()])).unwrap();
    assert_eq!(spec.program, Path::new(&found));
    assert_eq!(spec.argv, ["tool"]);
    let err = resolve(&dirs(&[denied.path(), Path::new("/nonexistent")])).unwrap_err();
    assert_eq!(err, "cannot run 'tool': Permission denied");
    // A relative entry would mean a different directory once the worker is in --cwd.
    let err = resolve(&dirs(&[Path::new("."), Path::new("")])).unwrap_err();
    assert_eq!(err, "cannot run 'tool': No such file or directory");
}

#[test]
fn external_command_without_double_dash() {
    let g = group(&["-w", "3", "sh", "-c", "echo -w 5", "-w", "7"]);
    assert_eq!(g.workers, 3);
    assert_eq!(g.name, "sh");
    assert_eq!(g.command.argv, ["sh", "-c", "echo -w 5", "-w", "7"]);
    assert_eq!(g.command.display, "sh -c echo -w 5 -w 7");
    assert!(g.command.program.is_absolute() && g.command.program.ends_with("sh"));
}

#[test]
fn double_dash_makes_subcommand_names_commands() {
    match parse(&["--", "demo"]) {
        Ok(Invocation::Run(spec)) => assert_eq!(spec.groups[0].command.argv, ["demo"]),
        Ok(other) => panic!("{other:?}"),
        Err(exit) => assert!(exit.message.contains("cannot run 'demo'"), "{exit:?}"),
    }
}

#[test]
fn node_ipc_follows_the_program_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = executable(dir.path(), "node", 0o755);
    let other = executable(dir.path(), "server", 0o755);
    assert!(group(&["--", &node, "x.js"]).node_ipc, "auto: on for node");
    assert!(!group(&["--", &other]).node_ipc, "auto: off for anything else");
    assert!(group(&["--node-ipc", "on", "--", &other]).node_ipc);
    assert!(!group(&["--node-ipc", "off", "--", &node]).node_ipc);
    assert!(fail(&["--node-ipc", "maybe", "--", &node]).contains("'maybe'"));
}

#[test]
fn readiness_liveness_and_memory_options() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cmd = executable(dir.path(), "server", 0o755);
    let g = group(&["--", &cmd]);
    assert!(!g.wait_ready);
    assert_eq!(g.policy.ready_timeout, Duration::from_secs(30));
    assert_eq!((g.policy.heartbeat_timeout, g.policy.max_memory), (None, None));
    let g = group(&[
        "--wait-ready",
        "--ready-timeout",
        "2s",
        "--heartbeat-timeout",
        "500ms",
        "--max-memory",
        "512MiB",
        "--",
        &cmd,
    ]);
    assert!(g.wait_ready);
    assert_eq!(g.policy.ready_timeout, Duration::from_secs(2));
    assert_eq!(g.policy.heartbeat_timeout, Some(Duration::from_millis(500)));
    assert_eq!(g.policy.max_memory, Some(512 << 20));
    assert_eq!(group(&["--max-memory", "1G", "--", &cmd]).policy.max_memory, Some(1 << 30));
    assert_eq!(group(&["--max-memory", "100m", "--", &cmd]).policy.max_memory, Some(100 << 20));
    assert_eq!(group(&["--max-memory", "1GB", "--", &cmd]).policy.max_memory, Some(1_000_000_000));
    for bad in ["0", "lots", "5X", "512", "1023"] {
        assert!(fail(&["--max-memory", bad, "--", &cmd]).contains(&format!("'{bad}'")), "{bad}");
    }
    let bare = fail(&["--max-memory", "512", "--", &cmd]);
    assert!(bare.contains("'--max-memory <SIZE>': a bare number is bytes"), "{bare}");
    assert_eq!(group(&["--max-memory", "1024", "--", &cmd]).policy.max_memory, Some(1024));
    assert_eq!(group(&["--max-memory", "512B", "--", &cmd]).policy.max_memory, Some(512));
    assert!(fail(&["--heartbeat-timeout", "0", "--", &cmd]).contains("'0'"));
}

#[test]
fn reload_settle_defaults_to_2s_and_0_turns_it_off() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cmd = executable(dir.path(), "server", 0o755);
    assert_eq!(group(&["--", &cmd]).policy.reload_settle, Duration::from_secs(2));
    let g = group(&["--reload-settle", "750ms", "--", &cmd]);
    assert_eq!(g.policy.reload_settle, Duration::from_millis(750));
    assert_eq!(group(&["--reload-settle", "0", "--", &cmd]).policy.reload_settle, Duration::ZERO);
    assert!(fail(&["--reload-settle", "soon", "--", &cmd]).contains("'soon'"));
    let demo = |args: &[&str]| group(args).policy.reload_settle;
    assert_eq!(demo(&["demo", "--reload-settle", "1s"]), Duration::from_secs(1));
    assert_eq!(demo(&["--reload-settle", "0", "demo"]), Duration::ZERO);
}

#[test]
fn what_the_operator_typed_is_echoed_escaped() {
    let esc = "\x1b]0;PWNED\x07\x1b[2J\u{9b}";
    let shown = "\\u{1b}]0;PWNED\\u{7}\\u{1b}[2J\\u{9b}";
    let command = format!("./{esc}nope");
    let cwd = format!("/{esc}");
    // clap drops ANSI sequences from the values it echoes, but not the rest.
    for (args, whole) in [
        (vec!["--", command.as_str()], true),
        (vec!["--cwd", cwd.as_str(), "--", "sh"], true),
        (vec!["-w", esc, "--", "sh"], false),
        (vec!["--listen", esc, "--", "sh"], false),
    ] {
        let message = fail(&args);
        assert!(!message.chars().any(char::is_control), "{args:?}: {message:?}");
        assert!(message.contains(if whole { shown } else { "\\u{9b}" }), "{args:?}: {message}");
    }
}

#[test]
fn negative_numbers_are_refused_by_the_option_they_were_given_to() {
    for (args, want) in [
        (&["-w", "-1"][..], "invalid value '-1' for '--workers <N>': expected a whole number"),
        (&["--workers=-1"], "invalid value '-1' for '--workers <N>'"),
        (&["--max-restarts", "-1"], "invalid value '-1' for '--max-restarts <N>': expected"),
        (&["--min-uptime", "-5s"], "invalid value '-5s' for '--min-uptime <D>': expected"),
        (&["--kill-timeout", "-1s"], "invalid value '-1s' for '--kill-timeout <D>'"),
        (&["--restart-window", "-1m"], "invalid value '-1m' for '--restart-window <D>'"),
        (&["--ready-timeout", "-1"], "invalid value '-1' for '--ready-timeout <D>'"),
        (&["--heartbeat-timeout", "-1"], "invalid value '-1' for '--heartbeat-timeout <D>'"),
        (&["--backoff", "-1s..2s"], "invalid value '-1s..2s' for '--backoff <D[..MAX]>'"),
        (&["--max-memory", "-1G"], "invalid value '-1G' for '--max-memory <SIZE>'"),
        (&["--stop-signal", "-9"], "invalid value '-9' for '--stop-signal <SIG>'"),
    ] {
        let line: Vec<&str> = args.iter().copied().chain(["--", "sh"]).collect();
        let message = fail(&line);
        assert!(message.contains(want), "{line:?}: {message}");
    }
    for (args, want) in [
        (&["demo", "--port", "-1"][..], "invalid value '-1' for '--port <P>'"),
        (&["demo", "--crash-after", "-1s..2s"], "invalid value '-1s..2s' for '--crash-after"),
    ] {
        let message = fail(args);
        assert!(message.contains(want), "{args:?}: {message}");
    }
    // A flag after a value-taking option is still a flag where the value was optional:
    // nothing else changed in how options are read.
    let g = group(&["-w", "2", "--no-ui", "--", "sh"]);
    assert_eq!(g.workers, 2);
}

mod config;
mod demo_and_help;
mod development;
mod instance;

#[test]
fn strip_ansi_is_off_unless_asked_for() {
    assert!(!run(&["--no-ui", "--", "sh"]).strip_ansi);
    assert!(run(&["--no-ui", "--strip-ansi", "--", "sh"]).strip_ansi);
}

/// The help shows clap's defaults; what runs are the shared rules' (`GroupRequest::new`).
#[test]
fn the_helps_defaults_are_the_shared_ones() {
    let cli = Cli::try_parse_from(["corral"]).unwrap();
    let command =
        CommandSpec { program: "/bin/true".into(), argv: Vec::new(), display: String::new() };
    let mut as_typed = base_request("g".into(), command.clone(), None);
    // Every option at clap's default, as if typed.
    given_options(&cli.opts, &|_| true).apply_to(&mut as_typed);
    as_typed.restart_chosen = false;
    let shared = base_request("g".into(), command, None);
    assert_eq!(format!("{as_typed:?}"), format!("{shared:?}"));
}
