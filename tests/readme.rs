//! Every `corral …` command in the README's `sh` blocks runs as written from the
//! repository's root: each is started (with `corral` meaning this build), given a moment,
//! and must not have failed with a usage error (exit 2), an unrunnable command, or a worker
//! that crashed (unless its comment says it fails on purpose: "exits 1", "crash"). A
//! newcomer copies these first; a broken one is the first thing they meet.

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use crate::util::{TOKEN_VAR, corral_bin, kill_token_processes, wait_until};

/// The command lines of the README's `sh` blocks that run corral.
fn examples(readme: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_sh = false;
    for line in readme.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("```") {
            in_sh = trimmed == "```sh";
            continue;
        }
        if in_sh && trimmed.starts_with("corral ") {
            // A trailing `# comment` explains the line to the reader; the shell ignores it.
            out.push(trimmed.to_string());
        }
    }
    out
}

#[test]
fn the_readme_examples_run_as_written() {
    let root = env!("CARGO_MANIFEST_DIR");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).expect("README.md");
    let examples = examples(&readme);
    assert!(examples.len() >= 5, "the README shows how to run corral: {examples:?}");
    for example in &examples {
        run_briefly(root, example);
    }
}

fn path_with_corral() -> std::ffi::OsString {
    let bin = std::path::Path::new(corral_bin()).parent().map(std::path::Path::to_path_buf);
    let rest = std::env::var_os("PATH").unwrap_or_default();
    std::env::join_paths(bin.into_iter().chain(std::env::split_paths(&rest))).unwrap_or(rest)
}

fn run_briefly(root: &str, example: &str) {
    let token = format!("{:016x}", fastrand::u64(..));
    // `corral` is a shell function that runs this build, so the line is run exactly as
    // printed, quotes and all. Headless (stdout is a pipe), in its own process group.
    let script = format!("corral() {{ \"$CORRAL_BIN\" \"$@\"; }}\n{example}");
    let mut command = Command::new("sh");
    command
        .args(["-c", &script])
        .current_dir(root)
        .env("CORRAL_BIN", corral_bin())
        .env("XDG_RUNTIME_DIR", crate::util::runtime_dir())
        // As after `cargo install --path .`: config files name `corral` as their command.
        .env("PATH", path_with_corral())
        .env(TOKEN_VAR, &token)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = command.spawn().expect("sh runs");
    let mut status = None;
    wait_until(Duration::from_secs(3), || {
        status = child.try_wait().expect("waitpid");
        status.is_some()
    });
    if status.is_none() {
        // Still running after a while: it started. Stop it the way a person would.
        let pgid = i32::try_from(child.id()).expect("pid fits");
        let _ = killpg(Pid::from_raw(pgid), Signal::SIGINT);
        wait_until(Duration::from_secs(10), || {
            status = child.try_wait().expect("waitpid");
            status.is_some()
        });
    }
    let _ = child.kill();
    let output = child.wait_with_output().expect("wait");
    kill_token_processes(&token);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    if stderr.contains("Address already in use") {
        eprintln!("skipped (its port is taken on this machine): {example}");
        return;
    }
    assert_ne!(output.status.code(), Some(2), "`{example}` is a usage error:\n{stderr}");
    assert!(!stderr.contains("cannot run"), "`{example}`:\n{stderr}");
    assert!(!stderr.contains("not found"), "`{example}`:\n{stderr}");
    let on_purpose = example.contains("exits 1") || example.contains("crash");
    let crashed = stdout.contains("(crashed)") || stdout.contains("\"reason\":\"crashed\"");
    assert!(on_purpose || !crashed, "`{example}`: a worker crashed:\n{stdout}");
}
