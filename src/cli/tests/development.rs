//! `--pty`, `--watch` and Procfiles on the command line and in files.

use std::fs;
use std::time::Duration;

use super::{fail, parse, run};
use crate::cli::Invocation;

#[test]
fn watch_paths_must_exist_and_become_absolute() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir(&src).unwrap();
    let src_arg = src.to_str().unwrap();
    let spec = run(&["--pty", "--watch", src_arg, "--watch-ignore", "*.log", "--", "sh"]);
    let g = &spec.groups[0];
    assert!(g.pty);
    let w = g.watch.as_ref().unwrap();
    assert_eq!(w.paths, std::slice::from_ref(&src));
    assert_eq!(w.ignore, ["*.log"]);
    assert_eq!(w.debounce, Duration::from_millis(300));
    let missing = dir.path().join("nope");
    let message = fail(&["--watch", missing.to_str().unwrap(), "--", "sh"]);
    assert!(message.contains("--watch") && message.contains("No such file"), "{message}");
    let message = fail(&["--watch-ignore", "{a", "--", "sh"]);
    assert!(message.contains("--watch-ignore"), "{message}");
    assert!(run(&["--", "sh"]).groups[0].watch.is_none());
}

#[test]
fn a_missing_watch_path_in_a_file_names_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dev.toml");
    fs::write(&file, "[group.web]\ncommand = \"true\"\nwatch = [\"src\"]\n").unwrap();
    let message = fail(&["--config", file.to_str().unwrap()]);
    assert!(message.contains("dev.toml:3:10: group.web.watch"), "{message}");
    fs::create_dir(dir.path().join("src")).unwrap();
    let spec = run(&["--config", file.to_str().unwrap()]);
    let w = spec.groups[0].watch.as_ref().unwrap();
    assert_eq!(w.paths, [dir.path().join("src")], "relative to the file");
    assert_eq!(w.base, dir.path());
}

#[test]
fn a_procfile_is_groups_with_formation_and_check_config_prints_toml() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("Procfile");
    fs::write(&file, "# dev\nweb: echo web\n\nworker: echo worker\n").unwrap();
    let path = file.to_str().unwrap();
    let spec = run(&["--procfile", path]);
    let names: Vec<_> = spec.groups.iter().map(|g| (g.name.as_str(), g.workers)).collect();
    assert_eq!(names, [("web", 1), ("worker", 1)]);
    assert_eq!(spec.groups[0].command.argv, ["/bin/sh", "-c", "echo web"]);
    assert_eq!(spec.groups[0].cwd.as_deref(), Some(dir.path()), "the Procfile's directory");
    let spec = run(&["--procfile", path, "-w", "3", "--formation", "worker=0,web=2"]);
    let names: Vec<_> = spec.groups.iter().map(|g| (g.name.as_str(), g.workers)).collect();
    assert_eq!(names, [("web", 2)]);
    let spec = run(&["--procfile", path, "-w", "3"]);
    assert!(spec.groups.iter().all(|g| g.workers == 3));
    let message = fail(&["--procfile", path, "--formation", "wbe=1"]);
    assert!(message.contains("no process 'wbe'"), "{message}");
    assert!(fail(&["--procfile", path, "--", "sh"]).contains("COMMAND"));
    assert!(fail(&["--formation", "web=1", "--", "sh"]).contains("needs a Procfile"));
    let Ok(Invocation::CheckConfig(toml)) = parse(&["check-config", path]) else { panic!() };
    let back = dir.path().join("back.toml");
    fs::write(&back, toml.as_bytes()).unwrap();
    let again = run(&["--config", back.to_str().unwrap()]);
    assert_eq!(again.groups.len(), 2);
    assert_eq!(again.groups[1].command.argv, ["/bin/sh", "-c", "echo worker"]);
    fs::write(&file, "web: a\nweb: b\n").unwrap();
    let message = fail(&["--procfile", path]);
    assert!(message.ends_with("Procfile:2: 'web' is already defined on line 1"), "{message}");
}
