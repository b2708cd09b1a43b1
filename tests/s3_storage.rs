//! Recording storage against a real S3 server (Garage, tests/store_support):
//! uploads, downloads, ranges, presigned links, refusals and config checks.

mod store_support;

use object_store::{ObjectStore, PutPayload};
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
