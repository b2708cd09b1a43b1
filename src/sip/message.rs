//! One SIP message as a view over the captured bytes: the start line is parsed,
//! header fields are indexed as (name, value) spans, and everything else is read
//! lazily by the accessors.

use std::fmt;

use smallvec::SmallVec;

use super::error::SipError;
use super::lex::{
    is_token, param, params, parse_u64, split_once, split_unquoted, starts_with_ci, trim, unquote,
};
use super::multipart;
use super::name_addr::NameAddr;

/// Header fields beyond this make the message `TooManyHeaders`; real traffic has
/// 10-40, RFC 4475 longreq has 60.
pub const MAX_HEADERS: usize = 128;
/// Start line plus header section, leading keep-alive CRLFs included.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// Inline capacity: a typical INVITE fits without touching the heap.
const INLINE_HEADERS: usize = 32;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method<'a> {
    Invite,
    Ack,
    Bye,
    Cancel,
    Register,
    Options,
    Update,
    Prack,
    Info,
    Refer,
    Notify,
    Subscribe,
    Message,
    Publish,
    Other(&'a [u8]),
}

impl<'a> Method<'a> {
    /// Methods are case-sensitive (RFC 3261 §7.1): `invite` is `Other(b"invite")`.
    pub fn from_bytes(b: &'a [u8]) -> Method<'a> {
        match b {
            b"INVITE" => Method::Invite,
            b"ACK" => Method::Ack,
            b"BYE" => Method::Bye,
            b"CANCEL" => Method::Cancel,
            b"REGISTER" => Method::Register,
            b"OPTIONS" => Method::Options,
            b"UPDATE" => Method::Update,
            b"PRACK" => Method::Prack,
            b"INFO" => Method::Info,
            b"REFER" => Method::Refer,
            b"NOTIFY" => Method::Notify,
            b"SUBSCRIBE" => Method::Subscribe,
            b"MESSAGE" => Method::Message,
            b"PUBLISH" => Method::Publish,
            other => Method::Other(other),
        }
    }

    pub fn as_bytes(&self) -> &'a [u8] {
        match *self {
            Method::Invite => b"INVITE",
            Method::Ack => b"ACK",
            Method::Bye => b"BYE",
            Method::Cancel => b"CANCEL",
            Method::Register => b"REGISTER",
            Method::Options => b"OPTIONS",
            Method::Update => b"UPDATE",
            Method::Prack => b"PRACK",
            Method::Info => b"INFO",
            Method::Refer => b"REFER",
            Method::Notify => b"NOTIFY",
            Method::Subscribe => b"SUBSCRIBE",
            Method::Message => b"MESSAGE",
            Method::Publish => b"PUBLISH",
            Method::Other(b) => b,
        }
    }
}

impl fmt::Display for Method<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(self.as_bytes()))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartLine<'a> {
    Request { method: Method<'a>, uri: &'a [u8] },
    Response { code: u16, reason: &'a [u8] },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CSeq<'a> {
    pub seq: u32,
    pub method: Method<'a>,
}

/// Headers the tracker asks for, resolved once at parse time so lookups compare a
/// byte instead of a case-insensitive name, and compact forms need no second pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Other,
    CallId,
    From,
    To,
    Via,
    Contact,
    ContentLength,
    ContentType,
    ContentEncoding,
    Supported,
    Subject,
    Event,
    ReferTo,
    ReferredBy,
    SessionExpires,
    AllowEvents,
    CSeq,
    Reason,
    PAssertedIdentity,
    RemotePartyId,
}

fn kind_of(name: &[u8]) -> Kind {
    if let [c] = name {
        return match c.to_ascii_lowercase() {
            b'i' => Kind::CallId,
            b'f' => Kind::From,
            b't' => Kind::To,
            b'v' => Kind::Via,
            b'm' => Kind::Contact,
            b'l' => Kind::ContentLength,
            b'c' => Kind::ContentType,
            b'e' => Kind::ContentEncoding,
            b'k' => Kind::Supported,
            b's' => Kind::Subject,
            b'o' => Kind::Event,
            b'r' => Kind::ReferTo,
            b'b' => Kind::ReferredBy,
            b'x' => Kind::SessionExpires,
            b'u' => Kind::AllowEvents,
            _ => Kind::Other,
        };
    }
    const FULL: &[(&[u8], Kind)] = &[
        (b"to", Kind::To),
        (b"via", Kind::Via),
        (b"from", Kind::From),
        (b"cseq", Kind::CSeq),
        (b"event", Kind::Event),
        (b"reason", Kind::Reason),
        (b"call-id", Kind::CallId),
        (b"contact", Kind::Contact),
        (b"subject", Kind::Subject),
        (b"refer-to", Kind::ReferTo),
        (b"supported", Kind::Supported),
        (b"referred-by", Kind::ReferredBy),
        (b"allow-events", Kind::AllowEvents),
        (b"content-type", Kind::ContentType),
        (b"content-length", Kind::ContentLength),
        (b"remote-party-id", Kind::RemotePartyId),
        (b"session-expires", Kind::SessionExpires),
        (b"content-encoding", Kind::ContentEncoding),
        (b"p-asserted-identity", Kind::PAssertedIdentity),
    ];
    FULL.iter()
        .find(|(n, _)| n.len() == name.len() && n.eq_ignore_ascii_case(name))
        .map_or(Kind::Other, |&(_, k)| k)
}

/// Offsets into `Message::buf`; `u32` is enough because the header section is
/// capped at `MAX_HEADER_BYTES`.
#[derive(Clone, Copy, Debug)]
struct Field {
    kind: Kind,
    name: (u32, u32),
    value: (u32, u32),
}

/// A parsed SIP message borrowing the capture buffer.
#[derive(Clone, Debug)]
pub struct Message<'a> {
    buf: &'a [u8],
    start: StartLine<'a>,
    fields: SmallVec<[Field; INLINE_HEADERS]>,
    body: &'a [u8],
    len: usize,
}

const SIP_2_0: &[u8] = b"SIP/2.0";

/// Parses the first SIP message in `buf`.
///
/// Lenient where real PBX traffic deviates (LF-only lines, folding, compact and
/// odd-case names, trailing spaces on the start line, non-UTF-8 bytes anywhere),
/// strict where a call tracker would be misled: see [`SipError`].
///
/// Framing: leading CRLFs (keep-alives) are skipped; the body is `Content-Length`
/// bytes when the header is present (error if fewer are available), else the rest
/// of `buf` (right for UDP; on TCP a missing Content-Length is a protocol error
/// anyway). [`Message::len`] says how many bytes of `buf` the message used.
pub fn parse(buf: &[u8]) -> Result<Message<'_>, SipError> {
    let first = buf
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .ok_or(SipError::Empty)?;
    if first >= MAX_HEADER_BYTES {
        return Err(SipError::HeadersTooLarge {
            max: MAX_HEADER_BYTES,
        });
    }
    let (line, mut pos) = next_line(buf, first)?;
    let start = parse_start_line(line)?;

    let mut fields: SmallVec<[Field; INLINE_HEADERS]> = SmallVec::new();
    let body_start = loop {
        if pos > MAX_HEADER_BYTES {
            return Err(SipError::HeadersTooLarge {
                max: MAX_HEADER_BYTES,
            });
        }
        let line_start = pos;
        let (line, next) = next_line(buf, pos)?;
        pos = next;
        if line.is_empty() {
            break pos;
        }
        let bad = SipError::BadHeaderLine { offset: line_start };
        let colon = memchr::memchr(b':', line).ok_or(bad)?;
        let name = line.get(..colon).unwrap_or_default().trim_ascii_end();
        if !is_token(name) {
            // Also catches a continuation line right after the start line.
            return Err(bad);
        }
        let colon = line_start + colon;
        let mut value_end = line_start + line.len();
        // Folded continuation lines extend the value span.
        while buf.get(pos).is_some_and(|&b| b == b' ' || b == b'\t') {
            let (cont, next) = next_line(buf, pos)?;
            value_end = pos + cont.len();
            pos = next;
        }
        if fields.len() >= MAX_HEADERS {
            return Err(SipError::TooManyHeaders { max: MAX_HEADERS });
        }
        let (vs, ve) = trimmed_span(buf, colon, value_end);
        let (vs, ve) = (
            u32::try_from(vs).map_err(|_| bad)?,
            u32::try_from(ve).map_err(|_| bad)?,
        );
        let ns = u32::try_from(line_start).map_err(|_| bad)?;
        let ne = u32::try_from(line_start + name.len()).map_err(|_| bad)?;
        fields.push(Field {
            kind: kind_of(name),
            name: (ns, ne),
            value: (vs, ve),
        });
    };

    let mut msg = Message {
        buf,
        start,
        fields,
        body: &[],
        len: body_start,
    };

    let available = buf.len().saturating_sub(body_start);
    let body_len = match msg.first_of(Kind::ContentLength) {
        Some(v) => {
            let n = parse_u64(trim(v)).ok_or(SipError::BadContentLength)?;
            let n = usize::try_from(n).map_err(|_| SipError::BadContentLength)?;
            if n > available {
                return Err(SipError::BodyTruncated {
                    declared: n,
                    available,
                });
            }
            n
        }
        None => available,
    };
    msg.len = body_start + body_len;
    msg.body = buf.get(body_start..msg.len).unwrap_or_default();

    msg.validate()?;
    Ok(msg)
}

/// The line starting at `pos` without its CR LF / LF, and the offset after it.
fn next_line(buf: &[u8], pos: usize) -> Result<(&[u8], usize), SipError> {
    let rest = buf.get(pos..).ok_or(SipError::Incomplete)?;
    let lf = memchr::memchr(b'\n', rest).ok_or(SipError::Incomplete)?;
    let line = rest.get(..lf).unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    Ok((line, pos + lf + 1))
}

/// Value span after the `:` with surrounding LWS (including folding) removed.
fn trimmed_span(buf: &[u8], colon: usize, end: usize) -> (usize, usize) {
    let start = colon + 1;
    let Some(v) = buf.get(start..end) else {
        return (end, end);
    };
    let lead = v.len() - v.trim_ascii_start().len();
    let trail = v.len() - v.trim_ascii_end().len();
    if lead == v.len() {
        return (end, end);
    }
    (start + lead, end - trail)
}

fn parse_start_line(line: &[u8]) -> Result<StartLine<'_>, SipError> {
    // Trailing spaces are invalid (RFC 4475 trws) but harmless; accept them.
    let line = line.trim_ascii_end();
    if starts_with_ci(line, b"SIP/") {
        let (version, rest) = split_once(line, b' ').ok_or(SipError::BadStartLine)?;
        if !version.eq_ignore_ascii_case(SIP_2_0) {
            return Err(SipError::BadVersion);
        }
        let (code, reason) = split_once(rest, b' ').unwrap_or((rest, &[]));
        let code = match code {
            [a, b, c] if a.is_ascii_digit() && b.is_ascii_digit() && c.is_ascii_digit() => {
                u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0')
            }
            _ => return Err(SipError::BadStatusCode),
        };
        if !(100..=699).contains(&code) {
            return Err(SipError::BadStatusCode);
        }
        return Ok(StartLine::Response { code, reason });
    }
    let (method, rest) = split_once(line, b' ').ok_or(SipError::BadStartLine)?;
    if !is_token(method) {
        return Err(SipError::BadMethod);
    }
    let sp = memchr::memrchr(b' ', rest).ok_or(SipError::BadStartLine)?;
    let (uri, version) = rest.split_at_checked(sp).ok_or(SipError::BadStartLine)?;
    let version = version.get(1..).unwrap_or_default();
    if !version.eq_ignore_ascii_case(SIP_2_0) {
        return Err(if starts_with_ci(version, b"SIP/") {
            SipError::BadVersion
        } else {
            SipError::BadStartLine
        });
    }
    // Extra spaces between elements (lwsstart) or inside the URI (lwsruri) land
    // here, as does a URI in <> (ltgtruri).
    let uri_ok = uri
        .iter()
        .all(|&b| b > b' ' && b != 0x7f && b != b'<' && b != b'>')
        && split_once(uri, b':').is_some_and(|(scheme, rest)| {
            scheme.first().is_some_and(u8::is_ascii_alphabetic) && !rest.is_empty()
        });
    if !uri_ok {
        return Err(SipError::BadRequestUri);
    }
    Ok(StartLine::Request {
        method: Method::from_bytes(method),
        uri,
    })
}

impl<'a> Message<'a> {
    fn validate(&self) -> Result<(), SipError> {
        if let Some(v) = self.first_of(Kind::CSeq) {
            let cseq = parse_cseq(v).ok_or(SipError::BadCSeq)?;
            if let StartLine::Request { method, .. } = self.start {
                if cseq.method != method {
                    return Err(SipError::CSeqMismatch);
                }
            }
        }
        // The tracker keys dialogs on From/To tags: structurally broken values
        // (RFC 4475 quotbal) must not yield a half-read tag.
        for kind in [Kind::From, Kind::To] {
            if let Some(v) = self.first_of(kind) {
                if let Err(e @ (SipError::UnterminatedQuote | SipError::UnterminatedAngle)) =
                    NameAddr::parse(v)
                {
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    pub fn start(&self) -> &StartLine<'a> {
        &self.start
    }

    pub fn method(&self) -> Option<Method<'a>> {
        match self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    pub fn status_code(&self) -> Option<u16> {
        match self.start {
            StartLine::Response { code, .. } => Some(code),
            StartLine::Request { .. } => None,
        }
    }

    /// Bytes of the input this message used: leading CRLFs, start line, headers
    /// and body. A following message (or junk) in the same buffer starts here.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: a parsed message has at least a start line.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes of this message (`len()` bytes from the start of the input).
    pub fn raw(&self) -> &'a [u8] {
        self.buf.get(..self.len).unwrap_or(self.buf)
    }

    fn span(&self, (s, e): (u32, u32)) -> &'a [u8] {
        self.buf.get(s as usize..e as usize).unwrap_or_default()
    }

    /// All header fields in order as raw (name, value) pairs.
    pub fn fields(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> + '_ {
        self.fields
            .iter()
            .map(|f| (self.span(f.name), self.span(f.value)))
    }

    /// First value of a header; `name` is case-insensitive and compact forms are
    /// equivalent (`header("call-id")` finds `i:`, `header("i")` finds `Call-ID:`).
    /// Values are trimmed. A folded value is returned as its raw span, so it may
    /// contain CR LF followed by SP/HTAB; the typed accessors treat those as LWS.
    /// Comma-separated lists are not split (see [`Message::headers`]).
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers(name).next()
    }

    /// Every value of a header, in message order (one item per header line).
    pub fn headers<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'a [u8]> + 's {
        let name = name.as_bytes();
        let kind = kind_of(name);
        self.fields
            .iter()
            .filter(move |f| {
                f.kind == kind
                    && (kind != Kind::Other || self.span(f.name).eq_ignore_ascii_case(name))
            })
            .map(|f| self.span(f.value))
    }

    fn first_of(&self, kind: Kind) -> Option<&'a [u8]> {
        self.fields
            .iter()
            .find(|f| f.kind == kind)
            .map(|f| self.span(f.value))
    }

    fn all_of(&self, kind: Kind) -> impl Iterator<Item = &'a [u8]> + '_ {
        self.fields
            .iter()
            .filter(move |f| f.kind == kind)
            .map(|f| self.span(f.value))
    }

    pub fn call_id(&self) -> Option<&'a [u8]> {
        self.first_of(Kind::CallId).filter(|v| !v.is_empty())
    }

    pub fn from(&self) -> Option<NameAddr<'a>> {
        NameAddr::parse(self.first_of(Kind::From)?).ok()
    }

    pub fn to(&self) -> Option<NameAddr<'a>> {
        NameAddr::parse(self.first_of(Kind::To)?).ok()
    }

    /// The first Contact; `Contact: *` (REGISTER remove-all) gives `None`.
    pub fn contact(&self) -> Option<NameAddr<'a>> {
        let first = split_unquoted(self.first_of(Kind::Contact)?, b',').next()?;
        if trim(first) == b"*" {
            return None;
        }
        NameAddr::parse(first).ok()
    }

    /// Refer-To (RFC 3515; compact `r`): where a REFER sends the call.
    pub fn refer_to(&self) -> Option<NameAddr<'a>> {
        NameAddr::parse(self.first_of(Kind::ReferTo)?).ok()
    }

    pub fn cseq(&self) -> Option<CSeq<'a>> {
        parse_cseq(self.first_of(Kind::CSeq)?)
    }

    /// `branch` of the topmost Via (first value of the first Via header).
    pub fn top_via_branch(&self) -> Option<&'a [u8]> {
        let via = split_unquoted(self.first_of(Kind::Via)?, b',').next()?;
        let (_, params) = split_once(via, b';')?;
        param(params, b"branch").filter(|b| !b.is_empty())
    }

    pub fn content_type(&self) -> Option<&'a [u8]> {
        self.first_of(Kind::ContentType).filter(|v| !v.is_empty())
    }

    /// `Content-Length` bytes after the blank line, or the rest of the input
    /// without a Content-Length.
    pub fn body(&self) -> &'a [u8] {
        self.body
    }

    /// The SDP of this message: the body when Content-Type is application/sdp (or
    /// absent and the body starts with `v=0`), or the application/sdp part of a
    /// multipart body.
    pub fn sdp(&self) -> Option<&'a [u8]> {
        let body = self.body;
        if body.is_empty() {
            return None;
        }
        match self.content_type() {
            Some(ct) => {
                let media_type = trim(split_once(ct, b';').map_or(ct, |(t, _)| t));
                if media_type.eq_ignore_ascii_case(b"application/sdp") {
                    Some(body)
                } else if starts_with_ci(media_type, b"multipart/") {
                    multipart::find_part(body, ct, b"application/sdp")
                } else {
                    None
                }
            }
            None => body.starts_with(b"v=0").then_some(body),
        }
    }

    /// `(protocol, cause)` of the first Reason value that has a numeric cause,
    /// e.g. `Reason: SIP ;cause=200 ;text="Call completed elsewhere"` gives
    /// `(b"SIP", 200)`.
    pub fn reason_cause(&self) -> Option<(&'a [u8], u16)> {
        self.all_of(Kind::Reason)
            .flat_map(|v| split_unquoted(v, b','))
            .find_map(|item| {
                let (proto, ps) = split_once(item, b';')?;
                let cause = parse_u64(unquote(param(ps, b"cause")?))?;
                Some((trim(proto), u16::try_from(cause).ok()?))
            })
    }

    /// P-Asserted-Identity (first value), else Remote-Party-ID.
    pub fn p_asserted_identity(&self) -> Option<NameAddr<'a>> {
        let first_ok = |kind| {
            self.all_of(kind)
                .flat_map(|v| split_unquoted(v, b','))
                .find_map(|v| NameAddr::parse(v).ok())
        };
        first_ok(Kind::PAssertedIdentity).or_else(|| first_ok(Kind::RemotePartyId))
    }

    /// Every header parameter of the first value of `name` (e.g. `Session-Expires`'s
    /// `refresher`), trimmed; handy for fields without a typed accessor.
    pub fn header_params<'s>(
        &'s self,
        name: &'s str,
    ) -> impl Iterator<Item = (&'a [u8], &'a [u8])> + 's {
        self.header(name)
            .and_then(|v| split_once(v, b';'))
            .map(|(_, p)| p)
            .into_iter()
            .flat_map(params)
    }
}

fn parse_cseq(v: &[u8]) -> Option<CSeq<'_>> {
    let v = trim(v);
    let digits_end = v
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(v.len());
    let (digits, rest) = v.split_at_checked(digits_end)?;
    let seq = u32::try_from(parse_u64(digits)?).ok()?;
    // At least one LWS (possibly folded) between number and method.
    let method = trim(rest);
    if method.len() == rest.len() || !is_token(method) {
        return None;
    }
    Some(CSeq {
        seq,
        method: Method::from_bytes(method),
    })
}
