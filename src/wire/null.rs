//! BSD loopback headers: DLT_NULL (0, family in the capturing host's byte order) and
//! DLT_LOOP (108, network byte order). Both are a 4-byte address family.

use super::error::{Layer, WireError};
use super::field::{be32, le32, tail};

pub const AF_INET: u32 = 2;
/// AF_INET6 differs per OS: Linux 10, Windows 23, NetBSD/OpenBSD 24, FreeBSD 28, macOS 30.
pub const AF_INET6: [u32; 5] = [10, 23, 24, 28, 30];

#[derive(Debug, Clone, Copy)]
pub struct NullPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> NullPacket<T> {
    pub const HEADER_LEN: usize = 4;

    pub const fn new_unchecked(buffer: T) -> Self {
        NullPacket { buffer }
    }

    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    pub fn check_len(&self) -> Result<(), WireError> {
        let have = self.buffer.as_ref().len();
        if have < Self::HEADER_LEN {
            return Err(WireError::truncated(Layer::Null, Self::HEADER_LEN, have));
        }
        Ok(())
    }

    /// The address family, whichever byte order the writer used: real families are
    /// small numbers, so the order whose upper half is zero is the right one.
    pub fn family(&self) -> u32 {
        let le = le32(self.buffer.as_ref(), 0);
        if le & 0xffff_0000 == 0 {
            le
        } else {
            be32(self.buffer.as_ref(), 0)
        }
    }

    pub fn is_ipv4(&self) -> bool {
        self.family() == AF_INET
    }

    pub fn is_ipv6(&self) -> bool {
        AF_INET6.contains(&self.family())
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }
}

impl<'a> NullPacket<&'a [u8]> {
    pub fn payload(&self) -> &'a [u8] {
        tail(self.buffer, Self::HEADER_LEN)
    }
}

#[cfg(test)]
#[path = "tests/null.rs"]
mod tests;
