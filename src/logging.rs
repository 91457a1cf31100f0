//! corral's own diagnostics (not worker output, not events), at a level set by `-v`/`-q`
//! or by `RUST_LOG` when it is set. Headless: to stderr. With the dashboard: to a log file
//! (the screen belongs to the dashboard), `$XDG_STATE_HOME/corral/corral.log`, private to
//! the user (0600 in a 0700 directory), never opened through a symbolic link, and rotated
//! past a few MiB (`capped`).

mod capped;

use std::ffi::{CString, OsStr};
use std::fs::{DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl, openat};
use nix::sys::stat::Mode;
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;

/// Where diagnostics go while the dashboard is on.
pub fn log_path() -> Option<PathBuf> {
    let state = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))?;
    Some(state.join("corral").join("corral.log"))
}

fn level(verbosity: i8) -> LevelFilter {
    match verbosity {
        i8::MIN..=-2 => LevelFilter::OFF,
        -1 => LevelFilter::ERROR,
        0 => LevelFilter::WARN,
        1 => LevelFilter::INFO,
        2..=i8::MAX => LevelFilter::DEBUG,
    }
}

/// `verbosity`: 0 = warnings, 1 = info, 2+ = debug; -1 = errors only, -2 and below = off.
/// With `to_file`, the returned guard must live as long as logging should be flushed.
pub fn init(verbosity: i8, to_file: bool) -> Option<WorkerGuard> {
    // The dashboard's log file keeps corral's decisions (spawns, exits and why) by default:
    // a file costs the screen nothing, and it is where a person looks after a crash.
    let verbosity = if to_file && verbosity == 0 { 1 } else { verbosity };
    let filter = if std::env::var_os("RUST_LOG").is_some() {
        EnvFilter::from_default_env()
    } else {
        // notify's own warnings (a removed directory's watch "not found", one line per
        // directory of a deleted tree) are not corral's to show: the watcher says what
        // matters itself (docs/development.md), once. Its errors still pass.
        let quiet_notify = "notify=error".parse().ok();
        let filter = EnvFilter::default().add_directive(level(verbosity).into());
        match quiet_notify {
            Some(directive) if verbosity < 2 => filter.add_directive(directive),
            _ => filter,
        }
    };
    if to_file {
        let Some(path) = log_path() else {
            eprintln!("corral: diagnostics are not kept: neither XDG_STATE_HOME nor HOME is set");
            return None;
        };
        let file = match open_log(&path).and_then(|file| capped(&path, file)) {
            Ok(file) => file,
            Err(e) => {
                // Before the dashboard takes the screen: the line is there when it is gone.
                let shown = crate::text::escape(&path.to_string_lossy(), false);
                let reason = crate::backend::describe(&e);
                eprintln!("corral: diagnostics are not kept: cannot open {shown}: {reason}");
                return None;
            }
        };
        let (writer, guard) = tracing_appender::non_blocking(file);
        let result = tracing_subscriber::fmt()
            .with_writer(writer)
            .with_ansi(false)
            .with_env_filter(filter)
            .try_init();
        return result.ok().map(|()| guard);
    }
    let result = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .with_env_filter(filter)
        .try_init();
    drop(result); // already initialised (a test harness): keep that subscriber
    None
}

/// `file`, opened at `path` by [`open_log`], as a file that rotates past its cap.
fn capped(path: &Path, file: File) -> io::Result<capped::CappedLog> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    };
    let dir = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
        .open(dir)?;
    capped::CappedLog::new(dir, name, file, capped::CAP)
}

/// Opens (creating) the log file at `path` for appending, as only its owner may read it:
/// missing directories are made 0700, a new file 0600 and an old one set to 0600. A
/// symbolic link as the file or as its directory, or a file that is not a regular file, is
/// refused (`ELOOP`, `ENOTDIR`, `EINVAL`): someone else may have planted it.
pub fn open_log(path: &Path) -> io::Result<File> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    };
    DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    let dir = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
        .open(dir)?;
    let (file, created) = open_in(&dir, name, 0o600)?;
    if !created && file.metadata()?.permissions().mode() & 0o077 != 0 {
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(file)
}

/// Opens the file `name` in the open directory `dir` for appending, creating it with
/// exactly `mode` (whatever the umask) if it does not exist; says whether it did. A
/// symbolic link at `name` is never followed (`ELOOP`), and anything but a regular file
/// (a FIFO, a device) is refused without blocking, with an error that says what it is.
pub fn open_in(dir: &File, name: &OsStr, mode: u32) -> io::Result<(File, bool)> {
    let name = CString::new(name.as_bytes())?;
    // WHY: O_NONBLOCK so that a FIFO planted at the path fails or opens at once instead of
    // blocking until someone reads it; it changes nothing for a regular file.
    let flags = OFlag::O_WRONLY
        | OFlag::O_APPEND
        | OFlag::O_NOFOLLOW
        | OFlag::O_CLOEXEC
        | OFlag::O_NONBLOCK;
    let excl = flags | OFlag::O_CREAT | OFlag::O_EXCL;
    // WHY O_EXCL first: only a file made now gets `mode`; one that was there keeps its
    // owner's choice. A file removed between the two tries is simply made on the next.
    let mut tries = 0;
    let (fd, created) = loop {
        tries += 1;
        match openat(dir, name.as_c_str(), excl, Mode::from_bits_retain(mode)) {
            Ok(fd) => break (fd, true),
            Err(Errno::EEXIST) => {}
            Err(error) => return Err(error.into()),
        }
        match openat(dir, name.as_c_str(), flags, Mode::empty()) {
            Ok(fd) => break (fd, false),
            Err(Errno::ENOENT) if tries < 3 => {}
            // A FIFO without a reader answers ENXIO ("No such device or address"), which
            // says nothing of what is in the way; say what was found.
            Err(error) => return Err(in_the_way(dir, &name).unwrap_or_else(|| error.into())),
        }
    };
    let file = File::from(fd);
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(
            in_the_way(dir, &name).unwrap_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))
        );
    }
    if created && meta.permissions().mode() & 0o7777 != mode {
        // The umask took bits away.
        file.set_permissions(std::fs::Permissions::from_mode(mode))?;
    }
    // The flags it has minus O_NONBLOCK.
    fcntl(&file, FcntlArg::F_SETFL(OFlag::O_APPEND))?;
    Ok((file, created))
}

/// What sits at `name` in `dir` when it is not a regular file (a FIFO, a device, a
/// socket, a directory), as an error that says so.
fn in_the_way(dir: &File, name: &CString) -> Option<io::Error> {
    use nix::sys::stat::{SFlag, fstatat};
    let stat = fstatat(dir, name.as_c_str(), nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW).ok()?;
    let kind = SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT;
    let what = match kind {
        // A link is refused as ELOOP, which already says what it is.
        SFlag::S_IFREG | SFlag::S_IFLNK => return None,
        SFlag::S_IFIFO => "a FIFO",
        SFlag::S_IFCHR | SFlag::S_IFBLK => "a device",
        SFlag::S_IFSOCK => "a socket",
        SFlag::S_IFDIR => "a directory",
        _ => "not a regular file",
    };
    Some(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{what} is in the way, not a regular file"),
    ))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{FileTypeExt, symlink};

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::symlink_metadata(path).expect("stat").permissions().mode() & 0o777
    }

    #[test]
    fn a_new_log_is_private_to_its_owner() {
        let state = tempfile::tempdir().expect("tempdir");
        let path = state.path().join("new/corral/corral.log");
        let mut file = open_log(&path).expect("open");
        io::Write::write_all(&mut file, b"one\n").expect("write");
        drop(file);
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&state.path().join("new/corral")), 0o700);
        assert_eq!(mode(&state.path().join("new")), 0o700);
        let mut again = open_log(&path).expect("open again");
        io::Write::write_all(&mut again, b"two\n").expect("write");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "one\ntwo\n", "appends");

        let old = state.path().join("old.log");
        std::fs::write(&old, "x").expect("write");
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        drop(open_log(&old).expect("open an old log"));
        assert_eq!(mode(&old), 0o600, "an old world-readable log is made private");
    }

    #[test]
    fn a_planted_link_or_fifo_is_refused_and_left_alone() {
        let state = tempfile::tempdir().expect("tempdir");
        let target = state.path().join("victim");
        std::fs::write(&target, "precious").expect("write");
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let dir = state.path().join("corral");
        std::fs::create_dir(&dir).expect("mkdir");
        let link = dir.join("corral.log");
        symlink(&target, &link).expect("symlink");
        let err = open_log(&link).expect_err("a symlink is not followed");
        assert_eq!(err.raw_os_error(), Some(libc::ELOOP), "{err}");
        assert_eq!(std::fs::read_to_string(&target).expect("read"), "precious");
        assert_eq!(mode(&target), 0o644);

        let linked_dir = state.path().join("linked");
        symlink(&dir, &linked_dir).expect("symlink a directory");
        assert!(open_log(&linked_dir.join("other.log")).is_err(), "nor a linked directory");
        assert!(!dir.join("other.log").exists());

        let fifo = dir.join("fifo.log");
        nix::unistd::mkfifo(&fifo, Mode::from_bits_retain(0o600)).expect("mkfifo");
        assert!(open_log(&fifo).is_err(), "a FIFO is refused, without blocking");
        assert!(std::fs::symlink_metadata(&fifo).expect("stat").file_type().is_fifo());
    }
}
