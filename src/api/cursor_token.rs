//! `next_cursor` as clients see it: `<payload>.<tag>`, both base64url. The
//! payload is the position's small JSON (sort, key value, row id); the tag
//! an HMAC of it with the link secret, so a cursor that was edited, cut or
//! made up is refused rather than read as some other position.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::problem::ApiError;
use super::ApiState;
use crate::db::call_list::{Cursor, Sort};

/// Longest cursor read; real ones are well under 200 characters.
const MAX_LEN: usize = 1024;
/// Bytes of the HMAC kept in the tag.
const TAG_LEN: usize = 16;
/// Keeps these tags from ever being valid for another use of the secret.
const CONTEXT: &[u8] = b"pbxbridge calls cursor v1\0";

fn mac(state: &ApiState) -> Hmac<Sha256> {
    state.link_key().mac(CONTEXT)
}

/// The text of `cursor`.
pub fn encode(state: &ApiState, cursor: &Cursor) -> String {
    let payload = serde_json::to_vec(cursor).unwrap_or_default();
    let mut m = mac(state);
    m.update(&payload);
    let tag = m.finalize().into_bytes();
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(&payload),
        URL_SAFE_NO_PAD.encode(&tag[..TAG_LEN])
    )
}

/// The position `text` names, if it is a cursor this server made for `sort`.
pub fn decode(state: &ApiState, text: &str, sort: Sort) -> Result<Cursor, ApiError> {
    let bad = |why: &str| ApiError::bad("cursor", why.to_owned());
    let invalid = "is not a cursor from this API: pass next_cursor as it was given";
    if text.is_empty() || text.len() > MAX_LEN {
        return Err(bad(invalid));
    }
    let (payload, tag) = text.split_once('.').ok_or_else(|| bad(invalid))?;
    let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| bad(invalid))?;
    let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| bad(invalid))?;
    let mut m = mac(state);
    m.update(&payload);
    m.verify_truncated_left(&tag)
        .ok()
        .filter(|_| tag.len() == TAG_LEN)
        .ok_or_else(|| bad(invalid))?;
    let cursor: Cursor = serde_json::from_slice(&payload).map_err(|_| bad(invalid))?;
    cursor
        .check(sort)
        .map_err(|e| ApiError::bad("cursor", e.to_string()))?;
    Ok(cursor)
}
