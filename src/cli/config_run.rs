//! A run from a config file: the file's groups, each with `[defaults]` under its own keys
//! and the options given on the command line over both, checked as the command line is.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use super::file::{self, ConfigFile, FileCommand, FileError, FileGroup, Pos};
use super::{CliExit, RunOpts, resolve, values};
use crate::config::{CommandSpec, GroupSpec, RunSpec};
use crate::core::{Condition, RestartPolicy};
use crate::spec::{GroupRequest, SpecError};

/// Run when no COMMAND and no `--config` is given.
pub const DEFAULT_FILE: &str = "corral.toml";

/// Reads, checks and resolves `path` into a run, with `opts` from the command line.
pub(super) fn run_spec(
    opts: &RunOpts,
    given: &dyn Fn(&str) -> bool,
    path: &Path,
    path_var: Option<&OsStr>,
) -> Result<RunSpec, CliExit> {
    for (id, flag) in [("name", "--name"), ("listen", "--listen")] {
        if given(id) {
            return Err(CliExit::usage(format!(
                "'{flag}' cannot be used with a config file: set it in the group's table"
            )));
        }
    }
    let text = read(path, "config file")?;
    let dir = std::path::absolute(path)
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("/"));
    let file = file::parse(&text, &dir).map_err(|e| CliExit::usage(e.render(path)))?;
    // `shop.toml` names its corral `shop`; the default file, `corral.toml`, is named after
    // its directory (every project's would be `corral` otherwise), as a Procfile is.
    let stem = match path.file_stem().and_then(OsStr::to_str) {
        Some("corral") => dir.file_name().and_then(OsStr::to_str),
        other => other,
    };
    let stem = stem.and_then(|s| values::name(s).ok());
    resolve(opts, given, path, &dir, &file, stem, path_var)
}

/// The file's groups with the command line applied; `label` names the file in messages.
pub(super) fn resolve(
    opts: &RunOpts,
    given: &dyn Fn(&str) -> bool,
    path: &Path,
    dir: &Path,
    file: &ConfigFile,
    stem: Option<String>,
    path_var: Option<&OsStr>,
) -> Result<RunSpec, CliExit> {
    let mut groups = Vec::with_capacity(file.groups.len());
    for group in &file.groups {
        groups.push(group_spec(opts, given, path, dir, file, group, path_var)?);
    }
    let mut merged = opts.clone();
    if !given("log_dir") {
        merged.log_dir.clone_from(&file.log_dir);
    }
    if let Some(keep) = file.log_keep
        && !given("log_keep")
    {
        merged.log_keep = keep;
    }
    merged.strip_ansi = opts.strip_ansi || file.strip_ansi == Some(true);
    if !given("metrics") {
        merged.metrics = file.metrics.or(opts.metrics);
    }
    let instance =
        opts.instance.clone().or_else(|| file.instance.clone()).or(stem).unwrap_or_else(|| {
            groups.first().map(|g: &GroupSpec| g.name.clone()).unwrap_or_default()
        });
    let instance_is_default =
        opts.instance.is_none() && file.instance.is_none() && opts.control.is_none();
    let mut run = super::run_request(&merged, instance, instance_is_default);
    if let Some(format) = file.log_format
        && !given("log_format")
    {
        run.log_format = format;
    }
    run.build(groups).map_err(super::spec_exit)
}

/// The largest config file corral reads; a config is a few kilobytes.
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// The text of a config file or Procfile (`what`, as messages name it): a regular file (not
/// `/dev/zero`, not a FIFO that would block forever) of at most `MAX_CONFIG_BYTES`.
pub(super) fn read(path: &Path, what: &str) -> Result<String, CliExit> {
    use std::io::Read as _;
    use std::os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _};
    let shown = path.display();
    let failed = |e: &std::io::Error| {
        CliExit::usage(format!("cannot read {what} '{shown}': {}", crate::backend::describe(e)))
    };
    // WHY O_NONBLOCK: opening a FIFO for reading blocks until someone writes to it.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| failed(&e))?;
    let kind = file.metadata().map_err(|e| failed(&e))?.file_type();
    if !kind.is_file() {
        let kind = if kind.is_dir() {
            "a directory"
        } else if kind.is_fifo() {
            "a FIFO"
        } else if kind.is_char_device() || kind.is_block_device() {
            "a device"
        } else {
            "a socket"
        };
        return Err(CliExit::usage(format!("{what} '{shown}' is {kind}, not a regular file")));
    }
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_BYTES + 1).read_to_end(&mut bytes).map_err(|e| failed(&e))?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(CliExit::usage(format!(
            "{what} '{shown}' is over {} KiB: not a corral {what}",
            MAX_CONFIG_BYTES / 1024
        )));
    }
    String::from_utf8(bytes)
        .map_err(|_| CliExit::usage(format!("{shown}: expected a UTF-8 text file")))
}

fn group_spec(
    opts: &RunOpts,
    given: &dyn Fn(&str) -> bool,
    path: &Path,
    dir: &Path,
    file: &ConfigFile,
    group: &FileGroup,
    path_var: Option<&OsStr>,
) -> Result<GroupSpec, CliExit> {
    let at = |pos: Pos, key: &str, message: String| {
        let error =
            FileError { pos: Some(pos), key: format!("group.{}.{key}", group.name), message };
        CliExit::usage(error.render(path))
    };
    // The command line's options over the group's over `[defaults]`.
    let typed = super::given_options(opts, given);
    let options = typed.over(&group.layer.options.over(&file.defaults.options));
    let cwd = group_cwd(opts, given, dir, file, group, &at)?;
    // The file's environment first, so `--env` on the command line wins.
    let mut env = file.defaults.env.clone();
    env.extend(group.layer.env.iter().cloned());
    env.extend(opts.env.iter().cloned());
    // A PATH the group sets is the one its command is looked up in.
    let group_path = env.iter().rev().find(|(k, _)| k == "PATH").map(|(_, v)| v.clone());
    let path_var = group_path.as_deref().or(path_var);
    let command = command(&group.command, cwd.as_deref(), path_var)
        .map_err(|reason| at(group.command_at, "command", reason))?;
    let mut request = super::base_request(group.name.clone(), command, cwd);
    options.apply_to(&mut request);
    request.env = env;
    let schedule_at = schedules(&mut request, opts, given, file, group);
    // A group's list replaces `[defaults]`'s, as every other key does; `--env-file` adds to both.
    let (mut files, files_at) =
        match group.layer.env_file.as_ref().or(file.defaults.env_file.as_ref()) {
            Some((files, pos)) => (files.clone(), Some(*pos)),
            None => (Vec::new(), None),
        };
    let from_file = files.len();
    files.extend(opts.env_file.iter().cloned());
    request.env_files = files;
    // `--watch` is relative to corral's directory, the file's `watch` to the file's.
    let written = group.layer.watch.as_ref().or(file.defaults.watch.as_ref());
    let watch_at: Vec<Pos> = written.into_iter().flatten().map(|(_, pos)| *pos).collect();
    if given("watch") {
        request.watch.clone_from(&opts.watch);
        request.watch_base = std::env::current_dir()
            .map_err(|e| CliExit::usage(format!("cannot read the working directory: {e}")))?;
    } else {
        request.watch = written.into_iter().flatten().map(|(path, _)| path.clone()).collect();
        request.watch_base = dir.to_path_buf();
    }
    let mut spec = request.build().map_err(|e| match e {
        SpecError::ScheduleRestartsAlways => match schedule_at {
            Some(pos) => at(pos, "schedule", e.to_string()),
            None => CliExit::usage(format!("--schedule: {e}")),
        },
        SpecError::EnvFile { index, error } => {
            match files_at.filter(|_| index < from_file && !error.at_line) {
                Some(pos) => at(pos, "env-file", error.message),
                None if error.at_line => {
                    CliExit::usage(format!("{} (env-file of group.{})", error.message, group.name))
                }
                None => CliExit::usage(error.message),
            }
        }
        SpecError::Watch { index, path, reason } if !given("watch") => {
            let reason = format!("'{}': {reason}", path.display());
            match watch_at.get(index) {
                Some(pos) => at(*pos, "watch", reason),
                None => CliExit::usage(reason),
            }
        }
        SpecError::ListenName { .. } | SpecError::ListenTwice { .. } if !given("listen") => {
            let reason = match &e {
                SpecError::ListenName { text, name } => {
                    format!("'{text}': the name '{name}' is already used")
                }
                _ => e.to_string().replacen("listen ", "", 1),
            };
            match group.layer.listen_at.or(file.defaults.listen_at) {
                Some(pos) => at(pos, "listen", reason),
                None => super::spec_exit(e),
            }
        }
        e => super::spec_exit(e),
    })?;
    for entry in &group.depends_on {
        let on = &file.groups[usize::from(entry.dependency.group)];
        if entry.dependency.condition == Condition::Completed {
            let on_options = typed.over(&on.layer.options.over(&file.defaults.options));
            // A group on a schedule ends each run: its restart is "never" unless it says.
            let scheduled = on.layer.schedule.is_some() || file.defaults.schedule.is_some();
            if on_options.restart_or_default() == RestartPolicy::Always && !scheduled {
                let message = format!(
                    "\"completed\" needs a group that ends: '{}' has restart = \"always\" \
                     (give it restart = \"never\" or \"on-failure\", or wait for \"ready\")",
                    on.name
                );
                return Err(at(entry.at, &format!("depends-on.{}", on.name), message));
            }
        }
        spec.depends_on.push(entry.dependency);
    }
    Ok(spec)
}

/// The group's working directory: `--cwd`, else the file's (relative paths in a file mean
/// the file's directory, wherever corral is started from), else the file's directory.
fn group_cwd(
    opts: &RunOpts,
    given: &dyn Fn(&str) -> bool,
    dir: &Path,
    file: &ConfigFile,
    group: &FileGroup,
    at: &dyn Fn(Pos, &str, String) -> CliExit,
) -> Result<Option<PathBuf>, CliExit> {
    if given("cwd") {
        return opts.cwd.as_deref().map(super::cwd_arg).transpose();
    }
    let (dir, pos) = match group.layer.cwd.as_ref().or(file.defaults.cwd.as_ref()) {
        Some((dir, pos)) => (dir.clone(), Some(*pos)),
        None => (dir.to_path_buf(), None),
    };
    let checked = resolve::cwd(&dir).map_err(|reason| {
        let reason = format!("'{}': {reason}", dir.display());
        match pos {
            Some(pos) => at(pos, "cwd", reason),
            None => CliExit::usage(reason),
        }
    })?;
    Ok(Some(checked))
}

/// The group's `schedule` and `reload-schedule` (the command line's over the group's over
/// `[defaults]`), set on `request`; returns where `schedule` was written.
fn schedules(
    request: &mut GroupRequest,
    opts: &RunOpts,
    given: &dyn Fn(&str) -> bool,
    file: &ConfigFile,
    group: &FileGroup,
) -> Option<Pos> {
    type Written = Option<(crate::schedule::Schedule, Pos)>;
    let pick = |layer: &Written, defaults: &Written| layer.as_ref().or(defaults.as_ref()).cloned();
    let mut schedule_at = None;
    if given("schedule") {
        request.schedule.clone_from(&opts.schedule);
    } else if let Some((s, pos)) = pick(&group.layer.schedule, &file.defaults.schedule) {
        request.schedule = Some(s);
        schedule_at = Some(pos);
    }
    if given("reload_schedule") {
        request.reload_schedule.clone_from(&opts.reload_schedule);
    } else {
        request.reload_schedule =
            pick(&group.layer.reload_schedule, &file.defaults.reload_schedule).map(|(s, _)| s);
    }
    schedule_at
}

fn command(
    command: &FileCommand,
    cwd: Option<&Path>,
    path_var: Option<&OsStr>,
) -> Result<CommandSpec, String> {
    match command {
        FileCommand::Argv(argv) => {
            resolve::command(argv.iter().map(OsString::from).collect(), cwd, path_var)
        }
        FileCommand::Shell(line) => {
            if line.contains('\0') {
                return Err("the command contains a NUL byte".into());
            }
            let sh = PathBuf::from("/bin/sh");
            Ok(CommandSpec {
                program: sh,
                argv: vec!["/bin/sh".into(), "-c".into(), line.into()],
                display: line.clone(),
            })
        }
    }
}
