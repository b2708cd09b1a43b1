//! Every public capture in ../shared/samples through the whole pipeline: no
//! panic, no hang, and the calls the MANIFEST lists come out as it says.
//! The captures are not ours and not in the repository: without them this test
//! says SKIPPED and checks nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use pbxbridge::call::{EndReason, Outcome};
use pbxbridge::capture::pcapfile::PcapFileReader;
use pbxbridge::config::Config;
use pbxbridge::pipeline::Pipeline;
use pbxbridge::report::{CallReport, RecordingStatus};
use pbxbridge::time::Timestamp;

fn samples() -> Option<PathBuf> {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/samples"));
    dir.is_dir().then(|| dir.to_path_buf())
}

fn replay(path: &Path, rec: &Path) -> (Vec<CallReport>, pbxbridge::call::Stats) {
    let mut cfg = Config::default();
    cfg.recording.dir = rec.to_path_buf();
    let (tx, rx) = crossbeam_channel::unbounded();
    let mut p = Pipeline::new(&cfg, tx).unwrap();
    let mut last = Timestamp::default();
    if let Ok(mut r) = PcapFileReader::open(path) {
        while let Ok(Some(pkt)) = r.next_packet() {
            last = last.max(pkt.ts);
            p.handle_frame(pkt.ts, pkt.link, pkt.data);
        }
    }
    p.close_all(last, EndReason::CaptureEnd);
    let stats = p.finish().stats().clone();
    (rx.into_iter().flatten().collect(), stats)
}

fn outcomes(calls: &[CallReport]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for c in calls {
        let key = match c.sip_code {
            Some(code) if c.outcome != Outcome::Answered => format!("{}({code})", c.outcome),
            _ => c.outcome.to_string(),
        };
        *m.entry(key).or_insert(0) += 1;
    }
    m
}

fn counts(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

#[test]
fn public_captures_match_the_manifest() {
    let Some(dir) = samples() else {
        eprintln!("SKIPPED: ../shared/samples not found; public captures not checked");
        return;
    };
    let rec = tempfile::tempdir().unwrap();
    let mut files: Vec<PathBuf> = Vec::new();
    let mut stack = vec![dir.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "pcap" || x == "pcapng") {
                files.push(p);
            }
        }
    }
    files.sort();
    assert!(
        files.len() > 50,
        "expected the MANIFEST's captures, found {}",
        files.len()
    );

    let mut results = BTreeMap::new();
    for f in &files {
        let name = f.strip_prefix(&dir).unwrap().display().to_string();
        let (calls, stats) = replay(f, rec.path());
        for c in &calls {
            assert!(
                c.ended_at >= c.started_at,
                "{name}: {} ends before it starts",
                c.call_id
            );
            assert!(c.duration >= 0.0);
        }
        results.insert(name, (calls, stats));
    }
    let get = |n: &str| &results.get(n).unwrap_or_else(|| panic!("{n} missing")).0;

    let expect: &[(&str, &[(&str, usize)])] = &[
        ("ISA/sip.pcap", &[("answered", 1)]),
        ("ISA/real_sip_call.pcap", &[("answered", 2)]),
        ("heplify/erspan_sip_ipv4_udp.pcapng", &[("answered", 3)]),
        ("heplify/sip_ipv4_tcp.pcap", &[("answered", 1)]),
        ("heplify/ipip0.pcap", &[("failed", 1), ("failed(403)", 1)]),
        (
            "heplify/rtp_rtcp_sip_ipv4_udp.pcap",
            &[("answered", 1), ("no_answer", 1)],
        ),
        ("heplify/sip_tcp_websocket.pcap", &[("answered", 2)]),
        ("heplify/sip_sctp.pcap", &[]),
        (
            "sngrep/aaa.pcap",
            &[
                ("cancelled(408)", 1),
                ("failed(403)", 2),
                ("no_answer(480)", 1),
            ],
        ),
        ("sngrep/ipv6frag.pcap", &[("answered", 1)]),
        ("sngrep/ipip.pcap", &[("answered", 1)]),
        ("pkts/fragmented_tcp_sip.pcap", &[("answered", 1)]),
        ("pkts/sipp.pcap", &[("answered", 5)]),
        ("pkts/sipp_sll.pcap", &[("answered", 5)]),
        ("pkts/cancel.pcap", &[("cancelled(487)", 1)]),
        ("sipnab/sip-488-codec-reject.pcapng", &[("failed(488)", 1)]),
        ("sipnab/sip-routing-error.pcapng", &[("failed(404)", 2)]),
    ];
    let mut wrong = Vec::new();
    for (file, want) in expect {
        let got = outcomes(get(file));
        if got != counts(want) {
            wrong.push(format!("{file}: expected {want:?}, got {got:?}"));
        }
    }
    // A production trunk over TCP on port 6060: found by content, not by port.
    let trunk = outcomes(get("heplify/sip_ipv4_tcp_fragmented.pcap"));
    let total: usize = trunk.values().sum();
    if total != 40 || trunk.get("answered") != Some(&33) || trunk.get("busy(486)") != Some(&1) {
        wrong.push(format!(
            "sip_ipv4_tcp_fragmented: 40 calls, 33 answered expected, got {trunk:?}"
        ));
    }
    assert!(
        wrong.is_empty(),
        "calls differ from the MANIFEST:\n{}",
        wrong.join("\n")
    );

    // pcap and pcapng twins give the same calls.
    assert_eq!(get("ISA/sip.pcap"), get("ISA/sip.pcap.pcapng"));
    // Answered calls with two-way G.711 become recordings of the talk time.
    let isa = &get("ISA/sip.pcap")[0];
    assert_eq!(isa.recording.status, RecordingStatus::Stored);
    let samples = isa.recording.samples.unwrap() as f64;
    assert!(
        (samples / 8000.0 - isa.duration).abs() < 0.02,
        "{samples} vs {}",
        isa.duration
    );
    // Every message of ipv6frag was captured twice (proxy in and out): counted once.
    assert!(results["sngrep/ipv6frag.pcap"].1.sip_duplicates > 0);
    // SDES-SRTP whose keys the SDP shows is decrypted and recorded for the
    // talk time; without keys (TLS-signalled) it stays `encrypted`.
    let srtp = get("voipshark/SIP-SRTP-Normal_Call_two_parties.pcap");
    assert_eq!(srtp.len(), 2);
    for c in srtp {
        assert_eq!(c.recording.status, RecordingStatus::Stored, "{}", c.call_id);
        let secs = c.recording.samples.unwrap() as f64 / 8000.0;
        assert!((secs - c.duration).abs() < 0.02, "{secs} vs {}", c.duration);
    }
    // Every answered call with audio in a codec we decode is recorded: what
    // is left unsupported names a codec outside the README's list.
    for (file, (calls, _)) in &results {
        for c in calls
            .iter()
            .filter(|c| c.recording.status == RecordingStatus::UnsupportedCodec)
        {
            let detail = c.recording.detail.clone().unwrap_or_default();
            assert!(
                ["G723", "LPC", "iLBC", "ILBC", "G7221", "QCELP", "G728"]
                    .iter()
                    .any(|n| detail.contains(n)),
                "{file}: {} left unrecorded: {detail}",
                c.call_id
            );
        }
    }
    let plain = get("voipshark/SIP-RTP-Normal_Call_two_parties.pcap");
    assert!(
        plain
            .iter()
            .all(|c| c.recording.status == RecordingStatus::Stored),
        "{plain:#?}"
    );
    // The TCP retransmission capture has no calls but must not invent any.
    assert!(get("heplify/sip_ipv4_tcp_retrans.pcap").is_empty());
}
