//! Subjects are `<prefix>.<sensor>.<type>`. A sensor name is free text (up
//! to 64 characters); a subject token may not hold `.`, `*`, `>` or
//! whitespace, so such characters are escaped as `%XX` (and `%` itself),
//! which keeps every token printable ASCII and reversible.

use super::super::model::EventType;

/// The subject an event of `sensor` and `kind` is published on. The type's
/// own dot is kept (`call.ringing`): subscribers may filter on
/// `<prefix>.*.call.>`.
pub fn subject(prefix: &str, sensor: &str, kind: EventType) -> String {
    format!("{prefix}.{}.{}", encode_token(sensor), kind.subject_token())
}

/// The sensor and event type a subject names, when it is one of ours.
pub fn parse_subject(prefix: &str, subject: &str) -> Option<(String, EventType)> {
    let rest = subject.strip_prefix(prefix)?.strip_prefix('.')?;
    let (sensor, kind) = rest.split_once('.')?;
    Some((decode_token(sensor)?, kind.parse().ok()?))
}

fn plain(b: u8) -> bool {
    b.is_ascii_graphic() && !matches!(b, b'.' | b'*' | b'>' | b'%')
}

/// One subject token holding `text`. The empty string, which would leave an
/// empty token, becomes a lone `%` (never produced otherwise).
pub fn encode_token(text: &str) -> String {
    if text.is_empty() {
        return "%".into();
    }
    let mut out = String::with_capacity(text.len());
    for &b in text.as_bytes() {
        if plain(b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The text `encode_token` made `token` from; `None` for anything it
/// cannot have made.
pub fn decode_token(token: &str) -> Option<String> {
    if token == "%" {
        return Some(String::new());
    }
    let bytes = token.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = token.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b if plain(b) => {
                out.push(b);
                i += 1;
            }
            _ => return None,
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_stay_legal() {
        for name in [
            "berlin-pbx",
            "site.b",
            "a*b>c",
            "two words\tand tab",
            "100%",
            "Zürich",
            "",
            "%41",
        ] {
            let t = encode_token(name);
            assert!(!t.is_empty(), "{name:?}");
            assert!(
                t.bytes()
                    .all(|b| b.is_ascii_graphic() && !matches!(b, b'.' | b'*' | b'>')),
                "{name:?} -> {t:?}"
            );
            assert_eq!(decode_token(&t).as_deref(), Some(name), "{t:?}");
        }
        assert_eq!(
            encode_token("berlin-pbx"),
            "berlin-pbx",
            "plain names unchanged"
        );
        assert_eq!(encode_token("site.b"), "site%2Eb");
        assert_eq!(decode_token("%zz"), None);
        assert_eq!(decode_token("%4"), None);
        assert_eq!(decode_token("a.b"), None);
    }

    #[test]
    fn subjects_name_sensor_and_type() {
        let s = subject("pbxbridge", "site.b", EventType::CallRinging);
        assert_eq!(s, "pbxbridge.site%2Eb.call.ringing");
        assert_eq!(
            parse_subject("pbxbridge", &s),
            Some(("site.b".to_owned(), EventType::CallRinging))
        );
        let s = subject("acme.pbx", "x", EventType::NoteAdded);
        assert_eq!(
            parse_subject("acme.pbx", &s),
            Some(("x".to_owned(), EventType::NoteAdded))
        );
        assert_eq!(parse_subject("pbxbridge", "other.x.call.ringing"), None);
        assert_eq!(
            parse_subject("pbxbridge", "pbxbridge.x.call.exploded"),
            None
        );
    }
}
