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

/// What `check-config` prints: the resolved run as TOML, which corral reads back as is.
pub(super) fn describe(path: &Path, spec: &RunSpec) -> String {
    use toml::{Table, Value};
    let duration = |d: std::time::Duration| {
        Value::String(humantime::format_duration(d).to_string().replace(' ', ""))
    };
    let mut top = Table::new();
    top.insert("instance".into(), spec.instance.clone().into());
    if let Some(logs) = &spec.log_files {
        top.insert("log-dir".into(), logs.dir.display().to_string().into());
        top.insert("log-keep".into(), i64::from(logs.keep).into());
    }
    if let Some(addr) = spec.metrics {
        top.insert("metrics".into(), addr.to_string().into());
    }
    if spec.strip_ansi {
        top.insert("strip-ansi".into(), true.into());
    }
    let mut groups = Table::new();
    for g in &spec.groups {
        let p = &g.policy;
        let mut t = Table::new();
        let argv: Vec<Value> = std::iter::once(g.command.program.display().to_string())
            .chain(g.command.argv.iter().skip(1).map(|a| a.to_string_lossy().into_owned()))
            .map(Value::String)
            .collect();
        t.insert("command".into(), Value::Array(argv));
        t.insert("workers".into(), i64::from(g.workers).into());
        let listen: Vec<Value> =
            g.listen.iter().map(|l| Value::String(format!("{}={}", l.name, l.addr))).collect();
        t.insert("listen".into(), Value::Array(listen));
        let restart = match p.restart {
            crate::core::RestartPolicy::Always => "always",
            crate::core::RestartPolicy::OnFailure => "on-failure",
            crate::core::RestartPolicy::Never => "never",
        };
        t.insert("restart".into(), restart.into());
        let backoff = if p.backoff.first == p.backoff.max {
            duration(p.backoff.first)
        } else {
            let compact = |d| humantime::format_duration(d).to_string().replace(' ', "");
            Value::String(format!("{}..{}", compact(p.backoff.first), compact(p.backoff.max)))
        };
        t.insert("backoff".into(), backoff);
        t.insert("min-uptime".into(), duration(p.min_uptime));
        t.insert("max-restarts".into(), i64::from(p.max_restarts).into());
        t.insert("restart-window".into(), duration(p.restart_window));
        t.insert("stop-signal".into(), p.stop_signal.name().into());
        t.insert("kill-timeout".into(), duration(p.kill_timeout));
        if let Some(cwd) = &g.cwd {
            t.insert("cwd".into(), cwd.display().to_string().into());
        }
        let mut env = Table::new();
        for (k, v) in &g.env {
            env.insert(k.to_string_lossy().into_owned(), v.to_string_lossy().into_owned().into());
        }
        t.insert("env".into(), Value::Table(env));
        t.insert("wait-ready".into(), g.wait_ready.into());
        t.insert("ready-timeout".into(), duration(p.ready_timeout));
        t.insert("reload-settle".into(), duration(p.reload_settle));
        let off = || Value::String("off".into());
        t.insert("heartbeat-timeout".into(), p.heartbeat_timeout.map_or_else(off, duration));
        let memory = p.max_memory.map_or_else(off, |b| Value::String(exact_size(b)));
        t.insert("max-memory".into(), memory);
        t.insert("node-ipc".into(), if g.node_ipc { "on" } else { "off" }.into());
        t.insert("node-cluster".into(), if g.node_cluster { "on" } else { "off" }.into());
        let sched = match g.node_cluster_sched {
            crate::config::Sched::Shared => "shared",
            crate::config::Sched::RoundRobin => "rr",
        };
        t.insert("node-cluster-sched".into(), sched.into());
        t.insert("share-binds".into(), if g.share_binds { "on" } else { "off" }.into());
        application_keys(spec, g, &mut t);
        super::describe_probes::insert(&mut t, &g.probes);
        groups.insert(g.name.clone(), Value::Table(t));
    }
    top.insert("group".into(), Value::Table(groups));
    let body = toml::to_string(&top).unwrap_or_default();
    let count = spec.groups.len();
    let plural = if count == 1 { "" } else { "s" };
    let order = start_order_line(spec).unwrap_or_default();
    let schedules = describe_schedules(spec, std::time::SystemTime::now());
    format!(
        "# {}: valid, {count} group{plural}, as corral resolves it\n{order}{body}{schedules}",
        path.display()
    )
}

/// A size in the largest binary unit that says it exactly: `512MiB`, not `536870912B`.
pub(super) fn exact_size(bytes: u64) -> String {
    for (unit, size) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if bytes >= size && bytes.is_multiple_of(size) {
            return format!("{}{unit}", bytes / size);
        }
    }
    format!("{bytes}B")
}

/// The keys that make a group part of an application or a developer's loop: env files,
/// schedules, dependencies, the pty, watch.
fn application_keys(spec: &RunSpec, g: &GroupSpec, t: &mut toml::Table) {
    use toml::{Table, Value};
    let duration = |d: std::time::Duration| {
        Value::String(humantime::format_duration(d).to_string().replace(' ', ""))
    };
    if !g.env_files.is_empty() {
        let files = g.env_files.iter().map(|f| Value::String(f.display().to_string()));
        t.insert("env-file".into(), Value::Array(files.collect()));
    }
    for (key, schedule) in [("schedule", &g.schedule), ("reload-schedule", &g.reload_schedule)] {
        if let Some(s) = schedule {
            t.insert(key.into(), s.text.clone().into());
            t.insert("schedule-tz".into(), s.zone.name().into());
        }
    }
    t.insert("pty".into(), g.pty.into());
    if !g.depends_on.is_empty() {
        let mut on = Table::new();
        for d in &g.depends_on {
            let name = spec.groups.get(usize::from(d.group)).map_or("?", |o| o.name.as_str());
            on.insert(name.to_string(), d.condition.name().into());
        }
        t.insert("depends-on".into(), Value::Table(on));
    }
    if let Some(w) = &g.watch {
        let paths = w.paths.iter().map(|p| Value::String(p.display().to_string()));
        t.insert("watch".into(), Value::Array(paths.collect()));
        let globs = w.ignore.iter().map(|i| Value::String(i.clone()));
        t.insert("watch-ignore".into(), Value::Array(globs.collect()));
        t.insert("watch-debounce".into(), duration(w.debounce));
    }
}

/// `# start order: db, migrate, web; stop order: web, migrate, db` when groups depend on
/// others (each starts after what it waits for; unrelated groups start and stop together).
fn start_order_line(spec: &RunSpec) -> Option<String> {
    if spec.groups.iter().all(|g| g.depends_on.is_empty()) {
        return None;
    }
    let edges: Vec<Vec<u16>> =
        spec.groups.iter().map(|g| g.depends_on.iter().map(|d| d.group).collect()).collect();
    let order = crate::core::start_order(&edges).ok()?;
    let names: Vec<&str> = order
        .iter()
        .filter_map(|&g| spec.groups.get(usize::from(g)).map(|g| g.name.as_str()))
        .collect();
    let reverse: Vec<&str> = names.iter().rev().copied().collect();
    Some(format!(
        "# start order: {}; stop order: {} (groups that do not depend on each other start and \
         stop together)\n",
        names.join(", "),
        reverse.join(", ")
    ))
}

/// The next three times of each schedule, as TOML comments (the output still reads back).
fn describe_schedules(spec: &RunSpec, now: std::time::SystemTime) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for g in &spec.groups {
        for (what, schedule) in [("runs", &g.schedule), ("reloads", &g.reload_schedule)] {
            let Some(s) = schedule else { continue };
            let times: Vec<String> = s.upcoming(now, 3).into_iter().map(|t| s.show(t)).collect();
            let _ = writeln!(
                out,
                "# {} {what} at \"{}\" ({}): next {}",
                g.name,
                s.text,
                s.zone.name(),
                times.join(", ")
            );
        }
    }
    if out.is_empty() { out } else { format!("\n{out}") }
}
