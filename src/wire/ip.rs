//! IPv4 / IPv6 (with extension headers) via etherparse's header slices.
//!
//! The extension chain is walked here rather than with `Ipv6Slice` so that the walk
//! stops at a fragment header: what follows it in a non-first fragment is data, not
//! headers, and offsets count from right after it.

use std::net::IpAddr;

use etherparse::{IpAuthHeaderSlice, Ipv4HeaderSlice, Ipv6FragmentHeaderSlice, Ipv6HeaderSlice};
use etherparse::{Ipv6Header, Ipv6RawExtHeaderSlice};

use super::error::{Layer, WireError};
use super::field::tail;
use super::{Fragment, IpPacket};

const PROTO_HOP_BY_HOP: u8 = 0;
const PROTO_ROUTING: u8 = 43;
const PROTO_FRAGMENT: u8 = 44;
const PROTO_AUTH: u8 = 51;
const PROTO_DEST_OPTS: u8 = 60;
const MAX_IPV6_EXTS: usize = 8;

/// Decodes one IP header (version from the first nibble).
#[inline]
pub(crate) fn parse(b: &[u8]) -> Result<IpPacket<'_>, WireError> {
    match b.first().map(|v| v >> 4) {
        Some(4) => ipv4(b),
        Some(6) => ipv6(b),
        Some(version) => Err(WireError::UnsupportedIpVersion { version }),
        None => Err(WireError::truncated(Layer::Ipv4, 20, 0)),
    }
}

fn ipv4(b: &[u8]) -> Result<IpPacket<'_>, WireError> {
    use etherparse::err::ipv4::HeaderSliceError as E;
    let h = Ipv4HeaderSlice::from_slice(b).map_err(|e| match e {
        E::Len(l) => WireError::from_len(Layer::Ipv4, l),
        E::Content(_) => WireError::Malformed {
            layer: Layer::Ipv4,
            what: "bad_header_length",
        },
    })?;
    let hlen = h.slice().len();
    let total = usize::from(h.total_len());
    // total_len 0 is what segmentation offload leaves in locally captured packets.
    let packet = if total == 0 {
        b
    } else if total < hlen {
        return Err(WireError::Malformed {
            layer: Layer::Ipv4,
            what: "total_len_below_header_len",
        });
    } else {
        b.get(..total)
            .ok_or(WireError::truncated(Layer::Ipv4, total, b.len()))?
    };
    let mut payload = tail(packet, hlen);
    let mut proto = h.protocol().0;
    let offset = u32::from(h.fragments_offset().value()) * 8;
    let more = h.more_fragments();
    let frag = if more || offset != 0 {
        Some(Fragment {
            id: u32::from(h.identification()),
            offset,
            more,
        })
    } else {
        None
    };
    if proto == PROTO_AUTH && frag.is_none() {
        let (next, rest) = skip_auth(payload)?;
        proto = next;
        payload = rest;
    }
    Ok(IpPacket {
        src: IpAddr::V4(h.source_addr()),
        dst: IpAddr::V4(h.destination_addr()),
        proto,
        payload,
        frag,
    })
}

fn ipv6(b: &[u8]) -> Result<IpPacket<'_>, WireError> {
    use etherparse::err::ipv6::HeaderSliceError as E;
    let h = Ipv6HeaderSlice::from_slice(b).map_err(|e| match e {
        E::Len(l) => WireError::from_len(Layer::Ipv6, l),
        E::Content(_) => WireError::Malformed {
            layer: Layer::Ipv6,
            what: "bad_version",
        },
    })?;
    let plen = usize::from(h.payload_length());
    // payload_length 0: jumbogram or offloaded segment; the capture length is the truth.
    let mut rest = if plen == 0 {
        tail(b, Ipv6Header::LEN)
    } else {
        let end = Ipv6Header::LEN + plen;
        b.get(Ipv6Header::LEN..end)
            .ok_or(WireError::truncated(Layer::Ipv6, end, b.len()))?
    };
    let mut next = h.next_header().0;
    let mut frag = None;
    let mut exts = 0;
    loop {
        match next {
            PROTO_HOP_BY_HOP | PROTO_ROUTING | PROTO_DEST_OPTS => {
                let e = Ipv6RawExtHeaderSlice::from_slice(rest)
                    .map_err(|l| WireError::from_len(Layer::Ipv6Ext, l))?;
                next = e.next_header().0;
                rest = tail(rest, e.slice().len());
            }
            PROTO_AUTH => {
                let (n, r) = skip_auth(rest)?;
                next = n;
                rest = r;
            }
            PROTO_FRAGMENT => {
                let f = Ipv6FragmentHeaderSlice::from_slice(rest)
                    .map_err(|l| WireError::from_len(Layer::Ipv6Ext, l))?;
                next = f.next_header().0;
                rest = tail(rest, f.slice().len());
                if f.is_fragmenting_payload() {
                    frag = Some(Fragment {
                        id: f.identification(),
                        offset: u32::from(f.fragment_offset().value()) * 8,
                        more: f.more_fragments(),
                    });
                    break;
                }
            }
            _ => break,
        }
        exts += 1;
        if exts > MAX_IPV6_EXTS {
            return Err(WireError::Malformed {
                layer: Layer::Ipv6Ext,
                what: "too_many_extension_headers",
            });
        }
    }
    Ok(IpPacket {
        src: IpAddr::V6(h.source_addr()),
        dst: IpAddr::V6(h.destination_addr()),
        proto: next,
        payload: rest,
        frag,
    })
}

fn skip_auth(b: &[u8]) -> Result<(u8, &[u8]), WireError> {
    use etherparse::err::ip_auth::HeaderSliceError as E;
    let a = IpAuthHeaderSlice::from_slice(b).map_err(|e| match e {
        E::Len(l) => WireError::from_len(Layer::IpAuth, l),
        E::Content(_) => WireError::Malformed {
            layer: Layer::IpAuth,
            what: "zero_payload_len",
        },
    })?;
    Ok((a.next_header().0, tail(b, a.slice().len())))
}
