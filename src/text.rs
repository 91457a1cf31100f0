//! Worker text made safe to show, for the headless lines and the dashboard alike: control
//! characters (ESC, BEL, CR, BS, the C1 range) and bidi overrides become visible escapes,
//! so no worker can move the cursor, retitle the terminal or reorder what people read.

use std::fmt::Write as _;

/// Whether a character must be shown escaped rather than written.
pub(crate) fn unsafe_char(c: char) -> bool {
    let bidi = matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    (c.is_control() && c != '\t') || bidi
}

/// `text` with unsafe characters as `\u{1b}`. With `expand_tabs`, tabs become spaces to
/// the next multiple of 4, so a screen model and the terminal agree on widths; otherwise
/// they stay (harmless in a log line).
pub fn escape(text: &str, expand_tabs: bool) -> String {
    let mut out = String::with_capacity(text.len());
    let mut column = 0;
    for c in text.chars() {
        if c == '\t' && expand_tabs {
            let pad = 4 - column % 4;
            out.extend(std::iter::repeat_n(' ', pad));
            column += pad;
        } else if unsafe_char(c) {
            column += escape_char(&mut out, c);
        } else {
            out.push(c);
            column += 1;
        }
    }
    out
}

/// Appends `c` as its visible escape (`\u{1b}`); returns how many columns that took (the
/// escape is ASCII: bytes are columns).
pub(crate) fn escape_char(out: &mut String, c: char) -> usize {
    let before = out.len();
    let _ = write!(out, "\\u{{{:x}}}", c as u32);
    out.len() - before
}

/// Rewrites `json[from..]`, which must be valid JSON, so that the characters [`escape`]
/// makes visible are `\u` escapes: the same JSON value, safe to print. JSON escapes C0
/// controls already; DEL, the C1 range and bidi overrides it leaves raw, and they can only
/// be inside strings (elsewhere JSON is ASCII), where `\u` means the same character.
pub fn escape_json(json: &mut Vec<u8>, from: usize) {
    // The lead bytes of every character to rewrite: 0x7f, 0xc2 (U+0080..), 0xe2 (U+2000..).
    let Some(first) = memchr::memchr3(0x7f, 0xc2, 0xe2, &json[from..]) else {
        return; // the usual case, at memchr's speed
    };
    let start = from + first;
    let tail = json.split_off(start);
    let Ok(tail) = String::from_utf8(tail) else {
        debug_assert!(false, "escape_json was given bytes that are not UTF-8");
        return;
    };
    for c in tail.chars() {
        // Raw ASCII controls in JSON are whitespace between tokens (the line's `\n`).
        if c >= '\u{7f}' && unsafe_char(c) {
            let _ = write!(VecWriter(json), "\\u{:04x}", c as u32);
        } else {
            let mut utf8 = [0; 4];
            json.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
        }
    }
}

/// `write!` into a byte buffer without going through `io::Write`'s error handling.
struct VecWriter<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for VecWriter<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_are_made_visible() {
        let s = escape("\x1b]0;PWNED\x07a\tb\rc\u{9b}1m\u{202e}x", true);
        assert!(!s.chars().any(char::is_control), "{s:?}");
        assert_eq!(s, "\\u{1b}]0;PWNED\\u{7}a    b\\u{d}c\\u{9b}1m\\u{202e}x");
        assert_eq!(escape("a\tb", false), "a\tb", "log lines keep their tabs");
        assert_eq!(escape("ab\tc\td", true), "ab  c   d");
    }

    #[test]
    fn json_keeps_its_meaning_and_loses_its_controls() {
        let value =
            serde_json::json!({"a": "\x1b[31m\u{7f}\u{9b}2J\u{202e}é€\t", "b": [1, "\u{85}"]});
        let mut out = b"prefix \xc2\x9b ".to_vec();
        let from = out.len();
        serde_json::to_writer(&mut out, &value).unwrap();
        out.push(b'\n');
        escape_json(&mut out, from);
        assert_eq!(out.pop(), Some(b'\n'), "whitespace between tokens stays");
        assert!(out.starts_with(b"prefix \xc2\x9b "), "bytes before `from` are left alone");
        let json = std::str::from_utf8(&out[from..]).unwrap();
        assert!(!json.chars().any(char::is_control), "{json:?}");
        assert!(!json.contains('\u{202e}'), "{json:?}");
        assert_eq!(serde_json::from_str::<serde_json::Value>(json).unwrap(), value);
        let plain = r#"{"a":"caf\u00e9 é"}"#.as_bytes();
        let mut out = plain.to_vec();
        escape_json(&mut out, 0);
        assert_eq!(out, plain, "nothing to escape, nothing changed");
    }
}
