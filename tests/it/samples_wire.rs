//! Walks every third-party capture in ../shared/samples through the reader, the
//! decoders and reassembly: nothing may panic, and known files must yield what
//! tshark sees in them (see shared/samples/MANIFEST.md).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use pbxbridge::capture::pcapfile::PcapFileReader;
use pbxbridge::reasm::framing::looks_like_start_line;
use pbxbridge::reasm::{Defragmenter, FlowKey, ReasmLimits, TcpReassembler};
use pbxbridge::wire::{decode_link, decode_transport, IpPacket, Transport};

fn samples_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/samples"))
}

fn captures(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            captures(&p, out);
        } else if p.extension().is_some_and(|x| x == "pcap" || x == "pcapng") {
            out.push(p);
        }
    }
}

fn is_sip(msg: &[u8]) -> bool {
    let line_end = msg.iter().position(|&b| b == b'\n').unwrap_or(msg.len());
    let line = &msg[..line_end];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    looks_like_start_line(line, true)
}

#[derive(Debug, Default)]
struct Summary {
    read_error: Option<String>,
    truncated_tail: bool,
    packets: u64,
    first_ts: i64,
    last_ts: i64,
    decode_errors: BTreeMap<&'static str, u64>,
    fragments: u64,
    reassembled: u64,
    udp: u64,
    udp_v6: u64,
    udp_5060: u64,
    sip_udp: u64,
    tcp: u64,
    sip_tcp: u64,
    tcp_messages_total: u64,
    tcp_retransmissions: u64,
}

fn transport(
    s: &mut Summary,
    ts: pbxbridge::time::Timestamp,
    ip: &IpPacket<'_>,
    payload: &[u8],
    tcp: &mut TcpReassembler,
) {
    match decode_transport(ip.proto, payload) {
        Ok(Transport::Udp {
            src_port,
            dst_port,
            payload,
        }) => {
            s.udp += 1;
            if ip.src.is_ipv6() {
                s.udp_v6 += 1;
            }
            if src_port == 5060 || dst_port == 5060 {
                s.udp_5060 += 1;
            }
            if is_sip(payload) {
                s.sip_udp += 1;
            }
        }
        Ok(Transport::Tcp {
            src_port,
            dst_port,
            seq,
            syn,
            fin,
            rst,
            payload,
        }) => {
            s.tcp += 1;
            let flow = FlowKey {
                src: SocketAddr::new(ip.src, src_port),
                dst: SocketAddr::new(ip.dst, dst_port),
            };
            let mut out = Vec::new();
            tcp.push(ts, flow, seq, syn, fin, rst, payload, &mut out);
            s.tcp_messages_total += out.len() as u64;
            s.sip_tcp += out.iter().filter(|m| is_sip(m)).count() as u64;
        }
        Err(e) => *s.decode_errors.entry(e.reason()).or_default() += 1,
    }
}

fn run(path: &Path) -> Summary {
    let mut s = Summary::default();
    let limits = ReasmLimits::default();
    let mut defrag = Defragmenter::new(&limits);
    let mut tcp = TcpReassembler::new(&limits);
    let mut reader = match PcapFileReader::open(path) {
        Ok(r) => r,
        Err(e) => {
            s.read_error = Some(e.to_string());
            return s;
        }
    };
    loop {
        let pkt = match reader.next_packet() {
            Ok(Some(p)) => p,
            Ok(None) => break,
            Err(e) => {
                s.read_error = Some(e.to_string());
                break;
            }
        };
        if s.packets == 0 {
            s.first_ts = pkt.ts.micros();
        }
        s.last_ts = pkt.ts.micros();
        s.packets += 1;
        let ip = match decode_link(pkt.link, pkt.data) {
            Ok(ip) => ip,
            Err(e) => {
                *s.decode_errors.entry(e.reason()).or_default() += 1;
                continue;
            }
        };
        match ip.frag {
            None => transport(&mut s, pkt.ts, &ip, ip.payload, &mut tcp),
            Some(frag) => {
                s.fragments += 1;
                if let Some(whole) =
                    defrag.push(pkt.ts, ip.src, ip.dst, ip.proto, &frag, ip.payload)
                {
                    s.reassembled += 1;
                    transport(&mut s, pkt.ts, &ip, &whole, &mut tcp);
                }
            }
        }
        defrag.expire(pkt.ts);
    }
    s.tcp_retransmissions = tcp.stats().tcp_retransmissions;
    s.truncated_tail = reader.stats().truncated_tail;
    s
}

#[test]
fn samples_walk() {
    let dir = samples_dir();
    if !dir.is_dir() {
        eprintln!("SKIPPED: ../shared/samples not found");
        return;
    }
    let mut files = Vec::new();
    captures(&dir, &mut files);
    files.sort();
    assert!(!files.is_empty(), "no captures under {}", dir.display());

    let mut all = BTreeMap::new();
    for f in &files {
        let rel = f.strip_prefix(&dir).unwrap().display().to_string();
        let s = run(f);
        eprintln!("{rel}: {s:?}");
        all.insert(rel, s);
    }
    let get = |name: &str| {
        all.get(name)
            .unwrap_or_else(|| panic!("{name} missing from samples"))
    };

    // Every well-formed capture reads to the end.
    for (name, s) in &all {
        if name != "pkts/cool.pcap" {
            assert!(s.read_error.is_none(), "{name}: {:?}", s.read_error);
            assert!(s.packets > 0, "{name}: no packets");
        }
    }

    // Big-endian global header with little-endian records: refused, without a panic.
    assert!(get("pkts/cool.pcap").read_error.is_some());

    // SIP over TCP on port 6060, split and coalesced across segments: 406 messages.
    let s = get("heplify/sip_ipv4_tcp_fragmented.pcap");
    assert!(s.sip_tcp >= 400, "{s:?}");
    assert!(s.sip_tcp <= 406, "{s:?}");

    let s = get("heplify/sip_ipv4_tcp.pcap");
    assert!(s.sip_tcp >= 7, "{s:?}");

    // Every TCP segment captured twice: each REGISTER/response still comes out once.
    let s = get("heplify/sip_ipv4_tcp_retrans.pcap");
    assert!(s.tcp_retransmissions > 0, "{s:?}");
    assert!(s.sip_tcp >= 4, "{s:?}");

    let s = get("pkts/fragmented_tcp_sip.pcap");
    assert_eq!(s.sip_tcp, 6, "{s:?}");

    // Only the first fragment of the INVITE is in this capture: it must be held, not
    // decoded as a (truncated) datagram, and the rest of the call still decodes.
    let s = get("pkts/fragmented_udp_sip.pcap");
    assert_eq!(s.fragments, 1, "{s:?}");
    assert_eq!(s.reassembled, 0, "{s:?}");
    assert_eq!(s.sip_udp, 5, "{s:?}");

    // IPv4 fragmented INVITE (2 pieces) that does reassemble.
    let s = get("voipshark/SIP-SRTP-Normal_Call_two_parties.pcap");
    assert!(s.reassembled >= 1, "{s:?}");

    // IPv6 fragments (SLL).
    let s = get("sngrep/ipv6frag.pcap");
    assert!(s.reassembled >= 1, "{s:?}");
    assert!(s.udp_v6 > 0 && s.sip_udp > 0, "{s:?}");

    let s = get("heplify/sip_ipv6_udp.pcap");
    assert!(s.udp_v6 >= 6 && s.sip_udp >= 6, "{s:?}");

    // GRE transparent Ethernet bridging (pcapng).
    let s = get("heplify/erspan_sip_ipv4_udp.pcapng");
    assert!(s.udp_5060 > 0, "{s:?}");
    assert!(s.sip_udp > 50, "{s:?}");

    // VLAN + PPTP GRE + PPP.
    let s = get("nDPI/gre.pcapng");
    assert_eq!((s.udp_5060, s.sip_udp), (1, 1), "{s:?}");

    // DLT_RAW
    let s = get("heplify/ipip0.pcap");
    assert!(s.sip_udp >= 5, "{s:?}");
    assert!(s.decode_errors.is_empty(), "{s:?}");

    // Linux cooked v1
    let s = get("pkts/sipp_sll.pcap");
    let e = get("pkts/sipp.pcap");
    assert_eq!(s.sip_udp, e.sip_udp);
    assert!(s.sip_udp > 0);

    // pcap and pcapng twins agree.
    assert_eq!(
        get("ISA/sip.pcap").sip_udp,
        get("ISA/sip.pcap.pcapng").sip_udp
    );
    assert!(get("ISA/sip.pcap").sip_udp > 0);

    // Some packets tunnelled IP-in-IP, some not.
    let s = get("sngrep/ipip.pcap");
    assert!(s.sip_tcp >= 4, "{s:?}");

    // Raw IPv4 with long header chains over UDP.
    assert!(get("zeek/sip-long-request-response-paths.pcap").sip_udp >= 2);

    // SIP over WebSocket is not framed as SIP.
    let s = get("heplify/sip_tcp_websocket.pcap");
    assert_eq!(s.sip_tcp, 0, "{s:?}");
}
