//! `{id}` in `/v1/calls/{id}/…`: a row id (`42`) or `sensor/call_id` (the
//! slash sent as `%2F`), resolved to a call the caller may see. A call the
//! key may not see answers 404 like one that does not exist.

use super::auth::Caller;
use super::problem::ApiError;
use super::ApiState;
use crate::db::call_lookup::{CallIdentity, CallSelector};

/// A call the caller may see.
pub type CallRef = CallIdentity;

/// Parses a call id from a path.
pub fn selector(id: &str) -> Result<CallSelector, ApiError> {
    if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) {
        return id
            .parse()
            .map(CallSelector::Row)
            .map_err(|_| ApiError::not_found("call"));
    }
    match id.split_once('/') {
        Some((sensor, call_id))
            if !sensor.is_empty()
                && !call_id.is_empty()
                && sensor.len() <= 64
                && call_id.len() <= 1024 =>
        {
            Ok(CallSelector::Key {
                sensor: sensor.to_owned(),
                call_id: call_id.to_owned(),
            })
        }
        _ => Err(ApiError::bad(
            "id",
            "a call is named by its row id (42) or by sensor/call_id with the slash as %2F",
        )),
    }
}

/// The call `id` names, if the caller may see it.
pub async fn resolve(state: &ApiState, caller: &Caller, id: &str) -> Result<CallRef, ApiError> {
    let which = selector(id)?;
    let db = state.db().await?;
    match db.find_call(&which).await? {
        Some(c) if caller.may_see(c.agent_id.as_deref()) => Ok(c),
        _ => Err(ApiError::not_found("call")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert_eq!(selector("42").unwrap(), CallSelector::Row(42));
        assert_eq!(
            selector("site-a/abc@host").unwrap(),
            CallSelector::Key {
                sensor: "site-a".into(),
                call_id: "abc@host".into()
            }
        );
        assert!(matches!(
            selector("99999999999999999999999"),
            Err(ApiError::NotFound { .. })
        ));
        assert!(matches!(selector("abc"), Err(ApiError::BadParam { .. })));
        assert!(matches!(selector("/x"), Err(ApiError::BadParam { .. })));
    }
}
