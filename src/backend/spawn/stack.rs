//! The stack a spawn's child runs on: it shares corral's memory (`CLONE_VM`), so it needs
//! a stack of its own, and corral's thread waits (`CLONE_VFORK`) while it is in use.

use std::io;

/// The child's stack, made once and reused: spawns happen one at a time, and the parent
/// waits while the child runs on it. A guard page below catches an overflow.
pub(super) struct ChildStack {
    base: *mut libc::c_void,
    len: usize,
}

// SAFETY: the mapping is owned by this struct alone and used only under `SPAWNER`'s lock.
unsafe impl Send for ChildStack {}

const STACK_LEN: usize = 256 * 1024;
const GUARD_LEN: usize = 4096;

impl ChildStack {
    pub(super) fn new() -> io::Result<ChildStack> {
        // SAFETY: an anonymous private mapping; no existing memory is touched.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                STACK_LEN,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the lowest page of the mapping just made.
        if unsafe { libc::mprotect(base, GUARD_LEN, libc::PROT_NONE) } != 0 {
            let e = io::Error::last_os_error();
            // SAFETY: the mapping just made, unused.
            unsafe { libc::munmap(base, STACK_LEN) };
            return Err(e);
        }
        Ok(ChildStack { base, len: STACK_LEN })
    }

    /// The top of the stack (it grows down), 16-byte aligned.
    pub(super) fn top(&self) -> *mut libc::c_void {
        // SAFETY: one past the end of the mapping, which is page-aligned.
        unsafe { self.base.cast::<u8>().add(self.len).cast() }
    }
}

impl Drop for ChildStack {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, no longer used.
        unsafe { libc::munmap(self.base, self.len) };
    }
}
