//! Runs from a config file: groups, precedence, paths, check-config.

use std::fs;
use std::path::Path;
use std::time::Duration;

use super::{executable, fail, parse, run};
use crate::cli::Invocation;
use crate::config::GroupSpec;
use crate::core::RestartPolicy;

fn config(dir: &Path, text: &str) -> String {
    let path = dir.join("shop.toml");
    fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

const SHOP: &str = r#"
[defaults]
kill-timeout = "10s"
workers = 3
env = { LEVEL = "defaults", KEEP = "yes" }

[group.web]
command = ["sh", "-c", "exit 0"]
workers = 4
env = { LEVEL = "web" }

[group.queue]
command = "exec sleep 1"
restart = "on-failure"
"#;

#[test]
fn a_config_file_runs_its_groups_in_file_order_with_defaults_under_them() {
    let dir = tempfile::tempdir().unwrap();
    let file = config(dir.path(), SHOP);
    let spec = run(&["--config", &file]);
    assert_eq!(spec.instance, "shop", "the file's stem");
    assert!(spec.instance_is_default, "numbered if a running corral has it");
    let [web, queue] = &spec.groups[..] else { panic!("{:?}", spec.groups) };
    assert_eq!((web.name.as_str(), web.workers), ("web", 4));
    assert_eq!((queue.name.as_str(), queue.workers), ("queue", 3), "[defaults]");
    assert_eq!(web.policy.kill_timeout, Duration::from_secs(10));
    assert_eq!(queue.policy.restart, RestartPolicy::OnFailure);
    assert_eq!(web.policy.restart, RestartPolicy::Always);
    let env = |g: &GroupSpec| -> Vec<String> {
        g.env.iter().map(|(k, v)| format!("{}={}", k.display(), v.display())).collect()
    };
    assert_eq!(env(web), ["LEVEL=defaults", "KEEP=yes", "LEVEL=web"], "later wins");
    assert_eq!(queue.command.argv, ["/bin/sh", "-c", "exec sleep 1"]);
    assert_eq!(queue.command.display, "exec sleep 1");
    let here = fs::canonicalize(dir.path()).unwrap();
    assert_eq!(web.cwd.as_deref().map(fs::canonicalize).unwrap().unwrap(), here);
}

#[test]
fn options_on_the_command_line_override_the_file_for_every_group() {
    let dir = tempfile::tempdir().unwrap();
    let file = config(dir.path(), SHOP);
    let spec = run(&["-w", "1", "--config", &file, "--kill-timeout", "1s", "--env", "LEVEL=cli"]);
    for g in &spec.groups {
        assert_eq!(g.workers, 1, "{}", g.name);
        assert_eq!(g.policy.kill_timeout, Duration::from_secs(1));
        assert_eq!(
            g.env.last().map(|(k, v)| (k.clone(), v.clone())),
            Some(("LEVEL".into(), "cli".into()))
        );
    }
    // Not given: the file's values stand, not the built-in defaults.
    assert_eq!(spec.groups[1].policy.restart, RestartPolicy::OnFailure);
    let spec = run(&["--config", &file, "--restart", "never"]);
    assert!(spec.groups.iter().all(|g| g.policy.restart == RestartPolicy::Never));
    assert!(fail(&["--config", &file, "-n", "x"]).contains("'--name' cannot be used"));
    assert!(fail(&["--config", &file, "-l", "80"]).contains("'--listen' cannot be used"));
    assert!(fail(&["--config", &file, "--", "sleep", "1"]).contains("cannot be used with COMMAND"));
    assert!(fail(&["--config", &file, "demo"]).contains("'--config' cannot be used"));
}

#[test]
fn paths_in_a_file_are_relative_to_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("svc")).unwrap();
    executable(&dir.path().join("svc"), "run.sh", 0o755);
    let file = config(
        dir.path(),
        "log-dir = \"logs\"\n[group.a]\ncommand = [\"./run.sh\"]\ncwd = \"svc\"\n",
    );
    let spec = run(&["--config", &file]);
    let g = &spec.groups[0];
    assert_eq!(g.cwd.as_deref(), Some(dir.path().join("svc").as_path()));
    assert_eq!(g.command.program, dir.path().join("svc/run.sh"));
    assert_eq!(spec.log_files.map(|l| l.dir), Some(dir.path().join("logs")));
    let missing = config(dir.path(), "[group.a]\ncommand = [\"./nope.sh\"]\ncwd = \"svc\"\n");
    let message = fail(&["--config", &missing]);
    assert!(
        message
            .ends_with(":2:11: group.a.command: cannot run './nope.sh': No such file or directory"),
        "{message}"
    );
    let no_dir = config(dir.path(), "[group.a]\ncommand = [\"sh\"]\ncwd = \"gone\"\n");
    let message = fail(&["--config", &no_dir]);
    assert!(message.contains(":3:7: group.a.cwd: '"), "{message}");
    assert!(message.ends_with("gone': No such file or directory"), "{message}");
}

#[test]
fn check_config_prints_what_runs_and_reads_back_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let file = config(dir.path(), SHOP);
    let Ok(Invocation::CheckConfig(text)) = parse(&["check-config", &file, "-w", "2"]) else {
        panic!("check-config");
    };
    assert!(text.starts_with(&format!("# {file}: valid, 2 groups")), "{text}");
    assert!(text.contains("[group.web]") && text.contains("[group.queue]"), "{text}");
    assert!(text.contains("workers = 2"), "command-line override applied: {text}");
    let again = config(dir.path(), &text);
    let first = run(&["--config", &file, "-w", "2"]);
    let second = run(&["--config", &again]);
    for (a, b) in first.groups.iter().zip(&second.groups) {
        assert_eq!(
            (&a.name, a.workers, &a.policy, &a.cwd),
            (&b.name, b.workers, &b.policy, &b.cwd)
        );
        assert_eq!(a.command.program, b.command.program);
        assert_eq!(a.env.last(), b.env.last());
    }
    assert!(fail(&["check-config", "/nonexistent.toml"]).contains("cannot read config file"));
}

#[test]
fn without_command_the_file_in_the_current_directory_runs() {
    // The current directory is the crate's while testing: no corral.toml there.
    assert!(!Path::new("corral.toml").exists());
    let message = fail(&[]);
    assert!(message.contains("missing COMMAND") && message.contains("./corral.toml"), "{message}");
}

#[test]
fn env_files_and_schedules_resolve_per_group() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["shared.env", "web.env", "extra.env"] {
        fs::write(dir.path().join(name), "A=1\n").unwrap();
    }
    let file = config(
        dir.path(),
        r#"
[defaults]
env-file = "shared.env"
schedule-tz = "UTC"

[group.web]
command = "exec sleep 1"
env-file = ["web.env"]
reload-schedule = "0 0 4 * * *"

[group.job]
command = "true"
schedule = "*/5 * * * *"
"#,
    );
    let extra = dir.path().join("extra.env");
    let spec = run(&["--config", &file, "--env-file", extra.to_str().unwrap()]);
    let [web, job] = &spec.groups[..] else { panic!("{:?}", spec.groups) };
    let names = |g: &GroupSpec| -> Vec<String> {
        g.env_files.iter().map(|f| f.file_name().unwrap().to_string_lossy().into_owned()).collect()
    };
    assert_eq!(names(web), ["web.env", "extra.env"], "the group's list replaces [defaults]'");
    assert_eq!(names(job), ["shared.env", "extra.env"]);
    assert_eq!(job.workers, 1, "a job on a schedule runs once, not once per CPU");
    assert!(web.env_files.iter().all(|f| f.is_absolute()));
    assert_eq!(web.policy.restart, RestartPolicy::Always);
    assert!(web.schedule.is_none());
    assert_eq!(web.reload_schedule.as_ref().map(|s| s.zone), Some(crate::schedule::Zone::Utc));
    assert_eq!(job.policy.restart, RestartPolicy::Never, "a schedule makes a one-shot group");
    assert_eq!(job.schedule.as_ref().map(|s| s.text.as_str()), Some("*/5 * * * *"));
    let out = fail(&["--config", &file, "--restart", "always"]);
    assert!(out.contains("reload-schedule"), "{out}");
}

#[test]
fn completed_may_name_a_group_on_a_schedule_whose_restart_it_implies() {
    let dir = tempfile::tempdir().unwrap();
    let file = config(
        dir.path(),
        "[group.job]\ncommand = \"true\"\nschedule = \"* * * * *\"\n\n\
         [group.web]\ncommand = \"true\"\ndepends-on = { job = \"completed\" }\n",
    );
    let spec = run(&["--config", &file]);
    assert_eq!(spec.groups[1].depends_on.len(), 1);
    assert_eq!(spec.groups[0].policy.restart, crate::core::RestartPolicy::Never);
}

#[test]
fn check_config_says_sizes_in_the_largest_exact_unit() {
    use super::super::describe::exact_size;
    assert_eq!(exact_size(512 * 1024 * 1024), "512MiB");
    assert_eq!(exact_size(3 << 30), "3GiB");
    assert_eq!(exact_size(3072), "3KiB");
    assert_eq!(exact_size(1536), "1536B", "not a whole KiB");
    assert_eq!(exact_size(100), "100B");
}
