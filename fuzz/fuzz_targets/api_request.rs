//! Request text the HTTP API parses: the call log's query string, cursors,
//! a call id in a path, Range and If-Range headers.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use pbxbridge::api::fuzzing::{self, Parsers};

fn parsers() -> &'static Parsers {
    static P: OnceLock<(Parsers, tempfile::TempDir)> = OnceLock::new();
    &P.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let p = Parsers::new(dir.path()).expect("parsers");
        (p, dir)
    })
    .0
}

fuzz_target!(|data: &[u8]| {
    fuzzing::range(
        data,
        1 + u64::from(data.first().copied().unwrap_or(0)) * 997,
    );
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let p = parsers();
    p.list_query(text);
    p.cursor(text);
    fuzzing::call_id(text);
});
