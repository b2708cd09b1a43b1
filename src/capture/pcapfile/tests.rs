use super::*;
use std::io::Write;

fn pcap_header(magic_le: [u8; 4], big_endian: bool, dlt: u32) -> Vec<u8> {
    let mut v = magic_le.to_vec();
    let u16b = |x: u16| {
        if big_endian {
            x.to_be_bytes()
        } else {
            x.to_le_bytes()
        }
    };
    let u32b = |x: u32| {
        if big_endian {
            x.to_be_bytes()
        } else {
            x.to_le_bytes()
        }
    };
    v.extend_from_slice(&u16b(2));
    v.extend_from_slice(&u16b(4));
    v.extend_from_slice(&u32b(0));
    v.extend_from_slice(&u32b(0));
    v.extend_from_slice(&u32b(65535));
    v.extend_from_slice(&u32b(dlt));
    v
}

fn pcap_record(big_endian: bool, sec: u32, frac: u32, data: &[u8]) -> Vec<u8> {
    let u32b: fn(u32) -> [u8; 4] = if big_endian {
        u32::to_be_bytes
    } else {
        u32::to_le_bytes
    };
    let mut v = Vec::new();
    v.extend_from_slice(&u32b(sec));
    v.extend_from_slice(&u32b(frac));
    v.extend_from_slice(&u32b(data.len() as u32));
    v.extend_from_slice(&u32b(data.len() as u32));
    v.extend_from_slice(data);
    v
}

fn write(bytes: &[u8]) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(bytes).unwrap();
    f.flush().unwrap();
    f
}

fn read_all(path: &Path) -> (Vec<(Timestamp, LinkType, Vec<u8>)>, PcapFileStats) {
    let mut r = PcapFileReader::open(path).unwrap();
    let mut out = Vec::new();
    while let Some(p) = r.next_packet().unwrap() {
        out.push((p.ts, p.link, p.data.to_vec()));
    }
    (out, r.stats().clone())
}

#[test]
fn pcap_microsecond_little_endian() {
    let mut b = pcap_header([0xd4, 0xc3, 0xb2, 0xa1], false, 1);
    b.extend(pcap_record(false, 10, 5, b"abc"));
    b.extend(pcap_record(false, 11, 999_999, b"defg"));
    let f = write(&b);
    let (pkts, stats) = read_all(f.path());
    assert_eq!(pkts.len(), 2);
    assert_eq!(
        pkts[0],
        (Timestamp(10_000_005), LinkType::Ethernet, b"abc".to_vec())
    );
    assert_eq!(pkts[1].0, Timestamp(11_999_999));
    assert_eq!(pkts[1].2, b"defg");
    assert!(!stats.truncated_tail);
}

#[test]
fn pcap_nanosecond_big_endian() {
    let mut b = pcap_header([0xa1, 0xb2, 0x3c, 0x4d], true, 101);
    b.extend(pcap_record(true, 2, 123_456_789, b"x"));
    let f = write(&b);
    let (pkts, _) = read_all(f.path());
    assert_eq!(
        pkts,
        vec![(Timestamp(2_123_456), LinkType::RawIp, b"x".to_vec())]
    );
}

#[test]
fn truncated_tail_keeps_earlier_packets() {
    let mut b = pcap_header([0xd4, 0xc3, 0xb2, 0xa1], false, 113);
    b.extend(pcap_record(false, 1, 0, b"first"));
    b.extend(pcap_record(false, 2, 0, b"second"));
    let mut cut = pcap_record(false, 3, 0, b"third packet");
    cut.truncate(20);
    b.extend(cut);
    let f = write(&b);
    let (pkts, stats) = read_all(f.path());
    assert_eq!(pkts.len(), 2);
    assert_eq!(pkts[1].2, b"second");
    assert_eq!(pkts[0].1, LinkType::LinuxSll);
    assert!(stats.truncated_tail);
}

#[test]
fn streams_many_packets_and_grows_for_a_big_one() {
    let mut b = pcap_header([0xd4, 0xc3, 0xb2, 0xa1], false, 1);
    for i in 0..20_000u32 {
        b.extend(pcap_record(false, i, 0, &[i as u8; 100]));
    }
    let big = vec![0x5au8; 700_000];
    b.extend(pcap_record(false, 99_999, 0, &big));
    b.extend(pcap_record(false, 100_000, 0, b"after"));
    let f = write(&b);
    let mut r = PcapFileReader::open(f.path()).unwrap();
    let mut n = 0u32;
    let mut last = Vec::new();
    while let Some(p) = r.next_packet().unwrap() {
        if n < 20_000 {
            assert_eq!(p.data, &[n as u8; 100][..]);
            assert_eq!(p.ts, Timestamp::from_secs(i64::from(n)));
        } else if n == 20_000 {
            assert_eq!(p.data, &big[..]);
        }
        last = p.data.to_vec();
        n += 1;
    }
    assert_eq!(n, 20_002);
    assert_eq!(last, b"after");
    assert_eq!(r.stats().packets, 20_002);
    // ended stays ended
    assert!(r.next_packet().unwrap().is_none());
}

fn block(kind: u32, body: &[u8]) -> Vec<u8> {
    let len = 12 + body.len() as u32;
    let mut v = kind.to_le_bytes().to_vec();
    v.extend_from_slice(&len.to_le_bytes());
    v.extend_from_slice(body);
    v.extend_from_slice(&len.to_le_bytes());
    v
}

fn shb() -> Vec<u8> {
    let mut body = 0x1a2b_3c4du32.to_le_bytes().to_vec();
    body.extend_from_slice(&1u16.to_le_bytes());
    body.extend_from_slice(&0u16.to_le_bytes());
    body.extend_from_slice(&(-1i64).to_le_bytes());
    block(0x0a0d_0d0a, &body)
}

fn idb(linktype: u16, tsresol: Option<u8>) -> Vec<u8> {
    let mut body = linktype.to_le_bytes().to_vec();
    body.extend_from_slice(&0u16.to_le_bytes());
    body.extend_from_slice(&0u32.to_le_bytes());
    if let Some(r) = tsresol {
        body.extend_from_slice(&9u16.to_le_bytes());
        body.extend_from_slice(&1u16.to_le_bytes());
        body.extend_from_slice(&[r, 0, 0, 0]);
        body.extend_from_slice(&[0, 0, 0, 0]);
    }
    block(1, &body)
}

fn padded(data: &[u8]) -> Vec<u8> {
    let mut v = data.to_vec();
    while v.len() % 4 != 0 {
        v.push(0);
    }
    v
}

fn epb(if_id: u32, ts: u64, data: &[u8]) -> Vec<u8> {
    let mut body = if_id.to_le_bytes().to_vec();
    body.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
    body.extend_from_slice(&(ts as u32).to_le_bytes());
    body.extend_from_slice(&(data.len() as u32).to_le_bytes());
    body.extend_from_slice(&(data.len() as u32).to_le_bytes());
    body.extend_from_slice(&padded(data));
    block(6, &body)
}

fn spb(data: &[u8]) -> Vec<u8> {
    let mut body = (data.len() as u32).to_le_bytes().to_vec();
    body.extend_from_slice(&padded(data));
    block(3, &body)
}

#[test]
fn pcapng_interfaces_resolutions_and_skipped_blocks() {
    let mut b = shb();
    b.extend(idb(1, None)); // Ethernet, microseconds
    b.extend(idb(101, Some(9))); // raw IP, nanoseconds
    b.extend(block(4, &[0, 0, 0, 0])); // name resolution: skipped
    b.extend(epb(0, 1_500_000, b"eth-frame"));
    b.extend(epb(1, 2_000_000_123, b"ip"));
    b.extend(epb(5, 0, b"nobody")); // unknown interface
    b.extend(spb(b"simple"));
    // a second section starts over with its own interfaces
    b.extend(shb());
    b.extend(idb(276, Some(3)));
    b.extend(epb(0, 7, b"sll2"));
    let f = write(&b);
    let (pkts, stats) = read_all(f.path());
    assert_eq!(
        pkts,
        vec![
            (
                Timestamp(1_500_000),
                LinkType::Ethernet,
                b"eth-frame".to_vec()
            ),
            (Timestamp(2_000_000), LinkType::RawIp, b"ip".to_vec()),
            (Timestamp(2_000_000), LinkType::Ethernet, b"simple".to_vec()),
            (Timestamp(7_000), LinkType::LinuxSll2, b"sll2".to_vec()),
        ]
    );
    assert_eq!(stats.unknown_interface, 1);
    assert_eq!(stats.skipped_blocks, 1);
    assert_eq!(stats.packets, 4);
}

#[test]
fn bad_files_name_the_file() {
    let missing = Path::new("/nonexistent/x.pcap");
    let e = PcapFileReader::open(missing).unwrap_err();
    assert_eq!(e.reason(), "open_failed");
    assert!(e.to_string().contains("/nonexistent/x.pcap"), "{e}");

    let f = write(b"");
    assert_eq!(
        PcapFileReader::open(f.path()).unwrap_err().reason(),
        "empty_file"
    );

    let f = write(b"this is not a capture file at all, just text\n");
    let e = PcapFileReader::open(f.path()).unwrap_err();
    assert_eq!(e.reason(), "not_pcap");
    assert!(e.to_string().contains(&f.path().display().to_string()));
}

#[test]
fn corrupt_pcapng_block_reports_offset_after_good_packets() {
    let mut b = shb();
    b.extend(idb(1, None));
    b.extend(epb(0, 1, b"good"));
    let good_len = b.len();
    // block length not a multiple of 4 and smaller than the minimum
    b.extend_from_slice(&6u32.to_le_bytes());
    b.extend_from_slice(&5u32.to_le_bytes());
    b.extend_from_slice(&[0u8; 16]);
    let f = write(&b);
    let mut r = PcapFileReader::open(f.path()).unwrap();
    assert_eq!(r.next_packet().unwrap().unwrap().data, b"good");
    match r.next_packet() {
        Err(CaptureError::Corrupt { offset, .. }) => assert_eq!(offset, good_len as u64),
        Ok(None) => assert!(r.stats().truncated_tail),
        other => panic!("{other:?}"),
    }
    assert!(r.next_packet().unwrap().is_none());
}
