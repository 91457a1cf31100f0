//! A group's table (and `[defaults]`): each key read with the command line's own parsers.

use std::ffi::OsString;

use toml::Spanned;
use toml::de::DeValue;

use super::{
    FileCommand, FileDependency, FileError, FileGroup, GROUP_KEYS, Here, Layer, Pos, position,
};
use crate::config::Sched;
use crate::core::RestartPolicy;
use crate::core::{Condition, Dependency, start_order};
use crate::spec::Switch;
use crate::spec::values::{self, Listen};

/// A group's `depends-on` as written: the other group's name, where it is named, the
/// condition. Names become indices once every group is known.
pub(super) type NamedDepends = Vec<(String, Pos, Condition)>;

/// What a group's table holds besides its options: its command (and where) and what it
/// depends on.
pub(super) type GroupTable = (Layer, Option<(FileCommand, Pos)>, NamedDepends);

/// Reads a group's table (or `[defaults]`, which takes every key but `command` and
/// `depends-on`).
pub(super) fn layer(at: &Here<'_, '_>, is_group: bool) -> Result<GroupTable, FileError> {
    let mut layer = Layer::default();
    let mut command = None;
    let mut depends = Vec::new();
    for (key, value) in at.table()? {
        let name = key.get_ref().as_ref();
        let here = at.child(name, value, key.span());
        match name {
            "command" if is_group => command = Some((file_command(&here)?, here.pos())),
            "depends-on" if is_group => depends = depends_on(&here)?,
            "workers" => {
                let max = values::MAX_WORKERS;
                layer.options.workers =
                    Some(here.int(1, u64::from(max), &format!("1..={max}"))? as u32);
            }
            "listen" => {
                layer.options.listen = Some(listen(&here)?);
                layer.listen_at = Some(here.pos());
            }
            "restart" => layer.options.restart = Some(restart(&here)?),
            "backoff" => {
                let what = "a string like \"100ms..30s\", \"1s\" or \"0\"";
                layer.options.backoff = Some(parsed(&here, what, values::backoff)?);
            }
            "min-uptime" => layer.options.min_uptime = Some(here.duration(false)?),
            "max-restarts" => {
                layer.options.max_restarts =
                    Some(here.int(0, u64::from(u32::MAX), "0 (never give up) or above")? as u32);
            }
            "restart-window" => layer.options.restart_window = Some(here.duration(true)?),
            "stop-signal" => {
                let what = "a signal name or number like \"TERM\", \"SIGINT\" or 2";
                layer.options.stop_signal = Some(parsed(&here, what, values::signal)?);
            }
            "kill-timeout" => layer.options.kill_timeout = Some(here.duration(false)?),
            "cwd" => layer.cwd = Some(here.path()?),
            "env" => layer.env = env(&here)?,
            "env-file" => layer.env_file = Some((env_files(&here)?, here.pos())),
            "schedule" => layer.schedule = Some((cron(&here)?, here.pos())),
            "reload-schedule" => layer.reload_schedule = Some((cron(&here)?, here.pos())),
            "schedule-tz" => {
                let what = "\"local\" or \"UTC\"";
                layer.options.schedule_tz =
                    Some(parsed(&here, what, crate::schedule::Zone::parse)?);
            }
            "wait-ready" => layer.options.wait_ready = Some(here.bool()?),
            "ready-timeout" => layer.options.ready_timeout = Some(here.duration(true)?),
            "reload-settle" => layer.options.reload_settle = Some(here.duration(false)?),
            "heartbeat-timeout" => {
                layer.options.heartbeat_timeout = Some(here.optional_duration()?);
            }
            "max-memory" => {
                let what = "a size like \"512MiB\" or \"1G\", or \"off\"";
                layer.options.max_memory = Some(parsed(&here, what, |text| match text {
                    "off" => Ok(None),
                    size => values::memory_size(size).map(Some),
                })?);
            }
            "node-ipc" => layer.options.node_ipc = Some(node_ipc(&here)?),
            "node-cluster" => layer.options.node_cluster = Some(node_ipc(&here)?),
            "share-binds" => {
                layer.options.share_binds = Some(match here.value.get_ref() {
                    DeValue::Boolean(on) => *on,
                    _ => here.choice(&[("on", true), ("off", false)])?,
                });
            }
            "node-cluster-sched" => {
                layer.options.node_cluster_sched =
                    Some(here.choice(&[("shared", Sched::Shared), ("rr", Sched::RoundRobin)])?);
            }
            "pty" => layer.options.pty = Some(here.bool()?),
            "watch" => layer.watch = Some(watch(&here)?),
            "watch-ignore" => layer.options.watch_ignore = Some(watch_ignore(&here)?),
            "watch-debounce" => layer.options.watch_debounce = Some(here.duration(false)?),
            "readiness-probe" => layer.options.readiness_probe = Some(super::probe::read(&here)?),
            "liveness-probe" => layer.options.liveness_probe = Some(super::probe::read(&here)?),
            "startup-probe" => layer.options.startup_probe = Some(super::probe::read(&here)?),
            _ => return Err(refused(&here, name, is_group)),
        }
    }
    Ok((layer, command, depends))
}

/// `depends-on = { db = "ready", migrate = "completed" }`.
fn depends_on(at: &Here<'_, '_>) -> Result<NamedDepends, FileError> {
    let mut out = Vec::new();
    for (key, value) in at.table()? {
        let name = key.get_ref().as_ref();
        let here = at.child(name, value, key.span());
        let expected = "\"started\", \"ready\" or \"completed\"";
        let word = here.str(expected)?;
        let Some(condition) = Condition::parse(word) else {
            return Err(here.fail(&format!("unknown condition \"{word}\": expected {expected}")));
        };
        let pos = position(at.cx.text, key.span().start);
        out.push((name.to_string(), pos, condition));
    }
    Ok(out)
}

/// Turns every group's `depends-on` names into indices: a name that is no group, or a
/// cycle (named whole: `a → b → a`), is an error at the entry that names it.
pub(super) fn resolve_depends(
    groups: &mut [FileGroup],
    written: Vec<NamedDepends>,
) -> Result<(), FileError> {
    let names: Vec<String> = groups.iter().map(|g| g.name.clone()).collect();
    let key = |g: usize, on: &str| format!("group.{}.depends-on.{on}", names[g]);
    for (g, entries) in written.into_iter().enumerate() {
        for (on, pos, condition) in entries {
            let Some(index) = names.iter().position(|n| *n == on) else {
                let near = super::closest(&on, names.iter().map(String::as_str))
                    .map_or_else(String::new, |n| format!(" (did you mean '{n}'?)"));
                let known = names.join(", ");
                let message = format!("no group named '{on}'{near}; the groups are {known}");
                return Err(FileError { pos: Some(pos), key: key(g, &on), message });
            };
            let dependency = Dependency { group: index as u16, condition };
            if let Some(group) = groups.get_mut(g) {
                group.depends_on.push(FileDependency { dependency, at: pos });
            }
        }
    }
    let edges: Vec<Vec<u16>> =
        groups.iter().map(|g| g.depends_on.iter().map(|d| d.dependency.group).collect()).collect();
    if let Err(cycle) = start_order(&edges) {
        let (first, second) = (usize::from(cycle[0]), cycle.get(1).copied().unwrap_or(cycle[0]));
        let path: Vec<&str> = cycle.iter().map(|&g| names[usize::from(g)].as_str()).collect();
        let at = groups[first].depends_on.iter().find(|d| d.dependency.group == second);
        return Err(FileError {
            pos: at.map(|d| d.at),
            key: key(first, &names[usize::from(second)]),
            message: format!("dependency cycle: {}", path.join(" → ")),
        });
    }
    Ok(())
}

/// Why a key is not taken here: `command` in `[defaults]`, `name` in a group, or unknown.
fn refused(at: &Here<'_, '_>, name: &str, is_group: bool) -> FileError {
    match name {
        "command" => at.fail_at_key("'command' belongs in a [group.NAME] table, not in [defaults]"),
        "depends-on" => at.fail_at_key(
            "'depends-on' belongs in a [group.NAME] table: each group says what it waits for",
        ),
        "name" if is_group => {
            at.fail_at_key("unknown key: a group's name is its table's name ([group.NAME])")
        }
        _ => {
            let expected = format!("one of {}", GROUP_KEYS.join(", "));
            at.unknown_key(GROUP_KEYS, &expected)
        }
    }
}

/// A string (or integer) read with one of the command line's parsers; its refusal is
/// shown with the text it refused.
fn parsed<T>(
    at: &Here<'_, '_>,
    what: &str,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Result<T, FileError> {
    let text = at.text_or_int(what)?;
    parse(&text).map_err(|reason| at.fail(&format!("{reason}, got \"{text}\"")))
}

fn restart(at: &Here<'_, '_>) -> Result<RestartPolicy, FileError> {
    at.choice(&[
        ("always", RestartPolicy::Always),
        ("on-failure", RestartPolicy::OnFailure),
        ("never", RestartPolicy::Never),
    ])
}

/// `node-ipc` or `node-cluster` = `true | false | "auto" | "on" | "off"`.
fn node_ipc(at: &Here<'_, '_>) -> Result<Switch, FileError> {
    match at.value.get_ref() {
        DeValue::Boolean(true) => Ok(Switch::On),
        DeValue::Boolean(false) => Ok(Switch::Off),
        _ => at.choice(&[("auto", Switch::Auto), ("on", Switch::On), ("off", Switch::Off)]),
    }
}

pub(super) fn file_command(at: &Here<'_, '_>) -> Result<FileCommand, FileError> {
    let what = "an array of strings like [\"node\", \"server.js\"] or a string run by /bin/sh -c";
    match at.value.get_ref() {
        DeValue::String(s) if !s.trim().is_empty() => Ok(FileCommand::Shell(s.to_string())),
        DeValue::Array(items) if !items.is_empty() => {
            let mut argv = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let here = at.child(&i.to_string(), item, item.span());
                argv.push(here.str("a string")?.to_string());
            }
            if argv[0].is_empty() {
                return Err(at.expected("a program name or path as the first element"));
            }
            Ok(FileCommand::Argv(argv))
        }
        _ => Err(at.expected(what)),
    }
}

fn listen(at: &Here<'_, '_>) -> Result<Vec<Listen>, FileError> {
    let what = "an array of addresses like [\"3000\", \"127.0.0.1:8080\", \"unix:/run/app.sock\"]";
    let items = strings(at, what)?;
    let mut out = Vec::with_capacity(items.len());
    for (item, i) in items {
        let here = at.child(&i.to_string(), item, item.span());
        let text = match item.get_ref() {
            DeValue::String(s) => s.to_string(),
            DeValue::Integer(n) if n.radix() == 10 => n.as_str().to_string(),
            _ => return Err(here.expected("an address string like \"3000\" or \"127.0.0.1:8080\"")),
        };
        out.push(
            values::listen(&text)
                .map_err(|reason| here.fail(&format!("{reason}, got \"{text}\"")))?,
        );
    }
    Ok(out)
}

/// `env = { NODE_ENV = "production", PORT = 3000 }`: numbers and booleans as written.
fn env(at: &Here<'_, '_>) -> Result<Vec<(OsString, OsString)>, FileError> {
    let mut out = Vec::new();
    for (key, value) in at.table()? {
        let name = key.get_ref().as_ref();
        let here = at.child(name, value, key.span());
        if name.is_empty() || name.contains(['=', '\0']) {
            return Err(here.fail_at_key("a variable name may not be empty or contain '=' or NUL"));
        }
        let text = match value.get_ref() {
            DeValue::String(s) => s.to_string(),
            DeValue::Integer(_) | DeValue::Float(_) | DeValue::Boolean(_) => {
                at.cx.text.get(value.span()).unwrap_or("").trim().to_string()
            }
            _ => return Err(here.expected("a string, number or boolean")),
        };
        if text.contains('\0') {
            return Err(here.expected("a value without NUL bytes"));
        }
        out.push((OsString::from(name), OsString::from(text)));
    }
    Ok(out)
}

/// `env-file = ".env"` or a list, each relative to the file's directory.
fn env_files(at: &Here<'_, '_>) -> Result<Vec<std::path::PathBuf>, FileError> {
    let what = "a path or a list of paths like [\".env\", \"web.env\"]";
    let mut out = Vec::new();
    for (item, i) in strings(at, what)? {
        out.push(at.child(&i.to_string(), item, item.span()).path()?.0);
    }
    Ok(out)
}

/// A string or an array of values, each with its index (a single value's is 0).
fn strings<'a, 'i>(
    at: &Here<'a, 'i>,
    what: &str,
) -> Result<Vec<(&'a Spanned<DeValue<'i>>, usize)>, FileError> {
    match at.value.get_ref() {
        DeValue::Array(items) => Ok(items.iter().enumerate().map(|(i, v)| (v, i)).collect()),
        DeValue::String(_) => Ok(vec![(at.value, 0)]),
        _ => Err(at.expected(what)),
    }
}

/// `watch = ["src", "package.json"]` (or one string): paths joined to the file's directory.
fn watch(at: &Here<'_, '_>) -> Result<Vec<(std::path::PathBuf, Pos)>, FileError> {
    let what = "a path or an array of paths like [\"src\", \"package.json\"]";
    let mut out = Vec::new();
    for (item, i) in strings(at, what)? {
        out.push(at.child(&i.to_string(), item, item.span()).path()?);
    }
    Ok(out)
}

/// A cron pattern, its mistakes said at the value.
fn cron(at: &Here<'_, '_>) -> Result<crate::schedule::Schedule, FileError> {
    let what = "a cron pattern like \"0 */5 * * * *\", \"30 4 * * *\" or \"@hourly\"";
    let text = at.str(what)?;
    values::cron(text).map_err(|reason| at.fail(&format!("{reason}, got \"{text}\"")))
}

/// `watch-ignore = ["*.log", "dist/"]` (or one string): gitignore lines.
fn watch_ignore(at: &Here<'_, '_>) -> Result<Vec<String>, FileError> {
    let what = "a glob or an array of globs like [\"*.log\", \"dist/\"]";
    let mut out = Vec::new();
    for (item, i) in strings(at, what)? {
        let here = at.child(&i.to_string(), item, item.span());
        out.push(here.parsed("a glob like \"*.log\"", values::watch_glob)?);
    }
    Ok(out)
}
