//! Recording storage against a real S3 server (Garage, tests/store_support):
//! uploads, downloads, ranges, presigned links, refusals and config checks.

mod store_support;

use object_store::{ObjectStore, PutPayload};
use std::time::Duration;

use pbxbridge::store::{Storage, StoreError};
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
    let err = StoreError::Op {
        op: "upload",
        backend: "s3",
        key: key.to_string(),
        source: Box::new(err),
    };
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
    let err = StoreError::Op {
        op: "upload",
        backend: "s3",
        key: key.to_string(),
        source: Box::new(err),
    };
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
    let err = StoreError::Op {
        op: "head",
        backend: "s3",
        key: key.to_string(),
        source: Box::new(err),
    };
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
