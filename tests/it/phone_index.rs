//! The phone index over the CRM fixture, on SQLite, PostgreSQL and MariaDB.

use crate::db_support;

use db_support::{count, crm, exec, strings, TestDb, ALL};
use pbxbridge::db::{Backend, Db};
use pbxbridge::matching::index::{self, BuildMode, IndexError};

async fn fixture(backend: Backend) -> (TestDb, Db, pbxbridge::config::Config) {
    let t = TestDb::new(backend).await;
    let db = t.connect().await;
    crm::install(&db).await;
    let cfg = crm::config(&t.url);
    (t, db, cfg)
}

/// `type:id:field` of every row holding `number`, sorted.
async fn holders(db: &Db, number: &str) -> Vec<String> {
    let mut v = strings(
        db,
        &format!(
            "SELECT {} FROM {{phone_index}} WHERE number = '{number}'",
            concat3(db)
        ),
    )
    .await;
    v.sort();
    v
}

fn concat3(db: &Db) -> &'static str {
    match db.backend() {
        Backend::MySql => "CONCAT(record_type, ':', record_id, ':', field)",
        _ => "record_type || ':' || record_id || ':' || field",
    }
}

async fn all_rows(db: &Db) -> Vec<String> {
    let sql = match db.backend() {
        Backend::MySql => "SELECT CONCAT_WS('|', record_type, record_id, field, raw, COALESCE(number, '-'), COALESCE(extension, '-'), COALESCE(display_name, '-')) FROM {phone_index}",
        _ => "SELECT record_type || '|' || record_id || '|' || field || '|' || raw || '|' || COALESCE(number, '-') || '|' || COALESCE(extension, '-') || '|' || COALESCE(display_name, '-') FROM {phone_index}",
    };
    let mut v = strings(db, sql).await;
    v.sort();
    v
}

#[tokio::test]
async fn build_indexes_the_fixture_on_every_backend() {
    for backend in ALL {
        let (_t, db, cfg) = fixture(backend).await;
        let reports = index::build_all(&db, &cfg)
            .await
            .unwrap_or_else(|e| panic!("{backend:?}: {e}"));
        assert_eq!(reports.len(), 6, "{backend:?}");
        assert!(reports.iter().all(|r| r.mode == BuildMode::Full));

        assert_eq!(
            holders(&db, "+14155552222").await,
            vec!["contact:2:phone_work", "lead:1:phone"],
            "{backend:?}"
        );
        assert_eq!(
            holders(&db, "+14155551212").await,
            vec!["contact:1:phone_work"]
        );
        assert_eq!(
            holders(&db, "+442079460958").await,
            vec!["account:2:phone"],
            "{backend:?}"
        );
        assert_eq!(holders(&db, "+12125550199").await, vec!["lead:2:mobile"]);
        assert_eq!(
            holders(&db, "+19175550142").await,
            vec!["case:1:callback_phone"]
        );
        assert_eq!(
            holders(&db, "2001").await,
            vec!["user:1:extension"],
            "{backend:?}"
        );
        assert_eq!(holders(&db, "+14155559001").await, vec!["user:1:phone"]);
        let main = holders(&db, crm::SHARED_MAIN_NUMBER).await;
        assert_eq!(main.len(), 201, "{backend:?}");
        assert!(main.contains(&"account:4:phone".to_string()));
        for id in crm::SHARED_CONTACTS {
            assert!(main.contains(&format!("contact:{id}:phone_work")));
        }
        // The extension suffix is kept beside the number.
        assert_eq!(
            strings(
                &db,
                "SELECT extension FROM {phone_index} WHERE number = '+14155551313'"
            )
            .await,
            vec!["3"]
        );
        // The name expression, evaluated by the CRM's database.
        assert_eq!(
            strings(
                &db,
                "SELECT display_name FROM {phone_index} WHERE record_type = 'contact' AND record_id = '1' AND field = 'phone_work'"
            )
            .await,
            vec!["Alice Smith"]
        );

        let mut invalid = strings(
            &db,
            &format!(
                "SELECT {} FROM {{phone_index}} WHERE number IS NULL",
                match backend {
                    Backend::MySql => "CONCAT(record_type, ':', record_id, ':', raw)",
                    _ => "record_type || ':' || record_id || ':' || raw",
                }
            ),
        )
        .await;
        invalid.sort();
        assert_eq!(
            invalid,
            vec![
                "account:3:12",
                "contact:2:call me maybe",
                "contact:3:555",
                "lead:2:n/a"
            ],
            "{backend:?}"
        );
        // Empty strings and NULLs are neither valid nor invalid.
        assert_eq!(
            count(
                &db,
                "SELECT COUNT(*) FROM {phone_index} WHERE record_type = 'contact' AND record_id = '2'"
            )
            .await,
            2
        );

        let contact = reports.iter().find(|r| r.record_type == "contact").unwrap();
        assert_eq!(contact.counts.records, 203);
        assert_eq!(contact.counts.values, 205);
        assert_eq!(contact.counts.invalid, 2);
        assert_eq!(contact.counts.valid, 203);
        let user = reports.iter().find(|r| r.record_type == "user").unwrap();
        assert_eq!((user.counts.valid, user.counts.extensions), (3, 2));

        let stats = index::stats(&db, 100).await.unwrap();
        assert_eq!(stats.types.len(), 6);
        assert_eq!(stats.invalid.len(), 4);
        let st = stats
            .types
            .iter()
            .find(|s| s.record_type == "contact")
            .unwrap();
        assert_eq!(st.counts, contact.counts);
        assert!(st.built_at.is_some());
        assert!(st
            .watermark
            .as_deref()
            .unwrap_or("")
            .starts_with("2026-11-01"));

        // A second build gives exactly the same rows, no duplicates.
        let before = all_rows(&db).await;
        index::build_all(&db, &cfg).await.unwrap();
        assert_eq!(all_rows(&db).await, before, "{backend:?}");
    }
}

#[tokio::test]
async fn refresh_picks_up_changes_and_rebuild_drops_deleted_rows() {
    for backend in ALL {
        let (_t, db, cfg) = fixture(backend).await;
        index::build_all(&db, &cfg).await.unwrap();

        exec(
            &db,
            "UPDATE contacts SET phone_work = '(212) 555-0123', updated_at = '2026-11-02 10:00:00' WHERE id = 2",
        )
        .await;
        let reports = index::refresh(&db, &cfg)
            .await
            .unwrap_or_else(|e| panic!("{backend:?}: {e}"));
        let contact = reports.iter().find(|r| r.record_type == "contact").unwrap();
        assert_eq!(contact.mode, BuildMode::Refresh);
        assert_eq!(
            holders(&db, "+12125550123").await,
            vec!["contact:2:phone_work"]
        );
        assert_eq!(
            holders(&db, "+14155552222").await,
            vec!["lead:1:phone"],
            "{backend:?}: the old number is gone from contact 2"
        );
        // Contact 2's other values survived its refresh.
        assert_eq!(
            count(
                &db,
                "SELECT COUNT(*) FROM {phone_index} WHERE record_type = 'contact' AND record_id = '2'"
            )
            .await,
            2
        );
        let state = index::stats(&db, 0).await.unwrap();
        let st = state
            .types
            .iter()
            .find(|s| s.record_type == "contact")
            .unwrap();
        assert!(st
            .watermark
            .as_deref()
            .unwrap_or("")
            .starts_with("2026-11-02"));
        assert_eq!(st.counts.values, 205);
        assert_eq!(
            st.counts.valid as i64,
            count(&db, "SELECT COUNT(*) FROM {phone_index} WHERE record_type = 'contact' AND number IS NOT NULL").await
        );
        assert_eq!(st.counts.invalid, 2);
        // Types without updated_at wait for the rebuild.
        let case = reports.iter().find(|r| r.record_type == "case").unwrap();
        assert_eq!(case.mode, BuildMode::Skipped);

        // A refresh reads rows at the watermark again: nothing changes, no duplicates.
        let before = all_rows(&db).await;
        index::refresh(&db, &cfg).await.unwrap();
        assert_eq!(all_rows(&db).await, before);

        // A deletion leaves no updated_at behind: only a rebuild sees it.
        exec(&db, "DELETE FROM contacts WHERE id = 1").await;
        index::refresh(&db, &cfg).await.unwrap();
        assert_eq!(
            holders(&db, "+14155551212").await,
            vec!["contact:1:phone_work"]
        );
        let r = index::build_type(&db, &cfg, "contact").await.unwrap();
        assert_eq!(r.counts.records, 202);
        assert!(holders(&db, "+14155551212").await.is_empty(), "{backend:?}");
        assert!(holders(&db, "+14155551313").await.is_empty());

        // ensure_fresh: everything built recently, so only refreshes.
        let r = index::ensure_fresh(&db, &cfg).await.unwrap();
        assert!(r.iter().all(|r| r.mode != BuildMode::Full), "{r:?}");
    }
}

#[tokio::test]
async fn ensure_fresh_builds_types_never_built_and_drops_unconfigured_ones() {
    let (_t, db, mut cfg) = fixture(Backend::Sqlite).await;
    let r = index::ensure_fresh(&db, &cfg).await.unwrap();
    assert_eq!(r.len(), 6);
    assert!(r.iter().all(|r| r.mode == BuildMode::Full));
    cfg.crm.records.retain(|r| r.kind != "lead");
    cfg.crm.relations.clear();
    index::build_all(&db, &cfg).await.unwrap();
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM {phone_index} WHERE record_type = 'lead'"
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM {phone_index_state} WHERE record_type = 'lead'"
        )
        .await,
        0
    );
}

#[tokio::test]
async fn a_wrong_table_or_column_is_named() {
    for backend in ALL {
        let (_t, db, mut cfg) = fixture(backend).await;
        cfg.crm.records[1].table = "leadz".into();
        let err = index::build_type(&db, &cfg, "lead").await.unwrap_err();
        assert!(matches!(err, IndexError::Table { index: 1, .. }), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains("crm.records[1]") && msg.contains("\"lead\"") && msg.contains("\"leadz\""),
            "{msg}"
        );

        cfg.crm.records[1].table = "leads".into();
        cfg.crm.records[1].phones[1] = "mobil".into();
        let err = index::build_type(&db, &cfg, "lead").await.unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("crm.records[1]")
                && msg.contains("phones[1]")
                && msg.contains("\"mobil\""),
            "{backend:?}: {msg}"
        );
        assert!(!err.is_unavailable());
        // The other types still build; build_all reports the broken one.
        let results = index::build_each(&db, &cfg).await;
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 5);
        assert!(index::build_all(&db, &cfg).await.is_err());
        // Nothing of the failed type was committed.
        assert_eq!(
            count(
                &db,
                "SELECT COUNT(*) FROM {phone_index} WHERE record_type = 'lead'"
            )
            .await,
            0
        );
    }
}

fn run_cli(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_pbxbridge"))
        .args(args)
        .env_remove(pbxbridge::config::DATABASE_URL_ENV)
        .output()
        .expect("run pbxbridge")
}

#[tokio::test]
async fn cli_rebuild_and_stats_show_invalid_values() {
    let t = TestDb::new(Backend::Sqlite).await;
    let db = t.connect().await;
    crm::install(&db).await;
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("pbxbridge.toml");
    std::fs::write(
        &conf,
        format!("[database]\nurl = \"{}\"\n{}", t.url, crm::CONFIG),
    )
    .unwrap();
    let conf = conf.to_str().unwrap();

    let out = run_cli(&["index", "rebuild", "--config", conf]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("contact"), "{stdout}");

    let out = run_cli(&["index", "stats", "--config", conf]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for needle in ["call me maybe", "n/a", "555", "contact", "phone_home"] {
        assert!(
            stdout.contains(needle),
            "{needle:?} missing from:\n{stdout}"
        );
    }

    let out = run_cli(&["index", "stats", "--db", &t.url, "--json"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stats --json is JSON");
    let types = v["types"].as_array().unwrap();
    let contact = types
        .iter()
        .find(|t| t["record_type"] == "contact")
        .unwrap();
    assert_eq!(contact["invalid"], 2);
    assert_eq!(contact["valid"], 203);
    assert_eq!(v["invalid"].as_array().unwrap().len(), 4);

    // One type only; an unknown one is a usage error.
    let out = run_cli(&["index", "rebuild", "--config", conf, "--type", "lead"]);
    assert!(out.status.success());
    let out = run_cli(&["index", "rebuild", "--config", conf, "--type", "nope"]);
    assert_eq!(out.status.code(), Some(2));

    // A bad table: exit 1 and a message naming it.
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        format!(
            "[database]\nurl = \"{}\"\n{}",
            t.url,
            crm::CONFIG.replace("\"accounts\"", "\"acounts\"")
        ),
    )
    .unwrap();
    let out = run_cli(&["index", "rebuild", "--config", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("crm.records[2]") && stderr.contains("acounts"),
        "{stderr}"
    );

    // A config that does not parse: exit 2.
    std::fs::write(&bad, "[crm\n").unwrap();
    let out = run_cli(&["index", "stats", "--config", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
}

/// PostgreSQL's index is written with COPY, whose text format escapes these.
#[tokio::test]
async fn odd_characters_survive_the_write() {
    for backend in ALL {
        let (_t, db, cfg) = fixture(backend).await;
        let expr = match backend {
            Backend::MySql => "CONCAT('back\\\\slash', CHAR(9), 'tab', CHAR(10), 'nl \\\\N ''q''')",
            _ => "'back\\slash' || char(9) || 'tab' || char(10) || 'nl \\N ''q'''",
        };
        let expr = if backend == Backend::Postgres {
            expr.replace("char(", "chr(")
        } else {
            expr.to_string()
        };
        exec(
            &db,
            &format!("UPDATE contacts SET phone_home = {expr} WHERE id = 3"),
        )
        .await;
        index::build_type(&db, &cfg, "contact").await.unwrap();
        let raw = strings(
            &db,
            "SELECT raw FROM {phone_index} WHERE record_type = 'contact' AND record_id = '3'",
        )
        .await;
        assert_eq!(raw, vec!["back\\slash\ttab\nnl \\N 'q'"], "{backend:?}");
        // Text, so counted as invalid.
        assert_eq!(
            count(
                &db,
                "SELECT COUNT(*) FROM {phone_index} WHERE record_id = '3' AND number IS NOT NULL"
            )
            .await,
            0
        );
    }
}
