//! Reload on change (docs/development.md): one inotify watcher (through `notify`) for every
//! group that watches paths, one watch per directory that counts (so `node_modules/` and
//! what `.gitignore` lists cost nothing), and per group a debounce that turns a burst of
//! changes into one `Input::Reload`.
//!
//! WHY a coalescing slot and not a channel: events arrive on notify's thread, as many as
//! the disk can make. Each group keeps only the first path since the loop last looked,
//! and new directories are capped, so a flood of changes costs a fixed amount of memory
//! and wakes the loop at most once per turn.

mod debounce;
mod filter;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use notify::event::{CreateKind, EventKind, ModifyKind, RemoveKind, RenameMode};
use notify::{RecursiveMode, Watcher as _};

use self::debounce::Debounce;
use self::filter::{Filter, Root};
use crate::config::GroupSpec;

/// The most directories watched in all: a watch of `/` by mistake must not take minutes
/// and the whole inotify budget.
const MAX_DIRS: usize = 65_536;

/// New directories remembered between two turns of the loop; more are walked again from
/// their parents' roots at the next turn.
const MAX_NEW_DIRS: usize = 1024;

/// What notify's thread leaves for the loop.
#[derive(Default)]
struct Pending {
    /// Per group: the first path changed since the loop last looked.
    changed: Vec<Option<PathBuf>>,
    new_dirs: Vec<PathBuf>,
    /// More new directories than `MAX_NEW_DIRS`, or the kernel's queue overflowed.
    rescan: bool,
    /// Something was deleted or moved away: some watched directories may be gone.
    removed: bool,
    /// notify's own error, the first since the loop last looked.
    error: Option<String>,
}

struct Shared {
    filters: Vec<Option<Filter>>,
    pending: Mutex<Pending>,
    wake: tokio::sync::Notify,
}

/// The watch of every group that has one.
pub struct Watch {
    watcher: notify::RecommendedWatcher,
    shared: Arc<Shared>,
    debounces: Vec<Option<Debounce>>,
    watched: HashSet<PathBuf>,
    /// The watch limit was reached (warned once); no more directories are added.
    full: bool,
    /// Watched roots found removed (warned once each).
    gone: HashSet<PathBuf>,
}

impl Watch {
    /// `None` when no group watches anything, or inotify is not available (warned).
    pub fn start(groups: &[&GroupSpec], log_dir: Option<&Path>) -> Option<Watch> {
        let specs: Vec<_> = groups.iter().map(|g| g.watch.as_ref()).collect();
        if specs.iter().all(Option::is_none) {
            return None;
        }
        let filters = specs.iter().map(|s| s.map(|s| Filter::new(s, log_dir))).collect();
        let debounces = specs.iter().map(|s| s.map(|s| Debounce::new(s.debounce))).collect();
        let pending = Pending { changed: vec![None; groups.len()], ..Pending::default() };
        let shared = Arc::new(Shared {
            filters,
            pending: Mutex::new(pending),
            wake: tokio::sync::Notify::new(),
        });
        let theirs = Arc::clone(&shared);
        let handler = move |event: notify::Result<notify::Event>| on_event(&theirs, event);
        let watcher = match notify::recommended_watcher(handler) {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!("cannot watch files ({e}): --watch does nothing in this run");
                return None;
            }
        };
        let mut watch = Watch {
            watcher,
            shared,
            debounces,
            watched: HashSet::new(),
            full: false,
            gone: HashSet::new(),
        };
        watch.add_roots();
        Some(watch)
    }

    /// Watches every directory that counts under every root.
    fn add_roots(&mut self) {
        let shared = Arc::clone(&self.shared);
        let mut walk = Walk::default();
        for filter in shared.filters.iter().flatten() {
            for root in &filter.roots {
                match root {
                    Root::Dir(dir) => self.add_tree(dir, filter, &mut walk),
                    Root::File(file) => {
                        if let Some(parent) = file.parent() {
                            self.add_one(parent, &mut walk);
                        }
                    }
                }
            }
        }
        walk.report();
    }

    /// Watches `dir` and the directories below it that `filter` wants (those already
    /// watched are looked into too: a rescan finds what was missed below them).
    fn add_tree(&mut self, dir: &Path, filter: &Filter, walk: &mut Walk) {
        let mut queue = vec![dir.to_path_buf()];
        while let Some(dir) = queue.pop() {
            if self.full || !self.add_one(&dir, walk) {
                continue;
            }
            if self.watched.len() >= MAX_DIRS {
                continue;
            }
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) => {
                    walk.unreadable(&dir, &e);
                    continue;
                }
            };
            for entry in entries.flatten() {
                let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
                if is_dir && filter.wants(&entry.path(), true) {
                    queue.push(entry.path());
                }
            }
        }
    }

    /// Adds one directory's watch; false on a failure.
    ///
    /// WHY always ask inotify, even for a directory watched before: a directory deleted and
    /// made again under the same name (`rm -rf dist && mkdir dist`) is a new inode without
    /// a watch. Asking again for a watched one costs one call and changes nothing.
    fn add_one(&mut self, dir: &Path, walk: &mut Walk) -> bool {
        if !self.watched.contains(dir) && self.watched.len() >= MAX_DIRS {
            self.limit_reached(&format!("corral watches at most {MAX_DIRS} directories"));
            return false;
        }
        match self.watcher.watch(dir, RecursiveMode::NonRecursive) {
            Ok(()) => {
                self.watched.insert(dir.to_path_buf());
                true
            }
            Err(e) if matches!(e.kind, notify::ErrorKind::MaxFilesWatch) => {
                // The limit of this user namespace (the system's one outside containers).
                let limit =
                    ["/proc/sys/user/max_inotify_watches", "/proc/sys/fs/inotify/max_user_watches"]
                        .iter()
                        .find_map(|f| std::fs::read_to_string(f).ok())
                        .map_or_else(|| "?".into(), |s| s.trim().to_string());
                self.limit_reached(&format!(
                    "the inotify watch limit is reached (fs.inotify.max_user_watches = {limit}; \
                     raise it with sysctl)"
                ));
                false
            }
            Err(e) => {
                walk.unreadable(dir, &std::io::Error::other(e.to_string()));
                false
            }
        }
    }

    fn limit_reached(&mut self, why: &str) {
        if !self.full {
            self.full = true;
            tracing::warn!(
                "--watch: {why}: changes in the {} directories watched so far reload, others \
                 do not",
                self.watched.len()
            );
        }
    }

    /// Takes what notify's thread left: changes start or extend bursts at `now`, new
    /// directories are watched.
    fn absorb(&mut self, now: Instant) {
        let taken = {
            let Ok(mut p) = self.shared.pending.lock() else { return };
            let changed: Vec<Option<PathBuf>> = p.changed.iter_mut().map(Option::take).collect();
            (
                changed,
                std::mem::take(&mut p.new_dirs),
                std::mem::take(&mut p.rescan),
                p.error.take(),
                std::mem::take(&mut p.removed),
            )
        };
        let (changed, new_dirs, rescan, error, removed) = taken;
        if let Some(error) = error {
            tracing::warn!("--watch: {error}");
        }
        if removed {
            self.warn_roots_gone();
        }
        let shared = Arc::clone(&self.shared);
        for (g, path) in changed.into_iter().enumerate() {
            if let (Some(path), Some(Some(d)), Some(Some(f))) =
                (path, self.debounces.get_mut(g), shared.filters.get(g))
            {
                d.change(now, &f.shown(&path));
            }
        }
        let mut walk = Walk::default();
        if rescan {
            self.add_roots();
        }
        for dir in new_dirs {
            for filter in shared.filters.iter().flatten() {
                if filter.wants(&dir, true) {
                    self.add_tree(&dir, filter, &mut walk);
                }
            }
        }
        walk.report();
    }

    /// A watched directory itself deleted (a clean build, a checkout) takes its watch with
    /// it: said once, since changes there no longer reload until corral starts again.
    fn warn_roots_gone(&mut self) {
        let roots: Vec<PathBuf> = self
            .shared
            .filters
            .iter()
            .flatten()
            .flat_map(|f| f.roots.iter())
            .filter_map(|r| match r {
                Root::Dir(d) => Some(d.clone()),
                Root::File(_) => None,
            })
            .collect();
        for root in roots {
            if !root.exists() && self.gone.insert(root.clone()) {
                tracing::warn!(
                    "--watch: {} was removed: changes there no longer reload (start corral \
                     again to watch it once it is back)",
                    root.display()
                );
            }
        }
    }

    /// The reloads due at `now`: each group's burst's first path.
    fn take_due(&mut self, now: Instant) -> Vec<(u16, String)> {
        let mut due = Vec::new();
        for (g, d) in self.debounces.iter_mut().enumerate() {
            if let Some(path) = d.as_mut().and_then(|d| d.take_due(now)) {
                due.push((u16::try_from(g).unwrap_or(u16::MAX), path));
            }
        }
        due
    }

    fn next_due(&self) -> Option<Instant> {
        self.debounces.iter().flatten().filter_map(Debounce::due).min()
    }
}

/// The next reloads the watch asks for (never, without a watch). Cancel-safe: what it
/// learns is kept in `watch` whether or not this completes.
pub async fn next(watch: Option<&mut Watch>) -> Vec<(u16, String)> {
    let Some(watch) = watch else { return std::future::pending().await };
    let shared = Arc::clone(&watch.shared);
    loop {
        let woken = shared.wake.notified();
        tokio::pin!(woken);
        // WHY enable first: notify's thread may leave something between the look and the
        // wait; an enabled `Notified` catches its wake-up.
        woken.as_mut().enable();
        watch.absorb(Instant::now());
        let due = watch.take_due(Instant::now());
        if !due.is_empty() {
            return due;
        }
        match watch.next_due() {
            Some(at) => {
                tokio::select! {
                    () = &mut woken => {}
                    () = tokio::time::sleep_until(at.into()) => {}
                }
            }
            None => woken.await,
        }
    }
}

/// On notify's thread: records what counts, for the loop.
fn on_event(shared: &Shared, event: notify::Result<notify::Event>) {
    let event = match event {
        Ok(event) => event,
        Err(e) => {
            if let Ok(mut p) = shared.pending.lock() {
                p.error.get_or_insert_with(|| e.to_string());
            }
            shared.wake.notify_one();
            return;
        }
    };
    if event.need_rescan() {
        if let Ok(mut p) = shared.pending.lock() {
            p.rescan = true;
            // The kernel dropped events: something changed, where is unknown.
            for (g, filter) in shared.filters.iter().enumerate() {
                if let (Some(filter), Some(slot)) = (filter, p.changed.get_mut(g))
                    && let Some(Root::Dir(d) | Root::File(d)) = filter.roots.first()
                {
                    slot.get_or_insert_with(|| d.clone());
                }
            }
        }
        shared.wake.notify_one();
        return;
    }
    let known_dir = match event.kind {
        // Opening and reading files (the workers' own) changes nothing.
        EventKind::Access(_) => return,
        EventKind::Create(CreateKind::Folder) | EventKind::Remove(RemoveKind::Folder) => Some(true),
        EventKind::Create(CreateKind::File) | EventKind::Remove(RemoveKind::File) => Some(false),
        _ => None,
    };
    let removal = matches!(
        event.kind,
        EventKind::Remove(RemoveKind::Folder | RemoveKind::Any | RemoveKind::Other)
            | EventKind::Modify(ModifyKind::Name(RenameMode::From))
    );
    if removal && let Ok(mut p) = shared.pending.lock() {
        p.removed = true;
    }
    let maybe_new_dir = matches!(
        event.kind,
        EventKind::Create(CreateKind::Folder)
            | EventKind::Modify(ModifyKind::Name(RenameMode::To | RenameMode::Both))
    );
    let mut woke = false;
    for path in &event.paths {
        let is_dir =
            known_dir.unwrap_or_else(|| std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()));
        let Ok(mut p) = shared.pending.lock() else { return };
        let mut wanted = false;
        for (g, filter) in shared.filters.iter().enumerate() {
            if let (Some(filter), Some(slot)) = (filter, p.changed.get_mut(g))
                && filter.wants(path, is_dir)
            {
                wanted = true;
                if slot.is_none() {
                    *slot = Some(path.clone());
                    woke = true;
                }
            }
        }
        if wanted && is_dir && maybe_new_dir {
            if p.new_dirs.len() < MAX_NEW_DIRS {
                p.new_dirs.push(path.clone());
            } else {
                p.rescan = true;
            }
            woke = true;
        }
    }
    if woke {
        shared.wake.notify_one();
    }
}

/// Directories a walk could not read, reported once per walk.
#[derive(Default)]
struct Walk {
    unreadable: usize,
    first: Option<String>,
}

impl Walk {
    fn unreadable(&mut self, dir: &Path, e: &std::io::Error) {
        self.unreadable += 1;
        self.first
            .get_or_insert_with(|| format!("{}: {}", dir.display(), crate::backend::describe(e)));
    }

    fn report(self) {
        if let Some(first) = self.first {
            let more = match self.unreadable {
                1 => String::new(),
                n => format!(" (and {} more directories)", n - 1),
            };
            tracing::warn!("--watch: cannot watch {first}{more}: changes there do not reload");
        }
    }
}
