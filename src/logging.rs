//! corral's own diagnostics (not worker output, not events), at a level set by `-v`/`-q`
//! or by `RUST_LOG` when it is set. Headless: to stderr. With the dashboard: to a log file
//! (the screen belongs to the dashboard), `$XDG_STATE_HOME/corral/corral.log`.

use std::path::PathBuf;

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
    let filter = if std::env::var_os("RUST_LOG").is_some() {
        EnvFilter::from_default_env()
    } else {
        EnvFilter::default().add_directive(level(verbosity).into())
    };
    if to_file {
        let path = log_path()?;
        let dir = path.parent()?;
        std::fs::create_dir_all(dir).ok()?;
        let appender = tracing_appender::rolling::never(dir, "corral.log");
        let (writer, guard) = tracing_appender::non_blocking(appender);
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
