//! Every message form Node 18–24 sends, as captured on the wire (docs/node.md), and what a
//! hostile worker might send instead.

use proptest::prelude::*;
use serde_json::Value;

use super::*;

fn said(line: &str) -> Option<WorkerSays> {
    decode(line.as_bytes())
}

#[test]
fn a_plain_listen_is_a_query_for_the_unspecified_address() {
    let line = r#"{"cmd":"NODE_CLUSTER","act":"queryServer","index":0,"data":null,"address":null,"port":3000,"addressType":4,"backlog":0,"seq":1}"#;
    let Some(WorkerSays::QueryServer(q)) = said(line) else { panic!("not a query") };
    assert_eq!((q.seq, q.port, q.transport, q.fd, q.index), (1, 3000, Transport::Tcp4, None, 0));
    assert_eq!(q.address, None);
    assert!(!q.ipv6_only && q.data.is_none());
    assert_eq!(q.key(), "null:3000:4:-1:0");
}

#[test]
fn hosts_pipes_udp_fds_and_flags_are_read() {
    let v6 = r#"{"cmd":"NODE_CLUSTER","act":"queryServer","index":2,"address":"::1","port":0,"addressType":6,"flags":1,"seq":4}"#;
    let Some(WorkerSays::QueryServer(q)) = said(v6) else { panic!("v6") };
    assert_eq!(
        (q.address.as_deref(), q.transport, q.ipv6_only),
        (Some("::1"), Transport::Tcp6, true)
    );
    let pipe = r#"{"cmd":"NODE_CLUSTER","act":"queryServer","index":0,"address":"/tmp/s.sock","port":-1,"addressType":-1,"readableAll":true,"seq":1}"#;
    let Some(WorkerSays::QueryServer(q)) = said(pipe) else { panic!("pipe") };
    assert_eq!((q.transport, q.port, q.readable_all), (Transport::Pipe, -1, true));
    let udp = r#"{"cmd":"NODE_CLUSTER","act":"queryServer","address":"0.0.0.0","port":5353,"addressType":"udp4","fd":-1,"flags":4,"seq":1}"#;
    let Some(WorkerSays::QueryServer(q)) = said(udp) else { panic!("udp") };
    assert_eq!((q.transport, q.fd, q.ipv6_only), (Transport::Udp4, None, false));
    let fd = r#"{"cmd":"NODE_CLUSTER","act":"queryServer","address":null,"port":null,"addressType":null,"fd":3,"seq":1}"#;
    let Some(WorkerSays::QueryServer(q)) = said(fd) else { panic!("fd") };
    assert_eq!((q.transport, q.fd), (Transport::Descriptor, Some(3)));
}

#[test]
fn lifecycle_messages_and_acks() {
    assert_eq!(said(r#"{"cmd":"NODE_CLUSTER","act":"online","seq":0}"#), Some(WorkerSays::Online));
    let listening = r#"{"cmd":"NODE_CLUSTER","act":"listening","address":null,"port":3000,"addressType":4,"seq":2}"#;
    assert_eq!(said(listening), Some(WorkerSays::Listening));
    assert_eq!(
        said(r#"{"cmd":"NODE_CLUSTER","act":"close","key":"null:3000:4:-1:0","seq":3}"#),
        Some(WorkerSays::Close { key: "null:3000:4:-1:0".into() })
    );
    assert_eq!(
        said(r#"{"cmd":"NODE_CLUSTER","act":"exitedAfterDisconnect","seq":7}"#),
        Some(WorkerSays::ExitedAfterDisconnect { seq: 7 })
    );
    assert_eq!(said(r#"{"cmd":"NODE_HANDLE_ACK"}"#), Some(WorkerSays::HandleAck));
    assert_eq!(said(r#"{"cmd":"NODE_HANDLE_NACK"}"#), Some(WorkerSays::HandleNack));
    assert_eq!(
        said(r#"{"cmd":"NODE_CLUSTER","ack":5,"accepted":true,"seq":9}"#),
        Some(WorkerSays::Accepted { ack: 5, accepted: true })
    );
    assert_eq!(said(r#"{"cmd":"NODE_SOMETHING_NEW"}"#), Some(WorkerSays::Ignored));
}

#[test]
fn hostile_queries_are_refused_not_trusted() {
    let bad = [
        r#"{"cmd":"NODE_CLUSTER","act":"queryServer","address":null,"port":70000,"addressType":4,"seq":1}"#,
        r#"{"cmd":"NODE_CLUSTER","act":"queryServer","address":null,"port":-5,"addressType":4,"seq":1}"#,
        r#"{"cmd":"NODE_CLUSTER","act":"queryServer","address":null,"port":"80","addressType":4,"seq":1}"#,
        r#"{"cmd":"NODE_CLUSTER","act":"queryServer","address":null,"port":80,"addressType":5,"seq":1}"#,
        r#"{"cmd":"NODE_CLUSTER","act":"queryServer","address":null,"port":80,"addressType":"tcp","seq":1}"#,
        r#"{"cmd":"NODE_CLUSTER","act":"queryServer","address":null,"port":-1,"addressType":-1,"seq":1}"#,
        r#"{"cmd":"NODE_CLUSTER","act":"queryServer","address":7,"port":80,"addressType":4,"seq":1}"#,
        r#"{"cmd":"NODE_CLUSTER","act":"queryServer","address":null,"port":80,"addressType":4}"#,
        r#"{"cmd":"NODE_CLUSTER","act":"close","seq":1}"#,
        r#"{"cmd":"NODE_CLUSTER","act":"online","seq":-1}"#,
        r#"{"cmd":7}"#,
        "[1,2]",
    ];
    for line in bad {
        assert_eq!(said(line), None, "{line}");
    }
    let long = format!(
        r#"{{"cmd":"NODE_CLUSTER","act":"queryServer","address":"{}","port":-1,"addressType":-1,"seq":1}}"#,
        "a".repeat(MAX_ADDRESS + 1)
    );
    assert_eq!(said(&long), None);
    let data = format!(
        r#"{{"cmd":"NODE_CLUSTER","act":"queryServer","address":null,"port":1,"addressType":4,"data":"{}","seq":1}}"#,
        "k".repeat(MAX_SERVER_DATA)
    );
    let Some(WorkerSays::QueryServer(q)) = said(&data) else {
        panic!("data too big is dropped, not the query")
    };
    assert!(q.data.is_none());
}

#[test]
fn replies_are_the_lines_node_expects() {
    let shared = shared_reply(0, 1, "null:3000:4:-1:0", None, HandleType::Net);
    let v: Value = serde_json::from_slice(&shared).expect("json");
    assert_eq!(shared.last(), Some(&b'\n'));
    assert_eq!(v["cmd"], "NODE_HANDLE");
    assert_eq!(v["type"], "net.Native");
    assert_eq!(v["msg"]["cmd"], "NODE_CLUSTER");
    assert_eq!(
        (&v["msg"]["errno"], &v["msg"]["ack"], &v["msg"]["seq"]),
        (&0.into(), &1.into(), &0.into())
    );
    let error: Value =
        serde_json::from_slice(&error_reply(3, 4, "k", uv_errno(libc::EADDRINUSE))).expect("json");
    assert_eq!((&error["errno"], &error["ack"]), (&(-98).into(), &4.into()));
    let rr = round_robin_reply(1, 2, "k", None, Some("[::]:3000".parse().expect("addr")));
    let rr: Value = serde_json::from_slice(&rr).expect("json");
    assert_eq!(rr["errno"], Value::Null);
    assert_eq!(rr["sockname"]["family"], "IPv6");
    assert_eq!(rr["sockname"]["port"], 3000);
    let conn: Value = serde_json::from_slice(&new_connection(6, "k")).expect("json");
    assert_eq!((&conn["msg"]["act"], &conn["msg"]["seq"]), (&"newconn".into(), &6.into()));
    let bye: Value = serde_json::from_slice(&disconnect(2)).expect("json");
    assert_eq!(bye["act"], "disconnect");
    let ok: Value = serde_json::from_slice(&ack(5, 7)).expect("json");
    assert_eq!((&ok["ack"], &ok["seq"]), (&7.into(), &5.into()));
}

proptest! {
    /// Whatever bytes a worker sends, decoding returns (never panics).
    #[test]
    fn any_bytes_decode_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode(&bytes);
    }

    /// Any field values of the right names either decode or are refused.
    #[test]
    fn any_query_fields_decode_or_are_refused(
        port in any::<i64>(), kind in prop_oneof![Just("4"), Just("6"), Just("-1"), Just("\"udp4\""), Just("9"), Just("null")],
        address in prop_oneof![Just("null".to_string()), "[a-z:/.0-9]{0,20}".prop_map(|s| format!("\"{s}\""))],
        fd in any::<i64>(), seq in any::<u64>(),
    ) {
        let line = format!(r#"{{"cmd":"NODE_CLUSTER","act":"queryServer","address":{address},"port":{port},"addressType":{kind},"fd":{fd},"seq":{seq}}}"#);
        if let Some(WorkerSays::QueryServer(q)) = decode(line.as_bytes()) {
            prop_assert!(q.transport == Transport::Pipe || (0..=65535).contains(&q.port));
        }
    }
}
