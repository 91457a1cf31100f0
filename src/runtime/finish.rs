//! The end of a run: escaped descendants stopped, the last events written out (nothing
//! lost unless a person asks again to stop), the keeper told goodbye.

use std::time::Duration;

use super::GROUP_POLL;
use super::hub::Reports;
use super::signals::{Arrived, Signals};
use super::stop_signals::StopSignals;
use crate::backend;
use tokio::sync::Notify;

use crate::report::Record;
use crate::signal::Signal;

/// How long the output reported before the last record may take to be written (or to
/// fail) before that record's exit code is decided: a slow reader delays the exit by this,
/// never more (its lines are still all written after).
const SETTLE: Duration = Duration::from_secs(1);

/// Every worker is gone: the last record, and everything reported written out (or lost,
/// if a person asks again to stop). Returns the exit code, 1 if lines were lost.
pub(super) async fn write_out(
    hub: &Reports,
    code: u8,
    ui: Option<crate::ui::Dashboard>,
    signals: &mut Signals,
    stops: &mut StopSignals,
) -> u8 {
    // An output that is failing now will lose lines at exit, and corral exits 1 for
    // them: the last record says so already (being last, it cannot wait for the count).
    // So what was reported before it is given a moment to be written, or to fail: on a
    // busy machine the writer may not have tried yet (a full disk's first write fails
    // only once tried), and the record would say 0 for a corral that exits 1.
    hub.flush();
    let settle_until = std::time::Instant::now() + SETTLE;
    while std::time::Instant::now() < settle_until {
        if hub.settled() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let code = if hub.failing() { code.max(1) } else { code };
    hub.close_with(&Record::ShutdownComplete { exit_code: code });
    if let Some(ui) = ui {
        ui.stop();
    }
    let (output, logs) = wait_for_output(hub, signals, stops).await;
    if output > 0 {
        tracing::error!(lost = output, "output lines could not be written");
    }
    if logs > 0 {
        tracing::error!(lost = logs, "log file lines could not be written");
    }
    if output + logs > 0 {
        return code.max(1);
    }
    code
}

/// Waits until everything reported has been written, to stdout and to the log files:
/// a slow reader or disk is waited for (nothing is lost), until a person asks again to
/// stop. Returns the lines lost on each.
async fn wait_for_output(
    hub: &Reports,
    signals: &mut Signals,
    stops: &mut StopSignals,
) -> (u64, u64) {
    let (output, logs) = hub.done();
    let mut abandon = false;
    if let Some(done) = output {
        abandon = !wait_done(&done, || hub.output_finished(), signals, stops).await;
    }
    if let Some(done) = logs
        && !abandon
    {
        abandon = !wait_done(&done, || hub.files_finished(), signals, stops).await;
    }
    if abandon {
        hub.abandon();
    }
    hub.lost()
}

/// Waits until a writer has `finished`; `false` if a person asked again to stop first.
async fn wait_done(
    done: &Notify,
    finished: impl Fn() -> bool,
    signals: &mut Signals,
    stops: &mut StopSignals,
) -> bool {
    loop {
        let notified = done.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if finished() {
            return true;
        }
        let stop = tokio::select! {
            () = notified => false,
            arrived = signals.recv() => asks_to_stop(&arrived, stops),
        };
        if stop {
            return false;
        }
    }
}

/// Whether a person asked (again) to stop: SIGQUIT, or a SIGINT or SIGTERM that is a
/// request of its own (not the duplicate GNU `timeout` sends right after the first: it
/// made corral give up writing its last lines, and exit 1).
fn asks_to_stop(arrived: &[Arrived], stops: &mut StopSignals) -> bool {
    let mut asked = false;
    for a in arrived {
        asked |= match a.signal.0 {
            libc::SIGQUIT => true,
            libc::SIGINT | libc::SIGTERM => stops.requests(a.signal, a.count, a.sender, a.at) > 0,
            _ => false,
        };
    }
    asked
}

/// Descendants that escaped their worker's process group (double fork, `setsid`) were
/// re-parented to corral, the subreaper: they get the stop signal, a grace, then SIGKILL.
pub(super) async fn kill_strays(
    grace: Duration,
    signals: &mut Signals,
    stops: &mut StopSignals,
    keeper: Option<u32>,
) {
    let others = || -> Vec<u32> {
        backend::children_of_self().into_iter().filter(|&p| Some(p) != keeper).collect()
    };
    for (signal, wait) in [(Signal::TERM, grace), (Signal::KILL, Duration::from_secs(2))] {
        let strays = others();
        if strays.is_empty() {
            return;
        }
        for &pid in &strays {
            tracing::debug!(pid, %signal, "stopping an escaped descendant");
            let _ = backend::signal_pid(pid, signal);
            let _ = backend::signal_pid(pid, Signal::CONT);
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            while backend::reap_one().is_some() {}
            if others().is_empty() {
                return;
            }
            tokio::select! {
                // A second request to stop: no more grace.
                arrived = signals.recv() => if asks_to_stop(&arrived, stops) { break },
                () = tokio::time::sleep(GROUP_POLL) => {}
                () = tokio::time::sleep_until(deadline) => break,
            }
        }
    }
}
