//! The config file (docs/config.md): TOML read into a spanned document and checked key by key, so
//! every mistake is one line naming `file:line:column`, the key path and what is expected.
//! Nothing here touches the file system beyond reading the file; commands and directories are
//! checked later, with the command line's own checks, at the positions kept here.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::config::LogFormat;
use crate::spec::GroupOptions;
use crate::spec::values;

/// The most groups one file may define: ids stay short and the dashboard readable.
pub const MAX_GROUPS: usize = 256;

/// A line and column in the file, both from 1.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

/// One mistake in the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileError {
    pub pos: Option<Pos>,
    /// `group.web.workers`; empty for a syntax error.
    pub key: String,
    pub message: String,
}

impl FileError {
    /// The one line shown after `corral: `.
    pub fn render(&self, file: &Path) -> String {
        use std::fmt::Write as _;
        let mut line = file.display().to_string();
        if let Some(Pos { line: l, column }) = self.pos {
            let _ = write!(line, ":{l}:{column}");
        }
        if !self.key.is_empty() {
            let _ = write!(line, ": {}", self.key);
        }
        format!("{line}: {}", self.message)
    }
}

/// What the file says, checked but not yet merged with the command line.
#[derive(Debug, Default)]
pub struct ConfigFile {
    pub instance: Option<String>,
    pub log_dir: Option<PathBuf>,
    pub log_keep: Option<u32>,
    pub log_format: Option<LogFormat>,
    pub strip_ansi: Option<bool>,
    pub metrics: Option<std::net::SocketAddr>,
    pub defaults: Layer,
    pub groups: Vec<FileGroup>,
}

#[derive(Debug)]
pub struct FileGroup {
    pub name: String,
    pub command: FileCommand,
    /// Where `command` is, for a command that turns out not to run.
    pub command_at: Pos,
    pub layer: Layer,
    /// `depends-on`, with the groups as indices into [`ConfigFile::groups`].
    pub depends_on: Vec<FileDependency>,
}

/// One entry of a group's `depends-on`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileDependency {
    pub dependency: crate::core::Dependency,
    /// Where the entry is, for a check that needs the merged options (`completed`).
    pub at: Pos,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileCommand {
    /// `["node", "server.js"]`
    Argv(Vec<String>),
    /// `"python3 worker.py"`, run by `/bin/sh -c`.
    Shell(String),
}

/// Group options as a file sets them: each one that is set replaces the built-in default
/// (and `[defaults]`'s), unless the same option was given on the command line.
#[derive(Clone, Debug, Default)]
pub struct Layer {
    /// The options that stack plainly (the shared rules' [`GroupOptions`]).
    pub options: GroupOptions,
    /// Where `listen` was set, for the errors of the sockets' checks.
    pub listen_at: Option<Pos>,
    /// Absolute (relative ones are joined to the file's directory), and where it was set.
    pub cwd: Option<(PathBuf, Pos)>,
    pub env: Vec<(OsString, OsString)>,
    /// Absolute (relative ones are joined to the file's directory), and where it was set.
    pub env_file: Option<(Vec<PathBuf>, Pos)>,
    /// Read in local time; `schedule-tz` is applied once the layers are merged.
    pub schedule: Option<(crate::schedule::Schedule, Pos)>,
    pub reload_schedule: Option<(crate::schedule::Schedule, Pos)>,
    /// Absolute (joined to the file's directory), each with where it was written.
    pub watch: Option<Vec<(PathBuf, Pos)>>,
}

/// Every key a group (or `[defaults]`) takes: docs/config.md's group options by their long names.
pub const GROUP_KEYS: &[&str] = &[
    "command",
    "workers",
    "listen",
    "restart",
    "backoff",
    "min-uptime",
    "max-restarts",
    "restart-window",
    "stop-signal",
    "kill-timeout",
    "cwd",
    "env",
    "env-file",
    "schedule",
    "reload-schedule",
    "schedule-tz",
    "wait-ready",
    "ready-timeout",
    "reload-settle",
    "heartbeat-timeout",
    "max-memory",
    "node-ipc",
    "node-cluster",
    "node-cluster-sched",
    "share-binds",
    "depends-on",
    "pty",
    "watch",
    "watch-ignore",
    "watch-debounce",
    "readiness-probe",
    "liveness-probe",
    "startup-probe",
];

/// Parses and checks `text`; `dir` is the file's directory (absolute), against which
/// relative paths in it are read.
pub fn parse(text: &str, dir: &Path) -> Result<ConfigFile, FileError> {
    let doc = DeTable::parse(text).map_err(|e| FileError {
        pos: e.span().map(|s| position(text, s.start)),
        key: String::new(),
        message: syntax_message(e.message()),
    })?;
    let cx = Cx { text, dir };
    let mut file = ConfigFile::default();
    let mut groups = None;
    for (key, value) in doc.get_ref() {
        let name = key.get_ref().as_ref();
        let at = Here { cx: &cx, path: name.to_string(), value, key_span: key.span() };
        match name {
            "instance" => file.instance = Some(at.name()?),
            "log-dir" => file.log_dir = Some(at.path()?.0),
            "log-keep" => {
                let max = values::MAX_LOG_KEEP;
                file.log_keep = Some(at.int(0, u64::from(max), &format!("0..={max}"))? as u32);
            }
            "metrics" => {
                let what = "an address like \"127.0.0.1:9464\" or a port";
                let text = at.text_or_int(what)?;
                let addr = values::metrics_addr(&text)
                    .map_err(|reason| at.fail(&format!("{reason}, got \"{text}\"")))?;
                file.metrics = Some(addr);
            }
            "log-format" => {
                file.log_format =
                    Some(at.choice(&[("text", LogFormat::Text), ("json", LogFormat::Json)])?);
            }
            "strip-ansi" => file.strip_ansi = Some(at.bool()?),
            "defaults" => file.defaults = group::layer(&at, false)?.0,
            "group" => groups = Some(at),
            _ => {
                return Err(at.unknown_key(
                    &[
                        "instance",
                        "log-dir",
                        "log-keep",
                        "log-format",
                        "strip-ansi",
                        "metrics",
                        "defaults",
                        "group",
                    ],
                    "instance, log-dir, log-keep, log-format, strip-ansi, metrics, [defaults] or \
                     [group.NAME]",
                ));
            }
        }
    }
    let Some(groups) = groups else {
        return Err(FileError {
            pos: None,
            key: "group".into(),
            message: "no groups: expected at least one [group.NAME] table with a command".into(),
        });
    };
    let table = groups.table()?;
    let mut named_depends = Vec::new();
    if table.is_empty() {
        return Err(groups.fail("expected at least one [group.NAME] table with a command"));
    }
    for (key, value) in table {
        let name = key.get_ref().as_ref();
        let at = Here { cx: &cx, path: format!("group.{name}"), value, key_span: key.span() };
        if let Err(reason) = values::name(name) {
            return Err(at.fail_at_key(&format!("bad group name '{name}': {reason}")));
        }
        if file.groups.len() == MAX_GROUPS {
            return Err(at.fail_at_key(&format!("too many groups: at most {MAX_GROUPS}")));
        }
        let (layer, command, depends) = group::layer(&at, true)?;
        let Some((command, command_at)) = command else {
            return Err(at.fail_at_key(
                "missing key 'command': expected the program to run, \
                                        as an array [\"node\", \"server.js\"] or a string run \
                                        by /bin/sh -c",
            ));
        };
        file.groups.push(FileGroup {
            name: name.to_string(),
            command,
            command_at,
            layer,
            depends_on: Vec::new(),
        });
        named_depends.push(depends);
    }
    group::resolve_depends(&mut file.groups, named_depends)?;
    Ok(file)
}

/// The known word `typed` most likely misspells, if one is close enough.
fn closest<'k>(typed: &str, known: impl Iterator<Item = &'k str>) -> Option<&'k str> {
    known
        .map(|k| (strsim::jaro_winkler(typed, k), k))
        .filter(|(score, _)| *score > 0.9)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}

/// toml's messages end with a newline and sometimes span several lines.
fn syntax_message(message: &str) -> String {
    let line = message.split('\n').map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>();
    format!("invalid TOML: {}", line.join("; "))
}

struct Cx<'a> {
    text: &'a str,
    dir: &'a Path,
}

/// A value and where it is: everything an error message needs.
struct Here<'a, 'i> {
    cx: &'a Cx<'a>,
    path: String,
    value: &'a Spanned<DeValue<'i>>,
    key_span: std::ops::Range<usize>,
}

impl<'a, 'i> Here<'a, 'i> {
    fn pos(&self) -> Pos {
        position(self.cx.text, self.value.span().start)
    }

    fn fail(&self, message: &str) -> FileError {
        FileError { pos: Some(self.pos()), key: self.path.clone(), message: message.to_string() }
    }

    fn fail_at_key(&self, message: &str) -> FileError {
        FileError {
            pos: Some(position(self.cx.text, self.key_span.start)),
            key: self.path.clone(),
            message: message.to_string(),
        }
    }

    /// A typo names its likely key first: `wrkers` → `did you mean 'workers'?`.
    fn unknown_key(&self, known: &[&str], expected: &str) -> FileError {
        let typed = self.path.rsplit('.').next().unwrap_or("");
        match closest(typed, known.iter().copied()) {
            Some(key) => self.fail_at_key(&format!("unknown key: did you mean '{key}'?")),
            None => self.fail_at_key(&format!("unknown key: expected {expected}")),
        }
    }

    /// `expected …, got "four"`: the value as written in the file.
    fn expected(&self, what: &str) -> FileError {
        let span = self.value.span();
        let written = self.cx.text.get(span).unwrap_or("").trim();
        let shown: String = written.chars().take(60).collect();
        let more = if shown.len() < written.len() { "…" } else { "" };
        self.fail(&format!("expected {what}, got {shown}{more}"))
    }

    fn str(&self, what: &str) -> Result<&'a str, FileError> {
        self.value.get_ref().as_str().ok_or_else(|| self.expected(what))
    }

    fn bool(&self) -> Result<bool, FileError> {
        self.value.get_ref().as_bool().ok_or_else(|| self.expected("true or false"))
    }

    fn int(&self, min: u64, max: u64, range: &str) -> Result<u64, FileError> {
        let what = format!("an integer {range}");
        let Some(int) = self.value.get_ref().as_integer() else {
            return Err(self.expected(&what));
        };
        u64::from_str_radix(int.as_str(), int.radix())
            .ok()
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| self.expected(&what))
    }

    fn table(&self) -> Result<&'a DeTable<'i>, FileError> {
        self.value.get_ref().as_table().ok_or_else(|| self.expected("a table"))
    }

    /// A string value through one of the command line's parsers; its reason is the message.
    fn parsed<T>(
        &self,
        what: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<T, FileError> {
        let text = self.str(what)?;
        parse(text).map_err(|reason| self.fail(&format!("{reason}, got \"{text}\"")))
    }

    /// A string, or an integer read as its digits (`stop-signal = 15`, `max-memory = 1000000`).
    fn text_or_int(&self, what: &str) -> Result<String, FileError> {
        match self.value.get_ref() {
            DeValue::String(s) => Ok(s.to_string()),
            DeValue::Integer(i) if i.radix() == 10 => Ok(i.as_str().to_string()),
            _ => Err(self.expected(what)),
        }
    }

    fn duration(&self, positive: bool) -> Result<Duration, FileError> {
        let what = "a duration string like \"250ms\", \"5s\" or \"1m30s\"";
        if positive {
            self.parsed(what, values::positive_duration)
        } else {
            self.parsed(what, values::duration)
        }
    }

    /// A duration, or `"off"`.
    fn optional_duration(&self) -> Result<Option<Duration>, FileError> {
        if self.value.get_ref().as_str() == Some("off") {
            return Ok(None);
        }
        let what = "a duration string like \"10s\", or \"off\"";
        self.parsed(what, values::positive_duration).map(Some)
    }

    fn choice<T: Copy>(&self, choices: &[(&str, T)]) -> Result<T, FileError> {
        let names: Vec<String> = choices.iter().map(|(n, _)| format!("\"{n}\"")).collect();
        let what = format!("one of {}", names.join(", "));
        let text = self.str(&what)?;
        choices
            .iter()
            .find(|(n, _)| *n == text)
            .map(|(_, v)| *v)
            .ok_or_else(|| self.expected(&what))
    }

    fn name(&self) -> Result<String, FileError> {
        self.parsed("a name (letters, digits, '_' and '-')", values::name)
    }

    /// A path, made absolute against the file's directory.
    fn path(&self) -> Result<(PathBuf, Pos), FileError> {
        let text = self.str("a path string")?;
        if text.is_empty() || text.contains('\0') {
            return Err(self.expected("a path string"));
        }
        Ok((self.cx.dir.join(text), self.pos()))
    }

    fn child(
        &self,
        key: &str,
        value: &'a Spanned<DeValue<'i>>,
        key_span: std::ops::Range<usize>,
    ) -> Here<'a, 'i> {
        Here { cx: self.cx, path: format!("{}.{key}", self.path), value, key_span }
    }
}

/// Line and column (in characters) of byte `offset`, both from 1.
fn position(text: &str, offset: usize) -> Pos {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    Pos { line, column }
}

mod group;
mod probe;
#[cfg(test)]
mod tests;
