//! The lossless sinks of worker output and supervisor events (STYLE: "one fan-out, sinks
//! with a declared policy"): the writer thread and queue they share ([`lossless`]), and
//! the log files of `--log-dir` ([`logfiles`]). Headless stdout is the other user of the
//! writer (`crate::headless`). Nothing here touches processes or the core.

pub mod logfiles;
pub mod lossless;
