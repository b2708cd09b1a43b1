//! Packet decoding: link layer, VLAN/MPLS/PPPoE, tunnels (GRE, ERSPAN, IP-in-IP) down
//! to the innermost IP packet, then UDP/TCP.
//!
//! Sans-IO and allocation-free: every function borrows from the frame it is given.
//! Standard headers come from etherparse; the few it lacks are small views here.

pub mod cooked;
pub mod error;
pub(crate) mod field;
pub mod gre;
pub mod hep;
mod ip;
pub mod null;
mod transport;

use std::net::IpAddr;

use etherparse::{Ethernet2HeaderSlice, SingleVlanHeaderSlice};

pub use error::{Layer, WireError};
pub use transport::{decode_transport, Transport};

use cooked::{Sll2Packet, SllPacket, ARPHRD_NETLINK};
use field::{be16, tail, u8_at};
use gre::{ErspanInner, ErspanPacket, GrePacket, PppPacket};
use null::NullPacket;

/// Most tunnels (GRE, IP-in-IP, ERSPAN) unwrapped before giving up.
pub const MAX_TUNNEL_DEPTH: u8 = 4;
/// Most stacked link headers (VLAN tags, MPLS labels, PPPoE) per frame.
pub const MAX_LINK_HEADERS: u8 = 8;

/// Link-layer header type of a capture (pcap DLT / LINKTYPE).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkType {
    Ethernet,
    /// BSD loopback, DLT_NULL (0) and DLT_LOOP (108).
    Null,
    /// Raw IP, version from the first nibble (DLT 12, 14, 101).
    RawIp,
    Ipv4,
    Ipv6,
    LinuxSll,
    LinuxSll2,
    Unknown(u32),
}

impl LinkType {
    pub fn from_dlt(dlt: u32) -> LinkType {
        match dlt {
            1 => LinkType::Ethernet,
            0 | 108 => LinkType::Null,
            12 | 14 | 101 => LinkType::RawIp,
            228 => LinkType::Ipv4,
            229 => LinkType::Ipv6,
            113 => LinkType::LinuxSll,
            276 => LinkType::LinuxSll2,
            other => LinkType::Unknown(other),
        }
    }

    /// The canonical LINKTYPE value (RawIp -> 101, Null -> 0).
    pub fn to_dlt(self) -> u32 {
        match self {
            LinkType::Ethernet => 1,
            LinkType::Null => 0,
            LinkType::RawIp => 101,
            LinkType::Ipv4 => 228,
            LinkType::Ipv6 => 229,
            LinkType::LinuxSll => 113,
            LinkType::LinuxSll2 => 276,
            LinkType::Unknown(d) => d,
        }
    }
}

/// IP fragmentation info of a packet that is one piece of a larger datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fragment {
    /// IPv4 identification (16 bits) or IPv6 fragment identification.
    pub id: u32,
    /// Byte offset of this piece in the datagram's payload.
    pub offset: u32,
    pub more: bool,
}

/// The innermost IP packet of a frame.
///
/// `payload` is trimmed to the IP length fields (Ethernet padding and trailers are
/// gone). When `frag` is `Some`, `payload` is a piece of the datagram: only the piece
/// at offset 0 starts with a transport header, and even that one is incomplete, so
/// feed it to `reasm::Defragmenter` and decode the transport of what it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpPacket<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: u8,
    pub payload: &'a [u8],
    pub frag: Option<Fragment>,
}

const ETH_IPV4: u16 = 0x0800;
const ETH_IPV6: u16 = 0x86dd;
const ETH_VLAN: u16 = 0x8100;
const ETH_QINQ: u16 = 0x88a8;
const ETH_QINQ_OLD: u16 = 0x9100;
const ETH_MPLS: u16 = 0x8847;
const ETH_MPLS_MC: u16 = 0x8848;
const ETH_PPPOE: u16 = 0x8864;
const PPP_IPV4: u16 = 0x0021;
const PPP_IPV6: u16 = 0x0057;
const IP_IPIP: u8 = 4;
const IP_IPV6: u8 = 41;
const IP_GRE: u8 = 47;

/// One step of the decode walk: what the next bytes are.
enum Next<'a> {
    Ethernet(&'a [u8]),
    EtherType(Layer, u16, &'a [u8]),
    Ip(&'a [u8]),
}

/// Decodes a captured frame down to its innermost IP packet.
///
/// VLAN/QinQ tags, MPLS labels and PPPoE are skipped; GRE (plain, transparent
/// Ethernet bridging, ERSPAN II/III, PPTP PPP) and IP-in-IP (4, 41) are unwrapped up to
/// `MAX_TUNNEL_DEPTH`. A fragmented IP packet is returned as is (tunnels inside
/// fragments are not unwrapped).
pub fn decode_link(link: LinkType, frame: &[u8]) -> Result<IpPacket<'_>, WireError> {
    let mut next = match link {
        LinkType::Ethernet => Next::Ethernet(frame),
        LinkType::RawIp => Next::Ip(frame),
        LinkType::Ipv4 | LinkType::Ipv6 => {
            let want = if link == LinkType::Ipv4 { 4 } else { 6 };
            match frame.first().map(|b| b >> 4) {
                Some(v) if v == want => Next::Ip(frame),
                Some(version) => return Err(WireError::UnsupportedIpVersion { version }),
                None => return Err(WireError::truncated(Layer::Ipv4, 20, 0)),
            }
        }
        LinkType::Null => {
            let p = NullPacket::new_checked(frame)?;
            if p.is_ipv4() || p.is_ipv6() {
                Next::Ip(p.payload())
            } else {
                return Err(WireError::UnsupportedAddressFamily { family: p.family() });
            }
        }
        LinkType::LinuxSll => {
            let p = SllPacket::new_checked(frame)?;
            if p.arphrd() == ARPHRD_NETLINK {
                return Err(WireError::UnsupportedEtherType {
                    layer: Layer::Sll,
                    ether_type: p.protocol(),
                });
            }
            Next::EtherType(Layer::Sll, p.protocol(), p.payload())
        }
        LinkType::LinuxSll2 => {
            let p = Sll2Packet::new_checked(frame)?;
            if p.arphrd() == ARPHRD_NETLINK {
                return Err(WireError::UnsupportedEtherType {
                    layer: Layer::Sll2,
                    ether_type: p.protocol(),
                });
            }
            Next::EtherType(Layer::Sll2, p.protocol(), p.payload())
        }
        LinkType::Unknown(dlt) => return Err(WireError::UnsupportedLinkType { dlt }),
    };

    let mut tunnels = 0u8;
    let mut link_headers = 0u8;
    loop {
        next = match next {
            Next::Ethernet(b) => {
                let eth = Ethernet2HeaderSlice::from_slice(b)
                    .map_err(|l| WireError::from_len(Layer::Ethernet, l))?;
                Next::EtherType(
                    Layer::Ethernet,
                    eth.ether_type().0,
                    tail(b, eth.slice().len()),
                )
            }
            Next::EtherType(layer, ether_type, b) => match ether_type {
                ETH_IPV4 | ETH_IPV6 => Next::Ip(b),
                ETH_VLAN | ETH_QINQ | ETH_QINQ_OLD => {
                    link_headers = bump(link_headers, MAX_LINK_HEADERS)?;
                    let v = SingleVlanHeaderSlice::from_slice(b)
                        .map_err(|l| WireError::from_len(Layer::Vlan, l))?;
                    Next::EtherType(Layer::Vlan, v.ether_type().0, tail(b, v.slice().len()))
                }
                ETH_MPLS | ETH_MPLS_MC => {
                    link_headers = bump(link_headers, MAX_LINK_HEADERS)?;
                    mpls(b, &mut link_headers)?
                }
                ETH_PPPOE => {
                    link_headers = bump(link_headers, MAX_LINK_HEADERS)?;
                    pppoe(b)?
                }
                gre::PROTO_TEB => Next::Ethernet(b),
                gre::PROTO_ERSPAN2 | gre::PROTO_ERSPAN3 if layer == Layer::Gre => erspan(b)?,
                gre::PROTO_PPP if layer == Layer::Gre => ppp(b)?,
                _ => return Err(WireError::UnsupportedEtherType { layer, ether_type }),
            },
            Next::Ip(b) => {
                let ip = ip::parse(b)?;
                if ip.frag.is_some() {
                    return Ok(ip);
                }
                match ip.proto {
                    IP_IPIP | IP_IPV6 => {
                        tunnels = bump(tunnels, MAX_TUNNEL_DEPTH)?;
                        Next::Ip(ip.payload)
                    }
                    IP_GRE => {
                        tunnels = bump(tunnels, MAX_TUNNEL_DEPTH)?;
                        let g = GrePacket::new_checked(ip.payload)?;
                        // ERSPAN type I: 0x88be without a sequence number has no header.
                        if g.protocol() == gre::PROTO_ERSPAN2 && !g.has_sequence() {
                            Next::Ethernet(g.payload())
                        } else {
                            Next::EtherType(Layer::Gre, g.protocol(), g.payload())
                        }
                    }
                    _ => return Ok(ip),
                }
            }
        };
    }
}

#[inline]
fn bump(count: u8, max: u8) -> Result<u8, WireError> {
    if count >= max {
        Err(WireError::TooDeep { max })
    } else {
        Ok(count + 1)
    }
}

/// Pops MPLS labels to the bottom of the stack; what follows is guessed from its
/// first nibble as IP does not announce itself here.
fn mpls<'a>(mut b: &'a [u8], link_headers: &mut u8) -> Result<Next<'a>, WireError> {
    loop {
        if b.len() < 4 {
            return Err(WireError::truncated(Layer::Mpls, 4, b.len()));
        }
        let bottom = u8_at(b, 2) & 1 == 1;
        b = tail(b, 4);
        if bottom {
            break;
        }
        *link_headers = bump(*link_headers, MAX_LINK_HEADERS)?;
    }
    match b.first().map(|v| v >> 4) {
        Some(4) | Some(6) => Ok(Next::Ip(b)),
        // Pseudowire control word, then an Ethernet frame.
        Some(0) => Ok(Next::Ethernet(tail(b, 4))),
        _ => Err(WireError::Malformed {
            layer: Layer::Mpls,
            what: "unknown_payload",
        }),
    }
}

fn pppoe(b: &[u8]) -> Result<Next<'_>, WireError> {
    const HDR: usize = 6;
    if b.len() < HDR + 2 {
        return Err(WireError::truncated(Layer::Pppoe, HDR + 2, b.len()));
    }
    let protocol = be16(b, HDR);
    let payload = tail(b, HDR + 2);
    match protocol {
        PPP_IPV4 | PPP_IPV6 => Ok(Next::Ip(payload)),
        protocol => Err(WireError::UnsupportedPppProtocol { protocol }),
    }
}

fn ppp(b: &[u8]) -> Result<Next<'_>, WireError> {
    let p = PppPacket::new_checked(b)?;
    match p.protocol() {
        PPP_IPV4 | PPP_IPV6 => Ok(Next::Ip(p.payload())),
        protocol => Err(WireError::UnsupportedPppProtocol { protocol }),
    }
}

fn erspan(b: &[u8]) -> Result<Next<'_>, WireError> {
    let e = ErspanPacket::new_checked(b)?;
    Ok(match e.inner() {
        ErspanInner::Ethernet(f) => Next::Ethernet(f),
        ErspanInner::Ip(p) => Next::Ip(p),
    })
}

#[cfg(test)]
mod tests;
