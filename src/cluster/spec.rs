//! Turning a [`Cluster`]'s settings into the checked [`RunSpec`] it runs: the same limits
//! as the command line's, and this very program as the workers' command.

use std::io::IsTerminal;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use super::{CLUSTER_VAR, Cluster, ClusterError, Control};
use crate::cli::values;
use crate::config::{CommandSpec, GroupSpec, LogDir, OutputMode, RunSpec};
use crate::core::{MAX_WORKERS, Policy};

impl Cluster {
    /// The checked run this cluster stands for: what [`run`](Cluster::run) runs.
    pub fn spec(&self) -> Result<RunSpec, ClusterError> {
        let name = values::name(&self.name)
            .map_err(|reason| ClusterError::Name { name: self.name.clone(), reason })?;
        let workers = match self.workers {
            Some(n) if (1..=MAX_WORKERS).contains(&n) => n,
            Some(n) => return Err(ClusterError::Workers(n)),
            None => std::thread::available_parallelism()
                .map_or(1, |n| u32::try_from(n.get()).unwrap_or(MAX_WORKERS).min(MAX_WORKERS)),
        };
        check_policy(&self.policy)?;
        let mut env = Vec::with_capacity(self.env.len() + 1);
        for (key, value) in &self.env {
            let bad_key = key.is_empty() || key.as_bytes().iter().any(|&b| b == b'=' || b == 0);
            if bad_key || value.as_bytes().contains(&0) {
                return Err(ClusterError::Env(key.to_string_lossy().into_owned()));
            }
            env.push((key.clone(), value.clone()));
        }
        // Last, so that it wins over a variable of the same name given above.
        env.push((CLUSTER_VAR.into(), name.clone().into()));
        let dashboard = self.dashboard.unwrap_or_else(|| std::io::stdout().is_terminal());
        let output =
            if dashboard { OutputMode::Dashboard } else { OutputMode::Headless(self.log_format) };
        let group = GroupSpec {
            name,
            workers,
            command: self.command()?,
            policy: self.policy,
            cwd: self.cwd.as_deref().map(checked_cwd).transpose()?,
            env,
            env_files: Vec::new(),
            schedule: None,
            reload_schedule: None,
            listen: self.listen.clone(),
            wait_ready: self.wait_ready,
            node_ipc: false,
            node_cluster: false,
            node_cluster_sched: crate::config::Sched::Shared,
            share_binds: false,
            depends_on: Vec::new(),
            pty: false,
            watch: None,
            probes: crate::probe_spec::GroupProbes::default(),
        };
        let instance = match &self.instance {
            Some(name) => values::name(name)
                .map_err(|reason| ClusterError::Instance { name: name.clone(), reason })?,
            None => group.name.clone(),
        };
        let control = match &self.control {
            Control::Default => {
                Some(crate::control::default_dir().join(format!("{instance}.sock")))
            }
            Control::At(path) => Some(path.clone()),
            Control::Off => None,
        };
        Ok(RunSpec {
            groups: vec![group],
            output,
            verbosity: self.verbosity,
            log_files: self.log_files()?,
            strip_ansi: self.strip_ansi,
            instance,
            // The library's callers name their clusters; a clash is theirs to hear about.
            instance_is_default: false,
            control,
            metrics: None,
        })
    }

    /// `log_dir`, checked as `--log-dir`/`--log-keep` are, the directory made absolute.
    fn log_files(&self) -> Result<Option<LogDir>, ClusterError> {
        let Some((dir, keep)) = &self.log_dir else { return Ok(None) };
        let fail =
            |reason: String| ClusterError::LogDir { path: dir.display().to_string(), reason };
        if dir.as_os_str().is_empty() {
            return Err(fail("expected a directory".into()));
        }
        if *keep > values::MAX_LOG_KEEP {
            let reason = format!("expected at most {} rotated files kept", values::MAX_LOG_KEEP);
            return Err(fail(reason));
        }
        let dir = std::path::absolute(dir).map_err(|e| fail(crate::backend::describe(&e)))?;
        Ok(Some(LogDir { dir, keep: *keep }))
    }

    /// This very program, as the workers' command.
    fn command(&self) -> Result<CommandSpec, ClusterError> {
        let program = std::env::current_exe().map_err(ClusterError::CurrentExe)?;
        let mut own = std::env::args_os();
        // argv[0] as this program was given it, so `ps` shows the workers by that name.
        let argv0 = own.next().unwrap_or_else(|| program.clone().into_os_string());
        let given = self.args.clone().unwrap_or_else(|| own.collect());
        let mut argv = Vec::with_capacity(given.len() + 1);
        argv.push(argv0);
        argv.extend(given);
        if let Some(bad) = argv.iter().find(|a| a.as_bytes().contains(&0)) {
            return Err(ClusterError::Argument(bad.to_string_lossy().into_owned()));
        }
        let display = argv.iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" ");
        Ok(CommandSpec { program, argv, display })
    }
}

/// The command line's limits on the same settings (its value parsers refuse these).
fn check_policy(p: &Policy) -> Result<(), ClusterError> {
    let invalid = |option, expected| Err(ClusterError::Invalid { option, expected });
    if p.backoff.max < p.backoff.first {
        return invalid("backoff", "a first delay not above the maximum");
    }
    if p.backoff.first.is_zero() && !p.backoff.max.is_zero() {
        return invalid(
            "backoff",
            "a first delay above 0 (it doubles from there), or Backoff::ZERO",
        );
    }
    if p.restart_window.is_zero() {
        return invalid("restart window", "a duration above 0");
    }
    if p.ready_timeout.is_zero() {
        return invalid("ready timeout", "a duration above 0");
    }
    if p.heartbeat_timeout.is_some_and(|d| d.is_zero()) {
        return invalid("heartbeat timeout", "a duration above 0");
    }
    if p.max_memory == Some(0) {
        return invalid("max memory", "a size above 0");
    }
    Ok(())
}

/// An existing directory, made absolute so it means the same wherever it is used.
fn checked_cwd(dir: &std::path::Path) -> Result<PathBuf, ClusterError> {
    let fail = |reason: String| ClusterError::Cwd { path: dir.display().to_string(), reason };
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => return Err(fail("not a directory".into())),
        Err(e) => return Err(fail(crate::backend::describe(&e))),
    }
    std::path::absolute(dir).map_err(|e| fail(crate::backend::describe(&e)))
}
