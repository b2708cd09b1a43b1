//! The role matrix: every operation in the OpenAPI document (which is every
//! route the router serves) is checked for no key, a revoked key and an
//! expired key (401), a key whose role lacks the permission it needs (403),
//! and a see-own key asking for another agent's call (404). A route missing
//! from the table below fails the test, so a new route cannot skip its checks.

use pbxbridge::config::{CallScope, RecordingAccess, RoleConfig, WriteKind};
use pbxbridge::db::{Backend, CallWrite};
use pbxbridge::time::Timestamp;
use reqwest::Method;
use serde_json::{json, Value};

use crate::api_support::TestApi;
use crate::db_support::answered_call;

/// What a route needs: a permission (None: any valid key), whether it names
/// a call in its path, and a body that passes validation.
struct Spec {
    method: &'static str,
    path: &'static str,
    need: Option<&'static str>,
    call: bool,
    body: Body,
}

#[derive(Clone, Copy)]
enum Body {
    Empty,
    Json(fn() -> Value),
    Upload,
}

const fn spec(
    method: &'static str,
    path: &'static str,
    need: Option<&'static str>,
    call: bool,
    body: Body,
) -> Spec {
    Spec {
        method,
        path,
        need,
        call,
        body,
    }
}

fn new_call() -> Value {
    json!({"direction": "outgoing", "from": "2001", "to": "+14155550100",
           "started_at": "2026-11-01T10:00:00Z", "duration": 30, "outcome": "answered"})
}

fn matrix() -> Vec<Spec> {
    use Body::*;
    vec![
        spec("get", "/v1/openapi.json", None, false, Empty),
        spec("get", "/v1/calls", None, false, Empty),
        spec("get", "/v1/calls.csv", None, false, Empty),
        spec(
            "post",
            "/v1/calls",
            Some("writes: calls"),
            false,
            Json(new_call),
        ),
        spec("get", "/v1/calls/{id}", None, true, Empty),
        spec("get", "/v1/calls/live", None, false, Empty),
        spec("get", "/v1/events", None, false, Empty),
        spec("post", "/v1/events/link", None, false, Empty),
        spec(
            "delete",
            "/v1/calls/{id}",
            Some("writes: calls"),
            true,
            Empty,
        ),
        spec("get", "/v1/calls/{id}/notes", None, true, Empty),
        spec(
            "post",
            "/v1/calls/{id}/notes",
            Some("writes: notes"),
            true,
            Json(|| json!({"body": "hello"})),
        ),
        spec(
            "patch",
            "/v1/calls/{id}/notes/{note_id}",
            Some("writes: notes"),
            true,
            Json(|| json!({"body": "edited"})),
        ),
        spec(
            "delete",
            "/v1/calls/{id}/notes/{note_id}",
            Some("writes: notes"),
            true,
            Empty,
        ),
        spec(
            "post",
            "/v1/calls/{id}/links",
            Some("writes: links"),
            true,
            Json(|| json!({"type": "contact", "id": "42"})),
        ),
        spec(
            "delete",
            "/v1/calls/{id}/links/{type}/{record_id}",
            Some("writes: links"),
            true,
            Empty,
        ),
        spec(
            "get",
            "/v1/calls/{id}/recording",
            Some("recordings: listen"),
            true,
            Empty,
        ),
        spec(
            "head",
            "/v1/calls/{id}/recording",
            Some("recordings: listen"),
            true,
            Empty,
        ),
        spec(
            "post",
            "/v1/calls/{id}/recording",
            Some("writes: calls"),
            true,
            Upload,
        ),
        spec(
            "post",
            "/v1/calls/{id}/recording/link",
            Some("recordings: listen"),
            true,
            Json(|| json!({})),
        ),
        spec("get", "/v1/records/{type}/{id}/calls", None, false, Empty),
        spec(
            "post",
            "/v1/records/{type}/{id}/match-past-calls",
            Some("writes: links"),
            false,
            Empty,
        ),
        spec("get", "/v1/keys", Some("admin"), false, Empty),
        spec(
            "post",
            "/v1/keys",
            Some("admin"),
            false,
            Json(|| json!({"name": "x", "role": "ops"})),
        ),
        spec("delete", "/v1/keys/{key_id}", Some("admin"), false, Empty),
        spec("get", "/v1/webhooks", Some("admin"), false, Empty),
        spec(
            "post",
            "/v1/webhooks",
            Some("admin"),
            false,
            Json(|| json!({"url": "http://127.0.0.1:9/hook"})),
        ),
        spec(
            "get",
            "/v1/webhooks/{webhook_id}",
            Some("admin"),
            false,
            Empty,
        ),
        spec(
            "patch",
            "/v1/webhooks/{webhook_id}",
            Some("admin"),
            false,
            Json(|| json!({"enabled": false})),
        ),
        spec(
            "delete",
            "/v1/webhooks/{webhook_id}",
            Some("admin"),
            false,
            Empty,
        ),
        spec(
            "get",
            "/v1/webhooks/{webhook_id}/deliveries",
            Some("admin"),
            false,
            Empty,
        ),
        spec(
            "post",
            "/v1/webhooks/{webhook_id}/deliveries/{event_id}/redeliver",
            Some("admin"),
            false,
            Empty,
        ),
        spec(
            "post",
            "/v1/webhooks/{webhook_id}/rotate-secret",
            Some("admin"),
            false,
            Empty,
        ),
    ]
}

/// The path with its parameters filled in.
fn concrete(path: &str, call_row: i64, note_id: i64, key_id: i64) -> String {
    let call = if path.starts_with("/v1/records/") {
        "42".to_owned()
    } else {
        call_row.to_string()
    };
    path.replace("{id}", &call)
        .replace("{note_id}", &note_id.to_string())
        .replace("{type}", "contact")
        .replace("{record_id}", "42")
        .replace("{key_id}", &key_id.to_string())
        .replace("{webhook_id}", "wh_1")
        .replace("{event_id}", "evt_01AAAAAAAAAAAAAAAAAAAAAAAA")
}

async fn send(api: &TestApi, s: &Spec, path: &str, token: Option<&str>) -> (u16, String) {
    let method = Method::from_bytes(s.method.to_uppercase().as_bytes()).unwrap();
    let mut req = api.http.request(method, api.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req = match s.body {
        Body::Empty => req,
        Body::Json(f) => req.json(&f()),
        Body::Upload => {
            let wav = crate::api_support::tiny_wav();
            let part = reqwest::multipart::Part::bytes(wav)
                .file_name("a.wav")
                .mime_str("audio/wav")
                .unwrap();
            req.multipart(reqwest::multipart::Form::new().part("file", part))
        }
    };
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}

fn role(
    name: &str,
    calls: CallScope,
    recordings: RecordingAccess,
    writes: Vec<WriteKind>,
) -> RoleConfig {
    RoleConfig {
        name: name.into(),
        calls,
        recordings,
        writes,
        ops: false,
        admin: false,
    }
}

#[tokio::test]
async fn every_route_checks_keys_permissions_and_visibility() {
    let api = TestApi::start_with(Backend::Sqlite, |cfg| {
        let api = cfg.api.as_mut().unwrap();
        api.roles = vec![
            role("nothing", CallScope::All, RecordingAccess::None, vec![]),
            role(
                "own_all",
                CallScope::Own,
                RecordingAccess::Download,
                vec![WriteKind::Notes, WriteKind::Links, WriteKind::Calls],
            ),
        ];
    })
    .await;

    // Two calls: agent u1's, which the see-own key (agent u2) must not see.
    let mine = answered_call(
        "matrix-1@test",
        pbxbridge::call::Direction::Incoming,
        "+14155550101",
        Some("2001"),
        1_790_000_000,
    );
    let write = CallWrite {
        report: &mine,
        agent: Some(("user".into(), "u1".into(), Some("Una".into()))),
        links: vec![],
    };
    api.db.write_calls("default", &[write]).await.unwrap();
    let call_row = crate::db_support::count(&api.db, "SELECT MAX(id) FROM calls").await;
    crate::db_support::exec(
        &api.db,
        &format!(
            "INSERT INTO call_notes (call_row, author, body, created_at, updated_at) \
             VALUES ({call_row}, 'a', 'n', '2026-11-01T10:00:00.000000Z', '2026-11-01T10:00:00.000000Z')"
        ),
    )
    .await;
    let note_id = crate::db_support::count(&api.db, "SELECT MAX(id) FROM call_notes").await;

    let admin = api.key("admin", None).await;
    let (admin_key, _) = api
        .db
        .api_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| (k.id, k))
        .next()
        .unwrap();
    let nothing = api.key("nothing", None).await;
    let other_agent = api.key("own_all", Some("u2")).await;
    let revoked = api.key("admin", None).await;
    let prefix = api.db.api_keys().await.unwrap()[0].prefix.clone();
    assert!(api.db.revoke_api_key(&prefix).await.unwrap());
    let (_, expired) = api
        .db
        .create_api_key("old", "admin", None, Some(Timestamp::from_secs(1_000_000)))
        .await
        .unwrap();
    let _ = admin;

    // The document's operations and the table must be the same set.
    let (s, doc) = api.get_json("/v1/openapi.json", &nothing).await;
    assert_eq!(s, 200, "{doc}");
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in ["get", "head", "post", "put", "patch", "delete"] {
            if item.get(method).is_some() {
                documented.push((method.to_owned(), path.clone()));
            }
        }
    }
    let table = matrix();
    let mut problems = Vec::new();
    for (m, p) in &documented {
        if !table.iter().any(|s| s.method == m && s.path == p) {
            problems.push(format!("{m} {p} is served but has no role-matrix entry"));
        }
    }
    for s in &table {
        if !documented.iter().any(|(m, p)| m == s.method && p == s.path) {
            problems.push(format!(
                "{} {} is in the matrix but not in the OpenAPI document",
                s.method, s.path
            ));
        }
    }

    for s in &table {
        let path = concrete(s.path, call_row, note_id, admin_key);
        let what = format!("{} {path}", s.method);
        for (label, token) in [
            ("no key", None),
            ("revoked key", Some(revoked.as_str())),
            ("expired key", Some(expired.0.as_str())),
        ] {
            let (status, body) = send(&api, s, &path, token).await;
            if status != 401 {
                problems.push(format!(
                    "{what} with {label}: {status}, expected 401 ({body})"
                ));
            }
        }
        if let Some(need) = s.need {
            let (status, body) = send(&api, s, &path, Some(&nothing)).await;
            if status != 403 || (s.method != "head" && !body.contains(need)) {
                problems.push(format!(
                    "{what} without \"{need}\": {status}, expected 403 naming it ({body})"
                ));
            }
        }
        if s.call {
            let (status, body) = send(&api, s, &path, Some(&other_agent)).await;
            if status != 404 {
                problems.push(format!(
                    "{what} by another agent's see-own key: {status}, expected 404 ({body})"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "role matrix:\n{}", problems.join("\n"));
    api.stop().await;
}
