//! The API's writes on SQLite, PostgreSQL and MariaDB, through a real HTTP
//! client: notes (with the CRM status write), links and match-past-calls,
//! creating calls (matching, Idempotency-Key, concurrent retries) and
//! deleting them (rows and the recording file), permissions and hostile
//! input. The CRM is the fixture of `db_support::crm`, its phone index
//! built by `index::build_all`.

use pbxbridge::call::Direction;
use pbxbridge::config::{CallScope, RecordingAccess, RoleConfig, WriteKind};
use pbxbridge::db::Backend;
use pbxbridge::matching::index;
use pbxbridge::matching::linker::Linker;
use pbxbridge::report::{RecordingReport, RecordingStatus};
use reqwest::RequestBuilder;
use serde_json::{json, Value};

use crate::api_support::TestApi;
use crate::db_support::{answered_call, count, crm, exec, strings, ALL};

/// A server over the CRM fixture: deals take a stage and cases a status
/// from notes; role `mobile` sees its own calls and creates and deletes them.
async fn start(backend: Backend) -> TestApi {
    start_with(backend, true).await
}

async fn start_with(backend: Backend, statuses: bool) -> TestApi {
    let api = TestApi::start_with(backend, |cfg| {
        cfg.crm = crm::config("sqlite://unused.db").crm;
        for r in &mut cfg.crm.records {
            let (col, values): (&str, &[&str]) = match r.kind.as_str() {
                "deal" => ("stage", &["open", "won", "lost"]),
                "case" => ("status", &["open", "closed"]),
                _ => continue,
            };
            if statuses {
                r.status_column = Some(col.into());
                r.status_values = values.iter().map(|v| v.to_string()).collect();
            }
        }
        if let Some(api) = cfg.api.as_mut() {
            api.roles.push(RoleConfig {
                name: "mobile".into(),
                calls: CallScope::Own,
                recordings: RecordingAccess::None,
                writes: vec![WriteKind::Calls, WriteKind::Notes],
                ops: false,
                admin: false,
            });
        }
    })
    .await;
    crm::install(&api.db).await;
    index::build_all(&api.db, &api.cfg)
        .await
        .unwrap_or_else(|e| panic!("{backend:?}: index: {e}"));
    api
}

/// Sends a request: (status, JSON body or the text, headers).
async fn send(req: RequestBuilder) -> (u16, Value, reqwest::header::HeaderMap) {
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.expect("body");
    let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, json, headers)
}

async fn post(api: &TestApi, path: &str, token: &str, body: Value) -> (u16, Value) {
    let (s, b, _) = send(api.http.post(api.url(path)).bearer_auth(token).json(&body)).await;
    (s, b)
}

async fn patch(api: &TestApi, path: &str, token: &str, body: Value) -> (u16, Value) {
    let (s, b, _) = send(api.http.patch(api.url(path)).bearer_auth(token).json(&body)).await;
    (s, b)
}

async fn delete(api: &TestApi, path: &str, token: &str) -> (u16, Value) {
    let (s, b, _) = send(api.http.delete(api.url(path)).bearer_auth(token)).await;
    (s, b)
}

/// A captured call written as the daemon writes it (matched by the linker).
async fn captured(api: &TestApi, call_id: &str, other: &str, agent: &str, secs: i64) -> i64 {
    let report = answered_call(call_id, Direction::Incoming, other, Some(agent), secs);
    Linker::new(&api.cfg.crm)
        .write(&api.db, &api.cfg.pbx.sensor, &[report])
        .await
        .expect("write call");
    row_of(api, call_id).await
}

async fn row_of(api: &TestApi, call_id: &str) -> i64 {
    count(
        &api.db,
        &format!("SELECT id FROM {{calls}} WHERE call_id = '{call_id}'"),
    )
    .await
}

/// Clears the call's updated_at, so a test sees whether a write sets it.
async fn clear_updated(api: &TestApi, row: i64) {
    exec(
        &api.db,
        &api.db.sql(&format!(
            "UPDATE {{calls}} SET updated_at = NULL WHERE id = {row}"
        )),
    )
    .await;
}

async fn updated(api: &TestApi, row: i64) -> bool {
    count(
        &api.db,
        &format!("SELECT count(*) FROM {{calls}} WHERE id = {row} AND updated_at IS NOT NULL"),
    )
    .await
        == 1
}

async fn note_count(api: &TestApi, row: i64) -> i64 {
    count(
        &api.db,
        &format!("SELECT note_count FROM {{calls}} WHERE id = {row}"),
    )
    .await
}

async fn crm_text(api: &TestApi, sql: &str) -> String {
    strings(&api.db, sql).await.join(",")
}

#[tokio::test]
async fn notes_are_written_counted_and_set_the_crm_status() {
    for backend in ALL {
        let api = start(backend).await;
        let b = format!("{backend:?}");
        let int = api.key("integration", None).await;
        let ops = api.key("ops", None).await;
        let ann = api.key("agent", Some("1")).await;
        let ben = api.key("agent", Some("2")).await;
        // Alice (contact 1) calls agent Ann (2001, user 1): linked to the
        // contact, account 1, its open deal 1, the open case 1, and Ann.
        let row = captured(&api, "alice@pbx", "+14155551212", "2001", 1_800_000_000).await;
        let notes = format!("/v1/calls/{row}/notes");

        clear_updated(&api, row).await;
        let (s, n) = post(
            &api,
            &notes,
            &int,
            json!({"body": "Wants a quote.\nCall back."}),
        )
        .await;
        assert_eq!(s, 201, "{b}: {n}");
        assert_eq!(n["author"], "test-integration", "{b}");
        assert_eq!(n["status"], Value::Null, "{b}");
        assert_eq!(n["status_set"], json!([]), "{b}");
        let first = n["id"].as_i64().unwrap();
        assert_eq!(note_count(&api, row).await, 1, "{b}");
        assert!(
            updated(&api, row).await,
            "{b}: updated_at moves with a note"
        );

        // Status: deals allow "won", cases do not.
        let (s, n) = post(
            &api,
            &notes,
            &int,
            json!({"body": "Signed!", "author": "Ann", "status": "won"}),
        )
        .await;
        assert_eq!(s, 201, "{b}: {n}");
        assert_eq!(n["author"], "Ann", "{b}");
        assert_eq!(n["status_set"], json!([{"type": "deal", "id": "1"}]), "{b}");
        assert_eq!(
            crm_text(&api, "SELECT stage FROM deals ORDER BY id").await,
            "won,closed_won,open",
            "{b}"
        );
        assert_eq!(
            crm_text(&api, "SELECT status FROM cases ORDER BY id").await,
            "open,closed",
            "{b}"
        );
        let (s, n) = post(
            &api,
            &notes,
            &int,
            json!({"body": "Fixed", "status": "closed"}),
        )
        .await;
        assert_eq!(s, 201, "{b}: {n}");
        assert_eq!(
            crm_text(&api, "SELECT status FROM cases ORDER BY id").await,
            "closed,closed",
            "{b}"
        );

        // A value no linked type allows: 400, nothing written.
        let (s, p) = post(&api, &notes, &int, json!({"body": "x", "status": "bogus"})).await;
        assert_eq!((s, p["param"].as_str()), (400, Some("status")), "{b}: {p}");
        let detail = p["detail"].as_str().unwrap();
        assert!(
            detail.contains("open, won, lost (deal)") && detail.contains("open, closed (case)"),
            "{b}: {detail}"
        );
        assert_eq!(
            crm_text(&api, "SELECT stage FROM deals ORDER BY id").await,
            "won,closed_won,open",
            "{b}"
        );
        assert_eq!(note_count(&api, row).await, 3, "{b}");

        // A call linked to no deal or case.
        let lone = captured(&api, "unknown@pbx", "+13125550000", "2002", 1_800_000_100).await;
        let (s, p) = post(
            &api,
            &format!("/v1/calls/{lone}/notes"),
            &int,
            json!({"body": "x", "status": "won"}),
        )
        .await;
        assert_eq!((s, p["param"].as_str()), (400, Some("status")), "{b}: {p}");
        assert!(
            p["detail"]
                .as_str()
                .unwrap()
                .contains("linked to no record"),
            "{b}: {p}"
        );
        assert_eq!(note_count(&api, lone).await, 0, "{b}");

        // List, change, delete.
        let (s, list) = api.get_json(&notes, &ops).await;
        assert_eq!(s, 200, "{b}: {list}");
        assert_eq!(list["data"].as_array().unwrap().len(), 3, "{b}");
        assert_eq!(list["data"][0]["body"], "Wants a quote.\nCall back.", "{b}");
        clear_updated(&api, row).await;
        let (s, n) = patch(
            &api,
            &format!("{notes}/{first}"),
            &int,
            json!({"body": "Quote sent"}),
        )
        .await;
        assert_eq!(s, 200, "{b}: {n}");
        assert_eq!(n["body"], "Quote sent", "{b}");
        assert!(
            updated(&api, row).await,
            "{b}: updated_at moves with an edit"
        );
        let (s, n) = patch(
            &api,
            &format!("{notes}/{first}"),
            &int,
            json!({"status": "lost"}),
        )
        .await;
        assert_eq!(
            (s, n["status"].as_str(), n["body"].as_str()),
            (200, Some("lost"), Some("Quote sent")),
            "{b}: {n}"
        );
        assert_eq!(
            crm_text(&api, "SELECT stage FROM deals WHERE id = 1").await,
            "lost",
            "{b}"
        );
        let (s, p) = patch(&api, &format!("{notes}/{first}"), &int, json!({})).await;
        assert_eq!(s, 400, "{b}: {p}");
        let (s, _) = patch(&api, &format!("{notes}/99999"), &int, json!({"body": "x"})).await;
        assert_eq!(s, 404, "{b}");
        let (s, p) = patch(&api, &format!("{notes}/abc"), &int, json!({"body": "x"})).await;
        assert_eq!((s, p["param"].as_str()), (400, Some("note_id")), "{b}: {p}");

        clear_updated(&api, row).await;
        let (s, _) = delete(&api, &format!("{notes}/{first}"), &int).await;
        assert_eq!(s, 204, "{b}");
        assert_eq!(note_count(&api, row).await, 2, "{b}");
        assert!(updated(&api, row).await, "{b}");
        let (s, _) = delete(&api, &format!("{notes}/{first}"), &int).await;
        assert_eq!(s, 404, "{b}: a second delete");
        // A note of another call is not this call's.
        let (s, n) = post(
            &api,
            &format!("/v1/calls/{lone}/notes"),
            &int,
            json!({"body": "lone"}),
        )
        .await;
        assert_eq!(s, 201, "{b}: {n}");
        let (s, _) = delete(&api, &format!("{notes}/{}", n["id"]), &int).await;
        assert_eq!(s, 404, "{b}");

        // Permissions: ops may read but not write; see-own agents see their
        // own calls only, another agent's call is a 404.
        let (s, p) = post(&api, &notes, &ops, json!({"body": "x"})).await;
        assert_eq!(s, 403, "{b}: {p}");
        let (s, n) = post(&api, &notes, &ann, json!({"body": "mine"})).await;
        assert_eq!(s, 201, "{b}: {n}");
        let (s, _) = post(&api, &notes, &ben, json!({"body": "not mine"})).await;
        assert_eq!(s, 404, "{b}");
        let (s, _) = api.get_json(&notes, &ben).await;
        assert_eq!(s, 404, "{b}");
        let (s, _) = api.get_json("/v1/calls/987654/notes", &int).await;
        assert_eq!(s, 404, "{b}");

        // Hostile bodies name the field.
        for (body, param) in [
            (json!({"body": 5}), "body"),
            (json!({"body": "x", "colour": "red"}), "colour"),
            (json!({"body": ""}), "body"),
            (json!({"body": "x".repeat(10_001)}), "body"),
            (json!({"body": "x", "author": ["a"]}), "author"),
            (json!({"body": "x", "status": 1}), "status"),
            (json!(["body"]), "body"),
        ] {
            let (s, p) = post(&api, &notes, &int, body).await;
            assert_eq!((s, p["param"].as_str()), (400, Some(param)), "{b}: {p}");
        }
        assert_eq!(note_count(&api, row).await, 3, "{b}: nothing written");
        api.stop().await;
    }
}

#[tokio::test]
async fn a_status_needs_a_configured_column() {
    for backend in ALL {
        let api = start_with(backend, false).await;
        let int = api.key("integration", None).await;
        let row = captured(&api, "alice@pbx", "+14155551212", "2001", 1_800_000_000).await;
        let (s, p) = post(
            &api,
            &format!("/v1/calls/{row}/notes"),
            &int,
            json!({"body": "x", "status": "won"}),
        )
        .await;
        assert_eq!(
            (s, p["param"].as_str()),
            (400, Some("status")),
            "{backend:?}: {p}"
        );
        assert!(
            p["detail"].as_str().unwrap().contains("status_column"),
            "{p}"
        );
        assert_eq!(
            crm_text(&api, "SELECT stage FROM deals ORDER BY id").await,
            "open,closed_won,open"
        );
        assert_eq!(note_count(&api, row).await, 0);
        api.stop().await;
    }
}

#[tokio::test]
async fn links_are_added_restored_and_removed() {
    for backend in ALL {
        let api = start(backend).await;
        let b = format!("{backend:?}");
        let int = api.key("integration", None).await;
        let agent = api.key("agent", Some("1")).await;
        let row = captured(&api, "alice@pbx", "+14155551212", "2001", 1_800_000_000).await;
        let links = format!("/v1/calls/{row}/links");
        let lead2 = |db_only: bool| {
            let removed = if db_only {
                ""
            } else {
                " AND removed_at IS NULL"
            };
            format!("SELECT count(*) FROM {{call_links}} WHERE call_row = {row} AND record_type = 'lead' AND record_id = '2'{removed}")
        };

        clear_updated(&api, row).await;
        let (s, r) = post(&api, &links, &int, json!({"type": "lead", "id": "2"})).await;
        assert_eq!(s, 201, "{b}: {r}");
        assert_eq!(r["change"], "added", "{b}");
        assert_eq!(r["link"]["source"], "manual", "{b}");
        assert_eq!(r["link"]["display_name"], "Eve Lead", "{b}");
        assert!(
            updated(&api, row).await,
            "{b}: updated_at moves with a link"
        );
        let (s, r) = post(&api, &links, &int, json!({"type": "lead", "id": "2"})).await;
        assert_eq!(
            (s, r["change"].as_str()),
            (200, Some("already_linked")),
            "{b}: {r}"
        );

        clear_updated(&api, row).await;
        let (s, _) = delete(&api, &format!("{links}/lead/2"), &int).await;
        assert_eq!(s, 204, "{b}");
        assert!(
            updated(&api, row).await,
            "{b}: updated_at moves with an unlink"
        );
        assert_eq!(count(&api.db, &lead2(false)).await, 0, "{b}");
        assert_eq!(
            count(&api.db, &lead2(true)).await,
            1,
            "{b}: kept as a tombstone"
        );
        let (s, _) = delete(&api, &format!("{links}/lead/2"), &int).await;
        assert_eq!(s, 404, "{b}: a second unlink");
        let (s, r) = post(&api, &links, &int, json!({"type": "lead", "id": "2"})).await;
        assert_eq!(
            (s, r["change"].as_str()),
            (201, Some("restored")),
            "{b}: {r}"
        );
        assert_eq!(r["link"]["removed_at"], Value::Null, "{b}");

        // An automatic link can be removed too.
        let (s, _) = delete(&api, &format!("{links}/contact/1"), &int).await;
        assert_eq!(s, 204, "{b}");

        // Not linked, hostile ids: 404, and no row written.
        let before = count(&api.db, "SELECT count(*) FROM {call_links}").await;
        for path in [
            "lead/999",
            "contact/..%2F..%2Fetc%2Fpasswd",
            "contact/1'%20OR%20'1'%3D'1",
        ] {
            let (s, p) = delete(&api, &format!("{links}/{path}"), &int).await;
            assert_eq!(s, 404, "{b}: {path}: {p}");
        }
        let (s, p) = delete(&api, &format!("{links}/planet/1"), &int).await;
        assert_eq!((s, p["param"].as_str()), (400, Some("type")), "{b}: {p}");
        assert_eq!(
            count(&api.db, "SELECT count(*) FROM {call_links}").await,
            before,
            "{b}"
        );

        // SQL metacharacters in a record id are only text.
        let odd = "1'; DROP TABLE calls; --";
        let (s, r) = post(&api, &links, &int, json!({"type": "contact", "id": odd})).await;
        assert_eq!((s, r["link"]["id"].as_str()), (201, Some(odd)), "{b}: {r}");
        assert_eq!(
            count(&api.db, "SELECT count(*) FROM {calls}").await,
            1,
            "{b}"
        );

        for (body, param) in [
            (json!({"type": "planet", "id": "1"}), "type"),
            (json!({"type": "lead", "id": "x".repeat(192)}), "id"),
            (json!({"type": "lead"}), "id"),
            (json!({"type": "lead", "id": 2}), "id"),
            (json!({"type": "lead", "id": "2", "via": "x"}), "via"),
        ] {
            let (s, p) = post(&api, &links, &int, body).await;
            assert_eq!((s, p["param"].as_str()), (400, Some(param)), "{b}: {p}");
        }
        let (s, _) = post(&api, &links, &agent, json!({"type": "lead", "id": "2"})).await;
        assert_eq!(s, 403, "{b}: agents may not link");
        let (s, _) = post(
            &api,
            "/v1/calls/424242/links",
            &int,
            json!({"type": "lead", "id": "2"}),
        )
        .await;
        assert_eq!(s, 404, "{b}");
        api.stop().await;
    }
}

#[tokio::test]
async fn match_past_calls_links_a_records_calls() {
    for backend in ALL {
        let api = start(backend).await;
        let b = format!("{backend:?}");
        let int = api.key("integration", None).await;
        let agent = api.key("agent", Some("1")).await;
        // Written before lead 2 was known: no links.
        let calls: Vec<_> = (0..3)
            .map(|i| {
                answered_call(
                    &format!("eve-{i}@pbx"),
                    Direction::Incoming,
                    "+12125550199",
                    Some("2002"),
                    1_800_000_000 + i,
                )
            })
            .collect();
        api.db
            .upsert_calls(&api.cfg.pbx.sensor, &calls)
            .await
            .unwrap();
        let rows = [
            row_of(&api, "eve-0@pbx").await,
            row_of(&api, "eve-1@pbx").await,
        ];
        for r in rows {
            clear_updated(&api, r).await;
        }
        let path = "/v1/records/lead/2/match-past-calls";
        let (s, r) = post(&api, path, &int, json!({})).await;
        assert_eq!(s, 200, "{b}: {r}");
        assert_eq!(
            r,
            json!({"numbers": ["+12125550199"], "calls_matched": 3, "links_added": 3}),
            "{b}"
        );
        for r in rows {
            assert!(updated(&api, r).await, "{b}: a backfilled call is updated");
        }
        let (s, r) = post(&api, path, &int, json!({})).await;
        assert_eq!((s, r["links_added"].as_u64()), (200, Some(0)), "{b}: {r}");

        let (s, p) = post(
            &api,
            "/v1/records/planet/2/match-past-calls",
            &int,
            json!({}),
        )
        .await;
        assert_eq!((s, p["param"].as_str()), (400, Some("type")), "{b}: {p}");
        let (s, r) = post(
            &api,
            "/v1/records/lead/2'%20OR%20'1'%3D'1/match-past-calls",
            &int,
            json!({}),
        )
        .await;
        assert_eq!((s, r["calls_matched"].as_i64()), (200, Some(0)), "{b}: {r}");
        let (s, _) = post(&api, path, &agent, json!({})).await;
        assert_eq!(s, 403, "{b}");
        api.stop().await;
    }
}

fn new_call() -> Value {
    json!({
        "direction": "incoming",
        "from": "(415) 555-1212",
        "to": "2001",
        "started_at": "2026-11-20T09:30:00Z",
        "duration": 95.5,
        "outcome": "answered"
    })
}

async fn create(
    api: &TestApi,
    token: &str,
    key: Option<&str>,
    body: &Value,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut req = api
        .http
        .post(api.url("/v1/calls"))
        .bearer_auth(token)
        .json(body);
    if let Some(k) = key {
        req = req.header("Idempotency-Key", k);
    }
    send(req).await
}

async fn api_calls(api: &TestApi) -> i64 {
    count(&api.db, "SELECT count(*) FROM {calls} WHERE origin = 'api'").await
}

#[tokio::test]
async fn created_calls_are_matched_like_captured_ones() {
    for backend in ALL {
        let api = start(backend).await;
        let b = format!("{backend:?}");
        let int = api.key("integration", None).await;
        let mut body = new_call();
        body["note"] = json!("Logged from the mobile app");
        let (s, c, h) = create(&api, &int, None, &body).await;
        assert_eq!(s, 201, "{b}: {c}");
        let id = c["id"].as_i64().unwrap();
        assert_eq!(
            h["location"].to_str().unwrap(),
            format!("/v1/calls/{id}"),
            "{b}"
        );
        assert_eq!(c["origin"], "api", "{b}");
        assert_eq!(c["sensor"], api.cfg.pbx.sensor.as_str(), "{b}");
        assert!(c["call_id"].as_str().unwrap().starts_with("api-"), "{b}");
        // The answer is the call as GET /v1/calls/{id} shows it.
        assert_eq!(
            (c["from"]["number"].as_str(), c["from"]["raw"].as_str()),
            (Some("+14155551212"), Some("(415) 555-1212")),
            "{b}"
        );
        assert_eq!(
            (
                c["agent"]["extension"].as_str(),
                c["agent"]["id"].as_str(),
                c["agent"]["name"].as_str()
            ),
            (Some("2001"), Some("1"), Some("Agent Ann")),
            "{b}: {c}"
        );
        assert_eq!(c["duration"], 95.5, "{b}");
        assert_eq!(c["ended_at"], "2026-11-20T09:31:35.500000Z", "{b}");
        assert_eq!(c["has_notes"], true, "{b}");
        assert_eq!(c["notes"].as_array().map(Vec::len), Some(1), "{b}");
        let mut links: Vec<String> = c["links"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                format!(
                    "{}:{}:{}",
                    l["type"].as_str().unwrap(),
                    l["id"].as_str().unwrap(),
                    l["source"].as_str().unwrap()
                )
            })
            .collect();
        links.sort();
        assert_eq!(
            links,
            [
                "account:1:auto",
                "case:1:auto",
                "contact:1:auto",
                "deal:1:auto",
                "user:1:auto"
            ],
            "{b}"
        );
        let (s, n) = api.get_json(&format!("/v1/calls/{id}/notes"), &int).await;
        assert_eq!(
            (s, n["data"][0]["body"].as_str()),
            (200, Some("Logged from the mobile app")),
            "{b}: {n}"
        );

        // An agent named by id; a number that is none; a missed call.
        let mut other = new_call();
        other["direction"] = json!("outgoing");
        other["from"] = json!("+1 415 555 9999");
        other["to"] = json!("anonymous");
        other["agent"] = json!("2");
        other["outcome"] = json!("no_answer");
        other["duration"] = Value::Null;
        other["ended_at"] = json!("2026-11-20T09:30:20Z");
        let (s, c, _) = create(&api, &int, None, &other).await;
        assert_eq!(s, 201, "{b}: {c}");
        assert_eq!(
            (c["to"]["number"].clone(), c["to"]["raw"].as_str()),
            (Value::Null, Some("anonymous")),
            "{b}"
        );
        assert_eq!(
            (
                c["agent"]["extension"].as_str(),
                c["agent"]["id"].as_str(),
                c["agent"]["name"].as_str()
            ),
            (Some("2002"), Some("2"), Some("Agent Ben")),
            "{b}: {c}"
        );
        assert_eq!(
            (c["duration"].as_f64(), c["answered_at"].clone()),
            (Some(0.0), Value::Null),
            "{b}"
        );
        assert_eq!(c["end_reason"], "ring_timeout", "{b}");

        // Hostile and wrong bodies name the field and write nothing.
        let before = api_calls(&api).await;
        let with = |k: &str, v: Value| {
            let mut x = new_call();
            x[k] = v;
            x
        };
        for (body, param) in [
            (with("direction", json!("sideways")), "direction"),
            (with("outcome", json!("missed")), "outcome"),
            (with("duration", json!("95")), "duration"),
            (with("duration", json!(-5)), "duration"),
            (with("duration", json!(8 * 86_400)), "duration"),
            (with("ended_at", json!("2026-11-20T09:31:00Z")), "duration"),
            (with("started_at", json!("20/11/2026")), "started_at"),
            (with("from", json!("")), "from"),
            (with("from", json!("1".repeat(65))), "from"),
            (with("to", json!(2001)), "to"),
            (with("agent", json!("nobody")), "agent"),
            (with("colour", json!("red")), "colour"),
            (with("note", json!("x".repeat(10_001))), "note"),
        ] {
            let (s, p, _) = create(&api, &int, None, &body).await;
            assert_eq!(
                (s, p["param"].as_str()),
                (400, Some(param)),
                "{b}: {body}: {p}"
            );
        }
        let mut early = new_call();
        early["duration"] = Value::Null;
        early["ended_at"] = json!("2026-11-20T09:00:00Z");
        let (s, p, _) = create(&api, &int, None, &early).await;
        assert_eq!(
            (s, p["param"].as_str()),
            (400, Some("ended_at")),
            "{b}: {p}"
        );
        // Over [api] max_body_kib (1 MiB): 413; no JSON type: 415.
        let (s, p, _) = create(
            &api,
            &int,
            None,
            &with("note", json!("x".repeat(1_100_000))),
        )
        .await;
        assert_eq!(s, 413, "{b}: {p}");
        let (s, p, _) = send(
            api.http
                .post(api.url("/v1/calls"))
                .bearer_auth(&int)
                .body(new_call().to_string()),
        )
        .await;
        assert_eq!(s, 415, "{b}: {p}");
        assert_eq!(api_calls(&api).await, before, "{b}: nothing written");

        // Who may create: not agents, not supervisors; a see-own key only
        // its own agent's calls.
        for role in ["agent", "supervisor"] {
            let k = api.key(role, Some("1")).await;
            let (s, _, _) = create(&api, &k, None, &new_call()).await;
            assert_eq!(s, 403, "{b}: {role}");
        }
        let mobile = api.key("mobile", Some("2")).await;
        let (s, p, _) = create(&api, &mobile, None, &new_call()).await;
        assert_eq!(
            (s, p["param"].as_str()),
            (400, Some("agent")),
            "{b}: Ann's call from Ben's key: {p}"
        );
        let mut own = new_call();
        own["to"] = json!("+14155550000");
        let (s, c, _) = create(&api, &mobile, None, &own).await;
        assert_eq!((s, c["agent"]["id"].as_str()), (201, Some("2")), "{b}: {c}");
        api.stop().await;
    }
}

#[tokio::test]
async fn an_idempotency_key_makes_a_retry_answer_the_same_call() {
    for backend in ALL {
        let api = start(backend).await;
        let b = format!("{backend:?}");
        let int = api.key("integration", None).await;
        let other_key = api.key("integration", None).await;
        let (s, first, _) = create(&api, &int, Some("order-17"), &new_call()).await;
        assert_eq!(s, 201, "{b}: {first}");
        // The same call, written differently: same answer, 200.
        let mut same = new_call();
        same["started_at"] = json!("2026-11-20T10:30:00+01:00");
        same["duration"] = json!(95.50);
        let (s, again, h) = create(&api, &int, Some("order-17"), &same).await;
        assert_eq!(s, 200, "{b}: {again}");
        assert_eq!(h["idempotent-replayed"], "true", "{b}");
        assert_eq!(again["id"], first["id"], "{b}");
        assert_eq!(again["call_id"], first["call_id"], "{b}");
        // Another body under the key: 409.
        let mut changed = new_call();
        changed["outcome"] = json!("busy");
        let (s, p, _) = create(&api, &int, Some("order-17"), &changed).await;
        assert_eq!(s, 409, "{b}: {p}");
        // Keys are per API key.
        let (s, theirs, _) = create(&api, &other_key, Some("order-17"), &new_call()).await;
        assert_eq!(s, 201, "{b}: {theirs}");
        assert_ne!(theirs["id"], first["id"], "{b}");
        assert_eq!(api_calls(&api).await, 2, "{b}");

        // Concurrent retries: one row.
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let (http, url, token) = (api.http.clone(), api.url("/v1/calls"), int.clone());
            tasks.spawn(async move {
                let resp = http
                    .post(url)
                    .bearer_auth(token)
                    .header("Idempotency-Key", "burst")
                    .json(&new_call())
                    .send()
                    .await
                    .expect("request");
                let status = resp.status().as_u16();
                let body: Value = resp.json().await.expect("json");
                (status, body)
            });
        }
        let mut ids = Vec::new();
        while let Some(done) = tasks.join_next().await {
            let (status, body) = done.unwrap();
            assert!(status == 200 || status == 201, "{b}: {status} {body}");
            ids.push(body["id"].as_i64().unwrap());
        }
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 1, "{b}: {ids:?}");
        assert_eq!(api_calls(&api).await, 3, "{b}");
        assert_eq!(
            count(
                &api.db,
                "SELECT count(*) FROM {idempotency_keys} WHERE idem_key = 'burst'"
            )
            .await,
            1,
            "{b}"
        );

        for bad in ["", &"k".repeat(192)] {
            let (s, p, _) = create(&api, &int, Some(bad), &new_call()).await;
            assert_eq!(
                (s, p["param"].as_str()),
                (400, Some("Idempotency-Key")),
                "{b}: {p}"
            );
        }
        api.stop().await;
    }
}

/// A captured call with a WAV file under recording.dir (or at `path`).
async fn recorded(api: &TestApi, call_id: &str, agent: &str, path: &std::path::Path) -> i64 {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).unwrap();
    }
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for i in 0..800 {
        w.write_sample((i % 100) as i16).unwrap();
    }
    w.finalize().unwrap();
    let mut report = answered_call(
        call_id,
        Direction::Incoming,
        "+14155551212",
        Some(agent),
        1_800_000_000,
    );
    report.recording = RecordingReport::without_file(RecordingStatus::Stored, None);
    report.recording.path = Some(path.display().to_string());
    Linker::new(&api.cfg.crm)
        .write(&api.db, &api.cfg.pbx.sensor, &[report])
        .await
        .unwrap();
    row_of(api, call_id).await
}

#[tokio::test]
async fn a_deleted_call_leaves_nothing_behind() {
    for backend in ALL {
        let api = start(backend).await;
        let b = format!("{backend:?}");
        let int = api.key("integration", None).await;
        let wav = api.cfg.recording.dir.join("2026/11/20/rec@pbx.wav");
        let row = recorded(&api, "rec@pbx", "2001", &wav).await;
        let (s, _) = post(
            &api,
            &format!("/v1/calls/{row}/notes"),
            &int,
            json!({"body": "x"}),
        )
        .await;
        assert_eq!(s, 201, "{b}");
        let (s, _) = post(
            &api,
            &format!("/v1/calls/{row}/links"),
            &int,
            json!({"type": "lead", "id": "2"}),
        )
        .await;
        assert_eq!(s, 201, "{b}");
        let left = |table: &str| format!("SELECT count(*) FROM {{{table}}} WHERE call_row = {row}");
        assert!(count(&api.db, &left("call_links")).await > 1, "{b}");

        let (s, p) = delete(&api, &format!("/v1/calls/{row}"), &int).await;
        assert_eq!(s, 204, "{b}: {p}");
        assert!(!wav.exists(), "{b}: the recording is deleted");
        assert_eq!(
            count(
                &api.db,
                &format!("SELECT count(*) FROM {{calls}} WHERE id = {row}")
            )
            .await,
            0,
            "{b}"
        );
        for t in ["call_links", "call_notes", "idempotency_keys"] {
            assert_eq!(count(&api.db, &left(t)).await, 0, "{b}: {t}");
        }
        let (s, _) = delete(&api, &format!("/v1/calls/{row}"), &int).await;
        assert_eq!(s, 404, "{b}: a second delete");
        let (s, _) = api.get_json(&format!("/v1/calls/{row}/notes"), &int).await;
        assert_eq!(s, 404, "{b}");

        // A created call by its sensor/call_id; its Idempotency-Key goes
        // with it, so the key makes a new call afterwards.
        let (s, c, _) = create(&api, &int, Some("k1"), &new_call()).await;
        assert_eq!(s, 201, "{b}: {c}");
        let path = format!(
            "/v1/calls/{}%2F{}",
            c["sensor"].as_str().unwrap(),
            c["call_id"].as_str().unwrap()
        );
        let (s, p) = delete(&api, &path, &int).await;
        assert_eq!(s, 204, "{b}: {p}");
        assert_eq!(
            count(&api.db, "SELECT count(*) FROM {idempotency_keys}").await,
            0,
            "{b}"
        );
        let (s, again, _) = create(&api, &int, Some("k1"), &new_call()).await;
        assert_eq!(s, 201, "{b}: {again}");
        assert_ne!(again["id"], c["id"], "{b}");

        // A recording path outside recording.dir is not followed: 409, the
        // file and the call stay.
        let outside = api.dir.path().join("outside.wav");
        let odd = recorded(&api, "odd@pbx", "2001", &outside).await;
        let (s, p) = delete(&api, &format!("/v1/calls/{odd}"), &int).await;
        assert_eq!(s, 409, "{b}: {p}");
        assert!(outside.exists(), "{b}");
        assert_eq!(row_of(&api, "odd@pbx").await, odd, "{b}");

        // Permissions: integration may, supervisor may not; a see-own key
        // does not see another agent's call (404) and deletes its own.
        let sup = api.key("supervisor", None).await;
        let (s, _) = delete(&api, &format!("/v1/calls/{odd}"), &sup).await;
        assert_eq!(s, 403, "{b}");
        let ben = api.key("mobile", Some("2")).await;
        let anns = captured(&api, "ann@pbx", "+14155552222", "2001", 1_800_000_500).await;
        let (s, _) = delete(&api, &format!("/v1/calls/{anns}"), &ben).await;
        assert_eq!(s, 404, "{b}");
        let bens = captured(&api, "ben@pbx", "+14155552222", "2002", 1_800_000_600).await;
        let (s, _) = delete(&api, &format!("/v1/calls/{bens}"), &ben).await;
        assert_eq!(s, 204, "{b}");

        // Ids with SQL in them are refused or not found; nothing is deleted.
        let calls = count(&api.db, "SELECT count(*) FROM {calls}").await;
        for id in [
            "1%20OR%201%3D1",
            "1'%3B%20DELETE%20FROM%20calls%3B--",
            "x%2F'%20OR%20''%3D'",
            "..%2F..%2Fetc",
        ] {
            let (s, p) = delete(&api, &format!("/v1/calls/{id}"), &int).await;
            assert!(s == 400 || s == 404, "{b}: {id}: {s} {p}");
        }
        assert_eq!(
            count(&api.db, "SELECT count(*) FROM {calls}").await,
            calls,
            "{b}"
        );
        api.stop().await;
    }
}

#[tokio::test]
async fn the_write_routes_are_in_the_openapi_document() {
    let api = start(Backend::Sqlite).await;
    let key = api.key("ops", None).await;
    let (s, doc) = api.get_json("/v1/openapi.json", &key).await;
    assert_eq!(s, 200);
    for (path, method) in [
        ("/v1/calls", "post"),
        ("/v1/calls/{id}", "delete"),
        ("/v1/calls/{id}/notes", "get"),
        ("/v1/calls/{id}/notes", "post"),
        ("/v1/calls/{id}/notes/{note_id}", "patch"),
        ("/v1/calls/{id}/notes/{note_id}", "delete"),
        ("/v1/calls/{id}/links", "post"),
        ("/v1/calls/{id}/links/{type}/{record_id}", "delete"),
        ("/v1/records/{type}/{id}/match-past-calls", "post"),
    ] {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} missing"
        );
    }
    api.stop().await;
}
