//! A worker's escape sequences (docs/development.md#colours), read with `vte`, the parser of
//! alacritty: what the headless text and the log files keep, what `--strip-ansi` and the
//! pane's filter take away. The dashboard's styles are in `ui::colour`, on the same parser.
//!
//! Only SGR (`ESC [ params m`: colours, bold, underline, reset) is ever let through; every
//! other sequence (cursor moves, clearing, titles, OSC, DCS) is made visible or removed,
//! never written raw. Each line is parsed on its own, with a fresh parser: nothing a line
//! leaves unterminated can reach the next.

use std::borrow::Cow;

use vte::{Params, Parser, Perform};

/// ESC: every sequence `vte` reads starts with it (C1's 8-bit CSI, U+009B, is a plain
/// control for a UTF-8 parser, made visible as one).
const ESC: u8 = 0x1b;

/// The reset a headless line that kept any SGR ends with, so no style reaches the next line.
pub const RESET: &[u8] = b"\x1b[0m";

/// Whether `bytes` may hold an escape sequence.
pub fn has_escape(bytes: &[u8]) -> bool {
    memchr::memchr(ESC, bytes).is_some()
}

/// Whether a dispatched CSI is an SGR that sets styles: final `m`, no private marker or
/// intermediate (`ESC[?1m`, `ESC[>4;2m` are something else), and not cut short by too many
/// parameters (vte keeps 32).
pub fn is_sgr(intermediates: &[u8], ignore: bool, action: char) -> bool {
    action == 'm' && intermediates.is_empty() && !ignore
}

/// Collects a line's text and its lone controls, dropping every escape sequence.
struct Strip<'a> {
    out: &'a mut String,
}

impl Perform for Strip<'_> {
    fn print(&mut self, c: char) {
        self.out.push(c);
    }

    fn execute(&mut self, byte: u8) {
        // Controls stay, for the escaping that follows to make visible (U+0080..U+009F
        // arrive as their low byte).
        self.out.push(char::from(byte));
    }
}

/// `text` without its escape sequences; its other controls are left for the caller to make
/// visible. Borrowed when there is no ESC, the usual case.
pub fn strip(text: &str) -> Cow<'_, str> {
    if !has_escape(text.as_bytes()) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    Parser::new().advance(&mut Strip { out: &mut out }, text.as_bytes());
    Cow::Owned(out)
}

/// Worker bytes without their escape sequences, as (lossy) UTF-8 text: `--strip-ansi`.
pub fn strip_bytes(line: &[u8]) -> Cow<'_, str> {
    if !has_escape(line) {
        return String::from_utf8_lossy(line);
    }
    let mut out = String::with_capacity(line.len());
    // vte reads invalid UTF-8 as U+FFFD, as `from_utf8_lossy` does.
    Parser::new().advance(&mut Strip { out: &mut out }, line);
    Cow::Owned(out)
}

/// What the sequence starting at an ESC turned out to be, as vte read it.
#[derive(Default)]
struct Probe {
    /// Set when a sequence ended: whether it was an SGR.
    ended: Option<bool>,
    /// Text or a control came before any end: no sequence to keep here.
    other: bool,
}

impl Perform for Probe {
    fn print(&mut self, _: char) {
        self.other = true;
    }
    fn execute(&mut self, _: u8) {
        self.other = true;
    }
    fn hook(&mut self, _: &Params, _: &[u8], _: bool, _: char) {
        self.other = true;
    }
    fn osc_dispatch(&mut self, _: &[&[u8]], _: bool) {
        self.ended = Some(false);
    }
    fn csi_dispatch(&mut self, _: &Params, intermediates: &[u8], ignore: bool, action: char) {
        self.ended = Some(is_sgr(intermediates, ignore, action));
    }
    fn esc_dispatch(&mut self, _: &[u8], _: bool, _: u8) {
        self.ended = Some(false);
    }
}

/// How many bytes of `from` (which starts with ESC) vte read as one piece, and whether that
/// piece is an SGR written the plain way (`ESC [ 0-9;: m`, nothing else inside), the only
/// form copied raw. WHY byte by byte: vte reports what it read, not where it ended.
fn sequence(from: &[u8]) -> (usize, bool) {
    let mut parser = Parser::new();
    let mut probe = Probe::default();
    for (i, byte) in from.iter().enumerate() {
        parser.advance(&mut probe, std::slice::from_ref(byte));
        if probe.other {
            return (i + 1, false);
        }
        if let Some(sgr) = probe.ended {
            let piece = &from[..=i];
            let plain = piece.len() >= 3
                && piece[1] == b'['
                && piece[2..piece.len() - 1]
                    .iter()
                    .all(|b| b.is_ascii_digit() || *b == b';' || *b == b':');
            return (i + 1, sgr && plain);
        }
    }
    (from.len(), false)
}

/// Headless text and log files: `line` with its SGR sequences kept as received and
/// everything else escaped as [`crate::text::escape`] does (lossy UTF-8, controls and other
/// sequences made visible); a line that kept an SGR ends with [`RESET`].
pub fn keep_sgr(line: &[u8], out: &mut Vec<u8>) {
    let mut written = 0;
    let mut at = 0;
    let mut kept = false;
    while let Some(found) = memchr::memchr(ESC, &line[at..]) {
        let esc = at + found;
        let (len, sgr) = sequence(&line[esc..]);
        if sgr {
            escaped(out, &line[written..esc]);
            out.extend_from_slice(&line[esc..esc + len]);
            written = esc + len;
            kept = true;
        }
        at = esc + len;
    }
    escaped(out, &line[written..]);
    if kept {
        out.extend_from_slice(RESET);
    }
}

fn escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    if !bytes.is_empty() {
        let text = crate::text::escape(&String::from_utf8_lossy(bytes), false);
        out.extend_from_slice(text.as_bytes());
    }
}

#[cfg(test)]
mod tests;
