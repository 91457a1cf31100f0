//! The lossless sinks of worker output and supervisor events (STYLE: "one fan-out, sinks
//! with a declared policy"): the writer thread and queue they share ([`lossless`]), used
//! by headless stdout (`crate::headless`). Nothing here touches processes or the core.

pub mod lossless;
