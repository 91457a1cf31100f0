//! Which paths a group's watch counts: under a watched directory (or the watched file
//! itself), outside `.git/`, `node_modules/` and corral's log directory, and matched neither
//! by the `.gitignore` of a watched root or of the base directory nor by `--watch-ignore`.
//! The `.gitignore` files are read once, at start.

use std::path::{Component, Path, PathBuf};

use ignore::gitignore::{Gitignore, GitignoreBuilder};

use crate::config::WatchSpec;

/// Directory names never watched, wherever they are.
const ALWAYS_IGNORED: &[&str] = &[".git", "node_modules"];

#[derive(Debug)]
pub enum Root {
    Dir(PathBuf),
    /// A watched file: its directory is watched, and only its own events count.
    File(PathBuf),
}

pub struct Filter {
    pub roots: Vec<Root>,
    base: PathBuf,
    log_dir: Option<PathBuf>,
    gitignores: Vec<Gitignore>,
    globs: Gitignore,
}

impl Filter {
    pub fn new(spec: &WatchSpec, log_dir: Option<&Path>) -> Filter {
        let roots: Vec<Root> = spec
            .paths
            .iter()
            .map(|p| if p.is_dir() { Root::Dir(p.clone()) } else { Root::File(p.clone()) })
            .collect();
        let mut dirs: Vec<&Path> = vec![&spec.base];
        dirs.extend(roots.iter().filter_map(|r| match r {
            Root::Dir(d) => Some(d.as_path()),
            Root::File(_) => None,
        }));
        dirs.dedup();
        let mut gitignores = Vec::new();
        for dir in dirs {
            let file = dir.join(".gitignore");
            if !file.is_file() {
                continue;
            }
            let (gi, error) = Gitignore::new(&file);
            if let Some(e) = error {
                tracing::warn!("{}: some lines are not used: {e}", file.display());
            }
            gitignores.push(gi);
        }
        let mut builder = GitignoreBuilder::new(&spec.base);
        for glob in &spec.ignore {
            // Checked when the command line or the file was read.
            let _ = builder.add_line(None, glob);
        }
        let globs = builder.build().unwrap_or_else(|_| Gitignore::empty());
        Filter {
            roots,
            base: spec.base.clone(),
            log_dir: log_dir.map(Path::to_path_buf),
            gitignores,
            globs,
        }
    }

    /// Whether a change to `path` counts.
    pub fn wants(&self, path: &Path, is_dir: bool) -> bool {
        let Some(rel) = self.roots.iter().find_map(|r| match r {
            Root::Dir(d) => path.strip_prefix(d).ok(),
            Root::File(f) => (f == path).then_some(Path::new("")),
        }) else {
            return false;
        };
        let named = |c: Component<'_>| ALWAYS_IGNORED.iter().any(|n| c.as_os_str() == *n);
        if rel.components().any(named) {
            return false;
        }
        if self.log_dir.as_ref().is_some_and(|l| path.starts_with(l)) {
            return false;
        }
        for gi in &self.gitignores {
            if let Ok(under) = path.strip_prefix(gi.path())
                && !under.as_os_str().is_empty()
                && gi.matched_path_or_any_parents(under, is_dir).is_ignore()
            {
                return false;
            }
        }
        let rel = path.strip_prefix(&self.base).unwrap_or(rel);
        rel.as_os_str().is_empty()
            || !self.globs.matched_path_or_any_parents(rel, is_dir).is_ignore()
    }

    /// How `path` is named in `reload_started`: relative to the base directory when under it.
    pub fn shown(&self, path: &Path) -> String {
        path.strip_prefix(&self.base).unwrap_or(path).display().to_string()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "a panic is how a test fails")]
    use super::*;

    fn spec(base: &Path, paths: &[&str], ignore: &[&str]) -> WatchSpec {
        WatchSpec {
            paths: paths.iter().map(|p| base.join(p)).collect(),
            ignore: ignore.iter().map(ToString::to_string).collect(),
            debounce: std::time::Duration::from_millis(300),
            base: base.to_path_buf(),
        }
    }

    #[test]
    fn ignored_paths_do_not_count() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        std::fs::create_dir_all(base.join("src/gen")).unwrap();
        std::fs::write(base.join("package.json"), "{}").unwrap();
        std::fs::write(base.join(".gitignore"), "*.tmp\n/src/gen/\n").unwrap();
        let logs = base.join("logs");
        let f = Filter::new(&spec(base, &["src", "package.json"], &["*.log"]), Some(&logs));
        assert!(f.wants(&base.join("src/app.js"), false));
        assert!(f.wants(&base.join("src/lib/deep.js"), false));
        assert!(f.wants(&base.join("package.json"), false));
        assert!(!f.wants(&base.join("package-lock.json"), false), "not watched");
        assert!(!f.wants(&base.join("src/a.tmp"), false), ".gitignore");
        assert!(!f.wants(&base.join("src/gen/x.js"), false), ".gitignore, anchored");
        assert!(!f.wants(&base.join("src/gen"), true));
        assert!(!f.wants(&base.join("src/debug.log"), false), "--watch-ignore");
        assert!(!f.wants(&base.join("src/node_modules/x/index.js"), false));
        assert!(!f.wants(&base.join("src/.git/HEAD"), false));
        let f = Filter::new(&spec(base, &["."], &[]), Some(&logs));
        assert!(!f.wants(&logs.join("web.1.log"), false), "the log dir");
        assert!(f.wants(&base.join("src/app.js"), false));
        assert_eq!(f.shown(&base.join("src/app.js")), "src/app.js");
    }
}
