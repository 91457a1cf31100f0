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
                    emit(Piece::Line(&self.buf));
                    self.buf.clear();
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
