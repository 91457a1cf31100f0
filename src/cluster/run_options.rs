//! The run's settings: where its output goes, its name, its control socket, its metrics.

use std::path::PathBuf;

use super::{Cluster, ClusterError, LogFormat};
use crate::spec::{Control, values};

impl Cluster {
    /// The live dashboard (true) or one line per event on stdout (false) [default: the
    /// dashboard when stdout is a terminal, as the command line does].
    pub fn dashboard(mut self, on: bool) -> Cluster {
        self.dashboard = Some(on);
        self
    }

    /// The format of the headless output (docs/output.md) [default: text].
    pub fn log_format(mut self, format: LogFormat) -> Cluster {
        self.log_format = format;
        self
    }

    /// Removes the escape sequences (colours included) from the workers' lines in the
    /// headless output and the log files, as `--strip-ansi` (docs/output.md) [default: off:
    /// colours are kept as received, everything else is made visible].
    pub fn strip_ansi(mut self, strip: bool) -> Cluster {
        self.strip_ansi = strip;
        self
    }

    /// Also writes corral's events to `DIR/corral.log` and each worker's output to
    /// `DIR/NAME.N.log`, rotated daily, keeping `keep` rotated files per log, as
    /// `--log-dir DIR --log-keep N` (docs/logs.md) [default: none].
    pub fn log_dir(mut self, dir: impl Into<PathBuf>, keep: u32) -> Cluster {
        self.log_dir = Some((dir.into(), keep));
        self
    }

    /// This corral's name for `corral ctl -I NAME` and `corral attach`, and its control
    /// socket's file name, as `-I` [default: the cluster's name]. Two primaries of one name
    /// cannot run at once: the second is refused.
    pub fn instance(mut self, name: impl Into<String>) -> Cluster {
        self.instance = Some(name.into());
        self
    }

    /// The control socket at `path` instead of its default place, as `--control`.
    pub fn control(mut self, path: impl Into<PathBuf>) -> Cluster {
        self.control = Control::At(path.into());
        self
    }

    /// No control socket: `ctl` and `attach` cannot reach this cluster, as `--no-control`.
    pub fn no_control(mut self) -> Cluster {
        self.control = Control::Off;
        self
    }

    /// More (1, 2) or less (-1, -2) of corral's own diagnostics, as `-v`/`-q` [default: 0,
    /// warnings]. `RUST_LOG` overrides it.
    pub fn verbosity(mut self, level: i8) -> Cluster {
        self.verbosity = level;
        self
    }

    /// Serves Prometheus/OpenMetrics text at `http://ADDR/metrics`, as `--metrics`
    /// (docs/production.md#prometheus): `PORT` (on 127.0.0.1 only), `HOST:PORT` or
    /// `[V6]:PORT` [default: off].
    pub fn metrics(mut self, addr: &str) -> Result<Cluster, ClusterError> {
        let parsed = values::metrics_addr(addr)
            .map_err(|reason| ClusterError::Metrics { addr: addr.to_string(), reason })?;
        self.metrics = Some(parsed);
        Ok(self)
    }
}
