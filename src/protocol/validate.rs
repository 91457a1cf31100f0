//! The checks `serde_json` does not make when it skips a field corral does not read: an event
//! line is passed on verbatim as `data`, so every byte of it must be what any JSON reader
//! accepts, not only the fields corral looked at.

/// Deepest nesting of arrays and objects accepted: far more than any event needs, and well
/// under `serde_json`'s own recursion limit, so both decoding paths agree on every line.
pub const MAX_NESTING: usize = 64;

/// A number without an exponent and shorter than this cannot overflow an `f64`
/// (`f64::MAX` has 309 integer digits), so it needs no parsing.
const SHORT_NUMBER: usize = 309;

/// Whether `line` is UTF-8, nests at most [`MAX_NESTING`] deep, has only finite numbers and
/// only escapes that name Unicode scalar values. It does not check the JSON grammar (serde
/// does that); on a line that is not JSON its answer is meaningless, never a panic.
pub fn well_formed(line: &[u8]) -> bool {
    // WHY: serde_json skips unknown strings byte by byte without UTF-8 validation, and skips
    // unknown values with its own heap stack instead of its recursion limit.
    if std::str::from_utf8(line).is_err() {
        return false;
    }
    let mut depth = 0usize;
    let mut i = 0;
    while let Some(&b) = line.get(i) {
        i = match b {
            b'"' => match string_end(line, i + 1) {
                Some(end) => end,
                None => return false,
            },
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return false;
                }
                i + 1
            }
            b']' | b'}' => {
                depth = depth.saturating_sub(1);
                i + 1
            }
            b'-' | b'0'..=b'9' => {
                let end = number_end(line, i);
                if !finite(&line[i..end]) {
                    return false;
                }
                end
            }
            _ => i + 1,
        };
    }
    true
}

/// The index after the closing quote of a string whose content starts at `i`; `None` when
/// it is unterminated or a `\u` escape is a lone surrogate (no reader can decode it).
fn string_end(line: &[u8], mut i: usize) -> Option<usize> {
    loop {
        i += memchr::memchr2(b'"', b'\\', line.get(i..)?)?;
        if line[i] == b'"' {
            return Some(i + 1);
        }
        if line.get(i + 1) != Some(&b'u') {
            i += 2;
            continue;
        }
        let unit = hex4(line, i + 2)?;
        i += 6;
        match unit {
            0xd800..=0xdbff => {
                if line.get(i..i + 2) != Some(b"\\u") {
                    return None;
                }
                if !(0xdc00..=0xdfff).contains(&hex4(line, i + 2)?) {
                    return None;
                }
                i += 6;
            }
            0xdc00..=0xdfff => return None,
            _ => {}
        }
    }
}

fn hex4(line: &[u8], i: usize) -> Option<u16> {
    let digits = std::str::from_utf8(line.get(i..i + 4)?).ok()?;
    u16::from_str_radix(digits, 16).ok()
}

fn number_end(line: &[u8], start: usize) -> usize {
    let len = line[start..]
        .iter()
        .position(|b| !matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
        .unwrap_or(line.len() - start);
    start + len
}

/// Whether a number token is an `f64` that is not infinite (`1e999` is not a number any
/// reader can hold; a metric with it is rejected, so is any other field).
fn finite(token: &[u8]) -> bool {
    if token.len() < SHORT_NUMBER && !token.iter().any(|b| matches!(b, b'e' | b'E')) {
        return true;
    }
    std::str::from_utf8(token).ok().and_then(|t| t.parse::<f64>().ok()).is_some_and(f64::is_finite)
}
