//! The dashboard end to end (docs/dashboard.md): the real binary on a pseudo-terminal, keys typed
//! into it, the screen read back through a vt100 parser; every way out must leave no worker
//! and a terminal back in its normal mode (reliability cases F6, F8, F9, E1).

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::util::pty::{Term, Tty};
use crate::util::{DEADLINE, SHORT, pid_alive, stat, test_worker, wait_until, with_command};

const COLUMNS: [&str; 10] =
    ["ID", "PID", "STATE", "UPTIME", "RESTARTS", "LAST EXIT", "CPU", "MEM", "EV/S", "STATUS"];

/// What crossterm writes when corral gives the terminal back: mouse capture off (SGR, RXVT
/// and the three tracking modes, in reverse order of enabling), main screen, cursor shown.
const RESTORE: &[u8] =
    b"\x1b[?1006l\x1b[?1015l\x1b[?1003l\x1b[?1002l\x1b[?1000l\x1b[?1049l\x1b[?25h";

/// `corral -n web -w N -- COMMAND…`.
fn web(workers: u32, command: &[String]) -> Vec<String> {
    with_command(&["-n", "web", "-w", &workers.to_string()], command)
}

fn sh(script: &str, args: &[&str]) -> Vec<String> {
    ["sh", "-c", script, "sh"].iter().chain(args).map(ToString::to_string).collect()
}

/// The cell in column `column` of the table row whose ID is `id`, as drawn on `screen`.
/// Columns are found by the header's positions (in characters: `▶` and `●` are wider in
/// bytes), so a cell may hold spaces (`● running`, `SIGKILL (killed by user)`). A narrow
/// table leaves some columns out (EV/S below 100 columns).
fn cell(screen: &str, id: &str, column: &str) -> Option<String> {
    let lines: Vec<Vec<char>> = screen.lines().map(|l| l.chars().collect()).collect();
    let header = lines.iter().position(|l| {
        let text: String = l.iter().collect();
        text.contains(" PID ") && text.contains("RESTARTS") && text.contains("LAST EXIT")
    })?;
    let mut starts = Vec::with_capacity(COLUMNS.len());
    let mut names = Vec::with_capacity(COLUMNS.len());
    let mut from = 0;
    for name in COLUMNS {
        let chars: Vec<char> = name.chars().collect();
        let Some(at) =
            (from..lines[header].len()).find(|&i| lines[header][i..].starts_with(&chars))
        else {
            continue;
        };
        starts.push(at);
        names.push(name);
        from = at + chars.len();
    }
    let slice = |line: &[char], c: usize| -> String {
        let end = starts.get(c + 1).copied().unwrap_or(line.len()).min(line.len());
        line.get(starts[c]..end).map_or_else(String::new, |s| s.iter().collect())
    };
    let wanted = names.iter().position(|c| *c == column)?;
    lines[header + 1..]
        .iter()
        .find(|line| slice(line, 0).trim() == id)
        .map(|line| slice(line, wanted).trim().to_string())
}

fn pid_cell(screen: &str, id: &str) -> Option<u32> {
    cell(screen, id, "PID")?.parse().ok()
}

/// Waits until the table shows `ids` all running with the pids corral's children really
/// have; returns those pids in the order of `ids`.
fn wait_running(tty: &Tty, ids: &[&str]) -> Vec<u32> {
    let mut pids = Vec::new();
    tty.wait_screen(&format!("{ids:?} running with their real pids"), DEADLINE, |screen| {
        let workers = tty.workers();
        pids = ids.iter().filter_map(|id| pid_cell(screen, id)).collect();
        workers.len() == ids.len()
            && pids.len() == ids.len()
            && pids.iter().all(|p| workers.contains(p))
            && ids.iter().all(|id| cell(screen, id, "STATE").as_deref() == Some("● running"))
    });
    pids
}

/// Asserts the terminal is as corral found it: every mode it set is reset in the byte
/// stream and in the screen model, and the line discipline is back to the cooked termios.
fn assert_terminal_restored(tty: &Tty) {
    let bytes = tty.bytes();
    let dump = || format!("{}\n--- last bytes: {:?}", tty.dump(), tail(&bytes));
    // Restoring is the last thing drawn; only corral's one summary line may follow it.
    let restored = rfind(&bytes, RESTORE).map(|at| &bytes[at + RESTORE.len()..]);
    let after = restored.map(String::from_utf8_lossy);
    let summary_only = after.as_deref().is_some_and(|a| {
        a.is_empty() || (a.starts_with("corral: ") && a.ends_with('\n') && a.lines().count() == 1)
    });
    assert!(summary_only, "the output does not end by restoring\n{}", dump());
    for (set, reset) in [("?1049h", "?1049l"), ("?1000h", "?1000l"), ("?1006h", "?1006l")] {
        let last_set = rfind(&bytes, set.as_bytes());
        assert!(last_set.is_some(), "corral never sent {set}\n{}", dump());
        assert!(rfind(&bytes, reset.as_bytes()) > last_set, "{set} not undone\n{}", dump());
    }
    let (alternate, hidden, mouse) =
        tty.with_screen(|s| (s.alternate_screen(), s.hide_cursor(), s.mouse_protocol_mode()));
    assert!(!alternate && !hidden, "alternate screen {alternate}, cursor hidden {hidden}");
    assert_eq!(mouse, vt100::MouseProtocolMode::None, "{}", dump());
    let (now, before) = (tty.termios(), tty.cooked);
    let flags = |t: &libc::termios| (t.c_iflag, t.c_oflag, t.c_cflag, t.c_lflag);
    assert_eq!(flags(&now), flags(&before), "termios not restored (iflag, oflag, cflag, lflag)");
}

fn rfind(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).rposition(|w| w == needle)
}

fn tail(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[bytes.len().saturating_sub(300)..]).into_owned()
}

fn raw_mode(tty: &Tty) -> bool {
    tty.termios().c_lflag & (libc::ICANON | libc::ECHO) == 0
}

#[test]
fn the_table_shows_every_worker_with_its_real_pid() {
    let tty = Tty::start(&web(3, &test_worker(&[])));
    let pids = wait_running(&tty, &["web.1", "web.2", "web.3"]);
    let mut unique = pids.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), 3, "{pids:?}\n{}", tty.dump());
    assert!(raw_mode(&tty), "the dashboard runs without raw mode\n{}", tty.dump());
}

#[test]
fn x_kills_the_selected_worker_and_it_comes_back_as_a_restart() {
    let mut tty = Tty::start(&web(2, &test_worker(&[])));
    let old = wait_running(&tty, &["web.1", "web.2"]);
    tty.send(b"x");
    let screen = tty.wait_screen("web.1 killed and running again", DEADLINE, |s| {
        cell(s, "web.1", "LAST EXIT").is_some_and(|e| e.contains("SIGKILL"))
            && cell(s, "web.1", "RESTARTS").as_deref() == Some("1")
            && cell(s, "web.1", "STATE").as_deref() == Some("● running")
            && pid_cell(s, "web.1").is_some_and(|p| p != old[0])
    });
    let new = pid_cell(&screen, "web.1").expect("a pid");
    assert!(tty.workers().contains(&new), "{new} is not corral's child\n{}", tty.dump());
    assert!(wait_until(SHORT, || !pid_alive(old[0])), "killed pid {} lives on", old[0]);
    // Only the selected worker was touched.
    assert_eq!(pid_cell(&screen, "web.2"), Some(old[1]), "{screen}");
    assert_eq!(cell(&screen, "web.2", "RESTARTS").as_deref(), Some("0"), "{screen}");
}

#[test]
fn r_restarts_s_stops_and_starts_plus_and_minus_scale() {
    let mut tty = Tty::start(&web(2, &test_worker(&[])));
    let old = wait_running(&tty, &["web.1", "web.2"])[0];

    tty.send(b"r");
    let screen = tty.wait_screen("web.1 restarted by the user", DEADLINE, |s| {
        cell(s, "web.1", "LAST EXIT").is_some_and(|e| e.contains("restarted by user"))
            && cell(s, "web.1", "STATE").as_deref() == Some("● running")
            && pid_cell(s, "web.1").is_some_and(|p| p != old)
    });
    // A restart the user asked for is not a crash: the counter stays.
    assert_eq!(cell(&screen, "web.1", "RESTARTS").as_deref(), Some("0"), "{screen}");
    let restarted = pid_cell(&screen, "web.1").expect("a pid");
    assert!(wait_until(SHORT, || !pid_alive(old)), "restarted pid {old} lives on");

    tty.send(b"s");
    tty.wait_screen("web.1 stopped", DEADLINE, |s| {
        cell(s, "web.1", "STATE").as_deref() == Some("■ stopped")
            && cell(s, "web.1", "PID").as_deref() == Some("-")
    });
    assert!(wait_until(SHORT, || !pid_alive(restarted)), "stopped pid {restarted} lives on");
    tty.send(b"s");
    let started = wait_running(&tty, &["web.1", "web.2"])[0];
    assert_ne!(started, restarted);

    tty.send(b"+");
    let three = wait_running(&tty, &["web.1", "web.2", "web.3"]);
    tty.wait_screen("the header counting 3", DEADLINE, |s| s.contains("web 3/3 up"));
    tty.send(b"-");
    tty.wait_screen("web.3 gone", DEADLINE, |s| {
        cell(s, "web.3", "ID").is_none() && s.contains("web 2/2 up")
    });
    assert!(wait_until(SHORT, || !pid_alive(three[2])), "scaled-down pid {} lives on", three[2]);
    wait_running(&tty, &["web.1", "web.2"]);
}

#[test]
fn q_quits_leaving_no_worker_and_the_terminal_restored() {
    let mut tty = Tty::start(&web(2, &test_worker(&[])));
    wait_running(&tty, &["web.1", "web.2"]);
    assert!(raw_mode(&tty), "the dashboard runs without raw mode\n{}", tty.dump());
    tty.with_screen(|s| assert!(s.alternate_screen() && s.hide_cursor()));
    tty.send(b"q");
    let status = tty.wait_exit(DEADLINE);
    assert!(status.success(), "{status:?}\n{}", tty.dump());
    tty.assert_nothing_left();
    assert_terminal_restored(&tty);
    // The dashboard is gone: one line says what ran and how it ended.
    let said = "corral: web stopped, exit code 0 · 2 workers, 0 restarts";
    assert!(tty.screen().contains(said), "no summary line\n{}", tty.dump());
}

/// A worker that notes in FILE when its SIGTERM handler is in place, when SIGTERM came, and
/// after a moment that it finished: a `done` line proves it was stopped gracefully, not
/// killed in the middle.
fn graceful_worker(file: &Path) -> Vec<String> {
    let script = r#"trap 'echo "$CORRAL_WORKER_ID term" >> "$1"; sleep 0.3; echo "$CORRAL_WORKER_ID done" >> "$1"; exit 0' TERM
echo "$CORRAL_WORKER_ID ready" >> "$1"
while :; do sleep 0.1; done"#;
    sh(script, &[file.to_str().expect("UTF-8 temp path")])
}

fn start_graceful(file: &Path) -> Tty {
    // The kill timeout is long so that only a forced stop can cut the trap short.
    let args =
        with_command(&["-n", "web", "-w", "2", "--kill-timeout", "30s"], &graceful_worker(file));
    let tty = Tty::start(&args);
    wait_running(&tty, &["web.1", "web.2"]);
    // Before its trap is set, SIGTERM would simply kill a worker and prove nothing.
    let ready = wait_until(DEADLINE, || {
        let notes = fs::read_to_string(file).unwrap_or_default();
        notes.contains("1 ready") && notes.contains("2 ready")
    });
    assert!(ready, "the workers did not get ready\n{}", tty.dump());
    tty
}

fn assert_stopped_gracefully(tty: &Tty, file: &Path) {
    let notes = fs::read_to_string(file).unwrap_or_default();
    for id in [1, 2] {
        assert!(
            notes.contains(&format!("{id} done")),
            "worker {id} was not stopped gracefully: {notes:?}\n{}",
            tty.dump()
        );
    }
}

#[test]
fn sigterm_stops_every_worker_gracefully_and_restores_the_terminal() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("notes");
    let mut tty = start_graceful(&file);
    tty.signal(libc::SIGTERM);
    let status = tty.wait_exit(DEADLINE);
    assert!(status.success(), "{status:?}\n{}", tty.dump());
    tty.assert_nothing_left();
    assert_stopped_gracefully(&tty, &file);
    assert_terminal_restored(&tty);
}

#[test]
fn a_hangup_ends_corral_and_every_worker() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("notes");
    let mut tty = start_graceful(&file);
    tty.hang_up();
    let status = tty.wait_exit(DEADLINE);
    assert_eq!(status.signal(), None, "corral died of a signal\n{}", tty.dump());
    tty.assert_nothing_left();
}

/// CPU clock ticks (user + system, all threads) a process has used, from `/proc`; a zombie
/// still shows its total.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After `comm`, the state is field 3 of proc_pid_stat(5): utime (14) and stime (15).
    let fields: Vec<&str> = text[text.rfind(')')? + 1..].split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// After a hangup (the terminal window closed) workers still stop gracefully and corral does
/// not spin. Regression test for two bugs: the UI thread spun inside crossterm's event poll
/// on a hung-up tty (it now watches the tty with poll(2) and only asks crossterm when input
/// is there), and a terminal error during the stop counted as a second quit and killed
/// every worker (automatic shutdown requests no longer escalate).
#[test]
fn after_a_hangup_workers_stop_gracefully_and_corral_does_not_spin() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("notes");
    let mut tty = start_graceful(&file);
    let pid = tty.pid();
    let before = cpu_ticks(pid).expect("corral's /proc/<pid>/stat");
    let start = Instant::now();
    tty.hang_up();
    // Not reaped yet, so its CPU time can still be read once it has exited.
    let ended = wait_until(DEADLINE, || stat(pid).is_none_or(|s| s.state == 'Z'));
    let used = cpu_ticks(pid).unwrap_or(before).saturating_sub(before);
    let wall = start.elapsed();
    assert!(ended, "corral did not exit after the hangup\n{}", tty.dump());
    tty.wait_exit(DEADLINE);
    tty.assert_nothing_left();
    let clk_tck = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK);
    let per_second = clk_tck.ok().flatten().unwrap_or(0).max(1) as f64;
    let cpu = used as f64 / per_second;
    // Spinning takes a whole core; waiting for workers takes next to none. More than half
    // a core is only reachable by spinning, however loaded the machine is.
    assert!(
        cpu < wall.as_secs_f64() / 2.0,
        "corral used {cpu:.2} s of CPU in the {wall:?} from the hangup to its exit"
    );
    assert_stopped_gracefully(&tty, &file);
}

#[test]
fn keys_stay_responsive_while_a_worker_floods_its_output() {
    let flood = sh(r#"[ "$CORRAL_WORKER_ID" = 1 ] && exec yes flood; exec sleep 1000"#, &[]);
    let mut tty = Tty::start(&web(2, &flood));
    wait_running(&tty, &["web.1", "web.2"]);
    tty.wait_screen("web.1's flood in the pane", DEADLINE, |s| s.contains("| flood"));
    tty.send(b"j");
    tty.send(b"?");
    tty.wait_screen("web.2 selected and the help overlay", DEADLINE, |s| {
        s.contains("▶ web.2") && s.contains(" keys ")
    });
    tty.send(b"q");
    let status = tty.wait_exit(DEADLINE);
    assert!(status.success(), "{status:?}\n{}", tty.dump());
    tty.assert_nothing_left();
}

#[test]
fn a_resize_storm_leaves_a_working_dashboard() {
    let mut tty = Tty::start(&web(2, &test_worker(&[])));
    let pids = wait_running(&tty, &["web.1", "web.2"]);
    // Tiny, zero (crossterm then asks `tput`), huge, and lopsided sizes.
    let sizes = [(1, 1), (5, 10), (0, 0), (100, 300), (30, 100), (0, 50), (8, 300), (300, 8)];
    for i in 0..200 {
        let (rows, cols) = sizes[i % sizes.len()];
        tty.resize(rows, cols);
        // Pacing, not synchronisation: spread over ~0.6 s, corral sees many of the sizes
        // (and draws some) instead of one coalesced SIGWINCH.
        std::thread::sleep(Duration::from_millis(3));
    }
    tty.resize(8, 30);
    tty.wait_screen("the too-small notice", DEADLINE, |s| {
        s.contains("terminal too small") && s.contains("(30×8)")
    });
    tty.resize(30, 100);
    let again = wait_running(&tty, &["web.1", "web.2"]);
    assert_eq!(again, pids, "workers changed during the storm\n{}", tty.dump());
    assert!(tty.try_exit().is_none(), "corral exited\n{}", tty.dump());
}

#[test]
fn escape_sequences_from_a_worker_are_neutralised() {
    let noisy =
        sh(r"printf 'before \033]0;PWNED\007 between \033[2J after\n'; exec sleep 1000", &[]);
    let tty = Tty::start(&web(1, &noisy));
    wait_running(&tty, &["web.1"]);
    // The sequences are dropped (docs/development.md#colours): neither shown nor obeyed.
    let screen = tty.wait_screen("the line without its escapes", DEADLINE, |s| {
        s.contains("| before  between  after")
    });
    // The clear-screen did not reach the terminal: the table is still there.
    assert!(cell(&screen, "web.1", "STATE").is_some(), "{screen}");
    let titles = tty.titles();
    assert!(
        !titles.iter().any(|t| t.windows(5).any(|w| w == b"PWNED")),
        "a worker set the window title: {titles:?}"
    );
    assert!(rfind(&tty.bytes(), b"\x1b]0;PWNED").is_none(), "the raw OSC reached the terminal");
}

/// Some terminals never answer a cursor-position query (`docker run -t` without `-i`, bare
/// ptys). Regression test: ratatui's `Terminal::clear` asked one and the dashboard died after
/// 2 s; corral now clears with crossterm and starts from fresh buffers, asking nothing.
#[test]
fn the_dashboard_works_on_a_terminal_that_never_answers_queries() {
    let term = Term { answers_queries: false, ..Term::default() };
    let mut tty = Tty::start_on(term, &web(2, &test_worker(&[])));
    wait_running(&tty, &["web.1", "web.2"]);
    tty.send(b"q");
    let status = tty.wait_exit(DEADLINE);
    assert!(status.success(), "{status:?}\n{}", tty.dump());
}

/// Every line of the help overlay is shown whole (it was once cut after "restarted as").
#[test]
fn the_help_overlay_shows_every_line_whole() {
    let term = Term { cols: 140, ..Term::default() };
    let mut tty = Tty::start_on(term, &web(1, &test_worker(&[])));
    wait_running(&tty, &["web.1"]);
    tty.send(b"?");
    let lines = [
        "kill the selected worker now (SIGKILL: a crash)",
        "move focus between the table and the output pane",
        "rolling reload of the selected worker's group",
        "graceful shutdown; again: kill everything",
    ];
    // WHY wait for all of them: the screen may be read while a frame is half written.
    tty.wait_screen("the whole help overlay", DEADLINE, |s| {
        s.contains(" keys ") && lines.iter().all(|l| s.contains(l))
    });
}

#[test]
fn stray_signals_change_nothing_and_sigquit_kills_everything_and_restores_the_terminal() {
    // Workers that ignore SIGTERM, with a child each: only SIGKILL to the group ends them.
    let script = "trap '' TERM; sleep 1000 & wait";
    let mut tty = Tty::start(&web(2, &sh(script, &[])));
    let pids = wait_running(&tty, &["web.1", "web.2"]);
    for signal in [libc::SIGUSR1, libc::SIGUSR2, libc::SIGALRM, libc::SIGPWR, libc::SIGRTMIN() + 3]
    {
        tty.signal(signal);
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(tty.try_exit().is_none(), "a stray signal ended corral\n{}", tty.dump());
    assert_eq!(wait_running(&tty, &["web.1", "web.2"]), pids, "nothing was restarted");
    assert!(raw_mode(&tty), "the dashboard still owns the terminal");
    tty.signal(libc::SIGQUIT);
    let status = tty.wait_exit(DEADLINE);
    assert_eq!(status.exit_code(), 1, "SIGQUIT is a forced stop: exit 1\n{}", tty.dump());
    tty.assert_nothing_left();
    assert_terminal_restored(&tty);
}

mod colours;
mod groups;
mod person;

/// A flood that only the dashboard's tail wants is read in gathered turns that skip the
/// lines the tail would drop: the last 1,000 lines are still exactly the last ones, in
/// order, and the tail is complete (`ctl logs` reads it).
#[test]
fn after_a_flood_the_tail_holds_exactly_the_last_lines() {
    let dir = tempfile::tempdir().expect("temp dir");
    let socket = dir.path().join("c.sock");
    let socket = socket.to_str().expect("UTF-8 path");
    let args = ["--control", socket, "-n", "seq", "-w", "1", "--restart", "never", "--"];
    let tty = Tty::start(&[&args[..], &["seq", "300000"]].concat());
    let last_lines = || {
        let out = std::process::Command::new(crate::util::corral_bin())
            .args(["ctl", "--control", socket, "logs", "-n", "1000", "seq.1"])
            .output()
            .ok()?;
        let text = String::from_utf8(out.stdout).ok()?;
        let numbers: Vec<u64> =
            text.lines().filter_map(|l| l.rsplit(' ').next()?.parse().ok()).collect();
        (numbers.last() == Some(&300_000)).then_some(numbers)
    };
    let mut numbers = None;
    let done = wait_until(DEADLINE, || {
        numbers = last_lines();
        numbers.is_some()
    });
    assert!(done, "the tail never showed 300000\n{}", tty.dump());
    let expected: Vec<u64> = (299_001..=300_000).collect();
    assert_eq!(numbers, Some(expected), "\n{}", tty.dump());
}

/// A graceful stop says how long until the SIGKILL of workers that have not stopped, and a
/// second `q` does not wait for it.
#[test]
fn the_stopping_line_counts_down_to_the_sigkill() {
    let script = "trap '' TERM; sleep 1000 & wait";
    let args = with_command(&["-n", "web", "-w", "1", "--kill-timeout", "60s"], &sh(script, &[]));
    let mut tty = Tty::start(&args);
    wait_running(&tty, &["web.1"]);
    tty.send(b"q");
    tty.wait_screen("the countdown to the SIGKILL", DEADLINE, |s| {
        s.contains("stopping every worker: SIGKILL in ") && s.contains("s · q or Ctrl-C again")
    });
    tty.send(b"q");
    let status = tty.wait_exit(DEADLINE);
    assert!(status.success(), "{status:?}\n{}", tty.dump());
    tty.assert_nothing_left();
}
