//! The open-file limit: corral holds three descriptors per worker (stdout, stderr, the
//! event channel) and the sampler one more, so 4,096 workers need about 17,000 while the
//! usual soft limit is 1,024. corral raises its own soft limit to the hard one at start
//! and gives every worker the limit it inherited, so a program that uses `select()` and
//! expects at most 1,024 descriptors sees what it would have without corral.

use std::sync::OnceLock;

use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// (the soft limit corral inherited, the hard limit), when corral raised its own.
static INHERITED: OnceLock<Option<(u64, u64)>> = OnceLock::new();

/// Raises the soft open-file limit to the hard one; call once, before any worker.
pub fn raise_fd_limit() {
    INHERITED.get_or_init(|| {
        let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
        if soft >= hard {
            return None;
        }
        match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => Some((soft, hard)),
            Err(e) => {
                tracing::debug!("cannot raise the open-file limit from {soft} to {hard}: {e}");
                None
            }
        }
    });
}

/// corral's own open-file limit (after `raise_fd_limit`).
pub fn fd_limit() -> u64 {
    getrlimit(Resource::RLIMIT_NOFILE).map_or(u64::MAX, |(soft, _)| soft)
}

/// Descriptors corral needs for `workers` workers with `probes` probes between them: about
/// 100 of its own (the spawn's staging run of 70, the terminal, sockets, files), up to five
/// per worker (two pipes, the event channel, the seccomp listener, the sampler's stat file)
/// and one per probe in flight (its socket, or its command's `/dev/null`).
pub fn fds_needed(workers: u64, probes: u64) -> u64 {
    100 + 5 * workers + probes
}

/// The limit a worker gets back, when corral raised its own.
pub(super) fn for_workers() -> Option<libc::rlimit64> {
    let (soft, hard) = (*INHERITED.get()?)?;
    Some(libc::rlimit64 { rlim_cur: soft, rlim_max: hard })
}
