//! The API's parsers of request text, reachable without a server, for the
//! fuzz targets (`fuzz/fuzz_targets/api_request.rs`). Each must answer any
//! input with a value or an `ApiError`, never a panic.

use std::path::Path;

use axum::http::{header, HeaderMap, HeaderValue};

use super::call_params::{ListParams, Route};
use super::recording::range::{plan, Plan};
use super::{call_ref, cursor_token, ApiStartError, ApiState};
use crate::config::Config;
use crate::db::call_list::{Sort, SortKey};
use crate::db::{DbTarget, SharedDb};

/// An API state that never opens its database (parsing does not need it).
pub struct Parsers(ApiState);

impl Parsers {
    /// `dir` keeps the link secret the cursors are signed with.
    pub fn new(dir: &Path) -> Result<Parsers, ApiStartError> {
        let cfg = Config::default();
        let db = SharedDb::new(DbTarget::from_config(&cfg));
        ApiState::new(&cfg, db, dir).map(Parsers)
    }

    /// A call-log query string, for both routes that take one.
    pub fn list_query(&self, raw: &str) {
        for route in [Route::Calls, Route::Timeline] {
            let _ = ListParams::parse(&self.0, Some(raw), route);
        }
    }

    /// A cursor, read for every sort.
    pub fn cursor(&self, raw: &str) {
        for key in [
            SortKey::StartedAt,
            SortKey::Duration,
            SortKey::Direction,
            SortKey::Agent,
        ] {
            for descending in [false, true] {
                let _ = cursor_token::decode(&self.0, raw, Sort { key, descending });
            }
        }
    }
}

/// A call's `{id}` path segment.
pub fn call_id(raw: &str) {
    let _ = call_ref::selector(raw);
}

/// `Range` and `If-Range` headers against a file of `size` bytes: a planned
/// range lies inside the file.
pub fn range(raw: &[u8], size: u64) {
    let Ok(value) = HeaderValue::from_bytes(raw) else {
        return;
    };
    let mut headers = HeaderMap::new();
    headers.insert(header::RANGE, value.clone());
    for if_range in [None, Some(value)] {
        if let Some(v) = if_range {
            headers.insert(header::IF_RANGE, v);
        }
        if let Plan::Partial(r) = plan(&headers, size, "\"etag\"", None) {
            assert!(
                r.start() <= r.end() && *r.end() < size,
                "{r:?} of {size} bytes"
            );
        }
    }
}

/// `GET /v1/events`'s query string.
pub fn event_query(raw: &str) {
    let _ = super::event_params::EventParams::parse(raw);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The inputs the fuzz target starts from, and a few hostile ones.
    #[test]
    fn hostile_request_text_is_answered_not_panicked_on() {
        let dir = tempfile::tempdir().unwrap();
        let p = Parsers::new(dir.path()).unwrap();
        for raw in [
            "",
            "limit=100000&limit=1",
            "direction=incoming,bogus&sort=-agent&cursor=%FF%FE",
            "q=%27%20OR%201%3D1%20--&number=(415)%20555-1212&from=2026-13-45",
            "cursor=eyJ4Ijp0cnVlfQ&sort=duration",
            "page=18446744073709551616&include_total=maybe",
            &"a=b&".repeat(500),
        ] {
            p.list_query(raw);
            p.cursor(raw);
            call_id(raw);
        }
        for raw in [
            &b"bytes=0-0"[..],
            b"bytes=-0",
            b"bytes=999999999999999999999-",
            b"bytes=5-1",
            b"bytes=0-1,2-3",
            b"items=0-1",
            b"bytes=18446744073709551615-18446744073709551615",
        ] {
            for size in [1, 10, 1000] {
                range(raw, size);
            }
        }
    }
}
