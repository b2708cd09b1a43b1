//! First byte picks the link type, the rest is a captured frame. Everything downstream
//! of the capture (decode, defragment, TCP reassembly, SIP framing) must not panic.

#![no_main]

use std::net::SocketAddr;

use libfuzzer_sys::fuzz_target;
use pbxbridge::reasm::{Defragmenter, FlowKey, ReasmLimits, TcpReassembler};
use pbxbridge::time::Timestamp;
use pbxbridge::wire::{decode_link, decode_transport, IpPacket, LinkType, Transport};

const LINKS: [LinkType; 8] = [
    LinkType::Ethernet,
    LinkType::Null,
    LinkType::RawIp,
    LinkType::Ipv4,
    LinkType::Ipv6,
    LinkType::LinuxSll,
    LinkType::LinuxSll2,
    LinkType::Unknown(147),
];

fn transport(ts: Timestamp, ip: &IpPacket<'_>, payload: &[u8], tcp: &mut TcpReassembler) {
    if let Ok(Transport::Tcp {
        src_port,
        dst_port,
        seq,
        syn,
        fin,
        rst,
        payload,
    }) = decode_transport(ip.proto, payload)
    {
        let flow = FlowKey {
            src: SocketAddr::new(ip.src, src_port),
            dst: SocketAddr::new(ip.dst, dst_port),
        };
        let mut out = Vec::new();
        tcp.push(ts, flow, seq, syn, fin, rst, payload, &mut out);
        // Same segment again (retransmission) and a shifted copy (overlap / reorder).
        tcp.push(ts, flow, seq, syn, fin, rst, payload, &mut out);
        tcp.push(
            ts,
            flow,
            seq.wrapping_add(3),
            false,
            false,
            false,
            payload,
            &mut out,
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, frame)) = data.split_first() else {
        return;
    };
    let link = LINKS[usize::from(selector) % LINKS.len()];
    let limits = ReasmLimits {
        max_frag_sets: 4,
        max_frag_bytes: 4096,
        max_tcp_streams: 4,
        max_tcp_stream_bytes: 2048,
        ..ReasmLimits::default()
    };
    let mut defrag = Defragmenter::new(&limits);
    let mut tcp = TcpReassembler::new(&limits);
    let ts = Timestamp(i64::from(selector) * 1_000_000);
    let Ok(ip) = decode_link(link, frame) else {
        return;
    };
    match ip.frag {
        None => transport(ts, &ip, ip.payload, &mut tcp),
        Some(frag) => {
            // Feed the piece, then a made-up last piece so completion paths run too.
            if let Some(whole) = defrag.push(ts, ip.src, ip.dst, ip.proto, &frag, ip.payload) {
                transport(ts, &ip, &whole, &mut tcp);
            }
            let mut tail = frag;
            tail.offset = frag.offset.wrapping_add(ip.payload.len() as u32);
            tail.more = false;
            if let Some(whole) = defrag.push(ts, ip.src, ip.dst, ip.proto, &tail, ip.payload) {
                transport(ts, &ip, &whole, &mut tcp);
            }
        }
    }
    defrag.expire(ts.saturating_add_micros(60_000_000));
    tcp.expire(ts.saturating_add_micros(600_000_000));
});
