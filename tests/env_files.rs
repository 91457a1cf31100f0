//! Env files (docs/application.md#environment-files-env-file) on the real binary: a `.env` as
//! dotenv writes it reaches a plain `sh` worker, under `env` and `--env`; an edit is read by the
//! next spawn (a reload); a missing or malformed file is a config error naming it, and one
//! deleted after the start fails the spawn that needed it, saying which file.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::util::{Corral, DEADLINE, corral_bin, named, send_signal, spawned};

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path
}

fn lines(events: &[Value]) -> Vec<String> {
    named(events, "output").iter().map(|e| e["line"].as_str().unwrap_or("").to_string()).collect()
}

fn config_args(file: &Path) -> Vec<std::ffi::OsString> {
    vec!["--config".into(), file.into()]
}

#[test]
fn a_dotenv_file_reaches_the_worker_under_env_and_the_command_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        ".env",
        "# a comment line\n\
         export A=exported\n\
         B=\"double # not a comment\"\n\
         C='single $A'\n\
         D=plain # a comment after\n\
         P1=file\nP2=file\nP3=file\n",
    );
    let toml = "[group.show]\n\
                command = 'echo \"A=$A\"; echo \"B=$B\"; echo \"C=$C\"; echo \"D=$D\"; echo \"P=$P1,$P2,$P3\"'\n\
                restart = \"never\"\n\
                env-file = \".env\"\n\
                env = { P2 = \"table\", P3 = \"table\" }\n";
    let file = write(dir.path(), "app.toml", toml);
    let mut args = config_args(&file);
    args.extend(["--env".into(), "P3=cli".into()]);
    // Started elsewhere: the file's paths are relative to its own directory.
    let mut corral = Corral::start_with_env(&args, &[("P1", "corral"), ("A", "corral")]);
    assert_eq!(corral.wait_exit(DEADLINE).code(), Some(0), "{}", corral.dump());
    let out = lines(&corral.events());
    for want in
        ["A=exported", "B=double # not a comment", "C=single $A", "D=plain", "P=file,table,cli"]
    {
        assert!(out.iter().any(|l| l == want), "{want} in {out:?}\n{}", corral.dump());
    }
}

#[test]
fn an_edit_is_read_at_the_next_spawn_and_a_deleted_file_fails_it_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = write(dir.path(), "app.env", "V=one\n");
    let file = write(
        dir.path(),
        "app.toml",
        "[group.web]\ncommand = 'echo \"V=$V\"; exec sleep 60'\nenv-file = \"app.env\"\nworkers = 1\n\
         reload-settle = \"0s\"\n",
    );
    let mut corral = Corral::start(&config_args(&file));
    corral.wait_for("V=one", DEADLINE, |e| lines(e).iter().any(|l| l == "V=one").then_some(()));
    write(dir.path(), "app.env", "# edited\nV=two\n");
    corral.signal(libc::SIGHUP);
    corral.wait_for("V=two after the reload", DEADLINE, |e| {
        lines(e).iter().any(|l| l == "V=two").then_some(())
    });
    std::fs::remove_file(&env).expect("rm");
    let (_, pid) = corral.wait_for("the replacement", DEADLINE, |e| spawned(e).get(1).copied());
    assert!(send_signal(pid, libc::SIGKILL));
    let failed = corral.wait_for("spawn_failed", DEADLINE, |e| {
        named(e, "spawn_failed").first().map(|f| f["error"].as_str().unwrap_or("").to_string())
    });
    assert!(failed.contains("app.env") && failed.contains("No such file"), "{failed}");
    assert_eq!(corral.try_exit(), None, "corral stays up and retries");
}

fn refused(args: &[&std::ffi::OsStr]) -> String {
    let out = Command::new(corral_bin()).arg("--no-ui").args(args).output().expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    stderr
}

#[test]
fn a_missing_or_malformed_file_is_a_config_error_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write(
        dir.path(),
        "app.toml",
        "[group.web]\ncommand = \"true\"\nenv-file = [\"ok.env\", \"missing.env\"]\n",
    );
    write(dir.path(), "ok.env", "A=1\n");
    let err = refused(&["--config".as_ref(), file.as_os_str()]);
    assert!(err.contains("app.toml:3:") && err.contains("missing.env"), "{err}");
    write(dir.path(), "missing.env", "A=1\n# fine\nNOT A LINE\n");
    let err = refused(&["--config".as_ref(), file.as_os_str()]);
    assert!(err.contains("missing.env:3:") && err.contains("NOT A LINE"), "{err}");
    // The command line's form, relative to where corral runs.
    let bad = dir.path().join("missing.env");
    let err = refused(&["--env-file".as_ref(), bad.as_os_str(), "--".as_ref(), "true".as_ref()]);
    assert!(err.contains("missing.env:3:"), "{err}");
}
