//! `--log-dir` when someone else touches it: a deleted file, a second corral, a FIFO, a
//! strict umask.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::util::{Corral, DEADLINE, wait_until};

const TICKING: &str = "while :; do echo tick; sleep 0.05; done";

fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path).map_or(0, |t| t.lines().count())
}

#[test]
fn a_deleted_log_file_is_made_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = dir.path().join("logs");
    let logs_arg = logs.to_str().expect("UTF-8");
    let mut corral =
        Corral::start(&["-n", "web", "-w", "1", "--log-dir", logs_arg, "--", "sh", "-c", TICKING]);
    let file = logs.join("web.1.log");
    assert!(wait_until(DEADLINE, || lines(&file) >= 3), "no lines in {}", file.display());
    std::fs::remove_file(&file).expect("rm");
    // Before: every line went to the deleted inode until SIGUSR1.
    let again = wait_until(DEADLINE, || lines(&file) >= 3);
    assert!(again, "{} was not made again\n{}", file.display(), corral.dump());
    assert!(corral.stderr().contains("was deleted: making it again"), "{}", corral.stderr());
    corral.signal(libc::SIGTERM);
    assert!(corral.wait_exit(DEADLINE).success());
}

#[test]
fn a_second_corral_on_the_same_log_dir_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = dir.path().to_str().expect("UTF-8");
    let mut first =
        Corral::start(&["-I", "one", "-w", "1", "--log-dir", logs, "--", "sleep", "1000"]);
    first.wait_spawned(1);
    let mut second =
        Corral::start(&["-I", "two", "-w", "1", "--log-dir", logs, "--", "sleep", "1000"]);
    let status = second.wait_exit(DEADLINE);
    let stderr = second.stderr();
    assert_eq!(status.code(), Some(2), "{stderr}");
    let holder = format!("is in use by another corral (pid {})", first.pid());
    assert!(stderr.contains(&holder) && stderr.lines().count() == 1, "{stderr}");
    first.signal(libc::SIGTERM);
    assert!(first.wait_exit(DEADLINE).success());
}

#[test]
fn a_fifo_in_the_log_dir_is_named_for_what_it_is() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fifo = dir.path().join("corral.log");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
    let logs = dir.path().to_str().expect("UTF-8");
    let mut corral = Corral::start(&["-w", "1", "--log-dir", logs, "--", "sleep", "1000"]);
    let status = corral.wait_exit(DEADLINE);
    let stderr = corral.stderr();
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("corral.log: a FIFO is in the way, not a regular file"), "{stderr}");
}

#[test]
fn parents_of_the_log_dir_are_made_0750_under_umask_077() {
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = dir.path().join("var/log/shop");
    let args = ["-w", "1", "--log-dir", logs.to_str().expect("UTF-8"), "--", "sleep", "1000"];
    let mut corral = Corral::start_with_umask(&args, 0o077);
    corral.wait_spawned(1);
    for made in [dir.path().join("var"), dir.path().join("var/log"), logs] {
        let mode = std::fs::metadata(&made).expect("made").permissions().mode() & 0o7777;
        assert_eq!(mode, 0o750, "{}", made.display());
    }
    corral.signal(libc::SIGTERM);
    assert!(corral.wait_exit(DEADLINE).success());
}
