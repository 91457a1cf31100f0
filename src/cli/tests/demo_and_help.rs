//! `corral demo`'s options and groups, and the help, version and completion texts.

use super::*;

#[test]
fn demo_defaults() {
    let g = group(&["demo"]);
    assert_eq!((g.workers, g.name.as_str()), (2, "web"));
    let http = ListenSpec {
        name: "http".into(),
        addr: ListenAddr::Tcp("127.0.0.1:3000".parse().unwrap()),
    };
    assert_eq!(g.listen, [http]);
    let exe = std::env::current_exe().unwrap();
    assert_eq!(g.command.program, exe);
    assert_eq!(
        g.command.argv,
        [exe.as_os_str(), "__demo-worker".as_ref(), "--crash-after".as_ref(), "10s..40s".as_ref()]
    );
    assert_eq!(g.command.display, "corral demo web worker");
    assert_eq!(g.policy, Policy::default());
    let spec = run(&["demo"]);
    assert_eq!(spec.instance, "demo");
    let jobs = &spec.groups[1];
    assert_eq!((jobs.name.as_str(), jobs.workers), ("jobs", 2));
    assert!(jobs.listen.is_empty());
    assert_eq!(jobs.command.argv[2..], ["--jobs", "--crash-after", "20s..60s"]);
    assert_eq!(jobs.policy.heartbeat_timeout, Some(Duration::from_secs(10)));
}

#[test]
fn demo_jobs_and_crash_after_shape_the_second_group() {
    assert_eq!(run(&["demo", "--jobs", "0"]).groups.len(), 1);
    let spec = run(&["demo", "--jobs", "5", "-w", "3", "--crash-after", "1s..2s"]);
    let workers: Vec<(&str, u32)> =
        spec.groups.iter().map(|g| (g.name.as_str(), g.workers)).collect();
    assert_eq!(workers, [("web", 3), ("jobs", 5)], "-w is the HTTP group's");
    for g in &spec.groups {
        assert!(g.command.argv.ends_with(&["--crash-after".into(), "1s..2s".into()]), "{g:?}");
    }
    assert!(fail(&["demo", "--jobs", "5000"]).contains("'5000'"));
}

#[test]
fn demo_options_before_and_after() {
    let spec = run(&[
        "-v",
        "demo",
        "-w",
        "4",
        "--no-ui",
        "--port",
        "8080",
        "--crash-after",
        "1m..90s",
        "-n",
        "api",
    ]);
    let g = &spec.groups[0];
    assert_eq!((g.workers, g.name.as_str()), (4, "api"));
    assert_eq!(g.listen[0].addr, ListenAddr::Tcp("127.0.0.1:8080".parse().unwrap()));
    assert_eq!(g.command.argv[3], "1m..1m30s");
    assert_eq!(spec.output, OutputMode::Headless(LogFormat::Text));
    assert_eq!(spec.verbosity, 1);
    assert_eq!(group(&["-w", "5", "demo", "--crash-after", "5s"]).workers, 5);
    assert_eq!(group(&["demo", "--crash-after", "5s"]).command.argv[3], "5s..5s");
}

#[test]
fn help_and_version_succeed() {
    for args in [&["--help"][..], &["-h"], &["demo", "--help"], &["help", "demo"], &["--version"]] {
        let exit = parse(args).unwrap_err();
        assert_eq!((exit.code, exit.to_stderr), (0, false), "{args:?}");
        assert!(!exit.message.contains('\u{1b}'), "colour in {args:?}");
    }
    let help = parse(&["--help"]).unwrap_err().message;
    assert!(help.contains("--workers") && help.contains("corral demo"), "{help}");
    // --listen PORT and --metrics PORT bind differently; the help says which is which.
    let flat = help.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(flat.contains("[NAME=]PORT (every interface"), "{help}");
    assert!(flat.contains("PORT (127.0.0.1 only"), "{help}");
    assert!(parse(&["--version"]).unwrap_err().message.contains(env!("CARGO_PKG_VERSION")));
    // ctl and attach parse their own arguments; `help` reaches them too.
    for (args, says) in [
        (&["help", "ctl"][..], "Control a running corral"),
        (&["help", "attach"], "The dashboard of a running corral"),
        (&["help", "ctl", "status"], "One row per worker"),
    ] {
        let exit = parse(args).unwrap_err();
        assert_eq!(exit.code, 0, "{args:?}: {}", exit.message);
        assert!(exit.message.contains(says), "{args:?}: {}", exit.message);
    }
}

#[test]
fn completions() {
    assert!(matches!(parse(&["completions", "bash"]), Ok(Invocation::Completions(Shell::Bash))));
    let mut out = Vec::new();
    write_completions(Shell::Bash, &mut out);
    let script = String::from_utf8(out).unwrap();
    assert!(script.contains("--workers"), "{script}");
    // Each subcommand offers only what it accepts.
    let opts_of = |case: &str| {
        let at = script.find(&format!("{case})")).expect(case);
        script[at..].lines().nth(1).unwrap_or_default().to_string()
    };
    let completions = opts_of("corral__subcmd__completions");
    assert!(!completions.contains("--workers"), "{completions}");
    let demo = opts_of("corral__subcmd__demo");
    assert!(demo.contains("--workers") && demo.contains("--port"), "{demo}");
    assert!(!demo.contains("--listen"), "demo rejects --listen: {demo}");
}

#[test]
fn subcommand_help_shows_only_what_the_subcommand_accepts() {
    let demo = parse(&["demo", "--help"]).unwrap_err().message;
    assert!(demo.contains("--crash-after") && demo.contains("--workers"), "{demo}");
    assert!(!demo.contains("--listen"), "{demo}");
    let completions = parse(&["completions", "--help"]).unwrap_err().message;
    assert!(completions.contains("<SHELL>") && !completions.contains("--workers"), "{completions}");
    // Run options still parse after demo.
    assert_eq!(group(&["demo", "-w", "3"]).workers, 3);
}
