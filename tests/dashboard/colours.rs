//! A worker's colours in the dashboard (docs/development.md#colours), on the real binary in a
//! pseudo-terminal, read back from the terminal's own cells: SGR shown as styles and never as
//! text, every other sequence without effect on the screen or the title, a style ending with
//! its line, the filter reading the text without escapes; and `c` handing the mouse to the
//! terminal for copying and taking it back (docs/development.md#copying-text).

use std::ffi::OsStr;

use vt100::{Color, MouseProtocolMode};

use super::{rfind, sh, wait_running, web};
use crate::util::pty::{Term, Tty};
use crate::util::{DEADLINE, wait_until};

/// corral with colours on: the harness sets `NO_COLOR`, which the dashboard honours.
fn coloured(args: &[String]) -> Tty {
    Tty::start_with_env(Term::default(), args, &[("NO_COLOR", OsStr::new(""))])
}

/// The cell where `word` starts on the screen (first occurrence), as vt100 keeps it.
fn cell_of(tty: &Tty, word: &str) -> Option<vt100::Cell> {
    cell_in(tty, word, 0)
}

/// The cell `offset` characters into the first occurrence of `word`.
fn cell_in(tty: &Tty, word: &str, offset: usize) -> Option<vt100::Cell> {
    tty.with_screen(|s| {
        let contents = s.contents();
        let (row, line) = contents.lines().enumerate().find(|(_, l)| l.contains(word))?;
        let col = line[..line.find(word)?].chars().count() + offset;
        s.cell(u16::try_from(row).ok()?, u16::try_from(col).ok()?).cloned()
    })
}

const COLOURED: &str = concat!(
    r"printf '\033[32mgreen\033[0m plain\n'; ",
    r"printf '\033[38;5;208morange\033[0m \033[38;2;10;20;30mrgb \033[1;4munclosed\n'; ",
    r"printf 'next line\n'; ",
    r"printf 'before \033]0;PWNED\007 between \033[2J\033[5;1H\033[Kafter \007bell\n'; ",
    r"printf 'spl\033[31mit\033[0mword\n'; ",
    "exec sleep 1000"
);

#[test]
fn a_workers_colours_are_drawn_as_colours_and_nothing_else_acts() {
    let tty = coloured(&web(1, &sh(COLOURED, &[])));
    wait_running(&tty, &["web.1"]);
    let screen = tty.wait_screen("the coloured lines", DEADLINE, |s| {
        s.contains("| green plain") && s.contains("| splitword") && s.contains("after")
    });
    assert!(!screen.contains("[32m") && !screen.contains("\\u{1b}"), "escapes as text\n{screen}");
    assert!(screen.contains("| orange rgb unclosed"), "{screen}");
    assert!(screen.contains(r"| before  between after \u{7}bell"), "{screen}");
    let fg = |word| cell_of(&tty, word).map(|c| c.fgcolor());
    assert_eq!(fg("green"), Some(Color::Idx(2)), "16 colours\n{screen}");
    assert_eq!(fg("plain"), Some(Color::Default), "after the reset");
    assert_eq!(fg("orange"), Some(Color::Idx(208)), "256 colours");
    assert_eq!(fg("rgb"), Some(Color::Rgb(10, 20, 30)), "24-bit colour");
    let unclosed = cell_of(&tty, "unclosed").expect("the unclosed word");
    assert!(unclosed.bold() && unclosed.underline(), "bold and underline");
    // The line left its style open: the next line (and the rest of the row) has none.
    let next = cell_of(&tty, "next line").expect("the next line");
    assert!(next.fgcolor() == Color::Default && !next.bold() && !next.underline());
    let row_end = tty.with_screen(|s| {
        let contents = s.contents();
        let row = contents.lines().position(|l| l.contains("unclosed")).expect("row");
        s.cell(row as u16, s.size().1.get() - 1).cloned()
    });
    assert!(row_end.is_some_and(|c| !c.underline() && c.fgcolor() == Color::Default));
    // The clear-screen and the cursor move did nothing: the table is still there, above.
    assert!(super::cell(&screen, "web.1", "STATE").is_some(), "{screen}");
    let titles = tty.titles();
    assert!(!titles.iter().any(|t| t.windows(5).any(|w| w == b"PWNED")), "{titles:?}");
    assert!(rfind(&tty.bytes(), b"PWNED").is_none(), "the OSC reached the terminal");
    assert!(rfind(&tty.bytes(), b"\x07").is_none(), "the bell reached the terminal");
}

#[test]
fn the_filter_finds_a_word_split_by_colour_codes() {
    let mut tty = coloured(&web(1, &sh(COLOURED, &[])));
    wait_running(&tty, &["web.1"]);
    tty.wait_screen("the lines", DEADLINE, |s| s.contains("| splitword"));
    tty.send(b"/splitword\r");
    let screen = tty.wait_screen("only the matching line", DEADLINE, |s| {
        s.contains("filter \"splitword\"") && s.contains("| splitword") && !s.contains("green")
    });
    let colour = |at| cell_in(&tty, "| splitword", at).map(|c| c.fgcolor());
    assert_eq!(
        (colour(2), colour(5), colour(7)),
        (Some(Color::Default), Some(Color::Idx(1)), Some(Color::Default)),
        "s, i, w\n{screen}"
    );
    // The escape's own text is not matched.
    tty.send(b"/31m\r");
    tty.wait_screen("no line matches", DEADLINE, |s| s.contains("(no line matches)"));
}

#[test]
fn c_releases_the_mouse_for_copying_and_takes_it_back() {
    let mut tty = Tty::start(&web(1, &sh("echo hello; exec sleep 1000", &[])));
    wait_running(&tty, &["web.1"]);
    let mode = |tty: &Tty| tty.with_screen(vt100::Screen::mouse_protocol_mode);
    assert_ne!(mode(&tty), MouseProtocolMode::None, "the dashboard takes the mouse");
    tty.send(b"c");
    tty.wait_screen("the footer saying so", DEADLINE, |s| {
        s.contains("mouse released: select text to copy it · c takes the mouse back")
    });
    let off = wait_until(DEADLINE, || mode(&tty) == MouseProtocolMode::None);
    assert!(off, "mouse reporting still on\n{}", tty.dump());
    tty.send(b"c");
    tty.wait_screen("the footer back to the keys", DEADLINE, |s| {
        !s.contains("mouse released") && s.contains("c copy")
    });
    let on = wait_until(DEADLINE, || mode(&tty) != MouseProtocolMode::None);
    assert!(on, "mouse reporting still off\n{}", tty.dump());
    tty.send(b"?");
    tty.wait_screen("help lists c", DEADLINE, |s| s.contains("release the mouse to select text"));
}
