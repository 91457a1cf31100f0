//! The `corral` binary: parse, set up logging, run, map the outcome to an exit code.

#![deny(unsafe_code)]

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

use corral::internals::cli::{self, Invocation};

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    // Hidden subcommands: the corral binary is also the demo's and the tests' worker.
    match args.get(1).and_then(|a| a.to_str()) {
        Some("__demo-worker") => return corral::internals::demo::worker_main(args[2..].to_vec()),
        Some("__test-worker") => return corral::internals::testworker::main(args[2..].to_vec()),
        Some("__keeper") => return corral::internals::keeper::main(&args[2..]),
        _ => {}
    }
    // Before any thread exists, so every thread starts with nothing blocked.
    corral::internals::runtime::unblock_signals();
    match cli::parse_from(args) {
        Err(exit) => {
            if exit.to_stderr {
                eprintln!("{}", exit.message);
            } else {
                let _ = write!(std::io::stdout(), "{}", exit.message);
            }
            ExitCode::from(exit.code)
        }
        Ok(Invocation::Ctl(ctl)) => corral::internals::control::client::run(&ctl),
        Ok(Invocation::Attach(attach)) => corral::internals::control::attach::run(&attach),
        Ok(Invocation::CheckConfig(resolved)) => {
            let _ = write!(std::io::stdout(), "{resolved}");
            ExitCode::SUCCESS
        }
        Ok(Invocation::Completions(shell)) => {
            cli::write_completions(shell, &mut std::io::stdout());
            ExitCode::SUCCESS
        }
        Ok(Invocation::Run(spec)) => {
            let dashboard = spec.output == corral::internals::config::OutputMode::Dashboard;
            let _log_guard = corral::internals::logging::init(spec.verbosity, dashboard);
            match corral::internals::runtime::run(spec) {
                Ok(code) => ExitCode::from(code),
                Err(e) => {
                    eprintln!("corral: {e}");
                    ExitCode::from(2)
                }
            }
        }
    }
}
