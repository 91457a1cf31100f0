//! Worker text made safe to draw: no escape sequence, carriage return or bidi override
//! from a worker ever reaches the terminal, and tabs become spaces so the screen model
//! and the terminal agree on widths.

use std::fmt::Write as _;

pub fn for_screen(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\t' => {
                let pad = 4 - out.chars().count() % 4;
                out.extend(std::iter::repeat_n(' ', pad));
            }
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_are_made_visible() {
        let s = for_screen("\x1b]0;PWNED\x07a\tb\rc\u{9b}1m\u{202e}x");
        assert!(!s.chars().any(char::is_control), "{s:?}");
        assert_eq!(s, "\\u{1b}]0;PWNED\\u{7}a    b\\u{d}c\\u{9b}1m\\u{202e}x");
    }
}
