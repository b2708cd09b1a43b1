//! Byte-level helpers shared by the SIP and SDP parsers. Everything here works on
//! `&[u8]` and never indexes out of bounds: slices are taken with `get`.

/// RFC 3261 `token` characters (method names, header names, parameter names).
pub(crate) fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
        )
}

pub(crate) fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_token_char(b))
}

/// Trims SP, HTAB, CR and LF on both sides, so folded values (which keep their
/// CRLF + WS inside the span) come out clean.
pub(crate) fn trim(s: &[u8]) -> &[u8] {
    s.trim_ascii()
}

pub(crate) fn split_once(s: &[u8], sep: u8) -> Option<(&[u8], &[u8])> {
    let i = memchr::memchr(sep, s)?;
    let head = s.get(..i)?;
    let tail = s.get(i + 1..)?;
    Some((head, tail))
}

pub(crate) fn starts_with_ci(s: &[u8], prefix: &[u8]) -> bool {
    s.get(..prefix.len())
        .is_some_and(|h| h.eq_ignore_ascii_case(prefix))
}

/// Position of the closing `"` of a quoted string whose opening quote was just
/// before `s`; backslash escapes the next byte (RFC 3261 quoted-pair).
pub(crate) fn closing_quote(s: &[u8]) -> Option<usize> {
    let mut escaped = false;
    for (i, &b) in s.iter().enumerate() {
        if escaped {
            escaped = false;
        } else if b == b'\\' {
            escaped = true;
        } else if b == b'"' {
            return Some(i);
        }
    }
    None
}

/// Splits on `sep` outside quoted strings and outside `<...>`, so a comma inside
/// a display name or a URI does not split a Contact or Via list.
/// An unterminated quote swallows the rest of the input into one item.
pub(crate) struct SplitUnquoted<'a> {
    rest: Option<&'a [u8]>,
    sep: u8,
}

pub(crate) fn split_unquoted(s: &[u8], sep: u8) -> SplitUnquoted<'_> {
    SplitUnquoted { rest: Some(s), sep }
}

impl<'a> Iterator for SplitUnquoted<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let s = self.rest?;
        let mut in_quote = false;
        let mut escaped = false;
        let mut in_angle = false;
        for (i, &b) in s.iter().enumerate() {
            if in_quote {
                if escaped {
                    escaped = false;
                } else if b == b'\\' {
                    escaped = true;
                } else if b == b'"' {
                    in_quote = false;
                }
                continue;
            }
            match b {
                b'"' => in_quote = true,
                b'<' => in_angle = true,
                b'>' => in_angle = false,
                _ if b == self.sep && !in_angle => {
                    self.rest = s.get(i + 1..);
                    return s.get(..i);
                }
                _ => {}
            }
        }
        self.rest = None;
        Some(s)
    }
}

/// `;name=value;flag` parameters (leading `;` optional), names and values trimmed
/// of LWS (RFC 3261 allows `tag = x` and folding around `;` and `=`).
/// Values keep their quotes; use [`unquote`] where the caller wants the inside.
pub(crate) fn params(s: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    split_unquoted(s, b';').filter_map(|p| {
        let p = trim(p);
        if p.is_empty() {
            return None;
        }
        Some(match split_once(p, b'=') {
            Some((n, v)) => (trim(n), trim(v)),
            None => (p, &[][..]),
        })
    })
}

pub(crate) fn param<'a>(s: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    params(s)
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// Strips one pair of surrounding double quotes, if present.
pub(crate) fn unquote(s: &[u8]) -> &[u8] {
    match s {
        [b'"', inner @ .., b'"'] => inner,
        _ => s,
    }
}

/// Parses a run of ASCII digits into a u64, refusing anything else and overflow.
pub(crate) fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    let mut n: u64 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_respects_quotes_and_angles() {
        let v: Vec<&[u8]> = split_unquoted(br#""a,b" <sip:x,y@h>;p=1, <sip:z@h>"#, b',').collect();
        assert_eq!(
            v,
            vec![&br#""a,b" <sip:x,y@h>;p=1"#[..], &b" <sip:z@h>"[..]]
        );
    }

    #[test]
    fn params_trim_lws() {
        let p: Vec<_> = params(b";\r\n  tag = 98asjd8 ; lr").collect();
        assert_eq!(
            p,
            vec![(&b"tag"[..], &b"98asjd8"[..]), (&b"lr"[..], &b""[..])]
        );
    }

    #[test]
    fn digits() {
        assert_eq!(parse_u64(b"0009"), Some(9));
        assert_eq!(parse_u64(b"-1"), None);
        assert_eq!(parse_u64(b"36893488147419103232"), None);
        assert_eq!(parse_u64(b""), None);
    }
}
