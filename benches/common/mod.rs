//! Helpers shared by the benchmarks that measure whole processes.

/// CPU time (user + system) a process has used so far, from `/proc/<pid>/stat`; `None`
/// once it is gone.
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
