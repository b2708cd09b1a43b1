//! Packet sources (drivers): they do I/O and hand `(timestamp, link type, bytes)` to the core.

pub mod pcapfile;
