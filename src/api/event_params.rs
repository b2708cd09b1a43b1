//! The query of `GET /v1/events`, parsed by hand so an unknown or repeated
//! parameter is a 400 naming it.

use utoipa::IntoParams;

use super::problem::ApiError;

#[derive(Debug, Default, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventParams {
    /// Comma-separated event types, e.g. `call.ringing,call.completed`; unset: all.
    pub types: Option<String>,
    /// Only events about this agent's calls.
    pub agent: Option<String>,
    /// Resume after this event id (as the `Last-Event-ID` header does, for
    /// clients that cannot set headers).
    pub last_event_id: Option<String>,
    /// Signed links (`POST /v1/events/link`): Unix seconds.
    pub expires: Option<String>,
    /// Signed links: the id of the key that made the link.
    pub key: Option<String>,
    /// Signed links: hex HMAC-SHA256.
    pub sig: Option<String>,
}

impl EventParams {
    pub fn parse(query: &str) -> Result<EventParams, ApiError> {
        let mut q = EventParams::default();
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            let slot =
                match &*k {
                    "types" => &mut q.types,
                    "agent" => &mut q.agent,
                    "last_event_id" => &mut q.last_event_id,
                    "expires" => &mut q.expires,
                    "key" => &mut q.key,
                    "sig" => &mut q.sig,
                    other => return Err(ApiError::bad(
                        other.chars().take(64).collect::<String>(),
                        "unknown parameter; known: types, agent, last_event_id, expires, key, sig",
                    )),
                };
            if slot.replace(v.into_owned()).is_some() {
                return Err(ApiError::bad(k.into_owned(), "given twice"));
            }
        }
        Ok(q)
    }
}
