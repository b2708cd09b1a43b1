//! UDP and TCP on top of an (unfragmented or reassembled) IP payload.

use etherparse::{TcpSlice, UdpSlice};

use super::error::{Layer, WireError};

const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport<'a> {
    Udp {
        src_port: u16,
        dst_port: u16,
        payload: &'a [u8],
    },
    Tcp {
        src_port: u16,
        dst_port: u16,
        seq: u32,
        syn: bool,
        fin: bool,
        rst: bool,
        payload: &'a [u8],
    },
}

/// Decodes the UDP or TCP header at the start of `payload` (an IP payload with
/// protocol `proto`). The UDP payload is trimmed to the UDP length field.
#[inline]
pub fn decode_transport(proto: u8, payload: &[u8]) -> Result<Transport<'_>, WireError> {
    match proto {
        PROTO_UDP => {
            let u = UdpSlice::from_slice(payload).map_err(|l| {
                if l.len_source == etherparse::LenSource::UdpHeaderLen {
                    WireError::Malformed {
                        layer: Layer::Udp,
                        what: "length_below_header",
                    }
                } else {
                    WireError::from_len(Layer::Udp, l)
                }
            })?;
            Ok(Transport::Udp {
                src_port: u.source_port(),
                dst_port: u.destination_port(),
                payload: u.payload(),
            })
        }
        PROTO_TCP => {
            use etherparse::err::tcp::HeaderSliceError as E;
            let t = TcpSlice::from_slice(payload).map_err(|e| match e {
                E::Len(l) => WireError::from_len(Layer::Tcp, l),
                E::Content(_) => WireError::Malformed {
                    layer: Layer::Tcp,
                    what: "data_offset_too_small",
                },
            })?;
            Ok(Transport::Tcp {
                src_port: t.source_port(),
                dst_port: t.destination_port(),
                seq: t.sequence_number(),
                syn: t.syn(),
                fin: t.fin(),
                rst: t.rst(),
                payload: t.payload(),
            })
        }
        proto => Err(WireError::UnsupportedProtocol { proto }),
    }
}
