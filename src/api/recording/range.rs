//! Which bytes a GET answers with: the whole file (200), one range (206) or
//! none (416), from `Range` and `If-Range` (RFC 9110 §14).

use std::ops::RangeInclusive;
use std::time::SystemTime;

use axum::http::{header, HeaderMap};
use http_range_header::RangeUnsatisfiableError;

/// What to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    Full,
    /// One range, both ends included.
    Partial(RangeInclusive<u64>),
    /// 416: no requested range overlaps the file.
    Unsatisfiable,
}

/// The answer to `headers` for a file of `size` bytes whose validators are
/// `etag` (strong, quoted) and `modified`.
///
/// A malformed `Range` is ignored (the whole file, as RFC 9110 allows), and
/// so are several ranges: a player asks for one at a time, and a multipart
/// answer would buy nothing here. An `If-Range` that does not match the
/// current representation also gets the whole file.
pub fn plan(headers: &HeaderMap, size: u64, etag: &str, modified: Option<SystemTime>) -> Plan {
    let Some(range) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) else {
        return Plan::Full;
    };
    if let Some(cond) = headers.get(header::IF_RANGE) {
        let matches = cond
            .to_str()
            .is_ok_and(|c| if_range_matches(c.trim(), etag, modified));
        if !matches {
            return Plan::Full;
        }
    }
    let parsed = match http_range_header::parse_range_header(range) {
        Ok(p) => p,
        Err(_) => return Plan::Full,
    };
    match parsed.validate(size) {
        Ok(ranges) => match ranges.as_slice() {
            [one] => Plan::Partial(one.clone()),
            _ => Plan::Full,
        },
        Err(RangeUnsatisfiableError::Unsatisfiable) => Plan::Unsatisfiable,
        Err(_) => Plan::Full,
    }
}

/// `If-Range` holds an entity tag (compared strongly: a weak one never
/// matches) or an HTTP date (matches only the exact Last-Modified second).
fn if_range_matches(cond: &str, etag: &str, modified: Option<SystemTime>) -> bool {
    if cond.starts_with('"') {
        return cond == etag;
    }
    if cond.starts_with("W/") {
        return false;
    }
    let (Some(modified), Ok(date)) = (modified, chrono::DateTime::parse_from_rfc2822(cond)) else {
        return false;
    };
    let ours = chrono::DateTime::<chrono::Utc>::from(modified).timestamp();
    date.timestamp() == ours
}

/// An HTTP date (IMF-fixdate) for `Last-Modified`.
pub fn http_date(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t)
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    const TAG: &str = "\"abc\"";

    #[test]
    fn ranges() {
        let p = |pairs: &[(&'static str, &'static str)]| plan(&with(pairs), 1000, TAG, None);
        assert_eq!(p(&[]), Plan::Full);
        assert_eq!(p(&[("range", "bytes=0-99")]), Plan::Partial(0..=99));
        assert_eq!(p(&[("range", "bytes=900-")]), Plan::Partial(900..=999));
        assert_eq!(p(&[("range", "bytes=-100")]), Plan::Partial(900..=999));
        assert_eq!(p(&[("range", "bytes=990-5000")]), Plan::Partial(990..=999));
        assert_eq!(p(&[("range", "bytes=-5000")]), Plan::Partial(0..=999));
        assert_eq!(p(&[("range", "bytes=1000-")]), Plan::Unsatisfiable);
        assert_eq!(p(&[("range", "bytes=0-1,5-9")]), Plan::Full);
        assert_eq!(p(&[("range", "items=0-1")]), Plan::Full);
        assert_eq!(p(&[("range", "bytes=9-1")]), Plan::Full);
        assert_eq!(p(&[("range", "bytes=x")]), Plan::Full);
    }

    #[test]
    fn if_range() {
        let p = |pairs: &[(&'static str, &'static str)]| plan(&with(pairs), 1000, TAG, None);
        assert_eq!(
            p(&[("range", "bytes=0-9"), ("if-range", "\"abc\"")]),
            Plan::Partial(0..=9)
        );
        assert_eq!(
            p(&[("range", "bytes=0-9"), ("if-range", "\"old\"")]),
            Plan::Full
        );
        assert_eq!(
            p(&[("range", "bytes=0-9"), ("if-range", "W/\"abc\"")]),
            Plan::Full
        );
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        let date = http_date(t);
        assert_eq!(date, "Tue, 14 Nov 2023 22:13:20 GMT");
        let mut h = with(&[("range", "bytes=0-9")]);
        h.insert("if-range", HeaderValue::from_str(&date).unwrap());
        assert_eq!(plan(&h, 1000, TAG, Some(t)), Plan::Partial(0..=9));
        let later = t + std::time::Duration::from_secs(5);
        assert_eq!(plan(&h, 1000, TAG, Some(later)), Plan::Full);
    }
}
