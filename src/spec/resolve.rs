//! Checks against the file system that must happen before anything starts: `--cwd` exists and
//! COMMAND resolves to an executable file (docs/config.md: a command that cannot run is a usage error).

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::unistd::{AccessFlags, access};

use crate::config::CommandSpec;

/// The workers' working directory, made absolute so it means the same wherever it is used
/// later; the error is the reason alone, for the caller to name the option.
pub(crate) fn cwd(dir: &Path) -> Result<PathBuf, String> {
    let meta = std::fs::metadata(dir).map_err(|e| reason(&e))?;
    if !meta.is_dir() {
        return Err("Not a directory".into());
    }
    std::path::absolute(dir).map_err(|e| reason(&e))
}

/// A watched path: it must exist now (a typo would otherwise watch nothing, silently);
/// made absolute against `base`; the error is the reason alone.
pub(crate) fn watch_path(path: &Path, base: &Path) -> Result<PathBuf, String> {
    let full = base.join(path);
    std::fs::metadata(&full).map_err(|e| reason(&e))?;
    std::path::absolute(&full).map_err(|e| reason(&e))
}

/// Resolves `argv[0]` as `execvp` would, except that relative `PATH` entries are skipped: the
/// worker runs in `--cwd`, so `.` in `PATH` would name a different directory there.
pub(crate) fn command(
    argv: Vec<OsString>,
    cwd: Option<&Path>,
    path_var: Option<&OsStr>,
) -> Result<CommandSpec, String> {
    let Some(command) = argv.first() else {
        return Err("missing COMMAND: expected 'corral [OPTIONS] [--] COMMAND [ARGS]...', \
                    'corral --config FILE' (no ./corral.toml or ./Procfile here), 'corral demo' or \
                    'corral completions SHELL'"
            .to_string());
    };
    if let Some(bad) = argv.iter().find(|a| a.as_bytes().contains(&0)) {
        return Err(format!("argument '{}' contains a NUL byte", bad.to_string_lossy()));
    }
    let cannot = |why: &str| format!("cannot run '{}': {why}", command.to_string_lossy());
    if command.is_empty() {
        return Err(cannot("expected a program name or path"));
    }
    let program = if command.as_bytes().contains(&b'/') {
        let typed = Path::new(command);
        let path = match cwd {
            Some(dir) if typed.is_relative() => dir.join(typed),
            _ => typed.to_path_buf(),
        };
        executable(&path).map_err(|e| cannot(&reason(&e)))?;
        // Absolute, so the spawn cannot read it relative to the worker's `--cwd` instead.
        std::path::absolute(&path).map_err(|e| cannot(&reason(&e)))?
    } else {
        search_path(command, path_var).map_err(|e| cannot(&reason(&e)))?
    };
    if let Some(interpreter) = interpreter(&program) {
        executable(&interpreter).map_err(|e| {
            cannot(&format!("its #! interpreter {}: {}", interpreter.display(), reason(&e)))
        })?;
    }
    let display = argv.iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" ");
    Ok(CommandSpec { program, argv, display })
}

/// The interpreter a script names on its `#!` line, when it is an absolute path (what
/// the kernel runs; a missing one makes every start fail with ENOENT, as if the script
/// itself were missing). `None` for a binary or a file corral cannot read.
fn interpreter(program: &Path) -> Option<PathBuf> {
    use std::io::Read as _;
    let mut head = [0u8; 256];
    let mut file = std::fs::File::open(program).ok()?;
    let n = file.read(&mut head).ok()?;
    let line = head[..n].strip_prefix(b"#!")?;
    let line = &line[..memchr::memchr(b'\n', line)?];
    let path = line.split(|b| *b == b' ' || *b == b'\t').find(|w| !w.is_empty())?;
    let path = Path::new(OsStr::from_bytes(path));
    path.is_absolute().then(|| path.to_path_buf())
}

/// glibc's `execvp` default when `PATH` is unset.
const DEFAULT_PATH: &str = "/bin:/usr/bin";

fn search_path(name: &OsStr, path_var: Option<&OsStr>) -> io::Result<PathBuf> {
    let path_var = path_var.unwrap_or(OsStr::new(DEFAULT_PATH));
    // As `execvp`: a file found but not runnable is reported over "not found".
    let mut first_denial = None;
    for dir in std::env::split_paths(path_var).filter(|d| d.is_absolute()) {
        let candidate = dir.join(name);
        match executable(&candidate) {
            Ok(()) => return Ok(candidate),
            Err(e) if e.kind() == io::ErrorKind::NotFound || is_not_dir(&e) => {}
            Err(e) => {
                first_denial.get_or_insert(e);
            }
        }
    }
    Err(first_denial.unwrap_or_else(|| io::Error::from(io::ErrorKind::NotFound)))
}

fn is_not_dir(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::ENOTDIR)
}

fn executable(path: &Path) -> io::Result<()> {
    let meta = std::fs::metadata(path)?;
    if meta.is_dir() {
        return Err(io::Error::from_raw_os_error(libc::EISDIR));
    }
    if !meta.is_file() {
        return Err(io::Error::from_raw_os_error(libc::EACCES));
    }
    let c_path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // WHY: access() rather than mode bits: it applies our uid and groups (and root's rule
    // that any x bit will do), which is what execve will check.
    Ok(access(c_path.as_c_str(), AccessFlags::X_OK)?)
}

/// The OS reason without std's ` (os error 2)` suffix, for messages read by people.
fn reason(e: &io::Error) -> String {
    if e.kind() == io::ErrorKind::NotFound {
        return "No such file or directory".to_string();
    }
    let text = e.to_string();
    match text.rfind(" (os error ") {
        Some(end) => text[..end].to_string(),
        None => text,
    }
}
