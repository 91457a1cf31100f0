//! What a worker or an operator hands corral that it must not pass on as it came: event
//! lines only some readers accept, terminal escapes, files in the way of a socket, and
//! memory counted once per thread.

use std::fmt::Write as _;

use serde_json::Value;

use crate::util::{Corral, DEADLINE, of_worker, test_worker_per_slot, with_command};

/// `hex:` step for bytes.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold("hex:".to_string(), |mut text, b| {
        let _ = write!(text, "{b:02x}");
        text
    })
}

#[test]
fn event_lines_no_reader_accepts_are_protocol_errors() {
    let deep = format!("raw:{{\"x\":{}{}}}", "[".repeat(10_000), "]".repeat(10_000));
    let bad = [
        hex(b"{\"x\":\"\xff\"}"),
        deep,
        "raw:{\"v\":1e999}".to_string(),
        "raw:{\"x\":\"\\ud800\"}".to_string(),
    ];
    let tick = r#"{"type":"tick","n":1}"#;
    let slots: Vec<[&str; 6]> =
        bad.iter().map(|b| ["--send", b.as_str(), "--send", tick, "--exit", "0"]).collect();
    let slots: Vec<&[&str]> = slots.iter().map(|s| &s[..]).collect();
    let workers = slots.len().to_string();
    let command = test_worker_per_slot(&slots);
    let mut corral =
        Corral::start(&with_command(&["-w", &workers, "--restart", "never"], &command));
    // The harness fails the test on any stdout line that is not JSON.
    let status = corral.wait_exit(DEADLINE);
    let events = corral.events();
    let dump = corral.dump();
    assert!(status.success(), "{dump}");
    for worker in 1..=slots.len() as u64 {
        let errors = of_worker(&events, "protocol_error", worker);
        assert_eq!(errors.len(), 1, "worker {worker}\n{dump}");
        assert_eq!(errors[0]["error"], "malformed", "{dump}");
        assert_eq!(errors[0]["count"], 1, "{dump}");
        let data: Vec<&Value> =
            of_worker(&events, "message", worker).iter().map(|e| &e["data"]).collect();
        assert_eq!(data, [&serde_json::json!({"type": "tick", "n": 1})], "{dump}");
        let exits = of_worker(&events, "exited", worker);
        assert_eq!(exits.len(), 1, "{dump}");
        assert_eq!(exits[0]["messages"], 1, "only the valid line is a message\n{dump}");
    }
    corral.assert_nothing_left();
}
