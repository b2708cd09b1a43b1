//! Any bytes through the SIP parser and every accessor; values through the URI and
//! name-addr parsers; the trailing bytes as the next message (TCP framing).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pbxbridge::sip::{self, NameAddr, StartLine, Uri};

fuzz_target!(|data: &[u8]| {
    let _ = sip::looks_like_sip(data);
    let mut rest = data;
    // A datagram or stream chunk may hold several messages; bounded by input size.
    for _ in 0..4 {
        let Ok(m) = sip::parse(rest) else { break };
        assert!(!m.is_empty() && m.len() <= rest.len());
        assert!(m.body().len() <= m.len());
        if let StartLine::Request { method, uri } = *m.start() {
            let _ = Uri::parse(uri);
            let _ = method.to_string();
            if let Some(c) = m.cseq() {
                assert_eq!(c.method, method);
            }
        }
        let _ = (m.call_id(), m.cseq(), m.top_via_branch(), m.content_type());
        for na in [m.from(), m.to(), m.contact(), m.p_asserted_identity()]
            .into_iter()
            .flatten()
        {
            let _ = (
                na.display,
                na.tag,
                na.params,
                na.uri.user,
                na.uri.host,
                na.uri.port,
            );
            let _ = Uri::parse(na.uri.raw);
        }
        let _ = m.reason_cause();
        if let Some(s) = m.sdp() {
            let _ = sip::sdp::parse(s);
        }
        for (name, value) in m.fields() {
            let _ = Uri::parse(value);
            let _ = NameAddr::parse(value);
            if let Ok(name) = std::str::from_utf8(name) {
                assert!(m.header(name).is_some());
                let _ = m.headers(name).count();
                let _ = m.header_params(name).count();
            }
        }
        rest = rest.get(m.len()..).unwrap_or_default();
    }
});
