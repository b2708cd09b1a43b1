//! Why a frame could not be decoded, as small structured values.

use std::fmt;

/// The header a decode error refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layer {
    Ethernet,
    Vlan,
    Mpls,
    Pppoe,
    Ppp,
    Null,
    Sll,
    Sll2,
    Ipv4,
    Ipv6,
    Ipv6Ext,
    IpAuth,
    Gre,
    Erspan,
    Udp,
    Tcp,
}

impl Layer {
    pub const fn name(self) -> &'static str {
        match self {
            Layer::Ethernet => "ethernet",
            Layer::Vlan => "vlan",
            Layer::Mpls => "mpls",
            Layer::Pppoe => "pppoe",
            Layer::Ppp => "ppp",
            Layer::Null => "null",
            Layer::Sll => "sll",
            Layer::Sll2 => "sll2",
            Layer::Ipv4 => "ipv4",
            Layer::Ipv6 => "ipv6",
            Layer::Ipv6Ext => "ipv6_ext",
            Layer::IpAuth => "ip_auth",
            Layer::Gre => "gre",
            Layer::Erspan => "erspan",
            Layer::Udp => "udp",
            Layer::Tcp => "tcp",
        }
    }

    const fn truncated_reason(self) -> &'static str {
        match self {
            Layer::Ethernet => "truncated_ethernet",
            Layer::Vlan => "truncated_vlan",
            Layer::Mpls => "truncated_mpls",
            Layer::Pppoe => "truncated_pppoe",
            Layer::Ppp => "truncated_ppp",
            Layer::Null => "truncated_null",
            Layer::Sll => "truncated_sll",
            Layer::Sll2 => "truncated_sll2",
            Layer::Ipv4 => "truncated_ipv4",
            Layer::Ipv6 => "truncated_ipv6",
            Layer::Ipv6Ext => "truncated_ipv6_ext",
            Layer::IpAuth => "truncated_ip_auth",
            Layer::Gre => "truncated_gre",
            Layer::Erspan => "truncated_erspan",
            Layer::Udp => "truncated_udp",
            Layer::Tcp => "truncated_tcp",
        }
    }

    const fn malformed_reason(self) -> &'static str {
        match self {
            Layer::Ethernet => "malformed_ethernet",
            Layer::Vlan => "malformed_vlan",
            Layer::Mpls => "malformed_mpls",
            Layer::Pppoe => "malformed_pppoe",
            Layer::Ppp => "malformed_ppp",
            Layer::Null => "malformed_null",
            Layer::Sll => "malformed_sll",
            Layer::Sll2 => "malformed_sll2",
            Layer::Ipv4 => "malformed_ipv4",
            Layer::Ipv6 => "malformed_ipv6",
            Layer::Ipv6Ext => "malformed_ipv6_ext",
            Layer::IpAuth => "malformed_ip_auth",
            Layer::Gre => "malformed_gre",
            Layer::Erspan => "malformed_erspan",
            Layer::Udp => "malformed_udp",
            Layer::Tcp => "malformed_tcp",
        }
    }
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A frame that could not be decoded down to an IP packet or transport segment.
///
/// Cheap to build and copy: decoding hostile input fails often and must not allocate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("{layer} truncated: need {need} bytes, have {have}")]
    Truncated {
        layer: Layer,
        need: usize,
        have: usize,
    },
    #[error("{layer} malformed: {what}")]
    Malformed { layer: Layer, what: &'static str },
    #[error("unsupported link type (DLT {dlt})")]
    UnsupportedLinkType { dlt: u32 },
    #[error("unsupported ether type 0x{ether_type:04x} in {layer}")]
    UnsupportedEtherType { layer: Layer, ether_type: u16 },
    #[error("unsupported loopback address family {family}")]
    UnsupportedAddressFamily { family: u32 },
    #[error("unsupported IP version {version}")]
    UnsupportedIpVersion { version: u8 },
    #[error("unsupported GRE version {version}")]
    UnsupportedGreVersion { version: u8 },
    #[error("unsupported ERSPAN version {version} frame type {frame_type}")]
    UnsupportedErspan { version: u8, frame_type: u8 },
    #[error("unsupported PPP protocol 0x{protocol:04x}")]
    UnsupportedPppProtocol { protocol: u16 },
    #[error("more than {max} nested headers or tunnels")]
    TooDeep { max: u8 },
    #[error("unsupported transport protocol {proto}")]
    UnsupportedProtocol { proto: u8 },
}

impl WireError {
    /// Stable snake_case key for drop counters.
    pub fn reason(&self) -> &'static str {
        match self {
            WireError::Truncated { layer, .. } => layer.truncated_reason(),
            WireError::Malformed { layer, .. } => layer.malformed_reason(),
            WireError::UnsupportedLinkType { .. } => "unsupported_link_type",
            WireError::UnsupportedEtherType { .. } => "unsupported_ether_type",
            WireError::UnsupportedAddressFamily { .. } => "unsupported_address_family",
            WireError::UnsupportedIpVersion { .. } => "unsupported_ip_version",
            WireError::UnsupportedGreVersion { .. } => "unsupported_gre_version",
            WireError::UnsupportedErspan { .. } => "unsupported_erspan",
            WireError::UnsupportedPppProtocol { .. } => "unsupported_ppp_protocol",
            WireError::TooDeep { .. } => "too_many_encapsulations",
            WireError::UnsupportedProtocol { .. } => "unsupported_protocol",
        }
    }

    pub(crate) const fn truncated(layer: Layer, need: usize, have: usize) -> Self {
        WireError::Truncated { layer, need, have }
    }

    pub(crate) fn from_len(layer: Layer, e: etherparse::err::LenError) -> Self {
        WireError::Truncated {
            layer,
            need: e.required_len,
            have: e.len,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_snake_case_keys() {
        let e = WireError::truncated(Layer::Ipv4, 20, 3);
        assert_eq!(e.reason(), "truncated_ipv4");
        assert_eq!(e.to_string(), "ipv4 truncated: need 20 bytes, have 3");
        assert_eq!(
            WireError::UnsupportedProtocol { proto: 132 }.reason(),
            "unsupported_protocol"
        );
    }
}
