//! What a worker's colours cost the output pane: one frame with 1,000 coloured lines against
//! one with the same 1,000 lines plain (the same text without its SGR sequences), through
//! the dashboard's real rendering (criterion). Goal: coloured ≤ 1.5 × plain.
//! `cargo bench --bench pane_colours`; under `cargo test --benches` each runs once (smoke).

use std::time::{Duration, Instant, SystemTime};

use criterion::{Criterion, criterion_group, criterion_main};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

use corral::internals::core::{GroupView, Snapshot, WorkerKey, WorkerState, WorkerView};
use corral::internals::ui::model::{LineKind, Pane, PaneLine, View, WorkerExtra};
use corral::internals::ui::{UiState, render};

const LINES: u64 = 1000;
/// Tall enough for the pane to show every line under the header, table and footer.
const SIZE: (u16, u16) = (120, 1012);

/// A dev server's request log line, as `FORCE_COLOR=1` tools write it: dim time, a coloured
/// level, bold method, a 256-colour status, a 24-bit duration, resets between.
fn coloured(i: u64) -> String {
    format!(
        "\x1b[2m12:00:{:02}\x1b[0m \x1b[32mINFO\x1b[0m \x1b[1mGET\x1b[22m /api/items/{i} \
         \x1b[38;5;208m200\x1b[39m \x1b[38;2;120;120;255m1.2ms\x1b[0m via handler {i}",
        i % 60
    )
}

fn view(text: impl Fn(u64) -> String) -> View {
    let key = WorkerKey { group: 0, slot: 1 };
    let lines: Vec<PaneLine> = (0..LINES)
        .map(|i| PaneLine {
            at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_000_000 + i),
            id: "web.1".into(),
            kind: LineKind::Stdout,
            text: text(i),
        })
        .collect();
    View {
        snapshot: Snapshot {
            groups: vec![GroupView {
                name: "web".into(),
                workers: 1,
                up: 1,
                ..GroupView::default()
            }],
            workers: vec![WorkerView {
                key,
                id: "web.1".into(),
                pid: Some(4242),
                generation: Some(0),
                state: WorkerState::Running,
                uptime: Some(Duration::from_secs(61)),
                ..WorkerView::default()
            }],
            total_restarts: 0,
            shutting_down: false,
            kill_in: None,
        },
        extras: vec![WorkerExtra::default()],
        events_per_sec: 0,
        crashes_last_minute: 0,
        crash_history: vec![0; 60],
        pane: Pane { matching: lines.len(), lines },
        log_path: None,
        metrics: None,
        details: None,
        attached: None,
    }
}

/// One frame of `view`, drawn into a terminal of its own.
struct Frame {
    view: View,
    ui: UiState,
    terminal: Terminal<TestBackend>,
}

impl Frame {
    fn new(view: View) -> Frame {
        let mut frame = Frame {
            view,
            ui: UiState::new(true),
            terminal: Terminal::new(TestBackend::new(SIZE.0, SIZE.1)).expect("terminal"),
        };
        frame.draw();
        assert!(frame.ui.pane_rows >= LINES as usize, "{} rows", frame.ui.pane_rows);
        frame
    }

    fn draw(&mut self) {
        let (view, ui) = (&self.view, &mut self.ui);
        self.terminal.draw(|f| render(f, view, ui, Instant::now())).expect("draw");
    }

    fn timed(&mut self) -> Duration {
        let started = Instant::now();
        self.draw();
        started.elapsed()
    }
}

fn bench(c: &mut Criterion) {
    let mut plain = Frame::new(view(|i| corral::internals::ansi::strip(&coloured(i)).into_owned()));
    let mut coloured = Frame::new(view(coloured));
    // WHY also the fastest of interleaved frames: on a shared machine the means move with
    // everyone else's load; the minimum of each, taken turn about, is the cost itself.
    let full = std::env::args().any(|a| a == "--bench");
    let rounds = if full { 300 } else { 3 };
    let (mut fastest_plain, mut fastest_coloured) = (Duration::MAX, Duration::MAX);
    for _ in 0..rounds {
        fastest_plain = fastest_plain.min(plain.timed());
        fastest_coloured = fastest_coloured.min(coloured.timed());
    }
    // A smoke run (debug build, `cargo test`) only checks that the bench works: no goal.
    println!(
        "fastest of {rounds} interleaved frames: plain {fastest_plain:.2?}, coloured \
         {fastest_coloured:.2?}: coloured/plain = {:.2} ({})",
        fastest_coloured.as_secs_f64() / fastest_plain.as_secs_f64(),
        if full { "goal <= 1.5" } else { "debug smoke, no goal" }
    );
    let mut group = c.benchmark_group("pane 1000 lines at 120x1012");
    group.bench_function("plain", |b| b.iter(|| plain.draw()));
    group.bench_function("coloured", |b| b.iter(|| coloured.draw()));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
