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
fn odd_shapes_take_the_general_path_with_the_same_meaning() {
    // A field of an unexpected type makes the fast path fail; the meaning must not change.
    assert_eq!(msg(br#"{"type":"tick","name":5}"#), Ok(Message::Custom));
    assert_eq!(
        msg(br#"{"type":"status","text":"a\nb","v":1}"#),
        Ok(Message::Status("a\nb".into()))
    );
    assert_eq!(msg(br#"{"type":"ready","type":"ready"}"#), Ok(Message::Ready));
    assert_eq!(msg(br#"{"cmd":5}"#), Ok(Message::Custom));
    assert!(
        !Message::Ready.reported()
            && !Message::Heartbeat.reported()
            && !Message::Internal.reported()
    );
    assert!(Message::Custom.reported() && Message::Status("x".into()).reported());
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

proptest! {
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
