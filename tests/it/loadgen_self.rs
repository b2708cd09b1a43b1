//! The synthetic capture generator of the benchmarks (tools/loadgen): its own
//! tests, run here since the generator is not part of the library.

use crate::loadgen;

use loadgen::*;
use pbxbridge::rtp::codec::{linear_to_alaw, linear_to_ulaw};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;

use pbxbridge::time::Timestamp;

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use pcap_file::pcap::PcapReader;

type Addr = ([u8; 4], u16);

struct Pkt {
    ts: i64,
    src: Addr,
    dst: Addr,
    payload: Vec<u8>,
}

fn generate(spec: &LoadSpec) -> (LoadSummary, Vec<u8>) {
    let mut buf = Vec::new();
    let summary = write_capture(spec, &mut buf).unwrap();
    (summary, buf)
}

fn read_back(buf: &[u8]) -> Vec<Pkt> {
    let mut reader = PcapReader::new(buf).unwrap();
    let mut out = Vec::new();
    while let Some(p) = reader.next_packet() {
        let p = p.unwrap();
        assert_eq!(p.orig_len as usize, p.data.len());
        let sliced = SlicedPacket::from_ethernet(&p.data).unwrap();
        let Some(NetSlice::Ipv4(ip)) = &sliced.net else {
            panic!("not ipv4")
        };
        let hdr = ip.header();
        assert_eq!(hdr.total_len() as usize, p.data.len() - ETH_LEN);
        let sum = ipv4_checksum(hdr.slice());
        assert_eq!(sum, 0, "ipv4 header checksum must verify");
        let Some(TransportSlice::Udp(udp)) = &sliced.transport else {
            panic!("not udp")
        };
        assert_eq!(udp.length() as usize, p.data.len() - ETH_LEN - IP_LEN);
        out.push(Pkt {
            ts: p.timestamp.as_micros() as i64,
            src: (hdr.source(), udp.source_port()),
            dst: (hdr.destination(), udp.destination_port()),
            payload: udp.payload().to_vec(),
        });
    }
    out
}

fn header<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
    let head = msg.split("\r\n\r\n").next()?;
    head.split("\r\n").find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[test]
fn small_spec_reads_back_in_order_with_expected_counts() {
    let spec = LoadSpec::new(3, 2, 1);
    let (summary, buf) = generate(&spec);
    let per_dir = 50; // 1 s / 20 ms
    let expected = 3 * (7 + 2 * per_dir);
    assert_eq!(spec.expected_packets(), expected);
    assert_eq!(summary.packets, expected);
    assert_eq!(summary.sip_messages, 21);
    assert_eq!(summary.rtp_packets, 3 * 2 * per_dir);
    assert_eq!(summary.calls, 3);
    assert_eq!(summary.bytes, buf.len() as u64);

    let pkts = read_back(&buf);
    assert_eq!(pkts.len() as u64, expected);
    assert!(pkts.windows(2).all(|w| w[0].ts <= w[1].ts));
    assert_eq!(pkts[0].ts, spec.start.micros());

    // SIP: 7 messages per Call-ID, in dialog order, with consistent Content-Length.
    let mut dialogs: BTreeMap<String, Vec<(i64, String)>> = BTreeMap::new();
    for p in pkts.iter().filter(|p| p.src.1 == SIP_PORT) {
        let text = std::str::from_utf8(&p.payload).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let clen: usize = header(text, "Content-Length").unwrap().parse().unwrap();
        assert_eq!(clen, body.len());
        if clen > 0 {
            assert_eq!(header(text, "Content-Type"), Some("application/sdp"));
            assert!(body.contains("m=audio "));
        }
        let start = head.lines().next().unwrap().to_owned();
        let cid = header(text, "Call-ID").unwrap().to_owned();
        dialogs.entry(cid).or_default().push((p.ts, start));
    }
    let want: BTreeMap<String, usize> = (0..3).map(|i| (call_identity(i).call_id, i)).collect();
    assert_eq!(
        dialogs.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    let mut intervals = Vec::new();
    for (cid, msgs) in &dialogs {
        let id = call_identity(want[cid]);
        let starts: Vec<&str> = msgs
            .iter()
            .map(|(_, s)| s.split(' ').next().unwrap())
            .collect();
        let codes: Vec<&str> = msgs
            .iter()
            .map(|(_, s)| s.split(' ').nth(1).unwrap())
            .collect();
        assert_eq!(
            starts,
            ["INVITE", "SIP/2.0", "SIP/2.0", "SIP/2.0", "ACK", "BYE", "SIP/2.0"]
        );
        assert_eq!(&codes[1..4], ["100", "180", "200"]);
        assert_eq!(codes[6], "200");
        assert_eq!(
            msgs[0].1,
            format!("INVITE sip:{}@10.0.0.1 SIP/2.0", id.to_extension)
        );
        intervals.push((msgs[0].0, msgs[6].0));
    }
    // Never more than `concurrent` calls up at once, and the limit is reached.
    let peak = intervals
        .iter()
        .map(|&(s, _)| intervals.iter().filter(|&&(a, b)| a <= s && s <= b).count())
        .max()
        .unwrap();
    assert_eq!(peak, 2);

    // RTP: six streams of 50, seq +1, ts +160, constant SSRC, PCMU, 160-byte payloads.
    let mut streams: HashMap<(Addr, Addr), Vec<&Pkt>> = HashMap::new();
    for p in pkts.iter().filter(|p| p.src.1 != SIP_PORT) {
        streams.entry((p.src, p.dst)).or_default().push(p);
    }
    assert_eq!(streams.len(), 6);
    let mut payloads = HashSet::new();
    for s in streams.values() {
        assert_eq!(s.len(), per_dir as usize);
        let first = rtp_rs::RtpReader::new(&s[0].payload).unwrap();
        assert!(first.mark());
        for (k, p) in s.iter().enumerate() {
            let r = rtp_rs::RtpReader::new(&p.payload).unwrap();
            assert_eq!(r.version(), 2);
            assert_eq!(r.payload_type(), 0);
            assert_eq!(r.ssrc(), first.ssrc());
            assert_eq!(
                u16::from(r.sequence_number()),
                u16::from(first.sequence_number()).wrapping_add(k as u16)
            );
            assert_eq!(
                r.timestamp(),
                first.timestamp().wrapping_add(160 * k as u32)
            );
            assert_eq!(r.payload().len(), 160);
            payloads.insert(r.payload().to_vec());
        }
    }
    // Real-looking audio: frames differ from each other (and per direction).
    assert!(
        payloads.len() > 250,
        "only {} distinct frames",
        payloads.len()
    );
}

#[test]
fn output_is_deterministic() {
    let spec = LoadSpec::new(5, 3, 1);
    assert_eq!(generate(&spec).1, generate(&spec).1);
}

#[test]
fn pcma_answer_and_payload_type() {
    let spec = LoadSpec {
        codec_pcma: true,
        ..LoadSpec::new(1, 1, 1)
    };
    let (_, buf) = generate(&spec);
    let pkts = read_back(&buf);
    let ok = pkts
        .iter()
        .map(|p| String::from_utf8_lossy(&p.payload).into_owned())
        .find(|t| {
            t.starts_with("SIP/2.0 200 OK") && t.contains("CSeq: ") && t.contains("INVITE\r\n")
        })
        .unwrap();
    assert!(ok.contains("m=audio 20000 RTP/AVP 8 101"));
    assert!(ok.contains("c=IN IP4 10.0.0.1"));
    let rtp = pkts.iter().find(|p| p.src.1 != SIP_PORT).unwrap();
    assert_eq!(
        rtp_rs::RtpReader::new(&rtp.payload).unwrap().payload_type(),
        8
    );
}

#[test]
fn codec_mix_sends_the_encoded_frames_it_is_given() {
    let g722 = std::sync::Arc::new(EncodedCodec {
        pt: 9,
        rtpmap: "G722/8000".into(),
        fmtp: None,
        ts_per_frame: 160,
        frames: vec![vec![0x11; 160], vec![0x22; 160]],
    });
    let spec = LoadSpec {
        mix: vec![None, Some(g722)],
        ..LoadSpec::new(2, 2, 1)
    };
    let (_, buf) = generate(&spec);
    let pkts = read_back(&buf);
    let answers: Vec<String> = pkts
        .iter()
        .map(|p| String::from_utf8_lossy(&p.payload).into_owned())
        .filter(|t| t.starts_with("SIP/2.0 200 OK") && t.contains("INVITE\r\n"))
        .collect();
    assert_eq!(answers.len(), 2);
    assert!(answers.iter().any(|a| a.contains("RTP/AVP 0 101")));
    assert!(answers
        .iter()
        .any(|a| a.contains("RTP/AVP 9 101") && a.contains("a=rtpmap:9 G722/8000")));
    let rtp: Vec<_> = pkts.iter().filter(|p| p.src.1 != SIP_PORT).collect();
    let g722: Vec<_> = rtp
        .iter()
        .filter_map(|p| rtp_rs::RtpReader::new(&p.payload).ok())
        .filter(|r| r.payload_type() == 9)
        .collect();
    // One second each way at 20 ms: 100 packets, each one of the given frames.
    assert_eq!(g722.len(), 100);
    assert!(g722
        .iter()
        .all(|r| r.payload() == [0x11; 160] || r.payload() == [0x22; 160]));
}

#[test]
fn zero_talk_time_still_completes_calls() {
    let spec = LoadSpec::new(4, 4, 0);
    let (summary, buf) = generate(&spec);
    assert_eq!(summary.packets, 28);
    assert_eq!(read_back(&buf).len(), 28);
}

#[test]
fn rejects_bad_specs() {
    let bad = [
        LoadSpec::new(1, 0, 1),
        LoadSpec::new(1, MAX_CONCURRENT + 1, 1),
        LoadSpec {
            ptime_ms: 0,
            ..LoadSpec::new(1, 1, 1)
        },
        LoadSpec {
            start: Timestamp(-1),
            ..LoadSpec::new(1, 1, 1)
        },
    ];
    for spec in bad {
        let err = write_capture(&spec, Vec::new()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
}

fn ulaw_to_linear(u: u8) -> i32 {
    i32::from(pbxbridge::rtp::codec::ulaw_to_linear(u))
}

fn alaw_to_linear(a: u8) -> i32 {
    i32::from(pbxbridge::rtp::codec::alaw_to_linear(a))
}

#[test]
fn g711_encoders_round_trip_within_quantisation_error() {
    assert_eq!(linear_to_ulaw(0), 0xff);
    assert_eq!(linear_to_alaw(0), 0xd5);
    assert_eq!(linear_to_ulaw(i16::MAX), 0x80);
    assert_eq!(linear_to_ulaw(i16::MIN), 0x00);
    for pcm in (i16::MIN..=i16::MAX).step_by(7) {
        let x = i32::from(pcm);
        // Segment step is at most 1/16 of the value's magnitude (+ small floor).
        let tol = x.abs() / 16 + 40;
        let u = ulaw_to_linear(linear_to_ulaw(pcm));
        assert!(
            (u - x).abs() <= tol.max(x.abs() - 32124),
            "ulaw {pcm} -> {u}"
        );
        let a = alaw_to_linear(linear_to_alaw(pcm));
        assert!((a - x).abs() <= tol, "alaw {pcm} -> {a}");
    }
}
