//! The event channel's wire format (docs/workers.md): one JSON value per `\n`-terminated line, the
//! format of Node's child-process IPC. Bytes in, messages or counted errors out; never a
//! panic, never unbounded memory. No tokio here, so the worker side can reuse it.

mod codec;
mod encode;
pub mod node_cluster;
mod validate;

pub use codec::{LineSplitter, Overflow, Piece};
pub use encode::{EncodeError, encode};
pub use validate::MAX_NESTING;

use std::borrow::Cow;

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

/// Why a line was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtocolError {
    /// Not UTF-8, not JSON, nested deeper than [`MAX_NESTING`], or with a number no `f64`
    /// holds.
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

/// The fields corral reads. Everything else is skipped without being built, and strings
/// without escapes are borrowed: most lines cost no allocation at all.
#[derive(serde::Deserialize)]
struct Fields<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    cmd: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    level: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    msg: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(default)]
    value: Option<f64>,
}

impl Fields<'_> {
    fn classify(self) -> Message {
        if self.cmd.as_deref().is_some_and(|c| c.starts_with("NODE_")) {
            return Message::Internal;
        }
        match (self.kind.as_deref(), self.text, self.level, self.msg, self.name, self.value) {
            (Some("ready"), ..) => Message::Ready,
            (Some("heartbeat"), ..) => Message::Heartbeat,
            (Some("status"), Some(text), ..) => Message::Status(text.into_owned()),
            (Some("log"), _, Some(level), Some(msg), ..) => {
                Message::Log { level: level.into_owned(), msg: msg.into_owned() }
            }
            (Some("metric"), _, _, _, Some(name), Some(value)) => {
                Message::Metric { name: name.into_owned(), value }
            }
            _ => Message::Custom,
        }
    }
}

/// Decodes one line (without its `\n`). A line that decodes is valid JSON, UTF-8 throughout,
/// so the line itself is what a `message` event carries as `data`: exactly what the worker
/// sent, and readable by any JSON parser.
pub fn decode(line: &[u8]) -> Result<Message, ProtocolError> {
    // serde_json checks the grammar and the fields corral reads; the rest of the line (what
    // it skips) is checked here.
    if !validate::well_formed(line) {
        return Err(ProtocolError::Malformed);
    }
    if let Ok(fields) = serde_json::from_slice::<Fields<'_>>(line) {
        return Ok(fields.classify());
    }
    // Not an object of the usual shape (a bare "ready", a number, a field of another
    // type): the general path.
    let value: Value = serde_json::from_slice(line).map_err(|_| ProtocolError::Malformed)?;
    Ok(classify(&value))
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
