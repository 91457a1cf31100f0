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

/// The heading anchors of a Markdown file, as GitHub makes them: lower case, punctuation
/// dropped, spaces to `-`, `-1`, `-2` … for repeats; headings inside code blocks do not count.
fn anchors(text: &str) -> std::collections::HashSet<String> {
    let mut seen = std::collections::HashMap::new();
    let mut out = std::collections::HashSet::new();
    let mut in_code = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        let Some(heading) = line.strip_prefix('#').filter(|_| !in_code) else { continue };
        let heading = heading.trim_start_matches('#').trim();
        let mut slug = String::new();
        let mut skip = 0usize;
        // `[text](url)` counts as its text.
        let plain: String = {
            let mut s = String::new();
            let mut chars = heading.chars().peekable();
            while let Some(c) = chars.next() {
                if c == ']' && chars.peek() == Some(&'(') {
                    skip = 1;
                    continue;
                }
                if skip > 0 {
                    if c == ')' {
                        skip = 0;
                    }
                    continue;
                }
                if c != '[' {
                    s.push(c);
                }
            }
            s
        };
        for c in plain.to_lowercase().chars() {
            if c.is_alphanumeric() || c == '-' || c == '_' {
                slug.push(c);
            } else if c == ' ' {
                slug.push('-');
            }
        }
        let n = seen.entry(slug.clone()).or_insert(0);
        out.insert(if *n == 0 { slug.clone() } else { format!("{slug}-{n}") });
        *n += 1;
    }
    out
}

/// Every relative link of the README and of `docs/` leads to a file that exists, and an
/// `#anchor` to one of its headings: the reference moved to `docs/` once, and links rot.
#[test]
fn every_link_in_the_readme_and_docs_resolves() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("README.md")];
    let mut docs: Vec<_> = std::fs::read_dir(root.join("docs"))
        .expect("docs/")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    let mut broken = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read");
        let mut in_code = false;
        for (n, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("```") {
                in_code = !in_code;
                continue;
            }
            if in_code {
                continue;
            }
            // Links inside `code` are examples, not links.
            let line: String = line.split('`').step_by(2).collect::<Vec<_>>().join("");
            for (at, _) in line.match_indices("](") {
                let rest = &line[at + 2..];
                let Some(end) = rest.find(')') else { continue };
                let url = &rest[..end];
                if url.contains(':') || url.is_empty() {
                    continue; // https:, mailto:
                }
                let (path, anchor) = url.split_once('#').unwrap_or((url, ""));
                let target = if path.is_empty() {
                    file.clone()
                } else {
                    file.parent().unwrap_or(root).join(path)
                };
                let here = format!("{}:{}: {url}", file.display(), n + 1);
                if !target.exists() {
                    broken.push(format!("{here} (no such file)"));
                } else if !anchor.is_empty() && target.extension().is_some_and(|x| x == "md") {
                    let text = std::fs::read_to_string(&target).unwrap_or_default();
                    if !anchors(&text).contains(anchor) {
                        broken.push(format!("{here} (no such heading)"));
                    }
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}
