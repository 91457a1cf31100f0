//! Helpers shared by the benchmarks that measure whole processes.

/// CPU time (user + system) a process has used so far, from `/proc/<pid>/stat`; `None`
/// once it is gone.
#[allow(dead_code)] // each bench includes this module; not all of them read CPU time
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = procfs::process::Process::new(i32::try_from(pid).ok()?).ok()?.stat().ok()?;
    Some((stat.utime + stat.stime) as f64 / procfs::ticks_per_second() as f64)
}

/// Waits (at most 10 minutes) for `child` to exit, reading its own CPU time (not its
/// children's) until then; returns the last reading.
#[allow(dead_code)] // each bench includes this module; not all of them wait this way
pub fn wait_measuring(child: &mut std::process::Child) -> f64 {
    let mut cpu = 0.0;
    let deadline = std::time::Instant::now() + std::time::Duration::from_mins(10);
    while child.try_wait().expect("wait").is_none() && std::time::Instant::now() < deadline {
        cpu = cpu_seconds(child.id()).unwrap_or(cpu);
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let _ = child.kill();
    let _ = child.wait();
    cpu
}

/// The corral binary a bench starts: `CORRAL_BENCH_BIN` when set (so one build of the
/// benches can measure two binaries side by side: `benches/before_after.sh`), else the one
/// cargo built with the bench.
#[allow(dead_code)] // each bench includes this module; not all of them start corral
pub fn corral_bin() -> std::ffi::OsString {
    std::env::var_os("CORRAL_BENCH_BIN")
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_corral").into())
}

/// Whether to run the part of a bench called `name`: every part unless
/// `CORRAL_BENCH_PARTS` (a comma-separated list) names some.
#[allow(dead_code)]
pub fn wants(name: &str) -> bool {
    std::env::var("CORRAL_BENCH_PARTS")
        .map_or(true, |parts| parts.split(',').any(|p| p.trim() == name))
}

/// Appends `KEY VALUE` to the file `CORRAL_BENCH_RESULTS` names, if any: the figures
/// `benches/before_after.sh` tabulates, so it never parses the printed tables.
#[allow(dead_code)]
pub fn record(key: &str, value: f64) {
    use std::io::Write;
    let Some(path) = std::env::var_os("CORRAL_BENCH_RESULTS") else {
        return;
    };
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open CORRAL_BENCH_RESULTS");
    writeln!(file, "{key} {value}").expect("write CORRAL_BENCH_RESULTS");
}
