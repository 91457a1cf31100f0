//! corral's own diagnostics (not worker output, not events): to stderr, at a level set
//! by `-v`/`-q`, or by `RUST_LOG` when it is set.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;

/// `verbosity`: 0 = warnings, 1 = info, 2+ = debug; -1 = errors only, -2 and below = off.
pub fn init(verbosity: i8) {
    let level = match verbosity {
        i8::MIN..=-2 => LevelFilter::OFF,
        -1 => LevelFilter::ERROR,
        0 => LevelFilter::WARN,
        1 => LevelFilter::INFO,
        2..=i8::MAX => LevelFilter::DEBUG,
    };
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false);
    let result = if std::env::var_os("RUST_LOG").is_some() {
        builder.with_env_filter(EnvFilter::from_default_env()).try_init()
    } else {
        builder.with_max_level(level).try_init()
    };
    // Already initialised (a test harness): keep the existing subscriber.
    drop(result);
}
