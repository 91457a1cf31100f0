//! A worker slot's identity: everything in the core names workers by it, so it depends
//! on nothing else here.

use std::fmt;

/// A worker slot: its group (index into the configured groups) and its 1-based number.
/// Stable across restarts; the PID is not.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkerKey {
    pub group: u16,
    pub slot: u32,
}

/// A map keyed by worker, hashed by the key's two numbers: a flood looks its worker up
/// once per line, and `SipHash` (std's default, built against hostile keys, which these are
/// not: corral makes them) was a tenth of the cost of a line.
pub type KeyMap<V> =
    std::collections::HashMap<WorkerKey, V, std::hash::BuildHasherDefault<KeyHasher>>;

/// The hasher of [`KeyMap`]: a multiply-rotate mix of the integers written to it.
#[derive(Default)]
pub struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u16(&mut self, n: u16) {
        self.write_u64(u64::from(n));
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

/// A worker's id as people read it, `web.2`: the one way it is written, in events, logs,
/// the dashboard, `ctl` and file names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkerId<'a> {
    pub group: &'a str,
    pub slot: u32,
}

impl fmt::Display for WorkerId<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.group, self.slot)
    }
}

impl WorkerKey {
    /// Its id, named from the groups' `names` (`?` for a group that is not there).
    pub fn id(self, names: &[String]) -> WorkerId<'_> {
        let group = names.get(usize::from(self.group)).map_or("?", String::as_str);
        WorkerId { group, slot: self.slot }
    }
}

impl fmt::Display for WorkerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.group, self.slot)
    }
}
