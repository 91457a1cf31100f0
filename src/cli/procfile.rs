//! A Procfile (docs/development.md), as foreman, honcho and overmind read it: each
//! `name: command` line is a group, its command run by `/bin/sh -c` in the Procfile's
//! directory, with one worker (or `-w`, or its `--formation` count). It becomes the groups
//! of a config file, so every other option applies as it does to a config file's groups.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use super::file::{self, ConfigFile, FileCommand, FileGroup, Layer, Pos};
use super::{CliExit, RunOpts, config_run, values};
use crate::config::RunSpec;

/// Run when there is no COMMAND, no `--config` and no `./corral.toml`.
pub const DEFAULT_FILE: &str = "Procfile";

/// Whether `check-config` should read `path` as a Procfile: `Procfile`, `Procfile.dev`,
/// `dev.procfile`.
pub(super) fn looks_like_one(path: &Path) -> bool {
    let name = path.file_name().and_then(OsStr::to_str).unwrap_or("");
    name == DEFAULT_FILE
        || name.starts_with("Procfile.")
        || name.to_ascii_lowercase().ends_with(".procfile")
}

/// One `name: command` line.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Entry {
    pub name: String,
    pub command: String,
    pub line: usize,
}

/// The entries of a Procfile's text; a mistake is `(line, message)`.
pub(super) fn parse(text: &str) -> Result<Vec<Entry>, (usize, String)> {
    // Windows editors start a file with a byte-order mark: not part of the first name.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut entries: Vec<Entry> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let Some((name, command)) = trimmed.split_once(':') else {
            return Err((line, "expected 'name: command'".to_string()));
        };
        let name = name.trim_end();
        if values::name(name).is_err() {
            return Err((
                line,
                format!("bad process name '{name}': expected letters, digits, '_' and '-' only"),
            ));
        }
        let command = command.trim();
        if command.is_empty() {
            return Err((line, format!("'{name}' has no command")));
        }
        if let Some(first) = entries.iter().find(|e| e.name == name) {
            return Err((line, format!("'{name}' is already defined on line {}", first.line)));
        }
        if entries.len() == file::MAX_GROUPS {
            return Err((line, format!("too many processes: at most {}", file::MAX_GROUPS)));
        }
        entries.push(Entry { name: name.to_string(), command: command.to_string(), line });
    }
    if entries.is_empty() {
        return Err((1, "expected at least one 'name: command' line".to_string()));
    }
    Ok(entries)
}

/// `--formation`'s pairs.
#[derive(Clone, Debug)]
pub(super) struct Formation(pub Vec<(String, u32)>);

/// `--formation web=2,worker=1` (`all=N` sets every process): the count of each name.
pub(super) fn formation(text: &str) -> Result<Formation, String> {
    let expected = "expected NAME=N pairs separated by commas, like web=2,worker=1";
    let mut out = Vec::new();
    for pair in text.split(',').map(str::trim) {
        // `web=1,,worker=1` is a typo, not a shorthand.
        let (name, count) = pair.split_once('=').ok_or_else(|| expected.to_string())?;
        let name = values::name(name.trim()).map_err(|_| expected.to_string())?;
        let count = values::jobs(count.trim()).map_err(|reason| format!("{name}: {reason}"))?;
        if out.iter().any(|(n, _)| *n == name) {
            return Err(format!("{name} is given twice"));
        }
        out.push((name, count));
    }
    if out.is_empty() {
        return Err(expected.to_string());
    }
    Ok(Formation(out))
}

/// Reads `path` and resolves its processes into a run, with `opts` from the command line.
pub(super) fn run_spec(
    opts: &RunOpts,
    given: &dyn Fn(&str) -> bool,
    path: &Path,
    formation: &[(String, u32)],
    path_var: Option<&OsStr>,
) -> Result<RunSpec, CliExit> {
    for (id, flag) in [("name", "--name"), ("listen", "--listen")] {
        if given(id) {
            return Err(CliExit::usage(format!("'{flag}' cannot be used with a Procfile")));
        }
    }
    let text = config_run::read(path, "Procfile")?;
    let at = |line: usize, message: String| {
        CliExit::usage(format!("{}:{line}: {message}", path.display()))
    };
    let entries = parse(&text).map_err(|(line, message)| at(line, message))?;
    let names = || entries.iter().map(|e| e.name.as_str()).collect::<Vec<_>>().join(", ");
    for (name, _) in formation {
        if name != "all" && !entries.iter().any(|e| e.name == *name) {
            return Err(CliExit::usage(format!(
                "invalid value for '--formation': {} has no process '{name}' (it has {})",
                path.display(),
                names()
            )));
        }
    }
    let count = |name: &str| {
        let find = |n: &str| formation.iter().rev().find(|(f, _)| f == n).map(|(_, c)| *c);
        find(name).or_else(|| find("all")).or(opts.workers).unwrap_or(1)
    };
    let mut file = ConfigFile::default();
    for entry in &entries {
        let workers = count(&entry.name);
        // `name=0` as foreman's: the process is not run at all.
        if workers == 0 {
            continue;
        }
        file.groups.push(FileGroup {
            name: entry.name.clone(),
            command: FileCommand::Shell(entry.command.clone()),
            command_at: Pos { line: entry.line, column: 1 },
            layer: Layer {
                options: crate::spec::GroupOptions { workers: Some(workers), ..Default::default() },
                ..Layer::default()
            },
            depends_on: Vec::new(),
        });
    }
    if file.groups.is_empty() {
        return Err(CliExit::usage(format!(
            "invalid value for '--formation': it leaves none of {}'s processes to run",
            path.display()
        )));
    }
    let dir = std::path::absolute(path)
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("/"));
    // The workers count comes from the formation or `-w` above, never from `-w` again.
    let given = |id: &str| id != "workers" && given(id);
    // The instance: the project's directory, as foreman names an app.
    let stem = dir.file_name().map(values::name_from_command);
    config_run::resolve(opts, &given, path, &dir, &file, stem, path_var)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_byte_order_mark_is_not_part_of_the_first_name() {
        let entries = parse("\u{feff}web: node app.js\n").unwrap();
        assert_eq!(entries[0].name, "web");
    }

    #[test]
    fn lines_comments_and_mistakes() {
        let text = "# dev\n\nweb: node server.js --port $PORT\nworker:bundle exec sidekiq\n";
        let entries = parse(text).expect("valid");
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].name, "web");
        assert_eq!(entries[0].command, "node server.js --port $PORT");
        assert_eq!((entries[1].name.as_str(), entries[1].line), ("worker", 4));
        assert_eq!(parse("web: a\nweb: b\n").unwrap_err().0, 2);
        assert!(parse("web: a\nweb: b\n").unwrap_err().1.contains("line 1"));
        assert_eq!(parse("web node\n").unwrap_err().0, 1);
        assert_eq!(parse("\nw.eb: node\n").unwrap_err().0, 2);
        assert_eq!(parse("web:\n").unwrap_err().0, 1);
        assert_eq!(parse("# nothing\n").unwrap_err().0, 1);
        // A colon in the command is the command's.
        assert_eq!(parse("web: a --x=http://h:1\n").unwrap()[0].command, "a --x=http://h:1");
    }

    #[test]
    fn formations() {
        assert_eq!(
            formation("web=2, worker=0").unwrap().0,
            [("web".into(), 2), ("worker".into(), 0)]
        );
        assert!(formation("web").is_err());
        assert!(formation("web=x").is_err());
        assert!(formation("").is_err());
        assert!(formation("web=5000").is_err());
        assert_eq!(formation("web=2,web=3").unwrap_err(), "web is given twice");
        assert!(formation("web=1,,worker=1").is_err());
        assert!(formation("web=1,").is_err());
    }

    #[test]
    fn procfile_names() {
        assert!(looks_like_one(Path::new("/x/Procfile")));
        assert!(looks_like_one(Path::new("Procfile.dev")));
        assert!(looks_like_one(Path::new("dev.procfile")));
        assert!(!looks_like_one(Path::new("corral.toml")));
    }
}
