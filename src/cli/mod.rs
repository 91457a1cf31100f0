//! The command line (docs/config.md): parses and checks every argument into a [`RunSpec`], resolving
//! COMMAND on the way, so a mistake is one line and exit code 2 before anything starts.
//! It binds no sockets and starts no processes.

mod attach;
mod config_run;
mod ctl;
mod demo;
mod describe;
mod describe_probes;
mod file;
mod opts;
mod procfile;
mod requests;

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, ColorChoice, CommandFactory, FromArgMatches, Parser, Subcommand};
use clap_complete::Shell;

use crate::config::{CommandSpec, RunSpec};
use crate::spec::{SpecError, resolve, values};
use opts::RunOpts;
use requests::{base_request, cwd_arg, given_options, run_request, spec_exit};
use values::CrashAfter;

/// What a successful parse asks the program to do.
#[derive(Debug)]
pub enum Invocation {
    Run(RunSpec),
    Completions(Shell),
    /// `check-config`: the file is valid; print this (the resolved groups) and exit 0.
    CheckConfig(String),
    Ctl(crate::control::client::Ctl),
    Attach(crate::control::attach::Attach),
}

/// What main should print and the exit code when parsing ends the program (help, version, or
/// an error).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CliExit {
    pub message: String,
    pub to_stderr: bool,
    pub code: u8,
}

impl CliExit {
    /// The message echoes what the operator typed (a command, a path, a value): escaped, so
    /// a stray escape sequence in it cannot reach the terminal.
    fn usage(message: impl std::fmt::Display) -> CliExit {
        let message = crate::text::escape(&message.to_string(), false);
        CliExit { message: format!("corral: {message}"), to_stderr: true, code: 2 }
    }
}

/// Run N copies of a command as worker processes, restart the ones that die, and show them
/// all live.
#[derive(Parser, Debug)]
#[command(
    name = "corral",
    version,
    color = ColorChoice::Never,
    override_usage = "corral [OPTIONS] [--] COMMAND [ARGS]...\n       \
                      corral [OPTIONS] --config FILE\n       \
                      corral [OPTIONS] --procfile FILE\n       \
                      corral [OPTIONS]            (runs ./corral.toml, else ./Procfile)\n       \
                      corral demo [--port P] [--crash-after MIN..MAX] [OPTIONS]\n       \
                      corral check-config FILE\n       \
                      corral ctl [-I NAME | --control PATH] COMMAND   (corral ctl --help)\n       \
                      corral attach [-I NAME | --control PATH]\n       \
                      corral completions SHELL",
    after_help = "COMMAND and its ARGS come after corral's options; everything after COMMAND is \
                  passed to it. Put -- before COMMAND when it is also a corral subcommand name \
                  (demo, check-config, ctl, attach, completions, help)."
)]
struct Cli {
    /// Run the groups a TOML file defines (without COMMAND and --config: ./corral.toml).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Run each `name: command` line of a Procfile as a group (without COMMAND, --config
    /// and ./corral.toml: ./Procfile).
    #[arg(long, value_name = "FILE", conflicts_with = "config")]
    procfile: Option<PathBuf>,
    /// With a Procfile: workers per process, like web=2,worker=1 (all=N for every one;
    /// 0: not run) [default: -w, else 1].
    #[arg(long, global = true, value_name = "NAME=N,...", value_parser = procfile::formation)]
    formation: Option<procfile::Formation>,
    #[command(flatten)]
    opts: RunOpts,
    #[command(subcommand)]
    sub: Option<Sub>,
}

#[derive(Subcommand, Debug)]
enum Sub {
    /// Run the demo cluster: HTTP workers on 127.0.0.1 that crash now and then.
    Demo(DemoArgs),
    /// Check a config file and print the groups it defines, with defaults and options applied.
    CheckConfig {
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Print a completion script for SHELL to stdout.
    Completions {
        #[arg(value_name = "SHELL")]
        shell: Shell,
    },
    #[command(external_subcommand)]
    External(Vec<OsString>),
}

#[derive(Args, Debug)]
struct DemoArgs {
    /// The port the workers share on 127.0.0.1.
    #[arg(
        long, value_name = "P", default_value_t = 3000,
        value_parser = values::port_arg, allow_hyphen_values = true,
    )]
    port: u16,
    /// Each worker crashes after a random time in this range [default: 10s..40s for web,
    /// 20s..60s for jobs].
    #[arg(
        long, value_name = "MIN..MAX",
        value_parser = values::crash_after, allow_hyphen_values = true,
    )]
    crash_after: Option<CrashAfter>,
    /// Background job workers beside the HTTP ones (0: none).
    #[arg(
        long, value_name = "N", default_value_t = 2,
        value_parser = values::jobs, allow_hyphen_values = true,
    )]
    jobs: u32,
}

/// `corral help ctl [SUB]` is `corral ctl [SUB] --help`: ctl and attach parse their own
/// arguments, so clap's `help` does not know them.
fn help_of_own_parsers(mut args: Vec<OsString>) -> Vec<OsString> {
    if args.get(1).is_some_and(|a| a == "help")
        && let Some(sub) = args.get(2).filter(|s| *s == "ctl" || *s == "attach").cloned()
    {
        let rest: Vec<OsString> = args[3..].to_vec();
        args.truncate(1);
        args.push(sub);
        args.extend(rest);
        args.push("--help".into());
    }
    args
}

/// Parses `args` (including `argv[0]`) and checks them against the file system.
pub fn parse_from<I, T>(args: I) -> Result<Invocation, CliExit>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args = help_of_own_parsers(args.into_iter().map(Into::into).collect());
    if args.get(1).is_some_and(|a| a == "ctl") {
        return ctl::parse(&args[1..]);
    }
    if args.get(1).is_some_and(|a| a == "attach") {
        return attach::parse(&args[1..]);
    }
    let matches = Cli::command().try_get_matches_from(&args).map_err(|e| {
        let mut exit = clap_exit(&e);
        if e.kind() == clap::error::ErrorKind::DisplayHelp
            && let Some(help) = subcommand_help(&args)
        {
            exit.message = help;
        }
        exit
    })?;
    let mut cli = Cli::from_arg_matches(&matches).map_err(|e| clap_exit(&e))?;
    // Relative to where corral was started, whatever the workers' --cwd.
    for file in &mut cli.opts.env_file {
        *file = std::path::absolute(&*file)
            .map_err(|e| CliExit::usage(format!("invalid value for '--env-file <FILE>': {e}")))?;
    }
    let opts = &cli.opts;
    // Before COMMAND, which may be relative to it.
    let cwd = opts.cwd.as_deref().map(cwd_arg).transpose()?;
    let path_var = std::env::var_os("PATH");
    let given = |id: &str| given(&matches, id);
    if cli.config.is_some() && !matches!(cli.sub, None | Some(Sub::External(_))) {
        return Err(CliExit::usage("'--config' cannot be used with a subcommand"));
    }
    if cli.procfile.is_some() && cli.sub.is_some() {
        return Err(CliExit::usage(
            "'--procfile' cannot be used with COMMAND or a subcommand: the file names the commands",
        ));
    }
    let path_var = path_var.as_deref();
    let target = match &cli.sub {
        Some(Sub::Completions { shell }) => {
            reject_run_options(&matches)?;
            return Ok(Invocation::Completions(*shell));
        }
        Some(Sub::CheckConfig { file }) => {
            let procfile = procfile::looks_like_one(file);
            let spec = file_spec(&cli, &given, file, procfile, path_var)?;
            return Ok(Invocation::CheckConfig(describe::describe(file, &spec)));
        }
        Some(Sub::Demo(demo)) => {
            no_formation(&cli)?;
            return Ok(Invocation::Run(demo::run_spec(opts, &given, demo, path_var)?));
        }
        Some(Sub::External(command)) => {
            if cli.config.is_some() {
                return Err(CliExit::usage(
                    "'--config' cannot be used with COMMAND: the file names the commands",
                ));
            }
            command_target(opts, command.clone(), cwd.as_deref(), path_var)?
        }
        None => {
            if let Some((file, procfile)) = default_file(&cli) {
                return Ok(Invocation::Run(file_spec(&cli, &given, &file, procfile, path_var)?));
            }
            command_target(opts, Vec::new(), cwd.as_deref(), path_var)?
        }
    };
    no_formation(&cli)?;
    let instance = match (&opts.instance, &opts.name) {
        (Some(instance), _) => instance.clone(),
        (None, Some(name)) => name.clone(),
        (None, None) => {
            values::instance_from_command(&target.name, &target.command, cwd.as_deref())
        }
    };
    let here = std::env::current_dir()
        .map_err(|e| CliExit::usage(format!("cannot read the working directory: {e}")))?;
    let mut request = base_request(target.name, target.command, cwd);
    given_options(opts, &given).apply_to(&mut request);
    request.env.clone_from(&opts.env);
    request.env_files.clone_from(&opts.env_file);
    request.schedule.clone_from(&opts.schedule);
    request.reload_schedule.clone_from(&opts.reload_schedule);
    request.watch.clone_from(&opts.watch);
    request.watch_base = here;
    let group = request.build().map_err(|e| match e {
        SpecError::ScheduleRestartsAlways => CliExit::usage(format!("--schedule: {e}")),
        e => spec_exit(e),
    })?;
    let run = run_request(opts, instance, opts.instance.is_none() && opts.control.is_none());
    Ok(Invocation::Run(run.build(vec![group]).map_err(spec_exit)?))
}

/// The file a run without COMMAND reads, and whether it is a Procfile: `--procfile`,
/// `--config`, `./corral.toml`, else `./Procfile`.
fn default_file(cli: &Cli) -> Option<(PathBuf, bool)> {
    if let Some(file) = &cli.procfile {
        return Some((file.clone(), true));
    }
    let toml = Path::new(config_run::DEFAULT_FILE);
    if let Some(file) = cli.config.as_deref().or_else(|| toml.is_file().then_some(toml)) {
        return Some((file.to_path_buf(), false));
    }
    let procfile = Path::new(procfile::DEFAULT_FILE);
    procfile.is_file().then(|| (procfile.to_path_buf(), true))
}

/// The run a config file or a Procfile describes.
fn file_spec(
    cli: &Cli,
    given: &dyn Fn(&str) -> bool,
    file: &Path,
    procfile: bool,
    path_var: Option<&OsStr>,
) -> Result<RunSpec, CliExit> {
    if procfile {
        let formation = cli.formation.as_ref().map_or(&[][..], |f| &f.0[..]);
        procfile::run_spec(&cli.opts, given, file, formation, path_var)
    } else {
        no_formation(cli)?;
        config_run::run_spec(&cli.opts, given, file, path_var)
    }
}

fn no_formation(cli: &Cli) -> Result<(), CliExit> {
    match cli.formation {
        Some(_) => {
            Err(CliExit::usage("'--formation' needs a Procfile (--procfile FILE or ./Procfile)"))
        }
        None => Ok(()),
    }
}

/// Whether option `id` was given on the command line (before or after a subcommand), as
/// opposed to being at its default: such options override the config file.
fn given(matches: &ArgMatches, id: &str) -> bool {
    let on_line = |m: &ArgMatches| {
        m.try_get_raw(id).is_ok_and(|v| v.is_some())
            && m.value_source(id) == Some(ValueSource::CommandLine)
    };
    on_line(matches) || matches.subcommand().is_some_and(|(_, sub)| on_line(sub))
}

/// Writes completions for `shell` to `out`.
pub fn write_completions(shell: Shell, out: &mut dyn std::io::Write) {
    clap_complete::generate(shell, &mut shown_command(), "corral", out);
}

/// `demo --help` and `completions --help`, drawn from [`shown_command`].
fn subcommand_help(args: &[OsString]) -> Option<String> {
    let sub = args.iter().skip(1).take_while(|a| *a != "--").find_map(|a| match a.to_str() {
        Some(name @ ("demo" | "completions")) => Some(name),
        _ => None,
    })?;
    let mut cmd = shown_command();
    let sub = cmd.find_subcommand_mut(sub)?;
    Some(sub.render_help().to_string())
}

/// The command line as help and completions show it: each subcommand with only what it
/// accepts. The run options are global (so they may come after `demo`), but `demo` takes
/// no `--listen` and `completions` takes none of them. Parsing uses the plain command: a
/// built command changed this way no longer parses.
fn shown_command() -> clap::Command {
    let mut cmd = Cli::command();
    let run_options: Vec<clap::Arg> =
        cmd.get_arguments().filter(|a| a.is_global_set()).cloned().collect();
    // Not global here: each subcommand lists exactly its own.
    for arg in &run_options {
        cmd = cmd.mut_arg(arg.get_id().clone(), |a| a.global(false));
    }
    let demo_options: Vec<clap::Arg> = run_options
        .into_iter()
        .filter(|a| a.get_id() != "listen" && a.get_id() != "formation")
        .map(|a| a.global(false))
        .collect();
    cmd.mut_subcommand("demo", |demo| demo.args(demo_options))
}

/// Help and version end the program successfully; anything else is a one-line usage error.
fn clap_exit(err: &clap::Error) -> CliExit {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let rendered = err.render().to_string();
    if matches!(err.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        return CliExit { message: rendered, to_stderr: false, code: 0 };
    }
    // The first paragraph: some errors go on in indented lines (the missing arguments);
    // tips and the usage come later and are dropped. Possible values are said our way.
    let mut line = rendered
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .filter(|l| !l.starts_with("tip:") && !l.starts_with("[possible values:"))
        .collect::<Vec<_>>()
        .join(" ");
    if let Some(ContextValue::Strings(valid)) = err.get(ContextKind::ValidValue) {
        line = format!("{line}: expected one of {}", valid.join(", "));
    }
    // The one tip worth the line: the option (value, subcommand) the typo was probably
    // meant to be, as config files' errors say it.
    let similar = rendered.lines().find_map(|l| {
        let tip = l.trim().strip_prefix("tip: ")?;
        (tip.starts_with("a similar ") || tip.starts_with("some similar ")).then_some(tip)
    });
    if let Some(similar) = similar {
        line = format!("{line}; {similar}");
    }
    CliExit::usage(line.strip_prefix("error: ").unwrap_or(&line))
}

/// `completions` takes no run options; accepting them silently would hide a typo'd command.
fn reject_run_options(matches: &ArgMatches) -> Result<(), CliExit> {
    let name = "completions";
    let Some(sub) = matches.subcommand_matches(name) else {
        return Ok(());
    };
    let cmd = Cli::command();
    for id in sub.ids() {
        if sub.value_source(id.as_str()) != Some(ValueSource::CommandLine) {
            continue;
        }
        if let Some(arg) = cmd.get_arguments().find(|a| a.get_id() == id) {
            let flag = arg.get_long().map_or_else(|| id.to_string(), |l| format!("--{l}"));
            return Err(CliExit::usage(format!("'{flag}' cannot be used with '{name}'")));
        }
    }
    Ok(())
}

/// What differs between running COMMAND and the demo; the options give the rest.
struct Target {
    name: String,
    command: CommandSpec,
}

fn command_target(
    opts: &RunOpts,
    argv: Vec<OsString>,
    cwd: Option<&Path>,
    path_var: Option<&OsStr>,
) -> Result<Target, CliExit> {
    let command = resolve::command(argv, cwd, path_var).map_err(CliExit::usage)?;
    let name = match &opts.name {
        Some(name) => name.clone(),
        None => values::name_from_command(&command.argv[0]),
    };
    Ok(Target { name, command })
}

#[cfg(test)]
mod tests;
