//! Time to render one dashboard frame with 1,000 and with 4,096 workers (criterion):
//! `cargo bench --bench render`.

use std::time::{Duration, Instant, SystemTime};

use criterion::{Criterion, criterion_group, criterion_main};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

use corral::internals::core::{GroupView, Snapshot, WorkerKey, WorkerState, WorkerView};
use corral::internals::ui::model::{LineKind, Pane, PaneLine, View, WorkerExtra};
use corral::internals::ui::{UiState, render};

fn workers(n: u32) -> View {
    let workers: Vec<WorkerView> = (1..=n)
        .map(|slot| WorkerView {
            key: WorkerKey { group: 0, slot },
            id: format!("web.{slot}"),
            pid: Some(10_000 + slot),
            generation: Some(0),
            state: WorkerState::Running,
            uptime: Some(Duration::from_secs(u64::from(slot) * 7)),
            restarts: slot % 5,
            last_exit: None,
            crash_looping: false,
            replacement: None,
            held: false,
            probes: Vec::new(),
        })
        .collect();
    let extras = workers
        .iter()
        .map(|_| WorkerExtra {
            cpu: Some(3.0),
            rss: Some(40 << 20),
            events_per_sec: 12,
            status: Some("serving, 1234 requests".into()),
        })
        .collect();
    let lines = (0..60)
        .map(|i| PaneLine {
            at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_000_000 + i),
            id: "web.1".into(),
            kind: LineKind::Stdout,
            text: format!("GET /api/items/{i} 200 1.2ms"),
        })
        .collect();
    View {
        snapshot: Snapshot {
            groups: vec![GroupView {
                name: "web".into(),
                workers: n,
                up: n,
                ..GroupView::default()
            }],
            workers,
            total_restarts: 1600,
            shutting_down: false,
            kill_in: None,
        },
        extras,
        events_per_sec: 12_000,
        crashes_last_minute: 0,
        crash_history: vec![0; 60],
        pane: Pane { lines, matching: 60 },
        log_path: None,
        metrics: None,
        details: None,
        attached: None,
    }
}

fn bench(c: &mut Criterion) {
    for n in [1000, 4096] {
        let view = workers(n);
        let mut ui = UiState::new(true);
        ui.selected = n as usize / 2;
        let mut terminal = Terminal::new(TestBackend::new(200, 60)).expect("terminal");
        c.bench_function(&format!("render {n} workers at 200x60"), |b| {
            b.iter(|| terminal.draw(|f| render(f, &view, &mut ui, Instant::now())).map(|_| ()));
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
