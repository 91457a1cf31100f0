//! Workers that ask corral to keep too much.

use crate::util::{Corral, DEADLINE, free_port, named, status_kib};

#[test]
fn metric_names_of_a_megabyte_are_dropped_and_counted() {
    let port = free_port().to_string();
    // 64 metric names of ~1 MB each (each line under the channel's 1 MiB cap).
    let script = r#"name=$(head -c 1000000 /dev/zero | tr '\0' a)
i=0; while [ $i -lt 64 ]; do i=$((i+1))
printf '{"type":"metric","name":"%s%d","value":1}\n' "$name" "$i" >&"$CORRAL_EVENT_FD"
done; printf '{"type":"status","text":"%s"}\n' "$name" >&"$CORRAL_EVENT_FD"; exec sleep 1000"#;
    let args = ["-I", "greedy", "-w", "1", "--metrics", &port, "--", "sh", "-c", script];
    let mut corral = Corral::start(&args);
    let port: u16 = port.parse().expect("port");
    let mut body = String::new();
    let counted = crate::util::wait_until(DEADLINE, || {
        body = super::scrape(port, "").map(|r| r.1).unwrap_or_default();
        body.lines()
            .any(|l| l.starts_with("corral_worker_metrics_dropped_total") && l.ends_with(" 64"))
    });
    assert!(counted, "64 drops counted:\n{body}");
    assert!(body.len() < 64 * 1024, "/metrics is {} bytes", body.len());
    let rss = status_kib(corral.pid(), "VmRSS").expect("VmRSS") / 1024;
    // Before: every name kept twice (130 MiB and more for one worker).
    assert!(rss < 48, "corral's RSS {rss} MiB");
    let status = corral.ctl(&["status", "--json"]);
    assert!(status.stdout.len() < 8 * 1024, "status is {} bytes", status.stdout.len());
    assert!(corral.stderr().contains("metric name of 1000001 bytes"), "{}", corral.stderr());
    corral.signal(libc::SIGTERM);
    assert!(corral.wait_exit(DEADLINE).success());
    assert!(named(&corral.events(), "exited").len() == 1);
}
