//! The same behaviour on SQLite, PostgreSQL and MariaDB: migrations, table
//! prefix and schema, idempotent upserts, times that sort, long Call-IDs.

use crate::db_support;

use db_support::{count, strings, TestDb, ALL};
use pbxbridge::call::{Direction, Outcome};
use pbxbridge::db::{Backend, DbOptions};
use pbxbridge::report::CallReport;
use pbxbridge::time::Timestamp;

/// An incoming call from +14155551212 to 2001 with a start time that has
/// microseconds (for the round-trip test) and the given outcome.
fn report(call_id: &str, started_secs: i64, outcome: Outcome) -> CallReport {
    let mut c = db_support::answered_call(
        call_id,
        Direction::Incoming,
        "+14155551212",
        None,
        started_secs,
    );
    c.started_at = Timestamp::from_micros(started_secs * 1_000_000 + 123_456);
    c.outcome = outcome;
    c
}

#[tokio::test]
async fn migrations_run_twice_and_upserts_are_idempotent_on_every_backend() {
    for backend in ALL {
        let t = TestDb::new(backend).await;
        let db = t.connect().await;
        // A second start finds everything applied.
        let db2 = t.connect().await;
        assert_eq!(
            count(&db2, "SELECT count(*) FROM {schema_migrations}").await,
            pbxbridge::db::MIGRATIONS.len() as i64,
            "{backend:?}"
        );
        let calls = vec![
            report("b@pbx", 1_800_000_100, Outcome::Answered),
            report("a@pbx", 1_800_000_000, Outcome::Busy),
        ];
        let w = db.upsert_calls("default", &calls).await.expect("write");
        assert_eq!(w.calls, 2);
        db.upsert_calls("default", &calls).await.expect("rewrite");
        assert_eq!(
            count(&db, "SELECT count(*) FROM {calls}").await,
            2,
            "{backend:?}: a second write of the same calls adds no row"
        );
        // Another sensor's call with the same Call-ID is its own row.
        db.upsert_calls("site-b", &calls[..1]).await.expect("write");
        assert_eq!(count(&db, "SELECT count(*) FROM {calls}").await, 3);

        // Times sort as time, and compare with a bound time.
        let order = strings(
            &db,
            "SELECT call_id FROM {calls} WHERE sensor = 'default' ORDER BY started_at",
        )
        .await;
        assert_eq!(order, ["a@pbx", "b@pbx"], "{backend:?}");
        let other = strings(
            &db,
            "SELECT other_number FROM {calls} WHERE call_id = 'a@pbx' AND sensor = 'default'",
        )
        .await;
        assert_eq!(
            other,
            ["+14155551212"],
            "incoming: the caller is the other party"
        );
        db.close().await;
        db2.close().await;
    }
}

#[tokio::test]
async fn times_round_trip_with_microseconds() {
    use pbxbridge::db::{DbTime, Pool};
    use sqlx::Row;
    for backend in ALL {
        let t = TestDb::new(backend).await;
        let db = t.connect().await;
        let c = report("t@pbx", 1_800_000_000, Outcome::Answered);
        db.upsert_calls("default", std::slice::from_ref(&c))
            .await
            .unwrap();
        let sql = db.sql("SELECT started_at, answered_at FROM {calls} WHERE call_id = ?");
        let (s, a): (DbTime, Option<DbTime>) = match db.pool() {
            Pool::Sqlite(p) => {
                let r = sqlx::query(&sql).bind("t@pbx").fetch_one(p).await.unwrap();
                (r.get(0), r.get(1))
            }
            Pool::Postgres(p) => {
                let r = sqlx::query(&sql).bind("t@pbx").fetch_one(p).await.unwrap();
                (r.get(0), r.get(1))
            }
            Pool::MySql(p) => {
                let r = sqlx::query(&sql).bind("t@pbx").fetch_one(p).await.unwrap();
                (r.get(0), r.get(1))
            }
        };
        assert_eq!(s.0, c.started_at, "{backend:?}");
        assert_eq!(a.map(|a| a.0), c.answered_at, "{backend:?}");
    }
}

#[tokio::test]
async fn prefix_and_schema_keep_tables_apart() {
    for backend in [Backend::Postgres, Backend::MySql] {
        let t = TestDb::new(backend).await;
        let schema = format!("pbxs_{}", std::process::id());
        let opts = DbOptions {
            table_prefix: "pbx_".into(),
            schema: schema.clone(),
            max_connections: 2,
        };
        let db = t.connect_with(&opts).await;
        db.upsert_calls(
            "default",
            &[report("p@pbx", 1_800_000_000, Outcome::Answered)],
        )
        .await
        .unwrap();
        let table = match backend {
            Backend::Postgres => format!("\"{schema}\".\"pbx_calls\""),
            _ => format!("`{schema}`.`pbx_calls`"),
        };
        assert_eq!(
            count(&db, &format!("SELECT count(*) FROM {table}")).await,
            1
        );
        // The unprefixed default tables were not made.
        let plain = match backend {
            Backend::Postgres => "SELECT count(*) FROM information_schema.tables WHERE table_name = 'calls'".to_string(),
            _ => format!("SELECT count(*) FROM information_schema.tables WHERE table_name = 'calls' AND table_schema IN ('{schema}', DATABASE())"),
        };
        assert_eq!(count(&db, &plain).await, 0, "{backend:?}");
        db.close().await;
        if backend == Backend::MySql {
            // The schema is a database of its own on MySQL: clean it up.
            db_support::exec(&t.connect().await, &format!("DROP DATABASE {schema}")).await;
        }
    }
    let t = TestDb::new(Backend::Sqlite).await;
    let db = t
        .connect_with(&DbOptions {
            table_prefix: "pbx_".into(),
            ..DbOptions::default()
        })
        .await;
    assert_eq!(count(&db, "SELECT count(*) FROM pbx_calls").await, 0);
}

#[tokio::test]
async fn a_long_call_id_and_long_values_are_stored_not_refused() {
    for backend in ALL {
        let t = TestDb::new(backend).await;
        let db = t.connect().await;
        let long_id = format!("{}@pbx", "x".repeat(400));
        let mut c = report(&long_id, 1_800_000_000, Outcome::Answered);
        c.sip_src = Some("y".repeat(300));
        db.upsert_calls("default", &[c.clone()])
            .await
            .expect("long values");
        db.upsert_calls("default", &[c]).await.expect("again");
        assert_eq!(
            count(&db, "SELECT count(*) FROM {calls}").await,
            1,
            "{backend:?}"
        );
    }
}

/// Two processes opening a new database at once (the daemon and a CLI
/// command) both migrate it; neither fails.
#[tokio::test]
async fn two_first_starts_at_once_both_migrate() {
    for backend in ALL {
        let t = TestDb::new(backend).await;
        let opts = DbOptions::default();
        let (a, b, c) = tokio::join!(
            pbxbridge::db::Db::connect(&t.url, &opts),
            pbxbridge::db::Db::connect(&t.url, &opts),
            pbxbridge::db::Db::connect(&t.url, &opts)
        );
        let (a, b, c) = (
            a.unwrap_or_else(|e| panic!("{backend:?}: {e}")),
            b.unwrap_or_else(|e| panic!("{backend:?}: {e}")),
            c.unwrap_or_else(|e| panic!("{backend:?}: {e}")),
        );
        assert_eq!(
            count(&a, "SELECT count(*) FROM {schema_migrations}").await,
            pbxbridge::db::MIGRATIONS.len() as i64,
            "{backend:?}"
        );
        for db in [a, b, c] {
            db.close().await;
        }
    }
}

/// Call quality (migration 0005): the worse direction's MOS, R and loss as
/// real columns a filter reads, both directions' figures as JSON, the same
/// on every backend; a call without a measure has NULLs.
#[tokio::test]
async fn call_quality_round_trips_on_every_backend() {
    use pbxbridge::db::call_list::{CallQuery, Start};
    use pbxbridge::report::RtpReport;
    use pbxbridge::rtp::quality::{DirQuality, LossRunCounts, RtcpView};

    let caller = DirQuality {
        expected: 1500,
        received: 1481,
        lost: 21,
        duplicated: 2,
        out_of_order: 3,
        late: 1,
        loss_pct: 1.4,
        jitter_ms: 2.125,
        max_jitter_ms: 7.5,
        max_gap_ms: 180.0,
        max_burst: 6,
        loss_runs: LossRunCounts {
            len_1: 9,
            len_2: 3,
            len_3_5: 0,
            len_6_plus: 1,
        },
        burst_ratio: 1.42,
        r_factor: Some(84.211),
        mos: Some(4.127),
        rtcp: Some(RtcpView {
            reports: 3,
            fraction_lost_pct: 1.172,
            cumulative_lost: 20,
            jitter_ms: 2.5,
            rtt_ms: Some(42.5),
            xr: None,
        }),
    };
    let callee = DirQuality {
        expected: 1500,
        received: 1500,
        r_factor: Some(93.2),
        mos: Some(4.409),
        ..DirQuality::default()
    };
    for backend in ALL {
        let t = TestDb::new(backend).await;
        let db = t.connect().await;
        let mut measured = report("q@pbx", 1_800_000_000, Outcome::Answered);
        let (mut a, mut b) = (measured.rtp.caller.clone(), measured.rtp.callee.clone());
        a.quality = Some(caller.clone());
        b.quality = Some(callee.clone());
        measured.rtp = RtpReport::new(a, b);
        assert_eq!(measured.rtp.mos, Some(4.127));
        assert_eq!(measured.rtp.loss_pct, Some(1.4));
        let plain = report("p@pbx", 1_800_000_100, Outcome::Answered);
        db.upsert_calls("default", &[measured, plain])
            .await
            .expect("write");

        let all = CallQuery::default()
            .fetch(&db, &Start::After(None), 10)
            .await
            .expect("list");
        let q = all.iter().find(|c| c.call_id == "q@pbx").unwrap();
        assert_eq!(
            (q.mos, q.r_factor, q.loss_pct),
            (Some(4.127), Some(84.211), Some(1.4)),
            "{backend:?}"
        );
        let json: serde_json::Value =
            serde_json::from_str(q.quality.as_deref().expect("quality json")).unwrap();
        let back: DirQuality = serde_json::from_value(json["caller"].clone()).unwrap();
        assert_eq!(back, caller, "{backend:?}");
        let back: DirQuality = serde_json::from_value(json["callee"].clone()).unwrap();
        assert_eq!(back, callee, "{backend:?}");
        let p = all.iter().find(|c| c.call_id == "p@pbx").unwrap();
        assert_eq!(
            (p.mos, p.loss_pct, p.quality.as_deref()),
            (None, None, None)
        );

        // The filters read the real columns; unmeasured calls never pass.
        for (min_mos, max_loss, want) in [
            (Some(4.0), None, 1),
            (Some(4.2), None, 0),
            (None, Some(1.4), 1),
            (None, Some(1.0), 0),
            (Some(1.0), Some(100.0), 1),
        ] {
            let query = CallQuery {
                min_mos,
                max_loss,
                ..CallQuery::default()
            };
            assert_eq!(
                query.count(&db).await.expect("count"),
                want,
                "{backend:?} min_mos {min_mos:?} max_loss {max_loss:?}"
            );
        }
    }
}
