//! What the test worker tells a test about itself: the `--marker` line (pid and
//! generation) and the `--report` of its process: ids, signal masks, open fds, the corral
//! variables, stdin and cwd, read from /proc.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

use serde_json::{Map, Value, json};

/// `--marker`: appends `<pid> <CORRAL_GENERATION>` and a newline to `path`.
pub fn write_marker(path: &Path) -> io::Result<()> {
    let generation = std::env::var("CORRAL_GENERATION").unwrap_or_else(|_| "-".to_string());
    let line = format!("{} {generation}\n", std::process::id());
    // One write to an O_APPEND file: lines of concurrent workers never interleave.
    OpenOptions::new().create(true).append(true).open(path)?.write_all(line.as_bytes())
}

/// `--report`: writes the JSON report to `path`, atomically.
pub fn write_report(path: &Path) -> io::Result<()> {
    let status = fs::read_to_string("/proc/self/status")?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .map_or_else(String::new, |value| value.trim().to_string())
    };
    let stat = crate::backend::ProcStat::parse(&fs::read_to_string("/proc/self/stat")?)
        .ok_or_else(|| io::Error::other("unparseable /proc/self/stat"))?;
    let fds = open_fds()?;
    let stdin_is_devnull = fds.iter().any(|(fd, target)| *fd == 0 && target == "/dev/null");
    let report = json!({
        "pid": std::process::id(),
        "ppid": stat.ppid,
        "pgid": stat.pgrp,
        "sid": stat.session,
        "sigblk": field("SigBlk:"),
        "sigign": field("SigIgn:"),
        "fds": fds.iter().map(|(fd, target)| json!({"fd": fd, "target": target})).collect::<Vec<_>>(),
        "env": reported_env(),
        "stdin_is_devnull": stdin_is_devnull,
        "cwd": std::env::current_dir()?.to_string_lossy(),
    });
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    fs::write(&tmp, serde_json::to_vec_pretty(&report)?)?;
    // A reader never sees a half-written report.
    fs::rename(&tmp, path)
}

/// The variables corral sets for a worker (and the test token), nothing else.
fn reported_env() -> Map<String, Value> {
    std::env::vars_os()
        .map(|(key, value)| (key.to_string_lossy().into_owned(), value))
        .filter(|(key, _)| {
            ["CORRAL_", "LISTEN_", "NODE_CHANNEL"].iter().any(|prefix| key.starts_with(prefix))
        })
        .map(|(key, value)| (key, Value::String(value.to_string_lossy().into_owned())))
        .collect()
}

/// Every open fd of this process and what it points to, sorted by fd.
fn open_fds() -> io::Result<Vec<(i32, String)>> {
    let names = fs::read_dir("/proc/self/fd")?
        .map(|entry| entry.map(|e| e.file_name()))
        .collect::<io::Result<Vec<_>>>()?;
    // The directory iterator's own fd is among `names` but is closed by now, so its
    // readlink fails with ENOENT: that is how it is told apart from the fds we were given.
    let mut fds = Vec::new();
    for name in names {
        let Ok(fd) = name.to_string_lossy().parse::<i32>() else {
            continue;
        };
        match fs::read_link(format!("/proc/self/fd/{fd}")) {
            Ok(target) => fds.push((fd, target.to_string_lossy().into_owned())),
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(error),
        }
    }
    fds.sort();
    Ok(fds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_fds_lists_real_fds_and_not_its_own() {
        let file = tempfile::NamedTempFile::new().expect("temp file");
        let fds = open_fds().expect("read /proc/self/fd");
        let path = file.path().to_string_lossy().into_owned();
        assert!(fds.iter().any(|(_, target)| *target == path), "{fds:?} lacks {path}");
        assert!(
            fds.iter().all(|(_, target)| !target.ends_with("/fd")),
            "the iterator's own fd leaked into {fds:?}"
        );
    }
}
