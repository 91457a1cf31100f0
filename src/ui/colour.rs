//! A worker's line as styled spans (docs/development.md#colours): its SGR sequences
//! (16, 256 and 24-bit colours, bold, dim, italic, underline, reverse, strikethrough,
//! reset) become ratatui styles; every other sequence is dropped, and lone controls and bidi
//! overrides are shown escaped as [`crate::text::escape`] shows them. The spans hold only
//! printable text, so nothing a worker writes reaches the terminal raw, and a style starts
//! from the line's own (stderr's red) each line: it cannot leak into the next line or into
//! another span of the screen.

use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Span;
use vte::{Params, Parser, Perform};

/// What SGR sequences have set so far on a line: applied over the line's base style, so a
/// reset (`0`, `39`, `49`) goes back to that base rather than to the terminal's default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sgr {
    pub fg: Option<Color>,
    pub bg: Option<Color>,
    pub on: Modifier,
}

impl Sgr {
    /// The style of text under this SGR state, over `base`. Without colours (`NO_COLOR`)
    /// only the modifiers apply.
    pub fn over(self, base: Style, color: bool) -> Style {
        let mut style = base.add_modifier(self.on);
        if color {
            if let Some(fg) = self.fg {
                style = style.fg(fg);
            }
            if let Some(bg) = self.bg {
                style = style.bg(bg);
            }
        }
        style
    }

    /// Applies one SGR sequence's parameters, left to right. Unknown ones (blink, hidden,
    /// fonts, underline colour) change nothing; a colour out of range is ignored.
    pub fn apply(&mut self, params: &Params) {
        let mut params = params.iter();
        while let Some(param) = params.next() {
            let Some(&code) = param.first() else { continue };
            match code {
                0 => *self = Sgr::default(),
                1 => self.on.insert(Modifier::BOLD),
                2 => self.on.insert(Modifier::DIM),
                3 => self.on.insert(Modifier::ITALIC),
                // `4:0` is "no underline" in the colon form of underline styles.
                4 if param.get(1) == Some(&0) => self.on.remove(Modifier::UNDERLINED),
                4 | 21 => self.on.insert(Modifier::UNDERLINED),
                7 => self.on.insert(Modifier::REVERSED),
                9 => self.on.insert(Modifier::CROSSED_OUT),
                22 => self.on.remove(Modifier::BOLD | Modifier::DIM),
                23 => self.on.remove(Modifier::ITALIC),
                24 => self.on.remove(Modifier::UNDERLINED),
                27 => self.on.remove(Modifier::REVERSED),
                29 => self.on.remove(Modifier::CROSSED_OUT),
                30..=37 => self.fg = Some(ansi(code - 30)),
                38 => {
                    if let Some(c) = extended(param, &mut params) {
                        self.fg = Some(c);
                    }
                }
                39 => self.fg = None,
                40..=47 => self.bg = Some(ansi(code - 40)),
                48 => {
                    if let Some(c) = extended(param, &mut params) {
                        self.bg = Some(c);
                    }
                }
                49 => self.bg = None,
                // The underline colour: read, so its numbers are not taken for codes.
                58 => {
                    let _ = extended(param, &mut params);
                }
                90..=97 => self.fg = Some(ansi(code - 90 + 8)),
                100..=107 => self.bg = Some(ansi(code - 100 + 8)),
                _ => {}
            }
        }
    }
}

/// The 16 colours by their SGR number (0–7, bright 8–15), as ratatui names them.
fn ansi(n: u16) -> Color {
    const COLORS: [Color; 16] = [
        Color::Black,
        Color::Red,
        Color::Green,
        Color::Yellow,
        Color::Blue,
        Color::Magenta,
        Color::Cyan,
        Color::Gray,
        Color::DarkGray,
        Color::LightRed,
        Color::LightGreen,
        Color::LightYellow,
        Color::LightBlue,
        Color::LightMagenta,
        Color::LightCyan,
        Color::White,
    ];
    COLORS[usize::from(n) % 16]
}

/// `38;5;N`, `38;2;R;G;B` (the next parameters) or `38:5:N`, `38:2:R:G:B`,
/// `38:2:CS:R:G:B` (sub-parameters).
fn extended<'a>(param: &[u16], rest: &mut impl Iterator<Item = &'a [u16]>) -> Option<Color> {
    let byte = |v: Option<&u16>| v.and_then(|&v| u8::try_from(v).ok());
    if param.len() > 1 {
        return match param[1] {
            5 => byte(param.get(2)).map(Color::Indexed),
            2 => {
                // With a colour-space id the three values are the last three.
                let rgb = if param.len() >= 6 { &param[3..6] } else { param.get(2..5)? };
                Some(Color::Rgb(byte(rgb.first())?, byte(rgb.get(1))?, byte(rgb.get(2))?))
            }
            _ => None,
        };
    }
    let mut next = || rest.next().and_then(|p| p.first());
    match next() {
        Some(5) => byte(next()).map(Color::Indexed),
        Some(2) => {
            let (r, g, b) = (byte(next()), byte(next()), byte(next()));
            Some(Color::Rgb(r?, g?, b?))
        }
        _ => None,
    }
}

/// Builds the spans of one line: runs of plain text are borrowed from the line as they are
/// (the usual case, no copy); vte reads the sequences, and what needs escaping is copied.
struct Builder<'a> {
    base: Style,
    color: bool,
    sgr: Sgr,
    /// Copied text not yet in a span: escaped controls, what vte printed.
    text: String,
    /// Characters so far (tabs expand to the next multiple of 4 of it).
    column: usize,
    done: Vec<Span<'a>>,
    /// The sequence being read has ended (vte is back in its ground state).
    ended: bool,
}

impl<'a> Builder<'a> {
    fn style(&self) -> Style {
        self.sgr.over(self.base, self.color)
    }

    fn cut(&mut self) {
        if !self.text.is_empty() {
            let text = std::mem::take(&mut self.text);
            self.done.push(Span::styled(text, self.style()));
        }
    }

    /// Text between sequences: borrowed when it is printable ASCII, else character by
    /// character.
    fn plain(&mut self, run: &'a str) {
        if run.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            self.cut();
            self.column += run.len();
            self.done.push(Span::styled(run, self.style()));
        } else {
            run.chars().for_each(|c| self.char(c));
        }
    }

    fn char(&mut self, c: char) {
        if c == '\t' {
            // Tabs to the next multiple of 4, as `for_screen` expands them.
            let pad = 4 - self.column % 4;
            self.text.extend(std::iter::repeat_n(' ', pad));
            self.column += pad;
        } else if crate::text::unsafe_char(c) {
            self.column += crate::text::escape_char(&mut self.text, c);
        } else {
            self.text.push(c);
            self.column += 1;
        }
    }

    /// Reads the sequence at `bytes[0]` (an ESC) with a fresh parser, byte by byte until it
    /// ends; returns how many bytes it took. WHY byte by byte: vte says what it read, not
    /// where that ended, and the text after is borrowed, not parsed.
    fn sequence(&mut self, bytes: &[u8]) -> usize {
        let mut parser = Parser::new();
        self.ended = false;
        let mut read = 0;
        while read < bytes.len() {
            parser.advance(self, &bytes[read..=read]);
            read += 1;
            if self.ended {
                if bytes[read - 1] != 0x1b {
                    break;
                }
                // An OSC or DCS ended by ESC: the ESC starts the next one (`ESC \`).
                self.ended = false;
            }
        }
        read
    }
}

impl Perform for Builder<'_> {
    fn print(&mut self, c: char) {
        // A sequence that ended without a dispatch (too many parameters), then text.
        self.char(c);
        self.ended = true;
    }

    fn execute(&mut self, byte: u8) {
        // A control inside a sequence is shown (and the sequence goes on), as on its own;
        // CAN and SUB cancel the sequence.
        self.char(char::from(byte));
        self.ended |= matches!(byte, 0x18 | 0x1a);
    }

    fn csi_dispatch(&mut self, params: &Params, intermediates: &[u8], ignore: bool, action: char) {
        if crate::ansi::is_sgr(intermediates, ignore, action) {
            let mut after = self.sgr;
            after.apply(params);
            if after != self.sgr {
                self.cut();
                self.sgr = after;
            }
        }
        self.ended = true;
    }

    fn esc_dispatch(&mut self, _: &[u8], _: bool, _: u8) {
        self.ended = true;
    }

    fn osc_dispatch(&mut self, _: &[&[u8]], _: bool) {
        self.ended = true;
    }

    fn unhook(&mut self) {
        self.ended = true;
    }
}

/// `text` as spans over `base` (see the module's doc), appended to `out`. A line without
/// ESC is one span, as before colours.
pub fn spans<'a>(text: &'a str, base: Style, color: bool, out: &mut Vec<Span<'a>>) {
    if !crate::ansi::has_escape(text.as_bytes()) {
        out.push(Span::styled(crate::text::escape(text, true), base));
        return;
    }
    let mut b = Builder {
        base,
        color,
        sgr: Sgr::default(),
        text: String::new(),
        column: 0,
        done: std::mem::take(out),
        ended: false,
    };
    let bytes = text.as_bytes();
    let mut at = 0;
    while at < bytes.len() {
        let esc = memchr::memchr(0x1b, &bytes[at..]).map_or(bytes.len(), |i| at + i);
        // Sequences end on ASCII bytes or after whole characters: `at` is a boundary.
        match text.get(at..esc) {
            Some("") => {}
            Some(run) => b.plain(run),
            None => String::from_utf8_lossy(&bytes[at..esc]).chars().for_each(|c| b.char(c)),
        }
        if esc == bytes.len() {
            break;
        }
        at = esc + b.sequence(&bytes[esc..]);
    }
    b.cut();
    *out = b.done;
}

#[cfg(test)]
mod tests;
