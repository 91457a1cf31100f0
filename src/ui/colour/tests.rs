use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Span;

use super::*;

fn parts(text: &str, base: Style, color: bool) -> Vec<(String, Style)> {
    let mut out = Vec::new();
    spans(text, base, color, &mut out);
    out.into_iter().map(|s: Span<'_>| (s.content.into_owned(), s.style)).collect()
}

fn shown(text: &str) -> String {
    parts(text, Style::new(), true).into_iter().map(|(t, _)| t).collect()
}

fn sgr(seq: &str) -> Sgr {
    let text = format!("{seq}x");
    let mut out = Vec::new();
    spans(&text, Style::new(), true, &mut out);
    let style = out.last().map(|s| s.style).unwrap_or_default();
    Sgr { fg: style.fg, bg: style.bg, on: style.add_modifier }
}

#[test]
fn the_16_colours_and_their_bright_forms() {
    assert_eq!(sgr("\x1b[31m").fg, Some(Color::Red));
    assert_eq!(sgr("\x1b[37m").fg, Some(Color::Gray));
    assert_eq!(sgr("\x1b[90m").fg, Some(Color::DarkGray));
    assert_eq!(sgr("\x1b[97m").fg, Some(Color::White));
    assert_eq!(sgr("\x1b[44m").bg, Some(Color::Blue));
    assert_eq!(sgr("\x1b[101m").bg, Some(Color::LightRed));
}

#[test]
fn the_256_and_24_bit_colours_in_both_notations() {
    assert_eq!(sgr("\x1b[38;5;208m").fg, Some(Color::Indexed(208)));
    assert_eq!(sgr("\x1b[38:5:208m").fg, Some(Color::Indexed(208)));
    assert_eq!(sgr("\x1b[38;2;1;2;3m").fg, Some(Color::Rgb(1, 2, 3)));
    assert_eq!(sgr("\x1b[38:2:1:2:3m").fg, Some(Color::Rgb(1, 2, 3)));
    assert_eq!(sgr("\x1b[38:2::1:2:3m").fg, Some(Color::Rgb(1, 2, 3)));
    assert_eq!(
        sgr("\x1b[48;2;255;0;10;1m"),
        Sgr { fg: None, bg: Some(Color::Rgb(255, 0, 10)), on: Modifier::BOLD }
    );
    // Out of range or cut short: no colour, and the numbers are not read as codes.
    assert_eq!(sgr("\x1b[38;5;300m"), Sgr::default());
    assert_eq!(sgr("\x1b[38;2;1;2m"), Sgr::default());
    assert_eq!(sgr("\x1b[38;7;1m"), Sgr { on: Modifier::BOLD, ..Sgr::default() });
    assert_eq!(sgr("\x1b[58;5;1;4m").on, Modifier::UNDERLINED, "underline colour skipped");
}

#[test]
fn modifiers_on_off_and_reset() {
    let all = sgr("\x1b[1;2;3;4;7;9m").on;
    let want = Modifier::BOLD
        | Modifier::DIM
        | Modifier::ITALIC
        | Modifier::UNDERLINED
        | Modifier::REVERSED
        | Modifier::CROSSED_OUT;
    assert_eq!(all, want);
    assert_eq!(sgr("\x1b[1;2;3;4;7;9m\x1b[22;23;24;27;29m").on, Modifier::empty());
    assert_eq!(sgr("\x1b[4m\x1b[4:0m").on, Modifier::empty());
    assert_eq!(sgr("\x1b[1;31;42m\x1b[0m"), Sgr::default());
    assert_eq!(sgr("\x1b[1;31;42m\x1b[m"), Sgr::default(), "an empty SGR resets");
    assert_eq!(sgr("\x1b[31;42m\x1b[39;49m"), Sgr::default());
    assert_eq!(sgr("\x1b[5;6;8m"), Sgr::default(), "no blinking, nothing hidden");
}

#[test]
fn styles_split_the_line_and_reset_to_the_lines_own_style() {
    let red = Style::new().fg(Color::LightRed);
    let got = parts("a\x1b[32mb\x1b[1mc\x1b[0md", red, true);
    assert_eq!(
        got,
        vec![
            ("a".into(), red),
            ("b".into(), red.fg(Color::Green)),
            ("c".into(), red.fg(Color::Green).add_modifier(Modifier::BOLD)),
            ("d".into(), red),
        ]
    );
    // Without colours only the modifiers are kept.
    let plain = parts("\x1b[1;31mx", Style::new(), false);
    assert_eq!(plain, vec![("x".into(), Style::new().add_modifier(Modifier::BOLD))]);
}

#[test]
fn other_sequences_are_dropped_and_controls_shown_escaped() {
    assert_eq!(shown("a\x1b[2Jb\x1b]0;PWNED\x07c\x1b[5;5Hd\x1bPq\x1b\\e\x1b[?1049hf"), "abcdef");
    assert_eq!(
        shown("\x1b[1mx\ty\x07\r\u{9b}1m\u{202e}\u{7f}"),
        "x   y\\u{7}\\u{d}\\u{9b}1m\\u{202e}\\u{7f}"
    );
    assert_eq!(shown("tab\tonly"), "tab only", "no ESC: the plain path, same widths");
    for (hostile, want) in [
        ("x\x1b[31", "x"),
        ("x\x1b]0;never ends", "x"),
        ("x\x1b", "x"),
        ("\x1b[3\x072mx", "\\u{7}x"),
        ("\u{fffd}\x1b[1m\u{fffd}", "\u{fffd}\u{fffd}"),
    ] {
        assert_eq!(shown(hostile), want, "{hostile:?}");
    }
    let huge = format!("a\x1b[{}mb", "31;".repeat(10_000));
    assert_eq!(shown(&huge), "ab");
    assert!(parts(&huge, Style::new(), true).iter().all(|(_, style)| *style == Style::new()));
    let many = "\x1b[1m\x1b[0m".repeat(10_000) + "z";
    assert_eq!(shown(&many), "z");
}

proptest::proptest! {
    #[test]
    fn spans_hold_only_printable_text(text in "[\\x1b\\[\\];0-9mHJ?:\\x07\\x9b\\ta-z\u{202e}\u{7f}]{0,200}") {
        let mut out = Vec::new();
        spans(&text, Style::new(), true, &mut out);
        for span in &out {
            assert!(!span.content.chars().any(|c| c.is_control() || crate::text::unsafe_char(c)), "{text:?} → {:?}", span.content);
            assert!(!span.content.is_empty() || text.is_empty());
        }
    }
}
