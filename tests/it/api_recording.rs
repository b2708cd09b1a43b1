//! `/v1/calls/{id}/recording` through a real HTTP client on every database:
//! full and ranged GETs, If-Range, HEAD, the audit, listen and download
//! permissions, see-own isolation, signed links, and uploads, on the local
//! backend and the share backend (S3 with Garage only when
//! `PBXBRIDGE_GARAGE` is set; the test says so when it is not).

use std::path::{Path, PathBuf};

use pbxbridge::config::StorageBackend;
use pbxbridge::db::call_lookup::CallSelector;
use pbxbridge::db::{Backend, Db, DbTime};
use pbxbridge::report::{RecordingReport, RecordingStatus};
use pbxbridge::time::Timestamp;
use reqwest::StatusCode;
use sha2::{Digest, Sha256};

use crate::api_support::TestApi;
use crate::db_support::{self, answered_call, ALL};

/// A stereo 16-bit WAV of `secs` seconds of a 440 Hz tone at `rate`.
pub fn tone_wav(secs: f64, rate: u32) -> Vec<u8> {
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut out = std::io::Cursor::new(Vec::new());
    let mut w = hound::WavWriter::new(&mut out, spec).unwrap();
    let frames = (secs * f64::from(rate)).round() as u64;
    for i in 0..frames {
        let t = i as f64 / f64::from(rate);
        let s = ((t * 440.0 * std::f64::consts::TAU).sin() * 8000.0) as i16;
        w.write_sample(s).unwrap();
        w.write_sample(s / 2).unwrap();
    }
    w.finalize().unwrap();
    out.into_inner()
}

fn sha_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub const STARTED: i64 = 1_700_000_000;

/// `{yyyy}/{mm}/{dd}` of STARTED.
const DAY: &str = "2023/11/14";

/// Writes an answered call (6 s of talk) whose recording is `rec`; its row id.
pub async fn add_call(api: &TestApi, call_id: &str, rec: RecordingReport) -> i64 {
    let mut call = answered_call(
        call_id,
        pbxbridge::call::Direction::Incoming,
        "+14155551212",
        None,
        STARTED,
    );
    call.ended_at = Timestamp::from_secs(STARTED + 8);
    call.duration = 6.0;
    call.recording = rec;
    api.db
        .upsert_calls(&api.cfg.pbx.sensor, &[call])
        .await
        .unwrap();
    let found = api
        .db
        .find_call(&CallSelector::Key {
            sensor: api.cfg.pbx.sensor.clone(),
            call_id: call_id.into(),
        })
        .await
        .unwrap()
        .unwrap();
    found.row
}

fn stored_file(path: &Path, bytes: &[u8]) -> RecordingReport {
    RecordingReport {
        status: RecordingStatus::Stored,
        path: Some(path.display().to_string()),
        backend: None,
        key: None,
        sha256: None,
        codec: Some("PCMU".into()),
        sample_rate: Some(8000),
        channels: Some(2),
        samples: None,
        bytes: Some(bytes.len() as u64),
        detail: None,
    }
}

/// A call whose WAV is a file in recording.dir (the local backend).
pub async fn local_call(api: &TestApi, call_id: &str, wav: &[u8]) -> i64 {
    local_call_as(api, call_id, wav, "wav").await
}

/// A call whose recording is a file `{call_id}.{ext}` in recording.dir.
pub async fn local_call_as(api: &TestApi, call_id: &str, bytes: &[u8], ext: &str) -> i64 {
    let path = api
        .cfg
        .recording
        .dir
        .join(DAY)
        .join(format!("{call_id}.{ext}"));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, bytes).unwrap();
    add_call(api, call_id, stored_file(&path, bytes)).await
}

/// A call whose WAV is in the share (as the uploader leaves it).
async fn share_call(api: &TestApi, share: &Path, call_id: &str, wav: &[u8]) -> i64 {
    let key = format!("recordings/{DAY}/{call_id}.wav");
    let path = share.join(&key);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, wav).unwrap();
    let mut rec = stored_file(&api.cfg.recording.dir.join("gone.wav"), wav);
    rec.status = RecordingStatus::Pending;
    rec.backend = Some("share".into());
    rec.key = Some(key.clone());
    let row = add_call(api, call_id, rec).await;
    let n = api
        .db
        .mark_stored(
            &key,
            "share",
            wav.len() as u64,
            &sha_hex(wav),
            DbTime(Timestamp::now()),
        )
        .await
        .unwrap();
    assert_eq!(n, 1);
    row
}

async fn set_agent(db: &Db, row: i64, agent: &str) {
    db_support::exec(
        db,
        &db.sql(&format!(
            "UPDATE {{calls}} SET agent_id = '{agent}' WHERE id = {row}"
        )),
    )
    .await;
}

/// A key's id and token.
async fn key_of(api: &TestApi, role: &str, agent: Option<&str>) -> (i64, String) {
    key(api, role, agent).await
}

pub async fn key(api: &TestApi, role: &str, agent: Option<&str>) -> (i64, String) {
    let (k, t) = api
        .db
        .create_api_key(&format!("t-{role}"), role, agent, None)
        .await
        .unwrap();
    (k.id, t.0)
}

pub async fn audit(api: &TestApi, row: i64) -> Vec<pbxbridge::db::recording_access::AccessRow> {
    api.db.recording_accesses(row, 1000).await.unwrap()
}

fn h(resp: &reqwest::Response, name: &str) -> String {
    resp.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// Everything a player and an auditor see, for the call `row` whose
/// recording is `wav`.
async fn check_playback(api: &TestApi, row: i64, wav: &[u8], what: &str) {
    let len = wav.len();
    let path = format!("/v1/calls/{row}/recording");
    let (sup_id, sup) = key(api, "supervisor", None).await;
    let (agent_id, agent) = key(api, "agent", Some("u1")).await;
    let (_, other_agent) = key(api, "agent", Some("u2")).await;
    let (_, ops) = key(api, "ops", None).await;
    set_agent(&api.db, row, "u1").await;
    let mut gets = 0usize;

    // The whole file.
    let resp = api.get(&path, &sup).send().await.unwrap();
    gets += 1;
    assert_eq!(resp.status(), 200, "{what}");
    assert_eq!(h(&resp, "accept-ranges"), "bytes", "{what}");
    assert_eq!(h(&resp, "content-type"), "audio/wav", "{what}");
    assert_eq!(h(&resp, "content-length"), len.to_string(), "{what}");
    assert_eq!(h(&resp, "cache-control"), "private", "{what}");
    assert!(!h(&resp, "last-modified").is_empty(), "{what}");
    let disposition = h(&resp, "content-disposition");
    assert!(disposition.starts_with("inline"), "{what}: {disposition}");
    let etag = h(&resp, "etag");
    assert!(
        etag.starts_with('"') && etag.ends_with('"') && etag.len() > 4,
        "{what}: {etag}"
    );
    assert_eq!(resp.bytes().await.unwrap().as_ref(), wav, "{what}");

    // Ranges: a-b, a-, -n; past the end.
    for (range, from, to) in [
        ("bytes=10-99", 10, 99),
        ("bytes=100-", 100, len - 1),
        ("bytes=-50", len - 50, len - 1),
        ("bytes=5-99999999", 5, len - 1),
    ] {
        let resp = api
            .get(&path, &sup)
            .header("range", range)
            .send()
            .await
            .unwrap();
        gets += 1;
        assert_eq!(resp.status(), 206, "{what} {range}");
        assert_eq!(
            h(&resp, "content-range"),
            format!("bytes {from}-{to}/{len}"),
            "{what} {range}"
        );
        assert_eq!(h(&resp, "etag"), etag, "{what}");
        assert_eq!(
            resp.bytes().await.unwrap().as_ref(),
            &wav[from..=to],
            "{what} {range}"
        );
    }
    let resp = api
        .get(&path, &sup)
        .header("range", format!("bytes={len}-"))
        .send()
        .await
        .unwrap();
    gets += 1;
    assert_eq!(resp.status(), 416, "{what}");
    assert_eq!(
        h(&resp, "content-range"),
        format!("bytes */{len}"),
        "{what}"
    );

    // If-Range: the current ETag gets the range, another the whole file.
    let resp = api
        .get(&path, &sup)
        .header("range", "bytes=0-9")
        .header("if-range", &etag)
        .send()
        .await
        .unwrap();
    gets += 1;
    assert_eq!(resp.status(), 206, "{what}");
    assert_eq!(resp.bytes().await.unwrap().as_ref(), &wav[..10], "{what}");
    let resp = api
        .get(&path, &sup)
        .header("range", "bytes=0-9")
        .header("if-range", "\"not-it\"")
        .send()
        .await
        .unwrap();
    gets += 1;
    assert_eq!(resp.status(), 200, "{what}");
    assert_eq!(resp.bytes().await.unwrap().len(), len, "{what}");

    // HEAD: the same headers, no body, no audit row.
    let resp = api
        .http
        .head(api.url(&path))
        .bearer_auth(&sup)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{what}");
    assert_eq!(h(&resp, "etag"), etag, "{what}");
    assert_eq!(h(&resp, "content-length"), len.to_string(), "{what}");
    assert_eq!(h(&resp, "content-type"), "audio/wav", "{what}");
    assert!(resp.bytes().await.unwrap().is_empty(), "{what}");
    let resp = api
        .http
        .head(api.url(&path))
        .bearer_auth(&sup)
        .header("range", "bytes=0-9")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 206, "{what}");
    assert_eq!(h(&resp, "content-range"), format!("bytes 0-9/{len}"));

    // Listen and download.
    let resp = api.get(&path, &agent).send().await.unwrap();
    gets += 1;
    assert_eq!(resp.status(), 200, "{what}");
    let resp = api
        .get(&format!("{path}?download=1"), &agent)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403, "{what}");
    let resp = api
        .get(&format!("{path}?download=1"), &sup)
        .send()
        .await
        .unwrap();
    gets += 1;
    assert_eq!(resp.status(), 200, "{what}");
    let disposition = h(&resp, "content-disposition");
    assert!(
        disposition.starts_with("attachment; filename=\"")
            && disposition.ends_with("-20231114T221320Z.wav\""),
        "{what}: {disposition}"
    );
    assert!(disposition.is_ascii());
    let resp = api
        .get(&format!("{path}?download=maybe"), &sup)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400, "{what}");
    // Another agent's key does not learn the call exists; ops may not listen.
    let resp = api.get(&path, &other_agent).send().await.unwrap();
    assert_eq!(resp.status(), 404, "{what}");
    let resp = api.get(&path, &ops).send().await.unwrap();
    assert_eq!(resp.status(), 403, "{what}");
    let resp = api.http.get(api.url(&path)).send().await.unwrap();
    assert_eq!(resp.status(), 401, "{what}");

    // The audit: one row per GET that was answered with audio (or 416).
    let rows = audit(api, row).await;
    assert_eq!(rows.len(), gets, "{what}: {rows:?}");
    let full = &rows[0];
    assert_eq!(
        (full.http_status, full.bytes, full.range_start, full.key_id),
        (200, len as i64, None, sup_id),
        "{what}"
    );
    assert_eq!(full.access, "listen");
    let ranged = &rows[1];
    assert_eq!(
        (
            ranged.http_status,
            ranged.range_start,
            ranged.range_end,
            ranged.bytes
        ),
        (206, Some(10), Some(99), 90),
        "{what}"
    );
    assert_eq!(rows[5].http_status, 416, "{what}");
    assert!(rows
        .iter()
        .any(|r| r.key_id == agent_id && r.access == "listen"));
    assert_eq!(rows.last().unwrap().access, "download", "{what}");

    check_links(api, row, wav, what, (agent_id, &agent), &sup).await;
}

async fn make_link(
    api: &TestApi,
    row: i64,
    token: &str,
    body: serde_json::Value,
) -> reqwest::Response {
    api.http
        .post(api.url(&format!("/v1/calls/{row}/recording/link")))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

pub async fn link_url(api: &TestApi, row: i64, token: &str, body: serde_json::Value) -> String {
    let resp = make_link(api, row, token, body).await;
    assert_eq!(resp.status(), 200);
    let made: serde_json::Value = resp.json().await.unwrap();
    assert!(made["expires_at"].as_str().unwrap().ends_with('Z'));
    made["url"].as_str().unwrap().to_owned()
}

async fn check_links(
    api: &TestApi,
    row: i64,
    wav: &[u8],
    what: &str,
    (agent_id, agent): (i64, &str),
    sup: &str,
) {
    let before = audit(api, row).await.len();
    let url = link_url(api, row, agent, serde_json::json!({})).await;
    assert!(
        url.starts_with(&format!("/v1/calls/{row}/recording?")),
        "{url}"
    );
    // No bearer header: the signature is the key.
    let resp = api.http.get(api.url(&url)).send().await.unwrap();
    assert_eq!(resp.status(), 200, "{what}");
    assert!(h(&resp, "content-disposition").starts_with("inline"));
    assert_eq!(resp.bytes().await.unwrap().as_ref(), wav, "{what}");
    let resp = api
        .http
        .get(api.url(&url))
        .header("range", "bytes=44-")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 206, "{what}");
    let rows = audit(api, row).await;
    assert_eq!(rows.len(), before + 2, "{what}");
    assert!(rows[before..].iter().all(|r| r.key_id == agent_id));
    // A listen link does not download; the agent may not make a download link.
    let resp = api
        .http
        .get(api.url(&format!("{url}&download=1")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403, "{what}");
    let resp = make_link(api, row, agent, serde_json::json!({"access": "download"})).await;
    assert_eq!(resp.status(), 403, "{what}");
    let resp = make_link(api, row, agent, serde_json::json!({"expires_in": 999_999})).await;
    assert_eq!(resp.status(), 400, "{what}");
    let resp = make_link(api, row, agent, serde_json::json!({"colour": 1})).await;
    assert_eq!(resp.status(), 400, "{what}");
    // A supervisor's download link is an attachment.
    let dl = link_url(
        api,
        row,
        sup,
        serde_json::json!({"access": "download", "expires_in": 60}),
    )
    .await;
    let resp = api.http.get(api.url(&dl)).send().await.unwrap();
    assert_eq!(resp.status(), 200, "{what}");
    assert!(h(&resp, "content-disposition").starts_with("attachment"));

    // Tampered: another call, another access, another expiry, another signature.
    let other_call = url.replacen(
        &format!("/calls/{row}/"),
        &format!("/calls/{}/", row + 1000),
        1,
    );
    let other_access = url.replace("access=listen", "access=download");
    let later = url.replace("&expires=", "&expires=9");
    let mut bad_sig = url.clone();
    let last = bad_sig.pop().unwrap();
    bad_sig.push(if last == '0' { '1' } else { '0' });
    for bad in [&other_call, &other_access, &later, &bad_sig] {
        let resp = api.http.get(api.url(bad)).send().await.unwrap();
        assert_eq!(resp.status(), 401, "{what}: {bad}");
        let p: serde_json::Value = resp.json().await.unwrap();
        assert!(p["detail"].as_str().unwrap().contains("link"), "{p}");
    }
    // Expired.
    let short = link_url(api, row, agent, serde_json::json!({"expires_in": 1})).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let resp = api.http.get(api.url(&short)).send().await.unwrap();
    assert_eq!(resp.status(), 401, "{what}");
    let p: serde_json::Value = resp.json().await.unwrap();
    assert!(p["detail"].as_str().unwrap().contains("expired"), "{p}");
    // The signing key revoked: its links stop working.
    assert!(api.db.revoke_api_key(&agent_id.to_string()).await.unwrap());
    let resp = api.http.get(api.url(&url)).send().await.unwrap();
    assert_eq!(resp.status(), 401, "{what}");
    let p: serde_json::Value = resp.json().await.unwrap();
    assert!(p["detail"].as_str().unwrap().contains("revoked"), "{p}");
}

#[tokio::test]
async fn recordings_play_with_ranges_links_and_an_audit() {
    let wav = tone_wav(1.0, 8000);
    for backend in ALL {
        // Local backend: the file in recording.dir.
        let api = TestApi::start(backend).await;
        let row = local_call(&api, "loc@host", &wav).await;
        check_playback(&api, row, &wav, &format!("{backend:?} local")).await;

        // A pending recording (still in recording.dir, waiting for the
        // share) plays from there; missing, failed and expired ones are 404s.
        let pending = api.cfg.recording.dir.join(DAY).join("pend@host.wav");
        std::fs::write(&pending, &wav).unwrap();
        let mut rec = stored_file(&pending, &wav);
        rec.status = RecordingStatus::Pending;
        rec.backend = Some("share".into());
        rec.key = Some(format!("recordings/{DAY}/pend@host.wav"));
        let prow = add_call(&api, "pend@host", rec).await;
        let (_, sup) = key(&api, "supervisor", None).await;
        let resp = api
            .get(&format!("/v1/calls/{prow}/recording"), &sup)
            .header("range", "bytes=0-3")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 206, "{backend:?}");
        assert_eq!(resp.bytes().await.unwrap().as_ref(), b"RIFF");
        for (status, word) in [
            (RecordingStatus::Expired, "expired"),
            (RecordingStatus::Failed, "failed"),
            (RecordingStatus::None, "none"),
        ] {
            let row = add_call(
                &api,
                &format!("{word}@host"),
                RecordingReport::without_file(status, None),
            )
            .await;
            let (s, body) = api
                .get_json(&format!("/v1/calls/{row}/recording"), &sup)
                .await;
            assert_eq!(s, 404, "{backend:?}");
            assert!(body["detail"].as_str().unwrap().contains(word), "{body}");
        }
        // A stored row whose file is gone, or whose path leads outside.
        let gone = add_call(
            &api,
            "gone@host",
            stored_file(&api.cfg.recording.dir.join("nothere.wav"), &wav),
        )
        .await;
        let (s, _) = api
            .get_json(&format!("/v1/calls/{gone}/recording"), &sup)
            .await;
        assert_eq!(s, 404);
        let outside = api.dir.path().join("outside.wav");
        std::fs::write(&outside, &wav).unwrap();
        let out = add_call(&api, "out@host", stored_file(&outside, &wav)).await;
        let (s, _) = api
            .get_json(&format!("/v1/calls/{out}/recording"), &sup)
            .await;
        assert_eq!(s, 404, "a path outside recording.dir was served");
        api.stop().await;

        // Share backend: the object in the mounted folder.
        let share = tempfile::tempdir().unwrap();
        let share_path = share.path().to_path_buf();
        let api = TestApi::start_with(backend, |c| {
            c.storage.backend = StorageBackend::Share;
            c.storage.path = Some(share_path.clone());
        })
        .await;
        let row = share_call(&api, share.path(), "shr@host", &wav).await;
        check_playback(&api, row, &wav, &format!("{backend:?} share")).await;
        // The ETag is the stored SHA-256's.
        let (_, sup) = key(&api, "supervisor", None).await;
        let resp = api
            .get(&format!("/v1/calls/{row}/recording"), &sup)
            .send()
            .await
            .unwrap();
        assert_eq!(h(&resp, "etag"), format!("\"{}\"", &sha_hex(&wav)[..32]));
        api.stop().await;
    }
    s3_case().await;
}

/// A call whose recording the uploader stored in S3 under `key`.
async fn s3_call(api: &TestApi, call_id: &str, key: &str, wav: &[u8]) -> i64 {
    let mut rec = stored_file(&api.cfg.recording.dir.join("spooled.wav"), wav);
    rec.status = RecordingStatus::Pending;
    rec.backend = Some("s3".into());
    rec.key = Some(key.to_owned());
    let row = add_call(api, call_id, rec).await;
    api.db
        .mark_stored(
            key,
            "s3",
            wav.len() as u64,
            &sha_hex(wav),
            DbTime(Timestamp::now()),
        )
        .await
        .unwrap();
    row
}

/// S3 through Garage, when `PBXBRIDGE_GARAGE` names the binary.
async fn s3_case() {
    if std::env::var_os("PBXBRIDGE_GARAGE").is_none() {
        eprintln!(
            "api_recording: the S3 case did NOT run: PBXBRIDGE_GARAGE is unset \
             (scripts/test.sh sets it); the local and share cases ran"
        );
        return;
    }
    let garage = crate::store_support::Garage::start().await;
    let storage_cfg = garage.storage_config("recordings");
    let wav = tone_wav(1.0, 8000);
    let api = TestApi::start_with(Backend::Sqlite, |c| c.storage = storage_cfg.clone()).await;
    let storage = pbxbridge::store::Storage::from_config(&storage_cfg)
        .unwrap()
        .unwrap();
    let key = format!("recordings/{DAY}/s3@host.wav");
    storage
        .object_store()
        .put(
            &object_store::path::Path::from(key.as_str()),
            wav.clone().into(),
        )
        .await
        .unwrap();
    let row = s3_call(&api, "s3@host", &key, &wav).await;
    check_playback(&api, row, &wav, "s3").await;
    api.stop().await;

    // `[api] s3_redirect`: 302 to a presigned URL the browser fetches itself.
    let api = TestApi::start_with(Backend::Sqlite, |c| {
        c.storage = storage_cfg.clone();
        c.api.as_mut().unwrap().s3_redirect = true;
    })
    .await;
    let row = s3_call(&api, "s3-redirect@host", &key, &wav).await;
    let (_, sup) = key_of(&api, "supervisor", None).await;
    let no_follow = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = no_follow
        .get(api.url(&format!("/v1/calls/{row}/recording")))
        .bearer_auth(&sup)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    let location = h(&resp, "location");
    assert!(location.contains("X-Amz-Signature"), "{location}");
    let body = reqwest::get(&location)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(
        body.as_ref(),
        wav.as_slice(),
        "the presigned URL serves the recording"
    );
    let rows = audit(&api, row).await;
    assert!(rows.iter().any(|r| r.http_status == 302), "{rows:?}");
    api.stop().await;
}

// ---- uploads ----

/// A tiny MP3 made by hand (no ffmpeg here): an ID3v2 header and ten
/// MPEG-1 Layer III frames (128 kbit/s, 44.1 kHz) of silence.
pub fn tiny_mp3() -> Vec<u8> {
    let mut out = b"ID3\x04\x00\x00\x00\x00\x00\x00".to_vec();
    for _ in 0..10 {
        out.extend_from_slice(&[0xFF, 0xFB, 0x90, 0x00]);
        out.extend(std::iter::repeat_n(0u8, 417 - 4));
    }
    out
}

/// The Ogg CRC (polynomial 0x04c11db7, no reflection).
fn ogg_crc(data: &[u8]) -> u32 {
    let mut crc = 0u32;
    for &b in data {
        crc ^= u32::from(b) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04c1_1db7
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// A hand-made Ogg/Opus stream's first page: the OpusHead header, with a
/// correct page CRC (no audio pages: the type check reads the header).
pub fn tiny_ogg_opus() -> Vec<u8> {
    let mut head = b"OpusHead".to_vec();
    head.push(1); // version
    head.push(2); // channels
    head.extend_from_slice(&312u16.to_le_bytes()); // pre-skip
    head.extend_from_slice(&48_000u32.to_le_bytes());
    head.extend_from_slice(&0i16.to_le_bytes()); // gain
    head.push(0); // mapping family
    let mut page = b"OggS".to_vec();
    page.push(0); // version
    page.push(0x02); // beginning of stream
    page.extend_from_slice(&0u64.to_le_bytes()); // granule
    page.extend_from_slice(&0x5042_5842u32.to_le_bytes()); // serial
    page.extend_from_slice(&0u32.to_le_bytes()); // sequence
    page.extend_from_slice(&0u32.to_le_bytes()); // crc, filled below
    page.push(1);
    page.push(head.len() as u8);
    page.extend_from_slice(&head);
    let crc = ogg_crc(&page);
    page[22..26].copy_from_slice(&crc.to_le_bytes());
    page
}

async fn upload(
    api: &TestApi,
    row: i64,
    token: &str,
    bytes: Vec<u8>,
    name: &str,
    query: &str,
) -> (u16, serde_json::Value) {
    let part = reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned());
    let form = reqwest::multipart::Form::new()
        .text("note", "ignored")
        .part("file", part);
    let resp = api
        .http
        .post(api.url(&format!("/v1/calls/{row}/recording{query}")))
        .bearer_auth(token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    let s = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        s,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}

/// Every file under `dir` (the upload folder's temp files included).
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

async fn status_of(db: &Db, row: i64) -> String {
    db_support::strings(
        db,
        &format!("SELECT recording_status FROM {{calls}} WHERE id = {row}"),
    )
    .await
    .remove(0)
}

async fn check_uploads(api: &TestApi, stored_in: &Path, what: &str) {
    let (_, int) = key(api, "integration", None).await;
    let (_, sup) = key(api, "supervisor", None).await;
    let row = add_call(
        api,
        "up@host",
        RecordingReport::without_file(RecordingStatus::None, None),
    )
    .await;
    let wav = tone_wav(0.5, 8000);

    // Refused without writing anything: no permission, not audio, too big.
    let (s, _) = upload(api, row, &sup, wav.clone(), "a.wav", "").await;
    assert_eq!(s, 403, "{what}");
    let (s, body) = upload(
        api,
        row,
        &int,
        b"just some text, not audio at all".to_vec(),
        "a.wav",
        "",
    )
    .await;
    assert_eq!(s, 415, "{what}: {body}");
    assert_eq!(body["status"], 415);
    let big = tone_wav(70.0, 8000); // 2.2 MB, over the 1 MiB cap
    let (s, body) = upload(api, row, &int, big.clone(), "big.wav", "").await;
    assert_eq!(s, 413, "{what}: {body}");
    // Just over the cap: refused while streaming, not by its Content-Length.
    let mut edge = tone_wav(34.0, 8000);
    edge.truncate(1024 * 1024 + 4096);
    let (s, body) = upload(api, row, &int, edge, "edge.wav", "").await;
    assert_eq!(s, 413, "{what}: {body}");
    let (s, _) = upload(api, row, &int, wav.clone(), "a.wav", "?replace=perhaps").await;
    assert_eq!(s, 400, "{what}");
    assert_eq!(status_of(&api.db, row).await, "none", "{what}");
    assert!(
        files_under(stored_in).is_empty(),
        "{what}: {:?}",
        files_under(stored_in)
    );
    assert!(
        files_under(&api.cfg.recording.dir).is_empty(),
        "{what}: {:?}",
        files_under(&api.cfg.recording.dir)
    );

    // A WAV is stored and plays back byte for byte.
    let (s, body) = upload(api, row, &int, wav.clone(), "a.wav", "").await;
    assert_eq!(s, 201, "{what}: {body}");
    assert_eq!(body["format"], "wav");
    assert_eq!(body["bytes"], wav.len());
    assert_eq!(body["sha256"], sha_hex(&wav));
    assert_eq!(status_of(&api.db, row).await, "stored", "{what}");
    let resp = api
        .get(&format!("/v1/calls/{row}/recording"), &sup)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(h(&resp, "content-type"), "audio/wav");
    assert_eq!(
        resp.bytes().await.unwrap().as_ref(),
        wav.as_slice(),
        "{what}"
    );
    let files = files_under(stored_in);
    assert_eq!(files.len(), 1, "{what}: {files:?}");
    assert!(
        files[0].ends_with(format!("{DAY}/up@host.wav")),
        "{files:?}"
    );

    // Again: 409, unless replace=true; an MP3 then takes its place.
    let (s, _) = upload(api, row, &int, wav.clone(), "a.wav", "").await;
    assert_eq!(s, 409, "{what}");
    let mp3 = tiny_mp3();
    let (s, body) = upload(api, row, &int, mp3.clone(), "b.bin", "?replace=true").await;
    assert_eq!(s, 200, "{what}: {body}");
    assert_eq!(body["replaced"], true);
    let resp = api
        .get(&format!("/v1/calls/{row}/recording?download=1"), &sup)
        .send()
        .await
        .unwrap();
    assert_eq!(h(&resp, "content-type"), "audio/mpeg");
    assert!(h(&resp, "content-disposition").ends_with(".mp3\""));
    assert_eq!(resp.bytes().await.unwrap().as_ref(), mp3.as_slice());
    let files = files_under(stored_in);
    assert_eq!(
        files.len(),
        1,
        "{what}: the replaced WAV is left: {files:?}"
    );
    assert!(
        files[0].ends_with(format!("{DAY}/up@host.mp3")),
        "{files:?}"
    );

    // Ogg/Opus on another call.
    let row2 = add_call(
        api,
        "ogg@host",
        RecordingReport::without_file(RecordingStatus::NoAudio, None),
    )
    .await;
    let ogg = tiny_ogg_opus();
    let (s, body) = upload(api, row2, &int, ogg.clone(), "c.opus", "").await;
    assert_eq!(s, 201, "{what}: {body}");
    let resp = api
        .get(&format!("/v1/calls/{row2}/recording"), &sup)
        .send()
        .await
        .unwrap();
    assert_eq!(h(&resp, "content-type"), "audio/ogg");
    assert_eq!(resp.bytes().await.unwrap().as_ref(), ogg.as_slice());
    // No temporary file is left behind.
    let temp = api.cfg.recording.dir.join(".upload");
    assert!(files_under(&temp).is_empty(), "{:?}", files_under(&temp));
}

#[tokio::test]
async fn uploads_are_checked_stored_and_replaced() {
    eprintln!(
        "api_recording: the MP3 and Ogg/Opus uploads are hand-made files (no ffmpeg): \
         an ID3 header with silent MPEG frames, and an OpusHead page with its CRC"
    );
    for backend in ALL {
        let api = TestApi::start_with(backend, |c| {
            if let Some(a) = c.api.as_mut() {
                a.max_upload_mib = 1;
            }
        })
        .await;
        let dir = api.cfg.recording.dir.clone();
        check_uploads(&api, &dir, &format!("{backend:?} local")).await;
        api.stop().await;

        let share = tempfile::tempdir().unwrap();
        let share_path = share.path().to_path_buf();
        let api = TestApi::start_with(backend, |c| {
            c.storage.backend = StorageBackend::Share;
            c.storage.path = Some(share_path.clone());
            if let Some(a) = c.api.as_mut() {
                a.max_upload_mib = 1;
            }
        })
        .await;
        check_uploads(&api, share.path(), &format!("{backend:?} share")).await;
        api.stop().await;
    }
}

#[tokio::test]
async fn a_missing_call_is_a_problem() {
    // The problem bodies of this route are problem+json like every other.
    let api = TestApi::start(Backend::Sqlite).await;
    let (_, sup) = key(&api, "supervisor", None).await;
    let resp = api
        .get("/v1/calls/999999/recording", &sup)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(h(&resp, "content-type"), "application/problem+json");
    api.stop().await;
}
