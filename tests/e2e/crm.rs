//! For the event tests (`tests/e2e_events.rs`, `tests/e2e_webhooks.rs`): a
//! daemon whose database holds a CRM contact with the caller's number, an
//! API key, and one SIPp call from that number.
#![allow(dead_code)] // each test crate uses its own subset

use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::support::{call_id, free_port, Daemon, DaemonEnv, Pair};

/// The caller's number, held by contact 7 ("Ada Lovelace").
pub const CALLER: &str = "+14155550101";

/// Adds `[api]`, the contact record type and `extra` to the daemon's
/// config, and creates the CRM's contacts table in its database. Returns
/// the API's address.
pub fn with_crm(env: &DaemonEnv, rt: &tokio::runtime::Runtime, extra: &str) -> SocketAddr {
    let api = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let mut cfg = std::fs::OpenOptions::new()
        .append(true)
        .open(&env.config)
        .unwrap();
    write!(
        cfg,
        "[api]\nlisten = \"{api}\"\n\n{extra}\n\n\
         [[crm.records]]\ntype = \"contact\"\ntable = \"contacts\"\nid = \"id\"\n\
         phones = [\"phone\"]\nname = \"name\"\n"
    )
    .unwrap();
    rt.block_on(async {
        use sqlx::Connection;
        let url = format!("sqlite://{}?mode=rwc", env.db.display());
        let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
        for sql in [
            "CREATE TABLE contacts (id INTEGER PRIMARY KEY, name TEXT, phone TEXT)",
            "INSERT INTO contacts VALUES (7, 'Ada Lovelace', '(415) 555-0101')",
            "INSERT INTO contacts VALUES (8, 'Someone Else', '(415) 555-0199')",
        ] {
            sqlx::query(sql).execute(&mut db).await.unwrap();
        }
    });
    api
}

/// A new admin key's token, made with `pbxbridge keys create`.
pub fn create_key(config: &std::path::Path) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pbxbridge"))
        .args([
            "keys", "create", "--name", "crm", "--role", "admin", "--config",
        ])
        .arg(config)
        .output()
        .expect("run pbxbridge keys create");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Waits until the daemon's phone index has values (calls are matched
/// against it).
pub fn wait_for_index(daemon: &Daemon) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !daemon
        .metrics()
        .lines()
        .any(|l| l.starts_with("pbxbridge_phone_index_values") && !l.ends_with(" 0"))
    {
        assert!(Instant::now() < deadline, "phone index not built");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One answered call from `CALLER` to 2001, `talk_secs` long, hung up by
/// the caller; returns its Call-ID once SIPp is done.
pub fn answered_call(pair: &Pair, label: &str, talk_secs: f64) -> String {
    let id = call_id(label);
    let talk_ms = format!("{}", (talk_secs * 1000.0) as u64);
    let mut uas = pair.uas("uas_answer.xml", &["-key", "contact", "2001"]);
    let mut uac = pair.uac(
        "uac_caller_bye.xml",
        pair.uas_addr(),
        &id,
        &["-key", "caller", CALLER, "-s", "2001", "-d", &talk_ms],
    );
    uac.expect_success(Duration::from_secs(30));
    uas.expect_success(Duration::from_secs(10));
    id
}
