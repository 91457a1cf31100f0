//! Starting a run: what must be bound or opened before anything is spawned (listeners,
//! the control socket, `--metrics`, the output writers), each failure a clear exit 2;
//! then the loop, on one thread.

use std::os::fd::AsFd;
use std::rc::Rc;
use std::sync::Arc;

use super::hub::{Hub, Reports};
use super::inputs::Inputs;
use super::{Runtime, control_service, instance, listeners, metrics_glue, summary};
use crate::backend;
use crate::config::{LogFormat, OutputMode, RunSpec};
use crate::headless::Headless;
use crate::sinks::logfiles::LogFiles;

/// Why corral could not start; nothing was spawned. Exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Bind(#[from] backend::BindError),
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot start the output writer: {0}")]
    Output(std::io::Error),
    #[error(transparent)]
    Control(#[from] crate::control::socket::SocketError),
    #[error("{0}")]
    Inherited(#[from] backend::InheritError),
    #[error(
        "listen = fd:{name}: no socket named '{name}' was handed to corral (LISTEN_FDNAMES: {known})"
    )]
    NoSuchInherited { name: String, known: String },
    #[error(transparent)]
    Logs(#[from] crate::sinks::logfiles::StartFailure),
    #[error(transparent)]
    Metrics(#[from] metrics_glue::MetricsError),
    #[error(
        "corral needs about {needed} open files for {workers} workers and may open only {limit} \
         (ulimit -n): raise the limit"
    )]
    FdLimit { needed: u64, workers: u64, limit: u64 },
}

/// Runs the groups until shutdown; returns corral's exit code.
pub fn run(mut spec: RunSpec) -> Result<u8, StartError> {
    backend::ensure_std_fds();
    backend::raise_fd_limit();
    let workers: u64 = spec.groups.iter().map(|g| u64::from(g.workers)).sum();
    // Every worker's probes may be in flight at once (a target that hangs).
    let probes: u64 = spec
        .groups
        .iter()
        .map(|g| {
            let kinds = [&g.probes.readiness, &g.probes.liveness, &g.probes.startup];
            u64::from(g.workers) * kinds.iter().filter(|p| p.is_some()).count() as u64
        })
        .sum();
    let (needed, limit) = (backend::fds_needed(workers, probes), backend::fd_limit());
    if limit < needed {
        // WHY refuse: below this no worker can even be spawned, and every spawn would fail
        // with an errno that does not name the limit.
        return Err(StartError::FdLimit { needed, workers, limit });
    }
    let listeners = listeners::bind_all(&mut spec)?;
    let control = instance::bind_control(&mut spec)?;
    let metrics = metrics_glue::start(&spec)?;
    if let Err(e) = backend::become_subreaper() {
        tracing::warn!(
            "cannot become a child subreaper ({e}); escaped descendants may outlive corral"
        );
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(StartError::Runtime)?;
    let stdout_closed = Arc::new(tokio::sync::Notify::new());
    let names: Vec<String> = spec.groups.iter().map(|g| g.name.clone()).collect();
    // Shared by both lossless writers, so a reader held back by either hears the resume.
    let resume = Arc::new(tokio::sync::Notify::new());
    let files = match &spec.log_files {
        Some(config) => {
            let show_metrics = spec.verbosity > 0;
            let mut files =
                LogFiles::start(config, names.clone(), show_metrics, Arc::clone(&resume))?;
            files.strip_ansi(spec.strip_ansi);
            Some(files)
        }
        None => None,
    };
    let headless = match spec.output {
        OutputMode::Headless(format) => {
            let mut h =
                headless(format, &names, &stdout_closed, &resume).map_err(StartError::Output)?;
            h.show_metrics(spec.verbosity > 0);
            h.strip_ansi(spec.strip_ansi);
            Some(h)
        }
        OutputMode::Dashboard => None,
    };
    let log_dir = spec.log_files.as_ref().map(|l| l.dir.clone());
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let inputs = Rc::new(Inputs::default());
        let hub = Reports::new(Hub::new(headless, files, resume, Rc::clone(&inputs)));
        let control = control.map(control_service::Control::new);
        if control.is_some() {
            // `ctl logs` and `status` read what the dashboard would show.
            hub.keep_logs();
        }
        if metrics.is_some() {
            // Headless corral keeps no event data; the workers' numbers are needed now.
            hub.record_metrics();
        }
        let mut runtime = Runtime::new(spec, listeners, hub, inputs, stdout_closed);
        runtime.control = control;
        runtime.metrics = metrics;
        let code = runtime.run().await;
        if runtime.dashboard_on() {
            summary::print(&runtime.core, &runtime.instance, code, log_dir.as_deref());
        }
        Ok(code)
    })
}

pub(super) fn headless(
    format: LogFormat,
    names: &[String],
    closed: &Arc<tokio::sync::Notify>,
    resume: &Arc<tokio::sync::Notify>,
) -> std::io::Result<Headless> {
    let notify = Arc::clone(closed);
    let on_close = Box::new(move || notify.notify_one());
    // WHY a file on a copy of fd 1 and not `io::stdout()`: the lossless writer must know
    // exactly how much each write took (std's line buffering hides that on an error), and
    // the copy is close-on-exec, so no worker inherits it.
    let out = std::io::stdout().as_fd().try_clone_to_owned()?;
    let out = Box::new(std::fs::File::from(out));
    Headless::new(format, names.to_vec(), out, on_close, Arc::clone(resume))
}
