//! Times as each backend sorts and compares them: TIMESTAMPTZ on PostgreSQL,
//! DATETIME(6) in UTC on MySQL, and on SQLite fixed-width RFC 3339 text in UTC
//! (`2026-11-21T10:00:00.123456Z`), which sorts as text in time order.

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::{Decode, Encode, MySql, Postgres, Sqlite, Type};

use crate::time::Timestamp;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct DbTime(pub Timestamp);

impl DbTime {
    fn chrono(self) -> chrono::DateTime<chrono::Utc> {
        let us = self.0.micros();
        chrono::DateTime::from_timestamp_micros(us).unwrap_or_default()
    }
}

impl Type<Sqlite> for DbTime {
    fn type_info() -> <Sqlite as sqlx::Database>::TypeInfo {
        <String as Type<Sqlite>>::type_info()
    }
    fn compatible(ty: &<Sqlite as sqlx::Database>::TypeInfo) -> bool {
        <String as Type<Sqlite>>::compatible(ty)
    }
}

impl<'q> Encode<'q, Sqlite> for DbTime {
    fn encode_by_ref(
        &self,
        buf: &mut <Sqlite as sqlx::Database>::ArgumentBuffer<'q>,
    ) -> Result<IsNull, BoxDynError> {
        <String as Encode<'q, Sqlite>>::encode(self.0.to_rfc3339(), buf)
    }
}

impl<'r> Decode<'r, Sqlite> for DbTime {
    fn decode(value: <Sqlite as sqlx::Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
        let text = <&str as Decode<'r, Sqlite>>::decode(value)?;
        Timestamp::parse_rfc3339(text)
            .map(DbTime)
            .ok_or_else(|| format!("{text:?} is not an RFC 3339 time").into())
    }
}

impl Type<Postgres> for DbTime {
    fn type_info() -> <Postgres as sqlx::Database>::TypeInfo {
        <chrono::DateTime<chrono::Utc> as Type<Postgres>>::type_info()
    }
}

impl<'q> Encode<'q, Postgres> for DbTime {
    fn encode_by_ref(
        &self,
        buf: &mut <Postgres as sqlx::Database>::ArgumentBuffer<'q>,
    ) -> Result<IsNull, BoxDynError> {
        <chrono::DateTime<chrono::Utc> as Encode<'q, Postgres>>::encode(self.chrono(), buf)
    }
}

impl<'r> Decode<'r, Postgres> for DbTime {
    fn decode(value: <Postgres as sqlx::Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
        let t = <chrono::DateTime<chrono::Utc> as Decode<'r, Postgres>>::decode(value)?;
        Ok(DbTime(Timestamp::from_micros(t.timestamp_micros())))
    }
}

impl Type<MySql> for DbTime {
    fn type_info() -> <MySql as sqlx::Database>::TypeInfo {
        <chrono::NaiveDateTime as Type<MySql>>::type_info()
    }
    fn compatible(ty: &<MySql as sqlx::Database>::TypeInfo) -> bool {
        <chrono::NaiveDateTime as Type<MySql>>::compatible(ty)
    }
}

impl<'q> Encode<'q, MySql> for DbTime {
    fn encode_by_ref(
        &self,
        buf: &mut <MySql as sqlx::Database>::ArgumentBuffer<'q>,
    ) -> Result<IsNull, BoxDynError> {
        // DATETIME has no zone; the value is always UTC.
        <chrono::NaiveDateTime as Encode<'q, MySql>>::encode(self.chrono().naive_utc(), buf)
    }
}

impl<'r> Decode<'r, MySql> for DbTime {
    fn decode(value: <MySql as sqlx::Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
        let t = <chrono::NaiveDateTime as Decode<'r, MySql>>::decode(value)?;
        Ok(DbTime(Timestamp::from_micros(
            t.and_utc().timestamp_micros(),
        )))
    }
}
