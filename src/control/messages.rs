//! The control protocol, version 1 (docs/control.md): newline-delimited JSON. The server
//! greets with `{"v":1,"hello":{…}}`; every request is an object with `cmd`, an optional `id`
//! (echoed in its reply) and, in the first one, `"v":1`. Replies are
//! `{"id":…,"ok":true,…}` or `{"id":…,"ok":false,"error":"…"}`; a subscription's items are
//! `{"id":…,"item":{…}}`, each item a headless JSON object (docs/output.md).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The only version there is.
pub const VERSION: u64 = 1;
/// A request line longer than this is refused and the connection closed.
pub const MAX_LINE: usize = 1024 * 1024;

/// What a client asks: `ctl` and `attach` write these, the server reads them, one type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    // Braces, not unit variants: serde lets unknown fields past a unit variant.
    /// The hello again (instance, pid, groups, start time).
    Hello {},
    /// One row per worker.
    Status {},
    Kill {
        target: String,
    },
    Restart {
        target: String,
    },
    Stop {
        target: String,
    },
    Start {
        target: String,
    },
    /// The `s` key: stop a running or waiting worker, start a stopped one.
    Toggle {
        target: String,
    },
    /// `workers` sets the count; `delta` adds (or removes) that many.
    Scale {
        group: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        workers: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        delta: Option<i64>,
    },
    /// A rolling reload of a group or `all`; replied to when it has finished.
    Reload {
        target: String,
    },
    /// The last `lines` output lines (of `target`, else of everyone), then, with `follow`,
    /// every new one as it comes.
    Logs {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lines: Option<usize>,
        #[serde(default)]
        follow: bool,
    },
    /// The events kept (every object of docs/output.md but `output`), then, with `follow`, new ones.
    Events {
        #[serde(default)]
        follow: bool,
    },
    /// `corral attach`: the dashboard's view, its pane as asked, then a fresh one whenever
    /// something in it changed (`{"id":…,"view":{…}}`, at most ~30 a second).
    View {
        #[serde(default)]
        pane: crate::ui::model::PaneRequest,
    },
    /// What the pane of this client's `view` shows from now on.
    Pane {
        pane: crate::ui::model::PaneRequest,
    },
    /// One JSON value to each targeted worker's `process.on('message')` (Node IPC
    /// channels only): Node's `worker.send`.
    Send {
        target: String,
        message: Value,
    },
    /// A graceful shutdown; `force` (or a second request): SIGKILL to every worker.
    Shutdown {
        #[serde(default)]
        force: bool,
    },
}

/// Why a line is not a request; the text goes back as the reply's `error`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BadRequest {
    #[error("not JSON: {0}")]
    NotJson(String),
    #[error("expected a JSON object with \"cmd\"")]
    NotAnObject,
    #[error("unsupported protocol version {0}: this corral speaks {VERSION}")]
    Version(String),
    #[error("the first request must say \"v\":{VERSION}")]
    NoVersion,
    #[error("{0}")]
    Request(String),
}

/// What the server says first, and again to `hello`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Hello {
    pub instance: String,
    pub pid: u32,
    pub version: String,
    /// RFC 3339.
    pub started: String,
    pub groups: Vec<String>,
    pub socket: String,
}

/// The workers a `kill`, `restart`, `stop`, `start`, `toggle` or `send` reached (`web.2`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Reached {
    pub workers: Vec<String>,
}

/// `scale`: the group and the count it goes to.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Scaled {
    pub group: String,
    pub workers: i64,
}

/// `reload`, once it has finished.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Reloaded {
    pub replaced: u32,
}

/// `shutdown`, and `view` (with the instance): which corral is going, or is shown.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Whom {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    pub pid: u32,
}

/// `{"id":…,"ok":true,…}` with a reply's fields.
pub fn ok_with(id: &Value, reply: &impl Serialize) -> Vec<u8> {
    ok(id, serde_json::to_value(reply).unwrap_or(Value::Null))
}

/// One request line as a client writes it: the command, its `id`, and on the connection's
/// `first` request the protocol version.
pub fn encode(command: &Request, id: u64, first: bool) -> Vec<u8> {
    let mut value = serde_json::to_value(command).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        map.insert("id".into(), id.into());
        if first {
            map.insert("v".into(), VERSION.into());
        }
    }
    let mut line = value.to_string().into_bytes();
    line.push(b'\n');
    line
}

/// Parses one request line. `first`: the connection's first request, which must carry the
/// version. The `id` is returned even when the rest is bad, so the error can carry it.
pub fn parse(line: &[u8], first: bool) -> (Value, Result<Request, BadRequest>) {
    let value: Value = match serde_json::from_slice(line) {
        Ok(v) => v,
        Err(e) => return (Value::Null, Err(BadRequest::NotJson(e.to_string()))),
    };
    let Value::Object(mut map) = value else {
        return (Value::Null, Err(BadRequest::NotAnObject));
    };
    let id = map.remove("id").unwrap_or(Value::Null);
    match map.remove("v") {
        Some(Value::Number(n)) if n.as_u64() == Some(VERSION) => {}
        Some(other) => return (id, Err(BadRequest::Version(other.to_string()))),
        None if first => return (id, Err(BadRequest::NoVersion)),
        None => {}
    }
    let command = serde_json::from_value(Value::Object(map))
        .map_err(|e| BadRequest::Request(command_error(&e.to_string())));
    (id, command)
}

/// serde's messages name Rust's variants; say it in the protocol's words.
fn command_error(message: &str) -> String {
    // Only the command's own variants are commands (a pane's `mode` has variants too).
    let message = if message.contains("expected one of `hello`") {
        message.replace("unknown variant", "unknown command")
    } else {
        message.to_string()
    };
    let message = message.replace('`', "'");
    if message.contains("missing field 'cmd'") {
        return "expected a JSON object with \"cmd\"".to_string();
    }
    message
}

/// `{"id":…,"ok":true}` plus `fields` (an object's entries).
pub fn ok(id: &Value, fields: Value) -> Vec<u8> {
    let mut reply = serde_json::Map::new();
    reply.insert("id".into(), id.clone());
    reply.insert("ok".into(), Value::Bool(true));
    if let Value::Object(extra) = fields {
        reply.extend(extra);
    }
    line(&Value::Object(reply))
}

/// `{"id":…,"ok":true,"KEY":[…]}` with `items` (each one encoded JSON value) copied in as
/// they are: what corral already encoded is not parsed again to be encoded again.
pub fn ok_list<'a>(id: &Value, key: &str, items: impl Iterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"{\"id\":");
    out.extend_from_slice(id.to_string().as_bytes());
    out.extend_from_slice(b",\"ok\":true,");
    out.extend_from_slice(Value::from(key).to_string().as_bytes());
    out.extend_from_slice(b":[");
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(item);
    }
    out.extend_from_slice(b"]}\n");
    out
}

pub fn error(id: &Value, message: &str) -> Vec<u8> {
    line(&serde_json::json!({"id": id, "ok": false, "error": message}))
}

/// A subscription's item: `object` is one event or output line as JSON, already encoded
/// (docs/output.md).
pub fn item(id: &Value, object: &[u8]) -> Vec<u8> {
    tagged(id, "item", object)
}

/// A `view` subscription's frame: `view` is one encoded `View`, shared by every client
/// whose pane asks for the same.
pub fn frame(id: &Value, view: &[u8]) -> Vec<u8> {
    tagged(id, "view", view)
}

/// `{"id":ID,"KEY":PAYLOAD}` and a newline, `payload` being JSON already encoded.
fn tagged(id: &Value, key: &str, payload: &[u8]) -> Vec<u8> {
    let id = id.to_string();
    let mut out = Vec::with_capacity(payload.len() + id.len() + key.len() + 16);
    out.extend_from_slice(b"{\"id\":");
    out.extend_from_slice(id.as_bytes());
    out.extend_from_slice(b",\"");
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\":");
    out.extend_from_slice(payload);
    out.extend_from_slice(b"}\n");
    out
}

pub fn line(value: &Value) -> Vec<u8> {
    let mut out = value.to_string().into_bytes();
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_their_mistakes() {
        let (id, cmd) = parse(br#"{"v":1,"id":7,"cmd":"kill","target":"web.2"}"#, true);
        assert_eq!(id, 7);
        assert_eq!(cmd, Ok(Request::Kill { target: "web.2".into() }));
        let (_, cmd) = parse(br#"{"cmd":"status"}"#, false);
        assert_eq!(cmd, Ok(Request::Status {}));
        let (_, cmd) = parse(br#"{"cmd":"logs","follow":true,"lines":5}"#, false);
        assert_eq!(cmd, Ok(Request::Logs { target: None, lines: Some(5), follow: true }));
        let (_, cmd) = parse(br#"{"cmd":"pane","pane":{"worker":{"group":0,"slot":2}}}"#, false);
        let worker = Some(crate::core::WorkerKey { group: 0, slot: 2 });
        let pane = crate::ui::model::PaneRequest { worker, ..Default::default() };
        assert_eq!(cmd, Ok(Request::Pane { pane }));
        let cases: &[(&[u8], bool, &str)] = &[
            (b"{\"cmd\":\"status\"}", true, "the first request must say \"v\":1"),
            (br#"{"v":2,"cmd":"status"}"#, true, "unsupported protocol version 2"),
            (b"not json", false, "not JSON"),
            (b"[1,2]", false, "expected a JSON object"),
            (br#"{"id":1}"#, false, "expected a JSON object with \"cmd\""),
            (br#"{"cmd":"explode"}"#, false, "unknown command 'explode'"),
            (br#"{"cmd":"kill"}"#, false, "missing field 'target'"),
            (br#"{"cmd":"status","extra":1}"#, false, "unknown field 'extra'"),
            (br#"{"cmd":"view","pane":{"rows":"many"}}"#, false, "invalid type"),
            (br#"{"cmd":"pane","pane":{"mode":"everything"}}"#, false, "unknown variant"),
            (b"\xff\xfe", false, "not JSON"),
        ];
        for (line, first, want) in cases {
            let (_, got) = parse(line, *first);
            let got = got.expect_err("bad").to_string();
            assert!(got.contains(want), "{}: {got}", String::from_utf8_lossy(line));
        }
        let (id, _) = parse(br#"{"id":"abc","cmd":"nope"}"#, false);
        assert_eq!(id, "abc", "the id comes back with the error");
    }

    #[test]
    fn a_list_reply_carries_its_items_as_they_are() {
        let id = Value::from(3);
        let items: [&[u8]; 2] = [br#"{"a":1}"#, b"[2]"];
        let reply: Value =
            serde_json::from_slice(&ok_list(&id, "events", items.into_iter())).expect("json");
        assert_eq!(reply, serde_json::json!({"id": 3, "ok": true, "events": [{"a": 1}, [2]]}));
        let empty: Value =
            serde_json::from_slice(&ok_list(&id, "lines", std::iter::empty())).expect("json");
        assert_eq!(empty["lines"], serde_json::json!([]));
    }

    #[test]
    fn replies_are_one_line_each() {
        let id = Value::from(3);
        let reply: Value =
            serde_json::from_slice(&ok(&id, serde_json::json!({"n": 1}))).expect("json");
        assert_eq!(reply, serde_json::json!({"id": 3, "ok": true, "n": 1}));
        let bad = error(&id, "no\nway");
        assert_eq!(memchr::memchr_iter(b'\n', &bad).count(), 1, "one line");
        let reply: Value = serde_json::from_slice(&bad).expect("json");
        assert_eq!(reply, serde_json::json!({"id": 3, "ok": false, "error": "no\nway"}));
        assert_eq!(
            item(&id, br#"{"event":"ready"}"#),
            b"{\"id\":3,\"item\":{\"event\":\"ready\"}}\n"
        );
    }
}
