//! The call log over HTTP (`GET /v1/calls`, `/v1/calls.csv`,
//! `/v1/calls/{id}`, `/v1/records/{type}/{id}/calls`) on SQLite, PostgreSQL
//! and MariaDB: a few thousand generated calls with ties on every sort key,
//! every filter alone and in combinations, every sort both ways, walked page
//! by page, checked against a reference computed here; the CSV parsed back;
//! hostile parameters; see-own keys.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};

use pbxbridge::call::{Direction, Outcome};
use pbxbridge::db::{links, Backend, CallWrite, LinkSource, NewLink};
use pbxbridge::report::{CallReport, RecordingStatus, RtpReport};
use pbxbridge::rtp::quality::DirQuality;
use pbxbridge::time::Timestamp;
use serde_json::Value;

use crate::api_support::TestApi;
use crate::db_support::{answered_call, exec, strings, ALL};

/// 2027-01-15T20:00:00Z: the calls run past midnight, so a date in `to`
/// cuts them.
const T0: i64 = 1_800_043_200;
const CALLS: usize = 2400;
const SENSOR: &str = "default";

/// Names with what CSV must quote, and LIKE metacharacters.
const CONTACT_NAMES: [&str; 8] = [
    "Smith, \"Jo\"\nSales",
    "50% Discount_Co",
    "O'Brien",
    "Back\\slash Ltd",
    "Zoë Quinn",
    "plain",
    "Acme; Corp",
    "under_score",
];
const AGENT_NAMES: [&str; 5] = [
    "Ann \"Closer\", Sales",
    "Bob",
    "Cy\nNewline",
    "Di 100%",
    "Ed",
];

/// One generated call, as the reference sees it.
#[derive(Clone, Debug)]
struct Gen {
    id: i64,
    call_id: String,
    direction: Direction,
    outcome: Outcome,
    started: i64,
    duration: f64,
    agent: Option<String>,
    agent_id: Option<String>,
    agent_name: Option<String>,
    from: String,
    to: String,
    other: Option<String>,
    recording: RecordingStatus,
    /// Active links: (type, id, display name).
    links: Vec<(String, String, String)>,
    notes: usize,
    /// The worse direction's MOS and loss percent, when measured.
    mos: Option<f64>,
    loss: Option<f64>,
}

struct Rng(u64);

impl Rng {
    fn next(&mut self, n: u64) -> u64 {
        // xorshift64*: deterministic, good enough to spread the cases.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) % n
    }
}

/// The calls and the links matching would have written, in a fixed order.
#[allow(clippy::type_complexity)]
fn generate() -> (Vec<CallReport>, Vec<Gen>, Vec<Vec<NewLink>>, Vec<usize>) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut reports = Vec::new();
    let mut gens = Vec::new();
    let mut all_links = Vec::new();
    let mut agents = Vec::new();
    for i in 0..CALLS {
        let direction = Direction::ALL[rng.next(4) as usize];
        let outcome = Outcome::ALL[rng.next(6) as usize];
        let a = rng.next(6) as usize;
        let agent = (a > 0).then(|| format!("200{a}"));
        let other = format!("+1415555{:04}", 1000 + rng.next(40));
        let started = T0 + rng.next(400) as i64 * 60;
        let mut c = answered_call(
            &format!("g{i}@pbx"),
            direction,
            &other,
            agent.as_deref(),
            started,
        );
        c.agent = agent.clone();
        c.outcome = outcome;
        c.duration = match (outcome, rng.next(6)) {
            (Outcome::Answered, 5) => 12.25,
            (Outcome::Answered, k) => k as f64 * 30.0,
            _ => 0.0,
        };
        if outcome != Outcome::Answered {
            c.answered_at = None;
        } else if i % 4 != 0 {
            // Quality from the call's index (the generator's sequence stays
            // as it was): the caller's side varies, the callee's is fixed.
            let k = i % 5;
            let dir = |loss_pct: f64, mos: f64| DirQuality {
                expected: 1000,
                received: 1000 - (loss_pct * 10.0) as u64,
                lost: (loss_pct * 10.0) as u64,
                loss_pct,
                mos: Some(mos),
                r_factor: Some(mos * 20.0),
                ..DirQuality::default()
            };
            let mut caller = c.rtp.caller.clone();
            caller.quality = Some(dir(
                [0.0, 1.5, 3.0, 4.5, 6.0][k],
                [4.4, 4.1, 3.8, 3.5, 3.2][k],
            ));
            let mut callee = c.rtp.callee.clone();
            callee.quality = Some(dir(0.5, 4.2));
            c.rtp = RtpReport::new(caller, callee);
        }
        if i % 9 == 0 {
            c.from_display = Some("Doe, \"Jay\"\nLine 2".into());
        }
        let recording = match rng.next(4) {
            0 => RecordingStatus::Stored,
            1 => RecordingStatus::Pending,
            2 => RecordingStatus::Failed,
            _ => RecordingStatus::None,
        };
        c.recording.status = recording;
        if matches!(
            recording,
            RecordingStatus::Stored | RecordingStatus::Pending
        ) {
            c.recording.path = Some(format!("/rec/g{i}.wav"));
            c.recording.samples = Some(8000 * 30);
            c.recording.sample_rate = Some(8000);
        }
        let mut new_links = Vec::new();
        let mut active = Vec::new();
        if rng.next(3) == 0 {
            let k = rng.next(12) as usize;
            let name = CONTACT_NAMES[k % CONTACT_NAMES.len()];
            new_links.push(NewLink {
                record_type: "contact".into(),
                record_id: k.to_string(),
                field: Some("phone".into()),
                source: LinkSource::Auto,
                via: None,
                display_name: Some(name.into()),
            });
            active.push(("contact".into(), k.to_string(), name.to_owned()));
        }
        let agent_id = agent.as_ref().map(|_| format!("u{a}"));
        let agent_name = agent.as_ref().map(|_| AGENT_NAMES[a - 1].to_owned());
        agents.push(a);
        gens.push(Gen {
            id: 0,
            call_id: c.call_id.clone(),
            direction,
            outcome,
            started: started * 1_000_000,
            duration: c.duration,
            agent,
            agent_id,
            agent_name,
            from: c.from_number.clone().unwrap_or_default(),
            to: c.to_number.clone().unwrap_or_default(),
            other: c.other_number().map(str::to_owned),
            recording,
            links: active,
            notes: if i % 14 == 0 {
                2
            } else {
                usize::from(i % 7 == 0)
            },
            mos: c.rtp.mos,
            loss: c.rtp.loss_pct,
        });
        reports.push(c);
        all_links.push(new_links);
    }
    (reports, gens, all_links, agents)
}

/// Writes the calls, unlinks a few links, adds notes; fills in row ids.
async fn fill(api: &TestApi) -> Vec<Gen> {
    let (reports, mut gens, all_links, agents) = generate();
    let writes: Vec<CallWrite<'_>> = reports
        .iter()
        .zip(&all_links)
        .zip(&agents)
        .map(|((r, l), a)| CallWrite {
            report: r,
            agent: r.agent.as_ref().map(|_| {
                (
                    "user".to_owned(),
                    format!("u{a}"),
                    Some(AGENT_NAMES[a - 1].to_owned()),
                )
            }),
            links: l.clone(),
        })
        .collect();
    for chunk in writes.chunks(500) {
        api.db
            .write_calls(SENSOR, chunk)
            .await
            .expect("write calls");
    }
    let d = api.db.dialect();
    let ids = strings(
        &api.db,
        // Aliased: PostgreSQL would sort by the text column named `id`.
        &format!(
            "SELECT {} AS t FROM {{calls}} ORDER BY id",
            d.cast_text("id")
        ),
    )
    .await;
    let call_ids = strings(&api.db, "SELECT call_id FROM {calls} ORDER BY id").await;
    let by_call: HashMap<String, i64> = call_ids
        .into_iter()
        .zip(ids.iter().map(|i| i.parse::<i64>().unwrap()))
        .collect();
    for g in &mut gens {
        g.id = by_call[&g.call_id];
    }
    // Every 5th linked call loses its link: removed links are not listed.
    let linked: Vec<usize> = (0..gens.len())
        .filter(|&i| !gens[i].links.is_empty())
        .collect();
    for &i in linked.iter().step_by(5) {
        let (t, id, _) = gens[i].links[0].clone();
        links::unlink(&api.db, SENSOR, &gens[i].call_id, &t, &id)
            .await
            .unwrap();
        gens[i].links.clear();
    }
    let with_notes: Vec<String> = gens
        .iter()
        .filter(|g| g.notes > 0)
        .map(|g| g.id.to_string())
        .collect();
    let twice: Vec<String> = gens
        .iter()
        .filter(|g| g.notes > 1)
        .map(|g| g.id.to_string())
        .collect();
    for set in [&with_notes, &twice] {
        exec(
            &api.db,
            &api.db.sql(&format!(
                "INSERT INTO {{call_notes}} (call_row, author, body, created_at, updated_at) \
                 SELECT id, 'tester', 'Called back, \"left\" a message\nnext: Friday', started_at, started_at \
                 FROM {{calls}} WHERE id IN ({})",
                set.join(", ")
            )),
        )
        .await;
    }
    exec(
        &api.db,
        &api.db.sql(
            "UPDATE {calls} SET note_count = (SELECT COUNT(*) FROM {call_notes} n WHERE n.call_row = {calls}.id), \
             updated_at = started_at",
        ),
    )
    .await;
    gens
}

/// The sort key's order between two calls (ties broken by id).
fn compare(a: &Gen, b: &Gen, key: &str) -> Ordering {
    let k = match key {
        "started_at" => a.started.cmp(&b.started),
        "duration" => a.duration.total_cmp(&b.duration),
        "direction" => a.direction.as_str().cmp(b.direction.as_str()),
        "agent" => a
            .agent
            .as_deref()
            .unwrap_or("")
            .cmp(b.agent.as_deref().unwrap_or("")),
        _ => unreachable!("{key}"),
    };
    k.then(a.id.cmp(&b.id))
}

fn reference(gens: &[Gen], keep: &dyn Fn(&Gen) -> bool, sort: &str) -> Vec<i64> {
    let (desc, key) = match sort.strip_prefix('-') {
        Some(k) => (true, k),
        None => (false, sort),
    };
    let mut v: Vec<&Gen> = gens.iter().filter(|g| keep(g)).collect();
    v.sort_by(|a, b| {
        let o = compare(a, b, key);
        if desc {
            o.reverse()
        } else {
            o
        }
    });
    v.into_iter().map(|g| g.id).collect()
}

fn query_string(params: &[(&str, String)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        s.append_pair(k, v);
    }
    s.finish()
}

/// Every page of `path?params`, following next_cursor; the ids in order.
async fn walk(api: &TestApi, token: &str, path: &str, params: &[(&str, String)]) -> Vec<i64> {
    let limit: usize = params
        .iter()
        .find(|(k, _)| *k == "limit")
        .map_or(25, |(_, v)| v.parse().unwrap());
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10_000 {
        let mut p = params.to_vec();
        if let Some(c) = &cursor {
            p.push(("cursor", c.clone()));
        }
        let url = format!("{path}?{}", query_string(&p));
        let (s, body) = api.get_json(&url, token).await;
        assert_eq!(s, 200, "{url}: {body}");
        let data = body["data"].as_array().unwrap();
        assert!(data.len() <= limit, "{url}: page longer than limit");
        ids.extend(data.iter().map(|c| c["id"].as_i64().unwrap()));
        match body["next_cursor"].as_str() {
            Some(c) => {
                assert_eq!(data.len(), limit, "{url}: a short page with a next cursor");
                cursor = Some(c.to_owned());
            }
            None => return ids,
        }
    }
    panic!("{path}: no end to the pages");
}

fn ts(micros: i64) -> String {
    Timestamp::from_micros(micros).to_rfc3339()
}

/// The filter cases: query parameters and the reference predicate.
#[allow(clippy::type_complexity)]
fn cases() -> Vec<(Vec<(&'static str, String)>, Box<dyn Fn(&Gen) -> bool>)> {
    let s = |v: &str| v.to_owned();
    let q_match = |needle: &'static str| {
        move |g: &Gen| {
            let n = needle.to_lowercase();
            [
                Some(&g.from),
                Some(&g.to),
                g.other.as_ref(),
                g.agent.as_ref(),
                g.agent_name.as_ref(),
            ]
            .into_iter()
            .flatten()
            .any(|v| v.to_lowercase().contains(&n))
                || g.links.iter().any(|l| l.2.to_lowercase().contains(&n))
        }
    };
    let mid = T0 * 1_000_000 + 100 * 60 * 1_000_000;
    let midnight = (T0 + 4 * 3600) * 1_000_000;
    vec![
        (vec![], Box::new(|_: &Gen| true)),
        (
            vec![("direction", s("incoming"))],
            Box::new(|g: &Gen| g.direction == Direction::Incoming),
        ),
        (
            vec![("direction", s("incoming")), ("direction", s("outgoing"))],
            Box::new(|g: &Gen| matches!(g.direction, Direction::Incoming | Direction::Outgoing)),
        ),
        (
            vec![("direction", s("internal,unknown"))],
            Box::new(|g: &Gen| matches!(g.direction, Direction::Internal | Direction::Unknown)),
        ),
        (
            vec![("outcome", s("answered"))],
            Box::new(|g: &Gen| g.outcome == Outcome::Answered),
        ),
        (
            vec![("outcome", s("busy")), ("outcome", s("no_answer"))],
            Box::new(|g: &Gen| matches!(g.outcome, Outcome::Busy | Outcome::NoAnswer)),
        ),
        (
            vec![("from", ts(mid))],
            Box::new(move |g: &Gen| g.started >= mid),
        ),
        (
            vec![("to", s("2027-01-15"))],
            Box::new(move |g: &Gen| g.started < midnight),
        ),
        (
            vec![("from", s("2027-01-16"))],
            Box::new(move |g: &Gen| g.started >= midnight),
        ),
        (
            vec![("from", ts(mid)), ("to", ts(midnight))],
            Box::new(move |g: &Gen| g.started >= mid && g.started < midnight),
        ),
        (
            vec![("min_duration", s("60"))],
            Box::new(|g: &Gen| g.duration >= 60.0),
        ),
        (
            vec![("max_duration", s("12.25"))],
            Box::new(|g: &Gen| g.duration <= 12.25),
        ),
        (
            vec![("min_mos", s("4"))],
            Box::new(|g: &Gen| g.mos.is_some_and(|m| m >= 4.0)),
        ),
        (
            vec![("max_loss", s("3"))],
            Box::new(|g: &Gen| g.loss.is_some_and(|l| l <= 3.0)),
        ),
        (
            vec![("min_mos", s("3.5")), ("max_loss", s("4.5"))],
            Box::new(|g: &Gen| g.mos.is_some_and(|m| m >= 3.5) && g.loss.is_some_and(|l| l <= 4.5)),
        ),
        (
            vec![("recorded", s("true"))],
            Box::new(|g: &Gen| {
                matches!(
                    g.recording,
                    RecordingStatus::Stored | RecordingStatus::Pending
                )
            }),
        ),
        (
            vec![("recorded", s("false"))],
            Box::new(|g: &Gen| {
                !matches!(
                    g.recording,
                    RecordingStatus::Stored | RecordingStatus::Pending
                )
            }),
        ),
        (
            vec![("has_note", s("true"))],
            Box::new(|g: &Gen| g.notes > 0),
        ),
        (
            vec![("has_note", s("false"))],
            Box::new(|g: &Gen| g.notes == 0),
        ),
        (
            vec![("agent", s("2003"))],
            Box::new(|g: &Gen| g.agent.as_deref() == Some("2003")),
        ),
        (
            vec![("agent", s("u2"))],
            Box::new(|g: &Gen| g.agent_id.as_deref() == Some("u2")),
        ),
        (
            vec![("number", s("(415) 555-1003"))],
            Box::new(|g: &Gen| {
                let n = "+14155551003";
                g.from == n || g.to == n || g.other.as_deref() == Some(n)
            }),
        ),
        (
            vec![("number", s("2004"))],
            Box::new(|g: &Gen| g.from == "2004" || g.to == "2004"),
        ),
        (
            vec![("record", s("contact:3"))],
            Box::new(|g: &Gen| g.links.iter().any(|l| l.0 == "contact" && l.1 == "3")),
        ),
        (vec![("sensor", s(SENSOR))], Box::new(|_: &Gen| true)),
        (vec![("sensor", s("elsewhere"))], Box::new(|_: &Gen| false)),
        (
            vec![("call_id", s("g17@pbx"))],
            Box::new(|g: &Gen| g.call_id == "g17@pbx"),
        ),
        (vec![("q", s("smith"))], Box::new(q_match("smith"))),
        (vec![("q", s("50%"))], Box::new(q_match("50%"))),
        (vec![("q", s("_"))], Box::new(q_match("_"))),
        (vec![("q", s("o'b"))], Box::new(q_match("o'b"))),
        (vec![("q", s("k\\s"))], Box::new(q_match("k\\s"))),
        (vec![("q", s("5551007"))], Box::new(q_match("5551007"))),
        (vec![("q", s("CLOSER"))], Box::new(q_match("closer"))),
        (
            vec![("q", s("' OR 1=1 --"))],
            Box::new(q_match("' OR 1=1 --")),
        ),
        (
            vec![("updated_since", ts(mid))],
            Box::new(move |g: &Gen| g.started >= mid),
        ),
        (
            vec![
                ("direction", s("incoming")),
                ("outcome", s("answered")),
                ("min_duration", s("30")),
            ],
            Box::new(|g: &Gen| {
                g.direction == Direction::Incoming
                    && g.outcome == Outcome::Answered
                    && g.duration >= 30.0
            }),
        ),
        (
            vec![("agent", s("2001")), ("recorded", s("true"))],
            Box::new(|g: &Gen| {
                g.agent.as_deref() == Some("2001")
                    && matches!(
                        g.recording,
                        RecordingStatus::Stored | RecordingStatus::Pending
                    )
            }),
        ),
        (
            vec![
                ("q", s("a")),
                ("has_note", s("true")),
                ("to", s("2027-01-15")),
            ],
            Box::new(move |g: &Gen| q_match("a")(g) && g.notes > 0 && g.started < midnight),
        ),
    ]
}

async fn filters_sorts_and_pages(api: &TestApi, gens: &[Gen], token: &str) {
    let b = api.db.backend();
    // Every filter, alone and combined, newest first, across pages.
    for (params, keep) in cases() {
        let mut p = params.clone();
        p.push(("limit", "100".into()));
        let got = walk(api, token, "/v1/calls", &p).await;
        let want = reference(gens, keep.as_ref(), "-started_at");
        assert_eq!(got, want, "{b:?} {params:?}");
    }
    // Every sort both ways, with pages that end inside runs of ties.
    for key in ["started_at", "duration", "direction", "agent"] {
        for sort in [key.to_owned(), format!("-{key}")] {
            let p = vec![("sort", sort.clone()), ("limit", "37".into())];
            let got = walk(api, token, "/v1/calls", &p).await;
            assert_eq!(got, reference(gens, &|_| true, &sort), "{b:?} sort {sort}");
            let p = vec![
                ("sort", sort.clone()),
                ("limit", "7".into()),
                ("outcome", "answered".into()),
            ];
            let got = walk(api, token, "/v1/calls", &p).await;
            let want = reference(gens, &|g: &Gen| g.outcome == Outcome::Answered, &sort);
            assert_eq!(got, want, "{b:?} sort {sort} answered");
        }
    }
    // Page mode, with the total.
    let want = reference(
        gens,
        &|g: &Gen| g.direction != Direction::Internal,
        "duration",
    );
    let mut got = Vec::new();
    let pages = want.len().div_ceil(100);
    for page in 1..=pages + 1 {
        let url = format!(
            "/v1/calls?direction=incoming,outgoing,unknown&sort=duration&limit=100&page={page}"
        );
        let (s, body) = api.get_json(&url, token).await;
        assert_eq!(s, 200, "{body}");
        assert_eq!(body["pagination"]["total"], want.len(), "{body}");
        assert_eq!(body["pagination"]["pages"], pages, "{body}");
        assert_eq!(body["pagination"]["page"], page);
        assert!(body["next_cursor"].is_null());
        got.extend(
            body["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["id"].as_i64().unwrap()),
        );
    }
    assert_eq!(got, want, "{b:?} page mode");
    let (s, body) = api
        .get_json("/v1/calls?has_note=true&include_total=true&limit=1", token)
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        body["total"],
        gens.iter().filter(|g| g.notes > 0).count(),
        "{body}"
    );
    let (_, body) = api.get_json("/v1/calls?limit=1", token).await;
    assert!(body.get("total").is_none(), "total only when asked: {body}");
    assert_eq!(body["data"].as_array().unwrap().len(), 1);
    let (_, body) = api.get_json("/v1/calls", token).await;
    assert_eq!(body["data"].as_array().unwrap().len(), 25, "default limit");
}

/// The item's fields for one call of each kind.
async fn items(api: &TestApi, gens: &[Gen], token: &str) {
    let g = gens
        .iter()
        .find(|g| {
            !g.links.is_empty() && g.agent.is_some() && g.recording == RecordingStatus::Stored
        })
        .unwrap();
    let (s, body) = api
        .get_json(
            &format!("/v1/calls?call_id={}", g.call_id.replace('@', "%40")),
            token,
        )
        .await;
    assert_eq!(s, 200, "{body}");
    let c = &body["data"][0];
    assert_eq!(c["id"], g.id);
    assert_eq!(c["direction"], g.direction.as_str());
    assert_eq!(c["outcome"], g.outcome.as_str());
    assert_eq!(c["started_at"], ts(g.started));
    assert_eq!(c["from"]["number"], g.from.as_str());
    assert_eq!(c["agent"]["extension"], g.agent.as_deref().unwrap());
    assert_eq!(c["agent"]["id"], g.agent_id.as_deref().unwrap());
    assert_eq!(c["agent"]["name"], g.agent_name.as_deref().unwrap());
    assert_eq!(c["agent"]["type"], "user");
    assert_eq!(c["records"][0]["type"], "contact");
    assert_eq!(c["records"][0]["display_name"], g.links[0].2.as_str());
    assert_eq!(c["records"][0]["source"], "auto");
    assert_eq!(c["has_notes"], g.notes > 0);
    assert_eq!(c["recording"]["status"], "stored");
    assert_eq!(c["recording"]["format"], "wav");
    assert_eq!(c["recording"]["duration"], 30.0);
    assert_eq!(
        c["recording"]["url"],
        format!("/v1/calls/{}/recording", g.id)
    );
    assert_eq!(c["origin"], "captured");
    assert!(c["rtp"]["caller"]["packets"].is_i64(), "{c}");
    // Quality: the worse direction's figures and each direction's.
    let q = gens
        .iter()
        .find(|g| g.mos.is_some() && g.loss.is_some_and(|l| l > 0.5))
        .unwrap();
    let (s, body) = api.get_json(&format!("/v1/calls/{}", q.id), token).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["quality"]["mos"].as_f64(), q.mos, "{body}");
    assert_eq!(body["quality"]["loss_pct"].as_f64(), q.loss, "{body}");
    assert_eq!(body["quality"]["callee"]["mos"], 4.2, "{body}");
    assert_eq!(
        body["quality"]["caller"]["loss_pct"].as_f64(),
        q.loss,
        "{body}"
    );
    assert_eq!(body["quality"]["caller"]["expected"], 1000, "{body}");
    let unmeasured = gens
        .iter()
        .find(|g| g.outcome != Outcome::Answered)
        .unwrap();
    let (_, body) = api
        .get_json(&format!("/v1/calls/{}", unmeasured.id), token)
        .await;
    assert!(body["quality"].is_null(), "{body}");
    let none = gens
        .iter()
        .find(|g| g.recording == RecordingStatus::Failed && g.agent.is_none())
        .unwrap();
    let (_, body) = api.get_json(&format!("/v1/calls/{}", none.id), token).await;
    assert!(body["recording"]["url"].is_null(), "{body}");
    assert!(body["agent"].is_null(), "{body}");
}

/// One call: notes and links with their history.
async fn detail(api: &TestApi, gens: &[Gen], token: &str) {
    // A call with notes whose link was removed, then linked to another.
    let g = gens.iter().find(|g| g.notes == 2).unwrap();
    links::link(
        &api.db,
        SENSOR,
        &g.call_id,
        "contact",
        "99",
        LinkSource::Manual,
    )
    .await
    .unwrap();
    links::unlink(&api.db, SENSOR, &g.call_id, "contact", "99")
        .await
        .unwrap();
    links::link(
        &api.db,
        SENSOR,
        &g.call_id,
        "user",
        "u9",
        LinkSource::Manual,
    )
    .await
    .unwrap();
    for id in [
        g.id.to_string(),
        format!("{SENSOR}%2F{}", g.call_id.replace('@', "%40")),
    ] {
        let (s, body) = api.get_json(&format!("/v1/calls/{id}"), token).await;
        assert_eq!(s, 200, "{id}: {body}");
        assert_eq!(body["id"], g.id);
        let notes = body["notes"].as_array().unwrap();
        assert_eq!(notes.len(), 2, "{body}");
        assert!(notes[0]["body"].as_str().unwrap().contains("\"left\""));
        let all = body["links"].as_array().unwrap();
        let removed = all.iter().find(|l| l["id"] == "99").unwrap();
        assert!(removed["removed_at"].is_string(), "{body}");
        let kept = all.iter().find(|l| l["id"] == "u9").unwrap();
        assert!(kept["removed_at"].is_null());
        let records: Vec<&str> = body["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap())
            .collect();
        assert!(
            records.contains(&"u9") && !records.contains(&"99"),
            "{body}"
        );
    }
    let (s, _) = api.get_json("/v1/calls/99999999", token).await;
    assert_eq!(s, 404);
    links::unlink(&api.db, SENSOR, &g.call_id, "user", "u9")
        .await
        .unwrap();
}

/// The timeline: the record's calls, newest first, same paging and filters.
async fn timeline(api: &TestApi, gens: &[Gen], token: &str) {
    let has = |g: &Gen| g.links.iter().any(|l| l.0 == "contact" && l.1 == "5");
    let got = walk(
        api,
        token,
        "/v1/records/contact/5/calls",
        &[("limit", "9".into())],
    )
    .await;
    assert_eq!(got, reference(gens, &has, "-started_at"));
    assert!(!got.is_empty());
    let p = [
        ("limit", "4".into()),
        ("outcome", "answered".into()),
        ("sort", "duration".into()),
    ];
    let got = walk(api, token, "/v1/records/contact/5/calls", &p).await;
    let want = reference(
        gens,
        &|g: &Gen| has(g) && g.outcome == Outcome::Answered,
        "duration",
    );
    assert_eq!(got, want);
    let (s, body) = api
        .get_json("/v1/records/contact/5/calls?limit=1", token)
        .await;
    assert_eq!(s, 200);
    let c = &body["data"][0];
    for field in ["has_notes", "agent", "outcome", "recording"] {
        assert!(c.get(field).is_some(), "{field}: {c}");
    }
}

/// The CSV export: every matching row, parsed back, equal to the JSON rows.
async fn csv_export(api: &TestApi, gens: &[Gen], token: &str) {
    let p = [
        ("sort", "-agent".to_owned()),
        ("outcome", "answered,busy".to_owned()),
    ];
    let want = reference(
        gens,
        &|g: &Gen| matches!(g.outcome, Outcome::Answered | Outcome::Busy),
        "-agent",
    );
    let resp = api
        .get(&format!("/v1/calls.csv?{}", query_string(&p)), token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/csv; charset=utf-8");
    let cd = resp.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        cd.contains("attachment") && cd.contains("calls.csv"),
        "{cd}"
    );
    let text = resp.text().await.unwrap();
    let by_accept = api
        .get(&format!("/v1/calls?{}", query_string(&p)), token)
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert_eq!(
        by_accept.headers()["content-type"],
        "text/csv; charset=utf-8"
    );
    assert_eq!(by_accept.text().await.unwrap(), text);

    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(header.len(), 36);
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    let ids: Vec<i64> = rows.iter().map(|r| r[col("id")].parse().unwrap()).collect();
    assert_eq!(ids, want, "CSV rows");
    // Against the JSON of the same view.
    let mut json: HashMap<i64, Value> = HashMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut q = p.to_vec();
        q.push(("limit", "100".into()));
        if let Some(c) = &cursor {
            q.push(("cursor", c.clone()));
        }
        let (_, body) = api
            .get_json(&format!("/v1/calls?{}", query_string(&q)), token)
            .await;
        for c in body["data"].as_array().unwrap() {
            json.insert(c["id"].as_i64().unwrap(), c.clone());
        }
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let mut tricky = HashSet::new();
    for r in &rows {
        let j = &json[&r[col("id")].parse::<i64>().unwrap()];
        let s = |v: &Value| v.as_str().unwrap_or("").to_owned();
        assert_eq!(r[col("call_id")], s(&j["call_id"]));
        assert_eq!(r[col("from_display")], s(&j["from"]["display"]));
        assert_eq!(r[col("agent_name")], s(&j["agent"]["name"]));
        assert_eq!(r[col("started_at")], s(&j["started_at"]));
        assert_eq!(r[col("recording_url")], s(&j["recording"]["url"]));
        assert_eq!(
            r[col("duration")].parse::<f64>().unwrap(),
            j["duration"].as_f64().unwrap()
        );
        let recs: Vec<String> = j["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                format!(
                    "{}:{} ({})",
                    s(&l["type"]),
                    s(&l["id"]),
                    s(&l["display_name"])
                )
            })
            .collect();
        assert_eq!(r[col("records")], recs.join("; "));
        for cell in r.iter() {
            if cell.contains('\n') && cell.contains('"') && cell.contains(',') {
                tricky.insert(cell.to_owned());
            }
        }
    }
    assert!(
        tricky.len() >= 2,
        "quotes, commas and newlines came through: {tricky:?}"
    );
}

/// Each hostile parameter is a 400 naming it, never a 5xx.
async fn hostile(api: &TestApi, token: &str) {
    let (_, page) = api.get_json("/v1/calls?limit=2", token).await;
    let good = page["next_cursor"].as_str().unwrap().to_owned();
    let (_, page) = api.get_json("/v1/calls?limit=2&sort=duration", token).await;
    let other_sort = page["next_cursor"].as_str().unwrap().to_owned();
    let mut tampered = good.clone().into_bytes();
    tampered[3] = if tampered[3] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let enc = |v: &str| form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
    let cases: Vec<(String, &str)> = vec![
        ("cursor=garbage".into(), "cursor"),
        (format!("cursor={}", enc(&tampered)), "cursor"),
        (format!("cursor={}", enc(&other_sort)), "cursor"),
        (format!("cursor={}", enc(&format!("{good}x"))), "cursor"),
        ("cursor=".into(), "cursor"),
        ("limit=100000".into(), "limit"),
        ("limit=0".into(), "limit"),
        ("limit=-1".into(), "limit"),
        ("limit=1&limit=2".into(), "limit"),
        ("color=red".into(), "color"),
        ("from=yesterday".into(), "from"),
        ("to=2027-13-45".into(), "to"),
        ("updated_since=1%27".into(), "updated_since"),
        (format!("number={}", enc("' OR 1=1 --")), "number"),
        ("number=%25".into(), "number"),
        ("number=_".into(), "number"),
        ("record=contact".into(), "record"),
        ("record=nope:1".into(), "record"),
        (
            format!("record={}", enc("contact:../../etc/passwd")),
            "record",
        ),
        ("sort=id".into(), "sort"),
        (
            format!("sort={}", enc("started_at; DROP TABLE calls")),
            "sort",
        ),
        ("direction=sideways".into(), "direction"),
        ("outcome=answered,lost".into(), "outcome"),
        ("page=0".into(), "page"),
        (format!("page=2&cursor={}", enc(&good)), "page"),
        ("min_duration=-1".into(), "min_duration"),
        ("max_duration=NaN".into(), "max_duration"),
        ("min_mos=7".into(), "min_mos"),
        ("min_mos=good".into(), "min_mos"),
        ("max_loss=-1".into(), "max_loss"),
        ("max_loss=101".into(), "max_loss"),
        ("recorded=maybe".into(), "recorded"),
        ("include_total=yes".into(), "include_total"),
        (format!("q={}", "x".repeat(500)), "q"),
        ("q=".into(), "q"),
    ];
    for (query, param) in &cases {
        for path in ["/v1/calls", "/v1/calls.csv", "/v1/records/contact/5/calls"] {
            if path.starts_with("/v1/records") && param == &"record" {
                continue;
            }
            let (s, body) = api.get_json(&format!("{path}?{query}"), token).await;
            assert_eq!(s, 400, "{path}?{query}: {body}");
            assert_eq!(body["param"], *param, "{path}?{query}: {body}");
        }
    }
    // `record` is the path's on the timeline.
    let (s, body) = api
        .get_json("/v1/records/contact/5/calls?record=contact:1", token)
        .await;
    assert_eq!((s, body["param"].as_str()), (400, Some("record")), "{body}");
    // SQL in q and ids is only ever a value.
    for q in ["' OR 1=1 --", "%", "_", "\\", "\"; DROP TABLE calls; --"] {
        let (s, body) = api
            .get_json(&format!("/v1/calls?q={}", enc(q)), token)
            .await;
        assert_eq!(s, 200, "{q}: {body}");
    }
    let (_, body) = api
        .get_json(&format!("/v1/calls?q={}", enc("' OR 1=1 --")), token)
        .await;
    assert_eq!(body["data"].as_array().unwrap().len(), 0, "{body}");
    for (path, want) in [
        ("/v1/calls/..%2F..%2Fetc%2Fpasswd", 404),
        ("/v1/calls/abc", 400),
        ("/v1/calls/1%27%20OR%201=1", 400),
        ("/v1/records/contact/..%2F..%2Fetc/calls", 400),
        ("/v1/records/contact/../calls", 404),
        ("/v1/records/nope/1/calls", 400),
    ] {
        let (s, body) = api.get_json(path, token).await;
        assert_eq!(s, want, "{path}: {body}");
    }
}

/// A see-own key sees only its agent's calls, everywhere.
async fn see_own(api: &TestApi, gens: &[Gen]) {
    let agent = api.key("agent", Some("u2")).await;
    let mine = |g: &Gen| g.agent_id.as_deref() == Some("u2");
    let got = walk(api, &agent, "/v1/calls", &[("limit", "100".into())]).await;
    assert_eq!(got, reference(gens, &mine, "-started_at"));
    assert!(!got.is_empty());
    let text = api
        .get("/v1/calls.csv", &agent)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let ids: Vec<i64> = r
        .records()
        .map(|r| r.unwrap()[0].parse().unwrap())
        .collect();
    assert_eq!(ids, reference(gens, &mine, "-started_at"));
    let other = gens.iter().find(|g| !mine(g)).unwrap();
    let (s, _) = api
        .get_json(&format!("/v1/calls/{}", other.id), &agent)
        .await;
    assert_eq!(s, 404);
    let own = gens.iter().find(|g| mine(g)).unwrap();
    let (s, _) = api.get_json(&format!("/v1/calls/{}", own.id), &agent).await;
    assert_eq!(s, 200);
    let got = walk(api, &agent, "/v1/records/contact/5/calls", &[]).await;
    let want = reference(
        gens,
        &|g: &Gen| mine(g) && g.links.iter().any(|l| l.0 == "contact" && l.1 == "5"),
        "-started_at",
    );
    assert_eq!(got, want);
    // A see-own key without an agent id sees nothing.
    let nobody = api.key("agent", None).await;
    let (s, body) = api.get_json("/v1/calls?include_total=true", &nobody).await;
    assert_eq!(s, 200);
    assert_eq!(body["total"], 0, "{body}");
}

#[tokio::test]
async fn the_call_log_filters_sorts_pages_and_exports_on_every_backend() {
    for backend in ALL {
        let api = TestApi::start(backend).await;
        let gens = fill(&api).await;
        let token = api.key("supervisor", None).await;
        filters_sorts_and_pages(&api, &gens, &token).await;
        items(&api, &gens, &token).await;
        detail(&api, &gens, &token).await;
        timeline(&api, &gens, &token).await;
        csv_export(&api, &gens, &token).await;
        hostile(&api, &token).await;
        see_own(&api, &gens).await;
        api.stop().await;
        eprintln!("{backend:?}: ok");
    }
}

#[tokio::test]
async fn no_key_no_calls() {
    let api = TestApi::start(Backend::Sqlite).await;
    for path in [
        "/v1/calls",
        "/v1/calls.csv",
        "/v1/calls/1",
        "/v1/records/contact/1/calls",
    ] {
        let resp = api.http.get(api.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 401, "{path}");
    }
    api.stop().await;
}
