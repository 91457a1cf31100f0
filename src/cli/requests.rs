//! The command line's values handed to the shared rules ([`crate::spec`]): the options
//! typed, the group and run requests they make, and the shared rules' refusals said the
//! command line's way (`--option 'value': reason`).

use std::path::{Path, PathBuf};

use super::CliExit;
use super::opts::{FormatArg, NodeIpcArg, RestartArg, RunOpts, SchedArg, SwitchArg};
use crate::config::{CommandSpec, LogFormat};
use crate::core::RestartPolicy;
use crate::spec::{Control, GroupOptions, GroupRequest, RunRequest, SpecError, Switch, resolve};

/// The run-wide options as the command line (and the file's run, `format` and `log_dir`
/// merged in) asks for them.
pub(super) fn run_request(
    opts: &RunOpts,
    instance: String,
    instance_is_default: bool,
) -> RunRequest {
    let control = match (&opts.control, opts.no_control) {
        (_, true) => Control::Off,
        (Some(path), false) => Control::At(path.clone()),
        (None, false) => Control::Default,
    };
    RunRequest {
        instance,
        instance_is_default,
        // Headless when asked, else as the terminal says.
        dashboard: opts.no_ui.then_some(false),
        log_format: match opts.log_format {
            FormatArg::Text => LogFormat::Text,
            FormatArg::Json => LogFormat::Json,
        },
        verbosity: verbosity(opts),
        log_dir: opts.log_dir.clone(),
        log_keep: opts.log_keep,
        strip_ansi: opts.strip_ansi,
        control,
        metrics: opts.metrics,
    }
}

/// `--cwd`, checked and made absolute.
pub(super) fn cwd_arg(dir: &Path) -> Result<PathBuf, CliExit> {
    resolve::cwd(dir)
        .map_err(|reason| CliExit::usage(format!("--cwd '{}': {reason}", dir.display())))
}

/// A refusal of the shared checks, said the command line's way.
pub(super) fn spec_exit(e: SpecError) -> CliExit {
    match e {
        SpecError::ListenName { text, name } => CliExit::usage(format!(
            "invalid value '{text}' for '--listen <ADDR>': the name '{name}' is already used"
        )),
        SpecError::ListenTwice { text } => CliExit::usage(format!(
            "invalid value '{text}' for '--listen <ADDR>': the address is given twice"
        )),
        SpecError::LogDir { path, reason } => CliExit::usage(format!(
            "invalid value '{}' for '--log-dir <DIR>': {reason}",
            path.display()
        )),
        SpecError::EnvFile { error, .. } => CliExit::usage(error.message),
        SpecError::Watch { path, reason, .. } => {
            CliExit::usage(format!("--watch '{}': {reason}", path.display()))
        }
        e => CliExit::usage(e),
    }
}

fn verbosity(opts: &RunOpts) -> i8 {
    let verbosity = i16::from(opts.verbose) - i16::from(opts.quiet);
    i8::try_from(verbosity.clamp(i8::MIN.into(), i8::MAX.into())).unwrap_or(0)
}

/// The group options typed on the command line, and only those: what is not typed is
/// left to a file's, else to the shared defaults (which the help's defaults show).
pub(super) fn given_options(opts: &RunOpts, given: &dyn Fn(&str) -> bool) -> GroupOptions {
    let switch = |arg: NodeIpcArg| match arg {
        NodeIpcArg::Auto => Switch::Auto,
        NodeIpcArg::On => Switch::On,
        NodeIpcArg::Off => Switch::Off,
    };
    let typed = |id: &str| given(id);
    GroupOptions {
        workers: opts.workers.filter(|_| typed("workers")),
        listen: typed("listen").then(|| opts.listen.clone()),
        restart: typed("restart").then_some(match opts.restart {
            RestartArg::Always => RestartPolicy::Always,
            RestartArg::OnFailure => RestartPolicy::OnFailure,
            RestartArg::Never => RestartPolicy::Never,
        }),
        backoff: typed("backoff").then_some(opts.backoff),
        min_uptime: typed("min_uptime").then_some(opts.min_uptime),
        max_restarts: typed("max_restarts").then_some(opts.max_restarts),
        restart_window: typed("restart_window").then_some(opts.restart_window),
        stop_signal: typed("stop_signal").then_some(opts.stop_signal),
        kill_timeout: typed("kill_timeout").then_some(opts.kill_timeout),
        schedule_tz: typed("schedule_tz").then_some(opts.schedule_tz),
        wait_ready: typed("wait_ready").then_some(opts.wait_ready),
        ready_timeout: typed("ready_timeout").then_some(opts.ready_timeout),
        reload_settle: typed("reload_settle").then_some(opts.reload_settle),
        heartbeat_timeout: opts.heartbeat_timeout.filter(|_| typed("heartbeat_timeout")).map(Some),
        max_memory: opts.max_memory.filter(|_| typed("max_memory")).map(Some),
        node_ipc: typed("node_ipc").then(|| switch(opts.node_ipc)),
        node_cluster: typed("node_cluster").then(|| switch(opts.node_cluster)),
        node_cluster_sched: typed("node_cluster_sched").then_some(match opts.node_cluster_sched {
            SchedArg::Shared => crate::config::Sched::Shared,
            SchedArg::Rr => crate::config::Sched::RoundRobin,
        }),
        share_binds: typed("share_binds").then_some(opts.share_binds == SwitchArg::On),
        pty: typed("pty").then_some(opts.pty),
        watch_ignore: typed("watch_ignore").then(|| opts.watch_ignore.clone()),
        watch_debounce: typed("watch_debounce").then_some(opts.watch_debounce),
        readiness_probe: opts.readiness_probe.clone().filter(|_| typed("readiness_probe")),
        liveness_probe: opts.liveness_probe.clone().filter(|_| typed("liveness_probe")),
        startup_probe: opts.startup_probe.clone().filter(|_| typed("startup_probe")),
    }
}

/// A group of the command line or a file with every option at its default: the shared
/// defaults, and for any program the ways that fit it (Node's IPC and cluster for Node,
/// its own `bind()` shared).
pub(super) fn base_request(
    name: String,
    command: CommandSpec,
    cwd: Option<PathBuf>,
) -> GroupRequest {
    let mut request = GroupRequest::new(name, command, PathBuf::new());
    request.cwd = cwd;
    request.node_ipc = Switch::Auto;
    request.node_cluster = Switch::Auto;
    request.share_binds = true;
    request
}
