//! Node's graceful stop (docs/node.md): disconnect first, the stop signal only once the
//! channel closed (and a short grace) or the kill timeout passed; the exit is the stop's.

use super::*;
use crate::core::supervisor::DISCONNECT_GRACE;

fn node_policy() -> Policy {
    Policy { disconnect_first: true, kill_timeout: Duration::from_secs(5), ..Policy::default() }
}

fn stop_w1(h: &mut Harness) {
    h.feed(Input::User(UserAction::Stop(W1)));
}

#[test]
fn a_stop_disconnects_first_and_signals_once_the_channel_closed() {
    let mut h = Harness::new(1, node_policy(), false);
    let generation = h.pids[&W1].1;
    h.at(1000);
    stop_w1(&mut h);
    assert!(h.signals.is_empty(), "no signal while the worker disconnects");
    h.at(1200).feed(Input::DisconnectDone { key: W1, generation });
    assert!(h.signals.is_empty(), "a moment to exit by itself");
    h.fire(W1);
    assert_eq!(h.now, h.t0 + ms(1200) + DISCONNECT_GRACE);
    assert_eq!(h.signals, vec![(W1, Signal::TERM), (W1, Signal::CONT)]);
    h.exit_worker(W1, ExitStatus::Code(0));
    assert_eq!(readiness::exit_reason(&h), Some(ExitReason::Stopped));
    assert_eq!(h.state(W1), WorkerState::Stopped);
}

#[test]
fn a_worker_that_exits_after_its_disconnect_gets_no_signal() {
    let mut h = Harness::new(1, node_policy(), false);
    let generation = h.pids[&W1].1;
    h.feed(Input::Shutdown(ShutdownTrigger::Signal(Signal::TERM)));
    h.at(300).feed(Input::DisconnectDone { key: W1, generation });
    h.at(310).exit_worker(W1, ExitStatus::Code(0));
    assert!(h.signals.is_empty(), "{:?}", h.signals);
    assert_eq!(readiness::exit_reason(&h), Some(ExitReason::Shutdown));
    assert_eq!(h.exit, Some(0));
}

#[test]
fn a_channel_that_never_closes_gets_the_signal_at_the_kill_timeout_then_sigkill() {
    let mut h = Harness::new(1, node_policy(), false);
    stop_w1(&mut h);
    h.fire(W1);
    assert_eq!(h.now, h.t0 + Duration::from_secs(5));
    assert_eq!(h.signals, vec![(W1, Signal::TERM), (W1, Signal::CONT)]);
    h.fire(W1);
    assert_eq!(h.signals.last(), Some(&(W1, Signal::KILL)));
}

#[test]
fn a_worker_that_cannot_disconnect_gets_the_signal_at_once() {
    let mut h = Harness::new(1, node_policy(), false);
    let generation = h.pids[&W1].1;
    stop_w1(&mut h);
    h.feed(Input::CannotDisconnect { key: W1, generation });
    assert_eq!(h.signals, vec![(W1, Signal::TERM), (W1, Signal::CONT)]);
}

#[test]
fn without_disconnect_first_and_for_stale_generations_nothing_changes() {
    let mut h = Harness::new(1, Policy::default(), false);
    let generation = h.pids[&W1].1;
    stop_w1(&mut h);
    assert_eq!(h.signals, vec![(W1, Signal::TERM), (W1, Signal::CONT)], "plain workers: at once");
    let mut h = Harness::new(1, node_policy(), false);
    stop_w1(&mut h);
    h.feed(Input::DisconnectDone { key: W1, generation: generation + 7 });
    h.feed(Input::CannotDisconnect { key: W1, generation: generation + 7 });
    assert!(h.signals.is_empty(), "another generation's channel says nothing about this one");
    // A kill is a kill: no disconnect for it.
    h.feed(Input::User(UserAction::Kill(W1)));
    assert_eq!(h.signals, vec![(W1, Signal::KILL)]);
}
