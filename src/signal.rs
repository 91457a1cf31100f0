//! Signal numbers and their names: parsing `TERM`, `SIGINT`, `2` and printing `SIGSEGV`.
//! Pure data; sending signals is the backend's job.

use std::fmt;

/// A POSIX signal number, printed by name (`SIGSEGV`), never as `128 + n`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Signal(pub i32);

const NAMES: &[(i32, &str)] = &[
    (libc::SIGHUP, "SIGHUP"),
    (libc::SIGINT, "SIGINT"),
    (libc::SIGQUIT, "SIGQUIT"),
    (libc::SIGILL, "SIGILL"),
    (libc::SIGTRAP, "SIGTRAP"),
    (libc::SIGABRT, "SIGABRT"),
    (libc::SIGBUS, "SIGBUS"),
    (libc::SIGFPE, "SIGFPE"),
    (libc::SIGKILL, "SIGKILL"),
    (libc::SIGUSR1, "SIGUSR1"),
    (libc::SIGSEGV, "SIGSEGV"),
    (libc::SIGUSR2, "SIGUSR2"),
    (libc::SIGPIPE, "SIGPIPE"),
    (libc::SIGALRM, "SIGALRM"),
    (libc::SIGTERM, "SIGTERM"),
    (libc::SIGSTKFLT, "SIGSTKFLT"),
    (libc::SIGCHLD, "SIGCHLD"),
    (libc::SIGCONT, "SIGCONT"),
    (libc::SIGSTOP, "SIGSTOP"),
    (libc::SIGTSTP, "SIGTSTP"),
    (libc::SIGTTIN, "SIGTTIN"),
    (libc::SIGTTOU, "SIGTTOU"),
    (libc::SIGURG, "SIGURG"),
    (libc::SIGXCPU, "SIGXCPU"),
    (libc::SIGXFSZ, "SIGXFSZ"),
    (libc::SIGVTALRM, "SIGVTALRM"),
    (libc::SIGPROF, "SIGPROF"),
    (libc::SIGWINCH, "SIGWINCH"),
    (libc::SIGIO, "SIGIO"),
    (libc::SIGPWR, "SIGPWR"),
    (libc::SIGSYS, "SIGSYS"),
];

impl Signal {
    pub const HUP: Signal = Signal(libc::SIGHUP);
    pub const INT: Signal = Signal(libc::SIGINT);
    pub const QUIT: Signal = Signal(libc::SIGQUIT);
    pub const KILL: Signal = Signal(libc::SIGKILL);
    pub const TERM: Signal = Signal(libc::SIGTERM);
    pub const ABRT: Signal = Signal(libc::SIGABRT);
    pub const CONT: Signal = Signal(libc::SIGCONT);
    pub const SEGV: Signal = Signal(libc::SIGSEGV);
    pub const PIPE: Signal = Signal(libc::SIGPIPE);
    pub const TTIN: Signal = Signal(libc::SIGTTIN);
    pub const TTOU: Signal = Signal(libc::SIGTTOU);

    /// Parses `TERM`, `SIGTERM`, `sigterm` or `15`. Real-time signals parse as numbers.
    pub fn parse(text: &str) -> Option<Signal> {
        let t = text.trim();
        if let Ok(n) = t.parse::<i32>() {
            return (1..=libc::SIGRTMAX()).contains(&n).then_some(Signal(n));
        }
        let upper = t.to_ascii_uppercase();
        let full = if upper.starts_with("SIG") { upper } else { format!("SIG{upper}") };
        NAMES.iter().find(|(_, name)| *name == full).map(|&(n, _)| Signal(n))
    }

    /// The name (`SIGSEGV`) or, for signals without one, `SIG<n>`.
    pub fn name(self) -> String {
        match NAMES.iter().find(|(n, _)| *n == self.0) {
            Some((_, name)) => (*name).to_string(),
            None => format!("SIG{}", self.0),
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_spelling() {
        for text in ["TERM", "SIGTERM", "sigterm", "term", "15", " 15 "] {
            assert_eq!(Signal::parse(text), Some(Signal::TERM), "{text}");
        }
        assert_eq!(Signal::parse("INT"), Some(Signal::INT));
        assert_eq!(Signal::parse("NOPE"), None);
        assert_eq!(Signal::parse("0"), None);
        assert_eq!(Signal::parse("999"), None);
        assert_eq!(Signal::parse(""), None);
    }

    #[test]
    fn names_round_trip() {
        for &(n, name) in NAMES {
            assert_eq!(Signal(n).name(), name);
            assert_eq!(Signal::parse(name), Some(Signal(n)));
        }
        assert_eq!(Signal(40).to_string(), "SIG40");
    }
}
