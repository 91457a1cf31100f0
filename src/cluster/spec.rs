//! Turning a [`Cluster`]'s settings into the checked [`RunSpec`] it runs, through the same
//! rules as the command line's ([`crate::spec`]), with this very program as the workers'
//! command.

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::{CLUSTER_VAR, Cluster, ClusterError};
use crate::config::{CommandSpec, RunSpec};
use crate::schedule::Zone;
use crate::spec::{GroupRequest, RunRequest, SpecError, Switch, resolve};

impl Cluster {
    /// Checks every setting as [`run`](Cluster::run) does before it starts anything, and
    /// starts nothing: the reason a setting is refused, or `Ok`.
    pub fn check(&self) -> Result<(), ClusterError> {
        self.spec().map(drop)
    }

    /// The checked run this cluster stands for: what [`run`](Cluster::run) runs.
    pub(crate) fn spec(&self) -> Result<RunSpec, ClusterError> {
        let group = self.group_request()?.build().map_err(refusal)?;
        let run = RunRequest {
            instance: self.instance.clone().unwrap_or_else(|| self.name.clone()),
            // The library's callers name their clusters; a clash is theirs to hear about.
            instance_is_default: false,
            dashboard: self.dashboard,
            log_format: self.log_format,
            verbosity: self.verbosity,
            log_dir: self.log_dir.as_ref().map(|(dir, _)| dir.clone()),
            log_keep: self.log_dir.as_ref().map_or(crate::config::DEFAULT_LOG_KEEP, |l| l.1),
            strip_ansi: self.strip_ansi,
            control: self.control.clone(),
            metrics: self.metrics,
        };
        run.build(vec![group]).map_err(refusal)
    }

    fn group_request(&self) -> Result<GroupRequest, ClusterError> {
        let here = std::env::current_dir().map_err(|e| ClusterError::Cwd {
            path: ".".into(),
            reason: crate::backend::describe(&e),
        })?;
        let mut request = GroupRequest::new(self.name.clone(), self.command()?, here.clone());
        request.workers = self.workers;
        request.listen.clone_from(&self.listen);
        request.policy = self.policy;
        request.restart_chosen = self.restart_chosen;
        request.cwd = self.cwd.as_deref().map(checked_cwd).transpose()?;
        request.env.clone_from(&self.env);
        // Last, so that it wins over a variable of the same name given above.
        request.env.push((CLUSTER_VAR.into(), self.name.clone().into()));
        // Relative to the primary's directory, whatever the workers' cwd.
        request.env_files = self.env_files.iter().map(|f| here.join(f)).collect();
        request.schedule.clone_from(&self.schedule);
        request.reload_schedule.clone_from(&self.reload_schedule);
        request.schedule_tz = if self.schedule_utc { Zone::Utc } else { Zone::Local };
        request.wait_ready = self.wait_ready;
        // The workers are this program, not Node.
        request.node_ipc = Switch::Off;
        request.node_cluster = Switch::Off;
        request.share_binds = self.share_binds;
        request.pty = self.pty;
        request.watch.clone_from(&self.watch);
        request.watch_ignore.clone_from(&self.watch_ignore);
        request.watch_debounce = self.watch_debounce;
        request.probes = self.probes.clone();
        Ok(request)
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

/// A refusal of the shared rules, said as the builder's settings are named.
fn refusal(e: SpecError) -> ClusterError {
    match e {
        SpecError::Name { name, reason } => ClusterError::Name { name, reason },
        SpecError::Instance { name, reason } => ClusterError::Instance { name, reason },
        SpecError::Workers(n) => ClusterError::Workers(n),
        SpecError::ListenName { text, name } => ClusterError::Listen {
            addr: text,
            reason: format!("the name '{name}' is already used"),
        },
        SpecError::ListenTwice { text } => {
            ClusterError::Listen { addr: text, reason: "the address is given twice".into() }
        }
        SpecError::ScheduleRestartsAlways => ClusterError::Invalid {
            option: "restart",
            expected: "Never or OnFailure with a schedule (a long-running cluster is reloaded \
                       on a schedule: reload_schedule)",
        },
        SpecError::Policy { option, expected } => ClusterError::Invalid { option, expected },
        SpecError::Env(key) => ClusterError::Env(key),
        SpecError::EnvFile { error, .. } => ClusterError::EnvFile(error.message),
        SpecError::Watch { path, reason, .. } => {
            ClusterError::Watch { path: path.display().to_string(), reason }
        }
        SpecError::LogDir { path, reason } => {
            ClusterError::LogDir { path: path.display().to_string(), reason }
        }
    }
}

/// An existing directory, made absolute so it means the same wherever it is used.
fn checked_cwd(dir: &Path) -> Result<std::path::PathBuf, ClusterError> {
    resolve::cwd(dir)
        .map_err(|reason| ClusterError::Cwd { path: dir.display().to_string(), reason })
}
