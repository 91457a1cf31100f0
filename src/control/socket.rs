//! The control socket's file: made private (0600 in a directory nobody else can write), a
//! stale one from a dead corral replaced, a live one refused, and removed at exit if it is
//! still ours.

use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use nix::sys::socket::getsockopt;
use nix::sys::socket::sockopt::PeerCredentials;
use nix::unistd::geteuid;

#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    #[error(
        "instance '{instance}' is already running (pid {pid}), with the socket {}: name this one with -I NAME (or --no-control)",
        .path.display()
    )]
    Running { instance: String, pid: i32, path: PathBuf },
    #[error("cannot serve the control socket {}: {reason}", .path.display())]
    Cannot { path: PathBuf, reason: String },
}

/// The bound socket; dropping it removes its file.
#[derive(Debug)]
pub struct ControlSocket {
    pub listener: UnixListener,
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl ControlSocket {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        let ours = std::fs::symlink_metadata(&self.path)
            .is_ok_and(|m| m.file_type().is_socket() && m.dev() == self.dev && m.ino() == self.ino);
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

pub fn bind(path: &Path, instance: &str) -> Result<ControlSocket, SocketError> {
    let cannot = |reason: String| SocketError::Cannot { path: path.to_path_buf(), reason };
    let describe = |e: &io::Error| crate::backend::describe(e);
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| cannot(format!("cannot create {}: {}", dir.display(), describe(&e))))?;
    check_dir(dir).map_err(cannot)?;
    match std::fs::symlink_metadata(path) {
        Ok(meta) if !meta.file_type().is_socket() => {
            return Err(cannot("a file that is not a socket is in the way".into()));
        }
        Ok(meta) => match UnixStream::connect(path) {
            Ok(live) => {
                let pid = peer_pid(&live).unwrap_or(0);
                return Err(SocketError::Running {
                    instance: instance.to_string(),
                    pid,
                    path: path.to_path_buf(),
                });
            }
            Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => {
                // Left by a corral that died without removing it; still the same file?
                let same = std::fs::symlink_metadata(path)
                    .is_ok_and(|m| m.dev() == meta.dev() && m.ino() == meta.ino());
                if same {
                    std::fs::remove_file(path).map_err(|e| cannot(describe(&e)))?;
                }
            }
            Err(e) => return Err(cannot(describe(&e))),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(cannot(describe(&e))),
    }
    let listener = UnixListener::bind(path).map_err(|e| cannot(describe(&e)))?;
    // The directory already keeps others out; the mode says so to anyone who looks.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| cannot(describe(&e)))?;
    let meta = std::fs::symlink_metadata(path).map_err(|e| cannot(describe(&e)))?;
    listener.set_nonblocking(true).map_err(|e| cannot(describe(&e)))?;
    Ok(ControlSocket { listener, path: path.to_path_buf(), dev: meta.dev(), ino: meta.ino() })
}

/// Someone else's directory, or one others may write in, could swap the socket under us
/// (`/tmp/corral-UID` made by another user first, say).
fn check_dir(dir: &Path) -> Result<(), String> {
    let meta = std::fs::symlink_metadata(dir).map_err(|e| crate::backend::describe(&e))?;
    if !meta.is_dir() {
        return Err(format!("{} is not a directory", dir.display()));
    }
    if meta.uid() != geteuid().as_raw() {
        return Err(format!("{} belongs to uid {}, not to this user", dir.display(), meta.uid()));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(format!(
            "{} is writable by others (mode {:o})",
            dir.display(),
            meta.mode() & 0o777
        ));
    }
    Ok(())
}

/// The pid of the process at the other end (`SO_PEERCRED`).
pub fn peer_pid(stream: &UnixStream) -> Option<i32> {
    getsockopt(stream, PeerCredentials).ok().map(|cred| cred.pid())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_socket_is_refused_a_stale_one_replaced_and_ours_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("run/corral/shop.sock");
        let first = bind(&path, "shop").expect("bind");
        let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().expect("dir")), 0o700);
        let err = bind(&path, "shop").expect_err("live");
        let want = format!("instance 'shop' is already running (pid {})", std::process::id());
        assert!(err.to_string().starts_with(&want), "{err}");
        drop(first);
        assert!(!path.exists(), "removed at drop");

        drop(UnixListener::bind(&path).expect("a dead corral's socket"));
        let again = bind(&path, "shop").expect("stale replaced");
        drop(again);

        std::fs::write(&path, "data").expect("write");
        assert!(bind(&path, "shop").is_err(), "a regular file is not ours to remove");
        assert_eq!(std::fs::read_to_string(&path).expect("intact"), "data");
    }

    #[test]
    fn a_directory_others_can_write_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let open = dir.path().join("open");
        std::fs::create_dir(&open).expect("mkdir");
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        let err = bind(&open.join("x.sock"), "x").expect_err("unsafe dir");
        assert!(err.to_string().contains("writable by others"), "{err}");
    }
}
