//! Just enough MIME multipart (RFC 2046) to find the SDP inside
//! `multipart/mixed` bodies (SIP-I/SIP-T ISUP + SDP, RFC 4475 mpart01).

use super::lex::{param, split_once, trim, unquote};

/// Parts looked at before giving up; real bodies have two or three.
const MAX_PARTS: usize = 16;
/// RFC 2046 limits boundaries to 70 characters.
const MAX_BOUNDARY: usize = 70;

/// Content of the first part whose Content-Type media type is `want`.
pub(crate) fn find_part<'a>(body: &'a [u8], content_type: &[u8], want: &[u8]) -> Option<&'a [u8]> {
    let (_, ct_params) = split_once(content_type, b';')?;
    let boundary = unquote(param(ct_params, b"boundary")?);
    if boundary.is_empty() || boundary.len() > MAX_BOUNDARY {
        return None;
    }
    let finder = memchr::memmem::Finder::new(boundary);

    // Each delimiter is "--" boundary at the start of a line; the CRLF before it
    // belongs to the delimiter, not to the preceding part.
    let mut prev_end: Option<usize> = None;
    let mut parts = 0;
    for at in finder.find_iter(body) {
        let Some(dash) = at.checked_sub(2) else {
            continue;
        };
        if body.get(dash..at) != Some(&b"--"[..]) {
            continue;
        }
        let line_start = dash == 0 || body.get(dash - 1) == Some(&b'\n');
        if !line_start {
            continue;
        }
        if let Some(start) = prev_end {
            let mut end = dash;
            if end > start && body.get(end - 1) == Some(&b'\n') {
                end -= 1;
                if end > start && body.get(end - 1) == Some(&b'\r') {
                    end -= 1;
                }
            }
            if let Some(content) = body.get(start..end).and_then(|p| part_content(p, want)) {
                return Some(content);
            }
            parts += 1;
            if parts >= MAX_PARTS {
                return None;
            }
        }
        let after = at + boundary.len();
        if body.get(after..after + 2) == Some(&b"--"[..]) {
            return None;
        }
        // The part begins after the rest of the delimiter line.
        let rest = body.get(after..)?;
        prev_end = Some(after + memchr::memchr(b'\n', rest)? + 1);
    }
    None
}

/// The content of one part if its Content-Type matches `want` (no headers means
/// text/plain, RFC 2046 §5.1).
fn part_content<'a>(part: &'a [u8], want: &[u8]) -> Option<&'a [u8]> {
    let mut pos = 0;
    let mut matches = false;
    loop {
        let rest = part.get(pos..)?;
        let lf = memchr::memchr(b'\n', rest)?;
        let line = rest.get(..lf)?;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        pos += lf + 1;
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = split_once(line, b':') {
            if trim(name).eq_ignore_ascii_case(b"content-type") {
                let media_type = trim(split_once(value, b';').map_or(value, |(t, _)| t));
                matches = media_type.eq_ignore_ascii_case(want);
            }
        }
    }
    if matches {
        part.get(pos..)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_sdp_part() {
        let body = b"--b1\r\nContent-Type: application/isup\r\n\r\n\x01\x00\r\n--b1\r\n\
Content-Type: application/sdp\r\n\r\nv=0\r\nm=audio 4000 RTP/AVP 0\r\n\r\n--b1--\r\n";
        assert_eq!(
            find_part(body, b"multipart/mixed;boundary=b1", b"application/sdp"),
            Some(&b"v=0\r\nm=audio 4000 RTP/AVP 0\r\n"[..])
        );
        assert!(find_part(body, b"multipart/mixed; boundary=\"b1\"", b"text/plain").is_none());
        assert!(find_part(body, b"multipart/mixed", b"application/sdp").is_none());
    }
}
