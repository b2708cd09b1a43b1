//! SIP / SIPS / tel URIs, as far as the call tracker reads them: who (user) and where
//! (host, port). Everything stays raw: escapes are not decoded, so `%40` in a user
//! part is still `%40` and numbers are normalised later by `matching`.

use super::error::SipError;
use super::lex::{is_token_char, split_once};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    Sip,
    Sips,
    Tel,
    Other,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Uri<'a> {
    pub scheme: Scheme,
    /// userinfo without the password; for `tel:` the number up to the first `;`.
    pub user: Option<&'a [u8]>,
    /// Without the brackets of an IPv6 reference; empty for `tel:` and unknown schemes.
    pub host: &'a [u8],
    pub port: Option<u16>,
    /// The whole URI as written (scheme, parameters and headers included).
    pub raw: &'a [u8],
}

impl<'a> Uri<'a> {
    /// Parses one URI; `raw` must already be cut out of any `<...>` and trimmed.
    ///
    /// `tel:+1-201-555-0123;phone-context=x` gives user `+1-201-555-0123`, host `b""`.
    /// Unknown schemes parse (RFC 4475 §3.3.2: the application decides), with no
    /// user and no host.
    pub fn parse(raw: &'a [u8]) -> Result<Uri<'a>, SipError> {
        let (scheme_b, rest) = split_once(raw, b':').ok_or(SipError::BadUri)?;
        let scheme_ok = scheme_b.first().is_some_and(u8::is_ascii_alphabetic)
            && scheme_b
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
        if !scheme_ok {
            return Err(SipError::BadUri);
        }
        let scheme = if scheme_b.eq_ignore_ascii_case(b"sip") {
            Scheme::Sip
        } else if scheme_b.eq_ignore_ascii_case(b"sips") {
            Scheme::Sips
        } else if scheme_b.eq_ignore_ascii_case(b"tel") {
            Scheme::Tel
        } else {
            Scheme::Other
        };
        match scheme {
            Scheme::Other => Ok(Uri {
                scheme,
                user: None,
                host: &[],
                port: None,
                raw,
            }),
            Scheme::Tel => {
                let number = match split_once(rest, b';') {
                    Some((n, _)) => n,
                    None => rest,
                };
                if number.is_empty() || number.iter().any(|&b| b.is_ascii_whitespace()) {
                    return Err(SipError::BadUri);
                }
                Ok(Uri {
                    scheme,
                    user: Some(number),
                    host: &[],
                    port: None,
                    raw,
                })
            }
            Scheme::Sip | Scheme::Sips => {
                let (user, hostport) = split_userinfo(rest);
                let (host, port) = split_hostport(hostport)?;
                Ok(Uri {
                    scheme,
                    user,
                    host,
                    port,
                    raw,
                })
            }
        }
    }
}

/// The user part may legally contain `;`, `?`, `/` and more (RFC 4475 semiuri,
/// intmeth), but never an unescaped `@`, so the first `@` ends it.
fn split_userinfo(rest: &[u8]) -> (Option<&[u8]>, &[u8]) {
    match split_once(rest, b'@') {
        Some((userinfo, hostport)) => {
            let user = match split_once(userinfo, b':') {
                Some((u, _password)) => u,
                None => userinfo,
            };
            (Some(user), hostport)
        }
        None => (None, rest),
    }
}

fn split_hostport(s: &[u8]) -> Result<(&[u8], Option<u16>), SipError> {
    let (host, after) = if let Some(v6) = s.strip_prefix(b"[") {
        let (host, after) = split_once(v6, b']').ok_or(SipError::BadUri)?;
        (host, after)
    } else {
        let end = s
            .iter()
            .position(|&b| matches!(b, b':' | b';' | b'?'))
            .unwrap_or(s.len());
        s.split_at_checked(end).ok_or(SipError::BadUri)?
    };
    let host_ok = !host.is_empty()
        && host
            .iter()
            .all(|&b| is_token_char(b) || matches!(b, b':' | b'[' | b']'));
    if !host_ok {
        return Err(SipError::BadUri);
    }
    let port = match after.strip_prefix(b":") {
        Some(p) => {
            let end = p
                .iter()
                .position(|&b| matches!(b, b';' | b'?'))
                .unwrap_or(p.len());
            let digits = p.get(..end).unwrap_or_default();
            if digits.is_empty() {
                // `sip:h:;x` is broken but harmless: no port.
                None
            } else {
                let n = super::lex::parse_u64(digits).ok_or(SipError::BadUri)?;
                Some(u16::try_from(n).map_err(|_| SipError::BadUri)?)
            }
        }
        None => match after.first() {
            None | Some(b';') | Some(b'?') => None,
            Some(_) => return Err(SipError::BadUri),
        },
    };
    Ok((host, port))
}
