//! Lines per second through the headless formatter (criterion): the per-line cost of
//! `TS ID | LINE` text and of JSON `output` objects, for a short printable line and for
//! one that needs escaping. `cargo bench --bench formatter`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

use corral::internals::config::LogFormat;
use corral::internals::core::{Stream, WorkerKey};
use corral::internals::report::{Lines, Record};

const LINES: u64 = 10_000;

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("formatter");
    group.throughput(Throughput::Elements(LINES));
    let key = WorkerKey { group: 0, slot: 3 };
    for (format, name) in [(LogFormat::Text, "text"), (LogFormat::Json, "json")] {
        for (line, kind) in [
            (&b"GET /api/items/123 200 1.2ms"[..], "plain"),
            (&b"\x1b[31merror\x1b[0m: caf\xc3\xa9 \xe2\x80\xae"[..], "escaped"),
        ] {
            let mut lines = Lines::new(format, vec!["web".into()]);
            let mut out = Vec::with_capacity(1 << 20);
            group.bench_function(format!("{name} {kind} line"), |b| {
                b.iter(|| {
                    out.clear();
                    for _ in 0..LINES {
                        let record =
                            Record::Output { key, pid: 4242, stream: Stream::Stdout, line };
                        lines.write(&mut out, std::time::SystemTime::UNIX_EPOCH, &record);
                    }
                    out.len()
                });
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
