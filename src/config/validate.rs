//! Every check of a config's values, in one place: `check-config`, `run` and
//! the other commands all come here, so what `check-config` passes `run`
//! starts with. Each check adds to the list instead of stopping, so one run of
//! `check-config` shows everything there is to fix.

use std::path::{Path, PathBuf};

use super::{Config, StorageBackend};
use crate::db_kind::{is_identifier, Backend};

mod crm_status;
mod events;
mod nats;
use crm_status::check_status;

/// One thing wrong with a config: the key it is about and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub reason: String,
}

impl Problem {
    pub fn new(key: impl Into<String>, reason: impl Into<String>) -> Problem {
        Problem {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

/// What the config is checked for: any command, or the daemon, which also
/// needs something to capture from and usable folders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Any,
    Run,
}

/// One line per problem, each naming the file (or the defaults) and the key.
pub(super) fn problems_text(path: &Option<PathBuf>, problems: &[Problem]) -> String {
    let source = match path {
        Some(p) => p.display().to_string(),
        None => "embedded defaults (no --config)".to_owned(),
    };
    let lines: Vec<String> = problems
        .iter()
        .map(|p| format!("{source}: {}: {}", p.key, p.reason))
        .collect();
    lines.join("\n")
}

/// The problems found so far.
#[derive(Default)]
struct Problems(Vec<Problem>);

impl Problems {
    fn add(&mut self, key: impl Into<String>, reason: impl Into<String>) {
        self.0.push(Problem::new(key, reason));
    }

    /// `v` must lie within `range`; `unit` is "" for a count.
    fn range<T>(&mut self, key: &str, v: T, range: std::ops::RangeInclusive<T>, unit: &str)
    where
        T: PartialOrd + std::fmt::Display,
    {
        if !range.contains(&v) {
            let unit = if unit.is_empty() {
                String::new()
            } else {
                format!(" {unit}")
            };
            self.add(
                key,
                format!(
                    "{v} must be between {} and {}{unit}",
                    range.start(),
                    range.end()
                ),
            );
        }
    }
}

impl Config {
    /// Everything wrong with this config for `purpose`, in file order.
    pub fn problems(&self, purpose: Purpose) -> Vec<Problem> {
        let mut p = Problems::default();
        self.check_pbx(&mut p);
        self.check_capture(&mut p);
        self.check_database(&mut p);
        self.check_crm(&mut p);
        self.check_storage(&mut p);
        self.check_log(&mut p);
        self.check_api(&mut p);
        events::check_events(&mut p, self);
        if let Some(n) = &self.events.nats {
            nats::check_nats(&mut p, n);
        }
        if purpose == Purpose::Run {
            self.check_run(&mut p);
        }
        p.0
    }

    fn check_pbx(&self, p: &mut Problems) {
        if let Err(e) = regex::Regex::new(&self.pbx.extension_pattern) {
            // The regex crate draws a caret under the pattern over several
            // lines; its last line says what is wrong.
            let text = e.to_string();
            let why = text.lines().last().unwrap_or_default();
            p.add(
                "pbx.extension_pattern",
                format!(
                    "{:?} is not a regular expression: {}",
                    self.pbx.extension_pattern,
                    why.trim().trim_start_matches("error: ")
                ),
            );
        }
        if crate::phone::parse_country(&self.pbx.default_country).is_none() {
            p.add(
                "pbx.default_country",
                format!(
                    "{:?} is not an ISO 3166 alpha-2 country code such as \"US\" or \"DE\"",
                    self.pbx.default_country
                ),
            );
        }
        let sensor = &self.pbx.sensor;
        if sensor.is_empty() || sensor.len() > 64 {
            p.add(
                "pbx.sensor",
                format!("{sensor:?} must be 1 to 64 characters"),
            );
        }
        let t = &self.tracker;
        for (key, v) in [
            ("tracker.no_response_secs", t.no_response_secs),
            ("tracker.ring_timeout_secs", t.ring_timeout_secs),
            ("tracker.rtp_timeout_secs", t.rtp_timeout_secs),
            ("tracker.max_duration_secs", t.max_duration_secs),
            ("tracker.bye_timeout_secs", t.bye_timeout_secs),
        ] {
            p.range(key, v, 1..=7 * 24 * 3600, "seconds");
        }
        if t.max_calls == 0 {
            p.add("tracker.max_calls", "must be at least 1");
        }
        // What libopus encodes at.
        p.range(
            "recording.opus_bitrate",
            self.recording.opus_bitrate,
            6_000..=512_000,
            "bit/s",
        );
    }

    fn check_capture(&self, p: &mut Problems) {
        let c = &self.capture;
        for (i, name) in c.interfaces.iter().enumerate() {
            if !interface_exists(name) {
                p.add(
                    format!("capture.interfaces[{i}]"),
                    format!("no such interface {name:?}"),
                );
            }
        }
        p.range("capture.snaplen", c.snaplen, 64..=262_144, "bytes");
        p.range("capture.buffer_mib", c.buffer_mib, 1..=4096, "MiB");
        p.range(
            "capture.queue_packets",
            c.queue_packets,
            16..=16_777_216,
            "",
        );
        if c.folder_settle_secs == 0 {
            p.add("capture.folder_settle_secs", "must be at least 1");
        }
        p.range(
            "hep.max_connections",
            self.hep.max_connections,
            1..=10_000,
            "",
        );
    }

    fn check_storage(&self, p: &mut Problems) {
        let st = &self.storage;
        let prefix_ok = st
            .prefix
            .split('/')
            .all(|s| !s.is_empty() && s != "." && s != ".." && !s.contains('\\'));
        if !st.prefix.is_empty() && !prefix_ok {
            p.add(
                "storage.prefix",
                format!(
                    "{:?} must be path segments separated by / (no empty, . or .. segments)",
                    st.prefix
                ),
            );
        }
        match st.backend {
            StorageBackend::Local => {}
            StorageBackend::Share => match &st.path {
                None => p.add(
                    "storage.path",
                    "the share backend needs the mounted folder's path",
                ),
                Some(path) if !path.is_absolute() => p.add(
                    "storage.path",
                    format!("{} must be an absolute path", path.display()),
                ),
                Some(_) => {}
            },
            StorageBackend::S3 => {
                let s3 = &st.s3;
                if s3.bucket.is_empty() {
                    p.add("storage.s3.bucket", "is required for the s3 backend");
                }
                let scheme_ok = s3.endpoint.is_empty()
                    || s3.endpoint.starts_with("https://")
                    || s3.endpoint.starts_with("http://");
                if !scheme_ok {
                    p.add(
                        "storage.s3.endpoint",
                        format!("{:?} must start with https:// or http://", s3.endpoint),
                    );
                }
                if s3.endpoint.starts_with("http://") && !s3.allow_http {
                    p.add(
                        "storage.s3.endpoint",
                        "is plain http: set storage.s3.allow_http = true to allow it",
                    );
                }
                if !matches!(s3.sse.as_str(), "" | "AES256" | "aws:kms") {
                    p.add(
                        "storage.s3.sse",
                        format!("{:?} must be \"\", \"AES256\" or \"aws:kms\"", s3.sse),
                    );
                }
                if s3.sse == "aws:kms" && s3.kms_key_id.is_empty() {
                    p.add(
                        "storage.s3.kms_key_id",
                        "is required with sse = \"aws:kms\"",
                    );
                }
            }
        }
        if st.expire_interval_secs < 60 {
            p.add(
                "storage.expire_interval_secs",
                format!("{} must be at least 60", st.expire_interval_secs),
            );
        }
        p.range(
            "storage.multipart_threshold_mib",
            st.multipart_threshold_mib,
            1..=65_536,
            "",
        );
    }

    fn check_database(&self, p: &mut Problems) {
        let d = &self.database;
        // An empty URL is filled from url_file or the environment later.
        let backend = if d.url.is_empty() {
            None
        } else {
            let b = Backend::from_url(&d.url);
            if b.is_none() {
                p.add(
                    "database.url",
                    format!(
                        "{:?}: the scheme must be sqlite:, postgres:// or mysql://",
                        super::redact_url(&d.url)
                    ),
                );
            }
            b
        };
        if !d.table_prefix.is_empty() && !is_identifier(&d.table_prefix) {
            p.add(
                "database.table_prefix",
                format!("{:?} may hold only letters, digits and _", d.table_prefix),
            );
        }
        if !d.schema.is_empty() && !is_identifier(&d.schema) {
            p.add(
                "database.schema",
                format!("{:?} may hold only letters, digits and _", d.schema),
            );
        } else if !d.schema.is_empty() && backend == Some(Backend::Sqlite) {
            p.add(
                "database.schema",
                "SQLite has no schemas; leave it empty (use table_prefix)",
            );
        }
        p.range("database.max_connections", d.max_connections, 1..=64, "");
    }

    fn check_crm(&self, p: &mut Problems) {
        let path_ok = |s: &str| s.split('.').count() <= 2 && s.split('.').all(is_identifier);
        let column = |p: &mut Problems, key: String, c: &str| {
            if !is_identifier(c) {
                p.add(key, format!("{c:?} is not a column name"));
            }
        };
        let crm = &self.crm;
        let mut seen = std::collections::HashSet::new();
        for (i, r) in crm.records.iter().enumerate() {
            let key = |k: &str| format!("crm.records[{i}].{k}");
            if r.kind.is_empty() || r.kind.len() > 64 || !is_identifier(&r.kind) {
                p.add(
                    key("type"),
                    format!("{:?} must be a name such as \"contact\"", r.kind),
                );
            } else if !seen.insert(r.kind.as_str()) {
                p.add(key("type"), format!("{:?} is configured twice", r.kind));
            }
            if !path_ok(&r.table) {
                p.add(
                    key("table"),
                    format!(
                        "{:?} is not a table name (letters, digits, _, optionally schema.table)",
                        r.table
                    ),
                );
            }
            column(p, key("id"), &r.id);
            for (j, c) in r.phones.iter().enumerate() {
                column(p, format!("crm.records[{i}].phones[{j}]"), c);
            }
            if let Some(u) = &r.updated_at {
                column(p, key("updated_at"), u);
            }
            if let Some(n) = &r.name {
                if n.trim().is_empty() || n.contains(';') {
                    p.add(key("name"), "must be one SQL expression (no ';')");
                }
            }
            check_status(p, i, r);
        }
        for (i, rel) in crm.relations.iter().enumerate() {
            let key = |k: &str| format!("crm.relations[{i}].{k}");
            for (k, t) in [("from", &rel.from), ("to", &rel.to)] {
                if !seen.contains(t.as_str()) {
                    p.add(
                        key(k),
                        format!("{t:?} is not a type listed in [[crm.records]]"),
                    );
                }
            }
            match (&rel.column, &rel.foreign_key) {
                (Some(c), None) => column(p, key("column"), c),
                (None, Some(c)) => column(p, key("foreign_key"), c),
                _ => p.add(
                    key("column"),
                    "set exactly one of column (the from table holds the to id) or foreign_key (the to table holds the from id)",
                ),
            }
            if let Some(f) = &rel.filter {
                if f.trim().is_empty() || f.contains(';') {
                    p.add(key("filter"), "must be one SQL condition (no ';')");
                }
            }
        }
        p.range("crm.refresh_secs", crm.refresh_secs, 5..=86_400, "");
        p.range("crm.rebuild_secs", crm.rebuild_secs, 60..=30 * 86_400, "");
    }

    fn check_log(&self, p: &mut Problems) {
        // The daemon would fall back to "info" without a word.
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log.level) {
            p.add("log.level", format!("{:?}: {e}", self.log.level));
        }
    }

    fn check_api(&self, p: &mut Problems) {
        let Some(api) = &self.api else {
            return;
        };
        match (&api.tls_cert, &api.tls_key) {
            (Some(_), None) => p.add("api.tls_key", "api.tls_cert is set: set the key too"),
            (None, Some(_)) => p.add(
                "api.tls_cert",
                "api.tls_key is set: set the certificate too",
            ),
            (Some(cert), Some(key)) => {
                for (name, file) in [("api.tls_cert", cert), ("api.tls_key", key)] {
                    if let Err(e) = std::fs::File::open(file) {
                        p.add(name, format!("{} cannot be read: {e}", file.display()));
                    }
                }
            }
            (None, None) => {}
        }
        for (i, origin) in api.cors_origins.iter().enumerate() {
            let ok = origin.split_once("://").is_some_and(|(scheme, rest)| {
                matches!(scheme, "http" | "https")
                    && !rest.is_empty()
                    && !rest.contains('/')
                    && axum::http::HeaderValue::from_str(origin).is_ok()
            });
            if !ok {
                p.add(
                    format!("api.cors_origins[{i}]"),
                    format!("{origin:?} is not an origin: scheme://host[:port], no path (e.g. https://crm.example.com)"),
                );
            }
        }
        p.range("api.max_body_kib", api.max_body_kib, 1..=65_536, "KiB");
        p.range("api.max_upload_mib", api.max_upload_mib, 1..=4096, "MiB");
        p.range(
            "api.request_timeout_secs",
            api.request_timeout_secs,
            1..=3600,
            "s",
        );
        p.range("api.link_max_secs", api.link_max_secs, 10..=7 * 86_400, "s");
        if let Some(file) = &api.link_secret_file {
            match std::fs::read_to_string(file) {
                Ok(t) if t.trim().len() >= 32 => {}
                Ok(_) => p.add(
                    "api.link_secret_file",
                    format!("{} holds fewer than 32 characters", file.display()),
                ),
                Err(e) => p.add(
                    "api.link_secret_file",
                    format!("{} cannot be read: {e}", file.display()),
                ),
            }
        }
        let mut seen = std::collections::HashSet::new();
        for (i, r) in api.roles.iter().enumerate() {
            let key = format!("api.roles[{i}].name");
            if super::BUILTIN_ROLES.contains(&r.name.as_str()) {
                p.add(key, format!("{:?} is a built-in role", r.name));
            } else if r.name.is_empty()
                || r.name.len() > 64
                || !r
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                p.add(
                    key,
                    format!("{:?}: use 1 to 64 letters, digits, - or _", r.name),
                );
            } else if !seen.insert(r.name.as_str()) {
                p.add(key, format!("{:?} is defined twice", r.name));
            }
        }
    }

    /// What `pbxbridge run` needs before it starts: a source, a filter
    /// libpcap compiles, folders that are folders, ports that do not clash.
    /// Only looks; creates nothing.
    fn check_run(&self, p: &mut Problems) {
        let c = &self.capture;
        if c.interfaces.is_empty() && c.folder.is_none() && !self.hep.enabled {
            p.add(
                "capture",
                "nothing to capture from: set capture.interfaces, capture.folder or hep.enabled",
            );
        }
        if let Some(dir) = &c.folder {
            if let Err(e) = std::fs::read_dir(dir) {
                p.add(
                    "capture.folder",
                    format!("{} is not a readable directory: {e}", dir.display()),
                );
            }
        }
        if !c.interfaces.is_empty() {
            if let Err(e) = filter_compiles(&c.filter) {
                p.add("capture.filter", format!("{:?}: {e}", c.filter.trim()));
            }
        }
        writable_folder(p, "daemon.state_dir", &self.daemon.state_dir);
        if self.recording.enabled {
            writable_folder(p, "recording.dir", &self.recording.dir);
        }

        if let (StorageBackend::Share, Some(path)) = (self.storage.backend, &self.storage.path) {
            writable_folder(p, "storage.path", path);
        }
        if let Some(api) = &self.api {
            let others = [
                (self.admin.enabled, self.admin.listen, "admin.listen"),
                (self.hep.enabled, self.hep.listen, "hep.listen"),
            ];
            for (on, addr, name) in others {
                if on && clash(api.listen, addr) {
                    p.add("api.listen", format!("{} is also {name}", api.listen));
                }
            }
        }
        if self.hep.enabled && self.admin.enabled && clash(self.hep.listen, self.admin.listen) {
            p.add(
                "admin.listen",
                format!(
                    "{} is also hep.listen ({}): both listen on TCP",
                    self.admin.listen, self.hep.listen
                ),
            );
        }
    }
}

/// A folder the daemon creates and writes to: it, or the nearest part of its
/// path that exists, must be a directory this user may write in.
fn writable_folder(p: &mut Problems, key: &str, dir: &Path) {
    let mut at = Some(dir);
    while let Some(d) = at {
        match std::fs::metadata(d) {
            Ok(meta) if !meta.is_dir() => {
                return p.add(key, format!("{} is not a directory", d.display()));
            }
            Ok(_) if !may_write(d) => {
                return p.add(key, format!("{} is not writable by this user", d.display()));
            }
            Ok(_) => return,
            Err(_) => {
                at = match d.parent() {
                    Some(up) if !up.as_os_str().is_empty() => Some(up),
                    Some(_) if d != Path::new(".") => Some(Path::new(".")),
                    _ => None,
                }
            }
        }
    }
}

fn may_write(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(path) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `path` is a NUL-terminated string that outlives the call.
    unsafe { libc::access(path.as_ptr(), libc::W_OK | libc::X_OK) == 0 }
}

/// Two TCP listeners on one port clash when either takes every address.
fn clash(a: std::net::SocketAddr, b: std::net::SocketAddr) -> bool {
    a.port() == b.port() && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

/// Live capture needs a real interface; "any" is libpcap's pseudo-device.
fn interface_exists(name: &str) -> bool {
    if name == "any" {
        return true;
    }
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return false;
    }
    Path::new("/sys/class/net").join(name).exists()
}

/// Compiles a BPF filter without opening an interface (which needs
/// privileges), so `check-config` rejects what `run` would.
fn filter_compiles(filter: &str) -> Result<(), String> {
    let filter = filter.trim();
    if filter.is_empty() {
        return Ok(());
    }
    let words = |e: pcap::Error| match e {
        pcap::Error::PcapError(m) => m,
        other => other.to_string(),
    };
    let cap = pcap::Capture::dead(pcap::Linktype::ETHERNET).map_err(words)?;
    cap.compile(filter, true).map(drop).map_err(words)
}
