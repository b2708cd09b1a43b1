//! From / To / Contact / P-Asserted-Identity values: `"Bob" <sip:bob@h>;tag=x`
//! (name-addr) and `sip:bob@h;tag=x` (addr-spec, where the parameters belong to the
//! header, not the URI).

use super::error::SipError;
use super::lex::{closing_quote, param, split_once, trim, unquote};
use super::uri::Uri;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NameAddr<'a> {
    /// Raw display name: for a quoted one the bytes between the quotes with
    /// backslash escapes left in place; for an unquoted one the trimmed tokens.
    /// Any bytes (UTF-8 or not). `None` when absent or empty.
    pub display: Option<&'a [u8]>,
    pub uri: Uri<'a>,
    /// The header's `tag` parameter.
    pub tag: Option<&'a [u8]>,
    /// All header parameters as written, starting at the first `;` (may be empty;
    /// may contain folding CRLF + WS).
    pub params: &'a [u8],
}

impl<'a> NameAddr<'a> {
    pub fn parse(value: &'a [u8]) -> Result<NameAddr<'a>, SipError> {
        let v = trim(value);
        if v.is_empty() {
            return Err(SipError::BadNameAddr);
        }
        let (display, rest) = if let Some(q) = v.strip_prefix(b"\"") {
            let end = closing_quote(q).ok_or(SipError::UnterminatedQuote)?;
            let display = q.get(..end).unwrap_or_default();
            let rest = trim(q.get(end + 1..).unwrap_or_default());
            if !rest.starts_with(b"<") {
                return Err(SipError::BadNameAddr);
            }
            (Some(display), rest)
        } else if let Some(lt) = memchr::memchr(b'<', v) {
            // Unquoted display name: tokens, though phones also put commas and
            // UTF-8 here (RFC 4475 baddn); a tracker takes them as written.
            let (display, rest) = v.split_at_checked(lt).ok_or(SipError::BadNameAddr)?;
            let display = trim(display);
            if memchr::memchr(b'"', display).is_some() {
                return Err(SipError::BadNameAddr);
            }
            (Some(display), rest)
        } else {
            (None, v)
        };
        let display = display.filter(|d| !d.is_empty());

        let (uri_raw, params) = if let Some(inner) = rest.strip_prefix(b"<") {
            let (uri_raw, after) = split_once(inner, b'>').ok_or(SipError::UnterminatedAngle)?;
            // Spaces inside <> are invalid (RFC 4475 badaspec) but unambiguous.
            (trim(uri_raw), trim(after))
        } else {
            match memchr::memchr(b';', rest) {
                Some(i) => {
                    let (u, p) = rest.split_at_checked(i).ok_or(SipError::BadNameAddr)?;
                    (trim(u), p)
                }
                None => (rest, &[][..]),
            }
        };
        if uri_raw.is_empty() {
            return Err(SipError::BadNameAddr);
        }
        let uri = Uri::parse(uri_raw)?;
        let tag = param(params, b"tag").map(unquote).filter(|t| !t.is_empty());
        Ok(NameAddr {
            display,
            uri,
            tag,
            params,
        })
    }
}
