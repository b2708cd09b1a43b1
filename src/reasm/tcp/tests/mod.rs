use super::*;
use std::net::SocketAddr;

fn flow() -> FlowKey {
    FlowKey {
        src: "10.0.0.1:5060".parse::<SocketAddr>().unwrap(),
        dst: "10.0.0.2:40000".parse::<SocketAddr>().unwrap(),
    }
}

fn msg(n: usize) -> Vec<u8> {
    let body = format!("v=0\r\no=- {n} 1 IN IP4 10.0.0.1\r\n");
    format!(
        "INVITE sip:{n}@example.com SIP/2.0\r\nCall-ID: c{n}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

struct Feed {
    r: TcpReassembler,
    out: Vec<Vec<u8>>,
}

impl Feed {
    fn new(limits: ReasmLimits) -> Self {
        Feed {
            r: TcpReassembler::new(&limits),
            out: Vec::new(),
        }
    }
    fn seg(&mut self, t: i64, seq: u32, data: &[u8]) {
        self.r.push(
            Timestamp(t),
            flow(),
            seq,
            false,
            false,
            false,
            data,
            &mut self.out,
        );
    }
}

#[test]
fn two_messages_in_one_segment() {
    let mut f = Feed::new(ReasmLimits::default());
    let mut data = msg(1);
    data.extend_from_slice(&msg(2));
    f.seg(0, 1000, &data);
    assert_eq!(f.out, vec![msg(1), msg(2)]);
    assert_eq!(f.r.stats().tcp_messages, 2);
}

#[test]
fn one_message_over_three_segments() {
    let mut f = Feed::new(ReasmLimits::default());
    let m = msg(1);
    let (a, rest) = m.split_at(10);
    let (b, c) = rest.split_at(60);
    f.seg(0, 1, a);
    f.seg(1, 11, b);
    assert!(f.out.is_empty());
    f.seg(2, 71, c);
    assert_eq!(f.out, vec![m]);
}

#[test]
fn every_segment_seen_twice() {
    let mut f = Feed::new(ReasmLimits::default());
    let mut data = msg(1);
    data.extend_from_slice(&msg(2));
    let mut seq = 500u32;
    for chunk in data.chunks(37) {
        f.seg(0, seq, chunk);
        f.seg(0, seq, chunk);
        seq = seq.wrapping_add(chunk.len() as u32);
    }
    assert_eq!(f.out, vec![msg(1), msg(2)]);
    assert_eq!(
        f.r.stats().tcp_retransmissions,
        data.chunks(37).count() as u64
    );
}

#[test]
fn out_of_order_waits_for_the_hole() {
    let mut f = Feed::new(ReasmLimits::default());
    let mut data = msg(1);
    data.extend_from_slice(&msg(2));
    let chunks: Vec<&[u8]> = data.chunks(50).collect();
    let seq_of = |i: usize| 7u32 + (i * 50) as u32;
    f.seg(0, seq_of(0), chunks[0]);
    for i in (2..chunks.len()).rev() {
        f.seg(0, seq_of(i), chunks[i]);
    }
    assert!(f.out.is_empty());
    assert_eq!(f.r.stats().tcp_out_of_order, (chunks.len() - 2) as u64);
    f.seg(0, seq_of(1), chunks[1]);
    assert_eq!(f.out, vec![msg(1), msg(2)]);
    assert_eq!(f.r.stats().tcp_gaps, 0);
}

#[test]
fn garbage_and_keepalives_resync() {
    let mut f = Feed::new(ReasmLimits::default());
    let junk = b"tail of an earlier body\r\n\x00\x01\x02\r\n";
    let mut data = junk.to_vec();
    data.extend_from_slice(&msg(1));
    data.extend_from_slice(b"\r\n\r\n");
    data.extend_from_slice(&msg(2));
    f.seg(0, 1, &data);
    assert_eq!(f.out, vec![msg(1), msg(2)]);
    assert_eq!(f.r.stats().tcp_garbage_bytes, junk.len() as u64);
    assert_eq!(f.r.stats().tcp_keepalive_bytes, 4);
}

#[test]
fn sequence_wraparound() {
    let mut f = Feed::new(ReasmLimits::default());
    let m = msg(1);
    let start = u32::MAX - 20;
    let (a, b) = m.split_at(30);
    // out of order across the wrap, then the first part
    f.seg(0, start.wrapping_add(30), b);
    assert!(f.out.is_empty());
    let mut g = Feed::new(ReasmLimits::default());
    g.seg(0, start, a);
    g.seg(0, start.wrapping_add(30), b);
    g.seg(0, start, a); // retransmission across the wrap
    assert_eq!(g.out, vec![m.clone()]);
    assert_eq!(g.r.stats().tcp_retransmissions, 1);

    let mut h = Feed::new(ReasmLimits::default());
    let (a1, a2) = a.split_at(10);
    h.seg(0, start, a1);
    h.seg(0, start.wrapping_add(30), b);
    h.seg(0, start.wrapping_add(10), a2);
    assert_eq!(h.out, vec![m]);
}

#[test]
fn missing_segment_is_skipped_after_wait() {
    let mut f = Feed::new(ReasmLimits::default());
    let m1 = msg(1);
    let m2 = msg(2);
    let m3 = msg(3);
    let (m1a, m1b) = m1.split_at(40);
    f.seg(0, 0, m1a);
    // m1b lost by the capture
    let s2 = m1.len() as u32;
    f.seg(1, s2, &m2);
    assert!(f.out.is_empty());
    // still waiting within TCP_GAP_WAIT_US
    f.seg(1_000, s2 + m2.len() as u32, &m3);
    assert!(f.out.is_empty());
    // a later segment (even a bare ACK) after the wait releases what follows the hole
    f.seg(TCP_GAP_WAIT_US + 10, s2 + (m2.len() + m3.len()) as u32, b"");
    assert_eq!(f.out, vec![m2, m3]);
    assert_eq!(f.r.stats().tcp_gaps, 1);
    assert_eq!(f.r.stats().tcp_gap_bytes, (m1a.len() + m1b.len()) as u64);
}

#[test]
fn fin_flushes_what_follows_a_hole() {
    let mut f = Feed::new(ReasmLimits::default());
    let m1 = msg(1);
    let m2 = msg(2);
    f.seg(0, 0, &m1[..20]);
    f.r.push(
        Timestamp(1),
        flow(),
        m1.len() as u32,
        false,
        true,
        false,
        &m2,
        &mut f.out,
    );
    assert_eq!(f.out, vec![m2]);
    assert_eq!(f.r.streams(), 0);
    assert_eq!(f.r.stats().tcp_streams_closed, 1);
}

#[test]
fn syn_starts_after_isn_and_mid_stream_join_resyncs() {
    let mut f = Feed::new(ReasmLimits::default());
    f.r.push(
        Timestamp(0),
        flow(),
        99,
        true,
        false,
        false,
        b"",
        &mut f.out,
    );
    f.seg(0, 100, &msg(1));
    assert_eq!(f.out, vec![msg(1)]);

    // joined in the middle of a message
    let mut g = Feed::new(ReasmLimits::default());
    let m1 = msg(1);
    let mut data = m1[25..].to_vec();
    data.extend_from_slice(&msg(2));
    g.seg(0, 12345, &data);
    assert_eq!(g.out, vec![msg(2)]);
    assert!(g.r.stats().tcp_garbage_bytes > 0);
}

#[test]
fn caps_are_counted() {
    // stream cap
    let mut r = TcpReassembler::new(&ReasmLimits {
        max_tcp_streams: 1,
        ..ReasmLimits::default()
    });
    let mut out = Vec::new();
    r.push(Timestamp(0), flow(), 1, false, false, false, b"x", &mut out);
    r.push(
        Timestamp(0),
        flow().reversed(),
        1,
        false,
        false,
        false,
        b"x",
        &mut out,
    );
    assert_eq!(r.stats().tcp_stream_cap_drops, 1);
    assert_eq!(r.streams(), 1);
    // a sweep after the idle timeout makes room
    let idle = duration_micros(ReasmLimits::default().tcp_idle_timeout);
    r.push(
        Timestamp(idle + 1),
        flow().reversed(),
        1,
        false,
        false,
        false,
        b"x",
        &mut out,
    );
    assert_eq!(r.stats().tcp_streams_expired, 1);
    assert_eq!(r.streams(), 1);

    // buffer cap: a message claiming a body larger than the cap
    let limits = ReasmLimits {
        max_tcp_stream_bytes: 1000,
        ..ReasmLimits::default()
    };
    let mut f = Feed::new(limits);
    let head = b"MESSAGE sip:a@b SIP/2.0\r\nContent-Length: 5000\r\n\r\n";
    f.seg(0, 0, head);
    let mut seq = head.len() as u32;
    for _ in 0..5 {
        f.seg(0, seq, &[b'a'; 1000]);
        seq += 1000;
    }
    f.seg(0, seq, &msg(9));
    assert!(f.r.stats().tcp_buffer_cap_drops >= 1);
    assert_eq!(f.out, vec![msg(9)]);

    // out-of-order cap: segments beyond a hole exceed the byte cap -> hole skipped
    let mut g = Feed::new(ReasmLimits {
        max_tcp_stream_bytes: 1000,
        ..ReasmLimits::default()
    });
    g.seg(0, 0, b"INVITE sip:x SIP/2.0\r\n");
    let m = msg(4);
    let mut seq = 5000u32;
    for _ in 0..20 {
        g.seg(0, seq, &m);
        seq += m.len() as u32;
    }
    assert!(g.r.stats().tcp_gaps >= 1);
    assert!(!g.out.is_empty());
    assert!(g.out.iter().all(|o| o == &m));
}

#[test]
fn expire_forgets_idle_streams() {
    let mut f = Feed::new(ReasmLimits::default());
    f.seg(0, 0, b"INVITE sip:x SIP/2.0\r\n");
    assert_eq!(f.r.streams(), 1);
    f.r.expire(Timestamp(1_000));
    assert_eq!(f.r.streams(), 1);
    f.r.expire(Timestamp(
        duration_micros(ReasmLimits::default().tcp_idle_timeout) + 1,
    ));
    assert_eq!(f.r.streams(), 0);
    assert_eq!(f.r.stats().tcp_streams_expired, 1);
}

#[test]
fn invalid_content_length_skips_the_message() {
    let mut f = Feed::new(ReasmLimits::default());
    let mut data = b"SIP/2.0 200 OK\r\nContent-Length: abc\r\n\r\n".to_vec();
    data.extend_from_slice(&msg(1));
    f.seg(0, 0, &data);
    assert_eq!(f.out, vec![msg(1)]);
    assert_eq!(f.r.stats().tcp_invalid_messages, 1);
}

#[test]
fn byte_at_a_time_trickle() {
    let mut f = Feed::new(ReasmLimits::default());
    let mut data = b"\r\n".to_vec();
    data.extend_from_slice(&msg(1));
    data.extend_from_slice(b"junk\r\n");
    data.extend_from_slice(&msg(2));
    for (i, b) in data.iter().enumerate() {
        f.seg(0, 77 + i as u32, std::slice::from_ref(b));
    }
    assert_eq!(f.out, vec![msg(1), msg(2)]);
    // Byte by byte, the CR of "junk\r\n" is garbage and its LF looks like a keep-alive.
    let st = f.r.stats();
    assert_eq!(st.tcp_garbage_bytes + st.tcp_keepalive_bytes, 8);
}

#[test]
fn long_trickled_start_line_is_bounded() {
    let mut f = Feed::new(ReasmLimits::default());
    let mut seq = 0u32;
    f.seg(0, seq, b"INVITE sip:");
    seq += 11;
    for _ in 0..20_000 {
        f.seg(0, seq, b"a");
        seq += 1;
    }
    f.seg(0, seq, b"\r\n");
    seq += 2;
    f.seg(0, seq, &msg(3));
    assert_eq!(f.out, vec![msg(3)]);
    assert!(f.r.stats().tcp_garbage_bytes >= 20_000);
}
