//! Where one SIP message ends in a byte stream (RFC 3261 §18.3: Content-Length frames
//! messages over stream transports).

use memchr::memchr;

/// Longest header section accepted before the stream is declared broken.
pub const MAX_HEADER_LEN: usize = 64 * 1024;
/// Longest body accepted; larger Content-Length values are treated as garbage.
pub const MAX_BODY_LEN: usize = 16 * 1024 * 1024;
/// Longest start line accepted (request URIs are short; this bounds rescans of a
/// start line that arrives a byte at a time).
pub const MAX_START_LINE: usize = 8 * 1024;
/// Longest method token in a request line.
const MAX_METHOD_LEN: usize = 32;

/// Result of looking for one complete SIP message at the start of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// The first `n` bytes (leading CRLF keep-alives included) complete one message.
    Complete(usize),
    /// More bytes are needed.
    Incomplete,
    /// Not a SIP message here (bad start line, oversized headers, bad Content-Length):
    /// the caller should drop bytes and `resync`.
    Invalid,
}

/// Bytes to drop before the next plausible SIP start line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Resync {
    /// Leading CRLF / LF keep-alives (RFC 5626 pings): harmless, not garbage.
    pub keepalive: usize,
    /// Bytes that are neither keep-alives nor part of a SIP message.
    pub garbage: usize,
    /// Whether a start line (possibly still incomplete) begins after the dropped bytes.
    pub found: bool,
}

impl Resync {
    pub fn total(&self) -> usize {
        self.keepalive + self.garbage
    }
}

fn skip_keepalives(buf: &[u8]) -> usize {
    buf.iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count()
}

/// Whether `line` (without its line ending, or a prefix of a line still arriving
/// when `complete` is false) can be a SIP start line.
///
/// Requests: `METHOD SP (sip:|sips:|tel:)... SP SIP/2.0`; responses: `SIP/2.0 SP`.
pub fn looks_like_start_line(line: &[u8], complete: bool) -> bool {
    const RESPONSE: &[u8] = b"SIP/2.0 ";
    if line.starts_with(RESPONSE) || (!complete && !line.is_empty() && RESPONSE.starts_with(line)) {
        return true;
    }
    let method_len = line
        .iter()
        .take(MAX_METHOD_LEN + 1)
        .take_while(|&&b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b))
        .count();
    if method_len == 0 || method_len > MAX_METHOD_LEN {
        return false;
    }
    let rest = line.get(method_len..).unwrap_or_default();
    let Some(uri) = rest.strip_prefix(b" ") else {
        return !complete && rest.is_empty();
    };
    let scheme_ok = [&b"sip:"[..], b"sips:", b"tel:"].iter().any(|s| {
        let n = s.len().min(uri.len());
        match (uri.get(..n), s.get(..n)) {
            (Some(a), Some(b)) => a.eq_ignore_ascii_case(b) && (n == s.len() || !complete),
            _ => false,
        }
    });
    if !scheme_ok {
        return false;
    }
    if complete {
        let trimmed = line.strip_suffix(b"\r").unwrap_or(line);
        trimmed.ends_with(b" SIP/2.0")
    } else {
        true
    }
}

/// Finds the first plausible SIP start line at a line boundary.
///
/// A trailing incomplete line that may still become a start line is kept (`found`
/// true); a trailing incomplete line longer than `MAX_START_LINE` is garbage.
pub fn resync(buf: &[u8]) -> Resync {
    let keepalive = skip_keepalives(buf);
    let mut pos = keepalive;
    loop {
        let rest = buf.get(pos..).unwrap_or_default();
        if rest.is_empty() {
            return Resync {
                keepalive,
                garbage: pos - keepalive,
                found: false,
            };
        }
        match memchr(b'\n', rest) {
            Some(nl) => {
                let line = rest.get(..nl).unwrap_or_default();
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if looks_like_start_line(line, true) {
                    return Resync {
                        keepalive,
                        garbage: pos - keepalive,
                        found: true,
                    };
                }
                pos += nl + 1;
            }
            None => {
                let keep = rest.len() <= MAX_START_LINE && looks_like_start_line(rest, false);
                let garbage = if keep { pos } else { buf.len() } - keepalive;
                return Resync {
                    keepalive,
                    garbage,
                    found: keep,
                };
            }
        }
    }
}

/// Length of the SIP message at the start of `buf`.
///
/// Leading CRLF keep-alives are skipped and counted in `Complete(n)`. The headers end
/// at the first empty line (CRLF CRLF, or bare LF LF); the body is `Content-Length`
/// (or compact `l`) bytes, 0 when absent (stream transports require the header, so
/// its absence means no body). Folded header lines are not inspected.
pub fn sip_message_len(buf: &[u8]) -> Framing {
    MessageScanner::new().scan(buf)
}

/// `sip_message_len` for a buffer that grows at its end between calls: lines already
/// examined are not examined again, so a message trickling in a byte per segment
/// costs linear, not quadratic, time. `reset` before scanning a different buffer start.
#[derive(Debug, Clone, Default)]
pub struct MessageScanner {
    /// End of the leading keep-alives.
    start: usize,
    /// Start of the next line to examine.
    line: usize,
    /// Where the search for the next LF resumes.
    search: usize,
    started: bool,
    content_length: Option<usize>,
    /// Message length once the header section ended.
    total: Option<usize>,
}

impl MessageScanner {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn reset(&mut self) {
        *self = Self::default();
    }

    /// Whether a start line was accepted (a message is in progress).
    pub fn in_progress(&self) -> bool {
        self.started
    }

    pub fn scan(&mut self, buf: &[u8]) -> Framing {
        if let Some(total) = self.total {
            return if buf.len() >= total {
                Framing::Complete(total)
            } else {
                Framing::Incomplete
            };
        }
        if self.search == self.start {
            self.start += skip_keepalives(buf.get(self.start..).unwrap_or_default());
            self.line = self.start;
            self.search = self.start;
        }
        loop {
            let rest = buf.get(self.search..).unwrap_or_default();
            let Some(i) = memchr(b'\n', rest) else {
                self.search = buf.len().max(self.search);
                let current = buf.get(self.line..).unwrap_or_default();
                if current.is_empty() {
                    return Framing::Incomplete;
                }
                if !self.started
                    && (current.len() > MAX_START_LINE || !looks_like_start_line(current, false))
                {
                    return Framing::Invalid;
                }
                if buf.len() - self.start > MAX_HEADER_LEN {
                    return Framing::Invalid;
                }
                return Framing::Incomplete;
            };
            let end = self.search + i;
            let next = end + 1;
            if next - self.start > MAX_HEADER_LEN {
                return Framing::Invalid;
            }
            let line = buf.get(self.line..end).unwrap_or_default();
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if !self.started {
                if !looks_like_start_line(line, true) {
                    return Framing::Invalid;
                }
                self.started = true;
            } else if line.is_empty() {
                let total = next + self.content_length.unwrap_or(0);
                self.total = Some(total);
                return if buf.len() >= total {
                    Framing::Complete(total)
                } else {
                    Framing::Incomplete
                };
            } else if self.content_length.is_none() {
                match content_length_of(line) {
                    Ok(Some(n)) => self.content_length = Some(n),
                    Ok(None) => {}
                    Err(()) => return Framing::Invalid,
                }
            }
            self.line = next;
            self.search = next;
        }
    }
}

/// `Ok(Some(n))` for a Content-Length / `l` header, `Ok(None)` for other headers,
/// `Err` for a Content-Length whose value is not a sane number.
fn content_length_of(line: &[u8]) -> Result<Option<usize>, ()> {
    let Some(colon) = memchr(b':', line) else {
        return Ok(None);
    };
    let name = line.get(..colon).unwrap_or_default().trim_ascii();
    if !(name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l")) {
        return Ok(None);
    }
    let value = line.get(colon + 1..).unwrap_or_default().trim_ascii();
    if value.is_empty() || value.len() > 9 || !value.iter().all(u8::is_ascii_digit) {
        return Err(());
    }
    let n = value
        .iter()
        .fold(0usize, |acc, d| acc * 10 + usize::from(d - b'0'));
    if n > MAX_BODY_LEN {
        return Err(());
    }
    Ok(Some(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &[u8] = b"INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/TCP x\r\nContent-Length: 4\r\n\r\nv=0\n";

    #[test]
    fn complete_and_incomplete() {
        assert_eq!(sip_message_len(INVITE), Framing::Complete(INVITE.len()));
        for n in 1..INVITE.len() {
            assert_eq!(sip_message_len(&INVITE[..n]), Framing::Incomplete, "{n}");
        }
        let mut two = INVITE.to_vec();
        two.extend_from_slice(b"SIP/2.0 200 OK\r\n\r\n");
        assert_eq!(sip_message_len(&two), Framing::Complete(INVITE.len()));
        assert_eq!(sip_message_len(&two[INVITE.len()..]), Framing::Complete(18));
    }

    #[test]
    fn compact_and_case_and_lf_only() {
        let m = b"BYE tel:+123 SIP/2.0\nl :  2\n\nab";
        assert_eq!(sip_message_len(m), Framing::Complete(m.len()));
        let m = b"ACK sips:x SIP/2.0\r\nCONTENT-LENGTH:0\r\n\r\nXYZ";
        assert_eq!(sip_message_len(m), Framing::Complete(m.len() - 3));
        let m = b"SIP/2.0 180 Ringing\r\nCall-ID: l: 5\r\n\r\n";
        assert_eq!(sip_message_len(m), Framing::Complete(m.len()));
    }

    #[test]
    fn keepalives_are_included() {
        let mut m = b"\r\n\r\n".to_vec();
        m.extend_from_slice(INVITE);
        assert_eq!(sip_message_len(&m), Framing::Complete(m.len()));
        assert_eq!(sip_message_len(b"\r\n\r\n"), Framing::Incomplete);
    }

    #[test]
    fn invalid_inputs() {
        assert_eq!(sip_message_len(b"GET / HTTP/1.1\r\n\r\n"), Framing::Invalid);
        assert_eq!(sip_message_len(b"\x16\x03\x01junk"), Framing::Invalid);
        assert_eq!(
            sip_message_len(b"SIP/2.0 200 OK\r\nContent-Length: -1\r\n\r\n"),
            Framing::Invalid
        );
        assert_eq!(
            sip_message_len(b"SIP/2.0 200 OK\r\nContent-Length: 99999999999\r\n\r\n"),
            Framing::Invalid
        );
        let mut big = b"SIP/2.0 200 OK\r\n".to_vec();
        while big.len() <= MAX_HEADER_LEN {
            big.extend_from_slice(b"X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
        }
        assert_eq!(sip_message_len(&big), Framing::Invalid);
    }

    #[test]
    fn scanner_matches_one_shot_byte_by_byte() {
        let mut m = b"\r\n".to_vec();
        m.extend_from_slice(INVITE);
        m.extend_from_slice(b"SIP/2.0 200 OK\r\n");
        let mut sc = MessageScanner::new();
        let mut result = Framing::Incomplete;
        for n in 1..=m.len() {
            result = sc.scan(&m[..n]);
            assert_eq!(result, sip_message_len(&m[..n]), "{n}");
            if result != Framing::Incomplete {
                break;
            }
        }
        assert_eq!(result, Framing::Complete(INVITE.len() + 2));
        let mut sc = MessageScanner::new();
        assert_eq!(sc.scan(b"GARBAGE LINE\n"), Framing::Invalid);
        assert_eq!(sc.scan(b"\x01"), Framing::Invalid);
    }

    #[test]
    fn start_lines() {
        assert!(looks_like_start_line(b"INVITE sip:a@b SIP/2.0", true));
        assert!(looks_like_start_line(b"FOO-BAR SIP:a SIP/2.0", true));
        assert!(looks_like_start_line(b"SIP/2.0 100 Trying", true));
        assert!(!looks_like_start_line(b"INVITE http://a SIP/2.0", true));
        assert!(!looks_like_start_line(b"INVITE sip:a@b HTTP/1.1", true));
        assert!(!looks_like_start_line(b"Via: SIP/2.0/UDP x", true));
        assert!(looks_like_start_line(b"INVITE si", false));
        assert!(looks_like_start_line(b"SIP/2", false));
        assert!(looks_like_start_line(b"REG", false));
        assert!(!looks_like_start_line(b"v=0", false));
    }

    #[test]
    fn resync_skips_garbage_to_start_line() {
        let mut m = b"\r\n\r\nbody tail\r\nmore\r\n".to_vec();
        let garbage = m.len() - 4;
        m.extend_from_slice(INVITE);
        assert_eq!(
            resync(&m),
            Resync {
                keepalive: 4,
                garbage,
                found: true
            }
        );
        // unfinished trailing line that may become a start line is kept
        assert_eq!(
            resync(b"junk\nSIP/2.0 2"),
            Resync {
                keepalive: 0,
                garbage: 5,
                found: true
            }
        );
        assert_eq!(
            resync(b"junk\n\x81\x7fbinary"),
            Resync {
                keepalive: 0,
                garbage: 13,
                found: false
            }
        );
        assert_eq!(resync(INVITE).total(), 0);
    }
}
