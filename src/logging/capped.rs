//! The dashboard's diagnostics file, bounded: past [`CAP`] bytes it becomes `NAME.1`
//! (replacing the one before) and a new file is begun, so a crash loop left running for a
//! week under the dashboard fills at most twice the cap, not the disk.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;

use super::open_in;

/// Bytes a diagnostics file grows to before it is rotated.
pub const CAP: u64 = 8 << 20;

pub struct CappedLog {
    dir: File,
    name: OsString,
    file: File,
    written: u64,
    cap: u64,
}

impl CappedLog {
    /// `file` is `name` in `dir`, open for appending (by `open_in`); one already at the cap
    /// is rotated now.
    pub fn new(dir: File, name: &OsStr, file: File, cap: u64) -> io::Result<CappedLog> {
        let written = file.metadata()?.len();
        let mut log = CappedLog { dir, name: name.to_owned(), file, written, cap };
        if log.written >= cap {
            log.rotate();
        }
        Ok(log)
    }

    /// `NAME` → `NAME.1`, and a new `NAME`. Should either fail, the file is emptied instead:
    /// older lines are lost rather than the disk filled.
    fn rotate(&mut self) {
        let mut old = self.name.clone();
        old.push(".1");
        let renamed =
            nix::fcntl::renameat(&self.dir, self.name.as_bytes(), &self.dir, old.as_bytes());
        let reopened =
            renamed.map_err(io::Error::from).and_then(|()| open_in(&self.dir, &self.name, 0o600));
        match reopened {
            Ok((file, _)) => self.file = file,
            Err(_) => {
                let _ = self.file.set_len(0);
            }
        }
        self.written = 0;
    }
}

impl Write for CappedLog {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.written > 0 && self.written + buf.len() as u64 > self.cap {
            self.rotate();
        }
        let n = self.file.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use std::fs::OpenOptions;
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;

    use super::{CappedLog, open_in};

    #[test]
    fn past_the_cap_the_file_becomes_dot_1_and_a_new_one_begins() {
        let state = tempfile::tempdir().expect("tempdir");
        let open_dir = || {
            OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_DIRECTORY)
                .open(state.path())
                .expect("open dir")
        };
        let name = std::ffi::OsStr::new("corral.log");
        let (file, _) = open_in(&open_dir(), name, 0o600).expect("open");
        let mut log = CappedLog::new(open_dir(), name, file, 100).expect("capped");
        // As tracing writes: one line per call.
        for i in 0..50 {
            log.write_all(format!("line {i:02} of the diagnostics\n").as_bytes()).expect("write");
        }
        let read = |n: &str| std::fs::read_to_string(state.path().join(n)).unwrap_or_default();
        let (now, before) = (read("corral.log"), read("corral.log.1"));
        assert!(
            now.len() <= 100 && before.len() <= 100,
            "{} and {} bytes",
            now.len(),
            before.len()
        );
        assert!(now.ends_with("line 49 of the diagnostics\n"), "{now}");
        assert!(
            before.ends_with(&format!("line {:02} of the diagnostics\n", 49 - now.lines().count()))
        );
        // A file found over the cap at start is rotated before anything is written.
        let (file, _) = open_in(&open_dir(), name, 0o600).expect("open");
        std::fs::write(state.path().join("corral.log"), "x".repeat(150)).expect("fill");
        let mut log = CappedLog::new(open_dir(), name, file, 100).expect("capped");
        log.write_all(b"fresh\n").expect("write");
        assert_eq!(read("corral.log"), "fresh\n");
        assert_eq!(read("corral.log.1").len(), 150);
    }
}
