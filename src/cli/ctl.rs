//! `corral ctl`'s command line, parsed on its own: it shares no options with a run (`ctl
//! logs -n` is a count of lines, not `--name`).

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{ColorChoice, CommandFactory, Parser, Subcommand};

use super::{CliExit, Invocation, clap_exit, values};

/// Control a running corral from another terminal (its control socket).
///
/// TARGET is a worker id (web.2), a group (web) or all. With several instances running,
/// -I NAME chooses one. Exit 0 on success, 1 when the command failed, 2 on a usage error or
/// when no instance can be reached.
// Parsed on its own, not as a subcommand of the run's options: `ctl logs -n` is not `--name`.
#[derive(Parser, Debug)]
#[command(name = "corral ctl", bin_name = "corral ctl", color = ColorChoice::Never, version)]
pub(super) struct CtlCli {
    /// The instance to control [default: the only one running].
    #[arg(short = 'I', long, value_name = "NAME", value_parser = values::name, global = true)]
    instance: Option<String>,
    /// The control socket to use instead of finding the instance's.
    #[arg(long, value_name = "PATH", global = true)]
    control: Option<PathBuf>,
    #[command(subcommand)]
    command: CtlSub,
}

#[derive(Subcommand, Debug)]
pub(super) enum CtlSub {
    /// The running instances of this user: name, pid, groups, uptime, socket.
    Ls {
        #[arg(long)]
        json: bool,
    },
    /// One row per worker, the dashboard's columns; exits 0 when every worker that should be
    /// up is up (and ready), 1 otherwise (the reasons follow the table), 2 when it cannot ask.
    Status {
        /// An array of objects instead of a table.
        #[arg(long)]
        json: bool,
        /// Print nothing: the exit code says it (for HEALTHCHECKs).
        #[arg(long, short)]
        quiet: bool,
    },
    /// SIGKILL a worker (web.2), a group (web) or all; the restart policy decides what follows.
    Kill { target: String },
    /// Stop gracefully and start again at once: a worker, a group or all.
    Restart { target: String },
    /// Stop gracefully and stay stopped: a worker, a group or all.
    Stop { target: String },
    /// Start stopped (or given-up) workers: a worker, a group or all.
    Start { target: String },
    /// Set a group's worker count: N, +K or -K.
    Scale {
        group: String,
        #[arg(allow_hyphen_values = true, value_name = "N|+K|-K")]
        count: String,
    },
    /// Rolling reload of a group or all; waits for the result (exit 1 if it failed).
    Reload { target: String },
    /// The last N output lines (of TARGET, else everyone's), then follow with -f.
    Logs {
        #[arg(short, long)]
        follow: bool,
        #[arg(short = 'n', long, default_value_t = 100, value_name = "N")]
        lines: usize,
        /// Headless JSON objects instead of text lines.
        #[arg(long)]
        json: bool,
        target: Option<String>,
    },
    /// The events kept, as headless JSON objects, then follow with -f.
    Events {
        #[arg(short, long)]
        follow: bool,
    },
    /// Send a JSON value to a Node worker's process.on('message'): a worker, a group or all.
    Send {
        target: String,
        #[arg(value_name = "JSON")]
        message: String,
    },
    /// Graceful shutdown; waits until corral has stopped. --force: SIGKILL every worker.
    Shutdown {
        #[arg(long)]
        force: bool,
    },
}

pub(super) fn parse(args: &[OsString]) -> Result<Invocation, CliExit> {
    let cli = CtlCli::try_parse_from(args).map_err(|e| {
        use clap::error::ErrorKind;
        if matches!(
            e.kind(),
            ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand | ErrorKind::MissingSubcommand
        ) {
            which_command()
        } else {
            clap_exit(&e)
        }
    })?;
    let command = ctl_command(cli.command)?;
    let ctl = crate::control::client::Ctl { instance: cli.instance, control: cli.control, command };
    Ok(Invocation::Ctl(ctl))
}

/// `corral ctl` alone: what it can do, on the one line of a usage error.
fn which_command() -> CliExit {
    let cli = CtlCli::command();
    let names: Vec<&str> =
        cli.get_subcommands().map(clap::Command::get_name).filter(|n| *n != "help").collect();
    CliExit::usage(format!(
        "ctl needs a command: {} ('corral ctl --help' says what each does)",
        names.join(", ")
    ))
}

fn ctl_command(sub: CtlSub) -> Result<crate::control::client::CtlCommand, CliExit> {
    use crate::control::client::CtlCommand as C;
    Ok(match sub {
        CtlSub::Ls { json } => C::Ls { json },
        CtlSub::Status { json, quiet } => C::Status { json, quiet },
        CtlSub::Kill { target } => C::Act { verb: "kill", target },
        CtlSub::Restart { target } => C::Act { verb: "restart", target },
        CtlSub::Stop { target } => C::Act { verb: "stop", target },
        CtlSub::Start { target } => C::Act { verb: "start", target },
        CtlSub::Scale { group, count } => {
            let bad = || {
                CliExit::usage(format!(
                    "invalid value '{count}' for 'scale': expected N (1 to {}), +K or -K",
                    values::MAX_WORKERS
                ))
            };
            if let Some(rest) = count.strip_prefix(['+', '-']) {
                let k: i64 = rest.parse().map_err(|_| bad())?;
                let delta = if count.starts_with('-') { -k } else { k };
                C::Scale { group, workers: None, delta: Some(delta) }
            } else {
                C::Scale {
                    group,
                    workers: Some(values::workers(&count).map_err(|_| bad())?),
                    delta: None,
                }
            }
        }
        CtlSub::Reload { target } => C::Reload { target },
        CtlSub::Logs { follow, lines, json, target } => C::Logs { follow, lines, target, json },
        CtlSub::Events { follow } => C::Events { follow },
        CtlSub::Shutdown { force } => C::Shutdown { force },
        CtlSub::Send { target, message } => {
            let message = serde_json::from_str(&message).map_err(|e| {
                CliExit::usage(format!("invalid value '{message}' for '<JSON>': {e}"))
            })?;
            C::Send { target, message }
        }
    })
}
