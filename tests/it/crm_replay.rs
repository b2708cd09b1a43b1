//! What a new user does: point the config at the CRM's database, replay a
//! capture, and find each call linked to the right contact and lead — on
//! PostgreSQL, MariaDB and SQLite, through the real binary.

use crate::db_support;

use std::path::Path;
use std::process::Command;

use db_support::{count, exec, strings, TestDb, ALL};

fn fixture(name: &str) -> String {
    format!("{}/pcap-fixtures/{name}.pcap", env!("CARGO_MANIFEST_DIR"))
}

/// The fixture captures' caller, +14155550101, on a new contact of Acme
/// (account 1, which has one open and one closed deal) and on a lead.
async fn add_the_callers(db: &pbxbridge::db::Db) {
    let when = "'2026-11-02 09:00:00'";
    exec(
        db,
        &format!("INSERT INTO contacts VALUES (4, 'Frank', 'Caller', 1, '(415) 555-0101', NULL, NULL, {when})"),
    )
    .await;
    exec(
        db,
        &format!("INSERT INTO leads VALUES (3, 'Gina Lead', NULL, '+1 415 555 0101', {when})"),
    )
    .await;
}

fn write_config(dir: &Path, url: &str) -> std::path::PathBuf {
    let text = format!(
        "[pbx]\ndefault_country = \"US\"\nextension_pattern = \"^[0-9]{{3,5}}$\"\n\n\
         [database]\nurl = \"{url}\"\n\n[daemon]\nstate_dir = \"{}\"\n{}",
        dir.join("state").display(),
        db_support::crm::CONFIG
    );
    let path = dir.join("pbxbridge.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

fn replay(config: &Path, rec: &Path, files: &[String]) {
    let out = Command::new(env!("CARGO_BIN_EXE_pbxbridge"))
        .arg("replay")
        .arg("--config")
        .arg(config)
        .arg("--recordings")
        .arg(rec)
        .arg("--json")
        .args(files)
        .output()
        .expect("run pbxbridge");
    assert!(
        out.status.success(),
        "replay failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn a_replayed_call_is_linked_to_its_contact_lead_account_and_open_deal() {
    for backend in ALL {
        let t = TestDb::new(backend).await;
        let db = t.connect().await;
        db_support::crm::install(&db).await;
        add_the_callers(&db).await;
        let dir = tempfile::tempdir().expect("temp dir");
        let config = write_config(dir.path(), &t.url);
        let files = [fixture("answered_caller_bye"), fixture("busy_486")];
        replay(&config, &dir.path().join("rec"), &files);

        let calls = strings(&db, "SELECT call_id FROM {calls} ORDER BY started_at").await;
        assert_eq!(calls.len(), 2, "{backend:?}: {calls:?}");
        for call in &calls {
            let links = strings(
                &db,
                &format!(
                    "SELECT CONCAT(record_type, ':', record_id, ':', COALESCE(field, '-'), ':', source) \
                     FROM {{call_links}} l JOIN {{calls}} c ON c.id = l.call_row \
                     WHERE c.call_id = '{call}' AND l.removed_at IS NULL ORDER BY 1"
                ),
            )
            .await;
            let has = |prefix: &str| links.iter().any(|l| l.starts_with(prefix));
            assert!(
                has("contact:4:phone_work:auto"),
                "{backend:?} {call}: {links:?}"
            );
            assert!(has("lead:3:mobile:auto"), "{backend:?} {call}: {links:?}");
            assert!(
                has("account:1:"),
                "{backend:?}: the contact's account: {links:?}"
            );
            assert!(
                has("deal:1:"),
                "{backend:?}: the account's open deal: {links:?}"
            );
            assert!(
                !has("deal:2:"),
                "{backend:?}: not the closed deal: {links:?}"
            );
            assert!(!has("contact:1:"), "{backend:?}: nobody else: {links:?}");
            let agent = strings(
                &db,
                &format!(
                    "SELECT COALESCE(agent_name, '-') FROM {{calls}} WHERE call_id = '{call}'"
                ),
            )
            .await;
            assert_eq!(
                agent,
                ["Agent Ann"],
                "{backend:?}: extension 2001 is user 1"
            );
        }

        // Replaying the same capture again adds nothing.
        let links_before = count(&db, "SELECT count(*) FROM {call_links}").await;
        replay(&config, &dir.path().join("rec"), &files);
        assert_eq!(
            count(&db, "SELECT count(*) FROM {calls}").await,
            2,
            "{backend:?}"
        );
        assert_eq!(
            count(&db, "SELECT count(*) FROM {call_links}").await,
            links_before,
            "{backend:?}"
        );
        db.close().await;
    }
}

/// A customer entered in the CRM after their calls: `match-past-calls` reads
/// the new record straight from the CRM (no index refresh needed), links its
/// earlier calls as backfill, and a second run adds nothing.
#[tokio::test]
async fn match_past_calls_links_a_new_record_to_earlier_calls() {
    let t = TestDb::new(pbxbridge::db::Backend::Postgres).await;
    let db = t.connect().await;
    db_support::crm::install(&db).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(dir.path(), &t.url);
    replay(
        &config,
        &dir.path().join("rec"),
        &[fixture("answered_caller_bye")],
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM {call_links} WHERE record_type = 'contact'"
        )
        .await,
        0,
        "nobody had the number when the call ended"
    );
    add_the_callers(&db).await;
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_pbxbridge"))
            .args(["match-past-calls", "--config"])
            .arg(&config)
            .args(["contact", "4"])
            .output()
            .expect("run pbxbridge")
    };
    let first = run();
    let text = String::from_utf8_lossy(&first.stdout);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(
        text.contains("+14155550101") && text.contains("1 link added"),
        "{text}"
    );
    let links = strings(
        &db,
        "SELECT CONCAT(record_type, ':', record_id, ':', source) FROM {call_links}",
    )
    .await;
    assert!(
        links.contains(&"contact:4:backfill".to_string()),
        "{links:?}"
    );
    let second = run();
    let text = String::from_utf8_lossy(&second.stdout);
    assert!(text.contains("0 links added"), "{text}");
}
