use std::sync::Arc;
use std::time::Duration;

use super::*;

fn model() -> Model {
    let mut exits = [0; EXIT_REASONS.len()];
    exits[reason_index(ExitReason::Crashed)] = 3;
    Model {
        instance: "shop".into(),
        groups: vec![GroupModel {
            name: "web".into(),
            workers: 2,
            exits,
            messages: 40,
            protocol_errors: 1,
        }],
        workers: vec![
            WorkerModel {
                group: 0,
                slot: 1,
                state: state_index(&WorkerState::Running),
                up: true,
                restarts: 3,
                uptime: 12.5,
                cpu: Some(0.25),
                memory: Some(4096),
                metrics: vec![("requests".into(), 17.0)],
                metrics_dropped: 0,
            },
            WorkerModel {
                group: 0,
                slot: 2,
                state: state_index(&WorkerState::Backoff { left: Duration::from_secs(1) }),
                ..WorkerModel::default()
            },
        ],
        problems: Vec::new(),
    }
}

fn text(model: Model) -> String {
    let mut out = String::new();
    render(&Arc::new(model), &mut out).expect("renders");
    out
}

fn has(text: &str, line: &str) -> bool {
    text.lines().any(|l| l == line)
}

#[test]
fn every_series_carries_instance_group_and_worker() {
    let t = text(model());
    for line in [
        r#"corral_worker_up{instance="shop",group="web",worker="1"} 1"#,
        r#"corral_worker_up{instance="shop",group="web",worker="2"} 0"#,
        r#"corral_worker_restarts_total{instance="shop",group="web",worker="1"} 3"#,
        r#"corral_worker_uptime_seconds{instance="shop",group="web",worker="1"} 12.5"#,
        r#"corral_worker_cpu_ratio{instance="shop",group="web",worker="1"} 0.25"#,
        r#"corral_worker_memory_bytes{instance="shop",group="web",worker="1"} 4096"#,
        r#"corral_worker_state{instance="shop",group="web",worker="1",state="running"} 1"#,
        r#"corral_worker_state{instance="shop",group="web",worker="2",state="backoff"} 1"#,
        r#"corral_worker_metric{instance="shop",group="web",worker="1",name="requests"} 17"#,
        r#"corral_worker_metrics_dropped_total{instance="shop",group="web",worker="2"} 0"#,
        r#"corral_group_workers{instance="shop",group="web"} 2"#,
        r#"corral_exits_total{instance="shop",group="web",reason="crashed"} 3"#,
        r#"corral_exits_total{instance="shop",group="web",reason="shutdown"} 0"#,
        r#"corral_messages_total{instance="shop",group="web"} 40"#,
        r#"corral_protocol_errors_total{instance="shop",group="web"} 1"#,
        "# TYPE corral_worker_restarts counter",
        "# UNIT corral_worker_uptime_seconds seconds",
    ] {
        assert!(has(&t, line), "no line {line}\n{t}");
    }
    assert!(t.ends_with("\n# EOF\n"), "{t}");
}

#[test]
fn a_worker_not_yet_measured_has_no_cpu_or_memory_sample() {
    let t = text(model());
    assert!(!t.contains(r#"corral_worker_cpu_ratio{instance="shop",group="web",worker="2"}"#));
    assert!(!t.contains(r#"corral_worker_memory_bytes{instance="shop",group="web",worker="2"}"#));
}

#[test]
fn one_state_series_per_worker_and_one_exit_series_per_reason() {
    let t = text(model());
    let states = t.lines().filter(|l| l.starts_with("corral_worker_state{")).count();
    assert_eq!(states, 2, "the current state only\n{t}");
    let exits = t.lines().filter(|l| l.starts_with("corral_exits_total{")).count();
    assert_eq!(exits, EXIT_REASONS.len());
}

#[test]
fn label_values_from_workers_are_escaped() {
    let mut m = model();
    m.instance = "a\"b".into();
    m.workers[0].metrics = vec![("we\"ird\\name\nx".into(), 1.0), ("nan".into(), f64::NAN)];
    let t = text(m);
    assert!(t.contains(r#"instance="a\"b""#), "{t}");
    assert!(t.contains(r#"name="we\"ird\\name\nx"} 1"#), "{t}");
    assert!(!t.contains(r#"name="nan""#), "a value that is not a number is left out");
}

#[test]
fn integral_values_are_written_as_integers() {
    let mut m = model();
    m.workers[0].metrics = vec![("big".into(), 1e300), ("neg".into(), -3.0), ("half".into(), 0.5)];
    let t = text(m);
    let value = |name: &str| {
        let prefix = format!(
            r#"corral_worker_metric{{instance="shop",group="web",worker="1",name="{name}"}} "#
        );
        t.lines().find_map(|l| l.strip_prefix(prefix.as_str())).map(str::to_string)
    };
    assert_eq!(value("neg").as_deref(), Some("-3"));
    assert_eq!(value("half").as_deref(), Some("0.5"));
    assert_eq!(
        value("big").and_then(|v| v.parse::<f64>().ok()),
        Some(1e300),
        "a float beyond 2^53"
    );
}

#[test]
fn a_worker_of_no_known_group_is_left_out() {
    let mut m = model();
    m.workers[1].group = 7;
    let t = text(m);
    assert!(!t.contains(r#"worker="2""#), "{t}");
}

#[test]
fn the_tables_match_the_enums() {
    for (i, reason) in EXIT_REASONS.iter().enumerate() {
        assert_eq!(reason_index(*reason), i, "{reason:?}");
    }
    let left = Duration::ZERO;
    for state in [
        WorkerState::Starting,
        WorkerState::Running,
        WorkerState::Stopping,
        WorkerState::Backoff { left },
        WorkerState::Stopped,
        WorkerState::GaveUp,
        WorkerState::Failed { left, error: String::new() },
    ] {
        assert_eq!(STATES[state_index(&state)], state.label());
    }
}

#[test]
fn an_empty_corral_is_a_valid_exposition() {
    let t = text(Model { instance: "x".into(), ..Model::default() });
    assert!(t.starts_with("# HELP corral_worker_up "), "{t}");
    assert!(t.ends_with("# EOF\n"));
}
