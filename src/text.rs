//! Worker text made safe to show, for the headless lines and the dashboard alike: control
//! characters (ESC, BEL, CR, BS, the C1 range) and bidi overrides become visible escapes,
//! so no worker can move the cursor, retitle the terminal or reorder what people read.

use std::fmt::Write as _;

/// Whether a character must be shown escaped rather than written.
fn unsafe_char(c: char) -> bool {
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
            let before = out.len();
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
            column += out.len() - before; // the escape is ASCII: bytes are columns
        } else {
            out.push(c);
            column += 1;
        }
    }
    out
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
}
