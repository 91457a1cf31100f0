//! Dependencies between groups (docs/application.md#dependencies-depends-on): what a
//! condition means for the group it names, in which order groups may start and stop, and
//! the cycle a bad file describes. Pure: the supervisor asks, nothing here acts.

use super::policy::RestartPolicy;
use super::worker::{Phase, Slot};

/// What a group waits for in another: `depends-on = { db = "ready" }`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Condition {
    /// Every worker of that group was spawned.
    Started,
    /// Every worker of that group is running, and ready where it says so (its own `ready`
    /// or a readiness probe).
    Ready,
    /// Every worker of that group exited 0 (one-shot groups).
    Completed,
}

impl Condition {
    /// The words a file uses, in the order the docs list them.
    pub const NAMES: [&'static str; 3] = ["started", "ready", "completed"];

    pub fn parse(word: &str) -> Option<Condition> {
        match word {
            "started" => Some(Condition::Started),
            "ready" => Some(Condition::Ready),
            "completed" => Some(Condition::Completed),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Condition::Started => "started",
            Condition::Ready => "ready",
            Condition::Completed => "completed",
        }
    }
}

/// One edge: this group waits for `group` to reach `condition`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dependency {
    pub group: u16,
    pub condition: Condition,
}

/// Where a condition stands now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Holds,
    NotYet,
    /// It cannot come true unless a person acts (starts a stopped or given-up worker):
    /// why, in words.
    Never(String),
}

/// What the supervisor knows of the group a condition names.
pub(crate) struct Target<'a> {
    pub name: &'a str,
    pub slots: &'a [Slot],
    pub wait_ready: bool,
    pub restart: RestartPolicy,
    /// Whether it waits for dependencies of its own, and why one never holds if known.
    pub waiting: Waits<'a>,
}

/// Whether a group still waits for its own dependencies.
pub(crate) enum Waits<'a> {
    No,
    Yes,
    /// One of them cannot hold, for this reason.
    Blocked(&'a str),
}

/// Whether `condition` holds for `target` now.
pub(crate) fn judge(condition: Condition, target: &Target<'_>) -> Verdict {
    match target.waiting {
        Waits::No => {}
        Waits::Yes => return Verdict::NotYet,
        Waits::Blocked(why) => {
            return Verdict::Never(format!("{} cannot start ({why})", target.name));
        }
    }
    let id = |slot: &Slot| super::WorkerId { group: target.name, slot: slot.key.slot }.to_string();
    let mut holds = true;
    for slot in target.slots.iter().filter(|s| !s.retiring) {
        if let Some(why) = never(condition, target, slot) {
            return Verdict::Never(format!("{} {why}", id(slot)));
        }
        holds &= match (condition, &slot.phase) {
            (Condition::Started, _) => slot.last_pid.is_some(),
            (Condition::Ready, Phase::Live(run)) => {
                run.stage() == super::worker::Stage::Up && (run.ready || !target.wait_ready)
            }
            (Condition::Completed, Phase::Stopped) => {
                slot.last_pid.is_some()
                    && slot.last_exit.as_ref().is_some_and(|e| e.status.success())
            }
            _ => false,
        };
    }
    if holds { Verdict::Holds } else { Verdict::NotYet }
}

/// Why `slot` keeps `condition` from ever holding without a person, if it does.
fn never(condition: Condition, target: &Target<'_>, slot: &Slot) -> Option<String> {
    match (&slot.phase, condition) {
        (Phase::GaveUp, _) => Some("gave up".to_string()),
        // A run that ended: nothing restarts it unless the policy would have by now.
        (Phase::Stopped, Condition::Ready) if slot.last_pid.is_some() => {
            Some(stopped(slot, "and will not run again"))
        }
        (Phase::Stopped, Condition::Started) if slot.held => {
            Some("was stopped by hand before it started".to_string())
        }
        (Phase::Stopped, Condition::Completed) => {
            let failed =
                slot.start_failed || slot.last_exit.as_ref().is_some_and(|e| !e.status.success());
            if failed && target.restart != RestartPolicy::Always {
                Some(stopped(slot, "and will not run again"))
            } else if slot.held && slot.last_pid.is_none() {
                Some("was stopped by hand before it ran".to_string())
            } else {
                None
            }
        }
        _ => None,
    }
}

fn stopped(slot: &Slot, tail: &str) -> String {
    match &slot.last_exit {
        _ if slot.held => format!("was stopped by hand {tail}"),
        Some(exit) => format!("ended ({}) {tail}", exit.status),
        None if slot.start_failed => format!("could not start {tail}"),
        None => format!("is stopped {tail}"),
    }
}

/// The groups in an order where each comes after everything it depends on (file order
/// among equals), or the first cycle found, as group indices from and back to its start.
pub fn start_order(depends: &[Vec<u16>]) -> Result<Vec<u16>, Vec<u16>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    let n = depends.len();
    let mut mark = vec![Mark::New; n];
    let mut order = Vec::with_capacity(n);
    // Iterative depth-first search: a file may hold 256 groups in one long chain.
    for root in 0..n {
        if mark[root] != Mark::New {
            continue;
        }
        let mut path: Vec<(usize, usize)> = vec![(root, 0)];
        mark[root] = Mark::Open;
        while let Some(&mut (node, ref mut next)) = path.last_mut() {
            let edges = depends.get(node).map_or(&[][..], Vec::as_slice);
            if let Some(&to) = edges.get(*next) {
                *next += 1;
                let to = usize::from(to);
                match mark.get(to) {
                    Some(Mark::New) => {
                        mark[to] = Mark::Open;
                        path.push((to, 0));
                    }
                    Some(Mark::Open) => {
                        let from = path.iter().position(|&(p, _)| p == to).unwrap_or(0);
                        let mut cycle: Vec<u16> =
                            path[from..].iter().map(|&(p, _)| p as u16).collect();
                        cycle.push(to as u16);
                        return Err(cycle);
                    }
                    Some(Mark::Done) | None => {}
                }
            } else {
                mark[node] = Mark::Done;
                order.push(node as u16);
                path.pop();
            }
        }
    }
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependencies_come_first_and_file_order_breaks_ties() {
        // 0 web → 2 migrate → 1 db; 3 alone.
        let deps = vec![vec![2], vec![], vec![1], vec![]];
        assert_eq!(start_order(&deps), Ok(vec![1, 2, 0, 3]));
    }

    #[test]
    fn a_cycle_is_named_whole_from_where_it_was_entered() {
        let deps = vec![vec![1], vec![2], vec![0]];
        assert_eq!(start_order(&deps), Err(vec![0, 1, 2, 0]));
        assert_eq!(start_order(&[vec![0]]), Err(vec![0, 0]));
        // A cycle below an acyclic start.
        let deps = vec![vec![1], vec![2], vec![1]];
        assert_eq!(start_order(&deps), Err(vec![1, 2, 1]));
    }

    #[test]
    fn a_long_chain_needs_no_deep_stack() {
        let deps: Vec<Vec<u16>> =
            (0..256u16).map(|i| if i == 0 { vec![] } else { vec![i - 1] }).collect();
        let order = start_order(&deps).unwrap_or_default();
        assert_eq!(order, (0..256).collect::<Vec<u16>>());
    }

    #[test]
    fn condition_words() {
        for word in Condition::NAMES {
            assert_eq!(Condition::parse(word).map(Condition::name), Some(word));
        }
        assert_eq!(Condition::parse("healthy"), None);
    }
}
