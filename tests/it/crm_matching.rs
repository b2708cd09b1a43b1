//! Matching finished calls to CRM records, linking by hand and in bulk, on
//! SQLite, PostgreSQL and MariaDB, against the CRM fixture of `db_support::crm`.

use crate::db_support;

use db_support::{answered_call as report, count, crm, exec, strings, TestDb, ALL};
use pbxbridge::call::Direction;
use pbxbridge::db::links::{self, CallLinkError, LinkChange};
use pbxbridge::db::{Db, DbError, LinkSource};
use pbxbridge::matching::linker::Linker;

/// The `{phone_index}` rows the fixture implies (see `db_support::crm`):
/// (type, id, field, raw, number, extension, name).
type IndexRow = (
    &'static str,
    String,
    &'static str,
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
    Option<String>,
);

fn index_rows() -> Vec<IndexRow> {
    let s = |v: &str| Some(v.to_string());
    let mut rows: Vec<IndexRow> = vec![
        (
            "contact",
            "1".into(),
            "phone_work",
            "(415) 555-1212",
            Some("+14155551212"),
            None,
            s("Alice Smith"),
        ),
        (
            "contact",
            "1".into(),
            "phone_mobile",
            "+1 415-555-1313 ext. 3",
            Some("+14155551313"),
            Some("3"),
            s("Alice Smith"),
        ),
        (
            "contact",
            "2".into(),
            "phone_work",
            "415.555.2222",
            Some("+14155552222"),
            None,
            s("Bob Jones"),
        ),
        (
            "contact",
            "2".into(),
            "phone_home",
            "call me maybe",
            None,
            None,
            s("Bob Jones"),
        ),
        (
            "contact",
            "3".into(),
            "phone_home",
            "555",
            None,
            None,
            s("Carol White"),
        ),
        (
            "lead",
            "1".into(),
            "phone",
            "(415) 555 2222",
            Some("+14155552222"),
            None,
            s("Dan Lead"),
        ),
        (
            "lead",
            "2".into(),
            "phone",
            "n/a",
            None,
            None,
            s("Eve Lead"),
        ),
        (
            "lead",
            "2".into(),
            "mobile",
            "+1 212 555 0199",
            Some("+12125550199"),
            None,
            s("Eve Lead"),
        ),
        (
            "account",
            "1".into(),
            "phone",
            "(415) 555-1000",
            Some("+14155551000"),
            None,
            s("Acme Corp"),
        ),
        (
            "account",
            "2".into(),
            "phone",
            "00 44 20 7946 0958",
            Some("+442079460958"),
            None,
            s("Globex"),
        ),
        (
            "account",
            "3".into(),
            "phone",
            "12",
            None,
            None,
            s("Initech"),
        ),
        (
            "account",
            "4".into(),
            "phone",
            "+1 (650) 555-0100",
            Some("+16505550100"),
            None,
            s("Big Shared Co"),
        ),
        (
            "case",
            "1".into(),
            "callback_phone",
            "(917) 555-0142",
            Some("+19175550142"),
            None,
            s("Broken widget"),
        ),
        (
            "user",
            "1".into(),
            "extension",
            "2001",
            Some("2001"),
            Some("2001"),
            s("Agent Ann"),
        ),
        (
            "user",
            "1".into(),
            "phone",
            "+1 415 555 9001",
            Some("+14155559001"),
            None,
            s("Agent Ann"),
        ),
        (
            "user",
            "2".into(),
            "extension",
            "2002",
            Some("2002"),
            Some("2002"),
            s("Agent Ben"),
        ),
    ];
    for id in crm::SHARED_CONTACTS {
        rows.push((
            "contact",
            id.to_string(),
            "phone_work",
            "+1 (650) 555-0100",
            Some(crm::SHARED_MAIN_NUMBER),
            None,
            Some(format!("Shared Contact {id}")),
        ));
    }
    rows
}

fn lit(v: Option<&str>) -> String {
    v.map_or("NULL".into(), |s| format!("'{}'", s.replace('\'', "''")))
}

/// A database with the CRM fixture and its phone index filled by hand.
async fn crm_db(t: &TestDb) -> Db {
    let db = t.connect().await;
    crm::install(&db).await;
    let values: Vec<String> = index_rows()
        .iter()
        .map(|(ty, id, f, raw, n, e, name)| {
            format!(
                "('{ty}', '{id}', '{f}', {}, {}, {}, {})",
                lit(Some(raw)),
                lit(*n),
                lit(*e),
                lit(name.as_deref())
            )
        })
        .collect();
    exec(
        &db,
        &db.sql(&format!(
            "INSERT INTO {{phone_index}} (record_type, record_id, field, raw, number, extension, display_name) VALUES {}",
            values.join(", ")
        )),
    )
    .await;
    db
}

/// The call's links as sorted `type:id:field:via_type:via_id` strings.
async fn links_of(db: &Db, call_id: &str, only_active: bool) -> Vec<String> {
    let removed = if only_active {
        " AND l.removed_at IS NULL"
    } else {
        ""
    };
    let mut v = strings(
        db,
        &format!(
            "SELECT {} FROM {{call_links}} l JOIN {{calls}} c ON c.id = l.call_row \
             WHERE c.call_id = '{call_id}'{removed}",
            concat(
                db,
                &[
                    "l.record_type",
                    "':'",
                    "l.record_id",
                    "':'",
                    "COALESCE(l.field, '-')",
                    "':'",
                    "COALESCE(l.via_type, '-')",
                    "':'",
                    "COALESCE(l.via_id, '-')",
                ]
            )
        ),
    )
    .await;
    v.sort();
    v
}

fn concat(_db: &Db, parts: &[&str]) -> String {
    format!("CONCAT({})", parts.join(", "))
}

fn config() -> pbxbridge::config::Config {
    crm::config("sqlite://unused.db")
}

#[tokio::test]
async fn calls_link_to_matching_and_related_records_on_every_backend() {
    let cfg = config();
    for backend in ALL {
        let t = TestDb::new(backend).await;
        let db = crm_db(&t).await;
        let linker = Linker::new(&cfg.crm);
        let calls = vec![
            report(
                "shared-number@pbx",
                Direction::Incoming,
                "+14155552222",
                Some("2001"),
                1_800_000_000,
            ),
            report(
                "main-number@pbx",
                Direction::Outgoing,
                crm::SHARED_MAIN_NUMBER,
                Some("2002"),
                1_800_000_100,
            ),
            report(
                "unknown@pbx",
                Direction::Incoming,
                "+13125550000",
                Some("2999"),
                1_800_000_200,
            ),
            report(
                "alice@pbx",
                Direction::Incoming,
                "+14155551212",
                None,
                1_800_000_300,
            ),
        ];
        let w = linker.write(&db, "default", &calls).await.expect("write");
        assert_eq!(w.calls, 4, "{backend:?}");

        assert_eq!(
            links_of(&db, "shared-number@pbx", true).await,
            vec![
                "account:2:account_id:contact:2",
                "contact:2:phone_work:-:-",
                "deal:3:account_id:account:2",
                "lead:1:phone:-:-",
                "user:1:extension:-:-",
            ],
            "{backend:?}: the contact and the lead sharing the number, the contact's account, its open deal (not the closed ones), and the agent"
        );
        let agent = strings(
            &db,
            "SELECT CONCAT(agent_type, ':', agent_id, ':', agent_name) FROM {calls} WHERE call_id = 'shared-number@pbx'",
        )
        .await;
        assert_eq!(agent, vec!["user:1:Agent Ann"], "{backend:?}");

        let main = links_of(&db, "main-number@pbx", true).await;
        let contacts = main.iter().filter(|l| l.starts_with("contact:")).count();
        assert_eq!(
            contacts, 200,
            "{backend:?}: every holder of the main number"
        );
        assert!(
            main.contains(&"account:4:phone:-:-".to_string()),
            "{backend:?}: {main:?}"
        );
        assert!(
            main.contains(&"user:2:extension:-:-".to_string()),
            "{backend:?}"
        );
        assert_eq!(
            main.len(),
            202,
            "{backend:?}: account 4 only once, directly"
        );
        assert_eq!(
            count(&db, "SELECT count(*) FROM {calls} WHERE call_id = 'main-number@pbx' AND agent_id = '2' AND agent_name = 'Agent Ben'").await,
            1
        );

        assert!(
            links_of(&db, "unknown@pbx", false).await.is_empty(),
            "{backend:?}"
        );
        assert_eq!(
            count(&db, "SELECT count(*) FROM {calls} WHERE call_id = 'unknown@pbx' AND agent_id IS NULL AND other_number = '+13125550000'").await,
            1,
            "{backend:?}: an unmatched call is written, without agent"
        );

        assert_eq!(
            links_of(&db, "alice@pbx", true).await,
            vec![
                "account:1:account_id:contact:1",
                "case:1:contact_id:contact:1",
                "contact:1:phone_work:-:-",
                "deal:1:account_id:account:1",
            ],
            "{backend:?}: contact 1's open case, not the closed one; its account's open deal"
        );
        let names = strings(
            &db,
            "SELECT l.display_name FROM {call_links} l JOIN {calls} c ON c.id = l.call_row WHERE c.call_id = 'alice@pbx' AND l.record_type IN ('case', 'deal') ORDER BY l.record_type",
        )
        .await;
        assert_eq!(names, vec!["Broken widget", "Acme renewal"], "{backend:?}");

        // A retry, a restart or a replay writes the same calls again.
        let links_before = count(&db, "SELECT count(*) FROM {call_links}").await;
        let again = linker.write(&db, "default", &calls).await.expect("rewrite");
        assert_eq!(again.links_added, 0, "{backend:?}");
        assert_eq!(
            count(&db, "SELECT count(*) FROM {call_links}").await,
            links_before
        );
        assert_eq!(count(&db, "SELECT count(*) FROM {calls}").await, 4);
        assert_eq!(linker.relation_errors(), 0);
    }
}

#[tokio::test]
async fn a_broken_relation_costs_only_its_links_and_a_missing_index_fails_the_batch() {
    let mut cfg = config();
    cfg.crm.relations[0].column = Some("no_such_column".into());
    cfg.crm.relations[2].filter = Some("no_such_status = 1".into());
    for backend in ALL {
        let t = TestDb::new(backend).await;
        let db = crm_db(&t).await;
        let linker = Linker::new(&cfg.crm);
        let calls = [report(
            "alice@pbx",
            Direction::Incoming,
            "+14155551212",
            None,
            1_800_000_000,
        )];
        linker
            .write(&db, "default", &calls)
            .await
            .expect("written despite the relations");
        assert_eq!(
            links_of(&db, "alice@pbx", true).await,
            vec!["contact:1:phone_work:-:-"],
            "{backend:?}"
        );
        assert_eq!(linker.relation_errors(), 2, "{backend:?}");

        exec(&db, &db.sql("DROP TABLE {phone_index}")).await;
        let later = [report(
            "bob@pbx",
            Direction::Incoming,
            "+14155552222",
            None,
            1_800_000_100,
        )];
        let err = linker
            .write(&db, "default", &later)
            .await
            .expect_err("no index, no write");
        assert!(matches!(err, DbError::Query { .. }), "{backend:?}: {err}");
        assert_eq!(
            count(
                &db,
                "SELECT count(*) FROM {calls} WHERE call_id = 'bob@pbx'"
            )
            .await,
            0,
            "{backend:?}: the batch stays for a retry"
        );
    }
}

#[tokio::test]
async fn manual_links_unlinks_and_backfill_on_every_backend() {
    let cfg = config();
    for backend in ALL {
        let t = TestDb::new(backend).await;
        let db = crm_db(&t).await;
        let linker = Linker::new(&cfg.crm);
        let calls = [
            report(
                "old-1@pbx",
                Direction::Incoming,
                "+14155551999",
                None,
                1_700_000_000,
            ),
            report(
                "old-2@pbx",
                Direction::Outgoing,
                "+14155551999",
                Some("2001"),
                1_700_000_100,
            ),
            report(
                "bob@pbx",
                Direction::Incoming,
                "+14155552222",
                None,
                1_800_000_000,
            ),
        ];
        linker.write(&db, "default", &calls).await.expect("write");

        // A person links an unmatched call, and takes a matched link away.
        let add = |c, ty, id| links::link(&db, "default", c, ty, id, LinkSource::Manual);
        assert_eq!(
            add("old-1@pbx", "contact", "3").await.unwrap(),
            LinkChange::Added
        );
        assert_eq!(
            add("old-1@pbx", "contact", "3").await.unwrap(),
            LinkChange::AlreadyLinked
        );
        let un = |c, ty, id| links::unlink(&db, "default", c, ty, id);
        assert_eq!(
            un("bob@pbx", "lead", "1").await.unwrap(),
            LinkChange::Removed
        );
        assert_eq!(
            un("bob@pbx", "lead", "1").await.unwrap(),
            LinkChange::AlreadyRemoved
        );
        assert_eq!(
            un("bob@pbx", "case", "9").await.unwrap(),
            LinkChange::NotLinked
        );

        // Matching again (a replay) does not bring the removed link back.
        linker.write(&db, "default", &calls).await.expect("rewrite");
        let bob = links_of(&db, "bob@pbx", true).await;
        assert!(
            !bob.iter().any(|l| l.starts_with("lead:1:")),
            "{backend:?}: {bob:?}"
        );
        assert!(
            bob.contains(&"contact:2:phone_work:-:-".to_string()),
            "{backend:?}"
        );

        let (row, all) = links::call_with_links(&db, "default", "bob@pbx")
            .await
            .unwrap()
            .expect("bob's call");
        assert_eq!(row.other_number.as_deref(), Some("+14155552222"));
        let lead = all
            .iter()
            .find(|l| l.record_type == "lead")
            .expect("tombstone");
        assert!(lead.removed_at.is_some(), "{backend:?}");
        assert_eq!(lead.source, "auto");

        // Linking again clears the tombstone.
        assert_eq!(
            add("bob@pbx", "lead", "1").await.unwrap(),
            LinkChange::Restored
        );
        assert!(links_of(&db, "bob@pbx", true)
            .await
            .iter()
            .any(|l| l.starts_with("lead:1:")));

        let missing = add("nope@pbx", "contact", "1")
            .await
            .expect_err("unknown call");
        assert!(matches!(missing, DbError::NoSuchCall { .. }), "{missing}");
        assert!(matches!(
            links::check_record(&cfg.crm, "planet", "1"),
            Err(CallLinkError::UnknownType { .. })
        ));

        // The number becomes a lead's: its past calls are found, once.
        exec(
            &db,
            &db.sql("INSERT INTO {phone_index} (record_type, record_id, field, raw, number, extension, display_name) VALUES ('lead', '2', 'phone', '415 555 1999', '+14155551999', NULL, 'Eve Lead')"),
        )
        .await;
        let first = links::match_past_calls(&db, &cfg.crm, "lead", "2")
            .await
            .unwrap();
        assert_eq!(first.links_added, 2, "{backend:?}");
        assert_eq!(first.calls_matched, 2);
        assert!(first.numbers.contains(&"+14155551999".to_string()));
        let second = links::match_past_calls(&db, &cfg.crm, "lead", "2")
            .await
            .unwrap();
        assert_eq!(
            second.links_added, 0,
            "{backend:?}: a second run adds nothing"
        );
        assert!(matches!(
            links::match_past_calls(&db, &cfg.crm, "planet", "2").await,
            Err(CallLinkError::UnknownType { .. })
        ));

        let lead_calls = links::calls_for_record(&db, "lead", "2", 50).await.unwrap();
        let listed: Vec<(&str, &str)> = lead_calls
            .iter()
            .map(|c| (c.call.call_id.as_str(), c.source.as_str()))
            .collect();
        assert_eq!(
            listed,
            vec![("old-2@pbx", "backfill"), ("old-1@pbx", "backfill")],
            "{backend:?}: newest first"
        );
        let carol = links::calls_for_record(&db, "contact", "3", 50)
            .await
            .unwrap();
        assert_eq!(carol.len(), 1);
        assert_eq!(carol[0].source, "manual");
        assert_eq!(carol[0].call.call_id, "old-1@pbx");
        // A removed link is not one of the record's calls.
        links::unlink(&db, "default", "old-1@pbx", "contact", "3")
            .await
            .unwrap();
        assert!(links::calls_for_record(&db, "contact", "3", 50)
            .await
            .unwrap()
            .is_empty());
    }
}

#[tokio::test]
async fn cli_links_shows_lists_and_backfills_on_sqlite() {
    use std::process::Command;
    let t = TestDb::new(pbxbridge::db::Backend::Sqlite).await;
    let db = crm_db(&t).await;
    let cfg = config();
    Linker::new(&cfg.crm)
        .write(
            &db,
            "default",
            &[report(
                "cli@pbx",
                Direction::Incoming,
                "+14155551999",
                None,
                1_800_000_000,
            )],
        )
        .await
        .unwrap();
    // The lead gets the caller's number in the CRM after the call ended:
    // match-past-calls reads it from the CRM, not from the index.
    exec(&db, "UPDATE leads SET phone = '415 555 1999' WHERE id = 2").await;
    db.close().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg_path = dir.path().join("pbxbridge.toml");
    std::fs::write(
        &cfg_path,
        format!("[database]\nurl = \"{}\"\n{}", t.url, crm::CONFIG),
    )
    .unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_pbxbridge"))
            .args(args)
            .arg("--config")
            .arg(&cfg_path)
            .output()
            .expect("run pbxbridge");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };

    let (code, out, err) = run(&["calls", "link", "cli@pbx", "contact", "3"]);
    assert_eq!(code, Some(0), "{out}{err}");
    let (code, _, err) = run(&["calls", "link", "cli@pbx", "planet", "3"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("planet") && err.contains("contact"), "{err}");
    let (code, _, err) = run(&["calls", "unlink", "nope@pbx", "contact", "3"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("nope@pbx"), "{err}");

    let (code, out, err) = run(&["match-past-calls", "lead", "2"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("1 link"), "{out}");
    let (_, out, _) = run(&["match-past-calls", "lead", "2"]);
    assert!(out.contains("0 links"), "{out}");

    let (code, out, err) = run(&["calls", "show", "cli@pbx", "--json"]);
    assert_eq!(code, Some(0), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect(&out);
    assert_eq!(v["call"]["call_id"], "cli@pbx");
    let sources: Vec<String> = v["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            format!(
                "{}:{}:{}",
                l["record_type"].as_str().unwrap(),
                l["record_id"].as_str().unwrap(),
                l["source"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(sources, vec!["contact:3:manual", "lead:2:backfill"]);

    let (code, out, err) = run(&["calls", "list", "--record", "lead", "2", "--json"]);
    assert_eq!(code, Some(0), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect(&out);
    assert_eq!(v[0]["call"]["call_id"], "cli@pbx");
    assert_eq!(v[0]["source"], "backfill");
    let (code, out, _) = run(&["calls", "list", "--record", "contact", "3"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("cli@pbx") && out.contains("manual"), "{out}");
    let (code, out, _) = run(&["calls", "show", "cli@pbx"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("lead 2") && out.contains("backfill"), "{out}");
}
