//! The socket-activation variables (`LISTEN_FDS`, `LISTEN_PID`, `LISTEN_FDNAMES`), read by
//! one set of rules for corral itself (sockets systemd hands it) and for its workers
//! (sockets corral hands them): `sd_listen_fds_with_names`'s, with a bound on the count.

use std::os::fd::RawFd;

/// The first fd of the protocol (`SD_LISTEN_FDS_START`).
pub const FIRST_FD: RawFd = 3;
/// More than any unit passes; a bound on what a bad variable makes a process touch.
pub const MAX_FDS: usize = 1024;

/// What the variables announce to one process.
#[derive(Debug, PartialEq, Eq)]
pub enum Announced {
    /// No `LISTEN_FDS` or no `LISTEN_PID`, or a count of 0.
    Nothing,
    /// `LISTEN_PID` names another process: the variables were inherited from a parent that
    /// was handed the sockets. A worker takes none; corral refuses to start, since only a
    /// mistake puts them there.
    ForAnother(u32),
    /// The fds from 3 on, each with its name (`unknown` when `LISTEN_FDNAMES` is unset).
    Fds(Vec<(RawFd, String)>),
}

/// What is wrong with the variables.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ListenEnvError {
    #[error("LISTEN_FDS={0}: expected a number of sockets from 0 to {MAX_FDS}")]
    Count(String),
    #[error("LISTEN_PID={0} is not a process id")]
    Pid(String),
    #[error("LISTEN_FDNAMES has {names} names for LISTEN_FDS={count}")]
    Names { names: usize, count: usize },
}

/// Reads the variables as announced to the process `my_pid`.
pub fn parse(
    fds: Option<&str>,
    pid: Option<&str>,
    names: Option<&str>,
    my_pid: u32,
) -> Result<Announced, ListenEnvError> {
    let (Some(fds), Some(pid)) = (fds, pid) else {
        return Ok(Announced::Nothing);
    };
    let pid: u32 = pid.trim().parse().map_err(|_| ListenEnvError::Pid(pid.to_owned()))?;
    if pid != my_pid {
        return Ok(Announced::ForAnother(pid));
    }
    let count: usize = fds
        .trim()
        .parse()
        .ok()
        .filter(|n| *n <= MAX_FDS)
        .ok_or_else(|| ListenEnvError::Count(fds.to_owned()))?;
    if count == 0 {
        return Ok(Announced::Nothing);
    }
    let names: Vec<String> = match names {
        Some(names) => names.split(':').map(str::to_owned).collect(),
        None => vec!["unknown".to_owned(); count],
    };
    // As systemd: a name for each socket, or none at all.
    if names.len() != count {
        return Err(ListenEnvError::Names { names: names.len(), count });
    }
    Ok(Announced::Fds((FIRST_FD..).zip(names).collect()))
}

/// The variables of this process's environment, as announced to it.
pub fn from_env() -> Result<Announced, ListenEnvError> {
    let var = |name| std::env::var_os(name).map(|v| v.to_string_lossy().into_owned());
    parse(
        var("LISTEN_FDS").as_deref(),
        var("LISTEN_PID").as_deref(),
        var("LISTEN_FDNAMES").as_deref(),
        std::process::id(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[expect(clippy::unnecessary_wraps, reason = "compared with what `parse` answers")]
    fn fds(list: &[(RawFd, &str)]) -> Result<Announced, ListenEnvError> {
        Ok(Announced::Fds(list.iter().map(|&(fd, n)| (fd, n.to_owned())).collect()))
    }

    #[test]
    fn follows_sd_listen_fds_with_names() {
        assert_eq!(parse(None, None, None, 42), Ok(Announced::Nothing));
        assert_eq!(parse(Some("1"), None, None, 42), Ok(Announced::Nothing));
        assert_eq!(parse(Some("0"), Some("42"), None, 42), Ok(Announced::Nothing));
        assert_eq!(
            parse(Some("2"), Some("42"), Some("http:admin"), 42),
            fds(&[(3, "http"), (4, "admin")])
        );
        assert_eq!(parse(Some(" 1\n"), Some("42"), None, 42), fds(&[(3, "unknown")]));
        assert_eq!(parse(Some("2"), Some("41"), Some("a:b"), 42), Ok(Announced::ForAnother(41)));
    }

    #[test]
    fn every_mistake_names_its_variable() {
        for count in ["x", "-1", "1025", "2147483647", ""] {
            let got = parse(Some(count), Some("42"), None, 42);
            assert_eq!(got, Err(ListenEnvError::Count(count.to_owned())), "{count:?}");
        }
        assert_eq!(
            parse(Some("1"), Some("pid"), None, 42),
            Err(ListenEnvError::Pid("pid".to_owned()))
        );
        for (names, n) in [("a:b", 2), ("", 1)] {
            let got = parse(Some(if n == 2 { "1" } else { "2" }), Some("42"), Some(names), 42);
            let count = if n == 2 { 1 } else { 2 };
            assert_eq!(got, Err(ListenEnvError::Names { names: n, count }), "{names:?}");
        }
        let message = parse(Some("1"), Some("42"), Some("a:b"), 42).map_err(|e| e.to_string());
        assert_eq!(message, Err("LISTEN_FDNAMES has 2 names for LISTEN_FDS=1".to_owned()));
    }
}
