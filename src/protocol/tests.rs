use proptest::prelude::*;

use super::*;

fn msg(line: &[u8]) -> Result<Message, ProtocolError> {
    decode(line)
}

fn split(max: usize, overflow: Overflow, chunks: &[&[u8]]) -> Vec<Option<Vec<u8>>> {
    let mut s = LineSplitter::new(max, overflow);
    let mut out = Vec::new();
    let mut emit = |p: Piece<'_>| {
        out.push(match p {
            Piece::Line(l) => Some(l.to_vec()),
            Piece::Oversized => None,
        });
    };
    for c in chunks {
        s.push(c, &mut emit);
    }
    s.finish(&mut emit);
    out
}

#[test]
fn every_message_form_decodes() {
    assert_eq!(msg(br#""ready""#), Ok(Message::Ready));
    assert_eq!(msg(br#"{"type":"ready"}"#), Ok(Message::Ready));
    assert_eq!(msg(br#"{"v":1,"type":"ready","pid":12}"#), Ok(Message::Ready));
    assert_eq!(msg(br#"{"type":"heartbeat"}"#), Ok(Message::Heartbeat));
    assert_eq!(
        msg(br#"{"type":"status","text":"warming cache 40%"}"#),
        Ok(Message::Status("warming cache 40%".into()))
    );
    assert_eq!(
        msg(br#"{"type":"log","level":"warn","msg":"slow"}"#),
        Ok(Message::Log { level: "warn".into(), msg: "slow".into() })
    );
    assert_eq!(
        msg(br#"{"type":"metric","name":"requests","value":1234.5}"#),
        Ok(Message::Metric { name: "requests".into(), value: 1234.5 })
    );
    assert_eq!(msg(br#"{"cmd":"NODE_HANDLE","type":"x"}"#), Ok(Message::Internal));
    assert_eq!(msg(br#"{"type":"tick","n":3}"#), Ok(Message::Custom));
    assert_eq!(msg(b"42"), Ok(Message::Custom));
    assert_eq!(msg(b"[]"), Ok(Message::Custom));
    // Known types with the wrong fields are still valid JSON: custom events.
    assert!(matches!(msg(br#"{"type":"metric","name":"x","value":"y"}"#), Ok(Message::Custom)));
    assert!(matches!(msg(br#"{"type":123}"#), Ok(Message::Custom)));
}

#[test]
fn garbage_is_malformed() {
    for bad in
        [&b"{\"a\":"[..], b"", b"\xff\xfe", b"\xed\xa0\x80", b"not json", b"{\"x\":1} trailing"]
    {
        assert_eq!(decode(bad), Err(ProtocolError::Malformed), "{bad:?}");
    }
    let deep = "[".repeat(100_000);
    assert_eq!(decode(deep.as_bytes()), Err(ProtocolError::Malformed));
}

#[test]
fn unknown_fields_are_checked_like_known_ones() {
    // Each of these passed the fast path once (serde skips unknown fields without checking
    // them) and reached the headless output verbatim.
    let deep = format!("{{\"x\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000));
    let bad: [&[u8]; 9] = [
        b"{\"x\":\"\xff\"}",
        b"{\"type\":\"tick\",\"x\":\"\xed\xa0\x80\"}",
        deep.as_bytes(),
        b"{\"v\":1e999}",
        b"{\"v\":-1E+400}",
        b"[1e999]",
        b"{\"x\":\"\\ud800\"}",
        b"{\"x\":\"\\udc00\\ud800\"}",
        b"{\"x\":\"\\ud800\\u0041\"}",
    ];
    for line in bad {
        assert_eq!(decode(line), Err(ProtocolError::Malformed), "{}", line.escape_ascii());
    }
    let long_but_finite = format!("{{\"v\":{}}}", "9".repeat(308));
    let good: [&[u8]; 7] = [
        b"{\"x\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"}",
        b"{\"x\":\"\\ud83d\\ude00 \\u00e9 \\\\ud800\"}",
        b"{\"v\":1e308,\"w\":-0.5e-999,\"n\":[0,-1,2.5E3]}",
        b"{\"s\":\"1e999 [[[[ \\\" {\"}",
        long_but_finite.as_bytes(),
        b"{\"type\":\"tick\",\"n\":3}",
        b"\"ready\"",
    ];
    for line in good {
        assert!(decode(line).is_ok(), "{}", line.escape_ascii());
    }
}

#[test]
fn nesting_is_limited_the_same_on_both_paths() {
    let nested = |depth: usize, prefix: &str| {
        format!(
            "{prefix}{}{}{}",
            "[".repeat(depth),
            "]".repeat(depth),
            "}".repeat(prefix.len().min(1))
        )
    };
    for prefix in ["", "{\"x\":"] {
        let inner = MAX_NESTING - usize::from(!prefix.is_empty());
        assert!(decode(nested(inner, prefix).as_bytes()).is_ok(), "{prefix} at the limit");
        assert_eq!(
            decode(nested(inner + 1, prefix).as_bytes()),
            Err(ProtocolError::Malformed),
            "{prefix} past the limit"
        );
    }
}

#[test]
fn odd_shapes_take_the_general_path_with_the_same_meaning() {
    // A field of an unexpected type makes the fast path fail; the meaning must not change.
    assert_eq!(msg(br#"{"type":"tick","name":5}"#), Ok(Message::Custom));
    assert_eq!(
        msg(br#"{"type":"status","text":"a\nb","v":1}"#),
        Ok(Message::Status("a\nb".into()))
    );
    assert_eq!(msg(br#"{"type":"ready","type":"ready"}"#), Ok(Message::Ready));
    assert_eq!(msg(br#"{"cmd":5}"#), Ok(Message::Custom));
}

#[test]
fn split_and_coalesced_frames_give_the_same_lines() {
    let whole = split(100, Overflow::Discard, &[b"{\"a\":1}\n{\"b\":2}\n"]);
    let bytes: Vec<&[u8]> = b"{\"a\":1}\n{\"b\":2}\n".chunks(1).collect();
    assert_eq!(split(100, Overflow::Discard, &bytes), whole);
    assert_eq!(whole, vec![Some(b"{\"a\":1}".to_vec()), Some(b"{\"b\":2}".to_vec())]);
}

#[test]
fn oversized_lines_are_dropped_up_to_their_newline() {
    let out = split(4, Overflow::Discard, &[b"ok\n0123456789", b"abc\nnext\n"]);
    assert_eq!(out, vec![Some(b"ok".to_vec()), None, Some(b"next".to_vec())]);
    let out = split(4, Overflow::Discard, &[b"01234\nab\n"]);
    assert_eq!(out, vec![None, Some(b"ab".to_vec())]);
}

#[test]
fn a_long_line_is_never_cut_inside_a_colour_code() {
    let line: Vec<u8> = b"\x1b[33mab".repeat(1000);
    for max in [16, 100, 1024] {
        let pieces: Vec<Vec<u8>> =
            split(max, Overflow::Split, &[&line]).into_iter().flatten().collect();
        assert_eq!(pieces.concat(), line, "nothing lost at {max}");
        for piece in &pieces {
            assert!(piece.len() <= max);
            // Every piece starts a sequence whole: at an ESC, or at the text after a code.
            assert!(
                piece.starts_with(b"\x1b[33m")
                    || piece.starts_with(b"ab")
                    || piece.starts_with(b"b"),
                "{piece:?} at {max}"
            );
            assert!(
                !piece.ends_with(b"\x1b")
                    && !piece.ends_with(b"\x1b[")
                    && !piece.ends_with(b"\x1b[3")
                    && !piece.ends_with(b"\x1b[33"),
                "{piece:?} at {max}"
            );
        }
    }
    // One sequence longer than the cap is cut anyway: a piece is never empty.
    let long_osc = [b"\x1b]0;".as_slice(), &[b'x'; 100]].concat();
    let pieces: Vec<Vec<u8>> =
        split(16, Overflow::Split, &[&long_osc]).into_iter().flatten().collect();
    assert_eq!(pieces.concat(), long_osc);
    assert!(pieces.iter().all(|p| !p.is_empty()));
}

#[test]
fn long_output_lines_are_split_not_lost() {
    let out = split(4, Overflow::Split, &[b"0123456789\nab"]);
    let want: Vec<Option<Vec<u8>>> = vec![
        Some(b"0123".to_vec()),
        Some(b"4567".to_vec()),
        Some(b"89".to_vec()),
        Some(b"ab".to_vec()),
    ];
    assert_eq!(out, want);
}

#[test]
fn memory_stays_bounded_without_newlines() {
    let mut s = LineSplitter::new(1024, Overflow::Discard);
    let chunk = vec![b'x'; 64 * 1024];
    let mut oversized = 0;
    for _ in 0..100 {
        s.push(&chunk, &mut |p| {
            oversized += usize::from(p == Piece::Oversized);
        });
        assert!(s.pending() <= 1024);
    }
    assert_eq!(oversized, 1);
}

/// Fragments that make lines near the edge of what is accepted: valid and broken JSON,
/// surrogate escapes, overflowing numbers, stray bytes.
const FRAGMENTS: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b":",
    b",",
    b"\"",
    b"\"k\"",
    b"\"type\"",
    b"\"tick\"",
    b"1",
    b"-0.5e3",
    b"1e999",
    b"\xff",
    b"\xc3\xa9",
    b"\\ud800",
    b"\\udc00",
    b"\\n",
    b"\\",
    b"null",
    b" ",
];

proptest! {
    #[test]
    fn whatever_decodes_every_json_reader_accepts(
        parts in proptest::collection::vec(proptest::sample::select(FRAGMENTS), 0..40),
        wrapped in any::<bool>(),
    ) {
        let mut line: Vec<u8> = if wrapped { b"{\"type\":\"t\",\"x\":".to_vec() } else { Vec::new() };
        for p in &parts {
            line.extend_from_slice(p);
        }
        if wrapped {
            line.push(b'}');
        }
        if decode(&line).is_ok() {
            let value: Result<Value, _> = serde_json::from_slice(&line);
            prop_assert!(value.is_ok(), "accepted but unreadable: {}", line.escape_ascii());
        }
    }

    #[test]
    fn valid_json_values_within_the_limit_decode(value in json_value()) {
        let line = serde_json::to_vec(&value).expect("serialize");
        prop_assert!(decode(&line).is_ok(), "{}", line.escape_ascii());
        let wrapped = format!("{{\"type\":\"t\",\"x\":{}}}", String::from_utf8_lossy(&line));
        prop_assert!(decode(wrapped.as_bytes()).is_ok(), "{wrapped}");
    }

    #[test]
    fn arbitrary_bytes_never_panic(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..20), max in 1usize..64) {
        for overflow in [Overflow::Split, Overflow::Discard] {
            let mut s = LineSplitter::new(max, overflow);
            let mut emit = |p: Piece<'_>| {
                if let Piece::Line(l) = p {
                    assert!(l.len() <= max);
                    assert!(!l.contains(&b'\n'));
                    let _ = decode(l);
                }
            };
            for c in &chunks {
                s.push(c, &mut emit);
                assert!(s.pending() <= max);
            }
            s.finish(&mut emit);
        }
    }

    #[test]
    fn split_mode_loses_no_byte(data in proptest::collection::vec(any::<u8>(), 0..2000), max in 1usize..50, cut in 1usize..100) {
        let chunks: Vec<&[u8]> = data.chunks(cut).collect();
        let lines = split(max, Overflow::Split, &chunks);
        let total: usize = lines.iter().flatten().map(Vec::len).sum();
        let newlines = memchr::memchr_iter(b'\n', &data).count();
        prop_assert_eq!(total + newlines, data.len());
    }
}

/// JSON values of at most 8 levels, with any strings and finite numbers.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(8, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            proptest::collection::btree_map(any::<String>(), inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Messages as a worker would write them: the known types with any contents, `cmd`s, and
/// anything else.
fn worker_message() -> impl Strategy<Value = Value> {
    let text = any::<String>();
    prop_oneof![
        Just(serde_json::json!("ready")),
        Just(serde_json::json!({"type": "ready"})),
        Just(serde_json::json!({"type": "heartbeat"})),
        text.prop_map(|t| serde_json::json!({"type": "status", "text": t})),
        (text, text).prop_map(|(l, m)| serde_json::json!({"type": "log", "level": l, "msg": m})),
        (text, any::<f64>().prop_filter("finite", |f| f.is_finite()))
            .prop_map(|(n, v)| serde_json::json!({"type": "metric", "name": n, "value": v})),
        text.prop_map(|c| serde_json::json!({"cmd": c})),
        json_value(),
    ]
}

proptest! {
    /// What the worker side sends, the primary reads as the same message; what the primary
    /// would ignore (Node's internals), the worker side refuses to send.
    #[test]
    fn encode_then_decode_is_the_same_message(value in worker_message()) {
        let mut out = b"before\n".to_vec();
        let encoded = encode(&mut out, &value);
        let expected = classify(&value);
        if expected == Message::Internal {
            prop_assert!(matches!(encoded, Err(EncodeError::Reserved)));
            prop_assert_eq!(&out[..], b"before\n", "nothing is left of a refused value");
        } else {
            prop_assert!(encoded.is_ok(), "{:?}", encoded);
            let line = &out[b"before\n".len()..];
            prop_assert_eq!(line.last(), Some(&b'\n'));
            prop_assert_eq!(memchr::memchr_iter(b'\n', line).count(), 1, "one line");
            prop_assert_eq!(decode(&line[..line.len() - 1]), Ok(expected));
        }
    }
}
