//! Config files (docs/config.md) on the real binary: several groups from one file run side by side,
//! restart on their own, and stop dependents first; every mistake is one line and exit 2
//! before anything starts.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::util::{Corral, DEADLINE, corral_bin, kind, named, send_signal, spawned, test_worker};

/// A TOML array of the words: JSON strings are TOML basic strings.
fn toml_array(words: &[String]) -> String {
    serde_json::to_string(words).expect("strings serialise")
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write config");
    path
}

fn group_of(event: &Value) -> &str {
    event["group"].as_str().unwrap_or_default()
}

/// `(group, slot, pid)` of every spawn.
fn spawns(events: &[Value]) -> Vec<(String, u64, u32)> {
    named(events, "spawned")
        .into_iter()
        .map(|e| {
            let pid = e["pid"].as_u64().and_then(|p| u32::try_from(p).ok()).expect("pid");
            (group_of(e).to_string(), e["worker"].as_u64().expect("worker"), pid)
        })
        .collect()
}

#[test]
fn two_groups_from_one_file_run_restart_alone_and_stop_dependents_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let worker = toml_array(&test_worker(&[]));
    let text = format!(
        "[defaults]\nkill-timeout = \"10s\"\nbackoff = \"0\"\n\n\
         [group.db]\ncommand = {worker}\nworkers = 2\n\n\
         [group.web]\ncommand = {worker}\nworkers = 2\ndepends-on = {{ db = \"started\" }}\n"
    );
    let file = write(dir.path(), "shop.toml", &text);
    let mut corral = Corral::start(&["--config".as_ref(), file.as_os_str()]);
    corral.wait_spawned(4);
    let events = corral.events();
    let started = named(&events, "supervisor_started");
    let groups: Vec<&str> = started[0]["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .map(|g| g["name"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(groups, ["db", "web"], "{}", corral.dump());
    let first = spawns(&events);
    let order: Vec<&str> = first.iter().map(|(g, _, _)| g.as_str()).collect();
    assert_eq!(order, ["db", "db", "web", "web"], "started after what they depend on");

    // A crash in one group restarts that worker only.
    let (_, _, victim) = first.iter().find(|(g, s, _)| g == "web" && *s == 1).expect("web.1");
    assert!(send_signal(*victim, libc::SIGKILL));
    let respawned = corral.wait_for("web.1 restarted", DEADLINE, |events| {
        spawns(events).into_iter().filter(|(g, s, _)| g == "web" && *s == 1).nth(1)
    });
    assert_ne!(respawned.2, *victim);
    assert_eq!(spawns(&corral.events()).len(), 5, "nothing else restarted\n{}", corral.dump());

    corral.signal(libc::SIGTERM);
    assert_eq!(corral.wait_exit(DEADLINE).code(), Some(0), "{}", corral.dump());
    let events = corral.events();
    let shutdown_exits: Vec<&str> = events
        .iter()
        .filter(|e| kind(e) == "exited" && e["reason"] == "shutdown")
        .map(group_of)
        .collect();
    assert_eq!(shutdown_exits, ["web", "web", "db", "db"], "dependents first\n{}", corral.dump());
    corral.assert_nothing_left();
}

#[test]
fn every_config_mistake_is_one_line_and_exit_2_before_anything_starts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let worker = toml_array(&test_worker(&[]));
    let ok_group = format!("[group.web]\ncommand = {worker}\n");
    let cases: Vec<(String, &str)> = vec![
        (
            format!("{ok_group}workers = \"four\"\n"),
            ":3:11: group.web.workers: expected an integer 1..=4096, got \"four\"",
        ),
        (
            format!("{ok_group}wrkers = 4\n"),
            ":3:1: group.web.wrkers: unknown key: did you mean 'workers'?",
        ),
        ("[group.web]\nworkers = 2\n".into(), ":1:8: group.web: missing key 'command'"),
        (format!("{ok_group}{ok_group}"), ":3:8: invalid TOML: duplicate key"),
        (
            "[group.web]\ncommand = [\"nodee\", \"x.js\"]\n".into(),
            ":2:11: group.web.command: cannot run 'nodee': No such file or directory",
        ),
        (format!("{ok_group}cwd = \"missing\"\n"), ":3:7: group.web.cwd: '"),
        (
            format!("{ok_group}kill-timeout = 5\n"),
            ":3:16: group.web.kill-timeout: expected a duration string",
        ),
        (
            format!("{ok_group}listen = [\"http=nope\"]\n"),
            ":3:11: group.web.listen.0: expected [NAME=]ADDR",
        ),
        (
            format!("{ok_group}listen = [\"a=18600\", \"a=18601\"]\n"),
            ":3:10: group.web.listen: 'a=18601': the name 'a' is already used",
        ),
        (
            format!("{ok_group}listen = [\"18600\", \"18600\"]\n"),
            ":3:10: group.web.listen: '18600': the address is given twice",
        ),
        (
            format!("log-keep = \"lots\"\n{ok_group}"),
            ":1:12: log-keep: expected an integer 0..=10000",
        ),
        (
            "[defaults]\nworkers = 2\n".into(),
            ": group: no groups: expected at least one [group.NAME] table",
        ),
        ("[group.web\ncommand = 1\n".into(), ":1:11: invalid TOML:"),
    ];
    for (i, (text, expected)) in cases.iter().enumerate() {
        let file = write(dir.path(), &format!("bad{i}.toml"), text);
        let out = crate::util::corral_command()
            .args(["--no-ui".as_ref(), "--config".as_ref(), file.as_os_str()])
            .output()
            .expect("corral runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let context = format!("{text}\nstderr: {stderr}");
        assert_eq!(out.status.code(), Some(2), "{context}");
        assert!(
            out.stdout.is_empty(),
            "nothing started: {}\n{context}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert_eq!(stderr.lines().count(), 1, "{context}");
        let prefix = format!("corral: {}{expected}", file.display());
        assert!(stderr.starts_with(&prefix), "want: {prefix}\n{context}");
    }
    // Unreadable: the file itself is named.
    let out = crate::util::corral_command()
        .args(["--config", "/nonexistent/shop.toml"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "corral: cannot read config file '/nonexistent/shop.toml': No such file or directory\n"
    );
}

#[test]
fn without_a_command_corral_runs_the_corral_toml_of_the_current_directory() {
    let top = tempfile::tempdir().expect("tempdir");
    let dir = top.path().join("shop");
    std::fs::create_dir(&dir).expect("mkdir");
    let once = toml_array(&test_worker(&["--exit", "0"]));
    write(
        &dir,
        "corral.toml",
        &format!("[group.once]\ncommand = {once}\nrestart = \"never\"\nworkers = 2\n"),
    );
    let mut corral = Corral::start_in::<&str>(&dir, &[]);
    assert_eq!(corral.wait_exit(DEADLINE).code(), Some(0), "{}", corral.dump());
    let events = corral.events();
    assert_eq!(spawned(&events).len(), 2, "{}", corral.dump());
    let started = named(&events, "supervisor_started");
    assert_eq!(started[0]["instance"], "shop", "corral.toml is named after its directory");
    assert!(named(&events, "spawned").iter().all(|e| group_of(e) == "once"));

    let empty = tempfile::tempdir().expect("tempdir");
    let out = crate::util::corral_command().current_dir(empty.path()).output().expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("corral: missing COMMAND") && stderr.contains("--config FILE"),
        "{stderr}"
    );
}

#[test]
fn check_config_prints_the_resolved_groups_and_exits_0() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = "[defaults]\nworkers = 3\n[group.web]\ncommand = \"exec sleep 100\"\n\
                [group.queue]\ncommand = [\"sleep\", \"100\"]\nworkers = 1\n";
    let file = write(dir.path(), "shop.toml", text);
    let out = crate::util::corral_command()
        .args(["check-config".as_ref(), file.as_os_str(), "--kill-timeout".as_ref(), "2s".as_ref()])
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    for line in
        ["[group.web]", "[group.queue]", "workers = 3", "workers = 1", "kill-timeout = \"2s\""]
    {
        assert!(stdout.contains(line), "{line} in\n{stdout}");
    }
    assert!(stdout.find("[group.web]") < stdout.find("[group.queue]"), "file order");
    // Nothing ran: no sleep of ours is alive.
    let bad = write(dir.path(), "bad.toml", "[group.web]\ncommand = 3\n");
    let out = crate::util::corral_command()
        .args(["check-config".as_ref(), bad.as_os_str()])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
}

/// The README shows `assets/demo.toml` as the demo's config: with corral on PATH it is a
/// valid file for `--config`, with the groups `corral demo` runs.
#[test]
fn the_demo_config_in_assets_is_a_valid_config() {
    let bin_dir = Path::new(corral_bin()).parent().expect("bin dir");
    let path = std::env::join_paths(
        std::iter::once(bin_dir.to_path_buf())
            .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
    )
    .expect("PATH");
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo.toml");
    let out = crate::util::corral_command()
        .args(["check-config".as_ref(), demo.as_os_str()])
        .env("PATH", path)
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("instance = \"demo\""), "{stdout}");
    assert!(stdout.find("[group.web]") < stdout.find("[group.jobs]"), "{stdout}");
    assert!(stdout.contains("listen = [\"http=127.0.0.1:3000\"]"), "{stdout}");
}
