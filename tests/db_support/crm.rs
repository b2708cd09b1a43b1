//! A CRM-like schema with the messy phone values real CRMs hold: contacts,
//! leads, accounts, deals, cases and users, a number shared by a contact and a
//! lead, and one main number on 200 contacts. `install` creates it in a test
//! database; `CONFIG` is the `[crm]` section a user would write for it.
//!
//! What a test may rely on (default country US, extensions 2–6 digits):
//! - +14155551212: contact 1 (Alice Smith, phone_work)
//! - +14155551313: contact 1 (phone_mobile, written with "ext. 3")
//! - +14155552222: contact 2 (Bob Jones, phone_work "415.555.2222") and lead 1 (Dan Lead)
//! - +442079460958: account 2 (Globex, written "00 44 20 7946 0958")
//! - +16505550100: contacts 100–299 (the main number) and account 4
//! - +12125550199: lead 2 (mobile)
//! - +19175550142: case 1 (open, of contact 1)
//! - extension 2001: user 1 (Agent Ann); +14155559001 also user 1
//! - relations: contact → account (contacts.account_id); account → open deals
//!   (deals.account_id, stage = 'open'); contact → open cases (cases.contact_id)
//! - invalid values (counted, not indexed as numbers): contact 2 "call me
//!   maybe", contact 3 "555", lead 2 "n/a", account 3 "12"
//! - empty values (neither): contact 2 phone_mobile "", NULLs

use pbxbridge::db::{Backend, Db};

use super::exec;

pub const CONFIG: &str = r#"
[[crm.records]]
type = "contact"
table = "contacts"
id = "id"
phones = ["phone_work", "phone_mobile", "phone_home"]
name = "CONCAT(first_name, ' ', last_name)"
updated_at = "updated_at"

[[crm.records]]
type = "lead"
table = "leads"
phones = ["phone", "mobile"]
name = "name"
updated_at = "updated_at"

[[crm.records]]
type = "account"
table = "accounts"
phones = ["phone"]
name = "name"
updated_at = "updated_at"

[[crm.records]]
type = "deal"
table = "deals"
name = "name"

[[crm.records]]
type = "case"
table = "cases"
phones = ["callback_phone"]
name = "subject"

[[crm.records]]
type = "user"
table = "users"
phones = ["extension", "phone"]
name = "name"

[[crm.relations]]
from = "contact"
to = "account"
column = "account_id"

[[crm.relations]]
from = "account"
to = "deal"
foreign_key = "account_id"
filter = "stage = 'open'"

[[crm.relations]]
from = "contact"
to = "case"
foreign_key = "contact_id"
filter = "status <> 'closed'"
"#;

/// The main number's holders.
pub const SHARED_MAIN_NUMBER: &str = "+16505550100";
pub const SHARED_CONTACTS: std::ops::RangeInclusive<i64> = 100..=299;

fn ts_type(b: Backend) -> &'static str {
    match b {
        Backend::Postgres => "TIMESTAMP",
        Backend::MySql => "DATETIME(6)",
        Backend::Sqlite => "TEXT",
    }
}

fn q(v: Option<&str>) -> String {
    match v {
        Some(s) => format!("'{}'", s.replace('\'', "''")),
        None => "NULL".into(),
    }
}

/// Creates the CRM tables in `db` (beside pbxbridge's own) and fills them.
pub async fn install(db: &Db) {
    let ts = ts_type(db.backend());
    let when = "'2026-11-01 09:00:00'";
    for ddl in [
        format!("CREATE TABLE accounts (id INTEGER PRIMARY KEY, name VARCHAR(100) NOT NULL, phone VARCHAR(64), updated_at {ts})"),
        format!("CREATE TABLE contacts (id INTEGER PRIMARY KEY, first_name VARCHAR(100), last_name VARCHAR(100), account_id INTEGER, phone_work VARCHAR(64), phone_mobile VARCHAR(64), phone_home VARCHAR(64), updated_at {ts})"),
        format!("CREATE TABLE leads (id INTEGER PRIMARY KEY, name VARCHAR(100), phone VARCHAR(64), mobile VARCHAR(64), updated_at {ts})"),
        "CREATE TABLE deals (id INTEGER PRIMARY KEY, account_id INTEGER, name VARCHAR(100), stage VARCHAR(32))".to_string(),
        "CREATE TABLE cases (id INTEGER PRIMARY KEY, contact_id INTEGER, subject VARCHAR(100), status VARCHAR(32), callback_phone VARCHAR(64))".to_string(),
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name VARCHAR(100), extension VARCHAR(16), phone VARCHAR(64))".to_string(),
    ] {
        exec(db, &ddl).await;
    }
    let accounts: [(i64, &str, Option<&str>); 4] = [
        (1, "Acme Corp", Some("(415) 555-1000")),
        (2, "Globex", Some("00 44 20 7946 0958")),
        (3, "Initech", Some("12")),
        (4, "Big Shared Co", Some("+1 (650) 555-0100")),
    ];
    for (id, name, phone) in accounts {
        exec(
            db,
            &format!(
                "INSERT INTO accounts VALUES ({id}, {}, {}, {when})",
                q(Some(name)),
                q(phone)
            ),
        )
        .await;
    }
    type Contact<'a> = (
        i64,
        &'a str,
        &'a str,
        i64,
        Option<&'a str>,
        Option<&'a str>,
        Option<&'a str>,
    );
    let contacts: [Contact<'_>; 3] = [
        (
            1,
            "Alice",
            "Smith",
            1,
            Some("(415) 555-1212"),
            Some("+1 415-555-1313 ext. 3"),
            None,
        ),
        (
            2,
            "Bob",
            "Jones",
            2,
            Some("415.555.2222"),
            Some(""),
            Some("call me maybe"),
        ),
        (3, "Carol", "White", 1, None, None, Some("555")),
    ];
    for (id, first, last, acct, w, m, h) in contacts {
        exec(
            db,
            &format!(
                "INSERT INTO contacts VALUES ({id}, {}, {}, {acct}, {}, {}, {}, {when})",
                q(Some(first)),
                q(Some(last)),
                q(w),
                q(m),
                q(h)
            ),
        )
        .await;
    }
    let mut rows = Vec::new();
    for id in SHARED_CONTACTS {
        rows.push(format!(
            "({id}, 'Shared', 'Contact {id}', 4, '+1 (650) 555-0100', NULL, NULL, {when})"
        ));
    }
    exec(
        db,
        &format!("INSERT INTO contacts VALUES {}", rows.join(", ")),
    )
    .await;
    for sql in [
        format!("INSERT INTO leads VALUES (1, 'Dan Lead', '(415) 555 2222', NULL, {when})"),
        format!("INSERT INTO leads VALUES (2, 'Eve Lead', 'n/a', '+1 212 555 0199', {when})"),
        "INSERT INTO deals VALUES (1, 1, 'Acme renewal', 'open')".into(),
        "INSERT INTO deals VALUES (2, 1, 'Acme old deal', 'closed_won')".into(),
        "INSERT INTO deals VALUES (3, 2, 'Globex pilot', 'open')".into(),
        "INSERT INTO cases VALUES (1, 1, 'Broken widget', 'open', '(917) 555-0142')".into(),
        "INSERT INTO cases VALUES (2, 1, 'Old question', 'closed', NULL)".into(),
        "INSERT INTO users VALUES (1, 'Agent Ann', '2001', '+1 415 555 9001')".into(),
        "INSERT INTO users VALUES (2, 'Agent Ben', '2002', NULL)".into(),
    ] {
        exec(db, &sql).await;
    }
}

/// A full config for this CRM on `url`: the fixture's `[crm]` plus the database.
pub fn config(url: &str) -> pbxbridge::config::Config {
    let text = format!("[database]\nurl = \"{url}\"\n{CONFIG}");
    pbxbridge::config::Config::parse(&text, std::path::Path::new("crm-fixture.toml"))
        .unwrap_or_else(|e| panic!("fixture config: {e}"))
}
