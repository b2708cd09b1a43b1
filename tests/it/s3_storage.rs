//! Recording storage against a real S3 server (Garage, tests/store_support):
//! uploads, downloads, ranges, presigned links, refusals and config checks.

use crate::db_support;
use crate::store_support;

use object_store::{ObjectStore, PutPayload};
use std::time::Duration;

use pbxbridge::store::Storage;
use store_support::Garage;

fn open(g: &Garage, prefix: &str) -> Storage {
    Storage::from_config(&g.storage_config(prefix))
        .expect("open the s3 storage")
        .expect("the s3 backend gives a Storage")
}

/// Bytes that differ at every offset, so a shifted range shows.
fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i % 251) as u8 ^ (i / 251) as u8)
        .collect()
}

#[tokio::test]
async fn put_get_and_ranges_roundtrip() {
    let g = Garage::start().await;
    let st = open(&g, "rec");
    let key = st.key_for(std::path::Path::new("2024/05/06/abc@host.wav"));
    assert_eq!(key.as_ref(), "rec/2024/05/06/abc@host.wav");
    let data = pattern(10_000);
    st.object_store()
        .put(&key, PutPayload::from(data.clone()))
        .await
        .expect("put");
    let got = st
        .object_store()
        .get(&key)
        .await
        .expect("get")
        .bytes()
        .await
        .expect("body");
    assert_eq!(got.as_ref(), data.as_slice());
    let part = st
        .object_store()
        .get_range(&key, 100..200)
        .await
        .expect("get_range");
    assert_eq!(part.as_ref(), &data[100..200]);
    let meta = st.object_store().head(&key).await.expect("head");
    assert_eq!(meta.size, 10_000);
}

#[tokio::test]
async fn multipart_upload_of_a_few_mib() {
    let g = Garage::start().await;
    let st = open(&g, "rec");
    let key = st.key_for(std::path::Path::new("2024/05/06/big.wav"));
    // 12 MiB in 5 MiB parts (S3's smallest): three parts, the last short.
    let data = pattern(12 * 1024 * 1024 + 17);
    let upload = st
        .object_store()
        .put_multipart(&key)
        .await
        .expect("start multipart");
    let mut w = object_store::WriteMultipart::new(upload);
    for chunk in data.chunks(1024 * 1024) {
        w.write(chunk);
    }
    w.finish().await.expect("finish multipart");
    let got = st
        .object_store()
        .get(&key)
        .await
        .expect("get")
        .bytes()
        .await
        .expect("body");
    assert_eq!(got.len(), data.len());
    assert!(
        got.as_ref() == data.as_slice(),
        "multipart object differs from what was written"
    );
    let tail = st
        .object_store()
        .get_range(&key, (data.len() as u64 - 1000)..data.len() as u64)
        .await
        .expect("tail range");
    assert_eq!(tail.as_ref(), &data[data.len() - 1000..]);
}

async fn http_get(url: &str, range: Option<&str>) -> reqwest::Response {
    let client = reqwest::Client::new();
    let mut req = client.get(url);
    if let Some(r) = range {
        req = req.header("Range", r);
    }
    req.send().await.expect("HTTP GET of the presigned URL")
}

#[tokio::test]
async fn presigned_get_serves_ranges_and_expires() {
    let g = Garage::start().await;
    let st = open(&g, "rec");
    let key = st.key_for(std::path::Path::new("2024/05/06/link.wav"));
    let data = pattern(4096);
    st.object_store()
        .put(&key, PutPayload::from(data.clone()))
        .await
        .expect("put");
    let url = st
        .presigned_get(key.as_ref(), Duration::from_secs(300))
        .await
        .expect("presign");
    assert!(url.starts_with(&g.endpoint()), "{url}");
    assert!(
        !url.contains(&g.secret),
        "the secret must not be in the URL"
    );

    let whole = http_get(&url, None).await;
    assert_eq!(whole.status().as_u16(), 200);
    assert_eq!(whole.bytes().await.expect("body").as_ref(), data.as_slice());

    let part = http_get(&url, Some("bytes=100-199")).await;
    assert_eq!(part.status().as_u16(), 206);
    assert_eq!(
        part.headers()
            .get("content-range")
            .and_then(|v| v.to_str().ok()),
        Some("bytes 100-199/4096")
    );
    assert_eq!(part.bytes().await.expect("body").as_ref(), &data[100..200]);

    // A link signed for one second, used after it ran out.
    let short = st
        .presigned_get(key.as_ref(), Duration::from_secs(1))
        .await
        .expect("presign");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let late = http_get(&short, None).await;
    let status = late.status().as_u16();
    let body = late.text().await.unwrap_or_default();
    // Garage says 400 (AWS 403); either way a refusal that names the expiry.
    assert!(
        matches!(status, 400 | 403),
        "an expired link must be refused, got {status}: {body}"
    );
    let lower = body.to_lowercase();
    // Garage: "Date is too old"; AWS: "Request has expired".
    assert!(
        lower.contains("expire") || lower.contains("too old"),
        "{status}: {body}"
    );
}

#[tokio::test]
async fn wrong_secret_is_refused_not_unavailable() {
    let g = Garage::start().await;
    let mut cfg = g.storage_config("rec");
    cfg.s3.secret_access_key = "0".repeat(64);
    let st = Storage::from_config(&cfg).expect("open").expect("s3");
    let key = st.key_for(std::path::Path::new("2024/05/06/x.wav"));
    let err = st
        .object_store()
        .put(&key, PutPayload::from(vec![1u8; 10]))
        .await
        .expect_err("a wrong secret must be refused");
    let err = st.op_error("upload", key.as_ref(), err);
    assert!(
        !err.is_unavailable(),
        "a refused signature is not an outage: {err}"
    );

    // An unknown bucket is a refusal too.
    let mut cfg = g.storage_config("rec");
    cfg.s3.bucket = "no-such-bucket".into();
    let st = Storage::from_config(&cfg).expect("open").expect("s3");
    let err = st
        .object_store()
        .put(&key, PutPayload::from(vec![1u8; 10]))
        .await
        .expect_err("an unknown bucket must be refused");
    let err = st.op_error("upload", key.as_ref(), err);
    assert!(
        !err.is_unavailable(),
        "a missing bucket is not an outage: {err}"
    );
}

#[tokio::test]
async fn a_stopped_server_is_unavailable_and_comes_back() {
    let mut g = Garage::start().await;
    let st = open(&g, "rec");
    let key = st.key_for(std::path::Path::new("2024/05/06/outage.wav"));
    st.object_store()
        .put(&key, PutPayload::from(pattern(1000)))
        .await
        .expect("put before the outage");
    g.stop().await;
    let err = st
        .object_store()
        .head(&key)
        .await
        .expect_err("a stopped server cannot answer");
    let err = st.op_error("head", key.as_ref(), err);
    assert!(err.is_unavailable(), "a stopped server is an outage: {err}");
    g.restart().await;
    let got = st
        .object_store()
        .get(&key)
        .await
        .expect("get after restart");
    assert_eq!(
        got.bytes().await.expect("body").as_ref(),
        pattern(1000).as_slice()
    );
}

fn storage_toml(s3: &str) -> Result<pbxbridge::config::Config, pbxbridge::config::ConfigError> {
    let text = format!("[storage]\nbackend = \"s3\"\n[storage.s3]\nbucket = \"b\"\n{s3}\n");
    pbxbridge::config::Config::parse(&text, std::path::Path::new("test.toml"))
}

#[test]
fn config_checks_name_the_key() {
    let bad_scheme = storage_toml("endpoint = \"ftp://10.0.0.5:3900\"").expect_err("ftp endpoint");
    let text = bad_scheme.to_string();
    assert!(text.contains("storage.s3.endpoint"), "{text}");
    assert!(text.contains("https://"), "{text}");

    let plain =
        storage_toml("endpoint = \"http://10.0.0.5:3900\"").expect_err("http without allow_http");
    let text = plain.to_string();
    assert!(text.contains("storage.s3.endpoint"), "{text}");
    assert!(text.contains("allow_http"), "{text}");

    let ok = storage_toml("endpoint = \"http://10.0.0.5:3900\"\nallow_http = true")
        .expect("http with allow_http");
    assert!(ok.storage.s3.allow_http);
    assert!(
        !ok.storage.s3.virtual_hosted_style,
        "path-style is the default"
    );

    let no_bucket = pbxbridge::config::Config::parse(
        "[storage]\nbackend = \"s3\"\n",
        std::path::Path::new("test.toml"),
    )
    .expect_err("no bucket");
    assert!(
        no_bucket.to_string().contains("storage.s3.bucket"),
        "{no_bucket}"
    );

    let kms = storage_toml("sse = \"aws:kms\"").expect_err("kms without key id");
    assert!(kms.to_string().contains("storage.s3.kms_key_id"), "{kms}");
}

#[tokio::test]
async fn virtual_hosted_style_builds_bucket_host_urls() {
    // Garage answers path-style here (no wildcard DNS); check the URL shape only.
    let g = Garage::start().await;
    let mut cfg = g.storage_config("rec");
    cfg.s3.virtual_hosted_style = true;
    cfg.s3.endpoint = "http://s3.garage.localhost:3900".into();
    let st = Storage::from_config(&cfg).expect("open").expect("s3");
    let url = st
        .presigned_get("rec/a.wav", Duration::from_secs(60))
        .await
        .expect("presign");
    assert!(
        url.starts_with("http://recordings.s3.garage.localhost:3900/rec/a.wav?"),
        "{url}"
    );
    let path = open(&g, "rec")
        .presigned_get("rec/a.wav", Duration::from_secs(60))
        .await
        .expect("presign");
    assert!(
        path.starts_with(&format!("{}/recordings/rec/a.wav?", g.endpoint())),
        "{path}"
    );
}

// ---- links and retention over a call database and Garage ----

use db_support::TestDb;
use pbxbridge::db::{Db, DbTime, Pool};
use pbxbridge::report::RecordingStatus;
use pbxbridge::store::link::{open_recording, recording_link, RecordingLinkError};
use pbxbridge::store::retention::expire;
use pbxbridge::time::Timestamp;

const DAY_US: i64 = 86_400_000_000;

struct Rec<'a> {
    call_id: &'a str,
    age_days: i64,
    status: &'a str,
    backend: Option<&'a str>,
    key: Option<&'a str>,
    path: Option<String>,
}

async fn insert_call(db: &Db, now: Timestamp, r: &Rec<'_>) {
    let started = DbTime(Timestamp::from_micros(now.micros() - r.age_days * DAY_US));
    let sql = db.sql(
        "INSERT INTO {calls} (sensor, call_id, direction, started_at, ended_at, duration, \
         outcome, end_reason, dtmf, recording_status, recording_backend, recording_key, \
         recording_path, written_at) \
         VALUES ('default', ?, 'inbound', ?, ?, 1.0, 'answered', 'bye', '', ?, ?, ?, ?, ?)",
    );
    macro_rules! run {
        ($p:expr) => {
            sqlx::query(&sql)
                .bind(r.call_id)
                .bind(started)
                .bind(started)
                .bind(r.status)
                .bind(r.backend)
                .bind(r.key)
                .bind(r.path.as_deref())
                .bind(started)
                .execute($p)
                .await
                .map(|_| ())
        };
    }
    let out = match db.pool() {
        Pool::Sqlite(p) => run!(p),
        Pool::Postgres(p) => run!(p),
        Pool::MySql(p) => run!(p),
    };
    out.unwrap_or_else(|e| panic!("{:?}: insert {}: {e}", db.backend(), r.call_id));
}

async fn statuses(db: &Db) -> Vec<String> {
    db_support::strings(
        db,
        "SELECT call_id || '=' || recording_status FROM {calls} ORDER BY call_id",
    )
    .await
}

async fn exists(st: &Storage, key: &str) -> bool {
    match st
        .object_store()
        .head(&object_store::path::Path::from(key))
        .await
    {
        Ok(_) => true,
        Err(object_store::Error::NotFound { .. }) => false,
        Err(e) => panic!("head {key}: {e}"),
    }
}

#[tokio::test]
async fn links_and_retention_on_every_database() {
    let g = Garage::start().await;
    for backend in db_support::ALL {
        let tdb = TestDb::new(backend).await;
        let db = tdb.connect().await;
        let rec_dir = tempfile::tempdir().expect("recording dir");
        let prefix = format!("rec-{}", backend.name());
        let mut cfg = pbxbridge::config::Config {
            storage: g.storage_config(&prefix),
            ..Default::default()
        };
        cfg.storage.retention_days = 30;
        cfg.recording.dir = rec_dir.path().to_owned();
        let st = open(&g, &prefix);
        let now = Timestamp::now();

        let old_key = format!("{prefix}/old.wav");
        let new_key = format!("{prefix}/new.wav");
        let gone_key = format!("{prefix}/gone.wav");
        for (key, len) in [(&old_key, 1000), (&new_key, 500)] {
            st.object_store()
                .put(
                    &object_store::path::Path::from(key.as_str()),
                    PutPayload::from(pattern(len)),
                )
                .await
                .expect("put");
        }
        let local = rec_dir.path().join("2024/01/02/local-old.wav");
        std::fs::create_dir_all(local.parent().expect("parent")).expect("mkdir");
        std::fs::write(&local, pattern(300)).expect("write local recording");

        let rows = [
            Rec {
                call_id: "old@pbx",
                age_days: 40,
                status: "stored",
                backend: Some("s3"),
                key: Some(&old_key),
                path: None,
            },
            Rec {
                call_id: "new@pbx",
                age_days: 1,
                status: "stored",
                backend: Some("s3"),
                key: Some(&new_key),
                path: None,
            },
            Rec {
                call_id: "gone@pbx",
                age_days: 40,
                status: "stored",
                backend: Some("s3"),
                key: Some(&gone_key),
                path: None,
            },
            Rec {
                call_id: "pending@pbx",
                age_days: 40,
                status: "pending",
                backend: Some("s3"),
                key: None,
                path: None,
            },
            Rec {
                call_id: "local-old@pbx",
                age_days: 40,
                status: "stored",
                backend: None,
                key: None,
                path: Some(local.display().to_string()),
            },
        ];
        for r in &rows {
            insert_call(&db, now, r).await;
        }

        // A link to a stored recording fetches it, with Range.
        let url = recording_link(&db, &st, "default", "new@pbx", Duration::from_secs(600))
            .await
            .unwrap_or_else(|e| panic!("{backend:?}: link: {e}"));
        let got = http_get(&url, Some("bytes=10-19")).await;
        assert_eq!(got.status().as_u16(), 206, "{backend:?}");
        assert_eq!(
            got.bytes().await.expect("body").as_ref(),
            &pattern(500)[10..20]
        );

        let err = |r: Result<String, RecordingLinkError>| r.expect_err("must not give a link");
        let e = err(recording_link(&db, &st, "default", "nope@pbx", Duration::from_secs(60)).await);
        assert!(
            matches!(e, RecordingLinkError::NoCall { .. }),
            "{backend:?}: {e}"
        );
        let e =
            err(recording_link(&db, &st, "default", "pending@pbx", Duration::from_secs(60)).await);
        assert!(
            matches!(
                e,
                RecordingLinkError::NotStored {
                    status: RecordingStatus::Pending,
                    ..
                }
            ),
            "{backend:?}: {e}"
        );
        let e = err(recording_link(
            &db,
            &st,
            "default",
            "local-old@pbx",
            Duration::from_secs(60),
        )
        .await);
        assert!(
            matches!(e, RecordingLinkError::NotLinkable { .. }),
            "{backend:?}: {e}"
        );
        let e = err(recording_link(
            &db,
            &st,
            "default",
            "new@pbx",
            Duration::from_secs(8 * 86_400),
        )
        .await);
        assert!(
            matches!(e, RecordingLinkError::Lifetime { .. }),
            "{backend:?}: {e}"
        );

        // What the HTTP API will serve: a range and the whole size.
        let opened = open_recording(&st, &new_key, Some(100..150))
            .await
            .expect("open");
        assert_eq!(opened.size, 500);
        assert_eq!(opened.range, 100..150);
        let body = opened.body.bytes().await.expect("range body");
        assert_eq!(body.as_ref(), &pattern(500)[100..150]);

        // A dry run deletes nothing.
        let dry = expire(&db, Some(&st), &cfg, now, true)
            .await
            .expect("dry run");
        assert_eq!((dry.deleted, dry.bytes), (2, 1300), "{backend:?}: {dry:?}");
        assert!(exists(&st, &old_key).await && local.exists());
        assert!(statuses(&db).await.contains(&"old@pbx=stored".to_string()));

        let r = expire(&db, Some(&st), &cfg, now, false)
            .await
            .expect("expire");
        let mut ids = r.call_ids.clone();
        ids.sort();
        assert_eq!(ids, ["local-old@pbx", "old@pbx"], "{backend:?}: {r:?}");
        assert_eq!(
            (r.deleted, r.bytes, r.already_gone),
            (2, 1300, 1),
            "{backend:?}: {r:?}"
        );
        assert!(r.failed.is_empty(), "{backend:?}: {r:?}");
        assert!(
            !exists(&st, &old_key).await,
            "{backend:?}: old object still there"
        );
        assert!(
            exists(&st, &new_key).await,
            "{backend:?}: a recent recording was deleted"
        );
        assert!(!local.exists(), "{backend:?}: local file still there");
        assert_eq!(
            statuses(&db).await,
            [
                "gone@pbx=expired",
                "local-old@pbx=expired",
                "new@pbx=stored",
                "old@pbx=expired",
                "pending@pbx=pending"
            ],
            "{backend:?}: the call rows stay"
        );
        let e = err(recording_link(&db, &st, "default", "old@pbx", Duration::from_secs(60)).await);
        assert!(
            matches!(e, RecordingLinkError::Expired { .. }),
            "{backend:?}: {e}"
        );

        let again = expire(&db, Some(&st), &cfg, now, false)
            .await
            .expect("expire again");
        assert_eq!(
            (again.deleted, again.already_gone),
            (0, 0),
            "{backend:?}: {again:?}"
        );
        assert!(again.call_ids.is_empty());
        db.close().await;
    }
}
