//! Linux "cooked" capture headers (`tcpdump -i any`): SLL v1 (DLT 113) and SLL2 (DLT 276).
//!
//! Hand-written rather than etherparse's SLL slice because that one rejects hardware
//! types such as ARPHRD_NONE (tun devices) and ARPHRD_LOOPBACK that `any` captures
//! routinely contain; only the protocol field matters here.

use super::error::{Layer, WireError};
use super::field::{be16, be32, tail, u8_at};

/// ARPHRD_NETLINK: the protocol field is a netlink family, not an EtherType.
pub const ARPHRD_NETLINK: u16 = 824;

/// SLL v1: packet type, ARPHRD, address length, 8-byte address, protocol.
#[derive(Debug, Clone, Copy)]
pub struct SllPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> SllPacket<T> {
    pub const HEADER_LEN: usize = 16;

    pub const fn new_unchecked(buffer: T) -> Self {
        SllPacket { buffer }
    }

    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    pub fn check_len(&self) -> Result<(), WireError> {
        let have = self.buffer.as_ref().len();
        if have < Self::HEADER_LEN {
            return Err(WireError::truncated(Layer::Sll, Self::HEADER_LEN, have));
        }
        Ok(())
    }

    pub fn packet_type(&self) -> u16 {
        be16(self.buffer.as_ref(), 0)
    }

    pub fn arphrd(&self) -> u16 {
        be16(self.buffer.as_ref(), 2)
    }

    /// EtherType of the payload (or a netlink family when `arphrd` is netlink).
    pub fn protocol(&self) -> u16 {
        be16(self.buffer.as_ref(), 14)
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }
}

impl<'a> SllPacket<&'a [u8]> {
    pub fn payload(&self) -> &'a [u8] {
        tail(self.buffer, Self::HEADER_LEN)
    }
}

/// SLL2: protocol, reserved, interface index, ARPHRD, packet type, address length, address.
#[derive(Debug, Clone, Copy)]
pub struct Sll2Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Sll2Packet<T> {
    pub const HEADER_LEN: usize = 20;

    pub const fn new_unchecked(buffer: T) -> Self {
        Sll2Packet { buffer }
    }

    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    pub fn check_len(&self) -> Result<(), WireError> {
        let have = self.buffer.as_ref().len();
        if have < Self::HEADER_LEN {
            return Err(WireError::truncated(Layer::Sll2, Self::HEADER_LEN, have));
        }
        Ok(())
    }

    pub fn protocol(&self) -> u16 {
        be16(self.buffer.as_ref(), 0)
    }

    pub fn interface_index(&self) -> u32 {
        be32(self.buffer.as_ref(), 4)
    }

    pub fn arphrd(&self) -> u16 {
        be16(self.buffer.as_ref(), 8)
    }

    pub fn packet_type(&self) -> u8 {
        u8_at(self.buffer.as_ref(), 10)
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }
}

impl<'a> Sll2Packet<&'a [u8]> {
    pub fn payload(&self) -> &'a [u8] {
        tail(self.buffer, Self::HEADER_LEN)
    }
}

#[cfg(test)]
#[path = "tests/cooked.rs"]
mod tests;
