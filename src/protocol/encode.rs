//! The worker's side of the wire: one value as one line, refused when the primary would
//! drop it. The check is the primary's own [`decode`](super::decode), so the two sides
//! cannot disagree about what a line means.

use serde::Serialize;

use super::{Message, decode};

/// Why a value cannot be sent.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("not JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("NODE_ commands are reserved for Node (the primary ignores them)")]
    Reserved,
    #[error(
        "the primary would drop it: nested deeper than {} or longer than 1 MiB",
        super::MAX_NESTING
    )]
    Dropped,
}

/// Appends `value` to `out` as one `\n`-terminated line; on an error `out` is as it was.
pub fn encode(out: &mut Vec<u8>, value: &impl Serialize) -> Result<(), EncodeError> {
    let start = out.len();
    let result = encode_at(out, start, value);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

fn encode_at(out: &mut Vec<u8>, start: usize, value: &impl Serialize) -> Result<(), EncodeError> {
    serde_json::to_writer(&mut *out, value)?;
    let line = &mut out[start..];
    // Compact JSON escapes newlines inside strings, so a raw one can only be whitespace
    // (from a hand-written `RawValue`); a space keeps the value and the framing intact.
    for byte in line.iter_mut().filter(|b| **b == b'\n') {
        *byte = b' ';
    }
    if line.len() > super::MAX_EVENT_LINE {
        return Err(EncodeError::Dropped);
    }
    match decode(line) {
        Ok(Message::Internal) => return Err(EncodeError::Reserved),
        Ok(_) => {}
        Err(_) => return Err(EncodeError::Dropped),
    }
    out.push(b'\n');
    Ok(())
}
