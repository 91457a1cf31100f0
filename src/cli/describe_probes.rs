//! `check-config`'s view of a group's probes, as keys the file reads back.

use toml::{Table, Value};

use crate::probe_spec::{GroupProbes, ProbeSpec, ProbeTarget};

pub(super) fn insert(t: &mut Table, probes: &GroupProbes) {
    let all = [
        ("readiness-probe", &probes.readiness),
        ("liveness-probe", &probes.liveness),
        ("startup-probe", &probes.startup),
    ];
    for (key, probe) in all {
        if let Some(p) = probe {
            t.insert(key.into(), Value::Table(table(p)));
        }
    }
}

fn table(p: &ProbeSpec) -> Table {
    let duration = |d: std::time::Duration| {
        Value::String(humantime::format_duration(d).to_string().replace(' ', ""))
    };
    let mut t = Table::new();
    match &p.target {
        ProbeTarget::Http(url) => t.insert("http".into(), url.clone().into()),
        ProbeTarget::Tcp(addr) => t.insert("tcp".into(), addr.clone().into()),
        ProbeTarget::Exec(argv) => {
            let argv = argv.iter().cloned().map(Value::String).collect();
            t.insert("exec".into(), Value::Array(argv))
        }
    };
    t.insert("period".into(), duration(p.timing.period));
    t.insert("timeout".into(), duration(p.timing.timeout));
    t.insert("initial-delay".into(), duration(p.timing.initial_delay));
    t.insert("failure-threshold".into(), i64::from(p.timing.failure_threshold).into());
    t.insert("success-threshold".into(), i64::from(p.timing.success_threshold).into());
    t
}
