//! When and how the demo worker crashes: the `--crash-after` range and the means of death,
//! which rotate so a dashboard shows every kind of exit corral reports.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use nix::sys::resource::{Resource, setrlimit};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask, raise};

/// The range the demo worker picks its crash time from (`--crash-after MIN..MAX`, or one
/// duration for a fixed time).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CrashAfter {
    /// The earliest crash announcement, counted from the worker's start.
    pub min: Duration,
    /// The latest crash announcement; equal to `min` for a fixed time.
    pub max: Duration,
}

/// Why a `--crash-after` value was refused; the message names the value.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum CrashAfterError {
    /// One side is not a duration humantime understands.
    #[error("invalid --crash-after '{value}': '{part}' is not a duration like 10s or 1m30s")]
    Duration {
        /// The whole value given.
        value: String,
        /// The side that failed to parse.
        part: String,
    },
    /// `MIN` is longer than `MAX`.
    #[error("invalid --crash-after '{0}': MIN is longer than MAX")]
    Reversed(String),
}

impl Default for CrashAfter {
    /// 10 s to 40 s, the article's `Math.random() * 30000 + 10000`.
    fn default() -> Self {
        CrashAfter { min: Duration::from_secs(10), max: Duration::from_secs(40) }
    }
}

impl CrashAfter {
    /// A uniformly random time in the range.
    pub fn pick(&self) -> Duration {
        let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(fastrand::u64(nanos(self.min)..=nanos(self.max)))
    }
}

impl FromStr for CrashAfter {
    type Err = CrashAfterError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let duration = |part: &str| {
            humantime::parse_duration(part.trim()).map_err(|_| CrashAfterError::Duration {
                value: value.to_owned(),
                part: part.to_owned(),
            })
        };
        let (min, max) = match value.split_once("..") {
            Some((min, max)) => (duration(min)?, duration(max)?),
            None => (duration(value)?, duration(value)?),
        };
        if min > max {
            return Err(CrashAfterError::Reversed(value.to_owned()));
        }
        Ok(CrashAfter { min, max })
    }
}

impl fmt::Display for CrashAfter {
    /// The form [`FromStr`] reads back, so the CLI can pass the range on to the worker.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (min, max) =
            (humantime::format_duration(self.min), humantime::format_duration(self.max));
        if self.min == self.max { write!(f, "{min}") } else { write!(f, "{min}..{max}") }
    }
}

/// How a demo worker dies. Chosen by `(CORRAL_GENERATION + CORRAL_WORKER_ID) mod 4`, so each
/// restart of a slot dies differently from the last, and neighbouring slots differ too.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashMeans {
    /// `panic!` on the main thread: exit code 101, like Node's uncaught exception.
    Panic,
    /// `std::process::abort()`: killed by SIGABRT.
    Abort,
    /// `std::process::exit(1)`: a plain failing exit code.
    Exit,
    /// `raise(SIGSEGV)`: killed by SIGSEGV, as after a wild pointer.
    Segfault,
}

impl CrashMeans {
    /// The means for a worker's run, from the values of `CORRAL_GENERATION` and
    /// `CORRAL_WORKER_ID`; a missing or unparsable value counts as 0.
    pub fn for_run(generation: Option<&str>, worker_id: Option<&str>) -> CrashMeans {
        let number = |v: Option<&str>| v.and_then(|v| v.trim().parse::<u64>().ok()).unwrap_or(0);
        match number(generation).wrapping_add(number(worker_id)) % 4 {
            0 => CrashMeans::Panic,
            1 => CrashMeans::Abort,
            2 => CrashMeans::Exit,
            _ => CrashMeans::Segfault,
        }
    }

    /// The means for this process, from its environment.
    pub fn from_env() -> CrashMeans {
        let var = |name| std::env::var(name).ok();
        CrashMeans::for_run(var("CORRAL_GENERATION").as_deref(), var("CORRAL_WORKER_ID").as_deref())
    }
}

impl fmt::Display for CrashMeans {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CrashMeans::Panic => "panic",
            CrashMeans::Abort => "abort",
            CrashMeans::Exit => "exit(1)",
            CrashMeans::Segfault => "SIGSEGV",
        })
    }
}

/// Ends the process by `means`. Must run on the main thread outside any tokio task: tokio
/// catches a task's panic, and the worker would go on heartbeating without a server.
pub(super) fn crash(means: CrashMeans, pid: u32) -> ! {
    disable_core_dumps();
    let message = format!("Simulated crash in worker {pid} ({means})");
    match means {
        // The panic message goes to stderr through the panic hook; the others say it here.
        CrashMeans::Panic => panic!("{message}"),
        CrashMeans::Abort => {
            eprintln!("{message}");
            std::process::abort()
        }
        CrashMeans::Exit => {
            eprintln!("{message}");
            std::process::exit(1)
        }
        CrashMeans::Segfault => {
            eprintln!("{message}");
            raise_sigsegv()
        }
    }
}

/// Dies by SIGSEGV. A real invalid access would be undefined behaviour in Rust: the compiler
/// may remove it or do anything else. `raise` gives the same death, deterministically.
fn raise_sigsegv() -> ! {
    // WHY: std installs a SIGSEGV handler to report stack overflows. For a signal that is not
    // a guard-page fault it only restores the default action and returns, so a raised
    // SIGSEGV would be survived. Restore the default first, and make sure it is not blocked.
    crate::backend::default_action(crate::signal::Signal::SEGV);
    let _ = pthread_sigmask(SigmaskHow::SIG_UNBLOCK, Some(&SigSet::from(Signal::SIGSEGV)), None);
    let _ = raise(Signal::SIGSEGV);
    // Not reached: the default action of SIGSEGV ends the process.
    std::process::abort()
}

/// A demo that crashes every half-minute should not litter the working directory with core
/// files; the death is still reported by its signal.
fn disable_core_dumps() {
    // Lowering RLIMIT_CORE cannot fail harmfully.
    let _ = setrlimit(Resource::RLIMIT_CORE, 0, 0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crash_after_accepts_ranges_and_single_values() {
        let secs = Duration::from_secs;
        let parse = |s: &str| s.parse::<CrashAfter>();
        assert_eq!(parse("10s..40s"), Ok(CrashAfter { min: secs(10), max: secs(40) }));
        assert_eq!(parse("5s"), Ok(CrashAfter { min: secs(5), max: secs(5) }));
        assert_eq!(parse("1m30s .. 2m"), Ok(CrashAfter { min: secs(90), max: secs(120) }));
        assert_eq!(parse("250ms..1s").map(|c| c.min), Ok(Duration::from_millis(250)));
        assert_eq!(CrashAfter::default(), parse("10s..40s").expect("default"));
        assert_eq!(parse("10s..40s").map(|c| c.to_string()), Ok("10s..40s".to_string()));
    }

    #[test]
    fn each_run_crashes_its_own_way() {
        assert_eq!(CrashMeans::for_run(Some("0"), Some("1")), CrashMeans::Abort);
        assert_eq!(CrashMeans::for_run(Some("1"), Some("1")), CrashMeans::Exit);
        assert_eq!(CrashMeans::for_run(None, None), CrashMeans::Panic);
    }

    #[test]
    fn crash_after_errors_name_the_value() {
        let parse = |s: &str| s.parse::<CrashAfter>().map_err(|e| e.to_string());
        assert_eq!(
            parse("40s..10s"),
            Err("invalid --crash-after '40s..10s': MIN is longer than MAX".to_owned())
        );
        assert_eq!(
            parse("10s..soon"),
            Err("invalid --crash-after '10s..soon': 'soon' is not a duration like 10s or 1m30s"
                .to_owned())
        );
        for bad in ["", "..", "10s..", "..10s", "10", "x"] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn crash_after_display_reads_back() {
        for text in ["10s..40s", "5s", "1m 30s..2m", "250ms..1s"] {
            let range: CrashAfter = text.parse().expect("parse");
            assert_eq!(range.to_string(), text);
            assert_eq!(range.to_string().parse::<CrashAfter>(), Ok(range));
        }
    }

    #[test]
    fn pick_stays_in_range() {
        let range: CrashAfter = "1s..2s".parse().expect("parse");
        for _ in 0..1000 {
            let picked = range.pick();
            assert!(range.min <= picked && picked <= range.max, "{picked:?}");
        }
        let fixed: CrashAfter = "3s".parse().expect("parse");
        assert_eq!(fixed.pick(), Duration::from_secs(3));
    }

    #[test]
    fn successive_runs_of_a_slot_die_differently() {
        for worker in 1..=8_u64 {
            let means: Vec<CrashMeans> = (0..4_u64)
                .map(|generation| {
                    let (g, w) = (generation.to_string(), worker.to_string());
                    CrashMeans::for_run(Some(&g), Some(&w))
                })
                .collect();
            for (i, m) in means.iter().enumerate() {
                assert!(!means[i + 1..].contains(m), "worker {worker}: {means:?}");
            }
        }
        // Slots 1 and 2 of the first generation differ too.
        assert_ne!(
            CrashMeans::for_run(Some("0"), Some("1")),
            CrashMeans::for_run(Some("0"), Some("2"))
        );
    }

    #[test]
    fn rotation_tolerates_missing_and_huge_values() {
        assert_eq!(CrashMeans::for_run(None, None), CrashMeans::Panic);
        assert_eq!(CrashMeans::for_run(Some("x"), Some("3")), CrashMeans::Segfault);
        let max = u64::MAX.to_string();
        // u64::MAX + 1 wraps to 0.
        assert_eq!(CrashMeans::for_run(Some(&max), Some("1")), CrashMeans::Panic);
    }

    /// Set in the children of `each_means_ends_the_process_as_documented`.
    const CHILD_VAR: &str = "CORRAL_DEMO_TEST_CRASH";

    /// The child half of `each_means_ends_the_process_as_documented`; passes elsewhere.
    #[test]
    fn crash_child() {
        let means = match std::env::var(CHILD_VAR).as_deref() {
            Ok("panic") => CrashMeans::Panic,
            Ok("abort") => CrashMeans::Abort,
            Ok("exit") => CrashMeans::Exit,
            Ok("segv") => CrashMeans::Segfault,
            _ => return,
        };
        crash(means, std::process::id());
    }

    #[test]
    fn each_means_ends_the_process_as_documented() {
        use std::os::unix::process::ExitStatusExt;
        use std::process::{Command, Stdio};
        use std::time::Instant;

        let exe = std::env::current_exe().expect("test binary");
        // The test harness turns the panic of a test into exit code 101, as `main` does.
        let expected = [
            ("panic", Some(101), None),
            ("abort", None, Some(libc::SIGABRT)),
            ("exit", Some(1), None),
            ("segv", None, Some(libc::SIGSEGV)),
        ];
        for (means, code, signal) in expected {
            let mut child = Command::new(&exe)
                .args(["--exact", "demo::crash::tests::crash_child", "--test-threads=1"])
                .env(CHILD_VAR, means)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn the test binary");
            let deadline = Instant::now() + Duration::from_mins(1);
            let status = loop {
                if let Some(status) = child.try_wait().expect("try_wait") {
                    break status;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("{means}: the child did not die within 60 s");
                }
                std::thread::sleep(Duration::from_millis(20));
            };
            assert_eq!((status.code(), status.signal()), (code, signal), "{means}");
        }
    }
}
