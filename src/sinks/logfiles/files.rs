//! The log files themselves, on the writer thread: one open file per log, opened when its
//! first batch comes, rotated before a batch that falls in a new period, pruned after each
//! rotation, reopened on request. The decisions are `rotation`'s; this is the I/O.

use std::collections::HashMap;
use std::ffi::{CString, OsStr};
use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, ErrorKind, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use nix::errno::Errno;
use nix::fcntl::{AT_FDCWD, RenameFlags, renameat2};

use super::rotation::{self, Found, Period, Rotation};
use crate::core::WorkerKey;
use crate::sinks::lossless::Sink;

/// Log files are readable by the owner's group (an operator, a log shipper), nobody else.
pub const FILE_MODE: u32 = 0o640;
/// The mode of a log directory corral creates.
pub const DIR_MODE: u32 = 0o750;

/// Which log a batch is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LogId {
    /// `corral.log`: corral's own events.
    Corral,
    /// `<group>.<slot>.log`: one slot's output, every generation.
    Worker(WorkerKey),
}

/// Rotated copies of one log with the same date (`web.2.2026-12-01.N.log`) at most.
const MAX_SAME_LABEL: u32 = 10_000;

/// The clock rotation reads: the system's, or a test's.
pub type Clock = Box<dyn Fn() -> SystemTime + Send>;

struct Open {
    file: File,
    rotation: Rotation,
}

pub struct FileSink {
    dir: PathBuf,
    keep: u32,
    period: Period,
    /// Group names, indexed as `WorkerKey::group`.
    names: Vec<String>,
    clock: Clock,
    open: HashMap<LogId, Open>,
}

impl FileSink {
    pub fn new(dir: PathBuf, keep: u32, period: Period, names: Vec<String>, clock: Clock) -> Self {
        FileSink { dir, keep, period, names, clock, open: HashMap::new() }
    }

    /// `web.2`, `corral`: the log's file name without `.log`, and its rotated copies'
    /// prefix.
    fn prefix(&self, id: LogId) -> String {
        match id {
            LogId::Corral => "corral".to_string(),
            LogId::Worker(key) => key.id(&self.names).to_string(),
        }
    }

    pub fn path(&self, id: LogId) -> PathBuf {
        self.dir.join(format!("{}.log", self.prefix(id)))
    }

    /// Opens the log directory, creating it (mode 0750, parents as needed) if it is
    /// missing: at start, and again if someone removed it meanwhile.
    pub fn open_dir(&self) -> io::Result<File> {
        match open_dir(&self.dir) {
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            other => return other,
        }
        if let Some(parent) = self.dir.parent() {
            create_parents(parent)?;
        }
        let created = match DirBuilder::new().mode(DIR_MODE).create(&self.dir) {
            Ok(()) => true,
            Err(e) if e.kind() == ErrorKind::AlreadyExists => false,
            Err(e) => return Err(e),
        };
        let dir = open_dir(&self.dir)?;
        if created {
            // The umask took bits away; a directory that was there keeps its mode.
            dir.set_permissions(std::fs::Permissions::from_mode(DIR_MODE))?;
        }
        Ok(dir)
    }

    /// Opens `id`'s log now, unless it is open: a file left from an earlier period is
    /// rotated first, one from this period appended to.
    pub fn open(&mut self, id: LogId) -> io::Result<()> {
        if self.open.contains_key(&id) {
            return Ok(());
        }
        let dir = self.open_dir()?;
        let prefix = self.prefix(id);
        let name = format!("{prefix}.log");
        let (mut file, created) = crate::logging::open_in(&dir, OsStr::new(&name), FILE_MODE)?;
        let now = (self.clock)();
        if !created {
            let meta = file.metadata()?;
            let modified = meta.modified().unwrap_or(now);
            if let Found::Rotate(label) = rotation::on_open(self.period, meta.len(), modified, now)
            {
                drop(file);
                self.rotate(&prefix, &label)?;
                file = crate::logging::open_in(&dir, OsStr::new(&name), FILE_MODE)?.0;
            }
        }
        self.open.insert(id, Open { file, rotation: Rotation::opened(self.period, now) });
        Ok(())
    }

    /// Renames `prefix.log` to its first free rotated name under `label`, then prunes.
    fn rotate(&self, prefix: &str, label: &str) -> io::Result<()> {
        let current = self.dir.join(format!("{prefix}.log"));
        for n in 0..=MAX_SAME_LABEL {
            let target = self.dir.join(rotation::rotated_name(prefix, label, n));
            match rename_noreplace(&current, &target) {
                // Gone already (moved by someone else): nothing to rename.
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
                Ok(()) => {
                    self.prune(prefix);
                    return Ok(());
                }
            }
        }
        Err(io::Error::from(ErrorKind::AlreadyExists))
    }

    /// Deletes the rotated copies of `prefix` beyond the newest `--log-keep`. A failure
    /// is reported and left for the next rotation: it never holds output back.
    fn prune(&self, prefix: &str) {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) => {
                tracing::warn!("cannot list {} to prune old logs: {e}", self.dir.display());
                return;
            }
        };
        let names: Vec<String> = entries
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        for name in rotation::to_prune(prefix, names.iter().map(String::as_str), self.keep) {
            let path = self.dir.join(&name);
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != ErrorKind::NotFound => {
                    tracing::warn!("cannot remove the old log {}: {e}", path.display());
                }
                _ => tracing::debug!("removed the old log {}", path.display()),
            }
        }
    }

    /// Someone deleted `id`'s current file (`rm web.2.log`): lines written to it now would
    /// be lost to anyone reading the directory, so it is closed, to be made again at its
    /// name. (A file moved away, as logrotate does, still has its name elsewhere: that is
    /// SIGUSR1's business.)
    fn forget_if_deleted(&mut self, id: LogId) {
        let deleted = self.open.get(&id).and_then(|o| o.file.metadata().ok());
        if deleted.is_some_and(|m| m.nlink() == 0) {
            tracing::warn!("log file {} was deleted: making it again", self.path(id).display());
            self.open.remove(&id);
        }
    }

    /// Rotates `id`'s open file if its period is over.
    fn rotate_if_due(&mut self, id: LogId) -> io::Result<()> {
        let now = (self.clock)();
        let Some(open) = self.open.get(&id) else { return Ok(()) };
        let Some(label) = open.rotation.due(now) else { return Ok(()) };
        let path = self.path(id);
        // WHY the check: if an outside logrotate moved the file away (and made a new one),
        // the name no longer is ours to rename; writing on at the name is what it wants.
        let ours =
            std::fs::symlink_metadata(&path).ok().zip(open.file.metadata().ok()).is_some_and(
                |(at_path, open)| (at_path.dev(), at_path.ino()) == (open.dev(), open.ino()),
            );
        self.open.remove(&id);
        if ours {
            self.rotate(&self.prefix(id), &label)?;
        }
        Ok(())
    }
}

impl Sink for FileSink {
    type Dest = LogId;

    fn begin(&mut self, id: &LogId) -> io::Result<()> {
        self.forget_if_deleted(*id);
        self.rotate_if_due(*id)?;
        self.open(*id)
    }

    fn write(&mut self, id: &LogId, bytes: &[u8]) -> io::Result<usize> {
        // Open already, unless a reopen in the middle of a batch failed.
        self.open(*id)?;
        match self.open.get_mut(id) {
            Some(open) => open.file.write(bytes),
            None => Err(io::Error::from(ErrorKind::NotFound)),
        }
    }

    fn flush(&mut self, _: &LogId) -> io::Result<()> {
        Ok(()) // a File has no buffer of its own
    }

    /// Closes every file and opens each again at its name: after an outside rotation
    /// moved them away, new lines go to new files.
    fn reopen(&mut self) {
        let ids: Vec<LogId> = self.open.keys().copied().collect();
        self.open.clear();
        for id in ids {
            if let Err(e) = self.open(id) {
                // Said here; the next batch for it tries again (and says so if it fails).
                tracing::error!(
                    "cannot reopen log file {}: {}",
                    self.path(id).display(),
                    crate::backend::describe(&e)
                );
            }
        }
    }

    fn name(&self, id: &LogId) -> String {
        format!("log file {}", self.path(*id).display())
    }
}

/// Creates the missing directories of `path`, each with mode 0750 whatever the umask (as
/// the log directory itself); those already there are left as they are.
fn create_parents(path: &Path) -> io::Result<()> {
    let missing: Vec<&Path> = path
        .ancestors()
        .take_while(|p| !p.as_os_str().is_empty() && std::fs::symlink_metadata(p).is_err())
        .collect();
    for dir in missing.into_iter().rev() {
        match DirBuilder::new().mode(DIR_MODE).create(dir) {
            Ok(()) => std::fs::set_permissions(dir, std::fs::Permissions::from_mode(DIR_MODE))?,
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn open_dir(dir: &Path) -> io::Result<File> {
    // WHY following a link here: DIR is the operator's own choice (`/var/log/app` may well
    // be a link to a bigger disk); only the files in it are never opened through one.
    OpenOptions::new().read(true).custom_flags(libc::O_DIRECTORY).open(dir)
}

/// `rename(from, to)`, failing with `AlreadyExists` instead of replacing `to`.
fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    let c = |p: &Path| CString::new(p.as_os_str().as_bytes());
    let (from_c, to_c) = (c(from)?, c(to)?);
    let flags = RenameFlags::RENAME_NOREPLACE;
    match renameat2(AT_FDCWD, from_c.as_c_str(), AT_FDCWD, to_c.as_c_str(), flags) {
        Ok(()) => Ok(()),
        // WHY: a filesystem without RENAME_NOREPLACE (some network ones). Check, then
        // rename: the directory is corral's, nobody else rotates in it at this moment.
        Err(Errno::EINVAL | Errno::ENOSYS) => {
            if std::fs::symlink_metadata(to).is_ok() {
                return Err(io::Error::from(ErrorKind::AlreadyExists));
            }
            std::fs::rename(from, to)
        }
        Err(error) => Err(error.into()),
    }
}
