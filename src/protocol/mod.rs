//! The event channel's wire format (SPEC §4): one JSON value per `\n`-terminated line, the
//! format of Node's child-process IPC. Bytes in, messages or counted errors out; never a
//! panic, never unbounded memory. No tokio here, so the worker side can reuse it.

mod codec;

pub use codec::{LineSplitter, Overflow, Piece};

use serde_json::Value;

/// Longest event line accepted; longer ones are dropped up to their newline.
pub const MAX_EVENT_LINE: usize = 1 << 20;

/// What a worker can say.
#[derive(Clone, Debug, PartialEq)]
pub enum Message {
    /// `"ready"` or `{"type":"ready"}`
    Ready,
    Heartbeat,
    Status(String),
    Log {
        level: String,
        msg: String,
    },
    Metric {
        name: String,
        value: f64,
    },
    /// Any other JSON value (including known types with unexpected fields).
    Custom,
    /// A Node-internal message (`{"cmd":"NODE_…"}`): ignored.
    Internal,
}

impl Message {
    /// Whether the headless `message` event repeats it (`ready`, `heartbeat` and Node
    /// internals are not).
    pub fn reported(&self) -> bool {
        match self {
            Message::Ready | Message::Heartbeat | Message::Internal => false,
            Message::Status(_) | Message::Log { .. } | Message::Metric { .. } | Message::Custom => {
                true
            }
        }
    }
}

/// A decoded line: what it means, and the value exactly as the worker sent it (what a
/// `message` event carries as `data`: extra fields, `"v"` and integer numbers included).
#[derive(Clone, Debug, PartialEq)]
pub struct Decoded {
    pub message: Message,
    pub value: Value,
}

/// Why a line was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtocolError {
    /// Not UTF-8 or not JSON.
    Malformed,
    /// Longer than [`MAX_EVENT_LINE`].
    Oversized,
}

impl ProtocolError {
    pub fn as_str(self) -> &'static str {
        match self {
            ProtocolError::Malformed => "malformed",
            ProtocolError::Oversized => "oversized",
        }
    }
}

/// Decodes one line (without its `\n`).
pub fn decode(line: &[u8]) -> Result<Decoded, ProtocolError> {
    // serde_json rejects invalid UTF-8 and keeps its recursion limit, so a deeply nested
    // value is an error, not a stack overflow.
    let value: Value = serde_json::from_slice(line).map_err(|_| ProtocolError::Malformed)?;
    Ok(Decoded { message: classify(&value), value })
}

fn classify(value: &Value) -> Message {
    match value {
        Value::String(s) if s == "ready" => return Message::Ready,
        Value::Object(map) => {
            if map.get("cmd").and_then(Value::as_str).is_some_and(|c| c.starts_with("NODE_")) {
                return Message::Internal;
            }
            let text = |k: &str| map.get(k).and_then(Value::as_str).map(str::to_owned);
            match map.get("type").and_then(Value::as_str) {
                Some("ready") => return Message::Ready,
                Some("heartbeat") => return Message::Heartbeat,
                Some("status") => {
                    if let Some(text) = text("text") {
                        return Message::Status(text);
                    }
                }
                Some("log") => {
                    if let (Some(level), Some(msg)) = (text("level"), text("msg")) {
                        return Message::Log { level, msg };
                    }
                }
                Some("metric") => {
                    let number = map.get("value").and_then(Value::as_f64);
                    if let (Some(name), Some(value)) = (text("name"), number) {
                        return Message::Metric { name, value };
                    }
                }
                _ => {}
            }
        }
        _ => {}
    }
    Message::Custom
}

/// The one message the primary sends (just before a graceful stop's signal).
pub const SHUTDOWN_LINE: &[u8] = b"{\"type\":\"shutdown\"}\n";

#[cfg(test)]
mod tests;
