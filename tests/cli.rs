//! Command-line mistakes (docs/config.md): exit code 2, one `corral: …` line on stderr naming the
//! bad value, and nothing started.

use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;

use crate::util::{Corral, DEADLINE, named};

#[test]
fn mistakes_are_one_line_and_exit_2_before_anything_starts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let not_executable = dir.path().join("not-executable");
    fs::write(&not_executable, "#!/bin/sh\necho hi\n").expect("write script");
    fs::set_permissions(&not_executable, fs::Permissions::from_mode(0o644)).expect("chmod 644");
    let not_executable = not_executable.to_str().expect("UTF-8 temp path").to_string();
    // Held for the whole test, so corral's bind of the same address must fail.
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let taken = taken.local_addr().expect("local address").to_string();

    // (command line, the text the error must name)
    let cases = [
        ("--workers 0 -- sleep 1000".to_string(), "0"),
        ("--workers abc -- sleep 1000".to_string(), "abc"),
        ("-w 1 --backoff nope -- sleep 1000".to_string(), "nope"),
        ("-w 1 --restart sometimes -- sleep 1000".to_string(), "sometimes"),
        ("-w 1 --stop-signal NOPE -- sleep 1000".to_string(), "NOPE"),
        ("-w 1 --env NOEQUALS -- sleep 1000".to_string(), "NOEQUALS"),
        ("-w 1 --cwd /does/not/exist -- sleep 1000".to_string(), "/does/not/exist"),
        (format!("-w 1 --listen {taken} -- sleep 1000"), taken.as_str()),
        ("-w 1 -- definitely-not-a-command-xyz".to_string(), "definitely-not-a-command-xyz"),
        (format!("-w 1 -- {not_executable}"), not_executable.as_str()),
        ("-w 1".to_string(), ""), // no command at all: any one line will do
        // A typo gets the option it was probably meant to be.
        ("--wrkers 2 -- sleep 1000".to_string(), "a similar argument exists: '--workers'"),
        // A bare number is bytes: below a KiB it is refused, naming the option.
        ("-w 1 --max-memory 512 -- sleep 1000".to_string(), "'--max-memory <SIZE>'"),
    ];
    // All at once: each should end in milliseconds, so the slowest bounds the test.
    let mut runs: Vec<(String, &str, Corral)> = cases
        .into_iter()
        .map(|(what, named_value)| {
            let corral = Corral::start(&what.split_whitespace().collect::<Vec<_>>());
            (what, named_value, corral)
        })
        .collect();

    for (what, named_value, corral) in &mut runs {
        let status = corral.wait_exit(DEADLINE);
        let stderr = corral.stderr();
        let dump = corral.dump();
        assert_eq!(status.code(), Some(2), "`corral {what}`: exit code\n{dump}");
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "`corral {what}`: exactly one line on stderr\n{dump}");
        assert!(lines[0].starts_with("corral: "), "`corral {what}`: {stderr:?}");
        assert!(
            lines[0].contains(*named_value),
            "`corral {what}`: names {named_value:?}: {stderr:?}"
        );
        assert!(named(&corral.events(), "spawned").is_empty(), "`corral {what}` started a worker");
        corral.assert_nothing_left();
    }
}

/// `corral ctl` alone names what it can do, on one line; `ctl ls` with nothing running says
/// so instead of printing nothing.
#[test]
fn ctl_alone_lists_its_commands_and_ls_says_when_nothing_runs() {
    let empty = tempfile::tempdir().expect("temp dir");
    let ctl = |args: &[&str]| {
        std::process::Command::new(crate::util::corral_bin())
            .arg("ctl")
            .args(args)
            .env("XDG_RUNTIME_DIR", empty.path())
            .output()
            .expect("corral ctl runs")
    };
    let alone = ctl(&[]);
    let stderr = String::from_utf8_lossy(&alone.stderr);
    assert_eq!(alone.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    for command in ["status", "reload", "logs", "shutdown"] {
        assert!(stderr.contains(command), "`corral ctl` names {command}: {stderr}");
    }
    let ls = ctl(&["ls"]);
    let stderr = String::from_utf8_lossy(&ls.stderr);
    assert!(ls.status.success(), "{stderr}");
    assert!(stderr.starts_with("corral ctl: no corral is running"), "{stderr}");
}
