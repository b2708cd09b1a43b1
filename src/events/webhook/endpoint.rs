//! An endpoint as the dispatcher sends to it: from `[[webhooks]]` (id
//! `cfg-<name>`, read-only) or from the API (a database row, id `wh_<ULID>`).

use serde::Serialize;
use utoipa::ToSchema;

use super::sign::{read_secret_file, Secret, SecretError};
use crate::config::WebhookConfig;
use crate::db::webhooks::WebhookRow;
use crate::events::EventType;
use crate::time::Timestamp;

/// Config endpoints' ids start with this.
pub const CONFIG_PREFIX: &str = "cfg-";
/// API endpoints' ids start with this.
pub const API_PREFIX: &str = "wh_";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// `[[webhooks]]` in the config: changed there, not through the API.
    Config,
    Api,
}

#[derive(Debug, Clone)]
pub struct Endpoint {
    pub id: String,
    pub source: Source,
    pub url: String,
    /// Types sent; empty: all.
    pub types: Vec<EventType>,
    /// Secrets that sign, each until when (`None`: for good).
    pub secrets: Vec<(Secret, Option<Timestamp>)>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub created_at: Option<Timestamp>,
}

#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error("webhook {id}: {source}")]
    Secret {
        id: String,
        #[source]
        source: SecretError,
    },
    #[error("webhook {id}: {source}")]
    Type {
        id: String,
        #[source]
        source: crate::events::model::UnknownEventType,
    },
}

/// Types from their names; empty: all.
pub fn parse_types(
    names: &[String],
) -> Result<Vec<EventType>, crate::events::model::UnknownEventType> {
    let mut types: Vec<EventType> = names
        .iter()
        .map(|n| n.trim().parse())
        .collect::<Result<_, _>>()?;
    types.sort();
    types.dedup();
    Ok(types)
}

impl Endpoint {
    pub fn from_config(c: &WebhookConfig) -> Result<Endpoint, EndpointError> {
        let id = format!("{CONFIG_PREFIX}{}", c.name);
        let secrets = read_secret_file(&c.secret_file).map_err(|source| EndpointError::Secret {
            id: id.clone(),
            source,
        })?;
        let types = parse_types(&c.events).map_err(|source| EndpointError::Type {
            id: id.clone(),
            source,
        })?;
        Ok(Endpoint {
            id,
            source: Source::Config,
            url: c.url.clone(),
            types,
            secrets: secrets.into_iter().map(|s| (s, None)).collect(),
            enabled: c.enabled,
            disabled_reason: (!c.enabled).then(|| "enabled = false in the config".to_owned()),
            created_at: None,
        })
    }

    pub fn from_row(r: &WebhookRow) -> Result<Endpoint, EndpointError> {
        let secret_err = |source| EndpointError::Secret {
            id: r.id.clone(),
            source,
        };
        let mut secrets = vec![(Secret::parse(&r.secret).map_err(secret_err)?, None)];
        if let (Some(old), Some(until)) = (&r.previous_secret, r.previous_until) {
            secrets.push((Secret::parse(old).map_err(secret_err)?, Some(until)));
        }
        let types = parse_types(&r.events).map_err(|source| EndpointError::Type {
            id: r.id.clone(),
            source,
        })?;
        Ok(Endpoint {
            id: r.id.clone(),
            source: Source::Api,
            url: r.url.clone(),
            types,
            secrets,
            enabled: r.enabled,
            disabled_reason: r.disabled_reason.clone(),
            created_at: Some(r.created_at),
        })
    }

    pub fn wants(&self, t: EventType) -> bool {
        self.types.is_empty() || self.types.binary_search(&t).is_ok()
    }

    /// The secrets that sign at `now`.
    pub fn signing(&self, now: Timestamp) -> Vec<Secret> {
        self.secrets
            .iter()
            .filter(|(_, until)| until.is_none_or(|u| now < u))
            .map(|(s, _)| s.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_filter_and_old_secrets_expire() {
        let a = Secret::generate().unwrap();
        let b = Secret::generate().unwrap();
        let row = WebhookRow {
            id: "wh_1".into(),
            url: "http://x/".into(),
            events: vec![
                "call.ringing".into(),
                "note.added".into(),
                "call.ringing".into(),
            ],
            secret: a.expose().into(),
            previous_secret: Some(b.expose().into()),
            previous_until: Some(Timestamp::from_secs(100)),
            enabled: true,
            disabled_reason: None,
            created_at: Timestamp::from_secs(1),
            updated_at: Timestamp::from_secs(1),
        };
        let e = Endpoint::from_row(&row).unwrap();
        assert_eq!(e.types, [EventType::CallRinging, EventType::NoteAdded]);
        assert!(e.wants(EventType::NoteAdded));
        assert!(!e.wants(EventType::CallHungup));
        assert_eq!(e.signing(Timestamp::from_secs(99)), [a.clone(), b]);
        assert_eq!(e.signing(Timestamp::from_secs(100)), [a]);
        let all = Endpoint {
            types: Vec::new(),
            ..e
        };
        assert!(EventType::ALL.iter().all(|t| all.wants(*t)));
        let bad = WebhookRow {
            events: vec!["call.exploded".into()],
            ..row
        };
        assert!(matches!(
            Endpoint::from_row(&bad),
            Err(EndpointError::Type { .. })
        ));
    }
}
