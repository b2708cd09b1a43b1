//! What the event channels read from outside: an event as NATS delivers it
//! (JSON), a NATS subject, an event-log line after a crash, a webhook
//! receiver's Retry-After, a webhook secret and allow-list entry from the
//! config or API, and `/v1/events`'s query string.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pbxbridge::events::nats::subject::parse_subject;
use pbxbridge::events::webhook::allow::AllowList;
use pbxbridge::events::webhook::schedule::{parse_retry_after, verdict};
use pbxbridge::events::webhook::sign::Secret;
use pbxbridge::events::Event;

fuzz_target!(|data: &[u8]| {
    if let Ok(ev) = serde_json::from_slice::<Event>(data) {
        // What the log writes back must read again.
        let json = serde_json::to_string(&ev).expect("an event serialises");
        assert!(pbxbridge::events::log::parse_line(&format!("1\t{json}")));
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse_subject("pbxbridge", text);
    let _ = pbxbridge::events::log::parse_line(text);
    let _ = parse_retry_after(text, 1_800_000_000);
    let _ = verdict(
        u16::from(data.first().copied().unwrap_or(0)) * 3,
        Some(text),
        1_800_000_000,
    );
    let _ = Secret::parse(text);
    if let Ok(list) = AllowList::parse(&[text.to_owned()]) {
        let _ = list.check_url(text);
    }
    pbxbridge::api::fuzzing::event_query(text);
});
