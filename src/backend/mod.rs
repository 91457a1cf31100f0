//! The only code that touches processes: spawning workers with exactly what docs/workers.md
//! promises, signalling their process groups, reaping, binding the shared sockets.
//! It decides nothing; the core tells it what to do.

#[allow(unsafe_code, reason = "taking ownership of the LISTEN_FDS sockets corral inherited")]
mod inherited;
mod limits;
mod on_demand;
mod proc_stat;
#[allow(unsafe_code, reason = "kill, wait and dispositions with real-time signals")]
mod process;
#[allow(unsafe_code, reason = "TIOCSWINSZ has no safe wrapper")]
mod pty;
mod sampler;
#[allow(unsafe_code, reason = "seccomp's ioctls and pidfd_getfd have no safe wrapper")]
pub mod seccomp;
mod sockets;
#[allow(unsafe_code, reason = "the child side of fork: no allocation until exec")]
mod spawn;

pub use inherited::{InheritError, InheritedSocket, take_inherited};
pub use limits::{fd_limit, fds_needed, raise_fd_limit};
pub use on_demand::{Wanted, bind_on_demand, set_nonblocking};
pub use proc_stat::ProcStat;
pub use process::{
    become_subreaper, children_of_self, default_action, ensure_std_fds, environ_has, group_alive,
    group_has_member, ignore, peek_exit, peek_exit_of, pgrp_of, reap_one, reap_pid, signal_group,
    signal_pid,
};
pub use pty::{Pty, PtySize, open as open_pty, resize as resize_pty};
pub use sampler::{Probe as SamplerProbe, Targets, Usage, start_sampler};
pub use sockets::{BindError, BoundListener, bind};
pub use spawn::{AdoptBinds, ExecSpec, event_socketpair, spawn};

/// An OS error as people read it: `Address already in use`, without `(os error 98)`.
pub fn describe(err: &std::io::Error) -> String {
    let text = err.to_string();
    match text.find(" (os error ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}
