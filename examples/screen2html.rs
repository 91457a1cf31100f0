//! Turns a terminal capture (`tmux capture-pane -p -e`: text with SGR escapes) into an HTML
//! page that looks like the terminal did, for `scripts/screenshots` to photograph with
//! headless Chromium.
//!
//! The capture goes through the `vt100` parser, the same terminal model the pty tests read,
//! and every run of identically styled cells becomes one `<span>`. WHY not `aha` (a stock
//! ANSI→HTML filter): it renders reverse video combined with 256 colours wrongly (the
//! dashboard's selected row came out lime), and one span per cell leaves gaps in the
//! box-drawing lines.
//!
//! Usage: `screen2html ROWS COLS < capture.ansi > screen.html`

use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::num::NonZeroU16;
use std::process::ExitCode;

/// The page's colours when a program leaves them at the terminal's default: a dark theme.
const DEFAULT_FG: Rgb = Rgb(0xd0, 0xd0, 0xd0);
const DEFAULT_BG: Rgb = Rgb(0x1c, 0x1c, 0x1c);

#[derive(Clone, Copy, PartialEq, Eq)]
struct Rgb(u8, u8, u8);

impl Rgb {
    fn css(self) -> String {
        format!("#{:02x}{:02x}{:02x}", self.0, self.1, self.2)
    }
}

/// The 256-colour palette: xterm's cube and greys, and for the 16 system colours (which
/// every terminal theme sets itself) a dark theme's (VS Code's): xterm's own blue, #0000ee,
/// is all but unreadable on a dark background.
fn palette(index: u8) -> Rgb {
    const SYSTEM: [Rgb; 16] = [
        Rgb(0x00, 0x00, 0x00),
        Rgb(0xcd, 0x31, 0x31),
        Rgb(0x0d, 0xbc, 0x79),
        Rgb(0xe5, 0xe5, 0x10),
        Rgb(0x24, 0x72, 0xc8),
        Rgb(0xbc, 0x3f, 0xbc),
        Rgb(0x11, 0xa8, 0xcd),
        Rgb(0xe5, 0xe5, 0xe5),
        Rgb(0x76, 0x76, 0x76),
        Rgb(0xf1, 0x4c, 0x4c),
        Rgb(0x23, 0xd1, 0x8b),
        Rgb(0xf5, 0xf5, 0x43),
        Rgb(0x3b, 0x8e, 0xea),
        Rgb(0xd6, 0x70, 0xd6),
        Rgb(0x29, 0xb8, 0xdb),
        Rgb(0xff, 0xff, 0xff),
    ];
    const LEVELS: [u8; 6] = [0x00, 0x5f, 0x87, 0xaf, 0xd7, 0xff];
    match index {
        0..=15 => SYSTEM[usize::from(index)],
        16..=231 => {
            let i = index - 16;
            let level = |n: u8| LEVELS[usize::from(n)];
            Rgb(level(i / 36), level((i / 6) % 6), level(i % 6))
        }
        232..=255 => {
            let grey = 8 + 10 * (index - 232);
            Rgb(grey, grey, grey)
        }
    }
}

fn resolve(color: vt100::Color, default: Rgb) -> Rgb {
    match color {
        vt100::Color::Default => default,
        vt100::Color::Idx(i) => palette(i),
        vt100::Color::Rgb(r, g, b) => Rgb(r, g, b),
    }
}

/// How one cell looks, with reverse video already applied.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Look {
    fg: Rgb,
    bg: Rgb,
    bold: bool,
    italic: bool,
    underline: bool,
}

impl Look {
    fn of(cell: &vt100::Cell) -> Look {
        let mut fg = resolve(cell.fgcolor(), DEFAULT_FG);
        let mut bg = resolve(cell.bgcolor(), DEFAULT_BG);
        if cell.inverse() {
            std::mem::swap(&mut fg, &mut bg);
        }
        Look { fg, bg, bold: cell.bold(), italic: cell.italic(), underline: cell.underline() }
    }

    fn css(self) -> String {
        let mut css = format!("color:{};background:{}", self.fg.css(), self.bg.css());
        if self.bold {
            css.push_str(";font-weight:bold");
        }
        if self.italic {
            css.push_str(";font-style:italic");
        }
        if self.underline {
            css.push_str(";text-decoration:underline");
        }
        css
    }
}

fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
}

/// Ends the current run of identically styled cells as one span.
fn flush(run: &mut Option<(Look, String)>, html: &mut String) {
    if let Some((look, text)) = run.take() {
        let _ = write!(html, "<span style=\"{}\">{text}</span>", look.css());
    }
}

/// One line of spans per screen row.
fn body(screen: &vt100::Screen) -> String {
    let (rows, cols) = screen.size();
    let mut html = String::new();
    for row in 0..rows.get() {
        let mut run: Option<(Look, String)> = None;
        for col in 0..cols.get() {
            let Some(cell) = screen.cell(row, col) else { continue };
            if cell.is_wide_continuation() {
                continue; // drawn by the wide character before it
            }
            let look = Look::of(cell);
            if run.as_ref().is_some_and(|(l, _)| *l != look) {
                flush(&mut run, &mut html);
            }
            let text = &mut run.get_or_insert_with(|| (look, String::new())).1;
            let contents = cell.contents();
            if contents.is_empty() {
                text.push(' ');
            } else {
                escape_into(text, contents);
            }
        }
        flush(&mut run, &mut html);
        html.push('\n');
    }
    html
}

fn page(screen: &vt100::Screen) -> String {
    // WHY `line-height: normal`: DejaVu Sans Mono's own line height makes the box-drawing
    // glyphs touch, so vertical borders stay continuous; a fixed one leaves gaps.
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><style>\n\
         html, body {{ margin: 0; background: {bg}; }}\n\
         pre {{ margin: 0; padding: 12px; font-family: 'DejaVu Sans Mono', monospace; \
         font-size: 15px; line-height: normal; color: {fg}; }}\n\
         </style></head><body><pre>{body}</pre></body></html>\n",
        bg = DEFAULT_BG.css(),
        fg = DEFAULT_FG.css(),
        body = body(screen),
    )
}

fn parse_size(arg: Option<String>, what: &str) -> Result<NonZeroU16, String> {
    let text = arg.ok_or_else(|| format!("missing {what}"))?;
    text.parse().map_err(|_| format!("{what} '{text}' is not a number from 1 to 65535"))
}

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let rows = parse_size(args.next(), "ROWS")?;
    let cols = parse_size(args.next(), "COLS")?;
    let mut capture = Vec::new();
    io::stdin().read_to_end(&mut capture).map_err(|e| format!("reading stdin: {e}"))?;
    // capture-pane ends rows with a bare LF: as a terminal's output that would only move
    // down, so add the carriage return; the last row's LF would scroll the screen.
    let trimmed = capture.strip_suffix(b"\n").unwrap_or(&capture);
    let mut bytes = Vec::with_capacity(trimmed.len() + usize::from(rows.get()));
    for &b in trimmed {
        if b == b'\n' {
            bytes.push(b'\r');
        }
        bytes.push(b);
    }
    let mut parser = vt100::Parser::new(rows, cols, 0);
    parser.process(&bytes);
    io::stdout()
        .write_all(page(parser.screen()).as_bytes())
        .map_err(|e| format!("writing stdout: {e}"))
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("screen2html: {message}\nusage: screen2html ROWS COLS < capture > page.html");
            ExitCode::from(2)
        }
    }
}
