//! pbxbridge: SIP call tracking, recording and CRM call records.
//!
//! The core (`wire`, `reasm`, `sip`, `rtp`, `call`) is sans-IO: it never touches
//! sockets, files or the clock. Drivers feed it `(timestamp, bytes)` and drain events.

pub mod sip;
pub mod time;
