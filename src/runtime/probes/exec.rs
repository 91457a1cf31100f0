//! An exec probe's child: spawned like a worker (its own session and process group, the
//! parent-death signal, the worker's environment and working directory) by the backend's
//! spawner, its output read and thrown away so a chatty command never blocks on a pipe.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::backend::{self, ExecSpec};

/// Spawns the command (its output to /dev/null); its pid.
pub(super) fn spawn(argv: &[String], env: Vec<Vec<u8>>, cwd: Option<&Path>) -> Result<u32, String> {
    let Some(first) = argv.first() else { return Err("no command".into()) };
    let program =
        resolve(first, &env, cwd).ok_or_else(|| format!("cannot run {first}: not found"))?;
    let argv: Vec<OsString> = argv.iter().map(OsString::from).collect();
    let spec = ExecSpec {
        program: &program,
        argv: &argv,
        env,
        listen_pid: false,
        cwd,
        fds: &[],
        adopt_binds: None,
        // Nobody reads a probe's output: it goes to /dev/null, costing corral nothing
        // however much the command prints.
        discard_output: true,
    };
    let child = backend::spawn(&spec, None)
        .map_err(|e| format!("cannot run {first}: {}", backend::describe(&e)))?;
    Ok(child.pid)
}

/// `argv[0]` as `execvp` finds it, through the worker's `PATH` (absolute entries only).
fn resolve(program: &str, env: &[Vec<u8>], cwd: Option<&Path>) -> Option<PathBuf> {
    if program.contains('/') {
        let path = Path::new(program);
        return Some(match cwd {
            Some(dir) if path.is_relative() => dir.join(path),
            _ => path.to_path_buf(),
        });
    }
    let path_var = env.iter().rev().find_map(|e| e.strip_prefix(b"PATH="));
    let path_var = path_var.unwrap_or(b"/usr/local/bin:/usr/bin:/bin");
    std::env::split_paths(std::ffi::OsStr::from_bytes(path_var))
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use nix::unistd::{AccessFlags, access};
    path.is_file() && access(path, AccessFlags::X_OK).is_ok()
}
