//! `pbxbridge calls list`: the newest calls, narrowed by number, time,
//! outcome, direction, agent and CRM record, on SQLite, PostgreSQL and MariaDB.

use crate::db_support;

use std::path::Path;
use std::process::Command;

use db_support::{answered_call, exec, TestDb, ALL};
use pbxbridge::call::{Direction, Outcome};
use pbxbridge::config::CrmConfig;
use pbxbridge::db::{links, LinkSource};
use pbxbridge::matching::linker::Linker;
use pbxbridge::report::CallReport;

/// 2027-01-15T08:00:00Z.
const T0: i64 = 1_800_000_000;
const DAY: i64 = 86_400;

fn not_answered(mut c: CallReport, outcome: Outcome) -> CallReport {
    c.outcome = outcome;
    c.answered_at = None;
    c.duration = 0.0;
    c
}

/// Four calls, one a day apart or an hour, oldest first: a, b, c, d.
fn calls() -> Vec<CallReport> {
    vec![
        answered_call(
            "a@pbx",
            Direction::Incoming,
            "+14155551212",
            Some("2001"),
            T0,
        ),
        answered_call(
            "b@pbx",
            Direction::Outgoing,
            "+14155552222",
            Some("2002"),
            T0 + 3600,
        ),
        not_answered(
            answered_call(
                "c@pbx",
                Direction::Incoming,
                "+14155551212",
                Some("2002"),
                T0 + DAY,
            ),
            Outcome::Busy,
        ),
        not_answered(
            answered_call(
                "d@pbx",
                Direction::Internal,
                "2003",
                Some("2001"),
                T0 + 2 * DAY,
            ),
            Outcome::NoAnswer,
        ),
    ]
}

const CONFIG: &str = r#"
[pbx]
default_country = "US"

[[crm.records]]
type = "contact"
table = "contacts"
phones = ["phone"]
"#;

struct Cli {
    config: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Cli {
    fn new(url: &str) -> Cli {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("pbxbridge.toml");
        std::fs::write(&config, format!("[database]\nurl = \"{url}\"\n{CONFIG}")).unwrap();
        Cli { config, _dir: dir }
    }

    /// Exit code, stdout, stderr of `pbxbridge calls list ARGS`.
    fn list(&self, args: &[&str]) -> (Option<i32>, String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_pbxbridge"))
            .args(["calls", "list"])
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .output()
            .expect("run pbxbridge");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// The Call-IDs `--json` lists, in its order.
    fn ids(&self, args: &[&str]) -> Vec<String> {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let (code, out, err) = self.list(&all);
        assert_eq!(code, Some(0), "{args:?}: {err}");
        let v: serde_json::Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"));
        v.as_array()
            .unwrap_or_else(|| panic!("{args:?}: not an array: {out}"))
            .iter()
            .map(|c| {
                let c = c.get("call").unwrap_or(c);
                c["call_id"].as_str().unwrap().to_owned()
            })
            .collect()
    }
}

#[tokio::test]
async fn each_filter_narrows_the_newest_first_list_on_every_backend() {
    for backend in ALL {
        let t = TestDb::new(backend).await;
        let db = t.connect().await;
        Linker::new(&CrmConfig::default())
            .write(&db, "default", &calls())
            .await
            .unwrap();
        exec(
            &db,
            "UPDATE calls SET agent_id = 'u7' WHERE call_id = 'a@pbx'",
        )
        .await;
        for id in ["a@pbx", "c@pbx"] {
            links::link(&db, "default", id, "contact", "1", LinkSource::Manual)
                .await
                .unwrap();
        }
        db.close().await;
        let cli = Cli::new(&t.url);
        let ids = |args: &[&str]| cli.ids(args);
        let b = format!("{backend:?}");

        assert_eq!(ids(&[]), ["d@pbx", "c@pbx", "b@pbx", "a@pbx"], "{b}");
        assert_eq!(ids(&["--limit", "2"]), ["d@pbx", "c@pbx"], "{b}");
        // Typed as a person would: normalised with pbx.default_country first.
        assert_eq!(
            ids(&["--number", "(415) 555-1212"]),
            ["c@pbx", "a@pbx"],
            "{b}"
        );
        assert_eq!(ids(&["--number", "+1 415 555 2222"]), ["b@pbx"], "{b}");
        // An extension matches whichever party it was.
        assert_eq!(ids(&["--number", "2001"]), ["d@pbx", "a@pbx"], "{b}");
        assert_eq!(ids(&["--since", "2027-01-16"]), ["d@pbx", "c@pbx"], "{b}");
        // A date as --until includes that whole day.
        assert_eq!(ids(&["--until", "2027-01-15"]), ["b@pbx", "a@pbx"], "{b}");
        // --since is inclusive, --until exclusive.
        assert_eq!(
            ids(&[
                "--since",
                "2027-01-15T09:00:00Z",
                "--until",
                "2027-01-16T08:00:00Z"
            ]),
            ["b@pbx"],
            "{b}"
        );
        assert_eq!(
            ids(&["--since", "2027-01-15T10:00:00+01:00"]),
            ["d@pbx", "c@pbx", "b@pbx"],
            "{b}: offsets are honoured"
        );
        assert_eq!(
            ids(&["--outcome", "busy", "--outcome", "no_answer"]),
            ["d@pbx", "c@pbx"],
            "{b}"
        );
        assert_eq!(ids(&["--direction", "incoming"]), ["c@pbx", "a@pbx"], "{b}");
        assert_eq!(
            ids(&["--direction", "outgoing", "--direction", "internal"]),
            ["d@pbx", "b@pbx"],
            "{b}"
        );
        assert_eq!(ids(&["--agent", "2002"]), ["c@pbx", "b@pbx"], "{b}");
        assert_eq!(ids(&["--agent", "u7"]), ["a@pbx"], "{b}: the CRM user's id");
        assert_eq!(
            ids(&["--direction", "incoming", "--outcome", "answered"]),
            ["a@pbx"],
            "{b}: filters combine"
        );
        assert_eq!(
            ids(&["--outcome", "cancelled"]),
            Vec::<String>::new(),
            "{b}"
        );
        assert_eq!(
            ids(&["--record", "contact", "1"]),
            ["c@pbx", "a@pbx"],
            "{b}"
        );
        assert_eq!(
            ids(&["--record", "contact", "1", "--outcome", "busy"]),
            ["c@pbx"],
            "{b}: --record takes the other filters too"
        );

        // JSON: valid, with the call's fields.
        let (code, out, err) = cli.list(&["--json", "--limit", "1"]);
        assert_eq!(code, Some(0), "{b}: {err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let d = &v[0];
        assert_eq!(d["call_id"], "d@pbx", "{b}");
        assert_eq!(d["direction"], "internal", "{b}");
        assert_eq!(d["outcome"], "no_answer", "{b}");
        assert_eq!(d["from_number"], "2003", "{b}");
        assert_eq!(d["to_number"], "2001", "{b}");
        assert_eq!(d["agent"], "2001", "{b}");
        assert_eq!(d["started_at"], "2027-01-17T08:00:00.000000Z", "{b}");
        assert_eq!(d["sensor"], "default", "{b}");
        let (_, out, _) = cli.list(&["--json", "--record", "contact", "1"]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v[0]["call"]["call_id"], "c@pbx", "{b}");
        assert_eq!(v[0]["source"], "manual", "{b}");

        // The text view: one line per call, newest first.
        let (code, out, err) = cli.list(&["--direction", "incoming"]);
        assert_eq!(code, Some(0), "{b}: {err}");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "{b}: {out}");
        assert!(
            lines[0].starts_with(
                "2027-01-16T08:00:00.000000Z  c@pbx  incoming  +14155551212  busy  0 s"
            ),
            "{b}: {out}"
        );
        assert!(
            lines[1].contains("a@pbx") && lines[1].contains("agent 2001"),
            "{b}: {out}"
        );
        let (_, out, _) = cli.list(&["--outcome", "failed"]);
        assert_eq!(out, "no calls\n", "{b}");
    }
}

#[test]
fn bad_filter_values_name_the_option_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("calls.db");
    let cli = Cli::new(&format!("sqlite://{}", db.display()));
    for (args, needle) in [
        (&["--outcome", "maybe"][..], "--outcome"),
        (&["--direction", "sideways"][..], "--direction"),
        (&["--since", "yesterday"][..], "--since"),
        (&["--until", "2027-02-30"][..], "--until"),
        (&["--limit", "0"][..], "--limit"),
        (&["--limit", "1001"][..], "--limit"),
        (&["--number", "call me maybe"][..], "--number"),
        (&["--record", "planet", "3"][..], "planet"),
    ] {
        let (code, out, err) = cli.list(args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(out.is_empty(), "{args:?}: {out}");
    }
    assert!(
        !Path::new(&db).exists(),
        "a bad value is refused before the database is opened"
    );
}
