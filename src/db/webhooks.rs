//! Webhook endpoints made through the API (`/v1/webhooks`). The secret is
//! kept as is: pbxbridge signs with it (see migrations/0004_events.sql).

use std::fmt;

use sqlx::Row;

use super::{Db, DbError, DbTime};
use crate::time::Timestamp;

/// One endpoint's row. `Debug` hides the secrets.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookRow {
    pub id: String,
    pub url: String,
    /// Event types sent; empty: all.
    pub events: Vec<String>,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_until: Option<Timestamp>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl fmt::Debug for WebhookRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookRow")
            .field("id", &self.id)
            .field("url", &self.url)
            .field("events", &self.events)
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

fn query_err(what: &'static str) -> impl Fn(sqlx::Error) -> DbError {
    move |source| DbError::Query { what, source }
}

const COLUMNS: &str = "id, url, events, secret, previous_secret, previous_until, enabled, \
                       disabled_reason, created_at, updated_at";

macro_rules! webhook_row {
    ($r:expr) => {{
        let r = $r;
        let events: String = r.try_get(2)?;
        let until: Option<DbTime> = r.try_get(5)?;
        let created: DbTime = r.try_get(8)?;
        let updated: DbTime = r.try_get(9)?;
        WebhookRow {
            id: r.try_get(0)?,
            url: r.try_get(1)?,
            events: events
                .split(',')
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect(),
            secret: r.try_get(3)?,
            previous_secret: r.try_get(4)?,
            previous_until: until.map(|t| t.0),
            enabled: r.try_get(6)?,
            disabled_reason: r.try_get(7)?,
            created_at: created.0,
            updated_at: updated.0,
        }
    }};
}

impl Db {
    pub async fn insert_webhook(&self, w: &WebhookRow) -> Result<(), DbError> {
        let q = query_err("creating a webhook");
        let sql = self.sql(&format!(
            "INSERT INTO {{webhooks}} ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ));
        with_pool!(self.pool(), p => sqlx::query(&sql)
            .bind(&w.id)
            .bind(&w.url)
            .bind(w.events.join(","))
            .bind(&w.secret)
            .bind(&w.previous_secret)
            .bind(w.previous_until.map(DbTime))
            .bind(w.enabled)
            .bind(&w.disabled_reason)
            .bind(DbTime(w.created_at))
            .bind(DbTime(w.updated_at))
            .execute(p)
            .await
            .map(|_| ())
            .map_err(&q))
    }

    /// Every endpoint, oldest first.
    pub async fn webhooks(&self) -> Result<Vec<WebhookRow>, DbError> {
        let q = query_err("listing webhooks");
        let sql = self.sql(&format!(
            "SELECT {COLUMNS} FROM {{webhooks}} ORDER BY created_at, id"
        ));
        with_pool!(self.pool(), p => {
            let rows = sqlx::query(&sql).fetch_all(p).await.map_err(&q)?;
            rows.iter()
                .map(|r| -> Result<WebhookRow, sqlx::Error> { Ok(webhook_row!(r)) })
                .collect::<Result<Vec<_>, _>>()
                .map_err(&q)
        })
    }

    /// Replaces every column but the id and creation time; false when the
    /// endpoint is gone.
    pub async fn update_webhook(&self, w: &WebhookRow) -> Result<bool, DbError> {
        let q = query_err("changing a webhook");
        let sql = self.sql(
            "UPDATE {webhooks} SET url = ?, events = ?, secret = ?, previous_secret = ?, \
             previous_until = ?, enabled = ?, disabled_reason = ?, updated_at = ? WHERE id = ?",
        );
        with_pool!(self.pool(), p => sqlx::query(&sql)
            .bind(&w.url)
            .bind(w.events.join(","))
            .bind(&w.secret)
            .bind(&w.previous_secret)
            .bind(w.previous_until.map(DbTime))
            .bind(w.enabled)
            .bind(&w.disabled_reason)
            .bind(DbTime(w.updated_at))
            .bind(&w.id)
            .execute(p)
            .await
            .map(|r| r.rows_affected() > 0)
            .map_err(&q))
    }

    pub async fn delete_webhook(&self, id: &str) -> Result<bool, DbError> {
        let q = query_err("deleting a webhook");
        let sql = self.sql("DELETE FROM {webhooks} WHERE id = ?");
        with_pool!(self.pool(), p => sqlx::query(&sql)
            .bind(id)
            .execute(p)
            .await
            .map(|r| r.rows_affected() > 0)
            .map_err(&q))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn webhooks_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("w.db").display());
        let db = Db::connect(&url, &Default::default()).await.unwrap();
        let mut w = WebhookRow {
            id: "wh_1".into(),
            url: "https://crm.example.com/hook".into(),
            events: vec!["call.ringing".into(), "call.completed".into()],
            secret: "whsec_a".into(),
            previous_secret: None,
            previous_until: None,
            enabled: true,
            disabled_reason: None,
            created_at: Timestamp::from_micros(1_800_000_000_123_456),
            updated_at: Timestamp::from_micros(1_800_000_000_123_456),
        };
        db.insert_webhook(&w).await.unwrap();
        assert!(!format!("{w:?}").contains("whsec_a"));
        assert_eq!(db.webhooks().await.unwrap(), vec![w.clone()]);
        w.events.clear();
        w.enabled = false;
        w.disabled_reason = Some("410 Gone".into());
        w.previous_secret = Some("whsec_old".into());
        w.previous_until = Some(Timestamp::from_secs(1_900_000_000));
        assert!(db.update_webhook(&w).await.unwrap());
        assert_eq!(db.webhooks().await.unwrap(), vec![w.clone()]);
        assert!(db.delete_webhook("wh_1").await.unwrap());
        assert!(!db.delete_webhook("wh_1").await.unwrap());
        assert!(!db.update_webhook(&w).await.unwrap());
        assert!(db.webhooks().await.unwrap().is_empty());
    }
}
