//! A probe's table: `{ http = "…" }`, `{ tcp = "HOST:PORT" }` or `{ exec = [...] }`, with
//! its timings (docs/config.md).

use super::group::file_command;
use super::{FileCommand, FileError, Here};
use crate::core::ProbeTiming;
use crate::probe_spec::{self, ProbeSpec, ProbeTarget};

const KEYS: &[&str] = &[
    "http",
    "tcp",
    "exec",
    "period",
    "timeout",
    "initial-delay",
    "failure-threshold",
    "success-threshold",
];

/// Thresholds above this are surely typos (a million periods).
const MAX_THRESHOLD: u64 = 1_000_000;

pub(super) fn read(at: &Here<'_, '_>) -> Result<ProbeSpec, FileError> {
    let mut target: Option<ProbeTarget> = None;
    let mut timing = ProbeTiming::default();
    for (key, value) in at.table()? {
        let name = key.get_ref().as_ref();
        let here = at.child(name, value, key.span());
        let found = match name {
            "http" => Some(ProbeTarget::Http(
                here.str("a URL like \"http://127.0.0.1:8080/healthz\"")?.to_string(),
            )),
            "tcp" => {
                Some(ProbeTarget::Tcp(here.str("an address like \"127.0.0.1:5432\"")?.to_string()))
            }
            "exec" => Some(match file_command(&here)? {
                FileCommand::Argv(argv) => ProbeTarget::Exec(argv),
                FileCommand::Shell(line) => {
                    ProbeTarget::Exec(vec!["/bin/sh".into(), "-c".into(), line])
                }
            }),
            "period" => {
                timing.period = here.duration(true)?;
                None
            }
            "timeout" => {
                timing.timeout = here.duration(true)?;
                None
            }
            "initial-delay" => {
                timing.initial_delay = here.duration(false)?;
                None
            }
            "failure-threshold" => {
                timing.failure_threshold = threshold(&here)?;
                None
            }
            "success-threshold" => {
                timing.success_threshold = threshold(&here)?;
                None
            }
            _ => {
                let expected = format!("one of {}", KEYS.join(", "));
                return Err(here.unknown_key(KEYS, &expected));
            }
        };
        if let Some(found) = found {
            if target.is_some() {
                return Err(here.fail_at_key("a probe has exactly one of http, tcp or exec"));
            }
            probe_spec::check(&found).map_err(|reason| here.fail(&reason))?;
            target = Some(found);
        }
    }
    let Some(target) = target else {
        return Err(at.fail("a probe needs one of http, tcp or exec"));
    };
    Ok(ProbeSpec { target, timing })
}

fn threshold(at: &Here<'_, '_>) -> Result<u32, FileError> {
    Ok(at.int(1, MAX_THRESHOLD, &format!("1..={MAX_THRESHOLD}"))? as u32)
}
