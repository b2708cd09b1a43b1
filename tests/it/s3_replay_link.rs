//! What a new user does: switch the config from the local folder to S3,
//! replay a capture, ask for the presigned link and play the call — through
//! the real binary and a real Garage, as a browser would fetch it.

use crate::store_support;

use std::io::Cursor;
use std::path::Path;
use std::process::Command;

fn pbxbridge(args: &[&str], config: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_pbxbridge"))
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .expect("run pbxbridge")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_call_plays_from_its_presigned_link() {
    let garage = store_support::Garage::start().await;
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path();
    let config = root.join("pbxbridge.toml");
    let fixture_cfg = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/pcap-fixtures/pbxbridge.toml"
    ))
    .expect("fixture config");
    std::fs::write(
        &config,
        format!(
            "{fixture_cfg}\n[database]\nurl = \"sqlite://{db}\"\n\n[recording]\ndir = \"{rec}\"\n\n\
             [daemon]\nstate_dir = \"{state}\"\n\n[storage]\nbackend = \"s3\"\nprefix = \"calls\"\n\n\
             [storage.s3]\nendpoint = \"{endpoint}\"\nregion = \"{region}\"\nbucket = \"{bucket}\"\n\
             allow_http = true\naccess_key_id = \"{key}\"\nsecret_access_key = \"{secret}\"\n",
            db = root.join("calls.db").display(),
            rec = root.join("recordings").display(),
            state = root.join("state").display(),
            endpoint = garage.endpoint(),
            region = store_support::REGION,
            bucket = store_support::BUCKET,
            key = garage.key_id,
            secret = garage.secret,
        ),
    )
    .expect("write config");

    let fixture = format!(
        "{}/pcap-fixtures/answered_caller_bye.pcap",
        env!("CARGO_MANIFEST_DIR")
    );
    let out = Command::new(env!("CARGO_BIN_EXE_pbxbridge"))
        .args(["replay", "--json", "--config"])
        .arg(&config)
        .arg(&fixture)
        .output()
        .expect("run replay");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "replay failed: {stderr}");
    assert!(
        !stderr.contains(&garage.secret),
        "the secret never reaches the logs"
    );
    let line = String::from_utf8_lossy(&out.stdout);
    let call: serde_json::Value =
        serde_json::from_str(line.lines().next().expect("one call")).expect("json line");
    let call_id = call["call_id"].as_str().expect("call_id").to_owned();
    let talk = call["duration"].as_f64().expect("duration");
    assert!(talk > 1.0, "{call}");

    let out = pbxbridge(
        &["recordings", "link", &call_id, "--expires", "15m"],
        &config,
    );
    assert!(
        out.status.success(),
        "link failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let url = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(url.starts_with(&garage.endpoint()), "{url}");
    assert!(!url.contains(&garage.secret), "{url}");

    let client = reqwest::Client::new();
    let whole = client.get(&url).send().await.expect("GET");
    assert_eq!(whole.status().as_u16(), 200);
    assert_eq!(
        whole
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("audio/wav")
    );
    let body = whole.bytes().await.expect("body");
    let mut wav = hound::WavReader::new(Cursor::new(body.to_vec())).expect("a WAV file");
    let spec = wav.spec();
    assert_eq!((spec.channels, spec.sample_rate), (2, 8000));
    let secs = wav.duration() as f64 / 8000.0;
    assert!(
        (secs - talk).abs() < 0.05,
        "the file lasts the talk time: {secs} s vs {talk} s"
    );
    let loud = wav
        .samples::<i16>()
        .filter_map(Result::ok)
        .filter(|s| s.unsigned_abs() > 1000)
        .count();
    assert!(
        loud > 1000,
        "the call has audio, not silence ({loud} loud samples)"
    );

    // A player seeking: a Range request gets exactly those bytes.
    let part = client
        .get(&url)
        .header("Range", "bytes=0-43")
        .send()
        .await
        .expect("GET with Range");
    assert_eq!(part.status().as_u16(), 206);
    let head = part.bytes().await.expect("body");
    assert_eq!(head.len(), 44);
    assert_eq!(&head[..], &body[..44]);
}
