//! Environment files (docs/application.md#environment-files-env-file): `KEY=value` lines as the
//! dotenv convention writes them, read by the `dotenvy` crate so quoting, `export` and comments
//! mean what they mean everywhere else. Read at start (a mistake is a config error) and again
//! at every spawn (a mistake is that spawn's failure), never silently empty.

use std::io::Read as _;
use std::path::Path;

/// The largest env file corral reads: a `.env` is a few kilobytes.
pub const MAX_BYTES: u64 = 1024 * 1024;
/// The most variables one env file may set.
pub const MAX_VARS: usize = 10_000;

/// Why an env file cannot be used; the text names the file (and the line, when there is one).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct EnvFileError {
    pub message: String,
    /// The text names a line of the file (`.env:3: …`), not just the file.
    pub at_line: bool,
}

fn whole(message: String) -> EnvFileError {
    EnvFileError { message, at_line: false }
}

fn at_line(message: String) -> EnvFileError {
    EnvFileError { message, at_line: true }
}

/// The variables of the env file at `path`, in file order (a key set twice keeps its last value
/// when applied in order).
pub fn read(path: &Path) -> Result<Vec<(String, String)>, EnvFileError> {
    let text = read_text(path)?;
    parse(&text).map_err(|(line, why)| at_line(format!("{}:{line}: {why}", shown(path))))
}

fn shown(path: &Path) -> String {
    crate::text::escape(&path.to_string_lossy(), false)
}

/// The file's text: a regular file (not a FIFO that would block, not `/dev/zero`) of at most
/// `MAX_BYTES`, in UTF-8.
fn read_text(path: &Path) -> Result<String, EnvFileError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let failed = |e: &std::io::Error| {
        whole(format!("cannot read env file {}: {}", shown(path), crate::backend::describe(e)))
    };
    // WHY O_NONBLOCK: opening a FIFO for reading blocks until someone writes to it.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| failed(&e))?;
    if !file.metadata().map_err(|e| failed(&e))?.is_file() {
        return Err(whole(format!("env file {} is not a regular file", shown(path))));
    }
    let mut bytes = Vec::new();
    file.take(MAX_BYTES + 1).read_to_end(&mut bytes).map_err(|e| failed(&e))?;
    if bytes.len() as u64 > MAX_BYTES {
        let kib = MAX_BYTES / 1024;
        return Err(whole(format!("env file {} is over {kib} KiB", shown(path))));
    }
    String::from_utf8(bytes).map_err(|e| {
        let line = e.as_bytes()[..e.utf8_error().valid_up_to()].iter().filter(|&&b| b == b'\n');
        at_line(format!("{}:{}: not UTF-8 text", shown(path), line.count() + 1))
    })
}

/// The variables in `text`; a mistake is its line number (from 1) and what is wrong.
pub fn parse(text: &str) -> Result<Vec<(String, String)>, (usize, String)> {
    // Windows editors start a file with a byte-order mark: not part of the first name.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut vars = Vec::new();
    // dotenvy reads the whole text (values may refer to earlier keys, and quotes may span
    // lines); only a mistake is looked for again, line by line, to say where it is.
    for item in dotenvy::from_read_iter(text.as_bytes()) {
        match item {
            Ok((key, value)) => {
                if value.contains('\0') {
                    return Err(locate_nul(text, &key));
                }
                if vars.len() == MAX_VARS {
                    return Err((line_count(text), format!("more than {MAX_VARS} variables")));
                }
                vars.push((key, value));
            }
            Err(_) => return Err(locate(text)),
        }
    }
    Ok(vars)
}

fn line_count(text: &str) -> usize {
    text.lines().count().max(1)
}

fn locate_nul(text: &str, key: &str) -> (usize, String) {
    let line = text.lines().position(|l| l.contains(key) && l.contains('\0')).map_or(1, |i| i + 1);
    (line, format!("{key}: a value may not contain a NUL byte"))
}

/// The first logical line (a quoted value may span lines) that dotenvy refuses, and why.
fn locate(text: &str) -> (usize, String) {
    for (line, logical) in logical_lines(text) {
        let refused = dotenvy::from_read_iter(logical.as_bytes()).any(|item| item.is_err());
        if refused {
            let first = logical.lines().next().unwrap_or("");
            let shown: String = first.chars().take(60).collect();
            let shown = crate::text::escape(&shown, false);
            let why = if open_quote(&logical) {
                format!("a quote opened here is never closed: {shown}")
            } else {
                format!("expected KEY=value (or export KEY=value), got {shown}")
            };
            return (line, why);
        }
    }
    (line_count(text), "cannot be read as KEY=value lines".into())
}

/// Whether a quote opened in `logical` is still open at its end, by the rules dotenvy cuts
/// lines with (a `#` right after a blank starts a comment; a backslash escapes, in quotes too).
fn open_quote(logical: &str) -> bool {
    #[derive(Clone, Copy)]
    enum S {
        Plain,
        Blank,
        Escape,
        Single,
        SingleEscape,
        Double,
        DoubleEscape,
    }
    let mut s = S::Plain;
    for c in logical.chars() {
        s = match (s, c) {
            (S::Blank, '#') => return false,
            (S::Plain | S::Blank, '\\') => S::Escape,
            (S::Plain | S::Blank, '"') => S::Double,
            (S::Plain | S::Blank, '\'') => S::Single,
            (S::Plain, c) if c.is_whitespace() && c != '\n' && c != '\r' => S::Blank,
            (S::Plain | S::Blank | S::Escape, _) | (S::Single, '\'') | (S::Double, '"') => S::Plain,
            (S::Single, '\\') => S::SingleEscape,
            (S::Single | S::SingleEscape, _) => S::Single,
            (S::Double, '\\') => S::DoubleEscape,
            (S::Double | S::DoubleEscape, _) => S::Double,
        };
    }
    matches!(s, S::Single | S::SingleEscape | S::Double | S::DoubleEscape)
}

/// The file cut as dotenvy cuts it: each line, or several when a quote spans them, with the
/// number of the line it starts on.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut start = 1;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if current.is_empty() {
            start = i + 1;
        }
        current.push_str(line);
        let comment = current.trim_start().starts_with('#');
        if comment || !open_quote(&current) {
            out.push((start, std::mem::take(&mut current)));
        }
    }
    if !current.is_empty() {
        out.push((start, current));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(text: &str) -> Vec<(String, String)> {
        parse(text).expect("parses")
    }

    fn pair(k: &str, v: &str) -> (String, String) {
        (k.to_string(), v.to_string())
    }

    #[test]
    fn a_byte_order_mark_is_not_part_of_the_first_name() {
        assert_eq!(parse("\u{feff}A=1\n"), Ok(vec![("A".to_string(), "1".to_string())]));
    }

    #[test]
    fn the_dotenv_forms() {
        let text = "# a comment\n\
                    A=plain\n\
                    export B=exported\n\
                    C=\"double # not a comment\"\n\
                    D='single $A'\n\
                    E=value # a comment after\n\
                    \n\
                    F=\"two\nlines\"\n\
                    G=\n";
        assert_eq!(
            vars(text),
            vec![
                pair("A", "plain"),
                pair("B", "exported"),
                pair("C", "double # not a comment"),
                pair("D", "single $A"),
                pair("E", "value"),
                pair("F", "two\nlines"),
                pair("G", ""),
            ]
        );
    }

    #[test]
    fn a_mistake_names_its_line() {
        let (line, why) = parse("A=1\n# fine\nNOT A LINE\nB=2\n").expect_err("bad");
        assert_eq!(line, 3);
        assert!(why.contains("expected KEY=value") && why.contains("NOT A LINE"), "{why}");
        let (line, why) = parse("A=1\nB=\"never closed\nC=3\n").expect_err("bad");
        assert_eq!(line, 2, "{why}");
        assert!(why.contains("never closed"), "{why}");
        let (line, _) = parse("A=1\nB=\"two\nlines\"\n=nokey\n").expect_err("bad");
        assert_eq!(line, 4, "a quoted value spanning lines counts its lines");
        let (line, _) = parse("A=1 # don't\nB=2\nbad line\n").expect_err("bad");
        assert_eq!(line, 3, "a quote in a comment opens nothing");
    }

    #[test]
    fn bounded_in_count() {
        let text = (0..=MAX_VARS).fold(String::new(), |mut s, i| {
            s.push('K');
            s.push_str(&i.to_string());
            s.push_str("=v\n");
            s
        });
        let (_, why) = parse(&text).expect_err("too many");
        assert!(why.contains("more than"), "{why}");
    }

    #[test]
    fn files_missing_oversized_or_not_regular() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("nope.env");
        let err = read(&missing).expect_err("missing").message;
        assert!(err.contains("nope.env") && err.contains("cannot read"), "{err}");
        let big = dir.path().join("big.env");
        std::fs::write(&big, "A=".to_string() + &"x".repeat(MAX_BYTES as usize)).expect("write");
        assert!(read(&big).expect_err("big").message.contains("over"));
        assert!(read(dir.path()).expect_err("dir").message.contains("not a regular file"));
        let bad = dir.path().join("bad.env");
        std::fs::write(&bad, b"A=1\nB=\xff\n").expect("write");
        let err = read(&bad).expect_err("not utf-8").message;
        assert!(err.ends_with("bad.env:2: not UTF-8 text"), "{err}");
    }
}
