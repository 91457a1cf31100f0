//! The stack a spawn's child runs on: it shares corral's memory (`CLONE_VM`), so it needs
//! a stack of its own, and corral's thread waits (`CLONE_VFORK`) while it is in use.

use std::io;

/// The child's stack, made once and reused: spawns happen one at a time, and the parent
/// waits while the child runs on it. A guard page below catches an overflow.
///
/// WHY never unmapped: it lives in `SPAWNER` for the rest of the process, and a stack
/// dropped while a child could still run on it is the one mistake this must not allow.
pub(super) struct ChildStack {
    top: *mut libc::c_void,
}

// SAFETY: the mapping is owned by this struct alone and used only under `SPAWNER`'s lock.
unsafe impl Send for ChildStack {}

const STACK_LEN: usize = 256 * 1024;
const GUARD_LEN: usize = 4096;

impl ChildStack {
    pub(super) fn new() -> io::Result<ChildStack> {
        // WHY raw: nix's mmap and mprotect are unsafe functions too.
        // SAFETY: a new anonymous private mapping (no existing memory is touched); the
        // guard is its own lowest page; on failure the mapping, unused, is unmapped. The
        // top is one past its end, which is page-aligned.
        unsafe {
            let base = libc::mmap(
                std::ptr::null_mut(),
                STACK_LEN,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            );
            if base == libc::MAP_FAILED {
                return Err(io::Error::last_os_error());
            }
            if libc::mprotect(base, GUARD_LEN, libc::PROT_NONE) != 0 {
                let e = io::Error::last_os_error();
                libc::munmap(base, STACK_LEN);
                return Err(e);
            }
            Ok(ChildStack { top: base.cast::<u8>().add(STACK_LEN).cast() })
        }
    }

    /// The top of the stack (it grows down), 16-byte aligned.
    pub(super) fn top(&self) -> *mut libc::c_void {
        self.top
    }
}
