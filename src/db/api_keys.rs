//! API keys (`pbxbridge keys`, `/v1/keys`). Only the SHA-256 of a token is
//! kept: the token is 256 random bits, so a slow password hash would add
//! nothing but latency to every request.

use std::fmt;

use base64::Engine as _;
use serde::Serialize;
use sqlx::Row;

use super::{Db, DbError, DbTime};
use crate::time::Timestamp;

/// Every token starts with this, so a leaked one is easy to grep for.
pub const TOKEN_PREFIX: &str = "pbxb_";

/// A stored key, without its secret.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct ApiKey {
    pub id: i64,
    pub name: String,
    /// The token's public part (`pbxb_<prefix>_…`).
    pub prefix: String,
    pub role: String,
    pub agent_id: Option<String>,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKey")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("prefix", &self.prefix)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

impl ApiKey {
    /// Usable at `now`: not revoked, not expired.
    pub fn is_active(&self, now: Timestamp) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| now < e)
    }
}

/// A new key's token: shown once, never stored. `Debug` hides it.
pub struct NewToken(pub String);

impl fmt::Debug for NewToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NewToken(<secret>)")
    }
}

fn hash_hex(token: &str) -> String {
    super::sha256_hex(token.as_bytes())
}

/// `pbxb_<prefix>_<secret>` → its prefix; `None` when not shaped like a token.
pub fn token_prefix(token: &str) -> Option<&str> {
    let rest = token.strip_prefix(TOKEN_PREFIX)?;
    let (prefix, secret) = rest.split_once('_')?;
    (prefix.len() == 16
        && prefix.bytes().all(|b| b.is_ascii_hexdigit())
        && (32..=64).contains(&secret.len()))
    .then_some(prefix)
}

fn random_bytes<const N: usize>() -> Result<[u8; N], DbError> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(|e| DbError::Random {
        reason: e.to_string(),
    })?;
    Ok(buf)
}

fn query_err(what: &'static str) -> impl Fn(sqlx::Error) -> DbError {
    move |source| DbError::Query { what, source }
}

const COLUMNS: &str =
    "id, name, prefix, role, agent_id, created_at, expires_at, revoked_at, last_used_at";

macro_rules! api_key {
    ($r:expr) => {{
        let r = $r;
        let created: DbTime = r.try_get(5)?;
        let expires: Option<DbTime> = r.try_get(6)?;
        let revoked: Option<DbTime> = r.try_get(7)?;
        let used: Option<DbTime> = r.try_get(8)?;
        ApiKey {
            id: r.try_get(0)?,
            name: r.try_get(1)?,
            prefix: r.try_get(2)?,
            role: r.try_get(3)?,
            agent_id: r.try_get(4)?,
            created_at: created.0,
            expires_at: expires.map(|t| t.0),
            revoked_at: revoked.map(|t| t.0),
            last_used_at: used.map(|t| t.0),
        }
    }};
}

impl Db {
    /// Stores a new key and returns it with its token (the only time the
    /// token exists outside the caller).
    pub async fn create_api_key(
        &self,
        name: &str,
        role: &str,
        agent_id: Option<&str>,
        expires_at: Option<Timestamp>,
    ) -> Result<(ApiKey, NewToken), DbError> {
        let prefix: String = hex::encode(random_bytes::<8>()?);
        let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<32>()?);
        let token = format!("{TOKEN_PREFIX}{prefix}_{secret}");
        let now = Timestamp::now();
        let q = query_err("creating an API key");
        let insert = self.sql(
            "INSERT INTO {api_keys} (name, prefix, secret_hash, role, agent_id, created_at, expires_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        );
        with_pool!(self.pool(), p => sqlx::query(&insert)
            .bind(name)
            .bind(prefix.as_str())
            .bind(hash_hex(&token))
            .bind(role)
            .bind(agent_id)
            .bind(DbTime(now))
            .bind(expires_at.map(DbTime))
            .execute(p)
            .await
            .map(|_| ())
            .map_err(&q))?;
        let key = self
            .api_key_by_prefix(&prefix)
            .await?
            .map(|(k, _)| k)
            .ok_or(DbError::Query {
                what: "creating an API key",
                source: sqlx::Error::RowNotFound,
            })?;
        Ok((key, NewToken(token)))
    }

    /// Every key, newest first, revoked ones included.
    pub async fn api_keys(&self) -> Result<Vec<ApiKey>, DbError> {
        let q = query_err("listing API keys");
        let sql = self.sql(&format!(
            "SELECT {COLUMNS} FROM {{api_keys}} ORDER BY id DESC"
        ));
        with_pool!(self.pool(), p => {
            let rows = sqlx::query(&sql).fetch_all(p).await.map_err(&q)?;
            rows.iter()
                .map(|r| -> Result<ApiKey, sqlx::Error> { Ok(api_key!(r)) })
                .collect::<Result<Vec<_>, _>>()
                .map_err(&q)
        })
    }

    async fn api_key_by_prefix(&self, prefix: &str) -> Result<Option<(ApiKey, String)>, DbError> {
        let q = query_err("reading an API key");
        let sql = self.sql(&format!(
            "SELECT {COLUMNS}, secret_hash FROM {{api_keys}} WHERE prefix = ?"
        ));
        with_pool!(self.pool(), p => {
            let row = sqlx::query(&sql).bind(prefix).fetch_optional(p).await.map_err(&q)?;
            match row {
                Some(r) => {
                    let key = (|| -> Result<ApiKey, sqlx::Error> { Ok(api_key!(&r)) })().map_err(&q)?;
                    let hash: String = r.try_get(9).map_err(&q)?;
                    Ok(Some((key, hash)))
                }
                None => Ok(None),
            }
        })
    }

    /// The key a token belongs to, whatever its state (the caller checks
    /// revocation and expiry, to say which); `None` for an unknown token.
    pub async fn api_key_for_token(&self, token: &str) -> Result<Option<ApiKey>, DbError> {
        let Some(prefix) = token_prefix(token) else {
            return Ok(None);
        };
        let Some((key, stored)) = self.api_key_by_prefix(prefix).await? else {
            return Ok(None);
        };
        // Both sides are digests: comparing them leaks nothing about the token.
        Ok((hash_hex(token) == stored).then_some(key))
    }

    /// Revokes a key by id or prefix; false when there is no such active key.
    pub async fn revoke_api_key(&self, which: &str) -> Result<bool, DbError> {
        let q = query_err("revoking an API key");
        let id: i64 = which.parse().unwrap_or(-1);
        let sql = self.sql(
            "UPDATE {api_keys} SET revoked_at = ? WHERE (id = ? OR prefix = ?) AND revoked_at IS NULL",
        );
        with_pool!(self.pool(), p => sqlx::query(&sql)
            .bind(DbTime(Timestamp::now()))
            .bind(id)
            .bind(which)
            .execute(p)
            .await
            .map(|r| r.rows_affected() > 0)
            .map_err(&q))
    }

    /// Records that a key was used (callers throttle this).
    pub async fn touch_api_key(&self, id: i64, at: Timestamp) -> Result<(), DbError> {
        let q = query_err("noting an API key's use");
        let sql = self.sql("UPDATE {api_keys} SET last_used_at = ? WHERE id = ?");
        with_pool!(self.pool(), p => sqlx::query(&sql)
            .bind(DbTime(at))
            .bind(id)
            .execute(p)
            .await
            .map(|_| ())
            .map_err(&q))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_shapes() {
        let good = format!("pbxb_0123456789abcdef_{}", "A".repeat(43));
        assert_eq!(token_prefix(&good), Some("0123456789abcdef"));
        assert_eq!(token_prefix("pbxb_0123_xyz"), None);
        assert_eq!(token_prefix("Bearer x"), None);
        assert_eq!(token_prefix(&good.replace("pbxb_", "pbx_")), None);
    }

    #[tokio::test]
    async fn keys_round_trip_and_revoke() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("k.db").display());
        let db = Db::connect(&url, &Default::default()).await.unwrap();
        let (key, token) = db
            .create_api_key("crm", "integration", None, None)
            .await
            .unwrap();
        assert!(format!("{token:?}").contains("<secret>"));
        assert_eq!(
            db.api_key_for_token(&token.0).await.unwrap(),
            Some(key.clone())
        );
        let mut wrong = token.0.clone();
        wrong.pop();
        wrong.push('x');
        assert_eq!(db.api_key_for_token(&wrong).await.unwrap(), None);
        assert!(db.revoke_api_key(&key.prefix).await.unwrap());
        assert!(!db.revoke_api_key(&key.id.to_string()).await.unwrap());
        let k = db.api_key_for_token(&token.0).await.unwrap().unwrap();
        assert!(!k.is_active(Timestamp::now()));
        assert_eq!(db.api_keys().await.unwrap().len(), 1);
    }
}
