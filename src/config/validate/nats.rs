//! `[events.nats]`: what the publisher and the consumer need to reach the
//! stream, checked before they keep retrying something that cannot work.

use super::Problems;
use crate::config::NatsConfig;

/// Letters, digits, `-` and `_`: what JetStream takes in stream and
/// consumer names everywhere (no `.`, `*`, `>`, spaces or path characters).
fn jetstream_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A literal subject: dot-separated non-empty tokens of printable ASCII,
/// no wildcards.
fn literal_subject(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.split('.').all(|t| {
            !t.is_empty()
                && t.bytes()
                    .all(|b| b.is_ascii_graphic() && b != b'*' && b != b'>')
        })
}

/// `u` without what may be a password before an `@`.
fn shown(u: &str) -> String {
    match (u.split_once("://"), u.rsplit_once('@')) {
        (Some((scheme, _)), Some((_, host))) => format!("{scheme}://***@{host}"),
        _ => u.to_owned(),
    }
}

pub(super) fn check_nats(p: &mut Problems, n: &NatsConfig) {
    let urls: Vec<&str> = n
        .url
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .collect();
    if urls.is_empty() {
        p.add("events.nats.url", "set the NATS server, nats://host:4222");
    }
    for u in urls {
        let scheme = u.split_once("://").map(|(s, _)| s);
        let addr = u.parse::<async_nats::ServerAddr>();
        match (scheme, addr) {
            (Some("nats" | "tls"), Ok(a)) if a.has_user_pass() => p.add(
                "events.nats.url",
                format!(
                    "{}:{} holds a user or password: use events.nats.user and password_file, or credentials_file",
                    a.host(),
                    a.port()
                ),
            ),
            (Some("nats" | "tls"), Ok(_)) => {}
            (Some("nats" | "tls"), Err(e)) => p.add(
                "events.nats.url",
                format!("{:?} is not a server address: {e}", shown(u)),
            ),
            _ => p.add(
                "events.nats.url",
                format!("{:?}: use nats://host:port or tls://host:port", shown(u)),
            ),
        }
    }
    match (&n.credentials_file, &n.user, &n.password_file) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => p.add(
            "events.nats.credentials_file",
            "set either credentials_file or user and password_file, not both",
        ),
        (None, Some(_), None) => p.add(
            "events.nats.password_file",
            "events.nats.user is set: set the password file too",
        ),
        (None, None, Some(_)) => p.add(
            "events.nats.user",
            "events.nats.password_file is set: set the user too",
        ),
        _ => {}
    }
    for (key, file) in [
        ("events.nats.credentials_file", &n.credentials_file),
        ("events.nats.password_file", &n.password_file),
    ] {
        if let Some(file) = file {
            match std::fs::read_to_string(file) {
                Ok(t) if t.trim().is_empty() => p.add(key, format!("{} is empty", file.display())),
                Ok(_) => {}
                Err(e) => p.add(key, format!("{} cannot be read: {e}", file.display())),
            }
        }
    }
    for (key, name) in [
        ("events.nats.stream", &n.stream),
        ("events.nats.consumer", &n.consumer),
    ] {
        if !jetstream_name(name) {
            p.add(
                key,
                format!("{name:?}: use 1 to 64 letters, digits, - or _"),
            );
        }
    }
    if !literal_subject(&n.subject_prefix) {
        p.add(
            "events.nats.subject_prefix",
            format!(
                "{:?} is not a subject: dot-separated words, no spaces, * or >",
                n.subject_prefix
            ),
        );
    }
    p.range("events.nats.max_age_days", n.max_age_days, 1..=3650, "days");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(n: &NatsConfig) -> Vec<String> {
        let mut p = Problems::default();
        check_nats(&mut p, n);
        p.0.into_iter()
            .map(|p| format!("{}: {}", p.key, p.reason))
            .collect()
    }

    #[test]
    fn defaults_pass() {
        assert_eq!(problems(&NatsConfig::default()), Vec::<String>::new());
        let n = NatsConfig {
            url: "nats://a:4222, tls://b:4222".into(),
            subject_prefix: "acme.pbx".into(),
            ..NatsConfig::default()
        };
        assert_eq!(problems(&n), Vec::<String>::new());
    }

    #[test]
    fn each_bad_value_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let cases: Vec<(NatsConfig, &str)> = vec![
            (
                NatsConfig {
                    url: "http://u:hunter2@a:4222".into(),
                    ..Default::default()
                },
                "events.nats.url",
            ),
            (
                NatsConfig {
                    url: "nats://u:hunter2@a:4222".into(),
                    ..Default::default()
                },
                "holds a user or password",
            ),
            (
                NatsConfig {
                    user: Some("u".into()),
                    ..Default::default()
                },
                "events.nats.password_file",
            ),
            (
                NatsConfig {
                    credentials_file: Some(dir.path().join("missing.creds")),
                    ..Default::default()
                },
                "cannot be read",
            ),
            (
                NatsConfig {
                    stream: "PBX.EVENTS".into(),
                    ..Default::default()
                },
                "events.nats.stream",
            ),
            (
                NatsConfig {
                    consumer: "serve node".into(),
                    ..Default::default()
                },
                "events.nats.consumer",
            ),
            (
                NatsConfig {
                    subject_prefix: "pbx.>".into(),
                    ..Default::default()
                },
                "events.nats.subject_prefix",
            ),
            (
                NatsConfig {
                    subject_prefix: "pbx..x".into(),
                    ..Default::default()
                },
                "events.nats.subject_prefix",
            ),
            (
                NatsConfig {
                    max_age_days: 0,
                    ..Default::default()
                },
                "events.nats.max_age_days",
            ),
        ];
        for (n, needle) in cases {
            let found = problems(&n);
            assert!(
                found.iter().any(|p| p.contains(needle)),
                "{n:?}: {found:?} lacks {needle:?}"
            );
            assert!(!found.iter().any(|p| p.contains("hunter2")), "{found:?}");
        }
    }
}
