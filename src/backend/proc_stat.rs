//! `/proc/PID/stat`, read in one place: the sampler, the reaper's group checks, the keeper
//! and the test worker all need a few of its fields.

/// The fields of `/proc/PID/stat` corral reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcStat {
    /// `R`, `S`, `Z` …
    pub state: u8,
    pub ppid: u32,
    pub pgrp: u32,
    pub session: u32,
    /// utime + stime, in clock ticks.
    pub ticks: u64,
    pub rss_pages: u64,
}

impl ProcStat {
    /// `pid (comm) state ppid pgrp session …`: `comm` may hold spaces and parentheses, so
    /// the fields are counted from the last `)`.
    pub fn parse(text: &str) -> Option<ProcStat> {
        let mut fields = text.get(text.rfind(')')? + 1..)?.split_whitespace();
        let state = *fields.next()?.as_bytes().first()?;
        let ppid = fields.next()?.parse().ok()?;
        let pgrp = fields.next()?.parse().ok()?;
        let session = fields.next()?.parse().ok()?;
        // tty_nr tpgid flags minflt cminflt majflt cmajflt, then utime and stime.
        let utime: u64 = fields.nth(7)?.parse().ok()?;
        let stime: u64 = fields.next()?.parse().ok()?;
        // cutime cstime priority nice num_threads itrealvalue starttime vsize, then rss.
        let rss_pages = fields.nth(8)?.parse().ok()?;
        Some(ProcStat { state, ppid, pgrp, session, ticks: utime + stime, rss_pages })
    }

    /// The stat of `pid`, if it exists and reads.
    pub fn of(pid: u32) -> Option<ProcStat> {
        ProcStat::parse(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
    }

    /// A zombie or a dead process: nothing left to signal or wait for but its reaping.
    pub fn is_gone(&self) -> bool {
        matches!(self.state, b'Z' | b'X')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_count_from_the_last_parenthesis_of_a_hostile_comm() {
        let line = "42 (a) b (c) S 1 42 43 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0 5 1000 25 \
                    18446744073709551615";
        let stat = ProcStat::parse(line).expect("parses");
        let expected =
            ProcStat { state: b'S', ppid: 1, pgrp: 42, session: 43, ticks: 10, rss_pages: 25 };
        assert_eq!(stat, expected);
        assert!(!stat.is_gone());
        assert!(ProcStat::parse("42 (x) Z 1 42 42 0").is_none(), "cut short");
        assert!(ProcStat::parse("no parenthesis").is_none());
    }

    #[test]
    fn reads_this_process() {
        let me = ProcStat::of(std::process::id()).expect("our own stat");
        assert_eq!(me.pgrp, nix::unistd::getpgrp().as_raw() as u32);
        assert!(!me.is_gone());
    }
}
