//! The event side of the API in process: every event type has its schema in
//! the OpenAPI document, events the API causes (notes, links) reach the log
//! and SSE, a see-own key sees only its agent's events and live calls, and
//! bad filters are 400s naming the parameter.

use std::time::Duration;

use futures_util::StreamExt;
use pbxbridge::call::Direction;
use pbxbridge::db::{Backend, CallWrite};
use pbxbridge::events::model::{CallParties, RingingData};
use pbxbridge::events::{Event, EventType, IdMaker};
use pbxbridge::time::Timestamp;
use serde_json::{json, Value};

use crate::api_support::TestApi;
use crate::db_support::answered_call;

/// The `data:` payloads of the first `n` events on `/v1/events?query`.
async fn read_sse(api: &TestApi, token: &str, query: &str, n: usize) -> Vec<Value> {
    let resp = api
        .http
        .get(api.url(&format!("/v1/events{query}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.bytes_stream();
    let mut text = String::new();
    let mut out = Vec::new();
    let read = async {
        while out.len() < n {
            let chunk = body.next().await.expect("stream open").unwrap();
            text.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = text.find("\n\n") {
                let block: String = text.drain(..end + 2).collect();
                let data: String = block
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(str::trim_start)
                    .collect();
                if !data.is_empty() {
                    out.push(serde_json::from_str(&data).unwrap());
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .unwrap_or_else(|_| panic!("fewer than {n} events on /v1/events{query}"));
    out
}

fn ringing(call_id: &str, agent_id: &str, at: i64) -> Event {
    let parties = CallParties {
        direction: Direction::Incoming,
        from_number: Some("+14155550101".into()),
        to_number: Some("2001".into()),
        from_raw: Some("+14155550101".into()),
        to_raw: Some("2001".into()),
        from_display: None,
        agent: Some("2001".into()),
        agent_id: Some(agent_id.into()),
        started_at: Timestamp::from_secs(at),
    };
    let data = RingingData {
        call: parties,
        other_number: Some("+14155550101".into()),
        matches: vec![],
        matched: true,
    };
    Event {
        id: IdMaker::for_call(
            "default",
            call_id,
            EventType::CallRinging,
            Timestamp::from_secs(at),
        ),
        kind: EventType::CallRinging,
        occurred_at: Timestamp::from_secs(at),
        sensor: "default".into(),
        call_id: Some(call_id.into()),
        data: serde_json::to_value(data).unwrap(),
    }
}

#[tokio::test]
async fn event_schemas_filters_and_see_own() {
    let api = TestApi::start(Backend::Sqlite).await;
    let admin = api.key("admin", None).await;
    let own = api.key("agent", Some("u1")).await;

    let (s, doc) = api.get_json("/v1/openapi.json", &admin).await;
    assert_eq!(s, 200);
    let schemas = &doc["components"]["schemas"];
    for t in EventType::ALL {
        let sch = &schemas[t.schema_name()];
        assert!(sch.is_object(), "no schema {}", t.schema_name());
        assert_eq!(sch["allOf"][1]["properties"]["type"]["enum"][0], t.as_str());
    }
    assert_eq!(schemas["AnyEvent"]["oneOf"].as_array().unwrap().len(), 12);
    let ringing_schema = schemas["RingingData"].to_string();
    assert!(
        ringing_schema.contains("matches") && ringing_schema.contains("CallParties"),
        "{ringing_schema}"
    );

    // Bad filters name the parameter.
    for (q, param) in [
        ("?types=call.exploded", "types"),
        ("?colour=red", "colour"),
        ("?agent=", "agent"),
        ("?types=call.ringing&types=call.answered", "types"),
    ] {
        let resp = api
            .get(&format!("/v1/events{q}"), &admin)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{q}");
        let p: Value = resp.json().await.unwrap();
        assert_eq!(p["param"], param, "{q}: {p}");
    }

    // Two ringing calls, agents u1 and u2, straight into the log.
    let log = api.events.log.clone();
    let a = ringing("a@test", "u1", 1_800_000_000);
    let b = ringing("b@test", "u2", 1_800_000_001);
    log.append(&[a.clone(), b.clone()]).unwrap();
    // Live calls: the admin sees both, the agent only its own.
    let wait_live = async {
        loop {
            let (_, live) = api.get_json("/v1/calls/live", &admin).await;
            if live["data"].as_array().unwrap().len() == 2 {
                return live;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let live = tokio::time::timeout(Duration::from_secs(10), wait_live)
        .await
        .expect("live calls follow the log");
    assert_eq!(live["data"][0]["call_id"], "a@test");
    assert_eq!(live["data"][0]["state"], "ringing");
    let (_, mine) = api.get_json("/v1/calls/live", &own).await;
    let mine = mine["data"].as_array().unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0]["call_id"], "a@test");

    // Resuming after a: b comes next. An id no longer kept resumes from
    // the oldest event kept; the see-own key gets only u1's event.
    let all = read_sse(&api, &admin, &format!("?last_event_id={}", a.id), 1).await;
    assert_eq!(all[0]["id"], b.id.as_str());
    let own_events = read_sse(
        &api,
        &own,
        "?types=call.ringing&last_event_id=evt_01AAAAAAAAAAAAAAAAAAAAAAAA",
        1,
    )
    .await;
    assert_eq!(
        own_events[0]["call_id"], "a@test",
        "resumed from the oldest kept, own only"
    );
    assert_eq!(own_events[0], serde_json::to_value(&a).unwrap());

    // A signed link works without a header (EventSource), with the key's
    // own visibility; a tampered one does not, nor one whose key is revoked.
    let resp = api
        .http
        .post(api.url("/v1/events/link"))
        .bearer_auth(&own)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let link: Value = resp.json().await.unwrap();
    let url = link["url"].as_str().unwrap().to_owned();
    assert!(
        url.starts_with("/v1/events?") && url.contains("sig="),
        "{url}"
    );
    let plain = api.http.get(api.url(&format!(
        "{url}&types=call.ringing&last_event_id=evt_01AAAAAAAAAAAAAAAAAAAAAAAA"
    )));
    let resp = plain.send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.bytes_stream();
    let mut text = String::new();
    while !text.contains("a@test") {
        let chunk = tokio::time::timeout(Duration::from_secs(5), body.next())
            .await
            .expect("an event on the signed stream")
            .unwrap()
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(!text.contains("b@test"), "{text}");
    drop(body);
    let tampered = url.replace("sig=", "sig=00");
    let resp = api.http.get(api.url(&tampered)).send().await.unwrap();
    assert_eq!(resp.status(), 401, "{}", resp.text().await.unwrap());
    let resp = api.http.get(api.url("/v1/events")).send().await.unwrap();
    assert_eq!(resp.status(), 401);

    // A note added through the API is an event, with the call's agent.
    let call = answered_call(
        "c@test",
        Direction::Incoming,
        "+14155550102",
        Some("2001"),
        1_800_000_100,
    );
    let write = CallWrite {
        report: &call,
        agent: Some(("user".into(), "u1".into(), Some("Una".into()))),
        links: vec![],
    };
    api.db.write_calls("default", &[write]).await.unwrap();
    let row = crate::db_support::count(&api.db, "SELECT MAX(id) FROM calls").await;
    let query = format!("?types=note.added,call.linked&last_event_id={}", b.id);
    let sse = read_sse(&api, &own, &query, 2);
    let post = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let resp = api
            .http
            .post(api.url(&format!("/v1/calls/{row}/notes")))
            .bearer_auth(&admin)
            .json(&json!({"body": "called back"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201);
        let resp = api
            .http
            .post(api.url(&format!("/v1/calls/{row}/links")))
            .bearer_auth(&admin)
            .json(&json!({"type": "contact", "id": "42"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201);
    };
    let (got, ()) = tokio::join!(sse, post);
    assert_eq!(got[0]["type"], "note.added", "{got:?}");
    assert_eq!(got[0]["call_id"], "c@test");
    assert_eq!(got[0]["data"]["call"], row);
    assert_eq!(got[0]["data"]["agent_id"], "u1");
    assert_eq!(got[0]["data"]["text"], "called back");
    assert_eq!(got[1]["type"], "call.linked");
    assert_eq!(got[1]["data"]["record_id"], "42");
    api.stop().await;
}
