//! `[events]` and `[[webhooks]]`: where events may go and how hard
//! pbxbridge tries. Checked without the network: whether a name resolves
//! into the allow-list is seen at the first delivery.

use std::collections::HashSet;

use super::Problems;
use crate::config::Config;
use crate::events::webhook::allow::AllowList;
use crate::events::webhook::sign::read_secret_file;
use crate::events::EventType;

/// Waits a retry schedule may have, at most.
pub const MAX_RETRIES: usize = 10;
/// The longest wait between two attempts.
const MAX_WAIT_SECS: u64 = 86_400;

pub(super) fn check_events(p: &mut Problems, cfg: &Config) {
    let ev = &cfg.events;
    p.range(
        "events.log_max_events",
        ev.log_max_events,
        1..=100_000_000,
        "",
    );
    p.range(
        "events.log_max_age_days",
        ev.log_max_age_days,
        1..=3650,
        "days",
    );
    if ev.log_hard_max_events < ev.log_max_events {
        p.add(
            "events.log_hard_max_events",
            format!(
                "{} is below events.log_max_events ({})",
                ev.log_hard_max_events, ev.log_max_events
            ),
        );
    }
    p.range(
        "events.sse_heartbeat_secs",
        ev.sse_heartbeat_secs,
        1..=3600,
        "s",
    );
    p.range(
        "events.webhook_timeout_secs",
        ev.webhook_timeout_secs,
        1..=300,
        "s",
    );
    p.range(
        "events.webhook_concurrency",
        ev.webhook_concurrency,
        1..=64,
        "",
    );
    let retries = &ev.webhook_retry_secs;
    if retries.is_empty() || retries.len() > MAX_RETRIES {
        p.add(
            "events.webhook_retry_secs",
            format!("list 1 to {MAX_RETRIES} waits (seconds between attempts)"),
        );
    }
    for (i, w) in retries.iter().enumerate() {
        p.range(
            &format!("events.webhook_retry_secs[{i}]"),
            *w,
            1..=MAX_WAIT_SECS,
            "s",
        );
    }
    let mut allow = AllowList::default();
    let mut allow_ok = true;
    for (i, entry) in ev.webhook_allow.iter().enumerate() {
        match AllowList::parse(std::slice::from_ref(entry)) {
            Ok(_) => {}
            Err(e) => {
                allow_ok = false;
                p.add(format!("events.webhook_allow[{i}]"), e.to_string());
            }
        }
    }
    if allow_ok {
        allow = AllowList::parse(&ev.webhook_allow).unwrap_or_default();
    }
    let mut names = HashSet::new();
    for (i, w) in cfg.webhooks.iter().enumerate() {
        let key = |k: &str| format!("webhooks[{i}].{k}");
        let name_ok = !w.name.is_empty()
            && w.name.len() <= 64
            && w.name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !name_ok {
            p.add(
                key("name"),
                format!("{:?}: use 1 to 64 letters, digits, - or _", w.name),
            );
        } else if !names.insert(w.name.as_str()) {
            p.add(key("name"), format!("{:?} is used twice", w.name));
        }
        // An unparsable allow-list has its own problem; the URL is not
        // blamed for it.
        if allow_ok {
            if let Err(e) = allow.check_url(&w.url) {
                p.add(key("url"), format!("{:?}: {e}", w.url));
            }
        }
        for (j, t) in w.events.iter().enumerate() {
            if t.parse::<EventType>().is_err() {
                let known: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
                p.add(
                    format!("webhooks[{i}].events[{j}]"),
                    format!("{t:?} is not an event type; types: {}", known.join(", ")),
                );
            }
        }
        if let Err(e) = read_secret_file(&w.secret_file) {
            p.add(key("secret_file"), e.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::validate::Purpose;
    use crate::config::Config;

    fn keys(text: &str) -> Vec<String> {
        let cfg: Config = toml::from_str(text).expect("config");
        cfg.problems(Purpose::Any)
            .into_iter()
            .filter(|p| p.key.starts_with("events") || p.key.starts_with("webhooks"))
            .map(|p| p.key)
            .collect()
    }

    #[test]
    fn webhooks_need_an_allowed_url_known_types_and_a_secret() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("s");
        std::fs::write(&secret, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n").unwrap();
        let bad_secret = dir.path().join("b");
        std::fs::write(&bad_secret, "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n").unwrap();
        let hook = |name: &str, url: &str, events: &str, file: &std::path::Path| {
            format!(
                "[[webhooks]]\nname = \"{name}\"\nurl = \"{url}\"\nevents = [{events}]\nsecret_file = \"{}\"\n",
                file.display()
            )
        };
        let good = format!(
            "[events]\nwebhook_allow = [\"crm.example.com\", \"10.0.0.0/8\"]\n{}",
            hook(
                "crm",
                "https://crm.example.com/hook",
                "\"call.ringing\"",
                &secret
            )
        );
        assert_eq!(keys(&good), Vec::<String>::new());
        let bad = format!(
            "[events]\nwebhook_allow = [\"crm.example.com\"]\nwebhook_retry_secs = [5, 90000]\nwebhook_concurrency = 0\n{}{}{}",
            hook("crm", "https://other.example.com/", "\"call.exploded\"", &secret),
            hook("crm", "ftp://crm.example.com/", "", &bad_secret),
            hook("a b", "https://crm.example.com/", "", &dir.path().join("none")),
        );
        assert_eq!(
            keys(&bad),
            [
                "events.webhook_concurrency",
                "events.webhook_retry_secs[1]",
                "webhooks[0].url",
                "webhooks[0].events[0]",
                "webhooks[1].name",
                "webhooks[1].url",
                "webhooks[1].secret_file",
                "webhooks[2].name",
                "webhooks[2].secret_file",
            ]
        );
        let bad_allow = format!(
            "[events]\nwebhook_allow = [\"https://crm.example.com\"]\nwebhook_retry_secs = []\n{}",
            hook("crm", "https://crm.example.com/", "", &secret)
        );
        assert_eq!(
            keys(&bad_allow),
            ["events.webhook_retry_secs", "events.webhook_allow[0]"]
        );
        let eleven = format!(
            "[events]\nwebhook_retry_secs = [{}]\n",
            ["1"; 11].join(", ")
        );
        assert_eq!(keys(&eleven), ["events.webhook_retry_secs"]);
    }
}
