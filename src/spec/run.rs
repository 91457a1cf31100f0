//! The whole run as asked for ([`RunRequest`]) and its checked groups into the [`RunSpec`]:
//! where the output goes, the log files, this corral's name and its control socket.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;

use super::SpecError;
use super::values::{self, MAX_LOG_KEEP};
use crate::config::{GroupSpec, LogDir, LogFormat, OutputMode, RunSpec};

/// Where the control socket (docs/control.md) goes.
#[derive(Clone, Debug, Default)]
pub(crate) enum Control {
    /// `$XDG_RUNTIME_DIR/corral/INSTANCE.sock`, else `/tmp/corral-UID/INSTANCE.sock`.
    #[default]
    Default,
    At(PathBuf),
    Off,
}

/// The run-wide options, each read and in its own range.
#[derive(Clone, Debug)]
pub(crate) struct RunRequest {
    pub instance: String,
    /// Whether `instance` is a default rather than a name the user chose.
    pub instance_is_default: bool,
    /// `None`: the dashboard when stdout is a terminal.
    pub dashboard: Option<bool>,
    pub log_format: LogFormat,
    pub verbosity: i8,
    pub log_dir: Option<PathBuf>,
    pub log_keep: u32,
    pub strip_ansi: bool,
    pub control: Control,
    pub metrics: Option<SocketAddr>,
}

impl RunRequest {
    /// The checked run of `groups`.
    pub fn build(self, groups: Vec<GroupSpec>) -> Result<RunSpec, SpecError> {
        let instance = values::name(&self.instance)
            .map_err(|reason| SpecError::Instance { name: self.instance.clone(), reason })?;
        let log_files = self.log_files()?;
        let dashboard = self.dashboard.unwrap_or_else(|| std::io::stdout().is_terminal());
        let output =
            if dashboard { OutputMode::Dashboard } else { OutputMode::Headless(self.log_format) };
        let control = match self.control {
            Control::Default => {
                Some(crate::control::default_dir().join(format!("{instance}.sock")))
            }
            Control::At(path) => Some(path),
            Control::Off => None,
        };
        Ok(RunSpec {
            groups,
            output,
            verbosity: self.verbosity,
            log_files,
            strip_ansi: self.strip_ansi,
            instance,
            instance_is_default: self.instance_is_default,
            control,
            metrics: self.metrics,
        })
    }

    /// The log directory, made absolute: it means the same after the workers' `cwd` and in
    /// messages.
    fn log_files(&self) -> Result<Option<LogDir>, SpecError> {
        let Some(dir) = &self.log_dir else { return Ok(None) };
        let fail = |reason: String| SpecError::LogDir { path: dir.clone(), reason };
        if dir.as_os_str().is_empty() {
            return Err(fail("expected a directory".into()));
        }
        if self.log_keep > MAX_LOG_KEEP {
            return Err(fail(format!("expected at most {MAX_LOG_KEEP} rotated files kept")));
        }
        let dir = std::path::absolute(dir).map_err(|e| fail(e.to_string()))?;
        Ok(Some(LogDir { dir, keep: self.log_keep }))
    }
}
