//! What `check-config` prints: a run as corral resolved it, as TOML that corral reads back
//! as is, with the start order and the next times of the schedules as comments.

use std::path::Path;

use crate::config::{GroupSpec, RunSpec};

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
