use super::*;

fn kept(line: &[u8]) -> String {
    let mut out = Vec::new();
    keep_sgr(line, &mut out);
    String::from_utf8(out).expect("keep_sgr writes UTF-8")
}

#[test]
fn sgr_is_kept_as_received_and_reset_at_the_end() {
    assert_eq!(kept(b"\x1b[32mgreen\x1b[0m plain"), "\x1b[32mgreen\x1b[0m plain\x1b[0m");
    let rich = b"\x1b[1;38;5;208mo\x1b[38:2::1:2:3mt\x1b[38;2;1;2;3;48;5;4mx\x1b[m";
    assert_eq!(kept(rich), format!("{}\x1b[0m", std::str::from_utf8(rich).unwrap()));
    assert_eq!(kept(b"no escapes \t here"), "no escapes \t here", "nothing added");
}

#[test]
fn every_other_sequence_is_made_visible() {
    let line = b"a\x1b[2Jb\x1b]0;PWNED\x07c\x1b[5;5Hd\x1bPq#0\x1b\\e\x1b[?1049hf\x07";
    let out = kept(line);
    assert!(!out.contains('\x1b') && !out.contains('\x07'), "{out:?}");
    assert_eq!(
        out,
        "a\\u{1b}[2Jb\\u{1b}]0;PWNED\\u{7}c\\u{1b}[5;5Hd\\u{1b}Pq#0\\u{1b}\\e\\u{1b}[?1049hf\\u{7}"
    );
}

#[test]
fn hostile_sgr_lookalikes_are_not_kept() {
    for line in [
        &b"x\x1b[31"[..],    // unterminated
        b"x\x1b[3\x072m",    // a control inside
        b"x\x1b[31\x1b[2Jm", // another sequence inside
        b"x\x1b[?31m",       // private marker
        b"x\x1b[ m",         // intermediate
        b"x\x1b]",           // unterminated OSC
        b"x\x1b",            // a lone ESC at the end
    ] {
        let out = kept(line);
        assert!(!out.contains('\x1b') && !out.contains('\x07'), "{line:?}: {out:?}");
    }
    let huge = format!("x\x1b[{}m y", "1;".repeat(10_000));
    let out = kept(huge.as_bytes());
    assert!(!out.contains('\x1b') && out.ends_with("m y"), "a 10k-parameter CSI is shown");
    let huge_osc = format!("\x1b]0;{}\x07z", "A".repeat(100_000));
    assert!(!kept(huge_osc.as_bytes()).contains('\x1b'));
}

#[test]
fn invalid_utf8_is_replaced_around_kept_sgr() {
    let out = kept(b"\xff\x1b[31m\xc3(\x1b[0m\xe2\x82");
    assert_eq!(out, "\u{fffd}\x1b[31m\u{fffd}(\x1b[0m\u{fffd}\x1b[0m");
}

#[test]
fn strip_removes_every_sequence_and_keeps_controls_and_text() {
    assert!(matches!(strip("plain"), Cow::Borrowed("plain")));
    assert_eq!(strip("\x1b[32mgr\x1b[1meen\x1b[0m"), "green");
    assert_eq!(strip("a\x1b]0;t\x07b\x1b[2Jc\x1b[5Ad\x1bPx\x1b\\e\x07\r"), "abcde\x07\r");
    assert_eq!(strip("\u{9b}31m\u{202e}"), "\u{9b}31m\u{202e}", "no ESC: left to escape");
    assert_eq!(strip("end\x1b[31"), "end", "an unterminated sequence goes too");
    assert_eq!(strip_bytes(b"\xff\x1b[1mok"), "\u{fffd}ok");
    let huge = format!("a\x1b[{}mb", "9;".repeat(10_000));
    assert_eq!(strip(&huge), "ab");
}

#[test]
fn sgr_is_recognised_only_in_its_plain_form() {
    assert!(is_sgr(b"", false, 'm'));
    assert!(!is_sgr(b"?", false, 'm'));
    assert!(!is_sgr(b"", true, 'm'), "more parameters than the parser keeps");
    assert!(!is_sgr(b"", false, 'H'));
}

proptest::proptest! {
    #[test]
    fn kept_lines_never_carry_anything_but_sgr(bytes in proptest::collection::vec(
        proptest::prop_oneof![
            proptest::sample::select(b"\x1b[];?:0123456789mHJ\x07\x9b\\P".to_vec()),
            proptest::num::u8::ANY,
        ],
        0..200,
    )) {
        let out = kept(&bytes);
        // Every ESC left is an SGR in its plain form.
        let mut rest = out.as_str();
        while let Some(at) = rest.find('\x1b') {
            let tail = &rest[at + 1..];
            let end = tail.find('m').expect("an SGR ends with m");
            assert!(tail.starts_with('['), "{out:?}");
            assert!(tail[1..end].bytes().all(|b| b.is_ascii_digit() || b == b';' || b == b':'), "{out:?}");
            rest = &tail[end + 1..];
        }
        assert!(!out.chars().any(|c| c.is_control() && c != '\x1b' && c != '\t'), "{out:?}");
        let stripped = strip_bytes(&bytes);
        assert!(!stripped.contains('\x1b'), "{stripped:?}");
    }
}
