//! Keys on the HTTP API: no key, a wrong key, a revoked or expired key are
//! 401; admin routes need admin; `pbxbridge keys` makes keys that work.

use pbxbridge::db::Backend;

use crate::api_support::TestApi;

#[tokio::test]
async fn keys_gate_every_request() {
    let api = TestApi::start(Backend::Sqlite).await;
    let admin = api.key("admin", None).await;
    let agent = api.key("agent", Some("u1")).await;

    // No key, a malformed one, a well-formed unknown one.
    let resp = api.http.get(api.url("/v1/keys")).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "application/problem+json"
    );
    assert!(resp.headers().contains_key("www-authenticate"));
    for bad in [
        "nope",
        "pbxb_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        let (s, body) = api.get_json("/v1/keys", bad).await;
        assert_eq!(s, 401, "{body}");
    }

    // The admin lists keys; the agent may not.
    let (s, body) = api.get_json("/v1/keys", &admin).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["data"].as_array().unwrap().len(), 2);
    assert!(
        !body.to_string().contains(&admin),
        "a token leaked into the list"
    );
    let (s, body) = api.get_json("/v1/keys", &agent).await;
    assert_eq!(s, 403, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("admin"), "{body}");

    // Created over the API, used, revoked, refused.
    let resp = api
        .http
        .post(api.url("/v1/keys"))
        .bearer_auth(&admin)
        .json(&serde_json::json!({"name": "crm", "role": "integration"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let made: serde_json::Value = resp.json().await.unwrap();
    let token = made["token"].as_str().unwrap().to_owned();
    let id = made["key"]["id"].as_i64().unwrap();
    let (s, _) = api.get_json("/v1/openapi.json", &token).await;
    assert_eq!(s, 200);
    let resp = api
        .http
        .delete(api.url(&format!("/v1/keys/{id}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let (s, body) = api.get_json("/v1/openapi.json", &token).await;
    assert_eq!(s, 401);
    assert!(
        body["detail"].as_str().unwrap().contains("revoked"),
        "{body}"
    );

    // Bad new keys name the field.
    for (body, param) in [
        (serde_json::json!({"name": "x", "role": "wizard"}), "role"),
        (
            serde_json::json!({"name": "x", "role": "agent"}),
            "agent_id",
        ),
        (serde_json::json!({"name": "", "role": "admin"}), "name"),
        (
            serde_json::json!({"name": "x", "role": "admin", "color": 1}),
            "body",
        ),
    ] {
        let resp = api
            .http
            .post(api.url("/v1/keys"))
            .bearer_auth(&admin)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{body}");
        let p: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(p["param"], param, "{p}");
    }
    api.stop().await;
}

#[tokio::test]
async fn an_expired_key_is_refused() {
    let api = TestApi::start(Backend::Sqlite).await;
    let past = pbxbridge::time::Timestamp::from_secs(1_000_000);
    let (_, token) = api
        .db
        .create_api_key("old", "admin", None, Some(past))
        .await
        .unwrap();
    let (s, body) = api.get_json("/v1/keys", &token.0).await;
    assert_eq!(s, 401);
    assert!(
        body["detail"].as_str().unwrap().contains("expired"),
        "{body}"
    );
    api.stop().await;
}
