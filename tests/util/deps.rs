//! What the tests need beyond the Rust toolchain, as the test command provides it, pinned
//! (`scripts/test` runs `scripts/test-deps`): a venv with Python packages and npm packages,
//! under `$CORRAL_TEST_DEPS` (`target/test-deps`). A test that needs one of them fails, with
//! a line saying how to get it, rather than using whatever the machine happens to have.

use std::path::{Path, PathBuf};

/// `$CORRAL_TEST_DEPS`, as `scripts/test` exports it; `target/test-deps` of this checkout
/// otherwise, so a plain `cargo test` finds what an earlier `scripts/test` installed.
pub fn dir() -> PathBuf {
    std::env::var_os("CORRAL_TEST_DEPS").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-deps"),
        PathBuf::from,
    )
}

/// `path` under [`dir`], which must exist: the failure names the command that provides it.
fn provided(path: &str, what: &str) -> PathBuf {
    let found = dir().join(path);
    assert!(
        found.exists(),
        "{what} is missing: {} does not exist. Run the tests with `scripts/test`, which \
         installs what they need (or `scripts/test-deps target/test-deps` once, then \
         `cargo test`)",
        found.display()
    );
    found
}

/// The venv's `python3`, with the packages of `tests/deps/requirements.txt`.
pub fn python3() -> PathBuf {
    provided("venv/bin/python3", "the tests' Python venv (prometheus_client)")
}
