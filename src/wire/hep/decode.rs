//! Decoding HEP v2 and v3 messages into `HepRepr`, building HEP3 messages,
//! decompressing payloads, and framing HEP3 on a TCP stream.

use super::*;

/// A HEP3 message carrying `payload` captured at `ts` from `src` to `dst` over UDP:
/// what res_hep or siptrace would send. For tests, load generators and benches.
pub fn build_hep3(
    src: SocketAddr,
    dst: SocketAddr,
    ts: Timestamp,
    proto_type: ProtoType,
    payload: &[u8],
) -> Result<Vec<u8>, HepError> {
    let repr = HepRepr {
        version: 3,
        family: match src.ip() {
            IpAddr::V4(_) => IpFamily::V4,
            IpAddr::V6(_) => IpFamily::V6,
        },
        transport: HepTransport::Udp,
        src,
        dst,
        timestamp: Some(ts),
        proto_type,
        capture_id: Some(1),
        keepalive: None,
        auth_key: None,
        correlation_id: None,
        payload: HepPayload::Plain(payload),
    };
    let mut out = Vec::with_capacity(payload.len() + 128);
    repr.emit_hep3(&mut out)?;
    Ok(out)
}

/// Inflates a zlib, gzip or raw deflate stream into `out`, at most `cap` bytes.
pub fn decompress(data: &[u8], cap: usize, out: &mut Vec<u8>) -> Result<(), HepError> {
    out.clear();
    let limit = u64::try_from(cap).unwrap_or(u64::MAX).saturating_add(1);
    let res = match data {
        [0x1f, 0x8b, ..] => flate2::read::MultiGzDecoder::new(data)
            .take(limit)
            .read_to_end(out),
        [a, b, ..] if a & 0x0f == 8 && (u16::from(*a) << 8 | u16::from(*b)) % 31 == 0 => {
            flate2::read::ZlibDecoder::new(data)
                .take(limit)
                .read_to_end(out)
        }
        _ => flate2::read::DeflateDecoder::new(data)
            .take(limit)
            .read_to_end(out),
    };
    if res.is_err() {
        out.clear();
        return Err(HepError::Decompress);
    }
    if out.len() > cap {
        out.clear();
        return Err(HepError::TooLarge { cap });
    }
    Ok(())
}

pub(super) fn fixed<const N: usize>(c: &Chunk<'_>) -> Result<[u8; N], HepError> {
    <[u8; N]>::try_from(c.data).map_err(|_| HepError::BadChunk {
        kind: c.kind,
        at: c.at,
        what: "bad_value_length",
    })
}

pub(super) fn parse_v3<'a>(packet: &HepPacket<&'a [u8]>) -> Result<HepRepr<'a>, HepError> {
    let mut family = None;
    let mut transport = None;
    let (mut src_ip, mut dst_ip) = (None::<IpAddr>, None::<IpAddr>);
    let (mut src_port, mut dst_port) = (None, None);
    let (mut ts_sec, mut ts_usec) = (None, None);
    let mut proto_type = None;
    let mut capture_id = None;
    let mut keepalive = None;
    let mut auth_key = None;
    let mut correlation_id = None;
    let mut payload = None;
    for c in packet.chunks() {
        let c = c?;
        if c.vendor != 0 {
            continue;
        }
        match c.kind {
            chunk::IP_FAMILY => family = Some(u8::from_be_bytes(fixed(&c)?)),
            chunk::IP_PROTO => {
                transport = Some(HepTransport::from_u8(u8::from_be_bytes(fixed(&c)?)))
            }
            chunk::IPV4_SRC => src_ip = Some(Ipv4Addr::from(fixed::<4>(&c)?).into()),
            chunk::IPV4_DST => dst_ip = Some(Ipv4Addr::from(fixed::<4>(&c)?).into()),
            chunk::IPV6_SRC => src_ip = Some(Ipv6Addr::from(fixed::<16>(&c)?).into()),
            chunk::IPV6_DST => dst_ip = Some(Ipv6Addr::from(fixed::<16>(&c)?).into()),
            chunk::SRC_PORT => src_port = Some(u16::from_be_bytes(fixed(&c)?)),
            chunk::DST_PORT => dst_port = Some(u16::from_be_bytes(fixed(&c)?)),
            chunk::TS_SEC => ts_sec = Some(u32::from_be_bytes(fixed(&c)?)),
            chunk::TS_USEC => ts_usec = Some(u32::from_be_bytes(fixed(&c)?)),
            chunk::PROTO_TYPE => {
                proto_type = Some(ProtoType::from_u8(u8::from_be_bytes(fixed(&c)?)))
            }
            chunk::CAPTURE_ID => {
                // The spec says u32; early agents sent u16.
                capture_id = Some(match c.data.len() {
                    2 => u32::from(be16(c.data, 0)),
                    _ => u32::from_be_bytes(fixed(&c)?),
                })
            }
            chunk::KEEPALIVE => keepalive = Some(u16::from_be_bytes(fixed(&c)?)),
            chunk::AUTH_KEY => auth_key = Some(AuthKey(c.data)),
            chunk::PAYLOAD => payload = Some(HepPayload::Plain(c.data)),
            chunk::COMPRESSED_PAYLOAD => payload = Some(HepPayload::Compressed(c.data)),
            chunk::CORRELATION_ID => correlation_id = Some(c.data),
            _ => {}
        }
    }
    let (Some(src_ip), Some(dst_ip), Some(src_port), Some(dst_port)) =
        (src_ip, dst_ip, src_port, dst_port)
    else {
        return Err(HepError::MissingAddress);
    };
    let family = match (src_ip, dst_ip) {
        (IpAddr::V4(_), IpAddr::V4(_)) => IpFamily::V4,
        (IpAddr::V6(_), IpAddr::V6(_)) => IpFamily::V6,
        _ => return Err(HepError::AddressMismatch),
    }
    .checked_against(family)?;
    let proto_type = proto_type.ok_or(HepError::MissingChunk {
        kind: chunk::PROTO_TYPE,
    })?;
    let payload = payload.ok_or(HepError::MissingPayload)?;
    let timestamp = ts_sec.map(|s| {
        Timestamp::from_secs(i64::from(s)).saturating_add_micros(i64::from(ts_usec.unwrap_or(0)))
    });
    Ok(HepRepr {
        version: 3,
        family,
        // Agents that leave it out capture UDP.
        transport: transport.unwrap_or(HepTransport::Udp),
        src: SocketAddr::new(src_ip, src_port),
        dst: SocketAddr::new(dst_ip, dst_port),
        timestamp,
        proto_type,
        capture_id,
        keepalive,
        auth_key,
        correlation_id,
        payload,
    })
}

impl IpFamily {
    /// The family chunk must agree with the addresses when present.
    fn checked_against(self, chunk_value: Option<u8>) -> Result<IpFamily, HepError> {
        match (self, chunk_value) {
            (_, None) | (IpFamily::V4, Some(AF_INET)) | (IpFamily::V6, Some(AF_INET6)) => Ok(self),
            (_, Some(f)) if f != AF_INET && f != AF_INET6 => {
                Err(HepError::UnsupportedFamily { family: f })
            }
            _ => Err(HepError::AddressMismatch),
        }
    }
}

/// HEPv1/v2: fixed header, addresses, (v2) time header, then the payload to the end.
/// No SIP-vs-other marker exists: every v1/v2 payload is taken as SIP.
pub(super) fn parse_v2(b: &[u8]) -> Result<HepRepr<'_>, HepError> {
    let version = u8_at(b, 0);
    let family_raw = u8_at(b, 2);
    let addr_len = v2_addr_len(family_raw)?;
    let (family, src_ip, dst_ip): (IpFamily, IpAddr, IpAddr) = match family_raw {
        AF_INET => {
            let a = b.get(V2_HEADER_LEN..V2_HEADER_LEN + 8).unwrap_or_default();
            let (s, d) = a.split_at_checked(4).unwrap_or_default();
            (
                IpFamily::V4,
                Ipv4Addr::from(<[u8; 4]>::try_from(s).unwrap_or_default()).into(),
                Ipv4Addr::from(<[u8; 4]>::try_from(d).unwrap_or_default()).into(),
            )
        }
        _ => {
            let a = b.get(V2_HEADER_LEN..V2_HEADER_LEN + 32).unwrap_or_default();
            let (s, d) = a.split_at_checked(16).unwrap_or_default();
            (
                IpFamily::V6,
                Ipv6Addr::from(<[u8; 16]>::try_from(s).unwrap_or_default()).into(),
                Ipv6Addr::from(<[u8; 16]>::try_from(d).unwrap_or_default()).into(),
            )
        }
    };
    let mut off = V2_HEADER_LEN + addr_len;
    let (timestamp, capture_id) = if version == 2 {
        // Agents write the time header in their own (little-endian) byte order.
        let secs = le32(b, off);
        let usecs = le32(b, off + 4);
        let captid = u16::from_le_bytes([u8_at(b, off + 8), u8_at(b, off + 9)]);
        off += V2_TIME_LEN;
        (
            Some(Timestamp::from_secs(i64::from(secs)).saturating_add_micros(i64::from(usecs))),
            Some(u32::from(captid)),
        )
    } else {
        (None, None)
    };
    let payload = tail(b, off);
    if payload.is_empty() {
        return Err(HepError::MissingPayload);
    }
    Ok(HepRepr {
        version,
        family,
        transport: HepTransport::from_u8(u8_at(b, 3)),
        src: SocketAddr::new(src_ip, be16(b, 4)),
        dst: SocketAddr::new(dst_ip, be16(b, 6)),
        timestamp,
        proto_type: ProtoType::Sip,
        capture_id,
        keepalive: None,
        auth_key: None,
        correlation_id: None,
        payload: HepPayload::Plain(payload),
    })
}

/// Length of the HEP3 message at the start of a TCP stream buffer: `Ok(None)` when
/// more bytes are needed, `Err` when the stream is not HEP3 (resync is hopeless).
pub fn hep3_frame_len(buf: &[u8]) -> Result<Option<usize>, HepError> {
    let n = buf.len().min(HEP3_MAGIC.len());
    let (head, magic) = (
        buf.get(..n).unwrap_or_default(),
        HEP3_MAGIC.get(..n).unwrap_or_default(),
    );
    if head != magic {
        return Err(HepError::BadMagic {
            first: buf.first().copied().unwrap_or(0),
        });
    }
    if buf.len() < HEP3_HEADER_LEN {
        return Ok(None);
    }
    let len = usize::from(be16(buf, 4));
    if len < HEP3_HEADER_LEN {
        return Err(HepError::BadLength { len });
    }
    Ok((buf.len() >= len).then_some(len))
}
