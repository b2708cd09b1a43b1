//! The README's walk through every route, run as written (bash, curl, jq)
//! against a real server with an admin key: the documentation cannot drift
//! from the API.

use std::process::Command;

use pbxbridge::db::Backend;

use crate::api_support::{tiny_wav, TestApi};

/// The fenced block after `<!-- api-walkthrough -->`.
fn walkthrough() -> String {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let after = readme
        .split_once("<!-- api-walkthrough -->")
        .expect("README has the api-walkthrough marker")
        .1;
    let body = after.split_once("```sh\n").expect("a sh block").1;
    body.split_once("\n```")
        .expect("the block ends")
        .0
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_curls_work_as_written() {
    let script = walkthrough();
    // Every route of the document is shown.
    for route in [
        "/v1/calls?",
        "/v1/calls.csv",
        "/v1/calls/$CALL\"",
        "/notes\"",
        "/notes/$NOTE\"",
        "/links\"",
        "/links/contact/42\"",
        "/v1/records/contact/42/calls",
        "match-past-calls",
        "/recording\"",
        "/recording?download=1",
        "/recording/link\"",
        "/v1/keys\"",
        "/v1/keys/$KEY\"",
        "/v1/openapi.json",
    ] {
        assert!(
            script.contains(route),
            "the README walkthrough does not show {route}"
        );
    }
    let api = TestApi::start(Backend::Sqlite).await;
    let token = api.key("admin", None).await;
    // Calls already captured, so the list has a second page to walk to.
    let captured: Vec<_> = (0..3)
        .map(|i| {
            crate::db_support::answered_call(
                &format!("readme-{i}@pbx"),
                pbxbridge::call::Direction::Incoming,
                "+14155550100",
                Some("2001"),
                1_796_000_000 + i * 60,
            )
        })
        .collect();
    api.db.upsert_calls("default", &captured).await.unwrap();
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("call.wav"), tiny_wav()).unwrap();
    let base = api.base.clone();
    let dir = work.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("bash")
            .args(["-euo", "pipefail", "-c", &script])
            .current_dir(&dir)
            .env("API", base)
            .env("TOKEN", token)
            .output()
            .expect("bash")
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "the README walkthrough failed:\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // What it fetched is what it uploaded, and the call is gone at the end.
    let wav = tiny_wav();
    for f in ["call-download.wav", "played.wav"] {
        assert_eq!(std::fs::read(work.path().join(f)).unwrap(), wav, "{f}");
    }
    assert_eq!(
        std::fs::read(work.path().join("head.bin")).unwrap(),
        wav[..1024]
    );
    let csv = std::fs::read_to_string(work.path().join("calls.csv")).unwrap();
    assert!(csv.lines().count() >= 2, "{csv}");
    assert_eq!(
        crate::db_support::count(&api.db, "SELECT COUNT(*) FROM calls").await,
        3,
        "the walkthrough deletes the call it created, and only that one"
    );
    api.stop().await;
}
