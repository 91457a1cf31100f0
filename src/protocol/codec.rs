//! Splitting a byte stream into lines with a hard cap on line length, so a worker that
//! never writes a newline cannot make the primary grow.

/// What to do with a line longer than the cap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overflow {
    /// Cut it into pieces of at most the cap (output lines: nothing is lost).
    Split,
    /// Drop it up to its newline and report it once (event lines: half a JSON is useless).
    Discard,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    Line(&'a [u8]),
    /// A line over the cap was dropped (only with [`Overflow::Discard`]).
    Oversized,
}

/// Incremental line splitter; holds at most `max` bytes of an unfinished line.
#[derive(Debug)]
pub struct LineSplitter {
    buf: Vec<u8>,
    max: usize,
    overflow: Overflow,
    discarding: bool,
}

/// A buffer grown for one long line is given back above this size.
const KEEP_CAPACITY: usize = 64 * 1024;

impl LineSplitter {
    pub fn new(max: usize, overflow: Overflow) -> LineSplitter {
        LineSplitter { buf: Vec::new(), max: max.max(1), overflow, discarding: false }
    }

    /// Feeds bytes; `emit` gets every complete line (without its `\n`).
    pub fn push(&mut self, mut data: &[u8], emit: &mut impl FnMut(Piece<'_>)) {
        while let Some(i) = memchr::memchr(b'\n', data) {
            self.end_line(&data[..i], emit);
            data = &data[i + 1..];
        }
        if !data.is_empty() {
            self.partial(data, emit);
        }
    }

    /// Forgets an unfinished line held from earlier (its bytes were dropped unread).
    pub fn discard_pending(&mut self) {
        self.reset();
    }

    /// End of stream: an unfinished last line still counts.
    pub fn finish(&mut self, emit: &mut impl FnMut(Piece<'_>)) {
        if !self.discarding && !self.buf.is_empty() {
            emit(Piece::Line(&self.buf));
        }
        self.reset();
    }

    /// Bytes of an unfinished line currently held.
    #[cfg(test)]
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    fn end_line(&mut self, tail: &[u8], emit: &mut impl FnMut(Piece<'_>)) {
        if self.discarding {
            self.discarding = false; // the newline that ends an oversized line
            return;
        }
        if self.buf.is_empty() && tail.len() <= self.max {
            emit(Piece::Line(tail));
            return;
        }
        self.partial(tail, emit);
        if !self.discarding {
            emit(Piece::Line(&self.buf));
        }
        self.reset();
    }

    fn partial(&mut self, mut data: &[u8], emit: &mut impl FnMut(Piece<'_>)) {
        if self.discarding {
            return;
        }
        loop {
            let room = self.max - self.buf.len();
            if data.len() <= room {
                self.buf.extend_from_slice(data);
                return;
            }
            match self.overflow {
                Overflow::Split => {
                    self.buf.extend_from_slice(&data[..room]);
                    let cut = cut_point(&self.buf);
                    emit(Piece::Line(&self.buf[..cut]));
                    // What follows the cut (an escape sequence begun, a few bytes) starts
                    // the next piece.
                    self.buf.drain(..cut);
                    data = &data[room..];
                }
                Overflow::Discard => {
                    self.reset();
                    self.discarding = true;
                    emit(Piece::Oversized);
                    return;
                }
            }
        }
    }

    fn reset(&mut self) {
        self.buf.clear();
        self.discarding = false;
        if self.buf.capacity() > KEEP_CAPACITY {
            self.buf.shrink_to(KEEP_CAPACITY);
        }
    }
}

/// How far back from its end a cut looks for an escape sequence begun and not ended.
const CUT_LOOKBACK: usize = 64;

/// Where a piece cut at the cap may end: before an escape sequence that began in its last
/// bytes and has not ended, so a colour code is never cut in two (each half would show as
/// text, and neither would be stripped). A piece that is one long sequence is cut anyway.
fn cut_point(piece: &[u8]) -> usize {
    let from = piece.len().saturating_sub(CUT_LOOKBACK);
    let Some(esc) = memchr::memrchr(0x1b, &piece[from..]).map(|i| from + i) else {
        return piece.len();
    };
    let rest = &piece[esc + 1..];
    let ended = match rest.split_first() {
        None => false,
        // CSI: parameters, then a final byte from `@` to `~`.
        Some((b'[', params)) => params.iter().any(|b| (0x40..=0x7e).contains(b)),
        // OSC, DCS and the like: a BEL or ST ends them.
        Some((b']' | b'P' | b'_' | b'^' | b'X', body)) => {
            body.contains(&0x07) || body.windows(2).any(|w| w == [0x1b, b'\\'])
        }
        // A two-byte escape.
        Some(_) => true,
    };
    if ended || esc == 0 { piece.len() } else { esc }
}
