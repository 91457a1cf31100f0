//! A run from a config file: the file's groups, each with `[defaults]` under its own keys
//! and the options given on the command line over both, checked as the command line is.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use super::file::{self, ConfigFile, FileCommand, FileError, FileGroup, Layer, Pos};
use super::{CliExit, RunOpts, Target, resolve, values};
use crate::config::{CommandSpec, GroupSpec, RunSpec};

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
    let text = read(path)?;
    let dir = std::path::absolute(path)
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("/"));
    let file = file::parse(&text, &dir).map_err(|e| CliExit::usage(e.render(path)))?;
    let stem = path.file_stem().and_then(OsStr::to_str).and_then(|s| values::name(s).ok());
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
    let log_dir = if given("log_dir") { opts.log_dir.clone() } else { file.log_dir.clone() };
    let log_keep = match file.log_keep {
        Some(keep) if !given("log_keep") => keep,
        _ => opts.log_keep,
    };
    let format = match file.log_format {
        Some(format) if !given("log_format") => format,
        _ => opts.log_format,
    };
    let instance =
        opts.instance.clone().or_else(|| file.instance.clone()).or(stem).unwrap_or_else(|| {
            groups.first().map(|g: &GroupSpec| g.name.clone()).unwrap_or_default()
        });
    let instance_is_default =
        opts.instance.is_none() && file.instance.is_none() && opts.control.is_none();
    let metrics = if given("metrics") { opts.metrics } else { file.metrics.or(opts.metrics) };
    Ok(RunSpec {
        groups,
        output: super::output_mode(opts, format),
        verbosity: super::verbosity(opts),
        log_files: super::log_files(log_dir.as_deref(), log_keep)?,
        control: super::control_path(opts, &instance),
        metrics,
        instance,
        instance_is_default,
    })
}

/// The largest config file corral reads; a config is a few kilobytes.
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// The config file's text: a regular file (not `/dev/zero`, not a FIFO that would block
/// forever) of at most `MAX_CONFIG_BYTES`.
fn read(path: &Path) -> Result<String, CliExit> {
    use std::io::Read as _;
    use std::os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _};
    let shown = path.display();
    let failed = |e: &std::io::Error| {
        CliExit::usage(format!(
            "cannot read config file '{shown}': {}",
            crate::backend::describe(e)
        ))
    };
    // WHY O_NONBLOCK: opening a FIFO for reading blocks until someone writes to it.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| failed(&e))?;
    let kind = file.metadata().map_err(|e| failed(&e))?.file_type();
    if !kind.is_file() {
        let what = if kind.is_dir() {
            "a directory"
        } else if kind.is_fifo() {
            "a FIFO"
        } else if kind.is_char_device() || kind.is_block_device() {
            "a device"
        } else {
            "a socket"
        };
        return Err(CliExit::usage(format!("config file '{shown}' is {what}, not a regular file")));
    }
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_BYTES + 1).read_to_end(&mut bytes).map_err(|e| failed(&e))?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(CliExit::usage(format!(
            "config file '{shown}' is over {} KiB: not a corral config",
            MAX_CONFIG_BYTES / 1024
        )));
    }
    String::from_utf8(bytes)
        .map_err(|_| CliExit::usage(format!("{shown}: expected a UTF-8 text file (TOML)")))
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
    let mut merged = opts.clone();
    apply(&file.defaults, &mut merged, given);
    apply(&group.layer, &mut merged, given);
    // Relative paths in a file mean the file's directory, wherever corral is started from.
    let cwd = if given("cwd") {
        opts.cwd.as_deref().map(resolve::cwd).transpose().map_err(CliExit::usage)?
    } else {
        let (dir, pos) = match group.layer.cwd.as_ref().or(file.defaults.cwd.as_ref()) {
            Some((dir, pos)) => (dir.clone(), Some(*pos)),
            None => (dir.to_path_buf(), None),
        };
        let checked = resolve::cwd(&dir).map_err(|reason| {
            let reason = reason.trim_start_matches("--cwd ").to_string();
            match pos {
                Some(pos) => at(pos, "cwd", reason),
                None => CliExit::usage(reason),
            }
        })?;
        Some(checked)
    };
    // The file's environment first, so `--env` on the command line wins.
    let mut env = file.defaults.env.clone();
    env.extend(group.layer.env.iter().cloned());
    env.extend(opts.env.iter().cloned());
    merged.env = env;
    // A PATH the group sets is the one its command is looked up in.
    let group_path = merged.env.iter().rev().find(|(k, _)| k == "PATH").map(|(_, v)| v.clone());
    let path_var = group_path.as_deref().or(path_var);
    let command = command(&group.command, cwd.as_deref(), path_var)
        .map_err(|reason| at(group.command_at, "command", reason))?;
    let workers = merged.workers.unwrap_or_else(super::default_workers);
    let listen = super::listen_specs(&merged.listen)?;
    let target = Target { name: group.name.clone(), workers, command, listen };
    Ok(super::group(&merged, cwd, target))
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

/// Sets each option the layer has, unless the command line gave it.
fn apply(layer: &Layer, opts: &mut RunOpts, given: &dyn Fn(&str) -> bool) {
    macro_rules! set {
        ($field:ident) => {
            if let Some(v) = &layer.$field
                && !given(stringify!($field))
            {
                opts.$field = v.clone();
            }
        };
    }
    if let Some(n) = layer.workers
        && !given("workers")
    {
        opts.workers = Some(n);
    }
    set!(listen);
    set!(restart);
    set!(backoff);
    set!(min_uptime);
    set!(max_restarts);
    set!(restart_window);
    set!(stop_signal);
    set!(kill_timeout);
    set!(wait_ready);
    set!(ready_timeout);
    set!(reload_settle);
    set!(heartbeat_timeout);
    set!(max_memory);
    set!(node_ipc);
    set!(node_cluster);
    set!(node_cluster_sched);
    set!(share_binds);
    let probes = [
        (&layer.readiness_probe, &mut opts.readiness_probe, "readiness_probe"),
        (&layer.liveness_probe, &mut opts.liveness_probe, "liveness_probe"),
        (&layer.startup_probe, &mut opts.startup_probe, "startup_probe"),
    ];
    for (from, to, id) in probes {
        if let Some(p) = from
            && !given(id)
        {
            *to = Some(p.clone());
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
        let memory = p.max_memory.map_or_else(off, |b| Value::String(format!("{b}B")));
        t.insert("max-memory".into(), memory);
        t.insert("node-ipc".into(), if g.node_ipc { "on" } else { "off" }.into());
        t.insert("node-cluster".into(), if g.node_cluster { "on" } else { "off" }.into());
        let sched = match g.node_cluster_sched {
            crate::config::Sched::Shared => "shared",
            crate::config::Sched::RoundRobin => "rr",
        };
        t.insert("node-cluster-sched".into(), sched.into());
        t.insert("share-binds".into(), if g.share_binds { "on" } else { "off" }.into());
        super::describe_probes::insert(&mut t, &g.probes);
        groups.insert(g.name.clone(), Value::Table(t));
    }
    top.insert("group".into(), Value::Table(groups));
    let body = toml::to_string(&top).unwrap_or_default();
    let count = spec.groups.len();
    let plural = if count == 1 { "" } else { "s" };
    format!("# {}: valid, {count} group{plural}, as corral resolves it\n{body}", path.display())
}
