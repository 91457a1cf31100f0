//! The control socket (docs/control.md): where `corral ctl` and `corral attach` reach a running
//! corral.

use std::path::PathBuf;

/// Where instances' sockets live: `$XDG_RUNTIME_DIR/corral`, else `/tmp/corral-UID`.
pub fn default_dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("corral"),
        None => PathBuf::from(format!("/tmp/corral-{}", nix::unistd::getuid())),
    }
}

#[allow(unsafe_code, reason = "the detaching signal handlers: signal_hook_registry is unsafe")]
pub mod attach;
pub mod client;
pub mod messages;
pub mod server;
pub mod socket;
pub mod status;
