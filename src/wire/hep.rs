//! HEP (Homer Encapsulation Protocol) v1, v2 and v3: a captured packet's payload
//! plus the addresses, ports and capture time the capture agent saw.
//!
//! Asterisk (res_hep), FreeSWITCH, Kamailio/OpenSIPS (siptrace) and heplify send
//! HEP3 over UDP or TCP; old Kamailio and captagent setups still send v1/v2.
//! `HepPacket` is the byte view, `HepRepr` the validated content, borrowed from it.

use std::fmt;
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::field::{be16, le32, tail, u8_at};
use crate::time::Timestamp;

mod decode;
pub use decode::{build_hep3, decompress, hep3_frame_len};
use decode::{parse_v2, parse_v3};

pub const HEP3_MAGIC: [u8; 4] = *b"HEP3";
/// "HEP3" + total length.
pub const HEP3_HEADER_LEN: usize = 6;
/// vendor id + type id + length.
pub const CHUNK_HEADER_LEN: usize = 6;
/// Largest payload a compressed chunk may inflate to; a SIP message is far smaller,
/// so anything bigger is a bomb or garbage.
pub const MAX_DECOMPRESSED: usize = 64 * 1024;
/// Port HEP collectors listen on by convention.
pub const DEFAULT_PORT: u16 = 9060;

/// HEPv1/v2 fixed header: version, length, family, protocol, two ports.
const V2_HEADER_LEN: usize = 8;
/// HEPv2 time header: seconds, microseconds (both little-endian), capture id (u16).
const V2_TIME_LEN: usize = 10;

/// Linux address families, as HEP carries them.
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;

/// Generic (vendor 0) HEP3 chunk types.
pub mod chunk {
    pub const IP_FAMILY: u16 = 1;
    pub const IP_PROTO: u16 = 2;
    pub const IPV4_SRC: u16 = 3;
    pub const IPV4_DST: u16 = 4;
    pub const IPV6_SRC: u16 = 5;
    pub const IPV6_DST: u16 = 6;
    pub const SRC_PORT: u16 = 7;
    pub const DST_PORT: u16 = 8;
    pub const TS_SEC: u16 = 9;
    pub const TS_USEC: u16 = 10;
    pub const PROTO_TYPE: u16 = 11;
    pub const CAPTURE_ID: u16 = 12;
    pub const KEEPALIVE: u16 = 13;
    pub const AUTH_KEY: u16 = 14;
    pub const PAYLOAD: u16 = 15;
    pub const COMPRESSED_PAYLOAD: u16 = 16;
    pub const CORRELATION_ID: u16 = 17;
}

/// A HEP message that could not be used. Cheap to copy: bad input is common.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HepError {
    #[error("HEP truncated: need {need} bytes, have {have}")]
    Truncated { need: usize, have: usize },
    #[error("not HEP: first byte 0x{first:02x}")]
    BadMagic { first: u8 },
    #[error("HEP3 length field {len} is shorter than the header")]
    BadLength { len: usize },
    #[error("HEP chunk type {kind} at offset {at}: {what}")]
    BadChunk {
        kind: u16,
        at: usize,
        what: &'static str,
    },
    #[error("HEP address family {family} is not IPv4 or IPv6")]
    UnsupportedFamily { family: u8 },
    #[error("HEP message lacks source or destination address or port")]
    MissingAddress,
    #[error("HEP source and destination are of different IP families")]
    AddressMismatch,
    #[error("HEP message lacks chunk type {kind}")]
    MissingChunk { kind: u16 },
    #[error("HEP message carries no payload")]
    MissingPayload,
    #[error("HEP compressed payload does not inflate")]
    Decompress,
    #[error("HEP payload inflates beyond {cap} bytes")]
    TooLarge { cap: usize },
}

impl HepError {
    /// Stable snake_case key for drop counters.
    pub fn reason(&self) -> &'static str {
        match self {
            HepError::Truncated { .. } => "hep_truncated",
            HepError::BadMagic { .. } => "hep_bad_magic",
            HepError::BadLength { .. } => "hep_bad_length",
            HepError::BadChunk { .. } => "hep_bad_chunk",
            HepError::UnsupportedFamily { .. } => "hep_unsupported_family",
            HepError::MissingAddress => "hep_missing_address",
            HepError::AddressMismatch => "hep_address_mismatch",
            HepError::MissingChunk { .. } => "hep_missing_chunk",
            HepError::MissingPayload => "hep_missing_payload",
            HepError::Decompress => "hep_decompress",
            HepError::TooLarge { .. } => "hep_too_large",
        }
    }
}

/// Whether a UDP payload is worth decoding as HEP: the v3 magic, or a v1/v2
/// header with a real address family. Cheap; used to pick HEP out of a capture.
pub fn looks_like_hep(b: &[u8]) -> bool {
    if b.starts_with(&HEP3_MAGIC) {
        return true;
    }
    matches!(
        (b.first(), b.get(2)),
        (Some(1 | 2), Some(&AF_INET | &AF_INET6))
    ) && b.len() >= V2_HEADER_LEN
}

/// The HEP version a buffer announces, read from its first bytes.
fn version_of(b: &[u8]) -> Result<u8, HepError> {
    match b.first() {
        None => Err(HepError::Truncated { need: 1, have: 0 }),
        Some(b'H') if b.len() < HEP3_MAGIC.len() => Err(HepError::Truncated {
            need: HEP3_MAGIC.len(),
            have: b.len(),
        }),
        Some(_) if b.starts_with(&HEP3_MAGIC) => Ok(3),
        Some(&v @ (1 | 2)) => Ok(v),
        Some(&first) => Err(HepError::BadMagic { first }),
    }
}

/// A byte view of one HEP message (any version), checked for its header.
#[derive(Debug, Clone, Copy)]
pub struct HepPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> HepPacket<T> {
    pub const fn new_unchecked(buffer: T) -> Self {
        HepPacket { buffer }
    }

    pub fn new_checked(buffer: T) -> Result<Self, HepError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks the magic or version byte and that the declared length (v3) or the
    /// fixed headers (v1/v2) fit in the buffer.
    pub fn check_len(&self) -> Result<(), HepError> {
        let b = self.buffer.as_ref();
        let have = b.len();
        match version_of(b)? {
            3 => {
                if have < HEP3_HEADER_LEN {
                    return Err(HepError::Truncated {
                        need: HEP3_HEADER_LEN,
                        have,
                    });
                }
                let len = usize::from(be16(b, 4));
                if len < HEP3_HEADER_LEN {
                    return Err(HepError::BadLength { len });
                }
                if len > have {
                    return Err(HepError::Truncated { need: len, have });
                }
                Ok(())
            }
            v => {
                if have < V2_HEADER_LEN {
                    return Err(HepError::Truncated {
                        need: V2_HEADER_LEN,
                        have,
                    });
                }
                let need = V2_HEADER_LEN
                    + v2_addr_len(u8_at(b, 2))?
                    + if v == 2 { V2_TIME_LEN } else { 0 };
                if have < need {
                    return Err(HepError::Truncated { need, have });
                }
                Ok(())
            }
        }
    }

    /// 1, 2 or 3 (0 only for an unchecked view of garbage).
    pub fn version(&self) -> u8 {
        version_of(self.buffer.as_ref()).unwrap_or(0)
    }

    /// The HEP3 total length field; for v1/v2 the whole buffer.
    pub fn total_len(&self) -> usize {
        let b = self.buffer.as_ref();
        if self.version() == 3 {
            usize::from(be16(b, 4))
        } else {
            b.len()
        }
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }
}

impl<'a> HepPacket<&'a [u8]> {
    /// The HEP3 chunks, in order. Empty for v1/v2.
    pub fn chunks(&self) -> Chunks<'a> {
        let b = self.buffer;
        let body = if self.version() == 3 {
            b.get(HEP3_HEADER_LEN..self.total_len()).unwrap_or_default()
        } else {
            &[]
        };
        Chunks {
            rest: body,
            at: HEP3_HEADER_LEN,
            failed: false,
        }
    }
}

/// One HEP3 chunk: `data` excludes the 6-byte chunk header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk<'a> {
    pub vendor: u16,
    pub kind: u16,
    /// Offset of the chunk header in the message, for error reports.
    pub at: usize,
    pub data: &'a [u8],
}

/// Walks HEP3 chunks; stops after the first malformed one.
#[derive(Debug, Clone)]
pub struct Chunks<'a> {
    rest: &'a [u8],
    at: usize,
    failed: bool,
}

impl<'a> Iterator for Chunks<'a> {
    type Item = Result<Chunk<'a>, HepError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        let b = self.rest;
        let kind = be16(b, 2);
        let bad = |what| HepError::BadChunk {
            kind,
            at: self.at,
            what,
        };
        let res = if b.len() < CHUNK_HEADER_LEN {
            Err(bad("header_overruns_message"))
        } else {
            let len = usize::from(be16(b, 4));
            if len < CHUNK_HEADER_LEN {
                Err(bad("length_below_header"))
            } else {
                match (b.get(CHUNK_HEADER_LEN..len), b.get(len..)) {
                    (Some(data), Some(rest)) => {
                        let c = Chunk {
                            vendor: be16(b, 0),
                            kind,
                            at: self.at,
                            data,
                        };
                        self.rest = rest;
                        self.at = self.at.saturating_add(len);
                        Ok(c)
                    }
                    _ => Err(bad("overruns_message")),
                }
            }
        };
        if res.is_err() {
            self.failed = true;
        }
        Some(res)
    }
}

fn v2_addr_len(family: u8) -> Result<usize, HepError> {
    match family {
        AF_INET => Ok(8),
        AF_INET6 => Ok(32),
        family => Err(HepError::UnsupportedFamily { family }),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpFamily {
    V4,
    V6,
}

/// The transport the captured packet travelled on (not the one HEP came by).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HepTransport {
    Udp,
    Tcp,
    /// SCTP, TLS as some agents mark it, or anything else.
    Other(u8),
}

impl HepTransport {
    pub fn from_u8(p: u8) -> Self {
        match p {
            17 => HepTransport::Udp,
            6 => HepTransport::Tcp,
            other => HepTransport::Other(other),
        }
    }

    pub fn to_u8(self) -> u8 {
        match self {
            HepTransport::Udp => 17,
            HepTransport::Tcp => 6,
            HepTransport::Other(p) => p,
        }
    }
}

/// What the payload is (HEP3 chunk 11), from the HEP3 spec's registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProtoType {
    Sip,
    Xmpp,
    Sdp,
    Rtp,
    /// RTCP, as JSON in practice (heplify, rtpengine).
    Rtcp,
    Mgcp,
    Megaco,
    M2ua,
    M3ua,
    Iax,
    H3222,
    H321,
    M2pa,
    MosFullReport,
    MosShortReport,
    SipJson,
    DnsJson,
    M3uaJson,
    Rtsp,
    Diameter,
    GsmMap,
    Log,
    Other(u8),
}

impl ProtoType {
    pub fn from_u8(v: u8) -> Self {
        match v {
            0x01 => ProtoType::Sip,
            0x02 => ProtoType::Xmpp,
            0x03 => ProtoType::Sdp,
            0x04 => ProtoType::Rtp,
            0x05 => ProtoType::Rtcp,
            0x06 => ProtoType::Mgcp,
            0x07 => ProtoType::Megaco,
            0x08 => ProtoType::M2ua,
            0x09 => ProtoType::M3ua,
            0x0a => ProtoType::Iax,
            0x0b => ProtoType::H3222,
            0x0c => ProtoType::H321,
            0x0d => ProtoType::M2pa,
            0x22 => ProtoType::MosFullReport,
            0x23 => ProtoType::MosShortReport,
            0x32 => ProtoType::SipJson,
            0x35 => ProtoType::DnsJson,
            0x36 => ProtoType::M3uaJson,
            0x37 => ProtoType::Rtsp,
            0x38 => ProtoType::Diameter,
            0x39 => ProtoType::GsmMap,
            0x64 => ProtoType::Log,
            other => ProtoType::Other(other),
        }
    }

    pub fn to_u8(self) -> u8 {
        match self {
            ProtoType::Sip => 0x01,
            ProtoType::Xmpp => 0x02,
            ProtoType::Sdp => 0x03,
            ProtoType::Rtp => 0x04,
            ProtoType::Rtcp => 0x05,
            ProtoType::Mgcp => 0x06,
            ProtoType::Megaco => 0x07,
            ProtoType::M2ua => 0x08,
            ProtoType::M3ua => 0x09,
            ProtoType::Iax => 0x0a,
            ProtoType::H3222 => 0x0b,
            ProtoType::H321 => 0x0c,
            ProtoType::M2pa => 0x0d,
            ProtoType::MosFullReport => 0x22,
            ProtoType::MosShortReport => 0x23,
            ProtoType::SipJson => 0x32,
            ProtoType::DnsJson => 0x35,
            ProtoType::M3uaJson => 0x36,
            ProtoType::Rtsp => 0x37,
            ProtoType::Diameter => 0x38,
            ProtoType::GsmMap => 0x39,
            ProtoType::Log => 0x64,
            ProtoType::Other(v) => v,
        }
    }
}

/// The HEP3 authentication key. Its Debug never shows the bytes: reprs get logged.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct AuthKey<'a>(pub &'a [u8]);

impl fmt::Debug for AuthKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AuthKey(<{} bytes redacted>)", self.0.len())
    }
}

/// The captured bytes, as the agent sent them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HepPayload<'a> {
    Plain(&'a [u8]),
    /// zlib, gzip or raw deflate (HEP3 chunk 16).
    Compressed(&'a [u8]),
}

/// A validated HEP message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HepRepr<'a> {
    pub version: u8,
    pub family: IpFamily,
    pub transport: HepTransport,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    /// Capture time; v1 has none, v3 may omit it.
    pub timestamp: Option<Timestamp>,
    pub proto_type: ProtoType,
    pub capture_id: Option<u32>,
    pub keepalive: Option<u16>,
    pub auth_key: Option<AuthKey<'a>>,
    pub correlation_id: Option<&'a [u8]>,
    pub payload: HepPayload<'a>,
}

impl<'a> HepRepr<'a> {
    pub fn parse(packet: &HepPacket<&'a [u8]>) -> Result<HepRepr<'a>, HepError> {
        packet.check_len()?;
        match packet.version() {
            3 => parse_v3(packet),
            _ => parse_v2(packet.buffer),
        }
    }

    /// The payload bytes, inflated into `scratch` when compressed.
    pub fn payload<'b>(&'b self, scratch: &'b mut Vec<u8>) -> Result<&'b [u8], HepError>
    where
        'a: 'b,
    {
        match self.payload {
            HepPayload::Plain(p) => Ok(p),
            HepPayload::Compressed(z) => {
                decompress(z, MAX_DECOMPRESSED, scratch)?;
                Ok(scratch.as_slice())
            }
        }
    }

    /// Writes this message as HEP3 (whatever `version` says). Fails only when
    /// the message would not fit the 16-bit length field.
    pub fn emit_hep3(&self, out: &mut Vec<u8>) -> Result<(), HepError> {
        let start = out.len();
        out.extend_from_slice(&HEP3_MAGIC);
        out.extend_from_slice(&[0, 0]);
        let mut put = |kind: u16, data: &[u8]| -> Result<(), HepError> {
            let len =
                u16::try_from(data.len() + CHUNK_HEADER_LEN).map_err(|_| HepError::TooLarge {
                    cap: usize::from(u16::MAX),
                })?;
            out.extend_from_slice(&0u16.to_be_bytes());
            out.extend_from_slice(&kind.to_be_bytes());
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(data);
            Ok(())
        };
        let family = match self.src.ip() {
            IpAddr::V4(_) => AF_INET,
            IpAddr::V6(_) => AF_INET6,
        };
        put(chunk::IP_FAMILY, &[family])?;
        put(chunk::IP_PROTO, &[self.transport.to_u8()])?;
        for (ip, v4, v6) in [
            (self.src.ip(), chunk::IPV4_SRC, chunk::IPV6_SRC),
            (self.dst.ip(), chunk::IPV4_DST, chunk::IPV6_DST),
        ] {
            match ip {
                IpAddr::V4(a) => put(v4, &a.octets())?,
                IpAddr::V6(a) => put(v6, &a.octets())?,
            }
        }
        put(chunk::SRC_PORT, &self.src.port().to_be_bytes())?;
        put(chunk::DST_PORT, &self.dst.port().to_be_bytes())?;
        if let Some(ts) = self.timestamp {
            let us = ts.micros();
            let secs = u32::try_from(us.div_euclid(1_000_000)).unwrap_or(0);
            let usecs = u32::try_from(us.rem_euclid(1_000_000)).unwrap_or(0);
            put(chunk::TS_SEC, &secs.to_be_bytes())?;
            put(chunk::TS_USEC, &usecs.to_be_bytes())?;
        }
        put(chunk::PROTO_TYPE, &[self.proto_type.to_u8()])?;
        if let Some(id) = self.capture_id {
            put(chunk::CAPTURE_ID, &id.to_be_bytes())?;
        }
        if let Some(k) = self.keepalive {
            put(chunk::KEEPALIVE, &k.to_be_bytes())?;
        }
        if let Some(AuthKey(k)) = self.auth_key {
            put(chunk::AUTH_KEY, k)?;
        }
        if let Some(c) = self.correlation_id {
            put(chunk::CORRELATION_ID, c)?;
        }
        match self.payload {
            HepPayload::Plain(p) => put(chunk::PAYLOAD, p)?,
            HepPayload::Compressed(z) => put(chunk::COMPRESSED_PAYLOAD, z)?,
        }
        let total = out.len().saturating_sub(start);
        let Ok(total) = u16::try_from(total) else {
            out.truncate(start);
            return Err(HepError::TooLarge {
                cap: usize::from(u16::MAX),
            });
        };
        if let Some(len) = out.get_mut(start + 4..start + 6) {
            len.copy_from_slice(&total.to_be_bytes());
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "tests/hep.rs"]
mod tests;
