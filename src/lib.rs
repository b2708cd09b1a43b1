//! pbxbridge: SIP call tracking, recording and CRM call records.
//!
//! The core (`wire`, `reasm`, `sip`, `rtp`, `call`) is sans-IO: it never touches
//! sockets, files or the clock. Drivers feed it `(timestamp, bytes)` and drain events.

pub mod api;
pub mod backoff;
pub mod call;
pub mod capture;
pub mod cli;
pub mod codec;
pub mod config;
pub mod daemon;
pub mod db;
pub mod db_kind;
pub mod events;
pub mod logging;
pub mod matching;
pub mod ops;
pub mod phone;
pub mod pipeline;
pub mod reasm;
pub mod recording;
pub mod replay;
pub mod report;
pub mod rtp;
pub mod server;
pub mod sinks;
pub mod sip;
pub mod store;
pub mod time;
pub mod wire;
