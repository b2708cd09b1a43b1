//! SIP message and SDP parsing for the call tracker.
//!
//! **Dependencies note (for the README):** pbxbridge parses SIP itself instead of using
//! `rsip`. rsip 0.4 was measured to treat compact headers (`i:`, `f:`, `t:`, `v:`, `l:`)
//! as unknown and to reject folded header lines, LF-only messages, non-UTF-8 bytes
//! (e.g. Latin-1 display names) and `tel:` URIs, all of which real PBX traffic contains.
//! `pbxbridge::sip` is a lenient zero-copy parser on `&[u8]`: no UTF-8 validation, no
//! heap allocation for a typical message (header spans live in an inline `smallvec`),
//! every size capped. It reads what the tracker needs (start line, Call-ID, From/To,
//! Contact, CSeq, Via branch, Reason, SDP) and still refuses what would mislead it
//! (RFC 4475 §3.1.2). SDP uses a small lenient parser of ours too, not `sdp-types`,
//! which fails a whole SDP on one malformed line (see `sip::sdp`).

mod error;
mod lex;
mod message;
mod multipart;
mod name_addr;
pub mod sdp;
pub mod sdp_crypto;
mod sniff;
mod uri;

pub use error::SipError;
pub use message::{parse, CSeq, Message, Method, StartLine, MAX_HEADERS, MAX_HEADER_BYTES};
pub use name_addr::NameAddr;
pub use sniff::looks_like_sip;
pub use uri::{Scheme, Uri};
