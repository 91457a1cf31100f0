//! Node's cluster protocol, the primary's side (docs/node.md): what an unmodified Node
//! worker asks on its IPC channel (`queryServer`, `listening`, `close`, …) and what corral
//! answers. Pure: lines in, typed messages out; replies built as bytes. A worker's
//! malformed or hostile message is `None` (the caller counts it), never a panic.

use serde::Deserialize;
use serde_json::Value;

/// Longest address (a unix socket path, a host) corral accepts in a query: longer ones are
/// refused (a path longer than `sun_path` cannot be bound anyway).
pub const MAX_ADDRESS: usize = 256;

/// Largest server data (TLS ticket keys) corral keeps per socket and hands to later workers.
pub const MAX_SERVER_DATA: usize = 4096;

/// What kind of socket a worker asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    Tcp4,
    Tcp6,
    /// A unix socket path (`addressType: -1`).
    Pipe,
    Udp4,
    Udp6,
    /// `listen({fd: N})`: no address, the worker's own descriptor N.
    Descriptor,
}

/// A `queryServer`: a worker's `server.listen(…)` or `dgram.bind(…)`.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerQuery {
    pub seq: u64,
    /// `None`: the unspecified address (Node binds `::` dual-stack, or `0.0.0.0`).
    pub address: Option<String>,
    /// `-1` for a pipe.
    pub port: i64,
    pub transport: Transport,
    /// `listen({fd: N})`: the worker's own descriptor N (one corral passed with `--listen`).
    pub fd: Option<i64>,
    /// TCP bit 1 / UDP bit 0: IPv6 only.
    pub ipv6_only: bool,
    pub index: u64,
    /// `_getServerData()` of the worker's server (TLS ticket keys), if small enough.
    pub data: Option<Value>,
    pub readable_all: bool,
    pub writable_all: bool,
}

impl ServerQuery {
    /// The key this worker's server is known by: Node's own primary builds it the same way,
    /// and it must be unique among the worker's live servers.
    pub fn key(&self) -> String {
        let address = self.address.as_deref().unwrap_or("null");
        let fd = self.fd.unwrap_or(-1);
        let kind = match self.transport {
            Transport::Tcp4 => "4",
            Transport::Tcp6 => "6",
            Transport::Pipe => "-1",
            Transport::Udp4 => "udp4",
            Transport::Udp6 => "udp6",
            Transport::Descriptor => "null",
        };
        format!("{address}:{}:{kind}:{fd}:{}", self.port, self.index)
    }
}

/// What a worker says on the cluster protocol.
#[derive(Clone, Debug, PartialEq)]
pub enum WorkerSays {
    Online,
    QueryServer(ServerQuery),
    /// A server is listening (after its `queryServer` was answered).
    Listening,
    /// A server was closed; `key` is the one corral gave it.
    Close {
        key: String,
    },
    /// `cluster.worker.disconnect()`: corral acknowledges, then the worker closes the channel.
    ExitedAfterDisconnect {
        seq: u64,
    },
    /// The handle corral sent arrived.
    HandleAck,
    /// The handle corral sent was lost (`MSG_CTRUNC`): send it again.
    HandleNack,
    /// Round-robin: the worker took (or refused) the connection of corral's message `ack`.
    Accepted {
        ack: u64,
        accepted: bool,
    },
    /// Another `NODE_` message corral has no use for.
    Ignored,
}

#[derive(Deserialize)]
struct Raw<'a> {
    #[serde(borrow)]
    cmd: &'a str,
    #[serde(default, borrow)]
    act: Option<&'a str>,
    #[serde(default)]
    seq: Option<u64>,
    #[serde(default)]
    ack: Option<u64>,
    #[serde(default)]
    accepted: Option<bool>,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    address: Option<String>,
    #[serde(default)]
    port: Option<i64>,
    #[serde(default, rename = "addressType")]
    address_type: Option<Value>,
    #[serde(default)]
    fd: Option<i64>,
    #[serde(default)]
    flags: Option<u64>,
    #[serde(default)]
    index: Option<u64>,
    #[serde(default)]
    data: Option<Value>,
    #[serde(default, rename = "readableAll")]
    readable_all: Option<bool>,
    #[serde(default, rename = "writableAll")]
    writable_all: Option<bool>,
}

/// Reads one internal (`NODE_…`) line. `None`: not a cluster message corral understands
/// (wrong types, missing fields, an impossible port): the caller counts a protocol error.
pub fn decode(line: &[u8]) -> Option<WorkerSays> {
    let raw: Raw<'_> = serde_json::from_slice(line).ok()?;
    match raw.cmd {
        "NODE_HANDLE_ACK" => return Some(WorkerSays::HandleAck),
        "NODE_HANDLE_NACK" => return Some(WorkerSays::HandleNack),
        "NODE_CLUSTER" => {}
        _ => return Some(WorkerSays::Ignored),
    }
    let seq = raw.seq?;
    let said = match raw.act {
        Some("online") => WorkerSays::Online,
        Some("queryServer") => WorkerSays::QueryServer(query(raw, seq)?),
        Some("listening") => WorkerSays::Listening,
        Some("close") => WorkerSays::Close { key: raw.key? },
        Some("exitedAfterDisconnect") => WorkerSays::ExitedAfterDisconnect { seq },
        None => match (raw.ack, raw.accepted) {
            (Some(ack), Some(accepted)) => WorkerSays::Accepted { ack, accepted },
            _ => WorkerSays::Ignored,
        },
        Some(_) => WorkerSays::Ignored,
    };
    Some(said)
}

fn query(raw: Raw<'_>, seq: u64) -> Option<ServerQuery> {
    let fd = raw.fd.filter(|&fd| fd >= 0);
    if let Some(fd) = fd {
        // `listen({fd: N})`: Node sends neither address, port nor type, and its own primary
        // looks at nothing but the descriptor.
        if !(0..=i64::from(i32::MAX)).contains(&fd) {
            return None;
        }
        return Some(ServerQuery {
            seq,
            address: None,
            port: -1,
            transport: Transport::Descriptor,
            fd: Some(fd),
            ipv6_only: false,
            index: raw.index.unwrap_or(0),
            data: None,
            readable_all: false,
            writable_all: false,
        });
    }
    let transport = match raw.address_type? {
        Value::Number(n) => match n.as_i64()? {
            4 => Transport::Tcp4,
            6 => Transport::Tcp6,
            -1 => Transport::Pipe,
            _ => return None,
        },
        Value::String(s) => match s.as_str() {
            "udp4" => Transport::Udp4,
            "udp6" => Transport::Udp6,
            _ => return None,
        },
        _ => return None,
    };
    let port = raw.port?;
    let port_ok = match transport {
        Transport::Pipe => true,
        Transport::Tcp4 | Transport::Tcp6 | Transport::Udp4 | Transport::Udp6 => {
            (0..=i64::from(u16::MAX)).contains(&port)
        }
        Transport::Descriptor => false,
    };
    if !port_ok || raw.address.as_ref().is_some_and(|a| a.len() > MAX_ADDRESS) {
        return None;
    }
    if transport == Transport::Pipe && raw.address.is_none() {
        return None;
    }
    // libuv's UV_TCP_IPV6ONLY and UV_UDP_IPV6ONLY are both bit 0.
    let ipv6_only = raw.flags.unwrap_or(0) & 1 != 0;
    let data = raw.data.filter(|d| !d.is_null() && d.to_string().len() <= MAX_SERVER_DATA);
    Some(ServerQuery {
        seq,
        address: raw.address,
        port,
        transport,
        fd,
        ipv6_only,
        index: raw.index.unwrap_or(0),
        data,
        readable_all: raw.readable_all.unwrap_or(false),
        writable_all: raw.writable_all.unwrap_or(false),
    })
}

/// The error numbers Node expects, negative as libuv reports them.
pub fn uv_errno(errno: i32) -> i64 {
    -i64::from(errno.abs())
}

/// Which Node handle type a passed socket is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandleType {
    Net,
    Dgram,
}

impl HandleType {
    fn as_str(self) -> &'static str {
        match self {
            HandleType::Net => "net.Native",
            HandleType::Dgram => "dgram.Native",
        }
    }
}

/// The reply to a `queryServer` that carries the socket (sent with `SCM_RIGHTS`).
pub fn shared_reply(
    seq: u64,
    ack: u64,
    key: &str,
    data: Option<&Value>,
    kind: HandleType,
) -> Vec<u8> {
    let inner = serde_json::json!({
        "cmd": "NODE_CLUSTER", "errno": 0, "key": key, "ack": ack,
        "data": data.cloned().unwrap_or(Value::Null), "seq": seq,
    });
    line(&serde_json::json!({ "cmd": "NODE_HANDLE", "type": kind.as_str(), "msg": inner }))
}

/// The reply to a `queryServer` corral could not serve: the worker's `'error'` handler sees
/// the errno (negative, as libuv's).
pub fn error_reply(seq: u64, ack: u64, key: &str, errno: i64) -> Vec<u8> {
    line(&serde_json::json!({
        "cmd": "NODE_CLUSTER", "errno": errno, "key": key, "ack": ack, "data": null, "seq": seq,
    }))
}

/// Round-robin: the reply to a `queryServer` that carries no socket (corral accepts and
/// hands out connections); `sockname` is where the group's socket listens (none for pipes).
pub fn round_robin_reply(
    seq: u64,
    ack: u64,
    key: &str,
    data: Option<&Value>,
    sockname: Option<std::net::SocketAddr>,
) -> Vec<u8> {
    let mut reply = serde_json::json!({
        "cmd": "NODE_CLUSTER", "errno": null, "key": key, "ack": ack,
        "data": data.cloned().unwrap_or(Value::Null), "seq": seq,
    });
    if let (Some(addr), Some(map)) = (sockname, reply.as_object_mut()) {
        let family = if addr.is_ipv4() { "IPv4" } else { "IPv6" };
        map.insert(
            "sockname".into(),
            serde_json::json!({ "address": addr.ip().to_string(), "family": family, "port": addr.port() }),
        );
    }
    line(&reply)
}

/// Round-robin: one accepted connection for the worker's server `key` (sent with
/// `SCM_RIGHTS`).
pub fn new_connection(seq: u64, key: &str) -> Vec<u8> {
    let inner =
        serde_json::json!({ "cmd": "NODE_CLUSTER", "act": "newconn", "key": key, "seq": seq });
    line(&serde_json::json!({ "cmd": "NODE_HANDLE", "type": "net.Native", "msg": inner }))
}

/// A plain acknowledgement (of `exitedAfterDisconnect`).
pub fn ack(seq: u64, ack: u64) -> Vec<u8> {
    line(&serde_json::json!({ "cmd": "NODE_CLUSTER", "ack": ack, "seq": seq }))
}

/// Node's graceful stop: the worker closes its servers, lets their connections finish and
/// closes the channel.
pub fn disconnect(seq: u64) -> Vec<u8> {
    line(&serde_json::json!({ "cmd": "NODE_CLUSTER", "act": "disconnect", "seq": seq }))
}

fn line(value: &Value) -> Vec<u8> {
    let mut out = value.to_string().into_bytes();
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests;
