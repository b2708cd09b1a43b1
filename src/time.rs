//! Time inside the core is the packet's capture timestamp, never the clock.
//! Drivers that need the clock (to close calls at shutdown, to stamp a HEP
//! packet or a database row) read it with `Timestamp::now`, the only place
//! it is read.

use std::fmt;
use std::time::Duration;

/// Microseconds since the Unix epoch, taken from the capture (pcap record, HEP chunk).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The wall clock, for drivers only: the core (`wire`, `reasm`, `sip`,
    /// `rtp`, `call`) never calls this, so replaying a capture gives the
    /// same calls every time.
    pub fn now() -> Timestamp {
        Timestamp(chrono::Utc::now().timestamp_micros())
    }
    pub const fn from_micros(us: i64) -> Self {
        Timestamp(us)
    }
    pub const fn from_secs(s: i64) -> Self {
        Timestamp(s.saturating_mul(1_000_000))
    }
    pub const fn micros(self) -> i64 {
        self.0
    }
    pub const fn saturating_add_micros(self, us: i64) -> Self {
        Timestamp(self.0.saturating_add(us))
    }
    pub const fn saturating_add_secs(self, s: u64) -> Self {
        let s = if s > (i64::MAX as u64) / 1_000_000 {
            i64::MAX / 1_000_000
        } else {
            s as i64
        };
        Timestamp(self.0.saturating_add(s * 1_000_000))
    }
    /// `self + d`, saturating; how the core adds its configured timeouts.
    pub fn saturating_add(self, d: Duration) -> Self {
        self.saturating_add_micros(duration_micros(d))
    }
    /// `self - earlier`, zero when `earlier` is later.
    pub const fn duration_since(self, earlier: Timestamp) -> Duration {
        Duration::from_micros(self.micros_since(earlier) as u64)
    }
    /// `self - earlier` in microseconds, never negative.
    pub const fn micros_since(self, earlier: Timestamp) -> i64 {
        let d = self.0.saturating_sub(earlier.0);
        if d < 0 {
            0
        } else {
            d
        }
    }
    /// RFC 3339 UTC with microseconds, e.g. `2026-11-21T10:00:00.123456Z`.
    pub fn to_rfc3339(self) -> String {
        let secs = self.0.div_euclid(1_000_000);
        let nanos = (self.0.rem_euclid(1_000_000) * 1_000) as u32;
        match chrono::DateTime::from_timestamp(secs, nanos) {
            Some(dt) => dt.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
            None => String::from("1970-01-01T00:00:00.000000Z"),
        }
    }
}

/// A configured duration in the core's unit, saturating: worked out once
/// before a loop that compares it with many `micros_since`.
pub fn duration_micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl Timestamp {
    /// Reads what `to_rfc3339` writes (and any other RFC 3339 time).
    pub fn parse_rfc3339(text: &str) -> Option<Timestamp> {
        let t = chrono::DateTime::parse_from_rfc3339(text).ok()?;
        Some(Timestamp(t.timestamp_micros()))
    }
}

impl<'de> serde::Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Timestamp::parse_rfc3339(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("{text:?} is not an RFC 3339 time")))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339_with_micros() {
        assert_eq!(
            Timestamp::from_micros(1_700_000_000_123_456).to_rfc3339(),
            "2023-11-14T22:13:20.123456Z"
        );
        assert_eq!(Timestamp(5).micros_since(Timestamp(9)), 0);
        assert_eq!(Timestamp(5).duration_since(Timestamp(9)), Duration::ZERO);
        assert_eq!(
            Timestamp(9).duration_since(Timestamp(5)),
            Duration::from_micros(4)
        );
        assert_eq!(
            Timestamp(1).saturating_add(Duration::from_secs(2)),
            Timestamp(2_000_001)
        );
        assert_eq!(
            Timestamp(1).saturating_add(Duration::MAX),
            Timestamp(i64::MAX)
        );
    }

    /// The core's time is the packet's: no file of it reads the clock.
    #[test]
    fn the_core_never_reads_the_clock() {
        fn walk(dir: &std::path::Path, files: &mut Vec<std::path::PathBuf>) {
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    walk(&p, files);
                } else if p.extension().is_some_and(|x| x == "rs") {
                    files.push(p);
                }
            }
        }
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        for core in ["wire", "reasm", "sip", "rtp", "call"] {
            walk(&src.join(core), &mut files);
        }
        assert!(files.len() > 20, "{files:?}");
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            for clock in ["Timestamp::now", "SystemTime", "Instant::now", "Utc::now"] {
                assert!(
                    !text.contains(clock),
                    "{} reads the clock ({clock})",
                    f.display()
                );
            }
        }
    }
}
