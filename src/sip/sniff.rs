//! Cheap "is this SIP?" test for UDP payloads on ports not configured as SIP.
//! RTP and most other binary protocols fail on the first byte.

use super::lex::{is_token_char, starts_with_ci};

/// Longest method name the sniffer accepts; real ones are at most 9 bytes.
const MAX_METHOD: usize = 32;
/// The start line must end within this many bytes.
const MAX_START_LINE: usize = 2048;

/// True when `payload` starts like a SIP response (`SIP/2.0 ` + digit) or request
/// (`<token> sip:|sips:|tel:... SIP/2.0` on the first line).
pub fn looks_like_sip(payload: &[u8]) -> bool {
    if let Some(rest) = payload.strip_prefix(b"SIP/2.0 ") {
        return rest.first().is_some_and(u8::is_ascii_digit);
    }
    let Some(sp) = payload
        .iter()
        .take(MAX_METHOD + 1)
        .position(|&b| !is_token_char(b))
    else {
        return false;
    };
    if sp == 0 || payload.get(sp) != Some(&b' ') {
        return false;
    }
    let rest = payload.get(sp + 1..).unwrap_or_default();
    if !(starts_with_ci(rest, b"sip:")
        || starts_with_ci(rest, b"sips:")
        || starts_with_ci(rest, b"tel:"))
    {
        return false;
    }
    let head = payload.get(..MAX_START_LINE).unwrap_or(payload);
    let Some(lf) = memchr::memchr(b'\n', head) else {
        return false;
    };
    let line = head.get(..lf).unwrap_or_default().trim_ascii_end();
    line.len() >= 8
        && line
            .get(line.len() - 8..)
            .is_some_and(|t| t.eq_ignore_ascii_case(b" SIP/2.0"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs() {
        assert!(looks_like_sip(b"SIP/2.0 200 OK\r\n"));
        assert!(looks_like_sip(b"INVITE sip:bob@h SIP/2.0\r\nVia: x\r\n"));
        assert!(looks_like_sip(b"BYE tel:+123 SIP/2.0\n"));
        assert!(looks_like_sip(b"OPTIONS sips:h SIP/2.0  \r\n"));
        assert!(!looks_like_sip(b"SIP/2.0 OK"));
        assert!(!looks_like_sip(b"GET / HTTP/1.1\r\n"));
        assert!(!looks_like_sip(b"INVITE sip:bob@h HTTP/1.1\r\n"));
        assert!(!looks_like_sip(b"INVITE sip:bob@h SIP/2.0"));
        assert!(!looks_like_sip(b"\x80\x00\x12\x34\x00\x00\x00\xa0"));
        assert!(!looks_like_sip(b""));
        assert!(!looks_like_sip(b" sip:x SIP/2.0\r\n"));
    }
}
