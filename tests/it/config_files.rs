//! The shipped example config and hand-written good and bad files: a bad file
//! must name the key (and line) that is wrong.

use std::path::Path;

use pbxbridge::config::{Config, LogFormat};

fn load(name: &str) -> Result<Config, String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(name);
    Config::load(&path).map_err(|e| e.to_string())
}

#[test]
fn shipped_example_is_valid_and_matches_defaults() {
    let cfg = load("config/pbxbridge.toml").unwrap();
    let def = Config::default();
    assert_eq!(cfg.pbx.default_country, def.pbx.default_country);
    assert_eq!(cfg.pbx.extension_pattern, def.pbx.extension_pattern);
    assert_eq!(cfg.sip.ports, def.sip.ports);
    assert_eq!(cfg.tracker.rtp_timeout_secs, def.tracker.rtp_timeout_secs);
    assert_eq!(cfg.tracker.max_calls, def.tracker.max_calls);
    assert_eq!(cfg.database.url, def.database.url);
    assert_eq!(cfg.recording.dir, def.recording.dir);
    assert_eq!(cfg.capture.queue_packets, def.capture.queue_packets);
    assert_eq!(cfg.capture.buffer_mib, def.capture.buffer_mib);
    assert_eq!(cfg.capture.snaplen, def.capture.snaplen);
    assert_eq!(
        cfg.capture.folder_settle_secs,
        def.capture.folder_settle_secs
    );
    assert_eq!(cfg.hep.listen, def.hep.listen);
    assert_eq!(cfg.hep.enabled, def.hep.enabled);
    assert_eq!(cfg.admin.listen, def.admin.listen);
    assert_eq!(cfg.daemon.state_dir, def.daemon.state_dir);
    assert_eq!(cfg.pbx.sensor, def.pbx.sensor);
    assert_eq!(cfg.database.table_prefix, def.database.table_prefix);
    assert_eq!(cfg.database.schema, def.database.schema);
    assert_eq!(cfg.database.max_connections, def.database.max_connections);
    assert_eq!(cfg.crm, def.crm);
    assert_eq!(cfg.storage, def.storage);
    assert_eq!(
        cfg.api, def.api,
        "the API is off until [api] is uncommented"
    );
    assert!(
        cfg.events.nats.is_none(),
        "NATS is off until [events.nats] is uncommented"
    );
}

#[test]
fn shipped_nats_example_is_the_default_once_uncommented() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/pbxbridge.toml");
    let text = std::fs::read_to_string(path).unwrap();
    // The section and its keys but the login ones (their files are examples).
    let keys = [
        "[events.nats]",
        "url",
        "stream",
        "max_age_days",
        "subject_prefix",
        "consumer",
    ];
    let mut section = String::new();
    // The commented section runs from its header to the next blank line.
    let block = text
        .lines()
        .skip_while(|l| *l != "# [events.nats]")
        .take_while(|l| l.starts_with('#'));
    for line in block {
        if let Some(l) = line.strip_prefix("# ") {
            if keys
                .iter()
                .any(|k| l.starts_with(&format!("{k} ")) || l == *k)
            {
                section.push_str(l);
                section.push('\n');
            }
        }
    }
    assert_eq!(section.lines().count(), keys.len(), "{section}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("nats.toml");
    std::fs::write(&file, section).unwrap();
    let cfg = Config::load(&file).unwrap();
    assert_eq!(
        cfg.events.nats,
        Some(pbxbridge::config::NatsConfig::default())
    );
}

#[test]
fn full_file_sets_every_section() {
    let cfg = load("tests/config/good-full.toml").unwrap();
    assert_eq!(cfg.pbx.default_country, "DE");
    assert_eq!(cfg.pbx.internal_networks.len(), 2);
    assert!(!cfg.sip.detect_any_port);
    assert_eq!(cfg.tracker.rtp_timeout_secs, 60);
    assert_eq!(
        cfg.tracker.ring_timeout_secs, 300,
        "unset keys keep defaults"
    );
    assert!(!cfg.recording.enabled);
    assert_eq!(cfg.log.format, LogFormat::Json);
    assert_eq!(cfg.pbx.sensor, "berlin-pbx");
    assert_eq!(cfg.database.table_prefix, "pbx_");
    assert_eq!(cfg.database.schema, "telephony");
    assert_eq!(cfg.crm.records.len(), 2);
    assert_eq!(cfg.crm.records[0].id, "id", "the id column defaults to id");
    assert!(!cfg.crm.records[0].is_agent());
    assert_eq!(cfg.crm.relations[0].column.as_deref(), Some("account_id"));
    assert_eq!(cfg.crm.rebuild_secs, 21600, "unset keys keep defaults");
    assert_eq!(cfg.storage.backend, pbxbridge::config::StorageBackend::S3);
    assert_eq!(cfg.storage.s3.bucket, "calls");
    assert_eq!(cfg.storage.retention_days, 90);
    let api = cfg.api.as_ref().expect("[api]");
    assert_eq!(api.listen.port(), 8443);
    assert_eq!(api.roles[0].name, "qa");
    assert_eq!(api.request_timeout_secs, 20);
    let shown = format!("{:?}", cfg.storage);
    assert!(
        !shown.contains("not-in-logs"),
        "the secret never shows: {shown}"
    );
}

#[test]
fn bad_files_say_what_and_where() {
    let cases = [
        ("bad-unknown-key.toml", &["extention_pattern", "line 3"][..]),
        ("bad-country.toml", &["pbx.default_country", "Narnia"][..]),
        ("bad-regex.toml", &["pbx.extension_pattern"][..]),
        ("bad-network.toml", &["internal_networks", "line 2"][..]),
        ("bad-timer.toml", &["tracker.rtp_timeout_secs"][..]),
        (
            "bad-opus-bitrate.toml",
            &[
                "recording.opus_bitrate",
                "1000 must be between 6000 and 512000 bit/s",
            ][..],
        ),
        (
            "bad-recording-format.toml",
            &["format", "mp3", "line 2"][..],
        ),
        ("bad-port.toml", &["ports", "line 2"][..]),
        ("bad-log-format.toml", &["format", "xml"][..]),
        (
            "bad-interface.toml",
            &["capture.interfaces[1]", "no such interface \"eht0\""][..],
        ),
        ("bad-hep-listen.toml", &["listen", "line 3"][..]),
        ("bad-queue.toml", &["capture.queue_packets"][..]),
        (
            "bad-db-scheme.toml",
            &["database.url", "oracle://scott:***@db/orcl", "postgres://"][..],
        ),
        ("bad-db-schema.toml", &["database.schema", "SQLite"][..]),
        (
            "bad-crm-column.toml",
            &["crm.records[0].phones[0]", "not a column name"][..],
        ),
        (
            "bad-crm-relation.toml",
            &["crm.relations[0].to", "\"account\"", "[[crm.records]]"][..],
        ),
        (
            "bad-crm-unknown-key.toml",
            &["phone", "phones", "line 4"][..],
        ),
        ("bad-api-cors.toml", &["api.cors_origins[0]", "no path"][..]),
        ("bad-api-role.toml", &["everything", "line 6"][..]),
        ("bad-api-tls.toml", &["api.tls_key", "set the key too"][..]),
        (
            "bad-nats.toml",
            &[
                "events.nats.url",
                "events.nats.stream",
                "events.nats.subject_prefix",
            ][..],
        ),
    ];
    for (file, needles) in cases {
        let err = load(&format!("tests/config/{file}")).expect_err(file);
        assert!(
            err.contains(file),
            "{file}: error does not name the file: {err}"
        );
        for n in needles {
            assert!(
                err.contains(n),
                "{file}: error {err:?} does not mention {n:?}"
            );
        }
    }
}

#[test]
fn missing_file_is_a_clear_error() {
    let err = load("tests/config/does-not-exist.toml").unwrap_err();
    assert!(
        err.contains("does-not-exist.toml") && err.contains("cannot read"),
        "{err}"
    );
}

#[test]
fn database_url_comes_from_a_file_and_is_never_shown() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("db-url");
    std::fs::write(&secret, "sqlite://user:hunter2@localhost/calls.db\n").unwrap();
    let cfg_path = dir.path().join("p.toml");
    std::fs::write(
        &cfg_path,
        format!(
            "[database]\nurl_file = {:?}\n",
            secret.display().to_string()
        ),
    )
    .unwrap();
    let cfg = Config::load(&cfg_path).unwrap();
    assert_eq!(cfg.database.url, "sqlite://user:hunter2@localhost/calls.db");
    let shown = format!("{cfg:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("user:***@localhost"), "{shown}");

    std::fs::write(
        &cfg_path,
        "[database]\nurl_file = \"/nonexistent/db-url\"\n",
    )
    .unwrap();
    let err = Config::load(&cfg_path).unwrap_err().to_string();
    assert!(
        err.contains("database.url_file") && err.contains("/nonexistent/db-url"),
        "{err}"
    );
}

#[test]
fn loopback_quickstart_config_is_valid() {
    let cfg = load("config/loopback.toml").unwrap();
    assert_eq!(cfg.capture.interfaces, vec!["lo".to_string()]);
    assert!(cfg.hep.enabled);
}
